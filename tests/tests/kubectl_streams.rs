//! The real kubectl (1.32) looking inside running pods through the api-server's streams, on one real
//! node (containerd, runc, CNI, the registry's test images): `exec` (exit codes, stdin, stderr,
//! Kubernetes' errors), `cp` both ways, and `attach`.

use std::time::Duration;

use navarch_api::v1::Pod;
use navarch_tests::{Kubectl, NodeEnv, eventually};

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
    let k = Kubectl::new(e.env.api_server_addr());
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
    let (code, body) = navarch_tests::http_get(
        e.env.api_server_addr(),
        "/api/v1/namespaces/default/pods/done/exec?command=true&stdout=true",
    )
    .unwrap();
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

/// A tmux server of its own, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
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
    let kubeconfig = k.kubeconfig();
    let home = kubeconfig.parent().unwrap().display().to_string();
    let status = format!("{home}/exit-status");
    let shell = format!(
        "KUBECONFIG={} HOME={home} kubectl --cache-dir={home}/cache exec -it web -- sh; echo $? > {status}; sleep 30",
        kubeconfig.display()
    );
    let tmux = Tmux { socket: format!("navarch-test-{}", std::process::id()) };
    tmux.run(&["new-session", "-d", "-s", "t", "-x", "100", "-y", "30", &shell]);
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
    eventually("kubectl exec -it to exit", Duration::from_secs(20), async || {
        std::fs::read_to_string(&status).ok().filter(|s| !s.is_empty())
    })
    .await;
    assert_eq!(std::fs::read_to_string(&status).unwrap().trim(), "5");
}
