//! The kubelet on real containerd, runc, CNI plugins and a registry on loopback: pods run, share
//! localhost and emptyDir, answer on their pod IP, survive a kubelet restart untouched, crash-loop
//! with back-off, get OOM-killed, run init containers in order, and leave nothing behind when deleted.
//! Needs root (network namespaces, mounts); run by `make test`.

use std::time::{Duration, Instant};

use navarch_api::Resource;
use navarch_api::v1::{ConfigMap, Node, Pod};
use navarch_client::{Api, Client, DeleteParams};
use navarch_tests::{Containerd, Kubelet, Registry, TestEnv};

fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap()
}

async fn wait_for<T>(what: &str, kubelet: &Kubelet, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n--- kubelet log\n{}",
            kubelet.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn ready_node(c: &Client, k: &Kubelet) {
    let nodes: Api<Node> = c.api("");
    wait_for("node Ready", k, 60, async || {
        let n = nodes.get_opt(&k.node_name).await.ok()??;
        let ready = n.status?.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True");
        ready.then_some(())
    })
    .await;
}

fn http_body(ip: &str, port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&format!("{ip}:{port}").parse().ok()?, Duration::from_secs(2))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

#[tokio::test]
async fn pod_runs_survives_kubelet_restart_and_is_deleted_cleanly() {
    let env = TestEnv::start().await;
    let registry = Registry::with_test_images();
    let ctd = Containerd::start().await;
    let mut kubelet = Kubelet::start(&env.api_server, &ctd, &registry).await;
    let c = env.client().await;
    ready_node(&c, &kubelet).await;

    let cms: Api<ConfigMap> = c.api("default");
    cms.create(&from_yaml("{metadata: {name: settings}, data: {greeting: hello, file.txt: from-configmap}}"))
        .await
        .unwrap();
    let pods: Api<Pod> = c.api("default");
    let pod: Pod = from_yaml(&format!(
        r#"
metadata: {{name: web-pod}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 3
  containers:
  - name: web
    image: serve-hostname:1.0
  - name: side
    image: busybox:1.36
    env:
    - {{name: GREETING, valueFrom: {{configMapKeyRef: {{name: settings, key: greeting}}}}}}
    - {{name: MY_POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    command: [sh, -c, 'echo "$GREETING $MY_POD" > /shared/env; cp /config/file.txt /shared/config; trap "exit 0" TERM; while true; do wget -qO /shared/fetched http://localhost:9376/; sleep 1; done']
    volumeMounts:
    - {{name: shared, mountPath: /shared}}
    - {{name: config, mountPath: /config, readOnly: true}}
  volumes:
  - {{name: shared, emptyDir: {{}}}}
  - {{name: config, configMap: {{name: settings}}}}
"#,
        node = kubelet.node_name
    ));
    let created = pods.create(&pod).await.unwrap();
    let uid = created.meta().uid.clone();
    let running = wait_for("web-pod Running and ready", &kubelet, 90, async || {
        let p = pods.get("web-pod").await.ok()?;
        let st = p.status.clone()?;
        (st.phase == "Running" && st.container_statuses.iter().all(|s| s.ready) && !st.pod_ip.is_empty())
            .then_some(p)
    })
    .await;
    let ip = running.status.as_ref().unwrap().pod_ip.clone();
    assert!(ip.starts_with(kubelet.pod_cidr.trim_end_matches("0/24")), "{ip} in {}", kubelet.pod_cidr);

    // The web server answers on the pod IP from the host with the pod's name.
    let body = wait_for("HTTP on the pod IP", &kubelet, 30, async || http_body(&ip, 9376)).await;
    assert_eq!(body, "web-pod\n");
    // The sidecar reached it over localhost and shares the emptyDir; env and configMap arrived.
    let shared = kubelet_volume(&kubelet, &uid, "shared");
    let fetched = wait_for("sidecar fetch over localhost", &kubelet, 30, async || {
        std::fs::read_to_string(shared.join("fetched")).ok().filter(|s| !s.is_empty())
    })
    .await;
    assert_eq!(fetched, "web-pod\n");
    assert_eq!(std::fs::read_to_string(shared.join("env")).unwrap(), "hello web-pod\n");
    assert_eq!(std::fs::read_to_string(shared.join("config")).unwrap(), "from-configmap");

    // A kubelet restart adopts the containers: same ids, no restarts.
    let ids = ctd.container_ids();
    assert_eq!(ids.len(), 2, "{ids:?}");
    kubelet.restart();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(ctd.container_ids(), ids, "containers replaced after a kubelet restart\n{}", kubelet.log());
    let p = pods.get("web-pod").await.unwrap();
    let st = p.status.unwrap();
    assert_eq!(st.phase, "Running");
    assert!(st.container_statuses.iter().all(|s| s.restart_count == 0), "{st:?}");
    assert_eq!(http_body(&ip, 9376).as_deref(), Some("web-pod\n"));

    // Graceful deletion: stopped within the grace period, then removed with everything it had.
    let started = Instant::now();
    pods.delete("web-pod", &DeleteParams::default()).await.unwrap();
    wait_for("web-pod gone", &kubelet, 30, async || {
        pods.get_opt("web-pod").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(15), "deletion took {:?}", started.elapsed());
    assert!(ctd.container_ids().is_empty(), "containers left: {:?}", ctd.container_ids());
    assert_eq!(kubelet.netns_count(), 0, "network namespaces left");
    assert!(!shared.exists(), "volume left at {}", shared.display());
    assert!(http_body(&ip, 9376).is_none(), "pod IP still answers");
}

fn kubelet_volume(k: &Kubelet, uid: &str, name: &str) -> std::path::PathBuf {
    k.log_dir().parent().unwrap().join("root/pods").join(uid).join("volumes").join(name)
}

#[tokio::test]
async fn crash_loop_oom_and_init_order() {
    let env = TestEnv::start().await;
    let registry = Registry::with_test_images();
    let ctd = Containerd::start().await;
    let kubelet = Kubelet::start(&env.api_server, &ctd, &registry).await;
    let c = env.client().await;
    ready_node(&c, &kubelet).await;
    let pods: Api<Pod> = c.api("default");
    let node = kubelet.node_name.clone();
    for y in [
        format!(
            "{{metadata: {{name: crash}}, spec: {{nodeName: {node}, containers: [{{name: c, image: busybox:1.36, command: [sh, -c, 'echo dying; exit 3']}}]}}}}"
        ),
        format!(
            "{{metadata: {{name: oom}}, spec: {{nodeName: {node}, restartPolicy: Never, containers: [{{name: c, image: busybox:1.36, resources: {{limits: {{memory: 16Mi}}}}, command: [sh, -c, 'x=a; while true; do x=$x$x; done']}}]}}}}"
        ),
        format!(
            "{{metadata: {{name: init}}, spec: {{nodeName: {node}, restartPolicy: Never, volumes: [{{name: w, emptyDir: {{}}}}], initContainers: [{{name: one, image: busybox:1.36, command: [sh, -c, 'echo one >> /w/order'], volumeMounts: [{{name: w, mountPath: /w}}]}}, {{name: two, image: busybox:1.36, command: [sh, -c, 'sleep 1; echo two >> /w/order'], volumeMounts: [{{name: w, mountPath: /w}}]}}], containers: [{{name: main, image: busybox:1.36, command: [sh, -c, 'echo main >> /w/order; cat /w/order'], volumeMounts: [{{name: w, mountPath: /w}}]}}]}}}}"
        ),
    ] {
        pods.create(&from_yaml::<Pod>(&y)).await.unwrap();
    }

    // Crash loop: restarted with back-off (immediately, then 10 s), reported as CrashLoopBackOff.
    let crash = wait_for("crash restarted twice", &kubelet, 60, async || {
        let p = pods.get("crash").await.ok()?;
        let cs = p.status.clone()?.container_statuses.first()?.clone();
        (cs.restart_count >= 2 && cs.state.as_ref()?.waiting.as_ref()?.reason == "CrashLoopBackOff")
            .then_some(cs)
    })
    .await;
    let last = crash.last_state.unwrap().terminated.unwrap();
    assert_eq!((last.exit_code, last.reason.as_str()), (3, "Error"));

    // OOM: killed by the memory cgroup, reported OOMKilled; restartPolicy Never fails the pod.
    let oom = wait_for("oom Failed", &kubelet, 60, async || {
        let p = pods.get("oom").await.ok()?;
        (p.status.as_ref()?.phase == "Failed").then_some(p)
    })
    .await;
    let t = oom.status.unwrap().container_statuses[0].state.clone().unwrap().terminated.unwrap();
    assert_eq!((t.exit_code, t.reason.as_str()), (137, "OOMKilled"));

    // Init containers in order, then the app container; the pod Succeeded.
    let init = wait_for("init Succeeded", &kubelet, 60, async || {
        let p = pods.get("init").await.ok()?;
        (p.status.as_ref()?.phase == "Succeeded").then_some(p)
    })
    .await;
    let uid = init.meta().uid.clone();
    let order = std::fs::read_to_string(kubelet_volume(&kubelet, &uid, "w").join("order")).unwrap();
    assert_eq!(order, "one\ntwo\nmain\n");

    for name in ["crash", "oom", "init"] {
        pods.delete(name, &DeleteParams { grace_period_seconds: Some(1), ..Default::default() })
            .await
            .unwrap();
    }
    wait_for("all pods gone", &kubelet, 60, async || {
        let left = pods.list(&Default::default()).await.ok()?.items.len();
        (left == 0).then_some(())
    })
    .await;
    assert!(ctd.container_ids().is_empty(), "containers left: {:?}", ctd.container_ids());
    assert_eq!(kubelet.netns_count(), 0);
}

fn condition(p: &Pod, t: &str) -> Option<String> {
    p.status.as_ref()?.conditions.iter().find(|c| c.r#type == t).map(|c| c.status.clone())
}

#[tokio::test]
async fn probes_readiness_flip_liveness_restart_and_startup() {
    let env = TestEnv::start().await;
    let registry = Registry::with_test_images();
    let ctd = Containerd::start().await;
    let kubelet = Kubelet::start(&env.api_server, &ctd, &registry).await;
    let c = env.client().await;
    ready_node(&c, &kubelet).await;
    let pods: Api<Pod> = c.api("default");
    let node = kubelet.node_name.clone();
    // Readiness over HTTP on a file the test controls (an emptyDir), liveness over TCP.
    pods.create(&from_yaml::<Pod>(&format!(
        r#"
metadata: {{name: ready}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  volumes: [{{name: www, emptyDir: {{}}}}]
  containers:
  - name: web
    image: busybox:1.36
    command: [sh, -c, 'echo ok > /www/healthz; exec httpd -f -p 8080 -h /www']
    ports: [{{name: http, containerPort: 8080}}]
    volumeMounts: [{{name: www, mountPath: /www}}]
    readinessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 1, failureThreshold: 1}}
    livenessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
"#
    )))
    .await
    .unwrap();
    // Liveness by exec: healthy for a few seconds, then the file goes and the container is restarted.
    // Startup by exec: not started (so not ready) until the file appears.
    pods.create(&from_yaml::<Pod>(&format!(
        r#"
metadata: {{name: live}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 2
  containers:
  - name: live
    image: busybox:1.36
    command: [sh, -c, 'touch /tmp/alive; sleep 4; rm /tmp/alive; exec sleep 1000']
    livenessProbe: {{exec: {{command: [cat, /tmp/alive]}}, periodSeconds: 1, failureThreshold: 2}}
  - name: slow
    image: busybox:1.36
    command: [sh, -c, 'sleep 3; touch /tmp/started; exec sleep 1000']
    startupProbe: {{exec: {{command: [test, -f, /tmp/started]}}, periodSeconds: 1, failureThreshold: 30}}
"#
    )))
    .await
    .unwrap();

    let ready = wait_for("ready pod Ready", &kubelet, 60, async || {
        let p = pods.get("ready").await.ok()?;
        (condition(&p, "Ready")? == "True").then_some(p)
    })
    .await;
    let uid = ready.meta().uid.clone();
    let health = kubelet_volume(&kubelet, &uid, "www").join("healthz");
    std::fs::remove_file(&health).unwrap();
    let p = wait_for("ready pod not Ready", &kubelet, 30, async || {
        let p = pods.get("ready").await.ok()?;
        (condition(&p, "Ready")? == "False").then_some(p)
    })
    .await;
    let st = p.status.unwrap();
    assert_eq!(st.phase, "Running");
    assert!(!st.container_statuses[0].ready);
    assert_eq!(condition_of(&st, "ContainersReady").as_deref(), Some("False"));
    std::fs::write(&health, "ok\n").unwrap();
    wait_for("ready pod Ready again", &kubelet, 30, async || {
        let p = pods.get("ready").await.ok()?;
        (condition(&p, "Ready")? == "True").then_some(())
    })
    .await;

    // The startup probe passes after ~3 s; only then is the container started and ready.
    let live = wait_for("slow container started", &kubelet, 60, async || {
        let p = pods.get("live").await.ok()?;
        let cs = p.status.as_ref()?.container_statuses.iter().find(|s| s.name == "slow")?.clone();
        (cs.started == Some(true) && cs.ready).then_some(p)
    })
    .await;
    let slow = live.status.as_ref().unwrap().container_statuses.iter().find(|s| s.name == "slow").unwrap();
    assert_eq!(slow.restart_count, 0);
    // The liveness probe fails after ~4 s: the container is stopped and restarted.
    let cs = wait_for("live container restarted", &kubelet, 60, async || {
        let p = pods.get("live").await.ok()?;
        let cs = p.status.as_ref()?.container_statuses.iter().find(|s| s.name == "live")?.clone();
        (cs.restart_count >= 1 && cs.state.as_ref()?.running.is_some()).then_some(cs)
    })
    .await;
    assert!(cs.last_state.unwrap().terminated.is_some());
    let events: Api<navarch_api::v1::Event> = c.api("default");
    let evs = wait_for("probe events", &kubelet, 30, async || {
        let evs = events.list(&Default::default()).await.ok()?.items;
        let has =
            |reason: &str, text: &str| evs.iter().any(|e| e.reason == reason && e.message.contains(text));
        (has("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404")
            && has("Unhealthy", "Liveness probe failed:")
            && has("Killing", "Container live failed liveness probe, will be restarted"))
        .then_some(evs)
    })
    .await;
    assert!(!evs.is_empty());

    for name in ["ready", "live"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    wait_for("all pods gone", &kubelet, 60, async || {
        let left = pods.list(&Default::default()).await.ok()?.items.len();
        (left == 0).then_some(())
    })
    .await;
    assert!(ctd.container_ids().is_empty(), "containers left: {:?}", ctd.container_ids());
}

fn condition_of(st: &navarch_api::v1::PodStatus, t: &str) -> Option<String> {
    st.conditions.iter().find(|c| c.r#type == t).map(|c| c.status.clone())
}
