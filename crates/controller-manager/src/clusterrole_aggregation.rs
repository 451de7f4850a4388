//! The ClusterRole aggregation controller (Kubernetes' `clusterrole-aggregation`): a ClusterRole with an
//! `aggregationRule` has as its rules the union of the rules of every other ClusterRole matching any of its
//! selectors — selectors in order, the roles each matches by name, their rules in order, each rule once —
//! written only when that differs from what it has. Aggregated roles may be aggregated in turn: each
//! write is a change the others hear of, so chains settle.
//!
//! [`spawn`] wires it to the shared ClusterRole reflector: any ClusterRole's change re-syncs every
//! aggregated ClusterRole (its labels may have joined or left a selection, its rules changed).

use std::sync::Arc;
use std::time::Duration;

use navarch_api::Resource;
use navarch_api::selector::Selector;
use navarch_api::v1::{ClusterRole, PolicyRule};
use navarch_client::{Action, Client, Controller, ObjectRef, Store};

use crate::run::{Reconciler, Wiring};

/// Why an aggregated ClusterRole could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum AggregationError {
    #[error("ClusterRole {role}: aggregationRule.clusterRoleSelectors[{index}]: {source}")]
    Selector { role: String, index: usize, source: navarch_api::Error },
    #[error(transparent)]
    Client(#[from] navarch_client::Error),
}

/// The rules `target` aggregates from `roles` (every ClusterRole; `target` itself is skipped); `None`
/// when `target` has no aggregationRule.
pub fn aggregated_rules(
    target: &ClusterRole,
    roles: &[Arc<ClusterRole>],
) -> Result<Option<Vec<PolicyRule>>, AggregationError> {
    let Some(rule) = &target.aggregation_rule else { return Ok(None) };
    let name = &target.meta().name;
    let mut sorted: Vec<&ClusterRole> =
        roles.iter().map(Arc::as_ref).filter(|r| r.meta().name != *name).collect();
    sorted.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
    let mut rules: Vec<PolicyRule> = Vec::new();
    for (index, selector) in rule.cluster_role_selectors.iter().enumerate() {
        let selector = Selector::from_label_selector(Some(selector))
            .map_err(|source| AggregationError::Selector { role: name.clone(), index, source })?;
        for role in sorted.iter().filter(|r| selector.matches(&r.meta().labels)) {
            for r in &role.rules {
                if !rules.contains(r) {
                    rules.push(r.clone());
                }
            }
        }
    }
    Ok(Some(rules))
}

pub struct AggregationController {
    pub client: Client,
    pub roles: Store<ClusterRole>,
}

impl Reconciler<ClusterRole> for AggregationController {
    type Error = AggregationError;

    async fn reconcile(&self, role: Arc<ClusterRole>) -> Result<Action, AggregationError> {
        if role.aggregation_rule.is_none() {
            return Ok(Action::await_change());
        }
        if !self.roles.is_ready() {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        let Some(rules) = aggregated_rules(&role, &self.roles.state())? else {
            return Ok(Action::await_change());
        };
        if rules == role.rules {
            return Ok(Action::await_change());
        }
        tracing::info!(clusterrole = %role.meta().name, rules = rules.len(), "aggregated rules changed");
        let mut updated = (*role).clone();
        updated.rules = rules;
        // Conditional on the resourceVersion read: a conflict is retried with the newer object.
        self.client.api::<ClusterRole>("").update(&updated).await?;
        Ok(Action::await_change())
    }
}

/// The aggregated ClusterRoles of `roles`.
fn aggregated(roles: &Store<ClusterRole>) -> Vec<ObjectRef> {
    roles
        .state()
        .iter()
        .filter(|r| r.aggregation_rule.is_some())
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

/// Runs the aggregation controller on the shared ClusterRole reflector.
pub fn spawn(w: &mut Wiring) {
    let roles = w.informers.cluster_roles.store();
    let all = roles.clone();
    let controller = Controller::for_shared(&w.informers.cluster_roles)
        .concurrency(w.workers)
        .watches_shared(&w.informers.cluster_roles, move |_: &ClusterRole| aggregated(&all));
    let ctx = Arc::new(AggregationController { client: w.client.clone(), roles });
    w.controller(controller, ctx, Duration::from_secs(2));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(yaml: &str) -> Arc<ClusterRole> {
        Arc::new(serde_yaml::from_str(yaml).unwrap())
    }

    fn rule(verb: &str, resource: &str) -> PolicyRule {
        PolicyRule {
            verbs: vec![verb.into()],
            api_groups: vec![String::new()],
            resources: vec![resource.into()],
            ..Default::default()
        }
    }

    fn rules_of(target: &Arc<ClusterRole>, roles: &[Arc<ClusterRole>]) -> Vec<PolicyRule> {
        aggregated_rules(target, roles).unwrap().expect("aggregated")
    }

    fn fixtures() -> (Arc<ClusterRole>, Vec<Arc<ClusterRole>>) {
        let target = role(
            "{metadata: {name: monitoring}, aggregationRule: {clusterRoleSelectors: [{matchLabels: {agg: mon}}, {matchExpressions: [{key: extra, operator: Exists}]}]}, rules: [{verbs: [stale], apiGroups: [''], resources: [x]}]}",
        );
        let roles = vec![
            role(
                "{metadata: {name: zeta, labels: {agg: mon}}, rules: [{verbs: [get], apiGroups: [''], resources: [pods]}, {verbs: [list], apiGroups: [''], resources: [pods]}]}",
            ),
            role(
                "{metadata: {name: alpha, labels: {agg: mon}}, rules: [{verbs: [list], apiGroups: [''], resources: [pods]}, {verbs: [get], apiGroups: [''], resources: [nodes]}]}",
            ),
            role(
                "{metadata: {name: beta, labels: {extra: 'yes'}}, rules: [{verbs: [get], apiGroups: [''], resources: [pods]}, {verbs: [watch], apiGroups: [''], resources: [pods]}]}",
            ),
            role(
                "{metadata: {name: other, labels: {agg: nope}}, rules: [{verbs: ['*'], apiGroups: ['*'], resources: ['*']}]}",
            ),
            target.clone(),
        ];
        (target, roles)
    }

    #[test]
    fn union_in_selector_then_name_order_without_repeats() {
        let (target, roles) = fixtures();
        assert_eq!(
            rules_of(&target, &roles),
            [rule("list", "pods"), rule("get", "nodes"), rule("get", "pods"), rule("watch", "pods")]
        );
        // The order of the store does not matter.
        let mut reversed = roles.clone();
        reversed.reverse();
        assert_eq!(rules_of(&target, &reversed), rules_of(&target, &roles));
    }

    #[test]
    fn rules_differing_in_any_field_are_kept_apart() {
        let target =
            role("{metadata: {name: t}, aggregationRule: {clusterRoleSelectors: [{matchLabels: {a: b}}]}}");
        let roles = vec![
            role(
                "{metadata: {name: one, labels: {a: b}}, rules: [{verbs: [get], apiGroups: [''], resources: [pods]}]}",
            ),
            role(
                "{metadata: {name: two, labels: {a: b}}, rules: [{verbs: [get], apiGroups: [''], resources: [pods], resourceNames: [p]}, {verbs: [get], nonResourceURLs: [/healthz]}, {verbs: [get], apiGroups: [''], resources: [pods]}]}",
            ),
        ];
        assert_eq!(rules_of(&target, &roles).len(), 3);
    }

    #[test]
    fn nothing_selected_means_no_rules_and_self_is_never_selected() {
        let (target, roles) = fixtures();
        assert!(rules_of(&target, &roles[3..]).is_empty(), "only `other` and itself");
        // An empty selector selects every ClusterRole, but never the aggregated role itself.
        let everything = role(
            "{metadata: {name: all, labels: {agg: mon}}, aggregationRule: {clusterRoleSelectors: [{}]}, rules: [{verbs: [mine], apiGroups: [''], resources: [x]}]}",
        );
        let mut with = roles.clone();
        with.push(everything.clone());
        let rules = rules_of(&everything, &with);
        assert!(!rules.contains(&rule("mine", "x")));
        assert!(rules.iter().any(|r| r.verbs == ["*"]), "`other` is selected too");
        // An aggregationRule without selectors aggregates nothing.
        let none = role(
            "{metadata: {name: none}, aggregationRule: {}, rules: [{verbs: [get], apiGroups: [''], resources: [x]}]}",
        );
        assert!(rules_of(&none, &roles).is_empty());
    }

    #[test]
    fn roles_without_an_aggregation_rule_are_left_alone() {
        let (_, roles) = fixtures();
        assert!(aggregated_rules(&roles[0], &roles).unwrap().is_none());
    }

    #[test]
    fn a_bad_selector_is_an_error_naming_it() {
        let bad = role(
            "{metadata: {name: bad}, aggregationRule: {clusterRoleSelectors: [{}, {matchExpressions: [{key: a, operator: In}]}]}}",
        );
        let e = aggregated_rules(&bad, &[]).unwrap_err().to_string();
        assert!(e.starts_with("ClusterRole bad: aggregationRule.clusterRoleSelectors[1]: "), "{e}");
    }

    #[test]
    fn aggregated_roles_take_the_current_rules_of_aggregated_roles() {
        // edit aggregates view (itself aggregated): it takes view's rules as they are now.
        let view = role(
            "{metadata: {name: view, labels: {to-edit: 'true'}}, aggregationRule: {clusterRoleSelectors: [{matchLabels: {to-view: 'true'}}]}, rules: [{verbs: [get], apiGroups: [''], resources: [pods]}]}",
        );
        let edit = role(
            "{metadata: {name: edit}, aggregationRule: {clusterRoleSelectors: [{matchLabels: {to-edit: 'true'}}]}}",
        );
        assert_eq!(rules_of(&edit, &[view, edit.clone()]), [rule("get", "pods")]);
    }
}
