//! The pod garbage collector (Kubernetes' podgc controller). Every 20 s it deletes, at once (grace
//! period 0, as nobody is left to stop their containers):
//!
//! * pods bound to a Node that no longer exists: missing from the node store for the 40 s quarantine
//!   and then confirmed missing with a GET, so a node that is only re-registering is left alone
//!   (without this, pods of a deleted Node would stay `Terminating` for ever);
//! * terminating pods that were never scheduled (nothing will ever finish them);
//! * the oldest finished (Succeeded or Failed) pods beyond `--terminated-pod-gc-threshold`'s 12,500.
//!
//! The decisions are pure ([`orphaned_nodes`], [`unscheduled_terminating`], [`terminated_surplus`]);
//! [`PodGc::run`] applies them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use navarch_api::Resource;
use navarch_api::v1::{Node, Pod};
use navarch_client::{Client, DeleteParams, Store};
use tokio_util::sync::CancellationToken;

use crate::run::Wiring;

/// How often the collector looks (Kubernetes' gcCheckPeriod).
const CHECK_PERIOD: Duration = Duration::from_secs(20);
/// How long a Node must be missing before its pods go (Kubernetes' quarantineTime).
const QUARANTINE: Duration = Duration::from_secs(40);
/// Finished pods kept at most (Kubernetes' `--terminated-pod-gc-threshold` default).
const TERMINATED_THRESHOLD: usize = 12_500;

fn node_of(p: &Pod) -> &str {
    p.spec.as_ref().map(|s| s.node_name.as_str()).unwrap_or_default()
}

fn finished(p: &Pod) -> bool {
    matches!(p.status.as_ref().map(|s| s.phase.as_str()), Some("Succeeded" | "Failed"))
}

/// The Nodes pods are bound to that have been missing from `nodes` for the quarantine: `missing_since`
/// remembers when each was first seen missing (and forgets those that are back).
pub fn orphaned_nodes(
    pods: &[Arc<Pod>],
    nodes: &HashSet<String>,
    missing_since: &mut HashMap<String, Instant>,
    now: Instant,
) -> Vec<String> {
    let missing: HashSet<&str> =
        pods.iter().map(|p| node_of(p)).filter(|n| !n.is_empty() && !nodes.contains(*n)).collect();
    missing_since.retain(|n, _| missing.contains(n.as_str()));
    let mut out: Vec<String> = missing
        .into_iter()
        .filter(|n| now.duration_since(*missing_since.entry(n.to_string()).or_insert(now)) >= QUARANTINE)
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

/// Pods being deleted that no node ever ran.
pub fn unscheduled_terminating(pods: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    pods.iter()
        .filter(|p| !p.meta().deletion_timestamp.is_empty() && node_of(p).is_empty())
        .cloned()
        .collect()
}

/// The oldest finished pods beyond `threshold` (oldest first).
pub fn terminated_surplus(pods: &[Arc<Pod>], threshold: usize) -> Vec<Arc<Pod>> {
    let mut done: Vec<&Arc<Pod>> =
        pods.iter().filter(|p| finished(p) && p.meta().deletion_timestamp.is_empty()).collect();
    if done.len() <= threshold {
        return Vec::new();
    }
    done.sort_by(|a, b| {
        (&a.meta().creation_timestamp, &a.meta().name).cmp(&(&b.meta().creation_timestamp, &b.meta().name))
    });
    let surplus = done.len() - threshold;
    done.into_iter().take(surplus).cloned().collect()
}

/// The collector's loop.
pub struct PodGc {
    client: Client,
    pods: Store<Pod>,
    nodes: Store<Node>,
}

impl PodGc {
    pub async fn run(self, stop: CancellationToken) {
        let mut missing_since = HashMap::new();
        let mut tick = tokio::time::interval(CHECK_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            if !self.pods.is_ready() || !self.nodes.is_ready() {
                continue;
            }
            self.collect(&mut missing_since).await;
        }
    }

    async fn collect(&self, missing_since: &mut HashMap<String, Instant>) {
        let pods = self.pods.state();
        let nodes: HashSet<String> = self.nodes.state().iter().map(|n| n.meta().name.clone()).collect();
        for node in orphaned_nodes(&pods, &nodes, missing_since, Instant::now()) {
            // The store may lag: only a Node the api-server does not have either is gone.
            match self.client.api::<Node>("").get(&node).await {
                Err(navarch_client::Error::NotFound(_)) => {}
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(node = %node, error = %e, "checking a missing node");
                    continue;
                }
            }
            for pod in pods.iter().filter(|p| node_of(p) == node) {
                self.force_delete(pod, "bound to a node that no longer exists").await;
            }
        }
        for pod in unscheduled_terminating(&pods) {
            self.force_delete(&pod, "terminating and never scheduled").await;
        }
        for pod in terminated_surplus(&pods, TERMINATED_THRESHOLD) {
            self.force_delete(&pod, "finished, beyond the terminated pods kept").await;
        }
    }

    async fn force_delete(&self, pod: &Pod, why: &str) {
        let m = pod.meta();
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            precondition_uid: m.uid.clone(),
            ..Default::default()
        };
        match self.client.api::<Pod>(&m.namespace).delete(&m.name, &params).await {
            Ok(_) => {
                tracing::info!(pod = %format!("{}/{}", m.namespace, m.name), why, "pod garbage-collected")
            }
            Err(navarch_client::Error::NotFound(_)) => {}
            Err(e) => tracing::warn!(pod = %m.name, error = %e, "deleting a pod to collect"),
        }
    }
}

/// Runs the collector on the shared pod and node stores.
pub fn spawn(w: &mut Wiring) {
    let gc =
        PodGc { client: w.client.clone(), pods: w.informers.pods.store(), nodes: w.informers.nodes.store() };
    let stop = w.stop.clone();
    w.spawn(gc.run(stop));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str, extra: &str) -> Arc<Pod> {
        Arc::new(
            serde_yaml::from_str(&format!(
                "{{metadata: {{name: {name}, namespace: ns, creationTimestamp: '2026-01-01T00:00:0{}Z' {extra}}}, spec: {{nodeName: '{node}', containers: []}}}}",
                name.len() % 10
            ))
            .unwrap(),
        )
    }

    #[test]
    fn pods_of_a_missing_node_go_after_the_quarantine() {
        let pods = vec![pod("a", "gone", ""), pod("b", "here", ""), pod("c", "", "")];
        let nodes: HashSet<String> = ["here".to_string()].into();
        let mut since = HashMap::new();
        let t0 = Instant::now();
        assert!(orphaned_nodes(&pods, &nodes, &mut since, t0).is_empty(), "quarantined first");
        assert!(orphaned_nodes(&pods, &nodes, &mut since, t0 + Duration::from_secs(39)).is_empty());
        assert_eq!(orphaned_nodes(&pods, &nodes, &mut since, t0 + QUARANTINE), ["gone"]);
        // Back: forgotten, and quarantined again if it goes missing again.
        let nodes: HashSet<String> = ["here".to_string(), "gone".to_string()].into();
        assert!(orphaned_nodes(&pods, &nodes, &mut since, t0 + QUARANTINE).is_empty());
        assert!(since.is_empty());
    }

    #[test]
    fn unscheduled_terminating_and_terminated_surplus() {
        let deleting = ", deletionTimestamp: '2026-01-01T00:01:00Z'";
        let pods = vec![pod("never-ran", "", deleting), pod("ran", "n1", deleting), pod("new", "", "")];
        let names = |v: Vec<Arc<Pod>>| v.iter().map(|p| p.meta().name.clone()).collect::<Vec<_>>();
        assert_eq!(names(unscheduled_terminating(&pods)), ["never-ran"]);
        let done = |name: &str| -> Arc<Pod> {
            let mut p = (*pod(name, "n1", "")).clone();
            p.status.get_or_insert_with(Default::default).phase = "Succeeded".into();
            Arc::new(p)
        };
        let pods = vec![done("dddd"), done("b"), done("ccc"), pod("running", "n1", "")];
        assert_eq!(names(terminated_surplus(&pods, 1)), ["b", "ccc"], "the oldest finished first");
        assert!(terminated_surplus(&pods, 3).is_empty());
    }
}
