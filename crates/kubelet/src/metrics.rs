//! The kubelet's Prometheus metrics, served on `/metrics`: how long pod start-up steps take (sandbox
//! network, image pull, container create, container start, pod start end to end), pod sync
//! durations, and probe results.

use navarch_daemon::registered;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    /// Startup, Liveness, Readiness
    pub probe_type: &'static str,
    /// successful, failed
    pub result: &'static str,
}

pub struct KubeletMetrics {
    pub sandbox_setup: Histogram,
    pub image_pull: Histogram,
    pub container_create: Histogram,
    pub container_start: Histogram,
    pub pod_start: Histogram,
    pub sync: Histogram,
    pub probes: Family<ProbeLabels, Counter>,
}

fn seconds() -> Histogram {
    // 1 ms .. ~65 s
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl KubeletMetrics {
    /// Registers the kubelet's metrics (named `kubelet_*`) in `registry`.
    pub fn register(registry: &mut Registry) -> KubeletMetrics {
        let r = registry.sub_registry_with_prefix("kubelet");
        let hist = |r: &mut Registry, name: &str, help: &str| registered(r, name, help, seconds());
        KubeletMetrics {
            sandbox_setup: hist(
                r,
                "pod_sandbox_setup_duration_seconds",
                "Network namespace and CNI set-up of a pod",
            ),
            image_pull: hist(r, "image_pull_duration_seconds", "Image pulls from registries"),
            container_create: hist(
                r,
                "container_create_duration_seconds",
                "Snapshot, containerd container and task creation of one container",
            ),
            container_start: hist(
                r,
                "container_start_duration_seconds",
                "Starting one container's task (runc start)",
            ),
            pod_start: hist(
                r,
                "pod_start_duration_seconds",
                "From the kubelet first seeing a pod to all its containers running",
            ),
            sync: hist(r, "pod_worker_duration_seconds", "One sync of one pod"),
            probes: registered(r, "prober_probe", "Probe runs by type and result", Family::default()),
        }
    }

    pub fn probe(&self, probe_type: &'static str, ok: bool) {
        let result = if ok { "successful" } else { "failed" };
        self.probes.get_or_create(&ProbeLabels { probe_type, result }).inc();
    }
}

impl Default for KubeletMetrics {
    /// Metrics registered nowhere (tests).
    fn default() -> Self {
        KubeletMetrics::register(&mut Registry::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_histograms_and_probe_counts() {
        let mut registry = Registry::default();
        let m = KubeletMetrics::register(&mut registry);
        m.container_start.observe(0.02);
        m.probe("Readiness", false);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("kubelet_container_start_duration_seconds_count 1"), "{text}");
        assert!(
            text.contains("kubelet_prober_probe_total{probe_type=\"Readiness\",result=\"failed\"} 1"),
            "{text}"
        );
    }
}
