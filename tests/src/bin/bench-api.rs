//! `make bench-api`: the api-server's create throughput and latency with its security on beside the
//! same api-server binary with as little security as it runs with, and beside raw etcd puts (same
//! concurrency, same value size), all measured in the same run; the api-server's memory with every pod
//! stored, and watch fan-out delivery latency to many concurrent watchers.
//!
//! Secured, as a cluster runs it: TLS, the client authenticated by its certificate as a user without
//! groups whom only a RoleBinding in `default` allows the creates (RBAC walks the bindings of
//! `system:authenticated` first: no superuser group short-circuits it), the Node authorizer before
//! RBAC, ServiceAccount token keys loaded, and the audit log at `deploy/config/audit-policy.yaml`
//! written to a file (pod creates are logged at `Request` level, with their bodies). Baseline: the same
//! binary with everything off that can be: `--authorization-mode=AlwaysAllow`, no client certificate
//! (the client is `system:anonymous`), no audit log, no ServiceAccount keys. TLS stays: the api-server,
//! like kube-apiserver since 1.20, has no plaintext port. Each runs `--rounds` times
//! on a fresh etcd and api-server, alternating (secured, baseline, baseline, secured for 2), and each
//! figure sums its runs.
//!
//! The creates go through both doors as clients send them: gRPC (navarch's client) and REST (JSON
//! bodies over keep-alive HTTP/1.1 in TLS, as kubectl and client libraries send them). Then the time of
//! `kubectl get pods -A` with `--list-pods` pods stored beside `navctl get pods -A`.
//!
//! Last, the create latency with `--quotas` (10) ResourceQuotas in the namespace beside none (N/4 gRPC
//! creates per run, fresh etcd + api-server each): every create is charged to every quota by admission.
//!
//! Flags: `--pods N` (20000 per door and run), `--concurrency C` (64), `--rounds R` (2),
//! `--watchers W` (1000), `--watch-events E` (100), `--list-pods L` (5000), `--quotas Q` (10),
//! `--quota-only N` (only the quota comparison, N creates per run: `make bench-quota`).

#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{
    Container, ObjectMeta, Pod, PodSpec, Quantity, ResourceQuota, ResourceQuotaSpec, ResourceQuotaStatus,
    ResourceRequirements, Role, RoleBinding,
};
use navarch_client::{Api, Client, Connection, ListParams, WatchEvent, WatchParams};
use navarch_tests::{ApiServer, CpuSample, Etcd, eventually, percentile, workspace_root};
use prost::Message;
use tempfile::TempDir;
use tokio::sync::Mutex;

struct Args {
    pods: usize,
    concurrency: usize,
    rounds: usize,
    watchers: usize,
    watch_events: usize,
    list_pods: usize,
    /// Only the ResourceQuota comparison, with this many creates per run (`--quota-only N`).
    quota_only: Option<usize>,
    /// ResourceQuotas in the namespace for that comparison (`--quotas Q`, 10).
    quotas: usize,
}

fn args() -> Args {
    let mut a = Args {
        pods: 20_000,
        concurrency: 64,
        rounds: 2,
        watchers: 1000,
        watch_events: 100,
        list_pods: 5000,
        quota_only: None,
        quotas: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value =
            || it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--pods" => a.pods = value(),
            "--concurrency" => a.concurrency = value(),
            "--rounds" => a.rounds = value(),
            "--watchers" => a.watchers = value(),
            "--watch-events" => a.watch_events = value(),
            "--list-pods" => a.list_pods = value(),
            "--quota-only" => a.quota_only = Some(value()),
            "--quotas" => a.quotas = value(),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(a.rounds > 0, "--rounds must be at least 1");
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

/// Measured operations: how long they took altogether and each one's latency (sorted).
#[derive(Default)]
struct Stats {
    count: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }

    fn p(&self, quantile: f64) -> Duration {
        percentile(&self.latencies, quantile)
    }

    /// Adds another run: operations over the total time, latencies pooled.
    fn add(&mut self, run: Stats) {
        self.count += run.count;
        self.elapsed += run.elapsed;
        self.latencies.extend(run.latencies);
        self.latencies.sort();
    }
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
    let mut latencies = std::mem::take(&mut *latencies.lock().await);
    latencies.sort();
    Stats { count: total, elapsed, latencies }
}

/// `total` pods `<prefix>-<i>` created in `default` through the gRPC door as `conn`'s identity.
async fn grpc_creates(conn: &Connection, prefix: &'static str, total: usize, concurrency: usize) -> Stats {
    drive(
        total,
        concurrency,
        || {
            let conn = conn.clone();
            async move { Client::connect(&conn).await.expect("api-server").api::<Pod>("default") }
        },
        move |pods: Api<Pod>, i| {
            Box::pin(async move {
                pods.create(&pod(format!("{prefix}-{i:06}"))).await.expect("create");
                pods
            })
        },
    )
    .await
}

/// The same creates through the REST door (JSON, keep-alive HTTP/1.1 in TLS) as `stem` (`None`:
/// without a client certificate).
async fn rest_creates(server: &ApiServer, stem: Option<&str>, total: usize, concurrency: usize) -> Stats {
    drive(
        total,
        concurrency,
        || rest_connection(server, stem),
        |mut conn: RestConnection, i| {
            Box::pin(async move {
                conn.create_pod(&pod(format!("rest-pod-{i:06}"))).await;
                conn
            })
        },
    )
    .await
}

fn rss_mib(pid: u32) -> f64 {
    navarch_tests::rss_bytes(pid).map(|b| b as f64 / (1024.0 * 1024.0)).unwrap_or(0.0)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The api-server's security in a run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Security {
    /// As little as the binary runs with: TLS only (it has no plaintext port); authorization
    /// `AlwaysAllow`; the client anonymous (no certificate); no audit log.
    Baseline,
    /// TLS, the client certificate of [`BENCH_USER`] allowed by a RoleBinding, Node,RBAC,
    /// ServiceAccount token keys, the audit log at `deploy/config/audit-policy.yaml` to a file.
    Secured,
}

/// The secured runs' client: a certificate without groups, allowed only by the RoleBinding
/// [`bind_bench_user`] makes.
const BENCH_USER: &str = "bench-user";

/// The order of round `round` of `rounds`: alternating, the last one ending with [`Security::Secured`]
/// (whose api-server then serves the watch fan-out).
fn order(round: usize, rounds: usize) -> [Security; 2] {
    if (rounds - 1 - round).is_multiple_of(2) {
        [Security::Baseline, Security::Secured]
    } else {
        [Security::Secured, Security::Baseline]
    }
}

/// A fresh etcd and api-server for one run, and the identity (PKI stem) the benchmark's clients use
/// (`None`: anonymous).
struct Cluster {
    server: ApiServer,
    _etcd: Etcd,
    stem: Option<String>,
    /// The audit log's directory (secured runs).
    audit: Option<TempDir>,
}

impl Cluster {
    async fn start(security: Security) -> Cluster {
        let etcd = Etcd::start().await;
        if security == Security::Baseline {
            let server = ApiServer::start_with(&etcd, &["--authorization-mode=AlwaysAllow"]).await;
            return Cluster { server, _etcd: etcd, stem: None, audit: None };
        }
        let audit = tempfile::Builder::new().prefix("navarch-bench-audit-").tempdir().expect("temp dir");
        let pki = etcd.pki().clone();
        let file = |f: &str| pki.path(f).display().to_string();
        let policy = workspace_root().join("deploy/config/audit-policy.yaml");
        let args = [
            format!("--audit-policy-file={}", policy.display()),
            format!("--audit-log-path={}", audit.path().join("audit.log").display()),
            format!("--service-account-key-file={}", file("sa.pub")),
            format!("--service-account-signing-key-file={}", file("sa.key")),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = ApiServer::start_with(&etcd, &args).await;
        let stem = bind_bench_user(&server).await;
        Cluster { server, _etcd: etcd, stem: Some(stem), audit: Some(audit) }
    }

    fn connection(&self) -> Connection {
        match &self.stem {
            Some(stem) => self.server.connection(stem),
            None => Connection { identity: None, ..self.server.connection("admin") },
        }
    }
}

/// Lets [`BENCH_USER`] create, read and watch pods in `default` (a Role and a RoleBinding, made by the
/// admin) and returns its PKI stem once the api-server's RBAC index has both; checks that it may do
/// nothing more with pods elsewhere.
async fn bind_bench_user(server: &ApiServer) -> String {
    let admin = Client::connect(&server.connection("admin")).await.expect("api-server");
    let role: Role = serde_yaml::from_str(
        "metadata: {name: bench-pods}\nrules: [{apiGroups: [''], resources: [pods], verbs: [create, get, list, watch]}]\n",
    )
    .expect("a Role");
    admin.api::<Role>("default").create(&role).await.expect("creating the Role");
    let binding: RoleBinding = serde_yaml::from_str(&format!(
        "metadata: {{name: bench-pods}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: bench-pods}}\n\
         subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {BENCH_USER}}}]\n"
    ))
    .expect("a RoleBinding");
    admin.api::<RoleBinding>("default").create(&binding).await.expect("creating the RoleBinding");
    let stem = server.pki().user(BENCH_USER, &[]);
    let user = Client::connect(&server.connection(&stem)).await.expect("api-server");
    let first = ListParams { limit: 1, ..Default::default() };
    let pods = user.api::<Pod>("default");
    eventually("the bench user may list pods in default", Duration::from_secs(10), async || {
        pods.list(&first).await
    })
    .await;
    match user.api::<Pod>("kube-system").list(&first).await {
        Err(e) => assert!(e.to_string().contains("forbidden"), "listing pods in kube-system: {e}"),
        Ok(_) => panic!("{BENCH_USER} may list pods in kube-system: RBAC is not what it should be"),
    }
    stem
}

/// The creates [`BENCH_USER`] made that the audit log holds (`ResponseComplete` events), every event,
/// and the log's bytes (rotated files included).
#[derive(Default)]
struct AuditFigures {
    creates: usize,
    events: usize,
    bytes: u64,
}

impl AuditFigures {
    fn read(dir: &Path) -> AuditFigures {
        let mut out = AuditFigures::default();
        let user = format!(r#""username":"{BENCH_USER}""#);
        for entry in std::fs::read_dir(dir).expect("the audit log's directory") {
            let text =
                std::fs::read_to_string(entry.expect("a directory entry").path()).expect("an audit log");
            out.bytes += text.len() as u64;
            for line in text.lines() {
                out.events += 1;
                out.creates += usize::from(
                    line.contains(r#""verb":"create""#)
                        && line.contains(r#""stage":"ResponseComplete""#)
                        && line.contains(&user),
                );
            }
        }
        out
    }

    /// What the log holds once the writer has caught up with `expected` creates (it writes in the
    /// background; waits up to 10 s, then takes what is there: events dropped on a full queue never come).
    async fn settled(dir: &Path, expected: usize) -> AuditFigures {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let figures = AuditFigures::read(dir);
            if figures.creates >= expected || Instant::now() > deadline {
                return figures;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn add(&mut self, other: AuditFigures) {
        self.creates += other.creates;
        self.events += other.events;
        self.bytes += other.bytes;
    }
}

/// One security setting's figures over its runs.
#[derive(Default)]
struct Totals {
    grpc: Stats,
    rest: Stats,
    /// The api-server's RSS after the gRPC creates of its last run.
    rss_mib: f64,
    audit: AuditFigures,
    /// The largest share of the CPU other processes took during one of its runs' creates.
    others: f64,
}

/// One run: a fresh cluster, the gRPC creates, the RSS, the REST creates (and, secured, the audit log's
/// count of them). Returns the cluster, still running.
async fn run(security: Security, a: &Args, totals: &mut Totals) -> Cluster {
    let cluster = Cluster::start(security).await;
    let cpu = CpuSample::now();
    totals.grpc.add(grpc_creates(&cluster.connection(), "bench-pod", a.pods, a.concurrency).await);
    totals.rss_mib = cluster.server.pid().map(rss_mib).unwrap_or(0.0);
    totals.rest.add(rest_creates(&cluster.server, cluster.stem.as_deref(), a.pods, a.concurrency).await);
    totals.others = totals.others.max(CpuSample::now().others_since(&cpu));
    if let Some(dir) = &cluster.audit {
        totals.audit.add(AuditFigures::settled(dir.path(), 2 * a.pods).await);
    }
    cluster
}

fn row(label: &str, s: &Stats) {
    println!("{label:<34} {:>12.0} {:>12} {:>12}", s.rate(), ms(s.p(0.5)), ms(s.p(0.99)));
}

fn ratio(secured: &Stats, baseline: &Stats) -> f64 {
    100.0 * secured.rate() / baseline.rate()
}

#[tokio::main]
async fn main() {
    let a = args();
    if let Some(pods) = a.quota_only {
        quota_admission(pods, a.concurrency, a.rounds, a.quotas).await;
        return;
    }
    println!(
        "bench-api: {} pods per door and run, concurrency {}, {} round(s) of secured and baseline runs, \
         {} watchers x {} events",
        a.pods, a.concurrency, a.rounds, a.watchers, a.watch_events
    );
    let value_size = pod("bench-pod-000000".into()).encode_to_vec().len() + 250; // + server-set metadata

    // Raw etcd puts, same concurrency and value size, create-if-absent like the api-server.
    let etcd = Etcd::start().await;
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
    drop(etcd);

    let (mut secured, mut baseline) = (Totals::default(), Totals::default());
    let mut last = None;
    for round in 0..a.rounds {
        for security in order(round, a.rounds) {
            drop(last.take()); // one cluster at a time
            let totals = if security == Security::Secured { &mut secured } else { &mut baseline };
            last = Some(run(security, &a, totals).await);
        }
    }
    let cluster = last.expect("a run");

    println!();
    println!(
        "{:<34} {:>12} {:>12} {:>12}",
        format!("create (value ~{value_size} B)"),
        "per second",
        "p50",
        "p99"
    );
    row("raw etcd txn put", &raw);
    row("gRPC create Pod, baseline", &baseline.grpc);
    row("gRPC create Pod, secured", &secured.grpc);
    row("REST create Pod (JSON), baseline", &baseline.rest);
    row("REST create Pod (JSON), secured", &secured.rest);
    println!(
        "secured / baseline: gRPC {:.0}%, REST {:.0}% (goal >= 85%); p99 gRPC {} vs {}, REST {} vs {}",
        ratio(&secured.grpc, &baseline.grpc),
        ratio(&secured.rest, &baseline.rest),
        ms(secured.grpc.p(0.99)),
        ms(baseline.grpc.p(0.99)),
        ms(secured.rest.p(0.99)),
        ms(baseline.rest.p(0.99)),
    );
    println!(
        "  secured: TLS; client certificate of {BENCH_USER:?} (no groups) allowed by a RoleBinding in default; \
         Node,RBAC; audit log at deploy/config/audit-policy.yaml to a file: {} of {} creates logged \
         ({} events, {:.1} MiB)",
        secured.audit.creates,
        secured.grpc.count + secured.rest.count,
        secured.audit.events,
        secured.audit.bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "  baseline: the least the api-server runs with: TLS (no plaintext port), \
         --authorization-mode=AlwaysAllow, an anonymous client (no certificate), no audit log"
    );
    println!(
        "  each: {} run(s) of {} creates per door on a fresh etcd + api-server, in the order {}",
        a.rounds,
        a.pods,
        (0..a.rounds)
            .flat_map(|r| order(r, a.rounds))
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let others = secured.others.max(baseline.others);
    println!(
        "  other processes took at most {:.1}% of the CPU during a run{}",
        100.0 * others,
        if others > 0.05 {
            ": the machine was not quiet, these figures are disturbed (run again)"
        } else {
            ""
        }
    );
    println!(
        "api-server (secured, gRPC) / raw etcd: {:.0}% (goal >= 50%); p99 create {} (goal < 50 ms at C={})",
        100.0 * secured.grpc.rate() / raw.rate(),
        ms(secured.grpc.p(0.99)),
        a.concurrency
    );
    println!("REST / gRPC, secured: {:.0}% (goal >= 70%)", 100.0 * secured.rest.rate() / secured.grpc.rate());
    println!(
        "api-server RSS with {} pods stored: secured {:.1} MiB, baseline {:.1} MiB (goal < 100 MB)",
        a.pods, secured.rss_mib, baseline.rss_mib
    );

    watch_fan_out(cluster, a.watchers, a.watch_events).await;
    list_all_namespaces(a.list_pods, a.concurrency).await;
    quota_admission(a.pods / 4, a.concurrency, a.rounds, a.quotas).await;
}

/// The resources the benchmark's quotas constrain, one set per quota in turn (all generous: nothing
/// is refused, every create is charged).
const QUOTA_HARDS: &[&[(&str, &str)]] = &[
    &[("pods", "1000000")],
    &[("requests.cpu", "100k"), ("requests.memory", "100Ti")],
    &[("limits.memory", "100Ti")],
    &[("count/pods", "1000000")],
    &[("cpu", "100k"), ("memory", "100Ti")],
];

/// `quotas` ResourceQuotas in `default`, with the status the resource quota controller would write
/// (hard = spec.hard, nothing used): from then on admission charges each of them on every pod create.
async fn make_quotas(conn: &Connection, quotas: usize) {
    let api = Client::connect(conn).await.expect("api-server").api::<ResourceQuota>("default");
    for i in 0..quotas {
        let hard: std::collections::BTreeMap<String, Quantity> = QUOTA_HARDS[i % QUOTA_HARDS.len()]
            .iter()
            .map(|(k, v)| (k.to_string(), Quantity::new(*v)))
            .collect();
        let mut q = ResourceQuota {
            metadata: Some(ObjectMeta { name: format!("quota-{i}"), ..Default::default() }),
            spec: Some(ResourceQuotaSpec { hard: hard.clone(), ..Default::default() }),
            ..Default::default()
        };
        q.set_type_meta();
        let mut q = api.create(&q).await.expect("create quota");
        let used = hard.keys().map(|k| (k.clone(), Quantity::new("0"))).collect();
        q.status = Some(ResourceQuotaStatus { hard, used });
        api.update_status(&q).await.expect("quota status");
    }
}

/// The api-server's create latency with `quotas` ResourceQuotas in the namespace beside none: `pods`
/// gRPC creates at `concurrency` on a fresh etcd + api-server each, `rounds` rounds alternating.
async fn quota_admission(pods: usize, concurrency: usize, rounds: usize, quotas: usize) {
    let (mut with, mut without) = (Stats::default(), Stats::default());
    for round in 0..rounds {
        let order = if round % 2 == 0 { [false, true] } else { [true, false] };
        for with_quotas in order {
            let etcd = Etcd::start().await;
            let server = ApiServer::start_with(&etcd, &[]).await;
            let conn = server.connection("admin");
            if with_quotas {
                make_quotas(&conn, quotas).await;
            }
            let run = grpc_creates(&conn, "quota-pod", pods, concurrency).await;
            if with_quotas { with.add(run) } else { without.add(run) }
        }
    }
    println!();
    println!(
        "{:<34} {:>12} {:>12} {:>12}",
        format!("create Pod, gRPC, C={concurrency}"),
        "per second",
        "p50",
        "p99"
    );
    row("no ResourceQuota in the namespace", &without);
    row(&format!("{quotas} ResourceQuotas in the namespace"), &with);
    println!(
        "  {quotas} quotas charged on every create (pods, compute requests and limits, count/pods): p99 {} vs {}, \
         throughput {:.0}% of none; {rounds} round(s) of {pods} creates each, fresh etcd + api-server per run",
        ms(with.p(0.99)),
        ms(without.p(0.99)),
        100.0 * with.rate() / without.rate()
    );
}

/// Watch fan-out on the last (secured) run's api-server: W watchers on pods as the bench user, E
/// creates, latency from create start to each delivery.
async fn watch_fan_out(mut cluster: Cluster, watchers: usize, events: usize) {
    let conn = cluster.connection();
    let client = Client::connect(&conn).await.expect("api-server");
    let pods = client.api::<Pod>("default");
    let rv = pods.list(&ListParams { limit: 1, ..Default::default() }).await.expect("list").resource_version;
    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; events]));
    let delays: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let mut watch_tasks = Vec::new();
    let setup = Instant::now();
    for w in 0..watchers {
        // A few connections shared by the watchers, as informers in one process share one.
        let c = if w % 50 == 0 { Client::connect(&conn).await.expect("api-server") } else { client.clone() };
        let mut stream = c
            .api::<Pod>("default")
            .watch(&WatchParams { resource_version: rv.clone(), ..Default::default() })
            .await
            .expect("watch");
        let (sent_at, delays) = (sent_at.clone(), delays.clone());
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
                if seen == events {
                    break;
                }
            }
        }));
    }
    println!();
    println!(
        "{watchers} watchers open in {:.2} s (secured api-server, as {BENCH_USER})",
        setup.elapsed().as_secs_f64()
    );
    for i in 0..events {
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
        watchers * events,
        ms(percentile(&d, 0.5)),
        ms(percentile(&d, 0.99)),
        if wait.is_err() { " (timed out waiting for some watchers)" } else { "" }
    );
    println!(
        "api-server RSS with {watchers} watchers: {:.1} MiB",
        cluster.server.pid().map(rss_mib).unwrap_or(0.0)
    );
    cluster.server.kill9();
}

/// One keep-alive HTTP/1.1 connection to the REST API.
struct RestConnection {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
}

/// TLS with `stem`'s client certificate (`None`: without one), as kubectl connects.
fn rest_connection(server: &ApiServer, stem: Option<&str>) -> impl Future<Output = RestConnection> + use<> {
    let addr = server.addr();
    let tls = server.pki().rustls_config(stem, &[b"http/1.1"]);
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
    grpc_creates(&server.connection("admin"), "list-pod", pods, concurrency).await;
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
