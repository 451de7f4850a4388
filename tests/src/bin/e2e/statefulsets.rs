//! Scenario 17: StatefulSets with stable identity and storage, and a small database on them.
//!
//! A headless Service `store` and a StatefulSet `store` of 3 busybox pods, each with a claim from the
//! default class; each pod counts its starts in its volume and writes its hostname there. Checked: pods
//! are created in order (each only once the one before is Ready); each resolves the others'
//! `store-N.store.e2e.svc.cluster.local`; a deleted `store-1` comes back with the same claim and its
//! count; scaling to 1 and back to 3 keeps `store-1`'s and `store-2`'s data; an image update with
//! `partition: 2` updates only `store-2`, then rolls `store-1` before `store-0`; `kubectl rollout undo`;
//! an immutable field change and a claim template without a storage request are refused with
//! Kubernetes' messages. Then a scale-up to 5 through kill -9 of the controller-manager, the scheduler
//! and a kubelet: it converges, no ordinal ever has containers of two pods running at once (sampled on
//! the nodes' containerd), and no volume is lost or leaked. Last, Debian's redis as a 1-replica
//! StatefulSet with an append-only file on its claim: a key written, the pod deleted, the key read back.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use navarch_tests::eventually_blocking;

use super::{
    Cluster, NS, allow, apply, apply_try, cluster, ensure_namespace, kubectl, kubectl_try, navarch_home, secs,
};

const SET: &str = "store";

fn manifest(replicas: u32, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {SET}}}\nspec:\n  clusterIP: None\n  selector: {{app: {SET}}}\n  \
         ports: [{{port: 80}}]\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: {SET}}}\nspec:\n  \
         serviceName: {SET}\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {SET}}}}}\n  template:\n    \
         metadata: {{labels: {{app: {SET}}}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      \
         - name: c\n        image: {image}\n        command: [sh, -c, 'n=$(cat /data/count 2>/dev/null || echo 0); \
         echo $((n+1)) > /data/count; hostname > /data/host; exec sleep 36000']\n        readinessProbe:\n          \
         exec: {{command: [test, -f, /data/host]}}\n          periodSeconds: 1\n        volumeMounts: [{{name: data, \
         mountPath: /data}}]\n  volumeClaimTemplates:\n  - metadata: {{name: data}}\n    spec:\n      accessModes: \
         [ReadWriteOnce]\n      resources: {{requests: {{storage: 32Mi}}}}\n"
    )
}

fn jsonpath(args: &[&str], path: &str) -> String {
    let mut a: Vec<&str> = args.to_vec();
    let p = format!("jsonpath={{{path}}}");
    a.extend(["-n", NS, "-o", &p]);
    kubectl_try(&a).unwrap_or_default()
}

/// The set's pods: name → (uid, ready, image, creationTimestamp, Ready's lastTransitionTime).
fn set_pods() -> BTreeMap<String, (String, bool, String, String, String)> {
    let out = kubectl(&["get", "pods", "-n", NS, "-l", &format!("app={SET}"), "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let ready =
                p["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                (
                    p["metadata"]["uid"].as_str().unwrap().to_string(),
                    ready.is_some_and(|c| c["status"] == "True"),
                    p["spec"]["containers"][0]["image"].as_str().unwrap_or_default().to_string(),
                    p["metadata"]["creationTimestamp"].as_str().unwrap_or_default().to_string(),
                    ready.and_then(|c| c["lastTransitionTime"].as_str()).unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

fn all_ready(n: usize) -> bool {
    let pods = set_pods();
    pods.len() == n && pods.values().all(|p| p.1) && (0..n).all(|i| pods.contains_key(&format!("{SET}-{i}")))
}

fn exec(pod: &str, cmd: &[&str]) -> String {
    let mut a = vec!["exec", pod, "-n", NS, "--"];
    a.extend(cmd);
    kubectl(&a).trim().to_string()
}

fn count(pod: &str) -> u32 {
    exec(pod, &["cat", "/data/count"]).parse().unwrap_or_else(|e| panic!("{pod}'s count: {e}"))
}

/// The uids of pods named `name` that have a running container on any node (containerd's view).
fn running_uids(nodes: usize, name: &str) -> BTreeSet<String> {
    let sock = navarch_home().join("containerd/containerd.sock");
    let ctr = |ns: &str, args: &[&str]| -> String {
        let out = Command::new("ctr")
            .args(["-a", sock.to_str().unwrap(), "-n", ns])
            .args(args)
            .output()
            .expect("ctr");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let mut uids = BTreeSet::new();
    for i in 1..=nodes {
        let ns = format!("navarch-node-{i}");
        let filter =
            format!("labels.\"io.navarch.pod.namespace\"=={NS},labels.\"io.navarch.pod.name\"=={name}");
        let ids: BTreeSet<String> =
            ctr(&ns, &["containers", "ls", "-q", &filter]).lines().map(str::to_string).collect();
        if ids.is_empty() {
            continue;
        }
        for line in ctr(&ns, &["tasks", "ls"]).lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() >= 3 && cols[2] == "RUNNING" && ids.contains(cols[0]) {
                let info = ctr(&ns, &["containers", "info", cols[0]]);
                let v: serde_json::Value = serde_json::from_str(&info).unwrap_or_default();
                if let Some(uid) = v["Labels"]["io.navarch.pod.uid"].as_str() {
                    uids.insert(uid.to_string());
                }
            }
        }
    }
    uids
}

pub(crate) fn scenario_17_statefulsets(c: &Cluster) {
    println!("[17] StatefulSets: ordered pods, stable names and storage, rolling updates, a database");
    ensure_namespace();
    let t = Instant::now();
    apply(&manifest(3, "busybox:1.36"));
    eventually_blocking("store-0..2 Ready", allow(180), || all_ready(3));
    let pods = set_pods();
    for i in 1..3 {
        let (prev, this) = (&pods[&format!("{SET}-{}", i - 1)], &pods[&format!("{SET}-{i}")]);
        assert!(
            this.3 >= prev.4,
            "{SET}-{i} created at {} before {SET}-{} was Ready at {}",
            this.3,
            i - 1,
            prev.4
        );
    }
    println!("    3 pods created in order 0, 1, 2, each after the previous was Ready: {}", secs(t.elapsed()));
    let claims: BTreeMap<String, String> = (0..3)
        .map(|i| {
            let name = format!("data-{SET}-{i}");
            let uid = jsonpath(&["get", "pvc", &name], ".metadata.uid");
            assert_eq!(jsonpath(&["get", "pvc", &name], ".status.phase"), "Bound", "{name}");
            (name, uid)
        })
        .collect();

    for i in 0..3 {
        let ip = jsonpath(&["get", "pod", &format!("{SET}-{i}")], ".status.podIP");
        let from = format!("{SET}-{}", (i + 1) % 3);
        let name = format!("{SET}-{i}.{SET}.{NS}.svc.cluster.local");
        let answer = eventually_blocking(format!("{name} from {from}"), allow(30), || {
            kubectl_try(&["exec", &from, "-n", NS, "--", "nslookup", &name]).ok().filter(|a| a.contains(&ip))
        });
        assert!(answer.contains(&ip), "{answer}");
    }
    println!("    each pod resolves the others' stable DNS names");

    let old = set_pods()[&format!("{SET}-1")].0.clone();
    kubectl(&["delete", "pod", &format!("{SET}-1"), "-n", NS]);
    eventually_blocking("store-1 back", allow(90), || {
        all_ready(3) && set_pods()[&format!("{SET}-1")].0 != old
    });
    assert_eq!(count(&format!("{SET}-1")), 2, "store-1 started a second time on the same data");
    assert_eq!(
        jsonpath(&["get", "pvc", &format!("data-{SET}-1")], ".metadata.uid"),
        claims[&format!("data-{SET}-1")]
    );
    println!("    deleted store-1 came back with the same claim and data");

    kubectl(&["scale", "statefulset", SET, "-n", NS, "--replicas=1"]);
    eventually_blocking("scaled to 1", allow(90), || set_pods().len() == 1 && all_ready(1));
    for (name, uid) in &claims {
        assert_eq!(&jsonpath(&["get", "pvc", name], ".metadata.uid"), uid, "{name} kept while scaled down");
    }
    kubectl(&["scale", "statefulset", SET, "-n", NS, "--replicas=3"]);
    eventually_blocking("scaled back to 3", allow(120), || all_ready(3));
    assert_eq!(count(&format!("{SET}-1")), 3, "store-1's data through scale 3 -> 1 -> 3");
    assert_eq!(count(&format!("{SET}-2")), 2, "store-2's data through scale 3 -> 1 -> 3");
    println!("    scale 3 -> 1 -> 3 kept store-1's and store-2's claims and data");

    rolling_update();
    bad_changes();
    scale_up_through_kills(c);
    redis();
    for kind in ["statefulset", "service"] {
        let _ = kubectl_try(&["delete", kind, SET, "-n", NS]);
    }
    let _ = kubectl_try(&["delete", "pvc", "-n", NS, "-l", &format!("app={SET}")]);
}

fn images() -> Vec<String> {
    let pods = set_pods();
    (0..3).map(|i| pods.get(&format!("{SET}-{i}")).map(|p| p.2.clone()).unwrap_or_default()).collect()
}

fn rolling_update() {
    let t = Instant::now();
    kubectl(&[
        "patch",
        "statefulset",
        SET,
        "-n",
        NS,
        "-p",
        r#"{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":2}}}}"#,
    ]);
    kubectl(&["set", "image", &format!("statefulset/{SET}"), "-n", NS, "c=busybox:latest"]);
    eventually_blocking("store-2 updated", allow(90), || {
        all_ready(3) && images() == ["busybox:1.36", "busybox:1.36", "busybox:latest"]
    });
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        images(),
        ["busybox:1.36", "busybox:1.36", "busybox:latest"],
        "partition 2 stops after store-2"
    );
    let status = kubectl(&["rollout", "status", &format!("statefulset/{SET}"), "-n", NS, "--timeout=60s"]);
    assert!(status.contains("partitioned roll out complete"), "{status}");
    kubectl(&[
        "patch",
        "statefulset",
        SET,
        "-n",
        NS,
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ]);
    // The order of the updates: store-1 before store-0.
    let mut order: Vec<usize> = Vec::new();
    eventually_blocking("all updated", allow(120), || {
        for (i, image) in images().iter().enumerate() {
            if image == "busybox:latest" && i < 2 && !order.contains(&i) {
                order.push(i);
            }
        }
        order.len() == 2 && all_ready(3)
    });
    assert_eq!(order, [1, 0], "rolled from the highest ordinal down");
    // The strategy has bounds (partition 0): kubectl reports a partitioned roll out.
    let status = kubectl(&["rollout", "status", &format!("statefulset/{SET}"), "-n", NS, "--timeout=60s"]);
    assert!(status.contains("partitioned roll out complete: 3 new pods have been updated"), "{status}");
    kubectl(&["rollout", "undo", &format!("statefulset/{SET}"), "-n", NS]);
    eventually_blocking("undone to busybox:1.36", allow(120), || {
        all_ready(3) && images().iter().all(|i| i == "busybox:1.36")
    });
    let history = kubectl(&["rollout", "history", &format!("statefulset/{SET}"), "-n", NS]);
    assert!(history.contains("REVISION"), "{history}");
    println!(
        "    image update: partition 2 updated store-2 only, then store-1, store-0; rollout undo: {}",
        secs(t.elapsed())
    );
}

fn bad_changes() {
    let err =
        kubectl_try(&["patch", "statefulset", SET, "-n", NS, "-p", r#"{"spec":{"serviceName":"other"}}"#])
            .expect_err("serviceName is immutable");
    assert!(err.contains("updates to statefulset spec for fields other than"), "{err}");
    let no_storage = manifest(1, "busybox:1.36")
        .split("---\n")
        .nth(1)
        .unwrap()
        .replace(&format!("name: {SET}}}"), "name: nostorage}")
        .replace(&format!("app: {SET}"), "app: nostorage")
        .replace(&format!("serviceName: {SET}"), "serviceName: nostorage")
        .replace("      resources: {requests: {storage: 32Mi}}\n", "");
    let message = match apply_try(&no_storage) {
        Err(e) => e,
        Ok(_) => eventually_blocking("FailedCreate for the claim", allow(30), || {
            let e =
                kubectl(&["get", "events", "-n", NS, "--field-selector", "involvedObject.name=nostorage"]);
            e.contains("FailedCreate").then_some(e)
        }),
    };
    assert!(message.contains("resources[storage]"), "{message}");
    let _ = kubectl_try(&["delete", "statefulset", "nostorage", "-n", NS]);
    println!(
        "    immutable field change refused; a claim template without storage: {}",
        message.lines().last().unwrap_or("")
    );
}

fn scale_up_through_kills(c: &Cluster) {
    let t = Instant::now();
    let pvs_before = kubectl(&["get", "pv", "-o", "name"]).lines().count();
    let stop = Arc::new(AtomicBool::new(false));
    let nodes = c.nodes.len();
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut samples = 0;
            while !stop.load(Ordering::Relaxed) {
                for i in 0..5 {
                    let name = format!("{SET}-{i}");
                    let uids = running_uids(nodes, &name);
                    assert!(uids.len() <= 1, "{name} runs as two pods at once: {uids:?}");
                }
                samples += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            samples
        })
    };
    kubectl(&["scale", "statefulset", SET, "-n", NS, "--replicas=5"]);
    eventually_blocking("store-3 created", allow(60), || set_pods().contains_key(&format!("{SET}-3")));
    for comp in ["controller-manager", "scheduler", "kubelet-node-1"] {
        cluster("kill", &[("C", comp)]);
        std::thread::sleep(Duration::from_secs(1));
        cluster("up", &[]);
    }
    eventually_blocking("store-0..4 Ready", allow(240), || all_ready(5));
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().expect("no ordinal ran twice");
    let pvs = kubectl(&["get", "pv", "-o", "name"]).lines().count();
    assert_eq!(pvs, pvs_before + 2, "one new volume per new ordinal");
    for i in 0..5 {
        assert_eq!(jsonpath(&["get", "pvc", &format!("data-{SET}-{i}")], ".status.phase"), "Bound");
    }
    // Every local-path directory on the nodes belongs to a volume.
    let dirs: usize = (1..=nodes)
        .map(|i| {
            let d = navarch_home().join(format!("nodes/node-{i}/root/local-path"));
            std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0)
        })
        .sum();
    let local_pvs = kubectl(&["get", "pv", "-o", "jsonpath={.items[*].spec.hostPath.path}"])
        .split_whitespace()
        .filter(|p| p.contains("/local-path/"))
        .count();
    assert_eq!(dirs, local_pvs, "local-path directories vs volumes");
    println!(
        "    scale 3 -> 5 through kill -9 of controller-manager, scheduler, kubelet-node-1: converged in {}; \
         {samples} samples, no ordinal twice; {pvs} volumes, {dirs} directories",
        secs(t.elapsed())
    );
    kubectl(&["scale", "statefulset", SET, "-n", NS, "--replicas=3"]);
    eventually_blocking("back to 3", allow(90), || set_pods().len() == 3);
}

fn redis() {
    let t = Instant::now();
    apply(
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: redis}\nspec:\n  serviceName: redis\n  replicas: 1\n  \
         selector: {matchLabels: {app: redis}}\n  template:\n    metadata: {labels: {app: redis}}\n    spec:\n      \
         containers:\n      - name: redis\n        image: redis\n        args: [--appendonly, 'yes']\n        \
         ports: [{containerPort: 6379}]\n        readinessProbe: {exec: {command: [redis-cli, ping]}, periodSeconds: 1}\n        \
         volumeMounts: [{name: data, mountPath: /data}]\n  volumeClaimTemplates:\n  - metadata: {name: data}\n    \
         spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 64Mi}}}\n",
    );
    let ready =
        || jsonpath(&["get", "pod", "redis-0"], ".status.conditions[?(@.type==\"Ready\")].status") == "True";
    eventually_blocking("redis-0 Ready", allow(120), ready);
    assert_eq!(exec("redis-0", &["redis-cli", "set", "greeting", "hello-navarch"]), "OK");
    let uid = jsonpath(&["get", "pod", "redis-0"], ".metadata.uid");
    kubectl(&["delete", "pod", "redis-0", "-n", NS]);
    eventually_blocking("a new redis-0 Ready", allow(120), || {
        jsonpath(&["get", "pod", "redis-0"], ".metadata.uid") != uid && ready()
    });
    assert_eq!(
        exec("redis-0", &["redis-cli", "get", "greeting"]),
        "hello-navarch",
        "the key survived the pod"
    );
    let _ = kubectl_try(&["delete", "statefulset", "redis", "-n", NS]);
    let _ = kubectl_try(&["delete", "pvc", "data-redis-0", "-n", NS]);
    println!("    redis: key written, pod deleted, key read back from the new pod: {}", secs(t.elapsed()));
}
