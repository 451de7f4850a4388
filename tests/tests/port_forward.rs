//! Port-forward on one real node (containerd, runc, CNI, the registry's nginx and busybox images):
//! the kubelet's `PortForward` rpc into a pod's network namespace (listeners bound to the pod's
//! localhost too), and the real kubectl 1.32 through the api-server's SPDY session, in a WebSocket
//! and on the raw upgraded connection: many requests in a row and at once, `pod/`, `svc/` and
//! `deploy/` targets, a closed port, and the pod going away.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use navarch_api::Resource;
use navarch_api::kubelet_proto::{PortForwardInput, PortForwardStart};
use navarch_api::v1::Pod;
use navarch_tests::{Daemon, Kubectl, NodeEnv, eventually, free_port, http_get};

fn pod(yaml: &str) -> Pod {
    serde_yaml::from_str(yaml).unwrap()
}

/// nginx on port 80, and busybox httpd on 127.0.0.1:8081 only (its page says `local`; `/big` is
/// 8 MiB).
fn web_pod(name: &str, node: &str) -> Pod {
    pod(&format!(
        r#"
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: nginx
    ports: [{{containerPort: 80}}]
  - name: local
    image: busybox:1.36
    command: [sh, -c, 'echo local > /www/index.html; head -c 8388608 /dev/zero > /www/big; exec httpd -f -p 127.0.0.1:8081 -h /www']
"#
    ))
}

/// Waits until the pod runs with every container ready; returns it.
async fn running(e: &NodeEnv, name: &str) -> Pod {
    let what = format!("pod {name} Running and ready");
    eventually(e.kubelet.with_log(&what), Duration::from_secs(120), async || {
        let p = e.pods.get_opt(name).await.ok()??;
        let st = p.status.clone()?;
        let ready = !st.container_statuses.is_empty() && st.container_statuses.iter().all(|c| c.ready);
        (st.phase == "Running" && ready).then_some(p)
    })
    .await
}

/// Forwards one connection to `port` of pod `uid` through the kubelet: sends `request`, then the
/// half close; returns what came back and the error the kubelet reported, or the call's error.
async fn forward(
    e: &NodeEnv,
    p: &Pod,
    uid: &str,
    port: i32,
    request: &[u8],
) -> Result<(String, String), String> {
    let mut client = e.kubelet_client().await;
    let m = p.meta();
    let start =
        PortForwardStart { namespace: m.namespace.clone(), name: m.name.clone(), uid: uid.to_string(), port };
    let input = vec![
        PortForwardInput { start: Some(start), ..Default::default() },
        PortForwardInput { data: request.to_vec(), ..Default::default() },
        PortForwardInput { closed: true, ..Default::default() },
    ];
    let mut out = client
        .port_forward(futures::stream::iter(input))
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    let (mut data, mut error) = (Vec::new(), String::new());
    while let Some(m) =
        tokio::time::timeout(Duration::from_secs(10), out.message()).await.expect("kubelet answers").unwrap()
    {
        data.extend_from_slice(&m.data);
        error.push_str(&m.error);
    }
    Ok((String::from_utf8_lossy(&data).into_owned(), error))
}

const GET: &[u8] = b"GET / HTTP/1.0\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn the_kubelet_forwards_into_the_pods_network_namespace() {
    let e = NodeEnv::start().await;
    e.pods.create(&web_pod("web", &e.node)).await.unwrap();
    let p = running(&e, "web").await;
    let uid = p.meta().uid.clone();
    let ip = p.status.as_ref().unwrap().pod_ip.clone();

    let (body, error) = forward(&e, &p, &uid, 80, GET).await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200 OK") && body.contains("Welcome to nginx!"), "{body}\n{error}");
    assert_eq!(error, "");
    // A listener on the pod's localhost only: reachable through the forward, not on the pod IP.
    let (body, error) = forward(&e, &p, &uid, 8081, GET).await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200 OK") && body.ends_with("\r\n\r\nlocal\n"), "{body}\n{error}");
    let direct =
        std::net::TcpStream::connect_timeout(&format!("{ip}:8081").parse().unwrap(), Duration::from_secs(2));
    assert!(direct.is_err(), "8081 answers on the pod IP {ip}");

    // Nothing listens: containerd's words, naming the pod's network namespace.
    let (body, error) = forward(&e, &p, &uid, 81, GET).await.unwrap();
    assert_eq!(body, "");
    let netns = e.kubelet.log_dir().parent().unwrap().join("run/netns").join(&uid);
    let expected = format!(
        "failed to execute portforward in network namespace {:?}: failed to connect to localhost:81 inside namespace {uid:?}, IPv4: dial tcp4 127.0.0.1:81: connect: connection refused IPv6 dial tcp6 [::1]:81: connect: ",
        netns.display().to_string()
    );
    assert!(error.starts_with(&expected), "{error}\nexpected {expected}");

    // A pod the node does not have.
    let e404 = forward(&e, &p, "no-such-uid", 80, GET).await.unwrap_err();
    assert_eq!(e404, "pod not found (\"web_default\")");
    let bad = forward(&e, &p, &uid, 0, GET).await.unwrap_err();
    assert_eq!(bad, "port: Invalid value: 0: must be between 1 and 65535");
}

/// A running `kubectl port-forward` and the local port it listens on.
struct Forward {
    child: tokio::process::Child,
    port: u16,
    /// stdout after the `Forwarding from` lines, drained so kubectl never blocks on it.
    stdout: tokio::task::JoinHandle<String>,
}

impl Forward {
    /// Starts `kubectl port-forward <target> <local>:<remote>` (a free local port) and waits until it
    /// listens. `websockets: false` makes kubectl use the SPDY upgrade instead of the WebSocket.
    async fn start(k: &Kubectl, target: &str, remote: u16, websockets: bool) -> Forward {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
        let port = free_port();
        let ports = format!("{port}:{remote}");
        let mut cmd = k.command(&["port-forward", target, &ports]);
        if !websockets {
            cmd.env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false");
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("running kubectl");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // (For a Service, kubectl names the pod's port its target port maps to.)
        let want = format!("Forwarding from 127.0.0.1:{port} -> ");
        let seen = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(l) = lines.next_line().await.unwrap() {
                if l.starts_with(&want) {
                    return true;
                }
            }
            false
        })
        .await;
        if seen != Ok(true) {
            let _ = child.kill().await;
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).await.unwrap();
            panic!("kubectl port-forward {target} {ports} did not start: {err}");
        }
        let stdout = tokio::spawn(async move {
            let mut rest = String::new();
            while let Ok(Some(l)) = lines.next_line().await {
                rest.push_str(&l);
                rest.push('\n');
            }
            rest
        });
        Forward { child, port, stdout }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Waits for kubectl to exit by itself; returns its exit code and stderr.
    async fn exited(mut self) -> (i32, String) {
        use tokio::io::AsyncReadExt;
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("kubectl port-forward should have exited")
            .unwrap();
        let mut err = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut err).await.unwrap();
        let _ = self.stdout.await;
        (status.code().unwrap_or(-1), err)
    }

    /// Whether kubectl still runs.
    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// `n` GETs of `/` through `addr`, one after the other; every one must be nginx's page.
async fn sequential_gets(addr: SocketAddr, n: usize, expect: &'static str) {
    tokio::task::spawn_blocking(move || {
        for i in 0..n {
            let r = http_get(addr, "/");
            assert!(
                matches!(&r, Some((200, body)) if body.contains(expect)),
                "GET {i} through {addr}: {r:?}"
            );
        }
    })
    .await
    .unwrap();
}

/// `n` GETs of `/` through `addr` at once.
async fn concurrent_gets(addr: SocketAddr, n: usize, expect: &'static str) {
    let gets = (0..n).map(|_| tokio::task::spawn_blocking(move || http_get(addr, "/")));
    for (i, r) in futures::future::join_all(gets).await.into_iter().enumerate() {
        let r = r.unwrap();
        assert!(matches!(&r, Some((200, body)) if body.contains(expect)), "concurrent GET {i}: {r:?}");
    }
}

const NGINX: &str = "Welcome to nginx!";

/// A node with the scheduler and controller-manager (for the Deployment), pod `web`, Service `web`
/// (port 8080 to the pod's 80) and Deployment `web` (nginx, its own pods).
async fn cluster() -> (NodeEnv, Kubectl, Vec<Daemon>) {
    let e = NodeEnv::start().await;
    let daemons = vec![
        Daemon::start(&e.env, "scheduler", "scheduler", &[]),
        Daemon::start(&e.env, "controller-manager", "controller-manager", &[]),
    ];
    let k = Kubectl::new(&e.env.api_server);
    e.pods.create(&web_pod("web", &e.node)).await.unwrap();
    let objects = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 8080, targetPort: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web-deploy}}
  template:
    metadata: {labels: {app: web-deploy}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]
"#;
    let out = k.apply(objects, &[]).await;
    assert_eq!(out.code, 0, "{out:?}");
    running(&e, "web").await;
    let what = "the Deployment's pod ready";
    eventually(e.kubelet.with_log(what), Duration::from_secs(120), async || {
        let st = k.ok(&["get", "deploy", "web", "-o", "jsonpath={.status.readyReplicas}"]).await;
        (st == "1").then_some(())
    })
    .await;
    (e, k, daemons)
}

#[tokio::test]
async fn kubectl_port_forward_over_websocket() {
    kubectl_port_forward(true).await
}

/// `KUBECTL_PORT_FORWARD_WEBSOCKETS=false`: kubectl's raw SPDY/3.1 upgrade.
#[tokio::test]
async fn kubectl_port_forward_over_spdy() {
    kubectl_port_forward(false).await
}

/// Every form of `kubectl port-forward` through one envelope (see [`Forward::start`]).
async fn kubectl_port_forward(websockets: bool) {
    let (e, k, _daemons) = cluster().await;

    let pf = Forward::start(&k, "pod/web", 80, websockets).await;
    sequential_gets(pf.addr(), 100, NGINX).await;
    concurrent_gets(pf.addr(), 20, NGINX).await;
    drop(pf);
    // The pod's localhost-only listener; 8 MiB in one answer.
    let pf = Forward::start(&k, "web", 8081, websockets).await;
    sequential_gets(pf.addr(), 3, "local").await;
    let addr = pf.addr();
    let big = tokio::task::spawn_blocking(move || http_get(addr, "/big")).await.unwrap();
    let (status, body) = big.expect("GET /big");
    assert_eq!((status, body.len()), (200, 8 << 20));
    assert!(body.bytes().all(|b| b == 0));
    drop(pf);
    // A Service's port is mapped to its target port on one of its pods; a Deployment's pod.
    let pf = Forward::start(&k, "svc/web", 8080, websockets).await;
    sequential_gets(pf.addr(), 10, NGINX).await;
    drop(pf);
    let pf = Forward::start(&k, "deploy/web", 80, websockets).await;
    sequential_gets(pf.addr(), 10, NGINX).await;
    drop(pf);

    // Nothing listens on 81: kubectl prints the error, then ends.
    closed_port(&e, &k, websockets).await;

    // The pod goes away: the forward ends with kubectl's message.
    let pf = Forward::start(&k, "pod/web", 80, websockets).await;
    sequential_gets(pf.addr(), 1, NGINX).await;
    k.ok(&["delete", "pod", "web", "--wait=false"]).await;
    let (code, err) = pf.exited().await;
    assert_eq!((code, err.as_str()), (1, "error: lost connection to pod\n"));
}

/// A forward to a port nothing listens on: kubectl logs the error the api-server wrote to the
/// error stream, in Kubernetes' words. kubectl 1.32 then closes its session on its own
/// (client-go's `portforward.go` closes the connection after any error message), so it exits with
/// `lost connection to pod`, as it does against Kubernetes.
async fn closed_port(e: &NodeEnv, k: &Kubectl, websockets: bool) {
    let uid = e.pods.get("web").await.unwrap().meta().uid.clone();
    let netns = e.kubelet.log_dir().parent().unwrap().join("run/netns").join(&uid);
    let mut pf = Forward::start(k, "pod/web", 81, websockets).await;
    let (addr, port) = (pf.addr(), pf.port);
    let r = tokio::task::spawn_blocking(move || http_get(addr, "/")).await.unwrap();
    assert!(r.is_none(), "{r:?}");
    eventually("kubectl exits after the failed forward", Duration::from_secs(30), async || {
        (!pf.running()).then_some(())
    })
    .await;
    let (code, err) = pf.exited().await;
    let expected = format!(
        r#"err="an error occurred forwarding {port} -> 81: error forwarding port 81 to pod {uid}, uid : failed to execute portforward in network namespace \"{netns}\": failed to connect to localhost:81 inside namespace \"{uid}\", IPv4: dial tcp4 127.0.0.1:81: connect: connection refused IPv6 dial tcp6 [::1]:81: connect: "#,
        netns = netns.display()
    );
    assert!(err.contains(&expected), "exit {code}:\n{err}\nexpected: {expected}");
    assert!(err.ends_with("\nerror: lost connection to pod\n"), "exit {code}: {err}");
    assert_eq!(code, 1, "{err}");
}
