//! CertificateSigningRequest writes by endpoint, as Kubernetes' three CSR strategies make them
//! (`pkg/registry/certificates/certificates/strategy.go`): through the object only metadata changes;
//! through `status` the signer's conditions and the certificate; through
//! `certificatesigningrequests/<name>/approval` (what `kubectl certificate approve` and `deny` PUT) the
//! request's `status.conditions`, Approved and Denied included, everything else of the status and the
//! spec staying as stored ([`validation::certificates::prepare_for_update`]). Who may approve, and who may
//! sign, for a signer is admission's ([`crate::admission::certificates`]);
//! [`Registry::update`](super::Registry::update) does the rest (concurrency, defaults, managed fields, the
//! write).

use navarch_api::Object;

use super::FieldManager;
use crate::error::ApiError;
use crate::validation;
use crate::validation::certificates::CsrWrite;

/// The subresource's name, as a writer's `subresource` (it is also what `metadata.managedFields` records).
pub const SUBRESOURCE: &str = "approval";

/// Whether `manager` writes through the subresource.
pub(super) fn through_subresource(manager: &FieldManager<'_>) -> bool {
    matches!(manager, FieldManager::Update(w) if w.subresource == SUBRESOURCE)
}

/// The request as sent (its conditions are what the write is about; [`keep_to_endpoint`] takes the rest
/// from the stored object). Only CertificateSigningRequests have the subresource.
pub(super) fn prepare_update(request: &Object) -> Result<Object, ApiError> {
    if !matches!(request, Object::CertificateSigningRequest(_)) {
        return Err(ApiError::BadRequest(format!(
            "{}: only certificatesigningrequests have the {SUBRESOURCE} subresource",
            request.info().plural
        )));
    }
    let mut csr = request.clone();
    csr.set_type_meta();
    Ok(csr)
}

/// Keeps a CertificateSigningRequest written through `subresource` (`""`, `status` or `approval`) to what
/// that endpoint may change, stamping its conditions' times with `now`; other kinds are left alone.
pub(super) fn keep_to_endpoint(new: &mut Object, old: &Object, subresource: &str, now: &str) {
    let (Object::CertificateSigningRequest(new), Object::CertificateSigningRequest(old)) = (new, old) else {
        return;
    };
    let write = match subresource {
        "status" => CsrWrite::Status,
        SUBRESOURCE => CsrWrite::Approval,
        _ => CsrWrite::Object,
    };
    validation::certificates::prepare_for_update(new, old, write, now);
}

#[cfg(test)]
mod tests {
    use navarch_api::managed_fields::UpdateWriter;

    use super::*;

    fn csr(yaml: &str) -> Object {
        Object::CertificateSigningRequest(serde_yaml::from_str(yaml).unwrap())
    }

    const STORED: &str = "{metadata: {name: c}, spec: {signerName: example.com/a, usages: [client auth]}, \
        status: {certificate: Q0VSVA==, conditions: [{type: Failed, status: 'True', reason: R}]}}";
    const REQUEST: &str = "{metadata: {name: c, labels: {a: b}}, spec: {signerName: example.com/other}, \
        status: {conditions: [{type: Failed, status: 'True', reason: R}, {type: Approved, status: 'True'}]}}";

    fn conditions(o: &Object) -> Vec<&str> {
        let Object::CertificateSigningRequest(c) = o else { unreachable!() };
        c.status.iter().flat_map(|s| &s.conditions).map(|c| c.r#type.as_str()).collect()
    }

    fn signer_and_certificate(o: &Object) -> (&str, &str) {
        let Object::CertificateSigningRequest(c) = o else { unreachable!() };
        let spec = c.spec.as_ref().unwrap();
        (spec.signer_name.as_str(), c.status.as_ref().map_or("", |s| s.certificate.as_str()))
    }

    #[test]
    fn an_approval_takes_only_the_conditions() {
        let (stored, request) = (csr(STORED), csr(REQUEST));
        let mut new = prepare_update(&request).unwrap();
        keep_to_endpoint(&mut new, &stored, SUBRESOURCE, "2026-01-01T00:00:00Z");
        assert_eq!(conditions(&new), ["Failed", "Approved"]);
        assert_eq!(signer_and_certificate(&new), ("example.com/a", "Q0VSVA=="));
        assert_eq!(new.meta().labels["a"], "b", "metadata is the request's, as in Kubernetes");
        assert_eq!(new.kind(), "CertificateSigningRequest");

        // Through the object the status stays; through status the approval conditions do.
        let mut through_object = request.clone();
        keep_to_endpoint(&mut through_object, &stored, "", "2026-01-01T00:00:00Z");
        assert_eq!(conditions(&through_object), ["Failed"]);
        let mut through_status = request;
        keep_to_endpoint(&mut through_status, &stored, "status", "2026-01-01T00:00:00Z");
        assert_eq!(conditions(&through_status), ["Failed"]);
        assert_eq!(signer_and_certificate(&through_status).0, "example.com/a");
    }

    #[test]
    fn only_csrs_have_the_subresource() {
        let cm = Object::ConfigMap(Default::default());
        assert!(matches!(prepare_update(&cm), Err(ApiError::BadRequest(m)) if m.starts_with("configmaps: ")));
        let mut untouched = cm.clone();
        keep_to_endpoint(&mut untouched, &cm, SUBRESOURCE, "now");
        assert_eq!(untouched, cm);
        let w = |subresource| {
            FieldManager::Update(UpdateWriter { manager: "kubectl-certificate", subresource, reset: false })
        };
        assert!(through_subresource(&w(SUBRESOURCE)));
        assert!(!through_subresource(&w("status")) && !through_subresource(&w("")));
    }
}
