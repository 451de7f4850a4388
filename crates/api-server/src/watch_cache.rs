//! Watch fan-out (Kubernetes' "cacher"): one upstream etcd watch per kind, fanned out in memory to any
//! number of watchers.
//!
//! The cache keeps the last `history` events of its kind in a ring buffer, so a client can resume a
//! watch from a recent resourceVersion (also right after an api-server restart: the buffer is filled
//! from etcd's own history on start). Every event with a revision above the cache's *floor* is in the
//! buffer; resuming from below the floor is `Expired` and the client relists.
//!
//! Each watcher has a bounded queue. Delivery never blocks the cache: a watcher whose queue is full is
//! dropped and its stream ends with `Expired("watcher fell behind; relist")`, so a slow client costs at
//! most `watcher_buffer` queued events (shared `Arc`s, encoded once for all watchers).
//!
//! Resuming at a revision that several events share (objects written in one transaction) sends those
//! events again, since the client may have seen only part of them.
//!
//! Filtering is per watcher on both the new and the previous object, like Kubernetes: an object that
//! stops matching a watcher's selectors is delivered to it as DELETED, one that starts matching as
//! ADDED.
//!
//! The parts live in their own files: `fanout` (filters, the history ring and the registered
//! watchers), `upstream` (the etcd watch), `latest` (the latest object per key, which gives each event
//! its previous object). Field selectors are [`crate::field_selector`]'s.

mod fanout;
mod latest;
mod upstream;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use etcd_client::GetOptions;
use futures::Stream;
use navarch_api::{KindInfo, Object};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::fanout::{BufferedEvent, LIVE, RESET, State, Watcher};
pub use self::fanout::{WatchFilter, transition};
use self::upstream::{Upstream, progress_is_ordered, watched_prefix};
use crate::encryption::Transformers;
pub use crate::field_selector::FieldSelector;
use crate::storage::Storage;

/// How often [`WatchCache::wait_for_revision`] repeats its request for a progress notification.
const PROGRESS_RETRY: Duration = Duration::from_millis(200);

/// Message of the `Expired` that ends a watcher's stream when it fell behind or the cache reset.
pub const FELL_BEHIND: &str = "watcher fell behind; relist";

#[derive(Debug, Clone)]
pub struct WatchCacheConfig {
    /// Events kept for resuming watches.
    pub history: usize,
    /// Queue length of each watcher; a watcher whose queue is full is dropped with `Expired`.
    pub watcher_buffer: usize,
    /// How stored values turn into plaintext (encryption at rest); the default reads them as they are.
    pub transformers: Transformers,
}

impl Default for WatchCacheConfig {
    fn default() -> Self {
        WatchCacheConfig { history: 5000, watcher_buffer: 1000, transformers: Transformers::default() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WatchCacheError {
    /// The requested revision is older than the history held, or the watcher fell behind: relist.
    #[error("{0}")]
    Expired(String),
    #[error("etcd: {0}")]
    Etcd(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, shared by every watcher it is delivered to.
#[derive(Debug)]
pub struct CachedEvent {
    pub event_type: EventType,
    /// The object with `metadata.resourceVersion` set to `revision` (for DELETED: the object as last
    /// stored, with the revision of the deletion).
    pub object: Arc<Object>,
    /// The protobuf encoding of `object`, encoded once for all watchers.
    pub raw: Vec<u8>,
    pub revision: i64,
}

impl CachedEvent {
    pub fn new(event_type: EventType, object: Object, revision: i64) -> CachedEvent {
        CachedEvent::shared(event_type, Arc::new(object), revision)
    }

    /// As [`CachedEvent::new`] with an object already shared (the upstream's latest objects hold it too).
    pub fn shared(event_type: EventType, object: Arc<Object>, revision: i64) -> CachedEvent {
        let raw = object.encode();
        CachedEvent { event_type, object, raw, revision }
    }

    fn retyped(&self, event_type: EventType) -> CachedEvent {
        CachedEvent {
            event_type,
            object: self.object.clone(),
            raw: self.raw.clone(),
            revision: self.revision,
        }
    }
}

struct Shared {
    kind: &'static KindInfo,
    history: usize,
    watcher_buffer: usize,
    state: Mutex<State>,
    /// The newest revision up to which every event of the kind has been published.
    revision: watch::Sender<i64>,
    /// Asks the upstream task for a progress notification now.
    progress_wanted: Notify,
    /// Cancelled when the upstream task has stopped.
    stopped: CancellationToken,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn advance(&self, rev: i64) {
        self.revision.send_if_modified(|r| {
            if rev > *r {
                *r = rev;
                true
            } else {
                false
            }
        });
    }

    fn publish(&self, entries: Vec<BufferedEvent>, last_revision: i64) {
        if !entries.is_empty() {
            let mut st = self.lock();
            for e in entries {
                st.publish(e, self.history, self.kind.kind);
            }
        }
        self.advance(last_revision);
    }

    /// Events were lost (compacted while disconnected): start over at `start`; every watcher relists.
    fn reset(&self, start: i64) {
        let mut st = self.lock();
        st.drop_watchers(RESET);
        st.buffer.clear();
        st.floor = start - 1;
        drop(st);
        self.advance(start - 1);
    }

    fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.drop_watchers(LIVE);
        st.buffer.clear();
        drop(st);
        self.stopped.cancel();
    }
}

/// The watch cache of one kind. Dropping it stops the upstream watch and ends every subscription.
pub struct WatchCache {
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl fmt::Debug for WatchCache {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("WatchCache")
            .field("kind", &self.shared.kind.kind)
            .field("revision", &self.revision())
            .field("floor", &self.floor())
            .finish()
    }
}

impl Drop for WatchCache {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl WatchCache {
    /// Starts the upstream watch of `kind`. `key_prefix` is the kind's prefix
    /// ([`codec::kind_prefix`]) or the storage root it is derived from.
    pub async fn start(
        etcd: etcd_client::Client,
        key_prefix: String,
        kind: &'static KindInfo,
        cfg: WatchCacheConfig,
        shutdown: CancellationToken,
    ) -> Result<Arc<WatchCache>, WatchCacheError> {
        let prefix = watched_prefix(&key_prefix, kind);
        let mut etcd = etcd;
        let current = etcd
            .get(prefix.as_bytes(), Some(GetOptions::new().with_count_only()))
            .await
            .map_err(|e| WatchCacheError::Etcd(format!("reading the current revision: {e}")))?
            .header()
            .map(|h| h.revision())
            .unwrap_or(0);
        let ordered_progress = match etcd.status().await {
            Ok(s) => progress_is_ordered(s.version()),
            Err(e) => {
                tracing::warn!(kind = kind.kind, error = %e, "reading the etcd version");
                false
            }
        };
        let history = cfg.history.max(1);
        let start =
            current.saturating_sub(i64::try_from(history).unwrap_or(i64::MAX)).saturating_add(1).max(1);
        let (revision, _) = watch::channel(start - 1);
        let shared = Arc::new(Shared {
            kind,
            history,
            watcher_buffer: cfg.watcher_buffer.max(1),
            state: Mutex::new(State {
                buffer: VecDeque::new(),
                floor: start - 1,
                watchers: HashMap::new(),
                next_id: 0,
                closed: false,
            }),
            revision,
            progress_wanted: Notify::new(),
            stopped: CancellationToken::new(),
        });
        let cancel = shutdown.child_token();
        let storage = Storage::new(etcd.clone(), Vec::new()).with_transformers(cfg.transformers.clone());
        let upstream = Upstream {
            shared: shared.clone(),
            client: etcd.watch_client(),
            storage,
            latest: None,
            prefix: prefix.clone(),
            cancel: cancel.clone(),
            ordered_progress,
            transformers: cfg.transformers,
        };
        let span = tracing::info_span!("watch_cache", kind = kind.kind);
        tokio::spawn(upstream.run(start).instrument(span));
        tracing::debug!(kind = kind.kind, %prefix, current, start, ordered_progress, "watch cache started");
        Ok(Arc::new(WatchCache { shared, cancel }))
    }

    pub fn kind(&self) -> &'static KindInfo {
        self.shared.kind
    }

    /// Events with revision > `after` matching `filter`, then live events, in revision order.
    /// `Err(Expired)` when `after` is older than the history held.
    pub fn subscribe(&self, after: i64, filter: WatchFilter) -> Result<Subscription, WatchCacheError> {
        let mut st = self.shared.lock();
        if st.closed {
            return Ok(Subscription::ended());
        }
        if after < st.floor {
            return Err(WatchCacheError::Expired(format!(
                "too old resource version: {after} ({})",
                st.floor
            )));
        }
        let first = st.resume_index(after);
        let snapshot: VecDeque<Arc<CachedEvent>> =
            st.buffer.range(first..).filter_map(|e| e.for_filter(&filter)).collect();
        let (tx, rx) = mpsc::channel(self.shared.watcher_buffer);
        let end = Arc::new(AtomicU8::new(LIVE));
        let id = st.next_id;
        st.next_id += 1;
        st.watchers.insert(id, Watcher { after, filter, tx, end: end.clone() });
        drop(st);
        Ok(Subscription { snapshot, rx: Some(rx), end, registration: Some((self.shared.clone(), id)) })
    }

    /// The newest etcd revision up to which the cache has seen every event of its kind.
    pub fn revision(&self) -> i64 {
        *self.shared.revision.borrow()
    }

    /// Every event with a revision above this is held (resuming from below it is `Expired`).
    pub fn floor(&self) -> i64 {
        self.shared.lock().floor
    }

    /// Number of registered watchers.
    pub fn watchers(&self) -> usize {
        self.shared.lock().watchers.len()
    }

    /// Waits (at most `timeout`) until the cache has seen revision `rev`, asking etcd for progress
    /// notifications meanwhile. False on timeout or shutdown.
    pub async fn wait_for_revision(&self, rev: i64, timeout: Duration) -> bool {
        let mut rx = self.shared.revision.subscribe();
        if *rx.borrow() >= rev {
            return true;
        }
        let deadline = Instant::now() + timeout;
        loop {
            self.shared.progress_wanted.notify_one();
            let step = deadline.min(Instant::now() + PROGRESS_RETRY);
            tokio::select! {
                r = tokio::time::timeout_at(step, rx.wait_for(|r| *r >= rev)) => match r.map(|seen| seen.is_ok()) {
                    Ok(true) => return true,
                    Ok(false) => return false,
                    Err(_) => {}
                },
                _ = self.shared.stopped.cancelled() => return false,
            }
            if Instant::now() >= deadline {
                return *rx.borrow() >= rev;
            }
        }
    }
}

/// One watcher's events: first the buffered history it asked for, then live events. Ends with
/// `Err(Expired)` when the watcher fell behind or the cache reset, and with `None` on shutdown.
pub struct Subscription {
    snapshot: VecDeque<Arc<CachedEvent>>,
    rx: Option<mpsc::Receiver<Arc<CachedEvent>>>,
    end: Arc<AtomicU8>,
    registration: Option<(Arc<Shared>, u64)>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("snapshot", &self.snapshot.len())
            .field("queued", &self.rx.as_ref().map(|rx| rx.len()))
            .finish()
    }
}

impl Subscription {
    fn ended() -> Subscription {
        Subscription {
            snapshot: VecDeque::new(),
            rx: None,
            end: Arc::new(AtomicU8::new(LIVE)),
            registration: None,
        }
    }

    fn finish(&mut self) {
        self.snapshot.clear();
        self.rx = None;
        self.deregister();
    }

    fn deregister(&mut self) {
        if let Some((shared, id)) = self.registration.take() {
            shared.lock().watchers.remove(&id);
        }
    }

    fn expired(&self) -> bool {
        self.end.load(Ordering::SeqCst) != LIVE
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.deregister();
    }
}

impl Stream for Subscription {
    type Item = Result<Arc<CachedEvent>, WatchCacheError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.rx.is_none() {
            return Poll::Ready(None);
        }
        if this.expired() {
            this.finish();
            return Poll::Ready(Some(Err(WatchCacheError::Expired(FELL_BEHIND.into()))));
        }
        if let Some(ev) = this.snapshot.pop_front() {
            return Poll::Ready(Some(Ok(ev)));
        }
        let Some(rx) = this.rx.as_mut() else { return Poll::Ready(None) };
        match rx.poll_recv(cx) {
            Poll::Ready(Some(ev)) => Poll::Ready(Some(Ok(ev))),
            Poll::Ready(None) => {
                let expired = this.expired();
                this.finish();
                Poll::Ready(expired.then(|| Err(WatchCacheError::Expired(FELL_BEHIND.into()))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
