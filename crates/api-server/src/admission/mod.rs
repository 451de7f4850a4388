//! Admission: the checks and changes a write passes after authorization and before storage, on what
//! the request carries and what is stored — Kubernetes' NodeRestriction ([`node_restriction`]: kubelets
//! write only their own Node, Lease and pods, and ask for tokens only for their pods), ServiceAccount
//! ([`service_account`]), CertificateApproval and CertificateSigning ([`certificates`]: approving
//! and issuing a CertificateSigningRequest are permissions on its signer), DefaultStorageClass and
//! StorageObjectInUseProtection ([`storage`]), LimitRanger ([`limit_range`]) and Priority ([`priority`]:
//! PriorityClasses into pods' priorities) plugins, and ResourceQuota ([`resource_quota`]: last before the
//! write, charging the namespace's quotas).

pub mod certificates;
pub mod limit_range;
pub mod node_restriction;
pub mod priority;
pub mod resource_quota;
pub mod service_account;
pub mod storage;

#[cfg(test)]
mod node_restriction_tests;
