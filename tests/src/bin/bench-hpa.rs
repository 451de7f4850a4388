//! `make bench-hpa`: how fast the HorizontalPodAutoscaler reacts, on the running `make up` cluster, beside
//! what bounds it measured in the same run.
//!
//! The workload is `examples/hpa-php.yaml` (a page that costs CPU, requests cpu 100m) with `kubectl
//! autoscale --cpu-percent=50 --min=1 --max=5`. Measured:
//! - the **metrics period**: the interval between two successive samples of the php pod in
//!   `metrics.k8s.io` (the api-server's `--metric-resolution`);
//! - the **pod start time**: a pod of php's template created directly, create call to Ready (median of 3);
//! - the **reaction**: the load pod (`examples/hpa-load.yaml`) Running → the HPA raising the Deployment's
//!   replicas → the first new replica Ready.
//!
//! The reaction is bounded below by nothing and above by about one metrics period (the usage must be
//! sampled) plus one HPA sync period (15 s) plus the pod start time; the figures are printed side by side.
//! Needs the kubeconfig `make up` wrote (`$NAVARCH_HOME/kubeconfig`, default `.navarch/kubeconfig`) and
//! `kubectl` on the PATH.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use navarch_api::Object;
use navarch_api::v1::{Deployment, Namespace, Pod};
use navarch_client::{Api, Client, Connection, DeleteParams, ListParams};

const NS: &str = "bench-hpa";
const PHP: &str = include_str!("../../../examples/hpa-php.yaml");
const LOAD: &str = include_str!("../../../examples/hpa-load.yaml");

fn kubeconfig() -> PathBuf {
    std::env::var_os("NAVARCH_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| navarch_tests::workspace_root().join(".navarch"))
        .join("kubeconfig")
}

fn kubectl(args: &[&str], stdin: Option<&str>) -> String {
    let mut c = Command::new("kubectl");
    c.env("KUBECONFIG", kubeconfig()).args(args);
    let out = match stdin {
        None => c.output(),
        Some(text) => {
            let f = tempfile::NamedTempFile::new().expect("a temporary file");
            std::fs::write(f.path(), text).expect("write the manifest");
            c.args(["-f", f.path().to_str().expect("UTF-8 path")]).output()
        }
    }
    .expect("kubectl on the PATH");
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ready(p: &Pod) -> bool {
    p.metadata.as_ref().is_some_and(|m| m.deletion_timestamp.is_empty())
        && p.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
}

async fn wait_for<F, Fut>(what: &str, limit: Duration, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = Instant::now();
    while !f().await {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t.elapsed()
}

async fn fresh_namespace(c: &Client) {
    let namespaces: Api<Namespace> = c.api("");
    if namespaces.get_opt(NS).await.expect("get namespace").is_some() {
        namespaces.delete(NS, &DeleteParams::default()).await.expect("delete namespace");
        wait_for("the old namespace gone", Duration::from_secs(180), || async {
            namespaces.get_opt(NS).await.expect("get namespace").is_none()
        })
        .await;
    }
    kubectl(&["create", "namespace", NS], None);
    let accounts: Api<navarch_api::v1::ServiceAccount> = c.api(NS);
    wait_for("the default ServiceAccount", Duration::from_secs(30), || async {
        accounts.get_opt("default").await.expect("get serviceaccount").is_some()
    })
    .await;
}

/// The php pod's latest metrics sample time, if any.
async fn php_sample(c: &Client) -> Option<String> {
    let params = ListParams { namespace: NS.into(), label_selector: "app=php".into(), ..Default::default() };
    let list = c.list("PodMetrics", &params).await.ok()?;
    list.items.iter().find_map(|o| match o {
        Object::PodMetrics(m) => Some(m.timestamp.clone()),
        _ => None,
    })
}

/// Create to Ready of a pod of php's template, created directly.
async fn pod_start(c: &Client, i: usize) -> Duration {
    let deployment: Deployment =
        serde_yaml::from_str(PHP.split("\n---\n").nth(1).expect("the Deployment")).expect("php's Deployment");
    let template = deployment.spec.and_then(|s| s.template).expect("a template");
    let mut pod = Pod { metadata: template.metadata, spec: template.spec, ..Default::default() };
    let meta = pod.metadata.get_or_insert_with(Default::default);
    meta.name = format!("start-{i}");
    meta.labels.insert("app".into(), "start".into());
    let pods: Api<Pod> = c.api(NS);
    let t = Instant::now();
    pods.create(&pod).await.expect("create pod");
    wait_for("a directly created pod Ready", Duration::from_secs(120), || async {
        pods.get_opt(&format!("start-{i}")).await.ok().flatten().is_some_and(|p| ready(&p))
    })
    .await;
    let took = t.elapsed();
    pods.delete(&format!("start-{i}"), &DeleteParams::default()).await.expect("delete pod");
    took
}

#[tokio::main]
async fn main() {
    let (conn, _) = Connection::from_kubeconfig(&kubeconfig())
        .expect("the kubeconfig of make up (start a cluster with make up first)");
    let c = Client::connect(&conn).await.expect("the api-server of make up");
    println!("== HPA reaction on the make up cluster ({} cores)", num_cpus());
    fresh_namespace(&c).await;
    kubectl(&["apply", "-n", NS], Some(PHP));
    let pods: Api<Pod> = c.api(NS);
    let php = ListParams { label_selector: "app=php".into(), ..Default::default() };
    let ready_php =
        || async { pods.list(&php).await.map(|l| l.items.iter().filter(|p| ready(p)).count()).unwrap_or(0) };
    wait_for("php Ready", Duration::from_secs(120), || async { ready_php().await == 1 }).await;

    // The metrics period: two successive samples of the php pod.
    wait_for("php's first metrics", Duration::from_secs(90), || async { php_sample(&c).await.is_some() })
        .await;
    let first = php_sample(&c).await.expect("a sample");
    wait_for("php's next sample", Duration::from_secs(90), || async {
        php_sample(&c).await.is_some_and(|s| s != first)
    })
    .await;
    let second = php_sample(&c).await.expect("a sample");
    wait_for("php's third sample", Duration::from_secs(90), || async {
        php_sample(&c).await.is_some_and(|s| s != second)
    })
    .await;
    let third = php_sample(&c).await.expect("a sample");
    let period = |a: &str, b: &str| {
        let (a, b) =
            (humantime::parse_rfc3339(a).expect("RFC 3339"), humantime::parse_rfc3339(b).expect("RFC 3339"));
        b.duration_since(a).unwrap_or_default()
    };
    let metrics_period = period(&second, &third);

    let mut starts = Vec::new();
    for i in 0..3 {
        starts.push(pod_start(&c, i).await);
    }
    starts.sort();
    let pod_start = starts[1];

    kubectl(&["autoscale", "deployment", "php", "-n", NS, "--cpu-percent=50", "--min=1", "--max=5"], None);
    // The HPA has seen php idle before the load starts.
    wait_for("the HPA's first metric", Duration::from_secs(90), || async {
        !kubectl(
            &[
                "get",
                "hpa",
                "php",
                "-n",
                NS,
                "-o",
                "jsonpath={.status.currentMetrics[0].resource.current.averageUtilization}",
            ],
            None,
        )
        .is_empty()
    })
    .await;
    kubectl(&["apply", "-n", NS], Some(LOAD));
    wait_for("the load pod Running", Duration::from_secs(120), || async {
        pods.get_opt("load").await.ok().flatten().and_then(|p| p.status).is_some_and(|s| s.phase == "Running")
    })
    .await;
    let t0 = Instant::now();
    let deployments: Api<Deployment> = c.api(NS);
    let decided = wait_for("the HPA raising php's replicas", Duration::from_secs(300), || async {
        deployments.get("php").await.ok().and_then(|d| d.spec).and_then(|s| s.replicas).unwrap_or(1) > 1
    })
    .await;
    wait_for("a new php replica Ready", Duration::from_secs(300), || async { ready_php().await > 1 }).await;
    let reaction = t0.elapsed();
    let replicas =
        deployments.get("php").await.ok().and_then(|d| d.spec).and_then(|s| s.replicas).unwrap_or(0);

    println!("metrics period (two successive samples of php)       {:>7.1} s", metrics_period.as_secs_f64());
    println!("HPA sync period (controller-manager default)         {:>7.1} s", 15.0);
    println!(
        "pod start, create -> Ready (median of 3: {})    {:>7.1} s",
        starts.iter().map(|d| format!("{:.1}", d.as_secs_f64())).collect::<Vec<_>>().join(" / "),
        pod_start.as_secs_f64()
    );
    println!(
        "bound: metrics period + sync period + pod start      {:>7.1} s",
        metrics_period.as_secs_f64() + 15.0 + pod_start.as_secs_f64()
    );
    println!(
        "HPA reaction, load Running -> replicas raised         {:>7.1} s (to {replicas})",
        decided.as_secs_f64()
    );
    println!("HPA reaction, load Running -> first new replica Ready {:>7.1} s", reaction.as_secs_f64());

    let namespaces: Api<Namespace> = c.api("");
    namespaces.delete(NS, &DeleteParams::default()).await.expect("delete the namespace");
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
