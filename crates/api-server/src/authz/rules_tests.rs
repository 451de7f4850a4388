//! Rule matching (cases from Kubernetes' `TestRuleMatches` plus hostile shapes), coverage, compaction.

use super::*;
use crate::user_info::UserInfo;

fn res(verb: &str, group: &str, resource: &str) -> Attributes {
    Attributes::resource(UserInfo::default(), verb, group, resource)
}

fn url(verb: &str, path: &str) -> Attributes {
    Attributes::non_resource(UserInfo::default(), verb, path)
}

fn r(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule::resource(verbs, groups, resources)
}

fn check(rule: &PolicyRule, cases: &[(Attributes, bool)]) {
    for (a, want) in cases {
        assert_eq!(rule_allows(a, rule), *want, "{rule:?} on {a:?}");
    }
}

#[test]
fn star_verb_exact_others() {
    let rule = r(&["*"], &["group1"], &["resource1"]);
    check(
        &rule,
        &[
            (res("verb1", "group1", "resource1"), true),
            (res("verb2", "group1", "resource1"), true),
            (res("verb1", "group2", "resource1"), false),
            (res("verb1", "group1", "resource2"), false),
        ],
    );
}

#[test]
fn star_group_and_star_resource() {
    check(
        &r(&["verb1"], &["*"], &["resource1"]),
        &[
            (res("verb1", "group1", "resource1"), true),
            (res("verb1", "group2", "resource1"), true),
            (res("verb1", "group1", "resource2"), false),
            (res("verb2", "group1", "resource1"), false),
        ],
    );
    check(
        &r(&["verb1"], &["group1"], &["*"]),
        &[
            (res("verb1", "group1", "resource1"), true),
            (res("verb1", "group1", "resource2"), true),
            (res("verb1", "group1", "resource2").subresource("sub"), true),
            (res("verb1", "group2", "resource1"), false),
            (res("verb2", "group1", "resource1"), false),
        ],
    );
}

#[test]
fn tuple_expansion() {
    let rule = r(&["verb1", "verb2"], &["group1", "group2"], &["resource1", "resource2"]);
    for verb in ["verb1", "verb2"] {
        for group in ["group1", "group2"] {
            for resource in ["resource1", "resource2"] {
                assert!(rule_allows(&res(verb, group, resource), &rule));
            }
        }
    }
    assert!(!rule_allows(&res("verb3", "group1", "resource1"), &rule));
}

#[test]
fn subresources() {
    let rule = r(&["*"], &["*"], &["resource1/subresource1"]);
    check(
        &rule,
        &[
            (res("verb1", "group1", "resource1").subresource("subresource1"), true),
            (res("verb1", "group1", "resource1").subresource("subresource2"), false),
            (res("verb1", "group1", "resource2").subresource("subresource1"), false),
            (res("verb1", "group1", "resource1"), false),
        ],
    );
    // A rule on the resource alone does not reach its subresources.
    check(
        &r(&["get"], &[""], &["pods"]),
        &[(res("get", "", "pods"), true), (res("get", "", "pods").subresource("status"), false)],
    );
    check(
        &r(&["get"], &[""], &["pods/status"]),
        &[(res("get", "", "pods").subresource("status"), true), (res("get", "", "pods"), false)],
    );
}

#[test]
fn star_slash_subresource() {
    let rule = r(&["get", "update"], &["*"], &["*/scale"]);
    check(
        &rule,
        &[
            (res("get", "apps", "deployments").subresource("scale"), true),
            (res("update", "", "replicationcontrollers").subresource("scale"), true),
            (res("get", "apps", "deployments"), false),
            (res("get", "apps", "deployments").subresource("status"), false),
            (res("get", "apps", "deployments").subresource("scales"), false),
            (res("get", "apps", "deployments").subresource("xscale"), false),
        ],
    );
}

#[test]
fn resource_slash_star_is_literal_as_in_kubernetes() {
    // Kubernetes gives `pods/*` no meaning: it matches only a request whose combined name is `pods/*`.
    let rule = r(&["get"], &[""], &["pods/*"]);
    check(
        &rule,
        &[
            (res("get", "", "pods").subresource("log"), false),
            (res("get", "", "pods"), false),
            (res("get", "", "pods").subresource("*"), true),
        ],
    );
}

#[test]
fn hostile_resource_names_do_not_confuse_the_combined_match() {
    let rule = r(&["get"], &[""], &["pods/log"]);
    check(
        &rule,
        &[
            (res("get", "", "pods/log"), true),
            (res("get", "", "pods/").subresource("log"), false),
            (res("get", "", "pod").subresource("s/log"), false),
            (res("get", "", "pods").subresource("lo"), false),
            (res("get", "", "").subresource("pods/log"), false),
            (res("get", "", "pods").subresource("log/x"), false),
        ],
    );
    // A slash inside the resource is matched literally.
    assert!(rule_allows(&res("get", "", "a/b").subresource("c"), &r(&["get"], &[""], &["a/b/c"])));
}

#[test]
fn verbs_groups_and_resources_are_case_sensitive() {
    let rule = r(&["get"], &["apps"], &["pods"]);
    assert!(!rule_allows(&res("GET", "apps", "pods"), &rule));
    assert!(!rule_allows(&res("get", "Apps", "pods"), &rule));
    assert!(!rule_allows(&res("get", "apps", "Pods"), &rule));
}

#[test]
fn empty_rule_parts_match_nothing() {
    let no_verbs = r(&[], &["*"], &["*"]);
    let no_groups = r(&["*"], &[], &["*"]);
    let no_resources = r(&["*"], &["*"], &[]);
    for rule in [no_verbs, no_groups, no_resources] {
        assert!(!rule_allows(&res("get", "", "pods"), &rule), "{rule:?}");
    }
    // The core group is the empty string, which an explicit "" matches.
    assert!(rule_allows(&res("get", "", "pods"), &r(&["get"], &[""], &["pods"])));
    assert!(!rule_allows(&res("get", "apps", "pods"), &r(&["get"], &[""], &["pods"])));
}

#[test]
fn resource_names() {
    let rule = r(&["get", "list", "create", "update"], &[""], &["configmaps"]).with_names(&["a", "b"]);
    check(
        &rule,
        &[
            (res("get", "", "configmaps").name("a"), true),
            (res("update", "", "configmaps").name("b"), true),
            (res("get", "", "configmaps").name("c"), false),
            (res("list", "", "configmaps"), false),
            (res("create", "", "configmaps"), false),
        ],
    );
    let any_name = r(&["get"], &[""], &["configmaps"]);
    assert!(rule_allows(&res("get", "", "configmaps").name("anything"), &any_name));
    assert!(rule_allows(&res("get", "", "configmaps"), &any_name));
    // Kubernetes compares names literally, so an empty resourceName matches a nameless request.
    let empty_name = r(&["list"], &[""], &["configmaps"]).with_names(&[""]);
    assert!(rule_allows(&res("list", "", "configmaps"), &empty_name));
}

#[test]
fn non_resource_urls() {
    let star = PolicyRule::non_resource(&["verb1"], &["*"]);
    check(
        &star,
        &[(url("verb1", "/foo"), true), (url("verb1", "/foo/bar/one"), true), (url("verb2", "/foo"), false)],
    );
    let sub = PolicyRule::non_resource(&["verb1"], &["/foo/*"]);
    check(
        &sub,
        &[
            (url("verb1", "/foo"), false),
            (url("verb1", "/foo/"), true),
            (url("verb1", "/foo/bar"), true),
            (url("verb1", "/foo/bar/one"), true),
            (url("verb1", "/foobar"), false),
            (url("verb2", "/foo/bar"), false),
        ],
    );
    let exact = PolicyRule::non_resource(&["get"], &["/healthz", "/version/"]);
    check(
        &exact,
        &[
            (url("get", "/healthz"), true),
            (url("get", "/healthz/etcd"), false),
            (url("get", "/version"), false),
            (url("get", "/version/"), true),
        ],
    );
    let glued = PolicyRule::non_resource(&["get"], &["/api*"]);
    check(&glued, &[(url("get", "/api"), true), (url("get", "/apis/x"), true), (url("get", "/ap"), false)]);
    let stars = PolicyRule::non_resource(&["get"], &["/a**"]);
    assert!(rule_allows(&url("get", "/abc"), &stars), "trailing stars all trim");
}

#[test]
fn resource_and_non_resource_rules_do_not_cross() {
    let resource_rule = r(&["*"], &["*"], &["*"]);
    assert!(!rule_allows(&url("get", "/healthz"), &resource_rule));
    let url_rule = PolicyRule::non_resource(&["*"], &["*"]);
    assert!(!rule_allows(&res("get", "", "pods"), &url_rule));
}

#[test]
fn breakdown_splits_every_dimension() {
    let rule = r(&["get", "list"], &["", "apps"], &["pods"]).with_names(&["a", "b"]);
    let parts = breakdown_rule(&rule);
    assert_eq!(parts.len(), 8);
    assert_eq!(parts[0], r(&["get"], &[""], &["pods"]).with_names(&["a"]));
    let urls = breakdown_rule(&PolicyRule::non_resource(&["get", "post"], &["/a", "/b"]));
    assert_eq!(urls.len(), 4);
    assert_eq!(urls[1], PolicyRule::non_resource(&["post"], &["/a"]));
    assert!(breakdown_rule(&r(&["get"], &[], &["pods"])).is_empty(), "no group: nothing to grant");
}

#[test]
fn covers_exact_and_wildcards() {
    let owner = vec![r(&["get", "list"], &[""], &["pods", "services"])];
    assert_eq!(covers(&owner, &[r(&["get"], &[""], &["pods"])]), Ok(()));
    assert_eq!(covers(&owner, &[]), Ok(()));
    let missing = covers(&owner, &[r(&["get", "delete"], &[""], &["pods"])]).unwrap_err();
    assert_eq!(missing, vec![r(&["delete"], &[""], &["pods"])]);

    let admin = vec![r(&["*"], &["*"], &["*"])];
    assert_eq!(covers(&admin, &[r(&["escalate"], &["x"], &["y/z"]).with_names(&["n"])]), Ok(()));
    assert!(
        covers(&admin, &[PolicyRule::non_resource(&["get"], &["/healthz"])]).is_err(),
        "resources do not cover URLs"
    );

    let scale = vec![r(&["get"], &["*"], &["*/scale"])];
    assert_eq!(covers(&scale, &[r(&["get"], &["apps"], &["deployments/scale"])]), Ok(()));
    assert!(covers(&scale, &[r(&["get"], &["apps"], &["deployments"])]).is_err());
}

#[test]
fn covers_resource_names() {
    let named_owner = vec![r(&["get"], &[""], &["secrets"]).with_names(&["a", "b"])];
    assert_eq!(covers(&named_owner, &[r(&["get"], &[""], &["secrets"]).with_names(&["a"])]), Ok(()));
    assert!(covers(&named_owner, &[r(&["get"], &[""], &["secrets"]).with_names(&["c"])]).is_err());
    assert!(
        covers(&named_owner, &[r(&["get"], &[""], &["secrets"])]).is_err(),
        "names never cover all names"
    );
    let unnamed_owner = vec![r(&["get"], &[""], &["secrets"])];
    assert_eq!(covers(&unnamed_owner, &[r(&["get"], &[""], &["secrets"]).with_names(&["x"])]), Ok(()));
}

#[test]
fn covers_urls() {
    let owner = vec![PolicyRule::non_resource(&["get"], &["/apis/*", "/healthz"])];
    assert_eq!(covers(&owner, &[PolicyRule::non_resource(&["get"], &["/apis/v1", "/healthz"])]), Ok(()));
    assert!(covers(&owner, &[PolicyRule::non_resource(&["get"], &["/api"])]).is_err());
    assert!(covers(&owner, &[PolicyRule::non_resource(&["post"], &["/healthz"])]).is_err());
    let all = vec![PolicyRule::non_resource(&["*"], &["*"])];
    assert_eq!(covers(&all, &[PolicyRule::non_resource(&["get"], &["/anything/at/all"])]), Ok(()));
    // A URL rule does not cover a resource rule.
    assert!(covers(&all, &[r(&["get"], &[""], &["pods"])]).is_err());
}

#[test]
fn compaction_merges_verbs_of_simple_rules() {
    let broken: Vec<PolicyRule> = [
        r(&["get"], &[""], &["pods"]),
        r(&["get"], &["apps"], &["deployments"]),
        r(&["list"], &[""], &["pods"]),
        r(&["get"], &[""], &["pods"]).with_names(&["x"]),
        r(&["watch"], &[""], &["pods"]),
        PolicyRule::non_resource(&["get"], &["/x"]),
        r(&["get"], &["", "apps"], &["pods"]),
    ]
    .into_iter()
    .collect();
    let compacted = compact_rules(&broken);
    assert_eq!(
        compacted,
        vec![
            PolicyRule::non_resource(&["get"], &["/x"]),
            r(&["get"], &["", "apps"], &["pods"]),
            r(&["get", "list", "watch"], &[""], &["pods"]),
            r(&["get"], &["apps"], &["deployments"]),
            r(&["get"], &[""], &["pods"]).with_names(&["x"]),
        ]
    );
}

#[test]
fn compact_strings() {
    assert_eq!(
        compact_string(&r(&["get"], &[""], &["pods"])),
        r#"{APIGroups:[""], Resources:["pods"], Verbs:["get"]}"#
    );
    assert_eq!(
        compact_string(&r(&["get", "list"], &["apps"], &["deployments"]).with_names(&["web"])),
        r#"{APIGroups:["apps"], Resources:["deployments"], ResourceNames:["web"], Verbs:["get" "list"]}"#
    );
    assert_eq!(
        compact_string(&PolicyRule::non_resource(&["get"], &["/healthz"])),
        r#"{NonResourceURLs:["/healthz"], Verbs:["get"]}"#
    );
    assert_eq!(compact_string(&PolicyRule::default()), "{}");
    assert_eq!(
        compact_string(&r(&["g\"et"], &[""], &["p\nods"])),
        r#"{APIGroups:[""], Resources:["p\nods"], Verbs:["g\"et"]}"#
    );
}

#[test]
fn display_order_is_kubectls() {
    let rules = vec![
        r(&["list", "get"], &[""], &["services"]),
        r(&["get"], &[""], &["pods"]),
        PolicyRule::non_resource(&["get"], &["/healthz"]),
    ];
    let shown = compact_for_display(&rules);
    assert_eq!(
        shown,
        vec![
            r(&["get"], &[""], &["pods"]),
            r(&["list", "get"], &[""], &["services"]),
            PolicyRule::non_resource(&["get"], &["/healthz"]),
        ]
    );
}
