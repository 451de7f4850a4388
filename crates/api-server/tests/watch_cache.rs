//! The watch cache against a real etcd: ordering, resuming, compaction, slow watchers, many watchers,
//! selector transitions, progress without events, shutdown.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, CompactionOptions};
use futures::{FutureExt, StreamExt};
use navarch_api::selector::Selector;
use navarch_api::v1::{ConfigMap, ObjectMeta};
use navarch_api::{KindInfo, Object, kind_info};
use navarch_api_server::codec;
use navarch_api_server::watch_cache::{
    CachedEvent, EventType, FieldSelector, Subscription, WatchCache, WatchCacheConfig, WatchCacheError,
    WatchFilter,
};
use tokio_util::sync::CancellationToken;

const PREFIX: &str = "/registry";
const WAIT: Duration = Duration::from_secs(15);

/// A single-member etcd in a temporary directory on free loopback ports; killed on drop.
struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

impl Etcd {
    async fn start() -> (Etcd, Client) {
        // RUST_LOG=navarch_api_server=debug shows the cache's side.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let mut etcd = Etcd {
            child: None,
            dir: tempfile::tempdir().expect("temp dir"),
            client_port: free_port(),
            peer_port: free_port(),
        };
        let port = etcd.client_port;
        let client = etcd.run_on(port).await;
        (etcd, client)
    }

    fn url(port: u16) -> String {
        format!("http://127.0.0.1:{port}")
    }

    /// Starts etcd serving clients on `client_port` (the data dir and peer port stay the same).
    async fn run_on(&mut self, client_port: u16) -> Client {
        self.stop();
        let log =
            std::fs::File::create(self.dir.path().join(format!("etcd-{client_port}.log"))).expect("log");
        let data: PathBuf = self.dir.path().join("data");
        let client_url = Etcd::url(client_port);
        let peer_url = Etcd::url(self.peer_port);
        let child = Command::new("etcd")
            .arg("--name=test")
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=test={peer_url}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting etcd (is the `etcd` binary installed?)");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(mut c) = Client::connect([client_url.as_str()], None).await
                && c.status().await.is_ok()
            {
                return c;
            }
            assert!(tokio::time::Instant::now() < deadline, "etcd did not start on {client_url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn configmaps() -> &'static KindInfo {
    kind_info("ConfigMap").unwrap()
}

fn cm(ns: &str, name: &str, labels: &[(&str, &str)], value: &str) -> Object {
    Object::ConfigMap(ConfigMap {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        metadata: Some(ObjectMeta {
            name: name.into(),
            namespace: ns.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        }),
        data: [("v".to_string(), value.to_string())].into(),
        ..Default::default()
    })
}

fn value_of(o: &Object) -> &str {
    match o {
        Object::ConfigMap(c) => c.data.get("v").map(String::as_str).unwrap_or(""),
        other => panic!("unexpected {}", other.kind()),
    }
}

async fn put(etcd: &mut Client, obj: &Object) -> i64 {
    let key = codec::object_key(PREFIX, configmaps(), &obj.meta().namespace, &obj.meta().name);
    let r = etcd.put(key, codec::encode_value(obj), None).await.expect("put");
    r.header().unwrap().revision()
}

async fn delete(etcd: &mut Client, ns: &str, name: &str) -> i64 {
    let key = codec::object_key(PREFIX, configmaps(), ns, name);
    let r = etcd.delete(key, None).await.expect("delete");
    r.header().unwrap().revision()
}

fn config(history: usize, watcher_buffer: usize) -> WatchCacheConfig {
    WatchCacheConfig { history, watcher_buffer, ..WatchCacheConfig::default() }
}

async fn start_cache(etcd: &Client, cfg: WatchCacheConfig, shutdown: &CancellationToken) -> Arc<WatchCache> {
    WatchCache::start(etcd.clone(), PREFIX.to_string(), configmaps(), cfg, shutdown.clone())
        .await
        .expect("starting the watch cache")
}

fn filter(ns: &str, labels: &str, fields: &str) -> WatchFilter {
    WatchFilter {
        namespace: ns.into(),
        labels: Selector::parse(labels).unwrap(),
        fields: FieldSelector::parse(fields).unwrap(),
    }
}

async fn next(sub: &mut Subscription) -> Arc<CachedEvent> {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Ok(e))) => e,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no event within {WAIT:?}"),
    }
}

async fn next_error(sub: &mut Subscription) -> WatchCacheError {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Err(e))) => e,
        Ok(Some(Ok(e))) => panic!("unexpected event {:?} at {}", e.event_type, e.revision),
        Ok(None) => panic!("watch ended without an error"),
        Err(_) => panic!("no error within {WAIT:?}"),
    }
}

/// Nothing is delivered for a while.
async fn assert_quiet(sub: &mut Subscription) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        panic!("unexpected {:?}", item.map(|r| r.map(|e| (e.event_type, e.revision))));
    }
}

fn assert_event(e: &Arc<CachedEvent>, t: EventType, name: &str, rev: i64) {
    assert_eq!((e.event_type, e.object.meta().name.as_str(), e.revision), (t, name, rev));
    assert_eq!(e.object.meta().resource_version, rev.to_string());
    let decoded = Object::decode("ConfigMap", &e.raw).expect("raw decodes");
    assert_eq!(&decoded, e.object.as_ref(), "raw is the object with its resourceVersion");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_ordered_events_and_resumes() {
    let (_etcd, mut client) = Etcd::start().await;
    let shutdown = CancellationToken::new();
    let cache = start_cache(&client, WatchCacheConfig::default(), &shutdown).await;
    let mut all = cache.subscribe(cache.revision(), WatchFilter::everything()).unwrap();
    let mut other_ns = cache.subscribe(cache.revision(), filter("other", "", "")).unwrap();

    let r1 = put(&mut client, &cm("default", "a", &[], "1")).await;
    let r2 = put(&mut client, &cm("default", "a", &[], "2")).await;
    let r3 = delete(&mut client, "default", "a").await;
    let r4 = put(&mut client, &cm("other", "b", &[], "x")).await;

    let e = next(&mut all).await;
    assert_event(&e, EventType::Added, "a", r1);
    assert_eq!(value_of(&e.object), "1");
    let e = next(&mut all).await;
    assert_event(&e, EventType::Modified, "a", r2);
    assert_eq!(value_of(&e.object), "2");
    let e = next(&mut all).await;
    assert_event(&e, EventType::Deleted, "a", r3);
    assert_eq!(value_of(&e.object), "2", "DELETED carries the object as last stored");
    assert_event(&next(&mut all).await, EventType::Added, "b", r4);
    assert_event(&next(&mut other_ns).await, EventType::Added, "b", r4);
    assert!(cache.wait_for_revision(r4, WAIT).await);
    assert!(cache.revision() >= r4);

    // Resuming from a revision replays exactly what came after it.
    let mut resumed = cache.subscribe(r1, WatchFilter::everything()).unwrap();
    assert_event(&next(&mut resumed).await, EventType::Modified, "a", r2);
    assert_event(&next(&mut resumed).await, EventType::Deleted, "a", r3);
    assert_event(&next(&mut resumed).await, EventType::Added, "b", r4);
    assert_quiet(&mut resumed).await;

    // A watch from a revision the cache has not reached yet skips what it already knows.
    let r5 = put(&mut client, &cm("default", "c", &[], "1")).await;
    let r6 = put(&mut client, &cm("default", "c", &[], "2")).await;
    let mut ahead = cache.subscribe(r5, WatchFilter::everything()).unwrap();
    assert_event(&next(&mut ahead).await, EventType::Modified, "c", r6);

    // A cache started later (an api-server restart) fills its history from etcd.
    let restarted = start_cache(&client, WatchCacheConfig::default(), &shutdown).await;
    let mut replay = restarted.subscribe(r2, WatchFilter::everything()).unwrap();
    let revs: Vec<i64> =
        [next(&mut replay).await, next(&mut replay).await].iter().map(|e| e.revision).collect();
    assert_eq!(revs, vec![r3, r4]);
    assert!(restarted.wait_for_revision(r6, WAIT).await);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_revisions_expire() {
    let (_etcd, mut client) = Etcd::start().await;
    let mut revs = Vec::new();
    for i in 0..10 {
        revs.push(put(&mut client, &cm("default", &format!("c{i}"), &[], "v")).await);
    }
    let shutdown = CancellationToken::new();

    // A small history: only the last three revisions are held.
    let small = start_cache(&client, config(3, 100), &shutdown).await;
    assert!(small.wait_for_revision(revs[9], WAIT).await);
    assert_eq!(small.floor(), revs[9] - 3);
    match small.subscribe(revs[5], WatchFilter::everything()) {
        Err(WatchCacheError::Expired(m)) => {
            assert_eq!(m, format!("too old resource version: {} ({})", revs[5], revs[9] - 3))
        }
        other => panic!("expected Expired, got {other:?}"),
    }
    let mut sub = small.subscribe(revs[6], WatchFilter::everything()).unwrap();
    for rev in &revs[7..] {
        assert_eq!(next(&mut sub).await.revision, *rev);
    }

    // etcd compacted below the history window: the cache starts at the compaction.
    client.compact(revs[4], Some(CompactionOptions::new().with_physical())).await.expect("compact");
    let cache = start_cache(&client, config(1000, 100), &shutdown).await;
    assert!(cache.wait_for_revision(revs[9], WAIT).await);
    assert_eq!(cache.floor(), revs[4] - 1);
    let Err(WatchCacheError::Expired(m)) = cache.subscribe(revs[1], WatchFilter::everything()) else {
        panic!("a revision below the compaction must expire");
    };
    assert!(m.starts_with("too old resource version"), "{m}");
    let mut sub = cache.subscribe(revs[4] - 1, WatchFilter::everything()).unwrap();
    for rev in &revs[4..] {
        assert_eq!(next(&mut sub).await.revision, *rev);
    }
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_while_disconnected_expires_watchers() {
    let (mut etcd, mut client) = Etcd::start().await;
    let shutdown = CancellationToken::new();
    let cache = start_cache(&client, WatchCacheConfig::default(), &shutdown).await;
    let r1 = put(&mut client, &cm("default", "a", &[], "1")).await;
    let mut sub = cache.subscribe(cache.floor(), WatchFilter::everything()).unwrap();
    assert_event(&next(&mut sub).await, EventType::Added, "a", r1);

    // Move etcd to another port where the cache cannot see it, change and compact, move it back.
    let original = etcd.client_port;
    let mut elsewhere = etcd.run_on(free_port()).await;
    let mut last = 0;
    for i in 0..5 {
        last = put(&mut elsewhere, &cm("default", "a", &[], &i.to_string())).await;
    }
    elsewhere.compact(last, Some(CompactionOptions::new().with_physical())).await.expect("compact");
    drop(elsewhere);
    let mut client = etcd.run_on(original).await;

    let e = next_error(&mut sub).await;
    assert!(matches!(&e, WatchCacheError::Expired(m) if m == "watcher fell behind; relist"), "{e:?}");
    assert!(sub.next().await.is_none(), "the stream ends after Expired");
    assert!(cache.wait_for_revision(last, WAIT).await);
    assert!(matches!(cache.subscribe(r1, WatchFilter::everything()), Err(WatchCacheError::Expired(_))));

    // Relisted watchers continue from the new floor.
    let mut fresh = cache.subscribe(cache.revision(), WatchFilter::everything()).unwrap();
    let r = put(&mut client, &cm("default", "b", &[], "1")).await;
    assert_event(&next(&mut fresh).await, EventType::Added, "b", r);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watcher_is_dropped_fast_ones_continue() {
    let (_etcd, mut client) = Etcd::start().await;
    let shutdown = CancellationToken::new();
    let cache = start_cache(&client, config(1000, 4), &shutdown).await;
    let from = cache.revision();
    let mut fast = cache.subscribe(from, WatchFilter::everything()).unwrap();
    let mut slow = cache.subscribe(from, WatchFilter::everything()).unwrap();
    let mut revs = Vec::new();
    for i in 0..10 {
        let rev = put(&mut client, &cm("default", &format!("c{i}"), &[], "v")).await;
        assert_eq!(next(&mut fast).await.revision, rev);
        revs.push(rev);
    }
    assert!(
        matches!(next_error(&mut slow).await, WatchCacheError::Expired(m) if m == "watcher fell behind; relist")
    );
    assert!(slow.next().await.is_none());
    assert_eq!(cache.watchers(), 1);
    let rev = put(&mut client, &cm("default", "after", &[], "v")).await;
    assert_eq!(next(&mut fast).await.revision, rev);

    // The history replayed at subscribe does not count against the queue.
    let mut replay = cache.subscribe(from, WatchFilter::everything()).unwrap();
    for rev in revs.iter().chain([&rev]) {
        assert_eq!(next(&mut replay).await.revision, *rev);
    }
    drop(replay);
    assert_eq!(cache.watchers(), 1, "dropped subscriptions deregister");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_watchers_all_receive_an_event() {
    let (_etcd, mut client) = Etcd::start().await;
    let shutdown = CancellationToken::new();
    let cache = start_cache(&client, WatchCacheConfig::default(), &shutdown).await;
    let from = cache.revision();
    let mut subs: Vec<Subscription> = (0..1000)
        .map(|i| {
            let f = if i % 2 == 0 { WatchFilter::everything() } else { filter("default", "app=web", "") };
            cache.subscribe(from, f).unwrap()
        })
        .collect();
    assert_eq!(cache.watchers(), 1000);
    let rev = put(&mut client, &cm("default", "shared", &[("app", "web")], "v")).await;
    let events = futures::future::join_all(subs.iter_mut().map(next)).await;
    assert!(events.iter().all(|e| e.revision == rev && e.event_type == EventType::Added));
    assert!(events.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])), "one shared event for all watchers");
    drop(subs);
    assert_eq!(cache.watchers(), 0);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_transitions() {
    let (_etcd, mut client) = Etcd::start().await;
    let shutdown = CancellationToken::new();
    let cache = start_cache(&client, WatchCacheConfig::default(), &shutdown).await;
    let from = cache.revision();
    let mut web = cache.subscribe(from, filter("", "app=web", "")).unwrap();
    let mut db = cache.subscribe(from, filter("", "app=db", "")).unwrap();
    let mut by_name = cache.subscribe(from, filter("default", "", "metadata.name=x")).unwrap();

    let r1 = put(&mut client, &cm("default", "x", &[("app", "web")], "1")).await;
    let r2 = put(&mut client, &cm("default", "x", &[("app", "db")], "2")).await;
    let r3 = put(&mut client, &cm("default", "x", &[("app", "web")], "3")).await;
    let r4 = put(&mut client, &cm("default", "x", &[("app", "web")], "4")).await;
    let r5 = delete(&mut client, "default", "x").await;
    let r6 = put(&mut client, &cm("default", "y", &[("app", "web")], "1")).await;

    assert_event(&next(&mut web).await, EventType::Added, "x", r1);
    let left = next(&mut web).await;
    assert_event(&left, EventType::Deleted, "x", r2);
    assert_eq!(left.object.meta().labels["app"], "db", "DELETED on leaving carries the new object");
    assert_event(&next(&mut web).await, EventType::Added, "x", r3);
    assert_event(&next(&mut web).await, EventType::Modified, "x", r4);
    assert_event(&next(&mut web).await, EventType::Deleted, "x", r5);
    assert_event(&next(&mut web).await, EventType::Added, "y", r6);

    assert_event(&next(&mut db).await, EventType::Added, "x", r2);
    assert_event(&next(&mut db).await, EventType::Deleted, "x", r3);
    assert_quiet(&mut db).await;

    let seen: Vec<(EventType, i64)> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            let e = next(&mut by_name).await;
            v.push((e.event_type, e.revision));
        }
        v
    };
    use EventType::*;
    assert_eq!(seen, vec![(Added, r1), (Modified, r2), (Modified, r3), (Modified, r4), (Deleted, r5)]);
    assert_quiet(&mut by_name).await;

    // The history replay applies the same transitions.
    let mut replay = cache.subscribe(from, filter("", "app=db", "")).unwrap();
    assert_event(&next(&mut replay).await, EventType::Added, "x", r2);
    assert_event(&next(&mut replay).await, EventType::Deleted, "x", r3);
    assert_quiet(&mut replay).await;
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_values_are_skipped() {
    let (_etcd, mut client) = Etcd::start().await;
    let shutdown = CancellationToken::new();
    let cache = start_cache(&client, WatchCacheConfig::default(), &shutdown).await;
    let mut sub = cache.subscribe(cache.revision(), WatchFilter::everything()).unwrap();
    let key = codec::object_key(PREFIX, configmaps(), "default", "garbage");
    let bad = client.put(key, vec![0xff, 0xff, 0xff], None).await.unwrap().header().unwrap().revision();
    let good = put(&mut client, &cm("default", "fine", &[], "v")).await;
    assert_event(&next(&mut sub).await, EventType::Added, "fine", good);
    assert!(good > bad);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_advances_without_events_of_the_kind() {
    let (_etcd, mut client) = Etcd::start().await;
    let shutdown = CancellationToken::new();
    let cache = start_cache(&client, WatchCacheConfig::default(), &shutdown).await;
    let r1 = put(&mut client, &cm("default", "a", &[], "v")).await;
    // Writes to another kind move etcd's revision; the cache learns of it through progress
    // notifications.
    let mut other = 0;
    for i in 0..3 {
        other = client
            .put(format!("{PREFIX}/secrets/default/s{i}"), "x", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
    }
    assert!(
        cache.wait_for_revision(other, WAIT).await,
        "revision {} never reached {other}",
        cache.revision()
    );
    assert!(cache.revision() >= other);
    // The revision is usable to resume: nothing before it is lost.
    let mut sub = cache.subscribe(r1 - 1, WatchFilter::everything()).unwrap();
    assert_event(&next(&mut sub).await, EventType::Added, "a", r1);
    assert!(!cache.wait_for_revision(other + 1000, Duration::from_millis(500)).await);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_subscriptions_cleanly() {
    let (_etcd, mut client) = Etcd::start().await;
    let shutdown = CancellationToken::new();
    let cache = start_cache(&client, WatchCacheConfig::default(), &shutdown).await;
    let mut sub = cache.subscribe(cache.revision(), WatchFilter::everything()).unwrap();
    let rev = put(&mut client, &cm("default", "a", &[], "v")).await;
    assert_eq!(next(&mut sub).await.revision, rev);
    shutdown.cancel();
    assert!(tokio::time::timeout(WAIT, sub.next()).await.expect("stream ends").is_none());
    assert!(!cache.wait_for_revision(rev + 100, WAIT).await);
    let mut late = cache.subscribe(rev, WatchFilter::everything()).unwrap();
    assert!(late.next().now_or_never().expect("ready").is_none());

    // Dropping the cache stops it as well.
    let other = CancellationToken::new();
    let cache = start_cache(&client, WatchCacheConfig::default(), &other).await;
    let mut sub = cache.subscribe(cache.revision(), WatchFilter::everything()).unwrap();
    drop(cache);
    assert!(tokio::time::timeout(WAIT, sub.next()).await.expect("stream ends").is_none());
}
