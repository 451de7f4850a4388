//! Authorization as the api-server runs it: the chain of authorizers every request passes (the Node
//! authorizer for kubelets, then RBAC), fed from the api-server's own [`LocalStore`]s, and the default
//! RBAC policy written at start.
//!
//! The engine (rule matching, the index, escalation checks, the default policy's data) is
//! [`crate::authz`]; this module connects it to storage: [`convert`] maps the stored kinds to its types,
//! [`feed`] keeps the index current from watch events, [`default_policy`] reconciles Kubernetes' default
//! roles and bindings into etcd (missing rules and subjects added; objects annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "false"` left alone).

pub mod admission;
pub mod convert;
pub mod default_policy;
pub mod feed;

use std::sync::Arc;

use crate::authz::{Attributes, Decision, RbacAuthorizer, forbidden};
use crate::error::ApiError;

/// One authorizer of the chain.
pub trait Authorizer: Send + Sync {
    fn authorize(&self, attributes: &Attributes) -> Decision;
}

impl Authorizer for RbacAuthorizer {
    fn authorize(&self, attributes: &Attributes) -> Decision {
        RbacAuthorizer::authorize(self, attributes)
    }
}

/// One entry of `--authorization-mode`, named as kube-apiserver names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Node,
    Rbac,
    AlwaysAllow,
    AlwaysDeny,
}

impl Mode {
    const ALL: [(&'static str, Mode); 4] = [
        ("Node", Mode::Node),
        ("RBAC", Mode::Rbac),
        ("AlwaysAllow", Mode::AlwaysAllow),
        ("AlwaysDeny", Mode::AlwaysDeny),
    ];

    /// The modes in order, refusing unknown, repeated or no modes (kube-apiserver's messages).
    pub fn parse_all(names: &[String]) -> Result<Vec<Mode>, String> {
        if names.is_empty() || names.iter().all(|n| n.is_empty()) {
            return Err("at least one authorization-mode must be passed".into());
        }
        let mut modes = Vec::new();
        for name in names {
            let Some((_, mode)) = Mode::ALL.iter().find(|(n, _)| n == name) else {
                let valid: Vec<&str> = Mode::ALL.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "authorization-mode {name:?} is not a valid mode (valid: {})",
                    valid.join(", ")
                ));
            };
            if modes.contains(mode) {
                return Err(format!("authorization-mode {name:?} has mode specified more than once"));
            }
            modes.push(*mode);
        }
        Ok(modes)
    }
}

/// `AlwaysAllow` / `AlwaysDeny`: every request allowed, or refused.
struct Always(bool);

impl Authorizer for Always {
    fn authorize(&self, _: &Attributes) -> Decision {
        if self.0 { Decision::Allow(String::new()) } else { Decision::Deny(String::new()) }
    }
}

/// The authorizers, asked in order: the first `Allow` or `Deny` decides; all `NoOpinion` is a refusal.
pub struct Authorization {
    /// The RBAC index: kept whatever the modes, for escalation checks and reviews of rules.
    pub rbac: Arc<RbacAuthorizer>,
    chain: Vec<Arc<dyn Authorizer>>,
}

impl Authorization {
    /// `before_rbac`: authorizers asked first (the Node authorizer).
    pub fn new(rbac: Arc<RbacAuthorizer>, before_rbac: Vec<Arc<dyn Authorizer>>) -> Authorization {
        let mut chain = before_rbac;
        chain.push(rbac.clone());
        Authorization { rbac, chain }
    }

    /// The chain `modes` names (`node`: the Node authorizer).
    pub fn with_modes(modes: &[Mode], rbac: Arc<RbacAuthorizer>, node: Arc<dyn Authorizer>) -> Authorization {
        let chain = modes
            .iter()
            .map(|mode| match mode {
                Mode::Node => node.clone(),
                Mode::Rbac => rbac.clone() as Arc<dyn Authorizer>,
                Mode::AlwaysAllow => Arc::new(Always(true)) as Arc<dyn Authorizer>,
                Mode::AlwaysDeny => Arc::new(Always(false)) as Arc<dyn Authorizer>,
            })
            .collect();
        Authorization { rbac, chain }
    }

    pub fn authorize(&self, attributes: &Attributes) -> Decision {
        let mut reasons = Vec::new();
        for authorizer in &self.chain {
            match authorizer.authorize(attributes) {
                Decision::NoOpinion(reason) => {
                    if !reason.is_empty() {
                        reasons.push(reason);
                    }
                }
                decided => return decided,
            }
        }
        Decision::NoOpinion(reasons.join(", "))
    }

    /// `Ok` when allowed, else the 403 with Kubernetes' message.
    pub fn check(&self, attributes: &Attributes) -> Result<Decision, ApiError> {
        let decision = self.authorize(attributes);
        if decision.is_allowed() {
            return Ok(decision);
        }
        let status = forbidden(attributes, decision.reason());
        Err(ApiError::Denied(status.message))
    }
}
