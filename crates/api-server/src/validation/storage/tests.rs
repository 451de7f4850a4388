//! Hand-written manifests against Kubernetes' messages, one rule a case.

use navarch_api::Object;

use crate::validation::testing::*;
use crate::validation::{prepare_status_write, prepare_write, validate};

const PV: &str = "\
apiVersion: v1
kind: PersistentVolume
metadata:
  name: pv-1
spec:
  capacity:
    storage: 5Gi
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  hostPath:
    path: /data/pv-1
";

const LOCAL_PV: &str = "\
apiVersion: v1
kind: PersistentVolume
metadata:
  name: local-1
spec:
  capacity:
    storage: 10Gi
  accessModes: [ReadWriteOnce]
  storageClassName: local-storage
  local:
    path: /mnt/disks/ssd1
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - key: kubernetes.io/hostname
          operator: In
          values: [node-2]
";

const PVC: &str = "\
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  namespace: default
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  resources:
    requests:
      storage: 3Gi
";

const SC: &str = "\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations:
    storageclass.kubernetes.io/is-default-class: \"true\"
provisioner: navarch.io/local-path
volumeBindingMode: WaitForFirstConsumer
";

#[test]
fn valid_objects_and_defaults() {
    for yaml in [PV, LOCAL_PV, PVC, SC] {
        assert_valid(yaml);
    }
    assert_valid(&edit(
        PV,
        "  hostPath:\n    path: /data/pv-1\n",
        "  nfs: {server: nfs.example.com, path: /exports/a}\n",
    ));
    assert_valid(&edit(PV, "[ReadWriteOnce]", "[ReadWriteOncePod]"));
    assert_valid(&edit(PVC, "[ReadWriteOnce]", "[ReadOnlyMany, ReadWriteMany]"));
    assert_valid(&edit(PVC, "  storageClassName: manual\n", "  storageClassName: ''\n"));
    let Object::PersistentVolume(pv) = defaulted(PV) else { unreachable!() };
    let spec = pv.spec.unwrap();
    assert_eq!(spec.persistent_volume_reclaim_policy, "Retain");
    assert_eq!(spec.volume_mode.as_deref(), Some("Filesystem"));
    assert_eq!(spec.host_path.unwrap().r#type.as_deref(), Some(""));
    assert_eq!(pv.status.unwrap().phase, "Pending");
    let Object::PersistentVolumeClaim(pvc) = defaulted(PVC) else { unreachable!() };
    assert_eq!(pvc.spec.unwrap().volume_mode.as_deref(), Some("Filesystem"));
    assert_eq!(pvc.status.unwrap().phase, "Pending");
    let Object::StorageClass(sc) = defaulted(SC) else { unreachable!() };
    assert_eq!(sc.reclaim_policy.as_deref(), Some("Delete"));
    assert_eq!(sc.volume_binding_mode.as_deref(), Some("WaitForFirstConsumer"));
    let Object::StorageClass(sc) = defaulted(&edit(SC, "volumeBindingMode: WaitForFirstConsumer\n", ""))
    else {
        unreachable!()
    };
    assert_eq!(sc.volume_binding_mode.as_deref(), Some("Immediate"));
}

#[test]
fn create_starts_pending_and_drops_volume_attributes_classes() {
    let mut pv = defaulted(&edit(PV, "  storageClassName: manual\n", "  volumeAttributesClassName: gold\n"));
    if let Object::PersistentVolume(p) = &mut pv {
        p.status.as_mut().unwrap().phase = "Bound".into();
    }
    prepare_write(&mut pv, None);
    let Object::PersistentVolume(p) = &pv else { unreachable!() };
    assert_eq!(p.status.as_ref().unwrap().phase, "Pending");
    assert!(!p.status.as_ref().unwrap().last_phase_transition_time.is_empty());
    assert_eq!(p.spec.as_ref().unwrap().volume_attributes_class_name, None);

    let mut claim = defaulted(&edit(
        PVC,
        "  storageClassName: manual\n",
        "  dataSource: {kind: PersistentVolumeClaim, name: src}\n",
    ));
    prepare_write(&mut claim, None);
    let Object::PersistentVolumeClaim(c) = &claim else { unreachable!() };
    let r = c.spec.as_ref().unwrap().data_source_ref.as_ref().unwrap();
    assert_eq!((r.kind.as_str(), r.name.as_str()), ("PersistentVolumeClaim", "src"));
    assert!(validate(&claim, None).is_empty());
}

#[test]
fn a_volume_phase_change_stamps_its_transition_time() {
    let mut old = defaulted(PV);
    prepare_write(&mut old, None);
    let phase_of = |o: &Object| match o {
        Object::PersistentVolume(p) => p.status.clone().unwrap(),
        _ => unreachable!(),
    };
    let set_phase = |o: &mut Object, phase: &str, time: &str| {
        if let Object::PersistentVolume(p) = o {
            let s = p.status.as_mut().unwrap();
            s.phase = phase.into();
            s.last_phase_transition_time = time.into();
        }
    };
    let mut old_status = old.clone();
    set_phase(&mut old_status, "Available", "2024-01-01T00:00:00Z");
    let mut same = old_status.clone();
    set_phase(&mut same, "Available", "");
    prepare_status_write(&mut same, &old_status);
    assert_eq!(phase_of(&same).last_phase_transition_time, "2024-01-01T00:00:00Z");
    let mut bound = old_status.clone();
    set_phase(&mut bound, "Bound", "2024-01-01T00:00:00Z");
    prepare_status_write(&mut bound, &old_status);
    assert_ne!(phase_of(&bound).last_phase_transition_time, "2024-01-01T00:00:00Z");
    let mut own = old_status.clone();
    set_phase(&mut own, "Bound", "2024-06-01T00:00:00Z");
    prepare_status_write(&mut own, &old_status);
    assert_eq!(phase_of(&own).last_phase_transition_time, "2024-06-01T00:00:00Z");
}

#[test]
fn persistent_volume_errors() {
    let modes = r#""ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod""#;
    let unsupported_mode = format!("Unsupported value: \"ReadWriteSometimes\": supported values: {modes}");
    let cases: Vec<(&str, &str, &str, String)> = vec![
        ("  accessModes: [ReadWriteOnce]\n", "", "spec.accessModes", "Required value".into()),
        ("[ReadWriteOnce]", "[ReadWriteSometimes]", "spec.accessModes", unsupported_mode),
        (
            "[ReadWriteOnce]",
            "[ReadWriteOncePod, ReadWriteOnce]",
            "spec.accessModes",
            "Forbidden: may not use ReadWriteOncePod with other access modes".into(),
        ),
        ("    storage: 5Gi\n", "    storage: 0\n", "spec.capacity[storage]", "Invalid value: \"0\": must be greater than zero".into()),
        (
            "    storage: 5Gi\n",
            "    storage: 5Gi\n    cpu: 1\n",
            "spec.capacity",
            "Unsupported value: core.ResourceList{\"cpu\":\"1\", \"storage\":\"5Gi\"}: supported values: \"storage\"".into(),
        ),
        (
            "  storageClassName: manual\n",
            "  storageClassName: manual\n  persistentVolumeReclaimPolicy: Keep\n",
            "spec.persistentVolumeReclaimPolicy",
            "Unsupported value: \"Keep\": supported values: \"Delete\", \"Recycle\", \"Retain\"".into(),
        ),
        (
            "  hostPath:\n    path: /data/pv-1\n",
            "",
            "spec",
            "Required value: must specify a volume type".into(),
        ),
        (
            "    path: /data/pv-1\n",
            "    path: /data/pv-1\n  nfs: {server: s, path: /e}\n",
            "spec.nfs",
            "Forbidden: may not specify more than 1 volume type".into(),
        ),
        ("    path: /data/pv-1\n", "    path: /data/../etc\n", "spec.hostPath.path", "Invalid value: \"/data/../etc\": must not contain '..'".into()),
        ("    path: /data/pv-1\n", "    path: ''\n", "spec.hostPath.path", "Required value".into()),
        (
            "    path: /data/pv-1\n",
            "    path: /data/pv-1\n    type: Pipe\n",
            "spec.hostPath.type",
            "Unsupported value: \"Pipe\"".into(),
        ),
        ("  storageClassName: manual\n", "  storageClassName: Manual_1\n", "spec.storageClassName", "Invalid value: \"Manual_1\": a lowercase RFC 1123 subdomain".into()),
        (
            "  storageClassName: manual\n",
            "  storageClassName: manual\n  volumeMode: Raw\n",
            "spec.volumeMode",
            "Unsupported value: \"Raw\": supported values: \"Block\", \"Filesystem\"".into(),
        ),
        (
            "  storageClassName: manual\n",
            "  storageClassName: manual\n  persistentVolumeReclaimPolicy: Recycle\n",
            "",
            String::new(),
        ),
    ];
    for (from, to, path, reason) in cases {
        let yaml = edit(PV, from, to);
        if path.is_empty() {
            assert_valid(&yaml);
        } else {
            assert_error(&yaml, path, &reason);
        }
    }
    let root = edit(
        &edit(PV, "/data/pv-1", "/"),
        "  storageClassName: manual\n",
        "  persistentVolumeReclaimPolicy: Recycle\n",
    );
    assert_error(
        &root,
        "spec.persistentVolumeReclaimPolicy",
        "Forbidden: may not be 'recycle' for a hostPath mount of '/'",
    );
    let no_capacity = edit(PV, "  capacity:\n    storage: 5Gi\n", "");
    let errs = defaulted_errors(&no_capacity);
    assert_eq!(
        errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        [
            "spec.capacity: Required value",
            "spec.capacity: Unsupported value: core.ResourceList(nil): supported values: \"storage\""
        ]
    );
    let nfs = edit(PV, "  hostPath:\n    path: /data/pv-1\n", "  nfs: {path: exports}\n");
    let errs = render(&defaulted_errors(&nfs));
    assert!(errs.contains("spec.nfs.server: Required value"), "{errs}");
    assert!(errs.contains("spec.nfs.path: Invalid value: \"exports\": must be an absolute path"), "{errs}");
}

#[test]
fn local_volumes_need_node_affinity() {
    let nodeless = edit(LOCAL_PV, LOCAL_PV.split_once("  nodeAffinity:\n").unwrap().1, "");
    let nodeless = edit(&nodeless, "  nodeAffinity:\n", "");
    assert_error(&nodeless, "spec.nodeAffinity", "Required value: Local volume requires node affinity");
    assert_error(
        &edit(LOCAL_PV, "    path: /mnt/disks/ssd1\n", "    path: ''\n"),
        "spec.local.path",
        "Required value",
    );
    assert_error(
        &edit(
            LOCAL_PV,
            "    required:\n      nodeSelectorTerms:\n      - matchExpressions:\n        - key: kubernetes.io/hostname\n          operator: In\n          values: [node-2]\n",
            "    {}\n",
        ),
        "spec.nodeAffinity.required",
        "Required value: must specify required node constraints",
    );
    assert_error(
        &edit(LOCAL_PV, "operator: In", "operator: Near"),
        "spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].operator",
        "Unsupported value: \"Near\"",
    );
    assert_error(
        &edit(LOCAL_PV, "          values: [node-2]\n", ""),
        "spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values",
        "Required value: must be specified when `operator` is 'In' or 'NotIn'",
    );
}

#[test]
fn csi_volumes() {
    let csi =
        edit(PV, "  hostPath:\n    path: /data/pv-1\n", "  csi: {driver: Bad_Driver, volumeHandle: ''}\n");
    let errs = render(&defaulted_errors(&csi));
    assert!(
        errs.contains("spec.csi.driver: Invalid value: \"Bad_Driver\": a lowercase RFC 1123 subdomain"),
        "{errs}"
    );
    assert!(errs.contains("spec.csi.volumeHandle: Required value"), "{errs}");
    assert_valid(&edit(
        PV,
        "  hostPath:\n    path: /data/pv-1\n",
        "  csi: {driver: hostpath.csi.k8s.io, volumeHandle: v1}\n",
    ));
}

#[test]
fn persistent_volume_updates() {
    let bigger = edit(PV, "storage: 5Gi", "storage: 6Gi");
    assert!(update_errors(PV, &bigger).is_empty(), "capacity may change");
    let moved = edit(PV, "/data/pv-1", "/data/pv-2");
    assert_update_error(
        PV,
        &moved,
        "spec.persistentvolumesource",
        "Forbidden: spec.persistentvolumesource is immutable after creation\n  changed: spec.hostPath.path",
    );
    let block = edit(PV, "  storageClassName: manual\n", "  storageClassName: manual\n  volumeMode: Block\n");
    assert_update_error(PV, &block, "volumeMode", "Invalid value: \"Block\": field is immutable");
    let other_node = edit(LOCAL_PV, "values: [node-2]", "values: [node-3]");
    assert_update_error(LOCAL_PV, &other_node, "nodeAffinity", "field is immutable");
    let claimed = edit(
        PV,
        "  storageClassName: manual\n",
        "  storageClassName: manual\n  claimRef: {namespace: default, name: data}\n",
    );
    assert!(update_errors(PV, &claimed).is_empty(), "the PV controller binds by claimRef");
}

#[test]
fn persistent_volume_claim_errors() {
    let modes = r#""ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod""#;
    let unsupported = format!("Unsupported value: \"Shared\": supported values: {modes}");
    let class = "  storageClassName: manual\n";
    assert_edit_errors(
        PVC,
        &[
            (
                "  accessModes: [ReadWriteOnce]\n",
                "",
                "spec.accessModes",
                "Required value: at least 1 access mode is required",
            ),
            ("[ReadWriteOnce]", "[ReadWriteOnce, Shared]", "spec.accessModes", &unsupported),
            (
                "[ReadWriteOnce]",
                "[ReadWriteOncePod, ReadOnlyMany]",
                "spec.accessModes",
                "Forbidden: may not use ReadWriteOncePod with other access modes",
            ),
            (
                "    requests:\n      storage: 3Gi\n",
                "    requests: {}\n",
                "spec.resources[storage]",
                "Required value",
            ),
            (
                "storage: 3Gi",
                "storage: -1Gi",
                "spec.resources[storage]",
                "Invalid value: \"-1Gi\": must be greater than zero",
            ),
            (
                "storageClassName: manual",
                "storageClassName: Fast!",
                "spec.storageClassName",
                "Invalid value: \"Fast!\": a lowercase RFC 1123 subdomain",
            ),
            (
                class,
                "  volumeMode: Raw\n",
                "spec.volumeMode",
                "Unsupported value: \"Raw\": supported values: \"Block\", \"Filesystem\"",
            ),
            (
                class,
                "  selector: {matchExpressions: [{key: tier, operator: In}]}\n",
                "spec.selector.matchExpressions[0].values",
                "Required value",
            ),
            (
                class,
                "  dataSource: {kind: Secret, name: s}\n",
                "spec.dataSource",
                "Invalid value: \"Secret\": must be 'PersistentVolumeClaim' when referencing the default apiGroup",
            ),
            (
                class,
                "  dataSource: {kind: PersistentVolumeClaim, name: a}\n  dataSourceRef: {kind: PersistentVolumeClaim, name: b}\n",
                "spec",
                "Invalid value: spec.dataSource: must match dataSourceRef",
            ),
        ],
    );
}

/// A claim as the PV controller leaves it: bound to `pv-1` with 3Gi.
fn bound(yaml: &str) -> String {
    format!("{yaml}  volumeName: pv-1\nstatus:\n  phase: Bound\n  capacity: {{storage: 3Gi}}\n")
}

#[test]
fn persistent_volume_claim_updates() {
    let claim = |old: &str, new: &str| update_errors(old, new);
    // The PV controller sets volumeName once, and a class may be given to a claim that had none.
    assert!(claim(PVC, &format!("{PVC}  volumeName: pv-1\n")).is_empty());
    let classless = edit(PVC, "  storageClassName: manual\n", "");
    assert!(claim(&classless, PVC).is_empty());
    let immutable = "Forbidden: spec is immutable after creation except resources.requests and \
                     volumeAttributesClassName for bound claims";
    assert_update_error(&bound(PVC), &bound(PVC).replace("pv-1", "pv-2"), "spec", immutable);
    assert_update_error(
        PVC,
        &edit(PVC, "storageClassName: manual", "storageClassName: fast"),
        "spec",
        immutable,
    );
    assert_update_error(PVC, &edit(PVC, "[ReadWriteOnce]", "[ReadWriteMany]"), "spec", immutable);
    // Unbound claims may not be resized; bound ones may grow.
    assert_update_error(PVC, &edit(PVC, "storage: 3Gi", "storage: 4Gi"), "spec", immutable);
    let old = bound(PVC);
    assert!(claim(&old, &bound(&edit(PVC, "storage: 3Gi", "storage: 4Gi"))).is_empty());
    assert_update_error(
        &old,
        &bound(&edit(PVC, "storage: 3Gi", "storage: 2Gi")),
        "spec.resources.requests.storage",
        "Forbidden: field can not be less than status.capacity",
    );
    // Kubernetes reports a volume mode change twice: in the spec and on its own.
    let block =
        edit(PVC, "  storageClassName: manual\n", "  storageClassName: manual\n  volumeMode: Block\n");
    let errs: Vec<String> = claim(PVC, &block).iter().map(|e| e.to_string()).collect();
    assert_eq!(
        errs,
        [
            format!("spec: {immutable}\n  changed: spec.volumeMode"),
            "volumeMode: Invalid value: \"Block\": field is immutable".into()
        ]
    );
    let annotated = edit(
        PVC,
        "  namespace: default\n",
        "  namespace: default\n  annotations: {volume.beta.kubernetes.io/storage-class: slow}\n",
    );
    let classless_annotated = edit(&annotated, "  storageClassName: manual\n", "");
    let upgraded = edit(&annotated, "storageClassName: manual", "storageClassName: slow");
    assert!(
        claim(&classless_annotated, &upgraded).is_empty(),
        "class moves from the annotation to the field"
    );
    let errs = claim(&annotated, &edit(&annotated, "storage-class: slow", "storage-class: fast"));
    assert!(
        errs.iter().any(|e| e.to_string()
            == "metadata.annotations[volume.beta.kubernetes.io/storage-class]: Invalid value: \"fast\": field is immutable"),
        "{}",
        render(&errs)
    );
}

#[test]
fn storage_class_errors_and_updates() {
    assert_error(&edit(SC, "provisioner: navarch.io/local-path\n", ""), "provisioner", "Required value");
    assert_error(
        &edit(SC, "navarch.io/local-path", "navarch.io/local path"),
        "provisioner",
        "Invalid value: \"navarch.io/local path\": name part must consist of alphanumeric characters",
    );
    assert_error(
        &format!("{SC}reclaimPolicy: Recycle\n"),
        "reclaimPolicy",
        "Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\"",
    );
    assert_error(
        &edit(SC, "WaitForFirstConsumer", "Later"),
        "volumeBindingMode",
        "Unsupported value: \"Later\": supported values: \"Immediate\", \"WaitForFirstConsumer\"",
    );
    let topology = |terms: &str| format!("{SC}allowedTopologies:\n{terms}");
    assert_valid(&topology(
        "- matchLabelExpressions:\n  - {key: topology.kubernetes.io/zone, values: [a, b]}\n",
    ));
    assert_error(
        &topology("- matchLabelExpressions:\n  - {key: zone, values: []}\n"),
        "allowedTopologies[0].matchLabelExpressions[0].values",
        "Required value",
    );
    assert_error(
        &topology("- matchLabelExpressions:\n  - {key: zone, values: [a, a]}\n"),
        "allowedTopologies[0].matchLabelExpressions[0].values[1]",
        "Duplicate value: \"a\"",
    );
    assert_error(
        &topology("- matchLabelExpressions:\n  - {key: zone, values: [a]}\n  - {key: zone, values: [b]}\n"),
        "allowedTopologies[0].matchLabelExpressions[1].key",
        "Duplicate value: \"zone\"",
    );
    assert_error(
        &topology(
            "- matchLabelExpressions:\n  - {key: zone, values: [a]}\n- matchLabelExpressions:\n  - {key: zone, values: [a]}\n",
        ),
        "allowedTopologies[1].matchLabelExpressions",
        "Duplicate value: \"\"",
    );

    assert!(update_errors(SC, &edit(SC, "\"true\"", "\"false\"")).is_empty(), "annotations may change");
    assert!(update_errors(SC, &format!("{SC}allowVolumeExpansion: true\n")).is_empty());
    assert_update_error(
        SC,
        &edit(SC, "navarch.io/local-path", "example.com/other"),
        "provisioner",
        "Forbidden: updates to provisioner are forbidden.",
    );
    assert_update_error(
        SC,
        &format!("{SC}parameters: {{a: b}}\n"),
        "parameters",
        "Forbidden: updates to parameters are forbidden.",
    );
    assert_update_error(
        SC,
        &format!("{SC}reclaimPolicy: Retain\n"),
        "reclaimPolicy",
        "Forbidden: updates to reclaimPolicy are forbidden.",
    );
    assert_update_error(
        SC,
        &edit(SC, "WaitForFirstConsumer", "Immediate"),
        "volumeBindingMode",
        "Invalid value: \"Immediate\": field is immutable",
    );
}
