//! The audit log backend: events go through a bounded queue to one writer (a blocking thread of
//! tokio's pool), which writes them as JSON lines, buffered and flushed whenever the queue runs empty.
//!
//! Requests never wait for the log: when the queue is full, the event is dropped and counted
//! ([`DroppedEvents`], for a metric), and the drop is logged (at the 1st, 2nd, 4th, 8th, ... drop).
//! Events that cannot be written (a full disk) are counted the same way. [`AuditLog::close`] writes
//! what is queued, flushes and stops the writer.

use std::io::{self, BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc::{self, error::TryRecvError, error::TrySendError};

use super::event::Event;
use super::rotate::RotatingFile;

/// Where event lines go.
pub trait LogOutput: Send + 'static {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

impl LogOutput for RotatingFile {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        RotatingFile::write_line(self, line)
    }
    fn flush(&mut self) -> io::Result<()> {
        RotatingFile::flush(self)
    }
}

/// A stream without rotation (`--audit-log-path -`: standard output).
pub struct StreamOutput<W: Write + Send + 'static>(BufWriter<W>);

impl<W: Write + Send + 'static> StreamOutput<W> {
    pub fn new(w: W) -> StreamOutput<W> {
        StreamOutput(BufWriter::new(w))
    }
}

impl<W: Write + Send + 'static> LogOutput for StreamOutput<W> {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.0.write_all(line)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// How many events were not written: the queue was full or closed, or writing failed.
#[derive(Debug, Clone, Default)]
pub struct DroppedEvents(Arc<AtomicU64>);

impl DroppedEvents {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one more; logs at powers of two so a stuck log does not flood the daemon's own log.
    fn add(&self, why: &str) {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(dropped_total = n, "audit event dropped: {why}");
        }
    }
}

enum Message {
    Event(Box<Event>),
    Close,
}

/// The sending side, cloned into every request.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Message>,
    dropped: DroppedEvents,
}

impl AuditSink {
    /// Queues an event without waiting; a full queue drops (and counts) it.
    pub fn send(&self, event: Event) {
        match self.tx.try_send(Message::Event(Box::new(event))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.dropped.add("the audit log's queue is full"),
            Err(TrySendError::Closed(_)) => self.dropped.add("the audit log is closed"),
        }
    }
}

/// The running log writer.
pub struct AuditLog {
    sink: AuditSink,
    writer: tokio::task::JoinHandle<()>,
}

impl AuditLog {
    /// Starts the writer (on tokio's blocking pool: call within a runtime) with a queue of `capacity`
    /// events.
    pub fn start(output: Box<dyn LogOutput>, capacity: usize) -> AuditLog {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let dropped = DroppedEvents::default();
        let writer = {
            let dropped = dropped.clone();
            tokio::task::spawn_blocking(move || write_events(rx, output, &dropped))
        };
        AuditLog { sink: AuditSink { tx, dropped }, writer }
    }

    pub fn sink(&self) -> AuditSink {
        self.sink.clone()
    }

    pub fn dropped(&self) -> DroppedEvents {
        self.sink.dropped.clone()
    }

    /// Writes every event queued so far, flushes and stops the writer. Events sent later are dropped.
    pub async fn close(self) {
        // Waits for room: the writer is draining the queue.
        if self.sink.tx.send(Message::Close).await.is_err() {
            tracing::warn!("the audit log writer had already stopped");
        }
        if let Err(e) = self.writer.await {
            tracing::error!(error = %e, "the audit log writer failed");
        }
    }
}

/// The writer: one line per event, a flush whenever the queue is empty.
fn write_events(mut rx: mpsc::Receiver<Message>, mut output: Box<dyn LogOutput>, dropped: &DroppedEvents) {
    let mut unflushed = false;
    loop {
        let message = if unflushed {
            match rx.try_recv() {
                Ok(m) => Some(m),
                Err(TryRecvError::Empty) => {
                    flush(output.as_mut(), dropped);
                    unflushed = false;
                    continue;
                }
                Err(TryRecvError::Disconnected) => None,
            }
        } else {
            rx.blocking_recv()
        };
        let Some(Message::Event(event)) = message else { break };
        match event.to_line() {
            Ok(line) => match output.write_line(&line) {
                Ok(()) => unflushed = true,
                Err(e) => {
                    tracing::debug!(error = %e, "writing an audit event");
                    dropped.add(&format!("writing the audit log: {e}"));
                }
            },
            Err(e) => dropped.add(&format!("encoding the event: {e}")),
        }
    }
    rx.close();
    flush(output.as_mut(), dropped);
}

fn flush(output: &mut dyn LogOutput, dropped: &DroppedEvents) {
    if let Err(e) = output.flush() {
        dropped.add(&format!("flushing the audit log: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::mpsc as std_mpsc;
    use std::time::SystemTime;

    use super::*;
    use crate::audit::policy::Level;

    /// Lines written, shared with the test.
    #[derive(Clone, Default)]
    struct Memory(Arc<Mutex<Vec<String>>>, Arc<Mutex<usize>>);

    impl LogOutput for Memory {
        fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
            self.0.lock().unwrap().push(String::from_utf8_lossy(line).into_owned());
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            *self.1.lock().unwrap() += 1;
            Ok(())
        }
    }

    fn event(id: &str) -> Event {
        Event::new(Level::Metadata, id.into(), SystemTime::UNIX_EPOCH)
    }

    #[tokio::test]
    async fn writes_lines_in_order_and_flushes_on_close() {
        let memory = Memory::default();
        let log = AuditLog::start(Box::new(memory.clone()), 16);
        let sink = log.sink();
        for id in ["a", "b", "c"] {
            sink.send(event(id));
        }
        log.close().await;
        let lines = memory.0.lock().unwrap().clone();
        assert_eq!(lines.len(), 3);
        for (line, id) in lines.iter().zip(["a", "b", "c"]) {
            assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["auditID"], id);
        }
        assert!(*memory.1.lock().unwrap() >= 1, "flushed");
        sink.send(event("late"));
        assert_eq!(sink.dropped.get(), 1, "a closed log drops");
    }

    /// An output that blocks in its first write until released, telling the test it got there.
    struct Gate {
        entered: std_mpsc::Sender<()>,
        release: Option<std_mpsc::Receiver<()>>,
        memory: Memory,
    }

    impl LogOutput for Gate {
        fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
            if let Some(release) = self.release.take() {
                self.entered.send(()).unwrap();
                release.recv().unwrap();
            }
            self.memory.write_line(line)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts() {
        let (entered_tx, entered_rx) = std_mpsc::channel();
        let (release_tx, release_rx) = std_mpsc::channel();
        let memory = Memory::default();
        let gate = Gate { entered: entered_tx, release: Some(release_rx), memory: memory.clone() };
        let log = AuditLog::start(Box::new(gate), 2);
        let sink = log.sink();
        sink.send(event("first"));
        // The writer holds "first" and waits: the queue is empty again.
        tokio::task::spawn_blocking(move || entered_rx.recv().unwrap()).await.unwrap();
        sink.send(event("q1"));
        sink.send(event("q2"));
        assert_eq!(log.dropped().get(), 0);
        sink.send(event("x1"));
        sink.send(event("x2"));
        sink.send(event("x3"));
        assert_eq!(log.dropped().get(), 3, "never waits, counts each");
        release_tx.send(()).unwrap();
        log.close().await;
        let ids: Vec<String> = memory
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["auditID"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(ids, ["first", "q1", "q2"]);
    }

    struct Failing;

    impl LogOutput for Failing {
        fn write_line(&mut self, _: &[u8]) -> io::Result<()> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn write_failures_are_counted() {
        let log = AuditLog::start(Box::new(Failing), 4);
        let dropped = log.dropped();
        log.sink().send(event("a"));
        log.sink().send(event("b"));
        log.close().await;
        assert_eq!(dropped.get(), 2);
    }

    #[tokio::test]
    async fn rotating_file_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let rotation = super::super::rotate::Rotation { max_size_bytes: 1000, max_backups: 1, max_age: None };
        let log = AuditLog::start(Box::new(RotatingFile::new(path.clone(), rotation)), 64);
        for n in 0..20 {
            log.sink().send(event(&format!("event-{n}")));
        }
        log.close().await;
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 2, "the log and one backup");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().last().unwrap().contains("\"event-19\""));
        assert!(text.len() <= 1000);
    }
}
