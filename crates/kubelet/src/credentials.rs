//! The kubelet's credentials. Its client certificate (`system:node:<name>` in `system:nodes`) is
//! either in `--kubeconfig` already or, with `--bootstrap-kubeconfig`, asked for with a join token
//! before anything else starts ([`ensure_client`]). Its serving certificate for the kubelet API (SANs:
//! the node's name and InternalIP) is `--tls-cert-file`, or asked for by the node itself once its Node
//! is registered (signer `kubernetes.io/kubelet-serving`, approved by the controller-manager when the
//! names are the node's) and kept in `--cert-dir` while it is valid for more than a day
//! ([`serving_identity`]). Certificates are checked at start, not rotated while running.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use navarch_client::bootstrap::{CertificateAsk, ensure_kubeconfig, request_certificate, still_good};
use navarch_client::{Client, Connection};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// How long the kubelet waits for a certificate before giving up (and exiting, to be restarted).
const WAIT: Duration = Duration::from_secs(600);

/// Waits for `work` unless shutdown comes first.
async fn until_shutdown<T>(
    shutdown: &CancellationToken,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        r = work => r,
        _ = shutdown.cancelled() => anyhow::bail!("shut down while waiting for a certificate"),
    }
}

/// With `bootstrap_kubeconfig`: makes sure `kubeconfig` holds this node's client certificate, asking
/// for one with the join token if it does not.
pub async fn ensure_client(cfg: &Config, shutdown: &CancellationToken) -> anyhow::Result<()> {
    let (Some(bootstrap), Some(kubeconfig)) = (&cfg.bootstrap_kubeconfig, &cfg.kubeconfig) else {
        return Ok(());
    };
    let ask = CertificateAsk::node_client(&cfg.node_name);
    let asked = until_shutdown(shutdown, async {
        ensure_kubeconfig(kubeconfig, bootstrap, &cfg.server, &ask, WAIT)
            .await
            .with_context(|| format!("bootstrapping the client certificate with {}", bootstrap.display()))
    })
    .await?;
    if asked {
        tracing::info!(node = %cfg.node_name, "joined with the bootstrap token: client certificate issued");
    }
    Ok(())
}

/// The kubelet API's serving certificate and key (PEM): the configured files, else the one kept in
/// `cert_dir` if still good, else a new one asked for as the node (`client`).
pub async fn serving_identity(
    cfg: &Config,
    client: &Client,
    ca_pem: &[u8],
    shutdown: &CancellationToken,
) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    if let (Some(cert), Some(key)) = (&cfg.tls_cert_file, &cfg.tls_private_key_file) {
        let read = |p: &PathBuf, what: &str| {
            std::fs::read(p).with_context(|| format!("{what}: reading {}", p.display()))
        };
        return Ok((read(cert, "tls_cert_file")?, read(key, "tls_private_key_file")?));
    }
    let ip = cfg.node_ip.parse().with_context(|| format!("node_ip {:?}: not an IP address", cfg.node_ip))?;
    let ask = CertificateAsk::node_serving(&cfg.node_name, ip);
    let dir = cfg.cert_dir();
    let (cert_path, key_path) = (dir.join("kubelet-server.crt"), dir.join("kubelet-server.key"));
    if let (Ok(cert), Ok(key)) = (std::fs::read(&cert_path), std::fs::read(&key_path))
        && still_good(ca_pem, &cert, &ask.leaf)
    {
        return Ok((cert, key));
    }
    let issued = until_shutdown(shutdown, async {
        request_certificate(client, &ask, WAIT).await.context("asking for the kubelet's serving certificate")
    })
    .await?;
    navarch_pki::files::write(&key_path, issued.key_pem.as_bytes(), true)?;
    navarch_pki::files::write(&cert_path, issued.cert_pem.as_bytes(), false)?;
    tracing::info!(cert = %cert_path.display(), "serving certificate issued");
    Ok((issued.cert_pem.into_bytes(), issued.key_pem.into_bytes()))
}

/// The CA bundle the kubelet API's client certificates must chain to.
pub fn client_ca(cfg: &Config, connection: &Connection) -> anyhow::Result<Vec<u8>> {
    match &cfg.client_ca_file {
        Some(p) => std::fs::read(p).with_context(|| format!("client_ca_file: reading {}", p.display())),
        None => Ok(connection.ca_pem.clone()),
    }
}

/// The kubelet API's TLS: its serving certificate, and client certificates of `client_ca` accepted
/// but not required (a bearer token, checked by the api-server, is the other way in).
pub fn api_tls(identity: (Vec<u8>, Vec<u8>), client_ca: Vec<u8>) -> tonic::transport::ServerTlsConfig {
    tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(identity.0, identity.1))
        .client_ca_root(tonic::transport::Certificate::from_pem(client_ca))
        .client_auth_optional(true)
}
