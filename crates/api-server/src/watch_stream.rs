//! Starting a watch for either front door: the filter, the initial state (for a watch without a
//! resourceVersion), the subscription to the kind's watch cache, bookmarks, and the task that feeds a
//! channel of [`WatchItem`]s. The gRPC service turns items into `WatchEvent` messages, the REST API into
//! newline-delimited JSON.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use navarch_api::selector::Selector;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::error::ApiError;
use crate::metrics::KindLabels;
use crate::registry::{ListOptions, kind_of};
use crate::state::ApiState;
use crate::watch_cache::{CachedEvent, EventType, FieldSelector, WatchCacheError, WatchFilter};

/// How long a watch started from a list waits for the cache to catch up with the list's revision.
const CACHE_CATCH_UP: Duration = Duration::from_secs(5);
/// How long a watch from a revision the cache has not reached yet waits for it.
const TOO_LARGE_WAIT: Duration = Duration::from_secs(3);
/// Items buffered between a watch's task and the client's stream. Small: the watch cache's per-watcher
/// buffer is what absorbs bursts, and a slow client must fill it to be detected.
const STREAM_BUFFER: usize = 8;

/// What a client asks to watch.
#[derive(Debug, Clone, Default)]
pub struct WatchParams {
    pub kind: String,
    /// Empty: all namespaces (or a cluster-scoped kind).
    pub namespace: String,
    pub label_selector: String,
    pub field_selector: String,
    /// Empty or "0": the current state first (ADDED events), then changes. Otherwise changes after it.
    pub resource_version: String,
    pub allow_bookmarks: bool,
}

/// One item of a watch stream.
#[derive(Debug)]
pub enum WatchItem {
    /// An object changed (shared by every watcher it is delivered to).
    Event(Arc<CachedEvent>),
    /// Every change up to `revision` has been sent.
    Bookmark { revision: i64 },
    /// The stream ends: the watcher fell behind (`Expired`: relist) or storage failed.
    End(ApiError),
}

impl EventType {
    /// Kubernetes' name of the event type.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

fn rev_param(rv: &str) -> Result<i64, ApiError> {
    rv.parse::<i64>().ok().filter(|r| *r >= 0).ok_or_else(|| {
        ApiError::BadRequest(format!("resourceVersion: Invalid value: {rv:?}: must be a revision number"))
    })
}

fn end_error(e: WatchCacheError) -> ApiError {
    match e {
        WatchCacheError::Expired(m) => ApiError::Expired(m),
        WatchCacheError::Etcd(m) => ApiError::Unavailable(m),
    }
}

fn watch_filter(p: &WatchParams, namespaced: bool) -> Result<WatchFilter, ApiError> {
    let labels = Selector::parse(&p.label_selector)
        .map_err(|e| ApiError::BadRequest(format!("labelSelector: {e}")))?;
    let fields = FieldSelector::parse(&p.field_selector)
        .map_err(|e| ApiError::BadRequest(format!("fieldSelector: {e}")))?;
    fields.check_supported(&p.kind).map_err(|e| ApiError::BadRequest(format!("fieldSelector: {e}")))?;
    let namespace = if namespaced { p.namespace.clone() } else { String::new() };
    Ok(WatchFilter { namespace, labels, fields })
}

impl ApiState {
    /// Starts a watch. The returned channel closes when the client goes away (drop the receiver), the
    /// watcher falls behind (after an [`WatchItem::End`]) or the server shuts down.
    pub async fn watch(&self, p: &WatchParams) -> Result<mpsc::Receiver<WatchItem>, ApiError> {
        let info = kind_of(&p.kind)?;
        if !info.is_stored() {
            return Err(crate::resource_metrics::read_only(info, "watch"));
        }
        let cache = self
            .caches
            .get(info.kind)
            .cloned()
            .ok_or_else(|| ApiError::Internal(format!("no watch cache for {}", info.kind)))?;
        let filter = watch_filter(p, info.namespaced)?;
        // Empty or "0": the current state first, as ADDED events, then changes after it.
        let (initial, after) = if p.resource_version.is_empty() || p.resource_version == "0" {
            let opts = ListOptions {
                namespace: filter.namespace.clone(),
                label_selector: p.label_selector.clone(),
                field_selector: p.field_selector.clone(),
                ..Default::default()
            };
            let l = self.registry.list(info.kind, &opts).await?;
            if !cache.wait_for_revision(l.resource_version, CACHE_CATCH_UP).await {
                return Err(ApiError::Unavailable(format!("watch cache for {} is behind", info.kind)));
            }
            (l.items, l.resource_version)
        } else {
            let after = rev_param(&p.resource_version)?;
            // A revision from the future (e.g. another api-server's): wait briefly, like Kubernetes.
            if after > cache.revision() && !cache.wait_for_revision(after, TOO_LARGE_WAIT).await {
                return Err(ApiError::Expired(format!(
                    "Too large resource version: {after}, current: {}",
                    cache.revision()
                )));
            }
            (Vec::new(), after)
        };
        let mut sub = cache.subscribe(after, filter).map_err(end_error)?;

        let (tx, rx) = mpsc::channel::<WatchItem>(STREAM_BUFFER);
        let kind = info.kind;
        let bookmarks = p.allow_bookmarks;
        let interval = self.bookmark_interval;
        let shutdown = self.shutdown.clone();
        let metrics = self.metrics.clone();
        let labels = KindLabels { kind: kind.to_string() };
        metrics.watchers.get_or_create(&labels).inc();
        let span = tracing::debug_span!("watch", kind, namespace = %p.namespace, after);
        self.tasks.spawn(
            async move {
                let sent = metrics.watch_events.get_or_create(&labels).clone();
                let run = async {
                    for obj in initial {
                        let revision = obj.meta().resource_version.parse().unwrap_or(after);
                        let item =
                            WatchItem::Event(Arc::new(CachedEvent::new(EventType::Added, obj, revision)));
                        if tx.send(item).await.is_err() {
                            return;
                        }
                        sent.inc();
                    }
                    let mut ticker =
                        tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
                    loop {
                        tokio::select! {
                            // Events first: a bookmark must not overtake events already queued.
                            biased;
                            ev = sub.next() => match ev {
                                Some(Ok(e)) => {
                                    if tx.send(WatchItem::Event(e)).await.is_err() { return; }
                                    sent.inc();
                                }
                                Some(Err(e)) => {
                                    let _ = tx.send(WatchItem::End(end_error(e))).await;
                                    return;
                                }
                                None => return,
                            },
                            _ = ticker.tick(), if bookmarks => {
                                // Read the revision first, then send every event already queued: an event
                                // published between the poll above and this read is then not overtaken.
                                let revision = cache.revision();
                                while let Some(Some(ev)) = sub.next().now_or_never() {
                                    match ev {
                                        Ok(e) => {
                                            if tx.send(WatchItem::Event(e)).await.is_err() { return; }
                                            sent.inc();
                                        }
                                        // The watcher fell behind: report it (never a bookmark past
                                        // events it did not get).
                                        Err(e) => {
                                            let _ = tx.send(WatchItem::End(end_error(e))).await;
                                            return;
                                        }
                                    }
                                }
                                if tx.send(WatchItem::Bookmark { revision }).await.is_err() { return; }
                            }
                            _ = tx.closed() => return,
                        }
                    }
                };
                tokio::select! {
                    _ = run => {}
                    _ = shutdown.cancelled() => {}
                }
                metrics.watchers.get_or_create(&labels).dec();
            }
            .instrument(span),
        );
        Ok(rx)
    }
}
