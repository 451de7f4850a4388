//! Container probes: startup, liveness and readiness, each an HTTP GET, TCP connect, gRPC health
//! check or exec, run on its own schedule by one task per (running container attempt, probe).
//! Results are kept here and read by the pod sync: readiness feeds the pod's Ready condition, a
//! failed liveness or startup probe asks the sync to kill the container (it is then restarted per
//! the restart policy). A changed result re-syncs the pod.
//!
//! Semantics follow Kubernetes: a result flips only after `successThreshold` consecutive successes
//! or `failureThreshold` consecutive failures; readiness starts false, liveness true; liveness and
//! readiness wait until the startup probe has passed; each failure records an `Unhealthy` event.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{Container, HttpGetAction, Pod, Probe};
use navarch_client::{EventRecorder, ObjectRef, object_ref};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::containerd::Containerd;
use crate::pod_state::{Attempt, AttemptState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        }
    }

    fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            ProbeKind::Startup => c.startup_probe.as_ref(),
            ProbeKind::Liveness => c.liveness_probe.as_ref(),
            ProbeKind::Readiness => c.readiness_probe.as_ref(),
        }
    }

    const ALL: [ProbeKind; 3] = [ProbeKind::Startup, ProbeKind::Liveness, ProbeKind::Readiness];
}

/// A probe's settings with Kubernetes' defaults applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    pub fn of(p: &Probe, kind: ProbeKind) -> Timing {
        let secs = |v: i32, default: u64| Duration::from_secs(if v > 0 { v as u64 } else { default });
        Timing {
            initial_delay: Duration::from_secs(p.initial_delay_seconds.max(0) as u64),
            period: secs(p.period_seconds, 10),
            timeout: secs(p.timeout_seconds, 1),
            // Liveness and startup probes must use 1 (validation enforces it in Kubernetes).
            success_threshold: if kind == ProbeKind::Readiness && p.success_threshold > 0 {
                p.success_threshold as u32
            } else {
                1
            },
            failure_threshold: if p.failure_threshold > 0 { p.failure_threshold as u32 } else { 3 },
        }
    }
}

/// Consecutive results against the thresholds: the reported result changes only after enough
/// of the same outcome in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Counter {
    pub result: Option<bool>,
    last: Option<bool>,
    run: u32,
}

impl Counter {
    pub fn new(initial: Option<bool>) -> Counter {
        Counter { result: initial, last: None, run: 0 }
    }

    /// Records one outcome; the new reported result when it changed.
    pub fn observe(&mut self, ok: bool, t: &Timing) -> Option<bool> {
        if self.last == Some(ok) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(ok);
            self.run = 1;
        }
        let needed = if ok { t.success_threshold } else { t.failure_threshold };
        if self.run >= needed && self.result != Some(ok) {
            self.result = Some(ok);
            return Some(ok);
        }
        None
    }
}

/// Where a container's probes go.
#[derive(Debug, Clone)]
pub struct Target {
    pub container_id: String,
    /// The pod's IP (the node's for host-network pods).
    pub ip: String,
    pub ports: Vec<(String, i32)>,
}

impl Target {
    /// A probe's port: a number, or the name of one of the container's ports.
    pub fn port(&self, port: &navarch_api::v1::IntOrString) -> Result<u16, String> {
        let n = match port.as_int() {
            Some(n) => n,
            None => {
                let name = port.as_str().unwrap_or_default();
                if let Ok(n) = name.parse::<i32>() {
                    n
                } else {
                    self.ports
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, p)| *p)
                        .ok_or_else(|| format!("port {name:?} is not a named port of the container"))?
                }
            }
        };
        u16::try_from(n).ok().filter(|p| *p > 0).ok_or_else(|| format!("invalid port {n}"))
    }
}

/// What one probe run found.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success,
    Failure(String),
}

/// Runs probes against containers: the network ones from the host, exec inside the container.
#[derive(Clone)]
pub struct Prober {
    pub ctd: Containerd,
    pub run_dir: PathBuf,
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

impl Prober {
    pub async fn run(&self, p: &Probe, target: &Target, timeout: Duration) -> Outcome {
        if let Some(exec) = &p.exec {
            return self.exec(&exec.command, target, timeout).await;
        }
        if let Some(h) = &p.http_get {
            return http_get(h, target, timeout).await;
        }
        if let Some(t) = &p.tcp_socket {
            let host = if t.host.is_empty() { target.ip.clone() } else { t.host.clone() };
            return match target.port(t.port.as_ref().unwrap_or(&Default::default())) {
                Ok(port) => tcp_connect(&host, port, timeout).await,
                Err(e) => Outcome::Failure(e),
            };
        }
        if let Some(g) = &p.grpc {
            return grpc_health(&target.ip, g.port, g.service.as_deref().unwrap_or(""), timeout).await;
        }
        Outcome::Failure("the probe has no handler (exec, httpGet, tcpSocket or grpc)".into())
    }

    async fn exec(&self, command: &[String], target: &Target, timeout: Duration) -> Outcome {
        match crate::exec::run_captured(&self.ctd, &self.run_dir, &target.container_id, command, timeout)
            .await
        {
            Ok(c) if c.exit_code == 0 => Outcome::Success,
            Ok(c) => {
                let out = String::from_utf8_lossy(&c.output).trim_end().to_string();
                if out.is_empty() {
                    Outcome::Failure(format!("command {command:?} exited with {}", c.exit_code))
                } else {
                    Outcome::Failure(out)
                }
            }
            Err(crate::exec::ExecError::Timeout(_)) => {
                Outcome::Failure(format!("command {command:?} timed out after {}s", timeout.as_secs()))
            }
            Err(e) => Outcome::Failure(e.to_string()),
        }
    }
}

async fn tcp_connect(host: &str, port: u16, timeout: Duration) -> Outcome {
    let addr = host_port(host, port);
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => Outcome::Success,
        Ok(Err(e)) => Outcome::Failure(format!("dial tcp {addr}: connect: {e}")),
        Err(_) => Outcome::Failure(format!("dial tcp {addr}: i/o timeout")),
    }
}

/// Whether an HTTP status counts as a probe success (Kubernetes: 200 to 399).
pub fn http_success(status: u16) -> bool {
    (200..400).contains(&status)
}

async fn http_get(h: &HttpGetAction, target: &Target, timeout: Duration) -> Outcome {
    use http_body_util::BodyExt;
    let port = match target.port(h.port.as_ref().unwrap_or(&Default::default())) {
        Ok(p) => p,
        Err(e) => return Outcome::Failure(e),
    };
    let host = if h.host.is_empty() { target.ip.clone() } else { h.host.clone() };
    let scheme = if h.scheme.is_empty() { "HTTP" } else { h.scheme.as_str() };
    let path = if h.path.is_empty() { "/".to_string() } else { h.path.clone() };
    let path = if path.starts_with('/') { path } else { format!("/{path}") };
    let url = format!("{}://{}{path}", scheme.to_lowercase(), host_port(&host, port));
    if !scheme.eq_ignore_ascii_case("HTTP") {
        return Outcome::Failure(format!(
            "Get {url:?}: scheme {scheme} is not supported by this kubelet (HTTP only)"
        ));
    }
    let addr = host_port(&host, port);
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("Get {url:?}: dial tcp {addr}: connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("Get {url:?}: {e}"))?;
        let conn = tokio::spawn(conn);
        let mut req = hyper::Request::get(path.as_str())
            .header("User-Agent", "kube-probe/1.31")
            .header("Accept", "*/*");
        let mut host_set = false;
        for hd in &h.http_headers {
            host_set |= hd.name.eq_ignore_ascii_case("host");
            req = req.header(hd.name.as_str(), hd.value.as_str());
        }
        if !host_set {
            req = req.header("Host", addr.as_str());
        }
        let req = req
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(|e| format!("Get {url:?}: {e}"))?;
        let resp = sender.send_request(req).await.map_err(|e| format!("Get {url:?}: {e}"))?;
        let status = resp.status().as_u16();
        // The body is read (up to 10 KiB) so the server sees a complete exchange.
        let _ = resp.into_body().collect().await;
        conn.abort();
        Ok::<u16, String>(status)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(s)) if http_success(s) => Outcome::Success,
        Ok(Ok(s)) => Outcome::Failure(format!("HTTP probe failed with statuscode: {s}")),
        Ok(Err(e)) => Outcome::Failure(e),
        Err(_) => Outcome::Failure(format!(
            "Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
    }
}

/// grpc.health.v1 messages.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

async fn grpc_health(host: &str, port: i32, service: &str, timeout: Duration) -> Outcome {
    let addr = host_port(host, port.clamp(0, 65535) as u16);
    let check = async {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(timeout);
        let channel = endpoint.connect().await.map_err(|_| {
            format!("timeout: failed to connect service {addr:?} within {}s", timeout.as_secs())
        })?;
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.map_err(|e| e.to_string())?;
        let path = tonic::codegen::http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
        let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
        let r = grpc
            .unary(tonic::Request::new(HealthCheckRequest { service: service.into() }), path, codec)
            .await
            .map_err(|s| format!("rpc error: code = {:?} desc = {}", s.code(), s.message()))?;
        Ok::<i32, String>(r.into_inner().status)
    };
    match tokio::time::timeout(timeout, check).await {
        Ok(Ok(1)) => Outcome::Success,
        Ok(Ok(s)) => {
            let name = match s {
                0 => "UNKNOWN",
                2 => "NOT_SERVING",
                3 => "SERVICE_UNKNOWN",
                _ => "UNKNOWN",
            };
            Outcome::Failure(format!("service unhealthy (responded with {name:?})"))
        }
        Ok(Err(e)) => Outcome::Failure(e),
        Err(_) => {
            Outcome::Failure(format!("timeout: health rpc did not complete within {}s", timeout.as_secs()))
        }
    }
}

/// The probe results of one container attempt.
#[derive(Debug, Clone, Default)]
struct ContainerResults {
    container_id: String,
    ready: Option<bool>,
    started: Option<bool>,
}

/// A kill the sync should carry out: a liveness or startup probe failed.
#[derive(Debug, Clone, PartialEq)]
pub struct KillRequest {
    pub container: String,
    pub container_id: String,
    pub message: String,
    pub grace: Duration,
}

#[derive(Default)]
struct State {
    /// (pod uid, container) → results for its current attempt.
    results: HashMap<(String, String), ContainerResults>,
    /// (pod uid, container, kind) → the worker's attempt id and its stop switch.
    workers: HashMap<(String, String, ProbeKind), (String, CancellationToken)>,
    /// Pod uid → kills asked for.
    kills: HashMap<String, Vec<KillRequest>>,
}

/// Owns the probe workers of every pod on the node.
#[derive(Clone)]
pub struct ProbeManager {
    prober: Prober,
    state: Arc<Mutex<State>>,
    resync: mpsc::Sender<Vec<ObjectRef>>,
    events: EventRecorder,
    metrics: Arc<crate::metrics::KubeletMetrics>,
    tasks: tokio_util::task::TaskTracker,
    shutdown: CancellationToken,
}

impl ProbeManager {
    pub fn new(
        prober: Prober,
        resync: mpsc::Sender<Vec<ObjectRef>>,
        events: EventRecorder,
        metrics: Arc<crate::metrics::KubeletMetrics>,
        shutdown: CancellationToken,
    ) -> ProbeManager {
        ProbeManager {
            prober,
            state: Default::default(),
            resync,
            events,
            metrics,
            tasks: tokio_util::task::TaskTracker::new(),
            shutdown,
        }
    }

    /// Starts the probes of the pod's running app containers and stops those of containers no
    /// longer running (or of replaced attempts).
    pub fn sync(&self, pod: &Pod, attempts: &[Attempt], ip: &str) {
        let uid = pod.meta().uid.clone();
        let containers: &[Container] = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
        let mut st = self.state.lock().expect("probe state");
        let mut wanted: Vec<(String, ProbeKind)> = Vec::new();
        for c in containers {
            let running = crate::pod_state::latest(attempts, &c.name, false)
                .0
                .filter(|a| a.state == AttemptState::Running);
            let Some(a) = running else { continue };
            let key = (uid.clone(), c.name.clone());
            let entry = st.results.entry(key.clone()).or_default();
            if entry.container_id != a.id {
                *entry = ContainerResults {
                    container_id: a.id.clone(),
                    ready: c.readiness_probe.as_ref().map(|_| false),
                    started: c.startup_probe.as_ref().map(|_| false),
                };
            }
            for kind in ProbeKind::ALL {
                let Some(probe) = kind.of(c) else { continue };
                wanted.push((c.name.clone(), kind));
                let wkey = (uid.clone(), c.name.clone(), kind);
                if st.workers.get(&wkey).is_some_and(|(id, _)| *id == a.id) {
                    continue;
                }
                if let Some((_, old)) = st.workers.remove(&wkey) {
                    old.cancel();
                }
                let cancel = self.shutdown.child_token();
                st.workers.insert(wkey, (a.id.clone(), cancel.clone()));
                let target = Target {
                    container_id: a.id.clone(),
                    ip: ip.to_string(),
                    ports: c.ports.iter().map(|p| (p.name.clone(), p.container_port)).collect(),
                };
                let grace = probe
                    .termination_grace_period_seconds
                    .or(pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
                    .unwrap_or(30)
                    .max(0) as u64;
                let worker = Worker {
                    manager: self.clone(),
                    pod: pod.clone(),
                    container: c.name.clone(),
                    kind,
                    probe: probe.clone(),
                    target,
                    started_at: a.started_at,
                    grace: Duration::from_secs(grace),
                };
                self.tasks.spawn(worker.run(cancel));
            }
        }
        // Workers of containers not running any more (or whose probe went away) stop.
        st.workers.retain(|(u, name, kind), (_, cancel)| {
            let keep = *u != uid || wanted.iter().any(|(n, k)| n == name && k == kind);
            if !keep {
                cancel.cancel();
            }
            keep
        });
        st.results.retain(|(u, name), _| *u != uid || wanted.iter().any(|(n, _)| n == name));
    }

    /// Readiness and startup results of the pod's containers, for its status: only containers
    /// with such a probe appear.
    pub fn results(&self, uid: &str) -> (HashMap<String, bool>, HashMap<String, bool>) {
        let st = self.state.lock().expect("probe state");
        let (mut ready, mut started) = (HashMap::new(), HashMap::new());
        for ((u, name), r) in &st.results {
            if u != uid {
                continue;
            }
            if let Some(v) = r.ready {
                ready.insert(name.clone(), v);
            }
            if let Some(v) = r.started {
                started.insert(name.clone(), v);
            }
        }
        (ready, started)
    }

    /// Kills asked for by failed liveness/startup probes since the last call.
    pub fn take_kills(&self, uid: &str) -> Vec<KillRequest> {
        self.state.lock().expect("probe state").kills.remove(uid).unwrap_or_default()
    }

    /// Stops every probe of a pod (deleted or finished).
    pub fn forget(&self, uid: &str) {
        let mut st = self.state.lock().expect("probe state");
        st.workers.retain(|(u, _, _), (_, cancel)| {
            if u == uid {
                cancel.cancel();
            }
            u != uid
        });
        st.results.retain(|(u, _), _| u != uid);
        st.kills.remove(uid);
    }

    /// Waits for every probe worker to stop (after shutdown).
    pub async fn wait(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    fn started(&self, uid: &str, container: &str, container_id: &str) -> bool {
        let st = self.state.lock().expect("probe state");
        st.results
            .get(&(uid.to_string(), container.to_string()))
            .filter(|r| r.container_id == container_id)
            .is_none_or(|r| r.started != Some(false))
    }

    /// Stores a changed result; false when the worker's attempt is no longer the current one.
    fn set(&self, w: &Worker, value: bool) -> bool {
        let uid = w.pod.meta().uid.clone();
        let mut st = self.state.lock().expect("probe state");
        let Some(r) = st.results.get_mut(&(uid.clone(), w.container.clone())) else { return false };
        if r.container_id != w.target.container_id {
            return false;
        }
        match w.kind {
            ProbeKind::Readiness => r.ready = Some(value),
            ProbeKind::Startup => r.started = Some(value),
            ProbeKind::Liveness => {}
        }
        if !value && w.kind != ProbeKind::Readiness {
            st.kills.entry(uid).or_default().push(KillRequest {
                container: w.container.clone(),
                container_id: w.target.container_id.clone(),
                message: format!(
                    "Container {} failed {} probe, will be restarted",
                    w.container,
                    w.kind.name().to_lowercase()
                ),
                grace: w.grace,
            });
        }
        true
    }
}

/// One probe of one container attempt.
struct Worker {
    manager: ProbeManager,
    pod: Pod,
    container: String,
    kind: ProbeKind,
    probe: Probe,
    target: Target,
    started_at: Option<SystemTime>,
    grace: Duration,
}

impl Worker {
    async fn run(self, cancel: CancellationToken) {
        let m = self.pod.meta();
        let span = tracing::debug_span!("probe", pod = %format!("{}/{}", m.namespace, m.name), container = %self.container, kind = self.kind.name());
        let _ = tracing::Instrument::instrument(self.probe_loop(cancel), span).await;
    }

    async fn probe_loop(&self, cancel: CancellationToken) {
        let t = Timing::of(&self.probe, self.kind);
        let uid = self.pod.meta().uid.clone();
        let since_start =
            self.started_at.and_then(|s| SystemTime::now().duration_since(s).ok()).unwrap_or_default();
        let delay = t.initial_delay.saturating_sub(since_start);
        let initial = match self.kind {
            ProbeKind::Liveness => Some(true),
            _ => Some(false),
        };
        let mut counter = Counter::new(initial);
        let mut next = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(next) => {}
            }
            next += t.period;
            if self.kind != ProbeKind::Startup
                && !self.manager.started(&uid, &self.container, &self.target.container_id)
            {
                continue;
            }
            let outcome = tokio::select! {
                _ = cancel.cancelled() => return,
                o = self.manager.prober.run(&self.probe, &self.target, t.timeout) => o,
            };
            let ok = outcome == Outcome::Success;
            self.manager.metrics.probe(self.kind.name(), ok);
            if let Outcome::Failure(msg) = &outcome {
                tracing::debug!(%msg, "probe failed");
                self.manager.events.record(
                    object_ref(&self.pod),
                    "Warning",
                    "Unhealthy",
                    format!("{} probe failed: {msg}", self.kind.name()),
                );
            }
            if let Some(v) = counter.observe(ok, &t) {
                tracing::info!(result = v, "probe result changed");
                if !self.manager.set(self, v) {
                    return;
                }
                let key = ObjectRef::new(&self.pod.meta().namespace, &self.pod.meta().name);
                let _ = self.manager.resync.send(vec![key]).await;
                // A failed liveness/startup probe ends this attempt; a passed startup probe is done.
                if self.kind != ProbeKind::Readiness && (!v || self.kind == ProbeKind::Startup) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use navarch_api::v1::IntOrString;

    fn timing(s: u32, f: u32) -> Timing {
        Timing {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: s,
            failure_threshold: f,
        }
    }

    #[test]
    fn defaults_follow_kubernetes() {
        let t = Timing::of(&Probe::default(), ProbeKind::Liveness);
        assert_eq!(t.period, Duration::from_secs(10));
        assert_eq!(t.timeout, Duration::from_secs(1));
        assert_eq!((t.success_threshold, t.failure_threshold), (1, 3));
        let p = Probe { success_threshold: 3, ..Default::default() };
        assert_eq!(Timing::of(&p, ProbeKind::Liveness).success_threshold, 1);
        assert_eq!(Timing::of(&p, ProbeKind::Readiness).success_threshold, 3);
    }

    #[test]
    fn result_flips_only_after_thresholds() {
        let t = timing(2, 3);
        let mut c = Counter::new(Some(false));
        assert_eq!(c.observe(true, &t), None);
        assert_eq!(c.observe(true, &t), Some(true));
        assert_eq!(c.observe(true, &t), None);
        assert_eq!(c.observe(false, &t), None);
        assert_eq!(c.observe(false, &t), None);
        // A success in between resets the failure run.
        assert_eq!(c.observe(true, &t), None);
        assert_eq!(c.observe(false, &t), None);
        assert_eq!(c.observe(false, &t), None);
        assert_eq!(c.observe(false, &t), Some(false));
        assert_eq!(c.result, Some(false));
    }

    #[test]
    fn liveness_starts_alive() {
        let t = timing(1, 1);
        let mut c = Counter::new(Some(true));
        assert_eq!(c.observe(true, &t), None);
        assert_eq!(c.observe(false, &t), Some(false));
    }

    #[test]
    fn named_and_numeric_ports() {
        let t =
            Target { container_id: "c".into(), ip: "10.0.0.1".into(), ports: vec![("http".into(), 8080)] };
        assert_eq!(t.port(&IntOrString::int(80)), Ok(80));
        assert_eq!(t.port(&IntOrString::string("http")), Ok(8080));
        assert_eq!(t.port(&IntOrString::string("9090")), Ok(9090));
        assert!(t.port(&IntOrString::string("metrics")).unwrap_err().contains("metrics"));
        assert!(t.port(&IntOrString::int(0)).is_err());
        assert!(t.port(&IntOrString::int(70000)).is_err());
    }

    #[test]
    fn http_success_range() {
        assert!(http_success(200) && http_success(302) && http_success(399));
        assert!(!http_success(199) && !http_success(400) && !http_success(500));
    }

    #[tokio::test]
    async fn tcp_and_http_probes_against_a_local_server() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 2048];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let status =
                    if req.starts_with("GET /healthz ") { "200 OK" } else { "503 Service Unavailable" };
                let _ = s
                    .write_all(
                        format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                            .as_bytes(),
                    )
                    .await;
            }
        });
        let target = Target {
            container_id: "c".into(),
            ip: "127.0.0.1".into(),
            ports: vec![("web".into(), port as i32)],
        };
        let timeout = Duration::from_secs(2);
        let get = |path: &str| HttpGetAction {
            path: path.into(),
            port: Some(IntOrString::string("web")),
            ..Default::default()
        };
        assert_eq!(http_get(&get("/healthz"), &target, timeout).await, Outcome::Success);
        assert_eq!(
            http_get(&get("/other"), &target, timeout).await,
            Outcome::Failure("HTTP probe failed with statuscode: 503".into())
        );
        assert_eq!(tcp_connect("127.0.0.1", port, timeout).await, Outcome::Success);
        server.abort();
        // Nothing listens there any more.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = closed.local_addr().unwrap().port();
        drop(closed);
        match tcp_connect("127.0.0.1", dead, timeout).await {
            Outcome::Failure(m) => assert!(m.contains("refused"), "{m}"),
            o => panic!("{o:?}"),
        }
    }
}
