//! A SPDY/3.1 server session over one byte stream: two tasks owned by the [`Session`] (a reader that
//! decodes frames and routes them, a writer that encodes and sends what streams and the reader
//! queue), the table of open streams, and the stream handles the session's owner works with.
//!
//! The client opens streams (odd ids, increasing); each arrives as an [`IncomingStream`] that the
//! owner accepts (SYN_REPLY: client-go waits for it before using the stream) or refuses (RST_STREAM).
//! An accepted [`Stream`] splits into a [`RecvHalf`] (the client's data until its FIN) and a
//! [`SendHalf`] (data, then FIN). A stream is forgotten once FIN went both ways, on RST_STREAM
//! either way, or when its handles are dropped (unfinished: RST_STREAM CANCEL to the client). PINGs
//! from the client are echoed. A GOAWAY from the client, the end of the byte stream or an error
//! ends the session: [`Session::accept`] returns `None`, the streams' reads and writes fail.
//! [`Session::close`] sends GOAWAY and closes the connection; dropping the session aborts its tasks.
//!
//! No per-stream flow control (see the module above): a stream whose reader stops reading holds the
//! reader task once that stream's buffer is full, as spdystream's frame workers do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use super::SpdyError;
use super::frame::{self, Frame, GoAwayStatus, RstStatus};
use super::headers::{HeaderDecoder, HeaderEncoder, Headers};

/// Data frames sent are at most this large (spdystream reads any size up to 16 MiB).
const MAX_DATA_FRAME: usize = 32 * 1024;
/// Data frames buffered per stream between the reader task and the stream's [`RecvHalf`].
const STREAM_BUFFER: usize = 16;
/// Frames queued for the writer task.
const WRITE_QUEUE: usize = 64;
/// Streams accepted but not yet taken by [`Session::accept`].
const ACCEPT_QUEUE: usize = 16;
/// Streams open at once; more are refused.
const MAX_STREAMS: usize = 1024;
/// How long [`Session::close`] waits for its GOAWAY to be written.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

enum Command {
    Frame(Frame),
    /// Flush, shut the connection down for writing, stop.
    Close,
}

/// What the reader task and the stream handles share.
struct Shared {
    out: mpsc::Sender<Command>,
    streams: Mutex<HashMap<u32, Entry>>,
    /// Cancelled when the session has ended (either side).
    closed: CancellationToken,
    /// The newest stream id the client opened (GOAWAY's last-good id).
    last_remote: AtomicU32,
}

impl Shared {
    /// Queues a frame without waiting (control frames the reader or a `Drop` sends); a full queue
    /// drops it, which is logged.
    fn try_send(&self, f: Frame) {
        if let Err(e) = self.out.try_send(Command::Frame(f))
            && !self.closed.is_cancelled()
        {
            let mpsc::error::TrySendError::Full(Command::Frame(f)) = e else { return };
            tracing::debug!(frame = ?f, "SPDY write queue full; control frame dropped");
        }
    }

    /// Forgets a stream when nothing more can happen on it.
    fn forget_if_done(&self, state: &StreamState) {
        let done = state.reset.is_cancelled()
            || (state.remote_fin.load(Ordering::Acquire) && state.local_fin.load(Ordering::Acquire));
        if done {
            self.streams.lock().expect("stream table").remove(&state.id);
        }
    }
}

/// A stream's state, shared by the table and its handles.
struct StreamState {
    id: u32,
    /// Cancelled by RST_STREAM, either way.
    reset: CancellationToken,
    reset_status: AtomicU32,
    remote_fin: AtomicBool,
    local_fin: AtomicBool,
}

impl StreamState {
    fn reset_error(&self) -> SpdyError {
        SpdyError::StreamReset {
            stream_id: self.id,
            status: RstStatus(self.reset_status.load(Ordering::Acquire)),
        }
    }
}

struct Entry {
    state: Arc<StreamState>,
    /// The client's data for the stream; `None` after its FIN.
    inbound: Option<mpsc::Sender<Bytes>>,
}

/// What a stream's handles share; dropping the last one forgets the stream (resetting it if it
/// was not finished).
struct StreamCore {
    state: Arc<StreamState>,
    shared: Arc<Shared>,
}

impl StreamCore {
    fn check_writable(&self) -> Result<(), SpdyError> {
        if self.state.reset.is_cancelled() {
            Err(self.state.reset_error())
        } else if self.state.local_fin.load(Ordering::Acquire) {
            Err(SpdyError::StreamFinished(self.state.id))
        } else if self.shared.closed.is_cancelled() {
            Err(SpdyError::SessionClosed)
        } else {
            Ok(())
        }
    }

    async fn send_frame(&self, f: Frame) -> Result<(), SpdyError> {
        self.shared.out.send(Command::Frame(f)).await.map_err(|_| SpdyError::SessionClosed)
    }

    /// RST_STREAM with `status`, once.
    fn reset(&self, status: RstStatus) {
        if self.state.reset.is_cancelled() {
            return;
        }
        self.state.reset_status.store(status.0, Ordering::Release);
        self.state.reset.cancel();
        self.shared.try_send(Frame::RstStream { stream_id: self.state.id, status });
        self.shared.forget_if_done(&self.state);
    }
}

impl Drop for StreamCore {
    fn drop(&mut self) {
        if !self.state.local_fin.load(Ordering::Acquire) && !self.shared.closed.is_cancelled() {
            self.reset(RstStatus::CANCEL);
        }
        self.shared.streams.lock().expect("stream table").remove(&self.state.id);
    }
}

/// A stream the client opened, not yet answered.
pub struct IncomingStream {
    core: Arc<StreamCore>,
    inbound: mpsc::Receiver<Bytes>,
    headers: Headers,
}

impl IncomingStream {
    pub fn id(&self) -> u32 {
        self.core.state.id
    }

    /// The SYN_STREAM's headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Answers with SYN_REPLY (no headers).
    pub async fn accept(self) -> Result<Stream, SpdyError> {
        let stream_id = self.id();
        self.core.check_writable().or_else(|e| match e {
            // A unidirectional stream (or one opened with FIN from our side) still gets its reply.
            SpdyError::StreamFinished(_) => Ok(()),
            e => Err(e),
        })?;
        self.core.send_frame(Frame::SynReply { stream_id, fin: false, headers: Headers::new() }).await?;
        Ok(Stream {
            recv: RecvHalf { core: self.core.clone(), inbound: self.inbound },
            send: SendHalf { core: self.core },
            headers: self.headers,
        })
    }

    /// Answers with RST_STREAM.
    pub fn refuse(self, status: RstStatus) {
        self.core.reset(status);
    }
}

/// An accepted stream.
pub struct Stream {
    recv: RecvHalf,
    send: SendHalf,
    headers: Headers,
}

impl Stream {
    pub fn id(&self) -> u32 {
        self.send.id()
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    pub fn split(self) -> (RecvHalf, SendHalf) {
        (self.recv, self.send)
    }
}

/// The client's side of a stream. Dropping it discards whatever the client still sends.
pub struct RecvHalf {
    core: Arc<StreamCore>,
    inbound: mpsc::Receiver<Bytes>,
}

impl RecvHalf {
    /// The next data; `None` after the client's FIN.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, SpdyError> {
        let state = &self.core.state;
        tokio::select! {
            biased;
            _ = state.reset.cancelled() => Err(state.reset_error()),
            m = self.inbound.recv() => match m {
                Some(b) => Ok(Some(b)),
                None if state.remote_fin.load(Ordering::Acquire) => Ok(None),
                None if state.reset.is_cancelled() => Err(state.reset_error()),
                None => Err(SpdyError::SessionClosed),
            },
        }
    }
}

/// Our side of a stream.
pub struct SendHalf {
    core: Arc<StreamCore>,
}

impl SendHalf {
    pub fn id(&self) -> u32 {
        self.core.state.id
    }

    /// Sends data (in frames of at most 32 KiB), waiting while the write queue is full.
    pub async fn send(&self, data: Bytes) -> Result<(), SpdyError> {
        let mut rest = data;
        while !rest.is_empty() {
            self.core.check_writable()?;
            let chunk = rest.split_to(rest.len().min(MAX_DATA_FRAME));
            self.core.send_frame(Frame::Data { stream_id: self.id(), fin: false, data: chunk }).await?;
        }
        Ok(())
    }

    /// Sends FIN (once; later calls do nothing).
    pub async fn finish(&self) -> Result<(), SpdyError> {
        let state = &self.core.state;
        if state.local_fin.load(Ordering::Acquire) {
            return Ok(());
        }
        self.core.check_writable()?;
        state.local_fin.store(true, Ordering::Release);
        let r =
            self.core.send_frame(Frame::Data { stream_id: state.id, fin: true, data: Bytes::new() }).await;
        self.core.shared.forget_if_done(state);
        r
    }

    /// Sends RST_STREAM with `status` (once).
    pub fn reset(&self, status: RstStatus) {
        self.core.reset(status);
    }

    /// Resolves when the client resets the stream (or we did), with the reset as an error.
    pub async fn reset_by_peer(&self) -> SpdyError {
        self.core.state.reset.cancelled().await;
        self.core.state.reset_error()
    }
}

/// A server session. Its tasks end when the connection ends, on [`Session::close`], or when the
/// session is dropped.
pub struct Session {
    incoming: mpsc::Receiver<IncomingStream>,
    shared: Arc<Shared>,
    reader: AbortOnDropHandle<()>,
    writer: AbortOnDropHandle<()>,
}

impl Session {
    /// Starts serving the SPDY session the client runs on `io`. The tasks run in the current span.
    pub fn new<IO>(io: IO) -> Session
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (read, write) = tokio::io::split(io);
        let (out, out_rx) = mpsc::channel(WRITE_QUEUE);
        let (incoming_tx, incoming) = mpsc::channel(ACCEPT_QUEUE);
        let shared = Arc::new(Shared {
            out,
            streams: Mutex::new(HashMap::new()),
            closed: CancellationToken::new(),
            last_remote: AtomicU32::new(0),
        });
        let span = tracing::Span::current();
        let reader = Reader { shared: shared.clone(), decoder: HeaderDecoder::new(), incoming: incoming_tx };
        let reader = tokio::spawn(reader.run(read).instrument(span.clone()));
        let writer = tokio::spawn(write_loop(write, out_rx, shared.closed.clone()).instrument(span));
        Session {
            incoming,
            shared,
            reader: AbortOnDropHandle::new(reader),
            writer: AbortOnDropHandle::new(writer),
        }
    }

    /// The next stream the client opened; `None` once the session has ended.
    pub async fn accept(&mut self) -> Option<IncomingStream> {
        tokio::select! {
            s = self.incoming.recv() => s,
            _ = self.shared.closed.cancelled() => None,
        }
    }

    /// Resolves when the session has ended.
    pub fn closed(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.shared.closed.clone().cancelled_owned()
    }

    /// Sends GOAWAY (naming the last stream the client opened), flushes and closes the connection
    /// (waiting at most 2 s for a client that does not read), then ends the session.
    pub async fn close(mut self, status: GoAwayStatus) {
        let last_good_stream_id = self.shared.last_remote.load(Ordering::Acquire);
        let out = self.shared.out.clone();
        let sent = tokio::time::timeout(CLOSE_TIMEOUT, async {
            if !self.shared.closed.is_cancelled() {
                let _ = out.send(Command::Frame(Frame::GoAway { last_good_stream_id, status })).await;
                let _ = out.send(Command::Close).await;
                let _ = (&mut self.writer).await;
            }
        })
        .await;
        if sent.is_err() {
            tracing::debug!("the SPDY client did not take the GOAWAY in time");
        }
        self.shared.closed.cancel();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shared.closed.cancel();
        self.reader.abort();
        self.writer.abort();
    }
}

/// Encodes queued frames onto the connection, flushing whenever the queue runs empty.
async fn write_loop<W: AsyncWrite + Unpin>(
    write: W,
    mut rx: mpsc::Receiver<Command>,
    closed: CancellationToken,
) {
    let mut w = BufWriter::with_capacity(64 * 1024, write);
    let mut encoder = HeaderEncoder::new();
    let mut buf = BytesMut::with_capacity(MAX_DATA_FRAME + 64);
    let result: Result<(), SpdyError> = async {
        loop {
            let cmd = tokio::select! {
                c = rx.recv() => c,
                _ = closed.cancelled() => None,
            };
            match cmd {
                None => return Ok(()),
                Some(Command::Close) => {
                    w.flush().await.map_err(SpdyError::Io)?;
                    return w.shutdown().await.map_err(SpdyError::Io);
                }
                Some(Command::Frame(f)) => {
                    buf.clear();
                    frame::encode(&f, &mut encoder, &mut buf)?;
                    w.write_all(&buf).await.map_err(SpdyError::Io)?;
                    if rx.is_empty() {
                        w.flush().await.map_err(SpdyError::Io)?;
                    }
                }
            }
        }
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "SPDY session: writing failed");
    }
    closed.cancel();
}

/// The reading side: decodes frames and routes them to streams.
struct Reader {
    shared: Arc<Shared>,
    decoder: HeaderDecoder,
    incoming: mpsc::Sender<IncomingStream>,
}

impl Reader {
    async fn run<R: AsyncRead + Unpin>(mut self, mut read: R) {
        let closed = self.shared.closed.clone();
        let end = loop {
            let step = async {
                match frame::read_frame(&mut read, &mut self.decoder).await? {
                    Some(f) => self.handle(f).await,
                    None => Ok(false),
                }
            };
            tokio::select! {
                r = step => match r {
                    Ok(true) => {}
                    Ok(false) => break None,
                    Err(e) => break Some(e),
                },
                _ = closed.cancelled() => break None,
            }
        };
        match end {
            // A malformed frame: tell the client why (GOAWAY PROTOCOL_ERROR), if it still listens.
            Some(e @ (SpdyError::Frame { .. } | SpdyError::HeaderBlock { .. } | SpdyError::Version(_))) => {
                tracing::info!(error = %e, "SPDY session: protocol error from the client");
                let last_good_stream_id = self.shared.last_remote.load(Ordering::Acquire);
                self.shared
                    .try_send(Frame::GoAway { last_good_stream_id, status: GoAwayStatus::PROTOCOL_ERROR });
                if self.shared.out.try_send(Command::Close).is_ok() {
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, closed.cancelled()).await;
                }
            }
            Some(e) => tracing::debug!(error = %e, "SPDY session: reading failed"),
            None => tracing::debug!("SPDY session: the client ended it"),
        }
        closed.cancel();
        // Every stream's reads end (the senders go with the table).
        self.shared.streams.lock().expect("stream table").clear();
    }

    /// Routes one frame; `false` ends the session (GOAWAY from the client).
    async fn handle(&mut self, f: Frame) -> Result<bool, SpdyError> {
        match f {
            Frame::SynStream(s) => self.open(s).await,
            Frame::Data { stream_id, fin, data } => {
                let inbound = {
                    let mut table = self.shared.streams.lock().expect("stream table");
                    match table.get_mut(&stream_id) {
                        Some(e) if e.state.remote_fin.load(Ordering::Acquire) => {
                            tracing::debug!(stream_id, "data after FIN ignored");
                            return Ok(true);
                        }
                        Some(e) => {
                            let tx = if fin { e.inbound.take() } else { e.inbound.clone() };
                            Some((tx, e.state.clone()))
                        }
                        // Forgotten (we finished and dropped it) or never opened: nothing reads it.
                        None => None,
                    }
                };
                let Some((tx, state)) = inbound else { return Ok(true) };
                if let Some(tx) = tx.as_ref()
                    && !data.is_empty()
                {
                    // An error only means the stream's reader is gone: the data is discarded.
                    let _ = tx.send(data).await;
                }
                if fin {
                    state.remote_fin.store(true, Ordering::Release);
                    drop(tx);
                    self.shared.forget_if_done(&state);
                }
                Ok(true)
            }
            Frame::RstStream { stream_id, status } => {
                let entry = self.shared.streams.lock().expect("stream table").remove(&stream_id);
                if let Some(e) = entry {
                    tracing::debug!(stream_id, %status, "stream reset by the client");
                    e.state.reset_status.store(status.0, Ordering::Release);
                    e.state.reset.cancel();
                }
                Ok(true)
            }
            Frame::Ping { id } => {
                // Odd ids are the client's pings; even ones would answer ours, and we send none.
                if !id.is_multiple_of(2) {
                    self.shared.try_send(Frame::Ping { id });
                }
                Ok(true)
            }
            Frame::GoAway { last_good_stream_id, status } => {
                tracing::debug!(last_good_stream_id, status = status.0, "GOAWAY from the client");
                Ok(false)
            }
            Frame::SynReply { stream_id, .. } => {
                // We open no streams: nothing to reply to.
                self.shared.try_send(Frame::RstStream { stream_id, status: RstStatus::INVALID_STREAM });
                Ok(true)
            }
            Frame::Settings { .. }
            | Frame::WindowUpdate { .. }
            | Frame::Headers { .. }
            | Frame::Unknown { .. } => {
                tracing::trace!(frame = ?f, "ignored");
                Ok(true)
            }
        }
    }

    async fn open(&mut self, s: frame::SynStream) -> Result<bool, SpdyError> {
        let id = s.stream_id;
        let last = self.shared.last_remote.load(Ordering::Acquire);
        let refuse = |status| {
            tracing::debug!(stream_id = id, %status, "stream refused");
            self.shared.try_send(Frame::RstStream { stream_id: id, status });
            Ok(true)
        };
        if id == 0 {
            return Err(SpdyError::Frame { frame: "SYN_STREAM", reason: "stream id 0".into() });
        }
        // Client-initiated streams have odd, increasing ids.
        if id.is_multiple_of(2) || id <= last {
            return refuse(RstStatus::PROTOCOL_ERROR);
        }
        self.shared.last_remote.store(id, Ordering::Release);
        if self.shared.streams.lock().expect("stream table").len() >= MAX_STREAMS {
            return refuse(RstStatus::REFUSED_STREAM);
        }
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let state = Arc::new(StreamState {
            id,
            reset: CancellationToken::new(),
            reset_status: AtomicU32::new(0),
            remote_fin: AtomicBool::new(s.fin),
            local_fin: AtomicBool::new(s.unidirectional),
        });
        let inbound = if s.fin { None } else { Some(tx) };
        self.shared.streams.lock().expect("stream table").insert(id, Entry { state: state.clone(), inbound });
        let stream = IncomingStream {
            core: Arc::new(StreamCore { state, shared: self.shared.clone() }),
            inbound: rx,
            headers: s.headers,
        };
        // The owner stopped accepting: the stream is dropped, which resets it.
        let _ = self.incoming.send(stream).await;
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
