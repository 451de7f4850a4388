//! The scheduler's configuration: one struct that is its flags and its config file, resolved by the
//! daemon shell (flag > `NAVARCH_SCHEDULER_*` > `--config` YAML > default; see `navarch_daemon::config`).
//! The score plugins' weights and arguments are set in the file only, under `profiles` in
//! KubeSchedulerConfiguration's names ([`profile`]).

mod profile;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use navarch_api::well_known;
use navarch_daemon::DaemonConfig;
use serde::{Deserialize, Serialize};

use crate::scheduler::SchedulerConfig;
use crate::scores;

pub use profile::{InterPodAffinityArgs, KubeSchedulerProfile, PluginConfig, PluginRef, PluginSet, Plugins};

#[derive(Debug, Clone, PartialEq, clap::Parser, Serialize, Deserialize)]
#[command(name = "scheduler", version, about = "navarch scheduler: binds pending pods to nodes that fit")]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// kubeconfig with the api-server's address, its CA and this component's credentials (client
    /// certificate or token). Required: the api-server only accepts authenticated TLS clients.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// api-server address (`host:port` or `https://host:port`), overriding the kubeconfig's.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub server: String,
    /// Only pods with this spec.schedulerName are scheduled (also the Lease's name, except for
    /// `default-scheduler`, whose Lease is Kubernetes' `kube-scheduler`).
    #[arg(long, default_value = "default-scheduler")]
    pub scheduler_name: String,
    /// Percentage of nodes to score (0: Kubernetes' adaptive default).
    #[arg(long, default_value_t = 0)]
    pub percentage_of_nodes_to_score: u32,
    /// Threads filtering nodes in clusters of 1,000+ nodes (0: half the cores when there are 4 or more).
    #[arg(long, default_value_t = 0)]
    pub parallelism: usize,
    /// HTTP address for /healthz, /readyz and /metrics.
    #[arg(long, default_value = well_known::SCHEDULER_ADMIN)]
    pub http_listen: SocketAddr,
    /// Elect a leader through a Lease so several schedulers can run and only one acts.
    #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
    pub leader_elect: bool,
    /// This instance's identity in the Lease (default: hostname and pid).
    #[arg(long)]
    pub identity: Option<String>,
    /// Score plugins' weights and arguments (file only), as KubeSchedulerConfiguration's `profiles`:
    /// `[{schedulerName, plugins: {score: {enabled, disabled}}, pluginConfig: [{name, args}]}]`.
    #[arg(skip)]
    #[serde(default)]
    pub profiles: Vec<KubeSchedulerProfile>,
    /// Derived: this scheduler's profile (Kubernetes' defaults without `profiles`).
    #[arg(skip)]
    #[serde(skip)]
    pub scoring: Arc<scores::Profile>,
}

impl DaemonConfig for Config {
    const ENV_PREFIX: &'static str = "NAVARCH_SCHEDULER";
    const ENV_ALIASES: &'static [(&'static str, &'static str)] =
        &[("NAVARCH_SCHEDULER_NAME", "scheduler_name")];

    fn finish(&mut self) -> Result<(), String> {
        if self.percentage_of_nodes_to_score > 100 {
            return Err(format!(
                "percentage_of_nodes_to_score: must be 0..=100, got {}",
                self.percentage_of_nodes_to_score
            ));
        }
        if self.scheduler_name.is_empty() {
            return Err("scheduler_name: must not be empty".into());
        }
        self.scoring = Arc::new(profile::resolve(&self.profiles, &self.scheduler_name)?);
        Ok(())
    }
}

impl Config {
    pub fn scheduler(&self) -> SchedulerConfig {
        SchedulerConfig {
            scheduler_name: self.scheduler_name.clone(),
            percentage_of_nodes_to_score: self.percentage_of_nodes_to_score,
            parallelism: self.parallelism,
            scoring: self.scoring.clone(),
            spread: self.scoring.spread.clone(),
            ..SchedulerConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use navarch_daemon::resolve_args as resolve;

    use super::*;

    mod profiles;

    #[test]
    fn defaults_env_name_and_checks() {
        let e = resolve::<Config>(&["--percentage-of-nodes-to-score", "101"], &[]).unwrap_err();
        assert!(e.starts_with("percentage_of_nodes_to_score:"), "{e}");
        assert_eq!(
            resolve::<Config>(&["--scheduler-name="], &[]).unwrap_err(),
            "scheduler_name: must not be empty"
        );
        let c =
            resolve::<Config>(&["--leader-elect=false"], &[("NAVARCH_SCHEDULER_NAME", "from-env")]).unwrap();
        assert_eq!((c.scheduler_name.as_str(), c.leader_elect), ("from-env", false));
        let c = resolve::<Config>(&[], &[]).unwrap();
        assert_eq!((c.server.as_str(), c.scheduler_name.as_str()), ("", "default-scheduler"));
        assert_eq!((c.http_listen.port(), c.leader_elect), (10259, true));
    }
}
