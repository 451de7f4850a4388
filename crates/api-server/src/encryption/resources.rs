//! The `resources` of an EncryptionConfiguration entry: their names, checked as Kubernetes checks them
//! (`apis/apiserver/validation`), and what they cover in navarch: the kinds of
//! [`navarch_api::KINDS`] and so the etcd key prefixes whose values are transformed.
//!
//! A name is `<resource>` (core group: `secrets`), `<resource>.<group>` (`deployments.apps`), `*.<group>`
//! (every resource of a group; `*.` is the core group) or `*.*` (everything). A kind takes the providers
//! of its exact name, else of `*.<its group>`, else of `*.*` (Kubernetes' `transformerFromOverrides`);
//! an entry naming a resource that an earlier `*.<group>` or `*.*` entry already covers is refused, as
//! in Kubernetes, because it would never apply.

use std::collections::HashMap;
use std::sync::Arc;

use navarch_api::KindInfo;

use super::config::FieldErrors;
use super::transformer::{Provider, Transformer};

/// A resource name of the configuration, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    /// Kubernetes' `schema.ParseGroupResource`: the resource is what precedes the first `.`.
    pub fn parse(name: &str) -> GroupResource {
        match name.split_once('.') {
            Some((resource, group)) => GroupResource { group: group.into(), resource: resource.into() },
            None => GroupResource { group: String::new(), resource: name.into() },
        }
    }

    fn new(group: &str, resource: &str) -> GroupResource {
        GroupResource { group: group.into(), resource: resource.into() }
    }

    fn everything() -> GroupResource {
        GroupResource::new("*", "*")
    }

    fn whole_group(&self) -> GroupResource {
        GroupResource::new(&self.group, "*")
    }

    /// A kind's group and resource: the group of its apiVersion (`apps/v1` → `apps`, `v1` → core).
    fn of_kind(kind: &KindInfo) -> GroupResource {
        let group = kind.api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        GroupResource::new(group, kind.plural)
    }
}

impl std::fmt::Display for GroupResource {
    /// As written in the configuration (`*.` for the whole core group).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.group.as_str(), self.resource.as_str()) {
            ("", "*") => f.write_str("*."),
            ("", r) => f.write_str(r),
            (g, r) => write!(f, "{r}.{g}"),
        }
    }
}

/// Resources that are not objects of the API and cannot be encrypted.
const NOT_REST_RESOURCES: [&str; 3] =
    ["apiserveripinfo", "serviceipallocations", "servicenodeportallocations"];

/// Checks one entry's `resources` list (at `path`, e.g. `resources[0].resources`).
pub fn validate(names: &[String], path: &str, errs: &mut FieldErrors) {
    if names.is_empty() {
        errs.required(path, &format!("at least one {path} is required"));
        return;
    }
    validate_overlap(names, path, errs);
    for (i, name) in names.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let gr = GroupResource::parse(name);
        let problem = if name.to_lowercase() != *name {
            "resource name should not contain capital letters"
        } else if name == "*" {
            "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources"
        } else if NOT_REST_RESOURCES.contains(&name.as_str()) {
            "resources which do not have REST API/s cannot be encrypted"
        } else if gr.group == "events.k8s.io" {
            "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' instead in the config file"
        } else if gr.group == "extensions" {
            "'extensions' group has been removed and cannot be used for encryption"
        } else if gr.group == "*" && gr.resource != "*" {
            "encrypting the same resource across groups is not supported"
        } else if gr.resource.is_empty() {
            "resource name must not be empty"
        } else {
            continue;
        };
        errs.invalid(&at, &format!("{name:?}"), problem);
    }
}

/// Kubernetes' `validateResourceOverlap`: the same name twice, or a wildcard beside a name it covers.
fn validate_overlap(names: &[String], path: &str, errs: &mut FieldErrors) {
    let parsed: Vec<GroupResource> = names.iter().map(|n| GroupResource::parse(n)).collect();
    let mut duplicate = false;
    let mut overlap = false;
    for (i, a) in parsed.iter().enumerate() {
        for (j, b) in parsed.iter().enumerate() {
            if i == j {
                continue;
            }
            if a == b {
                duplicate = true;
            } else if *a == GroupResource::everything()
                || (a.group == b.group && (a.resource == "*" || b.resource == "*"))
            {
                overlap = true;
            }
        }
    }
    if duplicate {
        errs.invalid(path, &format!("{names:?}"), "the same resource cannot be specified multiple times");
    }
    if overlap {
        errs.invalid(
            path,
            &format!("{names:?}"),
            "using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked",
        );
    }
}

/// One entry of the configuration, checked.
#[derive(Debug)]
pub struct Rule {
    pub resources: Vec<GroupResource>,
    pub providers: Vec<Arc<Provider>>,
}

/// A kind whose values are transformed.
pub struct Covered {
    pub kind: &'static KindInfo,
    pub transformer: Arc<Transformer>,
}

/// What the rules give: the kinds they cover, and names that match no kind this api-server serves.
pub struct Resolution {
    pub covered: Vec<Covered>,
    pub unmatched: Vec<String>,
}

/// Why the rules cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resource {resource:?} is masked by earlier rule {rule:?}")]
pub struct MaskedError {
    pub resource: String,
    pub rule: String,
}

/// Gives each kind of `kinds` the providers the rules give it.
pub fn resolve(rules: &[Rule], kinds: &'static [KindInfo]) -> Result<Resolution, MaskedError> {
    let mut providers: HashMap<GroupResource, Vec<Arc<Provider>>> = HashMap::new();
    let mut named: Vec<&GroupResource> = Vec::new();
    for rule in rules {
        for gr in &rule.resources {
            for earlier in [gr.whole_group(), GroupResource::everything()] {
                if providers.contains_key(&earlier) {
                    return Err(MaskedError { resource: gr.to_string(), rule: earlier.to_string() });
                }
            }
            providers.entry(gr.clone()).or_default().extend(rule.providers.iter().cloned());
            named.push(gr);
        }
    }
    let chosen = |gr: &GroupResource| {
        [gr.clone(), gr.whole_group(), GroupResource::everything()]
            .into_iter()
            .find_map(|candidate| providers.get(&candidate).map(|p| (candidate, p)))
    };
    let mut transformers: HashMap<GroupResource, Arc<Transformer>> = HashMap::new();
    let mut covered = Vec::new();
    // Only stored kinds have keys (the resource metrics kinds share their plurals with Pods and Nodes).
    for kind in kinds.iter().filter(|k| k.is_stored()) {
        if let Some((rule, list)) = chosen(&GroupResource::of_kind(kind)) {
            let transformer =
                transformers.entry(rule).or_insert_with(|| Arc::new(Transformer::new(list.clone()))).clone();
            covered.push(Covered { kind, transformer });
        }
    }
    let unmatched = named
        .into_iter()
        .filter(|gr| gr.resource != "*")
        .filter(|gr| !kinds.iter().any(|k| GroupResource::of_kind(k) == **gr))
        .map(ToString::to_string)
        .collect();
    Ok(Resolution { covered, unmatched })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn check(list: &[&str]) -> Vec<String> {
        let mut errs = FieldErrors::default();
        validate(&names(list), "resources[0].resources", &mut errs);
        errs.into_messages()
    }

    #[test]
    fn parses_names_as_kubernetes() {
        let gr = GroupResource::parse;
        assert_eq!(gr("secrets"), GroupResource::new("", "secrets"));
        assert_eq!(gr("deployments.apps"), GroupResource::new("apps", "deployments"));
        assert_eq!(gr("leases.coordination.k8s.io"), GroupResource::new("coordination.k8s.io", "leases"));
        assert_eq!(gr("*."), GroupResource::new("", "*"));
        assert_eq!(gr("*.*"), GroupResource::new("*", "*"));
        for written in ["secrets", "deployments.apps", "*.", "*.*", "*.apps"] {
            assert_eq!(gr(written).to_string(), written);
        }
    }

    #[test]
    fn accepts_ordinary_lists() {
        assert!(check(&["secrets", "configmaps", "deployments.apps", "*.batch"]).is_empty());
        assert!(check(&["*.*"]).is_empty());
        assert!(check(&["*."]).is_empty());
    }

    #[test]
    fn refuses_what_kubernetes_refuses() {
        let one = |name: &str| {
            let e = check(&[name]);
            assert_eq!(e.len(), 1, "{name}: {e:?}");
            e.into_iter().next().unwrap_or_default()
        };
        assert_eq!(
            one("Secrets"),
            "resources[0].resources[0]: Invalid value: \"Secrets\": resource name should not contain capital letters"
        );
        assert!(one("*").contains("use '*.' to encrypt all the resources from core API group"));
        assert!(one("serviceipallocations").contains("do not have REST API/s"));
        assert!(one("events.events.k8s.io").contains("Use 'events' instead"));
        assert!(one("deployments.extensions").contains("'extensions' group has been removed"));
        assert!(one("secrets.*").contains("across groups is not supported"));
        assert!(one(".apps").contains("must not be empty"));
        assert_eq!(
            check(&[]),
            ["resources[0].resources: Required value: at least one resources[0].resources is required"]
        );
    }

    #[test]
    fn refuses_duplicates_and_overlaps_in_one_list() {
        let e = check(&["secrets", "secrets"]);
        assert_eq!(
            e,
            [
                "resources[0].resources: Invalid value: [\"secrets\", \"secrets\"]: the same resource cannot be specified multiple times"
            ]
        );
        for list in
            [&["secrets", "*."][..], &["*.*", "configmaps"], &["*.apps", "deployments.apps"], &["*.", "*.*"]]
        {
            let e = check(list);
            assert!(e.len() == 1 && e[0].contains("overlapping resources"), "{list:?}: {e:?}");
        }
        assert!(check(&["*.apps", "*.batch", "secrets"]).is_empty());
    }

    fn rule(resources: &[&str], provider: Provider) -> Rule {
        Rule {
            resources: resources.iter().map(|r| GroupResource::parse(r)).collect(),
            providers: vec![Arc::new(provider)],
        }
    }

    fn covered(rules: &[Rule]) -> Vec<(&'static str, usize)> {
        let r = resolve(rules, &navarch_api::KINDS).unwrap();
        let mut out: Vec<_> =
            r.covered.iter().map(|c| (c.kind.plural, c.transformer.providers().len())).collect();
        out.sort();
        out
    }

    #[test]
    fn covers_kinds_by_name_group_and_wildcard() {
        assert_eq!(covered(&[rule(&["secrets"], Provider::Identity)]), [("secrets", 1)]);
        let apps = covered(&[rule(&["*.apps"], Provider::Identity)]);
        assert!(apps.contains(&("deployments", 1)) && apps.contains(&("replicasets", 1)), "{apps:?}");
        assert!(!apps.iter().any(|(p, _)| *p == "secrets"), "{apps:?}");
        let core = covered(&[rule(&["*."], Provider::Identity)]);
        assert!(core.contains(&("secrets", 1)) && core.contains(&("pods", 1)), "{core:?}");
        assert!(!core.iter().any(|(p, _)| *p == "deployments"), "{core:?}");
        let stored = navarch_api::KINDS.iter().filter(|k| k.is_stored()).count();
        assert_eq!(covered(&[rule(&["*.*"], Provider::Identity)]).len(), stored);
        assert!(covered(&[rule(&["*.metrics.k8s.io"], Provider::Identity)]).is_empty());
        assert_eq!(covered(&[rule(&["leases.coordination.k8s.io"], Provider::Identity)]), [("leases", 1)]);
        // Entries naming the same resource chain their providers; a later wildcard covers the rest.
        let chained = covered(&[
            rule(&["secrets"], Provider::Identity),
            rule(&["secrets"], Provider::Identity),
            rule(&["*.*"], Provider::Identity),
        ]);
        assert!(chained.contains(&("secrets", 2)) && chained.contains(&("pods", 1)), "{chained:?}");
    }

    #[test]
    fn refuses_rules_masked_by_earlier_wildcards() {
        let e = resolve(
            &[rule(&["*."], Provider::Identity), rule(&["secrets"], Provider::Identity)],
            &navarch_api::KINDS,
        )
        .err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("resource \"secrets\" is masked by earlier rule \"*.\"")
        );
        let e = resolve(
            &[rule(&["*.*"], Provider::Identity), rule(&["*.apps"], Provider::Identity)],
            &navarch_api::KINDS,
        )
        .err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("resource \"*.apps\" is masked by earlier rule \"*.*\"")
        );
    }

    #[test]
    fn reports_names_matching_no_kind() {
        let r = resolve(
            &[rule(&["secret", "widgets.example.com", "*.example.com"], Provider::Identity)],
            &navarch_api::KINDS,
        )
        .unwrap();
        assert!(r.covered.is_empty());
        assert_eq!(r.unmatched, ["secret", "widgets.example.com"]);
    }
}
