//! `make bench-api`: the api-server's create throughput and latency beside raw etcd puts measured in the
//! same run (same concurrency, same value size), the api-server's memory with every pod stored, and watch
//! fan-out delivery latency to many concurrent watchers.
//!
//! The same creates through the REST API (JSON bodies over keep-alive HTTP/1.1 in TLS, as kubectl and
//! client libraries send them) beside gRPC, and the time of `kubectl get pods -A` with `--list-pods` pods
//! stored beside `navctl get pods -A`.
//!
//! Flags: `--pods N` (20000), `--concurrency C` (64), `--watchers W` (1000), `--watch-events E` (100),
//! `--list-pods L` (5000).

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{Container, ObjectMeta, Pod, PodSpec, Quantity, ResourceRequirements};
use navarch_client::{Api, Client, WatchEvent, WatchParams};
use navarch_tests::{ApiServer, Etcd, percentile};
use prost::Message;
use tokio::sync::Mutex;

struct Args {
    pods: usize,
    concurrency: usize,
    watchers: usize,
    watch_events: usize,
    list_pods: usize,
}

fn args() -> Args {
    let mut a = Args { pods: 20_000, concurrency: 64, watchers: 1000, watch_events: 100, list_pods: 5000 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value =
            || it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--pods" => a.pods = value(),
            "--concurrency" => a.concurrency = value(),
            "--watchers" => a.watchers = value(),
            "--watch-events" => a.watch_events = value(),
            "--list-pods" => a.list_pods = value(),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn pod(name: String) -> Pod {
    let mut p = Pod {
        metadata: Some(ObjectMeta {
            name,
            namespace: "default".into(),
            labels: [("app".to_string(), "bench".to_string()), ("tier".to_string(), "web".to_string())]
                .into(),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "web".into(),
                image: "registry.local/web:1.0".into(),
                command: vec!["/bin/httpd".into(), "-f".into(), "-p".into(), "8080".into()],
                resources: Some(ResourceRequirements {
                    requests: [
                        ("cpu".to_string(), Quantity::new("100m")),
                        ("memory".to_string(), Quantity::new("64Mi")),
                    ]
                    .into(),
                    limits: [("memory".to_string(), Quantity::new("128Mi"))].into(),
                    claims: vec![],
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    p.set_type_meta();
    p
}

struct Stats {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

/// Runs `total` operations over `concurrency` workers; each worker gets its own connection from `make`.
async fn drive<C, F, Fut>(total: usize, concurrency: usize, make: impl Fn() -> Fut, op: F) -> Stats
where
    C: Send + 'static,
    Fut: std::future::Future<Output = C>,
    F: Fn(C, usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = C> + Send>> + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let op = Arc::new(op);
    let mut conns = Vec::new();
    for _ in 0..concurrency {
        conns.push(make().await);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mut conn in conns {
        let (next, latencies, op) = (next.clone(), latencies.clone(), op.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                conn = op(conn, i).await;
                mine.push(t.elapsed());
            }
            latencies.lock().await.extend(mine);
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    let elapsed = start.elapsed();
    let mut l = latencies.lock().await.clone();
    l.sort();
    Stats { rate: total as f64 / elapsed.as_secs_f64(), p50: percentile(&l, 0.5), p99: percentile(&l, 0.99) }
}

fn rss_mib(pid: u32) -> f64 {
    navarch_tests::rss_bytes(pid).map(|b| b as f64 / (1024.0 * 1024.0)).unwrap_or(0.0)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let a = args();
    println!(
        "bench-api: {} pods, concurrency {}, {} watchers x {} events",
        a.pods, a.concurrency, a.watchers, a.watch_events
    );
    let etcd = Etcd::start().await;
    let value_size = pod("bench-pod-000000".into()).encode_to_vec().len() + 250; // + server-set metadata

    // Baseline: raw etcd puts, same concurrency and value size, create-if-absent like the api-server.
    let (endpoint, options) = (etcd.endpoint(), etcd.connect_options());
    let raw =
        drive(
            a.pods,
            a.concurrency,
            || {
                let (endpoint, options) = (endpoint.clone(), options.clone());
                async move {
                    etcd_client::Client::connect([endpoint], Some(options)).await.expect("etcd").kv_client()
                }
            },
            move |mut kv, i| {
                Box::pin(async move {
                    let key = format!("/bench/raw/{i:08}");
                    let txn = etcd_client::Txn::new()
                        .when([etcd_client::Compare::create_revision(
                            key.clone(),
                            etcd_client::CompareOp::Equal,
                            0,
                        )])
                        .and_then([etcd_client::TxnOp::put(key, vec![b'x'; value_size], None)]);
                    kv.txn(txn).await.expect("etcd txn");
                    kv
                })
            },
        )
        .await;

    let mut server = ApiServer::start(&etcd).await;
    let conn = server.connection("admin");
    let api = drive(
        a.pods,
        a.concurrency,
        || {
            let conn = conn.clone();
            async move { Client::connect(&conn).await.expect("api-server").api::<Pod>("default") }
        },
        |pods: Api<Pod>, i| {
            Box::pin(async move {
                pods.create(&pod(format!("bench-pod-{i:06}"))).await.expect("create");
                pods
            })
        },
    )
    .await;
    let rss = server.pid().map(rss_mib).unwrap_or(0.0);
    let rest = drive(
        a.pods,
        a.concurrency,
        || rest_connection(&server),
        |mut conn: RestConnection, i| {
            Box::pin(async move {
                conn.create_pod(&pod(format!("rest-pod-{i:06}"))).await;
                conn
            })
        },
    )
    .await;

    println!();
    println!(
        "{:<34} {:>12} {:>12} {:>12}",
        format!("create (value ~{value_size} B)"),
        "per second",
        "p50",
        "p99"
    );
    println!(
        "{:<34} {:>12.0} {:>12} {:>12}",
        "raw etcd txn put (baseline)",
        raw.rate,
        ms(raw.p50),
        ms(raw.p99)
    );
    println!("{:<34} {:>12.0} {:>12} {:>12}", "api-server create Pod", api.rate, ms(api.p50), ms(api.p99));
    println!(
        "api-server / raw etcd: {:.0}% (goal >= 50%); p99 create {} (goal < 50 ms at C=64)",
        100.0 * api.rate / raw.rate,
        ms(api.p99)
    );
    println!(
        "{:<34} {:>12.0} {:>12} {:>12}",
        "REST create Pod (JSON)",
        rest.rate,
        ms(rest.p50),
        ms(rest.p99)
    );
    println!("REST / gRPC: {:.0}% (goal >= 70%)", 100.0 * rest.rate / api.rate);
    println!("api-server RSS with {} pods stored: {rss:.1} MiB (goal < 100 MB)", a.pods);

    // Watch fan-out: W watchers on pods, E creates, latency from create start to each delivery.
    let client = Client::connect(&conn).await.expect("api-server");
    let pods = client.api::<Pod>("default");
    let rv = pods
        .list(&navarch_client::ListParams { limit: 1, ..Default::default() })
        .await
        .expect("list")
        .resource_version;
    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; a.watch_events]));
    let delays: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let mut watch_tasks = Vec::new();
    let setup = Instant::now();
    for w in 0..a.watchers {
        // A few connections shared by the watchers, as informers in one process share one.
        let c = if w % 50 == 0 { Client::connect(&conn).await.expect("api-server") } else { client.clone() };
        let mut stream = c
            .api::<Pod>("default")
            .watch(&WatchParams { resource_version: rv.clone(), ..Default::default() })
            .await
            .expect("watch");
        let (sent_at, delays, n) = (sent_at.clone(), delays.clone(), a.watch_events);
        watch_tasks.push(tokio::spawn(async move {
            let mut seen = 0;
            while let Some(ev) = stream.next().await {
                let Ok(WatchEvent::Added(p)) = ev else { continue };
                let Some(idx) =
                    p.meta().name.strip_prefix("watch-pod-").and_then(|s| s.parse::<usize>().ok())
                else {
                    continue;
                };
                if let Some(t) = sent_at.lock().await[idx] {
                    delays.lock().await.push(t.elapsed());
                }
                seen += 1;
                if seen == n {
                    break;
                }
            }
        }));
    }
    println!("{} watchers open in {:.2} s", a.watchers, setup.elapsed().as_secs_f64());
    for i in 0..a.watch_events {
        sent_at.lock().await[i] = Some(Instant::now());
        pods.create(&pod(format!("watch-pod-{i:06}"))).await.expect("create");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let wait = tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(watch_tasks)).await;
    let mut d = delays.lock().await.clone();
    d.sort();
    println!(
        "watch fan-out: {} deliveries of {} expected; p50 {}, p99 {}{}",
        d.len(),
        a.watchers * a.watch_events,
        ms(percentile(&d, 0.5)),
        ms(percentile(&d, 0.99)),
        if wait.is_err() { " (timed out waiting for some watchers)" } else { "" }
    );
    println!(
        "api-server RSS with {} watchers: {:.1} MiB",
        a.watchers,
        server.pid().map(rss_mib).unwrap_or(0.0)
    );
    server.kill9();
    drop(etcd);
    list_all_namespaces(a.list_pods, a.concurrency).await;
}

/// One keep-alive HTTP/1.1 connection to the REST API.
struct RestConnection {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
}

/// TLS as the admin, as kubectl connects.
fn rest_connection(server: &ApiServer) -> impl Future<Output = RestConnection> + use<> {
    let addr = server.addr();
    let tls = server.pki().rustls_config(Some("admin"), &[b"http/1.1"]);
    async move {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("api-server");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
        let stream =
            tokio_rustls::TlsConnector::from(tls).connect(name, stream).await.expect("TLS handshake");
        let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(conn);
        RestConnection { sender }
    }
}

impl RestConnection {
    async fn create_pod(&mut self, p: &Pod) {
        use http_body_util::BodyExt;
        let body = serde_json::to_vec(p).expect("a pod serializes");
        let req = hyper::Request::post("/api/v1/namespaces/default/pods")
            .header("host", "api-server")
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .expect("a request");
        self.sender.ready().await.expect("connection ready");
        let resp = self.sender.send_request(req).await.expect("POST");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("response body").to_bytes();
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    }
}

/// `kubectl get pods -A` and `navctl get pods -A` with `pods` pods stored (each the median of 3 runs
/// after a first run that fills kubectl's discovery cache).
async fn list_all_namespaces(pods: usize, concurrency: usize) {
    let etcd = Etcd::start().await;
    let mut server = ApiServer::start(&etcd).await;
    let conn = server.connection("admin");
    drive(
        pods,
        concurrency,
        || {
            let conn = conn.clone();
            async move { Client::connect(&conn).await.expect("api-server").api::<Pod>("default") }
        },
        |api: Api<Pod>, i| {
            Box::pin(async move {
                api.create(&pod(format!("list-pod-{i:06}"))).await.expect("create");
                api
            })
        },
    )
    .await;
    let kubectl = navarch_tests::Kubectl::new(&server);
    let kubeconfig = server.kubeconfig_file("admin");
    let navctl = navarch_tests::binary("ctl", "navctl");
    let time = async |run: &dyn Fn() -> tokio::process::Command| {
        let mut times = Vec::new();
        for i in 0..4 {
            let t = Instant::now();
            let out = run().output().await.expect("running the client");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let lines = out.stdout.iter().filter(|b| **b == b'\n').count();
            assert_eq!(lines, pods + 1, "a header and a line per pod");
            if i > 0 {
                times.push(t.elapsed());
            }
        }
        times.sort();
        times[1]
    };
    let k = time(&|| kubectl.command(&["get", "pods", "-A"])).await;
    let n = time(&|| {
        let mut c = tokio::process::Command::new(&navctl);
        c.arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(["get", "pods", "-A"])
            .env("HOME", std::env::temp_dir());
        c
    })
    .await;
    println!();
    println!("get pods -A with {pods} pods stored (median of 3):");
    println!("  kubectl (REST, server-side Table)  {}", ms(k));
    println!("  navctl  (gRPC, client-side table)  {}", ms(n));
    server.kill9();
}
