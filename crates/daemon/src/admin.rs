//! The one admin HTTP server per process: `/healthz` and `/livez` (liveness checks), `/readyz`
//! (readiness checks), `/metrics` (the daemon's one prometheus-client registry, OpenMetrics text),
//! and any further metrics paths with registries of their own (the kubelet's `/metrics/cadvisor`).
//! A daemon registers its metrics and checks on [`Admin`] while it sets up, then the shell serves it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use futures::future::BoxFuture;
use prometheus_client::registry::{Metric, Registry};
use tokio_util::sync::CancellationToken;

/// The content type of the metrics paths (OpenMetrics text, prometheus-client's encoding).
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A health check: `Ok` or the reason it fails.
pub type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The admin server's content, built while the daemon sets up.
pub struct Admin {
    registry: Registry,
    /// Further metrics paths, each with its registry.
    endpoints: Vec<(&'static str, Registry)>,
    live: Vec<(&'static str, Check)>,
    ready: Vec<(&'static str, Check)>,
}

impl Admin {
    /// An empty admin server; metric names get `prefix_` (e.g. `scheduler`), none when empty.
    pub fn new(prefix: &str) -> Admin {
        let registry = if prefix.is_empty() { Registry::default() } else { Registry::with_prefix(prefix) };
        Admin { registry, endpoints: Vec::new(), live: Vec::new(), ready: Vec::new() }
    }

    /// Where the daemon registers its metrics.
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Serves `registry` at `path` too (e.g. `/metrics/cadvisor`), in the same format as `/metrics`.
    pub fn metrics_endpoint(&mut self, path: &'static str, registry: Registry) {
        self.endpoints.push((path, registry));
    }

    /// A check for `/healthz` and `/livez` (and `/readyz`: a process that is not live is not ready).
    pub fn liveness(&mut self, name: &'static str, check: Check) {
        self.live.push((name, check.clone()));
        self.ready.push((name, check));
    }

    /// A check for `/readyz` only.
    pub fn readiness(&mut self, name: &'static str, check: Check) {
        self.ready.push((name, check));
    }

    /// A check passing while `flag` is true, failing with `reason` otherwise.
    pub fn flag_check(flag: Arc<AtomicBool>, reason: &'static str) -> Check {
        Arc::new(move || {
            let ok = flag.load(Ordering::Acquire);
            Box::pin(async move { if ok { Ok(()) } else { Err(reason.to_string()) } })
        })
    }

    /// The metrics in OpenMetrics text.
    pub fn encode(&self) -> String {
        encode(&self.registry)
    }

    /// Binds `addr` (so a port in use fails the start-up, not later).
    pub async fn bind(self, addr: SocketAddr) -> std::io::Result<AdminServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        Ok(AdminServer { listener, state: Arc::new(self) })
    }
}

/// Registers `metric` under `name` and hands it back, so a metrics struct is built one line per metric:
/// `requests: registered(r, "requests", "API requests", Family::default())`.
pub fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

fn encode(r: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, r).expect("writing to a String");
    out
}

/// A bound admin server, ready to serve.
pub struct AdminServer {
    listener: tokio::net::TcpListener,
    state: Arc<Admin>,
}

impl AdminServer {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`.
    pub async fn serve(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let mut app = Router::new()
            .route("/healthz", get(live))
            .route("/livez", get(live))
            .route("/readyz", get(ready))
            .route("/metrics", get(metrics));
        for (i, (path, _)) in self.state.endpoints.iter().enumerate() {
            app = app.route(
                path,
                get(move |State(a): State<Arc<Admin>>| async move { openmetrics(&a.endpoints[i].1) }),
            );
        }
        let app = app.with_state(self.state);
        if let Ok(addr) = self.listener.local_addr() {
            tracing::info!(%addr, "serving /healthz /livez /readyz /metrics");
        }
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }
}

/// Runs every check; 200 `ok` when all pass, else 503 with one `name: reason` line per failure.
async fn run_checks(checks: &[(&'static str, Check)]) -> (StatusCode, String) {
    let results = futures::future::join_all(checks.iter().map(|(_, c)| c())).await;
    let failed: Vec<String> = checks
        .iter()
        .zip(results)
        .filter_map(|((name, _), r)| r.err().map(|reason| format!("{name}: {reason}\n")))
        .collect();
    if failed.is_empty() {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, failed.concat())
    }
}

async fn live(State(a): State<Arc<Admin>>) -> (StatusCode, String) {
    run_checks(&a.live).await
}

async fn ready(State(a): State<Arc<Admin>>) -> (StatusCode, String) {
    run_checks(&a.ready).await
}

async fn metrics(State(a): State<Arc<Admin>>) -> ([(&'static str, &'static str); 1], String) {
    openmetrics(&a.registry)
}

fn openmetrics(r: &Registry) -> ([(&'static str, &'static str); 1], String) {
    ([("content-type", OPENMETRICS_CONTENT_TYPE)], encode(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let code = out[9..12].parse().unwrap();
        (code, out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
    }

    #[tokio::test]
    async fn serves_checks_and_metrics() {
        let mut admin = Admin::new("sample");
        let c = Counter::<u64>::default();
        admin.registry().register("things", "Things done", c.clone());
        c.inc();
        let synced = Arc::new(AtomicBool::new(false));
        admin.readiness("synced", Admin::flag_check(synced.clone(), "not synced yet"));
        let mut extra = Registry::default();
        extra.register("other", "Other things", Counter::<u64>::default());
        admin.metrics_endpoint("/metrics/other", extra);
        let server = admin.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = server.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(server.serve(stop.clone()));
        assert_eq!(get(addr, "/healthz").await, (200, "ok\n".into()));
        assert_eq!(get(addr, "/readyz").await, (503, "synced: not synced yet\n".into()));
        synced.store(true, Ordering::Release);
        assert_eq!(get(addr, "/readyz").await.0, 200);
        let (code, body) = get(addr, "/metrics").await;
        assert_eq!(code, 200);
        assert!(body.contains("sample_things_total 1"), "{body}");
        let (code, body) = get(addr, "/metrics/other").await;
        assert_eq!(code, 200);
        assert!(body.contains("other_total 0") && !body.contains("sample_things"), "{body}");
        stop.cancel();
        task.await.unwrap().unwrap();
    }
}
