//! Scenario 15: `navctl drain` honours a PodDisruptionBudget. A Deployment `budgeted` of 3 replicas is
//! placed with 2 on the first node and 1 on the second (by cordoning one node, then the other, while it
//! scales), under a budget `minAvailable: 2`. While `navctl drain` empties the first node, a sampler
//! counts the available replicas (Running, Ready, not being deleted) every 100 ms: never fewer than 2.
//! The drain must complete, its output showing the eviction the budget refused and retried (a
//! replacement is Ready only after its readiness probe's 3 s initial delay, so the second eviction finds
//! the budget spent: without that delay it may find the first replacement Ready already). Then the
//! node is uncordoned and the Deployment and budget removed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use navarch_tests::eventually_blocking;

use super::{Cluster, NS, allow, apply, navctl_command, nv, nv_try, secs, serving};

const APP: &str = "app=budgeted";

fn deployment(replicas: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: budgeted}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: budgeted}}}}
  template:
    metadata: {{labels: {{app: budgeted}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: serve-hostname:1.0
        ports: [{{containerPort: 9376}}]
        readinessProbe: {{httpGet: {{path: /, port: 9376}}, initialDelaySeconds: 3, periodSeconds: 1}}
"#
    )
}

const BUDGET: &str = r#"apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: budgeted}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: budgeted}}
"#;

/// The budgeted replicas serving on each node: (on `node`, elsewhere).
fn placement(node: &str) -> (usize, usize) {
    let s = serving(APP);
    let here = s.iter().filter(|p| p.node == node).count();
    (here, s.len() - here)
}

/// Places `here` replicas on `node` and the rest on `other`, cordoning each in turn while scaling.
fn place(node: &str, other: &str) {
    nv(&["cordon", other]);
    apply(&deployment(2));
    eventually_blocking(format!("2 budgeted replicas on {node}"), allow(120), || placement(node) == (2, 0));
    nv(&["uncordon", other]);
    nv(&["cordon", node]);
    apply(&deployment(3));
    eventually_blocking(format!("2 budgeted replicas on {node}, 1 on {other}"), allow(120), || {
        placement(node) == (2, 1)
    });
    nv(&["uncordon", node]);
}

pub fn scenario_15_drain_with_budget(c: &Cluster) {
    println!("[15] navctl drain under a PodDisruptionBudget (minAvailable: 2 of 3)");
    let (node, other) = (c.nodes[0].0.as_str(), c.nodes[1].0.as_str());
    let t = Instant::now();
    place(node, other);
    apply(BUDGET);
    eventually_blocking("the budget allows 1 disruption", allow(60), || {
        let b: serde_json::Value =
            serde_json::from_str(&nv_try(&["get", "pdb", "budgeted", "-o", "json"]).ok()?).ok()?;
        (b["status"]["disruptionsAllowed"] == 1 && b["status"]["currentHealthy"] == 3).then_some(())
    });
    println!("    3 replicas (2 on {node}) and the budget ready in {}", secs(t.elapsed()));

    // The sampler: available replicas every 100 ms, until the drain ends.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut min, mut samples) = (usize::MAX, 0usize);
            while !done.load(Ordering::SeqCst) {
                min = min.min(serving(APP).len());
                samples += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            (min, samples)
        })
    };
    let t = Instant::now();
    let out = navctl_command(&[
        "drain",
        node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--force",
        "--timeout=300s",
    ])
    .output()
    .expect("running navctl drain");
    let took = t.elapsed();
    done.store(true, Ordering::SeqCst);
    let (min, samples) = sampler.join().expect("the sampler");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    nv(&["uncordon", node]);
    assert!(out.status.success(), "navctl drain {node}: {stdout}{stderr}");
    assert!(stdout.ends_with(&format!("node/{node} drained\n")), "{stdout}");
    let retries = stderr
        .matches("(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.")
        .count();
    println!(
        "    drained {node} in {}: {retries} eviction(s) refused and retried; available replicas never below {min} ({samples} samples)",
        secs(took)
    );
    assert!(min >= 2, "available replicas fell to {min} during the drain");
    assert!(retries >= 1, "the budget refused no eviction: {stderr}");
    assert_eq!(placement(node).0, 0, "no budgeted replica left on {node}");
    let _ = nv_try(&["delete", "pdb", "budgeted"]);
    let _ = nv_try(&["delete", "deployment", "budgeted"]);
    println!("    (namespace {NS}: the Deployment and budget removed)");
}
