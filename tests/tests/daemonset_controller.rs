//! The DaemonSet controller in the controller-manager binary, with the scheduler, against a real
//! api-server and etcd, and Nodes registered through the API (no kubelets: a task plays them, marking
//! scheduled pods Running and Ready and finishing deletions). One pod per node, a new node gets one, a
//! nodeSelector limits them, a cordon keeps them, an image update rolls within maxUnavailable, rollout
//! undo (kubectl's, a strategic merge patch of the revision) brings the old template back, and a
//! restarted controller-manager makes no duplicates.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{ControllerRevision, DaemonSet, Node, Pod, PodCondition};
use navarch_client::{Api, DeleteParams, ListParams};
use navarch_tests::{Daemon, Kubectl, TestEnv, eventually};

fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap()
}

fn start_controller_manager(env: &TestEnv) -> Daemon {
    // Fake nodes renew no Lease: keep the node lifecycle controller from declaring them gone.
    Daemon::start(env, "controller-manager", "controller-manager", &["--node-monitor-grace-period=1h"])
}

/// A Node as a kubelet registers it: Ready, room for pods.
fn ready_node(name: &str) -> Node {
    let now = humantime::format_rfc3339_micros(SystemTime::now());
    from_yaml(&format!(
        "{{metadata: {{name: {name}}}, status: {{allocatable: {{cpu: '4', memory: 8Gi, pods: '110'}}, capacity: {{cpu: '4', memory: 8Gi, pods: '110'}}, conditions: [{{type: Ready, status: 'True', reason: KubeletReady, lastHeartbeatTime: '{now}'}}]}}}}"
    ))
}

const AGENT: &str = "{metadata: {name: agent}, spec: {selector: {matchLabels: {app: agent}}, template: {metadata: {labels: {app: agent}}, spec: {containers: [{name: c, image: 'busybox:1.36'}]}}, updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}}}";

fn is_ready(p: &Pod) -> bool {
    p.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
}

/// Plays the kubelets until `stop`: scheduled pods become Running and Ready, deleted pods go.
fn fake_kubelets(pods: Api<Pod>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let all = pods.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
            for mut p in all {
                let scheduled = p.spec.as_ref().is_some_and(|s| !s.node_name.is_empty());
                if !p.meta().deletion_timestamp.is_empty() {
                    let params = DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
                    let _ = pods.delete(&p.meta().name, &params).await;
                } else if scheduled && !is_ready(&p) {
                    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
                    let status = p.status.get_or_insert_with(Default::default);
                    status.phase = "Running".into();
                    status.conditions = vec![PodCondition {
                        r#type: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: now,
                        ..Default::default()
                    }];
                    let _ = pods.update_status(&p).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// The DaemonSet `name`'s pods not being deleted, by node (unscheduled ones under "").
async fn pods_by_node(pods: &Api<Pod>, app: &str) -> BTreeMap<String, Vec<Pod>> {
    let p = ListParams { label_selector: format!("app={app}"), ..Default::default() };
    let mut out: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
    for pod in pods.list(&p).await.unwrap().items {
        if pod.meta().deletion_timestamp.is_empty() {
            out.entry(pod.spec.as_ref().unwrap().node_name.clone()).or_default().push(pod);
        }
    }
    out
}

fn image(p: &Pod) -> &str {
    &p.spec.as_ref().unwrap().containers[0].image
}

/// Waits until every node in `nodes` (and no other) runs exactly one ready pod of `app` with `img`.
async fn settled(pods: &Api<Pod>, app: &str, nodes: &[&str], img: &str) -> BTreeMap<String, Vec<Pod>> {
    eventually(
        format!("{app}: one ready {img} pod on each of {nodes:?}"),
        Duration::from_secs(60),
        async || {
            let by_node = pods_by_node(pods, app).await;
            let ok = by_node.keys().map(String::as_str).eq(nodes.iter().copied())
                && by_node.values().all(|p| p.len() == 1 && is_ready(&p[0]) && image(&p[0]) == img);
            if ok { Ok(by_node) } else { Err(format!("{:?}", summary(&by_node))) }
        },
    )
    .await
}

fn summary(by_node: &BTreeMap<String, Vec<Pod>>) -> Vec<(String, String, String, bool)> {
    by_node
        .iter()
        .flat_map(|(n, ps)| {
            ps.iter().map(move |p| (n.clone(), p.meta().name.clone(), image(p).to_string(), is_ready(p)))
        })
        .collect()
}

async fn set_image(sets: &Api<DaemonSet>, name: &str, img: &str) {
    let mut ds = sets.get(name).await.unwrap();
    ds.spec.as_mut().unwrap().template.as_mut().unwrap().spec.as_mut().unwrap().containers[0].image =
        img.into();
    sets.update(&ds).await.unwrap();
}

#[tokio::test]
async fn daemonset_places_rolls_and_undoes() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let nodes: Api<Node> = c.api("");
    let pods: Api<Pod> = c.api("default");
    let sets: Api<DaemonSet> = c.api("default");
    let revisions: Api<ControllerRevision> = c.api("default");
    for n in ["n1", "n2"] {
        nodes.create(&ready_node(n)).await.unwrap();
    }
    let _scheduler = Daemon::start(&env, "scheduler", "scheduler", &[]);
    let mut cm = start_controller_manager(&env);
    let stop = Arc::new(AtomicBool::new(false));
    let kubelets = fake_kubelets(pods.clone(), stop.clone());

    // One pod per node, pinned by node affinity, placed by the scheduler, owned and labelled.
    let ds = sets.create(&from_yaml(AGENT)).await.unwrap();
    let first = settled(&pods, "agent", &["n1", "n2"], "busybox:1.36").await;
    for (node, p) in &first {
        let p = &p[0];
        let owner = p.meta().owner_references.iter().find(|r| r.controller == Some(true)).unwrap();
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("DaemonSet", ds.meta().uid.as_str()));
        assert!(p.meta().labels.contains_key("controller-revision-hash"));
        assert_eq!(p.meta().labels.get("pod-template-generation").map(String::as_str), Some("1"));
        let v = serde_json::to_value(p).unwrap();
        let term = &v["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
        assert_eq!(term["nodeSelectorTerms"][0]["matchFields"][0]["values"][0], node.as_str(), "{v}");
    }
    eventually("the DaemonSet's status", Duration::from_secs(30), async || {
        let d = sets.get("agent").await.unwrap();
        let s = d.status.clone().unwrap_or_default();
        let ok = (s.desired_number_scheduled, s.current_number_scheduled, s.number_ready, s.number_available)
            == (2, 2, 2, 2)
            && s.updated_number_scheduled == 2
            && s.observed_generation == d.meta().generation;
        if ok { Ok(()) } else { Err(format!("{s:?}")) }
    })
    .await;
    let revs = revisions.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(revs.len(), 1, "{revs:?}");
    assert_eq!(revs[0].revision, 1);

    // A node added gets a pod.
    nodes.create(&ready_node("n3")).await.unwrap();
    let before = settled(&pods, "agent", &["n1", "n2", "n3"], "busybox:1.36").await;

    // A nodeSelector limits a DaemonSet to the labelled nodes.
    sets.create(&from_yaml("{metadata: {name: edge}, spec: {selector: {matchLabels: {app: edge}}, template: {metadata: {labels: {app: edge}}, spec: {nodeSelector: {node-role: edge}, containers: [{name: c, image: 'busybox:1.36'}]}}}}")).await.unwrap();
    let mut n2 = nodes.get("n2").await.unwrap();
    n2.meta_mut().labels.insert("node-role".into(), "edge".into());
    nodes.update(&n2).await.unwrap();
    settled(&pods, "edge", &["n2"], "busybox:1.36").await;

    // A cordon evicts no daemon pod.
    let mut n1 = nodes.get("n1").await.unwrap();
    n1.spec.get_or_insert_with(Default::default).unschedulable = true;
    nodes.update(&n1).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = settled(&pods, "agent", &["n1", "n2", "n3"], "busybox:1.36").await;
    assert_eq!(summary(&before), summary(&after), "the pods stay");

    // An image update rolls node by node: never more than maxUnavailable (1) node without a ready pod.
    set_image(&sets, "agent", "busybox:1.37").await;
    let mut worst = 0;
    eventually("the rollout to busybox:1.37", Duration::from_secs(90), async || {
        let by_node = pods_by_node(&pods, "agent").await;
        let available = ["n1", "n2", "n3"]
            .iter()
            .filter(|n| by_node.get(**n).is_some_and(|ps| ps.iter().any(is_ready)))
            .count();
        worst = worst.max(3 - available);
        let done = by_node.len() == 3
            && by_node.values().all(|p| p.len() == 1 && is_ready(&p[0]) && image(&p[0]) == "busybox:1.37");
        if done { Ok(()) } else { Err(format!("{:?}", summary(&by_node))) }
    })
    .await;
    assert!(worst <= 1, "{worst} nodes were without a ready pod at once");
    let revs = revisions.list(&ListParams::default()).await.unwrap().items;
    let agent_revs: Vec<i64> =
        revs.iter().filter(|r| r.meta().name.starts_with("agent-")).map(|r| r.revision).collect();
    assert_eq!(agent_revs.len(), 2, "{revs:?}");

    // kubectl: the revisions' table, history, undo (a strategic merge patch of the revision's data),
    // and status.
    let k = Kubectl::new(&env.api_server);
    let table = k.ok(&["get", "controllerrevisions"]).await;
    assert!(
        table.starts_with("NAME") && table.contains("CONTROLLER") && table.contains("REVISION"),
        "{table}"
    );
    assert!(table.contains("daemonset.apps/agent"), "{table}");
    let history = k.ok(&["rollout", "history", "daemonset/agent"]).await;
    assert!(history.contains("REVISION  CHANGE-CAUSE"), "{history}");
    let undo = k.ok(&["rollout", "undo", "daemonset/agent"]).await;
    assert!(undo.contains("daemonset.apps/agent rolled back"), "{undo}");
    let undone = sets.get("agent").await.unwrap();
    let t = undone.spec.as_ref().unwrap().template.as_ref().unwrap();
    assert_eq!(t.spec.as_ref().unwrap().containers[0].image, "busybox:1.36");
    let status = k.ok(&["rollout", "status", "daemonset/agent", "--timeout=90s"]).await;
    assert!(status.contains("daemon set \"agent\" successfully rolled out"), "{status}");
    settled(&pods, "agent", &["n1", "n2", "n3"], "busybox:1.36").await;
    // The first revision was reused, now the newest.
    eventually("revision 1 renumbered 3", Duration::from_secs(20), async || {
        let revs = revisions.list(&ListParams::default()).await.unwrap().items;
        let mut nums: Vec<i64> =
            revs.iter().filter(|r| r.meta().name.starts_with("agent-")).map(|r| r.revision).collect();
        nums.sort();
        if nums == [2, 3] { Ok(()) } else { Err(format!("{nums:?}")) }
    })
    .await;
    let ds_row = k.ok(&["get", "ds", "agent"]).await;
    assert!(ds_row.contains("NODE SELECTOR") && ds_row.contains("UP-TO-DATE"), "{ds_row}");

    // A restarted controller-manager makes no duplicates.
    let names = summary(&pods_by_node(&pods, "agent").await);
    drop(cm);
    cm = start_controller_manager(&env);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let again = settled(&pods, "agent", &["n1", "n2", "n3"], "busybox:1.36").await;
    assert_eq!(names, summary(&again));
    drop(cm);
    stop.store(true, Ordering::Relaxed);
    let _ = kubelets.await;
}
