//! Kubernetes' CertificateApproval and CertificateSigning admission plugins
//! (`plugin/pkg/admission/certificates/{approval,signing}`): who may decide on, and who may issue, a
//! CertificateSigningRequest is a permission on its signer, the synthetic resource `signers` of
//! `certificates.k8s.io` named like the signer.
//!
//! * Every update through `certificatesigningrequests/<name>/approval` needs verb `approve` on the stored
//!   request's `spec.signerName`.
//! * An update through `status` that changes `status.certificate` or `status.conditions` needs verb
//!   `sign` on it.
//!
//! A permission on `<domain>/*` (`kubernetes.io/*`) counts for every signer of that domain
//! (`IsAuthorizedForSignerName`). Refusals are 403s with Kubernetes' messages
//! (`certificatesigningrequests.certificates.k8s.io "csr-1" is forbidden: user not permitted to approve
//! requests with signerName "kubernetes.io/kube-apiserver-client"`).

use navarch_api::Object;
use navarch_api::v1::CertificateSigningRequest;

use crate::authorization::Authorizer;
use crate::authz::Attributes;
use crate::authz::attributes::verbs;
use crate::authz::forbidden::forbidden_status_message;
use crate::authz::go_format::quote;
use crate::error::ApiError;
use crate::registry::approval;
use crate::user_info::UserInfo;

const CERTIFICATES_GROUP: &str = "certificates.k8s.io";
const CSR_RESOURCE: &str = "certificatesigningrequests";
/// The synthetic resource a signer is authorized as.
const SIGNERS: &str = "signers";

/// Admits an update through `subresource` (`""`, `status`, `approval`, ...) of `old` into `new`; writes of
/// other kinds pass.
pub fn admit(
    authorizer: &dyn Authorizer,
    user: &UserInfo,
    subresource: &str,
    new: Option<&Object>,
    old: Option<&Object>,
) -> Result<(), ApiError> {
    let (Some(Object::CertificateSigningRequest(new)), Some(Object::CertificateSigningRequest(old))) =
        (new, old)
    else {
        return Ok(());
    };
    let verb = match subresource {
        approval::SUBRESOURCE => verbs::APPROVE,
        "status" if changes_issuance(new, old) => verbs::SIGN,
        _ => return Ok(()),
    };
    // The stored signer: the request may not change it, and an approval must not be judged on one it made up.
    let signer = old.spec.as_ref().map_or("", |s| s.signer_name.as_str());
    if authorized_for_signer(authorizer, user, verb, signer) {
        return Ok(());
    }
    let name = old.metadata.as_ref().map_or("", |m| m.name.as_str());
    let reason = format!("user not permitted to {verb} requests with signerName {}", quote(signer));
    Err(ApiError::Denied(forbidden_status_message(CERTIFICATES_GROUP, CSR_RESOURCE, name, &reason)))
}

/// Whether a status write touches what only a signer writes: the certificate or the conditions.
fn changes_issuance(new: &CertificateSigningRequest, old: &CertificateSigningRequest) -> bool {
    let (new, old) = (new.status.clone().unwrap_or_default(), old.status.clone().unwrap_or_default());
    new.certificate != old.certificate || new.conditions != old.conditions
}

/// `IsAuthorizedForSignerName`: `verb` on the signer `signer`, else on `<its domain>/*`.
fn authorized_for_signer(authorizer: &dyn Authorizer, user: &UserInfo, verb: &str, signer: &str) -> bool {
    let domain = signer.split('/').next().unwrap_or_default();
    [signer.to_string(), format!("{domain}/*")].into_iter().any(|name| {
        let attributes = Attributes::resource(user.clone(), verb, CERTIFICATES_GROUP, SIGNERS)
            .name(name)
            .api_version(verbs::ALL);
        authorizer.authorize(&attributes).is_allowed()
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::authz::Decision;

    /// Allows exactly the `(verb, signer name)` pairs it holds, and records what it was asked.
    #[derive(Default)]
    struct Grants {
        allowed: Vec<(&'static str, &'static str)>,
        asked: Mutex<Vec<Attributes>>,
    }

    impl Authorizer for Grants {
        fn authorize(&self, a: &Attributes) -> Decision {
            self.asked.lock().unwrap().push(a.clone());
            if self.allowed.iter().any(|(verb, name)| a.verb == *verb && a.name == *name) {
                Decision::Allow("granted".into())
            } else {
                Decision::NoOpinion(String::new())
            }
        }
    }

    fn grants(allowed: &[(&'static str, &'static str)]) -> Grants {
        Grants { allowed: allowed.to_vec(), ..Grants::default() }
    }

    fn csr(status: &str) -> Object {
        let yaml = format!(
            "{{metadata: {{name: csr-1}}, spec: {{signerName: kubernetes.io/kube-apiserver-client}}, status: {status}}}"
        );
        Object::CertificateSigningRequest(serde_yaml::from_str(&yaml).unwrap())
    }

    fn alice() -> UserInfo {
        UserInfo { name: "alice".into(), ..UserInfo::default() }
    }

    fn admit_with(g: &Grants, subresource: &str, new: &Object, old: &Object) -> Result<(), ApiError> {
        admit(g, &alice(), subresource, Some(new), Some(old))
    }

    const PENDING: &str = "{}";
    const APPROVED: &str = "{conditions: [{type: Approved, status: 'True'}]}";
    const ISSUED: &str = "{conditions: [{type: Approved, status: 'True'}], certificate: Q0VSVA==}";
    const FAILED: &str = "{conditions: [{type: Approved, status: 'True'}, {type: Failed, status: 'True'}]}";

    #[test]
    fn approving_needs_approve_on_the_signer_or_its_domain() {
        let (pending, approved) = (csr(PENDING), csr(APPROVED));
        let err =
            admit_with(&grants(&[("sign", "kubernetes.io/*")]), "approval", &approved, &pending).unwrap_err();
        assert!(matches!(err, ApiError::Denied(_)), "a 403 (PermissionDenied over gRPC)");
        assert_eq!(
            err.to_string(),
            r#"certificatesigningrequests.certificates.k8s.io "csr-1" is forbidden: user not permitted to approve requests with signerName "kubernetes.io/kube-apiserver-client""#
        );
        let exact = grants(&[("approve", "kubernetes.io/kube-apiserver-client")]);
        assert!(admit_with(&exact, "approval", &approved, &pending).is_ok());
        let wildcard = grants(&[("approve", "kubernetes.io/*")]);
        assert!(admit_with(&wildcard, "approval", &approved, &pending).is_ok());
        let other_domain =
            grants(&[("approve", "example.com/*"), ("approve", "kubernetes.io/kubelet-serving")]);
        assert!(admit_with(&other_domain, "approval", &approved, &pending).is_err());
        // As in Kubernetes, every write through the subresource is checked, a no-op too.
        assert!(admit_with(&grants(&[]), "approval", &pending, &pending).is_err());
    }

    #[test]
    fn the_questions_asked_are_kubernetes_ones() {
        let g = grants(&[]);
        let _ = admit_with(&g, "approval", &csr(APPROVED), &csr(PENDING));
        let asked = g.asked.lock().unwrap();
        let names: Vec<&str> = asked.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["kubernetes.io/kube-apiserver-client", "kubernetes.io/*"]);
        for a in asked.iter() {
            assert_eq!(
                (a.verb.as_str(), a.api_group.as_str(), a.resource.as_str(), a.api_version.as_str()),
                ("approve", "certificates.k8s.io", "signers", "*")
            );
            assert!(a.is_resource_request && a.namespace.is_empty() && a.subresource.is_empty());
            assert_eq!(a.user.name, "alice");
        }
    }

    #[test]
    fn issuing_needs_sign() {
        let (approved, issued, failed) = (csr(APPROVED), csr(ISSUED), csr(FAILED));
        let none = grants(&[("approve", "kubernetes.io/*")]);
        let err = admit_with(&none, "status", &issued, &approved).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"certificatesigningrequests.certificates.k8s.io "csr-1" is forbidden: user not permitted to sign requests with signerName "kubernetes.io/kube-apiserver-client""#
        );
        assert!(admit_with(&none, "status", &failed, &approved).is_err(), "conditions are the signer's too");
        assert!(admit_with(&none, "status", &approved, &approved).is_ok(), "nothing of the signer's changed");
        let signer = grants(&[("sign", "kubernetes.io/kube-apiserver-client")]);
        assert!(admit_with(&signer, "status", &issued, &approved).is_ok());
        assert!(admit_with(&grants(&[("sign", "kubernetes.io/*")]), "status", &issued, &approved).is_ok());
    }

    #[test]
    fn other_writes_pass() {
        let (approved, issued) = (csr(APPROVED), csr(ISSUED));
        let none = grants(&[]);
        assert!(admit_with(&none, "", &issued, &approved).is_ok());
        assert!(admit(&none, &alice(), "approval", Some(&issued), None).is_ok());
        let cm = Object::ConfigMap(Default::default());
        assert!(admit_with(&none, "approval", &cm, &cm).is_ok());
        assert!(none.asked.lock().unwrap().is_empty());
    }
}
