//! Attach sessions (the kubelet's Attach rpc): joining a running container's own stdio, as
//! `kubectl attach` does. A session gets the container's live output from the moment it attaches
//! (stdout and stderr apart, or the terminal's output as stdout: whether there is a terminal is the
//! container's `tty`, not the request's, as in Kubernetes), writes to its stdin when the container
//! has `stdin: true`, and resizes its terminal.
//!
//! It ends with the container's exit code when the container exits, and without one when the client
//! goes away, or ends its stdin on a container without `stdinOnce` (containerd's CRI plugin then
//! detaches the session too); the container's stdin stays open for later sessions. With
//! `stdinOnce`, the first session that used stdin closes it when its input ends or it goes away.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use navarch_api::kubelet_proto::{ExecInput, ExecOutput, TerminalSize};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc};
use tonic::Status;

use super::{Attempt, ContainerIo, Output};
use crate::containerd::Containerd;
use crate::pods::LABEL_EXIT_CODE;

/// How long output still in flight after the exit may take to arrive.
const DRAIN: Duration = Duration::from_secs(1);

/// The running attempt to attach to, and what the client asked for.
#[derive(Debug, Clone)]
pub struct AttachTarget {
    pub id: String,
    /// `namespace/name`, for messages.
    pub pod: String,
    pub container: String,
    pub stdin: bool,
    pub size: Option<TerminalSize>,
}

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(
        "container {container:?} in pod {pod:?} cannot be attached to: its output is not read by the kubelet (it was started by an older one); it can be once it restarts"
    )]
    NotAttachable { pod: String, container: String },
    #[error(
        "stdin: container {container:?} in pod {pod:?} does not have stdin enabled (its spec has no stdin: true)"
    )]
    NoStdin { pod: String, container: String },
    #[error(
        "stdin: the stdin of container {container:?} in pod {pod:?} is closed (stdinOnce: its first attach ended)"
    )]
    StdinClosed { pod: String, container: String },
}

/// How a session ended.
enum End {
    Exited(i32),
    Detached,
}

impl ContainerIo {
    /// Starts an attach session on a running attempt; `input` is the client's messages after its
    /// first (stdin, resizes, end of stdin). The output ends with an exit code when the container
    /// exits, without one when the session detaches.
    pub async fn attach<S>(
        &self,
        ctd: &Containerd,
        t: AttachTarget,
        input: S,
    ) -> Result<mpsc::Receiver<Result<ExecOutput, Status>>, AttachError>
    where
        S: Stream<Item = Result<ExecInput, Status>> + Send + Unpin + 'static,
    {
        let (pod, container) = (t.pod.clone(), t.container.clone());
        let att = self
            .attempt(&t.id)
            .ok_or_else(|| AttachError::NotAttachable { pod: pod.clone(), container: container.clone() })?;
        if t.stdin && !att.spec.stdin {
            return Err(AttachError::NoStdin { pod, container });
        }
        if t.stdin && !att.stdin_open().await {
            return Err(AttachError::StdinClosed { pod, container });
        }
        if att.spec.tty
            && let Some(size) = &t.size
            && size.width > 0
        {
            let _ = ctd.resize_pty(&t.id, "", size.width, size.height).await;
        }
        // Subscribed before answering: output from the moment of attaching.
        let output = att.subscribe();
        let (tx, rx) = mpsc::channel(16);
        let span = tracing::info_span!("attach", pod = %t.pod, container = %t.container, id = %t.id);
        let session = Session { ctd: ctd.clone(), att, tx, shutdown: self.0.shutdown.clone() };
        tracing::info!(parent: &span, stdin = t.stdin, tty = session.att.spec.tty, "attach");
        self.0.tasks.spawn(tracing::Instrument::instrument(session.run(t.stdin, output, input), span));
        Ok(rx)
    }
}

struct Session {
    ctd: Containerd,
    att: Arc<Attempt>,
    tx: mpsc::Sender<Result<ExecOutput, Status>>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Session {
    async fn run<S>(self, stdin: bool, mut output: broadcast::Receiver<Output>, mut input: S)
    where
        S: Stream<Item = Result<ExecInput, Status>> + Send + Unpin,
    {
        let waiter = exit_code(self.ctd.clone(), self.att.id.clone());
        tokio::pin!(waiter);
        // Whether this session still feeds the container's stdin.
        let mut stdin = stdin;
        let (mut input_open, mut output_open) = (true, true);
        let end = loop {
            tokio::select! {
                code = &mut waiter => break End::Exited(code),
                _ = self.shutdown.cancelled() => break End::Detached,
                _ = self.tx.closed() => break End::Detached,
                out = output.recv(), if output_open => match out {
                    Ok(o) => if !self.forward(o).await { break End::Detached },
                    Err(RecvError::Lagged(n)) => tracing::debug!(missed = n, "the session fell behind; output skipped"),
                    Err(RecvError::Closed) => output_open = false,
                },
                msg = input.next(), if input_open => match msg {
                    Some(Ok(m)) => {
                        if stdin && !m.stdin.is_empty() && !self.att.write_stdin(&m.stdin).await {
                            stdin = false;
                        }
                        if let Some(size) = m.resize
                            && self.att.spec.tty
                        {
                            let _ = self.ctd.resize_pty(&self.att.id, "", size.width, size.height).await;
                        }
                        if m.stdin_closed && stdin {
                            stdin = false;
                            if !self.end_stdin().await {
                                break End::Detached;
                            }
                        }
                    }
                    None => {
                        input_open = false;
                        if stdin {
                            stdin = false;
                            if !self.end_stdin().await {
                                break End::Detached;
                            }
                        }
                    }
                    Some(Err(_)) => break End::Detached,
                },
            }
        };
        match end {
            End::Exited(code) => {
                let _ = tokio::time::timeout(DRAIN, self.drain(&mut output)).await;
                tracing::info!(exit_code = code, "attached container exited");
                let _ = self.tx.send(Ok(ExecOutput { exit_code: Some(code), ..Default::default() })).await;
            }
            End::Detached => {
                tracing::debug!("attach session detached");
                if stdin && self.att.spec.stdin_once {
                    self.att.close_stdin(&self.ctd).await;
                }
            }
        }
    }

    /// The client's stdin ended: with `stdinOnce` the container's stdin is closed and the session
    /// goes on (true); otherwise the session detaches (false).
    async fn end_stdin(&self) -> bool {
        if self.att.spec.stdin_once {
            self.att.close_stdin(&self.ctd).await;
            true
        } else {
            false
        }
    }

    /// Sends one chunk; false once the client is gone.
    async fn forward(&self, o: Output) -> bool {
        let m = match o {
            Output::Stdout(b) => ExecOutput { stdout: b.to_vec(), ..Default::default() },
            Output::Stderr(b) => ExecOutput { stderr: b.to_vec(), ..Default::default() },
        };
        self.tx.send(Ok(m)).await.is_ok()
    }

    /// After the exit: the output up to its end.
    async fn drain(&self, output: &mut broadcast::Receiver<Output>) {
        loop {
            tokio::select! {
                biased;
                out = output.recv() => match out {
                    Ok(o) => if !self.forward(o).await { return },
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
                _ = self.att.done().cancelled() => {
                    // Everything read before the end is queued already.
                    loop {
                        match output.try_recv() {
                            Ok(o) => if !self.forward(o).await { return },
                            Err(TryRecvError::Lagged(_)) => {}
                            Err(_) => return,
                        }
                    }
                }
            }
        }
    }
}

/// The exit status of an attempt's task, once it exits. A task already gone (its exit recorded by
/// the pod sync) answers from the container's labels.
async fn exit_code(ctd: Containerd, id: String) -> i32 {
    loop {
        match ctd.wait(&id, "").await {
            Ok(code) => return code as i32,
            Err(e) if e.is_not_found() => {
                return match ctd.get_container(&id).await {
                    Ok(Some(rec)) => {
                        rec.labels.get(LABEL_EXIT_CODE).and_then(|c| c.parse().ok()).unwrap_or(-1)
                    }
                    _ => -1,
                };
            }
            Err(e) => {
                tracing::debug!(error = %e, "waiting for an attached container; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
