//! The persistent volume controllers in the controller-manager binary against a real api-server and
//! etcd (no kubelets, no scheduler: the test sets `volume.kubernetes.io/selected-node` and plays the
//! local-path provisioner). Static volumes bind to the smallest fit, pre-bound volumes and claims naming
//! a volume bind to each other, a claim nothing fits waits with Kubernetes' event, released volumes
//! follow their reclaim policy, WaitForFirstConsumer claims wait for the scheduler and are then handed
//! to the provisioner, the protection finalizers hold claims in use and bound volumes, and a
//! controller-manager killed between the writes of a binding converges when it comes back.
//!
//! The protection finalizers are added by the controllers here (the admission plugin that adds them
//! on create is not relied on).

use std::time::Duration;

use navarch_api::Resource;
use navarch_api::v1::{Event, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod, StorageClass};
use navarch_client::{Api, Client, DeleteParams, ListParams};
use navarch_tests::{Daemon, TestEnv, eventually};

const WAIT: Duration = Duration::from_secs(30);

fn start_controller_manager(env: &TestEnv) -> Daemon {
    Daemon::start(env, "controller-manager", "controller-manager", &["--leader-elect=false"])
}

fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap()
}

/// A hostPath volume of class "" (`extra`: more spec entries, flow style).
fn volume(name: &str, size: &str, policy: &str, extra: &str) -> PersistentVolume {
    from_yaml(&format!(
        "{{metadata: {{name: {name}}}, spec: {{capacity: {{storage: {size}}}, accessModes: [ReadWriteOnce], \
         storageClassName: '', persistentVolumeReclaimPolicy: {policy}, hostPath: {{path: /srv/{name}}}{extra}}}}}"
    ))
}

/// A ReadWriteOnce claim (`extra`: more spec entries, flow style).
fn claim(name: &str, size: &str, extra: &str) -> PersistentVolumeClaim {
    from_yaml(&format!(
        "{{metadata: {{name: {name}}}, spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: {size}}}}}{extra}}}}}"
    ))
}

/// The `claimRef` the controller writes for claim `c`.
fn claim_ref(c: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        kind: "PersistentVolumeClaim".into(),
        api_version: "v1".into(),
        namespace: c.meta().namespace.clone(),
        name: c.meta().name.clone(),
        uid: c.meta().uid.clone(),
        ..Default::default()
    }
}

fn phase_of_claim(c: &PersistentVolumeClaim) -> &str {
    c.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("")
}

fn phase_of_volume(v: &PersistentVolume) -> &str {
    v.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("")
}

fn annotation<'a, K: Resource>(o: &'a K, key: &str) -> Option<&'a str> {
    o.meta().annotations.get(key).map(String::as_str)
}

/// Waits until claim `name` is Bound to `volume` and the volume Bound to it; returns both.
async fn bound(
    claims: &Api<PersistentVolumeClaim>,
    volumes: &Api<PersistentVolume>,
    name: &str,
    volume: &str,
) -> (PersistentVolumeClaim, PersistentVolume) {
    eventually(format!("claim {name} bound to {volume}"), WAIT, async || {
        let c = claims.get(name).await.unwrap();
        let v = volumes.get(volume).await.unwrap();
        let volume_name = c.spec.as_ref().map(|s| s.volume_name.as_str()).unwrap_or("");
        let claim_ref = v.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
        let ok = phase_of_claim(&c) == "Bound"
            && phase_of_volume(&v) == "Bound"
            && volume_name == volume
            && claim_ref.is_some_and(|r| r.uid == c.meta().uid);
        if ok {
            Ok((c, v))
        } else {
            Err(format!("claim {:?} {:?}, volume {:?} {:?}", c.spec, c.status, v.spec, v.status))
        }
    })
    .await
}

async fn claim_phase(claims: &Api<PersistentVolumeClaim>, name: &str, phase: &str) {
    eventually(format!("claim {name} {phase}"), WAIT, async || {
        let c = claims.get(name).await.unwrap();
        if phase_of_claim(&c) == phase { Ok(()) } else { Err(format!("{:?}", c.status)) }
    })
    .await
}

async fn volume_phase(volumes: &Api<PersistentVolume>, name: &str, phase: &str) -> PersistentVolume {
    eventually(format!("volume {name} {phase}"), WAIT, async || {
        let v = volumes.get(name).await.unwrap();
        if phase_of_volume(&v) == phase { Ok(v) } else { Err(format!("{:?}", v.status)) }
    })
    .await
}

/// The (reason, message) of the events about `kind` `name`.
async fn events_of(c: &Client, namespace: &str, kind: &str, name: &str) -> Vec<(String, String)> {
    let events: Api<Event> = c.api(namespace);
    let l = events.list(&ListParams::default()).await.unwrap().items;
    l.into_iter()
        .filter(|e| e.involved_object.as_ref().is_some_and(|o| o.kind == kind && o.name == name))
        .map(|e| (e.reason, e.message))
        .collect()
}

async fn event_seen(c: &Client, namespace: &str, kind: &str, name: &str, reason: &str, message: &str) {
    eventually(format!("{kind} {name}: event {reason} {message:?}"), WAIT, async || {
        let seen = events_of(c, namespace, kind, name).await;
        if seen.iter().any(|(r, m)| r == reason && m == message) { Ok(()) } else { Err(format!("{seen:?}")) }
    })
    .await
}

async fn gone<K: Resource>(api: &Api<K>, name: &str) {
    eventually(format!("{} {name} gone", K::KIND), WAIT, async || api.get_opt(name).await.unwrap().is_none())
        .await
}

fn force() -> DeleteParams {
    DeleteParams { grace_period_seconds: Some(0), ..Default::default() }
}

#[tokio::test]
async fn static_volumes_bind_release_and_fail_as_kubernetes() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let volumes: Api<PersistentVolume> = c.api("");
    let claims: Api<PersistentVolumeClaim> = c.api("default");
    let _cm = start_controller_manager(&env);

    for v in [
        volume("pv-1g", "1Gi", "Retain", ""),
        volume("pv-2g", "2Gi", "Retain", ""),
        volume("pv-del", "3Gi", "Delete", ""),
        volume("pv-named", "5Gi", "Retain", ""),
        volume("pv-pre", "1Gi", "Retain", ", claimRef: {name: wants-pre, namespace: default}"),
    ] {
        volumes.create(&v).await.unwrap();
    }
    // (Only Available volumes are matched, as in Kubernetes.)
    for v in ["pv-1g", "pv-2g", "pv-del", "pv-named", "pv-pre"] {
        volume_phase(&volumes, v, "Available").await;
    }

    // The smallest Available fit (1Gi is too small, pv-pre is reserved).
    claims.create(&claim("a", "1500Mi", ", storageClassName: ''")).await.unwrap();
    let (a, pv) = bound(&claims, &volumes, "a", "pv-2g").await;
    assert_eq!(annotation(&pv, "pv.kubernetes.io/bound-by-controller"), Some("yes"));
    let r = pv.spec.as_ref().unwrap().claim_ref.clone().unwrap();
    assert_eq!(
        (r.kind.as_str(), r.namespace.as_str(), r.name.as_str()),
        ("PersistentVolumeClaim", "default", "a")
    );
    assert_eq!(annotation(&a, "pv.kubernetes.io/bind-completed"), Some("yes"));
    assert_eq!(annotation(&a, "pv.kubernetes.io/bound-by-controller"), Some("yes"));
    let st = a.status.clone().unwrap();
    assert_eq!(st.access_modes, ["ReadWriteOnce"]);
    assert_eq!(st.capacity.get("storage").map(|q| q.string.as_str()), Some("2Gi"));

    // A volume pre-bound to a claim gets it; a claim naming a volume gets it.
    claims.create(&claim("wants-pre", "1Gi", ", storageClassName: ''")).await.unwrap();
    let (_, pre) = bound(&claims, &volumes, "wants-pre", "pv-pre").await;
    assert_eq!(annotation(&pre, "pv.kubernetes.io/bound-by-controller"), None, "the user bound it");
    claims.create(&claim("by-name", "1Gi", ", storageClassName: '', volumeName: pv-named")).await.unwrap();
    let (named, named_pv) = bound(&claims, &volumes, "by-name", "pv-named").await;
    assert_eq!(annotation(&named, "pv.kubernetes.io/bound-by-controller"), None, "the user chose the volume");
    assert_eq!(annotation(&named, "pv.kubernetes.io/bind-completed"), Some("yes"));
    assert_eq!(annotation(&named_pv, "pv.kubernetes.io/bound-by-controller"), Some("yes"));

    // Larger than any volume: Pending, with Kubernetes' event.
    claims.create(&claim("huge", "10Gi", ", storageClassName: ''")).await.unwrap();
    event_seen(
        &c,
        "default",
        "PersistentVolumeClaim",
        "huge",
        "FailedBinding",
        "no persistent volumes available for this claim and no storage class is set",
    )
    .await;
    claim_phase(&claims, "huge", "Pending").await;
    // A class that does not exist.
    claims.create(&claim("gold", "1Gi", ", storageClassName: gold")).await.unwrap();
    event_seen(
        &c,
        "default",
        "PersistentVolumeClaim",
        "gold",
        "ProvisioningFailed",
        "storageclass.storage.k8s.io \"gold\" not found",
    )
    .await;

    // Released volumes: Retain stays Released; Delete of a volume no provisioner made fails.
    claims.create(&claim("b", "2500Mi", ", storageClassName: ''")).await.unwrap();
    bound(&claims, &volumes, "b", "pv-del").await;
    for name in ["a", "b"] {
        claims.delete(name, &DeleteParams::default()).await.unwrap();
        gone(&claims, name).await;
    }
    let failed = volume_phase(&volumes, "pv-del", "Failed").await;
    let message =
        "error getting deleter volume plugin for volume \"pv-del\": no deletable volume plugin matched";
    assert_eq!(failed.status.as_ref().unwrap().message, message);
    event_seen(&c, "", "PersistentVolume", "pv-del", "VolumeFailedDelete", message).await;
    volume_phase(&volumes, "pv-2g", "Released").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(phase_of_volume(&volumes.get("pv-2g").await.unwrap()), "Released", "Retain keeps it Released");
    // A freed 2Gi volume is not reused while Released: the next fitting claim waits.
    claims.create(&claim("c", "1500Mi", ", storageClassName: ''")).await.unwrap();
    claim_phase(&claims, "c", "Pending").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(phase_of_claim(&claims.get("c").await.unwrap()), "Pending");

    // pv-protection: a Bound volume being deleted stays until its claim is gone.
    let finalizers = |v: &PersistentVolume| v.meta().finalizers.clone();
    assert_eq!(finalizers(&volumes.get("pv-named").await.unwrap()), ["kubernetes.io/pv-protection"]);
    volumes.delete("pv-named", &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = volumes.get("pv-named").await.unwrap();
    assert!(!held.meta().deletion_timestamp.is_empty());
    assert_eq!(phase_of_volume(&held), "Bound");
    claims.delete("by-name", &DeleteParams::default()).await.unwrap();
    gone(&volumes, "pv-named").await;
    // A Released volume goes at once.
    volumes.delete("pv-2g", &DeleteParams::default()).await.unwrap();
    gone(&volumes, "pv-2g").await;
}

#[tokio::test]
async fn wait_for_first_consumer_provisioning_and_claim_protection() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let volumes: Api<PersistentVolume> = c.api("");
    let claims: Api<PersistentVolumeClaim> = c.api("default");
    let pods: Api<Pod> = c.api("default");
    let classes: Api<StorageClass> = c.api("");
    // A class the user made under the default's name is not overwritten.
    let mine: StorageClass = from_yaml("{metadata: {name: local-path}, provisioner: example.com/mine}");
    let _cm = start_controller_manager(&env);
    let sc =
        eventually("the default class", WAIT, async || classes.get_opt("local-path").await.unwrap()).await;
    assert_eq!(sc.provisioner, "navarch.io/local-path");
    assert_eq!(sc.volume_binding_mode.as_deref(), Some("WaitForFirstConsumer"));
    assert_eq!(sc.reclaim_policy.as_deref(), Some("Delete"));
    assert_eq!(annotation(&sc, "storageclass.kubernetes.io/is-default-class"), Some("true"));

    // A claim naming no class gets the default one.
    claims.create(&claim("data", "1Gi", "")).await.unwrap();
    eventually("data gets class local-path", WAIT, async || {
        let c = claims.get("data").await.unwrap();
        c.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()) == Some("local-path")
    })
    .await;
    event_seen(
        &c,
        "default",
        "PersistentVolumeClaim",
        "data",
        "WaitForFirstConsumer",
        "waiting for first consumer to be created before binding",
    )
    .await;
    let waiting = eventually("data protected and Pending", WAIT, async || {
        let c = claims.get("data").await.unwrap();
        (c.meta().finalizers == ["kubernetes.io/pvc-protection"] && phase_of_claim(&c) == "Pending")
            .then_some(c)
    })
    .await;
    assert_eq!(annotation(&waiting, "volume.kubernetes.io/storage-provisioner"), None);

    // The scheduler picked a node: the claim goes to the provisioner.
    eventually("selected-node set", WAIT, async || {
        let mut picked = claims.get("data").await.unwrap();
        picked.meta_mut().annotations.insert("volume.kubernetes.io/selected-node".into(), "n1".into());
        claims.update(&picked).await
    })
    .await;
    let handed = eventually("data handed to the provisioner", WAIT, async || {
        let c = claims.get("data").await.unwrap();
        (annotation(&c, "volume.kubernetes.io/storage-provisioner") == Some("navarch.io/local-path"))
            .then_some(c)
    })
    .await;
    assert_eq!(
        annotation(&handed, "volume.beta.kubernetes.io/storage-provisioner"),
        Some("navarch.io/local-path")
    );
    event_seen(
        &c,
        "default",
        "PersistentVolumeClaim",
        "data",
        "ExternalProvisioning",
        "Waiting for a volume to be created either by the external provisioner 'navarch.io/local-path' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.",
    )
    .await;

    // The provisioner's volume, pre-bound to the claim, is bound.
    let uid = handed.meta().uid.clone();
    let pv_name = format!("pvc-{uid}");
    let provisioned: PersistentVolume = from_yaml(&format!(
        "{{metadata: {{name: {pv_name}, annotations: {{pv.kubernetes.io/provisioned-by: navarch.io/local-path}}}}, \
         spec: {{capacity: {{storage: 1Gi}}, accessModes: [ReadWriteOnce], storageClassName: local-path, \
         persistentVolumeReclaimPolicy: Delete, hostPath: {{path: /var/lib/navarch/local-path/x, type: DirectoryOrCreate}}, \
         claimRef: {{apiVersion: v1, kind: PersistentVolumeClaim, namespace: default, name: data, uid: {uid}}}}}}}"
    ));
    volumes.create(&provisioned).await.unwrap();
    bound(&claims, &volumes, "data", &pv_name).await;

    // pvc-protection: a scheduled pod using the claim keeps it.
    let pod: Pod = from_yaml(
        "{metadata: {name: user}, spec: {nodeName: n1, containers: [{name: c, image: busybox:1.36}], \
         volumes: [{name: v, persistentVolumeClaim: {claimName: data}}]}}",
    );
    // (Retried until the namespace's default ServiceAccount exists.)
    eventually("pod user created", WAIT, async || pods.create(&pod).await).await;
    claims.delete("data", &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = claims.get("data").await.unwrap();
    assert!(!held.meta().deletion_timestamp.is_empty());
    assert_eq!(held.meta().finalizers, ["kubernetes.io/pvc-protection"]);
    pods.delete("user", &force()).await.unwrap();
    gone(&claims, "data").await;
    // Released; its deletion is the local-path provisioner's (no Failed here).
    volume_phase(&volumes, &pv_name, "Released").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(phase_of_volume(&volumes.get(&pv_name).await.unwrap()), "Released");

    // The user's own class of that name survives a restart of the controller-manager.
    drop(_cm);
    classes.delete("local-path", &DeleteParams::default()).await.unwrap();
    classes.create(&mine).await.unwrap();
    let _cm = start_controller_manager(&env);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(classes.get("local-path").await.unwrap().provisioner, "example.com/mine");
}

#[tokio::test]
async fn a_binding_interrupted_by_kill9_converges() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let volumes: Api<PersistentVolume> = c.api("");
    let claims: Api<PersistentVolumeClaim> = c.api("default");
    let mut cm = start_controller_manager(&env);
    for v in ["pv-a", "pv-b", "pv-c"] {
        volumes.create(&volume(v, "1Gi", "Retain", "")).await.unwrap();
    }
    claims.create(&claim("done", "1Gi", ", storageClassName: '', volumeName: pv-c")).await.unwrap();
    bound(&claims, &volumes, "done", "pv-c").await;
    volume_phase(&volumes, "pv-a", "Available").await;
    volume_phase(&volumes, "pv-b", "Available").await;

    // Killed; then the states a crash between the binding's writes leaves behind.
    cm.kill9();
    // 1. Only the volume's claimRef written.
    let half = claims.create(&claim("half", "1Gi", ", storageClassName: ''")).await.unwrap();
    let mut pv = volumes.get("pv-a").await.unwrap();
    pv.spec.as_mut().unwrap().claim_ref = Some(claim_ref(&half));
    pv.meta_mut().annotations.insert("pv.kubernetes.io/bound-by-controller".into(), "yes".into());
    volumes.update(&pv).await.unwrap();
    // 2. Everything but the claim's status.
    let late = claims.create(&claim("late", "1Gi", ", storageClassName: ''")).await.unwrap();
    let mut pv = volumes.get("pv-b").await.unwrap();
    pv.spec.as_mut().unwrap().claim_ref = Some(claim_ref(&late));
    let pv = volumes.update(&pv).await.unwrap();
    let mut pv = pv.clone();
    pv.status.get_or_insert_with(Default::default).phase = "Bound".into();
    volumes.update_status(&pv).await.unwrap();
    let mut late = late.clone();
    late.spec.as_mut().unwrap().volume_name = "pv-b".into();
    for a in ["pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller"] {
        late.meta_mut().annotations.insert(a.into(), "yes".into());
    }
    claims.update(&late).await.unwrap();
    // 3. A bound claim deleted while no controller runs.
    let mut done = claims.get("done").await.unwrap();
    done.meta_mut().finalizers.clear();
    claims.update(&done).await.unwrap();
    claims.delete("done", &DeleteParams::default()).await.unwrap();
    gone(&claims, "done").await;

    cm = start_controller_manager(&env);
    bound(&claims, &volumes, "half", "pv-a").await;
    let (late, _) = bound(&claims, &volumes, "late", "pv-b").await;
    assert_eq!(late.status.unwrap().capacity.get("storage").map(|q| q.string.as_str()), Some("1Gi"));
    volume_phase(&volumes, "pv-c", "Released").await;

    // Killed right after a claim appears: bound after the restart, to one volume only.
    volumes.create(&volume("pv-d", "1Gi", "Retain", "")).await.unwrap();
    volumes.create(&volume("pv-e", "1Gi", "Retain", "")).await.unwrap();
    volume_phase(&volumes, "pv-d", "Available").await;
    volume_phase(&volumes, "pv-e", "Available").await;
    claims.create(&claim("quick", "1Gi", ", storageClassName: ''")).await.unwrap();
    cm.kill9();
    let _cm = start_controller_manager(&env);
    let got = eventually("quick bound", WAIT, async || {
        let c = claims.get("quick").await.unwrap();
        (phase_of_claim(&c) == "Bound").then(|| c.spec.unwrap().volume_name)
    })
    .await;
    bound(&claims, &volumes, "quick", &got).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let claimed: Vec<String> = volumes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|v| v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).is_some_and(|r| r.name == "quick"))
        .map(|v| v.meta().name.clone())
        .collect();
    assert_eq!(claimed, [got]);
}
