//! The kubelet's gRPC API (proto/navarch/kubelet/v1), which the api-server relays to: container
//! logs, exec into running containers, attach to them (`container_io`), and resource usage (the
//! [`crate::stats`] sampler's latest samples). Containers are found by their containerd labels (pod uid, container name, attempt), so
//! this works for pods adopted after a restart too. Errors go through [`KubeletApiError`]'s one
//! mapping to `Status`.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::Stream;
use navarch_api::kubelet_proto::kubelet_server::Kubelet;
use navarch_api::kubelet_proto::{
    ExecInput, ExecOutput, LogChunk, LogsRequest, MetricsRequest, MetricsResponse, PortForwardInput,
    PortForwardOutput, StatsRequest, StatsResponse,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

use crate::api_auth::ApiAuth;
use crate::container_io::{AttachError, AttachTarget, ContainerIo};
use crate::containerd::{ContainerRecord, Containerd, RuntimeError, TaskState};
use crate::exec::{ExecError, ExecProcess, ExecSpec};
use crate::logs::ReadOptions;
use crate::pods::{LABEL_ATTEMPT, LABEL_CONTAINER, LABEL_LOG, LABEL_POD_UID};
use crate::stats::StatsCollector;

#[derive(Debug, thiserror::Error)]
pub enum KubeletApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    NotRunning(String),
    /// The command could not be started (not found, not executable): the runtime's reason.
    #[error("failed to exec in container: {0}")]
    ExecFailed(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no resource usage sampled yet")]
    NoSamples,
}

impl From<KubeletApiError> for Status {
    fn from(e: KubeletApiError) -> Status {
        match &e {
            KubeletApiError::BadRequest(_) => Status::invalid_argument(e.to_string()),
            KubeletApiError::NotFound(_) => Status::not_found(e.to_string()),
            KubeletApiError::NotRunning(_) => Status::failed_precondition(e.to_string()),
            KubeletApiError::ExecFailed(_) => Status::unknown(e.to_string()),
            KubeletApiError::NoSamples => Status::unavailable(e.to_string()),
            KubeletApiError::Runtime(_) | KubeletApiError::Io { .. } => {
                tracing::warn!(error = %e, "kubelet API request failed");
                Status::internal("the kubelet could not complete the request; see its log")
            }
        }
    }
}

pub struct KubeletApi {
    pub ctd: Containerd,
    pub run_dir: PathBuf,
    pub node_name: String,
    /// The resource usage sampler.
    pub stats: Arc<StatsCollector>,
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
    /// Containers' stdio: who writes the logs, attach sessions.
    pub io: ContainerIo,
    /// Who may call (delegated to the api-server).
    pub auth: Arc<ApiAuth>,
}

type OutStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn receiver_stream<T: Send + 'static>(mut rx: mpsc::Receiver<Result<T, Status>>) -> OutStream<T> {
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// The attempts of one container of a pod, oldest first.
async fn attempts(
    ctd: &Containerd,
    uid: &str,
    container: &str,
) -> Result<Vec<ContainerRecord>, KubeletApiError> {
    let mut recs = ctd.list_containers(&[(LABEL_POD_UID, uid), (LABEL_CONTAINER, container)]).await?;
    recs.sort_by_key(|r| r.labels.get(LABEL_ATTEMPT).and_then(|a| a.parse::<u32>().ok()).unwrap_or(0));
    Ok(recs)
}

impl KubeletApi {
    pub fn new(
        ctd: Containerd,
        run_dir: PathBuf,
        node_name: String,
        shutdown: CancellationToken,
        io: ContainerIo,
        auth: Arc<ApiAuth>,
        stats: Arc<StatsCollector>,
    ) -> KubeletApi {
        KubeletApi { auth, ctd, run_dir, node_name, stats, tasks: TaskTracker::new(), shutdown, io }
    }

    async fn running_attempt(
        &self,
        uid: &str,
        pod: &str,
        container: &str,
    ) -> Result<String, KubeletApiError> {
        let recs = attempts(&self.ctd, uid, container).await?;
        let Some(last) = recs.last() else {
            return Err(KubeletApiError::NotRunning(format!(
                "container {container:?} in pod {pod:?} is waiting to start"
            )));
        };
        match self.ctd.task_state(&last.id).await? {
            TaskState::Running { .. } => Ok(last.id.clone()),
            _ => Err(KubeletApiError::NotRunning(format!(
                "container {container:?} in pod {pod:?} is not running"
            ))),
        }
    }

    /// The last two samples as the answer (waiting a few seconds for the first ones after a start).
    async fn stats(&self) -> Result<StatsResponse, KubeletApiError> {
        let samples = self.stats.wait(Duration::from_secs(5)).await.ok_or(KubeletApiError::NoSamples)?;
        Ok(crate::stats::response::stats_response(&self.node_name, &samples))
    }
}

/// A log read going to a gRPC stream, following while the kubelet still reads the container's
/// output (or, for a container whose shim writes its log, while its task runs).
struct LogStream {
    tx: mpsc::Sender<Result<LogChunk, Status>>,
    ctd: Containerd,
    io: ContainerIo,
    id: String,
    shutdown: CancellationToken,
}

impl crate::logs::LogReader for LogStream {
    async fn send(&mut self, data: Vec<u8>) -> bool {
        self.tx.send(Ok(LogChunk { data })).await.is_ok()
    }
    async fn writer_running(&mut self) -> bool {
        !self.shutdown.is_cancelled()
            && !self.tx.is_closed()
            && (self.io.is_logging(&self.id)
                || matches!(self.ctd.task_state(&self.id).await, Ok(TaskState::Running { .. })))
    }
}

/// The time before which lines are left out: `sinceSeconds` back from `now`, or `sinceTime` when
/// it is later (as Kubernetes' kubelet combines them).
fn since(r: &LogsRequest, now: SystemTime) -> Result<Option<SystemTime>, KubeletApiError> {
    let mut since = r
        .since_seconds
        .filter(|s| *s > 0)
        .map(|s| now.checked_sub(Duration::from_secs(s as u64)).unwrap_or(SystemTime::UNIX_EPOCH));
    if !r.since_time.is_empty() {
        let t = navarch_api::rfc3339::parse(&r.since_time)
            .map_err(|e| KubeletApiError::BadRequest(format!("sinceTime: {e}")))?;
        if since.is_none_or(|s| t > s) {
            since = Some(t);
        }
    }
    Ok(since)
}

#[tonic::async_trait]
impl Kubelet for KubeletApi {
    type ContainerLogsStream = OutStream<LogChunk>;
    type ExecStream = OutStream<ExecOutput>;
    type AttachStream = OutStream<ExecOutput>;
    type PortForwardStream = OutStream<PortForwardOutput>;

    async fn container_logs(
        &self,
        req: Request<LogsRequest>,
    ) -> Result<Response<Self::ContainerLogsStream>, Status> {
        self.auth.check(&req, "get", "proxy").await?;
        let r = req.into_inner();
        let span = tracing::debug_span!("logs", pod = %format!("{}/{}", r.namespace, r.name), container = %r.container);
        let _enter = span.enter();
        let recs = attempts(&self.ctd, &r.uid, &r.container).await?;
        let rec = if r.previous {
            recs.len().checked_sub(2).map(|i| recs[i].clone()).ok_or_else(|| {
                KubeletApiError::NotFound(format!(
                    "previous terminated container {:?} in pod {:?} not found",
                    r.container, r.name
                ))
            })?
        } else {
            // Nothing created yet (the api-server answers with the pod status's reason first).
            recs.last().cloned().ok_or_else(|| {
                KubeletApiError::NotRunning(format!(
                    "container {:?} in pod {:?} is waiting to start: ContainerCreating",
                    r.container, r.name
                ))
            })?
        };
        let path = PathBuf::from(rec.labels.get(LABEL_LOG).cloned().unwrap_or_default());
        let opts = ReadOptions {
            tail_lines: r.tail_lines.filter(|n| *n >= 0).map(|n| n as usize),
            limit_bytes: r.limit_bytes.filter(|n| *n > 0).map(|n| n as u64),
            follow: r.follow && !r.previous,
            timestamps: r.timestamps,
            since: since(&r, SystemTime::now())?,
        };
        let (tx, rx) = mpsc::channel(8);
        let (ctd, io, id, shutdown) =
            (self.ctd.clone(), self.io.clone(), rec.id.clone(), self.shutdown.clone());
        self.tasks.spawn(async move {
            let mut reader = LogStream { tx, ctd, io, id, shutdown };
            if let Err(e) = crate::logs::stream(&path, &opts, &mut reader).await {
                let e = KubeletApiError::Io { path: path.clone(), source: e };
                let _ = reader.tx.send(Err(e.into())).await;
            }
        });
        Ok(Response::new(receiver_stream(rx)))
    }

    async fn exec(&self, req: Request<Streaming<ExecInput>>) -> Result<Response<Self::ExecStream>, Status> {
        self.auth.check(&req, "create", "proxy").await?;
        let mut input = req.into_inner();
        let start =
            input.message().await?.and_then(|m| m.start).ok_or_else(|| {
                KubeletApiError::BadRequest("start: Required value (the first message)".into())
            })?;
        if start.command.is_empty() {
            return Err(KubeletApiError::BadRequest("command: Required value".into()).into());
        }
        let id = self.running_attempt(&start.uid, &start.name, &start.container).await?;
        tracing::info!(pod = %format!("{}/{}", start.namespace, start.name), container = %start.container, command = ?start.command, "exec");
        let spec =
            ExecSpec { container_id: id, command: start.command.clone(), stdin: start.stdin, tty: start.tty };
        let mut p = match ExecProcess::start(&self.ctd, &self.run_dir, &spec).await {
            Ok(p) => p,
            Err(ExecError::Runtime(RuntimeError::Call { status, .. })) => {
                return Err(KubeletApiError::ExecFailed(status.message().to_string()).into());
            }
            Err(e) => return Err(KubeletApiError::ExecFailed(e.to_string()).into()),
        };
        if start.tty
            && let Some(size) = &start.size
            && size.width > 0
        {
            let _ = p.resize(size.width, size.height).await;
        }
        let (tx, rx) = mpsc::channel::<Result<ExecOutput, Status>>(16);
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            let mut pumps = tokio::task::JoinSet::new();
            for (reader, is_err) in [(p.stdout.take(), false), (p.stderr.take(), true)] {
                let Some(mut reader) = reader else { continue };
                let tx = tx.clone();
                pumps.spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        match reader.read(&mut buf).await {
                            Ok(0) | Err(_) => return true,
                            Ok(n) => {
                                let data = buf[..n].to_vec();
                                let out = if is_err {
                                    ExecOutput { stderr: data, ..Default::default() }
                                } else {
                                    ExecOutput { stdout: data, ..Default::default() }
                                };
                                if tx.send(Ok(out)).await.is_err() {
                                    return false;
                                }
                            }
                        }
                    }
                });
            }
            let mut stdin = p.stdin.take();
            let waiter = p.waiter();
            tokio::pin!(waiter);
            let mut input_open = true;
            // None: the client went away (or the kubelet is shutting down) before the exit.
            let code = loop {
                tokio::select! {
                    code = &mut waiter => break Some(code),
                    _ = shutdown.cancelled() => break None,
                    _ = tx.closed() => break None,
                    msg = input.message(), if input_open => match msg {
                        Ok(Some(m)) => {
                            if !m.stdin.is_empty()
                                && let Some(w) = stdin.as_mut()
                                && w.write_all(&m.stdin).await.is_err()
                            {
                                stdin = None;
                            }
                            if let Some(size) = m.resize {
                                let _ = p.resize(size.width, size.height).await;
                            }
                            if m.stdin_closed && stdin.take().is_some() {
                                let _ = p.close_stdin().await;
                            }
                        }
                        Ok(None) => {
                            input_open = false;
                            if stdin.take().is_some() {
                                let _ = p.close_stdin().await;
                            }
                        }
                        Err(_) => break None,
                    },
                }
            };
            if let Some(code) = code {
                // Output written just before the exit still arrives (a lingering child gets 1 s).
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while pumps.join_next().await.is_some() {}
                })
                .await;
                let exit_code = code.unwrap_or(-1);
                let _ = tx.send(Ok(ExecOutput { exit_code: Some(exit_code), ..Default::default() })).await;
            } else {
                let _ = p.kill().await;
            }
            pumps.abort_all();
            drop(stdin);
            p.finish().await;
        });
        Ok(Response::new(receiver_stream(rx)))
    }

    async fn attach(
        &self,
        req: Request<Streaming<ExecInput>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        self.auth.check(&req, "create", "proxy").await?;
        let mut input = req.into_inner();
        let start =
            input.message().await?.and_then(|m| m.start).ok_or_else(|| {
                KubeletApiError::BadRequest("start: Required value (the first message)".into())
            })?;
        if !start.command.is_empty() {
            return Err(
                KubeletApiError::BadRequest("command: Forbidden: attach runs no command".into()).into()
            );
        }
        let id = self.running_attempt(&start.uid, &start.name, &start.container).await?;
        let target = AttachTarget {
            id,
            pod: format!("{}/{}", start.namespace, start.name),
            container: start.container.clone(),
            stdin: start.stdin,
            size: start.size,
        };
        // Each refusal is about the container's state or spec: FailedPrecondition.
        let output = self
            .io
            .attach(&self.ctd, target, input)
            .await
            .map_err(|e: AttachError| KubeletApiError::NotRunning(e.to_string()))?;
        Ok(Response::new(receiver_stream(output)))
    }

    async fn port_forward(
        &self,
        req: Request<Streaming<PortForwardInput>>,
    ) -> Result<Response<Self::PortForwardStream>, Status> {
        use crate::port_forward::{PortForwardError, pod_network, serve};
        use tracing::Instrument;
        self.auth.check(&req, "create", "proxy").await?;
        let mut input = req.into_inner();
        let start =
            input.message().await?.and_then(|m| m.start).ok_or_else(|| {
                KubeletApiError::BadRequest("start: Required value (the first message)".into())
            })?;
        let port =
            u16::try_from(start.port).ok().filter(|p| *p > 0).ok_or(PortForwardError::BadPort(start.port))?;
        let network = pod_network(&self.ctd, &self.run_dir, &start).await?;
        let span =
            tracing::info_span!("port-forward", pod = %format!("{}/{}", start.namespace, start.name), port);
        span.in_scope(|| tracing::debug!(network = %network.name(), "port-forward"));
        let (tx, rx) = mpsc::channel(16);
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(serve(network, port, start.uid, input, tx, shutdown).instrument(span));
        Ok(Response::new(receiver_stream(rx)))
    }

    async fn stats(&self, req: Request<StatsRequest>) -> Result<Response<StatsResponse>, Status> {
        self.auth.check(&req, "get", "stats").await?;
        Ok(Response::new(KubeletApi::stats(self).await?))
    }

    async fn metrics(&self, req: Request<MetricsRequest>) -> Result<Response<MetricsResponse>, Status> {
        self.auth.check(&req, "get", "metrics").await?;
        let path = req.into_inner().path;
        let series = crate::stats::prometheus::Series::at(&path)
            .ok_or_else(|| KubeletApiError::NotFound(format!("no metrics at {path:?}")))?;
        Ok(Response::new(MetricsResponse {
            content_type: crate::stats::prometheus::CONTENT_TYPE.into(),
            text: crate::stats::prometheus::text(&self.stats, series),
        }))
    }
}
