//! `scheduler`: resolve config (flag > env > file > default), init tracing, elect a leader through a
//! Lease, schedule until SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use navarch_client::{Client, LeaderElector, LeaseConfig, run_while_leader};
use navarch_scheduler::config::{Args, Config};
use navarch_scheduler::metrics::SchedulerMetrics;
use navarch_scheduler::scheduler::Scheduler;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::resolve(Args::parse()).context("configuration")?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let client = Client::connect_lazy(&config.server).context("api-server address")?;
    let cfg = config.scheduler();
    let shutdown = CancellationToken::new();
    tokio::spawn(navarch_client::cancel_on_signal(shutdown.clone()));
    let metrics = Arc::new(SchedulerMetrics::new());
    let listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("listening on {}", config.http_listen))?;
    let http = tokio::spawn(navarch_scheduler::metrics::serve(listener, metrics.clone(), shutdown.clone()));
    tracing::info!(server = %config.server, name = %cfg.scheduler_name, "scheduler starting");
    if config.leader_elect {
        let identity = config.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}_{}", host.trim(), std::process::id())
        });
        let elector = LeaderElector::new(
            &client,
            "kube-system",
            &cfg.scheduler_name,
            &identity,
            LeaseConfig::default(),
        );
        run_while_leader(elector, shutdown.clone(), |stop| {
            Scheduler::new(client.clone(), cfg.clone(), metrics.clone()).run(stop)
        })
        .await;
    } else {
        Scheduler::new(client, cfg, metrics).run(shutdown.clone()).await;
    }
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), http).await;
    Ok(())
}
