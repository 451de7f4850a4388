//! A StatefulSet's status (Kubernetes' `computeReplicaStatus`, `updateStatus` and
//! `completeRollingUpdate`): counts of its pods that exist, are ready, available, at the current and
//! at the update revision; the revisions; observedGeneration and collisionCount. A RollingUpdate is
//! complete when every pod is updated and ready: the update revision becomes the current one.

use std::time::SystemTime;

use navarch_api::Resource;
use navarch_api::v1::{Pod, StatefulSet, StatefulSetStatus};

use super::ordinal_of;
use super::plan::{is_created, is_terminating, running_and_available, running_and_ready};
use super::pods::{is_rolling, revision_of};

/// The status the set's pods (`pods`, claimed) give with revisions `current` and `update`.
pub fn compute(
    set: &StatefulSet,
    pods: &[&Pod],
    current: &str,
    update: &str,
    collision_count: Option<i32>,
    now: SystemTime,
) -> StatefulSetStatus {
    let old = set.status.clone().unwrap_or_default();
    let mut s = StatefulSetStatus {
        observed_generation: set.meta().generation,
        current_revision: current.into(),
        update_revision: update.into(),
        collision_count: Some(collision_count.unwrap_or(0)),
        conditions: old.conditions,
        ..Default::default()
    };
    for p in pods.iter().filter(|p| ordinal_of(set, p).is_some()) {
        let created = is_created(p);
        s.replicas += i32::from(created);
        if running_and_ready(p) {
            s.ready_replicas += 1;
            s.available_replicas += i32::from(running_and_available(set, p, now));
        }
        if created && !is_terminating(p) {
            s.current_replicas += i32::from(revision_of(p) == current);
            s.updated_replicas += i32::from(revision_of(p) == update);
        }
    }
    if is_rolling(set) && s.updated_replicas == s.replicas && s.ready_replicas == s.replicas {
        s.current_replicas = s.updated_replicas;
        s.current_revision = s.update_revision.clone();
    }
    s
}
