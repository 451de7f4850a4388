//! The shared reflector: one watcher feeding one [`Store`], whose changes any number of subscribers
//! follow (kube-runtime's `store_shared` / `for_shared_stream`), so a process needs one watch per kind
//! however many controllers read or are triggered by that kind.
//!
//! * Each event is applied to the store **before** subscribers see it, so a reconcile woken by a change
//!   never reads a store older than that change.
//! * Subscribers see [`Change`]s on a tokio broadcast channel: an object applied or deleted, or
//!   [`Change::Resync`] — "anything may have changed, read the store" — after every (re)list and when
//!   they fell more than the channel's capacity behind. The reflector never waits for a slow
//!   subscriber: that one misses changes and gets a resync instead.
//! * Subscriptions are taken first, then the one watch task runs where the caller wants it:
//!   [`SharedReflector::run`] (or [`SharedReflector::spawn`] into a `JoinSet`) until shutdown, which
//!   consumes the reflector; when it ends, every subscription ends.

use std::fmt;
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use navarch_api::Resource;
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;

use crate::client::Api;
use crate::error::Result;
use crate::store::{Store, Writer, store};
use crate::watcher::{Event, WatcherConfig, watcher};

/// Changes a subscriber may fall behind by before it gets a [`Change::Resync`] instead.
pub const DEFAULT_CAPACITY: usize = 1024;

/// What a subscriber of a [`SharedReflector`] sees; the store already reflects it.
pub enum Change<K> {
    /// An object was created or changed (the object as stored).
    Apply(Arc<K>),
    /// An object was deleted (its last state; gone from the store).
    Delete(Arc<K>),
    /// Anything may have changed: a (re)list completed (the store holds it now), or the subscriber
    /// fell behind and missed changes.
    Resync,
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Change::Apply(o) => Change::Apply(o.clone()),
            Change::Delete(o) => Change::Delete(o.clone()),
            Change::Resync => Change::Resync,
        }
    }
}

impl<K: Resource> fmt::Debug for Change<K> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let key = |o: &Arc<K>| crate::ObjectRef::from_obj(o.as_ref());
        match self {
            Change::Apply(o) => write!(f, "Apply({})", key(o)),
            Change::Delete(o) => write!(f, "Delete({})", key(o)),
            Change::Resync => f.write_str("Resync"),
        }
    }
}

/// One watch → one store → a change stream for any number of subscribers. Subscribe (and take
/// [`store`](Self::store)s) first, then [`run`](Self::run) it.
pub struct SharedReflector<K> {
    store: Store<K>,
    writer: Writer<K>,
    tx: broadcast::Sender<Change<K>>,
    events: BoxStream<'static, Result<Event<K>>>,
}

impl<K: Resource> SharedReflector<K> {
    /// A shared reflector of `api`'s kind (in its namespace, or all namespaces).
    pub fn new(api: Api<K>, cfg: WatcherConfig) -> SharedReflector<K> {
        SharedReflector::from_events(watcher(api, cfg), DEFAULT_CAPACITY)
    }

    /// A shared reflector of any watcher-shaped event stream, subscribers lagging by more than
    /// `capacity` changes resynced.
    pub fn from_events(
        events: impl Stream<Item = Result<Event<K>>> + Send + 'static,
        capacity: usize,
    ) -> SharedReflector<K> {
        let (store, writer) = store();
        let (tx, _) = broadcast::channel(capacity.max(1));
        SharedReflector { store, writer, tx, events: events.boxed() }
    }

    /// The store (cheap to clone; read it whenever a change arrives).
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Every change, from the first list on (subscriptions are taken before [`run`](Self::run), so
    /// none misses anything but what it lags behind by). Ends when the reflector stops.
    pub fn subscribe(&self) -> impl Stream<Item = Change<K>> + Send + 'static {
        BroadcastStream::new(self.tx.subscribe()).map(|c| match c {
            Ok(c) => c,
            Err(BroadcastStreamRecvError::Lagged(missed)) => {
                tracing::debug!(kind = K::KIND, missed, "subscriber fell behind; resyncing it");
                Change::Resync
            }
        })
    }

    /// Runs the watch until `shutdown` (or the event stream's end): each event goes to the store, then
    /// to the subscribers. Watch errors are logged (the watcher retries with backoff).
    pub async fn run(self, shutdown: CancellationToken) {
        let SharedReflector { mut writer, tx, mut events, .. } = self;
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = events.next() => match ev { Some(ev) => ev, None => return },
            };
            match ev {
                Ok(ev) => {
                    if let Some(change) = writer.apply_owned(ev) {
                        // No subscriber is not an error.
                        let _ = tx.send(change);
                    }
                }
                Err(e) => tracing::warn!(kind = K::KIND, error = %e, "watch failed; retrying"),
            }
        }
    }

    /// Runs the watch in `tasks` until `shutdown`; returns the store.
    pub fn spawn(self, tasks: &mut JoinSet<()>, shutdown: CancellationToken) -> Store<K> {
        let store = self.store();
        tasks.spawn(self.run(shutdown));
        store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::cm;
    use futures::channel::mpsc;
    use navarch_api::v1::ConfigMap;

    /// A reflector fed by hand.
    fn by_hand() -> (mpsc::UnboundedSender<Result<Event<ConfigMap>>>, SharedReflector<ConfigMap>) {
        let (tx, rx) = mpsc::unbounded();
        (tx, SharedReflector::from_events(rx, 16))
    }

    /// A change as `name=value` (`-name` for a delete).
    fn show(c: &Change<ConfigMap>) -> String {
        match c {
            Change::Apply(o) => format!("{}={}", o.metadata.as_ref().unwrap().name, o.data["k"]),
            Change::Delete(o) => format!("-{}", o.metadata.as_ref().unwrap().name),
            Change::Resync => "resync".into(),
        }
    }

    fn contents(s: &Store<ConfigMap>) -> Vec<String> {
        let mut v: Vec<String> = s
            .state()
            .iter()
            .map(|o| format!("{}={}", o.metadata.as_ref().unwrap().name, o.data["k"]))
            .collect();
        v.sort();
        v
    }

    fn events(evs: Vec<Event<ConfigMap>>) -> impl Stream<Item = Result<Event<ConfigMap>>> + Send + 'static {
        futures::stream::iter(evs.into_iter().map(Ok))
    }

    #[tokio::test]
    async fn store_is_updated_before_subscribers_see_the_change() {
        let (tx, r) = by_hand();
        let store = r.store();
        let mut changes = std::pin::pin!(r.subscribe());
        let task = tokio::spawn(r.run(CancellationToken::new()));
        // One event at a time: when the subscriber sees a change, nothing later has been sent yet, so
        // the store shows exactly that change.
        let steps = [
            (vec![Event::Init, Event::InitApply(cm("a", "1"))], "", Vec::<&str>::new()),
            (vec![Event::InitDone], "resync", vec!["a=1"]),
            (vec![Event::Apply(cm("a", "2"))], "a=2", vec!["a=2"]),
            (vec![Event::Apply(cm("b", "1"))], "b=1", vec!["a=2", "b=1"]),
            (vec![Event::Delete(cm("a", "2"))], "-a", vec!["b=1"]),
        ];
        for (evs, want, stored) in steps {
            for ev in evs {
                tx.unbounded_send(Ok(ev)).unwrap();
            }
            if want.is_empty() {
                continue;
            }
            let c = changes.next().await.unwrap();
            assert_eq!(show(&c), want);
            assert_eq!(contents(&store), stored, "store when {want} arrived");
        }
        drop(tx);
        task.await.unwrap();
        assert!(changes.next().await.is_none(), "the subscription ends with the reflector");
    }

    #[tokio::test]
    async fn every_subscriber_sees_every_change() {
        let r = SharedReflector::from_events(
            events(vec![
                Event::Init,
                Event::InitApply(cm("a", "1")),
                Event::InitDone,
                Event::Apply(cm("a", "2")),
                Event::Apply(cm("b", "1")),
                Event::Delete(cm("a", "2")),
            ]),
            16,
        );
        let (one, two) = (r.subscribe(), r.subscribe());
        r.run(CancellationToken::new()).await;
        let want = ["resync", "a=2", "b=1", "-a"];
        assert_eq!(one.map(|c| show(&c)).collect::<Vec<_>>().await, want);
        assert_eq!(two.map(|c| show(&c)).collect::<Vec<_>>().await, want);
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_resynced() {
        let mut evs = vec![Event::Init, Event::InitDone];
        evs.extend((0..6).map(|i| Event::Apply(cm(&format!("o{i}"), "1"))));
        let r = SharedReflector::from_events(events(evs), 2);
        let store = r.store();
        let slow = r.subscribe();
        r.run(CancellationToken::new()).await;
        // 7 changes into a channel of 2: the first ones are lost, a resync stands for them.
        let seen: Vec<String> = slow.map(|c| show(&c)).collect().await;
        assert_eq!(seen, ["resync", "o4=1", "o5=1"]);
        assert_eq!(store.len(), 6, "the store has every change");
    }

    #[tokio::test]
    async fn relists_are_one_resync_with_the_new_state_stored() {
        let (tx, r) = by_hand();
        let store = r.store();
        let mut early = std::pin::pin!(r.subscribe());
        for ev in [Event::Init, Event::InitApply(cm("a", "1")), Event::InitDone, Event::Apply(cm("b", "1"))] {
            tx.unbounded_send(Ok(ev)).unwrap();
        }
        let task = tokio::spawn(r.run(CancellationToken::new()));
        assert_eq!(show(&early.next().await.unwrap()), "resync");
        assert_eq!(show(&early.next().await.unwrap()), "b=1");
        // A relist without b, with a changed: one resync, once the new state is stored.
        for ev in [Event::Init, Event::InitApply(cm("a", "2")), Event::InitDone] {
            tx.unbounded_send(Ok(ev)).unwrap();
        }
        assert_eq!(show(&early.next().await.unwrap()), "resync");
        assert_eq!(contents(&store), ["a=2"]);
        drop(tx);
        task.await.unwrap();
        assert!(early.next().await.is_none());
    }
}
