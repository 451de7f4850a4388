//! kube-proxy's Prometheus metrics and sync health (served by the daemon shell's admin server): syncs by kind, sync latency, rules programmed, rules
//! touched by the last sync, and network programming latency (an Endpoints change, by its
//! `endpoints.kubernetes.io/last-change-trigger-time`, to its rules being live).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64};

use navarch_daemon::registered;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// full, partial, error
    pub kind: &'static str,
}

pub struct ProxyMetrics {
    pub syncs: Family<KindLabel, Counter>,
    pub sync_duration: Histogram,
    pub programming_latency: Histogram,
    pub rules: Gauge<i64, AtomicI64>,
    pub last_touched: Gauge<i64, AtomicI64>,
    /// Healthy once the first sync succeeded and the last one did too (`/healthz`).
    pub healthy: Arc<AtomicBool>,
}

impl ProxyMetrics {
    /// Registers kube-proxy's metrics (named `kubeproxy_*`) in `registry`.
    pub fn register(registry: &mut Registry) -> ProxyMetrics {
        let r = registry.sub_registry_with_prefix("kubeproxy");
        // 0.1 ms .. ~3 s
        let sync_duration = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        let programming_latency = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        ProxyMetrics {
            syncs: registered(r, "sync_proxy_rules", "Syncs of the kernel rules by kind", Family::default()),
            sync_duration: registered(
                r,
                "sync_proxy_rules_duration_seconds",
                "Time one sync took",
                sync_duration,
            ),
            programming_latency: registered(
                r,
                "network_programming_duration_seconds",
                "From an Endpoints change to its rules being live",
                programming_latency,
            ),
            rules: registered(
                r,
                "proxy_rules",
                "nftables rules and map elements programmed",
                Gauge::default(),
            ),
            last_touched: registered(
                r,
                "sync_proxy_rules_last_touched",
                "Rules and elements the last sync wrote or removed",
                Gauge::default(),
            ),
            healthy: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Default for ProxyMetrics {
    /// Metrics registered nowhere (tests).
    fn default() -> Self {
        ProxyMetrics::register(&mut Registry::default())
    }
}
