//! PodDisruptionBudget rules shared by the api-server's eviction subresource and the controller-manager's
//! disruption controller, as Kubernetes' `component-helpers/apps/poddisruptionbudget` and `intstr` give
//! them: which pods a budget selects, when a pod counts as healthy, the `DisruptionAllowed` condition,
//! and a number-or-percentage scaled to a total.

use std::time::Duration;

use crate::selector::Selector;
use crate::v1::{Condition, IntOrString, Pod, PodDisruptionBudget, PodDisruptionBudgetStatus};

/// The condition the disruption controller (and an eviction that spends the last disruption) sets.
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
/// `DisruptionAllowed` True: more healthy pods than the budget needs.
pub const SUFFICIENT_PODS: &str = "SufficientPods";
/// `DisruptionAllowed` False: no more than the budget needs.
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
/// `DisruptionAllowed` False: the controller could not compute the budget.
pub const SYNC_FAILED: &str = "SyncFailed";
/// How long an eviction the api-server allowed (an entry of `status.disruptedPods`) is expected to take
/// to show as a deleted pod before the controller stops counting it as disrupted.
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);
/// The `unhealthyPodEvictionPolicy` under which a pod that is not Ready may always be evicted.
pub const ALWAYS_ALLOW: &str = "AlwaysAllow";

/// Whether the pod's `Ready` condition is `True` (Kubernetes' `IsPodReady`).
pub fn is_pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
}

/// The budget's selector as the disruption controller reads it: `None` (or one that does not parse)
/// selects nothing, an empty one every pod of the namespace (policy/v1).
pub fn selector(pdb: &PodDisruptionBudget) -> Option<Selector> {
    let ls = pdb.spec.as_ref()?.selector.as_ref()?;
    Selector::from_label_selector(Some(ls)).ok()
}

/// Whether `pdb` covers `pod` for the disruption controller (same namespace, selected).
pub fn selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    pdb.metadata.as_ref().map(|m| &m.namespace) == pod.metadata.as_ref().map(|m| &m.namespace)
        && selector(pdb)
            .is_some_and(|s| s.matches(&pod.metadata.as_ref().map(|m| m.labels.clone()).unwrap_or_default()))
}

/// `meta.SetStatusCondition`: adds `c`, or updates the condition of its type (its lastTransitionTime moves
/// to `now` only when its status changes).
pub fn set_condition(conditions: &mut Vec<Condition>, mut c: Condition, now: &str) {
    match conditions.iter_mut().find(|x| x.r#type == c.r#type) {
        Some(existing) => {
            if existing.status != c.status {
                existing.status = c.status;
                existing.last_transition_time = now.to_string();
            }
            existing.reason = c.reason;
            existing.message = c.message;
            existing.observed_generation = c.observed_generation;
        }
        None => {
            if c.last_transition_time.is_empty() {
                c.last_transition_time = now.to_string();
            }
            conditions.push(c);
        }
    }
}

/// `UpdateDisruptionAllowedCondition`: True/SufficientPods while disruptions are allowed, else
/// False/InsufficientPods, for the status's observedGeneration.
pub fn update_disruption_allowed_condition(status: &mut PodDisruptionBudgetStatus, now: &str) {
    let (state, reason) =
        if status.disruptions_allowed > 0 { ("True", SUFFICIENT_PODS) } else { ("False", INSUFFICIENT_PODS) };
    let c = Condition {
        r#type: DISRUPTION_ALLOWED.into(),
        status: state.into(),
        reason: reason.into(),
        observed_generation: status.observed_generation,
        ..Default::default()
    };
    set_condition(&mut status.conditions, c, now);
}

/// `ConditionsAreUpToDate`: the `DisruptionAllowed` condition agrees with disruptionsAllowed for the
/// budget's current generation.
pub fn conditions_up_to_date(pdb: &PodDisruptionBudget) -> bool {
    let Some(status) = &pdb.status else { return false };
    let Some(c) = status.conditions.iter().find(|c| c.r#type == DISRUPTION_ALLOWED) else { return false };
    if status.observed_generation != pdb.metadata.as_ref().map(|m| m.generation).unwrap_or_default() {
        return false;
    }
    if status.disruptions_allowed > 0 {
        c.status == "True" && c.reason == SUFFICIENT_PODS
    } else {
        c.status == "False" && c.reason == INSUFFICIENT_PODS
    }
}

/// `intstr.GetScaledValueFromIntOrPercent`: a number as it is, or a percentage of `total` rounded up
/// (or down).
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    if let Some(n) = v.as_int() {
        return Ok(n);
    }
    let s = v.as_str().unwrap_or_default();
    let pct: i64 = s
        .strip_suffix('%')
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
    let x = pct * i64::from(total);
    let scaled =
        if round_up { x.div_euclid(100) + i64::from(x.rem_euclid(100) != 0) } else { x.div_euclid(100) };
    Ok(i32::try_from(scaled).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_values_round_as_kubernetes() {
        let pct = |s: &str| IntOrString::string(s);
        assert_eq!(scaled_value(&IntOrString::int(2), 10, true), Ok(2));
        assert_eq!(scaled_value(&pct("50%"), 3, true), Ok(2));
        assert_eq!(scaled_value(&pct("50%"), 3, false), Ok(1));
        assert_eq!(scaled_value(&pct("34%"), 3, true), Ok(2));
        assert_eq!(scaled_value(&pct("100%"), 7, true), Ok(7));
        assert_eq!(scaled_value(&pct("0%"), 7, true), Ok(0));
        assert!(scaled_value(&pct("half"), 7, true).unwrap_err().contains("\"half\""));
    }

    #[test]
    fn selectors_as_policy_v1() {
        let pdb = |sel: &str| -> PodDisruptionBudget {
            serde_yaml::from_str(&format!("{{metadata: {{name: b, namespace: ns}}, spec: {{{sel}}}}}"))
                .unwrap()
        };
        let pod: Pod =
            serde_yaml::from_str("{metadata: {name: p, namespace: ns, labels: {app: web}}}").unwrap();
        assert!(selects(&pdb("selector: {matchLabels: {app: web}}"), &pod));
        assert!(!selects(&pdb("selector: {matchLabels: {app: db}}"), &pod));
        assert!(selects(&pdb("selector: {}"), &pod), "an empty selector selects every pod");
        assert!(!selects(&pdb(""), &pod), "no selector selects none");
        let other: Pod =
            serde_yaml::from_str("{metadata: {name: p, namespace: x, labels: {app: web}}}").unwrap();
        assert!(!selects(&pdb("selector: {}"), &other));
    }

    #[test]
    fn disruption_allowed_condition() {
        let mut status = PodDisruptionBudgetStatus {
            disruptions_allowed: 1,
            observed_generation: 3,
            ..Default::default()
        };
        update_disruption_allowed_condition(&mut status, "t1");
        let c = &status.conditions[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str(), c.last_transition_time.as_str()),
            ("True", SUFFICIENT_PODS, "t1")
        );
        status.disruptions_allowed = 0;
        update_disruption_allowed_condition(&mut status, "t2");
        let c = &status.conditions[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str(), c.last_transition_time.as_str()),
            ("False", INSUFFICIENT_PODS, "t2")
        );
        update_disruption_allowed_condition(&mut status, "t3");
        assert_eq!(
            status.conditions[0].last_transition_time, "t2",
            "unchanged status keeps its transition time"
        );
        assert_eq!(status.conditions.len(), 1);
    }
}
