//! Which pods to preempt on one node (Kubernetes' `SelectVictimsOnNode` and
//! `filterPodsWithPDBViolation`) and which candidate node to preempt on (`pickOneNodeForPreemption`).

use std::cmp::Ordering;
use std::sync::Arc;

use navarch_api::selector::Selector;
use navarch_api::v1::{Pod, PodDisruptionBudget};

use super::{filter, priority, sync_state};
use crate::cycle::Cycle;
use crate::node_info::{NodeInfo, pod_key};

/// The status of a node without pods of lower priority than the preemptor.
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// The pods to preempt on one node, most important first, and how many of them their
/// PodDisruptionBudgets do not allow to lose.
#[derive(Debug, Clone, PartialEq)]
pub struct Victims {
    pub pods: Vec<Arc<Pod>>,
    pub pdb_violations: usize,
}

/// `status.startTime` as nanoseconds since the epoch; a pod not started yet counts as starting now,
/// i.e. after every started pod (Kubernetes' `GetPodStartTime`).
pub fn start_time(pod: &Pod) -> i128 {
    pod.status
        .as_ref()
        .and_then(|s| navarch_api::rfc3339::parse(&s.start_time).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(i128::MAX)
}

/// Kubernetes' `MoreImportantPod` as an ordering (`Less`: `a` is more important): higher priority first,
/// then the pod that started earlier.
pub fn importance(a: &Pod, b: &Pod) -> Ordering {
    priority(b).cmp(&priority(a)).then_with(|| start_time(a).cmp(&start_time(b)))
}

/// Splits `pods` (kept in order) into those whose eviction would take one of their budgets below zero
/// disruptions, and the others. Each budget's `disruptionsAllowed` is spent pod by pod in order; a pod
/// already in the budget's `disruptedPods` spends nothing. A budget without a selector, or with an
/// empty one, covers no pod here.
pub fn split_by_pdb(
    pods: Vec<Arc<Pod>>,
    pdbs: &[Arc<PodDisruptionBudget>],
) -> (Vec<Arc<Pod>>, Vec<Arc<Pod>>) {
    let selectors: Vec<Option<Selector>> = pdbs
        .iter()
        .map(|b| {
            let ls = b.spec.as_ref()?.selector.as_ref()?;
            Selector::from_label_selector(Some(ls)).ok().filter(|s| !s.is_empty())
        })
        .collect();
    let mut allowed: Vec<i64> =
        pdbs.iter().map(|b| b.status.as_ref().map(|s| s.disruptions_allowed as i64).unwrap_or(0)).collect();
    let (mut violating, mut other) = (Vec::new(), Vec::new());
    for pod in pods {
        let meta = pod.metadata.clone().unwrap_or_default();
        let mut violated = false;
        if !meta.labels.is_empty() {
            for (i, pdb) in pdbs.iter().enumerate() {
                let Some(sel) = &selectors[i] else { continue };
                if pdb.metadata.as_ref().map(|m| m.namespace.as_str()) != Some(meta.namespace.as_str())
                    || !sel.matches(&meta.labels)
                {
                    continue;
                }
                if pdb.status.as_ref().is_some_and(|s| s.disrupted_pods.contains_key(&meta.name)) {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violated = true;
                }
            }
        }
        if violated { violating.push(pod) } else { other.push(pod) }
    }
    (violating, other)
}

/// The fewest pods to preempt on `node` so the cycle's pod fits: every pod of lower priority is removed;
/// if the pod then fits, they are reprieved one by one — those whose budget would be violated first,
/// each group most important first — and a pod stays a victim only if the pod no longer fits with it
/// back. `Err` holds the node's reasons when preempting cannot make the pod fit.
pub fn select_on_node(
    cycle: &Cycle,
    node: &NodeInfo,
    pdbs: &[Arc<PodDisruptionBudget>],
) -> Result<Victims, Vec<String>> {
    let prio = priority(cycle.pod);
    let mut potential: Vec<Arc<Pod>> = node.pods.values().filter(|p| priority(p) < prio).cloned().collect();
    if potential.is_empty() {
        return Err(vec![NO_VICTIMS.to_string()]);
    }
    let mut info = node.clone();
    let mut state = cycle.clone();
    for p in &potential {
        info.remove_pod(&pod_key(p));
        sync_state(&mut state, p, &info, false);
    }
    let reasons = filter(&state, &info);
    if !reasons.is_empty() {
        return Err(reasons);
    }
    potential.sort_by(|a, b| importance(a, b).then_with(|| pod_key(a).cmp(&pod_key(b))));
    let (violating, other) = split_by_pdb(potential, pdbs);
    let mixed = !violating.is_empty() && !other.is_empty();
    let mut victims = Vec::new();
    let mut pdb_violations = 0;
    for (p, counts) in violating.into_iter().map(|p| (p, true)).chain(other.into_iter().map(|p| (p, false))) {
        info.add_pod(p.clone());
        sync_state(&mut state, &p, &info, true);
        if !filter(&state, &info).is_empty() {
            info.remove_pod(&pod_key(&p));
            sync_state(&mut state, &p, &info, false);
            victims.push(p);
            pdb_violations += counts as usize;
        }
    }
    if mixed {
        victims.sort_by(|a, b| importance(a, b));
    }
    Ok(Victims { pods: victims, pdb_violations })
}

/// The candidate to preempt on, by Kubernetes' criteria in order: fewest budget violations, lowest
/// highest-priority victim, smallest sum of priorities, fewest victims, latest start of the earliest
/// of the highest-priority victims; then the first. `candidates` is non-empty; victims are most
/// important first.
pub fn pick_one(candidates: &[(String, Victims)]) -> usize {
    type Score = fn(&Victims) -> i128;
    let scores: [Score; 5] = [
        |v| -(v.pdb_violations as i128),
        |v| -(v.pods.first().map(|p| priority(p)).unwrap_or(i32::MIN) as i128),
        |v| -v.pods.iter().map(|p| priority(p) as i128 + (i32::MAX as i128 + 1)).sum::<i128>(),
        |v| -(v.pods.len() as i128),
        |v| {
            let top = v.pods.first().map(|p| priority(p));
            v.pods
                .iter()
                .filter(|p| Some(priority(p)) == top)
                .map(|p| start_time(p))
                .min()
                .unwrap_or(i128::MIN)
        },
    ];
    let mut left: Vec<usize> = (0..candidates.len()).collect();
    for f in scores {
        let best = left.iter().map(|&i| f(&candidates[i].1)).max().unwrap_or(0);
        left.retain(|&i| f(&candidates[i].1) == best);
        if left.len() == 1 {
            break;
        }
    }
    left[0]
}
