//! Tests of the audit layer around a fake door: events, stages, bodies, gRPC, panics.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;

use http_body_util::{BodyExt, Full};
use serde_json::json;
use tower_layer::Layer;
use tower_service::Service;

use super::*;
use crate::audit::attributes::Authorization;
use crate::audit::log::{AuditLog, LogOutput};

/// The lines the log wrote, shared with the test.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl LogOutput for Lines {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.0.lock().unwrap().push(String::from_utf8_lossy(line).into_owned());
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

type Respond = dyn Fn(&http::request::Parts, &OutcomeRecorder) -> Response<ResponseBody> + Send + Sync;

/// The service behind the layer: records the body it got, answers with `respond`.
#[derive(Clone)]
struct Door {
    respond: Arc<Respond>,
    bodies: Arc<Mutex<Vec<Bytes>>>,
}

impl<B> tower_service::Service<Request<ReplayBody<B>>> for Door
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: std::fmt::Debug + Send,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<ResponseBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<ReplayBody<B>>) -> Self::Future {
        let door = self.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let recorder =
                parts.extensions.get::<OutcomeRecorder>().cloned().expect("the layer adds a recorder");
            let bytes = body.collect().await.unwrap().to_bytes();
            door.bodies.lock().unwrap().push(bytes);
            Ok((door.respond)(&parts, &recorder))
        })
    }
}

struct Harness {
    log: AuditLog,
    lines: Lines,
    service: AuditService<Door>,
    bodies: Arc<Mutex<Vec<Bytes>>>,
}

impl Harness {
    fn new(
        policy: &str,
        respond: impl Fn(&http::request::Parts, &OutcomeRecorder) -> Response<ResponseBody>
        + Send
        + Sync
        + 'static,
    ) -> Harness {
        let policy = Policy::parse(&format!("apiVersion: audit.k8s.io/v1\nkind: Policy\n{policy}")).unwrap();
        let lines = Lines::default();
        let log = AuditLog::start(Box::new(lines.clone()), 100);
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let door = Door { respond: Arc::new(respond), bodies: bodies.clone() };
        let service = AuditLayer::new(policy, log.sink()).layer(door);
        Harness { log, lines, service, bodies }
    }

    async fn call(&mut self, req: Request<Full<Bytes>>) -> Response<ResponseBody> {
        self.service.call(req).await.unwrap()
    }

    /// Closes the log and returns the events written.
    async fn events(self) -> Vec<Value> {
        self.log.close().await;
        self.lines.0.lock().unwrap().iter().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

fn json_response(code: u16, body: Value) -> Response<ResponseBody> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(ResponseBody::new(Full::new(Bytes::from(body.to_string()))))
        .unwrap()
}

fn alice() -> UserInfo {
    UserInfo {
        name: "alice".into(),
        uid: "u1".into(),
        groups: vec!["devs".into(), "system:authenticated".into()],
        ..UserInfo::default()
    }
}

fn request(method: Method, uri: &str, body: &str) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("user-agent", "kubectl/v1.32.0 (linux/amd64)")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    req.extensions_mut().insert(alice());
    req.extensions_mut().insert("10.1.2.3:40000".parse::<SocketAddr>().unwrap());
    req
}

fn stages(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["stage"].as_str().unwrap()).collect()
}

async fn drain(response: Response<ResponseBody>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn metadata_events_of_a_get() {
    let mut h = Harness::new("rules:\n- level: Metadata\n", |_, _| {
        let mut r = json_response(200, json!({"kind": "Pod", "metadata": {"name": "web"}}));
        r.extensions_mut().insert(RequestOutcome {
            authorization: Some(Authorization {
                allowed: true,
                reason: "RBAC: allowed by RoleBinding".into(),
            }),
            annotations: vec![("example.io/note".into(), "x".into())],
            ..RequestOutcome::default()
        });
        r
    });
    let response = h.call(request(Method::GET, "/api/v1/namespaces/default/pods/web?pretty=1", "")).await;
    let audit_id = response.headers().get(AUDIT_ID_HEADER).unwrap().to_str().unwrap().to_string();
    assert_eq!(drain(response).await, json!({"kind": "Pod", "metadata": {"name": "web"}}).to_string());
    let events = h.events().await;
    assert_eq!(stages(&events), ["RequestReceived", "ResponseComplete"]);
    let (received, complete) = (&events[0], &events[1]);
    assert_eq!(received["auditID"], audit_id.as_str());
    assert_eq!(complete["auditID"], audit_id.as_str());
    assert_eq!(received["stageTimestamp"], received["requestReceivedTimestamp"]);
    assert!(received.get("responseStatus").is_none() && received.get("annotations").is_none());
    for key in ["requestObject", "responseObject", "impersonatedUser"] {
        assert!(complete.get(key).is_none(), "{key}");
    }
    let mut c = complete.clone();
    c.as_object_mut().unwrap().remove("auditID");
    c.as_object_mut().unwrap().remove("requestReceivedTimestamp");
    c.as_object_mut().unwrap().remove("stageTimestamp");
    assert_eq!(
        c,
        json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "stage": "ResponseComplete",
            "requestURI": "/api/v1/namespaces/default/pods/web?pretty=1", "verb": "get",
            "user": {"username": "alice", "uid": "u1", "groups": ["devs", "system:authenticated"]},
            "sourceIPs": ["10.1.2.3"], "userAgent": "kubectl/v1.32.0 (linux/amd64)",
            "objectRef": {"resource": "pods", "namespace": "default", "name": "web", "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": 200},
            "annotations": {
                "authorization.k8s.io/decision": "allow",
                "authorization.k8s.io/reason": "RBAC: allowed by RoleBinding",
                "example.io/note": "x",
            },
        })
    );
    let ts = complete["stageTimestamp"].as_str().unwrap();
    assert!(ts.ends_with('Z') && ts.len() == "2024-01-01T00:00:00.000000Z".len(), "{ts}");
}

#[tokio::test]
async fn request_response_bodies_of_a_create() {
    let mut h = Harness::new("omitManagedFields: true\nrules:\n- level: RequestResponse\n", |_, _| {
        json_response(
            201,
            json!({"kind": "Pod", "metadata": {"name": "web", "uid": "u-9", "managedFields": [{"manager": "m"}]}}),
        )
    });
    let body = json!({"kind": "Pod", "metadata": {"name": "web", "managedFields": [{"manager": "kubectl"}]}})
        .to_string();
    let response = h.call(request(Method::POST, "/api/v1/namespaces/default/pods", &body)).await;
    drain(response).await;
    assert_eq!(h.bodies.lock().unwrap()[0], body, "the door got the body unchanged");
    let events = h.events().await;
    assert_eq!(stages(&events), ["RequestReceived", "ResponseComplete"]);
    assert!(events[0].get("requestObject").is_none(), "bodies are in the last event only");
    let e = &events[1];
    assert_eq!(e["level"], "RequestResponse");
    assert_eq!(e["verb"], "create");
    assert_eq!(
        e["objectRef"],
        json!({"resource": "pods", "namespace": "default", "name": "web", "apiVersion": "v1"})
    );
    assert_eq!(e["requestObject"], json!({"kind": "Pod", "metadata": {"name": "web"}}));
    assert_eq!(e["responseObject"], json!({"kind": "Pod", "metadata": {"name": "web", "uid": "u-9"}}));
    assert_eq!(e["responseStatus"], json!({"metadata": {}, "code": 201}));
}

#[tokio::test]
async fn managed_fields_are_kept_by_default_and_request_level_logs_no_response() {
    let mut h = Harness::new("rules:\n- level: Request\n", |_, _| json_response(200, json!({"kind": "Pod"})));
    let body = json!({"metadata": {"name": "web", "managedFields": [{"manager": "kubectl"}]}}).to_string();
    drain(h.call(request(Method::PUT, "/api/v1/namespaces/default/pods/web", &body)).await).await;
    let events = h.events().await;
    assert_eq!(events[1]["requestObject"]["metadata"]["managedFields"], json!([{"manager": "kubectl"}]));
    assert!(events[1].get("responseObject").is_none());
}

#[tokio::test]
async fn secret_bodies_are_never_logged() {
    let secret = json!({"kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "aHVudGVyMg=="}});
    let answer = secret.clone();
    let mut h =
        Harness::new("rules:\n- level: RequestResponse\n", move |_, _| json_response(201, answer.clone()));
    for (method, uri) in [
        (Method::POST, "/api/v1/namespaces/default/secrets"),
        (Method::PUT, "/api/v1/namespaces/default/secrets/s"),
        (Method::PATCH, "/api/v1/namespaces/default/secrets/s"),
        (Method::GET, "/api/v1/namespaces/default/secrets/s"),
        (Method::GET, "/api/v1/secrets"),
    ] {
        drain(h.call(request(method, uri, &secret.to_string())).await).await;
    }
    assert_eq!(h.bodies.lock().unwrap().len(), 5);
    let events = h.events().await;
    assert_eq!(events.len(), 10);
    for e in &events {
        let text = e.to_string();
        assert!(!text.contains("aHVudGVyMg==") && !text.contains("password"), "{text}");
        assert_eq!(e["level"], "Metadata");
        assert_eq!(e["objectRef"]["resource"], "secrets");
    }
}

#[tokio::test]
async fn a_door_naming_a_secret_suppresses_bodies_too() {
    // The URL says configmaps, the door says it was a secret after all: no bodies.
    let mut h = Harness::new("rules:\n- level: RequestResponse\n", |_, _| {
        let mut r = json_response(200, json!({"data": {"token": "t0p"}}));
        r.extensions_mut().insert(RequestOutcome {
            attributes: Some(RequestAttributes {
                verb: "update".into(),
                resource_request: true,
                api_version: "v1".into(),
                resource: "secrets".into(),
                namespace: "default".into(),
                name: "s".into(),
                ..RequestAttributes::default()
            }),
            ..RequestOutcome::default()
        });
        r
    });
    drain(
        h.call(request(
            Method::PUT,
            "/api/v1/namespaces/default/configmaps/s",
            r#"{"data":{"token":"t0p"}}"#,
        ))
        .await,
    )
    .await;
    let events = h.events().await;
    assert!(!events[1].to_string().contains("t0p"));
    assert_eq!(events[1]["objectRef"]["resource"], "secrets");
}

#[tokio::test]
async fn error_status_is_recorded_at_metadata() {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "pods \"nope\" not found", "reason": "NotFound", "details": {"name": "nope", "kind": "pods"}, "code": 404});
    let answer = status.clone();
    let mut h = Harness::new("rules:\n- level: Metadata\n", move |_, _| json_response(404, answer.clone()));
    let response = h.call(request(Method::GET, "/api/v1/namespaces/default/pods/nope", "")).await;
    assert_eq!(response.status(), 404);
    assert_eq!(drain(response).await, status.to_string(), "the answer is unchanged");
    let events = h.events().await;
    assert_eq!(
        events[1]["responseStatus"],
        json!({"metadata": {}, "status": "Failure", "message": "pods \"nope\" not found", "reason": "NotFound",
               "details": {"name": "nope", "kind": "pods"}, "code": 404})
    );
    assert!(events[1].get("responseObject").is_none());
}

#[tokio::test]
async fn watches_have_a_response_started_stage() {
    let mut h = Harness::new("rules:\n- level: RequestResponse\n", |_, _| {
        let chunks = futures::stream::iter(
            ["{\"type\":\"ADDED\"}\n", "{\"type\":\"MODIFIED\"}\n"]
                .map(|c| Ok::<_, Infallible>(hyper::body::Frame::data(Bytes::from_static(c.as_bytes())))),
        );
        Response::builder()
            .header("content-type", "application/json")
            .body(ResponseBody::new(http_body_util::StreamBody::new(chunks)))
            .unwrap()
    });
    let response = h.call(request(Method::GET, "/api/v1/namespaces/default/pods?watch=true", "")).await;
    assert_eq!(drain(response).await, "{\"type\":\"ADDED\"}\n{\"type\":\"MODIFIED\"}\n");
    let events = h.events().await;
    assert_eq!(stages(&events), ["RequestReceived", "ResponseStarted", "ResponseComplete"]);
    assert_eq!(events[1]["responseStatus"], json!({"metadata": {}, "code": 200}));
    assert_eq!(events[2]["verb"], "watch");
    assert!(events[2].get("responseObject").is_none(), "streams are never read");
}

#[tokio::test]
async fn a_refused_watch_records_its_status() {
    let mut h = Harness::new("rules:\n- level: Metadata\n", |_, _| {
        json_response(
            403,
            json!({"kind": "Status", "status": "Failure", "reason": "Forbidden", "message": "no", "code": 403}),
        )
    });
    drain(h.call(request(Method::GET, "/api/v1/pods?watch=true", "")).await).await;
    let events = h.events().await;
    assert_eq!(stages(&events), ["RequestReceived", "ResponseStarted", "ResponseComplete"]);
    assert_eq!(events[2]["responseStatus"]["reason"], "Forbidden");
}

#[tokio::test]
async fn a_dropped_stream_completes() {
    let mut h = Harness::new("rules:\n- level: Metadata\n", |_, _| {
        let pending = futures::stream::pending::<Result<hyper::body::Frame<Bytes>, Infallible>>();
        Response::new(ResponseBody::new(http_body_util::StreamBody::new(pending)))
    });
    let response = h.call(request(Method::GET, "/api/v1/pods?watch=1", "")).await;
    drop(response); // the client went away
    let events = h.events().await;
    assert_eq!(stages(&events), ["RequestReceived", "ResponseStarted", "ResponseComplete"]);
}

#[tokio::test]
async fn upgrades_are_not_read() {
    let mut h = Harness::new("rules:\n- level: RequestResponse\n", |_, _| {
        Response::builder().status(101).body(ResponseBody::default()).unwrap()
    });
    let mut req = request(Method::POST, "/api/v1/namespaces/default/pods/web/exec?command=sh", "");
    req.headers_mut().insert("upgrade", "websocket".parse().unwrap());
    let response = h.call(req).await;
    assert_eq!(response.status(), 101);
    drop(response);
    let events = h.events().await;
    assert_eq!(stages(&events), ["RequestReceived", "ResponseStarted", "ResponseComplete"]);
    assert_eq!(events[1]["responseStatus"]["code"], 101);
    assert_eq!(events[1]["objectRef"]["subresource"], "exec");
}

#[tokio::test]
async fn level_none_records_nothing_but_tells_the_audit_id() {
    let mut h = Harness::new(
        "rules:\n- level: None\n  nonResourceURLs: [\"/healthz*\"]\n- level: Metadata\n",
        |_, _| json_response(200, json!({})),
    );
    let mut req = request(Method::GET, "/healthz/etcd", "");
    req.headers_mut().insert(AUDIT_ID_HEADER, "client-chosen-id".parse().unwrap());
    let response = h.call(req).await;
    assert_eq!(response.headers()[AUDIT_ID_HEADER], "client-chosen-id");
    drain(response).await;
    let mut req = request(Method::GET, "/version", "");
    req.headers_mut().insert(AUDIT_ID_HEADER, "bad id with spaces".parse().unwrap());
    drain(h.call(req).await).await;
    let events = h.events().await;
    assert_eq!(events.len(), 2, "only /version");
    assert_eq!(events[0]["verb"], "get");
    assert!(events[0].get("objectRef").is_none());
    assert_ne!(events[0]["auditID"], "bad id with spaces");
    assert_eq!(events[0]["auditID"].as_str().unwrap().len(), 36, "a UUID");
}

#[tokio::test]
async fn non_resource_requests_log_no_bodies() {
    let mut h =
        Harness::new("rules:\n- level: RequestResponse\n", |_, _| json_response(200, json!({"major": "1"})));
    drain(h.call(request(Method::GET, "/version", "")).await).await;
    let events = h.events().await;
    assert_eq!(events[1]["level"], "Metadata");
    assert!(events[1].get("responseObject").is_none());
}

#[tokio::test]
async fn omitted_stages_are_not_written() {
    let mut h = Harness::new(
        "omitStages: [RequestReceived]\nrules:\n- level: Metadata\n  omitStages: [ResponseStarted]\n",
        |_, _| json_response(200, json!({})),
    );
    drain(h.call(request(Method::GET, "/api/v1/pods?watch=true", "")).await).await;
    drain(h.call(request(Method::GET, "/api/v1/pods", "")).await).await;
    let events = h.events().await;
    assert_eq!(stages(&events), ["ResponseComplete", "ResponseComplete"]);
}

#[tokio::test]
async fn impersonation_records_both_users() {
    let mut h =
        Harness::new("rules:\n- level: Metadata\n  users: [alice]\n", |_, _| json_response(200, json!({})));
    let mut req = request(Method::GET, "/api/v1/namespaces/default/pods", "");
    let bob =
        UserInfo { name: "bob".into(), groups: vec!["system:authenticated".into()], ..UserInfo::default() };
    req.extensions_mut().insert(bob);
    req.extensions_mut().insert(ImpersonatedBy(alice()));
    drain(h.call(req).await).await;
    let events = h.events().await;
    assert_eq!(events.len(), 2, "the policy matched alice, who authenticated");
    assert_eq!(events[1]["user"]["username"], "alice");
    assert_eq!(events[1]["impersonatedUser"], json!({"username": "bob", "groups": ["system:authenticated"]}));
}

#[tokio::test]
async fn large_bodies_are_handed_on_but_not_logged() {
    let mut h = Harness::new("rules:\n- level: Request\n", |_, _| json_response(201, json!({})));
    let big =
        format!("{{\"metadata\":{{\"name\":\"big\"}},\"data\":\"{}\"}}", "x".repeat(MAX_LOGGED_BODY_BYTES));
    drain(h.call(request(Method::POST, "/api/v1/namespaces/default/configmaps", &big)).await).await;
    assert_eq!(h.bodies.lock().unwrap()[0].len(), big.len());
    let events = h.events().await;
    assert!(events[1].get("requestObject").is_none());
}

#[tokio::test]
async fn grpc_requests_are_metadata_only_and_decided_from_the_door() {
    let policy = "rules:\n- level: None\n  resources: [{group: \"\", resources: [events]}]\n- level: RequestResponse\n  resources: [{group: \"\"}]\n- level: Metadata\n";
    let mut h = Harness::new(policy, |parts, recorder| {
        let resource = if parts.uri.path().ends_with("/List") { "events" } else { "pods" };
        recorder.record(RequestOutcome {
            attributes: Some(RequestAttributes {
                verb: "create".into(),
                resource_request: true,
                api_version: "v1".into(),
                resource: resource.into(),
                namespace: "default".into(),
                name: "web".into(),
                ..RequestAttributes::default()
            }),
            authorization: Some(Authorization { allowed: false, reason: String::new() }),
            ..RequestOutcome::default()
        });
        // A trailers-only gRPC error, as tonic answers a refused request.
        Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", "7")
            .header("grpc-message", "pods%20is%20forbidden")
            .body(ResponseBody::default())
            .unwrap()
    });
    let grpc = |method: &str| {
        let mut req =
            request(Method::POST, &format!("/navarch.apiserver.v1.ApiServer/{method}"), "\0\0\0\0\x05hello");
        req.headers_mut().insert("content-type", "application/grpc".parse().unwrap());
        req
    };
    drain(h.call(grpc("Create")).await).await;
    drain(h.call(grpc("List")).await).await;
    assert_eq!(h.bodies.lock().unwrap()[0], "\0\0\0\0\x05hello");
    let events = h.events().await;
    assert_eq!(stages(&events), ["RequestReceived", "ResponseComplete"], "events are not recorded (None)");
    let e = &events[1];
    assert_eq!(e["level"], "Metadata", "RequestResponse is capped for gRPC");
    assert_eq!(e["requestURI"], "/navarch.apiserver.v1.ApiServer/Create");
    assert_eq!(e["verb"], "create");
    assert_eq!(
        e["objectRef"],
        json!({"resource": "pods", "namespace": "default", "name": "web", "apiVersion": "v1"})
    );
    assert_eq!(
        e["responseStatus"],
        json!({"metadata": {}, "status": "Failure", "message": "pods is forbidden", "reason": "Forbidden", "code": 403})
    );
    assert_eq!(
        e["annotations"],
        json!({"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""})
    );
    assert!(e.get("requestObject").is_none());
    assert_eq!(events[0]["stageTimestamp"], events[0]["requestReceivedTimestamp"]);
}

#[tokio::test]
async fn grpc_streams_and_requests_without_an_outcome() {
    let mut h = Harness::new(
        "rules:\n- level: Metadata\n  nonResourceURLs: [\"/navarch.apiserver.v1.ApiServer/*\"]\n",
        |_, _| {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", "11".parse().unwrap());
            trailers.insert("grpc-message", "expired".parse().unwrap());
            let frames = futures::stream::iter([
                Ok::<_, Infallible>(hyper::body::Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
                Ok(hyper::body::Frame::trailers(trailers)),
            ]);
            Response::builder()
                .header("content-type", "application/grpc")
                .body(ResponseBody::new(http_body_util::StreamBody::new(frames)))
                .unwrap()
        },
    );
    let mut req = request(Method::POST, "/navarch.apiserver.v1.ApiServer/Watch", "");
    req.headers_mut().insert("content-type", "application/grpc+proto".parse().unwrap());
    drain(h.call(req).await).await;
    let events = h.events().await;
    assert_eq!(stages(&events), ["RequestReceived", "ResponseStarted", "ResponseComplete"]);
    assert_eq!(events[0]["verb"], "post");
    assert!(events[0].get("objectRef").is_none());
    assert_eq!(events[1]["responseStatus"], json!({"metadata": {}, "code": 200}));
    assert_eq!(events[2]["responseStatus"]["reason"], "Expired", "from the trailers");
    assert_eq!(events[2]["responseStatus"]["code"], 410);
}

#[tokio::test]
async fn a_panic_is_recorded_and_goes_on() {
    let h = Harness::new("rules:\n- level: Metadata\n", |_, _| panic!("boom"));
    let mut service = h.service.clone();
    let task = tokio::spawn(async move { service.call(request(Method::GET, "/api/v1/pods", "")).await });
    let e = task.await.unwrap_err();
    assert!(e.is_panic());
    let events = h.events().await;
    assert_eq!(stages(&events), ["RequestReceived", "Panic"]);
    assert_eq!(
        events[1]["responseStatus"],
        json!({"metadata": {}, "status": "Failure", "message": "APIServer panic'd: boom", "reason": "InternalError", "code": 500})
    );
}

#[tokio::test]
async fn failed_authentication() {
    let policy = Policy::parse("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  users: [x]\n- level: RequestResponse\n").unwrap();
    let lines = Lines::default();
    let log = AuditLog::start(Box::new(lines.clone()), 10);
    let layer = AuditLayer::new(policy, log.sink());
    let req = request(Method::DELETE, "/api/v1/namespaces/default/pods/web", "");
    let id = layer.record_failed_authentication(&req, "Authentication failed, attempted: bearer").unwrap();
    log.close().await;
    let events: Vec<Value> =
        lines.0.lock().unwrap().iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e["auditID"].as_str(), e["stage"].as_str(), e["level"].as_str()),
        (Some(id.as_str()), Some("ResponseStarted"), Some("Metadata"))
    );
    assert_eq!(e["user"], json!({}));
    assert_eq!(e["verb"], "delete");
    assert_eq!(
        e["responseStatus"],
        json!({"metadata": {}, "message": "Authentication failed, attempted: bearer", "code": 401})
    );
}

#[test]
fn user_agents_are_cut() {
    let mut h = HeaderMap::new();
    assert_eq!(user_agent(&h), "");
    h.insert("user-agent", "é".repeat(600).parse().unwrap());
    let ua = user_agent(&h);
    assert!(ua.ends_with("...TRUNCATED") && ua.len() == 1024 + "...TRUNCATED".len(), "{}", ua.len());
    h.insert("user-agent", "a".repeat(1024).parse().unwrap());
    assert_eq!(user_agent(&h).len(), 1024);
}

#[tokio::test]
async fn fits_the_listener_and_the_doors() {
    fn listener_service<S>(_: &S)
    where
        S: tower_service::Service<
                Request<hyper::body::Incoming>,
                Response = Response<ResponseBody>,
                Error = Infallible,
            > + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
    }
    fn grpc_door<S: tower_service::Service<Request<ReplayBody<hyper::body::Incoming>>>>() {}
    let h = Harness::new("rules:\n- level: Metadata\n", |_, _| json_response(200, json!({})));
    listener_service(&h.service);
    grpc_door::<navarch_api::proto::api_server_server::ApiServerServer<crate::service::Service>>();
    // The REST door reads any body: `RestApi::handle` takes this one too.
    let _ = |rest: crate::rest::RestApi, req: Request<ReplayBody<hyper::body::Incoming>>| async move {
        rest.handle(req).await
    };
    h.events().await;
}
