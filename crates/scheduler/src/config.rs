//! Scheduler configuration. Precedence: flag > environment (`NAVARCH_SCHEDULER_*`) > config file
//! (`--config`, YAML, unknown keys rejected) > default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

use crate::scheduler::SchedulerConfig;

/// Flags and environment; every setting optional so an unset one falls through to the file.
#[derive(Debug, Default, Parser)]
#[command(name = "scheduler", version, about = "navarch scheduler: binds pending pods to nodes that fit")]
pub struct Args {
    /// YAML config file (keys as the long flags, with '_' for '-').
    #[arg(long, env = "NAVARCH_SCHEDULER_CONFIG")]
    pub config: Option<PathBuf>,
    /// api-server address.
    #[arg(long, env = "NAVARCH_SCHEDULER_SERVER")]
    pub server: Option<String>,
    /// Only pods with this spec.schedulerName are scheduled.
    #[arg(long, env = "NAVARCH_SCHEDULER_NAME")]
    pub scheduler_name: Option<String>,
    /// Percentage of nodes to score (0: Kubernetes' adaptive default).
    #[arg(long, env = "NAVARCH_SCHEDULER_PERCENTAGE_OF_NODES_TO_SCORE")]
    pub percentage_of_nodes_to_score: Option<u32>,
    /// Threads filtering nodes in clusters of 1,000+ nodes (0: half the cores when there are 4 or more).
    #[arg(long, env = "NAVARCH_SCHEDULER_PARALLELISM")]
    pub parallelism: Option<usize>,
    /// HTTP address for /healthz and /metrics.
    #[arg(long, env = "NAVARCH_SCHEDULER_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Elect a leader through a Lease so several schedulers can run and only one acts.
    #[arg(long, env = "NAVARCH_SCHEDULER_LEADER_ELECT")]
    pub leader_elect: Option<bool>,
    /// This instance's identity in the Lease (default: hostname and pid).
    #[arg(long, env = "NAVARCH_SCHEDULER_IDENTITY")]
    pub identity: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub server: Option<String>,
    pub scheduler_name: Option<String>,
    pub percentage_of_nodes_to_score: Option<u32>,
    pub parallelism: Option<usize>,
    pub http_listen: Option<SocketAddr>,
    pub leader_elect: Option<bool>,
    pub identity: Option<String>,
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: String,
    pub http_listen: SocketAddr,
    pub leader_elect: bool,
    pub identity: Option<String>,
    pub scheduler_name: String,
    pub percentage_of_nodes_to_score: u32,
    pub parallelism: usize,
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

impl Config {
    pub fn resolve(args: Args) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(p) => load(p)?,
            None => FileConfig::default(),
        };
        let d = SchedulerConfig::default();
        let c = Config {
            server: args.server.or(file.server).unwrap_or_else(|| "127.0.0.1:6443".into()),
            http_listen: args
                .http_listen
                .or(file.http_listen)
                .unwrap_or_else(|| "127.0.0.1:10259".parse().expect("valid address")),
            leader_elect: args.leader_elect.or(file.leader_elect).unwrap_or(true),
            identity: args.identity.or(file.identity),
            scheduler_name: args.scheduler_name.or(file.scheduler_name).unwrap_or(d.scheduler_name),
            percentage_of_nodes_to_score: args
                .percentage_of_nodes_to_score
                .or(file.percentage_of_nodes_to_score)
                .unwrap_or(d.percentage_of_nodes_to_score),
            parallelism: args.parallelism.or(file.parallelism).unwrap_or(d.parallelism),
        };
        if c.percentage_of_nodes_to_score > 100 {
            return Err(ConfigError::Invalid(format!(
                "percentage_of_nodes_to_score: must be 0..=100, got {}",
                c.percentage_of_nodes_to_score
            )));
        }
        if c.scheduler_name.is_empty() {
            return Err(ConfigError::Invalid("scheduler_name: must not be empty".into()));
        }
        Ok(c)
    }

    pub fn scheduler(&self) -> SchedulerConfig {
        SchedulerConfig {
            scheduler_name: self.scheduler_name.clone(),
            percentage_of_nodes_to_score: self.percentage_of_nodes_to_score,
            parallelism: self.parallelism,
            ..SchedulerConfig::default()
        }
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
        let c = Config::resolve(Args::default()).unwrap();
        assert_eq!(c.server, "127.0.0.1:6443");
        assert_eq!(c.scheduler_name, "default-scheduler");
        assert!(c.leader_elect);
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let f = file("server: 10.0.0.1:6443\nscheduler_name: from-file\npercentage_of_nodes_to_score: 30\n");
        let path = f.path().to_str().unwrap().to_string();
        // SAFETY: only this test reads or writes this variable.
        unsafe { std::env::set_var("NAVARCH_SCHEDULER_NAME", "from-env") };
        let c = Config::resolve(Args::try_parse_from(["scheduler", "--config", &path]).unwrap()).unwrap();
        assert_eq!(c.server, "10.0.0.1:6443", "file beats default");
        assert_eq!(c.scheduler_name, "from-env", "env beats file");
        assert_eq!(c.percentage_of_nodes_to_score, 30);
        let c = Config::resolve(
            Args::try_parse_from(["scheduler", "--config", &path, "--scheduler-name", "from-flag"]).unwrap(),
        )
        .unwrap();
        assert_eq!(c.scheduler_name, "from-flag", "flag beats env");
        unsafe { std::env::remove_var("NAVARCH_SCHEDULER_NAME") };
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let f = file("servr: x\n");
        let err = Config::resolve(Args { config: Some(f.path().into()), ..Args::default() }).unwrap_err();
        assert!(err.to_string().contains("unknown field `servr`"), "{err}");
        let err =
            Config::resolve(Args { percentage_of_nodes_to_score: Some(101), ..Args::default() }).unwrap_err();
        assert!(err.to_string().starts_with("percentage_of_nodes_to_score:"), "{err}");
    }
}
