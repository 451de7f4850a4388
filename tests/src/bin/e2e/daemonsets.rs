//! Scenario 13: DaemonSets on the real nodes (busybox pods that sleep):
//!
//! 1. a DaemonSet runs exactly one ready pod on each node;
//! 2. a `node-role=edge` nodeSelector limits another to the one node labelled so;
//! 3. an image update (busybox:1.36 → busybox:latest, both served by `make up`'s registry) rolls node by
//!    node: never more than maxUnavailable (1) node without a ready pod (sampled), `kubectl rollout
//!    status` ends it, two revisions in `kubectl rollout history`;
//! 4. `kubectl rollout undo` returns every pod to busybox:1.36 (the first revision, renumbered 3);
//! 5. cordoning a node evicts no DaemonSet pod (the same pod stays there), uncordon after.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use navarch_tests::eventually_blocking;
use serde_json::Value;

use super::{NS, allow, apply, ensure_namespace, kubectl, navctl, nodes, nv, secs};

/// A DaemonSet `name` of busybox pods that sleep, with `image` and extra pod spec lines.
fn daemonset(name: &str, image: &str, pod_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {{name: {name}}}\nspec:\n  selector:\n    \
         matchLabels: {{app: {name}}}\n  updateStrategy:\n    type: RollingUpdate\n    rollingUpdate: \
         {{maxUnavailable: 1}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n{pod_spec}      \
         terminationGracePeriodSeconds: 1\n      containers:\n      - name: c\n        image: {image}\n        \
         command: [sh, -c, 'sleep 3600']\n"
    )
}

/// A DaemonSet pod as this scenario looks at it.
#[derive(Debug, Clone, PartialEq)]
struct DaemonPod {
    name: String,
    node: String,
    image: String,
    ready: bool,
}

/// The pods of DaemonSet `name` not being deleted, by node.
fn by_node(name: &str) -> BTreeMap<String, Vec<DaemonPod>> {
    let v: Value = serde_json::from_str(&nv(&["get", "pods", "-l", &format!("app={name}"), "-o", "json"]))
        .expect("JSON");
    let mut out: BTreeMap<String, Vec<DaemonPod>> = BTreeMap::new();
    for p in v["items"].as_array().cloned().unwrap_or_default() {
        if !p["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let pod = DaemonPod {
            name: p["metadata"]["name"].as_str().unwrap_or_default().into(),
            node: p["spec"]["nodeName"].as_str().unwrap_or_default().into(),
            image: p["spec"]["containers"][0]["image"].as_str().unwrap_or_default().into(),
            ready: p["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")),
        };
        out.entry(pod.node.clone()).or_default().push(pod);
    }
    out
}

/// Waits until exactly the nodes `want` run one ready pod of DaemonSet `name`, of `image`.
fn one_per_node(name: &str, want: &[String], image: &str, secs: u64) -> BTreeMap<String, Vec<DaemonPod>> {
    eventually_blocking(format!("{name}: one ready {image} pod on each of {want:?}"), allow(secs), || {
        let pods = by_node(name);
        let ok = pods.keys().eq(want.iter())
            && pods.values().all(|p| p.len() == 1 && p[0].ready && p[0].image.ends_with(image));
        ok.then_some(pods)
    })
}

fn revisions(name: &str) -> Vec<i64> {
    let v: Value = serde_json::from_str(&nv(&["get", "controllerrevisions", "-o", "json"])).expect("JSON");
    let mut out: Vec<i64> = v["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|r| r["metadata"]["ownerReferences"][0]["name"] == name)
        .filter_map(|r| r["revision"].as_i64())
        .collect();
    out.sort();
    out
}

pub fn scenario_13_daemonsets() {
    println!("[13] DaemonSets: one pod per node, nodeSelector, rolling image update, rollout undo, cordon");
    let t = Instant::now();
    ensure_namespace();
    let all: Vec<String> = nodes().into_iter().map(|(n, _)| n).collect();
    assert!(all.len() >= 2, "needs two nodes: {all:?}");

    // 1. One pod per node.
    apply(&daemonset("agent", "busybox:1.36", ""));
    let first = one_per_node("agent", &all, "busybox:1.36", 120);
    println!("  one agent pod on each of {} nodes after {}", all.len(), secs(t.elapsed()));

    // 2. A nodeSelector limits it to the labelled node.
    let edge = all.last().unwrap().clone();
    navctl(&["label", "node", &edge, "node-role=edge", "--overwrite"]);
    apply(&daemonset("edge", "busybox:1.36", "      nodeSelector: {node-role: edge}\n"));
    one_per_node("edge", std::slice::from_ref(&edge), "busybox:1.36", 120);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(by_node("edge").len(), 1, "only {edge} runs an edge pod");

    // 3. An image update rolls node by node within maxUnavailable 1.
    let ns = ["-n", NS];
    kubectl(&[&ns[..], &["set", "image", "daemonset/agent", "c=busybox:latest"]].concat());
    let mut worst = 0;
    eventually_blocking("agent rolled to busybox:latest", allow(240), || {
        let pods = by_node("agent");
        let serving = all.iter().filter(|n| pods.get(*n).is_some_and(|p| p.iter().any(|p| p.ready))).count();
        worst = worst.max(all.len() - serving);
        (pods.len() == all.len()
            && pods.values().all(|p| p.len() == 1 && p[0].ready && p[0].image.ends_with("busybox:latest")))
        .then_some(())
    });
    assert!(worst <= 1, "{worst} nodes were without a ready agent pod at once");
    let status = kubectl(&[&ns[..], &["rollout", "status", "daemonset/agent", "--timeout=120s"]].concat());
    assert!(status.contains("successfully rolled out"), "{status}");
    let history = kubectl(&[&ns[..], &["rollout", "history", "daemonset/agent"]].concat());
    assert!(history.contains("REVISION  CHANGE-CAUSE"), "{history}");
    assert_eq!(revisions("agent"), [1, 2]);
    println!(
        "  rolled to busybox:latest, at most {worst} node without a ready pod, after {}",
        secs(t.elapsed())
    );

    // 4. rollout undo: back to busybox:1.36, the first revision now the newest.
    let undo = kubectl(&[&ns[..], &["rollout", "undo", "daemonset/agent"]].concat());
    assert!(undo.contains("rolled back"), "{undo}");
    let undone = one_per_node("agent", &all, "busybox:1.36", 240);
    eventually_blocking("agent's revisions 2 and 3", allow(30), || {
        (revisions("agent") == [2, 3]).then_some(())
    });
    let navctl_history = nv(&["rollout", "history", "daemonset/agent"]);
    assert!(navctl_history.contains('3'), "{navctl_history}");
    assert_ne!(first, undone, "the pods were replaced");

    // 5. A cordon keeps the daemon pods.
    let cordoned = all[0].clone();
    navctl(&["cordon", &cordoned]);
    std::thread::sleep(Duration::from_secs(10));
    let after = one_per_node("agent", &all, "busybox:1.36", 30);
    navctl(&["uncordon", &cordoned]);
    assert_eq!(after[&cordoned], undone[&cordoned], "the pod on the cordoned node stays");

    nv(&["delete", "daemonset", "agent", "edge"]);
    navctl(&["label", "node", &edge, "node-role-"]);
    println!("  [13] passed in {}", secs(t.elapsed()));
}
