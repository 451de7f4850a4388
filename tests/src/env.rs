//! [`TestEnv`]: what most integration tests start with, an [`Etcd`] and an [`ApiServer`] on it, plus a
//! client, raw REST requests and `navctl` pointed at that api-server, all with the credentials of the
//! cluster's [`TestPki`] (the admin's unless said otherwise).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use crate::http::Rest;
use crate::process::binary;
use crate::{ApiServer, Etcd, TestPki};

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

    /// `https://127.0.0.1:<port>`.
    pub fn api_server_url(&self) -> String {
        self.api_server.url()
    }

    /// The cluster's PKI.
    pub fn pki(&self) -> &Arc<TestPki> {
        self.api_server.pki()
    }

    /// A client connected as the admin (`kubernetes-admin`, group `navarch:cluster-admins`).
    pub async fn client(&self) -> navarch_client::Client {
        self.client_as("admin").await
    }

    /// A client connected as the identity `<stem>` of the PKI (a component, or a stem from
    /// [`TestPki::user`]).
    pub async fn client_as(&self, stem: &str) -> navarch_client::Client {
        navarch_client::Client::connect(&self.api_server.connection(stem))
            .await
            .expect("connecting to the api-server")
    }

    /// The admin's kubeconfig file.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.api_server.kubeconfig_file("admin")
    }

    /// Raw REST requests as the admin.
    pub fn rest(&self) -> Rest {
        self.rest_as("admin")
    }

    /// Raw REST requests as the identity `<stem>`.
    pub fn rest_as(&self, stem: &str) -> Rest {
        self.api_server.rest(stem)
    }

    /// A raw gRPC channel to the api-server as the admin (for `ApiServerClient`).
    pub async fn grpc_channel(&self) -> tonic::transport::Channel {
        self.pki().grpc_channel("admin", &self.api_server_url()).await
    }

    /// Runs the `navctl` binary against this api-server as the admin (`--kubeconfig`, then `args`,
    /// stdin empty) without blocking the test's runtime; returns (exit code, stdout, stderr).
    pub async fn navctl(&self, args: &[&str]) -> (i32, String, String) {
        let out = tokio::process::Command::new(binary("ctl", "navctl"))
            .arg(format!("--kubeconfig={}", self.admin_kubeconfig().display()))
            .args(args)
            .env_remove("NAVCTL_SERVER")
            .env_remove("NAVCTL_CONFIG")
            .env_remove("NAVCTL_KUBECONFIG")
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
