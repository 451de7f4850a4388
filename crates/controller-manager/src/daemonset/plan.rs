//! The DaemonSet controller's decisions, pure and unit-tested: which nodes need a pod and which pods
//! go ([`manage`], Kubernetes' `podsShouldBeOnNode`), which old pods a rolling update replaces next
//! ([`rolling_update`]), and the status ([`status`]).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{DaemonSet, DaemonSetStatus, IntOrString, Pod};

use super::placement::{Fit, is_updated, target_node};
use super::{REVISION_HASH_LABEL, spec_of};
use crate::replicaset::{is_available, is_ready};

/// The first back-off after a daemon pod failed on a node, and the longest (Kubernetes'
/// `failedPodsBackoff`).
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

/// What a sync starts from: the DaemonSet, the current revision's hash, every node's fit, and the
/// DaemonSet's pods by the node they are for.
pub struct View<'a> {
    pub ds: &'a DaemonSet,
    pub hash: &'a str,
    pub fits: BTreeMap<String, Fit>,
    pub by_node: BTreeMap<String, Vec<&'a Pod>>,
    pub now: SystemTime,
}

/// The DaemonSet's pods by their node, each node's oldest (scheduled first) first. Pods whose node
/// cannot be told are left out, and so are finished pods being deleted (`getNodesToDaemonPods`).
pub fn pods_by_node<'a>(pods: &[&'a Pod]) -> BTreeMap<String, Vec<&'a Pod>> {
    let mut out: BTreeMap<String, Vec<&'a Pod>> = BTreeMap::new();
    for &p in pods {
        if is_finished(p) && is_deleting(p) {
            continue;
        }
        if let Some(node) = target_node(p) {
            out.entry(node.to_string()).or_default().push(p);
        }
    }
    for pods in out.values_mut() {
        pods.sort_by(|a, b| oldest_first(a, b));
    }
    out
}

/// Kubernetes' `podByCreationTimestampAndPhase`: scheduled pods first, then older first, then by name.
fn oldest_first(a: &Pod, b: &Pod) -> std::cmp::Ordering {
    let unscheduled = |p: &Pod| p.spec.as_ref().is_none_or(|s| s.node_name.is_empty());
    unscheduled(a)
        .cmp(&unscheduled(b))
        .then_with(|| a.meta().creation_timestamp.cmp(&b.meta().creation_timestamp))
        .then_with(|| a.meta().name.cmp(&b.meta().name))
}

fn phase(p: &Pod) -> &str {
    p.status.as_ref().map(|s| s.phase.as_str()).unwrap_or_default()
}

pub fn is_deleting(p: &Pod) -> bool {
    !p.meta().deletion_timestamp.is_empty()
}

fn is_finished(p: &Pod) -> bool {
    matches!(phase(p), "Failed" | "Succeeded")
}

fn min_ready(ds: &DaemonSet) -> Duration {
    Duration::from_secs(u64::try_from(spec_of(ds).min_ready_seconds).unwrap_or(0))
}

/// Per node, the back-off of deleting its failed daemon pods (Kubernetes' `flowcontrol.Backoff`).
#[derive(Debug, Default)]
pub struct FailedBackoff {
    entries: HashMap<String, (Duration, Instant)>,
}

impl FailedBackoff {
    /// The back-off `node` is in at `now`, if any (its whole length, as Kubernetes requeues).
    pub fn current(&self, node: &str, now: Instant) -> Option<Duration> {
        let (d, at) = self.entries.get(node)?;
        (now.saturating_duration_since(*at) < *d).then_some(*d)
    }

    /// Records a failure on `node` at `now`: the back-off doubles up to the maximum, and starts again
    /// after twice the maximum without failures.
    pub fn next(&mut self, node: &str, now: Instant) {
        let e = self.entries.entry(node.to_string()).or_insert((Duration::ZERO, now));
        let expired = now.saturating_duration_since(e.1) > 2 * BACKOFF_MAX;
        e.0 = if e.0.is_zero() || expired { BACKOFF_INITIAL } else { (e.0 * 2).min(BACKOFF_MAX) };
        e.1 = now;
    }

    /// Forgets nodes whose back-off expired long ago.
    pub fn prune(&mut self, now: Instant) {
        self.entries.retain(|_, (_, at)| now.saturating_duration_since(*at) <= 2 * BACKOFF_MAX);
    }
}

/// What [`manage`] decided.
#[derive(Debug, Default, PartialEq)]
pub struct Manage {
    /// Nodes to create a daemon pod for.
    pub create_on: Vec<String>,
    /// Pods to delete, by name.
    pub delete: Vec<String>,
    /// Failed pods being deleted (pod, node), for the `FailedDaemonPod` events.
    pub failed: Vec<(String, String)>,
    /// Check again after this long (a node's failed pod waits out its back-off).
    pub requeue_after: Option<Duration>,
}

impl Manage {
    pub fn is_empty(&self) -> bool {
        self.create_on.is_empty() && self.delete.is_empty()
    }
}

/// Which nodes need a daemon pod and which pods must go (`manage` + `podsShouldBeOnNode`).
pub fn manage(v: &View<'_>, backoff: &mut FailedBackoff, now: Instant) -> Manage {
    let mut out = Manage::default();
    let surge = allows_surge(v.ds);
    for (node, fit) in &v.fits {
        let pods = v.by_node.get(node);
        match pods {
            None if fit.should_run => out.create_on.push(node.clone()),
            Some(pods) if fit.should_continue_running => {
                let mut running: Vec<&Pod> = Vec::new();
                for &p in pods.iter().filter(|p| !is_deleting(p)) {
                    match phase(p) {
                        "Failed" => match backoff.current(node, now) {
                            Some(d) => {
                                out.requeue_after = Some(out.requeue_after.map_or(d, |r| r.min(d)));
                            }
                            None => {
                                backoff.next(node, now);
                                out.failed.push((p.meta().name.clone(), node.clone()));
                                out.delete.push(p.meta().name.clone());
                            }
                        },
                        "Succeeded" => out.delete.push(p.meta().name.clone()),
                        _ => running.push(p),
                    }
                }
                if !surge {
                    // One pod per node: all but the oldest go.
                    out.delete.extend(running.iter().skip(1).map(|p| p.meta().name.clone()));
                    continue;
                }
                if running.len() <= 1 {
                    if running.is_empty() && fit.should_run {
                        out.create_on.push(node.clone());
                    }
                    continue;
                }
                out.delete.extend(surge_extra(v, &running));
            }
            Some(pods) if !fit.should_continue_running => {
                out.delete.extend(pods.iter().filter(|p| !is_deleting(p)).map(|p| p.meta().name.clone()));
            }
            _ => {}
        }
    }
    // Unscheduled pods for nodes that are gone.
    for (node, pods) in &v.by_node {
        if !v.fits.contains_key(node) {
            let unscheduled = pods.iter().filter(|p| p.spec.as_ref().is_none_or(|s| s.node_name.is_empty()));
            out.delete.extend(unscheduled.filter(|p| !is_deleting(p)).map(|p| p.meta().name.clone()));
        }
    }
    out
}

/// With surge, a node keeps at most the oldest new and the oldest old pod (`running`, oldest first),
/// and the old one only while it is ready and the new one is not yet available.
fn surge_extra(v: &View<'_>, running: &[&Pod]) -> Vec<String> {
    let mut delete = Vec::new();
    let (mut oldest_new, mut oldest_old): (Option<&Pod>, Option<&Pod>) = (None, None);
    for &p in running {
        let current = p.meta().labels.get(REVISION_HASH_LABEL).map(String::as_str) == Some(v.hash);
        let slot = if current { &mut oldest_new } else { &mut oldest_old };
        if slot.is_none() {
            *slot = Some(p);
        } else {
            delete.push(p.meta().name.clone());
        }
    }
    if let (Some(new), Some(old)) = (oldest_new, oldest_old)
        && (!is_ready(old) || is_available(new, min_ready(v.ds), v.now))
    {
        delete.push(old.meta().name.clone());
    }
    delete
}

fn rolling_bounds(ds: &DaemonSet) -> (Option<&IntOrString>, Option<&IntOrString>) {
    let ru = spec_of(ds).update_strategy.as_ref().and_then(|s| s.rolling_update.as_ref());
    (ru.and_then(|r| r.max_surge.as_ref()), ru.and_then(|r| r.max_unavailable.as_ref()))
}

/// A number, or a percentage of `total` rounded up (`GetScaledValueFromIntOrPercent(.., true)`).
pub fn scaled_up(v: Option<&IntOrString>, total: i32) -> i32 {
    let Some(v) = v else { return 0 };
    if let Some(n) = v.as_int() {
        return n.max(0);
    }
    let pct: f64 = v.as_str().unwrap_or("0").trim_end_matches('%').parse().unwrap_or(0.0);
    (pct * f64::from(total) / 100.0).ceil() as i32
}

fn allows_surge(ds: &DaemonSet) -> bool {
    is_rolling(ds) && rolling_bounds(ds).0.is_some_and(|s| scaled_up(Some(s), 100) > 0)
}

pub fn is_rolling(ds: &DaemonSet) -> bool {
    spec_of(ds).update_strategy.as_ref().is_none_or(|s| s.r#type.is_empty() || s.r#type == "RollingUpdate")
}

/// (maxSurge, maxUnavailable, desiredNumberScheduled) for the nodes that should run the pod; never both
/// zero (`updatedDesiredNodeCounts`).
pub fn rolling_counts(v: &View<'_>) -> (i32, i32, i32) {
    let desired = v.fits.values().filter(|f| f.should_run).count() as i32;
    let (surge, unavailable) = rolling_bounds(v.ds);
    let surge = scaled_up(surge, desired);
    let mut unavailable = scaled_up(unavailable, desired);
    if desired > 0 && surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable, desired)
}

/// The one new and one old (not deleting) pod of a node, or None when there are more
/// (`findUpdatedPodsOnNode`).
fn new_and_old<'a>(v: &View<'_>, pods: &[&'a Pod]) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for &p in pods.iter().filter(|p| !is_deleting(p)) {
        let slot = if is_updated(v.ds, p, v.hash) { &mut new } else { &mut old };
        if slot.replace(p).is_some() {
            return None;
        }
    }
    Some((new, old))
}

/// One step of a rolling update: the old pods to delete now, and the nodes to give a new pod before
/// their old one goes (surge).
#[derive(Debug, Default, PartialEq)]
pub struct Rolling {
    pub delete: Vec<String>,
    pub create_on: Vec<String>,
}

/// The next step of a RollingUpdate (`rollingUpdate`): without surge, old pods are deleted (unavailable
/// ones always, available ones while fewer than maxUnavailable nodes lack an available pod) and
/// [`manage`] recreates them; with surge, new pods are started beside old ones (nodes whose old pod is
/// unavailable at once, at most maxSurge others) and an old pod goes once its new one is available.
pub fn rolling_update(v: &View<'_>) -> Rolling {
    let (max_surge, max_unavailable, desired) = rolling_counts(v);
    let min_ready = min_ready(v.ds);
    let available = |p: &Pod| is_available(p, min_ready, v.now);
    // Nodes that should run a pod count even without one.
    let mut nodes: BTreeMap<&str, &[&Pod]> =
        v.by_node.iter().map(|(n, p)| (n.as_str(), p.as_slice())).collect();
    for (n, f) in &v.fits {
        if f.should_run {
            nodes.entry(n.as_str()).or_insert(&[]);
        }
    }
    let should_run = |n: &str| v.fits.get(n).is_some_and(|f| f.should_run);
    let mut out = Rolling::default();
    if max_surge == 0 {
        let mut unavailable = 0;
        let mut replace = Vec::new();
        let mut candidates = Vec::new();
        for pods in nodes.values() {
            match new_and_old(v, pods) {
                None | Some((None, None)) | Some((Some(_), Some(_))) => unavailable += 1,
                Some((Some(new), None)) => unavailable += i32::from(!available(new)),
                Some((None, Some(old))) => {
                    if !available(old) {
                        replace.push(old.meta().name.clone());
                    } else if unavailable < max_unavailable {
                        candidates.push(old.meta().name.clone());
                    }
                }
            }
        }
        let room = usize::try_from((max_unavailable - unavailable).max(0)).unwrap_or(0);
        out.delete = replace;
        out.delete.extend(candidates.into_iter().take(room));
        return out;
    }
    let (mut surging, mut available_count) = (0, 0);
    let (mut allowed, mut candidates, mut sunset) = (Vec::new(), Vec::new(), Vec::new());
    for (&node, pods) in &nodes {
        let Some((new, old)) = new_and_old(v, pods) else {
            surging += 1;
            continue;
        };
        if old.or(new).is_some_and(available) {
            available_count += 1;
        }
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) if !available(old) => {
                if should_run(node) {
                    allowed.push(node.to_string());
                } else {
                    out.delete.push(old.meta().name.clone());
                }
            }
            (None, Some(old)) => {
                if !should_run(node) {
                    sunset.push(old.meta().name.clone());
                } else if surging < max_surge {
                    candidates.push(node.to_string());
                }
            }
            (Some(new), Some(old)) => {
                if available(new) {
                    out.delete.push(old.meta().name.clone());
                } else {
                    surging += 1;
                }
            }
        }
    }
    // Old pods on nodes that no longer qualify go only while enough others are available.
    let deletable = usize::try_from((available_count - desired).max(0)).unwrap_or(0);
    out.delete.extend(sunset.into_iter().take(deletable));
    let room = usize::try_from((max_surge - surging).max(0)).unwrap_or(0);
    out.create_on = allowed;
    out.create_on.extend(candidates.into_iter().take(room));
    out
}

/// The status the DaemonSet's pods give (`updateDaemonSetStatus`); `observed` raises observedGeneration
/// to the DaemonSet's generation (when the sync acted on a pod cache that showed its own writes).
pub fn status(v: &View<'_>, observed: bool) -> DaemonSetStatus {
    let old = v.ds.status.clone().unwrap_or_default();
    let mut s = DaemonSetStatus {
        observed_generation: if observed { v.ds.meta().generation } else { old.observed_generation },
        collision_count: old.collision_count,
        conditions: old.conditions,
        ..Default::default()
    };
    let min_ready = min_ready(v.ds);
    for (node, fit) in &v.fits {
        let oldest = v.by_node.get(node).and_then(|p| p.first());
        if !fit.should_run {
            s.number_misscheduled += i32::from(oldest.is_some());
            continue;
        }
        s.desired_number_scheduled += 1;
        let Some(&pod) = oldest else { continue };
        s.current_number_scheduled += 1;
        if is_ready(pod) {
            s.number_ready += 1;
            s.number_available += i32::from(is_available(pod, min_ready, v.now));
        }
        s.updated_number_scheduled += i32::from(is_updated(v.ds, pod, v.hash));
    }
    s.number_unavailable = s.desired_number_scheduled - s.number_available;
    s
}
