//! WebSocket (RFC 6455) on the REST door, as kubectl's streams use it: recognising an upgrade
//! request, choosing a subprotocol the way Kubernetes' `wsstream` does (the first one the client
//! offers that the endpoint serves), the `101 Switching Protocols` answer, and a byte-stream view of
//! a WebSocket whose binary messages carry one byte stream (port-forward's tunnelled SPDY/3.1).

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ResponseBody;
use super::status::StatusError;

/// A server-side WebSocket on an upgraded HTTP/1.1 connection.
pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Bytes buffered between a WebSocket and its byte-stream view, each way.
const BYTE_STREAM_BUFFER: usize = 256 * 1024;
/// Largest binary message sent by the byte-stream view.
const BYTE_STREAM_MESSAGE: usize = 32 * 1024;

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether the request asks to switch to `protocol` (`websocket`, `SPDY/3.1`).
pub fn wants_upgrade(headers: &HeaderMap, protocol: &str) -> bool {
    header_has_token(headers, header::CONNECTION, "upgrade")
        && header_has_token(headers, header::UPGRADE, protocol)
}

/// The subprotocols the client offers, in its order (Python's client sends them in one header
/// without spaces, browsers and Go in one or several).
pub fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The first protocol the client offers that the endpoint serves.
pub fn choose_protocol(headers: &HeaderMap, served: &[&'static str]) -> Result<&'static str, StatusError> {
    let offered = offered_protocols(headers);
    offered.iter().find_map(|o| served.iter().find(|s| **s == o.as_str()).copied()).ok_or_else(|| {
        StatusError::bad_request(format!(
            "none of the offered WebSocket subprotocols [{}] is supported; this endpoint serves: {}",
            offered.join(", "),
            served.join(", ")
        ))
    })
}

/// The `101 Switching Protocols` answer to a WebSocket upgrade, speaking `protocol`.
pub fn accept(headers: &HeaderMap, protocol: &str) -> Result<Response<ResponseBody>, StatusError> {
    if headers.get(header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok()) != Some("13") {
        return Err(StatusError::bad_request("Sec-WebSocket-Version: only version 13 is supported"));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| StatusError::bad_request("Sec-WebSocket-Key: Required value"))?;
    let protocol = HeaderValue::from_str(protocol).expect("a subprotocol name is a valid header");
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, derive_accept_key(key.as_bytes()))
        .header(header::SEC_WEBSOCKET_PROTOCOL, protocol)
        .body(ResponseBody::default())
        .expect("a valid response"))
}

/// The WebSocket, once hyper has handed over the connection (after the 101 was sent).
pub async fn socket(upgrade: OnUpgrade) -> Result<Socket, hyper::Error> {
    let upgraded = upgrade.await?;
    Ok(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await)
}

/// A binary message of Kubernetes' WebSocket channel protocols: the channel byte, then the data.
pub fn channel_message(channel: u8, data: &[u8]) -> Message {
    let mut b = Vec::with_capacity(data.len() + 1);
    b.push(channel);
    b.extend_from_slice(data);
    Message::Binary(Bytes::from(b))
}

/// A normal close (1000).
pub fn normal_close() -> Message {
    Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }))
}

/// A byte stream over `ws`: what the client sends in binary messages is read from it, and what is
/// written to it goes to the client in binary messages. The pump is a task of `tasks`; it ends when
/// either side closes or `shutdown` fires, and the stream then reads end-of-file.
pub fn byte_stream(ws: Socket, tasks: &TaskTracker, shutdown: CancellationToken) -> DuplexStream {
    let (ours, theirs) = tokio::io::duplex(BYTE_STREAM_BUFFER);
    tasks.spawn(async move {
        let (mut sink, mut incoming) = ws.split();
        let (mut from_stream, mut to_stream) = tokio::io::split(ours);
        let inbound = async {
            while let Some(msg) = incoming.next().await {
                match msg {
                    Ok(Message::Binary(b)) => {
                        if to_stream.write_all(&b).await.is_err() {
                            break;
                        }
                    }
                    Ok(Message::Close(_)) | Err(_) => break,
                    // Text is not part of the stream; pings are answered by the socket itself.
                    Ok(_) => {}
                }
            }
            let _ = to_stream.shutdown().await;
        };
        let outbound = async {
            let mut buf = vec![0u8; BYTE_STREAM_MESSAGE];
            loop {
                match from_stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if sink.send(Message::Binary(Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = sink.send(normal_close()).await;
        };
        tokio::select! {
            _ = async { tokio::join!(inbound, outbound) } => {}
            _ = shutdown.cancelled() => {}
        }
    });
    theirs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn recognises_upgrades_and_protocols() {
        let h = headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-protocol", "v5.channel.k8s.io,v4.channel.k8s.io"),
        ]);
        assert!(wants_upgrade(&h, "websocket"));
        assert!(!wants_upgrade(&h, "SPDY/3.1"));
        assert_eq!(
            choose_protocol(&h, &["v4.channel.k8s.io", "v5.channel.k8s.io"]).unwrap(),
            "v5.channel.k8s.io"
        );
        let old = headers(&[
            ("sec-websocket-protocol", "base64.channel.k8s.io"),
            ("sec-websocket-protocol", "v4.channel.k8s.io"),
        ]);
        assert_eq!(
            choose_protocol(&old, &["v5.channel.k8s.io", "v4.channel.k8s.io"]).unwrap(),
            "v4.channel.k8s.io"
        );
        let none = headers(&[("sec-websocket-protocol", "channel.k8s.io")]);
        assert!(
            choose_protocol(&none, &["v5.channel.k8s.io"]).unwrap_err().message.contains("channel.k8s.io")
        );
    }

    #[test]
    fn accept_answers_rfc_6455_key() {
        // The example of RFC 6455 §1.3.
        let h =
            headers(&[("sec-websocket-version", "13"), ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")]);
        let r = accept(&h, "v5.channel.k8s.io").unwrap();
        assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(r.headers()[header::SEC_WEBSOCKET_ACCEPT], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(r.headers()[header::SEC_WEBSOCKET_PROTOCOL], "v5.channel.k8s.io");
        assert!(accept(&headers(&[("sec-websocket-version", "8")]), "x").is_err());
    }
}
