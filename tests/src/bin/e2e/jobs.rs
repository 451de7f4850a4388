//! Scenario 12: Jobs on the real nodes, as users write them (busybox pods that sleep, print or fail):
//!
//! 1. `completions: 5, parallelism: 2`: exactly 5 succeeded pods, never more than 2 running at once
//!    (sampled), condition `Complete`; `kubectl wait --for=condition=complete` and `kubectl get jobs`;
//! 2. pods that exit 1 with `backoffLimit: 1`: condition `Failed`, reason `BackoffLimitExceeded`, after
//!    exactly 2 failed pods (the second one after the 10 s back-off);
//! 3. an Indexed Job of 3: each index 0..2 runs once (`JOB_COMPLETION_INDEX` printed by the pod,
//!    the index annotation), `completedIndexes: 0-2`;
//!    with a `successPolicy` (`succeededIndexes: "0"`), an Indexed Job of 3 whose other indexes sleep
//!    300 s completes as soon as index 0 succeeded (reason `SuccessPolicy`), its other pods deleted;
//!    with `backoffLimitPerIndex: 0`, an Indexed Job of 2 whose index 1 exits 1: `Failed`, reason
//!    `FailedIndexes`, `failedIndexes: 1`, `completedIndexes: 0`, one pod per index;
//! 4. `activeDeadlineSeconds: 3` on a pod sleeping 300 s: `Failed`, reason `DeadlineExceeded`, the
//!    pod deleted;
//! 5. `ttlSecondsAfterFinished: 2`: the finished Job and its pods deleted;
//! 6. kill -9 of the controller-manager in the middle of a 20-completion Job (parallelism 4): after
//!    its restart, exactly 20 succeeded pods, no extra pod, nothing counted failed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use navarch_tests::eventually_blocking;
use serde_json::Value;

use super::{allow, apply, cluster, ensure_namespace, kubectl, nv, nv_try, secs};

/// A Job `name` of busybox pods running `script` (restartPolicy Never) with extra spec fields.
fn job(name: &str, spec: &str, script: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n{spec}  template:\n    spec:\n      \
         restartPolicy: Never\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: c\n        \
         image: busybox:1.36\n        command: [sh, -c, '{script}']\n"
    )
}

fn job_json(name: &str) -> Option<Value> {
    serde_json::from_str(&nv_try(&["get", "job", name, "-o", "json"]).ok()?).ok()
}

/// The Job's condition of `kind` with status True: its reason.
fn condition(job: &Value, kind: &str) -> Option<String> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == "True")
        .map(|c| c["reason"].as_str().unwrap_or_default().to_string())
}

fn finished(name: &str, kind: &str, secs: u64) -> Value {
    eventually_blocking(format!("job {name} {kind}"), allow(secs), || {
        job_json(name).filter(|j| condition(j, kind).is_some())
    })
}

/// The pods of Job `name`: (name, phase, deleting, index annotation).
fn job_pods(name: &str) -> Vec<(String, String, bool, String)> {
    let text = nv(&["get", "pods", "-l", &format!("batch.kubernetes.io/job-name={name}"), "-o", "json"]);
    let v: Value = serde_json::from_str(&text).expect("pods as JSON");
    v["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let m = &p["metadata"];
            (
                m["name"].as_str().unwrap_or_default().to_string(),
                p["status"]["phase"].as_str().unwrap_or_default().to_string(),
                !m["deletionTimestamp"].is_null(),
                m["annotations"]["batch.kubernetes.io/job-completion-index"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

fn phases(pods: &[(String, String, bool, String)]) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for (_, phase, _, _) in pods {
        *by.entry(phase.clone()).or_insert(0) += 1;
    }
    by
}

pub fn scenario_12_jobs() {
    println!(
        "[12] Jobs: completions and parallelism, backoffLimit, Indexed, deadline, TTL, controller-manager kill -9"
    );
    let t = Instant::now();
    ensure_namespace();
    apply(&job("count", "  completions: 5\n  parallelism: 2\n", "sleep 1"));
    apply(&job("fail", "  backoffLimit: 1\n", "echo failing; exit 1"));
    apply(&job(
        "indexed",
        "  completions: 3\n  parallelism: 3\n  completionMode: Indexed\n",
        "echo index=$JOB_COMPLETION_INDEX",
    ));
    apply(&job("deadline", "  activeDeadlineSeconds: 3\n", "sleep 300"));
    apply(&job(
        "per-index",
        "  completions: 2\n  parallelism: 2\n  completionMode: Indexed\n  backoffLimitPerIndex: 0\n",
        "[ $JOB_COMPLETION_INDEX = 0 ]",
    ));
    apply(&job(
        "early",
        "  completions: 3\n  parallelism: 3\n  completionMode: Indexed\n  successPolicy: {rules: [{succeededIndexes: '0'}]}\n",
        "[ $JOB_COMPLETION_INDEX = 0 ] || sleep 300",
    ));
    apply(&job("ttl", "  ttlSecondsAfterFinished: 2\n", "true"));

    // 1. Never more than `parallelism` pods running or pending, sampled while it runs.
    let mut most_active = 0;
    let count = eventually_blocking("job count Complete", allow(120), || {
        let active = job_pods("count")
            .iter()
            .filter(|(_, ph, del, _)| !del && (ph == "Running" || ph == "Pending"))
            .count();
        most_active = most_active.max(active);
        job_json("count").filter(|j| condition(j, "Complete").is_some())
    });
    let pods = job_pods("count");
    assert_eq!(count["status"]["succeeded"], 5, "{count}");
    assert_eq!(phases(&pods).get("Succeeded"), Some(&5), "exactly 5 succeeded pods: {pods:?}");
    assert_eq!(pods.len(), 5, "no extra pod: {pods:?}");
    assert!(most_active <= 2, "at most parallelism 2 pods at once, saw {most_active}");
    kubectl(&["wait", "-n", super::NS, "--for=condition=complete", "job/count", "--timeout=10s"]);
    let table = kubectl(&["get", "jobs", "-n", super::NS, "count"]);
    assert!(table.contains("COMPLETIONS") && table.contains("5/5"), "{table}");
    println!("    5 of 5 completed, at most {most_active} at once, in {}", secs(t.elapsed()));

    // 2. backoffLimit 1: two failed pods, then Failed.
    let fail = finished("fail", "Failed", 90);
    assert_eq!(condition(&fail, "Failed").as_deref(), Some("BackoffLimitExceeded"), "{fail}");
    assert_eq!(fail["status"]["failed"], 2, "{fail}");
    assert_eq!(phases(&job_pods("fail")).get("Failed"), Some(&2));

    // 3. Indexed: each index once.
    let indexed = finished("indexed", "Complete", 90);
    assert_eq!(indexed["status"]["completedIndexes"], "0-2", "{indexed}");
    let pods = job_pods("indexed");
    let mut printed = Vec::new();
    for (pod, phase, _, index) in &pods {
        assert_eq!(phase, "Succeeded", "{pods:?}");
        let log = nv(&["logs", pod]);
        assert_eq!(log.trim(), format!("index={index}"), "pod {pod} printed its own index");
        printed.push(index.clone());
    }
    printed.sort();
    assert_eq!(printed, ["0", "1", "2"], "each index exactly once: {pods:?}");

    // 3b. successPolicy: done when index 0 is.
    let early = finished("early", "Complete", 90);
    assert_eq!(condition(&early, "Complete").as_deref(), Some("SuccessPolicy"), "{early}");
    assert_eq!(condition(&early, "SuccessCriteriaMet").as_deref(), Some("SuccessPolicy"), "{early}");
    assert_eq!(early["status"]["completedIndexes"], "0", "{early}");
    eventually_blocking("the early Job's other pods stopped", allow(30), || {
        job_pods("early").iter().all(|(_, ph, del, _)| *del || ph == "Failed" || ph == "Succeeded")
    });

    // 3c. backoffLimitPerIndex: index 1 fails alone, the Job fails once index 0 is done.
    let per_index = finished("per-index", "Failed", 90);
    assert_eq!(condition(&per_index, "Failed").as_deref(), Some("FailedIndexes"), "{per_index}");
    assert_eq!(per_index["status"]["failedIndexes"], "1", "{per_index}");
    assert_eq!(per_index["status"]["completedIndexes"], "0", "{per_index}");
    assert_eq!(job_pods("per-index").len(), 2, "index 1 not retried");

    // 4. activeDeadlineSeconds.
    let deadline = finished("deadline", "Failed", 60);
    assert_eq!(condition(&deadline, "Failed").as_deref(), Some("DeadlineExceeded"), "{deadline}");
    eventually_blocking("the deadline Job's pod gone or ended", allow(30), || {
        job_pods("deadline").iter().all(|(_, ph, del, _)| *del || ph == "Failed" || ph == "Succeeded")
    });

    // 5. ttlSecondsAfterFinished.
    eventually_blocking("job ttl deleted after it finished", allow(60), || job_json("ttl").is_none());
    eventually_blocking("and its pods", allow(60), || job_pods("ttl").is_empty());
    println!("    backoffLimit, Indexed, deadline and TTL as Kubernetes; {}", secs(t.elapsed()));

    // 6. kill -9 of the controller-manager in the middle of 20 completions.
    let t6 = Instant::now();
    apply(&job("twenty", "  completions: 20\n  parallelism: 4\n", "sleep 2"));
    eventually_blocking("a few of twenty succeeded", allow(60), || {
        job_json("twenty").is_some_and(|j| j["status"]["succeeded"].as_i64().unwrap_or(0) >= 4)
    });
    cluster("kill", &[("C", "controller-manager")]);
    std::thread::sleep(Duration::from_secs(2));
    cluster("up", &[]);
    let twenty = finished("twenty", "Complete", 180);
    let pods = job_pods("twenty");
    assert_eq!(twenty["status"]["succeeded"], 20, "{twenty}");
    assert!(twenty["status"]["failed"].as_i64().unwrap_or(0) == 0, "{twenty}");
    assert_eq!(pods.len(), 20, "no extra pod: {:?}", phases(&pods));
    assert_eq!(phases(&pods).get("Succeeded"), Some(&20));
    println!("    20 of 20 across a controller-manager kill -9, 20 pods, in {}", secs(t6.elapsed()));
    for name in ["count", "fail", "indexed", "early", "per-index", "deadline", "twenty"] {
        nv(&["delete", "job", name]);
    }
}
