//! Scenario 19: the seeds' namespace limit — ResourceQuota and LimitRange, as a user sharing a cluster
//! between teams meets them.
//!
//! - A namespace with a quota `requests.memory: 2Gi, pods: 10`: pods fit until the one that would exceed it,
//!   refused with Kubernetes' message; a pod without a memory request refused; deleting pods frees quota; a
//!   Deployment above the quota shows `FailedCreate` events and stays at what fits; `kubectl get quota` and
//!   `describe quota` show used/hard.
//! - 20 concurrent creates against `pods: 10`: exactly 10 admitted.
//! - A LimitRange fills in defaults in the stored pod spec, and refuses a container above its max.
//! - kill -9 of the api-server and of the controller-manager while a Deployment pushes against the quota:
//!   `status.used` converges to what is stored and never ends over `hard`.

use std::time::{Duration, Instant};

use navarch_tests::eventually_blocking;

use super::commands::fresh_namespace;
use super::{allow, cluster, kubectl, kubectl_try, secs};

const NS: &str = "e2e-quota";

/// `kubectl create -f` of `yaml` in the namespace `e2e-quota`: Kubernetes' error text on refusal.
fn in_ns(yaml: &str) -> Result<String, String> {
    let f = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(f.path(), yaml).expect("write the manifest");
    kubectl_try(&["create", "-n", NS, "-f", f.path().to_str().expect("a UTF-8 path")])
}

fn pod(name: &str, memory: Option<&str>) -> String {
    let resources = memory.map(|m| format!(", resources: {{requests: {{memory: {m}}}}}")).unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 0\n  \
         containers:\n  - {{name: c, image: 'busybox:1.36', command: [sleep, '36000']{resources}}}\n"
    )
}

fn used(quota: &str, resource: &str) -> String {
    let path = format!("jsonpath={{.status.used.{}}}", resource.replace('.', "\\."));
    kubectl_try(&["get", "quota", quota, "-n", NS, "-o", &path]).unwrap_or_default()
}

fn count_pods(selector: &str) -> usize {
    kubectl_try(&["get", "pods", "-n", NS, "-l", selector, "-o", "name"]).unwrap_or_default().lines().count()
}

pub(crate) fn scenario_19_quota() {
    println!("[19] namespace limits: ResourceQuota and LimitRange");
    fresh_namespace(NS);
    memory_quota();
    concurrent_creates();
    limit_range();
    kill_while_pushing();
    kubectl(&["delete", "namespace", NS, "--wait=false"]);
}

fn memory_quota() {
    in_ns("apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: compute}\nspec:\n  hard: {requests.memory: 2Gi, pods: '10'}\n")
        .expect("quota");
    eventually_blocking("the quota's status", allow(30), || used("compute", "pods") == "0");
    let refused = in_ns(&pod("no-request", None)).expect_err("a pod without a memory request");
    assert!(
        refused.contains(
            "pods \"no-request\" is forbidden: failed quota: compute: must specify requests.memory"
        ),
        "{refused}"
    );
    in_ns(&pod("big-1", Some("1Gi"))).expect("1Gi of 2Gi");
    in_ns(&pod("big-2", Some("768Mi"))).expect("1.75Gi of 2Gi");
    let refused = in_ns(&pod("big-3", Some("512Mi"))).expect_err("over the quota");
    assert!(
        refused.contains(
            "pods \"big-3\" is forbidden: exceeded quota: compute, requested: requests.memory=512Mi, used: \
             requests.memory=1792Mi, limited: requests.memory=2Gi"
        ),
        "{refused}"
    );
    let table = kubectl(&["get", "quota", "compute", "-n", NS]);
    assert!(table.contains("pods: 2/10") && table.contains("requests.memory: 1792Mi/2Gi"), "{table}");
    let described = kubectl(&["describe", "quota", "compute", "-n", NS]);
    assert!(
        described.contains("Resource") && described.contains("Used") && described.contains("Hard"),
        "{described}"
    );
    // Deleting a pod frees its share.
    kubectl(&["delete", "pod", "big-1", "-n", NS, "--wait=false"]);
    eventually_blocking("big-1's memory freed", allow(60), || used("compute", "requests.memory") == "768Mi");
    in_ns(&pod("big-3", Some("512Mi"))).expect("fits once big-1 is gone");
    // A Deployment above the quota: FailedCreate, and it stays at what fits (768Mi left: 3 x 256Mi).
    in_ns(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: many}\nspec:\n  replicas: 5\n  selector: {matchLabels: {app: many}}\n  template:\n    metadata: {labels: {app: many}}\n    spec:\n      terminationGracePeriodSeconds: 0\n      containers:\n      - {name: c, image: 'busybox:1.36', command: [sleep, '36000'], resources: {requests: {memory: 256Mi}}}\n",
    )
    .expect("deployment");
    eventually_blocking("3 of many's 5 pods fit", allow(90), || {
        kubectl_try(&["get", "deployment", "many", "-n", NS, "-o", "jsonpath={.status.availableReplicas}"])
            .is_ok_and(|a| a == "3")
    });
    let events = kubectl(&["get", "events", "-n", NS, "--field-selector", "reason=FailedCreate"]);
    assert!(events.contains("exceeded quota: compute"), "FailedCreate events:\n{events}");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(count_pods("app=many"), 3, "never more pods than fit");
    assert_eq!(used("compute", "requests.memory"), "2Gi");
    println!(
        "    quota requests.memory 2Gi: refusals as Kubernetes', a Deployment held at 3 of 5 by FailedCreate"
    );
    kubectl(&["delete", "deployment", "many", "-n", NS]);
    for p in ["big-2", "big-3"] {
        kubectl(&["delete", "pod", p, "-n", NS, "--wait=false"]);
    }
    eventually_blocking("the namespace's pods gone", allow(90), || count_pods("!none") == 0);
    kubectl(&["delete", "quota", "compute", "-n", NS]);
}

fn concurrent_creates() {
    in_ns("apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: ten}\nspec:\n  hard: {pods: '10'}\n")
        .expect("quota");
    eventually_blocking("the quota's status", allow(30), || used("ten", "pods") == "0");
    let t = Instant::now();
    let handles: Vec<_> = (0..20)
        .map(|i| std::thread::spawn(move || in_ns(&pod(&format!("race-{i:02}"), None)).is_ok()))
        .collect();
    let admitted = handles.into_iter().map(|h| h.join().expect("thread")).filter(|ok| *ok).count();
    assert_eq!(admitted, 10, "20 concurrent creates against pods: 10");
    assert_eq!(kubectl(&["get", "pods", "-n", NS, "-o", "name"]).lines().count(), 10);
    eventually_blocking("used pods 10", allow(30), || used("ten", "pods") == "10");
    println!("    20 concurrent creates against pods: 10 -> exactly 10 admitted ({})", secs(t.elapsed()));
    kubectl(&["delete", "pods", "--all", "-n", NS, "--wait=false"]);
    eventually_blocking("the race's pods gone", allow(90), || count_pods("!none") == 0);
    kubectl(&["delete", "quota", "ten", "-n", NS]);
}

fn limit_range() {
    in_ns(
        "apiVersion: v1\nkind: LimitRange\nmetadata: {name: limits}\nspec:\n  limits:\n  - type: Container\n    default: {cpu: 300m, memory: 128Mi}\n    defaultRequest: {cpu: 100m, memory: 64Mi}\n    max: {cpu: '1', memory: 512Mi}\n",
    )
    .expect("limit range");
    let get = |path: &str| {
        let path = format!("jsonpath={{.spec.containers[0].resources.{path}}}");
        kubectl_try(&["get", "pod", "plain", "-n", NS, "-o", &path]).unwrap_or_default()
    };
    // The api-server's LimitRange store catches up within moments.
    eventually_blocking("defaults filled in", allow(30), || {
        let _ = kubectl_try(&["delete", "pod", "plain", "-n", NS, "--wait=false"]);
        in_ns(&pod("plain", None)).is_ok() && get("limits.cpu") == "300m"
    });
    assert_eq!(
        (get("requests.cpu"), get("requests.memory"), get("limits.memory")),
        ("100m".into(), "64Mi".into(), "128Mi".into())
    );
    let annotation = kubectl(&[
        "get",
        "pod",
        "plain",
        "-n",
        NS,
        "-o",
        "jsonpath={.metadata.annotations.kubernetes\\.io/limit-ranger}",
    ]);
    assert!(annotation.starts_with("LimitRanger plugin set: "), "{annotation}");
    let big = pod("huge", None).replace("name: c,", "name: c, resources: {limits: {cpu: '2'}},");
    let refused = in_ns(&big).expect_err("above the max");
    assert!(
        refused.contains("pods \"huge\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"),
        "{refused}"
    );
    println!(
        "    LimitRange: defaults in the stored pod spec (+ the limit-ranger annotation); 2 cpu refused over max 1"
    );
    kubectl(&["delete", "pod", "plain", "-n", NS, "--wait=false"]);
    kubectl(&["delete", "limitrange", "limits", "-n", NS]);
    eventually_blocking("plain gone", allow(60), || count_pods("!none") == 0);
}

fn kill_while_pushing() {
    in_ns("apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: six}\nspec:\n  hard: {pods: '6'}\n")
        .expect("quota");
    eventually_blocking("the quota's status", allow(30), || used("six", "pods") == "0");
    in_ns(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: push}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: push}}\n  template:\n    metadata: {labels: {app: push}}\n    spec:\n      terminationGracePeriodSeconds: 0\n      containers:\n      - {name: c, image: 'busybox:1.36', command: [sleep, '36000']}\n",
    )
    .expect("deployment");
    let t = Instant::now();
    kubectl(&["scale", "deployment", "push", "-n", NS, "--replicas=10"]);
    for comp in ["api-server", "controller-manager"] {
        std::thread::sleep(Duration::from_millis(300));
        cluster("kill", &[("C", comp)]);
        std::thread::sleep(Duration::from_secs(1));
        cluster("up", &[]);
    }
    eventually_blocking("6 of push's 10 pods, quota used 6", allow(180), || {
        count_pods("app=push") == 6 && used("six", "pods") == "6"
    });
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(count_pods("app=push"), 6, "never over the quota");
    let hard = kubectl(&["get", "quota", "six", "-n", NS, "-o", "jsonpath={.status.hard.pods}"]);
    assert_eq!((used("six", "pods"), hard), ("6".into(), "6".into()));
    println!(
        "    kill -9 of the api-server and the controller-manager while pushing 10 pods into pods: 6 -> 6, used 6/6 \
         after {}",
        secs(t.elapsed())
    );
}
