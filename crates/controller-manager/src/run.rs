//! Wiring: the shared pod store, each controller on the client runtime, `/healthz`, until shutdown.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::selector::Selector;
use navarch_api::v1::{Deployment, Lease, Namespace, Node, Pod, ReplicaSet, Service, ServiceAccount};
use navarch_client::{Action, Client, Controller, Event, EventRecorder, ObjectRef, WatcherConfig};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::deployment::DeploymentController;
use crate::endpoints::EndpointsController;
use crate::namespaces::NamespaceController;
use crate::node_ipam::NodeIpam;
use crate::node_lifecycle::NodeLifecycle;
use crate::replicaset::{ReplicaSetController, controller_of};
use crate::service_lb::LoadBalancerController;

const EVENT_QUEUE: usize = 1000;

async fn serve_http(listener: tokio::net::TcpListener, shutdown: CancellationToken) {
    let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
    let _ =
        axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await;
}

/// Runs one controller in `tasks` until `stop`; a failed reconcile is retried after `retry`.
fn spawn_controller<K, Ctx, E, F, Fut>(
    tasks: &mut tokio::task::JoinSet<()>,
    controller: Controller<K>,
    reconcile: F,
    ctx: Arc<Ctx>,
    retry: Duration,
    stop: CancellationToken,
) where
    K: navarch_api::Resource,
    Ctx: Send + Sync + 'static,
    E: std::fmt::Display + Send + 'static,
    F: Fn(Arc<K>, Arc<Ctx>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
{
    tasks.spawn(
        async move { controller.run(reconcile, move |_, _, _| Action::requeue(retry), ctx, stop).await },
    );
}

/// A store of `api`'s objects kept current by a task in `tasks` until `stop`.
fn spawn_store<K: Resource>(
    tasks: &mut tokio::task::JoinSet<()>,
    api: navarch_client::Api<K>,
    stop: CancellationToken,
) -> navarch_client::Store<K> {
    let (store, writer) = navarch_client::store::<K>();
    let events = navarch_client::reflector(writer, navarch_client::watcher(api, WatcherConfig::default()));
    tasks.spawn(async move {
        let mut events = std::pin::pin!(events);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                ev = events.next() => if ev.is_none() { return },
            }
        }
    });
    store
}

/// Runs the controllers until `shutdown` (called while this instance leads).
pub async fn run_controllers(client: Client, cfg: Config, shutdown: CancellationToken) {
    let workers = cfg.workers;
    let (events, sender) = EventRecorder::new(client.clone(), "replicaset-controller", "", EVENT_QUEUE);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(sender);
    tasks.spawn(crate::garbage_collector::run(client.clone(), shutdown.clone()));

    // ReplicaSets, re-synced when a pod they own (or an orphan they select) changes. The pod store
    // and those triggers come from one watch, the store updated first, so a reconcile never reads a
    // store older than the event that triggered it.
    let rs_controller =
        Controller::new(client.api::<ReplicaSet>(""), WatcherConfig::default()).concurrency(workers);
    let rs_store = rs_controller.store();
    let (pods, pod_writer) = navarch_client::store::<Pod>();
    let selecting = rs_store.clone();
    let replicasets_for = move |p: &Pod| -> Vec<ObjectRef> {
        let m = p.meta();
        if let Some(owner) = controller_of(m) {
            return if owner.kind == "ReplicaSet" {
                vec![ObjectRef::new(&m.namespace, &owner.name)]
            } else {
                vec![]
            };
        }
        selecting
            .state()
            .iter()
            .filter(|rs| rs.meta().namespace == m.namespace)
            .filter(|rs| {
                Selector::from_label_selector(rs.spec.as_ref().and_then(|s| s.selector.as_ref()))
                    .is_ok_and(|s| !s.is_empty() && s.matches(&m.labels))
            })
            .map(|rs| ObjectRef::from_obj(rs.as_ref()))
            .collect()
    };
    // Services, re-synced on any pod change in their namespace (a pod's labels may have moved away).
    let svc_controller =
        Controller::new(client.api::<Service>(""), WatcherConfig::default()).concurrency(workers);
    let svc_store = svc_controller.store();
    let services_in = {
        let svc_store = svc_store.clone();
        move |ns: &str| -> Vec<ObjectRef> {
            svc_store
                .state()
                .iter()
                .filter(|s| s.meta().namespace == ns)
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect()
        }
    };
    let all_sets = rs_store.clone();
    let all_services = svc_store.clone();
    let (rs_tx, mut rs_rx) = tokio::sync::mpsc::channel::<Vec<ObjectRef>>(1024);
    let (svc_tx, mut svc_rx) = tokio::sync::mpsc::channel::<Vec<ObjectRef>>(1024);
    let pod_events = navarch_client::reflector(
        pod_writer,
        navarch_client::watcher(client.api::<Pod>(""), WatcherConfig::default()),
    );
    let pods_stop = shutdown.clone();
    tasks.spawn(async move {
        let mut pod_events = std::pin::pin!(pod_events);
        loop {
            let ev = tokio::select! {
                _ = pods_stop.cancelled() => return,
                ev = pod_events.next() => match ev { Some(ev) => ev, None => return },
            };
            let (sets, services) = match ev {
                Ok(Event::Apply(p)) | Ok(Event::Delete(p)) => {
                    (replicasets_for(&p), services_in(&p.meta().namespace))
                }
                Ok(Event::InitDone) => (
                    all_sets.state().iter().map(|rs| ObjectRef::from_obj(rs.as_ref())).collect(),
                    all_services.state().iter().map(|s| ObjectRef::from_obj(s.as_ref())).collect(),
                ),
                _ => continue,
            };
            if (!sets.is_empty() && rs_tx.send(sets).await.is_err())
                || (!services.is_empty() && svc_tx.send(services).await.is_err())
            {
                return;
            }
        }
    });
    let pod_events = futures::stream::poll_fn(move |cx| rs_rx.poll_recv(cx));
    let svc_triggers = futures::stream::poll_fn(move |cx| svc_rx.poll_recv(cx));
    let rs_controller = rs_controller.triggered_by(pod_events);
    let ctx = Arc::new(ReplicaSetController::new(client.clone(), pods.clone(), events));
    let endpoints = Arc::new(EndpointsController { client: client.clone(), pods: pods.clone() });
    let svc_controller = svc_controller.triggered_by(svc_triggers);
    spawn_controller(
        &mut tasks,
        svc_controller,
        |svc: Arc<Service>, c: Arc<EndpointsController>| async move { c.reconcile(svc).await },
        endpoints.clone(),
        Duration::from_secs(2),
        shutdown.clone(),
    );
    // Deployments, re-synced when a ReplicaSet they own changes.
    let (dep_events, dep_sender) =
        EventRecorder::new(client.clone(), "deployment-controller", "", EVENT_QUEUE);
    tasks.spawn(dep_sender);
    let dep_controller = Controller::new(client.api::<Deployment>(""), WatcherConfig::default())
        .concurrency(workers)
        .owns(client.api::<ReplicaSet>(""), WatcherConfig::default());
    let dep_ctx =
        Arc::new(DeploymentController { client: client.clone(), sets: rs_store.clone(), events: dep_events });
    spawn_controller(
        &mut tasks,
        dep_controller,
        |d: Arc<Deployment>, c: Arc<DeploymentController>| async move { c.reconcile(d).await },
        dep_ctx,
        Duration::from_secs(1),
        shutdown.clone(),
    );
    // Node IPAM.
    let node_controller = Controller::new(client.api::<Node>(""), WatcherConfig::default()).concurrency(1);
    let nodes = node_controller.store();
    let ipam = Arc::new(NodeIpam {
        client: client.clone(),
        nodes: nodes.clone(),
        subnets: cfg.pod_subnets,
        allocated: Default::default(),
    });
    spawn_controller(
        &mut tasks,
        node_controller,
        |n: Arc<Node>, c: Arc<NodeIpam>| async move { c.reconcile(n).await },
        ipam,
        Duration::from_secs(1),
        shutdown.clone(),
    );
    // LoadBalancer Services: the Ready nodes' addresses, re-synced when nodes change.
    let lb_controller = Controller::new(client.api::<Service>(""), WatcherConfig::default())
        .concurrency(workers)
        .watches(client.api::<Node>(""), WatcherConfig::default(), {
            let services = svc_store.clone();
            move |_: &Node| {
                services
                    .state()
                    .iter()
                    .filter(|s| s.spec.as_ref().is_some_and(|s| s.r#type == "LoadBalancer"))
                    .map(|s| ObjectRef::from_obj(s.as_ref()))
                    .collect()
            }
        });
    let lb = Arc::new(LoadBalancerController { client: client.clone(), nodes: nodes.clone() });
    spawn_controller(
        &mut tasks,
        lb_controller,
        |s: Arc<Service>, c: Arc<LoadBalancerController>| async move { c.reconcile(s).await },
        lb,
        Duration::from_secs(2),
        shutdown.clone(),
    );
    // Node lifecycle: heartbeats (Leases), taints, evictions.
    let leases = spawn_store(&mut tasks, client.api::<Lease>("kube-node-lease"), shutdown.clone());
    let (node_events, node_sender) = EventRecorder::new(client.clone(), "node-controller", "", EVENT_QUEUE);
    tasks.spawn(node_sender);
    let lifecycle =
        NodeLifecycle::new(client.clone(), cfg.node_lifecycle.clone(), nodes, leases, pods, node_events);
    tasks.spawn(lifecycle.run(shutdown.clone()));
    // Namespaces, re-synced when their default ServiceAccount changes.
    let ns_controller = Controller::new(client.api::<Namespace>(""), WatcherConfig::default())
        .concurrency(workers)
        .watches(client.api::<ServiceAccount>(""), WatcherConfig::default(), |sa: &ServiceAccount| {
            let m = sa.meta();
            if m.name == "default" { vec![ObjectRef::new("", &m.namespace)] } else { vec![] }
        });
    let ns_ctx = Arc::new(NamespaceController { client: client.clone() });
    spawn_controller(
        &mut tasks,
        ns_controller,
        |ns: Arc<Namespace>, c: Arc<NamespaceController>| async move { c.reconcile(ns).await },
        ns_ctx,
        Duration::from_secs(2),
        shutdown.clone(),
    );
    let sweep_stop = shutdown.clone();
    tasks.spawn(async move {
        svc_store.wait_until_ready().await;
        loop {
            match endpoints.remove_leftovers(&svc_store).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(endpoints = n, "removed the Endpoints of deleted Services"),
                Err(e) => tracing::warn!(error = %e, "Endpoints sweep"),
            }
            tokio::select! {
                _ = sweep_stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    });
    spawn_controller(
        &mut tasks,
        rs_controller,
        |rs: Arc<ReplicaSet>, c: Arc<ReplicaSetController>| async move { c.reconcile(rs).await },
        ctx,
        Duration::from_secs(2),
        shutdown.clone(),
    );
    shutdown.cancelled().await;
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain).await.is_err() {
        tracing::warn!("controllers did not stop in time");
    }
}

pub async fn run(cfg: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    use anyhow::Context;
    let client = Client::connect_lazy(&cfg.server).context("api-server address")?;
    let listener = tokio::net::TcpListener::bind(cfg.http_listen)
        .await
        .with_context(|| format!("listening on {}", cfg.http_listen))?;
    let http = tokio::spawn(serve_http(listener, shutdown.clone()));
    tracing::info!(server = %cfg.server, "controller-manager starting");
    if cfg.leader_elect {
        let identity = cfg.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}_{}", host.trim(), std::process::id())
        });
        let elector = navarch_client::LeaderElector::new(
            &client,
            "kube-system",
            "kube-controller-manager",
            &identity,
            navarch_client::LeaseConfig::default(),
        );
        navarch_client::run_while_leader(elector, shutdown.clone(), |stop| {
            run_controllers(client.clone(), cfg.clone(), stop)
        })
        .await;
    } else {
        run_controllers(client, cfg.clone(), shutdown.clone()).await;
    }
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), http).await;
    Ok(())
}
