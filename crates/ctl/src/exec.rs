//! `navctl exec`: runs a command in a container through the api-server (relayed to the pod's
//! kubelet, which uses containerd's exec). With `-i` standard input is passed on; with `-t` (and a
//! terminal on standard input) the local terminal is put in raw mode and its size follows the
//! window. navctl exits with the command's exit status.

use std::io::Write;

use futures::StreamExt;
use navarch_api::kubelet_proto::{ExecInput, ExecStart, TerminalSize};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::cli::ExecArgs;
use crate::context::{Context, Outcome};
use crate::logs::{choose_container, get_pod, pod_name};
use crate::terminal::{self, RawMode};

fn terminal_size() -> Option<TerminalSize> {
    terminal::size().map(|(width, height)| TerminalSize { width: width.into(), height: height.into() })
}

fn write_all(out: &mut impl Write, data: &[u8]) {
    let _ = out.write_all(data).and_then(|_| out.flush());
}

pub async fn run(ctx: &Context, a: &ExecArgs) -> anyhow::Result<Outcome> {
    let name = pod_name(&a.pod)?;
    let pod = get_pod(ctx, name).await?;
    let container = choose_container(&pod, a.container.as_deref());
    let mut tty = a.tty;
    if tty && !(a.stdin && terminal::stdin_is_terminal()) {
        eprintln!("Unable to use a TTY - input is not a terminal or the right kind of file");
        tty = false;
    }
    let start = ExecStart {
        namespace: ctx.namespace().to_string(),
        name: name.to_string(),
        container,
        command: a.command.clone(),
        stdin: a.stdin,
        tty,
        size: if tty { terminal_size() } else { None },
        ..Default::default()
    };
    let (tx, mut rx) = mpsc::channel::<ExecInput>(16);
    tx.send(ExecInput { start: Some(start), ..Default::default() }).await?;
    let input = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let client = ctx.client().await?;
    let mut output = client.pod_exec(input).await.map_err(|e| crate::errors::general(e, ctx.server()))?;
    let raw = if tty { RawMode::enter() } else { None };
    let mut feeders = tokio::task::JoinSet::new();
    if a.stdin {
        let tx = tx.clone();
        feeders.spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 8192];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(ExecInput { stdin_closed: true, ..Default::default() }).await;
                        return;
                    }
                    Ok(n) => {
                        if tx
                            .send(ExecInput { stdin: buf[..n].to_vec(), ..Default::default() })
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
    }
    if tty {
        let tx = tx.clone();
        feeders.spawn(async move {
            let Ok(mut winch) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
            else {
                return;
            };
            while winch.recv().await.is_some() {
                if tx.send(ExecInput { resize: terminal_size(), ..Default::default() }).await.is_err() {
                    return;
                }
            }
        });
    }
    // The input stays open (for stdin and resizes) until the command ends.
    let _keep_input = tx;
    let mut exit = None;
    let result = loop {
        match output.next().await {
            None => break Ok(()),
            Some(Err(s)) => break Err(crate::errors::general(s.into(), ctx.server())),
            Some(Ok(o)) => {
                if !o.stdout.is_empty() {
                    write_all(&mut std::io::stdout().lock(), &o.stdout);
                }
                if !o.stderr.is_empty() {
                    write_all(&mut std::io::stderr().lock(), &o.stderr);
                }
                if let Some(code) = o.exit_code {
                    exit = Some(code);
                }
            }
        }
    };
    feeders.abort_all();
    drop(raw);
    result?;
    match exit {
        Some(0) => Ok(Outcome::Success),
        Some(code) => {
            eprintln!("command terminated with exit code {code}");
            Ok(Outcome::Exit(code.clamp(1, 255) as u8))
        }
        None => anyhow::bail!("the exec session ended without an exit status"),
    }
}
