//! The Deployment controller: one ReplicaSet per pod template (named `<deployment>-<hash>`, with the
//! `pod-template-hash` label in its selector and pods), rolled out by strategy.
//!
//! * **RollingUpdate**: the new ReplicaSet grows while the total stays within `replicas + maxSurge`;
//!   old ones shrink while the available pods stay at least `replicas - maxUnavailable`.
//! * **Recreate**: old ReplicaSets go to zero, and once their pods are gone the new one scales up.
//!
//! Revisions are the `deployment.kubernetes.io/revision` annotation; old ReplicaSets beyond
//! `revisionHistoryLimit` are deleted; a paused Deployment is only scaled. The arithmetic
//! ([`surge_and_unavailable`], [`rolling_step`]) is pure and unit-tested.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, IntOrString, LabelSelector, ObjectMeta,
    OwnerReference, PodTemplateSpec, ReplicaSet, ReplicaSetSpec,
};
use navarch_client::{Action, Client, DeleteParams, EventRecorder, Store, object_ref};

use crate::replicaset::controller_of;

pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";

/// A number or a percentage of `total` (rounded up for surge, down for unavailable).
fn scaled(v: Option<&IntOrString>, total: i32, default: &str, round_up: bool) -> i32 {
    let s = match v {
        Some(v) => match v.as_int() {
            Some(n) => return n.max(0),
            None => v.as_str().unwrap_or(default).to_string(),
        },
        None => default.to_string(),
    };
    let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
    let x = pct * total as f64 / 100.0;
    (if round_up { x.ceil() } else { x.floor() }) as i32
}

/// (maxSurge, maxUnavailable) for `replicas`, Kubernetes' defaults 25%/25%, never both zero.
pub fn surge_and_unavailable(d: &Deployment, replicas: i32) -> (i32, i32) {
    let ru = d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.rolling_update.as_ref());
    let surge = scaled(ru.and_then(|r| r.max_surge.as_ref()), replicas, "25%", true);
    let unavailable = scaled(ru.and_then(|r| r.max_unavailable.as_ref()), replicas, "25%", false);
    if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) }
}

/// Sizes of one ReplicaSet for the rolling arithmetic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sizes {
    /// spec.replicas
    pub want: i32,
    /// status.availableReplicas
    pub available: i32,
}

/// One rolling-update step: the new ReplicaSet's size and the old ones' sizes (oldest first).
pub fn rolling_step(
    replicas: i32,
    surge: i32,
    unavailable: i32,
    new: Sizes,
    old: &[Sizes],
) -> (i32, Vec<i32>) {
    let total: i32 = new.want + old.iter().map(|o| o.want).sum::<i32>();
    // Scale the new one up within the surge.
    let mut new_want = new.want;
    if new_want < replicas {
        let room = (replicas + surge - total).max(0);
        new_want = (new_want + room).min(replicas);
    } else if new_want > replicas {
        new_want = replicas;
    }
    let total = total - new.want + new_want;
    // Scale old ones down while enough stay available.
    let min_available = replicas - unavailable;
    let new_unavailable = (new_want - new.available).max(0);
    let mut can_remove = (total - min_available - new_unavailable).max(0);
    // Old pods that are not available can always go.
    let mut out = Vec::with_capacity(old.len());
    for o in old {
        let unavailable_old = (o.want - o.available).max(0);
        let mut w = o.want - unavailable_old.min(o.want);
        let cut = can_remove.min(w);
        w -= cut;
        can_remove -= cut;
        out.push(w);
    }
    (new_want, out)
}

/// A short stable hash of a pod template (the `pod-template-hash` value).
pub fn template_hash(t: &PodTemplateSpec) -> String {
    // FNV-1a over the template's JSON, as a short lower-case string.
    let json = serde_json::to_vec(t).unwrap_or_default();
    let mut h: u64 = 0xcbf29ce484222325;
    for b in json {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut s = String::new();
    for _ in 0..10 {
        s.push(ALPHABET[(h % ALPHABET.len() as u64) as usize] as char);
        h /= ALPHABET.len() as u64;
    }
    s
}

fn without_hash(t: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = t.clone();
    if let Some(m) = t.metadata.as_mut() {
        m.labels.remove(HASH_LABEL);
    }
    t
}

fn revision_of(rs: &ReplicaSet) -> i64 {
    rs.meta().annotations.get(REVISION).and_then(|r| r.parse().ok()).unwrap_or(0)
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

pub struct DeploymentController {
    pub client: Client,
    pub sets: Store<ReplicaSet>,
    pub events: EventRecorder,
}

impl DeploymentController {
    pub async fn reconcile(&self, d: Arc<Deployment>) -> Result<Action, navarch_client::Error> {
        let m = d.meta();
        if !m.deletion_timestamp.is_empty() {
            return Ok(Action::await_change());
        }
        if !self.sets.is_ready() {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        let spec = d.spec.clone().unwrap_or_default();
        let replicas = spec.replicas.unwrap_or(1).max(0);
        let template = spec.template.clone().unwrap_or_default();
        let mut owned: Vec<Arc<ReplicaSet>> = self
            .sets
            .state()
            .into_iter()
            .filter(|rs| {
                rs.meta().namespace == m.namespace && controller_of(rs.meta()).is_some_and(|r| r.uid == m.uid)
            })
            .collect();
        owned.sort_by_key(|rs| (revision_of(rs), rs.meta().creation_timestamp.clone()));
        let api = self.client.api::<ReplicaSet>(&m.namespace);
        let new = owned
            .iter()
            .find(|rs| {
                rs.spec.as_ref().and_then(|s| s.template.as_ref()).map(without_hash) == Some(template.clone())
            })
            .cloned();
        let max_revision = owned.iter().map(|rs| revision_of(rs)).max().unwrap_or(0);
        let new = match new {
            Some(n) => n,
            None if spec.paused => {
                return self.write_status(&d, &owned, None, replicas).await;
            }
            None => Arc::new(self.create_new(&d, &template, max_revision + 1).await?),
        };
        let old: Vec<Arc<ReplicaSet>> =
            owned.iter().filter(|rs| rs.meta().uid != new.meta().uid).cloned().collect();
        let size = |rs: &ReplicaSet| Sizes {
            want: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
            available: rs.status.as_ref().map(|s| s.available_replicas).unwrap_or(0),
        };
        let mut changed = false;
        if spec.paused {
            // Paused: only the new ReplicaSet follows the replica count, nothing rolls.
            if size(&new).want != replicas && old.iter().all(|o| size(o).want == 0) {
                changed |= self.scale(&d, &new, replicas).await?;
            }
        } else if spec.strategy.as_ref().is_some_and(|s| s.r#type == "Recreate") {
            let mut old_running = false;
            for o in &old {
                if size(o).want > 0 {
                    changed |= self.scale(&d, o, 0).await?;
                }
                old_running |= o.status.as_ref().is_some_and(|s| s.replicas > 0);
            }
            if !old_running && size(&new).want != replicas {
                changed |= self.scale(&d, &new, replicas).await?;
            }
        } else {
            let (surge, unavailable) = surge_and_unavailable(&d, replicas);
            let old_sizes: Vec<Sizes> = old.iter().map(|o| size(o)).collect();
            let (new_want, old_wants) = rolling_step(replicas, surge, unavailable, size(&new), &old_sizes);
            if new_want != size(&new).want {
                changed |= self.scale(&d, &new, new_want).await?;
            }
            for (o, w) in old.iter().zip(old_wants) {
                if w != size(o).want {
                    changed |= self.scale(&d, o, w).await?;
                }
            }
        }
        // Old revisions beyond the history limit go (only empty ones).
        let limit = spec.revision_history_limit.unwrap_or(10).max(0) as usize;
        let empty_old: Vec<&Arc<ReplicaSet>> = old
            .iter()
            .filter(|o| size(o).want == 0 && o.status.as_ref().is_none_or(|s| s.replicas == 0))
            .collect();
        if empty_old.len() > limit {
            for o in &empty_old[..empty_old.len() - limit] {
                let params = DeleteParams { precondition_uid: o.meta().uid.clone(), ..Default::default() };
                match api.delete(&o.meta().name, &params).await {
                    Ok(_)
                    | Err(navarch_client::Error::NotFound(_))
                    | Err(navarch_client::Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let action = self.write_status(&d, &owned, Some(&new), replicas).await?;
        Ok(if changed { Action::requeue(Duration::from_millis(200)) } else { action })
    }

    async fn create_new(
        &self,
        d: &Deployment,
        template: &PodTemplateSpec,
        revision: i64,
    ) -> Result<ReplicaSet, navarch_client::Error> {
        let m = d.meta();
        let hash = template_hash(template);
        let mut t = template.clone();
        t.metadata.get_or_insert_with(Default::default).labels.insert(HASH_LABEL.into(), hash.clone());
        let mut selector: LabelSelector =
            d.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
        selector.match_labels.insert(HASH_LABEL.into(), hash.clone());
        let mut labels = t.metadata.as_ref().map(|m| m.labels.clone()).unwrap_or_default();
        labels.insert(HASH_LABEL.into(), hash.clone());
        let mut rs = ReplicaSet {
            metadata: Some(ObjectMeta {
                name: format!("{}-{hash}", m.name),
                namespace: m.namespace.clone(),
                labels,
                annotations: [(REVISION.to_string(), revision.to_string())].into(),
                owner_references: vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "Deployment".into(),
                    name: m.name.clone(),
                    uid: m.uid.clone(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }],
                ..Default::default()
            }),
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: d.spec.as_ref().map(|s| s.min_ready_seconds).unwrap_or(0),
                selector: Some(selector),
                template: Some(t),
            }),
            ..Default::default()
        };
        rs.set_type_meta();
        let api = self.client.api::<ReplicaSet>(&m.namespace);
        match api.create(&rs).await {
            Ok(created) => {
                self.events.record(
                    object_ref(d),
                    "Normal",
                    "ScalingReplicaSet",
                    format!("Created new replica set {:?}", created.meta().name),
                );
                Ok(created)
            }
            Err(navarch_client::Error::AlreadyExists(_)) => api.get(&rs.meta().name).await,
            Err(e) => Err(e),
        }
    }

    /// Sets a ReplicaSet's replicas (compare-and-swap on the cached copy: a stale copy conflicts
    /// and the reconcile runs again). True when it changed something.
    async fn scale(&self, d: &Deployment, rs: &ReplicaSet, to: i32) -> Result<bool, navarch_client::Error> {
        let from = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let mut updated = rs.clone();
        updated.spec.get_or_insert_with(Default::default).replicas = Some(to);
        self.client.api::<ReplicaSet>(&rs.meta().namespace).update(&updated).await?;
        let verb = if to > from { "up" } else { "down" };
        self.events.record(
            object_ref(d),
            "Normal",
            "ScalingReplicaSet",
            format!("Scaled {verb} replica set {} from {from} to {to}", rs.meta().name),
        );
        Ok(true)
    }

    async fn write_status(
        &self,
        d: &Deployment,
        owned: &[Arc<ReplicaSet>],
        new: Option<&Arc<ReplicaSet>>,
        replicas: i32,
    ) -> Result<Action, navarch_client::Error> {
        let sum = |f: fn(&navarch_api::v1::ReplicaSetStatus) -> i32| -> i32 {
            owned.iter().filter_map(|rs| rs.status.as_ref()).map(f).sum()
        };
        let available = sum(|s| s.available_replicas);
        let total = sum(|s| s.replicas);
        let updated = new.and_then(|n| n.status.as_ref()).map(|s| s.replicas).unwrap_or(0);
        let (_, max_unavailable) = surge_and_unavailable(d, replicas);
        let old = d.status.clone().unwrap_or_default();
        let complete = updated == replicas && total == replicas && available >= replicas;
        let condition = |t: &str, ok: bool, reason: &str, message: String| {
            let status = if ok { "True" } else { "False" };
            let prev = old.conditions.iter().find(|c| c.r#type == t);
            let same = prev.is_some_and(|c| c.status == status && c.reason == reason);
            DeploymentCondition {
                r#type: t.into(),
                status: status.into(),
                last_update_time: if same {
                    prev.map(|c| c.last_update_time.clone()).unwrap_or_default()
                } else {
                    now()
                },
                last_transition_time: match prev {
                    Some(c) if c.status == status => c.last_transition_time.clone(),
                    _ => now(),
                },
                reason: reason.into(),
                message,
            }
        };
        let name = &d.meta().name;
        let new_name = new.map(|n| n.meta().name.clone()).unwrap_or_default();
        let status = DeploymentStatus {
            observed_generation: d.meta().generation,
            replicas: total,
            updated_replicas: updated,
            ready_replicas: sum(|s| s.ready_replicas),
            available_replicas: available,
            unavailable_replicas: (replicas - available).max(0),
            terminating_replicas: None,
            conditions: vec![
                if available >= replicas - max_unavailable {
                    condition(
                        "Available",
                        true,
                        "MinimumReplicasAvailable",
                        "Deployment has minimum availability.".into(),
                    )
                } else {
                    condition(
                        "Available",
                        false,
                        "MinimumReplicasUnavailable",
                        "Deployment does not have minimum availability.".into(),
                    )
                },
                if complete {
                    condition(
                        "Progressing",
                        true,
                        "NewReplicaSetAvailable",
                        format!("ReplicaSet {new_name:?} has successfully progressed."),
                    )
                } else {
                    condition(
                        "Progressing",
                        true,
                        "ReplicaSetUpdated",
                        format!("ReplicaSet {new_name:?} is progressing."),
                    )
                },
            ],
            collision_count: old.collision_count,
        };
        if d.status.as_ref() != Some(&status) {
            let mut u = d.clone();
            u.status = Some(status);
            match self.client.api::<Deployment>(&d.meta().namespace).update_status(&u).await {
                Ok(_) | Err(navarch_client::Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        tracing::debug!(deployment = %name, complete, "synced");
        // Until the rollout completes, look again soon (the ReplicaSet cache may lag the triggers).
        Ok(if complete {
            Action::requeue(Duration::from_secs(300))
        } else {
            Action::requeue(Duration::from_secs(1))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(y: &str) -> Deployment {
        serde_yaml::from_str(y).unwrap()
    }

    #[test]
    fn surge_and_unavailable_defaults_and_percentages() {
        assert_eq!(surge_and_unavailable(&dep("{metadata: {name: d}}"), 10), (3, 2));
        assert_eq!(surge_and_unavailable(&dep("{metadata: {name: d}}"), 1), (1, 0));
        let d =
            dep("{metadata: {name: d}, spec: {strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}}}");
        assert_eq!(surge_and_unavailable(&d, 4), (0, 1));
        let d = dep(
            "{metadata: {name: d}, spec: {strategy: {rollingUpdate: {maxSurge: '50%', maxUnavailable: 1}}}}",
        );
        assert_eq!(surge_and_unavailable(&d, 3), (2, 1));
    }

    #[test]
    fn rolling_steps_respect_surge_and_availability() {
        let s = |want, available| Sizes { want, available };
        // Start: 3 old available, surge 1, unavailable 0 → new to 1, old stays.
        assert_eq!(rolling_step(3, 1, 0, s(0, 0), &[s(3, 3)]), (1, vec![3]));
        // New one available → one old can go.
        assert_eq!(rolling_step(3, 1, 0, s(1, 1), &[s(3, 3)]), (1, vec![2]));
        // Then the new one grows again.
        assert_eq!(rolling_step(3, 1, 0, s(1, 1), &[s(2, 2)]), (2, vec![2]));
        // Unavailable old pods are dropped at once.
        assert_eq!(rolling_step(3, 1, 0, s(3, 3), &[s(2, 0)]), (3, vec![0]));
        // maxUnavailable 1, surge 0: an old one goes first.
        assert_eq!(rolling_step(3, 0, 1, s(0, 0), &[s(3, 3)]), (0, vec![2]));
    }

    #[test]
    fn template_hash_is_stable_and_sensitive() {
        let t1: PodTemplateSpec =
            serde_yaml::from_str("{spec: {containers: [{name: c, image: a:1}]}}").unwrap();
        let t2: PodTemplateSpec =
            serde_yaml::from_str("{spec: {containers: [{name: c, image: a:2}]}}").unwrap();
        assert_eq!(template_hash(&t1), template_hash(&t1.clone()));
        assert_ne!(template_hash(&t1), template_hash(&t2));
        assert_eq!(template_hash(&t1).len(), 10);
    }
}
