//! kube-proxy configuration. Precedence: flag > environment (`NAVARCH_KUBE_PROXY_*`) > config file
//! (`--config`, YAML, unknown keys rejected) > default.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use serde::Deserialize;

#[derive(Debug, Default, Parser)]
#[command(name = "kube-proxy", version, about = "navarch kube-proxy: Services through nftables")]
pub struct Args {
    /// YAML config file (keys as the long flags, with '_' for '-').
    #[arg(long, env = "NAVARCH_KUBE_PROXY_CONFIG")]
    pub config: Option<PathBuf>,
    /// api-server address.
    #[arg(long, env = "NAVARCH_KUBE_PROXY_SERVER")]
    pub server: Option<String>,
    /// HTTP address for /healthz and /metrics.
    #[arg(long, env = "NAVARCH_KUBE_PROXY_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// This node's name (default: the hostname), for externalTrafficPolicy: Local.
    #[arg(long, env = "NAVARCH_KUBE_PROXY_HOSTNAME_OVERRIDE")]
    pub hostname_override: Option<String>,
    /// The pod range; traffic from outside it to a ClusterIP is masqueraded ("" turns that off).
    #[arg(long, env = "NAVARCH_KUBE_PROXY_CLUSTER_CIDR")]
    pub cluster_cidr: Option<String>,
    /// The Service range (kept under an `unreachable` route).
    #[arg(long, env = "NAVARCH_KUBE_PROXY_SERVICE_CLUSTER_IP_RANGE")]
    pub service_cluster_ip_range: Option<String>,
    /// `nftables` (the only mode; `iptables` is refused with an explanation).
    #[arg(long, env = "NAVARCH_KUBE_PROXY_PROXY_MODE")]
    pub proxy_mode: Option<String>,
    /// Remove everything kube-proxy installed, then exit.
    #[arg(long)]
    pub cleanup: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub server: Option<String>,
    pub http_listen: Option<SocketAddr>,
    pub hostname_override: Option<String>,
    pub cluster_cidr: Option<String>,
    pub service_cluster_ip_range: Option<String>,
    pub proxy_mode: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: String,
    pub http_listen: SocketAddr,
    pub node_name: String,
    pub cluster_cidr: Option<String>,
    pub service_cidr: String,
    pub cleanup: bool,
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

fn check_cidr(key: &str, s: &str) -> Result<(), ConfigError> {
    let bad = || ConfigError::Invalid(format!("{key}: {s:?} is not an IPv4 CIDR like 10.96.0.0/12"));
    let (ip, len) = s.split_once('/').ok_or_else(bad)?;
    ip.parse::<std::net::Ipv4Addr>().map_err(|_| bad())?;
    len.parse::<u8>().ok().filter(|l| *l <= 32).ok_or_else(bad)?;
    Ok(())
}

impl Config {
    pub fn resolve(args: Args) -> Result<Config, ConfigError> {
        let file: FileConfig = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.clone(), source })?;
                if text.trim().is_empty() {
                    FileConfig::default()
                } else {
                    serde_yaml::from_str(&text)
                        .map_err(|source| ConfigError::Parse { path: path.clone(), source })?
                }
            }
            None => FileConfig::default(),
        };
        let mode = args.proxy_mode.or(file.proxy_mode).unwrap_or_else(|| "nftables".into());
        if mode != "nftables" {
            return Err(ConfigError::Invalid(format!(
                "proxy_mode: {mode:?}: only \"nftables\" is implemented (one table of its own, verdict maps, O(changes) updates)"
            )));
        }
        let cluster_cidr = match args.cluster_cidr.or(file.cluster_cidr) {
            None => Some("10.244.0.0/16".to_string()),
            Some(c) if c.is_empty() => None,
            Some(c) => Some(c),
        };
        if let Some(c) = &cluster_cidr {
            check_cidr("cluster_cidr", c)?;
        }
        let service_cidr = args
            .service_cluster_ip_range
            .or(file.service_cluster_ip_range)
            .unwrap_or_else(|| "10.96.0.0/12".into());
        check_cidr("service_cluster_ip_range", &service_cidr)?;
        Ok(Config {
            server: args.server.or(file.server).unwrap_or_else(|| "127.0.0.1:6443".into()),
            http_listen: args
                .http_listen
                .or(file.http_listen)
                .unwrap_or_else(|| "127.0.0.1:10256".parse().expect("valid address")),
            // The kernel's hostname, lowercased: the name the kubelet registers its node under.
            node_name: args.hostname_override.or(file.hostname_override).unwrap_or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_lowercase()
            }),
            cluster_cidr,
            service_cidr,
            cleanup: args.cleanup,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_file_beats_default() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "server: 10.0.0.1:6443\nhostname_override: n7\ncluster_cidr: ''\n").unwrap();
        let path = f.path().to_str().unwrap().to_string();
        let c = Config::resolve(Args::try_parse_from(["kp", "--config", &path]).unwrap()).unwrap();
        assert_eq!((c.server.as_str(), c.node_name.as_str(), c.cluster_cidr), ("10.0.0.1:6443", "n7", None));
        assert_eq!(c.service_cidr, "10.96.0.0/12");
        let c = Config::resolve(
            Args::try_parse_from(["kp", "--config", &path, "--hostname-override", "n8"]).unwrap(),
        )
        .unwrap();
        assert_eq!(c.node_name, "n8");
        let c = Config::resolve(Args::default()).unwrap();
        assert_eq!(c.cluster_cidr.as_deref(), Some("10.244.0.0/16"));
        std::fs::write(f.path(), "proxy_mod: x\n").unwrap();
        let e = Config::resolve(Args::try_parse_from(["kp", "--config", &path]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("unknown field `proxy_mod`"), "{e}");
        let e = Config::resolve(Args { proxy_mode: Some("iptables".into()), ..Args::default() }).unwrap_err();
        assert!(e.to_string().starts_with("proxy_mode: \"iptables\": only \"nftables\""), "{e}");
        let e =
            Config::resolve(Args { service_cluster_ip_range: Some("10.96/12".into()), ..Args::default() })
                .unwrap_err();
        assert!(e.to_string().starts_with("service_cluster_ip_range:"), "{e}");
    }
}
