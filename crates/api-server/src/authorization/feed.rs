//! Keeps the RBAC index current: four [`LocalStore`]s (Roles, ClusterRoles, RoleBindings,
//! ClusterRoleBindings) whose changes go to the [`RbacAuthorizer`] one object at a time.

use std::sync::Arc;

use navarch_api::Object;

use super::convert;
use crate::authz::RbacAuthorizer;
use crate::local_store::{LocalStore, OnChange, StoreChange};
use crate::state::ApiState;

/// The stores; keep them (the stores' tasks stop with the api-server).
pub struct RbacStores {
    pub roles: Arc<LocalStore>,
    pub cluster_roles: Arc<LocalStore>,
    pub role_bindings: Arc<LocalStore>,
    pub cluster_role_bindings: Arc<LocalStore>,
}

impl RbacStores {
    pub fn synced(&self) -> bool {
        [&self.roles, &self.cluster_roles, &self.role_bindings, &self.cluster_role_bindings]
            .iter()
            .all(|s| s.is_synced())
    }
}

fn apply(rbac: &RbacAuthorizer, object: &Object, deleted: bool) {
    let meta = object.meta();
    match object {
        Object::Role(r) if deleted => rbac.remove_role(&meta.namespace, &meta.name),
        Object::Role(r) => rbac.upsert_role(convert::role(r)),
        Object::ClusterRole(_) if deleted => rbac.remove_cluster_role(&meta.name),
        Object::ClusterRole(r) => rbac.upsert_cluster_role(convert::cluster_role(r)),
        Object::RoleBinding(_) if deleted => rbac.remove_role_binding(&meta.namespace, &meta.name),
        Object::RoleBinding(b) => rbac.upsert_role_binding(convert::role_binding(b)),
        Object::ClusterRoleBinding(_) if deleted => rbac.remove_cluster_role_binding(&meta.name),
        Object::ClusterRoleBinding(b) => rbac.upsert_cluster_role_binding(convert::cluster_role_binding(b)),
        _ => {}
    }
}

fn on_change(rbac: Arc<RbacAuthorizer>, kind: &'static str) -> OnChange {
    Arc::new(move |change: StoreChange<'_>| match change {
        StoreChange::Reset(items) => {
            // A relist of one kind: its objects replaced at once.
            let (mut roles, mut cluster_roles, mut role_bindings, mut cluster_role_bindings) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for o in items {
                match &**o {
                    Object::Role(r) => roles.push(convert::role(r)),
                    Object::ClusterRole(r) => cluster_roles.push(convert::cluster_role(r)),
                    Object::RoleBinding(b) => role_bindings.push(convert::role_binding(b)),
                    Object::ClusterRoleBinding(b) => {
                        cluster_role_bindings.push(convert::cluster_role_binding(b))
                    }
                    _ => {}
                }
            }
            rbac.reset_kind(kind, roles, cluster_roles, role_bindings, cluster_role_bindings);
        }
        StoreChange::Upsert(o) => apply(&rbac, o, false),
        StoreChange::Delete(o) => apply(&rbac, o, true),
    })
}

pub fn start(state: &Arc<ApiState>, rbac: &Arc<RbacAuthorizer>) -> RbacStores {
    let store = |kind: &'static str| LocalStore::start(state, kind, "", Some(on_change(rbac.clone(), kind)));
    RbacStores {
        roles: store("Role"),
        cluster_roles: store("ClusterRole"),
        role_bindings: store("RoleBinding"),
        cluster_role_bindings: store("ClusterRoleBinding"),
    }
}
