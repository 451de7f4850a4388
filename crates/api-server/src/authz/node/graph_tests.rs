//! The graph: references of every shape, incremental updates, relists.

use std::sync::Arc;

use navarch_api::Object;
use navarch_api::v1::Pod;

use super::graph::{NodeGraph, ObjectType};
use super::references::PodReferences;
use crate::local_store::StoreChange;

/// A pod from YAML (the manifest format).
pub(super) fn pod(yaml: &str) -> Arc<Object> {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("test YAML");
    Arc::new(Object::from_value("Pod", value).expect("test pod"))
}

fn typed(o: &Object) -> &Pod {
    match o {
        Object::Pod(p) => p,
        _ => unreachable!("test pods only"),
    }
}

/// A pod using everything there is to use.
pub(super) const EVERYTHING: &str = r#"
metadata: {name: web, namespace: default, uid: u1}
spec:
  nodeName: node-1
  serviceAccountName: builder
  imagePullSecrets: [{name: pull}]
  initContainers:
  - name: init
    image: busybox
    envFrom: [{secretRef: {name: init-env-secret}}]
  containers:
  - name: app
    image: nginx
    env:
    - {name: A, valueFrom: {secretKeyRef: {name: env-secret, key: k}}}
    - {name: B, valueFrom: {configMapKeyRef: {name: env-cm, key: k}}}
    - {name: C, value: plain}
    envFrom: [{configMapRef: {name: envfrom-cm}}]
  ephemeralContainers:
  - name: debug
    image: busybox
    env: [{name: D, valueFrom: {secretKeyRef: {name: debug-secret, key: k}}}]
  volumes:
  - {name: s, secret: {secretName: vol-secret}}
  - {name: c, configMap: {name: vol-cm}}
  - name: p
    projected:
      sources:
      - {secret: {name: proj-secret}}
      - {configMap: {name: proj-cm}}
      - {serviceAccountToken: {path: token}}
  - {name: data, persistentVolumeClaim: {claimName: data-claim}}
  - {name: scratch, ephemeral: {volumeClaimTemplate: {spec: {}}}}
  - {name: csi, csi: {driver: d, nodePublishSecretRef: {name: csi-secret}}}
  - {name: rbd, rbd: {monitors: [m], image: i, secretRef: {name: rbd-secret}}}
  - {name: az, azureFile: {secretName: az-secret, shareName: s}}
"#;

#[test]
fn references_of_every_shape() {
    let o = pod(EVERYTHING);
    let refs = PodReferences::of(typed(&o));
    assert_eq!(refs.service_account.as_deref(), Some("builder"));
    let secrets: Vec<_> = refs.secrets.iter().map(String::as_str).collect();
    assert_eq!(
        secrets,
        [
            "az-secret",
            "csi-secret",
            "debug-secret",
            "env-secret",
            "init-env-secret",
            "proj-secret",
            "pull",
            "rbd-secret",
            "vol-secret"
        ]
    );
    let cms: Vec<_> = refs.config_maps.iter().map(String::as_str).collect();
    assert_eq!(cms, ["env-cm", "envfrom-cm", "proj-cm", "vol-cm"]);
    let claims: Vec<_> = refs.claims.iter().map(String::as_str).collect();
    assert_eq!(claims, ["data-claim", "web-scratch"], "generic ephemeral volumes: <pod>-<volume>");
}

#[test]
fn deprecated_service_account_field_and_empty_names() {
    let o = pod(
        "metadata: {name: p, namespace: ns}\nspec:\n  serviceAccount: old\n  imagePullSecrets: [{name: ''}]\n  containers: [{name: c, image: i}]",
    );
    let refs = PodReferences::of(typed(&o));
    assert_eq!(refs.service_account.as_deref(), Some("old"));
    assert!(refs.secrets.is_empty(), "empty names are no references");
    let empty = pod("metadata: {name: p, namespace: ns}");
    assert_eq!(PodReferences::of(typed(&empty)), PodReferences::default());
}

#[test]
fn bound_pod_gives_its_node_what_it_references() {
    let g = NodeGraph::new();
    g.apply(StoreChange::Upsert(&pod(EVERYTHING)));
    let yes = |ty, name| g.has_path("node-1", ty, "default", name);
    assert!(yes(ObjectType::Pod, "web"));
    assert!(yes(ObjectType::ServiceAccount, "builder"));
    for s in
        ["vol-secret", "env-secret", "proj-secret", "pull", "debug-secret", "init-env-secret", "csi-secret"]
    {
        assert!(yes(ObjectType::Secret, s), "{s}");
    }
    for c in ["vol-cm", "env-cm", "envfrom-cm", "proj-cm"] {
        assert!(yes(ObjectType::ConfigMap, c), "{c}");
    }
    assert!(yes(ObjectType::PersistentVolumeClaim, "data-claim"));
    assert!(yes(ObjectType::PersistentVolumeClaim, "web-scratch"));
    // Not to another node, not in another namespace, not under another type, not unreferenced.
    assert!(!g.has_path("node-2", ObjectType::Secret, "default", "vol-secret"));
    assert!(!g.has_path("node-1", ObjectType::Secret, "other", "vol-secret"));
    assert!(!yes(ObjectType::ConfigMap, "vol-secret"));
    assert!(!yes(ObjectType::Secret, "unrelated"));
    assert_eq!((g.pod_count(), g.node_count()), (1, 1));
}

#[test]
fn unbound_pods_give_nothing_until_bound() {
    let g = NodeGraph::new();
    let unbound = pod(
        "metadata: {name: web, namespace: default, uid: u1}\nspec:\n  volumes: [{name: s, secret: {secretName: s1}}]",
    );
    g.apply(StoreChange::Upsert(&unbound));
    assert!(!g.has_path("node-1", ObjectType::Secret, "default", "s1"));
    assert_eq!(g.pod_count(), 0);
    let bound = pod(
        "metadata: {name: web, namespace: default, uid: u1}\nspec:\n  nodeName: node-1\n  volumes: [{name: s, secret: {secretName: s1}}]",
    );
    g.apply(StoreChange::Upsert(&bound));
    assert!(g.has_path("node-1", ObjectType::Secret, "default", "s1"));
}

#[test]
fn delete_and_move_remove_edges() {
    let g = NodeGraph::new();
    let p = pod(EVERYTHING);
    g.apply(StoreChange::Upsert(&p));
    g.apply(StoreChange::Delete(&p));
    assert!(!g.has_path("node-1", ObjectType::Secret, "default", "vol-secret"));
    assert!(!g.has_path("node-1", ObjectType::Pod, "default", "web"));
    assert_eq!((g.pod_count(), g.node_count()), (0, 0));

    // Recreated under the same name on another node (a new uid).
    g.apply(StoreChange::Upsert(&p));
    let moved =
        pod(&EVERYTHING.replace("uid: u1", "uid: u2").replace("nodeName: node-1", "nodeName: node-2"));
    g.apply(StoreChange::Upsert(&moved));
    assert!(!g.has_path("node-1", ObjectType::Secret, "default", "vol-secret"));
    assert!(g.has_path("node-2", ObjectType::Secret, "default", "vol-secret"));
    assert!(g.has_path("node-2", ObjectType::Pod, "default", "web"));
    assert_eq!((g.pod_count(), g.node_count()), (1, 1));

    // Recreated unbound: nothing left.
    let unbound =
        pod("metadata: {name: web, namespace: default, uid: u3}\nspec: {containers: [{name: c, image: i}]}");
    g.apply(StoreChange::Upsert(&unbound));
    assert!(!g.has_path("node-2", ObjectType::Pod, "default", "web"));
    assert_eq!(g.pod_count(), 0);
}

#[test]
fn shared_objects_stay_while_any_pod_uses_them() {
    let g = NodeGraph::new();
    let a = pod(
        "metadata: {name: a, namespace: ns, uid: a}\nspec: {nodeName: n1, volumes: [{name: s, secret: {secretName: shared}}]}",
    );
    let b = pod(
        "metadata: {name: b, namespace: ns, uid: b}\nspec: {nodeName: n1, volumes: [{name: s, secret: {secretName: shared}}]}",
    );
    let c = pod(
        "metadata: {name: c, namespace: ns, uid: c}\nspec: {nodeName: n2, volumes: [{name: s, secret: {secretName: shared}}]}",
    );
    for p in [&a, &b, &c] {
        g.apply(StoreChange::Upsert(p));
    }
    g.apply(StoreChange::Delete(&a));
    assert!(g.has_path("n1", ObjectType::Secret, "ns", "shared"), "b still uses it on n1");
    g.apply(StoreChange::Delete(&b));
    assert!(!g.has_path("n1", ObjectType::Secret, "ns", "shared"));
    assert!(g.has_path("n2", ObjectType::Secret, "ns", "shared"));
    // Deleting twice, or a pod never seen, changes nothing.
    g.apply(StoreChange::Delete(&b));
    g.delete_pod("ns", "never");
    assert!(g.has_path("n2", ObjectType::Secret, "ns", "shared"));
}

#[test]
fn ephemeral_container_added_later_adds_its_references() {
    let g = NodeGraph::new();
    let before = "metadata: {name: p, namespace: ns, uid: u}\nspec:\n  nodeName: n1\n  containers: [{name: c, image: i}]";
    g.apply(StoreChange::Upsert(&pod(before)));
    let after = format!(
        "{before}\n  ephemeralContainers: [{{name: d, image: i, envFrom: [{{secretRef: {{name: dbg}}}}]}}]"
    );
    g.apply(StoreChange::Upsert(&pod(&after)));
    assert!(g.has_path("n1", ObjectType::Secret, "ns", "dbg"));
}

#[test]
fn mirror_pods_reach_their_node_and_nothing_else() {
    let g = NodeGraph::new();
    let mirror = pod(
        "metadata:\n  name: static-web-n1\n  namespace: kube-system\n  annotations: {kubernetes.io/config.mirror: hash}\nspec:\n  nodeName: n1\n  serviceAccountName: sa\n  volumes: [{name: s, secret: {secretName: s1}}]",
    );
    g.apply(StoreChange::Upsert(&mirror));
    assert!(g.has_path("n1", ObjectType::Pod, "kube-system", "static-web-n1"));
    assert!(!g.has_path("n1", ObjectType::Secret, "kube-system", "s1"));
    assert!(!g.has_path("n1", ObjectType::ServiceAccount, "kube-system", "sa"));
}

#[test]
fn reset_replaces_everything() {
    let g = NodeGraph::new();
    g.apply(StoreChange::Upsert(&pod(EVERYTHING)));
    let other = pod(
        "metadata: {name: o, namespace: ns, uid: o}\nspec: {nodeName: n9, volumes: [{name: c, configMap: {name: cm}}]}",
    );
    let not_a_pod = Arc::new(
        Object::from_value(
            "ConfigMap",
            serde_yaml::from_str("metadata: {name: x, namespace: ns}").expect("yaml"),
        )
        .expect("configmap"),
    );
    g.apply(StoreChange::Reset(&[other, not_a_pod]));
    assert!(!g.has_path("node-1", ObjectType::Secret, "default", "vol-secret"));
    assert!(g.has_path("n9", ObjectType::ConfigMap, "ns", "cm"));
    assert_eq!((g.pod_count(), g.node_count()), (1, 1));
}

#[test]
fn on_change_callback_feeds_the_graph() {
    let g = Arc::new(NodeGraph::new());
    let callback = g.on_change();
    callback(StoreChange::Upsert(&pod(EVERYTHING)));
    assert!(g.has_path("node-1", ObjectType::ConfigMap, "default", "vol-cm"));
}

#[test]
fn many_pods_many_nodes() {
    let g = NodeGraph::new();
    let pods: Vec<_> = (0..2000)
        .map(|i| {
            pod(&format!(
                "metadata: {{name: p{i}, namespace: ns{}, uid: u{i}}}\nspec: {{nodeName: n{}, volumes: [{{name: s, secret: {{secretName: s{}}}}}]}}",
                i % 7,
                i % 100,
                i % 13
            ))
        })
        .collect();
    g.apply(StoreChange::Reset(&pods));
    assert_eq!((g.pod_count(), g.node_count()), (2000, 100));
    // p5: ns5, n5, s5.
    assert!(g.has_path("n5", ObjectType::Secret, "ns5", "s5"));
    for p in &pods {
        g.apply(StoreChange::Delete(p));
    }
    assert_eq!((g.pod_count(), g.node_count()), (0, 0));
    assert!(!g.has_path("n5", ObjectType::Secret, "ns5", "s5"));
}

#[test]
fn concurrent_reads_while_pods_change() {
    let g = Arc::new(NodeGraph::new());
    let p = pod(EVERYTHING);
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let g = g.clone();
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    let _ = g.has_path("node-1", ObjectType::Secret, "default", "vol-secret");
                }
            })
        })
        .collect();
    for _ in 0..500 {
        g.apply(StoreChange::Upsert(&p));
        g.apply(StoreChange::Delete(&p));
    }
    for r in readers {
        r.join().expect("reader");
    }
    assert_eq!(g.pod_count(), 0);
}

fn volume(yaml: &str) -> Arc<Object> {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("test YAML");
    Arc::new(Object::from_value("PersistentVolume", value).expect("test volume"))
}

#[test]
fn volumes_reach_the_nodes_of_their_claims() {
    let g = Arc::new(NodeGraph::new());
    let volumes = g.on_volume_change();
    g.apply(StoreChange::Upsert(&pod(EVERYTHING)));
    let bound = volume("metadata: {name: pv-data}\nspec: {claimRef: {namespace: default, name: data-claim}}");
    let scratch =
        volume("metadata: {name: pv-scratch}\nspec: {claimRef: {namespace: default, name: web-scratch}}");
    let elsewhere = volume("metadata: {name: pv-other}\nspec: {claimRef: {namespace: ns, name: data-claim}}");
    let free = volume("metadata: {name: pv-free}\nspec: {}");
    volumes(StoreChange::Reset(&[bound.clone(), elsewhere.clone(), free.clone()]));
    let pv = |node: &str, name: &str| g.has_path(node, ObjectType::PersistentVolume, "", name);
    assert!(pv("node-1", "pv-data"));
    assert!(!pv("node-2", "pv-data"));
    assert!(!pv("node-1", "pv-other"), "a claim of the same name in another namespace");
    assert!(!pv("node-1", "pv-free"));
    assert!(!pv("node-1", "pv-scratch"));
    volumes(StoreChange::Upsert(&scratch));
    assert!(pv("node-1", "pv-scratch"));
    // A relist of the pods keeps the volumes; the pod's removal takes the path away.
    g.apply(StoreChange::Reset(&[pod(EVERYTHING)]));
    assert!(pv("node-1", "pv-data"));
    g.apply(StoreChange::Delete(&pod(EVERYTHING)));
    assert!(!pv("node-1", "pv-data"));
    g.apply(StoreChange::Upsert(&pod(EVERYTHING)));
    // The volume released (claimRef cleared) or deleted: no path.
    volumes(StoreChange::Upsert(&volume("metadata: {name: pv-data}\nspec: {}")));
    assert!(!pv("node-1", "pv-data"));
    volumes(StoreChange::Delete(&scratch));
    assert!(!pv("node-1", "pv-scratch"));
}
