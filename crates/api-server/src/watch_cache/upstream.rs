//! The upstream side of a watch cache: the task that owns the etcd watch of one kind, decodes its
//! events (their previous objects from [`Latest`], seeded by a list before the watch starts), publishes
//! them, reconnects with backoff, resumes after compactions, and turns etcd's progress notifications
//! into the cache's revision.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType as EtcdEventType, KeyValue, WatchOptions, WatchResponse};
use navarch_api::{KindInfo, Object};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::fanout::BufferedEvent;
use super::latest::{Latest, SeedError};
use super::{CachedEvent, EventType, Shared};
use crate::codec;
use crate::encryption::Transformers;
use crate::storage::Storage;

/// How often the upstream watch asks etcd for a progress notification, so that [`WatchCache::revision`]
/// advances while the kind has no events (bookmarks rely on it).
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);
/// Before etcd 3.4.25 / 3.5.8, a requested progress notification is not ordered with the events of the
/// stream (etcd-io/etcd#15220): it may overtake events still queued in etcd, and it is sent even while
/// the watch is still replaying history. With such an etcd a notification is only trusted after the
/// stream was quiet this long before it, and it is applied only after `PROGRESS_GRACE`.
const PROGRESS_QUIET: Duration = Duration::from_millis(300);
const PROGRESS_GRACE: Duration = Duration::from_millis(100);
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Whether this etcd orders requested progress notifications after the events already queued and
/// defers them until the watch has caught up (etcd >= 3.4.25 / 3.5.8).
pub(super) fn progress_is_ordered(version: &str) -> bool {
    let mut parts = version.split(['.', '-', '+']).map(|p| p.parse::<u64>().unwrap_or(0));
    let v = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    match (v.0, v.1) {
        (3, 4) => v.2 >= 25,
        (3, 5) => v.2 >= 8,
        (major, minor) => (major, minor) > (3, 5),
    }
}

/// The prefix the cache watches: `key_prefix` when it already names the kind, else derived from it.
pub(super) fn watched_prefix(key_prefix: &str, kind: &KindInfo) -> String {
    let trimmed = key_prefix.trim_end_matches('/');
    if trimmed.rsplit('/').next() == Some(kind.plural) {
        format!("{trimmed}/")
    } else {
        codec::kind_prefix(key_prefix, kind)
    }
}

/// Decrypts (as configured) and decodes one stored value.
fn decode_stored(
    kind: &KindInfo,
    transformers: &Transformers,
    kv: &KeyValue,
    rev: i64,
) -> Result<Object, String> {
    let key = String::from_utf8_lossy(kv.key());
    let plain = transformers
        .from_storage(&key, kv.value())
        .map_err(|e| format!("unable to transform key {key:?}: {e}"))?;
    codec::decode_value(kind.kind, &plain.value, rev).map_err(|e| e.to_string())
}

/// Turns one etcd event into a buffered event, keeping `latest` current. `Err` explains why it cannot
/// be used.
fn decode_event(
    kind: &KindInfo,
    transformers: &Transformers,
    latest: &mut Latest,
    event_type: EtcdEventType,
    kv: Option<&KeyValue>,
) -> Result<BufferedEvent, String> {
    let kv = kv.ok_or("event without a key-value")?;
    let rev = kv.mod_revision();
    let key = String::from_utf8_lossy(kv.key()).into_owned();
    match event_type {
        EtcdEventType::Put => {
            let obj = match decode_stored(kind, transformers, kv, rev) {
                Ok(o) => Arc::new(o),
                Err(e) => {
                    latest.remove(&key);
                    return Err(e);
                }
            };
            let previous = latest.put(&key, obj.clone());
            if previous.is_none() || kv.create_revision() == kv.mod_revision() {
                return Ok(BufferedEvent::new(CachedEvent::shared(EventType::Added, obj, rev), None));
            }
            Ok(BufferedEvent::new(CachedEvent::shared(EventType::Modified, obj, rev), previous))
        }
        EtcdEventType::Delete => {
            let obj = match latest.remove(&key) {
                Some(last) => {
                    let mut o = (*last).clone();
                    o.meta_mut().resource_version = rev.to_string();
                    o
                }
                // Never decodable (skipped when stored): watchers never saw it.
                None => return Err("deleted; its stored value could not be decoded".into()),
            };
            Ok(BufferedEvent::new(CachedEvent::new(EventType::Deleted, obj, rev), None))
        }
    }
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
pub(super) struct Upstream {
    pub(super) shared: Arc<Shared>,
    pub(super) client: etcd_client::WatchClient,
    pub(super) prefix: String,
    pub(super) cancel: CancellationToken,
    pub(super) ordered_progress: bool,
    pub(super) transformers: Transformers,
    /// Reads the seed of `latest`.
    pub(super) storage: Storage,
    /// The latest object per key up to the published revision; `None` until seeded (again after a
    /// compaction reset).
    pub(super) latest: Option<Latest>,
}

impl Upstream {
    pub(super) async fn run(mut self, start: i64) {
        let mut next = start;
        let mut backoff = Backoff::new();
        loop {
            if self.latest.is_none() {
                match self.seed(next).await {
                    Some(from) => next = from,
                    None => {
                        tokio::select! {
                            _ = tokio::time::sleep(backoff.next_delay()) => continue,
                            _ = self.cancel.cancelled() => break,
                        }
                    }
                }
            }
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
                    self.latest = None;
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

    /// Seeds `latest` with the objects as they were right before revision `next`, the watch's start;
    /// returns the revision to watch from. When that revision is compacted, the objects are read at the
    /// compaction revision and the history restarts there (watchers relist). `None`: etcd failed.
    async fn seed(&mut self, next: i64) -> Option<i64> {
        let kind = self.shared.kind;
        if next <= 1 {
            self.latest = Some(Latest::default());
            return Some(next);
        }
        let seeded = match Latest::seed(&self.storage, &self.prefix, kind, next - 1).await {
            Err(SeedError::Compacted) => {
                // Start at the compaction instead: the objects as they are there, then its events on
                // (the event at the compaction itself is filtered without its previous object).
                let compaction = self.compaction_after(next - 1).await?;
                let at = Latest::seed(&self.storage, &self.prefix, kind, compaction).await;
                if at.is_ok() {
                    if self.shared.lock().buffer.is_empty() {
                        tracing::info!(
                            from = next,
                            compaction,
                            "history partly compacted; starting at the compaction"
                        );
                    } else {
                        tracing::warn!(
                            from = next,
                            compaction,
                            "events were compacted away; watchers relist"
                        );
                    }
                    self.shared.reset(compaction);
                }
                at.map(|(latest, _)| (latest, compaction - 1))
            }
            other => other,
        };
        match seeded {
            Ok((latest, at)) => {
                self.latest = Some(latest);
                Some(at + 1)
            }
            Err(SeedError::Compacted) => None,
            Err(SeedError::Other(e)) => {
                tracing::warn!(from = next, error = %e, "reading the objects to start the watch from");
                None
            }
        }
    }

    /// The revision etcd compacted, asked with a watch from `from` (a compacted revision); `None` if etcd
    /// does not say so in time.
    async fn compaction_after(&mut self, from: i64) -> Option<i64> {
        let opts = WatchOptions::new().with_prefix().with_start_revision(from);
        let probe = async {
            let (_requests, mut responses) =
                self.client.watch(self.prefix.as_bytes(), Some(opts)).await.ok()?.split();
            loop {
                let resp = responses.message().await.ok()??;
                if resp.compact_revision() > 0 {
                    return Some(resp.compact_revision());
                }
                if !resp.created() {
                    return None;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), probe).await.ok().flatten()
    }

    /// The revision to watch from after a stream ended: right after everything already published.
    fn resume_revision(&self, next: i64) -> i64 {
        self.shared.revision.borrow().saturating_add(1).max(next)
    }

    /// Watches from revision `next` until the stream ends.
    async fn watch_from(&mut self, next: i64, backoff: &mut Backoff) -> StreamEnd {
        let opts = WatchOptions::new().with_prefix().with_progress_notify().with_start_revision(next);
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
    fn publish(&mut self, resp: &WatchResponse) -> i64 {
        let kind = self.shared.kind;
        let mut last = 0;
        let mut entries = Vec::with_capacity(resp.events().len());
        let latest = self.latest.get_or_insert_with(Latest::default);
        for ev in resp.events() {
            let rev = ev.kv().map(|kv| kv.mod_revision()).unwrap_or(0);
            last = last.max(rev);
            match decode_event(kind, &self.transformers, latest, ev.event_type(), ev.kv()) {
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
}
