//! `cluster-dns`: resolve config (flag > env > file > default), init tracing, serve DNS for the cluster
//! domain until SIGTERM (then leave the kube-dns Endpoints).

use anyhow::Context;
use clap::Parser;
use navarch_dns::config::{Args, Config};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::resolve(Args::parse()).context("configuration")?;
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let mut filter = tracing_subscriber::EnvFilter::try_new(&directives).unwrap_or_else(|_| "info".into());
    if !directives.contains("hickory") {
        // hickory-server logs every request at info; ours are at debug, in a span per query.
        filter = filter.add_directive("hickory_server=warn".parse().expect("a valid directive"));
    }
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let shutdown = CancellationToken::new();
    tokio::spawn(navarch_client::cancel_on_signal(shutdown.clone()));
    navarch_dns::run::run(config, shutdown).await.context("cluster-dns")
}
