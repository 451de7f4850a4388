//! The HTTP side port: `/healthz` (the process serves), `/readyz` (etcd answers and every watch cache
//! started), `/metrics` (Prometheus text).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::storage::Storage;

#[derive(Clone)]
pub struct HttpState {
    pub metrics: Arc<Metrics>,
    pub storage: Storage,
    pub caches_ready: Arc<AtomicBool>,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(s): State<HttpState>) -> (StatusCode, String) {
    if !s.caches_ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "watch caches starting\n".into());
    }
    match tokio::time::timeout(Duration::from_secs(2), s.storage.current_revision()).await {
        Ok(Ok(_)) => (StatusCode::OK, "ok\n".into()),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("etcd: {e}\n")),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "etcd: no answer within 2s\n".into()),
    }
}

async fn metrics(State(s): State<HttpState>) -> ([(&'static str, &'static str); 1], String) {
    ([("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], s.metrics.encode())
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(addr: SocketAddr, state: HttpState, shutdown: CancellationToken) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /healthz /readyz /metrics");
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}
