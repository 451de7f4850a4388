//! Container log files. containerd's shim appends each container attempt's stdout and stderr to
//! `<log dir>/<ns>_<pod>_<uid>/<container>/<attempt>.log`; the kubelet reads them (tail, limit,
//! follow) for `navctl logs` and rotates them: a file over the size limit is copied to `.1`
//! (older copies shift up to the file limit) and truncated in place, which is safe because the
//! shim writes with O_APPEND.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bytes per chunk sent to a reader.
const CHUNK: usize = 32 * 1024;
/// How often a followed log is checked for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Where the last `lines` lines of `data` start (a final newline does not begin another line).
pub fn tail_start(data: &[u8], lines: usize) -> usize {
    if lines == 0 {
        return data.len();
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == lines {
                return i + 1;
            }
        }
    }
    0
}

/// Options of one log read.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<u64>,
    pub follow: bool,
}

/// Where a log read goes, and whether its writer still runs.
pub trait LogReader: Send {
    /// Takes one chunk; false once the reader is gone.
    fn send(&mut self, data: Vec<u8>) -> impl Future<Output = bool> + Send;
    /// Whether the container writing the log still runs (for follow).
    fn writer_running(&mut self) -> impl Future<Output = bool> + Send;
}

/// Sends a log file's content in chunks to `reader`. With `follow`, keeps sending what is
/// appended until the writer has exited and the file is drained; a file truncated by rotation is
/// read again from its start.
pub async fn stream(path: &Path, opts: &ReadOptions, reader: &mut impl LogReader) -> std::io::Result<()> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && opts.follow => {
            // Nothing written yet.
            std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            std::fs::File::open(path)?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut offset = match opts.tail_lines {
        Some(n) => {
            let mut all = Vec::new();
            file.read_to_end(&mut all)?;
            tail_start(&all, n) as u64
        }
        None => 0,
    };
    let mut left = opts.limit_bytes.unwrap_or(u64::MAX);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let len = file.metadata()?.len();
        if len < offset {
            offset = 0;
        }
        file.seek(SeekFrom::Start(offset))?;
        loop {
            if left == 0 {
                return Ok(());
            }
            let want = buf.len().min(left.min(usize::MAX as u64) as usize);
            let n = file.read(&mut buf[..want])?;
            if n == 0 {
                break;
            }
            offset += n as u64;
            left -= n as u64;
            if !reader.send(buf[..n].to_vec()).await {
                return Ok(());
            }
        }
        if !opts.follow {
            return Ok(());
        }
        if !reader.writer_running().await {
            // One last look for output written just before the exit.
            let len = file.metadata()?.len();
            if len > offset {
                continue;
            }
            return Ok(());
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

/// Rotation limits (Kubernetes' containerLogMaxSize and containerLogMaxFiles).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rotation {
    pub max_size: u64,
    /// Files kept per container attempt, the live one included (at least 2).
    pub max_files: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation { max_size: 10 << 20, max_files: 5 }
    }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

/// Rotates one live log file if it is over the limit; whether it did.
pub fn rotate_file(path: &Path, r: Rotation) -> std::io::Result<bool> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if len <= r.max_size {
        return Ok(false);
    }
    let keep = r.max_files.max(2) - 1;
    let _ = std::fs::remove_file(rotated(path, keep));
    for n in (1..keep).rev() {
        let from = rotated(path, n);
        if from.exists() {
            std::fs::rename(&from, rotated(path, n + 1))?;
        }
    }
    std::fs::copy(path, rotated(path, 1))?;
    std::fs::OpenOptions::new().write(true).open(path)?.set_len(0)?;
    Ok(true)
}

/// Rotates every live log under the kubelet's log directory (files named `<attempt>.log`).
pub fn rotate_all(log_dir: &Path, r: Rotation) -> usize {
    let mut n = 0;
    let Ok(pods) = std::fs::read_dir(log_dir) else { return 0 };
    for pod in pods.flatten() {
        let Ok(containers) = std::fs::read_dir(pod.path()) else { continue };
        for c in containers.flatten() {
            let Ok(files) = std::fs::read_dir(c.path()) else { continue };
            for f in files.flatten() {
                let p = f.path();
                if p.extension().is_some_and(|e| e == "log") {
                    match rotate_file(&p, r) {
                        Ok(true) => n += 1,
                        Ok(false) => {}
                        Err(e) => tracing::warn!(path = %p.display(), error = %e, "rotating a container log"),
                    }
                }
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_counts_lines_from_the_end() {
        let d = b"a\nb\nc\n";
        assert_eq!(&d[tail_start(d, 1)..], b"c\n");
        assert_eq!(&d[tail_start(d, 2)..], b"b\nc\n");
        assert_eq!(&d[tail_start(d, 10)..], d);
        assert_eq!(&d[tail_start(d, 0)..], b"");
        let partial = b"a\nb\nc";
        assert_eq!(&partial[tail_start(partial, 1)..], b"c");
        assert_eq!(tail_start(b"", 3), 0);
    }

    /// Collects chunks; the writer "runs" for the first `polls` checks.
    struct Collect {
        got: Vec<u8>,
        polls: u32,
    }

    impl LogReader for Collect {
        async fn send(&mut self, data: Vec<u8>) -> bool {
            self.got.extend(data);
            true
        }
        async fn writer_running(&mut self) -> bool {
            self.polls = self.polls.saturating_sub(1);
            self.polls > 0
        }
    }

    #[tokio::test]
    async fn reads_with_tail_limit_and_follow() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("0.log");
        std::fs::write(&p, "one\ntwo\nthree\n").unwrap();
        let mut r = Collect { got: vec![], polls: 0 };
        let opts = ReadOptions { tail_lines: Some(2), ..Default::default() };
        stream(&p, &opts, &mut r).await.unwrap();
        assert_eq!(r.got, b"two\nthree\n");

        let mut r = Collect { got: vec![], polls: 0 };
        let opts = ReadOptions { limit_bytes: Some(5), ..Default::default() };
        stream(&p, &opts, &mut r).await.unwrap();
        assert_eq!(r.got, b"one\nt");

        // Follow: output appended while following arrives; the stream ends once the writer is gone.
        let writer = p.clone();
        let appender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&writer).unwrap();
            f.write_all(b"four\n").unwrap();
        });
        let mut r = Collect { got: vec![], polls: 5 };
        let opts = ReadOptions { follow: true, ..Default::default() };
        stream(&p, &opts, &mut r).await.unwrap();
        appender.await.unwrap();
        assert_eq!(r.got, b"one\ntwo\nthree\nfour\n");
    }

    #[test]
    fn rotation_copies_truncates_and_keeps_max_files() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path().join("ns_pod_uid/web");
        std::fs::create_dir_all(&c).unwrap();
        let p = c.join("0.log");
        let r = Rotation { max_size: 10, max_files: 3 };
        for round in 0..4 {
            std::fs::write(&p, format!("round {round} with enough bytes\n")).unwrap();
            assert_eq!(rotate_all(d.path(), r), 1);
            assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
        }
        assert_eq!(std::fs::read_to_string(c.join("0.log.1")).unwrap(), "round 3 with enough bytes\n");
        assert_eq!(std::fs::read_to_string(c.join("0.log.2")).unwrap(), "round 2 with enough bytes\n");
        assert!(!c.join("0.log.3").exists());
        // Under the limit: untouched.
        std::fs::write(&p, "small\n").unwrap();
        assert_eq!(rotate_all(d.path(), r), 0);
    }
}
