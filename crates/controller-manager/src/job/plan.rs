//! The Job controller's decisions, pure and in the order of Kubernetes' `syncJob`: [`claim`] the pods,
//! [`assess`] them (counts, the finishing condition the Job is headed for, deadlines), [`manage`] them
//! (pods to create or delete), then [`track`] the outcome into a status that first records newly ended
//! pods as uncounted and lists the pods whose tracking finalizer may go. After those finalizers are
//! removed, [`clean_uncounted`] moves the uncounted pods into the counters and [`enact_finished`] writes
//! the final condition. [`Backoff`] is the delay before replacing failed pods; [`ttl_remaining`] the
//! time left before a finished Job is deleted.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{Job, JobCondition, JobStatus, Pod, UncountedTerminatedPods};

use super::indexes::Intervals;
use super::per_index;
use super::pods::{
    Verdict, completion_index, failure_verdict, finished_time, has_finalizer, is_failed, is_succeeded,
    is_terminating, only_replace_failed, restarts,
};
use super::{is_indexed, is_suspended, spec_of};
use crate::pod_control::{Claim, claim_objects};
use crate::replicaset::{deletion_order, is_active, is_ready};

/// Pods created or deleted per sync at most (Kubernetes' `MaxPodCreateDeletePerSync`).
pub const MAX_PODS_PER_SYNC: usize = 500;
/// Finished pods recorded per sync at most (Kubernetes' `MaxUncountedPods`), keeping the status small.
pub const MAX_UNCOUNTED: usize = 500;
/// The delay before replacing the first failed pod; it doubles with each further failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// The longest such delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(360);

pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";
pub const SUSPENDED: &str = "Suspended";
pub const FAILURE_TARGET: &str = "FailureTarget";
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";

/// An event the sync should record on the Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

pub fn condition<'a>(status: Option<&'a JobStatus>, ty: &str) -> Option<&'a JobCondition> {
    status?.conditions.iter().find(|c| c.r#type == ty)
}

fn is_true(status: Option<&JobStatus>, ty: &str) -> bool {
    condition(status, ty).is_some_and(|c| c.status == "True")
}

/// Complete or Failed (True): nothing more to do but clean up.
pub fn is_finished(job: &Job) -> bool {
    let s = job.status.as_ref();
    is_true(s, COMPLETE) || is_true(s, FAILED)
}

pub fn new_condition(ty: &str, status: &str, reason: &str, message: &str, now: SystemTime) -> JobCondition {
    JobCondition {
        r#type: ty.into(),
        status: status.into(),
        last_probe_time: rfc3339(now),
        last_transition_time: rfc3339(now),
        reason: reason.into(),
        message: message.into(),
    }
}

/// Sets condition `ty` (Kubernetes' `ensureJobConditionStatus`): replaced when its status, reason or
/// message differ, added when absent unless False. Whether anything changed.
pub fn ensure_condition(
    list: &mut Vec<JobCondition>,
    ty: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: SystemTime,
) -> bool {
    match list.iter_mut().find(|c| c.r#type == ty) {
        Some(c) if c.status != status || c.reason != reason || c.message != message => {
            *c = new_condition(ty, status, reason, message, now);
            true
        }
        Some(_) => false,
        None if status == "False" => false,
        None => {
            list.push(new_condition(ty, status, reason, message, now));
            true
        }
    }
}

/// Sorts the pods of the Job's namespace by ownership (Kubernetes' `ClaimPods`): orphans are adopted
/// only while the Job is not being deleted, nor finished.
pub fn claim<'a>(job: &Job, pods: &[&'a Pod]) -> Claim<'a, Pod> {
    let adopting = job.meta().deletion_timestamp.is_empty() && !is_finished(job);
    claim_objects(job.meta(), spec_of(job).selector.as_ref(), adopting, pods)
}

/// What one sync starts from: the Job, its pods, and what the controller remembers.
pub struct View<'a> {
    pub job: &'a Job,
    pub pods: Vec<&'a Pod>,
    /// UIDs of pods whose tracking finalizer this controller removed and its cache does not show yet.
    pub expected_rm_finalizers: &'a HashSet<String>,
    pub now: SystemTime,
}

impl View<'_> {
    fn completions(&self) -> Option<i32> {
        spec_of(self.job).completions
    }

    fn uncounted(&self) -> UncountedTerminatedPods {
        self.job.status.as_ref().and_then(|s| s.uncounted_terminated_pods.clone()).unwrap_or_default()
    }

    /// A pod with a valid completion index (any pod of a NonIndexed Job).
    fn valid_index(&self, p: &Pod) -> bool {
        !is_indexed(self.job)
            || completion_index(p).is_some_and(|ix| ix < self.completions().unwrap_or_default())
    }
}

/// The state of the Job's pods.
#[derive(Debug)]
pub struct Assessment<'a> {
    /// Pods neither ended nor being deleted.
    pub active: Vec<&'a Pod>,
    pub ready: i32,
    pub terminating: i32,
    /// Succeeded pods: counted, uncounted, and newly ended (for Indexed Jobs: completed indexes).
    pub succeeded: i32,
    /// Failed pods, the same way, without those the pod failure policy ignores.
    pub failed: i32,
    /// Pods that ended since the last sync (not yet uncounted nor counted).
    pub new_succeeded: Vec<&'a Pod>,
    pub new_failed: Vec<&'a Pod>,
    pub start_time: String,
    /// The condition the Job is headed for: FailureTarget (new), or the final Failed or Complete of an
    /// interim FailureTarget or SuccessCriteriaMet already recorded.
    pub finished: Option<JobCondition>,
    /// Sync again by then (the active deadline).
    pub requeue: Option<Duration>,
    /// Completed indexes in the status, and with the newly succeeded ones.
    pub prev_succeeded_indexes: Intervals,
    pub succeeded_indexes: Intervals,
    /// With backoffLimitPerIndex: the indexes that failed (no longer run).
    pub failed_indexes: Intervals,
}

/// Counts the pods and decides whether the Job is failing (pod failure policy, backoffLimit, active
/// deadline) or has been declared finished by an interim condition.
pub fn assess<'a>(v: &View<'a>) -> Assessment<'a> {
    let job = v.job;
    let spec = spec_of(job);
    let status = job.status.as_ref();
    let uncounted = v.uncounted();
    let counted_or_pending =
        |uid: &str| uncounted.succeeded.iter().chain(&uncounted.failed).any(|u| u == uid);
    let active: Vec<&Pod> = v.pods.iter().copied().filter(|p| is_active(p)).collect();
    let fresh = |p: &&&Pod| {
        let uid = &p.meta().uid;
        has_finalizer(p)
            && !counted_or_pending(uid)
            && !v.expected_rm_finalizers.contains(uid)
            && v.valid_index(p)
    };
    let new_succeeded: Vec<&Pod> = v.pods.iter().filter(fresh).copied().filter(|p| is_succeeded(p)).collect();
    let new_failed: Vec<&Pod> = v.pods.iter().filter(fresh).copied().filter(|p| is_failed(p, job)).collect();
    let old = status.cloned().unwrap_or_default();
    let counted_failures = new_failed.iter().filter(|p| failure_verdict(job, p).counts()).count();
    let failed = old.failed + counted_failures as i32 + uncounted.failed.len() as i32;
    let (prev_succeeded_indexes, succeeded_indexes) = if is_indexed(job) {
        let completions = spec.completions.unwrap_or_default();
        let prev = Intervals::parse(&old.completed_indexes, completions);
        let new = v.pods.iter().filter(|p| is_succeeded(p) && has_finalizer(p) && v.valid_index(p));
        let all = prev.with(new.filter_map(|p| completion_index(p)));
        (prev, all)
    } else {
        Default::default()
    };
    let succeeded = if is_indexed(job) {
        succeeded_indexes.total()
    } else {
        old.succeeded + new_succeeded.len() as i32 + uncounted.succeeded.len() as i32
    };
    let suspended = is_suspended(job);
    let start_time =
        if old.start_time.is_empty() && !suspended { rfc3339(v.now) } else { old.start_time.clone() };

    let failed_indexes =
        if per_index::applies(job) { per_index::failed_indexes(job, &v.pods) } else { Intervals::default() };
    let completions = spec.completions.unwrap_or_default();
    let mut finished = None;
    let mut requeue = None;
    if let Some(c) = condition(status, SUCCESS_CRITERIA_MET).filter(|c| c.status == "True") {
        finished = Some(new_condition(COMPLETE, "True", &c.reason, &c.message, v.now));
    } else if let Some(c) = condition(status, FAILURE_TARGET).filter(|c| c.status == "True") {
        finished = Some(new_condition(FAILED, "True", &c.reason, &c.message, v.now));
    } else if let Some(message) = fail_job_message(job, &v.pods) {
        finished = Some(new_condition(FAILURE_TARGET, "True", "PodFailurePolicy", &message, v.now));
    } else if failed > spec.backoff_limit.unwrap_or(6) || past_backoff_limit_on_failure(job, &v.pods) {
        let message = "Job has reached the specified backoff limit";
        finished = Some(new_condition(FAILURE_TARGET, "True", "BackoffLimitExceeded", message, v.now));
    } else if spec.max_failed_indexes.is_some_and(|most| failed_indexes.total() > most) {
        let message = "Job has exceeded the specified maximal number of failed indexes";
        finished = Some(new_condition(FAILURE_TARGET, "True", "MaxFailedIndexesExceeded", message, v.now));
    } else if failed_indexes.total() > 0 && failed_indexes.merge(&succeeded_indexes).total() >= completions {
        let message = "Job has failed indexes";
        finished = Some(new_condition(FAILURE_TARGET, "True", "FailedIndexes", message, v.now));
    } else if let Some(deadline) = spec.active_deadline_seconds.filter(|_| !suspended) {
        // Resuming restarts the clock (the start time is reset below, in `track`).
        let resuming = is_true(status, SUSPENDED);
        let started = parse_time(&start_time).filter(|_| !resuming).unwrap_or(v.now);
        let elapsed = v.now.duration_since(started).unwrap_or_default();
        let allowed = Duration::from_secs(deadline.max(0) as u64);
        if elapsed >= allowed {
            let message = "Job was active longer than specified deadline";
            finished = Some(new_condition(FAILURE_TARGET, "True", "DeadlineExceeded", message, v.now));
        } else {
            requeue = Some(allowed - elapsed);
        }
    }
    if finished.is_none()
        && let Some(message) = success_policy_met(job, &succeeded_indexes)
    {
        finished = Some(new_condition(SUCCESS_CRITERIA_MET, "True", "SuccessPolicy", &message, v.now));
    }
    Assessment {
        ready: active.iter().filter(|p| is_ready(p)).count() as i32,
        terminating: v.pods.iter().filter(|p| is_terminating(p)).count() as i32,
        active,
        succeeded,
        failed,
        new_succeeded,
        new_failed,
        start_time,
        finished,
        requeue,
        prev_succeeded_indexes,
        succeeded_indexes,
        failed_indexes,
    }
}

/// Whether the succeeded indexes of an Indexed Job meet a rule of its `successPolicy` (Kubernetes'
/// `matchSuccessPolicy`, rules in order): all of the rule's `succeededIndexes`, or `succeededCount` of
/// them (of all indexes when the rule lists none). The message names the first rule met.
fn success_policy_met(job: &Job, succeeded: &Intervals) -> Option<String> {
    let spec = spec_of(job);
    let policy = spec.success_policy.as_ref().filter(|_| is_indexed(job) && succeeded.total() > 0)?;
    let completions = spec.completions.unwrap_or_default();
    let met = |rule: &navarch_api::v1::SuccessPolicyRule| match &rule.succeeded_indexes {
        Some(listed) => {
            let required = Intervals::parse(listed, completions);
            let done = required.overlap(succeeded);
            required.total() > 0
                && (done == required.total() || rule.succeeded_count.is_some_and(|c| done >= c))
        }
        None => rule.succeeded_count.is_some_and(|c| succeeded.total() >= c),
    };
    let index = policy.rules.iter().position(met)?;
    Some(format!("Matched rules at index {index}"))
}

/// The message of the first failed pod that a `FailJob` rule matches.
fn fail_job_message(job: &Job, pods: &[&Pod]) -> Option<String> {
    spec_of(job).pod_failure_policy.as_ref()?;
    pods.iter().filter(|p| is_failed(p, job)).find_map(|p| match failure_verdict(job, p) {
        Verdict::FailJob(m) => Some(m),
        _ => None,
    })
}

/// With `restartPolicy: OnFailure`, container restarts of running pods count against backoffLimit.
fn past_backoff_limit_on_failure(job: &Job, pods: &[&Pod]) -> bool {
    let spec = spec_of(job);
    let policy = spec.template.as_ref().and_then(|t| t.spec.as_ref()).map(|s| s.restart_policy.as_str());
    if policy != Some("OnFailure") {
        return false;
    }
    let total: i32 = pods.iter().map(|p| restarts(p)).sum();
    match spec.backoff_limit.unwrap_or(6) {
        0 => total > 0,
        limit => total >= limit,
    }
}

/// A pod to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Victim {
    pub name: String,
    pub uid: String,
    pub ready: bool,
    /// Remove the tracking finalizer first, so that the pod is not counted (suspension, surplus).
    pub uncount: bool,
}

/// What to do with pods.
#[derive(Debug, Default, PartialEq)]
pub struct Manage {
    pub delete: Vec<Victim>,
    /// One entry per pod to create: its completion index for an Indexed Job.
    pub create: Vec<Option<i32>>,
    /// Pods are missing but failures are backing off: sync again after this long.
    pub wait: Option<Duration>,
    /// Whether the Job was managed (Kubernetes' `manageJob` ran): suspension conditions follow.
    pub managed: bool,
    /// With backoffLimitPerIndex: per index, the (counted, ignored) failure counts its new pod carries.
    pub index_failures: std::collections::BTreeMap<i32, (i32, i32)>,
}

fn victim(p: &Pod, uncount: bool) -> Victim {
    let m = p.meta();
    Victim { name: m.name.clone(), uid: m.uid.clone(), ready: is_ready(p), uncount }
}

/// Active pods to delete, at least `at_least` (Kubernetes' `activePodsForRemoval`): for an Indexed
/// Job, first those with an invalid or repeated index (keeping the most useful of a repeat), then the
/// least useful.
pub fn active_for_removal<'a>(job: &Job, active: &[&'a Pod], at_least: usize) -> Vec<&'a Pod> {
    let mut rm: Vec<&Pod> = Vec::new();
    let mut left: Vec<&Pod> = Vec::new();
    if is_indexed(job) {
        let completions = spec_of(job).completions.unwrap_or_default();
        let mut by_index: std::collections::BTreeMap<i32, Vec<&Pod>> = Default::default();
        for &p in active {
            match completion_index(p).filter(|ix| *ix < completions) {
                Some(ix) => by_index.entry(ix).or_default().push(p),
                None => rm.push(p),
            }
        }
        for (_, mut same) in by_index {
            deletion_order(&mut same);
            let keep = same.pop();
            rm.extend(same);
            left.extend(keep);
        }
    } else {
        left = active.to_vec();
    }
    if rm.len() < at_least {
        deletion_order(&mut left);
        let more = (at_least - rm.len()).min(left.len());
        rm.extend(left.into_iter().take(more));
    }
    rm
}

/// The pods to create or delete (Kubernetes' `manageJob`): a finishing Job loses its active pods; a
/// suspended one too (uncounted); otherwise keep `min(parallelism, remaining completions)` active,
/// deleting the surplus or creating the missing (lowest free indexes first when Indexed) unless failures
/// are backing off (`backoff` left). Nothing while expectations are unmet.
pub fn manage(v: &View, a: &Assessment, satisfied: bool, backoff: Duration) -> Manage {
    let job = v.job;
    let spec = spec_of(job);
    let mut out = Manage::default();
    if a.finished.is_some() {
        out.delete = a.active.iter().map(|p| victim(p, false)).collect();
        return out;
    }
    if !satisfied || !job.meta().deletion_timestamp.is_empty() {
        return out;
    }
    out.managed = true;
    let active = a.active.len() as i32;
    if is_suspended(job) {
        let all = active_for_removal(job, &a.active, a.active.len());
        out.delete = all.iter().take(MAX_PODS_PER_SYNC).map(|p| victim(p, true)).collect();
        return out;
    }
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let want = match spec.completions {
        // Work queue: once one pod has succeeded, no new ones; the others run to their end.
        None if a.succeeded > 0 => active,
        None => parallelism,
        Some(c) => (c - a.succeeded - a.failed_indexes.total()).clamp(0, parallelism),
    };
    let surplus = (active - want).max(0) as usize;
    let remove = active_for_removal(job, &a.active, surplus);
    if !remove.is_empty() {
        out.delete = remove.iter().take(MAX_PODS_PER_SYNC).map(|p| victim(p, true)).collect();
        return out;
    }
    let terminating = if only_replace_failed(job) { a.terminating } else { 0 };
    let missing = (want - terminating - active).max(0) as usize;
    if missing == 0 {
        return out;
    }
    // Independent indexes back off each on its own (below).
    if !backoff.is_zero() && !per_index::applies(job) {
        out.wait = Some(backoff);
        return out;
    }
    let missing = missing.min(MAX_PODS_PER_SYNC);
    out.create = if is_indexed(job) {
        let completions = spec.completions.unwrap_or_default();
        let mut taken = a.succeeded_indexes.with(a.active.iter().filter_map(|p| completion_index(p)));
        taken = taken.merge(&a.failed_indexes);
        if per_index::applies(job) {
            let waiting = per_index::backoff_remaining(job, &v.pods, v.now);
            taken = taken.with(waiting.keys().copied());
            out.wait = waiting.values().min().copied();
            out.index_failures = per_index::next_failure_counts(job, &v.pods, v.now);
        }
        if only_replace_failed(job) {
            let ending = v.pods.iter().filter(|p| is_terminating(p));
            taken = taken.merge(&Intervals::default().with(ending.filter_map(|p| completion_index(p))));
        }
        taken.first_missing(missing, completions).into_iter().map(Some).collect()
    } else {
        vec![None; missing]
    };
    out
}

/// How the pod writes of [`manage`] went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub deleted: i32,
    pub deleted_ready: i32,
    pub created: i32,
    /// The controller's expectations were met (it did not hold back for its cache).
    pub satisfied: bool,
    /// [`manage`] managed the Job ([`Manage::managed`]).
    pub managed: bool,
}

/// The status to write first and what follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracking {
    /// Counters, conditions, and newly ended pods added to `uncountedTerminatedPods` (for Indexed Jobs,
    /// succeeded indexes go straight to `completedIndexes`).
    pub status: JobStatus,
    /// Pods (name, uid) whose tracking finalizer goes once `status` is written.
    pub remove_finalizers: Vec<(String, String)>,
    /// The final condition to write once no pod is left uncounted or terminating.
    pub finished: Option<JobCondition>,
    pub notes: Vec<Note>,
    /// More ended pods than one sync records: the Job must not finish in this sync.
    pub capped: bool,
}

fn success_criteria_met(now: SystemTime) -> JobCondition {
    let message = "Reached expected number of succeeded pods";
    new_condition(SUCCESS_CRITERIA_MET, "True", "CompletionsReached", message, now)
}

/// The status after [`manage`]'s writes (Kubernetes' tail of `syncJob` and the first half of
/// `trackJobStatusAndRemoveFinalizers`).
pub fn track(v: &View, a: &Assessment, o: &Outcome) -> Tracking {
    let job = v.job;
    let spec = spec_of(job);
    let mut status = job.status.clone().unwrap_or_default();
    status.uncounted_terminated_pods.get_or_insert_with(Default::default);
    let mut notes = Vec::new();
    let active = a.active.len() as i32 - o.deleted + o.created;
    let mut finished = a.finished.clone();
    if finished.is_some() && (o.deleted != a.active.len() as i32 || !o.satisfied) {
        // Pods are left, or the cache lags behind this controller's writes: not finished yet.
        finished = None;
    }
    status.start_time = a.start_time.clone();
    if a.finished.is_none() {
        let complete = match spec.completions {
            None => a.succeeded > 0 && active == 0,
            Some(c) => a.succeeded >= c && active == 0,
        };
        if complete {
            finished = Some(success_criteria_met(v.now));
        } else if o.managed {
            let conditions = &mut status.conditions;
            if is_suspended(job) {
                if ensure_condition(conditions, SUSPENDED, "True", "JobSuspended", "Job suspended", v.now) {
                    notes.push(Note { warning: false, reason: "Suspended", message: "Job suspended".into() });
                }
            } else if ensure_condition(conditions, SUSPENDED, "False", "JobResumed", "Job resumed", v.now) {
                notes.push(Note { warning: false, reason: "Resumed", message: "Job resumed".into() });
                // The active deadline counts from the resumption.
                status.start_time = rfc3339(v.now);
            }
        }
    }
    status.active = active;
    status.ready = Some(a.ready - o.deleted_ready);
    status.terminating = Some(a.terminating + o.deleted);

    let with_finalizer: HashSet<&str> =
        v.pods.iter().filter(|p| has_finalizer(p)).map(|p| p.meta().uid.as_str()).collect();
    clean_uncounted(&mut status, &with_finalizer);
    let mut pods = v.pods.clone();
    if is_indexed(job) {
        pods.sort_by_key(|p| completion_index(p));
    }
    let failing = finished.as_ref().is_some_and(|c| c.r#type == FAILURE_TARGET || c.r#type == FAILED);
    let mut remove = Vec::new();
    let mut new_indexes = Vec::new();
    let mut capped = false;
    let uncounted = status.uncounted_terminated_pods.get_or_insert_with(Default::default);
    for p in pods {
        let uid = &p.meta().uid;
        if !has_finalizer(p) || v.expected_rm_finalizers.contains(uid) {
            continue;
        }
        let failed = is_failed(p, job);
        if !(finished.is_some() || is_succeeded(p) || failed) {
            continue;
        }
        remove.push((p.meta().name.clone(), uid.clone()));
        if is_succeeded(p) && !uncounted.failed.contains(uid) {
            if is_indexed(job) {
                let ix = completion_index(p).filter(|_| v.valid_index(p));
                if let Some(ix) = ix.filter(|ix| !a.prev_succeeded_indexes.has(*ix)) {
                    new_indexes.push(ix);
                }
            } else if !uncounted.succeeded.contains(uid) {
                uncounted.succeeded.push(uid.clone());
            }
        } else if (failed || failing) && !uncounted.failed.contains(uid) && v.valid_index(p) {
            // A finishing Job's pods still running count as failed.
            if failure_verdict(job, p).counts() {
                uncounted.failed.push(uid.clone());
            }
        }
        if new_indexes.len() + uncounted.succeeded.len() + uncounted.failed.len() >= MAX_UNCOUNTED {
            capped = true;
            break;
        }
    }
    if per_index::applies(job) {
        status.failed_indexes = Some(a.failed_indexes.to_string());
    }
    if is_indexed(job) {
        let indexes = a.succeeded_indexes.with(new_indexes);
        status.succeeded = indexes.total();
        status.completed_indexes = indexes.to_string();
    }
    // The interim condition goes in before the finalizers, the final one after.
    if let Some(c) = finished.clone() {
        let last = match c.r#type.as_str() {
            FAILURE_TARGET => Some(FAILED),
            SUCCESS_CRITERIA_MET => Some(COMPLETE),
            _ => None,
        };
        if let Some(last) = last {
            ensure_condition(&mut status.conditions, &c.r#type, "True", &c.reason, &c.message, v.now);
            finished = Some(new_condition(last, "True", &c.reason, &c.message, v.now));
        }
    }
    Tracking { status, remove_finalizers: remove, finished, notes, capped }
}

/// Counts the uncounted pods whose finalizer is gone (removed, or the pod with it): they move from
/// `uncountedTerminatedPods` into `succeeded` / `failed`. Whether anything changed.
pub fn clean_uncounted(status: &mut JobStatus, with_finalizer: &HashSet<&str>) -> bool {
    let u = status.uncounted_terminated_pods.get_or_insert_with(Default::default);
    let (s, f) = (u.succeeded.len(), u.failed.len());
    u.succeeded.retain(|uid| with_finalizer.contains(uid.as_str()));
    u.failed.retain(|uid| with_finalizer.contains(uid.as_str()));
    let (ds, df) = ((s - u.succeeded.len()) as i32, (f - u.failed.len()) as i32);
    status.succeeded += ds;
    status.failed += df;
    ds > 0 || df > 0
}

/// Writes the final condition (and, for Complete, the completion time) once every ended pod is counted
/// and none is terminating. Whether the Job finished.
pub fn enact_finished(status: &mut JobStatus, finished: &JobCondition, now: SystemTime) -> bool {
    let u = status.uncounted_terminated_pods.clone().unwrap_or_default();
    if !u.succeeded.is_empty() || !u.failed.is_empty() || status.terminating.unwrap_or(0) > 0 {
        return false;
    }
    let c = finished;
    ensure_condition(&mut status.conditions, &c.r#type, &c.status, &c.reason, &c.message, now);
    if c.r#type == COMPLETE {
        status.completion_time = rfc3339(now);
    }
    true
}

/// The events of a Job that just finished.
pub fn finished_notes(job: &Job, status: &JobStatus, finished: &JobCondition) -> Vec<Note> {
    if finished.r#type == COMPLETE {
        let mut notes = Vec::new();
        if spec_of(job).completions.is_some_and(|c| status.succeeded > c) {
            let message = "Too many succeeded pods running after completion count reached".to_string();
            notes.push(Note { warning: true, reason: "TooManySucceededPods", message });
        }
        notes.push(Note { warning: false, reason: "Completed", message: "Job completed".into() });
        return notes;
    }
    let reason = match finished.reason.as_str() {
        "BackoffLimitExceeded" => "BackoffLimitExceeded",
        "DeadlineExceeded" => "DeadlineExceeded",
        "PodFailurePolicy" => "PodFailurePolicy",
        _ => "Failed",
    };
    vec![Note { warning: true, reason, message: finished.message.clone() }]
}

/// Failures since the last success, and when the last one happened: replacement pods wait
/// `10 s × 2^(failures-1)` (at most 6 minutes) after it. Kept in memory, as in Kubernetes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backoff {
    pub failures: u32,
    pub last_failure: Option<SystemTime>,
}

impl Backoff {
    /// This record after the newly ended pods (Kubernetes' `newBackoffRecord`): a success resets the
    /// count to the failures that ended after it.
    pub fn updated(&self, new_succeeded: &[&Pod], new_failed: &[&Pod], now: SystemTime) -> Backoff {
        let mut failed: Vec<SystemTime> = new_failed.iter().map(|p| finished_time(p, now)).collect();
        failed.sort();
        let last_success = new_succeeded.iter().map(|p| finished_time(p, now)).max();
        match last_success {
            None if failed.is_empty() => self.clone(),
            None => Backoff {
                failures: self.failures + failed.len() as u32,
                last_failure: failed.last().copied(),
            },
            Some(success) => {
                let after: Vec<&SystemTime> = failed.iter().filter(|t| **t > success).collect();
                Backoff { failures: after.len() as u32, last_failure: after.last().map(|t| **t) }
            }
        }
    }

    /// How long replacements still wait.
    pub fn remaining(&self, now: SystemTime) -> Duration {
        let Some(last) = self.last_failure.filter(|_| self.failures > 0) else { return Duration::ZERO };
        let mut delay = BACKOFF_BASE;
        for _ in 1..self.failures {
            delay = delay.saturating_mul(2);
            if delay >= BACKOFF_MAX {
                delay = BACKOFF_MAX;
                break;
            }
        }
        delay.saturating_sub(now.duration_since(last).unwrap_or_default())
    }
}

/// For a finished Job with `ttlSecondsAfterFinished`: how long until it is deleted (zero: now). `None`
/// when it is not to be deleted.
pub fn ttl_remaining(job: &Job, now: SystemTime) -> Option<Duration> {
    let ttl = spec_of(job).ttl_seconds_after_finished?;
    if !job.meta().deletion_timestamp.is_empty() {
        return None;
    }
    let s = job.status.as_ref();
    let c = [COMPLETE, FAILED].into_iter().filter_map(|t| condition(s, t)).find(|c| c.status == "True")?;
    let finished = parse_time(&c.last_transition_time).unwrap_or(now);
    let expires = finished + Duration::from_secs(ttl.max(0) as u64);
    Some(expires.duration_since(now).unwrap_or_default())
}
