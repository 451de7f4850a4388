//! Kubelet configuration. Precedence: flag > environment (`NAVARCH_KUBELET_*`) > config file
//! (`--config`, YAML, unknown keys rejected) > default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::image::Mirrors;

/// Flags and environment; every setting optional so an unset one falls through to the file.
#[derive(Debug, Default, Parser)]
#[command(
    name = "kubelet",
    version,
    about = "navarch kubelet: runs the pods bound to this node on containerd"
)]
pub struct Args {
    /// YAML config file (keys as the long flags, with '_' for '-').
    #[arg(long, env = "NAVARCH_KUBELET_CONFIG")]
    pub config: Option<PathBuf>,
    /// api-server address.
    #[arg(long, env = "NAVARCH_KUBELET_SERVER")]
    pub server: Option<String>,
    /// This node's name (default: the hostname).
    #[arg(long, env = "NAVARCH_KUBELET_NODE_NAME")]
    pub node_name: Option<String>,
    /// This node's IP, reported as InternalIP and the pods' hostIP (default: the host's first
    /// non-loopback IPv4 address).
    #[arg(long, env = "NAVARCH_KUBELET_NODE_IP")]
    pub node_ip: Option<String>,
    /// containerd's gRPC socket.
    #[arg(long, env = "NAVARCH_KUBELET_CONTAINERD_SOCKET")]
    pub containerd_socket: Option<PathBuf>,
    /// containerd namespace the kubelet's containers and images live in.
    #[arg(long, env = "NAVARCH_KUBELET_CONTAINERD_NAMESPACE")]
    pub containerd_namespace: Option<String>,
    /// Persistent state: pod volumes, CNI address leases.
    #[arg(long, env = "NAVARCH_KUBELET_ROOT_DIR")]
    pub root_dir: Option<PathBuf>,
    /// Runtime state: pinned network namespaces.
    #[arg(long, env = "NAVARCH_KUBELET_RUN_DIR")]
    pub run_dir: Option<PathBuf>,
    /// Container logs (`<namespace>_<pod>_<uid>/<container>/<restart>.log`).
    #[arg(long, env = "NAVARCH_KUBELET_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
    /// Where the CNI plugin executables are.
    #[arg(long, env = "NAVARCH_KUBELET_CNI_BIN_DIR")]
    pub cni_bin_dir: Option<PathBuf>,
    /// Linux bridge the pods are attached to.
    #[arg(long, env = "NAVARCH_KUBELET_BRIDGE")]
    pub bridge: Option<String>,
    /// This node's pod CIDR (default: the Node's spec.podCIDR, waited for).
    #[arg(long, env = "NAVARCH_KUBELET_POD_CIDR")]
    pub pod_cidr: Option<String>,
    /// The whole cluster's pod range (an unreachable route covers it).
    #[arg(long, env = "NAVARCH_KUBELET_CLUSTER_CIDR")]
    pub cluster_cidr: Option<String>,
    /// The Service range (an unreachable route covers it).
    #[arg(long, env = "NAVARCH_KUBELET_SERVICE_CIDR")]
    pub service_cidr: Option<String>,
    /// Let pods send to addresses outside the cluster's ranges (off: such packets are rejected).
    #[arg(long, env = "NAVARCH_KUBELET_ALLOW_POD_EGRESS")]
    pub allow_pod_egress: Option<bool>,
    /// Ranges besides the cluster's that pods may reach when egress is off (comma-separated CIDRs,
    /// e.g. the node network where a host-side cluster DNS listens).
    #[arg(long, env = "NAVARCH_KUBELET_POD_EGRESS_ALLOWED", value_delimiter = ',')]
    pub pod_egress_allowed: Option<Vec<String>>,
    /// Cluster DNS server IPs written into pods' resolv.conf (comma-separated).
    #[arg(long, env = "NAVARCH_KUBELET_CLUSTER_DNS", value_delimiter = ',')]
    pub cluster_dns: Option<Vec<String>>,
    #[arg(long, env = "NAVARCH_KUBELET_CLUSTER_DOMAIN")]
    pub cluster_domain: Option<String>,
    /// Registry mirrors, `host=endpoint` (repeatable; e.g. docker.io=http://127.0.0.1:5000).
    #[arg(long = "registry-mirror", env = "NAVARCH_KUBELET_REGISTRY_MIRRORS", value_delimiter = ',')]
    pub registry_mirrors: Option<Vec<String>>,
    /// Extra CA certificates (PEM files, comma-separated) trusted for registries over HTTPS, beside
    /// the system's.
    #[arg(long = "registry-ca", env = "NAVARCH_KUBELET_REGISTRY_CA", value_delimiter = ',')]
    pub registry_ca_files: Option<Vec<PathBuf>>,
    /// Registry hosts spoken to over plain HTTP (comma-separated).
    #[arg(long, env = "NAVARCH_KUBELET_INSECURE_REGISTRIES", value_delimiter = ',')]
    pub insecure_registries: Option<Vec<String>>,
    /// HTTP address for /healthz and /metrics.
    #[arg(long, env = "NAVARCH_KUBELET_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// gRPC address of the kubelet API (logs, exec, stats), which the api-server dials at the
    /// node's InternalIP and this port. Default: the node IP, port 10250. It has no
    /// authentication: bind it only where the api-server alone can reach it.
    #[arg(long, env = "NAVARCH_KUBELET_GRPC_LISTEN")]
    pub grpc_listen: Option<SocketAddr>,
    /// Size at which a container's log file is rotated, a quantity (e.g. 10Mi).
    #[arg(long, env = "NAVARCH_KUBELET_CONTAINER_LOG_MAX_SIZE")]
    pub container_log_max_size: Option<String>,
    /// Log files kept per container, the live one included (at least 2).
    #[arg(long, env = "NAVARCH_KUBELET_CONTAINER_LOG_MAX_FILES")]
    pub container_log_max_files: Option<u32>,
    /// Heartbeat (Lease renewal) interval, e.g. 10s.
    #[arg(long, env = "NAVARCH_KUBELET_HEARTBEAT", value_parser = humantime::parse_duration)]
    pub heartbeat: Option<Duration>,
    /// Maximum pods on this node.
    #[arg(long, env = "NAVARCH_KUBELET_MAX_PODS")]
    pub max_pods: Option<u32>,
    /// CPU kept from pods (allocatable = capacity - reserved), a quantity.
    #[arg(long, env = "NAVARCH_KUBELET_RESERVED_CPU")]
    pub reserved_cpu: Option<String>,
    /// Memory kept from pods, a quantity.
    #[arg(long, env = "NAVARCH_KUBELET_RESERVED_MEMORY")]
    pub reserved_memory: Option<String>,
    /// Pods synced at once.
    #[arg(long, env = "NAVARCH_KUBELET_WORKERS")]
    pub workers: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub server: Option<String>,
    pub node_name: Option<String>,
    pub node_ip: Option<String>,
    pub containerd_socket: Option<PathBuf>,
    pub containerd_namespace: Option<String>,
    pub root_dir: Option<PathBuf>,
    pub run_dir: Option<PathBuf>,
    pub log_dir: Option<PathBuf>,
    pub cni_bin_dir: Option<PathBuf>,
    pub bridge: Option<String>,
    pub pod_cidr: Option<String>,
    pub cluster_cidr: Option<String>,
    pub service_cidr: Option<String>,
    pub allow_pod_egress: Option<bool>,
    pub pod_egress_allowed: Option<Vec<String>>,
    pub cluster_dns: Option<Vec<String>>,
    pub cluster_domain: Option<String>,
    /// Host → endpoints, like containerd's hosts.toml.
    pub registry_mirrors: Option<BTreeMap<String, Vec<String>>>,
    pub insecure_registries: Option<Vec<String>>,
    pub registry_ca_files: Option<Vec<PathBuf>>,
    pub http_listen: Option<SocketAddr>,
    pub grpc_listen: Option<SocketAddr>,
    pub container_log_max_size: Option<String>,
    pub container_log_max_files: Option<u32>,
    #[serde(default, with = "humantime_serde_opt")]
    pub heartbeat: Option<Duration>,
    pub max_pods: Option<u32>,
    pub reserved_cpu: Option<String>,
    pub reserved_memory: Option<String>,
    pub workers: Option<usize>,
}

mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom)).transpose()
    }
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: String,
    pub node_name: String,
    pub node_ip: String,
    pub containerd_socket: PathBuf,
    pub containerd_namespace: String,
    pub root_dir: PathBuf,
    pub run_dir: PathBuf,
    pub log_dir: PathBuf,
    pub cni_bin_dir: PathBuf,
    pub bridge: String,
    pub pod_cidr: Option<String>,
    pub cluster_cidr: String,
    pub service_cidr: String,
    pub allow_pod_egress: bool,
    pub pod_egress_allowed: Vec<String>,
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    pub mirrors: Mirrors,
    pub registry_ca_files: Vec<PathBuf>,
    pub http_listen: SocketAddr,
    pub grpc_listen: SocketAddr,
    pub log_rotation: crate::logs::Rotation,
    pub heartbeat: Duration,
    pub max_pods: u32,
    pub reserved_cpu: String,
    pub reserved_memory: String,
    pub workers: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Parse { path: PathBuf, source: serde_yaml::Error },
    #[error("{0}")]
    Invalid(String),
}

fn load(path: &Path) -> Result<FileConfig, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_lowercase()
}

/// The first global IPv4 address of this host, read from /proc (no packets sent).
fn host_ipv4() -> String {
    // /proc/net/fib_trie lists local addresses as "/32 host LOCAL" after the address line.
    let trie = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    let mut prev = "";
    for line in trie.lines() {
        let l = line.trim();
        if l.starts_with("/32 host LOCAL") {
            let ip = prev.trim_start_matches(|c: char| !c.is_ascii_digit()).trim();
            if !ip.starts_with("127.") && !ip.is_empty() {
                return ip.to_string();
            }
        }
        prev = l;
    }
    "127.0.0.1".into()
}

fn parse_mirrors(flags: Vec<String>) -> Result<BTreeMap<String, Vec<String>>, ConfigError> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in flags {
        let (host, ep) = f
            .split_once('=')
            .ok_or_else(|| ConfigError::Invalid(format!("registry_mirrors: {f:?}: must be host=endpoint")))?;
        out.entry(host.to_string()).or_default().push(ep.to_string());
    }
    Ok(out)
}

impl Config {
    pub fn resolve(args: Args) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(p) => load(p)?,
            None => FileConfig::default(),
        };
        let mirrors = match args.registry_mirrors {
            Some(flags) => parse_mirrors(flags)?,
            None => file.registry_mirrors.unwrap_or_default(),
        };
        let node_ip = args.node_ip.clone().or(file.node_ip.clone()).unwrap_or_else(host_ipv4);
        let c = Config {
            server: args.server.or(file.server).unwrap_or_else(|| "127.0.0.1:6443".into()),
            node_name: args.node_name.or(file.node_name).unwrap_or_else(hostname),
            node_ip: node_ip.clone(),
            containerd_socket: args
                .containerd_socket
                .or(file.containerd_socket)
                .unwrap_or_else(|| "/run/containerd/containerd.sock".into()),
            containerd_namespace: args
                .containerd_namespace
                .or(file.containerd_namespace)
                .unwrap_or_else(|| "navarch".into()),
            root_dir: args.root_dir.or(file.root_dir).unwrap_or_else(|| "/var/lib/navarch/kubelet".into()),
            run_dir: args.run_dir.or(file.run_dir).unwrap_or_else(|| "/run/navarch/kubelet".into()),
            log_dir: args.log_dir.or(file.log_dir).unwrap_or_else(|| "/var/log/navarch/pods".into()),
            cni_bin_dir: args.cni_bin_dir.or(file.cni_bin_dir).unwrap_or_else(|| "/usr/lib/cni".into()),
            bridge: args.bridge.or(file.bridge).unwrap_or_else(|| "navarch0".into()),
            pod_cidr: args.pod_cidr.or(file.pod_cidr),
            cluster_cidr: args.cluster_cidr.or(file.cluster_cidr).unwrap_or_else(|| "10.244.0.0/16".into()),
            service_cidr: args.service_cidr.or(file.service_cidr).unwrap_or_else(|| "10.96.0.0/12".into()),
            allow_pod_egress: args.allow_pod_egress.or(file.allow_pod_egress).unwrap_or(false),
            pod_egress_allowed: args.pod_egress_allowed.or(file.pod_egress_allowed).unwrap_or_default(),
            cluster_dns: args.cluster_dns.or(file.cluster_dns).unwrap_or_default(),
            cluster_domain: args
                .cluster_domain
                .or(file.cluster_domain)
                .unwrap_or_else(|| "cluster.local".into()),
            mirrors: Mirrors {
                mirrors,
                insecure: args.insecure_registries.or(file.insecure_registries).unwrap_or_default(),
            },
            registry_ca_files: args.registry_ca_files.or(file.registry_ca_files).unwrap_or_default(),
            http_listen: args
                .http_listen
                .or(file.http_listen)
                .unwrap_or_else(|| "127.0.0.1:10248".parse().expect("valid address")),
            grpc_listen: args
                .grpc_listen
                .or(file.grpc_listen)
                .unwrap_or_else(|| SocketAddr::new(node_ip.parse().unwrap_or([127, 0, 0, 1].into()), 10250)),
            log_rotation: crate::logs::Rotation {
                max_size: {
                    let q = args
                        .container_log_max_size
                        .or(file.container_log_max_size)
                        .unwrap_or_else(|| "10Mi".into());
                    let v = navarch_api::quantity::parse(&q).map_err(|e| {
                        ConfigError::Invalid(format!("container_log_max_size: {q:?} is not a quantity: {e}"))
                    })?;
                    v.value().max(1) as u64
                },
                max_files: {
                    let n = args.container_log_max_files.or(file.container_log_max_files).unwrap_or(5);
                    if n < 2 {
                        return Err(ConfigError::Invalid(
                            "container_log_max_files: must be at least 2".into(),
                        ));
                    }
                    n
                },
            },
            heartbeat: args.heartbeat.or(file.heartbeat).unwrap_or(Duration::from_secs(10)),
            max_pods: args.max_pods.or(file.max_pods).unwrap_or(110),
            reserved_cpu: args.reserved_cpu.or(file.reserved_cpu).unwrap_or_else(|| "100m".into()),
            reserved_memory: args.reserved_memory.or(file.reserved_memory).unwrap_or_else(|| "256Mi".into()),
            workers: args.workers.or(file.workers).unwrap_or(16),
        };
        if c.node_name.is_empty() {
            return Err(ConfigError::Invalid("node_name: must not be empty".into()));
        }
        for (field, q) in [("reserved_cpu", &c.reserved_cpu), ("reserved_memory", &c.reserved_memory)] {
            navarch_api::quantity::parse(q)
                .map_err(|e| ConfigError::Invalid(format!("{field}: {q:?} is not a quantity: {e}")))?;
        }
        for (field, cidr) in
            [("cluster_cidr", Some(&c.cluster_cidr)), ("service_cidr", Some(&c.service_cidr))]
                .into_iter()
                .chain([("pod_cidr", c.pod_cidr.as_ref())])
                .chain(c.pod_egress_allowed.iter().map(|r| ("pod_egress_allowed", Some(r))))
        {
            if let Some(cidr) = cidr {
                crate::netcfg::parse_cidr(cidr).map_err(|e| ConfigError::Invalid(format!("{field}: {e}")))?;
            }
        }
        if c.heartbeat < Duration::from_secs(1) {
            return Err(ConfigError::Invalid("heartbeat: must be at least 1s".into()));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults() {
        let c = Config::resolve(Args { node_name: Some("n1".into()), ..Args::default() }).unwrap();
        assert_eq!(c.server, "127.0.0.1:6443");
        assert_eq!(c.containerd_namespace, "navarch");
        assert_eq!(c.heartbeat, Duration::from_secs(10));
        assert!(!c.allow_pod_egress);
        assert!(!c.node_ip.is_empty());
        assert_eq!(c.log_rotation, crate::logs::Rotation { max_size: 10 << 20, max_files: 5 });
        // The kubelet API listens on the node's address unless told otherwise.
        let c = Config::resolve(Args {
            node_name: Some("n1".into()),
            node_ip: Some("10.1.2.3".into()),
            ..Args::default()
        })
        .unwrap();
        assert_eq!(c.grpc_listen.to_string(), "10.1.2.3:10250");
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let f = file(
            "server: 10.0.0.1:6443\nnode_name: from-file\nheartbeat: 3s\nregistry_mirrors:\n  docker.io: [\"http://127.0.0.1:5000\"]\n",
        );
        let path = f.path().to_str().unwrap().to_string();
        // SAFETY: only this test reads or writes this variable.
        unsafe { std::env::set_var("NAVARCH_KUBELET_NODE_NAME", "from-env") };
        let c = Config::resolve(Args::try_parse_from(["kubelet", "--config", &path]).unwrap()).unwrap();
        assert_eq!(c.server, "10.0.0.1:6443", "file beats default");
        assert_eq!(c.node_name, "from-env", "env beats file");
        assert_eq!(c.heartbeat, Duration::from_secs(3));
        assert_eq!(c.mirrors.endpoints("docker.io")[0], "http://127.0.0.1:5000");
        let c = Config::resolve(
            Args::try_parse_from([
                "kubelet",
                "--config",
                &path,
                "--node-name",
                "from-flag",
                "--registry-mirror",
                "docker.io=http://127.0.0.1:6000",
            ])
            .unwrap(),
        )
        .unwrap();
        assert_eq!(c.node_name, "from-flag", "flag beats env");
        assert_eq!(c.mirrors.endpoints("docker.io")[0], "http://127.0.0.1:6000");
        unsafe { std::env::remove_var("NAVARCH_KUBELET_NODE_NAME") };
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let f = file("servr: x\n");
        let err = Config::resolve(Args { config: Some(f.path().into()), ..Args::default() }).unwrap_err();
        assert!(err.to_string().contains("unknown field `servr`"), "{err}");
        let bad =
            Args { node_name: Some("n".into()), pod_cidr: Some("10.0.0.0/33".into()), ..Args::default() };
        assert!(Config::resolve(bad).unwrap_err().to_string().starts_with("pod_cidr:"));
        let bad = Args { node_name: Some("n".into()), container_log_max_files: Some(1), ..Args::default() };
        assert!(Config::resolve(bad).unwrap_err().to_string().starts_with("container_log_max_files:"));
        let bad = Args { node_name: Some("n".into()), reserved_cpu: Some("lots".into()), ..Args::default() };
        assert!(Config::resolve(bad).unwrap_err().to_string().starts_with("reserved_cpu:"));
    }
}
