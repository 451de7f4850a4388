//! PodDisruptionBudgets against a real etcd + api-server + controller-manager (+ scheduler), no kubelets:
//! the tests play the kubelet by writing pod status. The budget's status converges; the eviction
//! subresource refuses with Kubernetes' 429 while the budget is spent and allows otherwise; real kubectl
//! shows `get pdb` with its columns and `drain` retries refused evictions until the budget allows.

use std::time::Duration;

use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{Node, Pod, PodDisruptionBudget, ReplicaSet};
use navarch_client::{Api, DeleteParams, ListParams, WatchEvent, WatchParams};
use navarch_tests::{Daemon, Kubectl, TestEnv, eventually, play_kubelet, registered_node};
use serde_json::{Value, json};

fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap()
}

fn replica_set(name: &str, replicas: i32) -> ReplicaSet {
    from_yaml(&format!(
        "{{metadata: {{name: {name}}}, spec: {{replicas: {replicas}, selector: {{matchLabels: {{app: {name}}}}}, template: {{metadata: {{labels: {{app: {name}}}}}, spec: {{containers: [{{name: c, image: busybox:1.36}}]}}}}}}}}"
    ))
}

fn budget(name: &str, app: &str, spec: &str) -> PodDisruptionBudget {
    from_yaml(&format!(
        "{{metadata: {{name: {name}}}, spec: {{selector: {{matchLabels: {{app: {app}}}}}, {spec}}}}}"
    ))
}

/// The ready pods of `app` not being deleted, once there are `n` of them, all bound.
async fn ready_pods(pods: &Api<Pod>, app: &str, n: usize) -> Vec<Pod> {
    eventually(format!("{n} ready {app} pods"), Duration::from_secs(30), async || {
        let l = pods
            .list(&ListParams { label_selector: format!("app={app}"), ..Default::default() })
            .await
            .unwrap();
        let ready: Vec<Pod> = l
            .items
            .into_iter()
            .filter(|p| p.meta().deletion_timestamp.is_empty() && navarch_api::disruption::is_pod_ready(p))
            .filter(|p| p.spec.as_ref().is_some_and(|s| !s.node_name.is_empty()))
            .collect();
        if ready.len() == n { Ok(ready) } else { Err(format!("{} ready", ready.len())) }
    })
    .await
}

/// Waits until the budget's status is `(expected, current, desired, allowed)` for its generation, with no
/// disruption pending.
async fn settled(
    budgets: &Api<PodDisruptionBudget>,
    name: &str,
    want: (i32, i32, i32, i32),
) -> PodDisruptionBudget {
    eventually(format!("budget {name} at {want:?}"), Duration::from_secs(30), async || {
        let b = budgets.get(name).await.unwrap();
        let s = b.status.clone().unwrap_or_default();
        let got = (s.expected_pods, s.current_healthy, s.desired_healthy, s.disruptions_allowed);
        if got == want && s.observed_generation == b.meta().generation && s.disrupted_pods.is_empty() {
            Ok(b)
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await
}

async fn evict(env: &TestEnv, pod: &str) -> (u16, Value) {
    let body = json!({
        "apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": pod, "namespace": "default"},
        "deleteOptions": {"gracePeriodSeconds": 0},
    });
    let path = format!("/api/v1/namespaces/default/pods/{pod}/eviction");
    env.rest().json("POST", &path, "application/json", Some(&body)).await
}

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter().map(|p| p.meta().name.clone()).collect()
}

#[tokio::test]
async fn budget_status_and_the_eviction_subresource() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let budgets: Api<PodDisruptionBudget> = c.api("default");
    c.api::<Node>("").create(&registered_node("n1")).await.unwrap();
    let _scheduler = Daemon::start(&env, "scheduler", "scheduler", &[]);
    let _cm = Daemon::start(&env, "controller-manager", "controller-manager", &[]);
    let kubelet = play_kubelet(pods.clone());
    c.api::<ReplicaSet>("default").create(&replica_set("web", 3)).await.unwrap();
    let three = names(&ready_pods(&pods, "web", 3).await);

    // Validation as Kubernetes.
    let both = budget("both", "web", "minAvailable: 1, maxUnavailable: 1");
    let e = budgets.create(&both).await.unwrap_err().to_string();
    assert!(
        e.contains("spec: Invalid value: ")
            && e.contains("minAvailable and maxUnavailable cannot be both set"),
        "{e}"
    );

    // An integer minAvailable counts the selected pods.
    budgets.create(&budget("web", "web", "minAvailable: 2")).await.unwrap();
    let b = settled(&budgets, "web", (3, 3, 2, 1)).await;
    let cond = &b.status.unwrap().conditions[0];
    assert_eq!(
        (cond.r#type.as_str(), cond.status.as_str(), cond.reason.as_str()),
        ("DisruptionAllowed", "True", "SufficientPods")
    );

    // The one disruption allowed is spent on the first eviction, recorded before the pod goes. (The
    // kubelet stops first: the ReplicaSet's replacement must stay not Ready for a while.)
    kubelet.abort();
    let (code, body) = evict(&env, &three[0]).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["status"], "Success", "{body}");
    assert!(pods.get_opt(&three[0]).await.unwrap().is_none(), "the evicted pod is gone");
    // The ReplicaSet's replacement is not Ready: the budget has exactly what it needs.
    settled(&budgets, "web", (3, 2, 2, 0)).await;
    let (code, body) = evict(&env, &three[1]).await;
    assert_eq!(code, 429, "{body}");
    assert_eq!(
        body,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Cannot evict pod as it would violate the pod's disruption budget.",
            "reason": "TooManyRequests",
            "details": {"causes": [{"reason": "DisruptionBudget", "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]},
            "code": 429,
        })
    );
    assert!(pods.get_opt(&three[1]).await.unwrap().is_some(), "a refused eviction deletes nothing");
    // The same refusal over gRPC (what navctl drain gets).
    match c
        .evict("default", &three[1], &DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
        .await
    {
        Err(navarch_client::Error::Api { code: tonic::Code::ResourceExhausted, message }) => {
            assert_eq!(message, "Cannot evict pod as it would violate the pod's disruption budget.");
        }
        r => panic!("expected ResourceExhausted, got {r:?}"),
    }
    // A pod that is not Ready may go (the budget has its healthy pods), without spending anything.
    let replacement = pods
        .list(&ListParams { label_selector: "app=web".into(), ..Default::default() })
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|p| !three.contains(&p.meta().name))
        .expect("the replacement pod");
    let (code, body) = evict(&env, &replacement.meta().name).await;
    assert_eq!(code, 201, "{body}");

    // Ready again: evictions are allowed again.
    let kubelet = play_kubelet(pods.clone());
    ready_pods(&pods, "web", 3).await;
    settled(&budgets, "web", (3, 3, 2, 1)).await;
    let (code, body) = evict(&env, &three[1]).await;
    assert_eq!(code, 201, "{body}");

    // A percentage counts the controllers' scale: maxUnavailable 34% of 3 rounds up to 2.
    settled(&budgets, "web", (3, 3, 2, 1)).await;
    budgets.create(&budget("pct", "web", "maxUnavailable: 34%")).await.unwrap();
    settled(&budgets, "pct", (3, 3, 1, 2)).await;
    // Two budgets for one pod: Kubernetes' bare 500.
    let (code, body) = evict(&env, &three[2]).await;
    assert_eq!(
        (code, body),
        (
            500,
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                "code": 500,
            })
        )
    );

    // An eviction marks the pod `DisruptionTarget` before it deletes it (what a Job's pod failure
    // policy can match), as Kubernetes does: a watch sees the condition, then the deletion.
    budgets.delete("pct", &DeleteParams::default()).await.unwrap();
    settled(&budgets, "web", (3, 3, 2, 1)).await;
    let list = pods.list(&ListParams::default()).await.unwrap();
    let mut watch = pods
        .watch(&WatchParams {
            resource_version: list.resource_version,
            field_selector: format!("metadata.name={}", three[2]),
            ..Default::default()
        })
        .await
        .unwrap();
    let (code, body) = evict(&env, &three[2]).await;
    assert_eq!(code, 201, "{body}");
    let marked = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = watch.next().await {
            if let WatchEvent::Modified(p) = ev.unwrap() {
                let conditions = p.status.map(|s| s.conditions).unwrap_or_default();
                if let Some(c) = conditions.into_iter().find(|c| c.r#type == "DisruptionTarget") {
                    return c;
                }
            }
        }
        panic!("the watch ended");
    })
    .await
    .expect("a DisruptionTarget condition on the evicted pod");
    assert_eq!(
        (marked.status.as_str(), marked.reason.as_str(), marked.message.as_str()),
        ("True", "EvictionByEvictionAPI", "Eviction API: evicting")
    );
    kubelet.abort();
}

/// How long the replacement pods of a drain wait for a kubelet: longer than one retry of a refused eviction.
const SLOW_KUBELET: Duration = Duration::from_secs(7);

/// [`play_kubelet`] after `delay`.
async fn kubelet_after(pods: &Api<Pod>, delay: Duration) -> tokio::task::JoinHandle<()> {
    tokio::time::sleep(delay).await;
    play_kubelet(pods.clone())
}

#[tokio::test]
async fn kubectl_get_pdb_and_drain_retries_until_the_budget_allows() {
    let env = TestEnv::start().await;
    let k = Kubectl::new(&env.api_server);
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let nodes: Api<Node> = c.api("");
    nodes.create(&registered_node("n1")).await.unwrap();
    let _scheduler = Daemon::start(&env, "scheduler", "scheduler", &[]);
    let _cm = Daemon::start(&env, "controller-manager", "controller-manager", &[]);
    let kubelet = play_kubelet(pods.clone());
    c.api::<ReplicaSet>("default").create(&replica_set("web", 2)).await.unwrap();
    ready_pods(&pods, "web", 2).await;
    let manifest = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: web\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels:\n      app: web\n";
    let out = k.apply(manifest, &[]).await;
    assert_eq!(out.stdout.trim(), "poddisruptionbudget.policy/web created", "{out:?}");
    let budgets: Api<PodDisruptionBudget> = c.api("default");
    settled(&budgets, "web", (2, 2, 1, 1)).await;
    let table = k.ok(&["get", "pdb"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().take(4).collect();
    assert_eq!(row, ["web", "1", "N/A", "1"], "{table}");

    // Both pods are on n1; the budget lets one go at a time. A second node takes the replacements, which
    // turn Ready only after a while (the kubelet is slow), so one eviction is refused and retried.
    nodes.create(&registered_node("n2")).await.unwrap();
    kubelet.abort();
    let (out, kubelet) = tokio::join!(
        k.run(&["drain", "n1", "--grace-period=0", "--timeout=90s"]),
        kubelet_after(&pods, SLOW_KUBELET)
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("node/n1 cordoned"), "{out:?}");
    assert!(out.stdout.trim_end().ends_with("node/n1 drained"), "{out:?}");
    assert_eq!(out.stdout.matches(" evicted").count(), 2, "{out:?}");
    assert!(
        out.stderr.contains(
            "(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget."
        ),
        "kubectl retried a refused eviction: {out:?}"
    );
    let left = pods
        .list(&ListParams { field_selector: "spec.nodeName=n1".into(), ..Default::default() })
        .await
        .unwrap();
    assert!(left.items.is_empty(), "{:?}", names(&left.items));

    // navctl drains the same way (n2 now holds both pods; n1 is back).
    let mut n1 = nodes.get("n1").await.unwrap();
    n1.spec.get_or_insert_with(Default::default).unschedulable = false;
    nodes.update(&n1).await.unwrap();
    ready_pods(&pods, "web", 2).await;
    settled(&budgets, "web", (2, 2, 1, 1)).await;
    kubelet.abort();
    let ((code, out, err), kubelet) = tokio::join!(
        env.navctl(&["drain", "n2", "--grace-period=0", "--timeout=90s"]),
        kubelet_after(&pods, SLOW_KUBELET)
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("node/n2 drained\n"), "{out}");
    assert!(
        err.contains("error when evicting pods/")
            && err.contains(
                "(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget."
            ),
        "{err}"
    );
    kubelet.abort();
}
