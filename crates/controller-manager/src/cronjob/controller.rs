//! The CronJob controller's reconcile ([`CronJobController`], Kubernetes' `ControllerV2.sync`): prune
//! finished Jobs beyond the history limits, bring `status.active` up to date with the CronJob's Jobs,
//! then, unless the CronJob is deleted, suspended or unparseable, start the run that is due (or
//! skip it: too late for `startingDeadlineSeconds`, already started, `Forbid` with a Job running;
//! `Replace` deletes the running Jobs first), write the status if anything changed, and requeue at the
//! next activation. Everything is read from the API (the stores, and GETs where a cache may lag), so
//! a restart carries on where the last run stopped; the deterministic Job name makes a second create
//! of the same run fail with AlreadyExists, which is then treated as Kubernetes does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use navarch_api::Resource;
use navarch_api::cron::{Schedule, Zone};
use navarch_api::v1::{CronJob, CronJobStatus, Job};
use navarch_client::{Action, Client, DeleteParams, EventRecorder, Store, object_ref};
use tracing::Instrument;

use super::CronJobError;
use super::jobs::{
    Note, beyond_history, check_active, children, is_active, job_for, job_name, job_ref, remove_active,
    rfc1123z,
};
use super::schedule::{Times, due, requeue_after};
use crate::pod_control::controller_of;
use crate::run::Reconciler;

/// The clock the controller reads (the system's; tests may fix it).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The reconcile side of the CronJob controller.
pub struct CronJobController {
    client: Client,
    jobs: Store<Job>,
    events: EventRecorder,
    now: Clock,
    /// Per CronJob, the resourceVersion of the last status written: a cached CronJob older than that
    /// is stale.
    written: Mutex<HashMap<String, u64>>,
    /// The zone of schedules without `timeZone` (the process's, as in Kubernetes).
    local: Zone,
}

fn seconds(rfc3339: &str) -> Option<i64> {
    let t = navarch_api::rfc3339::parse(rfc3339).ok()?;
    Some(t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs() as i64)
}

fn stamp(secs: i64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64))
        .to_string()
}

fn revision(cj: &CronJob) -> Option<u64> {
    cj.meta().resource_version.parse().ok()
}

/// What the scheduling step decided besides the status: when to look again.
type Next = Option<Duration>;

impl CronJobController {
    pub fn new(client: Client, jobs: Store<Job>, events: EventRecorder, now: Clock) -> CronJobController {
        CronJobController {
            client,
            jobs,
            events,
            now,
            written: Mutex::new(HashMap::new()),
            local: Zone::local(),
        }
    }

    fn note(&self, cj: &CronJob, n: Note) {
        let kind = if n.warning { "Warning" } else { "Normal" };
        self.events.record(object_ref(cj), kind, n.reason, n.message);
    }

    fn stale(&self, key: &str, cj: &CronJob) -> bool {
        let written = self.written.lock().expect("cronjob memory lock").get(key).copied();
        matches!((written, revision(cj)), (Some(w), Some(r)) if r < w)
    }

    /// Deletes a Job of the CronJob (background propagation) and takes it off the active list;
    /// whether it was deleted.
    async fn delete_job(&self, cj: &CronJob, status: &mut CronJobStatus, job: &Job) -> bool {
        let m = job.meta();
        let params = DeleteParams { propagation_policy: "Background".into(), ..Default::default() };
        match self.client.api::<Job>(&m.namespace).delete(&m.name, &params).await {
            Ok(_) | Err(navarch_client::Error::NotFound(_)) => {
                remove_active(status, &m.uid);
                self.note(cj, Note::normal("SuccessfulDelete", format!("Deleted job {}", m.name)));
                true
            }
            Err(e) => {
                tracing::warn!(cronjob = %cj.key(), job = %m.name, error = %e, "deleting a job");
                self.note(cj, Note::warning("FailedDelete", format!("Deleted job: {e}")));
                false
            }
        }
    }

    /// `status.active` against the CronJob's Jobs: finished ones leave it, running ones it lacks are
    /// reported (after re-reading the CronJob), vanished ones (confirmed with a GET) leave it.
    async fn sync_active(
        &self,
        cj: &mut CronJob,
        status: &mut CronJobStatus,
        jobs: &[Arc<Job>],
    ) -> Result<bool, CronJobError> {
        let check = check_active(status, jobs);
        let mut changed = check.changed;
        for n in check.notes {
            self.note(cj, n);
        }
        let api = self.client.api::<CronJob>(&cj.meta().namespace);
        for name in &check.unlisted {
            let Some(job) = jobs.iter().find(|j| &j.meta().name == name) else { continue };
            // Our cached status may predate the Job: ask for the CronJob as it is now.
            let fresh = api.get(&cj.meta().name).await?;
            let fresh_status = fresh.status.clone().unwrap_or_default();
            if is_active(&fresh_status, &job.meta().uid) {
                *status = fresh_status;
                *cj = fresh;
                continue;
            }
            let message = format!("Saw a job that the controller did not create or forgot: {name}");
            self.note(cj, Note::warning("UnexpectedJob", message));
        }
        for r in check.unseen {
            if !is_active(status, &r.uid) {
                continue;
            }
            match self.client.api::<Job>(&r.namespace).get(&r.name).await {
                Err(navarch_client::Error::NotFound(_)) => {
                    self.note(cj, Note::normal("MissingJob", format!("Active job went missing: {}", r.name)));
                    remove_active(status, &r.uid);
                    changed = true;
                }
                Err(e) => return Err(e.into()),
                // Only the cache has not seen it yet.
                Ok(_) => {}
            }
        }
        Ok(changed)
    }

    /// The scheduling half of `syncCronJob`: starts the run that is due, if any. Returns when to look
    /// again (None: only on a change) and whether the status changed.
    async fn schedule(
        &self,
        cj: &CronJob,
        status: &mut CronJobStatus,
        now: Duration,
    ) -> Result<(Next, bool), CronJobError> {
        let spec = cj.spec.clone().unwrap_or_default();
        let m = cj.meta();
        // The zone of the annotation: `timeZone`, else UTC (Go's `LoadLocation("")`).
        let annotation_zone = match spec.time_zone.as_deref() {
            Some(tz) => match Zone::load(tz) {
                Ok(z) => z,
                Err(e) => {
                    self.note(cj, Note::warning("UnknownTimeZone", format!("invalid timeZone: {tz:?}: {e}")));
                    return Ok((None, false));
                }
            },
            None => Zone::utc(),
        };
        if spec.suspend == Some(true) {
            tracing::debug!(cronjob = %cj.key(), "suspended: not starting a job");
            return Ok((None, false));
        }
        if spec.schedule.contains("TZ") {
            let message = format!(
                "CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
                spec.schedule
            );
            self.note(cj, Note::warning("UnsupportedSchedule", message));
        }
        let schedule = match Schedule::parse(&spec.schedule) {
            Ok(s) => s,
            Err(e) => {
                let message = format!("unparseable schedule: {:?} : {e}", spec.schedule);
                self.note(cj, Note::warning("UnparseableSchedule", message));
                return Ok((None, false));
            }
        };
        let zone = match schedule.zone() {
            Some(name) => Zone::load(name).unwrap_or_else(|_| Zone::utc()),
            None if spec.time_zone.is_some() => annotation_zone.clone(),
            None => self.local.clone(),
        };
        let times = |status: &CronJobStatus| Times {
            created: seconds(&m.creation_timestamp).unwrap_or(0),
            last_schedule: seconds(&status.last_schedule_time),
            starting_deadline_seconds: spec.starting_deadline_seconds,
        };
        let secs = now.as_secs() as i64;
        let requeue = |status: &CronJobStatus| Some(requeue_after(&times(status), now, &schedule, &zone));
        let scheduled = match due(&times(status), secs, &schedule, &zone) {
            Err(e) => {
                let message = format!("invalid schedule: {} : {e}", spec.schedule);
                self.note(cj, Note::warning("InvalidSchedule", message));
                return Ok((None, false));
            }
            Ok((None, _)) => return Ok((requeue(status), false)),
            Ok((Some(t), too_many)) => {
                if too_many {
                    let message = "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew";
                    self.note(cj, Note::warning("TooManyMissedTimes", message.into()));
                }
                t
            }
        };
        if spec.starting_deadline_seconds.is_some_and(|d| scheduled + d < secs) {
            let message = format!("Missed scheduled time to start a job: {}", rfc1123z(scheduled));
            self.note(cj, Note::warning("MissSchedule", message));
            return Ok((requeue(status), false));
        }
        let name = job_name(&m.name, scheduled);
        if status.active.iter().any(|r| r.name == name && r.namespace == m.namespace)
            || seconds(&status.last_schedule_time) == Some(scheduled)
        {
            return Ok((requeue(status), false));
        }
        if spec.concurrency_policy == "Forbid" && !status.active.is_empty() {
            let message =
                "Not starting job because prior execution is running and concurrency policy is Forbid";
            self.note(cj, Note::normal("JobAlreadyActive", message.into()));
            return Ok((requeue(status), false));
        }
        let mut changed = false;
        if spec.concurrency_policy == "Replace" {
            for r in status.active.clone() {
                let job = match self.client.api::<Job>(&r.namespace).get(&r.name).await {
                    Ok(j) => j,
                    Err(e) => {
                        self.note(cj, Note::warning("FailedGet", format!("Get job: {e}")));
                        return Err(e.into());
                    }
                };
                if !self.delete_job(cj, status, &job).await {
                    return Err(CronJobError::Replace(format!("{}/{}", r.namespace, r.name)));
                }
                changed = true;
            }
        }
        let api = self.client.api::<Job>(&m.namespace);
        let created = match api.create(&job_for(cj, scheduled, &annotation_zone)).await {
            Ok(job) => {
                self.note(cj, Note::normal("SuccessfulCreate", format!("Created job {}", job.meta().name)));
                tracing::info!(cronjob = %cj.key(), job = %job.meta().name, "created a job");
                job
            }
            Err(navarch_client::Error::AlreadyExists(_)) => {
                // Made by an earlier sync (or by someone else): take it on only if it is this CronJob's.
                let job = api.get(&name).await?;
                let ours = controller_of(job.meta()).is_some_and(|r| r.uid == m.uid);
                if !ours || is_active(status, &job.meta().uid) {
                    return Ok((None, changed));
                }
                tracing::info!(cronjob = %cj.key(), job = %name, "job already exists");
                job
            }
            Err(e) if e.to_string().contains("because it is being terminated") => return Err(e.into()),
            Err(e) => {
                self.note(cj, Note::warning("FailedCreate", format!("Error creating job: {e}")));
                return Err(e.into());
            }
        };
        status.active.push(job_ref(&created));
        status.last_schedule_time = stamp(scheduled);
        Ok((requeue(status), true))
    }

    async fn write_status(&self, key: &str, cj: &CronJob, status: CronJobStatus) -> Result<(), CronJobError> {
        let api = self.client.api::<CronJob>(&cj.meta().namespace);
        let written = api.update_status(&CronJob { status: Some(status), ..cj.clone() }).await?;
        if let Some(rev) = revision(&written) {
            let mut all = self.written.lock().expect("cronjob memory lock");
            all.insert(key.to_string(), rev);
        }
        tracing::debug!(cronjob = %key, status = ?written.status, "status written");
        Ok(())
    }
}

impl Reconciler<CronJob> for CronJobController {
    type Error = CronJobError;

    async fn reconcile(&self, cj: Arc<CronJob>) -> Result<Action, CronJobError> {
        let span = tracing::info_span!("cronjob", cronjob = %cj.key());
        self.sync(cj).instrument(span).await
    }
}

impl CronJobController {
    async fn sync(&self, cj: Arc<CronJob>) -> Result<Action, CronJobError> {
        let key = cj.key();
        if !self.jobs.is_ready() {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        if self.stale(&key, &cj) {
            // The watch brings the status this controller wrote; decide from that.
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        let now = (self.now)().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let m = cj.meta();
        let all = self.jobs.state();
        let mut jobs = children(&all, &m.namespace, &m.name);
        let mut cj = (*cj).clone();
        let mut status = cj.status.clone().unwrap_or_default();
        let mut changed = false;
        for job in beyond_history(&cj, &jobs) {
            if self.delete_job(&cj, &mut status, &job).await {
                jobs.retain(|j| j.meta().uid != job.meta().uid);
                changed = true;
            }
        }
        let result = async {
            changed |= self.sync_active(&mut cj, &mut status, &jobs).await?;
            if !cj.meta().deletion_timestamp.is_empty() {
                return Ok(None);
            }
            let (next, scheduled) = self.schedule(&cj, &mut status, now).await?;
            changed |= scheduled;
            Ok::<_, CronJobError>(next)
        }
        .await;
        // Like Kubernetes, what changed is written even when the sync failed half way.
        if changed && cj.status.as_ref() != Some(&status) {
            self.write_status(&key, &cj, status).await?;
        }
        match result? {
            Some(after) => Ok(Action::requeue(after)),
            None => Ok(Action::await_change()),
        }
    }
}
