//! Container stdio, owned by the kubelet as containerd's CRI plugin owns it. Each container
//! attempt's main process writes to FIFOs in `<run dir>/containers/<id>/`: `stdout` and `stderr`
//! (only `stdout` when the container has a terminal, `tty: true`), and reads `stdin` when the
//! container has `stdin: true`. containerd's shim opens them itself and keeps ends of its own, so
//! while the kubelet is away the output waits in the pipe (raised to 1 MiB; beyond that the
//! container blocks) and the container's stdin stays open; a restarted kubelet reopens the FIFOs of
//! the containers still there ([`ContainerIo::recover`]) and goes on.
//!
//! Per attempt, one task (in [`ContainerIo::tasks`], ended by the shutdown token) reads the output
//! FIFOs and
//! * appends it to the attempt's log file in Kubernetes' CRI format ([`crate::cri_log`]), holding
//!   the file's [`LiveLogs`] lock while it writes (rotation takes it too);
//! * fans it out to attach sessions through a broadcast channel: a slow session misses output, it
//!   never holds up logging.
//!
//! The attempt also keeps the write end of the container's stdin, for [`attach`] sessions.

mod attach;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use navarch_api::v1::Container;
use nix::sys::stat::Mode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use attach::{AttachError, AttachTarget};

use crate::containerd::{Containerd, RuntimeError, Stdio, TaskState};
use crate::cri_log::{Encoder, Stream};
use crate::logs::LiveLogs;
use crate::pods::{LABEL_EXIT_CODE, LABEL_LOG};

/// Marks a container whose stdio are FIFOs the kubelet reads (value [`STDIO_FIFO`]); containers
/// created before have their output appended to the log by containerd's shim itself.
pub const LABEL_STDIO: &str = "io.navarch.container.stdio";
pub const LABEL_STDIN: &str = "io.navarch.container.stdin";
pub const LABEL_STDIN_ONCE: &str = "io.navarch.container.stdin-once";
pub const LABEL_TTY: &str = "io.navarch.container.tty";
const STDIO_FIFO: &str = "fifo";

/// The pipe buffer of an output FIFO: what a container may write while the kubelet is away.
const PIPE_SIZE: i32 = 1 << 20;
const READ_CHUNK: usize = 32 * 1024;
/// Output chunks an attach session may fall behind by before it misses some.
const SUBSCRIBER_QUEUE: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("container stdio {path}: {source}")]
    Fifo { path: PathBuf, source: std::io::Error },
}

fn fifo_err(path: &Path) -> impl FnOnce(std::io::Error) -> IoError {
    let path = path.to_path_buf();
    move |source| IoError::Fifo { path, source }
}

/// How a container's stdio is set up: from its spec, kept in its labels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StdioSpec {
    pub stdin: bool,
    /// Its stdin is closed when the first attach session that used it ends.
    pub stdin_once: bool,
    /// A terminal: one output stream (stdout).
    pub tty: bool,
}

impl StdioSpec {
    pub fn of(c: &Container) -> StdioSpec {
        StdioSpec { stdin: c.stdin, stdin_once: c.stdin && c.stdin_once, tty: c.tty }
    }

    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_STDIO.to_string(), STDIO_FIFO.to_string()),
            (LABEL_STDIN.to_string(), self.stdin.to_string()),
            (LABEL_STDIN_ONCE.to_string(), self.stdin_once.to_string()),
            (LABEL_TTY.to_string(), self.tty.to_string()),
        ])
    }

    /// None for a container whose stdio the kubelet does not read.
    pub fn from_labels(labels: &HashMap<String, String>) -> Option<StdioSpec> {
        if labels.get(LABEL_STDIO).map(String::as_str) != Some(STDIO_FIFO) {
            return None;
        }
        let flag = |k: &str| labels.get(k).is_some_and(|v| v == "true");
        Some(StdioSpec { stdin: flag(LABEL_STDIN), stdin_once: flag(LABEL_STDIN_ONCE), tty: flag(LABEL_TTY) })
    }
}

/// A chunk of a container's live output.
#[derive(Debug, Clone)]
pub enum Output {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// The live stdio of one container attempt.
pub struct Attempt {
    pub id: String,
    pub spec: StdioSpec,
    output: broadcast::Sender<Output>,
    stdin: tokio::sync::Mutex<Option<pipe::Sender>>,
    /// Cancelled once its output has ended (read to the end, or the kubelet stopping).
    done: CancellationToken,
}

impl Attempt {
    /// Output from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Output> {
        self.output.subscribe()
    }

    pub fn done(&self) -> &CancellationToken {
        &self.done
    }

    pub async fn stdin_open(&self) -> bool {
        self.stdin.lock().await.is_some()
    }

    /// Writes to the container's stdin; false when it has none (any more).
    pub async fn write_stdin(&self, data: &[u8]) -> bool {
        let mut stdin = self.stdin.lock().await;
        let Some(w) = stdin.as_mut() else { return false };
        if let Err(e) = w.write_all(data).await {
            tracing::debug!(container = %self.id, error = %e, "writing to a container's stdin");
            *stdin = None;
            return false;
        }
        true
    }

    /// Ends the container's stdin (`stdinOnce`): the kubelet's end and the shim's are closed.
    pub async fn close_stdin(&self, ctd: &Containerd) {
        self.stdin.lock().await.take();
        if let Err(e) = ctd.close_stdin(&self.id, "").await {
            tracing::debug!(container = %self.id, error = %e, "closing a container's stdin");
        }
    }
}

/// The FIFOs of an attempt, the kubelet's ends open: made before its task is created
/// ([`ContainerIo::prepare`]), then handed to [`ContainerIo::start`].
pub struct Prepared {
    id: String,
    spec: StdioSpec,
    log: PathBuf,
    stdio: Stdio,
    stdout: pipe::Receiver,
    stderr: Option<pipe::Receiver>,
    stdin: Option<pipe::Sender>,
}

impl Prepared {
    /// What containerd's shim is to open.
    pub fn stdio(&self) -> &Stdio {
        &self.stdio
    }
}

struct Inner {
    dir: PathBuf,
    live: Mutex<HashMap<String, Arc<Attempt>>>,
    logs: LiveLogs,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

/// The stdio of every container attempt on this node.
#[derive(Clone)]
pub struct ContainerIo(Arc<Inner>);

/// Opens the kubelet's read end of an output FIFO (without waiting for a writer) and raises its
/// pipe buffer.
fn open_output(path: &Path) -> Result<pipe::Receiver, IoError> {
    let r = pipe::OpenOptions::new().open_receiver(path).map_err(fifo_err(path))?;
    if let Err(e) = nix::fcntl::fcntl(&r, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE)) {
        tracing::debug!(path = %path.display(), error = %e, "raising a FIFO's pipe buffer");
    }
    Ok(r)
}

fn mkfifo(path: &Path) -> Result<(), IoError> {
    nix::unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR).map_err(|e| fifo_err(path)(e.into()))
}

impl ContainerIo {
    pub fn new(run_dir: &Path, shutdown: CancellationToken) -> ContainerIo {
        ContainerIo(Arc::new(Inner {
            dir: run_dir.join("containers"),
            live: Mutex::new(HashMap::new()),
            logs: LiveLogs::default(),
            tasks: TaskTracker::new(),
            shutdown,
        }))
    }

    /// The log files being written (for rotation).
    pub fn live_logs(&self) -> &LiveLogs {
        &self.0.logs
    }

    /// The tasks reading output and serving attach sessions.
    pub fn tasks(&self) -> &TaskTracker {
        &self.0.tasks
    }

    fn dir_of(&self, id: &str) -> PathBuf {
        self.0.dir.join(id)
    }

    /// Makes the FIFOs of attempt `id` (output to `log`) and opens the kubelet's ends, before its
    /// task is created: the shim's opens then find a reader.
    pub fn prepare(&self, id: &str, spec: StdioSpec, log: &Path) -> Result<Prepared, IoError> {
        let dir = self.dir_of(id);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(fifo_err(&dir))?;
        for (name, wanted) in [("stdout", true), ("stderr", !spec.tty), ("stdin", spec.stdin)] {
            if wanted {
                mkfifo(&dir.join(name))?;
            }
        }
        self.open(id, spec, log, true)
    }

    /// Opens the FIFOs of attempt `id`. `fresh`: its task is not created yet, so the stdin end is
    /// opened read-write (a write-only open would find no reader); otherwise a stdin without
    /// the shim's reader is closed.
    fn open(&self, id: &str, spec: StdioSpec, log: &Path, fresh: bool) -> Result<Prepared, IoError> {
        let dir = self.dir_of(id);
        let (out, err, inp) = (dir.join("stdout"), dir.join("stderr"), dir.join("stdin"));
        let stdout = open_output(&out)?;
        let stderr = if spec.tty { None } else { Some(open_output(&err)?) };
        let stdin = if !spec.stdin {
            None
        } else if fresh {
            Some(pipe::OpenOptions::new().read_write(true).open_sender(&inp).map_err(fifo_err(&inp))?)
        } else {
            match pipe::OpenOptions::new().open_sender(&inp) {
                Ok(w) => Some(w),
                // ENXIO: nobody reads it any more (closed by stdinOnce).
                Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => None,
                Err(e) => return Err(fifo_err(&inp)(e)),
            }
        };
        let path = |p: &Path, on: bool| if on { p.display().to_string() } else { String::new() };
        let stdio = Stdio {
            stdin: path(&inp, spec.stdin),
            stdout: path(&out, true),
            stderr: path(&err, !spec.tty),
            terminal: spec.tty,
        };
        Ok(Prepared { id: id.to_string(), spec, log: log.to_path_buf(), stdio, stdout, stderr, stdin })
    }

    /// Starts reading an attempt's output, once its task holds the FIFOs' other ends.
    pub fn start(&self, p: Prepared) {
        let (output, _) = broadcast::channel(SUBSCRIBER_QUEUE);
        let attempt = Arc::new(Attempt {
            id: p.id.clone(),
            spec: p.spec,
            output,
            stdin: tokio::sync::Mutex::new(p.stdin),
            done: CancellationToken::new(),
        });
        self.0.live.lock().expect("live attempts lock").insert(p.id.clone(), attempt.clone());
        let span = tracing::debug_span!("container_output", container = %p.id, log = %p.log.display());
        let io = self.clone();
        self.0.tasks.spawn(tracing::Instrument::instrument(
            async move { io.log_attempt(attempt, p.log, p.stdout, p.stderr).await },
            span,
        ));
    }

    /// Reads an attempt's output to its end (or shutdown), logging and fanning it out.
    async fn log_attempt(
        self,
        attempt: Arc<Attempt>,
        log: PathBuf,
        stdout: pipe::Receiver,
        stderr: Option<pipe::Receiver>,
    ) {
        let lock = self.0.logs.register(&log);
        let shutdown = &self.0.shutdown;
        let read = |stream, r| pump(stream, r, &log, &lock, &attempt.output, shutdown);
        let (out_ended, err_ended) = tokio::join!(read(Stream::Stdout, stdout), async {
            match stderr {
                Some(r) => read(Stream::Stderr, r).await,
                None => true,
            }
        });
        self.0.logs.unregister(&log);
        {
            let mut live = self.0.live.lock().expect("live attempts lock");
            if live.get(&attempt.id).is_some_and(|a| Arc::ptr_eq(a, &attempt)) {
                live.remove(&attempt.id);
            }
        }
        attempt.done.cancel();
        if out_ended && err_ended {
            // The shim let go of the output: the container has exited.
            tracing::debug!("container output ended");
            let _ = std::fs::remove_dir_all(self.dir_of(&attempt.id));
        }
    }

    /// Removes an attempt's FIFOs (its container is being removed).
    pub fn remove(&self, id: &str) {
        let _ = std::fs::remove_dir_all(self.dir_of(id));
    }

    /// The live stdio of an attempt whose output the kubelet reads.
    pub fn attempt(&self, id: &str) -> Option<Arc<Attempt>> {
        self.0.live.lock().expect("live attempts lock").get(id).cloned()
    }

    /// Whether the kubelet is still reading (and logging) an attempt's output.
    pub fn is_logging(&self, id: &str) -> bool {
        self.attempt(id).is_some_and(|a| !a.done.is_cancelled())
    }

    /// On start: reopens the FIFOs of the containers whose task is still there (running, or
    /// exited with output not yet read), and removes FIFO directories of containers that are gone.
    /// How many attempts it reattached to.
    pub async fn recover(&self, ctd: &Containerd) -> Result<usize, RuntimeError> {
        let mut known = HashSet::new();
        let mut n = 0;
        for rec in ctd.list_containers(&[(LABEL_STDIO, STDIO_FIFO)]).await? {
            known.insert(rec.id.clone());
            let Some(spec) = StdioSpec::from_labels(&rec.labels) else { continue };
            // An exit already recorded: its task, and the shim's ends, are gone.
            if rec.labels.contains_key(LABEL_EXIT_CODE)
                || ctd.task_state(&rec.id).await? == TaskState::Absent
                || !self.dir_of(&rec.id).exists()
            {
                continue;
            }
            let log = PathBuf::from(rec.labels.get(LABEL_LOG).cloned().unwrap_or_default());
            match self.open(&rec.id, spec, &log, false) {
                Ok(p) => {
                    tracing::info!(container = %rec.id, log = %log.display(), "reading a container's output again");
                    self.start(p);
                    n += 1;
                }
                Err(e) => tracing::warn!(container = %rec.id, error = %e, "reopening a container's stdio"),
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.0.dir) {
            for e in entries.flatten() {
                if !known.contains(e.file_name().to_string_lossy().as_ref()) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(n)
    }
}

/// Reads one output FIFO until its end (true) or shutdown (false): each chunk goes, as CRI entries,
/// to the log and then to attach sessions. A line not ended yet is written as a piece when the
/// reading stops, so nothing read is lost. The log is written on this task right after the read (a
/// small append to a local file, not handed to the blocking pool), so a kill -9 of the kubelet can
/// only lose what sits between one read and its write: microseconds, not a thread hop.
async fn pump(
    stream: Stream,
    mut r: pipe::Receiver,
    log: &Path,
    lock: &tokio::sync::Mutex<()>,
    output: &broadcast::Sender<Output>,
    shutdown: &CancellationToken,
) -> bool {
    let mut file = match std::fs::OpenOptions::new().create(true).append(true).open(log) {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!(path = %log.display(), error = %e, "opening a container log; its output is not logged");
            None
        }
    };
    let mut enc = Encoder::new(stream);
    let (mut buf, mut entries) = (vec![0u8; READ_CHUNK], Vec::new());
    let ended = loop {
        let read = tokio::select! {
            r = r.read(&mut buf) => r,
            _ = shutdown.cancelled() => break false,
        };
        let n = match read {
            Ok(0) => break true,
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(stream = stream.as_str(), error = %e, "reading a container's output");
                break true;
            }
        };
        enc.push(&buf[..n], SystemTime::now(), &mut entries);
        append(&mut file, log, lock, &mut entries).await;
        let chunk = Bytes::copy_from_slice(&buf[..n]);
        // No session listening is fine.
        let _ = output.send(match stream {
            Stream::Stdout => Output::Stdout(chunk),
            Stream::Stderr => Output::Stderr(chunk),
        });
    };
    enc.flush(SystemTime::now(), &mut entries);
    append(&mut file, log, lock, &mut entries).await;
    ended
}

/// Appends entries to the log under its lock (rotation waits meanwhile).
async fn append(
    file: &mut Option<std::fs::File>,
    log: &Path,
    lock: &tokio::sync::Mutex<()>,
    entries: &mut Vec<u8>,
) {
    if let Some(f) = file.as_mut()
        && !entries.is_empty()
    {
        let _rotation_waits = lock.lock().await;
        if let Err(e) = std::io::Write::write_all(f, entries) {
            tracing::warn!(path = %log.display(), error = %e, "writing a container log");
        }
    }
    entries.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdio_spec_round_trips_through_labels() {
        let c: Container =
            serde_yaml::from_str("{name: c, stdin: true, stdinOnce: true, tty: true}").unwrap();
        let spec = StdioSpec::of(&c);
        assert_eq!(spec, StdioSpec { stdin: true, stdin_once: true, tty: true });
        assert_eq!(StdioSpec::from_labels(&spec.labels()), Some(spec));
        // stdinOnce means nothing without stdin.
        let c: Container = serde_yaml::from_str("{name: c, stdinOnce: true}").unwrap();
        assert_eq!(StdioSpec::of(&c), StdioSpec::default());
        // Created before the kubelet read container stdio: no label.
        assert_eq!(StdioSpec::from_labels(&HashMap::new()), None);
    }

    /// The kubelet's side against FIFOs a test writes to, as the shim would: output logged in the
    /// CRI format per stream, fanned out live, a line cut by a stop written as a piece, the FIFOs
    /// removed at the end.
    #[tokio::test]
    async fn logs_and_fans_out_output_until_its_end() {
        use std::io::Write;
        let d = tempfile::tempdir().unwrap();
        let io = ContainerIo::new(d.path(), CancellationToken::new());
        let log = d.path().join("0.log");
        let p = io.prepare("c1", StdioSpec { stdin: true, ..Default::default() }, &log).unwrap();
        let stdio = p.stdio().clone();
        assert!(stdio.stdin.ends_with("containers/c1/stdin") && !stdio.terminal);
        // The shim's ends.
        let mut out = std::fs::OpenOptions::new().write(true).open(&stdio.stdout).unwrap();
        let mut err = std::fs::OpenOptions::new().write(true).open(&stdio.stderr).unwrap();
        let inp = std::fs::File::open(&stdio.stdin).unwrap();
        io.start(p);
        let attempt = io.attempt("c1").unwrap();
        let mut live = attempt.subscribe();
        out.write_all(b"hello\nwor").unwrap();
        err.write_all(b"oops\n").unwrap();
        assert!(attempt.write_stdin(b"typed\n").await);
        let mut typed = [0u8; 6];
        std::io::Read::read_exact(&mut &inp, &mut typed).unwrap();
        assert_eq!(&typed, b"typed\n");
        let mut seen = Vec::new();
        while seen.len() < 2 {
            seen.push(live.recv().await.unwrap());
        }
        assert!(seen.iter().any(|o| matches!(o, Output::Stdout(b) if &b[..] == b"hello\nwor")));
        assert!(seen.iter().any(|o| matches!(o, Output::Stderr(b) if &b[..] == b"oops\n")));
        assert!(io.is_logging("c1"));
        drop((out, err));
        tokio::time::timeout(std::time::Duration::from_secs(5), attempt.done().cancelled()).await.unwrap();
        assert!(!io.is_logging("c1"));
        let text = std::fs::read_to_string(&log).unwrap();
        let entries: Vec<(Stream, bool, String)> = text
            .lines()
            .map(|l| {
                let e = crate::cri_log::parse(l.as_bytes()).unwrap();
                (e.stream, e.partial, String::from_utf8_lossy(e.content).into_owned())
            })
            .collect();
        assert!(entries.contains(&(Stream::Stdout, false, "hello".into())), "{text}");
        assert!(entries.contains(&(Stream::Stdout, true, "wor".into())), "{text}");
        assert!(entries.contains(&(Stream::Stderr, false, "oops".into())), "{text}");
        assert!(!d.path().join("containers/c1").exists());
    }

    /// The kubelet stopping: a line read but not ended is written as a piece, the FIFOs stay for
    /// the next kubelet, and what the container writes meanwhile waits in the pipe for it.
    #[tokio::test]
    async fn a_stop_keeps_what_was_read_and_leaves_the_rest_in_the_pipe() {
        use std::io::Write;
        let d = tempfile::tempdir().unwrap();
        let shutdown = CancellationToken::new();
        let io = ContainerIo::new(d.path(), shutdown.clone());
        let log = d.path().join("0.log");
        let spec = StdioSpec { tty: true, ..Default::default() };
        let p = io.prepare("c1", spec, &log).unwrap();
        assert!(p.stdio().stderr.is_empty() && p.stdio().terminal);
        let shim = std::fs::OpenOptions::new().write(true).open(&p.stdio().stdout).unwrap();
        // The shim keeps a read end of its own, so the pipe outlives the kubelet's.
        let _shim_reader = std::fs::File::open(&p.stdio().stdout).unwrap();
        io.start(p);
        (&shim).write_all(b"half a li").unwrap();
        let attempt = io.attempt("c1").unwrap();
        let mut live = attempt.subscribe();
        live.recv().await.ok();
        shutdown.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), attempt.done().cancelled()).await.unwrap();
        (&shim).write_all(b"ne\nwhile away\n").unwrap();
        assert!(d.path().join("containers/c1/stdout").exists());
        // The next kubelet: reopened, the rest logged.
        let io = ContainerIo::new(d.path(), CancellationToken::new());
        io.start(io.open("c1", spec, &log, false).unwrap());
        drop(shim);
        let attempt = io.attempt("c1").unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), attempt.done().cancelled()).await.unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        let entries: Vec<(bool, String)> = text
            .lines()
            .map(|l| {
                let e = crate::cri_log::parse(l.as_bytes()).unwrap();
                (e.partial, String::from_utf8_lossy(e.content).into_owned())
            })
            .collect();
        let want = [(true, "half a li"), (false, "ne"), (false, "while away")];
        assert_eq!(entries, want.map(|(p, c)| (p, c.to_string())), "{text}");
    }
}
