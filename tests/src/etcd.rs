//! [`Etcd`]: the real `etcd` binary on free loopback ports with its data in a temporary directory;
//! SIGKILLed on drop. It can be killed and restarted on the same ports and data, and compacted to
//! force watch expiry.
//!
//! As in a real cluster it serves TLS only, and only to clients with a certificate of etcd's CA (peer
//! traffic too): it makes the cluster's [`TestPki`], which the api-server started on it shares.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use tempfile::TempDir;

use crate::TestPki;
use crate::process::{ChildProcess, free_port, log_to};

/// A real etcd on loopback.
pub struct Etcd {
    process: ChildProcess,
    dir: TempDir,
    client_port: u16,
    peer_port: u16,
    pki: Arc<TestPki>,
}

impl Etcd {
    /// etcd with a new cluster PKI.
    pub async fn start() -> Etcd {
        Etcd::start_with_pki(Arc::new(TestPki::new())).await
    }

    /// etcd with the certificates of `pki` (the api-server started on it uses the same).
    pub async fn start_with_pki(pki: Arc<TestPki>) -> Etcd {
        let dir = tempfile::Builder::new().prefix("navarch-etcd-").tempdir().expect("temp dir");
        let mut etcd = Etcd {
            process: ChildProcess::default(),
            dir,
            client_port: free_port(),
            peer_port: free_port(),
            pki,
        };
        etcd.spawn().await;
        etcd
    }

    /// The cluster's PKI.
    pub fn pki(&self) -> &Arc<TestPki> {
        &self.pki
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    async fn spawn(&mut self) {
        let client = format!("https://127.0.0.1:{}", self.client_port);
        let peer = format!("https://127.0.0.1:{}", self.peer_port);
        let log = self.log_path();
        let file = |rel: &str| self.pki.path(rel).display().to_string();
        let child = log_to(
            Command::new("etcd")
                .arg("--name=test")
                .arg(format!("--data-dir={}", self.dir.path().join("data").display()))
                .arg(format!("--listen-client-urls={client}"))
                .arg(format!("--advertise-client-urls={client}"))
                .arg(format!("--listen-peer-urls={peer}"))
                .arg(format!("--initial-advertise-peer-urls={peer}"))
                .arg(format!("--initial-cluster=test={peer}"))
                .arg(format!("--cert-file={}", file("etcd/server.crt")))
                .arg(format!("--key-file={}", file("etcd/server.key")))
                .arg("--client-cert-auth")
                .arg(format!("--trusted-ca-file={}", file("etcd/ca.crt")))
                .arg(format!("--peer-cert-file={}", file("etcd/peer.crt")))
                .arg(format!("--peer-key-file={}", file("etcd/peer.key")))
                .arg("--peer-client-cert-auth")
                .arg(format!("--peer-trusted-ca-file={}", file("etcd/ca.crt")))
                .arg("--log-level=warn")
                .stdin(Stdio::null()),
            &log,
        )
        .spawn()
        .expect("starting etcd (apt install etcd-server)");
        self.process.set(child);
        let endpoint = self.endpoint();
        let options = self.connect_options();
        self.process
            .wait_started("etcd", &log, 30, async || {
                let Ok(mut c) = etcd_client::Client::connect([&endpoint], Some(options.clone())).await else {
                    return false;
                };
                c.status().await.is_ok()
            })
            .await;
    }

    /// `https://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.client_port)
    }

    /// TLS as the api-server's etcd client (`apiserver-etcd-client`, etcd's CA).
    pub fn connect_options(&self) -> etcd_client::ConnectOptions {
        etcd_client::ConnectOptions::new().with_tls(self.pki.etcd_tls())
    }

    pub async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect([self.endpoint()], Some(self.connect_options()))
            .await
            .expect("connecting to test etcd")
    }

    /// Compacts etcd's history up to its current revision; returns that revision.
    pub async fn compact(&self) -> i64 {
        let mut c = self.client().await;
        let rev = c
            .get("\0", Some(etcd_client::GetOptions::new().with_count_only()))
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        c.compact(rev, Some(etcd_client::CompactionOptions::new().with_physical()))
            .await
            .expect("compaction");
        rev
    }

    /// SIGKILLs etcd (data stays).
    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// Starts etcd again on the same ports with the same data.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }
}
