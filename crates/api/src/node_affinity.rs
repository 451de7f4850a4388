//! Whether a pod's node selector and required node affinity admit a node (Kubernetes'
//! `component-helpers` `nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)`), shared by the scheduler
//! and the DaemonSet controller.

use std::collections::BTreeMap;

use crate::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, PodSpec};

/// One requirement on a label or field whose value is `value` (`None`: absent).
pub fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let num = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| r.values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !r.values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => {
            matches!((value.and_then(num), r.values.first().and_then(|x| num(x))), (Some(v), Some(x)) if v > x)
        }
        "Lt" => {
            matches!((value.and_then(num), r.values.first().and_then(|x| num(x))), (Some(v), Some(x)) if v < x)
        }
        _ => false,
    }
}

/// A node selector term: its expressions on labels and fields all hold (an empty term matches nothing).
/// The only field is `metadata.name`.
pub fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>, node_name: &str) -> bool {
    if term.match_expressions.is_empty() && term.match_fields.is_empty() {
        return false;
    }
    term.match_expressions.iter().all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && term.match_fields.iter().all(|r| {
            let v = (r.key == "metadata.name").then_some(node_name);
            requirement_matches(r, v)
        })
}

/// Whether `node` has every label of the pod's `nodeSelector` and matches one term of its required node
/// affinity (if any).
pub fn matches_node(spec: &PodSpec, node: &Node) -> bool {
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref());
    if spec.node_selector.is_empty() && required.is_none() {
        return true; // without reading the node (the scheduler asks this of thousands per pod)
    }
    let meta = node.metadata.as_ref();
    let empty = BTreeMap::new();
    let labels = meta.map(|m| &m.labels).unwrap_or(&empty);
    let name = meta.map(|m| m.name.as_str()).unwrap_or("");
    if !spec.node_selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        return false;
    }
    match required {
        None => true,
        Some(sel) => sel.node_selector_terms.iter().any(|t| term_matches(t, labels, name)),
    }
}
