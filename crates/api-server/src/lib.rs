//! The navarch api-server: the only process that talks to etcd.
//!
//! Owns validation and defaulting of every kind ([`validation`]), Kubernetes' storage semantics
//! ([`registry`]: create-if-absent, compare-and-swap updates with resourceVersion = etcd revision,
//! finalizers, graceful deletion, binding), the generic gRPC service of proto/navarch/apiserver/v1
//! ([`service`]), watch fan-out (one etcd watch per kind, many cheap watchers: [`watch_cache`]), the
//! health checks and Prometheus metrics on the daemon shell's admin server ([`health`], [`metrics`]),
//! and the relay of pods/log, pods/exec, pods/portforward and usage to kubelets ([`kubelet_relay`];
//! port-forward's SPDY/3.1 sessions: [`spdy`]). Services get their
//! cluster IPs and node ports from `--service-cluster-ip-range` (default `10.96.0.0/12`) and
//! `--service-node-port-range` (default `30000-32767`), recorded in etcd in the same transaction as the
//! Service ([`allocation`]).

#![forbid(unsafe_code)]

pub mod allocation;
pub mod codec;
pub mod config;
pub mod error;
pub mod field_selector;
pub mod health;
pub mod kubelet_relay;
pub mod metrics;
pub mod openapi;
pub mod recent_writes;
pub mod registry;
pub mod rest;
pub mod server;
pub mod service;
pub mod spdy;
pub mod state;
pub mod storage;
pub mod user_info;
pub mod validation;
pub mod watch_cache;
pub mod watch_stream;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use navarch_api::KINDS;
use navarch_api::proto::api_server_server::ApiServerServer;
use navarch_daemon::{Admin, Daemon};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

use crate::registry::Registry;
use crate::storage::Storage;
use crate::watch_cache::{WatchCache, WatchCacheConfig};

/// Connections to etcd for requests (the watch caches share the first).
const ETCD_CONNECTIONS: usize = 8;
/// Largest gRPC message accepted or sent (lists of tens of thousands of objects).
const MAX_MESSAGE_BYTES: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("connecting to etcd at {endpoints:?}: {source}")]
    Etcd { endpoints: Vec<String>, source: etcd_client::Error },
    #[error("etcd did not become reachable at {0:?}")]
    EtcdUnreachable(Vec<String>),
    #[error("starting the watch cache for {kind}: {reason}")]
    WatchCache { kind: &'static str, reason: String },
    #[error("listening on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Admin(#[from] navarch_daemon::LifecycleError),
}

async fn connect_etcd(
    config: &Config,
    shutdown: &CancellationToken,
) -> Result<etcd_client::Client, RunError> {
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(30))
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=30 {
        let r = etcd_client::Client::connect(&config.etcd_endpoints, Some(opts.clone())).await;
        match r {
            Ok(mut c) => match c.status().await {
                Ok(_) => return Ok(c),
                Err(e) => tracing::warn!(attempt, error = %e, "etcd not ready"),
            },
            Err(e) => tracing::warn!(attempt, error = %e, "cannot reach etcd"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => break,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    Err(RunError::EtcdUnreachable(config.etcd_endpoints.clone()))
}

/// Runs the api-server until the daemon's shutdown token is cancelled, then drains within
/// `config.shutdown_timeout`.
pub async fn run(daemon: Daemon<Config>) -> Result<(), RunError> {
    serve(&daemon, daemon.shutdown.clone()).await
}

async fn serve(daemon: &Daemon<Config>, token: CancellationToken) -> Result<(), RunError> {
    let config = &daemon.config;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| RunError::Listen { addr: config.listen, source })?;
    let etcd = connect_etcd(config, &token).await?;
    let mut pool = Vec::new();
    for _ in 1..ETCD_CONNECTIONS {
        pool.push(connect_etcd(config, &token).await?);
    }
    let storage = Storage::new(etcd.clone(), pool);
    let ranges =
        allocation::Ranges { ips: config.service_cluster_ip_range, ports: config.service_node_port_range };
    let registry = Arc::new(Registry::new(storage.clone(), &config.etcd_prefix, ranges));
    let mut admin = Admin::new("");
    let metrics = Arc::new(metrics::Metrics::register(admin.registry()));
    let caches_ready = Arc::new(AtomicBool::new(false));
    health::register_checks(&mut admin, storage.clone(), caches_ready.clone());
    daemon.serve_admin(admin, config.http_listen).await?;
    let tasks = TaskTracker::new();

    let mut delay = Duration::from_millis(200);
    while let Err(e) = registry.bootstrap().await {
        tracing::warn!(error = %e, "creating the initial namespaces");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = token.cancelled() => return Ok(()),
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    match registry.services().repair().await {
        Ok(r) if r == allocation::RepairReport::default() => {}
        Ok(r) => tracing::info!(
            released = r.released,
            recorded = r.recorded,
            corrected = r.corrected,
            "repaired service allocations"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "repairing service allocations (will be retried at the next start)")
        }
    }
    tracing::info!(cluster_ips = %ranges.ips, node_ports = %ranges.ports, "service ranges");

    let mut caches = HashMap::new();
    for info in KINDS.iter() {
        let prefix = codec::kind_prefix(&config.etcd_prefix, info);
        let cfg = WatchCacheConfig { history: config.watch_history, watcher_buffer: config.watcher_buffer };
        let cache = WatchCache::start(etcd.clone(), prefix, info, cfg, token.child_token())
            .await
            .map_err(|e| RunError::WatchCache { kind: info.kind, reason: e.to_string() })?;
        caches.insert(info.kind, cache);
    }
    caches_ready.store(true, Ordering::Release);

    let state = Arc::new(state::ApiState {
        kubelets: kubelet_relay::KubeletRelay { registry: registry.clone() },
        registry,
        caches,
        metrics,
        bookmark_interval: config.bookmark_interval,
        shutdown: token.clone(),
        tasks: tasks.clone(),
    });
    let grpc = ApiServerServer::new(service::Service(state.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let front = server::FrontDoor::new(grpc, rest::RestApi::new(state));
    tracing::info!(listen = %config.listen, etcd = ?config.etcd_endpoints, "api-server serving gRPC and REST");
    server::serve(listener, front, token.clone(), config.shutdown_timeout).await;
    token.cancel();
    tasks.close();
    if tokio::time::timeout(config.shutdown_timeout, tasks.wait()).await.is_err() {
        tracing::warn!("watch streams did not finish in time");
    }
    Ok(())
}
