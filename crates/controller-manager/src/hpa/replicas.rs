//! Kubernetes' replica calculator for resource metrics (`GetResourceReplicas`, `GetRawResourceReplicas`),
//! pure: from the target's pods and their metrics, how many replicas keep the metric at its target.
//!
//! The usage ratio (usage / target: utilization of the requests, or the average value) is applied to the
//! ready pods; within the tolerance (10%) nothing changes. Pods being deleted or Failed are ignored;
//! Pending pods, and for cpu pods not yet ready (or whose sample predates readiness) within the cpu
//! initialization period, count as unready; pods without a sample are missing. Then, as Kubernetes
//! rebalances: on a scale-down missing pods are assumed at 100% of their request (the target, for
//! targets above 100%), on a scale-up at 0, and unready pods at 0 on a scale-up; the ratio is computed
//! again with them, and a result that would change the direction of the scale keeps the current count.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use navarch_api::v1::Pod;

/// `--horizontal-pod-autoscaler-tolerance`.
pub const TOLERANCE: f64 = 0.1;
/// `--horizontal-pod-autoscaler-cpu-initialization-period`.
pub const CPU_INITIALIZATION_PERIOD: Duration = Duration::from_secs(300);
/// `--horizontal-pod-autoscaler-initial-readiness-delay`.
pub const DELAY_OF_INITIAL_READINESS_STATUS: Duration = Duration::from_secs(30);

/// One pod's sample: the resource's usage in thousandths (milli-cores, milli-bytes), when and over what
/// window it was taken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodMetric {
    pub value: i64,
    pub timestamp: SystemTime,
    pub window: Duration,
}

/// Samples by pod name.
pub type PodMetrics = BTreeMap<String, PodMetric>;

/// What a resource metric's target is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Percent of the pods' requests.
    Utilization(i32),
    /// An average value per pod, in thousandths.
    AverageValue(i64),
}

/// The calculator's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    pub replicas: i32,
    /// The average utilization in percent of the requests (Utilization targets).
    pub utilization: Option<i32>,
    /// The average usage per pod, in thousandths.
    pub raw_average: i64,
}

fn parse_time(s: &str) -> Option<SystemTime> {
    navarch_api::rfc3339::parse(s).ok()
}

struct Groups {
    ready: usize,
    unready: BTreeSet<String>,
    missing: BTreeSet<String>,
    ignored: BTreeSet<String>,
}

/// `groupPods`.
fn group_pods(pods: &[&Pod], metrics: &PodMetrics, resource: &str, now: SystemTime) -> Groups {
    let mut g =
        Groups { ready: 0, unready: BTreeSet::new(), missing: BTreeSet::new(), ignored: BTreeSet::new() };
    for pod in pods {
        let name = pod.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let deleting = pod.metadata.as_ref().is_some_and(|m| !m.deletion_timestamp.is_empty());
        if deleting || status.phase == "Failed" {
            g.ignored.insert(name);
            continue;
        }
        if status.phase == "Pending" {
            g.unready.insert(name);
            continue;
        }
        let Some(metric) = metrics.get(&name) else {
            g.missing.insert(name);
            continue;
        };
        if resource == "cpu" {
            let ready = status.conditions.iter().find(|c| c.r#type == "Ready");
            let start = parse_time(&status.start_time);
            let unready = match (ready, start) {
                (Some(c), Some(start)) => {
                    let transition = parse_time(&c.last_transition_time).unwrap_or(start);
                    if start + CPU_INITIALIZATION_PERIOD > now {
                        c.status == "False" || metric.timestamp < transition + metric.window
                    } else {
                        c.status == "False" && start + DELAY_OF_INITIAL_READINESS_STATUS > transition
                    }
                }
                _ => true,
            };
            if unready {
                g.unready.insert(name);
                continue;
            }
        }
        g.ready += 1;
    }
    g
}

/// `calculatePodRequests`: each pod's request of `resource` (of `container` only, when named) in
/// thousandths, its app containers and sidecars (restartable init containers) summed.
pub fn pod_requests(pods: &[&Pod], container: &str, resource: &str) -> Result<BTreeMap<String, i64>, String> {
    let mut out = BTreeMap::new();
    for pod in pods {
        let name = pod.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("");
        let spec = pod.spec.clone().unwrap_or_default();
        let sidecars = spec.init_containers.iter().filter(|c| c.restart_policy.as_deref() == Some("Always"));
        let mut sum = 0i64;
        for c in spec.containers.iter().chain(sidecars) {
            if !container.is_empty() && c.name != container {
                continue;
            }
            let request = c.resources.as_ref().and_then(|r| r.requests.get(resource));
            match request.and_then(|q| q.amount().ok()) {
                Some(a) => sum += a.milli_value(),
                None => {
                    return Err(format!(
                        "missing request for {resource} in container {} of Pod {name}",
                        c.name
                    ));
                }
            }
        }
        out.insert(name.to_string(), sum);
    }
    Ok(out)
}

/// The usage ratio of `metrics` against `target`, the utilization (percent) and the raw average.
fn usage_ratio(
    metrics: &PodMetrics,
    target: Target,
    requests: &BTreeMap<String, i64>,
) -> Result<(f64, Option<i32>, i64), String> {
    match target {
        Target::Utilization(percent) => {
            let (mut used, mut requested, mut n) = (0i64, 0i64, 0i64);
            for (pod, m) in metrics {
                if let Some(r) = requests.get(pod) {
                    used += m.value;
                    requested += r;
                    n += 1;
                }
            }
            if requested == 0 {
                return Err("no metrics returned matched known pods".into());
            }
            let utilization = i32::try_from(used * 100 / requested).unwrap_or(i32::MAX);
            Ok((f64::from(utilization) / f64::from(percent), Some(utilization), used / n))
        }
        Target::AverageValue(per_pod) => {
            let total: i64 = metrics.values().map(|m| m.value).sum();
            let average = total / i64::try_from(metrics.len()).unwrap_or(1).max(1);
            Ok((average as f64 / per_pod as f64, None, average))
        }
    }
}

/// How many replicas `target` asks for, given the target's `pods` (those its selector picks), their
/// `metrics` of `resource` (of `container` only, when named), and the `current` replicas.
pub fn resource_replicas(
    current: i32,
    target: Target,
    resource: &str,
    container: &str,
    pods: &[&Pod],
    mut metrics: PodMetrics,
    now: SystemTime,
) -> Result<Proposal, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let g = group_pods(pods, &metrics, resource, now);
    metrics.retain(|pod, _| !g.ignored.contains(pod) && !g.unready.contains(pod));
    if metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let requests = match target {
        Target::Utilization(_) => pod_requests(pods, container, resource)?,
        Target::AverageValue(_) => BTreeMap::new(),
    };
    let (ratio, utilization, raw_average) = usage_ratio(&metrics, target, &requests)?;
    let proposal = |replicas| Proposal { replicas, utilization, raw_average };
    let scale_up_with_unready = !g.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && g.missing.is_empty() {
        if (1.0 - ratio).abs() <= TOLERANCE {
            return Ok(proposal(current));
        }
        return Ok(proposal(ceil(ratio * g.ready as f64)));
    }
    let stamp = PodMetric { value: 0, timestamp: now, window: Duration::ZERO };
    for pod in &g.missing {
        let value = if ratio < 1.0 {
            match target {
                Target::Utilization(percent) => {
                    requests.get(pod).copied().unwrap_or(0) * i64::from(percent.max(100)) / 100
                }
                Target::AverageValue(per_pod) => per_pod,
            }
        } else {
            0
        };
        if ratio != 1.0 {
            metrics.insert(pod.clone(), PodMetric { value, ..stamp });
        }
    }
    if scale_up_with_unready {
        for pod in &g.unready {
            metrics.insert(pod.clone(), stamp);
        }
    }
    let (new_ratio, _, _) = usage_ratio(&metrics, target, &requests)?;
    if (1.0 - new_ratio).abs() <= TOLERANCE
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok(proposal(current));
    }
    let replicas = ceil(new_ratio * metrics.len() as f64);
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(proposal(current));
    }
    Ok(proposal(replicas))
}

fn ceil(v: f64) -> i32 {
    // The ratio is finite and the pod count small: the conversion cannot overflow in practice.
    #[allow(clippy::cast_possible_truncation)]
    let r = v.ceil() as i32;
    r
}

#[cfg(test)]
#[path = "replicas_tests.rs"]
mod tests;
