//! `make bench-pod-startup`: pod start-up latency on one real node (kubelet, containerd, runc, CNI),
//! shaped like Kubernetes' pod-startup SLI: pods bound to the node (image already present) are
//! created at a steady rate, then all at once, and each is timed from its create call to the moment
//! a watch shows it Running with all containers running. Printed: p50/p99/max, the kubelet's own
//! split (sandbox network, container create, container start; means from its /metrics), the
//! kubelet's RSS with the pods running, and beside it bare `ctr run --rm` of the same image in the
//! same run.
//!
//! Flags: `--pods N` (100), `--rate R` pods per second for the steady phase (5).

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{Node, Pod};
use navarch_client::{Api, Client, DeleteParams, ListParams, WatchEvent, WatchParams};
use navarch_tests::{Containerd, Kubelet, Registry, TestEnv, eventually, http_get, percentile, rss_bytes};
use tokio::sync::Mutex;

const IMAGE: &str = "busybox:1.36";

fn pod(name: &str, node: &str) -> Pod {
    serde_yaml::from_str(&format!(
        "{{metadata: {{name: {name}, labels: {{bench: startup}}}}, spec: {{nodeName: {node}, terminationGracePeriodSeconds: 0, containers: [{{name: c, image: '{IMAGE}', imagePullPolicy: IfNotPresent, command: [sleep, '3600']}}]}}}}"
    ))
    .expect("pod manifest")
}

fn running(p: &Pod) -> bool {
    p.status.as_ref().is_some_and(|s| {
        s.phase == "Running"
            && !s.container_statuses.is_empty()
            && s.container_statuses.iter().all(|c| c.state.as_ref().is_some_and(|st| st.running.is_some()))
    })
}

/// (sum, count) of each kubelet histogram of interest.
fn scrape(k: &Kubelet) -> HashMap<String, (f64, f64)> {
    let (_, text) = http_get(k.http_addr, "/metrics").unwrap_or_default();
    let mut out: HashMap<String, (f64, f64)> = HashMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else { continue };
        let Ok(v) = value.trim().parse::<f64>() else { continue };
        if let Some(name) = key.strip_suffix("_sum") {
            out.entry(name.to_string()).or_default().0 = v;
        } else if let Some(name) = key.strip_suffix("_count") {
            out.entry(name.to_string()).or_default().1 = v;
        }
    }
    out
}

fn mean_ms(before: &HashMap<String, (f64, f64)>, after: &HashMap<String, (f64, f64)>, name: &str) -> String {
    let key = format!("kubelet_{name}_seconds");
    let (s0, c0) = before.get(&key).copied().unwrap_or_default();
    let (s1, c1) = after.get(&key).copied().unwrap_or_default();
    if c1 - c0 < 1.0 {
        return "-".into();
    }
    format!("{:.1} ms", (s1 - s0) / (c1 - c0) * 1000.0)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Creates `n` pods (at `rate` per second, or all at once with 8 creators when None) and returns
/// each pod's create-to-running-seen-via-watch latency.
async fn phase(c: &Client, node: &str, prefix: &str, n: usize, rate: Option<f64>) -> Vec<Duration> {
    let pods: Api<Pod> = c.api("default");
    let list = pods.list(&ListParams::default()).await.expect("list");
    let mut watch = pods
        .watch(&WatchParams { resource_version: list.resource_version, ..Default::default() })
        .await
        .expect("watch");
    let created: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:03}")).collect();
    let creator = {
        let (pods, created, names, node) = (pods.clone(), created.clone(), names.clone(), node.to_string());
        tokio::spawn(async move {
            match rate {
                Some(r) => {
                    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / r));
                    for name in &names {
                        tick.tick().await;
                        created.lock().await.insert(name.clone(), Instant::now());
                        pods.create(&pod(name, &node)).await.expect("create pod");
                    }
                }
                None => {
                    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                    let mut workers = tokio::task::JoinSet::new();
                    for _ in 0..8 {
                        let (pods, created, names, node, next) =
                            (pods.clone(), created.clone(), names.clone(), node.clone(), next.clone());
                        workers.spawn(async move {
                            loop {
                                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let Some(name) = names.get(i) else { return };
                                created.lock().await.insert(name.clone(), Instant::now());
                                pods.create(&pod(name, &node)).await.expect("create pod");
                            }
                        });
                    }
                    while workers.join_next().await.is_some() {}
                }
            }
        })
    };
    let mut done: HashMap<String, Duration> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120 + n as u64);
    while done.len() < n {
        let ev = tokio::time::timeout_at(deadline.into(), watch.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} pods running before the deadline", done.len()))
            .expect("watch ended")
            .expect("watch event");
        let p = match ev {
            WatchEvent::Added(p) | WatchEvent::Modified(p) => p,
            _ => continue,
        };
        let name = p.meta().name.clone();
        if done.contains_key(&name) || !running(&p) {
            continue;
        }
        let seen = Instant::now();
        if let Some(t) = created.lock().await.get(&name) {
            done.insert(name, seen - *t);
        }
    }
    creator.await.expect("creator");
    let mut l: Vec<Duration> = done.into_values().collect();
    l.sort();
    l
}

async fn delete_all(c: &Client) {
    let pods: Api<Pod> = c.api("default");
    let list = pods.list(&ListParams::default()).await.expect("list");
    let grace = DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
    for p in &list.items {
        let _ = pods.delete(&p.meta().name, &grace).await;
    }
    eventually("the pods to be removed", Duration::from_secs(180), async || {
        pods.list(&ListParams::default()).await.expect("list").items.is_empty()
    })
    .await;
}

fn print_phase(
    title: &str,
    l: &[Duration],
    before: &HashMap<String, (f64, f64)>,
    after: &HashMap<String, (f64, f64)>,
) {
    println!(
        "{title:<28} p50 {:>7}   p99 {:>7}   max {:>7}   | kubelet means: sandbox {}, create {}, start {}, pod start {}",
        ms(percentile(l, 0.5)),
        ms(percentile(l, 0.99)),
        ms(l.last().copied().unwrap_or_default()),
        mean_ms(before, after, "pod_sandbox_setup_duration"),
        mean_ms(before, after, "container_create_duration"),
        mean_ms(before, after, "container_start_duration"),
        mean_ms(before, after, "pod_start_duration"),
    );
}

#[tokio::main]
async fn main() {
    let (mut n, mut rate) = (100usize, 5.0f64);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--pods" => n = it.next().and_then(|v| v.parse().ok()).expect("--pods N"),
            "--rate" => rate = it.next().and_then(|v| v.parse().ok()).expect("--rate R"),
            other => panic!("unknown flag {other} (flags: --pods N, --rate R)"),
        }
    }
    let env = TestEnv::start().await;
    let registry = Registry::with_test_images();
    let ctd = Containerd::start().await;
    let kubelet = Kubelet::start(&env.api_server, &ctd, &registry).await;
    let c = env.client().await;
    let nodes: Api<Node> = c.api("");
    eventually(kubelet.with_log("the node Ready"), Duration::from_secs(60), async || {
        nodes.get_opt(&kubelet.node_name).await.ok().flatten().is_some_and(|n| {
            n.status.is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
        })
    })
    .await;
    println!(
        "== pod start-up on one node ({} cores), image {IMAGE} present, {n} pods",
        std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1)
    );
    // Warm-up: pulls the image, and the first pod's one-time costs are not measured.
    phase(&c, &kubelet.node_name, "warmup", 2, None).await;
    delete_all(&c).await;

    let before = scrape(&kubelet);
    let steady = phase(&c, &kubelet.node_name, "steady", n, Some(rate)).await;
    let after = scrape(&kubelet);
    print_phase(&format!("{rate} pods/s:"), &steady, &before, &after);
    let rss = kubelet.pid().and_then(rss_bytes).unwrap_or(0);
    println!("{:<28} {:.1} MiB with {n} pods running", "kubelet RSS:", rss as f64 / (1024.0 * 1024.0));
    delete_all(&c).await;

    let before = scrape(&kubelet);
    let burst = phase(&c, &kubelet.node_name, "burst", n, None).await;
    let after = scrape(&kubelet);
    print_phase("all at once:", &burst, &before, &after);
    delete_all(&c).await;

    // Baseline: bare containerd + runc, same image, no api-server, no CNI.
    let image = "docker.io/library/busybox:1.36";
    let mut bare = Vec::new();
    for i in 0..10 {
        let t = Instant::now();
        let out = std::process::Command::new("ctr")
            .arg("--address")
            .arg(ctd.socket())
            .args([
                "-n",
                "navarch",
                "run",
                "--rm",
                "--snapshotter",
                "overlayfs",
                image,
                &format!("bench-ctr-{i}"),
                "true",
            ])
            .output()
            .expect("running ctr");
        assert!(out.status.success(), "ctr run: {}", String::from_utf8_lossy(&out.stderr));
        bare.push(t.elapsed());
    }
    bare.sort();
    println!(
        "{:<28} p50 {:>7}   max {:>7}   (create + start + exit + delete, 10 runs)",
        "baseline ctr run --rm:",
        ms(percentile(&bare, 0.5)),
        ms(bare.last().copied().unwrap_or_default())
    );
    println!("goal: p99 <= 1 s at 5 pods/s, kubelet RSS <= 30 MB; Kubernetes' SLO: p99 <= 5 s");
}
