//! `make e2e`: the end-to-end suite against the cluster `make up` runs on this machine (two or more
//! nodes in network namespaces). It drives the cluster as a user does, through `navctl` and the
//! `make` targets that break things, in its own namespace `e2e`, and prints each scenario's
//! timings. Modelled on Kubernetes-the-hard-way's smoke test and what users try first:
//!
//! 1. a Deployment spread over the nodes; `navctl logs`, `navctl exec`
//! 2. pod to pod across nodes by IP; a Service by ClusterIP and by DNS name from a pod on each
//!    node; a NodePort from this host through every node's address
//! 3. a rolling update and a `rollout undo` under continuous traffic through the Service: no
//!    failed request
//! 4. kubelet restart: containers keep running, no restart counted
//! 5. node failure, twice: a stopped kubelet, then a cut network link; the node goes NotReady and
//!    its pods run on another node (the pods tolerate the node taints for 5 s; the grace period is
//!    the controller-manager's, 40 s by default); failover time measured
//! 6. kill -9 of the api-server, scheduler, controller-manager and etcd, each restarted by
//!    `make up`: what was acknowledged before is there after, and the cluster still converges
//! 7. ConfigMap and Secret as files and env; a liveness probe restarts a hung container; a
//!    crash-looping container backs off
//! 8. deleting the namespace removes everything, including the containers on the nodes
//! 9. the articles' kubectl commands, verbatim (kubectl with the kubeconfig `make up` wrote):
//!    `kubectl run nginx --image=nginx --port=80`, `kubectl create deployment nginx ...`,
//!    `kubectl expose deployment nginx --port=8080 --target-port=80`, then nginx's welcome page from
//!    this host at the Service's ClusterIP
//! 10. kubectl's streams into pods on the nodes: `exec` (with an exit status), `cp` both ways, `logs`,
//!     and requests from this host through `kubectl port-forward`
//! 11. attacks, each refused and audited (`e2e/attacks.rs`): from a busybox pod on node-1, TCP to the
//!     kubelet APIs of node-2 and of node-1 (by its IP and through the pod's gateway), the registry
//!     and etcd (the pods' network guard; DNS and the api-server still reached); its ServiceAccount
//!     token listing Secrets (403, `forbid`); with node-1's kubelet credentials, a Secret of a
//!     node-2 pod, a missing Secret, a label on node-2 and a non-mirror pod (Forbidden); plaintext
//!     HTTP to the api-server and a kubelet API; a forged `alg: none` token (401)
//! 12. Jobs (`e2e/jobs.rs`): completions with parallelism, backoffLimit, Indexed, deadline, TTL, and
//!     a 20-completion Job across a kill -9 of the controller-manager: exactly 20 pods
//! 13. DaemonSets (`e2e/daemonsets.rs`): one pod on each node, a `node-role=edge` nodeSelector, an
//!     image update rolling node by node within maxUnavailable, `kubectl rollout undo`, a cordon that
//!     evicts nothing
//! 14. CronJobs (`e2e/cronjobs.rs`): a Job every minute, history limit, Forbid, Replace,
//!     `kubectl create job --from=cronjob/x`, suspend, kubectl's columns
//! 15. `navctl drain` of a node hosting 2 of 3 replicas of a Deployment whose PodDisruptionBudget says
//!     `minAvailable: 2` (`e2e/disruption.rs`): the drain completes, retrying the eviction the budget
//!     refuses, and the available replicas (sampled every 100 ms) never fall below 2 (runs last)
//! 16. persistent volumes (`e2e/storage.rs`): the default `local-path` class provisioning on the pod's
//!     node, data across pods, reclaim Delete and Retain, a `local` volume pinning its pod, claims that
//!     cannot bind and a bad access mode
//! 17. StatefulSets (`e2e/statefulsets.rs`): ordered creation, stable DNS names and claims, scale down
//!     and up keeping data, partitioned rolling update from the highest ordinal, rollout undo, refused
//!     changes, a scale-up through kill -9 of controller-manager, scheduler and a kubelet (no ordinal
//!     twice, no volume lost or leaked), and redis keeping a key through its pod's deletion
//! 18. resource metrics and autoscaling (`e2e/autoscaling.rs`): `kubectl top` (a CPU burner at its
//!     limit, every node), `kubectl autoscale` of a CPU-heavy Deployment scaling to >= 3 under load and
//!     back to 1 after it, through a kill -9 of the controller-manager
//! 19. namespace limits (`e2e/quota.rs`): ResourceQuota refusals in Kubernetes' words, a Deployment held at
//!     what fits, 20 concurrent creates against `pods: 10`, LimitRange defaults and max, kill -9 of the
//!     api-server and controller-manager never taking a quota over its hard limit
//! 20. scheduling policies (`e2e/scheduling.rs`): the nodes labelled into two zones; required pod
//!     anti-affinity on zone (one replica per zone, the rest Pending with Kubernetes' reason), pod
//!     affinity to a server's node, topology spreading 3/3 over zones and even over nodes, PriorityClasses
//!     and preemption of the lowest-priority pods only (through a kill -9 of the scheduler), a
//!     PodDisruptionBudget sparing its pod until nothing else fits
//!
//! Needs root (it cuts links and reads containerd) and a running `make up` cluster with at least
//! two Ready nodes. Flags: `--only N[,N...]` runs some scenarios (1 and 2 set up what the others
//! use; they always run). Every run starts from a fresh namespace `e2e`.
//!
//! `--vagrant` is `make vagrant-smoke`: the smoke test against the VM cluster of `make vagrant-up`
//! (navctl reaches it through `NAVCTL_SERVER` and `NAVCTL_KUBECONFIG`): scenarios 1 and 2, then node failover by powering
//! off the VM of the last worker (`virsh destroy`, or `vagrant halt --force` on other providers;
//! then `vagrant up` brings it back). The VMs may run under plain QEMU emulation, so every wait
//! is allowed three times as long.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use navarch_tests::eventually_blocking;

#[path = "e2e/attacks.rs"]
mod attacks;
#[path = "e2e/autoscaling.rs"]
mod autoscaling;
#[path = "e2e/commands.rs"]
mod commands;
#[path = "e2e/cronjobs.rs"]
mod cronjobs;
#[path = "e2e/daemonsets.rs"]
mod daemonsets;
#[path = "e2e/disruption.rs"]
mod disruption;
#[path = "e2e/jobs.rs"]
mod jobs;
#[path = "e2e/quota.rs"]
mod quota;
#[path = "e2e/scheduling.rs"]
mod scheduling;
#[path = "e2e/statefulsets.rs"]
mod statefulsets;
#[path = "e2e/storage.rs"]
mod storage;

const NS: &str = "e2e";

use commands::{
    allow, apply, apply_try, cluster, ensure_namespace, kubectl, kubectl_command, kubectl_try, navarch_home,
    navctl, navctl_command, navctl_try, nv, nv_try, run_kubectl,
};

/// Set by `--vagrant`: the cluster is the VMs of vagrant/Vagrantfile.
static VAGRANT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// A pod as `navctl get pods -o json` shows it.
#[derive(Debug, Clone)]
struct PodView {
    name: String,
    node: String,
    ip: String,
    phase: String,
    ready: bool,
    deleting: bool,
    restarts: i64,
}

fn pods(selector: &str) -> Vec<PodView> {
    let mut args = vec!["get", "pods", "-o", "json"];
    if !selector.is_empty() {
        args.extend(["-l", selector]);
    }
    let v: serde_json::Value = serde_json::from_str(&nv(&args)).expect("pods as JSON");
    let items = v["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|p| PodView {
            name: p["metadata"]["name"].as_str().unwrap_or_default().into(),
            node: p["spec"]["nodeName"].as_str().unwrap_or_default().into(),
            ip: p["status"]["podIP"].as_str().unwrap_or_default().into(),
            phase: p["status"]["phase"].as_str().unwrap_or_default().into(),
            ready: p["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")),
            deleting: !p["metadata"]["deletionTimestamp"].is_null(),
            restarts: p["status"]["containerStatuses"]
                .as_array()
                .map(|cs| cs.iter().map(|c| c["restartCount"].as_i64().unwrap_or(0)).sum())
                .unwrap_or(0),
        })
        .collect()
}

/// The ready, not-deleting pods of `selector`.
fn serving(selector: &str) -> Vec<PodView> {
    pods(selector).into_iter().filter(|p| p.ready && !p.deleting && p.phase == "Running").collect()
}

/// Whether every Node is Ready and carries none of the node controller's `node.kubernetes.io/` taints.
fn nodes_schedulable() -> bool {
    let Ok(text) = navctl_try(&["get", "nodes", "-o", "json"]) else { return false };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let nodes = v["items"].as_array().cloned().unwrap_or_default();
    !nodes.is_empty()
        && nodes.iter().all(|n| {
            let ready = n["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
            let tainted = n["spec"]["taints"].as_array().is_some_and(|t| {
                t.iter().any(|t| t["key"].as_str().is_some_and(|k| k.starts_with("node.kubernetes.io/")))
            });
            ready && !tainted
        })
}

fn node_ready(node: &str) -> bool {
    let v: serde_json::Value = serde_json::from_str(&navctl(&["get", "node", node, "-o", "json"])).unwrap();
    v["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn nodes() -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(&navctl(&["get", "nodes", "-o", "json"])).unwrap();
    let mut out: Vec<(String, String)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let name = n["metadata"]["name"].as_str().unwrap().to_string();
            let ip = n["status"]["addresses"]
                .as_array()
                .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
                .and_then(|a| a["address"].as_str())
                .unwrap_or_default()
                .to_string();
            (name, ip)
        })
        .collect();
    out.sort();
    out
}

/// An HTTP GET from inside pod `pod` (busybox wget, bounded by `timeout`): the body.
fn wget_from(pod: &str, url: &str) -> Result<String, String> {
    nv_try(&["exec", pod, "--", "timeout", "3", "wget", "-qO-", url]).map(|s| s.trim().to_string())
}

fn curl(url: &str) -> Result<String, String> {
    let out = Command::new("curl").args(["-sS", "--max-time", "3", url]).output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 3
  minReadySeconds: 1
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      tolerations:
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      containers:
      - name: web
        image: serve-hostname:1.0
        ports: [{containerPort: 9376}]
        readinessProbe: {httpGet: {path: /, port: 9376}, periodSeconds: 1}
"#;

fn client_pod(name: &str, node: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{role: client}}}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: c, image: busybox:1.36, command: [sleep, '36000']}}\n"
    )
}

struct Cluster {
    nodes: Vec<(String, String)>,
    /// client pod per node
    clients: Vec<String>,
}

/// Requests through the Service from a client pod, every 0.1 s, until stopped: (ok, failures).
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<(usize, Vec<String>, BTreeMap<String, usize>)>,
}

impl Load {
    fn start(client: &str, url: &str) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (client, url, flag) = (client.to_string(), url.to_string(), stop.clone());
        let handle = std::thread::spawn(move || {
            let (mut ok, mut failed, mut by) = (0, Vec::new(), BTreeMap::new());
            // One exec running a loop in the pod: each request is a new connection through
            // kube-proxy; a failure prints FAIL.
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                let script =
                    format!("for i in $(seq 50); do timeout 2 wget -qO- {url} || echo FAIL; sleep 0.1; done");
                match nv_try(&["exec", &client, "--", "sh", "-c", &script]) {
                    Ok(out) => {
                        for line in out.lines() {
                            if line.trim() == "FAIL" {
                                failed.push(line.to_string());
                            } else {
                                ok += 1;
                                *by.entry(line.trim().to_string()).or_insert(0) += 1;
                            }
                        }
                    }
                    Err(e) => failed.push(e),
                }
            }
            (ok, failed, by)
        });
        Load { stop, handle }
    }

    fn finish(self) -> (usize, Vec<String>, BTreeMap<String, usize>) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.handle.join().unwrap()
    }
}

fn scenario_1_deployment() -> Vec<(String, String)> {
    println!("[1] Deployment of 3 web replicas over the nodes; logs and exec");
    let nodes = nodes();
    assert!(nodes.len() >= 2, "the e2e suite needs two nodes: make up (NODES=2 is the default)");
    for (n, _) in &nodes {
        assert!(node_ready(n), "node {n} is not Ready: make status");
    }
    let t = Instant::now();
    apply(WEB);
    let web = eventually_blocking("3 ready web replicas", allow(120), || {
        let s = serving("app=web");
        (s.len() == 3).then_some(s)
    });
    let spread: std::collections::BTreeSet<&str> = web.iter().map(|p| p.node.as_str()).collect();
    println!("    3 replicas ready in {} on {:?}", secs(t.elapsed()), spread);
    assert!(spread.len() >= 2, "replicas not spread over the nodes: {web:?}");
    let logs = nv(&["logs", &web[0].name]);
    assert!(logs.contains("serve-hostname"), "logs of {}: {logs}", web[0].name);
    let host = nv(&["exec", &web[0].name, "--", "hostname"]);
    assert_eq!(host.trim(), web[0].name, "exec runs in the container");
    nodes
}

fn scenario_2_networking(nodes: Vec<(String, String)>) -> Cluster {
    println!(
        "[2] pod to pod across nodes, Service by ClusterIP and DNS from each node, NodePort from the host"
    );
    let clients: Vec<String> = nodes.iter().enumerate().map(|(i, _)| format!("client-{}", i + 1)).collect();
    for (c, (n, _)) in clients.iter().zip(&nodes) {
        apply(&client_pod(c, n));
    }
    eventually_blocking("client pods running", allow(60), || serving("role=client").len() == clients.len());
    if nv_try(&["get", "service", "web"]).is_err() {
        nv(&["expose", "deployment", "web", "--port", "80", "--target-port", "9376", "--type", "NodePort"]);
    }
    let svc: serde_json::Value = serde_json::from_str(&nv(&["get", "service", "web", "-o", "json"])).unwrap();
    let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap().to_string();
    // Pod to pod by IP, each client to a web pod on another node.
    let web = serving("app=web");
    for (c, (n, _)) in clients.iter().zip(&nodes) {
        let other = web.iter().find(|p| &p.node != n).expect("a web pod on another node");
        let body = wget_from(c, &format!("http://{}:9376/", other.ip))
            .unwrap_or_else(|e| panic!("{c} on {n} -> {} on {}: {e}", other.ip, other.node));
        assert_eq!(body, other.name);
    }
    println!("    pod to pod across nodes: ok");
    let t = Instant::now();
    for c in &clients {
        for url in [
            format!("http://{cluster_ip}/"),
            "http://web.e2e.svc.cluster.local/".to_string(),
            "http://web/".to_string(),
        ] {
            let body = eventually_blocking(format!("{url} from {c}"), allow(30), || wget_from(c, &url));
            assert!(body.starts_with("web-"), "{url} from {c}: {body}");
        }
    }
    // Every replica answers through the Service.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        if let Ok(b) = wget_from(&clients[0], "http://web/") {
            seen.insert(b);
        }
    }
    assert_eq!(seen.len(), 3, "answers through the Service: {seen:?}");
    println!("    ClusterIP and DNS from every node ({}); all 3 replicas answer", secs(t.elapsed()));
    for (n, ip) in &nodes {
        let url = format!("http://{ip}:{node_port}/");
        let body = eventually_blocking(format!("NodePort {url}"), allow(20), || curl(&url));
        assert!(body.starts_with("web-"), "NodePort on {n}: {body}");
    }
    println!("    NodePort {node_port} from the host through every node: ok");
    Cluster { nodes, clients }
}

fn scenario_3_rollout(c: &Cluster) {
    println!("[3] rolling update and undo under traffic");
    for (step, args) in [
        ("set image 2.0", vec!["set", "image", "deployment/web", "web=serve-hostname:2.0"]),
        ("rollout undo", vec!["rollout", "undo", "deployment/web"]),
    ] {
        let load = Load::start(&c.clients[0], "http://web/");
        std::thread::sleep(Duration::from_secs(2));
        let t = Instant::now();
        nv(&args);
        nv(&["rollout", "status", "deployment/web", "--timeout", "180s"]);
        let took = t.elapsed();
        std::thread::sleep(Duration::from_secs(2));
        let (ok, failed, by) = load.finish();
        let v2 = by.iter().filter(|(k, _)| k.starts_with("v2 ")).map(|(_, n)| n).sum::<usize>();
        println!(
            "    {step}: rolled out in {}; {ok} requests ok ({v2} answered by 2.0), {} failed",
            secs(took),
            failed.len()
        );
        assert!(failed.is_empty(), "{step}: failed requests: {failed:?}");
        assert!(ok > 20, "{step}: too few requests measured ({ok})");
    }
    let body = wget_from(&c.clients[0], "http://web/").unwrap();
    assert!(!body.starts_with("v2 "), "after undo 1.0 answers: {body}");
}

fn scenario_4_kubelet_restart(c: &Cluster) {
    println!("[4] kubelet restart: containers keep running");
    let before: BTreeMap<String, (String, i64)> = pods("")
        .into_iter()
        .filter(|p| p.node == c.nodes[0].0)
        .map(|p| (p.name, (p.ip, p.restarts)))
        .collect();
    assert!(!before.is_empty(), "no pods on {}", c.nodes[0].0);
    let t = Instant::now();
    cluster("node-stop", &[("NODE", "1")]);
    // (exec goes through a kubelet: ask from the other node, to node-1's pods by IP)
    for p in serving("app=web").iter().filter(|p| p.node == c.nodes[0].0) {
        let body = wget_from(&c.clients[1], &format!("http://{}:9376/", p.ip));
        assert!(body.is_ok(), "with the kubelet stopped, its pods still serve: {body:?}");
    }
    cluster("node-start", &[("NODE", "1")]);
    eventually_blocking("node-1 Ready", allow(60), || node_ready(&c.nodes[0].0));
    std::thread::sleep(Duration::from_secs(3));
    let after: BTreeMap<String, (String, i64)> = pods("")
        .into_iter()
        .filter(|p| p.node == c.nodes[0].0)
        .map(|p| (p.name, (p.ip, p.restarts)))
        .collect();
    assert_eq!(before, after, "same pods, same IPs, no restarts counted");
    println!(
        "    kubelet on {} stopped and started in {}: {} pods unchanged, 0 restarts",
        c.nodes[0].0,
        secs(t.elapsed()),
        after.len()
    );
}

/// Breaks node `i` (1-based) with `break_cmd`, measures until all web replicas serve elsewhere,
/// then mends it with `mend_cmd` and waits for it to be Ready.
fn failover(c: &Cluster, i: usize, how: &str, break_cmd: &str, mend_cmd: &str) {
    let node = c.nodes[i - 1].0.clone();
    let on_node = serving("app=web").iter().filter(|p| p.node == node).count();
    let t = Instant::now();
    cluster(break_cmd, &[("NODE", &i.to_string())]);
    let not_ready = eventually_blocking(format!("{node} NotReady"), allow(120), || {
        (!node_ready(&node)).then(|| t.elapsed())
    });
    let moved = eventually_blocking("3 web replicas serving on other nodes", allow(180), || {
        let s = serving("app=web");
        (s.len() == 3 && s.iter().all(|p| p.node != node)).then(|| t.elapsed())
    });
    println!(
        "    {how} on {node} ({on_node} web pods there): NotReady after {}, all 3 replicas serving elsewhere after {}",
        secs(not_ready),
        secs(moved)
    );
    let body = wget_from(&c.clients[if i == 1 { 1 } else { 0 }], "http://web/");
    assert!(body.is_ok_and(|b| b.starts_with("web-")), "the Service answers from the surviving node");
    cluster(mend_cmd, &[("NODE", &i.to_string())]);
    let back = Instant::now();
    eventually_blocking(format!("{node} Ready again"), allow(120), || node_ready(&node));
    // The evicted pods' containers go once the kubelet hears of it.
    eventually_blocking(format!("pods evicted from {node} gone"), allow(120), || {
        pods("app=web").iter().all(|p| p.node != node || !p.deleting)
    });
    println!("    {node} Ready again {} after being mended", secs(back.elapsed()));
}

fn scenario_5_node_failure(c: &Cluster) {
    println!("[5] node failure: a stopped kubelet, then a cut link");
    // Make sure node-2 has web pods: the failover moves them to node-1.
    failover(c, 2, "kubelet stopped", "node-stop", "node-start");
    // The client on node-1 is used for checks; restore spread is not needed for the next break,
    // which cuts node-1 (where all replicas now run).
    failover(c, 1, "link cut", "node-cut", "node-restore");
    // node-1's client pod was evicted too (it tolerates nothing): bring it back for later scenarios.
    eventually_blocking("client-1 running again", allow(120), || {
        if nv_try(&["get", "pod", &c.clients[0]]).is_err() {
            apply(&client_pod(&c.clients[0], &c.nodes[0].0));
        }
        serving("role=client").iter().any(|p| p.name == c.clients[0])
    });
}

fn scenario_vm_failure(c: &Cluster) {
    println!("[vm] node failure: the VM of the last worker stopped");
    let last = c.nodes.len();
    failover(c, last, "VM stopped", "vm-stop", "vm-start");
}

fn scenario_6_control_plane(c: &Cluster) {
    println!("[6] control plane kill -9 and restart");
    for (k, comp) in ["api-server", "scheduler", "controller-manager", "etcd"].iter().enumerate() {
        let marker = format!("before-{comp}");
        apply(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {marker}}}\ndata: {{k: '{k}'}}\n"
        ));
        let t = Instant::now();
        cluster("kill", &[("C", comp)]);
        cluster("up", &[]);
        let back = t.elapsed();
        let cm = eventually_blocking(format!("{marker} readable"), allow(60), || {
            nv_try(&["get", "configmap", &marker, "-o", "json"]).ok()
        });
        assert!(cm.contains(&format!("\"k\": \"{k}\"")) || cm.contains(&format!("\"k\":\"{k}\"")), "{cm}");
        // Still converging: scale up and back.
        nv(&["scale", "deployment/web", "--replicas", "4"]);
        eventually_blocking("4 replicas", allow(90), || serving("app=web").len() == 4);
        nv(&["scale", "deployment/web", "--replicas", "3"]);
        eventually_blocking("3 replicas", allow(90), || {
            pods("app=web").iter().filter(|p| !p.deleting).count() == 3
        });
        let body = wget_from(&c.clients[1], "http://web/");
        assert!(body.is_ok(), "Service after {comp} restart: {body:?}");
        println!(
            "    {comp}: killed and back in {}; acknowledged write kept; scaled 3 -> 4 -> 3",
            secs(back)
        );
    }
}

fn scenario_7_config_probes(c: &Cluster) {
    println!("[7] ConfigMap and Secret, liveness probe, crash loop back-off");
    apply(&format!(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{greeting: hello}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
stringData: {{password: s3cret}}
---
apiVersion: v1
kind: Pod
metadata: {{name: configured}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox:1.36
    command: [sh, -c, 'touch /tmp/healthy; sleep 36000']
    env:
    - {{name: GREETING, valueFrom: {{configMapKeyRef: {{name: settings, key: greeting}}}}}}
    - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}}}
    volumeMounts:
    - {{name: config, mountPath: /config}}
    - {{name: secret, mountPath: /secret}}
    livenessProbe: {{exec: {{command: [cat, /tmp/healthy]}}, periodSeconds: 1, failureThreshold: 2}}
  volumes:
  - {{name: config, configMap: {{name: settings}}}}
  - {{name: secret, secret: {{secretName: creds}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: crasher}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: busybox:1.36, command: [sh, -c, 'echo crashing; exit 1']}}
"#,
        node = c.nodes[1].0
    ));
    eventually_blocking("configured running", allow(60), || {
        pods("").iter().any(|p| p.name == "configured" && p.ready)
    });
    let env = nv(&[
        "exec",
        "configured",
        "--",
        "sh",
        "-c",
        "echo $GREETING $PASSWORD $(cat /config/greeting) $(cat /secret/password)",
    ]);
    assert_eq!(env.split_whitespace().collect::<Vec<_>>(), ["hello", "s3cret", "hello", "s3cret"], "{env}");
    println!("    env and files from the ConfigMap and Secret: ok");
    let t = Instant::now();
    nv(&["exec", "configured", "--", "rm", "/tmp/healthy"]);
    eventually_blocking("the hung container restarted", allow(60), || {
        pods("").iter().any(|p| p.name == "configured" && p.restarts >= 1)
    });
    println!("    liveness failure restarted the container after {}", secs(t.elapsed()));
    // Back-off: 10 s, 20 s, 40 s ... so in 30 s only a few restarts, and the reason says so.
    std::thread::sleep(Duration::from_secs(30));
    let v: serde_json::Value = serde_json::from_str(&nv(&["get", "pod", "crasher", "-o", "json"])).unwrap();
    let cs = &v["status"]["containerStatuses"][0];
    let restarts = cs["restartCount"].as_i64().unwrap_or(0);
    let reason = cs["state"]["waiting"]["reason"].as_str().unwrap_or("(running)").to_string();
    println!("    crash loop: {restarts} restarts in the first ~30 s, state {reason}");
    assert!((1..=4).contains(&restarts), "back-off limits restarts: {restarts}");
}

fn containers_of_namespace(node_ns: &str) -> usize {
    let out = Command::new("ctr")
        .args(["-a", navarch_home().join("containerd/containerd.sock").to_str().unwrap(), "-n", node_ns])
        .args(["containers", "ls", "-q", &format!("labels.\"io.navarch.pod.namespace\"=={NS}")])
        .output()
        .expect("ctr");
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()).count()
}

fn scenario_8_delete_namespace(c: &Cluster) {
    println!("[8] deleting the namespace removes everything");
    let on_nodes: usize =
        (1..=c.nodes.len()).map(|i| containers_of_namespace(&format!("navarch-node-{i}"))).sum();
    assert!(on_nodes > 0, "containers of {NS} on the nodes before");
    let t = Instant::now();
    navctl(&["delete", "namespace", NS]);
    eventually_blocking("the namespace gone", allow(180), || navctl_try(&["get", "namespace", NS]).is_err());
    eventually_blocking("its containers gone from every node", allow(60), || {
        (1..=c.nodes.len()).all(|i| containers_of_namespace(&format!("navarch-node-{i}")) == 0)
    });
    println!(
        "    {on_nodes} containers on the nodes before; namespace and containers gone in {}",
        secs(t.elapsed())
    );
}

fn scenario_9_kubectl_seeds() {
    println!("[9] the articles' kubectl commands, verbatim");
    let t = Instant::now();
    for what in ["deployment/nginx", "service/nginx", "pod/nginx"] {
        kubectl(&["delete", what, "--ignore-not-found", "--wait=true"]);
    }
    assert_eq!(kubectl(&["run", "nginx", "--image=nginx", "--port=80"]).trim(), "pod/nginx created");
    kubectl(&["wait", "--for=condition=Ready", "pod/nginx", "--timeout=120s"]);
    assert_eq!(
        kubectl(&["create", "deployment", "nginx", "--image=nginx", "--port=80"]).trim(),
        "deployment.apps/nginx created"
    );
    assert_eq!(
        kubectl(&["expose", "deployment", "nginx", "--port=8080", "--target-port=80"]).trim(),
        "service/nginx exposed"
    );
    kubectl(&["wait", "--for=condition=Available", "deployment/nginx", "--timeout=120s"]);
    kubectl(&["rollout", "status", "deployment/nginx", "--timeout=120s"]);
    let ip = kubectl(&["get", "svc", "nginx", "--template={{.spec.clusterIP}}"]);
    let url = format!("http://{ip}:8080/");
    let page = eventually_blocking(format!("nginx's page at {url} from this host"), allow(60), || {
        let out = Command::new("curl").args(["-sS", "--max-time", "3", &url]).output().ok()?;
        let body = String::from_utf8_lossy(&out.stdout).to_string();
        body.contains("Welcome to nginx!").then_some(body)
    });
    assert!(page.contains("<h1>Welcome to nginx!</h1>"), "{page}");
    let pods = kubectl(&["get", "pods", "-l", "app=nginx", "-o", "wide"]);
    assert!(pods.lines().skip(1).all(|l| l.contains("Running")), "{pods}");
    println!(
        "    run, create deployment, expose, curl http://{ip}:8080/ from the host: ok in {}",
        secs(t.elapsed())
    );
    // A rollout and its undo, through kubectl.
    kubectl(&["set", "image", "deployment/nginx", "nginx=nginx:1.22"]);
    kubectl(&["rollout", "status", "deployment/nginx", "--timeout=120s"]);
    kubectl(&["rollout", "undo", "deployment/nginx"]);
    kubectl(&["rollout", "status", "deployment/nginx", "--timeout=120s"]);
    let image =
        kubectl(&["get", "deployment", "nginx", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]);
    assert_eq!(image, "nginx", "undo restored the first template");
    let history = kubectl(&["rollout", "history", "deployment/nginx"]);
    assert!(history.lines().any(|l| l.starts_with('3')), "{history}");
    println!("    set image, rollout status, rollout undo: ok");
    for what in ["deployment/nginx", "service/nginx", "pod/nginx"] {
        kubectl(&["delete", what, "--wait=true"]);
    }
}

fn scenario_10_kubectl_streams() {
    println!("[10] kubectl exec, cp, logs and port-forward into pods on the nodes");
    let t = Instant::now();
    // In `default`, as scenario 9: scenario 8 deleted the namespace e2e.
    let k = |args: &[&str]| kubectl(args);
    k(&["delete", "pod", "streams", "pf-nginx", "--ignore-not-found", "--wait=true"]);
    k(&[
        "run",
        "streams",
        "--image=busybox:1.36",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        "i=0; while true; do echo line $i; i=$((i+1)); sleep 1; done",
    ]);
    k(&["run", "pf-nginx", "--image=nginx", "--port=80"]);
    k(&["wait", "--for=condition=Ready", "pod/streams", "pod/pf-nginx", "--timeout=120s"]);
    // exec: output and exit status across the api-server → kubelet relay.
    assert_eq!(k(&["exec", "streams", "--", "echo", "hi"]), "hi\n");
    let out = kubectl_command().args(["exec", "streams", "--", "sh", "-c", "exit 3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "kubectl exec of exit 3: {out:?}");
    // cp both ways, a MiB of data.
    let dir = std::env::temp_dir().join(format!("navarch-e2e-cp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    let (src, back) = (dir.join("in.bin"), dir.join("out.bin"));
    std::fs::write(&src, &data).unwrap();
    k(&["cp", &src.display().to_string(), "streams:/tmp/in.bin"]);
    k(&["cp", "streams:/tmp/in.bin", &back.display().to_string()]);
    assert!(std::fs::read(&back).unwrap() == data, "kubectl cp: the copy back differs");
    let _ = std::fs::remove_dir_all(&dir);
    // logs.
    let last = k(&["logs", "streams", "--tail=1"]);
    assert!(last.starts_with("line "), "{last}");
    // port-forward from this host to nginx in its pod.
    let port = navarch_tests::free_port().to_string();
    let mut forward = kubectl_command()
        .args(["port-forward", "pod/pf-nginx", &format!("{port}:80")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl port-forward");
    let url = format!("http://127.0.0.1:{port}/");
    eventually_blocking(format!("nginx through kubectl port-forward at {url}"), allow(30), || {
        let out = Command::new("curl").args(["-sS", "--max-time", "3", &url]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).contains("Welcome to nginx!").then_some(())
    });
    for _ in 0..20 {
        let out = Command::new("curl").args(["-sS", "--max-time", "5", &url]).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("Welcome to nginx!"), "{out:?}");
    }
    let _ = forward.kill();
    let _ = forward.wait();
    k(&["delete", "pod", "streams", "pf-nginx", "--grace-period=0", "--wait=true"]);
    println!(
        "    exec (exit 3), cp 1 MiB both ways, logs, 20 requests through port-forward: ok in {}",
        secs(t.elapsed())
    );
}

fn main() {
    let only: Option<Vec<u32>> = std::env::args()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[0] == "--only")
        .map(|w| w[1].split(',').filter_map(|n| n.parse().ok()).collect());
    let vm = std::env::args().any(|a| a == "--vagrant");
    VAGRANT.set(vm).unwrap();
    // The VM cluster gets the smoke test: 1, 2 and a stopped VM.
    let run = |n: u32| !vm && only.as_ref().is_none_or(|o| o.contains(&n));
    if let Err(e) = navctl_try(&["get", "nodes"]) {
        panic!(
            "no cluster answers: start one with make up (then make e2e), or make vagrant-up with NAVCTL_SERVER \
             and NAVCTL_KUBECONFIG set\n{e}"
        );
    }
    if navctl_try(&["get", "namespace", NS]).is_ok() {
        println!("removing the namespace {NS} left by an earlier run");
        navctl(&["delete", "namespace", NS]);
        eventually_blocking("the old namespace gone", allow(180), || {
            navctl_try(&["get", "namespace", NS]).is_err()
        });
    }
    if navctl_try(&["get", "namespace", NS]).is_err() {
        apply(&format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NS}}}\n"));
    }
    // A cluster started again on kept data (make down; make up) has its Nodes from before: wait until
    // every kubelet has reported in again and the node controller has lifted its not-ready and
    // unreachable taints, or the first Deployment lands on one node.
    eventually_blocking("every node Ready without a node.kubernetes.io/ taint", allow(90), nodes_schedulable);
    let started = Instant::now();
    let nodes = scenario_1_deployment();
    let c = scenario_2_networking(nodes);
    if run(3) {
        scenario_3_rollout(&c);
    }
    if run(4) {
        scenario_4_kubelet_restart(&c);
    }
    if run(5) {
        scenario_5_node_failure(&c);
    }
    if run(6) {
        scenario_6_control_plane(&c);
    }
    if run(7) {
        scenario_7_config_probes(&c);
    }
    if run(8) {
        scenario_8_delete_namespace(&c);
    }
    if run(9) {
        scenario_9_kubectl_seeds();
    }
    if run(10) {
        scenario_10_kubectl_streams();
    }
    if run(11) {
        attacks::scenario_11_attacks(&c);
    }
    if run(12) {
        jobs::scenario_12_jobs();
    }
    if run(13) {
        daemonsets::scenario_13_daemonsets();
    }
    if run(14) {
        cronjobs::scenario_14_cronjobs();
    }
    if run(16) {
        storage::scenario_16_storage(&c.nodes);
    }
    if run(17) {
        statefulsets::scenario_17_statefulsets(&c);
    }
    if run(18) {
        autoscaling::scenario_18_autoscaling();
    }
    if run(19) {
        quota::scenario_19_quota();
    }
    if run(20) {
        scheduling::scenario_20_scheduling();
    }
    // Last: its drain deletes the bare client pod of the first node (--force).
    if run(15) {
        disruption::scenario_15_drain_with_budget(&c);
    }
    if vm {
        scenario_vm_failure(&c);
        navctl(&["delete", "namespace", NS]);
    }
    println!("e2e: passed in {}", secs(started.elapsed()));
}
