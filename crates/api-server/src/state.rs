//! What both front doors (gRPC in [`crate::service`], REST in [`crate::rest`]) share: one registry, one
//! set of watch caches, one kubelet relay, one set of metrics, and the tasks serving watch streams.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::error::ApiError;
use crate::kubelet_relay::KubeletRelay;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::watch_cache::WatchCache;

/// What authentication and authorization keep for the request handlers, set once at start (after the
/// state exists: its stores watch through it) and before the first request is served.
pub struct Security {
    pub authorization: crate::authorization::Authorization,
    pub rbac_stores: crate::authorization::feed::RbacStores,
    /// The stores tokens are bound to (ServiceAccounts, Pods, Nodes, Secrets).
    pub bound: Arc<crate::authenticate::BoundStores>,
    /// Bearer tokens (TokenReview); `None` without `--service-account-key-file` and bootstrap tokens.
    pub tokens: Option<Arc<crate::authenticate::ClusterTokens>>,
    /// Signs TokenRequests; `None` without `--service-account-signing-key-file`.
    pub token_issuer: Option<Arc<crate::authn::TokenIssuer>>,
}

pub struct ApiState {
    /// Set once at start; see [`ApiState::security`].
    pub security: std::sync::OnceLock<Arc<Security>>,
    pub registry: Arc<Registry>,
    pub kubelets: KubeletRelay,
    pub caches: HashMap<&'static str, Arc<WatchCache>>,
    pub metrics: Arc<Metrics>,
    pub bookmark_interval: Duration,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
}

impl ApiState {
    /// Authentication's and authorization's state (always set while requests are served).
    pub fn security(&self) -> Result<&Arc<Security>, ApiError> {
        self.security.get().ok_or_else(|| ApiError::Unavailable("the api-server is starting".into()))
    }

    /// Records a request's outcome and latency.
    pub fn observe<T>(&self, verb: &'static str, kind: &str, start: Instant, r: &Result<T, ApiError>) {
        let code = match r {
            Ok(_) => "OK",
            Err(e) => e.code(),
        };
        self.metrics.observe(verb, kind, code, start.elapsed().as_secs_f64());
    }

    /// Runs one request in a span carrying its object key, recording its outcome.
    pub async fn call<T>(
        &self,
        verb: &'static str,
        kind: &str,
        key: &str,
        f: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let start = Instant::now();
        let span = tracing::debug_span!("request", verb, kind, key);
        let r = f.instrument(span).await;
        self.observe(verb, kind, start, &r);
        r
    }
}
