//! ResourceQuota against a real etcd + api-server + controller-manager (+ scheduler for the Deployment), no
//! kubelets (the test plays the kubelet). The seeds' namespace quota (`requests.memory: 2Gi`, `pods: 10`):
//! the pod that would exceed it is refused with Kubernetes' message, a pod without requests is refused,
//! deleting pods frees quota, a Deployment above it shows `FailedCreate` and stays at what fits; 20
//! concurrent creates against `pods: 10` admit exactly 10; kill -9 of the api-server and the
//! controller-manager while creating: the quota converges and never ends over its hard limit; kubectl's
//! `get quota` and `describe quota`.

use std::collections::BTreeMap;
use std::time::Duration;

use navarch_api::v1::{Deployment, Event, Namespace, Node, Pod, ResourceQuota};
use navarch_client::{Api, Client, DeleteParams, ListParams};
use navarch_tests::{Daemon, Kubectl, TestEnv, eventually, play_kubelet, registered_node};

fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap()
}

async fn namespace(c: &Client, name: &str) {
    let ns: Namespace = from_yaml(&format!("{{metadata: {{name: {name}}}}}"));
    c.api::<Namespace>("").create(&ns).await.unwrap();
}

fn quota(name: &str, hard: &str) -> ResourceQuota {
    from_yaml(&format!("{{metadata: {{name: {name}}}, spec: {{hard: {{{hard}}}}}}}"))
}

/// A pod requesting `memory` (none: no resources at all).
fn pod(name: &str, memory: Option<&str>) -> Pod {
    let resources = memory.map(|m| format!(", resources: {{requests: {{memory: {m}}}}}")).unwrap_or_default();
    from_yaml(&format!(
        "{{metadata: {{name: {name}}}, spec: {{containers: [{{name: c, image: busybox:1.36{resources}}}]}}}}"
    ))
}

/// `status.used` as `name=value` pairs, once `status.hard` is `spec.hard`.
fn used(q: &ResourceQuota) -> Option<BTreeMap<String, String>> {
    let s = q.status.as_ref()?;
    (q.spec.as_ref().map(|s| &s.hard) == Some(&s.hard))
        .then(|| s.used.iter().map(|(k, v)| (k.clone(), v.string.clone())).collect())
}

/// Waits until the quota's `status.used` is `want` (`name=value,...`).
async fn used_becomes(quotas: &Api<ResourceQuota>, name: &str, want: &str) {
    let want: BTreeMap<String, String> =
        want.split(',').map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k.into(), v.into())).collect();
    eventually(format!("quota {name} used {want:?}"), Duration::from_secs(30), async || {
        let q = quotas.get(name).await.unwrap();
        let got = used(&q);
        if got.as_ref() == Some(&want) { Ok(()) } else { Err(format!("{:?}", q.status)) }
    })
    .await
}

fn refusal(e: navarch_client::Error) -> String {
    e.server_message()
}

#[tokio::test]
async fn the_seeds_namespace_quota() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    namespace(&c, "team").await;
    let pods: Api<Pod> = c.api("team");
    let quotas: Api<ResourceQuota> = c.api("team");
    c.api::<Node>("").create(&registered_node("n1")).await.unwrap();
    let _cm = Daemon::start(&env, "controller-manager", "controller-manager", &[]);

    // Validation as Kubernetes.
    let e = quotas.create(&quota("bad", "pods: '-1', storage: 1Gi")).await.unwrap_err().to_string();
    assert!(e.contains("spec.hard[pods]: Invalid value: \"-1\": must be greater than or equal to 0"), "{e}");
    assert!(
        e.contains("spec.hard[storage]: Invalid value: storage: must be a standard resource for quota"),
        "{e}"
    );

    quotas.create(&quota("compute", "requests.memory: 2Gi, pods: '10'")).await.unwrap();
    used_becomes(&quotas, "compute", "pods=0,requests.memory=0").await;

    // A pod without a memory request under a quota on requests.memory.
    let e = refusal(pods.create(&pod("bare", None)).await.unwrap_err());
    assert_eq!(e, "pods \"bare\" is forbidden: failed quota: compute: must specify requests.memory for: c");

    pods.create(&pod("a", Some("1Gi"))).await.unwrap();
    pods.create(&pod("b", Some("1Gi"))).await.unwrap();
    // Charged at admission: no wait for the controller.
    let q = quotas.get("compute").await.unwrap();
    assert_eq!(used(&q).unwrap()["requests.memory"], "2Gi");
    assert_eq!(used(&q).unwrap()["pods"], "2");

    // The pod that would exceed it: Kubernetes' message, over gRPC and as REST's 403.
    let e = refusal(pods.create(&pod("c", Some("1Gi"))).await.unwrap_err());
    let message = "pods \"c\" is forbidden: exceeded quota: compute, requested: requests.memory=1Gi, used: requests.memory=2Gi, limited: requests.memory=2Gi";
    assert_eq!(e, message);
    let body = serde_json::to_value(pod("c", Some("1Gi"))).unwrap();
    let (code, status) =
        env.rest().json("POST", "/api/v1/namespaces/team/pods", "application/json", Some(&body)).await;
    assert_eq!(
        (code, status["reason"].as_str(), status["message"].as_str()),
        (403, Some("Forbidden"), Some(message))
    );

    // kubectl's columns and description.
    let k = Kubectl::new(&env.api_server);
    let out = k.ok(&["get", "quota", "-n", "team"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("AGE") && lines[0].ends_with("LIMIT"), "{out}");
    assert!(
        lines[1].starts_with("compute") && lines[1].contains("pods: 2/10, requests.memory: 2Gi/2Gi"),
        "{out}"
    );
    let out = k.ok(&["describe", "quota", "compute", "-n", "team"]).await;
    assert!(
        out.contains("Name:            compute\nNamespace:       team\nResource         Used  Hard\n"),
        "{out}"
    );
    assert!(out.contains("pods             2     10\nrequests.memory  2Gi   2Gi\n"), "{out}");
    let (code, navctl, _) = env.navctl(&["describe", "quota", "compute", "-n", "team"]).await;
    assert_eq!((code, navctl.as_str()), (0, out.as_str()));
    // `kubectl create quota` (a Kubernetes protobuf body), then counted by the controller.
    k.ok(&["create", "quota", "objects", "--hard=services=1,count/deployments.apps=2", "-n", "team"]).await;
    used_becomes(&quotas, "objects", "count/deployments.apps=0,services=0").await;

    // Deleting pods frees quota: the controller lowers status.used.
    pods.delete("a", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.unwrap();
    used_becomes(&quotas, "compute", "pods=1,requests.memory=1Gi").await;
    pods.create(&pod("c", Some("1Gi"))).await.unwrap();
    for name in ["b", "c"] {
        pods.delete(name, &DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
            .await
            .unwrap();
    }
    used_becomes(&quotas, "compute", "pods=0,requests.memory=0").await;

    // A Deployment above the quota: FailedCreate events, and it stays at what fits (4 × 512Mi).
    let _scheduler = Daemon::start(&env, "scheduler", "scheduler", &[]);
    let _kubelet = play_kubelet(pods.clone());
    let d: Deployment = from_yaml(
        "{metadata: {name: web}, spec: {replicas: 5, selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: busybox:1.36, resources: {requests: {memory: 512Mi}}}]}}}}",
    );
    c.api::<Deployment>("team").create(&d).await.unwrap();
    let events: Api<Event> = c.api("team");
    let failed = eventually("a FailedCreate event", Duration::from_secs(30), async || {
        let l = events.list(&ListParams::default()).await.unwrap();
        l.items.into_iter().find(|e| e.reason == "FailedCreate").map(|e| e.message.clone()).ok_or("none yet")
    })
    .await;
    assert!(failed.starts_with("Error creating: pods \"web-"), "{failed}");
    assert!(
        failed.ends_with(" is forbidden: exceeded quota: compute, requested: requests.memory=512Mi, used: requests.memory=2Gi, limited: requests.memory=2Gi"),
        "{failed}"
    );
    let deployments: Api<Deployment> = c.api("team");
    eventually("4 available", Duration::from_secs(30), async || {
        let s = deployments.get("web").await.unwrap().status.unwrap_or_default();
        if s.available_replicas == 4 { Ok(()) } else { Err(format!("{s:?}")) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n = pods.list(&ListParams::default()).await.unwrap().items.len();
    assert_eq!(n, 4, "the Deployment stays at what fits");
    used_becomes(&quotas, "compute", "pods=4,requests.memory=2Gi").await;
}

/// Creates `n` pods at once; how many were admitted, and the refusals' messages.
async fn create_at_once(pods: &Api<Pod>, prefix: &str, n: usize) -> (usize, Vec<String>) {
    let creates = (0..n).map(|i| {
        let pods = pods.clone();
        let p = pod(&format!("{prefix}-{i}"), None);
        tokio::spawn(async move { pods.create(&p).await })
    });
    let results = futures::future::join_all(creates).await;
    let mut admitted = 0;
    let mut refused = Vec::new();
    for r in results {
        match r.unwrap() {
            Ok(_) => admitted += 1,
            Err(e) => refused.push(e.server_message()),
        }
    }
    (admitted, refused)
}

#[tokio::test]
async fn concurrent_creates_never_overshoot() {
    let mut env = TestEnv::start().await;
    let c = env.client().await;
    namespace(&c, "burst").await;
    let pods: Api<Pod> = c.api("burst");
    let quotas: Api<ResourceQuota> = c.api("burst");
    let mut cm = Daemon::start(&env, "controller-manager", "controller-manager", &[]);
    quotas.create(&quota("pods", "pods: '10'")).await.unwrap();
    // A second quota every pod create charges too (both swapped at once).
    quotas.create(&quota("objects", "count/pods: '12'")).await.unwrap();
    used_becomes(&quotas, "pods", "pods=0").await;
    used_becomes(&quotas, "objects", "count/pods=0").await;

    // 20 concurrent creates against pods: 10 — exactly 10 admitted.
    let (admitted, refused) = create_at_once(&pods, "p", 20).await;
    assert_eq!(admitted, 10, "{refused:?}");
    for m in &refused {
        assert!(
            m.ends_with(
                "is forbidden: exceeded quota: pods, requested: pods=1, used: pods=10, limited: pods=10"
            ),
            "{m}"
        );
    }
    assert_eq!(pods.list(&ListParams::default()).await.unwrap().items.len(), 10);
    used_becomes(&quotas, "pods", "pods=10").await;
    used_becomes(&quotas, "objects", "count/pods=10").await;
    // The controller agrees after a while too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    used_becomes(&quotas, "pods", "pods=10").await;

    // kill -9 of the api-server and of the controller-manager while creating: the quota converges to the
    // pods that exist, never over its hard limit.
    namespace(&c, "crash").await;
    let crash_quotas: Api<ResourceQuota> = c.api("crash");
    crash_quotas.create(&quota("pods", "pods: '15'")).await.unwrap();
    used_becomes(&crash_quotas, "pods", "pods=0").await;
    let crash_pods: Api<Pod> = c.api("crash");
    let burst = tokio::spawn({
        let crash_pods = crash_pods.clone();
        async move {
            for round in 0..6 {
                create_at_once(&crash_pods, &format!("r{round}"), 5).await;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    cm.kill9();
    env.api_server.kill9();
    env.api_server.restart().await;
    let _cm = Daemon::start(&env, "controller-manager", "controller-manager", &[]);
    burst.await.unwrap();
    let c = env.client().await;
    let crash_pods: Api<Pod> = c.api("crash");
    let crash_quotas: Api<ResourceQuota> = c.api("crash");
    let n = crash_pods.list(&ListParams::default()).await.unwrap().items.len();
    assert!(n <= 15, "{n} pods under a quota of 15");
    // More creates after the restart still stop at the limit.
    let (admitted, _) = create_at_once(&crash_pods, "after", 20).await;
    let n = crash_pods.list(&ListParams::default()).await.unwrap().items.len();
    assert!(n <= 15 && admitted <= 15, "{n} pods under a quota of 15");
    used_becomes(&crash_quotas, "pods", &format!("pods={n}")).await;
}
