//! kube-proxy's configuration: one struct that is its flags and its config file, resolved by the
//! daemon shell (flag > `NAVARCH_KUBE_PROXY_*` > `--config` YAML > default; see
//! `navarch_daemon::config`).

use std::net::SocketAddr;
use std::path::PathBuf;

use navarch_api::{Ipv4Cidr, well_known};
use navarch_daemon::DaemonConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, clap::Parser, Serialize, Deserialize)]
#[command(name = "kube-proxy", version, about = "navarch kube-proxy: Services through nftables")]
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
    /// `kubeconfig` holds no usable `system:kube-proxy` client certificate, kube-proxy asks for one
    /// with it (a CertificateSigningRequest of signer `kubernetes.io/kube-apiserver-client`, which the
    /// controller-manager approves and signs) and writes `kubeconfig`.
    #[arg(long)]
    pub bootstrap_kubeconfig: Option<PathBuf>,
    /// HTTP address for /healthz, /readyz and /metrics.
    #[arg(long, default_value = well_known::KUBE_PROXY_ADMIN)]
    pub http_listen: SocketAddr,
    /// This node's name (default: the kernel hostname, lowercased, as the kubelet registers it), for
    /// externalTrafficPolicy: Local.
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// The pod range; traffic from outside it to a ClusterIP is masqueraded ("" turns that off).
    #[arg(long, default_value = well_known::CLUSTER_CIDR)]
    pub cluster_cidr: String,
    /// The Service range (kept under an `unreachable` route).
    #[arg(long, default_value = well_known::SERVICE_CLUSTER_IP_RANGE)]
    pub service_cluster_ip_range: Ipv4Cidr,
    /// `nftables` (the only mode; `iptables` is refused with an explanation).
    #[arg(long, default_value = "nftables")]
    pub proxy_mode: String,
    /// Remove everything kube-proxy installed, then exit.
    #[arg(long)]
    pub cleanup: bool,
}

impl DaemonConfig for Config {
    const ENV_PREFIX: &'static str = "NAVARCH_KUBE_PROXY";

    fn finish(&mut self) -> Result<(), String> {
        if self.bootstrap_kubeconfig.is_some() && self.kubeconfig.is_none() {
            return Err(
                "kubeconfig: required with bootstrap_kubeconfig (where the credentials are written)".into()
            );
        }
        if self.proxy_mode != "nftables" {
            return Err(format!(
                "proxy_mode: {:?}: only \"nftables\" is implemented (one table of its own, verdict maps, O(changes) updates)",
                self.proxy_mode
            ));
        }
        if !self.cluster_cidr.is_empty() {
            self.cluster_cidr.parse::<Ipv4Cidr>().map_err(|e| format!("cluster_cidr: {e}"))?;
        }
        if self.hostname_override.is_none() {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            self.hostname_override = Some(host.trim().to_lowercase());
        }
        Ok(())
    }
}

impl Config {
    /// This node's name.
    pub fn node_name(&self) -> &str {
        self.hostname_override.as_deref().unwrap_or_default()
    }

    /// The pod range, `None` when masquerading is off.
    pub fn cluster_cidr(&self) -> Option<String> {
        (!self.cluster_cidr.is_empty()).then(|| self.cluster_cidr.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_checks() {
        let config = |args: &[&str]| navarch_daemon::resolve_args::<Config>(args, &[]);
        let c = config(&["--hostname-override", "n8"]).unwrap();
        assert_eq!((c.node_name(), c.cluster_cidr().as_deref()), ("n8", Some("10.244.0.0/16")));
        assert_eq!(c.service_cluster_ip_range.to_string(), "10.96.0.0/12");
        assert_eq!(config(&["--cluster-cidr="]).unwrap().cluster_cidr(), None);
        let e = config(&["--proxy-mode", "iptables"]).unwrap_err();
        assert!(e.starts_with("proxy_mode: \"iptables\": only \"nftables\""), "{e}");
        let e = config(&["--service-cluster-ip-range", "10.96/12"]).unwrap_err();
        assert!(e.contains("--service-cluster-ip-range"), "{e}");
        let e = config(&["--cluster-cidr", "10.244.0.0"]).unwrap_err();
        assert!(e.starts_with("cluster_cidr: "), "{e}");
    }
}
