//! The pod worker: one level-triggered sync per pod bound to this node. Each sync reads what
//! containerd holds for the pod (its containers, labelled with the pod's uid, one per attempt),
//! takes one step toward the pod's spec (network, volumes, the next container to start, or the
//! graceful stop of a deleted pod), and writes the pod's status when it changed. All state lives in
//! containerd and on disk, so a restarted kubelet re-adopts running containers as they are.
//! Ephemeral containers (`kubectl debug`) are started beside those steps: [`ephemeral`].

pub mod ephemeral;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{Container, Pod};
use navarch_client::{Action, Client, DeleteParams, EventRecorder, object_ref};
use serde_json::Value;

use crate::container_io::{ContainerIo, IoError, StdioSpec};
use crate::containerd::{Containerd, RuntimeError, TaskState};
use crate::image::{ImageError, PulledImage, Puller, Reference};
use crate::metrics::KubeletMetrics;
use crate::network::{Cni, CniPlugins, KernelNamespaces, Namespaces, NetworkError};
use crate::pod_state::{self, Attempt, AttemptState, Extra, Role, Step};
use crate::probes::ProbeManager;
use crate::spec::{self, BindMount, SpecError, SpecInput};
use crate::token::TokenManager;
use crate::volumes::{self, VolumeError};

pub const LABEL_POD_UID: &str = "io.navarch.pod.uid";
pub const LABEL_POD_NAME: &str = "io.navarch.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.navarch.pod.namespace";
pub const LABEL_CONTAINER: &str = "io.navarch.container.name";
pub const LABEL_ATTEMPT: &str = "io.navarch.container.attempt";
pub const LABEL_INIT: &str = "io.navarch.container.init";
pub const LABEL_IMAGE_ID: &str = "io.navarch.container.image-id";
pub const LABEL_LOG: &str = "io.navarch.container.log";
pub const LABEL_STARTED: &str = "io.navarch.container.started-at";
pub const LABEL_EXIT_CODE: &str = "io.navarch.container.exit-code";
pub const LABEL_FINISHED: &str = "io.navarch.container.finished-at";
pub const LABEL_REASON: &str = "io.navarch.container.reason";

/// How often a pod with nothing happening is looked at again (configMap/secret refresh, probes'
/// absence of events).
const RESYNC: Duration = Duration::from_secs(30);
const SIGTERM: u32 = 15;
const SIGKILL: u32 = 9;
const DEFAULT_GRACE: i64 = 30;
/// How soon a pod waiting for its volumes (claims to be bound) is tried again.
const MOUNT_RETRY: Duration = Duration::from_secs(2);
/// How often an unchanged `FailedMount` warning is repeated.
const MOUNT_EVENT_REPEAT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error("pod directory {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Stdio(#[from] IoError),
    #[error("api-server: {0}")]
    Api(#[from] navarch_client::Error),
}

/// Paths and settings the worker needs.
#[derive(Debug, Clone)]
pub struct PodPaths {
    pub root_dir: PathBuf,
    pub run_dir: PathBuf,
    pub log_dir: PathBuf,
}

impl PodPaths {
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.root_dir.join("pods").join(uid)
    }
    pub fn netns(&self, uid: &str) -> PathBuf {
        self.run_dir.join("netns").join(uid)
    }
    pub fn logs(&self, ns: &str, name: &str, uid: &str) -> PathBuf {
        self.log_dir.join(format!("{ns}_{name}_{uid}"))
    }
}

/// What the worker remembers between syncs (lost on restart, which only means retrying sooner).
#[derive(Default)]
struct Memory {
    /// Pod uid → container name → (reason, message) while it cannot be started.
    waiting: HashMap<String, HashMap<String, (String, String)>>,
    /// (uid, container) → (failures, when the next pull may be tried).
    pull_backoff: HashMap<(String, String), (u32, Instant)>,
    /// Pod uid → when its containers were first asked to stop.
    stopping: HashMap<String, Instant>,
    /// Container attempt id → (when a failed probe had it stopped, its grace period).
    killing: HashMap<String, (Instant, Duration)>,
    /// Pod uid → its start-up, for the pod start metric.
    pod_start: HashMap<String, PodStart>,
    /// Pod uid → the `FailedMount` messages last reported, and when.
    mount_failures: HashMap<String, (Vec<String>, Instant)>,
}

#[derive(Debug, Clone, Copy)]
enum PodStart {
    /// First synced at this instant; not all containers have run yet.
    Starting(Instant),
    /// Observed in the metric.
    Recorded,
}

pub struct PodWorker {
    pub client: Client,
    pub ctd: Containerd,
    pub puller: Puller,
    pub cni: CniPlugins,
    pub netns: KernelNamespaces,
    pub paths: PodPaths,
    pub node_name: String,
    pub node_ip: String,
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    pub events: EventRecorder,
    pub probes: ProbeManager,
    pub metrics: Arc<KubeletMetrics>,
    /// Containers' stdio: FIFOs read into the logs, attach.
    pub io: ContainerIo,
    /// ServiceAccount tokens of the pods' projected volumes.
    pub tokens: TokenManager,
    memory: Mutex<Memory>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SyncError {
    let path = path.to_path_buf();
    move |source| SyncError::Io { path, source }
}

/// containerd id of one attempt of one container: opaque, short, stable.
pub fn container_id(uid: &str, name: &str, init: bool, attempt: u32) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{uid}/{name}/{init}/{attempt}").as_bytes());
    hex::encode(&h[..16])
}

fn parse_time(s: Option<&String>) -> Option<SystemTime> {
    s.and_then(|s| humantime::parse_rfc3339(s).ok())
}

impl PodWorker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        ctd: Containerd,
        puller: Puller,
        cni: CniPlugins,
        paths: PodPaths,
        node_name: String,
        node_ip: String,
        cluster_dns: Vec<String>,
        cluster_domain: String,
        events: EventRecorder,
        probes: ProbeManager,
        metrics: Arc<KubeletMetrics>,
        io: ContainerIo,
    ) -> PodWorker {
        PodWorker {
            client,
            ctd,
            puller,
            cni,
            netns: KernelNamespaces,
            paths,
            node_name,
            node_ip,
            cluster_dns,
            cluster_domain,
            events,
            probes,
            metrics,
            io,
            tokens: TokenManager::default(),
            memory: Mutex::new(Memory::default()),
        }
    }

    /// Where volumes and environments come from: the api-server, tokens through [`Self::tokens`].
    fn sources(&self) -> volumes::ApiSources<'_> {
        volumes::ApiSources { client: &self.client, tokens: &self.tokens }
    }

    fn event(&self, pod: &Pod, kind: &'static str, reason: &'static str, message: String) {
        self.events.record(object_ref(pod), kind, reason, message);
    }

    /// Every attempt containerd holds for the pod. Exits are recorded in the container's labels
    /// and the finished task deleted (so no shim lingers per dead container).
    pub async fn observe(&self, uid: &str) -> Result<Vec<Attempt>, SyncError> {
        let mut out = Vec::new();
        for rec in self.ctd.list_containers(&[(LABEL_POD_UID, uid)]).await? {
            let l = &rec.labels;
            let name = l.get(LABEL_CONTAINER).cloned().unwrap_or_default();
            let attempt: u32 = l.get(LABEL_ATTEMPT).and_then(|a| a.parse().ok()).unwrap_or(0);
            let init = l.get(LABEL_INIT).map(|v| v == "true").unwrap_or(false);
            let started_at = parse_time(l.get(LABEL_STARTED));
            let state = if let Some(code) = l.get(LABEL_EXIT_CODE) {
                AttemptState::Exited {
                    code: code.parse().unwrap_or(-1),
                    reason: l.get(LABEL_REASON).cloned().unwrap_or_default(),
                    finished_at: parse_time(l.get(LABEL_FINISHED)).unwrap_or_else(SystemTime::now),
                }
            } else {
                match self.ctd.task_state(&rec.id).await? {
                    TaskState::Running { .. } => AttemptState::Running,
                    TaskState::Created | TaskState::Other(_) => AttemptState::Created,
                    TaskState::Exited { code, at } => {
                        let finished = at.unwrap_or_else(SystemTime::now);
                        let reason = if crate::cgroups::Cgroups::default().oom_killed(uid, &rec.id) {
                            "OOMKilled"
                        } else if code == 0 {
                            "Completed"
                        } else {
                            "Error"
                        };
                        let labels = HashMap::from([
                            (LABEL_EXIT_CODE.to_string(), code.to_string()),
                            (LABEL_FINISHED.to_string(), pod_state::rfc3339(finished)),
                            (LABEL_REASON.to_string(), reason.to_string()),
                        ]);
                        self.ctd.set_labels(&rec.id, labels).await?;
                        self.ctd.delete_task(&rec.id).await?;
                        AttemptState::Exited {
                            code: code as i32,
                            reason: reason.into(),
                            finished_at: finished,
                        }
                    }
                    TaskState::Absent => {
                        // Created but never started (the kubelet stopped in between): not an
                        // attempt; remove it so the same attempt is made again.
                        self.remove_container(&rec.id).await?;
                        continue;
                    }
                }
            };
            out.push(Attempt {
                id: rec.id.clone(),
                name,
                init,
                attempt,
                image: rec.image.clone(),
                image_id: l.get(LABEL_IMAGE_ID).cloned().unwrap_or_default(),
                started_at,
                state,
            });
        }
        Ok(out)
    }

    async fn remove_container(&self, id: &str) -> Result<(), SyncError> {
        self.ctd.kill_task(id, SIGKILL).await?;
        // A task may take a moment to stop after SIGKILL; delete fails until it has.
        for _ in 0..50 {
            match self.ctd.task_state(id).await? {
                TaskState::Absent => break,
                TaskState::Running { .. } => tokio::time::sleep(Duration::from_millis(100)).await,
                _ => {
                    self.ctd.delete_task(id).await?;
                }
            }
        }
        self.ctd.delete_container(id).await?;
        self.ctd.remove_snapshot(id).await?;
        self.io.remove(id);
        Ok(())
    }

    /// One sync of one pod.
    pub async fn sync(&self, pod: Arc<Pod>) -> Result<Action, SyncError> {
        let started = Instant::now();
        let m = pod.meta();
        let span = tracing::debug_span!("sync", pod = %format!("{}/{}", m.namespace, m.name));
        let r = tracing::Instrument::instrument(self.sync_once(pod), span).await;
        self.metrics.sync.observe(started.elapsed().as_secs_f64());
        r
    }

    async fn sync_once(&self, pod: Arc<Pod>) -> Result<Action, SyncError> {
        let m = pod.meta().clone();
        if pod.spec.as_ref().map(|s| s.node_name.as_str()) != Some(self.node_name.as_str()) {
            return Ok(Action::await_change());
        }
        if !m.deletion_timestamp.is_empty() {
            self.probes.forget(&m.uid);
            return self.terminate(&pod).await;
        }
        let attempts = self.observe(&m.uid).await?;
        let host_network = pod.spec.as_ref().is_some_and(|s| s.host_network);
        if pod_state::terminal(&pod, &attempts) {
            // Done: nothing will run again; give the address back, keep containers for logs.
            self.probes.forget(&m.uid);
            if let Some(wait) = self.stop_ephemeral(&pod, &attempts).await? {
                let ip = pod.status.as_ref().map(|s| s.pod_ip.clone()).unwrap_or_default();
                self.write_status(&pod, &attempts, &ip).await?;
                return Ok(Action::requeue(wait));
            }
            if !host_network {
                self.teardown_network(&pod).await?;
            }
            let ip = pod.status.as_ref().map(|s| s.pod_ip.clone()).unwrap_or_default();
            self.write_status(&pod, &attempts, &ip).await?;
            return Ok(Action::await_change());
        }
        let now = Instant::now();
        self.memory
            .lock()
            .expect("memory lock")
            .pod_start
            .entry(m.uid.clone())
            .or_insert(PodStart::Starting(now));
        let pod_dir = self.paths.pod_dir(&m.uid);
        std::fs::create_dir_all(&pod_dir).map_err(io_err(&pod_dir))?;
        let ip = if host_network { self.node_ip.clone() } else { self.ensure_network(&pod).await? };
        self.write_etc_files(&pod, &pod_dir, &ip)?;
        self.probes.sync(&pod, &attempts, &ip);
        let kill_wait = self.kill_unhealthy(&pod, &attempts).await?;
        let vols = match volumes::prepare(&pod, &pod_dir, &self.sources()).await {
            Ok(v) => {
                self.memory.lock().expect("memory lock").mount_failures.remove(&m.uid);
                v
            }
            Err(VolumeError::Unmounted(u)) => {
                // Kubernetes' WaitForAttachAndMount: the containers stay ContainerCreating.
                self.report_mount_failures(&pod, u.events());
                self.write_status(&pod, &attempts, &ip).await?;
                return Ok(Action::requeue(MOUNT_RETRY));
            }
            Err(e) => {
                self.set_waiting_all(&pod, &attempts, "CreateContainerConfigError", &e.to_string());
                self.write_status(&pod, &attempts, &ip).await?;
                return Ok(Action::requeue(Duration::from_secs(5)));
            }
        };
        let next = match pod_state::next_step(&pod, &attempts, SystemTime::now()) {
            Step::Start { name, init, attempt } => {
                let c = container_of(&pod, &name, init).cloned();
                match c {
                    Some(c) => match self.start(&pod, &c, Role::of_init(init), attempt, &ip, &vols).await {
                        Ok(()) => Action::requeue(Duration::ZERO),
                        Err(wait) => wait,
                    },
                    None => Action::await_change(),
                }
            }
            Step::Wait(Some(d)) => Action::requeue(d.min(RESYNC).min(kill_wait.unwrap_or(RESYNC))),
            Step::Wait(None) => Action::requeue(kill_wait.unwrap_or(RESYNC)),
        };
        let next = self.start_ephemeral(&pod, &attempts, &ip, &vols, next).await;
        let attempts = self.observe(&m.uid).await?;
        self.write_status(&pod, &attempts, &ip).await?;
        self.record_pod_start(&pod, &attempts);
        Ok(next)
    }

    /// `FailedMount` warnings: when they change, and again every [`MOUNT_EVENT_REPEAT`] while they
    /// last (the pod is retried far more often than that).
    fn report_mount_failures(&self, pod: &Pod, messages: Vec<String>) {
        let uid = pod.meta().uid.clone();
        let due = {
            let mut mem = self.memory.lock().expect("memory lock");
            let due = match mem.mount_failures.get(&uid) {
                Some((last, at)) => *last != messages || at.elapsed() >= MOUNT_EVENT_REPEAT,
                None => true,
            };
            if due {
                mem.mount_failures.insert(uid, (messages.clone(), Instant::now()));
            }
            due
        };
        if due {
            for message in messages {
                tracing::info!(%message, "volumes not ready");
                self.event(pod, "Warning", "FailedMount", message);
            }
        }
    }

    /// Observes the pod's start-up time once all its app containers first run.
    fn record_pod_start(&self, pod: &Pod, attempts: &[Attempt]) {
        let uid = &pod.meta().uid;
        let mut mem = self.memory.lock().expect("memory lock");
        let Some(PodStart::Starting(seen)) = mem.pod_start.get(uid).copied() else { return };
        let all_running = pod.spec.as_ref().is_some_and(|s| {
            s.containers.iter().all(|c| {
                pod_state::latest(attempts, &c.name, false)
                    .0
                    .is_some_and(|a| a.state == AttemptState::Running)
            })
        });
        if all_running {
            self.metrics.pod_start.observe(seen.elapsed().as_secs_f64());
            mem.pod_start.insert(uid.clone(), PodStart::Recorded);
        }
    }

    /// Stops containers whose liveness or startup probe failed: SIGTERM, then SIGKILL once the
    /// grace period is over (the restart policy then applies). How long until the next SIGKILL
    /// is due, if one is pending.
    async fn kill_unhealthy(&self, pod: &Pod, attempts: &[Attempt]) -> Result<Option<Duration>, SyncError> {
        let running = |id: &str| attempts.iter().any(|a| a.id == id && a.state == AttemptState::Running);
        for k in self.probes.take_kills(&pod.meta().uid) {
            // A container already being stopped keeps its first SIGTERM's time: a probe that goes on
            // failing during the grace period must not push the SIGKILL back.
            let stopping = self.memory.lock().expect("memory lock").killing.contains_key(&k.container_id);
            if !running(&k.container_id) || stopping {
                continue;
            }
            self.event(pod, "Normal", "Killing", k.message.clone());
            tracing::info!(container = %k.container, id = %k.container_id, "stopping a container that failed its probe");
            self.ctd.kill_task(&k.container_id, SIGTERM).await?;
            self.memory
                .lock()
                .expect("memory lock")
                .killing
                .insert(k.container_id, (Instant::now(), k.grace));
        }
        let pending: Vec<(String, Instant, Duration)> = {
            let mut mem = self.memory.lock().expect("memory lock");
            let ids: Vec<String> = attempts.iter().map(|a| a.id.clone()).collect();
            mem.killing.retain(|id, _| ids.contains(id));
            mem.killing.iter().map(|(id, (since, grace))| (id.clone(), *since, *grace)).collect()
        };
        let mut soonest: Option<Duration> = None;
        for (id, since, grace) in pending {
            if !running(&id) {
                self.memory.lock().expect("memory lock").killing.remove(&id);
                continue;
            }
            let left = grace.saturating_sub(since.elapsed());
            if left.is_zero() {
                self.ctd.kill_task(&id, SIGKILL).await?;
            }
            let wait = left.max(Duration::from_millis(200));
            soonest = Some(soonest.map_or(wait, |s| s.min(wait)));
        }
        Ok(soonest)
    }

    fn set_waiting(&self, pod: &Pod, name: &str, reason: &str, message: &str) {
        let mut mem = self.memory.lock().expect("memory lock");
        mem.waiting
            .entry(pod.meta().uid.clone())
            .or_default()
            .insert(name.to_string(), (reason.to_string(), message.to_string()));
    }

    fn clear_waiting(&self, pod: &Pod, name: &str) {
        let mut mem = self.memory.lock().expect("memory lock");
        if let Some(w) = mem.waiting.get_mut(&pod.meta().uid) {
            w.remove(name);
        }
    }

    fn set_waiting_all(&self, pod: &Pod, attempts: &[Attempt], reason: &str, message: &str) {
        for c in pod.spec.iter().flat_map(|s| s.init_containers.iter().chain(s.containers.iter())) {
            let running = attempts.iter().any(|a| a.name == c.name && a.state == AttemptState::Running);
            if !running {
                self.set_waiting(pod, &c.name, reason, message);
            }
        }
    }

    /// Starts one attempt of a container. On failure, records why it waits and says when to retry.
    async fn start(
        &self,
        pod: &Pod,
        c: &Container,
        role: Role,
        attempt: u32,
        ip: &str,
        vols: &volumes::HostVolumes,
    ) -> Result<(), Action> {
        let m = pod.meta().clone();
        let image = match self.ensure_image(pod, c).await {
            Ok(i) => i,
            Err(wait) => return Err(wait),
        };
        let config_error = |e: String| {
            self.set_waiting(pod, &c.name, "CreateContainerConfigError", &e);
            self.event(pod, "Warning", "Failed", format!("Error: {e}"));
            Action::requeue(Duration::from_secs(5))
        };
        let mut status_pod = pod.clone();
        status_pod.status.get_or_insert_with(Default::default).pod_ip = ip.to_string();
        status_pod.status.get_or_insert_with(Default::default).host_ip = self.node_ip.clone();
        let env = match volumes::env(&status_pod, c, &self.sources()).await {
            Ok(e) => e,
            Err(e @ VolumeError::Config(_)) => return Err(config_error(e.to_string())),
            Err(e) => return Err(config_error(e.to_string())),
        };
        let mut mounts = match volumes::mounts(c, vols, &env) {
            Ok(m) => m,
            Err(e) => return Err(config_error(e.to_string())),
        };
        let pod_dir = self.paths.pod_dir(&m.uid);
        for (file, target) in
            [("hosts", "/etc/hosts"), ("resolv.conf", "/etc/resolv.conf"), ("hostname", "/etc/hostname")]
        {
            if !mounts.iter().any(|b| b.container_path == target) {
                mounts.push(BindMount {
                    host_path: pod_dir.join(file).display().to_string(),
                    container_path: target.into(),
                    read_only: false,
                });
            }
        }
        let pid_namespace = match role {
            Role::Ephemeral => match self.target_pid_namespace(pod, c).await {
                Ok(ns) => ns,
                Err(e) => return Err(config_error(e.to_string())),
            },
            Role::Init | Role::App => None,
        };
        let host_network = pod.spec.as_ref().is_some_and(|s| s.host_network);
        let init = role.is_init();
        let id = container_id(&m.uid, &c.name, init, attempt);
        let input = SpecInput {
            pod: &status_pod,
            container: c,
            image_config: &image.config,
            env,
            mounts,
            netns_path: if host_network {
                String::new()
            } else {
                self.paths.netns(&m.uid).display().to_string()
            },
            pid_namespace,
            cgroups_path: crate::cgroups::Cgroups::container_path(&m.uid, &id),
        };
        let spec = match spec::build(&input) {
            Ok(s) => s,
            Err(e @ (SpecError::NoCommand | SpecError::NonNumericUser(_) | SpecError::RunAsRoot)) => {
                return Err(config_error(e.to_string()));
            }
            Err(e) => return Err(config_error(e.to_string())),
        };
        let log_dir = self.paths.logs(&m.namespace, &m.name, &m.uid).join(&c.name);
        let log = log_dir.join(format!("{attempt}.log"));
        let stdio = StdioSpec::of(c);
        let mut labels = HashMap::from([
            (LABEL_POD_UID.to_string(), m.uid.clone()),
            (LABEL_POD_NAME.to_string(), m.name.clone()),
            (LABEL_POD_NAMESPACE.to_string(), m.namespace.clone()),
            (LABEL_CONTAINER.to_string(), c.name.clone()),
            (LABEL_ATTEMPT.to_string(), attempt.to_string()),
            (LABEL_INIT.to_string(), init.to_string()),
            (LABEL_IMAGE_ID.to_string(), image.digest.clone()),
            (LABEL_LOG.to_string(), log.display().to_string()),
        ]);
        labels.extend(stdio.labels());
        if role == Role::Ephemeral {
            labels.insert(ephemeral::LABEL_EPHEMERAL.to_string(), true.to_string());
        }
        let create_started = Instant::now();
        let created = async {
            std::fs::create_dir_all(&log_dir).map_err(io_err(&log_dir))?;
            // A leftover of the same attempt (a crash mid-start) is replaced.
            self.remove_container(&id).await?;
            self.ctd.prepare_snapshot(&id, &image.chain_id, None).await?;
            self.ctd
                .create_container(&id, &image.name, labels, serde_json::to_vec(&spec).unwrap_or_default())
                .await?;
            // The kubelet's ends of the FIFOs are open before the shim opens its own.
            let fifos = self.io.prepare(&id, stdio, &log)?;
            self.ctd.create_task(&id, fifos.stdio()).await?;
            self.io.start(fifos);
            Ok::<(), SyncError>(())
        }
        .await;
        if let Err(e) = created {
            let _ = self.remove_container(&id).await;
            self.set_waiting(pod, &c.name, "CreateContainerError", &e.to_string());
            self.event(pod, "Warning", "Failed", format!("Error: {e}"));
            return Err(Action::requeue(Duration::from_secs(5)));
        }
        self.metrics.container_create.observe(create_started.elapsed().as_secs_f64());
        self.event(pod, "Normal", "Created", format!("Created container {}", c.name));
        let start_started = Instant::now();
        let start_result = self.ctd.start_task(&id).await;
        self.metrics.container_start.observe(start_started.elapsed().as_secs_f64());
        if let Err(e) = start_result {
            // The task exists but did not start (bad command, ...): runc's message is the reason.
            let msg = e.to_string();
            let labels = HashMap::from([
                (LABEL_EXIT_CODE.to_string(), "128".to_string()),
                (LABEL_FINISHED.to_string(), pod_state::rfc3339(SystemTime::now())),
                (LABEL_REASON.to_string(), "StartError".to_string()),
                (LABEL_STARTED.to_string(), pod_state::rfc3339(SystemTime::now())),
            ]);
            let _ = self.ctd.set_labels(&id, labels).await;
            let _ = self.ctd.kill_task(&id, SIGKILL).await;
            let _ = self.ctd.delete_task(&id).await;
            self.event(pod, "Warning", "Failed", format!("Error: {msg}"));
            self.clear_waiting(pod, &c.name);
            return Err(Action::requeue(Duration::ZERO));
        }
        let _ = self
            .ctd
            .set_labels(
                &id,
                HashMap::from([(LABEL_STARTED.to_string(), pod_state::rfc3339(SystemTime::now()))]),
            )
            .await;
        self.clear_waiting(pod, &c.name);
        self.event(pod, "Normal", "Started", format!("Started container {}", c.name));
        // Keep the attempt before this one (for --previous and lastState); older ones go.
        if attempt >= 2 {
            for old in 0..attempt - 1 {
                let old_id = container_id(&m.uid, &c.name, init, old);
                let _ = self.remove_container(&old_id).await;
                let _ = std::fs::remove_file(log_dir.join(format!("{old}.log")));
            }
        }
        Ok(())
    }

    /// The image of a container, pulled per its pull policy, with Kubernetes' waiting reasons.
    async fn ensure_image(&self, pod: &Pod, c: &Container) -> Result<PulledImage, Action> {
        let uid = pod.meta().uid.clone();
        let policy = if c.image_pull_policy.is_empty() {
            Reference::default_pull_policy(&c.image).to_string()
        } else {
            c.image_pull_policy.clone()
        };
        let present = match crate::image::present(&self.ctd, &c.image).await {
            Ok(p) => p,
            Err(ImageError::InvalidReference { .. }) => {
                let msg =
                    format!("Failed to apply default image tag {:?}: couldn't parse image name", c.image);
                self.set_waiting(pod, &c.name, "InvalidImageName", &msg);
                self.event(pod, "Warning", "InspectFailed", msg);
                return Err(Action::requeue(Duration::from_secs(30)));
            }
            Err(e) => {
                self.set_waiting(pod, &c.name, "ErrImagePull", &e.to_string());
                return Err(Action::requeue(Duration::from_secs(5)));
            }
        };
        match (policy.as_str(), present) {
            ("IfNotPresent", Some(p)) => {
                self.event(
                    pod,
                    "Normal",
                    "Pulled",
                    format!("Container image {:?} already present on machine", c.image),
                );
                return Ok(p);
            }
            ("Never", Some(p)) => return Ok(p),
            ("Never", None) => {
                let msg = format!("Container image {:?} is not present with pull policy of Never", c.image);
                self.set_waiting(pod, &c.name, "ErrImageNeverPull", &msg);
                self.event(pod, "Warning", "ErrImageNeverPull", msg);
                return Err(Action::requeue(Duration::from_secs(30)));
            }
            _ => {}
        }
        let key = (uid, c.name.clone());
        let backoff = self.memory.lock().expect("memory lock").pull_backoff.get(&key).copied();
        if let Some((_, not_before)) = backoff
            && Instant::now() < not_before
        {
            let wait = not_before - Instant::now();
            let msg = format!("Back-off pulling image {:?}", c.image);
            self.set_waiting(pod, &c.name, "ImagePullBackOff", &msg);
            self.event(pod, "Normal", "BackOff", msg);
            return Err(Action::requeue(wait));
        }
        self.event(pod, "Normal", "Pulling", format!("Pulling image {:?}", c.image));
        let started = Instant::now();
        match self.puller.pull(&self.ctd, &c.image).await {
            Ok(p) => {
                self.metrics.image_pull.observe(started.elapsed().as_secs_f64());
                self.memory.lock().expect("memory lock").pull_backoff.remove(&key);
                self.event(
                    pod,
                    "Normal",
                    "Pulled",
                    format!(
                        "Successfully pulled image {:?} in {}",
                        c.image,
                        humantime::format_duration(Duration::from_millis(
                            started.elapsed().as_millis() as u64
                        ))
                    ),
                );
                Ok(p)
            }
            Err(e) => {
                let failures = backoff.map(|(n, _)| n + 1).unwrap_or(1);
                let delay = (pod_state::BACKOFF_INITIAL * (1u32 << (failures - 1).min(5)))
                    .min(pod_state::BACKOFF_MAX);
                self.memory
                    .lock()
                    .expect("memory lock")
                    .pull_backoff
                    .insert(key, (failures, Instant::now() + delay));
                let msg = format!("Failed to pull image {:?}: {e}", c.image);
                self.set_waiting(pod, &c.name, "ErrImagePull", &msg);
                self.event(pod, "Warning", "Failed", msg);
                Err(Action::requeue(delay))
            }
        }
    }

    /// The pod's network namespace and CNI attachment (made once, remembered on disk).
    async fn ensure_network(&self, pod: &Pod) -> Result<String, SyncError> {
        let uid = pod.meta().uid.clone();
        let record = self.paths.pod_dir(&uid).join("network.json");
        let netns = self.paths.netns(&uid);
        if let Ok(text) = std::fs::read_to_string(&record)
            && let Ok(v) = serde_json::from_str::<Value>(&text)
            && let Some(ip) = v.get("ip").and_then(|i| i.as_str())
            && netns.exists()
        {
            return Ok(ip.to_string());
        }
        let setup_started = Instant::now();
        self.netns.create(&netns)?;
        let ports = crate::network::port_mappings(pod);
        let att = match self.cni.add(&uid, &netns, &ports).await {
            Ok(a) => a,
            Err(e) => {
                let _ = self.cni.del(&uid, &netns, &ports, None).await;
                self.event(
                    pod,
                    "Warning",
                    "FailedCreatePodSandBox",
                    format!("Failed to set up pod network: {e}"),
                );
                return Err(e.into());
            }
        };
        let saved = serde_json::json!({ "ip": att.ip, "ports": ports, "result": att.result });
        std::fs::write(&record, saved.to_string()).map_err(io_err(&record))?;
        self.metrics.sandbox_setup.observe(setup_started.elapsed().as_secs_f64());
        Ok(att.ip)
    }

    async fn teardown_network(&self, pod: &Pod) -> Result<(), SyncError> {
        self.teardown_network_of(&pod.meta().uid).await
    }

    /// CNI DEL and the namespace removed; idempotent, works from the record on disk alone.
    pub async fn teardown_network_of(&self, uid: &str) -> Result<(), SyncError> {
        let record = self.paths.pod_dir(uid).join("network.json");
        let netns = self.paths.netns(uid);
        let saved: Value = std::fs::read_to_string(&record)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        if saved.is_null() && !netns.exists() {
            return Ok(());
        }
        let ports = saved.get("ports").cloned().unwrap_or(Value::Array(vec![]));
        self.cni.del(uid, &netns, &ports, saved.get("result")).await?;
        self.netns.remove(&netns)?;
        let _ = std::fs::remove_file(&record);
        Ok(())
    }

    fn write_etc_files(&self, pod: &Pod, pod_dir: &Path, ip: &str) -> Result<(), SyncError> {
        let m = pod.meta();
        let spec = pod.spec.clone().unwrap_or_default();
        let hostname = if spec.hostname.is_empty() { m.name.clone() } else { spec.hostname.clone() };
        let mut hosts = String::from(
            "# Kubernetes-managed hosts file (navarch).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        );
        if !spec.host_network {
            let fqdn = if spec.subdomain.is_empty() {
                String::new()
            } else {
                format!("{hostname}.{}.{}.svc.{}\t", spec.subdomain, m.namespace, self.cluster_domain)
            };
            hosts.push_str(&format!("{ip}\t{fqdn}{hostname}\n"));
        }
        for h in &spec.host_aliases {
            hosts.push_str(&format!("{}\t{}\n", h.ip, h.hostnames.join("\t")));
        }
        let dns_policy = if spec.dns_policy.is_empty() { "ClusterFirst" } else { spec.dns_policy.as_str() };
        let resolv = if (dns_policy == "ClusterFirst" || dns_policy == "ClusterFirstWithHostNet")
            && !self.cluster_dns.is_empty()
            && (!spec.host_network || dns_policy == "ClusterFirstWithHostNet")
        {
            let d = &self.cluster_domain;
            let mut r = String::new();
            for s in &self.cluster_dns {
                r.push_str(&format!("nameserver {s}\n"));
            }
            r.push_str(&format!("search {}.svc.{d} svc.{d} {d}\noptions ndots:5\n", m.namespace));
            r
        } else {
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
        };
        for (name, content) in
            [("hosts", hosts), ("resolv.conf", resolv), ("hostname", format!("{hostname}\n"))]
        {
            let p = pod_dir.join(name);
            if std::fs::read_to_string(&p).ok().as_deref() != Some(content.as_str()) {
                std::fs::write(&p, content).map_err(io_err(&p))?;
            }
        }
        Ok(())
    }

    async fn write_status(&self, pod: &Pod, attempts: &[Attempt], ip: &str) -> Result<(), SyncError> {
        let (ready, started) = self.probes.results(&pod.meta().uid);
        let extra = Extra {
            ready,
            started,
            waiting: self
                .memory
                .lock()
                .expect("memory lock")
                .waiting
                .get(&pod.meta().uid)
                .cloned()
                .unwrap_or_default(),
        };
        let status = pod_state::status(pod, attempts, &extra, ip, &self.node_ip, SystemTime::now());
        if pod.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut updated = pod.clone();
        updated.status = Some(status);
        self.client.api::<Pod>(&pod.meta().namespace).update_status(&updated).await?;
        Ok(())
    }

    /// Graceful stop of a deleted pod: SIGTERM, SIGKILL after the grace period, then everything
    /// removed and the deletion completed in the api-server.
    async fn terminate(&self, pod: &Pod) -> Result<Action, SyncError> {
        let m = pod.meta().clone();
        let attempts = self.observe(&m.uid).await?;
        let live: Vec<&Attempt> = attempts
            .iter()
            .filter(|a| matches!(a.state, AttemptState::Running | AttemptState::Created))
            .collect();
        if !live.is_empty() {
            let grace =
                Duration::from_secs(m.deletion_grace_period_seconds.unwrap_or(DEFAULT_GRACE).max(0) as u64);
            let first = {
                let mut mem = self.memory.lock().expect("memory lock");
                let mut first = false;
                let since = *mem.stopping.entry(m.uid.clone()).or_insert_with(|| {
                    first = true;
                    Instant::now()
                });
                (first, since)
            };
            let (first, since) = first;
            if first {
                for a in &live {
                    self.event(pod, "Normal", "Killing", format!("Stopping container {}", a.name));
                    self.ctd.kill_task(&a.id, SIGTERM).await?;
                }
            }
            if since.elapsed() >= grace {
                for a in &live {
                    self.ctd.kill_task(&a.id, SIGKILL).await?;
                }
            }
            let left = grace.saturating_sub(since.elapsed());
            return Ok(Action::requeue(if left.is_zero() {
                Duration::from_millis(200)
            } else {
                left.min(Duration::from_secs(1))
            }));
        }
        self.cleanup_pod(&m.uid, Some((&m.namespace, &m.name))).await?;
        self.memory.lock().expect("memory lock").stopping.remove(&m.uid);
        let api = self.client.api::<Pod>(&m.namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            precondition_uid: m.uid.clone(),
            ..Default::default()
        };
        match api.delete(&m.name, &params).await {
            Ok(_) | Err(navarch_client::Error::NotFound(_)) => {}
            Err(navarch_client::Error::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(pod = %format!("{}/{}", m.namespace, m.name), "pod stopped and removed");
        Ok(Action::await_change())
    }

    /// Removes everything of a pod on this node: containers, snapshots, network, volumes, cgroups,
    /// logs (when its name is known).
    pub async fn cleanup_pod(&self, uid: &str, name: Option<(&str, &str)>) -> Result<(), SyncError> {
        for rec in self.ctd.list_containers(&[(LABEL_POD_UID, uid)]).await? {
            self.remove_container(&rec.id).await?;
        }
        self.teardown_network_of(uid).await?;
        let pod_dir = self.paths.pod_dir(uid);
        volumes::cleanup(&pod_dir).map_err(io_err(&pod_dir))?;
        crate::cgroups::Cgroups::default().remove_pod(uid);
        if let Some((ns, n)) = name {
            let _ = std::fs::remove_dir_all(self.paths.logs(ns, n, uid));
        }
        self.probes.forget(uid);
        self.tokens.forget_pod(uid);
        let mut mem = self.memory.lock().expect("memory lock");
        mem.waiting.remove(uid);
        mem.pod_start.remove(uid);
        mem.mount_failures.remove(uid);
        mem.pull_backoff.retain(|(u, _), _| u != uid);
        Ok(())
    }

    /// Pods this node runs that the api-server no longer has (deleted while the kubelet was
    /// away): everything of theirs is removed. `known` is every pod uid bound here.
    pub async fn cleanup_orphans(
        &self,
        known: &std::collections::HashSet<String>,
    ) -> Result<usize, SyncError> {
        let mut orphans: std::collections::BTreeMap<String, Option<(String, String)>> = Default::default();
        for rec in self.ctd.list_containers(&[]).await? {
            if let Some(uid) = rec.labels.get(LABEL_POD_UID)
                && !known.contains(uid)
            {
                let ns = rec.labels.get(LABEL_POD_NAMESPACE).cloned().unwrap_or_default();
                let name = rec.labels.get(LABEL_POD_NAME).cloned().unwrap_or_default();
                orphans.insert(uid.clone(), Some((ns, name)));
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.paths.root_dir.join("pods")) {
            for e in entries.flatten() {
                let uid = e.file_name().to_string_lossy().to_string();
                if !known.contains(&uid) {
                    orphans.entry(uid).or_insert(None);
                }
            }
        }
        let n = orphans.len();
        for (uid, name) in orphans {
            tracing::info!(%uid, "removing the remains of a pod that no longer exists");
            let name = name.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
            self.cleanup_pod(&uid, name).await?;
        }
        Ok(n)
    }
}

fn container_of<'a>(pod: &'a Pod, name: &str, init: bool) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    let list = if init { &spec.init_containers } else { &spec.containers };
    list.iter().find(|c| c.name == name)
}
