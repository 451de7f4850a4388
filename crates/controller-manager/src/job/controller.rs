//! The Job controller's reconcile loop ([`JobController`]): claims a Job's pods, applies the pure
//! decisions of [`super::plan`] (pod creations and deletions, then the status protocol that counts
//! every ended pod once: uncounted UIDs written, finalizers removed, counters written), deletes
//! finished Jobs whose TTL has passed, and frees the pods of Jobs being deleted. It remembers, per Job,
//! its own writes until its caches show them (pods created and deleted, finalizers removed, the status
//! it wrote), so it never acts twice on a stale cache; and the failure back-off.
//!
//! [`OrphanPods`] removes the tracking finalizer from pods whose Job is gone (or that have no
//! controller), so that the garbage collector can delete them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{Job, JobStatus, Pod};
use navarch_client::{Action, Api, Client, DeleteParams, EventRecorder, ObjectRef, Store, object_ref};

use super::plan::{
    Backoff, Manage, Note, Outcome, View, assess, claim, clean_uncounted, enact_finished, finished_notes,
    is_finished, manage, track, ttl_remaining,
};
use super::pods::{has_finalizer, is_terminal, owner_ref, pod_for};
use super::{JobError, MANAGED_BY, TRACKING_FINALIZER, per_index, spec_of};
use crate::pod_control::{Expectations, PruneClock, controller_of, create_in_batches};
use crate::run::Reconciler;

/// Finalizer removals (and pod deletions) in flight at once per Job.
const PARALLEL_WRITES: usize = 16;

/// What the controller remembers of one Job.
#[derive(Debug, Default)]
struct Memory {
    /// UIDs of pods whose tracking finalizer it removed and its pod cache still shows.
    rm_finalizers: HashSet<String>,
    backoff: Backoff,
    /// The resourceVersion of the last status it wrote: a cached Job older than that is stale.
    written: Option<u64>,
}

/// The reconcile side of the Job controller.
pub struct JobController {
    client: Client,
    pods: Store<Pod>,
    jobs: Store<Job>,
    events: EventRecorder,
    memory: Mutex<HashMap<String, Memory>>,
    /// Pods it created and deleted that its pod cache does not show yet.
    expectations: Expectations,
    pruned: PruneClock,
}

fn revision(job: &Job) -> Option<u64> {
    job.meta().resource_version.parse().ok()
}

impl JobController {
    pub fn new(client: Client, pods: Store<Pod>, jobs: Store<Job>, events: EventRecorder) -> JobController {
        JobController {
            client,
            pods,
            jobs,
            events,
            memory: Mutex::new(HashMap::new()),
            expectations: Expectations::default(),
            pruned: PruneClock::default(),
        }
    }

    fn with_memory<T>(&self, key: &str, f: impl FnOnce(&mut Memory) -> T) -> T {
        let mut all = self.memory.lock().expect("job memory lock");
        f(all.entry(key.to_string()).or_default())
    }

    /// Drops what is remembered of Jobs no longer in the cache (at most once a minute).
    fn prune(&self) {
        if !self.pruned.due() {
            return;
        }
        let live: HashSet<String> = self.jobs.keys().iter().map(ToString::to_string).collect();
        self.memory.lock().expect("job memory lock").retain(|k, _| live.contains(k));
        self.expectations.retain(&live);
    }

    /// Whether the cached Job predates the last status this controller wrote.
    fn stale(&self, key: &str, job: &Job) -> bool {
        let written = self.with_memory(key, |m| m.written);
        matches!((written, revision(job)), (Some(w), Some(r)) if r < w)
    }

    /// Whether the pod cache shows this Job's pod creations and deletions (or they timed out), and the
    /// UIDs whose finalizer removal it does not show yet.
    fn expectations(&self, key: &str, pods: &[Arc<Pod>]) -> (bool, HashSet<String>) {
        let met = self.expectations.satisfied(key, pods.iter().map(|p| p.as_ref()));
        let with_finalizer: HashSet<&str> =
            pods.iter().filter(|p| has_finalizer(p)).map(|p| p.meta().uid.as_str()).collect();
        self.with_memory(key, |m| {
            m.rm_finalizers.retain(|uid| with_finalizer.contains(uid.as_str()));
            (met, m.rm_finalizers.clone())
        })
    }

    fn note(&self, job: &Job, n: Note) {
        let kind = if n.warning { "Warning" } else { "Normal" };
        self.events.record(object_ref(job), kind, n.reason, n.message);
    }

    /// Writes `status` as the Job's (optimistic concurrency on `job`'s resourceVersion) and remembers
    /// the revision written.
    async fn write_status(&self, key: &str, job: &Job, status: JobStatus) -> Result<Job, JobError> {
        let api = self.client.api::<Job>(&job.meta().namespace);
        let written = api.update_status(&Job { status: Some(status), ..job.clone() }).await?;
        let rev = revision(&written);
        self.with_memory(key, |m| m.written = rev.max(m.written));
        tracing::debug!(job = %key, status = ?written.status, "status written");
        Ok(written)
    }

    /// Removes the tracking finalizer from `pods`, remembering the removals; the UIDs freed (removed,
    /// or the pod gone) and the first error.
    async fn free(&self, key: &str, pods: &[&Pod]) -> (HashSet<String>, Option<navarch_client::Error>) {
        let writes: Vec<_> = pods
            .iter()
            .map(|p| {
                let api = self.client.api::<Pod>(&p.meta().namespace);
                let pod: Pod = (*p).clone();
                async move {
                    let r = remove_finalizer(&api, &pod).await;
                    (pod.meta().uid.clone(), r)
                }
            })
            .collect();
        let results: Vec<(String, Result<(), navarch_client::Error>)> =
            futures::stream::iter(writes).buffer_unordered(PARALLEL_WRITES).collect().await;
        let mut freed = HashSet::new();
        let mut error = None;
        for (uid, r) in results {
            match r {
                Ok(()) => {
                    freed.insert(uid);
                }
                Err(e) => {
                    tracing::debug!(job = %key, pod_uid = %uid, error = %e, "removing a tracking finalizer");
                    error.get_or_insert(e);
                }
            }
        }
        self.with_memory(key, |m| m.rm_finalizers.extend(freed.iter().cloned()));
        (freed, error)
    }

    /// Takes orphans matching the Job's selector (with the tracking finalizer when they still run) and
    /// lets go of pods that stopped matching.
    async fn adopt_and_release(&self, job: &Job, adopt: &[&Pod], release: &[&Pod]) {
        let api = self.client.api::<Pod>(&job.meta().namespace);
        for p in adopt {
            let mut p = (*p).clone();
            p.meta_mut().owner_references.push(owner_ref(job));
            if !is_terminal(&p) && !has_finalizer(&p) {
                p.meta_mut().finalizers.push(TRACKING_FINALIZER.into());
            }
            if let Err(e) = api.update(&p).await {
                tracing::debug!(job = %job.key(), pod = %p.meta().name, error = %e, "adopting a pod");
            }
        }
        for p in release {
            let mut p = (*p).clone();
            let uid = job.meta().uid.clone();
            p.meta_mut().owner_references.retain(|r| r.uid != uid);
            p.meta_mut().finalizers.retain(|f| f != TRACKING_FINALIZER);
            if let Err(e) = api.update(&p).await {
                tracing::debug!(job = %job.key(), pod = %p.meta().name, error = %e, "releasing a pod");
            }
        }
    }

    /// Deletes and creates the pods `plan` says.
    async fn apply(&self, job: &Job, key: &str, plan: &Manage, pods: &[&Pod]) -> (Outcome, Option<JobError>) {
        let mut out = Outcome::default();
        let mut error = None;
        let api = self.client.api::<Pod>(&job.meta().namespace);
        if !plan.delete.is_empty() {
            // (name, uid, ready, finalizer removed, deleted)
            type Deletion = (String, String, bool, bool, Result<(), navarch_client::Error>);
            let writes: Vec<_> = plan
                .delete
                .iter()
                .map(|v| {
                    let api = api.clone();
                    let pod: Option<Pod> = pods.iter().find(|p| p.meta().uid == v.uid).map(|p| (*p).clone());
                    let v = v.clone();
                    async move {
                        let mut freed = false;
                        if v.uncount
                            && let Some(p) = pod
                        {
                            if let Err(e) = remove_finalizer(&api, &p).await {
                                return (v.name, v.uid, v.ready, false, Err(e));
                            }
                            freed = true;
                        }
                        let params = DeleteParams { precondition_uid: v.uid.clone(), ..Default::default() };
                        let r = match api.delete(&v.name, &params).await {
                            Ok(_) | Err(navarch_client::Error::NotFound(_)) => Ok(()),
                            Err(e) => Err(e),
                        };
                        (v.name, v.uid, v.ready, freed, r)
                    }
                })
                .collect();
            let results: Vec<Deletion> =
                futures::stream::iter(writes).buffer_unordered(PARALLEL_WRITES).collect().await;
            let mut deleted = Vec::new();
            let mut freed = Vec::new();
            for (name, uid, ready, was_freed, r) in results {
                if was_freed {
                    freed.push(uid);
                }
                match r {
                    Ok(()) => {
                        out.deleted += 1;
                        out.deleted_ready += i32::from(ready);
                        self.events.record(
                            object_ref(job),
                            "Normal",
                            "SuccessfulDelete",
                            format!("Deleted pod: {name}"),
                        );
                        deleted.push(name);
                    }
                    Err(e) => {
                        tracing::warn!(job = %key, pod = %name, error = %e, "deleting a pod");
                        error.get_or_insert(JobError::Pods(e));
                    }
                }
            }
            self.expectations.expect(key, vec![], deleted);
            self.with_memory(key, |m| m.rm_finalizers.extend(freed));
        }
        if !plan.create.is_empty() {
            let pods = plan
                .create
                .iter()
                .map(|ix| {
                    let mut pod = pod_for(job, *ix);
                    if let Some(ix) = ix.filter(|_| per_index::applies(job)) {
                        per_index::annotate(
                            &mut pod,
                            plan.index_failures.get(&ix).copied().unwrap_or_default(),
                        );
                    }
                    pod
                })
                .collect();
            let (created, e) =
                create_in_batches(&api, &self.events, &object_ref(job), key, &self.expectations, pods).await;
            out.created = created as i32;
            if let Some(e) = e {
                error.get_or_insert(JobError::Pods(e));
            }
        }
        (out, error)
    }

    /// A finished Job: deleted once its `ttlSecondsAfterFinished` has passed (Kubernetes'
    /// ttl-after-finished controller, which checks a fresh copy first), else synced again then.
    async fn expire(&self, job: &Job, key: &str) -> Result<Action, JobError> {
        let now = SystemTime::now();
        match ttl_remaining(job, now) {
            None => return Ok(Action::await_change()),
            Some(left) if !left.is_zero() => return Ok(Action::requeue(left)),
            Some(_) => {}
        }
        let api = self.client.api::<Job>(&job.meta().namespace);
        let Some(fresh) = api.get_opt(&job.meta().name).await? else { return Ok(Action::await_change()) };
        if fresh.meta().uid != job.meta().uid {
            return Ok(Action::await_change());
        }
        match ttl_remaining(&fresh, now) {
            None => return Ok(Action::await_change()),
            Some(left) if !left.is_zero() => return Ok(Action::requeue(left)),
            Some(_) => {}
        }
        let params = DeleteParams {
            propagation_policy: "Background".into(),
            precondition_uid: job.meta().uid.clone(),
            ..Default::default()
        };
        match api.delete(&job.meta().name, &params).await {
            Ok(_) | Err(navarch_client::Error::NotFound(_)) => {
                tracing::info!(job = %key, "deleted a finished Job (ttlSecondsAfterFinished)");
                Ok(Action::await_change())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Removes the tracking finalizer from `pod` (re-reading it on a conflict); a pod that is gone, or
/// replaced by another of the same name, has none left.
pub async fn remove_finalizer(api: &Api<Pod>, pod: &Pod) -> Result<(), navarch_client::Error> {
    let mut cur = pod.clone();
    for _ in 0..5 {
        if !has_finalizer(&cur) {
            return Ok(());
        }
        cur.meta_mut().finalizers.retain(|f| f != TRACKING_FINALIZER);
        match api.update(&cur).await {
            Ok(_) | Err(navarch_client::Error::NotFound(_)) => return Ok(()),
            Err(navarch_client::Error::Conflict(_)) => match api.get_opt(&pod.meta().name).await? {
                Some(p) if p.meta().uid == pod.meta().uid => cur = p,
                _ => return Ok(()),
            },
            Err(e) => return Err(e),
        }
    }
    Err(navarch_client::Error::Conflict(format!("pods {:?}: kept changing", pod.meta().name)))
}

impl Reconciler<Job> for JobController {
    type Error = JobError;

    async fn reconcile(&self, job: Arc<Job>) -> Result<Action, JobError> {
        let m = job.meta();
        let key = format!("{}/{}", m.namespace, m.name);
        self.prune();
        if spec_of(&job).managed_by.as_deref().is_some_and(|by| by != MANAGED_BY) {
            return Ok(Action::await_change());
        }
        if !self.pods.is_ready() {
            // Decisions need the full pod list first.
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        if self.stale(&key, &job) {
            // The watch brings the status this controller wrote; decide from that, not from this.
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        let pods: Vec<Arc<Pod>> =
            self.pods.state().into_iter().filter(|p| p.meta().namespace == m.namespace).collect();
        let refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
        let claimed = claim(&job, &refs);
        if !claimed.adopt.is_empty() || !claimed.release.is_empty() {
            self.adopt_and_release(&job, &claimed.adopt, &claimed.release).await;
        }
        if !m.deletion_timestamp.is_empty() || is_finished(&job) {
            // Deleted: the garbage collector deletes the pods, once their finalizers are gone. Finished:
            // nothing more to run (its pods' finalizers are normally gone already).
            let held: Vec<&Pod> = claimed.mine.iter().copied().filter(|p| has_finalizer(p)).collect();
            let (_, error) = self.free(&key, &held).await;
            if let Some(e) = error {
                return Err(JobError::Finalizers(e));
            }
            self.with_memory(&key, |mem| mem.backoff = Backoff::default());
            return if m.deletion_timestamp.is_empty() {
                self.expire(&job, &key).await
            } else {
                Ok(Action::await_change())
            };
        }
        let mode = spec_of(&job).completion_mode.as_deref().unwrap_or("NonIndexed");
        if mode != "NonIndexed" && mode != "Indexed" {
            let message = "Skipped Job sync because completion mode is unknown".to_string();
            self.events.record(object_ref(job.as_ref()), "Warning", "UnknownCompletionMode", message);
            return Ok(Action::await_change());
        }

        let now = SystemTime::now();
        let (satisfied, expected_rm) = self.expectations(&key, &pods);
        let view = View { job: &job, pods: claimed.mine.clone(), expected_rm_finalizers: &expected_rm, now };
        let a = assess(&view);
        let backoff =
            self.with_memory(&key, |mem| mem.backoff.clone()).updated(&a.new_succeeded, &a.new_failed, now);
        let plan = manage(&view, &a, satisfied, backoff.remaining(now));
        tracing::debug!(job = %key, satisfied, ?plan, succeeded = a.succeeded, failed = a.failed, finishing = ?a.finished.as_ref().map(|c| &c.r#type), "plan");
        let (mut outcome, manage_error) = self.apply(&job, &key, &plan, &view.pods).await;
        outcome.satisfied = satisfied;
        outcome.managed = plan.managed;
        let t = track(&view, &a, &outcome);
        for n in t.notes.iter().cloned() {
            self.note(&job, n);
        }

        // 1. Newly ended pods into `uncountedTerminatedPods` (and every other change of this sync).
        let mut current = (*job).clone();
        if Some(&t.status) != job.status.as_ref() {
            current = self.write_status(&key, &current, t.status.clone()).await?;
        }
        self.with_memory(&key, |mem| mem.backoff = backoff);
        // 2. Their finalizers.
        let remove: Vec<&Pod> = view
            .pods
            .iter()
            .copied()
            .filter(|p| t.remove_finalizers.iter().any(|(_, uid)| *uid == p.meta().uid))
            .collect();
        let (freed, rm_error) = self.free(&key, &remove).await;
        // 3. Counted: out of uncounted, into the counters; then, if nothing is left, finished.
        let mut status = current.status.clone().unwrap_or_default();
        let with_finalizer: HashSet<&str> = view
            .pods
            .iter()
            .filter(|p| has_finalizer(p) && !freed.contains(&p.meta().uid))
            .map(|p| p.meta().uid.as_str())
            .collect();
        clean_uncounted(&mut status, &with_finalizer);
        let finished = match (&t.finished, t.capped || rm_error.is_some()) {
            (Some(f), false) => enact_finished(&mut status, f, now).then_some(f),
            _ => None,
        };
        if Some(&status) != current.status.as_ref() {
            current = self.write_status(&key, &current, status.clone()).await?;
        }
        if let Some(f) = finished {
            tracing::info!(job = %key, condition = %f.r#type, reason = %f.reason, "job finished");
            for n in finished_notes(&job, &status, f) {
                self.note(&current, n);
            }
        }
        if let Some(e) = rm_error {
            return Err(JobError::Finalizers(e));
        }
        if let Some(e) = manage_error {
            return Err(e);
        }
        if finished.is_some() {
            return Ok(Action::await_change());
        }
        let mut next = Duration::from_secs(300);
        if !satisfied {
            next = Duration::from_secs(5);
        }
        for d in [a.requeue, plan.wait].into_iter().flatten() {
            next = next.min(d.max(Duration::from_millis(100)));
        }
        Ok(Action::requeue(next))
    }
}

/// Frees pods that still hold the tracking finalizer but whose Job is gone (or that have no
/// controller at all): nothing else would ever remove it (Kubernetes' orphan pod handling).
pub struct OrphanPods {
    pub client: Client,
    pub jobs: Store<Job>,
}

impl Reconciler<Pod> for OrphanPods {
    type Error = JobError;

    async fn reconcile(&self, pod: Arc<Pod>) -> Result<Action, JobError> {
        if !has_finalizer(&pod) {
            return Ok(Action::await_change());
        }
        let m = pod.meta();
        if let Some(owner) = controller_of(m) {
            if owner.kind != Job::KIND || owner.api_version != Job::API_VERSION {
                return Ok(Action::await_change());
            }
            if !self.jobs.is_ready() {
                return Ok(Action::requeue(Duration::from_secs(1)));
            }
            let cached = self.jobs.get(&ObjectRef::new(&m.namespace, &owner.name));
            if cached.is_some_and(|j| j.meta().uid == owner.uid) {
                // Its Job's own sync deals with it.
                return Ok(Action::await_change());
            }
            // The cache may not show a new Job yet: ask the api-server.
            let api = self.client.api::<Job>(&m.namespace);
            if api.get_opt(&owner.name).await?.is_some_and(|j| j.meta().uid == owner.uid) {
                return Ok(Action::requeue(Duration::from_secs(5)));
            }
        }
        tracing::debug!(pod = %pod.key(), "removing the tracking finalizer of an orphan pod");
        remove_finalizer(&self.client.api::<Pod>(&m.namespace), &pod).await.map_err(JobError::Finalizers)?;
        Ok(Action::await_change())
    }
}
