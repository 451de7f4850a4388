//! The audit log, Kubernetes' `audit.k8s.io/v1`: a chronological record of the requests the
//! api-server served — who, what, when, from where, the authorization decision and the answer —
//! written as Kubernetes' log backend writes it, so audit tooling reads it unchanged.
//!
//! * [`policy`]: `--audit-policy-file`, which requests are recorded at which level;
//! * [`attributes`]: what a request is (verb, resource, ...) and the extension types through which
//!   authentication and the doors tell the layer about it;
//! * [`event`]: the event and its JSON;
//! * [`layer`]: the `tower` layer that wraps the front door (both doors: REST requests are recorded up
//!   to `RequestResponse`; gRPC requests at `Metadata` at most, their bodies never);
//! * [`log`] and [`rotate`]: the writer task and the rotated file (`--audit-log-path`,
//!   `--audit-log-maxsize`, `--audit-log-maxbackup`, `--audit-log-maxage`);
//! * [`body`] and [`response`]: the request and response bodies the layer reads.
//!
//! As in Kubernetes, nothing is recorded without both a policy file and a log path. Bodies of Secrets
//! and tokens are never recorded, whatever the policy says.

pub mod attributes;
pub mod body;
pub mod event;
pub mod layer;
pub mod log;
pub mod policy;
pub mod response;
pub mod rotate;

use std::path::Path;

pub use attributes::{Authorization, ImpersonatedBy, OutcomeRecorder, RequestAttributes, RequestOutcome};
pub use body::ReplayBody;
pub use event::Event;
pub use layer::{AUDIT_ID_HEADER, AuditLayer, AuditService};
pub use log::{AuditLog, AuditSink, DroppedEvents};
pub use policy::{Level, Policy, PolicyError, Stage};

use crate::config::Config;

/// Events queued for the writer before new ones are dropped (Kubernetes' default buffer size).
pub const QUEUE_CAPACITY: usize = 10_000;

/// Why auditing could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// Running audit: the layer to wrap the front door with, and the log to close at shutdown (its
/// [`AuditLog::dropped`] count is the dropped-events metric).
pub struct Audit {
    pub layer: AuditLayer,
    pub log: AuditLog,
}

/// Starts auditing as `config` says (within a tokio runtime): `None` when the policy file or the log
/// path is not set.
pub fn start(config: &Config) -> Result<Option<Audit>, AuditError> {
    let (Some(policy_file), Some(log_path)) = (&config.audit_policy_file, &config.audit_log_path) else {
        if config.audit_policy_file.is_some() || config.audit_log_path.is_some() {
            tracing::warn!(
                "auditing needs both --audit-policy-file and --audit-log-path: no events are recorded"
            );
        }
        return Ok(None);
    };
    let policy = Policy::load(policy_file)?;
    let rotation = rotate::Rotation::from_flags(
        config.audit_log_maxsize,
        config.audit_log_maxbackup,
        config.audit_log_maxage,
    );
    let log = AuditLog::start(output(log_path, rotation), QUEUE_CAPACITY);
    tracing::info!(policy = %policy_file.display(), log = %log_path.display(), "audit log enabled");
    Ok(Some(Audit { layer: AuditLayer::new(policy, log.sink()), log }))
}

/// `-` is standard output (no rotation), anything else a rotated file.
fn output(path: &Path, rotation: rotate::Rotation) -> Box<dyn log::LogOutput> {
    if path == Path::new("-") {
        Box::new(log::StreamOutput::new(std::io::stdout()))
    } else {
        Box::new(rotate::RotatingFile::new(path.to_path_buf(), rotation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let mut all = vec![
            "--tls-cert-file",
            "c",
            "--tls-private-key-file",
            "k",
            "--client-ca-file",
            "ca",
            "--kubelet-certificate-authority",
            "kca",
        ];
        all.extend_from_slice(args);
        navarch_daemon::resolve_args::<Config>(&all, &[]).unwrap()
    }

    #[tokio::test]
    async fn starts_only_with_a_policy_and_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.yaml");
        std::fs::write(&policy, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
            .unwrap();
        let log = dir.path().join("audit.log");
        let (policy_s, log_s) = (policy.to_str().unwrap(), log.to_str().unwrap());
        assert!(start(&config(&[])).unwrap().is_none());
        assert!(start(&config(&["--audit-policy-file", policy_s])).unwrap().is_none());
        assert!(start(&config(&["--audit-log-path", log_s])).unwrap().is_none());
        let c =
            config(&["--audit-policy-file", policy_s, "--audit-log-path", log_s, "--audit-log-maxsize", "5"]);
        assert_eq!((c.audit_log_maxsize, c.audit_log_maxbackup, c.audit_log_maxage), (5, 0, 0));
        let audit = start(&c).unwrap().unwrap();
        audit.log.close().await;
        std::fs::write(&policy, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n").unwrap();
        let e = start(&c).err().unwrap().to_string();
        assert!(e.contains("0 rules") && e.contains("policy.yaml"), "{e}");
    }
}
