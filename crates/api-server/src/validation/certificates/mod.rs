//! certificates.k8s.io/v1 CertificateSigningRequests: Kubernetes' defaults, validation
//! (`pkg/apis/certificates/validation`) and what its registry strategies do to a request before validation
//! (`pkg/registry/certificates/certificates/strategy.go`): [`prepare_for_create`] fills in the requester
//! and clears the status, [`prepare_for_update`] keeps each write to what its endpoint may change (the
//! object, `status`, `approval`) and stamps the conditions' times.
//!
//! The PEM and DER checks (the request's self-signature, the issued certificates' shape) are `x509`'s.

mod x509;

use std::collections::BTreeSet;
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use navarch_api::names;
use navarch_api::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
    CertificateSigningRequestStatus, ExtraValue,
};

use super::field::{Errors, Path, q};
use crate::user_info::UserInfo;

pub const APPROVED: &str = "Approved";
pub const DENIED: &str = "Denied";
pub const FAILED: &str = "Failed";
/// The signer of requests made through certificates.k8s.io/v1beta1, refused by v1.
pub const LEGACY_UNKNOWN_SIGNER: &str = "kubernetes.io/legacy-unknown";
/// The shortest certificate lifetime a request may ask for, in seconds.
pub const MIN_EXPIRATION_SECONDS: i32 = 600;

/// Every key usage a request may ask for, sorted (the order of Kubernetes' "supported values").
const KEY_USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

/// Conditions that may only be `True`.
const TRUE_ONLY_CONDITIONS: &[&str] = &[APPROVED, DENIED, FAILED];
const ALL_STATUSES: &[&str] = &["False", "True", "Unknown"];

const MAX_DOMAIN_LENGTH: usize = 253;
/// A signer name fits `<domain>/<namespace>.<name>`: 253 + 1 + (253 + 1 + 63).
const MAX_SIGNER_NAME_LENGTH: usize = 253 + 1 + 253 + 1 + 63;

/// A condition's `status` defaults to `True`.
pub(super) fn default_certificate_signing_request(csr: &mut CertificateSigningRequest) {
    for c in csr.status.iter_mut().flat_map(|s| s.conditions.iter_mut()) {
        if c.status.is_empty() {
            c.status = "True".to_string();
        }
    }
}

/// What a create may not set (`csrStrategy.PrepareForCreate`): the requester is the authenticated user
/// (`None`: nobody, as with authentication off), and the status starts empty: nobody creates an approved
/// request.
pub fn prepare_for_create(csr: &mut CertificateSigningRequest, user: Option<&UserInfo>) {
    let spec = csr.spec.get_or_insert_with(Default::default);
    spec.username.clear();
    spec.uid.clear();
    spec.groups.clear();
    spec.extra.clear();
    if let Some(user) = user {
        spec.username = user.name.clone();
        spec.uid = user.uid.clone();
        spec.groups = user.groups.clone();
        spec.extra = user.extra.iter().map(|(k, v)| (k.clone(), ExtraValue { items: v.clone() })).collect();
    }
    csr.status = None;
}

/// The endpoint an update of a CertificateSigningRequest came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrWrite {
    /// The object itself: only metadata changes.
    Object,
    /// `status`: the signer's conditions (Failed, ...) and the certificate; Approved and Denied stay.
    Status,
    /// `approval`: the conditions (Approved, Denied) only.
    Approval,
}

/// Keeps an update to what its endpoint may change, taking the rest from `old` (the strategies'
/// `PrepareForUpdate`), then stamps the conditions' `lastUpdateTime` and `lastTransitionTime` with `now`
/// (RFC 3339) where they are missing; a condition whose type and status were already there keeps its
/// transition time.
pub fn prepare_for_update(
    new: &mut CertificateSigningRequest,
    old: &CertificateSigningRequest,
    write: CsrWrite,
    now: &str,
) {
    new.spec = old.spec.clone();
    let old_status = old.status.clone().unwrap_or_default();
    match write {
        CsrWrite::Object => new.status = old.status.clone(),
        CsrWrite::Status => {
            let status = new.status.get_or_insert_with(Default::default);
            let is_approval =
                |c: &CertificateSigningRequestCondition| c.r#type == APPROVED || c.r#type == DENIED;
            status.conditions.retain(|c| !is_approval(c));
            status.conditions.extend(old_status.conditions.iter().filter(|c| is_approval(c)).cloned());
        }
        CsrWrite::Approval => {
            let conditions = new.status.take().unwrap_or_default().conditions;
            new.status = Some(CertificateSigningRequestStatus { conditions, ..old_status.clone() });
        }
    }
    for c in new.status.iter_mut().flat_map(|s| s.conditions.iter_mut()) {
        if c.last_update_time.is_empty() {
            c.last_update_time = now.to_string();
        }
        if c.last_transition_time.is_empty() {
            let same = old_status
                .conditions
                .iter()
                .find(|o| o.r#type == c.r#type && o.status == c.status && !o.last_transition_time.is_empty());
            c.last_transition_time = same.map_or_else(|| now.to_string(), |o| o.last_transition_time.clone());
        }
    }
    // An empty status where there was none is no change (and no write).
    if old.status.is_none()
        && new.status.as_ref().is_some_and(|s| *s == CertificateSigningRequestStatus::default())
    {
        new.status = None;
    }
}

/// What an update tolerates because the stored object already has it (`getValidationOptions`): data
/// written before a rule existed must stay writable.
#[derive(Debug, Default, Clone, Copy)]
struct Tolerate {
    both_approved_and_denied: bool,
    legacy_signer: bool,
    duplicate_condition_types: bool,
    empty_condition_type: bool,
    arbitrary_certificate: bool,
    unknown_usages: bool,
    duplicate_usages: bool,
}

impl Tolerate {
    fn of(new: &CertificateSigningRequest, old: Option<&CertificateSigningRequest>) -> Tolerate {
        let Some(old) = old else { return Tolerate::default() };
        let (spec, conditions) = (spec_of(old), conditions_of(old));
        let types: Vec<&str> = conditions.iter().map(|c| c.r#type.as_str()).collect();
        let unique: BTreeSet<&str> = types.iter().copied().collect();
        let usages: BTreeSet<&str> = spec.usages.iter().map(String::as_str).collect();
        let old_certificate = certificate_of(old);
        Tolerate {
            both_approved_and_denied: types.contains(&APPROVED) && types.contains(&DENIED),
            legacy_signer: spec.signer_name == LEGACY_UNKNOWN_SIGNER,
            duplicate_condition_types: unique.len() != types.len(),
            empty_condition_type: types.contains(&""),
            arbitrary_certificate: certificate_of(new) == old_certificate
                || decoded(old_certificate).is_none_or(|pem| x509::check_certificates(&pem).is_err()),
            unknown_usages: spec.usages.iter().any(|u| !KEY_USAGES.contains(&u.as_str())),
            duplicate_usages: usages.len() != spec.usages.len(),
        }
    }
}

fn spec_of(csr: &CertificateSigningRequest) -> &CertificateSigningRequestSpec {
    static EMPTY: LazyLock<CertificateSigningRequestSpec> = LazyLock::new(Default::default);
    csr.spec.as_ref().unwrap_or(&EMPTY)
}

fn conditions_of(csr: &CertificateSigningRequest) -> &[CertificateSigningRequestCondition] {
    csr.status.as_ref().map_or(&[], |s| s.conditions.as_slice())
}

fn certificate_of(csr: &CertificateSigningRequest) -> &str {
    csr.status.as_ref().map_or("", |s| s.certificate.as_str())
}

/// The bytes of a base64 field; `None` when it is not base64.
fn decoded(base64: &str) -> Option<Vec<u8>> {
    BASE64.decode(base64).ok()
}

/// Go's `%#v` of a `[]byte`, as Kubernetes prints an invalid request: `[]byte{0x2d, 0x2d}`.
fn go_bytes(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(|b| format!("{b:#x}")).collect();
    format!("[]byte{{{}}}", items.join(", "))
}

/// Validates a CertificateSigningRequest; on update (`old`), also that Approved, Denied and Failed
/// conditions are not removed, that an issued certificate is not replaced, and that the spec is unchanged.
pub(super) fn validate_certificate_signing_request(
    csr: &CertificateSigningRequest,
    old: Option<&CertificateSigningRequest>,
    errs: &mut Errors,
) {
    let tolerate = Tolerate::of(csr, old);
    let spec = spec_of(csr);
    let path = Path::new("spec");
    validate_request(&spec.request, &path.child("request"), errs);
    let usages = path.child("usages");
    if spec.usages.is_empty() {
        errs.required(&usages, "");
    }
    let mut seen = BTreeSet::new();
    for (i, usage) in spec.usages.iter().enumerate() {
        if !tolerate.unknown_usages {
            errs.one_of(&usages.index(i), usage, KEY_USAGES);
        }
        if !seen.insert(usage.as_str()) && !tolerate.duplicate_usages {
            errs.duplicate(&usages.index(i), q(usage));
        }
    }
    let signer = path.child("signerName");
    if spec.signer_name == LEGACY_UNKNOWN_SIGNER && !tolerate.legacy_signer {
        errs.invalid(
            &signer,
            q(&spec.signer_name),
            "the legacy signerName is not allowed via this API version",
        );
    } else {
        validate_signer_name(&spec.signer_name, &signer, errs);
    }
    if let Some(seconds) = spec.expiration_seconds.filter(|s| *s < MIN_EXPIRATION_SECONDS) {
        errs.invalid(
            &path.child("expirationSeconds"),
            seconds,
            "may not specify a duration less than 600 seconds (10 minutes)",
        );
    }
    validate_conditions(conditions_of(csr), tolerate, errs);
    if !tolerate.arbitrary_certificate {
        let certificate = certificate_of(csr);
        let problem = match decoded(certificate) {
            Some(pem) => x509::check_certificates(&pem).err().map(|e| e.to_string()),
            None => Some("must be valid base64".to_string()),
        };
        if let Some(problem) = problem {
            errs.invalid(&Path::new("status").child("certificate"), q("<certificate data>"), problem);
        }
    }
    if let Some(old) = old {
        validate_update(csr, old, errs);
    }
}

/// The request: base64 of a PEM CERTIFICATE REQUEST whose signature verifies.
fn validate_request(request: &str, path: &Path, errs: &mut Errors) {
    match decoded(request) {
        Some(pem) => {
            if let Err(e) = x509::check_certificate_request(&pem) {
                errs.invalid(path, go_bytes(&pem), e.to_string());
            }
        }
        None => errs.invalid(path, q("<request data>"), "must be valid base64"),
    }
}

/// `ValidateSignerName`: `<domain>/<path>`, the domain of at least two DNS labels, the path of dot-separated
/// DNS subdomains, 571 characters at most.
fn validate_signer_name(signer: &str, path: &Path, errs: &mut Errors) {
    if signer.is_empty() {
        errs.required(path, "");
        return;
    }
    let Some((domain, rest)) = signer.split_once('/').filter(|(_, rest)| !rest.contains('/')) else {
        errs.invalid(
            path,
            q(signer),
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        );
        return;
    };
    if domain.len() > MAX_DOMAIN_LENGTH {
        errs.too_long(path, MAX_DOMAIN_LENGTH);
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if let Some((label, reasons)) =
        labels.iter().map(|l| (l, names::dns1123_label(l))).find(|(_, r)| !r.is_empty())
    {
        for reason in reasons {
            errs.invalid(
                path,
                q(domain),
                format!("validating label {}: {}", q(label), without_got(&reason, label)),
            );
        }
    }
    if labels.len() < 2 {
        errs.invalid(path, q(domain), "should be a domain with at least two segments separated by dots");
    }
    let parts = rest.split('.');
    if let Some((label, reasons)) =
        parts.map(|l| (l, names::dns1123_subdomain(l))).find(|(_, r)| !r.is_empty())
    {
        for reason in reasons {
            errs.invalid(
                path,
                q(rest),
                format!("validating label {}: {}", q(label), without_got(&reason, label)),
            );
        }
    }
    if signer.len() > MAX_SIGNER_NAME_LENGTH {
        errs.too_long(path, MAX_SIGNER_NAME_LENGTH);
    }
}

/// A syntax reason without its `, got "<value>"` ending (the value is printed before it).
fn without_got<'a>(reason: &'a str, value: &str) -> &'a str {
    reason.strip_suffix(&format!(", got {}", q(value))).unwrap_or(reason)
}

fn validate_conditions(
    conditions: &[CertificateSigningRequestCondition],
    tolerate: Tolerate,
    errs: &mut Errors,
) {
    let path = Path::new("status").child("conditions");
    let (mut approved, mut denied) = (false, false);
    let mut seen = BTreeSet::new();
    for (i, c) in conditions.iter().enumerate() {
        let p = path.index(i);
        if c.r#type.is_empty() && !tolerate.empty_condition_type {
            errs.required(&p.child("type"), "");
        }
        let allowed =
            if TRUE_ONLY_CONDITIONS.contains(&c.r#type.as_str()) { &["True"][..] } else { ALL_STATUSES };
        errs.required_one_of(&p.child("status"), &c.status, allowed);
        if !tolerate.both_approved_and_denied {
            let conflict = match c.r#type.as_str() {
                APPROVED => {
                    approved = true;
                    denied
                }
                DENIED => {
                    denied = true;
                    approved
                }
                _ => false,
            };
            if conflict {
                errs.invalid(
                    &p.child("type"),
                    q(&c.r#type),
                    "Approved and Denied conditions are mutually exclusive",
                );
            }
        }
        if !seen.insert(c.r#type.as_str()) && !tolerate.duplicate_condition_types {
            errs.duplicate(&p.child("type"), q(&c.r#type));
        }
    }
}

/// What no update may do: remove an Approved, Denied or Failed condition, replace an issued certificate,
/// change the spec.
fn validate_update(new: &CertificateSigningRequest, old: &CertificateSigningRequest, errs: &mut Errors) {
    let conditions = Path::new("status").child("conditions");
    for ty in TRUE_ONLY_CONDITIONS {
        let count = |csr| conditions_of(csr).iter().filter(|c| c.r#type == *ty).count();
        if count(new) < count(old) {
            errs.forbidden(&conditions, format!("updates may not remove a condition of type {}", q(ty)));
        }
    }
    let (new_certificate, old_certificate) = (certificate_of(new), certificate_of(old));
    if new_certificate != old_certificate && !old_certificate.is_empty() {
        errs.forbidden(
            &Path::new("status").child("certificate"),
            "updates may not modify existing certificate content",
        );
    }
    if new.spec != old.spec {
        errs.immutable(&Path::new("spec"));
    }
}

#[cfg(test)]
mod tests;
