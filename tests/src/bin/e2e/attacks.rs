//! Scenario 11: attacks, each of which must fail, and appear in the audit log refused (`forbid`
//! for authorization, 403 for admission, 401 for authentication) or never reach the API at all (the
//! pods' guard of `crates/kubelet/src/netcfg.rs`, TLS):
//!
//! 1. from a pod on the first node (the `curl` test image: busybox's tools and curl), TCP to the kubelet API of the second node, and of its
//!    own node by node IP and through the pod's default gateway; to its kubelet's HTTP port, the
//!    image registry and etcd's port on the node network: refused (and those that listen for this
//!    host shown to, so the refusal is the guard's). DNS and the api-server (by address and by the
//!    `kubernetes` Service) must still answer;
//! 2. etcd: where it listens (the running etcd's `--listen-client-urls`); when that is loopback,
//!    the node-network address refuses its port from this host too;
//! 3. in the pod, curl with its mounted ServiceAccount token and `ca.crt` to
//!    `https://kubernetes.default.svc` (the api-server's certificate verified): listing the Secrets of
//!    its namespace and of kube-system: 403, audited as `forbid`. A second pod whose ServiceAccount a
//!    Role allows `list pods` gets exactly that: its namespace's pods (200, also through
//!    `$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`), and 403 for one pod by name, for the pods
//!    of kube-system and of all namespaces, and for Secrets;
//! 4. the first node's kubelet credentials (the kubeconfig its kubelet runs with, see
//!    [`node_kubeconfig`]): a Secret used only by a pod on the second node and a missing Secret
//!    (Forbidden, not NotFound), a label on the second Node (kubectl reads it first): refused by
//!    authorization, `forbid`; a non-mirror pod mounting that Secret: refused by NodeRestriction
//!    admission (403, decision `allow`);
//! 5. plaintext HTTP to the api-server's port and to a kubelet API port: no HTTP answer;
//! 6. a forged ServiceAccount token (`alg: none`, no signature): 401, audited.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use navarch_tests::eventually_blocking;
use serde_json::Value;

use super::{
    Cluster, NS, allow, apply_try, kubectl_try, navarch_home, navctl_try, nv, nv_try, run_kubectl, secs,
    serving,
};

const ATTACKER: &str = "attacker";
const VICTIM: &str = "victim";
const VICTIM_SECRET: &str = "victim-secret";
const ROGUE: &str = "rogue";
/// The pod, ServiceAccount and Role that may list pods in the scenario's namespace.
const READER: &str = "pod-reader";
/// The `curl` test image of `scripts/images.sh` (busybox's tools, curl, user 100).
const CURL_IMAGE: &str = "curl:latest";
/// The kubelet API's port when a Node does not say (`status.daemonEndpoints`).
const KUBELET_API_PORT: u16 = 10250;
/// `make up`'s kubelet HTTP port (healthz, metrics) and image registry port.
const KUBELET_HTTP_PORT: u16 = 10248;
const REGISTRY_PORT: u16 = 5000;

/// The audit log's events written since [`AuditLog::open`].
struct AuditLog {
    path: PathBuf,
    from: u64,
}

impl AuditLog {
    fn open() -> AuditLog {
        let path = navarch_home().join("logs/audit.log");
        let from = std::fs::metadata(&path)
            .unwrap_or_else(|e| {
                panic!("the api-server's audit log {}: {e} (make up writes it)", path.display())
            })
            .len();
        AuditLog { path, from }
    }

    fn events(&self) -> Vec<Value> {
        let mut text = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&self.path) {
            use std::io::Seek;
            let _ = f.seek(std::io::SeekFrom::Start(self.from)).and_then(|_| f.read_to_end(&mut text));
        }
        String::from_utf8_lossy(&text).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// The first event since the scenario began that `matches`, waiting for the log's writer.
    fn find(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        eventually_blocking(
            format!(
                "an audit event of {what} in {} (does deploy/config/audit-policy.yaml record it at all?)",
                self.path.display()
            ),
            allow(10),
            || self.events().into_iter().find(|e| matches(e)),
        )
    }

    /// The event of `user`'s `verb` of `resource` (`namespace`/`name`, empty: any), answered with
    /// `code`: its authorization decision.
    fn decision(&self, user: &str, verb: &str, object: (&str, &str, &str), code: i64) -> String {
        let (resource, namespace, name) = object;
        let what = format!("{user} {verb} {resource} {namespace}/{name} answered {code}");
        let event = self.find(&what, |e| {
            let o = &e["objectRef"];
            e["user"]["username"] == user
                && e["verb"] == verb
                && o["resource"] == resource
                && o["namespace"].as_str().unwrap_or_default() == namespace
                && (name.is_empty() || o["name"] == name)
                && e["responseStatus"]["code"] == code
        });
        event["annotations"]["authorization.k8s.io/decision"].as_str().unwrap_or("(none)").to_string()
    }
}

/// Node `node`'s kubelet kubeconfig: the `--kubeconfig` its running kubelet was started with (read
/// from `/proc` through `make up`'s pid file), else the first that exists of the places `make up`
/// has kept one.
fn node_kubeconfig(node: &str) -> PathBuf {
    let home = navarch_home();
    let from_flag = std::fs::read_to_string(home.join(format!("run/kubelet-{node}.pid")))
        .ok()
        .and_then(|pid| std::fs::read(format!("/proc/{}/cmdline", pid.trim())).ok())
        .and_then(|cmdline| flag_value(&cmdline, "--kubeconfig"));
    let candidates = [
        home.join(format!("nodes/{node}/kubelet.kubeconfig")),
        home.join(format!("kubeconfigs/kubelet-{node}.kubeconfig")),
    ];
    from_flag
        .into_iter()
        .chain(candidates.iter().cloned())
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no kubeconfig of {node}'s kubelet (its --kubeconfig, or {candidates:?})"))
}

/// The value of `flag` (`--flag=value` or `--flag value`) in a NUL-separated command line.
fn flag_value(cmdline: &[u8], flag: &str) -> Option<PathBuf> {
    let args: Vec<String> =
        cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let prefix = format!("{flag}=");
    args.iter()
        .enumerate()
        .find_map(|(i, a)| {
            a.strip_prefix(&prefix)
                .map(str::to_string)
                .or_else(|| (a == flag).then(|| args.get(i + 1).cloned())?)
        })
        .map(PathBuf::from)
}

/// etcd's client address (the first of `--listen-client-urls` of the running etcd).
fn etcd_address() -> Option<SocketAddr> {
    let pid = std::fs::read_to_string(navarch_home().join("run/etcd.pid")).ok()?;
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).ok()?;
    let urls = flag_value(&cmdline, "--listen-client-urls")?;
    let first = urls.to_str()?.split(',').next()?.split("://").nth(1)?.trim_end_matches('/').to_string();
    first.to_socket_addrs().ok()?.next()
}

/// The API port of node `name` (its `status.daemonEndpoints`).
fn kubelet_port(name: &str) -> u16 {
    let node: Value = navctl_try(&["get", "node", name, "-o", "json"])
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let endpoint = &node["status"]["daemonEndpoints"]["kubeletEndpoint"];
    endpoint["Port"].as_u64().or(endpoint["port"].as_u64()).map_or(KUBELET_API_PORT, |p| p as u16)
}

/// The api-server's address as pods reach it (the `kubernetes` Service's endpoint) and the
/// Service's ClusterIP and port.
fn api_server_addresses() -> (String, String) {
    let endpoint = kubectl_try(&[
        "get",
        "endpoints",
        "kubernetes",
        "-n",
        "default",
        "-o",
        "jsonpath={.subsets[0].addresses[0].ip}:{.subsets[0].ports[0].port}",
    ])
    .unwrap_or_else(|e| panic!("the kubernetes Service's endpoint: {e}"));
    let service = kubectl_try(&[
        "get",
        "service",
        "kubernetes",
        "-n",
        "default",
        "-o",
        "jsonpath={.spec.clusterIP}:{.spec.ports[0].port}",
    ])
    .unwrap_or_else(|e| panic!("the kubernetes Service: {e}"));
    (endpoint.trim().to_string(), service.trim().to_string())
}

/// One TCP connection attempt from the attacking pod: what it is, `host:port` (the host may be
/// `$gw`, the pod's default gateway), and whether it must connect.
struct Probe {
    what: String,
    target: String,
    open: bool,
}

/// The cluster DNS name of the `kubernetes` Service, resolved in the attacking pod.
const API_SERVICE_NAME: &str = "kubernetes.default.svc.cluster.local";

/// Runs `probes` in the attacking pod (one `exec`): for each, nc's complaint, empty if it connected;
/// what nslookup says of [`API_SERVICE_NAME`]; the pod's gateway. Connecting is sending an HTTP
/// request line: TLS and HTTP servers answer it and close at once.
fn probe_from_pod(probes: &[Probe]) -> (Vec<String>, String, String) {
    let mut script = format!(
        "gw=$(ip route | awk '/^default/ {{print $3}}')\n\
         probe() {{ out=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | \
         timeout 5 nc -w 3 \"$1\" \"$2\" 2>&1 >/dev/null); \
         echo \"probe $(echo \"$out\" | tr '\\n' ' ')\"; }}\n\
         echo \"gw $gw\"\n\
         echo \"dns $(timeout 5 nslookup {API_SERVICE_NAME} 2>&1 | tr '\\n' ' ')\"\n"
    );
    for p in probes {
        let (host, port) = p.target.rsplit_once(':').expect("host:port");
        script.push_str(&format!("probe {host} {port}\n"));
    }
    let out = nv(&["exec", ATTACKER, "--", "sh", "-c", &script]);
    let results: Vec<String> =
        out.lines().filter_map(|l| l.strip_prefix("probe ")).map(|s| s.trim().to_string()).collect();
    assert_eq!(results.len(), probes.len(), "one line per probe from {ATTACKER}: {out}");
    let line = |key: &str| out.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_default().to_string();
    (results, line("dns "), line("gw "))
}

fn blocked(nc_says: &str) -> bool {
    nc_says.contains("can't connect") || nc_says.contains("timed out")
}

fn connects(target: &str) -> bool {
    target.parse().is_ok_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

/// The network from the attacking pod: the node network refused but for DNS and the api-server.
fn network_attacks(c: &Cluster, api_server: &str, api_service: &str, etcd: Option<SocketAddr>) {
    let t = Instant::now();
    let ((n1, ip1), (n2, ip2)) = (&c.nodes[0], &c.nodes[1]);
    let host = api_server.rsplit_once(':').map_or(api_server, |(h, _)| h);
    let etcd_port = etcd.map_or(2379, |a| a.port());
    let (port1, port2) = (kubelet_port(n1), kubelet_port(n2));
    let mut probes = vec![
        (format!("{n2}'s kubelet API"), format!("{ip2}:{port2}"), false),
        (format!("{n1}'s own kubelet API at its node IP"), format!("{ip1}:{port1}"), false),
        (format!("{n1}'s own kubelet API through the pod's gateway"), format!("$gw:{port1}"), false),
        (format!("{n1}'s kubelet HTTP port"), format!("{ip1}:{KUBELET_HTTP_PORT}"), false),
        ("the image registry on the host".to_string(), format!("{host}:{REGISTRY_PORT}"), false),
        ("etcd's port on the host".to_string(), format!("{host}:{etcd_port}"), false),
        ("the api-server (node network)".to_string(), api_server.to_string(), true),
        ("the api-server (Service kubernetes)".to_string(), api_service.to_string(), true),
    ];
    if let Some(a) = etcd.filter(|a| !a.ip().is_loopback()) {
        probes.push(("etcd where it listens".to_string(), a.to_string(), false));
    }
    let probes: Vec<Probe> =
        probes.into_iter().map(|(what, target, open)| Probe { what, target, open }).collect();
    let (results, dns, gateway) = probe_from_pod(&probes);
    let service_ip = api_service.rsplit_once(':').map_or(api_service, |(h, _)| h);
    assert!(
        dns.contains(service_ip),
        "DNS from {ATTACKER}: {API_SERVICE_NAME} must resolve to {service_ip}: {dns}"
    );
    let mut refused = Vec::new();
    for (p, says) in probes.iter().zip(&results) {
        if p.open {
            assert!(!blocked(says), "{ATTACKER} on {n1} must still reach {} at {}: {says}", p.what, p.target);
        } else {
            assert!(
                blocked(says),
                "{ATTACKER} on {n1} connected to {} at {} (the pods' guard must refuse it)",
                p.what,
                p.target
            );
            refused.push(says.rsplit(": ").next().unwrap_or(says).to_string());
        }
    }
    refused.dedup();
    let closed: Vec<&Probe> = probes.iter().filter(|p| !p.open).collect();
    // Those that this host reaches: refused to the pod by the guard, not for want of a listener.
    let listening: Vec<&str> =
        closed.iter().filter(|p| connects(&p.target)).map(|p| p.what.as_str()).collect();
    assert!(
        listening.contains(&closed[0].what.as_str()),
        "{} at {} must accept connections from this host (the api-server's way to it)",
        closed[0].what,
        closed[0].target
    );
    let closed: Vec<String> =
        closed.iter().map(|p| format!("{} ({})", p.what, p.target.replace("$gw", &gateway))).collect();
    println!("    from {ATTACKER} on {n1}, refused ({}): {}", refused.join(", "), closed.join(", "));
    println!("    of those, listening for this host: {}", listening.join(", "));
    println!(
        "    still reached: DNS ({API_SERVICE_NAME} is {service_ip}), the api-server at {api_server} \
         and as {api_service} ({})",
        secs(t.elapsed())
    );
}

/// What a plaintext HTTP request to `addr` gets: the answer's first line, or what happened instead.
fn plaintext_http(addr: &str) -> String {
    let addr: SocketAddr = addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}"));
    let mut stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        Ok(s) => s,
        Err(e) => return format!("connection failed ({e})"),
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let request = format!(
        "GET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let _ = stream.write_all(request.as_bytes());
    let mut answer = Vec::new();
    let _ = stream.take(4096).read_to_end(&mut answer);
    if answer.starts_with(b"HTTP/") {
        String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string()
    } else if answer.is_empty() {
        "closed without an answer".to_string()
    } else {
        let what = if answer[0] == 0x15 { "a TLS alert" } else { "something else" };
        format!("no HTTP answer ({what}, {} bytes)", answer.len())
    }
}

/// base64url without padding (JWT's encoding).
fn base64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A ServiceAccount token for kube-system's `default` with `alg: none` and no signature.
fn forged_token() -> String {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    let claims = serde_json::json!({
        "iss": "kubernetes/serviceaccount",
        "sub": "system:serviceaccount:kube-system:default",
        "aud": ["https://kubernetes.default.svc.cluster.local"],
        "iat": now, "nbf": now, "exp": now + 3600,
        "kubernetes.io": {"namespace": "kube-system", "serviceaccount": {"name": "default", "uid": "0"}},
        "kubernetes.io/serviceaccount/namespace": "kube-system",
        "kubernetes.io/serviceaccount/service-account.name": "default",
    });
    format!("{}.{}.", base64url(br#"{"alg":"none","typ":"JWT"}"#), base64url(claims.to_string().as_bytes()))
}

fn pods_yaml(attacker_node: &str, victim_node: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: {VICTIM_SECRET}}}
stringData: {{password: only-for-{victim_node}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: {ATTACKER}, labels: {{role: {ATTACKER}}}}}
spec:
  nodeName: {attacker_node}
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: {CURL_IMAGE}, command: [sleep, '36000']}}
---
apiVersion: v1
kind: Pod
metadata: {{name: {VICTIM}}}
spec:
  nodeName: {victim_node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox:1.36
    command: [sleep, '36000']
    volumeMounts: [{{name: s, mountPath: /secret}}]
  volumes: [{{name: s, secret: {{secretName: {VICTIM_SECRET}}}}}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: {READER}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: {READER}}}
rules:
- {{apiGroups: [""], resources: [pods], verbs: [list]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: {READER}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {READER}}}
subjects:
- {{kind: ServiceAccount, name: {READER}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: {READER}, labels: {{role: {READER}}}}}
spec:
  serviceAccountName: {READER}
  nodeName: {victim_node}
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: {CURL_IMAGE}, command: [sleep, '36000']}}
"#
    )
}

/// etcd from the node network: it listens on loopback only (else the pods' guard is all there is).
fn etcd_attack(api_server: &str, etcd: Option<SocketAddr>) {
    let Some(etcd) = etcd else {
        println!("    etcd: no running etcd found through make up's pid file; not checked from this host");
        return;
    };
    if etcd.ip().is_loopback() {
        let host = api_server.rsplit_once(':').map_or(api_server, |(h, _)| h);
        let target = format!("{host}:{}", etcd.port());
        let answer = plaintext_http(&target);
        assert!(answer.starts_with("connection failed"), "etcd's port on {target} from this host: {answer}");
        println!("    etcd listens on {etcd} only: {target} from this host: {answer}");
    } else {
        println!("    etcd listens on {etcd}: refused to pods by the guard (above)");
    }
}

/// An HTTPS GET of `path` from the api-server with `token` as the bearer and no client certificate
/// (the server's certificate not checked): the HTTP status.
fn get_with_token(api_server: &str, path: &str, token: &str) -> String {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("https://{api_server}{path}"))
        .output()
        .expect("curl");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr).trim())
}

/// A GET of `path` from inside `pod` with curl, as in-cluster clients do: the mounted token as the
/// bearer, the mounted `ca.crt` verifying the api-server at `base` (`https://kubernetes.default.svc`,
/// or a shell expression such as `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`): the
/// HTTP status and the body.
fn get_in_pod(pod: &str, base: &str, path: &str) -> (String, String) {
    let script = format!(
        "sa=/var/run/secrets/kubernetes.io/serviceaccount\n\
         curl -sS --max-time 10 --cacert $sa/ca.crt -H \"Authorization: Bearer $(cat $sa/token)\" \
         -w '\\n%{{http_code}}' \"{base}{path}\""
    );
    let out = nv(&["exec", pod, "--", "sh", "-c", &script]);
    let (body, code) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim()));
    (code.to_string(), body.to_string())
}

const IN_CLUSTER: &str = "https://kubernetes.default.svc";

/// The attacking pod's own (default) ServiceAccount token, used in the pod, against the Secrets of
/// its namespace and kube-system.
fn token_attacks(audit: &AuditLog) {
    let t = Instant::now();
    let user = format!("system:serviceaccount:{NS}:default");
    let namespaces = [NS, "kube-system"];
    for ns in namespaces {
        let (code, body) = get_in_pod(ATTACKER, IN_CLUSTER, &format!("/api/v1/namespaces/{ns}/secrets"));
        assert_eq!(code, "403", "{ATTACKER}'s ServiceAccount token listing the Secrets of {ns}: {body}");
        let decision = audit.decision(&user, "list", ("secrets", ns, ""), 403);
        assert_eq!(decision, "forbid", "the audit event of {user} listing Secrets in {ns}");
    }
    println!(
        "    {ATTACKER}'s ServiceAccount token in the pod (curl, ca.crt), list Secrets in {}: 403, \
         audited as {user}, forbid ({})",
        namespaces.join(" and "),
        secs(t.elapsed())
    );
}

/// The pod whose ServiceAccount may list pods in its namespace gets exactly that, from inside.
fn role_in_pod(audit: &AuditLog) {
    let t = Instant::now();
    let user = format!("system:serviceaccount:{NS}:{READER}");
    for base in [IN_CLUSTER, "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"] {
        let (code, body) = get_in_pod(READER, base, &format!("/api/v1/namespaces/{NS}/pods"));
        assert_eq!(code, "200", "{READER} listing the pods of {NS} at {base}: {body}");
        let list: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(list["kind"], "PodList", "{body}");
        let names: Vec<&str> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["metadata"]["name"].as_str())
            .collect();
        assert!(names.contains(&ATTACKER) && names.contains(&READER), "{READER} listed {names:?}");
    }
    assert_eq!(audit.decision(&user, "list", ("pods", NS, ""), 200), "allow");
    let refused = [
        (format!("/api/v1/namespaces/{NS}/pods/{ATTACKER}"), ("get", "pods", NS, ATTACKER)),
        ("/api/v1/namespaces/kube-system/pods".to_string(), ("list", "pods", "kube-system", "")),
        ("/api/v1/pods".to_string(), ("list", "pods", "", "")),
        (format!("/api/v1/namespaces/{NS}/secrets"), ("list", "secrets", NS, "")),
    ];
    for (path, (verb, resource, namespace, name)) in &refused {
        let (code, body) = get_in_pod(READER, IN_CLUSTER, path);
        assert_eq!(code, "403", "{READER} GET {path}: {body}");
        let status: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let message = status["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("User \"{user}\" cannot {verb} resource \"{resource}\"")),
            "{body}"
        );
        assert_eq!(audit.decision(&user, verb, (resource, namespace, name), 403), "forbid", "{path}");
    }
    println!(
        "    {READER} (Role: list pods in {NS}) from inside the pod: list pods 200 (by name and by \
         $KUBERNETES_SERVICE_HOST), 403 for {} ({})",
        refused.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join(", "),
        secs(t.elapsed())
    );
}

/// `kubectl ARGS` with `kubeconfig`.
fn kubectl_with(kubeconfig: &Path, args: &[&str]) -> Result<String, String> {
    let mut command = Command::new("kubectl");
    command.env("KUBECONFIG", kubeconfig);
    run_kubectl(command, args)
}

/// `kubectl ARGS` with `kubeconfig`: must be Forbidden.
fn forbidden_with(kubeconfig: &Path, args: &[&str]) {
    match kubectl_with(kubeconfig, args) {
        Ok(out) => panic!("kubectl {args:?} with {} succeeded: {out}", kubeconfig.display()),
        Err(e) => assert!(e.contains("(Forbidden)"), "kubectl {args:?} with {}: {e}", kubeconfig.display()),
    }
}

/// Node credentials used beyond the node's own pods.
fn node_attacks(c: &Cluster, audit: &AuditLog) {
    let t = Instant::now();
    let (n1, n2) = (&c.nodes[0].0, &c.nodes[1].0);
    let kubeconfig = node_kubeconfig(n1);
    let user = format!("system:node:{n1}");
    kubectl_with(&kubeconfig, &["get", "node", n1, "-o", "name"]).unwrap_or_else(|e| {
        panic!("{n1}'s credentials ({}) must work for its own Node: {e}", kubeconfig.display())
    });
    let missing = "e2e-no-such-secret";
    let rogue = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        rogue.path(),
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {ROGUE}, namespace: {NS}}}\nspec:\n  \
             nodeName: {n1}\n  containers:\n  - {{name: c, image: busybox:1.36, \
             volumeMounts: [{{name: s, mountPath: /s}}]}}\n  \
             volumes: [{{name: s, secret: {{secretName: {VICTIM_SECRET}}}}}]\n"
        ),
    )
    .unwrap();
    let label = format!("e2e-attack={n1}");
    // What is tried, the request the audit log must show refused, and by what: authorization
    // (decision forbid) or NodeRestriction admission (authorized, then refused: decision allow).
    let attacks = [
        (
            format!("the Secret of a {n2} pod"),
            vec!["get", "secret", VICTIM_SECRET, "-n", NS],
            ("get", "secrets", NS, VICTIM_SECRET),
            "forbid",
        ),
        (
            "a missing Secret".to_string(),
            vec!["get", "secret", missing, "-n", NS],
            ("get", "secrets", NS, missing),
            "forbid",
        ),
        // kubectl label reads the Node first.
        (
            format!("label Node {n2}"),
            vec!["label", "node", n2, &label],
            ("get", "nodes", "", n2.as_str()),
            "forbid",
        ),
        (
            "a non-mirror pod mounting that Secret".to_string(),
            vec!["create", "-f", rogue.path().to_str().unwrap()],
            ("create", "pods", NS, ROGUE),
            "allow",
        ),
    ];
    let mut seen = Vec::new();
    for (what, args, (verb, resource, ns, name), expected) in &attacks {
        forbidden_with(&kubeconfig, args);
        let decision = audit.decision(&user, verb, (resource, ns, name), 403);
        let by = if *expected == "forbid" { "authorization" } else { "admission" };
        assert_eq!(
            &decision, expected,
            "{what} with {n1}'s credentials: refused by {by}, audited as {expected}"
        );
        seen.push(format!("{what}: Forbidden, audited {verb} 403 {decision}"));
    }
    println!(
        "    {n1}'s kubelet credentials ({}): {} ({})",
        kubeconfig.display(),
        seen.join("; "),
        secs(t.elapsed())
    );
}

/// Plaintext HTTP to the api-server and a kubelet API, and a forged token.
fn protocol_attacks(c: &Cluster, api_server: &str, audit: &AuditLog) {
    let t = Instant::now();
    let (n1, ip1) = &c.nodes[0];
    let targets = [
        ("the api-server".to_string(), api_server.to_string()),
        (format!("{n1}'s kubelet API"), format!("{ip1}:{}", kubelet_port(n1))),
    ];
    for (what, target) in targets {
        let answer = plaintext_http(&target);
        assert!(
            !answer.starts_with("HTTP/") || answer.contains(" 400 "),
            "plaintext HTTP to {what} at {target}: {answer}"
        );
        println!("    plaintext HTTP to {what} at {target}: {answer}");
    }
    let path = "/api/v1/namespaces/kube-system/secrets";
    let code = get_with_token(api_server, path, &forged_token());
    assert_eq!(code, "401", "a forged alg=none token listing kube-system's Secrets");
    audit.find("the forged token's 401", |e| e["requestURI"] == path && e["responseStatus"]["code"] == 401);
    println!(
        "    a forged ServiceAccount token (alg: none) listing kube-system's Secrets: 401, audited ({})",
        secs(t.elapsed())
    );
}

pub fn scenario_11_attacks(c: &Cluster) {
    println!("[11] attacks from a pod and with a node's credentials: every one refused");
    assert!(c.nodes.len() >= 2, "two nodes needed: {:?}", c.nodes);
    let t = Instant::now();
    let audit = AuditLog::open();
    // Scenario 8 deletes the namespace.
    super::ensure_namespace();
    let yaml = pods_yaml(&c.nodes[0].0, &c.nodes[1].0);
    // (its ServiceAccount may be missing for a moment after the namespace is made)
    eventually_blocking("the attacking and victim pods created", allow(30), || apply_try(&yaml));
    for pod in [ATTACKER, READER] {
        eventually_blocking(format!("{pod} running"), allow(60), || {
            !serving(&format!("role={pod}")).is_empty()
        });
    }
    let (api_server, api_service) = api_server_addresses();
    let etcd = etcd_address();
    println!("    pods ready in {}", secs(t.elapsed()));
    network_attacks(c, &api_server, &api_service, etcd);
    etcd_attack(&api_server, etcd);
    token_attacks(&audit);
    role_in_pod(&audit);
    node_attacks(c, &audit);
    protocol_attacks(c, &api_server, &audit);
    let _ = nv_try(&["delete", "pod", ATTACKER, VICTIM, READER, "--now", "--wait=false"]);
    let _ = nv_try(&["delete", "rolebinding", READER]);
    let _ = nv_try(&["delete", "role", READER]);
    let _ = nv_try(&["delete", "serviceaccount", READER]);
    let _ = nv_try(&["delete", "secret", VICTIM_SECRET]);
    println!("    all attacks refused in {}", secs(t.elapsed()));
}
