//! Priorities and preemption, as Kubernetes' DefaultPreemption plugin decides them (no I/O here but
//! [`act`], which writes the decision): when a pod fits on no node, which lower-priority pods to
//! preempt on which node so it fits, or what preemption found if it cannot help
//! (the `preemption:` part of the Unschedulable message).
//!
//! * [`filter`]: the filters with the nominated pods of equal or higher priority counted on their node
//!   (Kubernetes' `RunFilterPluginsWithNominatedPods`); [`nominator`] keeps those pods.
//! * [`preempt`]: eligibility (`preemptionPolicy: Never`; a pod whose victims are still terminating on
//!   its nominated node waits), candidate nodes (those whose failure preemption may resolve), the
//!   victims on each ([`victims::select_on_node`]), the node to preempt on ([`victims::pick_one`]).
//! * [`act`]: nominates the preemptor (`status.nominatedNodeName`), deletes the victims gracefully with
//!   the `DisruptionTarget` condition, clears the nominations of lower-priority pods on that node.

pub mod act;
pub mod nominator;
pub mod victims;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use navarch_api::v1::{Pod, PodDisruptionBudget};

use crate::cycle::Cycle;
use crate::filters;
use crate::node_info::{NodeInfo, pod_key};
use crate::scheduler::Failures;
use victims::Victims;

/// `DisruptionTarget` condition reason of a pod the scheduler preempts.
pub const REASON_PREEMPTION: &str = "PreemptionByScheduler";
/// The pod condition that says a pod is about to be deleted because of a disruption.
pub const DISRUPTION_TARGET: &str = "DisruptionTarget";
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NOT_ELIGIBLE_NEVER: &str = "not eligible due to preemptionPolicy=Never.";
pub const NOT_ELIGIBLE_TERMINATING: &str = "not eligible due to a terminating pod on the nominated node.";
/// Kubernetes' `minCandidateNodesPercentage` and `minCandidateNodesAbsolute` defaults.
const MIN_CANDIDATE_PERCENT: usize = 10;
const MIN_CANDIDATES: usize = 100;

/// `spec.priority`, 0 when unset (Kubernetes' `PodPriority`).
pub fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

fn never_preempts(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.preemption_policy.as_deref()) == Some("Never")
}

/// Whether `pod` is terminating because the scheduler preempted it.
pub fn terminating_by_preemption(pod: &Pod) -> bool {
    let deleting = pod.metadata.as_ref().is_some_and(|m| !m.deletion_timestamp.is_empty());
    deleting
        && pod.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .find(|c| c.r#type == DISRUPTION_TARGET)
                .is_some_and(|c| c.status == "True" && c.reason == REASON_PREEMPTION)
        })
}

/// The one place where a simulated removal (`added` false) or re-addition of `pod` on `node` reaches
/// the pre-filter state of the cycle (Kubernetes' PreFilterExtensions).
pub(crate) fn sync_state(state: &mut Cycle, pod: &Pod, node: &NodeInfo, added: bool) {
    if added { state.add_pod(pod, node) } else { state.remove_pod(pod, node) }
}

/// The filters' reasons for `node`, counting there the pods nominated to it with a priority at least
/// the cycle pod's (not the pod itself): the pod must fit both with and without them, as Kubernetes
/// checks. Costs a plain [`filters::filter`] on nodes without nominated pods.
pub fn filter(cycle: &Cycle, node: &NodeInfo) -> Vec<String> {
    let nominator = cycle.cache.nominated();
    if nominator.is_empty() {
        return filters::filter(cycle, node);
    }
    let nominated = nominator.pods_on(node.name());
    if nominated.is_empty() {
        return filters::filter(cycle, node);
    }
    let (prio, me) = (priority(cycle.pod), pod_key(cycle.pod));
    let extra: Vec<&Arc<Pod>> = nominated
        .iter()
        .filter(|(k, p)| *k != me && priority(p) >= prio && !node.pods.contains_key(k))
        .map(|(_, p)| p)
        .collect();
    if extra.is_empty() {
        return filters::filter(cycle, node);
    }
    let mut with = node.clone();
    let mut state = cycle.clone();
    for p in extra {
        with.add_pod(p.clone());
        sync_state(&mut state, p, &with, true);
    }
    let reasons = filters::filter(&state, &with);
    if !reasons.is_empty() {
        return reasons;
    }
    filters::filter(cycle, node)
}

/// What preemption decided for a pod that fits nowhere.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Preempt `victims` on `node` and nominate the pod there; `lower_nominated` are the pods of lower
    /// priority nominated to that node, whose nominations are cleared.
    Preempt { node: String, victims: Victims, lower_nominated: Vec<Arc<Pod>> },
    /// Preemption cannot help: the text after `preemption: ` in the message; `clear_nomination`: the
    /// pod's nomination is dropped (no node can take it even with preemption).
    Fail { message: String, clear_nomination: bool },
}

/// The pod's nomination, in memory or in its status.
pub fn nominated_node<'a>(cycle: &'a Cycle) -> Option<&'a str> {
    cycle.cache.nominated().node_of(&pod_key(cycle.pod)).or_else(|| nominator::status_nomination(cycle.pod))
}

/// Kubernetes' `PodEligibleToPreemptOthers`. `unresolvable_nominated`: the nominated node's failure is one
/// preemption cannot resolve (or the node is gone), so the pod may preempt elsewhere.
pub fn eligible(cycle: &Cycle, unresolvable_nominated: bool) -> Result<(), &'static str> {
    if never_preempts(cycle.pod) {
        return Err(NOT_ELIGIBLE_NEVER);
    }
    if let Some(nom) = nominated_node(cycle)
        && !unresolvable_nominated
        && let Some(info) = cycle.cache.node(nom)
    {
        let prio = priority(cycle.pod);
        if info.pods.values().any(|p| priority(p) < prio && terminating_by_preemption(p)) {
            return Err(NOT_ELIGIBLE_TERMINATING);
        }
    }
    Ok(())
}

/// The message when no node is a candidate: `0/N nodes are available: ...` with each node's reasons
/// counted (sorted as strings, like a FitError).
fn no_candidates_message(total: usize, statuses: &[Vec<String>]) -> String {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for reasons in statuses {
        for r in reasons {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    let described: usize = statuses.len();
    if total > described {
        *counts.entry(NOT_HELPFUL).or_default() += total - described;
    }
    let mut list: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    list.sort();
    format!("0/{total} nodes are available: {}.", list.join(", "))
}

/// The `preemption:` text when the pre-filter rejected the pod on every node (no node is a candidate).
pub fn prefilter_message(pod: &Pod, total: usize) -> String {
    if never_preempts(pod) { NOT_ELIGIBLE_NEVER.to_string() } else { no_candidates_message(total, &[]) }
}

/// Kubernetes' DefaultPreemption PostFilter for a pod that fit on no node of the cycle. `failures` is
/// what filtering found (its `helpful` nodes are the candidates' pool); `offset` (any number; taken
/// modulo the pool) is where the dry run starts, random in the loop so large clusters spread
/// preemptions.
pub fn preempt(
    cycle: &Cycle,
    failures: &Failures,
    pdbs: &[Arc<PodDisruptionBudget>],
    offset: usize,
) -> Outcome {
    let total = cycle.nodes.len();
    let nominated = nominated_node(cycle);
    let unresolvable_nominated = nominated.is_none_or(|n| {
        !failures.helpful.iter().any(|&i| cycle.nodes.get(i).is_some_and(|info| info.name() == n))
    });
    if let Err(message) = eligible(cycle, unresolvable_nominated) {
        return Outcome::Fail { message: message.to_string(), clear_nomination: false };
    }
    let pool: Vec<&NodeInfo> = failures.helpful.iter().filter_map(|&i| cycle.nodes.get(i).copied()).collect();
    let want = (pool.len() * MIN_CANDIDATE_PERCENT / 100).max(MIN_CANDIDATES).min(pool.len());
    let (mut fine, mut violating) = (Vec::new(), Vec::new());
    let mut statuses = Vec::new();
    for i in 0..pool.len() {
        let node = pool[(offset + i) % pool.len()];
        match victims::select_on_node(cycle, node, pdbs) {
            Ok(v) if v.pods.is_empty() => {
                statuses.push(vec![format!("expected at least one victim pod on node \"{}\"", node.name())])
            }
            Ok(v) if v.pdb_violations == 0 => fine.push((node.name().to_string(), v)),
            Ok(v) => violating.push((node.name().to_string(), v)),
            Err(reasons) => statuses.push(reasons),
        }
        if !fine.is_empty() && fine.len() + violating.len() >= want {
            break;
        }
    }
    fine.extend(violating);
    if fine.is_empty() {
        return Outcome::Fail { message: no_candidates_message(total, &statuses), clear_nomination: true };
    }
    let (node, victims) = fine.swap_remove(victims::pick_one(&fine));
    let prio = priority(cycle.pod);
    let lower_nominated = cycle
        .cache
        .nominated()
        .pods_on(&node)
        .iter()
        .filter(|(_, p)| priority(p) < prio)
        .map(|(_, p)| p.clone())
        .collect();
    Outcome::Preempt { node, victims, lower_nominated }
}
