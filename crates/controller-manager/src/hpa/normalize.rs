//! From the metrics' recommendation to the replicas to set, as Kubernetes' HPA controller normalizes it:
//! the recommendations of each autoscaler are kept (in memory: after a restart, Kubernetes too starts
//! empty) and stabilized over the windows, then the rate of change is limited and the result clamped
//! to `[minReplicas, maxReplicas]`. With `spec.behavior` set: the scale-up window takes the lowest,
//! the scale-down window the highest recent recommendation, and the policies limit the change over
//! their periods from the scale events recorded (`normalizeDesiredReplicasWithBehaviors`). Without it:
//! the 5-minute downscale window and at most double (at least 4) per step (`normalizeDesiredReplicas`).
//! Each step reports the AbleToScale / ScalingLimited reason and message Kubernetes gives.

use std::time::{Duration, SystemTime};

use navarch_api::autoscaling::{
    DEFAULT_DOWNSCALE_STABILIZATION_SECONDS, default_scale_down_rules, default_scale_up_rules, fill_rules,
};
use navarch_api::v1::{HorizontalPodAutoscalerBehavior, HpaScalingRules};

/// A past recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recommendation {
    pub replicas: i32,
    pub at: SystemTime,
}

/// A past change of the target's replicas (by how many, up or down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleEvent {
    pub change: i32,
    pub at: SystemTime,
    pub outdated: bool,
}

/// What the controller remembers of one autoscaler.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub recommendations: Vec<Recommendation>,
    pub scale_up_events: Vec<ScaleEvent>,
    pub scale_down_events: Vec<ScaleEvent>,
}

/// A condition's reason and message.
pub type Reason = (&'static str, &'static str);

const READY: Reason = ("ReadyForNewScale", "recommended size matches current size");
const UP_STABILIZED: Reason = (
    "ScaleUpStabilized",
    "recent recommendations were lower than current one, applying the lowest recent recommendation",
);
const DOWN_STABILIZED: Reason = (
    "ScaleDownStabilized",
    "recent recommendations were higher than current one, applying the highest recent recommendation",
);
const WITHIN_RANGE: Reason = ("DesiredWithinRange", "the desired count is within the acceptable range");
const TOO_FEW: Reason =
    ("TooFewReplicas", "the desired replica count is less than the minimum replica count");
const TOO_MANY: Reason =
    ("TooManyReplicas", "the desired replica count is more than the maximum replica count");
const UP_LIMIT: Reason =
    ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate");
const DOWN_LIMIT: Reason =
    ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate");

/// The outcome: the replicas, AbleToScale's reason (True) and ScalingLimited's (True when `limited`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Normalized {
    pub replicas: i32,
    pub able: Reason,
    pub limited: bool,
    pub limit: Reason,
}

/// What the autoscaler asks: its bounds and behavior, the current and recommended replicas.
pub struct Args<'a> {
    pub behavior: Option<&'a HorizontalPodAutoscalerBehavior>,
    pub min: i32,
    pub max: i32,
    pub current: i32,
    pub desired: i32,
}

fn secs(n: i32) -> Duration {
    Duration::from_secs(u64::try_from(n).unwrap_or(0))
}

/// Records `replicas` recommended at `now`, reusing the slot of a sample older than every window.
fn record(history: &mut History, replicas: i32, now: SystemTime, old: Option<usize>) {
    let rec = Recommendation { replicas, at: now };
    match old {
        Some(i) => history.recommendations[i] = rec,
        None => history.recommendations.push(rec),
    }
}

/// Normalizes `args.desired`, updating `history` with the new recommendation.
pub fn normalize(args: &Args<'_>, history: &mut History, now: SystemTime) -> Normalized {
    match args.behavior {
        None => legacy(args, history, now),
        Some(b) => with_behavior(args, b, history, now),
    }
}

fn legacy(args: &Args<'_>, history: &mut History, now: SystemTime) -> Normalized {
    let cutoff =
        now.checked_sub(secs(DEFAULT_DOWNSCALE_STABILIZATION_SECONDS)).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut stabilized = args.desired;
    let mut old = None;
    for (i, r) in history.recommendations.iter().enumerate() {
        if r.at < cutoff {
            old = Some(i);
        } else if r.replicas > stabilized {
            stabilized = r.replicas;
        }
    }
    record(history, args.desired, now, old);
    let able = if stabilized == args.desired { READY } else { DOWN_STABILIZED };
    // Never more than double (at least 4) in one step.
    let up_limit = (2 * args.current).max(4);
    let (max, over) = if args.max > up_limit { (up_limit, UP_LIMIT) } else { (args.max, TOO_MANY) };
    let (replicas, limit) = if stabilized < args.min {
        (args.min, TOO_FEW)
    } else if stabilized > max {
        (max, over)
    } else {
        (stabilized, WITHIN_RANGE)
    };
    Normalized { replicas, able, limited: replicas != stabilized, limit }
}

fn with_behavior(
    args: &Args<'_>,
    b: &HorizontalPodAutoscalerBehavior,
    history: &mut History,
    now: SystemTime,
) -> Normalized {
    let up = fill_rules(b.scale_up.clone(), default_scale_up_rules());
    let mut down = fill_rules(b.scale_down.clone(), default_scale_down_rules());
    down.stabilization_window_seconds.get_or_insert(DEFAULT_DOWNSCALE_STABILIZATION_SECONDS);
    let cutoff = |rules: &HpaScalingRules| {
        now.checked_sub(secs(rules.stabilization_window_seconds.unwrap_or(0)))
            .unwrap_or(SystemTime::UNIX_EPOCH)
    };
    let (up_cutoff, down_cutoff) = (cutoff(&up), cutoff(&down));
    let (mut up_rec, mut down_rec) = (args.desired, args.desired);
    let mut old = None;
    for (i, r) in history.recommendations.iter().enumerate() {
        if r.at > up_cutoff {
            up_rec = up_rec.min(r.replicas);
        }
        if r.at > down_cutoff {
            down_rec = down_rec.max(r.replicas);
        }
        if r.at < up_cutoff && r.at < down_cutoff {
            old = Some(i);
        }
    }
    let stabilized = args.current.max(up_rec).min(down_rec);
    record(history, args.desired, now, old);
    let able = if stabilized == args.desired {
        READY
    } else if args.desired >= args.current {
        UP_STABILIZED
    } else {
        DOWN_STABILIZED
    };
    let (replicas, limit) = rate_limited(args, stabilized, &up, &down, history, now);
    Normalized { replicas, able, limited: replicas != stabilized, limit }
}

/// `convertDesiredReplicasWithBehaviorRate`.
fn rate_limited(
    args: &Args<'_>,
    desired: i32,
    up: &HpaScalingRules,
    down: &HpaScalingRules,
    history: &History,
    now: SystemTime,
) -> (i32, Reason) {
    let events = (&history.scale_up_events[..], &history.scale_down_events[..]);
    if desired > args.current {
        let limit = policy_limit(args.current, events, up, now, true).max(args.current);
        let (max, reason) = if args.max > limit { (limit, UP_LIMIT) } else { (args.max, TOO_MANY) };
        if desired > max {
            return (max, reason);
        }
    } else if desired < args.current {
        let limit = policy_limit(args.current, events, down, now, false).min(args.current);
        let (min, reason) = if args.min < limit { (limit, DOWN_LIMIT) } else { (args.min, TOO_FEW) };
        if desired < min {
            return (min, reason);
        }
    }
    (desired, WITHIN_RANGE)
}

/// The replicas added (or removed) by `events` within the last `period_seconds`.
fn change_in_period(period_seconds: i32, events: &[ScaleEvent], now: SystemTime) -> i32 {
    let cutoff = now.checked_sub(secs(period_seconds)).unwrap_or(SystemTime::UNIX_EPOCH);
    events.iter().filter(|e| e.at > cutoff).map(|e| e.change).sum()
}

/// The replicas at the start of each policy's period, and the policy.
fn period_starts<'a>(
    current: i32,
    (ups, downs): (&[ScaleEvent], &[ScaleEvent]),
    rules: &'a HpaScalingRules,
    now: SystemTime,
) -> impl Iterator<Item = (i32, &'a navarch_api::v1::HpaScalingPolicy)> {
    rules.policies.iter().map(move |p| {
        let start = current - change_in_period(p.period_seconds, ups, now)
            + change_in_period(p.period_seconds, downs, now);
        (start, p)
    })
}

/// `calculateScaleUpLimitWithScalingRules` (`up`) and `calculateScaleDownLimitWithBehaviors`: the most
/// (fewest) replicas the policies allow from `current`; `Max` picks the policy allowing the largest
/// change, `Min` the smallest, `Disabled` allows none.
fn policy_limit(
    current: i32,
    events: (&[ScaleEvent], &[ScaleEvent]),
    rules: &HpaScalingRules,
    now: SystemTime,
    up: bool,
) -> i32 {
    let policy = rules.select_policy.as_deref().unwrap_or("Max");
    if policy == "Disabled" {
        return current;
    }
    let proposals = period_starts(current, events, rules, now).map(|(start, p)| {
        let fraction = f64::from(p.value) / 100.0;
        match (p.r#type.as_str(), up) {
            ("Pods", true) => start + p.value,
            ("Pods", false) => start - p.value,
            // Up rounds up (a change too small to add a pod would never scale); down rounds towards zero.
            (_, true) => percent(f64::from(start) * (1.0 + fraction), f64::ceil),
            (_, false) => percent(f64::from(start) * (1.0 - fraction), f64::trunc),
        }
    });
    // The smallest proposal is the least change up and the largest change down.
    if (policy == "Min") == up {
        proposals.min().unwrap_or(current)
    } else {
        proposals.max().unwrap_or(current)
    }
}

fn percent(v: f64, round: fn(f64) -> f64) -> i32 {
    #[allow(clippy::cast_possible_truncation)]
    let r = round(v) as i32;
    r
}

/// `storeScaleEvent`: remembers a change from `from` to `to` replicas (only with a behavior, as
/// Kubernetes), reusing the slot of an event older than the direction's longest policy period.
pub fn record_scale(
    behavior: Option<&HorizontalPodAutoscalerBehavior>,
    history: &mut History,
    from: i32,
    to: i32,
    now: SystemTime,
) {
    let Some(b) = behavior else { return };
    let (rules, events, change) = if to > from {
        (fill_rules(b.scale_up.clone(), default_scale_up_rules()), &mut history.scale_up_events, to - from)
    } else {
        (
            fill_rules(b.scale_down.clone(), default_scale_down_rules()),
            &mut history.scale_down_events,
            from - to,
        )
    };
    let longest = rules.policies.iter().map(|p| p.period_seconds).max().unwrap_or(0);
    let cutoff = now.checked_sub(secs(longest)).unwrap_or(SystemTime::UNIX_EPOCH);
    for e in events.iter_mut() {
        if e.at <= cutoff {
            e.outdated = true;
        }
    }
    let event = ScaleEvent { change, at: now, outdated: false };
    match events.iter().rposition(|e| e.outdated) {
        Some(i) => events[i] = event,
        None => events.push(event),
    }
}

#[cfg(test)]
#[path = "normalize_tests.rs"]
mod tests;
