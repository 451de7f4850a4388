//! Scenario 18: resource metrics and horizontal autoscaling, as a user of `kubectl top` and
//! `kubectl autoscale` meets them.
//!
//! - A CPU burner limited to 200m: `kubectl top pods` shows it (and every pod) with non-zero CPU and
//!   memory within 30 s of its start, the burner at about its limit; `kubectl top nodes` shows every node;
//!   `--containers`, `-l`, `--sort-by` and `navctl top` read the same API.
//! - A Deployment serving a CPU-heavy CGI page (requests cpu 100m) with `kubectl autoscale ... --cpu-percent=50
//!   --min=1 --max=5`: under load from a client pod it grows to at least 3 replicas within 2 minutes, the
//!   HPA's TARGETS move (`kubectl get hpa -w`), `SuccessfulRescale` events; when the load stops it shrinks back
//!   to 1 after the scale-down stabilization window (shortened to 30 s through `behavior`).
//! - kill -9 of the controller-manager while it scales: the HPA's status converges afterwards.

use std::process::Stdio;
use std::time::{Duration, Instant};

use navarch_tests::eventually_blocking;

use super::{
    NS, allow, apply, cluster, ensure_namespace, kubectl, kubectl_command, kubectl_try, navctl, secs,
};

/// The burner: one busy loop, limited to 200m.
const BURNER: &str = "apiVersion: v1
kind: Pod
metadata: {name: burner, labels: {app: burner}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: burn
    image: busybox:1.36
    command: [sh, -c, 'while :; do :; done']
    resources: {requests: {cpu: 100m, memory: 16Mi}, limits: {cpu: 200m, memory: 64Mi}}
";

/// A CGI page that costs CPU (a busybox sh loop), served by busybox httpd behind a Service: the HPA's target.
const PHP: &str = include_str!("../../../../examples/hpa-php.yaml");

/// Four request loops against the Service.
const LOAD: &str = include_str!("../../../../examples/hpa-load.yaml");

fn field(kind: &str, name: &str, path: &str) -> String {
    kubectl_try(&["get", kind, name, "-n", NS, "-o", &format!("jsonpath={{{path}}}")]).unwrap_or_default()
}

/// `kubectl top pod NAME` as (millicores, MiB), once metrics for it are served.
fn top_pod(name: &str) -> Option<(u64, u64)> {
    let out = kubectl_try(&["top", "pod", name, "-n", NS, "--no-headers"]).ok()?;
    let cols: Vec<&str> = out.split_whitespace().collect();
    let cpu = cols.get(1)?.strip_suffix('m')?.parse().ok()?;
    let mem = cols.get(2)?.strip_suffix("Mi")?.parse().ok()?;
    Some((cpu, mem))
}

pub(crate) fn scenario_18_autoscaling() {
    println!("[18] resource metrics (kubectl top) and horizontal pod autoscaling");
    ensure_namespace();
    top_shows_usage();
    autoscale_under_load();
}

fn top_shows_usage() {
    apply(BURNER);
    eventually_blocking("burner Running", allow(90), || field("pod", "burner", ".status.phase") == "Running");
    let t = Instant::now();
    // A busy shell loop's working set is a few hundred KiB, which kubectl prints as 0Mi: the memory is
    // read from the PodMetrics object itself.
    eventually_blocking("kubectl top pod burner: CPU and memory", allow(30), || {
        top_pod("burner").is_some_and(|(cpu, _)| cpu > 0)
            && kubectl_try(&[
                "get",
                "pods.metrics.k8s.io",
                "burner",
                "-n",
                NS,
                "-o",
                "jsonpath={.containers[0].usage.memory}",
            ])
            .is_ok_and(|m| !m.is_empty() && m != "0")
    });
    let first = t.elapsed();
    // A whole window of burning: about the limit (the cgroup's quota), not more.
    eventually_blocking("the burner at about its 200m limit", allow(60), || {
        top_pod("burner").is_some_and(|(cpu, _)| cpu >= 170)
    });
    let (cpu, _) = top_pod("burner").expect("metrics for the burner");
    assert!(cpu <= 230, "a pod limited to 200m uses {cpu}m");
    let nodes = kubectl(&["top", "nodes", "--no-headers"]);
    let listed = kubectl(&["get", "nodes", "-o", "name"]).lines().count();
    assert_eq!(nodes.lines().count(), listed, "kubectl top nodes shows every node:\n{nodes}");
    for line in nodes.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert!(cols.len() == 5 && cols[1] != "0m" && cols[3] != "0Mi", "a node without usage: {line}");
    }
    let all = kubectl(&["top", "pods", "-A", "--no-headers"]);
    assert!(all.lines().any(|l| l.starts_with(NS) && l.contains("burner")), "top pods -A:\n{all}");
    let containers = kubectl(&["top", "pod", "-n", NS, "-l", "app=burner", "--containers", "--no-headers"]);
    assert!(containers.contains("burner") && containers.contains("burn"), "--containers:\n{containers}");
    let sorted = kubectl(&["top", "pods", "-n", NS, "--sort-by=cpu", "--no-headers"]);
    assert!(sorted.lines().next().is_some_and(|l| l.starts_with("burner")), "--sort-by=cpu:\n{sorted}");
    let ours = navctl(&["top", "pod", "burner", "-n", NS]);
    assert!(ours.contains("burner") && ours.contains('m'), "navctl top pod:\n{ours}");
    println!(
        "    kubectl top: the burner's usage {} after it started, then {cpu}m of its 200m limit; {listed} nodes",
        secs(first)
    );
    kubectl(&["delete", "pod", "burner", "-n", NS, "--wait=false"]);
}

fn replicas() -> i64 {
    field("deployment", "php", ".status.readyReplicas").parse().unwrap_or(0)
}

fn autoscale_under_load() {
    apply(PHP);
    eventually_blocking("php ready", allow(90), || replicas() == 1);
    let out =
        kubectl(&["autoscale", "deployment", "php", "-n", NS, "--cpu-percent=50", "--min=1", "--max=5"]);
    assert!(out.contains("horizontalpodautoscaler.autoscaling/php autoscaled"), "{out}");
    // The test's shorter scale-down window (Kubernetes' default is 300 s).
    kubectl(&[
        "patch",
        "hpa",
        "php",
        "-n",
        NS,
        "--type=merge",
        "-p",
        "{\"spec\":{\"behavior\":{\"scaleDown\":{\"stabilizationWindowSeconds\":30}}}}",
    ]);
    eventually_blocking("the HPA sees php's CPU", allow(60), || {
        let targets = kubectl(&["get", "hpa", "php", "-n", NS, "--no-headers"]);
        targets.contains("cpu: ") && !targets.contains("<unknown>")
    });
    let mut watch = kubectl_command()
        .args(["get", "hpa", "php", "-n", NS, "-w", "--no-headers"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get hpa -w");
    let t = Instant::now();
    apply(LOAD);
    eventually_blocking("php scaled to >= 3 under load", allow(120), || replicas() >= 3);
    let up = t.elapsed();
    // kill -9 of the controller-manager while the HPA works: its status converges afterwards.
    cluster("kill", &[("C", "controller-manager")]);
    std::thread::sleep(Duration::from_secs(1));
    cluster("up", &[]);
    eventually_blocking("the HPA's status after the restart", allow(90), || {
        let desired: i64 = field("hpa", "php", ".status.desiredReplicas").parse().unwrap_or(0);
        let current: i64 = field("hpa", "php", ".status.currentReplicas").parse().unwrap_or(0);
        desired >= 3 && current == desired && replicas() == desired
    });
    let events = kubectl(&["get", "events", "-n", NS, "--field-selector", "involvedObject.name=php"]);
    assert!(
        events.contains("SuccessfulRescale") && events.contains("above target"),
        "SuccessfulRescale events:\n{events}"
    );
    kubectl(&["delete", "pod", "load", "-n", NS, "--wait=false"]);
    let t = Instant::now();
    eventually_blocking("php back to 1 replica after the load", allow(240), || {
        field("deployment", "php", ".spec.replicas") == "1"
    });
    let down = t.elapsed();
    let _ = watch.kill();
    let output = watch.wait_with_output().expect("kubectl get hpa -w output");
    let rows = String::from_utf8_lossy(&output.stdout).to_string();
    let targets: std::collections::BTreeSet<&str> =
        rows.lines().filter_map(|l| l.split_whitespace().nth(3)).collect();
    assert!(targets.len() >= 3, "kubectl get hpa -w shows the targets moving:\n{rows}");
    println!(
        "    autoscale 50% cpu: >= 3 replicas {} after the load started; back to 1 {} after it stopped \
         (30 s window); kill -9 of the controller-manager converged; {} TARGETS values watched",
        secs(up),
        secs(down),
        targets.len()
    );
    kubectl(&["delete", "hpa", "php", "-n", NS]);
    kubectl(&["delete", "deployment", "php", "-n", NS]);
}
