//! Wiring: the admin server, then scheduling (as the elected leader of the Lease named after the
//! scheduler, or alone) until shutdown.

use std::sync::Arc;

use navarch_client::Client;
use navarch_daemon::{Admin, Daemon, Election, run_elected};

use crate::config::Config;
use crate::metrics::SchedulerMetrics;
use crate::scheduler::Scheduler;

pub async fn run(daemon: Daemon<Config>) -> anyhow::Result<()> {
    let config = &daemon.config;
    let client = Client::connect_lazy(&navarch_client::Connection::for_daemon(
        config.kubeconfig.as_deref(),
        &config.server,
    )?)?;
    let cfg = config.scheduler();
    let mut admin = Admin::new("");
    let metrics = Arc::new(SchedulerMetrics::register(admin.registry()));
    daemon.serve_admin(admin, config.http_listen).await?;
    tracing::info!(server = %config.server, name = %cfg.scheduler_name, "scheduler starting");
    // Kubernetes' lease for the default scheduler is `kube-scheduler` (what its RBAC role may update);
    // a second scheduler elects through a lease named after itself.
    let lease = if cfg.scheduler_name == "default-scheduler" {
        "kube-scheduler"
    } else {
        cfg.scheduler_name.as_str()
    };
    let election = Election { elect: config.leader_elect, lease, identity: config.identity.as_deref() };
    run_elected(&client, election, daemon.shutdown.clone(), |stop| {
        Scheduler::new(client.clone(), cfg.clone(), metrics.clone()).run(stop)
    })
    .await;
    Ok(())
}
