//! Kubernetes' default RBAC policy ([`crate::authz::bootstrap`]) reconciled into storage when the
//! api-server starts, as kube-apiserver's `rbac/bootstrap-roles` post-start hook does: each default
//! ClusterRole, ClusterRoleBinding, Role and RoleBinding is created when missing and given its missing
//! rules and subjects when present; what an administrator added is kept, and objects annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "false"` are left alone.

use navarch_api::Object;

use super::convert;
use crate::authz::aggregation;
use crate::authz::bootstrap::{self, reconcile};
use crate::error::ApiError;
use crate::registry::{FieldManager, Registry, SERVER_MANAGER};

async fn stored(
    registry: &Registry,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<Object>, ApiError> {
    match registry.get(kind, namespace, name).await {
        Ok(o) => Ok(Some(o)),
        Err(ApiError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn write(registry: &Registry, object: Object, exists: bool) -> Result<(), ApiError> {
    let manager = FieldManager::update(SERVER_MANAGER);
    let r = if exists {
        registry.update(object, false, false, manager).await.map(|_| ())
    } else {
        registry.create(object, false, manager).await.map(|_| ())
    };
    match r {
        // Another api-server wrote it meanwhile: the next start reconciles again.
        Ok(()) | Err(ApiError::AlreadyExists { .. } | ApiError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes what the default policy is missing; returns how many objects it wrote.
pub async fn reconcile(registry: &Registry) -> Result<usize, ApiError> {
    let mut written = 0;
    // admin, edit and view are unions of the `aggregate-to-*` roles: filled in here too, so the
    // api-server's defaults work before the controller-manager's aggregation controller first runs.
    let defaults = bootstrap::cluster_roles();
    let mut cluster_roles = defaults.clone();
    for role in &mut cluster_roles {
        if let Ok(Some(rules)) = aggregation::aggregate_rules(role, &defaults) {
            role.rules = rules;
        }
    }
    for expected in cluster_roles {
        let current = match stored(registry, "ClusterRole", "", &expected.name).await? {
            Some(Object::ClusterRole(r)) => Some(r),
            _ => None,
        };
        let existing = current.as_ref().map(convert::cluster_role);
        let plan = reconcile::reconcile_role(&expected, existing.as_ref());
        if let Some(role) = plan.to_write() {
            write(
                registry,
                Object::ClusterRole(convert::cluster_role_out(role, current.as_ref())),
                current.is_some(),
            )
            .await?;
            written += 1;
        }
    }
    for expected in bootstrap::cluster_role_bindings() {
        let current = match stored(registry, "ClusterRoleBinding", "", &expected.name).await? {
            Some(Object::ClusterRoleBinding(b)) => Some(b),
            _ => None,
        };
        let existing = current.as_ref().map(convert::cluster_role_binding);
        let plan = reconcile::reconcile_binding(&expected, existing.as_ref());
        if let Some(binding) = plan.to_write() {
            let object = convert::cluster_role_binding_out(binding, current.as_ref());
            write(registry, Object::ClusterRoleBinding(object), current.is_some()).await?;
            written += 1;
        }
    }
    for expected in bootstrap::roles() {
        let current = match stored(registry, "Role", &expected.namespace, &expected.name).await? {
            Some(Object::Role(r)) => Some(r),
            _ => None,
        };
        let existing = current.as_ref().map(convert::role);
        let plan = reconcile::reconcile_role(&expected, existing.as_ref());
        if let Some(role) = plan.to_write() {
            write(registry, Object::Role(convert::role_out(role, current.as_ref())), current.is_some())
                .await?;
            written += 1;
        }
    }
    for expected in bootstrap::role_bindings() {
        let current = match stored(registry, "RoleBinding", &expected.namespace, &expected.name).await? {
            Some(Object::RoleBinding(b)) => Some(b),
            _ => None,
        };
        let existing = current.as_ref().map(convert::role_binding);
        let plan = reconcile::reconcile_binding(&expected, existing.as_ref());
        if let Some(binding) = plan.to_write() {
            write(
                registry,
                Object::RoleBinding(convert::role_binding_out(binding, current.as_ref())),
                current.is_some(),
            )
            .await?;
            written += 1;
        }
    }
    Ok(written)
}
