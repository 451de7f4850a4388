//! ClusterRole aggregation (Kubernetes' clusterrole-aggregation controller, `syncClusterRole`): the
//! rules of a ClusterRole with an `aggregationRule` are the rules of every other ClusterRole matching
//! one of its selectors — selectors in order, roles by name, each distinct rule once.

use navarch_api::selector::Selector;

use super::policy::{ClusterRole, PolicyRule};

/// The rules `role` must have given `all` ClusterRoles (which may include `role` itself: it is
/// skipped), or `None` when `role` is not aggregated. An invalid selector is an error, as in
/// Kubernetes (the role is then left alone).
pub fn aggregate_rules<'a>(
    role: &ClusterRole,
    all: impl IntoIterator<Item = &'a ClusterRole>,
) -> Result<Option<Vec<PolicyRule>>, navarch_api::Error> {
    let Some(aggregation) = &role.aggregation_rule else { return Ok(None) };
    let mut candidates: Vec<&ClusterRole> = all.into_iter().filter(|c| c.name != role.name).collect();
    candidates.sort_by(|a, b| a.name.cmp(&b.name));
    let mut rules: Vec<PolicyRule> = Vec::new();
    for label_selector in &aggregation.cluster_role_selectors {
        let selector = Selector::from_label_selector(Some(label_selector))?;
        for candidate in candidates.iter().filter(|c| selector.matches(&c.labels)) {
            for rule in &candidate.rules {
                if !rules.contains(rule) {
                    rules.push(rule.clone());
                }
            }
        }
    }
    Ok(Some(rules))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use navarch_api::v1::{LabelSelector, LabelSelectorRequirement};

    use super::*;
    use crate::authz::policy::AggregationRule;

    fn labelled(name: &str, labels: &[(&str, &str)], rules: Vec<PolicyRule>) -> ClusterRole {
        ClusterRole {
            name: name.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            rules,
            ..ClusterRole::default()
        }
    }

    fn matching(key: &str) -> LabelSelector {
        LabelSelector {
            match_labels: BTreeMap::from([(key.to_string(), "true".to_string())]),
            ..LabelSelector::default()
        }
    }

    fn get(resource: &str) -> PolicyRule {
        PolicyRule::resource(&["get"], &[""], &[resource])
    }

    #[test]
    fn gathers_matching_roles_by_name_without_duplicates() {
        let admin = ClusterRole {
            name: "admin".into(),
            labels: BTreeMap::from([("to-admin".to_string(), "true".to_string())]),
            aggregation_rule: Some(AggregationRule { cluster_role_selectors: vec![matching("to-admin")] }),
            rules: vec![get("stale")],
            ..ClusterRole::default()
        };
        let roles = vec![
            admin.clone(),
            labelled("z-role", &[("to-admin", "true")], vec![get("secrets"), get("pods")]),
            labelled("a-role", &[("to-admin", "true")], vec![get("pods")]),
            labelled("other", &[("to-admin", "false")], vec![get("nodes")]),
        ];
        let rules = aggregate_rules(&admin, &roles).expect("valid").expect("aggregated");
        assert_eq!(
            rules,
            vec![get("pods"), get("secrets")],
            "a-role first, pods once, self and non-matching skipped"
        );
    }

    #[test]
    fn selectors_in_order_and_expressions() {
        let exists = LabelSelector {
            match_expressions: vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "Exists".into(),
                values: vec![],
            }],
            ..LabelSelector::default()
        };
        let role = ClusterRole {
            name: "agg".into(),
            aggregation_rule: Some(AggregationRule { cluster_role_selectors: vec![matching("x"), exists] }),
            ..ClusterRole::default()
        };
        let roles = [
            labelled("b", &[("tier", "web")], vec![get("b")]),
            labelled("c", &[("x", "true")], vec![get("c")]),
        ];
        let rules = aggregate_rules(&role, &roles).expect("valid").expect("aggregated");
        assert_eq!(rules, vec![get("c"), get("b")]);
    }

    #[test]
    fn not_aggregated_and_invalid_selectors() {
        let plain = labelled("plain", &[], vec![get("pods")]);
        assert_eq!(aggregate_rules(&plain, [&plain]).expect("valid"), None);
        let bad = ClusterRole {
            name: "bad".into(),
            aggregation_rule: Some(AggregationRule {
                cluster_role_selectors: vec![LabelSelector {
                    match_expressions: vec![LabelSelectorRequirement {
                        key: "k".into(),
                        operator: "Bogus".into(),
                        values: vec![],
                    }],
                    ..LabelSelector::default()
                }],
            }),
            ..ClusterRole::default()
        };
        assert!(aggregate_rules(&bad, [&plain]).is_err());
        let empty = ClusterRole {
            name: "empty".into(),
            aggregation_rule: Some(AggregationRule::default()),
            ..ClusterRole::default()
        };
        assert_eq!(aggregate_rules(&empty, [&plain]).expect("valid"), Some(vec![]));
    }
}
