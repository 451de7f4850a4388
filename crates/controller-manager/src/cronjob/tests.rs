use std::sync::Arc;
use std::time::Duration;

use navarch_api::Resource;
use navarch_api::cron::civil::days_from_civil;
use navarch_api::cron::{Schedule, Zone};
use navarch_api::v1::{CronJob, CronJobStatus, Job, ObjectReference};

use super::jobs::*;
use super::schedule::*;

/// Unix seconds of a UTC wall time.
fn utc(y: i64, mo: u32, d: i64, h: i64, mi: i64, s: i64) -> i64 {
    days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s
}

fn every_minute() -> Schedule {
    Schedule::parse("*/1 * * * *").unwrap()
}

fn times(created: i64, last: Option<i64>, deadline: Option<i64>) -> Times {
    Times { created, last_schedule: last, starting_deadline_seconds: deadline }
}

#[test]
fn the_most_recent_run_due() {
    let (s, z) = (every_minute(), Zone::utc());
    let created = utc(2026, 1, 1, 10, 0, 0);
    let t = times(created, None, None);
    let at = |now| most_recent(&t, now, &s, &z, true).unwrap();
    assert_eq!(at(created + 30).most_recent, None, "nothing due before the first minute");
    assert_eq!(at(created + 70).most_recent, Some(created + 60));
    assert_eq!(at(created + 70).missed, Missed::None);
    // Five minutes later: only the most recent of the five missed runs.
    let r = at(created + 310);
    assert_eq!((r.most_recent, r.missed), (Some(created + 300), Missed::Few));
    // Already run at 10:05: nothing until 10:06.
    let t = times(created, Some(created + 300), None);
    assert_eq!(due(&t, created + 330, &s, &z), Ok((None, false)));
    assert_eq!(due(&t, created + 360, &s, &z), Ok((Some(created + 360), false)));
}

#[test]
fn more_than_a_hundred_missed_still_runs_the_latest_with_a_warning() {
    // Kubernetes' documented case: a controller down from 08:29 to 10:21.
    let (s, z) = (every_minute(), Zone::utc());
    let last = utc(2026, 1, 1, 8, 29, 0);
    let now = utc(2026, 1, 1, 10, 22, 0);
    let t = times(last - 3600, Some(last), None);
    let r = most_recent(&t, now, &s, &z, true).unwrap();
    assert_eq!((r.most_recent, r.missed), (Some(now), Missed::Many));
    assert_eq!(due(&t, now, &s, &z), Ok((Some(now), true)));
    // startingDeadlineSeconds 200 counts only the last 200 s: 4 missed, no warning.
    let t = times(last - 3600, Some(last), Some(200));
    let r = most_recent(&t, now, &s, &z, true).unwrap();
    assert_eq!((r.most_recent, r.missed), (Some(now), Missed::Few));
    assert_eq!(due(&t, now, &s, &z), Ok((Some(now), false)));
}

#[test]
fn runs_older_than_the_starting_deadline_are_skipped() {
    let (s, z) = (Schedule::parse("0 * * * *").unwrap(), Zone::utc());
    let created = utc(2026, 1, 1, 9, 30, 0);
    // Due at 10:00, looked at 10:00:20: within 30 s it starts, within 10 s it does not.
    let now = utc(2026, 1, 1, 10, 0, 20);
    assert_eq!(due(&times(created, None, Some(30)), now, &s, &z), Ok((Some(now - 20), false)));
    assert_eq!(due(&times(created, None, Some(10)), now, &s, &z), Ok((None, false)));
    // Without a deadline, late is fine.
    assert_eq!(due(&times(created, None, None), now + 3000, &s, &z), Ok((Some(now - 20), false)));
}

#[test]
fn schedules_that_never_come_are_invalid() {
    let z = Zone::utc();
    let created = utc(2026, 1, 1, 0, 0, 0);
    for spec in ["59 23 31 2 *", "0 0 30 2 *"] {
        let s = Schedule::parse(spec).unwrap();
        assert_eq!(due(&times(created, None, None), created + 86_400, &s, &z), Err(NeverDue), "{spec}");
        assert_eq!(NeverDue.to_string(), "time difference between two schedules is less than 1 second");
    }
}

#[test]
fn every_and_irregular_schedules_keep_their_phase() {
    let z = Zone::utc();
    let created = utc(2026, 1, 1, 10, 0, 0);
    let s = Schedule::parse("@every 90s").unwrap();
    let r = most_recent(&times(created, None, None), created + 600, &s, &z, true).unwrap();
    assert_eq!(r.most_recent, Some(created + 540));
    // Weekdays 06:30, 10:30, 14:30: looked at on Monday 2026-01-05 at 12:00 after a weekend away.
    let s = Schedule::parse("30 6-16/4 * * 1-5").unwrap();
    let friday = utc(2026, 1, 2, 14, 30, 0);
    let now = utc(2026, 1, 5, 12, 0, 0);
    let r = most_recent(&times(created, Some(friday), None), now, &s, &z, true).unwrap();
    assert_eq!(r.most_recent, Some(utc(2026, 1, 5, 10, 30, 0)));
}

#[test]
fn time_zones_move_the_runs() {
    let paris = Zone::load("Europe/Paris").unwrap();
    let s = Schedule::parse("0 9 * * *").unwrap();
    let created = utc(2026, 1, 1, 0, 0, 0);
    let now = utc(2026, 1, 1, 8, 0, 30);
    assert_eq!(due(&times(created, None, None), now, &s, &paris), Ok((Some(now - 30), false)));
    assert_eq!(due(&times(created, None, None), now, &s, &Zone::utc()), Ok((None, false)));
    // Summer: 07:00Z.
    let created = utc(2026, 7, 1, 0, 0, 0);
    assert_eq!(
        due(&times(created, None, None), utc(2026, 7, 1, 7, 0, 5), &s, &paris),
        Ok((Some(utc(2026, 7, 1, 7, 0, 0)), false))
    );
}

#[test]
fn requeues_just_after_the_next_run() {
    let (s, z) = (every_minute(), Zone::utc());
    let created = utc(2026, 1, 1, 10, 0, 0);
    let now = Duration::from_secs((created + 330) as u64) + Duration::from_millis(250);
    let t = times(created, Some(created + 300), None);
    assert_eq!(requeue_after(&t, now, &s, &z), Duration::from_millis(29_850));
    // Never scheduled yet, created 10:00: next at 10:01.
    let t = times(created, None, None);
    let now = Duration::from_secs((created + 10) as u64);
    assert_eq!(requeue_after(&t, now, &s, &z), Duration::from_millis(50_100));
    // Runs missed (e.g. Forbid skipped them): from the most recent one, to the next.
    let now = Duration::from_secs((created + 130) as u64);
    assert_eq!(requeue_after(&t, now, &s, &z), Duration::from_millis(50_100));
}

fn cronjob(extra_spec: &str) -> CronJob {
    serde_yaml::from_str(&format!(
        "metadata: {{name: hello, namespace: ns, uid: cj-uid, creationTimestamp: '2026-01-01T10:00:00Z'}}
spec:
  schedule: '*/1 * * * *'
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 1
  jobTemplate:
    metadata: {{labels: {{app: hello}}, annotations: {{note: hi}}}}
    spec: {{template: {{spec: {{restartPolicy: OnFailure, containers: [{{name: c, image: busybox}}]}}}}}}
  {extra_spec}"
    ))
    .unwrap()
}

/// A Job of the CronJob `owner` with a finished condition ("" for running), started at `started`.
fn job(name: &str, owner: &str, condition: &str, started: &str, completed: &str) -> Arc<Job> {
    let conditions =
        if condition.is_empty() { String::new() } else { format!("[{{type: {condition}, status: 'True'}}]") };
    let status = format!(
        "{{startTime: '{started}', completionTime: '{completed}', conditions: {}}}",
        if conditions.is_empty() { "[]" } else { &conditions }
    );
    Arc::new(
        serde_yaml::from_str(&format!(
            "metadata: {{name: {name}, namespace: ns, uid: {name}-uid,
  ownerReferences: [{{apiVersion: batch/v1, kind: CronJob, name: {owner}, uid: x, controller: true}}]}}
status: {status}"
        ))
        .unwrap(),
    )
}

fn names(jobs: &[Arc<Job>]) -> Vec<String> {
    jobs.iter().map(|j| j.meta().name.clone()).collect()
}

#[test]
fn the_job_of_a_run() {
    let cj = cronjob("");
    let at = utc(2026, 1, 1, 10, 0, 0);
    assert_eq!(job_name("hello", at), "hello-29454360");
    let j = job_for(&cj, at, &Zone::utc());
    let m = j.meta();
    assert_eq!((m.name.as_str(), m.namespace.as_str()), ("hello-29454360", "ns"));
    assert_eq!(m.labels["app"], "hello");
    assert_eq!(m.annotations["note"], "hi");
    assert_eq!(m.annotations[super::SCHEDULED_TIMESTAMP], "2026-01-01T10:00:00Z");
    let owner = &m.owner_references[0];
    assert_eq!(
        (owner.kind.as_str(), owner.api_version.as_str(), owner.uid.as_str()),
        ("CronJob", "batch/v1", "cj-uid")
    );
    assert_eq!((owner.controller, owner.block_owner_deletion), (Some(true), Some(true)));
    let pod = j.spec.unwrap().template.unwrap().spec.unwrap();
    assert_eq!(pod.restart_policy, "OnFailure");
    let paris = Zone::load("Europe/Paris").unwrap();
    let j = job_for(&cj, at, &paris);
    assert_eq!(j.meta().annotations[super::SCHEDULED_TIMESTAMP], "2026-01-01T11:00:00+01:00");
    assert_eq!(rfc1123z(at), "Thu, 01 Jan 2026 10:00:00 +0000");
}

#[test]
fn children_are_the_jobs_it_controls() {
    let all = vec![
        job("a", "hello", "", "", ""),
        job("b", "other", "", "", ""),
        job("c", "hello", "Complete", "", ""),
    ];
    assert_eq!(names(&children(&all, "ns", "hello")), ["a", "c"]);
    assert!(children(&all, "elsewhere", "hello").is_empty());
}

#[test]
fn the_active_list_follows_the_jobs() {
    let reference = |name: &str| ObjectReference {
        name: name.into(),
        uid: format!("{name}-uid"),
        namespace: "ns".into(),
        ..Default::default()
    };
    let mut status = CronJobStatus {
        active: vec![reference("done"), reference("running"), reference("gone")],
        last_successful_time: "2026-01-01T09:00:00Z".into(),
        ..Default::default()
    };
    let jobs = vec![
        job("done", "hello", "Complete", "2026-01-01T10:00:00Z", "2026-01-01T10:00:30Z"),
        job("running", "hello", "", "2026-01-01T10:01:00Z", ""),
        job("manual", "hello", "", "2026-01-01T10:01:10Z", ""),
        job("old", "hello", "Complete", "2026-01-01T08:00:00Z", "2026-01-01T08:00:30Z"),
    ];
    let check = check_active(&mut status, &jobs);
    assert!(check.changed);
    assert_eq!(
        check.notes,
        [Note::normal("SawCompletedJob", "Saw completed job: done, condition: Complete".into())]
    );
    assert_eq!(check.unlisted, ["manual"]);
    assert_eq!(check.unseen.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["gone"]);
    assert_eq!(status.active.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["running", "gone"]);
    assert_eq!(
        status.last_successful_time, "2026-01-01T10:00:30Z",
        "the latest completion, never an older one"
    );
    // Nothing new: nothing changes.
    let again = check_active(&mut status, &jobs[1..]);
    assert!(!again.changed && again.notes.is_empty());
}

#[test]
fn history_limits_remove_the_oldest_finished_jobs() {
    let cj = cronjob("");
    let jobs = vec![
        job("s1", "hello", "Complete", "2026-01-01T10:01:00Z", "x"),
        job("s0", "hello", "Complete", "2026-01-01T10:00:00Z", "x"),
        job("s3", "hello", "Complete", "2026-01-01T10:03:00Z", "x"),
        job("s2", "hello", "Complete", "2026-01-01T10:02:00Z", "x"),
        job("s-unstarted", "hello", "Complete", "", "x"),
        job("f1", "hello", "Failed", "2026-01-01T10:05:00Z", ""),
        job("f0", "hello", "Failed", "2026-01-01T10:04:00Z", ""),
        job("running", "hello", "", "2026-01-01T09:00:00Z", ""),
    ];
    // Three successful kept (the newest started; unstarted ones count as newest), one failed.
    assert_eq!(names(&beyond_history(&cj, &jobs)), ["s0", "s1", "f0"]);
    let none = cronjob("").spec.map(|mut s| {
        s.successful_jobs_history_limit = None;
        s.failed_jobs_history_limit = Some(0);
        s
    });
    let cj = CronJob { spec: none, ..cj };
    assert_eq!(names(&beyond_history(&cj, &jobs)), ["f0", "f1"]);
    assert_eq!(finished(&jobs[0]), Some("Complete"));
    assert_eq!(finished(&jobs[7]), None);
}
