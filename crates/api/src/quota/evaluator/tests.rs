use std::time::{Duration, SystemTime};

use super::*;
use crate::quota::check::{Denial, Request, check};
use crate::quota::{pretty_print, usage};

fn obj(yaml: &str) -> Object {
    crate::manifest::parse(yaml, "t").unwrap().remove(0)
}

fn pod(spec: &str) -> Object {
    obj(&format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: ns}}\nspec:\n{spec}"))
}

fn quota(name: &str, spec: &str, used: &str) -> ResourceQuota {
    let o = obj(&format!(
        "apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: {name}, namespace: ns}}\nspec:\n{spec}\n"
    ));
    let Object::ResourceQuota(mut q) = o else { panic!() };
    let hard = q.spec.as_ref().unwrap().hard.clone();
    let used: crate::quota::ResourceList = if used.is_empty() {
        hard.keys().map(|k| (k.clone(), Qty::zero())).collect()
    } else {
        used.split(',')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), Qty::parse(&crate::v1::Quantity { string: v.into() }).unwrap())
            })
            .collect()
    };
    q.status = Some(crate::v1::ResourceQuotaStatus { hard, used: crate::quota::to_quantities(&used) });
    q
}

const SMALL: &str = "  containers:\n  - name: a\n    image: x\n    resources: {requests: {cpu: 100m, memory: 1Gi}, limits: {cpu: 200m, memory: 1Gi}}\n";

fn now() -> SystemTime {
    SystemTime::now()
}

#[test]
fn pod_usage_sums_containers_and_takes_the_init_maximum() {
    let p = pod(&format!(
        "{SMALL}  - name: b\n    image: x\n    resources: {{requests: {{cpu: 300m, memory: 512Mi}}}}\n  initContainers:\n  - name: i\n    image: x\n    resources: {{requests: {{cpu: '1'}}}}\n"
    ));
    let u = Evaluator::Pods.usage(Item::of(&p), now());
    assert_eq!(
        pretty_print(&u),
        "count/pods=1,cpu=1,limits.cpu=200m,limits.memory=1Gi,memory=1536Mi,pods=1,requests.cpu=1,requests.memory=1536Mi"
    );
}

#[test]
fn terminal_pods_count_only_as_objects() {
    let Object::Pod(mut p) = pod(SMALL) else { panic!() };
    p.status = Some(crate::v1::PodStatus { phase: "Succeeded".into(), ..Default::default() });
    assert_eq!(pretty_print(&pod_usage(&p, now())), "count/pods=1");
    // Being deleted past its grace period: no longer charged.
    let Object::Pod(mut p) = pod(SMALL) else { panic!() };
    let m = p.metadata.as_mut().unwrap();
    m.deletion_timestamp = crate::rfc3339::format_nano(now() - Duration::from_secs(60));
    m.deletion_grace_period_seconds = Some(30);
    assert_eq!(pretty_print(&pod_usage(&p, now())), "count/pods=1");
}

#[test]
fn scopes() {
    let best_effort = pod("  containers:\n  - {name: a, image: x}\n");
    let terminating = pod(&format!("  activeDeadlineSeconds: 10\n  priorityClassName: high\n{SMALL}"));
    let sel = |scope: &str, op: &str, values: &[&str]| ScopedResourceSelectorRequirement {
        scope_name: scope.into(),
        operator: op.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    };
    let m = |s: &ScopedResourceSelectorRequirement, o: &Object| Evaluator::Pods.matches_scope(s, Item::of(o));
    assert!(m(&sel("BestEffort", "Exists", &[]), &best_effort));
    assert!(!m(&sel("NotBestEffort", "Exists", &[]), &best_effort));
    assert!(m(&sel("NotTerminating", "Exists", &[]), &best_effort));
    assert!(m(&sel("Terminating", "Exists", &[]), &terminating));
    assert!(m(&sel("PriorityClass", "In", &["high", "low"]), &terminating));
    assert!(!m(&sel("PriorityClass", "In", &["high"]), &best_effort));
    assert!(m(&sel("PriorityClass", "NotIn", &["high"]), &best_effort));
    assert!(m(&sel("PriorityClass", "DoesNotExist", &[]), &best_effort));
    assert!(!m(&sel("PriorityClass", "Exists", &[]), &best_effort));
    // Other kinds never fall under a scope.
    let svc = obj(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: ns}\nspec: {ports: [{port: 80}]}\n",
    );
    assert!(!Evaluator::Services.matches_scope(&sel("NotTerminating", "Exists", &[]), Item::of(&svc)));
}

#[test]
fn service_and_claim_usage() {
    let svc = obj(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: ns}\nspec: {type: NodePort, ports: [{port: 80}, {port: 81}]}\n",
    );
    assert_eq!(
        pretty_print(&Evaluator::Services.usage(Item::of(&svc), now())),
        "count/services=1,services=1,services.loadbalancers=0,services.nodeports=2"
    );
    let pvc = obj(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c, namespace: ns}\nspec: {storageClassName: gold, resources: {requests: {storage: 1.5Gi}}}\n",
    );
    assert_eq!(
        pretty_print(&Evaluator::Claims.usage(Item::of(&pvc), now())),
        "count/persistentvolumeclaims=1,gold.storageclass.storage.k8s.io/persistentvolumeclaims=1,gold.storageclass.storage.k8s.io/requests.storage=1536Mi,persistentvolumeclaims=1,requests.storage=1536Mi"
    );
}

#[test]
fn object_counts_of_other_kinds() {
    let info = crate::kind_info("Deployment").unwrap();
    let ev = Evaluator::for_kind(info).unwrap();
    assert_eq!(
        ev.matching_resources(&["count/deployments.apps".to_string(), "pods".to_string()]),
        vec!["count/deployments.apps".to_string()]
    );
    let cm = Evaluator::for_kind(crate::kind_info("ConfigMap").unwrap()).unwrap();
    assert_eq!(pretty_print(&cm.usage(Item::Other, now())), "configmaps=1,count/configmaps=1");
    assert!(Evaluator::for_kind(crate::kind_info("Node").unwrap()).is_none());
}

#[test]
fn the_pod_that_would_exceed_is_refused_with_kubernetes_message() {
    let q = quota("compute", "  hard: {requests.memory: 2Gi, pods: '10'}", "pods=2,requests.memory=2Gi");
    let p = pod(SMALL);
    let r = Request { evaluator: &Evaluator::Pods, object: Item::of(&p), old: None, now: now() };
    let e = check(&[q], &r).unwrap_err();
    assert_eq!(
        e.to_string(),
        "exceeded quota: compute, requested: requests.memory=1Gi, used: requests.memory=2Gi, limited: requests.memory=2Gi"
    );
}

#[test]
fn a_fitting_pod_is_charged_on_every_matching_quota() {
    let a = quota("a", "  hard: {requests.memory: 2Gi, pods: '10'}", "pods=1,requests.memory=1Gi");
    let b = quota("b", "  hard: {services: '1'}", "");
    let c = quota("c", "  hard: {pods: '1'}\n  scopes: [BestEffort]", "");
    let p = pod(SMALL);
    let r = Request { evaluator: &Evaluator::Pods, object: Item::of(&p), old: None, now: now() };
    let charged = check(&[a, b, c], &r).unwrap();
    assert_eq!(charged.len(), 1);
    assert_eq!(charged[0].0, 0);
    assert_eq!(pretty_print(&charged[0].1), "pods=2,requests.memory=2Gi");
}

#[test]
fn compute_quotas_require_every_container_to_state_the_value() {
    let q = quota("compute", "  hard: {limits.cpu: '2', requests.memory: 2Gi}", "");
    let p = pod(
        "  containers:\n  - {name: b, image: x}\n  - {name: a, image: x, resources: {requests: {memory: 1Mi}}}\n",
    );
    let r = Request { evaluator: &Evaluator::Pods, object: Item::of(&p), old: None, now: now() };
    assert_eq!(
        check(&[q], &r).unwrap_err(),
        Denial::Constraint {
            quota: "compute".into(),
            message: "must specify limits.cpu for: a,b; requests.memory for: b".into()
        }
    );
}

#[test]
fn unknown_status_refuses_and_uncomputed_quotas_do_not_apply() {
    let mut q = quota("q", "  hard: {pods: '1'}", "");
    q.status.as_mut().unwrap().used.clear();
    let p = pod(SMALL);
    let r = Request { evaluator: &Evaluator::Pods, object: Item::of(&p), old: None, now: now() };
    assert_eq!(
        check(std::slice::from_ref(&q), &r).unwrap_err().to_string(),
        "status unknown for quota: q, resources: pods"
    );
    q.status = None;
    assert!(check(&[q], &r).unwrap().is_empty());
}

#[test]
fn claim_updates_charge_only_the_growth() {
    let q = quota("s", "  hard: {requests.storage: 10Gi}", "requests.storage=5Gi");
    let claim = |size: &str| {
        obj(&format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: c, namespace: ns}}\nspec: {{resources: {{requests: {{storage: {size}}}}}}}\n"
        ))
    };
    let (old, new) = (claim("5Gi"), claim("8Gi"));
    let r = Request {
        evaluator: &Evaluator::Claims,
        object: Item::of(&new),
        old: Some(Item::of(&old)),
        now: now(),
    };
    let charged = check(std::slice::from_ref(&q), &r).unwrap();
    assert_eq!(pretty_print(&charged[0].1), "requests.storage=8Gi");
    let big = claim("20Gi");
    let r = Request {
        evaluator: &Evaluator::Claims,
        object: Item::of(&big),
        old: Some(Item::of(&old)),
        now: now(),
    };
    assert_eq!(
        check(&[q], &r).unwrap_err().to_string(),
        "exceeded quota: s, requested: requests.storage=15Gi, used: requests.storage=5Gi, limited: requests.storage=10Gi"
    );
}

#[test]
fn the_controller_recomputes_used_from_objects_under_the_scopes() {
    let mut q = quota(
        "q",
        "  hard: {pods: '5', requests.cpu: '1', count/widgets.example.com: '3'}\n  scopes: [NotTerminating]",
        "",
    );
    q.status
        .as_mut()
        .unwrap()
        .used
        .insert("count/widgets.example.com".into(), crate::v1::Quantity { string: "2".into() });
    let (a, b) = (pod(SMALL), pod(&format!("  activeDeadlineSeconds: 5\n{SMALL}")));
    let hard = crate::quota::from_quantities(&q.spec.as_ref().unwrap().hard);
    assert_eq!(usage::evaluators_for(&hard), vec![Evaluator::Pods]);
    let used = usage::usage_of(&Evaluator::Pods, &q, [Item::of(&a), Item::of(&b)], now());
    assert_eq!(pretty_print(&used), "pods=1,requests.cpu=100m");
    let status = usage::status(&q, &used);
    let shown: Vec<String> = status.used.iter().map(|(k, v)| format!("{k}={}", v.string)).collect();
    assert_eq!(shown, ["count/widgets.example.com=2", "pods=1", "requests.cpu=100m"]);
    assert_eq!(status.hard, q.spec.unwrap().hard);
}
