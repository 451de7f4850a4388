//! navarch's public-key infrastructure, as kubeadm lays it out: what the `navarch-pki` tool creates and
//! what every daemon loads.
//!
//! * [`authority`]: a certificate authority (ECDSA P-256 key + self-signed certificate) and the leaf
//!   certificates it issues — servers (DNS/IP names), clients (CN = user, O = groups), both.
//! * [`cluster`]: the cluster's files under one directory (the cluster CA, a separate etcd CA, the
//!   service-account key pair, the encryption configuration, one certificate per component identity,
//!   per-node kubelet certificates), created idempotently: what exists and is still good is kept.
//! * [`tls`]: rustls server and client configurations from those files, always with the `ring` provider.
//! * [`subject`]: the user a verified client certificate names (CN, O), read from its DER.
//! * [`csr`]: PKCS#10 signing requests, made by a joining node and read back by the signer.
//!
//! Keys are written 0600; CA keys are only read on the machine that made them: by this tool and by
//! the controller-manager's CSR signer (Kubernetes' `--cluster-signing-key-file`).

#![forbid(unsafe_code)]

pub mod authority;
pub mod cluster;
pub mod csr;
pub mod files;
pub mod subject;
pub mod tls;

pub use authority::{Authority, Leaf, LeafKind, verify_issued};
pub use cluster::{ClusterPki, ComponentIdentity, InitOptions, NodeCerts};
pub use subject::{SubjectError, SubjectNames, subject_names};

/// What can go wrong making or loading PKI files. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Invalid { path: std::path::PathBuf, reason: String },
    #[error("generating {what}: {source}")]
    Generate { what: String, source: rcgen::Error },
    #[error("TLS configuration: {0}")]
    Tls(String),
}

pub type Result<T, E = PkiError> = std::result::Result<T, E>;
