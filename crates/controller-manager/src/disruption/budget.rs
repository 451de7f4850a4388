//! The arithmetic of a PodDisruptionBudget, pure (Kubernetes' `getExpectedPodCount`,
//! `buildDisruptedPodMap`, `countHealthyPods` and the status of `updatePdbStatus`): what the reconcile in
//! [`super`] computes from the stores, separated so it is tested without them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use navarch_api::disruption::{self, DELETION_TIMEOUT};
use navarch_api::v1::{Pod, PodDisruptionBudgetSpec, PodDisruptionBudgetStatus};

/// How many pods a budget counts and how many of them must stay healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub expected_pods: i32,
    pub desired_healthy: i32,
}

/// `getExpectedPodCount`: an integer `minAvailable` counts the selected pods (`selected`) and needs that
/// many healthy; a percentage, or `maxUnavailable`, counts the pods' controllers' scale (`scale()`, only
/// asked then) and takes the percentage of it rounded up. Neither set: nothing expected, nothing needed.
pub fn budget(
    spec: &PodDisruptionBudgetSpec,
    selected: i32,
    scale: impl FnOnce() -> Result<i32, String>,
) -> Result<Budget, String> {
    if let Some(max_unavailable) = &spec.max_unavailable {
        let expected_pods = scale()?;
        let unavailable = disruption::scaled_value(max_unavailable, expected_pods, true)?;
        return Ok(Budget { expected_pods, desired_healthy: (expected_pods - unavailable).max(0) });
    }
    match &spec.min_available {
        Some(min) if min.as_int().is_some() => {
            Ok(Budget { expected_pods: selected, desired_healthy: min.as_int().unwrap_or_default() })
        }
        Some(min) => {
            let expected_pods = scale()?;
            Ok(Budget { expected_pods, desired_healthy: disruption::scaled_value(min, expected_pods, true)? })
        }
        None => Ok(Budget { expected_pods: 0, desired_healthy: 0 }),
    }
}

/// When an RFC 3339 time of `disruptedPods` was; `None` when it does not parse (treated as long past).
fn parse_time(t: &str) -> Option<SystemTime> {
    navarch_api::rfc3339::parse(t).ok()
}

/// `buildDisruptedPodMap`: the entries of `disrupted` still worth keeping — their pod exists, is not
/// being deleted yet, and the eviction is less than [`DELETION_TIMEOUT`] old — and when the soonest of
/// them expires (to look again then). `expired` gets the pods whose deletion never came.
pub fn disrupted_pods(
    pods: &[Arc<Pod>],
    disrupted: &BTreeMap<String, String>,
    now: SystemTime,
    expired: &mut Vec<String>,
) -> (BTreeMap<String, String>, Option<SystemTime>) {
    let mut kept = BTreeMap::new();
    let mut recheck: Option<SystemTime> = None;
    for p in pods {
        let m = p.metadata.clone().unwrap_or_default();
        if !m.deletion_timestamp.is_empty() {
            continue;
        }
        let Some(when) = disrupted.get(&m.name) else { continue };
        let deadline = parse_time(when).map(|t| t + DELETION_TIMEOUT);
        match deadline {
            Some(d) if d >= now => {
                recheck = Some(recheck.map_or(d, |r| r.min(d)));
                kept.insert(m.name.clone(), when.clone());
            }
            _ => expired.push(m.name.clone()),
        }
    }
    (kept, recheck)
}

/// `countHealthyPods`: Ready pods that are neither being deleted nor just evicted.
pub fn current_healthy(pods: &[Arc<Pod>], disrupted: &BTreeMap<String, String>, now: SystemTime) -> i32 {
    let count = pods
        .iter()
        .filter(|p| p.metadata.as_ref().is_none_or(|m| m.deletion_timestamp.is_empty()))
        .filter(|p| {
            let name = p.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or_default();
            let evicted =
                disrupted.get(name).and_then(|t| parse_time(t)).is_some_and(|t| t + DELETION_TIMEOUT > now);
            !evicted
        })
        .filter(|p| disruption::is_pod_ready(p))
        .count();
    i32::try_from(count).unwrap_or(i32::MAX)
}

/// `updatePdbStatus`'s status: disruptions allowed only above the desired healthy pods and while pods
/// are expected at all (a budget that matched nothing stays safe when its first pods appear); the
/// `DisruptionAllowed` condition follows.
pub fn status(
    old: &PodDisruptionBudgetStatus,
    generation: i64,
    budget: Budget,
    current_healthy: i32,
    disrupted_pods: BTreeMap<String, String>,
    now: &str,
) -> PodDisruptionBudgetStatus {
    let allowed = current_healthy - budget.desired_healthy;
    let disruptions_allowed = if budget.expected_pods <= 0 || allowed <= 0 { 0 } else { allowed };
    let mut status = PodDisruptionBudgetStatus {
        observed_generation: generation,
        disrupted_pods,
        disruptions_allowed,
        current_healthy,
        desired_healthy: budget.desired_healthy,
        expected_pods: budget.expected_pods,
        conditions: old.conditions.clone(),
    };
    disruption::update_disruption_allowed_condition(&mut status, now);
    status
}

/// `failSafe`: no disruption allowed, `DisruptionAllowed` False with reason SyncFailed and the error.
pub fn failed_status(old: &PodDisruptionBudgetStatus, error: &str, now: &str) -> PodDisruptionBudgetStatus {
    let mut status = PodDisruptionBudgetStatus { disruptions_allowed: 0, ..old.clone() };
    let c = navarch_api::v1::Condition {
        r#type: disruption::DISRUPTION_ALLOWED.into(),
        status: "False".into(),
        reason: disruption::SYNC_FAILED.into(),
        message: error.to_string(),
        observed_generation: status.observed_generation,
        ..Default::default()
    };
    disruption::set_condition(&mut status.conditions, c, now);
    status
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec(y: &str) -> PodDisruptionBudgetSpec {
        serde_yaml::from_str(y).unwrap()
    }

    fn scale(n: i32) -> impl FnOnce() -> Result<i32, String> {
        move || Ok(n)
    }

    fn no_scale() -> Result<i32, String> {
        panic!("an integer minAvailable needs no controller scale")
    }

    #[test]
    fn integer_min_available_counts_selected_pods() {
        let b = budget(&spec("{minAvailable: 2}"), 3, no_scale).unwrap();
        assert_eq!(b, Budget { expected_pods: 3, desired_healthy: 2 });
    }

    #[test]
    fn percentages_of_the_controllers_scale_round_up() {
        // 50% of 3 is 1.5: minAvailable rounds up to 2.
        assert_eq!(budget(&spec("{minAvailable: 50%}"), 2, scale(3)).unwrap().desired_healthy, 2);
        assert_eq!(budget(&spec("{minAvailable: 50%}"), 2, scale(3)).unwrap().expected_pods, 3);
        assert_eq!(budget(&spec("{minAvailable: 100%}"), 5, scale(5)).unwrap().desired_healthy, 5);
        // maxUnavailable 34% of 3 rounds up to 2 unavailable: 1 healthy needed.
        assert_eq!(budget(&spec("{maxUnavailable: 34%}"), 3, scale(3)).unwrap().desired_healthy, 1);
        // An integer maxUnavailable still counts the scale.
        assert_eq!(
            budget(&spec("{maxUnavailable: 1}"), 2, scale(4)).unwrap(),
            Budget { expected_pods: 4, desired_healthy: 3 }
        );
        // More unavailable than expected: nothing needed.
        assert_eq!(budget(&spec("{maxUnavailable: 5}"), 2, scale(2)).unwrap().desired_healthy, 0);
        assert_eq!(
            budget(&spec("{}"), 4, no_scale).unwrap(),
            Budget { expected_pods: 0, desired_healthy: 0 }
        );
        let e = budget(&spec("{minAvailable: 50%}"), 2, || Err("found no controllers for pod \"p\"".into()));
        assert_eq!(e.unwrap_err(), "found no controllers for pod \"p\"");
    }

    fn pod(name: &str, ready: bool, deleting: bool) -> Arc<Pod> {
        let del = if deleting { ", deletionTimestamp: '2026-01-01T00:00:00Z'" } else { "" };
        let status = if ready { "True" } else { "False" };
        Arc::new(
            serde_yaml::from_str(&format!(
                "{{metadata: {{name: {name}{del}}}, status: {{phase: Running, conditions: [{{type: Ready, status: '{status}'}}]}}}}"
            ))
            .unwrap(),
        )
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn stamp(t: SystemTime) -> String {
        humantime::format_rfc3339_seconds(t).to_string()
    }

    #[test]
    fn disrupted_pods_are_pruned_and_not_counted() {
        let pods =
            vec![pod("a", true, false), pod("b", true, false), pod("c", true, true), pod("d", false, false)];
        let disrupted: BTreeMap<String, String> = [
            ("a".to_string(), stamp(at(0))), // just evicted: kept, not healthy
            ("b".to_string(), stamp(at(0) - Duration::from_secs(500))), // never deleted: dropped
            ("c".to_string(), stamp(at(0))), // being deleted: dropped
            ("gone".to_string(), stamp(at(0))), // no such pod: dropped
        ]
        .into();
        let mut expired = Vec::new();
        let (kept, recheck) = disrupted_pods(&pods, &disrupted, at(10), &mut expired);
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(recheck, Some(at(120)));
        assert_eq!(expired, ["b"]);
        // a: evicted; b: healthy; c: being deleted; d: not Ready.
        assert_eq!(current_healthy(&pods, &kept, at(10)), 1);
        // After the timeout a counts again.
        assert_eq!(current_healthy(&pods, &kept, at(121)), 2);
    }

    #[test]
    fn status_and_condition() {
        let b = Budget { expected_pods: 3, desired_healthy: 2 };
        let s = status(&Default::default(), 4, b, 3, BTreeMap::new(), "t");
        assert_eq!((s.disruptions_allowed, s.current_healthy, s.observed_generation), (1, 3, 4));
        assert_eq!(s.conditions[0].reason, "SufficientPods");
        let s = status(&s, 4, b, 2, BTreeMap::new(), "t2");
        assert_eq!(s.disruptions_allowed, 0);
        assert_eq!(
            (s.conditions[0].status.as_str(), s.conditions[0].reason.as_str()),
            ("False", "InsufficientPods")
        );
        // Nothing expected: nothing allowed, however many are healthy.
        let s = status(&s, 4, Budget { expected_pods: 0, desired_healthy: 0 }, 2, BTreeMap::new(), "t3");
        assert_eq!(s.disruptions_allowed, 0);
        let f = failed_status(&s, "found no controllers for pod \"x\"", "t4");
        assert_eq!(
            (f.conditions[0].reason.as_str(), f.conditions[0].message.as_str()),
            ("SyncFailed", "found no controllers for pod \"x\"")
        );
    }
}
