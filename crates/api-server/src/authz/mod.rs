//! Authorization: what a request asks to do ([`Attributes`]), the answer ([`Decision`]) and the message
//! a refusal carries ([`forbidden`]), and Kubernetes' RBAC — the authorizer over an in-memory index of
//! Roles, ClusterRoles and their bindings ([`rbac`]), rule matching and coverage ([`rules`]), privilege
//! escalation prevention for RBAC writes ([`escalation`]), ClusterRole aggregation ([`aggregation`]) and
//! the default policy with its reconciliation ([`bootstrap`]).
//!
//! The RBAC objects are plain types ([`policy`]) rather than the generated API kinds, so the registry
//! and the watch plumbing convert into them and this module stays independent of the wire format.

pub mod aggregation;
pub mod attributes;
pub mod bootstrap;
pub mod escalation;
pub mod forbidden;
pub mod go_format;
pub mod node;
pub mod policy;
pub mod rbac;
pub mod rules;

pub use attributes::{Attributes, Decision};
pub use escalation::{EscalationError, RbacWriteError};
pub use forbidden::{ForbiddenStatus, forbidden};
pub use policy::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
pub use rbac::{RbacAuthorizer, RulesReview};
