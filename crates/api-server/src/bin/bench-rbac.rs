//! `make bench-rbac`: RBAC decision latency with 10,000 RoleBindings beside a baseline of 10, in the
//! same run: p50/p99/p99.9 of allowed and denied requests (the default policy loaded, aggregated
//! `admin`/`edit`/`view`, per-namespace Roles, User/Group/ServiceAccount subjects), the same under a
//! writer updating bindings as watch events would, and the cost of one update and of a relist.
//!
//! Flags: `--bindings N` (10000), `--baseline B` (10), `--samples S` (200000 per case),
//! `--readers R` (2), `--writes-per-sec W` (1000).

#![forbid(unsafe_code)]

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use navarch_api_server::authz::aggregation::aggregate_rules;
use navarch_api_server::authz::bootstrap::{cluster_role_bindings, cluster_roles};
use navarch_api_server::authz::{
    Attributes, ClusterRole, ClusterRoleBinding, PolicyRule, RbacAuthorizer, Role, RoleBinding, RoleRef,
    Subject,
};
use navarch_api_server::user_info::UserInfo;

/// The latency requirement of issue 19.
const P99_LIMIT: Duration = Duration::from_micros(50);

struct Args {
    bindings: usize,
    baseline: usize,
    samples: usize,
    readers: usize,
    writes_per_sec: u64,
}

fn args() -> Args {
    let mut a = Args { bindings: 10_000, baseline: 10, samples: 200_000, readers: 2, writes_per_sec: 1000 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or_else(|| panic!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--bindings" => a.bindings = value() as usize,
            "--baseline" => a.baseline = value() as usize,
            "--samples" => a.samples = value() as usize,
            "--readers" => a.readers = value() as usize,
            "--writes-per-sec" => a.writes_per_sec = value(),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// A small xorshift generator: the benchmark needs spread, not quality.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// The default roles with `admin`, `edit` and `view` aggregated, as the controller leaves them.
fn default_roles() -> Vec<ClusterRole> {
    let mut roles = cluster_roles();
    for _ in 0..3 {
        let snapshot = roles.clone();
        for role in &mut roles {
            if let Ok(Some(rules)) = aggregate_rules(role, &snapshot) {
                role.rules = rules;
            }
        }
    }
    roles
}

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule::resource(verbs, groups, resources)
}

/// An application's operator Role and a narrow config reader, in every namespace.
fn namespace_roles(namespace: &str) -> [Role; 2] {
    let operator = Role {
        namespace: namespace.into(),
        name: "app-operator".into(),
        rules: vec![
            rule(
                &["get", "list", "watch"],
                &[""],
                &["pods", "pods/log", "services", "endpoints", "configmaps"],
            ),
            rule(
                &["get", "list", "watch", "update", "patch"],
                &["apps"],
                &["deployments", "deployments/scale"],
            ),
            rule(&["get", "list", "watch"], &["apps"], &["replicasets"]),
            rule(&["create"], &[""], &["pods/exec", "pods/portforward"]),
            rule(&["get", "update"], &["coordination.k8s.io"], &["leases"]),
            rule(&["create", "patch"], &["", "events.k8s.io"], &["events"]),
        ],
        ..Role::default()
    };
    let reader = Role {
        namespace: namespace.into(),
        name: "config-reader".into(),
        rules: vec![rule(&["get"], &[""], &["configmaps"]).with_names(&["app-config", "feature-flags"])],
        ..Role::default()
    };
    [operator, reader]
}

/// Who binding `i` grants to, and what.
enum Grant {
    UserEdit,
    ServiceAccountOperator,
    GroupView,
    UserAndGroupReader,
}

fn grant(i: usize) -> Grant {
    match i % 4 {
        0 => Grant::UserEdit,
        1 => Grant::ServiceAccountOperator,
        2 => Grant::GroupView,
        _ => Grant::UserAndGroupReader,
    }
}

struct Scenario {
    namespaces: usize,
    bindings: usize,
}

impl Scenario {
    fn namespace(&self, i: usize) -> String {
        format!("ns-{}", i % self.namespaces)
    }

    /// A namespace other than binding `i`'s (one without bindings when there is only one).
    fn other_namespace(&self, i: usize) -> String {
        if self.namespaces > 1 { self.namespace(i + 1) } else { "ns-unbound".into() }
    }

    fn team(&self, i: usize) -> String {
        format!("team-{}", i % 200)
    }

    fn role_binding(&self, i: usize) -> RoleBinding {
        let namespace = self.namespace(i);
        let (role_ref, subjects) = match grant(i) {
            Grant::UserEdit => (RoleRef::cluster_role("edit"), vec![Subject::user(format!("user-{i}"))]),
            Grant::ServiceAccountOperator => (
                RoleRef::role("app-operator"),
                vec![Subject::service_account(namespace.clone(), format!("sa-{i}"))],
            ),
            Grant::GroupView => (RoleRef::cluster_role("view"), vec![Subject::group(self.team(i))]),
            Grant::UserAndGroupReader => (
                RoleRef::role("config-reader"),
                vec![Subject::user(format!("user-{i}")), Subject::group(self.team(i + 1))],
            ),
        };
        RoleBinding { namespace, name: format!("binding-{i}"), role_ref, subjects, ..RoleBinding::default() }
    }

    fn load(&self) -> RbacAuthorizer {
        let rbac = RbacAuthorizer::new();
        let roles = (0..self.namespaces).flat_map(|n| namespace_roles(&format!("ns-{n}")));
        let mut bindings = cluster_role_bindings();
        // A few cluster-wide grants to groups, as operations teams have.
        bindings.extend((0..(self.bindings / 100).max(1)).map(|k| ClusterRoleBinding {
            name: format!("ops-{k}"),
            role_ref: RoleRef::cluster_role("view"),
            subjects: vec![Subject::group(format!("ops-{k}"))],
            ..ClusterRoleBinding::default()
        }));
        rbac.replace_all(roles, default_roles(), (0..self.bindings).map(|i| self.role_binding(i)), bindings);
        rbac
    }

    /// The user binding `i` names, with the groups a real one would carry.
    fn user_of(&self, i: usize) -> UserInfo {
        let (name, mut groups) = match grant(i) {
            Grant::ServiceAccountOperator => (
                format!("system:serviceaccount:{}:sa-{i}", self.namespace(i)),
                vec![
                    "system:serviceaccounts".to_string(),
                    format!("system:serviceaccounts:{}", self.namespace(i)),
                ],
            ),
            Grant::GroupView => (format!("member-{i}"), vec![self.team(i)]),
            Grant::UserEdit | Grant::UserAndGroupReader => (format!("user-{i}"), vec![self.team(i + 7)]),
        };
        groups.push("system:authenticated".into());
        UserInfo { name, groups, ..UserInfo::default() }
    }

    /// A request binding `i` allows.
    fn allowed(&self, i: usize) -> Attributes {
        let ns = self.namespace(i);
        let u = self.user_of(i);
        match grant(i) {
            Grant::UserEdit => Attributes::resource(u, "get", "", "pods").namespace(ns).name("web-0"),
            Grant::ServiceAccountOperator => {
                Attributes::resource(u, "patch", "apps", "deployments").namespace(ns).name("web")
            }
            Grant::GroupView => Attributes::resource(u, "list", "apps", "replicasets").namespace(ns),
            Grant::UserAndGroupReader => {
                Attributes::resource(u, "get", "", "configmaps").namespace(ns).name("feature-flags")
            }
        }
    }

    /// A request of the same user nothing allows: in its own namespace (every rule of its roles is
    /// tried), at cluster scope, or in a namespace where it has no binding.
    fn denied(&self, i: usize, shape: usize) -> Attributes {
        let ns = self.namespace(i);
        let u = self.user_of(i);
        match shape % 3 {
            0 => Attributes::resource(u, "create", "rbac.authorization.k8s.io", "rolebindings").namespace(ns),
            1 => Attributes::resource(u, "delete", "", "nodes").name("node-1"),
            _ => Attributes::resource(u, "get", "", "secrets").namespace(self.other_namespace(i)).name("db"),
        }
    }
}

struct Stats {
    p50: Duration,
    p99: Duration,
    p999: Duration,
    max: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Stats { p50: at(0.50), p99: at(0.99), p999: at(0.999), max: samples[samples.len() - 1] }
}

fn micros(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e6)
}

/// Times `samples` decisions of the given requests, in a shuffled order; checks they all decide `want`.
fn time_decisions(
    rbac: &RbacAuthorizer,
    requests: &[Attributes],
    samples: usize,
    want: bool,
    seed: u64,
) -> Vec<Duration> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let a = &requests[rng.below(requests.len())];
        let start = Instant::now();
        let decision = black_box(rbac.authorize(black_box(a)));
        out.push(start.elapsed());
        assert_eq!(decision.is_allowed(), want, "{a:?}: {decision:?}");
    }
    out
}

fn row(label: &str, n: usize, s: &Stats) {
    println!(
        "  {label:<34} {n:>6} bindings  p50 {:>7} µs  p99 {:>7} µs  p99.9 {:>7} µs  max {:>8} µs",
        micros(s.p50),
        micros(s.p99),
        micros(s.p999),
        micros(s.max)
    );
}

struct Measured {
    allow: Stats,
    deny: Stats,
}

fn measure(
    scenario: &Scenario,
    samples: usize,
) -> (RbacAuthorizer, Measured, Vec<Attributes>, Vec<Attributes>) {
    let rbac = scenario.load();
    let picks = scenario.bindings.min(2000);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let chosen: Vec<usize> = (0..picks).map(|_| rng.below(scenario.bindings)).collect();
    let allowed: Vec<Attributes> = chosen.iter().map(|&i| scenario.allowed(i)).collect();
    let denied: Vec<Attributes> = chosen.iter().enumerate().map(|(k, &i)| scenario.denied(i, k)).collect();
    // Warm up caches and the allocator.
    time_decisions(&rbac, &allowed, samples / 10, true, 1);
    time_decisions(&rbac, &denied, samples / 10, false, 2);
    let allow = stats(time_decisions(&rbac, &allowed, samples, true, 3));
    let deny = stats(time_decisions(&rbac, &denied, samples, false, 4));
    (rbac, Measured { allow, deny }, allowed, denied)
}

/// Readers deciding while a writer updates RoleBindings at `writes_per_sec`: reader latencies and
/// the writer's update latencies.
fn under_churn(
    scenario: &Scenario,
    rbac: Arc<RbacAuthorizer>,
    requests: Arc<Vec<Attributes>>,
    readers: usize,
    samples: usize,
    writes_per_sec: u64,
) -> (Stats, Stats, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let reader_threads: Vec<_> = (0..readers)
        .map(|r| {
            let (rbac, requests) = (rbac.clone(), requests.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x1234_5678 + r as u64);
                let mut out = Vec::with_capacity(samples);
                for _ in 0..samples {
                    let a = &requests[rng.below(requests.len())];
                    let start = Instant::now();
                    black_box(rbac.authorize(black_box(a)));
                    out.push(start.elapsed());
                }
                out
            })
        })
        .collect();
    let writer = {
        let (rbac, stop) = (rbac.clone(), stop.clone());
        let updates: Vec<RoleBinding> =
            (0..1000).map(|i| scenario.role_binding(i * 7 % scenario.bindings)).collect();
        let pause = Duration::from_nanos(1_000_000_000 / writes_per_sec.max(1));
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut b = updates[k % updates.len()].clone();
                b.subjects.push(Subject::user(format!("churn-{k}")));
                let start = Instant::now();
                rbac.upsert_role_binding(b);
                out.push(start.elapsed());
                k += 1;
                std::thread::sleep(pause);
            }
            out
        })
    };
    let mut reads = Vec::new();
    for t in reader_threads {
        reads.extend(t.join().expect("reader thread"));
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().expect("writer thread");
    let count = writes.len();
    (stats(reads), stats(writes), count)
}

fn main() {
    let args = args();
    println!("RBAC decision latency (one decision = index lookup by user and groups + rule matching)");
    println!(
        "  {} samples per case, requests drawn from up to 2,000 users; machine: {} CPUs shared",
        args.samples,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let baseline = Scenario { namespaces: 1, bindings: args.baseline.max(4) };
    let large = Scenario { namespaces: (args.bindings / 10).max(1), bindings: args.bindings };

    let (_, base, _, _) = measure(&baseline, args.samples);
    let (rbac, big, allowed, denied) = measure(&large, args.samples);
    println!();
    println!("single reader:");
    row("allowed", baseline.bindings, &base.allow);
    row("allowed", large.bindings, &big.allow);
    row("denied", baseline.bindings, &base.deny);
    row("denied", large.bindings, &big.deny);

    let rbac = Arc::new(rbac);
    let mixed: Arc<Vec<Attributes>> = Arc::new(allowed.into_iter().chain(denied).collect());
    let (reads, writes, count) =
        under_churn(&large, rbac.clone(), mixed, args.readers, args.samples / 2, args.writes_per_sec);
    println!();
    println!(
        "{} readers (allowed + denied) with a writer updating RoleBindings at up to {}/s ({count} updates):",
        args.readers, args.writes_per_sec
    );
    row("decisions under churn", large.bindings, &reads);
    row("one RoleBinding update (write lock)", large.bindings, &writes);

    let start = Instant::now();
    let relisted = large.load();
    let relist = start.elapsed();
    let counts = relisted.counts();
    println!();
    println!(
        "relist (replace_all): {} Roles, {} ClusterRoles, {} RoleBindings, {} ClusterRoleBindings in {:.1} ms",
        counts.roles,
        counts.cluster_roles,
        counts.role_bindings,
        counts.cluster_role_bindings,
        relist.as_secs_f64() * 1e3
    );

    let worst = [big.allow.p99, big.deny.p99, reads.p99].into_iter().max().unwrap_or_default();
    println!();
    println!(
        "requirement: decision p99 < {} µs with {} RoleBindings: {} (worst p99 {} µs)",
        P99_LIMIT.as_micros(),
        large.bindings,
        if worst < P99_LIMIT { "PASS" } else { "FAIL" },
        micros(worst)
    );
}
