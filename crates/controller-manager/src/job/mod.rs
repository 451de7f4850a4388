//! The Job controller (Kubernetes' job controller, with its ttl-after-finished controller): runs a Job's
//! pods until enough have succeeded, or the Job fails.
//!
//! * Pods come from `spec.template`, named `<job>-` (`<job>-<index>-` when Indexed), owned by the Job,
//!   with the tracking finalizer `batch.kubernetes.io/job-tracking`; `min(parallelism, remaining
//!   completions)` of them are kept active, none while the Job is suspended.
//! * Each ended pod is counted exactly once, across restarts, by Kubernetes' protocol: its UID is first
//!   written to `status.uncountedTerminatedPods`, then its finalizer removed, then the UID moved into
//!   `status.succeeded`/`failed` (for Indexed Jobs succeeded indexes go to `completedIndexes`). A pod
//!   without the finalizer has been counted.
//! * Failures beyond `backoffLimit`, a `FailJob` rule of the pod failure policy, or
//!   `activeDeadlineSeconds` passed make the Job fail: `FailureTarget`, its pods deleted, then `Failed`.
//!   Enough successes, or a rule of an Indexed Job's `successPolicy` met (the other pods are then
//!   stopped), give `SuccessCriteriaMet`, then `Complete`. Failed pods are replaced after an
//!   exponential back-off (10 s doubling, at most 6 minutes).
//! * A finished Job with `ttlSecondsAfterFinished` is deleted (background propagation) once that has
//!   passed; a Job being deleted, or gone, only has the finalizers of its pods removed.
//!
//! * With `backoffLimitPerIndex` ([`per_index`]), each index of an Indexed Job has its own failure
//!   count and back-off; failed indexes are not run again, and fail the Job once the others ended or
//!   more than `maxFailedIndexes` failed.
//!
//! [`plan`] holds the decisions (pure, unit-tested), [`pods`] what is read from and written into pods,
//! [`indexes`] completion index sets, [`controller`] the reconcile loop that applies the decisions.

pub mod controller;
pub mod indexes;
pub mod per_index;
pub mod plan;
pub mod pods;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use navarch_api::v1::{Job, JobSpec, Pod};
use navarch_client::{Controller, ObjectRef, Store};

use crate::pod_control::owners_of;
use crate::run::Wiring;

pub use controller::{JobController, OrphanPods};

/// The finalizer on every pod a Job creates: the pod stays until the controller has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The annotation and label holding an Indexed Job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The environment variable holding it in the pod's containers.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// `spec.managedBy` of the Jobs this controller runs (unset means the same).
pub const MANAGED_BY: &str = "kubernetes.io/job-controller";

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Api(#[from] navarch_client::Error),
    #[error("removing tracking finalizers: {0}")]
    Finalizers(#[source] navarch_client::Error),
    #[error("managing pods: {0}")]
    Pods(#[source] navarch_client::Error),
}

/// The Job's spec (an empty one if unset).
pub fn spec_of(job: &Job) -> &JobSpec {
    static EMPTY: std::sync::OnceLock<JobSpec> = std::sync::OnceLock::new();
    job.spec.as_ref().unwrap_or_else(|| EMPTY.get_or_init(JobSpec::default))
}

pub fn is_indexed(job: &Job) -> bool {
    spec_of(job).completion_mode.as_deref() == Some("Indexed")
}

pub fn is_suspended(job: &Job) -> bool {
    spec_of(job).suspend == Some(true)
}

/// The Jobs to sync when `pod` changes: its controller if that is a Job, else (an orphan) every Job of
/// its namespace that selects it.
pub fn jobs_for(jobs: &Store<Job>, pod: &Pod) -> Vec<ObjectRef> {
    owners_of(jobs, pod, |j| spec_of(j).selector.clone())
}

/// Runs the Job controller on the shared Job and pod reflectors (Jobs synced when a pod they own or
/// select changes), and the orphan-pod pass that frees the pods of Jobs that are gone.
pub fn spawn(w: &mut Wiring) {
    let events = w.recorder("job-controller");
    let jobs = w.informers.jobs.store();
    let by_pod = jobs.clone();
    let controller = Controller::for_shared(&w.informers.jobs)
        .concurrency(w.workers)
        .watches_shared(&w.informers.pods, move |p: &Pod| jobs_for(&by_pod, p));
    let ctx = Arc::new(JobController::new(w.client.clone(), w.informers.pods.store(), jobs.clone(), events));
    w.controller(controller, ctx, Duration::from_secs(1));
    let orphans = Controller::for_shared(&w.informers.pods).concurrency(w.workers);
    let ctx = Arc::new(OrphanPods { client: w.client.clone(), jobs });
    w.controller(orphans, ctx, Duration::from_secs(1));
}
