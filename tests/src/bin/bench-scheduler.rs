//! `make bench-scheduler`: shaped like kube-scheduler's scheduler_perf SchedulingBasic. Through the real
//! api-server and etcd: register fake nodes (4 cpu / 32Gi / 110 pods, no kubelets), create the existing
//! pods and let them be scheduled, then create the measured pods and time until all are bound (seen via
//! watch). Beside it: the api-server's raw pod create rate in the same run (pods no scheduler takes), the
//! ceiling, since each scheduled pod costs a create and a bind.
//!
//! Flags: `--runs 500x500x1000,5000x1000x10000` (nodes x existing x measured), `--concurrency C` (32).

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{
    Container, Node, NodeCondition, NodeStatus, ObjectMeta, Pod, PodSpec, Quantity, ResourceRequirements,
};
use navarch_client::{Api, Client, ListParams, WatchEvent, WatchParams};
use navarch_tests::{ApiServer, ChildProcess, Etcd, binary};
use tokio::sync::Mutex;

fn node(name: String) -> Node {
    let q = |s: &str| Quantity::new(s);
    let res: std::collections::BTreeMap<String, Quantity> =
        [("cpu".to_string(), q("4")), ("memory".to_string(), q("32Gi")), ("pods".to_string(), q("110"))]
            .into();
    let mut n = Node {
        metadata: Some(ObjectMeta {
            labels: [("kubernetes.io/hostname".to_string(), name.clone())].into(),
            name,
            ..Default::default()
        }),
        status: Some(NodeStatus {
            capacity: res.clone(),
            allocatable: res,
            conditions: vec![NodeCondition {
                r#type: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    n.set_type_meta();
    n
}

fn pod(name: String, scheduler: &str) -> Pod {
    let mut p = Pod {
        metadata: Some(ObjectMeta { name, namespace: "default".into(), ..Default::default() }),
        spec: Some(PodSpec {
            scheduler_name: scheduler.into(),
            containers: vec![Container {
                name: "pause".into(),
                image: "registry.k8s.io/pause:3.10".into(),
                resources: Some(ResourceRequirements {
                    requests: [
                        ("cpu".to_string(), Quantity::new("100m")),
                        ("memory".to_string(), Quantity::new("500Mi")),
                    ]
                    .into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    p.set_type_meta();
    p
}

/// Creates `names` with `concurrency` workers; returns per-name create start times and the elapsed time.
async fn create_all(
    api: &Api<Pod>,
    names: Vec<String>,
    scheduler: &str,
    concurrency: usize,
) -> (HashMap<String, Instant>, Duration) {
    let names = Arc::new(names);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(Mutex::new(HashMap::new()));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (api, names, next, started, scheduler) =
            (api.clone(), names.clone(), next.clone(), started.clone(), scheduler.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(name) = names.get(i) else { break };
                started.lock().await.insert(name.clone(), Instant::now());
                api.create(&pod(name.clone(), &scheduler)).await.expect("create pod");
            }
        }));
    }
    for t in tasks {
        t.await.expect("creator");
    }
    let elapsed = t0.elapsed();
    let started = Arc::try_unwrap(started).expect("creators done").into_inner();
    (started, elapsed)
}

async fn run(nodes: usize, existing: usize, measured: usize, concurrency: usize) {
    println!("\n== {nodes} nodes, {existing} existing pods, {measured} measured pods (C={concurrency})");
    let etcd = Etcd::start().await;
    let server = ApiServer::start(&etcd).await;
    let client = Client::connect(&server.connection("admin")).await.expect("api-server");
    let node_api: Api<Node> = client.api("");
    let t = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (api, next) = (node_api.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= nodes {
                    break;
                }
                let n = node(format!("node-{i:05}"));
                let mut created = api.create(&n).await.expect("node");
                created.status = n.status.clone();
                api.update_status(&created).await.expect("node status");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!("registered {nodes} nodes in {:.1} s", t.elapsed().as_secs_f64());

    // The ceiling: plain creates of pods no scheduler takes, same api-server, same concurrency.
    let pods: Api<Pod> = client.api("default");
    let ceiling_n = measured.min(5000);
    let (_, ceiling_t) =
        create_all(&pods, (0..ceiling_n).map(|i| format!("ceiling-{i:06}")).collect(), "none", concurrency)
            .await;
    let ceiling = ceiling_n as f64 / ceiling_t.as_secs_f64();

    let scheduler = Command::new(binary("scheduler", "scheduler"))
        .arg(format!("--kubeconfig={}", server.kubeconfig_file("scheduler").display()))
        .arg("--leader-elect=false")
        .arg(format!("--http-listen=127.0.0.1:{}", navarch_tests::free_port()))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("starting the scheduler");
    let _scheduler = ChildProcess::new(scheduler);

    let count_bound = |items: &[Pod], prefix: &str| {
        items
            .iter()
            .filter(|p| p.meta().name.starts_with(prefix) && !p.spec.as_ref().unwrap().node_name.is_empty())
            .count()
    };
    create_all(&pods, (0..existing).map(|i| format!("existing-{i:06}")).collect(), "", concurrency).await;
    loop {
        let l = pods.list(&ListParams::default()).await.unwrap();
        if count_bound(&l.items, "existing-") >= existing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Measured: watch for bindings while creating.
    let rv = pods.list(&ListParams { limit: 1, ..Default::default() }).await.unwrap().resource_version;
    let mut stream =
        pods.watch(&WatchParams { resource_version: rv, ..Default::default() }).await.expect("watch");
    let bound_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let watcher = {
        let bound_at = bound_at.clone();
        tokio::spawn(async move {
            while let Some(Ok(ev)) = stream.next().await {
                if let WatchEvent::Modified(p) | WatchEvent::Added(p) = ev
                    && p.meta().name.starts_with("measured-")
                    && p.spec.as_ref().is_some_and(|s| !s.node_name.is_empty())
                {
                    let mut b = bound_at.lock().await;
                    b.entry(p.meta().name.clone()).or_insert_with(Instant::now);
                    if b.len() >= measured {
                        return;
                    }
                }
            }
        })
    };
    let t0 = Instant::now();
    let (started, _) =
        create_all(&pods, (0..measured).map(|i| format!("measured-{i:06}")).collect(), "", concurrency).await;
    let _ = tokio::time::timeout(Duration::from_secs(600), watcher).await;
    let bound = bound_at.lock().await;
    let last = bound.values().max().copied().unwrap_or(t0);
    let mut lat: Vec<Duration> =
        bound.iter().filter_map(|(n, b)| started.get(n).map(|s| b.duration_since(*s))).collect();
    lat.sort();
    let p = |q: f64| lat.get(((lat.len().max(1) - 1) as f64 * q) as usize).copied().unwrap_or_default();
    let rate = bound.len() as f64 / last.duration_since(t0).as_secs_f64();
    println!("{:<44} {:>10.0}", "api-server pod creates/s (ceiling)", ceiling);
    println!(
        "{:<44} {:>10.0}   ({:.0}% of the ceiling)",
        "scheduled pods/s (create → bound)",
        rate,
        100.0 * rate / ceiling
    );
    println!(
        "create-to-bound latency p50 {:.1} ms, p99 {:.1} ms; {} of {measured} bound",
        p(0.5).as_secs_f64() * 1000.0,
        p(0.99).as_secs_f64() * 1000.0,
        bound.len()
    );
}

#[tokio::main]
async fn main() {
    let mut runs = "500x500x1000,5000x1000x10000".to_string();
    let mut concurrency = 32;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--runs" => runs = it.next().expect("--runs value"),
            "--concurrency" => concurrency = it.next().and_then(|v| v.parse().ok()).expect("--concurrency N"),
            other => panic!("unknown flag {other}"),
        }
    }
    for r in runs.split(',') {
        let v: Vec<usize> = r.split('x').map(|x| x.parse().expect("NODESxEXISTINGxMEASURED")).collect();
        run(v[0], v[1], v[2], concurrency).await;
    }
}
