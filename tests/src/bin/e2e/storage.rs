//! Scenario 16: persistent volumes on the nodes, as a user of the default StorageClass and of hand-made
//! local volumes meets them.
//!
//! - A claim without a class gets the default `local-path` class and waits for its first consumer; a pod
//!   using it binds it, the kubelet's local-path provisioner makes a directory on the pod's node and a
//!   volume with node affinity to it; the pod's file is in that directory on the host; a second pod using
//!   the claim lands on the same node and reads the file; deleting the claim (reclaim Delete) removes the
//!   volume and the directory.
//! - A class with reclaim Retain: the deleted claim's volume stays, Released, with its directory.
//! - A hand-made `local` volume with node affinity to the last node forces its pod there.
//! - A claim nothing can satisfy leaves its pod Pending with the scheduler's reason; a claim of no class
//!   with no volume gets the PV controller's FailedBinding event; an invalid access mode is refused.

use std::path::Path;
use std::time::Instant;

use navarch_tests::eventually_blocking;

use super::{NS, allow, apply, apply_try, ensure_namespace, kubectl, kubectl_try, secs};

/// `kubectl get KIND NAME -n e2e -o jsonpath=PATH` (cluster-scoped kinds ignore the namespace).
fn field(kind: &str, name: &str, path: &str) -> String {
    kubectl_try(&["get", kind, name, "-n", NS, "-o", &format!("jsonpath={{{path}}}")]).unwrap_or_default()
}

fn gone(kind: &str, name: &str) -> bool {
    kubectl_try(&["get", kind, name, "-n", NS]).is_err()
}

fn pod_with_claim(name: &str, claim: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  \
         containers:\n  - name: c\n    image: busybox:1.36\n    command: [sh, -c, '{script}; exec sleep 36000']\n    \
         volumeMounts: [{{name: data, mountPath: /data}}]\n  volumes:\n  - name: data\n    \
         persistentVolumeClaim: {{claimName: {claim}}}\n"
    )
}

fn claim(name: &str, class: Option<&str>, size: &str) -> String {
    let class = class.map(|c| format!("  storageClassName: '{c}'\n")).unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}}}\nspec:\n{class}  \
         accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: {size}}}}}\n"
    )
}

fn running(pod: &str) -> bool {
    field("pod", pod, ".status.phase") == "Running"
}

fn delete(kind: &str, name: &str) {
    let _ = kubectl_try(&["delete", kind, name, "-n", NS, "--wait=false"]);
    eventually_blocking(format!("{kind} {name} gone"), allow(60), || gone(kind, name));
}

pub(crate) fn scenario_16_storage(nodes: &[(String, String)]) {
    println!("[16] persistent volumes: the default local-path class, Retain, a local volume, bad claims");
    ensure_namespace();
    dynamic_default_class();
    retained_volume();
    local_volume_pins_its_pod(&nodes.last().expect("a node").0);
    claims_that_cannot_bind();
}

fn dynamic_default_class() {
    let t = Instant::now();
    apply(&claim("data", None, "64Mi"));
    assert_eq!(field("pvc", "data", ".spec.storageClassName"), "local-path", "the default class");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(field("pvc", "data", ".status.phase"), "Pending", "WaitForFirstConsumer: no pod yet");
    apply(&pod_with_claim("writer", "data", "echo hello-$(hostname) > /data/greeting"));
    eventually_blocking("writer Running", allow(90), || running("writer"));
    eventually_blocking("data Bound", allow(30), || field("pvc", "data", ".status.phase") == "Bound");
    let bound_in = t.elapsed();
    let pv = field("pvc", "data", ".spec.volumeName");
    let node = field("pod", "writer", ".spec.nodeName");
    let dir = field("pv", &pv, ".spec.hostPath.path");
    let affinity =
        field("pv", &pv, ".spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]");
    assert_eq!(affinity, node, "the volume {pv} is tied to the writer's node");
    let greeting = eventually_blocking("the file in the volume's directory on the host", allow(10), || {
        std::fs::read_to_string(Path::new(&dir).join("greeting")).ok()
    });
    assert_eq!(greeting.trim(), "hello-writer", "{dir}/greeting");
    let columns = kubectl(&["get", "pvc", "data", "-n", NS]);
    assert!(columns.contains("Bound") && columns.contains(&pv) && columns.contains("RWO"), "{columns}");

    delete("pod", "writer");
    apply(&pod_with_claim("reader", "data", "cat /data/greeting"));
    eventually_blocking("reader Running", allow(60), || running("reader"));
    assert_eq!(field("pod", "reader", ".spec.nodeName"), node, "the claim's pod lands on the volume's node");
    let logs = eventually_blocking("reader's output", allow(20), || {
        kubectl_try(&["logs", "reader", "-n", NS]).ok().filter(|l| !l.trim().is_empty())
    });
    assert_eq!(logs.trim(), "hello-writer", "the data outlived its first pod");

    delete("pod", "reader");
    let t_delete = Instant::now();
    delete("pvc", "data");
    eventually_blocking(format!("volume {pv} deleted (reclaim Delete)"), allow(60), || gone("pv", &pv));
    eventually_blocking(format!("{dir} removed"), allow(30), || !Path::new(&dir).exists());
    println!(
        "    default class local-path: claim bound {} after apply on first use, on {node}; data kept across \
         pods; claim deleted -> volume and directory gone in {}",
        secs(bound_in),
        secs(t_delete.elapsed())
    );
}

fn retained_volume() {
    apply(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: e2e-retain}\nprovisioner: \
         navarch.io/local-path\nreclaimPolicy: Retain\nvolumeBindingMode: WaitForFirstConsumer\n",
    );
    apply(&claim("kept", Some("e2e-retain"), "32Mi"));
    apply(&pod_with_claim("keeper", "kept", "echo kept > /data/f"));
    eventually_blocking("keeper Running", allow(90), || running("keeper"));
    let pv = eventually_blocking("kept bound", allow(30), || {
        Some(field("pvc", "kept", ".spec.volumeName")).filter(|v| !v.is_empty())
    });
    let dir = field("pv", &pv, ".spec.hostPath.path");
    delete("pod", "keeper");
    delete("pvc", "kept");
    eventually_blocking(format!("{pv} Released"), allow(60), || {
        field("pv", &pv, ".status.phase") == "Released"
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(!gone("pv", &pv), "a Retain volume stays");
    assert_eq!(std::fs::read_to_string(Path::new(&dir).join("f")).unwrap_or_default().trim(), "kept");
    let row = kubectl(&["get", "pv", &pv]);
    assert!(row.contains("Retain") && row.contains("Released") && row.contains("e2e/kept"), "{row}");
    // What an administrator does with a released volume: delete it and its data.
    delete("pv", &pv);
    std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
    let _ = kubectl_try(&["delete", "storageclass", "e2e-retain"]);
    println!("    reclaim Retain: the claim's volume {pv} stays Released with its data");
}

fn local_volume_pins_its_pod(node: &str) {
    let dir = format!("/tmp/navarch-e2e-local-{node}");
    std::fs::create_dir_all(&dir).unwrap();
    apply(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: e2e-local}\nprovisioner: \
         kubernetes.io/no-provisioner\nvolumeBindingMode: WaitForFirstConsumer\n",
    );
    apply(&format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: e2e-local-{node}}}\nspec:\n  capacity: \
         {{storage: 100Mi}}\n  accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: Retain\n  \
         storageClassName: e2e-local\n  local: {{path: {dir}}}\n  nodeAffinity:\n    required:\n      \
         nodeSelectorTerms:\n      - matchExpressions:\n        - {{key: kubernetes.io/hostname, operator: In, \
         values: [{node}]}}\n"
    ));
    apply(&claim("pinned", Some("e2e-local"), "50Mi"));
    apply(&pod_with_claim("pinned", "pinned", "echo pinned > /data/f"));
    eventually_blocking("pinned Running", allow(90), || running("pinned"));
    assert_eq!(field("pod", "pinned", ".spec.nodeName"), node, "the local volume's node");
    assert_eq!(field("pvc", "pinned", ".spec.volumeName"), format!("e2e-local-{node}"));
    eventually_blocking("the pod's file in the local directory", allow(10), || {
        std::fs::read_to_string(format!("{dir}/f")).is_ok_and(|s| s.trim() == "pinned")
    });
    delete("pod", "pinned");
    delete("pvc", "pinned");
    delete("pv", &format!("e2e-local-{node}"));
    let _ = std::fs::remove_dir_all(&dir);
    println!("    a local volume with node affinity to {node}: its pod ran there");
}

fn claims_that_cannot_bind() {
    apply(&claim("huge", Some("e2e-local"), "1000Ti"));
    apply(&pod_with_claim("starved", "huge", "true"));
    let message = eventually_blocking("starved unschedulable", allow(30), || {
        let m = field("pod", "starved", ".status.conditions[?(@.type==\"PodScheduled\")].message");
        (!m.is_empty()).then_some(m)
    });
    assert!(message.contains("didn't find available persistent volumes to bind"), "{message}");
    assert_eq!(field("pod", "starved", ".status.phase"), "Pending");

    apply(&claim("nothing", Some(""), "1Gi"));
    let events = eventually_blocking("FailedBinding on the claim", allow(30), || {
        let e = kubectl(&["get", "events", "-n", NS, "--field-selector", "involvedObject.name=nothing"]);
        e.contains("FailedBinding").then_some(e)
    });
    assert!(
        events.contains("no persistent volumes available for this claim and no storage class is set"),
        "{events}"
    );

    let bad = claim("bad-mode", None, "1Gi").replace("ReadWriteOnce", "ReadWriteSometimes");
    let err = apply_try(&bad).expect_err("an invalid access mode is refused");
    assert!(err.contains("spec.accessModes") && err.contains("ReadWriteSometimes"), "{err}");
    assert!(gone("pvc", "bad-mode"));
    delete("pod", "starved");
    for c in ["huge", "nothing"] {
        delete("pvc", c);
    }
    let _ = kubectl_try(&["delete", "storageclass", "e2e-local"]);
    println!(
        "    unsatisfiable claim: pod Pending ({message}); no-class claim: FailedBinding; bad access mode refused"
    );
}
