//! The kubelet's configuration: one struct that is its flags and its config file, resolved by the
//! daemon shell (flag > `NAVARCH_KUBELET_*` > `--config` YAML > default; see `navarch_daemon::config`).
//! `finish` fills in what depends on the host (node name, node IP, the kubelet API address) and
//! derives `mirrors` and `log_rotation`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use navarch_api::{Ipv4Cidr, well_known};
use navarch_daemon::DaemonConfig;
use navarch_daemon::config::duration;
use serde::{Deserialize, Serialize};

use crate::image::Mirrors;

#[derive(Debug, Clone, PartialEq, clap::Parser, Serialize, Deserialize)]
#[command(name = "kubelet", version, about = "navarch kubelet: runs this node's pods on containerd")]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// kubeconfig with the api-server's address, its CA and this component's credentials (client
    /// certificate or token). Required: the api-server only accepts authenticated TLS clients.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// api-server address (`host:port` or `https://host:port`), overriding the kubeconfig's.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub server: String,
    /// kubeconfig with a join (bootstrap) token, the api-server's address and its CA. While
    /// `kubeconfig` holds no usable client certificate, the kubelet asks for one with it (a
    /// CertificateSigningRequest the controller-manager approves and signs) and writes `kubeconfig`:
    /// Kubernetes' TLS bootstrapping.
    #[arg(long)]
    pub bootstrap_kubeconfig: Option<PathBuf>,
    /// This node's name (default: the kernel hostname, lowercased).
    #[arg(long, default_value = "", hide_default_value = true)]
    pub node_name: String,
    /// This node's IP, reported as InternalIP and the pods' hostIP (default: the host's first
    /// non-loopback IPv4 address).
    #[arg(long, default_value = "", hide_default_value = true)]
    pub node_ip: String,
    /// containerd's gRPC socket.
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    pub containerd_socket: PathBuf,
    /// containerd namespace the kubelet's containers and images live in.
    #[arg(long, default_value = "navarch")]
    pub containerd_namespace: String,
    /// Persistent state: pod volumes, CNI address leases.
    #[arg(long, default_value = "/var/lib/navarch/kubelet")]
    pub root_dir: PathBuf,
    /// Runtime state: pinned network namespaces.
    #[arg(long, default_value = "/run/navarch/kubelet")]
    pub run_dir: PathBuf,
    /// Container logs (`<namespace>_<pod>_<uid>/<container>/<restart>.log`).
    #[arg(long, default_value = "/var/log/navarch/pods")]
    pub log_dir: PathBuf,
    /// Where the CNI plugin executables are.
    #[arg(long, default_value = "/usr/lib/cni")]
    pub cni_bin_dir: PathBuf,
    /// Linux bridge the pods are attached to.
    #[arg(long, default_value = "navarch0")]
    pub bridge: String,
    /// This node's pod CIDR (default: the Node's spec.podCIDR, waited for).
    #[arg(long)]
    pub pod_cidr: Option<Ipv4Cidr>,
    /// The whole cluster's pod range (an unreachable route covers it).
    #[arg(long, default_value = well_known::CLUSTER_CIDR)]
    pub cluster_cidr: Ipv4Cidr,
    /// The Service range (an unreachable route covers it). `--service-cidr` is its older name.
    #[arg(long, alias = "service-cidr", default_value = well_known::SERVICE_CLUSTER_IP_RANGE)]
    pub service_cluster_ip_range: Ipv4Cidr,
    /// Let pods send to addresses outside the cluster's ranges (off: such packets are rejected). The
    /// node network stays guarded either way (see `pod_egress_allowed`).
    #[arg(long, action = clap::ArgAction::Set, default_value_t = false)]
    pub allow_pod_egress: bool,
    /// The node network (comma-separated CIDRs, e.g. where a host-side cluster DNS and the api-server
    /// listen): pods reach it only for DNS (port 53) and the api-server's port. With egress off, the
    /// only addresses outside the cluster's ranges pods reach at all; with egress on, joined by the
    /// subnets of the host's own addresses.
    #[arg(long, value_delimiter = ',')]
    pub pod_egress_allowed: Vec<Ipv4Cidr>,
    /// Cluster DNS server IPs written into pods' resolv.conf (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Vec<String>,
    /// The cluster's DNS domain, in pods' resolv.conf search list.
    #[arg(long, default_value = well_known::CLUSTER_DOMAIN)]
    pub cluster_domain: String,
    /// Registry mirrors, `host=endpoint` (repeatable or comma-separated; e.g.
    /// docker.io=http://127.0.0.1:5000). In the file: a map of host to a list of endpoints.
    #[arg(long = "registry-mirror", value_delimiter = ',')]
    #[serde(with = "mirror_map")]
    pub registry_mirrors: Vec<MirrorEntry>,
    /// Extra CA certificates (PEM files, comma-separated) trusted for registries over HTTPS, beside
    /// the system's.
    #[arg(long = "registry-ca", value_delimiter = ',')]
    pub registry_ca_files: Vec<PathBuf>,
    /// Registry hosts spoken to over plain HTTP (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub insecure_registries: Vec<String>,
    /// HTTP address for /healthz, /readyz and /metrics.
    #[arg(long, default_value = well_known::KUBELET_ADMIN)]
    pub http_listen: SocketAddr,
    /// gRPC address of the kubelet API (logs, exec, stats), which the api-server dials at the
    /// node's InternalIP and this port. Default: the node IP, port 10250. TLS only; clients present a
    /// certificate of `client_ca_file`.
    #[arg(long)]
    pub grpc_listen: Option<SocketAddr>,
    /// The kubelet API's serving certificate (its SANs: the node's name and InternalIP). Without it,
    /// the kubelet asks the cluster for one (signer `kubernetes.io/kubelet-serving`) once its Node is
    /// registered, and keeps it in `cert_dir`.
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// Where the serving certificate the kubelet asked for is kept (default: `<root_dir>/pki`).
    #[arg(long)]
    pub cert_dir: Option<PathBuf>,
    /// CA bundle the kubelet API's clients' certificates must chain to (default: the CA of
    /// `kubeconfig`, which signs the api-server's client certificate).
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// Size at which a container's log file is rotated, a quantity (e.g. 10Mi).
    #[arg(long, default_value = "10Mi")]
    pub container_log_max_size: String,
    /// Log files kept per container, the live one included (at least 2).
    #[arg(long, default_value_t = 5)]
    pub container_log_max_files: u32,
    /// Heartbeat (Lease renewal) interval, e.g. 10s.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    #[serde(with = "duration")]
    pub heartbeat: Duration,
    /// Maximum pods on this node.
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// CPU kept from pods (allocatable = capacity - reserved), a quantity.
    #[arg(long, default_value = "100m")]
    pub reserved_cpu: String,
    /// Memory kept from pods, a quantity.
    #[arg(long, default_value = "256Mi")]
    pub reserved_memory: String,
    /// Pods synced at once.
    #[arg(long, default_value_t = 16)]
    pub workers: usize,
    /// Derived: registry mirrors and insecure hosts.
    #[arg(skip)]
    #[serde(skip)]
    pub mirrors: Mirrors,
    /// Derived: log rotation limits.
    #[arg(skip)]
    #[serde(skip)]
    pub log_rotation: crate::logs::Rotation,
}

/// One `host=endpoint` mirror setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorEntry {
    pub host: String,
    pub endpoint: String,
}

impl FromStr for MirrorEntry {
    type Err = String;

    fn from_str(s: &str) -> Result<MirrorEntry, String> {
        match s.split_once('=') {
            Some((host, endpoint)) if !host.is_empty() && !endpoint.is_empty() => {
                Ok(MirrorEntry { host: host.to_string(), endpoint: endpoint.to_string() })
            }
            _ => Err(format!("{s:?}: must be host=endpoint")),
        }
    }
}

/// Mirrors in a file: `{docker.io: [http://127.0.0.1:5000]}`, like containerd's hosts.toml.
mod mirror_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::MirrorEntry;

    pub fn serialize<S: Serializer>(v: &[MirrorEntry], s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(super::by_host(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<MirrorEntry>, D::Error> {
        let map = BTreeMap::<String, Vec<String>>::deserialize(d)?;
        Ok(map
            .into_iter()
            .flat_map(|(host, eps)| {
                eps.into_iter().map(move |endpoint| MirrorEntry { host: host.clone(), endpoint })
            })
            .collect())
    }
}

fn by_host(v: &[MirrorEntry]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in v {
        out.entry(m.host.clone()).or_default().push(m.endpoint.clone());
    }
    out
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

impl DaemonConfig for Config {
    const ENV_PREFIX: &'static str = "NAVARCH_KUBELET";
    const ENV_ALIASES: &'static [(&'static str, &'static str)] = &[
        ("NAVARCH_KUBELET_REGISTRY_CA", "registry_ca_files"),
        ("NAVARCH_KUBELET_SERVICE_CIDR", "service_cluster_ip_range"),
    ];

    fn finish(&mut self) -> Result<(), String> {
        if self.node_name.is_empty() {
            self.node_name = hostname();
        }
        if self.node_name.is_empty() {
            return Err("node_name: must not be empty".into());
        }
        if self.node_ip.is_empty() {
            self.node_ip = host_ipv4();
        }
        if self.tls_cert_file.is_some() != self.tls_private_key_file.is_some() {
            return Err("tls_cert_file and tls_private_key_file: give both or neither".into());
        }
        if self.bootstrap_kubeconfig.is_some() && self.kubeconfig.is_none() {
            return Err(
                "kubeconfig: required with bootstrap_kubeconfig (where the credentials are written)".into()
            );
        }
        if self.grpc_listen.is_none() {
            let ip = self.node_ip.parse().unwrap_or([127, 0, 0, 1].into());
            self.grpc_listen = Some(SocketAddr::new(ip, well_known::KUBELET_API_PORT));
        }
        for (field, q) in [
            ("reserved_cpu", &self.reserved_cpu),
            ("reserved_memory", &self.reserved_memory),
            ("container_log_max_size", &self.container_log_max_size),
        ] {
            navarch_api::quantity::parse(q).map_err(|e| format!("{field}: {q:?} is not a quantity: {e}"))?;
        }
        if self.container_log_max_files < 2 {
            return Err("container_log_max_files: must be at least 2".into());
        }
        if self.heartbeat < Duration::from_secs(1) {
            return Err("heartbeat: must be at least 1s".into());
        }
        let max_size =
            navarch_api::quantity::parse(&self.container_log_max_size).map(|q| q.value()).unwrap_or(1);
        self.log_rotation = crate::logs::Rotation {
            max_size: max_size.max(1) as u64,
            max_files: self.container_log_max_files,
        };
        self.mirrors =
            Mirrors { mirrors: by_host(&self.registry_mirrors), insecure: self.insecure_registries.clone() };
        Ok(())
    }
}

impl Config {
    /// Where a requested serving certificate is kept.
    pub fn cert_dir(&self) -> PathBuf {
        self.cert_dir.clone().unwrap_or_else(|| self.root_dir.join("pki"))
    }

    /// The kubelet API's address (set by `finish`).
    pub fn grpc_listen(&self) -> SocketAddr {
        self.grpc_listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], well_known::KUBELET_API_PORT)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_derived() {
        let config = navarch_daemon::resolve_args::<Config>;
        let c = config(&["--node-name", "n1"], &[]).unwrap();
        assert_eq!((c.server.as_str(), c.containerd_namespace.as_str()), ("", "navarch"));
        assert_eq!((c.heartbeat, c.allow_pod_egress), (Duration::from_secs(10), false));
        assert!(!c.node_ip.is_empty());
        assert_eq!(c.log_rotation, crate::logs::Rotation { max_size: 10 << 20, max_files: 5 });
        // The kubelet API listens on the node's address unless told otherwise.
        let c = config(&["--node-name", "n1", "--node-ip", "10.1.2.3"], &[]).unwrap();
        assert_eq!(c.grpc_listen().to_string(), "10.1.2.3:10250");
        assert!(!config(&[], &[]).unwrap().node_name.is_empty(), "the hostname by default");
        let old_names = config(&["--service-cidr", "10.100.0.0/16"], &[]).unwrap().service_cluster_ip_range;
        assert_eq!(old_names.to_string(), "10.100.0.0/16");
    }

    #[test]
    fn mirrors_from_flags_env_and_file() {
        let config = navarch_daemon::resolve_args::<Config>;
        let yaml =
            "registry_mirrors:\n  docker.io: [\"http://127.0.0.1:5000\"]\ninsecure_registries: [r:5000]\n";
        let from_file = |args: &[&str]| navarch_daemon::resolve_yaml::<Config>(yaml, args, &[]);
        let c = from_file(&[]).unwrap();
        assert_eq!(c.mirrors.endpoints("docker.io")[0], "http://127.0.0.1:5000");
        assert_eq!(c.mirrors.insecure, ["r:5000"]);
        let c = from_file(&["--registry-mirror", "docker.io=http://127.0.0.1:6000"]).unwrap();
        assert_eq!(c.mirrors.endpoints("docker.io")[0], "http://127.0.0.1:6000");
        let env = [
            ("NAVARCH_KUBELET_REGISTRY_MIRRORS", "quay.io=http://a,quay.io=http://b"),
            ("NAVARCH_KUBELET_REGISTRY_CA", "/ca.pem"),
        ];
        let c = config(&[], &env).unwrap();
        assert_eq!(c.mirrors.mirrors["quay.io"], ["http://a", "http://b"]);
        assert_eq!(c.registry_ca_files, [PathBuf::from("/ca.pem")]);
        // Printed as a map, read back the same.
        let yaml = navarch_daemon::to_yaml(&c);
        assert!(yaml.contains("registry_mirrors:\n  quay.io:\n  - http://a\n  - http://b\n"), "{yaml}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let config = navarch_daemon::resolve_args::<Config>;
        let e = config(&["--pod-cidr", "10.0.0.0/33"], &[]).unwrap_err();
        assert!(e.contains("--pod-cidr"), "{e}");
        assert_eq!(
            config(&["--container-log-max-files", "1"], &[]).unwrap_err(),
            "container_log_max_files: must be at least 2"
        );
        assert!(config(&["--reserved-cpu", "lots"], &[]).unwrap_err().starts_with("reserved_cpu:"));
        assert!(
            config(&["--registry-mirror", "docker.io"], &[]).unwrap_err().contains("must be host=endpoint")
        );
        let e = config(&[], &[("NAVARCH_KUBELET_POD_EGRESS_ALLOWED", "10.250.0.0/16,nope")]).unwrap_err();
        assert!(e.starts_with("NAVARCH_KUBELET_POD_EGRESS_ALLOWED: "), "{e}");
    }
}
