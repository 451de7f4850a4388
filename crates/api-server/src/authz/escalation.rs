//! Privilege escalation prevention for writes of RBAC objects (`pkg/registry/rbac`: the policy-based
//! storages, `escalation_check.go`, `validation.ConfirmNoEscalation`): a user may create or update a
//! Role or ClusterRole only with permissions it already holds — or with the `escalate` verb on it —,
//! and may bind a role only if it holds the role's permissions — or has the `bind` verb on it.
//! Members of `system:masters` may do anything.
//!
//! The registry calls [`RbacAuthorizer::check_role_write`], [`RbacAuthorizer::check_cluster_role_write`],
//! [`RbacAuthorizer::check_role_binding_write`] and [`RbacAuthorizer::check_cluster_role_binding_write`]
//! on create and update, with the object's namespace already set from the URL. Like Kubernetes, it
//! skips them for an update that changes nothing but `metadata.ownerReferences` and
//! `metadata.finalizers` (what the garbage collector writes).

use std::collections::BTreeSet;

use super::attributes::{Attributes, verbs};
use super::forbidden::forbidden_status_message;
use super::go_format;
use super::policy::{
    ALL, ClusterRole, ClusterRoleBinding, KIND_CLUSTER_ROLE, KIND_ROLE, PolicyRule, RBAC_GROUP, Role,
    RoleBinding, RoleRef,
};
use super::rbac::{RbacAuthorizer, ResolvedRules, RoleRefError};
use super::rules::{compact_rules, compact_string, covers};
use crate::user_info::{MASTERS_GROUP, UserInfo};

/// The user lacks some of the permissions it tries to grant. `message` is Kubernetes' text:
/// `user "alice" (groups=["g1" "system:authenticated"]) is attempting to grant RBAC permissions not
/// currently held:\n{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EscalationError {
    pub message: String,
    /// The permissions not held, broken down to one verb, group, resource and name each.
    pub uncovered: Vec<PolicyRule>,
}

/// Why a write of an RBAC object is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RbacWriteError {
    /// A 403 `Forbidden` Status with details (group `rbac.authorization.k8s.io`, kind = `resource`,
    /// `name`): `roles.rbac.authorization.k8s.io "r" is forbidden: <reason>`.
    #[error("{}", forbidden_status_message(RBAC_GROUP, .resource, .name, .reason))]
    Forbidden { resource: &'static str, name: String, reason: String },
    /// The binding's role does not exist (a 404), or its kind is not Role/ClusterRole.
    #[error(transparent)]
    RoleRef(#[from] RoleRefError),
}

const AGGREGATION_NEEDS_CLUSTER_ADMIN: &str = "must have cluster-admin privileges to use the aggregationRule";

/// Members of `system:masters` bypass every escalation check (Kubernetes' `EscalationAllowed`).
pub fn escalation_allowed(user: &UserInfo) -> bool {
    user.in_group(MASTERS_GROUP)
}

/// `*` on everything, resources and URLs: what setting an aggregation rule requires.
pub fn full_authority() -> Vec<PolicyRule> {
    vec![PolicyRule::resource(&[ALL], &[ALL], &[ALL]), PolicyRule::non_resource(&[ALL], &[ALL])]
}

/// Kubernetes' `ConfirmNoEscalation`: whether `owner` (the user's rules where the object is written)
/// covers `requested`; the error lists the missing permissions compacted and sorted, plus the
/// resolution errors met gathering `owner`.
pub fn confirm_no_escalation(
    user: &UserInfo,
    owner: &ResolvedRules,
    requested: &[PolicyRule],
) -> Result<(), EscalationError> {
    let uncovered = match covers(&owner.rules, requested) {
        Ok(()) => return Ok(()),
        Err(uncovered) => uncovered,
    };
    let descriptions: BTreeSet<String> = compact_rules(&uncovered).iter().map(compact_string).collect();
    let mut message = format!(
        "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        go_format::quote(&user.name),
        go_format::quote_list(&user.groups),
        descriptions.into_iter().collect::<Vec<_>>().join("\n")
    );
    if !owner.errors.is_empty() {
        message.push_str(&format!("; resolution errors: [{}]", go_format::aggregate(&owner.errors)));
    }
    Err(EscalationError { message, uncovered })
}

fn has_aggregation_rule(role: &ClusterRole) -> bool {
    role.aggregation_rule.as_ref().is_some_and(|a| !a.cluster_role_selectors.is_empty())
}

impl RbacAuthorizer {
    /// Whether the user has the `escalate` verb on the role it writes (`RoleEscalationAuthorized`);
    /// `resource` is `roles` or `clusterroles`, `namespace` empty for the latter.
    pub fn role_escalation_authorized(
        &self,
        user: &UserInfo,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> bool {
        let a = Attributes::resource(user.clone(), verbs::ESCALATE, RBAC_GROUP, resource)
            .namespace(namespace)
            .name(name)
            .api_version(ALL);
        self.authorize(&a).is_allowed()
    }

    /// Whether the user has the `bind` verb on the referenced role where the binding is written
    /// (`BindingAuthorized`; `binding_namespace` empty for a ClusterRoleBinding).
    pub fn binding_authorized(&self, user: &UserInfo, role_ref: &RoleRef, binding_namespace: &str) -> bool {
        let resource = match role_ref.kind.as_str() {
            KIND_CLUSTER_ROLE => "clusterroles",
            KIND_ROLE => "roles",
            _ => return false,
        };
        let a = Attributes::resource(user.clone(), verbs::BIND, role_ref.api_group.clone(), resource)
            .namespace(binding_namespace)
            .name(role_ref.name.clone())
            .api_version(ALL);
        self.authorize(&a).is_allowed()
    }

    /// [`confirm_no_escalation`] against the user's rules in `namespace` (empty: cluster-wide rules).
    pub fn confirm_no_escalation(
        &self,
        user: &UserInfo,
        namespace: &str,
        requested: &[PolicyRule],
    ) -> Result<(), EscalationError> {
        confirm_no_escalation(user, &self.rules_for(user, namespace), requested)
    }

    /// May `user` create or update `role`?
    pub fn check_role_write(&self, user: &UserInfo, role: &Role) -> Result<(), RbacWriteError> {
        if escalation_allowed(user)
            || self.role_escalation_authorized(user, "roles", &role.namespace, &role.name)
        {
            return Ok(());
        }
        self.confirm_no_escalation(user, &role.namespace, &role.rules)
            .map_err(|e| forbidden("roles", &role.name, e.message))
    }

    /// May `user` create (`old` = None) or update `role`? Setting, changing or removing an aggregation
    /// rule also needs full authority, since the rule can gather any permission.
    pub fn check_cluster_role_write(
        &self,
        user: &UserInfo,
        role: &ClusterRole,
        old: Option<&ClusterRole>,
    ) -> Result<(), RbacWriteError> {
        if escalation_allowed(user) || self.role_escalation_authorized(user, "clusterroles", "", &role.name) {
            return Ok(());
        }
        self.confirm_no_escalation(user, "", &role.rules)
            .map_err(|e| forbidden("clusterroles", &role.name, e.message))?;
        if has_aggregation_rule(role) || old.is_some_and(has_aggregation_rule) {
            self.confirm_no_escalation(user, "", &full_authority())
                .map_err(|_| forbidden("clusterroles", &role.name, AGGREGATION_NEEDS_CLUSTER_ADMIN.into()))?;
        }
        Ok(())
    }

    /// May `user` create or update `binding`?
    pub fn check_role_binding_write(
        &self,
        user: &UserInfo,
        binding: &RoleBinding,
    ) -> Result<(), RbacWriteError> {
        self.check_binding(user, "rolebindings", &binding.name, &binding.role_ref, &binding.namespace)
    }

    /// May `user` create or update `binding`?
    pub fn check_cluster_role_binding_write(
        &self,
        user: &UserInfo,
        binding: &ClusterRoleBinding,
    ) -> Result<(), RbacWriteError> {
        self.check_binding(user, "clusterrolebindings", &binding.name, &binding.role_ref, "")
    }

    fn check_binding(
        &self,
        user: &UserInfo,
        resource: &'static str,
        name: &str,
        role_ref: &RoleRef,
        namespace: &str,
    ) -> Result<(), RbacWriteError> {
        if escalation_allowed(user) || self.binding_authorized(user, role_ref, namespace) {
            return Ok(());
        }
        let rules = self.role_ref_rules(role_ref, namespace)?;
        self.confirm_no_escalation(user, namespace, &rules).map_err(|e| forbidden(resource, name, e.message))
    }
}

fn forbidden(resource: &'static str, name: &str, reason: String) -> RbacWriteError {
    RbacWriteError::Forbidden { resource, name: name.to_string(), reason }
}

#[cfg(test)]
#[path = "escalation_tests.rs"]
mod tests;
