//! The controller-manager's configuration: one struct that is its flags and its config file, resolved
//! by the daemon shell (flag > `NAVARCH_CONTROLLER_MANAGER_*` > `--config` YAML > default; see
//! `navarch_daemon::config`). `pod_subnets` and `node_lifecycle` are derived from the settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use navarch_api::{Ipv4Cidr, well_known};
use navarch_daemon::DaemonConfig;
use navarch_daemon::config::duration;
use serde::{Deserialize, Serialize};

use crate::node_ipam::Subnets;
use crate::node_lifecycle::LifecycleConfig;

#[derive(Debug, Clone, PartialEq, clap::Parser, Serialize, Deserialize)]
#[command(name = "controller-manager", version, about = "navarch controller-manager: ReplicaSets and more")]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// kubeconfig with the api-server's address, its CA and this component's credentials (client
    /// certificate or token). Required: the api-server only accepts authenticated TLS clients.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// api-server address (`host:port` or `https://host:port`), overriding the kubeconfig's.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub server: String,
    /// HTTP address for /healthz, /readyz and /metrics.
    #[arg(long, default_value = well_known::CONTROLLER_MANAGER_ADMIN)]
    pub http_listen: SocketAddr,
    /// Elect a leader through a Lease so several instances can run and only one acts.
    #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
    pub leader_elect: bool,
    /// This instance's identity in the Lease (default: hostname and pid).
    #[arg(long)]
    pub identity: Option<String>,
    /// The pod network of the cluster, cut into one subnet per node.
    #[arg(long, default_value = well_known::CLUSTER_CIDR)]
    pub cluster_cidr: Ipv4Cidr,
    /// Prefix length of each node's pod subnet.
    #[arg(long, default_value_t = well_known::NODE_CIDR_MASK_SIZE)]
    pub node_cidr_mask_size: u8,
    /// Objects reconciled at once per controller.
    #[arg(long, default_value_t = 5)]
    pub workers: usize,
    /// Silence after which a node's Ready condition becomes Unknown (e.g. 40s).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "40s")]
    #[serde(with = "duration")]
    pub node_monitor_grace_period: Duration,
    /// How often node health is checked (e.g. 5s).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    #[serde(with = "duration")]
    pub node_monitor_period: Duration,
    /// Nodes per second (per zone) that get the NoExecute taint which evicts their pods.
    #[arg(long, default_value_t = 0.1)]
    pub node_eviction_rate: f64,
    /// The same, when more than 55% of a large zone's nodes are down.
    #[arg(long, default_value_t = 0.01)]
    pub secondary_node_eviction_rate: f64,
    /// Seconds pods without their own toleration stay on an unreachable or not-ready node.
    #[arg(long, default_value_t = 300)]
    pub default_toleration_seconds: u64,
    /// CA bundle (PEM) published to every namespace as ConfigMap `kube-root-ca.crt` (pods verify the
    /// api-server with it). Default: the CA of `kubeconfig`.
    #[arg(long)]
    pub root_ca_file: Option<PathBuf>,
    /// The CA certificate (PEM) CertificateSigningRequests of Kubernetes' signers are signed with
    /// (`kube-apiserver-client`, `kube-apiserver-client-kubelet`, `kubelet-serving`). Without it and
    /// its key, requests are approved but not signed.
    #[arg(long)]
    pub cluster_signing_cert_file: Option<PathBuf>,
    /// That CA's private key (PEM).
    #[arg(long)]
    pub cluster_signing_key_file: Option<PathBuf>,
    /// The longest validity of a signed certificate (a request's `expirationSeconds` may ask for less).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "8760h")]
    #[serde(with = "duration")]
    pub cluster_signing_duration: Duration,
    /// Derived: the cluster CIDR cut into node subnets.
    #[arg(skip)]
    #[serde(skip)]
    pub pod_subnets: Subnets,
    /// Derived: the node lifecycle controller's settings.
    #[arg(skip)]
    #[serde(skip)]
    pub node_lifecycle: LifecycleConfig,
}

impl DaemonConfig for Config {
    const ENV_PREFIX: &'static str = "NAVARCH_CONTROLLER_MANAGER";

    fn finish(&mut self) -> Result<(), String> {
        if self.workers == 0 {
            return Err("workers: must be at least 1".into());
        }
        // An empty path is no path (a config template's way of leaving it unset).
        for f in [&mut self.cluster_signing_cert_file, &mut self.cluster_signing_key_file] {
            if f.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                *f = None;
            }
        }
        if self.cluster_signing_cert_file.is_some() != self.cluster_signing_key_file.is_some() {
            return Err("cluster_signing_cert_file and cluster_signing_key_file: give both or neither".into());
        }
        if self.cluster_signing_duration < Duration::from_secs(600) {
            return Err("cluster_signing_duration: must be at least 10m".into());
        }
        if self.node_monitor_period.is_zero() {
            return Err("node_monitor_period: must be more than 0".into());
        }
        for (key, r) in [
            ("node_eviction_rate", self.node_eviction_rate),
            ("secondary_node_eviction_rate", self.secondary_node_eviction_rate),
        ] {
            if !r.is_finite() || r < 0.0 {
                return Err(format!("{key}: {r}: must be a number >= 0"));
            }
        }
        self.pod_subnets = Subnets::new(self.cluster_cidr, self.node_cidr_mask_size)
            .map_err(|e| format!("cluster_cidr: {e}"))?;
        self.node_lifecycle = LifecycleConfig {
            grace_period: self.node_monitor_grace_period,
            monitor_period: self.node_monitor_period,
            eviction_rate: self.node_eviction_rate,
            secondary_eviction_rate: self.secondary_node_eviction_rate,
            default_toleration: Duration::from_secs(self.default_toleration_seconds),
            ..LifecycleConfig::default()
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_settings_and_checks() {
        let config = |args: &[&str]| navarch_daemon::resolve_args::<Config>(args, &[]);
        let c = config(&["--node-monitor-grace-period", "3s", "--node-eviction-rate", "2"]).unwrap();
        assert_eq!(c.node_lifecycle.grace_period, Duration::from_secs(3));
        assert_eq!(c.node_lifecycle.eviction_rate, 2.0);
        assert_eq!(c.node_lifecycle.default_toleration, Duration::from_secs(300));
        assert_eq!(
            c.node_lifecycle,
            LifecycleConfig {
                grace_period: Duration::from_secs(3),
                eviction_rate: 2.0,
                ..LifecycleConfig::default()
            }
        );
        assert_eq!(c.pod_subnets.nth(1), "10.244.1.0/24");
        assert_eq!(config(&["--workers", "0"]).unwrap_err(), "workers: must be at least 1");
        assert_eq!(
            config(&["--node-monitor-period", "0s"]).unwrap_err(),
            "node_monitor_period: must be more than 0"
        );
        assert!(config(&["--node-eviction-rate=-1"]).unwrap_err().starts_with("node_eviction_rate: -1"));
        assert!(config(&["--node-monitor-period", "soon"]).is_err());
        assert!(
            config(&["--cluster-cidr", "10.244.0.0/16", "--node-cidr-mask-size", "8"])
                .unwrap_err()
                .starts_with("cluster_cidr: ")
        );
    }
}
