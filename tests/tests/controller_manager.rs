//! The controller-manager binary against a real api-server and etcd (no kubelets: the test plays the
//! kubelet by writing pod status where readiness matters).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use navarch_api::Resource;
use navarch_api::v1::{Pod, PodCondition, ReplicaSet};
use navarch_client::{Api, DeleteParams, ListParams};
use navarch_tests::{TestEnv, binary};

struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_controller_manager(env: &TestEnv) -> Daemon {
    let child = Command::new(binary("controller-manager", "controller-manager"))
        .arg(format!("--server={}", env.api_server_addr()))
        .arg(format!("--http-listen=127.0.0.1:{}", navarch_tests::free_port()))
        .env("RUST_LOG", std::env::var("NAVARCH_TEST_LOG").unwrap_or_else(|_| "info".into()))
        .stdin(Stdio::null())
        .spawn()
        .expect("starting the controller-manager");
    Daemon(child)
}

fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap()
}

/// Active pods with the label app=web.
async fn web_pods(pods: &Api<Pod>) -> Vec<Pod> {
    let p = ListParams { label_selector: "app=web".into(), ..Default::default() };
    pods.list(&p)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.meta().deletion_timestamp.is_empty())
        .collect()
}

async fn settle_at(pods: &Api<Pod>, n: usize) -> Vec<Pod> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let l = web_pods(pods).await;
        if l.len() == n {
            break l;
        }
        let names: Vec<String> = l.iter().map(|p| p.meta().name.clone()).collect();
        assert!(Instant::now() < deadline, "wanted {n} pods, have {names:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // And it stays there (no late duplicates).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = web_pods(pods).await;
    assert_eq!(
        again.len(),
        n,
        "pod count moved after settling: {:?}",
        again.iter().map(|p| p.meta().name.clone()).collect::<Vec<_>>()
    );
    got
}

fn rs_yaml(replicas: i32) -> String {
    format!(
        "{{metadata: {{name: web}}, spec: {{replicas: {replicas}, selector: {{matchLabels: {{app: web}}}}, template: {{metadata: {{labels: {{app: web}}}}, spec: {{containers: [{{name: c, image: busybox:1.36}}]}}}}}}}}"
    )
}

#[tokio::test]
async fn replicaset_converges_adopts_scales_and_survives_a_restart() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let sets: Api<ReplicaSet> = c.api("default");
    // An orphan that matches is adopted rather than duplicated.
    pods.create(&from_yaml("{metadata: {name: orphan, labels: {app: web}}, spec: {containers: [{name: c, image: busybox:1.36}]}}")).await.unwrap();
    let mut cm = start_controller_manager(&env);
    let rs = sets.create(&from_yaml(&rs_yaml(3))).await.unwrap();
    let three = settle_at(&pods, 3).await;
    for p in &three {
        let owner = p.meta().owner_references.iter().find(|r| r.controller == Some(true)).expect("owned");
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("ReplicaSet", rs.meta().uid.as_str()));
    }
    assert!(three.iter().any(|p| p.meta().name == "orphan"), "the orphan was adopted");
    assert!(three.iter().filter(|p| p.meta().name != "orphan").all(|p| p.meta().name.starts_with("web-")));

    // A pod deleted by hand is replaced.
    let victim = three.iter().find(|p| p.meta().name != "orphan").unwrap().meta().name.clone();
    pods.delete(&victim, &DeleteParams::default()).await.unwrap();
    let after = settle_at(&pods, 3).await;
    assert!(after.iter().all(|p| p.meta().name != victim));

    // Scaling down removes the surplus; status follows, readiness included (the test plays the kubelet).
    let mut cur = sets.get("web").await.unwrap();
    cur.spec.as_mut().unwrap().replicas = Some(1);
    sets.update(&cur).await.unwrap();
    let one = settle_at(&pods, 1).await;
    let mut p = one[0].clone();
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    p.status.get_or_insert_with(Default::default).phase = "Running".into();
    p.status.as_mut().unwrap().conditions = vec![PodCondition {
        r#type: "Ready".into(),
        status: "True".into(),
        last_transition_time: now,
        ..Default::default()
    }];
    pods.update_status(&p).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = sets.get("web").await.unwrap();
        let st = s.status.clone().unwrap_or_default();
        if st.replicas == 1
            && st.ready_replicas == 1
            && st.available_replicas == 1
            && st.observed_generation == s.meta().generation
        {
            break;
        }
        assert!(Instant::now() < deadline, "status {st:?} at generation {}", s.meta().generation);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A pod whose labels stop matching is released (and replaced).
    let mut p = pods.get(&one[0].meta().name).await.unwrap();
    p.meta_mut().labels.insert("app".into(), "debug".into());
    pods.update(&p).await.unwrap();
    let replaced = settle_at(&pods, 1).await;
    assert_ne!(replaced[0].meta().name, p.meta().name);
    let released = pods.get(&p.meta().name).await.unwrap();
    assert!(released.meta().owner_references.is_empty(), "released pod keeps no owner");

    // Killed and restarted, it picks up where it was: scale to 4 gives exactly 4.
    drop(cm);
    let mut cur = sets.get("web").await.unwrap();
    cur.spec.as_mut().unwrap().replicas = Some(4);
    sets.update(&cur).await.unwrap();
    cm = start_controller_manager(&env);
    settle_at(&pods, 4).await;
    drop(cm);
}

async fn pods_of(pods: &Api<Pod>, app: &str) -> Vec<Pod> {
    let p = ListParams { label_selector: format!("app={app}"), ..Default::default() };
    pods.list(&p).await.unwrap().items
}

async fn wait_until(what: &str, secs: u64, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn deletion_propagation_background_foreground_orphan() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let sets: Api<ReplicaSet> = c.api("default");
    let _cm = start_controller_manager(&env);
    for app in ["bg", "fg", "orphaned"] {
        sets.create(&from_yaml(&format!(
            "{{metadata: {{name: {app}}}, spec: {{replicas: 2, selector: {{matchLabels: {{app: {app}}}}}, template: {{metadata: {{labels: {{app: {app}}}}}, spec: {{containers: [{{name: c, image: busybox:1.36}}]}}}}}}}}"
        )))
        .await
        .unwrap();
    }
    for app in ["bg", "fg", "orphaned"] {
        wait_until(&format!("2 {app} pods"), 30, async || pods_of(&pods, app).await.len() == 2).await;
    }

    // Background (the default): the owner goes at once, its pods shortly after.
    sets.delete("bg", &DeleteParams::default()).await.unwrap();
    assert!(sets.get_opt("bg").await.unwrap().is_none());
    wait_until("bg pods collected", 30, async || pods_of(&pods, "bg").await.is_empty()).await;

    // Foreground: the owner stays (deleting) until its pods are gone.
    let fg = DeleteParams { propagation_policy: "Foreground".into(), ..Default::default() };
    let d = sets.delete("fg", &fg).await.unwrap();
    assert!(d.pending, "foreground deletion waits for the dependents");
    wait_until("fg pods and owner gone", 30, async || {
        pods_of(&pods, "fg").await.is_empty() && sets.get_opt("fg").await.unwrap().is_none()
    })
    .await;

    // Orphan: the owner goes, the pods stay, without an owner.
    let orphan = DeleteParams { propagation_policy: "Orphan".into(), ..Default::default() };
    sets.delete("orphaned", &orphan).await.unwrap();
    wait_until("orphaned owner gone", 30, async || sets.get_opt("orphaned").await.unwrap().is_none()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let left = pods_of(&pods, "orphaned").await;
    assert_eq!(left.len(), 2, "orphaned pods stay");
    assert!(left.iter().all(|p| p.meta().owner_references.is_empty()), "and have no owner");
}

/// Plays the kubelet: the pod runs at `ip`, ready or not.
async fn set_pod_state(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let mut p = pods.get(name).await.unwrap();
    let st = p.status.get_or_insert_with(Default::default);
    st.phase = "Running".into();
    st.pod_ip = ip.into();
    st.conditions = vec![PodCondition {
        r#type: "Ready".into(),
        status: if ready { "True" } else { "False" }.into(),
        ..Default::default()
    }];
    pods.update_status(&p).await.unwrap();
}

#[tokio::test]
async fn endpoints_follow_pods_and_readiness() {
    use navarch_api::v1::{Endpoints, Service};
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let services: Api<Service> = c.api("default");
    let endpoints: Api<Endpoints> = c.api("default");
    let _cm = start_controller_manager(&env);
    for name in ["a", "b"] {
        pods.create(&from_yaml(&format!(
            "{{metadata: {{name: {name}, labels: {{app: ep}}}}, spec: {{containers: [{{name: c, image: busybox:1.36, ports: [{{name: http, containerPort: 8080}}]}}]}}}}"
        )))
        .await
        .unwrap();
    }
    set_pod_state(&pods, "a", "10.244.1.10", true).await;
    set_pod_state(&pods, "b", "10.244.1.11", false).await;
    services
        .create(&from_yaml("{metadata: {name: ep, labels: {tier: web}}, spec: {selector: {app: ep}, ports: [{name: web, port: 80, targetPort: http}]}}"))
        .await
        .unwrap();
    let ips = |e: &Endpoints, ready: bool| -> Vec<String> {
        e.subsets
            .iter()
            .flat_map(|s| if ready { s.addresses.iter() } else { s.not_ready_addresses.iter() })
            .map(|a| a.ip.clone())
            .collect()
    };
    let mut last = None;
    wait_until("endpoints with a ready, b not ready", 30, async || {
        let Some(e) = endpoints.get_opt("ep").await.unwrap() else { return false };
        let ok = ips(&e, true) == ["10.244.1.10"] && ips(&e, false) == ["10.244.1.11"];
        last = Some(e);
        ok
    })
    .await;
    let e = last.unwrap();
    assert_eq!(e.subsets[0].ports[0].port, 8080, "named targetPort resolved");
    assert_eq!(e.subsets[0].ports[0].name, "web");
    assert_eq!(e.meta().labels.get("tier").map(String::as_str), Some("web"));

    // Readiness flips move addresses; a deleted pod leaves; labels moving away remove it.
    set_pod_state(&pods, "b", "10.244.1.11", true).await;
    set_pod_state(&pods, "a", "10.244.1.10", false).await;
    wait_until("b ready, a not", 30, async || {
        endpoints
            .get_opt("ep")
            .await
            .unwrap()
            .is_some_and(|e| ips(&e, true) == ["10.244.1.11"] && ips(&e, false) == ["10.244.1.10"])
    })
    .await;
    pods.delete("a", &DeleteParams::default()).await.unwrap();
    let mut b = pods.get("b").await.unwrap();
    b.meta_mut().labels.insert("app".into(), "elsewhere".into());
    pods.update(&b).await.unwrap();
    wait_until("no addresses", 30, async || {
        endpoints.get_opt("ep").await.unwrap().is_some_and(|e| e.subsets.is_empty())
    })
    .await;

    // The Service goes, its Endpoints follow.
    services.delete("ep", &DeleteParams::default()).await.unwrap();
    wait_until("endpoints removed", 30, async || endpoints.get_opt("ep").await.unwrap().is_none()).await;
}

#[tokio::test]
async fn namespaces_get_a_default_service_account_and_are_emptied_on_deletion() {
    use navarch_api::v1::{ConfigMap, Namespace, ServiceAccount};
    let env = TestEnv::start().await;
    let c = env.client().await;
    let _cm = start_controller_manager(&env);
    let namespaces: Api<Namespace> = c.api("");
    namespaces.create(&from_yaml("{metadata: {name: team}}")).await.unwrap();
    let sas: Api<ServiceAccount> = c.api("team");
    wait_until("default ServiceAccount", 30, async || sas.get_opt("default").await.unwrap().is_some()).await;
    sas.delete("default", &DeleteParams::default()).await.unwrap();
    wait_until("default ServiceAccount recreated", 30, async || {
        sas.get_opt("default").await.unwrap().is_some()
    })
    .await;

    let cms: Api<ConfigMap> = c.api("team");
    cms.create(&from_yaml("{metadata: {name: settings}, data: {a: b}}")).await.unwrap();
    let sets: Api<ReplicaSet> = c.api("team");
    sets.create(&from_yaml(&rs_yaml(2))).await.unwrap();
    let pods: Api<Pod> = c.api("team");
    wait_until("2 pods in team", 30, async || web_pods(&pods).await.len() == 2).await;

    namespaces.delete("team", &DeleteParams::default()).await.unwrap();
    wait_until("namespace gone with everything in it", 60, async || {
        namespaces.get_opt("team").await.unwrap().is_none()
    })
    .await;
    assert!(cms.list(&Default::default()).await.unwrap().items.is_empty());
    assert!(pods.list(&Default::default()).await.unwrap().items.is_empty());
    assert!(sets.list(&Default::default()).await.unwrap().items.is_empty());
}

/// Plays the kubelet for every pod: Running and Ready shortly after it appears.
fn play_kubelet(pods: Api<Pod>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            for p in pods.list(&Default::default()).await.unwrap().items {
                let ready =
                    p.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Ready"));
                if !ready && p.meta().deletion_timestamp.is_empty() {
                    n += 1;
                    let mut p = p.clone();
                    let st = p.status.get_or_insert_with(Default::default);
                    st.phase = "Running".into();
                    st.pod_ip = format!("10.244.9.{}", n % 250 + 1);
                    st.conditions = vec![PodCondition {
                        r#type: "Ready".into(),
                        status: "True".into(),
                        ..Default::default()
                    }];
                    let _ = pods.update_status(&p).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// Runs navctl without blocking the test's runtime (the fake kubelet must keep running).
async fn navctl(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(binary("ctl", "navctl"))
        .arg(format!("--server={}", env.api_server_addr()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("running navctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test]
async fn navctl_scale_set_image_and_rollout_status() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let _cm = start_controller_manager(&env);
    let kubelet = play_kubelet(pods.clone());
    c.api::<navarch_api::v1::Deployment>("default")
        .create(&from_yaml("{metadata: {name: web}, spec: {replicas: 2, selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: 'serve-hostname:1.0'}]}}}}"))
        .await
        .unwrap();
    let (code, out, err) = navctl(&env, &["rollout", "status", "deployment/web", "--timeout", "60s"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("deployment \"web\" successfully rolled out\n"), "{out}");
    let (code, out, _) = navctl(&env, &["scale", "deployment", "web", "--replicas", "4"]).await;
    assert_eq!((code, out.as_str()), (0, "deployment.apps/web scaled\n"));
    wait_until("4 pods", 30, async || web_pods(&pods).await.len() == 4).await;
    let (code, out, _) = navctl(&env, &["set", "image", "deployment/web", "c=serve-hostname:2.0"]).await;
    assert_eq!((code, out.as_str()), (0, "deployment.apps/web image updated\n"));
    let (code, out, err) = navctl(&env, &["rollout", "status", "deploy/web", "--timeout", "90s"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("successfully rolled out"), "{out}");
    let l = web_pods(&pods).await;
    assert_eq!(l.len(), 4);
    assert!(l.iter().all(|p| p.spec.as_ref().unwrap().containers[0].image == "serve-hostname:2.0"));
    let (code, _, err) = navctl(&env, &["set", "image", "deployment/web", "nope=x:1"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("unable to find container named \"nope\""), "{err}");
    kubelet.abort();
}

#[tokio::test]
async fn deployment_rolls_within_surge_and_unavailability() {
    use navarch_api::v1::Deployment;
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let deployments: Api<Deployment> = c.api("default");
    let _cm = start_controller_manager(&env);
    let kubelet = play_kubelet(pods.clone());
    deployments
        .create(&from_yaml(
            "{metadata: {name: web}, spec: {replicas: 3, selector: {matchLabels: {app: web}}, strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: 'serve-hostname:1.0'}]}}}}",
        ))
        .await
        .unwrap();
    let image_of = |p: &Pod| p.spec.as_ref().unwrap().containers[0].image.clone();
    let ready = |p: &Pod| {
        p.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
    };
    wait_until("3 ready pods of 1.0", 60, async || {
        let l = web_pods(&pods).await;
        l.len() == 3 && l.iter().all(|p| ready(p) && image_of(p) == "serve-hostname:1.0")
    })
    .await;
    wait_until("deployment status complete", 30, async || {
        deployments
            .get("web")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.available_replicas == 3 && s.updated_replicas == 3)
    })
    .await;

    // Roll to 2.0, sampling the pods throughout.
    let mut d = deployments.get("web").await.unwrap();
    d.spec.as_mut().unwrap().template.as_mut().unwrap().spec.as_mut().unwrap().containers[0].image =
        "serve-hostname:2.0".into();
    deployments.update(&d).await.unwrap();
    let (mut min_ready, mut max_total) = (usize::MAX, 0);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let l = web_pods(&pods).await;
        min_ready = min_ready.min(l.iter().filter(|p| ready(p)).count());
        max_total = max_total.max(l.len());
        if l.len() == 3 && l.iter().all(|p| ready(p) && image_of(p) == "serve-hostname:2.0") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rollout did not finish: {:?}",
            l.iter().map(|p| (p.meta().name.clone(), image_of(p), ready(p))).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(min_ready >= 3, "ready pods dropped to {min_ready} (maxUnavailable 0)");
    assert!(max_total <= 4, "{max_total} pods at once (maxSurge 1)");
    let sets: Api<ReplicaSet> = c.api("default");
    let rs = sets.list(&Default::default()).await.unwrap().items;
    assert_eq!(rs.len(), 2, "one ReplicaSet per template");
    let revisions: Vec<String> = rs
        .iter()
        .map(|r| r.meta().annotations.get("deployment.kubernetes.io/revision").cloned().unwrap_or_default())
        .collect();
    assert!(revisions.contains(&"1".to_string()) && revisions.contains(&"2".to_string()), "{revisions:?}");
    wait_until("status of the finished rollout", 30, async || {
        let d = deployments.get("web").await.unwrap();
        d.status.is_some_and(|s| {
            s.updated_replicas == 3
                && s.available_replicas == 3
                && s.replicas == 3
                && s.conditions
                    .iter()
                    .any(|c| c.r#type == "Progressing" && c.reason == "NewReplicaSetAvailable")
        })
    })
    .await;
    kubelet.abort();
}

#[tokio::test]
async fn nodes_without_a_pod_cidr_get_distinct_ones() {
    use navarch_api::v1::Node;
    let env = TestEnv::start().await;
    let c = env.client().await;
    let nodes: Api<Node> = c.api("");
    nodes
        .create(&from_yaml(
            "{metadata: {name: has-one}, spec: {podCIDR: 10.244.0.0/24, podCIDRs: [10.244.0.0/24]}}",
        ))
        .await
        .unwrap();
    let _cm = start_controller_manager(&env);
    for n in ["n1", "n2"] {
        nodes.create(&from_yaml(&format!("{{metadata: {{name: {n}}}}}"))).await.unwrap();
    }
    let mut got = Vec::new();
    wait_until("pod CIDRs assigned", 30, async || {
        got = nodes
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|n| n.spec.as_ref().map(|s| s.pod_cidr.clone()).unwrap_or_default())
            .collect();
        got.iter().all(|c| !c.is_empty())
    })
    .await;
    got.sort();
    assert_eq!(got, ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]);
}
