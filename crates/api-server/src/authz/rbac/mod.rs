//! Kubernetes' RBAC authorizer (`plugin/pkg/auth/authorizer/rbac`): a request is allowed when a rule of
//! a role bound to the user — by a ClusterRoleBinding anywhere, by a RoleBinding in the request's
//! namespace — allows it; otherwise RBAC has no opinion. Also the rules that apply to a user in a
//! namespace (SelfSubjectRulesReview, `kubectl auth can-i --list`) and the role-reference resolution
//! escalation checks use.
//!
//! The objects live in an [`index::Index`] behind one `RwLock`: decisions share the read lock (they
//! touch only the bindings of the user's name and groups), watch events take the write lock for one
//! object; a relist builds a new index outside the lock and swaps it in.

mod index;

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use index::IndexCounts;
use index::{Index, MissingRole, StoredBinding};

use super::attributes::{Attributes, Decision};
use super::go_format;
use super::policy::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef};
use super::rules::rule_allows;
use crate::user_info::UserInfo;

/// The RBAC authorizer and its index. Share it in an `Arc`; every method takes `&self`.
#[derive(Debug, Default)]
pub struct RbacAuthorizer {
    index: RwLock<Index>,
}

/// The rules that apply to a user in a namespace, with the errors met resolving them (a binding to a
/// missing role): the rules are still valid — RBAC only adds permissions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedRules {
    pub rules: Vec<PolicyRule>,
    pub errors: Vec<String>,
}

/// A SelfSubjectRulesReview's status: the resource rules (verbs, apiGroups, resources, resourceNames)
/// and non-resource rules (verbs, nonResourceURLs) that apply, and the resolution errors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RulesReview {
    pub resource_rules: Vec<PolicyRule>,
    pub non_resource_rules: Vec<PolicyRule>,
    /// RBAC's list is complete even with errors (the errors only say some bindings granted nothing).
    pub incomplete: bool,
    pub evaluation_error: String,
}

/// Why a role reference gives no rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoleRefError {
    /// `roles.rbac.authorization.k8s.io "x" not found` (the registry's NotFound: a 404).
    #[error("{resource}.rbac.authorization.k8s.io {} not found", go_format::quote(.name))]
    NotFound { resource: &'static str, name: String },
    #[error("unsupported role reference kind: {}", go_format::quote(.0))]
    UnsupportedKind(String),
}

impl RbacAuthorizer {
    pub fn new() -> RbacAuthorizer {
        RbacAuthorizer::default()
    }

    /// Kubernetes' `RBACAuthorizer.Authorize`: `Allow` naming the binding, role and subject that
    /// allowed the request, or `NoOpinion` with the resolution errors met (`RBAC: ...`), if any.
    pub fn authorize(&self, a: &Attributes) -> Decision {
        let index = self.read();
        let mut errors: Vec<String> = Vec::new();
        for binding in index.candidates(&a.user, &a.namespace) {
            match index.role_ref_rules(&binding.role_ref, &binding.namespace) {
                Ok(rules) => {
                    if rules.iter().any(|r| rule_allows(a, r)) {
                        return Decision::Allow(allowed_reason(binding, &a.user));
                    }
                }
                Err(missing) => errors.push(missing.lister_message()),
            }
        }
        if errors.is_empty() {
            Decision::NoOpinion(String::new())
        } else {
            Decision::NoOpinion(format!("RBAC: {}", go_format::aggregate(&errors)))
        }
    }

    /// Every rule that applies to `user` in `namespace` (ClusterRoleBindings' roles, then the
    /// namespace's RoleBindings' roles; only the former for an empty namespace), each binding once.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> ResolvedRules {
        let index = self.read();
        let mut seen: HashSet<*const StoredBinding> = HashSet::new();
        let mut out = ResolvedRules::default();
        for binding in index.candidates(user, namespace) {
            if !seen.insert(Arc::as_ptr(binding)) {
                continue;
            }
            match index.role_ref_rules(&binding.role_ref, &binding.namespace) {
                Ok(rules) => out.rules.extend(rules.iter().cloned()),
                Err(missing) => out.errors.push(missing.lister_message()),
            }
        }
        out
    }

    /// The SelfSubjectRulesReview of `user` in `namespace`. A rule granted through several bindings is
    /// listed once (Kubernetes repeats it; the meaning is the same).
    pub fn rules_review(&self, user: &UserInfo, namespace: &str) -> RulesReview {
        let resolved = self.rules_for(user, namespace);
        let mut review = RulesReview {
            evaluation_error: go_format::aggregate(&resolved.errors),
            ..RulesReview::default()
        };
        let mut seen: HashSet<PolicyRule> = HashSet::new();
        for rule in resolved.rules {
            if !seen.insert(rule.clone()) {
                continue;
            }
            if !rule.resources.is_empty() {
                review.resource_rules.push(PolicyRule {
                    verbs: rule.verbs.clone(),
                    api_groups: rule.api_groups.clone(),
                    resources: rule.resources.clone(),
                    resource_names: rule.resource_names.clone(),
                    non_resource_urls: Vec::new(),
                });
            }
            if !rule.non_resource_urls.is_empty() {
                review
                    .non_resource_rules
                    .push(PolicyRule::non_resource(&rule.verbs, &rule.non_resource_urls));
            }
        }
        review
    }

    /// The rules a binding in `binding_namespace` (empty for a ClusterRoleBinding) referring to
    /// `role_ref` grants (Kubernetes' `GetRoleReferenceRules`).
    pub fn role_ref_rules(
        &self,
        role_ref: &RoleRef,
        binding_namespace: &str,
    ) -> Result<Vec<PolicyRule>, RoleRefError> {
        let index = self.read();
        match index.role_ref_rules(role_ref, binding_namespace) {
            Ok(rules) => Ok(rules.to_vec()),
            Err(MissingRole::Role(name)) => {
                Err(RoleRefError::NotFound { resource: "roles", name: name.into() })
            }
            Err(MissingRole::ClusterRole(name)) => {
                Err(RoleRefError::NotFound { resource: "clusterroles", name: name.into() })
            }
            Err(MissingRole::UnsupportedKind(kind)) => Err(RoleRefError::UnsupportedKind(kind.into())),
        }
    }

    pub fn upsert_role(&self, role: Role) {
        self.write().upsert_role(role);
    }

    pub fn remove_role(&self, namespace: &str, name: &str) {
        self.write().remove_role(namespace, name);
    }

    /// Indexes the ClusterRole's rules (for an aggregated role, the rules the aggregation controller
    /// wrote).
    pub fn upsert_cluster_role(&self, role: ClusterRole) {
        self.write().upsert_cluster_role(role);
    }

    pub fn remove_cluster_role(&self, name: &str) {
        self.write().remove_cluster_role(name);
    }

    pub fn upsert_role_binding(&self, binding: RoleBinding) {
        self.write().upsert_role_binding(binding);
    }

    pub fn remove_role_binding(&self, namespace: &str, name: &str) {
        self.write().remove_role_binding(namespace, name);
    }

    pub fn upsert_cluster_role_binding(&self, binding: ClusterRoleBinding) {
        self.write().upsert_cluster_role_binding(binding);
    }

    /// Replaces every object of one kind at once (a relist of that kind): readers see the old set or
    /// the new one, never a mix or nothing.
    pub fn reset_kind(
        &self,
        kind: &str,
        roles: Vec<Role>,
        cluster_roles: Vec<ClusterRole>,
        role_bindings: Vec<RoleBinding>,
        cluster_role_bindings: Vec<ClusterRoleBinding>,
    ) {
        let mut index = self.write();
        index.clear_kind(kind);
        roles.into_iter().for_each(|r| index.upsert_role(r));
        cluster_roles.into_iter().for_each(|r| index.upsert_cluster_role(r));
        role_bindings.into_iter().for_each(|b| index.upsert_role_binding(b));
        cluster_role_bindings.into_iter().for_each(|b| index.upsert_cluster_role_binding(b));
    }

    pub fn remove_cluster_role_binding(&self, name: &str) {
        self.write().remove_cluster_role_binding(name);
    }

    /// Replaces everything (after a relist): the new index is built before the write lock is taken.
    pub fn replace_all(
        &self,
        roles: impl IntoIterator<Item = Role>,
        cluster_roles: impl IntoIterator<Item = ClusterRole>,
        role_bindings: impl IntoIterator<Item = RoleBinding>,
        cluster_role_bindings: impl IntoIterator<Item = ClusterRoleBinding>,
    ) {
        let mut fresh = Index::default();
        roles.into_iter().for_each(|r| fresh.upsert_role(r));
        cluster_roles.into_iter().for_each(|r| fresh.upsert_cluster_role(r));
        role_bindings.into_iter().for_each(|b| fresh.upsert_role_binding(b));
        cluster_role_bindings.into_iter().for_each(|b| fresh.upsert_cluster_role_binding(b));
        *self.write() = fresh;
    }

    pub fn counts(&self) -> IndexCounts {
        self.read().counts()
    }

    /// A panic while holding the lock cannot leave the index half-updated in a way that matters
    /// (every update is one map operation per key), so a poisoned lock is used as is.
    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn allowed_reason(binding: &StoredBinding, user: &UserInfo) -> String {
    match binding.applying_subject(user) {
        Some(subject) => format!("RBAC: allowed by {}", binding.describe(subject)),
        None => String::from("RBAC: allowed"),
    }
}

#[cfg(test)]
mod tests;
