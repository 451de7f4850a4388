//! Wiring: Services and Endpoints through the client runtime (watch → store), one sync loop that
//! coalesces changes (a change arriving during a sync is handled by the next one), a resync every
//! 30 s, `/healthz` and `/metrics`. On shutdown the rules stay in place (a restarted kube-proxy
//! replaces them atomically); `--cleanup` removes them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{Endpoints, Service};
use navarch_client::{Client, Event, ObjectRef, Store, WatcherConfig};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::kernel::Tools;
use crate::metrics::{KindLabel, ProxyMetrics};
use crate::model::{ServicePort, service_ports};
use crate::nft::RuleConfig;
use crate::proxier::{Proxier, cleanup};

const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
const RESYNC: Duration = Duration::from_secs(30);

/// Every service port with its endpoints, from the stores.
pub fn all_ports(services: &Store<Service>, endpoints: &Store<Endpoints>) -> Vec<ServicePort> {
    let mut out = Vec::new();
    for s in services.state() {
        let m = s.meta();
        let eps = endpoints.get(&ObjectRef::new(&m.namespace, &m.name));
        out.extend(service_ports(&s, eps.as_deref()));
    }
    out
}

/// Keeps a store of `K` current and pokes `notify` on every change; `on_apply` sees applied objects.
fn watch_into<K: Resource>(
    tasks: &mut tokio::task::JoinSet<()>,
    client: &Client,
    notify: Arc<Notify>,
    on_apply: impl Fn(&K) + Send + 'static,
    stop: CancellationToken,
) -> Store<K> {
    let (store, writer) = navarch_client::store::<K>();
    let events = navarch_client::reflector(
        writer,
        navarch_client::watcher(client.api::<K>(""), WatcherConfig::default()),
    );
    tasks.spawn(async move {
        let mut events = std::pin::pin!(events);
        loop {
            let ev = tokio::select! {
                _ = stop.cancelled() => return,
                ev = events.next() => match ev { Some(ev) => ev, None => return },
            };
            match ev {
                Ok(Event::Apply(o)) => {
                    on_apply(&o);
                    notify.notify_one();
                }
                Ok(Event::Delete(_)) | Ok(Event::InitDone) => notify.notify_one(),
                _ => {}
            }
        }
    });
    store
}

pub async fn run(cfg: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    if cfg.cleanup {
        cleanup(&Tools).await.context("cleaning up")?;
        println!("kube-proxy: removed table ip {} and the ClusterIP routes", crate::nft::TABLE);
        return Ok(());
    }
    let client = Client::connect_lazy(&cfg.server).context("api-server address")?;
    let metrics = Arc::new(ProxyMetrics::new());
    let listener = tokio::net::TcpListener::bind(cfg.http_listen)
        .await
        .with_context(|| format!("listening on {}", cfg.http_listen))?;
    let http = tokio::spawn(crate::metrics::serve(listener, metrics.clone(), shutdown.clone()));
    tracing::info!(server = %cfg.server, node = %cfg.node_name, "kube-proxy starting (nftables)");

    let notify = Arc::new(Notify::new());
    let triggers: Arc<Mutex<Vec<SystemTime>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let services = watch_into::<Service>(&mut tasks, &client, notify.clone(), |_| {}, shutdown.clone());
    let pending = triggers.clone();
    let endpoints = watch_into::<Endpoints>(
        &mut tasks,
        &client,
        notify.clone(),
        move |e: &Endpoints| {
            if let Some(t) =
                e.meta().annotations.get(TRIGGER_TIME).and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            {
                pending.lock().expect("trigger lock").push(t);
            }
        },
        shutdown.clone(),
    );
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        _ = async { services.wait_until_ready().await; endpoints.wait_until_ready().await } => {}
    }
    let rules = RuleConfig { cluster_cidr: cfg.cluster_cidr.clone(), node_name: cfg.node_name.clone() };
    let mut proxier = Proxier::new(Tools, rules, cfg.service_cidr.clone());
    loop {
        let changes: Vec<SystemTime> = std::mem::take(&mut *triggers.lock().expect("trigger lock"));
        let ports = all_ports(&services, &endpoints);
        let started = std::time::Instant::now();
        let retry = match proxier.sync(&ports).await {
            Ok(out) => {
                let kind = if out.full { "full" } else { "partial" };
                metrics.syncs.get_or_create(&KindLabel { kind }).inc();
                metrics.sync_duration.observe(started.elapsed().as_secs_f64());
                metrics.rules.set(out.programmed as i64);
                metrics.last_touched.set(out.touched as i64);
                metrics.healthy.store(true, std::sync::atomic::Ordering::Relaxed);
                let now = SystemTime::now();
                for t in changes {
                    metrics
                        .programming_latency
                        .observe(now.duration_since(t).unwrap_or_default().as_secs_f64());
                }
                if out.full {
                    tracing::info!(service_ports = ports.len(), rules = out.programmed, took = ?started.elapsed(), "full sync");
                }
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "sync failed; retrying with a full sync");
                metrics.syncs.get_or_create(&KindLabel { kind: "error" }).inc();
                metrics.healthy.store(false, std::sync::atomic::Ordering::Relaxed);
                Some(Duration::from_secs(1))
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = notify.notified(), if retry.is_none() => {}
            _ = tokio::time::sleep(retry.unwrap_or(RESYNC)) => {}
        }
    }
    shutdown.cancel();
    let drain = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), http).await;
    Ok(())
}
