//! Unit tests of the DaemonSet controller's decisions.

use std::time::{Duration, Instant, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{DaemonSet, Node, Pod};

use super::placement::{Fit, fits, node_should_run, pod_for_node, target_node};
use super::plan::{FailedBackoff, Manage, View, manage, pods_by_node, rolling_update, status};
use super::{REVISION_HASH_LABEL, TEMPLATE_GENERATION_LABEL};

const DS: &str = "
metadata: {name: agent, namespace: ns, uid: ds-uid, generation: 3, annotations: {deprecated.daemonset.template.generation: '2'}}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: c, image: 'busybox:1.36'}]}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1, maxSurge: 0}}
";

fn ds(extra_spec: &str) -> DaemonSet {
    let mut v: serde_yaml::Value = serde_yaml::from_str(DS).unwrap();
    if !extra_spec.is_empty() {
        let extra: serde_yaml::Mapping = serde_yaml::from_str(extra_spec).unwrap();
        for (k, x) in extra {
            v["spec"][k] = x;
        }
    }
    serde_yaml::from_value(v).unwrap()
}

fn node(name: &str, extra: &str) -> Node {
    serde_yaml::from_str(&format!("metadata: {{name: {name}}}\n{extra}")).unwrap()
}

/// A pod of the DaemonSet on `node` from revision `hash`, `phase`, ready or not, created at minute `at`.
fn pod(name: &str, node: &str, hash: &str, phase: &str, ready: bool, at: u32) -> Pod {
    let ready = if ready { "True" } else { "False" };
    serde_yaml::from_str(&format!(
        "metadata: {{name: {name}, namespace: ns, uid: {name}-uid, creationTimestamp: '2026-01-01T00:{at:02}:00Z', \
         labels: {{app: agent, controller-revision-hash: {hash}}}, \
         ownerReferences: [{{apiVersion: apps/v1, kind: DaemonSet, name: agent, uid: ds-uid, controller: true}}]}}\n\
         spec: {{nodeName: {node}, containers: [{{name: c, image: x}}]}}\n\
         status: {{phase: {phase}, conditions: [{{type: Ready, status: '{ready}', lastTransitionTime: '2026-01-01T00:00:00Z'}}]}}\n"
    ))
    .unwrap()
}

fn view<'a>(ds: &'a DaemonSet, nodes: &[Node], pods: &[&'a Pod]) -> View<'a> {
    let refs: Vec<&Node> = nodes.iter().collect();
    View { ds, hash: "new", fits: fits(ds, &refs), by_node: pods_by_node(pods), now: SystemTime::now() }
}

fn run(should_run: bool, cont: bool) -> Fit {
    Fit { should_run, should_continue_running: cont }
}

#[test]
fn eligibility_follows_selector_affinity_taints_and_node_name() {
    let plain = ds("");
    assert_eq!(node_should_run(&plain, &node("n1", "")), run(true, true));
    let edge = ds(
        "template: {metadata: {labels: {app: agent}}, spec: {nodeSelector: {node-role: edge}, containers: [{name: c, image: x}]}}",
    );
    assert_eq!(node_should_run(&edge, &node("n1", "")), run(false, false));
    assert!(!node_should_run(&edge, &node("n1", "")).should_continue_running);
    let labelled = "metadata: {name: n2, labels: {node-role: edge}}\n";
    assert_eq!(node_should_run(&edge, &serde_yaml::from_str(labelled).unwrap()), run(true, true));
    let affinity = ds(
        "template: {metadata: {labels: {app: agent}}, spec: {affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: In, values: [a]}]}]}}}, containers: [{name: c, image: x}]}}",
    );
    assert!(!node_should_run(&affinity, &node("n1", "")).should_run);
    assert!(
        node_should_run(&affinity, &serde_yaml::from_str("metadata: {name: n1, labels: {zone: a}}").unwrap())
            .should_run
    );
    let named = ds(
        "template: {metadata: {labels: {app: agent}}, spec: {nodeName: n2, containers: [{name: c, image: x}]}}",
    );
    assert_eq!(node_should_run(&named, &node("n1", "")), run(false, false));
    assert_eq!(node_should_run(&named, &node("n2", "")), run(true, true));

    // NoSchedule: no new pod, the running one stays; NoExecute: it goes.
    let no_schedule = node("n1", "spec: {taints: [{key: dedicated, value: db, effect: NoSchedule}]}");
    assert_eq!(node_should_run(&plain, &no_schedule), run(false, true));
    let no_execute = node("n1", "spec: {taints: [{key: dedicated, value: db, effect: NoExecute}]}");
    assert_eq!(node_should_run(&plain, &no_execute), run(false, false));
    let tolerated = ds(
        "template: {metadata: {labels: {app: agent}}, spec: {tolerations: [{key: dedicated, operator: Exists}], containers: [{name: c, image: x}]}}",
    );
    assert_eq!(node_should_run(&tolerated, &no_execute), run(true, true));
    // The automatic tolerations: cordoned, not-ready and pressured nodes still run daemon pods.
    for taint in [
        "{key: node.kubernetes.io/unschedulable, effect: NoSchedule}",
        "{key: node.kubernetes.io/not-ready, effect: NoExecute}",
        "{key: node.kubernetes.io/unreachable, effect: NoExecute}",
        "{key: node.kubernetes.io/disk-pressure, effect: NoSchedule}",
        "{key: node.kubernetes.io/memory-pressure, effect: NoSchedule}",
        "{key: node.kubernetes.io/pid-pressure, effect: NoSchedule}",
    ] {
        let n = node("n1", &format!("spec: {{unschedulable: true, taints: [{taint}]}}"));
        assert_eq!(node_should_run(&plain, &n), run(true, true), "{taint}");
    }
    // network-unavailable only for hostNetwork pods.
    let net =
        node("n1", "spec: {taints: [{key: node.kubernetes.io/network-unavailable, effect: NoSchedule}]}");
    assert!(!node_should_run(&plain, &net).should_run);
    let host = ds(
        "template: {metadata: {labels: {app: agent}}, spec: {hostNetwork: true, containers: [{name: c, image: x}]}}",
    );
    assert!(node_should_run(&host, &net).should_run);
}

#[test]
fn daemon_pods_are_pinned_labelled_and_owned() {
    let d = ds(
        "template: {metadata: {labels: {app: agent}}, spec: {affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchFields: [{key: metadata.name, operator: In, values: [old]}]}, {matchExpressions: [{key: zone, operator: Exists}]}]}}}, tolerations: [{key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 300}], containers: [{name: c, image: x}]}}",
    );
    let p = pod_for_node(&d, "abc", "n7");
    let m = p.meta();
    assert_eq!(m.generate_name, "agent-");
    assert_eq!(m.labels.get(REVISION_HASH_LABEL).map(String::as_str), Some("abc"));
    assert_eq!(m.labels.get(TEMPLATE_GENERATION_LABEL).map(String::as_str), Some("2"));
    assert_eq!(m.owner_references[0].uid, "ds-uid");
    assert_eq!(m.owner_references[0].controller, Some(true));
    assert_eq!(target_node(&p), Some("n7"));
    let terms = &p
        .spec
        .as_ref()
        .unwrap()
        .affinity
        .as_ref()
        .unwrap()
        .node_affinity
        .as_ref()
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()
        .node_selector_terms;
    assert_eq!(terms.len(), 1, "replaced by the one node-name term");
    assert_eq!(terms[0].match_fields[0].values, ["n7"]);
    let tolerations = &p.spec.as_ref().unwrap().tolerations;
    let not_ready: Vec<_> = tolerations.iter().filter(|t| t.key == "node.kubernetes.io/not-ready").collect();
    assert_eq!(not_ready.len(), 1);
    assert_eq!(not_ready[0].toleration_seconds, None, "daemon pods tolerate not-ready for ever");
    assert!(
        tolerations.iter().any(|t| t.key == "node.kubernetes.io/unschedulable" && t.effect == "NoSchedule")
    );
    assert!(!tolerations.iter().any(|t| t.key == "node.kubernetes.io/network-unavailable"));
}

#[test]
fn manage_creates_on_missing_nodes_and_deletes_what_does_not_belong() {
    let d = ds(
        "template: {metadata: {labels: {app: agent}}, spec: {nodeSelector: {node-role: edge}, containers: [{name: c, image: x}]}}",
    );
    let edge = |n: &str| node(n, "").tap_label("node-role", "edge");
    let nodes = [edge("a"), edge("b"), node("c", ""), edge("d")];
    let (pa, pc) = (pod("pa", "a", "new", "Running", true, 1), pod("pc", "c", "new", "Running", true, 1));
    let (pd1, pd2) = (pod("pd1", "d", "new", "Running", true, 1), pod("pd2", "d", "new", "Running", true, 2));
    let gone = pod("gone", "", "new", "Pending", false, 1).pinned_to("vanished");
    let pods = [&pa, &pc, &pd1, &pd2, &gone];
    let m = manage(&view(&d, &nodes, &pods), &mut FailedBackoff::default(), Instant::now());
    assert_eq!(m.create_on, ["b"]);
    let mut delete = m.delete.clone();
    delete.sort();
    assert_eq!(
        delete,
        ["gone", "pc", "pd2"],
        "misscheduled, the younger of two, unscheduled for a gone node"
    );
}

#[test]
fn failed_pods_are_replaced_with_backoff() {
    let d = ds("");
    let nodes = [node("a", "")];
    let failed = pod("pf", "a", "new", "Failed", false, 1);
    let mut backoff = FailedBackoff::default();
    let t0 = Instant::now();
    let m = manage(&view(&d, &nodes, &[&failed]), &mut backoff, t0);
    assert_eq!(m.delete, ["pf"]);
    assert_eq!(m.failed, [("pf".to_string(), "a".to_string())]);
    // Failing again within the back-off: wait.
    let m = manage(&view(&d, &nodes, &[&failed]), &mut backoff, t0 + Duration::from_millis(500));
    assert_eq!(m, Manage { requeue_after: Some(Duration::from_secs(1)), ..Default::default() });
    // After it: deleted, and the next back-off is twice as long.
    let t1 = t0 + Duration::from_secs(2);
    assert_eq!(manage(&view(&d, &nodes, &[&failed]), &mut backoff, t1).delete, ["pf"]);
    assert_eq!(backoff.current("a", t1), Some(Duration::from_secs(2)));
}

#[test]
fn rolling_update_stays_within_max_unavailable() {
    let nodes: Vec<Node> = ["a", "b", "c", "d"].iter().map(|n| node(n, "")).collect();
    let olds: Vec<Pod> =
        ["a", "b", "c", "d"].iter().map(|n| pod(&format!("old-{n}"), n, "old", "Running", true, 1)).collect();
    let refs: Vec<&Pod> = olds.iter().collect();
    let d = ds("");
    assert_eq!(rolling_update(&view(&d, &nodes, &refs)).delete, ["old-a"], "maxUnavailable 1");
    let d2 = ds("updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: '50%', maxSurge: 0}}");
    assert_eq!(rolling_update(&view(&d2, &nodes, &refs)).delete, ["old-a", "old-b"]);
    // A new pod not yet available uses the budget; an unavailable old pod is replaced regardless.
    let new_a = pod("new-a", "a", "new", "Running", false, 2);
    let sick_c = pod("old-c", "c", "old", "Running", false, 1);
    let pods = [&new_a, refs[1], &sick_c, refs[3]];
    assert_eq!(rolling_update(&view(&d, &nodes, &pods)).delete, ["old-c"]);
    let ready_a = pod("new-a", "a", "new", "Running", true, 2);
    let pods = [&ready_a, refs[1], refs[2], refs[3]];
    assert_eq!(rolling_update(&view(&d, &nodes, &pods)).delete, ["old-b"]);
}

#[test]
fn rolling_update_with_surge_starts_new_pods_first() {
    let d = ds("updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 0, maxSurge: 1}}");
    let nodes: Vec<Node> = ["a", "b"].iter().map(|n| node(n, "")).collect();
    let (old_a, old_b) =
        (pod("old-a", "a", "old", "Running", true, 1), pod("old-b", "b", "old", "Running", true, 1));
    let step = rolling_update(&view(&d, &nodes, &[&old_a, &old_b]));
    assert_eq!(step, super::plan::Rolling { delete: vec![], create_on: vec!["a".into()] });
    // The new pod not yet available: nothing more (surge used up), the old one stays.
    let new_a = pod("new-a", "a", "new", "Running", false, 2);
    let v = view(&d, &nodes, &[&old_a, &new_a, &old_b]);
    assert_eq!(rolling_update(&v), super::plan::Rolling::default());
    assert!(
        manage(&v, &mut FailedBackoff::default(), Instant::now()).is_empty(),
        "two pods allowed while surging"
    );
    // Available: the old one goes, and the next node may surge.
    let new_a = pod("new-a", "a", "new", "Running", true, 2);
    let v = view(&d, &nodes, &[&old_a, &new_a, &old_b]);
    assert_eq!(rolling_update(&v).delete, ["old-a"]);
    assert_eq!(manage(&v, &mut FailedBackoff::default(), Instant::now()).delete, ["old-a"]);
}

#[test]
fn on_delete_replaces_only_deleted_pods() {
    let d = ds("updateStrategy: {type: OnDelete}");
    assert!(!super::plan::is_rolling(&d));
    let nodes: Vec<Node> = ["a", "b"].iter().map(|n| node(n, "")).collect();
    let old_a = pod("old-a", "a", "old", "Running", true, 1);
    let m = manage(&view(&d, &nodes, &[&old_a]), &mut FailedBackoff::default(), Instant::now());
    assert_eq!(m.create_on, ["b"], "only the node without a pod gets the new template");
    assert!(m.delete.is_empty());
}

#[test]
fn status_counts() {
    let d = ds(
        "template: {metadata: {labels: {app: agent}}, spec: {nodeSelector: {node-role: edge}, containers: [{name: c, image: x}]}}",
    );
    let edge = |n: &str| node(n, "").tap_label("node-role", "edge");
    let nodes = [edge("a"), edge("b"), edge("c"), node("x", "")];
    let pa = pod("pa", "a", "new", "Running", true, 1);
    let pb = pod("pb", "b", "old", "Running", false, 1);
    let px = pod("px", "x", "new", "Running", true, 1);
    let s = status(&view(&d, &nodes, &[&pa, &pb, &px]), true);
    assert_eq!(
        (s.desired_number_scheduled, s.current_number_scheduled, s.number_ready, s.number_available),
        (3, 2, 1, 1)
    );
    assert_eq!((s.updated_number_scheduled, s.number_misscheduled, s.number_unavailable), (1, 1, 2));
    assert_eq!(s.observed_generation, 3);
    assert_eq!(status(&view(&d, &nodes, &[]), false).observed_generation, 0);
    // minReadySeconds: ready but not long enough is not available.
    let slow = ds("minReadySeconds: 2000000000");
    let s = status(&view(&slow, &[node("a", "")], &[&pa]), true);
    assert_eq!((s.number_ready, s.number_available), (1, 0));
}

/// Small builders for the fixtures.
trait Tap {
    fn tap_label(self, k: &str, v: &str) -> Self;
}

impl Tap for Node {
    fn tap_label(mut self, k: &str, v: &str) -> Node {
        self.meta_mut().labels.insert(k.into(), v.into());
        self
    }
}

trait Pinned {
    fn pinned_to(self, node: &str) -> Self;
}

impl Pinned for Pod {
    /// Unscheduled, for `node` through the node-name affinity.
    fn pinned_to(self, node: &str) -> Pod {
        let d = ds("");
        let mut p = pod_for_node(&d, "new", node);
        p.metadata = self.metadata;
        p.status = self.status;
        p
    }
}
