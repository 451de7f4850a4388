//! The gRPC front door (proto/navarch/apiserver/v1): decodes requests, calls the shared [`ApiState`]
//! (registry, watch caches, kubelet relay), and maps errors through [`ApiError`]'s one conversion to
//! `Status`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};
use navarch_api::managed_fields::UpdateWriter;
use navarch_api::proto::api_server_server::ApiServer;
use navarch_api::proto::{self, ApiResource, DiscoveryResponse};
use navarch_api::{KINDS, Object, kubelet_proto};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::registry::{DeleteOptions, FieldManager, ListOptions, ephemeral, kind_of};
use crate::state::ApiState;
use crate::watch_stream::{WatchItem, WatchParams};

/// The gRPC front door over the shared [`ApiState`].
pub struct Service(pub Arc<ApiState>);

fn decode_object(o: Option<proto::Object>) -> Result<Object, ApiError> {
    let o = o.ok_or_else(|| ApiError::BadRequest("object: Required value".into()))?;
    kind_of(&o.kind)?;
    Object::from_proto(&o).map_err(|e| ApiError::BadRequest(format!("object: {e}")))
}

/// The field manager of a gRPC write: the product of its `user-agent` (navarch's clients send their binary's
/// name, `controller-manager/0.1.0 tonic/0.14`), as Kubernetes names a REST client without `fieldManager`.
fn manager<T>(req: &Request<T>) -> String {
    let ua = req.metadata().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("");
    navarch_api::managed_fields::manager_from_user_agent(ua)
}

impl Service {
    async fn call<T>(
        &self,
        verb: &'static str,
        kind: &str,
        key: &str,
        f: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<Response<T>, Status> {
        self.0.call(verb, kind, key, f).await.map(Response::new).map_err(Status::from)
    }

    /// Update, UpdateStatus and UpdateEphemeralContainers: the object written through `subresource` (`""`,
    /// `status` or `ephemeralcontainers`, which decides what of it is taken).
    async fn replace(
        &self,
        req: Request<proto::UpdateRequest>,
        verb: &'static str,
        subresource: &'static str,
    ) -> Result<Response<proto::Object>, Status> {
        let manager = manager(&req);
        let req = req.into_inner();
        let obj = decode_object(req.object).map_err(Status::from)?;
        let (kind, key) = (obj.kind(), obj.key());
        self.call(verb, kind, &key, async {
            let fm = FieldManager::Update(UpdateWriter { manager: &manager, subresource, reset: false });
            Ok(self.0.registry.update(obj, subresource == "status", req.dry_run, fm).await?.to_proto())
        })
        .await
    }
}

fn proto_item(kind: &str, item: WatchItem) -> Result<proto::WatchEvent, Status> {
    match item {
        WatchItem::Event(e) => Ok(proto::WatchEvent {
            r#type: e.event_type.as_str().into(),
            object: Some(proto::Object { kind: kind.to_string(), raw: e.raw.clone() }),
            resource_version: e.revision.to_string(),
        }),
        WatchItem::Bookmark { revision } => Ok(proto::WatchEvent {
            r#type: "BOOKMARK".into(),
            object: None,
            resource_version: revision.to_string(),
        }),
        WatchItem::End(e) => Err(Status::from(e)),
    }
}

type WatchResponseStream = Pin<Box<dyn Stream<Item = Result<proto::WatchEvent, Status>> + Send>>;

#[tonic::async_trait]
impl ApiServer for Service {
    async fn create(&self, req: Request<proto::CreateRequest>) -> Result<Response<proto::Object>, Status> {
        let manager = manager(&req);
        let req = req.into_inner();
        let obj = decode_object(req.object).map_err(Status::from)?;
        let (kind, key) = (obj.kind(), obj.key());
        self.call("create", kind, &key, async {
            let fm = FieldManager::update(&manager);
            Ok(self.0.registry.create(obj, req.dry_run, fm).await?.to_proto())
        })
        .await
    }

    async fn get(&self, req: Request<proto::GetRequest>) -> Result<Response<proto::Object>, Status> {
        let r = req.into_inner();
        let key = format!("{}/{}", r.namespace, r.name);
        self.call("get", &r.kind, &key, async {
            Ok(self.0.registry.get(&r.kind, &r.namespace, &r.name).await?.to_proto())
        })
        .await
    }

    async fn list(&self, req: Request<proto::ListRequest>) -> Result<Response<proto::ObjectList>, Status> {
        let r = req.into_inner();
        let opts = ListOptions {
            namespace: r.namespace.clone(),
            label_selector: r.label_selector,
            field_selector: r.field_selector,
            limit: r.limit,
            continue_token: r.r#continue,
        };
        self.call("list", &r.kind, &r.namespace, async {
            let l = self.0.registry.list(&r.kind, &opts).await?;
            Ok(proto::ObjectList {
                kind: r.kind.clone(),
                resource_version: l.resource_version.to_string(),
                r#continue: l.continue_token,
                items: l.items.iter().map(Object::encode).collect(),
                remaining_item_count: l.remaining,
            })
        })
        .await
    }

    async fn update(&self, req: Request<proto::UpdateRequest>) -> Result<Response<proto::Object>, Status> {
        self.replace(req, "update", "").await
    }

    async fn update_status(
        &self,
        req: Request<proto::UpdateRequest>,
    ) -> Result<Response<proto::Object>, Status> {
        self.replace(req, "update_status", "status").await
    }

    async fn update_ephemeral_containers(
        &self,
        req: Request<proto::UpdateRequest>,
    ) -> Result<Response<proto::Object>, Status> {
        self.replace(req, "update_ephemeralcontainers", ephemeral::SUBRESOURCE).await
    }

    async fn delete(
        &self,
        req: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::DeleteResponse>, Status> {
        let r = req.into_inner();
        let opts = DeleteOptions {
            grace_period_seconds: r.grace_period_seconds,
            propagation_policy: r.propagation_policy,
            precondition_uid: r.precondition_uid,
            precondition_resource_version: r.precondition_resource_version,
            dry_run: r.dry_run,
        };
        let key = format!("{}/{}", r.namespace, r.name);
        self.call("delete", &r.kind, &key, async {
            let (obj, pending) = self.0.registry.delete(&r.kind, &r.namespace, &r.name, &opts).await?;
            Ok(proto::DeleteResponse { object: Some(obj.to_proto()), pending })
        })
        .await
    }

    async fn bind(&self, req: Request<proto::BindRequest>) -> Result<Response<proto::Object>, Status> {
        let r = req.into_inner();
        let key = format!("{}/{}", r.namespace, r.name);
        self.call("bind", "Pod", &key, async {
            Ok(self.0.registry.bind(&r.namespace, &r.name, &r.uid, &r.node_name).await?.to_proto())
        })
        .await
    }

    async fn discovery(
        &self,
        _req: Request<proto::DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        let verbs = |status: bool| {
            let mut v: Vec<String> = ["create", "get", "list", "update", "delete", "watch"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            if status {
                v.push("update_status".into());
            }
            v
        };
        let resources = KINDS
            .iter()
            .map(|k| ApiResource {
                kind: k.kind.into(),
                api_version: k.api_version.into(),
                plural: k.plural.into(),
                short_names: k.short_names.iter().map(|s| s.to_string()).collect(),
                namespaced: k.namespaced,
                verbs: verbs(k.has_status),
            })
            .collect();
        Ok(Response::new(DiscoveryResponse { server_version: env!("CARGO_PKG_VERSION").into(), resources }))
    }

    type WatchStream = WatchResponseStream;
    type PodLogsStream = tonic::Streaming<kubelet_proto::LogChunk>;
    type PodExecStream = tonic::Streaming<kubelet_proto::ExecOutput>;

    async fn pod_logs(
        &self,
        req: Request<kubelet_proto::LogsRequest>,
    ) -> Result<Response<Self::PodLogsStream>, Status> {
        let r = req.into_inner();
        let key = format!("{}/{}", r.namespace, r.name);
        self.call("logs", "Pod", &key, self.0.kubelets.logs(r)).await
    }

    async fn pod_exec(
        &self,
        req: Request<tonic::Streaming<kubelet_proto::ExecInput>>,
    ) -> Result<Response<Self::PodExecStream>, Status> {
        let mut input = req.into_inner();
        let first = input
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("start: Required value (the first message)"))?;
        let key = first.start.as_ref().map(|s| format!("{}/{}", s.namespace, s.name)).unwrap_or_default();
        self.call("exec", "Pod", &key, self.0.kubelets.exec(first, input)).await
    }

    async fn top(&self, req: Request<proto::TopRequest>) -> Result<Response<proto::TopResponse>, Status> {
        let r = req.into_inner();
        self.call("top", "Node", &r.node_name, async {
            let (nodes, errors) = self.0.kubelets.top(&r.node_name).await?;
            Ok(proto::TopResponse { nodes, errors })
        })
        .await
    }

    async fn watch(&self, req: Request<proto::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let start = Instant::now();
        let r = req.into_inner();
        let params = WatchParams {
            kind: r.kind.clone(),
            namespace: r.namespace,
            label_selector: r.label_selector,
            field_selector: r.field_selector,
            resource_version: r.resource_version,
            allow_bookmarks: r.allow_bookmarks,
        };
        let result = self.0.watch(&params).await;
        self.0.observe("watch", &r.kind, start, &result);
        let rx = result.map_err(Status::from)?;
        let kind = kind_of(&r.kind).map_err(Status::from)?.kind;
        let stream = ReceiverStream::new(rx).map(move |item| proto_item(kind, item));
        Ok(Response::new(Box::pin(stream)))
    }
}
