//! The controller runner: watches a kind (and optionally what it owns), keeps a [`Store`], and calls
//! `reconcile` for each changed key through a work queue with per-key dedup, requeue-after, per-key
//! error backoff, bounded concurrency, and never two workers on one key. Reconcile gets the object from
//! the store (level-triggered), never from the event that woke it.
//!
//! A controller opens its own watches ([`Controller::new`], [`Controller::owns`],
//! [`Controller::watches`]) or follows [`SharedReflector`]s that other controllers of the process follow
//! too ([`Controller::for_shared`], [`Controller::owns_shared`], [`Controller::watches_shared`]); a
//! shared reflector's store is updated before the change reaches the controller.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{BoxStream, SelectAll};
use futures::{Stream, StreamExt};
use navarch_api::Resource;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::Api;
use crate::shared::{Change, SharedReflector};
use crate::store::{ObjectRef, Store, Writer, reflector, store};
use crate::watcher::{Event, WatcherConfig, watcher};

/// What to do with a key after a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reconcile again after this long (even if nothing changes).
    Requeue(Duration),
    /// Reconcile again only when something changes.
    AwaitChange,
}

impl Action {
    pub fn requeue(after: Duration) -> Action {
        Action::Requeue(after)
    }
    pub fn await_change() -> Action {
        Action::AwaitChange
    }
}

/// The work queue: due keys in time order, one entry per key (dedup), keys being reconciled held aside
/// and re-run after they finish if they were scheduled meanwhile.
#[derive(Debug, Default)]
pub struct WorkQueue {
    order: BTreeSet<(Instant, u64, ObjectRef)>,
    index: HashMap<ObjectRef, (Instant, u64)>,
    running: HashSet<ObjectRef>,
    rerun: HashMap<ObjectRef, Instant>,
    seq: u64,
}

impl WorkQueue {
    /// Schedules `key` at `at`, keeping the earlier time if it is already scheduled.
    pub fn schedule(&mut self, key: ObjectRef, at: Instant) {
        if self.running.contains(&key) {
            let e = self.rerun.entry(key).or_insert(at);
            *e = (*e).min(at);
            return;
        }
        if let Some(&(t, s)) = self.index.get(&key) {
            if at >= t {
                return;
            }
            self.order.remove(&(t, s, key.clone()));
        }
        self.seq += 1;
        self.index.insert(key.clone(), (at, self.seq));
        self.order.insert((at, self.seq, key));
    }

    /// The next key due at `now`, marked running.
    pub fn pop_due(&mut self, now: Instant) -> Option<ObjectRef> {
        let first = self.order.first().filter(|(t, _, _)| *t <= now)?.clone();
        self.order.remove(&first);
        self.index.remove(&first.2);
        self.running.insert(first.2.clone());
        Some(first.2)
    }

    /// Marks `key` finished; schedules it again if it was triggered while running.
    pub fn finish(&mut self, key: &ObjectRef) {
        self.running.remove(key);
        if let Some(at) = self.rerun.remove(key) {
            self.schedule(key.clone(), at);
        }
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.order.first().map(|(t, _, _)| *t)
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty() && self.running.is_empty()
    }
}

/// Per-key error backoff: 5 ms doubling to 5 minutes, like client-go's default controller rate limiter.
fn error_backoff(failures: u32) -> Duration {
    let base = Duration::from_millis(5);
    base.saturating_mul(1u32 << failures.min(16).saturating_sub(1)).min(Duration::from_secs(300))
}

/// Builder and runner of one controller.
pub struct Controller<K: Resource> {
    main: BoxStream<'static, Vec<ObjectRef>>,
    triggers: Vec<BoxStream<'static, Vec<ObjectRef>>>,
    reader: Store<K>,
    concurrency: usize,
}

/// Keys to reconcile for an event of a kind the controller does not store: every object it reports.
fn keys_of<K: Resource>(ev: &Event<K>, map: &(dyn Fn(&K) -> Vec<ObjectRef> + Send + Sync)) -> Vec<ObjectRef> {
    match ev {
        Event::InitApply(o) | Event::Apply(o) | Event::Delete(o) => map(o),
        Event::Init | Event::InitDone => Vec::new(),
    }
}

type KeyFn<K> = Arc<dyn Fn(&Event<K>) -> Vec<ObjectRef> + Send + Sync>;

/// The keys `keys` returns for each change of a shared reflector, empty sets skipped.
fn keys_of_changes<C: Resource>(
    changes: impl Stream<Item = Change<C>> + Send + 'static,
    keys: impl Fn(&Change<C>) -> Vec<ObjectRef> + Send + 'static,
) -> BoxStream<'static, Vec<ObjectRef>> {
    changes
        .filter_map(move |c| {
            let keys = keys(&c);
            futures::future::ready((!keys.is_empty()).then_some(keys))
        })
        .boxed()
}

/// The controller-owner (the ownerReference with `controller: true`) of `c` if it is of kind K.
fn controller_owner<K: Resource, C: Resource>(c: &C) -> Vec<ObjectRef> {
    let m = c.meta();
    m.owner_references
        .iter()
        .filter(|r| r.kind == K::KIND && r.controller == Some(true))
        .map(|r| ObjectRef::new(if K::NAMESPACED { &m.namespace } else { "" }, &r.name))
        .collect()
}

fn logged<K: Resource>(
    s: impl Stream<Item = crate::Result<Event<K>>> + Send + 'static,
    keys: KeyFn<K>,
) -> BoxStream<'static, Vec<ObjectRef>> {
    s.filter_map(move |ev| {
        let keys = match ev {
            Ok(e) => keys(&e),
            Err(e) => {
                tracing::warn!(kind = K::KIND, error = %e, "watch failed; retrying");
                Vec::new()
            }
        };
        futures::future::ready((!keys.is_empty()).then_some(keys))
    })
    .boxed()
}

impl<K: Resource> Controller<K> {
    /// A controller of `api`'s kind (in its namespace, or all namespaces).
    pub fn new(api: Api<K>, cfg: WatcherConfig) -> Controller<K> {
        let (reader, writer): (Store<K>, Writer<K>) = store();
        // The main kind: changes schedule their key; a completed (re)list schedules every key in the store
        // (the store holds the relist only from InitDone on, so InitApply schedules nothing).
        let all = reader.clone();
        let keys: KeyFn<K> = Arc::new(move |ev: &Event<K>| match ev {
            Event::Apply(o) | Event::Delete(o) => vec![ObjectRef::from_obj(o)],
            Event::InitDone => all.keys(),
            Event::Init | Event::InitApply(_) => Vec::new(),
        });
        let main = logged(reflector(writer, watcher(api, cfg)), keys);
        Controller { main, triggers: Vec::new(), reader, concurrency: 4 }
    }

    /// A controller of the kind `reflector` watches, sharing its watch and store with everything else
    /// that follows it (kube-runtime's `for_shared_stream`). Changes schedule their key, a resync every
    /// key in the store. The caller runs the reflector.
    pub fn for_shared(reflector: &SharedReflector<K>) -> Controller<K> {
        let reader = reflector.store();
        let all = reader.clone();
        let main = keys_of_changes(reflector.subscribe(), move |c| match c {
            Change::Apply(o) | Change::Delete(o) => vec![ObjectRef::from_obj(o.as_ref())],
            Change::Resync => all.keys(),
        });
        Controller { main, triggers: Vec::new(), reader, concurrency: 4 }
    }

    /// The store the controller keeps (read it in reconcile).
    pub fn store(&self) -> Store<K> {
        self.reader.clone()
    }

    /// At most `n` reconciles at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Also reconciles the controller-owner (ownerReferences with `controller: true` of kind K) of every
    /// changed object of kind C.
    pub fn owns<C: Resource>(self, api: Api<C>, cfg: WatcherConfig) -> Self {
        self.watches(api, cfg, controller_owner::<K, C>)
    }

    /// [`owns`](Self::owns) through a shared reflector of C.
    pub fn owns_shared<C: Resource>(self, reflector: &SharedReflector<C>) -> Self {
        self.watches_shared(reflector, controller_owner::<K, C>)
    }

    /// Also reconciles the keys `map` returns for every changed object of kind C.
    pub fn watches<C: Resource>(
        mut self,
        api: Api<C>,
        cfg: WatcherConfig,
        map: impl Fn(&C) -> Vec<ObjectRef> + Send + Sync + 'static,
    ) -> Self {
        let keys: KeyFn<C> = Arc::new(move |ev: &Event<C>| keys_of(ev, &map));
        self.triggers.push(logged(watcher(api, cfg), keys));
        self
    }

    /// Also reconciles the keys `map` returns for every changed object of a shared reflector of C, and
    /// every key of this controller's store when that reflector resyncs (it relisted, or this
    /// controller fell behind it): objects may have gone unseen, and what they mapped to with them.
    pub fn watches_shared<C: Resource>(
        mut self,
        reflector: &SharedReflector<C>,
        map: impl Fn(&C) -> Vec<ObjectRef> + Send + Sync + 'static,
    ) -> Self {
        let all = self.reader.clone();
        self.triggers.push(keys_of_changes(reflector.subscribe(), move |c| match c {
            Change::Apply(o) | Change::Delete(o) => map(o),
            Change::Resync => all.keys(),
        }));
        self
    }

    /// Also reconciles the keys that `keys` yields (events from outside the api-server, such as a
    /// container runtime's).
    pub fn triggered_by(mut self, keys: impl Stream<Item = Vec<ObjectRef>> + Send + 'static) -> Self {
        self.triggers.push(keys.boxed());
        self
    }

    /// Runs until `shutdown` is cancelled, then waits for running reconciles to finish.
    pub async fn run<Ctx, E, F, Fut, P>(
        self,
        reconcile: F,
        error_policy: P,
        ctx: Arc<Ctx>,
        shutdown: CancellationToken,
    ) where
        Ctx: Send + Sync + 'static,
        E: Display + Send + 'static,
        F: Fn(Arc<K>, Arc<Ctx>) -> Fut,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        P: Fn(Arc<K>, &E, Arc<Ctx>) -> Action,
    {
        let mut triggers: SelectAll<BoxStream<'static, Vec<ObjectRef>>> =
            futures::stream::select_all(self.triggers);
        triggers.push(self.main);
        let store = self.reader;
        let mut queue = WorkQueue::default();
        let mut failures: HashMap<ObjectRef, u32> = HashMap::new();
        let mut running: JoinSet<(ObjectRef, Arc<K>, Result<Action, E>)> = JoinSet::new();
        loop {
            let now = Instant::now();
            while running.len() < self.concurrency {
                let Some(key) = queue.pop_due(now) else { break };
                match store.get(&key) {
                    Some(obj) => {
                        let fut = reconcile(obj.clone(), ctx.clone());
                        let span = tracing::debug_span!("reconcile", kind = K::KIND, key = %key);
                        running.spawn(tracing::Instrument::instrument(
                            async move { (key, obj, fut.await) },
                            span,
                        ));
                    }
                    // Gone (deleted): nothing to reconcile; cleanup belongs to finalizers.
                    None => queue.finish(&key),
                }
            }
            let next_due = queue.next_due();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(keys) = triggers.next() => {
                    let now = Instant::now();
                    for k in keys {
                        queue.schedule(k, now);
                    }
                }
                Some(done) = running.join_next(), if !running.is_empty() => {
                    let (key, obj, result) = match done {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::error!(kind = K::KIND, error = %e, "reconcile task panicked");
                            continue;
                        }
                    };
                    queue.finish(&key);
                    let now = Instant::now();
                    match result {
                        Ok(action) => {
                            failures.remove(&key);
                            if let Action::Requeue(d) = action {
                                queue.schedule(key, now + d);
                            }
                        }
                        Err(e) => {
                            let n = failures.entry(key.clone()).or_insert(0);
                            *n += 1;
                            // One failure (typically a conflict with a newer copy) is routine and
                            // retried at once; repeated ones are worth a warning.
                            if *n >= 3 {
                                tracing::warn!(kind = K::KIND, key = %key, failures = *n, error = %e, "reconcile failed");
                            } else {
                                tracing::debug!(kind = K::KIND, key = %key, failures = *n, error = %e, "reconcile failed; retrying");
                            }
                            if let Action::Requeue(d) = error_policy(obj, &e, ctx.clone()) {
                                queue.schedule(key, now + d.max(error_backoff(*n)));
                            }
                        }
                    }
                }
                _ = tokio::time::sleep_until(next_due.unwrap_or(now)), if next_due.is_some() => {}
            }
        }
        while running.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: &str) -> ObjectRef {
        ObjectRef::new("ns", n)
    }

    #[test]
    fn dedups_and_orders() {
        let mut q = WorkQueue::default();
        let t = Instant::now();
        q.schedule(k("a"), t);
        q.schedule(k("a"), t);
        q.schedule(k("b"), t + Duration::from_secs(5));
        q.schedule(k("b"), t);
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop_due(t), Some(k("a")));
        assert_eq!(q.pop_due(t), Some(k("b")));
        assert_eq!(q.pop_due(t), None);
    }

    #[test]
    fn later_schedule_keeps_earlier_time() {
        let mut q = WorkQueue::default();
        let t = Instant::now();
        q.schedule(k("a"), t);
        q.schedule(k("a"), t + Duration::from_secs(60));
        assert_eq!(q.next_due(), Some(t));
    }

    #[test]
    fn running_key_is_not_handed_out_twice_and_reruns_after() {
        let mut q = WorkQueue::default();
        let t = Instant::now();
        q.schedule(k("a"), t);
        assert_eq!(q.pop_due(t), Some(k("a")));
        q.schedule(k("a"), t);
        q.schedule(k("a"), t);
        assert_eq!(q.pop_due(t), None, "a is running");
        q.finish(&k("a"));
        assert_eq!(q.pop_due(t), Some(k("a")), "changed while running: runs again, once");
        q.finish(&k("a"));
        assert_eq!(q.pop_due(t), None);
        assert!(q.is_empty());
    }

    #[test]
    fn requeue_waits_until_due() {
        let mut q = WorkQueue::default();
        let t = Instant::now();
        q.schedule(k("a"), t + Duration::from_secs(1));
        assert_eq!(q.pop_due(t), None);
        assert_eq!(q.pop_due(t + Duration::from_secs(1)), Some(k("a")));
    }

    /// Two controllers on one shared reflector, one also triggered by another: both reconcile every
    /// change, and a resync of the trigger reconciles every key of the main kind.
    #[tokio::test]
    async fn controllers_share_one_reflector() {
        use crate::store::tests::cm;
        use navarch_api::v1::{ConfigMap, Secret};
        use std::sync::Mutex;
        let (maps_tx, maps_rx) = futures::channel::mpsc::unbounded();
        let (secrets_tx, secrets_rx) = futures::channel::mpsc::unbounded::<crate::Result<Event<Secret>>>();
        let maps = SharedReflector::from_events(maps_rx, 64);
        let secrets = SharedReflector::from_events(secrets_rx, 64);
        // (controller, key, value it read)
        let seen: Arc<Mutex<Vec<(usize, String, String)>>> = Arc::default();
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for id in 0..2 {
            let mut c = Controller::for_shared(&maps);
            if id == 1 {
                c = c.watches_shared(&secrets, |s: &Secret| {
                    vec![ObjectRef::new("ns", &s.metadata.as_ref().unwrap().name)]
                });
            }
            let seen = seen.clone();
            let reconcile = move |o: Arc<ConfigMap>, _: Arc<()>| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push((
                        id,
                        o.metadata.as_ref().unwrap().name.clone(),
                        o.data["k"].clone(),
                    ));
                    Ok::<_, String>(Action::await_change())
                }
            };
            tasks.spawn(c.run(reconcile, |_, _, _| Action::await_change(), Arc::new(()), stop.clone()));
        }
        tasks.spawn(maps.run(stop.clone()));
        tasks.spawn(secrets.run(stop.clone()));
        let count = |id: usize, name: &str, v: &str| {
            seen.lock().unwrap().iter().filter(|(i, n, x)| *i == id && n == name && x == v).count()
        };
        async fn eventually(what: &str, ok: impl Fn() -> bool) {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !ok() {
                assert!(Instant::now() < deadline, "timed out waiting for {what}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        for ev in [Event::Init, Event::InitApply(cm("a", "1")), Event::InitDone, Event::Apply(cm("b", "1"))] {
            maps_tx.unbounded_send(Ok(ev)).unwrap();
        }
        let both = || (0..2).all(|id| count(id, "a", "1") >= 1 && count(id, "b", "1") >= 1);
        eventually("both controllers to see a and b", both).await;
        // An empty relist of the trigger kind: controller 1 reconciles every ConfigMap again.
        let before = (count(1, "a", "1"), count(1, "b", "1"));
        secrets_tx.unbounded_send(Ok(Event::Init)).unwrap();
        secrets_tx.unbounded_send(Ok(Event::InitDone)).unwrap();
        eventually("a resync of every key", || {
            count(1, "a", "1") > before.0 && count(1, "b", "1") > before.1
        })
        .await;
        stop.cancel();
        while tasks.join_next().await.is_some() {}
    }

    #[test]
    fn error_backoff_grows_and_caps() {
        assert_eq!(error_backoff(1), Duration::from_millis(5));
        assert_eq!(error_backoff(2), Duration::from_millis(10));
        assert!(error_backoff(30) <= Duration::from_secs(300));
    }
}
