//! PersistentVolumes, PersistentVolumeClaims and StorageClasses through the real kubectl (1.32) against a
//! real etcd + api-server: `kubectl get pv,pvc,sc` with Kubernetes' columns (and `-o wide`), a claim
//! given the default StorageClass (the newest default wins, a claim naming a class or `""` keeps it), the
//! protection finalizers on new claims and volumes, Kubernetes' validation messages for a bad claim and
//! volume, the immutable parts of a claim and a class, and a bound claim growing.

use navarch_tests::{Kubectl, TestEnv};
use serde_json::Value;

const CLASSES: &str = r#"apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: navarch.io/local-path
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: manual
provisioner: kubernetes.io/no-provisioner
reclaimPolicy: Retain
allowVolumeExpansion: true
"#;

const VOLUME: &str = r#"apiVersion: v1
kind: PersistentVolume
metadata:
  name: pv-manual
spec:
  capacity: {storage: 5Gi}
  accessModes: [ReadWriteOnce, ReadOnlyMany]
  storageClassName: manual
  claimRef: {namespace: default, name: pinned}
  local: {path: /mnt/disks/one}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - {key: kubernetes.io/hostname, operator: In, values: [node-2]}
"#;

const CLAIM: &str = r#"apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests: {storage: 1Gi}
"#;

async fn json(k: &Kubectl, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&k.ok(&all).await).unwrap()
}

/// The lines of a table, each split into its cells (runs of two or more spaces separate them).
fn table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect())
        .collect()
}

#[tokio::test]
async fn storage_kinds_through_kubectl() {
    let env = TestEnv::start().await;
    let k = Kubectl::new(&env.api_server);
    let out = k.apply(CLASSES, &[]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = k.apply(VOLUME, &[]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "persistentvolume/pv-manual created");

    // DefaultStorageClass: a claim naming no class gets the default; one naming "" or a class keeps it.
    k.apply(CLAIM, &[]).await;
    let claim = json(&k, &["get", "pvc", "data"]).await;
    assert_eq!(claim["spec"]["storageClassName"], "local-path", "{claim}");
    assert_eq!(claim["metadata"]["finalizers"], serde_json::json!(["kubernetes.io/pvc-protection"]));
    assert_eq!(claim["status"]["phase"], "Pending");
    assert_eq!(claim["spec"]["volumeMode"], "Filesystem");
    let none = CLAIM
        .replace("name: data", "name: classless")
        .replace("spec:\n", "spec:\n  storageClassName: \"\"\n");
    k.apply(&none, &[]).await;
    assert_eq!(json(&k, &["get", "pvc", "classless"]).await["spec"]["storageClassName"], "");
    let pinned =
        CLAIM.replace("name: data", "name: pinned").replace("spec:\n", "spec:\n  storageClassName: manual\n");
    k.apply(&pinned, &[]).await;

    // StorageObjectInUseProtection and the volume's defaults.
    let pv = json(&k, &["get", "pv", "pv-manual"]).await;
    assert_eq!(pv["metadata"]["finalizers"], serde_json::json!(["kubernetes.io/pv-protection"]));
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["status"]["phase"], "Pending");
    assert!(pv["status"]["lastPhaseTransitionTime"].is_string(), "{pv}");

    // kubectl's columns.
    let sc = table(&k.ok(&["get", "sc"]).await);
    assert_eq!(
        sc[0],
        ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"]
    );
    assert_eq!(
        sc[1][..5],
        ["local-path (default)", "navarch.io/local-path", "Delete", "WaitForFirstConsumer", "false"]
    );
    assert_eq!(sc[2][..5], ["manual", "kubernetes.io/no-provisioner", "Retain", "Immediate", "true"]);
    let pvs = table(&k.ok(&["get", "pv"]).await);
    assert_eq!(
        pvs[0],
        [
            "NAME",
            "CAPACITY",
            "ACCESS MODES",
            "RECLAIM POLICY",
            "STATUS",
            "CLAIM",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "REASON",
            "AGE"
        ]
    );
    assert_eq!(
        pvs[1][..8],
        ["pv-manual", "5Gi", "RWO,ROX", "Retain", "Pending", "default/pinned", "manual", "<unset>"]
    );
    let wide = table(&k.ok(&["get", "pv", "-o", "wide"]).await);
    assert_eq!(wide[0].last().unwrap(), "VOLUMEMODE");
    assert_eq!(wide[1].last().unwrap(), "Filesystem");
    let pvcs = table(&k.ok(&["get", "pvc"]).await);
    assert_eq!(
        pvcs[0],
        [
            "NAME",
            "STATUS",
            "VOLUME",
            "CAPACITY",
            "ACCESS MODES",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "AGE"
        ]
    );
    // Unbound claims show no volume, capacity or access modes (empty cells).
    let data = pvcs.iter().find(|r| r[0] == "data").unwrap();
    assert_eq!(data[..4], ["data", "Pending", "local-path", "<unset>"], "{pvcs:?}");
    let together = k.ok(&["get", "pv,pvc,sc", "--no-headers"]).await;
    assert!(together.contains("persistentvolume/pv-manual"), "{together}");
    assert!(together.contains("persistentvolumeclaim/data"), "{together}");
    assert!(together.contains("storageclass.storage.k8s.io/local-path (default)"), "{together}");

    // A bad claim: Kubernetes' messages.
    let bad = CLAIM
        .replace("name: data", "name: bad")
        .replace("[ReadWriteOnce]", "[ReadWriteSometimes]")
        .replace("    requests: {storage: 1Gi}\n", "    requests: {}\n");
    let out = k.apply(&bad, &[]).await;
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains(r#"The PersistentVolumeClaim "bad" is invalid: "#), "{out:?}");
    assert!(
        out.stderr.contains(r#"spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: "ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod""#),
        "{out:?}"
    );
    assert!(out.stderr.contains("spec.resources[storage]: Required value"), "{out:?}");
    let sourceless =
        VOLUME.replace("name: pv-manual", "name: pv-bad").replace("  local: {path: /mnt/disks/one}\n", "");
    let out = k.apply(&sourceless, &[]).await;
    assert!(out.stderr.contains("spec: Required value: must specify a volume type"), "{out:?}");

    // Immutable fields.
    let out = k.apply(&CLAIM.replace("[ReadWriteOnce]", "[ReadWriteMany]"), &[]).await;
    assert!(
        out.stderr.contains("spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"),
        "{out:?}"
    );
    let out = k.apply(&CLASSES.replace("navarch.io/local-path", "example.com/other"), &[]).await;
    assert!(out.stderr.contains("provisioner: Forbidden: updates to provisioner are forbidden."), "{out:?}");

    // The claim bound (as the PV controller writes it): its request may grow, not shrink below capacity.
    k.ok(&["patch", "pvc", "pinned", "--type=merge", "-p", r#"{"spec":{"volumeName":"pv-manual"}}"#]).await;
    let status = r#"{"status":{"phase":"Bound","capacity":{"storage":"5Gi"},"accessModes":["ReadWriteOnce","ReadOnlyMany"]}}"#;
    k.ok(&["patch", "pvc", "pinned", "--subresource=status", "--type=merge", "-p", status]).await;
    let pvcs = table(&k.ok(&["get", "pvc", "pinned", "--no-headers"]).await);
    assert_eq!(pvcs[0][..6], ["pinned", "Bound", "pv-manual", "5Gi", "RWO,ROX", "manual"], "{pvcs:?}");
    let resize = |size: &str| {
        let patch = format!(r#"{{"spec":{{"resources":{{"requests":{{"storage":"{size}"}}}}}}}}"#);
        let k = &k;
        async move { k.run(&["patch", "pvc", "pinned", "--type=merge", "-p", &patch]).await }
    };
    let out = resize("6Gi").await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = resize("2Gi").await;
    assert!(
        out.stderr.contains(
            "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
        ),
        "{out:?}"
    );

    // A phase change through the status subresource moves lastPhaseTransitionTime.
    let before = pv["status"]["lastPhaseTransitionTime"].clone();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    k.ok(&[
        "patch",
        "pv",
        "pv-manual",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Bound"}}"#,
    ])
    .await;
    let after = json(&k, &["get", "pv", "pv-manual"]).await;
    assert_eq!(after["status"]["phase"], "Bound");
    assert_ne!(after["status"]["lastPhaseTransitionTime"], before, "{after}");

    // The newest of several default classes wins.
    let newer = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: fast\n  annotations: \
                 {storageclass.kubernetes.io/is-default-class: \"true\"}\nprovisioner: example.com/fast\n";
    k.apply(newer, &[]).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    k.apply(&CLAIM.replace("name: data", "name: second"), &[]).await;
    assert_eq!(json(&k, &["get", "pvc", "second"]).await["spec"]["storageClassName"], "fast");
}
