//! The kubelet's Prometheus metrics, served on `/metrics`: how long pod start-up steps take (sandbox
//! network, image pull, container create, container start, pod start end to end), pod sync
//! durations, and probe results.

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
        let registry = registry.sub_registry_with_prefix("kubelet");
        let m = KubeletMetrics {
            sandbox_setup: seconds(),
            image_pull: seconds(),
            container_create: seconds(),
            container_start: seconds(),
            pod_start: seconds(),
            sync: seconds(),
            probes: Family::default(),
        };
        registry.register(
            "pod_sandbox_setup_duration_seconds",
            "Network namespace and CNI set-up of a pod",
            m.sandbox_setup.clone(),
        );
        registry.register("image_pull_duration_seconds", "Image pulls from registries", m.image_pull.clone());
        registry.register(
            "container_create_duration_seconds",
            "Snapshot, containerd container and task creation of one container",
            m.container_create.clone(),
        );
        registry.register(
            "container_start_duration_seconds",
            "Starting one container's task (runc start)",
            m.container_start.clone(),
        );
        registry.register(
            "pod_start_duration_seconds",
            "From the kubelet first seeing a pod to all its containers running",
            m.pod_start.clone(),
        );
        registry.register("pod_worker_duration_seconds", "One sync of one pod", m.sync.clone());
        registry.register("prober_probe", "Probe runs by type and result", m.probes.clone());
        m
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
