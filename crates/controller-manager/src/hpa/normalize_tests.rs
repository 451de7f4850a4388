//! Hand-computed cases of stabilization, rate policies and clamping.

use std::time::{Duration, SystemTime};

use navarch_api::v1::{HorizontalPodAutoscalerBehavior, HpaScalingPolicy, HpaScalingRules};

use super::*;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn ago(s: u64) -> SystemTime {
    now() - Duration::from_secs(s)
}

fn args(
    behavior: Option<&HorizontalPodAutoscalerBehavior>,
    min: i32,
    max: i32,
    current: i32,
    desired: i32,
) -> Args<'_> {
    Args { behavior, min, max, current, desired }
}

fn rules(window: i32, select: &str, policies: &[(&str, i32, i32)]) -> HpaScalingRules {
    HpaScalingRules {
        stabilization_window_seconds: Some(window),
        select_policy: Some(select.into()),
        policies: policies
            .iter()
            .map(|(t, v, p)| HpaScalingPolicy { r#type: t.to_string(), value: *v, period_seconds: *p })
            .collect(),
    }
}

fn defaults() -> HorizontalPodAutoscalerBehavior {
    HorizontalPodAutoscalerBehavior { scale_up: None, scale_down: None }
}

#[test]
fn without_behavior_at_most_double_and_at_least_four() {
    let mut h = History::default();
    let n = normalize(&args(None, 1, 10, 2, 9), &mut h, now());
    assert_eq!((n.replicas, n.limited, n.limit.0), (4, true, "ScaleUpLimit"));
    let n = normalize(&args(None, 1, 10, 8, 30), &mut History::default(), now());
    assert_eq!((n.replicas, n.limit.0), (10, "TooManyReplicas"));
}

#[test]
fn without_behavior_the_highest_recommendation_of_five_minutes_wins_a_scale_down() {
    let mut h = History::default();
    h.recommendations.push(Recommendation { replicas: 5, at: ago(60) });
    h.recommendations.push(Recommendation { replicas: 9, at: ago(400) });
    let n = normalize(&args(None, 1, 10, 5, 2), &mut h, now());
    assert_eq!((n.replicas, n.able.0, n.limited), (5, "ScaleDownStabilized", false));
    // The sample older than the window was replaced by this recommendation.
    assert_eq!(
        h.recommendations,
        vec![Recommendation { replicas: 5, at: ago(60) }, Recommendation { replicas: 2, at: now() },]
    );
}

#[test]
fn minimum_clamps() {
    let n = normalize(&args(None, 3, 10, 3, 1), &mut History::default(), now());
    assert_eq!((n.replicas, n.limited, n.limit.0), (3, true, "TooFewReplicas"));
    let n = normalize(&args(None, 1, 10, 3, 3), &mut History::default(), now());
    assert_eq!(
        (n.replicas, n.able.0, n.limited, n.limit.0),
        (3, "ReadyForNewScale", false, "DesiredWithinRange")
    );
}

#[test]
fn default_behavior_adds_4_pods_or_100_percent_whichever_is_more() {
    let b = defaults();
    // From 1: Pods → 5, Percent → 2; Max → 5.
    let n = normalize(&args(Some(&b), 1, 20, 1, 10), &mut History::default(), now());
    assert_eq!((n.replicas, n.limit.0), (5, "ScaleUpLimit"));
    // From 6: Pods → 10, Percent → 12; Max → 12.
    let n = normalize(&args(Some(&b), 1, 20, 6, 19), &mut History::default(), now());
    assert_eq!(n.replicas, 12);
}

#[test]
fn default_scale_down_waits_five_minutes() {
    let b = defaults();
    let mut h = History::default();
    h.recommendations.push(Recommendation { replicas: 6, at: ago(200) });
    let n = normalize(&args(Some(&b), 1, 20, 6, 2), &mut h, now());
    assert_eq!((n.replicas, n.able.0), (6, "ScaleDownStabilized"));
    // Once that recommendation is older than 300 s: down to 2 (100% may go per 15 s).
    let later = now() + Duration::from_secs(301);
    h.recommendations.retain(|r| r.replicas == 6);
    let n = normalize(&args(Some(&b), 1, 20, 6, 2), &mut h, later);
    assert_eq!(n.replicas, 2);
}

#[test]
fn scale_up_window_takes_the_lowest_recommendation() {
    let b = HorizontalPodAutoscalerBehavior {
        scale_up: Some(rules(60, "Max", &[("Pods", 4, 15)])),
        scale_down: None,
    };
    let mut h = History::default();
    h.recommendations.push(Recommendation { replicas: 3, at: ago(30) });
    let n = normalize(&args(Some(&b), 1, 20, 3, 6), &mut h, now());
    assert_eq!((n.replicas, n.able.0), (3, "ScaleUpStabilized"));
}

#[test]
fn policies_count_the_changes_of_their_period() {
    // At most 1 pod down per 60 s; 1 went 30 s ago: from 5 the period started at 6, so the limit is 5.
    let b = HorizontalPodAutoscalerBehavior {
        scale_up: None,
        scale_down: Some(rules(0, "Max", &[("Pods", 1, 60)])),
    };
    let mut h = History::default();
    h.scale_down_events.push(ScaleEvent { change: 1, at: ago(30), outdated: false });
    let n = normalize(&args(Some(&b), 1, 20, 5, 2), &mut h, now());
    assert_eq!((n.replicas, n.limited, n.limit.0), (5, true, "ScaleDownLimit"));
    // 70 s later that event is out of the period: 4.
    let n = normalize(&args(Some(&b), 1, 20, 5, 2), &mut h, now() + Duration::from_secs(70));
    assert_eq!(n.replicas, 4);
}

#[test]
fn select_policy_min_and_disabled() {
    let min = HorizontalPodAutoscalerBehavior {
        scale_up: Some(rules(0, "Min", &[("Pods", 4, 15), ("Percent", 100, 15)])),
        scale_down: None,
    };
    // From 3: Pods → 7, Percent → 6; Min → 6.
    assert_eq!(normalize(&args(Some(&min), 1, 20, 3, 10), &mut History::default(), now()).replicas, 6);
    let disabled = HorizontalPodAutoscalerBehavior {
        scale_up: Some(rules(0, "Disabled", &[("Pods", 4, 15)])),
        scale_down: None,
    };
    assert_eq!(normalize(&args(Some(&disabled), 1, 20, 3, 10), &mut History::default(), now()).replicas, 3);
    // Percent down rounds towards zero: 50% of 5 → 2.5 → 2 allowed to remain.
    let half = HorizontalPodAutoscalerBehavior {
        scale_up: None,
        scale_down: Some(rules(0, "Max", &[("Percent", 50, 15)])),
    };
    assert_eq!(normalize(&args(Some(&half), 1, 20, 5, 1), &mut History::default(), now()).replicas, 2);
}

#[test]
fn scale_events_are_kept_only_with_a_behavior_and_reuse_outdated_slots() {
    let mut h = History::default();
    record_scale(None, &mut h, 1, 3, now());
    assert!(h.scale_up_events.is_empty());
    let b = defaults();
    record_scale(Some(&b), &mut h, 1, 3, ago(100));
    record_scale(Some(&b), &mut h, 3, 5, now());
    assert_eq!(h.scale_up_events, vec![ScaleEvent { change: 2, at: now(), outdated: false }]);
    record_scale(Some(&b), &mut h, 5, 4, now());
    assert_eq!(h.scale_down_events.len(), 1);
}
