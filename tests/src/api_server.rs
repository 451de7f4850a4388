//! [`ApiServer`]: the built `api-server` binary against an [`Etcd`], on free loopback ports, ready
//! once `/readyz` answers 200; SIGKILLed on drop. Crash safety is tested with
//! [`ApiServer::kill9`] / [`ApiServer::restart`] (same ports); the log goes to a file whose tail is
//! printed if startup fails.
//!
//! It runs as in a real cluster: its port is TLS only (the certificates of the etcd's [`TestPki`]),
//! clients are authenticated by certificates of the cluster CA, it reaches etcd over TLS with its
//! etcd client certificate and kubelets with its kubelet client certificate. The admin port
//! (`/readyz`, `/metrics`) stays plain HTTP. The ServiceAccount admission plugin is off unless the test
//! passes `--disable-admission-plugins` itself (`--disable-admission-plugins=` turns it on).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use tempfile::TempDir;

use crate::http::{Rest, http_get};
use crate::process::{ChildProcess, binary, free_port, log_to};
use crate::{Etcd, TestPki};

/// The real api-server binary.
pub struct ApiServer {
    process: ChildProcess,
    dir: TempDir,
    port: u16,
    http_port: u16,
    etcd_endpoint: String,
    extra_args: Vec<String>,
    pki: Arc<TestPki>,
}

impl ApiServer {
    pub async fn start(etcd: &Etcd) -> ApiServer {
        ApiServer::start_with(etcd, &[]).await
    }

    /// Starts with extra flags (e.g. `--bookmark-interval=1s`).
    pub async fn start_with(etcd: &Etcd, args: &[&str]) -> ApiServer {
        let dir = tempfile::Builder::new().prefix("navarch-apiserver-").tempdir().expect("temp dir");
        let mut s = ApiServer {
            process: ChildProcess::default(),
            dir,
            port: free_port(),
            http_port: free_port(),
            etcd_endpoint: etcd.endpoint(),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            pki: etcd.pki().clone(),
        };
        s.spawn().await;
        s
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("api-server.log")
    }

    /// The api-server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    async fn spawn(&mut self) {
        let bin = binary("api-server", "api-server");
        let log = self.log_path();
        let file = |rel: &str| self.pki.path(rel).display().to_string();
        let child = log_to(
            Command::new(bin)
                .arg(format!("--listen=127.0.0.1:{}", self.port))
                .arg(format!("--http-listen=127.0.0.1:{}", self.http_port))
                .arg(format!("--etcd-endpoints={}", self.etcd_endpoint))
                .arg(format!("--tls-cert-file={}", file("apiserver.crt")))
                .arg(format!("--tls-private-key-file={}", file("apiserver.key")))
                .arg(format!("--client-ca-file={}", file("ca.crt")))
                .arg(format!("--etcd-cafile={}", file("etcd/ca.crt")))
                .arg(format!("--etcd-certfile={}", file("apiserver-etcd-client.crt")))
                .arg(format!("--etcd-keyfile={}", file("apiserver-etcd-client.key")))
                .arg(format!("--kubelet-certificate-authority={}", file("ca.crt")))
                .arg(format!("--kubelet-client-certificate={}", file("apiserver-kubelet-client.crt")))
                .arg(format!("--kubelet-client-key={}", file("apiserver-kubelet-client.key")))
                // No controller-manager makes the `default` ServiceAccount and `kube-root-ca.crt` here:
                // pods get no token volume unless a test names the admission plugins itself (as in
                // Kubernetes' integration tests).
                .args(
                    (!self.extra_args.iter().any(|a| a.starts_with("--disable-admission-plugins")))
                        .then_some("--disable-admission-plugins=ServiceAccount"),
                )
                // Resource metrics every 2 s, so tests with kubelets see usage soon.
                .args(
                    (!self.extra_args.iter().any(|a| a.starts_with("--metric-resolution")))
                        .then_some("--metric-resolution=2s"),
                )
                .args(&self.extra_args)
                .env("RUST_LOG", std::env::var("NAVARCH_TEST_LOG").unwrap_or_else(|_| "info".into()))
                .env_remove("NAVARCH_APISERVER_CONFIG")
                .stdin(Stdio::null()),
            &log,
        )
        .spawn()
        .expect("starting api-server");
        self.process.set(child);
        let http = self.http_addr();
        self.process
            .wait_started("api-server", &log, 40, async || {
                http_get(http, "/readyz").is_some_and(|(code, _)| code == 200)
            })
            .await;
    }

    /// Its TLS port (gRPC and REST).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr())
    }

    /// The cluster's PKI (the etcd's).
    pub fn pki(&self) -> &Arc<TestPki> {
        &self.pki
    }

    /// The connection of the identity `<stem>` of the PKI (`admin`, `scheduler`, a user's stem).
    pub fn connection(&self, stem: &str) -> navarch_client::Connection {
        self.pki.connection(stem, &self.url())
    }

    /// A kubeconfig file for `<stem>` against this api-server.
    pub fn kubeconfig_file(&self, stem: &str) -> PathBuf {
        let text = self.pki.kubeconfig(stem, &self.url());
        self.pki.write_kubeconfig(&format!("{stem}-{}", self.port), &text)
    }

    /// Raw REST requests as `<stem>`.
    pub fn rest(&self, stem: &str) -> Rest {
        Rest::new(self.addr(), self.pki.rustls_config(Some(stem), &[b"http/1.1"]))
    }

    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http_port))
    }

    /// The pid of the running process.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// SIGKILLs the api-server.
    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        self.process.terminate()
    }

    /// Starts it again on the same ports (after [`ApiServer::kill9`], or kills it first).
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }
}
