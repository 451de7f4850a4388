//! A cluster's PKI directory, as kubeadm's `/etc/kubernetes/pki` (the names below are relative to it):
//!
//! ```text
//! ca.crt ca.key                        the cluster CA: every component's client and serving certificate
//! etcd/ca.crt etcd/ca.key              etcd's own CA: only etcd and the api-server's etcd client
//! etcd/server.{crt,key} etcd/peer.{crt,key}
//! apiserver.{crt,key}                  serving: its addresses, the kubernetes Service's IP and names, localhost
//! apiserver-etcd-client.{crt,key}      CN kube-apiserver-etcd-client (etcd CA)
//! apiserver-kubelet-client.{crt,key}   CN kube-apiserver-kubelet-client (bound to system:kubelet-api-admin)
//! sa.key sa.pub                        ServiceAccount token signing key (ES256) and its public key
//! encryption-config.yaml               EncryptionConfiguration: Secrets encrypted with aescbc
//! <component>.{crt,key}                scheduler, controller-manager, kube-proxy, cluster-dns, admin
//! nodes/<node>/kubelet-client.{crt,key}   CN system:node:<node>, O system:nodes
//! nodes/<node>/kubelet-serving.{crt,key}  the kubelet's API: its name and InternalIP
//! ```
//!
//! Every operation is idempotent: a file that exists and is still right (same CA, subject, names, and
//! valid for 30 more days) is kept; keys of kept certificates are never rewritten.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::KeyPair;

use crate::authority::{Authority, CA_VALIDITY, Leaf, LeafKind};
use crate::{PkiError, Result, files};

/// A client identity of a component: file stem, user (CN) and groups (O).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ComponentIdentity {
    pub file: &'static str,
    pub user: &'static str,
    pub groups: &'static [&'static str],
}

/// The group of navarch's admin certificate, bound to `cluster-admin` (not `system:masters`, which no
/// RBAC change can take away).
pub const ADMINS_GROUP: &str = "navarch:cluster-admins";

/// Every component's client identity, as Kubernetes names them.
pub const COMPONENTS: &[ComponentIdentity] = &[
    ComponentIdentity { file: "scheduler", user: "system:kube-scheduler", groups: &[] },
    ComponentIdentity { file: "controller-manager", user: "system:kube-controller-manager", groups: &[] },
    ComponentIdentity { file: "kube-proxy", user: "system:kube-proxy", groups: &[] },
    ComponentIdentity { file: "cluster-dns", user: "system:navarch:cluster-dns", groups: &[] },
    ComponentIdentity { file: "admin", user: "kubernetes-admin", groups: &[ADMINS_GROUP] },
];

pub const API_SERVER_KUBELET_CLIENT: &str = "kube-apiserver-kubelet-client";
pub const API_SERVER_ETCD_CLIENT: &str = "kube-apiserver-etcd-client";

/// What `init` needs to know about the cluster.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Addresses and names clients reach the api-server at (besides the defaults: localhost,
    /// 127.0.0.1, the `kubernetes` Service's IP and DNS names).
    pub api_server_names: Vec<String>,
    pub api_server_ips: Vec<IpAddr>,
    /// Addresses and names of the etcd server (besides localhost and 127.0.0.1).
    pub etcd_names: Vec<String>,
    pub etcd_ips: Vec<IpAddr>,
    /// The first address of the Service range: the `kubernetes` Service.
    pub kubernetes_service_ip: IpAddr,
    pub cluster_domain: String,
}

impl Default for InitOptions {
    fn default() -> InitOptions {
        InitOptions {
            api_server_names: Vec::new(),
            api_server_ips: Vec::new(),
            etcd_names: Vec::new(),
            etcd_ips: Vec::new(),
            kubernetes_service_ip: IpAddr::V4(Ipv4Addr::new(10, 96, 0, 1)),
            cluster_domain: "cluster.local".into(),
        }
    }
}

/// A node's certificate files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCerts {
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
}

/// The cluster PKI directory.
#[derive(Clone, Debug)]
pub struct ClusterPki {
    dir: PathBuf,
}

fn dedup<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn localhost() -> Vec<IpAddr> {
    vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
}

impl ClusterPki {
    pub fn new(dir: impl Into<PathBuf>) -> ClusterPki {
        ClusterPki { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.path("ca.crt")
    }

    pub fn etcd_ca_cert(&self) -> PathBuf {
        self.path("etcd/ca.crt")
    }

    /// `<stem>.crt` and `<stem>.key`.
    pub fn pair(&self, stem: &str) -> (PathBuf, PathBuf) {
        (self.path(&format!("{stem}.crt")), self.path(&format!("{stem}.key")))
    }

    fn authority(&self, stem: &str, common_name: &str, created: &mut Vec<String>) -> Result<Authority> {
        let (crt, key) = self.pair(stem);
        if crt.exists() || key.exists() {
            return Authority::load(&crt, &key);
        }
        let ca = Authority::generate(common_name, CA_VALIDITY)?;
        ca.write(&crt, &key)?;
        created.push(format!("{stem}.crt"));
        Ok(ca)
    }

    /// The cluster CA (to issue with).
    pub fn cluster_ca(&self) -> Result<Authority> {
        let (crt, key) = self.pair("ca");
        Authority::load(&crt, &key)
    }

    fn ensure(&self, ca: &Authority, leaf: &Leaf, stem: &str, created: &mut Vec<String>) -> Result<()> {
        let (crt, key) = self.pair(stem);
        if ca.ensure(leaf, &crt, &key)? {
            created.push(format!("{stem}.crt"));
        }
        Ok(())
    }

    /// Creates whatever is missing or no longer right of the control plane's files; returns the files
    /// it wrote (relative names).
    pub fn init(&self, opts: &InitOptions) -> Result<Vec<String>> {
        let mut created = Vec::new();
        let ca = self.authority("ca", "navarch-ca", &mut created)?;
        let etcd_ca = self.authority("etcd/ca", "navarch-etcd-ca", &mut created)?;

        let domain = opts.cluster_domain.trim_end_matches('.');
        let api_names = dedup(
            opts.api_server_names
                .iter()
                .cloned()
                .chain(
                    ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
                        .map(String::from),
                )
                .chain([format!("kubernetes.default.svc.{domain}")]),
        );
        let api_ips =
            dedup(opts.api_server_ips.iter().copied().chain(localhost()).chain([opts.kubernetes_service_ip]));
        self.ensure(&ca, &Leaf::server("kube-apiserver", &api_names, &api_ips), "apiserver", &mut created)?;
        self.ensure(
            &ca,
            &Leaf::client(API_SERVER_KUBELET_CLIENT, &[]),
            "apiserver-kubelet-client",
            &mut created,
        )?;
        self.ensure(
            &etcd_ca,
            &Leaf::client(API_SERVER_ETCD_CLIENT, &[]),
            "apiserver-etcd-client",
            &mut created,
        )?;

        let etcd_names = dedup(opts.etcd_names.iter().cloned().chain(["localhost".to_string()]));
        let etcd_ips = dedup(opts.etcd_ips.iter().copied().chain(localhost()));
        let etcd_server = Leaf::server("navarch-etcd", &etcd_names, &etcd_ips);
        self.ensure(&etcd_ca, &etcd_server, "etcd/server", &mut created)?;
        let etcd_peer = Leaf { kind: LeafKind::ServerAndClient, ..etcd_server };
        self.ensure(&etcd_ca, &etcd_peer, "etcd/peer", &mut created)?;

        for c in COMPONENTS {
            self.ensure(&ca, &Leaf::client(c.user, c.groups), c.file, &mut created)?;
        }
        self.service_account_keys(&mut created)?;
        self.encryption_config(&mut created)?;
        Ok(created)
    }

    fn service_account_keys(&self, created: &mut Vec<String>) -> Result<()> {
        let (key_path, pub_path) = (self.path("sa.key"), self.path("sa.pub"));
        if key_path.exists() && pub_path.exists() {
            return Ok(());
        }
        let key = if key_path.exists() {
            let pem = String::from_utf8(files::read(&key_path)?)
                .map_err(|_| PkiError::Invalid { path: key_path.clone(), reason: "not PEM text".into() })?;
            KeyPair::from_pem(&pem)
                .map_err(|e| PkiError::Invalid { path: key_path.clone(), reason: e.to_string() })?
        } else {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(|source| PkiError::Generate { what: "the service-account key".into(), source })?;
            files::write(&key_path, key.serialize_pem().as_bytes(), true)?;
            created.push("sa.key".into());
            key
        };
        files::write(&pub_path, key.public_key_pem().as_bytes(), false)?;
        created.push("sa.pub".into());
        Ok(())
    }

    fn encryption_config(&self, created: &mut Vec<String>) -> Result<()> {
        let path = self.path("encryption-config.yaml");
        if path.exists() {
            return Ok(());
        }
        let secret = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        let config = format!(
            "# Secrets are encrypted at rest with aescbc (key1); values written before encryption was\n\
             # enabled are still read (identity). Rotation: see the README.\n\
             apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n\
             - resources:\n  - secrets\n  providers:\n  - aescbc:\n      keys:\n      - name: key1\n        \
             secret: {secret}\n  - identity: {{}}\n"
        );
        files::write(&path, config.as_bytes(), true)?;
        created.push("encryption-config.yaml".into());
        Ok(())
    }

    /// The kubelet certificates of node `name`: a client certificate (`system:node:<name>` in
    /// `system:nodes`) and a serving certificate for its name and addresses.
    pub fn node(&self, name: &str, ips: &[IpAddr]) -> Result<(NodeCerts, Vec<String>)> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(PkiError::Invalid {
                path: self.path("nodes"),
                reason: format!("invalid node name {name:?}"),
            });
        }
        let ca = self.cluster_ca()?;
        let mut created = Vec::new();
        let user = format!("system:node:{name}");
        let client = Leaf::client(&user, &["system:nodes"]);
        self.ensure(&ca, &client, &format!("nodes/{name}/kubelet-client"), &mut created)?;
        let mut serving = Leaf::server(&user, &[name.to_string()], ips);
        serving.organizations = vec!["system:nodes".into()];
        self.ensure(&ca, &serving, &format!("nodes/{name}/kubelet-serving"), &mut created)?;
        let (client_cert, client_key) = self.pair(&format!("nodes/{name}/kubelet-client"));
        let (serving_cert, serving_key) = self.pair(&format!("nodes/{name}/kubelet-serving"));
        Ok((NodeCerts { client_cert, client_key, serving_cert, serving_key }, created))
    }

    /// A client certificate for a user (CN) in groups (O), at `<stem>.crt`/`.key` of the directory.
    pub fn user(&self, stem: &str, user: &str, groups: &[&str]) -> Result<bool> {
        let ca = self.cluster_ca()?;
        let (crt, key) = self.pair(stem);
        ca.ensure(&Leaf::client(user, groups), &crt, &key)
    }
}

/// A kubeconfig with everything inline (`certificate-authority-data`, `client-certificate-data`,
/// `client-key-data`), one cluster, user and context named `name`.
pub fn kubeconfig(
    name: &str,
    server: &str,
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
    namespace: &str,
) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {server}\n    \
         certificate-authority-data: {}\nusers:\n- name: {name}\n  user:\n    client-certificate-data: {}\n    \
         client-key-data: {}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n    \
         namespace: {namespace}\ncurrent-context: {name}\npreferences: {{}}\n",
        b64(ca_pem),
        b64(cert_pem),
        b64(key_pem),
    )
}

/// A kubeconfig that authenticates with a bearer `token` (a join token's bootstrap kubeconfig).
pub fn token_kubeconfig(name: &str, server: &str, ca_pem: &[u8], token: &str) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {server}\n    \
         certificate-authority-data: {}\nusers:\n- name: {name}\n  user:\n    token: {token}\ncontexts:\n- name: {name}\n  \
         context:\n    cluster: {name}\n    user: {name}\ncurrent-context: {name}\npreferences: {{}}\n",
        b64(ca_pem),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ClusterPki::new(dir.path());
        let opts =
            InitOptions { api_server_ips: vec!["10.250.0.1".parse().unwrap()], ..InitOptions::default() };
        let first = pki.init(&opts).unwrap();
        for f in [
            "ca.crt",
            "etcd/ca.crt",
            "apiserver.crt",
            "sa.key",
            "sa.pub",
            "encryption-config.yaml",
            "admin.crt",
        ] {
            assert!(first.iter().any(|c| c == f), "{f} in {first:?}");
        }
        let sa = std::fs::read(pki.path("sa.key")).unwrap();
        assert!(pki.init(&opts).unwrap().is_empty(), "nothing to do the second time");
        assert_eq!(std::fs::read(pki.path("sa.key")).unwrap(), sa);
        let more = InitOptions { api_server_names: vec!["master".into()], ..opts };
        assert_eq!(pki.init(&more).unwrap(), ["apiserver.crt"], "a new name: only the serving cert");
        let (node, created) = pki.node("node-1", &["10.250.0.11".parse().unwrap()]).unwrap();
        assert_eq!(created.len(), 2);
        assert!(node.client_key.exists());
        assert!(pki.node("node-1", &["10.250.0.11".parse().unwrap()]).unwrap().1.is_empty());
        assert!(pki.node("../x", &[]).is_err());
        let config = kubeconfig("navarch", "https://10.250.0.1:6443", b"ca", b"c", b"k", "default");
        assert!(config.contains("certificate-authority-data: Y2E="));
    }
}
