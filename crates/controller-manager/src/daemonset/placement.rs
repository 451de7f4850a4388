//! Where daemon pods belong (Kubernetes' `NodeShouldRunDaemonPod`) and what a daemon pod for a node is:
//! the template with the tolerations every daemon pod gets, the revision labels, and a required node
//! affinity on the node's name (`ReplaceDaemonSetPodNodeNameNodeAffinity`).

use std::collections::BTreeMap;

use navarch_api::Resource;
use navarch_api::node_affinity;
use navarch_api::taints::{self, NOT_READY, UNREACHABLE, UNSCHEDULABLE};
use navarch_api::v1::{
    Affinity, DaemonSet, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    ObjectMeta, Pod, PodSpec, Toleration,
};

use super::{REVISION_HASH_LABEL, TEMPLATE_GENERATION_LABEL, spec_of, template_generation};
use crate::pod_control::controller_ref;

pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
/// The field a daemon pod's node affinity selects its node by.
pub const NODE_NAME_FIELD: &str = "metadata.name";

/// Whether a node should run the DaemonSet's pod, and whether a pod already there may keep running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fit {
    pub should_run: bool,
    pub should_continue_running: bool,
}

fn exists(key: &str, effect: &str) -> Toleration {
    Toleration { key: key.into(), operator: "Exists".into(), effect: effect.into(), ..Default::default() }
}

/// Adds the tolerations Kubernetes gives every daemon pod (`AddOrUpdateDaemonPodTolerations`) unless the
/// template already has them: not-ready and unreachable (NoExecute, no time limit), disk, memory and PID
/// pressure and unschedulable (NoSchedule), and network-unavailable (NoSchedule) for hostNetwork pods.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut wanted = vec![
        exists(NOT_READY, "NoExecute"),
        exists(UNREACHABLE, "NoExecute"),
        exists(DISK_PRESSURE, "NoSchedule"),
        exists(MEMORY_PRESSURE, "NoSchedule"),
        exists(PID_PRESSURE, "NoSchedule"),
        exists(UNSCHEDULABLE, "NoSchedule"),
    ];
    if spec.host_network {
        wanted.push(exists(NETWORK_UNAVAILABLE, "NoSchedule"));
    }
    for t in wanted {
        // Kubernetes' AddOrUpdateTolerationInPodSpec: one with the same key, operator and effect is
        // replaced, so a template's own time limit on these keys is dropped.
        spec.tolerations.retain(|x| !(x.key == t.key && x.effect == t.effect && x.operator == t.operator));
        spec.tolerations.push(t);
    }
}

/// The pod spec a daemon pod on a node would have, for the fit checks (template + tolerations).
fn candidate_spec(ds: &DaemonSet) -> PodSpec {
    let mut spec = spec_of(ds).template.as_ref().and_then(|t| t.spec.clone()).unwrap_or_default();
    add_daemon_tolerations(&mut spec);
    spec
}

/// Whether `node` should run the DaemonSet's pod (template nodeName, nodeSelector, required node
/// affinity, no untolerated NoSchedule/NoExecute taint), and whether a pod there may continue running
/// (the node still matches, and only NoSchedule taints are untolerated).
pub fn node_should_run(ds: &DaemonSet, node: &Node) -> Fit {
    fit(&candidate_spec(ds), node)
}

fn fit(spec: &PodSpec, node: &Node) -> Fit {
    let name = node.meta().name.as_str();
    if !spec.node_name.is_empty() && spec.node_name != name {
        return Fit::default();
    }
    if !node_affinity::matches_node(spec, node) {
        return Fit::default();
    }
    let node_taints = node.spec.as_ref().map(|s| s.taints.as_slice()).unwrap_or_default();
    let schedule_or_execute =
        |t: &navarch_api::v1::Taint| t.effect == "NoSchedule" || t.effect == "NoExecute";
    if taints::untolerated(&spec.tolerations, node_taints, schedule_or_execute).is_none() {
        return Fit { should_run: true, should_continue_running: true };
    }
    let evicting = taints::untolerated(&spec.tolerations, node_taints, |t| t.effect == "NoExecute");
    Fit { should_run: false, should_continue_running: evicting.is_none() }
}

/// The fit of every node, by name.
pub fn fits(ds: &DaemonSet, nodes: &[&Node]) -> BTreeMap<String, Fit> {
    let spec = candidate_spec(ds);
    nodes.iter().map(|n| (n.meta().name.clone(), fit(&spec, n))).collect()
}

/// `affinity` requiring the node named `node` (its required node selector replaced by one term on
/// `metadata.name`, as Kubernetes does; the DaemonSet controller checked the rest already).
pub fn replace_node_name_affinity(affinity: Option<Affinity>, node: &str) -> Affinity {
    let term = NodeSelectorTerm {
        match_fields: vec![NodeSelectorRequirement {
            key: NODE_NAME_FIELD.into(),
            operator: "In".into(),
            values: vec![node.into()],
        }],
        ..Default::default()
    };
    let mut affinity = affinity.unwrap_or_default();
    let na = affinity.node_affinity.get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution =
        Some(NodeSelector { node_selector_terms: vec![term] });
    affinity
}

/// The node a daemon pod is for: its `spec.nodeName`, else the one name its node affinity's single
/// term requires (`GetTargetNodeName`).
pub fn target_node(pod: &Pod) -> Option<&str> {
    let spec = pod.spec.as_ref()?;
    if !spec.node_name.is_empty() {
        return Some(&spec.node_name);
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    let [term] = terms.as_slice() else { return None };
    term.match_fields
        .iter()
        .find(|r| r.key == NODE_NAME_FIELD && r.operator == "In" && r.values.len() == 1)
        .map(|r| r.values[0].as_str())
}

/// The daemon pod of `ds` for `node`, from the current template (`hash`: its revision's).
pub fn pod_for_node(ds: &DaemonSet, hash: &str, node: &str) -> Pod {
    let template = spec_of(ds).template.clone().unwrap_or_default();
    let tm = template.metadata.unwrap_or_default();
    let m = ds.meta();
    let mut labels = tm.labels;
    if let Some(g) = template_generation(ds) {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), g.to_string());
    }
    labels.insert(REVISION_HASH_LABEL.into(), hash.into());
    let mut spec = template.spec.unwrap_or_default();
    add_daemon_tolerations(&mut spec);
    spec.affinity = Some(replace_node_name_affinity(spec.affinity.take(), node));
    let mut pod = Pod {
        metadata: Some(ObjectMeta {
            generate_name: format!("{}-", m.name),
            namespace: m.namespace.clone(),
            labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: vec![controller_ref::<DaemonSet>(m)],
            ..Default::default()
        }),
        spec: Some(spec),
        ..Default::default()
    };
    pod.set_type_meta();
    pod
}

/// Whether `pod` runs the current template: its revision hash is `hash`, or its template generation
/// label is the DaemonSet's (`IsPodUpdated`).
pub fn is_updated(ds: &DaemonSet, pod: &Pod, hash: &str) -> bool {
    let labels = &pod.meta().labels;
    let by_hash = !hash.is_empty() && labels.get(REVISION_HASH_LABEL).map(String::as_str) == Some(hash);
    let by_generation = template_generation(ds)
        .is_some_and(|g| labels.get(TEMPLATE_GENERATION_LABEL).map(String::as_str) == Some(&g.to_string()));
    by_hash || by_generation
}
