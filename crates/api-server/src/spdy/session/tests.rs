//! The session against a small SPDY client built from the frame module, over an in-memory pipe.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;

use super::*;
use crate::spdy::test_client::Client;

fn pair() -> (Session, Client) {
    let (a, b) = tokio::io::duplex(1 << 20);
    (Session::new(a), Client::new(b))
}

async fn accept(s: &mut Session) -> Stream {
    let incoming = tokio::time::timeout(Duration::from_secs(5), s.accept()).await.unwrap().unwrap();
    incoming.accept().await.unwrap()
}

fn table_len(s: &Session) -> usize {
    s.shared.streams.lock().unwrap().len()
}

#[tokio::test]
async fn a_stream_is_replied_to_carries_data_both_ways_and_half_closes() {
    let (mut s, mut c) = pair();
    let id = c.open("data").await;
    let incoming = s.accept().await.unwrap();
    assert_eq!(incoming.id(), 1);
    assert_eq!(incoming.headers().get("streamtype"), Some("data"));
    let (mut rx, tx) = incoming.accept().await.unwrap().split();
    assert_eq!(c.recv().await, Some(Frame::SynReply { stream_id: id, fin: false, headers: Headers::new() }));

    c.data(id, b"GET / HTTP/1.0\r\n\r\n", false).await;
    assert_eq!(rx.recv().await.unwrap().unwrap(), &b"GET / HTTP/1.0\r\n\r\n"[..]);
    // The client's FIN: its side ends, ours stays open.
    c.data(id, b"", true).await;
    assert_eq!(rx.recv().await.unwrap(), None);
    tx.send(Bytes::from_static(b"HTTP/1.0 200 OK\r\n\r\nhello")).await.unwrap();
    assert_eq!(
        c.recv().await,
        Some(Frame::Data {
            stream_id: id,
            fin: false,
            data: Bytes::from_static(b"HTTP/1.0 200 OK\r\n\r\nhello")
        })
    );
    assert_eq!(table_len(&s), 1);
    tx.finish().await.unwrap();
    assert_eq!(c.recv().await, Some(Frame::Data { stream_id: id, fin: true, data: Bytes::new() }));
    // FIN both ways: forgotten; a second finish does nothing, sending more is refused.
    assert_eq!(table_len(&s), 0);
    tx.finish().await.unwrap();
    assert!(matches!(tx.send(Bytes::from_static(b"x")).await, Err(SpdyError::StreamFinished(1))));
    // Dropping a finished stream's handles sends nothing.
    drop((rx, tx));
    c.send(Frame::Ping { id: 1 }).await;
    assert_eq!(c.recv().await, Some(Frame::Ping { id: 1 }));
}

#[tokio::test]
async fn large_writes_are_split_and_streams_interleave() {
    let (mut s, mut c) = pair();
    let a = c.open("error").await;
    let b = c.open("data").await;
    let sa = accept(&mut s).await;
    let sb = accept(&mut s).await;
    assert_eq!((sa.id(), sb.id()), (a, b));
    for _ in 0..2 {
        assert!(matches!(c.recv().await, Some(Frame::SynReply { .. })));
    }
    let (mut ra, ta) = sa.split();
    let (mut rb, tb) = sb.split();
    c.data(b, b"to b", false).await;
    c.data(a, b"to a", false).await;
    assert_eq!(rb.recv().await.unwrap().unwrap(), &b"to b"[..]);
    assert_eq!(ra.recv().await.unwrap().unwrap(), &b"to a"[..]);

    let big = Bytes::from(vec![9u8; 100_000]);
    tb.send(big.clone()).await.unwrap();
    ta.send(Bytes::from_static(b"small")).await.unwrap();
    let mut got = BytesMut::new();
    let mut sizes = Vec::new();
    while got.len() < big.len() {
        match c.recv().await.unwrap() {
            Frame::Data { stream_id, data, .. } if stream_id == b => {
                sizes.push(data.len());
                got.extend_from_slice(&data);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got.freeze(), big);
    assert_eq!(sizes, [32768, 32768, 32768, 1696]);
    assert_eq!(
        c.recv().await,
        Some(Frame::Data { stream_id: a, fin: false, data: Bytes::from_static(b"small") })
    );
}

#[tokio::test]
async fn resets_both_ways() {
    let (mut s, mut c) = pair();
    let id = c.open("data").await;
    let (mut rx, tx) = accept(&mut s).await.split();
    c.recv().await.unwrap();
    // The client resets: reads and writes fail, and the stream is forgotten.
    c.send(Frame::RstStream { stream_id: id, status: RstStatus::CANCEL }).await;
    let e = rx.recv().await.unwrap_err();
    assert_eq!(e.to_string(), "stream 1 was reset (CANCEL)");
    assert!(matches!(
        tx.send(Bytes::from_static(b"x")).await,
        Err(SpdyError::StreamReset { stream_id: 1, .. })
    ));
    assert!(matches!(tx.reset_by_peer().await, SpdyError::StreamReset { stream_id: 1, .. }));
    assert_eq!(table_len(&s), 0);

    // We reset: RST_STREAM goes out once.
    let id = c.open("data").await;
    let (_rx, tx) = accept(&mut s).await.split();
    c.recv().await.unwrap();
    tx.reset(RstStatus::INTERNAL_ERROR);
    tx.reset(RstStatus::INTERNAL_ERROR);
    assert_eq!(c.recv().await, Some(Frame::RstStream { stream_id: id, status: RstStatus::INTERNAL_ERROR }));

    // Handles dropped before FIN: RST_STREAM CANCEL.
    let id = c.open("data").await;
    let stream = accept(&mut s).await;
    c.recv().await.unwrap();
    drop(stream);
    assert_eq!(c.recv().await, Some(Frame::RstStream { stream_id: id, status: RstStatus::CANCEL }));

    // Refused, or dropped unanswered.
    let id = c.open("bogus").await;
    s.accept().await.unwrap().refuse(RstStatus::REFUSED_STREAM);
    assert_eq!(c.recv().await, Some(Frame::RstStream { stream_id: id, status: RstStatus::REFUSED_STREAM }));
    let id = c.open("bogus").await;
    drop(s.accept().await.unwrap());
    assert_eq!(c.recv().await, Some(Frame::RstStream { stream_id: id, status: RstStatus::CANCEL }));
    assert_eq!(table_len(&s), 0);
}

#[tokio::test]
async fn stream_ids_must_be_odd_and_increasing() {
    let (mut s, mut c) = pair();
    c.next_id = 5;
    c.open("data").await;
    let _first = accept(&mut s).await;
    c.recv().await.unwrap();
    for bad in [3, 5, 8] {
        c.next_id = bad;
        c.open("data").await;
        assert_eq!(
            c.recv().await,
            Some(Frame::RstStream { stream_id: bad, status: RstStatus::PROTOCOL_ERROR })
        );
    }
    // Data for a stream that does not exist is dropped; the session goes on.
    c.data(99, b"nobody", false).await;
    c.next_id = 7;
    c.open("data").await;
    assert_eq!(accept(&mut s).await.id(), 7);
}

#[tokio::test]
async fn pings_are_echoed_and_the_rest_ignored() {
    let (mut s, mut c) = pair();
    c.send(Frame::Settings {
        clear: false,
        entries: vec![frame::Setting { flags: 0, id: 7, value: 1 << 20 }],
    })
    .await;
    c.send(Frame::WindowUpdate { stream_id: 1, delta: 1000 }).await;
    c.send(Frame::Ping { id: 2 }).await; // an answer to a ping we never sent: ignored
    c.send(Frame::Ping { id: 3 }).await;
    assert_eq!(c.recv().await, Some(Frame::Ping { id: 3 }));
    // The header context stays in step through HEADERS frames nobody reads.
    let mut h = Headers::new();
    h.insert("x", "y");
    c.send(Frame::Headers { stream_id: 1, fin: false, headers: h }).await;
    c.open("data").await;
    assert_eq!(accept(&mut s).await.headers().get("streamtype"), Some("data"));
}

#[tokio::test]
async fn goaway_or_eof_from_the_client_ends_the_session() {
    let (mut s, mut c) = pair();
    c.open("data").await;
    let (mut rx, tx) = accept(&mut s).await.split();
    c.send(Frame::GoAway { last_good_stream_id: 0, status: GoAwayStatus::OK }).await;
    assert!(s.accept().await.is_none());
    s.closed().await;
    assert!(matches!(rx.recv().await, Err(SpdyError::SessionClosed)));
    assert!(matches!(tx.send(Bytes::from_static(b"x")).await, Err(SpdyError::SessionClosed)));

    let (mut s, c) = pair();
    drop(c);
    assert!(s.accept().await.is_none());
}

#[tokio::test]
async fn close_sends_goaway_and_ends_the_connection() {
    let (mut s, mut c) = pair();
    c.open("error").await;
    c.open("data").await;
    let _a = accept(&mut s).await;
    let _b = accept(&mut s).await;
    c.recv().await.unwrap();
    c.recv().await.unwrap();
    s.close(GoAwayStatus::OK).await;
    assert_eq!(c.recv().await, Some(Frame::GoAway { last_good_stream_id: 3, status: GoAwayStatus::OK }));
    assert_eq!(c.recv().await, None);
}

#[tokio::test]
async fn a_malformed_frame_gets_goaway_protocol_error() {
    let (mut s, mut c) = pair();
    // A PING with a 2-byte payload.
    c.w.write_all(&[0x80, 0x03, 0x00, 0x06, 0, 0, 0, 2, 0, 1]).await.unwrap();
    assert!(s.accept().await.is_none());
    assert_eq!(
        c.recv().await,
        Some(Frame::GoAway { last_good_stream_id: 0, status: GoAwayStatus::PROTOCOL_ERROR })
    );
    assert_eq!(c.recv().await, None);
}

#[tokio::test]
async fn kubectls_bytes_make_two_streams() {
    use crate::spdy::test_client::KUBECTL_WIRE;
    let (mut s, mut c) = pair();
    // Up to the data stream's request: the reset comes once we answered.
    let reset_at = KUBECTL_WIRE.len() - 16;
    c.w.write_all(&KUBECTL_WIRE[..reset_at]).await.unwrap();
    let error = accept(&mut s).await;
    let data = accept(&mut s).await;
    assert_eq!(
        (error.headers().get("streamtype"), data.headers().get("streamtype")),
        (Some("error"), Some("data"))
    );
    let (mut error_rx, _error_tx) = error.split();
    let (mut data_rx, data_tx) = data.split();
    assert_eq!(error_rx.recv().await.unwrap(), None, "kubectl finishes the error stream at once");
    let request = data_rx.recv().await.unwrap().unwrap();
    assert!(request.starts_with(b"GET / HTTP/1.0\r\n"));
    for id in [1, 3] {
        assert_eq!(
            c.recv().await,
            Some(Frame::SynReply { stream_id: id, fin: false, headers: Headers::new() })
        );
    }
    c.w.write_all(&KUBECTL_WIRE[reset_at..]).await.unwrap();
    assert!(matches!(
        data_tx.reset_by_peer().await,
        SpdyError::StreamReset { stream_id: 3, status: RstStatus::CANCEL }
    ));
}
