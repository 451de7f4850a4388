//! Credentials from a join token (Kubernetes' kubelet TLS bootstrapping, as `kubeadm join` and the k3s
//! agent use it): a component started with a bootstrap kubeconfig (the api-server's address, its CA and
//! a bootstrap token) and no usable kubeconfig of its own makes a key, asks for a client certificate
//! through a `certificates.k8s.io/v1` CertificateSigningRequest, waits until the controller-manager has
//! approved and signed it, and writes its own kubeconfig (0600) with that certificate
//! ([`ensure_kubeconfig`]). An identified node asks for its serving certificate the same way
//! ([`request_certificate`]).

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use navarch_api::Resource;
use navarch_api::v1::{CertificateSigningRequest, CertificateSigningRequestSpec, ObjectMeta};
use navarch_pki::Leaf;
use rand::Rng;

use crate::{Client, Connection, Error, Result};

/// How often a pending request is looked at.
const POLL: Duration = Duration::from_secs(1);
/// A kubeconfig whose certificate expires sooner than this is replaced.
const RENEW_BEFORE: Duration = Duration::from_secs(24 * 3600);

/// A certificate to ask for.
#[derive(Clone, Debug)]
pub struct CertificateAsk {
    /// The subject and names.
    pub leaf: Leaf,
    /// `spec.signerName`.
    pub signer_name: &'static str,
    /// `spec.usages`.
    pub usages: &'static [&'static str],
    /// The request's name is this and a random suffix (`node-csr-`, `kube-proxy-csr-`, ...).
    pub name_prefix: &'static str,
}

impl CertificateAsk {
    /// A node's client certificate: `system:node:<name>` in `system:nodes`, signer
    /// `kubernetes.io/kube-apiserver-client-kubelet`.
    pub fn node_client(node: &str) -> CertificateAsk {
        CertificateAsk {
            leaf: Leaf::client(&format!("system:node:{node}"), &[NODES_GROUP]),
            signer_name: "kubernetes.io/kube-apiserver-client-kubelet",
            usages: &["digital signature", "client auth"],
            name_prefix: "node-csr-",
        }
    }

    /// A node's serving certificate for its name and `ip`, signer `kubernetes.io/kubelet-serving`.
    pub fn node_serving(node: &str, ip: std::net::IpAddr) -> CertificateAsk {
        let mut leaf = Leaf::server(&format!("system:node:{node}"), &[node.to_string()], &[ip]);
        leaf.organizations = vec![NODES_GROUP.into()];
        CertificateAsk {
            leaf,
            signer_name: "kubernetes.io/kubelet-serving",
            usages: &["digital signature", "server auth"],
            name_prefix: "csr-",
        }
    }

    /// kube-proxy's client certificate: `system:kube-proxy`, signer `kubernetes.io/kube-apiserver-client`.
    pub fn kube_proxy() -> CertificateAsk {
        CertificateAsk {
            leaf: Leaf::client("system:kube-proxy", &[]),
            signer_name: "kubernetes.io/kube-apiserver-client",
            usages: &["digital signature", "client auth"],
            name_prefix: "kube-proxy-csr-",
        }
    }
}

const NODES_GROUP: &str = "system:nodes";

/// An issued certificate and its key, PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

fn is_unauthenticated(e: &Error) -> bool {
    matches!(e, Error::Api { code: tonic::Code::Unauthenticated, .. })
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..10).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

/// Creates a CertificateSigningRequest for a new key and waits (up to `timeout`) for its certificate.
/// Denied or failed requests end the wait with their condition's reason and message.
pub async fn request_certificate(client: &Client, ask: &CertificateAsk, timeout: Duration) -> Result<Issued> {
    let requested = navarch_pki::csr::request(&ask.leaf).map_err(|e| Error::Config(e.to_string()))?;
    let mut csr = CertificateSigningRequest {
        metadata: Some(ObjectMeta {
            name: format!("{}{}", ask.name_prefix, random_suffix()),
            ..Default::default()
        }),
        spec: Some(CertificateSigningRequestSpec {
            // PEM, base64-encoded as the API's `[]byte` fields are.
            request: BASE64.encode(&requested.csr_pem),
            signer_name: ask.signer_name.into(),
            usages: ask.usages.iter().map(|u| u.to_string()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    csr.set_type_meta();
    let api = client.api::<CertificateSigningRequest>("");
    let deadline = Instant::now() + timeout;
    // The api-server may not know a new token yet, or be restarting: tried again until the deadline.
    let name = loop {
        match api.create(&csr).await {
            Ok(created) => break created.meta().name.clone(),
            Err(e) if (e.is_transient() || is_unauthenticated(&e)) && Instant::now() < deadline => {
                tracing::warn!(error = %e, "creating the CertificateSigningRequest; trying again");
                tokio::time::sleep(POLL * 2).await;
            }
            Err(e) => return Err(e),
        }
    };
    tracing::info!(csr = %name, signer = ask.signer_name, subject = %ask.leaf.common_name, "asked for a certificate");
    loop {
        match api.get(&name).await {
            Ok(csr) => {
                let status = csr.status.unwrap_or_default();
                if !status.certificate.is_empty() {
                    let cert = BASE64
                        .decode(&status.certificate)
                        .ok()
                        .and_then(|pem| String::from_utf8(pem).ok())
                        .ok_or_else(|| {
                            Error::Config(format!(
                                "CertificateSigningRequest {name}: the certificate is not base64 PEM"
                            ))
                        })?;
                    tracing::info!(csr = %name, "certificate issued");
                    return Ok(Issued { cert_pem: cert, key_pem: requested.key_pem });
                }
                if let Some(c) = status
                    .conditions
                    .iter()
                    .find(|c| (c.r#type == "Denied" || c.r#type == "Failed") && c.status != "False")
                {
                    return Err(Error::Config(format!(
                        "CertificateSigningRequest {name}: {} ({}): {}",
                        c.r#type, c.reason, c.message
                    )));
                }
            }
            Err(e) if e.is_transient() => {
                tracing::debug!(csr = %name, error = %e, "waiting for the certificate")
            }
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            return Err(Error::Config(format!(
                "CertificateSigningRequest {name}: no certificate after {}s (is it approved? `kubectl get csr {name}`)",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether `cert_pem` was issued by one of `ca_pem`'s CAs for `leaf` and is valid for a while yet.
pub fn still_good(ca_pem: &[u8], cert_pem: &[u8], leaf: &Leaf) -> bool {
    issued_for(ca_pem, cert_pem, leaf, RENEW_BEFORE)
}

/// Whether `cert_pem` was issued by one of `ca_pem`'s CAs for `leaf` and is valid `remaining` from now.
fn issued_for(ca_pem: &[u8], cert_pem: &[u8], leaf: &Leaf, remaining: Duration) -> bool {
    let (Ok(cas), Ok(certs)) = (
        navarch_pki::files::certificates_from_pem(ca_pem),
        navarch_pki::files::certificates_from_pem(cert_pem),
    ) else {
        return false;
    };
    cas.iter().any(|ca| navarch_pki::verify_issued(ca, &certs[0], leaf, remaining))
}

/// Makes sure `kubeconfig` holds a good client certificate for `ask.leaf`: kept while it is valid for
/// more than a day; renewed as itself while it is still valid (a node's `selfnodeclient`, as Kubernetes'
/// kubelet rotates its certificate); else asked for with the credentials of `bootstrap_kubeconfig`. The
/// address is overridden by `server` when that is not empty. The new certificate is written to
/// `kubeconfig` (0600) with the bootstrap kubeconfig's address and CA. Returns whether it asked.
pub async fn ensure_kubeconfig(
    kubeconfig: &Path,
    bootstrap_kubeconfig: &Path,
    server: &str,
    ask: &CertificateAsk,
    timeout: Duration,
) -> Result<bool> {
    let bootstrap = Connection::for_daemon(Some(bootstrap_kubeconfig), server);
    let current = Connection::from_kubeconfig(kubeconfig).ok().and_then(|(c, _)| {
        let cert = c.identity.as_ref()?.0.clone();
        Some((c, cert))
    });
    // Issued by the bootstrap kubeconfig's CA (a cluster made anew has another), or by its own CA when
    // the bootstrap kubeconfig is gone.
    let mut renew_as_itself = None;
    if let Some((current, cert)) = current {
        let ca = bootstrap.as_ref().map_or(current.ca_pem.as_slice(), |b| b.ca_pem.as_slice());
        if issued_for(ca, &cert, &ask.leaf, RENEW_BEFORE) {
            return Ok(false);
        }
        if issued_for(ca, &cert, &ask.leaf, Duration::ZERO) {
            renew_as_itself = Some(if server.is_empty() { current } else { current.with_server(server) });
        }
    }
    let connection = match renew_as_itself {
        Some(current) => {
            tracing::info!(kubeconfig = %kubeconfig.display(), "the client certificate expires soon: renewing it as itself");
            current
        }
        None => {
            let connection = bootstrap?;
            if connection.token.is_none() && connection.identity.is_none() {
                return Err(Error::Config(format!(
                    "{}: the bootstrap kubeconfig has no token (or client certificate)",
                    bootstrap_kubeconfig.display()
                )));
            }
            tracing::info!(kubeconfig = %kubeconfig.display(), "no usable credentials yet: asking for a client certificate");
            connection
        }
    };
    let client = Client::connect_lazy(&connection)?;
    let issued = request_certificate(&client, ask, timeout).await?;
    // The address written is the kubeconfigs' own, not `server` (which overrides it at every start).
    let address = match Connection::from_kubeconfig(bootstrap_kubeconfig) {
        Ok((b, _)) => b.server,
        Err(_) => Connection::from_kubeconfig(kubeconfig)?.0.server,
    };
    let text = navarch_pki::cluster::kubeconfig(
        "navarch",
        &address,
        &connection.ca_pem,
        issued.cert_pem.as_bytes(),
        issued.key_pem.as_bytes(),
        "default",
    );
    navarch_pki::files::write(kubeconfig, text.as_bytes(), true).map_err(|e| Error::Config(e.to_string()))?;
    tracing::info!(kubeconfig = %kubeconfig.display(), user = %ask.leaf.common_name, "wrote the kubeconfig");
    Ok(true)
}
