//! `scheduler`: parse flags, init tracing, elect a leader through a Lease, schedule until SIGTERM.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use navarch_client::{Client, LeaderElector, LeaseConfig, run_while_leader};
use std::sync::Arc;

use navarch_scheduler::metrics::SchedulerMetrics;
use navarch_scheduler::scheduler::{Scheduler, SchedulerConfig};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(name = "scheduler", version, about = "navarch scheduler: binds pending pods to nodes that fit")]
struct Args {
    /// api-server address.
    #[arg(long, env = "NAVARCH_SCHEDULER_SERVER", default_value = "127.0.0.1:6443")]
    server: String,
    /// Only pods with this spec.schedulerName are scheduled.
    #[arg(long, env = "NAVARCH_SCHEDULER_NAME", default_value = "default-scheduler")]
    scheduler_name: String,
    /// Percentage of nodes to score (0: Kubernetes' adaptive default).
    #[arg(long, env = "NAVARCH_SCHEDULER_PERCENTAGE_OF_NODES_TO_SCORE", default_value_t = 0)]
    percentage_of_nodes_to_score: u32,
    /// Elect a leader so that several schedulers can run and only one acts.
    #[arg(long, env = "NAVARCH_SCHEDULER_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Threads filtering nodes in clusters of 1,000+ nodes (0: half the cores when there are 4 or more).
    #[arg(long, env = "NAVARCH_SCHEDULER_PARALLELISM", default_value_t = 0)]
    parallelism: usize,
    /// HTTP address for /healthz and /metrics.
    #[arg(long, env = "NAVARCH_SCHEDULER_HTTP_LISTEN", default_value = "127.0.0.1:10259")]
    http_listen: std::net::SocketAddr,
    /// This instance's identity in the Lease (default: hostname and pid).
    #[arg(long, env = "NAVARCH_SCHEDULER_IDENTITY")]
    identity: Option<String>,
}

async fn shutdown_signal(token: CancellationToken) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    token.cancel();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let client = Client::connect_lazy(&args.server).context("api-server address")?;
    let cfg = SchedulerConfig {
        scheduler_name: args.scheduler_name.clone(),
        percentage_of_nodes_to_score: args.percentage_of_nodes_to_score,
        parallelism: args.parallelism,
        ..SchedulerConfig::default()
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(shutdown_signal(shutdown.clone()));
    let metrics = Arc::new(SchedulerMetrics::new());
    let listener = tokio::net::TcpListener::bind(args.http_listen)
        .await
        .with_context(|| format!("listening on {}", args.http_listen))?;
    let http = tokio::spawn(navarch_scheduler::metrics::serve(listener, metrics.clone(), shutdown.clone()));
    tracing::info!(server = %args.server, name = %args.scheduler_name, "scheduler starting");
    if args.leader_elect {
        let identity = args.identity.unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}_{}", host.trim(), std::process::id())
        });
        let lease = LeaseConfig::default();
        let elector = LeaderElector::new(&client, "kube-system", &args.scheduler_name, &identity, lease);
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
