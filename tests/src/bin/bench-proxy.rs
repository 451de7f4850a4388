//! `make bench-proxy`: kube-proxy at scale on this host's real nftables, shaped like the issue's
//! goal. N Services (10,000) with 5 endpoints each (pods spread over 100 nodes) are created in a fresh etcd + api-server, then
//! kube-proxy starts:
//!
//! * **first full sync**: the time of the one nftables transaction that programs everything (from
//!   kube-proxy's own histogram), and from process start to healthy (includes listing);
//! * **change-to-live**: 1,000 times, one Endpoints object gains an address; timed from the update
//!   call until the kernel commits the new endpoint's DNAT rule (seen on a netlink socket in the
//!   nftables multicast group, which reports each committed transaction), p50/p99;
//! * **cost of one change**: the rules and map elements the sync touched (kube-proxy's gauge).
//!
//! Baselines measured in the same run: one `nft -f` transaction adding one map element (the floor
//! of any kernel change here) and an Endpoints update through the api-server alone. Cleans up
//! (`kube-proxy --cleanup`) at the end.
//!
//! Flags: `--services N` (10000), `--changes N` (1000).

#![forbid(unsafe_code)]

use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{Endpoints, Service};
use navarch_client::Api;
use navarch_tests::{Daemon, TestEnv, binary, http_get, percentile};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Endpoints as the Endpoints controller writes them, with each address's node: the pods are spread
/// over `NODES` nodes and kube-proxy runs as `node-0` (only its own pods can hairpin through it).
fn endpoints(name: &str, ips: &[String]) -> Endpoints {
    let addrs: Vec<String> = ips
        .iter()
        .map(|ip| {
            let node = u32::from(ip.parse::<std::net::Ipv4Addr>().unwrap()) as usize % NODES;
            format!("{{ip: {ip}, nodeName: node-{node}}}")
        })
        .collect();
    serde_yaml::from_str(&format!(
        "{{metadata: {{name: {name}, namespace: default}}, subsets: [{{addresses: [{}], ports: [{{name: http, port: 8080}}]}}]}}",
        addrs.join(", ")
    ))
    .unwrap()
}

const NODES: usize = 100;

fn ep_ips(i: usize) -> Vec<String> {
    (0..5).map(|k| format!("10.244.{}.{}", (i * 5 + k) / 250 % 250, (i * 5 + k) % 250 + 1)).collect()
}

fn nft_ok(args: &[&str]) -> bool {
    Command::new("nft").args(args).output().is_ok_and(|o| o.status.success())
}

fn metric(addr: std::net::SocketAddr, name: &str) -> Option<f64> {
    let (_, text) = http_get(addr, "/metrics")?;
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every rule the kernel commits, as the raw NFT_MSG_NEWRULE message: a netlink socket in the
/// NFNLGRP_NFTABLES group (what `nft monitor` listens to, without its cache of the whole ruleset,
/// which takes minutes to build at 10,000 Services).
fn nft_rule_commits() -> std::sync::mpsc::Receiver<Vec<u8>> {
    use nix::sys::socket::{
        AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, setsockopt,
        socket, sockopt,
    };
    use std::os::fd::AsRawFd;
    const NFNLGRP_NFTABLES: u32 = 7;
    const NFT_MSG_NEWRULE: u16 = (10 << 8) | 6;
    let fd =
        socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkNetFilter)
            .expect("netlink socket");
    // Groups 1..=32 are joined at bind time through the address's bitmask.
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 1 << (NFNLGRP_NFTABLES - 1)))
        .expect("joining NFNLGRP_NFTABLES");
    let _ = setsockopt(&fd, sockopt::RcvBufForce, &(16 << 20));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).expect("netlink recv");
            let mut msgs = &buf[..n];
            while msgs.len() >= 16 {
                let len = u32::from_ne_bytes(msgs[..4].try_into().unwrap()) as usize;
                let kind = u16::from_ne_bytes(msgs[4..6].try_into().unwrap());
                if len < 16 || len > msgs.len() {
                    break;
                }
                if kind == NFT_MSG_NEWRULE && tx.send(msgs[16..len].to_vec()).is_err() {
                    return;
                }
                msgs = &msgs[(len + 3) & !3..];
            }
        }
    });
    rx
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let n = arg("--services", 10_000);
    let changes = arg("--changes", 1_000);
    let _ = Command::new(binary("kube-proxy", "kube-proxy")).arg("--cleanup").output();
    let env = TestEnv::start().await;
    let c = env.client().await;
    let svcs: Api<Service> = c.api("default");
    let eps: Api<Endpoints> = c.api("default");
    eprintln!("creating {n} Services with 5 endpoints each...");
    let t = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(32, |i| {
            let (svcs, eps) = (svcs.clone(), eps.clone());
            async move {
                let name = format!("svc-{i}");
                let s: Service = serde_yaml::from_str(&format!(
                    "{{metadata: {{name: {name}, namespace: default}}, spec: {{ports: [{{name: http, port: 80, targetPort: 8080}}]}}}}"
                ))
                .unwrap();
                svcs.create(&s).await.expect("creating a Service");
                eps.create(&endpoints(&name, &ep_ips(i))).await.expect("creating Endpoints");
            }
        })
        .await;
    eprintln!("created in {:.1} s", t.elapsed().as_secs_f64());

    // Baseline: one nft transaction adding one element to a map (in a scratch table).
    let _ = Command::new("nft").args(["add table ip navarch-bench; add map ip navarch-bench m { type ipv4_addr : verdict; }; add chain ip navarch-bench c"]).output();
    let mut floor = Vec::new();
    for i in 0..100 {
        let t = Instant::now();
        assert!(nft_ok(&[&format!(
            "add element ip navarch-bench m {{ 10.1.{}.{} : goto c }}",
            i / 250,
            i % 250 + 1
        )]));
        floor.push(t.elapsed());
    }
    let _ = Command::new("nft").args(["delete table ip navarch-bench"]).output();
    floor.sort();

    let started = Instant::now();
    let proxy = Daemon::start(
        &env,
        "kube-proxy",
        "kube-proxy",
        &["--hostname-override=node-0", "--cluster-cidr=10.244.0.0/16"],
    );
    let healthy = loop {
        if http_get(proxy.http, "/healthz").is_some_and(|(s, _)| s == 200) {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(300), "kube-proxy never synced");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let full_sync = metric(proxy.http, "kubeproxy_sync_proxy_rules_duration_seconds_sum").unwrap_or(f64::NAN);
    let rules = metric(proxy.http, "kubeproxy_proxy_rules ").unwrap_or(f64::NAN);

    // Change-to-live: the kernel's own commit notifications (subscribed after the full sync).
    let committed = nft_rule_commits();

    let mut live = Vec::new();
    let mut api_only = Vec::new();
    let mut touched = Vec::new();
    for k in 0..changes {
        let i = (k * 7919) % n;
        let name = format!("svc-{i}");
        let mut ips = ep_ips(i);
        let new_ip = format!("10.245.{}.{}", k / 250, k % 250 + 1);
        ips.push(new_ip.clone());
        let mut e = endpoints(&name, &ips);
        let current = eps.get(&name).await.unwrap();
        e.metadata.as_mut().unwrap().resource_version = current.meta().resource_version.clone();
        let dnat = format!("dnat to {new_ip}:8080");
        let t = Instant::now();
        eps.update(&e).await.unwrap();
        api_only.push(t.elapsed());
        let chain = format!("svc-default/{name}/tcp/http\0");
        let ip: std::net::Ipv4Addr = new_ip.parse().unwrap();
        loop {
            let rule = committed
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("the rule with {dnat} never appeared"));
            if contains(&rule, chain.as_bytes()) && contains(&rule, &ip.octets()) {
                break;
            }
        }
        live.push(t.elapsed());
        // The sync may still be publishing its metrics; read the gauge a moment later.
        tokio::time::sleep(Duration::from_millis(5)).await;
        touched.push(metric(proxy.http, "kubeproxy_sync_proxy_rules_last_touched ").unwrap_or(f64::NAN));
    }
    live.sort();
    api_only.sort();
    touched.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let syncs = http_get(proxy.http, "/metrics").map(|(_, t)| t).unwrap_or_default();
    let partial = syncs.lines().find(|l| l.contains("kind=\"partial\"")).unwrap_or("").to_string();

    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("bench-proxy: {n} Services x 5 endpoints, nftables (table ip navarch-proxy), {profile} build");
    println!(
        "  first full sync (one transaction): {:>10}    rules+elements programmed: {rules}  (goal < 2 s at 10,000)",
        ms(Duration::from_secs_f64(full_sync))
    );
    println!(
        "  kube-proxy start to healthy:       {:>10}    (list of {n} Services + Endpoints, render, sync)",
        ms(healthy)
    );
    println!(
        "  change-to-live over {changes} changes:  p50 {}  p99 {}  max {}  (goal p99 < 100 ms)",
        ms(percentile(&live, 0.50)),
        ms(percentile(&live, 0.99)),
        ms(*live.last().unwrap())
    );
    println!(
        "  rules+elements touched per change:  p50 {}  max {}    ({partial})",
        touched[touched.len() / 2],
        touched.last().unwrap()
    );
    println!("  baselines (same run):");
    println!(
        "    one nft transaction, one element: p50 {}  p99 {}",
        ms(percentile(&floor, 0.50)),
        ms(percentile(&floor, 0.99))
    );
    println!(
        "    Endpoints update, api-server only: p50 {}  p99 {}",
        ms(percentile(&api_only, 0.50)),
        ms(percentile(&api_only, 0.99))
    );
    drop(proxy);
    let out = Command::new(binary("kube-proxy", "kube-proxy")).arg("--cleanup").output().unwrap();
    assert!(out.status.success(), "cleanup: {}", String::from_utf8_lossy(&out.stderr));
}
