//! Watch over HTTP: a chunked response of newline-delimited JSON events
//! (`{"type":"ADDED","object":{...}}`), each object a one-row Table when the client asked for Tables
//! (`kubectl get -w`). Ends after `timeoutSeconds` (default 30–60 min, like Kubernetes), with an
//! `ERROR` event carrying a 410 `Status` when the client must relist, or when the server shuts down.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::StreamBody;
use hyper::body::Frame;
use navarch_api::{KindInfo, Object};
use serde_json::{Value, json};

use super::encode::{IncludeObject, ListMeta, object_value};
use super::media::{self, Output};
use super::path::ResourcePath;
use super::status::StatusError;
use super::{ResponseBody, RestRequest, table};
use crate::error::ApiError;
use crate::state::ApiState;
use crate::watch_stream::{WatchItem, WatchParams};

/// Kubernetes' default watch length is a random time between its min request timeout (30 min) and twice it.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Encodes watch items for one client.
struct EventEncoder {
    info: &'static KindInfo,
    output: Output,
    include: IncludeObject,
    /// Whether the next Table event is the first (the only one with column definitions).
    first: bool,
}

impl EventEncoder {
    fn object(&mut self, obj: &Object) -> Value {
        if self.output != Output::Table {
            return object_value(self.info, obj);
        }
        let first = std::mem::replace(&mut self.first, false);
        let meta = ListMeta { resource_version: obj.meta().resource_version.clone(), ..Default::default() };
        table::table(self.info, std::slice::from_ref(obj), &meta, self.include, SystemTime::now(), first)
    }

    /// One line of the stream, or `None` and the stream ends after it.
    fn encode(&mut self, item: WatchItem) -> (Bytes, bool) {
        let (event, last) = match item {
            WatchItem::Event(e) => {
                (json!({"type": e.event_type.as_str(), "object": self.object(&e.object)}), false)
            }
            WatchItem::Bookmark { revision } => {
                let object = json!({
                    "kind": self.info.kind,
                    "apiVersion": self.info.api_version,
                    "metadata": {"resourceVersion": revision.to_string(), "creationTimestamp": null},
                });
                (json!({"type": "BOOKMARK", "object": object}), false)
            }
            WatchItem::End(e) => {
                let status = StatusError::from_api(e, Some(self.info));
                let object: Value = serde_json::from_slice(&status.to_json()).unwrap_or_default();
                (json!({"type": "ERROR", "object": object}), true)
            }
        };
        let mut line = serde_json::to_vec(&event).expect("events serialize");
        line.push(b'\n');
        (Bytes::from(line), last)
    }
}

pub async fn serve(
    state: &ApiState,
    path: &ResourcePath,
    req: &RestRequest,
    output: Output,
) -> Result<Response<ResponseBody>, StatusError> {
    let q = &req.query;
    let params = WatchParams {
        kind: path.info.kind.to_string(),
        namespace: path.namespace.clone().unwrap_or_default(),
        label_selector: q.str("labelSelector"),
        field_selector: q.str("fieldSelector"),
        resource_version: q.str("resourceVersion"),
        allow_bookmarks: q.bool("allowWatchBookmarks"),
    };
    let timeout = match q.int("timeoutSeconds")? {
        Some(s) if s > 0 => Duration::from_secs(s as u64),
        _ => DEFAULT_TIMEOUT.mul_f64(1.0 + rand::random::<f64>()),
    };
    let start = std::time::Instant::now();
    let result = state.watch(&params).await;
    state.observe("watch", path.info.kind, start, &result);
    let rx = match result {
        Ok(rx) => rx,
        // A resourceVersion too old to watch from: like Kubernetes, a 200 whose one event is an ERROR
        // carrying the 410 (clients then relist).
        Err(e @ ApiError::Expired(_)) => {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let _ = tx.try_send(WatchItem::End(e));
            rx
        }
        Err(e) => return Err(StatusError::from_api(e, Some(path.info))),
    };
    let include = IncludeObject::from_query(q);
    let encoder = EventEncoder { info: path.info, output, include, first: true };
    let deadline = tokio::time::Instant::now() + timeout;
    let frames = futures::stream::unfold((rx, encoder, false), move |(mut rx, mut enc, ended)| async move {
        if ended {
            return None;
        }
        let item = tokio::select! {
            item = rx.recv() => item?,
            _ = tokio::time::sleep_until(deadline) => return None,
        };
        let (line, last) = enc.encode(item);
        Some((Ok::<_, std::convert::Infallible>(Frame::data(line)), (rx, enc, last)))
    });
    let content_type = if output == Output::Table { media::TABLE } else { media::JSON };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(ResponseBody::new(StreamBody::new(frames)))
        .expect("a valid response"))
}
