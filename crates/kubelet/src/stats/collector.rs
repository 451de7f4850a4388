//! The sampler behind the kubelet's stats and its cAdvisor-style metrics: every period it lists the
//! running containers (containerd), reads their cgroups and the pods' (CPU, memory, limits), each
//! pod's network namespace, the node's interfaces and filesystems, and takes the writable layers'
//! and volumes' sizes from the [`DiskUsageCache`]. The latest two samples are kept (CPU rates are
//! taken between them); readers never trigger a sample.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use containerd_client::types::Mount;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::du::{DiskUsageCache, Measured};
use super::fs::FsStats;
use super::net::{InterfaceStats, default_route_interface, parse_net_dev};
use crate::cgroups::{Cgroups, Limits, Usage, node_usage};
use crate::containerd::{ContainerRecord, Containerd, RuntimeError, TaskState};
use crate::pods::{LABEL_CONTAINER, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID, LABEL_STARTED};

/// How often the sampler runs (cAdvisor's housekeeping interval).
pub const SAMPLE_PERIOD: Duration = Duration::from_secs(10);
/// How often directory sizes are measured again (cAdvisor's and Kubernetes' disk usage period).
pub const DISK_USAGE_PERIOD: Duration = Duration::from_secs(60);

/// One running container.
#[derive(Debug, Clone, Default)]
pub struct ContainerSample {
    /// containerd's container id.
    pub id: String,
    pub pod_uid: String,
    pub pod_name: String,
    pub namespace: String,
    /// The container's name in the pod.
    pub name: String,
    pub image: String,
    pub started: Option<SystemTime>,
    pub usage: Usage,
    pub limits: Option<Limits>,
    /// Its writable layer, once measured.
    pub rootfs: Option<Measured>,
}

/// One pod with a running container.
#[derive(Debug, Clone, Default)]
pub struct PodSample {
    pub uid: String,
    pub name: String,
    pub namespace: String,
    /// The pod cgroup's usage.
    pub usage: Option<Usage>,
    /// Its namespace's interfaces but `lo`; None for hostNetwork pods (no namespace of their own).
    pub network: Option<Vec<InterfaceStats>>,
    /// Volume name → bytes used, once measured.
    pub volumes: Vec<(String, Measured)>,
}

/// The machine.
#[derive(Debug, Clone, Default)]
pub struct NodeSample {
    pub usage: Usage,
    /// The host's interfaces but `lo`.
    pub interfaces: Vec<InterfaceStats>,
    /// The default-route interface (the node's network in the stats).
    pub primary_interface: Option<String>,
    /// The kubelet root's filesystem and the image filesystem (containerd's snapshots).
    pub root_fs: Option<FsStats>,
    pub image_fs: Option<FsStats>,
    /// The image filesystem's mount source (cAdvisor's `device` label of containers' fs series).
    pub image_fs_device: String,
}

/// Facts about the machine that do not change (cAdvisor's machine info).
#[derive(Debug, Clone, Default)]
pub struct MachineInfo {
    pub cores: u64,
    pub memory_bytes: u64,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the cgroups were read (CPU rates are taken between two samples' instants).
    pub at: Instant,
    pub time: SystemTime,
    pub node: NodeSample,
    pub pods: Vec<PodSample>,
    pub containers: Vec<ContainerSample>,
}

/// The last two samples.
#[derive(Debug, Clone)]
pub struct Samples {
    pub previous: Arc<Snapshot>,
    pub current: Arc<Snapshot>,
    /// Time between them (the CPU rates' window).
    pub window: Duration,
}

/// The writable layer of a container's snapshot mounts: overlay's `upperdir`, or the directory
/// bind-mounted for a snapshot without parents.
pub fn writable_layer(mounts: &[Mount]) -> Option<PathBuf> {
    let m = mounts.first()?;
    match m.r#type.as_str() {
        "overlay" => m.options.iter().find_map(|o| o.strip_prefix("upperdir=")).map(PathBuf::from),
        "bind" => Some(PathBuf::from(&m.source)),
        _ => None,
    }
}

/// What the blocking part of a sample reads, gathered from containerd first.
struct Inputs {
    containers: Vec<(ContainerRecord, Option<PathBuf>)>,
    image_fs_dir: Option<PathBuf>,
}

/// Where the collector reads (parameters so tests use files of their own).
#[derive(Debug, Clone)]
pub struct HostPaths {
    pub cgroups: Cgroups,
    /// `/proc`.
    pub proc_root: PathBuf,
    /// The kubelet's root (pods' volumes under `pods/<uid>/volumes/<name>`).
    pub root_dir: PathBuf,
    /// The kubelet's run directory (pods' network namespaces under `netns/<uid>`).
    pub run_dir: PathBuf,
}

impl HostPaths {
    /// Reads everything but containerd (blocking: cgroup and proc files, statvfs, entering
    /// namespaces).
    fn read(&self, inputs: &Inputs, du: &DiskUsageCache) -> Snapshot {
        let (at, time) = (Instant::now(), SystemTime::now());
        let mut pods: Vec<PodSample> = Vec::new();
        let mut containers = Vec::new();
        for (r, layer) in &inputs.containers {
            let label = |k: &str| r.labels.get(k).cloned().unwrap_or_default();
            let uid = label(LABEL_POD_UID);
            let Some(usage) = self.cgroups.container_usage(&uid, &r.id) else { continue };
            if !pods.iter().any(|p| p.uid == uid) {
                pods.push(self.pod(&uid, label(LABEL_POD_NAME), label(LABEL_POD_NAMESPACE), du));
            }
            containers.push(ContainerSample {
                id: r.id.clone(),
                pod_name: label(LABEL_POD_NAME),
                namespace: label(LABEL_POD_NAMESPACE),
                name: label(LABEL_CONTAINER),
                image: r.image.clone(),
                started: r.labels.get(LABEL_STARTED).and_then(|t| navarch_api::rfc3339::parse(t).ok()),
                usage,
                limits: self.cgroups.container_limits(&uid, &r.id),
                rootfs: layer.as_deref().and_then(|l| du.get(l)),
                pod_uid: uid,
            });
        }
        let net_dev = std::fs::read_to_string(self.proc_root.join("net/dev")).unwrap_or_default();
        let route = std::fs::read_to_string(self.proc_root.join("net/route")).unwrap_or_default();
        let node = NodeSample {
            usage: node_usage(&self.proc_root).unwrap_or_default(),
            interfaces: parse_net_dev(&net_dev),
            primary_interface: default_route_interface(&route),
            root_fs: super::host::statvfs(&self.root_dir),
            image_fs: inputs.image_fs_dir.as_deref().and_then(super::host::statvfs),
            image_fs_device: inputs.image_fs_dir.as_deref().map(|d| self.device_of(d)).unwrap_or_default(),
        };
        Snapshot { at, time, node, pods, containers }
    }

    fn device_of(&self, dir: &Path) -> String {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::metadata(dir) else { return String::new() };
        let (major, minor) = (nix::sys::stat::major(meta.dev()), nix::sys::stat::minor(meta.dev()));
        let mountinfo = std::fs::read_to_string(self.proc_root.join("self/mountinfo")).unwrap_or_default();
        super::fs::mount_source(&mountinfo, major, minor).unwrap_or_default()
    }

    fn pod(&self, uid: &str, name: String, namespace: String, du: &DiskUsageCache) -> PodSample {
        let netns = self.run_dir.join("netns").join(uid);
        let network = if netns.exists() {
            match super::host::net_dev_in(&netns) {
                Ok(text) => Some(parse_net_dev(&text)),
                Err(e) => {
                    tracing::debug!(pod = %format!("{namespace}/{name}"), error = %e, "reading the pod's network counters");
                    None
                }
            }
        } else {
            None
        };
        let volumes_dir = self.root_dir.join("pods").join(uid).join("volumes");
        let mut volumes: Vec<(String, Measured)> = std::fs::read_dir(&volumes_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), du.get(&e.path())?)))
            .collect();
        volumes.sort_by(|a, b| a.0.cmp(&b.0));
        PodSample {
            uid: uid.to_string(),
            name,
            namespace,
            usage: self.cgroups.pod_usage(uid),
            network,
            volumes,
        }
    }
}

/// Reads the machine's fixed facts.
pub fn machine_info(proc_root: &Path) -> MachineInfo {
    let read = |p: &Path| std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_default();
    let meminfo = read(&proc_root.join("meminfo"));
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:")?.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    MachineInfo {
        // Online logical CPUs (not the kubelet's own share, which available_parallelism gives).
        cores: nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
            .ok()
            .flatten()
            .map_or(1, |n| n.max(1) as u64),
        memory_bytes: kb * 1024,
        machine_id: read(Path::new("/etc/machine-id")),
        system_uuid: read(Path::new("/sys/class/dmi/id/product_uuid")),
        boot_id: read(&proc_root.join("sys/kernel/random/boot_id")),
    }
}

/// Whether `current` has a container `previous` (the sample before it) did not have.
fn has_newcomer(previous: Option<&Snapshot>, current: &Snapshot) -> bool {
    let Some(previous) = previous else { return false };
    current.containers.iter().any(|c| !previous.containers.iter().any(|p| p.id == c.id))
}

pub struct StatsCollector {
    ctd: Containerd,
    paths: HostPaths,
    pub machine: MachineInfo,
    du: DiskUsageCache,
    /// Container id → its writable layer (asked of containerd once).
    layers: Mutex<HashMap<String, Option<PathBuf>>>,
    image_fs_dir: Mutex<Option<PathBuf>>,
    latest: watch::Sender<Option<Samples>>,
}

impl StatsCollector {
    pub fn new(ctd: Containerd, paths: HostPaths) -> Arc<StatsCollector> {
        Arc::new(StatsCollector {
            ctd,
            machine: machine_info(&paths.proc_root),
            paths,
            du: DiskUsageCache::default(),
            layers: Mutex::default(),
            image_fs_dir: Mutex::default(),
            latest: watch::channel(None).0,
        })
    }

    /// The last two samples, if taken.
    pub fn latest(&self) -> Option<Samples> {
        self.latest.borrow().clone()
    }

    /// The last two samples, waiting up to `timeout` for the first ones after a start.
    pub async fn wait(&self, timeout: Duration) -> Option<Samples> {
        let mut rx = self.latest.subscribe();
        let ready = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
        ready.ok()?.ok()?.clone()
    }

    async fn inputs(&self) -> Result<Inputs, RuntimeError> {
        let mut containers = Vec::new();
        for r in self.ctd.list_containers(&[]).await? {
            if !r.labels.contains_key(LABEL_POD_UID)
                || !matches!(self.ctd.task_state(&r.id).await?, TaskState::Running { .. })
            {
                continue;
            }
            let known = self.layers.lock().expect("layers lock").get(&r.id).cloned();
            let layer = match known {
                Some(l) => l,
                None => match self.ctd.snapshot_mounts(&r.id).await {
                    Ok(mounts) => {
                        let l = writable_layer(&mounts);
                        self.layers.lock().expect("layers lock").insert(r.id.clone(), l.clone());
                        l
                    }
                    // Asked again next time.
                    Err(_) => None,
                },
            };
            containers.push((r, layer));
        }
        let live: std::collections::HashSet<&str> = containers.iter().map(|(r, _)| r.id.as_str()).collect();
        self.layers.lock().expect("layers lock").retain(|id, _| live.contains(id.as_str()));
        let mut image_fs_dir = self.image_fs_dir.lock().expect("image fs lock").clone();
        if image_fs_dir.is_none() {
            image_fs_dir = self.ctd.snapshotter_root().await.ok().flatten();
            *self.image_fs_dir.lock().expect("image fs lock") = image_fs_dir.clone();
        }
        Ok(Inputs { containers, image_fs_dir })
    }

    async fn sample(&self) -> Result<Option<Snapshot>, RuntimeError> {
        let inputs = self.inputs().await?;
        let (paths, du) = (self.paths.clone(), self.du.clone());
        match tokio::task::spawn_blocking(move || paths.read(&inputs, &du)).await {
            Ok(s) => Ok(Some(s)),
            Err(e) => {
                tracing::warn!(error = %e, "reading container stats");
                Ok(None)
            }
        }
    }

    /// Samples every [`SAMPLE_PERIOD`] (the first two a second apart) until `shutdown`, and keeps
    /// the directory sizes measured.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let du = self.du.clone().run(DISK_USAGE_PERIOD, shutdown.clone());
        tokio::join!(du, self.sample_loop(shutdown));
    }

    async fn sample_loop(&self, shutdown: CancellationToken) {
        let mut last: Option<Arc<Snapshot>> = None;
        loop {
            // A container seen for the first time gets its second sample (its first CPU rate) a second
            // later, as cAdvisor's dynamic housekeeping starts new containers at 1 s.
            let mut newcomer = false;
            match self.sample().await {
                Ok(None) => {}
                Ok(Some(s)) => {
                    let current = Arc::new(s);
                    newcomer = has_newcomer(last.as_deref(), &current);
                    if let Some(previous) = last.take() {
                        let window = current.at.duration_since(previous.at);
                        self.latest.send_replace(Some(Samples {
                            previous,
                            current: current.clone(),
                            window,
                        }));
                    }
                    last = Some(current);
                }
                Err(e) => tracing::warn!(error = %e, "sampling container stats"),
            }
            let wait = if self.latest.borrow().is_none() || newcomer {
                Duration::from_secs(1)
            } else {
                SAMPLE_PERIOD
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
