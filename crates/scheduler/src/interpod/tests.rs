//! Inter-pod affinity against hand-computed cases (Kubernetes' documented examples among them), and the
//! indexed state and score against a brute-force walk over every pod on a large synthetic cluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use navarch_api::v1::{
    Affinity, LabelSelector, Node, Pod, PodAffinity, PodAffinityTerm, PodAntiAffinity,
    WeightedPodAffinityTerm,
};
use navarch_api::{Object, manifest};

use super::*;
use crate::cache::Cache;
use crate::cycle::Cycle;

fn node(name: &str, labels: &str) -> Arc<Node> {
    let y = format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {{kubernetes.io/hostname: {name}, {labels}}}}}\n"
    );
    match manifest::parse(&y, "node").unwrap().remove(0) {
        Object::Node(n) => Arc::new(n),
        _ => unreachable!(),
    }
}

/// A pod `ns/name` with `labels` (YAML flow mapping body) and `spec` lines (indented two spaces).
fn pod(ns: &str, name: &str, labels: &str, spec: &str) -> Pod {
    let y = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{{labels}}}}}\nspec:\n  containers: [{{name: c, image: x}}]\n{spec}"
    );
    match manifest::parse(&y, "pod").unwrap().remove(0) {
        Object::Pod(p) => p,
        _ => unreachable!(),
    }
}

/// Three nodes in two zones: n1 and n2 in zone a, n3 in zone b; n4 without a zone.
fn cluster() -> Cache {
    let mut c = Cache::default();
    for (n, l) in [("n1", "zone: a"), ("n2", "zone: a"), ("n3", "zone: b"), ("n4", "other: x")] {
        c.upsert_node(node(n, l));
    }
    c
}

fn bind(c: &mut Cache, p: Pod, node: &str) {
    let key = crate::node_info::pod_key(&p);
    c.bound(key, node, Arc::new(p), false);
}

/// The filter's verdict on every node of the cache, in name order.
fn verdicts(c: &Cache, p: &Pod) -> Vec<(String, Option<&'static str>)> {
    let cycle = Cycle::new(p, c, None);
    let mut v: Vec<_> = c.nodes().iter().map(|(n, info)| (n.to_string(), filter(&cycle, info))).collect();
    v.sort();
    v
}

fn fits(c: &Cache, p: &Pod) -> Vec<String> {
    verdicts(c, p).into_iter().filter(|(_, r)| r.is_none()).map(|(n, _)| n).collect()
}

const ZONE_ANTI: &str = "  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {matchLabels: {app: web}}\n        topologyKey: zone\n";

#[test]
fn zone_anti_affinity_keeps_one_replica_per_zone() {
    let mut c = cluster();
    let web = |name: &str| pod("default", name, "app: web", ZONE_ANTI);
    assert_eq!(fits(&c, &web("w1")), ["n1", "n2", "n3", "n4"], "nothing placed yet");
    bind(&mut c, web("w1"), "n1");
    let v = verdicts(&c, &web("w2"));
    assert_eq!(v[0], ("n1".into(), Some(REASON_ANTI_AFFINITY)));
    assert_eq!(v[1], ("n2".into(), Some(REASON_ANTI_AFFINITY)), "same zone as w1");
    assert_eq!(v[2], ("n3".into(), None));
    assert_eq!(v[3], ("n4".into(), None), "a node without the key is in no zone");
    bind(&mut c, web("w2"), "n3");
    assert_eq!(fits(&c, &web("w3")), ["n4"]);
    // Symmetry: a pod without terms that the replicas' term selects is kept out of their zones.
    let v = verdicts(&c, &pod("default", "plain", "app: web", ""));
    assert_eq!(v[1], ("n2".into(), Some(REASON_EXISTING_ANTI_AFFINITY)));
    assert_eq!(fits(&c, &pod("default", "plain", "app: web", "")), ["n4"]);
    assert_eq!(fits(&c, &pod("default", "db", "app: db", "")).len(), 4, "not selected by the term");
    assert_eq!(fits(&c, &pod("other", "w", "app: web", "")).len(), 4, "another namespace");
    c.delete("default/w1");
    assert_eq!(fits(&c, &web("w3")), ["n1", "n2", "n4"]);
}

#[test]
fn client_is_co_located_with_its_server() {
    let mut c = cluster();
    let client = pod(
        "default",
        "client",
        "app: client",
        "  affinity:\n    podAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {matchExpressions: [{key: app, operator: In, values: [store]}]}\n        topologyKey: kubernetes.io/hostname\n",
    );
    let v = verdicts(&c, &client);
    assert!(v.iter().all(|(_, r)| *r == Some(REASON_AFFINITY)), "no server yet, and not self-affine: {v:?}");
    bind(&mut c, pod("default", "store", "app: store", ""), "n2");
    let v = verdicts(&c, &client);
    assert_eq!(v[0].1, Some(REASON_AFFINITY));
    assert_eq!(v[1].1, None);
    assert_eq!(fits(&c, &client), ["n2"]);
    // On zones: every node of the server's zone; a node without the key never.
    let zonal = pod(
        "default",
        "client",
        "app: client",
        "  affinity:\n    podAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {matchLabels: {app: store}}\n        topologyKey: zone\n",
    );
    assert_eq!(fits(&c, &zonal), ["n1", "n2"]);
}

#[test]
fn first_pod_of_a_self_affine_group() {
    let mut c = cluster();
    let spec = "  affinity:\n    podAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {matchLabels: {app: cache}}\n        topologyKey: zone\n";
    let member = |name: &str| pod("default", name, "app: cache", spec);
    // No pod matches anywhere and the pod matches its own term: any node with the key.
    assert_eq!(fits(&c, &member("c1")), ["n1", "n2", "n3"]);
    // A pod that does not match its own term has nothing to follow.
    assert!(fits(&c, &pod("default", "x", "app: other", spec)).is_empty());
    bind(&mut c, member("c1"), "n3");
    assert_eq!(fits(&c, &member("c2")), ["n3"], "the group's zone now");
}

#[test]
fn namespaces_and_namespace_selector() {
    let mut c = cluster();
    c.upsert_namespace("team-a", [("team".to_string(), "a".to_string())].into());
    c.upsert_namespace("team-b", [("team".to_string(), "b".to_string())].into());
    c.upsert_namespace("default", Labels::new());
    bind(&mut c, pod("team-a", "s", "app: s", ""), "n1");
    bind(&mut c, pod("team-b", "s", "app: s", ""), "n3");
    bind(&mut c, pod("listed", "s", "app: s", ""), "n4");
    let anti = |ns_part: &str| {
        pod(
            "default",
            "p",
            "app: p",
            &format!(
                "  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {{matchLabels: {{app: s}}}}\n        topologyKey: kubernetes.io/hostname\n{ns_part}"
            ),
        )
    };
    assert_eq!(fits(&c, &anti("")).len(), 4, "own namespace only: no app=s pod in default");
    assert_eq!(fits(&c, &anti("        namespaceSelector: {matchLabels: {team: a}}\n")), ["n2", "n3", "n4"]);
    assert_eq!(
        fits(
            &c,
            &anti("        namespaceSelector: {matchLabels: {team: a}}\n        namespaces: [listed]\n")
        ),
        ["n2", "n3"],
        "namespaces and namespaceSelector add up"
    );
    assert_eq!(
        fits(&c, &anti("        namespaceSelector: {}\n")),
        ["n2"],
        "an empty selector: all namespaces"
    );
    assert_eq!(fits(&c, &anti("        namespaces: [team-b]\n")), ["n1", "n2", "n4"]);

    // An existing pod's term with a namespace selector is matched against the incoming pod's namespace.
    let mut c = cluster();
    c.upsert_namespace("team-a", [("team".to_string(), "a".to_string())].into());
    c.upsert_namespace("team-b", [("team".to_string(), "b".to_string())].into());
    bind(
        &mut c,
        pod(
            "kube-system",
            "guard",
            "app: guard",
            "  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {matchLabels: {app: web}}\n        namespaceSelector: {matchLabels: {team: a}}\n        topologyKey: zone\n",
        ),
        "n3",
    );
    assert_eq!(fits(&c, &pod("team-a", "w", "app: web", "")), ["n1", "n2", "n4"]);
    assert_eq!(fits(&c, &pod("team-b", "w", "app: web", "")).len(), 4);
    // Relabelling the namespace changes the answer.
    c.upsert_namespace("team-b", [("team".to_string(), "a".to_string())].into());
    assert_eq!(fits(&c, &pod("team-b", "w", "app: web", "")), ["n1", "n2", "n4"]);
}

#[test]
fn match_label_keys_and_mismatch_label_keys() {
    let mut c = cluster();
    let spec = "  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {matchLabels: {app: web}}\n        matchLabelKeys: [pod-template-hash]\n        topologyKey: kubernetes.io/hostname\n";
    bind(&mut c, pod("default", "old", "app: web, pod-template-hash: v1", spec), "n1");
    // A new revision's pod does not avoid the old revision's pods, nor do they avoid it.
    assert_eq!(fits(&c, &pod("default", "new", "app: web, pod-template-hash: v2", spec)).len(), 4);
    assert_eq!(
        fits(&c, &pod("default", "same", "app: web, pod-template-hash: v1", spec)),
        ["n2", "n3", "n4"]
    );
    // mismatchLabelKeys: keep away from other tenants' pods, not from one's own.
    let mut c = cluster();
    let spec = "  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {matchExpressions: [{key: tenant, operator: Exists}]}\n        mismatchLabelKeys: [tenant]\n        topologyKey: zone\n";
    bind(&mut c, pod("default", "a1", "tenant: a", ""), "n1");
    bind(&mut c, pod("default", "b1", "tenant: b", ""), "n3");
    assert_eq!(fits(&c, &pod("default", "a2", "tenant: a", spec)), ["n1", "n2", "n4"]);
    // A key the pod lacks adds nothing.
    assert_eq!(fits(&c, &pod("default", "x", "other: y", spec)), ["n4"]);
}

#[test]
fn a_term_without_label_selector_selects_nothing() {
    let mut c = cluster();
    bind(&mut c, pod("default", "s", "app: s", ""), "n1");
    let spec = "  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - topologyKey: zone\n";
    assert_eq!(fits(&c, &pod("default", "p", "app: s", spec)).len(), 4);
    let spec = "  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {}\n        topologyKey: zone\n";
    assert_eq!(fits(&c, &pod("default", "p", "app: s", spec)), ["n3", "n4"], "an empty selector selects all");
}

#[test]
fn affinity_is_reported_before_anti_affinity() {
    let mut c = cluster();
    bind(&mut c, pod("default", "web", "app: web", ZONE_ANTI), "n1");
    let p = pod(
        "default",
        "p",
        "app: web",
        "  affinity:\n    podAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {matchLabels: {app: db}}\n        topologyKey: zone\n",
    );
    assert_eq!(verdicts(&c, &p)[0].1, Some(REASON_AFFINITY));
    assert!(crate::filters::preemption_might_help(&[REASON_EXISTING_ANTI_AFFINITY.to_string()]));
    assert!(!crate::filters::preemption_might_help(&[REASON_AFFINITY.to_string()]));
}

#[test]
fn removing_and_adding_pods_in_a_cloned_state() {
    let mut c = cluster();
    let victim = pod("default", "w1", "app: web", ZONE_ANTI);
    bind(&mut c, victim.clone(), "n1");
    let incoming = pod("default", "w2", "app: web", "");
    let cycle = Cycle::new(&incoming, &c, None);
    let n1 = c.node("n1").unwrap();
    assert_eq!(filter(&cycle, n1), Some(REASON_EXISTING_ANTI_AFFINITY));
    let mut state = cycle.interpod.clone();
    state.remove_pod(&victim, n1);
    assert_eq!(check(&state, n1), None, "without the victim the node fits");
    assert_eq!(filter(&cycle, n1), Some(REASON_EXISTING_ANTI_AFFINITY), "the cycle's own state is untouched");
    let n3 = c.node("n3").unwrap();
    state.add_pod(&victim, n3);
    assert_eq!(check(&state, n3), Some(REASON_EXISTING_ANTI_AFFINITY));
    // The incoming pod's own terms too.
    let picky = pod("default", "w3", "app: web", ZONE_ANTI);
    let mut cycle = Cycle::new(&picky, &c, None);
    assert_eq!(filter(&cycle, n1), Some(REASON_ANTI_AFFINITY));
    cycle.remove_pod(&victim, n1);
    assert_eq!(filter(&cycle, n1), None);
}

#[test]
fn node_relabel_moves_existing_terms() {
    let mut c = cluster();
    bind(&mut c, pod("default", "w1", "app: web", ZONE_ANTI), "n1");
    assert_eq!(fits(&c, &pod("default", "x", "app: web", "")), ["n3", "n4"]);
    c.upsert_node(node("n1", "zone: b"));
    assert_eq!(fits(&c, &pod("default", "x", "app: web", "")), ["n2", "n4"]);
    c.delete("default/w1");
    assert_eq!(c.terms().groups(Kind::RequiredAntiAffinity).count(), 0, "empty groups are dropped");
}

#[test]
fn scores_hand_computed() {
    // n1, n2 in zone a; n3 in zone b; n4 in zone c.
    let mut c = Cache::default();
    for (n, z) in [("n1", "a"), ("n2", "a"), ("n3", "b"), ("n4", "c")] {
        c.upsert_node(node(n, &format!("zone: {z}")));
    }
    bind(&mut c, pod("default", "s1", "app: store", ""), "n1");
    bind(&mut c, pod("default", "s2", "app: store", ""), "n3");
    let p = pod(
        "default",
        "p",
        "app: web",
        "  affinity:\n    podAffinity:\n      preferredDuringSchedulingIgnoredDuringExecution:\n      - weight: 80\n        podAffinityTerm: {labelSelector: {matchLabels: {app: store}}, topologyKey: zone}\n    podAntiAffinity:\n      preferredDuringSchedulingIgnoredDuringExecution:\n      - weight: 20\n        podAffinityTerm: {labelSelector: {matchLabels: {app: store}}, topologyKey: kubernetes.io/hostname}\n",
    );
    let nodes: Vec<&NodeInfo> = c.nodes().values().collect();
    // Raw: zone a +80, zone b +80, n1 −20, n3 −20 → n1 60, n2 80, n3 60, n4 0; (raw − 0) × 100 / 80.
    assert_eq!(score(&Cycle::new(&p, &c, None), &nodes, &InterPodAffinityArgs::default()), [75, 100, 75, 0]);

    // Existing pods' terms selecting the incoming pod: e1's required affinity (weight 1) on n4's host,
    // e2's preferred anti-affinity (10) on zone a, e3's preferred affinity (5) on zone b.
    let mut c = Cache::default();
    for (n, z) in [("n1", "a"), ("n2", "a"), ("n3", "b"), ("n4", "c")] {
        c.upsert_node(node(n, &format!("zone: {z}")));
    }
    let req = "  affinity:\n    podAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {matchLabels: {app: web}}\n        topologyKey: kubernetes.io/hostname\n";
    bind(&mut c, pod("default", "e1", "app: e", req), "n4");
    let pref = |kind: &str, w: i32| {
        format!(
            "  affinity:\n    {kind}:\n      preferredDuringSchedulingIgnoredDuringExecution:\n      - weight: {w}\n        podAffinityTerm: {{labelSelector: {{matchLabels: {{app: web}}}}, topologyKey: zone}}\n"
        )
    };
    bind(&mut c, pod("default", "e2", "app: e", &pref("podAntiAffinity", 10)), "n2");
    bind(&mut c, pod("default", "e3", "app: e", &pref("podAffinity", 5)), "n3");
    let p = pod("default", "p", "app: web", "");
    let nodes: Vec<&NodeInfo> = c.nodes().values().collect();
    // Raw n1 −10, n2 −10, n3 +5, n4 +1 → (raw + 10) × 100 / 15, truncated.
    assert_eq!(score(&Cycle::new(&p, &c, None), &nodes, &InterPodAffinityArgs::default()), [0, 0, 100, 73]);
    // Normalized over the nodes scored only.
    assert_eq!(score(&Cycle::new(&p, &c, None), &nodes[2..], &InterPodAffinityArgs::default()), [100, 0]);
    // A pod nothing selects, without terms: all 0.
    assert_eq!(
        score(
            &Cycle::new(&pod("default", "q", "app: q", ""), &c, None),
            &nodes,
            &InterPodAffinityArgs::default()
        ),
        [0, 0, 0, 0]
    );
}

// ---- The indexed state against a brute-force walk over every pod, on a large synthetic cluster. ----

/// A small deterministic generator.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

fn synthetic_term(r: &mut Lcg) -> PodAffinityTerm {
    let app = format!("app{}", r.next(6));
    let key = ["kubernetes.io/hostname", "zone", "rack"][r.next(3)];
    let mut t = PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_labels: BTreeMap::from([("app".to_string(), app)]),
            ..Default::default()
        }),
        topology_key: key.into(),
        ..Default::default()
    };
    match r.next(6) {
        0 => t.namespaces = vec!["ns0".into(), "ns2".into()],
        1 => {
            t.namespace_selector = Some(LabelSelector {
                match_labels: BTreeMap::from([("tier".to_string(), "x".to_string())]),
                ..Default::default()
            })
        }
        2 => t.match_label_keys = vec!["ver".into()],
        3 => t.mismatch_label_keys = vec!["ver".into()],
        _ => {}
    }
    t
}

fn synthetic_pod(r: &mut Lcg, i: usize) -> Pod {
    let mut p = Pod::default();
    let m = p.metadata.get_or_insert_with(Default::default);
    m.name = format!("p{i}");
    m.namespace = format!("ns{}", r.next(3));
    m.labels = BTreeMap::from([
        ("app".to_string(), format!("app{}", r.next(6))),
        ("ver".to_string(), format!("v{}", r.next(2))),
    ]);
    let mut a = Affinity::default();
    let required = |r: &mut Lcg, n: usize| (0..n).map(|_| synthetic_term(r)).collect::<Vec<_>>();
    let preferred = |r: &mut Lcg, n: usize| {
        (0..n)
            .map(|_| WeightedPodAffinityTerm {
                weight: 1 + r.next(100) as i32,
                pod_affinity_term: Some(synthetic_term(r)),
            })
            .collect::<Vec<_>>()
    };
    match r.next(5) {
        0 => {}
        1 => {
            a.pod_anti_affinity = Some(PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: required(r, 1),
                ..Default::default()
            })
        }
        2 => {
            let n = 1 + r.next(2);
            a.pod_affinity = Some(PodAffinity {
                required_during_scheduling_ignored_during_execution: required(r, n),
                preferred_during_scheduling_ignored_during_execution: preferred(r, 1),
            })
        }
        3 => {
            a.pod_anti_affinity = Some(PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: required(r, 1),
                preferred_during_scheduling_ignored_during_execution: preferred(r, 2),
            })
        }
        _ => {
            a.pod_affinity = Some(PodAffinity {
                preferred_during_scheduling_ignored_during_execution: preferred(r, 1),
                ..Default::default()
            })
        }
    }
    p.spec.get_or_insert_with(Default::default).affinity = Some(a);
    p
}

/// A placed pod as the brute-force reference sees it: its namespace's labels, its node's labels, and its
/// terms of each kind.
struct Placed<'a> {
    pod: &'a Pod,
    ns_labels: Labels,
    node: &'a Labels,
    terms: [Vec<Weighted>; 4],
}

fn placed(c: &Cache) -> Vec<Placed<'_>> {
    c.index()
        .all()
        .map(|(q, n)| Placed {
            pod: q,
            ns_labels: c
                .namespace_labels(&q.metadata.as_ref().unwrap().namespace)
                .cloned()
                .unwrap_or_default(),
            node: node_labels(c.node(n).unwrap()),
            terms: Kind::ALL.map(|k| terms(q, k)),
        })
        .collect()
}

/// Kubernetes' filter, straight from its definition: every check walks every placed pod (which terms
/// select which pods is worked out once per incoming pod; the topology per node).
fn brute_filter(c: &Cache, all: &[Placed], p: &Pod) -> impl Fn(&NodeInfo) -> Option<&'static str> {
    let pns = p.metadata.as_ref().unwrap().namespace.clone();
    let pnsl = c.namespace_labels(&pns).cloned().unwrap_or_default();
    let plabels = p.metadata.as_ref().unwrap().labels.clone();
    let own = |kind| terms(p, kind).into_iter().map(|w| w.term).collect::<Vec<_>>();
    let (aff, anti) = (own(Kind::RequiredAffinity), own(Kind::RequiredAntiAffinity));
    // The placed pods matching all the affinity terms; (pod, term) pairs of anti-affinity; and the
    // placed pods' anti-affinity terms selecting the incoming pod.
    let matching_all: Vec<&Labels> = all
        .iter()
        .filter(|q| !aff.is_empty() && aff.iter().all(|t| t.matches_pod(q.pod, &q.ns_labels)))
        .map(|q| q.node)
        .collect();
    let anti_hits: Vec<(String, &Labels)> = anti
        .iter()
        .flat_map(|t| {
            all.iter()
                .filter(|q| t.matches_pod(q.pod, &q.ns_labels))
                .map(|q| (t.topology_key.clone(), q.node))
        })
        .collect();
    let existing_hits: Vec<(String, &Labels)> = all
        .iter()
        .flat_map(|q| {
            q.terms[Kind::RequiredAntiAffinity as usize]
                .iter()
                .filter(|w| w.term.matches(&pns, &pnsl, &plabels))
                .map(|w| (w.term.topology_key.clone(), q.node))
        })
        .collect();
    let self_match = aff.iter().all(|t| t.matches(&pns, &pnsl, &plabels));
    move |node| {
        let nl = node_labels(node);
        let same = |key: &str, ql: &Labels| nl.get(key).is_some_and(|v| ql.get(key) == Some(v));
        if !aff.is_empty() {
            let has_keys = aff.iter().all(|t| nl.contains_key(&t.topology_key));
            let ok = has_keys && aff.iter().all(|t| matching_all.iter().any(|ql| same(&t.topology_key, ql)));
            let anywhere = matching_all.iter().any(|ql| aff.iter().any(|t| ql.contains_key(&t.topology_key)));
            let first_of_group = has_keys && !anywhere && self_match;
            if !ok && !first_of_group {
                return Some(REASON_AFFINITY);
            }
        }
        if anti_hits.iter().any(|(k, ql)| same(k, ql)) {
            return Some(REASON_ANTI_AFFINITY);
        }
        existing_hits.iter().any(|(k, ql)| same(k, ql)).then_some(REASON_EXISTING_ANTI_AFFINITY)
    }
}

/// Kubernetes' raw score, straight from its definition: (topology key, node labels of a pod, points) for
/// every term and pod that score, summed per node over those in its domain.
fn brute_raw_score(c: &Cache, all: &[Placed], p: &Pod) -> impl Fn(&NodeInfo) -> i64 {
    let pns = p.metadata.as_ref().unwrap().namespace.clone();
    let pnsl = c.namespace_labels(&pns).cloned().unwrap_or_default();
    let plabels = p.metadata.as_ref().unwrap().labels.clone();
    let mut hits: Vec<(String, &Labels, i64)> = Vec::new();
    for (kind, sign) in [(Kind::PreferredAffinity, 1), (Kind::PreferredAntiAffinity, -1)] {
        for w in terms(p, kind) {
            for q in all.iter().filter(|q| w.term.matches_pod(q.pod, &q.ns_labels)) {
                hits.push((w.term.topology_key.clone(), q.node, sign * w.weight));
            }
        }
        for q in all {
            for w in q.terms[kind as usize].iter().filter(|w| w.term.matches(&pns, &pnsl, &plabels)) {
                hits.push((w.term.topology_key.clone(), q.node, sign * w.weight));
            }
        }
    }
    for q in all {
        for w in &q.terms[Kind::RequiredAffinity as usize] {
            if w.term.matches(&pns, &pnsl, &plabels) {
                hits.push((w.term.topology_key.clone(), q.node, HARD_POD_AFFINITY_WEIGHT));
            }
        }
    }
    move |node| {
        let nl = node_labels(node);
        hits.iter().filter(|(k, ql, _)| nl.get(k).is_some_and(|v| ql.get(k) == Some(v))).map(|h| h.2).sum()
    }
}

#[test]
fn indexed_matches_brute_force_on_a_large_cluster() {
    let mut r = Lcg(23);
    let mut c = Cache::default();
    for i in 0..500 {
        // 10 zones, 50 racks; every 50th node has no zone.
        let zone = if i % 50 == 49 { String::new() } else { format!(", zone: z{}", i % 10) };
        c.upsert_node(node(&format!("n{i:03}"), &format!("rack: r{}{zone}", i % 50)));
    }
    c.upsert_namespace("ns0", [("tier".to_string(), "x".to_string())].into());
    c.upsert_namespace("ns1", [("tier".to_string(), "y".to_string())].into());
    c.upsert_namespace("ns2", [("tier".to_string(), "x".to_string())].into());
    for i in 0..1000 {
        let p = synthetic_pod(&mut r, i);
        bind(&mut c, p, &format!("n{:03}", r.next(500)));
    }
    // Churn: some pods leave, some move, one node is relabelled.
    for i in (0..1000).step_by(7) {
        c.delete(&format!("ns0/p{i}"));
        c.delete(&format!("ns1/p{i}"));
        c.delete(&format!("ns2/p{i}"));
    }
    c.upsert_node(node("n007", "rack: r99, zone: z3"));
    let nodes: Vec<&NodeInfo> = c.nodes().values().collect();
    let all = placed(&c);
    let (mut rejected, mut scored) = (0, 0);
    for i in 0..30 {
        let p = synthetic_pod(&mut r, 5000 + i);
        let cycle = Cycle::new(&p, &c, None);
        let want = brute_filter(&c, &all, &p);
        for n in &nodes {
            let got = filter(&cycle, n);
            assert_eq!(got, want(n), "pod {i} on {}", n.name());
            rejected += got.is_some() as usize;
        }
        let raw_score = brute_raw_score(&c, &all, &p);
        let raw: Vec<i64> = nodes.iter().map(|n| raw_score(n)).collect();
        let want = normalize(&raw);
        assert_eq!(score(&cycle, &nodes, &InterPodAffinityArgs::default()), want, "pod {i}");
        scored += want.iter().any(|&s| s != 0) as usize;
    }
    assert!(rejected > 1000 && rejected < 30 * 500 - 1000, "both verdicts exercised: {rejected}");
    assert!(scored > 10, "scores exercised: {scored}");
}

/// The shared counts of an incoming term follow pods placed, forgotten, on removed nodes and relabelled
/// nodes after they were first computed.
#[test]
fn shared_term_counts_follow_the_cache() {
    let mut c = cluster();
    let web = |name: &str| pod("default", name, "app: web", ZONE_ANTI);
    assert_eq!(fits(&c, &web("probe")).len(), 4, "memo made with nothing placed");
    bind(&mut c, web("w1"), "n3");
    assert_eq!(fits(&c, &web("probe")), ["n1", "n2", "n4"]);
    c.delete("default/w1");
    assert_eq!(fits(&c, &web("probe")).len(), 4, "forgotten");
    bind(&mut c, web("w2"), "n1");
    assert_eq!(fits(&c, &web("probe")), ["n3", "n4"]);
    c.upsert_node(node("n1", "zone: b"));
    assert_eq!(fits(&c, &web("probe")), ["n2", "n4"], "n1 relabelled into zone b");
    c.remove_node("n1");
    assert_eq!(fits(&c, &web("probe")), ["n2", "n3", "n4"], "its node gone");
}
