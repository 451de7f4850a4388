//! Volume binding on hand-built claims, volumes, classes and nodes: each pre-filter and per-node reason,
//! static binding and provisioning decisions, and the assume cache keeping two pods off one volume.

use navarch_api::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod, StorageClass};
use navarch_client::store::Writer;
use navarch_client::{Event, ObjectRef, store};

use navarch_api::storage::bind_volume_to_claim;

use super::bind::{VolumeWrites, select_node};
use super::*;

fn yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap_or_else(|e| panic!("{e}: {y}"))
}

fn node(name: &str, zone: &str) -> Node {
    yaml(&format!("metadata: {{name: {name}, labels: {{kubernetes.io/hostname: {name}, zone: {zone}}}}}\n"))
}

/// A claim in namespace `d` asking `size` of `class` (no class when empty), ReadWriteOnce unless `extra`
/// says otherwise.
fn claim(name: &str, class: &str, size: &str, extra: &str) -> PersistentVolumeClaim {
    let class = if class.is_empty() { String::new() } else { format!(", storageClassName: {class}") };
    yaml(&format!(
        "metadata: {{name: {name}, namespace: d, uid: uid-{name}, resourceVersion: '5'{extra}}}\nspec: \
         {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: {size}}}}}{class}}}\n"
    ))
}

/// An Available volume of `class`, reachable from `node` only when given.
fn volume(name: &str, class: &str, size: &str, node: &str) -> PersistentVolume {
    let affinity = if node.is_empty() {
        String::new()
    } else {
        format!(
            "  nodeAffinity: {{required: {{nodeSelectorTerms: [{{matchExpressions: [{{key: kubernetes.io/hostname, \
             operator: In, values: [{node}]}}]}}]}}}}\n"
        )
    };
    yaml(&format!(
        "metadata: {{name: {name}, resourceVersion: '7'}}\nspec:\n  capacity: {{storage: {size}}}\n  \
         accessModes: [ReadWriteOnce]\n  storageClassName: {class}\n  local: {{path: /mnt/{name}}}\n{affinity}\
         status: {{phase: Available}}\n"
    ))
}

fn class(name: &str, provisioner: &str, mode: &str, extra: &str) -> StorageClass {
    yaml(&format!(
        "metadata: {{name: {name}}}\nprovisioner: {provisioner}\nvolumeBindingMode: {mode}\n{extra}"
    ))
}

/// A pod in `d` with the given volumes (YAML flow list items).
fn pod(name: &str, volumes: &str) -> Pod {
    yaml(&format!(
        "metadata: {{name: {name}, namespace: d, uid: pod-{name}}}\nspec: {{containers: [{{name: c, image: x}}], \
         volumes: [{volumes}]}}\n"
    ))
}

fn uses(claim: &str) -> String {
    format!("{{name: v, persistentVolumeClaim: {{claimName: {claim}}}}}")
}

fn filled<K: navarch_api::Resource>(w: &mut Writer<K>, objects: Vec<K>) {
    w.apply(&Event::Init);
    for o in objects {
        w.apply(&Event::InitApply(o));
    }
    w.apply(&Event::InitDone);
}

/// A ready cache of these objects, and the writer of its volume store.
fn cache(
    claims: Vec<PersistentVolumeClaim>,
    volumes: Vec<PersistentVolume>,
    classes: Vec<StorageClass>,
) -> (VolumeCache, Writer<PersistentVolume>) {
    let (cs, mut cw) = store();
    let (vs, mut vw) = store();
    let (ss, mut sw) = store();
    filled(&mut cw, claims);
    filled(&mut vw, volumes);
    filled(&mut sw, classes);
    (VolumeCache::new(cs, vs, ss), vw)
}

/// The class of statically made local volumes.
fn local() -> StorageClass {
    class("local", navarch_api::storage::NO_PROVISIONER, "WaitForFirstConsumer", "")
}

fn prefilter(c: &VolumeCache, p: &Pod) -> Result<PodVolumes, String> {
    c.prefilter(p, |_| false)
}

fn names(v: &NodeVolumes) -> (Vec<String>, Vec<String>) {
    (
        v.bindings.iter().map(|(c, pv)| format!("{}={}", c.meta().name, pv.meta().name)).collect(),
        v.provisions.iter().map(|c| c.meta().name.clone()).collect(),
    )
}

#[test]
fn pods_without_claims_need_nothing() {
    assert!(!has_claims(&pod("p", "{name: e, emptyDir: {}}")));
    assert!(has_claims(&pod("p", &uses("data"))));
    let eph = pod("p", "{name: scratch, ephemeral: {volumeClaimTemplate: {spec: {}}}}");
    assert_eq!(pod_claims(&eph), vec![ClaimUse { name: "p-scratch".into(), ephemeral: true }]);
}

#[test]
fn missing_deleting_lost_and_foreign_claims_fit_nowhere() {
    let (c, _) = cache(vec![], vec![], vec![]);
    assert_eq!(
        prefilter(&c, &pod("p", &uses("data"))).unwrap_err(),
        r#"persistentvolumeclaim "data" not found"#
    );
    let eph = pod("p", "{name: scratch, ephemeral: {volumeClaimTemplate: {spec: {}}}}");
    assert_eq!(
        prefilter(&c, &eph).unwrap_err(),
        r#"waiting for ephemeral volume controller to create the persistentvolumeclaim "p-scratch""#
    );
    let deleting = claim("data", "local", "1Gi", ", deletionTimestamp: '2026-01-01T00:00:00Z'");
    let mut lost = claim("old", "local", "1Gi", "");
    lost.spec.as_mut().unwrap().volume_name = "gone".into();
    lost.status = Some(yaml("phase: Lost"));
    let foreign = claim("p-scratch", "local", "1Gi", "");
    let (c, _) = cache(vec![deleting, lost, foreign], vec![], vec![local()]);
    assert_eq!(
        prefilter(&c, &pod("p", &uses("data"))).unwrap_err(),
        r#"persistentvolumeclaim "data" is being deleted"#
    );
    assert_eq!(
        prefilter(&c, &pod("p", &uses("old"))).unwrap_err(),
        r#"persistentvolumeclaim "old" bound to non-existent persistentvolume "gone""#
    );
    assert_eq!(
        prefilter(&c, &eph).unwrap_err(),
        "PVC d/p-scratch was not created for pod d/p (pod is not owner)"
    );
}

#[test]
fn unbound_claims_of_immediate_missing_or_no_class_wait_for_the_pv_controller() {
    let immediate = class("fast", "example.com/disk", "Immediate", "");
    let mut prebound = claim("pre", "local", "1Gi", "");
    prebound.spec.as_mut().unwrap().volume_name = "pv-1".into();
    let (c, _) = cache(
        vec![
            claim("a", "fast", "1Gi", ""),
            claim("b", "", "1Gi", ""),
            claim("c", "missing", "1Gi", ""),
            prebound,
        ],
        vec![],
        vec![immediate, local()],
    );
    for name in ["a", "b", "c", "pre"] {
        assert_eq!(prefilter(&c, &pod("p", &uses(name))).unwrap_err(), REASON_UNBOUND_IMMEDIATE, "{name}");
    }
}

#[test]
fn bound_claims_follow_their_volume_node_affinity() {
    let mut bound = claim("data", "local", "1Gi", ", annotations: {pv.kubernetes.io/bind-completed: 'yes'}");
    bound.spec.as_mut().unwrap().volume_name = "pv-2".into();
    let mut dangling = bound.clone();
    dangling.metadata.as_mut().unwrap().name = "dangling".into();
    dangling.spec.as_mut().unwrap().volume_name = "nowhere".into();
    let (c, _) = cache(vec![bound, dangling], vec![volume("pv-2", "local", "1Gi", "node-2")], vec![]);
    let v = prefilter(&c, &pod("p", &uses("data"))).unwrap();
    assert_eq!(v.reasons(&node("node-1", "a")), vec![REASON_NODE_CONFLICT]);
    assert!(v.reasons(&node("node-2", "a")).is_empty());
    let v = prefilter(&c, &pod("p", &uses("dangling"))).unwrap();
    assert_eq!(v.reasons(&node("node-2", "a")), vec![REASON_PV_NOT_EXIST]);
}

#[test]
fn bound_volumes_labelled_with_zones_need_a_node_in_one() {
    let mut bound = claim("data", "local", "1Gi", ", annotations: {pv.kubernetes.io/bind-completed: 'yes'}");
    bound.spec.as_mut().unwrap().volume_name = "pv-z".into();
    let mut pv = volume("pv-z", "local", "1Gi", "");
    pv.metadata
        .as_mut()
        .unwrap()
        .labels
        .insert("failure-domain.beta.kubernetes.io/zone".into(), "a__b".into());
    let (c, _) = cache(vec![bound], vec![pv], vec![]);
    let v = prefilter(&c, &pod("p", &uses("data"))).unwrap();
    let zoned = |zone: &str| -> Node {
        yaml(&format!("metadata: {{name: n, labels: {{topology.kubernetes.io/zone: {zone}}}}}\n"))
    };
    assert!(v.reasons(&zoned("b")).is_empty(), "the GA label matches the beta one, b is in a__b");
    assert_eq!(v.reasons(&zoned("c")), vec![REASON_ZONE_CONFLICT]);
    assert!(v.reasons(&node("node-1", "c")).is_empty(), "a node without zone labels is not checked");
}

#[test]
fn wait_for_first_consumer_claims_bind_a_reachable_volume_or_are_provisioned() {
    let (c, _) = cache(
        vec![
            claim("data", "local", "1Gi", ""),
            claim("dyn", "lp", "1Gi", ""),
            claim("zoned", "zb", "1Gi", ""),
        ],
        vec![volume("pv-2", "local", "2Gi", "node-2"), volume("pv-small", "local", "500Mi", "node-1")],
        vec![
            local(),
            class("lp", "navarch.io/local-path", "WaitForFirstConsumer", ""),
            class(
                "zb",
                "navarch.io/local-path",
                "WaitForFirstConsumer",
                "allowedTopologies: [{matchLabelExpressions: [{key: zone, values: [b]}]}]\n",
            ),
        ],
    );
    // A static local volume: only its node; the class cannot provision elsewhere.
    let v = prefilter(&c, &pod("p", &uses("data"))).unwrap();
    let n1 = v.check_node(&node("node-1", "a"));
    assert_eq!(n1.reasons, vec![REASON_BIND_CONFLICT], "pv-small is too small, pv-2 elsewhere");
    let n2 = v.check_node(&node("node-2", "a"));
    assert_eq!(names(&n2), (vec!["data=pv-2".to_string()], vec![]));
    // A provisioner class: anywhere its topology allows.
    let v = prefilter(&c, &pod("p", &uses("dyn"))).unwrap();
    assert_eq!(names(&v.check_node(&node("node-1", "a"))), (vec![], vec!["dyn".to_string()]));
    let v = prefilter(&c, &pod("p", &uses("zoned"))).unwrap();
    assert_eq!(v.reasons(&node("node-1", "a")), vec![REASON_BIND_CONFLICT]);
    assert_eq!(names(&v.check_node(&node("node-3", "b"))), (vec![], vec!["zoned".to_string()]));
}

#[test]
fn a_selected_node_ties_the_claim_to_that_node() {
    let ann = ", annotations: {volume.kubernetes.io/selected-node: node-1}";
    let (c, _) = cache(
        vec![claim("dyn", "lp", "1Gi", ann)],
        vec![],
        vec![class("lp", "navarch.io/local-path", "WaitForFirstConsumer", "")],
    );
    let v = prefilter(&c, &pod("p", &uses("dyn"))).unwrap();
    assert!(v.volumes.is_empty(), "no volume list is taken when every claim is being provisioned");
    assert_eq!(v.reasons(&node("node-2", "a")), vec![REASON_BIND_CONFLICT]);
    let n1 = v.check_node(&node("node-1", "a"));
    assert_eq!(names(&n1), (vec![], vec!["dyn".to_string()]));
    assert!(VolumeWrites::plan(&n1, "node-1").is_empty(), "already annotated: nothing to write");
}

#[test]
fn two_claims_of_one_pod_never_take_the_same_volume() {
    let p = pod("p", &format!("{}, {{name: w, persistentVolumeClaim: {{claimName: big}}}}", uses("small")));
    let claims = vec![claim("big", "local", "2Gi", ""), claim("small", "local", "1Gi", "")];
    // One volume fits both: the smaller claim (matched first) takes it, the other finds none.
    let (c, _) = cache(claims.clone(), vec![volume("pv-a", "local", "3Gi", "node-1")], vec![local()]);
    let v = prefilter(&c, &p).unwrap();
    assert_eq!(v.delayed[0].claim.meta().name, "small", "smallest request first");
    assert_eq!(v.reasons(&node("node-1", "a")), vec![REASON_BIND_CONFLICT]);
    let (c, _) = cache(
        claims,
        vec![volume("pv-a", "local", "3Gi", "node-1"), volume("pv-b", "local", "1Gi", "node-1")],
        vec![local()],
    );
    let v = prefilter(&c, &p).unwrap();
    let n = v.check_node(&node("node-1", "a"));
    assert_eq!(names(&n), (vec!["small=pv-b".to_string(), "big=pv-a".to_string()], vec![]));
}

#[test]
fn two_pods_racing_for_one_volume() {
    let (mut c, mut pv_writer) = cache(
        vec![claim("a", "local", "1Gi", ""), claim("b", "local", "1Gi", "")],
        vec![volume("pv-1", "local", "1Gi", "node-1")],
        vec![local()],
    );
    let n1 = node("node-1", "a");
    let (pa, pb) = (pod("pa", &uses("a")), pod("pb", &uses("b")));
    // Pod a takes pv-1 and the decision is assumed before its write lands.
    let decision = prefilter(&c, &pa).unwrap().check_node(&n1);
    let writes = VolumeWrites::plan(&decision, "node-1");
    assert_eq!(writes.volumes.len(), 1);
    c.assume_volume(writes.volumes[0].clone());
    // Pod b, scheduled next, finds no volume.
    assert_eq!(prefilter(&c, &pb).unwrap().reasons(&n1), vec![REASON_BIND_CONFLICT]);
    // Pod a's write failed (a conflict): the assumption goes, pv-1 is free again.
    c.forget_volume("pv-1");
    assert!(prefilter(&c, &pb).unwrap().reasons(&n1).is_empty());
    // Assumed again; the watch then shows the written version: the store itself now says taken.
    c.assume_volume(writes.volumes[0].clone());
    let mut written = writes.volumes[0].clone();
    written.metadata.as_mut().unwrap().resource_version = "8".into();
    pv_writer.apply(&Event::Apply(written));
    c.prune();
    assert!(c.assumed_volumes.is_empty(), "the newer stored version replaces the assumption");
    assert_eq!(prefilter(&c, &pb).unwrap().reasons(&n1), vec![REASON_BIND_CONFLICT]);
    // Pod a still fits: the volume is bound to its claim.
    assert_eq!(names(&prefilter(&c, &pa).unwrap().check_node(&n1)).0, vec!["a=pv-1".to_string()]);
}

#[test]
fn read_write_once_pod_claims_admit_one_pod() {
    let rwop = yaml::<PersistentVolumeClaim>(
        "metadata: {name: solo, namespace: d}\nspec: {accessModes: [ReadWriteOncePod], storageClassName: lp}\n",
    );
    let (c, _) =
        cache(vec![rwop], vec![], vec![class("lp", "navarch.io/local-path", "WaitForFirstConsumer", "")]);
    let p = pod("p", &uses("solo"));
    let other = pod("other", &uses("solo"));
    let v = c.prefilter(&p, |name| pod_uses_claim(&other, "d", name)).unwrap();
    assert_eq!(v.reasons(&node("node-1", "a")), vec![REASON_RWOP_CONFLICT]);
    assert!(crate::filters::preemption_might_help(&[REASON_RWOP_CONFLICT.to_string()]));
    let v = c.prefilter(&p, |_| false).unwrap();
    assert!(v.reasons(&node("node-1", "a")).is_empty());
}

#[test]
fn prebind_writes_claim_refs_and_selected_nodes() {
    let pvc = claim("data", "local", "1Gi", "");
    let pv = volume("pv-1", "local", "1Gi", "");
    let bound = bind_volume_to_claim(&pv, &pvc).unwrap();
    let r = bound.spec.as_ref().unwrap().claim_ref.as_ref().unwrap();
    assert_eq!(
        (r.kind.as_str(), r.api_version.as_str(), r.namespace.as_str(), r.name.as_str(), r.uid.as_str()),
        ("PersistentVolumeClaim", "v1", "d", "data", "uid-data")
    );
    assert_eq!(bound.meta().annotations.get("pv.kubernetes.io/bound-by-controller").unwrap(), "yes");
    assert_eq!(bound.meta().resource_version, "7", "written at the version decided on");
    assert!(bind_volume_to_claim(&bound, &pvc).is_none(), "already bound: nothing to write");
    // Pre-bound by the user (claimRef without uid): completed, not marked as the controller's.
    let mut pre = pv.clone();
    pre.spec.as_mut().unwrap().claim_ref = Some(yaml("{name: data, namespace: d}"));
    let done = bind_volume_to_claim(&pre, &pvc).unwrap();
    assert_eq!(done.spec.as_ref().unwrap().claim_ref.as_ref().unwrap().uid, "uid-data");
    assert!(!done.meta().annotations.contains_key("pv.kubernetes.io/bound-by-controller"));
    let annotated = select_node(&pvc, "node-2").unwrap();
    assert_eq!(annotated.meta().annotations.get("volume.kubernetes.io/selected-node").unwrap(), "node-2");
    assert!(select_node(&annotated, "node-2").is_none());
}

#[test]
fn assumed_claims_show_until_the_store_moves_on() {
    let (mut c, _) = cache(vec![claim("dyn", "lp", "1Gi", "")], vec![], vec![]);
    c.assume_claim(select_node(&claim("dyn", "lp", "1Gi", ""), "node-1").unwrap());
    let seen = c.claim("d", "dyn").unwrap();
    assert!(seen.meta().annotations.contains_key("volume.kubernetes.io/selected-node"));
    c.forget_claim(&ObjectRef::new("d", "dyn"));
    assert!(
        !c.claim("d", "dyn").unwrap().meta().annotations.contains_key("volume.kubernetes.io/selected-node")
    );
}
