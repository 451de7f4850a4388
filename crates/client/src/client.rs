//! The api-server client: dynamic calls on [`Object`]s of any kind (navctl), and typed [`Api<K>`]
//! handles for one kind (daemons).

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use navarch_api::kubelet_proto::{ExecInput, ExecOutput, LogsRequest};
use navarch_api::proto::api_server_client::ApiServerClient;
use navarch_api::proto::{self, DiscoveryResponse};
use navarch_api::v1::TokenRequest;
use navarch_api::{Object, Resource};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::connection::{Connection, Token};
use crate::error::{Error, Result};

/// Maximum message size accepted from the api-server (large lists).
const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// A connection to the api-server. Cheap to clone; clones share the connection.
#[derive(Clone, Debug)]
pub struct Client {
    grpc: ApiServerClient<InterceptedService<Channel, Bearer>>,
    channel: Channel,
    bearer: Bearer,
}

/// Adds `authorization: Bearer <token>` to every call when the connection has a token, and the
/// impersonation headers when the client acts as someone else ([`Client::impersonating`]).
#[derive(Clone, Debug, Default)]
pub struct Bearer {
    token: Option<Token>,
    impersonate: Option<Arc<Impersonation>>,
}

/// Acting as another user (`--as`, `--as-group`): the api-server runs the calls as `user` in `groups`
/// if the real user may `impersonate` them (Kubernetes' `Impersonate-User` / `Impersonate-Group`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Impersonation {
    pub user: String,
    pub groups: Vec<String>,
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut req: tonic::Request<()>,
    ) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = self.token.as_ref().and_then(Token::current) {
            let value = format!("Bearer {token}").parse().map_err(|_| {
                tonic::Status::unauthenticated("the bearer token is not a valid header value")
            })?;
            req.metadata_mut().insert("authorization", value);
        }
        if let Some(imp) = &self.impersonate {
            let invalid =
                |what: &str| tonic::Status::invalid_argument(format!("{what} is not a valid header value"));
            let user = imp.user.parse().map_err(|_| invalid("the user to impersonate"))?;
            req.metadata_mut().insert("impersonate-user", user);
            for group in &imp.groups {
                let group = group.parse().map_err(|_| invalid("a group to impersonate"))?;
                req.metadata_mut().append("impersonate-group", group);
            }
        }
        Ok(req)
    }
}

/// The kinds [`Client::review`] asks: answered with their status filled in, never stored.
pub trait Review: prost::Message + Default {
    const KIND: &'static str;
}

macro_rules! reviews {
    ($($kind:ident),*) => {
        $(impl Review for navarch_api::v1::$kind {
            const KIND: &'static str = stringify!($kind);
        })*
    };
}

reviews!(
    SelfSubjectAccessReview,
    SubjectAccessReview,
    LocalSubjectAccessReview,
    SelfSubjectRulesReview,
    TokenReview,
    SelfSubjectReview
);

/// One binding of [`Client::bind_many`]: the pod (its uid, when set, must match) and its node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodBinding {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
}

/// Parameters of a list call.
#[derive(Clone, Debug, Default)]
pub struct ListParams {
    /// Empty: all namespaces.
    pub namespace: String,
    pub label_selector: String,
    pub field_selector: String,
    /// 0: everything at once.
    pub limit: i64,
    pub continue_token: String,
}

/// One page of a list.
#[derive(Clone, Debug)]
pub struct ObjectList<T> {
    pub items: Vec<T>,
    /// The revision the list was read at; watch from here.
    pub resource_version: String,
    /// Non-empty when more pages remain.
    pub continue_token: String,
}

#[derive(Clone, Debug, Default)]
pub struct WatchParams {
    pub namespace: String,
    pub label_selector: String,
    pub field_selector: String,
    /// Empty: ADDED for every existing object first, then changes.
    pub resource_version: String,
    pub allow_bookmarks: bool,
}

#[derive(Clone, Debug, Default)]
pub struct DeleteParams {
    pub grace_period_seconds: Option<i64>,
    /// `Background` (default), `Foreground` or `Orphan`.
    pub propagation_policy: String,
    pub precondition_uid: String,
    pub precondition_resource_version: String,
}

fn delete_request(kind: &str, namespace: &str, name: &str, p: &DeleteParams) -> proto::DeleteRequest {
    proto::DeleteRequest {
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
        grace_period_seconds: p.grace_period_seconds,
        propagation_policy: p.propagation_policy.clone(),
        precondition_uid: p.precondition_uid.clone(),
        precondition_resource_version: p.precondition_resource_version.clone(),
        dry_run: false,
    }
}

fn deleted(resp: proto::DeleteResponse) -> Result<Deleted<Object>> {
    let object = resp.object.as_ref().map(Object::from_proto).transpose()?.ok_or_else(|| Error::Api {
        code: tonic::Code::Internal,
        message: "delete response without object".into(),
    })?;
    Ok(Deleted { object, pending: resp.pending })
}

/// Result of a delete: the object as last stored, and whether it still exists (finalizers or graceful
/// pod termination pending).
#[derive(Clone, Debug)]
pub struct Deleted<T> {
    pub object: T,
    pub pending: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent<T> {
    Added(T),
    Modified(T),
    Deleted(T),
    /// Every change up to this resourceVersion has been delivered.
    Bookmark(String),
}

pub type WatchStream<T> = Pin<Box<dyn Stream<Item = Result<WatchEvent<T>>> + Send>>;

/// `<program>/<version> (<os>/<arch>)`, as client-go names its clients: the api-server records the program
/// as the field manager of this client's writes (`controller-manager`, `navctl`, ...).
fn user_agent() -> String {
    let program = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "navarch-client".into());
    let program: String = program.chars().filter(|c| c.is_ascii_graphic() && *c != '/').collect();
    format!("{program}/{} ({}/{})", env!("CARGO_PKG_VERSION"), std::env::consts::OS, std::env::consts::ARCH)
}

fn endpoint(conn: &Connection) -> Result<Endpoint> {
    let addr = conn.server.as_str();
    let connect_error = |source| Error::Connect { addr: addr.to_string(), source };
    if !addr.starts_with("https://") {
        return Err(Error::Config(format!(
            "{addr}: the api-server is only reached over TLS (https://host:port)"
        )));
    }
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&conn.ca_pem));
    if let Some((cert, key)) = &conn.identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let endpoint = Endpoint::from_shared(addr.to_string())
        .map_err(connect_error)?
        .tls_config(tls)
        .map_err(connect_error)?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    endpoint.user_agent(user_agent()).map_err(connect_error)
}

impl Client {
    /// Connects now; fails if the api-server cannot be reached.
    pub async fn connect(conn: &Connection) -> Result<Client> {
        let channel = endpoint(conn)?
            .connect()
            .await
            .map_err(|source| Error::Connect { addr: conn.server.clone(), source })?;
        Ok(Client::from_channel(channel, conn))
    }

    /// Connects on first use and reconnects after failures: for daemons that start before the api-server.
    pub fn connect_lazy(conn: &Connection) -> Result<Client> {
        Ok(Client::from_channel(endpoint(conn)?.connect_lazy(), conn))
    }

    fn from_channel(channel: Channel, conn: &Connection) -> Client {
        Client::with_bearer(channel, Bearer { token: conn.token.clone(), impersonate: None })
    }

    fn with_bearer(channel: Channel, bearer: Bearer) -> Client {
        Client {
            grpc: ApiServerClient::with_interceptor(channel.clone(), bearer.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            channel,
            bearer,
        }
    }

    /// This client acting as another user (same connection): every call carries the impersonation
    /// headers. `None` acts as itself again.
    pub fn impersonating(&self, impersonation: Option<Impersonation>) -> Client {
        let bearer = Bearer { impersonate: impersonation.map(Arc::new), ..self.bearer.clone() };
        Client::with_bearer(self.channel.clone(), bearer)
    }

    /// A typed handle on one kind, in `namespace` (ignored for cluster-scoped kinds; empty for all
    /// namespaces in list/watch).
    pub fn api<K: Resource>(&self, namespace: &str) -> Api<K> {
        Api { client: self.clone(), namespace: namespace.to_string(), _kind: PhantomData }
    }

    pub async fn create(&self, obj: &Object) -> Result<Object> {
        let req = proto::CreateRequest { object: Some(obj.to_proto()), dry_run: false };
        let resp = self.grpc.clone().create(req).await?.into_inner();
        Ok(Object::from_proto(&resp)?)
    }

    pub async fn get(&self, kind: &str, namespace: &str, name: &str) -> Result<Object> {
        let req = proto::GetRequest { kind: kind.into(), namespace: namespace.into(), name: name.into() };
        let resp = self.grpc.clone().get(req).await?.into_inner();
        Ok(Object::from_proto(&resp)?)
    }

    /// One page of a list (all of it when `limit` is 0).
    pub async fn list(&self, kind: &str, p: &ListParams) -> Result<ObjectList<Object>> {
        let raw = self.list_raw(kind, p).await?;
        let items = raw.items.iter().map(|b| Object::decode(kind, b)).collect::<Result<_, _>>()?;
        Ok(ObjectList { items, resource_version: raw.resource_version, continue_token: raw.r#continue })
    }

    async fn list_raw(&self, kind: &str, p: &ListParams) -> Result<proto::ObjectList> {
        let req = proto::ListRequest {
            kind: kind.into(),
            namespace: p.namespace.clone(),
            label_selector: p.label_selector.clone(),
            field_selector: p.field_selector.clone(),
            limit: p.limit,
            r#continue: p.continue_token.clone(),
        };
        Ok(self.grpc.clone().list(req).await?.into_inner())
    }

    pub async fn update(&self, obj: &Object) -> Result<Object> {
        Ok(Object::from_proto(&self.replace(Through::Object, obj.to_proto()).await?)?)
    }

    pub async fn update_status(&self, obj: &Object) -> Result<Object> {
        Ok(Object::from_proto(&self.replace(Through::Status, obj.to_proto()).await?)?)
    }

    /// Writes a CertificateSigningRequest's conditions through its `approval` subresource (what `kubectl
    /// certificate approve` does): only `status.conditions` of `obj` is taken. Needs `approve` on its signer.
    pub async fn update_approval(&self, obj: &Object) -> Result<Object> {
        Ok(Object::from_proto(&self.replace(Through::Approval, obj.to_proto()).await?)?)
    }

    /// Replaces `object` through the endpoint `through`.
    async fn replace(&self, through: Through, object: proto::Object) -> Result<proto::Object> {
        let req = proto::UpdateRequest { object: Some(object), dry_run: false };
        let mut grpc = self.grpc.clone();
        let resp = match through {
            Through::Object => grpc.update(req).await?,
            Through::Status => grpc.update_status(req).await?,
            Through::Approval => grpc.update_approval(req).await?,
        };
        Ok(resp.into_inner())
    }

    pub async fn delete(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        p: &DeleteParams,
    ) -> Result<Deleted<Object>> {
        let resp = self.grpc.clone().delete(delete_request(kind, namespace, name, p)).await?.into_inner();
        deleted(resp)
    }

    /// Evicts a pod (the pods/eviction subresource): deleted with `p` if its PodDisruptionBudget allows
    /// it; a refusal is `Error::Api` with code `ResourceExhausted` (Kubernetes' 429): try again later.
    pub async fn evict(&self, namespace: &str, name: &str, p: &DeleteParams) -> Result<Deleted<Object>> {
        let resp = self.grpc.clone().evict(delete_request("Pod", namespace, name, p)).await?.into_inner();
        deleted(resp)
    }

    /// Watches one kind. The stream ends with `Err(Error::Expired)` when the server cannot continue from
    /// where it is (the caller relists), or another error when the connection breaks.
    pub async fn watch(&self, kind: &str, p: &WatchParams) -> Result<WatchStream<Object>> {
        let kind_owned = kind.to_string();
        let stream = self.watch_raw(kind, p).await?;
        Ok(Box::pin(stream.map(move |ev| {
            ev.and_then(|(ty, raw, rv)| decode_event(&ty, raw, rv, |b| Object::decode(&kind_owned, b)))
        })))
    }

    async fn watch_raw(
        &self,
        kind: &str,
        p: &WatchParams,
    ) -> Result<impl Stream<Item = Result<(String, Vec<u8>, String)>> + Send + use<>> {
        let req = proto::WatchRequest {
            kind: kind.into(),
            namespace: p.namespace.clone(),
            label_selector: p.label_selector.clone(),
            field_selector: p.field_selector.clone(),
            resource_version: p.resource_version.clone(),
            allow_bookmarks: p.allow_bookmarks,
        };
        let stream = self.grpc.clone().watch(req).await?.into_inner();
        Ok(stream.map(|ev| {
            let ev = ev?;
            Ok((ev.r#type, ev.object.map(|o| o.raw).unwrap_or_default(), ev.resource_version))
        }))
    }

    /// Binds a pending pod to a node (the pods/binding subresource).
    pub async fn bind(&self, namespace: &str, name: &str, uid: &str, node_name: &str) -> Result<Object> {
        let req = proto::BindRequest {
            namespace: namespace.into(),
            name: name.into(),
            node_name: node_name.into(),
            uid: uid.into(),
        };
        let resp = self.grpc.clone().bind(req).await?.into_inner();
        Ok(Object::from_proto(&resp)?)
    }

    /// Binds several pending pods at once (the api-server's BindMany): the outcome of each, in order —
    /// its new resourceVersion or the error [`Client::bind`] would have given. `Err` only when the
    /// request itself failed (an api-server without BindMany answers [`Error::Api`] Unimplemented).
    pub async fn bind_many(&self, bindings: &[PodBinding]) -> Result<Vec<Result<String>>> {
        let req = proto::BindManyRequest {
            bindings: bindings
                .iter()
                .map(|b| proto::BindRequest {
                    namespace: b.namespace.clone(),
                    name: b.name.clone(),
                    node_name: b.node.clone(),
                    uid: b.uid.clone(),
                })
                .collect(),
        };
        let resp = self.grpc.clone().bind_many(req).await?.into_inner();
        if resp.outcomes.len() != bindings.len() {
            let message =
                format!("BindMany answered {} outcomes for {} bindings", resp.outcomes.len(), bindings.len());
            return Err(Error::Api { code: tonic::Code::Internal, message });
        }
        Ok(resp
            .outcomes
            .into_iter()
            .map(|o| match tonic::Code::from(o.code) {
                tonic::Code::Ok => Ok(o.resource_version),
                code => Err(Error::from(tonic::Status::new(code, o.message))),
            })
            .collect())
    }

    pub async fn discovery(&self) -> Result<DiscoveryResponse> {
        Ok(self.grpc.clone().discovery(proto::DiscoveryRequest {}).await?.into_inner())
    }

    /// A container's log (the pods/log subresource), as chunks of bytes.
    pub async fn pod_logs(&self, req: LogsRequest) -> Result<ByteStream> {
        let stream = self.grpc.clone().pod_logs(req).await?.into_inner();
        Ok(Box::pin(stream.map(|r| r.map(|c| c.data).map_err(Error::from))))
    }

    /// An exec session (the pods/exec subresource): `input` must start with a message carrying
    /// `start`; the output ends with a message holding the exit code.
    pub async fn pod_exec(
        &self,
        input: impl Stream<Item = ExecInput> + Send + 'static,
    ) -> Result<tonic::Streaming<ExecOutput>> {
        Ok(self.grpc.clone().pod_exec(input).await?.into_inner())
    }

    /// Asks a review (SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview,
    /// SelfSubjectRulesReview, TokenReview, SelfSubjectReview): the answer is `review` with its status
    /// filled in, as Kubernetes answers the POST of it.
    pub async fn review<T: Review>(&self, review: &T) -> Result<T> {
        let req = proto::Object { kind: T::KIND.into(), raw: review.encode_to_vec() };
        let resp = self.grpc.clone().review(req).await?.into_inner();
        T::decode(resp.raw.as_slice())
            .map_err(|e| navarch_api::Error::Decode { kind: T::KIND.into(), reason: e.to_string() }.into())
    }

    /// A token of the ServiceAccount `namespace/name` (the serviceaccounts/token subresource): the
    /// answer's `status.token`, valid until `status.expirationTimestamp` and for `spec.audiences`.
    pub async fn create_token(
        &self,
        namespace: &str,
        name: &str,
        request: &TokenRequest,
    ) -> Result<TokenRequest> {
        let req = proto::CreateTokenRequest {
            namespace: namespace.into(),
            name: name.into(),
            token_request: Some(request.clone()),
        };
        Ok(self.grpc.clone().create_token(req).await?.into_inner())
    }
}

/// The endpoint an update goes through: the object, its `status`, a CertificateSigningRequest's `approval`.
#[derive(Clone, Copy, Debug)]
enum Through {
    Object,
    Status,
    Approval,
}

/// A stream of bytes from the api-server (logs).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>>> + Send>>;

fn decode_event<T>(
    ty: &str,
    raw: Vec<u8>,
    rv: String,
    decode: impl Fn(&[u8]) -> Result<T, navarch_api::Error>,
) -> Result<WatchEvent<T>> {
    Ok(match ty {
        "ADDED" => WatchEvent::Added(decode(&raw)?),
        "MODIFIED" => WatchEvent::Modified(decode(&raw)?),
        "DELETED" => WatchEvent::Deleted(decode(&raw)?),
        "BOOKMARK" => WatchEvent::Bookmark(rv),
        other => {
            return Err(Error::Api {
                code: tonic::Code::Internal,
                message: format!("unknown watch event type {other:?}"),
            });
        }
    })
}

/// A typed handle on one kind in one namespace.
#[derive(Clone, Debug)]
pub struct Api<K> {
    client: Client,
    namespace: String,
    _kind: PhantomData<fn() -> K>,
}

fn decode_typed<K: Resource>(raw: &[u8]) -> Result<K, navarch_api::Error> {
    K::decode(raw)
        .map_err(|e| navarch_api::Error::Decode { kind: K::KIND.to_string(), reason: e.to_string() })
}

fn object_of<K: Resource>(obj: &K) -> proto::Object {
    proto::Object { kind: K::KIND.to_string(), raw: obj.encode_to_vec() }
}

impl<K: Resource> Api<K> {
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn ns(&self) -> String {
        if K::NAMESPACED { self.namespace.clone() } else { String::new() }
    }

    /// Creates `obj`; its namespace defaults to this handle's.
    pub async fn create(&self, obj: &K) -> Result<K> {
        let obj = self.in_namespace(obj);
        let req = proto::CreateRequest { object: Some(object_of(&obj)), dry_run: false };
        let resp = self.client.grpc.clone().create(req).await?.into_inner();
        Ok(decode_typed(&resp.raw)?)
    }

    pub async fn get(&self, name: &str) -> Result<K> {
        let req = proto::GetRequest { kind: K::KIND.into(), namespace: self.ns(), name: name.into() };
        let resp = self.client.grpc.clone().get(req).await?.into_inner();
        Ok(decode_typed(&resp.raw)?)
    }

    /// Like [`Api::get`] but `None` when absent.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>> {
        match self.get(name).await {
            Ok(o) => Ok(Some(o)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One page; `p.namespace` is overridden by this handle's namespace.
    pub async fn list(&self, p: &ListParams) -> Result<ObjectList<K>> {
        let p = ListParams { namespace: self.ns(), ..p.clone() };
        let raw = self.client.list_raw(K::KIND, &p).await?;
        let items = raw.items.iter().map(|b| decode_typed(b)).collect::<Result<_, _>>()?;
        Ok(ObjectList { items, resource_version: raw.resource_version, continue_token: raw.r#continue })
    }

    fn in_namespace(&self, obj: &K) -> K {
        let mut obj = obj.clone();
        if K::NAMESPACED && obj.meta().namespace.is_empty() {
            obj.meta_mut().namespace = self.namespace.clone();
        }
        obj
    }

    /// Replaces `obj` (its namespace defaults to this handle's).
    pub async fn update(&self, obj: &K) -> Result<K> {
        self.replace(Through::Object, obj).await
    }

    pub async fn update_status(&self, obj: &K) -> Result<K> {
        self.replace(Through::Status, obj).await
    }

    /// [`Client::update_approval`]: the conditions of a CertificateSigningRequest, through `approval`.
    pub async fn update_approval(&self, obj: &K) -> Result<K> {
        self.replace(Through::Approval, obj).await
    }

    async fn replace(&self, through: Through, obj: &K) -> Result<K> {
        let resp = self.client.replace(through, object_of(&self.in_namespace(obj))).await?;
        Ok(decode_typed(&resp.raw)?)
    }

    pub async fn delete(&self, name: &str, p: &DeleteParams) -> Result<Deleted<K>> {
        let d = self.client.delete(K::KIND, &self.ns(), name, p).await?;
        let object = match d.object {
            o if o.kind() == K::KIND => decode_typed(&o.encode())?,
            o => {
                return Err(Error::Api {
                    code: tonic::Code::Internal,
                    message: format!("delete returned a {} for a {}", o.kind(), K::KIND),
                });
            }
        };
        Ok(Deleted { object, pending: d.pending })
    }

    /// `p.namespace` is overridden by this handle's namespace.
    pub async fn watch(&self, p: &WatchParams) -> Result<WatchStream<K>> {
        let p = WatchParams { namespace: self.ns(), ..p.clone() };
        let stream = self.client.watch_raw(K::KIND, &p).await?;
        Ok(Box::pin(
            stream.map(|ev| ev.and_then(|(ty, raw, rv)| decode_event(&ty, raw, rv, decode_typed::<K>))),
        ))
    }
}
