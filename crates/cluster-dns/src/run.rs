//! Wiring: Services and Endpoints of all namespaces through the client runtime (watch → store), the
//! hickory server on UDP and TCP, metrics and health on the shell's admin server, and (with
//! `--advertise-address`) the kube-dns registration, re-checked whenever the stores change and every
//! 30 s. On SIGTERM the address leaves the kube-dns Endpoints first, then the server stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{Endpoints, Service};
use navarch_client::{Client, ObjectRef, SharedReflector, Store, WatcherConfig};
use navarch_daemon::{Admin, Daemon};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::config::Config;
use crate::forward::Forwarder;
use crate::metrics::DnsMetrics;
use crate::records::{Stores, Zone};
use crate::register::{self, Registration};
use crate::server::Handler;

/// A TCP client that sends nothing for this long is disconnected.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;
const RECHECK: Duration = Duration::from_secs(30);
/// How long a shutdown may spend taking the address out of the Endpoints.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(5);

fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(1)
}

/// Keeps a store of `K` current (a shared reflector run in `tasks` until `stop`); on every change (a
/// relist, or a resync after falling behind, included) bumps `serial`, calls `on_change` with the store
/// and wakes `changed`'s waiters.
fn follow<K: Resource>(
    tasks: &mut tokio::task::JoinSet<()>,
    client: &Client,
    serial: Arc<AtomicU32>,
    changed: Arc<Notify>,
    on_change: impl Fn(&Store<K>) + Send + 'static,
    stop: CancellationToken,
) -> Store<K> {
    let reflector = SharedReflector::<K>::new(client.api(""), WatcherConfig::default());
    let store = reflector.store();
    tasks.spawn(reflector.subscribe().for_each(move |_| {
        serial.fetch_max(unix_now(), Ordering::Relaxed);
        on_change(&store);
        changed.notify_waiters();
        futures::future::ready(())
    }));
    reflector.spawn(tasks, stop)
}

/// True when the stores show the kube-dns Service and this instance's address in its Endpoints.
fn registered(stores: &Stores, reg: &Registration) -> bool {
    let key = ObjectRef::new(register::NAMESPACE, register::NAME);
    stores.services.get(&key).is_some()
        && stores.endpoints.get(&key).is_some_and(|e| register::is_registered(&e, reg.address, reg.port))
}

/// Registers, then re-registers whenever the stores stop showing the registration.
async fn keep_registered(reg: Registration, stores: Stores, changed: Arc<Notify>, stop: CancellationToken) {
    let mut backoff = Duration::from_secs(1);
    let mut needed = true;
    loop {
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let mut wait = RECHECK;
        if needed || (stores.is_ready() && !registered(&stores, &reg)) {
            // Not left running on shutdown: it would race with the removal.
            let result = tokio::select! {
                _ = stop.cancelled() => return,
                r = reg.ensure() => r,
            };
            match result {
                Ok(()) => {
                    needed = false;
                    backoff = Duration::from_secs(1);
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "registering as kube-dns");
                    needed = true;
                    wait = backoff;
                    backoff = (backoff * 2).min(RECHECK);
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = &mut notified, if !needed => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

pub async fn run(daemon: Daemon<Config>) -> Result<(), Error> {
    let (cfg, shutdown) = (&daemon.config, daemon.shutdown.clone());
    let client = Client::connect_lazy(&navarch_client::Connection::for_daemon(
        cfg.kubeconfig.as_deref(),
        &cfg.server,
    )?)?;
    let mut admin = Admin::new("");
    let metrics = Arc::new(DnsMetrics::register(admin.registry()));
    admin.liveness("stores", Admin::flag_check(metrics.ready.clone(), "stores not synced"));
    daemon.serve_admin(admin, cfg.http_listen).await?;
    let listen_err = |what, addr| move |source| Error::Listen { what, addr, source };
    let udp = tokio::net::UdpSocket::bind(cfg.listen).await.map_err(listen_err("udp", cfg.listen))?;
    let tcp = tokio::net::TcpListener::bind(cfg.listen).await.map_err(listen_err("tcp", cfg.listen))?;
    tracing::info!(
        listen = %cfg.listen,
        cluster_domain = %cfg.cluster_domain,
        upstreams = ?cfg.upstreams,
        server = %cfg.server,
        "cluster-dns starting"
    );
    if cfg.upstreams.is_empty() {
        tracing::warn!("no upstream resolvers: names outside {} will get SERVFAIL", cfg.cluster_domain);
    }

    let serial = Arc::new(AtomicU32::new(unix_now()));
    let changed = Arc::new(Notify::new());
    let mut tasks = tokio::task::JoinSet::new();
    let m = metrics.clone();
    let services = follow::<Service>(
        &mut tasks,
        &client,
        serial.clone(),
        changed.clone(),
        move |s| {
            m.services.set(s.len() as i64);
        },
        shutdown.clone(),
    );
    let m = metrics.clone();
    let endpoints = follow::<Endpoints>(
        &mut tasks,
        &client,
        serial.clone(),
        changed.clone(),
        move |s| {
            m.endpoints.set(s.len() as i64);
        },
        shutdown.clone(),
    );
    let stores = Stores { services, endpoints };
    let (ready_stores, ready_metrics, stop) = (stores.clone(), metrics.clone(), shutdown.clone());
    tasks.spawn(async move {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = async {
                ready_stores.services.wait_until_ready().await;
                ready_stores.endpoints.wait_until_ready().await;
            } => {
                ready_metrics.ready.store(true, Ordering::Release);
                tracing::info!(
                    services = ready_stores.services.len(),
                    endpoints = ready_stores.endpoints.len(),
                    "stores synced: answering for the cluster domain"
                );
            }
        }
    });

    let handler = Handler {
        stores: stores.clone(),
        zone: Zone::new(&cfg.cluster_domain, cfg.ttl),
        serial,
        forwarder: Forwarder::new(cfg.upstreams.clone()),
        metrics: metrics.clone(),
    };
    let mut server = hickory_server::Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE, TCP_RESPONSE_BUFFER);

    let registration = cfg
        .advertise_address
        .map(|a| Registration::new(client.clone(), a, cfg.service_ip, cfg.listen.port()));
    let registering =
        registration.clone().map(|reg| tokio::spawn(keep_registered(reg, stores, changed, shutdown.clone())));

    let died = tokio::select! {
        _ = shutdown.cancelled() => None,
        r = server.block_until_done() => Some(r),
    };
    shutdown.cancel();
    if let Some(task) = registering {
        let _ = task.await;
    }
    if let Some(reg) = &registration {
        match tokio::time::timeout(DEREGISTER_TIMEOUT, reg.remove()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "leaving the kube-dns Endpoints"),
            Err(_) => tracing::warn!("leaving the kube-dns Endpoints: timed out"),
        }
    }
    let result = match died {
        // The server's sockets closed by themselves.
        Some(Ok(())) => Err(Error::Stopped),
        Some(Err(e)) => Err(e.into()),
        None => match tokio::time::timeout(Duration::from_secs(2), server.shutdown_gracefully()).await {
            Ok(r) => r.map_err(Error::from),
            Err(_) => Ok(()),
        },
    };
    let drain = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    result
}
