//! The Deployment controller: one ReplicaSet per pod template (named `<deployment>-<hash>`, with the
//! `pod-template-hash` label in its selector and pods), rolled out by strategy.
//!
//! * **RollingUpdate**: the new ReplicaSet grows while the total stays within `replicas + maxSurge`;
//!   old ones shrink while the available pods stay at least `replicas - maxUnavailable`.
//! * **Recreate**: old ReplicaSets go to zero, and once their pods are gone the new one scales up.
//!
//! Revisions are the `deployment.kubernetes.io/revision` annotation (a rollback makes the old
//! template's ReplicaSet the newest revision again); old ReplicaSets beyond `revisionHistoryLimit`
//! are deleted; a paused Deployment is only scaled; scaling mid-rollout grows or shrinks every
//! active ReplicaSet in proportion (the `desired-replicas` annotation tells a scale from a rollout
//! step); matching orphan ReplicaSets are adopted. The `Progressing` condition turns False with
//! `ProgressDeadlineExceeded` after `progressDeadlineSeconds` (default 600) without progress.
//! The arithmetic ([`surge_and_unavailable`], [`rolling_step`], [`proportional`], [`progressing`])
//! is pure and unit-tested; [`spawn`] wires it to the shared Deployment and ReplicaSet reflectors.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use navarch_api::Resource;
use navarch_api::selector::Selector;
use navarch_api::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, IntOrString, LabelSelector, ObjectMeta,
    PodTemplateSpec, ReplicaSet, ReplicaSetSpec,
};
use navarch_client::{Action, Client, Controller, DeleteParams, EventRecorder, Store, object_ref};

use crate::pod_control::{controller_of, controller_ref};
use crate::run::{Reconciler, Wiring};

pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

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
    // Scale old ones down while enough stay available (Kubernetes' reconcileOldReplicaSets):
    // first their unavailable pods, then available ones, oldest first, never below minAvailable.
    let min_available = replicas - unavailable;
    let new_unavailable = (new_want - new.available).max(0);
    let mut out: Vec<i32> = old.iter().map(|o| o.want).collect();
    let max_scaled_down = total - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return (new_want, out);
    }
    let mut budget = max_scaled_down;
    for (w, o) in out.iter_mut().zip(old) {
        let cut = (o.want - o.available).clamp(0, budget);
        *w -= cut;
        budget -= cut;
    }
    let available: i32 = new.available + old.iter().map(|o| o.available.min(o.want)).sum::<i32>();
    let mut scale_down = (available - min_available).max(0);
    for w in out.iter_mut() {
        let cut = (*w).min(scale_down);
        *w -= cut;
        scale_down -= cut;
    }
    (new_want, out)
}

/// A short stable hash of a pod template (the `pod-template-hash` value).
pub fn template_hash(t: &PodTemplateSpec) -> String {
    template_hash_with(t, None)
}

/// [`template_hash`] with a collision count mixed in when there is one (Kubernetes' `ComputeHash`): a
/// name taken by another template gets a new hash after the owner's collisionCount is raised.
pub fn template_hash_with(t: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    // FNV-1a over the template's JSON (and the count), as a short lower-case string.
    let mut json = serde_json::to_vec(t).unwrap_or_default();
    if let Some(c) = collision_count {
        json.extend_from_slice(&c.to_le_bytes());
    }
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

/// Sizes after scaling a Deployment whose pods are spread over several ReplicaSets (Kubernetes'
/// proportional scaling): each ReplicaSet `(replicas, max-replicas annotation)` keeps its share of
/// the Deployment's allowed size, measured against the allowed size it was last scaled for (the
/// annotation; else the current total), so a scale that was only partly applied is finished, not
/// redone. The difference is capped at `allowed - total`; the rounding leftover goes to the
/// largest.
pub fn proportional(sets: &[(i32, Option<i32>)], allowed: i32) -> Vec<i32> {
    let total: i32 = sets.iter().map(|(s, _)| s).sum();
    let to_add = allowed - total;
    let mut out: Vec<i32> = sets.iter().map(|(s, _)| *s).collect();
    if total == 0 || to_add == 0 {
        return out;
    }
    let mut added = 0;
    for (i, &(s, before)) in sets.iter().enumerate() {
        let before = before.filter(|b| *b > 0).unwrap_or(total);
        let share = (s as f64 * allowed as f64 / before as f64).round() as i32 - s;
        let share = if to_add > 0 { share.min(to_add - added) } else { share.max(to_add - added) };
        out[i] = (s + share).max(0);
        added += out[i] - s;
    }
    if added != to_add {
        let largest = (0..out.len()).max_by_key(|&i| (out[i], std::cmp::Reverse(i))).unwrap_or(0);
        out[largest] = (out[largest] + to_add - added).max(0);
    }
    out
}

/// What one sync saw, to decide the `Progressing` condition.
#[derive(Debug, Clone, Default)]
pub struct ProgressInput {
    pub paused: bool,
    pub complete: bool,
    /// A new ReplicaSet was created by this sync.
    pub created_new: bool,
    /// More updated/ready/available pods, or fewer old ones, than the last status said.
    pub progressed: bool,
    /// `spec.progressDeadlineSeconds` (None: no deadline).
    pub deadline: Option<Duration>,
}

/// The next `Progressing` condition's (status, reason), and whether its lastUpdateTime becomes now
/// even if the condition stays the same (progress was made).
/// Kubernetes' rules: paused → Unknown/DeploymentPaused; complete → NewReplicaSetAvailable; any
/// progress restarts the deadline clock; no progress for `progressDeadlineSeconds` since the last
/// update → False/ProgressDeadlineExceeded, which stays until progress resumes.
pub fn progressing(
    prev: Option<&DeploymentCondition>,
    i: &ProgressInput,
    now: SystemTime,
) -> (String, String, bool) {
    let fresh = |status: &str, reason: &str| (status.to_string(), reason.to_string(), true);
    let prev_reason = prev.map(|c| c.reason.as_str()).unwrap_or_default();
    let settled = |status: &str, reason: &str| (status.to_string(), reason.to_string(), false);
    if i.paused {
        return settled("Unknown", "DeploymentPaused");
    }
    if i.complete {
        return settled("True", "NewReplicaSetAvailable");
    }
    if prev_reason == "DeploymentPaused" {
        return fresh("Unknown", "DeploymentResumed");
    }
    if i.created_new {
        return fresh("True", "NewReplicaSetCreated");
    }
    if i.progressed {
        return fresh("True", "ReplicaSetUpdated");
    }
    let Some(prev) = prev else { return settled("True", "ReplicaSetUpdated") };
    let keep = (prev.status.clone(), prev.reason.clone(), false);
    if prev.reason == "NewReplicaSetAvailable" || prev.reason == "ProgressDeadlineExceeded" {
        return keep;
    }
    let since = humantime::parse_rfc3339(&prev.last_update_time).unwrap_or(now);
    match i.deadline {
        Some(limit) if now.duration_since(since).unwrap_or_default() > limit => {
            fresh("False", "ProgressDeadlineExceeded")
        }
        _ => keep,
    }
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

fn replicas_of(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The Deployment's annotations a ReplicaSet carries (kubectl's change-cause and the like), with
/// its revision. The controller's own bookkeeping and kubectl's applied copy stay behind.
fn annotations_for_replica_set(d: &Deployment, revision: i64) -> BTreeMap<String, String> {
    const SKIPPED: &[&str] =
        &[REVISION, DESIRED_REPLICAS, MAX_REPLICAS, "kubectl.kubernetes.io/last-applied-configuration"];
    let mut a: BTreeMap<String, String> = d
        .meta()
        .annotations
        .iter()
        .filter(|(k, _)| !SKIPPED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    a.insert(REVISION.into(), revision.to_string());
    a
}

pub struct DeploymentController {
    pub client: Client,
    pub sets: Store<ReplicaSet>,
    pub events: EventRecorder,
}

impl Reconciler<Deployment> for DeploymentController {
    type Error = navarch_client::Error;

    async fn reconcile(&self, d: Arc<Deployment>) -> Result<Action, navarch_client::Error> {
        let meta = d.meta().clone();
        let m = &meta;
        if !m.deletion_timestamp.is_empty() {
            return Ok(Action::await_change());
        }
        if !self.sets.is_ready() {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        let spec = d.spec.clone().unwrap_or_default();
        let replicas = spec.replicas.unwrap_or(1).max(0);
        let template = spec.template.clone().unwrap_or_default();
        let selector = match Selector::from_label_selector(spec.selector.as_ref()) {
            Ok(s) if !s.is_empty() => s,
            _ => {
                tracing::warn!(deployment = %m.name, "spec.selector selects nothing; not syncing");
                return Ok(Action::await_change());
            }
        };
        // Orphaned ReplicaSets that match the selector become this Deployment's.
        let mut adopted = false;
        for rs in self.sets.state() {
            let rm = rs.meta();
            if rm.namespace == m.namespace
                && controller_of(rm).is_none()
                && rm.deletion_timestamp.is_empty()
                && selector.matches(&rm.labels)
            {
                self.adopt(&d, &rs).await?;
                adopted = true;
            }
        }
        if adopted {
            return Ok(Action::requeue(Duration::from_millis(100)));
        }
        let mut owned: Vec<Arc<ReplicaSet>> = self
            .sets
            .state()
            .into_iter()
            .filter(|rs| {
                rs.meta().namespace == m.namespace && controller_of(rs.meta()).is_some_and(|r| r.uid == m.uid)
            })
            .collect();
        owned.sort_by_key(|rs| (revision_of(rs), rs.meta().creation_timestamp.clone()));
        let max_revision = owned.iter().map(|rs| revision_of(rs)).max().unwrap_or(0);
        let found = owned
            .iter()
            .find(|rs| {
                rs.spec.as_ref().and_then(|s| s.template.as_ref()).map(without_hash) == Some(template.clone())
            })
            .cloned();
        let mut created_new = false;
        let new = match found {
            // The template of an older revision again (a rollback): it becomes the newest revision.
            Some(n) => {
                let revision =
                    if revision_of(&n) < max_revision { max_revision + 1 } else { revision_of(&n) };
                Some(self.sync_annotations(&d, n, revision).await?)
            }
            None if spec.paused => None,
            None => {
                created_new = true;
                Some(Arc::new(self.create_new(&d, &template, max_revision + 1).await?))
            }
        };
        // The Deployment carries its current revision too.
        let mut d = d;
        if let Some(n) = &new
            && let Some(rev) = n.meta().annotations.get(REVISION)
            && d.meta().annotations.get(REVISION) != Some(rev)
        {
            let mut u = (*d).clone();
            u.metadata.get_or_insert_with(Default::default).annotations.insert(REVISION.into(), rev.clone());
            d = Arc::new(self.client.api::<Deployment>(&m.namespace).update(&u).await?);
        }
        let owned: Vec<Arc<ReplicaSet>> = owned
            .into_iter()
            .map(|rs| match &new {
                Some(n) if n.meta().uid == rs.meta().uid => n.clone(),
                _ => rs,
            })
            .chain(new.iter().filter(|_| created_new).cloned())
            .collect();
        let old: Vec<Arc<ReplicaSet>> = owned
            .iter()
            .filter(|rs| new.as_ref().is_none_or(|n| rs.meta().uid != n.meta().uid))
            .cloned()
            .collect();
        let size = |rs: &ReplicaSet| Sizes {
            want: replicas_of(rs),
            available: rs.status.as_ref().map(|s| s.available_replicas).unwrap_or(0),
        };
        let recreate = spec.strategy.as_ref().is_some_and(|s| s.r#type == "Recreate");
        let (surge, unavailable) = surge_and_unavailable(&d, replicas);
        let mut changed = false;
        // Newest first, so rounding favours the new ReplicaSet.
        let active: Vec<&Arc<ReplicaSet>> = owned.iter().rev().filter(|rs| replicas_of(rs) > 0).collect();
        let scaling_event = active.iter().any(|rs| {
            rs.meta()
                .annotations
                .get(DESIRED_REPLICAS)
                .and_then(|v| v.parse::<i32>().ok())
                .is_some_and(|v| v != replicas)
        });
        let bookkeeping = (replicas, if recreate { replicas } else { replicas + surge });
        tracing::debug!(
            deployment = %m.name,
            replicas,
            active = ?active.iter().map(|rs| (rs.meta().name.as_str(), replicas_of(rs))).collect::<Vec<_>>(),
            scaling_event,
            "sync"
        );
        if active.len() > 1 && scaling_event && !recreate {
            // Scaled mid-rollout: every active ReplicaSet grows or shrinks in proportion.
            let sizes: Vec<(i32, Option<i32>)> = active
                .iter()
                .map(|rs| {
                    let before = rs.meta().annotations.get(MAX_REPLICAS).and_then(|v| v.parse().ok());
                    (replicas_of(rs), before)
                })
                .collect();
            let allowed = if spec.paused { replicas } else { replicas + surge };
            for (rs, to) in active.iter().zip(proportional(&sizes, allowed)) {
                changed |= self.scale(&d, rs, to, bookkeeping).await?;
            }
        } else if spec.paused {
            // Paused: nothing rolls; a lone ReplicaSet follows the replica count.
            let lone = match active.as_slice() {
                [one] => Some((*one).clone()),
                [] => new.clone().or_else(|| owned.last().cloned()),
                _ => None,
            };
            if let Some(rs) = lone
                && replicas_of(&rs) != replicas
            {
                changed |= self.scale(&d, &rs, replicas, bookkeeping).await?;
            }
        } else if let Some(new) = &new {
            if recreate {
                let mut old_running = false;
                for o in &old {
                    if replicas_of(o) > 0 {
                        changed |= self.scale(&d, o, 0, bookkeeping).await?;
                    }
                    old_running |= o.status.as_ref().is_some_and(|s| s.replicas > 0);
                }
                if !old_running && replicas_of(new) != replicas {
                    changed |= self.scale(&d, new, replicas, bookkeeping).await?;
                }
            } else {
                let old_sizes: Vec<Sizes> = old.iter().map(|o| size(o)).collect();
                let (new_want, old_wants) = rolling_step(replicas, surge, unavailable, size(new), &old_sizes);
                if new_want != replicas_of(new) {
                    changed |= self.scale(&d, new, new_want, bookkeeping).await?;
                }
                for (o, w) in old.iter().zip(old_wants) {
                    if w != replicas_of(o) {
                        changed |= self.scale(&d, o, w, bookkeeping).await?;
                    }
                }
            }
        }
        self.clean_up_history(&old, spec.revision_history_limit).await?;
        let progress = ProgressInput {
            paused: spec.paused,
            created_new,
            deadline: match spec.progress_deadline_seconds {
                Some(s) if s > 0 && s < i32::MAX => Some(Duration::from_secs(s as u64)),
                Some(_) => None,
                None => Some(Duration::from_secs(600)),
            },
            ..Default::default()
        };
        let action = self.write_status(&d, &owned, new.as_ref(), replicas, progress).await?;
        Ok(if changed { Action::requeue(Duration::from_millis(200)) } else { action })
    }
}

impl DeploymentController {
    /// Old revisions beyond `revisionHistoryLimit` (default 10) go, oldest first (only empty ones).
    async fn clean_up_history(
        &self,
        old: &[Arc<ReplicaSet>],
        limit: Option<i32>,
    ) -> Result<(), navarch_client::Error> {
        let limit = limit.unwrap_or(10).max(0) as usize;
        let empty_old: Vec<&Arc<ReplicaSet>> = old
            .iter()
            .filter(|o| replicas_of(o) == 0 && o.status.as_ref().is_none_or(|s| s.replicas == 0))
            .collect();
        if empty_old.len() <= limit {
            return Ok(());
        }
        for o in &empty_old[..empty_old.len() - limit] {
            let api = self.client.api::<ReplicaSet>(&o.meta().namespace);
            let params = DeleteParams { precondition_uid: o.meta().uid.clone(), ..Default::default() };
            match api.delete(&o.meta().name, &params).await {
                Ok(_) | Err(navarch_client::Error::NotFound(_)) | Err(navarch_client::Error::Conflict(_)) => {
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Makes `d` the controller of the orphan `rs` (a conflict retries from the store).
    async fn adopt(&self, d: &Deployment, rs: &ReplicaSet) -> Result<(), navarch_client::Error> {
        let mut u = rs.clone();
        u.metadata
            .get_or_insert_with(Default::default)
            .owner_references
            .push(controller_ref::<Deployment>(d.meta()));
        self.client.api::<ReplicaSet>(&rs.meta().namespace).update(&u).await?;
        tracing::info!(deployment = %d.meta().name, replicaset = %rs.meta().name, "adopted");
        Ok(())
    }

    /// Brings the new ReplicaSet's annotations (revision, change-cause) in line with the Deployment.
    async fn sync_annotations(
        &self,
        d: &Deployment,
        rs: Arc<ReplicaSet>,
        revision: i64,
    ) -> Result<Arc<ReplicaSet>, navarch_client::Error> {
        let mut wanted = rs.meta().annotations.clone();
        wanted.extend(annotations_for_replica_set(d, revision));
        if wanted == rs.meta().annotations {
            return Ok(rs);
        }
        let mut u = (*rs).clone();
        u.metadata.get_or_insert_with(Default::default).annotations = wanted;
        Ok(Arc::new(self.client.api::<ReplicaSet>(&rs.meta().namespace).update(&u).await?))
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
                annotations: annotations_for_replica_set(d, revision),
                owner_references: vec![controller_ref::<Deployment>(d.meta())],
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

    /// Sets a ReplicaSet's replicas and the (desired, max) replica annotations that tell a later
    /// sync whether the Deployment was scaled (compare-and-swap on the cached copy: a stale copy
    /// conflicts and the reconcile runs again). True when it changed something.
    async fn scale(
        &self,
        d: &Deployment,
        rs: &ReplicaSet,
        to: i32,
        (desired, max): (i32, i32),
    ) -> Result<bool, navarch_client::Error> {
        let from = replicas_of(rs);
        let mut updated = rs.clone();
        updated.spec.get_or_insert_with(Default::default).replicas = Some(to);
        let a = &mut updated.metadata.get_or_insert_with(Default::default).annotations;
        a.insert(DESIRED_REPLICAS.into(), desired.to_string());
        a.insert(MAX_REPLICAS.into(), max.to_string());
        if &updated == rs {
            return Ok(false);
        }
        self.client.api::<ReplicaSet>(&rs.meta().namespace).update(&updated).await?;
        if from != to {
            let verb = if to > from { "up" } else { "down" };
            self.events.record(
                object_ref(d),
                "Normal",
                "ScalingReplicaSet",
                format!("Scaled {verb} replica set {} from {from} to {to}", rs.meta().name),
            );
        }
        Ok(true)
    }

    async fn write_status(
        &self,
        d: &Deployment,
        owned: &[Arc<ReplicaSet>],
        new: Option<&Arc<ReplicaSet>>,
        replicas: i32,
        mut progress: ProgressInput,
    ) -> Result<Action, navarch_client::Error> {
        let sum = |f: fn(&navarch_api::v1::ReplicaSetStatus) -> i32| -> i32 {
            owned.iter().filter_map(|rs| rs.status.as_ref()).map(f).sum()
        };
        let available = sum(|s| s.available_replicas);
        let total = sum(|s| s.replicas);
        let ready = sum(|s| s.ready_replicas);
        let updated = new.and_then(|n| n.status.as_ref()).map(|s| s.replicas).unwrap_or(0);
        let (_, max_unavailable) = surge_and_unavailable(d, replicas);
        let old = d.status.clone().unwrap_or_default();
        progress.complete =
            new.is_some() && updated == replicas && total == replicas && available >= replicas;
        progress.progressed = updated > old.updated_replicas
            || total - updated < old.replicas - old.updated_replicas
            || ready > old.ready_replicas
            || available > old.available_replicas;
        let at = SystemTime::now();
        let condition = |t: &str, status: String, reason: String, message: String, touch: bool| {
            let prev = old.conditions.iter().find(|c| c.r#type == t);
            let same = prev.is_some_and(|c| c.status == status && c.reason == reason && c.message == message);
            DeploymentCondition {
                r#type: t.into(),
                last_update_time: match prev {
                    Some(c) if same && !touch => c.last_update_time.clone(),
                    _ => now(),
                },
                last_transition_time: match prev {
                    Some(c) if c.status == status => c.last_transition_time.clone(),
                    _ => now(),
                },
                status,
                reason,
                message,
            }
        };
        let new_name = new.map(|n| n.meta().name.clone()).unwrap_or_default();
        let prev_progressing = old.conditions.iter().find(|c| c.r#type == "Progressing");
        let (p_status, p_reason, touch) = progressing(prev_progressing, &progress, at);
        let p_message = match p_reason.as_str() {
            "NewReplicaSetAvailable" => format!("ReplicaSet {new_name:?} has successfully progressed."),
            "NewReplicaSetCreated" => format!("Created new replica set {new_name:?}"),
            "ReplicaSetUpdated" => format!("ReplicaSet {new_name:?} is progressing."),
            "ProgressDeadlineExceeded" => format!("ReplicaSet {new_name:?} has timed out progressing."),
            "DeploymentPaused" => "Deployment is paused".into(),
            "DeploymentResumed" => "Deployment is resumed".into(),
            _ => prev_progressing.map(|c| c.message.clone()).unwrap_or_default(),
        };
        let (a_status, a_reason, a_message) = if available >= replicas - max_unavailable {
            ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        } else {
            ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
        };
        let status = DeploymentStatus {
            observed_generation: d.meta().generation,
            replicas: total,
            updated_replicas: updated,
            ready_replicas: ready,
            available_replicas: available,
            unavailable_replicas: (replicas - available).max(0),
            terminating_replicas: None,
            conditions: vec![
                condition("Available", a_status.into(), a_reason.into(), a_message.into(), false),
                condition("Progressing", p_status, p_reason.clone(), p_message, touch),
            ],
            collision_count: old.collision_count,
        };
        if p_reason == "ProgressDeadlineExceeded"
            && prev_progressing.is_none_or(|c| c.reason != "ProgressDeadlineExceeded")
        {
            self.events.record(
                object_ref(d),
                "Warning",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet {new_name:?} has timed out progressing."),
            );
        }
        if d.status.as_ref() != Some(&status) {
            let mut u = d.clone();
            u.status = Some(status);
            match self.client.api::<Deployment>(&d.meta().namespace).update_status(&u).await {
                Ok(_) | Err(navarch_client::Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        tracing::debug!(deployment = %d.meta().name, complete = progress.complete, "synced");
        // Until the rollout completes, look again soon (the ReplicaSet cache may lag the triggers,
        // and the progress deadline needs a clock).
        Ok(if progress.complete || progress.paused {
            Action::requeue(Duration::from_secs(300))
        } else {
            Action::requeue(Duration::from_secs(1))
        })
    }
}

/// Runs the Deployment controller: Deployments, re-synced when a ReplicaSet they own changes (all of
/// them after a ReplicaSet relist), reading the shared ReplicaSet store.
pub fn spawn(w: &mut Wiring) {
    let events = w.recorder("deployment-controller");
    let sets = &w.informers.replicasets;
    let controller =
        Controller::for_shared(&w.informers.deployments).concurrency(w.workers).owns_shared(sets);
    let ctx = Arc::new(DeploymentController { client: w.client.clone(), sets: sets.store(), events });
    w.controller(controller, ctx, Duration::from_secs(1));
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
        // Old pods just added by a scale-up (not available yet) stay while the new ones are not
        // available either (15 replicas, surge 3, unavailable 2, 7 new + 11 old of which 8 up).
        assert_eq!(rolling_step(15, 3, 2, s(7, 0), &[s(11, 8)]), (7, vec![11]));
    }

    #[test]
    fn proportional_scaling_like_kubernetes_docs() {
        // 10 replicas, maxSurge 3: 8 old + 5 new mid-rollout, scaled to 15 (allowed 18): 3 more
        // old, 2 more new.
        assert_eq!(proportional(&[(5, Some(13)), (8, Some(13))], 18), vec![7, 11]);
        assert_eq!(proportional(&[(8, None), (5, None)], 18), vec![11, 7]);
        // Half applied (the new one already scaled for 18): only the rest moves.
        assert_eq!(proportional(&[(7, Some(18)), (8, Some(13))], 18), vec![7, 11]);
        // Down: 30 → 10 allowed, in proportion, never below zero.
        assert_eq!(proportional(&[(10, None), (20, None)], 10), vec![3, 7]);
        assert_eq!(proportional(&[(1, None), (1, None), (1, None)], 1).iter().sum::<i32>(), 1);
        assert_eq!(proportional(&[(2, None), (3, None)], 5), vec![2, 3]);
        for allowed in 0..40 {
            let sum: i32 = proportional(&[(3, None), (7, Some(12)), (1, None)], allowed).iter().sum();
            assert_eq!(sum, allowed, "{allowed}");
        }
    }

    #[test]
    fn progress_deadline() {
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs);
        let cond = |reason: &str, updated: u64| DeploymentCondition {
            r#type: "Progressing".into(),
            status: "True".into(),
            reason: reason.into(),
            last_update_time: humantime::format_rfc3339_seconds(at(updated)).to_string(),
            ..Default::default()
        };
        let i = ProgressInput { deadline: Some(Duration::from_secs(10)), ..Default::default() };
        let prev = cond("ReplicaSetUpdated", 0);
        assert_eq!(progressing(Some(&prev), &i, at(5)).1, "ReplicaSetUpdated");
        assert_eq!(
            progressing(Some(&prev), &i, at(11)),
            ("False".into(), "ProgressDeadlineExceeded".into(), true)
        );
        // Progress restarts the clock; completion wins; a completed rollout never times out.
        let moving = ProgressInput { progressed: true, ..i.clone() };
        assert_eq!(progressing(Some(&prev), &moving, at(11)).1, "ReplicaSetUpdated");
        let done = ProgressInput { complete: true, ..i.clone() };
        assert_eq!(progressing(Some(&prev), &done, at(11)).1, "NewReplicaSetAvailable");
        assert_eq!(
            progressing(Some(&cond("NewReplicaSetAvailable", 0)), &i, at(99)).1,
            "NewReplicaSetAvailable"
        );
        // Timed out stays timed out until progress; no deadline never times out; paused pauses it.
        assert_eq!(
            progressing(Some(&cond("ProgressDeadlineExceeded", 0)), &i, at(99)).1,
            "ProgressDeadlineExceeded"
        );
        let forever = ProgressInput { deadline: None, ..Default::default() };
        assert_eq!(progressing(Some(&prev), &forever, at(99_999)).1, "ReplicaSetUpdated");
        let paused = ProgressInput { paused: true, ..i.clone() };
        assert_eq!(progressing(Some(&prev), &paused, at(99)).1, "DeploymentPaused");
        assert_eq!(progressing(Some(&cond("DeploymentPaused", 0)), &i, at(99)).1, "DeploymentResumed");
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
