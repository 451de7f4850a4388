//! Images: Docker-style references, an OCI distribution client (registry mirrors per host, like
//! containerd's hosts.toml), and pulling into containerd: blobs into its content store, the image
//! record, and the layers unpacked into overlayfs snapshots named by their chain ids.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use containerd_client::types::Descriptor;
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::containerd::{Containerd, RuntimeError};

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("{0}")]
    Registry(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

type Result<T> = std::result::Result<T, ImageError>;

/// A parsed image reference: `registry/repository[:tag][@digest]`, normalised as Docker does
/// (`busybox` → `docker.io/library/busybox:latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |reason: &str| ImageError::InvalidReference { reference: s.into(), reason: reason.into() };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !d.starts_with("sha256:") || d.len() != 71 {
                    return Err(bad("digest must be sha256:<64 hex digits>"));
                }
                (r, d.to_string())
            }
            None => (s, String::new()),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) if i + 1 == rest[slash..].len() => return Err(bad("empty tag after ':'")),
            Some(i) => (&rest[..slash + i], rest[slash + i + 1..].to_string()),
            None => (rest, String::new()),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, path)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (first.to_string(), path.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let repository = if registry == "docker.io" && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty()
            || !repository.split('/').all(|c| {
                !c.is_empty()
                    && c.chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
            })
        {
            return Err(bad("repository must be lower-case path components of [a-z0-9._-]"));
        }
        if !tag.is_empty()
            && (tag.len() > 128 || !tag.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
        {
            return Err(bad("tag must be up to 128 of [A-Za-z0-9._-]"));
        }
        let tag = if tag.is_empty() && digest.is_empty() { "latest".to_string() } else { tag };
        Ok(Reference { registry, repository, tag, digest })
    }

    /// The canonical name containerd records (`docker.io/library/busybox:1.36`).
    pub fn name(&self) -> String {
        let mut n = format!("{}/{}", self.registry, self.repository);
        if !self.tag.is_empty() {
            n.push(':');
            n.push_str(&self.tag);
        }
        if !self.digest.is_empty() {
            n.push('@');
            n.push_str(&self.digest);
        }
        n
    }

    /// What to ask the registry's manifests endpoint for.
    fn manifest_ref(&self) -> &str {
        if self.digest.is_empty() { &self.tag } else { &self.digest }
    }

    /// Kubernetes' default pull policy: `Always` for `:latest` or no tag, else `IfNotPresent`.
    pub fn default_pull_policy(image: &str) -> &'static str {
        match Reference::parse(image) {
            Ok(r) if r.digest.is_empty() && r.tag == "latest" => "Always",
            _ => "IfNotPresent",
        }
    }
}

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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    config: Option<OciDescriptor>,
    #[serde(default)]
    layers: Vec<OciDescriptor>,
    #[serde(default)]
    manifests: Vec<OciDescriptor>,
}

#[derive(Debug, Deserialize)]
struct ImageConfig {
    rootfs: RootFs,
}

#[derive(Debug, Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

/// What a pull (or a lookup of a present image) yields: enough to create containers from it.
#[derive(Debug, Clone)]
pub struct PulledImage {
    pub name: String,
    /// The manifest's (or index's) digest, the image ID Kubernetes reports.
    pub digest: String,
    /// The top layer's chain id: the parent snapshot of a container's rootfs.
    pub chain_id: String,
    /// The image config (`config` of the OCI image config: Env, Entrypoint, Cmd, WorkingDir, User).
    pub config: serde_json::Value,
}

fn sha256_hex(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Chain ids of a layer stack (OCI image spec: ChainID(L0) = DiffID(L0),
/// ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => sha256_hex(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
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
    async fn fetch(
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

    /// Pulls `image` into containerd (skipping blobs and snapshots it already has) and records it.
    pub async fn pull(&self, ctd: &Containerd, image: &str) -> Result<PulledImage> {
        let r = Reference::parse(image)?;
        let lease = format!("navarch-pull-{}", rand::random::<u64>());
        ctd.create_lease(&lease).await?;
        let result = self.pull_leased(ctd, &r, &lease).await;
        if let Err(e) = ctd.delete_lease(&lease).await {
            tracing::warn!(%lease, error = %e, "deleting pull lease");
        }
        result
    }

    async fn pull_leased(&self, ctd: &Containerd, r: &Reference, lease: &str) -> Result<PulledImage> {
        let (headers, body) = self.fetch(r, &format!("manifests/{}", r.manifest_ref()), ACCEPT).await?;
        let top_digest = headers.get("docker-content-digest").cloned().unwrap_or_else(|| sha256_hex(&body));
        if sha256_hex(&body) != top_digest {
            return Err(ImageError::Registry(format!(
                "manifest of {} does not match its digest {top_digest}",
                r.name()
            )));
        }
        let top: Manifest = serde_json::from_slice(&body)
            .map_err(|e| ImageError::Registry(format!("manifest of {}: {e}", r.name())))?;
        let top_media = headers
            .get("content-type")
            .cloned()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| top.media_type.clone());
        let top_size = body.len() as i64;

        // An index: choose this platform's manifest.
        let (manifest, manifest_body, manifest_digest, index) = if top_media == MEDIA_OCI_INDEX
            || top_media == MEDIA_DOCKER_LIST
            || !top.manifests.is_empty()
        {
            let chosen = top
                .manifests
                .iter()
                .find(|m| m.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == arch()))
                .ok_or_else(|| {
                    ImageError::Registry(format!("{}: no manifest for linux/{}", r.name(), arch()))
                })?;
            let (_, mbody) = self.fetch(r, &format!("manifests/{}", chosen.digest), ACCEPT).await?;
            if sha256_hex(&mbody) != chosen.digest {
                return Err(ImageError::Registry(format!(
                    "manifest {} does not match its digest",
                    chosen.digest
                )));
            }
            let m: Manifest = serde_json::from_slice(&mbody)
                .map_err(|e| ImageError::Registry(format!("manifest {}: {e}", chosen.digest)))?;
            (m, mbody, chosen.digest.clone(), Some((body, top_media.clone())))
        } else {
            (top, body, top_digest.clone(), None)
        };
        let config = manifest
            .config
            .as_ref()
            .ok_or_else(|| ImageError::Registry(format!("manifest of {} has no config", r.name())))?;

        // Blobs: layers, config, then the manifest (and index) with GC references to them.
        for layer in &manifest.layers {
            self.store_blob(ctd, r, lease, &layer.digest).await?;
        }
        let cfg_bytes = match ctd.content_exists(&config.digest).await? {
            true => ctd.read_content(&config.digest).await?,
            false => self.fetch_blob(r, &config.digest).await?,
        };
        let cfg: ImageConfig = serde_json::from_slice(&cfg_bytes)
            .map_err(|e| ImageError::Registry(format!("image config {}: {e}", config.digest)))?;
        if cfg.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::Registry(format!(
                "{}: {} layers but {} diff ids",
                r.name(),
                manifest.layers.len(),
                cfg.rootfs.diff_ids.len()
            )));
        }
        let chains = chain_ids(&cfg.rootfs.diff_ids);
        let top_chain = chains.last().cloned().unwrap_or_default();
        // The config keeps the unpacked snapshot alive; the manifest keeps config and layers.
        if !ctd.content_exists(&config.digest).await? {
            let gc_snapshot = format!("containerd.io/gc.ref.snapshot.{}", crate::containerd::SNAPSHOTTER);
            let labels = HashMap::from([(gc_snapshot, top_chain.clone())]);
            ctd.write_content(lease, &config.digest, cfg_bytes.clone(), labels).await?;
        }
        let mut mlabels =
            HashMap::from([("containerd.io/gc.ref.content.config".to_string(), config.digest.clone())]);
        for (i, l) in manifest.layers.iter().enumerate() {
            mlabels.insert(format!("containerd.io/gc.ref.content.l.{i}"), l.digest.clone());
        }
        if !ctd.content_exists(&manifest_digest).await? {
            ctd.write_content(lease, &manifest_digest, manifest_body.clone(), mlabels).await?;
        }
        let mut target = Descriptor {
            media_type: if manifest.media_type.is_empty() {
                MEDIA_OCI_MANIFEST.into()
            } else {
                manifest.media_type.clone()
            },
            digest: manifest_digest.clone(),
            size: manifest_body.len() as i64,
            annotations: HashMap::new(),
        };
        if let Some((ibody, imedia)) = index {
            if !ctd.content_exists(&top_digest).await? {
                let labels = HashMap::from([(
                    "containerd.io/gc.ref.content.m.0".to_string(),
                    manifest_digest.clone(),
                )]);
                ctd.write_content(lease, &top_digest, ibody, labels).await?;
            }
            target = Descriptor {
                media_type: imedia,
                digest: top_digest.clone(),
                size: top_size,
                annotations: HashMap::new(),
            };
        }

        // Unpack: one committed snapshot per chain id.
        for (i, (layer, chain)) in manifest.layers.iter().zip(&chains).enumerate() {
            if ctd.snapshot_exists(chain).await? {
                continue;
            }
            let parent = if i == 0 { String::new() } else { chains[i - 1].clone() };
            let key = format!("extract-{}-{chain}", rand::random::<u32>());
            let mounts = ctd.prepare_snapshot(&key, &parent, Some(lease)).await?;
            let desc = Descriptor {
                media_type: layer.media_type.clone(),
                digest: layer.digest.clone(),
                size: layer.size,
                annotations: HashMap::new(),
            };
            let applied = ctd.apply_layer(desc, mounts).await;
            let committed = match applied {
                Ok(()) => ctd.commit_snapshot(chain, &key, lease).await,
                Err(e) => Err(e),
            };
            if let Err(e) = committed {
                let _ = ctd.remove_snapshot(&key).await;
                if !(e.is_already_exists()) {
                    return Err(e.into());
                }
            }
        }
        ctd.put_image(&r.name(), target).await?;
        let full: serde_json::Value = serde_json::from_slice(&cfg_bytes).unwrap_or_default();
        Ok(PulledImage {
            name: r.name(),
            digest: top_digest,
            chain_id: top_chain,
            config: full.get("config").cloned().unwrap_or_default(),
        })
    }

    /// Fetches a blob, checking its digest.
    async fn fetch_blob(&self, r: &Reference, digest: &str) -> Result<Vec<u8>> {
        let (_, body) = self.fetch(r, &format!("blobs/{digest}"), "*/*").await?;
        if sha256_hex(&body) != digest {
            return Err(ImageError::Registry(format!(
                "blob {digest} of {}: content does not match its digest",
                r.name()
            )));
        }
        Ok(body)
    }

    /// Fetches a blob into the content store unless it is there.
    async fn store_blob(&self, ctd: &Containerd, r: &Reference, lease: &str, digest: &str) -> Result<()> {
        if !ctd.content_exists(digest).await? {
            let body = self.fetch_blob(r, digest).await?;
            ctd.write_content(lease, digest, body, HashMap::new()).await?;
        }
        Ok(())
    }
}

/// Looks up an image already in containerd (unpacked), without the network.
pub async fn present(ctd: &Containerd, image: &str) -> Result<Option<PulledImage>> {
    let r = Reference::parse(image)?;
    let Some(img) = ctd.get_image(&r.name()).await? else { return Ok(None) };
    let Some(target) = img.target else { return Ok(None) };
    let mut manifest: Manifest = match serde_json::from_slice(&ctd.read_content(&target.digest).await?) {
        Ok(m) => m,
        Err(_) => return Ok(None),
    };
    if !manifest.manifests.is_empty() {
        let Some(chosen) = manifest
            .manifests
            .iter()
            .find(|m| m.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == arch()))
        else {
            return Ok(None);
        };
        manifest = match serde_json::from_slice(&ctd.read_content(&chosen.digest).await?) {
            Ok(m) => m,
            Err(_) => return Ok(None),
        };
    }
    let Some(config) = manifest.config else { return Ok(None) };
    let full: serde_json::Value = match serde_json::from_slice(&ctd.read_content(&config.digest).await?) {
        Ok(v) => v,
        Err(_) => return Ok(None),
    };
    let diff_ids: Vec<String> = full
        .pointer("/rootfs/diff_ids")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let chain_id = chain_ids(&diff_ids).last().cloned().unwrap_or_default();
    if chain_id.is_empty() || !ctd.snapshot_exists(&chain_id).await? {
        return Ok(None);
    }
    Ok(Some(PulledImage {
        name: r.name(),
        digest: target.digest,
        chain_id,
        config: full.get("config").cloned().unwrap_or_default(),
    }))
}

/// The `errors[].message` of a registry error body, if it has one.
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

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(p("busybox").name(), "docker.io/library/busybox:latest");
        assert_eq!(p("busybox:1.36").name(), "docker.io/library/busybox:1.36");
        assert_eq!(p("nginx/nginx:1").name(), "docker.io/nginx/nginx:1");
        assert_eq!(p("127.0.0.1:5000/x/y:2").name(), "127.0.0.1:5000/x/y:2");
        assert_eq!(p("localhost/app").name(), "localhost/app:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(p(&format!("busybox@{d}")).name(), format!("docker.io/library/busybox@{d}"));
        assert_eq!(p(&format!("registry.k8s.io/pause:3.9@{d}")).tag, "3.9");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["", "Busybox", "busybox:", "busybox@sha256:abc", "a//b", "busy box"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pull_policy_defaults() {
        assert_eq!(Reference::default_pull_policy("busybox"), "Always");
        assert_eq!(Reference::default_pull_policy("busybox:latest"), "Always");
        assert_eq!(Reference::default_pull_policy("busybox:1.36"), "IfNotPresent");
    }

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

    #[test]
    fn chain_ids_follow_the_spec() {
        let d = vec!["sha256:a".to_string(), "sha256:b".to_string()];
        let c = chain_ids(&d);
        assert_eq!(c[0], "sha256:a");
        assert_eq!(c[1], sha256_hex(b"sha256:a sha256:b"));
    }
}
