//! Tests of the audit policy: parsing, validation messages and rule matching.

use super::*;

fn policy(rules: &str) -> Policy {
    Policy::parse(&format!("apiVersion: audit.k8s.io/v1\nkind: Policy\n{rules}")).unwrap()
}

fn invalid(text: &str) -> String {
    match Policy::parse(text) {
        Err(e) => e.to_string(),
        Ok(p) => panic!("accepted: {p:?}"),
    }
}

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..UserInfo::default()
    }
}

fn resource(verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> RequestAttributes {
    RequestAttributes {
        verb: verb.into(),
        resource_request: true,
        api_group: group.into(),
        api_version: "v1".into(),
        resource: resource.into(),
        subresource: sub.into(),
        namespace: ns.into(),
        name: name.into(),
        path: String::new(),
    }
}

fn non_resource(verb: &str, path: &str) -> RequestAttributes {
    RequestAttributes { verb: verb.into(), path: path.into(), ..RequestAttributes::default() }
}

fn level(p: &Policy, u: Option<&UserInfo>, a: &RequestAttributes) -> Level {
    p.evaluate(u, a).level
}

/// Kubernetes' documented example policy (kubernetes.io, "Auditing"), with `metadata` and comments.
const EXAMPLE: &str = r#"
apiVersion: audit.k8s.io/v1 # This is required.
kind: Policy
metadata:
  name: example
# Don't generate audit events for all requests in RequestReceived stage.
omitStages:
  - "RequestReceived"
rules:
  # Log pod changes at RequestResponse level
  - level: RequestResponse
    resources:
    - group: ""
      # Resource "pods" doesn't match requests to any subresource of pods,
      # which is consistent with the RBAC policy.
      resources: ["pods"]
  # Log "pods/log", "pods/status" at Metadata level
  - level: Metadata
    resources:
    - group: ""
      resources: ["pods/log", "pods/status"]

  # Don't log requests to a configmap called "controller-leader"
  - level: None
    resources:
    - group: ""
      resources: ["configmaps"]
      resourceNames: ["controller-leader"]

  # Don't log watch requests by the "system:kube-proxy" on endpoints or services
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
    resources:
    - group: "" # core API group
      resources: ["endpoints", "services"]

  # Don't log authenticated requests to certain non-resource URL paths.
  - level: None
    userGroups: ["system:authenticated"]
    nonResourceURLs:
    - "/api*" # Wildcard matching.
    - "/version"

  # Log the request body of configmap changes in kube-system.
  - level: Request
    resources:
    - group: "" # core API group
      resources: ["configmaps"]
    # This rule only applies to resources in the "kube-system" namespace.
    # The empty string "" can be used to select non-namespaced resources.
    namespaces: ["kube-system"]

  # Log configmap and secret changes in all other namespaces at the Metadata level.
  - level: Metadata
    resources:
    - group: "" # core API group
      resources: ["secrets", "configmaps"]

  # Log all other resources in core and extensions at the Request level.
  - level: Request
    resources:
    - group: "" # core API group
    - group: "extensions" # Version of group should NOT be included.

  # A catch-all rule to log all other requests at the Metadata level.
  - level: Metadata
    # Long-running requests like watches that fall under this rule will not
    # generate an audit event in RequestReceived.
    omitStages:
      - "RequestReceived"
"#;

#[test]
fn kubernetes_example_policy() {
    let p = Policy::parse(EXAMPLE).unwrap();
    let alice = user("alice", &["system:authenticated"]);
    let proxy = user("system:kube-proxy", &["system:authenticated"]);
    let u = Some(&alice);
    assert_eq!(level(&p, u, &resource("create", "", "pods", "", "default", "web")), Level::RequestResponse);
    assert_eq!(level(&p, u, &resource("get", "", "pods", "log", "default", "web")), Level::Metadata);
    assert_eq!(level(&p, u, &resource("update", "", "pods", "status", "default", "web")), Level::Metadata);
    assert_eq!(
        level(&p, u, &resource("create", "", "pods", "exec", "default", "web")),
        Level::Request,
        "pods/exec is not pods: the core-group rule"
    );
    assert_eq!(
        level(&p, u, &resource("update", "", "configmaps", "", "kube-system", "controller-leader")),
        Level::None
    );
    assert_eq!(
        level(&p, u, &resource("update", "", "configmaps", "", "kube-system", "other")),
        Level::Request
    );
    assert_eq!(level(&p, u, &resource("update", "", "configmaps", "", "default", "other")), Level::Metadata);
    assert_eq!(level(&p, Some(&proxy), &resource("watch", "", "services", "", "", "")), Level::None);
    assert_eq!(level(&p, Some(&proxy), &resource("list", "", "services", "", "", "")), Level::Request);
    assert_eq!(
        level(&p, u, &resource("watch", "", "endpoints", "", "", "")),
        Level::Request,
        "not kube-proxy"
    );
    assert_eq!(level(&p, u, &non_resource("get", "/apis/apps/v1")), Level::None);
    assert_eq!(level(&p, u, &non_resource("get", "/version")), Level::None);
    assert_eq!(
        level(&p, None, &non_resource("get", "/version")),
        Level::Metadata,
        "no user: not authenticated"
    );
    assert_eq!(level(&p, u, &non_resource("get", "/healthz")), Level::Metadata);
    assert_eq!(level(&p, u, &resource("get", "extensions", "ingresses", "", "d", "i")), Level::Request);
    assert_eq!(level(&p, u, &resource("get", "apps", "deployments", "", "d", "x")), Level::Metadata);
    let c = p.evaluate(u, &resource("get", "apps", "deployments", "", "d", "x"));
    assert!(c.omit_stages.contains(Stage::RequestReceived));
    assert!(!c.omit_stages.contains(Stage::ResponseComplete));
    let c = p.evaluate(u, &resource("create", "", "pods", "", "default", "web"));
    assert!(c.omit_stages.contains(Stage::RequestReceived), "the policy's stages apply to every rule");
}

#[test]
fn users_and_groups() {
    let p = policy(
        "rules:\n- level: RequestResponse\n  users: [alice, bob]\n- level: Request\n  userGroups: [ops, dev]\n- level: None\n  users: [carol]\n  userGroups: [dev]\n- level: Metadata\n",
    );
    let a = resource("get", "", "pods", "", "d", "p");
    assert_eq!(level(&p, Some(&user("alice", &[])), &a), Level::RequestResponse);
    assert_eq!(level(&p, Some(&user("bob", &["ops"])), &a), Level::RequestResponse, "first rule wins");
    assert_eq!(level(&p, Some(&user("dave", &["x", "dev"])), &a), Level::Request, "any group");
    assert_eq!(level(&p, Some(&user("carol", &[])), &a), Level::Metadata, "users and groups must both match");
    assert_eq!(level(&p, Some(&user("eve", &["Dev"])), &a), Level::Metadata, "case matters");
    assert_eq!(level(&p, None, &a), Level::Metadata, "no user matches no user rule");
}

#[test]
fn verbs() {
    let p = policy("rules:\n- level: None\n  verbs: [get, list, watch]\n- level: Request\n");
    for verb in ["get", "list", "watch"] {
        assert_eq!(level(&p, None, &resource(verb, "", "pods", "", "", "")), Level::None, "{verb}");
    }
    for verb in ["create", "update", "patch", "delete", "deletecollection"] {
        assert_eq!(level(&p, None, &resource(verb, "", "pods", "", "", "")), Level::Request, "{verb}");
    }
    assert_eq!(
        level(&p, None, &non_resource("get", "/healthz")),
        Level::None,
        "verbs apply to non-resource requests"
    );
}

#[test]
fn resources_and_subresources() {
    let p = policy(
        r#"rules:
- level: RequestResponse
  resources:
  - group: ""
    resources: ["pods/log"]
- level: Request
  resources:
  - group: ""
    resources: ["*/status"]
- level: Metadata
  resources:
  - group: "apps"
    resources: ["deployments/*"]
- level: None
  resources:
  - group: "apps"
  - group: ""
    resources: ["*"]
    resourceNames: ["special"]
"#,
    );
    let l = |group: &str, res: &str, sub: &str, name: &str| {
        level(&p, None, &resource("get", group, res, sub, "d", name))
    };
    assert_eq!(l("", "pods", "log", "web"), Level::RequestResponse);
    assert_eq!(l("", "pods", "", "web"), Level::None, "pods alone matches no rule");
    assert_eq!(l("", "pods", "status", "web"), Level::Request);
    assert_eq!(l("", "nodes", "status", "n1"), Level::Request);
    assert_eq!(
        l("apps", "deployments", "status", "web"),
        Level::Metadata,
        "*/status is in the core group only"
    );
    assert_eq!(l("apps", "deployments", "scale", "web"), Level::Metadata);
    assert_eq!(
        l("apps", "deployments", "", "web"),
        Level::Metadata,
        "resource/* also matches the resource (Kubernetes)"
    );
    assert_eq!(l("apps", "replicasets", "", "r"), Level::None, "a group without resources: everything in it");
    assert_eq!(l("", "configmaps", "", "special"), Level::None);
    assert_eq!(l("", "configmaps", "", "other"), Level::None, "no rule matches: None");
    assert_eq!(l("batch", "jobs", "", "special"), Level::None);
    // A rule for resources never matches non-resource requests.
    assert_eq!(level(&p, None, &non_resource("get", "/api/v1/pods/log")), Level::None);
}

#[test]
fn star_matches_subresources_too() {
    let p = policy("rules:\n- level: Request\n  resources:\n  - group: \"\"\n    resources: [\"*\"]\n");
    assert_eq!(level(&p, None, &resource("create", "", "pods", "exec", "d", "p")), Level::Request);
    assert_eq!(level(&p, None, &resource("create", "apps", "deployments", "", "d", "p")), Level::None);
}

#[test]
fn namespaces() {
    let p = policy(
        "rules:\n- level: RequestResponse\n  namespaces: [kube-system]\n- level: Request\n  namespaces: [\"\"]\n- level: Metadata\n",
    );
    assert_eq!(level(&p, None, &resource("get", "", "pods", "", "kube-system", "p")), Level::RequestResponse);
    assert_eq!(
        level(&p, None, &resource("get", "", "nodes", "", "", "n1")),
        Level::Request,
        "cluster-scoped: \"\""
    );
    assert_eq!(
        level(&p, None, &resource("list", "", "pods", "", "", "")),
        Level::Request,
        "across namespaces: \"\""
    );
    assert_eq!(level(&p, None, &resource("get", "", "pods", "", "default", "p")), Level::Metadata);
    assert_eq!(
        level(&p, None, &non_resource("get", "/healthz")),
        Level::Metadata,
        "a namespace rule never matches a non-resource request"
    );
}

#[test]
fn non_resource_urls() {
    let p = policy(
        "rules:\n- level: None\n  nonResourceURLs: [/healthz*, /version]\n- level: Request\n  nonResourceURLs: [\"/openapi/*\"]\n- level: Metadata\n  nonResourceURLs: [\"*\"]\n",
    );
    let l = |path: &str| level(&p, None, &non_resource("get", path));
    assert_eq!(l("/healthz"), Level::None);
    assert_eq!(l("/healthz/etcd"), Level::None);
    assert_eq!(l("/healthzzz"), Level::None, "a prefix, not a path segment");
    assert_eq!(l("/version"), Level::None);
    assert_eq!(l("/version/x"), Level::Metadata, "exact without *");
    assert_eq!(l("/openapi/v3"), Level::Request);
    assert_eq!(l("/openapi"), Level::Metadata);
    assert_eq!(l("/metrics"), Level::Metadata);
    assert_eq!(
        level(&p, None, &resource("get", "", "pods", "", "", "")),
        Level::None,
        "URL rules skip resources"
    );
}

#[test]
fn omit_stages_and_managed_fields() {
    let p = policy(
        "omitStages: [RequestReceived]\nomitManagedFields: true\nrules:\n- level: Metadata\n  verbs: [watch]\n  omitStages: [ResponseStarted]\n  omitManagedFields: false\n- level: Request\n  verbs: [get]\n",
    );
    let c = p.evaluate(None, &resource("watch", "", "pods", "", "", ""));
    assert!(c.omit_stages.contains(Stage::RequestReceived) && c.omit_stages.contains(Stage::ResponseStarted));
    assert!(!c.omit_stages.contains(Stage::ResponseComplete) && !c.omit_stages.contains(Stage::Panic));
    assert!(!c.omit_managed_fields, "the rule's value wins");
    let c = p.evaluate(None, &resource("get", "", "pods", "", "", "p"));
    assert!(
        c.omit_stages.contains(Stage::RequestReceived) && !c.omit_stages.contains(Stage::ResponseStarted)
    );
    assert!(c.omit_managed_fields, "the policy's default");
    let c = p.evaluate(None, &resource("create", "", "pods", "", "", ""));
    assert_eq!((c.level, c.omit_managed_fields), (Level::None, true));
    assert!(c.omit_stages.contains(Stage::RequestReceived));
}

#[test]
fn json_and_nulls_are_accepted() {
    let p = Policy::parse(
        r#"{"apiVersion":"audit.k8s.io/v1","kind":"Policy","omitStages":null,"rules":[{"level":"Metadata","users":null}]}"#,
    )
    .unwrap();
    assert_eq!(level(&p, None, &non_resource("get", "/")), Level::Metadata);
    let p = policy("rules:\n- level: Request\n  users:\n  resources:\n");
    assert_eq!(level(&p, None, &non_resource("get", "/")), Level::Request);
}

#[test]
fn invalid_policies_name_the_field() {
    let head = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";
    let cases = [
        (
            format!("{head}rules:\n- level: Metadata\n  userGroup: [a]\n"),
            "rules[0]: unknown field `userGroup`",
        ),
        (format!("{head}rule: []\n"), "unknown field `rule`"),
        (
            format!("{head}rules:\n- level: Metadata\n  resources:\n  - group: \"\"\n    resource: [pods]\n"),
            "rules[0].resources[0]: unknown field `resource`",
        ),
        (format!("{head}rules:\n- users: [a]\n"), "rules[0].level: Required value"),
        (
            format!("{head}rules:\n- level: Metadata\n- level: Everything\n"),
            r#"rules[1].level: Unsupported value: "Everything": supported values: "None", "Metadata", "Request", "RequestResponse""#,
        ),
        (
            format!("{head}rules:\n- level: None\n  nonResourceURLs: [healthz]\n"),
            r#"rules[0].nonResourceURLs[0]: Invalid value: "healthz": non-resource URL rules must begin with a '/' character"#,
        ),
        (
            format!("{head}rules:\n- level: None\n  nonResourceURLs: [\"/a/*/b\"]\n"),
            r#"rules[0].nonResourceURLs[0]: Invalid value: "/a/*/b": non-resource URL wildcards '*' must be the final character of the rule"#,
        ),
        (
            format!("{head}rules:\n- level: None\n  nonResourceURLs: [/a]\n  namespaces: [d]\n"),
            "rules[0].nonResourceURLs: Invalid value: [\"/a\"]: rules cannot apply to both regular resources and non-resource URLs",
        ),
        (
            format!("{head}rules:\n- level: None\n  resources:\n  - group: apps\n  - group: Apps/v1\n"),
            "rules[0].resources[1].group: Invalid value: \"Apps/v1\"",
        ),
        (
            format!("{head}rules:\n- level: None\n  resources:\n  - resourceNames: [x]\n"),
            "rules[0].resources[0].resourceNames: Invalid value: [\"x\"]: using resourceNames requires at least one resource",
        ),
        (
            format!("{head}rules:\n- level: None\n  omitStages: [ResponseDone]\n"),
            "rules[0].omitStages[0]: Invalid value: \"ResponseDone\": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic",
        ),
        (
            format!("{head}omitStages: [Never]\nrules:\n- level: None\n"),
            "omitStages[0]: Invalid value: \"Never\"",
        ),
        (format!("{head}rules: []\n"), "loaded illegal policy with 0 rules"),
        (format!("{head}\n"), "loaded illegal policy with 0 rules"),
        (
            "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: None\n".into(),
            "apiVersion: Unsupported value: \"audit.k8s.io/v1beta1\"",
        ),
        ("kind: Policy\nrules:\n- level: None\n".into(), "apiVersion: Unsupported value: \"\""),
        (
            "apiVersion: audit.k8s.io/v1\nkind: Event\nrules:\n- level: None\n".into(),
            "kind: Unsupported value: \"Event\"",
        ),
        (format!("{head}rules:\n- level: [Metadata]\n"), "rules[0].level: invalid type: sequence"),
        (format!("{head}rules:\n- level: None\n  users: alice\n"), "rules[0].users: invalid type: string"),
        (format!("{head}rules: {{}}\n"), "rules"),
        (
            "- just a list\n".into(),
            "decoding the audit policy: invalid type: sequence, expected struct Policy",
        ),
    ];
    for (text, expected) in cases {
        let e = invalid(&text);
        assert!(e.contains(expected), "{text}\n  gave: {e}\n  want: {expected}");
    }
    // Every problem is reported at once.
    let e = invalid(&format!("{head}rules:\n- level: Nope\n- level: None\n  omitStages: [X]\n"));
    assert!(e.contains("rules[0].level") && e.contains("rules[1].omitStages[0]"), "{e}");
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit-policy.yaml");
    let e = Policy::load(&path).unwrap_err().to_string();
    assert!(e.starts_with("reading the audit policy") && e.contains("audit-policy.yaml"), "{e}");
    std::fs::write(&path, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadat\n").unwrap();
    let e = Policy::load(&path).unwrap_err().to_string();
    assert!(e.contains("rules[0].level: Unsupported value") && e.contains("audit-policy.yaml"), "{e}");
    std::fs::write(&path, EXAMPLE).unwrap();
    assert!(Policy::load(&path).is_ok());
}
