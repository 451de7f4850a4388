//! Wiring: connect to containerd and the api-server, prepare the host's network, register the
//! Node, then run the heartbeat, the node status loop, the pod controller (pods bound here,
//! re-synced on containerd task exits and on changes of the configMaps and secrets they use), the
//! orphan sweep, the local-path provisioner's agent, and its metrics on the shell's admin server, until
//! shutdown.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{Node, Pod};
use navarch_client::{Action, Client, Controller, EventRecorder, ObjectRef, Store, WatcherConfig};
use navarch_daemon::{Admin, Daemon};
use tokio_util::sync::CancellationToken;

use crate::cgroups::Cgroups;
use crate::config::Config;
use crate::container_io::ContainerIo;
use crate::containerd::Containerd;
use crate::image::Puller;
use crate::metrics::KubeletMetrics;
use crate::network::{CniPlugins, default_conflist};
use crate::node::{HostResources, NodeSettings};
use crate::pods::{LABEL_POD_NAME, LABEL_POD_NAMESPACE, PodPaths, PodWorker};
use crate::probes::{ProbeManager, Prober};
use crate::server::KubeletApi;
use crate::stats::prometheus::{SamplesCollector, Series};
use crate::stats::{HostPaths, StatsCollector};

const EVENT_QUEUE: usize = 1000;

/// cAdvisor's series on `/metrics` (beside the kubelet's own) and alone on `/metrics/cadvisor`, and
/// the resource metrics on `/metrics/resource`, as Kubernetes' kubelet serves them.
fn register_stats_metrics(admin: &mut Admin, stats: &Arc<StatsCollector>) {
    let collector = |series| Box::new(SamplesCollector { stats: stats.clone(), series });
    admin.registry().register_collector(collector(Series::Cadvisor));
    for (path, series) in Series::ALL {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(collector(series));
        admin.metrics_endpoint(path, registry);
    }
}

async fn connect_containerd(cfg: &Config, shutdown: &CancellationToken) -> anyhow::Result<Containerd> {
    loop {
        match Containerd::connect(&cfg.containerd_socket, &cfg.containerd_namespace).await {
            Ok(c) => match c.version().await {
                Ok(v) => {
                    tracing::info!(version = %v, socket = %cfg.containerd_socket.display(), "connected to containerd");
                    return Ok(c);
                }
                Err(e) => tracing::warn!(error = %e, "containerd not answering; retrying"),
            },
            Err(e) => tracing::warn!(error = %e, "containerd not reachable; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => anyhow::bail!("shut down before containerd was reachable"),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Registers the node and waits until it has a pod CIDR (from config or assigned).
async fn register(client: &Client, s: &NodeSettings, shutdown: &CancellationToken) -> anyhow::Result<String> {
    loop {
        match crate::node::register(client, s).await {
            Ok(node) => {
                if let Some(c) = &s.pod_cidr {
                    return Ok(c.clone());
                }
                let assigned = node.spec.as_ref().map(|sp| sp.pod_cidr.clone()).unwrap_or_default();
                if !assigned.is_empty() {
                    return Ok(assigned);
                }
                tracing::info!(node = %s.name, "waiting for spec.podCIDR to be assigned");
            }
            Err(e) => tracing::warn!(node = %s.name, error = %e, "registering the node; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => anyhow::bail!("shut down before the node was registered"),
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Keeps the Node's status current: every heartbeat when something changed, at least every minute.
async fn node_status_loop(
    client: Client,
    ctd: Containerd,
    settings: NodeSettings,
    root: std::path::PathBuf,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let api = client.api::<Node>("");
    let mut last_write = std::time::Instant::now() - Duration::from_secs(3600);
    let mut tick = tokio::time::interval(interval);
    let mut image_sizes = std::collections::HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let runtime = ctd.version().await.map(|_| ()).map_err(|e| e.to_string());
        let host = HostResources::read(&root);
        let images = match crate::image::inventory::list(&ctd, &mut image_sizes).await {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::warn!(error = %e, "listing images for the node status");
                None
            }
        };
        let node = match api.get(&settings.name).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "reading the node");
                continue;
            }
        };
        let old = node.status.clone().unwrap_or_default();
        let new = crate::node::node_status(&settings, &host, runtime, images, &old);
        let changed = {
            let strip = |s: &navarch_api::v1::NodeStatus| {
                let mut s = s.clone();
                for c in s.conditions.iter_mut() {
                    c.last_heartbeat_time.clear();
                }
                s
            };
            strip(&old) != strip(&new)
        };
        if changed || last_write.elapsed() >= Duration::from_secs(60) {
            let mut n = node.clone();
            n.status = Some(new);
            match api.update_status(&n).await {
                Ok(_) => last_write = std::time::Instant::now(),
                Err(e) => tracing::warn!(error = %e, "updating node status"),
            }
        }
    }
}

/// How often pods with ConfigMap, Secret or projected volumes are synced again (their contents
/// re-read from the api-server).
const VOLUME_REFRESH: Duration = Duration::from_secs(15);

/// Whether a pod has volumes whose contents come from the api-server.
fn uses_api_volumes(pod: &Pod) -> bool {
    pod.spec.as_ref().is_some_and(|s| {
        s.volumes.iter().any(|v| v.config_map.is_some() || v.secret.is_some() || v.projected.is_some())
    })
}

async fn refresh_api_volumes(
    store: Store<Pod>,
    resync: tokio::sync::mpsc::Sender<Vec<ObjectRef>>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(VOLUME_REFRESH) => {}
        }
        let keys: Vec<ObjectRef> = store
            .state()
            .iter()
            .filter(|p| uses_api_volumes(p))
            .map(|p| ObjectRef::from_obj(p.as_ref()))
            .collect();
        if !keys.is_empty() && resync.send(keys).await.is_err() {
            return;
        }
    }
}

/// Removes the remains of pods that no longer exist: at once when a pod leaves the store (deleted
/// without a graceful stop, e.g. grace period 0), and in a full sweep once the store has listed and
/// every 30 s after (pods deleted while the kubelet was down).
async fn orphan_sweep(worker: Arc<PodWorker>, store: Store<Pod>, shutdown: CancellationToken) {
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = store.wait_until_ready() => {}
    }
    let mut last_full = std::time::Instant::now() - Duration::from_secs(3600);
    let mut previous: HashSet<String> = HashSet::new();
    loop {
        let known: HashSet<String> = store.state().iter().map(|p| p.meta().uid.clone()).collect();
        let gone = previous.iter().any(|uid| !known.contains(uid));
        if gone || last_full.elapsed() >= Duration::from_secs(30) {
            last_full = std::time::Instant::now();
            match worker.cleanup_orphans(&known).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pods = n, "removed the remains of deleted pods"),
                Err(e) => tracing::warn!(error = %e, "orphan sweep"),
            }
        }
        previous = known;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Forwards containerd's task exits as pod keys, resubscribing when the stream breaks.
async fn forward_task_exits(
    ctd: Containerd,
    tx: tokio::sync::mpsc::Sender<Vec<ObjectRef>>,
    shutdown: CancellationToken,
) {
    loop {
        match ctd.task_events().await {
            Ok(stream) => {
                let mut stream = std::pin::pin!(stream);
                loop {
                    let id = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        id = stream.next() => match id { Some(id) => id, None => break },
                    };
                    if let Ok(Some(rec)) = ctd.get_container(&id).await
                        && let (Some(ns), Some(name)) =
                            (rec.labels.get(LABEL_POD_NAMESPACE), rec.labels.get(LABEL_POD_NAME))
                        && tx.send(vec![ObjectRef::new(ns, name)]).await.is_err()
                    {
                        return;
                    }
                }
                tracing::warn!("containerd event stream ended; resubscribing");
            }
            Err(e) => tracing::warn!(error = %e, "subscribing to containerd events"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// The kubelet API (logs, exec, stats) for the api-server.
async fn serve_grpc(
    listener: tokio::net::TcpListener,
    api: KubeletApi,
    tls: tonic::transport::ServerTlsConfig,
    shutdown: CancellationToken,
) {
    use navarch_api::kubelet_proto::kubelet_server::KubeletServer;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let mut server = match tonic::transport::Server::builder().tls_config(tls) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "kubelet API TLS configuration");
            return;
        }
    };
    let r = server
        .add_service(KubeletServer::new(api))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await;
    if let Err(e) = r {
        tracing::error!(error = %e, "kubelet API server stopped");
    }
}

/// Rotates container logs over the size limit, every 10 s (their writers wait meanwhile).
async fn rotate_logs(
    dir: std::path::PathBuf,
    rotation: crate::logs::Rotation,
    live: crate::logs::LiveLogs,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
        let (dir, live) = (dir.clone(), live.clone());
        let n = tokio::task::spawn_blocking(move || crate::logs::rotate_all(&dir, rotation, &live))
            .await
            .unwrap_or(0);
        if n > 0 {
            tracing::debug!(files = n, "rotated container logs");
        }
    }
}

pub async fn run(daemon: Daemon<Config>) -> anyhow::Result<()> {
    let (cfg, shutdown) = (&daemon.config, daemon.shutdown.clone());
    let ctd = connect_containerd(cfg, &shutdown).await?;
    // Containers' output: read again for those still running (they block once their pipe is
    // full), before anything else starts.
    let io = ContainerIo::new(&cfg.run_dir, shutdown.clone());
    match io.recover(&ctd).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(containers = n, "reading the output of running containers again"),
        Err(e) => tracing::warn!(error = %e, "reopening the stdio of running containers"),
    }
    crate::credentials::ensure_client(cfg, &shutdown).await?;
    let connection = navarch_client::Connection::for_daemon(cfg.kubeconfig.as_deref(), &cfg.server)?;
    let client = Client::connect_lazy(&connection)?;
    let guard = crate::netcfg::setup_host(&crate::netcfg::HostNet {
        bridge: &cfg.bridge,
        cluster_cidr: cfg.cluster_cidr,
        service_cidr: cfg.service_cluster_ip_range,
        allow_egress: cfg.allow_pod_egress,
        pod_egress_allowed: &cfg.pod_egress_allowed,
        api_server_port: crate::netcfg::server_port(&connection.server)?,
    })
    .await
    .context("setting up the host's routes and the pods' guard")?;
    tracing::info!(
        node_network = ?guard.node_network.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        api_server_port = guard.api_server_port,
        egress = guard.allow_egress,
        "pods reach the node network only for DNS and the api-server"
    );
    let settings = NodeSettings {
        name: cfg.node_name.clone(),
        ip: cfg.node_ip.clone(),
        pod_cidr: cfg.pod_cidr.map(|c| c.to_string()),
        max_pods: cfg.max_pods,
        reserved_cpu: cfg.reserved_cpu.clone(),
        reserved_memory: cfg.reserved_memory.clone(),
        runtime_version: ctd.version().await.unwrap_or_default(),
        kubelet_port: cfg.grpc_listen().port() as i32,
    };
    let pod_cidr = register(&client, &settings, &shutdown).await?;
    tracing::info!(node = %cfg.node_name, %pod_cidr, "node registered");
    for d in [&cfg.root_dir, &cfg.run_dir, &cfg.log_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let cni = CniPlugins {
        bin_dir: cfg.cni_bin_dir.clone(),
        conflist: default_conflist(&cfg.bridge, &pod_cidr, &cfg.root_dir.join("cni")),
        ifname: "eth0".into(),
    };
    let (events, event_sender) = EventRecorder::new(client.clone(), "kubelet", &cfg.node_name, EVENT_QUEUE);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(event_sender);
    // The local-path provisioner's node agent reports as the provisioner, like an external one.
    let (provisioner_events, provisioner_event_sender) = EventRecorder::new(
        client.clone(),
        navarch_api::storage::LOCAL_PATH_PROVISIONER,
        &cfg.node_name,
        EVENT_QUEUE,
    );
    tasks.spawn(provisioner_event_sender);
    tasks.spawn(crate::local_path::LocalPath::run(
        client.clone(),
        cfg.node_name.clone(),
        cfg.root_dir.clone(),
        provisioner_events,
        shutdown.clone(),
    ));
    // Pod keys to sync again from outside the watches: containerd task exits and probe results.
    let (resync_tx, mut resync_rx) = tokio::sync::mpsc::channel::<Vec<ObjectRef>>(256);
    let mut admin = Admin::new("");
    let metrics = Arc::new(KubeletMetrics::register(admin.registry()));
    let stats = StatsCollector::new(
        ctd.clone(),
        HostPaths {
            cgroups: Cgroups::default(),
            proc_root: "/proc".into(),
            root_dir: cfg.root_dir.clone(),
            run_dir: cfg.run_dir.clone(),
        },
    );
    register_stats_metrics(&mut admin, &stats);
    tasks.spawn(stats.clone().run(shutdown.clone()));
    let probes = ProbeManager::new(
        Prober { ctd: ctd.clone(), run_dir: cfg.run_dir.clone() },
        resync_tx.clone(),
        events.clone(),
        metrics.clone(),
        shutdown.clone(),
    );
    let worker = Arc::new(PodWorker::new(
        client.clone(),
        ctd.clone(),
        Puller::new(
            cfg.mirrors.clone(),
            crate::image::tls_config(&cfg.registry_ca_files).context("registry TLS settings")?,
        ),
        cni,
        PodPaths {
            root_dir: cfg.root_dir.clone(),
            run_dir: cfg.run_dir.clone(),
            log_dir: cfg.log_dir.clone(),
        },
        cfg.node_name.clone(),
        cfg.node_ip.clone(),
        cfg.cluster_dns.clone(),
        cfg.cluster_domain.clone(),
        events,
        probes.clone(),
        metrics.clone(),
        io.clone(),
    ));
    tasks.spawn(crate::node::heartbeat(
        client.clone(),
        cfg.node_name.clone(),
        cfg.heartbeat,
        shutdown.clone(),
    ));
    tasks.spawn(node_status_loop(
        client.clone(),
        ctd.clone(),
        settings.clone(),
        cfg.root_dir.clone(),
        cfg.heartbeat,
        shutdown.clone(),
    ));
    daemon.serve_admin(admin, cfg.http_listen).await?;
    let api = KubeletApi::new(
        ctd.clone(),
        cfg.run_dir.clone(),
        cfg.node_name.clone(),
        shutdown.clone(),
        io.clone(),
        Arc::new(crate::api_auth::ApiAuth::new(client.clone(), cfg.node_name.clone())),
        stats,
    );
    let api_tasks = api.tasks.clone();
    let grpc = tokio::net::TcpListener::bind(cfg.grpc_listen())
        .await
        .with_context(|| format!("listening on {}", cfg.grpc_listen()))?;
    let identity = crate::credentials::serving_identity(cfg, &client, &connection.ca_pem, &shutdown).await?;
    let tls = crate::credentials::api_tls(identity, crate::credentials::client_ca(cfg, &connection)?);
    tasks.spawn(serve_grpc(grpc, api, tls, shutdown.clone()));
    tasks.spawn(rotate_logs(cfg.log_dir.clone(), cfg.log_rotation, io.live_logs().clone(), shutdown.clone()));

    // Task exits from containerd → the pod's key. (containerd answers a subscription only with
    // its first event, so the subscription runs in its own task.)
    let resync_tx_volumes = resync_tx.clone();
    tasks.spawn(forward_task_exits(ctd.clone(), resync_tx, shutdown.clone()));
    let resyncs = futures::stream::poll_fn(move |cx| resync_rx.poll_recv(cx));
    let pods_cfg = WatcherConfig::default().fields(&format!("spec.nodeName={}", cfg.node_name));
    let controller = Controller::new(client.api::<Pod>(""), pods_cfg).concurrency(cfg.workers);
    let store = controller.store();
    // A node may read only the ConfigMaps and Secrets its own pods use, by name (the Node
    // authorizer), not watch them all: pods with such volumes are synced again every
    // VOLUME_REFRESH, which reads them again (Kubernetes' `Cache` change-detection strategy).
    tasks.spawn(refresh_api_volumes(store.clone(), resync_tx_volumes, shutdown.clone()));
    let controller = controller.triggered_by(resyncs);
    tasks.spawn(orphan_sweep(worker.clone(), store, shutdown.clone()));
    tracing::info!(node = %cfg.node_name, "kubelet running");
    controller
        .run(
            |pod: Arc<Pod>, w: Arc<PodWorker>| async move { w.sync(pod).await },
            |_pod, _err, _w| Action::requeue(Duration::from_secs(2)),
            worker,
            shutdown.clone(),
        )
        .await;
    shutdown.cancel();
    // Running pods are left running: a restarted kubelet adopts them.
    let drain = async { while tasks.join_next().await.is_some() {} };
    let drain = async {
        drain.await;
        probes.wait().await;
        api_tasks.close();
        api_tasks.wait().await;
        // Output readers write what they hold (a line not ended yet, as a piece) and stop; the
        // shims keep the rest for the next kubelet.
        io.tasks().close();
        io.tasks().wait().await;
    };
    if tokio::time::timeout(Duration::from_secs(5), drain).await.is_err() {
        tracing::warn!("background tasks did not stop in time");
    }
    Ok(())
}
