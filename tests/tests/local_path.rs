//! The kubelet's local-path provisioner agent, run as a library with node-1's credentials against a real
//! api-server and etcd (no kubelet process, no containers; the test plays the PV controller): a claim the
//! scheduler placed on node-1 gets its directory and a pre-bound volume with node-1's affinity and the
//! Provisioning events; the volume released with reclaim policy Delete loses its directory and goes;
//! an orphaned directory is swept at start. The Node authorizer and NodeRestriction let node-1 do
//! exactly that: node-2 may not delete node-1's volume, no node may create a volume of another kind.

use std::time::Duration;

use navarch_api::Resource;
use navarch_api::v1::{Event, PersistentVolume, PersistentVolumeClaim, StorageClass};
use navarch_client::{DeleteParams, EventRecorder, ListParams};
use navarch_kubelet::local_path::LocalPath;
use navarch_tests::{TestEnv, eventually};
use tokio_util::sync::CancellationToken;

fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap()
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn node_agent_provisions_and_deletes_its_own_volumes() {
    let env = TestEnv::start().await;
    let localhost = ["127.0.0.1".parse().expect("an address")];
    env.pki().node("node-1", &localhost);
    env.pki().node("node-2", &localhost);
    let admin = env.client().await;
    let node1 = env.client_as("nodes/node-1/kubelet-client").await;
    let node2 = env.client_as("nodes/node-2/kubelet-client").await;

    let class: StorageClass = from_yaml(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: local-path}\n\
         provisioner: navarch.io/local-path\nreclaimPolicy: Delete\nvolumeBindingMode: WaitForFirstConsumer",
    );
    admin.api::<StorageClass>("").create(&class).await.expect("class");
    let claim: PersistentVolumeClaim = from_yaml(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: default, annotations: \
         {volume.kubernetes.io/selected-node: node-1}}\nspec: {storageClassName: local-path, accessModes: \
         [ReadWriteOnce], resources: {requests: {storage: 64Mi}}}",
    );
    let claim = admin.api::<PersistentVolumeClaim>("default").create(&claim).await.expect("claim");
    let uid = claim.meta().uid.clone();
    // Another node's claim is not node-1's to provision.
    let theirs: PersistentVolumeClaim = from_yaml(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: theirs, namespace: default, annotations: \
         {volume.kubernetes.io/selected-node: node-2}}\nspec: {storageClassName: local-path, accessModes: \
         [ReadWriteOnce], resources: {requests: {storage: 64Mi}}}",
    );
    admin.api::<PersistentVolumeClaim>("default").create(&theirs).await.expect("claim");

    let root = tempfile::tempdir().expect("temp dir");
    let base = root.path().join("local-path");
    // An empty directory no volume or claim owns (a crash between mkdir and the volume's create) is
    // swept; one with data stays (a Retain volume an administrator deleted by hand).
    let orphan = base.join("pvc-gone-uid_default_old");
    std::fs::create_dir_all(&orphan).expect("orphan");
    let kept = base.join("pvc-kept-uid_default_retained");
    std::fs::create_dir_all(&kept).expect("kept");
    std::fs::write(kept.join("leftover"), "x").expect("kept file");

    let shutdown = CancellationToken::new();
    let (events, sender) = EventRecorder::new(node1.clone(), "navarch.io/local-path", "node-1", 100);
    tokio::spawn(sender);
    let agent = tokio::spawn(LocalPath::run(
        node1.clone(),
        "node-1".into(),
        root.path().to_path_buf(),
        events,
        shutdown.clone(),
    ));

    let volumes = admin.api::<PersistentVolume>("");
    let name = format!("pvc-{uid}");
    let pv =
        eventually("the volume is provisioned", WAIT, async || volumes.get_opt(&name).await.ok().flatten())
            .await;
    let dir = base.join(format!("pvc-{uid}_default_data"));
    assert!(dir.is_dir(), "{}", dir.display());
    let spec = pv.spec.clone().expect("spec");
    assert_eq!(spec.host_path.as_ref().map(|h| h.path.clone()), Some(dir.display().to_string()));
    assert_eq!(
        spec.claim_ref.as_ref().map(|r| (r.name.as_str(), r.uid.as_str())),
        Some(("data", uid.as_str()))
    );
    assert_eq!(spec.persistent_volume_reclaim_policy, "Delete");
    assert_eq!(spec.capacity.get("storage").map(|q| q.string.clone()), Some("64Mi".to_string()));
    assert_eq!(navarch_api::local_path::affinity_node(&pv), Some("node-1"));
    assert!(!orphan.exists(), "the empty orphaned directory is swept at start");
    assert!(kept.join("leftover").exists(), "a directory with data is never swept");
    let reasons = eventually("the provisioning events", WAIT, async || {
        let events = admin.api::<Event>("default").list(&ListParams::default()).await.ok()?;
        let mut reasons: Vec<(String, String)> = events
            .items
            .into_iter()
            .filter(|e| e.involved_object.as_ref().is_some_and(|o| o.name == "data"))
            .map(|e| (e.reason, e.message))
            .collect();
        reasons.sort();
        (reasons.len() >= 2).then_some(reasons)
    })
    .await;
    assert_eq!(
        reasons,
        [
            (
                "Provisioning".to_string(),
                "External provisioner is provisioning volume for claim \"default/data\"".to_string()
            ),
            ("ProvisioningSucceeded".to_string(), format!("Successfully provisioned volume {name}")),
        ]
    );
    let all = volumes.list(&ListParams::default()).await.expect("volumes").items;
    assert_eq!(all.len(), 1, "node-2's claim is not node-1's to provision");

    // NodeRestriction: node-2 may not delete it; no node may make a volume that is not its own.
    let err = node2.api::<PersistentVolume>("").delete(&name, &DeleteParams::default()).await.unwrap_err();
    assert!(
        err.to_string().contains("can only delete persistentvolumes with node affinity to itself"),
        "{err}"
    );
    let mut foreign = pv.clone();
    foreign.metadata.as_mut().expect("meta").name = "sneaky".into();
    foreign.metadata.as_mut().expect("meta").resource_version.clear();
    foreign.metadata.as_mut().expect("meta").uid.clear();
    let err = node2.api::<PersistentVolume>("").create(&foreign).await.unwrap_err();
    assert!(
        err.to_string().contains("can only create persistentvolumes with node affinity to itself"),
        "{err}"
    );
    foreign.metadata.as_mut().expect("meta").annotations.clear();
    let err = node1.api::<PersistentVolume>("").create(&foreign).await.unwrap_err();
    assert!(err.to_string().contains("provisioned by \"navarch.io/local-path\""), "{err}");

    // The claim is gone and the volume Released (the PV controller's part): directory and volume go.
    std::fs::write(dir.join("data"), "kept until released").expect("data");
    let mut released = volumes.get(&name).await.expect("volume");
    released.status.get_or_insert_with(Default::default).phase = "Released".into();
    volumes.update_status(&released).await.expect("released");
    let deleting = eventually("the released volume is deleted", WAIT, async || {
        let v = volumes.get_opt(&name).await.ok()?;
        match v {
            Some(v) if v.meta().deletion_timestamp.is_empty() => None,
            other => Some(other),
        }
    })
    .await;
    assert!(!dir.exists(), "the directory is removed");
    // The pv-protection finalizer (StorageObjectInUseProtection) keeps it until its controller lets go.
    if let Some(mut v) = deleting {
        v.metadata.as_mut().expect("meta").finalizers.clear();
        volumes.update(&v).await.expect("finalizer removed");
    }
    eventually("the volume is gone", WAIT, async || {
        volumes.get_opt(&name).await.ok().is_some_and(|v| v.is_none())
    })
    .await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), agent).await.expect("the agent stops").expect("no panic");
}
