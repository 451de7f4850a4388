//! `make bench-scheduler`: the five workload shapes of kube-scheduler's own benchmark (scheduler_perf's
//! SchedulingBasic, SchedulingNodeAffinity, SchedulingPodAntiAffinity, TopologySpreading and
//! SchedulingPodAffinity, with their node and pod templates and their 5000Nodes or 500Nodes counts),
//! through the real api-server and etcd. Per shape: register fake nodes (4 cpu / 32Gi / 110 pods, no
//! kubelets; zones as node labels where the shape has them), measure the api-server's raw pod create
//! rate (pods no scheduler takes: the ceiling, since each scheduled pod costs a create and a bind),
//! start the scheduler, create the existing pods and wait for them to be bound, then create the measured
//! pods and time each from its create to its binding as seen by a watch.
//!
//! Flags: `--shapes basic,node-affinity,pod-anti-affinity,topology-spreading,pod-affinity` (all),
//! `--nodes 5000|500` (5000: scheduler_perf's 5000Nodes counts; 500: its 500Nodes counts),
//! `--concurrency C` (32 creators).

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use navarch_api::v1::{Namespace, Node, ObjectMeta, Pod};
use navarch_api::{Object, Resource, manifest};
use navarch_client::{Api, Client, ListParams, WatchEvent, WatchParams};
use navarch_tests::{ApiServer, ChildProcess, Etcd, binary};
use tokio::sync::Mutex;

const ZONE: &str = "topology.kubernetes.io/zone";

/// The pod templates of scheduler_perf (config/pod-*.yaml), as navarch builds them.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Template {
    /// pod-default.yaml: one container requesting 100m / 500Mi.
    Default,
    /// pod-with-node-affinity.yaml: required node affinity zone in (zone1, zone2).
    NodeAffinity,
    /// pod-with-pod-anti-affinity.yaml: `color: green`, required anti-affinity to green pods on hostname.
    PodAntiAffinity,
    /// pod-with-pod-affinity.yaml: `color: blue`, required affinity to blue pods on zone.
    PodAffinity,
    /// pod-with-topology-spreading.yaml: `color: blue`, maxSkew 5 over zones, DoNotSchedule.
    TopologySpreading,
}

impl Template {
    /// The pod's labels and the part of its spec beside the container, as YAML. The affinity
    /// templates name the namespaces the benchmark creates its pods in.
    fn parts(self) -> (&'static str, String) {
        let term = |kind: &str, color: &str, key: &str| {
            format!(
                "  affinity:\n    {kind}:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {{matchLabels: {{color: {color}}}}}\n        topologyKey: {key}\n        namespaces: [sched-0, sched-1]\n"
            )
        };
        match self {
            Template::Default => ("{}", String::new()),
            Template::NodeAffinity => (
                "{}",
                "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions:\n          - {key: topology.kubernetes.io/zone, operator: In, values: [zone1, zone2]}\n".into(),
            ),
            Template::PodAntiAffinity => ("{color: green}", term("podAntiAffinity", "green", "kubernetes.io/hostname")),
            Template::PodAffinity => ("{color: blue}", term("podAffinity", "blue", ZONE)),
            Template::TopologySpreading => (
                "{color: blue}",
                "  topologySpreadConstraints:\n  - maxSkew: 5\n    topologyKey: topology.kubernetes.io/zone\n    whenUnsatisfiable: DoNotSchedule\n    labelSelector: {matchLabels: {color: blue}}\n".into(),
            ),
        }
    }

    fn pod(self, namespace: &str, name: &str, scheduler: &str) -> Pod {
        let (labels, extra) = self.parts();
        let scheduler =
            if scheduler.is_empty() { String::new() } else { format!("  schedulerName: {scheduler}\n") };
        let y = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {namespace}, labels: {labels}}}\nspec:\n{scheduler}{extra}  containers:\n  - name: pause\n    image: registry.k8s.io/pause:3.10\n    ports: [{{containerPort: 80}}]\n    resources:\n      limits: {{cpu: 100m, memory: 500Mi}}\n      requests: {{cpu: 100m, memory: 500Mi}}\n"
        );
        match manifest::parse(&y, "pod template").expect("pod template").remove(0) {
            Object::Pod(p) => p,
            _ => unreachable!("a Pod manifest"),
        }
    }
}

/// One scheduler_perf workload.
struct Shape {
    name: &'static str,
    /// kube-scheduler's rate on this shape at 5,000 nodes on our machines (the figures, upper
    /// end), pods/s.
    kube_scheduler: f64,
    /// Zone labels given to the nodes round robin (none: no zone label).
    zones: &'static [&'static str],
    existing: (usize, Template, &'static str),
    measured: (usize, Template, &'static str),
}

fn shapes(nodes: usize) -> Vec<Shape> {
    // (5000Nodes, 500Nodes) counts of performance-config.yaml.
    let n = |big: usize, small: usize| if nodes >= 5000 { big } else { small };
    vec![
        Shape {
            name: "basic",
            kube_scheduler: 140.0,
            zones: &[],
            existing: (n(1000, 500), Template::Default, "sched-0"),
            measured: (n(1000, 1000), Template::Default, "sched-0"),
        },
        Shape {
            name: "node-affinity",
            kube_scheduler: 76.0,
            zones: &["zone1"],
            existing: (n(5000, 500), Template::NodeAffinity, "sched-0"),
            measured: (n(1000, 1000), Template::NodeAffinity, "sched-0"),
        },
        Shape {
            name: "pod-anti-affinity",
            kube_scheduler: 49.0,
            zones: &[],
            existing: (n(1000, 100), Template::PodAntiAffinity, "sched-0"),
            measured: (n(1000, 400), Template::PodAntiAffinity, "sched-1"),
        },
        Shape {
            name: "topology-spreading",
            kube_scheduler: 45.0,
            zones: &["moon-1", "moon-2", "moon-3"],
            existing: (n(5000, 1000), Template::Default, "sched-0"),
            measured: (n(2000, 1000), Template::TopologySpreading, "sched-0"),
        },
        Shape {
            name: "pod-affinity",
            kube_scheduler: 27.0,
            zones: &["zone1"],
            existing: (n(5000, 500), Template::PodAffinity, "sched-0"),
            measured: (n(1000, 1000), Template::PodAffinity, "sched-1"),
        },
    ]
}

fn node(name: String, zone: Option<&str>) -> Node {
    let zone = zone.map(|z| format!(", {ZONE}: {z}")).unwrap_or_default();
    let y = format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {{kubernetes.io/hostname: {name}{zone}}}}}\nstatus:\n  capacity: {{cpu: '4', memory: 32Gi, pods: '110'}}\n  allocatable: {{cpu: '4', memory: 32Gi, pods: '110'}}\n  conditions: [{{type: Ready, status: 'True'}}]\n"
    );
    match manifest::parse(&y, "node template").expect("node template").remove(0) {
        Object::Node(n) => n,
        _ => unreachable!("a Node manifest"),
    }
}

/// Runs `job(i)` for i in 0..n on `concurrency` workers.
async fn in_parallel<F, Fut>(n: usize, concurrency: usize, job: F)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, job) = (next.clone(), job.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                job(i).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
}

/// Creates `count` pods `<prefix>-<i>` from `template`; returns their create start times and the
/// elapsed time.
async fn create_pods(
    client: &Client,
    (count, template, namespace): (usize, Template, &str),
    prefix: &str,
    scheduler: &str,
    concurrency: usize,
) -> (HashMap<String, Instant>, Duration) {
    let api: Api<Pod> = client.api(namespace);
    let started = Arc::new(Mutex::new(HashMap::new()));
    let t0 = Instant::now();
    let (prefix, scheduler, ns) = (prefix.to_string(), scheduler.to_string(), namespace.to_string());
    let s = started.clone();
    in_parallel(count, concurrency, move |i| {
        let (api, started, prefix, scheduler, ns) =
            (api.clone(), s.clone(), prefix.clone(), scheduler.clone(), ns.clone());
        async move {
            let name = format!("{prefix}-{i:06}");
            let pod = template.pod(&ns, &name, &scheduler);
            started.lock().await.insert(name, Instant::now());
            api.create(&pod).await.expect("create pod");
        }
    })
    .await;
    let elapsed = t0.elapsed();
    let started = std::mem::take(&mut *started.lock().await);
    (started, elapsed)
}

/// What one shape measured.
struct Outcome {
    rate: f64,
    ceiling: f64,
    p50: Duration,
    p99: Duration,
    bound: usize,
}

async fn run(shape: &Shape, nodes: usize, concurrency: usize) -> Outcome {
    println!(
        "\n== {}: {nodes} nodes, {} existing pods, {} measured pods (C={concurrency})",
        shape.name, shape.existing.0, shape.measured.0
    );
    let etcd = Etcd::start().await;
    let server = ApiServer::start(&etcd).await;
    let client = Client::connect(&server.connection("admin")).await.expect("api-server");
    for ns in ["sched-0", "sched-1", "ceiling"] {
        let n = Namespace {
            metadata: Some(ObjectMeta { name: ns.into(), ..Default::default() }),
            ..Default::default()
        };
        client.api::<Namespace>("").create(&n).await.expect("namespace");
    }
    let t = Instant::now();
    let node_api: Api<Node> = client.api("");
    let zones = shape.zones;
    in_parallel(nodes, concurrency, move |i| {
        let api = node_api.clone();
        async move {
            let n = node(format!("node-{i:05}"), (!zones.is_empty()).then(|| zones[i % zones.len()]));
            let mut created = api.create(&n).await.expect("node");
            created.status = n.status.clone();
            api.update_status(&created).await.expect("node status");
        }
    })
    .await;
    println!("registered {nodes} nodes in {:.1} s", t.elapsed().as_secs_f64());

    // The ceiling: plain creates of the measured template that no scheduler takes.
    let ceiling_spec = (shape.measured.0, shape.measured.1, "ceiling");
    let (_, ceiling_t) = create_pods(&client, ceiling_spec, "ceiling", "none", concurrency).await;
    let ceiling = shape.measured.0 as f64 / ceiling_t.as_secs_f64();
    println!("create ceiling measured: {ceiling:.0}/s");

    let scheduler = Command::new(binary("scheduler", "scheduler"))
        .arg(format!("--kubeconfig={}", server.kubeconfig_file("scheduler").display()))
        .arg("--leader-elect=false")
        .arg(format!("--http-listen=127.0.0.1:{}", navarch_tests::free_port()))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("starting the scheduler");
    let _scheduler = ChildProcess::new(scheduler);

    let pods: Api<Pod> = client.api("");
    let bound_count = |items: &[Pod], prefix: &str| {
        items
            .iter()
            .filter(|p| {
                p.meta().name.starts_with(prefix) && p.spec.as_ref().is_some_and(|s| !s.node_name.is_empty())
            })
            .count()
    };
    create_pods(&client, shape.existing, "existing", "", concurrency).await;
    let waited = Instant::now();
    loop {
        let l = pods.list(&ListParams::default()).await.expect("list pods");
        let n = bound_count(&l.items, "existing-");
        if n >= shape.existing.0 {
            break;
        }
        assert!(waited.elapsed() < Duration::from_secs(600), "only {n} existing pods bound after 10 minutes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Measured: watch for bindings while creating.
    let rv = pods.list(&ListParams { limit: 1, ..Default::default() }).await.expect("list").resource_version;
    let mut stream =
        pods.watch(&WatchParams { resource_version: rv, ..Default::default() }).await.expect("watch");
    let bound_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let measured = shape.measured.0;
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
    println!("existing pods bound; creating the measured pods");
    let t0 = Instant::now();
    let (started, _) = create_pods(&client, shape.measured, "measured", "", concurrency).await;
    let _ = tokio::time::timeout(Duration::from_secs(600), watcher).await;
    let bound = bound_at.lock().await;
    let last = bound.values().max().copied().unwrap_or(t0);
    let mut lat: Vec<Duration> =
        bound.iter().filter_map(|(n, b)| started.get(n).map(|s| b.duration_since(*s))).collect();
    lat.sort();
    let outcome = Outcome {
        rate: bound.len() as f64 / last.duration_since(t0).as_secs_f64(),
        ceiling,
        p50: navarch_tests::percentile(&lat, 0.5),
        p99: navarch_tests::percentile(&lat, 0.99),
        bound: bound.len(),
    };
    println!(
        "{}: {:.0} pods/s ({:.0}% of the {:.0}/s create ceiling), create-to-bound p50 {:.0} ms p99 {:.0} ms, {} of {measured} bound",
        shape.name,
        outcome.rate,
        100.0 * outcome.rate / outcome.ceiling,
        outcome.ceiling,
        ms(outcome.p50),
        ms(outcome.p99),
        outcome.bound
    );
    outcome
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let mut wanted: Option<Vec<String>> = None;
    let mut nodes = 5000;
    let mut concurrency = 32;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--shapes" => {
                wanted = Some(it.next().expect("--shapes a,b").split(',').map(String::from).collect())
            }
            "--nodes" => nodes = it.next().and_then(|v| v.parse().ok()).expect("--nodes N"),
            "--concurrency" => concurrency = it.next().and_then(|v| v.parse().ok()).expect("--concurrency N"),
            other => panic!("unknown flag {other} (flags: --shapes, --nodes, --concurrency)"),
        }
    }
    let all = shapes(nodes);
    if let Some(w) = &wanted
        && let Some(bad) = w.iter().find(|w| !all.iter().any(|s| s.name == w.as_str()))
    {
        panic!("unknown shape {bad}; shapes: {}", all.iter().map(|s| s.name).collect::<Vec<_>>().join(","));
    }
    let mut results: BTreeMap<usize, (&Shape, Outcome)> = BTreeMap::new();
    for (i, shape) in all.iter().enumerate() {
        if wanted.as_ref().is_some_and(|w| !w.iter().any(|n| n == shape.name)) {
            continue;
        }
        results.insert(i, (shape, run(shape, nodes, concurrency).await));
    }
    println!("\n{nodes} nodes, C={concurrency}");
    println!(
        "{:<20} {:>9} {:>9} {:>8} {:>8} {:>10} {:>9} {:>15} {:>7}",
        "shape", "measured", "pods/s", "p50 ms", "p99 ms", "ceiling/s", "%ceiling", "kube-scheduler", "×kube"
    );
    for (shape, o) in results.values() {
        println!(
            "{:<20} {:>9} {:>9.0} {:>8.0} {:>8.0} {:>10.0} {:>8.0}% {:>15.0} {:>6.1}×",
            shape.name,
            shape.measured.0,
            o.rate,
            ms(o.p50),
            ms(o.p99),
            o.ceiling,
            100.0 * o.rate / o.ceiling,
            shape.kube_scheduler,
            o.rate / shape.kube_scheduler
        );
    }
}
