//! Port-forward on the node (the `PortForward` rpc): finding the network namespace a pod's
//! containers run in (from the newest container's OCI spec, or the pinned namespace when no
//! container exists yet; none for `hostNetwork` pods), connecting to `localhost:<port>` *inside*
//! it, so that listeners bound to the pod's loopback are reachable, and copying data both ways.
//!
//! The connection is made by a thread of its own that enters the namespace with setns(2) and ends
//! after the connect (a thread that changed namespace never runs anything else); the socket stays in
//! the pod's namespace and is handed back to the runtime. IPv4 is tried first, then IPv6, as
//! containerd's CRI does, and a failure is described in its words. The client's half close
//! (`closed`, or the end of its input) shuts the socket down for writing; the pod closing its side
//! ends the answer, and with it the call.

use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{Stream, StreamExt};
use navarch_api::kubelet_proto::{PortForwardInput, PortForwardOutput, PortForwardStart};
use nix::sched::{CloneFlags, setns};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::containerd::{Containerd, RuntimeError};
use crate::pods::LABEL_POD_UID;

/// How long one connect may take (a full accept backlog drops SYNs rather than refusing).
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest chunk read from the pod's socket per message.
const READ_CHUNK: usize = 32 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PortForwardError {
    #[error("port: Invalid value: {0}: must be between 1 and 65535")]
    BadPort(i32),
    #[error("pod not found ({0:?})")]
    PodNotFound(String),
    #[error(
        "container {container} of pod {pod:?} has a network namespace of its own, without a path to enter"
    )]
    PrivateNetwork { container: String, pod: String },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("failed to execute portforward in network namespace {netns:?}: {source}")]
    Enter { netns: String, source: std::io::Error },
    #[error(
        "failed to execute portforward in network namespace {netns:?}: failed to connect to localhost:{port} inside namespace {pod_id:?}, IPv4: {v4} IPv6 {v6} "
    )]
    Connect { netns: String, port: u16, pod_id: String, v4: Box<DialError>, v6: Box<DialError> },
    #[error("port-forward to port {port}: the connecting thread {reason}")]
    Thread { port: u16, reason: String },
    #[error("failed to execute portforward for {pod_id:?} port {port}: {source}")]
    Copy { pod_id: String, port: u16, source: std::io::Error },
}

impl From<PortForwardError> for Status {
    fn from(e: PortForwardError) -> Status {
        match &e {
            PortForwardError::BadPort(_) => Status::invalid_argument(e.to_string()),
            PortForwardError::PodNotFound(_) => Status::not_found(e.to_string()),
            PortForwardError::PrivateNetwork { .. } => Status::failed_precondition(e.to_string()),
            _ => {
                tracing::warn!(error = %e, "port-forward failed");
                Status::internal(e.to_string())
            }
        }
    }
}

/// One failed connect, printed as Go's dialer does (`dial tcp4 127.0.0.1:80: connect: connection
/// refused`).
#[derive(Debug)]
pub struct DialError {
    network: &'static str,
    addr: SocketAddr,
    error: std::io::Error,
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (network, addr) = (self.network, self.addr);
        if self.error.kind() == std::io::ErrorKind::TimedOut {
            return write!(f, "dial {network} {addr}: i/o timeout");
        }
        match self.error.raw_os_error() {
            Some(code) => {
                let desc = nix::errno::Errno::from_raw(code).desc();
                let mut chars = desc.chars();
                let lower: String =
                    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default();
                write!(f, "dial {network} {addr}: connect: {lower}")
            }
            None => write!(f, "dial {network} {addr}: {}", self.error),
        }
    }
}

/// The network namespace a pod's containers run in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodNetwork {
    /// A pinned namespace (the pod's own).
    Namespace(PathBuf),
    /// The node's (`hostNetwork: true`): the kubelet's own namespace.
    Host,
}

impl PodNetwork {
    /// How error messages name it (containerd says "host" for the host's).
    pub fn name(&self) -> String {
        match self {
            PodNetwork::Namespace(p) => p.display().to_string(),
            PodNetwork::Host => "host".into(),
        }
    }
}

/// The network namespace of an OCI spec: the `network` entry's path, or the host's without one.
/// `None` for an entry without a path (a namespace nobody pinned).
pub fn network_of_spec(spec: &Value) -> Option<PodNetwork> {
    let entries = spec.pointer("/linux/namespaces").and_then(|n| n.as_array());
    match entries.and_then(|ns| ns.iter().find(|n| n["type"] == "network")) {
        None => Some(PodNetwork::Host),
        Some(n) => n["path"].as_str().filter(|p| !p.is_empty()).map(|p| PodNetwork::Namespace(p.into())),
    }
}

/// Where the pod of `start` runs its network: what its newest container was created with, or the
/// pinned namespace under `run_dir` while it has no container yet.
pub async fn pod_network(
    ctd: &Containerd,
    run_dir: &Path,
    start: &PortForwardStart,
) -> Result<PodNetwork, PortForwardError> {
    let full_name = format!("{}_{}", start.name, start.namespace);
    if start.uid.is_empty() {
        return Err(PortForwardError::PodNotFound(full_name));
    }
    let recs = ctd.list_containers(&[(LABEL_POD_UID, start.uid.as_str())]).await?;
    if let Some(newest) = recs.iter().max_by_key(|r| r.created_at) {
        let spec = ctd.container_spec(&newest.id).await?;
        return network_of_spec(&spec).ok_or_else(|| PortForwardError::PrivateNetwork {
            container: newest.id.clone(),
            pod: full_name,
        });
    }
    let pinned = run_dir.join("netns").join(&start.uid);
    if pinned.exists() {
        return Ok(PodNetwork::Namespace(pinned));
    }
    Err(PortForwardError::PodNotFound(full_name))
}

/// Connects to `localhost:port` inside `network`, from a thread of its own.
pub async fn connect(network: PodNetwork, port: u16, pod_id: &str) -> Result<TcpStream, PortForwardError> {
    let thread_err = |reason: String| PortForwardError::Thread { port, reason };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let id = pod_id.to_string();
    std::thread::Builder::new()
        .name(format!("port-forward-{port}"))
        .spawn(move || {
            let _ = tx.send(dial(&network, port, &id));
        })
        .map_err(|e| thread_err(format!("could not start: {e}")))?;
    let socket = rx.await.map_err(|_| thread_err("ended without an answer".into()))??;
    socket.set_nonblocking(true).map_err(|e| thread_err(format!("socket: {e}")))?;
    TcpStream::from_std(socket).map_err(|e| thread_err(format!("socket: {e}")))
}

/// Runs on the connecting thread: enters the namespace, then tries IPv4 and IPv6 loopback.
fn dial(network: &PodNetwork, port: u16, pod_id: &str) -> Result<std::net::TcpStream, PortForwardError> {
    if let PodNetwork::Namespace(path) = network {
        let enter = |source| PortForwardError::Enter { netns: network.name(), source };
        let ns = File::open(path).map_err(enter)?;
        setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| enter(e.into()))?;
    }
    let try_dial = |network: &'static str, addr: SocketAddr| {
        std::net::TcpStream::connect_timeout(&addr, DIAL_TIMEOUT)
            .map_err(|error| Box::new(DialError { network, addr, error }))
    };
    let v4 = match try_dial("tcp4", SocketAddr::from((Ipv4Addr::LOCALHOST, port))) {
        Ok(s) => return Ok(s),
        Err(e) => e,
    };
    let v6 = match try_dial("tcp6", SocketAddr::from((Ipv6Addr::LOCALHOST, port))) {
        Ok(s) => return Ok(s),
        Err(e) => e,
    };
    Err(PortForwardError::Connect { netns: network.name(), port, pod_id: pod_id.to_string(), v4, v6 })
}

/// Serves one `PortForward` call: connects, then copies until either side is done. Failures are
/// sent as the answer's `error`; the answer ends when the forward does.
pub async fn serve<S>(
    network: PodNetwork,
    port: u16,
    pod_id: String,
    input: S,
    tx: mpsc::Sender<Result<PortForwardOutput, Status>>,
    shutdown: CancellationToken,
) where
    S: Stream<Item = Result<PortForwardInput, Status>> + Unpin,
{
    let result = match connect(network, port, &pod_id).await {
        Ok(socket) => {
            tracing::debug!("connected");
            relay(socket, input, &tx, &shutdown).await.map_err(|source| PortForwardError::Copy {
                pod_id,
                port,
                source,
            })
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => tracing::debug!("port-forward finished"),
        Err(e) => {
            tracing::info!(error = %e, "port-forward failed");
            let _ = tx.send(Ok(PortForwardOutput { error: e.to_string(), ..Default::default() })).await;
        }
    }
}

/// Copies the client's data into `socket` and the socket's data out, until the socket's read side
/// ends (or fails), the client goes away or the kubelet shuts down. The client's half close shuts
/// the socket down for writing.
pub async fn relay<S>(
    socket: TcpStream,
    mut input: S,
    tx: &mpsc::Sender<Result<PortForwardOutput, Status>>,
    shutdown: &CancellationToken,
) -> std::io::Result<()>
where
    S: Stream<Item = Result<PortForwardInput, Status>> + Unpin,
{
    let (mut from_pod, mut to_pod) = socket.into_split();
    let down = async {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = from_pod.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            let out = PortForwardOutput { data: buf[..n].to_vec(), ..Default::default() };
            if tx.send(Ok(out)).await.is_err() {
                return Ok(()); // the api-server went away
            }
        }
    };
    // Ok(true): the client half-closed; Ok(false): it went away.
    let up = async {
        while let Some(msg) = input.next().await {
            let Ok(msg) = msg else { return Ok(false) };
            if !msg.data.is_empty() {
                to_pod.write_all(&msg.data).await?;
            }
            if msg.closed {
                break;
            }
        }
        to_pod.shutdown().await?;
        Ok::<bool, std::io::Error>(true)
    };
    tokio::pin!(down, up);
    let mut up_done = false;
    loop {
        tokio::select! {
            r = &mut down => return r,
            r = &mut up, if !up_done => match r {
                Ok(true) => up_done = true,
                Ok(false) => return Ok(()),
                Err(e) => return Err(e),
            },
            _ = tx.closed() => return Ok(()),
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
