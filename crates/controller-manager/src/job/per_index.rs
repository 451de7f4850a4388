//! `backoffLimitPerIndex` of Indexed Jobs (Kubernetes' independent indexes): each index has its own
//! failure count, carried by the pods it creates in the annotations
//! `batch.kubernetes.io/job-index-failure-count` (failures counted so far) and
//! `batch.kubernetes.io/job-index-ignored-failure-count` (failures the pod failure policy ignored).
//! A failed pod fails its index when its index had already failed `backoffLimitPerIndex` times before
//! it, or a `FailIndex` rule of the pod failure policy matched it; a failed index is not run again and
//! goes into `status.failedIndexes`. Replacements of a failed pod wait for their index's own back-off
//! (10 s doubling per counted failure, at most 6 minutes, from the pod's end).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{Job, Pod};

use super::indexes::Intervals;
use super::plan::{BACKOFF_BASE, BACKOFF_MAX};
use super::pods::{Verdict, completion_index, failure_verdict, finished_time, has_finalizer, is_failed};
use super::{is_indexed, spec_of};

/// Failures of the pod's index counted before this pod was created.
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// Failures of the pod's index that the pod failure policy ignored before this pod was created.
pub const INDEX_IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";

/// The Job limits failures per index.
pub fn applies(job: &Job) -> bool {
    is_indexed(job) && spec_of(job).backoff_limit_per_index.is_some()
}

fn annotation(p: &Pod, key: &str) -> i32 {
    p.meta().annotations.get(key).and_then(|v| v.parse().ok()).filter(|n: &i32| *n >= 0).unwrap_or(0)
}

/// Whether the failed pod `p` fails its index (Kubernetes' `isIndexFailed`).
pub fn fails_index(job: &Job, p: &Pod) -> bool {
    match failure_verdict(job, p) {
        Verdict::FailIndex => true,
        Verdict::Ignore | Verdict::FailJob(_) => false,
        Verdict::Count => {
            annotation(p, INDEX_FAILURE_COUNT) >= spec_of(job).backoff_limit_per_index.unwrap_or(i32::MAX)
        }
    }
}

/// The failed indexes: those of the status, plus the indexes failed pods not yet counted fail
/// (Kubernetes' `calculateFailedIndexes`).
pub fn failed_indexes(job: &Job, pods: &[&Pod]) -> Intervals {
    let completions = spec_of(job).completions.unwrap_or_default();
    let recorded = job.status.as_ref().and_then(|s| s.failed_indexes.as_deref()).unwrap_or_default();
    let newly = pods
        .iter()
        .filter(|p| has_finalizer(p) && is_failed(p, job) && fails_index(job, p))
        .filter_map(|p| completion_index(p).filter(|ix| *ix < completions));
    Intervals::parse(recorded, completions).with(newly)
}

/// The last failed pod of each index (by when it ended).
fn last_failed<'a>(job: &Job, pods: &[&'a Pod], now: SystemTime) -> BTreeMap<i32, &'a Pod> {
    let mut last: BTreeMap<i32, (&Pod, SystemTime)> = BTreeMap::new();
    for p in pods.iter().copied().filter(|p| is_failed(p, job)) {
        let Some(ix) = completion_index(p) else { continue };
        let ended = finished_time(p, now);
        if last.get(&ix).is_none_or(|(_, t)| ended >= *t) {
            last.insert(ix, (p, ended));
        }
    }
    last.into_iter().map(|(ix, (p, _))| (ix, p)).collect()
}

/// Per index with a failed pod: the (counted, ignored) failure counts its next pod carries.
pub fn next_failure_counts(job: &Job, pods: &[&Pod], now: SystemTime) -> BTreeMap<i32, (i32, i32)> {
    last_failed(job, pods, now)
        .into_iter()
        .map(|(ix, p)| {
            let (counted, ignored) =
                (annotation(p, INDEX_FAILURE_COUNT), annotation(p, INDEX_IGNORED_FAILURE_COUNT));
            let counts = if failure_verdict(job, p) == Verdict::Ignore {
                (counted, ignored + 1)
            } else {
                (counted + 1, ignored)
            };
            (ix, counts)
        })
        .collect()
}

/// Per index whose last pod failed less than its back-off ago: how long its replacement still waits.
pub fn backoff_remaining(job: &Job, pods: &[&Pod], now: SystemTime) -> BTreeMap<i32, Duration> {
    let counts = next_failure_counts(job, pods, now);
    last_failed(job, pods, now)
        .into_iter()
        .filter_map(|(ix, p)| {
            let failures = counts.get(&ix).map(|c| c.0).unwrap_or(0).clamp(1, 32);
            let mut delay = BACKOFF_BASE;
            for _ in 1..failures {
                delay = delay.saturating_mul(2).min(BACKOFF_MAX);
            }
            let left = delay.saturating_sub(now.duration_since(finished_time(p, now)).unwrap_or_default());
            (!left.is_zero()).then_some((ix, left))
        })
        .collect()
}

/// Writes the failure counts of the pod's index into a new pod's annotations.
pub fn annotate(pod: &mut Pod, (counted, ignored): (i32, i32)) {
    let a = &mut pod.meta_mut().annotations;
    a.insert(INDEX_FAILURE_COUNT.into(), counted.to_string());
    a.insert(INDEX_IGNORED_FAILURE_COUNT.into(), ignored.to_string());
}
