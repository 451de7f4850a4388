//! The kubelet on real containerd, runc, CNI plugins and a registry on loopback: pods run, share
//! localhost and emptyDir, answer on their pod IP, survive a kubelet restart untouched, crash-loop
//! with back-off, get OOM-killed, run init containers in order, and leave nothing behind when deleted.
//! Needs root (network namespaces, mounts); run by `make test`.

use std::time::{Duration, Instant};

use navarch_api::Resource;
use navarch_api::v1::{ConfigMap, Pod};
use navarch_client::{Api, Client, DeleteParams};
use navarch_tests::{Containerd, Kubelet, NodeEnv, Registry, TestEnv, eventually, ready_node};

fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap()
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
    let NodeEnv { env: _env, registry: _registry, ctd, mut kubelet, c, .. } = NodeEnv::start().await;

    let cms: Api<ConfigMap> = c.api("default");
    cms.create(&from_yaml("{metadata: {name: settings}, data: {greeting: hello, file.txt: from-configmap}}"))
        .await
        .unwrap();
    let secrets: Api<navarch_api::v1::Secret> = c.api("default");
    secrets
        .create(&from_yaml(
            "{metadata: {name: creds}, stringData: {password: s3cret}, data: {token.txt: dG9rZW4tdmFsdWU=}}",
        ))
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
    - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}}}
    command: [sh, -c, 'echo "$GREETING $MY_POD" > /shared/env; cp /config/file.txt /shared/config; echo "$PASSWORD $(cat /secret/token.txt)" > /shared/secret; trap "exit 0" TERM; while true; do wget -qO /shared/fetched http://localhost:9376/; sleep 1; done']
    volumeMounts:
    - {{name: shared, mountPath: /shared}}
    - {{name: config, mountPath: /config, readOnly: true}}
    - {{name: secret, mountPath: /secret, readOnly: true}}
  volumes:
  - {{name: shared, emptyDir: {{}}}}
  - {{name: config, configMap: {{name: settings}}}}
  - {{name: secret, secret: {{secretName: creds}}}}
"#,
        node = kubelet.node_name
    ));
    let created = pods.create(&pod).await.unwrap();
    let uid = created.meta().uid.clone();
    let running =
        eventually(kubelet.with_log("web-pod Running and ready"), Duration::from_secs(90), async || {
            let p = pods.get("web-pod").await.ok()?;
            let st = p.status.clone()?;
            (st.phase == "Running" && st.container_statuses.iter().all(|s| s.ready) && !st.pod_ip.is_empty())
                .then_some(p)
        })
        .await;
    let ip = running.status.as_ref().unwrap().pod_ip.clone();
    assert!(ip.starts_with(kubelet.pod_cidr.trim_end_matches("0/24")), "{ip} in {}", kubelet.pod_cidr);

    // The web server answers on the pod IP from the host with the pod's name.
    let body = eventually(kubelet.with_log("HTTP on the pod IP"), Duration::from_secs(30), async || {
        http_body(&ip, 9376)
    })
    .await;
    assert_eq!(body, "web-pod\n");
    // The sidecar reached it over localhost and shares the emptyDir; env and configMap arrived.
    let shared = kubelet_volume(&kubelet, &uid, "shared");
    let fetched =
        eventually(kubelet.with_log("sidecar fetch over localhost"), Duration::from_secs(30), async || {
            std::fs::read_to_string(shared.join("fetched")).ok().filter(|s| !s.is_empty())
        })
        .await;
    assert_eq!(fetched, "web-pod\n");
    assert_eq!(std::fs::read_to_string(shared.join("env")).unwrap(), "hello web-pod\n");
    assert_eq!(std::fs::read_to_string(shared.join("config")).unwrap(), "from-configmap");
    assert_eq!(std::fs::read_to_string(shared.join("secret")).unwrap(), "s3cret token-value\n");

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

    // A pod deleted while the kubelet is down is cleaned up when it returns.
    let orphan: Pod = from_yaml(&format!(
        "{{metadata: {{name: orphan}}, spec: {{nodeName: {}, terminationGracePeriodSeconds: 0, containers: [{{name: c, image: busybox:1.36, command: [sleep, '3600']}}]}}}}",
        kubelet.node_name
    ));
    pods.create(&orphan).await.unwrap();
    eventually(kubelet.with_log("orphan Running"), Duration::from_secs(60), async || {
        (pods.get("orphan").await.ok()?.status?.phase == "Running").then_some(())
    })
    .await;
    kubelet.kill9();
    pods.delete("orphan", &DeleteParams::default()).await.unwrap();
    assert!(pods.get_opt("orphan").await.unwrap().is_none(), "grace 0: removed from the API at once");
    assert_eq!(ctd.container_ids().len(), 3);
    kubelet.restart();
    // Its container goes first, then its network namespace (the sweep's last step).
    eventually(
        kubelet.with_log("orphan's container and network namespace removed"),
        Duration::from_secs(60),
        async || ctd.container_ids() == ids && kubelet.netns_count() == 1,
    )
    .await;

    // Graceful deletion: stopped within the grace period, then removed with everything it had.
    let started = Instant::now();
    pods.delete("web-pod", &DeleteParams::default()).await.unwrap();
    eventually(kubelet.with_log("web-pod gone"), Duration::from_secs(30), async || {
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
    let NodeEnv { env: _env, registry: _registry, ctd, kubelet, pods, node, .. } = NodeEnv::start().await;
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

    // Crash loop: the first restart at once, then back-off 10 s, 20 s, ... reported as CrashLoopBackOff.
    let first = eventually(
        kubelet.with_log("crash restarted once and backing off"),
        Duration::from_secs(60),
        async || {
            let p = pods.get("crash").await.ok()?;
            let cs = p.status.clone()?.container_statuses.first()?.clone();
            let w = cs.state.as_ref()?.waiting.clone()?;
            (cs.restart_count == 1 && w.reason == "CrashLoopBackOff").then_some((cs, w))
        },
    )
    .await;
    assert!(
        first.1.message.starts_with("back-off 10s restarting failed container=c pod=crash_default("),
        "{}",
        first.1.message
    );
    let finished_1 = first.0.last_state.clone().unwrap().terminated.unwrap().finished_at;
    let crash = eventually(kubelet.with_log("crash restarted twice"), Duration::from_secs(60), async || {
        let p = pods.get("crash").await.ok()?;
        let cs = p.status.clone()?.container_statuses.first()?.clone();
        (cs.restart_count >= 2 && cs.state.as_ref()?.waiting.as_ref()?.reason == "CrashLoopBackOff")
            .then_some(cs)
    })
    .await;
    let last = crash.last_state.clone().unwrap().terminated.unwrap();
    assert_eq!((last.exit_code, last.reason.as_str()), (3, "Error"));
    let secs = |t: &str| humantime::parse_rfc3339(t).unwrap();
    let gap = secs(&last.started_at).duration_since(secs(&finished_1)).unwrap_or_default();
    assert!(
        gap >= Duration::from_secs(9),
        "second restart {gap:?} after the first exit, not after the 10 s back-off"
    );
    let message = &crash.state.unwrap().waiting.unwrap().message;
    assert!(message.starts_with("back-off 20s"), "{message}");

    // OOM: killed by the memory cgroup, reported OOMKilled; restartPolicy Never fails the pod.
    let oom = eventually(kubelet.with_log("oom Failed"), Duration::from_secs(60), async || {
        let p = pods.get("oom").await.ok()?;
        (p.status.as_ref()?.phase == "Failed").then_some(p)
    })
    .await;
    let t = oom.status.unwrap().container_statuses[0].state.clone().unwrap().terminated.unwrap();
    assert_eq!((t.exit_code, t.reason.as_str()), (137, "OOMKilled"));

    // Init containers in order, then the app container; the pod Succeeded.
    let init = eventually(kubelet.with_log("init Succeeded"), Duration::from_secs(60), async || {
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
    eventually(kubelet.with_log("all pods gone"), Duration::from_secs(60), async || {
        let left = pods.list(&Default::default()).await.ok()?.items.len();
        (left == 0).then_some(())
    })
    .await;
    assert!(ctd.container_ids().is_empty(), "containers left: {:?}", ctd.container_ids());
    assert_eq!(kubelet.netns_count(), 0);
}

fn condition(p: &Pod, t: &str) -> Option<String> {
    condition_of(p.status.as_ref()?, t)
}

#[tokio::test]
async fn probes_readiness_flip_liveness_restart_and_startup() {
    let NodeEnv { env: _env, registry: _registry, ctd, kubelet, c, pods, node } = NodeEnv::start().await;
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

    let ready = eventually(kubelet.with_log("ready pod Ready"), Duration::from_secs(60), async || {
        let p = pods.get("ready").await.ok()?;
        (condition(&p, "Ready")? == "True").then_some(p)
    })
    .await;
    let uid = ready.meta().uid.clone();
    let health = kubelet_volume(&kubelet, &uid, "www").join("healthz");
    std::fs::remove_file(&health).unwrap();
    let p = eventually(kubelet.with_log("ready pod not Ready"), Duration::from_secs(30), async || {
        let p = pods.get("ready").await.ok()?;
        (condition(&p, "Ready")? == "False").then_some(p)
    })
    .await;
    let st = p.status.unwrap();
    assert_eq!(st.phase, "Running");
    assert!(!st.container_statuses[0].ready);
    assert_eq!(condition_of(&st, "ContainersReady").as_deref(), Some("False"));
    std::fs::write(&health, "ok\n").unwrap();
    eventually(kubelet.with_log("ready pod Ready again"), Duration::from_secs(30), async || {
        let p = pods.get("ready").await.ok()?;
        (condition(&p, "Ready")? == "True").then_some(())
    })
    .await;

    // The startup probe passes after ~3 s; only then is the container started and ready.
    let live = eventually(kubelet.with_log("slow container started"), Duration::from_secs(60), async || {
        let p = pods.get("live").await.ok()?;
        let cs = p.status.as_ref()?.container_statuses.iter().find(|s| s.name == "slow")?.clone();
        (cs.started == Some(true) && cs.ready).then_some(p)
    })
    .await;
    let slow = live.status.as_ref().unwrap().container_statuses.iter().find(|s| s.name == "slow").unwrap();
    assert_eq!(slow.restart_count, 0);
    // The liveness probe fails after ~4 s: the container is stopped and restarted.
    let cs = eventually(kubelet.with_log("live container restarted"), Duration::from_secs(60), async || {
        let p = pods.get("live").await.ok()?;
        let cs = p.status.as_ref()?.container_statuses.iter().find(|s| s.name == "live")?.clone();
        (cs.restart_count >= 1 && cs.state.as_ref()?.running.is_some()).then_some(cs)
    })
    .await;
    assert!(cs.last_state.unwrap().terminated.is_some());
    let events: Api<navarch_api::v1::Event> = c.api("default");
    let evs = eventually(kubelet.with_log("probe events"), Duration::from_secs(30), async || {
        let evs = events.list(&Default::default()).await.map_err(|e| e.to_string())?.items;
        let has =
            |reason: &str, text: &str| evs.iter().any(|e| e.reason == reason && e.message.contains(text));
        if has("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404")
            && has("Unhealthy", "Liveness probe failed:")
            && has("Killing", "Container live failed liveness probe, will be restarted")
        {
            return Ok(evs);
        }
        // On a timeout, the events there were.
        Err(evs
            .iter()
            .map(|e| {
                format!(
                    "{} {}: {}",
                    e.reason,
                    e.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or(""),
                    e.message
                )
            })
            .collect::<Vec<_>>()
            .join("\n"))
    })
    .await;
    assert!(!evs.is_empty());

    for name in ["ready", "live"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    eventually(kubelet.with_log("all pods gone"), Duration::from_secs(60), async || {
        let left = pods.list(&Default::default()).await.ok()?.items.len();
        (left == 0).then_some(())
    })
    .await;
    assert!(ctd.container_ids().is_empty(), "containers left: {:?}", ctd.container_ids());
}

fn condition_of(st: &navarch_api::v1::PodStatus, t: &str) -> Option<String> {
    st.conditions.iter().find(|c| c.r#type == t).map(|c| c.status.clone())
}

async fn exec(
    c: &Client,
    pod: &str,
    command: &[&str],
    stdin: Option<&[u8]>,
) -> Result<(String, String, i32), navarch_client::Error> {
    use futures::StreamExt;
    use navarch_api::kubelet_proto::{ExecInput, ExecStart};
    let start = ExecStart {
        namespace: "default".into(),
        name: pod.into(),
        command: command.iter().map(|s| s.to_string()).collect(),
        stdin: stdin.is_some(),
        ..Default::default()
    };
    let mut input = vec![ExecInput { start: Some(start), ..Default::default() }];
    if let Some(data) = stdin {
        input.push(ExecInput { stdin: data.to_vec(), ..Default::default() });
        input.push(ExecInput { stdin_closed: true, ..Default::default() });
    }
    let mut out = c.pod_exec(futures::stream::iter(input)).await?;
    let (mut stdout, mut stderr, mut code) = (Vec::new(), Vec::new(), None);
    while let Some(m) = out.next().await {
        let m = m.map_err(navarch_client::Error::from)?;
        stdout.extend(m.stdout);
        stderr.extend(m.stderr);
        if m.exit_code.is_some() {
            code = m.exit_code;
        }
    }
    Ok((
        String::from_utf8_lossy(&stdout).into(),
        String::from_utf8_lossy(&stderr).into(),
        code.expect("exit code"),
    ))
}

async fn logs(
    c: &Client,
    pod: &str,
    container: &str,
    previous: bool,
    tail: Option<i64>,
) -> Result<String, navarch_client::Error> {
    use futures::StreamExt;
    let req = navarch_api::kubelet_proto::LogsRequest {
        namespace: "default".into(),
        name: pod.into(),
        container: container.into(),
        previous,
        tail_lines: tail,
        ..Default::default()
    };
    let mut s = c.pod_logs(req).await?;
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend(chunk?);
    }
    Ok(String::from_utf8_lossy(&out).into())
}

#[tokio::test]
async fn logs_exec_top_and_graceful_deletion_timing() {
    use futures::StreamExt;
    let NodeEnv { env, registry: _registry, ctd, kubelet, c, pods, node } = NodeEnv::start().await;
    // `talker` counts forever; `restarter` exits after each run so it has a previous instance;
    // `stubborn` ignores SIGTERM, `polite` exits on it.
    pods.create(&from_yaml::<Pod>(&format!(
        r#"
metadata: {{name: talker}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  volumes: [{{name: d, emptyDir: {{}}}}]
  containers:
  - name: count
    image: busybox:1.36
    command: [sh, -c, 'i=0; while true; do echo "line $i"; i=$((i+1)); sleep 0.2; done']
  - name: restarter
    image: busybox:1.36
    command: [sh, -c, 'n=$(cat /d/n 2>/dev/null || echo 0); echo "run $n"; echo $((n+1)) > /d/n; sleep 1; exit 1']
    volumeMounts: [{{name: d, mountPath: /d}}]
"#
    )))
    .await
    .unwrap();
    for (name, grace, script) in [
        ("stubborn", 4, "trap '' TERM; while true; do sleep 0.2; done"),
        ("polite", 30, "trap 'exit 0' TERM; while true; do sleep 0.2; done"),
    ] {
        pods.create(&from_yaml::<Pod>(&format!(
            "{{metadata: {{name: {name}}}, spec: {{nodeName: {node}, terminationGracePeriodSeconds: {grace}, containers: [{{name: c, image: busybox:1.36, command: [sh, -c, \"{script}\"]}}]}}}}"
        )))
        .await
        .unwrap();
    }
    // securityContext: user and group, read-only root, capabilities, no privilege escalation.
    pods.create(&from_yaml::<Pod>(&format!(
        r#"
metadata: {{name: secure}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 0
  securityContext: {{runAsUser: 1000, runAsGroup: 3000}}
  volumes: [{{name: tmp, emptyDir: {{}}}}]
  containers:
  - name: c
    image: busybox:1.36
    command: [sleep, "3600"]
    volumeMounts: [{{name: tmp, mountPath: /tmp}}]
    securityContext:
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {{drop: [ALL], add: [NET_BIND_SERVICE]}}
"#
    )))
    .await
    .unwrap();
    for name in ["talker", "stubborn", "polite", "secure"] {
        eventually(kubelet.with_log(&format!("{name} Running")), Duration::from_secs(60), async || {
            let p = pods.get(name).await.ok()?;
            (p.status?.phase == "Running").then_some(())
        })
        .await;
    }

    // Logs: whole, tail, and followed as it grows.
    let text = eventually(kubelet.with_log("a few lines"), Duration::from_secs(20), async || {
        logs(&c, "talker", "count", false, None).await.ok().filter(|t| t.lines().count() >= 5)
    })
    .await;
    assert!(text.starts_with("line 0\nline 1\n"), "{text}");
    let tail = logs(&c, "talker", "count", false, Some(2)).await.unwrap();
    assert_eq!(tail.lines().count(), 2, "{tail}");
    let req = navarch_api::kubelet_proto::LogsRequest {
        namespace: "default".into(),
        name: "talker".into(),
        container: "count".into(),
        follow: true,
        tail_lines: Some(0),
        ..Default::default()
    };
    let mut follow = c.pod_logs(req).await.unwrap();
    let mut seen = String::new();
    while seen.lines().count() < 3 {
        let chunk =
            tokio::time::timeout(Duration::from_secs(5), follow.next()).await.unwrap().unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(follow);
    let first: u32 = seen.lines().next().unwrap().trim_start_matches("line ").parse().unwrap();
    assert!(first >= 5, "followed from the end: {seen}");
    // --previous: the run before the last restart.
    eventually(kubelet.with_log("restarter restarted"), Duration::from_secs(60), async || {
        let p = pods.get("talker").await.ok()?;
        let cs = p.status?.container_statuses.into_iter().find(|s| s.name == "restarter")?;
        (cs.restart_count >= 1).then_some(())
    })
    .await;
    let prev = logs(&c, "talker", "restarter", true, None).await.unwrap();
    let cur = logs(&c, "talker", "restarter", false, None).await.unwrap();
    assert!(prev.starts_with("run "), "{prev:?}");
    assert_ne!(prev, cur);
    // Errors name the problem.
    let e = logs(&c, "talker", "", false, None).await.unwrap_err().to_string();
    assert!(
        e.contains("a container name must be specified for pod talker, choose one of: [count restarter]"),
        "{e}"
    );
    let e = logs(&c, "talker", "nope", false, None).await.unwrap_err().to_string();
    assert!(e.contains("container nope is not valid for pod talker"), "{e}");
    let e = logs(&c, "polite", "", true, None).await.unwrap_err().to_string();
    assert!(e.contains("previous terminated container \"c\" in pod \"polite\" not found"), "{e}");

    // Exec: output streams, exit status, stdin.
    let (out, err, code) =
        exec(&c, "polite", &["sh", "-c", "echo out; echo err >&2; exit 3"], None).await.unwrap();
    assert_eq!((out.as_str(), err.as_str(), code), ("out\n", "err\n", 3));
    let (out, _, code) = exec(&c, "polite", &["cat"], Some(b"hello from stdin\n")).await.unwrap();
    assert_eq!((out.as_str(), code), ("hello from stdin\n", 0));
    let (out, _, _) = exec(&c, "polite", &["hostname"], None).await.unwrap();
    assert_eq!(out, "polite\n");
    let e = exec(&c, "polite", &["no-such-command"], None).await.unwrap_err().to_string();
    assert!(e.contains("no-such-command"), "{e}");

    let (out, _, _) = exec(&c, "secure", &["sh", "-c", "id -u; id -g"], None).await.unwrap();
    assert_eq!(out, "1000\n3000\n");
    let (_, err, code) = exec(&c, "secure", &["touch", "/rootfs-write"], None).await.unwrap();
    assert!(code != 0 && err.contains("Read-only file system"), "{code} {err}");
    let (_, _, code) = exec(&c, "secure", &["touch", "/tmp/ok"], None).await.unwrap();
    assert_eq!(code, 0);
    let (out, _, _) =
        exec(&c, "secure", &["grep", "-E", "CapBnd|NoNewPrivs", "/proc/self/status"], None).await.unwrap();
    assert!(out.contains("CapBnd:\t0000000000000400"), "only NET_BIND_SERVICE (bit 10): {out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");

    // The same through navctl.
    let (code, out, err) = env.navctl(&["logs", "talker", "-c", "count", "--tail", "1"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("line ") && out.lines().count() == 1, "{out}");
    let (code, out, err) = env.navctl(&["logs", "talker"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Defaulted container \"count\" out of: count, restarter"), "{err}");
    assert!(out.starts_with("line 0\n"));
    let (code, out, _) = env.navctl(&["exec", "polite", "--", "echo", "hi"]).await;
    assert_eq!((code, out.as_str()), (0, "hi\n"));
    let (code, _, err) = env.navctl(&["exec", "pod/polite", "--", "sh", "-c", "exit 4"]).await;
    assert_eq!(code, 4);
    assert!(err.contains("command terminated with exit code 4"), "{err}");
    let (code, _, err) = env.navctl(&["logs", "missing"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("pods \"missing\" not found"), "{err}");

    // Usage from cgroups, through the resource metrics API (the api-server scrapes every 2 s here).
    let pod_metrics = navarch_client::ListParams { namespace: "default".into(), ..Default::default() };
    let talker = eventually(kubelet.with_log("talker's metrics"), Duration::from_secs(30), async || {
        let list = c.list("PodMetrics", &pod_metrics).await.ok()?;
        list.items.into_iter().find_map(|o| match o {
            navarch_api::Object::PodMetrics(m) if m.metadata.as_ref()?.name == "talker" => Some(m),
            _ => None,
        })
    })
    .await;
    assert!(
        talker
            .containers
            .iter()
            .any(|c| c.name == "count" && c.usage.get("memory").is_some_and(|m| m.string != "0")),
        "{talker:?}"
    );
    let nodes = c.list("NodeMetrics", &Default::default()).await.unwrap();
    assert!(nodes.items.iter().any(|o| o.meta().name == node), "{:?}", nodes.items);
    let (code, out, err) = env.navctl(&["top", "pods"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("NAME") && out.contains("talker"), "{out}");

    // Graceful deletion: SIGTERM honoured at once; ignored → SIGKILL after the grace period.
    let t = Instant::now();
    pods.delete("polite", &DeleteParams::default()).await.unwrap();
    eventually(kubelet.with_log("polite gone"), Duration::from_secs(30), async || {
        pods.get_opt("polite").await.ok()?.is_none().then_some(())
    })
    .await;
    let polite = t.elapsed();
    let t = Instant::now();
    pods.delete("stubborn", &DeleteParams::default()).await.unwrap();
    eventually(kubelet.with_log("stubborn gone"), Duration::from_secs(30), async || {
        pods.get_opt("stubborn").await.ok()?.is_none().then_some(())
    })
    .await;
    let stubborn = t.elapsed();
    assert!(polite < Duration::from_secs(4), "a pod exiting on SIGTERM took {polite:?}");
    assert!(stubborn >= Duration::from_secs(4), "killed before its 4 s grace period: {stubborn:?}");
    assert!(stubborn < Duration::from_secs(15), "not killed after its grace period: {stubborn:?}");

    for name in ["talker", "secure"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    eventually(kubelet.with_log("all pods gone"), Duration::from_secs(60), async || {
        (pods.list(&Default::default()).await.ok()?.items.is_empty()).then_some(())
    })
    .await;
    assert!(ctd.container_ids().is_empty(), "containers left: {:?}", ctd.container_ids());
    let exec_dirs = kubelet.log_dir().parent().unwrap().join("run/exec");
    let left = std::fs::read_dir(&exec_dirs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "exec FIFOs left in {}", exec_dirs.display());
}

#[tokio::test]
async fn pulls_over_tls_with_a_configured_ca_and_refuses_an_untrusted_one() {
    let env = TestEnv::start().await;
    let registry = Registry::tls_with_test_images();
    let ctd = Containerd::start().await;
    let ca = format!("--registry-ca={}", registry.ca_file().display());
    let kubelet = Kubelet::start_with(&env.api_server, &ctd, &registry, &[ca]).await;
    let c = env.client().await;
    ready_node(&c, &kubelet).await;
    let pods: Api<Pod> = c.api("default");
    let node = kubelet.node_name.clone();
    pods.create(&from_yaml::<Pod>(&format!(
        "{{metadata: {{name: tls}}, spec: {{nodeName: {node}, terminationGracePeriodSeconds: 0, containers: [{{name: c, image: busybox:1.36, command: [sleep, '3600']}}]}}}}"
    )))
    .await
    .unwrap();
    eventually(kubelet.with_log("pod from the TLS registry Running"), Duration::from_secs(60), async || {
        let p = pods.get("tls").await.ok()?;
        (p.status?.phase == "Running").then_some(())
    })
    .await;
    pods.delete("tls", &DeleteParams::default()).await.unwrap();
    drop(kubelet);

    // Without the CA the registry's certificate is refused, and the pod says why.
    let ctd2 = Containerd::start().await;
    let untrusting = Kubelet::start(&env.api_server, &ctd2, &registry).await;
    ready_node(&c, &untrusting).await;
    let node = untrusting.node_name.clone();
    pods.create(&from_yaml::<Pod>(&format!(
        "{{metadata: {{name: untrusted}}, spec: {{nodeName: {node}, terminationGracePeriodSeconds: 0, containers: [{{name: c, image: busybox:1.36}}]}}}}"
    )))
    .await
    .unwrap();
    eventually(
        untrusting.with_log("ErrImagePull or ImagePullBackOff"),
        Duration::from_secs(60),
        async || {
            let p = pods.get("untrusted").await.ok()?;
            let w = p.status?.container_statuses.first()?.state.clone()?.waiting?;
            (w.reason == "ErrImagePull" || w.reason == "ImagePullBackOff").then_some(())
        },
    )
    .await;
    let events: Api<navarch_api::v1::Event> = c.api("default");
    let failed = eventually(untrusting.with_log("Failed event"), Duration::from_secs(30), async || {
        let evs = events.list(&Default::default()).await.ok()?.items;
        evs.into_iter().find(|e| {
            e.reason == "Failed" && e.involved_object.as_ref().is_some_and(|o| o.name == "untrusted")
        })
    })
    .await;
    assert!(failed.message.to_lowercase().contains("certificate"), "{}", failed.message);
    pods.delete("untrusted", &DeleteParams::default()).await.unwrap();
    eventually(untrusting.with_log("pods gone"), Duration::from_secs(60), async || {
        pods.list(&Default::default()).await.ok()?.items.is_empty().then_some(())
    })
    .await;
}

/// Ephemeral containers (added through `pods/ephemeralcontainers`, as `kubectl debug` does): one starts
/// while the pod is still initializing; one whose target is not running yet waits, as Kubernetes says it
/// (`CreateContainerConfigError`, `unable to find target container main`), and starts once it runs; when
/// the pod finishes, those still running are stopped (SIGKILL after the grace period for a `sleep`, which
/// as its PID namespace's first process ignores SIGTERM).
#[tokio::test]
async fn ephemeral_containers_wait_for_their_target_and_end_with_the_pod() {
    use serde_json::json;
    let NodeEnv { env, registry: _registry, ctd: _ctd, kubelet, pods, node, .. } = NodeEnv::start().await;
    pods.create(&from_yaml::<Pod>(&format!(
        "{{metadata: {{name: short}}, spec: {{nodeName: {node}, restartPolicy: Never, terminationGracePeriodSeconds: 2, initContainers: [{{name: init, image: busybox:1.36, command: [sleep, '6']}}], containers: [{{name: main, image: busybox:1.36, command: [sleep, '8']}}]}}}}"
    )))
    .await
    .unwrap();
    let add = async |c: serde_json::Value| {
        let patch = json!({"spec": {"ephemeralContainers": [c]}});
        let path = "/api/v1/namespaces/default/pods/short/ephemeralcontainers";
        let strategic = "application/strategic-merge-patch+json";
        let (code, body) = env.rest().json("PATCH", path, strategic, Some(&patch)).await;
        assert_eq!(code, 200, "{body}");
    };
    add(json!({"name": "watch", "image": "busybox:1.36", "targetContainerName": "main", "command": ["sleep", "3600"]})).await;
    add(json!({"name": "idle", "image": "busybox:1.36", "command": ["sleep", "3600"]})).await;
    let state = async |name: &str| -> Option<(String, navarch_api::v1::ContainerState)> {
        let st = pods.get("short").await.ok()?.status?;
        let s = st.ephemeral_container_statuses.into_iter().find(|s| s.name == name)?;
        Some((st.phase, s.state?))
    };
    let waiting =
        eventually(kubelet.with_log("watch waiting for its target"), Duration::from_secs(30), async || {
            state("watch").await?.1.waiting.filter(|w| w.reason == "CreateContainerConfigError")
        })
        .await;
    assert_eq!(waiting.message, "unable to find target container main");
    let (phase, _) = eventually(kubelet.with_log("idle running"), Duration::from_secs(30), async || {
        state("idle").await.filter(|(_, s)| s.running.is_some())
    })
    .await;
    assert_eq!(phase, "Pending", "idle should run while the pod initializes");
    eventually(kubelet.with_log("watch running beside main"), Duration::from_secs(30), async || {
        state("watch").await?.1.running
    })
    .await;
    // main ends: the pod has succeeded and nothing of it runs any more.
    let (phase, idle) =
        eventually(kubelet.with_log("idle stopped with the pod"), Duration::from_secs(40), async || {
            state("idle").await.and_then(|(phase, s)| Some((phase, s.terminated?)))
        })
        .await;
    assert_eq!((phase.as_str(), idle.exit_code), ("Succeeded", 137), "{idle:?}");
    assert!(state("watch").await.unwrap().1.terminated.is_some());
}
