//! [`Etcd`]: the real `etcd` binary on free loopback ports with its data in a temporary directory;
//! SIGKILLed on drop. It can be killed and restarted on the same ports and data, and compacted to
//! force watch expiry.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::process::{ChildProcess, free_port, log_to};

/// A real etcd on loopback.
pub struct Etcd {
    process: ChildProcess,
    dir: TempDir,
    client_port: u16,
    peer_port: u16,
}

impl Etcd {
    pub async fn start() -> Etcd {
        let dir = tempfile::Builder::new().prefix("navarch-etcd-").tempdir().expect("temp dir");
        let mut etcd =
            Etcd { process: ChildProcess::default(), dir, client_port: free_port(), peer_port: free_port() };
        etcd.spawn().await;
        etcd
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    async fn spawn(&mut self) {
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = self.log_path();
        let child = log_to(
            Command::new("etcd")
                .arg("--name=test")
                .arg(format!("--data-dir={}", self.dir.path().join("data").display()))
                .arg(format!("--listen-client-urls={client}"))
                .arg(format!("--advertise-client-urls={client}"))
                .arg(format!("--listen-peer-urls={peer}"))
                .arg(format!("--initial-advertise-peer-urls={peer}"))
                .arg(format!("--initial-cluster=test={peer}"))
                .arg("--log-level=warn")
                .stdin(Stdio::null()),
            &log,
        )
        .spawn()
        .expect("starting etcd (apt install etcd-server)");
        self.process.set(child);
        let endpoint = self.endpoint();
        self.process
            .wait_started("etcd", &log, 30, async || {
                let Ok(mut c) = etcd_client::Client::connect([&endpoint], None).await else { return false };
                c.status().await.is_ok()
            })
            .await;
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    pub async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect([self.endpoint()], None).await.expect("connecting to test etcd")
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
