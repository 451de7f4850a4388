//! SPDY/3.1, server side, as much of it as Kubernetes' streaming clients use: kubectl port-forward
//! (client-go's `httpstream/spdy` over `moby/spdystream`) runs a SPDY session either on the raw
//! upgraded HTTP/1.1 connection or inside a WebSocket's binary messages.
//!
//! * [`frame`]: the frame format, read from and written to byte streams;
//! * [`headers`]: header blocks and their zlib compression with the SPDY/3 dictionary;
//! * [`session`]: a server session over any `AsyncRead + AsyncWrite`: streams the client opens
//!   (accepted with SYN_REPLY or refused with RST_STREAM), data with FIN half-close both ways,
//!   PING echo, RST_STREAM and GOAWAY.
//!
//! What the client does, and so what this does not: spdystream never sends or honours
//! WINDOW_UPDATE (SPDY/3.1's flow control), so none is enforced here either (enforcing the 64 KiB
//! default window would stall every stream after 64 KiB); SETTINGS are ignored; the server never
//! opens streams or pushes.

pub mod frame;
pub mod headers;
pub mod session;
#[cfg(test)]
pub(crate) mod test_client;

pub use frame::{Frame, GoAwayStatus, RstStatus};
pub use headers::Headers;
pub use session::{IncomingStream, RecvHalf, SendHalf, Session, Stream};

#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("SPDY connection: {0}")]
    Io(#[source] std::io::Error),
    #[error("malformed {frame} frame: {reason}")]
    Frame { frame: &'static str, reason: String },
    #[error("unsupported SPDY version {0} (only 3 is spoken)")]
    Version(u16),
    #[error("malformed header block of stream {stream_id}: {reason}")]
    HeaderBlock { stream_id: u32, reason: String },
    #[error("header compression: {0}")]
    Compression(String),
    #[error("stream {stream_id} was reset ({status})")]
    StreamReset { stream_id: u32, status: RstStatus },
    #[error("stream {0} is finished: nothing more may be sent on it")]
    StreamFinished(u32),
    #[error("the SPDY session is closed")]
    SessionClosed,
}
