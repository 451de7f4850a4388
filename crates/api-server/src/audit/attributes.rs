//! What the audit layer knows about a request: its attributes (Kubernetes' `authorizer.Attributes`:
//! verb, resource, namespace, name, or a non-resource path), who sent it and from where, and the
//! extension types through which the rest of the api-server tells the layer more.
//!
//! Contract with the other layers:
//! * the authentication layer (outside the audit layer) puts the effective [`UserInfo`] into the
//!   request's extensions and, when the request impersonates someone, [`ImpersonatedBy`] with the user
//!   who authenticated; the listener puts the peer's address ([`crate::authenticate::ConnectionInfo`],
//!   or a bare [`std::net::SocketAddr`]);
//! * the doors (REST, gRPC) report the request as they understood it and the authorization decision as
//!   a [`RequestOutcome`]: in the response's extensions, or through the [`OutcomeRecorder`] the audit
//!   layer puts into the request's extensions (gRPC error responses carry no extensions).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use http::{HeaderMap, Method, Uri};
use navarch_api::KINDS;

use crate::rest::path::{self, Target};
use crate::rest::query::Query;
use crate::user_info::UserInfo;

/// Kubernetes' request attributes, as the audit policy matches them and the event's `objectRef`
/// records them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestAttributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`; for a
    /// non-resource request the lower-cased HTTP method.
    pub verb: String,
    /// Whether the request is for an API resource; otherwise `path` is a non-resource URL.
    pub resource_request: bool,
    /// `""` for the core group.
    pub api_group: String,
    pub api_version: String,
    /// The plural: `pods`.
    pub resource: String,
    pub subresource: String,
    /// `""` for cluster-scoped objects and for requests across all namespaces.
    pub namespace: String,
    pub name: String,
    /// The request's path, without the query.
    pub path: String,
}

/// The user who authenticated a request that impersonates another: the request's [`UserInfo`] is
/// the impersonated user, this is who asked (the event's `user`; the policy matches this one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpersonatedBy(pub UserInfo);

/// Whether authorization allowed a request, and why (the event's `authorization.k8s.io/decision` and
/// `authorization.k8s.io/reason` annotations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub allowed: bool,
    pub reason: String,
}

/// What a door learned about a request: put into the response's extensions, or recorded through the
/// request's [`OutcomeRecorder`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOutcome {
    /// The request as the door understood it (the gRPC door learns the kind from the message); `None`
    /// keeps what the audit layer read from the URL. For a create, the door should name the object.
    pub attributes: Option<RequestAttributes>,
    pub authorization: Option<Authorization>,
    /// Further event annotations (admission and the like): key, value.
    pub annotations: Vec<(String, String)>,
}

/// Put into every audited request's extensions: a door records its [`RequestOutcome`] here when it
/// cannot put it into the response (gRPC errors). A `RequestOutcome` in the response wins.
#[derive(Debug, Clone, Default)]
pub struct OutcomeRecorder(Arc<Mutex<Option<RequestOutcome>>>);

impl OutcomeRecorder {
    pub fn record(&self, outcome: RequestOutcome) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(outcome);
    }

    pub(super) fn take(&self) -> Option<RequestOutcome> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

impl From<&crate::authz::Attributes> for RequestAttributes {
    fn from(a: &crate::authz::Attributes) -> RequestAttributes {
        RequestAttributes {
            verb: a.verb.clone(),
            resource_request: a.is_resource_request,
            api_group: a.api_group.clone(),
            api_version: a.api_version.clone(),
            resource: a.resource.clone(),
            subresource: a.subresource.clone(),
            namespace: a.namespace.clone(),
            name: a.name.clone(),
            path: a.path.clone(),
        }
    }
}

impl From<&crate::authz::Decision> for Authorization {
    fn from(d: &crate::authz::Decision) -> Authorization {
        Authorization { allowed: d.is_allowed(), reason: d.reason().to_string() }
    }
}

/// Verbs whose requests stream: their events include `ResponseStarted`.
const LONG_RUNNING_VERBS: [&str; 2] = ["watch", "proxy"];
const LONG_RUNNING_SUBRESOURCES: [&str; 5] = ["attach", "exec", "proxy", "log", "portforward"];
/// The gRPC methods that stream their responses.
const GRPC_STREAMING_METHODS: [&str; 3] = ["Watch", "PodLogs", "PodExec"];

impl RequestAttributes {
    /// A REST request's attributes, from its method and URL (as Kubernetes' `RequestInfoFactory`):
    /// paths [`crate::rest::path`] does not know are non-resource requests.
    pub fn from_rest(method: &Method, uri: &Uri) -> RequestAttributes {
        let path = uri.path().to_string();
        let target = path::parse(&path);
        let resource_verb = match *method {
            Method::POST => "create",
            Method::GET | Method::HEAD => "get",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "",
        };
        let mut a = match target {
            Ok(Target::Resource(r)) => {
                let (api_group, api_version) = split_api_version(r.info.api_version);
                let name = r.name.unwrap_or_default();
                // A Namespace is in itself.
                let namespace = match r.namespace {
                    Some(ns) => ns,
                    None if r.info.kind == "Namespace" => name.clone(),
                    None => String::new(),
                };
                RequestAttributes {
                    verb: resource_verb.to_string(),
                    resource_request: true,
                    api_group: api_group.to_string(),
                    api_version: api_version.to_string(),
                    resource: r.info.plural.to_string(),
                    subresource: r.subresource.unwrap_or_default(),
                    namespace,
                    name,
                    path,
                }
            }
            // The review kinds (SubjectAccessReview, TokenReview, ...): resources, only created.
            Ok(Target::Review(r)) => RequestAttributes {
                verb: resource_verb.to_string(),
                resource_request: true,
                api_group: r.resource.group.to_string(),
                api_version: split_api_version(r.resource.api_version).1.to_string(),
                resource: r.resource.plural.to_string(),
                namespace: r.namespace.unwrap_or_default(),
                path,
                ..RequestAttributes::default()
            },
            Ok(Target::CustomResourceDefinitions) => RequestAttributes {
                verb: resource_verb.to_string(),
                resource_request: true,
                api_group: "apiextensions.k8s.io".into(),
                api_version: "v1".into(),
                resource: "customresourcedefinitions".into(),
                path,
                ..RequestAttributes::default()
            },
            _ => {
                return RequestAttributes {
                    verb: method.as_str().to_ascii_lowercase(),
                    path,
                    ..RequestAttributes::default()
                };
            }
        };
        if a.name.is_empty() && a.verb == "get" {
            let query = Query::parse(uri.query());
            a.verb = if query.bool("watch") { "watch" } else { "list" }.into();
            if let Some(name) = query.get("fieldSelector").and_then(exact_name) {
                a.name = name.to_string();
            }
        }
        if a.name.is_empty() && a.verb == "delete" {
            a.verb = "deletecollection".into();
        }
        a
    }

    /// A gRPC request before its door reads the message: a non-resource request for the method's
    /// path (`/navarch.apiserver.v1.ApiServer/Create`), verb `post`.
    pub fn from_grpc(method: &Method, uri: &Uri) -> RequestAttributes {
        RequestAttributes {
            verb: method.as_str().to_ascii_lowercase(),
            path: uri.path().to_string(),
            ..RequestAttributes::default()
        }
    }

    /// Watches, proxies and the streaming pod subresources: Kubernetes' long-running requests.
    pub fn is_long_running(&self) -> bool {
        LONG_RUNNING_VERBS.contains(&self.verb.as_str())
            || (self.resource_request && LONG_RUNNING_SUBRESOURCES.contains(&self.subresource.as_str()))
    }

    /// Requests whose bodies hold credentials: Secrets (and their subresources), ServiceAccount
    /// tokens, TokenReviews. Their bodies are never logged, whatever the policy says.
    pub fn carries_secrets(&self) -> bool {
        self.resource_request
            && (self.resource == "secrets"
                || self.resource == "tokenreviews"
                || (self.resource == "serviceaccounts" && self.subresource == "token"))
    }

    /// The kind the attributes name, when navarch serves it.
    pub fn kind(&self) -> Option<&'static str> {
        let api_version = if self.api_group.is_empty() {
            self.api_version.clone()
        } else {
            format!("{}/{}", self.api_group, self.api_version)
        };
        KINDS.iter().find(|k| k.api_version == api_version && k.plural == self.resource).map(|k| k.kind)
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// The name a field selector pins (`metadata.name=web`), as Kubernetes takes it for a list's name.
fn exact_name(selector: &str) -> Option<&str> {
    selector.split(',').find_map(|term| {
        let value = term.trim().strip_prefix("metadata.name")?;
        let value = value.strip_prefix("==").or_else(|| value.strip_prefix('='))?;
        let valid = !value.is_empty() && value != "." && value != ".." && !value.contains(['/', '%']);
        valid.then_some(value)
    })
}

/// Whether a request goes to the gRPC door (the front door routes the same way).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// Whether a gRPC method (`/package.Service/Method`) streams its responses.
pub fn grpc_streams(uri: &Uri) -> bool {
    uri.path().rsplit('/').next().is_some_and(|m| GRPC_STREAMING_METHODS.contains(&m))
}

/// The event's `sourceIPs`, as Kubernetes lists them: `X-Forwarded-For`'s addresses, `X-Real-Ip` if not
/// among them, then the peer unless it repeats the last.
pub fn source_ips(headers: &HeaderMap, peer: Option<SocketAddr>) -> Vec<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut ips: Vec<IpAddr> = header("x-forwarded-for")
        .split(',')
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect();
    if let Ok(ip) = header("x-real-ip").trim().parse::<IpAddr>() {
        let ip = ip.to_canonical();
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    if let Some(peer) = peer {
        let ip = peer.ip().to_canonical();
        if ips.last() != Some(&ip) {
            ips.push(ip);
        }
    }
    ips.iter().map(IpAddr::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rest(method: Method, uri: &str) -> RequestAttributes {
        RequestAttributes::from_rest(&method, &uri.parse().unwrap())
    }

    #[test]
    fn resource_verbs() {
        let cases = [
            (Method::GET, "/api/v1/namespaces/default/pods", "list"),
            (Method::GET, "/api/v1/pods?watch=true", "watch"),
            (Method::GET, "/api/v1/pods?watch=0", "list"),
            (Method::GET, "/api/v1/namespaces/default/pods/web", "get"),
            (Method::HEAD, "/api/v1/namespaces/default/pods/web", "get"),
            (Method::POST, "/api/v1/namespaces/default/pods", "create"),
            (Method::PUT, "/api/v1/namespaces/default/pods/web", "update"),
            (Method::PATCH, "/api/v1/namespaces/default/pods/web", "patch"),
            (Method::DELETE, "/api/v1/namespaces/default/pods/web", "delete"),
            (Method::DELETE, "/api/v1/namespaces/default/pods", "deletecollection"),
            (Method::POST, "/api/v1/namespaces/default/pods/web/exec", "create"),
            (Method::OPTIONS, "/api/v1/namespaces/default/pods/web", ""),
        ];
        for (method, uri, verb) in cases {
            let a = rest(method.clone(), uri);
            assert!(a.resource_request, "{method} {uri}");
            assert_eq!(a.verb, verb, "{method} {uri}");
        }
    }

    #[test]
    fn resource_fields() {
        let a = rest(Method::PUT, "/apis/apps/v1/namespaces/ns1/deployments/web/scale");
        assert_eq!(
            a,
            RequestAttributes {
                verb: "update".into(),
                resource_request: true,
                api_group: "apps".into(),
                api_version: "v1".into(),
                resource: "deployments".into(),
                subresource: "scale".into(),
                namespace: "ns1".into(),
                name: "web".into(),
                path: "/apis/apps/v1/namespaces/ns1/deployments/web/scale".into(),
            }
        );
        let a = rest(Method::GET, "/api/v1/nodes/node-1");
        assert_eq!((a.api_group.as_str(), a.namespace.as_str(), a.name.as_str()), ("", "", "node-1"));
        let a = rest(Method::GET, "/api/v1/namespaces/kube-system");
        assert_eq!(
            (a.resource.as_str(), a.namespace.as_str(), a.name.as_str()),
            ("namespaces", "kube-system", "kube-system")
        );
        let a = rest(Method::GET, "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dweb");
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("list", "web"));
        let a =
            rest(Method::GET, "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1,metadata.name%3D%3Dweb&watch=1");
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", "web"));
        let a = rest(Method::GET, "/api/v1/pods?fieldSelector=metadata.name!%3Dweb");
        assert_eq!(a.name, "");
        assert_eq!(a.kind(), Some("Pod"));
        let a = rest(Method::GET, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions");
        assert_eq!((a.resource_request, a.verb.as_str(), a.kind()), (true, "list", None));
    }

    #[test]
    fn non_resource_requests() {
        for (method, uri, verb) in [
            (Method::GET, "/version", "get"),
            (Method::GET, "/apis/apps/v1", "get"),
            (Method::GET, "/healthz?verbose", "get"),
            (Method::POST, "/api/v1/nosuchkind", "post"),
            (Method::GET, "/openapi/v3/apis/apps/v1", "get"),
        ] {
            let a = rest(method, uri);
            assert!(!a.resource_request, "{uri}");
            assert_eq!((a.verb.as_str(), a.path.as_str()), (verb, uri.split('?').next().unwrap()), "{uri}");
            assert_eq!(a.resource, "");
        }
        let grpc = RequestAttributes::from_grpc(
            &Method::POST,
            &"/navarch.apiserver.v1.ApiServer/Create".parse().unwrap(),
        );
        assert_eq!((grpc.resource_request, grpc.verb.as_str()), (false, "post"));
    }

    #[test]
    fn long_running_and_secrets() {
        assert!(rest(Method::GET, "/api/v1/pods?watch=true").is_long_running());
        assert!(rest(Method::GET, "/api/v1/namespaces/d/pods/web/log").is_long_running());
        assert!(rest(Method::GET, "/api/v1/namespaces/d/pods/web/exec").is_long_running());
        assert!(rest(Method::POST, "/api/v1/namespaces/d/pods/web/portforward").is_long_running());
        assert!(!rest(Method::GET, "/api/v1/pods").is_long_running());
        assert!(
            !rest(Method::GET, "/healthz/log").is_long_running(),
            "non-resource paths have no subresource"
        );
        assert!(rest(Method::GET, "/api/v1/namespaces/d/secrets/s").carries_secrets());
        assert!(rest(Method::GET, "/api/v1/secrets").carries_secrets());
        assert!(!rest(Method::GET, "/api/v1/namespaces/d/serviceaccounts/s").carries_secrets());
        let token = RequestAttributes {
            resource_request: true,
            resource: "serviceaccounts".into(),
            subresource: "token".into(),
            ..RequestAttributes::default()
        };
        assert!(token.carries_secrets());
        assert!(
            !RequestAttributes { resource: "secrets".into(), ..RequestAttributes::default() }
                .carries_secrets()
        );
        assert!(grpc_streams(&"/navarch.apiserver.v1.ApiServer/Watch".parse().unwrap()));
        assert!(!grpc_streams(&"/navarch.apiserver.v1.ApiServer/List".parse().unwrap()));
    }

    #[test]
    fn source_ip_order() {
        let peer: SocketAddr = "10.0.0.9:5555".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(source_ips(&h, Some(peer)), ["10.0.0.9"]);
        assert!(source_ips(&h, None).is_empty());
        h.insert("x-forwarded-for", "1.1.1.1, bogus, 2.2.2.2".parse().unwrap());
        assert_eq!(source_ips(&h, Some(peer)), ["1.1.1.1", "2.2.2.2", "10.0.0.9"]);
        h.insert("x-real-ip", "2.2.2.2".parse().unwrap());
        assert_eq!(
            source_ips(&h, Some(peer)),
            ["1.1.1.1", "2.2.2.2", "10.0.0.9"],
            "x-real-ip already listed"
        );
        h.insert("x-real-ip", "3.3.3.3".parse().unwrap());
        assert_eq!(source_ips(&h, Some(peer)), ["1.1.1.1", "2.2.2.2", "3.3.3.3", "10.0.0.9"]);
        let last: SocketAddr = "3.3.3.3:1".parse().unwrap();
        assert_eq!(source_ips(&h, Some(last)), ["1.1.1.1", "2.2.2.2", "3.3.3.3"], "the peer is not repeated");
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:80".parse().unwrap();
        assert_eq!(source_ips(&HeaderMap::new(), Some(mapped)), ["10.1.2.3"]);
        let v6: SocketAddr = "[fd00::1]:80".parse().unwrap();
        assert_eq!(source_ips(&HeaderMap::new(), Some(v6)), ["fd00::1"]);
    }

    #[test]
    fn outcome_recorder() {
        let r = OutcomeRecorder::default();
        assert_eq!(r.take(), None);
        let outcome = RequestOutcome {
            authorization: Some(Authorization { allowed: true, reason: "rbac".into() }),
            ..RequestOutcome::default()
        };
        r.clone().record(outcome.clone());
        assert_eq!(r.take(), Some(outcome));
        assert_eq!(r.take(), None);
    }

    #[test]
    fn from_authorization_types() {
        let authz = crate::authz::Attributes::resource(UserInfo::default(), "get", "apps", "deployments")
            .namespace("ns")
            .name("web")
            .subresource("scale")
            .api_version("v1");
        let a = RequestAttributes::from(&authz);
        assert_eq!(
            (
                a.verb.as_str(),
                a.resource_request,
                a.api_group.as_str(),
                a.resource.as_str(),
                a.subresource.as_str()
            ),
            ("get", true, "apps", "deployments", "scale")
        );
        assert_eq!((a.namespace.as_str(), a.name.as_str(), a.api_version.as_str()), ("ns", "web", "v1"));
        let allow = crate::authz::Decision::Allow("RBAC: allowed".into());
        assert_eq!(
            Authorization::from(&allow),
            Authorization { allowed: true, reason: "RBAC: allowed".into() }
        );
        let none = crate::authz::Decision::NoOpinion(String::new());
        assert_eq!(Authorization::from(&none), Authorization { allowed: false, reason: String::new() });
    }
}
