//! The api-server's configuration: one struct that is its flags and its config file, resolved by the
//! daemon shell (flag > `NAVARCH_APISERVER_*` > `--config` YAML > default; see
//! `navarch_daemon::config`).
//!
//! Services draw their addresses from two ranges, as in Kubernetes: `service_cluster_ip_range`
//! (IPv4, default `10.96.0.0/12`) for `spec.clusterIP`, and `service_node_port_range` (default
//! `30000-32767`) for `spec.ports[*].nodePort` and `spec.healthCheckNodePort`. See
//! [`crate::allocation`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use navarch_api::well_known;
use navarch_daemon::DaemonConfig;
use navarch_daemon::config::{duration, optional_duration};
use serde::{Deserialize, Serialize};

use crate::allocation::{IpRange, PortRange};

#[derive(Debug, Clone, PartialEq, clap::Parser, Serialize, Deserialize)]
#[command(name = "api-server", version, about = "navarch api-server: the API in front of etcd")]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// gRPC listen address.
    #[arg(long, default_value = well_known::API_SERVER)]
    pub listen: SocketAddr,
    /// HTTP listen address for /healthz, /readyz and /metrics.
    #[arg(long, default_value = well_known::API_SERVER_ADMIN)]
    pub http_listen: SocketAddr,
    /// etcd client URLs, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = well_known::ETCD_ENDPOINT)]
    pub etcd_endpoints: Vec<String>,
    /// Key prefix of every object in etcd.
    #[arg(long, default_value = "/registry")]
    pub etcd_prefix: String,
    /// How often watchers that asked for bookmarks get one (e.g. 10s).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    #[serde(with = "duration")]
    pub bookmark_interval: Duration,
    /// Events kept per kind so watches can resume from a recent resourceVersion.
    #[arg(long, default_value_t = 5000)]
    pub watch_history: usize,
    /// Events queued per watcher before a slow watcher is dropped (it relists).
    #[arg(long, default_value_t = 1000)]
    pub watcher_buffer: usize,
    /// Time allowed for in-flight requests to finish on shutdown (e.g. 10s).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
    /// IPv4 CIDR that Service cluster IPs are allocated from (as kubeadm's; the kubelet and kube-proxy
    /// use the same).
    #[arg(long, default_value = well_known::SERVICE_CLUSTER_IP_RANGE)]
    pub service_cluster_ip_range: IpRange,
    /// Ports that Service node ports are allocated from, inclusive.
    #[arg(long, default_value = well_known::SERVICE_NODE_PORT_RANGE)]
    pub service_node_port_range: PortRange,
    /// The serving certificate (PEM, with its chain) of both doors. Required: the api-server only
    /// speaks TLS.
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// The serving certificate's private key.
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// CA bundle client certificates must chain to; a verified certificate's CN is the user and its
    /// O the groups. Required.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// Requests without credentials are `system:anonymous` (group `system:unauthenticated`), which the
    /// default policy lets reach only health and version; false: they get 401.
    #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
    pub anonymous_auth: bool,
    /// CA bundle of etcd's serving certificate (TLS to etcd: the endpoints are `https://`).
    #[arg(long)]
    pub etcd_cafile: Option<PathBuf>,
    /// Client certificate presented to etcd.
    #[arg(long)]
    pub etcd_certfile: Option<PathBuf>,
    #[arg(long)]
    pub etcd_keyfile: Option<PathBuf>,
    /// Client certificate presented to kubelets (logs, exec, attach, port-forward, stats).
    #[arg(long)]
    pub kubelet_client_certificate: Option<PathBuf>,
    #[arg(long)]
    pub kubelet_client_key: Option<PathBuf>,
    /// CA bundle kubelets' serving certificates must chain to. Required.
    #[arg(long)]
    pub kubelet_certificate_authority: Option<PathBuf>,
    /// How often the resource metrics pipeline scrapes every Ready node's kubelet stats (metrics-server's
    /// `--metric-resolution`; e.g. 15s). `metrics.k8s.io` serves the latest sample.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "15s")]
    #[serde(with = "duration")]
    pub metric_resolution: Duration,
    /// Public keys (PEM) that verify ServiceAccount tokens (repeatable or comma-separated; keep an
    /// old key here while its tokens are still in use).
    #[arg(long, value_delimiter = ',')]
    pub service_account_key_file: Vec<PathBuf>,
    /// Private key (PEM, ECDSA P-256) that signs new ServiceAccount tokens (TokenRequest).
    #[arg(long)]
    pub service_account_signing_key_file: Option<PathBuf>,
    /// `iss` of ServiceAccount tokens; further values are accepted in tokens (issuer rotation).
    #[arg(long, value_delimiter = ',', default_value = "https://kubernetes.default.svc.cluster.local")]
    pub service_account_issuer: Vec<String>,
    /// Audiences a token must name to authenticate to this api-server (default: the issuers).
    #[arg(long, value_delimiter = ',')]
    pub api_audiences: Vec<String>,
    /// Longest lifetime a TokenRequest may ask for (e.g. 24h; unset: no cap beyond Kubernetes' 2^32 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(default, with = "optional_duration")]
    pub service_account_max_token_expiration: Option<Duration>,
    /// Bootstrap tokens (`<id>.<secret>`, Secrets `kube-system/bootstrap-token-<id>`) authenticate: new
    /// nodes join with one.
    #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
    pub enable_bootstrap_token_auth: bool,
    /// Kubernetes' EncryptionConfiguration file: which resources are encrypted in etcd, with which
    /// providers and keys (see README, "Encryption at rest"). Unset: values are stored as they are.
    #[arg(long)]
    pub encryption_provider_config: Option<PathBuf>,
    /// Kubernetes' audit policy (`audit.k8s.io/v1 Policy`): which requests are logged at which level.
    /// Unset: nothing is audited.
    #[arg(long)]
    pub audit_policy_file: Option<PathBuf>,
    /// The audit log (one JSON event per line); `-` is standard output. Unset: nothing is audited.
    #[arg(long)]
    pub audit_log_path: Option<PathBuf>,
    /// Size in megabytes at which the audit log is rotated (0: 100).
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxsize: u64,
    /// Rotated audit logs kept (0: all, subject to the maximum age).
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxbackup: usize,
    /// Days a rotated audit log is kept (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxage: u64,
    /// The authorizers every request passes, in order (comma-separated): `Node`, `RBAC`, `AlwaysAllow`,
    /// `AlwaysDeny`. The first that allows or denies decides. `AlwaysAllow` alone turns authorization
    /// off (benchmark baselines; never on a real cluster).
    #[arg(long, value_delimiter = ',', default_value = "Node,RBAC")]
    pub authorization_mode: Vec<String>,
    /// Admission plugins turned off that are on by default (comma-separated): `ServiceAccount`,
    /// `LimitRanger`, `DefaultStorageClass`, `StorageObjectInUseProtection`, `Priority`, `ResourceQuota`.
    #[arg(long, value_delimiter = ',')]
    pub disable_admission_plugins: Vec<String>,
    /// The address pods reach this api-server at: the Endpoints of the `default/kubernetes` Service
    /// (default: the `listen` address unless that is 0.0.0.0; a loopback address gets no Endpoints).
    #[arg(long)]
    pub advertise_address: Option<std::net::IpAddr>,
}

/// The admission plugins `disable_admission_plugins` may name (those on by default).
pub const DEFAULT_ADMISSION_PLUGINS: &[&str] = &[
    crate::admission::service_account::PLUGIN,
    crate::admission::limit_range::PLUGIN,
    crate::admission::storage::DEFAULT_STORAGE_CLASS,
    crate::admission::storage::STORAGE_OBJECT_IN_USE_PROTECTION,
    crate::admission::priority::PLUGIN,
    crate::admission::resource_quota::PLUGIN,
];

impl Config {
    /// Whether the admission plugin `name` runs.
    pub fn admission_enabled(&self, name: &str) -> bool {
        !self.disable_admission_plugins.iter().any(|p| p == name)
    }

    /// The address the `kubernetes` Service's Endpoints name: `advertise_address`, else the listen
    /// address unless unspecified.
    pub fn advertised(&self) -> Option<std::net::IpAddr> {
        self.advertise_address.or_else(|| Some(self.listen.ip()).filter(|ip| !ip.is_unspecified()))
    }
}

impl DaemonConfig for Config {
    const ENV_PREFIX: &'static str = "NAVARCH_APISERVER";

    fn finish(&mut self) -> Result<(), String> {
        if self.etcd_endpoints.is_empty() {
            return Err("etcd_endpoints: at least one endpoint is required".into());
        }
        if !self.etcd_prefix.starts_with('/') {
            return Err(format!("etcd_prefix: must start with '/', got {:?}", self.etcd_prefix));
        }
        if self.watcher_buffer == 0 || self.watch_history == 0 {
            return Err("watch_history and watcher_buffer: must be at least 1".into());
        }
        if self.metric_resolution < Duration::from_secs(1) {
            return Err(format!("metric_resolution: must be at least 1s, got {:?}", self.metric_resolution));
        }
        for (key, value) in [
            ("tls_cert_file", &self.tls_cert_file),
            ("tls_private_key_file", &self.tls_private_key_file),
            ("client_ca_file", &self.client_ca_file),
            ("kubelet_certificate_authority", &self.kubelet_certificate_authority),
        ] {
            if value.is_none() {
                return Err(format!(
                    "{key}: required (the api-server only serves TLS and verifies kubelets)"
                ));
            }
        }
        if self.kubelet_client_certificate.is_some() != self.kubelet_client_key.is_some() {
            return Err("kubelet_client_certificate and kubelet_client_key: give both or neither".into());
        }
        if self.etcd_certfile.is_some() != self.etcd_keyfile.is_some() {
            return Err("etcd_certfile and etcd_keyfile: give both or neither".into());
        }
        crate::authorization::Mode::parse_all(&self.authorization_mode)
            .map_err(|e| format!("authorization_mode: {e}"))?;
        self.disable_admission_plugins.retain(|p| !p.is_empty());
        if let Some(p) =
            self.disable_admission_plugins.iter().find(|p| !DEFAULT_ADMISSION_PLUGINS.contains(&p.as_str()))
        {
            return Err(format!(
                "disable_admission_plugins: unknown plugin {p:?} (known: {})",
                DEFAULT_ADMISSION_PLUGINS.join(", ")
            ));
        }
        if let Some(a) = self.advertise_address
            && (a.is_loopback() || a.is_unspecified() || a.is_multicast())
        {
            return Err(format!(
                "advertise_address: {a}: must be an address pods can reach (not loopback, unspecified or multicast)"
            ));
        }
        let etcd_tls = self.etcd_endpoints.iter().filter(|e| e.starts_with("https://")).count();
        if etcd_tls > 0 && (etcd_tls != self.etcd_endpoints.len() || self.etcd_cafile.is_none()) {
            return Err(
                "etcd_endpoints: https:// endpoints need etcd_cafile, and all endpoints the same scheme"
                    .into(),
            );
        }
        Ok(())
    }
}

/// How the ranges are written in flags and files: `10.96.0.0/12`, `30000-32767`.
mod range_text {
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::allocation::{IpRange, PortRange};

    macro_rules! written_as_text {
        ($t:ty) => {
            impl FromStr for $t {
                type Err = String;
                fn from_str(s: &str) -> Result<$t, String> {
                    <$t>::parse(s)
                }
            }
            impl Serialize for $t {
                fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.collect_str(self)
                }
            }
            impl<'de> Deserialize<'de> for $t {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                    <$t>::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
                }
            }
        };
    }
    written_as_text!(IpRange);
    written_as_text!(PortRange);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files every api-server needs (never read by these tests).
    const TLS: &[&str] = &[
        "--tls-cert-file=/pki/apiserver.crt",
        "--tls-private-key-file=/pki/apiserver.key",
        "--client-ca-file=/pki/ca.crt",
        "--kubelet-certificate-authority=/pki/ca.crt",
    ];

    fn config(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        let all: Vec<&str> = TLS.iter().chain(args).copied().collect();
        navarch_daemon::resolve_args::<Config>(&all, env)
    }

    fn config_yaml(yaml: &str, env: &[(&str, &str)]) -> Result<Config, String> {
        navarch_daemon::resolve_yaml::<Config>(yaml, TLS, env)
    }

    #[test]
    fn tls_is_required() {
        let e = navarch_daemon::resolve_args::<Config>(&[], &[]).unwrap_err();
        assert!(e.starts_with("tls_cert_file: required"), "{e}");
        let e = config(&["--etcd-endpoints=https://a:2379"], &[]).unwrap_err();
        assert!(e.contains("etcd_cafile"), "{e}");
        config(&["--etcd-endpoints=https://a:2379", "--etcd-cafile=/pki/etcd/ca.crt"], &[]).unwrap();
        assert!(config(&["--kubelet-client-key=/k"], &[]).is_err());
    }

    #[test]
    fn defaults_and_checks() {
        let c = config(&[], &[]).unwrap();
        assert_eq!((c.listen.port(), c.http_listen.port()), (6443, 6444));
        assert_eq!(c.etcd_endpoints, ["http://127.0.0.1:2379"]);
        assert_eq!(
            (c.watch_history, c.watcher_buffer, c.bookmark_interval),
            (5000, 1000, Duration::from_secs(10))
        );
        assert_eq!(
            config(&["--etcd-prefix", "registry"], &[]).unwrap_err(),
            "etcd_prefix: must start with '/', got \"registry\""
        );
        assert!(config(&["--watcher-buffer", "0"], &[]).is_err());
        assert_eq!(c.metric_resolution, Duration::from_secs(15));
        assert_eq!(
            config(&["--metric-resolution=30s"], &[]).unwrap().metric_resolution,
            Duration::from_secs(30)
        );
        assert!(config(&["--metric-resolution=100ms"], &[]).is_err());
        let c = config(
            &["--etcd-endpoints", "http://a:2379,http://b:2379"],
            &[("NAVARCH_APISERVER_WATCHER_BUFFER", "77")],
        )
        .unwrap();
        assert_eq!((c.etcd_endpoints.len(), c.watcher_buffer), (2, 77));
    }

    #[test]
    fn authorization_modes() {
        assert_eq!(config(&[], &[]).unwrap().authorization_mode, ["Node", "RBAC"]);
        config(&["--authorization-mode=AlwaysAllow"], &[]).unwrap();
        let e = config(&["--authorization-mode=RBAC,ABAC"], &[]).unwrap_err();
        assert_eq!(
            e,
            "authorization_mode: authorization-mode \"ABAC\" is not a valid mode (valid: Node, RBAC, AlwaysAllow, AlwaysDeny)"
        );
        let e = config(&["--authorization-mode=RBAC,RBAC"], &[]).unwrap_err();
        assert_eq!(e, "authorization_mode: authorization-mode \"RBAC\" has mode specified more than once");
        assert!(config(&["--authorization-mode="], &[]).is_err());
    }

    #[test]
    fn admission_plugins_and_advertise_address() {
        let c = config(&[], &[]).unwrap();
        assert!(c.admission_enabled("ServiceAccount"));
        assert_eq!(c.advertised(), Some("127.0.0.1".parse().unwrap()));
        let c =
            config(&["--disable-admission-plugins=ServiceAccount", "--listen=0.0.0.0:6443"], &[]).unwrap();
        assert!(!c.admission_enabled("ServiceAccount"));
        assert_eq!(c.advertised(), None);
        let c = config(&["--disable-admission-plugins=", "--advertise-address=10.0.0.5"], &[]).unwrap();
        assert!(c.disable_admission_plugins.is_empty());
        assert_eq!(c.advertised(), Some("10.0.0.5".parse().unwrap()));
        let e = config(&["--disable-admission-plugins=Nope"], &[]).unwrap_err();
        assert_eq!(
            e,
            "disable_admission_plugins: unknown plugin \"Nope\" (known: ServiceAccount, LimitRanger, DefaultStorageClass, StorageObjectInUseProtection, Priority, ResourceQuota)"
        );
        let e = config(&["--advertise-address=127.0.0.1"], &[]).unwrap_err();
        assert!(e.starts_with("advertise_address: 127.0.0.1: must be"), "{e}");
    }

    #[test]
    fn service_ranges() {
        let c = config(&[], &[]).unwrap();
        assert_eq!(c.service_cluster_ip_range.to_string(), "10.96.0.0/12");
        assert_eq!(c.service_node_port_range.to_string(), "30000-32767");
        let ranges = "service_cluster_ip_range: 10.100.0.0/24\nservice_node_port_range: 31000-31999\n";
        let env = [("NAVARCH_APISERVER_SERVICE_NODE_PORT_RANGE", "32000-32099")];
        let c = config_yaml(ranges, &env).unwrap();
        assert_eq!(c.service_cluster_ip_range.to_string(), "10.100.0.0/24", "file beats default");
        assert_eq!(c.service_node_port_range.to_string(), "32000-32099", "env beats file");
        for (range, reason) in [
            ("10.96.0.0", "invalid CIDR \"10.96.0.0\""),
            ("10.96.0.0/33", "invalid CIDR"),
            ("10.96.0.5/16", "10.96.0.5/16 is not a network address"),
            ("fd00::/112", "only IPv4 ranges are supported"),
            ("10.96.0.0/31", "10.96.0.0/31 is too small"),
        ] {
            let e = config(&["--service-cluster-ip-range", range], &[]).unwrap_err();
            assert!(e.contains(reason), "{range}: {e}");
        }
        for range in ["30000", "32767-30000", "0-10", "30000-70000", "a-b", ""] {
            let e = config(&[], &[("NAVARCH_APISERVER_SERVICE_NODE_PORT_RANGE", range)]).unwrap_err();
            assert!(e.starts_with("NAVARCH_APISERVER_SERVICE_NODE_PORT_RANGE: "), "{range}: {e}");
        }
        let e = config_yaml("service_cluster_ip_range: 10.96.0.5/16\n", &[]).unwrap_err();
        assert!(e.contains("service_cluster_ip_range: 10.96.0.5/16 is not a network address"), "{e}");
    }
}
