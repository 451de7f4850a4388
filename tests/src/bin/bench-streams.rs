//! `make bench-streams`: kubectl's streams on one real node (kubelet, containerd, runc, CNI).
//!
//! * exec latency: `kubectl exec POD -- true`, 50 runs, p50/p99 of the whole command (kubectl's
//!   start, the pod GET, the WebSocket upgrade, the api-server → kubelet relay, the runtime exec),
//!   beside `ctr task exec` of `true` in the same container (the runtime's own cost) in the same run.
//! * port-forward throughput: a 100 MiB HTTP download through `kubectl port-forward` (WebSocket +
//!   SPDY/3.1 + the kubelet's relay), beside the same download straight from the pod IP.
//!
//! Flags: `--runs N` (50), `--mib M` (100).

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use navarch_api::v1::Pod;
use navarch_tests::{Kubectl, NodeEnv, eventually, free_port, percentile};
use tokio::io::{AsyncBufReadExt, BufReader};

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Downloads `path` over HTTP/1.0 from `addr`; the body's size and the time it took.
fn download(addr: SocketAddr, path: &str) -> (u64, Duration) {
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connecting");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) => panic!("reading the download: {e}"),
        }
    }
    (total, t.elapsed())
}

fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let (mut runs, mut mib) = (50usize, 100u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--mib" => mib = args.next().and_then(|v| v.parse().ok()).expect("--mib M"),
            other => panic!("unknown flag {other} (flags: --runs N, --mib M)"),
        }
    }
    let e = NodeEnv::start().await;
    let k = Kubectl::new(&e.env.api_server);
    let node = &e.node;
    let pod: Pod = serde_yaml::from_str(&format!(
        "{{metadata: {{name: web}}, spec: {{nodeName: {node}, terminationGracePeriodSeconds: 0, containers: [{{name: web, image: 'busybox:1.36', command: [sh, -c, 'mkdir -p /www && dd if=/dev/zero of=/www/big bs=1M count={mib} 2>/dev/null && touch /www/ready && exec httpd -f -p 80 -h /www']}}]}}}}"
    ))
    .unwrap();
    e.pods.create(&pod).await.unwrap();
    let (ip, container_id) = eventually("the pod serving", Duration::from_secs(120), async || {
        let p = e.pods.get_opt("web").await.ok()??;
        let st = p.status?;
        let id = st.container_statuses.first()?.container_id.strip_prefix("containerd://")?.to_string();
        let ip = st.pod_ip.clone();
        let addr: SocketAddr = format!("{ip}:80").parse().ok()?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
        write!(s, "HEAD /ready HTTP/1.0\r\n\r\n").ok()?;
        let mut head = String::new();
        s.read_to_string(&mut head).ok()?;
        head.contains(" 200 ").then_some((ip, id))
    })
    .await;
    println!(
        "== kubectl streams on one node ({} cores), release build",
        std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1)
    );

    // Exec latency. One warm-up run fills kubectl's discovery cache, as a user's first command does.
    k.ok(&["exec", "web", "--", "true"]).await;
    let mut kubectl = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        k.ok(&["exec", "web", "--", "true"]).await;
        kubectl.push(t.elapsed());
    }
    let mut ctr = Vec::new();
    for i in 0..runs {
        let t = Instant::now();
        let out = std::process::Command::new("ctr")
            .arg("-a")
            .arg(e.ctd.socket())
            .args([
                "-n",
                &e.ctd.namespace,
                "task",
                "exec",
                "--exec-id",
                &format!("bench-{i}"),
                &container_id,
                "true",
            ])
            .output()
            .expect("running ctr");
        assert!(out.status.success(), "ctr task exec: {}", String::from_utf8_lossy(&out.stderr));
        ctr.push(t.elapsed());
    }
    kubectl.sort();
    ctr.sort();
    let (k50, k99, c50, c99) = (
        percentile(&kubectl, 0.5),
        percentile(&kubectl, 0.99),
        percentile(&ctr, 0.5),
        percentile(&ctr, 0.99),
    );
    println!("{:<34} p50 {:>7}   p99 {:>7}   ({runs} runs)", "kubectl exec web -- true:", ms(k50), ms(k99));
    println!(
        "{:<34} p50 {:>7}   p99 {:>7}   ({runs} runs)",
        "baseline ctr task exec true:",
        ms(c50),
        ms(c99)
    );
    println!(
        "{:<34} p50 {:.1}x   p99 {:.1}x",
        "ratio kubectl / ctr:",
        k50.as_secs_f64() / c50.as_secs_f64(),
        k99.as_secs_f64() / c99.as_secs_f64()
    );

    // Port-forward throughput.
    let direct: SocketAddr = format!("{ip}:80").parse().unwrap();
    let (bytes, d) = download(direct, "/big");
    assert_eq!(bytes >> 20, mib, "the direct download's size");
    let local = free_port();
    let mut forward = k.spawn(&["port-forward", "pod/web", &format!("{local}:80")]);
    let mut lines = BufReader::new(forward.stdout.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(l)) = lines.next_line().await {
            if l.starts_with("Forwarding from") {
                return;
            }
        }
        panic!("kubectl port-forward ended before forwarding");
    })
    .await
    .expect("kubectl port-forward to start");
    let forwarded: SocketAddr = format!("127.0.0.1:{local}").parse().unwrap();
    let (fbytes, fd) = tokio::task::spawn_blocking(move || download(forwarded, "/big")).await.unwrap();
    assert_eq!(fbytes, bytes, "the forwarded download's size");
    let _ = forward.kill().await;
    let (direct_rate, forward_rate) = (mib_per_s(bytes, d), mib_per_s(fbytes, fd));
    println!("{:<34} {:>8.1} MiB/s   ({mib} MiB in {})", "port-forward download:", forward_rate, ms(fd));
    println!("{:<34} {:>8.1} MiB/s   ({mib} MiB in {})", "baseline pod IP download:", direct_rate, ms(d));
    println!("{:<34} {:.2}", "ratio port-forward / direct:", forward_rate / direct_rate);
}
