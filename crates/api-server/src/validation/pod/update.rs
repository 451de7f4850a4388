//! What a pod update may change (`ValidatePodUpdate`): images, a shorter `activeDeadlineSeconds`, added
//! tolerations, removed scheduling gates, `nodeName` once (binding), and nothing else of the spec.

use navarch_api::v1::*;

use crate::validation::field::{Errors, Path, changed_paths, q};

const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,\
`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing \
tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A pod's spec may change only in images, activeDeadlineSeconds (shorter), tolerations (additions),
/// scheduling gates (removals), nodeName (from empty, as binding does) and terminationGracePeriodSeconds
/// (from negative to 1).
pub(super) fn validate_pod_spec_update(new: &PodSpec, old: &PodSpec, path: &Path, errs: &mut Errors) {
    let mut allowed = old.clone();
    for (list, new_list) in
        [(&mut allowed.containers, &new.containers), (&mut allowed.init_containers, &new.init_containers)]
    {
        for (c, n) in list.iter_mut().zip(new_list) {
            c.image = n.image.clone();
        }
    }

    let adp = path.child("activeDeadlineSeconds");
    match (old.active_deadline_seconds, new.active_deadline_seconds) {
        (Some(_), None) => {
            errs.invalid(&adp, q("nil"), "must not update from a positive integer to nil value")
        }
        (Some(o), Some(n)) if n > o => errs.invalid(&adp, n, "must be less than or equal to previous value"),
        _ => {}
    }
    allowed.active_deadline_seconds = new.active_deadline_seconds;

    let same = |a: &Toleration, b: &Toleration| {
        a.key == b.key && a.operator == b.operator && a.value == b.value && a.effect == b.effect
    };
    if old.tolerations.iter().all(|o| new.tolerations.iter().any(|n| same(o, n))) {
        allowed.tolerations = new.tolerations.clone();
    } else {
        errs.forbidden(
            &path.child("tolerations"),
            "existing toleration can not be modified except its tolerationSeconds",
        );
        allowed.tolerations = new.tolerations.clone();
    }

    if old.termination_grace_period_seconds.is_some_and(|t| t < 0)
        && new.termination_grace_period_seconds == Some(1)
    {
        allowed.termination_grace_period_seconds = Some(1);
    }
    if old.node_name.is_empty() {
        allowed.node_name = new.node_name.clone();
    }
    let added_gate = new.scheduling_gates.iter().find(|g| !old.scheduling_gates.contains(g));
    match added_gate {
        Some(g) => {
            errs.forbidden(
                &path.child("schedulingGates"),
                format!("only deletion is allowed, but found new scheduling gate '{}'", g.name),
            );
            allowed.scheduling_gates = new.scheduling_gates.clone();
        }
        None => allowed.scheduling_gates = new.scheduling_gates.clone(),
    }

    for p in changed_paths(path, &allowed, new) {
        errs.forbidden(&p, POD_UPDATE_FORBIDDEN);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::POD;
    use crate::validation::testing::*;

    #[test]
    fn updates() {
        assert!(update_errors(POD, POD).is_empty());
        let new_image = edit(POD, "image: nginx:1.25", "image: nginx:1.26");
        assert!(update_errors(POD, &new_image).is_empty());
        let new_toleration = edit(
            POD,
            "  tolerations:\n",
            "  tolerations:\n  - {key: extra, operator: Exists, effect: NoSchedule}\n",
        );
        assert!(update_errors(POD, &new_toleration).is_empty());
        let bound = edit(POD, "  nodeSelector:", "  nodeName: node-1\n  nodeSelector:");
        assert!(update_errors(POD, &bound).is_empty(), "binding sets nodeName once");
        let rebound = edit(POD, "  nodeSelector:", "  nodeName: node-2\n  nodeSelector:");
        assert_update_error(&bound, &rebound, "spec.nodeName", "pod updates may not change fields");

        let port = edit(POD, "containerPort: 9090", "containerPort: 9091");
        assert_update_error(
            POD,
            &port,
            "spec.containers[0].ports[1].containerPort",
            "Forbidden: pod updates may not change fields other than",
        );
        let removed =
            edit(POD, "  - {key: dedicated, operator: Equal, value: web, effect: NoSchedule}\n", "");
        assert_update_error(POD, &removed, "spec.tolerations", "existing toleration can not be modified");
        let deadline = edit(POD, "  nodeSelector:", "  activeDeadlineSeconds: 100\n  nodeSelector:");
        let longer = edit(POD, "  nodeSelector:", "  activeDeadlineSeconds: 200\n  nodeSelector:");
        assert_update_error(
            &deadline,
            &longer,
            "spec.activeDeadlineSeconds",
            "must be less than or equal to previous value",
        );
        let shorter = edit(POD, "  nodeSelector:", "  activeDeadlineSeconds: 50\n  nodeSelector:");
        assert!(update_errors(&deadline, &shorter).is_empty());
        let labels = edit(POD, "labels: {app: web}", "labels: {app: web, extra: x}");
        assert!(update_errors(POD, &labels).is_empty(), "metadata may change");
    }
}
