//! The client runtime against a real api-server and etcd: watcher → reflector → store, relists,
//! restarts, the controller's queue guarantees, and leader election.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use navarch_api::v1::{ConfigMap, ObjectMeta};
use navarch_client::{
    Action, Api, Client, Controller, DeleteParams, Event, LeaderElector, LeaseConfig, ObjectRef, Store,
    WatcherConfig, reflector, store, watcher,
};
use navarch_tests::{ApiServer, TestEnv, eventually};
use tokio_util::sync::CancellationToken;

fn cm(name: &str, v: &str) -> ConfigMap {
    ConfigMap {
        metadata: Some(ObjectMeta { name: name.into(), ..Default::default() }),
        data: [("k".to_string(), v.to_string())].into(),
        ..Default::default()
    }
}

async fn set(api: &Api<ConfigMap>, name: &str, v: &str) {
    match api.get_opt(name).await.unwrap() {
        Some(mut o) => {
            o.data.insert("k".into(), v.into());
            api.update(&o).await.unwrap();
        }
        None => {
            api.create(&cm(name, v)).await.unwrap();
        }
    }
}

fn contents(s: &Store<ConfigMap>) -> BTreeMap<String, String> {
    s.state().iter().map(|o| (o.metadata.as_ref().unwrap().name.clone(), o.data["k"].clone())).collect()
}

/// How long each wait of these tests may take.
const WAIT: Duration = Duration::from_secs(30);

/// A reflector running in the background, counting the relists it saw.
fn spawn_reflector(api: Api<ConfigMap>) -> (Store<ConfigMap>, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let (reader, writer) = store();
    let inits = Arc::new(AtomicUsize::new(0));
    let counter = inits.clone();
    let stream = watcher(api, WatcherConfig::default()).inspect(move |ev| {
        if let Ok(Event::Init) = ev {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let task = tokio::spawn(async move {
        let mut s = std::pin::pin!(reflector(writer, stream));
        while s.next().await.is_some() {}
    });
    (reader, inits, task)
}

#[tokio::test]
async fn watcher_lists_then_follows_changes() {
    let env = TestEnv::start().await;
    let api: Api<ConfigMap> = env.client().await.api("default");
    for i in 0..3 {
        set(&api, &format!("pre{i}"), "1").await;
    }
    let (reader, _, task) = spawn_reflector(api.clone());
    tokio::time::timeout(Duration::from_secs(20), reader.wait_until_ready()).await.unwrap();
    assert_eq!(reader.len(), 3);
    set(&api, "pre0", "2").await;
    set(&api, "new", "1").await;
    api.delete("pre1", &DeleteParams::default()).await.unwrap();
    let want: BTreeMap<String, String> = [("pre0", "2"), ("pre2", "1"), ("new", "1")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    eventually("store follows changes", WAIT, async || contents(&reader) == want).await;
    task.abort();
}

#[tokio::test]
async fn compaction_forces_a_relist_that_converges() {
    let mut env = TestEnv::start_with(&["--watch-history=5"]).await;
    let api: Api<ConfigMap> = env.client().await.api("default");
    set(&api, "a", "0").await;
    let (reader, inits, task) = spawn_reflector(api.clone());
    tokio::time::timeout(Duration::from_secs(20), reader.wait_until_ready()).await.unwrap();
    assert_eq!(inits.load(Ordering::SeqCst), 1);

    // While the watcher is cut off (its api-server down), far more changes than the history holds,
    // through a second api-server on the same etcd, then a compaction; only then does the watcher's
    // api-server come back, so the watcher cannot resume and must relist.
    env.api_server.kill9();
    let other = ApiServer::start(&env.etcd).await;
    let api2: Api<ConfigMap> = Client::connect(&other.connection("admin")).await.unwrap().api("default");
    for i in 0..30 {
        set(&api2, &format!("c{i}"), "x").await;
    }
    set(&api2, "a", "final").await;
    api2.delete("c0", &DeleteParams::default()).await.unwrap();
    env.etcd.compact().await;
    env.api_server.restart().await;

    let mut want: BTreeMap<String, String> = (1..30).map(|i| (format!("c{i}"), "x".to_string())).collect();
    want.insert("a".into(), "final".into());
    eventually("store converges after relist", WAIT, async || contents(&reader) == want).await;
    assert!(inits.load(Ordering::SeqCst) >= 2, "the watcher relisted");
    task.abort();
}

#[tokio::test]
async fn api_server_restart_mid_watch_misses_no_final_state() {
    let mut env = TestEnv::start().await;
    let api: Api<ConfigMap> = env.client().await.api("default");
    set(&api, "r", "0").await;
    let (reader, inits, task) = spawn_reflector(api.clone());
    tokio::time::timeout(Duration::from_secs(20), reader.wait_until_ready()).await.unwrap();
    for round in 1..=3 {
        env.api_server.kill9();
        env.api_server.restart().await;
        let api2: Api<ConfigMap> = env.client().await.api("default");
        set(&api2, "r", &round.to_string()).await;
        set(&api2, &format!("n{round}"), "1").await;
    }
    let want: BTreeMap<String, String> = [("r", "3"), ("n1", "1"), ("n2", "1"), ("n3", "1")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    eventually("store has the final state", WAIT, async || contents(&reader) == want).await;
    // Resumed from the last resourceVersion, within the api-server's history: no relist needed.
    assert_eq!(inits.load(Ordering::SeqCst), 1);
    task.abort();
}

#[derive(Default)]
struct Probe {
    in_flight: Mutex<HashSet<String>>,
    overlaps: AtomicUsize,
    calls: Mutex<BTreeMap<String, usize>>,
    fail_once: Mutex<HashSet<String>>,
}

#[tokio::test]
async fn controller_reconciles_each_key_never_concurrently_and_retries_errors() {
    let env = TestEnv::start().await;
    let api: Api<ConfigMap> = env.client().await.api("default");
    for i in 0..20 {
        set(&api, &format!("k{i}"), "0").await;
    }
    let probe = Arc::new(Probe::default());
    probe.fail_once.lock().unwrap().insert("k7".into());
    let shutdown = CancellationToken::new();
    let controller = Controller::new(api.clone(), WatcherConfig::default()).concurrency(4);
    let store = controller.store();
    let run = tokio::spawn(controller.run(
        |obj: Arc<ConfigMap>, p: Arc<Probe>| async move {
            let name = obj.metadata.as_ref().unwrap().name.clone();
            if !p.in_flight.lock().unwrap().insert(name.clone()) {
                p.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
            *p.calls.lock().unwrap().entry(name.clone()).or_default() += 1;
            p.in_flight.lock().unwrap().remove(&name);
            if p.fail_once.lock().unwrap().remove(&name) {
                return Err("injected failure".to_string());
            }
            Ok(Action::await_change())
        },
        |_obj, _err: &String, _p| Action::requeue(Duration::from_millis(50)),
        probe.clone(),
        shutdown.clone(),
    ));
    eventually("every key reconciled", WAIT, async || probe.calls.lock().unwrap().len() == 20).await;
    eventually("the failed key retried", WAIT, async || {
        probe.calls.lock().unwrap().get("k7").copied() == Some(2)
    })
    .await;
    // A burst of changes to one key while it may be running: runs again, never two at once.
    for v in 1..=10 {
        set(&api, "k3", &v.to_string()).await;
    }
    eventually("k3 reconciled after the burst", WAIT, async || {
        store.get(&ObjectRef::new("default", "k3")).is_some_and(|o| o.data["k"] == "10")
            && probe.in_flight.lock().unwrap().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let k3 = probe.calls.lock().unwrap()["k3"];
    assert!(k3 >= 2, "k3 ran again after changing");
    assert!(k3 <= 11, "bursts are deduplicated ({k3} runs for 10 changes)");
    assert_eq!(probe.overlaps.load(Ordering::SeqCst), 0, "never two workers on one key");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), run).await.unwrap().unwrap();
}

#[tokio::test]
async fn leader_election_one_leader_and_failover() {
    let env = TestEnv::start().await;
    let client = env.client().await;
    let cfg = LeaseConfig {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1500),
        retry_period: Duration::from_millis(200),
    };
    let stop_a = CancellationToken::new();
    let stop_b = CancellationToken::new();
    let (a, a_task) =
        LeaderElector::new(&client, "kube-system", "test-lock", "a", cfg.clone()).spawn(stop_a.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (b, b_task) =
        LeaderElector::new(&client, "kube-system", "test-lock", "b", cfg.clone()).spawn(stop_b.clone());
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!(*a.borrow() && *b.borrow()), "never two leaders");
    }
    assert!(*a.borrow() && !*b.borrow(), "the first candidate leads");
    // a dies without releasing (crash): b takes over once the lease expires.
    a_task.abort();
    eventually("b takes over", WAIT, async || *b.borrow()).await;
    let lease = client.api::<navarch_api::v1::Lease>("kube-system").get("test-lock").await.unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    stop_b.cancel();
    b_task.await.unwrap();
    stop_a.cancel();
}
