//! [`TestEnv`]: what most integration tests start with, an [`Etcd`] and an [`ApiServer`] on it, plus a
//! client and `navctl` pointed at that api-server.

use std::net::SocketAddr;
use std::process::Stdio;

use crate::process::binary;
use crate::{ApiServer, Etcd};

/// etcd + api-server.
pub struct TestEnv {
    pub api_server: ApiServer,
    pub etcd: Etcd,
}

impl TestEnv {
    pub async fn start() -> TestEnv {
        TestEnv::start_with(&[]).await
    }

    /// Starts with extra api-server flags.
    pub async fn start_with(args: &[&str]) -> TestEnv {
        let etcd = Etcd::start().await;
        let api_server = ApiServer::start_with(&etcd, args).await;
        TestEnv { api_server, etcd }
    }

    pub fn api_server_addr(&self) -> SocketAddr {
        self.api_server.addr()
    }

    pub async fn client(&self) -> navarch_client::Client {
        navarch_client::Client::connect(&self.api_server.addr().to_string())
            .await
            .expect("connecting to the api-server")
    }

    /// Runs the `navctl` binary against this api-server (`--server`, then `args`, stdin empty) without
    /// blocking the test's runtime; returns (exit code, stdout, stderr).
    pub async fn navctl(&self, args: &[&str]) -> (i32, String, String) {
        let out = tokio::process::Command::new(binary("ctl", "navctl"))
            .arg(format!("--server={}", self.api_server_addr()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("running navctl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }
}
