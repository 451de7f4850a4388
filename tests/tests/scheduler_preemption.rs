//! Priorities and preemption with the scheduler binary against a real api-server and etcd, nodes
//! registered through the API and a stand-in for the kubelets that finishes graceful deletions: a
//! high-priority pod on a full cluster preempts the lowest-priority pods and no more than it needs,
//! spares a PodDisruptionBudget-protected pod while another choice exists, and a scheduler killed
//! with SIGKILL mid-preemption resumes from the pods' status without preempting again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use navarch_api::v1::{Event, Node, Pod, PodCondition, PodDisruptionBudget, PriorityClass};
use navarch_api::{Object, Resource, manifest};
use navarch_client::{Api, DeleteParams, ListParams};
use navarch_tests::{Daemon, TestEnv, eventually};

fn parse(yaml: &str) -> Object {
    manifest::parse(yaml, "t").unwrap().remove(0)
}

fn node(name: &str, cpu: &str) -> Node {
    let Object::Node(n) = parse(&format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {{kubernetes.io/hostname: {name}}}}}\nstatus:\n  allocatable: {{cpu: '{cpu}', memory: 32Gi, pods: '110'}}\n  capacity: {{cpu: '{cpu}', memory: 32Gi, pods: '110'}}\n  conditions: [{{type: Ready, status: 'True'}}]\n"
    )) else {
        unreachable!()
    };
    n
}

/// A pod of `cpu` at `priority` (through the PriorityClass `prio-<priority>` of [`classes`]) labelled
/// `app: <app>`, on `on` if given.
fn pod(name: &str, app: &str, cpu: &str, priority: i32, on: Option<&str>) -> Pod {
    let selector =
        on.map(|n| format!("  nodeSelector: {{kubernetes.io/hostname: {n}}}\n")).unwrap_or_default();
    let Object::Pod(p) = parse(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default, labels: {{app: {app}}}}}\nspec:\n  priorityClassName: prio-{priority}\n  containers: [{{name: c, image: x, resources: {{requests: {{cpu: '{cpu}'}}}}}}]\n{selector}"
    )) else {
        unreachable!()
    };
    p
}

/// The PriorityClasses the tests' pods name.
async fn classes(c: &navarch_client::Client) {
    let api: Api<PriorityClass> = c.api("");
    for value in [1, 5, 50, 100] {
        let Object::PriorityClass(pc) = parse(&format!(
            "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {{name: prio-{value}}}\nvalue: {value}\n"
        )) else {
            unreachable!()
        };
        api.create(&pc).await.unwrap();
    }
}

async fn add_node(nodes: &Api<Node>, n: Node) {
    let created = nodes.create(&n).await.unwrap();
    let mut with_status = created.clone();
    with_status.status = n.status.clone();
    nodes.update_status(&with_status).await.unwrap();
}

/// A real api-server with the tests' PriorityClasses and two 2-cpu nodes: the env, a client and the
/// `default` namespace's pods.
async fn two_full_nodes() -> (TestEnv, navarch_client::Client, Api<Pod>) {
    let env = TestEnv::start().await;
    let c = env.client().await;
    classes(&c).await;
    let nodes: Api<Node> = c.api("");
    add_node(&nodes, node("n1", "2")).await;
    add_node(&nodes, node("n2", "2")).await;
    let pods: Api<Pod> = c.api("default");
    (env, c, pods)
}

fn scheduler(env: &TestEnv) -> Daemon {
    Daemon::start(env, "scheduler", "scheduler", &["--leader-elect=false"])
}

fn node_of(p: &Pod) -> String {
    p.spec.as_ref().map(|s| s.node_name.clone()).unwrap_or_default()
}

async fn wait_bound_to(pods: &Api<Pod>, name: &str, node: &str) -> Pod {
    eventually(format!("{name} bound to {node}"), Duration::from_secs(60), async || {
        let p = pods.get(name).await.unwrap();
        if node_of(&p) == node { Ok(p) } else { Err(format!("on {:?}", node_of(&p))) }
    })
    .await
}

async fn names(pods: &Api<Pod>) -> Vec<String> {
    let mut v: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.meta().name.clone())
        .collect();
    v.sort();
    v
}

fn preempted_condition(p: &Pod) -> Option<PodCondition> {
    p.status.as_ref()?.conditions.iter().find(|c| c.r#type == "DisruptionTarget").cloned()
}

/// The pods whose deletion the stand-in kubelets finished, with their DisruptionTarget condition.
type Gone = Arc<Mutex<Vec<(String, Option<PodCondition>)>>>;

/// Stands in for the kubelets: once enabled, finishes every graceful deletion (as a kubelet does once
/// the containers stopped), remembering each pod's name and its DisruptionTarget condition.
fn kubelets(pods: Api<Pod>, enabled: Arc<Mutex<bool>>) -> Gone {
    let gone = Arc::new(Mutex::new(Vec::new()));
    let g = gone.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if !*enabled.lock().unwrap() {
                continue;
            }
            let Ok(list) = pods.list(&ListParams::default()).await else { continue };
            for p in list.items.iter().filter(|p| !p.meta().deletion_timestamp.is_empty()) {
                let force = DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
                if pods.delete(&p.meta().name, &force).await.is_ok() {
                    g.lock().unwrap().push((p.meta().name.clone(), preempted_condition(p)));
                }
            }
        }
    });
    gone
}

fn gone_names(gone: &Gone) -> Vec<String> {
    let mut v: Vec<String> = gone.lock().unwrap().iter().map(|(n, _)| n.clone()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn preempts_the_fewest_lowest_priority_pods_and_spares_budgets() {
    let (env, c, pods) = two_full_nodes().await;
    let _s = scheduler(&env);
    let gone = kubelets(pods.clone(), Arc::new(Mutex::new(true)));

    // A full cluster: n1 runs two 1-cpu pods of priority 1, n2 two of priority 5.
    for (name, app, prio, on) in
        [("l1", "low", 1, "n1"), ("l2", "low", 1, "n1"), ("m1", "mid", 5, "n2"), ("m2", "mid", 5, "n2")]
    {
        pods.create(&pod(name, app, "1", prio, Some(on))).await.unwrap();
        wait_bound_to(&pods, name, on).await;
    }

    // 1 cpu at priority 100: one priority-1 pod on n1 goes, nothing else.
    let h1 = pods.create(&pod("h1", "high", "1", 100, None)).await.unwrap();
    let bound = wait_bound_to(&pods, "h1", "n1").await;
    assert_eq!(bound.status.as_ref().unwrap().nominated_node_name, "n1", "nominated before it was bound");
    let first = gone_names(&gone);
    assert!(first == ["l1"] || first == ["l2"], "exactly one low pod preempted: {first:?}");
    let (victim, cond) = gone.lock().unwrap()[0].clone();
    let cond = cond.expect("the victim carried the DisruptionTarget condition");
    assert_eq!((cond.status.as_str(), cond.reason.as_str()), ("True", "PreemptionByScheduler"));
    assert_eq!(cond.message, "default-scheduler: preempting to accommodate a higher priority pod");
    let events = eventually("the Preempted event", Duration::from_secs(10), async || {
        let events = c.api::<Event>("default").list(&ListParams::default()).await.unwrap().items;
        events.into_iter().find(|e| e.reason == "Preempted")
    })
    .await;
    assert_eq!(events.involved_object.as_ref().unwrap().name, victim);
    assert_eq!(events.message, format!("Preempted by pod {} on node n1", h1.meta().uid));
    let survivor = if victim == "l1" { "l2" } else { "l1" };

    // A budget allowing no disruption of the low pods: the next preemptor takes a priority-5 pod on
    // n2 rather than violate it (Kubernetes' first criterion), and again for the one after.
    let Object::PodDisruptionBudget(pdb) = parse(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: low, namespace: default}\nspec: {minAvailable: 1, selector: {matchLabels: {app: low}}}\n",
    ) else {
        unreachable!()
    };
    c.api::<PodDisruptionBudget>("default").create(&pdb).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await; // the scheduler's budget store catches up
    pods.create(&pod("h2", "high", "1", 100, None)).await.unwrap();
    wait_bound_to(&pods, "h2", "n2").await;
    pods.create(&pod("h3", "high", "1", 100, None)).await.unwrap();
    wait_bound_to(&pods, "h3", "n2").await;
    let mut expect = vec!["m1".to_string(), "m2".to_string(), victim.clone()];
    expect.sort();
    assert_eq!(gone_names(&gone), expect);
    assert!(names(&pods).await.contains(&survivor.to_string()), "the protected pod is spared");

    // Nothing else can make room: the protected pod is preempted after all.
    pods.create(&pod("h4", "high", "1", 100, None)).await.unwrap();
    wait_bound_to(&pods, "h4", "n1").await;
    assert_eq!(names(&pods).await, ["h1", "h2", "h3", "h4"]);

    // A fifth fits nowhere, and no pod of lower priority is left: Kubernetes' message.
    pods.create(&pod("h5", "high", "1", 100, None)).await.unwrap();
    let msg = eventually("h5's PodScheduled condition", Duration::from_secs(30), async || {
        let p = pods.get("h5").await.unwrap();
        p.status?.conditions.into_iter().find(|c| c.r#type == "PodScheduled").map(|c| c.message)
    })
    .await;
    assert_eq!(
        msg,
        "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption \
         victims found for incoming pod."
    );
}

#[tokio::test]
async fn a_restarted_scheduler_resumes_a_preemption_from_the_pods_status() {
    let (env, _, pods) = two_full_nodes().await;
    let mut s = scheduler(&env);
    let kubelets_on = Arc::new(Mutex::new(false));
    let gone = kubelets(pods.clone(), kubelets_on.clone());
    pods.create(&pod("l1", "low", "2", 1, Some("n1"))).await.unwrap();
    for i in 0..4 {
        pods.create(&pod(&format!("k{i}"), "low", "500m", 1, Some("n2"))).await.unwrap();
    }
    for (name, on) in [("l1", "n1"), ("k0", "n2"), ("k1", "n2"), ("k2", "n2"), ("k3", "n2")] {
        wait_bound_to(&pods, name, on).await;
    }

    // Killed in the middle of a preemption for p (2 cpu on n1): nominated, the victim terminating.
    s.kill9();
    pods.create(&pod("p", "high", "2", 100, Some("n1"))).await.unwrap();
    let mut current = pods.get("p").await.unwrap();
    current.status.get_or_insert_with(Default::default).nominated_node_name = "n1".into();
    pods.update_status(&current).await.unwrap();
    let mut l1 = pods.get("l1").await.unwrap();
    l1.status.get_or_insert_with(Default::default).conditions.push(PodCondition {
        r#type: "DisruptionTarget".into(),
        status: "True".into(),
        reason: "PreemptionByScheduler".into(),
        ..Default::default()
    });
    pods.update_status(&l1).await.unwrap();
    pods.delete("l1", &DeleteParams::default()).await.unwrap();
    // A pod of lower priority than p must not take the room nominated to p.
    pods.create(&pod("late", "mid", "1", 50, Some("n1"))).await.unwrap();

    let mut s = scheduler(&env);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(node_of(&pods.get("p").await.unwrap()), "", "p waits for its victim");
    assert_eq!(node_of(&pods.get("late").await.unwrap()), "", "late does not take p's room");
    assert!(!pods.get("l1").await.unwrap().meta().deletion_timestamp.is_empty());
    assert_eq!(names(&pods).await, ["k0", "k1", "k2", "k3", "l1", "late", "p"], "nothing else preempted");

    // The victim finishes terminating: p binds where it was nominated, late stays pending.
    *kubelets_on.lock().unwrap() = true;
    wait_bound_to(&pods, "p", "n1").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(node_of(&pods.get("late").await.unwrap()), "");
    assert_eq!(gone_names(&gone), ["l1"]);

    // SIGKILL as soon as a preemptor is nominated (its victims being marked and deleted), then restart:
    // it ends on n2 having preempted exactly the two 500m pods it needs.
    pods.create(&pod("q", "high", "1", 100, Some("n2"))).await.unwrap();
    eventually("q nominated", Duration::from_secs(30), async || {
        let q = pods.get("q").await.unwrap();
        q.status.is_some_and(|s| s.nominated_node_name == "n2").then_some(())
    })
    .await;
    s.kill9();
    drop(s);
    let _s = scheduler(&env);
    wait_bound_to(&pods, "q", "n2").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let victims: Vec<String> = gone_names(&gone).into_iter().filter(|n| n.starts_with('k')).collect();
    assert_eq!(victims.len(), 2, "exactly the victims needed: {victims:?}");
    let remaining: Vec<String> = names(&pods).await.into_iter().filter(|n| n.starts_with('k')).collect();
    assert_eq!(remaining.len(), 2, "{remaining:?}");
}
