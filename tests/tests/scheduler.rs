//! The scheduler binary against a real api-server and etcd, with nodes registered through the API (no
//! kubelets): pods land on nodes that fit, never over-commit, honour taints and selectors, and a pod
//! that fits nowhere stays Pending with Kubernetes' message until a fitting node appears.

use std::collections::HashMap;
use std::time::Duration;

use navarch_api::v1::{Event, Node, Pod};
use navarch_api::{Object, manifest};
use navarch_client::{Api, ListParams};
use navarch_tests::{Daemon, TestEnv, eventually};

/// Starts the scheduler binary; returns it and its metrics address.
fn start_scheduler(env: &TestEnv) -> (Daemon, std::net::SocketAddr) {
    let d = Daemon::start(env, "scheduler", "scheduler", &[]);
    let addr = d.http;
    (d, addr)
}

/// scheduler_schedule_attempts_total{result="scheduled"} of one scheduler.
fn scheduled_count(addr: std::net::SocketAddr) -> u64 {
    let text = navarch_tests::http_get(addr, "/metrics").map(|(_, b)| b).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("scheduler_schedule_attempts_total{result=\"scheduled\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn parse<T>(yaml: &str, pick: impl Fn(Object) -> Option<T>) -> T {
    pick(manifest::parse(yaml, "t").unwrap().remove(0)).unwrap()
}

fn node(name: &str, cpu: &str, extra_spec: &str) -> Node {
    parse(
        &format!(
            "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {{kubernetes.io/hostname: {name}}}}}\nspec: {{{extra_spec}}}\nstatus:\n  allocatable: {{cpu: '{cpu}', memory: 32Gi, pods: '110'}}\n  capacity: {{cpu: '{cpu}', memory: 32Gi, pods: '110'}}\n  conditions: [{{type: Ready, status: 'True'}}]\n"
        ),
        |o| if let Object::Node(n) = o { Some(n) } else { None },
    )
}

fn pod(name: &str, cpu: &str, extra_spec: &str) -> Pod {
    parse(
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  containers: [{{name: c, image: x, resources: {{requests: {{cpu: '{cpu}', memory: 64Mi}}}}}}]\n{extra_spec}"
        ),
        |o| if let Object::Pod(p) = o { Some(p) } else { None },
    )
}

async fn add_node(nodes: &Api<Node>, n: Node) {
    // Status is the node's own (the kubelet's); create it, then set the status subresource.
    let created = nodes.create(&n).await.unwrap();
    let mut with_status = created.clone();
    with_status.status = n.status.clone();
    nodes.update_status(&with_status).await.unwrap();
}

async fn wait_all_bound(pods: &Api<Pod>, n: usize) -> Vec<Pod> {
    eventually(format!("{n} pods bound"), Duration::from_secs(60), async || {
        let items = pods.list(&ListParams::default()).await.unwrap().items;
        let bound: Vec<Pod> =
            items.into_iter().filter(|p| p.spec.as_ref().is_some_and(|s| !s.node_name.is_empty())).collect();
        if bound.len() >= n { Ok(bound) } else { Err(format!("{} bound", bound.len())) }
    })
    .await
}

fn node_of(p: &Pod) -> String {
    p.spec.as_ref().unwrap().node_name.clone()
}

/// Waits until pod `name` is bound to `node`.
async fn wait_bound_to(pods: &Api<Pod>, name: &str, node: &str) {
    eventually(format!("{name} bound to {node}"), Duration::from_secs(30), async || {
        let on = node_of(&pods.get(name).await.unwrap());
        if on == node { Ok(()) } else { Err(format!("on {on:?}")) }
    })
    .await;
}

#[tokio::test]
async fn binds_to_fitting_nodes_and_explains_when_none_fits() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let nodes: Api<Node> = c.api("");
    let pods: Api<Pod> = c.api("default");
    add_node(&nodes, node("n1", "2", "")).await;
    add_node(&nodes, node("n2", "2", "")).await;
    add_node(&nodes, node("gpu", "8", "taints: [{key: dedicated, value: gpu, effect: NoSchedule}]")).await;
    let (_scheduler, _) = start_scheduler(&env);

    // 8 × 500m fill n1 and n2 exactly; none may go to the tainted node.
    for i in 0..8 {
        pods.create(&pod(&format!("p{i}"), "500m", "")).await.unwrap();
    }
    let bound = wait_all_bound(&pods, 8).await;
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for p in &bound {
        *per_node.entry(node_of(p)).or_default() += 1;
    }
    assert_eq!(per_node.get("n1"), Some(&4), "{per_node:?}");
    assert_eq!(per_node.get("n2"), Some(&4), "{per_node:?}");
    let scheduled = &bound[0].status.as_ref().unwrap().conditions[0];
    assert_eq!((scheduled.r#type.as_str(), scheduled.status.as_str()), ("PodScheduled", "True"));

    // Nothing fits now: Pending, with the reasons.
    pods.create(&pod("big", "1", "")).await.unwrap();
    let msg = eventually("big's PodScheduled condition", Duration::from_secs(30), async || {
        let p = pods.get("big").await.unwrap();
        let c = p.status?.conditions.into_iter().find(|c| c.r#type == "PodScheduled")?;
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "Unschedulable"));
        Some(c.message)
    })
    .await;
    assert_eq!(
        msg,
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu. preemption: \
         0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for \
         incoming pod."
    );
    // A fitting node appears: it binds there.
    add_node(&nodes, node("n3", "4", "")).await;
    wait_bound_to(&pods, "big", "n3").await;

    // Tolerations and node selectors are honoured.
    pods.create(&pod("tolerant", "4", "  tolerations: [{key: dedicated, operator: Exists}]\n  nodeSelector: {kubernetes.io/hostname: gpu}\n"))
        .await
        .unwrap();
    wait_bound_to(&pods, "tolerant", "gpu").await;

    // Events explain it too.
    let events = c.api::<Event>("default").list(&ListParams::default()).await.unwrap().items;
    assert!(
        events
            .iter()
            .any(|e| e.reason == "Scheduled" && e.message.contains("Successfully assigned default/p0 to"))
    );
    assert!(
        events
            .iter()
            .any(|e| e.reason == "FailedScheduling" && e.involved_object.as_ref().unwrap().name == "big")
    );
}

#[tokio::test]
async fn never_overcommits_under_a_burst() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let nodes: Api<Node> = c.api("");
    let pods: Api<Pod> = c.api("default");
    for i in 0..5 {
        add_node(&nodes, node(&format!("n{i}"), "4", "")).await;
    }
    let (_scheduler, _) = start_scheduler(&env);
    // 300 pods of 100m against 5 × 4 cpu = 200 fit; 100 must stay pending.
    let creators: Vec<_> = (0..4)
        .map(|w| {
            let pods = pods.clone();
            tokio::spawn(async move {
                for i in 0..75 {
                    pods.create(&pod(&format!("b{w}-{i}"), "100m", "")).await.unwrap();
                }
            })
        })
        .collect();
    for t in creators {
        t.await.unwrap();
    }
    let bound = wait_all_bound(&pods, 200).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = pods.list(&ListParams::default()).await.unwrap().items;
    let mut milli: HashMap<String, i64> = HashMap::new();
    for p in all.iter().filter(|p| !node_of(p).is_empty()) {
        *milli.entry(node_of(p)).or_default() += 100;
    }
    assert!(bound.len() >= 200);
    assert_eq!(milli.values().sum::<i64>(), 20_000, "exactly the capacity is used: {milli:?}");
    assert!(milli.values().all(|m| *m <= 4000), "no node over-committed: {milli:?}");
    let pending = all.iter().filter(|p| node_of(p).is_empty()).count();
    assert_eq!(pending, 100, "what does not fit stays pending");
}

#[tokio::test]
async fn serves_health_and_metrics() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let nodes: Api<Node> = c.api("");
    let pods: Api<Pod> = c.api("default");
    add_node(&nodes, node("n1", "1", "")).await;
    let (_d, addr) = start_scheduler(&env);
    pods.create(&pod("ok", "500m", "")).await.unwrap();
    pods.create(&pod("too-big", "2", "")).await.unwrap();
    wait_all_bound(&pods, 1).await;
    let text = eventually("both results in /metrics", Duration::from_secs(10), async || {
        let text = navarch_tests::http_get(addr, "/metrics").map(|(_, b)| b).unwrap_or_default();
        let both = text.contains("result=\"unschedulable\"") && text.contains("result=\"scheduled\"");
        if both { Ok(text) } else { Err(text) }
    })
    .await;
    assert!(text.contains("scheduler_schedule_attempts_total{result=\"scheduled\"} 1"), "{text}");
    assert!(text.contains("scheduler_e2e_scheduling_duration_seconds_count 1"), "{text}");
    assert!(text.contains("scheduler_pending_pods 1"), "{text}");
    assert_eq!(navarch_tests::http_get(addr, "/healthz").map(|(c, _)| c), Some(200));
}

#[tokio::test]
async fn two_schedulers_only_the_leader_binds() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let nodes: Api<Node> = c.api("");
    let pods: Api<Pod> = c.api("default");
    add_node(&nodes, node("n1", "8", "")).await;
    let (_a, a_metrics) = start_scheduler(&env);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_b, b_metrics) = start_scheduler(&env);
    for i in 0..40 {
        pods.create(&pod(&format!("l{i}"), "100m", "")).await.unwrap();
    }
    wait_all_bound(&pods, 40).await;
    // Every pod was bound exactly once: one Scheduled event each, and no failed binds.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = c.api::<Event>("default").list(&ListParams::default()).await.unwrap().items;
    let scheduled = events.iter().filter(|e| e.reason == "Scheduled").count();
    assert_eq!(scheduled, 40, "one binding per pod");
    let (a, b) = (scheduled_count(a_metrics), scheduled_count(b_metrics));
    assert_eq!((a, b), (40, 0), "only the first scheduler (the leader) acted");
    let lease = c.api::<navarch_api::v1::Lease>("kube-system").get("kube-scheduler").await.unwrap();
    assert!(lease.spec.unwrap().holder_identity.is_some_and(|h| !h.is_empty()));
}
