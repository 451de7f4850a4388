//! The scheduling loop: one task owns the cache of nodes and pods (fed by watches, no polling), takes
//! pending pods from a queue, filters and scores nodes, assumes the pod on the chosen node at once (so the
//! next decision already counts it) and binds in the background; a failed bind forgets the assumption
//! and requeues the pod. Pods that fit nowhere get `PodScheduled=False`/`Unschedulable` with Kubernetes'
//! message and an Event, and are retried with backoff and whenever a node or pod changes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{Node, Pod, PodCondition};
use navarch_client::{Client, Event, EventRecorder, WatcherConfig, object_ref, watcher};
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::filters::filter;
use crate::metrics::SchedulerMetrics;
use crate::node_info::{NodeInfo, pod_key};
use crate::resources::pod_requests;
use crate::scores::score;

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
        }
    }
}

/// What the loop hears from the outside.
enum Input {
    Nodes(Box<Event<Node>>),
    Pods(Box<Event<Pod>>),
    Bound { key: String, result: Result<(), navarch_client::Error> },
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
    cfg: SchedulerConfig,
    nodes: BTreeMap<String, NodeInfo>,
    /// Where each bound or assumed pod is counted.
    placed: HashMap<String, String>,
    pending: HashMap<String, Pending>,
    /// Every bound, unfinished pod (also those on nodes not seen yet).
    bound: HashMap<String, Arc<Pod>>,
    queue: VecDeque<String>,
    next_start: usize,
    /// Threads for filtering large clusters.
    workers: usize,
}

fn num_feasible_to_find(total: usize, pct: u32) -> usize {
    const MIN: usize = 100;
    if total <= MIN {
        return total;
    }
    let pct = if pct == 0 { (50 - total as i64 / 125).max(5) as usize } else { (pct as usize).min(100) };
    (total * pct / 100).max(MIN)
}

/// Kubernetes' summary: `0/3 nodes are available: 2 Insufficient cpu, 1 node(s) had untolerated taint {...}.`
pub fn unschedulable_message(total: usize, reasons: &BTreeMap<String, usize>) -> String {
    let mut parts: Vec<(usize, &String)> = reasons.iter().map(|(r, n)| (*n, r)).collect();
    parts.sort_by(|a, b| a.1.cmp(b.1));
    let list: Vec<String> = parts.iter().map(|(n, r)| format!("{n} {r}")).collect();
    if list.is_empty() {
        format!("0/{total} nodes are available.")
    } else {
        format!("0/{total} nodes are available: {}.", list.join(", "))
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
        Scheduler {
            client,
            metrics,
            events: None,
            cfg,
            nodes: BTreeMap::new(),
            placed: HashMap::new(),
            pending: HashMap::new(),
            bound: HashMap::new(),
            queue: VecDeque::new(),
            next_start: 0,
            workers,
        }
    }

    /// Runs until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let (tx, mut rx) = mpsc::channel::<Input>(4096);
        let nodes = watcher(self.client.api::<Node>(""), WatcherConfig::default());
        let pods = watcher(self.client.api::<Pod>(""), WatcherConfig::default());
        let feed_nodes = {
            let tx = tx.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let mut s = std::pin::pin!(nodes);
                loop {
                    tokio::select! {
                        ev = s.next() => match ev {
                            Some(Ok(e)) => { if tx.send(Input::Nodes(Box::new(e))).await.is_err() { return; } }
                            Some(Err(e)) => tracing::warn!(error = %e, "watching nodes"),
                            None => return,
                        },
                        _ = shutdown.cancelled() => return,
                    }
                }
            })
        };
        let feed_pods = {
            let tx = tx.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let mut s = std::pin::pin!(pods);
                loop {
                    tokio::select! {
                        ev = s.next() => match ev {
                            Some(Ok(e)) => { if tx.send(Input::Pods(Box::new(e))).await.is_err() { return; } }
                            Some(Err(e)) => tracing::warn!(error = %e, "watching pods"),
                            None => return,
                        },
                        _ = shutdown.cancelled() => return,
                    }
                }
            })
        };
        let (events, sender) = EventRecorder::new(self.client.clone(), "default-scheduler", "", EVENT_QUEUE);
        self.events = Some(events);
        let recorder = tokio::spawn(sender);
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
        feed_nodes.abort();
        feed_pods.abort();
        self.events = None;
        let _ = tokio::time::timeout(Duration::from_secs(2), recorder).await;
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
                    Event::Delete(n) => {
                        let name = n.meta().name.clone();
                        if let Some(info) = self.nodes.remove(&name) {
                            for key in info.pods.keys() {
                                self.placed.remove(key);
                            }
                        }
                    }
                }
                self.retry_unschedulable();
            }
            Input::Pods(ev) => match *ev {
                Event::Init | Event::InitDone => {}
                Event::InitApply(p) | Event::Apply(p) => self.upsert_pod(Arc::new(p)),
                Event::Delete(p) => {
                    self.bound.remove(&pod_key(&p));
                    self.forget(&pod_key(&p));
                    self.pending.remove(&pod_key(&p));
                    self.retry_unschedulable();
                }
            },
            Input::Bound { key, result } => match result {
                Ok(()) => {}
                Err(navarch_client::Error::NotFound(_)) => {
                    self.forget(&key);
                }
                Err(e) => {
                    tracing::warn!(pod = %key, error = %e, "bind failed; retrying");
                    self.forget(&key);
                    if let Some(p) = self.pending.get_mut(&key) {
                        p.not_before = Instant::now() + backoff(&self.cfg, p.attempts);
                        self.queue.push_back(key);
                    }
                }
            },
        }
    }

    fn upsert_node(&mut self, n: Node) {
        let name = n.meta().name.clone();
        let n = Arc::new(n);
        match self.nodes.get_mut(&name) {
            Some(info) => info.set_node(n),
            None => {
                let mut info = NodeInfo::new(n);
                // Pods bound to this node before the node was seen.
                for (key, pod) in &self.bound {
                    if pod.spec.as_ref().is_some_and(|s| s.node_name == name) {
                        info.add_pod(pod.clone());
                        self.placed.insert(key.clone(), name.clone());
                    }
                }
                self.nodes.insert(name, info);
            }
        }
    }

    fn forget(&mut self, key: &str) {
        if let Some(node) = self.placed.remove(key)
            && let Some(info) = self.nodes.get_mut(&node)
        {
            info.remove_pod(key);
        }
    }

    fn upsert_pod(&mut self, pod: Arc<Pod>) {
        let key = pod_key(&pod);
        let node = pod.spec.as_ref().map(|s| s.node_name.clone()).unwrap_or_default();
        let finished = pod.status.as_ref().is_some_and(|s| s.phase == "Succeeded" || s.phase == "Failed");
        if !node.is_empty() {
            // Bound (by us or anyone): count it where it runs, replacing any assumption.
            self.pending.remove(&key);
            self.forget(&key);
            if finished {
                self.bound.remove(&key);
            } else {
                self.bound.insert(key.clone(), pod.clone());
                if let Some(info) = self.nodes.get_mut(&node) {
                    info.add_pod(pod);
                    self.placed.insert(key, node);
                }
            }
            return;
        }
        if self.placed.contains_key(&key) {
            return; // assumed, bind in flight
        }
        if is_pending_for(&pod, &self.cfg.scheduler_name) {
            match self.pending.get_mut(&key) {
                Some(p) => p.pod = pod,
                None => {
                    self.pending.insert(
                        key.clone(),
                        Pending { pod, first_seen: Instant::now(), attempts: 0, not_before: Instant::now() },
                    );
                    self.queue.push_back(key);
                }
            }
        } else {
            self.pending.remove(&key);
        }
    }

    fn retry_unschedulable(&mut self) {
        let now = Instant::now();
        for (key, p) in self.pending.iter_mut() {
            if p.attempts > 0 && p.not_before > now {
                p.not_before = now;
                self.queue.push_back(key.clone());
            }
        }
    }

    fn schedule_ready(&mut self, tx: &mpsc::Sender<Input>) {
        let now = Instant::now();
        let mut deferred = Vec::new();
        while let Some(key) = self.queue.pop_front() {
            let Some(p) = self.pending.get(&key) else { continue };
            if self.placed.contains_key(&key) {
                continue;
            }
            if p.not_before > now {
                deferred.push(key);
                continue;
            }
            let pod = p.pod.clone();
            self.schedule_one(key, pod, tx);
        }
        // Keep one queue entry per key.
        deferred.sort();
        deferred.dedup();
        self.queue.extend(deferred);
    }

    fn schedule_one(&mut self, key: String, pod: Arc<Pod>, tx: &mpsc::Sender<Input>) {
        let req = pod_requests(&pod);
        let all: Vec<&NodeInfo> = self.nodes.values().collect();
        let total = all.len();
        let want = num_feasible_to_find(total, self.cfg.percentage_of_nodes_to_score);
        let (found, reasons) = find_feasible(&pod, &req, &all, self.next_start, want, self.workers);
        let feasible: Vec<&NodeInfo> = found.into_iter().map(|i| all[i]).collect();
        if total > 0 {
            self.next_start = (self.next_start + feasible.len().max(1)) % total;
        }
        if feasible.is_empty() {
            self.metrics.attempt("unschedulable");
            let msg = unschedulable_message(total, &reasons);
            let p = self.pending.get_mut(&key).expect("pending pod");
            p.attempts += 1;
            p.not_before = Instant::now() + backoff(&self.cfg, p.attempts);
            self.queue.push_back(key.clone());
            tracing::debug!(pod = %key, %msg, "unschedulable");
            if p.attempts == 1 || p.attempts.is_multiple_of(5) {
                tokio::spawn(report_unschedulable(self.client.clone(), pod.clone(), msg.clone()));
                self.record(pod, "Warning", "FailedScheduling", msg);
            }
            return;
        }
        let scores = score(&pod, &req, &feasible);
        let best = scores.iter().copied().max().unwrap_or(0);
        let top: Vec<usize> =
            scores.iter().enumerate().filter(|(_, s)| **s == best).map(|(i, _)| i).collect();
        let chosen = feasible[top[rand::rng().random_range(0..top.len())]].name().to_string();
        // Assume: count the pod on the node now.
        let mut assumed = (*pod).clone();
        if let Some(s) = assumed.spec.as_mut() {
            s.node_name = chosen.clone();
        }
        if let Some(info) = self.nodes.get_mut(&chosen) {
            info.add_pod(Arc::new(assumed));
        }
        self.placed.insert(key.clone(), chosen.clone());
        let client = self.client.clone();
        let tx = tx.clone();
        let events = self.events.clone();
        let metrics = self.metrics.clone();
        let first_seen = self.pending.get(&key).map(|p| p.first_seen).unwrap_or_else(Instant::now);
        tokio::spawn(async move {
            let m = pod.metadata.clone().unwrap_or_default();
            let result = client.bind(&m.namespace, &m.name, &m.uid, &chosen).await.map(|_| ());
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
}

/// Below this many nodes filtering runs on the scheduling thread alone.
const PARALLEL_MIN_NODES: usize = 1000;

/// Filters nodes starting at `start` (round robin) until `want` feasible ones are found; returns their
/// indices in `all`, in scan order, and how many nodes failed for each reason. With `workers` > 1 and a
/// large cluster, contiguous slices of the scan are filtered on parallel threads and merged in order.
pub fn find_feasible(
    pod: &Pod,
    req: &crate::resources::Resources,
    all: &[&NodeInfo],
    start: usize,
    want: usize,
    workers: usize,
) -> (Vec<usize>, BTreeMap<String, usize>) {
    let total = all.len();
    let scan = |from: usize, to: usize| {
        let mut found = Vec::new();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for i in from..to {
            let idx = (start + i) % total;
            let r = filter(pod, req, all[idx], all);
            if r.is_empty() {
                found.push(idx);
                if found.len() >= want {
                    break;
                }
            } else {
                for reason in r {
                    *reasons.entry(reason).or_insert(0) += 1;
                }
            }
        }
        (found, reasons)
    };
    if workers <= 1 || total < PARALLEL_MIN_NODES {
        return scan(0, total);
    }
    // Workers take batches of the scan from a shared counter and all stop once enough are found (the
    // shape of kube-scheduler's parallel filtering), so parallelism adds no extra filtering.
    const BATCH: usize = 64;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let found_count = std::sync::atomic::AtomicUsize::new(0);
    // Per worker: (scan position, node index) of each feasible node, and failure reasons.
    type WorkerResult = (Vec<(usize, usize)>, BTreeMap<String, usize>);
    let parts: Vec<WorkerResult> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut found = Vec::new();
                    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
                    loop {
                        let from = next.fetch_add(BATCH, std::sync::atomic::Ordering::Relaxed);
                        if from >= total || found_count.load(std::sync::atomic::Ordering::Relaxed) >= want {
                            break;
                        }
                        for i in from..(from + BATCH).min(total) {
                            let idx = (start + i) % total;
                            let r = filter(pod, req, all[idx], all);
                            if r.is_empty() {
                                found.push((i, idx));
                                found_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            } else {
                                for reason in r {
                                    *reasons.entry(reason).or_insert(0) += 1;
                                }
                            }
                        }
                    }
                    (found, reasons)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("filter thread")).collect()
    });
    let mut ordered: Vec<(usize, usize)> = Vec::new();
    let mut reasons = BTreeMap::new();
    for (f, r) in parts {
        ordered.extend(f);
        for (k, v) in r {
            *reasons.entry(k).or_insert(0) += v;
        }
    }
    ordered.sort_unstable();
    let mut found: Vec<usize> = ordered.into_iter().map(|(_, idx)| idx).collect();
    found.truncate(want);
    (found, reasons)
}

fn backoff(cfg: &SchedulerConfig, attempts: u32) -> Duration {
    cfg.initial_backoff.saturating_mul(1 << attempts.saturating_sub(1).min(10)).min(cfg.max_backoff)
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

async fn report_unschedulable(client: Client, pod: Arc<Pod>, msg: String) {
    let api = client.api::<Pod>(&pod.meta().namespace);
    for _ in 0..3 {
        let Ok(Some(mut current)) = api.get_opt(&pod.meta().name).await else { return };
        if current.spec.as_ref().is_some_and(|s| !s.node_name.is_empty()) {
            return;
        }
        let status = current.status.get_or_insert_with(Default::default);
        if status.phase.is_empty() {
            status.phase = "Pending".into();
        }
        let cond = PodCondition {
            r#type: "PodScheduled".into(),
            status: "False".into(),
            reason: "Unschedulable".into(),
            message: msg.clone(),
            last_transition_time: now(),
            ..Default::default()
        };
        match status.conditions.iter_mut().find(|c| c.r#type == "PodScheduled") {
            Some(c) if c.status == "False" && c.message == msg => break,
            Some(c) => *c = cond,
            None => status.conditions.push(cond),
        }
        match api.update_status(&current).await {
            Ok(_) => break,
            Err(navarch_client::Error::Conflict(_)) => continue,
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_like_kubernetes() {
        let mut r = BTreeMap::new();
        r.insert("Insufficient cpu".to_string(), 2);
        r.insert("node(s) had untolerated taint {dedicated: gpu}".to_string(), 1);
        assert_eq!(
            unschedulable_message(3, &r),
            "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}."
        );
        assert_eq!(unschedulable_message(0, &BTreeMap::new()), "0/0 nodes are available.");
    }

    #[test]
    fn adaptive_percentage() {
        assert_eq!(num_feasible_to_find(50, 0), 50);
        assert_eq!(num_feasible_to_find(500, 0), 230); // 46%
        assert_eq!(num_feasible_to_find(5000, 0), 500); // 10%
        assert_eq!(num_feasible_to_find(5000, 100), 5000);
    }
}
