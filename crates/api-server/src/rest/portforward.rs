//! `pods/portforward`: Kubernetes' port-forward protocol (the kubelet's
//! `cri/streaming/portforward/httpstream.go`) on a SPDY/3.1 session ([`crate::spdy`]), whichever
//! envelope the upgrade used (WebSocket binary messages or the raw connection).
//!
//! For each local connection, kubectl opens two streams with the headers `streamType: error|data`,
//! `port: <n>` and `requestID: <id>`. When both streams of a request id are there, one `PortForward`
//! call to the pod's kubelet ([`crate::kubelet_relay::PodPortForwarder`], dialled once per session)
//! carries the data both ways: the client's FIN becomes the kubelet's half close, the end of the
//! kubelet's answer (the pod closed its side) FINs the data stream. A failure is written to the error
//! stream in Kubernetes' words (`error forwarding port 80 to pod <uid>, uid : failed to connect ...`)
//! before both streams are finished; the error stream is always finished, since kubectl waits for
//! it. Streams with bad headers are reset; a request whose second stream does not come within 30 s
//! gets `timed out waiting for streams`. The session ends when the client ends it, when the pod is
//! deleted (kubectl then says `lost connection to pod`) or when the api-server shuts down; its
//! forwards end with it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use navarch_api::kubelet_proto::{PortForwardInput, PortForwardOutput};
use navarch_api::v1::Pod;
use navarch_api::{Object, Resource};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::ApiError;
use crate::kubelet_relay::PodPortForwarder;
use crate::registry::ListOptions;
use crate::spdy::{GoAwayStatus, Headers, IncomingStream, RstStatus, SendHalf, Session, SpdyError, Stream};
use crate::state::ApiState;
use crate::watch_cache::EventType;
use crate::watch_stream::{WatchItem, WatchParams};

/// How long the second stream of a request may take (Kubernetes' `StreamCreationTimeout`).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages buffered from the client's data stream to the kubelet call.
const INPUT_BUFFER: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum PortForwardError {
    #[error("{0:?} header is required")]
    MissingHeader(&'static str),
    #[error("unable to parse {value:?} as a port: strconv.ParseUint: parsing {value:?}: {reason}")]
    BadPort { value: String, reason: &'static str },
    #[error("port {0:?} must be > 0")]
    ZeroPort(String),
    #[error("invalid stream type {0:?}")]
    BadStreamType(String),
    #[error("error processing stream for request {request_id}: {kind} stream already assigned")]
    DuplicateStream { request_id: String, kind: StreamKind },
    #[error("(conn={pod}, request={request_id}) timed out waiting for streams")]
    StreamTimeout { pod: String, request_id: String },
    #[error("error forwarding port {port} to pod {pod_id}, uid : {reason}")]
    Forward { port: u16, pod_id: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Error,
    Data,
}

impl std::fmt::Display for StreamKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StreamKind::Error => "error",
            StreamKind::Data => "data",
        })
    }
}

/// A stream's type and port, checked as the kubelet's `httpStreamReceived` does.
pub fn classify(headers: &Headers) -> Result<(StreamKind, u16), PortForwardError> {
    let port =
        headers.get("port").filter(|p| !p.is_empty()).ok_or(PortForwardError::MissingHeader("port"))?;
    let number = match port.parse::<u64>() {
        Ok(n) => u16::try_from(n).map_err(|_| "value out of range"),
        Err(_) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => Err("value out of range"),
        Err(_) => Err("invalid syntax"),
    }
    .map_err(|reason| PortForwardError::BadPort { value: port.to_string(), reason })?;
    if number == 0 {
        return Err(PortForwardError::ZeroPort(port.to_string()));
    }
    let kind = match headers.get("streamtype") {
        None | Some("") => return Err(PortForwardError::MissingHeader("streamType")),
        Some("error") => StreamKind::Error,
        Some("data") => StreamKind::Data,
        Some(other) => return Err(PortForwardError::BadStreamType(other.to_string())),
    };
    Ok((kind, number))
}

/// The request a stream belongs to: its `requestID`, or for clients too old to send one the id
/// Kubernetes derives from the stream id (error stream n, data stream n+2).
fn request_id(headers: &Headers, kind: StreamKind, stream_id: u32) -> String {
    match headers.get("requestid") {
        Some(id) if !id.is_empty() => id.to_string(),
        _ if kind == StreamKind::Data => stream_id.saturating_sub(2).to_string(),
        _ => stream_id.to_string(),
    }
}

/// Checks a port-forward request before the connection is upgraded: the pod exists and is bound to
/// a node whose kubelet has an address. Errors are Kubernetes' (`pods "web" not found`, `pod web
/// does not have a host assigned`).
pub async fn check(state: &ApiState, namespace: &str, name: &str) -> Result<Pod, ApiError> {
    let key = format!("{namespace}/{name}");
    state
        .call("portforward", "Pod", &key, async {
            let pod = match state.registry.get("Pod", namespace, name).await? {
                Object::Pod(p) => p,
                other => return Err(ApiError::Internal(format!("stored pod {key} is a {}", other.kind()))),
            };
            state.kubelets.port_forward_node(&pod).await?;
            Ok(pod)
        })
        .await
}

/// Serves the port-forward session the client runs on `io` (after the 101) until it ends.
pub async fn serve<IO>(state: Arc<ApiState>, pod: Pod, io: IO)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let m = pod.meta();
    let key = format!("{}/{}", m.namespace, m.name);
    let span = tracing::info_span!("portforward", pod = %key);
    let ctx =
        SessionContext { pod_key: key, pod_id: m.uid.clone(), creation_timeout: STREAM_CREATION_TIMEOUT };
    let backend =
        Arc::new(KubeletBackend { state: state.clone(), pod: pod.clone(), forwarder: Default::default() });
    let gone = pod_gone(state.clone(), pod);
    run(io, ctx, backend, gone, state.shutdown.clone()).instrument(span).await
}

/// Where forwarded connections go: the pod's kubelet, or a fake in tests.
pub(crate) trait Backend: Send + Sync + 'static {
    /// Starts forwarding one connection to `port`; `input` is the client's data. The answer's items
    /// are the pod's data (or an error, after which it ends); it ends when the pod's side closes.
    fn open(
        &self,
        port: u16,
        input: mpsc::Receiver<PortForwardInput>,
    ) -> impl Future<Output = Result<Output, String>> + Send;
}

pub(crate) type Output = BoxStream<'static, Result<PortForwardOutput, String>>;

/// The pod's kubelet, dialled at the first forwarded connection and kept for the session.
struct KubeletBackend {
    state: Arc<ApiState>,
    pod: Pod,
    forwarder: tokio::sync::OnceCell<PodPortForwarder>,
}

impl Backend for KubeletBackend {
    async fn open(&self, port: u16, input: mpsc::Receiver<PortForwardInput>) -> Result<Output, String> {
        let forwarder = self
            .forwarder
            .get_or_try_init(|| self.state.kubelets.port_forward(&self.pod))
            .await
            .map_err(|e| e.to_string())?;
        let output = forwarder
            .forward(port, tokio_stream::wrappers::ReceiverStream::new(input))
            .await
            .map_err(|e| e.to_string())?;
        Ok(output.map(|r| r.map_err(|s| s.message().to_string())).boxed())
    }
}

/// Resolves when the pod is gone (deleted, or replaced by a new pod of the same name), with why.
/// It lists the pod (which also gives a current revision to watch from), then watches it; a watch
/// that ends (it fell behind) starts over from a new list.
async fn pod_gone(state: Arc<ApiState>, pod: Pod) -> String {
    let m = pod.meta();
    let (namespace, uid) = (m.namespace.clone(), m.uid.clone());
    let field_selector = format!("metadata.name={}", m.name);
    let mut first = true;
    loop {
        if !first {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = state.shutdown.cancelled() => return "the api-server is shutting down".into(),
            }
        }
        first = false;
        let opts = ListOptions {
            namespace: namespace.clone(),
            field_selector: field_selector.clone(),
            ..Default::default()
        };
        let list = match state.registry.list("Pod", &opts).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "listing the pod");
                continue;
            }
        };
        if !list.items.iter().any(|o| o.meta().uid == uid) {
            return "the pod was deleted".into();
        }
        let params = WatchParams {
            kind: "Pod".into(),
            namespace: namespace.clone(),
            field_selector: field_selector.clone(),
            resource_version: list.resource_version.to_string(),
            ..Default::default()
        };
        let mut events = match state.watch(&params).await {
            Ok(events) => events,
            Err(e) => {
                tracing::debug!(error = %e, "watching the pod");
                continue;
            }
        };
        while let Some(item) = events.recv().await {
            match item {
                WatchItem::Event(e) if e.object.meta().uid != uid => return "the pod was replaced".into(),
                WatchItem::Event(e) if e.event_type == EventType::Deleted => {
                    return "the pod was deleted".into();
                }
                WatchItem::Event(_) | WatchItem::Bookmark { .. } => {}
                WatchItem::End(e) => {
                    tracing::debug!(error = %e, "pod watch ended");
                    break;
                }
            }
        }
    }
}

/// What the session's handling needs to know about the pod.
pub(crate) struct SessionContext {
    pub pod_key: String,
    /// The id error messages name (Kubernetes names the pod sandbox; navarch's is the pod's uid).
    pub pod_id: String,
    pub creation_timeout: Duration,
}

/// A request's streams while the second one is awaited.
struct PendingPair {
    data: Option<Stream>,
    error: Option<SendHalf>,
    deadline: Instant,
}

/// Serves one session until the client ends it, `gone` resolves or `shutdown` is cancelled.
pub(crate) async fn run<IO, B: Backend>(
    io: IO,
    ctx: SessionContext,
    backend: Arc<B>,
    gone: impl Future<Output = String> + Send,
    shutdown: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ctx = Arc::new(ctx);
    let mut session = Session::new(io);
    let mut pending: HashMap<String, PendingPair> = HashMap::new();
    let mut forwards = JoinSet::new();
    tokio::pin!(gone);
    tracing::debug!("port-forward session started");
    let reason = loop {
        let deadline = pending.values().map(|p| p.deadline).min();
        tokio::select! {
            s = session.accept() => match s {
                Some(s) => {
                    if let Some((request_id, data, error)) = add_stream(&ctx, &mut pending, s).await {
                        let span = tracing::info_span!("forward", request_id = %request_id);
                        forwards.spawn(forward(backend.clone(), ctx.clone(), data, error).instrument(span));
                    }
                }
                None => break "the client ended the session".to_string(),
            },
            why = &mut gone => break why,
            _ = shutdown.cancelled() => break "the api-server is shutting down".to_string(),
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                expire(&ctx, &mut pending).await;
            }
            Some(done) = forwards.join_next(), if !forwards.is_empty() => {
                if let Err(e) = done && e.is_panic() {
                    tracing::error!(error = %e, "a forward panicked");
                }
            }
        }
    };
    tracing::info!(reason, forwards = forwards.len(), "port-forward session ended");
    forwards.abort_all();
    while forwards.join_next().await.is_some() {}
    drop(pending);
    session.close(GoAwayStatus::OK).await;
}

/// Files a new stream under its request; returns the pair when it is complete.
async fn add_stream(
    ctx: &SessionContext,
    pending: &mut HashMap<String, PendingPair>,
    s: IncomingStream,
) -> Option<(String, Stream, SendHalf)> {
    let stream_id = s.id();
    let (kind, _port) = match classify(s.headers()) {
        Ok(k) => k,
        Err(e) => {
            tracing::info!(stream_id, error = %e, "stream rejected");
            s.refuse(RstStatus::CANCEL);
            return None;
        }
    };
    let request_id = request_id(s.headers(), kind, stream_id);
    let stream = match s.accept().await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(stream_id, error = %e, "stream gone before its reply");
            return None;
        }
    };
    let pair = pending.entry(request_id.clone()).or_insert_with(|| PendingPair {
        data: None,
        error: None,
        deadline: Instant::now() + ctx.creation_timeout,
    });
    let taken = match kind {
        StreamKind::Data => pair.data.is_some(),
        StreamKind::Error => pair.error.is_some(),
    };
    if taken {
        let e = PortForwardError::DuplicateStream { request_id: request_id.clone(), kind };
        tracing::info!(stream_id, error = %e, "stream rejected");
        if let Some(err) = &pair.error {
            let _ = err.send(Bytes::from(e.to_string())).await;
        }
        return None; // dropping the stream resets it
    }
    match kind {
        StreamKind::Data => pair.data = Some(stream),
        // Nothing is read from the error stream (kubectl finishes its side at once).
        StreamKind::Error => pair.error = Some(stream.split().1),
    }
    if pair.data.is_some() && pair.error.is_some() {
        let pair = pending.remove(&request_id)?;
        return Some((request_id, pair.data?, pair.error?));
    }
    None
}

/// Gives up on requests whose second stream did not come in time.
async fn expire(ctx: &SessionContext, pending: &mut HashMap<String, PendingPair>) {
    let now = Instant::now();
    let late: Vec<String> =
        pending.iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| id.clone()).collect();
    for request_id in late {
        let Some(pair) = pending.remove(&request_id) else { continue };
        let e = PortForwardError::StreamTimeout { pod: ctx.pod_key.clone(), request_id };
        tracing::info!(error = %e, "port-forward request incomplete");
        if let Some(err) = pair.error {
            let _ = err.send(Bytes::from(e.to_string())).await;
            let _ = err.finish().await;
        }
    }
}

/// How a forwarded connection ended, when not cleanly.
enum Ended {
    /// The forward failed: the reason goes to the client's error stream.
    Failed(String),
    /// The client reset the data stream, or the session ended.
    Client(SpdyError),
}

/// Forwards one connection, then finishes both streams (the error stream with the failure, if any).
async fn forward<B: Backend>(backend: Arc<B>, ctx: Arc<SessionContext>, data: Stream, error: SendHalf) {
    let port = data.headers().get("port").and_then(|p| p.parse::<u16>().ok()).unwrap_or_default();
    tracing::debug!(port, "forwarding a connection");
    let (from_client, to_client) = data.split();
    match relay(&*backend, port, from_client, &to_client).await {
        Ok(()) => tracing::debug!(port, "connection closed"),
        Err(Ended::Failed(reason)) => {
            let e = PortForwardError::Forward { port, pod_id: ctx.pod_id.clone(), reason };
            tracing::info!(error = %e, "port-forward failed");
            let _ = error.send(Bytes::from(e.to_string())).await;
        }
        Err(Ended::Client(e)) => tracing::debug!(port, reason = %e, "connection dropped by the client"),
    }
    let _ = error.finish().await;
    let _ = to_client.finish().await;
}

/// Copies the client's data to the kubelet and the pod's data back, until the pod's side closes
/// (the client's FIN only half-closes), the forward fails, or the client resets the stream.
async fn relay<B: Backend>(
    backend: &B,
    port: u16,
    mut from_client: crate::spdy::RecvHalf,
    to_client: &SendHalf,
) -> Result<(), Ended> {
    let (input, input_rx) = mpsc::channel(INPUT_BUFFER);
    let mut output = backend.open(port, input_rx).await.map_err(Ended::Failed)?;
    let up = async move {
        loop {
            match from_client.recv().await {
                Ok(Some(data)) => {
                    let msg = PortForwardInput { data: data.to_vec(), ..Default::default() };
                    if input.send(msg).await.is_err() {
                        // The kubelet's side ended; the output says how.
                        return Ok(());
                    }
                }
                Ok(None) => {
                    let _ = input.send(PortForwardInput { closed: true, ..Default::default() }).await;
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    };
    let down = async {
        while let Some(item) = output.next().await {
            let msg = item.map_err(Ended::Failed)?;
            if !msg.error.is_empty() {
                return Err(Ended::Failed(msg.error));
            }
            if !msg.data.is_empty() {
                to_client.send(Bytes::from(msg.data)).await.map_err(Ended::Client)?;
            }
        }
        Ok(())
    };
    tokio::pin!(up, down);
    let mut up_done = false;
    loop {
        tokio::select! {
            r = &mut down => return r,
            r = &mut up, if !up_done => match r {
                Ok(()) => up_done = true,
                Err(e) => return Err(Ended::Client(e)),
            },
            // kubectl resets the data stream when it is done with the connection.
            e = to_client.reset_by_peer() => return Err(Ended::Client(e)),
        }
    }
}

#[cfg(test)]
mod tests;
