//! Topology spreading against hand-computed cases (Kubernetes' documented examples among them), the
//! default constraints, and the indexed counts against a brute-force reference on a large cluster.

use std::sync::Arc;

use navarch_api::v1::{Node, OwnerReference, Pod, ReplicaSet, Service};

use super::*;
use crate::cache::Cache;
use crate::cycle::Cycle;
use crate::node_info::pod_key;

fn node(name: &str, labels: &[(&str, &str)], extra: &str) -> Arc<Node> {
    let mut l: Vec<String> = vec![format!("kubernetes.io/hostname: {name}")];
    l.extend(labels.iter().map(|(k, v)| format!("{k}: {v}")));
    let y = format!(
        "metadata: {{name: {name}, labels: {{{}}}}}\nspec: {{{extra}}}\nstatus:\n  allocatable: {{cpu: '8', memory: 16Gi, pods: '110'}}\n  conditions: [{{type: Ready, status: 'True'}}]\n",
        l.join(", ")
    );
    Arc::new(serde_yaml::from_str(&y).unwrap())
}

/// A pod in namespace `default` with `labels` and the given spec fields (YAML flow entries).
fn pod(name: &str, labels: &str, spec: &str) -> Pod {
    let sep = if spec.is_empty() { "" } else { ", " };
    let y = format!(
        "metadata: {{name: {name}, namespace: default, labels: {{{labels}}}}}\nspec: {{containers: [{{name: c, image: x}}]{sep}{spec}}}\n"
    );
    serde_yaml::from_str(&y).unwrap()
}

fn place(cache: &mut Cache, p: Pod, node: &str) {
    cache.assume(pod_key(&p), node, Arc::new(p));
}

/// Kubernetes' documented cluster: zoneA has node1 and node2, zoneB node3 and node4; one `foo: bar`
/// pod on each of node1, node2 and node3.
fn docs_cluster() -> Cache {
    let mut c = Cache::default();
    for (n, z) in [("node1", "zoneA"), ("node2", "zoneA"), ("node3", "zoneB"), ("node4", "zoneB")] {
        c.upsert_node(node(n, &[("zone", z)], ""));
    }
    for (i, n) in ["node1", "node2", "node3"].into_iter().enumerate() {
        place(&mut c, pod(&format!("p{i}"), "foo: bar", ""), n);
    }
    c
}

fn spread(key: &str, skew: i32, when: &str, extra: &str) -> String {
    format!(
        "{{maxSkew: {skew}, topologyKey: {key}, whenUnsatisfiable: {when}, labelSelector: {{matchLabels: {{foo: bar}}}}{extra}}}"
    )
}

fn constraints_spec(list: &[String]) -> String {
    format!("topologySpreadConstraints: [{}]", list.join(", "))
}

/// Each node's filter result, in name order.
fn results(cache: &Cache, p: &Pod) -> Vec<(String, Option<&'static str>)> {
    let cycle = Cycle::new(p, cache, None);
    cycle.nodes.iter().map(|n| (n.name().to_string(), filter(&cycle, n))).collect()
}

fn fitting(cache: &Cache, p: &Pod) -> Vec<String> {
    results(cache, p).into_iter().filter(|(_, r)| r.is_none()).map(|(n, _)| n).collect()
}

fn scores(cache: &Cache, p: &Pod) -> Vec<i64> {
    let cycle = Cycle::new(p, cache, None);
    score(&cycle, &cycle.nodes)
}

#[test]
fn docs_one_constraint_places_in_zone_b() {
    let c = docs_cluster();
    let p = pod("mypod", "foo: bar", &constraints_spec(&[spread("zone", 1, "DoNotSchedule", "")]));
    // zoneA: 2 + 1 − 1 = 2 > 1; zoneB: 1 + 1 − 1 = 1.
    assert_eq!(fitting(&c, &p), ["node3", "node4"]);
    assert_eq!(results(&c, &p)[0].1, Some(REASON_CONSTRAINTS));
    // With maxSkew 2 zoneA is fine too.
    let p = pod("mypod", "foo: bar", &constraints_spec(&[spread("zone", 2, "DoNotSchedule", "")]));
    assert_eq!(fitting(&c, &p).len(), 4);
}

#[test]
fn docs_two_constraints_place_on_node4() {
    let c = docs_cluster();
    let p = pod(
        "mypod",
        "foo: bar",
        &constraints_spec(&[spread("zone", 1, "DoNotSchedule", ""), spread("node", 1, "DoNotSchedule", "")]),
    );
    // `node` is a label only some nodes have: every node lacks it.
    assert!(results(&c, &p).iter().all(|(_, r)| *r == Some(REASON_MISSING_LABEL)));
    let p = pod(
        "mypod",
        "foo: bar",
        &constraints_spec(&[
            spread("zone", 1, "DoNotSchedule", ""),
            spread("kubernetes.io/hostname", 1, "DoNotSchedule", ""),
        ]),
    );
    // Zone: only zoneB; hostname: node3 has 1 + 1 − 0 = 2 > 1, node4 0 + 1 − 0 = 1.
    assert_eq!(fitting(&c, &p), ["node4"]);
}

#[test]
fn pods_not_matching_or_elsewhere_do_not_count_and_self_match_matters() {
    let mut c = docs_cluster();
    // A terminating pod, a pod of another namespace and a non-matching pod in zoneB: not counted.
    let mut t = pod("t", "foo: bar", "");
    t.metadata.as_mut().unwrap().deletion_timestamp = "2024-01-01T00:00:00Z".into();
    place(&mut c, t, "node4");
    let mut other = pod("o", "foo: bar", "");
    other.metadata.as_mut().unwrap().namespace = "other".into();
    place(&mut c, other, "node4");
    place(&mut c, pod("x", "foo: baz", ""), "node4");
    let p = pod("mypod", "foo: bar", &constraints_spec(&[spread("zone", 1, "DoNotSchedule", "")]));
    assert_eq!(fitting(&c, &p), ["node3", "node4"]);
    // An incoming pod the selector does not match adds nothing to the skew: 2 + 0 − 1 = 1.
    let p = pod("mypod", "foo: other", &constraints_spec(&[spread("zone", 1, "DoNotSchedule", "")]));
    assert_eq!(fitting(&c, &p).len(), 4);
}

#[test]
fn min_domains_treats_the_global_minimum_as_zero() {
    let c = docs_cluster();
    // Two zones < minDomains 3: min is 0; zoneB: 1 + 1 − 0 = 2 > 1, zoneA 3 > 1. Nothing fits.
    let p =
        pod("mypod", "foo: bar", &constraints_spec(&[spread("zone", 1, "DoNotSchedule", ", minDomains: 3")]));
    assert!(fitting(&c, &p).is_empty());
    // maxSkew 2: zoneB fits (2 ≤ 2), zoneA (3) does not.
    let p =
        pod("mypod", "foo: bar", &constraints_spec(&[spread("zone", 2, "DoNotSchedule", ", minDomains: 3")]));
    assert_eq!(fitting(&c, &p), ["node3", "node4"]);
    // minDomains 2 is met: as without it.
    let p =
        pod("mypod", "foo: bar", &constraints_spec(&[spread("zone", 1, "DoNotSchedule", ", minDomains: 2")]));
    assert_eq!(fitting(&c, &p), ["node3", "node4"]);
}

#[test]
fn node_affinity_and_taint_policies_choose_the_domains() {
    // The docs' example: zoneC's node5 is excluded by the pod's node affinity, so its empty domain does
    // not pull the minimum to 0 (Honor), unless the policy is Ignore.
    let mut c = docs_cluster();
    c.upsert_node(node("node5", &[("zone", "zoneC")], ""));
    let affinity = "affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: NotIn, values: [zoneC]}]}]}}}";
    let p = pod(
        "mypod",
        "foo: bar",
        &format!("{}, {affinity}", constraints_spec(&[spread("zone", 1, "DoNotSchedule", "")])),
    );
    // Honor: domains A (2) and B (1): B fits; node5 fits the spread filter (its domain has 0 pods).
    assert_eq!(fitting(&c, &p), ["node3", "node4", "node5"]);
    let p = pod(
        "mypod",
        "foo: bar",
        &format!(
            "{}, {affinity}",
            constraints_spec(&[spread("zone", 1, "DoNotSchedule", ", nodeAffinityPolicy: Ignore")])
        ),
    );
    // Ignore: zoneC counts with 0, so B (1 + 1 − 0 = 2) no longer fits.
    assert_eq!(fitting(&c, &p), ["node5"]);
    // Taints: ignored by default; with Honor, a tainted zoneC does not count.
    let mut c = docs_cluster();
    c.upsert_node(node("node5", &[("zone", "zoneC")], "taints: [{key: k, value: v, effect: NoSchedule}]"));
    let p = pod("mypod", "foo: bar", &constraints_spec(&[spread("zone", 1, "DoNotSchedule", "")]));
    assert_eq!(fitting(&c, &p), ["node5"]);
    let p = pod(
        "mypod",
        "foo: bar",
        &constraints_spec(&[spread("zone", 1, "DoNotSchedule", ", nodeTaintsPolicy: Honor")]),
    );
    assert_eq!(fitting(&c, &p), ["node3", "node4", "node5"]);
}

#[test]
fn match_label_keys_narrow_the_selector() {
    let mut c = Cache::default();
    for (n, z) in [("n1", "a"), ("n2", "b")] {
        c.upsert_node(node(n, &[("zone", z)], ""));
    }
    // Two pods of an old revision in zone a.
    place(&mut c, pod("old1", "foo: bar, rev: '1'", ""), "n1");
    place(&mut c, pod("old2", "foo: bar, rev: '1'", ""), "n1");
    let plain = constraints_spec(&[spread("zone", 1, "DoNotSchedule", "")]);
    assert_eq!(fitting(&c, &pod("new", "foo: bar, rev: '2'", &plain)), ["n2"]);
    // Counting only revision 2: both zones have 0.
    let keyed = constraints_spec(&[spread("zone", 1, "DoNotSchedule", ", matchLabelKeys: [rev]")]);
    assert_eq!(fitting(&c, &pod("new", "foo: bar, rev: '2'", &keyed)), ["n1", "n2"]);
}

#[test]
fn preemption_extensions_remove_and_add_pods() {
    let c = docs_cluster();
    let p = pod("mypod", "foo: bar", &constraints_spec(&[spread("zone", 1, "DoNotSchedule", "")]));
    let mut cycle = Cycle::new(&p, &c, None);
    let node1 = c.node("node1").unwrap();
    let victim = node1.pods.values().next().unwrap().clone();
    assert_eq!(filter(&cycle, node1), Some(REASON_CONSTRAINTS));
    // Without one of zoneA's pods: 1 + 1 − 1 = 1.
    cycle.remove_pod(&victim, node1);
    assert_eq!(cycle.spread.count(0, "zoneA"), Some(1));
    assert_eq!(filter(&cycle, node1), None);
    cycle.add_pod(&victim, node1);
    assert_eq!(filter(&cycle, node1), Some(REASON_CONSTRAINTS));
    // Removing zoneB's only pod lowers the minimum: zoneA now 2 + 1 − 0 = 3.
    let node3 = c.node("node3").unwrap();
    let mut copy = cycle.spread.clone();
    copy.remove_pod(&node3.pods.values().next().unwrap().clone(), node3);
    assert_eq!(copy.hard[0].min(), 0);
    // A pod of another namespace changes nothing.
    let mut other = (*victim).clone();
    other.metadata.as_mut().unwrap().namespace = "other".into();
    cycle.remove_pod(&other, node1);
    assert_eq!(cycle.spread.count(0, "zoneA"), Some(2));
}

#[test]
fn score_by_hand() {
    // Three nodes in one zone; 0, 1 and 2 matching pods. Hostname, maxSkew 1: weight ln(3 + 2).
    let mut c = Cache::default();
    for n in ["n1", "n2", "n3"] {
        c.upsert_node(node(n, &[("zone", "a")], ""));
    }
    place(&mut c, pod("a", "foo: bar", ""), "n2");
    place(&mut c, pod("b", "foo: bar", ""), "n3");
    place(&mut c, pod("c", "foo: bar", ""), "n3");
    let host = constraints_spec(&[spread("kubernetes.io/hostname", 1, "ScheduleAnyway", "")]);
    // raw 0, round(1.609) = 2, round(3.219) = 3 → 100·(3 − s)/3.
    assert_eq!(scores(&c, &pod("p", "foo: bar", &host)), [100, 33, 0]);
    // maxSkew 3 adds 2 to each: raw 2, 4, 5 → 100·(7 − s)/5.
    let host3 = constraints_spec(&[spread("kubernetes.io/hostname", 3, "ScheduleAnyway", "")]);
    assert_eq!(scores(&c, &pod("p", "foo: bar", &host3)), [100, 60, 40]);
    // A zone constraint alone: one domain with 3 pods, weight ln 3: every node raw 3 → 100·3/3.
    let zone = constraints_spec(&[spread("zone", 1, "ScheduleAnyway", "")]);
    assert_eq!(scores(&c, &pod("p", "foo: bar", &zone)), [100, 100, 100]);
    // DoNotSchedule constraints do not score.
    let hard = constraints_spec(&[spread("kubernetes.io/hostname", 1, "DoNotSchedule", "")]);
    assert_eq!(scores(&c, &pod("p", "foo: bar", &hard)), [0, 0, 0]);
    // A node without the key is ignored (0) and not a domain.
    c.upsert_node(node("n4", &[], ""));
    place(&mut c, pod("d", "foo: bar", ""), "n4");
    assert_eq!(scores(&c, &pod("p", "foo: bar", &zone)), [100, 100, 100, 0]);
    // Nothing matching anywhere: every node 100 (n4 has a hostname).
    assert_eq!(scores(&c, &pod("p", "foo: bar", &host.replace("bar", "none"))), [100, 100, 100, 100]);
}

#[test]
fn score_zones_weighted_by_domain_count() {
    // Zones a (n1, n2: 3 pods), b (n3: 1 pod): zone weight ln 4 = 1.386 → raw a 4.16 → 4, b 1.39 → 1.
    let mut c = Cache::default();
    for (n, z) in [("n1", "a"), ("n2", "a"), ("n3", "b")] {
        c.upsert_node(node(n, &[("zone", z)], ""));
    }
    for (i, n) in ["n1", "n1", "n2", "n3"].into_iter().enumerate() {
        place(&mut c, pod(&format!("p{i}"), "foo: bar", ""), n);
    }
    let zone = constraints_spec(&[spread("zone", 1, "ScheduleAnyway", "")]);
    // 100·(4 + 1 − s)/4: a 25, b 100.
    assert_eq!(scores(&c, &pod("p", "foo: bar", &zone)), [25, 25, 100]);
    // Zone and hostname (weight ln 5 = 1.609): n1 4.16 + 3.22 = 7.38 → 7, n2 4.16 + 1.61 → 6,
    // n3 1.39 + 1.61 = 3.0 → 3; 100·(10 − s)/7.
    let both = constraints_spec(&[
        spread("zone", 1, "ScheduleAnyway", ""),
        spread("kubernetes.io/hostname", 1, "ScheduleAnyway", ""),
    ]);
    assert_eq!(scores(&c, &pod("p", "foo: bar", &both)), [42, 57, 100]);
}

fn owned_by_rs(mut p: Pod, rs: &str) -> Pod {
    p.metadata.as_mut().unwrap().owner_references.push(OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: rs.into(),
        uid: "u1".into(),
        controller: Some(true),
        ..Default::default()
    });
    p
}

#[test]
fn system_defaults_take_the_selector_from_services_and_controllers() {
    let mut c = Cache::default();
    for (n, z) in [("n1", "a"), ("n2", "b")] {
        c.upsert_node(node(n, &[(ZONE, z)], ""));
    }
    c.upsert_node(node("n3", &[], "")); // no zone label: still scored under the system defaults
    let rs: ReplicaSet = serde_yaml::from_str(
        "metadata: {name: web, namespace: default}\nspec: {selector: {matchLabels: {app: web}}}\n",
    )
    .unwrap();
    c.spread_defaults_mut().apply(SourceEvent::Apply(rs.source()));
    for i in 0..4 {
        place(&mut c, owned_by_rs(pod(&format!("w{i}"), "app: web", ""), "web"), "n1");
    }
    place(&mut c, pod("unowned", "app: web", ""), "n2");
    let p = owned_by_rs(pod("new", "app: web", ""), "web");
    assert_eq!(c.spread_defaults().selector_for(&p).to_string(), "app=web");
    // Hostname (maxSkew 3, weight ln 5): n1 4 → 6.44 + 2, n2 1 → 1.61 + 2, n3 0 → 2; zone (maxSkew 5,
    // weight ln(3 + 2) over domains a, b and ""): a 4 → 6.44 + 4, b 1 → 1.61 + 4, n3 has no zone key.
    // Raw: n1 round(18.88) = 19, n2 round(9.22) = 9, n3 2 → 100·(21 − s)/19.
    assert_eq!(scores(&c, &p), [10, 63, 100]);
    // No Service or controller: no default constraints.
    assert!(scores(&c, &pod("bare", "app: web", "")).iter().all(|s| *s == 0));
    // A Service selecting the pod adds its labels.
    let svc: Service =
        serde_yaml::from_str("metadata: {name: s, namespace: default}\nspec: {selector: {tier: fe}}\n")
            .unwrap();
    c.spread_defaults_mut().apply(SourceEvent::Apply(svc.source()));
    let p2 = owned_by_rs(pod("new2", "app: web, tier: fe", ""), "web");
    assert_eq!(c.spread_defaults().selector_for(&p2).to_string(), "tier=fe,app=web");
    assert_eq!(c.spread_defaults().selector_for(&pod("b", "tier: fe", "")).to_string(), "tier=fe");
    // A relist that no longer shows the ReplicaSet drops it.
    c.spread_defaults_mut().apply(SourceEvent::Relist(SelectorKind::ReplicaSet));
    c.spread_defaults_mut().apply(SourceEvent::RelistDone(SelectorKind::ReplicaSet));
    assert!(c.spread_defaults().selector_for(&p).is_empty());
    c.spread_defaults_mut().apply(SourceEvent::Delete(SelectorKind::Service, "default".into(), "s".into()));
    assert!(c.spread_defaults().selector_for(&pod("b", "tier: fe", "")).is_empty());
}

#[test]
fn list_defaults_can_filter() {
    let mut c = Cache::default();
    let args: SpreadArgs = serde_yaml::from_str(
        "defaultingType: List\ndefaultConstraints: [{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule}]\n",
    )
    .unwrap();
    c.spread_defaults_mut().configure(&args);
    for (n, z) in [("n1", "a"), ("n2", "b"), ("n3", "b")] {
        c.upsert_node(node(n, &[("zone", z)], ""));
    }
    let svc: Service =
        serde_yaml::from_str("metadata: {name: s, namespace: default}\nspec: {selector: {app: web}}\n")
            .unwrap();
    c.spread_defaults_mut().apply(SourceEvent::Apply(svc.source()));
    place(&mut c, pod("w", "app: web", ""), "n1");
    assert_eq!(fitting(&c, &pod("p", "app: web", "")), ["n2", "n3"]);
    // Its own constraints replace the defaults.
    let own = pod("p", "app: web", &constraints_spec(&[spread("zone", 5, "DoNotSchedule", "")]));
    assert_eq!(fitting(&c, &own).len(), 3);
    // List without constraints: no defaults at all.
    c.spread_defaults_mut()
        .configure(&SpreadArgs { defaulting_type: DefaultingType::List, ..Default::default() });
    assert!(!c.spread_defaults().needs_sources());
    assert_eq!(fitting(&c, &pod("p", "app: web", "")).len(), 3);
}

#[test]
fn args_defaulting_type() {
    assert!(serde_yaml::from_str::<SpreadArgs>("defaultingType: Sometimes\n").is_err());
    assert_eq!(SpreadArgs::default().defaulting_type, DefaultingType::System);
}

/// The shared counts of a constraint's selector follow pods placed, terminating and forgotten after they
/// were first computed.
#[test]
fn shared_counts_follow_the_cache() {
    let mut c = Cache::default();
    for (n, z) in [("n1", "a"), ("n2", "b")] {
        c.upsert_node(node(n, &[("zone", z)], ""));
    }
    let spec = constraints_spec(&[spread("zone", 1, "DoNotSchedule", "")]);
    let p = |name: &str| pod(name, "foo: bar", &spec);
    assert_eq!(fitting(&c, &p("probe")), ["n1", "n2"], "memo made with nothing placed");
    place(&mut c, p("w1"), "n1");
    assert_eq!(fitting(&c, &p("probe")), ["n2"]);
    place(&mut c, p("w2"), "n2");
    place(&mut c, p("w3"), "n2");
    assert_eq!(fitting(&c, &p("probe")), ["n1"]);
    let mut gone = p("w3");
    gone.metadata.as_mut().unwrap().deletion_timestamp = "2026-12-05T00:00:00Z".into();
    place(&mut c, gone, "n2");
    assert_eq!(fitting(&c, &p("probe")), ["n1", "n2"], "a terminating pod does not count");
    c.forget(&pod_key(&p("w1")));
    assert_eq!(fitting(&c, &p("probe")), ["n1"]);
    c.upsert_node(node("n3", &[("zone", "c")], ""));
    assert_eq!(fitting(&c, &p("probe")), ["n1", "n3"], "a new domain");
    c.upsert_node(node("n3", &[("zone", "b")], ""));
    assert_eq!(fitting(&c, &p("probe")), ["n1"], "relabelled into zone b");
}
