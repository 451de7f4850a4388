//! The navarch api-server: the only process that talks to etcd.
//!
//! Owns validation and defaulting of every kind ([`validation`]), Kubernetes' storage semantics
//! ([`registry`]: create-if-absent, compare-and-swap updates with resourceVersion = etcd revision,
//! finalizers, graceful deletion, binding), the generic gRPC service of proto/navarch/apiserver/v1
//! ([`service`]), watch fan-out (one etcd watch per kind, many cheap watchers: [`watch_cache`]), the
//! health checks and Prometheus metrics on the daemon shell's admin server ([`health`], [`metrics`]),
//! the relay of pods/log, pods/exec and pods/portforward to kubelets ([`kubelet_relay`]; port-forward's
//! SPDY/3.1 sessions: [`spdy`]), and the resource metrics API `metrics.k8s.io` with the pipeline that
//! scrapes the kubelets' stats ([`resource_metrics`]). Services get their
//! cluster IPs and node ports from `--service-cluster-ip-range` (default `10.96.0.0/12`) and
//! `--service-node-port-range` (default `30000-32767`), recorded in etcd in the same transaction as the
//! Service ([`allocation`]).

#![forbid(unsafe_code)]

pub mod admission;
pub mod allocation;
pub mod audit;
pub mod authenticate;
pub mod authn;
pub mod authorization;
pub mod authz;
pub mod codec;
pub mod config;
pub mod encryption;
pub mod error;
pub mod eviction;
pub mod field_selector;
pub mod health;
pub mod impersonation;
pub mod kubelet_relay;
pub mod kubernetes_service;
pub mod local_store;
pub mod metrics;
pub mod openapi;
pub mod recent_writes;
pub mod registry;
pub mod request_context;
pub mod request_info;
pub mod resource_metrics;
pub mod rest;
pub mod server;
pub mod service;
pub mod spdy;
pub mod state;
pub mod storage;
pub mod user_info;
pub mod validation;
pub mod watch_cache;
pub mod watch_stream;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use navarch_api::KINDS;
use navarch_api::proto::api_server_server::ApiServerServer;
use navarch_daemon::{Admin, Daemon};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

use crate::registry::Registry;
use crate::storage::Storage;
use crate::watch_cache::{WatchCache, WatchCacheConfig};

/// Connections to etcd for requests (the watch caches share the first).
const ETCD_CONNECTIONS: usize = 8;
/// Largest gRPC message accepted or sent (lists of tens of thousands of objects).
const MAX_MESSAGE_BYTES: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("connecting to etcd at {endpoints:?}: {source}")]
    Etcd { endpoints: Vec<String>, source: etcd_client::Error },
    #[error("etcd did not become reachable at {0:?}")]
    EtcdUnreachable(Vec<String>),
    #[error("starting the watch cache for {kind}: {reason}")]
    WatchCache { kind: &'static str, reason: String },
    #[error("listening on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Admin(#[from] navarch_daemon::LifecycleError),
    #[error(transparent)]
    Pki(#[from] navarch_pki::PkiError),
    #[error("--encryption-provider-config: error while parsing file: {0}")]
    Encryption(#[from] encryption::ConfigError),
    #[error("audit: {0}")]
    Audit(#[from] audit::AuditError),
    #[error("service account keys: {0}")]
    ServiceAccountKeys(#[from] authn::KeyError),
    #[error("authorization_mode: {0}")]
    AuthorizationMode(String),
    #[error("service account tokens: {0}")]
    ServiceAccountTokens(#[from] authn::service_account::ConfigError),
}

/// The settings of ServiceAccount tokens.
fn token_config(config: &Config) -> authn::TokenConfig {
    let mut tokens = authn::TokenConfig::new(config.service_account_issuer.clone());
    tokens.api_audiences = config.api_audiences.clone();
    tokens.max_expiration = config.service_account_max_token_expiration;
    tokens
}

/// The stores token authentication reads, and the bearer-token authenticator over them.
fn cluster_tokens(
    config: &Config,
    state: &Arc<state::ApiState>,
    pods: Arc<local_store::LocalStore>,
) -> Result<(Arc<authenticate::BoundStores>, Option<Arc<authenticate::ClusterTokens>>), RunError> {
    let tokens = token_config(config);
    tokens.validate()?;
    let store = |kind, namespace| local_store::LocalStore::start(state, kind, namespace, None);
    let objects = Arc::new(authenticate::BoundStores {
        service_accounts: store("ServiceAccount", ""),
        pods,
        nodes: store("Node", ""),
        secrets: store("Secret", ""),
        bootstrap_secrets: store("Secret", "kube-system"),
    });
    let service_accounts = if config.service_account_key_file.is_empty() {
        tracing::warn!("no --service-account-key-file: ServiceAccount tokens do not authenticate");
        None
    } else {
        let keys = authn::VerifyingKeys::from_pem_files(&config.service_account_key_file)?;
        Some(authn::TokenAuthenticator::new(&tokens, keys))
    };
    let audiences = tokens.api_audiences().to_vec();
    let bootstrap =
        config.enable_bootstrap_token_auth.then(|| authn::BootstrapAuthenticator::new(audiences.clone()));
    if service_accounts.is_none() && bootstrap.is_none() {
        return Ok((objects, None));
    }
    let bearer = authn::BearerTokenAuthenticator { service_accounts, bootstrap };
    Ok((objects.clone(), Some(Arc::new(authenticate::ClusterTokens { bearer, audiences, objects }))))
}

/// The signer of TokenRequests.
fn token_issuer(config: &Config) -> Result<Option<Arc<authn::TokenIssuer>>, RunError> {
    let Some(path) = &config.service_account_signing_key_file else { return Ok(None) };
    let key = authn::SigningKey::from_pem_file(path)?;
    Ok(Some(Arc::new(authn::TokenIssuer::new(key, &token_config(config))?)))
}

/// Authentication's and authorization's state: stores, the RBAC index, the default policy.
async fn security(config: &Config, state: &Arc<state::ApiState>) -> Result<Arc<state::Security>, RunError> {
    // The Node authorizer's graph follows the same Pod store tokens are checked against.
    let graph = Arc::new(authz::node::NodeGraph::new());
    let pods = local_store::LocalStore::start(state, "Pod", "", Some(graph.on_change()));
    // ... and the volumes, which reach a node through the claims of its pods.
    local_store::LocalStore::start(state, "PersistentVolume", "", Some(graph.on_volume_change()));
    let (bound, tokens) = cluster_tokens(config, state, pods)?;
    let rbac = Arc::new(authz::RbacAuthorizer::new());
    let mut delay = Duration::from_millis(200);
    loop {
        match authorization::default_policy::reconcile(&state.registry).await {
            Ok(0) => break,
            Ok(n) => {
                tracing::info!(objects = n, "default RBAC policy reconciled");
                break;
            }
            Err(e) => tracing::warn!(error = %e, "reconciling the default RBAC policy"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = state.shutdown.cancelled() => break,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    // The stores start after the defaults are written, so their first list has them; requests are
    // served once the index holds the stored policy (before that every request would be refused).
    let rbac_stores = authorization::feed::start(state, &rbac);
    while !rbac_stores.synced() && !state.shutdown.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    state.registry.set_admission(Arc::new(authorization::admission::SecurityAdmission {
        rbac: rbac.clone(),
        bound: bound.clone(),
    }));
    let node: Arc<dyn authorization::Authorizer> = Arc::new(authz::node::NodeAuthorizer::new(graph));
    let modes =
        authorization::Mode::parse_all(&config.authorization_mode).map_err(RunError::AuthorizationMode)?;
    if modes.contains(&authorization::Mode::AlwaysAllow) {
        tracing::warn!(modes = ?config.authorization_mode, "authorization-mode AlwaysAllow: every request is allowed");
    }
    let authorization = authorization::Authorization::with_modes(&modes, rbac, node);
    Ok(Arc::new(state::Security {
        authorization,
        rbac_stores,
        bound,
        tokens,
        token_issuer: token_issuer(config)?,
    }))
}

/// How values are stored: encrypted as `--encryption-provider-config` says, or as they are.
fn encryption_at_rest(config: &Config) -> Result<encryption::Transformers, RunError> {
    let Some(path) = &config.encryption_provider_config else {
        return Ok(encryption::Transformers::default());
    };
    let transformers = encryption::Transformers::load(path, &config.etcd_prefix)?;
    tracing::info!(resources = ?transformers.summary(), "encryption at rest");
    Ok(transformers)
}

/// A required path of the configuration (checked by `Config::finish`).
fn required(path: &Option<std::path::PathBuf>) -> &std::path::Path {
    path.as_deref().unwrap_or(std::path::Path::new(""))
}

fn read_pem(path: &std::path::Path) -> Result<Vec<u8>, RunError> {
    Ok(navarch_pki::files::read(path)?)
}

/// TLS to etcd when its endpoints are `https://`.
fn etcd_tls(config: &Config) -> Result<Option<etcd_client::TlsOptions>, RunError> {
    let Some(ca) = &config.etcd_cafile else { return Ok(None) };
    let mut tls =
        etcd_client::TlsOptions::new().ca_certificate(etcd_client::Certificate::from_pem(read_pem(ca)?));
    if let (Some(cert), Some(key)) = (&config.etcd_certfile, &config.etcd_keyfile) {
        tls = tls.identity(etcd_client::Identity::from_pem(read_pem(cert)?, read_pem(key)?));
    }
    Ok(Some(tls))
}

/// TLS to kubelets.
fn kubelet_tls(config: &Config) -> Result<tonic::transport::ClientTlsConfig, RunError> {
    let ca = read_pem(required(&config.kubelet_certificate_authority))?;
    let mut tls =
        tonic::transport::ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(ca));
    if let (Some(cert), Some(key)) = (&config.kubelet_client_certificate, &config.kubelet_client_key) {
        tls = tls.identity(tonic::transport::Identity::from_pem(read_pem(cert)?, read_pem(key)?));
    }
    Ok(tls)
}

async fn connect_etcd(
    config: &Config,
    shutdown: &CancellationToken,
) -> Result<etcd_client::Client, RunError> {
    let mut opts = etcd_client::ConnectOptions::new();
    if let Some(tls) = etcd_tls(config)? {
        opts = opts.with_tls(tls);
    }
    let opts = opts
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(30))
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=30 {
        let r = etcd_client::Client::connect(&config.etcd_endpoints, Some(opts.clone())).await;
        match r {
            Ok(mut c) => match c.status().await {
                Ok(_) => return Ok(c),
                Err(e) => tracing::warn!(attempt, error = %e, "etcd not ready"),
            },
            Err(e) => tracing::warn!(attempt, error = %e, "cannot reach etcd"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => break,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    Err(RunError::EtcdUnreachable(config.etcd_endpoints.clone()))
}

/// Runs the api-server until the daemon's shutdown token is cancelled, then drains within
/// `config.shutdown_timeout`.
pub async fn run(daemon: Daemon<Config>) -> Result<(), RunError> {
    serve(&daemon, daemon.shutdown.clone()).await
}

async fn serve(daemon: &Daemon<Config>, token: CancellationToken) -> Result<(), RunError> {
    let config = &daemon.config;
    let transformers = encryption_at_rest(config)?;
    let tls = navarch_pki::tls::server_config(
        required(&config.tls_cert_file),
        required(&config.tls_private_key_file),
        config.client_ca_file.as_deref(),
        navarch_pki::tls::ClientAuth::Optional,
        &[b"h2", b"http/1.1"],
    )?;
    let kubelet_tls = kubelet_tls(config)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| RunError::Listen { addr: config.listen, source })?;
    let etcd = connect_etcd(config, &token).await?;
    let mut pool = Vec::new();
    for _ in 1..ETCD_CONNECTIONS {
        pool.push(connect_etcd(config, &token).await?);
    }
    let storage = Storage::new(etcd.clone(), pool).with_transformers(transformers.clone());
    let ranges =
        allocation::Ranges { ips: config.service_cluster_ip_range, ports: config.service_node_port_range };
    let registry = Arc::new(
        Registry::new(storage.clone(), &config.etcd_prefix, ranges)
            .with_service_account_admission(config.admission_enabled(admission::service_account::PLUGIN))
            .with_storage_admission(admission::storage::Plugins {
                default_storage_class: config.admission_enabled(admission::storage::DEFAULT_STORAGE_CLASS),
                in_use_protection: config
                    .admission_enabled(admission::storage::STORAGE_OBJECT_IN_USE_PROTECTION),
            }),
    );
    let mut admin = Admin::new("");
    let metrics = Arc::new(metrics::Metrics::register(admin.registry()));
    let caches_ready = Arc::new(AtomicBool::new(false));
    health::register_checks(&mut admin, storage.clone(), caches_ready.clone());
    daemon.serve_admin(admin, config.http_listen).await?;
    let tasks = TaskTracker::new();

    let mut delay = Duration::from_millis(200);
    while let Err(e) = registry.bootstrap().await {
        tracing::warn!(error = %e, "creating the initial namespaces");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = token.cancelled() => return Ok(()),
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    match registry.services().repair().await {
        Ok(r) if r == allocation::RepairReport::default() => {}
        Ok(r) => tracing::info!(
            released = r.released,
            recorded = r.recorded,
            corrected = r.corrected,
            "repaired service allocations"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "repairing service allocations (will be retried at the next start)")
        }
    }
    tracing::info!(cluster_ips = %ranges.ips, node_ports = %ranges.ports, "service ranges");
    let kubernetes = kubernetes_service::KubernetesService::from_config(config);
    tasks.spawn(kubernetes_service::run(registry.clone(), kubernetes, token.child_token()));

    let mut caches = HashMap::new();
    for info in KINDS.iter().filter(|k| k.is_stored()) {
        let prefix = codec::kind_prefix(&config.etcd_prefix, info);
        let cfg = WatchCacheConfig {
            history: config.watch_history,
            watcher_buffer: config.watcher_buffer,
            transformers: transformers.clone(),
        };
        let cache = WatchCache::start(etcd.clone(), prefix, info, cfg, token.child_token())
            .await
            .map_err(|e| RunError::WatchCache { kind: info.kind, reason: e.to_string() })?;
        caches.insert(info.kind, cache);
    }
    caches_ready.store(true, Ordering::Release);

    let state = Arc::new(state::ApiState {
        security: std::sync::OnceLock::new(),
        kubelets: kubelet_relay::KubeletRelay { registry: registry.clone(), tls: kubelet_tls },
        registry,
        caches,
        metrics,
        bookmark_interval: config.bookmark_interval,
        shutdown: token.clone(),
        tasks: tasks.clone(),
    });
    let grpc = ApiServerServer::new(service::Service(state.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    // DefaultStorageClass reads the StorageClasses from the api-server's own store.
    state.registry.set_storage_classes(local_store::LocalStore::start(&state, "StorageClass", "", None));
    // LimitRanger reads the LimitRanges from the api-server's own store.
    if config.admission_enabled(admission::limit_range::PLUGIN) {
        state.registry.limit_ranger.set_store(local_store::LocalStore::start(&state, "LimitRange", "", None));
    } else {
        state.registry.limit_ranger.turn_off();
    }
    // Priority admission reads the PriorityClasses from the api-server's own store.
    if config.admission_enabled(admission::priority::PLUGIN) {
        state.registry.priority.set_store(local_store::LocalStore::start(&state, "PriorityClass", "", None));
    } else {
        state.registry.priority.turn_off();
    }
    // ResourceQuota admission reads the quotas from the api-server's own store.
    if config.admission_enabled(admission::resource_quota::PLUGIN) {
        state.registry.resource_quota.set_store(local_store::LocalStore::start(
            &state,
            "ResourceQuota",
            "",
            None,
        ));
    }
    let security = security(config, &state).await?;
    let _ = state.security.set(security.clone());
    // The resource metrics API reads labels from the Pod and Node stores authentication keeps.
    let resource_metrics = Arc::new(resource_metrics::ResourceMetrics::new(
        security.bound.pods.clone(),
        security.bound.nodes.clone(),
    ));
    state.registry.set_resource_metrics(resource_metrics.clone());
    resource_metrics::pipeline::start(&state, resource_metrics, config.metric_resolution);
    let front = server::FrontDoor::new(grpc, rest::RestApi::new(state));
    let tokens = security.tokens.iter().map(|t| t.clone() as Arc<dyn authenticate::BearerTokens>).collect();
    let audit = audit::start(config)?;
    let authenticator = Arc::new(authenticate::Authenticator {
        anonymous: config.anonymous_auth,
        tokens,
        security: Some(security),
        audit: audit.as_ref().map(|a| a.layer.clone()),
    });
    tracing::info!(listen = %config.listen, etcd = ?config.etcd_endpoints, "api-server serving gRPC and REST over TLS");
    let drain = config.shutdown_timeout;
    match audit {
        Some(audit) => {
            let service = authenticate::Authenticate::new(
                tower_layer::Layer::layer(&audit.layer, front),
                authenticator,
            );
            server::serve(listener, service, tls, token.clone(), drain).await;
            audit.log.close().await;
        }
        None => {
            let service = authenticate::Authenticate::new(front, authenticator);
            server::serve(listener, service, tls, token.clone(), drain).await;
        }
    }
    token.cancel();
    tasks.close();
    if tokio::time::timeout(config.shutdown_timeout, tasks.wait()).await.is_err() {
        tracing::warn!("watch streams did not finish in time");
    }
    Ok(())
}
