//! `pods/exec` and `pods/attach` over a WebSocket, in Kubernetes' channel protocols
//! `v5.channel.k8s.io` and `v4.channel.k8s.io` (what kubectl 1.32 and the Python client speak):
//! every binary message starts with a channel byte — 0 stdin, 1 stdout, 2 stderr, 3 the final
//! `Status` (JSON), 4 terminal resizes (`{"Width":W,"Height":H}`) — and v5 adds `[255, n]`, the close
//! of channel `n` (kubectl sends `[255, 0]` at the end of its stdin, which `kubectl cp` relies on).
//!
//! The request is checked and the kubelet's stream opened *before* the `101`: a missing pod or
//! container, a completed pod or one not yet scheduled are answered as ordinary `Status` errors,
//! which kubectl prints as Kubernetes' messages. After the `101` the session is a task of the
//! state's tracker relaying between the socket and the kubelet's Exec/Attach stream.

use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use navarch_api::kubelet_proto::{ExecInput, ExecOutput, ExecStart, TerminalSize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_tungstenite::tungstenite::Message;

use super::path::ResourcePath;
use super::query::Query;
use super::status::StatusError;
use super::websocket::{self, Socket};
use super::{ResponseBody, full};
use crate::error::ApiError;
use crate::kubelet_relay::KubeletRelay;
use crate::state::ApiState;

/// The channel protocols served, most capable first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5: `[CLOSE, channel]` ends a channel.
const CLOSE: u8 = 255;

/// How long the process's output is held after the `101`. client-go (kubectl 1.32) starts reading the
/// socket in one goroutine and creates its streams in another, and drops data that arrives for a stream
/// not yet created ("Unknown stream id 1, discarding message"): output sent right behind the `101`, as a
/// fast command's is here (the kubelet stream opens before the `101`), can be lost. Kubernetes' own
/// path reaches the kubelet only after the upgrade, which gives the client this time.
const OUTPUT_HOLD: std::time::Duration = std::time::Duration::from_millis(50);

/// How much client input may wait for the kubelet.
const INPUT_QUEUE: usize = 16;

/// What the client asked for (`PodExecOptions` / `PodAttachOptions`).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub container: String,
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Options {
    pub fn from_query(q: &Query, attach: bool) -> Result<Options, StatusError> {
        let tty = q.bool("tty");
        let o = Options {
            container: q.str("container"),
            command: if attach {
                Vec::new()
            } else {
                q.all("command").into_iter().map(str::to_string).collect()
            },
            stdin: q.bool("stdin"),
            stdout: q.bool("stdout"),
            // A terminal has one output stream (Kubernetes drops stderr with tty the same way).
            stderr: q.bool("stderr") && !tty,
            tty,
        };
        if !o.stdin && !o.stdout && !o.stderr {
            return Err(StatusError::bad_request("you must specify at least 1 of stdin, stdout, stderr"));
        }
        if !attach && o.command.is_empty() {
            return Err(StatusError::bad_request("you must specify at least 1 command"));
        }
        Ok(o)
    }
}

/// `GET|POST .../pods/<name>/{exec,attach}`: checks, opens the kubelet stream, answers `101`.
pub async fn serve(
    state: Arc<ApiState>,
    path: &ResourcePath,
    headers: &HeaderMap,
    query: &Query,
    upgrade: OnUpgrade,
    attach: bool,
) -> Result<Response<ResponseBody>, StatusError> {
    let not_found_info = Some(path.info);
    let opts = Options::from_query(query, attach)?;
    let start = ExecStart {
        namespace: path.namespace.clone().unwrap_or_default(),
        name: path.name.clone().unwrap_or_default(),
        uid: String::new(),
        container: opts.container.clone(),
        command: opts.command.clone(),
        stdin: opts.stdin,
        tty: opts.tty,
        size: None,
    };
    let key = format!("{}/{}", start.namespace, start.name);
    let verb = if attach { "attach" } else { "exec" };
    let (start, client) = state
        .call(verb, "Pod", &key, state.kubelets.remote_command_target(start, attach))
        .await
        .map_err(|e| StatusError::from_api(e, not_found_info))?;
    // Only now the protocol: kubectl retries a refused WebSocket over SPDY, and that second answer
    // is the error it prints, so both must carry the pod's errors above.
    if !websocket::wants_upgrade(headers, "websocket") {
        if websocket::wants_upgrade(headers, "SPDY/3.1") {
            return Err(StatusError::bad_request(format!(
                "SPDY/3.1 is not supported for exec and attach; upgrade to a WebSocket with one of the subprotocols {}",
                PROTOCOLS.join(", ")
            )));
        }
        return Err(StatusError::bad_request("Upgrade request required"));
    }
    let protocol = websocket::choose_protocol(headers, &PROTOCOLS)?;
    let container = start.container.clone();
    let (input, input_rx) = mpsc::channel(INPUT_QUEUE);
    let output = KubeletRelay::remote_command(client, start, attach, ReceiverStream::new(input_rx)).await;
    let output = match output {
        Ok(o) => Ok(o),
        // The container is not running (yet, or any more): Kubernetes' kubelet answers the upgrade
        // with this plain-text 404, which kubectl prints as "unable to upgrade connection: …".
        Err(ApiError::Relayed(s))
            if matches!(s.code(), tonic::Code::NotFound | tonic::Code::FailedPrecondition) =>
        {
            return Ok(full(
                StatusCode::NOT_FOUND,
                "text/plain",
                format!("container not found ({container:?})"),
            ));
        }
        // The command could not start (not found, not executable): as in Kubernetes the upgrade
        // succeeds and the reason comes back as the session's Status.
        Err(e) => Err(e.to_string()),
    };
    let answer = websocket::accept(headers, protocol)?;
    let session = Session { v5: protocol == PROTOCOLS[0], opts, attach };
    let shutdown = state.shutdown.clone();
    state.tasks.spawn(async move {
        let ws = match websocket::socket(upgrade).await {
            Ok(ws) => ws,
            Err(e) => {
                tracing::debug!(pod = %key, error = %e, "the {verb} upgrade did not complete");
                return;
            }
        };
        let span = tracing::debug_span!("stream", verb, pod = %key, container = %container);
        let _enter = span.enter();
        tokio::select! {
            _ = session.run(ws, output, input) => {}
            _ = shutdown.cancelled() => {}
        }
    });
    Ok(answer)
}

/// One exec or attach session after the upgrade.
struct Session {
    v5: bool,
    opts: Options,
    attach: bool,
}

impl Session {
    async fn run(
        self,
        ws: Socket,
        output: Result<tonic::Streaming<ExecOutput>, String>,
        input: mpsc::Sender<ExecInput>,
    ) {
        let (mut sink, mut incoming) = ws.split();
        // As Kubernetes' server: an empty message on the lowest writable channel says the streams are up.
        let hello = if self.opts.stdout {
            STDOUT
        } else if self.opts.stderr {
            STDERR
        } else {
            ERROR
        };
        if sink.send(websocket::channel_message(hello, &[])).await.is_err() {
            return;
        }
        let status = match output {
            Err(reason) => internal_error(&reason),
            Ok(output) => {
                // Client input and kubelet output flow independently, so a process that is blocked
                // writing never stops its stdin from being delivered (or the other way round).
                let client_input = self.forward_input(&mut incoming, input);
                let relay_output = self.relay_output(&mut sink, output);
                tokio::select! {
                    // The client went away: dropping the kubelet stream ends the process (exec) or
                    // detaches (attach).
                    _ = client_input => return,
                    status = relay_output => match status {
                        Some(s) => s,
                        None => return,
                    },
                }
            }
        };
        let _ = sink.send(websocket::channel_message(ERROR, status.to_string().as_bytes())).await;
        let _ = sink.send(websocket::normal_close()).await;
        // Wait briefly for the client's close answer so the close handshake completes.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            while let Some(Ok(m)) = incoming.next().await {
                if m.is_close() {
                    break;
                }
            }
        })
        .await;
    }

    /// Client messages to the kubelet until the client closes (returns then).
    async fn forward_input(
        &self,
        incoming: &mut futures::stream::SplitStream<Socket>,
        input: mpsc::Sender<ExecInput>,
    ) {
        let mut input = Some(input);
        while let Some(msg) = incoming.next().await {
            let data = match msg {
                Ok(Message::Binary(b)) => b,
                // The Python client sends str input as text messages (channel byte included), which
                // Kubernetes' server reads like binary ones.
                Ok(Message::Text(t)) => Bytes::from(t),
                Ok(Message::Close(_)) | Err(_) => return,
                // Pings are answered by the socket.
                Ok(_) => continue,
            };
            let Some((&channel, payload)) = data.split_first() else { continue };
            let message = match channel {
                STDIN if self.opts.stdin && !payload.is_empty() => {
                    ExecInput { stdin: payload.to_vec(), ..Default::default() }
                }
                RESIZE => match resize(payload) {
                    Some(size) => ExecInput { resize: Some(size), ..Default::default() },
                    None => continue,
                },
                CLOSE if self.v5 && payload.first() == Some(&STDIN) => {
                    ExecInput { stdin_closed: true, ..Default::default() }
                }
                _ => continue,
            };
            // A kubelet that went away ends the output too; until then keep reading for the close.
            if let Some(tx) = &input
                && tx.send(message).await.is_err()
            {
                input = None;
            }
        }
    }

    /// Kubelet output to the client; the session's final Status, or None if the client is gone.
    async fn relay_output(
        &self,
        sink: &mut futures::stream::SplitSink<Socket, Message>,
        mut output: tonic::Streaming<ExecOutput>,
    ) -> Option<Value> {
        tokio::time::sleep(OUTPUT_HOLD).await;
        loop {
            let out = match output.next().await {
                Some(Ok(o)) => o,
                Some(Err(e)) => return Some(internal_error(e.message())),
                None if self.attach => return Some(success()),
                None => return Some(internal_error("the kubelet ended the stream without an exit status")),
            };
            for (channel, data) in [(STDOUT, &out.stdout), (STDERR, &out.stderr)] {
                if !data.is_empty() && sink.send(websocket::channel_message(channel, data)).await.is_err() {
                    return None;
                }
            }
            if let Some(code) = out.exit_code {
                return Some(if self.attach { success() } else { exit_status(code, &self.opts.command) });
            }
        }
    }
}

/// A resize message (`{"Width":W,"Height":H}`); a malformed one is ignored, as Kubernetes does.
fn resize(payload: &[u8]) -> Option<TerminalSize> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Size {
        width: u16,
        height: u16,
    }
    let s: Size = serde_json::from_slice(payload).ok()?;
    Some(TerminalSize { width: s.width.into(), height: s.height.into() })
}

fn success() -> Value {
    json!({"metadata": {}, "status": "Success"})
}

/// The Status of a finished command: success, or Kubernetes' `NonZeroExitCode` failure (kubectl
/// prints "command terminated with exit code N" and exits with N).
pub fn exit_status(code: i32, command: &[String]) -> Value {
    if code == 0 {
        return success();
    }
    if code < 0 {
        return internal_error("the command's exit status is unknown");
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            command.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// Kubernetes' `InternalError` Status for a command that could not run.
fn internal_error(reason: &str) -> Value {
    let message = format!("error executing command in container: {reason}");
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {message}"),
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_follow_kubernetes() {
        let q = Query::parse(Some(
            "command=sh&command=-c&command=exit%203&container=web&stdout=true&stderr=true",
        ));
        let o = Options::from_query(&q, false).unwrap();
        assert_eq!(o.command, ["sh", "-c", "exit 3"]);
        assert!(o.stdout && o.stderr && !o.stdin && !o.tty);
        let tty = Options::from_query(
            &Query::parse(Some("command=sh&stdin=true&stdout=true&stderr=true&tty=true")),
            false,
        )
        .unwrap();
        assert!(!tty.stderr, "a terminal has no separate stderr");
        // The Python client 32 sends capitalised booleans.
        let py = Options::from_query(
            &Query::parse(Some("command=ls&stderr=True&stdin=False&stdout=True&tty=False")),
            false,
        )
        .unwrap();
        assert!(py.stdout && py.stderr && !py.stdin);
        assert_eq!(
            Options::from_query(&Query::parse(Some("command=ls")), false).unwrap_err().message,
            "you must specify at least 1 of stdin, stdout, stderr"
        );
        assert_eq!(
            Options::from_query(&Query::parse(Some("stdout=true")), false).unwrap_err().message,
            "you must specify at least 1 command"
        );
        assert!(
            Options::from_query(&Query::parse(Some("stdout=true&command=ignored")), true)
                .unwrap()
                .command
                .is_empty()
        );
    }

    #[test]
    fn statuses_are_kubernetes() {
        assert_eq!(exit_status(0, &[]), json!({"metadata": {}, "status": "Success"}));
        let s = exit_status(3, &["sh".into(), "-c".into(), "exit 3".into()]);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0], json!({"reason": "ExitCode", "message": "3"}));
        assert_eq!(
            s["message"],
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
        assert_eq!(
            internal_error("boom")["message"],
            "Internal error occurred: error executing command in container: boom"
        );
    }

    #[test]
    fn resize_messages() {
        assert_eq!(resize(br#"{"Width":80,"Height":24}"#), Some(TerminalSize { width: 80, height: 24 }));
        assert_eq!(resize(b"nonsense"), None);
    }
}
