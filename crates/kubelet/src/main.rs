//! `kubelet`: resolve config (flag > env > file > default), init tracing, run the node agent until
//! SIGTERM/SIGINT. Pods keep running when the kubelet stops; a restarted kubelet adopts them.

use anyhow::Context;
use clap::Parser;
use navarch_kubelet::config::{Args, Config};
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
    navarch_kubelet::run::run(config, shutdown).await
}
