//! Wiring: Services and Endpoints through the client runtime (watch → store), one sync loop that
//! coalesces changes (a change arriving during a sync is handled by the next one) and programs
//! only the Services that changed; every 30 s (and after a relist) everything is recomputed and
//! only differences programmed; metrics and the sync health check on the shell's admin server. On shutdown the rules stay in place (a restarted kube-proxy
//! replaces them atomically); `--cleanup` removes them.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{Endpoints, Service};
use navarch_client::{Change, Client, ObjectRef, SharedReflector, Store, WatcherConfig};
use navarch_daemon::{Admin, Daemon};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::kernel::Tools;
use crate::metrics::{KindLabel, ProxyMetrics};
use crate::model::{ServicePort, service_ports};
use crate::nft::RuleConfig;
use crate::proxier::{ByService, Proxier, cleanup};

const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
const RESYNC: Duration = Duration::from_secs(30);

/// The service ports of one Service (`namespace/name`) from the stores (empty when it is gone).
fn ports_of(key: &str, services: &Store<Service>, endpoints: &Store<Endpoints>) -> Vec<ServicePort> {
    let (ns, name) = key.split_once('/').unwrap_or(("", key));
    let r = ObjectRef::new(ns, name);
    match services.get(&r) {
        Some(s) => service_ports(&s, endpoints.get(&r).as_deref()),
        None => Vec::new(),
    }
}

/// Every Service's ports, from the stores.
pub fn all_ports(services: &Store<Service>, endpoints: &Store<Endpoints>) -> ByService {
    services
        .state()
        .iter()
        .map(|s| {
            let key = format!("{}/{}", s.meta().namespace, s.meta().name);
            let ports = ports_of(&key, services, endpoints);
            (key, ports)
        })
        .collect()
}

/// What changed since the last sync.
#[derive(Default)]
struct Dirty {
    /// `namespace/name` of Services whose Service or Endpoints changed.
    keys: BTreeSet<String>,
    /// A relist happened (deletions may have been missed): look at everything.
    everything: bool,
    /// Endpoints change times (their last-change-trigger-time), for the latency histogram.
    triggers: Vec<SystemTime>,
}

/// Keeps a store of `K` current (a shared reflector run in `tasks` until `stop`), recording changed keys
/// in `dirty` (everything after a relist, or when this follower fell behind) and poking `notify`.
fn follow<K: Resource>(
    tasks: &mut tokio::task::JoinSet<()>,
    client: &Client,
    notify: Arc<Notify>,
    dirty: Arc<Mutex<Dirty>>,
    stop: CancellationToken,
) -> Store<K> {
    let reflector = SharedReflector::<K>::new(client.api(""), WatcherConfig::default());
    tasks.spawn(reflector.subscribe().for_each(move |change| {
        {
            let mut d = dirty.lock().expect("dirty lock");
            match &change {
                Change::Apply(o) | Change::Delete(o) => {
                    let m = o.meta();
                    tracing::trace!(kind = K::KIND, namespace = %m.namespace, name = %m.name, "changed");
                    d.keys.insert(format!("{}/{}", m.namespace, m.name));
                    if let Change::Apply(_) = &change
                        && let Some(t) = m.annotations.get(TRIGGER_TIME)
                        && let Ok(t) = humantime::parse_rfc3339_weak(t)
                    {
                        d.triggers.push(t);
                    }
                }
                Change::Resync => {
                    tracing::debug!(kind = K::KIND, "relisted (or fell behind): everything may have changed");
                    d.everything = true;
                }
            }
        }
        notify.notify_one();
        futures::future::ready(())
    }));
    reflector.spawn(tasks, stop)
}

/// How long kube-proxy waits for its certificate before giving up (to be restarted).
const BOOTSTRAP_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

pub async fn run(daemon: Daemon<Config>) -> anyhow::Result<()> {
    let cfg = &daemon.config;
    let shutdown = daemon.shutdown.clone();
    if cfg.cleanup {
        cleanup(&Tools).await.context("cleaning up")?;
        println!("kube-proxy: removed table ip {} and the ClusterIP routes", crate::nft::TABLE);
        return Ok(());
    }
    if let (Some(bootstrap), Some(kubeconfig)) = (&cfg.bootstrap_kubeconfig, &cfg.kubeconfig) {
        let ask = navarch_client::bootstrap::CertificateAsk::kube_proxy();
        let wait = navarch_client::bootstrap::ensure_kubeconfig(
            kubeconfig,
            bootstrap,
            &cfg.server,
            &ask,
            BOOTSTRAP_WAIT,
        );
        tokio::select! {
            r = wait => { r.with_context(|| format!("bootstrapping the client certificate with {}", bootstrap.display()))?; }
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
    let client = Client::connect_lazy(&navarch_client::Connection::for_daemon(
        cfg.kubeconfig.as_deref(),
        &cfg.server,
    )?)?;
    let mut admin = Admin::new("");
    let metrics = Arc::new(ProxyMetrics::register(admin.registry()));
    admin.liveness("sync", Admin::flag_check(metrics.healthy.clone(), "not synced"));
    daemon.serve_admin(admin, cfg.http_listen).await?;
    tracing::info!(server = %cfg.server, node = %cfg.node_name(), "kube-proxy starting (nftables)");

    let notify = Arc::new(Notify::new());
    let dirty: Arc<Mutex<Dirty>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let services = follow::<Service>(&mut tasks, &client, notify.clone(), dirty.clone(), shutdown.clone());
    let endpoints = follow::<Endpoints>(&mut tasks, &client, notify.clone(), dirty.clone(), shutdown.clone());
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        _ = async { services.wait_until_ready().await; endpoints.wait_until_ready().await } => {}
    }
    let rules = RuleConfig { cluster_cidr: cfg.cluster_cidr(), node_name: cfg.node_name().to_string() };
    let mut proxier = Proxier::new(Tools, rules, cfg.service_cluster_ip_range.to_string());
    let mut resync = false;
    loop {
        let changes = std::mem::take(&mut *dirty.lock().expect("dirty lock"));
        tracing::trace!(keys = changes.keys.len(), everything = changes.everything, resync, "sync");
        let started = std::time::Instant::now();
        let result = if proxier.needs_full() {
            proxier.sync_full(&all_ports(&services, &endpoints)).await
        } else if changes.everything || resync {
            // Recompute everything, program only differences.
            proxier
                .sync_changed(
                    &all_ports(&services, &endpoints)
                        .into_iter()
                        .chain(changes.keys.iter().map(|k| (k.clone(), ports_of(k, &services, &endpoints))))
                        .collect(),
                )
                .await
        } else {
            let changed: ByService =
                changes.keys.iter().map(|k| (k.clone(), ports_of(k, &services, &endpoints))).collect();
            proxier.sync_changed(&changed).await
        };
        let retry = match result {
            Ok(out) => {
                let kind = if out.full { "full" } else { "partial" };
                metrics.syncs.get_or_create(&KindLabel { kind }).inc();
                metrics.sync_duration.observe(started.elapsed().as_secs_f64());
                metrics.rules.set(out.programmed as i64);
                metrics.last_touched.set(out.touched as i64);
                metrics.healthy.store(true, std::sync::atomic::Ordering::Relaxed);
                let now = SystemTime::now();
                for t in changes.triggers {
                    metrics
                        .programming_latency
                        .observe(now.duration_since(t).unwrap_or_default().as_secs_f64());
                }
                if out.full {
                    tracing::info!(rules = out.programmed, took = ?started.elapsed(), "full sync");
                }
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "sync failed; retrying with a full sync");
                metrics.syncs.get_or_create(&KindLabel { kind: "error" }).inc();
                metrics.healthy.store(false, std::sync::atomic::Ordering::Relaxed);
                // Keep what was pending for the retry.
                let mut d = dirty.lock().expect("dirty lock");
                d.keys.extend(changes.keys);
                d.everything |= changes.everything;
                Some(Duration::from_secs(1))
            }
        };
        resync = false;
        tracing::trace!("waiting for changes");
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = notify.notified(), if retry.is_none() => {}
            _ = tokio::time::sleep(retry.unwrap_or(RESYNC)) => resync = retry.is_none(),
        }
    }
    shutdown.cancel();
    let drain = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    Ok(())
}
