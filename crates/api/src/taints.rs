//! Taints and tolerations: Kubernetes' matching rule and the well-known taints the node lifecycle
//! controller manages (used by the scheduler and the controller-manager alike).

use crate::v1::{Taint, Toleration};

/// The node's Ready condition is Unknown (its kubelet stopped reporting).
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The node's Ready condition is False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The node is cordoned (`spec.unschedulable`).
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Whether toleration `t` tolerates `taint` (Kubernetes' rule: an empty effect matches every
/// effect; `Exists` with an empty key matches every taint).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if !t.effect.is_empty() && t.effect != taint.effect {
        return false;
    }
    match t.operator.as_str() {
        "Exists" => t.key.is_empty() || t.key == taint.key,
        "" | "Equal" => t.key == taint.key && t.value == taint.value,
        _ => false,
    }
}

/// The first taint of `taints` picked by `filter` that no toleration of `tolerations` tolerates
/// (Kubernetes' `FindMatchingUntoleratedTaint`).
pub fn untolerated<'a>(
    tolerations: &[Toleration],
    taints: &'a [Taint],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints.iter().filter(|t| filter(t)).find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let taint = Taint { key: UNREACHABLE.into(), effect: "NoExecute".into(), ..Default::default() };
        let t = |key: &str, op: &str, effect: &str| Toleration {
            key: key.into(),
            operator: op.into(),
            effect: effect.into(),
            ..Default::default()
        };
        assert!(tolerates(&t(UNREACHABLE, "Exists", "NoExecute"), &taint));
        assert!(tolerates(&t("", "Exists", ""), &taint));
        assert!(tolerates(&t(UNREACHABLE, "Equal", ""), &taint));
        assert!(!tolerates(&t(UNREACHABLE, "Exists", "NoSchedule"), &taint));
        assert!(!tolerates(&t(NOT_READY, "Exists", "NoExecute"), &taint));
    }
}
