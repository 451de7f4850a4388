//! The api-server's validating admission of writes made for a request's user (the registry calls it
//! through [`crate::registry::Admission`]): RBAC's escalation prevention on Roles, ClusterRoles and their
//! bindings (a user may grant only what it holds, unless it has `escalate` / `bind`), CertificateApproval
//! and CertificateSigning (`approve` / `sign` on a CertificateSigningRequest's signer,
//! [`crate::admission::certificates`]), then NodeRestriction for kubelets
//! ([`crate::admission::node_restriction`]).

use std::sync::Arc;

use navarch_api::Object;

use super::convert;
use crate::admission::{certificates, node_restriction};
use crate::authenticate::BoundStores;
use crate::authz::rbac::RoleRefError;
use crate::authz::{RbacAuthorizer, RbacWriteError};
use crate::error::ApiError;
use crate::registry::{Admission, WriteOperation};
use crate::user_info::UserInfo;

pub struct SecurityAdmission {
    pub rbac: Arc<RbacAuthorizer>,
    /// Where NodeRestriction finds the Node of a mirror pod.
    pub bound: Arc<BoundStores>,
}

fn rbac_error(e: RbacWriteError) -> ApiError {
    match e {
        RbacWriteError::Forbidden { .. } => ApiError::Denied(e.to_string()),
        RbacWriteError::RoleRef(RoleRefError::NotFound { resource, name }) => {
            ApiError::NotFound { plural: format!("{resource}.rbac.authorization.k8s.io"), name }
        }
        RbacWriteError::RoleRef(e) => ApiError::BadRequest(e.to_string()),
    }
}

/// Whether an update leaves everything RBAC looks at as it was (metadata such as finalizers or owner
/// references changed): Kubernetes skips the escalation check then.
fn same_grants(new: &Object, old: Option<&Object>) -> bool {
    match (new, old) {
        (Object::Role(n), Some(Object::Role(o))) => n.rules == o.rules,
        (Object::ClusterRole(n), Some(Object::ClusterRole(o))) => {
            n.rules == o.rules && n.aggregation_rule == o.aggregation_rule
        }
        (Object::RoleBinding(n), Some(Object::RoleBinding(o))) => {
            n.role_ref == o.role_ref && n.subjects == o.subjects
        }
        (Object::ClusterRoleBinding(n), Some(Object::ClusterRoleBinding(o))) => {
            n.role_ref == o.role_ref && n.subjects == o.subjects
        }
        _ => false,
    }
}

impl Admission for SecurityAdmission {
    fn admit(
        &self,
        user: &UserInfo,
        operation: WriteOperation,
        new: Option<&Object>,
        old: Option<&Object>,
    ) -> Result<(), ApiError> {
        if let Some(new) = new
            && operation != WriteOperation::Delete
            && !same_grants(new, old)
        {
            let rbac = &self.rbac;
            let checked = match new {
                Object::Role(r) => rbac.check_role_write(user, &convert::role(r)),
                Object::ClusterRole(r) => {
                    let old = match old {
                        Some(Object::ClusterRole(o)) => Some(convert::cluster_role(o)),
                        _ => None,
                    };
                    rbac.check_cluster_role_write(user, &convert::cluster_role(r), old.as_ref())
                }
                Object::RoleBinding(b) => rbac.check_role_binding_write(user, &convert::role_binding(b)),
                Object::ClusterRoleBinding(b) => {
                    rbac.check_cluster_role_binding_write(user, &convert::cluster_role_binding(b))
                }
                _ => Ok(()),
            };
            checked.map_err(rbac_error)?;
        }
        if let WriteOperation::Update { subresource } = operation {
            certificates::admit(self.rbac.as_ref(), user, subresource, new, old)?;
        }
        let (verb, subresource) = match operation {
            WriteOperation::Create => ("create", ""),
            WriteOperation::Update { subresource } => ("update", subresource),
            WriteOperation::Delete => ("delete", ""),
        };
        let lookup = |kind: &str, namespace: &str, name: &str| match kind {
            "Node" => self.bound.nodes.get("", name),
            "Pod" => self.bound.pods.get(namespace, name),
            _ => None,
        };
        node_restriction::admit(user, verb, new, old, subresource, &lookup)
    }
}
