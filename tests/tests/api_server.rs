//! The api-server against a real etcd: Kubernetes' storage semantics through the gRPC API.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{ConfigMap, Container, Namespace, ObjectMeta, Pod, PodSpec, PodStatus};
use navarch_client::{Api, DeleteParams, Error, ListParams, PodBinding, WatchEvent, WatchParams};
use navarch_tests::{TestEnv, eventually};

fn meta(name: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta { name: name.into(), ..Default::default() })
}

fn cm(name: &str, v: &str) -> ConfigMap {
    ConfigMap { metadata: meta(name), data: [("k".to_string(), v.to_string())].into(), ..Default::default() }
}

fn pod(name: &str) -> Pod {
    Pod {
        metadata: meta(name),
        spec: Some(PodSpec {
            containers: vec![Container { name: "c".into(), image: "busybox".into(), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn next_event<K: Resource>(s: &mut navarch_client::WatchStream<K>) -> WatchEvent<K> {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), s.next()).await.expect("watch event in time");
        match ev.expect("stream open").expect("event") {
            WatchEvent::Bookmark(_) => continue,
            e => return e,
        }
    }
}

#[tokio::test]
async fn create_get_update_delete_and_conflicts() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let cms: Api<ConfigMap> = c.api("default");

    let created = cms.create(&cm("a", "1")).await.unwrap();
    let m = created.meta();
    assert!(!m.uid.is_empty() && !m.creation_timestamp.is_empty() && !m.resource_version.is_empty());
    assert_eq!(created.kind, "ConfigMap");
    assert!(matches!(cms.create(&cm("a", "1")).await, Err(Error::AlreadyExists(_))));

    let got = cms.get("a").await.unwrap();
    assert_eq!(got, created);

    let mut changed = got.clone();
    changed.data.insert("k".into(), "2".into());
    let updated = cms.update(&changed).await.unwrap();
    assert_ne!(updated.meta().resource_version, got.meta().resource_version);
    assert_eq!(updated.meta().uid, got.meta().uid);

    // The old resourceVersion is stale now.
    let err = cms.update(&changed).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(err.to_string().contains("the object has been modified"), "{err}");

    // No resourceVersion: unconditional.
    let mut blind = cm("a", "3");
    blind.meta_mut().resource_version.clear();
    assert_eq!(cms.update(&blind).await.unwrap().data["k"], "3");

    let d = cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(!d.pending);
    assert!(matches!(cms.get("a").await, Err(Error::NotFound(_))));
    assert!(matches!(cms.delete("a", &DeleteParams::default()).await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn namespaces_exist_and_are_required() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let ns: Api<Namespace> = c.api("");
    let names: BTreeSet<String> =
        ns.list(&ListParams::default()).await.unwrap().items.iter().map(|n| n.meta().name.clone()).collect();
    for want in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(names.contains(want), "{names:?}");
    }
    let err = c.api::<ConfigMap>("nowhere").create(&cm("x", "1")).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert!(err.to_string().contains("namespaces \"nowhere\" not found"), "{err}");
    assert!(matches!(
        ns.delete("default", &DeleteParams::default()).await,
        Err(Error::FailedPrecondition(_))
    ));
}

#[tokio::test]
async fn status_subresource_and_generation() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let p = pods.create(&pod("p")).await.unwrap();
    assert_eq!(p.meta().generation, 1);
    // A new pod's status is Kubernetes' initial one.
    let initial = p.status.clone().unwrap();
    assert_eq!((initial.phase.as_str(), initial.qos_class.as_str()), ("Pending", "BestEffort"));

    // Status through update is ignored; through update_status it is stored and the spec is untouched.
    let mut with_status = p.clone();
    with_status.status = Some(PodStatus { phase: "Running".into(), ..Default::default() });
    with_status.spec.as_mut().unwrap().active_deadline_seconds = Some(5);
    let u = pods.update(&with_status).await.unwrap();
    assert_eq!(u.status.as_ref().map(|s| s.phase.as_str()).unwrap_or(""), "Pending");
    assert_eq!(u.meta().generation, 2, "spec changed");

    let mut s = u.clone();
    s.status = Some(PodStatus { phase: "Running".into(), ..Default::default() });
    s.spec.as_mut().unwrap().active_deadline_seconds = Some(99);
    let st = pods.update_status(&s).await.unwrap();
    assert_eq!(st.status.as_ref().unwrap().phase, "Running");
    assert_eq!(st.spec.as_ref().unwrap().active_deadline_seconds, Some(5), "status update leaves spec");
    assert_eq!(st.meta().generation, 2, "status changes do not bump generation");

    let mut labels_only = st.clone();
    labels_only.meta_mut().labels.insert("a".into(), "b".into());
    assert_eq!(
        pods.update(&labels_only).await.unwrap().meta().generation,
        2,
        "metadata changes do not bump generation"
    );
}

#[tokio::test]
async fn finalizers_block_deletion_and_graceful_pods() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let cms: Api<ConfigMap> = c.api("default");
    let mut f = cm("f", "1");
    f.meta_mut().finalizers = vec!["example.com/hold".into()];
    cms.create(&f).await.unwrap();
    let d = cms.delete("f", &DeleteParams::default()).await.unwrap();
    assert!(d.pending);
    let held = cms.get("f").await.unwrap();
    assert!(!held.meta().deletion_timestamp.is_empty());
    let mut add = held.clone();
    add.meta_mut().finalizers.push("example.com/more".into());
    assert!(matches!(cms.update(&add).await, Err(Error::Invalid(_))), "no new finalizers while deleting");
    let mut release = held.clone();
    release.meta_mut().finalizers.clear();
    cms.update(&release).await.unwrap();
    assert!(matches!(cms.get("f").await, Err(Error::NotFound(_))), "removed once finalizers are cleared");

    // A pod bound to a node waits for its kubelet; grace 0 removes it.
    let pods: Api<Pod> = c.api("default");
    pods.create(&pod("g")).await.unwrap();
    c.bind("default", "g", "", "node-1").await.unwrap();
    let d = pods.delete("g", &DeleteParams::default()).await.unwrap();
    assert!(d.pending);
    assert_eq!(d.object.meta().deletion_grace_period_seconds, Some(30));
    let d = pods
        .delete("g", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
        .await
        .unwrap();
    assert!(!d.pending);
    // An unbound pod goes at once.
    pods.create(&pod("h")).await.unwrap();
    assert!(!pods.delete("h", &DeleteParams::default()).await.unwrap().pending);
    // A bound pod whose last finalizer goes during its grace period still waits for its kubelet.
    let mut held = pod("k");
    held.meta_mut().finalizers = vec!["batch.kubernetes.io/job-tracking".into()];
    pods.create(&held).await.unwrap();
    c.bind("default", "k", "", "node-1").await.unwrap();
    assert!(pods.delete("k", &DeleteParams::default()).await.unwrap().pending);
    let mut freed = pods.get("k").await.unwrap();
    freed.meta_mut().finalizers.clear();
    pods.update(&freed).await.unwrap();
    let left = pods.get("k").await.unwrap();
    assert_eq!(left.meta().deletion_grace_period_seconds, Some(30), "still terminating");
    let d = pods
        .delete("k", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
        .await
        .unwrap();
    assert!(!d.pending);
}

#[tokio::test]
async fn bind_sets_node_and_condition_once() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let p = pods.create(&pod("b")).await.unwrap();
    c.bind("default", "b", &p.meta().uid, "node-a").await.unwrap();
    let b = pods.get("b").await.unwrap();
    assert_eq!(b.spec.as_ref().unwrap().node_name, "node-a");
    let cond = &b.status.as_ref().unwrap().conditions[0];
    assert_eq!((cond.r#type.as_str(), cond.status.as_str()), ("PodScheduled", "True"));
    let err = c.bind("default", "b", "", "node-b").await.unwrap_err();
    assert!(err.to_string().contains("already assigned"), "{err}");
}

/// A bind right after a create uses the api-server's memory of that pod; when another api-server
/// changed the pod in between, the bind must act on what etcd holds.
#[tokio::test]
async fn bind_after_changes_through_another_api_server() {
    let env = TestEnv::start().await;
    let other = navarch_tests::ApiServer::start(&env.etcd).await;
    let a = env.client().await;
    let b = navarch_client::Client::connect(&other.connection("admin")).await.unwrap();
    let pods_a: Api<Pod> = a.api("default");
    let pods_b: Api<Pod> = b.api("default");

    // Re-created elsewhere with a new uid: the bind for the new uid succeeds.
    let first = pods_a.create(&pod("re")).await.unwrap();
    pods_b.delete("re", &DeleteParams::default()).await.unwrap();
    let second = pods_b.create(&pod("re")).await.unwrap();
    assert_ne!(first.meta().uid, second.meta().uid);
    a.bind("default", "re", &second.meta().uid, "node-a").await.unwrap();
    let bound = pods_b.get("re").await.unwrap();
    assert_eq!(bound.meta().uid, second.meta().uid);
    assert_eq!(bound.spec.as_ref().unwrap().node_name, "node-a");

    // Bound elsewhere: the bind is refused, naming the node etcd holds.
    let p = pods_a.create(&pod("taken")).await.unwrap();
    b.bind("default", "taken", &p.meta().uid, "node-x").await.unwrap();
    let err = a.bind("default", "taken", &p.meta().uid, "node-a").await.unwrap_err();
    assert!(err.to_string().contains("node-x"), "{err}");

    // The old uid no longer matches anything.
    let p = pods_a.create(&pod("gone")).await.unwrap();
    pods_b.delete("gone", &DeleteParams::default()).await.unwrap();
    pods_b.create(&pod("gone")).await.unwrap();
    let err = a.bind("default", "gone", &p.meta().uid, "node-a").await.unwrap_err();
    assert!(err.to_string().to_lowercase().contains("uid"), "{err}");
}

/// The scheduler's batched bindings: each answered on its own, the ones that can be made written in
/// one transaction (one resourceVersion), a watch resuming at it sent all of them again, and each
/// binding authorized on its own.
#[tokio::test]
async fn bind_many_answers_each_binding() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let system: Api<Pod> = c.api("kube-system");
    for name in ["a", "b", "c", "d"] {
        pods.create(&pod(name)).await.unwrap();
    }
    system.create(&pod("s")).await.unwrap();
    c.bind("default", "c", "", "node-0").await.unwrap();
    let binding = |ns: &str, name: &str, uid: &str, node: &str| PodBinding {
        namespace: ns.into(),
        name: name.into(),
        uid: uid.into(),
        node: node.into(),
    };
    let outcomes = c
        .bind_many(&[
            binding("default", "a", "", "node-1"),
            binding("default", "b", "not-its-uid", "node-1"),
            binding("default", "c", "", "node-1"),
            binding("default", "nope", "", "node-1"),
            binding("default", "d", "", ""),
            binding("kube-system", "s", "", "node-2"),
        ])
        .await
        .unwrap();
    let errors: Vec<String> =
        outcomes.iter().map(|o| o.as_ref().err().map(|e| e.to_string()).unwrap_or_default()).collect();
    assert!(outcomes[0].is_ok() && outcomes[5].is_ok(), "{errors:?}");
    assert!(errors[1].contains("UID in precondition: not-its-uid"), "{errors:?}");
    assert!(errors[2].contains("pod c is already assigned to node \"node-0\""), "{errors:?}");
    assert!(matches!(outcomes[3], Err(Error::NotFound(_))), "{errors:?}");
    assert!(errors[4].contains("target.name: Required value"), "{errors:?}");
    let rv = outcomes[0].as_ref().unwrap().clone();
    assert_eq!(outcomes[5].as_ref().unwrap(), &rv, "one transaction, one revision");
    let node_of = |p: Pod| p.spec.unwrap().node_name;
    assert_eq!(node_of(pods.get("a").await.unwrap()), "node-1");
    assert_eq!(node_of(pods.get("b").await.unwrap()), "");
    assert_eq!(node_of(pods.get("c").await.unwrap()), "node-0");
    assert_eq!(node_of(system.get("s").await.unwrap()), "node-2");

    // A watch resuming at the shared revision is sent both bindings again.
    let all: Api<Pod> = c.api("");
    let mut s = all.watch(&WatchParams { resource_version: rv.clone(), ..Default::default() }).await.unwrap();
    let mut again = BTreeSet::new();
    for _ in 0..2 {
        match next_event(&mut s).await {
            WatchEvent::Modified(p) => {
                again.insert((p.meta().name.clone(), p.meta().resource_version.clone()))
            }
            other => panic!("{other:?}"),
        };
    }
    assert_eq!(again, BTreeSet::from([("a".to_string(), rv.clone()), ("s".to_string(), rv.clone())]));

    // Authorized binding by binding: a user who may bind in default only.
    let rbac = navarch_api::manifest::parse(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: binder, namespace: default}\nrules: [{apiGroups: [''], resources: [pods/binding], verbs: [create]}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: binder, namespace: default}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: binder}\nsubjects: [{kind: User, name: binder}]\n",
        "rbac",
    )
    .unwrap();
    for o in rbac {
        c.create(&o).await.unwrap();
    }
    system.create(&pod("t")).await.unwrap();
    let binder = env.client_as(&env.api_server.pki().user("binder", &[])).await;
    eventually("the binder may bind in default", Duration::from_secs(10), async || {
        let o = binder.bind_many(&[binding("default", "d", "", "node-3"), binding("kube-system", "t", "", "node-3")]).await;
        let o = o.map_err(|e| e.to_string())?;
        match (&o[0], &o[1]) {
            (Ok(_), Err(e)) => {
                let e = e.to_string();
                assert!(e.contains(r#"User "binder" cannot create resource "pods/binding" in API group "" in the namespace "kube-system""#), "{e}");
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(node_of(pods.get("d").await.unwrap()), "node-3");
    assert_eq!(node_of(system.get("t").await.unwrap()), "");
}

/// A field-selector watcher sees a change into or out of its selection as ADDED / DELETED, judged on the
/// previous object — which the watch cache keeps itself, also for pods stored before the api-server
/// started (it seeds from etcd) — and a deletion carries the object as last stored.
#[tokio::test]
async fn selector_transitions_use_the_previous_object() {
    let mut env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    pods.create(&pod("early")).await.unwrap();
    env.api_server.restart().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    let rv = pods.list(&ListParams::default()).await.unwrap().resource_version;
    let on_node = WatchParams {
        field_selector: "spec.nodeName=node-1".into(),
        resource_version: rv,
        ..Default::default()
    };
    let mut s = pods.watch(&on_node).await.unwrap();
    c.bind("default", "early", "", "node-1").await.unwrap();
    assert!(matches!(next_event(&mut s).await, WatchEvent::Added(p) if p.meta().name == "early"));
    pods.create(&pod("late")).await.unwrap();
    c.bind("default", "late", "", "node-1").await.unwrap();
    assert!(matches!(next_event(&mut s).await, WatchEvent::Added(p) if p.meta().name == "late"));
    let mut late = pods.get("late").await.unwrap();
    late.meta_mut().labels.insert("tier".into(), "web".into());
    pods.update(&late).await.unwrap();
    assert!(
        matches!(next_event(&mut s).await, WatchEvent::Modified(p) if p.meta().labels.contains_key("tier"))
    );
    pods.delete("early", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
        .await
        .unwrap();
    match next_event(&mut s).await {
        WatchEvent::Deleted(p) => assert_eq!((p.meta().name.as_str(), node_name(&p)), ("early", "node-1")),
        other => panic!("{other:?}"),
    }
}

fn node_name(p: &Pod) -> &str {
    p.spec.as_ref().map(|s| s.node_name.as_str()).unwrap_or_default()
}

#[tokio::test]
async fn list_paging_and_selectors() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let pods: Api<Pod> = c.api("default");
    for i in 0..25 {
        let mut p = pod(&format!("p{i:02}"));
        p.meta_mut().labels.insert("parity".into(), if i % 2 == 0 { "even" } else { "odd" }.into());
        pods.create(&p).await.unwrap();
        if i < 3 {
            c.bind("default", &format!("p{i:02}"), "", "node-x").await.unwrap();
        }
    }
    let mut names = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = pods
            .list(&ListParams { limit: 10, continue_token: token.clone(), ..Default::default() })
            .await
            .unwrap();
        pages += 1;
        names.extend(page.items.iter().map(|p| p.meta().name.clone()));
        if page.continue_token.is_empty() {
            break;
        }
        token = page.continue_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 25);

    let even =
        pods.list(&ListParams { label_selector: "parity=even".into(), ..Default::default() }).await.unwrap();
    assert_eq!(even.items.len(), 13);
    let on_node = pods
        .list(&ListParams { field_selector: "spec.nodeName=node-x".into(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(on_node.items.len(), 3);
    let by_name = pods
        .list(&ListParams { field_selector: "metadata.name=p07".into(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let both = pods
        .list(&ListParams {
            label_selector: "parity=odd".into(),
            field_selector: "spec.nodeName!=node-x".into(),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(both.items.len(), 5);
    assert!(both.items.iter().all(|p| p.meta().labels["parity"] == "odd"));
    let err = pods
        .list(&ListParams { field_selector: "spec.bogus=1".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
}

#[tokio::test]
async fn watch_from_resource_version_in_order() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let cms: Api<ConfigMap> = c.api("default");
    let start = cms.list(&ListParams::default()).await.unwrap().resource_version;
    let a = cms.create(&cm("w", "1")).await.unwrap();
    let mut a2 = a.clone();
    a2.data.insert("k".into(), "2".into());
    cms.update(&a2).await.unwrap();
    cms.delete("w", &DeleteParams::default()).await.unwrap();

    let mut s = cms.watch(&WatchParams { resource_version: start, ..Default::default() }).await.unwrap();
    assert!(matches!(next_event(&mut s).await, WatchEvent::Added(o) if o.data["k"] == "1"));
    assert!(matches!(next_event(&mut s).await, WatchEvent::Modified(o) if o.data["k"] == "2"));
    assert!(matches!(next_event(&mut s).await, WatchEvent::Deleted(o) if o.meta().name == "w"));

    // From scratch: the current state as ADDED, then live changes.
    cms.create(&cm("x", "1")).await.unwrap();
    let mut s = cms.watch(&WatchParams::default()).await.unwrap();
    assert!(matches!(next_event(&mut s).await, WatchEvent::Added(o) if o.meta().name == "x"));
    cms.create(&cm("y", "1")).await.unwrap();
    assert!(matches!(next_event(&mut s).await, WatchEvent::Added(o) if o.meta().name == "y"));
}

#[tokio::test]
async fn bookmarks_arrive() {
    let env = TestEnv::start_with(&["--bookmark-interval=300ms"]).await;
    let c = env.client().await;
    let cms: Api<ConfigMap> = c.api("default");
    let mut s = cms.watch(&WatchParams { allow_bookmarks: true, ..Default::default() }).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(20), s.next()).await.unwrap().unwrap().unwrap();
    let WatchEvent::Bookmark(rv) = ev else { panic!("expected a bookmark, got {ev:?}") };
    assert!(rv.parse::<i64>().unwrap() > 0);
}

/// An api-server keeping 5 events of history, and a ConfigMap resourceVersion that 20 creates and an
/// etcd compaction have made too old to watch from.
async fn expired_configmap_version() -> (TestEnv, Api<ConfigMap>, String) {
    let env = TestEnv::start_with(&["--watch-history=5"]).await;
    let c = env.client().await;
    let cms: Api<ConfigMap> = c.api("default");
    let old = cms.list(&ListParams::default()).await.unwrap().resource_version;
    for i in 0..20 {
        cms.create(&cm(&format!("c{i}"), "1")).await.unwrap();
    }
    env.etcd.compact().await;
    (env, cms, old)
}

#[tokio::test]
async fn compaction_expires_old_watches() {
    let (_env, cms, old) = expired_configmap_version().await;
    let r = cms.watch(&WatchParams { resource_version: old.clone(), ..Default::default() }).await;
    let err = match r {
        Err(e) => e,
        Ok(mut s) => {
            tokio::time::timeout(Duration::from_secs(20), s.next()).await.unwrap().unwrap().unwrap_err()
        }
    };
    assert!(matches!(err, Error::Expired(_)), "{err}");
}

#[tokio::test]
async fn slow_watcher_is_dropped_not_buffered() {
    let env = TestEnv::start_with(&["--watcher-buffer=5"]).await;
    let c = env.client().await;
    let cms: Api<ConfigMap> = c.api("default");
    let rv = cms.list(&ListParams::default()).await.unwrap().resource_version;
    let mut slow = cms.watch(&WatchParams { resource_version: rv, ..Default::default() }).await.unwrap();
    // Never read `slow` while many changes happen (more than every buffer on the way can hold).
    let big = "x".repeat(200_000);
    for i in 0..60 {
        cms.create(&cm(&format!("s{i}"), &big)).await.unwrap();
    }
    let mut expired = false;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(20), slow.next()).await {
        if let Err(e) = ev {
            assert!(matches!(e, Error::Expired(_)), "{e}");
            expired = true;
            break;
        }
    }
    assert!(expired, "the slow watcher should have been told to relist");
}

#[tokio::test]
async fn kill9_during_create_storm_loses_nothing_acknowledged() {
    let mut env = TestEnv::start().await;
    let conn = env.api_server.connection("admin");
    let acked = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (conn, acked) = (conn.clone(), acked.clone());
        workers.push(tokio::spawn(async move {
            let c = navarch_client::Client::connect_lazy(&conn).unwrap();
            let cms: Api<ConfigMap> = c.api("default");
            for i in 0..300 {
                let name = format!("storm-{w}-{i}");
                // Retry through the outage; an unacknowledged create may or may not have landed.
                for _ in 0..200 {
                    match cms.create(&cm(&name, "1")).await {
                        Ok(_) | Err(Error::AlreadyExists(_)) => {
                            acked.lock().unwrap().insert(name.clone());
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        }));
    }
    // Let the storm run, then kill -9 in the middle of it.
    eventually("500 acknowledged creates", Duration::from_secs(60), async || {
        acked.lock().unwrap().len() >= 500
    })
    .await;
    let before_kill = acked.lock().unwrap().clone();
    env.api_server.kill9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.api_server.restart().await;
    for w in workers {
        w.await.unwrap();
    }
    let c = env.client().await;
    let stored: BTreeSet<String> = c
        .api::<ConfigMap>("default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| o.meta().name.clone())
        .filter(|n| n.starts_with("storm-"))
        .collect();
    assert!(before_kill.is_subset(&stored), "objects acknowledged before the kill are all stored");
    let acked = acked.lock().unwrap().clone();
    assert_eq!(stored, acked, "every acknowledged create is stored, and counts match");
    assert_eq!(stored.len(), 8 * 300);
}

#[tokio::test]
async fn watch_resumes_across_api_server_restart() {
    let mut env = TestEnv::start().await;
    let c = env.client().await;
    let cms: Api<ConfigMap> = c.api("default");
    cms.create(&cm("r", "0")).await.unwrap();
    let mut s = cms.watch(&WatchParams::default()).await.unwrap();
    let mut last_rv = match next_event(&mut s).await {
        WatchEvent::Added(o) => o.meta().resource_version.clone(),
        e => panic!("{e:?}"),
    };
    env.api_server.kill9();
    // Changes while the api-server is down are made directly... impossible; make them after restart
    // but before the watch resumes, so they must come from the history window.
    env.api_server.restart().await;
    let c = env.client().await;
    let cms: Api<ConfigMap> = c.api("default");
    for v in 1..=5 {
        let mut o = cms.get("r").await.unwrap();
        o.data.insert("k".into(), v.to_string());
        cms.update(&o).await.unwrap();
    }
    let mut s =
        cms.watch(&WatchParams { resource_version: last_rv.clone(), ..Default::default() }).await.unwrap();
    let mut final_value = String::new();
    for _ in 0..5 {
        match next_event(&mut s).await {
            WatchEvent::Modified(o) => {
                final_value = o.data["k"].clone();
                last_rv = o.meta().resource_version.clone();
            }
            e => panic!("{e:?}"),
        }
    }
    assert_eq!(final_value, "5");
    assert_eq!(last_rv, cms.get("r").await.unwrap().meta().resource_version);
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let mut env = TestEnv::start().await;
    let c = env.client().await;
    let _watch = c.api::<ConfigMap>("default").watch(&WatchParams::default()).await.unwrap();
    assert!(env.api_server.terminate(), "exit status 0 after SIGTERM");
}

#[tokio::test]
async fn namespace_deletion_waits_for_its_content() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let ns: Api<Namespace> = c.api("");
    // An empty namespace goes at once.
    ns.create(&Namespace { metadata: meta("empty"), ..Default::default() }).await.unwrap();
    assert!(!ns.delete("empty", &DeleteParams::default()).await.unwrap().pending);

    ns.create(&Namespace { metadata: meta("busy"), ..Default::default() }).await.unwrap();
    let cms: Api<ConfigMap> = c.api("busy");
    cms.create(&cm("a", "1")).await.unwrap();
    cms.create(&cm("b", "1")).await.unwrap();
    let d = ns.delete("busy", &DeleteParams::default()).await.unwrap();
    assert!(d.pending);
    let t = ns.get("busy").await.unwrap();
    assert_eq!(t.status.as_ref().unwrap().phase, "Terminating");
    let err = cms.create(&cm("c", "1")).await.unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err}");
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(ns.get("busy").await.is_ok(), "still holds b");
    cms.delete("b", &DeleteParams::default()).await.unwrap();
    assert!(matches!(ns.get("busy").await, Err(Error::NotFound(_))), "gone once empty");
}

#[tokio::test]
async fn survives_an_etcd_kill9_and_restart() {
    let mut env = TestEnv::start().await;
    let c = env.client().await;
    let cms: Api<ConfigMap> = c.api("default");
    cms.create(&cm("before", "1")).await.unwrap();
    let rv = cms.list(&ListParams::default()).await.unwrap().resource_version;
    let mut watch = cms.watch(&WatchParams { resource_version: rv, ..Default::default() }).await.unwrap();

    env.etcd.kill9();
    let err = cms.create(&cm("during", "1")).await.unwrap_err();
    assert!(err.is_transient(), "etcd down is reported as unavailable, got {err}");
    env.etcd.restart().await;

    // Requests work again once etcd is back (the client retries like any caller would).
    eventually("the api-server to recover after etcd came back", Duration::from_secs(10), async || match cms
        .create(&cm("after", "1"))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_transient() => Err(e),
        Err(e) => panic!("{e}"),
    })
    .await;
    assert_eq!(cms.get("before").await.unwrap().data["k"], "1", "data survived the etcd restart");
    // The open watch resumes through the outage and sees the new object.
    loop {
        match next_event(&mut watch).await {
            WatchEvent::Added(o) if o.meta().name == "after" => break,
            _ => continue,
        }
    }
}

/// Over the REST API, a watch from a compacted resourceVersion is a 200 whose one event is an ERROR
/// with a 410 Status, as Kubernetes answers (clients relist).
#[tokio::test]
async fn rest_watch_from_a_compacted_version_is_an_error_event() {
    let (env, _cms, old) = expired_configmap_version().await;
    let path =
        format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={old}&timeoutSeconds=2");
    let resp = env.rest().request_async("GET", &path, &[], None).await;
    assert_eq!(resp.status, 200, "{resp:?}");
    let event: serde_json::Value = serde_json::from_str(resp.body.lines().next().unwrap()).unwrap();
    assert_eq!(event["type"], "ERROR", "{event}");
    assert_eq!(event["object"]["kind"], "Status");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
}
