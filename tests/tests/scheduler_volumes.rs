//! The scheduler's volume binding against a real api-server and etcd, with nodes registered through the
//! API (no kubelets, no PV controller): a local volume with node affinity pulls its pod onto that node
//! and gets the claim as claimRef; a WaitForFirstConsumer claim of a provisioner class gets the chosen
//! node as `volume.kubernetes.io/selected-node`; a claim nothing satisfies, and a missing claim, leave
//! the pod Pending with Kubernetes' PodScheduled message.

use std::time::Duration;

use navarch_api::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod, StorageClass};
use navarch_api::{Object, manifest};
use navarch_client::Api;
use navarch_tests::{Daemon, TestEnv, eventually};

fn parse(yaml: &str) -> Object {
    manifest::parse(yaml, "t").unwrap().remove(0)
}

fn node(name: &str) -> Node {
    let Object::Node(n) = parse(&format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {{kubernetes.io/hostname: {name}}}}}\n\
         status:\n  allocatable: {{cpu: '4', memory: 8Gi, pods: '110'}}\n  capacity: {{cpu: '4', memory: 8Gi, \
         pods: '110'}}\n  conditions: [{{type: Ready, status: 'True'}}]\n"
    )) else {
        unreachable!()
    };
    n
}

fn pod(name: &str, claim: &str) -> Pod {
    let Object::Pod(p) = parse(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  containers: \
         [{{name: c, image: x, volumeMounts: [{{name: data, mountPath: /data}}]}}]\n  volumes: [{{name: data, \
         persistentVolumeClaim: {{claimName: {claim}}}}}]\n"
    )) else {
        unreachable!()
    };
    p
}

fn claim(name: &str, class: &str, size: &str) -> PersistentVolumeClaim {
    let Object::PersistentVolumeClaim(c) = parse(&format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}, namespace: default}}\nspec: \
         {{accessModes: [ReadWriteOnce], storageClassName: {class}, resources: {{requests: {{storage: {size}}}}}}}\n"
    )) else {
        unreachable!()
    };
    c
}

fn class(name: &str, provisioner: &str) -> StorageClass {
    let Object::StorageClass(c) = parse(&format!(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {{name: {name}}}\nprovisioner: \
         {provisioner}\nvolumeBindingMode: WaitForFirstConsumer\n"
    )) else {
        unreachable!()
    };
    c
}

/// A 1Gi local volume of class `local` on `node`.
fn local_volume(name: &str, node: &str) -> PersistentVolume {
    let Object::PersistentVolume(v) = parse(&format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: {name}}}\nspec:\n  capacity: {{storage: 1Gi}}\n  \
         accessModes: [ReadWriteOnce]\n  storageClassName: local\n  persistentVolumeReclaimPolicy: Retain\n  \
         local: {{path: /mnt/disks/{name}}}\n  nodeAffinity:\n    required:\n      nodeSelectorTerms:\n      - \
         matchExpressions: [{{key: kubernetes.io/hostname, operator: In, values: [{node}]}}]\n"
    )) else {
        unreachable!()
    };
    v
}

async fn add_node(nodes: &Api<Node>, n: Node) {
    let mut created = nodes.create(&n).await.unwrap();
    created.status = n.status.clone();
    nodes.update_status(&created).await.unwrap();
}

/// Creates the volume and marks it Available (the PV controller's part, absent here).
async fn add_volume(volumes: &Api<PersistentVolume>, v: PersistentVolume) {
    let mut created = volumes.create(&v).await.unwrap();
    created.status =
        Some(navarch_api::v1::PersistentVolumeStatus { phase: "Available".into(), ..Default::default() });
    volumes.update_status(&created).await.unwrap();
}

async fn wait_bound_to(pods: &Api<Pod>, name: &str, node: &str) {
    eventually(format!("{name} bound to {node}"), Duration::from_secs(30), async || {
        let on = pods.get(name).await.unwrap().spec.unwrap().node_name;
        if on == node { Ok(()) } else { Err(format!("on {on:?}")) }
    })
    .await;
}

/// The pod's PodScheduled=False message once it is the expected one.
async fn wait_unschedulable(pods: &Api<Pod>, name: &str, want: &str) {
    eventually(format!("{name} unschedulable"), Duration::from_secs(30), async || {
        let p = pods.get(name).await.unwrap();
        assert!(p.spec.as_ref().unwrap().node_name.is_empty(), "{name} must stay unbound");
        let c = p.status.and_then(|s| s.conditions.into_iter().find(|c| c.r#type == "PodScheduled"));
        match c {
            Some(c) if c.message == want => {
                assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "Unschedulable"));
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test]
async fn volume_binding_places_pods_and_explains_unsatisfiable_claims() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let nodes: Api<Node> = c.api("");
    let pods: Api<Pod> = c.api("default");
    let claims: Api<PersistentVolumeClaim> = c.api("default");
    let volumes: Api<PersistentVolume> = c.api("");
    let classes: Api<StorageClass> = c.api("");
    add_node(&nodes, node("node-1")).await;
    add_node(&nodes, node("node-2")).await;
    classes.create(&class("local", "kubernetes.io/no-provisioner")).await.unwrap();
    classes.create(&class("local-path", "navarch.io/local-path")).await.unwrap();
    add_volume(&volumes, local_volume("local-pv", "node-2")).await;
    let _scheduler = Daemon::start(&env, "scheduler", "scheduler", &[]);

    // A static local volume on node-2: the pod goes there and the volume is bound to its claim.
    let data = claims.create(&claim("data", "local", "1Gi")).await.unwrap();
    pods.create(&pod("db", "data")).await.unwrap();
    wait_bound_to(&pods, "db", "node-2").await;
    let pv = volumes.get("local-pv").await.unwrap();
    let r = pv.spec.as_ref().unwrap().claim_ref.clone().expect("claimRef");
    let meta = data.metadata.as_ref().unwrap();
    assert_eq!(
        (r.kind.as_str(), r.api_version.as_str(), r.namespace.as_str(), r.name.as_str(), r.uid.as_str()),
        ("PersistentVolumeClaim", "v1", "default", "data", meta.uid.as_str())
    );
    assert_eq!(pv.metadata.unwrap().annotations["pv.kubernetes.io/bound-by-controller"], "yes");

    // The only local volume is taken: a second claim of that class fits nowhere.
    claims.create(&claim("more", "local", "1Gi")).await.unwrap();
    pods.create(&pod("db2", "more")).await.unwrap();
    wait_unschedulable(
        &pods,
        "db2",
        "0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind. preemption: 0/2 \
         nodes are available: 2 Preemption is not helpful for scheduling.",
    )
    .await;
    // A volume appears on node-1: the pod is retried at once and lands there.
    add_volume(&volumes, local_volume("local-pv-1", "node-1")).await;
    wait_bound_to(&pods, "db2", "node-1").await;

    // A provisioner class: the pod is bound and its claim names the chosen node.
    claims.create(&claim("scratch", "local-path", "1Gi")).await.unwrap();
    pods.create(&pod("app", "scratch")).await.unwrap();
    let on = eventually("app bound", Duration::from_secs(30), async || {
        let n = pods.get("app").await.unwrap().spec.unwrap().node_name;
        (!n.is_empty()).then_some(n)
    })
    .await;
    let annotated = claims.get("scratch").await.unwrap();
    assert_eq!(annotated.metadata.unwrap().annotations.get("volume.kubernetes.io/selected-node"), Some(&on));

    // Two pods created together race for one volume: exactly one gets it, the other waits.
    classes.create(&class("race", "kubernetes.io/no-provisioner")).await.unwrap();
    let mut race_pv = local_volume("race-pv", "node-1");
    race_pv.spec.as_mut().unwrap().storage_class_name = "race".into();
    add_volume(&volumes, race_pv).await;
    for i in 1..=2 {
        claims.create(&claim(&format!("race-{i}"), "race", "1Gi")).await.unwrap();
    }
    let (r1, r2) = (pod("racer-1", "race-1"), pod("racer-2", "race-2"));
    let (a, b) = tokio::join!(pods.create(&r1), pods.create(&r2));
    a.unwrap();
    b.unwrap();
    let winner = eventually("one racer bound", Duration::from_secs(30), async || {
        let bound: Vec<String> = futures::future::join_all(["racer-1", "racer-2"].map(|n| pods.get(n)))
            .await
            .into_iter()
            .map(|p| p.unwrap())
            .filter(|p| !p.spec.as_ref().unwrap().node_name.is_empty())
            .map(|p| p.metadata.unwrap().name)
            .collect();
        (bound.len() == 1).then(|| bound[0].clone())
    })
    .await;
    let loser = if winner == "racer-1" { "racer-2" } else { "racer-1" };
    wait_unschedulable(
        &pods,
        loser,
        "0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind. preemption: 0/2 \
         nodes are available: 2 Preemption is not helpful for scheduling.",
    )
    .await;
    let taken_by = volumes.get("race-pv").await.unwrap().spec.unwrap().claim_ref.unwrap().name;
    assert_eq!(taken_by, winner.replace("racer", "race"));

    // A missing claim.
    pods.create(&pod("orphan", "nothing")).await.unwrap();
    wait_unschedulable(
        &pods,
        "orphan",
        "0/2 nodes are available: persistentvolumeclaim \"nothing\" not found. preemption: 0/2 nodes are \
         available: 2 Preemption is not helpful for scheduling.",
    )
    .await;
    // Created later: the pod is retried on the claim's creation and provisioned.
    claims.create(&claim("nothing", "local-path", "1Gi")).await.unwrap();
    eventually("orphan bound", Duration::from_secs(30), async || {
        (!pods.get("orphan").await.unwrap().spec.unwrap().node_name.is_empty()).then_some(())
    })
    .await;
}
