//! What a REST request asks to do, for authorization: Kubernetes' `RequestInfoFactory`. The path alone
//! decides (not whether navarch serves the resource: an unknown resource is still authorized by name, so
//! a refused caller learns nothing about what exists).
//!
//! `/api/v1/...` is the core group, `/apis/<group>/<version>/...` the others; below them
//! `[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]`. Verbs: GET/HEAD → `get` with a name, `list`
//! without, `watch` with `watch=true`; POST → `create`; PUT → `update`; PATCH → `patch`; DELETE →
//! `delete` / `deletecollection`. `pods/exec`, `pods/attach` and `pods/portforward` need `create` whatever
//! the method (a WebSocket upgrade is a GET), as Kubernetes 1.30+ checks them. Anything else is a
//! non-resource request (`/version`, `/healthz`, `/openapi/v3`, ...) with the method as verb.

use http::Method;

use crate::authz::Attributes;
use crate::user_info::UserInfo;

/// Subresources that open a stream into a pod: always `create`.
const STREAMING: &[&str] = &["exec", "attach", "portforward"];

fn verb(method: &Method, named: bool, watch: bool) -> &'static str {
    match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if named => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "",
    }
}

/// The request's attributes. `query` is the raw query string.
pub fn rest_attributes(user: UserInfo, method: &Method, path: &str, query: Option<&str>) -> Attributes {
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Attributes::non_resource(user, method.as_str().to_ascii_lowercase(), path),
    };
    if rest.is_empty() {
        return Attributes::non_resource(user, method.as_str().to_ascii_lowercase(), path);
    }
    let (namespace, rest): (&str, &[&str]) = match rest {
        // `/api/v1/namespaces/<name>[/status]` is a Namespace itself.
        ["namespaces", name] => ("", &["namespaces", name][..]),
        ["namespaces", name, sub] if is_namespace_subresource(sub) => ("", &["namespaces", name, sub][..]),
        ["namespaces", ns, more @ ..] => (*ns, more),
        other => ("", other),
    };
    let (resource, name, subresource) = match rest {
        [resource] => (*resource, "", ""),
        [resource, name] => (*resource, *name, ""),
        [resource, name, sub, ..] => (*resource, *name, *sub),
        [] => return Attributes::non_resource(user, method.as_str().to_ascii_lowercase(), path),
    };
    let params: Vec<(String, String)> =
        query.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let watch = param("watch").is_some_and(|v| v == "true" || v == "1");
    let mut verb = verb(method, !name.is_empty(), watch).to_string();
    if STREAMING.contains(&subresource) && resource == "pods" {
        verb = "create".into();
    }
    // A list or watch of one object by `metadata.name=<x>` is authorized as that object (kubectl get -w).
    let mut name = name.to_string();
    if name.is_empty()
        && (verb == "list" || verb == "watch")
        && let Some(n) = param("fieldSelector").and_then(single_name)
    {
        name = n;
    }
    let mut attributes = Attributes::resource(user, verb, group, resource)
        .namespace(namespace)
        .name(name)
        .subresource(subresource)
        .api_version(version)
        .field_selector(param("fieldSelector").unwrap_or_default());
    attributes.path = path.to_string();
    attributes
}

fn is_namespace_subresource(sub: &str) -> bool {
    matches!(sub, "status" | "finalize")
}

/// `metadata.name=<x>` (or `==`) as the only term of a field selector.
fn single_name(selector: &str) -> Option<String> {
    if selector.contains(',') {
        return None;
    }
    let value =
        selector.strip_prefix("metadata.name==").or_else(|| selector.strip_prefix("metadata.name="))?;
    (!value.is_empty()).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(
        method: Method,
        path: &str,
        query: Option<&str>,
    ) -> (String, String, String, String, String, String, bool) {
        let a = rest_attributes(UserInfo::anonymous(), &method, path, query);
        (a.verb, a.api_group, a.namespace, a.resource, a.name, a.subresource, a.is_resource_request)
    }

    fn t(
        v: &str,
        g: &str,
        ns: &str,
        r: &str,
        n: &str,
        s: &str,
    ) -> (String, String, String, String, String, String, bool) {
        (v.into(), g.into(), ns.into(), r.into(), n.into(), s.into(), true)
    }

    #[test]
    fn kubernetes_request_info() {
        assert_eq!(attrs(Method::GET, "/api/v1/pods", None), t("list", "", "", "pods", "", ""));
        assert_eq!(
            attrs(Method::GET, "/api/v1/namespaces/a/pods", Some("watch=true")),
            t("watch", "", "a", "pods", "", "")
        );
        assert_eq!(
            attrs(Method::GET, "/api/v1/namespaces/a/pods/x", None),
            t("get", "", "a", "pods", "x", "")
        );
        assert_eq!(
            attrs(Method::GET, "/api/v1/namespaces/a/pods/x/log", None),
            t("get", "", "a", "pods", "x", "log")
        );
        assert_eq!(
            attrs(Method::GET, "/api/v1/namespaces/a/pods/x/exec", None),
            t("create", "", "a", "pods", "x", "exec")
        );
        assert_eq!(
            attrs(Method::POST, "/apis/apps/v1/namespaces/a/deployments", None),
            t("create", "apps", "a", "deployments", "", "")
        );
        assert_eq!(
            attrs(Method::PUT, "/apis/apps/v1/namespaces/a/deployments/d/scale", None),
            t("update", "apps", "a", "deployments", "d", "scale")
        );
        assert_eq!(
            attrs(Method::PATCH, "/api/v1/nodes/n/status", None),
            t("patch", "", "", "nodes", "n", "status")
        );
        assert_eq!(
            attrs(Method::DELETE, "/api/v1/namespaces/a/pods", None),
            t("deletecollection", "", "a", "pods", "", "")
        );
        assert_eq!(
            attrs(Method::DELETE, "/api/v1/namespaces/a", None),
            t("delete", "", "", "namespaces", "a", "")
        );
        assert_eq!(attrs(Method::GET, "/api/v1/namespaces/a", None), t("get", "", "", "namespaces", "a", ""));
        assert_eq!(
            attrs(Method::PUT, "/api/v1/namespaces/a/status", None),
            t("update", "", "", "namespaces", "a", "status")
        );
        assert_eq!(attrs(Method::GET, "/api/v1/namespaces", None), t("list", "", "", "namespaces", "", ""));
        assert_eq!(
            attrs(Method::GET, "/api/v1/namespaces/a/pods", Some("fieldSelector=metadata.name%3Dx&watch=1")),
            t("watch", "", "a", "pods", "x", "")
        );
        assert_eq!(
            attrs(Method::POST, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", None),
            t("create", "authorization.k8s.io", "", "selfsubjectaccessreviews", "", "")
        );
        let a = rest_attributes(UserInfo::anonymous(), &Method::GET, "/version", None);
        assert!(!a.is_resource_request);
        assert_eq!((a.verb.as_str(), a.path.as_str()), ("get", "/version"));
        for p in ["/api", "/apis", "/apis/apps", "/api/v1", "/apis/apps/v1", "/openapi/v3/apis/apps/v1", "/"]
        {
            assert!(
                !rest_attributes(UserInfo::anonymous(), &Method::GET, p, None).is_resource_request,
                "{p}"
            );
        }
    }
}
