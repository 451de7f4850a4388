//! The StatefulSet controller in the controller-manager binary against a real api-server and etcd, with
//! no kubelets (a task plays them: a pod turns Running and Ready one beat after it appears, a deleted pod
//! lingers one beat before it goes). Ordered creation web-0, web-1, web-2 (each only once the previous one
//! is ready), a claim per ordinal mounted by its pod, per-pod DNS names in the headless Service's
//! Endpoints, a deleted pod back with the same claim, scale 3→1→3 keeping the claims, a rolling update
//! from the highest ordinal stopped by a partition, kubectl's rollout history/undo/status, and kill -9 of
//! the controller-manager during a scale-up (no ordinal ever has two pods; sampled throughout), the
//! Delete retention policy (claims owned by the set, and by the pod of an ordinal scaled away), and a claim
//! template without a storage request reported with the api-server's message.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use navarch_api::Resource;
use navarch_api::v1::{
    ControllerRevision, Endpoints, PersistentVolumeClaim, Pod, PodCondition, Service, StatefulSet,
};
use navarch_client::{Api, DeleteParams, ListParams};
use navarch_tests::{Daemon, Kubectl, TestEnv, eventually};

fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap()
}

fn start_controller_manager(env: &TestEnv) -> Daemon {
    Daemon::start(env, "controller-manager", "controller-manager", &["--node-monitor-grace-period=1h"])
}

const WEB: &str = "
metadata: {name: web}
spec:
  replicas: 3
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: 'nginx:1', volumeMounts: [{name: data, mountPath: /data}]}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
";

fn is_ready(p: &Pod) -> bool {
    p.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
}

/// Plays the kubelets until `stop`: a pod turns Running and Ready (with an IP) the beat after it is
/// first seen; a pod being deleted goes the beat after it is first seen terminating.
fn fake_kubelets(pods: Api<Pod>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen: HashMap<String, bool> = HashMap::new();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let all = pods.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
            for mut p in all {
                let uid = p.meta().uid.clone();
                let terminating = !p.meta().deletion_timestamp.is_empty();
                let known = seen.insert(uid, terminating);
                if terminating {
                    if known == Some(true) {
                        let params = DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
                        let _ = pods.delete(&p.meta().name, &params).await;
                    }
                } else if known.is_some() && !is_ready(&p) {
                    n += 1;
                    let status = p.status.get_or_insert_with(Default::default);
                    status.phase = "Running".into();
                    status.pod_ip = format!("10.244.7.{}", n % 250 + 1);
                    status.conditions = vec![PodCondition {
                        r#type: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                            .to_string(),
                        ..Default::default()
                    }];
                    let _ = pods.update_status(&p).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

/// What the sampler saw go wrong: an ordinal with two pods, or (while `ordered` is set) a pod whose
/// lower ordinals were not all ready when it appeared.
#[derive(Default)]
struct Sampled {
    violations: Vec<String>,
    samples: usize,
}

/// Samples the pods every 100 ms until `stop`.
fn sampler(
    pods: Api<Pod>,
    ordered: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Sampled>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut known: HashMap<String, String> = HashMap::new();
        while !stop.load(Ordering::Relaxed) {
            let Ok(list) = pods.list(&ListParams::default()).await else { continue };
            let mut by_ordinal: BTreeMap<i32, Vec<&Pod>> = BTreeMap::new();
            for p in &list.items {
                if let Some(o) = p.meta().name.strip_prefix("web-").and_then(|o| o.parse().ok()) {
                    by_ordinal.entry(o).or_default().push(p);
                }
            }
            let mut violations = Vec::new();
            for (o, ps) in &by_ordinal {
                if ps.len() > 1 {
                    violations.push(format!("web-{o} has {} pods", ps.len()));
                }
                let p = ps[0];
                let new =
                    known.insert(p.meta().name.clone(), p.meta().uid.clone()).as_ref() != Some(&p.meta().uid);
                if new && ordered.load(Ordering::Relaxed) {
                    let lower_ready = by_ordinal.range(..o).all(|(_, q)| is_ready(q[0]));
                    let contiguous = by_ordinal.range(..o).count() == usize::try_from(*o).unwrap();
                    if !lower_ready || !contiguous {
                        violations.push(format!("web-{o} appeared before its predecessors were ready"));
                    }
                }
            }
            {
                let mut s = out.lock().unwrap();
                s.samples += 1;
                s.violations.extend(violations);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// The names, images and readiness of the live (not terminating) web pods.
async fn live(pods: &Api<Pod>) -> Vec<(String, String, bool)> {
    let mut out: Vec<(String, String, bool)> = pods
        .list(&ListParams { label_selector: "app=web".into(), ..Default::default() })
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.meta().deletion_timestamp.is_empty())
        .map(|p| {
            let image = p.spec.as_ref().unwrap().containers[0].image.clone();
            (p.meta().name.clone(), image, is_ready(&p))
        })
        .collect();
    out.sort();
    out
}

/// Waits until exactly `want` (name, image) pods run, all ready.
async fn settled(pods: &Api<Pod>, want: &[(&str, &str)]) {
    eventually(format!("web pods {want:?}"), Duration::from_secs(60), async || {
        let now = live(pods).await;
        let ok = now.len() == want.len()
            && now.iter().zip(want).all(|((n, i, r), (wn, wi))| n == wn && i == wi && *r);
        if ok { Ok(()) } else { Err(format!("{now:?}")) }
    })
    .await;
}

/// The claims not being deleted (a deleted claim waits for the pvc-protection controller), by name.
async fn claims(api: &Api<PersistentVolumeClaim>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|c| c.meta().deletion_timestamp.is_empty())
        .map(|c| (c.meta().name.clone(), c.meta().uid.clone()))
        .collect();
    out.sort();
    out
}

async fn edit_set(sets: &Api<StatefulSet>, f: impl Fn(&mut StatefulSet)) {
    edit_set_named(sets, "web", f).await
}

async fn edit_set_named(sets: &Api<StatefulSet>, name: &str, f: impl Fn(&mut StatefulSet)) {
    for _ in 0..10 {
        let mut s = sets.get(name).await.unwrap();
        f(&mut s);
        match sets.update(&s).await {
            Ok(_) => return,
            Err(navarch_client::Error::Conflict(_)) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("could not update the StatefulSet");
}

fn set_image(img: &'static str) -> impl Fn(&mut StatefulSet) {
    move |s| {
        s.spec.as_mut().unwrap().template.as_mut().unwrap().spec.as_mut().unwrap().containers[0].image =
            img.into()
    }
}

#[tokio::test]
async fn statefulset_orders_keeps_claims_rolls_and_survives_restarts() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let sets: Api<StatefulSet> = c.api("default");
    let pvcs: Api<PersistentVolumeClaim> = c.api("default");
    let services: Api<Service> = c.api("default");
    let endpoints: Api<Endpoints> = c.api("default");
    let revisions: Api<ControllerRevision> = c.api("default");
    let mut cm = start_controller_manager(&env);
    let stop = Arc::new(AtomicBool::new(false));
    let ordered = Arc::new(AtomicBool::new(true));
    let sampled = Arc::new(Mutex::new(Sampled::default()));
    let kubelets = fake_kubelets(pods.clone(), stop.clone());
    let samples = sampler(pods.clone(), ordered.clone(), stop.clone(), sampled.clone());

    services
        .create(&from_yaml(
            "{metadata: {name: web}, spec: {clusterIP: None, selector: {app: web}, ports: [{name: http, port: 80}]}}",
        ))
        .await
        .unwrap();
    let set = sets.create(&from_yaml(WEB)).await.unwrap();

    // Ordered creation, one claim per ordinal, mounted by its pod.
    settled(&pods, &[("web-0", "nginx:1"), ("web-1", "nginx:1"), ("web-2", "nginx:1")]).await;
    let first_claims = claims(&pvcs).await;
    let names: Vec<&str> = first_claims.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["data-web-0", "data-web-1", "data-web-2"]);
    let claim = pvcs.get("data-web-1").await.unwrap();
    assert_eq!(claim.meta().labels.get("app").map(String::as_str), Some("web"));
    let web1 = pods.get("web-1").await.unwrap();
    let spec = web1.spec.as_ref().unwrap();
    assert_eq!((spec.hostname.as_str(), spec.subdomain.as_str()), ("web-1", "web"));
    let volume = spec.volumes.iter().find(|v| v.name == "data").unwrap();
    assert_eq!(volume.persistent_volume_claim.as_ref().unwrap().claim_name, "data-web-1");
    let owner = web1.meta().owner_references.iter().find(|r| r.controller == Some(true)).unwrap();
    assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("StatefulSet", set.meta().uid.as_str()));
    assert_eq!(
        web1.meta().labels.get("statefulset.kubernetes.io/pod-name").map(String::as_str),
        Some("web-1")
    );
    assert_eq!(web1.meta().labels.get("apps.kubernetes.io/pod-index").map(String::as_str), Some("1"));

    // The headless Service's Endpoints name each pod (its DNS name web-N.web.default.svc).
    eventually("hostnames in the Endpoints", Duration::from_secs(30), async || {
        let ep = endpoints.get_opt("web").await.unwrap().unwrap_or_default();
        let mut hosts: Vec<String> =
            ep.subsets.iter().flat_map(|s| s.addresses.iter().map(|a| a.hostname.clone())).collect();
        hosts.sort();
        if hosts == ["web-0", "web-1", "web-2"] { Ok(()) } else { Err(format!("{hosts:?}")) }
    })
    .await;

    // Status and events.
    eventually("the StatefulSet's status", Duration::from_secs(30), async || {
        let s = sets.get("web").await.unwrap();
        let st = s.status.clone().unwrap_or_default();
        let ok =
            (st.replicas, st.ready_replicas, st.available_replicas, st.current_replicas, st.updated_replicas)
                == (3, 3, 3, 3, 3)
                && st.observed_generation == s.meta().generation
                && !st.update_revision.is_empty()
                && st.current_revision == st.update_revision;
        if ok { Ok(()) } else { Err(format!("{st:?}")) }
    })
    .await;
    let (code, described, err) = env.navctl(&["describe", "statefulset", "web"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(described.contains("Replicas:           3 desired | 3 total"), "{described}");
    assert!(
        described.contains("Pods Status:        3 Running / 0 Waiting / 0 Succeeded / 0 Failed"),
        "{described}"
    );
    assert!(described.contains("Volume Claims:") && described.contains("[ReadWriteOnce]"), "{described}");
    let k = Kubectl::new(&env.api_server);
    let events = k.ok(&["get", "events"]).await;
    assert!(events.contains("create Claim data-web-0 Pod web-0 in StatefulSet web success"), "{events}");
    assert!(events.contains("create Pod web-2 in StatefulSet web successful"), "{events}");

    // A deleted pod comes back with the same claim.
    let old_uid = web1.meta().uid.clone();
    pods.delete("web-1", &DeleteParams::default()).await.unwrap();
    eventually("web-1 recreated", Duration::from_secs(30), async || {
        match pods.get_opt("web-1").await.unwrap() {
            Some(p) if p.meta().uid != old_uid && is_ready(&p) => Ok(()),
            other => Err(format!("{:?}", other.map(|p| p.meta().uid.clone()))),
        }
    })
    .await;
    assert_eq!(claims(&pvcs).await, first_claims, "the same claims");

    // Scale 3 → 1 → 3: the claims stay.
    let (code, scaled, err) = env.navctl(&["scale", "statefulset", "web", "--replicas=1"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(scaled.contains("statefulset.apps/web scaled"), "{scaled}");
    settled(&pods, &[("web-0", "nginx:1")]).await;
    assert_eq!(claims(&pvcs).await, first_claims, "scaling down keeps the claims");
    edit_set(&sets, |s| s.spec.as_mut().unwrap().replicas = Some(3)).await;
    settled(&pods, &[("web-0", "nginx:1"), ("web-1", "nginx:1"), ("web-2", "nginx:1")]).await;
    assert_eq!(claims(&pvcs).await, first_claims, "scaling up reuses the claims");

    // A rolling update with partition 2 replaces web-2 only; partition 0 the rest, from the top.
    edit_set(&sets, |s| {
        set_image("nginx:2")(s);
        let strategy = s.spec.as_mut().unwrap().update_strategy.as_mut().unwrap();
        strategy.rolling_update.get_or_insert_with(Default::default).partition = Some(2);
    })
    .await;
    settled(&pods, &[("web-0", "nginx:1"), ("web-1", "nginx:1"), ("web-2", "nginx:2")]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    settled(&pods, &[("web-0", "nginx:1"), ("web-1", "nginx:1"), ("web-2", "nginx:2")]).await;
    let st = sets.get("web").await.unwrap().status.unwrap();
    assert_ne!(st.current_revision, st.update_revision);
    assert_eq!((st.current_replicas, st.updated_replicas), (2, 1));
    let partitioned = k.ok(&["rollout", "status", "statefulset/web", "--timeout=30s"]).await;
    assert!(
        partitioned.contains("partitioned roll out complete: 1 new pods have been updated"),
        "{partitioned}"
    );
    let (code, ours, err) = env.navctl(&["rollout", "status", "statefulset/web", "--timeout=30s"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(ours, partitioned, "navctl says what kubectl says");
    edit_set(&sets, |s| {
        let strategy = s.spec.as_mut().unwrap().update_strategy.as_mut().unwrap();
        strategy.rolling_update.get_or_insert_with(Default::default).partition = Some(0);
    })
    .await;
    settled(&pods, &[("web-0", "nginx:2"), ("web-1", "nginx:2"), ("web-2", "nginx:2")]).await;

    // kubectl's rollout history, undo (a strategic merge patch of the revision's data) and status.
    let history = k.ok(&["rollout", "history", "statefulset/web"]).await;
    assert!(history.contains("REVISION  CHANGE-CAUSE"), "{history}");
    let undo = k.ok(&["rollout", "undo", "statefulset/web"]).await;
    assert!(undo.contains("statefulset.apps/web rolled back"), "{undo}");
    settled(&pods, &[("web-0", "nginx:1"), ("web-1", "nginx:1"), ("web-2", "nginx:1")]).await;
    let status = k.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]).await;
    // kubectl reads the defaulted rollingUpdate (partition 0) as a partitioned roll out.
    assert!(status.contains("partitioned roll out complete: 3 new pods have been updated"), "{status}");
    let revs = revisions.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(revs.len(), 2, "the first revision was reused: {revs:?}");
    // navctl's history and undo: back to nginx:2 and again to nginx:1.
    let (code, history, err) = env.navctl(&["rollout", "history", "statefulset/web"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        history.contains("statefulset.apps/web") && history.contains("REVISION  CHANGE-CAUSE"),
        "{history}"
    );
    let (code, undone, err) = env.navctl(&["rollout", "undo", "statefulset/web"]).await;
    assert_eq!((code, undone.trim()), (0, "statefulset.apps/web rolled back"), "{err}");
    settled(&pods, &[("web-0", "nginx:2"), ("web-1", "nginx:2"), ("web-2", "nginx:2")]).await;
    let (code, _, err) = env.navctl(&["rollout", "undo", "statefulset/web"]).await;
    assert_eq!(code, 0, "{err}");
    settled(&pods, &[("web-0", "nginx:1"), ("web-1", "nginx:1"), ("web-2", "nginx:1")]).await;

    // kill -9 of the controller-manager in a scale-up: it converges, in order, no ordinal twice.
    edit_set(&sets, |s| s.spec.as_mut().unwrap().replicas = Some(6)).await;
    eventually("web-3 created", Duration::from_secs(30), async || {
        if pods.get_opt("web-3").await.unwrap().is_some() { Ok(()) } else { Err("no web-3".to_string()) }
    })
    .await;
    cm.kill9();
    tokio::time::sleep(Duration::from_secs(1)).await;
    cm = start_controller_manager(&env);
    settled(
        &pods,
        &[
            ("web-0", "nginx:1"),
            ("web-1", "nginx:1"),
            ("web-2", "nginx:1"),
            ("web-3", "nginx:1"),
            ("web-4", "nginx:1"),
            ("web-5", "nginx:1"),
        ],
    )
    .await;
    assert_eq!(claims(&pvcs).await.len(), 6);

    // Retention policy Delete/Delete (Parallel): the set owns the claims; a claim of a pod scaled away
    // is owned by that pod and goes with it; the rest go with the set.
    ordered.store(false, Ordering::Relaxed);
    let db = WEB
        .replace("name: web}", "name: db}")
        .replace("app: web", "app: db")
        .replace("serviceName: web", "serviceName: db")
        .replace("replicas: 3", "replicas: 2\n  podManagementPolicy: Parallel\n  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Delete}");
    let db_set = sets.create(&from_yaml(&db)).await.unwrap();
    let db_claims = async || -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = pvcs
            .list(&ListParams { label_selector: "app=db".into(), ..Default::default() })
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|c| c.meta().deletion_timestamp.is_empty())
            .map(|c| {
                let owners =
                    c.meta().owner_references.iter().map(|r| format!("{}/{}", r.kind, r.name)).collect();
                (c.meta().name.clone(), owners)
            })
            .collect();
        out.sort();
        out
    };
    eventually("db's claims owned by the set", Duration::from_secs(30), async || {
        let now = db_claims().await;
        let want = vec![
            ("data-db-0".to_string(), vec!["StatefulSet/db".to_string()]),
            ("data-db-1".to_string(), vec!["StatefulSet/db".to_string()]),
        ];
        if now == want { Ok(()) } else { Err(format!("{now:?}")) }
    })
    .await;
    edit_set_named(&sets, "db", |s| s.spec.as_mut().unwrap().replicas = Some(1)).await;
    eventually("data-db-1 gone with db-1", Duration::from_secs(30), async || {
        let now = db_claims().await;
        let gone = pods.get_opt("db-1").await.unwrap().is_none();
        if gone && now == [("data-db-0".to_string(), vec!["StatefulSet/db".to_string()])] {
            Ok(())
        } else {
            Err(format!("{now:?}"))
        }
    })
    .await;
    sets.delete("db", &DeleteParams::default()).await.unwrap();
    eventually("db's pods and claims gone with it", Duration::from_secs(30), async || {
        let now = db_claims().await;
        let left = pods.get_opt("db-0").await.unwrap().is_some();
        if now.is_empty() && !left { Ok(()) } else { Err(format!("{now:?} db-0 left: {left}")) }
    })
    .await;
    let _ = db_set;
    assert_eq!(claims(&pvcs).await.len(), 6, "web's claims are kept");

    // A claim template without a storage request: the api-server refuses the claim, the set reports it
    // (and makes no pod).
    let bad = WEB
        .replace("name: web}", "name: nostorage}")
        .replace("app: web", "app: nostorage")
        .replace(", resources: {requests: {storage: 1Gi}}", "");
    sets.create(&from_yaml(&bad)).await.unwrap();
    let prefix = "create Claim data-nostorage-0 for Pod nostorage-0 in StatefulSet nostorage failed error: ";
    let message = eventually("FailedCreate of the claim", Duration::from_secs(30), async || {
        let events = k.ok(&["get", "events"]).await;
        match events.lines().find(|l| l.contains(prefix)) {
            Some(line) => Ok(line.to_string()),
            None => Err(events),
        }
    })
    .await;
    assert!(message.contains("FailedCreate") && message.contains("spec.resources[storage]"), "{message}");
    assert!(pods.get_opt("nostorage-0").await.unwrap().is_none(), "no pod without its claim");

    stop.store(true, Ordering::Relaxed);
    let _ = samples.await;
    let _ = kubelets.await;
    drop(cm);
    let s = sampled.lock().unwrap();
    assert!(s.samples > 50, "{} samples", s.samples);
    assert!(s.violations.is_empty(), "{:?}", s.violations);
}
