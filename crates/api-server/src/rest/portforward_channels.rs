//! `pods/portforward` in Kubernetes' older WebSocket protocol (`v4.channel.k8s.io`), the one the
//! Python client's `kubernetes.stream.portforward` speaks: the ports are in the query (`ports=80,8080`),
//! one connection per port per session, and port `i` has two channels — `2i` data both ways and
//! `2i+1` errors to the client. Each channel's first message is its port number (two bytes, little
//! endian). The session ends when every port's connection has ended or the client closes.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{BoxStream, SelectAll};
use futures::{SinkExt, StreamExt};
use navarch_api::kubelet_proto::PortForwardInput;
use navarch_api::v1::Pod;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_tungstenite::tungstenite::Message;

use super::query::Query;
use super::status::StatusError;
use super::websocket::{self, Socket};
use crate::state::ApiState;

/// The subprotocol, as Kubernetes' kubelet serves it for port-forward.
pub const PROTOCOL: &str = "v4.channel.k8s.io";

/// How much client data may wait for the kubelet, per port.
const INPUT_QUEUE: usize = 16;

/// The ports of the query (`ports=80,8080`, or repeated), with Kubernetes' messages.
pub fn ports(q: &Query) -> Result<Vec<u16>, StatusError> {
    let mut ports = Vec::new();
    for p in q.all("ports").into_iter().flat_map(|v| v.split(',')).map(str::trim) {
        let n: u16 = p
            .parse()
            .map_err(|e| StatusError::bad_request(format!("unable to parse {p:?} as a port: {e}")))?;
        if n == 0 {
            return Err(StatusError::bad_request(format!("port {p:?} must be > 0")));
        }
        ports.push(n);
    }
    if ports.is_empty() {
        return Err(StatusError::bad_request("query parameter \"ports\" is required"));
    }
    Ok(ports)
}

/// Port `i`'s channels are `2i` and `2i + 1`.
fn frame(channel: usize, data: &[u8]) -> Message {
    websocket::channel_message(channel as u8, data)
}

type PortOutput = BoxStream<'static, (usize, Result<Vec<u8>, String>)>;

/// Serves one session (after the 101) until it ends.
pub async fn serve(state: Arc<ApiState>, pod: Pod, ws: Socket, ports: Vec<u16>) {
    let (mut sink, mut incoming) = ws.split();
    for (i, port) in ports.iter().enumerate() {
        for channel in [2 * i, 2 * i + 1] {
            if sink.send(frame(channel, &port.to_le_bytes())).await.is_err() {
                return;
            }
        }
    }
    let mut inputs: Vec<Option<mpsc::Sender<PortForwardInput>>> = Vec::new();
    let mut outputs: SelectAll<PortOutput> = SelectAll::new();
    match state.kubelets.port_forward(&pod).await {
        Ok(forwarder) => {
            for (i, port) in ports.iter().enumerate() {
                let (tx, rx) = mpsc::channel(INPUT_QUEUE);
                match forwarder.forward(*port, ReceiverStream::new(rx)).await {
                    Ok(out) => {
                        inputs.push(Some(tx));
                        outputs.push(
                            out.map(move |m| {
                                let r = match m {
                                    Ok(o) if !o.error.is_empty() => Err(o.error),
                                    Ok(o) => Ok(o.data),
                                    Err(s) => Err(s.message().to_string()),
                                };
                                (i, r)
                            })
                            .boxed(),
                        );
                    }
                    Err(e) => {
                        inputs.push(None);
                        let _ = sink.send(frame(2 * i + 1, e.to_string().as_bytes())).await;
                    }
                }
            }
        }
        Err(e) => {
            for i in 0..ports.len() {
                let _ = sink.send(frame(2 * i + 1, e.to_string().as_bytes())).await;
            }
        }
    }
    while !outputs.is_empty() {
        tokio::select! {
            msg = incoming.next() => {
                let data = match msg {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Text(t))) => Bytes::from(t),
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let Some((&channel, payload)) = data.split_first() else { continue };
                let channel = channel as usize;
                // Data channels only; what a client writes on an error channel means nothing.
                if channel.is_multiple_of(2)
                    && !payload.is_empty()
                    && let Some(Some(tx)) = inputs.get(channel / 2)
                {
                    let msg = PortForwardInput { data: payload.to_vec(), ..Default::default() };
                    if tx.send(msg).await.is_err() {
                        inputs[channel / 2] = None;
                    }
                }
            }
            out = outputs.next() => match out {
                Some((i, Ok(data))) => {
                    if !data.is_empty() && sink.send(frame(2 * i, &data)).await.is_err() {
                        return;
                    }
                }
                Some((i, Err(error))) => {
                    let _ = sink.send(frame(2 * i + 1, error.as_bytes())).await;
                }
                None => break,
            },
        }
    }
    let _ = sink.send(websocket::normal_close()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_from_the_query() {
        assert_eq!(ports(&Query::parse(Some("ports=80,8080"))).unwrap(), [80, 8080]);
        assert_eq!(ports(&Query::parse(Some("ports=80&ports=81"))).unwrap(), [80, 81]);
        assert_eq!(ports(&Query::parse(None)).unwrap_err().message, "query parameter \"ports\" is required");
        assert_eq!(ports(&Query::parse(Some("ports=0"))).unwrap_err().message, "port \"0\" must be > 0");
        assert!(
            ports(&Query::parse(Some("ports=http")))
                .unwrap_err()
                .message
                .starts_with("unable to parse \"http\" as a port")
        );
    }
}
