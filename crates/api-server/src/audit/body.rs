//! The bodies the audit layer touches: [`ReplayBody`], a body whose beginning the layer read (to log
//! it) and which the next service reads whole, as sent; [`CompletionBody`], a response body that
//! writes the `ResponseComplete` event when it ends or is dropped (a watch's end, a client gone).

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};

use super::event::Event;
use super::log::AuditSink;
use super::policy::{Stage, StageSet};
use super::response::grpc_status;
use crate::rest::ResponseBody;

/// A body replayed from what was read of it, then the unread rest. What the audited service receives.
pub struct ReplayBody<B: Body> {
    read: VecDeque<Result<Frame<Bytes>, B::Error>>,
    /// Data bytes in `read`.
    read_len: u64,
    rest: Option<B>,
}

impl<B: Body> ReplayBody<B> {
    /// The body, untouched.
    pub fn new(body: B) -> ReplayBody<B> {
        ReplayBody { read: VecDeque::new(), read_len: 0, rest: Some(body) }
    }
}

// Nothing is pinned inside: the replayed frames are moved out, the rest is polled through `Pin::new`.
impl<B: Body + Unpin> Unpin for ReplayBody<B> {}

impl<B> Body for ReplayBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        if let Some(item) = this.read.pop_front() {
            if let Ok(data) = item.as_ref().map(Frame::data_ref) {
                this.read_len -= data.map_or(0, |d| d.len() as u64);
            }
            return Poll::Ready(Some(item));
        }
        match this.rest.as_mut() {
            Some(rest) => {
                let item = ready!(Pin::new(rest).poll_frame(cx));
                if item.is_none() {
                    this.rest = None;
                }
                Poll::Ready(item)
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty() && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self.rest.as_ref().map_or(SizeHint::with_exact(0), Body::size_hint);
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + self.read_len);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + self.read_len);
        }
        hint
    }
}

/// Reads `body` to its end if it has at most `limit` data bytes: the whole data, and the body to hand
/// on (replaying what was read). A longer body (by its size hint, or once `limit` is passed) or a
/// failing one gives `None`, and is handed on with nothing lost.
pub async fn read_bounded<B>(body: B, limit: usize) -> (Option<Bytes>, ReplayBody<B>)
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut replay = ReplayBody::new(body);
    let Some(rest) = replay.rest.as_mut() else { return (None, replay) };
    if rest.size_hint().lower() > limit as u64 {
        return (None, replay);
    }
    let mut data = BytesMut::new();
    let complete = loop {
        match rest.frame().await {
            None => break true,
            Some(Ok(frame)) => {
                if let Some(chunk) = frame.data_ref() {
                    data.extend_from_slice(chunk);
                    replay.read_len += chunk.len() as u64;
                }
                replay.read.push_back(Ok(frame));
                if data.len() > limit {
                    break false;
                }
            }
            Some(Err(e)) => {
                replay.read.push_back(Err(e));
                break false;
            }
        }
    };
    if complete {
        replay.rest = None;
        return (Some(data.freeze()), replay);
    }
    (None, replay)
}

/// The `ResponseComplete` event waiting for its response's end.
pub(super) struct Completion {
    pub event: Event,
    pub sink: AuditSink,
    pub omit: StageSet,
    /// Read `grpc-status` from the trailers.
    pub grpc: bool,
}

impl Completion {
    fn finish(mut self) {
        if self.omit.contains(Stage::ResponseComplete) {
            return;
        }
        self.event.stage = Stage::ResponseComplete;
        self.event.stage_timestamp = SystemTime::now();
        self.sink.send(self.event);
    }
}

/// A response body that sends its [`Completion`] at its end, on an error, or when dropped unfinished.
pub(super) struct CompletionBody {
    inner: ResponseBody,
    completion: Option<Completion>,
}

impl CompletionBody {
    pub fn wrap(inner: ResponseBody, completion: Completion) -> ResponseBody {
        ResponseBody::new(CompletionBody { inner, completion: Some(completion) })
    }

    fn finish(&mut self) {
        if let Some(c) = self.completion.take() {
            c.finish();
        }
    }
}

impl Body for CompletionBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let item = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &item {
            Some(Ok(frame)) => {
                let completion = self.completion.as_mut().filter(|c| c.grpc);
                if let (Some(trailers), Some(c)) = (frame.trailers_ref(), completion)
                    && let Some(status) = grpc_status(trailers)
                {
                    c.event.response_status = Some(status);
                }
                if self.inner.is_end_stream() {
                    self.finish();
                }
            }
            Some(Err(_)) | None => self.finish(),
        }
        Poll::Ready(item)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CompletionBody {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures::stream;
    use http_body_util::{Full, StreamBody};

    use super::*;

    type Chunks = StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

    fn chunks(parts: &[&'static str]) -> Chunks {
        let frames: Vec<_> =
            parts.iter().map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes())))).collect();
        StreamBody::new(stream::iter(frames))
    }

    async fn all<B: Body<Data = Bytes> + Unpin>(body: B) -> Bytes
    where
        B::Error: std::fmt::Debug,
    {
        body.collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn a_small_body_is_read_and_replayed() {
        let (read, replay) = read_bounded(chunks(&["ab", "cd", "e"]), 10).await;
        assert_eq!(read.as_deref(), Some(&b"abcde"[..]));
        assert_eq!(replay.size_hint().exact(), Some(5));
        assert_eq!(all(replay).await, "abcde");
    }

    #[tokio::test]
    async fn a_long_body_is_handed_on_whole() {
        let (read, replay) = read_bounded(chunks(&["abcd", "efgh", "ijkl"]), 6).await;
        assert_eq!(read, None, "more than 6 bytes");
        assert_eq!(all(replay).await, "abcdefghijkl");
        let (read, replay) = read_bounded(Full::new(Bytes::from_static(b"0123456789")), 4).await;
        assert_eq!(read, None, "too long by its size hint");
        assert_eq!(replay.size_hint().exact(), Some(10));
        assert_eq!(all(replay).await, "0123456789");
        let (read, replay) = read_bounded(chunks(&["abcd"]), 4).await;
        assert_eq!(read.as_deref(), Some(&b"abcd"[..]), "exactly the limit");
        assert_eq!(all(replay).await, "abcd");
        let (read, replay) = read_bounded(chunks(&[]), 4).await;
        assert_eq!(read.as_deref(), Some(&b""[..]));
        assert!(replay.is_end_stream());
    }

    #[tokio::test]
    async fn errors_are_replayed_in_order() {
        let frames: Vec<Result<Frame<Bytes>, &'static str>> = vec![
            Ok(Frame::data(Bytes::from_static(b"ab"))),
            Err("reset"),
            Ok(Frame::data(Bytes::from_static(b"cd"))),
        ];
        let (read, mut replay) = read_bounded(StreamBody::new(stream::iter(frames)), 100).await;
        assert_eq!(read, None);
        let first = replay.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "ab");
        assert_eq!(replay.frame().await.unwrap().unwrap_err(), "reset");
        assert_eq!(replay.frame().await.unwrap().unwrap().into_data().unwrap(), "cd");
        assert!(replay.frame().await.is_none());
    }

    #[tokio::test]
    async fn trailers_are_replayed() {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        let frames: Vec<Result<Frame<Bytes>, Infallible>> =
            vec![Ok(Frame::data(Bytes::from_static(b"x"))), Ok(Frame::trailers(trailers.clone()))];
        let (read, replay) = read_bounded(StreamBody::new(stream::iter(frames)), 100).await;
        assert_eq!(read.as_deref(), Some(&b"x"[..]));
        let collected = replay.collect().await.unwrap();
        assert_eq!(collected.trailers(), Some(&trailers));
    }
}
