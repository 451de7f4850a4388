//! The controller-manager binary against a real api-server and etcd (no kubelets: the test plays the
//! kubelet by writing pod status where readiness matters).

use std::time::{Duration, Instant};

use navarch_api::Resource;
use navarch_api::v1::{Pod, PodCondition, ReplicaSet, ReplicationController};
use navarch_client::{Api, DeleteParams, ListParams};
use navarch_tests::{Daemon, TestEnv, eventually, play_kubelet, registered_node};

fn start_controller_manager(env: &TestEnv) -> Daemon {
    Daemon::start(env, "controller-manager", "controller-manager", &[])
}

fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap()
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
    let three = settle_pods(&pods, "web", 3).await;
    for p in &three {
        let owner = p.meta().owner_references.iter().find(|r| r.controller == Some(true)).expect("owned");
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("ReplicaSet", rs.meta().uid.as_str()));
    }
    assert!(three.iter().any(|p| p.meta().name == "orphan"), "the orphan was adopted");
    assert!(three.iter().filter(|p| p.meta().name != "orphan").all(|p| p.meta().name.starts_with("web-")));

    // A pod deleted by hand is replaced.
    let victim = three.iter().find(|p| p.meta().name != "orphan").unwrap().meta().name.clone();
    pods.delete(&victim, &DeleteParams::default()).await.unwrap();
    let after = settle_pods(&pods, "web", 3).await;
    assert!(after.iter().all(|p| p.meta().name != victim));

    // Scaling down removes the surplus; status follows, readiness included (the test plays the kubelet).
    let mut cur = sets.get("web").await.unwrap();
    cur.spec.as_mut().unwrap().replicas = Some(1);
    sets.update(&cur).await.unwrap();
    let one = settle_pods(&pods, "web", 1).await;
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
    eventually("the ReplicaSet's status", Duration::from_secs(20), async || {
        let s = sets.get("web").await.unwrap();
        let st = s.status.clone().unwrap_or_default();
        if st.replicas == 1
            && st.ready_replicas == 1
            && st.available_replicas == 1
            && st.observed_generation == s.meta().generation
        {
            Ok(())
        } else {
            Err(format!("status {st:?} at generation {}", s.meta().generation))
        }
    })
    .await;

    // A pod whose labels stop matching is released (and replaced).
    let mut p = pods.get(&one[0].meta().name).await.unwrap();
    p.meta_mut().labels.insert("app".into(), "debug".into());
    pods.update(&p).await.unwrap();
    let replaced = settle_pods(&pods, "web", 1).await;
    assert_ne!(replaced[0].meta().name, p.meta().name);
    let released = pods.get(&p.meta().name).await.unwrap();
    assert!(released.meta().owner_references.is_empty(), "released pod keeps no owner");

    // Killed and restarted, it picks up where it was: scale to 4 gives exactly 4.
    drop(cm);
    let mut cur = sets.get("web").await.unwrap();
    cur.spec.as_mut().unwrap().replicas = Some(4);
    sets.update(&cur).await.unwrap();
    cm = start_controller_manager(&env);
    settle_pods(&pods, "web", 4).await;
    drop(cm);
}

#[tokio::test]
async fn replication_controller_runs_like_a_replicaset() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let rcs: Api<ReplicationController> = c.api("default");
    let _cm = start_controller_manager(&env);
    // No selector: Kubernetes defaults it (and the labels) to the template's labels.
    let rc = rcs
        .create(&from_yaml(
            "{metadata: {name: legacy}, spec: {replicas: 3, template: {metadata: {labels: {app: legacy}}, spec: {containers: [{name: c, image: busybox:1.36}]}}}}",
        ))
        .await
        .unwrap();
    let spec = rc.spec.clone().unwrap();
    assert_eq!(spec.selector.get("app").map(String::as_str), Some("legacy"));
    assert_eq!(rc.meta().labels.get("app").map(String::as_str), Some("legacy"));
    let three = settle_pods(&pods, "legacy", 3).await;
    for p in &three {
        let owner = p.meta().owner_references.iter().find(|r| r.controller == Some(true)).expect("owned");
        assert_eq!(
            (owner.api_version.as_str(), owner.kind.as_str(), owner.uid.as_str()),
            ("v1", "ReplicationController", rc.meta().uid.as_str())
        );
        assert!(p.meta().name.starts_with("legacy-"), "{}", p.meta().name);
    }
    let mut cur = rcs.get("legacy").await.unwrap();
    cur.spec.as_mut().unwrap().replicas = Some(1);
    rcs.update(&cur).await.unwrap();
    settle_pods(&pods, "legacy", 1).await;
    eventually("the ReplicationController's status", Duration::from_secs(20), async || {
        let rc = rcs.get("legacy").await.unwrap();
        let st = rc.status.clone().unwrap_or_default();
        if st.replicas == 1
            && st.fully_labeled_replicas == 1
            && st.observed_generation == rc.meta().generation
        {
            Ok(())
        } else {
            Err(format!("status {st:?} at generation {}", rc.meta().generation))
        }
    })
    .await;
    // Deleting it takes its pods along (the garbage collector follows the ownerReferences).
    rcs.delete("legacy", &DeleteParams::default()).await.unwrap();
    eventually("the pods of the deleted ReplicationController gone", Duration::from_secs(30), async || {
        active_pods(&pods, "legacy").await.is_empty()
    })
    .await;
}

async fn pods_of(pods: &Api<Pod>, app: &str) -> Vec<Pod> {
    let p = ListParams { label_selector: format!("app={app}"), ..Default::default() };
    pods.list(&p).await.unwrap().items
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
        eventually(format!("2 {app} pods"), Duration::from_secs(30), async || {
            pods_of(&pods, app).await.len() == 2
        })
        .await;
    }

    // Background (the default): the owner goes at once, its pods shortly after.
    sets.delete("bg", &DeleteParams::default()).await.unwrap();
    assert!(sets.get_opt("bg").await.unwrap().is_none());
    eventually("bg pods collected", Duration::from_secs(30), async || pods_of(&pods, "bg").await.is_empty())
        .await;

    // Foreground: the owner stays (deleting) until its pods are gone.
    let fg = DeleteParams { propagation_policy: "Foreground".into(), ..Default::default() };
    let d = sets.delete("fg", &fg).await.unwrap();
    assert!(d.pending, "foreground deletion waits for the dependents");
    eventually("fg pods and owner gone", Duration::from_secs(30), async || {
        pods_of(&pods, "fg").await.is_empty() && sets.get_opt("fg").await.unwrap().is_none()
    })
    .await;

    // Orphan: the owner goes, the pods stay, without an owner.
    let orphan = DeleteParams { propagation_policy: "Orphan".into(), ..Default::default() };
    sets.delete("orphaned", &orphan).await.unwrap();
    eventually("orphaned owner gone", Duration::from_secs(30), async || {
        sets.get_opt("orphaned").await.unwrap().is_none()
    })
    .await;
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
    let e = eventually("endpoints with a ready, b not ready", Duration::from_secs(30), async || {
        let e = endpoints.get_opt("ep").await.unwrap()?;
        (ips(&e, true) == ["10.244.1.10"] && ips(&e, false) == ["10.244.1.11"]).then_some(e)
    })
    .await;
    assert_eq!(e.subsets[0].ports[0].port, 8080, "named targetPort resolved");
    assert_eq!(e.subsets[0].ports[0].name, "web");
    assert_eq!(e.meta().labels.get("tier").map(String::as_str), Some("web"));

    // Readiness flips move addresses; a deleted pod leaves; labels moving away remove it.
    set_pod_state(&pods, "b", "10.244.1.11", true).await;
    set_pod_state(&pods, "a", "10.244.1.10", false).await;
    eventually("b ready, a not", Duration::from_secs(30), async || {
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
    eventually("no addresses", Duration::from_secs(30), async || {
        endpoints.get_opt("ep").await.unwrap().is_some_and(|e| e.subsets.is_empty())
    })
    .await;

    // The Service goes, its Endpoints follow.
    services.delete("ep", &DeleteParams::default()).await.unwrap();
    eventually("endpoints removed", Duration::from_secs(30), async || {
        endpoints.get_opt("ep").await.unwrap().is_none()
    })
    .await;
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
    eventually("default ServiceAccount", Duration::from_secs(30), async || {
        sas.get_opt("default").await.unwrap().is_some()
    })
    .await;
    sas.delete("default", &DeleteParams::default()).await.unwrap();
    eventually("default ServiceAccount recreated", Duration::from_secs(30), async || {
        sas.get_opt("default").await.unwrap().is_some()
    })
    .await;

    let cms: Api<ConfigMap> = c.api("team");
    cms.create(&from_yaml("{metadata: {name: settings}, data: {a: b}}")).await.unwrap();
    let sets: Api<ReplicaSet> = c.api("team");
    sets.create(&from_yaml(&rs_yaml(2))).await.unwrap();
    let pods: Api<Pod> = c.api("team");
    eventually("2 pods in team", Duration::from_secs(30), async || {
        active_pods(&pods, "web").await.len() == 2
    })
    .await;

    namespaces.delete("team", &DeleteParams::default()).await.unwrap();
    eventually("namespace gone with everything in it", Duration::from_secs(60), async || {
        namespaces.get_opt("team").await.unwrap().is_none()
    })
    .await;
    assert!(cms.list(&Default::default()).await.unwrap().items.is_empty());
    assert!(pods.list(&Default::default()).await.unwrap().items.is_empty());
    assert!(sets.list(&Default::default()).await.unwrap().items.is_empty());
}

/// Plays the kubelet for every pod: Running and Ready shortly after it appears (never Ready when
/// its image has "broken" in its name).
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
    let (code, out, err) = env.navctl(&["rollout", "status", "deployment/web", "--timeout", "60s"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("deployment \"web\" successfully rolled out\n"), "{out}");
    let (code, out, _) = env.navctl(&["scale", "deployment", "web", "--replicas", "4"]).await;
    assert_eq!((code, out.as_str()), (0, "deployment.apps/web scaled\n"));
    eventually("4 pods", Duration::from_secs(30), async || active_pods(&pods, "web").await.len() == 4).await;
    let (code, out, _) = env.navctl(&["set", "image", "deployment/web", "c=serve-hostname:2.0"]).await;
    assert_eq!((code, out.as_str()), (0, "deployment.apps/web image updated\n"));
    let (code, out, err) = env.navctl(&["rollout", "status", "deploy/web", "--timeout", "90s"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("successfully rolled out"), "{out}");
    let l = active_pods(&pods, "web").await;
    assert_eq!(l.len(), 4);
    assert!(l.iter().all(|p| p.spec.as_ref().unwrap().containers[0].image == "serve-hostname:2.0"));
    let (code, _, err) = env.navctl(&["set", "image", "deployment/web", "nope=x:1"]).await;
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
    eventually("3 ready pods of 1.0", Duration::from_secs(60), async || {
        let l = active_pods(&pods, "web").await;
        l.len() == 3 && l.iter().all(|p| ready(p) && image_of(p) == "serve-hostname:1.0")
    })
    .await;
    eventually("deployment status complete", Duration::from_secs(30), async || {
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
    eventually("the rollout to finish", Duration::from_secs(90), async || {
        let l = active_pods(&pods, "web").await;
        min_ready = min_ready.min(l.iter().filter(|p| ready(p)).count());
        max_total = max_total.max(l.len());
        if l.len() == 3 && l.iter().all(|p| ready(p) && image_of(p) == "serve-hostname:2.0") {
            Ok(())
        } else {
            Err(format!(
                "{:?}",
                l.iter().map(|p| (p.meta().name.clone(), image_of(p), ready(p))).collect::<Vec<_>>()
            ))
        }
    })
    .await;
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
    eventually("status of the finished rollout", Duration::from_secs(30), async || {
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
    eventually("pod CIDRs assigned", Duration::from_secs(30), async || {
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

/// etcd + api-server and handles on the `default` namespace's workloads (each test starts its own
/// controller-manager, with its own flags).
struct Workloads {
    env: TestEnv,
    pods: Api<Pod>,
    sets: Api<ReplicaSet>,
    deployments: Api<navarch_api::v1::Deployment>,
}

impl Workloads {
    async fn start() -> Workloads {
        let env = TestEnv::start().await;
        let client = env.client().await;
        let (pods, sets, deployments) = (client.api("default"), client.api("default"), client.api("default"));
        Workloads { env, pods, sets, deployments }
    }
}

fn deployment_yaml(name: &str, replicas: i32, extra_spec: &str, image: &str) -> String {
    format!(
        "{{metadata: {{name: {name}}}, spec: {{replicas: {replicas}, selector: {{matchLabels: {{app: {name}}}}}, {extra_spec} template: {{metadata: {{labels: {{app: {name}}}}}, spec: {{containers: [{{name: c, image: '{image}'}}]}}}}}}}}"
    )
}

fn image_of(p: &Pod) -> String {
    p.spec.as_ref().unwrap().containers[0].image.clone()
}

async fn active_pods(pods: &Api<Pod>, app: &str) -> Vec<Pod> {
    pods_of(pods, app).await.into_iter().filter(|p| p.meta().deletion_timestamp.is_empty()).collect()
}

/// Replica counts of the ReplicaSets of app, by image.
async fn set_sizes(sets: &Api<ReplicaSet>, app: &str) -> Vec<(String, i32)> {
    let p = ListParams { label_selector: format!("app={app}"), ..Default::default() };
    let mut out: Vec<(String, i32)> = sets
        .list(&p)
        .await
        .unwrap()
        .items
        .iter()
        .map(|rs| {
            let spec = rs.spec.as_ref().unwrap();
            (
                spec.template.as_ref().unwrap().spec.as_ref().unwrap().containers[0].image.clone(),
                spec.replicas.unwrap_or(0),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn rollout_history_undo_pause_resume_restart() {
    let Workloads { env, pods, sets, deployments } = Workloads::start().await;
    let _cm = start_controller_manager(&env);
    let kubelet = play_kubelet(pods.clone());
    deployments.create(&from_yaml(&deployment_yaml("hist", 2, "", "serve-hostname:1.0"))).await.unwrap();
    let status = ["rollout", "status", "deployment/hist", "--timeout", "60s"];
    assert_eq!(env.navctl(&status).await.0, 0);
    // The change-cause recorded with the change (as `kubectl set image --record` did).
    let mut d = deployments.get("hist").await.unwrap();
    d.metadata.as_mut().unwrap().annotations.insert("kubernetes.io/change-cause".into(), "to 2.0".into());
    d.spec.as_mut().unwrap().template.as_mut().unwrap().spec.as_mut().unwrap().containers[0].image =
        "serve-hostname:2.0".into();
    deployments.update(&d).await.unwrap();
    assert_eq!(env.navctl(&status).await.0, 0);
    let (code, out, err) = env.navctl(&["rollout", "history", "deployment/hist"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "deployment.apps/hist \nREVISION  CHANGE-CAUSE\n1         <none>\n2         to 2.0\n");
    let (_, out, _) = env.navctl(&["rollout", "history", "deployment/hist", "--revision", "1"]).await;
    assert!(out.starts_with("deployment.apps/hist with revision #1\nPod Template:"), "{out}");
    assert!(out.contains("serve-hostname:1.0"), "{out}");
    let (code, _, err) = env.navctl(&["rollout", "undo", "deployment/hist", "--to-revision", "7"]).await;
    assert_eq!((code, err.as_str()), (1, "error: unable to find specified revision 7 in history\n"));

    // Undo: the 1.0 template comes back as revision 3, in the same ReplicaSet as before.
    let (code, out, _) = env.navctl(&["rollout", "undo", "deployment/hist"]).await;
    assert_eq!((code, out.as_str()), (0, "deployment.apps/hist rolled back\n"));
    assert_eq!(env.navctl(&status).await.0, 0);
    eventually("2 pods of 1.0 only", Duration::from_secs(30), async || {
        let l = active_pods(&pods, "hist").await;
        l.len() == 2 && l.iter().all(|p| image_of(p) == "serve-hostname:1.0")
    })
    .await;
    assert_eq!(
        set_sizes(&sets, "hist").await,
        vec![("serve-hostname:1.0".into(), 2), ("serve-hostname:2.0".into(), 0)]
    );
    let (_, out, _) = env.navctl(&["rollout", "history", "deployment/hist"]).await;
    assert_eq!(out, "deployment.apps/hist \nREVISION  CHANGE-CAUSE\n2         to 2.0\n3         <none>\n");
    let d = deployments.get("hist").await.unwrap();
    assert_eq!(d.meta().annotations.get("deployment.kubernetes.io/revision").map(String::as_str), Some("3"));

    // Paused: a new template does not roll out until resumed.
    let (code, out, _) = env.navctl(&["rollout", "pause", "deployment/hist"]).await;
    assert_eq!((code, out.as_str()), (0, "deployment.apps/hist paused\n"));
    let (code, _, err) = env.navctl(&["rollout", "pause", "deployment/hist"]).await;
    assert_eq!((code, err.as_str()), (1, "error: deployment.apps/hist is already paused\n"));
    env.navctl(&["set", "image", "deployment/hist", "c=serve-hostname:3.0"]).await;
    eventually("the Progressing condition says paused", Duration::from_secs(30), async || {
        deployments.get("hist").await.unwrap().status.is_some_and(|s| {
            s.conditions.iter().any(|c| c.r#type == "Progressing" && c.reason == "DeploymentPaused")
        })
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(set_sizes(&sets, "hist").await.len(), 2, "no ReplicaSet for 3.0 while paused");
    assert!(active_pods(&pods, "hist").await.iter().all(|p| image_of(p) == "serve-hostname:1.0"));
    // Scaling still works while paused.
    env.navctl(&["scale", "deployment/hist", "--replicas", "3"]).await;
    eventually("3 pods while paused", Duration::from_secs(30), async || {
        active_pods(&pods, "hist").await.len() == 3
    })
    .await;
    let (code, out, _) = env.navctl(&["rollout", "resume", "deployment/hist"]).await;
    assert_eq!((code, out.as_str()), (0, "deployment.apps/hist resumed\n"));
    assert_eq!(env.navctl(&status).await.0, 0);
    eventually("3 pods of 3.0", Duration::from_secs(30), async || {
        let l = active_pods(&pods, "hist").await;
        l.len() == 3 && l.iter().all(|p| image_of(p) == "serve-hostname:3.0")
    })
    .await;

    // Restart: every pod replaced, same image.
    let before: Vec<String> =
        active_pods(&pods, "hist").await.iter().map(|p| p.meta().name.clone()).collect();
    let (code, out, _) = env.navctl(&["rollout", "restart", "deployment/hist"]).await;
    assert_eq!((code, out.as_str()), (0, "deployment.apps/hist restarted\n"));
    assert_eq!(env.navctl(&status).await.0, 0);
    eventually("3 new pods", Duration::from_secs(30), async || {
        let l = active_pods(&pods, "hist").await;
        l.len() == 3
            && l.iter().all(|p| !before.contains(&p.meta().name) && image_of(p) == "serve-hostname:3.0")
    })
    .await;
    kubelet.abort();
}

#[tokio::test]
async fn progress_deadline_and_proportional_scaling() {
    let Workloads { env, pods, sets, deployments } = Workloads::start().await;
    let _cm = start_controller_manager(&env);
    let kubelet = play_kubelet(pods.clone());
    let strategy = "progressDeadlineSeconds: 3, strategy: {rollingUpdate: {maxSurge: 3, maxUnavailable: 2}},";
    deployments
        .create(&from_yaml(&deployment_yaml("big", 10, strategy, "serve-hostname:1.0")))
        .await
        .unwrap();
    let status = ["rollout", "status", "deployment/big", "--timeout", "60s"];
    assert_eq!(env.navctl(&status).await.0, 0);
    // A template whose pods never get ready: the rollout stalls at 8 old + 5 new (Kubernetes'
    // documented example), and the deadline passes.
    env.navctl(&["set", "image", "deployment/big", "c=broken:1"]).await;
    eventually("8 old + 5 new", Duration::from_secs(30), async || {
        set_sizes(&sets, "big").await == vec![("broken:1".into(), 5), ("serve-hostname:1.0".into(), 8)]
    })
    .await;
    let (code, out, err) = env.navctl(&status).await;
    assert_eq!(code, 1, "{out}");
    assert_eq!(err, "error: deployment \"big\" exceeded its progress deadline\n");
    let d = deployments.get("big").await.unwrap();
    let p = d.status.unwrap().conditions.into_iter().find(|c| c.r#type == "Progressing").unwrap();
    assert_eq!((p.status.as_str(), p.reason.as_str()), ("False", "ProgressDeadlineExceeded"));
    // Scaling to 15 mid-rollout shares the 5 more pods in proportion: 3 old, 2 new.
    env.navctl(&["scale", "deployment/big", "--replicas", "15"]).await;
    eventually("11 old + 7 new", Duration::from_secs(30), async || {
        set_sizes(&sets, "big").await == vec![("broken:1".into(), 7), ("serve-hostname:1.0".into(), 11)]
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        set_sizes(&sets, "big").await,
        vec![("broken:1".into(), 7), ("serve-hostname:1.0".into(), 11)]
    );
    // A working template again: it rolls out and the condition recovers.
    env.navctl(&["set", "image", "deployment/big", "c=serve-hostname:2.0"]).await;
    let (code, out, err) = env.navctl(&["rollout", "status", "deployment/big", "--timeout", "90s"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let l = active_pods(&pods, "big").await;
    assert!(l.len() == 15 && l.iter().all(|p| image_of(p) == "serve-hostname:2.0"));
    kubelet.abort();
}

#[tokio::test]
async fn deployment_deletion_with_each_propagation_policy() {
    let Workloads { env, pods, sets, deployments } = Workloads::start().await;
    let _cm = start_controller_manager(&env);
    for app in ["bg", "fg", "orph"] {
        deployments.create(&from_yaml(&deployment_yaml(app, 2, "", "busybox:1.36"))).await.unwrap();
    }
    for app in ["bg", "fg", "orph"] {
        eventually(format!("2 {app} pods"), Duration::from_secs(30), async || {
            active_pods(&pods, app).await.len() == 2
        })
        .await;
    }
    let (code, out, err) = env.navctl(&["delete", "deployment", "bg", "--cascade=background"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "deployment.apps \"bg\" deleted\n");
    eventually("bg ReplicaSet and pods collected", Duration::from_secs(30), async || {
        set_sizes(&sets, "bg").await.is_empty() && pods_of(&pods, "bg").await.is_empty()
    })
    .await;
    // Foreground: navctl waits until the Deployment is gone, which is after its dependents.
    let (code, _, err) = env.navctl(&["delete", "deployment", "fg", "--cascade=foreground"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(deployments.get_opt("fg").await.unwrap().is_none());
    assert!(set_sizes(&sets, "fg").await.is_empty(), "dependents went first");
    eventually("fg pods gone", Duration::from_secs(30), async || pods_of(&pods, "fg").await.is_empty()).await;
    // Orphan: the ReplicaSet and its pods stay; the ReplicaSet has no owner now.
    let (code, _, err) = env.navctl(&["delete", "deployment", "orph", "--cascade=orphan"]).await;
    assert_eq!(code, 0, "{err}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rs = sets
        .list(&ListParams { label_selector: "app=orph".into(), ..Default::default() })
        .await
        .unwrap()
        .items;
    assert_eq!(rs.len(), 1);
    assert!(rs[0].meta().owner_references.is_empty());
    assert_eq!(active_pods(&pods, "orph").await.len(), 2);
    // A new Deployment selecting it adopts it rather than starting over.
    deployments.create(&from_yaml(&deployment_yaml("orph", 2, "", "busybox:1.36"))).await.unwrap();
    eventually("the orphan adopted", Duration::from_secs(30), async || {
        sets.get(&rs[0].meta().name)
            .await
            .unwrap()
            .meta()
            .owner_references
            .iter()
            .any(|o| o.kind == "Deployment")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(set_sizes(&sets, "orph").await.len(), 1, "adopted, not replaced");
    assert_eq!(active_pods(&pods, "orph").await.len(), 2);
}

#[tokio::test]
async fn controller_manager_killed_mid_rollout_finishes_it() {
    let Workloads { env, pods, sets, deployments } = Workloads::start().await;
    let mut cm = start_controller_manager(&env);
    let kubelet = play_kubelet(pods.clone());
    let strategy = "strategy: {rollingUpdate: {maxSurge: 2, maxUnavailable: 0}},";
    deployments
        .create(&from_yaml(&deployment_yaml("kill", 6, strategy, "serve-hostname:1.0")))
        .await
        .unwrap();
    assert_eq!(env.navctl(&["rollout", "status", "deployment/kill", "--timeout", "60s"]).await.0, 0);
    env.navctl(&["set", "image", "deployment/kill", "c=serve-hostname:2.0"]).await;
    let mut max_active = 0;
    eventually("the rollout under way", Duration::from_secs(30), async || {
        let l = active_pods(&pods, "kill").await;
        max_active = max_active.max(l.len());
        l.iter().any(|p| image_of(p) == "serve-hostname:2.0")
    })
    .await;
    cm.kill9();
    // Time passes without a controller-manager; then a new one takes over.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _cm = start_controller_manager(&env);
    eventually("the rollout to finish", Duration::from_secs(90), async || {
        let l = active_pods(&pods, "kill").await;
        max_active = max_active.max(l.len());
        if l.len() == 6 && l.iter().all(|p| image_of(p) == "serve-hostname:2.0") {
            Ok(())
        } else {
            Err(format!("{} pods", l.len()))
        }
    })
    .await;
    assert!(max_active <= 8, "{max_active} active pods at once (6 + maxSurge 2)");
    let settled = settle_pods(&pods, "kill", 6).await;
    assert!(settled.iter().all(|p| image_of(p) == "serve-hostname:2.0"));
    assert_eq!(
        set_sizes(&sets, "kill").await,
        vec![("serve-hostname:1.0".into(), 0), ("serve-hostname:2.0".into(), 6)]
    );
    kubelet.abort();
}

/// Waits for exactly `n` active pods of app and checks that it stays so (no late duplicates).
async fn settle_pods(pods: &Api<Pod>, app: &str, n: usize) -> Vec<Pod> {
    eventually(format!("{n} {app} pods"), Duration::from_secs(30), async || {
        active_pods(pods, app).await.len() == n
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let l = active_pods(pods, app).await;
    assert_eq!(l.len(), n, "pod count moved after settling");
    l
}

#[tokio::test]
async fn cordon_uncordon_and_drain() {
    use navarch_api::v1::{Deployment, Node};
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let nodes: Api<Node> = c.api("");
    for n in ["n1", "n2"] {
        nodes.create(&registered_node(n)).await.unwrap();
    }
    let _scheduler = Daemon::start(&env, "scheduler", "scheduler", &[]);
    let _cm = start_controller_manager(&env);
    let kubelet = play_kubelet(pods.clone());
    c.api::<Deployment>("default")
        .create(&from_yaml(&deployment_yaml("drained", 4, "", "serve-hostname:1.0")))
        .await
        .unwrap();
    pods.create(&from_yaml("{metadata: {name: bare, labels: {app: bare}}, spec: {nodeName: n1, containers: [{name: c, image: busybox:1.36}]}}")).await.unwrap();
    let node_of = |p: &Pod| p.spec.as_ref().unwrap().node_name.clone();
    eventually("4 pods on both nodes", Duration::from_secs(30), async || {
        let l = active_pods(&pods, "drained").await;
        l.len() == 4 && l.iter().all(|p| !node_of(p).is_empty())
    })
    .await;

    assert_eq!(env.navctl(&["cordon", "n2"]).await.1, "node/n2 cordoned\n");
    assert_eq!(env.navctl(&["cordon", "node/n2"]).await.1, "node/n2 already cordoned\n");
    assert!(nodes.get("n2").await.unwrap().spec.unwrap().unschedulable);
    assert_eq!(env.navctl(&["uncordon", "n2"]).await.1, "node/n2 uncordoned\n");
    assert!(!nodes.get("n2").await.unwrap().spec.unwrap().unschedulable);

    // A pod without a controller blocks the drain unless --force.
    let (code, _, err) = env.navctl(&["drain", "n1"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot delete Pods that declare no controller (use --force to override): default/bare"),
        "{err}"
    );
    let (code, out, err) = env.navctl(&["drain", "n1", "--force", "--grace-period=0", "--timeout=60s"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("node/n1 already cordoned\n") && out.ends_with("node/n1 drained\n"), "{out}");
    assert!(out.contains("evicting pod default/bare\n"), "{out}");
    assert!(pods.get_opt("bare").await.unwrap().is_none(), "the bare pod is gone for good");
    eventually("all 4 pods on n2", Duration::from_secs(30), async || {
        let l = active_pods(&pods, "drained").await;
        l.len() == 4 && l.iter().all(|p| node_of(p) == "n2")
    })
    .await;
    kubelet.abort();
}

#[tokio::test]
async fn a_silent_node_is_tainted_and_its_pods_move() {
    use navarch_api::v1::{Deployment, Event, Lease, Node};
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let nodes: Api<Node> = c.api("");
    let leases: Api<Lease> = c.api("kube-node-lease");
    let now = || humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    for n in ["n1", "n2"] {
        nodes.create(&registered_node(n)).await.unwrap();
    }
    // Both nodes' kubelets renew their Leases, until n2's stops.
    let n2_alive = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let heartbeat = {
        let (leases, alive) = (leases.clone(), n2_alive.clone());
        tokio::spawn(async move {
            loop {
                for n in ["n1", "n2"] {
                    if n == "n2" && !alive.load(std::sync::atomic::Ordering::SeqCst) {
                        continue;
                    }
                    let mut l: Lease = from_yaml(&format!(
                        "{{metadata: {{name: {n}, namespace: kube-node-lease}}, spec: {{holderIdentity: {n}, leaseDurationSeconds: 40}}}}"
                    ));
                    l.spec.as_mut().unwrap().renew_time = Some(now());
                    match leases.get_opt(n).await.unwrap() {
                        Some(old) => {
                            l.metadata = old.metadata;
                            let _ = leases.update(&l).await;
                        }
                        None => {
                            let _ = leases.create(&l).await;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let _scheduler = Daemon::start(&env, "scheduler", "scheduler", &[]);
    let _cm = Daemon::start(
        &env,
        "controller-manager",
        "controller-manager",
        &["--node-monitor-grace-period=3s", "--node-monitor-period=1s", "--default-toleration-seconds=2"],
    );
    let kubelet = play_kubelet(pods.clone());
    c.api::<Deployment>("default")
        .create(&from_yaml(&deployment_yaml("spread", 4, "", "serve-hostname:1.0")))
        .await
        .unwrap();
    let node_of = |p: &Pod| p.spec.as_ref().unwrap().node_name.clone();
    eventually("4 pods bound to both nodes", Duration::from_secs(30), async || {
        let l = active_pods(&pods, "spread").await;
        l.len() == 4 && l.iter().any(|p| node_of(p) == "n1") && l.iter().any(|p| node_of(p) == "n2")
    })
    .await;
    let on_n2: Vec<String> = active_pods(&pods, "spread")
        .await
        .iter()
        .filter(|p| node_of(p) == "n2")
        .map(|p| p.meta().name.clone())
        .collect();

    let stopped = Instant::now();
    n2_alive.store(false, std::sync::atomic::Ordering::SeqCst);
    let ready_of = |n: &Node| {
        n.status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .find(|c| c.r#type == "Ready")
            .map(|c| c.status.clone())
            .unwrap_or_default()
    };
    eventually("n2 Ready=Unknown and tainted", Duration::from_secs(20), async || {
        let n = nodes.get("n2").await.unwrap();
        let taints = n.spec.as_ref().map(|s| s.taints.clone()).unwrap_or_default();
        ready_of(&n) == "Unknown"
            && taints.iter().any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute")
            && taints.iter().any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoSchedule")
    })
    .await;
    let tainted_after = stopped.elapsed();
    assert_eq!(ready_of(&nodes.get("n1").await.unwrap()), "True", "n1 keeps reporting");
    assert!(nodes.get("n1").await.unwrap().spec.unwrap_or_default().taints.is_empty());
    eventually("all 4 pods on n1", Duration::from_secs(30), async || {
        let l = active_pods(&pods, "spread").await;
        l.len() == 4 && l.iter().all(|p| node_of(p) == "n1")
    })
    .await;
    let moved_after = stopped.elapsed();
    eprintln!(
        "n2 tainted {tainted_after:?} and its pods replaced on n1 {moved_after:?} after its heartbeat stopped"
    );
    for name in &on_n2 {
        let p = pods.get(name).await.unwrap();
        assert!(!p.meta().deletion_timestamp.is_empty(), "{name} was evicted");
        assert!(
            p.status.unwrap().conditions.iter().any(|c| c.r#type == "Ready" && c.status == "False"),
            "{name} marked not ready"
        );
    }
    let events = c.api::<Event>("").list(&Default::default()).await.unwrap().items;
    assert!(events.iter().any(|e| e.reason == "NodeNotReady"), "a NodeNotReady event");
    assert!(events.iter().any(|e| e.reason == "TaintManagerEviction"), "eviction events");

    // n2 comes back (its kubelet reports Ready again): the taints go.
    n2_alive.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut n = nodes.get("n2").await.unwrap();
    for cond in n.status.as_mut().unwrap().conditions.iter_mut() {
        cond.status = "True".into();
        cond.last_heartbeat_time = now();
    }
    nodes.update_status(&n).await.unwrap();
    eventually("n2's taints cleared", Duration::from_secs(20), async || {
        nodes.get("n2").await.unwrap().spec.unwrap_or_default().taints.is_empty()
    })
    .await;
    heartbeat.abort();
    kubelet.abort();
}

#[tokio::test]
async fn pods_of_a_deleted_node_are_garbage_collected() {
    use navarch_api::v1::Node;
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let nodes: Api<Node> = c.api("");
    for n in ["kept", "doomed"] {
        nodes.create(&registered_node(n)).await.unwrap();
    }
    for (name, node) in [("on-kept", "kept"), ("on-doomed", "doomed"), ("terminating-on-doomed", "doomed")] {
        pods.create(&from_yaml(&format!(
            "{{metadata: {{name: {name}, labels: {{app: gc}}}}, spec: {{nodeName: {node}, containers: [{{name: c, image: busybox:1.36}}]}}}}"
        )))
        .await
        .unwrap();
    }
    // Graceful deletion of a scheduled pod waits for its kubelet, which is gone with its Node.
    pods.delete("terminating-on-doomed", &DeleteParams::default()).await.unwrap();
    nodes.delete("doomed", &DeleteParams::default()).await.unwrap();
    let _cm = start_controller_manager(&env);
    let started = Instant::now();
    // The 40 s quarantine, then the next 20 s check.
    eventually("the pods of the deleted node gone", Duration::from_secs(100), async || {
        let names: Vec<String> = pods_of(&pods, "gc").await.iter().map(|p| p.meta().name.clone()).collect();
        if names == ["on-kept"] { Ok(()) } else { Err(format!("pods {names:?}")) }
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(39),
        "not before the quarantine: {:?}",
        started.elapsed()
    );
}
