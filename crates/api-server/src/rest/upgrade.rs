//! The pod subresources that switch protocols: `exec` and `attach` (a WebSocket carrying Kubernetes'
//! channel protocol, [`super::remotecommand`]) and `portforward` (SPDY/3.1, tunnelled in a WebSocket
//! or on the raw upgraded connection; or, for the Python client, Kubernetes' older WebSocket channel
//! protocol, [`super::portforward_channels`]). They are routed here before the request body is read, since
//! the connection itself is what they take over.

use std::sync::Arc;

use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::path::ResourcePath;
use super::query::Query;
use super::status::StatusError;
use super::{ResponseBody, portforward, portforward_channels, remotecommand, websocket};
use crate::state::ApiState;

/// The subresource of `r` served by this module, if it is one.
pub fn streaming_subresource(r: &ResourcePath) -> Option<&'static str> {
    if r.info.kind != "Pod" || r.name.is_none() || r.namespace.is_none() {
        return None;
    }
    match r.subresource.as_deref() {
        Some("exec") => Some("exec"),
        Some("attach") => Some("attach"),
        Some("portforward") => Some("portforward"),
        _ => None,
    }
}

/// Serves a request for one of [`streaming_subresource`]'s subresources.
pub async fn serve<B>(
    state: Arc<ApiState>,
    path: ResourcePath,
    mut req: Request<B>,
) -> Result<Response<ResponseBody>, StatusError> {
    if !matches!(*req.method(), Method::GET | Method::POST) {
        return Err(StatusError::method_not_allowed(req.method()));
    }
    let subresource = streaming_subresource(&path).ok_or_else(StatusError::no_such_path)?;
    let query = Query::parse(req.uri().query());
    let upgrade = hyper::upgrade::on(&mut req);
    let headers = req.headers();
    match subresource {
        "exec" | "attach" => {
            remotecommand::serve(state, &path, headers, &query, upgrade, subresource == "attach").await
        }
        _ => port_forward(state, &path, headers, &query, upgrade).await,
    }
}

/// The WebSocket subprotocol kubectl 1.32 tunnels port-forward's SPDY/3.1 session in.
const PORT_FORWARD_WEBSOCKET: &str = "SPDY/3.1+portforward.k8s.io";
/// The stream protocol of a plain SPDY/3.1 port-forward upgrade.
const PORT_FORWARD_SPDY: &str = "portforward.k8s.io";
const STREAM_PROTOCOL_VERSION: &str = "x-stream-protocol-version";

/// `pods/portforward`: the pod is checked, then the connection switches to a SPDY/3.1 session, in a
/// WebSocket (kubectl 1.32's first choice) or on the raw connection (its fallback).
async fn port_forward(
    state: Arc<ApiState>,
    path: &ResourcePath,
    headers: &HeaderMap,
    query: &Query,
    upgrade: OnUpgrade,
) -> Result<Response<ResponseBody>, StatusError> {
    let (namespace, name) = (path.namespace.as_deref().unwrap_or(""), path.name.as_deref().unwrap_or(""));
    let pod = portforward::check(&state, namespace, name)
        .await
        .map_err(|e| StatusError::from_api(e, Some(path.info)))?;
    let key = format!("{namespace}/{name}");
    let (tasks, shutdown) = (state.tasks.clone(), state.shutdown.clone());
    if websocket::wants_upgrade(headers, "websocket") {
        let protocol =
            websocket::choose_protocol(headers, &[PORT_FORWARD_WEBSOCKET, portforward_channels::PROTOCOL])?;
        // The channel protocol names its ports in the query: checked before the 101.
        let channel_ports = if protocol == portforward_channels::PROTOCOL {
            Some(portforward_channels::ports(query)?)
        } else {
            None
        };
        let answer = websocket::accept(headers, protocol)?;
        tasks.clone().spawn(async move {
            let ws = match websocket::socket(upgrade).await {
                Ok(ws) => ws,
                Err(e) => {
                    tracing::debug!(pod = %key, error = %e, "the port-forward upgrade did not complete");
                    return;
                }
            };
            match channel_ports {
                Some(ports) => {
                    tokio::select! {
                        _ = portforward_channels::serve(state, pod, ws, ports) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                None => {
                    let io = websocket::byte_stream(ws, &tasks, shutdown);
                    portforward::serve(state, pod, io).await;
                }
            }
        });
        return Ok(answer);
    }
    if !websocket::wants_upgrade(headers, "SPDY/3.1") {
        return Err(StatusError::bad_request("Upgrade request required"));
    }
    // As Kubernetes' httpstream handshake: a client that names protocols must name ours.
    let offered: Vec<&str> = headers
        .get_all(STREAM_PROTOCOL_VERSION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if !offered.is_empty() && !offered.contains(&PORT_FORWARD_SPDY) {
        return Err(StatusError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports [\"{PORT_FORWARD_SPDY}\"]"
            ),
        ));
    }
    tasks.spawn(async move {
        match upgrade.await {
            Ok(upgraded) => portforward::serve(state, pod, TokioIo::new(upgraded)).await,
            Err(e) => tracing::debug!(pod = %key, error = %e, "the port-forward upgrade did not complete"),
        }
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header(STREAM_PROTOCOL_VERSION, PORT_FORWARD_SPDY)
        .body(ResponseBody::default())
        .expect("a valid response"))
}
