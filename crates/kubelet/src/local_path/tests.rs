//! The local-path provisioner's decisions, names and directory handling.

use super::*;
use navarch_client::{Event, store};

fn yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap()
}

fn claim(extra_meta: &str, spec: &str) -> PersistentVolumeClaim {
    yaml(&format!(
        "metadata: {{name: data-web-0, namespace: shop, uid: 1234-abcd{extra_meta}}}\nspec: {{{spec}}}"
    ))
}

const SPEC: &str =
    "storageClassName: local-path, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}";
const SELECTED: &str = ", annotations: {volume.kubernetes.io/selected-node: node-1}";

fn classes() -> Store<StorageClass> {
    let (reader, mut writer) = store::<StorageClass>();
    for c in [
        "metadata: {name: local-path}\nprovisioner: navarch.io/local-path\nreclaimPolicy: Retain\nmountOptions: [noatime]",
        "metadata: {name: other}\nprovisioner: example.com/nfs",
    ] {
        writer.apply(&Event::Apply(yaml(c)));
    }
    reader
}

#[test]
fn names_of_volumes_and_directories() {
    let c = claim("", SPEC);
    assert_eq!(volume_name("1234-abcd"), "pvc-1234-abcd");
    assert_eq!(dir_name(&c), "pvc-1234-abcd_shop_data-web-0");
    assert_eq!(claim_uid_of_dir("pvc-1234-abcd_shop_data-web-0"), Some("1234-abcd"));
    assert_eq!(claim_uid_of_dir("pvc-_shop_x"), None);
    assert_eq!(claim_uid_of_dir("lost+found"), None);
    assert_eq!(claim_uid_of_dir("pvc-1234"), None);
}

#[test]
fn only_directories_of_the_provisioner_are_removed() {
    let base = Path::new("/var/lib/navarch/kubelet/local-path");
    assert!(contained(base, &base.join("pvc-1_shop_data")));
    for bad in [
        "/var/lib/navarch/kubelet/local-path",
        "/var/lib/navarch/kubelet/local-path/../pods/pvc-1_shop_data",
        "/var/lib/navarch/kubelet/local-path/pvc-1_shop_data/..",
        "/var/lib/navarch/kubelet/local-path/./pvc-1_shop_data",
        "/var/lib/navarch/kubelet/local-path/sub/pvc-1_shop_data",
        "/var/lib/navarch/kubelet/local-path/other",
        "/etc",
        "/",
        "local-path/pvc-1_shop_data",
    ] {
        assert!(!contained(base, Path::new(bad)), "{bad}");
    }
}

#[test]
fn which_claims_this_node_provisions() {
    let cs = classes();
    assert_eq!(class_to_provision(&claim(SELECTED, SPEC), "node-1", &cs).unwrap().meta().name, "local-path");
    assert!(class_to_provision(&claim(SELECTED, SPEC), "node-2", &cs).is_none(), "another node's");
    assert!(class_to_provision(&claim("", SPEC), "node-1", &cs).is_none(), "not placed yet");
    let bound = format!("{SPEC}, volumeName: pv-x");
    assert!(class_to_provision(&claim(SELECTED, &bound), "node-1", &cs).is_none(), "bound");
    let other = "storageClassName: other, accessModes: [ReadWriteOnce]";
    assert!(class_to_provision(&claim(SELECTED, other), "node-1", &cs).is_none(), "another provisioner");
    let deleting = format!("{SELECTED}, deletionTimestamp: '2024-01-01T00:00:00Z'");
    assert!(class_to_provision(&claim(&deleting, SPEC), "node-1", &cs).is_none(), "being deleted");
    let unknown = "storageClassName: nope, accessModes: [ReadWriteOnce]";
    assert!(class_to_provision(&claim(SELECTED, unknown), "node-1", &cs).is_none());
}

#[test]
fn the_volume_of_a_claim() {
    let cs = classes();
    let class = cs.get(&ObjectRef::new("", "local-path")).unwrap();
    let path = Path::new("/var/lib/navarch/kubelet/local-path/pvc-1234-abcd_shop_data-web-0");
    let pv = volume_for(&claim(SELECTED, SPEC), &class, "node-1", path);
    let expected: PersistentVolume = yaml(
        "apiVersion: v1\nkind: PersistentVolume\n\
         metadata: {name: pvc-1234-abcd, annotations: {pv.kubernetes.io/provisioned-by: navarch.io/local-path}}\n\
         spec:\n  capacity: {storage: 1Gi}\n  \
         hostPath: {path: /var/lib/navarch/kubelet/local-path/pvc-1234-abcd_shop_data-web-0, type: DirectoryOrCreate}\n  \
         accessModes: [ReadWriteOnce]\n  \
         claimRef: {kind: PersistentVolumeClaim, apiVersion: v1, namespace: shop, name: data-web-0, uid: 1234-abcd}\n  \
         persistentVolumeReclaimPolicy: Retain\n  storageClassName: local-path\n  mountOptions: [noatime]\n  \
         volumeMode: Filesystem\n  \
         nodeAffinity: {required: {nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [node-1]}]}]}}\n",
    );
    assert_eq!(pv, expected);
    assert!(local_path::is_local_path_volume_of(&pv, "node-1"));
}

#[test]
fn released_volumes_with_delete_are_due() {
    let cs = classes();
    let class = cs.get(&ObjectRef::new("", "local-path")).unwrap();
    let mut pv = volume_for(&claim(SELECTED, SPEC), &class, "node-1", Path::new("/x/pvc-1_a_b"));
    pv.status = Some(yaml("phase: Released"));
    assert!(!due_for_deletion(&pv, "node-1"), "Retain");
    pv.spec.as_mut().unwrap().persistent_volume_reclaim_policy = "Delete".into();
    assert!(due_for_deletion(&pv, "node-1"));
    assert!(!due_for_deletion(&pv, "node-2"), "another node's");
    pv.status = Some(yaml("phase: Bound"));
    assert!(!due_for_deletion(&pv, "node-1"), "still bound");
    pv.status = Some(yaml("phase: Released"));
    pv.metadata.as_mut().unwrap().annotations.clear();
    assert!(!due_for_deletion(&pv, "node-1"), "not the provisioner's");
}

#[tokio::test]
async fn orphaned_directories_are_found_and_removed() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join(DIR);
    assert!(orphans(&base, &HashSet::new(), &HashSet::new()).unwrap().is_empty(), "no directory yet");
    for d in ["pvc-a_ns_one", "pvc-b_ns_two", "pvc-c_ns_three", "pvc-d_ns_retained", "lost+found"] {
        make_dir(base.join(d)).await.unwrap();
    }
    std::fs::write(base.join("pvc-a_ns_one/data"), "x").unwrap();
    std::fs::write(base.join("pvc-d_ns_retained/data"), "x").unwrap();
    let volumes: HashSet<String> = ["a".to_string()].into();
    let claims: HashSet<String> = ["b".to_string()].into();
    let found = orphans(&base, &volumes, &claims).unwrap();
    assert_eq!(found, vec![base.join("pvc-c_ns_three")], "empty and unowned only: data is never swept");
    remove_dir(found[0].clone()).await.unwrap();
    remove_dir(found[0].clone()).await.unwrap();
    assert!(!base.join("pvc-c_ns_three").exists());
    assert!(base.join("pvc-a_ns_one").is_dir() && base.join("lost+found").is_dir());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(base.join("pvc-a_ns_one")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o777);
}
