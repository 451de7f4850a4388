//! Unit tests of the Job controller's pure decisions: claims, counts, pods to create and delete,
//! the uncounted-pods protocol, failure handling, back-off, deadlines, suspension, Indexed Jobs, the
//! pod failure policy and TTLs.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{Job, JobStatus, Pod};

use super::plan::*;
use super::pods::*;
use super::{COMPLETION_INDEX, TRACKING_FINALIZER};

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn at(secs: u64) -> String {
    rfc3339(t(secs))
}

/// A Job `pi` (uid `job-uid`) with `spec` merged into a default one, and `status`.
fn job(spec: &str, status: &str) -> Job {
    serde_yaml::from_str(&format!(
        "{{metadata: {{name: pi, namespace: ns, uid: job-uid}}, spec: {{selector: {{matchLabels: {{batch.kubernetes.io/controller-uid: job-uid}}}}, template: {{metadata: {{labels: {{batch.kubernetes.io/controller-uid: job-uid}}}}, spec: {{restartPolicy: Never, containers: [{{name: c, image: busybox}}]}}}}, {spec}}}, status: {{{status}}}}}"
    ))
    .unwrap()
}

/// A pod `name` (uid `uid-<name>`) of the Job, with the tracking finalizer, in `phase`.
fn pod(name: &str, phase: &str) -> Pod {
    serde_yaml::from_str(&format!(
        "{{metadata: {{name: {name}, namespace: ns, uid: uid-{name}, labels: {{batch.kubernetes.io/controller-uid: job-uid}}, finalizers: [{TRACKING_FINALIZER}], ownerReferences: [{{apiVersion: batch/v1, kind: Job, name: pi, uid: job-uid, controller: true}}]}}, spec: {{containers: [{{name: c, image: busybox}}]}}, status: {{phase: {phase}}}}}"
    ))
    .unwrap()
}

fn counted(mut p: Pod) -> Pod {
    p.meta_mut().finalizers.clear();
    p
}

fn indexed(mut p: Pod, ix: i32) -> Pod {
    p.meta_mut().annotations.insert(COMPLETION_INDEX.into(), ix.to_string());
    p
}

fn deleting(mut p: Pod) -> Pod {
    p.meta_mut().deletion_timestamp = at(0);
    p
}

fn ready(mut p: Pod) -> Pod {
    let s = p.status.get_or_insert_with(Default::default);
    s.conditions = vec![serde_yaml::from_str("{type: Ready, status: 'True'}").unwrap()];
    p
}

/// One sync's decisions without any write failing: the assessment, the plan, and the tracking.
struct Round {
    a_finished: Option<String>,
    plan: Manage,
    tracking: Tracking,
    succeeded: i32,
    failed: i32,
    requeue: Option<Duration>,
}

fn sync(job: &Job, pods: &[Pod], now: SystemTime) -> Round {
    sync_with(job, pods, now, &HashSet::new(), Duration::ZERO)
}

fn sync_with(job: &Job, pods: &[Pod], now: SystemTime, rm: &HashSet<String>, backoff: Duration) -> Round {
    let view = View { job, pods: pods.iter().collect(), expected_rm_finalizers: rm, now };
    let a = assess(&view);
    let plan = manage(&view, &a, true, backoff);
    let deleted = plan.delete.len() as i32;
    let outcome = Outcome {
        deleted,
        deleted_ready: plan.delete.iter().filter(|v| v.ready).count() as i32,
        created: plan.create.len() as i32,
        satisfied: true,
        managed: plan.managed,
    };
    let tracking = track(&view, &a, &outcome);
    Round {
        a_finished: a.finished.as_ref().map(|c| c.r#type.clone()),
        succeeded: a.succeeded,
        failed: a.failed,
        requeue: a.requeue,
        plan,
        tracking,
    }
}

/// The rest of the protocol after every listed finalizer was removed: counters, then finished.
fn finish(s: &Round, pods: &[Pod], now: SystemTime) -> (JobStatus, bool) {
    let mut status = s.tracking.status.clone();
    let removed: HashSet<&str> = s.tracking.remove_finalizers.iter().map(|(_, u)| u.as_str()).collect();
    let with: HashSet<&str> = pods
        .iter()
        .filter(|p| has_finalizer(p) && !removed.contains(p.meta().uid.as_str()))
        .map(|p| p.meta().uid.as_str())
        .collect();
    clean_uncounted(&mut status, &with);
    let done = s.tracking.finished.as_ref().is_some_and(|f| enact_finished(&mut status, f, now));
    (status, done)
}

fn types(status: &JobStatus) -> Vec<(&str, &str, &str)> {
    status.conditions.iter().map(|c| (c.r#type.as_str(), c.status.as_str(), c.reason.as_str())).collect()
}

#[test]
fn claims_owned_pods_adopts_orphans_and_releases_strays() {
    let j = job("completions: 1", "");
    let mine = pod("mine", "Running");
    let mut orphan = pod("orphan", "Running");
    orphan.meta_mut().owner_references.clear();
    let mut other = pod("other", "Running");
    other.meta_mut().owner_references[0].uid = "someone-else".into();
    let mut stray = pod("stray", "Running");
    stray.meta_mut().labels.clear();
    let pods = [&mine, &orphan, &other, &stray];
    let c = claim(&j, &pods);
    let names = |v: &[&Pod]| v.iter().map(|p| p.meta().name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&c.mine), ["mine", "orphan"]);
    assert_eq!(names(&c.adopt), ["orphan"]);
    assert_eq!(names(&c.release), ["stray"]);
    // A finished Job adopts nothing.
    let done = job("completions: 1", "conditions: [{type: Complete, status: 'True'}]");
    assert!(claim(&done, &pods).adopt.is_empty());
}

#[test]
fn keeps_min_of_parallelism_and_remaining_completions_active() {
    let j = job("completions: 5, parallelism: 2", "");
    let s = sync(&j, &[], t(0));
    assert_eq!(s.plan.create, [None, None]);
    assert_eq!(s.tracking.status.active, 2);
    assert_eq!(s.tracking.status.start_time, at(0), "started");

    // 3 counted, 1 running: 2 remain, so 1 more.
    let j = job("completions: 5, parallelism: 2", &format!("succeeded: 3, startTime: '{}'", at(0)));
    let s = sync(&j, &[pod("a", "Running")], t(5));
    assert_eq!(s.plan.create, [None]);
    assert_eq!(s.tracking.status.start_time, at(0), "kept");

    // 4 counted: one left, two running: the least useful goes, uncounted (finalizer removed first).
    let j = job("completions: 5, parallelism: 2", "succeeded: 4");
    let s = sync(&j, &[ready(pod("a", "Running")), pod("b", "Pending")], t(5));
    assert!(s.plan.create.is_empty());
    assert_eq!(s.plan.delete.len(), 1);
    assert_eq!((s.plan.delete[0].name.as_str(), s.plan.delete[0].uncount), ("b", true));
    assert_eq!((s.tracking.status.active, s.tracking.status.terminating), (1, Some(1)));

    // parallelism 0 pauses.
    let j = job("completions: 5, parallelism: 0", "");
    assert!(sync(&j, &[], t(0)).plan.create.is_empty());
}

#[test]
fn uncounted_protocol_counts_each_pod_once() {
    let j = job("completions: 3, parallelism: 3", "");
    let pods = [pod("a", "Succeeded"), pod("b", "Failed"), pod("c", "Running")];
    let s = sync(&j, &pods, t(0));
    let u = s.tracking.status.uncounted_terminated_pods.clone().unwrap();
    assert_eq!((u.succeeded, u.failed), (vec!["uid-a".to_string()], vec!["uid-b".to_string()]));
    assert_eq!((s.tracking.status.succeeded, s.tracking.status.failed), (0, 0), "not counted yet");
    let rm: Vec<&str> = s.tracking.remove_finalizers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(rm, ["a", "b"]);
    // Replacement for the failure: 3 - 1 succeeded = 2 wanted, 1 running.
    assert_eq!(s.plan.create.len(), 1);
    let (status, done) = finish(&s, &pods, t(0));
    assert_eq!((status.succeeded, status.failed, done), (1, 1, false));
    assert_eq!(status.uncounted_terminated_pods.clone().unwrap(), Default::default());

    // A restart between the first write and the finalizers: the uncounted UIDs are not added twice,
    // and once their finalizers are gone (pods removed or updated) they are counted.
    let j = job(
        "completions: 3, parallelism: 3",
        "uncountedTerminatedPods: {succeeded: [uid-a], failed: [uid-b]}",
    );
    let s = sync(&j, &pods, t(1));
    assert_eq!(s.succeeded, 1, "uncounted successes count toward completions");
    let u = s.tracking.status.uncounted_terminated_pods.clone().unwrap();
    assert_eq!((u.succeeded.len(), u.failed.len()), (1, 1));
    let (status, _) = finish(&s, &pods, t(1));
    assert_eq!((status.succeeded, status.failed), (1, 1));

    // Finalizer already gone (counted): ignored. Removal pending in the cache: ignored too.
    let j = job("completions: 3, parallelism: 3", "succeeded: 1, failed: 1");
    let pods = [counted(pod("a", "Succeeded")), pod("b", "Failed"), pod("c", "Running")];
    let rm: HashSet<String> = ["uid-b".to_string()].into();
    let s = sync_with(&j, &pods, t(2), &rm, Duration::ZERO);
    assert_eq!((s.succeeded, s.failed), (1, 1));
    assert!(s.tracking.remove_finalizers.is_empty());
    assert_eq!(s.tracking.status.uncounted_terminated_pods.clone().unwrap(), Default::default());
}

#[test]
fn completes_with_success_criteria_met_then_complete() {
    let j = job("completions: 2, parallelism: 2", &format!("startTime: '{}'", at(0)));
    let pods = [pod("a", "Succeeded"), pod("b", "Succeeded")];
    let s = sync(&j, &pods, t(30));
    assert!(s.plan.create.is_empty());
    assert_eq!(types(&s.tracking.status), [("SuccessCriteriaMet", "True", "CompletionsReached")]);
    assert_eq!(s.tracking.finished.as_ref().unwrap().r#type, COMPLETE);
    let (status, done) = finish(&s, &pods, t(30));
    assert!(done);
    assert_eq!(status.succeeded, 2);
    assert_eq!(status.completion_time, at(30));
    let last = status.conditions.last().unwrap();
    assert_eq!((last.r#type.as_str(), last.reason.as_str()), ("Complete", "CompletionsReached"));
    let done_job = Job { status: Some(status.clone()), ..j.clone() };
    assert!(is_finished(&done_job));
    let notes = finished_notes(&done_job, &status, s.tracking.finished.as_ref().unwrap());
    assert_eq!((notes[0].reason, notes[0].message.as_str()), ("Completed", "Job completed"));
}

#[test]
fn work_queue_completes_when_one_succeeded_and_none_run() {
    let j = job("parallelism: 3", "");
    assert_eq!(sync(&j, &[], t(0)).plan.create.len(), 3);
    // One succeeded: no new pods, the others run to their end.
    let pods = [pod("a", "Succeeded"), pod("b", "Running")];
    let s = sync(&j, &pods, t(1));
    assert!(s.plan.create.is_empty() && s.plan.delete.is_empty());
    assert!(s.tracking.finished.is_none());
    let pods = [pod("a", "Succeeded"), pod("b", "Succeeded"), pod("c", "Failed")];
    let s = sync(&j, &pods, t(2));
    assert!(s.plan.create.is_empty());
    assert_eq!(s.tracking.finished.as_ref().unwrap().r#type, COMPLETE);
    let (status, done) = finish(&s, &pods, t(2));
    assert_eq!((status.succeeded, status.failed, done), (2, 1, true));
}

#[test]
fn failures_beyond_backoff_limit_fail_the_job() {
    let j = job("completions: 1, backoffLimit: 1", "failed: 1");
    let s = sync(&j, &[], t(0));
    assert_eq!(s.a_finished, None, "1 failure is within the limit");
    assert_eq!(s.plan.create.len(), 1);

    let pods = [pod("b", "Failed"), ready(pod("c", "Running"))];
    let s = sync(&j, &pods, t(5));
    assert_eq!(s.failed, 2);
    assert_eq!(s.a_finished.as_deref(), Some(FAILURE_TARGET));
    // The running pod goes (counted as failed too), nothing is created.
    assert_eq!(
        s.plan.delete.iter().map(|v| (v.name.as_str(), v.uncount)).collect::<Vec<_>>(),
        [("c", false)]
    );
    assert!(s.plan.create.is_empty());
    let st = &s.tracking.status;
    assert_eq!(types(st), [("FailureTarget", "True", "BackoffLimitExceeded")]);
    assert_eq!(st.conditions[0].message, "Job has reached the specified backoff limit");
    let u = st.uncounted_terminated_pods.clone().unwrap();
    assert_eq!(u.failed, ["uid-b", "uid-c"]);
    assert_eq!((st.active, st.ready, st.terminating), (0, Some(0), Some(1)));
    // Failed waits for the deleted pod to be gone.
    let (status, done) = finish(&s, &pods, t(5));
    assert!(!done);
    assert_eq!(status.failed, 3);

    // Next sync: FailureTarget recorded, no pods left: Failed.
    let j2 = Job { status: Some(status), ..j.clone() };
    let s = sync(&j2, &[counted(pod("b", "Failed"))], t(6));
    assert_eq!(s.a_finished.as_deref(), Some(FAILED));
    let (status, done) = finish(&s, &[], t(6));
    assert!(done);
    assert_eq!(
        types(&status),
        [("FailureTarget", "True", "BackoffLimitExceeded"), ("Failed", "True", "BackoffLimitExceeded")]
    );
    assert!(status.completion_time.is_empty(), "no completion time for a failed Job");
    let notes = finished_notes(&j2, &status, s.tracking.finished.as_ref().unwrap());
    assert_eq!((notes[0].warning, notes[0].reason), (true, "BackoffLimitExceeded"));
}

#[test]
fn restarts_count_with_restart_policy_on_failure() {
    let mut j = job("completions: 1, backoffLimit: 2", "");
    j.spec.as_mut().unwrap().template.as_mut().unwrap().spec.as_mut().unwrap().restart_policy =
        "OnFailure".into();
    let mut p = pod("a", "Running");
    p.status.as_mut().unwrap().container_statuses =
        vec![serde_yaml::from_str("{name: c, restartCount: 1}").unwrap()];
    assert_eq!(sync(&j, std::slice::from_ref(&p), t(0)).a_finished, None);
    p.status.as_mut().unwrap().container_statuses[0].restart_count = 2;
    assert_eq!(sync(&j, &[p], t(0)).a_finished.as_deref(), Some(FAILURE_TARGET));
}

#[test]
fn backoff_doubles_from_ten_seconds_up_to_six_minutes() {
    let failed_at = |name: &str, secs: u64| {
        let mut p = pod(name, "Failed");
        p.status.as_mut().unwrap().container_statuses = vec![
            serde_yaml::from_str(&format!(
                "{{name: c, state: {{terminated: {{exitCode: 1, finishedAt: '{}'}}}}}}",
                at(secs)
            ))
            .unwrap(),
        ];
        p
    };
    let (a, b, c) = (failed_at("a", 0), failed_at("b", 5), failed_at("c", 2));
    let one = Backoff::default().updated(&[], &[&a], t(100));
    assert_eq!((one.failures, one.last_failure), (1, Some(t(0))));
    assert_eq!(one.remaining(t(4)), Duration::from_secs(6));
    assert_eq!(one.remaining(t(10)), Duration::ZERO);
    let three = one.updated(&[], &[&b, &c], t(100));
    assert_eq!((three.failures, three.last_failure), (3, Some(t(5))));
    assert_eq!(three.remaining(t(5)), Duration::from_secs(40));
    let many = Backoff { failures: 30, last_failure: Some(t(0)) };
    assert_eq!(many.remaining(t(0)), Duration::from_secs(360));
    // A success resets the count to the failures after it.
    let mut s = pod("s", "Succeeded");
    s.status.as_mut().unwrap().container_statuses = vec![
        serde_yaml::from_str(&format!(
            "{{name: c, state: {{terminated: {{exitCode: 0, finishedAt: '{}'}}}}}}",
            at(3)
        ))
        .unwrap(),
    ];
    let reset = three.updated(&[&s], &[&b, &c], t(100));
    assert_eq!((reset.failures, reset.last_failure), (1, Some(t(5))));
    assert_eq!(three.updated(&[&s], &[], t(100)), Backoff::default());

    // Backing off: nothing is created, the Job waits.
    let j = job("completions: 2, parallelism: 2", "failed: 1");
    let s = sync_with(&j, &[pod("x", "Running")], t(0), &HashSet::new(), Duration::from_secs(7));
    assert!(s.plan.create.is_empty());
    assert_eq!(s.plan.wait, Some(Duration::from_secs(7)));
    assert_eq!(s.tracking.status.active, 1);
}

#[test]
fn active_deadline_fails_the_job_or_requeues_for_it() {
    let j = job("completions: 1, activeDeadlineSeconds: 60", &format!("startTime: '{}'", at(0)));
    let s = sync(&j, &[pod("a", "Running")], t(20));
    assert_eq!(s.a_finished, None);
    assert_eq!(s.requeue, Some(Duration::from_secs(40)));
    let s = sync(&j, &[pod("a", "Running")], t(60));
    assert_eq!(s.a_finished.as_deref(), Some(FAILURE_TARGET));
    assert_eq!(s.plan.delete.len(), 1);
    let c = &s.tracking.status.conditions[0];
    assert_eq!(
        (c.reason.as_str(), c.message.as_str()),
        ("DeadlineExceeded", "Job was active longer than specified deadline")
    );
    // Suspended: the clock does not run.
    let j =
        job("completions: 1, activeDeadlineSeconds: 60, suspend: true", &format!("startTime: '{}'", at(0)));
    let s = sync(&j, &[], t(600));
    assert_eq!((s.a_finished, s.requeue), (None, None));
}

#[test]
fn suspension_deletes_pods_uncounted_and_resumption_restarts_the_clock() {
    let j = job("completions: 4, parallelism: 2, suspend: true", &format!("startTime: '{}'", at(0)));
    let pods = [pod("a", "Running"), pod("b", "Pending")];
    let s = sync(&j, &pods, t(10));
    assert_eq!(s.plan.delete.len(), 2);
    assert!(s.plan.delete.iter().all(|v| v.uncount), "deleted pods are not failures");
    assert!(s.plan.create.is_empty());
    assert!(s.tracking.status.uncounted_terminated_pods.clone().unwrap().failed.is_empty());
    assert_eq!(types(&s.tracking.status), [("Suspended", "True", "JobSuspended")]);
    assert_eq!(s.tracking.notes[0].reason, "Suspended");

    // Created suspended: no start time.
    let fresh = job("completions: 1, suspend: true", "");
    let s = sync(&fresh, &[], t(0));
    assert!(s.tracking.status.start_time.is_empty());
    assert!(s.plan.create.is_empty());

    // Resumed: Suspended False, pods again, the start time reset.
    let j = job(
        "completions: 4, parallelism: 2, suspend: false, activeDeadlineSeconds: 30",
        &format!(
            "startTime: '{}', conditions: [{{type: Suspended, status: 'True', reason: JobSuspended, message: Job suspended}}]",
            at(0)
        ),
    );
    let s = sync(&j, &[], t(500));
    assert_eq!(s.a_finished, None, "the deadline counts from the resumption");
    assert_eq!(s.plan.create.len(), 2);
    assert_eq!(types(&s.tracking.status), [("Suspended", "False", "JobResumed")]);
    assert_eq!(s.tracking.status.start_time, at(500));
    assert_eq!(s.tracking.notes[0].reason, "Resumed");
    // Never suspended: no Suspended condition at all.
    assert!(sync(&job("completions: 1", ""), &[], t(0)).tracking.status.conditions.is_empty());
}

#[test]
fn indexed_jobs_run_each_index_once() {
    let j = job("completions: 5, parallelism: 3, completionMode: Indexed", "");
    let s = sync(&j, &[], t(0));
    assert_eq!(s.plan.create, [Some(0), Some(1), Some(2)]);

    // 0 succeeded (uncounted yet), 1 runs, 2 failed: 2 is retried, then 3.
    let pods =
        [indexed(pod("a", "Succeeded"), 0), indexed(pod("b", "Running"), 1), indexed(pod("c", "Failed"), 2)];
    let s = sync(&j, &pods, t(1));
    assert_eq!(s.succeeded, 1);
    assert_eq!(s.plan.create, [Some(2), Some(3)]);
    let st = &s.tracking.status;
    assert_eq!((st.completed_indexes.as_str(), st.succeeded), ("0", 1));
    let u = st.uncounted_terminated_pods.clone().unwrap();
    assert!(u.succeeded.is_empty(), "indexes, not UIDs, record successes");
    assert_eq!(u.failed, ["uid-c"]);

    // Completed indexes accumulate as ranges; out-of-range indexes are ignored.
    let j = job(
        "completions: 5, parallelism: 3, completionMode: Indexed",
        "completedIndexes: '0-2', succeeded: 3",
    );
    let pods = [
        indexed(pod("d", "Succeeded"), 4),
        indexed(pod("e", "Succeeded"), 9),
        indexed(pod("f", "Running"), 3),
    ];
    let s = sync(&j, &pods, t(2));
    assert_eq!((s.tracking.status.completed_indexes.as_str(), s.tracking.status.succeeded), ("0-2,4", 4));
    assert!(s.plan.create.is_empty());
    assert!(s.tracking.finished.is_none());
    let pods = [indexed(counted(pod("d", "Succeeded")), 4), indexed(pod("f", "Succeeded"), 3)];
    let j = job(
        "completions: 5, parallelism: 3, completionMode: Indexed",
        "completedIndexes: '0-2,4', succeeded: 4",
    );
    let s = sync(&j, &pods, t(3));
    assert_eq!(s.tracking.status.completed_indexes, "0-4");
    assert_eq!(s.tracking.finished.as_ref().unwrap().r#type, COMPLETE);
}

#[test]
fn indexed_jobs_drop_repeated_and_invalid_indexes() {
    let j = job("completions: 3, parallelism: 3, completionMode: Indexed", "");
    let pods = [
        indexed(pod("a", "Running"), 0),
        ready(indexed(pod("b", "Running"), 0)),
        indexed(pod("c", "Running"), 7),
        pod("d", "Running"),
        indexed(pod("e", "Running"), 1),
    ];
    let s = sync(&j, &pods, t(0));
    let mut names: Vec<&str> = s.plan.delete.iter().map(|v| v.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["a", "c", "d"], "the ready one of index 0 stays");
    assert!(s.plan.create.is_empty(), "deletions first, creations next sync");
}

#[test]
fn indexed_pods_carry_their_index() {
    let j = job("completions: 3, completionMode: Indexed", "");
    let p = pod_for(&j, Some(2));
    let m = p.meta();
    assert_eq!(m.generate_name, "pi-2-");
    assert_eq!(m.annotations.get(COMPLETION_INDEX).map(String::as_str), Some("2"));
    assert_eq!(m.labels.get(COMPLETION_INDEX).map(String::as_str), Some("2"));
    assert_eq!(m.finalizers, [TRACKING_FINALIZER]);
    let owner = &m.owner_references[0];
    assert_eq!((owner.kind.as_str(), owner.uid.as_str(), owner.controller), ("Job", "job-uid", Some(true)));
    let spec = p.spec.as_ref().unwrap();
    assert_eq!(spec.hostname, "pi-2");
    let env = &spec.containers[0].env[0];
    assert_eq!(env.name, "JOB_COMPLETION_INDEX");
    assert_eq!(
        env.value_from.as_ref().unwrap().field_ref.as_ref().unwrap().field_path,
        "metadata.labels['batch.kubernetes.io/job-completion-index']"
    );
    assert_eq!(completion_index(&p), Some(2));
    let plain = pod_for(&job("completions: 1", ""), None);
    assert_eq!(plain.meta().generate_name, "pi-");
    assert!(plain.meta().annotations.is_empty());
    assert!(plain.spec.as_ref().unwrap().hostname.is_empty());
    let long = "x".repeat(60);
    let mut j = job("completions: 3, completionMode: Indexed", "");
    j.meta_mut().name = long;
    assert_eq!(pod_for(&j, Some(12)).meta().generate_name.len(), 58);
}

#[test]
fn deleted_pods_count_as_failed_unless_replacements_wait() {
    let j = job("completions: 1", "");
    let p = deleting(pod("a", "Running"));
    assert!(is_failed(&p, &j));
    assert!(!is_failed(&deleting(pod("s", "Succeeded")), &j));
    let waits = job("completions: 1, podReplacementPolicy: Failed", "");
    let mut scheduled = p.clone();
    scheduled.spec.as_mut().unwrap().node_name = "n1".into();
    assert!(!is_failed(&scheduled, &waits), "waits for the kubelet to end it");
    assert!(is_failed(&p, &waits), "never scheduled: nothing will end it");
    // TerminatingOrFailed replaces at once; Failed waits for the terminating pod.
    assert_eq!(sync(&job("completions: 1", ""), &[counted(scheduled.clone())], t(0)).plan.create.len(), 1);
    assert!(sync(&waits, &[counted(scheduled)], t(0)).plan.create.is_empty());
}

#[test]
fn pod_failure_policy_fails_ignores_or_counts() {
    let policy = "completions: 2, parallelism: 2, podReplacementPolicy: Failed, podFailurePolicy: {rules: [{action: FailJob, onExitCodes: {containerName: c, operator: In, values: [42]}}, {action: Ignore, onPodConditions: [{type: DisruptionTarget}]}, {action: Count, onExitCodes: {operator: NotIn, values: [1]}}]}";
    let j = job(policy, "");
    let exited = |name: &str, code: i32| {
        let mut p = pod(name, "Failed");
        p.status.as_mut().unwrap().container_statuses = vec![
            serde_yaml::from_str(&format!("{{name: c, state: {{terminated: {{exitCode: {code}}}}}}}"))
                .unwrap(),
        ];
        p
    };
    let fatal = exited("a", 42);
    match failure_verdict(&j, &fatal) {
        Verdict::FailJob(m) => assert_eq!(
            m,
            "Container c for pod ns/a failed with exit code 42 matching FailJob rule at index 0"
        ),
        v => panic!("{v:?}"),
    }
    let mut disrupted = exited("b", 137);
    disrupted.status.as_mut().unwrap().conditions =
        vec![serde_yaml::from_str("{type: DisruptionTarget, status: 'True'}").unwrap()];
    assert_eq!(failure_verdict(&j, &disrupted), Verdict::Ignore);
    assert_eq!(failure_verdict(&j, &exited("c", 3)), Verdict::Count);
    assert_eq!(failure_verdict(&j, &exited("d", 1)), Verdict::Count, "no rule matched");

    // Ignored failures do not count, but their finalizers go and they are replaced.
    let s = sync(&j, std::slice::from_ref(&disrupted), t(0));
    assert_eq!((s.failed, s.a_finished.as_deref()), (0, None));
    assert_eq!(s.tracking.remove_finalizers.len(), 1);
    assert!(s.tracking.status.uncounted_terminated_pods.clone().unwrap().failed.is_empty());
    assert_eq!(s.plan.create.len(), 2);
    // FailJob: the Job fails at once, whatever the backoffLimit.
    let s = sync(&j, &[fatal], t(0));
    assert_eq!(s.a_finished.as_deref(), Some(FAILURE_TARGET));
    let c = &s.tracking.status.conditions[0];
    assert_eq!(c.reason, "PodFailurePolicy");
    assert!(c.message.contains("exit code 42"), "{}", c.message);
}

#[test]
fn ttl_counts_from_the_finish() {
    let done = format!("conditions: [{{type: Complete, status: 'True', lastTransitionTime: '{}'}}]", at(0));
    let j = job("completions: 1, ttlSecondsAfterFinished: 100", &done);
    assert_eq!(ttl_remaining(&j, t(30)), Some(Duration::from_secs(70)));
    assert_eq!(ttl_remaining(&j, t(130)), Some(Duration::ZERO));
    assert_eq!(ttl_remaining(&job("completions: 1", &done), t(130)), None, "no TTL");
    assert_eq!(
        ttl_remaining(&job("completions: 1, ttlSecondsAfterFinished: 0", ""), t(0)),
        None,
        "not finished"
    );
    let failed = format!("conditions: [{{type: Failed, status: 'True', lastTransitionTime: '{}'}}]", at(10));
    assert_eq!(ttl_remaining(&job("ttlSecondsAfterFinished: 0", &failed), t(10)), Some(Duration::ZERO));
}

#[test]
fn conditions_change_only_when_they_differ() {
    let mut list = Vec::new();
    assert!(!ensure_condition(&mut list, SUSPENDED, "False", "JobResumed", "Job resumed", t(0)));
    assert!(ensure_condition(&mut list, SUSPENDED, "True", "JobSuspended", "Job suspended", t(0)));
    assert!(!ensure_condition(&mut list, SUSPENDED, "True", "JobSuspended", "Job suspended", t(9)));
    assert_eq!(list[0].last_transition_time, at(0));
    assert!(ensure_condition(&mut list, SUSPENDED, "False", "JobResumed", "Job resumed", t(9)));
    assert_eq!((list.len(), list[0].last_transition_time.as_str()), (1, at(9).as_str()));
}

#[test]
fn success_policy_completes_an_indexed_job_early() {
    let spec = "completions: 5, parallelism: 5, completionMode: Indexed, successPolicy: {rules: [{succeededIndexes: '0,2-3'}, {succeededCount: 2}]}";
    let j = job(spec, "");
    // One index done: no rule met yet.
    let pods = [indexed(pod("a", "Succeeded"), 4), indexed(pod("b", "Running"), 1)];
    let s = sync(&j, &pods, t(1));
    assert_eq!(s.a_finished, None);
    // Two indexes: the second rule (any 2) is met; the running pods go, not counted as failed.
    let pods = [
        indexed(pod("a", "Succeeded"), 4),
        indexed(pod("c", "Succeeded"), 0),
        indexed(pod("b", "Running"), 1),
        indexed(pod("d", "Running"), 2),
    ];
    let s = sync(&j, &pods, t(2));
    assert_eq!(s.a_finished.as_deref(), Some(SUCCESS_CRITERIA_MET));
    let victims: Vec<&str> = s.plan.delete.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(victims, ["b", "d"]);
    assert!(s.plan.create.is_empty());
    let st = &s.tracking.status;
    assert_eq!(types(st), [(SUCCESS_CRITERIA_MET, "True", "SuccessPolicy")]);
    assert_eq!(st.conditions[0].message, "Matched rules at index 1");
    assert!(st.uncounted_terminated_pods.as_ref().unwrap().failed.is_empty(), "stopped pods are no failures");
    assert_eq!(s.tracking.finished.as_ref().unwrap().r#type, COMPLETE);
    assert_eq!(s.tracking.finished.as_ref().unwrap().reason, "SuccessPolicy");

    // Listed indexes: all of them, or succeededCount of them; indexes outside the list do not count.
    let spec = "completions: 6, parallelism: 6, completionMode: Indexed, successPolicy: {rules: [{succeededIndexes: '1-4', succeededCount: 3}]}";
    let j = job(spec, "completedIndexes: '1,3,5', succeeded: 3");
    let s = sync(&j, &[indexed(pod("x", "Running"), 2)], t(3));
    assert_eq!(s.a_finished, None, "only 1 and 3 of 1-4");
    let j = job(spec, "completedIndexes: '1-3,5', succeeded: 4");
    let s = sync(&j, &[indexed(pod("x", "Running"), 4)], t(4));
    assert_eq!(s.a_finished.as_deref(), Some(SUCCESS_CRITERIA_MET));
}

fn failure_count(mut p: Pod, n: i32) -> Pod {
    p.meta_mut().annotations.insert(super::per_index::INDEX_FAILURE_COUNT.into(), n.to_string());
    p
}

fn ended_at(mut p: Pod, secs: u64) -> Pod {
    let s = p.status.get_or_insert_with(Default::default);
    s.conditions = vec![
        serde_yaml::from_str(&format!(
            "{{type: Ready, status: 'False', lastTransitionTime: '{}'}}",
            at(secs)
        ))
        .unwrap(),
    ];
    p
}

#[test]
fn backoff_limit_per_index_fails_indexes_on_their_own() {
    let spec = "completions: 3, parallelism: 3, completionMode: Indexed, backoffLimitPerIndex: 1";
    let j = job(spec, "");
    // The first failure of index 1: retried after its own back-off (10 s), carrying its count; the
    // other indexes run meanwhile, with no Job-wide back-off.
    let pods = [
        indexed(failure_count(ended_at(pod("a", "Failed"), 0), 0), 1),
        indexed(failure_count(pod("b", "Running"), 0), 0),
    ];
    let s = sync_with(&j, &pods, t(4), &HashSet::new(), Duration::from_secs(10));
    assert_eq!(s.plan.create, [Some(2)], "index 1 waits, index 2 starts");
    assert_eq!(s.plan.wait, Some(Duration::from_secs(6)));
    assert_eq!(s.tracking.status.failed_indexes.as_deref(), Some(""));
    let s = sync_with(&j, &pods, t(11), &HashSet::new(), Duration::from_secs(10));
    assert_eq!(s.plan.create, [Some(1), Some(2)]);
    assert_eq!(s.plan.index_failures.get(&1), Some(&(1, 0)), "the replacement carries 1 failure");
    // Its second failure reaches the limit: index 1 failed, not run again; the Job goes on.
    let pods = [
        indexed(failure_count(counted(ended_at(pod("a", "Failed"), 0)), 0), 1),
        indexed(failure_count(ended_at(pod("c", "Failed"), 20), 1), 1),
        indexed(pod("b", "Running"), 0),
        indexed(pod("d", "Running"), 2),
    ];
    let j = job(spec, "failed: 1, failedIndexes: ''");
    let s = sync(&j, &pods, t(30));
    assert_eq!(s.a_finished, None);
    assert!(s.plan.create.is_empty());
    assert_eq!(s.tracking.status.failed_indexes.as_deref(), Some("1"));
    assert_eq!(s.failed, 2);
    // Once every other index succeeded: Failed, reason FailedIndexes.
    let j = job(spec, "failed: 2, failedIndexes: '1'");
    let pods = [indexed(pod("b", "Succeeded"), 0), indexed(pod("d", "Succeeded"), 2)];
    let s = sync(&j, &pods, t(40));
    assert_eq!(s.a_finished.as_deref(), Some(FAILURE_TARGET));
    assert_eq!(types(&s.tracking.status)[0], (FAILURE_TARGET, "True", "FailedIndexes"));
    assert_eq!(s.tracking.status.completed_indexes, "0,2");

    // maxFailedIndexes: beyond it, the Job fails at once.
    let spec = "completions: 4, parallelism: 4, completionMode: Indexed, backoffLimitPerIndex: 0, maxFailedIndexes: 1";
    let j = job(spec, "failedIndexes: '0'");
    let pods = [indexed(failure_count(pod("e", "Failed"), 0), 3), indexed(pod("f", "Running"), 1)];
    let s = sync(&j, &pods, t(50));
    assert_eq!(s.a_finished.as_deref(), Some(FAILURE_TARGET));
    assert_eq!(types(&s.tracking.status)[0], (FAILURE_TARGET, "True", "MaxFailedIndexesExceeded"));
    assert_eq!(s.plan.delete.len(), 1, "the running pod is stopped");
}
