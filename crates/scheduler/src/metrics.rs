//! The scheduler's Prometheus metrics (served by the daemon shell's admin server): scheduling attempts
//! by result, end-to-end scheduling latency (pod first seen pending → bound), and the pending queue
//! length.

use std::sync::atomic::AtomicI64;

use navarch_daemon::registered;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// scheduled, unschedulable, error
    pub result: &'static str,
}

pub struct SchedulerMetrics {
    pub attempts: Family<ResultLabel, Counter>,
    pub e2e_latency: Histogram,
    pub pending: Gauge<i64, AtomicI64>,
}

impl SchedulerMetrics {
    /// Registers the scheduler's metrics (named `scheduler_*`) in `registry`.
    pub fn register(registry: &mut Registry) -> SchedulerMetrics {
        let r = registry.sub_registry_with_prefix("scheduler");
        // 1 ms .. ~32 s
        let e2e_latency = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let e2e_help = "From a pod first seen pending to its binding";
        SchedulerMetrics {
            attempts: registered(r, "schedule_attempts", "Scheduling attempts by result", Family::default()),
            e2e_latency: registered(r, "e2e_scheduling_duration_seconds", e2e_help, e2e_latency),
            pending: registered(r, "pending_pods", "Pods waiting to be scheduled", Gauge::default()),
        }
    }

    pub fn attempt(&self, result: &'static str) {
        self.attempts.get_or_create(&ResultLabel { result }).inc();
    }
}

impl Default for SchedulerMetrics {
    /// Metrics registered nowhere (tests).
    fn default() -> Self {
        SchedulerMetrics::register(&mut Registry::default())
    }
}
