//! `make bench-job`: the Job controller's cost on the running `make up` cluster (its nodes run the
//! pods). A Job of `--completions` (200) pods with `--parallelism` (20) of a trivial container
//! (busybox `true`) is timed from its create call to its `Complete` condition; beside it, in the
//! same run, the same pods created directly by this program, which keeps `parallelism` of them
//! active and creates the next as soon as one has succeeded (what the controller does, minus its
//! bookkeeping: tracking finalizers, status, expectations). Two rounds, in opposite orders. Printed:
//! each run, the means of both wall times, the
//! difference per pod, and the CPU seconds the controller-manager and the api-server spent in each.
//!
//! Flags: `--completions N`, `--parallelism P`. Needs the kubeconfig `make up` wrote
//! (`$NAVARCH_HOME/kubeconfig`, default `.navarch/kubeconfig`).

#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{Job, Namespace, Pod};
use navarch_client::{Api, Client, Connection, DeleteParams, ListParams, WatchEvent, WatchParams};

const NS: &str = "bench-job";
const CONTAINER: &str = "{name: c, image: 'busybox:1.36', imagePullPolicy: IfNotPresent, command: ['true']}";

fn job(name: &str, completions: usize, parallelism: usize) -> Job {
    serde_yaml::from_str(&format!(
        "{{metadata: {{name: {name}}}, spec: {{completions: {completions}, parallelism: {parallelism}, template: {{spec: {{restartPolicy: Never, terminationGracePeriodSeconds: 0, containers: [{CONTAINER}]}}}}}}}}"
    ))
    .expect("job manifest")
}

fn pod(tag: &str, i: usize) -> Pod {
    serde_yaml::from_str(&format!(
        "{{metadata: {{name: {tag}-{i:04}, labels: {{bench: {tag}}}}}, spec: {{restartPolicy: Never, terminationGracePeriodSeconds: 0, containers: [{CONTAINER}]}}}}"
    ))
    .expect("pod manifest")
}

fn phase(p: &Pod) -> &str {
    p.status.as_ref().map(|s| s.phase.as_str()).unwrap_or_default()
}

/// CPU seconds (user + system) of the process named `name` (its first 15 bytes, as /proc shows it).
fn cpu_seconds(name: &str) -> f64 {
    let comm: String = name.chars().take(15).collect();
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let dir = entry.path();
        if std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.trim() == comm)
            && let Ok(stat) = std::fs::read_to_string(dir.join("stat"))
            && let Some((_, rest)) = stat.rsplit_once(')')
        {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks: f64 =
                fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
            total += ticks / 100.0;
        }
    }
    total
}

/// CPU seconds of the controller-manager and the api-server so far.
fn control_plane_cpu() -> (f64, f64) {
    (cpu_seconds("controller-manager"), cpu_seconds("api-server"))
}

async fn fresh_namespace(c: &Client) {
    let namespaces: Api<Namespace> = c.api("");
    if namespaces.get_opt(NS).await.expect("get namespace").is_some() {
        namespaces.delete(NS, &DeleteParams::default()).await.expect("delete namespace");
        let t = Instant::now();
        while namespaces.get_opt(NS).await.expect("get namespace").is_some() {
            assert!(t.elapsed() < Duration::from_secs(180), "namespace {NS} not gone");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let ns: Namespace = serde_yaml::from_str(&format!("{{metadata: {{name: {NS}}}}}")).unwrap();
    namespaces.create(&ns).await.expect("create namespace");
    // Pods need the namespace's default ServiceAccount.
    let t = Instant::now();
    let accounts: Api<navarch_api::v1::ServiceAccount> = c.api(NS);
    while accounts.get_opt("default").await.expect("get serviceaccount").is_none() {
        assert!(t.elapsed() < Duration::from_secs(30), "no default ServiceAccount in {NS}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Job: create to `Complete`.
async fn through_the_controller(c: &Client, name: &str, completions: usize, parallelism: usize) -> Duration {
    let jobs: Api<Job> = c.api(NS);
    let list = jobs.list(&ListParams::default()).await.expect("list jobs");
    let mut watch = jobs
        .watch(&WatchParams { resource_version: list.resource_version, ..Default::default() })
        .await
        .expect("watch jobs");
    let t = Instant::now();
    jobs.create(&job(name, completions, parallelism)).await.expect("create job");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let ev = tokio::time::timeout_at(deadline.into(), watch.next())
            .await
            .expect("the Job did not complete in 10 minutes")
            .expect("watch ended")
            .expect("watch event");
        let (WatchEvent::Added(j) | WatchEvent::Modified(j)) = ev else { continue };
        if j.meta().name != name {
            continue;
        }
        let status = j.status.unwrap_or_default();
        if status.conditions.iter().any(|c| c.r#type == "Failed" && c.status == "True") {
            panic!("the Job failed: {:?}", status.conditions);
        }
        if status.conditions.iter().any(|c| c.r#type == "Complete" && c.status == "True") {
            assert_eq!(status.succeeded, completions as i32, "succeeded");
            return t.elapsed();
        }
    }
}

/// The same pods created directly, `parallelism` at a time, until `completions` succeeded.
async fn directly(c: &Client, tag: &str, completions: usize, parallelism: usize) -> Duration {
    let pods: Api<Pod> = c.api(NS);
    let selector = format!("bench={tag}");
    let params = ListParams { label_selector: selector.clone(), ..Default::default() };
    let list = pods.list(&params).await.expect("list pods");
    let mut watch = pods
        .watch(&WatchParams {
            resource_version: list.resource_version,
            label_selector: selector,
            ..Default::default()
        })
        .await
        .expect("watch pods");
    let t = Instant::now();
    let mut created = 0;
    let mut succeeded = HashSet::new();
    let mut failed = HashSet::new();
    while created < parallelism.min(completions) {
        pods.create(&pod(tag, created)).await.expect("create pod");
        created += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while succeeded.len() < completions {
        let ev = tokio::time::timeout_at(deadline.into(), watch.next())
            .await
            .expect("the pods did not finish in 10 minutes")
            .expect("watch ended")
            .expect("watch event");
        let (WatchEvent::Added(p) | WatchEvent::Modified(p)) = ev else { continue };
        let name = p.meta().name.clone();
        let newly = match phase(&p) {
            "Succeeded" => succeeded.insert(name),
            "Failed" => failed.insert(name),
            _ => false,
        };
        assert!(failed.is_empty(), "a pod failed: {failed:?}");
        if newly && created < completions {
            pods.create(&pod(tag, created)).await.expect("create pod");
            created += 1;
        }
    }
    t.elapsed()
}

#[tokio::main]
async fn main() {
    let (mut completions, mut parallelism) = (200, 20);
    let args: Vec<String> = std::env::args().skip(1).collect();
    for w in args.chunks(2) {
        let value = || w.get(1).and_then(|v| v.parse().ok()).expect("a number after the flag");
        match w[0].as_str() {
            "--completions" => completions = value(),
            "--parallelism" => parallelism = value(),
            other => panic!("unknown flag {other} (flags: --completions N, --parallelism P)"),
        }
    }
    let home = std::env::var_os("NAVARCH_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| navarch_tests::workspace_root().join(".navarch"));
    let (conn, _) = Connection::from_kubeconfig(&home.join("kubeconfig"))
        .expect("the kubeconfig of make up (start a cluster with make up first)");
    let c = Client::connect(&conn).await.expect("the api-server of make up");
    println!(
        "== a Job of {completions} completions, parallelism {parallelism}, busybox `true`, on the make up cluster ({} cores)",
        std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1)
    );
    fresh_namespace(&c).await;
    // Warm-up: the image on every node, the first pods' one-time costs.
    directly(&c, "warmup", 4, 4).await;

    // Two rounds in opposite orders, so neither side always runs on nodes fuller of finished pods.
    let (mut job_time, mut direct_time) = (Duration::ZERO, Duration::ZERO);
    let (mut job_cpu, mut direct_cpu) = ((0.0, 0.0), (0.0, 0.0));
    for round in 0..2 {
        for job_first in [round == 0, round == 1] {
            let before = control_plane_cpu();
            if job_first {
                let d =
                    through_the_controller(&c, &format!("trivial-{round}"), completions, parallelism).await;
                println!("  round {}: Job {:.1} s", round + 1, d.as_secs_f64());
                job_time += d / 2;
            } else {
                let d = directly(&c, &format!("direct{round}"), completions, parallelism).await;
                println!("  round {}: direct {:.1} s", round + 1, d.as_secs_f64());
                direct_time += d / 2;
            }
            let after = control_plane_cpu();
            let spent = if job_first { &mut job_cpu } else { &mut direct_cpu };
            spent.0 += (after.0 - before.0) / 2.0;
            spent.1 += (after.1 - before.1) / 2.0;
        }
    }
    println!("  means of the two rounds:");

    let per_pod = |d: Duration| d.as_secs_f64() * 1000.0 / completions as f64;
    println!(
        "  Job (controller)         {:>7.1} s   {:>6.1} ms/pod",
        job_time.as_secs_f64(),
        per_pod(job_time)
    );
    println!(
        "  pods created directly    {:>7.1} s   {:>6.1} ms/pod   (baseline, same run)",
        direct_time.as_secs_f64(),
        per_pod(direct_time)
    );
    println!(
        "  controller overhead      {:>+7.1} s   {:>+6.1} ms/pod   ({:.0}% of the baseline)",
        job_time.as_secs_f64() - direct_time.as_secs_f64(),
        per_pod(job_time) - per_pod(direct_time),
        100.0 * (job_time.as_secs_f64() / direct_time.as_secs_f64() - 1.0)
    );
    println!("  controller-manager CPU   {:.2} s (Job)   {:.2} s (direct)", job_cpu.0, direct_cpu.0);
    println!("  api-server CPU           {:.2} s (Job)   {:.2} s (direct)", job_cpu.1, direct_cpu.1);
    let namespaces: Api<Namespace> = c.api("");
    namespaces.delete(NS, &DeleteParams::default()).await.expect("delete namespace");
}
