//! policy/v1 PodDisruptionBudget: Kubernetes' `ValidatePodDisruptionBudget` (the spec: at most one of
//! `minAvailable` and `maxUnavailable`, each a non-negative number or a percentage up to 100%, a valid
//! selector, a known `unhealthyPodEvictionPolicy`) and `ValidatePodDisruptionBudgetStatusUpdate` (counts
//! not negative, well-formed conditions). policy/v1 defaults nothing; the spec may change on update.

use navarch_api::v1::{Condition, IntOrString, LabelSelector, PodDisruptionBudget, PodDisruptionBudgetSpec};

use super::field::{Errors, Path, q};
use super::meta;
use super::workloads::validate_int_or_percent;

/// The policies `unhealthyPodEvictionPolicy` may name.
pub const UNHEALTHY_POD_EVICTION_POLICIES: &[&str] = &["AlwaysAllow", "IfHealthyBudget"];

pub(super) fn validate_pod_disruption_budget(pdb: &PodDisruptionBudget, errs: &mut Errors) {
    let default = PodDisruptionBudgetSpec::default();
    let spec = pdb.spec.as_ref().unwrap_or(&default);
    let path = Path::new("spec");
    if spec.min_available.is_some() && spec.max_unavailable.is_some() {
        errs.invalid(&path, go_spec(spec), "minAvailable and maxUnavailable cannot be both set");
    }
    validate_int_or_percent(spec.min_available.as_ref(), &path.child("minAvailable"), errs);
    validate_int_or_percent(spec.max_unavailable.as_ref(), &path.child("maxUnavailable"), errs);
    if let Some(selector) = &spec.selector {
        meta::validate_label_selector(selector, &path.child("selector"), errs);
    }
    let policy = spec.unhealthy_pod_eviction_policy.as_str();
    if !policy.is_empty() {
        errs.one_of(&path.child("unhealthyPodEvictionPolicy"), policy, UNHEALTHY_POD_EVICTION_POLICIES);
    }
    if let Some(status) = &pdb.status {
        let path = Path::new("status");
        for (name, value) in [
            ("disruptionsAllowed", status.disruptions_allowed),
            ("currentHealthy", status.current_healthy),
            ("desiredHealthy", status.desired_healthy),
            ("expectedPods", status.expected_pods),
        ] {
            errs.non_negative(&path.child(name), value.into());
        }
        validate_conditions(&status.conditions, &path.child("conditions"), errs);
    }
}

/// metav1 `Condition`s (`ValidateConditions`): a type, unique; a status of True, False or Unknown; a
/// reason; a lastTransitionTime.
fn validate_conditions(conditions: &[Condition], path: &Path, errs: &mut Errors) {
    let mut seen = meta::Unique::default();
    for (i, c) in conditions.iter().enumerate() {
        let p = path.index(i);
        if c.r#type.is_empty() {
            errs.required(&p.child("type"), "must be set");
        } else {
            seen.check(&c.r#type, &p.child("type"), errs);
        }
        errs.required_one_of(&p.child("status"), &c.status, &["False", "True", "Unknown"]);
        if c.reason.is_empty() {
            errs.required(&p.child("reason"), "must be set");
        }
        if c.last_transition_time.is_empty() {
            errs.required(&p.child("lastTransitionTime"), "must be set");
        }
        errs.non_negative(&p.child("observedGeneration"), c.observed_generation);
    }
}

/// The spec as Kubernetes prints it in the both-set error (Go's `%#v` of the struct, pointers shown by
/// the value they point at instead of an address).
fn go_spec(spec: &PodDisruptionBudgetSpec) -> String {
    let int_or_string = |v: &Option<IntOrString>| match v {
        None => "(*intstr.IntOrString)(nil)".to_string(),
        Some(v) => match v.as_int() {
            Some(n) => format!("&intstr.IntOrString{{Type:0, IntVal:{n}, StrVal:\"\"}}"),
            None => format!("&intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}", q(&v.str_val)),
        },
    };
    let selector = |s: &Option<LabelSelector>| match s {
        None => "(*v1.LabelSelector)(nil)".to_string(),
        Some(s) => format!("&v1.LabelSelector{{MatchLabels:{}}}", meta::show_labels(&s.match_labels)),
    };
    let policy = match spec.unhealthy_pod_eviction_policy.as_str() {
        "" => "(*policy.UnhealthyPodEvictionPolicyType)(nil)".to_string(),
        p => format!("&{}", q(p)),
    };
    format!(
        "policy.PodDisruptionBudgetSpec{{MinAvailable:{}, Selector:{}, MaxUnavailable:{}, UnhealthyPodEvictionPolicy:{policy}}}",
        int_or_string(&spec.min_available),
        selector(&spec.selector),
        int_or_string(&spec.max_unavailable),
    )
}

#[cfg(test)]
mod tests {
    use crate::validation::testing::{assert_edit_errors, assert_valid, edit};

    const PDB: &str = "\
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
  namespace: default
spec:
  minAvailable: 2
  selector:
    matchLabels:
      app: web
";

    #[test]
    fn valid_budgets() {
        assert_valid(PDB);
        assert_valid(&edit(PDB, "  minAvailable: 2\n", "  minAvailable: 50%\n"));
        assert_valid(&edit(PDB, "  minAvailable: 2\n", "  maxUnavailable: 0\n"));
        assert_valid(&edit(PDB, "  minAvailable: 2\n", ""));
        assert_valid(&edit(
            PDB,
            "  minAvailable: 2\n",
            "  minAvailable: 1\n  unhealthyPodEvictionPolicy: AlwaysAllow\n",
        ));
        // An empty selector (every pod of the namespace) and none (no pod) are both allowed.
        assert_valid(&edit(PDB, "  selector:\n    matchLabels:\n      app: web\n", "  selector: {}\n"));
        assert_valid(&edit(PDB, "  selector:\n    matchLabels:\n      app: web\n", ""));
    }

    #[test]
    fn invalid_budgets() {
        assert_edit_errors(
            PDB,
            &[
                (
                    "  minAvailable: 2\n",
                    "  minAvailable: 2\n  maxUnavailable: 1\n",
                    "spec",
                    "Invalid value: policy.PodDisruptionBudgetSpec{MinAvailable:&intstr.IntOrString{Type:0, IntVal:2, StrVal:\"\"}, Selector:&v1.LabelSelector{MatchLabels:{\"app\":\"web\"}}, MaxUnavailable:&intstr.IntOrString{Type:0, IntVal:1, StrVal:\"\"}, UnhealthyPodEvictionPolicy:(*policy.UnhealthyPodEvictionPolicyType)(nil)}: minAvailable and maxUnavailable cannot be both set",
                ),
                (
                    "  minAvailable: 2\n",
                    "  minAvailable: -1\n",
                    "spec.minAvailable",
                    "Invalid value: -1: must be greater than or equal to 0",
                ),
                (
                    "  minAvailable: 2\n",
                    "  maxUnavailable: -3\n",
                    "spec.maxUnavailable",
                    "Invalid value: -3: must be greater than or equal to 0",
                ),
                (
                    "  minAvailable: 2\n",
                    "  minAvailable: 120%\n",
                    "spec.minAvailable",
                    "must not be greater than 100%",
                ),
                (
                    "  minAvailable: 2\n",
                    "  maxUnavailable: half\n",
                    "spec.maxUnavailable",
                    "a valid percent string must be",
                ),
                (
                    "  minAvailable: 2\n",
                    "  minAvailable: 2\n  unhealthyPodEvictionPolicy: Never\n",
                    "spec.unhealthyPodEvictionPolicy",
                    "Unsupported value: \"Never\": supported values: \"AlwaysAllow\", \"IfHealthyBudget\"",
                ),
                (
                    "      app: web\n",
                    "      app: -web-\n",
                    "spec.selector.matchLabels[app]",
                    "Invalid value: \"-web-\"",
                ),
                (
                    "      app: web\n",
                    "      app: web\nstatus:\n  disruptionsAllowed: -1\n",
                    "status.disruptionsAllowed",
                    "Invalid value: -1: must be greater than or equal to 0",
                ),
                (
                    "      app: web\n",
                    "      app: web\nstatus:\n  conditions:\n  - {type: DisruptionAllowed, status: Maybe, reason: X, lastTransitionTime: '2026-01-01T00:00:00Z'}\n",
                    "status.conditions[0].status",
                    "Unsupported value: \"Maybe\"",
                ),
            ],
        );
    }
}
