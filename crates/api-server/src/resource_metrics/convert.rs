//! From samples to `metrics.k8s.io/v1beta1` objects, as metrics-server writes them: usage quantities in
//! Kubernetes' canonical form (cpu from nanocores, `"123456789n"`; memory from bytes, `"4096Ki"`), the
//! window as a Go duration (`"15s"`, `"14.998s"`), and the node's or pod's labels.

use std::collections::BTreeMap;

use navarch_api::v1::{ContainerMetrics, NodeMetrics, ObjectMeta, PodMetrics, Quantity};
use navarch_api::{go_duration, quantity};

use super::sample::{ContainerUsage, NodeSample, PodSample};

fn usage(cpu_nanocores: u64, memory_bytes: u64) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_string(), Quantity { string: quantity::format_decimal_nanos(cpu_nanocores.into()) }),
        ("memory".to_string(), Quantity { string: quantity::format_binary(memory_bytes.into()) }),
    ])
}

fn meta(namespace: &str, name: &str, labels: &BTreeMap<String, String>, now: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta {
        name: name.to_string(),
        namespace: namespace.to_string(),
        labels: labels.clone(),
        creation_timestamp: now.to_string(),
        ..Default::default()
    })
}

/// A node's metrics; `labels` are the Node's, `now` the answer's creationTimestamp.
pub fn node_metrics(name: &str, labels: &BTreeMap<String, String>, s: &NodeSample, now: &str) -> NodeMetrics {
    NodeMetrics {
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "NodeMetrics".into(),
        metadata: meta("", name, labels, now),
        timestamp: s.timestamp.clone(),
        window: go_duration::format(s.window),
        usage: usage(s.cpu_nanocores, s.memory_bytes),
    }
}

/// A pod's metrics, container by container; `labels` are the Pod's.
pub fn pod_metrics(
    namespace: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
    s: &PodSample,
    now: &str,
) -> PodMetrics {
    let container = |c: &ContainerUsage| ContainerMetrics {
        name: c.name.clone(),
        usage: usage(c.cpu_nanocores, c.memory_bytes),
    };
    PodMetrics {
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "PodMetrics".into(),
        metadata: meta(namespace, name, labels, now),
        timestamp: s.timestamp.clone(),
        window: go_duration::format(s.window),
        containers: s.containers.iter().map(container).collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn objects_carry_labels_time_window_and_usage() {
        let sample = PodSample {
            uid: "u".into(),
            containers: vec![ContainerUsage {
                name: "app".into(),
                cpu_nanocores: 1_000_000,
                memory_bytes: 4 << 20,
            }],
            timestamp: "2026-12-04T20:00:00Z".into(),
            window: Duration::from_secs(15),
        };
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let m = pod_metrics("default", "web-1", &labels, &sample, "2026-12-04T20:00:05Z");
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "apiVersion": "metrics.k8s.io/v1beta1",
                "kind": "PodMetrics",
                "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"},
                             "creationTimestamp": "2026-12-04T20:00:05Z"},
                "timestamp": "2026-12-04T20:00:00Z",
                "window": "15s",
                "containers": [{"name": "app", "usage": {"cpu": "1m", "memory": "4Mi"}}],
            })
        );
    }
}
