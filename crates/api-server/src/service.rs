//! The gRPC service (proto/navarch/apiserver/v1): decodes requests, calls the [`Registry`] or a watch
//! cache, records metrics, and maps errors through [`ApiError`]'s one conversion to `Status`.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, Stream, StreamExt};
use navarch_api::proto::api_server_server::ApiServer;
use navarch_api::proto::{self, ApiResource, DiscoveryResponse};
use navarch_api::selector::Selector;
use navarch_api::{KINDS, Object, kubelet_proto};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::error::ApiError;
use crate::kubelet_relay::KubeletRelay;
use crate::metrics::{KindLabels, Metrics};
use crate::registry::{DeleteOptions, ListOptions, Registry, kind_of};
use crate::watch_cache::{CachedEvent, EventType, FieldSelector, WatchCache, WatchCacheError, WatchFilter};

/// How long a watch started from a list waits for the cache to catch up with the list's revision.
const CACHE_CATCH_UP: Duration = Duration::from_secs(5);
/// How long a watch from a revision the cache has not reached yet waits for it.
const TOO_LARGE_WAIT: Duration = Duration::from_secs(3);
/// Events buffered between a watch's task and the gRPC stream. Small: the watch cache's per-watcher
/// buffer is what absorbs bursts, and a slow client must fill it to be detected.
const STREAM_BUFFER: usize = 8;

pub struct Service {
    pub registry: Arc<Registry>,
    pub kubelets: KubeletRelay,
    pub caches: HashMap<&'static str, Arc<WatchCache>>,
    pub metrics: Arc<Metrics>,
    pub bookmark_interval: Duration,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
}

fn decode_object(o: Option<proto::Object>) -> Result<Object, ApiError> {
    let o = o.ok_or_else(|| ApiError::BadRequest("object: Required value".into()))?;
    kind_of(&o.kind)?;
    Object::from_proto(&o).map_err(|e| ApiError::BadRequest(format!("object: {e}")))
}

fn rev_param(rv: &str) -> Result<i64, ApiError> {
    rv.parse::<i64>().ok().filter(|r| *r >= 0).ok_or_else(|| {
        ApiError::BadRequest(format!("resourceVersion: Invalid value: {rv:?}: must be a revision number"))
    })
}

impl Service {
    fn observe<T>(&self, verb: &'static str, kind: &str, start: Instant, r: &Result<T, ApiError>) {
        let code = match r {
            Ok(_) => "OK",
            Err(e) => e.code(),
        };
        self.metrics.observe(verb, kind, code, start.elapsed().as_secs_f64());
    }

    async fn call<T>(
        &self,
        verb: &'static str,
        kind: &str,
        key: &str,
        f: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<Response<T>, Status> {
        let start = Instant::now();
        let span = tracing::debug_span!("request", verb, kind, key);
        let r = f.instrument(span).await;
        self.observe(verb, kind, start, &r);
        r.map(Response::new).map_err(Status::from)
    }

    fn watch_filter(&self, req: &proto::WatchRequest, namespaced: bool) -> Result<WatchFilter, ApiError> {
        let labels = Selector::parse(&req.label_selector)
            .map_err(|e| ApiError::BadRequest(format!("labelSelector: {e}")))?;
        let fields = FieldSelector::parse(&req.field_selector)
            .map_err(|e| ApiError::BadRequest(format!("fieldSelector: {e}")))?;
        fields.check_supported(&req.kind).map_err(|e| ApiError::BadRequest(format!("fieldSelector: {e}")))?;
        let namespace = if namespaced { req.namespace.clone() } else { String::new() };
        Ok(WatchFilter { namespace, labels, fields })
    }
}

fn event_type(t: EventType) -> &'static str {
    match t {
        EventType::Added => "ADDED",
        EventType::Modified => "MODIFIED",
        EventType::Deleted => "DELETED",
    }
}

fn proto_event(kind: &str, e: &CachedEvent) -> proto::WatchEvent {
    proto::WatchEvent {
        r#type: event_type(e.event_type).into(),
        object: Some(proto::Object { kind: kind.to_string(), raw: e.raw.clone() }),
        resource_version: e.revision.to_string(),
    }
}

/// How a watch stream ends when the cache drops it.
fn watch_end_status(e: WatchCacheError) -> Status {
    match e {
        WatchCacheError::Expired(m) => Status::out_of_range(m),
        WatchCacheError::Etcd(_) => Status::unavailable("storage unavailable, try again"),
    }
}

type WatchResponseStream = Pin<Box<dyn Stream<Item = Result<proto::WatchEvent, Status>> + Send>>;

#[tonic::async_trait]
impl ApiServer for Service {
    async fn create(&self, req: Request<proto::CreateRequest>) -> Result<Response<proto::Object>, Status> {
        let req = req.into_inner();
        let obj = decode_object(req.object).map_err(Status::from)?;
        let (kind, key) = (obj.kind(), obj.key());
        self.call("create", kind, &key, async {
            Ok(self.registry.create(obj, req.dry_run).await?.to_proto())
        })
        .await
    }

    async fn get(&self, req: Request<proto::GetRequest>) -> Result<Response<proto::Object>, Status> {
        let r = req.into_inner();
        let key = format!("{}/{}", r.namespace, r.name);
        self.call("get", &r.kind, &key, async {
            Ok(self.registry.get(&r.kind, &r.namespace, &r.name).await?.to_proto())
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
            let l = self.registry.list(&r.kind, &opts).await?;
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
        let req = req.into_inner();
        let obj = decode_object(req.object).map_err(Status::from)?;
        let (kind, key) = (obj.kind(), obj.key());
        self.call("update", kind, &key, async {
            Ok(self.registry.update(obj, false, req.dry_run).await?.to_proto())
        })
        .await
    }

    async fn update_status(
        &self,
        req: Request<proto::UpdateRequest>,
    ) -> Result<Response<proto::Object>, Status> {
        let req = req.into_inner();
        let obj = decode_object(req.object).map_err(Status::from)?;
        let (kind, key) = (obj.kind(), obj.key());
        self.call("update_status", kind, &key, async {
            Ok(self.registry.update(obj, true, req.dry_run).await?.to_proto())
        })
        .await
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
            let (obj, pending) = self.registry.delete(&r.kind, &r.namespace, &r.name, &opts).await?;
            Ok(proto::DeleteResponse { object: Some(obj.to_proto()), pending })
        })
        .await
    }

    async fn bind(&self, req: Request<proto::BindRequest>) -> Result<Response<proto::Object>, Status> {
        let r = req.into_inner();
        let key = format!("{}/{}", r.namespace, r.name);
        self.call("bind", "Pod", &key, async {
            Ok(self.registry.bind(&r.namespace, &r.name, &r.uid, &r.node_name).await?.to_proto())
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
        self.call("logs", "Pod", &key, self.kubelets.logs(r)).await
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
        self.call("exec", "Pod", &key, self.kubelets.exec(first, input)).await
    }

    async fn top(&self, req: Request<proto::TopRequest>) -> Result<Response<proto::TopResponse>, Status> {
        let r = req.into_inner();
        self.call("top", "Node", &r.node_name, async {
            let (nodes, errors) = self.kubelets.top(&r.node_name).await?;
            Ok(proto::TopResponse { nodes, errors })
        })
        .await
    }

    async fn watch(&self, req: Request<proto::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let start = Instant::now();
        let r = req.into_inner();
        let result = self.start_watch(&r).await;
        self.observe("watch", &r.kind, start, &result);
        result.map(Response::new).map_err(Status::from)
    }
}

impl Service {
    async fn start_watch(&self, r: &proto::WatchRequest) -> Result<WatchResponseStream, ApiError> {
        let info = kind_of(&r.kind)?;
        let cache = self
            .caches
            .get(info.kind)
            .cloned()
            .ok_or_else(|| ApiError::Internal(format!("no watch cache for {}", info.kind)))?;
        let filter = self.watch_filter(r, info.namespaced)?;
        // Empty or "0": the current state first, as ADDED events, then changes after it.
        let (initial, after) = if r.resource_version.is_empty() || r.resource_version == "0" {
            let l = self
                .registry
                .list(
                    info.kind,
                    &ListOptions {
                        namespace: filter.namespace.clone(),
                        label_selector: r.label_selector.clone(),
                        field_selector: r.field_selector.clone(),
                        ..Default::default()
                    },
                )
                .await?;
            if !cache.wait_for_revision(l.resource_version, CACHE_CATCH_UP).await {
                return Err(ApiError::Unavailable(format!("watch cache for {} is behind", info.kind)));
            }
            (l.items, l.resource_version)
        } else {
            let after = rev_param(&r.resource_version)?;
            // A revision from the future (e.g. another api-server's): wait briefly, like Kubernetes.
            if after > cache.revision() && !cache.wait_for_revision(after, TOO_LARGE_WAIT).await {
                return Err(ApiError::Expired(format!(
                    "Too large resource version: {after}, current: {}",
                    cache.revision()
                )));
            }
            (Vec::new(), after)
        };
        let mut sub = cache.subscribe(after, filter).map_err(|e| match e {
            WatchCacheError::Expired(m) => ApiError::Expired(m),
            WatchCacheError::Etcd(m) => ApiError::Unavailable(m),
        })?;

        let (tx, rx) = mpsc::channel::<Result<proto::WatchEvent, Status>>(STREAM_BUFFER);
        let kind = info.kind;
        let bookmarks = r.allow_bookmarks;
        let interval = self.bookmark_interval;
        let shutdown = self.shutdown.clone();
        let metrics = self.metrics.clone();
        let labels = KindLabels { kind: kind.to_string() };
        metrics.watchers.get_or_create(&labels).inc();
        let span = tracing::debug_span!("watch", kind, namespace = %r.namespace, after);
        self.tasks.spawn(
            async move {
                let sent = metrics.watch_events.get_or_create(&labels).clone();
                let run = async {
                    for obj in initial {
                        let ev = proto::WatchEvent {
                            r#type: "ADDED".into(),
                            resource_version: obj.meta().resource_version.clone(),
                            object: Some(obj.to_proto()),
                        };
                        if tx.send(Ok(ev)).await.is_err() {
                            return;
                        }
                        sent.inc();
                    }
                    let mut ticker =
                        tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
                    loop {
                        tokio::select! {
                            // Events first: a bookmark must not overtake events already queued.
                            biased;
                            ev = sub.next() => match ev {
                                Some(Ok(e)) => {
                                    if tx.send(Ok(proto_event(kind, &e))).await.is_err() { return; }
                                    sent.inc();
                                }
                                Some(Err(e)) => {
                                    let _ = tx.send(Err(watch_end_status(e))).await;
                                    return;
                                }
                                None => return,
                            },
                            _ = ticker.tick(), if bookmarks => {
                                // Read the revision first, then send every event already queued: an event
                                // published between the poll above and this read is then not overtaken.
                                let rev = cache.revision();
                                while let Some(Some(ev)) = sub.next().now_or_never() {
                                    match ev {
                                        Ok(e) => {
                                            if tx.send(Ok(proto_event(kind, &e))).await.is_err() { return; }
                                            sent.inc();
                                        }
                                        // The watcher fell behind: report it (never a bookmark past
                                        // events it did not get).
                                        Err(e) => {
                                            let _ = tx.send(Err(watch_end_status(e))).await;
                                            return;
                                        }
                                    }
                                }
                                let ev = proto::WatchEvent {
                                    r#type: "BOOKMARK".into(),
                                    object: None,
                                    resource_version: rev.to_string(),
                                };
                                if tx.send(Ok(ev)).await.is_err() { return; }
                            }
                            _ = tx.closed() => return,
                        }
                    }
                };
                tokio::select! {
                    _ = run => {}
                    _ = shutdown.cancelled() => {}
                }
                metrics.watchers.get_or_create(&labels).dec();
            }
            .instrument(span),
        );
        Ok(Box::pin(ReceiverStream::new(rx)))
    }
}
