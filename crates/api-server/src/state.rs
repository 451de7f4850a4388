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

pub struct ApiState {
    pub registry: Arc<Registry>,
    pub kubelets: KubeletRelay,
    pub caches: HashMap<&'static str, Arc<WatchCache>>,
    pub metrics: Arc<Metrics>,
    pub bookmark_interval: Duration,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
}

impl ApiState {
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
