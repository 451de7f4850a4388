//! The node lifecycle controller: notices nodes whose kubelet went quiet and moves their pods.
//!
//! * **Health**: a node is heard from when its Lease (`kube-node-lease/<node>`) is renewed or its
//!   Ready heartbeat changes, timed by this process's clock (so clock skew does not matter). After
//!   `--node-monitor-grace-period` (default 40 s) of silence its conditions become Unknown
//!   (`NodeStatusUnknown`), its pods are marked not Ready (so Endpoints drop them), and a
//!   `NodeNotReady` event is recorded.
//! * **Taints**: Ready Unknown → `node.kubernetes.io/unreachable`, Ready False →
//!   `node.kubernetes.io/not-ready`, each as NoSchedule (at once) and NoExecute (rate-limited:
//!   `--node-eviction-rate` nodes per second per zone, `--secondary-node-eviction-rate` when more
//!   than 55% of a zone's nodes are down, none in small clusters then; when every node of every
//!   zone is down the control plane is the likelier culprit, so no node is tainted NoExecute). The
//!   node coming back clears them.
//! * **Eviction**: pods on a node with NoExecute taints are deleted when their toleration runs
//!   out: at once without a matching toleration, never with one without `tolerationSeconds`,
//!   after `--default-toleration-seconds` (300) for the two taints above when the pod has no
//!   toleration for them (what Kubernetes' admission adds to every pod). Their controllers then
//!   create replacements on healthy nodes.
//!
//! The decisions ([`Heartbeats`], [`zone_state`], [`TokenBucket`], [`plan_taints`],
//! [`eviction_time`]) are pure and unit-tested; [`spawn`] wires it to the shared Node, Lease and pod
//! stores.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use navarch_api::Resource;
use navarch_api::taints::{NOT_READY, UNREACHABLE, tolerates};
use navarch_api::v1::{Lease, Node, Pod, Taint};
use navarch_client::{Client, DeleteParams, EventRecorder, ObjectRef, Store, object_ref};
use tokio_util::sync::CancellationToken;

use crate::run::Wiring;

pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Settings (flags of the same names).
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleConfig {
    /// Silence after which a node is Unknown.
    pub grace_period: Duration,
    /// How often node health is checked.
    pub monitor_period: Duration,
    /// Nodes per second that get the NoExecute taint (per zone).
    pub eviction_rate: f64,
    /// The same when a zone is partially disrupted (large clusters only).
    pub secondary_eviction_rate: f64,
    /// Above this many nodes a zone counts as large.
    pub large_cluster_size: usize,
    /// Share of a zone's nodes down that makes it partially disrupted.
    pub unhealthy_zone_threshold: f64,
    /// How long pods without their own toleration stay on an unreachable or not-ready node.
    pub default_toleration: Duration,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            grace_period: Duration::from_secs(40),
            monitor_period: Duration::from_secs(5),
            eviction_rate: 0.1,
            secondary_eviction_rate: 0.01,
            large_cluster_size: 50,
            unhealthy_zone_threshold: 0.55,
            default_toleration: Duration::from_secs(300),
        }
    }
}

/// When each node was last heard from, by this process's clock.
#[derive(Debug, Default)]
pub struct Heartbeats {
    seen: HashMap<String, (String, String, Instant)>,
}

impl Heartbeats {
    /// Records what the node shows now (its Lease's renewTime, its Ready heartbeat) and returns
    /// when that last changed.
    pub fn observe(&mut self, node: &str, renew: &str, heartbeat: &str, now: Instant) -> Instant {
        match self.seen.get(node) {
            Some((r, h, at)) if r == renew && h == heartbeat => *at,
            _ => {
                self.seen.insert(node.to_string(), (renew.to_string(), heartbeat.to_string(), now));
                now
            }
        }
    }

    /// Forgets nodes that no longer exist.
    pub fn retain(&mut self, nodes: &HashSet<String>) {
        self.seen.retain(|n, _| nodes.contains(n));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// Kubernetes' zone state: all down is a full disruption; more than two down and at least
/// `threshold` of them a partial one.
pub fn zone_state(ready: usize, not_ready: usize, threshold: f64) -> ZoneState {
    if not_ready > 0 && ready == 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / (ready + not_ready) as f64 >= threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// A token bucket holding at most one token.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, now: Instant) -> TokenBucket {
        TokenBucket { rate, tokens: 1.0, last: now }
    }

    pub fn set_rate(&mut self, rate: f64) {
        self.rate = rate;
    }

    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(1.0);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The condition taint a Ready status calls for.
pub fn condition_taint(ready: &str) -> Option<&'static str> {
    match ready {
        "True" => None,
        "False" => Some(NOT_READY),
        _ => Some(UNREACHABLE),
    }
}

fn is_condition_taint(t: &Taint) -> bool {
    t.key == UNREACHABLE || t.key == NOT_READY
}

/// The node's taints after this pass: the NoSchedule condition taint follows the Ready status at
/// once; the NoExecute one is swapped or removed at once but added only when `may_add` allows
/// (the rate limiter) and never while `hold` (every zone down). Other taints are kept.
pub fn plan_taints(
    current: &[Taint],
    ready: &str,
    hold: bool,
    now: &str,
    may_add: &mut dyn FnMut() -> bool,
) -> Vec<Taint> {
    let want = condition_taint(ready);
    let mut out: Vec<Taint> = current.iter().filter(|t| !is_condition_taint(t)).cloned().collect();
    let existing = |effect: &str| current.iter().find(|t| is_condition_taint(t) && t.effect == effect);
    let taint = |key: &str, effect: &str, since: Option<&Taint>| Taint {
        key: key.into(),
        effect: effect.into(),
        value: String::new(),
        time_added: since
            .filter(|t| t.key == key)
            .map(|t| t.time_added.clone())
            .unwrap_or_else(|| now.into()),
    };
    if let Some(key) = want {
        out.push(taint(key, "NoSchedule", existing("NoSchedule")));
        match existing("NoExecute") {
            _ if hold => {}
            Some(old) => out.push(taint(key, "NoExecute", Some(old))),
            None if may_add() => out.push(taint(key, "NoExecute", None)),
            None => {}
        }
    }
    out
}

/// When `pod` must leave a node with `taints`: None for never, else the moment (Kubernetes'
/// taint manager; a pod without its own toleration for the unreachable/not-ready taints gets
/// `default_toleration`, as Kubernetes' admission would have given it).
pub fn eviction_time(
    pod: &Pod,
    taints: &[Taint],
    default_toleration: Duration,
    now: SystemTime,
) -> Option<SystemTime> {
    let tolerations = pod.spec.as_ref().map(|s| s.tolerations.as_slice()).unwrap_or_default();
    let mut due: Option<SystemTime> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let added = humantime::parse_rfc3339_weak(&taint.time_added).unwrap_or(now);
        let matching: Vec<_> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        let limit = if matching.is_empty() {
            if is_condition_taint(taint) { default_toleration } else { Duration::ZERO }
        } else if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            continue;
        } else {
            let secs = matching.iter().filter_map(|t| t.toleration_seconds).min().unwrap_or(0);
            Duration::from_secs(secs.max(0) as u64)
        };
        let at = added + limit;
        due = Some(due.map_or(at, |d| d.min(at)));
    }
    due
}

fn ready_condition(n: &Node) -> Option<&navarch_api::v1::NodeCondition> {
    n.status.as_ref()?.conditions.iter().find(|c| c.r#type == "Ready")
}

pub struct NodeLifecycle {
    pub client: Client,
    pub cfg: LifecycleConfig,
    pub nodes: Store<Node>,
    pub leases: Store<Lease>,
    pub pods: Store<Pod>,
    pub events: EventRecorder,
    heartbeats: Heartbeats,
    buckets: HashMap<String, TokenBucket>,
    /// Pods this process deleted, so a lagging store does not make it delete them again.
    evicted: HashSet<String>,
}

impl NodeLifecycle {
    pub fn new(
        client: Client,
        cfg: LifecycleConfig,
        nodes: Store<Node>,
        leases: Store<Lease>,
        pods: Store<Pod>,
        events: EventRecorder,
    ) -> NodeLifecycle {
        NodeLifecycle {
            client,
            cfg,
            nodes,
            leases,
            pods,
            events,
            heartbeats: Heartbeats::default(),
            buckets: HashMap::new(),
            evicted: HashSet::new(),
        }
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = async {
                self.nodes.wait_until_ready().await;
                self.leases.wait_until_ready().await;
                self.pods.wait_until_ready().await;
            } => {}
        }
        let mut monitor = tokio::time::interval(self.cfg.monitor_period);
        let mut evict = tokio::time::interval(Duration::from_secs(1).min(self.cfg.monitor_period));
        monitor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        evict.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = monitor.tick() => self.monitor().await,
                _ = evict.tick() => self.evict_pods().await,
            }
        }
    }

    /// One health pass over every node: mark silent ones Unknown, then set their taints.
    async fn monitor(&mut self) {
        let now = Instant::now();
        let wall = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let mut nodes: Vec<Arc<Node>> = self.nodes.state();
        nodes.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
        self.heartbeats.retain(&nodes.iter().map(|n| n.meta().name.clone()).collect());
        let mut health: Vec<(Node, String)> = Vec::new();
        for n in nodes.iter().filter(|n| n.meta().deletion_timestamp.is_empty()) {
            let name = &n.meta().name;
            let renew = self
                .leases
                .get(&ObjectRef::new("kube-node-lease", name))
                .and_then(|l| l.spec.as_ref().and_then(|s| s.renew_time.clone()))
                .unwrap_or_default();
            let ready = ready_condition(n);
            let heartbeat = ready.map(|c| c.last_heartbeat_time.as_str()).unwrap_or_default();
            let heard = self.heartbeats.observe(name, &renew, heartbeat, now);
            let mut node = (**n).clone();
            let mut status = ready.map(|c| c.status.clone()).unwrap_or_else(|| "Unknown".into());
            if now.duration_since(heard) > self.cfg.grace_period
                && ready.is_none_or(|c| c.status != "Unknown")
            {
                match self.mark_unknown(&node, &wall).await {
                    Ok(updated) => {
                        node = updated;
                        status = "Unknown".into();
                    }
                    Err(e) => tracing::warn!(node = %name, error = %e, "marking the node Unknown"),
                }
            }
            if status != "True" {
                self.mark_pods_not_ready(name, &wall).await;
            }
            health.push((node, status));
        }
        // Zones, and whether the whole cluster looks down.
        let mut zones: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for (n, status) in &health {
            let zone = n.meta().labels.get(ZONE_LABEL).cloned().unwrap_or_default();
            let e = zones.entry(zone).or_default();
            if status == "True" { e.0 += 1 } else { e.1 += 1 }
        }
        let states: BTreeMap<String, ZoneState> = zones
            .iter()
            .map(|(z, (r, nr))| (z.clone(), zone_state(*r, *nr, self.cfg.unhealthy_zone_threshold)))
            .collect();
        let hold = !states.is_empty() && states.values().all(|s| *s == ZoneState::FullDisruption);
        for (zone, state) in &states {
            let size = zones[zone].0 + zones[zone].1;
            let rate = match state {
                ZoneState::PartialDisruption if size > self.cfg.large_cluster_size => {
                    self.cfg.secondary_eviction_rate
                }
                ZoneState::PartialDisruption => 0.0,
                _ => self.cfg.eviction_rate,
            };
            self.buckets.entry(zone.clone()).or_insert_with(|| TokenBucket::new(rate, now)).set_rate(rate);
        }
        if hold {
            tracing::warn!(
                "every node is not ready: holding back NoExecute taints (control-plane disruption?)"
            );
        }
        for (node, status) in health {
            let zone = node.meta().labels.get(ZONE_LABEL).cloned().unwrap_or_default();
            let current = node.spec.as_ref().map(|s| s.taints.clone()).unwrap_or_default();
            let bucket = self.buckets.get_mut(&zone).expect("bucket per zone");
            let mut may_add = || bucket.try_take(now);
            let wanted = plan_taints(&current, &status, hold, &wall, &mut may_add);
            if wanted != current {
                let mut u = node.clone();
                u.spec.get_or_insert_with(Default::default).taints = wanted;
                match self.client.api::<Node>("").update(&u).await {
                    Ok(_) => tracing::info!(node = %node.meta().name, ready = %status, "node taints updated"),
                    Err(e) => tracing::warn!(node = %node.meta().name, error = %e, "updating taints"),
                }
            }
        }
    }

    async fn mark_unknown(&self, node: &Node, now: &str) -> Result<Node, navarch_client::Error> {
        let mut u = node.clone();
        let status = u.status.get_or_insert_with(Default::default);
        if !status.conditions.iter().any(|c| c.r#type == "Ready") {
            status
                .conditions
                .push(navarch_api::v1::NodeCondition { r#type: "Ready".into(), ..Default::default() });
        }
        for c in status.conditions.iter_mut() {
            c.status = "Unknown".into();
            c.reason = "NodeStatusUnknown".into();
            c.message = "Kubelet stopped posting node status.".into();
            c.last_transition_time = now.into();
        }
        let updated = self.client.api::<Node>("").update_status(&u).await?;
        let name = &node.meta().name;
        tracing::warn!(node = %name, "node stopped reporting: Ready is Unknown");
        self.events.record(
            object_ref(node),
            "Normal",
            "NodeNotReady",
            format!("Node {name} status is now: NodeNotReady"),
        );
        Ok(updated)
    }

    /// Sets Ready False on the pods of a node that is not ready (Kubernetes' MarkPodsNotReady).
    async fn mark_pods_not_ready(&self, node: &str, now: &str) {
        for p in self.pods.state() {
            if p.spec.as_ref().is_none_or(|s| s.node_name != node) {
                continue;
            }
            let Some(st) = p.status.as_ref() else { continue };
            if !st.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True") {
                continue;
            }
            let mut u = (*p).clone();
            for c in u.status.get_or_insert_with(Default::default).conditions.iter_mut() {
                if c.r#type == "Ready" {
                    c.status = "False".into();
                    c.reason = "NodeNotReady".into();
                    c.last_transition_time = now.into();
                }
            }
            let m = p.meta();
            match self.client.api::<Pod>(&m.namespace).update_status(&u).await {
                Ok(_) => self.events.record(
                    object_ref(p.as_ref()),
                    "Warning",
                    "NodeNotReady",
                    "Node is not ready".into(),
                ),
                Err(e) => tracing::debug!(pod = %m.name, error = %e, "marking the pod not ready"),
            }
        }
    }

    /// Deletes the pods whose toleration of their node's NoExecute taints ran out.
    async fn evict_pods(&mut self) {
        let now = SystemTime::now();
        let tainted: HashMap<String, Vec<Taint>> = self
            .nodes
            .state()
            .iter()
            .filter_map(|n| {
                let taints: Vec<Taint> =
                    n.spec.as_ref()?.taints.iter().filter(|t| t.effect == "NoExecute").cloned().collect();
                (!taints.is_empty()).then(|| (n.meta().name.clone(), taints))
            })
            .collect();
        if tainted.is_empty() {
            self.evicted.clear();
            return;
        }
        for p in self.pods.state() {
            let m = p.meta();
            let Some(taints) = p.spec.as_ref().and_then(|s| tainted.get(&s.node_name)) else { continue };
            if !m.deletion_timestamp.is_empty() || self.evicted.contains(&m.uid) {
                continue;
            }
            if eviction_time(&p, taints, self.cfg.default_toleration, now).is_none_or(|t| t > now) {
                continue;
            }
            let params = DeleteParams { precondition_uid: m.uid.clone(), ..Default::default() };
            match self.client.api::<Pod>(&m.namespace).delete(&m.name, &params).await {
                Ok(_) | Err(navarch_client::Error::NotFound(_)) | Err(navarch_client::Error::Conflict(_)) => {
                    tracing::info!(pod = %m.name, namespace = %m.namespace, node = %p.spec.as_ref().map(|s| s.node_name.as_str()).unwrap_or_default(), "evicted from a tainted node");
                    self.events.record(
                        object_ref(p.as_ref()),
                        "Normal",
                        "TaintManagerEviction",
                        format!("Marking for deletion Pod {}/{}", m.namespace, m.name),
                    );
                    self.evicted.insert(m.uid.clone());
                }
                Err(e) => tracing::warn!(pod = %m.name, error = %e, "evicting"),
            }
        }
    }
}

/// Runs the node lifecycle controller (periodic passes over the shared Node, Lease and pod stores).
pub fn spawn(w: &mut Wiring, cfg: LifecycleConfig) {
    let events = w.recorder("node-controller");
    let inf = &w.informers;
    let lifecycle = NodeLifecycle::new(
        w.client.clone(),
        cfg,
        inf.nodes.store(),
        inf.leases.store(),
        inf.pods.store(),
        events,
    );
    let stop = w.stop.clone();
    w.spawn(lifecycle.run(stop));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_time_changes_not_timestamps() {
        let mut h = Heartbeats::default();
        let t0 = Instant::now();
        assert_eq!(h.observe("n", "r1", "h1", t0), t0);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(h.observe("n", "r1", "h1", t1), t0);
        assert_eq!(h.observe("n", "r2", "h1", t1), t1);
        h.retain(&HashSet::new());
        assert_eq!(h.observe("n", "r2", "h1", t1 + Duration::from_secs(5)), t1 + Duration::from_secs(5));
    }

    #[test]
    fn zone_states() {
        assert_eq!(zone_state(2, 0, 0.55), ZoneState::Normal);
        assert_eq!(zone_state(1, 1, 0.55), ZoneState::Normal);
        assert_eq!(zone_state(0, 2, 0.55), ZoneState::FullDisruption);
        assert_eq!(zone_state(2, 3, 0.55), ZoneState::PartialDisruption);
        assert_eq!(zone_state(10, 3, 0.55), ZoneState::Normal);
    }

    #[test]
    fn token_bucket_paces() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0.1, t0);
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0 + Duration::from_secs(5)));
        assert!(b.try_take(t0 + Duration::from_secs(10)));
        b.set_rate(0.0);
        assert!(!b.try_take(t0 + Duration::from_secs(1000)));
    }

    #[test]
    fn taints_follow_ready() {
        let taint = |key: &str, effect: &str, at: &str| Taint {
            key: key.into(),
            effect: effect.into(),
            value: String::new(),
            time_added: at.into(),
        };
        let user = taint("dedicated", "NoSchedule", "");
        let yes = &mut || true;
        let no = &mut || false;
        // Unknown: both taints (NoExecute when the limiter allows), user taints kept.
        let t = plan_taints(std::slice::from_ref(&user), "Unknown", false, "T1", yes);
        assert_eq!(
            t,
            vec![user.clone(), taint(UNREACHABLE, "NoSchedule", "T1"), taint(UNREACHABLE, "NoExecute", "T1")]
        );
        let t = plan_taints(std::slice::from_ref(&user), "Unknown", false, "T1", no);
        assert_eq!(t, vec![user.clone(), taint(UNREACHABLE, "NoSchedule", "T1")]);
        // Kept with their time; swapped at once from unreachable to not-ready.
        let had = vec![taint(UNREACHABLE, "NoSchedule", "T0"), taint(UNREACHABLE, "NoExecute", "T0")];
        assert_eq!(plan_taints(&had, "Unknown", false, "T1", no), had);
        assert_eq!(
            plan_taints(&had, "False", false, "T1", no),
            vec![taint(NOT_READY, "NoSchedule", "T1"), taint(NOT_READY, "NoExecute", "T1")]
        );
        // Ready again: gone. Every zone down: NoExecute held back.
        assert_eq!(plan_taints(&had, "True", false, "T1", yes), Vec::<Taint>::new());
        assert_eq!(
            plan_taints(&had, "Unknown", true, "T1", yes),
            vec![taint(UNREACHABLE, "NoSchedule", "T0")]
        );
    }

    #[test]
    fn eviction_times() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = humantime::format_rfc3339_seconds(t0).to_string();
        let taints = vec![Taint {
            key: UNREACHABLE.into(),
            effect: "NoExecute".into(),
            value: String::new(),
            time_added: at.clone(),
        }];
        let pod = |y: &str| -> Pod { serde_yaml::from_str(y).unwrap() };
        let default = Duration::from_secs(300);
        let plain = pod("{metadata: {name: p}}");
        assert_eq!(eviction_time(&plain, &taints, default, t0), Some(t0 + default));
        let short = pod(
            "{metadata: {name: p}, spec: {containers: [], tolerations: [{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 5}]}}",
        );
        assert_eq!(eviction_time(&short, &taints, default, t0), Some(t0 + Duration::from_secs(5)));
        let forever = pod("{metadata: {name: p}, spec: {containers: [], tolerations: [{operator: Exists}]}}");
        assert_eq!(eviction_time(&forever, &taints, default, t0), None);
        let other = vec![Taint {
            key: "gpu".into(),
            effect: "NoExecute".into(),
            value: String::new(),
            time_added: at,
        }];
        assert_eq!(eviction_time(&plain, &other, default, t0), Some(t0));
        assert_eq!(eviction_time(&plain, &[], default, t0), None);
    }
}
