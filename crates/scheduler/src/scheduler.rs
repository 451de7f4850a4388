//! The scheduling loop: one task owns the cache of nodes and pods (fed by watches, no polling), takes
//! pending pods from a queue, filters and scores nodes, assumes the pod on the chosen node at once (so the
//! next decision already counts it) and binds in the background; a failed bind forgets the assumption
//! and requeues the pod. Pods that fit nowhere get `PodScheduled=False`/`Unschedulable` with Kubernetes'
//! message and an Event, and are retried with backoff and whenever a node or pod changes.
//!
//! The queue is ordered by priority ([`crate::queue`]). A pod that fits nowhere may preempt pods of
//! lower priority ([`crate::preemption`]): it is nominated to a node (counted there for pods of lower
//! or equal priority), the victims are deleted in the background, and it is retried once they are gone.
//! Everything is rebuilt from the watches after a restart (nominations from the pods' status).
//!
//! Pods using PersistentVolumeClaims also go through [`crate::volumes`]: claims, volumes and classes are
//! kept in reflector stores; the chosen node's volume decision is assumed with the pod, written (volume
//! claimRefs, claims' selected node) before the pod is bound, and reverted if any write fails.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use navarch_api::Resource;
use navarch_api::v1::{
    Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, PodDisruptionBudget, StorageClass,
};
use navarch_client::store::{Store, Writer};
use navarch_client::{
    Client, Event, EventRecorder, ObjectRef, PodBinding, WatcherConfig, object_ref, reflector, store, watcher,
};
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::binder::Binder;
use crate::cache::Cache;
use crate::cycle::Cycle;
use crate::filters::preemption_might_help;
use crate::metrics::SchedulerMetrics;
use crate::node_info::{NodeInfo, pod_key};
use crate::preemption::act::{self, Nomination};
use crate::preemption::{self, Outcome, filter, priority};
use crate::queue::Queue;
use crate::volumes::bind::VolumeWrites;
use crate::volumes::{self, PodVolumes, VolumeCache};

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub scheduler_name: String,
    /// Percentage of nodes to score in large clusters (0: Kubernetes' adaptive default).
    pub percentage_of_nodes_to_score: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Threads filtering nodes in large clusters (0: half the cores on machines with 4 or more, else 1).
    /// Measured on 2 cores: parallel filtering kept the rate but multiplied latency, as the filter threads
    /// compete with the api-server and etcd for the same cores.
    pub parallelism: usize,
    /// PodTopologySpread's arguments: the default constraints for pods without their own.
    pub spread: crate::spread::SpreadArgs,
    /// Score plugins, weights and their args (the config file's profile).
    pub scoring: Arc<crate::scores::Profile>,
}

fn cfg_workers(cfg: &SchedulerConfig) -> usize {
    if cfg.parallelism > 0 {
        return cfg.parallelism;
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if cores >= 4 { cores / 2 } else { 1 }
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            scheduler_name: "default-scheduler".into(),
            percentage_of_nodes_to_score: 0,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            parallelism: 0,
            spread: crate::spread::SpreadArgs::default(),
            scoring: Arc::default(),
        }
    }
}

/// What the loop hears from the outside.
enum Input {
    Nodes(Box<Event<Node>>),
    Pods(Box<Event<Pod>>),
    /// Namespaces, for their labels (pod affinity terms' `namespaceSelector`).
    Namespaces(Box<Event<Namespace>>),
    /// A claim, volume or class was added or changed (the stores already hold it).
    Storage(StorageChange),
    /// A Service, ReplicaSet, StatefulSet or ReplicationController: default spreading selectors.
    SpreadSource(crate::spread::SourceEvent),
    Bound {
        key: String,
        result: Result<(), BindError>,
    },
    /// A preemption's writes are done: the victims now terminating on `node`.
    Preempted {
        key: String,
        node: String,
        terminating: Vec<act::Victim>,
    },
}

/// Which storage change may make pods schedulable (Kubernetes' queueing hints of VolumeBinding).
enum StorageChange {
    /// The claim `namespace/name`: pods using it.
    Claim(ObjectRef),
    /// A volume or class, or a store's (re)list: pods using any claim.
    Any,
}

/// Why binding a pod failed.
#[derive(Debug, thiserror::Error)]
enum BindError {
    /// Writing its volumes' claimRefs or claims' selected node (Kubernetes' PreBind).
    #[error("running PreBind plugin \"VolumeBinding\": {0}")]
    Volumes(navarch_client::Error),
    #[error(transparent)]
    Pod(navarch_client::Error),
}

/// The write halves of the storage stores, until `run` starts their watches.
struct StorageWriters {
    claims: Writer<PersistentVolumeClaim>,
    volumes: Writer<PersistentVolume>,
    classes: Writer<StorageClass>,
}

/// What a pod's volume decision assumed, to revert if its writes or its binding fail.
struct AssumedVolumes {
    volumes: Vec<String>,
    claims: Vec<ObjectRef>,
}

struct Pending {
    pod: Arc<Pod>,
    first_seen: Instant,
    attempts: u32,
    not_before: Instant,
}

/// Events queued for the recorder; beyond this they are dropped (client-go's broadcaster drops too), so
/// a burst of bindings is never slowed by its events.
const EVENT_QUEUE: usize = 1000;

pub struct Scheduler {
    client: Client,
    metrics: Arc<SchedulerMetrics>,
    events: Option<EventRecorder>,
    /// Batches the bindings (set while `run` runs).
    binder: Option<Binder>,
    cfg: SchedulerConfig,
    /// Nodes and the pods counted on them.
    cache: Cache,
    pending: HashMap<String, Pending>,
    queue: Queue,
    /// PodDisruptionBudgets, for choosing victims; the writer until `run` starts its watch.
    pdbs: Store<PodDisruptionBudget>,
    pdbs_writer: Option<Writer<PodDisruptionBudget>>,
    /// Preemptors whose writes are in flight: not retried until they are done.
    preempting: HashSet<String>,
    /// Per preemptor: its node and victims; it does not preempt again while any of them is still there.
    victims_of: HashMap<String, (String, Vec<act::Victim>)>,
    next_start: usize,
    /// Threads for filtering large clusters.
    workers: usize,
    /// Claims, volumes and classes, with what this scheduler assumed.
    volumes: VolumeCache,
    storage_writers: Option<StorageWriters>,
    /// Per pod being bound: the volume writes assumed for it.
    assumed_volumes: HashMap<String, AssumedVolumes>,
}

fn num_feasible_to_find(total: usize, pct: u32) -> usize {
    const MIN: usize = 100;
    if total <= MIN {
        return total;
    }
    let pct = if pct == 0 { (50 - total as i64 / 125).max(5) as usize } else { (pct as usize).min(100) };
    (total * pct / 100).max(MIN)
}

/// How many nodes failed for each reason, and on which evicting pods could have helped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Failures {
    pub reasons: BTreeMap<String, usize>,
    pub preemption_might_help: usize,
    /// The nodes (indices in the cycle's nodes, ascending) preemption might help: its candidates.
    pub helpful: Vec<usize>,
}

impl Failures {
    /// Counts one node's reasons.
    pub fn add(&mut self, reasons: Vec<String>) {
        self.add_node(usize::MAX, reasons);
    }

    /// Counts the reasons of the node at `idx` in the cycle's nodes.
    pub fn add_node(&mut self, idx: usize, reasons: Vec<String>) {
        if preemption_might_help(&reasons) {
            self.preemption_might_help += 1;
            if idx != usize::MAX {
                self.helpful.push(idx);
            }
        }
        for r in reasons {
            *self.reasons.entry(r).or_insert(0) += 1;
        }
    }

    fn merge(&mut self, other: Failures) {
        self.preemption_might_help += other.preemption_might_help;
        self.helpful.extend(other.helpful);
        for (k, v) in other.reasons {
            *self.reasons.entry(k).or_insert(0) += v;
        }
    }
}

/// Kubernetes' FitError message: the pre-filter's reason or each reason with its node count (sorted as
/// strings), then what preemption found when it could not help (`postfilter`, from
/// [`preemption::preempt`]; none when it nominated the pod):
/// `0/3 nodes are available: 1 node(s) had untolerated taint {a: b}, 2 Insufficient cpu. preemption: 0/3
/// nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for
/// incoming pod.`
pub fn unschedulable_message(
    total: usize,
    prefilter: Option<&str>,
    failures: &Failures,
    postfilter: Option<&str>,
) -> String {
    let list = match prefilter {
        Some(p) => vec![p.to_string()],
        None => {
            let mut l: Vec<String> = failures.reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
            l.sort();
            l
        }
    };
    if total == 0 || list.is_empty() {
        return format!("0/{total} nodes are available.");
    }
    match postfilter {
        Some(p) => format!("0/{total} nodes are available: {}. preemption: {p}", list.join(", ")),
        None => format!("0/{total} nodes are available: {}.", list.join(", ")),
    }
}

fn is_pending_for(pod: &Pod, name: &str) -> bool {
    let spec = pod.spec.as_ref();
    let sched = spec.map(|s| s.scheduler_name.as_str()).unwrap_or("");
    let phase = pod.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("");
    spec.is_some_and(|s| s.node_name.is_empty())
        && (sched == name || (sched.is_empty() && name == "default-scheduler"))
        && pod.metadata.as_ref().is_some_and(|m| m.deletion_timestamp.is_empty())
        && phase != "Succeeded"
        && phase != "Failed"
}

impl Scheduler {
    pub fn new(client: Client, cfg: SchedulerConfig, metrics: Arc<SchedulerMetrics>) -> Scheduler {
        let workers = cfg_workers(&cfg);
        let (claims, claims_w) = store();
        let (volumes, volumes_w) = store();
        let (classes, classes_w) = store();
        let (pdbs, pdbs_w) = store();
        let mut cache = Cache::default();
        cache.spread_defaults_mut().configure(&cfg.spread);
        Scheduler {
            client,
            metrics,
            events: None,
            binder: None,
            cfg,
            cache,
            pending: HashMap::new(),
            queue: Queue::default(),
            pdbs,
            pdbs_writer: Some(pdbs_w),
            preempting: HashSet::new(),
            victims_of: HashMap::new(),
            next_start: 0,
            workers,
            volumes: VolumeCache::new(claims, volumes, classes),
            storage_writers: Some(StorageWriters {
                claims: claims_w,
                volumes: volumes_w,
                classes: classes_w,
            }),
            assumed_volumes: HashMap::new(),
        }
    }

    /// Runs until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let (tx, mut rx) = mpsc::channel::<Input>(4096);
        let mut feeds = vec![
            feed(watcher(self.client.api::<Node>(""), WatcherConfig::default()), &tx, &shutdown, |e| {
                Some(Input::Nodes(Box::new(e)))
            }),
            feed(watcher(self.client.api::<Pod>(""), WatcherConfig::default()), &tx, &shutdown, |e| {
                Some(Input::Pods(Box::new(e)))
            }),
            feed(watcher(self.client.api::<Namespace>(""), WatcherConfig::default()), &tx, &shutdown, |e| {
                Some(Input::Namespaces(Box::new(e)))
            }),
        ];
        if let Some(w) = self.storage_writers.take() {
            let claims = reflector(w.claims, watcher(self.client.api(""), WatcherConfig::default()));
            feeds.push(feed(claims, &tx, &shutdown, |e: Event<PersistentVolumeClaim>| match e {
                Event::Apply(c) => Some(Input::Storage(StorageChange::Claim(ObjectRef::from_obj(&c)))),
                Event::InitDone => Some(Input::Storage(StorageChange::Any)),
                _ => None,
            }));
            let volumes = reflector(w.volumes, watcher(self.client.api(""), WatcherConfig::default()));
            feeds.push(feed(volumes, &tx, &shutdown, storage_change::<PersistentVolume>));
            let classes = reflector(w.classes, watcher(self.client.api(""), WatcherConfig::default()));
            feeds.push(feed(classes, &tx, &shutdown, storage_change::<StorageClass>));
        }
        if let Some(w) = self.pdbs_writer.take() {
            let pdbs = reflector(w, watcher(self.client.api(""), WatcherConfig::default()));
            feeds.push(feed(pdbs, &tx, &shutdown, |_: Event<PodDisruptionBudget>| None));
        }
        if self.cache.spread_defaults().needs_sources() {
            feeds.extend(spread_source_feeds(&self.client, &tx, &shutdown));
        }
        let (events, sender) = EventRecorder::new(self.client.clone(), "default-scheduler", "", EVENT_QUEUE);
        self.events = Some(events);
        let recorder = tokio::spawn(sender);
        let (binder, batches) = Binder::new(self.client.clone());
        self.binder = Some(binder);
        let binder = tokio::spawn(batches);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            self.schedule_ready(&tx);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(input) = rx.recv() => self.handle(input),
                _ = tick.tick() => {}
            }
            // Drain what is already queued before the next decisions: keeps the cache current.
            while let Ok(input) = rx.try_recv() {
                self.handle(input);
            }
            self.metrics.pending.set(self.pending.len() as i64);
        }
        for f in feeds {
            f.abort();
        }
        self.events = None;
        self.binder = None;
        let _ = tokio::time::timeout(Duration::from_secs(2), recorder).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), binder).await;
    }

    fn record(&self, pod: Arc<Pod>, ty: &'static str, reason: &'static str, msg: String) {
        if let Some(events) = &self.events {
            events.record(object_ref(pod.as_ref()), ty, reason, msg);
        }
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Nodes(ev) => {
                match *ev {
                    Event::Init => {}
                    Event::InitApply(n) | Event::Apply(n) => self.upsert_node(n),
                    Event::InitDone => {}
                    Event::Delete(n) => self.cache.remove_node(&n.meta().name),
                }
                self.retry_unschedulable();
            }
            Input::Pods(ev) => match *ev {
                Event::Init | Event::InitDone => {}
                Event::InitApply(p) | Event::Apply(p) => self.upsert_pod(Arc::new(p)),
                Event::Delete(p) => {
                    let key = pod_key(&p);
                    self.cache.delete(&key);
                    self.cache.nominated_mut().remove(&key);
                    self.pending.remove(&key);
                    self.victims_of.remove(&key);
                    self.retry_unschedulable();
                }
            },
            Input::Namespaces(ev) => {
                match *ev {
                    Event::InitApply(n) | Event::Apply(n) => {
                        self.cache.upsert_namespace(&n.meta().name, n.meta().labels.clone())
                    }
                    Event::Delete(n) => self.cache.remove_namespace(&n.meta().name),
                    Event::Init | Event::InitDone => return,
                }
                self.retry_if(crate::interpod::selects_namespaces_by_label);
            }
            Input::Storage(change) => {
                self.volumes.prune();
                match change {
                    StorageChange::Claim(c) => self.retry_if(|p| {
                        p.meta().namespace == c.namespace
                            && volumes::pod_claims(p).iter().any(|u| u.name == c.name)
                    }),
                    StorageChange::Any => self.retry_if(volumes::has_claims),
                }
            }
            Input::SpreadSource(e) => self.cache.spread_defaults_mut().apply(e),
            Input::Bound { key, result } => {
                let assumed = self.assumed_volumes.remove(&key);
                match result {
                    Ok(()) => {}
                    Err(BindError::Pod(navarch_client::Error::NotFound(_))) => {
                        self.forget(&key);
                    }
                    Err(e) => {
                        tracing::warn!(pod = %key, error = %e, "bind failed; retrying");
                        self.forget(&key);
                        if let Some(a) = assumed {
                            a.volumes.iter().for_each(|v| self.volumes.forget_volume(v));
                            a.claims.iter().for_each(|c| self.volumes.forget_claim(c));
                        }
                        if let Some(p) = self.pending.get_mut(&key) {
                            p.not_before = Instant::now() + backoff(&self.cfg, p.attempts);
                            if matches!(e, BindError::Volumes(_)) {
                                let pod = p.pod.clone();
                                self.record(pod, "Warning", "FailedScheduling", e.to_string());
                            }
                            self.enqueue(key);
                        }
                    }
                }
            }
            Input::Preempted { key, node, terminating } => {
                self.preempting.remove(&key);
                if self.pending.contains_key(&key) && !terminating.is_empty() {
                    self.victims_of.insert(key, (node, terminating));
                }
            }
        }
    }

    /// Queues a pending pod by its priority.
    fn enqueue(&mut self, key: String) {
        if let Some(p) = self.pending.get(&key) {
            let prio = priority(&p.pod);
            self.queue.push(key, prio);
        }
    }

    fn upsert_node(&mut self, n: Node) {
        self.cache.upsert_node(Arc::new(n));
    }

    fn forget(&mut self, key: &str) {
        self.cache.forget(key);
    }

    fn upsert_pod(&mut self, pod: Arc<Pod>) {
        let key = pod_key(&pod);
        let node = pod.spec.as_ref().map(|s| s.node_name.clone()).unwrap_or_default();
        let finished = pod.status.as_ref().is_some_and(|s| s.phase == "Succeeded" || s.phase == "Failed");
        if !node.is_empty() {
            // Bound (by us or anyone): count it where it runs, replacing any assumption.
            self.pending.remove(&key);
            self.cache.nominated_mut().remove(&key);
            self.victims_of.remove(&key);
            let newly_placed = !finished && self.cache.placed(&key).is_none();
            self.cache.bound(key, &node, pod, finished);
            if newly_placed {
                // A pod appearing on a node may satisfy pending pods' affinity or spreading (Kubernetes'
                // queueing hints of InterPodAffinity and PodTopologySpread).
                self.retry_if(|p| {
                    p.spec.as_ref().is_some_and(|s| {
                        !s.topology_spread_constraints.is_empty()
                            || s.affinity.as_ref().is_some_and(|a| a.pod_affinity.is_some())
                    })
                });
            }
            return;
        }
        if self.cache.placed(&key).is_some() {
            return; // assumed, bind in flight
        }
        if is_pending_for(&pod, &self.cfg.scheduler_name) {
            self.cache.nominated_mut().update(&key, pod.clone());
            match self.pending.get_mut(&key) {
                Some(p) => p.pod = pod,
                None => {
                    self.pending.insert(
                        key.clone(),
                        Pending { pod, first_seen: Instant::now(), attempts: 0, not_before: Instant::now() },
                    );
                    self.enqueue(key);
                }
            }
        } else {
            self.pending.remove(&key);
            self.cache.nominated_mut().remove(&key);
            self.victims_of.remove(&key);
        }
    }

    fn retry_unschedulable(&mut self) {
        self.retry_if(|_| true);
    }

    /// Retries now the pods waiting out a backoff for which `hint` says the change may help.
    fn retry_if(&mut self, hint: impl Fn(&Pod) -> bool) {
        let now = Instant::now();
        let mut ready = Vec::new();
        for (key, p) in self.pending.iter_mut() {
            if p.attempts > 0 && p.not_before > now && hint(&p.pod) {
                p.not_before = now;
                ready.push(key.clone());
            }
        }
        for key in ready {
            self.enqueue(key);
        }
    }

    fn schedule_ready(&mut self, tx: &mpsc::Sender<Input>) {
        let now = Instant::now();
        let mut deferred = Vec::new();
        while let Some(key) = self.queue.pop() {
            let Some(p) = self.pending.get(&key) else { continue };
            if self.cache.placed(&key).is_some() {
                continue;
            }
            if p.not_before > now || self.preempting.contains(&key) {
                deferred.push(key);
                continue;
            }
            let pod = p.pod.clone();
            self.schedule_one(key, pod, tx);
        }
        for key in deferred {
            self.enqueue(key);
        }
    }

    /// Kubernetes' volume PreFilter (VolumeRestrictions, VolumeBinding). Pods without claims read no
    /// store.
    fn prefilter_volumes(&self, pod: &Pod) -> VolumePrefilter {
        if !volumes::has_claims(pod) {
            return VolumePrefilter::NoClaims;
        }
        if !self.volumes.is_ready() {
            return VolumePrefilter::NotReady;
        }
        let ns = pod.meta().namespace.as_str();
        let in_use =
            |claim: &str| self.cache.index().all().any(|(p, _)| volumes::pod_uses_claim(p, ns, claim));
        match self.volumes.prefilter(pod, in_use) {
            Ok(v) => VolumePrefilter::Claims(v),
            Err(reason) => VolumePrefilter::Unschedulable(reason),
        }
    }

    /// The pod fits nowhere: back to the queue with backoff; the PodScheduled condition and an event say
    /// why (on the first attempt and every fifth).
    fn unschedulable(&mut self, key: String, pod: Arc<Pod>, msg: String) {
        self.unschedulable_with(key, pod, msg, Nomination::Keep);
    }

    /// As [`Self::unschedulable`], also writing the pod's nomination (always, when it changes).
    fn unschedulable_with(&mut self, key: String, pod: Arc<Pod>, msg: String, nomination: Nomination) {
        self.metrics.attempt("unschedulable");
        let p = self.pending.get_mut(&key).expect("pending pod");
        p.attempts += 1;
        p.not_before = Instant::now() + backoff(&self.cfg, p.attempts);
        let report = p.attempts == 1 || p.attempts.is_multiple_of(5) || nomination != Nomination::Keep;
        self.enqueue(key.clone());
        tracing::debug!(pod = %key, %msg, "unschedulable");
        if report {
            tokio::spawn(act::report_unschedulable(
                self.client.clone(),
                pod.clone(),
                msg.clone(),
                nomination,
            ));
            self.record(pod, "Warning", "FailedScheduling", msg);
        }
    }

    fn schedule_one(&mut self, key: String, pod: Arc<Pod>, tx: &mpsc::Sender<Input>) {
        let total = self.cache.nodes().len();
        let vols = match self.prefilter_volumes(&pod) {
            VolumePrefilter::NoClaims => None,
            VolumePrefilter::Claims(v) => Some(v),
            VolumePrefilter::NotReady => {
                // The claim stores are still listing: look again shortly, without counting an attempt.
                if let Some(p) = self.pending.get_mut(&key) {
                    p.not_before = Instant::now() + Duration::from_millis(200);
                }
                self.enqueue(key);
                return;
            }
            VolumePrefilter::Unschedulable(reason) => {
                let post = preemption::prefilter_message(&pod, total);
                let msg = unschedulable_message(total, Some(&reason), &Failures::default(), Some(&post));
                self.unschedulable(key, pod, msg);
                return;
            }
        };
        let cycle = Cycle::new(&pod, &self.cache, vols.as_ref());
        // A nominated pod tries its nominated node first (Kubernetes' evaluateNominatedNode).
        let nominated = preemption::nominated_node(&cycle)
            .and_then(|n| self.cache.node(n))
            .filter(|n| filter(&cycle, n).is_empty());
        let feasible: Vec<&NodeInfo> = match nominated {
            Some(n) => vec![n],
            None => {
                let want = num_feasible_to_find(total, self.cfg.percentage_of_nodes_to_score);
                let (found, failures) = find_feasible(&cycle, self.next_start, want, self.workers);
                let feasible: Vec<&NodeInfo> = found.into_iter().map(|i| cycle.nodes[i]).collect();
                if total > 0 {
                    self.next_start = (self.next_start + feasible.len().max(1)) % total;
                }
                if feasible.is_empty() {
                    let outcome = self.preempt(&cycle, &failures);
                    drop(cycle);
                    self.after_preemption(key, pod, total, &failures, outcome, tx);
                    return;
                }
                feasible
            }
        };
        let scores = self.cfg.scoring.score(&cycle, &feasible);
        let best = scores.iter().copied().max().unwrap_or(0);
        let top: Vec<usize> =
            scores.iter().enumerate().filter(|(_, s)| **s == best).map(|(i, _)| i).collect();
        let chosen_info = feasible[top[rand::rng().random_range(0..top.len())]];
        let chosen = chosen_info.name().to_string();
        // The volume decision on the chosen node, assumed with the pod.
        let writes = vols.as_ref().map(|v| VolumeWrites::plan(&v.check_node(&chosen_info.node), &chosen));
        // Assume: count the pod on the node now.
        let mut assumed = (*pod).clone();
        if let Some(s) = assumed.spec.as_mut() {
            s.node_name = chosen.clone();
        }
        drop(cycle);
        self.cache.nominated_mut().remove(&key);
        self.cache.assume(key.clone(), &chosen, Arc::new(assumed));
        if let Some(w) = writes.as_ref().filter(|w| !w.is_empty()) {
            self.assume_volumes(&key, w);
        }
        let client = self.client.clone();
        let Some(binder) = self.binder.clone() else {
            // Not running (no binder): nothing is bound, so nothing stays assumed.
            self.forget(&key);
            return;
        };
        let tx = tx.clone();
        let events = self.events.clone();
        let metrics = self.metrics.clone();
        let first_seen = self.pending.get(&key).map(|p| p.first_seen).unwrap_or_else(Instant::now);
        tokio::spawn(async move {
            let m = pod.metadata.clone().unwrap_or_default();
            let result = match writes {
                Some(w) if !w.is_empty() => w.write(&client).await.map_err(BindError::Volumes),
                _ => Ok(()),
            };
            let result = match result {
                Ok(()) => {
                    let binding = PodBinding {
                        namespace: m.namespace.clone(),
                        name: m.name.clone(),
                        uid: m.uid.clone(),
                        node: chosen.clone(),
                    };
                    binder.bind(binding).await.map_err(BindError::Pod)
                }
                Err(e) => Err(e),
            };
            match &result {
                Ok(()) => {
                    metrics.attempt("scheduled");
                    metrics.e2e_latency.observe(first_seen.elapsed().as_secs_f64());
                }
                Err(_) => metrics.attempt("error"),
            }
            if result.is_ok()
                && let Some(events) = events
            {
                let msg = format!("Successfully assigned {}/{} to {chosen}", m.namespace, m.name);
                events.record(object_ref(pod.as_ref()), "Normal", "Scheduled", msg);
            }
            let _ = tx.send(Input::Bound { key, result }).await;
        });
    }

    /// Kubernetes' PostFilter for a pod that fits nowhere; a pod still waiting for the victims it
    /// preempted does not preempt again.
    fn preempt(&self, cycle: &Cycle, failures: &Failures) -> Outcome {
        let key = pod_key(cycle.pod);
        if let Some((node, victims)) = self.victims_of.get(&key)
            && let Some(info) = self.cache.node(node)
            && victims.iter().any(|v| info.pods.get(&v.key).is_some_and(|p| p.meta().uid == v.uid))
        {
            let message = preemption::NOT_ELIGIBLE_TERMINATING.to_string();
            return Outcome::Fail { message, clear_nomination: false };
        }
        let offset = rand::rng().random_range(0..failures.helpful.len().max(1));
        preemption::preempt(cycle, failures, &self.pdbs.state(), offset)
    }

    /// Records what preemption decided: the pod is unschedulable either way; with victims, it is
    /// nominated to their node (in memory now, in its status by the task that deletes them).
    fn after_preemption(
        &mut self,
        key: String,
        pod: Arc<Pod>,
        total: usize,
        failures: &Failures,
        outcome: Outcome,
        tx: &mpsc::Sender<Input>,
    ) {
        match outcome {
            Outcome::Fail { message, clear_nomination } => {
                let msg = unschedulable_message(total, None, failures, Some(&message));
                let had = self.cache.nominated().node_of(&key).is_some()
                    || preemption::nominator::status_nomination(&pod).is_some();
                let nomination = if clear_nomination && had { Nomination::Clear } else { Nomination::Keep };
                if clear_nomination {
                    self.cache.nominated_mut().remove(&key);
                }
                self.unschedulable_with(key, pod, msg, nomination);
            }
            Outcome::Preempt { node, victims, lower_nominated } => {
                let msg = unschedulable_message(total, None, failures, None);
                self.metrics.attempt("unschedulable");
                tracing::info!(pod = %key, %node, victims = victims.pods.len(), "preempting");
                self.cache.nominated_mut().nominate(&key, pod.clone(), &node);
                for p in &lower_nominated {
                    self.cache.nominated_mut().remove(&pod_key(p));
                }
                if let Some(p) = self.pending.get_mut(&key) {
                    p.attempts += 1;
                    p.not_before = Instant::now() + backoff(&self.cfg, p.attempts);
                }
                self.enqueue(key.clone());
                self.preempting.insert(key.clone());
                self.record(pod.clone(), "Warning", "FailedScheduling", msg.clone());
                let plan =
                    act::Plan { preemptor: pod, node, victims: victims.pods, lower_nominated, message: msg };
                let (client, events, tx) = (self.client.clone(), self.events.clone(), tx.clone());
                tokio::spawn(async move {
                    let node = plan.node.clone();
                    let terminating = act::execute(client, events, plan).await;
                    let _ = tx.send(Input::Preempted { key, node, terminating }).await;
                });
            }
        }
    }

    /// Counts the volumes and claims as written until the watches show newer versions (or the writes
    /// fail), so the next pod does not take the same volume.
    fn assume_volumes(&mut self, key: &str, w: &VolumeWrites) {
        let mut a = AssumedVolumes { volumes: Vec::new(), claims: Vec::new() };
        for pv in &w.volumes {
            a.volumes.push(pv.meta().name.clone());
            self.volumes.assume_volume(pv.clone());
        }
        for pvc in &w.claims {
            a.claims.push(ObjectRef::from_obj(pvc));
            self.volumes.assume_claim(pvc.clone());
        }
        self.assumed_volumes.insert(key.to_string(), a);
    }
}

/// What the volume pre-filter says about a pod.
enum VolumePrefilter {
    /// The pod uses no claim.
    NoClaims,
    /// The claim, volume and class stores have not listed yet.
    NotReady,
    /// No node can take the pod, for this reason.
    Unschedulable(String),
    /// The pod's claims, to check per node.
    Claims(PodVolumes),
}

/// Feeds a watch's events, mapped to inputs (`None`: ignored), to the loop until shutdown.
fn feed<K, S>(
    events: S,
    tx: &mpsc::Sender<Input>,
    shutdown: &CancellationToken,
    to_input: impl Fn(Event<K>) -> Option<Input> + Send + 'static,
) -> tokio::task::JoinHandle<()>
where
    K: Resource,
    S: Stream<Item = navarch_client::Result<Event<K>>> + Send + 'static,
{
    let (tx, shutdown) = (tx.clone(), shutdown.clone());
    tokio::spawn(async move {
        let mut s = std::pin::pin!(events);
        loop {
            tokio::select! {
                ev = s.next() => match ev {
                    Some(Ok(e)) => {
                        if let Some(input) = to_input(e)
                            && tx.send(input).await.is_err()
                        {
                            return;
                        }
                    }
                    Some(Err(e)) => tracing::warn!(kind = K::KIND, error = %e, "watching"),
                    None => return,
                },
                _ = shutdown.cancelled() => return,
            }
        }
    })
}

/// Watches of the kinds whose selectors make pods' default topology spread selectors.
fn spread_source_feeds(
    client: &Client,
    tx: &mpsc::Sender<Input>,
    shutdown: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    use crate::spread::{SelectorSource, SourceEvent};
    use navarch_api::v1::{ReplicaSet, ReplicationController, Service, StatefulSet};
    fn one<K: SelectorSource>(
        client: &Client,
        tx: &mpsc::Sender<Input>,
        shutdown: &CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        feed(watcher(client.api::<K>(""), WatcherConfig::default()), tx, shutdown, |e| {
            Some(Input::SpreadSource(SourceEvent::from_event(e)))
        })
    }
    vec![
        one::<Service>(client, tx, shutdown),
        one::<ReplicaSet>(client, tx, shutdown),
        one::<StatefulSet>(client, tx, shutdown),
        one::<ReplicationController>(client, tx, shutdown),
    ]
}

/// A volume or class added or changed, or a (re)list of them: pods using claims may fit now.
fn storage_change<K>(e: Event<K>) -> Option<Input> {
    matches!(e, Event::Apply(_) | Event::InitDone).then_some(Input::Storage(StorageChange::Any))
}

/// Below this many nodes filtering runs on the scheduling thread alone.
const PARALLEL_MIN_NODES: usize = 1000;

/// Filters nodes starting at `start` (round robin) until `want` feasible ones are found; returns their
/// indices in `cycle.nodes`, in scan order, and how many nodes failed for each reason. With `workers` > 1
/// and a large cluster, contiguous slices of the scan are filtered on parallel threads and merged in order.
pub fn find_feasible(cycle: &Cycle, start: usize, want: usize, workers: usize) -> (Vec<usize>, Failures) {
    let all = &cycle.nodes;
    let total = all.len();
    let scan = |from: usize, to: usize| {
        let mut found = Vec::new();
        let mut failures = Failures::default();
        for i in from..to {
            let idx = (start + i) % total;
            let r = filter(cycle, all[idx]);
            if r.is_empty() {
                found.push(idx);
                if found.len() >= want {
                    break;
                }
            } else {
                failures.add_node(idx, r);
            }
        }
        (found, failures)
    };
    if workers <= 1 || total < PARALLEL_MIN_NODES {
        let (found, mut failures) = scan(0, total);
        failures.helpful.sort_unstable();
        return (found, failures);
    }
    // Workers take batches of the scan from a shared counter and all stop once enough are found (the
    // shape of kube-scheduler's parallel filtering), so parallelism adds no extra filtering.
    const BATCH: usize = 64;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let found_count = std::sync::atomic::AtomicUsize::new(0);
    // Per worker: (scan position, node index) of each feasible node, and failure reasons.
    type WorkerResult = (Vec<(usize, usize)>, Failures);
    let parts: Vec<WorkerResult> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut found = Vec::new();
                    let mut failures = Failures::default();
                    loop {
                        let from = next.fetch_add(BATCH, std::sync::atomic::Ordering::Relaxed);
                        if from >= total || found_count.load(std::sync::atomic::Ordering::Relaxed) >= want {
                            break;
                        }
                        for i in from..(from + BATCH).min(total) {
                            let idx = (start + i) % total;
                            let r = filter(cycle, all[idx]);
                            if r.is_empty() {
                                found.push((i, idx));
                                found_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            } else {
                                failures.add_node(idx, r);
                            }
                        }
                    }
                    (found, failures)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("filter thread")).collect()
    });
    let mut ordered: Vec<(usize, usize)> = Vec::new();
    let mut failures = Failures::default();
    for (f, r) in parts {
        ordered.extend(f);
        failures.merge(r);
    }
    ordered.sort_unstable();
    let mut found: Vec<usize> = ordered.into_iter().map(|(_, idx)| idx).collect();
    found.truncate(want);
    failures.helpful.sort_unstable();
    (found, failures)
}

fn backoff(cfg: &SchedulerConfig, attempts: u32) -> Duration {
    cfg.initial_backoff.saturating_mul(1 << attempts.saturating_sub(1).min(10)).min(cfg.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_like_kubernetes() {
        let pod = |extra: &str| -> Pod {
            serde_yaml::from_str(&format!(
                "metadata: {{name: p, namespace: d}}\nspec: {{containers: []{extra}}}\n"
            ))
            .unwrap()
        };
        let mut f = Failures::default();
        f.add_node(0, vec!["Insufficient cpu".to_string()]);
        f.add_node(1, vec!["Insufficient cpu".to_string()]);
        f.add_node(
            2,
            vec![
                "node(s) had untolerated taint {dedicated: gpu}".to_string(),
                "Insufficient cpu".to_string(),
            ],
        );
        assert_eq!(f.preemption_might_help, 2, "a taint is unresolvable");
        assert_eq!(f.helpful, [0, 1]);
        // Reasons with their counts, sorted as strings (as Kubernetes' FitError does), then preemption's.
        let post = "0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption \
                    victims found for incoming pod.";
        assert_eq!(
            unschedulable_message(3, None, &f, Some(post)),
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 3 Insufficient cpu. \
             preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption \
             victims found for incoming pod."
        );
        // Preemption nominated the pod: no preemption part (Kubernetes' PostFilter succeeded).
        assert_eq!(
            unschedulable_message(3, None, &f, None),
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 3 Insufficient cpu."
        );
        let post = preemption::prefilter_message(&pod(""), 2);
        assert_eq!(
            unschedulable_message(
                2,
                Some(volumes::REASON_UNBOUND_IMMEDIATE),
                &Failures::default(),
                Some(&post)
            ),
            "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/2 nodes \
             are available: 2 Preemption is not helpful for scheduling."
        );
        let post = preemption::prefilter_message(&pod(", preemptionPolicy: Never"), 2);
        assert_eq!(post, "not eligible due to preemptionPolicy=Never.");
        assert_eq!(unschedulable_message(0, None, &Failures::default(), None), "0/0 nodes are available.");
    }

    #[test]
    fn adaptive_percentage() {
        assert_eq!(num_feasible_to_find(50, 0), 50);
        assert_eq!(num_feasible_to_find(500, 0), 230); // 46%
        assert_eq!(num_feasible_to_find(5000, 0), 500); // 10%
        assert_eq!(num_feasible_to_find(5000, 100), 5000);
    }
}
