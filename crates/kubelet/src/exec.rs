//! Running a command inside a running container (containerd exec), for exec probes and for
//! `navctl exec`. The process gets the container's own process settings (user, env, working
//! directory, capabilities) with the command replaced; its stdio are FIFOs in a directory of its
//! own under the kubelet's run directory, removed when the process is finished.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::stat::Mode;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use crate::containerd::{Containerd, RuntimeError, Stdio};

const SIGKILL: u32 = 9;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("exec stdio {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("container {0} has no process spec")]
    NoProcess(String),
    #[error("command timed out after {0:?}")]
    Timeout(Duration),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    pub container_id: String,
    pub command: Vec<String>,
    /// Connect stdin.
    pub stdin: bool,
    /// Allocate a terminal (stdout and stderr are then one stream).
    pub tty: bool,
}

/// One exec'd process and the ends of its stdio.
pub struct ExecProcess {
    ctd: Containerd,
    pub container_id: String,
    pub exec_id: String,
    dir: PathBuf,
    pub stdin: Option<pipe::Sender>,
    pub stdout: Option<pipe::Receiver>,
    pub stderr: Option<pipe::Receiver>,
    finished: bool,
}

fn mkfifo(path: &Path) -> Result<(), ExecError> {
    nix::unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR).map_err(|e| io_err(path)(e.into()))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExecError {
    let path = path.to_path_buf();
    move |source| ExecError::Io { path, source }
}

impl ExecProcess {
    /// Starts `spec.command` in the container's running task.
    pub async fn start(ctd: &Containerd, run_dir: &Path, spec: &ExecSpec) -> Result<ExecProcess, ExecError> {
        let exec_id = format!("exec-{:016x}", rand::random::<u64>());
        let dir = run_dir.join("exec").join(&exec_id);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut p = ExecProcess {
            ctd: ctd.clone(),
            container_id: spec.container_id.clone(),
            exec_id: exec_id.clone(),
            dir: dir.clone(),
            stdin: None,
            stdout: None,
            stderr: None,
            finished: true,
        };
        let mut io = Stdio { terminal: spec.tty, ..Default::default() };
        // The read ends are opened before containerd opens the write ends: no output is lost, and
        // end-of-file is seen only once the shim has let go of them.
        let out = dir.join("stdout");
        mkfifo(&out)?;
        p.stdout = Some(pipe::OpenOptions::new().open_receiver(&out).map_err(io_err(&out))?);
        io.stdout = out.display().to_string();
        if !spec.tty {
            let err = dir.join("stderr");
            mkfifo(&err)?;
            p.stderr = Some(pipe::OpenOptions::new().open_receiver(&err).map_err(io_err(&err))?);
            io.stderr = err.display().to_string();
        }
        if spec.stdin {
            let inp = dir.join("stdin");
            mkfifo(&inp)?;
            // Read-write, so opening does not wait for containerd's reader.
            p.stdin =
                Some(pipe::OpenOptions::new().read_write(true).open_sender(&inp).map_err(io_err(&inp))?);
            io.stdin = inp.display().to_string();
        }
        let container_spec = ctd.container_spec(&spec.container_id).await?;
        let mut process = container_spec
            .get("process")
            .cloned()
            .ok_or_else(|| ExecError::NoProcess(spec.container_id.clone()))?;
        process["args"] = serde_json::json!(spec.command);
        process["terminal"] = serde_json::json!(spec.tty);
        if spec.tty
            && let Some(env) = process.get_mut("env").and_then(|e| e.as_array_mut())
            && !env.iter().any(|e| e.as_str().is_some_and(|s| s.starts_with("TERM=")))
        {
            env.push(serde_json::json!("TERM=xterm"));
        }
        ctd.exec(&spec.container_id, &exec_id, &process, &io).await?;
        p.finished = false;
        if let Err(e) = ctd.start_exec(&spec.container_id, &exec_id).await {
            p.finish().await;
            return Err(e.into());
        }
        Ok(p)
    }

    /// Waits for the process to exit; its exit status.
    pub async fn wait(&self) -> Result<i32, ExecError> {
        Ok(self.ctd.wait(&self.container_id, &self.exec_id).await? as i32)
    }

    /// A future of the exit status that does not borrow the process (so its stdio can be used
    /// meanwhile).
    pub fn waiter(&self) -> impl Future<Output = Result<i32, ExecError>> + Send + 'static {
        let (ctd, id, exec_id) = (self.ctd.clone(), self.container_id.clone(), self.exec_id.clone());
        async move { Ok(ctd.wait(&id, &exec_id).await? as i32) }
    }

    pub async fn kill(&self) -> Result<(), ExecError> {
        Ok(self.ctd.kill_exec(&self.container_id, &self.exec_id, SIGKILL).await?)
    }

    /// Ends the process's input.
    pub async fn close_stdin(&mut self) -> Result<(), ExecError> {
        self.stdin = None;
        Ok(self.ctd.close_stdin(&self.container_id, &self.exec_id).await?)
    }

    pub async fn resize(&self, width: u32, height: u32) -> Result<(), ExecError> {
        Ok(self.ctd.resize_pty(&self.container_id, &self.exec_id, width, height).await?)
    }

    /// Removes the (exited or killed) process from containerd and its FIFOs from disk.
    pub async fn finish(&mut self) {
        if !self.finished {
            let _ = self.ctd.kill_exec(&self.container_id, &self.exec_id, SIGKILL).await;
            if let Err(e) = self.ctd.delete_exec(&self.container_id, &self.exec_id).await {
                tracing::debug!(exec = %self.exec_id, error = %e, "removing exec process");
            }
            self.finished = true;
        }
        self.stdin = None;
        self.stdout = None;
        self.stderr = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for ExecProcess {
    fn drop(&mut self) {
        if !self.finished {
            // Dropped mid-flight (a cancelled request): kill and remove it in the background.
            let (ctd, id, exec_id) = (self.ctd.clone(), self.container_id.clone(), self.exec_id.clone());
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = ctd.kill_exec(&id, &exec_id, SIGKILL).await;
                    let _ = ctd.wait(&id, &exec_id).await;
                    let _ = ctd.delete_exec(&id, &exec_id).await;
                });
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads a pipe to its end, keeping at most `cap` bytes.
async fn read_capped(mut r: pipe::Receiver, cap: usize, into: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut out = into.lock().expect("output lock");
                let room = cap.saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// The result of a command run to completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    pub exit_code: i32,
    /// stdout then stderr, at most 10 KiB of each.
    pub output: Vec<u8>,
}

/// Runs a command in a container to completion within `limit`, capturing its output (exec
/// probes). A command still running at the limit is killed.
pub async fn run_captured(
    ctd: &Containerd,
    run_dir: &Path,
    container_id: &str,
    command: &[String],
    limit: Duration,
) -> Result<Captured, ExecError> {
    const CAP: usize = 10 * 1024;
    let spec =
        ExecSpec { container_id: container_id.into(), command: command.to_vec(), stdin: false, tty: false };
    let mut p = ExecProcess::start(ctd, run_dir, &spec).await?;
    let (out, err) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
    let mut readers = tokio::task::JoinSet::new();
    if let Some(r) = p.stdout.take() {
        readers.spawn(read_capped(r, CAP, out.clone()));
    }
    if let Some(r) = p.stderr.take() {
        readers.spawn(read_capped(r, CAP, err.clone()));
    }
    let result = match tokio::time::timeout(limit, p.wait()).await {
        Ok(Ok(code)) => {
            // Output still in flight after the exit (a child holding the pipes gets 1 s).
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while readers.join_next().await.is_some() {}
            })
            .await;
            let mut output = out.lock().expect("output lock").clone();
            output.extend_from_slice(&err.lock().expect("output lock"));
            Ok(Captured { exit_code: code, output })
        }
        Ok(Err(e)) => Err(e),
        Err(_) => {
            let _ = p.kill().await;
            let _ = tokio::time::timeout(Duration::from_secs(2), p.wait()).await;
            Err(ExecError::Timeout(limit))
        }
    };
    readers.abort_all();
    p.finish().await;
    result
}
