//! The Job controller in the controller-manager binary against a real api-server and etcd (no
//! kubelets: the test plays the kubelet by writing pod phases). Each ended pod is counted once, even
//! when the controller-manager is killed in the middle of a Job; failures stop at backoffLimit after
//! the back-off; Indexed Jobs run each index once, suspended Jobs run nothing, finished Jobs with a TTL
//! go.

use std::time::{Duration, Instant, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{Event, Job, JobCondition, Pod};
use navarch_client::{Api, ListParams};
use navarch_tests::{Daemon, TestEnv, eventually};

const FINALIZER: &str = "batch.kubernetes.io/job-tracking";

fn start_controller_manager(env: &TestEnv) -> Daemon {
    Daemon::start(env, "controller-manager", "controller-manager", &[])
}

fn job_yaml(name: &str, spec: &str) -> Job {
    serde_yaml::from_str(&format!(
        "{{metadata: {{name: {name}}}, spec: {{{spec}, template: {{spec: {{restartPolicy: Never, containers: [{{name: c, image: busybox:1.36}}]}}}}}}}}"
    ))
    .unwrap()
}

/// Every pod of Job `name` (through the label the api-server adds to its template).
async fn pods_of(pods: &Api<Pod>, name: &str) -> Vec<Pod> {
    let p =
        ListParams { label_selector: format!("batch.kubernetes.io/job-name={name}"), ..Default::default() };
    let mut l = pods.list(&p).await.unwrap().items;
    l.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
    l
}

fn phase(p: &Pod) -> &str {
    p.status.as_ref().map(|s| s.phase.as_str()).unwrap_or_default()
}

fn running(p: &Pod) -> bool {
    p.meta().deletion_timestamp.is_empty() && !matches!(phase(p), "Succeeded" | "Failed")
}

/// Ends `pod` as its kubelet would: phase `Succeeded` (exit 0) or `Failed` (exit 1). False if it moved
/// meanwhile (a conflict): try again later.
async fn end(pods: &Api<Pod>, pod: &Pod, phase: &str) -> bool {
    let Ok(mut p) = pods.get(&pod.meta().name).await else { return false };
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let code = if phase == "Succeeded" { 0 } else { 1 };
    let status = serde_yaml::from_str(&format!(
        "{{phase: {phase}, containerStatuses: [{{name: c, state: {{terminated: {{exitCode: {code}, finishedAt: '{now}'}}}}}}]}}"
    ))
    .unwrap();
    p.status = Some(status);
    pods.update_status(&p).await.is_ok()
}

fn conditions(job: &Job) -> Vec<JobCondition> {
    job.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default()
}

fn has_condition(job: &Job, ty: &str) -> bool {
    conditions(job).iter().any(|c| c.r#type == ty && c.status == "True")
}

/// Waits for `n` running pods of Job `name`, and returns them.
async fn running_pods(pods: &Api<Pod>, name: &str, n: usize) -> Vec<Pod> {
    eventually(format!("{n} running pods of {name}"), Duration::from_secs(30), async || {
        let l: Vec<Pod> = pods_of(pods, name).await.into_iter().filter(running).collect();
        (l.len() == n).then_some(l)
    })
    .await
}

/// Succeeds the running pods of `name` until it is Complete, checking that no more than `parallelism`
/// run at once.
async fn succeed_until_complete(pods: &Api<Pod>, jobs: &Api<Job>, name: &str, parallelism: usize) -> Job {
    eventually(format!("{name} Complete"), Duration::from_secs(60), async || {
        let job = jobs.get(name).await.unwrap();
        if has_condition(&job, "Complete") {
            return Ok(job);
        }
        let l: Vec<Pod> = pods_of(pods, name).await.into_iter().filter(running).collect();
        assert!(l.len() <= parallelism, "{} pods running at once", l.len());
        for p in &l {
            end(pods, p, "Succeeded").await;
        }
        Err(format!("status {:?}", job.status))
    })
    .await
}

async fn event_reasons(c: &navarch_client::Client, name: &str) -> Vec<String> {
    let events: Api<Event> = c.api("default");
    let l = events.list(&ListParams::default()).await.unwrap().items;
    l.into_iter()
        .filter(|e| e.involved_object.as_ref().is_some_and(|o| o.kind == "Job" && o.name == name))
        .map(|e| e.reason)
        .collect()
}

#[tokio::test]
async fn job_completes_counting_each_pod_once_across_a_restart() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let jobs: Api<Job> = c.api("default");
    let mut cm = start_controller_manager(&env);
    let job = jobs.create(&job_yaml("work", "completions: 5, parallelism: 2")).await.unwrap();

    // Two at a time, each from the template, owned by the Job, with the tracking finalizer.
    let first = running_pods(&pods, "work", 2).await;
    for p in &first {
        let m = p.meta();
        assert!(m.name.starts_with("work-"), "{}", m.name);
        assert!(m.finalizers.iter().any(|f| f == FINALIZER), "{:?}", m.finalizers);
        let owner = m.owner_references.iter().find(|r| r.controller == Some(true)).expect("owned");
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Job", job.meta().uid.as_str()));
        assert_eq!(owner.block_owner_deletion, Some(true));
    }
    for p in &first {
        assert!(end(&pods, p, "Succeeded").await);
    }
    // Counted: the finalizers go, succeeded is 2, two more run.
    eventually("2 succeeded", Duration::from_secs(30), async || {
        let j = jobs.get("work").await.unwrap();
        let st = j.status.clone().unwrap_or_default();
        if st.succeeded == 2 && st.active == 2 && !st.start_time.is_empty() {
            Ok(())
        } else {
            Err(format!("{st:?}"))
        }
    })
    .await;
    let second = running_pods(&pods, "work", 2).await;

    // Killed, then two pods end and the controller's crash is made to fall inside the counting
    // protocol: both UIDs written as uncounted, one pod's finalizer already removed, the other's not.
    cm.kill9();
    for p in &second {
        assert!(end(&pods, p, "Succeeded").await);
    }
    let mut j = jobs.get("work").await.unwrap();
    let st = j.status.get_or_insert_with(Default::default);
    assert_eq!(st.succeeded, 2);
    let uids: Vec<String> = second.iter().map(|p| p.meta().uid.clone()).collect();
    st.uncounted_terminated_pods.get_or_insert_with(Default::default).succeeded = uids;
    jobs.update_status(&j).await.unwrap();
    let mut freed = pods.get(&second[1].meta().name).await.unwrap();
    freed.meta_mut().finalizers.retain(|f| f != FINALIZER);
    pods.update(&freed).await.unwrap();
    cm = Daemon::start(&env, "controller-manager", "controller-manager", &["--leader-elect=false"]);
    let third = running_pods(&pods, "work", 1).await;
    eventually("4 succeeded, none uncounted", Duration::from_secs(30), async || {
        let st = jobs.get("work").await.unwrap().status.unwrap_or_default();
        let u = st.uncounted_terminated_pods.clone().unwrap_or_default();
        if st.succeeded == 4 && u.succeeded.is_empty() { Ok(()) } else { Err(format!("{st:?}")) }
    })
    .await;

    // Killed right as the last pod ends (perhaps in the middle of counting it), and restarted.
    assert!(end(&pods, &third[0], "Succeeded").await);
    cm.kill9();
    cm = Daemon::start(&env, "controller-manager", "controller-manager", &["--leader-elect=false"]);

    let done = succeed_until_complete(&pods, &jobs, "work", 2).await;
    let st = done.status.clone().unwrap();
    assert_eq!((st.succeeded, st.failed, st.active), (5, 0, 0), "{st:?}");
    assert!(!st.completion_time.is_empty());
    let u = st.uncounted_terminated_pods.clone().unwrap_or_default();
    assert!(u.succeeded.is_empty() && u.failed.is_empty(), "{u:?}");
    let all_conditions = conditions(&done);
    let types: Vec<&str> = all_conditions.iter().map(|c| c.r#type.as_str()).collect();
    assert_eq!(types, ["SuccessCriteriaMet", "Complete"]);
    // Exactly five pods were ever made, all succeeded and freed of the finalizer, and it stays so.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = pods_of(&pods, "work").await;
    assert_eq!(all.len(), 5, "{:?}", all.iter().map(|p| &p.meta().name).collect::<Vec<_>>());
    assert!(all.iter().all(|p| phase(p) == "Succeeded"));
    assert!(all.iter().all(|p| p.meta().finalizers.is_empty()), "finalizers left");
    assert_eq!(jobs.get("work").await.unwrap().status.unwrap().succeeded, 5);
    eventually("the Completed event", Duration::from_secs(10), async || {
        let reasons = event_reasons(&c, "work").await;
        reasons.iter().any(|r| r == "Completed") && reasons.iter().any(|r| r == "SuccessfulCreate")
    })
    .await;
    drop(cm);
}

#[tokio::test]
async fn failing_pods_stop_at_the_backoff_limit() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let jobs: Api<Job> = c.api("default");
    let _cm = start_controller_manager(&env);
    jobs.create(&job_yaml("flaky", "completions: 1, backoffLimit: 1")).await.unwrap();

    let first = running_pods(&pods, "flaky", 1).await;
    assert!(end(&pods, &first[0], "Failed").await);
    let failed_at = Instant::now();
    // The replacement waits out the back-off (10 s after the first failure).
    let second = running_pods(&pods, "flaky", 1).await;
    let waited = failed_at.elapsed();
    assert!(waited >= Duration::from_secs(8), "replaced after {waited:?}");
    assert_ne!(second[0].meta().name, first[0].meta().name);
    eventually("1 failed counted", Duration::from_secs(10), async || {
        jobs.get("flaky").await.unwrap().status.is_some_and(|s| s.failed == 1)
    })
    .await;
    assert!(end(&pods, &second[0], "Failed").await);

    let job = eventually("flaky Failed", Duration::from_secs(30), async || {
        let j = jobs.get("flaky").await.unwrap();
        if has_condition(&j, "Failed") { Ok(j) } else { Err(format!("{:?}", j.status)) }
    })
    .await;
    let st = job.status.clone().unwrap();
    assert_eq!((st.failed, st.succeeded, st.active), (2, 0, 0), "{st:?}");
    let failed = conditions(&job).into_iter().find(|c| c.r#type == "Failed").unwrap();
    assert_eq!(
        (failed.reason.as_str(), failed.message.as_str()),
        ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    );
    assert!(has_condition(&job, "FailureTarget"));
    assert!(st.completion_time.is_empty());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = pods_of(&pods, "flaky").await;
    assert_eq!(all.len(), 2, "no pod after the limit");
    assert!(all.iter().all(|p| phase(p) == "Failed" && p.meta().finalizers.is_empty()));
    eventually("the BackoffLimitExceeded event", Duration::from_secs(10), async || {
        event_reasons(&c, "flaky").await.iter().any(|r| r == "BackoffLimitExceeded")
    })
    .await;
}

#[tokio::test]
async fn indexed_job_waits_while_suspended_then_runs_each_index_and_expires() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let jobs: Api<Job> = c.api("default");
    let _cm = start_controller_manager(&env);
    let spec =
        "completions: 3, parallelism: 3, completionMode: Indexed, suspend: true, ttlSecondsAfterFinished: 3";
    jobs.create(&job_yaml("idx", spec)).await.unwrap();

    // Suspended: no pods, no start time, condition Suspended.
    let j = eventually("idx Suspended", Duration::from_secs(20), async || {
        let j = jobs.get("idx").await.unwrap();
        has_condition(&j, "Suspended").then_some(j)
    })
    .await;
    let suspended = conditions(&j).into_iter().find(|c| c.r#type == "Suspended").unwrap();
    assert_eq!((suspended.reason.as_str(), suspended.message.as_str()), ("JobSuspended", "Job suspended"));
    assert!(j.status.as_ref().unwrap().start_time.is_empty());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(pods_of(&pods, "idx").await.is_empty());

    // Resumed: one pod per index, named, labelled and hostnamed by it.
    eventually("idx resumed", Duration::from_secs(10), async || {
        let mut j = jobs.get("idx").await.unwrap();
        j.spec.as_mut().unwrap().suspend = Some(false);
        jobs.update(&j).await
    })
    .await;
    let three = running_pods(&pods, "idx", 3).await;
    let mut indexes: Vec<(String, String)> = three
        .iter()
        .map(|p| {
            let ix = p.meta().annotations.get("batch.kubernetes.io/job-completion-index").cloned().unwrap();
            assert_eq!(p.meta().labels.get("batch.kubernetes.io/job-completion-index"), Some(&ix));
            assert!(p.meta().name.starts_with(&format!("idx-{ix}-")), "{}", p.meta().name);
            (ix, p.spec.as_ref().unwrap().hostname.clone())
        })
        .collect();
    indexes.sort();
    let indexes: Vec<(&str, &str)> = indexes.iter().map(|(i, h)| (i.as_str(), h.as_str())).collect();
    assert_eq!(indexes, [("0", "idx-0"), ("1", "idx-1"), ("2", "idx-2")]);
    let j = jobs.get("idx").await.unwrap();
    let resumed = conditions(&j).into_iter().find(|c| c.r#type == "Suspended").unwrap();
    assert_eq!((resumed.status.as_str(), resumed.reason.as_str()), ("False", "JobResumed"));

    let done = succeed_until_complete(&pods, &jobs, "idx", 3).await;
    let st = done.status.clone().unwrap();
    assert_eq!((st.completed_indexes.as_str(), st.succeeded), ("0-2", 3));

    // ttlSecondsAfterFinished: the Job goes, and its pods with it (the garbage collector).
    eventually("idx deleted after its TTL", Duration::from_secs(30), async || {
        jobs.get_opt("idx").await.unwrap().is_none()
    })
    .await;
    eventually("idx's pods collected", Duration::from_secs(30), async || {
        pods_of(&pods, "idx").await.is_empty()
    })
    .await;
}
