//! PriorityClass (`scheduling.k8s.io/v1`): Kubernetes' `SetDefaults_PriorityClass` (preemptionPolicy
//! PreemptLowerPriority) and `ValidatePriorityClass(Update)`: names starting with `system-` only for the
//! built-in classes as they are defined, user values up to one billion, a known preemption policy;
//! `value` and `preemptionPolicy` never change. That at most one class is the global default is the
//! Priority admission's check ([`crate::admission::priority`]), which sees the other classes.

use navarch_api::priority::{
    HIGHEST_USER_DEFINABLE_PRIORITY, PREEMPT_LOWER_PRIORITY, PREEMPTION_POLICIES,
    SYSTEM_PRIORITY_CLASS_PREFIX, check_system_class,
};
use navarch_api::v1::PriorityClass;

use super::field::{Errors, Path, q};

pub(super) fn default_priority_class(pc: &mut PriorityClass) {
    if pc.preemption_policy.is_none() {
        pc.preemption_policy = Some(PREEMPT_LOWER_PRIORITY.to_string());
    }
}

pub(super) fn validate_priority_class(pc: &PriorityClass, old: Option<&PriorityClass>, errs: &mut Errors) {
    let name = navarch_api::priority::class_name(pc);
    if let Some(old) = old {
        // Kubernetes checks only what an update may not change.
        if pc.value != old.value {
            errs.forbidden(&Path::new("value"), "may not be changed in an update.");
        }
        if pc.preemption_policy != old.preemption_policy {
            let v = pc.preemption_policy.as_deref().unwrap_or("");
            errs.invalid(&Path::new("preemptionPolicy"), q(v), "field is immutable");
        }
        return;
    }
    if name.starts_with(SYSTEM_PRIORITY_CLASS_PREFIX) {
        if let Err(e) = check_system_class(name, pc.value, pc.global_default) {
            errs.forbidden(
                &Path::new("metadata").child("name"),
                format!(
                    "priority class names with '{SYSTEM_PRIORITY_CLASS_PREFIX}' prefix are reserved for system use only. error: {e}"
                ),
            );
        }
    } else if pc.value > HIGHEST_USER_DEFINABLE_PRIORITY {
        errs.forbidden(
            &Path::new("value"),
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
        );
    }
    match pc.preemption_policy.as_deref() {
        None => {}
        Some("") => errs.required(&Path::new("preemptionPolicy"), ""),
        Some(p) => errs.one_of(&Path::new("preemptionPolicy"), p, PREEMPTION_POLICIES),
    }
}

#[cfg(test)]
mod tests {
    use crate::validation::testing::*;

    const PC: &str = "\
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: high
value: 1000
description: for important pods
";

    #[test]
    fn defaults_preemption_policy() {
        let obj = defaulted(PC);
        let navarch_api::Object::PriorityClass(pc) = obj else { panic!() };
        assert_eq!(pc.preemption_policy.as_deref(), Some("PreemptLowerPriority"));
        assert_valid(PC);
        assert_valid(&edit(PC, "value: 1000", "value: 1000000000\npreemptionPolicy: Never"));
        assert_valid(&edit(PC, "value: 1000", "value: -5\nglobalDefault: true"));
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        assert_edit_errors(
            PC,
            &[
                (
                    "value: 1000",
                    "value: 1000000001",
                    "value",
                    "Forbidden: maximum allowed value of a user defined priority is 1000000000",
                ),
                (
                    "name: high",
                    "name: system-high",
                    "metadata.name",
                    "Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-high is not a known system priority class",
                ),
                (
                    "name: high",
                    "name: system-node-critical",
                    "metadata.name",
                    "error: value of system-node-critical PriorityClass must be 2000001000",
                ),
                (
                    "value: 1000",
                    "value: 1000\npreemptionPolicy: Sometimes",
                    "preemptionPolicy",
                    "Unsupported value: \"Sometimes\": supported values: \"PreemptLowerPriority\", \"Never\"",
                ),
                ("value: 1000", "value: 1000\npreemptionPolicy: ''", "preemptionPolicy", "Required value"),
                ("name: high", "name: High", "metadata.name", "Invalid value: \"High\""),
            ],
        );
        // The built-in classes as defined validate.
        assert_valid(&edit(
            PC,
            "name: high\nvalue: 1000",
            "name: system-cluster-critical\nvalue: 2000000000",
        ));
    }

    #[test]
    fn value_and_preemption_policy_are_immutable() {
        assert_update_error(
            PC,
            &edit(PC, "value: 1000", "value: 1001"),
            "value",
            "Forbidden: may not be changed in an update.",
        );
        assert_update_error(
            PC,
            &edit(PC, "value: 1000", "value: 1000\npreemptionPolicy: Never"),
            "preemptionPolicy",
            "Invalid value: \"Never\": field is immutable",
        );
        // Description, labels and globalDefault may change.
        let changed = edit(PC, "description: for important pods", "description: other\nglobalDefault: true");
        assert!(update_errors(PC, &changed).is_empty());
    }
}
