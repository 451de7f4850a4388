//! The API writes of a scheduling failure and of a preemption (the only I/O of [`crate::preemption`]).
//!
//! Order and checks make a preemption safe to interrupt at any point (kill -9): the preemptor is
//! nominated first (its status survives a restart and is honoured from there); each victim is deleted
//! only after re-reading the preemptor and finding it still pending, still the same pod and still
//! nominated to that node; victims are deleted with their UID as precondition and gracefully, after the
//! `DisruptionTarget` condition is set on them (which also tells a restarted scheduler that they are
//! terminating for a preemptor, so it waits instead of preempting again).

use std::sync::Arc;

use navarch_api::Resource;
use navarch_api::v1::{Pod, PodCondition};
use navarch_client::{Api, Client, DeleteParams, EventRecorder, object_ref};

use super::{DISRUPTION_TARGET, REASON_PREEMPTION};
use crate::node_info::pod_key;

/// What to do with the pod's `status.nominatedNodeName` when its status is written.
#[derive(Debug, Clone, PartialEq)]
pub enum Nomination {
    Keep,
    Set(String),
    Clear,
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn same_pod(a: &Pod, b: &Pod) -> bool {
    a.meta().uid == b.meta().uid
}

/// Writes `PodScheduled=False`/`Unschedulable` with `msg`, and the nomination, on a pod still pending;
/// returns whether the pod is still that pending pod (false: gone, bound or replaced).
pub async fn report_unschedulable(
    client: Client,
    pod: Arc<Pod>,
    msg: String,
    nomination: Nomination,
) -> bool {
    let api = client.api::<Pod>(&pod.meta().namespace);
    for _ in 0..5 {
        let Ok(Some(mut current)) = api.get_opt(&pod.meta().name).await else { return false };
        if !same_pod(&current, &pod) || current.spec.as_ref().is_some_and(|s| !s.node_name.is_empty()) {
            return false;
        }
        let status = current.status.get_or_insert_with(Default::default);
        if status.phase.is_empty() {
            status.phase = "Pending".into();
        }
        let nominated_changed = match &nomination {
            Nomination::Keep => false,
            Nomination::Set(n) => status.nominated_node_name != *n,
            Nomination::Clear => !status.nominated_node_name.is_empty(),
        };
        match &nomination {
            Nomination::Keep => {}
            Nomination::Set(n) => status.nominated_node_name = n.clone(),
            Nomination::Clear => status.nominated_node_name.clear(),
        }
        let cond = PodCondition {
            r#type: "PodScheduled".into(),
            status: "False".into(),
            reason: "Unschedulable".into(),
            message: msg.clone(),
            last_transition_time: now(),
            ..Default::default()
        };
        match status.conditions.iter_mut().find(|c| c.r#type == "PodScheduled") {
            Some(c) if c.status == "False" && c.message == msg && !nominated_changed => return true,
            Some(c) => *c = cond,
            None => status.conditions.push(cond),
        }
        match api.update_status(&current).await {
            Ok(_) => return true,
            Err(navarch_client::Error::Conflict(_)) => continue,
            Err(e) => {
                tracing::warn!(pod = %pod_key(&pod), error = %e, "writing the pod's scheduling status");
                return false;
            }
        }
    }
    false
}

/// A preemption decided by [`super::preempt`].
#[derive(Debug, Clone)]
pub struct Plan {
    pub preemptor: Arc<Pod>,
    pub node: String,
    pub victims: Vec<Arc<Pod>>,
    pub lower_nominated: Vec<Arc<Pod>>,
    /// The preemptor's Unschedulable message (what filtering found).
    pub message: String,
}

/// A victim being deleted: its key and UID (a pod of the same name later is another pod).
#[derive(Debug, Clone, PartialEq)]
pub struct Victim {
    pub key: String,
    pub uid: String,
}

impl Victim {
    fn of(pod: &Pod) -> Victim {
        Victim { key: pod_key(pod), uid: pod.meta().uid.clone() }
    }
}

/// Whether the preemptor, read again, is still the same pending pod nominated to `node`.
async fn still_needed(api: &Api<Pod>, preemptor: &Pod, node: &str) -> bool {
    let Ok(Some(p)) = api.get_opt(&preemptor.meta().name).await else { return false };
    same_pod(&p, preemptor)
        && p.meta().deletion_timestamp.is_empty()
        && p.spec.as_ref().is_some_and(|s| s.node_name.is_empty())
        && p.status.as_ref().is_some_and(|s| s.nominated_node_name == node)
}

/// Sets `DisruptionTarget=True`/`PreemptionByScheduler` on the victim; false if it is gone (or replaced).
async fn mark_victim(api: &Api<Pod>, victim: &Pod, scheduler: &str) -> Result<bool, navarch_client::Error> {
    let message = format!("{scheduler}: preempting to accommodate a higher priority pod");
    for _ in 0..5 {
        let Some(mut current) = api.get_opt(&victim.meta().name).await? else { return Ok(false) };
        if !same_pod(&current, victim) {
            return Ok(false);
        }
        let status = current.status.get_or_insert_with(Default::default);
        let cond = PodCondition {
            r#type: DISRUPTION_TARGET.into(),
            status: "True".into(),
            reason: REASON_PREEMPTION.into(),
            message: message.clone(),
            last_transition_time: now(),
            ..Default::default()
        };
        match status.conditions.iter_mut().find(|c| c.r#type == DISRUPTION_TARGET) {
            Some(c) if c.status == "True" && c.reason == REASON_PREEMPTION => return Ok(true),
            Some(c) => *c = cond,
            None => status.conditions.push(cond),
        }
        match api.update_status(&current).await {
            Ok(_) => return Ok(true),
            Err(navarch_client::Error::Conflict(_)) => continue,
            Err(navarch_client::Error::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Err(navarch_client::Error::Conflict(format!("pod {} kept changing", pod_key(victim))))
}

/// Carries out `plan`; returns the victims now terminating (to wait for). Stops at the
/// first victim the preemptor no longer needs, or the first error.
pub async fn execute(client: Client, events: Option<EventRecorder>, plan: Plan) -> Vec<Victim> {
    let preemptor = plan.preemptor.clone();
    let node = plan.node.as_str();
    if !report_unschedulable(
        client.clone(),
        preemptor.clone(),
        plan.message.clone(),
        Nomination::Set(node.into()),
    )
    .await
    {
        return Vec::new();
    }
    let papi = client.api::<Pod>(&preemptor.meta().namespace);
    let scheduler = preemptor.spec.as_ref().map(|s| s.scheduler_name.clone()).unwrap_or_default();
    let mut terminating = Vec::new();
    for victim in &plan.victims {
        if !victim.meta().deletion_timestamp.is_empty() {
            terminating.push(Victim::of(victim)); // graceful deletion already started
            continue;
        }
        if !still_needed(&papi, &preemptor, node).await {
            tracing::info!(preemptor = %pod_key(&preemptor), "preemptor no longer needs its victims");
            break;
        }
        let vapi = client.api::<Pod>(&victim.meta().namespace);
        match mark_victim(&vapi, victim, &scheduler).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(victim = %pod_key(victim), error = %e, "marking a preemption victim");
                break;
            }
        }
        let params = DeleteParams { precondition_uid: victim.meta().uid.clone(), ..Default::default() };
        match vapi.delete(&victim.meta().name, &params).await {
            Ok(_) => {}
            Err(navarch_client::Error::NotFound(_)) => continue,
            Err(e) => {
                tracing::warn!(victim = %pod_key(victim), error = %e, "deleting a preemption victim");
                break;
            }
        }
        tracing::info!(victim = %pod_key(victim), preemptor = %pod_key(&preemptor), node, "preempted");
        terminating.push(Victim::of(victim));
        if let Some(ev) = &events {
            let msg = format!("Preempted by pod {} on node {node}", preemptor.meta().uid);
            ev.record(object_ref(victim.as_ref()), "Normal", "Preempted", msg);
        }
    }
    for p in &plan.lower_nominated {
        clear_nomination(&client, p, node).await;
    }
    terminating
}

/// Clears the pod's `status.nominatedNodeName` if it still names `node`.
async fn clear_nomination(client: &Client, pod: &Pod, node: &str) {
    let api = client.api::<Pod>(&pod.meta().namespace);
    for _ in 0..5 {
        let Ok(Some(mut current)) = api.get_opt(&pod.meta().name).await else { return };
        let Some(status) = current.status.as_mut().filter(|s| s.nominated_node_name == node) else { return };
        status.nominated_node_name.clear();
        match api.update_status(&current).await {
            Err(navarch_client::Error::Conflict(_)) => continue,
            _ => return,
        }
    }
}
