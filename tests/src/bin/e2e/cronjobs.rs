//! Scenario 14: CronJobs on the real nodes (busybox pods), in real time (every-minute schedules, so
//! about three minutes):
//!
//! 1. `*/1 * * * *` (Allow, `successfulJobsHistoryLimit: 1`): a Job `tick-<minutes since the epoch>`
//!    with the scheduled-timestamp annotation each minute, each Complete with its pod's output; after
//!    two runs only the newest finished Job is kept;
//! 2. Forbid with a pod sleeping 300 s: the next minute starts nothing (`JobAlreadyActive`);
//! 3. Replace with the same pod: the next minute deletes the running Job and starts a new one;
//! 4. `kubectl create job --from=cronjob/manual` (a CronJob created suspended, with the default history
//!    limits: tick's limit of 1 would prune the Job as soon as it finished, as Kubernetes does) runs one
//!    now (annotation `instantiate: manual`), and the suspended CronJob starts none of its own;
//! 5. `suspend: true` (a merge patch with kubectl): no new Job the next minute;
//! 6. `kubectl get cronjobs` shows kubectl's columns.

use std::time::{Duration, Instant};

use navarch_tests::eventually_blocking;
use serde_json::Value;

use super::{allow, apply, ensure_namespace, kubectl, nv, nv_try, secs};

/// A CronJob `name` on `schedule` of busybox pods running `script`, with extra spec fields.
fn cronjob(name: &str, spec: &str, script: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: {name}}}\nspec:\n  schedule: '*/1 * * * *'\n{spec}  \
         jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          \
         terminationGracePeriodSeconds: 1\n          containers:\n          - name: c\n            \
         image: busybox:1.36\n            command: [sh, -c, '{script}']\n"
    )
}

fn json(args: &[&str]) -> Option<Value> {
    serde_json::from_str(&nv_try(args).ok()?).ok()
}

/// The Jobs controlled by CronJob `owner`: (name, finished condition, annotations).
fn jobs_of(owner: &str) -> Vec<(String, String, Value)> {
    let Some(list) = json(&["get", "jobs", "-o", "json"]) else { return vec![] };
    let mut out: Vec<(String, String, Value)> = list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|j| {
            j["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["kind"] == "CronJob" && r["name"] == owner))
        })
        .map(|j| {
            let done = j["status"]["conditions"]
                .as_array()
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
                        .map(|c| c["type"].as_str().unwrap_or_default().to_string())
                })
                .unwrap_or_default();
            (
                j["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                done,
                j["metadata"]["annotations"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn events_of(name: &str) -> Vec<String> {
    let Some(list) = json(&["get", "events", "-o", "json"]) else { return vec![] };
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["involvedObject"]["kind"] == "CronJob" && e["involvedObject"]["name"] == name)
        .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

pub fn scenario_14_cronjobs() {
    println!("[14] CronJobs: every minute, history limit, Forbid, Replace, create job --from, suspend");
    let t = Instant::now();
    ensure_namespace();
    apply(&cronjob("tick", "  successfulJobsHistoryLimit: 1\n", "date"));
    apply(&cronjob("slow", "  concurrencyPolicy: Forbid\n", "sleep 300"));
    apply(&cronjob("swap", "  concurrencyPolicy: Replace\n", "sleep 300"));
    apply(&cronjob("manual", "  suspend: true\n", "date"));

    // 1. The first run: a Job named after its minute, Complete, its pod's output in the logs.
    let first = eventually_blocking("tick's first Job Complete", allow(150), || {
        jobs_of("tick").into_iter().find(|(_, done, _)| done == "Complete")
    });
    let scheduled =
        first.2["batch.kubernetes.io/cronjob-scheduled-timestamp"].as_str().unwrap_or_default().to_string();
    let minutes = navarch_api::rfc3339::parse(&scheduled)
        .expect("the scheduled-timestamp annotation is RFC 3339")
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60;
    assert_eq!(first.0, format!("tick-{minutes}"), "named after the scheduled minute");
    let log = kubectl(&["logs", "-n", super::NS, &format!("job/{}", first.0)]);
    assert!(!log.trim().is_empty(), "the pod printed the date");
    let cj = json(&["get", "cronjob", "tick", "-o", "json"]).expect("tick");
    assert_eq!(cj["status"]["lastScheduleTime"].as_str(), Some(scheduled.as_str()), "{cj}");
    println!("    {} Complete ({}), in {}", first.0, log.trim(), secs(t.elapsed()));
    let slow_first = eventually_blocking("slow's Job", allow(30), || jobs_of("slow").first().cloned());
    let swap_first = eventually_blocking("swap's Job", allow(30), || jobs_of("swap").first().cloned());

    // 4. Run one now, by hand.
    assert_eq!(
        kubectl(&["create", "job", "by-hand", "--from=cronjob/manual", "-n", super::NS]).trim(),
        "job.batch/by-hand created"
    );
    let by_hand = json(&["get", "job", "by-hand", "-o", "json"]).expect("by-hand");
    assert_eq!(
        by_hand["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"], "manual",
        "{by_hand}"
    );
    eventually_blocking("by-hand Complete", allow(60), || {
        jobs_of("manual").iter().any(|(n, done, _)| n == "by-hand" && done == "Complete").then_some(())
    });

    // 2, 3 and the history limit, the next minute.
    let second = eventually_blocking("tick's second run, the first pruned", allow(90), || {
        let l = jobs_of("tick");
        let done: Vec<_> = l.iter().filter(|(n, d, _)| d == "Complete" && n != "by-hand").collect();
        (done.len() == 1 && done[0].0 != first.0).then(|| done[0].0.clone())
    });
    let swapped = eventually_blocking("swap replaced its Job", allow(60), || {
        let l = jobs_of("swap");
        (l.len() == 1 && l[0].0 != swap_first.0).then(|| l[0].0.clone())
    });
    eventually_blocking("slow skipped its second run", allow(60), || {
        events_of("slow").iter().any(|r| r == "JobAlreadyActive").then_some(())
    });
    let slow: Vec<String> = jobs_of("slow").into_iter().map(|j| j.0).collect();
    assert_eq!(slow, [slow_first.0], "Forbid started nothing while its Job runs");
    assert!(events_of("swap").iter().any(|r| r == "SuccessfulDelete"));
    println!(
        "    {second} kept alone, {swapped} replaced {}, slow skipped, in {}",
        swap_first.0,
        secs(t.elapsed())
    );

    // 5. Suspended: nothing new for over a minute.
    kubectl(&[
        "patch",
        "cronjob",
        "tick",
        "-n",
        super::NS,
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":true}}"#,
    ]);
    let before: Vec<String> = jobs_of("tick").into_iter().map(|j| j.0).collect();
    std::thread::sleep(Duration::from_secs(70));
    let after: Vec<String> = jobs_of("tick").into_iter().map(|j| j.0).collect();
    assert_eq!(before, after, "a suspended CronJob starts nothing");

    // 6. kubectl's columns.
    let table = kubectl(&["get", "cronjobs", "-n", super::NS]);
    let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"],
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("tick") && l.contains("True")), "{table}");
    println!("    suspend, get cronjobs: ok in {}", secs(t.elapsed()));
    let manual: Vec<String> = jobs_of("manual").into_iter().map(|j| j.0).collect();
    assert_eq!(manual, ["by-hand"], "the suspended CronJob started no Job of its own");
    for name in ["tick", "slow", "swap", "manual"] {
        nv(&["delete", "cronjob", name]);
    }
}
