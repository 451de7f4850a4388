//! The refusal of an unauthorized request: Kubernetes' `responsewriters.Forbidden` — a `403 Forbidden`
//! `Status` whose message names the user, the verb and what was asked for
//! (`pods "web" is forbidden: User "alice" cannot get resource "pods" in API group "" in the namespace
//! "default"`), with the authorizer's reason appended.

use super::attributes::Attributes;
use super::go_format;

/// What a `metav1.Status` with reason `Forbidden` and code 403 carries: the message, and the details
/// (`group`, `kind` = the resource — Kubernetes puts the resource there —, `name`). Non-resource
/// requests have empty details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForbiddenStatus {
    pub message: String,
    pub group: String,
    pub kind: String,
    pub name: String,
}

/// The Status refusing `a`; `reason` is the authorizers' reason (appended after `: ` when non-empty).
pub fn forbidden(a: &Attributes, reason: &str) -> ForbiddenStatus {
    let mut detail = sanitize(&forbidden_message(a));
    if !reason.is_empty() {
        detail.push_str(": ");
        detail.push_str(reason);
    }
    ForbiddenStatus {
        message: forbidden_status_message(&a.api_group, &a.resource, &a.name, &detail),
        group: a.api_group.clone(),
        kind: a.resource.clone(),
        name: a.name.clone(),
    }
}

/// `apierrors.NewForbidden(groupResource, name, err)`'s message: `forbidden: <err>` without a
/// resource, `<resource>[.<group>] is forbidden: <err>`, or `<resource>[.<group>] "<name>" is
/// forbidden: <err>`.
pub fn forbidden_status_message(group: &str, resource: &str, name: &str, err: &str) -> String {
    if group.is_empty() && resource.is_empty() {
        return format!("forbidden: {err}");
    }
    let mut qualified = resource.to_string();
    if !group.is_empty() {
        qualified.push('.');
        qualified.push_str(group);
    }
    if name.is_empty() {
        format!("{qualified} is forbidden: {err}")
    } else {
        format!("{qualified} {} is forbidden: {err}", go_format::quote(name))
    }
}

/// `User "alice" cannot list resource "pods" in API group "" in the namespace "default"`, `... at the
/// cluster scope`, `... cannot get resource "pods/log" ...`, or `User "x" cannot get path "/foo"`.
pub fn forbidden_message(a: &Attributes) -> String {
    let user = go_format::quote(&a.user.name);
    if !a.is_resource_request {
        return format!("User {user} cannot {} path {}", a.verb, go_format::quote(&a.path));
    }
    let mut resource = a.resource.clone();
    if !a.subresource.is_empty() {
        resource.push('/');
        resource.push_str(&a.subresource);
    }
    let what = format!(
        "User {user} cannot {} resource {} in API group {}",
        a.verb,
        go_format::quote(&resource),
        go_format::quote(&a.api_group)
    );
    if a.namespace.is_empty() {
        format!("{what} at the cluster scope")
    } else {
        format!("{what} in the namespace {}", go_format::quote(&a.namespace))
    }
}

/// Kubernetes escapes `&`, `<` and `>` so the message never looks like HTML.
fn sanitize(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user_info::UserInfo;

    fn alice() -> UserInfo {
        UserInfo { name: "alice".into(), groups: vec!["system:authenticated".into()], ..UserInfo::default() }
    }

    #[test]
    fn namespaced_list() {
        let a = Attributes::resource(alice(), "list", "", "pods").namespace("default");
        let f = forbidden(&a, "");
        assert_eq!(
            f.message,
            r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default""#
        );
        assert_eq!((f.group.as_str(), f.kind.as_str(), f.name.as_str()), ("", "pods", ""));
    }

    #[test]
    fn named_object_in_a_group_at_cluster_scope() {
        let a = Attributes::resource(alice(), "delete", "rbac.authorization.k8s.io", "clusterroles")
            .name("admin");
        assert_eq!(
            forbidden(&a, "").message,
            r#"clusterroles.rbac.authorization.k8s.io "admin" is forbidden: User "alice" cannot delete resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope"#
        );
    }

    #[test]
    fn subresource() {
        let a =
            Attributes::resource(alice(), "get", "", "pods").namespace("ns").name("web").subresource("log");
        let f = forbidden(&a, "");
        assert_eq!(
            f.message,
            r#"pods "web" is forbidden: User "alice" cannot get resource "pods/log" in API group "" in the namespace "ns""#
        );
        assert_eq!(f.kind, "pods", "details name the resource, not the subresource");
    }

    #[test]
    fn non_resource() {
        let a = Attributes::non_resource(alice(), "get", "/foo");
        let f = forbidden(&a, "");
        assert_eq!(f.message, r#"forbidden: User "alice" cannot get path "/foo""#);
        assert_eq!((f.group.as_str(), f.kind.as_str(), f.name.as_str()), ("", "", ""));
    }

    #[test]
    fn reason_is_appended_unquoted() {
        let a = Attributes::resource(alice(), "get", "apps", "deployments").namespace("ns");
        let f = forbidden(&a, r#"RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found"#);
        assert_eq!(
            f.message,
            r#"deployments.apps is forbidden: User "alice" cannot get resource "deployments" in API group "apps" in the namespace "ns": RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found"#
        );
    }

    #[test]
    fn hostile_names_are_quoted_and_html_escaped() {
        let user = UserInfo { name: "<b>\"x\"\n".into(), ..UserInfo::default() };
        let a = Attributes::resource(user, "get", "", "pods").namespace("a&b");
        assert_eq!(
            forbidden(&a, "").message,
            r#"pods is forbidden: User "&lt;b&gt;\"x\"\n" cannot get resource "pods" in API group "" in the namespace "a&amp;b""#
        );
        let anonymous = Attributes::non_resource(UserInfo::default(), "post", "/x<y");
        assert_eq!(forbidden(&anonymous, "").message, r#"forbidden: User "" cannot post path "/x&lt;y""#);
    }
}
