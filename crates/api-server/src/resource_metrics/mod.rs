//! The resource metrics API, `metrics.k8s.io/v1beta1` (what metrics-server serves, `kubectl top` and the
//! HorizontalPodAutoscaler read), inside the api-server: [`pipeline`] scrapes every Ready node's kubelet
//! stats each `--metric-resolution` and keeps the latest sample in memory ([`sample`]); [`ResourceMetrics`]
//! answers get and list of NodeMetrics and PodMetrics from it ([`convert`] makes the objects), for both
//! doors through the registry. Nothing is stored: no etcd keys, no watch caches; writes and watches are
//! refused (`MethodNotAllowed`).

pub mod convert;
pub mod pipeline;
pub mod sample;

use std::sync::{Arc, RwLock};

use navarch_api::selector::Selector;
use navarch_api::{KindInfo, Object};

use crate::error::ApiError;
use crate::field_selector::FieldSelector;
use crate::local_store::LocalStore;
use crate::registry::{ListOptions, ListResult, now_rfc3339};
use sample::Snapshot;

/// The resources metrics-server names in NotFound errors for a node or pod without metrics.
const NODE_METRICS: &str = "nodemetrics.metrics.k8s.io";
const POD_METRICS: &str = "podmetrics.metrics.k8s.io";

/// Get and list of NodeMetrics and PodMetrics from the latest snapshot, with the labels of the Nodes and
/// Pods of the api-server's own stores (a pod or node that no longer exists has no metrics).
pub struct ResourceMetrics {
    snapshot: RwLock<Arc<Snapshot>>,
    pods: Arc<LocalStore>,
    nodes: Arc<LocalStore>,
}

/// The error of a write or watch of a resource metrics kind (REST: 405 MethodNotAllowed; gRPC:
/// `Unimplemented`).
pub fn read_only(info: &KindInfo, verb: &str) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{verb} is not supported on {}.{}: the resource metrics API is read-only (get, list)",
        info.plural,
        crate::rest::status::group_of(info.api_version)
    ))
}

impl ResourceMetrics {
    pub fn new(pods: Arc<LocalStore>, nodes: Arc<LocalStore>) -> ResourceMetrics {
        ResourceMetrics { snapshot: RwLock::new(Arc::new(Snapshot::default())), pods, nodes }
    }

    /// The latest snapshot (cheap: an `Arc`).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn publish(&self, next: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
    }

    /// The Nodes the pipeline scrapes from.
    pub fn node_store(&self) -> &Arc<LocalStore> {
        &self.nodes
    }

    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Result<Object, ApiError> {
        let snapshot = self.snapshot();
        let now = now_rfc3339();
        let not_found = |plural: &str, name: String| ApiError::NotFound { plural: plural.into(), name };
        match kind {
            "NodeMetrics" => {
                let node = self.nodes.get("", name).ok_or_else(|| not_found("nodes", name.into()))?;
                let sample = snapshot.nodes.get(name).ok_or_else(|| not_found(NODE_METRICS, name.into()))?;
                Ok(convert::node_metrics(name, &node.meta().labels, sample, &now).into())
            }
            "PodMetrics" => {
                let pod = self.pods.get(namespace, name).ok_or_else(|| not_found("pods", name.into()))?;
                let sample = snapshot
                    .pod(namespace, name)
                    .filter(|s| same_pod(&s.uid, &pod.meta().uid))
                    .ok_or_else(|| not_found(POD_METRICS, format!("{namespace}/{name}")))?;
                Ok(convert::pod_metrics(namespace, name, &pod.meta().labels, sample, &now).into())
            }
            other => Err(ApiError::Internal(format!("{other} is not a resource metrics kind"))),
        }
    }

    /// The metrics of the nodes (or the pods of `opts.namespace`, all when empty) that match the
    /// selectors, ordered by name (namespace, then name); label selectors see the Node's or Pod's labels.
    pub fn list(&self, kind: &str, opts: &ListOptions) -> Result<ListResult, ApiError> {
        let labels = Selector::parse(&opts.label_selector)
            .map_err(|e| ApiError::BadRequest(format!("labelSelector: {e}")))?;
        let fields = FieldSelector::parse(&opts.field_selector)
            .map_err(|e| ApiError::BadRequest(format!("fieldSelector: {e}")))?;
        fields.check_supported(kind).map_err(|e| ApiError::BadRequest(format!("fieldSelector: {e}")))?;
        let snapshot = self.snapshot();
        let now = now_rfc3339();
        let items: Vec<Object> = match kind {
            "NodeMetrics" => snapshot
                .nodes
                .iter()
                .filter_map(|(name, sample)| {
                    let node = self.nodes.get("", name)?;
                    Some(convert::node_metrics(name, &node.meta().labels, sample, &now).into())
                })
                .collect(),
            "PodMetrics" => snapshot
                .all_pods()
                .filter(|((ns, _), _)| opts.namespace.is_empty() || *ns == opts.namespace)
                .filter_map(|((ns, name), sample)| {
                    let pod = self.pods.get(ns, name).filter(|p| same_pod(&sample.uid, &p.meta().uid))?;
                    Some(convert::pod_metrics(ns, name, &pod.meta().labels, sample, &now).into())
                })
                .collect(),
            other => return Err(ApiError::Internal(format!("{other} is not a resource metrics kind"))),
        };
        let items = items
            .into_iter()
            .filter(|o: &Object| labels.matches(&o.meta().labels) && fields.matches(o))
            .collect();
        Ok(ListResult { items, resource_version: 0, continue_token: String::new(), remaining: 0 })
    }
}

/// Whether a sample of pod `sampled` is of the stored pod `stored` (a pod deleted and created again under
/// its name is another pod); a kubelet that does not say is believed.
fn same_pod(sampled: &str, stored: &str) -> bool {
    sampled.is_empty() || stored.is_empty() || sampled == stored
}

#[cfg(test)]
mod tests;
