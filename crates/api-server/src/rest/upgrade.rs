//! The pod subresources that switch protocols: `exec` and `attach` (a WebSocket carrying Kubernetes'
//! channel protocol, [`super::remotecommand`]) and `portforward` (SPDY/3.1, tunnelled in a WebSocket
//! or on the raw upgraded connection). They are routed here before the request body is read, since
//! the connection itself is what they take over.

use std::sync::Arc;

use http::{Method, Request, Response};

use super::path::ResourcePath;
use super::query::Query;
use super::status::StatusError;
use super::{ResponseBody, remotecommand};
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
        _ => Err(StatusError::no_such_path()),
    }
}
