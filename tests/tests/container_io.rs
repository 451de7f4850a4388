//! Container stdio owned by the kubelet, on real containerd, runc and a registry: stdout and stderr
//! logged apart in Kubernetes' CRI format and read back with timestamps and since; nothing lost
//! while the kubelet is killed and started again; Kubernetes' answers for a container still waiting;
//! and attach through the kubelet's gRPC API (stdin, fan-out to several sessions, stdinOnce,
//! a terminal with resize). Needs root; run by `make test`.

use std::time::Duration;

use futures::{Stream, StreamExt};
use navarch_api::kubelet_proto::{ExecInput, ExecOutput, ExecStart, LogsRequest, TerminalSize};
use navarch_api::v1::Pod;
use navarch_api::{Resource, rfc3339};
use navarch_client::Client;
use navarch_tests::{NodeEnv, eventually};

fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap()
}

async fn running(e: &NodeEnv, name: &str) -> Pod {
    eventually(e.kubelet.with_log(&format!("pod {name} Running")), Duration::from_secs(120), async || {
        let p = e.pods.get_opt(name).await.ok()??;
        (p.status.as_ref()?.phase == "Running").then_some(p)
    })
    .await
}

async fn logs(c: &Client, req: LogsRequest) -> Result<String, navarch_client::Error> {
    let mut s = c.pod_logs(LogsRequest { namespace: "default".into(), ..req }).await?;
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend(chunk?);
    }
    Ok(String::from_utf8_lossy(&out).into())
}

/// The numbers `n` of the lines `<word> n` in `text`, in order; the last line is left out (it may
/// be one the kubelet was writing as it was read).
fn numbers(text: &str, word: &str) -> Vec<u32> {
    let lines: Vec<&str> = text.lines().collect();
    let whole = &lines[..lines.len().saturating_sub(1)];
    whole.iter().filter_map(|l| l.strip_prefix(word)?.trim().parse().ok()).collect()
}

#[tokio::test]
async fn output_is_logged_per_stream_and_survives_a_kubelet_restart() {
    let mut e = NodeEnv::start().await;
    e.pods
        .create(&from_yaml::<Pod>(&format!(
            r#"
metadata: {{name: talker}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 0
  containers:
  - name: both
    image: busybox:1.36
    command: [sh, -c, 'i=0; while true; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.1; done']
"#,
            node = e.node
        )))
        .await
        .unwrap();
    e.pods
        .create(&from_yaml::<Pod>(&format!(
            "{{metadata: {{name: stuck}}, spec: {{nodeName: {}, containers: [{{name: nopull, image: 'busybox:no-such-tag'}}]}}}}",
            e.node
        )))
        .await
        .unwrap();
    let pod = running(&e, "talker").await;
    let uid = pod.meta().uid.clone();
    let req = LogsRequest { name: "talker".into(), container: "both".into(), ..Default::default() };
    let text = eventually(e.kubelet.with_log("some output"), Duration::from_secs(30), async || {
        logs(&e.c, req.clone()).await.ok().filter(|t| numbers(t, "err").len() >= 10)
    })
    .await;
    assert!(text.starts_with("out 0\nerr 0\n") || text.starts_with("err 0\nout 0\n"), "{text}");

    // On disk: Kubernetes' CRI format, each stream tagged.
    let file = e.kubelet.log_dir().join(format!("default_talker_{uid}/both/0.log"));
    let disk = std::fs::read_to_string(&file).unwrap();
    for line in disk.lines().take(10) {
        let mut f = line.splitn(4, ' ');
        let (time, stream, tag, content) =
            (f.next().unwrap(), f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        assert!(rfc3339::parse(time).is_ok() && time.ends_with('Z'), "{line}");
        assert_eq!(tag, "F", "{line}");
        let want = if content.starts_with("out ") { "stdout" } else { "stderr" };
        assert!(content.starts_with("out ") || content.starts_with("err "), "{line}");
        assert_eq!(stream, want, "{line}");
    }

    // Timestamps: each line prefixed with its time, nine digits, as the kubelet writes them.
    let stamped =
        logs(&e.c, LogsRequest { timestamps: true, tail_lines: Some(4), ..req.clone() }).await.unwrap();
    let lines: Vec<&str> = stamped.lines().collect();
    assert_eq!(lines.len(), 4, "{stamped}");
    for l in &lines {
        let (time, rest) = l.split_once(' ').unwrap();
        assert_eq!(time.len(), "2006-01-02T15:04:05.000000000Z".len(), "{l}");
        assert!(
            rfc3339::parse(time).is_ok() && (rest.starts_with("out ") || rest.starts_with("err ")),
            "{l}"
        );
    }
    // sinceTime: nothing before it; through the REST API too (the kubelet gets the options as they are).
    let (last_time, _) = lines[3].split_once(' ').unwrap();
    let since = logs(&e.c, LogsRequest { since_time: last_time.into(), timestamps: true, ..req.clone() })
        .await
        .unwrap();
    let first = since.lines().next().unwrap().split_once(' ').unwrap().0;
    assert!(rfc3339::parse(first).unwrap() >= rfc3339::parse(last_time).unwrap(), "{since}");
    assert!(since.contains(lines[3]) && !since.contains(lines[0]), "{since}");
    let path = format!(
        "/api/v1/namespaces/default/pods/talker/log?container=both&timestamps=true&sinceTime={}",
        last_time.replace(':', "%3A")
    );
    let rest = e.env.rest();
    let r = rest.get_with_headers(&path, &[]).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.starts_with(&last_time[..19]), "{}", r.body);
    let recent = logs(&e.c, LogsRequest { since_seconds: Some(1), ..req.clone() }).await.unwrap();
    assert!(!recent.is_empty() && recent.lines().count() < 40, "{recent}");

    // Options Kubernetes refuses, with its messages.
    let err = logs(&e.c, LogsRequest { since_seconds: Some(5), since_time: last_time.into(), ..req.clone() })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("at most one of `sinceTime` or `sinceSeconds` may be specified"), "{err}");
    let r = rest
        .get_with_headers("/api/v1/namespaces/default/pods/talker/log?container=both&sinceSeconds=0", &[])
        .unwrap();
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains(
            r#"PodLogOptions \"talker\" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0"#
        ),
        "{}",
        r.body
    );
    // A container that has not started: a 400 saying what it waits for.
    let r = eventually(e.kubelet.with_log("nopull waiting"), Duration::from_secs(60), async || {
        let r = rest.get_with_headers("/api/v1/namespaces/default/pods/stuck/log", &[])?;
        r.body.contains("is waiting to start").then_some(r)
    })
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains(r#""reason":"BadRequest""#), "{}", r.body);
    assert!(
        r.body.contains(r#"container \"nopull\" in pod \"stuck\" is waiting to start: image can't be pulled"#)
            || r.body.contains(
                r#"container \"nopull\" in pod \"stuck\" is waiting to start: trying and failing to pull image"#
            ),
        "{}",
        r.body
    );

    // navctl's flags.
    let (code, out, err) =
        e.env.navctl(&["logs", "talker", "-c", "both", "--timestamps", "--tail", "2"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().all(|l| rfc3339::parse(l.split_once(' ').unwrap().0).is_ok()), "{out}");
    let (code, out, err) = e.env.navctl(&["logs", "talker", "-c", "both", "--since=1s"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(!out.is_empty() && out.lines().count() < 40, "{out}");
    let (code, _, err) =
        e.env.navctl(&["logs", "talker", "-c", "both", "--since=1s", "--since-time", last_time]).await;
    assert_eq!(code, 1);
    assert!(err.contains("at most one of `sinceTime` or `sinceSeconds` may be specified"), "{err}");

    // The kubelet killed while the container keeps writing: its output waits in the pipe, and the
    // next kubelet logs it, so no line is missing.
    let before = numbers(&logs(&e.c, req.clone()).await.unwrap(), "out").last().copied().unwrap();
    e.kubelet.kill9();
    tokio::time::sleep(Duration::from_secs(3)).await;
    e.kubelet.restart();
    let text = eventually(e.kubelet.with_log("logging resumed"), Duration::from_secs(60), async || {
        let t = logs(&e.c, req.clone()).await.ok()?;
        (numbers(&t, "out").last().copied()? > before + 40).then_some(t)
    })
    .await;
    for word in ["out", "err"] {
        let seen = numbers(&text, word);
        let want: Vec<u32> = (0..seen.len() as u32).collect();
        assert_eq!(seen, want, "{word} lines missing or out of order after the restart");
    }
    // Still two streams on disk, every line an entry (but the one being written, maybe).
    let disk = std::fs::read_to_string(&file).unwrap();
    let entries: Vec<&str> = disk.lines().collect();
    let whole = &entries[..entries.len() - 1];
    assert!(whole.iter().all(|l| l.contains(" stdout F out ") || l.contains(" stderr F err ")), "{disk}");

    // Deleted: the containers' FIFOs go with them.
    for name in ["talker", "stuck"] {
        e.pods.delete(name, &Default::default()).await.unwrap();
    }
    eventually(e.kubelet.with_log("pods gone"), Duration::from_secs(60), async || {
        e.pods.list(&Default::default()).await.ok()?.items.is_empty().then_some(())
    })
    .await;
    // (A pod deleted without grace is gone from the API at once; the kubelet's sweep follows.)
    let fifos = e.kubelet.log_dir().parent().unwrap().join("run/containers");
    eventually(e.kubelet.with_log("containers and FIFOs removed"), Duration::from_secs(30), async || {
        let left = std::fs::read_dir(&fifos).map(|d| d.count()).unwrap_or(0);
        (left == 0 && e.ctd.container_ids().is_empty()).then_some(())
    })
    .await;
}

type Input = futures::channel::mpsc::UnboundedSender<ExecInput>;

/// An attach session on the kubelet: its input, and its output (or the kubelet's refusal).
async fn attach(
    e: &NodeEnv,
    p: &Pod,
    container: &str,
    stdin: bool,
    size: Option<TerminalSize>,
) -> Result<(Input, impl Stream<Item = Result<ExecOutput, String>> + Unpin), String> {
    let mut client = e.kubelet_client().await;
    let m = p.meta();
    let start = ExecStart {
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        container: container.into(),
        stdin,
        size,
        ..Default::default()
    };
    let (tx, rx) = futures::channel::mpsc::unbounded();
    tx.unbounded_send(ExecInput { start: Some(start), ..Default::default() }).unwrap();
    let out = client.attach(rx).await.map_err(|s| format!("{:?}: {}", s.code(), s.message()))?.into_inner();
    Ok((tx, out.map(|m| m.map_err(|s| s.message().to_string()))))
}

fn stdin(data: &str) -> ExecInput {
    ExecInput { stdin: data.as_bytes().to_vec(), ..Default::default() }
}

/// Reads output until its stdout contains `want` (within 20 s); all stdout read.
async fn read_until(
    out: &mut (impl Stream<Item = Result<ExecOutput, String>> + Unpin),
    want: &str,
) -> String {
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(m) = out.next().await {
            seen.push_str(&String::from_utf8_lossy(&m.unwrap().stdout));
            if seen.contains(want) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "{want:?} not in the attached output: {seen:?}");
    seen
}

/// Reads output to its end (within 20 s): (stdout, the exit code it ended with).
async fn read_to_end(
    out: &mut (impl Stream<Item = Result<ExecOutput, String>> + Unpin),
) -> (String, Option<i32>) {
    let (mut seen, mut code) = (String::new(), None);
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(m) = out.next().await {
            let m = m.unwrap();
            seen.push_str(&String::from_utf8_lossy(&m.stdout));
            code = code.or(m.exit_code);
        }
    })
    .await
    .expect("the attach session ended");
    (seen, code)
}

#[tokio::test]
async fn attach_joins_a_containers_stdin_and_output() {
    let e = NodeEnv::start().await;
    let script = r#"while read l; do echo "got $l"; done; echo "stdin ended"; exit 3"#;
    e.pods
        .create(&from_yaml::<Pod>(&format!(
            r#"
metadata: {{name: attached}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 0
  restartPolicy: Never
  containers:
  - {{name: shared, image: "busybox:1.36", command: [sh, -c, '{script}'], stdin: true}}
  - {{name: once, image: "busybox:1.36", command: [sh, -c, '{script}'], stdin: true, stdinOnce: true}}
  - {{name: term, image: "busybox:1.36", command: [sh], stdin: true, tty: true}}
  - {{name: deaf, image: "busybox:1.36", command: [sleep, "3600"]}}
"#,
            node = e.node
        )))
        .await
        .unwrap();
    let pod = running(&e, "attached").await;

    // Two sessions on one container: what one types, both see.
    let (typist, mut out1) = attach(&e, &pod, "shared", true, None).await.unwrap();
    let (_watcher, mut out2) = attach(&e, &pod, "shared", false, None).await.unwrap();
    typist.unbounded_send(stdin("hello\n")).unwrap();
    read_until(&mut out1, "got hello").await;
    read_until(&mut out2, "got hello").await;
    // The typist ends its stdin: without stdinOnce its session detaches (no exit code) and the
    // container's stdin stays open for the next one.
    typist.unbounded_send(ExecInput { stdin_closed: true, ..Default::default() }).unwrap();
    assert_eq!(read_to_end(&mut out1).await.1, None);
    let (again, mut out3) = attach(&e, &pod, "shared", true, None).await.unwrap();
    again.unbounded_send(stdin("again\n")).unwrap();
    read_until(&mut out3, "got again").await;
    read_until(&mut out2, "got again").await;
    drop(again);

    // stdinOnce: ending the session's stdin closes the container's; it exits, the session gets
    // its exit code.
    let (typist, mut out) = attach(&e, &pod, "once", true, None).await.unwrap();
    typist.unbounded_send(stdin("only\n")).unwrap();
    read_until(&mut out, "got only").await;
    typist.unbounded_send(ExecInput { stdin_closed: true, ..Default::default() }).unwrap();
    let (rest, code) = read_to_end(&mut out).await;
    assert!(rest.contains("stdin ended"), "{rest:?}");
    assert_eq!(code, Some(3));
    let logged =
        logs(&e.c, LogsRequest { name: "attached".into(), container: "once".into(), ..Default::default() })
            .await
            .unwrap();
    assert_eq!(logged, "got only\nstdin ended\n");

    // A terminal: the shell's prompt and echo come as stdout; resizes reach it.
    let size = Some(TerminalSize { width: 100, height: 40 });
    let (keys, mut screen) = attach(&e, &pod, "term", true, size).await.unwrap();
    keys.unbounded_send(stdin("echo $((6*7))\n")).unwrap();
    read_until(&mut screen, "42").await;
    keys.unbounded_send(stdin("stty size\n")).unwrap();
    read_until(&mut screen, "40 100").await;
    keys.unbounded_send(ExecInput {
        resize: Some(TerminalSize { width: 90, height: 30 }),
        ..Default::default()
    })
    .unwrap();
    keys.unbounded_send(stdin("stty size\n")).unwrap();
    read_until(&mut screen, "30 90").await;
    drop(keys);

    // Refusals: stdin on a container without it, a container that is not running.
    let err = attach(&e, &pod, "deaf", true, None).await.err().unwrap();
    assert!(err.starts_with("FailedPrecondition: "), "{err}");
    assert!(
        err.contains(r#"stdin: container "deaf" in pod "default/attached" does not have stdin enabled"#),
        "{err}"
    );
    // Without stdin it may attach (to no output).
    let _detached = attach(&e, &pod, "deaf", false, None).await.unwrap();
    let err = attach(&e, &pod, "once", false, None).await.err().unwrap();
    assert!(err.starts_with("FailedPrecondition: ") && err.contains("is not running"), "{err}");
}
