//! Unit tests of the StatefulSet controller's decisions.

use std::time::SystemTime;

use navarch_api::Resource;
use navarch_api::v1::{Pod, StatefulSet};

use super::claims::{claim_name, claims_for, is_stale, retention_refs};
use super::events::{Verb, claim_event, pod_event};
use super::plan::{Plan, Step, View, Why, max_unavailable, plan};
use super::pods::{Revision, identity_matches, new_pod, revision_for};
use super::{parent_and_ordinal, status};

const SET: &str = "
metadata: {name: web, namespace: ns, uid: set-uid, generation: 4}
spec:
  replicas: 3
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: 'nginx:1', volumeMounts: [{name: data, mountPath: /data}]}]
      volumes: [{name: data, emptyDir: {}}, {name: cache, emptyDir: {}}]
  volumeClaimTemplates:
  - metadata: {name: data, labels: {tier: db}}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
  podManagementPolicy: OrderedReady
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 0}}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Retain, whenScaled: Retain}
";

fn set(extra_spec: &str) -> StatefulSet {
    let mut v: serde_yaml::Value = serde_yaml::from_str(SET).unwrap();
    if !extra_spec.is_empty() {
        let extra: serde_yaml::Mapping = serde_yaml::from_str(extra_spec).unwrap();
        for (k, x) in extra {
            v["spec"][k] = x;
        }
    }
    serde_yaml::from_value(v).unwrap()
}

/// Pod `web-<ordinal>` at revision `rev` in `phase`, ready or not.
fn pod(ordinal: i32, rev: &str, phase: &str, ready: bool) -> Pod {
    let ready = if ready { "True" } else { "False" };
    serde_yaml::from_str(&format!(
        "metadata: {{name: web-{ordinal}, namespace: ns, uid: uid-{ordinal}, \
         labels: {{app: web, controller-revision-hash: {rev}}}, \
         ownerReferences: [{{apiVersion: apps/v1, kind: StatefulSet, name: web, uid: set-uid, controller: true}}]}}\n\
         spec: {{containers: [{{name: c, image: x}}]}}\n\
         status: {{phase: {phase}, conditions: [{{type: Ready, status: '{ready}', lastTransitionTime: '2026-01-01T00:00:00Z'}}]}}\n"
    ))
    .unwrap()
}

fn up(ordinal: i32, rev: &str) -> Pod {
    pod(ordinal, rev, "Running", true)
}

fn terminating(mut p: Pod) -> Pod {
    p.meta_mut().deletion_timestamp = "2026-01-01T00:00:00Z".into();
    p
}

fn run(s: &StatefulSet, pods: &[Pod]) -> Plan {
    let refs: Vec<&Pod> = pods.iter().collect();
    plan(&View { set: s, pods: &refs, update_revision: "new", now: SystemTime::now() })
}

fn create(ordinal: i32) -> Step {
    Step::Create { ordinal }
}

fn retain(ordinal: i32) -> Step {
    Step::Retain { pod: format!("web-{ordinal}") }
}

fn delete(ordinal: i32, why: Why) -> Step {
    Step::Delete { pod: format!("web-{ordinal}"), uid: format!("uid-{ordinal}"), why }
}

#[test]
fn ordinals_parse_like_kubernetes() {
    assert_eq!(parent_and_ordinal("web-0"), Some(("web", 0)));
    assert_eq!(parent_and_ordinal("my-db-12"), Some(("my-db", 12)));
    assert_eq!(parent_and_ordinal("web"), None);
    assert_eq!(parent_and_ordinal("web-x1"), None);
    assert_eq!(parent_and_ordinal("web-"), None);
}

#[test]
fn ordered_ready_creates_one_at_a_time() {
    let s = set("");
    assert_eq!(run(&s, &[]).steps, [create(0)]);
    // web-0 created but not ready: nothing else.
    assert_eq!(run(&s, &[pod(0, "new", "Running", false)]).steps, []);
    // Pending: its claims are made sure of, then wait.
    assert_eq!(run(&s, &[pod(0, "new", "Pending", false)]).steps, [Step::EnsureClaims { ordinal: 0 }]);
    // web-0 ready: web-1 next.
    assert_eq!(run(&s, &[up(0, "new")]).steps, [retain(0), create(1)]);
    // A gap (web-1 deleted) is filled before anything else; web-2 is left alone meanwhile.
    assert_eq!(run(&s, &[up(0, "new"), up(2, "new")]).steps, [retain(0), create(1)]);
    // ordinals.start shifts the names.
    let shifted = set("ordinals: {start: 5}");
    assert_eq!(run(&shifted, &[]).steps, [create(5)]);
}

#[test]
fn min_ready_seconds_holds_the_next_ordinal() {
    let s = set("minReadySeconds: 2000000000");
    let p = run(&s, &[up(0, "new")]);
    assert_eq!(p.steps, []);
    assert!(p.requeue_after.is_some());
}

#[test]
fn parallel_creates_and_deletes_at_once() {
    let s = set("podManagementPolicy: Parallel");
    assert_eq!(run(&s, &[]).steps, [create(0), create(1), create(2)]);
    let one = set("podManagementPolicy: Parallel\nreplicas: 1");
    let steps = run(&one, &[up(0, "new"), pod(1, "new", "Pending", false), up(2, "new")]).steps;
    assert_eq!(
        steps,
        [retain(0), retain(2), retain(1), delete(2, Why::ScaledDown), delete(1, Why::ScaledDown)]
    );
}

#[test]
fn scale_down_goes_from_the_highest_ordinal_one_at_a_time() {
    let s = set("replicas: 1");
    let all = [up(0, "new"), up(1, "new"), up(2, "new")];
    assert_eq!(run(&s, &all).steps, [retain(0), retain(2), retain(1), delete(2, Why::ScaledDown)]);
    // web-2 terminating: wait for it to be gone.
    let going = [up(0, "new"), up(1, "new"), terminating(up(2, "new"))];
    assert_eq!(run(&s, &going).steps, [retain(0), retain(2), retain(1)]);
    // Kubernetes deletes a healthy web-2 even while web-1 is unhealthy, and an unhealthy web-2 when it
    // is the first unhealthy pod; an unhealthy web-2 behind an unhealthy web-1 waits.
    let sick = [up(0, "new"), pod(1, "new", "Running", false), up(2, "new")];
    assert_eq!(run(&s, &sick).steps, [retain(0), retain(2), retain(1), delete(2, Why::ScaledDown)]);
    let sick_top = [up(0, "new"), up(1, "new"), pod(2, "new", "Running", false)];
    assert_eq!(run(&s, &sick_top).steps, [retain(0), retain(2), retain(1), delete(2, Why::ScaledDown)]);
    let both = [up(0, "new"), pod(1, "new", "Running", false), pod(2, "new", "Running", false)];
    assert_eq!(run(&s, &both).steps, [retain(0), retain(2), retain(1)]);
}

#[test]
fn failed_pods_are_deleted_then_created_again() {
    let s = set("");
    let failed = [up(0, "new"), pod(1, "new", "Failed", false)];
    assert_eq!(run(&s, &failed).steps, [retain(0), delete(1, Why::Finished)]);
    // Still terminating: nothing until it is gone (never two web-1 at once).
    let going = [up(0, "new"), terminating(pod(1, "new", "Failed", false))];
    assert_eq!(run(&s, &going).steps, [retain(0)]);
}

#[test]
fn rolling_update_from_the_highest_ordinal_down_to_the_partition() {
    let s = set("");
    let old = [up(0, "old"), up(1, "old"), up(2, "old")];
    let updates = |p: &Plan| -> Vec<Step> {
        p.steps.iter().filter(|s| matches!(s, Step::Delete { .. })).cloned().collect()
    };
    assert_eq!(updates(&run(&s, &old)), [delete(2, Why::Update)]);
    // web-2 replaced and ready: web-1 next.
    let mid = [up(0, "old"), up(1, "old"), up(2, "new")];
    assert_eq!(updates(&run(&s, &mid)), [delete(1, Why::Update)]);
    // web-2 recreated but not ready: the ordered creation waits, nothing is deleted.
    let waiting = [up(0, "old"), up(1, "old"), pod(2, "new", "Running", false)];
    assert_eq!(run(&s, &waiting).steps, [retain(0), retain(1)]);
    // partition 2: only web-2.
    let part = set("updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}");
    assert_eq!(updates(&run(&part, &old)), [delete(2, Why::Update)]);
    assert_eq!(updates(&run(&part, &mid)), []);
    // maxUnavailable 2 (Parallel, so an unready pod does not stop the plan): two at once, fewer
    // while some are down.
    let wide = set(
        "podManagementPolicy: Parallel\nupdateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 0, maxUnavailable: 2}}",
    );
    assert_eq!(updates(&run(&wide, &old)), [delete(2, Why::Update), delete(1, Why::Update)]);
    let one_down = [up(0, "old"), up(1, "old"), pod(2, "new", "Running", false)];
    assert_eq!(updates(&run(&wide, &one_down)), [delete(1, Why::Update)]);
    assert_eq!(
        max_unavailable(&set(
            "updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: '50%'}}"
        )),
        1
    );
    assert_eq!(
        max_unavailable(&set(
            "replicas: 10\nupdateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: '50%'}}"
        )),
        5
    );
    // OnDelete: nothing is replaced.
    let on_delete = set("updateStrategy: {type: OnDelete}");
    assert_eq!(updates(&run(&on_delete, &old)), []);
}

#[test]
fn new_pods_below_the_partition_keep_the_current_revision() {
    let part = set("updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}");
    assert_eq!(revision_for(&part, 1), Revision::Current);
    assert_eq!(revision_for(&part, 2), Revision::Update);
    assert_eq!(revision_for(&set(""), 0), Revision::Update);
    let on_delete = set("updateStrategy: {type: OnDelete}");
    assert_eq!(revision_for(&on_delete, 0), Revision::Update);
}

#[test]
fn pods_get_identity_labels_and_claims() {
    let s = set("");
    let template = s.spec.as_ref().unwrap().template.clone().unwrap();
    let p = new_pod(&s, &template, "web-abc", 1);
    let m = p.meta();
    assert_eq!(m.name, "web-1");
    assert_eq!(m.labels.get("controller-revision-hash").map(String::as_str), Some("web-abc"));
    assert_eq!(m.labels.get("statefulset.kubernetes.io/pod-name").map(String::as_str), Some("web-1"));
    assert_eq!(m.labels.get("apps.kubernetes.io/pod-index").map(String::as_str), Some("1"));
    assert_eq!(m.owner_references[0].kind, "StatefulSet");
    assert_eq!(m.owner_references[0].controller, Some(true));
    let spec = p.spec.as_ref().unwrap();
    assert_eq!((spec.hostname.as_str(), spec.subdomain.as_str()), ("web-1", "web"));
    assert!(identity_matches(&s, &p));
    // The template's volume named like the claim template mounts the claim; others stay.
    let names: Vec<&str> = spec.volumes.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["data", "cache"]);
    let data = spec.volumes[0].persistent_volume_claim.as_ref().unwrap();
    assert_eq!(data.claim_name, "data-web-1");
    assert!(spec.volumes[0].empty_dir.is_none());

    let claims = claims_for(&s, 1);
    assert_eq!(claims.len(), 1);
    let c = claims[0].meta();
    assert_eq!((c.name.as_str(), c.namespace.as_str()), ("data-web-1", "ns"));
    assert_eq!(claim_name(&s, "data", 1), "data-web-1");
    // The template's labels plus the selector's.
    assert_eq!(c.labels.get("tier").map(String::as_str), Some("db"));
    assert_eq!(c.labels.get("app").map(String::as_str), Some("web"));
}

#[test]
fn claim_owners_follow_the_retention_policy() {
    let policy = |deleted: &str, scaled: &str| {
        set(&format!(
            "persistentVolumeClaimRetentionPolicy: {{whenDeleted: {deleted}, whenScaled: {scaled}}}"
        ))
    };
    let p = up(1, "new");
    let kinds = |refs: Option<Vec<navarch_api::v1::OwnerReference>>| -> Option<Vec<String>> {
        refs.map(|r| r.into_iter().map(|r| r.kind).collect())
    };
    // Retain/Retain: no owners; nothing to change.
    assert_eq!(retention_refs(&policy("Retain", "Retain"), &[], &p, true), None);
    // whenDeleted Delete: the set owns it, in range or not.
    let d = policy("Delete", "Retain");
    assert_eq!(kinds(retention_refs(&d, &[], &p, true)), Some(vec!["StatefulSet".into()]));
    assert_eq!(kinds(retention_refs(&d, &[], &p, false)), Some(vec!["StatefulSet".into()]));
    // whenScaled Delete: the pod owns it once its ordinal is scaled away.
    let sc = policy("Retain", "Delete");
    assert_eq!(retention_refs(&sc, &[], &p, true), None);
    let by_pod = retention_refs(&sc, &[], &p, false).unwrap();
    assert_eq!((by_pod[0].kind.as_str(), by_pod[0].uid.as_str()), ("Pod", "uid-1"));
    assert_ne!(by_pod[0].controller, Some(true));
    // Both: the set while in range, the pod (and not the set) once scaled away.
    let both = policy("Delete", "Delete");
    let in_range = retention_refs(&both, &[], &p, true).unwrap();
    assert_eq!(kinds(Some(in_range.clone())), Some(vec!["StatefulSet".into()]));
    assert_eq!(kinds(retention_refs(&both, &in_range, &p, false)), Some(vec!["Pod".into()]));
    // Scaled back up: the pod's reference goes again.
    assert_eq!(kinds(retention_refs(&sc, &by_pod, &p, true)), Some(vec![]));
    // A claim still owned by an earlier web-1 is stale for a new web-1.
    let mut claim = claims_for(&sc, 1).remove(0);
    claim.meta_mut().owner_references = by_pod;
    let mut fresh = up(1, "new");
    fresh.meta_mut().uid = String::new();
    assert!(is_stale(&sc, &claim, &fresh));
    assert!(!is_stale(&sc, &claim, &p));
    assert!(!is_stale(&policy("Retain", "Retain"), &claim, &fresh));
}

#[test]
fn status_counts_and_completes_the_rollout() {
    let s = set("minReadySeconds: 2000000000");
    let pods = [up(0, "old"), up(1, "new"), pod(2, "new", "Pending", false), terminating(up(3, "old"))];
    let refs: Vec<&Pod> = pods.iter().collect();
    let st = status::compute(&s, &refs, "old", "new", None, SystemTime::now());
    assert_eq!((st.replicas, st.ready_replicas, st.available_replicas), (4, 3, 0));
    assert_eq!((st.current_replicas, st.updated_replicas), (1, 2));
    assert_eq!((st.current_revision.as_str(), st.update_revision.as_str()), ("old", "new"));
    assert_eq!((st.observed_generation, st.collision_count), (4, Some(0)));
    // Every pod updated and ready: the update revision becomes the current one.
    let done = [up(0, "new"), up(1, "new"), up(2, "new")];
    let refs: Vec<&Pod> = done.iter().collect();
    let st = status::compute(&set(""), &refs, "old", "new", Some(1), SystemTime::now());
    assert_eq!((st.current_revision.as_str(), st.current_replicas, st.available_replicas), ("new", 3, 3));
    assert_eq!(st.collision_count, Some(1));
}

#[test]
fn events_are_worded_as_kubernetes() {
    let e = claim_event(Verb::Create, "web", "web-0", "data-web-0", None);
    assert_eq!((e.kind, e.reason), ("Normal", "SuccessfulCreate"));
    assert_eq!(e.message, "create Claim data-web-0 Pod web-0 in StatefulSet web success");
    let e = claim_event(
        Verb::Create,
        "web",
        "web-0",
        "data-web-0",
        Some("spec.resources[storage]: Required value"),
    );
    assert_eq!((e.kind, e.reason), ("Warning", "FailedCreate"));
    assert_eq!(
        e.message,
        "create Claim data-web-0 for Pod web-0 in StatefulSet web failed error: spec.resources[storage]: Required value"
    );
    let e = pod_event(Verb::Create, "web", "web-2", None);
    assert_eq!(
        (e.reason, e.message.as_str()),
        ("SuccessfulCreate", "create Pod web-2 in StatefulSet web successful")
    );
    let e = pod_event(Verb::Delete, "web", "web-1", Some("boom"));
    assert_eq!((e.kind, e.reason), ("Warning", "FailedDelete"));
    assert_eq!(e.message, "delete Pod web-1 in StatefulSet web failed error: boom");
}
