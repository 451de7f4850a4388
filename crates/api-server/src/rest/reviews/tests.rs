//! The review kinds' answers and refusals, over an RBAC authorizer with a few bindings: Kubernetes'
//! validation messages, decisions for the caller and for another user, rules reviews, TokenReviews of
//! tokens that do and do not authenticate, and the JSON shape of the answers.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use navarch_api::v1::{
    ExtraValue, FieldSelectorAttributes, LocalSubjectAccessReview, NonResourceAttributes, ObjectMeta,
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec, SelfSubjectRulesReview,
    SelfSubjectRulesReviewSpec, SubjectAccessReview, SubjectAccessReviewSpec, TokenReview, TokenReviewSpec,
};
use serde_json::json;

use super::*;
use crate::authorization::Authorization;
use crate::authz::RbacAuthorizer;
use crate::authz::policy::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleBinding, RoleRef, Subject};
use crate::user_info::UserInfo;

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..UserInfo::default()
    }
}

/// Admins (group `admins`) may do everything; alice may read pods in `dev`.
fn authorization() -> Authorization {
    let rbac = Arc::new(RbacAuthorizer::new());
    rbac.upsert_cluster_role(ClusterRole {
        name: "cluster-admin".into(),
        rules: vec![PolicyRule::resource(&["*"], &["*"], &["*"]), PolicyRule::non_resource(&["*"], &["*"])],
        ..ClusterRole::default()
    });
    rbac.upsert_cluster_role(ClusterRole {
        name: "pod-reader".into(),
        rules: vec![PolicyRule::resource(&["get", "list"], &[""], &["pods"])],
        ..ClusterRole::default()
    });
    rbac.upsert_cluster_role_binding(ClusterRoleBinding {
        name: "admins".into(),
        role_ref: RoleRef::cluster_role("cluster-admin"),
        subjects: vec![Subject::group("admins")],
        ..ClusterRoleBinding::default()
    });
    rbac.upsert_role_binding(RoleBinding {
        namespace: "dev".into(),
        name: "alice-reads".into(),
        role_ref: RoleRef::cluster_role("pod-reader"),
        subjects: vec![Subject::user("alice")],
        ..RoleBinding::default()
    });
    Authorization::new(rbac, Vec::new())
}

fn pods(verb: &str, namespace: &str) -> ResourceAttributes {
    ResourceAttributes {
        verb: verb.into(),
        resource: "pods".into(),
        namespace: namespace.into(),
        ..ResourceAttributes::default()
    }
}

fn ssar(
    resource: Option<ResourceAttributes>,
    non_resource: Option<NonResourceAttributes>,
) -> SelfSubjectAccessReview {
    SelfSubjectAccessReview {
        spec: Some(SelfSubjectAccessReviewSpec {
            resource_attributes: resource,
            non_resource_attributes: non_resource,
        }),
        ..SelfSubjectAccessReview::default()
    }
}

#[test]
fn self_subject_access_reviews_decide_for_the_caller() {
    let authz = authorization();
    let admin = user("admin", &["admins"]);
    let r = access::self_subject_access_review(&authz, &admin, ssar(Some(pods("create", "default")), None))
        .unwrap();
    let status = r.status.unwrap();
    assert!(status.allowed && !status.denied);
    assert_eq!(
        status.reason,
        r#"RBAC: allowed by ClusterRoleBinding "admins" of ClusterRole "cluster-admin" to Group "admins""#
    );

    let alice = user("alice", &["system:authenticated"]);
    let yes =
        access::self_subject_access_review(&authz, &alice, ssar(Some(pods("get", "dev")), None)).unwrap();
    assert!(yes.status.unwrap().allowed);
    let no =
        access::self_subject_access_review(&authz, &alice, ssar(Some(pods("create", "dev")), None)).unwrap();
    let status = no.status.unwrap();
    assert!(!status.allowed && !status.denied && status.reason.is_empty());
    let url = NonResourceAttributes { path: "/healthz".into(), verb: "get".into() };
    let no = access::self_subject_access_review(&authz, &alice, ssar(None, Some(url))).unwrap();
    assert!(!no.status.unwrap().allowed);
}

#[test]
fn access_reviews_need_exactly_one_kind_of_attributes() {
    let authz = authorization();
    let admin = user("admin", &["admins"]);
    let e = access::self_subject_access_review(&authz, &admin, ssar(None, None)).unwrap_err();
    assert_eq!(e.code, http::StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        e.message,
        r#"SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified"#
    );
    let details = e.details.unwrap();
    assert_eq!(
        (details.group.as_str(), details.kind.as_str()),
        ("authorization.k8s.io", "SelfSubjectAccessReview")
    );
    assert_eq!(details.causes[0].field, "spec.resourceAttributes");
    assert_eq!(details.causes[0].reason, "FieldValueInvalid");

    let url = NonResourceAttributes { path: "/x".into(), verb: "get".into() };
    let e = access::self_subject_access_review(&authz, &admin, ssar(Some(pods("get", "")), Some(url)))
        .unwrap_err();
    assert_eq!(
        e.message,
        r#"SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.nonResourceAttributes: Invalid value: authorization.NonResourceAttributes{Path:"/x", Verb:"get"}: cannot be specified in combination with resourceAttributes"#
    );

    let mut named = ssar(Some(pods("get", "")), None);
    named.metadata = Some(ObjectMeta { name: "x".into(), ..ObjectMeta::default() });
    let e = access::self_subject_access_review(&authz, &admin, named).unwrap_err();
    assert!(
        e.message.contains(r#"metadata: Invalid value: v1.ObjectMeta{Name:"x", GenerateName:"""#),
        "{}",
        e.message
    );
    assert!(e.message.ends_with(": must be empty"), "{}", e.message);
}

#[test]
fn subject_access_reviews_decide_for_the_named_user() {
    let authz = authorization();
    let review = |user: &str, groups: &[&str], attrs: ResourceAttributes| SubjectAccessReview {
        spec: Some(SubjectAccessReviewSpec {
            resource_attributes: Some(attrs),
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..SubjectAccessReviewSpec::default()
        }),
        ..SubjectAccessReview::default()
    };
    let r = access::subject_access_review(&authz, review("alice", &[], pods("list", "dev"))).unwrap();
    let status = r.status.unwrap();
    assert!(status.allowed);
    assert_eq!(
        status.reason,
        r#"RBAC: allowed by RoleBinding "alice-reads/dev" of ClusterRole "pod-reader" to User "alice""#
    );
    let r = access::subject_access_review(&authz, review("alice", &[], pods("list", "prod"))).unwrap();
    assert!(!r.status.unwrap().allowed);
    let r = access::subject_access_review(&authz, review("", &["admins"], pods("delete", "prod"))).unwrap();
    assert!(r.status.unwrap().allowed, "a group alone is a subject");

    let e = access::subject_access_review(&authz, review("", &[], pods("get", "dev"))).unwrap_err();
    assert_eq!(
        e.message,
        r#"SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": at least one of user or group must be specified"#
    );
    // Extra is carried to the authorizer (RBAC ignores it) and the answer echoes the spec.
    let mut with_extra = review("alice", &[], pods("get", "dev"));
    if let Some(spec) = with_extra.spec.as_mut() {
        spec.extra.insert("scopes".into(), ExtraValue { items: vec!["a".into()] });
    }
    let r = access::subject_access_review(&authz, with_extra.clone()).unwrap();
    assert_eq!(r.spec, with_extra.spec);
}

#[test]
fn local_subject_access_reviews_stay_in_their_namespace() {
    let authz = authorization();
    let review = |meta_ns: &str, attrs: Option<ResourceAttributes>, url: Option<NonResourceAttributes>| {
        LocalSubjectAccessReview {
            metadata: Some(ObjectMeta { namespace: meta_ns.into(), ..ObjectMeta::default() }),
            spec: Some(SubjectAccessReviewSpec {
                resource_attributes: attrs,
                non_resource_attributes: url,
                user: "alice".into(),
                ..SubjectAccessReviewSpec::default()
            }),
            ..LocalSubjectAccessReview::default()
        }
    };
    let r =
        access::local_subject_access_review(&authz, review("dev", Some(pods("get", "dev")), None)).unwrap();
    assert!(r.status.unwrap().allowed);
    let e = access::local_subject_access_review(&authz, review("dev", Some(pods("get", "prod")), None))
        .unwrap_err();
    assert_eq!(
        e.message,
        r#"LocalSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes.namespace: Invalid value: "prod": must match metadata.namespace"#
    );
    let url = NonResourceAttributes { path: "/healthz".into(), verb: "get".into() };
    let e = access::local_subject_access_review(&authz, review("dev", None, Some(url))).unwrap_err();
    assert!(e.message.ends_with("disallowed on this kind of request"), "{}", e.message);

    let mut meta = Some(ObjectMeta::default());
    in_request_namespace(&mut meta, "dev").unwrap();
    assert_eq!(meta.as_ref().unwrap().namespace, "dev");
    let e =
        in_request_namespace(&mut Some(ObjectMeta { namespace: "a".into(), ..ObjectMeta::default() }), "b");
    assert_eq!(e.unwrap_err().code, http::StatusCode::BAD_REQUEST);
}

#[test]
fn selectors_are_validated_and_parse_errors_reported() {
    let authz = authorization();
    let admin = user("admin", &["admins"]);
    let mut attrs = pods("list", "dev");
    attrs.field_selector = Some(FieldSelectorAttributes::default());
    let e = access::self_subject_access_review(&authz, &admin, ssar(Some(attrs.clone()), None)).unwrap_err();
    assert!(
        e.message.ends_with(
            "spec.resourceAttributes.fieldSelector.requirements: Required value: when spec.resourceAttributes.fieldSelector is specified, requirements or rawSelector is required"
        ),
        "{}",
        e.message
    );
    attrs.field_selector =
        Some(FieldSelectorAttributes { raw_selector: "spec.nodeName".into(), ..Default::default() });
    let r = access::self_subject_access_review(&authz, &admin, ssar(Some(attrs), None)).unwrap();
    let status = r.status.unwrap();
    assert!(status.allowed);
    assert_eq!(status.evaluation_error, "spec.resourceAttributes.fieldSelector ignored due to parse error");
}

#[test]
fn rules_reviews_list_what_rbac_grants() {
    let authz = authorization();
    let alice = user("alice", &["system:authenticated"]);
    let review = |ns: &str| SelfSubjectRulesReview {
        spec: Some(SelfSubjectRulesReviewSpec { namespace: ns.into() }),
        ..SelfSubjectRulesReview::default()
    };
    let r = access::self_subject_rules_review(&authz, &alice, review("dev")).unwrap();
    let status = r.status.clone().unwrap();
    assert_eq!(status.resource_rules.len(), 1);
    assert_eq!(status.resource_rules[0].verbs, ["get", "list"]);
    assert_eq!(status.resource_rules[0].resources, ["pods"]);
    assert!(!status.incomplete);
    // Kubernetes answers with a new object: no spec echoed, empty lists written.
    let v = to_value(by_kind("SelfSubjectRulesReview").unwrap(), &r);
    assert_eq!(v["spec"], json!({}));
    assert_eq!(v["metadata"], json!({"creationTimestamp": null}));
    assert_eq!(v["status"]["nonResourceRules"], json!([]));
    assert_eq!(v["status"]["incomplete"], json!(false));
    assert_eq!(v["apiVersion"], "authorization.k8s.io/v1");

    let r = access::self_subject_rules_review(&authz, &alice, review("prod")).unwrap();
    assert!(r.status.unwrap().resource_rules.is_empty());
    let e = access::self_subject_rules_review(&authz, &alice, review("")).unwrap_err();
    assert_eq!((e.code.as_u16(), e.message.as_str()), (400, "no namespace on request"));

    let node = user("system:node:n1", &["system:nodes"]);
    let r = access::self_subject_rules_review(&authz, &node, review("dev")).unwrap();
    let status = r.status.unwrap();
    assert!(status.incomplete);
    assert_eq!(status.evaluation_error, access::NODE_RULES_UNSUPPORTED);
}

#[test]
fn self_subject_reviews_echo_the_caller() {
    let mut alice = user("alice", &["devs", "system:authenticated"]);
    alice.extra.insert("scopes".into(), vec!["x".into()]);
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_557_600);
    let r = identity::self_subject_review(&alice, at);
    let v = to_value(by_kind("SelfSubjectReview").unwrap(), &r);
    assert_eq!(
        v,
        json!({
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": "2024-05-01T10:00:00Z"},
            "status": {"userInfo": {"username": "alice", "groups": ["devs", "system:authenticated"], "extra": {"scopes": ["x"]}}},
        })
    );
}

#[test]
fn token_reviews_without_token_authenticators() {
    let review = |token: &str| TokenReview {
        spec: Some(TokenReviewSpec { token: token.into(), audiences: vec![] }),
        ..Default::default()
    };
    let e = identity::token_review(None, review("")).unwrap_err();
    assert_eq!(
        (e.code.as_u16(), e.message.as_str()),
        (400, "token is required for TokenReview in authentication")
    );
    let r = identity::token_review(None, review("abc")).unwrap();
    let v = to_value(by_kind("TokenReview").unwrap(), &r);
    assert_eq!(v["status"], json!({"user": {}}));
    assert_eq!(v["spec"]["token"], "abc");
}

#[test]
fn review_resources_and_errors_for_grpc() {
    assert_eq!(
        find("authorization.k8s.io/v1", "selfsubjectaccessreviews").unwrap().kind,
        "SelfSubjectAccessReview"
    );
    assert!(find("authorization.k8s.io/v1", "pods").is_none());
    assert!(find("authorization.k8s.io/v1beta1", "selfsubjectaccessreviews").is_none());
    assert!(by_kind("LocalSubjectAccessReview").unwrap().namespaced);
    assert!(serves_group_version("authentication.k8s.io/v1"));
    assert_eq!(in_group_version("authorization.k8s.io/v1").count(), 4);
    let e = invalid(
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        "",
        vec!["spec.user: Invalid value: \"\": x".into()],
    );
    assert_eq!(grpc_status(&e).code(), tonic::Code::InvalidArgument);
    let e = conflict("", "Pod", "web", "the UID in the bound object reference (1) does not match");
    assert_eq!(
        e.message,
        r#"Operation cannot be fulfilled on Pod "web": the UID in the bound object reference (1) does not match"#
    );
    assert_eq!(grpc_status(&e).code(), tonic::Code::Aborted);
}

#[test]
fn audit_sees_reviews_as_resources_and_keeps_tokens_out() {
    let uri = |p: &str| p.parse::<http::Uri>().unwrap();
    let a = crate::audit::RequestAttributes::from_rest(
        &http::Method::POST,
        &uri("/apis/authentication.k8s.io/v1/tokenreviews"),
    );
    assert!(a.resource_request && a.verb == "create" && a.api_group == "authentication.k8s.io");
    assert!(a.carries_secrets(), "a TokenReview's body holds a token");
    let a = crate::audit::RequestAttributes::from_rest(
        &http::Method::POST,
        &uri("/apis/authorization.k8s.io/v1/namespaces/dev/localsubjectaccessreviews"),
    );
    assert_eq!(
        (a.resource.as_str(), a.namespace.as_str(), a.api_version.as_str()),
        ("localsubjectaccessreviews", "dev", "v1")
    );
    assert!(!a.carries_secrets());
}
