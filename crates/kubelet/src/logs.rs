//! Container log files: `<log dir>/<ns>_<pod>_<uid>/<container>/<attempt>.log`, in Kubernetes' CRI
//! format ([`crate::cri_log`]), written by the kubelet's [`crate::container_io`]. This module reads
//! them for `navctl logs` — pieces of long lines joined, tail in lines, limit in bytes, since a
//! time, timestamps, follow — and rotates them: a file over the size limit is copied to `.1` (older
//! copies shift up to the file limit) and truncated in place. The writer appends with O_APPEND and
//! holds its file's lock in [`LiveLogs`] while it does, which rotation takes too, so nothing falls
//! between the copy and the truncation.
//!
//! A line that is not a CRI entry (a log written by containerd's shim before the kubelet wrote this
//! format, on a node that upgraded) is passed through as it is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::cri_log::{self, Stream};

/// Bytes per chunk sent to a reader.
const CHUNK: usize = 32 * 1024;
/// How often a followed log is checked for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Options of one log read.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Only the last this many lines (whole lines: pieces of a long line count once).
    pub tail_lines: Option<usize>,
    /// At most this many bytes of output (timestamps included).
    pub limit_bytes: Option<u64>,
    pub follow: bool,
    /// Each line prefixed with its time (RFC3339Nano, nine digits) and a space.
    pub timestamps: bool,
    /// Lines written before this time are left out.
    pub since: Option<SystemTime>,
}

/// Where a log read goes, and whether its writer still runs.
pub trait LogReader: Send {
    /// Takes one chunk; false once the reader is gone.
    fn send(&mut self, data: Vec<u8>) -> impl Future<Output = bool> + Send;
    /// Whether the log may still grow (for follow).
    fn writer_running(&mut self) -> impl Future<Output = bool> + Send;
}

/// One line of output: a whole line of the log (its pieces joined, the time of its first), or a
/// line that is not an entry, as it is (no time).
#[derive(Debug, Clone, PartialEq)]
struct Line {
    time: Option<SystemTime>,
    /// With its `\n`, unless the log ended in the middle of it.
    text: Vec<u8>,
}

/// Turns the bytes of a log file into [`Line`]s, across reads.
#[derive(Debug, Default)]
struct Decoder {
    /// Read after the last newline.
    carry: Vec<u8>,
    /// Per stream: the time and content of a line whose pieces are not all read yet.
    pieces: [Option<(SystemTime, Vec<u8>)>; 2],
}

fn slot(s: Stream) -> usize {
    match s {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl Decoder {
    fn feed(&mut self, data: &[u8], lines: &mut Vec<Line>) {
        let mut carry = std::mem::take(&mut self.carry);
        carry.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = carry[start..].iter().position(|b| *b == b'\n') {
            self.line(&carry[start..start + nl], true, lines);
            start += nl + 1;
        }
        carry.drain(..start);
        self.carry = carry;
    }

    fn line(&mut self, raw: &[u8], complete: bool, lines: &mut Vec<Line>) {
        match cri_log::parse(raw) {
            Some(e) if e.partial => {
                let (_, text) = self.pieces[slot(e.stream)].get_or_insert_with(|| (e.time, Vec::new()));
                text.extend_from_slice(e.content);
            }
            Some(e) => {
                let (time, mut text) = self.pieces[slot(e.stream)].take().unwrap_or((e.time, Vec::new()));
                text.extend_from_slice(e.content);
                text.push(b'\n');
                lines.push(Line { time: Some(time), text });
            }
            None => {
                let mut text = raw.to_vec();
                if complete {
                    text.push(b'\n');
                }
                lines.push(Line { time: None, text });
            }
        }
    }

    /// The end of the log: what is left becomes lines, without line ends.
    fn finish(&mut self, lines: &mut Vec<Line>) {
        let carry = std::mem::take(&mut self.carry);
        if !carry.is_empty() {
            self.line(&carry, false, lines);
        }
        let mut rest: Vec<(SystemTime, Vec<u8>)> = self.pieces.iter_mut().filter_map(Option::take).collect();
        rest.sort_by_key(|(t, _)| *t);
        lines.extend(rest.into_iter().map(|(t, text)| Line { time: Some(t), text }));
    }

    /// The file was truncated (rotated): a line cut in the middle is gone.
    fn truncated(&mut self) {
        self.carry.clear();
    }
}

fn before(line: &Line, since: Option<SystemTime>) -> bool {
    matches!((line.time, since), (Some(t), Some(s)) if t < s)
}

/// The output of one read: options applied, bytes counted.
struct Output {
    timestamps: bool,
    since: Option<SystemTime>,
    left: u64,
    buf: Vec<u8>,
}

impl Output {
    fn new(opts: &ReadOptions) -> Output {
        Output {
            timestamps: opts.timestamps,
            since: opts.since,
            left: opts.limit_bytes.unwrap_or(u64::MAX),
            buf: Vec::new(),
        }
    }

    /// Adds lines; false once the byte limit is reached.
    fn add(&mut self, lines: &mut Vec<Line>) -> bool {
        for line in lines.drain(..) {
            if self.left == 0 {
                return false;
            }
            if before(&line, self.since) {
                continue;
            }
            let start = self.buf.len();
            if self.timestamps
                && let Some(t) = line.time
            {
                self.buf.extend_from_slice(navarch_api::rfc3339::format_nano_fixed(t).as_bytes());
                self.buf.push(b' ');
            }
            self.buf.extend_from_slice(&line.text);
            let added = (self.buf.len() - start) as u64;
            if added >= self.left {
                self.buf.truncate(start + self.left as usize);
                self.left = 0;
            } else {
                self.left -= added;
            }
        }
        self.left > 0
    }

    /// Sends what was added; false once the reader is gone.
    async fn send(&mut self, reader: &mut impl LogReader) -> bool {
        for chunk in std::mem::take(&mut self.buf).chunks(CHUNK) {
            if !reader.send(chunk.to_vec()).await {
                return false;
            }
        }
        true
    }
}

/// The last `n` lines of a whole file (after `since`), the decoder after them and the file's length.
/// `end`: the file will not grow, so a line it ends in the middle of counts.
fn tail(
    path: &Path,
    n: usize,
    since: Option<SystemTime>,
    end: bool,
) -> std::io::Result<(Vec<Line>, Decoder, u64)> {
    let data = std::fs::read(path)?;
    let (mut dec, mut lines) = (Decoder::default(), Vec::new());
    dec.feed(&data, &mut lines);
    if end {
        dec.finish(&mut lines);
    }
    lines.retain(|l| !before(l, since));
    lines.drain(..lines.len().saturating_sub(n));
    Ok((lines, dec, data.len() as u64))
}

/// Sends a log file's lines to `reader`. With `follow`, keeps sending what is appended until the
/// writer has stopped and the file is drained; a file truncated by rotation is read again from its
/// start.
pub async fn stream(path: &Path, opts: &ReadOptions, reader: &mut impl LogReader) -> std::io::Result<()> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && opts.follow => {
            // Nothing written yet.
            tokio::fs::OpenOptions::new().create(true).append(true).open(path).await?;
            tokio::fs::File::open(path).await?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut out = Output::new(opts);
    let (mut lines, mut dec, mut offset) = match opts.tail_lines {
        Some(n) => {
            let (p, since, end) = (path.to_path_buf(), opts.since, !opts.follow);
            tokio::task::spawn_blocking(move || tail(&p, n, since, end))
                .await
                .map_err(std::io::Error::other)??
        }
        None => (Vec::new(), Decoder::default(), 0),
    };
    let more = out.add(&mut lines);
    if !out.send(reader).await || !more || (opts.tail_lines.is_some() && !opts.follow) {
        return Ok(());
    }
    let mut buf = vec![0u8; CHUNK];
    loop {
        let len = file.metadata().await?.len();
        if len < offset {
            offset = 0;
            dec.truncated();
        }
        file.seek(std::io::SeekFrom::Start(offset)).await?;
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            offset += n as u64;
            dec.feed(&buf[..n], &mut lines);
            let more = out.add(&mut lines);
            if !out.send(reader).await || !more {
                return Ok(());
            }
        }
        let done = !opts.follow || {
            // One last look for output written just before the writer stopped.
            !reader.writer_running().await && file.metadata().await?.len() <= offset
        };
        if done {
            dec.finish(&mut lines);
            out.add(&mut lines);
            out.send(reader).await;
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

/// The log files being written, each with the lock its writer holds while it appends. Rotation
/// takes the same lock around its copy and truncation.
#[derive(Clone, Default)]
pub struct LiveLogs(Arc<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>>);

impl LiveLogs {
    /// The lock of a file about to be written.
    pub fn register(&self, path: &Path) -> Arc<tokio::sync::Mutex<()>> {
        self.0.lock().expect("live logs lock").entry(path.to_path_buf()).or_default().clone()
    }

    /// The file is no longer written.
    pub fn unregister(&self, path: &Path) {
        self.0.lock().expect("live logs lock").remove(path);
    }

    fn lock_of(&self, path: &Path) -> Option<Arc<tokio::sync::Mutex<()>>> {
        self.0.lock().expect("live logs lock").get(path).cloned()
    }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

/// Rotates one live log file if it is over the limit; whether it did. Blocking: its writer waits.
pub fn rotate_file(path: &Path, r: Rotation, live: &LiveLogs) -> std::io::Result<bool> {
    let lock = live.lock_of(path);
    let _writer_waits = lock.as_ref().map(|l| l.blocking_lock());
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
/// Blocking.
pub fn rotate_all(log_dir: &Path, r: Rotation, live: &LiveLogs) -> usize {
    let mut n = 0;
    let Ok(pods) = std::fs::read_dir(log_dir) else { return 0 };
    for pod in pods.flatten() {
        let Ok(containers) = std::fs::read_dir(pod.path()) else { continue };
        for c in containers.flatten() {
            let Ok(files) = std::fs::read_dir(c.path()) else { continue };
            for f in files.flatten() {
                let p = f.path();
                if p.extension().is_some_and(|e| e == "log") {
                    match rotate_file(&p, r, live) {
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
    use crate::cri_log::Encoder;

    /// 2024-05-01T10:00:00Z + `secs`.
    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_557_600 + secs)
    }

    /// A CRI log: each (second, stream, raw output) encoded as the kubelet writes it, then flushed.
    fn cri(parts: &[(u64, Stream, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encs = [Encoder::with_max_line(Stream::Stdout, 8), Encoder::with_max_line(Stream::Stderr, 8)];
        for (s, stream, data) in parts {
            encs[slot(*stream)].push(data.as_bytes(), t(*s), &mut out);
        }
        for e in &mut encs {
            e.flush(t(99), &mut out);
        }
        out
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

    async fn read(path: &Path, opts: ReadOptions) -> String {
        let mut r = Collect { got: vec![], polls: 0 };
        stream(path, &opts, &mut r).await.unwrap();
        String::from_utf8(r.got).unwrap()
    }

    #[test]
    fn pieces_are_joined_per_stream_and_raw_lines_pass() {
        let data = cri(&[
            (1, Stream::Stdout, "a line longer than eight bytes\n"),
            // More than a piece (8 bytes here) without a newline: a piece is written at once.
            (2, Stream::Stdout, "half of a "),
            (3, Stream::Stderr, "err\n"),
            (4, Stream::Stdout, "line\n"),
        ]);
        let mut data = data;
        data.extend_from_slice(b"raw output from before the upgrade\n");
        let (mut dec, mut lines) = (Decoder::default(), Vec::new());
        // Fed in awkward slices, as reads come.
        for piece in data.chunks(7) {
            dec.feed(piece, &mut lines);
        }
        dec.finish(&mut lines);
        let got: Vec<(Option<SystemTime>, String)> =
            lines.into_iter().map(|l| (l.time, String::from_utf8(l.text).unwrap())).collect();
        assert_eq!(
            got,
            vec![
                (Some(t(1)), "a line longer than eight bytes\n".into()),
                (Some(t(3)), "err\n".into()),
                // Its first piece was written at 2 s, before the stderr line.
                (Some(t(2)), "half of a line\n".into()),
                (None, "raw output from before the upgrade\n".into()),
            ]
        );
        // A log that ends mid-line: the rest is its last line, without a line end.
        let (mut dec, mut lines) = (Decoder::default(), Vec::new());
        dec.feed(&cri(&[(1, Stream::Stdout, "one\nno end")]), &mut lines);
        dec.feed(b"raw tail", &mut lines);
        dec.finish(&mut lines);
        let texts: Vec<&[u8]> = lines.iter().map(|l| l.text.as_slice()).collect();
        // (The unfinished last line is taken first: it may be the end of a pending one.)
        assert_eq!(texts, vec![&b"one\n"[..], b"raw tail", b"no end"]);
    }

    #[tokio::test]
    async fn reads_with_tail_limit_since_and_timestamps() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("0.log");
        std::fs::write(
            &p,
            cri(&[
                (1, Stream::Stdout, "one\n"),
                (2, Stream::Stderr, "two is a long line\n"),
                (3, Stream::Stdout, "three\n"),
            ]),
        )
        .unwrap();
        assert_eq!(read(&p, ReadOptions::default()).await, "one\ntwo is a long line\nthree\n");
        // Tail counts whole lines, however many pieces they were written in.
        let tail = |n| ReadOptions { tail_lines: Some(n), ..Default::default() };
        assert_eq!(read(&p, tail(2)).await, "two is a long line\nthree\n");
        assert_eq!(read(&p, tail(0)).await, "");
        assert_eq!(read(&p, tail(10)).await, "one\ntwo is a long line\nthree\n");
        let limit = ReadOptions { limit_bytes: Some(6), ..Default::default() };
        assert_eq!(read(&p, limit).await, "one\ntw");
        let since = ReadOptions { since: Some(t(2)), ..Default::default() };
        assert_eq!(read(&p, since).await, "two is a long line\nthree\n");
        let since_tail = ReadOptions { since: Some(t(2)), tail_lines: Some(5), ..Default::default() };
        assert_eq!(read(&p, since_tail).await, "two is a long line\nthree\n");
        // Timestamps: Kubernetes' fixed nine digits; the limit counts them.
        let ts = ReadOptions { timestamps: true, tail_lines: Some(1), ..Default::default() };
        assert_eq!(read(&p, ts).await, "2024-05-01T10:00:03.000000000Z three\n");
        let ts = ReadOptions { timestamps: true, limit_bytes: Some(33), ..Default::default() };
        assert_eq!(read(&p, ts).await, "2024-05-01T10:00:01.000000000Z on");

        // A log from before the upgrade: passed through, timestamps and since cannot apply.
        let raw = d.path().join("1.log");
        std::fs::write(&raw, "plain\nlines").unwrap();
        let opts = ReadOptions { timestamps: true, since: Some(t(2)), ..Default::default() };
        assert_eq!(read(&raw, opts).await, "plain\nlines");
        assert_eq!(read(&raw, tail(1)).await, "lines");
        // No file: nothing.
        assert_eq!(read(&d.path().join("none.log"), ReadOptions::default()).await, "");
    }

    #[tokio::test]
    async fn follows_appends_and_rotation_until_the_writer_stops() {
        use std::io::Write;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("0.log");
        std::fs::write(&p, cri(&[(1, Stream::Stdout, "one\n"), (2, Stream::Stdout, "two\n")])).unwrap();
        let writer = p.clone();
        let appender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let append = |data: Vec<u8>| {
                let mut f = std::fs::OpenOptions::new().append(true).open(&writer).unwrap();
                f.write_all(&data).unwrap();
            };
            // A piece first, its end later: the line comes out whole.
            append(cri(&[(3, Stream::Stdout, "thr")])[..].to_vec());
            tokio::time::sleep(Duration::from_millis(300)).await;
            append(cri(&[(4, Stream::Stdout, "ee\n")]).to_vec());
            tokio::time::sleep(Duration::from_millis(300)).await;
            // Rotated: copied away and truncated; what follows is read from the start.
            let live = LiveLogs::default();
            let r = Rotation { max_size: 1, max_files: 3 };
            assert!(rotate_file(&writer, r, &live).unwrap());
            append(cri(&[(5, Stream::Stdout, "four\n")]).to_vec());
        });
        let mut r = Collect { got: vec![], polls: 12 };
        let opts = ReadOptions { follow: true, tail_lines: Some(1), ..Default::default() };
        stream(&p, &opts, &mut r).await.unwrap();
        appender.await.unwrap();
        assert_eq!(String::from_utf8(r.got).unwrap(), "two\nthree\nfour\n");
    }

    #[test]
    fn rotation_copies_truncates_and_keeps_max_files() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path().join("ns_pod_uid/web");
        std::fs::create_dir_all(&c).unwrap();
        let p = c.join("0.log");
        let r = Rotation { max_size: 10, max_files: 3 };
        let live = LiveLogs::default();
        for round in 0..4 {
            std::fs::write(&p, format!("round {round} with enough bytes\n")).unwrap();
            assert_eq!(rotate_all(d.path(), r, &live), 1);
            assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
        }
        assert_eq!(std::fs::read_to_string(c.join("0.log.1")).unwrap(), "round 3 with enough bytes\n");
        assert_eq!(std::fs::read_to_string(c.join("0.log.2")).unwrap(), "round 2 with enough bytes\n");
        assert!(!c.join("0.log.3").exists());
        // Under the limit: untouched.
        std::fs::write(&p, "small\n").unwrap();
        assert_eq!(rotate_all(d.path(), r, &live), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rotation_loses_nothing_a_live_writer_appends() {
        use tokio::io::AsyncWriteExt;
        let d = tempfile::tempdir().unwrap();
        let c = d.path().join("ns_pod_uid/web");
        std::fs::create_dir_all(&c).unwrap();
        let p = c.join("0.log");
        let live = LiveLogs::default();
        let lock = live.register(&p);
        let writer = {
            let p = p.clone();
            tokio::spawn(async move {
                let mut f = tokio::fs::OpenOptions::new().create(true).append(true).open(&p).await.unwrap();
                for i in 0..3000 {
                    let _g = lock.lock().await;
                    f.write_all(format!("line {i}\n").as_bytes()).await.unwrap();
                    f.flush().await.unwrap();
                }
            })
        };
        let r = Rotation { max_size: 2000, max_files: 10_000 };
        let (dir, rotator_live) = (d.path().to_path_buf(), live.clone());
        let rotations = tokio::task::spawn_blocking(move || {
            let mut n = 0;
            for _ in 0..400 {
                n += rotate_all(&dir, r, &rotator_live);
                std::thread::sleep(Duration::from_micros(200));
            }
            n
        });
        writer.await.unwrap();
        let rotations = rotations.await.unwrap();
        live.unregister(&p);
        assert!(rotations > 1, "rotated {rotations} times");
        let mut all = std::fs::read_to_string(&p).unwrap();
        for n in 1..=rotations as u32 {
            all.push_str(&std::fs::read_to_string(rotated(&p, n)).unwrap_or_default());
        }
        let mut seen: Vec<u32> = all.lines().map(|l| l["line ".len()..].parse().unwrap()).collect();
        seen.sort();
        assert_eq!(seen, (0..3000).collect::<Vec<_>>());
    }
}
