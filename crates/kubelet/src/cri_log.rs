//! Kubernetes' CRI container log format, the one containerd's CRI plugin writes and the kubelet
//! reads: one entry per line, `<time> <stdout|stderr> <F|P> <content>\n`, the time in Go's
//! RFC3339Nano (UTC). `F` ends a line; `P` is a piece of one: a line longer than [`MAX_LINE`] is cut
//! into `P` pieces of that size before its final `F` piece, and output that stops without a newline
//! (the stream closed, or the kubelet stopping) is written as `P` too — as containerd does
//! (`internal/cri/io/logger.go`). A line's `\n` (and a `\r` before it) is not part of its content.
//!
//! Owns the [`Encoder`] (raw output → entries) and [`parse`] (entry → fields); reading whole logs
//! (joining pieces, tail, since, timestamps) is `logs`' business.

use std::time::SystemTime;

/// The longest content of one entry (containerd's default `max_container_log_line_size`).
pub const MAX_LINE: usize = 16 * 1024;

/// Which output stream an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Turns one stream's raw output into log entries. What follows the last newline stays pending
/// until more output ends it (or it grows past [`MAX_LINE`], or [`Encoder::flush`]).
#[derive(Debug)]
pub struct Encoder {
    stream: Stream,
    max_line: usize,
    pending: Vec<u8>,
}

impl Encoder {
    pub fn new(stream: Stream) -> Encoder {
        Encoder::with_max_line(stream, MAX_LINE)
    }

    /// An encoder cutting lines at `max_line` bytes (at least 1).
    pub fn with_max_line(stream: Stream, max_line: usize) -> Encoder {
        Encoder { stream, max_line: max_line.max(1), pending: Vec::new() }
    }

    /// Appends to `out` the entries that `data`, read at `now`, completes.
    pub fn push(&mut self, data: &[u8], now: SystemTime, out: &mut Vec<u8>) {
        self.pending.extend_from_slice(data);
        let time = navarch_api::rfc3339::format_nano(now);
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|b| *b == b'\n') {
            let end = start + nl;
            let line = &self.pending[start..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let mut chunks = line.chunks(self.max_line).peekable();
            if chunks.peek().is_none() {
                entry(out, &time, self.stream, b'F', b"");
            }
            while let Some(piece) = chunks.next() {
                let tag = if chunks.peek().is_some() { b'P' } else { b'F' };
                entry(out, &time, self.stream, tag, piece);
            }
            start = end + 1;
        }
        // What is left has no newline yet: whole pieces of it are written already.
        while self.pending.len() - start > self.max_line {
            entry(out, &time, self.stream, b'P', &self.pending[start..start + self.max_line]);
            start += self.max_line;
        }
        self.pending.drain(..start);
    }

    /// Writes what is pending as a partial entry (the stream ended, or the writer stops).
    pub fn flush(&mut self, now: SystemTime, out: &mut Vec<u8>) {
        if !self.pending.is_empty() {
            let time = navarch_api::rfc3339::format_nano(now);
            entry(out, &time, self.stream, b'P', &self.pending);
            self.pending.clear();
        }
    }
}

fn entry(out: &mut Vec<u8>, time: &str, stream: Stream, tag: u8, content: &[u8]) {
    out.extend_from_slice(time.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.push(b' ');
    out.push(tag);
    out.push(b' ');
    out.extend_from_slice(content);
    out.push(b'\n');
}

/// One parsed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub time: SystemTime,
    pub stream: Stream,
    /// A piece of a line (`P`): its content has no line end.
    pub partial: bool,
    pub content: &'a [u8],
}

/// Parses one line of a log file (without its `\n`); `None` when it is not a CRI entry (a log
/// written before the kubelet wrote this format, or a torn line).
pub fn parse(line: &[u8]) -> Option<Entry<'_>> {
    let mut fields = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(fields.next()?).ok()?;
    let time = navarch_api::rfc3339::parse(time).ok()?;
    let stream = match fields.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    // Tags are `:`-separated; the first says full or partial (Kubernetes keeps room for more).
    let tags = fields.next()?;
    let partial = match tags.split(|b| *b == b':').next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    let content = fields.next()?;
    Some(Entry { time, stream, partial, content })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(nanos: u32) -> SystemTime {
        // 2024-05-01T10:00:00Z
        SystemTime::UNIX_EPOCH + Duration::new(1_714_557_600, nanos)
    }

    fn encode(enc: &mut Encoder, data: &[u8], at: SystemTime) -> String {
        let mut out = Vec::new();
        enc.push(data, at, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn full_lines_carry_time_stream_and_tag() {
        let mut e = Encoder::new(Stream::Stdout);
        assert_eq!(
            encode(&mut e, b"hello\nworld\r\n\n", t(120_000_000)),
            "2024-05-01T10:00:00.12Z stdout F hello\n\
             2024-05-01T10:00:00.12Z stdout F world\n\
             2024-05-01T10:00:00.12Z stdout F \n"
        );
        let mut e = Encoder::new(Stream::Stderr);
        assert_eq!(encode(&mut e, b"oops\n", t(0)), "2024-05-01T10:00:00Z stderr F oops\n");
    }

    #[test]
    fn a_line_waits_for_its_end_across_reads() {
        let mut e = Encoder::new(Stream::Stdout);
        assert_eq!(encode(&mut e, b"hel", t(1)), "");
        assert_eq!(encode(&mut e, b"lo\nnext", t(2)), "2024-05-01T10:00:00.000000002Z stdout F hello\n");
        // The stream ends without a newline: the rest is a partial entry, as containerd writes it.
        let mut out = Vec::new();
        e.flush(t(3), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "2024-05-01T10:00:00.000000003Z stdout P next\n");
        let mut out = Vec::new();
        e.flush(t(4), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn long_lines_are_cut_into_partial_pieces() {
        let mut e = Encoder::with_max_line(Stream::Stdout, 4);
        // Exactly the limit is one full entry; one more byte makes a piece and a full rest.
        assert_eq!(encode(&mut e, b"abcd\n", t(0)), "2024-05-01T10:00:00Z stdout F abcd\n");
        assert_eq!(
            encode(&mut e, b"abcdefghij\n", t(0)),
            "2024-05-01T10:00:00Z stdout P abcd\n\
             2024-05-01T10:00:00Z stdout P efgh\n\
             2024-05-01T10:00:00Z stdout F ij\n"
        );
        // Without a newline yet, whole pieces go out as they fill; the rest waits.
        assert_eq!(encode(&mut e, b"0123456", t(0)), "2024-05-01T10:00:00Z stdout P 0123\n");
        assert_eq!(encode(&mut e, b"7\n", t(0)), "2024-05-01T10:00:00Z stdout F 4567\n");
        // The default limit is containerd's 16 KiB.
        let mut e = Encoder::new(Stream::Stdout);
        let mut line = vec![b'x'; MAX_LINE + 1];
        line.push(b'\n');
        let out = encode(&mut e, &line, t(0));
        let entries: Vec<Entry> = out.lines().map(|l| parse(l.as_bytes()).unwrap()).collect();
        assert_eq!(entries.len(), 2);
        assert!(entries[0].partial && entries[0].content.len() == MAX_LINE);
        assert!(!entries[1].partial && entries[1].content == b"x");
    }

    #[test]
    fn parses_entries_and_refuses_other_lines() {
        let e = parse(b"2024-05-01T10:00:00.5Z stderr P some text").unwrap();
        assert_eq!(e.time, t(500_000_000));
        assert_eq!((e.stream, e.partial, e.content), (Stream::Stderr, true, &b"some text"[..]));
        let e = parse(b"2024-05-01T10:00:00Z stdout F:x ").unwrap();
        assert_eq!((e.stream, e.partial, e.content), (Stream::Stdout, false, &b""[..]));
        for raw in [
            &b"plain output from before"[..],
            b"",
            b"2024-05-01T10:00:00Z stdin F x",
            b"2024-05-01T10:00:00Z stdout X x",
            b"2024-05-01T10:00:00Z stdout F",
            b"yesterday stdout F x",
        ] {
            assert_eq!(parse(raw), None, "{:?}", String::from_utf8_lossy(raw));
        }
    }
}
