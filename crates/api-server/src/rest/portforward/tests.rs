//! The port-forward protocol against a fake kubelet, driven by the test SPDY client as kubectl
//! drives it: an error and a data stream per connection, FIN, resets, several connections at once.

use std::collections::HashMap;

use tokio::sync::oneshot;
use tokio_stream::wrappers::ReceiverStream;

use super::*;
use crate::spdy::Frame;
use crate::spdy::test_client::Client;

/// Port 80 echoes upper-cased until the client's half close, then says `<eof>` and closes; 81
/// cannot connect; 82 fails after connecting; 83 never answers.
struct Fake;

impl Backend for Fake {
    async fn open(&self, port: u16, input: mpsc::Receiver<PortForwardInput>) -> Result<Output, String> {
        let out = |data: &[u8]| Ok(PortForwardOutput { data: data.to_vec(), ..Default::default() });
        match port {
            80 => Ok(ReceiverStream::new(input)
                .take_while(|m| futures::future::ready(!m.closed))
                .map(move |m| out(&m.data.to_ascii_uppercase()))
                .chain(futures::stream::once(async move { out(b"<eof>") }))
                .boxed()),
            81 => {
                Err("failed to connect to localhost:81 inside namespace \"uid-1\": connection refused".into())
            }
            82 => Ok(futures::stream::iter([Ok(PortForwardOutput {
                error: "it broke".into(),
                ..Default::default()
            })])
            .boxed()),
            _ => Ok(futures::stream::pending().boxed()),
        }
    }
}

struct Harness {
    c: Client,
    gone: Option<oneshot::Sender<String>>,
    session: tokio::task::JoinHandle<()>,
}

fn start(creation_timeout: Duration) -> Harness {
    let (a, b) = tokio::io::duplex(1 << 20);
    let (tx, rx) = oneshot::channel::<String>();
    let gone = async move {
        match rx.await {
            Ok(why) => why,
            Err(_) => std::future::pending().await,
        }
    };
    let ctx = SessionContext { pod_key: "default/web".into(), pod_id: "uid-1".into(), creation_timeout };
    let session = tokio::spawn(run(a, ctx, Arc::new(Fake), gone, CancellationToken::new()));
    Harness { c: Client::new(b), gone: Some(tx), session }
}

/// What the client saw on one stream.
#[derive(Debug, Default, Clone, PartialEq)]
struct Seen {
    replied: bool,
    data: Vec<u8>,
    fin: bool,
    reset: Option<RstStatus>,
}

impl Seen {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
    fn closed(&self) -> bool {
        self.fin || self.reset.is_some()
    }
}

/// Reads frames until `done` holds for what was seen.
async fn until(c: &mut Client, seen: &mut HashMap<u32, Seen>, done: impl Fn(&HashMap<u32, Seen>) -> bool) {
    while !done(seen) {
        match c.recv().await.expect("the session ended early") {
            Frame::SynReply { stream_id, .. } => seen.entry(stream_id).or_default().replied = true,
            Frame::Data { stream_id, fin, data } => {
                let s = seen.entry(stream_id).or_default();
                assert!(!s.fin, "data after FIN on stream {stream_id}");
                s.data.extend_from_slice(&data);
                s.fin |= fin;
            }
            Frame::RstStream { stream_id, status } => seen.entry(stream_id).or_default().reset = Some(status),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn is(seen: &HashMap<u32, Seen>, id: u32, f: impl Fn(&Seen) -> bool) -> bool {
    seen.get(&id).is_some_and(f)
}

/// Opens the error and data streams of request `request` to `port`, as kubectl does.
async fn connect(c: &mut Client, port: &str, request: &str) -> (u32, u32) {
    let e = c.open_with(&[("streamType", "error"), ("port", port), ("requestID", request)]).await;
    c.data(e, b"", true).await; // kubectl writes nothing on the error stream
    let d = c.open_with(&[("streamType", "data"), ("port", port), ("requestID", request)]).await;
    (e, d)
}

#[tokio::test]
async fn forwards_a_connection_both_ways_with_half_close() {
    let mut h = start(STREAM_CREATION_TIMEOUT);
    let (e, d) = connect(&mut h.c, "80", "0").await;
    let mut seen = HashMap::new();
    until(&mut h.c, &mut seen, |s| is(s, e, |x| x.replied) && is(s, d, |x| x.replied)).await;
    h.c.data(d, b"hello ", false).await;
    h.c.data(d, b"world", false).await;
    until(&mut h.c, &mut seen, |s| is(s, d, |x| x.data.len() == 11)).await;
    assert_eq!(seen[&d].text(), "HELLO WORLD");
    // The client's FIN half-closes: the pod's side still answers, then closes.
    h.c.data(d, b"", true).await;
    until(&mut h.c, &mut seen, |s| is(s, d, |x| x.fin) && is(s, e, |x| x.fin)).await;
    assert_eq!(seen[&d].text(), "HELLO WORLD<eof>");
    assert_eq!(seen[&e].text(), "", "no error");
    assert!(seen.values().all(|s| s.reset.is_none()), "{seen:?}");
}

#[tokio::test]
async fn failures_go_to_the_error_stream_in_kubernetes_words() {
    let mut h = start(STREAM_CREATION_TIMEOUT);
    let mut seen = HashMap::new();
    let (e1, d1) = connect(&mut h.c, "81", "0").await;
    let (e2, d2) = connect(&mut h.c, "82", "1").await;
    until(&mut h.c, &mut seen, |s| [e1, d1, e2, d2].iter().all(|id| is(s, *id, |x| x.fin))).await;
    assert_eq!(
        seen[&e1].text(),
        "error forwarding port 81 to pod uid-1, uid : failed to connect to localhost:81 inside namespace \"uid-1\": connection refused"
    );
    assert_eq!(seen[&e2].text(), "error forwarding port 82 to pod uid-1, uid : it broke");
    assert_eq!((seen[&d1].text(), seen[&d2].text()), (String::new(), String::new()));
    // The session goes on.
    let (e, d) = connect(&mut h.c, "80", "2").await;
    h.c.data(d, b"again", true).await;
    until(&mut h.c, &mut seen, |s| is(s, d, |x| x.fin) && is(s, e, |x| x.fin)).await;
    assert_eq!(seen[&d].text(), "AGAIN<eof>");
}

#[tokio::test]
async fn concurrent_connections_share_one_session() {
    let mut h = start(STREAM_CREATION_TIMEOUT);
    let mut seen = HashMap::new();
    // Ten connections, their streams opened interleaved: all error streams, then the data streams
    // in reverse order.
    let mut errors = Vec::new();
    for r in 0..10 {
        let id =
            h.c.open_with(&[("streamType", "error"), ("port", "80"), ("requestID", &r.to_string())]).await;
        errors.push(id);
    }
    let mut data = HashMap::new();
    for r in (0..10).rev() {
        let id =
            h.c.open_with(&[("streamType", "data"), ("port", "80"), ("requestID", &r.to_string())]).await;
        data.insert(r, id);
    }
    const WORDS: [&[u8]; 10] = [b"a0", b"b1", b"c2", b"d3", b"e4", b"f5", b"g6", b"h7", b"i8", b"j9"];
    for (r, word) in WORDS.iter().enumerate() {
        h.c.data(data[&r], word, true).await;
    }
    let ids: Vec<u32> = data.values().copied().chain(errors.iter().copied()).collect();
    until(&mut h.c, &mut seen, |s| ids.iter().all(|id| is(s, *id, |x| x.fin))).await;
    for (r, word) in WORDS.iter().enumerate() {
        let expected = format!("{}<eof>", String::from_utf8_lossy(word).to_uppercase());
        assert_eq!(seen[&data[&r]].text(), expected);
    }
    assert!(errors.iter().all(|e| seen[e].data.is_empty()));
}

#[tokio::test]
async fn requests_without_an_id_pair_by_stream_id() {
    let mut h = start(STREAM_CREATION_TIMEOUT);
    let e = h.c.open_with(&[("streamType", "error"), ("port", "80")]).await;
    let d = h.c.open_with(&[("streamType", "data"), ("port", "80")]).await;
    h.c.data(d, b"old client", true).await;
    let mut seen = HashMap::new();
    until(&mut h.c, &mut seen, |s| is(s, d, |x| x.fin) && is(s, e, |x| x.fin)).await;
    assert_eq!(seen[&d].text(), "OLD CLIENT<eof>");
}

#[tokio::test]
async fn bad_streams_are_reset_and_lone_streams_time_out() {
    let mut h = start(Duration::from_millis(300));
    let mut seen = HashMap::new();
    let no_port = h.c.open_with(&[("streamType", "data"), ("requestID", "0")]).await;
    let bad_type = h.c.open_with(&[("streamType", "stdin"), ("port", "80"), ("requestID", "0")]).await;
    let bad_port = h.c.open_with(&[("streamType", "data"), ("port", "http"), ("requestID", "0")]).await;
    until(&mut h.c, &mut seen, |s| [no_port, bad_type, bad_port].iter().all(|id| is(s, *id, |x| x.closed())))
        .await;
    for id in [no_port, bad_type, bad_port] {
        assert_eq!(seen[&id].reset, Some(RstStatus::CANCEL), "stream {id}: {:?}", seen[&id]);
    }
    // A second data stream for a request is refused, and the request's error stream says so.
    let e = h.c.open_with(&[("streamType", "error"), ("port", "80"), ("requestID", "7")]).await;
    let d1 = h.c.open_with(&[("streamType", "data"), ("port", "83"), ("requestID", "8")]).await;
    let d2 = h.c.open_with(&[("streamType", "data"), ("port", "83"), ("requestID", "8")]).await;
    until(&mut h.c, &mut seen, |s| is(s, d2, |x| x.reset.is_some()) && is(s, d1, |x| x.replied)).await;
    // Alone, each request times out: the one with an error stream is told so, the other's stream
    // is reset.
    until(&mut h.c, &mut seen, |s| is(s, e, |x| x.fin) && is(s, d1, |x| x.closed())).await;
    assert_eq!(seen[&e].text(), "(conn=default/web, request=7) timed out waiting for streams");
    assert_eq!(seen[&d1].reset, Some(RstStatus::CANCEL));
}

#[tokio::test]
async fn a_reset_data_stream_ends_the_forward_and_finishes_the_error_stream() {
    let mut h = start(STREAM_CREATION_TIMEOUT);
    let (e, d) = connect(&mut h.c, "83", "0").await;
    let mut seen = HashMap::new();
    until(&mut h.c, &mut seen, |s| is(s, d, |x| x.replied)).await;
    h.c.send(Frame::RstStream { stream_id: d, status: RstStatus::CANCEL }).await;
    // kubectl waits for the error stream's end after resetting the data stream.
    until(&mut h.c, &mut seen, |s| is(s, e, |x| x.fin)).await;
    assert_eq!(seen[&e].text(), "");
}

#[tokio::test]
async fn the_pod_going_away_ends_the_session() {
    let mut h = start(STREAM_CREATION_TIMEOUT);
    let (_e, d) = connect(&mut h.c, "83", "0").await;
    let mut seen = HashMap::new();
    until(&mut h.c, &mut seen, |s| is(s, d, |x| x.replied)).await;
    h.gone.take().unwrap().send("the pod was deleted".into()).unwrap();
    // The forward ends (its streams finish), then GOAWAY and the end of the connection.
    let mut goaway = None;
    while let Some(f) = h.c.recv().await {
        if let Frame::GoAway { last_good_stream_id, status } = f {
            goaway = Some((last_good_stream_id, status));
        }
    }
    assert_eq!(goaway, Some((3, GoAwayStatus::OK)));
    tokio::time::timeout(Duration::from_secs(5), h.session).await.unwrap().unwrap();
}

#[tokio::test]
async fn the_client_ending_the_session_ends_its_forwards() {
    let mut h = start(STREAM_CREATION_TIMEOUT);
    let (_e, d) = connect(&mut h.c, "83", "0").await;
    let mut seen = HashMap::new();
    until(&mut h.c, &mut seen, |s| is(s, d, |x| x.replied)).await;
    h.c.send(Frame::GoAway { last_good_stream_id: 0, status: GoAwayStatus::OK }).await;
    tokio::time::timeout(Duration::from_secs(5), h.session).await.unwrap().unwrap();
}

#[test]
fn headers_are_checked_as_the_kubelet_does() {
    let h = |pairs: &[(&str, &str)]| {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.insert(n, v);
        }
        h
    };
    let err = |pairs: &[(&str, &str)]| classify(&h(pairs)).unwrap_err().to_string();
    assert_eq!(classify(&h(&[("streamtype", "data"), ("port", "8080")])).unwrap(), (StreamKind::Data, 8080));
    assert_eq!(err(&[("streamtype", "data")]), "\"port\" header is required");
    assert_eq!(
        err(&[("port", "http")]),
        "unable to parse \"http\" as a port: strconv.ParseUint: parsing \"http\": invalid syntax"
    );
    assert_eq!(
        err(&[("port", "70000")]),
        "unable to parse \"70000\" as a port: strconv.ParseUint: parsing \"70000\": value out of range"
    );
    assert_eq!(err(&[("port", "0")]), "port \"0\" must be > 0");
    assert_eq!(err(&[("port", "80")]), "\"streamType\" header is required");
    assert_eq!(err(&[("port", "80"), ("streamtype", "stdout")]), "invalid stream type \"stdout\"");
    assert_eq!(request_id(&h(&[("requestid", "12")]), StreamKind::Data, 5), "12");
    assert_eq!(request_id(&h(&[]), StreamKind::Error, 5), "5");
    assert_eq!(request_id(&h(&[]), StreamKind::Data, 7), "5");
}
