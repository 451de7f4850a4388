//! rustls configurations from PKI files, always with the `ring` provider (chosen here, explicitly, so
//! no process-wide default is needed and no binary links a second crypto library).
//!
//! Servers present a certificate and, when given a client CA, ask for client certificates: *required*
//! where a certificate is the only credential (etcd), *optional* where a bearer token may be used
//! instead (the api-server, the kubelet) — a certificate that is presented must still verify, or the
//! handshake fails. Clients verify the server against a CA bundle (never the system roots) and may
//! present their own certificate.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{PkiError, Result, files};

/// The one crypto provider of every navarch TLS configuration.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Whether a server asks for client certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    /// Asked for and verified if presented; the request may authenticate otherwise (a token).
    Optional,
    Required,
}

fn tls(e: impl std::fmt::Display) -> PkiError {
    PkiError::Tls(e.to_string())
}

fn roots(cas: Vec<CertificateDer<'static>>, source: &str) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    for ca in cas {
        store.add(ca).map_err(|e| PkiError::Tls(format!("{source}: {e}")))?;
    }
    Ok(store)
}

/// A server configuration from PEM files. `alpn`: the protocols offered (`h2`, `http/1.1`).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    client_auth: ClientAuth,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>> {
    let chain = files::certificates(cert)?;
    let key = files::private_key(key)?;
    let client_roots = match client_ca {
        Some(path) => Some(roots(files::certificates(path)?, &path.display().to_string())?),
        None => None,
    };
    server_config_from_der(chain, key, client_roots, client_auth, alpn)
}

fn server_config_from_der(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: Option<RootCertStore>,
    client_auth: ClientAuth,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>> {
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().map_err(tls)?;
    let builder = match (client_auth, client_roots) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (_, None) => return Err(PkiError::Tls("client certificates need a client CA".into())),
        (auth, Some(roots)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier =
                if auth == ClientAuth::Optional { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(tls)?)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(tls)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A client configuration: servers verified against the CA bundle `ca_pem`; `identity` (certificate
/// chain PEM, key PEM) presented when given.
pub fn client_config(
    ca_pem: &[u8],
    identity: Option<(&[u8], &[u8])>,
    alpn: &[&[u8]],
) -> Result<ClientConfig> {
    let cas =
        files::certificates_from_pem(ca_pem).map_err(|e| PkiError::Tls(format!("the CA bundle: {e}")))?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls)?
        .with_root_certificates(roots(cas, "the CA bundle")?);
    let mut config = match identity {
        Some((cert, key)) => {
            let chain = files::certificates_from_pem(cert)
                .map_err(|e| PkiError::Tls(format!("the client certificate: {e}")))?;
            let key = files::private_key_from_pem(key)
                .map_err(|e| PkiError::Tls(format!("the client key: {e}")))?;
            builder.with_client_auth_cert(chain, key).map_err(tls)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::{Authority, CA_VALIDITY, Leaf};

    #[test]
    fn configurations_build() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::generate("ca", CA_VALIDITY).unwrap();
        ca.write(&dir.path().join("ca.crt"), &dir.path().join("ca.key")).unwrap();
        let server = Leaf::server("s", &["localhost".into()], &[]);
        ca.ensure(&server, &dir.path().join("s.crt"), &dir.path().join("s.key")).unwrap();
        let (crt, key, cacrt) =
            (dir.path().join("s.crt"), dir.path().join("s.key"), dir.path().join("ca.crt"));
        server_config(&crt, &key, Some(&cacrt), ClientAuth::Optional, &[b"h2"]).unwrap();
        server_config(&crt, &key, None, ClientAuth::None, &[]).unwrap();
        assert!(server_config(&crt, &key, None, ClientAuth::Required, &[]).is_err());
        let client = ca.issue(&Leaf::client("u", &[])).unwrap();
        client_config(
            ca.cert_pem().as_bytes(),
            Some((client.cert_pem.as_bytes(), client.key_pem.as_bytes())),
            &[],
        )
        .unwrap();
        assert!(client_config(b"not pem", None, &[]).is_err());
    }
}
