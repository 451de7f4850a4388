//! The StatefulSet controller's decisions, pure and unit-tested (Kubernetes' `updateStatefulSet`,
//! `processReplica`, `processCondemned` and `updateStatefulSetAfterInvariantEstablished`): which
//! ordinal to create, which pod to delete (failed, scaled away, or replaced by a rolling update), whose
//! claims to check, in the order they must happen. With `OrderedReady` the list stops at the first
//! thing to wait for; with `Parallel` every ordinal is handled at once.

use std::cmp::Reverse;
use std::time::{Duration, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{IntOrString, Pod, StatefulSet};

use super::pods::{is_rolling, revision_of};
use super::{ordinal_of, replicas, spec_of, start_ordinal};
use crate::replicaset::{is_available, is_ready};

/// What a sync starts from: the set, its pods (claimed, any ordinal) and its update revision's name.
pub struct View<'a> {
    pub set: &'a StatefulSet,
    pub pods: &'a [&'a Pod],
    pub update_revision: &'a str,
    pub now: SystemTime,
}

/// One thing to do, in order; a failed step ends the sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Create the pod of this ordinal (its missing claims first).
    Create { ordinal: i32 },
    /// The pod exists but is Pending: create any of its claims that are missing.
    EnsureClaims { ordinal: i32 },
    /// Bring the owner references of the pod's claims in line with the retention policy.
    Retain { pod: String },
    /// Delete the pod (uid as a precondition).
    Delete { pod: String, uid: String, why: Why },
}

/// Why a pod is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// It failed or succeeded: it is created again once gone.
    Finished,
    /// Its ordinal is beyond the set's range.
    ScaledDown,
    /// It runs an old revision.
    Update,
}

/// What [`plan`] decided.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Look again after this long (a pod that is ready but not yet available).
    pub requeue_after: Option<Duration>,
}

fn phase(p: &Pod) -> &str {
    p.status.as_ref().map(|s| s.phase.as_str()).unwrap_or_default()
}

/// The api-server gave the pod a phase (`isCreated`).
pub fn is_created(p: &Pod) -> bool {
    !phase(p).is_empty()
}

pub fn is_terminating(p: &Pod) -> bool {
    !p.meta().deletion_timestamp.is_empty()
}

/// Running with the Ready condition (`isRunningAndReady`).
pub fn running_and_ready(p: &Pod) -> bool {
    phase(p) == "Running" && is_ready(p)
}

pub fn min_ready(set: &StatefulSet) -> Duration {
    Duration::from_secs(u64::try_from(spec_of(set).min_ready_seconds).unwrap_or(0))
}

/// Running and ready for at least minReadySeconds (`isRunningAndAvailable`).
pub fn running_and_available(set: &StatefulSet, p: &Pod, now: SystemTime) -> bool {
    running_and_ready(p) && is_available(p, min_ready(set), now)
}

/// Missing, terminating, not ready or not yet available (`isUnavailable`).
fn is_unavailable(set: &StatefulSet, p: Option<&Pod>, now: SystemTime) -> bool {
    p.is_none_or(|p| is_terminating(p) || !running_and_available(set, p, now))
}

pub fn is_parallel(set: &StatefulSet) -> bool {
    spec_of(set).pod_management_policy == "Parallel"
}

/// maxUnavailable of the rolling update: a number, or a percentage of replicas rounded down; at least
/// 1 (`getStatefulSetMaxUnavailable`, default 1).
pub fn max_unavailable(set: &StatefulSet) -> i32 {
    let v: Option<&IntOrString> = spec_of(set)
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.max_unavailable.as_ref());
    let n = match v {
        None => 1,
        Some(v) => match v.as_int() {
            Some(n) => n,
            None => {
                let pct: f64 = v.as_str().unwrap_or("0").trim_end_matches('%').parse().unwrap_or(0.0);
                (pct * f64::from(replicas(set)) / 100.0).floor() as i32
            }
        },
    };
    n.max(1)
}

/// The set's pods split by ordinal: a slot per ordinal of its range (start first), and the pods beyond
/// it (condemned), highest ordinal first. Pods not named as members are left out.
pub fn split<'a>(set: &StatefulSet, pods: &[&'a Pod]) -> (Vec<Option<&'a Pod>>, Vec<&'a Pod>) {
    let start = start_ordinal(set);
    let n = replicas(set);
    let mut slots: Vec<Option<&Pod>> = vec![None; usize::try_from(n).unwrap_or(0)];
    let mut condemned = Vec::new();
    for &p in pods {
        let Some(ordinal) = ordinal_of(set, p) else { continue };
        match usize::try_from(ordinal - start).ok().filter(|_| ordinal < start + n) {
            Some(i) => slots[i] = Some(p),
            None => condemned.push(p),
        }
    }
    condemned.sort_by_key(|p| Reverse(ordinal_of(set, p)));
    (slots, condemned)
}

/// The next steps for the set (nothing while it is being deleted).
pub fn plan(v: &View<'_>) -> Plan {
    let set = v.set;
    let mut out = Plan::default();
    if !set.meta().deletion_timestamp.is_empty() {
        return out;
    }
    let start = start_ordinal(set);
    let (slots, condemned) = split(set, v.pods);
    let monotonic = !is_parallel(set);
    let unavailable = |p: Option<&Pod>| is_unavailable(set, p, v.now);
    // The first unhealthy pod: in the range in order, else among the condemned from the lowest.
    let first_unhealthy: Option<&str> = slots
        .iter()
        .find(|p| unavailable(**p))
        .map(|p| p.map(|p| p.meta().name.as_str()).unwrap_or_default())
        .or_else(|| condemned.iter().rev().find(|p| unavailable(Some(p))).map(|p| p.meta().name.as_str()));

    for (i, slot) in slots.iter().enumerate() {
        let ordinal = start + i as i32;
        let blocked = match slot {
            None => {
                out.steps.push(Step::Create { ordinal });
                true
            }
            Some(p) if matches!(phase(p), "Failed" | "Succeeded") => {
                if !is_terminating(p) {
                    out.steps.push(delete(p, Why::Finished));
                }
                true
            }
            Some(p) => {
                if phase(p) == "Pending" {
                    out.steps.push(Step::EnsureClaims { ordinal });
                }
                if monotonic && (is_terminating(p) || !running_and_ready(p)) {
                    true
                } else if monotonic && !running_and_available(set, p, v.now) {
                    out.requeue_after = Some(Duration::from_secs(1));
                    true
                } else {
                    out.steps.push(Step::Retain { pod: p.meta().name.clone() });
                    false
                }
            }
        };
        if blocked && monotonic {
            return out;
        }
    }

    // Claims of pods scaled away get their retention owners before the pods go.
    out.steps.extend(condemned.iter().map(|p| Step::Retain { pod: p.meta().name.clone() }));
    for p in &condemned {
        if is_terminating(p) {
            if monotonic {
                return out;
            }
            continue;
        }
        let first = first_unhealthy == Some(p.meta().name.as_str());
        if monotonic && !first && !running_and_available(set, p, v.now) {
            return out;
        }
        out.steps.push(delete(p, Why::ScaledDown));
        if monotonic {
            return out;
        }
    }

    if !is_rolling(set) {
        return out;
    }
    // RollingUpdate: from the highest ordinal down to the partition, at most maxUnavailable pods
    // unavailable at once.
    let max = max_unavailable(set);
    let down = slots.iter().filter(|p| unavailable(**p)).count() as i32;
    if down > max {
        return out;
    }
    let mut room = max - down;
    let partition = usize::try_from(super::pods::partition(set)).unwrap_or(0);
    for p in slots.iter().skip(partition).rev().flatten() {
        if room == 0 {
            break;
        }
        if revision_of(p) != v.update_revision && !is_terminating(p) {
            out.steps.push(delete(p, Why::Update));
            room -= 1;
        }
    }
    out
}

fn delete(p: &Pod, why: Why) -> Step {
    Step::Delete { pod: p.meta().name.clone(), uid: p.meta().uid.clone(), why }
}
