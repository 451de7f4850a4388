//! What the CronJob controller reads from and writes into Jobs, as pure functions: which Jobs are a
//! CronJob's, whether they finished, the Job made for a scheduled time (its deterministic name, the
//! scheduled-timestamp annotation, the controller ownerReference), the `status.active` bookkeeping
//! with the events it gives, and which finished Jobs the history limits remove.

use std::collections::HashSet;
use std::sync::Arc;

use navarch_api::Resource;
use navarch_api::cron::Zone;
use navarch_api::v1::{CronJob, CronJobStatus, Job, ObjectMeta, ObjectReference};

use super::SCHEDULED_TIMESTAMP;
use crate::pod_control::{controller_of, controller_ref};

/// A Job's finished condition (`Complete` or `Failed`, status True), if it has one.
pub fn finished(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    conditions.iter().filter(|c| c.status == "True").find_map(|c| match c.r#type.as_str() {
        "Complete" => Some("Complete"),
        "Failed" => Some("Failed"),
        _ => None,
    })
}

/// The Jobs whose controller is the CronJob named `name` (by name, as Kubernetes matches them: a
/// Job may no longer carry the template's labels).
pub fn children(jobs: &[Arc<Job>], namespace: &str, name: &str) -> Vec<Arc<Job>> {
    jobs.iter()
        .filter(|j| j.meta().namespace == namespace)
        .filter(|j| controller_of(j.meta()).is_some_and(|r| r.kind == CronJob::KIND && r.name == name))
        .cloned()
        .collect()
}

/// `<cronjob>-<scheduled time in minutes since the epoch>`: the same name for the same run, so a
/// restarted controller can never create it twice.
pub fn job_name(cronjob: &str, scheduled: i64) -> String {
    format!("{cronjob}-{}", scheduled.div_euclid(60))
}

/// The Job for the run scheduled at `scheduled`: the template's labels, annotations and spec, the
/// scheduled time (in `zone`, the CronJob's `timeZone` or UTC) as an annotation, owned by the
/// CronJob.
pub fn job_for(cj: &CronJob, scheduled: i64, zone: &Zone) -> Job {
    let m = cj.meta();
    let template = cj.spec.as_ref().and_then(|s| s.job_template.clone()).unwrap_or_default();
    let tm = template.metadata.unwrap_or_default();
    let mut annotations = tm.annotations;
    annotations.insert(SCHEDULED_TIMESTAMP.into(), zone.civil(scheduled).rfc3339());
    Job {
        metadata: Some(ObjectMeta {
            name: job_name(&m.name, scheduled),
            namespace: m.namespace.clone(),
            labels: tm.labels,
            annotations,
            owner_references: vec![controller_ref::<CronJob>(m)],
            ..Default::default()
        }),
        spec: template.spec,
        ..Default::default()
    }
}

/// The reference to `job` kept in `status.active`.
pub fn job_ref(job: &Job) -> ObjectReference {
    let m = job.meta();
    ObjectReference {
        kind: Job::KIND.into(),
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        api_version: Job::API_VERSION.into(),
        resource_version: m.resource_version.clone(),
        ..Default::default()
    }
}

pub fn is_active(status: &CronJobStatus, uid: &str) -> bool {
    status.active.iter().any(|r| r.uid == uid)
}

pub fn remove_active(status: &mut CronJobStatus, uid: &str) {
    status.active.retain(|r| r.uid != uid);
}

/// An event for the CronJob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Note {
    pub fn normal(reason: &'static str, message: String) -> Note {
        Note { warning: false, reason, message }
    }
    pub fn warning(reason: &'static str, message: String) -> Note {
        Note { warning: true, reason, message }
    }
}

/// What comparing `status.active` with the CronJob's Jobs found.
#[derive(Debug, Default)]
pub struct ActiveCheck {
    pub notes: Vec<Note>,
    /// Whether the status changed.
    pub changed: bool,
    /// Running Jobs the active list lacks (names): Kubernetes re-reads the CronJob before calling them
    /// unexpected, as its cached status may be older than the Job.
    pub unlisted: Vec<String>,
    /// Active references with no Job in the cache: a GET tells whether they are gone.
    pub unseen: Vec<ObjectReference>,
}

/// Kubernetes' first pass of `syncCronJob`: finished Jobs leave `status.active` (`SawCompletedJob`),
/// successful ones move `lastSuccessfulTime` forward; running Jobs not listed are reported.
pub fn check_active(status: &mut CronJobStatus, jobs: &[Arc<Job>]) -> ActiveCheck {
    let mut out = ActiveCheck::default();
    for job in jobs {
        let m = job.meta();
        let listed = is_active(status, &m.uid);
        let done = finished(job);
        match done {
            None if !listed => out.unlisted.push(m.name.clone()),
            Some(condition) if listed => {
                remove_active(status, &m.uid);
                let message = format!("Saw completed job: {}, condition: {condition}", m.name);
                out.notes.push(Note::normal("SawCompletedJob", message));
                out.changed = true;
            }
            _ => {}
        }
        if done == Some("Complete") {
            let completed = job.status.as_ref().map(|s| s.completion_time.as_str()).unwrap_or_default();
            if later(completed, &status.last_successful_time) {
                status.last_successful_time = completed.to_string();
                out.changed = true;
            }
        }
    }
    let uids: HashSet<&str> = jobs.iter().map(|j| j.meta().uid.as_str()).collect();
    out.unseen = status.active.iter().filter(|r| !uids.contains(r.uid.as_str())).cloned().collect();
    out
}

/// Whether RFC 3339 time `a` is set and after `b` (or `b` is unset).
fn later(a: &str, b: &str) -> bool {
    match (navarch_api::rfc3339::parse(a), navarch_api::rfc3339::parse(b)) {
        (Ok(a), Ok(b)) => a > b,
        (Ok(_), Err(_)) => b.is_empty(),
        _ => false,
    }
}

/// The finished Jobs beyond `successfulJobsHistoryLimit` and `failedJobsHistoryLimit`, the
/// earliest started first (unstarted ones last, names breaking ties).
pub fn beyond_history(cj: &CronJob, jobs: &[Arc<Job>]) -> Vec<Arc<Job>> {
    let spec = cj.spec.clone().unwrap_or_default();
    let mut out = Vec::new();
    for (condition, limit) in
        [("Complete", spec.successful_jobs_history_limit), ("Failed", spec.failed_jobs_history_limit)]
    {
        let Some(limit) = limit else { continue };
        let mut done: Vec<&Arc<Job>> = jobs.iter().filter(|j| finished(j) == Some(condition)).collect();
        let surplus = done.len().saturating_sub(limit.max(0) as usize);
        if surplus == 0 {
            continue;
        }
        done.sort_by_key(|j| {
            let started = j.status.as_ref().and_then(|s| navarch_api::rfc3339::parse(&s.start_time).ok());
            (started.is_none(), started, j.meta().name.clone())
        });
        out.extend(done.into_iter().take(surplus).cloned());
    }
    out
}

/// Go's `time.RFC1123Z` in UTC (`Mon, 02 Jan 2006 15:04:05 +0000`), as the `MissSchedule` event
/// shows the missed time.
pub fn rfc1123z(t: i64) -> String {
    Zone::utc().civil(t).rfc1123z()
}
