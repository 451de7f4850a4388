//! Where a pod may run: node affinity and node selector terms, pod (anti-)affinity, tolerations and
//! topology spread constraints. (`nodeSelector` itself is a label map, checked with the spec.)

use std::collections::BTreeSet;

use navarch_api::names;
use navarch_api::v1::*;

use crate::validation::field::{Errors, Path, q};
use crate::validation::meta;

const NODE_SELECTOR_OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"];

pub(super) fn validate_affinity(a: &Affinity, path: &Path, errs: &mut Errors) {
    if let Some(na) = &a.node_affinity {
        let p = path.child("nodeAffinity");
        if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
            validate_node_selector(req, &p.child("requiredDuringSchedulingIgnoredDuringExecution"), errs);
        }
        for (i, pref) in na.preferred_during_scheduling_ignored_during_execution.iter().enumerate() {
            let pp = p.child("preferredDuringSchedulingIgnoredDuringExecution").index(i);
            validate_weight(pref.weight, &pp.child("weight"), errs);
            match &pref.preference {
                Some(t) => validate_node_selector_term(t, &pp.child("preference"), errs),
                None => errs.required(&pp.child("preference"), ""),
            }
        }
    }
    for (terms, weighted, field) in [
        (
            a.pod_affinity.as_ref().map(|p| &p.required_during_scheduling_ignored_during_execution),
            a.pod_affinity.as_ref().map(|p| &p.preferred_during_scheduling_ignored_during_execution),
            "podAffinity",
        ),
        (
            a.pod_anti_affinity.as_ref().map(|p| &p.required_during_scheduling_ignored_during_execution),
            a.pod_anti_affinity.as_ref().map(|p| &p.preferred_during_scheduling_ignored_during_execution),
            "podAntiAffinity",
        ),
    ] {
        let p = path.child(field);
        for (i, t) in terms.into_iter().flatten().enumerate() {
            validate_pod_affinity_term(
                t,
                &p.child("requiredDuringSchedulingIgnoredDuringExecution").index(i),
                errs,
            );
        }
        for (i, w) in weighted.into_iter().flatten().enumerate() {
            let wp = p.child("preferredDuringSchedulingIgnoredDuringExecution").index(i);
            validate_weight(w.weight, &wp.child("weight"), errs);
            match &w.pod_affinity_term {
                Some(t) => validate_pod_affinity_term(t, &wp.child("podAffinityTerm"), errs),
                None => errs.required(&wp.child("podAffinityTerm"), ""),
            }
        }
    }
}

fn validate_weight(w: i32, path: &Path, errs: &mut Errors) {
    if !(1..=100).contains(&w) {
        errs.invalid(path, w, "must be in the range 1-100");
    }
}

/// A node selector (of required node affinity, or a PersistentVolume's node affinity).
pub(in crate::validation) fn validate_node_selector(s: &NodeSelector, path: &Path, errs: &mut Errors) {
    let p = path.child("nodeSelectorTerms");
    if s.node_selector_terms.is_empty() {
        errs.required(&p, "must have at least one node selector term");
    }
    for (i, t) in s.node_selector_terms.iter().enumerate() {
        validate_node_selector_term(t, &p.index(i), errs);
    }
}

fn validate_node_selector_term(t: &NodeSelectorTerm, path: &Path, errs: &mut Errors) {
    for (i, r) in t.match_expressions.iter().enumerate() {
        validate_node_selector_requirement(r, &path.child("matchExpressions").index(i), errs);
    }
    for (i, r) in t.match_fields.iter().enumerate() {
        let p = path.child("matchFields").index(i);
        errs.one_of(&p.child("key"), &r.key, &["metadata.name"]);
        match r.operator.as_str() {
            "In" | "NotIn" if r.values.len() != 1 => errs.required(
                &p.child("values"),
                "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
            ),
            "In" | "NotIn" => {}
            op => errs.not_supported(&p.child("operator"), op, &["In", "NotIn"]),
        }
    }
}

fn validate_node_selector_requirement(r: &NodeSelectorRequirement, path: &Path, errs: &mut Errors) {
    let vp = path.child("values");
    match r.operator.as_str() {
        "In" | "NotIn" if r.values.is_empty() => {
            errs.required(&vp, "must be specified when `operator` is 'In' or 'NotIn'")
        }
        "Exists" | "DoesNotExist" if !r.values.is_empty() => {
            errs.forbidden(&vp, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        }
        "Gt" | "Lt" if r.values.len() != 1 => {
            errs.required(&vp, "must be specified single value when `operator` is 'Lt' or 'Gt'")
        }
        "Gt" | "Lt" if r.values[0].parse::<i64>().is_err() => {
            errs.invalid(&vp.index(0), q(&r.values[0]), "must be an integer when `operator` is 'Lt' or 'Gt'")
        }
        op if !NODE_SELECTOR_OPERATORS.contains(&op) => {
            errs.not_supported(&path.child("operator"), op, NODE_SELECTOR_OPERATORS)
        }
        _ => {}
    }
    errs.syntax(&path.child("key"), &r.key, names::qualified_name(&r.key));
}

fn validate_pod_affinity_term(t: &PodAffinityTerm, path: &Path, errs: &mut Errors) {
    if let Some(s) = &t.label_selector {
        meta::validate_label_selector(s, &path.child("labelSelector"), errs);
    }
    if let Some(s) = &t.namespace_selector {
        meta::validate_label_selector(s, &path.child("namespaceSelector"), errs);
    }
    for (i, ns) in t.namespaces.iter().enumerate() {
        errs.syntax(&path.child("namespaces").index(i), ns, names::dns1123_label(ns));
    }
    let tp = path.child("topologyKey");
    if t.topology_key.is_empty() {
        errs.required(&tp, "can not be empty");
    } else {
        errs.syntax(&tp, &t.topology_key, names::qualified_name(&t.topology_key));
    }
    for (keys, field) in
        [(&t.match_label_keys, "matchLabelKeys"), (&t.mismatch_label_keys, "mismatchLabelKeys")]
    {
        for (i, k) in keys.iter().enumerate() {
            let p = path.child(field).index(i);
            errs.syntax(&p, k, names::qualified_name(k));
            if t.label_selector.is_none() {
                errs.forbidden(&p, "must not be specified when labelSelector is not set");
            }
        }
    }
    for (i, k) in t.match_label_keys.iter().enumerate() {
        if t.mismatch_label_keys.contains(k) {
            errs.invalid(
                &path.child("matchLabelKeys").index(i),
                q(k),
                "exists in both matchLabelKeys and mismatchLabelKeys",
            );
        }
    }
}

pub(super) fn validate_toleration(t: &Toleration, path: &Path, errs: &mut Errors) {
    if !t.key.is_empty() {
        errs.syntax(&path.child("key"), &t.key, names::qualified_name(&t.key));
    }
    let op = path.child("operator");
    if t.key.is_empty() && t.operator != "Exists" {
        errs.invalid(
            &op,
            q(&t.operator),
            "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        );
    }
    if t.toleration_seconds.is_some() && t.effect != "NoExecute" {
        errs.invalid(
            &path.child("effect"),
            q(&t.effect),
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        );
    }
    match t.operator.as_str() {
        "" | "Equal" => errs.syntax(&path.child("value"), &t.value, names::label_value(&t.value)),
        "Exists" => {
            if !t.value.is_empty() {
                errs.invalid(&op, q(&t.value), "value must be empty when `operator` is 'Exists'");
            }
        }
        other => errs.not_supported(&op, other, &["Equal", "Exists"]),
    }
    if !t.effect.is_empty() {
        errs.one_of(&path.child("effect"), &t.effect, &["NoSchedule", "PreferNoSchedule", "NoExecute"]);
    }
}

pub(super) fn validate_topology_spread(list: &[TopologySpreadConstraint], path: &Path, errs: &mut Errors) {
    let mut seen = BTreeSet::new();
    for (i, c) in list.iter().enumerate() {
        let p = path.index(i);
        if c.max_skew <= 0 {
            errs.invalid(&p.child("maxSkew"), c.max_skew, "must be greater than zero");
        }
        let kp = p.child("topologyKey");
        if c.topology_key.is_empty() {
            errs.required(&kp, "can not be empty");
        } else {
            errs.syntax(&kp, &c.topology_key, names::qualified_name(&c.topology_key));
        }
        errs.required_one_of(
            &p.child("whenUnsatisfiable"),
            &c.when_unsatisfiable,
            &["DoNotSchedule", "ScheduleAnyway"],
        );
        if let Some(m) = c.min_domains {
            if m <= 0 {
                errs.invalid(&p.child("minDomains"), m, "must be greater than zero");
            } else if c.when_unsatisfiable != "DoNotSchedule" {
                errs.invalid(
                    &p.child("minDomains"),
                    m,
                    "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway",
                );
            }
        }
        for (policy, field) in
            [(&c.node_affinity_policy, "nodeAffinityPolicy"), (&c.node_taints_policy, "nodeTaintsPolicy")]
        {
            if let Some(v) = policy.as_deref() {
                errs.one_of(&p.child(field), v, &["Honor", "Ignore"]);
            }
        }
        if let Some(s) = &c.label_selector {
            meta::validate_label_selector(s, &p.child("labelSelector"), errs);
        }
        for (j, k) in c.match_label_keys.iter().enumerate() {
            errs.syntax(&p.child("matchLabelKeys").index(j), k, names::qualified_name(k));
        }
        if !seen.insert((c.topology_key.as_str(), c.when_unsatisfiable.as_str())) {
            errs.duplicate(&p, format!("{{{}, {}}}", c.topology_key, c.when_unsatisfiable));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::assert_edit_errors;
    use crate::validation::testing::*;

    #[test]
    fn invalid_scheduling() {
        assert_edit_errors(&[
            ("{kubernetes.io/os: linux}", "{kubernetes.io/os: -linux}", "spec.nodeSelector[kubernetes.io/os]".into(), "a valid label must be"),
            ("{key: dedicated, operator: Equal, value: web, effect: NoSchedule}", "{key: dedicated, operator: Exists, value: web, effect: NoSchedule}", "spec.tolerations[0].operator".into(), "value must be empty when `operator` is 'Exists'"),
            ("{key: dedicated, operator: Equal, value: web, effect: NoSchedule}", "{key: dedicated, operator: Maybe, effect: NoSchedule}", "spec.tolerations[0].operator".into(), "Unsupported value: \"Maybe\": supported values: \"Equal\", \"Exists\""),
            ("{key: dedicated, operator: Equal, value: web, effect: NoSchedule}", "{key: dedicated, value: web, effect: Sometimes}", "spec.tolerations[0].effect".into(), "Unsupported value: \"Sometimes\""),
            ("effect: NoExecute, tolerationSeconds: 300}", "effect: NoSchedule, tolerationSeconds: 300}", "spec.tolerations[1].effect".into(), "effect must be 'NoExecute' when `tolerationSeconds` is set"),
            ("{key: dedicated, operator: Equal,", "{operator: Equal,", "spec.tolerations[0].operator".into(), "operator must be Exists when `key` is empty"),
            ("operator: In, values: [a, b]}", "operator: In, values: []}", "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values".into(), "must be specified when `operator` is 'In' or 'NotIn'"),
            ("operator: In, values: [a, b]}", "operator: Exists, values: [a]}", "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values".into(), "may not be specified"),
            ("operator: Gt, values: ['4']}", "operator: Gt, values: ['4', '5']}", "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].values".into(), "single value"),
            ("operator: Gt, values: ['4']}", "operator: Gt, values: [four]}", "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].values[0]".into(), "must be an integer"),
            ("operator: Gt, values: ['4']}", "operator: Near, values: ['4']}", "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].operator".into(), "Unsupported value: \"Near\""),
            ("  nodeSelector:", "  topologySpreadConstraints: [{maxSkew: 0, topologyKey: zone, whenUnsatisfiable: DoNotSchedule}]\n  nodeSelector:", "spec.topologySpreadConstraints[0].maxSkew".into(), "must be greater than zero"),
        ]);
    }

    #[test]
    fn pod_affinity_terms() {
        let base = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers: [{name: a, image: x}]\n  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {matchExpressions: [{key: app, operator: In, values: [web]}]}\n        topologyKey: kubernetes.io/hostname\n";
        assert_valid(base);
        let p = "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]";
        assert_error(
            &edit(base, "        topologyKey: kubernetes.io/hostname\n", ""),
            &format!("{p}.topologyKey"),
            "Required value: can not be empty",
        );
        assert_error(
            &edit(base, "operator: In, values: [web]", "operator: In"),
            &format!("{p}.labelSelector.matchExpressions[0].values"),
            "must be specified",
        );
        assert_error(
            &edit(base, "operator: In,", "operator: Within,"),
            &format!("{p}.labelSelector.matchExpressions[0].operator"),
            "Unsupported value: \"Within\"",
        );
        let weighted = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers: [{name: a, image: x}]\n  affinity:\n    podAffinity:\n      preferredDuringSchedulingIgnoredDuringExecution:\n      - weight: 101\n        podAffinityTerm: {topologyKey: zone}\n";
        assert_error(
            weighted,
            "spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
            "must be in the range 1-100",
        );
    }
}
