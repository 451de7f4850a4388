//! Preemption against hand-computed cases: victims on a node (minimal, budgets first), the node
//! choice criteria in Kubernetes' order, eligibility, messages, and nominated pods in filtering.

use std::sync::Arc;

use navarch_api::v1::{Node, Pod, PodDisruptionBudget};
use navarch_api::{Object, manifest};

use super::victims::{NO_VICTIMS, Victims, pick_one, select_on_node, split_by_pdb};
use super::*;
use crate::cache::Cache;
use crate::scheduler::find_feasible;

fn parse(yaml: &str) -> Object {
    manifest::parse(yaml, "t").unwrap().remove(0)
}

/// A pod of `cpu` with `priority`; `started` is the second of its start time (none: not started).
fn pod(name: &str, cpu: &str, priority: i32, started: Option<u32>, extra: &str) -> Arc<Pod> {
    let start =
        started.map(|s| format!("status: {{startTime: '2024-01-01T00:00:{s:02}Z'}}\n")).unwrap_or_default();
    let y = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default, labels: {{app: {name}}}}}\nspec:\n  priority: {priority}\n  containers: [{{name: c, image: x, resources: {{requests: {{cpu: '{cpu}'}}}}}}]\n{extra}{start}"
    );
    match parse(&y) {
        Object::Pod(p) => Arc::new(p),
        _ => unreachable!(),
    }
}

fn node(name: &str, cpu: &str, extra: &str) -> Arc<Node> {
    let y = format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\nspec: {{{extra}}}\nstatus:\n  allocatable: {{cpu: '{cpu}', memory: 8Gi, pods: '110'}}\n  conditions: [{{type: Ready, status: 'True'}}]\n"
    );
    match parse(&y) {
        Object::Node(n) => Arc::new(n),
        _ => unreachable!(),
    }
}

fn pdb(selects: &str, allowed: i32, disrupted: &[&str]) -> Arc<PodDisruptionBudget> {
    let disrupted: Vec<String> = disrupted.iter().map(|d| format!("{d}: '2024-01-01T00:00:00Z'")).collect();
    let y = format!(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {{name: b, namespace: default}}\nspec: {{minAvailable: 1, selector: {selects}}}\nstatus: {{disruptionsAllowed: {allowed}, disruptedPods: {{{}}}}}\n",
        disrupted.join(", ")
    );
    match parse(&y) {
        Object::PodDisruptionBudget(b) => Arc::new(b),
        _ => unreachable!(),
    }
}

/// A cache with `nodes`, each with its pods bound.
fn cache(nodes: &[(Arc<Node>, Vec<Arc<Pod>>)]) -> Cache {
    let mut c = Cache::default();
    for (n, pods) in nodes {
        c.upsert_node(n.clone());
        let name = n.metadata.as_ref().unwrap().name.clone();
        for p in pods {
            c.bound(pod_key(p), &name, p.clone(), false);
        }
    }
    c
}

fn names(pods: &[Arc<Pod>]) -> Vec<String> {
    pods.iter().map(|p| p.metadata.as_ref().unwrap().name.clone()).collect()
}

fn victims_on(
    c: &Cache,
    preemptor: &Pod,
    node: &str,
    pdbs: &[Arc<PodDisruptionBudget>],
) -> Result<Victims, Vec<String>> {
    let cycle = Cycle::new(preemptor, c, None);
    select_on_node(&cycle, c.node(node).unwrap(), pdbs)
}

#[test]
fn victims_are_the_fewest_lowest_priority_pods() {
    // 2 cpu full with four 500m pods of priorities 1, 2, 3 and 10; the preemptor (5) needs 1 cpu.
    let pods = vec![
        pod("a", "500m", 1, Some(1), ""),
        pod("b", "500m", 2, Some(2), ""),
        pod("c", "500m", 3, Some(3), ""),
        pod("d", "500m", 10, Some(4), ""),
    ];
    let c = cache(&[(node("n1", "2", ""), pods)]);
    let p = pod("p", "1", 5, None, "");
    // All of a, b, c removed: 500m used, the pod fits. Reprieved most important first: c (1.5 cpu with
    // the pod: fits), then b (2.5: no) and a (no).
    let v = victims_on(&c, &p, "n1", &[]).unwrap();
    assert_eq!((names(&v.pods), v.pdb_violations), (vec!["b".to_string(), "a".to_string()], 0));
    // Needing 1.5 cpu: only d (higher priority) may stay.
    let v = victims_on(&c, &pod("p", "1500m", 5, None, ""), "n1", &[]).unwrap();
    assert_eq!(names(&v.pods), ["c", "b", "a"]);
    // Needing 2 cpu: even without a, b and c it does not fit: the node's reasons.
    assert_eq!(victims_on(&c, &pod("p", "2", 5, None, ""), "n1", &[]).unwrap_err(), ["Insufficient cpu"]);
    // Nothing of lower priority.
    assert_eq!(victims_on(&c, &pod("p", "1", 1, None, ""), "n1", &[]).unwrap_err(), [NO_VICTIMS]);
}

#[test]
fn equal_priority_victims_by_start_time_and_budgets_reprieved_first() {
    // Two 1-cpu pods of priority 1 on a full 2-cpu node; a started first, so it is more important.
    let pods = vec![pod("a", "1", 1, Some(1), ""), pod("b", "1", 1, Some(9), "")];
    let c = cache(&[(node("n1", "2", ""), pods)]);
    let p = pod("p", "1", 5, None, "");
    assert_eq!(names(&victims_on(&c, &p, "n1", &[]).unwrap().pods), ["b"]);
    // A budget that allows no disruption of b: b is reprieved first, a goes instead, no violation.
    let v = victims_on(&c, &p, "n1", &[pdb("{matchLabels: {app: b}}", 0, &[])]).unwrap();
    assert_eq!((names(&v.pods), v.pdb_violations), (vec!["a".to_string()], 0));
    // Both must go; one budget over both allowing one disruption: a spends it, b violates it.
    let big = pod("p", "2", 5, None, "");
    let both = pdb("{matchExpressions: [{key: app, operator: In, values: [a, b]}]}", 1, &[]);
    let v = victims_on(&c, &big, "n1", &[both]).unwrap();
    assert_eq!((names(&v.pods), v.pdb_violations), (vec!["a".to_string(), "b".to_string()], 1));
}

#[test]
fn budgets_split_pods_like_kubernetes() {
    let (a, b, c) = (pod("a", "1", 1, None, ""), pod("b", "1", 1, None, ""), pod("c", "1", 1, None, ""));
    let all = vec![a.clone(), b.clone(), c.clone()];
    let sel = "{matchExpressions: [{key: app, operator: Exists}]}";
    // 1 allowed: the first pod spends it, the others violate.
    let (v, ok) = split_by_pdb(all.clone(), &[pdb(sel, 1, &[])]);
    assert_eq!((names(&v), names(&ok)), (vec!["b".to_string(), "c".to_string()], vec!["a".to_string()]));
    // A pod already in disruptedPods spends nothing.
    let (v, _) = split_by_pdb(all.clone(), &[pdb(sel, 1, &["a"])]);
    assert_eq!(names(&v), ["c"]);
    // An empty selector covers no pod for preemption.
    let (v, _) = split_by_pdb(all.clone(), &[pdb("{}", 0, &[])]);
    assert!(v.is_empty());
    // Another namespace's budget does not count.
    let mut other = (*pdb(sel, 0, &[])).clone();
    other.metadata.as_mut().unwrap().namespace = "other".into();
    let (v, _) = split_by_pdb(all, &[Arc::new(other)]);
    assert!(v.is_empty());
}

fn cand(node: &str, violations: usize, pods: &[(i32, Option<u32>)]) -> (String, Victims) {
    let pods = pods.iter().enumerate().map(|(i, (p, s))| pod(&format!("v{i}"), "1", *p, *s, "")).collect();
    (node.to_string(), Victims { pods, pdb_violations: violations })
}

#[test]
fn node_choice_follows_kubernetes_criteria_in_order() {
    let s = Some(5);
    // 1. Fewest budget violations, even with higher-priority victims.
    assert_eq!(pick_one(&[cand("x", 1, &[(1, s)]), cand("y", 0, &[(4, s), (4, s)])]), 1);
    // 2. Lowest highest-priority victim.
    assert_eq!(pick_one(&[cand("x", 0, &[(3, s)]), cand("y", 0, &[(2, s), (2, s), (2, s)])]), 1);
    // 3. Smallest sum of priorities (each offset by 2^31 so negatives count): 3+1 < 3+2.
    assert_eq!(pick_one(&[cand("x", 0, &[(3, s), (2, s)]), cand("y", 0, &[(3, s), (1, s)])]), 1);
    // ... which prefers one victim of -5 over two of -5.
    assert_eq!(pick_one(&[cand("x", 0, &[(-5, s), (-5, s)]), cand("y", 0, &[(-5, s)])]), 1);
    // 4. Fewest victims: same sum needs different counts, e.g. {0} vs {0, 0} is settled by 3 already;
    //    with equal sums and counts it falls through to 5.
    // 5. Latest start of the earliest highest-priority victim: y's started at 8, x's at 2.
    assert_eq!(
        pick_one(&[cand("x", 0, &[(3, Some(2)), (1, Some(9))]), cand("y", 0, &[(3, Some(8)), (1, Some(1))])]),
        1
    );
    // A victim not started yet counts as starting now (latest).
    assert_eq!(pick_one(&[cand("x", 0, &[(3, Some(2))]), cand("y", 0, &[(3, None)])]), 1);
    // 6. Full tie: the first.
    assert_eq!(pick_one(&[cand("x", 0, &[(3, s)]), cand("y", 0, &[(3, s)])]), 0);
}

fn outcome(c: &Cache, p: &Pod, pdbs: &[Arc<PodDisruptionBudget>]) -> Outcome {
    let cycle = Cycle::new(p, c, None);
    let (found, failures) = find_feasible(&cycle, 0, usize::MAX, 1);
    assert!(found.is_empty(), "the pod fits somewhere");
    preempt(&cycle, &failures, pdbs, 0)
}

fn fail(message: &str, clear: bool) -> Outcome {
    Outcome::Fail { message: message.into(), clear_nomination: clear }
}

#[test]
fn preempts_on_the_node_with_the_least_important_victims() {
    // n1: two 1-cpu pods of priority 1; n2: one of priority 2 and one of 100; n3 tainted.
    let c = cache(&[
        (node("n1", "2", ""), vec![pod("a", "1", 1, Some(1), ""), pod("b", "1", 1, Some(2), "")]),
        (node("n2", "2", ""), vec![pod("c", "1", 2, Some(1), ""), pod("d", "1", 100, Some(1), "")]),
        (node("n3", "8", "taints: [{key: k, value: v, effect: NoSchedule}]"), vec![]),
    ]);
    // 1 cpu at priority 10: n1 (victim b, priority 1) beats n2 (victim c, priority 2).
    let Outcome::Preempt { node, victims, lower_nominated } = outcome(&c, &pod("p", "1", 10, None, ""), &[])
    else {
        panic!("expected a preemption")
    };
    assert_eq!(
        (node.as_str(), names(&victims.pods), lower_nominated.len()),
        ("n1", vec!["b".to_string()], 0)
    );
    // A budget protecting b and a: n2 (no violation) wins over n1.
    let Outcome::Preempt { node, victims, .. } = outcome(
        &c,
        &pod("p", "1", 10, None, ""),
        &[pdb("{matchExpressions: [{key: app, operator: In, values: [a, b]}]}", 0, &[])],
    ) else {
        panic!("expected a preemption")
    };
    assert_eq!((node.as_str(), names(&victims.pods)), ("n2", vec!["c".to_string()]));
    // ... unless n2 cannot help: 2 cpu at priority 10 only fit on n1 (d outranks it on n2).
    let Outcome::Preempt { node, victims, .. } =
        outcome(&c, &pod("p", "2", 10, None, ""), &[pdb("{matchLabels: {app: a}}", 0, &[])])
    else {
        panic!("expected a preemption")
    };
    assert_eq!(
        (node.as_str(), names(&victims.pods), victims.pdb_violations),
        ("n1", vec!["a".into(), "b".into()], 1)
    );
}

#[test]
fn says_why_preemption_cannot_help() {
    let c = cache(&[
        (node("n1", "2", ""), vec![pod("a", "1", 1, Some(1), ""), pod("b", "1", 1, Some(2), "")]),
        (node("n2", "2", ""), vec![pod("c", "1", 2, Some(1), ""), pod("d", "1", 100, Some(1), "")]),
        (node("n3", "8", "taints: [{key: k, value: v, effect: NoSchedule}]"), vec![]),
    ]);
    // Priority 1: nothing lower anywhere.
    assert_eq!(
        outcome(&c, &pod("p", "1", 1, None, ""), &[]),
        fail(
            "0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.",
            true
        )
    );
    // Priority 2, 2 cpu: n1 could be emptied but 2 cpu need more than... n1 has 2: it fits there.
    // 3 cpu fit nowhere even with every lower pod gone: the nodes' own reasons.
    assert_eq!(
        outcome(&c, &pod("p", "3", 50, None, ""), &[]),
        fail(
            "0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 Insufficient cpu.",
            true
        )
    );
    assert_eq!(
        outcome(&c, &pod("p", "1", 10, None, "  preemptionPolicy: Never\n"), &[]),
        fail(NOT_ELIGIBLE_NEVER, false)
    );
}

#[test]
fn a_nominated_pod_waits_for_its_terminating_victims() {
    let mut victim = (*pod("a", "2", 1, Some(1), "")).clone();
    victim.metadata.as_mut().unwrap().deletion_timestamp = "2024-01-01T00:01:00Z".into();
    victim.status.as_mut().unwrap().conditions.push(navarch_api::v1::PodCondition {
        r#type: DISRUPTION_TARGET.into(),
        status: "True".into(),
        reason: REASON_PREEMPTION.into(),
        ..Default::default()
    });
    let c = cache(&[
        (node("n1", "2", ""), vec![Arc::new(victim)]),
        (node("n2", "2", ""), vec![pod("b", "2", 1, Some(1), "")]),
    ]);
    let mut p = (*pod("p", "2", 10, None, "")).clone();
    p.status.get_or_insert_with(Default::default).nominated_node_name = "n1".into();
    assert_eq!(outcome(&c, &p, &[]), fail(NOT_ELIGIBLE_TERMINATING, false));
    // Not nominated: it may preempt (n1's terminating pod is a victim again, or n2's).
    p.status.as_mut().unwrap().nominated_node_name.clear();
    assert!(matches!(outcome(&c, &p, &[]), Outcome::Preempt { .. }));
}

#[test]
fn nominated_pods_count_for_pods_of_lower_or_equal_priority() {
    let mut c = cache(&[(node("n1", "2", ""), vec![pod("a", "1", 0, Some(1), "")])]);
    let nominated = pod("nom", "1", 10, None, "");
    c.nominated_mut().nominate("default/nom", nominated.clone(), "n1");
    let n1 = c.node("n1").unwrap();
    let reasons = |p: &Pod| filter(&Cycle::new(p, &c, None), n1);
    assert_eq!(reasons(&pod("low", "500m", 5, None, "")), ["Insufficient cpu"]);
    assert_eq!(reasons(&pod("same", "500m", 10, None, "")), ["Insufficient cpu"]);
    assert!(reasons(&pod("high", "500m", 11, None, "")).is_empty(), "higher priority ignores the nomination");
    assert!(reasons(&nominated).is_empty(), "the nominated pod itself fits");
}

#[test]
fn nominator_keeps_memory_until_the_status_says_otherwise() {
    let mut n = nominator::Nominator::default();
    let p = pod("p", "1", 1, None, "");
    n.update("default/p", p.clone());
    assert!(n.is_empty(), "no nomination in status or memory");
    n.nominate("default/p", p.clone(), "n1");
    n.update("default/p", p.clone());
    assert_eq!(n.node_of("default/p"), Some("n1"), "an older status without it keeps the nomination");
    let mut moved = (*p).clone();
    moved.status.get_or_insert_with(Default::default).nominated_node_name = "n2".into();
    n.update("default/p", Arc::new(moved));
    assert_eq!((n.node_of("default/p"), n.pods_on("n1").len(), n.pods_on("n2").len()), (Some("n2"), 0, 1));
    assert_eq!(n.remove("default/p").as_deref(), Some("n2"));
    assert!(n.is_empty());
}
