//! [`TestPki`]: a cluster PKI (`navarch_pki::ClusterPki`) in a temporary directory, for a cluster on
//! loopback (the api-server's and etcd's certificates name `localhost` and `127.0.0.1`). Every test
//! cluster has its own: [`Etcd::start`](crate::Etcd::start) makes it and the api-server, the daemons,
//! kubelets, navctl, kubectl and raw requests of that cluster use its files.
//!
//! Identities: the component certificates `init` makes (`admin`, `scheduler`, `controller-manager`,
//! `kube-proxy`, `cluster-dns`, `apiserver-kubelet-client`, ...), node certificates ([`TestPki::node`])
//! and any user in any groups ([`TestPki::user_kubeconfig`]).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use navarch_pki::{ClusterPki, InitOptions, NodeCerts};
use tempfile::TempDir;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// A cluster PKI in a temporary directory (removed on drop).
pub struct TestPki {
    dir: TempDir,
    pki: ClusterPki,
    /// Serializes certificate issuance (concurrent tasks may ask for the same identity).
    issuing: Mutex<()>,
}

impl Default for TestPki {
    fn default() -> TestPki {
        TestPki::new()
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A file-name-safe form of a user name.
fn stem_of(user: &str, groups: &[&str]) -> String {
    let clean = |s: &str| {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect::<String>()
    };
    let mut stem = format!("users/{}", clean(user));
    for g in groups {
        stem.push('+');
        stem.push_str(&clean(g));
    }
    stem
}

impl TestPki {
    /// `navarch-pki init` for a cluster on loopback.
    pub fn new() -> TestPki {
        let dir = tempfile::Builder::new().prefix("navarch-pki-").tempdir().expect("temp dir");
        let pki = ClusterPki::new(dir.path().join("pki"));
        let loopback: IpAddr = "127.0.0.1".parse().expect("an address");
        pki.init(&InitOptions {
            api_server_ips: vec![loopback],
            api_server_names: vec!["localhost".into()],
            etcd_ips: vec![loopback],
            etcd_names: vec!["localhost".into()],
            ..InitOptions::default()
        })
        .expect("creating the test PKI");
        TestPki { dir, pki, issuing: Mutex::new(()) }
    }

    /// The PKI directory.
    pub fn cluster(&self) -> &ClusterPki {
        &self.pki
    }

    /// A file of the PKI directory (`ca.crt`, `etcd/server.key`, ...).
    pub fn path(&self, relative: &str) -> PathBuf {
        self.pki.path(relative)
    }

    /// `<stem>.crt` and `<stem>.key`.
    pub fn pair(&self, stem: &str) -> (PathBuf, PathBuf) {
        self.pki.pair(stem)
    }

    /// The cluster CA's certificate (PEM).
    pub fn ca_pem(&self) -> Vec<u8> {
        read(&self.pki.ca_cert())
    }

    /// The certificate and key (PEM) of `<stem>`.
    pub fn identity_pem(&self, stem: &str) -> (Vec<u8>, Vec<u8>) {
        let (crt, key) = self.pair(stem);
        (read(&crt), read(&key))
    }

    /// Issues (once) a client certificate for `user` in `groups`; returns its stem.
    pub fn user(&self, user: &str, groups: &[&str]) -> String {
        let stem = stem_of(user, groups);
        let _guard = self.issuing.lock().unwrap_or_else(|p| p.into_inner());
        self.pki
            .user(&stem, user, groups)
            .unwrap_or_else(|e| panic!("issuing a certificate for {user}: {e}"));
        stem
    }

    /// The certificates of node `name` (client: `system:node:<name>`; serving: its name and `ips`).
    pub fn node(&self, name: &str, ips: &[IpAddr]) -> NodeCerts {
        let _guard = self.issuing.lock().unwrap_or_else(|p| p.into_inner());
        self.pki.node(name, ips).unwrap_or_else(|e| panic!("issuing node {name}'s certificates: {e}")).0
    }

    /// A kubeconfig (inline data) for the identity `<stem>` against `server` (`https://...`).
    pub fn kubeconfig(&self, stem: &str, server: &str) -> String {
        let (cert, key) = self.identity_pem(stem);
        navarch_pki::cluster::kubeconfig("navarch", server, &self.ca_pem(), &cert, &key, "default")
    }

    /// The admin's kubeconfig (`kubernetes-admin` in `navarch:cluster-admins`).
    pub fn admin_kubeconfig(&self, server: &str) -> String {
        self.kubeconfig("admin", server)
    }

    /// A kubeconfig for `user` in `groups` (the certificate is issued on first use).
    pub fn user_kubeconfig(&self, user: &str, groups: &[&str], server: &str) -> String {
        let stem = self.user(user, groups);
        self.kubeconfig(&stem, server)
    }

    /// Writes [`TestPki::kubeconfig`] of `<stem>` to a file of this directory; returns its path.
    pub fn kubeconfig_file(&self, stem: &str, server: &str) -> PathBuf {
        self.write_kubeconfig(stem, &self.kubeconfig(stem, server))
    }

    /// Writes a kubeconfig text to `kubeconfigs/<name>` in this directory; returns its path.
    pub fn write_kubeconfig(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join("kubeconfigs").join(format!("{}.yaml", name.replace('/', "_")));
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("creating the kubeconfig directory");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// The connection of the identity `<stem>` to `server` (`https://...`).
    pub fn connection(&self, stem: &str, server: &str) -> navarch_client::Connection {
        navarch_client::Connection {
            server: server.to_string(),
            ca_pem: self.ca_pem(),
            identity: Some(self.identity_pem(stem)),
            token: None,
        }
    }

    /// A blocking-client TLS configuration (rustls) presenting `<stem>`'s certificate (none when
    /// `stem` is `None`) and trusting the cluster CA.
    pub fn rustls_config(&self, stem: Option<&str>, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let identity = stem.map(|s| self.identity_pem(s));
        let config = navarch_pki::tls::client_config(
            &self.ca_pem(),
            identity.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
            alpn,
        )
        .expect("a TLS client configuration");
        Arc::new(config)
    }

    /// A gRPC channel to `url` (`https://host:port`, a server certificate of the cluster CA) as
    /// `<stem>`: for raw `ApiServerClient`s (as `admin`) and `KubeletClient`s (as the api-server,
    /// `apiserver-kubelet-client`).
    pub async fn grpc_channel(&self, stem: &str, url: &str) -> Channel {
        let (cert, key) = self.identity_pem(stem);
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(self.ca_pem()))
            .identity(Identity::from_pem(cert, key));
        Endpoint::from_shared(url.to_string())
            .and_then(|e| e.tls_config(tls))
            .unwrap_or_else(|e| panic!("a TLS endpoint for {url}: {e}"))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connecting to {url} as {stem}: {e:?}"))
    }

    /// etcd's client TLS (the api-server's etcd client certificate, etcd's CA).
    pub fn etcd_tls(&self) -> etcd_client::TlsOptions {
        let (cert, key) = self.identity_pem("apiserver-etcd-client");
        etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(read(&self.pki.etcd_ca_cert())))
            .identity(etcd_client::Identity::from_pem(cert, key))
    }
}
