//! kube-proxy against a real api-server and etcd, programming real nftables on this host, with
//! "pods" in network namespaces the test creates on a bridge of its own. Each backend runs busybox
//! httpd answering its name (what the serve-hostname image does) and, at /cgi-bin/source, the client
//! address it sees (to check masquerading). Endpoints are written by the test
//! (no controller-manager), so readiness is under its control.
//!
//! Layout (cleaned up on drop, even on failure):
//!   bridge nvpt0 10.244.250.1/24 ─ nvpt-b1 .11, nvpt-b2 .12, nvpt-b3 .13 (backends), nvpt-c .20 (client)
//!   veth nvpt-xh 10.250.77.1/24 ─ netns nvpt-x 10.250.77.2 (a machine outside the node, for NodePort)
//!   unreachable routes over 10.244.0.0/16 and 10.96.0.0/12 (when not already there)
//!   /etc/netns/nvpt-c/resolv.conf (the client pod's resolver: the kube-dns ClusterIP)

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use navarch_api::Resource;
use navarch_api::v1::{Endpoints, Service};
use navarch_client::Api;
use navarch_tests::{Daemon, TestEnv, describe, eventually_blocking};

const BACKENDS: [(&str, &str); 3] =
    [("nvpt-b1", "10.244.250.11"), ("nvpt-b2", "10.244.250.12"), ("nvpt-b3", "10.244.250.13")];
const CLIENT: (&str, &str) = ("nvpt-c", "10.244.250.20");

fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

fn must(cmd: &str) {
    let (ok, out) = sh(cmd);
    assert!(ok, "{cmd}: {out}");
}

fn ruleset() -> String {
    // Stateless (-s): counters of other tables on the host (libvirt's, say) move on their own.
    sh("nft -s list ruleset").1
}

fn routes() -> String {
    sh("ip -4 route show table all").1
}

/// The network of the test; everything undone on drop.
struct Lab {
    servers: Vec<Child>,
    dir: tempfile::TempDir,
    added_routes: Vec<&'static str>,
}

impl Lab {
    fn new() -> Lab {
        let mut lab =
            Lab { servers: Vec::new(), dir: tempfile::tempdir().unwrap(), added_routes: Vec::new() };
        Lab::remove_all();
        for cidr in ["10.244.0.0/16", "10.96.0.0/12"] {
            if !routes().contains(&format!("unreachable {cidr}")) {
                must(&format!("ip route add unreachable {cidr}"));
                lab.added_routes.push(cidr);
            }
        }
        must(
            "ip link add nvpt0 type bridge && ip addr add 10.244.250.1/24 dev nvpt0 && ip link set nvpt0 up",
        );
        for (i, (ns, ip)) in BACKENDS.iter().chain([&CLIENT]).enumerate() {
            must(&format!(
                "ip netns add {ns} && ip link add nvpt-v{i} type veth peer name eth0 netns {ns} && \
                 ip link set nvpt-v{i} master nvpt0 up && ip -n {ns} addr add {ip}/24 dev eth0 && \
                 ip -n {ns} link set eth0 up && ip -n {ns} link set lo up && \
                 ip -n {ns} route add default via 10.244.250.1"
            ));
            // The bridge port reflects a pod's packets back to it (hairpin), as the CNI bridge does.
            must(&format!("ip link set nvpt-v{i} type bridge_slave hairpin on"));
        }
        must(
            "ip netns add nvpt-x && ip link add nvpt-xh type veth peer name eth0 netns nvpt-x && \
              ip addr add 10.250.77.1/24 dev nvpt-xh && ip link set nvpt-xh up && \
              ip -n nvpt-x addr add 10.250.77.2/24 dev eth0 && ip -n nvpt-x link set eth0 up && ip -n nvpt-x link set lo up",
        );
        for (ns, _) in BACKENDS {
            let www = lab.dir.path().join(ns);
            std::fs::create_dir_all(&www).unwrap();
            std::fs::write(www.join("index.html"), format!("{ns}\n")).unwrap();
            // /cgi-bin/source answers the client address the backend sees (masqueraded or not).
            std::fs::create_dir_all(www.join("cgi-bin")).unwrap();
            let cgi = www.join("cgi-bin/source");
            std::fs::write(
                &cgi,
                "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' \"$REMOTE_ADDR\"\n",
            )
            .unwrap();
            std::fs::set_permissions(&cgi, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            let child = Command::new("ip")
                .args(["netns", "exec", ns, "busybox", "httpd", "-f", "-p", "9376", "-h"])
                .arg(&www)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("busybox httpd (apt install busybox-static)");
            lab.servers.push(child);
        }
        lab
    }

    /// Removes what this test (or an earlier, crashed run) creates: the lab's links and namespaces
    /// and kube-proxy's table and route link.
    fn remove_all() {
        let _ = sh("nft delete table ip navarch-proxy; ip link del navarch-svc");
        let _ = sh("ip link del nvpt0; ip link del nvpt-xh");
        for (ns, _) in BACKENDS.iter().chain([&CLIENT]).chain([&("nvpt-x", "")]) {
            let _ = sh(&format!("ip netns del {ns}"));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.servers {
            let _ = c.kill();
            let _ = c.wait();
        }
        // kube-proxy's own state too, in case the test failed before its --cleanup.
        Lab::remove_all();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", CLIENT.0));
        for cidr in &self.added_routes {
            let _ = sh(&format!("ip route del unreachable {cidr}"));
        }
    }
}

/// An HTTP GET from inside `ns` (or from this host when `ns` is empty): the body, or the error.
fn get(ns: &str, url: &str) -> Result<String, String> {
    // curl: its --max-time works (Debian's busybox-static 1.35 crashes on `wget -T`).
    let cmd = if ns.is_empty() {
        format!("curl -sS --max-time 3 {url}")
    } else {
        format!("ip netns exec {ns} curl -sS --max-time 3 {url}")
    };
    let (ok, out) = sh(&cmd);
    if ok { Ok(out.trim().to_string()) } else { Err(out.trim().to_string()) }
}

/// Answers to `n` requests, counted by backend.
/// The client address a backend saw (its `/cgi-bin/source`; httpd writes IPv4 as `[::ffff:a.b.c.d]`).
fn source_seen(ns: &str, url: &str) -> Result<String, String> {
    get(ns, url).map(|s| s.trim_start_matches("[::ffff:").trim_end_matches(']').to_string())
}

fn tally(ns: &str, url: &str, n: usize) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for _ in 0..n {
        let k = get(ns, url).unwrap_or_else(|e| format!("error: {e}"));
        *m.entry(k).or_default() += 1;
    }
    m
}

fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap()
}

fn endpoints(name: &str, ready: &[&str], not_ready: &[&str]) -> Endpoints {
    let addr = |ips: &[&str]| {
        ips.iter().map(|ip| format!("{{ip: {ip}, nodeName: test-node}}")).collect::<Vec<_>>().join(", ")
    };
    from_yaml(&format!(
        "{{metadata: {{name: {name}, namespace: default}}, subsets: [{{addresses: [{}], notReadyAddresses: [{}], ports: [{{name: http, port: 9376}}]}}]}}",
        addr(ready),
        addr(not_ready)
    ))
}

async fn put_endpoints(api: &Api<Endpoints>, e: Endpoints) {
    match api.get_opt(&e.meta().name).await.unwrap() {
        Some(old) => {
            let mut e = e;
            e.metadata.as_mut().unwrap().resource_version = old.meta().resource_version.clone();
            api.update(&e).await.unwrap();
        }
        None => {
            api.create(&e).await.unwrap();
        }
    }
}

fn start_proxy(env: &TestEnv) -> Daemon {
    Daemon::start(
        env,
        "kube-proxy",
        "kube-proxy",
        &["--hostname-override=test-node", "--cluster-cidr=10.244.0.0/16"],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_through_nftables() {
    let env = TestEnv::start().await;
    Lab::remove_all();
    let ruleset_before = ruleset();
    let routes_before = routes();
    let lab = Lab::new();
    let c = env.client().await;
    let svcs: Api<Service> = c.api("default");
    let eps: Api<Endpoints> = c.api("default");
    let web = svcs
        .create(&from_yaml("{metadata: {name: web}, spec: {type: NodePort, selector: {app: web}, ports: [{name: http, port: 80, targetPort: 9376}]}}"))
        .await
        .unwrap();
    let ip = web.spec.as_ref().unwrap().cluster_ip.clone();
    let node_port = web.spec.as_ref().unwrap().ports[0].node_port;
    put_endpoints(&eps, endpoints("web", &[BACKENDS[0].1, BACKENDS[1].1], &[BACKENDS[2].1])).await;
    let mut proxy = start_proxy(&env);
    let url = format!("http://{ip}/");
    let client = CLIENT.0;
    tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            eventually_blocking(
                describe(|| {
                    format!(
                        "the ClusterIP to answer\n{}\n{}",
                        sh("nft list table ip navarch-proxy").1,
                        routes()
                    )
                }),
                Duration::from_secs(30),
                || get(client, &url),
            )
        }
    })
    .await
    .unwrap();

    // 1. ClusterIP from a pod: both ready backends, never the not-ready one.
    let t = tally(client, &url, 40);
    assert_eq!(t.keys().cloned().collect::<Vec<_>>(), ["nvpt-b1", "nvpt-b2"], "{t:?}");
    // 2. b3 turns ready: it gets traffic too.
    put_endpoints(&eps, endpoints("web", &[BACKENDS[0].1, BACKENDS[1].1, BACKENDS[2].1], &[])).await;
    eventually_blocking("b3 in rotation", Duration::from_secs(30), || {
        get(client, &url).is_ok_and(|b| b == "nvpt-b3")
    });
    let t = tally(client, &url, 60);
    assert_eq!(t.len(), 3, "{t:?}");
    // 3. From the node itself (route lookup needs the /32 route over the unreachable range).
    assert!(get("", &url).is_ok_and(|b| b.starts_with("nvpt-b")), "{:?}", get("", &url));
    // 4. NodePort from another machine (netns), through the node's address.
    let np_url = format!("http://10.250.77.1:{node_port}/");
    let t = tally("nvpt-x", &np_url, 20);
    assert!(t.keys().all(|k| k.starts_with("nvpt-b")), "{t:?}");
    // externalTrafficPolicy Cluster: the source is masqueraded, so replies come back through this node.
    let source = source_seen("nvpt-x", &format!("http://10.250.77.1:{node_port}/cgi-bin/source"));
    assert_eq!(source.as_deref(), Ok("10.244.250.1"), "masqueraded to the node's bridge address");

    // 4b. LoadBalancer with externalTrafficPolicy Local, announced on the node's address (as the
    // controller-manager does): only this node's endpoint (b1, not b2 on another node) answers,
    // with the client's own address; the NodePort of such a Service likewise.
    let lb = svcs
        .create(&from_yaml("{metadata: {name: lb}, spec: {type: LoadBalancer, externalTrafficPolicy: Local, selector: {app: web}, ports: [{name: http, port: 8081, targetPort: 9376}]}}"))
        .await
        .unwrap();
    let mut lb = lb;
    lb.status = Some(from_yaml("{loadBalancer: {ingress: [{ip: 10.250.77.1}]}}"));
    svcs.update_status(&lb).await.unwrap();
    let mut split = endpoints("lb", &[BACKENDS[0].1, BACKENDS[1].1], &[]);
    split.subsets[0].addresses[1].node_name = Some("other-node".into());
    put_endpoints(&eps, split).await;
    let lb_node_port = lb.spec.as_ref().unwrap().ports[0].node_port;
    tokio::task::spawn_blocking(move || {
        eventually_blocking("the LoadBalancer address answering", Duration::from_secs(30), || {
            get("nvpt-x", "http://10.250.77.1:8081/").is_ok()
        });
        let t = tally("nvpt-x", "http://10.250.77.1:8081/", 20);
        assert_eq!(t.keys().cloned().collect::<Vec<_>>(), ["nvpt-b1"], "local endpoint only: {t:?}");
        let t = tally("nvpt-x", &format!("http://10.250.77.1:{lb_node_port}/"), 10);
        assert_eq!(t.keys().cloned().collect::<Vec<_>>(), ["nvpt-b1"], "{t:?}");
        let source = source_seen("nvpt-x", "http://10.250.77.1:8081/cgi-bin/source");
        assert_eq!(source.as_deref(), Ok("10.250.77.2"), "the client's address is kept");
    })
    .await
    .unwrap();

    // 5. ClientIP affinity sticks to one backend.
    let sticky = svcs
        .create(&from_yaml("{metadata: {name: sticky}, spec: {sessionAffinity: ClientIP, selector: {app: web}, ports: [{name: http, port: 8080}]}}"))
        .await
        .unwrap();
    put_endpoints(&eps, endpoints("sticky", &[BACKENDS[0].1, BACKENDS[1].1, BACKENDS[2].1], &[])).await;
    let sticky_url = format!("http://{}:8080/", sticky.spec.as_ref().unwrap().cluster_ip);
    eventually_blocking("sticky answering", Duration::from_secs(30), || get(client, &sticky_url).is_ok());
    let t = tally(client, &sticky_url, 20);
    assert_eq!(t.len(), 1, "affinity: {t:?}");

    // 6. Hairpin: a pod reaching its own Service.
    let own = svcs
        .create(&from_yaml(
            "{metadata: {name: own}, spec: {selector: {app: b1}, ports: [{name: http, port: 80}]}}",
        ))
        .await
        .unwrap();
    put_endpoints(&eps, endpoints("own", &[BACKENDS[0].1], &[])).await;
    let own_url = format!("http://{}/", own.spec.as_ref().unwrap().cluster_ip);
    eventually_blocking("hairpin", Duration::from_secs(30), || {
        get(BACKENDS[0].0, &own_url).is_ok_and(|b| b == "nvpt-b1")
    });

    // 7. Cluster DNS through its ClusterIP, with the pod's own resolver (glibc, via the netns'
    // resolv.conf): cluster-dns serves on the bridge gateway and registers as kube-system/kube-dns.
    let _dns = Daemon::start(
        &env,
        "dns",
        "cluster-dns",
        &["--listen=10.244.250.1:53", "--advertise-address=10.244.250.1", "--upstream="],
    );
    std::fs::create_dir_all(format!("/etc/netns/{client}")).unwrap();
    std::fs::write(
        format!("/etc/netns/{client}/resolv.conf"),
        "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
    )
    .unwrap();
    tokio::task::spawn_blocking(move || {
        eventually_blocking("web answering by its DNS name", Duration::from_secs(30), || {
            get(client, "http://web.default.svc.cluster.local/").is_ok_and(|b| b.starts_with("nvpt-b"))
        });
        // The short name through the search path; an unknown name does not resolve.
        assert!(get(client, "http://web/").is_ok_and(|b| b.starts_with("nvpt-b")));
        let err = get(client, "http://nope.default.svc.cluster.local/").unwrap_err();
        assert!(err.contains("resolve"), "{err}");
    })
    .await
    .unwrap();

    // 8. No ready endpoints: refused at once (not a hang until the timeout).
    let empty = svcs
        .create(&from_yaml(
            "{metadata: {name: empty}, spec: {selector: {app: none}, ports: [{name: http, port: 80}]}}",
        ))
        .await
        .unwrap();
    put_endpoints(&eps, endpoints("empty", &[], &[BACKENDS[0].1])).await;
    let empty_url = format!("http://{}/", empty.spec.as_ref().unwrap().cluster_ip);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // curl's "Couldn't connect" is a refusal (a reset or ICMP unreachable); a hang would be "timed out".
    let err = get(client, &empty_url).unwrap_err();
    assert!(err.contains("Couldn't connect"), "{err}");
    let err = get("", &empty_url).unwrap_err();
    assert!(err.contains("Couldn't connect"), "from the node: {err}");

    // 9. Restart: no request fails while kube-proxy is down and while it resyncs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (stop, url) = (stop.clone(), url.clone());
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match get(client, &url) {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(e),
                }
            }
            (ok, failed)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.kill9();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let proxy = start_proxy(&env);
    tokio::task::spawn_blocking({
        let addr = proxy.http;
        move || {
            eventually_blocking("kube-proxy healthy again", Duration::from_secs(30), || {
                navarch_tests::http_get(addr, "/healthz").is_some_and(|(s, _)| s == 200)
            })
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (ok, failed) = load.join().unwrap();
    assert!(failed.is_empty() && ok > 5, "{ok} ok, failures: {failed:?}");
    let metrics = navarch_tests::http_get(proxy.http, "/metrics").unwrap().1;
    assert!(metrics.contains("kubeproxy_sync_proxy_rules_total{kind=\"full\"} 1"), "{metrics}");
    assert!(metrics.contains("kubeproxy_proxy_rules "), "{metrics}");

    // 10. A deleted Service stops answering (refused: its IP falls back to the unreachable route).
    svcs.delete("web", &Default::default()).await.unwrap();
    tokio::task::spawn_blocking({
        let url = url.clone();
        move || eventually_blocking("web gone", Duration::from_secs(30), || get(client, &url).is_err())
    })
    .await
    .unwrap();

    // 11. --cleanup leaves the host's ruleset and routes as they were (before our lab).
    drop(proxy);
    let out =
        Command::new(navarch_tests::binary("kube-proxy", "kube-proxy")).arg("--cleanup").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(lab);
    assert_eq!(ruleset(), ruleset_before, "nftables ruleset restored");
    assert_eq!(routes(), routes_before, "routes restored");
}
