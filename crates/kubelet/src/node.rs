//! The node: registration of this machine's Node (capacity and allocatable read from the host,
//! addresses, labels, system info), its heartbeat Lease in `kube-node-lease`, and its conditions
//! (Ready, MemoryPressure, DiskPressure, PIDPressure) kept current.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use navarch_api::Resource;
use navarch_api::v1::{
    Lease, LeaseSpec, Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo, ObjectMeta,
    Quantity,
};
use navarch_client::{Client, Error as ClientError};
use tokio_util::sync::CancellationToken;

/// What the host has.
#[derive(Debug, Clone, PartialEq)]
pub struct HostResources {
    pub cpus: u64,
    pub memory_bytes: u64,
    pub ephemeral_storage_bytes: u64,
    pub memory_available_bytes: u64,
    pub disk_available_bytes: u64,
    pub pids_max: u64,
    pub pids_used: u64,
}

fn meminfo(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Total and available bytes of the filesystem holding `path` ((0, 0) if it cannot be read).
fn statvfs(path: &Path) -> (u64, u64) {
    crate::stats::host::statvfs(path).map(|f| (f.capacity_bytes, f.available_bytes)).unwrap_or((0, 0))
}

impl HostResources {
    pub fn read(root_dir: &Path) -> HostResources {
        let probe = if root_dir.exists() { root_dir } else { Path::new("/") };
        let (total, avail) = statvfs(probe);
        let pids_used = std::fs::read_dir("/proc")
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
                    .count()
            })
            .unwrap_or(0) as u64;
        HostResources {
            cpus: std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1),
            memory_bytes: meminfo("MemTotal:"),
            memory_available_bytes: meminfo("MemAvailable:"),
            ephemeral_storage_bytes: total,
            disk_available_bytes: avail,
            pids_max: std::fs::read_to_string("/proc/sys/kernel/pid_max")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(32768),
            pids_used,
        }
    }
}

/// Settings of the node object.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub name: String,
    pub ip: String,
    pub pod_cidr: Option<String>,
    pub max_pods: u32,
    pub reserved_cpu: String,
    pub reserved_memory: String,
    pub runtime_version: String,
    pub kubelet_port: i32,
}

fn q(s: impl Into<String>) -> Quantity {
    Quantity::new(s)
}

/// capacity and allocatable (capacity minus reservations, never below zero).
pub fn resources(
    h: &HostResources,
    s: &NodeSettings,
) -> (BTreeMap<String, Quantity>, BTreeMap<String, Quantity>) {
    let milli = |q: &str| navarch_api::quantity::parse(q).map(|a| a.milli_value()).unwrap_or(0).max(0) as u64;
    let bytes = |q: &str| navarch_api::quantity::parse(q).map(|a| a.value()).unwrap_or(0).max(0) as u64;
    let capacity: BTreeMap<String, Quantity> = [
        ("cpu".to_string(), q(h.cpus.to_string())),
        ("memory".to_string(), q(format!("{}Ki", h.memory_bytes / 1024))),
        ("ephemeral-storage".to_string(), q(format!("{}Ki", h.ephemeral_storage_bytes / 1024))),
        ("pods".to_string(), q(s.max_pods.to_string())),
    ]
    .into();
    let cpu_m = (h.cpus * 1000).saturating_sub(milli(&s.reserved_cpu));
    let mem = h.memory_bytes.saturating_sub(bytes(&s.reserved_memory));
    let allocatable: BTreeMap<String, Quantity> = [
        ("cpu".to_string(), q(format!("{cpu_m}m"))),
        ("memory".to_string(), q(format!("{}Ki", mem / 1024))),
        ("ephemeral-storage".to_string(), q(format!("{}Ki", h.ephemeral_storage_bytes / 1024))),
        ("pods".to_string(), q(s.max_pods.to_string())),
    ]
    .into();
    (capacity, allocatable)
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The pressure conditions (eviction thresholds like the kubelet's defaults: memory.available <
/// 100Mi, nodefs.available < 10%, pids > 90% of pid_max) and Ready.
pub fn conditions(h: &HostResources, ready: (bool, &str, &str), old: &[NodeCondition]) -> Vec<NodeCondition> {
    let now = now();
    let cond = |ty: &str, ok: bool, reason_ok: &str, reason_bad: &str, msg_ok: &str, msg_bad: &str| {
        let status = if ok { "True" } else { "False" };
        let since = old
            .iter()
            .find(|c| c.r#type == ty && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        NodeCondition {
            r#type: ty.into(),
            status: status.into(),
            last_heartbeat_time: now.clone(),
            last_transition_time: since,
            reason: if ok { reason_ok.into() } else { reason_bad.into() },
            message: if ok { msg_ok.into() } else { msg_bad.into() },
        }
    };
    let mem_pressure = h.memory_available_bytes < 100 * 1024 * 1024;
    let disk_pressure =
        h.ephemeral_storage_bytes > 0 && h.disk_available_bytes * 10 < h.ephemeral_storage_bytes;
    let pid_pressure = h.pids_used * 10 > h.pids_max * 9;
    vec![
        cond(
            "MemoryPressure",
            mem_pressure,
            "KubeletHasInsufficientMemory",
            "KubeletHasSufficientMemory",
            "kubelet has insufficient memory available",
            "kubelet has sufficient memory available",
        ),
        cond(
            "DiskPressure",
            disk_pressure,
            "KubeletHasDiskPressure",
            "KubeletHasNoDiskPressure",
            "kubelet has disk pressure",
            "kubelet has no disk pressure",
        ),
        cond(
            "PIDPressure",
            pid_pressure,
            "KubeletHasInsufficientPID",
            "KubeletHasSufficientPID",
            "kubelet has insufficient PID available",
            "kubelet has sufficient PID available",
        ),
        cond("Ready", ready.0, ready.1, ready.1, ready.2, ready.2),
    ]
}

fn os_image() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The node's status from the host, the runtime's health and its images (`None`: they could not be
/// listed, the last reported stay).
pub fn node_status(
    s: &NodeSettings,
    h: &HostResources,
    runtime_ok: Result<(), String>,
    images: Option<Vec<navarch_api::v1::ContainerImage>>,
    old: &NodeStatus,
) -> NodeStatus {
    let (capacity, allocatable) = resources(h, s);
    let ready = match &runtime_ok {
        Ok(()) => (true, "KubeletReady", "kubelet is posting ready status"),
        Err(_) => (false, "KubeletNotReady", "container runtime is down"),
    };
    let trim = |p: &str| std::fs::read_to_string(p).unwrap_or_default().trim().to_string();
    NodeStatus {
        capacity,
        allocatable,
        conditions: conditions(h, ready, &old.conditions),
        addresses: vec![
            NodeAddress { r#type: "InternalIP".into(), address: s.ip.clone() },
            NodeAddress { r#type: "Hostname".into(), address: s.name.clone() },
        ],
        daemon_endpoints: Some(navarch_api::v1::NodeDaemonEndpoints {
            kubelet_endpoint: Some(navarch_api::v1::DaemonEndpoint { port: s.kubelet_port }),
        }),
        node_info: Some(NodeSystemInfo {
            machine_id: trim("/etc/machine-id"),
            boot_id: trim("/proc/sys/kernel/random/boot_id"),
            kernel_version: trim("/proc/sys/kernel/osrelease"),
            os_image: os_image(),
            container_runtime_version: s.runtime_version.clone(),
            kubelet_version: format!("v{}-navarch", env!("CARGO_PKG_VERSION")),
            operating_system: "linux".into(),
            architecture: arch().into(),
            ..Default::default()
        }),
        images: images.unwrap_or_else(|| old.images.clone()),
        ..old.clone()
    }
}

/// Creates the Node if missing (labels, pod CIDR) and returns it.
pub async fn register(client: &Client, s: &NodeSettings) -> Result<Node, ClientError> {
    let api = client.api::<Node>("");
    if let Some(n) = api.get_opt(&s.name).await? {
        return Ok(n);
    }
    let mut node = Node {
        metadata: Some(ObjectMeta {
            name: s.name.clone(),
            labels: [
                ("kubernetes.io/hostname".to_string(), s.name.clone()),
                ("kubernetes.io/os".to_string(), "linux".to_string()),
                ("kubernetes.io/arch".to_string(), arch().to_string()),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        }),
        spec: Some(NodeSpec {
            pod_cidr: s.pod_cidr.clone().unwrap_or_default(),
            pod_cid_rs: s.pod_cidr.iter().cloned().collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    node.set_type_meta();
    match api.create(&node).await {
        Ok(n) => Ok(n),
        Err(ClientError::AlreadyExists(_)) => api.get(&s.name).await,
        Err(e) => Err(e),
    }
}

/// Renews the node's Lease every `interval` until cancelled.
pub async fn heartbeat(client: Client, node: String, interval: Duration, shutdown: CancellationToken) {
    let api = client.api::<Lease>("kube-node-lease");
    let duration = (interval.as_secs() * 4).max(40) as i32;
    let mut tick = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let result = match api.get_opt(&node).await {
            Ok(Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(Default::default);
                spec.renew_time = Some(now_micro());
                spec.holder_identity = Some(node.clone());
                spec.lease_duration_seconds = Some(duration);
                api.update(&lease).await.map(|_| ())
            }
            Ok(None) => {
                let mut lease = Lease {
                    metadata: Some(ObjectMeta {
                        name: node.clone(),
                        namespace: "kube-node-lease".into(),
                        ..Default::default()
                    }),
                    spec: Some(LeaseSpec {
                        holder_identity: Some(node.clone()),
                        lease_duration_seconds: Some(duration),
                        renew_time: Some(now_micro()),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                lease.set_type_meta();
                api.create(&lease).await.map(|_| ())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(%node, error = %e, "renewing the node lease");
        }
    }
}

fn now_micro() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostResources {
        HostResources {
            cpus: 2,
            memory_bytes: 4 << 30,
            ephemeral_storage_bytes: 100 << 30,
            memory_available_bytes: 2 << 30,
            disk_available_bytes: 50 << 30,
            pids_max: 32768,
            pids_used: 300,
        }
    }

    fn settings() -> NodeSettings {
        NodeSettings {
            name: "n1".into(),
            ip: "192.0.2.2".into(),
            pod_cidr: None,
            max_pods: 110,
            reserved_cpu: "100m".into(),
            reserved_memory: "256Mi".into(),
            runtime_version: "containerd".into(),
            kubelet_port: 10250,
        }
    }

    #[test]
    fn allocatable_is_capacity_minus_reserved() {
        let (cap, alloc) = resources(&host(), &settings());
        assert_eq!(cap["cpu"].string, "2");
        assert_eq!(alloc["cpu"].string, "1900m");
        assert_eq!(alloc["memory"].string, format!("{}Ki", ((4u64 << 30) - (256 << 20)) / 1024));
        assert_eq!(alloc["pods"].string, "110");
    }

    #[test]
    fn pressure_conditions() {
        let mut h = host();
        let c = conditions(&h, (true, "KubeletReady", "ok"), &[]);
        assert!(c.iter().filter(|c| c.r#type != "Ready").all(|c| c.status == "False"));
        h.memory_available_bytes = 50 << 20;
        h.disk_available_bytes = 1 << 30;
        let c = conditions(&h, (false, "KubeletNotReady", "down"), &c);
        let get = |t: &str| c.iter().find(|x| x.r#type == t).unwrap().status.clone();
        assert_eq!(get("MemoryPressure"), "True");
        assert_eq!(get("DiskPressure"), "True");
        assert_eq!(get("Ready"), "False");
    }
}
