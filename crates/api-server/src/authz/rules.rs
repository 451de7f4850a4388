//! Policy rules: whether a rule allows a request (Kubernetes' `RuleAllows` and the matchers of
//! `pkg/apis/rbac/v1/evaluation_helpers.go`), whether rules cover other rules (`validation.Covers`,
//! which escalation prevention and reconciliation use), and the compaction and compact text Kubernetes
//! prints rules with (`CompactRules`, `CompactString`, kubectl's `auth can-i --list` order).

use std::collections::HashMap;

use super::attributes::Attributes;
use super::go_format;
use super::policy::{ALL, PolicyRule};

/// Whether `rule` allows the request `a`. Resource requests need a matching verb, API group, resource
/// (`resource/subresource` for subresources; `*` or `*/subresource` match too) and name (a rule with
/// resourceNames never matches a request without a name); non-resource requests a matching verb and
/// path. Everything is case-sensitive.
pub fn rule_allows(a: &Attributes, rule: &PolicyRule) -> bool {
    if a.is_resource_request {
        verb_matches(rule, &a.verb)
            && api_group_matches(rule, &a.api_group)
            && resource_matches(rule, &a.resource, &a.subresource)
            && resource_name_matches(rule, &a.name)
    } else {
        verb_matches(rule, &a.verb) && non_resource_url_matches(rule, &a.path)
    }
}

pub fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == ALL || v == verb)
}

pub fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    rule.api_groups.iter().any(|g| g == ALL || g == group)
}

/// Matches `resource` (no subresource) or `resource/subresource`, without building the combined name.
pub fn resource_matches(rule: &PolicyRule, resource: &str, subresource: &str) -> bool {
    rule.resources.iter().any(|r| {
        if r == ALL {
            return true;
        }
        if subresource.is_empty() {
            return r == resource;
        }
        is_combined(r, resource, subresource)
            || (r.len() == subresource.len() + 2 && r.starts_with("*/") && r.ends_with(subresource))
    })
}

/// `candidate == resource + "/" + subresource`.
fn is_combined(candidate: &str, resource: &str, subresource: &str) -> bool {
    candidate.len() == resource.len() + 1 + subresource.len()
        && candidate.starts_with(resource)
        && candidate.as_bytes().get(resource.len()) == Some(&b'/')
        && candidate.ends_with(subresource)
}

pub fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    rule.resource_names.is_empty() || rule.resource_names.iter().any(|n| n == name)
}

pub fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    rule.non_resource_urls.iter().any(|u| url_covers(u, path))
}

/// `owner` equals `path`, or ends in `*` and the rest is a prefix of `path` (so `*` covers every path).
/// Matching a request and covering a broken-down rule are the same test.
fn url_covers(owner: &str, path: &str) -> bool {
    owner == path || (owner.ends_with('*') && path.starts_with(owner.trim_end_matches('*')))
}

/// Splits a rule into rules of one API group, one resource, one verb and at most one resource name
/// (or one URL and one verb): `BreakdownRule`.
pub fn breakdown_rule(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                let one = |names: Vec<String>| PolicyRule {
                    verbs: vec![verb.clone()],
                    api_groups: vec![group.clone()],
                    resources: vec![resource.clone()],
                    resource_names: names,
                    non_resource_urls: Vec::new(),
                };
                if rule.resource_names.is_empty() {
                    out.push(one(Vec::new()));
                } else {
                    out.extend(rule.resource_names.iter().map(|n| one(vec![n.clone()])));
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            out.push(PolicyRule::non_resource(std::slice::from_ref(verb), std::slice::from_ref(url)));
        }
    }
    out
}

/// Whether `owner` covers every permission of `requested`: `Ok(())`, or the broken-down rules
/// (see [`breakdown_rule`]) no owner rule covers, in order (`validation.Covers`).
pub fn covers(owner: &[PolicyRule], requested: &[PolicyRule]) -> Result<(), Vec<PolicyRule>> {
    let uncovered: Vec<PolicyRule> = requested
        .iter()
        .flat_map(breakdown_rule)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect();
    if uncovered.is_empty() { Ok(()) } else { Err(uncovered) }
}

/// Whether `owner` covers `sub`, a broken-down rule.
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, ALL) || has_all(&owner.verbs, &sub.verbs);
    let groups = has(&owner.api_groups, ALL) || has_all(&owner.api_groups, &sub.api_groups);
    let resources = resources_cover_all(&owner.resources, &sub.resources);
    let urls = sub.non_resource_urls.iter().all(|p| owner.non_resource_urls.iter().any(|o| url_covers(o, p)));
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs && groups && resources && urls && names
}

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

fn has_all(set: &[String], items: &[String]) -> bool {
    items.iter().all(|i| has(set, i))
}

fn resources_cover_all(owner: &[String], requested: &[String]) -> bool {
    if has(owner, ALL) {
        return true;
    }
    requested.iter().all(|path| {
        has(owner, path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| owner.iter().any(|o| o.strip_prefix("*/") == Some(sub)))
    })
}

/// Merges rules of exactly one API group, one resource, at most one resource name and nothing else
/// that differ only in verbs (`CompactRules`); other rules are kept as they are, before the merged
/// ones. The merged rules keep the order in which their resource first appeared.
pub fn compact_rules(rules: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut compacted = Vec::with_capacity(rules.len());
    let mut simple: Vec<PolicyRule> = Vec::new();
    let mut position: HashMap<(&str, &str, Option<&str>), usize> = HashMap::new();
    for rule in rules {
        let key = match simple_resource(rule) {
            Some(key) => key,
            None => {
                compacted.push(rule.clone());
                continue;
            }
        };
        match position.get(&key) {
            Some(&i) => simple[i].verbs.extend(rule.verbs.iter().cloned()),
            None => {
                position.insert(key, simple.len());
                simple.push(rule.clone());
            }
        }
    }
    compacted.extend(simple);
    compacted
}

fn simple_resource(rule: &PolicyRule) -> Option<(&str, &str, Option<&str>)> {
    if rule.resource_names.len() > 1 || !rule.non_resource_urls.is_empty() {
        return None;
    }
    match (rule.api_groups.as_slice(), rule.resources.as_slice()) {
        ([group], [resource]) => Some((group, resource, rule.resource_names.first().map(String::as_str))),
        _ => None,
    }
}

/// `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`: the rule's non-empty fields in Kubernetes'
/// order (`CompactString`), as escalation errors print them.
pub fn compact_string(rule: &PolicyRule) -> String {
    let fields: [(&str, &[String]); 5] = [
        ("APIGroups", &rule.api_groups),
        ("Resources", &rule.resources),
        ("NonResourceURLs", &rule.non_resource_urls),
        ("ResourceNames", &rule.resource_names),
        ("Verbs", &rule.verbs),
    ];
    let parts: Vec<String> = fields
        .iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(label, values)| format!("{label}:{}", go_format::quote_list(values)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// The rules as `kubectl auth can-i --list` shows them: broken down, compacted, sorted by their
/// compact text.
pub fn compact_for_display(rules: &[PolicyRule]) -> Vec<PolicyRule> {
    let broken: Vec<PolicyRule> = rules.iter().flat_map(breakdown_rule).collect();
    let mut compacted = compact_rules(&broken);
    compacted.sort_by_cached_key(compact_string);
    compacted
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
