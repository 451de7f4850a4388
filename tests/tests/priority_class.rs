//! PriorityClass (`scheduling.k8s.io/v1`) and the Priority admission against a real etcd + api-server: the
//! built-in classes exist from the start (and after a restart) and cannot be deleted; validation and the
//! single global default with Kubernetes' messages; `value` immutable; pods get `spec.priority` and
//! `spec.preemptionPolicy` from their class, or from the global default (whose name they then carry), and
//! are refused for an unknown class or a priority of their own that disagrees; an update that leaves the
//! priority out keeps it; a ResourceQuota scoped to `PriorityClass In [...]` charges the pods of those
//! classes, the defaulted ones included (the controller-manager's quota controller counts them); kubectl's `get priorityclass` columns and `describe`, navctl's
//! the same.

use std::time::Duration;

use navarch_api::v1::{Pod, PriorityClass, ResourceQuota};
use navarch_client::{Api, DeleteParams};
use navarch_tests::{Daemon, Kubectl, TestEnv, eventually};

fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap()
}

fn class(name: &str, extra: &str) -> PriorityClass {
    from_yaml(&format!("{{metadata: {{name: {name}}}, {extra}}}"))
}

/// A pod with `spec_extra` (e.g. `priorityClassName: high`) added to its spec.
fn pod(name: &str, spec_extra: &str) -> Pod {
    let extra = if spec_extra.is_empty() { String::new() } else { format!("{spec_extra}, ") };
    from_yaml(&format!(
        "{{metadata: {{name: {name}}}, spec: {{{extra}containers: [{{name: c, image: busybox:1.36}}]}}}}"
    ))
}

/// (priorityClassName, priority, preemptionPolicy) of a stored pod.
fn priority_of(p: &Pod) -> (String, Option<i32>, Option<String>) {
    let s = p.spec.as_ref().unwrap();
    (s.priority_class_name.clone(), s.priority, s.preemption_policy.clone())
}

fn refusal(e: navarch_client::Error) -> String {
    e.server_message()
}

#[tokio::test]
async fn priority_classes_and_the_priority_admission() {
    let mut env = TestEnv::start().await;
    let c = env.client().await;
    let classes: Api<PriorityClass> = c.api("");
    let pods: Api<Pod> = c.api("default");

    // The built-in classes, as Kubernetes defines them.
    let node = classes.get("system-node-critical").await.unwrap();
    assert_eq!((node.value, node.global_default), (2_000_001_000, false));
    assert_eq!(node.preemption_policy.as_deref(), Some("PreemptLowerPriority"));
    assert_eq!(
        node.description,
        "Used for system critical pods that must not be moved from their current node."
    );
    assert_eq!(classes.get("system-cluster-critical").await.unwrap().value, 2_000_000_000);
    let e = refusal(classes.delete("system-node-critical", &DeleteParams::default()).await.unwrap_err());
    assert_eq!(
        e,
        "priorityclasses.scheduling.k8s.io \"system-node-critical\" is forbidden: this is a system priority class and cannot be deleted"
    );
    let (code, status) = env
        .rest()
        .json("DELETE", "/apis/scheduling.k8s.io/v1/priorityclasses/system-cluster-critical", "", None)
        .await;
    assert_eq!((code, status["reason"].as_str()), (403, Some("Forbidden")), "{status}");

    // Validation.
    let e = refusal(classes.create(&class("huge", "value: 1000000001")).await.unwrap_err());
    assert!(
        e.contains("value: Forbidden: maximum allowed value of a user defined priority is 1000000000"),
        "{e}"
    );
    let e = refusal(classes.create(&class("system-mine", "value: 10")).await.unwrap_err());
    assert!(
        e.contains("metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"),
        "{e}"
    );

    // Classes; one global default only.
    classes
        .create(&class("high", "value: 1000000, preemptionPolicy: Never, description: web"))
        .await
        .unwrap();
    classes.create(&class("normal", "value: 100, globalDefault: true")).await.unwrap();
    let e = refusal(classes.create(&class("other", "value: 5, globalDefault: true")).await.unwrap_err());
    assert_eq!(
        e,
        "priorityclasses.scheduling.k8s.io \"other\" is forbidden: PriorityClass normal is already marked as default. Only one default can exist"
    );
    let mut high = classes.get("high").await.unwrap();
    high.value = 7;
    let e = refusal(classes.update(&high).await.unwrap_err());
    assert!(e.contains("value: Forbidden: may not be changed in an update."), "{e}");

    // Pods: a named class, unknown ones, a priority of their own.
    let web = pods.create(&pod("web", "priorityClassName: high")).await.unwrap();
    assert_eq!(priority_of(&web), ("high".into(), Some(1_000_000), Some("Never".into())));
    let e = refusal(pods.create(&pod("lost", "priorityClassName: nope")).await.unwrap_err());
    assert_eq!(e, "pods \"lost\" is forbidden: no PriorityClass with name nope was found");
    let e = refusal(pods.create(&pod("own", "priorityClassName: high, priority: 5")).await.unwrap_err());
    assert_eq!(
        e,
        "pods \"own\" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000000 from the given PriorityClass name"
    );
    // The system classes are not limited to kube-system (Kubernetes 1.17+; ResourceQuota limits them).
    let agent = pods.create(&pod("agent", "priorityClassName: system-node-critical")).await.unwrap();
    assert_eq!(priority_of(&agent).1, Some(2_000_001_000));

    // No class: the global default, once the api-server's store has it.
    eventually("a pod gets the global default", Duration::from_secs(10), async || {
        let p = pods.create(&pod("plain", "")).await.map_err(|e| e.to_string())?;
        if priority_of(&p) == ("normal".into(), Some(100), Some("PreemptLowerPriority".into())) {
            Ok(())
        } else {
            pods.delete("plain", &DeleteParams::default()).await.unwrap();
            Err(format!("{:?}", priority_of(&p)))
        }
    })
    .await;

    // An update that leaves the priority out keeps it.
    let mut stored = pods.get("web").await.unwrap();
    let spec = stored.spec.as_mut().unwrap();
    spec.priority = None;
    spec.preemption_policy = None;
    stored.metadata.as_mut().unwrap().labels.insert("tier".into(), "web".into());
    let updated = pods.update(&stored).await.unwrap();
    assert_eq!(priority_of(&updated), ("high".into(), Some(1_000_000), Some("Never".into())));

    // A quota scoped to the class `normal` charges the pods that got it by default.
    let quotas: Api<ResourceQuota> = c.api("default");
    quotas
        .create(&from_yaml(
            "{metadata: {name: normal-pods}, spec: {hard: {pods: '2'}, scopeSelector: {matchExpressions: [{scopeName: PriorityClass, operator: In, values: [normal]}]}}}",
        ))
        .await
        .unwrap();
    // The resource quota controller counts `plain` (class normal by default), not `web` or `agent`.
    let _cm = Daemon::start(&env, "controller-manager", "controller-manager", &[]);
    eventually("the quota counts the pod of class normal", Duration::from_secs(30), async || {
        let q = quotas.get("normal-pods").await.unwrap();
        let used = q.status.as_ref().and_then(|s| s.used.get("pods")).map(|v| v.string.clone());
        if used.as_deref() == Some("1") { Ok(()) } else { Err(format!("{:?}", q.status)) }
    })
    .await;
    pods.create(&pod("plain-2", "")).await.unwrap();
    let e = refusal(pods.create(&pod("plain-3", "")).await.unwrap_err());
    assert!(e.starts_with("pods \"plain-3\" is forbidden: exceeded quota: normal-pods, requested: pods=1, used: pods=2, limited: pods=2"), "{e}");
    // Pods of other classes are not charged.
    pods.create(&pod("web-2", "priorityClassName: high")).await.unwrap();

    // After a restart the built-in classes are still there, once.
    env.api_server.restart().await;
    let c = env.client().await;
    let classes: Api<PriorityClass> = c.api("");
    let names: Vec<String> = classes
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|pc| pc.metadata.as_ref().unwrap().name.clone())
        .collect();
    assert_eq!(names, ["high", "normal", "system-cluster-critical", "system-node-critical"]);
}

#[tokio::test]
async fn priority_classes_through_kubectl() {
    let env = TestEnv::start().await;
    let k = Kubectl::new(&env.api_server);
    let manifest = "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000000\nglobalDefault: false\ndescription: \"For the web tier.\"\npreemptionPolicy: Never\n";
    let out = k.run_stdin(&["create", "-f", "-"], Some(manifest)).await;
    assert_eq!(out.stdout.trim(), "priorityclass.scheduling.k8s.io/high created", "{out:?}");

    let out = k.ok(&["api-resources", "--api-group=scheduling.k8s.io", "--no-headers"]).await;
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, ["priorityclasses", "pc", "scheduling.k8s.io/v1", "false", "PriorityClass"], "{out}");

    let out = k.ok(&["get", "priorityclass"]).await;
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"], "{out}");
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(lines[1][..3], ["high", "1000000", "false"], "{out}");
    assert_eq!(lines[1][4], "Never", "{out}");
    assert_eq!(lines[2][..3], ["system-cluster-critical", "2000000000", "false"], "{out}");
    assert_eq!(lines[3][..3], ["system-node-critical", "2000001000", "false"], "{out}");
    assert_eq!(lines[3][4], "PreemptLowerPriority", "{out}");
    let out = k.ok(&["get", "pc", "high", "-o", "jsonpath={.value} {.preemptionPolicy}"]).await;
    assert_eq!(out, "1000000 Never");

    let out = k.ok(&["describe", "priorityclass", "high"]).await;
    assert_eq!(
        out,
        "Name:              high\nValue:             1000000\nGlobalDefault:     false\nPreemptionPolicy:  Never\nDescription:       For the web tier.\nAnnotations:       <none>\nEvents:            <none>\n"
    );
    let (code, navctl, _) = env.navctl(&["describe", "priorityclass", "high"]).await;
    assert_eq!((code, navctl.as_str()), (0, out.as_str()));

    let out = k.fails(&["delete", "priorityclass", "system-node-critical"]).await;
    assert!(
        out.stderr.contains("Error from server (Forbidden): priorityclasses.scheduling.k8s.io \"system-node-critical\" is forbidden: this is a system priority class and cannot be deleted"),
        "{out:?}"
    );
    let out = k
        .apply("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  priorityClassName: missing\n  containers: [{name: c, image: busybox}]\n", &[])
        .await;
    assert!(
        out.stderr.contains("pods \"p\" is forbidden: no PriorityClass with name missing was found"),
        "{out:?}"
    );
}
