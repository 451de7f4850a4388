//! The CronJob controller (Kubernetes' cronjob controller v2): creates a Job from a CronJob's
//! `jobTemplate` at each time of its `schedule` (standard cron syntax, read in `spec.timeZone` or the
//! controller-manager's zone; see `navarch_api::cron`).
//!
//! * Jobs are named `<cronjob>-<scheduled time in minutes since the epoch>`, annotated with
//!   `batch.kubernetes.io/cronjob-scheduled-timestamp`, carry the template's labels and annotations,
//!   and are owned by the CronJob (controller ownerReference).
//! * Missed runs: only the most recent one starts, and only within `startingDeadlineSeconds`
//!   (`MissSchedule` otherwise); more than 100 missed gives `TooManyMissedTimes`.
//! * `concurrencyPolicy`: Allow runs Jobs side by side, Forbid skips a run while one is active
//!   (`JobAlreadyActive`), Replace deletes the active Jobs first. `suspend` stops new runs.
//! * Status: `active` (references to running Jobs), `lastScheduleTime`, `lastSuccessfulTime`.
//!   Finished Jobs beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit` are deleted.
//!
//! [`schedule`] holds the time arithmetic, [`jobs`] what is read from and made into Jobs (both pure,
//! unit-tested), [`controller`] the reconcile that applies them through the API.

pub mod controller;
pub mod jobs;
pub mod schedule;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::run::Wiring;

pub use controller::CronJobController;

/// The annotation holding a Job's scheduled time (RFC 3339, in the CronJob's time zone).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// The annotation kubectl puts on a Job made by hand from a CronJob (`create job --from=cronjob/x`).
pub const INSTANTIATE: &str = "cronjob.kubernetes.io/instantiate";

#[derive(Debug, thiserror::Error)]
pub enum CronJobError {
    #[error("{0}")]
    Api(#[from] navarch_client::Error),
    #[error("could not replace job {0}")]
    Replace(String),
}

/// Runs the CronJob controller on the shared CronJob and Job reflectors (a CronJob is synced when a
/// Job it controls changes).
pub fn spawn(w: &mut Wiring) {
    let events = w.recorder("cronjob-controller");
    let controller = navarch_client::Controller::for_shared(&w.informers.cronjobs)
        .concurrency(w.workers)
        .owns_shared(&w.informers.jobs);
    let ctx = Arc::new(CronJobController::new(
        w.client.clone(),
        w.informers.jobs.store(),
        events,
        Arc::new(SystemTime::now),
    ));
    w.controller(controller, ctx, Duration::from_secs(5));
}
