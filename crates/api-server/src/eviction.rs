//! The `pods/<name>/eviction` subresource (REST) and the `Evict` call (gRPC): a pod deleted only if its
//! PodDisruptionBudget allows it, as Kubernetes' `EvictionREST` does.
//!
//! * A pod that is finished, Pending or already being deleted is deleted at once (it is no disruption).
//! * Otherwise the budgets of its namespace whose selector picks it are found: none → delete; more than
//!   one → a bare 500 (`This pod has more than one PodDisruptionBudget, ...`).
//! * A pod that is not Ready is deleted without spending the budget when the budget's
//!   `unhealthyPodEvictionPolicy` is `AlwaysAllow`, or while it has the healthy pods it needs
//!   (`IfHealthyBudget`, the default); the delete is then conditional on the pod's resourceVersion, so a pod
//!   that turned Ready meanwhile is refused (429) rather than deleted.
//! * Otherwise the budget must be current (`status.observedGeneration` ≥ its generation) and allow a
//!   disruption, else 429 `Cannot evict pod as it would violate the pod's disruption budget.` with a
//!   `DisruptionBudget` cause. One disruption is spent and the pod recorded in `status.disruptedPods` in
//!   one status write, conditional on the budget's resourceVersion (re-read and retried on conflict), and
//!   only then is the pod deleted, so two evictions can never spend the same disruption.
//! * Every eviction that deletes first marks the pod with the condition `DisruptionTarget`
//!   (`EvictionByEvictionAPI`), as Kubernetes does since 1.31.

use std::time::Duration;

use navarch_api::disruption::{self, ALWAYS_ALLOW};
use navarch_api::managed_fields::UpdateWriter;
use navarch_api::selector::Selector;
use navarch_api::v1::{Pod, PodCondition, PodDisruptionBudget};
use navarch_api::{Object, Resource};
use tracing::Instrument;

use crate::error::ApiError;
use crate::registry::{DeleteOptions, FieldManager, ListOptions, Registry, SERVER_MANAGER};

/// Kubernetes' `MaxDisruptedPodSize`: evictions are refused while more are recorded and unconfirmed.
const MAX_DISRUPTED_POD_SIZE: usize = 2000;
/// Kubernetes' `EvictionsRetry`: attempts on a conflict, and the pause between them.
const RETRY_STEPS: usize = 20;
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Kubernetes' message of a refused eviction.
pub const VIOLATES_BUDGET: &str = "Cannot evict pod as it would violate the pod's disruption budget.";
/// The reason of a refused eviction's cause (`policy/v1.DisruptionBudgetCause`).
const DISRUPTION_BUDGET_CAUSE: &str = "DisruptionBudget";

/// Evicts `namespace/name` with `opts` (its dry run included), as described in the module docs; returns
/// what the pod's delete returns (the pod as last stored, and whether it is still terminating).
pub async fn evict(
    registry: &Registry,
    namespace: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<(Object, bool), ApiError> {
    // A pod the budget need not be asked about is deleted, retried while it changes under the delete.
    let mut attempt = 0;
    let pod = loop {
        let pod = get_pod(registry, namespace, name).await?;
        if !can_ignore_budget(&pod) {
            break pod;
        }
        let mut o = opts.clone();
        if enforces_resource_version(&pod) && o.precondition_resource_version.is_empty() {
            o.precondition_resource_version = pod.meta().resource_version.clone();
        }
        match mark_and_delete(registry, namespace, name, &o).await {
            Err(e @ (ApiError::Conflict { .. } | ApiError::Precondition(_)))
                if opts.precondition_resource_version.is_empty() && attempt + 1 < RETRY_STEPS =>
            {
                tracing::debug!(error = %e, "pod changed under its eviction, retrying");
                attempt += 1;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            r => return r,
        }
    };
    let mut budgets = budgets_of(registry, &pod).await?;
    if budgets.len() > 1 {
        return Err(ApiError::Unsupported(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
                .into(),
        ));
    }
    let Some(pdb) = budgets.pop() else {
        return mark_and_delete(registry, namespace, name, opts).await;
    };
    let pdb_name = pdb.meta().name.clone();
    if !disruption::is_pod_ready(&pod) && unhealthy_pod_evictable(&pdb) {
        // Not spending the budget: the delete must see the pod as it was judged.
        let mut o = opts.clone();
        let own_precondition = o.precondition_resource_version.is_empty();
        if own_precondition {
            o.precondition_resource_version = pod.meta().resource_version.clone();
        }
        return match mark_and_delete(registry, namespace, name, &o).await {
            Err(ApiError::Conflict { .. } | ApiError::Precondition(_)) if own_precondition => {
                Err(still_processing(&pdb_name))
            }
            r => r,
        };
    }
    let span = tracing::debug_span!("spend_disruption", pdb = %format!("{namespace}/{pdb_name}"), pod = name);
    spend_disruption(registry, pdb, name, opts.dry_run).instrument(span).await?;
    mark_and_delete(registry, namespace, name, opts).await
}

/// Kubernetes' `addConditionAndDeletePod`: unless it is a dry run, the pod first gets the condition
/// `DisruptionTarget` (True, `EvictionByEvictionAPI`, `Eviction API: evicting`; what a Job's pod failure
/// policy can match) in a status write on its latest stored version, held to the delete's preconditions;
/// then it is deleted, a resourceVersion precondition moved to the version that write made.
async fn mark_and_delete(
    registry: &Registry,
    namespace: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<(Object, bool), ApiError> {
    let mut opts = opts.clone();
    if !opts.dry_run {
        let mut attempt = 0;
        let written = loop {
            let mut pod = get_pod(registry, namespace, name).await?;
            let m = pod.meta();
            if !opts.precondition_uid.is_empty() && opts.precondition_uid != m.uid {
                return Err(crate::registry::uid_mismatch(&opts.precondition_uid, &m.uid));
            }
            if !opts.precondition_resource_version.is_empty()
                && opts.precondition_resource_version != m.resource_version
            {
                return Err(ApiError::Conflict { plural: "pods".into(), name: name.into() });
            }
            if !disruption_target(&mut pod, &crate::registry::now_rfc3339()) {
                break None;
            }
            let writer = UpdateWriter { manager: SERVER_MANAGER, subresource: "status", reset: false };
            match registry.update(Object::Pod(pod), true, false, FieldManager::Update(writer)).await {
                Ok(o) => break Some(o),
                // Changed meanwhile: the condition goes on the newer version.
                Err(ApiError::Conflict { .. }) if attempt + 1 < RETRY_STEPS => attempt += 1,
                Err(e) => return Err(e),
            }
        };
        if let Some(o) = written.filter(|_| !opts.precondition_resource_version.is_empty()) {
            opts.precondition_resource_version = o.meta().resource_version.clone();
        }
    }
    registry.delete("Pod", namespace, name, &opts).await
}

/// Sets the pod's `DisruptionTarget` condition for an eviction; whether it changed.
fn disruption_target(pod: &mut Pod, now: &str) -> bool {
    let wanted = PodCondition {
        r#type: "DisruptionTarget".into(),
        status: "True".into(),
        reason: "EvictionByEvictionAPI".into(),
        message: "Eviction API: evicting".into(),
        last_transition_time: now.into(),
        ..Default::default()
    };
    let conditions = &mut pod.status.get_or_insert_with(Default::default).conditions;
    match conditions.iter_mut().find(|c| c.r#type == wanted.r#type) {
        Some(c) if c.status == wanted.status && c.reason == wanted.reason && c.message == wanted.message => {
            false
        }
        Some(c) => {
            let transition =
                if c.status == wanted.status { c.last_transition_time.clone() } else { now.into() };
            *c = PodCondition { last_transition_time: transition, ..wanted };
            true
        }
        None => {
            conditions.push(wanted);
            true
        }
    }
}

async fn get_pod(registry: &Registry, namespace: &str, name: &str) -> Result<Pod, ApiError> {
    match registry.get("Pod", namespace, name).await? {
        Object::Pod(p) => Ok(p),
        o => Err(ApiError::Internal(format!("a {} stored as a pod", o.kind()))),
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().map(|s| s.phase.as_str()).unwrap_or_default()
}

/// Kubernetes' `canIgnorePDB`: a finished, Pending or terminating pod is no disruption.
fn can_ignore_budget(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending") || !pod.meta().deletion_timestamp.is_empty()
}

/// Kubernetes' `shouldEnforceResourceVersion`: a pod that may still turn Ready (a Pending one) is deleted
/// only as it was read.
fn enforces_resource_version(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.meta().deletion_timestamp.is_empty()
}

/// Whether a pod that is not Ready may go without spending `pdb`'s budget.
fn unhealthy_pod_evictable(pdb: &PodDisruptionBudget) -> bool {
    let policy = pdb.spec.as_ref().map(|s| s.unhealthy_pod_eviction_policy.as_str()).unwrap_or_default();
    let status = pdb.status.clone().unwrap_or_default();
    policy == ALWAYS_ALLOW || (status.current_healthy >= status.desired_healthy && status.desired_healthy > 0)
}

/// The budgets of the pod's namespace that select it. As in Kubernetes' eviction handler, a budget
/// whose selector is missing, empty or does not parse guards nothing here.
async fn budgets_of(registry: &Registry, pod: &Pod) -> Result<Vec<PodDisruptionBudget>, ApiError> {
    let opts = ListOptions { namespace: pod.meta().namespace.clone(), ..Default::default() };
    let list = registry.list(PodDisruptionBudget::KIND, &opts).await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|o| match o {
            Object::PodDisruptionBudget(p) => Some(p),
            _ => None,
        })
        .filter(|pdb| {
            let selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
            selector
                .and_then(|s| Selector::from_label_selector(Some(s)).ok())
                .is_some_and(|s| !s.is_empty() && s.matches(&pod.meta().labels))
        })
        .collect())
}

/// Kubernetes' `createTooManyRequestsError`: the budget's status is behind its spec (or the pod changed
/// under the eviction); retry in 10 s.
fn still_processing(pdb: &str) -> ApiError {
    ApiError::TooManyRequests {
        message: VIOLATES_BUDGET.into(),
        causes: vec![(
            DISRUPTION_BUDGET_CAUSE,
            format!("The disruption budget {pdb} is still being processed by the server."),
        )],
        retry_after_seconds: 10,
    }
}

fn forbidden(pdb: &str, why: &str) -> ApiError {
    ApiError::Forbidden(format!("poddisruptionbudget.policy {pdb:?} is forbidden: {why}"))
}

/// Kubernetes' `checkAndDecrement`, retried on a conflict of the status write with a fresh read of the
/// budget: refuses unless a disruption is allowed, else spends one and records `pod` in `disruptedPods`
/// (nothing is written on a dry run).
async fn spend_disruption(
    registry: &Registry,
    mut pdb: PodDisruptionBudget,
    pod: &str,
    dry_run: bool,
) -> Result<(), ApiError> {
    let (namespace, name) = (pdb.meta().namespace.clone(), pdb.meta().name.clone());
    for attempt in 0..RETRY_STEPS {
        if attempt > 0 {
            tokio::time::sleep(RETRY_PAUSE).await;
            pdb = match registry.get(PodDisruptionBudget::KIND, &namespace, &name).await? {
                Object::PodDisruptionBudget(p) => p,
                o => return Err(ApiError::Internal(format!("a {} stored as a budget", o.kind()))),
            };
        }
        let generation = pdb.meta().generation;
        let mut status = pdb.status.clone().unwrap_or_default();
        if status.observed_generation < generation {
            return Err(still_processing(&name));
        }
        if status.disruptions_allowed < 0 {
            return Err(forbidden(&name, "pdb disruptions allowed is negative"));
        }
        if status.disrupted_pods.len() > MAX_DISRUPTED_POD_SIZE {
            return Err(forbidden(
                &name,
                "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
            ));
        }
        if status.disruptions_allowed == 0 {
            return Err(ApiError::TooManyRequests {
                message: VIOLATES_BUDGET.into(),
                causes: vec![(
                    DISRUPTION_BUDGET_CAUSE,
                    format!(
                        "The disruption budget {name} needs {} healthy pods and has {} currently",
                        status.desired_healthy, status.current_healthy
                    ),
                )],
                retry_after_seconds: 0,
            });
        }
        let now = crate::registry::now_rfc3339();
        status.disruptions_allowed -= 1;
        if status.disruptions_allowed == 0 {
            disruption::update_disruption_allowed_condition(&mut status, &now);
        }
        if dry_run {
            return Ok(());
        }
        status.disrupted_pods.insert(pod.to_string(), now);
        pdb.status = Some(status);
        let writer = UpdateWriter { manager: SERVER_MANAGER, subresource: "status", reset: false };
        match registry
            .update(Object::PodDisruptionBudget(pdb.clone()), true, false, FieldManager::Update(writer))
            .await
        {
            Ok(_) => {
                tracing::debug!("disruption spent");
                return Ok(());
            }
            Err(ApiError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::Conflict { plural: "poddisruptionbudgets".into(), name })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(y: &str) -> Pod {
        serde_yaml::from_str(y).unwrap()
    }

    #[test]
    fn the_disruption_target_condition_is_set_once() {
        let mut p = pod(
            "{metadata: {name: p}, status: {phase: Running, conditions: [{type: Ready, status: 'True'}]}}",
        );
        assert!(disruption_target(&mut p, "2026-01-01T00:00:00Z"));
        assert!(!disruption_target(&mut p, "2026-01-01T00:00:09Z"), "already there: no write");
        let c = &p.status.as_ref().unwrap().conditions;
        assert_eq!(c.len(), 2);
        assert_eq!(
            (
                c[1].r#type.as_str(),
                c[1].status.as_str(),
                c[1].reason.as_str(),
                c[1].last_transition_time.as_str()
            ),
            ("DisruptionTarget", "True", "EvictionByEvictionAPI", "2026-01-01T00:00:00Z")
        );
    }

    #[test]
    fn pods_that_need_no_budget() {
        assert!(can_ignore_budget(&pod("{metadata: {name: p}, status: {phase: Succeeded}}")));
        assert!(can_ignore_budget(&pod("{metadata: {name: p}, status: {phase: Pending}}")));
        assert!(can_ignore_budget(&pod(
            "{metadata: {name: p, deletionTimestamp: '2026-01-01T00:00:00Z'}, status: {phase: Running}}"
        )));
        assert!(!can_ignore_budget(&pod("{metadata: {name: p}, status: {phase: Running}}")));
        assert!(enforces_resource_version(&pod("{metadata: {name: p}, status: {phase: Pending}}")));
        assert!(!enforces_resource_version(&pod("{metadata: {name: p}, status: {phase: Failed}}")));
    }

    #[test]
    fn unhealthy_pods_by_policy() {
        let pdb = |spec: &str, status: &str| -> PodDisruptionBudget {
            serde_yaml::from_str(&format!(
                "{{metadata: {{name: b}}, spec: {{{spec}}}, status: {{{status}}}}}"
            ))
            .unwrap()
        };
        assert!(unhealthy_pod_evictable(&pdb(
            "unhealthyPodEvictionPolicy: AlwaysAllow",
            "desiredHealthy: 3, currentHealthy: 0"
        )));
        assert!(unhealthy_pod_evictable(&pdb("", "desiredHealthy: 2, currentHealthy: 2")));
        assert!(!unhealthy_pod_evictable(&pdb(
            "unhealthyPodEvictionPolicy: IfHealthyBudget",
            "desiredHealthy: 2, currentHealthy: 1"
        )));
        assert!(!unhealthy_pod_evictable(&pdb("", "desiredHealthy: 0, currentHealthy: 0")));
    }
}
