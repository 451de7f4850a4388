//! One lifecycle for every daemon: tracing (text, or JSON with `--log-format json`), the one shutdown
//! future (SIGTERM or SIGINT cancels the daemon's token), tasks owned by the shell and drained with a
//! deadline, and running the daemon's work as the elected leader or alone.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use navarch_client::{Client, LeaderElector, LeaseConfig, run_while_leader};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::Admin;
use crate::config::{DaemonConfig, LogFormat};

/// How long the shell waits for its owned tasks after shutdown before it exits anyway.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("admin server: listening on {addr}: {source}")]
    AdminListen { addr: SocketAddr, source: std::io::Error },
}

/// What a daemon's `run` gets from the shell.
pub struct Daemon<C> {
    pub config: C,
    /// Cancelled on SIGTERM/SIGINT (and when `run` returns): every task watches it.
    pub shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl<C> Daemon<C> {
    pub fn new(config: C, shutdown: CancellationToken) -> Daemon<C> {
        Daemon { config, shutdown, tasks: TaskTracker::new() }
    }

    /// Runs `fut` as a task the shell owns: awaited (up to [`DRAIN_DEADLINE`]) before the process exits.
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(fut);
    }

    /// Binds the admin server on `addr` and serves it until shutdown; returns the bound address.
    pub async fn serve_admin(&self, admin: Admin, addr: SocketAddr) -> Result<SocketAddr, LifecycleError> {
        let server = admin.bind(addr).await.map_err(|source| LifecycleError::AdminListen { addr, source })?;
        let bound = server.local_addr().unwrap_or(addr);
        let stop = self.shutdown.clone();
        self.spawn(async move {
            if let Err(e) = server.serve(stop).await {
                tracing::error!(error = %e, "admin server failed");
            }
        });
        Ok(bound)
    }

    /// The shutdown token and the owned tasks, to drain after `run` has consumed the daemon.
    pub fn handle(&self) -> DaemonHandle {
        DaemonHandle { shutdown: self.shutdown.clone(), tasks: self.tasks.clone() }
    }
}

/// Drains a daemon's owned tasks.
pub struct DaemonHandle {
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl DaemonHandle {
    /// Cancels the shutdown token and waits for the owned tasks, at most `deadline`.
    pub async fn drain(&self, deadline: Duration) {
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(deadline, self.tasks.wait()).await.is_err() {
            tracing::warn!(tasks = self.tasks.len(), ?deadline, "tasks still running at the drain deadline");
        }
    }
}

/// Leader election settings: `elect` false runs alone; the identity defaults to `<hostname>_<pid>`.
#[derive(Debug, Clone)]
pub struct Election<'a> {
    pub elect: bool,
    /// The Lease in kube-system, e.g. `kube-scheduler`.
    pub lease: &'a str,
    pub identity: Option<&'a str>,
}

/// Runs `work` while this process leads (restarting it on re-election), or once when election is off;
/// returns on shutdown.
pub async fn run_elected<F, Fut>(
    client: &Client,
    election: Election<'_>,
    shutdown: CancellationToken,
    work: F,
) where
    F: Fn(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    if !election.elect {
        work(shutdown).await;
        return;
    }
    let identity = election.identity.map(str::to_string).unwrap_or_else(default_identity);
    tracing::info!(lease = election.lease, %identity, "electing a leader");
    let elector =
        LeaderElector::new(client, "kube-system", election.lease, &identity, LeaseConfig::default());
    run_while_leader(elector, shutdown, work).await;
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}_{}", host.trim(), std::process::id())
}

/// Waits for SIGTERM or SIGINT, then cancels `token` (returns early if `token` is cancelled first).
pub async fn cancel_on_signal(token: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "installing the SIGTERM handler; only SIGINT stops this process");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = token.cancelled() => return,
            }
            token.cancel();
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
        _ = token.cancelled() => return,
    }
    token.cancel();
}

/// Installs the global subscriber: `RUST_LOG` (default `info`) plus the daemon's extra directives for
/// targets `RUST_LOG` does not name.
pub fn init_tracing<C: DaemonConfig>(format: LogFormat) {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let mut filter = tracing_subscriber::EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("RUST_LOG={directives:?}: {e}; using info");
        "info".into()
    });
    for d in C::LOG_DIRECTIVES {
        let target = d.split('=').next().unwrap_or_default();
        if !directives.contains(target)
            && let Ok(d) = d.parse()
        {
            filter = filter.add_directive(d);
        }
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
