//! [`Kubelet`]: the built `kubelet` binary on this machine against a [`Containerd`], an
//! [`ApiServer`] and a [`Registry`] (as the docker.io mirror), with its own node name, bridge, pod CIDR
//! and directories. On drop it is killed and the host networking it set up is removed.
//!
//! It has the node's certificates of the cluster's [`TestPki`](crate::TestPki): it connects to the
//! api-server as `system:node:<name>` and serves its API (which the api-server dials) with a serving
//! certificate for 127.0.0.1, to clients with a certificate of the cluster CA.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use tempfile::TempDir;

use crate::poll::describe;
use crate::process::{ChildProcess, binary, free_port, log_to, quietly, tail};
use crate::{ApiServer, Containerd, Registry};

/// The kubelet binary on this machine, against a [`Containerd`] and an api-server, with its own
/// bridge, pod CIDR and directories. On drop it is killed and its pinned network namespaces, bridge,
/// CNI leases, routes and nftables table are removed (pods should be deleted first by the test).
pub struct Kubelet {
    process: ChildProcess,
    dir: TempDir,
    args: Vec<String>,
    pub node_name: String,
    pub bridge: String,
    pub pod_cidr: String,
    /// Where its /healthz and /metrics answer.
    pub http_addr: SocketAddr,
}

/// Distinct pod subnets for concurrent tests in one process.
static LIVE_KUBELETS: AtomicUsize = AtomicUsize::new(0);
static NEXT_SUBNET: AtomicU32 = AtomicU32::new(0);

impl Kubelet {
    pub async fn start(api: &ApiServer, containerd: &Containerd, registry: &Registry) -> Kubelet {
        Kubelet::start_with(api, containerd, registry, &[]).await
    }

    /// A kubelet using `registry` as the docker.io mirror, with extra flags.
    pub async fn start_with(
        api: &ApiServer,
        containerd: &Containerd,
        registry: &Registry,
        extra: &[String],
    ) -> Kubelet {
        Kubelet::start_inner(api, containerd, registry, None, extra)
    }

    /// A kubelet that joins with only `bootstrap_kubeconfig` (a join token): it asks for its client and
    /// serving certificates through CertificateSigningRequests.
    pub async fn join(
        api: &ApiServer,
        containerd: &Containerd,
        registry: &Registry,
        bootstrap_kubeconfig: &std::path::Path,
    ) -> Kubelet {
        Kubelet::start_inner(api, containerd, registry, Some(bootstrap_kubeconfig), &[])
    }

    fn start_inner(
        api: &ApiServer,
        containerd: &Containerd,
        registry: &Registry,
        bootstrap_kubeconfig: Option<&std::path::Path>,
        extra: &[String],
    ) -> Kubelet {
        let dir = tempfile::Builder::new().prefix("navarch-kubelet-").tempdir().expect("temp dir");
        let n = (std::process::id() % 200) + NEXT_SUBNET.fetch_add(1, Ordering::SeqCst);
        let node_name = format!("node-{}", free_port());
        let bridge = format!("nvt{}", n % 10000);
        let pod_cidr = format!("10.244.{}.0/24", 20 + n % 230);
        let d = dir.path();
        let http_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("address");
        let credentials = match bootstrap_kubeconfig {
            Some(bootstrap) => vec![
                format!("--bootstrap-kubeconfig={}", bootstrap.display()),
                format!("--kubeconfig={}", d.join("kubelet.kubeconfig").display()),
            ],
            None => {
                let certs = api.pki().node(&node_name, &["127.0.0.1".parse().expect("an address")]);
                let kubeconfig = api.kubeconfig_file(&format!("nodes/{node_name}/kubelet-client"));
                vec![
                    format!("--kubeconfig={}", kubeconfig.display()),
                    format!("--tls-cert-file={}", certs.serving_cert.display()),
                    format!("--tls-private-key-file={}", certs.serving_key.display()),
                    format!("--client-ca-file={}", api.pki().cluster().ca_cert().display()),
                ]
            }
        };
        let args: Vec<String> = credentials
            .into_iter()
            .chain([
                format!("--node-name={node_name}"),
                "--node-ip=127.0.0.1".to_string(),
                format!("--containerd-socket={}", containerd.socket().display()),
                format!("--root-dir={}", d.join("root").display()),
                format!("--run-dir={}", d.join("run").display()),
                format!("--log-dir={}", d.join("logs").display()),
                format!("--pod-cidr={pod_cidr}"),
                format!("--bridge={bridge}"),
                format!("--registry-mirror=docker.io={}", registry.url()),
                format!("--http-listen={http_addr}"),
                format!("--grpc-listen=127.0.0.1:{}", free_port()),
                "--heartbeat=2s".into(),
            ])
            .chain(extra.iter().cloned())
            .collect();
        let mut k =
            Kubelet { process: ChildProcess::default(), dir, args, node_name, bridge, pod_cidr, http_addr };
        LIVE_KUBELETS.fetch_add(1, Ordering::SeqCst);
        k.spawn();
        k
    }

    fn spawn(&mut self) {
        let child = log_to(
            Command::new(binary("kubelet", "kubelet"))
                .args(&self.args)
                .env("RUST_LOG", "info,navarch_kubelet=debug"),
            &self.dir.path().join("kubelet.log"),
        )
        .spawn()
        .expect("starting the kubelet");
        self.process.set(child);
    }

    /// The last 60 lines of its log.
    pub fn log(&self) -> String {
        tail(&self.dir.path().join("kubelet.log"), 60)
    }

    /// `what` for [`eventually`](crate::eventually) with this kubelet's [`Kubelet::log`] after it, read
    /// only if the wait times out.
    pub fn with_log<'a>(&'a self, what: &'a str) -> impl Display + 'a {
        describe(move || format!("{what}\n--- kubelet log\n{}", self.log()))
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Pinned network namespaces the kubelet still holds.
    pub fn netns_count(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("run/netns")).map(|d| d.count()).unwrap_or(0)
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.process.kill9();
        if let Ok(entries) = std::fs::read_dir(self.dir.path().join("run/netns")) {
            for e in entries.flatten() {
                quietly("umount", &["-l", &e.path().display().to_string()]);
            }
        }
        quietly("ip", &["link", "del", &self.bridge]);
        // The unreachable routes and the egress guard are shared by the kubelets of this process:
        // the last one out removes them.
        if LIVE_KUBELETS.fetch_sub(1, Ordering::SeqCst) == 1 {
            quietly("nft", &["delete", "table", "inet", "navarch-kubelet"]);
            quietly("ip", &["route", "del", "unreachable", "10.244.0.0/16"]);
            quietly("ip", &["route", "del", "unreachable", "10.96.0.0/12"]);
        }
    }
}
