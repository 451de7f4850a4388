//! Kubernetes' URL layout: which endpoint a request path names.
//!
//! `/api/v1/...` is the core group, `/apis/<group>/<version>/...` the others. Below a group-version:
//! `<plural>`, `<plural>/<name>[/<subresource>]`, and for namespaced kinds
//! `namespaces/<ns>/<plural>[/<name>[/<subresource>]]` (`/api/v1/namespaces/<name>[/status]` is a
//! Namespace itself).

use navarch_api::KindInfo;
use navarch_api::versions::all_kinds;

use super::reviews;

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Version,
    /// `/api`: the core group's versions (or aggregated discovery of the core group).
    CoreGroup,
    /// `/apis`: every other group (or their aggregated discovery).
    Groups,
    /// `/apis/<group>`: one group and its versions.
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`: the resources of a group-version.
    GroupVersion(String),
    /// `/openapi/v2`: served empty (navarch's schemas are in v3; kubectl falls back to v2 only for kinds
    /// v3 does not describe, and then needs an answer it can parse).
    OpenApiV2,
    /// `/openapi/v3`: the list of OpenAPI documents.
    OpenApiIndex,
    /// `/openapi/v3/<api/v1 | apis/<group>/<version>>`.
    OpenApiDocument(String),
    Resource(ResourcePath),
    /// A review kind (`/apis/authorization.k8s.io/v1/selfsubjectaccessreviews`, ...): only POSTed.
    Review(super::reviews::ReviewPath),
    /// `/apis/apiextensions.k8s.io/v1/customresourcedefinitions`: navarch has no custom resources, and
    /// says so with an empty list (kubectl's validation asks it for kinds it does not know).
    CustomResourceDefinitions,
}

/// A collection, an object or a subresource of a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub info: &'static KindInfo,
    /// For namespaced kinds: the namespace in the path; `None` for all namespaces (or cluster-scoped).
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Why a path names nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound;

/// The kind `plural` names in `group_version`: a stored kind, or one served there by conversion (the
/// returned info's `api_version` is then that version's, which the request's decoding and encoding follow).
fn kind_in(group_version: &str, plural: &str) -> Option<&'static KindInfo> {
    all_kinds().find(|k| k.api_version == group_version && k.plural == plural)
}

/// Whether navarch serves any kind in `group_version` (`v1`, `apps/v1`, `autoscaling/v1`).
pub fn serves_group_version(group_version: &str) -> bool {
    all_kinds().any(|k| k.api_version == group_version)
}

/// Parses a request path (without the query string).
pub fn parse(path: &str) -> Result<Target, NotFound> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match segments.as_slice() {
        ["version"] => Ok(Target::Version),
        ["api"] => Ok(Target::CoreGroup),
        ["apis"] => Ok(Target::Groups),
        ["openapi", "v2"] => Ok(Target::OpenApiV2),
        ["openapi", "v3"] => Ok(Target::OpenApiIndex),
        ["openapi", "v3", rest @ ..] if !rest.is_empty() => Ok(Target::OpenApiDocument(rest.join("/"))),
        ["apis", group]
            if all_kinds().any(|k| k.api_version.starts_with(&format!("{group}/")))
                || reviews::REVIEWS.iter().any(|r| r.group == *group) =>
        {
            Ok(Target::Group(group.to_string()))
        }
        ["apis", "apiextensions.k8s.io", "v1", "customresourcedefinitions"] => {
            Ok(Target::CustomResourceDefinitions)
        }
        ["apis", group, version, rest @ ..]
            if reviews::serves_group_version(&format!("{group}/{version}")) =>
        {
            review(format!("{group}/{version}"), rest)
        }
        ["api", "v1", rest @ ..] => below_group_version("v1".to_string(), rest),
        ["apis", group, version, rest @ ..] => below_group_version(format!("{group}/{version}"), rest),
        _ => Err(NotFound),
    }
}

/// Below a review group-version: `<plural>`, or `namespaces/<ns>/<plural>` for the namespaced one.
fn review(gv: String, rest: &[&str]) -> Result<Target, NotFound> {
    let (namespace, plural) = match rest {
        [] => return Ok(Target::GroupVersion(gv)),
        [plural] => (None, *plural),
        ["namespaces", ns, plural] if !ns.is_empty() => (Some(ns.to_string()), *plural),
        _ => return Err(NotFound),
    };
    let resource = reviews::find(&gv, plural).ok_or(NotFound)?;
    if resource.namespaced != namespace.is_some() {
        return Err(NotFound);
    }
    Ok(Target::Review(reviews::ReviewPath { resource, namespace }))
}

fn below_group_version(gv: String, rest: &[&str]) -> Result<Target, NotFound> {
    if !serves_group_version(&gv) {
        return Err(NotFound);
    }
    let resource = |plural: &str, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        let info = kind_in(&gv, plural).ok_or(NotFound)?;
        if namespace.is_some() && !info.namespaced {
            return Err(NotFound);
        }
        if name.is_some_and(str::is_empty) {
            return Err(NotFound);
        }
        Ok(Target::Resource(ResourcePath {
            info,
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            subresource: sub.map(str::to_string),
        }))
    };
    match rest {
        [] => Ok(Target::GroupVersion(gv)),
        // A Namespace's status (and finalize) subresource, as opposed to a collection in it.
        ["namespaces", name, sub] if gv == "v1" && kind_in(&gv, sub).is_none() => {
            resource("namespaces", None, Some(name), Some(sub))
        }
        ["namespaces", ns, plural] => resource(plural, Some(ns), None, None),
        ["namespaces", ns, plural, name] => resource(plural, Some(ns), Some(name), None),
        ["namespaces", ns, plural, name, sub] => resource(plural, Some(ns), Some(name), Some(sub)),
        [plural] => resource(plural, None, None, None),
        [plural, name] => resource(plural, None, Some(name), None),
        [plural, name, sub] => resource(plural, None, Some(name), Some(sub)),
        _ => Err(NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse(path) {
            Ok(Target::Resource(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn discovery_paths() {
        assert_eq!(parse("/version"), Ok(Target::Version));
        assert_eq!(parse("/api"), Ok(Target::CoreGroup));
        assert_eq!(parse("/apis/"), Ok(Target::Groups));
        assert_eq!(parse("/apis/apps"), Ok(Target::Group("apps".into())));
        assert_eq!(parse("/api/v1"), Ok(Target::GroupVersion("v1".into())));
        assert_eq!(parse("/apis/apps/v1"), Ok(Target::GroupVersion("apps/v1".into())));
        assert_eq!(parse("/apis/apps/v2"), Err(NotFound));
        assert_eq!(parse("/apis/nope"), Err(NotFound));
        assert_eq!(parse("/openapi/v3"), Ok(Target::OpenApiIndex));
        assert_eq!(parse("/openapi/v3/apis/apps/v1"), Ok(Target::OpenApiDocument("apis/apps/v1".into())));
        assert_eq!(parse("/"), Err(NotFound));
    }

    #[test]
    fn resource_paths() {
        let r = res("/api/v1/namespaces/default/pods");
        assert_eq!((r.info.kind, r.namespace.as_deref(), r.name.as_deref()), ("Pod", Some("default"), None));
        let r = res("/api/v1/pods");
        assert_eq!((r.info.kind, r.namespace), ("Pod", None));
        let r = res("/api/v1/namespaces/default/pods/web/status");
        assert_eq!((r.name.as_deref(), r.subresource.as_deref()), (Some("web"), Some("status")));
        let r = res("/apis/apps/v1/namespaces/ns1/deployments/web/scale");
        assert_eq!((r.info.kind, r.subresource.as_deref()), ("Deployment", Some("scale")));
        let r = res("/api/v1/nodes/node-1");
        assert_eq!((r.info.kind, r.name.as_deref()), ("Node", Some("node-1")));
        let r = res("/api/v1/namespaces/kube-system");
        assert_eq!((r.info.kind, r.namespace, r.name.as_deref()), ("Namespace", None, Some("kube-system")));
        let r = res("/api/v1/namespaces/kube-system/status");
        assert_eq!((r.info.kind, r.subresource.as_deref()), ("Namespace", Some("status")));
        let r = res("/api/v1/namespaces");
        assert_eq!((r.info.kind, r.name), ("Namespace", None));
    }

    #[test]
    fn review_paths() {
        let review = |path: &str| match parse(path) {
            Ok(Target::Review(r)) => (r.resource.kind, r.namespace),
            other => panic!("{path}: {other:?}"),
        };
        assert_eq!(
            review("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
            ("SelfSubjectAccessReview", None)
        );
        assert_eq!(review("/apis/authentication.k8s.io/v1/tokenreviews/"), ("TokenReview", None));
        assert_eq!(
            review("/apis/authorization.k8s.io/v1/namespaces/dev/localsubjectaccessreviews"),
            ("LocalSubjectAccessReview", Some("dev".into()))
        );
        assert_eq!(parse("/apis/authorization.k8s.io/v1/localsubjectaccessreviews"), Err(NotFound));
        assert_eq!(
            parse("/apis/authorization.k8s.io/v1/namespaces/dev/selfsubjectaccessreviews"),
            Err(NotFound)
        );
        assert_eq!(parse("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews/x"), Err(NotFound));
        assert_eq!(parse("/apis/authorization.k8s.io"), Ok(Target::Group("authorization.k8s.io".into())));
        assert_eq!(
            parse("/apis/authentication.k8s.io/v1"),
            Ok(Target::GroupVersion("authentication.k8s.io/v1".into()))
        );
        let r = res("/api/v1/namespaces/default/serviceaccounts/default/token");
        assert_eq!((r.info.kind, r.subresource.as_deref()), ("ServiceAccount", Some("token")));
    }

    #[test]
    fn wrong_group_or_scope_is_not_found() {
        assert_eq!(parse("/api/v1/deployments"), Err(NotFound));
        assert_eq!(parse("/apis/apps/v1/pods"), Err(NotFound));
        assert_eq!(parse("/api/v1/namespaces/default/nodes"), Err(NotFound));
        assert_eq!(parse("/api/v1/namespaces/default/pods/a/b/c"), Err(NotFound));
    }
}
