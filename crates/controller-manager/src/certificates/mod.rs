//! Kubernetes' certificate controllers (`pkg/controller/certificates`), which let a node join with one
//! secret: its bootstrap token creates a CertificateSigningRequest for the node's client certificate,
//! the approver approves it, the signer issues it from the cluster CA; the node, now itself, asks for
//! its serving certificate the same way.
//!
//! * **Approver** (`csrapproving`): approves, through the `approval` subresource, a
//!   `kubernetes.io/kube-apiserver-client-kubelet` request for a node client certificate when its
//!   requester may `create` `certificatesigningrequests/nodeclient` (or `selfnodeclient` when a node
//!   renews its own), asked of the api-server with a SubjectAccessReview. navarch adds two recognizers
//!   Kubernetes leaves to external approvers: a node's own `kubernetes.io/kubelet-serving` request
//!   whose names are the node's name and addresses (as its Node reports them), and a
//!   `kubernetes.io/kube-apiserver-client` request for `system:kube-proxy` whose requester may
//!   `create` `certificatesigningrequests/kubeproxyclient`. Anything else stays pending for a human
//!   (`kubectl certificate approve`).
//! * **Signer** (`csrsigning`, with `--cluster-signing-cert-file`/`--cluster-signing-key-file`): an
//!   approved request of those three signers gets its certificate (`status.certificate`) once it
//!   passes the signer's checks ([`checks`]), valid for `spec.expirationSeconds` capped at
//!   `--cluster-signing-duration`; one that does not gets `Failed` (`SignerValidationFailure`).
//! * **Cleaner** (`csrcleaner`): issued, denied and failed requests are deleted an hour after their
//!   last condition, pending ones a day after creation.

pub mod checks;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use navarch_api::Resource;
use navarch_api::table_columns::age::parse_timestamp;
use navarch_api::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec, Node,
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use navarch_client::{Action, Client, Controller, DeleteParams, ObjectRef, Store};
use navarch_pki::Authority;
use navarch_pki::csr::CertificateRequest;

use self::checks::{Recognized, SIGNERS, check_for_signer, recognize, serving_names_match};
use crate::run::{Reconciler, Wiring};

pub const APPROVED: &str = "Approved";
pub const DENIED: &str = "Denied";
pub const FAILED: &str = "Failed";
/// Issued, denied and failed requests are kept this long after their last condition.
const FINISHED_KEPT: Duration = Duration::from_secs(3600);
/// Pending requests are kept this long after creation.
const PENDING_KEPT: Duration = Duration::from_secs(24 * 3600);
/// How soon a serving request whose node is not there yet (or lacks the address) is looked at again.
const NODE_RETRY: Duration = Duration::from_secs(5);

/// The cluster CA the signer issues from, and the longest validity it grants.
pub struct Signing {
    pub authority: Authority,
    pub max_validity: Duration,
}

pub struct CertificateController {
    pub client: Client,
    pub nodes: Store<Node>,
    /// `None`: approve only (no signing key configured).
    pub signing: Option<Arc<Signing>>,
}

fn condition<'a>(
    csr: &'a CertificateSigningRequest,
    kind: &str,
) -> Option<&'a CertificateSigningRequestCondition> {
    csr.status.as_ref()?.conditions.iter().find(|c| c.r#type == kind && c.status != "False")
}

/// When a condition was last updated, else when the request was created.
fn last_change(csr: &CertificateSigningRequest) -> Option<SystemTime> {
    let conditions = csr.status.iter().flat_map(|s| s.conditions.iter());
    conditions
        .filter_map(|c| parse_timestamp(&c.last_update_time))
        .max()
        .or_else(|| parse_timestamp(&csr.meta().creation_timestamp))
}

/// A condition with status True.
fn true_condition(kind: &str, reason: &str, message: String) -> CertificateSigningRequestCondition {
    CertificateSigningRequestCondition {
        r#type: kind.into(),
        status: "True".into(),
        reason: reason.into(),
        message,
        ..Default::default()
    }
}

/// Whether a write happened; a request changed or gone meanwhile is no error (its event brings it back).
fn written<T>(result: Result<T, navarch_client::Error>) -> Result<bool, navarch_client::Error> {
    match result {
        Ok(_) => Ok(true),
        Err(navarch_client::Error::Conflict(_) | navarch_client::Error::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

impl CertificateController {
    fn api(&self) -> navarch_client::Api<CertificateSigningRequest> {
        self.client.api::<CertificateSigningRequest>("")
    }

    /// Deletes a request kept `kept` past `since`, else comes back then.
    async fn clean(
        &self,
        csr: &CertificateSigningRequest,
        since: Option<SystemTime>,
        kept: Duration,
    ) -> Result<Action, navarch_client::Error> {
        let Some(since) = since else { return Ok(Action::await_change()) };
        let age = SystemTime::now().duration_since(since).unwrap_or_default();
        if age < kept {
            return Ok(Action::requeue(kept - age + Duration::from_secs(1)));
        }
        let name = &csr.meta().name;
        match self.api().delete(name, &DeleteParams::default()).await {
            Ok(_) => tracing::info!(csr = %name, "deleted an old CertificateSigningRequest"),
            Err(navarch_client::Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        Ok(Action::await_change())
    }

    /// Whether the requester may create `certificatesigningrequests/<subresource>`.
    async fn requester_may(
        &self,
        spec: &CertificateSigningRequestSpec,
        subresource: &str,
    ) -> Result<bool, navarch_client::Error> {
        let review = SubjectAccessReview {
            spec: Some(SubjectAccessReviewSpec {
                user: spec.username.clone(),
                uid: spec.uid.clone(),
                groups: spec.groups.clone(),
                extra: spec.extra.clone(),
                resource_attributes: Some(ResourceAttributes {
                    group: "certificates.k8s.io".into(),
                    resource: "certificatesigningrequests".into(),
                    subresource: subresource.into(),
                    verb: "create".into(),
                    version: "*".into(),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            }),
            ..SubjectAccessReview::default()
        };
        Ok(self.client.review(&review).await?.status.is_some_and(|s| s.allowed))
    }

    /// Approves the request if it is one the approver recognizes and its requester may have it.
    async fn approve(
        &self,
        csr: &CertificateSigningRequest,
        spec: &CertificateSigningRequestSpec,
        request: &CertificateRequest,
    ) -> Result<Action, navarch_client::Error> {
        let name = &csr.meta().name;
        let pending = || self.clean(csr, parse_timestamp(&csr.meta().creation_timestamp), PENDING_KEPT);
        let Some(kind) = recognize(&spec.signer_name, request, &spec.usages, &spec.username, &spec.groups)
        else {
            return pending().await;
        };
        if let Recognized::NodeServing { node } = &kind {
            let Some(n) = self.nodes.get(&ObjectRef::new("", node)) else {
                tracing::debug!(csr = %name, %node, "serving certificate request of a node not registered yet");
                return Ok(Action::requeue(NODE_RETRY));
            };
            let addresses: Vec<(String, String)> = n
                .status
                .iter()
                .flat_map(|s| s.addresses.iter())
                .map(|a| (a.r#type.clone(), a.address.clone()))
                .collect();
            if let Err(why) = serving_names_match(request, node, &addresses) {
                tracing::info!(csr = %name, %node, %why, "not approving a serving certificate request");
                return Ok(Action::requeue(NODE_RETRY));
            }
        }
        if let Some(subresource) = kind.subresource()
            && !self.requester_may(spec, subresource).await?
        {
            tracing::info!(csr = %name, user = %spec.username, subresource, "requester may not have this certificate");
            return pending().await;
        }
        let mut approved = csr.clone();
        approved.status.get_or_insert_with(Default::default).conditions.push(true_condition(
            APPROVED,
            "AutoApproved",
            kind.message().into(),
        ));
        if written(self.api().update_approval(&approved).await)? {
            tracing::info!(csr = %name, user = %spec.username, "approved");
        }
        Ok(Action::await_change())
    }

    /// Issues the certificate of an approved request of one of this signer's signers.
    async fn sign(
        &self,
        csr: &CertificateSigningRequest,
        spec: &CertificateSigningRequestSpec,
        request: Result<CertificateRequest, String>,
    ) -> Result<Action, navarch_client::Error> {
        let Some(signing) = &self.signing else { return Ok(Action::await_change()) };
        if !SIGNERS.contains(&spec.signer_name.as_str()) {
            return Ok(Action::await_change());
        }
        let name = &csr.meta().name;
        let mut updated = csr.clone();
        let status = updated.status.get_or_insert_with(Default::default);
        let checked =
            request.and_then(|r| check_for_signer(&spec.signer_name, &r, &spec.usages).map(|k| (r, k)));
        match checked {
            Ok((request, kind)) => {
                let asked =
                    spec.expiration_seconds.map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)));
                let validity = asked.map_or(signing.max_validity, |a| a.min(signing.max_validity));
                match signing.authority.sign_key(&request.leaf(kind, validity), &request.public_key) {
                    Ok(pem) => status.certificate = BASE64.encode(pem),
                    Err(e) => {
                        tracing::warn!(csr = %name, error = %e, "signing");
                        return Ok(Action::requeue(Duration::from_secs(30)));
                    }
                }
            }
            Err(why) => {
                tracing::info!(csr = %name, %why, "the request does not fit its signer");
                status.conditions.push(true_condition(FAILED, "SignerValidationFailure", why));
            }
        }
        let outcome = if status.certificate.is_empty() { "failed" } else { "signed" };
        if written(self.api().update_status(&updated).await)? {
            tracing::info!(csr = %name, signer = %spec.signer_name, outcome, "wrote the request's status");
        }
        Ok(Action::await_change())
    }
}

impl Reconciler<CertificateSigningRequest> for CertificateController {
    type Error = navarch_client::Error;

    async fn reconcile(&self, csr: Arc<CertificateSigningRequest>) -> Result<Action, navarch_client::Error> {
        if !csr.meta().deletion_timestamp.is_empty() {
            return Ok(Action::await_change());
        }
        let issued = csr.status.as_ref().is_some_and(|s| !s.certificate.is_empty());
        if issued || condition(&csr, DENIED).is_some() || condition(&csr, FAILED).is_some() {
            return self.clean(&csr, last_change(&csr), FINISHED_KEPT).await;
        }
        let spec = csr.spec.clone().unwrap_or_default();
        let request = BASE64
            .decode(&spec.request)
            .map_err(|e| format!("spec.request: not base64: {e}"))
            .and_then(|pem| CertificateRequest::from_pem(&pem).map_err(|e| e.to_string()));
        if condition(&csr, APPROVED).is_none() {
            return match &request {
                Ok(r) => self.approve(&csr, &spec, r).await,
                Err(_) => {
                    self.clean(&csr, parse_timestamp(&csr.meta().creation_timestamp), PENDING_KEPT).await
                }
            };
        }
        self.sign(&csr, &spec, request).await
    }
}

/// Runs the approver, signer (when `signing` is set) and cleaner over every CertificateSigningRequest.
pub fn spawn(w: &mut Wiring, signing: Option<Arc<Signing>>) {
    let controller = Controller::for_shared(&w.informers.certificate_signing_requests).concurrency(w.workers);
    let ctx = Arc::new(CertificateController {
        client: w.client.clone(),
        nodes: w.informers.nodes.store(),
        signing,
    });
    w.controller(controller, ctx, Duration::from_secs(5));
}
