//! What an object uses of a quota (Kubernetes' evaluators): pods (compute requests and limits, `pods` for
//! pods not yet terminal, `count/pods`), claims (`requests.storage`, per class, `persistentvolumeclaims`),
//! services (`services`, `services.nodeports`, `services.loadbalancers`), and an object count
//! (`count/<resource>[.<group>]`, plus the legacy name for configmaps, secrets, replicationcontrollers and
//! resourcequotas) for every other namespaced kind. Only pods fall under scopes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use super::names::{STORAGE_CLASS_SUFFIX, is_extended_resource, object_count_name};
use super::{Qty, ResourceList, add};
use crate::selector::Requirement;
use crate::v1::{
    Container, PersistentVolumeClaim, Pod, PodAffinityTerm, ResourceQuota, ScopedResourceSelectorRequirement,
    Service,
};
use crate::{KindInfo, Object};

/// Which write is being admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
}

/// How one kind's objects use quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evaluator {
    Pods,
    Services,
    Claims,
    /// Any other kind: one of `count` (and of `legacy`) per object.
    Count {
        kind: &'static str,
        count: String,
        legacy: Option<&'static str>,
    },
}

/// An object an evaluator looks at.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    Pod(&'a Pod),
    Service(&'a Service),
    Claim(&'a PersistentVolumeClaim),
    Other,
}

impl<'a> Item<'a> {
    pub fn of(o: &'a Object) -> Item<'a> {
        match o {
            Object::Pod(p) => Item::Pod(p),
            Object::Service(s) => Item::Service(s),
            Object::PersistentVolumeClaim(c) => Item::Claim(c),
            _ => Item::Other,
        }
    }
}

const POD_RESOURCES: &[&str] = &[
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
];
const SERVICE_RESOURCES: &[&str] =
    &["count/services", "services", "services.nodeports", "services.loadbalancers"];
const CLAIM_RESOURCES: &[&str] = &["persistentvolumeclaims", "requests.storage"];
/// Compute names every container must state when a quota limits them (Kubernetes' `validationSet`).
const REQUIRED_PER_CONTAINER: &[&str] =
    &["cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"];

impl Evaluator {
    /// The evaluator of a namespaced kind (`None` for cluster-scoped kinds, which quotas never count).
    pub fn for_kind(info: &KindInfo) -> Option<Evaluator> {
        if !info.namespaced {
            return None;
        }
        Some(match info.kind {
            "Pod" => Evaluator::Pods,
            "Service" => Evaluator::Services,
            "PersistentVolumeClaim" => Evaluator::Claims,
            kind => Evaluator::Count {
                kind: info.kind,
                count: object_count_name(info.plural, info.api_version),
                legacy: match kind {
                    "ConfigMap" => Some("configmaps"),
                    "Secret" => Some("secrets"),
                    "ReplicationController" => Some("replicationcontrollers"),
                    "ResourceQuota" => Some("resourcequotas"),
                    _ => None,
                },
            },
        })
    }

    /// The kind it evaluates.
    pub fn kind(&self) -> &'static str {
        match self {
            Evaluator::Pods => "Pod",
            Evaluator::Services => "Service",
            Evaluator::Claims => "PersistentVolumeClaim",
            Evaluator::Count { kind, .. } => kind,
        }
    }

    /// Whether a write of this kind can change usage (Kubernetes' `Handles`): creates; updates of claims
    /// and services; pod updates that move the pod between Terminating and NotTerminating.
    pub fn handles(&self, op: Operation, new: Item, old: Option<Item>) -> bool {
        match (self, op) {
            (_, Operation::Create) => true,
            (Evaluator::Services | Evaluator::Claims, Operation::Update) => true,
            (Evaluator::Pods, Operation::Update) => match (new, old) {
                (Item::Pod(n), Some(Item::Pod(o))) => is_terminating(n) != is_terminating(o),
                _ => false,
            },
            (Evaluator::Count { .. }, Operation::Update) => false,
        }
    }

    /// The names among `names` this evaluator accounts (Kubernetes' `MatchingResources`).
    pub fn matching_resources<'n>(&self, names: impl IntoIterator<Item = &'n String>) -> Vec<String> {
        names.into_iter().filter(|n| self.accounts(n)).cloned().collect()
    }

    fn accounts(&self, name: &str) -> bool {
        match self {
            Evaluator::Pods => {
                POD_RESOURCES.contains(&name)
                    || name.starts_with("hugepages-")
                    || name.starts_with("requests.hugepages-")
                    || name.strip_prefix("requests.").is_some_and(|_| !super::names::is_native_resource(name))
            }
            Evaluator::Services => SERVICE_RESOURCES.contains(&name),
            Evaluator::Claims => {
                name == "count/persistentvolumeclaims"
                    || CLAIM_RESOURCES.contains(&name)
                    || CLAIM_RESOURCES.iter().any(|r| name.ends_with(&format!("{STORAGE_CLASS_SUFFIX}{r}")))
            }
            Evaluator::Count { count, legacy, .. } => name == count || Some(name) == *legacy,
        }
    }

    /// Whether the object falls under one scope requirement (only pods fall under any).
    pub fn matches_scope(&self, sel: &ScopedResourceSelectorRequirement, item: Item) -> bool {
        match (self, item) {
            (Evaluator::Pods, Item::Pod(p)) => pod_matches_scope(sel, p),
            _ => false,
        }
    }

    /// Whether the object falls under every scope of `scopes`.
    pub fn matches_scopes(&self, scopes: &[ScopedResourceSelectorRequirement], item: Item) -> bool {
        scopes.iter().all(|s| self.matches_scope(s, item))
    }

    /// Kubernetes' `Matches` for admission: the quota's `status.hard` names something this evaluator
    /// accounts, and the object falls under all its scopes.
    pub fn matches(&self, quota: &ResourceQuota, item: Item) -> bool {
        let hard = quota.status.as_ref().map(|s| &s.hard);
        let accounts = hard.is_some_and(|h| h.keys().any(|k| self.accounts(k)));
        let scopes = quota.spec.as_ref().map(super::scope_selectors).unwrap_or_default();
        accounts && self.matches_scopes(&scopes, item)
    }

    /// What the object uses (Kubernetes' `Usage`); `now` decides whether a pod being deleted is past its
    /// grace period.
    pub fn usage(&self, item: Item, now: SystemTime) -> ResourceList {
        match (self, item) {
            (Evaluator::Pods, Item::Pod(p)) => pod_usage(p, now),
            (Evaluator::Services, Item::Service(s)) => service_usage(s),
            (Evaluator::Claims, Item::Claim(c)) => claim_usage(c),
            (Evaluator::Count { count, legacy, .. }, _) => {
                let mut out = ResourceList::from([(count.clone(), Qty::int(1))]);
                if let Some(l) = legacy {
                    out.insert(l.to_string(), Qty::int(1));
                }
                out
            }
            _ => ResourceList::new(),
        }
    }

    /// Kubernetes' `Constraints`: a pod under a quota that limits cpu or memory (requests or limits) must
    /// state that value in every container: `must specify limits.cpu for: a,b; requests.memory for: a`.
    pub fn constraints(&self, required: &[String], item: Item) -> Result<(), String> {
        let Item::Pod(pod) = item else { return Ok(()) };
        let required: BTreeSet<&str> =
            required.iter().map(String::as_str).filter(|r| REQUIRED_PER_CONTAINER.contains(r)).collect();
        if required.is_empty() {
            return Ok(());
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let mut missing: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for c in spec.containers.iter().chain(&spec.init_containers) {
            let r = c.resources.clone().unwrap_or_default();
            let stated =
                compute_usage(&super::from_quantities(&r.requests), &super::from_quantities(&r.limits));
            for name in &required {
                if !stated.contains_key(*name) {
                    missing.entry(name).or_default().insert(c.name.as_str());
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let parts: Vec<String> = missing
            .iter()
            .map(|(r, cs)| format!("{r} for: {}", cs.iter().copied().collect::<Vec<_>>().join(",")))
            .collect();
        Err(format!("must specify {}", parts.join("; ")))
    }
}

/// A pod with `activeDeadlineSeconds` (≥ 0) is Terminating.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.active_deadline_seconds).is_some_and(|d| d >= 0)
}

/// BestEffort: no container states any request or limit.
pub fn is_best_effort(pod: &Pod) -> bool {
    let containers = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
    crate::qos::qos_class(containers) == "BestEffort"
}

fn cross_namespace(t: &PodAffinityTerm) -> bool {
    !t.namespaces.is_empty() || t.namespace_selector.is_some()
}

fn uses_cross_namespace_affinity(pod: &Pod) -> bool {
    let Some(a) = pod.spec.as_ref().and_then(|s| s.affinity.as_ref()) else { return false };
    let terms = |req: &[PodAffinityTerm], pref: &[crate::v1::WeightedPodAffinityTerm]| {
        req.iter().any(cross_namespace)
            || pref.iter().filter_map(|w| w.pod_affinity_term.as_ref()).any(cross_namespace)
    };
    a.pod_affinity.as_ref().is_some_and(|p| {
        terms(
            &p.required_during_scheduling_ignored_during_execution,
            &p.preferred_during_scheduling_ignored_during_execution,
        )
    }) || a.pod_anti_affinity.as_ref().is_some_and(|p| {
        terms(
            &p.required_during_scheduling_ignored_during_execution,
            &p.preferred_during_scheduling_ignored_during_execution,
        )
    })
}

/// Kubernetes' `podMatchesScopeFunc`. PriorityClass matches `spec.priorityClassName` as the value of a
/// label named `PriorityClass` against the requirement's operator and values.
pub fn pod_matches_scope(sel: &ScopedResourceSelectorRequirement, pod: &Pod) -> bool {
    match sel.scope_name.as_str() {
        "Terminating" => is_terminating(pod),
        "NotTerminating" => !is_terminating(pod),
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        "PriorityClass" => {
            let class = pod.spec.as_ref().map(|s| s.priority_class_name.as_str()).unwrap_or_default();
            let labels: BTreeMap<String, String> = if class.is_empty() {
                BTreeMap::new()
            } else {
                BTreeMap::from([("PriorityClass".to_string(), class.to_string())])
            };
            let key = "PriorityClass".to_string();
            let req = match sel.operator.as_str() {
                "In" => Requirement::In(key, sel.values.clone()),
                "NotIn" => Requirement::NotIn(key, sel.values.clone()),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                _ => return false,
            };
            req.matches(&labels)
        }
        "CrossNamespacePodAffinity" => uses_cross_namespace_affinity(pod),
        _ => false,
    }
}

/// Kubernetes' `QuotaV1Pod`: not terminal, and not being deleted past its grace period.
pub fn pod_counts(pod: &Pod, now: SystemTime) -> bool {
    let phase = pod.status.as_ref().map(|s| s.phase.as_str()).unwrap_or_default();
    if phase == "Failed" || phase == "Succeeded" {
        return false;
    }
    let m = pod.metadata.clone().unwrap_or_default();
    if let (Some(grace), Ok(deleted)) =
        (m.deletion_grace_period_seconds, crate::rfc3339::parse(&m.deletion_timestamp))
        && now > deleted + Duration::from_secs(grace.max(0) as u64)
    {
        return false;
    }
    true
}

/// Kubernetes' `podComputeUsageHelper`: `pods: 1`, cpu/memory/ephemeral-storage requests (also under
/// the bare name) and limits, huge pages and extended resources (as `requests.<name>`).
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::from([("pods".to_string(), Qty::int(1))]);
    for r in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(r) {
            out.insert(r.to_string(), *q);
            out.insert(format!("requests.{r}"), *q);
        }
        if let Some(q) = limits.get(r) {
            out.insert(format!("limits.{r}"), *q);
        }
    }
    for (name, q) in requests {
        if name.starts_with("hugepages-") {
            out.insert(name.clone(), *q);
            out.insert(format!("requests.{name}"), *q);
        }
        if is_extended_resource(name) {
            out.insert(format!("requests.{name}"), *q);
        }
    }
    out
}

fn max_into(acc: &mut ResourceList, other: &ResourceList) {
    for (k, v) in other {
        if acc.get(k).is_none_or(|a| v.amount > a.amount) {
            acc.insert(k.clone(), *v);
        }
    }
}

/// A pod's effective requests or limits (Kubernetes' `PodRequests` / `PodLimits`): app containers and
/// sidecars summed, at least the largest init container (with the sidecars started before it); the
/// overhead added (to limits only where a limit is set).
fn pod_amounts(pod: &Pod, of: impl Fn(&Container) -> ResourceList, limits: bool) -> ResourceList {
    let spec = pod.spec.clone().unwrap_or_default();
    let mut total = spec.containers.iter().fold(ResourceList::new(), |acc, c| add(&acc, &of(c)));
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in &spec.init_containers {
        let own = of(c);
        let during = if c.restart_policy.as_deref() == Some("Always") {
            total = add(&total, &own);
            sidecars = add(&sidecars, &own);
            sidecars.clone()
        } else {
            add(&own, &sidecars)
        };
        max_into(&mut init_max, &during);
    }
    max_into(&mut total, &init_max);
    for (k, v) in super::from_quantities(&spec.overhead) {
        if !limits || total.contains_key(&k) {
            total = add(&total, &ResourceList::from([(k, v)]));
        }
    }
    total
}

fn requests_of(c: &Container) -> ResourceList {
    c.resources.as_ref().map(|r| super::from_quantities(&r.requests)).unwrap_or_default()
}

fn limits_of(c: &Container) -> ResourceList {
    c.resources.as_ref().map(|r| super::from_quantities(&r.limits)).unwrap_or_default()
}

/// Kubernetes' `PodUsageFunc`: `count/pods` always; compute and `pods` while the pod counts.
pub fn pod_usage(pod: &Pod, now: SystemTime) -> ResourceList {
    let mut out = ResourceList::from([("count/pods".to_string(), Qty::int(1))]);
    if pod_counts(pod, now) {
        let compute =
            compute_usage(&pod_amounts(pod, requests_of, false), &pod_amounts(pod, limits_of, true));
        out = add(&out, &compute);
    }
    out
}

/// Kubernetes' service usage: one service; its ports as node ports for NodePort services (and
/// LoadBalancers that allocate node ports); one load balancer.
pub fn service_usage(svc: &Service) -> ResourceList {
    let spec = svc.spec.clone().unwrap_or_default();
    let ports = i64::try_from(spec.ports.len()).unwrap_or(i64::MAX);
    let mut out = ResourceList::from([
        ("count/services".to_string(), Qty::int(1)),
        ("services".to_string(), Qty::int(1)),
        ("services.loadbalancers".to_string(), Qty::zero()),
        ("services.nodeports".to_string(), Qty::zero()),
    ]);
    match spec.r#type.as_str() {
        "NodePort" => {
            out.insert("services.nodeports".into(), Qty::int(ports));
        }
        "LoadBalancer" => {
            if spec.allocate_load_balancer_node_ports.unwrap_or(true) {
                out.insert("services.nodeports".into(), Qty::int(ports));
            }
            out.insert("services.loadbalancers".into(), Qty::int(1));
        }
        _ => {}
    }
    out
}

/// Kubernetes' claim usage: one claim (also of its class), its storage request rounded up to whole bytes
/// (or the allocated size when larger), also charged to its class.
pub fn claim_usage(pvc: &PersistentVolumeClaim) -> ResourceList {
    let mut out = ResourceList::from([
        ("persistentvolumeclaims".to_string(), Qty::int(1)),
        ("count/persistentvolumeclaims".to_string(), Qty::int(1)),
    ]);
    let class = crate::storage::claim_class(pvc);
    if !class.is_empty() {
        out.insert(format!("{class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"), Qty::int(1));
    }
    let requested = pvc
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.get("storage"))
        .and_then(Qty::parse);
    let allocated =
        pvc.status.as_ref().and_then(|s| s.allocated_resources.get("storage")).and_then(Qty::parse);
    let storage = match (requested, allocated) {
        (Some(r), Some(a)) if a.amount > r.amount => Some(a),
        (Some(r), _) => Some(r),
        _ => None,
    };
    if let Some(mut s) = storage {
        s.amount.0 = s.amount.value() as i128 * 1_000_000_000;
        out.insert("requests.storage".into(), s);
        if !class.is_empty() {
            out.insert(format!("{class}{STORAGE_CLASS_SUFFIX}requests.storage"), s);
        }
    }
    out
}

#[cfg(test)]
mod tests;
