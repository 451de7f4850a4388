use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use navarch_api::Object;
use navarch_api::v1::{CertificateSigningRequest, CertificateSigningRequestCondition};

use super::super::testing::*;
use super::super::validate;
use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/src/validation/certificates/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A valid request (P-256), with `STATUS` to replace.
fn base() -> String {
    format!(
        "apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata: {{name: alice}}
spec:
  request: {}
  signerName: kubernetes.io/kube-apiserver-client
  expirationSeconds: 86400
  usages: [client auth, digital signature]
STATUS
",
        BASE64.encode(fixture("p256.csr"))
    )
}

fn with_status(status: &str) -> String {
    edit(&base(), "STATUS", status)
}

fn csr(yaml: &str) -> CertificateSigningRequest {
    match defaulted(yaml) {
        Object::CertificateSigningRequest(c) => c,
        other => panic!("not a CSR: {other:?}"),
    }
}

fn certificate() -> String {
    BASE64.encode(fixture("cert.pem"))
}

#[test]
fn valid_requests_of_every_key_type() {
    assert_valid(&with_status(""));
    for name in ["p384.csr", "rsa.csr", "ed25519.csr"] {
        let yaml = edit(&with_status(""), &BASE64.encode(fixture("p256.csr")), &BASE64.encode(fixture(name)));
        assert_valid(&yaml);
    }
    // Any name that is a path segment.
    assert_valid(&edit(&with_status(""), "name: alice", "name: 'node-csr-Ab_c:1'"));
    assert_error(&edit(&with_status(""), "name: alice", "name: a/b"), "metadata.name", "may not contain '/'");
    // An issued certificate, with the Approved condition.
    let issued = format!(
        "status: {{conditions: [{{type: Approved, status: 'True'}}], certificate: {}}}",
        certificate()
    );
    assert_valid(&with_status(&issued));
}

#[test]
fn the_request_must_be_a_signed_pem_request() {
    let yaml = |request: &str| edit(&with_status(""), &BASE64.encode(fixture("p256.csr")), request);
    // Not PEM: the bytes are printed as Go prints a []byte.
    let errs = defaulted_errors(&yaml(&BASE64.encode("hi\n")));
    assert_single(
        &errs,
        "spec.request",
        "Invalid value: []byte{0x68, 0x69, 0xa}: PEM block type must be CERTIFICATE REQUEST",
        "",
    );
    assert_error(
        &yaml(&BASE64.encode(fixture("cert.pem"))),
        "spec.request",
        "PEM block type must be CERTIFICATE REQUEST",
    );
    assert_error(
        &yaml("'not base64!'"),
        "spec.request",
        "Invalid value: \"<request data>\": must be valid base64",
    );
    assert_error(&yaml("''"), "spec.request", "PEM block type must be CERTIFICATE REQUEST");
    // A request whose signature does not verify (a subject byte changed after signing).
    let text = String::from_utf8(fixture("rsa.csr")).unwrap();
    let block = x509::pem_blocks(text.as_bytes()).remove(0);
    let mut der = block.der;
    let i = der.windows(2).position(|w| w == [0x0c, 0x05]).unwrap() + 2;
    der[i] ^= 0x01;
    let pem = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        BASE64.encode(der)
    );
    assert_error(&yaml(&BASE64.encode(pem)), "spec.request", "crypto/rsa: verification error");
    // A curve ring does not implement.
    assert_error(
        &yaml(&BASE64.encode(fixture("p521.csr"))),
        "spec.request",
        "x509: cannot verify signature: algorithm unimplemented",
    );
}

#[test]
fn usages() {
    assert_edit_errors(
        &with_status(""),
        &[
            ("usages: [client auth, digital signature]", "usages: []", "spec.usages", "Required value"),
            (
                "usages: [client auth, digital signature]",
                "usages: [client auth, flying]",
                "spec.usages[1]",
                "Unsupported value: \"flying\": supported values: \"any\", \"cert sign\", \"client auth\"",
            ),
            (
                "usages: [client auth, digital signature]",
                "usages: [client auth, client auth]",
                "spec.usages[1]",
                "Duplicate value: \"client auth\"",
            ),
        ],
    );
    assert!(KEY_USAGES.windows(2).all(|w| w[0] < w[1]), "sorted as Kubernetes lists them");
    assert_eq!(KEY_USAGES.len(), 23);
}

#[test]
fn signer_names() {
    let signer = "signerName: kubernetes.io/kube-apiserver-client";
    let cases: &[(&str, &str)] = &[
        ("signerName: ''", "spec.signerName: Required value"),
        (
            "signerName: example.com",
            "Invalid value: \"example.com\": must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ),
        ("signerName: example.com/a/b", "must be a fully qualified domain and path"),
        (
            "signerName: example/signer",
            "Invalid value: \"example\": should be a domain with at least two segments separated by dots",
        ),
        (
            "signerName: Example.com/signer",
            "Invalid value: \"Example.com\": validating label \"Example\": a lowercase RFC 1123 label must consist of",
        ),
        (
            "signerName: example.com/Signer_1",
            "Invalid value: \"Signer_1\": validating label \"Signer_1\": a lowercase RFC 1123 subdomain",
        ),
        ("signerName: example.com/", "Invalid value: \"\": validating label \"\""),
        (
            "signerName: kubernetes.io/legacy-unknown",
            "Invalid value: \"kubernetes.io/legacy-unknown\": the legacy signerName is not allowed via this API version",
        ),
    ];
    for (to, reason) in cases {
        let errs = defaulted_errors(&edit(&with_status(""), signer, to));
        assert!(
            errs.len() == 1 && errs[0].path == "spec.signerName" && errs[0].to_string().contains(reason),
            "{to}: expected {reason:?}, got:\n{}",
            render(&errs)
        );
    }
    assert_valid(&edit(&with_status(""), signer, "signerName: example.com/my-namespace.my-signer"));
    let long = format!("signerName: example.com/{}", vec!["a".repeat(63); 10].join("."));
    assert_error(
        &edit(&with_status(""), signer, &long),
        "spec.signerName",
        "Too long: must have at most 571 bytes",
    );
}

#[test]
fn expiration_seconds() {
    assert_edit_errors(
        &with_status(""),
        &[(
            "expirationSeconds: 86400",
            "expirationSeconds: 599",
            "spec.expirationSeconds",
            "Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)",
        )],
    );
    assert_valid(&edit(&with_status(""), "expirationSeconds: 86400", "expirationSeconds: 600"));
    assert_valid(&edit(&with_status(""), "  expirationSeconds: 86400\n", ""));
}

#[test]
fn conditions() {
    let status = |conditions: &str| with_status(&format!("status: {{conditions: [{conditions}]}}"));
    assert_valid(&status(
        "{type: Approved, status: 'True', reason: AutoApproved}, {type: Failed, status: 'True'}",
    ));
    // The status defaults to True.
    let c = csr(&status("{type: Approved}"));
    assert_eq!(c.status.unwrap().conditions[0].status, "True");
    assert_valid(&status("{type: Approved}"));
    let cases: &[(&str, &str, &str)] = &[
        (
            "{type: Approved}, {type: Denied}",
            "status.conditions[1].type",
            "Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive",
        ),
        (
            "{type: Denied}, {type: Approved}",
            "status.conditions[1].type",
            "Invalid value: \"Approved\": Approved and Denied conditions are mutually exclusive",
        ),
        ("{type: Failed}, {type: Failed}", "status.conditions[1].type", "Duplicate value: \"Failed\""),
        (
            "{type: Approved, status: 'False'}",
            "status.conditions[0].status",
            "Unsupported value: \"False\": supported values: \"True\"",
        ),
        (
            "{type: Custom, status: Maybe}",
            "status.conditions[0].status",
            "Unsupported value: \"Maybe\": supported values: \"False\", \"True\", \"Unknown\"",
        ),
        ("{type: '', status: 'True'}", "status.conditions[0].type", "Required value"),
    ];
    for (conditions, path, reason) in cases {
        assert_error(&status(conditions), path, reason);
    }
    assert_valid(&status("{type: Custom, status: Unknown}"));
}

#[test]
fn issued_certificates() {
    let status = |cert: &str| {
        with_status(&format!("status: {{conditions: [{{type: Approved}}], certificate: {cert}}}"))
    };
    let reason = |problem: &str| format!("Invalid value: \"<certificate data>\": {problem}");
    assert_error(
        &status(&BASE64.encode("text")),
        "status.certificate",
        &reason("must contain at least one CERTIFICATE PEM block"),
    );
    assert_error(
        &status(&BASE64.encode(fixture("p256.csr"))),
        "status.certificate",
        &reason("only CERTIFICATE PEM blocks are allowed, found \"CERTIFICATE REQUEST\""),
    );
    assert_error(&status("'%%%'"), "status.certificate", &reason("must be valid base64"));
}

#[test]
fn updates() {
    let approved =
        with_status("status: {conditions: [{type: Approved, lastUpdateTime: '2024-05-01T10:00:00Z'}]}");
    let issued =
        with_status(&format!("status: {{conditions: [{{type: Approved}}], certificate: {}}}", certificate()));
    assert!(update_errors(&with_status(""), &approved).is_empty(), "approving");
    assert!(update_errors(&approved, &issued).is_empty(), "issuing");
    assert_update_error(
        &approved,
        &with_status(""),
        "status.conditions",
        "Forbidden: updates may not remove a condition of type \"Approved\"",
    );
    let other = BASE64.encode([fixture("cert.pem"), fixture("cert.pem")].concat());
    let reissued = edit(&issued, &certificate(), &other);
    assert_update_error(
        &issued,
        &reissued,
        "status.certificate",
        "Forbidden: updates may not modify existing certificate content",
    );
    let respec = edit(&approved, "expirationSeconds: 86400", "expirationSeconds: 3600");
    assert_update_error(&approved, &respec, "spec", "field is immutable");
    // What the stored object already breaks stays writable.
    let both = with_status("status: {conditions: [{type: Approved}, {type: Denied}]}");
    assert!(update_errors(&both, &edit(&both, "name: alice}", "name: alice, labels: {a: b}}")).is_empty());
    let unknown = edit(&with_status(""), "client auth, digital signature", "flying");
    assert!(update_errors(&unknown, &unknown).is_empty());
    let arbitrary = edit(&issued, &certificate(), &BASE64.encode("legacy junk"));
    assert!(update_errors(&arbitrary, &arbitrary).is_empty(), "an unchanged certificate is not checked");
}

fn user() -> UserInfo {
    UserInfo {
        name: "alice".into(),
        uid: "u-1".into(),
        groups: vec!["devs".into(), "system:authenticated".into()],
        extra: [("scopes".to_string(), vec!["a".to_string(), "b".to_string()])].into(),
    }
}

#[test]
fn create_takes_the_requester_from_the_user_and_no_status() {
    let mut c = csr(&with_status("status: {conditions: [{type: Approved}], certificate: eA==}"));
    c.spec.as_mut().unwrap().username = "admin".into();
    c.spec.as_mut().unwrap().groups = vec!["system:masters".into()];
    prepare_for_create(&mut c, Some(&user()));
    let spec = c.spec.as_ref().unwrap();
    assert_eq!((spec.username.as_str(), spec.uid.as_str()), ("alice", "u-1"));
    assert_eq!(spec.groups, ["devs", "system:authenticated"]);
    assert_eq!(serde_json::to_string(&spec.extra).unwrap(), r#"{"scopes":["a","b"]}"#);
    assert_eq!(c.status, None);
    prepare_for_create(&mut c, None);
    let spec = c.spec.as_ref().unwrap();
    assert!(spec.username.is_empty() && spec.groups.is_empty() && spec.extra.is_empty());
}

fn condition(ty: &str, status: &str) -> CertificateSigningRequestCondition {
    CertificateSigningRequestCondition { r#type: ty.into(), status: status.into(), ..Default::default() }
}

#[test]
fn updates_keep_to_their_endpoint() {
    const NOW: &str = "2024-05-02T00:00:00Z";
    let mut old = csr(&with_status(
        "status: {conditions: [{type: Approved, lastUpdateTime: '2024-05-01T00:00:00Z', lastTransitionTime: '2024-05-01T00:00:00Z'}]}",
    ));
    old.spec.as_mut().unwrap().username = "alice".into();
    let mut changed = csr(&with_status(&format!(
        "status: {{conditions: [{{type: Denied}}, {{type: Failed, reason: SignerError}}], certificate: {}}}",
        certificate()
    )));
    changed.spec.as_mut().unwrap().usages = vec!["server auth".into()];

    // The object: neither spec nor status.
    let mut new = changed.clone();
    prepare_for_update(&mut new, &old, CsrWrite::Object, NOW);
    assert_eq!((&new.spec, &new.status), (&old.spec, &old.status));

    // status: Failed and the certificate, but Approved stays and Denied is not added.
    let mut new = changed.clone();
    prepare_for_update(&mut new, &old, CsrWrite::Status, NOW);
    assert_eq!(new.spec, old.spec);
    let status = new.status.as_ref().unwrap();
    let types: Vec<&str> = status.conditions.iter().map(|c| c.r#type.as_str()).collect();
    assert_eq!(types, ["Failed", "Approved"]);
    assert_eq!(status.conditions[0].last_update_time, NOW);
    assert_eq!(status.conditions[1].last_transition_time, "2024-05-01T00:00:00Z", "kept from the stored one");
    assert_eq!(status.certificate, certificate());
    assert!(validate(&Object::from(new.clone()), Some(&Object::from(old.clone()))).is_empty());

    // approval: conditions only (here: Denied replacing Approved, which validation then refuses).
    let mut new = changed.clone();
    prepare_for_update(&mut new, &old, CsrWrite::Approval, NOW);
    let status = new.status.as_ref().unwrap();
    assert!(status.certificate.is_empty(), "the certificate is the signer's");
    assert_eq!(status.conditions.len(), 2);
    assert_eq!(status.conditions[0].last_transition_time, NOW, "a new condition transitions now");
    let errs = validate(&Object::from(new), Some(&Object::from(old.clone())));
    assert_single(&errs, "status.conditions", "updates may not remove a condition of type \"Approved\"", "");

    // An approval of a pending request.
    let mut pending = old.clone();
    pending.status = None;
    let mut approve = pending.clone();
    approve.status = Some(CertificateSigningRequestStatus {
        conditions: vec![condition(APPROVED, "True")],
        ..Default::default()
    });
    prepare_for_update(&mut approve, &pending, CsrWrite::Approval, NOW);
    let c = &approve.status.as_ref().unwrap().conditions[0];
    assert_eq!((c.last_update_time.as_str(), c.last_transition_time.as_str()), (NOW, NOW));
    assert!(validate(&Object::from(approve), Some(&Object::from(pending.clone()))).is_empty());

    // A status write that changes nothing stays no change.
    let mut same = pending.clone();
    prepare_for_update(&mut same, &pending, CsrWrite::Status, NOW);
    assert_eq!(same, pending);
}

#[test]
fn go_byte_slices() {
    assert_eq!(go_bytes(&[]), "[]byte{}");
    assert_eq!(go_bytes(&[0, 0x2d, 0xff, 10]), "[]byte{0x0, 0x2d, 0xff, 0xa}");
}
