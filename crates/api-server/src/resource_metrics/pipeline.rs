//! The scrape task: every `--metric-resolution` it asks the kubelet of every Ready node for its stats,
//! all at once, each within a timeout (90% of the resolution, as metrics-server), and publishes the next
//! snapshot ([`super::sample::next`]). Failed scrapes are logged and counted
//! (`apiserver_resource_metrics_scrapes_total{result="failure"}`); a failed node's previous sample is
//! served while it is younger than two resolutions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use navarch_api::Object;
use navarch_api::v1::Node;

use super::ResourceMetrics;
use super::sample::{self, NodeSample};
use crate::state::ApiState;

/// How long a sample of a node that stopped answering is still served, in resolutions.
const STALE_AFTER_RESOLUTIONS: u32 = 2;

/// Whether the node's Ready condition is True.
pub fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
}

/// Starts the pipeline as a task of the api-server (until shutdown).
pub fn start(state: &Arc<ApiState>, metrics: Arc<ResourceMetrics>, resolution: Duration) {
    let state2 = state.clone();
    state.tasks.spawn(async move {
        let mut ticks = tokio::time::interval(resolution);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = state2.shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            round(&state2, &metrics, resolution).await;
        }
    });
}

/// One round: scrape, then publish.
async fn round(state: &ApiState, metrics: &ResourceMetrics, resolution: Duration) {
    let started = Instant::now();
    let nodes: Vec<Arc<Object>> = metrics
        .node_store()
        .list()
        .into_iter()
        .filter(|o| matches!(&**o, Object::Node(n) if is_ready(n)))
        .collect();
    let timeout = resolution.mul_f64(0.9);
    let scrapes = nodes.iter().map(|o| async move {
        let Object::Node(node) = &**o else { unreachable!("filtered to nodes") };
        let name = o.meta().name.clone();
        let result: Result<NodeSample, String> = state
            .kubelets
            .stats(node, timeout)
            .await
            .map(|s| sample::node_sample(s, Instant::now(), resolution));
        (name, result)
    });
    let results = futures::future::join_all(scrapes).await;
    for (node, r) in &results {
        let outcome = if let Err(error) = r {
            tracing::warn!(node = %node, %error, "scraping the kubelet's stats failed");
            "failure"
        } else {
            "success"
        };
        state.metrics.resource_metrics_scrape(outcome);
    }
    let previous = metrics.snapshot();
    let (next, report) =
        sample::next(&previous, results, Instant::now(), resolution * STALE_AFTER_RESOLUTIONS);
    tracing::debug!(
        nodes = next.nodes.len(),
        pods = next.pods.len(),
        scraped = report.scraped,
        failed = report.failed,
        kept_stale = report.kept_stale,
        "resource metrics scraped"
    );
    metrics.publish(next);
    state.metrics.resource_metrics_round(started.elapsed().as_secs_f64());
}
