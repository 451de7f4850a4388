//! How a client reaches and proves itself to the api-server: its address (`https://host:port`), the CA
//! that signed the api-server's certificate, and a credential — a client certificate and key, or a
//! bearer token (a ServiceAccount token, re-read from its file as the kubelet rotates it).
//!
//! Loaded from a kubeconfig ([`Connection::from_kubeconfig`]) as every Kubernetes component and
//! kubectl does: the current context's cluster and user, `*-data` fields inline or file paths relative
//! to the kubeconfig's directory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};

/// A token file is read again at most this often (the kubelet rewrites projected tokens well before
/// they expire).
const TOKEN_REREAD: Duration = Duration::from_secs(60);

/// Everything needed to connect.
#[derive(Clone, Debug)]
pub struct Connection {
    /// `https://host:port`.
    pub server: String,
    /// PEM bundle the api-server's certificate must chain to.
    pub ca_pem: Vec<u8>,
    /// PEM client certificate and key.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    pub token: Option<Token>,
}

/// A bearer token, fixed or read from a file.
#[derive(Clone, Debug)]
pub enum Token {
    Fixed(String),
    File(TokenFile),
}

/// A token file, re-read every [`TOKEN_REREAD`].
#[derive(Clone, Debug)]
pub struct TokenFile {
    path: PathBuf,
    cached: Arc<Mutex<Option<(Instant, String)>>>,
}

impl TokenFile {
    pub fn new(path: impl Into<PathBuf>) -> TokenFile {
        TokenFile { path: path.into(), cached: Arc::default() }
    }

    /// The current token (the last one read if the file is unreadable now).
    pub fn current(&self) -> Option<String> {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = cached.as_ref().is_some_and(|(at, _)| at.elapsed() < TOKEN_REREAD);
        if !fresh {
            match std::fs::read_to_string(&self.path) {
                Ok(t) => *cached = Some((Instant::now(), t.trim().to_string())),
                Err(e) => tracing::warn!(path = %self.path.display(), error = %e, "reading the token file"),
            }
        }
        cached.as_ref().map(|(_, t)| t.clone())
    }
}

impl Token {
    pub fn current(&self) -> Option<String> {
        match self {
            Token::Fixed(t) => Some(t.clone()),
            Token::File(f) => f.current(),
        }
    }
}

fn config_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Config(format!("{}: {reason}", path.display()))
}

#[derive(Deserialize, Default)]
struct Kubeconfig {
    #[serde(default)]
    clusters: Vec<NamedCluster>,
    #[serde(default)]
    users: Vec<NamedUser>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
    #[serde(default, rename = "current-context")]
    current_context: String,
}

#[derive(Deserialize)]
struct NamedCluster {
    name: String,
    cluster: Cluster,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    user: User,
}

#[derive(Deserialize)]
struct NamedContext {
    name: String,
    context: Context,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    #[serde(default)]
    server: String,
    certificate_authority: Option<PathBuf>,
    certificate_authority_data: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct User {
    client_certificate: Option<PathBuf>,
    client_certificate_data: Option<String>,
    client_key: Option<PathBuf>,
    client_key_data: Option<String>,
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
struct Context {
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    namespace: String,
}

/// A value given inline (`*-data`, base64) or as a file path relative to the kubeconfig.
fn data_or_file(
    base: &Path,
    data: &Option<String>,
    file: &Option<PathBuf>,
    what: &str,
    path: &Path,
) -> Result<Option<Vec<u8>>> {
    if let Some(d) = data {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(d.trim())
            .map_err(|e| config_error(path, format!("{what}-data: invalid base64: {e}")))?;
        return Ok(Some(bytes));
    }
    match file {
        Some(f) => {
            let f = base.join(f);
            std::fs::read(&f)
                .map(Some)
                .map_err(|e| config_error(path, format!("{what} {}: {e}", f.display())))
        }
        None => Ok(None),
    }
}

impl Connection {
    /// The current context of a kubeconfig; also returns the context's namespace (empty if unset).
    pub fn from_kubeconfig(path: &Path) -> Result<(Connection, String)> {
        let text = std::fs::read_to_string(path).map_err(|e| config_error(path, e))?;
        let config: Kubeconfig = serde_yaml::from_str(&text).map_err(|e| config_error(path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let context = config
            .contexts
            .iter()
            .find(|c| c.name == config.current_context)
            .or_else(|| (config.contexts.len() == 1).then(|| &config.contexts[0]))
            .map(|c| &c.context)
            .ok_or_else(|| config_error(path, format!("no context {:?}", config.current_context)))?;
        let cluster = config
            .clusters
            .iter()
            .find(|c| c.name == context.cluster)
            .map(|c| &c.cluster)
            .ok_or_else(|| config_error(path, format!("no cluster {:?}", context.cluster)))?;
        let default_user = User::default();
        let user =
            config.users.iter().find(|u| u.name == context.user).map(|u| &u.user).unwrap_or(&default_user);
        let ca_pem = data_or_file(
            base,
            &cluster.certificate_authority_data,
            &cluster.certificate_authority,
            "certificate-authority",
            path,
        )?
        .ok_or_else(|| config_error(path, "the cluster has no certificate-authority(-data)"))?;
        let cert = data_or_file(
            base,
            &user.client_certificate_data,
            &user.client_certificate,
            "client-certificate",
            path,
        )?;
        let key = data_or_file(base, &user.client_key_data, &user.client_key, "client-key", path)?;
        let identity = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err(config_error(path, "client-certificate and client-key go together")),
        };
        let token = match (&user.token, &user.token_file) {
            (Some(t), _) => Some(Token::Fixed(t.clone())),
            (None, Some(f)) => Some(Token::File(TokenFile::new(base.join(f)))),
            (None, None) => None,
        };
        if cluster.server.is_empty() {
            return Err(config_error(path, "the cluster has no server"));
        }
        Ok((
            Connection { server: cluster.server.clone(), ca_pem, identity, token },
            context.namespace.clone(),
        ))
    }

    /// In a pod: the mounted ServiceAccount token and CA, and `KUBERNETES_SERVICE_HOST`/`PORT`.
    pub fn in_cluster() -> Result<Connection> {
        const DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
        let host = std::env::var("KUBERNETES_SERVICE_HOST")
            .map_err(|_| Error::Config("KUBERNETES_SERVICE_HOST is not set".into()))?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
        let ca_path = Path::new(DIR).join("ca.crt");
        let ca_pem = std::fs::read(&ca_path).map_err(|e| config_error(&ca_path, e))?;
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        Ok(Connection {
            server: format!("https://{host}:{port}"),
            ca_pem,
            identity: None,
            token: Some(Token::File(TokenFile::new(Path::new(DIR).join("token")))),
        })
    }

    /// A daemon's connection: its `--kubeconfig` (required), the address overridden by `--server` when
    /// that is not empty.
    pub fn for_daemon(kubeconfig: Option<&Path>, server: &str) -> Result<Connection> {
        let path = kubeconfig.ok_or_else(|| {
            Error::Config(
                "kubeconfig: required (the api-server only accepts authenticated TLS clients)".into(),
            )
        })?;
        let (conn, _) = Connection::from_kubeconfig(path)?;
        Ok(if server.is_empty() { conn } else { conn.with_server(server) })
    }

    /// The same credentials against another address (`host:port` means `https://host:port`).
    pub fn with_server(mut self, server: &str) -> Connection {
        self.server = if server.contains("://") { server.to_string() } else { format!("https://{server}") };
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_inline_and_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), "CA").unwrap();
        std::fs::write(dir.path().join("token"), "tok\n").unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443\n    \
             certificate-authority: ca.crt\n    extensions: []\nusers:\n- name: u\n  user:\n    client-certificate-data: {}\n    \
             client-key-data: {}\n- name: t\n  user:\n    tokenFile: token\ncontexts:\n- name: x\n  context: {{cluster: c, user: u, namespace: ns}}\n\
             - name: y\n  context: {{cluster: c, user: t}}\ncurrent-context: x\n",
            b64("CERT"),
            b64("KEY")
        );
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, &config).unwrap();
        let (c, ns) = Connection::from_kubeconfig(&path).unwrap();
        assert_eq!(
            (c.server.as_str(), ns.as_str(), c.ca_pem.as_slice()),
            ("https://10.0.0.1:6443", "ns", b"CA".as_slice())
        );
        assert_eq!(c.identity, Some((b"CERT".to_vec(), b"KEY".to_vec())));
        std::fs::write(&path, config.replace("current-context: x", "current-context: y")).unwrap();
        let (c, _) = Connection::from_kubeconfig(&path).unwrap();
        assert_eq!(c.token.unwrap().current().as_deref(), Some("tok"));
        std::fs::write(&path, config.replace("current-context: x", "current-context: z")).unwrap();
        assert!(Connection::from_kubeconfig(&path).unwrap_err().to_string().contains("no context \"z\""));
        assert_eq!(
            Connection { server: String::new(), ca_pem: vec![], identity: None, token: None }
                .with_server("h:1")
                .server,
            "https://h:1"
        );
    }
}
