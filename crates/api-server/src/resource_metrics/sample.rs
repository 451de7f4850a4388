//! The pipeline's bookkeeping: the latest sample of every node (and of the pods it runs), and how one
//! round of scrapes turns the previous [`Snapshot`] into the next. Pure: the scrape task feeds it
//! kubelets' `StatsResponse`s, tests feed it hand-made ones.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use navarch_api::kubelet_proto::StatsResponse;

/// One container's usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerUsage {
    pub name: String,
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
}

/// One pod's usage, as its node's kubelet reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSample {
    pub uid: String,
    pub containers: Vec<ContainerUsage>,
    /// When the sample was taken (RFC 3339) and the window it averages over: its node's.
    pub timestamp: String,
    pub window: Duration,
}

/// One node's usage and its pods'.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSample {
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
    pub timestamp: String,
    pub window: Duration,
    /// `(namespace, name)` → the pod's usage.
    pub pods: BTreeMap<(String, String), PodSample>,
    /// When the api-server received it (ages a sample whose node stopped answering).
    pub received: Instant,
}

/// The latest sample of every node, and an index of the pods (each pod is on the node that reported it
/// last). Shared read-only behind an `Arc`; each round of scrapes makes a new one.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub nodes: BTreeMap<String, Arc<NodeSample>>,
    /// `(namespace, name)` → the node whose sample has the pod.
    pub pods: BTreeMap<(String, String), String>,
}

impl Snapshot {
    /// A pod's sample, if a kept node sample has it.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&PodSample> {
        let key = (namespace.to_string(), name.to_string());
        self.nodes.get(self.pods.get(&key)?)?.pods.get(&key)
    }

    /// Every pod sample, ordered by namespace and name.
    pub fn all_pods(&self) -> impl Iterator<Item = (&(String, String), &PodSample)> {
        self.pods.iter().filter_map(|(key, node)| Some((key, self.nodes.get(node)?.pods.get(key)?)))
    }
}

/// What one round did, for logs and metrics.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub scraped: usize,
    pub failed: usize,
    /// Failed nodes whose previous sample was kept (still younger than the bound).
    pub kept_stale: usize,
}

/// A kubelet's answer as a node sample, received `now`. A kubelet that does not say when or over how
/// long gets the time of the scrape and the pipeline's resolution.
pub fn node_sample(stats: StatsResponse, now: Instant, resolution: Duration) -> NodeSample {
    let timestamp =
        if stats.timestamp.is_empty() { crate::registry::now_rfc3339() } else { stats.timestamp.clone() };
    let window = if stats.window_seconds > 0.0 && stats.window_seconds.is_finite() {
        // Milliseconds are what a window is worth (metrics-server's are Go durations like `14.998s`).
        Duration::from_millis((stats.window_seconds * 1000.0).round() as u64)
    } else {
        resolution
    };
    let mut pods = BTreeMap::new();
    for p in stats.pods {
        if p.containers.is_empty() {
            continue;
        }
        let containers = p
            .containers
            .into_iter()
            .map(|c| ContainerUsage {
                name: c.name,
                cpu_nanocores: c.cpu_nano_cores,
                memory_bytes: c.memory_working_set_bytes,
            })
            .collect();
        let sample = PodSample { uid: p.uid, containers, timestamp: timestamp.clone(), window };
        pods.insert((p.namespace, p.name), sample);
    }
    NodeSample {
        cpu_nanocores: stats.node_cpu_nano_cores,
        memory_bytes: stats.node_memory_working_set_bytes,
        timestamp,
        window,
        pods,
        received: now,
    }
}

/// The next snapshot after a round of scrapes of the Ready nodes: `results` has one entry per node
/// scraped (its sample, or why it failed). A node that answered replaces its sample; one that failed
/// keeps its previous sample while that is younger than `max_age` (then it is dropped, as
/// metrics-server drops it); nodes not scraped this round (gone, or no longer Ready) are dropped, and
/// so are pods no node reports any more.
pub fn next(
    previous: &Snapshot,
    results: Vec<(String, Result<NodeSample, String>)>,
    now: Instant,
    max_age: Duration,
) -> (Snapshot, RoundReport) {
    let mut report = RoundReport::default();
    let mut nodes = BTreeMap::new();
    for (node, result) in results {
        match result {
            Ok(sample) => {
                report.scraped += 1;
                nodes.insert(node, Arc::new(sample));
            }
            Err(_) => {
                report.failed += 1;
                if let Some(old) =
                    previous.nodes.get(&node).filter(|s| now.saturating_duration_since(s.received) < max_age)
                {
                    report.kept_stale += 1;
                    nodes.insert(node, old.clone());
                }
            }
        }
    }
    // A pod reported by two nodes (it moved between two scrapes) is the newer sample's.
    let mut pods: BTreeMap<(String, String), String> = BTreeMap::new();
    for (node, sample) in &nodes {
        for key in sample.pods.keys() {
            let newer = match pods.get(key).and_then(|n| nodes.get(n)) {
                Some(other) => sample.received > other.received,
                None => true,
            };
            if newer {
                pods.insert(key.clone(), node.clone());
            }
        }
    }
    (Snapshot { nodes, pods }, report)
}

#[cfg(test)]
mod tests {
    use navarch_api::kubelet_proto::{ContainerUsage as KContainer, PodUsage};

    use super::*;

    const RES: Duration = Duration::from_secs(15);

    /// `(container, nanocores, bytes)`.
    type Containers<'a> = &'a [(&'a str, u64, u64)];

    fn stats(node: &str, pods: &[(&str, &str, Containers)]) -> StatsResponse {
        StatsResponse {
            node_name: node.into(),
            node_cpu_nano_cores: 250_000_000,
            node_memory_working_set_bytes: 1 << 30,
            pods: pods
                .iter()
                .map(|(ns, name, containers)| PodUsage {
                    namespace: ns.to_string(),
                    name: name.to_string(),
                    uid: format!("uid-{name}"),
                    containers: containers
                        .iter()
                        .map(|(c, cpu, mem)| KContainer {
                            name: c.to_string(),
                            cpu_nano_cores: *cpu,
                            memory_working_set_bytes: *mem,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            timestamp: "2026-12-04T20:00:00Z".into(),
            window_seconds: 14.9984,
            ..Default::default()
        }
    }

    fn ok(node: &str, s: StatsResponse, at: Instant) -> (String, Result<NodeSample, String>) {
        (node.to_string(), Ok(node_sample(s, at, RES)))
    }

    fn failed(node: &str) -> (String, Result<NodeSample, String>) {
        (node.to_string(), Err("connection refused".into()))
    }

    #[test]
    fn a_sample_keeps_the_kubelets_time_and_window_and_skips_pods_without_containers() {
        let now = Instant::now();
        let s = node_sample(
            stats("n1", &[("default", "web", &[("app", 5, 4096)]), ("default", "gone", &[])]),
            now,
            RES,
        );
        assert_eq!(s.timestamp, "2026-12-04T20:00:00Z");
        assert_eq!(s.window, Duration::from_millis(14_998));
        assert_eq!(s.pods.len(), 1);
        let web = &s.pods[&("default".to_string(), "web".to_string())];
        assert_eq!(web.uid, "uid-web");
        assert_eq!(
            web.containers,
            vec![ContainerUsage { name: "app".into(), cpu_nanocores: 5, memory_bytes: 4096 }]
        );
        assert_eq!(web.window, Duration::from_millis(14_998));
        // No window from the kubelet: the resolution.
        let bare = StatsResponse { window_seconds: 0.0, timestamp: String::new(), ..stats("n1", &[]) };
        let s = node_sample(bare, now, RES);
        assert_eq!(s.window, RES);
        assert!(!s.timestamp.is_empty());
    }

    #[test]
    fn a_round_replaces_samples_and_drops_vanished_nodes_and_pods() {
        let t0 = Instant::now();
        let first = vec![
            ok("n1", stats("n1", &[("default", "a", &[("c", 1, 1)]), ("default", "b", &[("c", 2, 2)])]), t0),
            ok("n2", stats("n2", &[("kube-system", "dns", &[("c", 3, 3)])]), t0),
        ];
        let (s1, r1) = next(&Snapshot::default(), first, t0, 2 * RES);
        assert_eq!(r1, RoundReport { scraped: 2, failed: 0, kept_stale: 0 });
        assert_eq!(s1.pods.len(), 3);
        assert_eq!(s1.pod("default", "b").unwrap().containers[0].cpu_nanocores, 2);

        // n2 is gone (not scraped); pod b stopped on n1.
        let t1 = t0 + RES;
        let (s2, r2) =
            next(&s1, vec![ok("n1", stats("n1", &[("default", "a", &[("c", 7, 1)])]), t1)], t1, 2 * RES);
        assert_eq!(r2.scraped, 1);
        assert_eq!(s2.nodes.keys().collect::<Vec<_>>(), vec!["n1"]);
        assert_eq!(s2.all_pods().map(|(k, _)| k.1.as_str()).collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(s2.pod("default", "a").unwrap().containers[0].cpu_nanocores, 7);
        assert!(s2.pod("default", "b").is_none());
        assert!(s2.pod("kube-system", "dns").is_none());
    }

    #[test]
    fn a_failed_scrape_keeps_the_previous_sample_only_while_it_is_young() {
        let t0 = Instant::now();
        let (s1, _) = next(
            &Snapshot::default(),
            vec![ok("n1", stats("n1", &[("d", "a", &[("c", 1, 1)])]), t0)],
            t0,
            2 * RES,
        );
        let t1 = t0 + RES;
        let (s2, r2) = next(&s1, vec![failed("n1")], t1, 2 * RES);
        assert_eq!(r2, RoundReport { scraped: 0, failed: 1, kept_stale: 1 });
        assert!(s2.pod("d", "a").is_some());
        // Two resolutions old: dropped.
        let t2 = t0 + 2 * RES;
        let (s3, r3) = next(&s2, vec![failed("n1")], t2, 2 * RES);
        assert_eq!(r3, RoundReport { scraped: 0, failed: 1, kept_stale: 0 });
        assert!(s3.nodes.is_empty());
        assert!(s3.pod("d", "a").is_none());
    }

    #[test]
    fn a_pod_reported_by_two_nodes_is_the_newer_samples() {
        let t0 = Instant::now();
        let (s1, _) = next(
            &Snapshot::default(),
            vec![ok("n1", stats("n1", &[("d", "p", &[("c", 1, 1)])]), t0)],
            t0,
            2 * RES,
        );
        // n1 fails (its old sample, still young, has p); n2 now runs p.
        let t1 = t0 + RES;
        let (s2, _) = next(
            &s1,
            vec![failed("n1"), ok("n2", stats("n2", &[("d", "p", &[("c", 9, 9)])]), t1)],
            t1,
            2 * RES,
        );
        assert_eq!(s2.pods[&("d".to_string(), "p".to_string())], "n2");
        assert_eq!(s2.pod("d", "p").unwrap().containers[0].cpu_nanocores, 9);
    }
}
