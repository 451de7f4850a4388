//! Reconciliation of the default policy (Kubernetes' `component-helpers/auth/rbac/reconciliation` as
//! the api-server's bootstrap uses it: add what is missing, never remove): given the expected object
//! and the stored one, what must be written. Objects annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "false"` are left alone. The same code serves
//! ClusterRoles and Roles ([`RuleOwner`]), ClusterRoleBindings and RoleBindings ([`BindingOwner`]).

use std::collections::BTreeMap;

use navarch_api::v1::LabelSelector;

use crate::authz::policy::{
    AUTO_UPDATE_ANNOTATION, AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding,
    RoleRef, Subject,
};
use crate::authz::rules::covers;

/// The metadata reconciliation merges.
pub trait Labelled: Clone {
    fn labels(&self) -> &BTreeMap<String, String>;
    fn annotations(&self) -> &BTreeMap<String, String>;
    fn labels_mut(&mut self) -> &mut BTreeMap<String, String>;
    fn annotations_mut(&mut self) -> &mut BTreeMap<String, String>;
}

macro_rules! labelled {
    ($($kind:ty),*) => {$(
        impl Labelled for $kind {
            fn labels(&self) -> &BTreeMap<String, String> {
                &self.labels
            }
            fn annotations(&self) -> &BTreeMap<String, String> {
                &self.annotations
            }
            fn labels_mut(&mut self) -> &mut BTreeMap<String, String> {
                &mut self.labels
            }
            fn annotations_mut(&mut self) -> &mut BTreeMap<String, String> {
                &mut self.annotations
            }
        }
    )*};
}

labelled!(ClusterRole, Role, ClusterRoleBinding, RoleBinding);

/// A Role or ClusterRole: rules, and for ClusterRoles an aggregation rule.
pub trait RuleOwner: Labelled {
    fn rules(&self) -> &[PolicyRule];
    fn rules_mut(&mut self) -> &mut Vec<PolicyRule>;
    fn aggregation_rule(&self) -> Option<&AggregationRule>;
    fn set_aggregation_rule(&mut self, rule: Option<AggregationRule>);
}

impl RuleOwner for ClusterRole {
    fn rules(&self) -> &[PolicyRule] {
        &self.rules
    }
    fn rules_mut(&mut self) -> &mut Vec<PolicyRule> {
        &mut self.rules
    }
    fn aggregation_rule(&self) -> Option<&AggregationRule> {
        self.aggregation_rule.as_ref()
    }
    fn set_aggregation_rule(&mut self, rule: Option<AggregationRule>) {
        self.aggregation_rule = rule;
    }
}

/// Roles have no aggregation rule.
impl RuleOwner for Role {
    fn rules(&self) -> &[PolicyRule] {
        &self.rules
    }
    fn rules_mut(&mut self) -> &mut Vec<PolicyRule> {
        &mut self.rules
    }
    fn aggregation_rule(&self) -> Option<&AggregationRule> {
        None
    }
    fn set_aggregation_rule(&mut self, _: Option<AggregationRule>) {}
}

/// A RoleBinding or ClusterRoleBinding.
pub trait BindingOwner: Labelled {
    fn role_ref(&self) -> &RoleRef;
    fn subjects(&self) -> &[Subject];
    fn subjects_mut(&mut self) -> &mut Vec<Subject>;
}

macro_rules! binding_owner {
    ($($kind:ty),*) => {$(
        impl BindingOwner for $kind {
            fn role_ref(&self) -> &RoleRef {
                &self.role_ref
            }
            fn subjects(&self) -> &[Subject] {
                &self.subjects
            }
            fn subjects_mut(&mut self) -> &mut Vec<Subject> {
                &mut self.subjects
            }
        }
    )*};
}

binding_owner!(ClusterRoleBinding, RoleBinding);

/// The write reconciliation asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconcileOperation {
    /// Already as expected.
    None,
    /// Absent: create the expected object.
    Create,
    /// Update the stored object to the reconciled one.
    Update,
    /// A binding's roleRef cannot change: delete the stored binding (precondition: its uid) and
    /// create the expected one.
    Recreate,
}

/// The outcome for one Role or ClusterRole.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleReconciliation<R> {
    pub operation: ReconcileOperation,
    /// The stored role opted out (`autoupdate: "false"`): nothing is written.
    pub protected: bool,
    /// What the role must be: the stored one plus the missing rules, selectors, labels and annotations
    /// (the expected one when absent).
    pub role: R,
    /// Expected permissions the stored role lacked (broken down to one verb/group/resource/name).
    pub missing_rules: Vec<PolicyRule>,
    /// Permissions the stored role has beyond the expected ones (kept; reported only).
    pub extra_rules: Vec<PolicyRule>,
    pub missing_aggregation_selectors: Vec<LabelSelector>,
    pub extra_aggregation_selectors: Vec<LabelSelector>,
}

impl<R> RoleReconciliation<R> {
    /// The role to create or update, if anything must be written.
    pub fn to_write(&self) -> Option<&R> {
        (!self.protected && self.operation != ReconcileOperation::None).then_some(&self.role)
    }
}

/// The outcome for one RoleBinding or ClusterRoleBinding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingReconciliation<B> {
    pub operation: ReconcileOperation,
    /// The stored binding opted out (`autoupdate: "false"`): nothing is written.
    pub protected: bool,
    /// What the binding must be: the stored one plus the missing subjects, labels and annotations (the
    /// expected one when absent or when its roleRef differs).
    pub binding: B,
    pub missing_subjects: Vec<Subject>,
    /// Subjects beyond the expected ones (kept; reported only).
    pub extra_subjects: Vec<Subject>,
}

impl<B> BindingReconciliation<B> {
    /// The binding to create, update or recreate, if anything must be written.
    pub fn to_write(&self) -> Option<&B> {
        (!self.protected && self.operation != ReconcileOperation::None).then_some(&self.binding)
    }
}

fn is_protected(annotations: &BTreeMap<String, String>) -> bool {
    annotations.get(AUTO_UPDATE_ANNOTATION).is_some_and(|v| v == "false")
}

/// Merges the expected labels and annotations into `stored` (the stored values win); whether that
/// changed anything.
fn merge_metadata<T: Labelled>(expected: &T, stored: &mut T) -> bool {
    let mut changed = false;
    for (key, value) in expected.labels() {
        if !stored.labels().contains_key(key) {
            stored.labels_mut().insert(key.clone(), value.clone());
            changed = true;
        }
    }
    for (key, value) in expected.annotations() {
        if !stored.annotations().contains_key(key) {
            stored.annotations_mut().insert(key.clone(), value.clone());
            changed = true;
        }
    }
    changed
}

/// Reconciles the stored Role or ClusterRole (`None`: absent) with the expected one.
pub fn reconcile_role<R: RuleOwner>(expected: &R, existing: Option<&R>) -> RoleReconciliation<R> {
    let Some(existing) = existing else {
        return RoleReconciliation {
            operation: ReconcileOperation::Create,
            protected: false,
            role: expected.clone(),
            missing_rules: expected.rules().to_vec(),
            extra_rules: Vec::new(),
            missing_aggregation_selectors: selectors(expected.aggregation_rule()).to_vec(),
            extra_aggregation_selectors: Vec::new(),
        };
    };
    let mut role = existing.clone();
    let mut operation = ReconcileOperation::None;
    if merge_metadata(expected, &mut role) {
        operation = ReconcileOperation::Update;
    }

    // Two aggregated roles' rules are the aggregation controller's business: no extra rules then.
    let extra_rules = if expected.aggregation_rule().is_none() || existing.aggregation_rule().is_none() {
        covers(expected.rules(), existing.rules()).err().unwrap_or_default()
    } else {
        Vec::new()
    };
    let missing_rules = covers(existing.rules(), expected.rules()).err().unwrap_or_default();
    if !missing_rules.is_empty() {
        role.rules_mut().extend(missing_rules.iter().cloned());
        operation = ReconcileOperation::Update;
    }

    let extra_aggregation_selectors =
        uncovered_selectors(expected.aggregation_rule(), existing.aggregation_rule());
    let missing_aggregation_selectors =
        uncovered_selectors(existing.aggregation_rule(), expected.aggregation_rule());
    if expected.aggregation_rule().is_none() && existing.aggregation_rule().is_some() {
        role.set_aggregation_rule(None);
        operation = ReconcileOperation::Update;
    } else if !missing_aggregation_selectors.is_empty() {
        let mut aggregation = existing.aggregation_rule().cloned().unwrap_or_default();
        aggregation.cluster_role_selectors.extend(missing_aggregation_selectors.iter().cloned());
        role.set_aggregation_rule(Some(aggregation));
        operation = ReconcileOperation::Update;
    }

    RoleReconciliation {
        operation,
        protected: is_protected(existing.annotations()),
        role,
        missing_rules,
        extra_rules,
        missing_aggregation_selectors,
        extra_aggregation_selectors,
    }
}

fn selectors(rule: Option<&AggregationRule>) -> &[LabelSelector] {
    rule.map(|r| r.cluster_role_selectors.as_slice()).unwrap_or_default()
}

/// The selectors of `servant` that `owner` lacks (`aggregationRuleCovers`); nothing when `servant`
/// has no aggregation rule.
fn uncovered_selectors(
    owner: Option<&AggregationRule>,
    servant: Option<&AggregationRule>,
) -> Vec<LabelSelector> {
    let owned = selectors(owner);
    selectors(servant).iter().filter(|s| !owned.contains(s)).cloned().collect()
}

/// Reconciles the stored RoleBinding or ClusterRoleBinding (`None`: absent) with the expected one.
pub fn reconcile_binding<B: BindingOwner>(expected: &B, existing: Option<&B>) -> BindingReconciliation<B> {
    let Some(existing) = existing else {
        return BindingReconciliation {
            operation: ReconcileOperation::Create,
            protected: false,
            binding: expected.clone(),
            missing_subjects: expected.subjects().to_vec(),
            extra_subjects: Vec::new(),
        };
    };
    let protected = is_protected(existing.annotations());
    if expected.role_ref() != existing.role_ref() {
        return BindingReconciliation {
            operation: ReconcileOperation::Recreate,
            protected,
            binding: expected.clone(),
            missing_subjects: Vec::new(),
            extra_subjects: Vec::new(),
        };
    }
    let mut binding = existing.clone();
    let mut operation = ReconcileOperation::None;
    if merge_metadata(expected, &mut binding) {
        operation = ReconcileOperation::Update;
    }
    let missing_subjects = only_in(expected.subjects(), existing.subjects());
    let extra_subjects = only_in(existing.subjects(), expected.subjects());
    if !missing_subjects.is_empty() {
        binding.subjects_mut().extend(missing_subjects.iter().cloned());
        operation = ReconcileOperation::Update;
    }
    BindingReconciliation { operation, protected, binding, missing_subjects, extra_subjects }
}

/// The distinct subjects of `a` not in `b`, in order.
fn only_in(a: &[Subject], b: &[Subject]) -> Vec<Subject> {
    let mut out: Vec<Subject> = Vec::new();
    for s in a {
        if !b.contains(s) && !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
