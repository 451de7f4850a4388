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
//! Filtering is per watcher on both the new and the previous object, like Kubernetes: an object that
//! stops matching a watcher's selectors is delivered to it as DELETED, one that starts matching as
//! ADDED.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use etcd_client::{EventType as EtcdEventType, GetOptions, KeyValue, WatchOptions, WatchResponse};
use futures::Stream;
use navarch_api::selector::Selector;
use navarch_api::{KindInfo, Object, Resource};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::codec;

/// How often the upstream watch asks etcd for a progress notification, so that [`WatchCache::revision`]
/// advances while the kind has no events (bookmarks rely on it).
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);
/// How often [`WatchCache::wait_for_revision`] repeats its request for a progress notification.
const PROGRESS_RETRY: Duration = Duration::from_millis(200);
/// Before etcd 3.4.25 / 3.5.8, a requested progress notification is not ordered with the events of the
/// stream (etcd-io/etcd#15220): it may overtake events still queued in etcd, and it is sent even while
/// the watch is still replaying history. With such an etcd a notification is only trusted after the
/// stream was quiet this long before it, and it is applied only after `PROGRESS_GRACE`.
const PROGRESS_QUIET: Duration = Duration::from_millis(300);
const PROGRESS_GRACE: Duration = Duration::from_millis(100);
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Message of the `Expired` that ends a watcher's stream when it fell behind or the cache reset.
pub const FELL_BEHIND: &str = "watcher fell behind; relist";

#[derive(Debug, Clone)]
pub struct WatchCacheConfig {
    /// Events kept for resuming watches.
    pub history: usize,
    /// Queue length of each watcher; a watcher whose queue is full is dropped with `Expired`.
    pub watcher_buffer: usize,
}

impl Default for WatchCacheConfig {
    fn default() -> Self {
        WatchCacheConfig { history: 5000, watcher_buffer: 1000 }
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
    fn new(event_type: EventType, object: Object, revision: i64) -> CachedEvent {
        let raw = object.encode();
        CachedEvent { event_type, object: Arc::new(object), raw, revision }
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

/// What one watcher wants to see.
#[derive(Debug, Clone, Default)]
pub struct WatchFilter {
    /// Empty: all namespaces.
    pub namespace: String,
    pub labels: Selector,
    pub fields: FieldSelector,
}

impl WatchFilter {
    /// Matches every object.
    pub fn everything() -> WatchFilter {
        WatchFilter::default()
    }

    pub fn is_everything(&self) -> bool {
        self.namespace.is_empty() && self.labels.is_empty() && self.fields.is_empty()
    }

    pub fn matches(&self, obj: &Object) -> bool {
        let meta = obj.meta();
        (self.namespace.is_empty() || meta.namespace == self.namespace)
            && self.labels.matches(&meta.labels)
            && self.fields.matches(obj)
    }
}

/// A field selector (`spec.nodeName=node-1,status.phase!=Running`): `(path, value, negated)` terms, all
/// of which must hold. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<(String, String, bool)>);

impl FieldSelector {
    pub fn everything() -> FieldSelector {
        FieldSelector(Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses `a=b,c!=d,e==f`. Values may be empty (`spec.nodeName=` selects unscheduled pods); `\,`,
    /// `\=`, `\!` and `\\` escape those characters in values. Empty terms are ignored.
    pub fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for term in split_unescaped(s, ',') {
            if term.trim().is_empty() {
                continue;
            }
            terms.push(parse_field_term(term)?);
        }
        Ok(FieldSelector(terms))
    }

    /// True when every term holds for `obj`. A path the kind does not support never matches (requests
    /// are checked with [`FieldSelector::check_supported`] first).
    pub fn matches(&self, obj: &Object) -> bool {
        self.0.iter().all(|(path, value, negated)| match obj.field(path) {
            Some(v) => (v == *value) != *negated,
            None => false,
        })
    }

    /// The first path that objects of `kind` cannot be selected on (every path when the kind is
    /// unknown).
    pub fn unsupported(&self, kind: &str) -> Option<&str> {
        let probe = Object::decode(kind, &[]).ok();
        self.0
            .iter()
            .map(|(path, _, _)| path.as_str())
            .find(|path| probe.as_ref().is_none_or(|o| o.field(path).is_none()))
    }

    /// `Err("field label not supported: <path>")` when a path is not supported for `kind`.
    pub fn check_supported(&self, kind: &str) -> Result<(), String> {
        match self.unsupported(kind) {
            Some(path) => Err(format!("field label not supported: {path}")),
            None => Ok(()),
        }
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, (path, value, negated)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let op = if *negated { "!=" } else { "=" };
            write!(f, "{sep}{path}{op}{}", escape_value(value))?;
        }
        Ok(())
    }
}

/// Splits at every `sep` not preceded by an escaping backslash.
fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_field_term(term: &str) -> Result<(String, String, bool), String> {
    let bad = |why: &str| format!("invalid field selector {:?}: {why}", term.trim());
    // The first unescaped operator; `!=` and `==` before `=` at the same position.
    let mut escaped = false;
    let mut found = None;
    for (i, c) in term.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        let rest = &term[i..];
        if let Some(op) = ["!=", "==", "="].into_iter().find(|op| rest.starts_with(op)) {
            found = Some((i, op));
            break;
        }
    }
    let Some((at, op)) = found else {
        return Err(bad("expected `field=value`, `field==value` or `field!=value`"));
    };
    let path = term[..at].trim();
    if path.is_empty() {
        return Err(bad("missing field path"));
    }
    if let Some(c) = path.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(bad(&format!("unexpected {c:?} in field path")));
    }
    let value = unescape_value(term[at + op.len()..].trim()).map_err(|e| bad(&e))?;
    Ok((path.to_string(), value, op == "!="))
}

fn unescape_value(v: &str) -> Result<String, String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('\\' | ',' | '=' | '!')) => out.push(e),
            Some(e) => return Err(format!("invalid escape sequence \\{e}")),
            None => return Err("trailing backslash".into()),
        }
    }
    Ok(out)
}

fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '\\' | ',' | '=' | '!') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Field-selector values of an object of any kind ([`Resource::field`] through the [`Object`] enum).
pub trait ObjectFields {
    /// The value of `path` for field selectors; `None` when the kind does not support it.
    fn field(&self, path: &str) -> Option<String>;
}

macro_rules! object_field {
    ($obj:expr, $path:expr; $($kind:ident),* $(,)?) => {
        match $obj { $(Object::$kind(o) => o.field($path),)* }
    };
}

impl ObjectFields for Object {
    fn field(&self, path: &str) -> Option<String> {
        object_field!(self, path;
            Namespace, Node, Pod, Service, Endpoints, ConfigMap, Secret, ServiceAccount, Event,
            ReplicaSet, Deployment, DaemonSet, StatefulSet, Job, CronJob, Lease)
    }
}

/// What a watcher sees of a change, given whether the object matches its filter now (`current`) and
/// matched before (`previous`, known for modifications only). `None`: nothing.
pub fn transition(event: EventType, current: bool, previous: Option<bool>) -> Option<EventType> {
    match (event, current, previous.unwrap_or(current)) {
        (EventType::Added | EventType::Deleted, true, _) => Some(event),
        (EventType::Added | EventType::Deleted, false, _) => None,
        (EventType::Modified, true, true) => Some(EventType::Modified),
        (EventType::Modified, true, false) => Some(EventType::Added),
        (EventType::Modified, false, true) => Some(EventType::Deleted),
        (EventType::Modified, false, false) => None,
    }
}

/// One change in the history buffer: the event as it happened, the previous object (for
/// modifications, to filter on both) and lazily built variants for watchers that see it as a
/// transition into or out of their selection.
struct BufferedEvent {
    event: Arc<CachedEvent>,
    previous: Option<Arc<Object>>,
    as_added: OnceLock<Arc<CachedEvent>>,
    as_deleted: OnceLock<Arc<CachedEvent>>,
}

impl BufferedEvent {
    fn new(event: CachedEvent, previous: Option<Object>) -> BufferedEvent {
        BufferedEvent {
            event: Arc::new(event),
            previous: previous.map(Arc::new),
            as_added: OnceLock::new(),
            as_deleted: OnceLock::new(),
        }
    }

    fn revision(&self) -> i64 {
        self.event.revision
    }

    /// The event as a watcher with `filter` sees it, if at all.
    fn for_filter(&self, filter: &WatchFilter) -> Option<Arc<CachedEvent>> {
        if filter.is_everything() {
            return Some(self.event.clone());
        }
        let current = filter.matches(&self.event.object);
        let previous = match self.event.event_type {
            EventType::Modified => self.previous.as_ref().map(|p| filter.matches(p)),
            EventType::Added | EventType::Deleted => None,
        };
        let seen = transition(self.event.event_type, current, previous)?;
        Some(if seen == self.event.event_type {
            self.event.clone()
        } else {
            let cell = match seen {
                EventType::Added => &self.as_added,
                _ => &self.as_deleted,
            };
            cell.get_or_init(|| Arc::new(self.event.retyped(seen))).clone()
        })
    }
}

const LIVE: u8 = 0;
const OVERFLOWED: u8 = 1;
const RESET: u8 = 2;

struct Watcher {
    /// Events at or below this revision are not delivered (the watcher asked for events after it).
    after: i64,
    filter: WatchFilter,
    tx: mpsc::Sender<Arc<CachedEvent>>,
    /// Why the cache dropped this watcher (shared with its [`Subscription`]).
    end: Arc<AtomicU8>,
}

struct State {
    buffer: VecDeque<BufferedEvent>,
    /// Every event with a revision above the floor is in `buffer`.
    floor: i64,
    watchers: HashMap<u64, Watcher>,
    next_id: u64,
    closed: bool,
}

impl State {
    /// Delivers `entry` to every interested watcher and appends it to the history.
    fn publish(&mut self, entry: BufferedEvent, history: usize, kind: &str) {
        let rev = entry.revision();
        self.watchers.retain(|id, w| {
            if rev <= w.after {
                return !w.tx.is_closed();
            }
            let Some(ev) = entry.for_filter(&w.filter) else {
                return !w.tx.is_closed();
            };
            match w.tx.try_send(ev) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    w.end.store(OVERFLOWED, Ordering::SeqCst);
                    tracing::info!(kind, watcher = id, revision = rev, "watcher fell behind; dropped");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        self.buffer.push_back(entry);
        while self.buffer.len() > history {
            if let Some(old) = self.buffer.pop_front() {
                self.floor = self.floor.max(old.revision());
            }
        }
    }

    /// Drops every watcher, marking why.
    fn drop_watchers(&mut self, why: u8) {
        for w in self.watchers.values() {
            w.end.store(why, Ordering::SeqCst);
        }
        self.watchers.clear();
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
        let upstream = Upstream {
            shared: shared.clone(),
            client: etcd.watch_client(),
            prefix: prefix.clone(),
            cancel: cancel.clone(),
            ordered_progress,
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
        let first = st.buffer.partition_point(|e| e.revision() <= after);
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

/// Whether this etcd orders requested progress notifications after the events already queued and
/// defers them until the watch has caught up (etcd >= 3.4.25 / 3.5.8).
fn progress_is_ordered(version: &str) -> bool {
    let mut parts = version.split(['.', '-', '+']).map(|p| p.parse::<u64>().unwrap_or(0));
    let v = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    match (v.0, v.1) {
        (3, 4) => v.2 >= 25,
        (3, 5) => v.2 >= 8,
        (major, minor) => (major, minor) > (3, 5),
    }
}

/// The prefix the cache watches: `key_prefix` when it already names the kind, else derived from it.
fn watched_prefix(key_prefix: &str, kind: &KindInfo) -> String {
    let trimmed = key_prefix.trim_end_matches('/');
    if trimmed.rsplit('/').next() == Some(kind.plural) {
        format!("{trimmed}/")
    } else {
        codec::kind_prefix(key_prefix, kind)
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

/// Turns one etcd event into a buffered event. `Err` explains why it cannot be used.
fn decode_event(
    kind: &KindInfo,
    prefix: &str,
    event_type: EtcdEventType,
    kv: Option<&KeyValue>,
    prev: Option<&KeyValue>,
) -> Result<BufferedEvent, String> {
    let kv = kv.ok_or("event without a key-value")?;
    let rev = kv.mod_revision();
    let decode_prev = |p: &KeyValue, rev: i64| {
        codec::decode_value(kind.kind, p.value(), rev).map_err(|e| format!("previous value: {e}"))
    };
    match event_type {
        EtcdEventType::Put => {
            let obj = codec::decode_value(kind.kind, kv.value(), rev).map_err(|e| e.to_string())?;
            let created = prev.is_none() || kv.create_revision() == kv.mod_revision();
            if created {
                return Ok(BufferedEvent::new(CachedEvent::new(EventType::Added, obj, rev), None));
            }
            let previous = prev.and_then(|p| match decode_prev(p, p.mod_revision()) {
                Ok(o) => Some(o),
                Err(e) => {
                    tracing::warn!(key = %String::from_utf8_lossy(kv.key()), revision = rev, error = %e,
                        "undecodable previous value; filtering on the new object only");
                    None
                }
            });
            Ok(BufferedEvent::new(CachedEvent::new(EventType::Modified, obj, rev), previous))
        }
        EtcdEventType::Delete => {
            let obj = match prev {
                Some(p) => decode_prev(p, rev)?,
                // The previous value was compacted away: the deletion still has to reach watchers.
                None => object_from_key(kind, prefix, kv.key(), rev)?,
            };
            Ok(BufferedEvent::new(CachedEvent::new(EventType::Deleted, obj, rev), None))
        }
    }
}

/// A bare object carrying only the name and namespace encoded in its key.
fn object_from_key(kind: &KindInfo, prefix: &str, key: &[u8], rev: i64) -> Result<Object, String> {
    let key = std::str::from_utf8(key).map_err(|_| "key is not UTF-8")?;
    let rest = key.strip_prefix(prefix).ok_or_else(|| format!("key {key:?} outside {prefix:?}"))?;
    let (namespace, name) = match rest.split_once('/') {
        Some((ns, name)) if kind.namespaced => (ns, name),
        _ => ("", rest),
    };
    let mut obj = Object::decode(kind.kind, &[]).map_err(|e| e.to_string())?;
    obj.set_type_meta();
    let meta = obj.meta_mut();
    meta.name = name.to_string();
    meta.namespace = namespace.to_string();
    meta.resource_version = rev.to_string();
    Ok(obj)
}

/// Why one upstream watch stream ended.
enum StreamEnd {
    Cancelled,
    /// etcd compacted the revision the stream had to start from; history restarts here.
    Compacted(i64),
    Broken(String),
}

/// Capped exponential backoff with jitter.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { next: BACKOFF_START }
    }

    fn reset(&mut self) {
        self.next = BACKOFF_START;
    }

    fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        d.mul_f64(rand::random_range(0.5..1.0))
    }
}

/// A progress notification not yet trusted (see [`PROGRESS_QUIET`]).
struct PendingProgress {
    revision: i64,
    apply_at: Instant,
}

/// The task that owns the etcd watch of one kind.
struct Upstream {
    shared: Arc<Shared>,
    client: etcd_client::WatchClient,
    prefix: String,
    cancel: CancellationToken,
    ordered_progress: bool,
}

impl Upstream {
    async fn run(mut self, start: i64) {
        let mut next = start;
        let mut backoff = Backoff::new();
        loop {
            match self.watch_from(next, &mut backoff).await {
                StreamEnd::Cancelled => break,
                StreamEnd::Compacted(compacted) if compacted > self.resume_revision(next) => {
                    let resume = self.resume_revision(next);
                    if resume == start && self.shared.lock().buffer.is_empty() {
                        tracing::info!(
                            from = resume,
                            compacted,
                            "history partly compacted; starting at the compaction"
                        );
                    } else {
                        tracing::warn!(
                            from = resume,
                            compacted,
                            "events were compacted away; watchers relist"
                        );
                    }
                    self.shared.reset(compacted);
                    next = compacted;
                    continue;
                }
                StreamEnd::Compacted(compacted) => {
                    tracing::warn!(
                        from = next,
                        compacted,
                        "etcd reported a compaction below the resume revision"
                    );
                }
                StreamEnd::Broken(reason) => {
                    tracing::warn!(from = next, %reason, "etcd watch broke; reconnecting")
                }
            }
            next = self.resume_revision(next);
            tokio::select! {
                _ = tokio::time::sleep(backoff.next_delay()) => {}
                _ = self.cancel.cancelled() => break,
            }
        }
        self.shared.close();
        tracing::debug!("watch cache stopped");
    }

    /// The revision to watch from after a stream ended: right after everything already published.
    fn resume_revision(&self, next: i64) -> i64 {
        self.shared.revision.borrow().saturating_add(1).max(next)
    }

    /// Watches from revision `next` until the stream ends.
    async fn watch_from(&mut self, next: i64, backoff: &mut Backoff) -> StreamEnd {
        let opts = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_progress_notify()
            .with_start_revision(next);
        let stream = tokio::select! {
            r = self.client.watch(self.prefix.as_bytes(), Some(opts)) => r,
            _ = self.cancel.cancelled() => return StreamEnd::Cancelled,
        };
        let (mut requests, mut responses) = match stream {
            Ok(s) => s.split(),
            Err(e) => return StreamEnd::Broken(format!("starting the watch: {e}")),
        };
        let connected = Instant::now();
        let mut watch_id = None;
        // Revision at which etcd created the watch; once an event at or past it arrived, the history
        // replay is over.
        let mut created_at = i64::MAX;
        let mut caught_up = false;
        let mut last_event = None::<Instant>;
        let mut pending = None::<PendingProgress>;
        let mut ticker = tokio::time::interval_at(Instant::now() + PROGRESS_INTERVAL, PROGRESS_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let apply_at = pending.as_ref().map(|p| p.apply_at);
            tokio::select! {
                _ = self.cancel.cancelled() => return StreamEnd::Cancelled,
                _ = ticker.tick() => {
                    if let Err(e) = requests.request_progress().await {
                        return StreamEnd::Broken(format!("requesting progress: {e}"));
                    }
                }
                _ = self.shared.progress_wanted.notified(), if watch_id.is_some() => {
                    if let Err(e) = requests.request_progress().await {
                        return StreamEnd::Broken(format!("requesting progress: {e}"));
                    }
                }
                _ = tokio::time::sleep_until(apply_at.unwrap_or_else(Instant::now)), if apply_at.is_some() => {
                    if let Some(p) = pending.take() {
                        self.shared.advance(p.revision);
                    }
                }
                msg = responses.message() => {
                    let resp = match msg {
                        Ok(Some(r)) => r,
                        Ok(None) => return StreamEnd::Broken("stream closed by etcd".into()),
                        Err(e) => return StreamEnd::Broken(e.to_string()),
                    };
                    if resp.compact_revision() > 0 {
                        return StreamEnd::Compacted(resp.compact_revision());
                    }
                    if resp.canceled() {
                        return StreamEnd::Broken(format!("watch cancelled by etcd: {}", resp.cancel_reason()));
                    }
                    let header_rev = resp.header().map(|h| h.revision()).unwrap_or(0);
                    if resp.created() {
                        watch_id = Some(resp.watch_id());
                        created_at = header_rev;
                        caught_up = next > header_rev;
                        backoff.reset();
                        tracing::debug!(from = next, created_at, "etcd watch established");
                        continue;
                    }
                    if !resp.events().is_empty() {
                        let last = self.publish(&resp);
                        last_event = Some(Instant::now());
                        if !caught_up {
                            // A notification received during the replay may be ahead of it.
                            pending = None;
                            caught_up = last >= created_at;
                        }
                        continue;
                    }
                    // A progress notification: every event up to `header_rev` has been sent. The
                    // periodic ones of the watch itself go through the watch's own queue; requested
                    // ones (watch id -1) only on an etcd that orders them.
                    if Some(resp.watch_id()) == watch_id || self.ordered_progress {
                        self.shared.advance(header_rev);
                    } else if pending.is_none() && header_rev > *self.shared.revision.borrow() {
                        let quiet = connected.elapsed() >= PROGRESS_QUIET
                            && last_event.is_none_or(|t| t.elapsed() >= PROGRESS_QUIET);
                        if caught_up || quiet {
                            pending = Some(PendingProgress {
                                revision: header_rev,
                                apply_at: Instant::now() + PROGRESS_GRACE,
                            });
                        }
                    }
                }
            }
        }
    }

    /// Decodes and publishes the events of one response; returns the revision of the last one.
    fn publish(&self, resp: &WatchResponse) -> i64 {
        let kind = self.shared.kind;
        let mut last = 0;
        let mut entries = Vec::with_capacity(resp.events().len());
        for ev in resp.events() {
            let rev = ev.kv().map(|kv| kv.mod_revision()).unwrap_or(0);
            last = last.max(rev);
            match decode_event(kind, &self.prefix, ev.event_type(), ev.kv(), ev.prev_kv()) {
                Ok(e) => entries.push(e),
                Err(reason) => {
                    let key =
                        ev.kv().map(|kv| String::from_utf8_lossy(kv.key()).into_owned()).unwrap_or_default();
                    tracing::warn!(%key, revision = rev, %reason, "skipping undecodable watch event");
                }
            }
        }
        self.shared.publish(entries, last);
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{FutureExt, StreamExt};
    use navarch_api::v1::{ConfigMap, ObjectMeta, Pod, PodSpec, PodStatus};

    fn pod(ns: &str, name: &str, node: &str, labels: &[(&str, &str)]) -> Object {
        Object::Pod(Pod {
            metadata: Some(ObjectMeta {
                name: name.into(),
                namespace: ns.into(),
                labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                ..Default::default()
            }),
            spec: Some(PodSpec { node_name: node.into(), ..Default::default() }),
            status: Some(PodStatus { phase: "Pending".into(), ..Default::default() }),
            ..Default::default()
        })
    }

    fn fields(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap()
    }

    #[test]
    fn field_selector_parse() {
        assert_eq!(
            fields("a=b,c!=d, e==f ,,").0,
            vec![
                ("a".into(), "b".into(), false),
                ("c".into(), "d".into(), true),
                ("e".into(), "f".into(), false)
            ]
        );
        assert!(fields("").is_empty());
        assert_eq!(fields("spec.nodeName=").0, vec![("spec.nodeName".into(), String::new(), false)]);
        assert_eq!(fields(r"a=x\,y\=z\\").0, vec![("a".into(), r"x,y=z\".into(), false)]);
        assert_eq!(fields("a=b=c").0, vec![("a".into(), "b=c".into(), false)]);
        for bad in ["a", "=b", "!=b", r"a=\q", "a=b\\", "a b=c", "a,b=c"] {
            assert!(FieldSelector::parse(bad).is_err(), "{bad:?} should not parse");
        }
        let e = FieldSelector::parse("spec.nodeName").unwrap_err();
        assert!(e.contains("spec.nodeName"), "{e}");
    }

    #[test]
    fn field_selector_display_round_trips() {
        for s in ["a=b,c!=d", r"a=x\,y\=z\\", "spec.nodeName="] {
            let f = fields(s);
            assert_eq!(fields(&f.to_string()), f);
        }
        assert_eq!(fields("a==b").to_string(), "a=b");
    }

    #[test]
    fn field_selector_matches() {
        let p = pod("default", "web", "node-1", &[]);
        assert!(fields("").matches(&p));
        assert!(fields("spec.nodeName=node-1").matches(&p));
        assert!(!fields("spec.nodeName=node-2").matches(&p));
        assert!(fields("spec.nodeName!=node-2,metadata.name=web").matches(&p));
        assert!(!fields("spec.nodeName!=node-1").matches(&p));
        assert!(fields("metadata.namespace=default,status.phase=Pending").matches(&p));
        assert!(fields("spec.nodeName=").matches(&pod("default", "web", "", &[])));
        // Unsupported paths never match.
        assert!(!fields("spec.bogus=x").matches(&p));
        assert!(!fields("spec.bogus!=x").matches(&p));
    }

    #[test]
    fn field_selector_supported_paths() {
        let f = fields("metadata.name=a,spec.nodeName=n");
        assert_eq!(f.unsupported("Pod"), None);
        assert_eq!(f.unsupported("ConfigMap"), Some("spec.nodeName"));
        assert!(f.check_supported("Pod").is_ok());
        assert_eq!(f.check_supported("ConfigMap").unwrap_err(), "field label not supported: spec.nodeName");
        assert_eq!(f.unsupported("NoSuchKind"), Some("metadata.name"));
        assert_eq!(fields("").unsupported("NoSuchKind"), None);
    }

    #[test]
    fn object_fields_dispatch() {
        let cm = Object::ConfigMap(ConfigMap {
            metadata: Some(ObjectMeta { name: "c".into(), namespace: "ns".into(), ..Default::default() }),
            ..Default::default()
        });
        assert_eq!(cm.field("metadata.name").as_deref(), Some("c"));
        assert_eq!(cm.field("metadata.namespace").as_deref(), Some("ns"));
        assert_eq!(cm.field("spec.nodeName"), None);
        assert_eq!(pod("a", "b", "n", &[]).field("spec.nodeName").as_deref(), Some("n"));
    }

    #[test]
    fn transitions() {
        use EventType::*;
        assert_eq!(transition(Added, true, None), Some(Added));
        assert_eq!(transition(Added, false, None), None);
        assert_eq!(transition(Deleted, true, None), Some(Deleted));
        assert_eq!(transition(Deleted, false, None), None);
        assert_eq!(transition(Modified, true, Some(true)), Some(Modified));
        assert_eq!(transition(Modified, true, Some(false)), Some(Added));
        assert_eq!(transition(Modified, false, Some(true)), Some(Deleted));
        assert_eq!(transition(Modified, false, Some(false)), None);
        // Previous object unknown: judged on the current one.
        assert_eq!(transition(Modified, true, None), Some(Modified));
        assert_eq!(transition(Modified, false, None), None);
    }

    fn filter(ns: &str, labels: &str, f: &str) -> WatchFilter {
        WatchFilter { namespace: ns.into(), labels: Selector::parse(labels).unwrap(), fields: fields(f) }
    }

    fn modified(old: Object, new: Object, rev: i64) -> BufferedEvent {
        BufferedEvent::new(CachedEvent::new(EventType::Modified, new, rev), Some(old))
    }

    #[test]
    fn watch_filter_matches() {
        let p = pod("team-a", "web", "n1", &[("app", "web")]);
        assert!(WatchFilter::everything().matches(&p));
        assert!(filter("team-a", "app=web", "spec.nodeName=n1").matches(&p));
        assert!(!filter("team-b", "", "").matches(&p));
        assert!(!filter("", "app=db", "").matches(&p));
        assert!(!filter("", "", "spec.nodeName=n2").matches(&p));
    }

    #[test]
    fn buffered_event_seen_through_filters() {
        let before = pod("default", "web", "", &[("app", "web")]);
        let after = pod("default", "web", "n1", &[("app", "db")]);
        let e = modified(before, after, 7);

        let all = e.for_filter(&WatchFilter::everything()).unwrap();
        assert_eq!(all.event_type, EventType::Modified);
        assert!(Arc::ptr_eq(&all, &e.event));

        // Label left the selection: DELETED with the new object.
        let left = e.for_filter(&filter("", "app=web", "")).unwrap();
        assert_eq!(left.event_type, EventType::Deleted);
        assert_eq!(left.object.meta().labels["app"], "db");
        assert_eq!(left.raw, e.event.raw);
        assert_eq!(left.revision, 7);
        // Shared between watchers.
        assert!(Arc::ptr_eq(&left, &e.for_filter(&filter("default", "app=web", "")).unwrap()));

        // Scheduled onto n1: ADDED for the node's watcher, DELETED for the unscheduled-pods watcher.
        assert_eq!(e.for_filter(&filter("", "", "spec.nodeName=n1")).unwrap().event_type, EventType::Added);
        assert_eq!(e.for_filter(&filter("", "", "spec.nodeName=")).unwrap().event_type, EventType::Deleted);
        assert!(e.for_filter(&filter("", "", "spec.nodeName=n2")).is_none());
        assert!(e.for_filter(&filter("other", "", "")).is_none());
        assert_eq!(e.for_filter(&filter("default", "", "")).unwrap().event_type, EventType::Modified);
    }

    fn state() -> State {
        State { buffer: VecDeque::new(), floor: 0, watchers: HashMap::new(), next_id: 0, closed: false }
    }

    fn added(name: &str, rev: i64) -> BufferedEvent {
        BufferedEvent::new(CachedEvent::new(EventType::Added, pod("default", name, "", &[]), rev), None)
    }

    fn add_watcher(st: &mut State, after: i64, filter: WatchFilter, cap: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(cap);
        let end = Arc::new(AtomicU8::new(LIVE));
        let id = st.next_id;
        st.next_id += 1;
        st.watchers.insert(id, Watcher { after, filter, tx, end: end.clone() });
        Subscription { snapshot: VecDeque::new(), rx: Some(rx), end, registration: None }
    }

    fn drain(sub: &mut Subscription) -> Vec<Result<i64, String>> {
        let mut out = Vec::new();
        while let Some(Some(item)) = sub.next().now_or_never() {
            out.push(item.map(|e| e.revision).map_err(|e| e.to_string()));
        }
        out
    }

    #[test]
    fn ring_buffer_raises_floor() {
        let mut st = state();
        for rev in 1..=5 {
            st.publish(added(&format!("p{rev}"), rev * 10), 3, "Pod");
        }
        assert_eq!(st.buffer.len(), 3);
        assert_eq!(st.floor, 20);
        assert_eq!(st.buffer.front().unwrap().revision(), 30);
    }

    #[test]
    fn fan_out_skips_old_filters_and_drops_slow_watchers() {
        let mut st = state();
        let mut fast = add_watcher(&mut st, 0, WatchFilter::everything(), 10);
        let mut slow = add_watcher(&mut st, 0, WatchFilter::everything(), 2);
        let mut late = add_watcher(&mut st, 2, WatchFilter::everything(), 10);
        let mut picky = add_watcher(&mut st, 0, filter("", "", "metadata.name=p3"), 10);
        for rev in 1..=4 {
            st.publish(added(&format!("p{rev}"), rev), 100, "Pod");
        }
        assert_eq!(st.watchers.len(), 3, "the slow watcher is removed");
        assert_eq!(drain(&mut fast), vec![Ok(1), Ok(2), Ok(3), Ok(4)]);
        assert_eq!(drain(&mut late), vec![Ok(3), Ok(4)]);
        assert_eq!(drain(&mut picky), vec![Ok(3)]);
        assert_eq!(drain(&mut slow), vec![Err(FELL_BEHIND.to_string())]);
        // Closed receivers are pruned on the next event.
        drop(late);
        st.publish(added("p5", 5), 100, "Pod");
        assert_eq!(st.watchers.len(), 2);
        // A reset expires everyone.
        st.drop_watchers(RESET);
        assert_eq!(drain(&mut fast), vec![Err(FELL_BEHIND.to_string())]);
        // A clean close ends streams after what was queued.
        let mut quiet = add_watcher(&mut st, 0, WatchFilter::everything(), 10);
        st.publish(added("p6", 6), 100, "Pod");
        st.drop_watchers(LIVE);
        assert_eq!(drain(&mut quiet), vec![Ok(6)]);
        assert!(quiet.next().now_or_never().is_some_and(|x| x.is_none()));
    }

    #[test]
    fn versions_with_ordered_progress() {
        assert!(!progress_is_ordered("3.4.23"));
        assert!(progress_is_ordered("3.4.25"));
        assert!(!progress_is_ordered("3.5.7"));
        assert!(progress_is_ordered("3.5.8"));
        assert!(progress_is_ordered("3.6.0"));
        assert!(progress_is_ordered("4.0.0"));
        assert!(!progress_is_ordered("garbage"));
    }

    #[test]
    fn prefixes() {
        let cm = navarch_api::kind_info("ConfigMap").unwrap();
        assert_eq!(watched_prefix("/registry", cm), "/registry/configmaps/");
        assert_eq!(watched_prefix("/registry/", cm), "/registry/configmaps/");
        assert_eq!(watched_prefix("/registry/configmaps/", cm), "/registry/configmaps/");
        assert_eq!(watched_prefix("/registry/configmaps", cm), "/registry/configmaps/");
    }

    #[test]
    fn delete_without_previous_value_keeps_name() {
        let cm = navarch_api::kind_info("ConfigMap").unwrap();
        let o = object_from_key(cm, "/r/configmaps/", b"/r/configmaps/ns1/c1", 9).unwrap();
        assert_eq!((o.meta().namespace.as_str(), o.meta().name.as_str()), ("ns1", "c1"));
        assert_eq!(o.meta().resource_version, "9");
        assert!(object_from_key(cm, "/r/configmaps/", b"/elsewhere/x", 9).is_err());
    }
}
