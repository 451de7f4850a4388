//! Scenario 20: scheduling policies on the real nodes, in the namespace `e2e-sched`. The nodes are labelled
//! into two zones (`topology.kubernetes.io/zone`: the first half `zone-a`, the rest `zone-b`; labels removed
//! at the end).
//!
//! - Required pod anti-affinity on zone: a 3-replica Deployment runs one replica per zone; the third stays
//!   Pending with Kubernetes' reason, in the pod's condition and in `navctl describe pod`.
//! - Required pod affinity on hostname: a client lands on its server's node; a client whose server does not
//!   exist stays Pending (`didn't match pod affinity rules`).
//! - topologySpreadConstraints, maxSkew 1: 6 replicas over zones split 3/3, over hostnames evenly.
//! - PriorityClasses and preemption: every node filled (cpu) with a low (10) and a mid (20) priority pod,
//!   pinned to the node (the low ones from a Deployment each, the mid ones bare); the low pod of the first node guarded by a
//!   PodDisruptionBudget. A high (1000) priority pod that fits nowhere preempts one unguarded low pod —
//!   through a kill -9 of the scheduler right after it is created — and no other pod; the victim's
//!   Deployment recreates it, Pending. Pinned to the first node, a high pod preempts the mid pod, not the
//!   guarded one; the next one finds only the guarded pod below it and preempts it.

use std::collections::BTreeMap;

use navarch_tests::eventually_blocking;
use serde_json::Value;

use super::commands::fresh_namespace;
use super::{allow, cluster, kubectl, kubectl_try, navctl, nodes};

const NS: &str = "e2e-sched";
const ZONE: &str = "topology.kubernetes.io/zone";

fn create(yaml: &str) {
    let f = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(f.path(), yaml).expect("write the manifest");
    kubectl(&["apply", "-n", NS, "-f", f.path().to_str().expect("a UTF-8 path")]);
}

fn json(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&kubectl(&a)).expect("kubectl's JSON")
}

/// The pods of `selector` in the namespace: (name, node, phase, PodScheduled message).
fn pods(selector: &str) -> Vec<(String, String, String, String)> {
    let v = json(&["get", "pods", "-n", NS, "-l", selector]);
    v["items"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let message = p["status"]["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "PodScheduled" && c["status"] == "False"))
                .and_then(|c| c["message"].as_str())
                .unwrap_or_default();
            (
                p["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                p["spec"]["nodeName"].as_str().unwrap_or_default().to_string(),
                p["status"]["phase"].as_str().unwrap_or_default().to_string(),
                message.to_string(),
            )
        })
        .collect()
}

fn running(selector: &str) -> Vec<(String, String)> {
    pods(selector).into_iter().filter(|p| p.2 == "Running").map(|p| (p.0, p.1)).collect()
}

/// The one busybox container every pod here runs, asking `cpu` millicores if given.
fn busybox(cpu: Option<i64>) -> String {
    let resources = cpu.map(|m| format!(", resources: {{requests: {{cpu: {m}m}}}}")).unwrap_or_default();
    format!("{{name: c, image: 'busybox:1.36', command: [sleep, '36000']{resources}}}")
}

/// A bare pod `name` with `labels` (a YAML flow mapping), `extra_spec` lines (indented two spaces) and the
/// busybox container asking `cpu`.
fn pod(name: &str, labels: &str, extra_spec: &str, cpu: Option<i64>) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {labels}}}\nspec:\n  terminationGracePeriodSeconds: 1\n\
         {extra_spec}  containers:\n  - {}\n",
        busybox(cpu)
    )
}

/// A Deployment `name` (pods labelled `app: <name>` plus `extra_labels`) with `extra_spec` lines in its
/// pod template (indented six spaces) and the busybox container asking `cpu`.
fn deployment(name: &str, replicas: usize, extra_spec: &str, extra_labels: &str, cpu: Option<i64>) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  \
         selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}{extra_labels}}}}}\n    \
         spec:\n      terminationGracePeriodSeconds: 1\n{extra_spec}      containers:\n      - {}\n",
        busybox(cpu)
    )
}

pub(crate) fn scenario_20_scheduling() {
    println!(
        "[20] scheduling policies: zones, pod (anti-)affinity, topology spread, priorities and preemption"
    );
    let names: Vec<String> = nodes().into_iter().map(|(n, _)| n).collect();
    let zone_of: BTreeMap<String, &str> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), if i < names.len().div_ceil(2) { "zone-a" } else { "zone-b" }))
        .collect();
    for (n, z) in &zone_of {
        kubectl(&["label", "node", n, &format!("{ZONE}={z}"), "--overwrite"]);
    }
    fresh_namespace(NS);
    anti_affinity_on_zone(&zone_of);
    pod_affinity();
    spreading(&zone_of);
    preemption(&names);
    kubectl(&["delete", "namespace", NS, "--wait=false"]);
    kubectl(&["delete", "priorityclass", "e2e-low", "e2e-mid", "e2e-high", "--ignore-not-found"]);
    for n in zone_of.keys() {
        kubectl(&["label", "node", n, &format!("{ZONE}-")]);
    }
}

fn anti_affinity_on_zone(zone_of: &BTreeMap<String, &str>) {
    let spec = format!(
        "      affinity:\n        podAntiAffinity:\n          requiredDuringSchedulingIgnoredDuringExecution:\n          \
         - {{labelSelector: {{matchLabels: {{app: one-per-zone}}}}, topologyKey: {ZONE}}}\n"
    );
    create(&deployment("one-per-zone", 3, &spec, "", None));
    eventually_blocking("one replica per zone, the third Pending with the reason", allow(90), || {
        let p = pods("app=one-per-zone");
        let run: Vec<&str> = p.iter().filter(|p| p.2 == "Running").map(|p| zone_of[&p.1]).collect();
        let pending =
            p.iter().filter(|p| p.1.is_empty() && p.3.contains("didn't match pod anti-affinity rules"));
        run.len() == 2 && run[0] != run[1] && pending.count() == 1
    });
    let pending = pods("app=one-per-zone").into_iter().find(|p| p.1.is_empty()).expect("the pending replica");
    let want = format!(
        "0/{} nodes are available: {} node(s) didn't match pod anti-affinity rules.",
        zone_of.len(),
        zone_of.len()
    );
    assert!(pending.3.starts_with(&want), "{}", pending.3);
    let described = kubectl(&["describe", "pod", "-n", NS, &pending.0]);
    assert!(described.contains("didn't match pod anti-affinity rules"), "{described}");
    let described = navctl(&["describe", "pod", "-n", NS, &pending.0]);
    assert!(described.contains("didn't match pod anti-affinity rules"), "{described}");
    kubectl(&["delete", "deployment", "one-per-zone", "-n", NS]);
    println!("    anti-affinity on zone: one replica per zone, the third Pending: {}", pending.3);
}

fn pod_affinity() {
    create(&pod("server", "{app: server}", "", None));
    let affine = |name: &str, target: &str| {
        let spec = format!(
            "  affinity:\n    podAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - {{labelSelector: \
             {{matchLabels: {{app: {target}}}}}, topologyKey: kubernetes.io/hostname}}\n"
        );
        pod(name, "{}", &spec, None)
    };
    create(&affine("client", "server"));
    create(&affine("lonely", "nobody"));
    eventually_blocking("the client beside its server, the lonely client Pending", allow(90), || {
        let node = |n: &str| {
            kubectl_try(&["get", "pod", n, "-n", NS, "-o", "jsonpath={.spec.nodeName}"]).unwrap_or_default()
        };
        let lonely = kubectl_try(&["get", "pod", "lonely", "-n", NS, "-o", "jsonpath={.status.conditions}"])
            .unwrap_or_default();
        !node("server").is_empty()
            && node("server") == node("client")
            && lonely.contains("didn't match pod affinity rules")
    });
    for p in ["server", "client", "lonely"] {
        kubectl(&["delete", "pod", p, "-n", NS, "--wait=false"]);
    }
    println!("    pod affinity: the client runs on its server's node; without a server it stays Pending");
}

fn spreading(zone_of: &BTreeMap<String, &str>) {
    let spread = |key: &str| {
        format!(
            "      topologySpreadConstraints:\n      - {{maxSkew: 1, topologyKey: {key}, whenUnsatisfiable: DoNotSchedule, \
             labelSelector: {{matchLabels: {{app: spread-{}}}}}}}\n",
            if key == ZONE { "zone" } else { "host" }
        )
    };
    create(&deployment("spread-zone", 6, &spread(ZONE), "", None));
    create(&deployment("spread-host", 6, &spread("kubernetes.io/hostname"), "", None));
    let count = |selector: &str, by: &dyn Fn(&str) -> String| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for (_, node) in running(selector) {
            *m.entry(by(&node)).or_insert(0) += 1;
        }
        m
    };
    let per_node = 6 / zone_of.len();
    eventually_blocking("6 replicas 3/3 over zones and evenly over nodes", allow(120), || {
        let zones = count("app=spread-zone", &|n| zone_of[n].to_string());
        let hosts = count("app=spread-host", &|n| n.to_string());
        zones.values().copied().collect::<Vec<_>>() == [3, 3]
            && hosts.len() == zone_of.len()
            && hosts.values().all(|c| c.abs_diff(per_node) <= 1)
            && hosts.values().sum::<usize>() == 6
    });
    let zones = count("app=spread-zone", &|n| zone_of[n].to_string());
    let hosts = count("app=spread-host", &|n| n.to_string());
    println!("    spreading: over zones {zones:?}, over nodes {hosts:?}");
    kubectl(&["delete", "deployment", "spread-zone", "spread-host", "-n", NS]);
}

/// Millicores of cpu a node can still give: allocatable less the requests of its unfinished pods.
fn free_cpu(node: &str) -> i64 {
    let n = json(&["get", "node", node]);
    let alloc = milli(n["status"]["allocatable"]["cpu"].as_str().unwrap_or("0"));
    let pods = json(&["get", "pods", "-A", "--field-selector", &format!("spec.nodeName={node}")]);
    let used: i64 = pods["items"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
        .flat_map(|p| p["spec"]["containers"].as_array().cloned().unwrap_or_default())
        .map(|c| c["resources"]["requests"]["cpu"].as_str().map(milli).unwrap_or(0))
        .sum();
    alloc - used
}

fn milli(q: &str) -> i64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse().unwrap_or(0),
        None => (q.parse::<f64>().unwrap_or(0.0) * 1000.0) as i64,
    }
}

/// A bare pod of `class` asking `cpu` millicores, on `node` if given.
fn bare_pod(name: &str, labels: &str, class: &str, cpu: i64, node: Option<&str>) -> String {
    let selector =
        node.map(|n| format!("  nodeSelector: {{kubernetes.io/hostname: {n}}}\n")).unwrap_or_default();
    pod(name, labels, &format!("  priorityClassName: {class}\n{selector}"), Some(cpu))
}

fn high_pod(name: &str, cpu: i64, node: Option<&str>) -> String {
    bare_pod(name, "{role: high}", "e2e-high", cpu, node)
}

/// Names of the filler pods placed now (not being deleted), by their `filler` label.
fn fillers() -> BTreeMap<String, Vec<String>> {
    let v = json(&["get", "pods", "-n", NS, "-l", "tier=filler"]);
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in v["items"].as_array().map(|a| a.as_slice()).unwrap_or_default() {
        let placed = p["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
        if placed && p["metadata"]["deletionTimestamp"].is_null() {
            let filler = p["metadata"]["labels"]["filler"].as_str().unwrap_or_default().to_string();
            m.entry(filler).or_default().push(p["metadata"]["name"].as_str().unwrap_or_default().to_string());
        }
    }
    m
}

fn preemption(names: &[String]) {
    kubectl(&["delete", "priorityclass", "e2e-low", "e2e-mid", "e2e-high", "--ignore-not-found"]);
    for (name, value) in [("e2e-low", 10), ("e2e-mid", 20), ("e2e-high", 1000)] {
        create(&format!(
            "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {{name: {name}}}\nvalue: {value}\n"
        ));
    }
    let printed = kubectl(&["get", "priorityclass", "e2e-high", "system-node-critical"]);
    assert!(printed.contains("2000001000") && printed.contains("e2e-high"), "{printed}");
    // Fill every node: a low and a mid pod each asking half of what is free.
    let mut half: BTreeMap<String, i64> = BTreeMap::new();
    for (i, n) in names.iter().enumerate() {
        let h = free_cpu(n) / 2;
        assert!(h >= 100, "{n} has only {}m of cpu free", 2 * h);
        half.insert(n.clone(), h);
        let guard = if i == 0 { ", guard: 'yes'" } else { "" };
        let pinned = format!(
            "      priorityClassName: e2e-low\n      nodeSelector: {{kubernetes.io/hostname: {n}}}\n"
        );
        let labels = format!(", tier: filler, filler: low-{n}{guard}");
        create(&deployment(&format!("low-{n}"), 1, &pinned, &labels, Some(h)));
        // Bare: a preempted mid pod is not recreated (a replacement of priority 20 would preempt a low one).
        create(&bare_pod(
            &format!("mid-{n}"),
            &format!("{{tier: filler, filler: mid-{n}}}"),
            "e2e-mid",
            h,
            Some(n),
        ));
    }
    create(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: guard}\nspec:\n  minAvailable: 1\n  selector: \
         {matchLabels: {guard: 'yes'}}\n",
    );
    eventually_blocking("every filler Running", allow(120), || {
        running("tier=filler").len() == 2 * names.len()
    });
    eventually_blocking("the guard's budget allows no disruption", allow(60), || {
        kubectl_try(&["get", "pdb", "guard", "-n", NS, "-o", "jsonpath={.status.disruptionsAllowed}"])
            .as_deref()
            == Ok("0")
    });
    let before = fillers();

    // A high pod that fits nowhere, the scheduler killed as it preempts.
    let smallest = *half.values().min().expect("nodes");
    create(&high_pod("high-1", smallest, None));
    std::thread::sleep(std::time::Duration::from_millis(300));
    cluster("kill", &[("C", "scheduler")]);
    cluster("up", &[]);
    eventually_blocking("high-1 Running after preempting one low pod", allow(120), || {
        running("role=high").iter().any(|(n, _)| n == "high-1")
    });
    let first = &names[0];
    let after = fillers();
    let replaced: Vec<&String> =
        before.keys().filter(|d| before[*d] != after.get(*d).cloned().unwrap_or_default()).collect();
    assert_eq!(replaced.len(), 1, "exactly one filler preempted: before {before:?} after {after:?}");
    let victim = replaced[0];
    assert!(
        victim.starts_with("low-") && victim != &format!("low-{first}"),
        "victim {victim}: not the lowest unguarded"
    );
    let high_node = running("role=high")[0].1.clone();
    assert_eq!(victim, &format!("low-{high_node}"));
    eventually_blocking("the victim's replacement Pending for cpu", allow(60), || {
        pods(&format!("app={victim}")).iter().any(|p| p.1.is_empty() && p.3.contains("Insufficient cpu"))
    });
    let events = kubectl(&["get", "events", "-n", NS]);
    assert!(events.contains("Preempted") && events.contains("Preempted by pod"), "{events}");
    println!(
        "    preemption through a scheduler kill -9: high-1 on {high_node}, only {victim}'s pod preempted"
    );

    // Pinned to the guarded node: the mid pod goes, the guarded low pod stays.
    create(&high_pod("high-2", half[first], Some(first)));
    eventually_blocking("high-2 Running on the guarded node", allow(120), || {
        running("role=high").iter().any(|(n, _)| n == "high-2")
    });
    let now = fillers();
    assert_eq!(
        now.get(&format!("low-{first}")),
        before.get(&format!("low-{first}")),
        "the guarded pod was spared"
    );
    assert_ne!(
        now.get(&format!("mid-{first}")),
        before.get(&format!("mid-{first}")),
        "the mid pod was preempted"
    );
    // Only the guarded pod is below the next one there: preempted although its budget says no.
    create(&high_pod("high-3", half[first], Some(first)));
    eventually_blocking("high-3 Running after preempting the guarded pod", allow(120), || {
        running("role=high").iter().any(|(n, _)| n == "high-3")
    });
    assert_ne!(
        fillers().get(&format!("low-{first}")),
        before.get(&format!("low-{first}")),
        "the guarded pod went"
    );
    println!(
        "    PodDisruptionBudget: the guarded pod spared while a mid pod could go, preempted when nothing else fits"
    );
}
