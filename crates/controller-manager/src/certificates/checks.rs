//! What a CertificateSigningRequest asks for, checked as Kubernetes' signers check it
//! (`pkg/apis/certificates/helpers.go`: `ValidateKubeletClientCSR`, `ValidateKubeletServingCSR`) and
//! recognised as the approver recognises it (`pkg/controller/certificates/approver/sarapprove.go`).
//! Pure functions over the parsed request; [`super`] does the I/O.

use std::net::IpAddr;

use navarch_pki::LeafKind;
use navarch_pki::csr::CertificateRequest;

/// The signers navarch's controller-manager signs for.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
/// The user of a node's certificates is `system:node:<name>`.
pub const NODE_USER_PREFIX: &str = "system:node:";
pub const NODES_GROUP: &str = "system:nodes";
pub const KUBE_PROXY_USER: &str = "system:kube-proxy";

const DIGITAL_SIGNATURE: &str = "digital signature";
const KEY_ENCIPHERMENT: &str = "key encipherment";
const CLIENT_AUTH: &str = "client auth";
const SERVER_AUTH: &str = "server auth";

/// `usages` is exactly `required` plus any of `optional` (each once at most).
fn usages_are(usages: &[String], required: &[&str], optional: &[&str]) -> bool {
    let mut seen: Vec<&str> = Vec::new();
    for u in usages {
        if seen.contains(&u.as_str()) || !(required.contains(&u.as_str()) || optional.contains(&u.as_str())) {
            return false;
        }
        seen.push(u);
    }
    required.iter().all(|r| seen.contains(r))
}

fn usage_list(required: &[&str], optional: &[&str]) -> String {
    let all: Vec<String> = required.iter().chain(optional).map(|u| format!("{u:?}")).collect();
    format!("[{}]", all.join(" "))
}

/// Kubernetes' `ValidateKubeletClientCSR`: a node's client certificate.
pub fn validate_kubelet_client(req: &CertificateRequest, usages: &[String]) -> Result<(), String> {
    if req.subject.organizations != [NODES_GROUP] {
        return Err(format!("subject organization is not {NODES_GROUP}"));
    }
    if !req.subject.common_name.starts_with(NODE_USER_PREFIX) {
        return Err(format!("subject common name does not begin with {NODE_USER_PREFIX}"));
    }
    if !req.dns_names.is_empty() {
        return Err("dnsNames are not allowed".into());
    }
    if !req.ip_addresses.is_empty() {
        return Err("ipAddresses are not allowed".into());
    }
    if req.other_names {
        return Err("emailAddresses and URIs are not allowed".into());
    }
    let (required, optional) = ([DIGITAL_SIGNATURE, CLIENT_AUTH], [KEY_ENCIPHERMENT]);
    if !usages_are(usages, &required, &optional) {
        return Err(format!("usages did not match {}", usage_list(&required, &optional)));
    }
    Ok(())
}

/// Kubernetes' `ValidateKubeletServingCSR`: a node's serving certificate.
pub fn validate_kubelet_serving(req: &CertificateRequest, usages: &[String]) -> Result<(), String> {
    let (required, optional) = ([DIGITAL_SIGNATURE, SERVER_AUTH], [KEY_ENCIPHERMENT]);
    if !usages_are(usages, &required, &optional) {
        return Err(format!("usages did not match {}", usage_list(&required, &optional)));
    }
    if req.dns_names.is_empty() && req.ip_addresses.is_empty() {
        return Err("DNS or IP subjectAltName is required".into());
    }
    if req.other_names {
        return Err("emailAddresses and URIs are not allowed".into());
    }
    if req.subject.organizations != [NODES_GROUP] {
        return Err(format!("subject organization is not {NODES_GROUP}"));
    }
    if !req.subject.common_name.starts_with(NODE_USER_PREFIX) {
        return Err(format!("subject common name does not begin with {NODE_USER_PREFIX}"));
    }
    Ok(())
}

/// A client certificate of the `kube-apiserver-client` signer: no names, client usages.
pub fn validate_client(req: &CertificateRequest, usages: &[String]) -> Result<(), String> {
    if !req.dns_names.is_empty() || !req.ip_addresses.is_empty() || req.other_names {
        return Err("subjectAltNames are not allowed in a client certificate".into());
    }
    let (required, optional) = ([CLIENT_AUTH], [DIGITAL_SIGNATURE, KEY_ENCIPHERMENT]);
    if !usages_are(usages, &required, &optional) {
        return Err(format!("usages did not match {}", usage_list(&required, &optional)));
    }
    Ok(())
}

/// The signers this controller signs for.
pub const SIGNERS: &[&str] = &[KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, CLIENT_SIGNER];

/// What the signer issues for `signer_name`, one of [`SIGNERS`] (the certificate's extended key usage),
/// after checking the request fits the signer.
pub fn check_for_signer(
    signer_name: &str,
    req: &CertificateRequest,
    usages: &[String],
) -> Result<LeafKind, String> {
    match signer_name {
        KUBELET_CLIENT_SIGNER => validate_kubelet_client(req, usages).map(|()| LeafKind::Client),
        KUBELET_SERVING_SIGNER => validate_kubelet_serving(req, usages).map(|()| LeafKind::Server),
        CLIENT_SIGNER => validate_client(req, usages).map(|()| LeafKind::Client),
        other => Err(format!("{other} is not a signer of this controller")),
    }
}

/// A request the approver knows how to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recognized {
    /// A node's client certificate, asked for by someone else (a bootstrap token): approved when the
    /// requester may create `certificatesigningrequests/nodeclient`.
    NodeClient,
    /// A node renewing its own client certificate: `certificatesigningrequests/selfnodeclient`.
    SelfNodeClient,
    /// A node's serving certificate, asked for by that node: approved when its names are the node's.
    NodeServing { node: String },
    /// kube-proxy's client certificate (navarch's own recognizer): approved when the requester may
    /// create `certificatesigningrequests/kubeproxyclient`.
    KubeProxyClient,
}

impl Recognized {
    /// The subresource of `certificatesigningrequests` the requester must be allowed to create.
    pub fn subresource(&self) -> Option<&'static str> {
        match self {
            Recognized::NodeClient => Some("nodeclient"),
            Recognized::SelfNodeClient => Some("selfnodeclient"),
            Recognized::KubeProxyClient => Some("kubeproxyclient"),
            Recognized::NodeServing { .. } => None,
        }
    }

    /// The Approved condition's message.
    pub fn message(&self) -> &'static str {
        match self {
            Recognized::NodeClient | Recognized::SelfNodeClient => {
                "Auto approving kubelet client certificate after SubjectAccessReview."
            }
            Recognized::NodeServing { .. } => {
                "Auto approving kubelet serving certificate: its names are the requesting node's."
            }
            Recognized::KubeProxyClient => {
                "Auto approving kube-proxy client certificate after SubjectAccessReview."
            }
        }
    }
}

/// Which kind of request this is, from its signer, subject, usages and requester; `None`: not one the
/// approver judges (it stays pending for someone else).
pub fn recognize(
    signer_name: &str,
    req: &CertificateRequest,
    usages: &[String],
    requester: &str,
    requester_groups: &[String],
) -> Option<Recognized> {
    match signer_name {
        KUBELET_CLIENT_SIGNER if validate_kubelet_client(req, usages).is_ok() => {
            Some(if requester == req.subject.common_name {
                Recognized::SelfNodeClient
            } else {
                Recognized::NodeClient
            })
        }
        KUBELET_SERVING_SIGNER
            if validate_kubelet_serving(req, usages).is_ok()
                && requester == req.subject.common_name
                && requester_groups.iter().any(|g| g == NODES_GROUP) =>
        {
            let node = requester.strip_prefix(NODE_USER_PREFIX)?.to_string();
            Some(Recognized::NodeServing { node })
        }
        CLIENT_SIGNER
            if validate_client(req, usages).is_ok()
                && req.subject.common_name == KUBE_PROXY_USER
                && req.subject.organizations.is_empty() =>
        {
            Some(Recognized::KubeProxyClient)
        }
        _ => None,
    }
}

/// Whether a serving certificate's names are all the node's: DNS names its name (or a name it reports
/// as an address), IPs among its reported addresses.
pub fn serving_names_match(
    req: &CertificateRequest,
    node: &str,
    addresses: &[(String, String)],
) -> Result<(), String> {
    for dns in &req.dns_names {
        let reported = addresses.iter().any(|(t, a)| (t == "Hostname" || t == "InternalDNS") && a == dns);
        if dns != node && !reported {
            return Err(format!("DNS name {dns:?} is not node {node}'s"));
        }
    }
    for ip in &req.ip_addresses {
        let reported = addresses.iter().any(|(t, a)| {
            (t == "InternalIP" || t == "ExternalIP") && a.parse::<IpAddr>().is_ok_and(|a| a == *ip)
        });
        if !reported {
            return Err(format!("IP address {ip} is not one of node {node}'s addresses"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use navarch_pki::Leaf;
    use navarch_pki::csr::request;

    use super::*;

    fn parsed(leaf: &Leaf) -> CertificateRequest {
        CertificateRequest::from_pem(request(leaf).unwrap().csr_pem.as_bytes()).unwrap()
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    fn node_client() -> CertificateRequest {
        parsed(&Leaf::client("system:node:node-3", &["system:nodes"]))
    }

    fn node_serving(ip: &str) -> CertificateRequest {
        let mut leaf = Leaf::server("system:node:node-3", &["node-3".into()], &[ip.parse().unwrap()]);
        leaf.organizations = vec!["system:nodes".into()];
        parsed(&leaf)
    }

    #[test]
    fn node_client_requests() {
        let usages = strings(&["digital signature", "client auth"]);
        let bootstrapper = strings(&["system:bootstrappers", "system:authenticated"]);
        let r = node_client();
        assert_eq!(validate_kubelet_client(&r, &usages), Ok(()));
        assert_eq!(
            recognize(KUBELET_CLIENT_SIGNER, &r, &usages, "system:bootstrap:abcdef", &bootstrapper),
            Some(Recognized::NodeClient)
        );
        assert_eq!(
            recognize(KUBELET_CLIENT_SIGNER, &r, &usages, "system:node:node-3", &strings(&[NODES_GROUP])),
            Some(Recognized::SelfNodeClient)
        );
        assert_eq!(Recognized::NodeClient.subresource(), Some("nodeclient"));
        // Key encipherment may be there too; server auth may not.
        assert!(
            validate_kubelet_client(&r, &strings(&["key encipherment", "digital signature", "client auth"]))
                .is_ok()
        );
        let e = validate_kubelet_client(&r, &strings(&["digital signature", "client auth", "server auth"]))
            .unwrap_err();
        assert_eq!(e, r#"usages did not match ["digital signature" "client auth" "key encipherment"]"#);
        // Another group, another name, names: not a node client certificate.
        let admin = parsed(&Leaf::client("system:node:node-3", &["system:masters"]));
        assert_eq!(
            validate_kubelet_client(&admin, &usages).unwrap_err(),
            "subject organization is not system:nodes"
        );
        assert_eq!(
            recognize(KUBELET_CLIENT_SIGNER, &admin, &usages, "system:bootstrap:abcdef", &bootstrapper),
            None
        );
        let alice = parsed(&Leaf::client("alice", &["system:nodes"]));
        assert!(
            validate_kubelet_client(&alice, &usages)
                .unwrap_err()
                .contains("does not begin with system:node:")
        );
        assert_eq!(
            validate_kubelet_client(&node_serving("10.0.0.1"), &usages).unwrap_err(),
            "dnsNames are not allowed"
        );
    }

    #[test]
    fn node_serving_requests() {
        let usages = strings(&["digital signature", "key encipherment", "server auth"]);
        let r = node_serving("10.250.0.13");
        let node_groups = strings(&[NODES_GROUP, "system:authenticated"]);
        assert_eq!(
            recognize(KUBELET_SERVING_SIGNER, &r, &usages, "system:node:node-3", &node_groups),
            Some(Recognized::NodeServing { node: "node-3".into() })
        );
        // Only the node itself asks for its serving certificate.
        assert_eq!(recognize(KUBELET_SERVING_SIGNER, &r, &usages, "system:node:node-4", &node_groups), None);
        assert_eq!(recognize(KUBELET_SERVING_SIGNER, &r, &usages, "system:bootstrap:abcdef", &[]), None);
        let addresses =
            vec![("InternalIP".to_string(), "10.250.0.13".to_string()), ("Hostname".into(), "node-3".into())];
        assert_eq!(serving_names_match(&r, "node-3", &addresses), Ok(()));
        let other = node_serving("10.250.0.12");
        assert_eq!(
            serving_names_match(&other, "node-3", &addresses).unwrap_err(),
            "IP address 10.250.0.12 is not one of node node-3's addresses"
        );
        assert!(
            validate_kubelet_serving(&node_client(), &usages)
                .unwrap_err()
                .contains("subjectAltName is required")
        );
        assert_eq!(check_for_signer(KUBELET_SERVING_SIGNER, &r, &usages), Ok(LeafKind::Server));
        assert!(check_for_signer("example.com/other", &r, &usages).is_err());
    }

    #[test]
    fn kube_proxy_requests() {
        let usages = strings(&["digital signature", "client auth"]);
        let r = parsed(&Leaf::client(KUBE_PROXY_USER, &[]));
        assert_eq!(
            recognize(CLIENT_SIGNER, &r, &usages, "system:bootstrap:abcdef", &[]),
            Some(Recognized::KubeProxyClient)
        );
        // Any other user of the client signer is somebody else's to approve (still signed once approved).
        let admin = parsed(&Leaf::client("admin", &["navarch:cluster-admins"]));
        assert_eq!(recognize(CLIENT_SIGNER, &admin, &usages, "system:bootstrap:abcdef", &[]), None);
        assert_eq!(check_for_signer(CLIENT_SIGNER, &admin, &usages), Ok(LeafKind::Client));
        let grouped = parsed(&Leaf::client(KUBE_PROXY_USER, &["system:masters"]));
        assert_eq!(recognize(CLIENT_SIGNER, &grouped, &usages, "system:bootstrap:abcdef", &[]), None);
    }
}
