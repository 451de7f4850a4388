//! The audit layer: a `tower` service around the api-server's front door that writes each request's
//! events as the policy asks (Kubernetes' `WithAudit` filter).
//!
//! A REST request's attributes come from its URL, so its level is decided as it arrives: the
//! `RequestReceived` event is written before the request is handled, and a `Request`-level request's
//! body is read first (bounded, never for streams or upgrades) and handed on unchanged
//! ([`ReplayBody`]). A gRPC request names its kind inside its message, which only the door reads: its
//! level is decided from the door's [`RequestOutcome`] once the answer starts, `RequestReceived` is
//! written then (with the arrival time), and the level is `Metadata` at most — gRPC bodies are never
//! logged. Long-running requests (watches, logs, exec/attach/port-forward, gRPC streams) get a
//! `ResponseStarted` event with the answer's headers; every request gets `ResponseComplete` when its
//! body ends or is dropped. Upgraded connections (exec, attach, port-forward) live on after their
//! `101` answer: their `ResponseComplete` marks the switch, not the session's end.
//!
//! Whatever the policy says, bodies of requests for Secrets and tokens
//! ([`RequestAttributes::carries_secrets`]) and of non-resource requests are not logged.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Body;
use serde_json::Value;

use super::attributes::{self, ImpersonatedBy, OutcomeRecorder, RequestAttributes, RequestOutcome};
use super::body::{Completion, CompletionBody, ReplayBody, read_bounded};
use super::event::{
    DECISION_ANNOTATION, Event, EventUser, REASON_ANNOTATION, ResponseStatus, strip_managed_fields,
};
use super::log::AuditSink;
use super::policy::{Level, Policy, RequestAuditConfig, Stage};
use super::response::{grpc_status, logged_media, request_body_value, response_body_value};
use crate::rest::ResponseBody;
use crate::user_info::UserInfo;

/// The request header a client (or a proxy in front) may name the audit ID with, and the response
/// header that tells it.
pub const AUDIT_ID_HEADER: &str = "audit-id";
/// Largest request or response body logged (Kubernetes' largest request body).
const MAX_LOGGED_BODY_BYTES: usize = 3 << 20;
const MAX_AUDIT_ID_LEN: usize = 128;
const MAX_USER_AGENT_LEN: usize = 1024;

/// Wraps a service with auditing. Cheap to clone.
#[derive(Clone)]
pub struct AuditLayer {
    auditor: Arc<Auditor>,
}

struct Auditor {
    policy: Policy,
    sink: AuditSink,
}

impl AuditLayer {
    pub fn new(policy: Policy, sink: AuditSink) -> AuditLayer {
        AuditLayer { auditor: Arc::new(Auditor { policy, sink }) }
    }

    /// For the authentication layer (outside this one), when it refuses a request: one
    /// `ResponseStarted` event without a user, code 401 and `message` (Kubernetes'
    /// `WithFailedAuthenticationAudit`). Returns the event's audit ID (for the `Audit-Id` header), or
    /// `None` when the policy does not record the request.
    pub fn record_failed_authentication<B>(&self, req: &Request<B>, message: &str) -> Option<String> {
        let facts = RequestFacts::read(req, SystemTime::now());
        let attrs = if facts.grpc {
            RequestAttributes::from_grpc(req.method(), req.uri())
        } else {
            RequestAttributes::from_rest(req.method(), req.uri())
        };
        let config = self.auditor.policy.evaluate(None, &attrs);
        if config.level == Level::None || config.omit_stages.contains(Stage::ResponseStarted) {
            return None;
        }
        let mut event = facts.event(config.level.min(Level::Metadata), &attrs);
        event.user = EventUser::default();
        event.impersonated_user = None;
        event.stage = Stage::ResponseStarted;
        event.stage_timestamp = SystemTime::now();
        let mut status = ResponseStatus::code(StatusCode::UNAUTHORIZED.as_u16());
        status.message = message.to_string();
        event.response_status = Some(status);
        self.auditor.sink.send(event);
        Some(facts.audit_id)
    }
}

impl<S> tower_layer::Layer<S> for AuditLayer {
    type Service = AuditService<S>;

    fn layer(&self, inner: S) -> AuditService<S> {
        AuditService { inner, auditor: self.auditor.clone() }
    }
}

/// The audited service: takes `Request<B>`, hands `Request<ReplayBody<B>>` on.
#[derive(Clone)]
pub struct AuditService<S> {
    inner: S,
    auditor: Arc<Auditor>,
}

impl<S, B> tower_service::Service<Request<B>> for AuditService<S>
where
    S: tower_service::Service<Request<ReplayBody<B>>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Send,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<ResponseBody>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The clone waits for readiness next time; this call uses the instance that is ready.
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        Box::pin(audited(self.auditor.clone(), inner, req))
    }
}

/// What the layer reads from a request before handing it on.
struct RequestFacts {
    audit_id: String,
    received: SystemTime,
    request_uri: String,
    /// The effective user (impersonated, when impersonating).
    user: Option<UserInfo>,
    /// Who authenticated, when impersonating.
    impersonator: Option<UserInfo>,
    source_ips: Vec<String>,
    user_agent: String,
    grpc: bool,
    method: Method,
}

impl RequestFacts {
    fn read<B>(req: &Request<B>, received: SystemTime) -> RequestFacts {
        let ext = req.extensions();
        RequestFacts {
            audit_id: audit_id(req.headers()),
            received,
            request_uri: req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path().to_string(), |pq| pq.to_string()),
            user: ext.get::<UserInfo>().cloned(),
            impersonator: ext.get::<ImpersonatedBy>().map(|i| i.0.clone()),
            source_ips: attributes::source_ips(req.headers(), peer(ext)),
            user_agent: user_agent(req.headers()),
            grpc: attributes::is_grpc(req.headers()),
            method: req.method().clone(),
        }
    }

    /// The user the policy matches and the event's `user`: who authenticated.
    fn authenticated_user(&self) -> Option<&UserInfo> {
        self.impersonator.as_ref().or(self.user.as_ref())
    }

    fn event(&self, level: Level, attrs: &RequestAttributes) -> Event {
        let mut event = Event::new(level, self.audit_id.clone(), self.received);
        event.request_uri = self.request_uri.clone();
        event.user = self.authenticated_user().map(EventUser::from).unwrap_or_default();
        event.impersonated_user = self.impersonator.as_ref().and(self.user.as_ref()).map(EventUser::from);
        event.source_ips = self.source_ips.clone();
        event.user_agent = self.user_agent.clone();
        event.set_attributes(attrs);
        event
    }
}

/// The peer's address, as the listener recorded it.
fn peer(ext: &http::Extensions) -> Option<std::net::SocketAddr> {
    ext.get::<crate::authenticate::ConnectionInfo>().map(|c| c.peer).or_else(|| ext.get().copied())
}

/// The client's `Audit-ID` if it is a sensible one, else a new UUID.
fn audit_id(headers: &HeaderMap) -> String {
    headers
        .get(AUDIT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| {
            !id.is_empty() && id.len() <= MAX_AUDIT_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string)
}

/// The `User-Agent`, cut at 1024 bytes as Kubernetes cuts it.
fn user_agent(headers: &HeaderMap) -> String {
    let ua = headers
        .get(http::header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .unwrap_or_default();
    if ua.len() <= MAX_USER_AGENT_LEN {
        return ua.into_owned();
    }
    let mut end = MAX_USER_AGENT_LEN;
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...TRUNCATED", &ua[..end])
}

/// The level a request is recorded at: the policy's, without bodies where bodies must not be logged.
fn recorded_level(config: &RequestAuditConfig, attrs: &RequestAttributes, grpc: bool) -> Level {
    if grpc || !attrs.resource_request || attrs.carries_secrets() {
        config.level.min(Level::Metadata)
    } else {
        config.level
    }
}

async fn audited<S, B>(
    auditor: Arc<Auditor>,
    mut inner: S,
    mut req: Request<B>,
) -> Result<Response<ResponseBody>, Infallible>
where
    S: tower_service::Service<Request<ReplayBody<B>>, Response = Response<ResponseBody>, Error = Infallible>,
    B: Body<Data = Bytes> + Unpin + Send + 'static,
{
    let facts = RequestFacts::read(&req, SystemTime::now());
    let recorder = OutcomeRecorder::default();
    req.extensions_mut().insert(recorder.clone());
    // REST: decided now, from the URL.
    let mut early = None;
    if !facts.grpc {
        let attrs = RequestAttributes::from_rest(req.method(), req.uri());
        let config = auditor.policy.evaluate(facts.authenticated_user(), &attrs);
        if config.level == Level::None {
            let response = inner.call(req.map(ReplayBody::new)).await;
            return response.map(|r| with_audit_id(r, &facts.audit_id));
        }
        early = Some(InFlight::start(&auditor, &facts, attrs, config));
    }
    let (req, request_body) = match &early {
        Some(flight) if flight.wants_request_body(&req) => {
            let (parts, body) = req.into_parts();
            let (read, body) = read_bounded(body, MAX_LOGGED_BODY_BYTES).await;
            let kind = flight.body_kind(&parts.method);
            let value = read.and_then(|bytes| request_body_value(&parts.headers, &bytes, kind));
            (Request::from_parts(parts, body), value)
        }
        _ => (req.map(ReplayBody::new), None),
    };
    let uri = req.uri().clone();
    let result = AssertUnwindSafe(inner.call(req)).catch_unwind().await;
    let response = match result {
        Ok(Ok(response)) => response,
        Err(panic) => {
            let outcome = recorder.take();
            let flight = early.or_else(|| InFlight::start_grpc(&auditor, &facts, &uri, outcome.as_ref()));
            if let Some(flight) = flight {
                flight.panicked(panic.as_ref());
            }
            std::panic::resume_unwind(panic)
        }
    };
    let outcome = response.extensions().get::<RequestOutcome>().cloned().or_else(|| recorder.take());
    let flight = match early {
        Some(flight) => flight,
        None => match InFlight::start_grpc(&auditor, &facts, &uri, outcome.as_ref()) {
            Some(flight) => flight,
            None => return Ok(with_audit_id(response, &facts.audit_id)),
        },
    };
    Ok(flight.respond(response, outcome, request_body, &uri).await)
}

fn with_audit_id(mut response: Response<ResponseBody>, audit_id: &str) -> Response<ResponseBody> {
    if let Ok(v) = HeaderValue::from_str(audit_id) {
        response.headers_mut().insert(AUDIT_ID_HEADER, v);
    }
    response
}

/// An audited request between its arrival and its answer.
struct InFlight {
    auditor: Arc<Auditor>,
    event: Event,
    config: RequestAuditConfig,
    /// The attributes the level was decided with.
    attrs: RequestAttributes,
    grpc: bool,
}

impl InFlight {
    /// Writes `RequestReceived` and returns the request's state.
    fn start(
        auditor: &Arc<Auditor>,
        facts: &RequestFacts,
        attrs: RequestAttributes,
        config: RequestAuditConfig,
    ) -> InFlight {
        let level = recorded_level(&config, &attrs, facts.grpc);
        let flight = InFlight {
            auditor: auditor.clone(),
            event: facts.event(level, &attrs),
            config,
            attrs,
            grpc: facts.grpc,
        };
        flight.emit(Stage::RequestReceived);
        flight
    }

    /// A gRPC request, once its door has said what it was: `None` when the policy does not record it.
    fn start_grpc(
        auditor: &Arc<Auditor>,
        facts: &RequestFacts,
        uri: &http::Uri,
        outcome: Option<&RequestOutcome>,
    ) -> Option<InFlight> {
        let attrs = outcome
            .and_then(|o| o.attributes.clone())
            .unwrap_or_else(|| RequestAttributes::from_grpc(&facts.method, uri));
        let config = auditor.policy.evaluate(facts.authenticated_user(), &attrs);
        (config.level != Level::None).then(|| InFlight::start(auditor, facts, attrs, config))
    }

    /// Sends a copy of the event at `stage`, unless the policy omits it.
    fn emit(&self, stage: Stage) {
        if self.config.omit_stages.contains(stage) {
            return;
        }
        let mut event = self.event.clone();
        event.stage = stage;
        event.stage_timestamp = if stage == Stage::RequestReceived {
            event.request_received_timestamp
        } else {
            SystemTime::now()
        };
        self.auditor.sink.send(event);
    }

    /// Whether to read the request's body to log it.
    fn wants_request_body<B>(&self, req: &Request<B>) -> bool {
        self.event.level >= Level::Request
            && !self.attrs.is_long_running()
            && matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
            && !req.headers().contains_key(http::header::UPGRADE)
    }

    /// The message a Kubernetes protobuf request body holds.
    fn body_kind(&self, method: &Method) -> Option<&'static str> {
        if *method == Method::DELETE {
            return Some("DeleteOptions");
        }
        match self.attrs.subresource.as_str() {
            "" | "status" => self.attrs.kind(),
            "eviction" => Some("Eviction"),
            "binding" => Some("Binding"),
            _ => None,
        }
    }

    fn panicked(mut self, panic: &(dyn std::any::Any + Send)) {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        self.event.response_status =
            Some(ResponseStatus::failure(500, "InternalError", format!("APIServer panic'd: {message}")));
        self.emit(Stage::Panic);
    }

    /// Completes the event from the answer and hands the answer on, its body wrapped to write
    /// `ResponseComplete` at its end.
    async fn respond(
        mut self,
        response: Response<ResponseBody>,
        outcome: Option<RequestOutcome>,
        request_body: Option<Value>,
        uri: &http::Uri,
    ) -> Response<ResponseBody> {
        let mut bodies_allowed = self.event.level >= Level::Request;
        if let Some(outcome) = outcome {
            if let Some(attrs) = &outcome.attributes {
                bodies_allowed &= attrs.resource_request && !attrs.carries_secrets();
                self.event.set_attributes(attrs);
            }
            if let Some(authz) = &outcome.authorization {
                self.event.annotate(DECISION_ANNOTATION, if authz.allowed { "allow" } else { "forbid" });
                self.event.annotate(REASON_ANNOTATION, &authz.reason);
            }
            for (key, value) in &outcome.annotations {
                self.event.annotate(key, value);
            }
        }
        if let Some(mut object) = request_body.filter(|_| bodies_allowed) {
            self.event.fill_object_ref_from(&object);
            if self.config.omit_managed_fields {
                strip_managed_fields(&mut object);
            }
            self.event.request_object = Some(object);
        }
        let (mut parts, mut body) = response.into_parts();
        let code = parts.status.as_u16();
        self.event.response_status = Some(ResponseStatus::code(code));
        if self.grpc
            && let Some(status) = grpc_status(&parts.headers)
        {
            self.event.response_status = Some(status);
        }
        let long_running =
            self.attrs.is_long_running() || (self.grpc && attributes::grpc_streams(uri)) || code == 101;
        let wants_object = bodies_allowed && self.event.level == Level::RequestResponse;
        // The object (RequestResponse, never of a stream) or, for errors (a refused watch too), the
        // Status: bounded JSON or YAML answers only — a stream has no upper size.
        let wants_object = wants_object && !long_running;
        let bounded = body.size_hint().upper().is_some_and(|n| n <= MAX_LOGGED_BODY_BYTES as u64);
        if !self.grpc && (wants_object || code >= 400) && bounded && logged_media(&parts.headers) {
            let (read, replay) = read_bounded(body, MAX_LOGGED_BODY_BYTES).await;
            body = ResponseBody::new(replay);
            if let Some(value) = read.and_then(|bytes| response_body_value(&parts.headers, &bytes)) {
                self.record_response_body(value, code, wants_object);
            }
        }
        if long_running {
            self.emit(Stage::ResponseStarted);
        }
        if let Ok(v) = HeaderValue::from_str(&self.event.audit_id) {
            parts.headers.insert(AUDIT_ID_HEADER, v);
        }
        let completion = Completion {
            event: self.event,
            sink: self.auditor.sink.clone(),
            omit: self.config.omit_stages,
            grpc: self.grpc,
        };
        Response::from_parts(parts, CompletionBody::wrap(body, completion))
    }

    fn record_response_body(&mut self, mut value: Value, code: u16, wants_object: bool) {
        if let Some(status) = ResponseStatus::from_status_body(&value, code) {
            self.event.response_status = Some(status);
        }
        if wants_object {
            if self.config.omit_managed_fields {
                strip_managed_fields(&mut value);
            }
            self.event.response_object = Some(value);
        }
    }
}

#[cfg(test)]
#[path = "layer_tests.rs"]
mod tests;
