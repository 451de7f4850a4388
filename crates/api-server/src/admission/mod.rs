//! Admission: the checks and changes a write passes after authorization and before storage, on what
//! the request carries and what is stored — Kubernetes' NodeRestriction ([`node_restriction`]: kubelets
//! write only their own Node, Lease and pods, and ask for tokens only for their pods) and
//! ServiceAccount ([`service_account`]) plugins.

pub mod node_restriction;
pub mod service_account;

#[cfg(test)]
mod node_restriction_tests;
