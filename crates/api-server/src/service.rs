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
use navarch_api::v1::{
    LocalSubjectAccessReview, SelfSubjectAccessReview, SelfSubjectReview, SelfSubjectRulesReview,
    SubjectAccessReview, TokenRequest, TokenReview,
};
use navarch_api::{KINDS, Object, kubelet_proto};
use prost::Message;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::audit::{OutcomeRecorder, RequestOutcome};
use crate::authz::Attributes;
use crate::error::ApiError;
use crate::registry::binding::BindTarget;
use crate::registry::{DeleteOptions, FieldManager, ListOptions, approval, ephemeral, kind_of};
use crate::rest::reviews::{self, access, identity, token};
use crate::state::ApiState;
use crate::user_info::UserInfo;
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

/// Who made a gRPC request (the authentication layer put it there).
fn user<T>(req: &Request<T>) -> UserInfo {
    req.extensions().get::<UserInfo>().cloned().unwrap_or_else(UserInfo::anonymous)
}

/// What a gRPC request asks to do, as the REST request doing the same is authorized.
pub struct GrpcAction<'a> {
    pub verb: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub subresource: &'a str,
    pub field_selector: &'a str,
}

impl Service {
    /// Authorizes a request (403 `PermissionDenied` with Kubernetes' message when refused).
    fn authorize(&self, extensions: &tonic::Extensions, action: GrpcAction<'_>) -> Result<(), Status> {
        let user = extensions.get::<UserInfo>().cloned().unwrap_or_else(UserInfo::anonymous);
        let info = kind_of(action.kind).map_err(Status::from)?;
        let (group, version) = info.api_version.rsplit_once('/').unwrap_or(("", info.api_version));
        let namespace = if info.namespaced { action.namespace } else { "" };
        let mut name = action.name.to_string();
        if name.is_empty()
            && matches!(action.verb, "list" | "watch")
            && let Some(n) = action.field_selector.strip_prefix("metadata.name=").filter(|n| !n.contains(','))
        {
            name = n.trim_start_matches('=').to_string();
        }
        let attributes = Attributes::resource(user, action.verb, group, info.plural)
            .namespace(namespace)
            .name(name)
            .subresource(action.subresource)
            .api_version(version)
            .field_selector(action.field_selector);
        self.check(extensions, &attributes)
    }

    async fn call<T>(
        &self,
        verb: &'static str,
        kind: &str,
        key: &str,
        f: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<Response<T>, Status> {
        self.0.call(verb, kind, key, f).await.map(Response::new).map_err(Status::from)
    }

    /// Update, UpdateStatus, UpdateEphemeralContainers and UpdateApproval: the object written through
    /// `subresource` (`""`, `status`, `ephemeralcontainers` or `approval`, which decides what of it is
    /// taken and how the request is authorized).
    async fn replace(
        &self,
        req: Request<proto::UpdateRequest>,
        verb: &'static str,
        subresource: &'static str,
    ) -> Result<Response<proto::Object>, Status> {
        let manager = manager(&req);
        let extensions = req.extensions().clone();
        let req = req.into_inner();
        let obj = decode_object(req.object).map_err(Status::from)?;
        let (kind, key) = (obj.kind(), obj.key());
        let meta = obj.meta();
        let action = GrpcAction {
            verb: "update",
            kind,
            namespace: &meta.namespace,
            name: &meta.name,
            subresource,
            field_selector: "",
        };
        self.authorize(&extensions, action)?;
        self.call(verb, kind, &key, async {
            let fm = FieldManager::Update(UpdateWriter { manager: &manager, subresource, reset: false });
            Ok(self.0.registry.update(obj, subresource == "status", req.dry_run, fm).await?.to_proto())
        })
        .await
    }
}

/// The options of a Delete or Evict call.
fn delete_options(r: &proto::DeleteRequest) -> DeleteOptions {
    DeleteOptions {
        grace_period_seconds: r.grace_period_seconds,
        propagation_policy: r.propagation_policy.clone(),
        precondition_uid: r.precondition_uid.clone(),
        precondition_resource_version: r.precondition_resource_version.clone(),
        dry_run: r.dry_run,
    }
}

/// A review's protobuf (`Object.raw` of the Review call).
fn decode_review<T: prost::Message + Default>(raw: &[u8]) -> Result<T, Status> {
    T::decode(raw).map_err(|e| Status::invalid_argument(format!("object: {e}")))
}

impl Service {
    /// Authorizes `attributes` as the request's own, recording the outcome for the audit log (the
    /// Review call uses it directly: its resource is no stored kind).
    fn check(&self, extensions: &tonic::Extensions, attributes: &Attributes) -> Result<(), Status> {
        let decided = self.0.security().map(|s| s.authorization.authorize(attributes));
        if let Some(recorder) = extensions.get::<OutcomeRecorder>() {
            recorder.record(RequestOutcome {
                attributes: Some(attributes.into()),
                authorization: decided.as_ref().ok().map(Into::into),
                annotations: Vec::new(),
            });
        }
        verdict(attributes, decided)
    }
}

/// The answer to a request authorized as `attributes`.
fn verdict(attributes: &Attributes, decided: Result<crate::authz::Decision, ApiError>) -> Result<(), Status> {
    match decided {
        Ok(d) if d.is_allowed() => Ok(()),
        Ok(d) => Err(Status::from(ApiError::Denied(crate::authz::forbidden(attributes, d.reason()).message))),
        Err(e) => Err(Status::from(e)),
    }
}

/// The registry's form of a binding request.
fn bind_target(r: proto::BindRequest) -> BindTarget {
    BindTarget { namespace: r.namespace, name: r.name, uid: r.uid, node: r.node_name }
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
        let extensions = req.extensions().clone();
        let req = req.into_inner();
        let obj = decode_object(req.object).map_err(Status::from)?;
        let (kind, key) = (obj.kind(), obj.key());
        let namespace = &obj.meta().namespace;
        let action =
            GrpcAction { verb: "create", kind, namespace, name: "", subresource: "", field_selector: "" };
        self.authorize(&extensions, action)?;
        self.call("create", kind, &key, async {
            let fm = FieldManager::update(&manager);
            Ok(self.0.registry.create(obj, req.dry_run, fm).await?.to_proto())
        })
        .await
    }

    async fn get(&self, req: Request<proto::GetRequest>) -> Result<Response<proto::Object>, Status> {
        let extensions = req.extensions().clone();
        let r = req.into_inner();
        let action = GrpcAction {
            verb: "get",
            kind: &r.kind,
            namespace: &r.namespace,
            name: &r.name,
            subresource: "",
            field_selector: "",
        };
        self.authorize(&extensions, action)?;
        let key = format!("{}/{}", r.namespace, r.name);
        self.call("get", &r.kind, &key, async {
            Ok(self.0.registry.get(&r.kind, &r.namespace, &r.name).await?.to_proto())
        })
        .await
    }

    async fn list(&self, req: Request<proto::ListRequest>) -> Result<Response<proto::ObjectList>, Status> {
        let extensions = req.extensions().clone();
        let r = req.into_inner();
        let action = GrpcAction {
            verb: "list",
            kind: &r.kind,
            namespace: &r.namespace,
            name: "",
            subresource: "",
            field_selector: &r.field_selector,
        };
        self.authorize(&extensions, action)?;
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

    async fn update_approval(
        &self,
        req: Request<proto::UpdateRequest>,
    ) -> Result<Response<proto::Object>, Status> {
        self.replace(req, "update_approval", approval::SUBRESOURCE).await
    }

    async fn delete(
        &self,
        req: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::DeleteResponse>, Status> {
        let extensions = req.extensions().clone();
        let r = req.into_inner();
        let action = GrpcAction {
            verb: "delete",
            kind: &r.kind,
            namespace: &r.namespace,
            name: &r.name,
            subresource: "",
            field_selector: "",
        };
        self.authorize(&extensions, action)?;
        let opts = delete_options(&r);
        let key = format!("{}/{}", r.namespace, r.name);
        self.call("delete", &r.kind, &key, async {
            let (obj, pending) = self.0.registry.delete(&r.kind, &r.namespace, &r.name, &opts).await?;
            Ok(proto::DeleteResponse { object: Some(obj.to_proto()), pending })
        })
        .await
    }

    async fn evict(
        &self,
        req: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::DeleteResponse>, Status> {
        let extensions = req.extensions().clone();
        let r = req.into_inner();
        if !r.kind.is_empty() && r.kind != "Pod" {
            return Err(Status::invalid_argument(format!("kind: only pods are evicted, not {}", r.kind)));
        }
        let action = GrpcAction {
            verb: "create",
            kind: "Pod",
            namespace: &r.namespace,
            name: &r.name,
            subresource: "eviction",
            field_selector: "",
        };
        self.authorize(&extensions, action)?;
        let opts = delete_options(&r);
        let key = format!("{}/{}", r.namespace, r.name);
        self.call("evict", "Pod", &key, async {
            let (obj, pending) =
                crate::eviction::evict(&self.0.registry, &r.namespace, &r.name, &opts).await?;
            Ok(proto::DeleteResponse { object: Some(obj.to_proto()), pending })
        })
        .await
    }

    async fn bind(&self, req: Request<proto::BindRequest>) -> Result<Response<proto::Object>, Status> {
        let extensions = req.extensions().clone();
        let r = req.into_inner();
        let action = GrpcAction {
            verb: "create",
            kind: "Pod",
            namespace: &r.namespace,
            name: &r.name,
            subresource: "binding",
            field_selector: "",
        };
        self.authorize(&extensions, action)?;
        let key = format!("{}/{}", r.namespace, r.name);
        self.call("bind", "Pod", &key, async { Ok(self.0.registry.bind(&bind_target(r)).await?.to_proto()) })
            .await
    }

    async fn bind_many(
        &self,
        req: Request<proto::BindManyRequest>,
    ) -> Result<Response<proto::BindManyResponse>, Status> {
        let user = user(&req);
        let extensions = req.extensions().clone();
        let bindings = req.into_inner().bindings;
        // Authorized one by one (a rule may name pods); the audit entry is the request's (for the
        // namespace when the batch has one), with the first refusal's decision, and names the bindings.
        let mut namespaces: Vec<&str> = bindings.iter().map(|b| b.namespace.as_str()).collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        let namespace = if namespaces.len() == 1 { namespaces[0] } else { "" };
        let attributes = |namespace: &str, name: &str| {
            Attributes::resource(user.clone(), "create", "", "pods")
                .namespace(namespace)
                .name(name)
                .subresource("binding")
                .api_version("v1")
        };
        let decided: Vec<_> = bindings
            .iter()
            .map(|b| {
                let a = attributes(&b.namespace, &b.name);
                let d = self.0.security().map(|s| s.authorization.authorize(&a));
                (a, d)
            })
            .collect();
        if let Some(recorder) = extensions.get::<OutcomeRecorder>() {
            let refused = |d: &&(Attributes, Result<crate::authz::Decision, ApiError>)| !matches!(&d.1, Ok(d) if d.is_allowed());
            let shown = decided.iter().find(refused).or(decided.first());
            let names: Vec<String> =
                bindings.iter().map(|b| format!("{}/{}={}", b.namespace, b.name, b.node_name)).collect();
            recorder.record(RequestOutcome {
                attributes: Some((&attributes(namespace, "")).into()),
                authorization: shown.and_then(|(_, d)| d.as_ref().ok().map(Into::into)),
                annotations: vec![("navarch.io/bindings".into(), names.join(","))],
            });
        }
        let allowed: Vec<Result<(), Status>> = decided.into_iter().map(|(a, d)| verdict(&a, d)).collect();
        let targets: Vec<BindTarget> = bindings
            .into_iter()
            .zip(&allowed)
            .filter(|(_, a)| a.is_ok())
            .map(|(b, _)| bind_target(b))
            .collect();
        let bound = self.0.call("bind", "Pod", "", async { Ok(self.0.registry.bind_all(&targets).await) });
        let mut bound = bound.await.map_err(Status::from)?.into_iter();
        let outcomes = allowed
            .into_iter()
            .map(|a| {
                let result = a.and_then(|()| match bound.next() {
                    Some(r) => r.map_err(Status::from),
                    None => Err(Status::internal("internal error")),
                });
                match result {
                    Ok(obj) => proto::BindOutcome {
                        resource_version: obj.meta().resource_version.clone(),
                        ..Default::default()
                    },
                    Err(s) => proto::BindOutcome {
                        code: s.code() as i32,
                        message: s.message().to_string(),
                        ..Default::default()
                    },
                }
            })
            .collect();
        Ok(Response::new(proto::BindManyResponse { outcomes }))
    }

    async fn discovery(
        &self,
        req: Request<proto::DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        let attributes = Attributes::non_resource(user(&req), "get", "/api");
        self.0.security().and_then(|s| s.authorization.check(&attributes)).map_err(Status::from)?;
        let verbs = |k: &navarch_api::KindInfo| {
            if !k.is_stored() {
                return vec!["get".to_string(), "list".to_string()];
            }
            let mut v: Vec<String> = ["create", "get", "list", "update", "delete", "watch"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            if k.has_status {
                v.push("update_status".into());
            }
            if k.kind == "CertificateSigningRequest" {
                v.push("update_approval".into());
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
                verbs: verbs(k),
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
        let extensions = req.extensions().clone();
        let r = req.into_inner();
        let action = GrpcAction {
            verb: "get",
            kind: "Pod",
            namespace: &r.namespace,
            name: &r.name,
            subresource: "log",
            field_selector: "",
        };
        self.authorize(&extensions, action)?;
        let key = format!("{}/{}", r.namespace, r.name);
        self.call("logs", "Pod", &key, self.0.kubelets.logs(r)).await
    }

    async fn pod_exec(
        &self,
        req: Request<tonic::Streaming<kubelet_proto::ExecInput>>,
    ) -> Result<Response<Self::PodExecStream>, Status> {
        let extensions = req.extensions().clone();
        let mut input = req.into_inner();
        let first = input
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("start: Required value (the first message)"))?;
        let (namespace, name) =
            first.start.as_ref().map(|s| (s.namespace.as_str(), s.name.as_str())).unwrap_or_default();
        let action = GrpcAction {
            verb: "create",
            kind: "Pod",
            namespace,
            name,
            subresource: "exec",
            field_selector: "",
        };
        self.authorize(&extensions, action)?;
        let key = first.start.as_ref().map(|s| format!("{}/{}", s.namespace, s.name)).unwrap_or_default();
        self.call("exec", "Pod", &key, self.0.kubelets.exec(first, input)).await
    }

    async fn watch(&self, req: Request<proto::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let start = Instant::now();
        let extensions = req.extensions().clone();
        let r = req.into_inner();
        let action = GrpcAction {
            verb: "watch",
            kind: &r.kind,
            namespace: &r.namespace,
            name: "",
            subresource: "",
            field_selector: &r.field_selector,
        };
        self.authorize(&extensions, action)?;
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

    async fn review(&self, req: Request<proto::Object>) -> Result<Response<proto::Object>, Status> {
        let extensions = req.extensions().clone();
        let user = user(&req);
        let o = req.into_inner();
        let resource = reviews::by_kind(&o.kind).ok_or_else(|| {
            let kinds: Vec<String> = reviews::REVIEWS.iter().map(|r| format!("{:?}", r.kind)).collect();
            Status::invalid_argument(format!(
                "kind: Unsupported value: {:?}: supported values: {}",
                o.kind,
                kinds.join(", ")
            ))
        })?;
        let security = self.0.security().map_err(Status::from)?;
        let authorization = &security.authorization;
        // Every review needs `create` on its resource (in its namespace for the local one).
        let allow = |namespace: &str| {
            let attributes = Attributes::resource(user.clone(), "create", resource.group, resource.plural)
                .namespace(namespace)
                .api_version("v1");
            self.check(&extensions, &attributes)
        };
        let failed = |e: crate::rest::StatusError| reviews::grpc_status(&e);
        let raw = match resource.kind {
            "SelfSubjectAccessReview" => {
                let r = decode_review::<SelfSubjectAccessReview>(&o.raw)?;
                allow("")?;
                let mut r = access::self_subject_access_review(authorization, &user, r).map_err(failed)?;
                (r.api_version, r.kind) = (resource.api_version.into(), resource.kind.into());
                r.encode_to_vec()
            }
            "SubjectAccessReview" => {
                let r = decode_review::<SubjectAccessReview>(&o.raw)?;
                allow("")?;
                let mut r = access::subject_access_review(authorization, r).map_err(failed)?;
                (r.api_version, r.kind) = (resource.api_version.into(), resource.kind.into());
                r.encode_to_vec()
            }
            "LocalSubjectAccessReview" => {
                let r = decode_review::<LocalSubjectAccessReview>(&o.raw)?;
                allow(r.metadata.as_ref().map(|m| m.namespace.as_str()).unwrap_or_default())?;
                let mut r = access::local_subject_access_review(authorization, r).map_err(failed)?;
                (r.api_version, r.kind) = (resource.api_version.into(), resource.kind.into());
                r.encode_to_vec()
            }
            "SelfSubjectRulesReview" => {
                let r = decode_review::<SelfSubjectRulesReview>(&o.raw)?;
                allow("")?;
                let mut r = access::self_subject_rules_review(authorization, &user, r).map_err(failed)?;
                (r.api_version, r.kind) = (resource.api_version.into(), resource.kind.into());
                r.encode_to_vec()
            }
            "TokenReview" => {
                let r = decode_review::<TokenReview>(&o.raw)?;
                allow("")?;
                let mut r = identity::token_review(security.tokens.as_deref(), r).map_err(failed)?;
                (r.api_version, r.kind) = (resource.api_version.into(), resource.kind.into());
                r.encode_to_vec()
            }
            _ => {
                decode_review::<SelfSubjectReview>(&o.raw)?;
                allow("")?;
                let mut r = identity::self_subject_review(&user, std::time::SystemTime::now());
                (r.api_version, r.kind) = (resource.api_version.into(), resource.kind.into());
                r.encode_to_vec()
            }
        };
        Ok(Response::new(proto::Object { kind: resource.kind.to_string(), raw }))
    }

    async fn create_token(
        &self,
        req: Request<proto::CreateTokenRequest>,
    ) -> Result<Response<TokenRequest>, Status> {
        let extensions = req.extensions().clone();
        let r = req.into_inner();
        let action = GrpcAction {
            verb: "create",
            kind: "ServiceAccount",
            namespace: &r.namespace,
            name: &r.name,
            subresource: "token",
            field_selector: "",
        };
        self.authorize(&extensions, action)?;
        let security = self.0.security().map_err(Status::from)?;
        let request = r.token_request.unwrap_or_default();
        let issued = token::create(&self.0, security, &r.namespace, &r.name, request)
            .await
            .map_err(|e| reviews::grpc_status(&e))?;
        let mut answer = issued.request;
        (answer.api_version, answer.kind) = (token::API_VERSION.into(), "TokenRequest".into());
        let mut resp = Response::new(answer);
        for w in issued.warnings {
            if let Ok(v) = w.parse() {
                resp.metadata_mut().append("warning", v);
            }
        }
        Ok(resp)
    }
}
