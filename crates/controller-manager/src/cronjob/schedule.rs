//! When a CronJob should run (Kubernetes' `mostRecentScheduleTime`, `nextScheduleTime` and
//! `nextScheduleTimeDuration`), pure functions of the CronJob's times and `now` (Unix seconds):
//!
//! * the earliest time to look from is `status.lastScheduleTime`, else the creation time, moved up to
//!   `now - startingDeadlineSeconds` when that is later (nothing older may start anyway);
//! * the run due is the most recent activation at or before `now` after that; when more than 100
//!   activations were missed (counted with the interval between the first two, as Kubernetes does,
//!   not by listing them) the most recent one still runs, with the `TooManyMissedTimes` warning;
//! * the controller requeues a CronJob 100 ms after its next activation.

use std::time::Duration;

use navarch_api::cron::{Schedule, Zone};

/// More missed activations than this get the `TooManyMissedTimes` warning.
pub const MAX_MISSED: i64 = 100;
/// Added to each requeue, for clock skew (Kubernetes' `nextScheduleDelta`).
pub const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);

/// How many activations were missed since the earliest time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    None,
    Few,
    Many,
}

/// The times a CronJob is scheduled from (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub created: i64,
    pub last_schedule: Option<i64>,
    pub starting_deadline_seconds: Option<i64>,
}

/// A schedule whose next two activations are not a second apart (or never come), such as
/// `59 23 31 2 *`; the message is Kubernetes'.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time difference between two schedules is less than 1 second")]
pub struct NeverDue;

/// What [`most_recent`] finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recent {
    /// Where the search started.
    pub earliest: i64,
    /// The most recent activation at or before now, if any.
    pub most_recent: Option<i64>,
    pub missed: Missed,
}

/// The most recent activation due at `now` since the CronJob's earliest time (the deadline moves that
/// up only when `with_deadline`).
pub fn most_recent(
    times: &Times,
    now: i64,
    schedule: &Schedule,
    zone: &Zone,
    with_deadline: bool,
) -> Result<Recent, NeverDue> {
    let mut earliest = times.last_schedule.unwrap_or(times.created);
    if let Some(deadline) = times.starting_deadline_seconds.filter(|_| with_deadline) {
        earliest = earliest.max(now - deadline);
    }
    let none = Recent { earliest, most_recent: None, missed: Missed::None };
    let t1 = schedule.next(zone, earliest);
    if t1.is_some_and(|t1| now < t1) {
        return Ok(none);
    }
    let t2 = t1.and_then(|t1| schedule.next(zone, t1));
    let (Some(t1), Some(t2)) = (t1, t2) else { return Err(NeverDue) };
    if now < t2 {
        return Ok(Recent { most_recent: Some(t1), ..none });
    }
    let interval = t2 - t1;
    if interval < 1 {
        return Err(NeverDue);
    }
    // A rough count, by the first interval; then the exact most recent activation is found by
    // stepping from two intervals before the estimate (irregular schedules such as `30 6-16/4 * * 1-5`
    // land right, @every ones keep their phase).
    let missed = (now - t1) / interval + 1;
    let mut most_recent = None;
    let mut t = schedule.next(zone, t1 + (missed - 2) * interval);
    while let Some(at) = t.filter(|at| *at <= now) {
        most_recent = Some(at);
        t = schedule.next(zone, at);
    }
    let missed = if missed > MAX_MISSED { Missed::Many } else { Missed::Few };
    Ok(Recent { most_recent, missed, ..none })
}

/// The activation to run now, if one is due (Kubernetes' `nextScheduleTime`), and whether too many
/// were missed.
pub fn due(
    times: &Times,
    now: i64,
    schedule: &Schedule,
    zone: &Zone,
) -> Result<(Option<i64>, bool), NeverDue> {
    let r = most_recent(times, now, schedule, zone, true)?;
    match r.most_recent {
        Some(t) if t <= now => Ok((Some(t), r.missed == Missed::Many)),
        _ => Ok((None, false)),
    }
}

/// How long until the CronJob should be looked at again: 100 ms past its next activation
/// (Kubernetes' `nextScheduleTimeDuration`). `now` carries the sub-second part the seconds lack.
pub fn requeue_after(times: &Times, now: Duration, schedule: &Schedule, zone: &Zone) -> Duration {
    let secs = now.as_secs() as i64;
    let from = match most_recent(times, secs, schedule, zone, false) {
        Err(_) => secs,
        Ok(Recent { most_recent: Some(t), .. }) => t,
        Ok(Recent { earliest, missed: Missed::None, .. }) => earliest,
        Ok(_) => secs,
    };
    match schedule.next(zone, from) {
        Some(next) => {
            let at = Duration::from_secs(next.max(0) as u64) + NEXT_SCHEDULE_DELTA;
            at.saturating_sub(now)
        }
        // Nothing within five years: look again in a day (the spec may change meanwhile).
        None => Duration::from_secs(24 * 3600),
    }
}
