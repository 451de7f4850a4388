//! Unit tests for every filter and score, on objects written as YAML.

use std::sync::Arc;

use navarch_api::v1::{Node, Pod};
use navarch_api::{Object, manifest};

use crate::cache::Cache;
use crate::cycle::Cycle;
use crate::filters::filter;
use crate::node_info::NodeInfo;
use crate::scheduler::Failures;
use crate::scores;

fn pod(extra_spec: &str) -> Pod {
    let y = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: default, labels: {{app: web}}}}\nspec:\n  containers: [{{name: c, image: x, resources: {{requests: {{cpu: 500m, memory: 1Gi}}}}}}]\n{extra_spec}"
    );
    match manifest::parse(&y, "pod").unwrap().remove(0) {
        Object::Pod(p) => p,
        _ => unreachable!(),
    }
}

fn named_pod(name: &str, extra_spec: &str) -> Pod {
    let mut p = pod(extra_spec);
    p.metadata.as_mut().unwrap().name = name.into();
    p
}

fn node(name: &str, extra: &str) -> NodeInfo {
    let y = format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {{kubernetes.io/hostname: {name}, zone: a, size: '8'}}}}\nstatus:\n  allocatable: {{cpu: '2', memory: 4Gi, pods: '3'}}\n  conditions: [{{type: Ready, status: 'True'}}]\n{extra}"
    );
    match manifest::parse(&y, "node").unwrap().remove(0) {
        Object::Node(n) => NodeInfo::new(Arc::new(n)),
        _ => unreachable!(),
    }
}

fn reasons(p: &Pod, n: &NodeInfo) -> Vec<String> {
    let cache = Cache::default();
    filter(&Cycle::with_nodes(p, vec![n], &cache, None), n)
}

/// The weighted scores of `nodes` for `p` (nodes built outside a cache).
fn score(p: &Pod, nodes: &[&NodeInfo]) -> Vec<i64> {
    let cache = Cache::default();
    scores::score(&Cycle::with_nodes(p, nodes.to_vec(), &cache, None), nodes)
}

/// Feasible nodes among `all` for `p`, as the loop searches them.
fn feasible(p: &Pod, all: &[&NodeInfo], start: usize, want: usize, workers: usize) -> (Vec<usize>, Failures) {
    let cache = Cache::default();
    crate::scheduler::find_feasible(&Cycle::with_nodes(p, all.to_vec(), &cache, None), start, want, workers)
}

#[test]
fn fits_on_a_ready_empty_node() {
    assert!(reasons(&pod(""), &node("n1", "")).is_empty());
}

#[test]
fn resources_are_counted_against_allocatable() {
    let mut n = node("n1", "");
    n.add_pod(Arc::new(named_pod("a", "")));
    n.add_pod(Arc::new(named_pod("b", "")));
    assert!(reasons(&pod(""), &n).is_empty(), "1.5 cpu, 3Gi used of 2 / 4Gi; 500m + 1Gi still fit");
    n.add_pod(Arc::new(named_pod("c", "")));
    // 2 cpu / 4Gi exactly full after a 4th pod would still fit; the pod count (3) does not.
    assert_eq!(reasons(&pod(""), &n), vec!["Too many pods"]);
    let mut big = node("big", "");
    big.allocatable.pods = 110;
    for name in ["a", "b", "c", "d"] {
        big.add_pod(Arc::new(named_pod(name, "")));
    }
    let r = reasons(&pod(""), &big);
    assert_eq!(r, vec!["Insufficient cpu", "Insufficient memory"], "2.5 cpu > 2, 5Gi > 4Gi");
    n.remove_pod("default/c");
    assert!(reasons(&pod(""), &n).is_empty(), "removing a pod frees its requests");
}

#[test]
fn unschedulable_and_not_ready_nodes_are_skipped() {
    let r = reasons(&pod(""), &node("n1", "spec: {unschedulable: true}\n"));
    assert_eq!(r, vec!["node(s) were unschedulable"]);
    let mut n = node("n1", "");
    let mut not_ready = (*n.node).clone();
    not_ready.status.as_mut().unwrap().conditions[0].status = "False".into();
    n.set_node(Arc::new(not_ready));
    assert_eq!(reasons(&pod(""), &n), vec!["node(s) were not ready"]);
}

#[test]
fn node_selector_and_required_affinity() {
    let n = node("n1", "");
    assert!(reasons(&pod("  nodeSelector: {zone: a}\n"), &n).is_empty());
    assert_eq!(
        reasons(&pod("  nodeSelector: {zone: b}\n"), &n),
        vec!["node(s) didn't match Pod's node affinity/selector"]
    );
    let aff = |exprs: &str| {
        pod(&format!(
            "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions: {exprs}\n"
        ))
    };
    for (exprs, fits) in [
        ("[{key: zone, operator: In, values: [a, b]}]", true),
        ("[{key: zone, operator: NotIn, values: [a]}]", false),
        ("[{key: zone, operator: Exists}]", true),
        ("[{key: gpu, operator: DoesNotExist}]", true),
        ("[{key: size, operator: Gt, values: ['4']}]", true),
        ("[{key: size, operator: Lt, values: ['4']}]", false),
        ("[{key: zone, operator: In, values: [a]}, {key: gpu, operator: Exists}]", false),
    ] {
        assert_eq!(reasons(&aff(exprs), &n).is_empty(), fits, "{exprs}");
    }
    let by_name = pod(
        "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchFields: [{key: metadata.name, operator: In, values: [n1]}]\n",
    );
    assert!(reasons(&by_name, &n).is_empty());
    assert!(!reasons(&by_name, &node("n2", "")).is_empty());
}

#[test]
fn taints_need_tolerations() {
    let n = node("n1", "spec:\n  taints: [{key: dedicated, value: gpu, effect: NoSchedule}]\n");
    assert_eq!(reasons(&pod(""), &n), vec!["node(s) had untolerated taint {dedicated: gpu}"]);
    for tol in [
        "[{key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}]",
        "[{key: dedicated, operator: Exists}]",
        "[{operator: Exists}]",
        "[{key: dedicated, value: gpu}]",
    ] {
        assert!(reasons(&pod(&format!("  tolerations: {tol}\n")), &n).is_empty(), "{tol}");
    }
    for tol in ["[{key: dedicated, value: cpu}]", "[{key: dedicated, operator: Exists, effect: NoExecute}]"] {
        assert!(!reasons(&pod(&format!("  tolerations: {tol}\n")), &n).is_empty(), "{tol}");
    }
    let soft = node("n1", "spec:\n  taints: [{key: k, effect: PreferNoSchedule}]\n");
    assert!(reasons(&pod(""), &soft).is_empty(), "PreferNoSchedule only affects scoring");
}

#[test]
fn host_ports_conflict() {
    let with_port = |name: &str, ip: &str| {
        named_pod(name, "").tap(|p| {
            p.spec.as_mut().unwrap().containers[0].ports = vec![navarch_api::v1::ContainerPort {
                container_port: 80,
                host_port: 8080,
                host_ip: ip.into(),
                ..Default::default()
            }];
        })
    };
    let mut n = node("n1", "");
    n.add_pod(Arc::new(with_port("a", "")));
    assert_eq!(
        reasons(&with_port("b", ""), &n),
        vec!["node(s) didn't have free ports for the requested pod ports"]
    );
    assert!(!reasons(&with_port("b", "10.0.0.1"), &n).is_empty(), "0.0.0.0 covers every address");
    assert!(reasons(&named_pod("b", ""), &n).is_empty());
}

#[test]
fn preferred_affinity_and_taints_order_nodes() {
    let prefer = pod(
        "  affinity:\n    nodeAffinity:\n      preferredDuringSchedulingIgnoredDuringExecution:\n      - weight: 50\n        preference: {matchExpressions: [{key: zone, operator: In, values: [b]}]}\n",
    );
    let a = node("a", "");
    let mut b = node("b", "");
    Arc::make_mut(&mut b.node).metadata.as_mut().unwrap().labels.insert("zone".into(), "b".into());
    let s = score(&prefer, &[&a, &b]);
    assert!(s[1] > s[0], "{s:?}");

    let tainted = node("t", "spec:\n  taints: [{key: k, effect: PreferNoSchedule}]\n");
    let plain = node("u", "");
    let s = score(&pod(""), &[&tainted, &plain]);
    assert!(s[1] > s[0], "{s:?}");
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl<T> Tap for T {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

#[test]
fn node_updates_keep_pods() {
    let mut n = node("n1", "");
    n.add_pod(Arc::new(pod("")));
    let mut updated: Node = (*n.node).clone();
    updated.status.as_mut().unwrap().allocatable.insert("cpu".into(), navarch_api::v1::Quantity::new("4"));
    n.set_node(Arc::new(updated));
    assert_eq!(n.allocatable.milli_cpu, 4000);
    assert_eq!(n.requested.milli_cpu, 500);
}

#[test]
fn parallel_filtering_matches_sequential() {
    let mut nodes: Vec<NodeInfo> = (0..1500).map(|i| node(&format!("n{i}"), "")).collect();
    // Every third node is full.
    for (i, n) in nodes.iter_mut().enumerate() {
        if i % 3 == 0 {
            n.allocatable.pods = 0;
        }
    }
    let all: Vec<&NodeInfo> = nodes.iter().collect();
    let p = pod("");
    let (seq, seq_reasons) = feasible(&p, &all, 7, usize::MAX, 1);
    let (par, par_reasons) = feasible(&p, &all, 7, usize::MAX, 4);
    assert_eq!(seq, par, "same nodes in the same order");
    assert_eq!(seq_reasons, par_reasons);
    assert_eq!(seq.len(), 1000);
    assert_eq!(seq_reasons.reasons.get("Too many pods"), Some(&500));
    assert_eq!(seq_reasons.preemption_might_help, 500);
    let (some, _) = feasible(&p, &all, 0, 100, 4);
    assert_eq!(some.len(), 100);
    // Nothing fits: every node is scanned and every reason counted, in parallel too.
    let big = pod("").tap(|p| {
        p.spec.as_mut().unwrap().containers[0]
            .resources
            .as_mut()
            .unwrap()
            .requests
            .insert("cpu".into(), navarch_api::v1::Quantity::new("64"));
    });
    let (none, r) = feasible(&big, &all, 0, 10, 4);
    assert!(none.is_empty());
    assert_eq!(r.reasons.get("Insufficient cpu"), Some(&1500));
}
