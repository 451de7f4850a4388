//! The real kubectl (1.32) looking inside running pods through the api-server's streams, on one real
//! node (containerd, runc, CNI, the registry's test images): `exec` (exit codes, stdin, stderr,
//! Kubernetes' errors), `cp` both ways, `attach`, and `debug` (an ephemeral container in the pod).

use std::time::Duration;

use navarch_api::v1::Pod;
use navarch_tests::{Kubectl, NodeEnv, eventually, ready_node};

fn pod(yaml: &str) -> Pod {
    serde_yaml::from_str(yaml).unwrap()
}

/// Waits until the pod reports phase `phase`.
async fn phase(e: &NodeEnv, name: &str, phase: &str) {
    let what = format!("pod {name} {phase}");
    eventually(e.kubelet.with_log(&what), Duration::from_secs(90), async || {
        let p = e.pods.get_opt(name).await.ok()??;
        (p.status?.phase == phase).then_some(())
    })
    .await;
}

async fn start() -> (NodeEnv, Kubectl) {
    let e = NodeEnv::start().await;
    let k = Kubectl::new(&e.env.api_server);
    let node = &e.node;
    e.pods
        .create(&pod(&format!(
            "{{metadata: {{name: web}}, spec: {{nodeName: {node}, terminationGracePeriodSeconds: 0, containers: [{{name: web, image: busybox:1.36, command: [sleep, '3600']}}]}}}}"
        )))
        .await
        .unwrap();
    phase(&e, "web", "Running").await;
    (e, k)
}

#[tokio::test]
async fn exec_exit_codes_stdin_stderr_and_errors() {
    let (e, k) = start().await;
    assert_eq!(k.ok(&["exec", "web", "--", "echo", "hello"]).await, "hello\n");
    let out = k.run(&["exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\ncommand terminated with exit code 3\n");
    // stdin, ended by kubectl's v5 close of channel 0.
    let out =
        k.run_stdin(&["exec", "-i", "web", "--", "sh", "-c", "cat; echo done"], Some("one\ntwo\n")).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, "one\ntwo\ndone\n"), "{out:?}");
    // The container by name, and the pod by resource/name.
    assert_eq!(k.ok(&["exec", "pod/web", "-c", "web", "--", "hostname"]).await, "web\n");

    // Errors, as Kubernetes words them.
    let out = k.fails(&["exec", "web", "-c", "nope", "--", "true"]).await;
    assert_eq!(out.stderr.trim(), "Error from server (BadRequest): container nope is not valid for pod web");
    let out = k.fails(&["exec", "missing", "--", "true"]).await;
    assert_eq!(out.stderr.trim(), "Error from server (NotFound): pods \"missing\" not found");
    let out = k.fails(&["exec", "web", "--", "no-such-command"]).await;
    assert!(
        out.stderr.starts_with("error: Internal error occurred: error executing command in container:")
            && out.stderr.contains("no-such-command"),
        "{out:?}"
    );
    // A pod no node has taken yet (no scheduler runs here).
    e.pods
        .create(&pod("{metadata: {name: pending}, spec: {containers: [{name: c, image: busybox:1.36}]}}"))
        .await
        .unwrap();
    let out = k.fails(&["exec", "pending", "--", "true"]).await;
    assert_eq!(
        out.stderr.trim(),
        "Error from server (BadRequest): pod pending does not have a host assigned"
    );
    // A finished pod: kubectl itself refuses, from the pod's phase.
    let node = &e.node;
    e.pods
        .create(&pod(&format!(
            "{{metadata: {{name: done}}, spec: {{nodeName: {node}, restartPolicy: Never, containers: [{{name: c, image: busybox:1.36, command: ['true']}}]}}}}"
        )))
        .await
        .unwrap();
    phase(&e, "done", "Succeeded").await;
    let out = k.fails(&["exec", "done", "--", "true"]).await;
    assert_eq!(
        out.stderr.trim(),
        "error: cannot exec into a container in a completed pod; current phase is Succeeded"
    );
    // The same through the API directly (no client-side check): Kubernetes' 400.
    let (code, body) =
        e.env.rest().get("/api/v1/namespaces/default/pods/done/exec?command=true&stdout=true").unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("cannot exec into a container in a completed pod; current phase is Succeeded"),
        "{body}"
    );
}

#[tokio::test]
async fn cp_five_mebibytes_in_and_out() {
    let (_e, k) = start().await;
    let data: Vec<u8> = (0..5u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let local = k.write("big.bin", "");
    std::fs::write(&local, &data).unwrap();
    let local = local.display().to_string();
    k.ok(&["cp", &local, "web:/tmp/big.bin"]).await;
    let sum = k.ok(&["exec", "web", "--", "sha256sum", "/tmp/big.bin"]).await;
    let host_sum = std::process::Command::new("sha256sum").arg(&local).output().unwrap();
    let want = String::from_utf8(host_sum.stdout).unwrap().split_whitespace().next().unwrap().to_string();
    assert_eq!(sum.split_whitespace().next(), Some(want.as_str()), "{sum}");
    let back = format!("{local}.back");
    k.ok(&["cp", "web:/tmp/big.bin", &back]).await;
    assert!(std::fs::read(&back).unwrap() == data, "the copy back differs");
}

/// A tmux server of its own, killed on drop, running one kubectl ([`Tmux::kubectl`]).
struct Tmux {
    socket: String,
    /// Where kubectl's exit status is written.
    status: std::path::PathBuf,
}

impl Tmux {
    /// `kubectl <args>` (with `k`'s kubeconfig and cache) in a `width`×`height` terminal of a tmux server
    /// named after `name` and this process; the pane stays 30 s after kubectl exits.
    fn kubectl(k: &Kubectl, name: &str, args: &str, (width, height): (u16, u16)) -> Tmux {
        let kubeconfig = k.kubeconfig();
        let home = kubeconfig.parent().unwrap().display().to_string();
        let status = kubeconfig.with_file_name(format!("exit-status-{name}"));
        let shell = format!(
            "KUBECONFIG={} HOME={home} kubectl --cache-dir={home}/cache {args}; echo $? > {}; sleep 30",
            kubeconfig.display(),
            status.display()
        );
        let tmux = Tmux { socket: format!("navarch-{name}-{}", std::process::id()), status };
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            &shell,
        ]);
        tmux
    }

    /// kubectl's exit status, once it has exited.
    async fn exit_status(&self) -> String {
        eventually("kubectl to exit", Duration::from_secs(20), async || {
            std::fs::read_to_string(&self.status).ok().filter(|s| !s.is_empty())
        })
        .await
        .trim()
        .to_string()
    }

    fn run(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn screen_shows(&self, what: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.run(&["capture-pane", "-p", "-t", "t"]);
            if screen.contains(what) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "waiting for {what:?}; the screen:\n{screen}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

#[tokio::test]
async fn exec_it_gives_a_terminal_that_resizes_and_exits() {
    let (_e, k) = start().await;
    let tmux = Tmux::kubectl(&k, "exec", "exec -it web -- sh", (100, 30));
    tmux.screen_shows("/ #").await;
    tmux.run(&["send-keys", "-t", "t", "echo answer $((6*7))", "Enter"]);
    tmux.screen_shows("answer 42").await;
    // The terminal's size reaches the process, and follows a resize.
    tmux.run(&["send-keys", "-t", "t", "stty size", "Enter"]);
    tmux.screen_shows("30 100").await;
    tmux.run(&["resize-window", "-t", "t", "-x", "120", "-y", "40"]);
    tmux.run(&["send-keys", "-t", "t", "clear; stty size", "Enter"]);
    tmux.screen_shows("40 120").await;
    tmux.run(&["send-keys", "-t", "t", "exit 5", "Enter"]);
    assert_eq!(tmux.exit_status().await, "5");
}

#[tokio::test]
async fn logs_like_kubectl() {
    let (e, k) = start().await;
    let node = &e.node;
    e.pods
        .create(&pod(&format!(
            r#"
metadata: {{name: talk, labels: {{app: talk}}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 0
  volumes: [{{name: d, emptyDir: {{}}}}]
  containers:
  - name: a
    image: busybox:1.36
    command: [sh, -c, 'i=0; while true; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.2; done']
  - name: b
    image: busybox:1.36
    command: [sh, -c, 'n=$(cat /d/n 2>/dev/null || echo 0); echo "run $n"; echo $((n+1)) > /d/n; sleep 1; exit 1']
    volumeMounts: [{{name: d, mountPath: /d}}]
"#
        )))
        .await
        .unwrap();
    e.pods
        .create(&pod(&format!(
            "{{metadata: {{name: short}}, spec: {{nodeName: {node}, restartPolicy: Never, containers: [{{name: c, image: busybox:1.36, command: [sh, -c, 'sleep 3; for i in 1 2 3; do echo tick $i; sleep 1; done']}}]}}}}"
        )))
        .await
        .unwrap();
    phase(&e, "talk", "Running").await;

    // -f sees lines as they are written and ends when the container exits.
    let t = std::time::Instant::now();
    let out = k.run(&["logs", "-f", "short"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, "tick 1\ntick 2\ntick 3\n"), "{out:?}");
    assert!(t.elapsed() >= Duration::from_secs(2), "kubectl logs -f returned before the container ended");

    eventually("a few lines of talk/a", Duration::from_secs(20), async || {
        (k.ok(&["logs", "talk", "-c", "a"]).await.lines().count() >= 10).then_some(())
    })
    .await;
    // Several containers and none named: kubectl takes the first and says so.
    let out = k.run(&["logs", "talk"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("Defaulted container \"a\" out of: a, b"), "{out:?}");
    // Both streams are in the log.
    assert!(out.stdout.contains("out 3\n") && out.stdout.contains("err 3\n"), "{out:?}");
    let tail = k.ok(&["logs", "talk", "-c", "a", "--tail=2"]).await;
    assert_eq!(tail.lines().count(), 2, "{tail}");
    // Timestamps: RFC 3339 with nanoseconds, then the line.
    let stamped = k.ok(&["logs", "talk", "-c", "a", "--tail=4", "--timestamps"]).await;
    for line in stamped.lines() {
        let (ts, rest) = line.split_once(' ').unwrap();
        assert!(ts.len() >= 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{line}");
        assert!(rest.starts_with("out ") || rest.starts_with("err "), "{line}");
    }
    // --since: only the recent lines.
    let all = k.ok(&["logs", "talk", "-c", "a"]).await.lines().count();
    let recent = k.ok(&["logs", "talk", "-c", "a", "--since=1s"]).await.lines().count();
    assert!(recent > 0 && recent < all, "since=1s gave {recent} of {all} lines");
    // The previous instance of a container that restarted.
    eventually("talk/b restarted", Duration::from_secs(60), async || {
        let p = e.pods.get_opt("talk").await.ok()??;
        let b = p.status?.container_statuses.into_iter().find(|c| c.name == "b")?;
        (b.restart_count >= 1).then_some(())
    })
    .await;
    let prev = k.ok(&["logs", "talk", "-c", "b", "--previous"]).await;
    assert!(prev.starts_with("run "), "{prev}");
    // By label, prefixed, and through a Deployment's selector.
    let labelled = k.ok(&["logs", "-l", "app=talk", "-c", "a", "--tail=1", "--prefix"]).await;
    assert!(labelled.starts_with("[pod/talk/a] "), "{labelled}");
    let out = k
        .apply(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: talk}\nspec: {replicas: 0, selector: {matchLabels: {app: talk}}, template: {metadata: {labels: {app: talk}}, spec: {containers: [{name: a, image: 'busybox:1.36'}]}}}\n",
            &[],
        )
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let via = k.ok(&["logs", "deploy/talk", "-c", "a", "--tail=1"]).await;
    assert!(via.starts_with("out ") || via.starts_with("err "), "{via}");

    // Errors: a container still waiting (its image does not exist), a pod that does not exist.
    e.pods
        .create(&pod(&format!(
            "{{metadata: {{name: waiting}}, spec: {{nodeName: {node}, containers: [{{name: c, image: 'no-such-image:1'}}]}}}}"
        )))
        .await
        .unwrap();
    eventually("the waiting pod's status", Duration::from_secs(30), async || {
        let p = e.pods.get_opt("waiting").await.ok()??;
        (!p.status?.container_statuses.is_empty()).then_some(())
    })
    .await;
    let out = k.fails(&["logs", "waiting"]).await;
    assert!(
        out.stderr.starts_with(
            "Error from server (BadRequest): container \"c\" in pod \"waiting\" is waiting to start:"
        ),
        "{out:?}"
    );
    let out = k.fails(&["logs", "nope"]).await;
    // kubectl's own wording: it reads the pod first.
    assert_eq!(
        out.stderr.trim(),
        "error: error from server (NotFound): pods \"nope\" not found in namespace \"default\""
    );
}

#[tokio::test]
async fn attach_joins_the_containers_own_stdio() {
    let (e, k) = start().await;
    let node = &e.node;
    e.pods
        .create(&pod(&format!(
            r#"
metadata: {{name: echoer}}
spec:
  nodeName: {node}
  restartPolicy: Never
  containers:
  - name: c
    image: busybox:1.36
    stdin: true
    stdinOnce: true
    command: [sh, -c, 'while read l; do echo "got $l"; done; echo bye']
"#
        )))
        .await
        .unwrap();
    e.pods
        .create(&pod(&format!(
            "{{metadata: {{name: term}}, spec: {{nodeName: {node}, terminationGracePeriodSeconds: 0, containers: [{{name: c, image: busybox:1.36, stdin: true, tty: true, command: [sh]}}]}}}}"
        )))
        .await
        .unwrap();
    phase(&e, "echoer", "Running").await;
    phase(&e, "term", "Running").await;
    // stdinOnce: the end of kubectl's stdin is the end of the container's, which then exits.
    let out = k.run_stdin(&["attach", "-i", "echoer"], Some("one\ntwo\n")).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("got one\ngot two\nbye\n"), "{out:?}");
    phase(&e, "echoer", "Succeeded").await;

    // A terminal: kubectl attach -it in tmux.
    let tmux = Tmux::kubectl(&k, "attach", "attach -it term", (100, 30));
    tmux.screen_shows("If you don't see a command prompt, try pressing enter.").await;
    tmux.run(&["send-keys", "-t", "t", "", "Enter"]);
    tmux.screen_shows("/ #").await;
    tmux.run(&["send-keys", "-t", "t", "echo attached $((6*7))", "Enter"]);
    tmux.screen_shows("attached 42").await;
}

/// `kubectl debug`: an ephemeral container added to the running pod, sharing its network, and with
/// `--target` the target's processes; run once, its exit recorded; neither rerun nor lost by a kubelet
/// restart; removed with the pod.
#[tokio::test]
async fn debug_reaches_the_targets_processes() {
    let (mut e, k) = start().await;
    let jsonpath =
        async |path: &str| k.ok(&["get", "pod", "web", "-o", &format!("jsonpath={{{path}}}")]).await;
    // A field of an ephemeral container's status (empty while it has none).
    let status_of = async |name: &str, field: &str| {
        jsonpath(&format!(".status.ephemeralContainerStatuses[?(@.name==\"{name}\")].{field}")).await
    };
    let tmux = Tmux::kubectl(&k, "debug", "debug -it web --image=busybox:1.36 --target=web", (120, 40));
    tmux.screen_shows("If you don't see a command prompt, try pressing enter.").await;
    tmux.run(&["send-keys", "-t", "t", "", "Enter"]);
    tmux.screen_shows("/ #").await;
    // The target's processes: its `sleep 3600` is in the debugging container's PID namespace.
    tmux.run(&["send-keys", "-t", "t", "ps", "Enter"]);
    tmux.screen_shows("sleep 3600").await;
    tmux.run(&["send-keys", "-t", "t", "exit", "Enter"]);
    assert_eq!(tmux.exit_status().await, "0");
    let name = jsonpath(".spec.ephemeralContainers[0].name").await;
    assert!(name.starts_with("debugger-"), "{name}");
    assert_eq!(jsonpath(".spec.ephemeralContainers[0].targetContainerName").await, "web");
    eventually(e.kubelet.with_log("the debugger's exit recorded"), Duration::from_secs(30), async || {
        (status_of(&name, "state.terminated.reason").await == "Completed").then_some(())
    })
    .await;
    assert_eq!(status_of(&name, "state.terminated.exitCode").await, "0");

    // Without -i: it runs its command; it is in the pod's network (its hostname and IP).
    let command = "hostname; ip -o -4 addr show eth0; sleep 3600";
    let out = k.run(&["debug", "web", "--image=busybox:1.36", "-c", "net", "--", "sh", "-c", command]).await;
    assert_eq!(out.code, 0, "{out:?}");
    eventually(e.kubelet.with_log("the net container running"), Duration::from_secs(30), async || {
        (!status_of("net", "state.running.startedAt").await.is_empty()).then_some(())
    })
    .await;
    let ip = jsonpath(".status.podIP").await;
    let logs = eventually("the net container's output", Duration::from_secs(20), async || {
        let logs = k.ok(&["logs", "web", "-c", "net"]).await;
        logs.contains(&format!("inet {ip}/")).then_some(logs)
    })
    .await;
    assert!(logs.starts_with("web\n"), "{logs}");
    // Neither counts in readiness, and the app container was left alone.
    assert_eq!(status_of("net", "ready").await, "false");
    assert_eq!(jsonpath(".status.conditions[?(@.type==\"Ready\")].status").await, "True");
    assert_eq!(jsonpath(".status.containerStatuses[0].restartCount").await, "0");

    // A kubelet restart: the finished one is not run again, the running one is the same container.
    let ids = jsonpath(".status.ephemeralContainerStatuses[*].containerID").await;
    e.kubelet.restart();
    ready_node(&e.c, &e.kubelet).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = jsonpath(".status.ephemeralContainerStatuses[*].containerID").await;
    assert_eq!(after, ids, "{}", e.kubelet.log());
    assert_eq!(status_of(&name, "state.terminated.reason").await, "Completed");
    assert!(!status_of("net", "state.running.startedAt").await.is_empty(), "{}", e.kubelet.log());
    assert_eq!(jsonpath(".status.ephemeralContainerStatuses[*].restartCount").await, "0 0");
    assert!(k.ok(&["logs", "web", "-c", "net"]).await.contains(&ip));

    // Removed with the pod.
    k.ok(&["delete", "pod", "web", "--wait=false"]).await;
    eventually(e.kubelet.with_log("the pod's containers removed"), Duration::from_secs(60), async || {
        e.ctd.container_ids().is_empty().then_some(())
    })
    .await;
}
