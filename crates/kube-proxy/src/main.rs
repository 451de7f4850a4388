//! `kube-proxy`: resolve config (flag > env > file > default), init tracing, keep the node's
//! Service rules in sync until SIGTERM (or remove them with `--cleanup`).

use anyhow::Context;
use clap::Parser;
use navarch_kube_proxy::config::{Args, Config};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::resolve(Args::parse()).context("configuration")?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let shutdown = CancellationToken::new();
    tokio::spawn(navarch_client::cancel_on_signal(shutdown.clone()));
    navarch_kube_proxy::run::run(config, shutdown).await
}
