//! `/version` and discovery: aggregated (`apidiscovery.k8s.io/v2`, one request for `/api` and one for
//! `/apis`) and legacy (`/api`, `/apis`, `/apis/<group>`, then an `APIResourceList` per group-version),
//! both built from `navarch_api::KINDS` (plus the versions `navarch_api::versions` serves kinds at besides
//! their stored one, listed after it so that the stored version is the group's preferred one) and the
//! subresources this API serves.

use navarch_api::versions::all_kinds;
use navarch_api::{CATEGORY_ALL, KindInfo};
use serde_json::{Value, json};

use super::reviews::{self, ReviewResource};
use super::status::group_of;

/// The Kubernetes version navarch reports. kubectl (and its dispatcher, which picks the bundled kubectl
/// matching the server's minor version) and client libraries read `major`/`minor`.
pub const KUBERNETES_MAJOR: &str = "1";
pub const KUBERNETES_MINOR: &str = "32";

/// Kinds with the `scale` subresource.
pub use navarch_api::autoscaling::SCALABLE;

const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// The verbs of a kind: all of them, but only get and list for the resource metrics kinds (metrics-server's).
fn verbs(k: &KindInfo) -> &'static [&'static str] {
    if k.is_stored() { VERBS } else { &["get", "list"] }
}

/// A subresource as discovery describes it.
struct Subresource {
    name: &'static str,
    /// `(group, version, kind)` of what it takes and returns.
    response: (&'static str, &'static str, &'static str),
    verbs: &'static [&'static str],
}

fn version_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or(api_version, |(_, v)| v)
}

fn subresources(k: &KindInfo) -> Vec<Subresource> {
    let own = (group_of(k.api_version), version_of(k.api_version), k.kind);
    let mut subs = Vec::new();
    // Kubernetes lists a CertificateSigningRequest's `approval` before its `status`.
    if k.kind == "CertificateSigningRequest" {
        subs.push(Subresource { name: "approval", response: own, verbs: &["get", "patch", "update"] });
    }
    if k.has_status {
        subs.push(Subresource { name: "status", response: own, verbs: &["get", "patch", "update"] });
    }
    if SCALABLE.contains(&k.kind) {
        subs.push(Subresource {
            name: "scale",
            response: ("autoscaling", "v1", "Scale"),
            verbs: &["get", "patch", "update"],
        });
    }
    if k.kind == "ServiceAccount" {
        let response = ("authentication.k8s.io", "v1", "TokenRequest");
        subs.push(Subresource { name: "token", response, verbs: &["create"] });
    }
    if k.kind == "Pod" {
        subs.push(Subresource { name: "binding", response: ("", "v1", "Binding"), verbs: &["create"] });
        subs.push(Subresource {
            name: "eviction",
            response: ("policy", "v1", "Eviction"),
            verbs: &["create"],
        });
        subs.push(Subresource { name: "log", response: ("", "v1", "Pod"), verbs: &["get"] });
        subs.push(Subresource {
            name: "ephemeralcontainers",
            response: ("", "v1", "Pod"),
            verbs: &["get", "patch", "update"],
        });
        for (name, kind) in [
            ("attach", "PodAttachOptions"),
            ("exec", "PodExecOptions"),
            ("portforward", "PodPortForwardOptions"),
        ] {
            subs.push(Subresource { name, response: ("", "v1", kind), verbs: &["create", "get"] });
        }
    }
    subs
}

fn group_versions() -> Vec<&'static str> {
    let mut gvs: Vec<&str> = Vec::new();
    for k in all_kinds() {
        if !gvs.contains(&k.api_version) {
            gvs.push(k.api_version);
        }
    }
    gvs.extend(reviews::GROUP_VERSIONS);
    gvs
}

fn kinds_in(gv: &str) -> impl Iterator<Item = &'static KindInfo> {
    all_kinds().filter(move |k| k.api_version == gv)
}

pub fn version() -> Value {
    json!({
        "major": KUBERNETES_MAJOR,
        "minor": KUBERNETES_MINOR,
        "gitVersion": format!("v{KUBERNETES_MAJOR}.{KUBERNETES_MINOR}.0+navarch.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

/// Go's name for this machine's architecture (what clients expect in `platform`).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// `/api` (core) or `/apis` (every other group) as an `APIGroupDiscoveryList` of `discovery_version`.
pub fn aggregated(core: bool, discovery_version: &str) -> Value {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for gv in group_versions() {
        let group = group_of(gv);
        if (group.is_empty()) != core {
            continue;
        }
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, versions)) => versions.push(gv),
            None => groups.push((group, vec![gv])),
        }
    }
    let items: Vec<Value> = groups
        .iter()
        .map(|(group, gvs)| {
            let versions: Vec<Value> = gvs
                .iter()
                .map(|gv| {
                    let resources: Vec<Value> = kinds_in(gv)
                        .map(aggregated_resource)
                        .chain(reviews::in_group_version(gv).map(aggregated_review))
                        .collect();
                    json!({"version": version_of(gv), "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{discovery_version}"),
        "metadata": {},
        "items": items,
    })
}

fn aggregated_resource(k: &'static KindInfo) -> Value {
    let subs: Vec<Value> = subresources(k)
        .iter()
        .map(|s| {
            json!({
                "subresource": s.name,
                "responseKind": {"group": s.response.0, "version": s.response.1, "kind": s.response.2},
                "verbs": s.verbs,
            })
        })
        .collect();
    let mut r = json!({
        "resource": k.plural,
        "responseKind": {"group": group_of(k.api_version), "version": version_of(k.api_version), "kind": k.kind},
        "scope": if k.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": k.singular,
        "verbs": verbs(k),
    });
    if !k.short_names.is_empty() {
        r["shortNames"] = json!(k.short_names);
    }
    if CATEGORY_ALL.contains(&k.kind) {
        r["categories"] = json!(["all"]);
    }
    if !subs.is_empty() {
        r["subresources"] = json!(subs);
    }
    r
}

/// A review kind: only `create`, no subresources.
fn aggregated_review(r: &ReviewResource) -> Value {
    json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": version_of(r.api_version), "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": ["create"],
    })
}

/// Legacy `/api`.
pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
}

fn api_group(group: &str) -> Value {
    let versions: Vec<Value> = group_versions()
        .into_iter()
        .filter(|gv| group_of(gv) == group)
        .map(|gv| json!({"groupVersion": gv, "version": version_of(gv)}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

/// Legacy `/apis`.
pub fn groups() -> Value {
    let mut names: Vec<&str> = Vec::new();
    for gv in group_versions() {
        let g = group_of(gv);
        if !g.is_empty() && !names.contains(&g) {
            names.push(g);
        }
    }
    let groups: Vec<Value> = names.iter().map(|g| api_group(g)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Legacy `/apis/<group>`.
pub fn group(name: &str) -> Value {
    let mut g = api_group(name);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    g
}

/// Legacy `/api/v1`, `/apis/<group>/<version>`.
pub fn resource_list(gv: &str) -> Value {
    let mut resources = Vec::new();
    for k in kinds_in(gv) {
        let mut r = json!({
            "name": k.plural,
            "singularName": k.singular,
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": verbs(k),
        });
        if !k.short_names.is_empty() {
            r["shortNames"] = json!(k.short_names);
        }
        if CATEGORY_ALL.contains(&k.kind) {
            r["categories"] = json!(["all"]);
        }
        resources.push(r);
        for s in subresources(k) {
            let mut r = json!({
                "name": format!("{}/{}", k.plural, s.name),
                "singularName": "",
                "namespaced": k.namespaced,
                "kind": s.response.2,
                "verbs": s.verbs,
            });
            if s.response.0 != group_of(gv) || s.response.1 != version_of(gv) {
                r["group"] = json!(s.response.0);
                r["version"] = json!(s.response.1);
            }
            resources.push(r);
        }
    }
    for r in reviews::in_group_version(gv) {
        resources.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["create"],
        }));
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_metrics_group_is_discoverable_read_only() {
        let groups = aggregated(false, "v2");
        let metrics =
            groups["items"].as_array().unwrap().iter().find(|g| g["metadata"]["name"] == "metrics.k8s.io");
        let version = &metrics.expect("metrics.k8s.io is listed")["versions"][0];
        assert_eq!(version["version"], "v1beta1");
        let resources = version["resources"].as_array().unwrap();
        let names: Vec<_> = resources.iter().map(|r| (r["resource"].clone(), r["scope"].clone())).collect();
        assert_eq!(names, vec![(json!("nodes"), json!("Cluster")), (json!("pods"), json!("Namespaced"))]);
        assert!(
            resources.iter().all(|r| r["verbs"] == json!(["get", "list"]) && r.get("subresources").is_none())
        );
        assert_eq!(resources[1]["responseKind"]["kind"], "PodMetrics");
        let legacy = resource_list("metrics.k8s.io/v1beta1");
        let legacy = legacy["resources"].as_array().unwrap();
        assert_eq!(legacy.len(), 2);
        assert_eq!(legacy[0]["kind"], "NodeMetrics");
        assert_eq!(legacy[0]["verbs"], json!(["get", "list"]));
        assert!(groups_list_names().contains(&"metrics.k8s.io".to_string()));
        // The core pods keep every verb.
        let core = resource_list("v1");
        let pods = core["resources"].as_array().unwrap().iter().find(|r| r["name"] == "pods").unwrap();
        assert_eq!(pods["kind"], "Pod");
        assert_eq!(pods["verbs"], json!(VERBS));
    }

    fn groups_list_names() -> Vec<String> {
        groups()["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn aggregated_core_and_groups() {
        let core = aggregated(true, "v2");
        assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2");
        let items = core["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["metadata"]["name"], "");
        let pods = items[0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap();
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        let subresource = |name: &str| {
            pods["subresources"].as_array().unwrap().iter().find(|s| s["subresource"] == name).cloned()
        };
        assert!(subresource("status").is_some());
        let ephemeral = subresource("ephemeralcontainers").unwrap();
        assert_eq!(ephemeral["responseKind"], json!({"group": "", "version": "v1", "kind": "Pod"}));
        assert_eq!(ephemeral["verbs"], json!(["get", "patch", "update"]));

        let apis = aggregated(false, "v2");
        let names: Vec<&str> = apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["metadata"]["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"apps") && names.contains(&"batch"), "{names:?}");
        assert!(!names.contains(&""));
    }

    #[test]
    fn review_kinds_and_the_token_subresource() {
        let apis = aggregated(false, "v2");
        let group = |name: &str| {
            apis["items"].as_array().unwrap().iter().find(|g| g["metadata"]["name"] == name).cloned().unwrap()
        };
        let authz = group("authorization.k8s.io");
        let resources = authz["versions"][0]["resources"].as_array().unwrap();
        let names: Vec<&str> = resources.iter().map(|r| r["resource"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "localsubjectaccessreviews",
                "selfsubjectaccessreviews",
                "selfsubjectrulesreviews",
                "subjectaccessreviews"
            ]
        );
        assert_eq!(resources[0]["scope"], "Namespaced");
        assert_eq!(resources[1]["verbs"], json!(["create"]));
        assert_eq!(group("authentication.k8s.io")["versions"][0]["resources"][1]["resource"], "tokenreviews");

        let l = resource_list("authentication.k8s.io/v1");
        assert_eq!(l["resources"][0]["name"], "selfsubjectreviews");
        assert_eq!(l["resources"][0]["verbs"], json!(["create"]));
        let core = resource_list("v1");
        let token =
            core["resources"].as_array().unwrap().iter().find(|r| r["name"] == "serviceaccounts/token");
        let token = token.unwrap();
        assert_eq!(
            (&token["group"], &token["version"], &token["kind"]),
            (&json!("authentication.k8s.io"), &json!("v1"), &json!("TokenRequest"))
        );
        assert_eq!(token["verbs"], json!(["create"]));
        assert!(groups()["groups"].as_array().unwrap().iter().any(|g| g["name"] == "authorization.k8s.io"));
    }

    #[test]
    fn a_csr_has_approval_and_status() {
        let apis = aggregated(false, "v2");
        let group = apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "certificates.k8s.io")
            .unwrap();
        let csr = &group["versions"][0]["resources"][0];
        assert_eq!(csr["resource"], "certificatesigningrequests");
        let own =
            json!({"group": "certificates.k8s.io", "version": "v1", "kind": "CertificateSigningRequest"});
        let verbs = json!(["get", "patch", "update"]);
        assert_eq!(
            csr["subresources"],
            json!([
                {"subresource": "approval", "responseKind": own, "verbs": verbs},
                {"subresource": "status", "responseKind": own, "verbs": verbs},
            ])
        );
        let l = resource_list("certificates.k8s.io/v1");
        let names: Vec<&str> =
            l["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "certificatesigningrequests",
                "certificatesigningrequests/approval",
                "certificatesigningrequests/status"
            ]
        );
        assert_eq!(l["resources"][1]["kind"], "CertificateSigningRequest");
        assert!(l["resources"][1].get("group").is_none(), "its own group and version");
    }

    #[test]
    fn legacy_lists() {
        let l = resource_list("apps/v1");
        let names: Vec<&str> =
            l["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"deployments") && names.contains(&"deployments/scale"), "{names:?}");
        let scale =
            l["resources"].as_array().unwrap().iter().find(|r| r["name"] == "deployments/scale").unwrap();
        assert_eq!(scale["group"], "autoscaling");
        assert_eq!(groups()["groups"][0]["preferredVersion"]["groupVersion"], "apps/v1");
        assert_eq!(version()["minor"], "32");
    }
}
