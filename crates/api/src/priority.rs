//! Pod priority: Kubernetes' facts about PriorityClasses (`pkg/apis/scheduling`), shared by the
//! api-server's validation, its Priority admission and its bootstrap of the built-in classes.
//!
//! * user classes have values up to [`HIGHEST_USER_DEFINABLE_PRIORITY`] (one billion); names starting
//!   with [`SYSTEM_PRIORITY_CLASS_PREFIX`] are reserved for the two built-in classes
//!   ([`system_priority_classes`]), which the api-server creates at start;
//! * a pod naming no class gets the global default class ([`global_default`]: the lowest value when a
//!   race left several), or priority [`DEFAULT_PRIORITY`] and `PreemptLowerPriority` when there is none.

use crate::v1::{ObjectMeta, PriorityClass};

/// The priority of pods that name no class when no class is the global default.
pub const DEFAULT_PRIORITY: i32 = 0;
/// The highest value a user-defined class may have; larger values are for the system classes.
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i32 = 1_000_000_000;
/// Where the system classes' values start.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2 * HIGHEST_USER_DEFINABLE_PRIORITY;
/// Names with this prefix are reserved for the system classes.
pub const SYSTEM_PRIORITY_CLASS_PREFIX: &str = "system-";
/// The class of system pods that must run in the cluster but may move to another node.
pub const SYSTEM_CLUSTER_CRITICAL: &str = "system-cluster-critical";
/// The class of system pods that must not move from their node.
pub const SYSTEM_NODE_CRITICAL: &str = "system-node-critical";
/// The default preemption policy: a pod may preempt pods of lower priority.
pub const PREEMPT_LOWER_PRIORITY: &str = "PreemptLowerPriority";
/// A pod never preempts others (it still waits in the queue by its priority).
pub const PREEMPT_NEVER: &str = "Never";
/// The preemption policies a class or pod may name.
pub const PREEMPTION_POLICIES: &[&str] = &[PREEMPT_LOWER_PRIORITY, PREEMPT_NEVER];

/// The built-in classes, as Kubernetes defines them (`SystemPriorityClasses`): name, value, description.
const SYSTEM_CLASSES: [(&str, i32, &str); 2] = [
    (
        SYSTEM_NODE_CRITICAL,
        SYSTEM_CRITICAL_PRIORITY + 1000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        SYSTEM_CLUSTER_CRITICAL,
        SYSTEM_CRITICAL_PRIORITY,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

/// The built-in classes as objects (neither is the global default; their preemption policy is left for
/// defaulting).
pub fn system_priority_classes() -> Vec<PriorityClass> {
    SYSTEM_CLASSES
        .iter()
        .map(|(name, value, description)| PriorityClass {
            api_version: "scheduling.k8s.io/v1".into(),
            kind: "PriorityClass".into(),
            metadata: Some(ObjectMeta { name: name.to_string(), ..Default::default() }),
            value: *value,
            description: description.to_string(),
            ..Default::default()
        })
        .collect()
}

/// Whether `name` is one of the built-in classes.
pub fn is_system_class(name: &str) -> bool {
    SYSTEM_CLASSES.iter().any(|(n, _, _)| *n == name)
}

/// The value of a built-in class.
pub fn system_class_value(name: &str) -> Option<i32> {
    SYSTEM_CLASSES.iter().find(|(n, _, _)| *n == name).map(|(_, v, _)| *v)
}

/// Kubernetes' `IsKnownSystemPriorityClass`: `Ok` when a class so named, valued and defaulted is a
/// built-in one; otherwise why not, in Kubernetes' words.
pub fn check_system_class(name: &str, value: i32, global_default: bool) -> Result<(), String> {
    match SYSTEM_CLASSES.iter().find(|(n, _, _)| *n == name) {
        None => Err(format!("{name} is not a known system priority class")),
        Some((n, v, _)) if *v != value => Err(format!("value of {n} PriorityClass must be {v}")),
        // No built-in class is the global default.
        Some((n, _, _)) if global_default => Err(format!("globalDefault of {n} PriorityClass must be false")),
        Some(_) => Ok(()),
    }
}

/// The class pods naming none get: among the global default ones, the lowest value (several can exist
/// after a race between two writes, as in Kubernetes); `None` when no class is the global default.
pub fn global_default<'a>(classes: impl IntoIterator<Item = &'a PriorityClass>) -> Option<&'a PriorityClass> {
    classes.into_iter().filter(|c| c.global_default).min_by_key(|c| c.value)
}

/// A class's name.
pub fn class_name(pc: &PriorityClass) -> &str {
    pc.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, value: i32, global_default: bool) -> PriorityClass {
        PriorityClass {
            metadata: Some(ObjectMeta { name: name.into(), ..Default::default() }),
            value,
            global_default,
            ..Default::default()
        }
    }

    #[test]
    fn system_classes_are_kubernetes_ones() {
        let classes = system_priority_classes();
        let pairs: Vec<(&str, i32)> = classes.iter().map(|c| (class_name(c), c.value)).collect();
        assert_eq!(
            pairs,
            [("system-node-critical", 2_000_001_000), ("system-cluster-critical", 2_000_000_000)]
        );
        assert!(is_system_class("system-node-critical"));
        assert!(!is_system_class("system-foo"));
        assert_eq!(system_class_value("system-cluster-critical"), Some(2_000_000_000));
    }

    #[test]
    fn known_system_class_checks_value_and_default() {
        assert_eq!(check_system_class("system-node-critical", 2_000_001_000, false), Ok(()));
        assert_eq!(
            check_system_class("system-node-critical", 5, false).unwrap_err(),
            "value of system-node-critical PriorityClass must be 2000001000"
        );
        assert_eq!(
            check_system_class("system-cluster-critical", 2_000_000_000, true).unwrap_err(),
            "globalDefault of system-cluster-critical PriorityClass must be false"
        );
        assert_eq!(
            check_system_class("system-foo", 1, false).unwrap_err(),
            "system-foo is not a known system priority class"
        );
    }

    #[test]
    fn global_default_is_the_lowest_default() {
        let classes = [class("a", 10, true), class("b", 5, false), class("c", 7, true)];
        assert_eq!(global_default(&classes).map(class_name), Some("c"));
        assert_eq!(global_default(&classes[1..2]).map(class_name), None);
    }
}
