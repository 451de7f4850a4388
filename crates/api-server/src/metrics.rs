//! Prometheus metrics of the api-server (served by the daemon shell's admin server).

use std::sync::atomic::AtomicI64;

use navarch_daemon::registered;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: &'static str,
    pub kind: String,
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbLabels {
    pub verb: &'static str,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScrapeLabels {
    /// `success` or `failure`.
    pub result: &'static str,
}

pub struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<VerbLabels, Histogram>,
    pub watchers: Family<KindLabels, Gauge<i64, AtomicI64>>,
    pub watch_events: Family<KindLabels, Counter>,
    /// Kubelet stats scrapes of the resource metrics pipeline, by result.
    pub resource_metrics_scrapes: Family<ScrapeLabels, Counter>,
    /// How long a round of scrapes of every node took.
    pub resource_metrics_round_duration: Histogram,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    /// Registers the api-server's metrics (named `apiserver_*`) in `registry`.
    pub fn register(registry: &mut Registry) -> Metrics {
        let r = registry.sub_registry_with_prefix("apiserver");
        let latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        Metrics {
            requests: registered(
                r,
                "requests",
                "API requests by verb, kind and result code",
                Family::default(),
            ),
            latency: registered(
                r,
                "request_duration_seconds",
                "API request latency by verb and kind",
                latency,
            ),
            watchers: registered(r, "watchers", "Open watch streams by kind", Family::default()),
            watch_events: registered(
                r,
                "watch_events_sent",
                "Watch events sent to clients by kind",
                Family::default(),
            ),
            resource_metrics_scrapes: registered(
                r,
                "resource_metrics_scrapes",
                "Kubelet stats scrapes of the resource metrics pipeline by result",
                Family::default(),
            ),
            resource_metrics_round_duration: registered(
                r,
                "resource_metrics_round_duration_seconds",
                "Duration of a round of kubelet stats scrapes of every Ready node",
                latency_histogram(),
            ),
        }
    }

    pub fn resource_metrics_scrape(&self, result: &'static str) {
        self.resource_metrics_scrapes.get_or_create(&ScrapeLabels { result }).inc();
    }

    pub fn resource_metrics_round(&self, seconds: f64) {
        self.resource_metrics_round_duration.observe(seconds);
    }

    pub fn observe(&self, verb: &'static str, kind: &str, code: &'static str, seconds: f64) {
        self.requests.get_or_create(&RequestLabels { verb, kind: kind.to_string(), code }).inc();
        self.latency.get_or_create(&VerbLabels { verb, kind: kind.to_string() }).observe(seconds);
    }
}

impl Default for Metrics {
    /// Metrics registered nowhere (tests).
    fn default() -> Self {
        Metrics::register(&mut Registry::default())
    }
}
