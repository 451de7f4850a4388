//! `GET .../pods/<name>/log`: the container's log as `text/plain`, relayed from the kubelet of the
//! pod's node (as navctl's logs are), with Kubernetes' options (`container`, `follow`, `previous`,
//! `tailLines`, `limitBytes`, `timestamps`, `sinceSeconds`, `sinceTime`; checked by the relay); with
//! `follow=true` a chunked response flushed per chunk until the container exits or the client goes
//! away.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::StreamBody;
use hyper::body::Frame;
use navarch_api::kubelet_proto::LogsRequest;
use tokio_stream::StreamExt;

use super::path::ResourcePath;
use super::status::StatusError;
use super::{ResponseBody, RestRequest};
use crate::state::ApiState;

pub async fn serve(
    state: &ApiState,
    path: &ResourcePath,
    req: &RestRequest,
) -> Result<Response<ResponseBody>, StatusError> {
    let q = &req.query;
    let namespace = path.namespace.clone().unwrap_or_default();
    let name = path.name.clone().unwrap_or_default();
    let key = format!("{namespace}/{name}");
    let logs = LogsRequest {
        namespace,
        name,
        uid: String::new(),
        container: q.str("container"),
        follow: q.bool("follow"),
        previous: q.bool("previous"),
        tail_lines: q.int("tailLines")?,
        limit_bytes: q.int("limitBytes")?,
        timestamps: q.bool("timestamps"),
        since_seconds: q.int("sinceSeconds")?,
        since_time: q.str("sinceTime"),
    };
    let stream = state
        .call("logs", "Pod", &key, state.kubelets.logs(logs))
        .await
        .map_err(|e| StatusError::from_api(e, Some(path.info)))?;
    // A relay error after the first byte can only end the stream: the status line is already sent.
    let frames = stream.map_while(|chunk| match chunk {
        Ok(c) => Some(Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(c.data)))),
        Err(e) => {
            tracing::debug!(error = %e, "log stream ended");
            None
        }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(ResponseBody::new(StreamBody::new(frames)))
        .expect("a valid response"))
}
