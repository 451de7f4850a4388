//! Controller-manager configuration. Precedence: flag > environment (`NAVARCH_CONTROLLER_MANAGER_*`)
//! > config file (`--config`, YAML, unknown keys rejected) > default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

#[derive(Debug, Default, Parser)]
#[command(name = "controller-manager", version, about = "navarch controller-manager: ReplicaSets and more")]
pub struct Args {
    /// YAML config file (keys as the long flags, with '_' for '-').
    #[arg(long, env = "NAVARCH_CONTROLLER_MANAGER_CONFIG")]
    pub config: Option<PathBuf>,
    /// api-server address.
    #[arg(long, env = "NAVARCH_CONTROLLER_MANAGER_SERVER")]
    pub server: Option<String>,
    /// HTTP address for /healthz.
    #[arg(long, env = "NAVARCH_CONTROLLER_MANAGER_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Elect a leader through a Lease so several instances can run and only one acts.
    #[arg(long, env = "NAVARCH_CONTROLLER_MANAGER_LEADER_ELECT")]
    pub leader_elect: Option<bool>,
    /// This instance's identity in the Lease (default: hostname and pid).
    #[arg(long, env = "NAVARCH_CONTROLLER_MANAGER_IDENTITY")]
    pub identity: Option<String>,
    /// The pod network of the cluster, cut into one subnet per node.
    #[arg(long, env = "NAVARCH_CONTROLLER_MANAGER_CLUSTER_CIDR")]
    pub cluster_cidr: Option<String>,
    /// Prefix length of each node's pod subnet.
    #[arg(long, env = "NAVARCH_CONTROLLER_MANAGER_NODE_CIDR_MASK_SIZE")]
    pub node_cidr_mask_size: Option<u8>,
    /// Objects reconciled at once per controller.
    #[arg(long, env = "NAVARCH_CONTROLLER_MANAGER_WORKERS")]
    pub workers: Option<usize>,
    /// Silence after which a node's Ready condition becomes Unknown (e.g. 40s).
    #[arg(long, env = "NAVARCH_CONTROLLER_MANAGER_NODE_MONITOR_GRACE_PERIOD")]
    pub node_monitor_grace_period: Option<String>,
    /// How often node health is checked (e.g. 5s).
    #[arg(long, env = "NAVARCH_CONTROLLER_MANAGER_NODE_MONITOR_PERIOD")]
    pub node_monitor_period: Option<String>,
    /// Nodes per second (per zone) that get the NoExecute taint which evicts their pods.
    #[arg(long, env = "NAVARCH_CONTROLLER_MANAGER_NODE_EVICTION_RATE")]
    pub node_eviction_rate: Option<f64>,
    /// The same, when more than 55% of a large zone's nodes are down.
    #[arg(long, env = "NAVARCH_CONTROLLER_MANAGER_SECONDARY_NODE_EVICTION_RATE")]
    pub secondary_node_eviction_rate: Option<f64>,
    /// Seconds pods without their own toleration stay on an unreachable or not-ready node.
    #[arg(long, env = "NAVARCH_CONTROLLER_MANAGER_DEFAULT_TOLERATION_SECONDS")]
    pub default_toleration_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub server: Option<String>,
    pub http_listen: Option<SocketAddr>,
    pub leader_elect: Option<bool>,
    pub identity: Option<String>,
    pub workers: Option<usize>,
    pub cluster_cidr: Option<String>,
    pub node_cidr_mask_size: Option<u8>,
    pub node_monitor_grace_period: Option<String>,
    pub node_monitor_period: Option<String>,
    pub node_eviction_rate: Option<f64>,
    pub secondary_node_eviction_rate: Option<f64>,
    pub default_toleration_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: String,
    pub http_listen: SocketAddr,
    pub leader_elect: bool,
    pub identity: Option<String>,
    pub workers: usize,
    pub pod_subnets: crate::node_ipam::Subnets,
    pub node_lifecycle: crate::node_lifecycle::LifecycleConfig,
}

fn duration(key: &str, v: Option<String>, default: Duration) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => humantime::parse_duration(&s)
            .map_err(|e| ConfigError::Invalid(format!("{key}: {s:?}: {e} (e.g. 40s, 1m30s)"))),
    }
}

fn rate(key: &str, v: Option<f64>, default: f64) -> Result<f64, ConfigError> {
    match v.unwrap_or(default) {
        r if r.is_finite() && r >= 0.0 => Ok(r),
        r => Err(ConfigError::Invalid(format!("{key}: {r}: must be a number >= 0"))),
    }
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
        let c = Config {
            server: args.server.or(file.server).unwrap_or_else(|| "127.0.0.1:6443".into()),
            http_listen: args
                .http_listen
                .or(file.http_listen)
                .unwrap_or_else(|| "127.0.0.1:10257".parse().expect("valid address")),
            leader_elect: args.leader_elect.or(file.leader_elect).unwrap_or(true),
            identity: args.identity.or(file.identity),
            workers: args.workers.or(file.workers).unwrap_or(5),
            pod_subnets: {
                let cidr = args.cluster_cidr.or(file.cluster_cidr).unwrap_or_else(|| "10.244.0.0/16".into());
                let mask = args.node_cidr_mask_size.or(file.node_cidr_mask_size).unwrap_or(24);
                crate::node_ipam::Subnets::parse(&cidr, mask)
                    .map_err(|e| ConfigError::Invalid(format!("cluster_cidr: {e}")))?
            },
            node_lifecycle: {
                let d = crate::node_lifecycle::LifecycleConfig::default();
                let monitor_period = duration(
                    "node_monitor_period",
                    args.node_monitor_period.or(file.node_monitor_period),
                    d.monitor_period,
                )?;
                if monitor_period.is_zero() {
                    return Err(ConfigError::Invalid("node_monitor_period: must be more than 0".into()));
                }
                crate::node_lifecycle::LifecycleConfig {
                    grace_period: duration(
                        "node_monitor_grace_period",
                        args.node_monitor_grace_period.or(file.node_monitor_grace_period),
                        d.grace_period,
                    )?,
                    monitor_period,
                    eviction_rate: rate(
                        "node_eviction_rate",
                        args.node_eviction_rate.or(file.node_eviction_rate),
                        d.eviction_rate,
                    )?,
                    secondary_eviction_rate: rate(
                        "secondary_node_eviction_rate",
                        args.secondary_node_eviction_rate.or(file.secondary_node_eviction_rate),
                        d.secondary_eviction_rate,
                    )?,
                    default_toleration: args
                        .default_toleration_seconds
                        .or(file.default_toleration_seconds)
                        .map(Duration::from_secs)
                        .unwrap_or(d.default_toleration),
                    ..d
                }
            },
        };
        if c.workers == 0 {
            return Err(ConfigError::Invalid("workers: must be at least 1".into()));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_file_beats_default() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "server: 10.0.0.1:6443\nworkers: 9\n").unwrap();
        let path = f.path().to_str().unwrap().to_string();
        let c = Config::resolve(Args::try_parse_from(["cm", "--config", &path]).unwrap()).unwrap();
        assert_eq!((c.server.as_str(), c.workers, c.leader_elect), ("10.0.0.1:6443", 9, true));
        let c = Config::resolve(Args::try_parse_from(["cm", "--config", &path, "--workers", "2"]).unwrap())
            .unwrap();
        assert_eq!(c.workers, 2);
        std::fs::write(f.path(), "wrokers: 1\n").unwrap();
        let e = Config::resolve(Args::try_parse_from(["cm", "--config", &path]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("unknown field `wrokers`"), "{e}");
        assert!(Config::resolve(Args { workers: Some(0), ..Args::default() }).is_err());
        std::fs::write(f.path(), "node_monitor_grace_period: 7s\nnode_eviction_rate: 2\n").unwrap();
        let c = Config::resolve(
            Args::try_parse_from(["cm", "--config", &path, "--node-monitor-grace-period", "3s"]).unwrap(),
        )
        .unwrap();
        assert_eq!(c.node_lifecycle.grace_period, Duration::from_secs(3));
        assert_eq!(c.node_lifecycle.eviction_rate, 2.0);
        assert_eq!(c.node_lifecycle.default_toleration, Duration::from_secs(300));
        let e = Config::resolve(Args { node_monitor_period: Some("soon".into()), ..Args::default() })
            .unwrap_err();
        assert!(e.to_string().starts_with("node_monitor_period: \"soon\""), "{e}");
        assert!(Config::resolve(Args { node_eviction_rate: Some(-1.0), ..Args::default() }).is_err());
    }
}
