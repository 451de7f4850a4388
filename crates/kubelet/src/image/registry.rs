//! The registry client: an OCI distribution (`/v2/`) HTTP(S) client with the Docker registry's
//! anonymous bearer-token flow, the registry mirrors per host ([`Mirrors`]), and the TLS settings
//! it verifies registries with ([`tls_config`]).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use super::{ImageError, Reference, Result, sha256_hex};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Where to fetch a registry host's images: mirrors first, then the host itself.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Mirrors {
    /// Host (e.g. `docker.io`) → endpoints (`http://127.0.0.1:5000`), tried in order.
    #[serde(default)]
    pub mirrors: BTreeMap<String, Vec<String>>,
    /// Hosts spoken to over plain HTTP when they are tried directly (not through a mirror).
    #[serde(default)]
    pub insecure: Vec<String>,
}

impl Mirrors {
    /// Endpoints for a registry host, in the order to try.
    pub fn endpoints(&self, host: &str) -> Vec<String> {
        let mut out: Vec<String> = self.mirrors.get(host).cloned().unwrap_or_default();
        let direct = if host == "docker.io" { "registry-1.docker.io" } else { host };
        let scheme = if self.insecure.iter().any(|h| h == host) || is_loopback_host(direct) {
            "http"
        } else {
            "https"
        };
        out.push(format!("{scheme}://{direct}"));
        out
    }
}

fn is_loopback_host(host: &str) -> bool {
    let h = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    h == "localhost" || h.starts_with("127.") || h == "[::1]"
}

/// The registry client: HTTPS verified against the system's CA certificates plus any configured
/// ones, plain HTTP for loopback and `insecure` hosts; anonymous bearer tokens (the Docker
/// registry token flow) when a registry asks for them.
#[derive(Clone)]
pub struct Puller {
    http: HttpClient<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    mirrors: Mirrors,
    /// `realm?service&scope` → bearer token, reused while the registry accepts it.
    tokens: std::sync::Arc<std::sync::Mutex<HashMap<String, String>>>,
}

/// The TLS settings for registries: the system's roots (Debian's ca-certificates) and the PEM
/// certificates in `ca_files`.
pub fn tls_config(ca_files: &[std::path::PathBuf]) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let system = system_roots();
    if system.is_empty() {
        tracing::warn!(
            bundle = SYSTEM_CA_BUNDLE,
            "no system CA certificates (apt install ca-certificates); only configured CAs are trusted"
        );
    }
    for cert in system {
        let _ = roots.add(cert);
    }
    for f in ca_files {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(f)
            .map_err(|e| ImageError::Registry(format!("registry CA file {}: {e}", f.display())))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| ImageError::Registry(format!("registry CA file {}: {e}", f.display())))?;
        if certs.is_empty() {
            return Err(ImageError::Registry(format!(
                "registry CA file {}: no PEM certificates",
                f.display()
            )));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| ImageError::Registry(format!("registry CA file {}: {e}", f.display())))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ImageError::Registry(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Debian's bundle of the system's trusted CA certificates.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn system_roots() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_file_iter(SYSTEM_CA_BUNDLE)
        .map(|it| it.filter_map(|c| c.ok()).collect())
        .unwrap_or_default()
}

/// The parameters of a `WWW-Authenticate: Bearer realm="..",service="..",scope=".."` challenge.
pub fn bearer_challenge(header: &str) -> Option<BTreeMap<String, String>> {
    let rest = header.trim().strip_prefix("Bearer ").or_else(|| header.trim().strip_prefix("bearer "))?;
    let mut out = BTreeMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            after.split_once(",").unwrap_or((after, ""))
        };
        out.insert(key.trim().to_lowercase(), value.to_string());
        s = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out.contains_key("realm").then_some(out)
}

impl Puller {
    pub fn new(mirrors: Mirrors, tls: rustls::ClientConfig) -> Puller {
        let mut http_connector = HttpConnector::new();
        http_connector.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http_connector);
        let http = HttpClient::builder(TokioExecutor::new()).build(https);
        Puller { http, mirrors, tokens: Default::default() }
    }

    /// GET with the registry's bearer token flow: a 401 with a Bearer challenge fetches an
    /// anonymous token from the realm and retries once.
    async fn get(&self, url: &str, accept: &str) -> Result<(u16, HashMap<String, String>, Vec<u8>)> {
        let cached = self.tokens.lock().expect("token lock").get(&token_key(url)).cloned();
        let (status, headers, body) = self.get_once(url, accept, cached.as_deref()).await?;
        if status != 401 {
            return Ok((status, headers, body));
        }
        let Some(challenge) = headers.get("www-authenticate").and_then(|h| bearer_challenge(h)) else {
            return Ok((status, headers, body));
        };
        let mut token_url = challenge["realm"].clone();
        let query: Vec<String> = ["service", "scope"]
            .iter()
            .filter_map(|k| challenge.get(*k).map(|v| format!("{k}={}", v.replace(' ', "%20"))))
            .collect();
        if !query.is_empty() {
            token_url.push(if token_url.contains('?') { '&' } else { '?' });
            token_url.push_str(&query.join("&"));
        }
        let (code, _, tbody) = self.get_once(&token_url, "application/json", None).await?;
        if code != 200 {
            return Err(ImageError::Registry(format!(
                "GET {token_url}: {code} {}",
                registry_message(&tbody)
            )));
        }
        let v: serde_json::Value = serde_json::from_slice(&tbody)
            .map_err(|e| ImageError::Registry(format!("GET {token_url}: token response: {e}")))?;
        let token = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| ImageError::Registry(format!("GET {token_url}: no token in the response")))?
            .to_string();
        self.tokens.lock().expect("token lock").insert(token_key(url), token.clone());
        self.get_once(url, accept, Some(&token)).await
    }

    async fn get_once(
        &self,
        url: &str,
        accept: &str,
        token: Option<&str>,
    ) -> Result<(u16, HashMap<String, String>, Vec<u8>)> {
        let mut req =
            hyper::Request::get(url).header("accept", accept).header("user-agent", "navarch-kubelet");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.body(Empty::new()).map_err(|e| ImageError::Registry(format!("GET {url}: {e}")))?;
        let fut = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| ImageError::Registry(format!("GET {url}: {}", error_chain(&e))))?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_lowercase(), v.to_str().ok()?.to_string())))
                .collect();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ImageError::Registry(format!("GET {url}: reading body: {e}")))?
                .to_bytes()
                .to_vec();
            Ok((status, headers, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| ImageError::Registry(format!("GET {url}: timed out after {REQUEST_TIMEOUT:?}")))?
    }

    /// Fetches `path` (under `/v2/<repo>/`) from the first endpoint that has it.
    pub(super) async fn fetch(
        &self,
        r: &Reference,
        path: &str,
        accept: &str,
    ) -> Result<(HashMap<String, String>, Vec<u8>)> {
        let mut errors = Vec::new();
        for ep in self.mirrors.endpoints(&r.registry) {
            let url = format!("{ep}/v2/{}/{path}", r.repository);
            match self.get(&url, accept).await {
                Ok((200, headers, body)) => return Ok((headers, body)),
                Ok((status, _, body)) => {
                    let msg = registry_message(&body);
                    errors.push(format!(
                        "GET {url}: {status}{}",
                        if msg.is_empty() { msg } else { format!(" {msg}") }
                    ));
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(ImageError::Registry(errors.join("; ")))
    }

    /// Fetches a blob, checking its digest.
    pub(super) async fn fetch_blob(&self, r: &Reference, digest: &str) -> Result<Vec<u8>> {
        let (_, body) = self.fetch(r, &format!("blobs/{digest}"), "*/*").await?;
        if sha256_hex(&body) != digest {
            return Err(ImageError::Registry(format!(
                "blob {digest} of {}: content does not match its digest",
                r.name()
            )));
        }
        Ok(body)
    }
}

/// Tokens are per registry and repository: the URL up to `/manifests/` or `/blobs/`.
fn token_key(url: &str) -> String {
    for marker in ["/manifests/", "/blobs/"] {
        if let Some(i) = url.find(marker) {
            return url[..i].to_string();
        }
    }
    url.to_string()
}

/// An error and its causes (hyper's client errors hide the TLS reason in the source chain).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// The `errors[].message` of a registry error body, if it has one.
fn registry_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) => e.errors.iter().map(|i| format!("{}: {}", i.code, i.message)).collect::<Vec<_>>().join(", "),
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_then_host() {
        let m = Mirrors {
            mirrors: [("docker.io".to_string(), vec!["http://127.0.0.1:5000".to_string()])].into(),
            insecure: vec!["reg.local:5000".into()],
        };
        assert_eq!(m.endpoints("docker.io"), vec!["http://127.0.0.1:5000", "https://registry-1.docker.io"]);
        assert_eq!(m.endpoints("reg.local:5000"), vec!["http://reg.local:5000"]);
        assert_eq!(m.endpoints("127.0.0.1:5000"), vec!["http://127.0.0.1:5000"]);
    }

    #[test]
    fn bearer_challenges_and_token_keys() {
        let c = bearer_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(c["realm"], "https://auth.docker.io/token");
        assert_eq!(c["service"], "registry.docker.io");
        assert_eq!(c["scope"], "repository:library/busybox:pull");
        assert!(bearer_challenge("Basic realm=\"x\"").is_none());
        assert_eq!(
            token_key("https://r.example/v2/library/busybox/manifests/1.36"),
            token_key("https://r.example/v2/library/busybox/blobs/sha256:abc")
        );
    }

    #[test]
    fn tls_config_reads_ca_files_and_rejects_bad_ones() {
        let d = tempfile::tempdir().unwrap();
        let bad = d.path().join("bad.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        let e = tls_config(std::slice::from_ref(&bad)).err().unwrap().to_string();
        assert!(e.contains("bad.pem") && e.contains("no PEM certificates"), "{e}");
        assert!(tls_config(&[]).is_ok());
    }
}
