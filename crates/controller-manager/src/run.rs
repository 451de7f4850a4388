//! Wiring: [`run_controllers`] opens one watch per kind the controllers use ([`Informers`], shared
//! reflectors: each store updated before the controllers following it hear of the change), starts every
//! controller through its own module's `spawn` ([`Wiring`]), and drains them at shutdown; [`run`] runs
//! them while this instance leads.

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use navarch_api::v1::{
    CertificateSigningRequest, ClusterRole, ConfigMap, ControllerRevision, CronJob, DaemonSet, Deployment,
    Endpoints, HorizontalPodAutoscaler, Job, Lease, Namespace, Node, PersistentVolume, PersistentVolumeClaim,
    Pod, PodDisruptionBudget, ReplicaSet, ReplicationController, ResourceQuota, Secret, Service,
    ServiceAccount, StatefulSet, StorageClass,
};
use navarch_client::{Action, Client, Controller, EventRecorder, SharedReflector, WatcherConfig};
use navarch_daemon::{Admin, Daemon, Election, run_elected};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

const EVENT_QUEUE: usize = 1000;
/// How long stopping controllers may take at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// Declares [`Informers`]: a field per kind, the shared reflector watching it in a namespace ("": all).
macro_rules! informers {
    ($($field:ident: $kind:ty = $namespace:expr),* $(,)?) => {
        /// The shared reflectors: one watch per kind, followed by every controller that reads or is
        /// triggered by the kind.
        pub struct Informers {
            $(pub $field: SharedReflector<$kind>,)*
        }

        impl Informers {
            pub fn open(client: &Client) -> Informers {
                Informers {
                    $($field: SharedReflector::new(client.api::<$kind>($namespace), WatcherConfig::default()),)*
                }
            }

            /// Starts every watch in `tasks`, until `stop`.
            fn spawn(self, tasks: &mut JoinSet<()>, stop: &CancellationToken) {
                $(tasks.spawn(self.$field.run(stop.clone()));)*
            }
        }
    };
}

informers! {
    pods: Pod = "",
    replicasets: ReplicaSet = "",
    replication_controllers: ReplicationController = "",
    deployments: Deployment = "",
    daemonsets: DaemonSet = "",
    controller_revisions: ControllerRevision = "",
    statefulsets: StatefulSet = "",
    jobs: Job = "",
    cronjobs: CronJob = "",
    pod_disruption_budgets: PodDisruptionBudget = "",
    horizontal_pod_autoscalers: HorizontalPodAutoscaler = "",
    services: Service = "",
    endpoints: Endpoints = "",
    configmaps: ConfigMap = "",
    secrets: Secret = "",
    nodes: Node = "",
    leases: Lease = "kube-node-lease",
    namespaces: Namespace = "",
    service_accounts: ServiceAccount = "",
    cluster_roles: ClusterRole = "",
    certificate_signing_requests: CertificateSigningRequest = "",
    persistent_volumes: PersistentVolume = "",
    persistent_volume_claims: PersistentVolumeClaim = "",
    storage_classes: StorageClass = "",
    resource_quotas: ResourceQuota = "",
}

/// What each controller's `spawn` wires itself into: the client, the shared reflectors (subscribe to
/// them and take their stores; they start once every controller is wired), and the task set that
/// runs until `stop`.
pub struct Wiring {
    pub client: Client,
    pub informers: Informers,
    /// Reconciles at once per controller (`--workers`).
    pub workers: usize,
    pub stop: CancellationToken,
    tasks: JoinSet<()>,
}

/// The reconcile side of a controller of K.
pub trait Reconciler<K>: Send + Sync + 'static {
    type Error: Display + Send + 'static;
    fn reconcile(&self, obj: Arc<K>) -> impl Future<Output = Result<Action, Self::Error>> + Send;
}

impl Wiring {
    pub fn new(client: Client, workers: usize, stop: CancellationToken) -> Wiring {
        let informers = Informers::open(&client);
        Wiring { client, informers, workers, stop, tasks: JoinSet::new() }
    }

    /// Runs `task` with the controllers (it should end on `stop`).
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// An event recorder reporting as `component`.
    pub fn recorder(&mut self, component: &str) -> EventRecorder {
        let (events, sender) = EventRecorder::new(self.client.clone(), component, "", EVENT_QUEUE);
        self.tasks.spawn(sender);
        events
    }

    /// Runs `controller` with `ctx` reconciling; a failed reconcile is retried after `retry`.
    pub fn controller<K, R>(&mut self, controller: Controller<K>, ctx: Arc<R>, retry: Duration)
    where
        K: navarch_api::Resource,
        R: Reconciler<K>,
    {
        let stop = self.stop.clone();
        self.tasks.spawn(controller.run(
            |obj, ctx: Arc<R>| async move { ctx.reconcile(obj).await },
            move |_, _, _| Action::requeue(retry),
            ctx,
            stop,
        ));
    }

    /// Starts the watches, waits for `stop`, then for the controllers to finish.
    async fn run(self) {
        let Wiring { informers, mut tasks, stop, .. } = self;
        informers.spawn(&mut tasks, &stop);
        stop.cancelled().await;
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(DRAIN, drain).await.is_err() {
            tracing::warn!("controllers did not stop in time");
        }
    }
}

/// What the controllers are given besides the client and settings: the PEM bundle the root CA
/// publisher publishes, and the CA the CSR signer issues from (if configured).
pub struct Credentials {
    pub root_ca: String,
    pub signing: Option<Arc<crate::certificates::Signing>>,
}

/// Runs the controllers until `shutdown` (called while this instance leads).
pub async fn run_controllers(
    client: Client,
    cfg: Config,
    credentials: Arc<Credentials>,
    shutdown: CancellationToken,
) {
    let mut w = Wiring::new(client, cfg.workers, shutdown);
    crate::replicaset::spawn(&mut w);
    crate::replicaset::spawn_replication_controllers(&mut w);
    crate::deployment::spawn(&mut w);
    crate::daemonset::spawn(&mut w);
    crate::statefulset::spawn(&mut w);
    crate::job::spawn(&mut w);
    crate::disruption::spawn(&mut w);
    crate::hpa::spawn(&mut w);
    crate::cronjob::spawn(&mut w);
    crate::endpoints::spawn(&mut w);
    crate::service_lb::spawn(&mut w);
    crate::node_ipam::spawn(&mut w, cfg.pod_subnets);
    crate::node_lifecycle::spawn(&mut w, cfg.node_lifecycle);
    crate::namespaces::spawn(&mut w);
    crate::garbage_collector::spawn(&mut w);
    crate::pod_gc::spawn(&mut w);
    crate::clusterrole_aggregation::spawn(&mut w);
    crate::root_ca_publisher::spawn(&mut w, credentials.root_ca.clone());
    crate::certificates::spawn(&mut w, credentials.signing.clone());
    crate::volume::spawn(&mut w);
    crate::resource_quota::spawn(&mut w);
    w.run().await;
}

/// The controller-manager: the admin server, then the controllers while this instance leads the
/// `kube-controller-manager` Lease (or alone), until shutdown.
pub async fn run(daemon: Daemon<Config>) -> anyhow::Result<()> {
    let cfg = &daemon.config;
    let connection = navarch_client::Connection::for_daemon(cfg.kubeconfig.as_deref(), &cfg.server)?;
    let root_ca = match &cfg.root_ca_file {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("root_ca_file: reading {}", path.display()))?
        }
        None => connection.ca_pem.clone(),
    };
    let root_ca = String::from_utf8(root_ca).context("root_ca_file: not a PEM bundle (UTF-8)")?;
    let signing = match (&cfg.cluster_signing_cert_file, &cfg.cluster_signing_key_file) {
        (Some(cert), Some(key)) => {
            let authority = navarch_pki::Authority::load(cert, key).context("the cluster signing CA")?;
            tracing::info!(cert = %cert.display(), "signing CertificateSigningRequests");
            Some(Arc::new(crate::certificates::Signing {
                authority,
                max_validity: cfg.cluster_signing_duration,
            }))
        }
        _ => None,
    };
    let credentials = Arc::new(Credentials { root_ca, signing });
    let client = Client::connect_lazy(&connection)?;
    daemon.serve_admin(Admin::new(""), cfg.http_listen).await?;
    tracing::info!(server = %cfg.server, "controller-manager starting");
    let election = Election {
        elect: cfg.leader_elect,
        lease: "kube-controller-manager",
        identity: cfg.identity.as_deref(),
    };
    run_elected(&client, election, daemon.shutdown.clone(), |stop| {
        run_controllers(client.clone(), cfg.clone(), credentials.clone(), stop)
    })
    .await;
    Ok(())
}
