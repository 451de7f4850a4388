//! The scheduler's `/healthz` and Prometheus `/metrics`: scheduling attempts by result, end-to-end
//! scheduling latency (pod first seen pending → bound), and the pending queue length.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// scheduled, unschedulable, error
    pub result: &'static str,
}

pub struct SchedulerMetrics {
    registry: Registry,
    pub attempts: Family<ResultLabel, Counter>,
    pub e2e_latency: Histogram,
    pub pending: Gauge<i64, AtomicI64>,
}

impl SchedulerMetrics {
    pub fn new() -> SchedulerMetrics {
        let mut registry = Registry::with_prefix("scheduler");
        let attempts = Family::<ResultLabel, Counter>::default();
        // 1 ms .. ~32 s
        let e2e_latency = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let pending = Gauge::<i64, AtomicI64>::default();
        registry.register("schedule_attempts", "Scheduling attempts by result", attempts.clone());
        registry.register(
            "e2e_scheduling_duration_seconds",
            "From a pod first seen pending to its binding",
            e2e_latency.clone(),
        );
        registry.register("pending_pods", "Pods waiting to be scheduled", pending.clone());
        SchedulerMetrics { registry, attempts, e2e_latency, pending }
    }

    pub fn attempt(&self, result: &'static str) {
        self.attempts.get_or_create(&ResultLabel { result }).inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}

impl Default for SchedulerMetrics {
    fn default() -> Self {
        SchedulerMetrics::new()
    }
}

async fn metrics(State(m): State<Arc<SchedulerMetrics>>) -> String {
    m.encode()
}

/// Serves `/healthz` and `/metrics` on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    m: Arc<SchedulerMetrics>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app =
        Router::new().route("/healthz", get(|| async { "ok" })).route("/metrics", get(metrics)).with_state(m);
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}
