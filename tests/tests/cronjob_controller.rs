//! The CronJob controller in the controller-manager binary against a real api-server and etcd, in
//! real time (schedules of `*/1 * * * *`, so a test takes two to three minutes). The Jobs' template
//! sets `managedBy` to another controller, so the Job controller leaves them alone and the test
//! finishes them by writing their status, as that controller would.
//!
//! * every minute a Job `<cronjob>-<minutes since the epoch>`, owned by the CronJob, with the
//!   scheduled-timestamp annotation, listed in `status.active`; a controller-manager killed and
//!   restarted in between never creates the same run twice;
//! * a finished Job leaves `status.active` (`SawCompletedJob`) and sets `lastSuccessfulTime`;
//! * Forbid skips a run while a Job is active (`JobAlreadyActive`), Replace deletes it and starts the
//!   new one; a suspended CronJob creates nothing;
//! * finished Jobs beyond the history limits are deleted, the oldest first;
//! * `navctl create job --from=cronjob/x` and real kubectl's do what kubectl does; `get` and
//!   `describe` show kubectl's columns and fields.

use std::time::{Duration, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{CronJob, Event, Job};
use navarch_client::{Api, Client, ListParams};
use navarch_tests::{Daemon, Kubectl, TestEnv, eventually};

const SCHEDULED: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

fn start_controller_manager(env: &TestEnv) -> Daemon {
    Daemon::start(env, "controller-manager", "controller-manager", &[])
}

fn cronjob(name: &str, schedule: &str, spec: &str) -> CronJob {
    serde_yaml::from_str(&format!(
        "metadata: {{name: {name}}}
spec:
  schedule: '{schedule}'
  {spec}
  jobTemplate:
    metadata: {{labels: {{app: {name}}}, annotations: {{team: batch}}}}
    spec:
      managedBy: example.com/by-the-test
      template: {{spec: {{restartPolicy: Never, containers: [{{name: c, image: busybox:1.36}}]}}}}"
    ))
    .unwrap()
}

/// The Jobs controlled by CronJob `name`, by name.
async fn jobs_of(jobs: &Api<Job>, name: &str) -> Vec<Job> {
    let mut l: Vec<Job> = jobs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|j| j.meta().owner_references.iter().any(|r| r.controller == Some(true) && r.name == name))
        .collect();
    l.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
    l
}

/// Waits until CronJob `name` has exactly `n` Jobs.
async fn wait_jobs(jobs: &Api<Job>, name: &str, n: usize, within: Duration) -> Vec<Job> {
    eventually(format!("{n} jobs of {name}"), within, async || {
        let l = jobs_of(jobs, name).await;
        (l.len() == n).then_some(l)
    })
    .await
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Ends `job` as its controller would: `Complete` or `Failed`, started at `started`.
async fn finish(jobs: &Api<Job>, name: &str, condition: &str, started: &str) {
    let mut job = jobs.get(name).await.unwrap();
    let completion =
        if condition == "Complete" { format!("completionTime: '{}',", now()) } else { String::new() };
    job.status = Some(
        serde_yaml::from_str(&format!(
            "{{startTime: '{started}', {completion} conditions: [{{type: {condition}, status: 'True', lastTransitionTime: '{}'}}]}}",
            now()
        ))
        .unwrap(),
    );
    jobs.update_status(&job).await.unwrap();
}

async fn event_reasons(c: &Client, name: &str) -> Vec<String> {
    let events: Api<Event> = c.api("default");
    let l = events.list(&ListParams::default()).await.unwrap().items;
    l.into_iter()
        .filter(|e| e.involved_object.as_ref().is_some_and(|o| o.kind == "CronJob" && o.name == name))
        .map(|e| e.reason)
        .collect()
}

async fn wait_event(c: &Client, name: &str, reason: &str) {
    eventually(format!("event {reason} on {name}"), Duration::from_secs(30), async || {
        event_reasons(c, name).await.iter().any(|r| r == reason).then_some(())
    })
    .await
}

fn status(cj: &CronJob) -> navarch_api::v1::CronJobStatus {
    cj.status.clone().unwrap_or_default()
}

fn minutes(rfc3339: &str) -> u64 {
    navarch_api::rfc3339::parse(rfc3339).unwrap().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
        / 60
}

#[tokio::test]
async fn cronjobs_run_every_minute_under_their_concurrency_policy() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let jobs: Api<Job> = c.api("default");
    let cronjobs: Api<CronJob> = c.api("default");
    let mut cm = start_controller_manager(&env);
    for cj in [
        cronjob("allow", "*/1 * * * *", "concurrencyPolicy: Allow"),
        cronjob("forbid", "*/1 * * * *", "concurrencyPolicy: Forbid"),
        cronjob("replace", "*/1 * * * *", "concurrencyPolicy: Replace"),
        cronjob("paused", "*/1 * * * *", "suspend: true"),
    ] {
        cronjobs.create(&cj).await.unwrap();
    }

    // The first minute: one Job each, named after the scheduled minute and owned by the CronJob.
    let minute = Duration::from_secs(80);
    let first = wait_jobs(&jobs, "allow", 1, minute).await.remove(0);
    let allow = eventually("allow's status", Duration::from_secs(10), async || {
        let cj = cronjobs.get("allow").await.unwrap();
        (!status(&cj).active.is_empty()).then_some(cj)
    })
    .await;
    let st = status(&allow);
    let m = first.meta();
    assert_eq!(m.name, format!("allow-{}", minutes(&st.last_schedule_time)));
    assert_eq!(
        m.annotations[SCHEDULED], st.last_schedule_time,
        "the scheduled time, in UTC without timeZone"
    );
    assert_eq!(m.annotations["team"], "batch");
    assert_eq!(m.labels["app"], "allow");
    let owner = &m.owner_references[0];
    assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("CronJob", allow.meta().uid.as_str()));
    assert_eq!((owner.controller, owner.block_owner_deletion), (Some(true), Some(true)));
    assert_eq!(st.active.len(), 1);
    assert_eq!((st.active[0].name.as_str(), st.active[0].uid.as_str()), (m.name.as_str(), m.uid.as_str()));
    wait_event(&c, "allow", "SuccessfulCreate").await;
    let forbid_first = wait_jobs(&jobs, "forbid", 1, Duration::from_secs(10)).await.remove(0);
    let replace_first = wait_jobs(&jobs, "replace", 1, Duration::from_secs(10)).await.remove(0);

    // A restart in the same minute creates nothing twice (the name is the lock).
    cm.kill9();
    let _cm = start_controller_manager(&env);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(jobs_of(&jobs, "allow").await.len(), 1);

    // allow's Job completes: off the active list, lastSuccessfulTime set.
    finish(&jobs, &m.name, "Complete", &st.last_schedule_time).await;
    let done = eventually("allow's Job seen completed", Duration::from_secs(40), async || {
        let cj = cronjobs.get("allow").await.unwrap();
        (status(&cj).active.is_empty() && !status(&cj).last_successful_time.is_empty()).then_some(cj)
    })
    .await;
    assert_eq!(
        status(&done).last_successful_time,
        jobs.get(&m.name).await.unwrap().status.unwrap().completion_time
    );
    wait_event(&c, "allow", "SawCompletedJob").await;

    // The next minute: allow runs again; Replace swaps its Job; Forbid skips.
    let second = wait_jobs(&jobs, "allow", 2, minute).await;
    assert!(second.iter().any(|j| j.meta().name == m.name), "the finished Job stays (history)");
    let replaced = eventually("replace's second Job", Duration::from_secs(20), async || {
        let l = jobs_of(&jobs, "replace").await;
        (l.len() == 1 && l[0].meta().name != replace_first.meta().name).then(|| l[0].clone())
    })
    .await;
    wait_event(&c, "replace", "SuccessfulDelete").await;
    let replace = cronjobs.get("replace").await.unwrap();
    assert_eq!(
        status(&replace).active.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        [replaced.meta().name.clone()]
    );
    wait_event(&c, "forbid", "JobAlreadyActive").await;
    let forbid = jobs_of(&jobs, "forbid").await;
    assert_eq!(
        forbid.iter().map(|j| j.meta().name.clone()).collect::<Vec<_>>(),
        [forbid_first.meta().name.clone()]
    );

    // Suspended: nothing, ever.
    assert!(jobs_of(&jobs, "paused").await.is_empty());
    assert!(status(&cronjobs.get("paused").await.unwrap()).last_schedule_time.is_empty());

    // navctl and kubectl show kubectl's columns.
    let (code, out, err) = env.navctl(&["get", "cronjobs"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("NAME"), "{out}");
    for header in ["SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"] {
        assert!(out.lines().next().unwrap().contains(header), "{out}");
    }
    assert!(out.lines().any(|l| l.starts_with("paused") && l.contains("True")), "{out}");
    let (code, out, err) = env.navctl(&["describe", "cronjob", "replace"]).await;
    assert_eq!(code, 0, "{err}");
    for field in ["Schedule:", "Concurrency Policy:", "Replace", "Last Schedule Time:", "Active Jobs:"] {
        assert!(out.contains(field), "{field} in:\n{out}");
    }
    assert!(out.contains(&replaced.meta().name), "{out}");
}

#[tokio::test]
async fn history_limits_and_jobs_made_by_hand() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let jobs: Api<Job> = c.api("default");
    let cronjobs: Api<CronJob> = c.api("default");
    let _cm = start_controller_manager(&env);
    // Never due during the test: only its Jobs' changes wake it.
    let spec = "successfulJobsHistoryLimit: 2\n  failedJobsHistoryLimit: 1";
    let cj = cronjobs.create(&cronjob("nightly", "0 3 1 1 *", spec)).await.unwrap();

    // Made by hand, as kubectl does: the template, an annotation, the CronJob as controller.
    let (code, out, err) = env.navctl(&["create", "job", "s1", "--from=cronjob/nightly"]).await;
    assert_eq!((code, out.trim()), (0, "job.batch/s1 created"), "{err}");
    let s1 = jobs.get("s1").await.unwrap();
    assert_eq!(s1.meta().annotations["cronjob.kubernetes.io/instantiate"], "manual");
    assert_eq!(s1.meta().annotations["team"], "batch");
    assert_eq!(s1.meta().labels["app"], "nightly");
    let owner = &s1.meta().owner_references[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("CronJob", cj.meta().uid.as_str(), Some(true))
    );
    // The real kubectl makes the same.
    let k = Kubectl::new(&env.api_server);
    assert_eq!(k.ok(&["create", "job", "s2", "--from=cronjob/nightly"]).await.trim(), "job.batch/s2 created");
    let s2 = jobs.get("s2").await.unwrap();
    assert_eq!(s2.meta().annotations["cronjob.kubernetes.io/instantiate"], "manual");
    assert_eq!(s2.meta().owner_references[0].uid, cj.meta().uid);
    let out = k.ok(&["get", "cronjobs"]).await;
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]);
    assert!(out.contains("0 3 1 1 *") && out.contains("<none>") && out.contains("False"), "{out}");
    // Running Jobs the controller did not start are reported.
    wait_event(&c, "nightly", "UnexpectedJob").await;
    let (code, _, err) = env.navctl(&["create", "job", "x", "--from=deployment/web"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("from must be an existing cronjob"), "{err}");

    // Three successes and two failures: the oldest success and the oldest failure go.
    for name in ["s3", "f1", "f2"] {
        let (code, _, err) = env.navctl(&["create", "job", name, "--from=cronjob/nightly"]).await;
        assert_eq!(code, 0, "{err}");
    }
    finish(&jobs, "s2", "Complete", "2026-01-01T10:00:00Z").await;
    finish(&jobs, "s1", "Complete", "2026-01-01T10:01:00Z").await;
    finish(&jobs, "s3", "Complete", "2026-01-01T10:02:00Z").await;
    finish(&jobs, "f2", "Failed", "2026-01-01T10:03:00Z").await;
    finish(&jobs, "f1", "Failed", "2026-01-01T10:04:00Z").await;
    let left = eventually("the history pruned", Duration::from_secs(30), async || {
        let names: Vec<String> =
            jobs_of(&jobs, "nightly").await.iter().map(|j| j.meta().name.clone()).collect();
        (names.len() == 3).then_some(names)
    })
    .await;
    assert_eq!(left, ["f1", "s1", "s3"]);
    wait_event(&c, "nightly", "SuccessfulDelete").await;
    let nightly = cronjobs.get("nightly").await.unwrap();
    assert!(status(&nightly).active.is_empty());
    assert!(!status(&nightly).last_successful_time.is_empty());
}
