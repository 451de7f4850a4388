//! The audit policy, Kubernetes' `audit.k8s.io/v1 Policy`: the file `--audit-policy-file` names, read
//! and checked as Kubernetes reads it (`k8s.io/apiserver/pkg/audit/policy`: reader, validation and
//! checker), and the one question it answers — at which [`Level`] a request is recorded, and which
//! [`Stage`]s are left out.
//!
//! Rules are tried in order and the first that matches decides; a request no rule matches is not
//! recorded (level `None`). A rule matches when every list it sets contains the request's value:
//! `users` (the user's name), `userGroups` (any of the user's groups), `verbs`, and either the
//! resource fields (`namespaces`, `""` for cluster-scoped objects; `resources`: a group with resource
//! names such as `pods`, `pods/log`, `*`, `pods/*`, `*/status`, optionally limited to
//! `resourceNames`) or `nonResourceURLs` (exact paths, `*`, or a prefix ending in `*`). A rule with
//! neither matches resource and non-resource requests alike.
//!
//! Unlike Kubernetes' lenient decoder, unknown fields are errors (a misspelt `userGroup` would
//! otherwise silently widen a rule).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use super::attributes::RequestAttributes;
use crate::user_info::UserInfo;

/// The only accepted `apiVersion` of a policy file.
pub const API_VERSION: &str = "audit.k8s.io/v1";

/// How much of a request is recorded; ordered from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Level {
    /// Not recorded.
    None,
    /// Who did what to which object, when, and the answer's status — no bodies.
    Metadata,
    /// Metadata and the request's body (resource requests only).
    Request,
    /// Request and the response's body (resource requests only).
    RequestResponse,
}

impl Level {
    const ALL: [Level; 4] = [Level::None, Level::Metadata, Level::Request, Level::RequestResponse];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// When during a request an event is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Stage {
    /// As soon as the request arrives, before it is handled.
    RequestReceived,
    /// Once the response's headers are sent, for long-running requests only (watches, streams).
    ResponseStarted,
    /// Once the response is complete.
    ResponseComplete,
    /// The handler panicked.
    Panic,
}

impl Stage {
    const ALL: [Stage; 4] =
        [Stage::RequestReceived, Stage::ResponseStarted, Stage::ResponseComplete, Stage::Panic];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }

    fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of stages (those a policy omits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageSet(u8);

impl StageSet {
    pub fn contains(self, stage: Stage) -> bool {
        self.0 & stage.bit() != 0
    }

    pub fn with(self, stage: Stage) -> StageSet {
        StageSet(self.0 | stage.bit())
    }

    fn union(self, other: StageSet) -> StageSet {
        StageSet(self.0 | other.0)
    }
}

/// How one request is audited: the policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestAuditConfig {
    pub level: Level,
    pub omit_stages: StageSet,
    /// Drop `metadata.managedFields` from logged request and response bodies.
    pub omit_managed_fields: bool,
}

/// Why a policy file was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("reading the audit policy {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("decoding the audit policy: {0}")]
    Decode(String),
    #[error("the audit policy is invalid: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("{source} (in {path})")]
    InFile { path: PathBuf, source: Box<PolicyError> },
}

/// A checked policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    rules: Vec<Rule>,
    omit_stages: StageSet,
    omit_managed_fields: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Rule {
    level: Level,
    users: Vec<String>,
    user_groups: Vec<String>,
    verbs: Vec<String>,
    resources: Vec<GroupResources>,
    namespaces: Vec<String>,
    non_resource_urls: Vec<String>,
    /// The rule's stages united with the policy's.
    omit_stages: StageSet,
    /// The rule's own value, else the policy's.
    omit_managed_fields: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GroupResources {
    #[serde(default, deserialize_with = "null_as_default")]
    group: String,
    #[serde(default, deserialize_with = "null_as_default")]
    resources: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    resource_names: Vec<String>,
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "Policy", rename_all = "camelCase")]
struct PolicyFile {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    /// ObjectMeta, accepted for compatibility and not used.
    #[serde(default, rename = "metadata")]
    _metadata: Option<serde::de::IgnoredAny>,
    #[serde(default, deserialize_with = "null_as_default")]
    rules: Vec<RuleFile>,
    #[serde(default, deserialize_with = "null_as_default")]
    omit_stages: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    omit_managed_fields: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "PolicyRule", rename_all = "camelCase")]
struct RuleFile {
    #[serde(default, deserialize_with = "null_as_default")]
    level: String,
    #[serde(default, deserialize_with = "null_as_default")]
    users: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    user_groups: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    verbs: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    resources: Vec<GroupResources>,
    #[serde(default, deserialize_with = "null_as_default")]
    namespaces: Vec<String>,
    #[serde(default, rename = "nonResourceURLs", deserialize_with = "null_as_default")]
    non_resource_urls: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    omit_stages: Vec<String>,
    #[serde(default)]
    omit_managed_fields: Option<bool>,
}

/// `field: null` (or an empty `field:` in YAML) reads as the field's empty value, as in Kubernetes.
fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Policy {
    /// Reads and checks the policy file at `path`.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| PolicyError::Read { path: path.to_path_buf(), source })?;
        Policy::parse(&text)
            .map_err(|e| PolicyError::InFile { path: path.to_path_buf(), source: Box::new(e) })
    }

    /// Parses and checks a policy written in YAML or JSON.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = serde_yaml::from_str(text).map_err(|e| PolicyError::Decode(e.to_string()))?;
        let mut errors = Vec::new();
        if file.api_version != API_VERSION {
            errors.push(format!(
                "apiVersion: Unsupported value: {:?}: supported values: {API_VERSION:?}",
                file.api_version
            ));
        }
        if file.kind != "Policy" {
            errors.push(format!("kind: Unsupported value: {:?}: supported values: \"Policy\"", file.kind));
        }
        let omit_stages = stages(&file.omit_stages, "omitStages", &mut errors);
        let rules: Vec<Rule> = file
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| rule(r, &format!("rules[{i}]"), omit_stages, file.omit_managed_fields, &mut errors))
            .collect();
        if rules.is_empty() && errors.is_empty() {
            errors.push("loaded illegal policy with 0 rules".into());
        }
        if !errors.is_empty() {
            return Err(PolicyError::Invalid(errors));
        }
        Ok(Policy { rules, omit_stages, omit_managed_fields: file.omit_managed_fields })
    }

    /// The level and omitted stages for a request by `user` (`None`: nobody authenticated it) with
    /// `attributes`: the first matching rule's, else level `None`.
    pub fn evaluate(&self, user: Option<&UserInfo>, attributes: &RequestAttributes) -> RequestAuditConfig {
        match self.rules.iter().find(|r| r.matches(user, attributes)) {
            Some(r) => RequestAuditConfig {
                level: r.level,
                omit_stages: r.omit_stages,
                omit_managed_fields: r.omit_managed_fields,
            },
            None => RequestAuditConfig {
                level: Level::None,
                omit_stages: self.omit_stages,
                omit_managed_fields: self.omit_managed_fields,
            },
        }
    }
}

fn stages(names: &[String], path: &str, errors: &mut Vec<String>) -> StageSet {
    let mut set = StageSet::default();
    for (i, name) in names.iter().enumerate() {
        match Stage::parse(name) {
            Some(s) => set = set.with(s),
            None => errors.push(format!(
                "{path}[{i}]: Invalid value: {name:?}: allowed stages are {}",
                Stage::ALL.map(Stage::as_str).join(",")
            )),
        }
    }
    set
}

fn rule(
    r: RuleFile,
    path: &str,
    policy_stages: StageSet,
    policy_omit_managed_fields: bool,
    errors: &mut Vec<String>,
) -> Rule {
    let level = match Level::parse(&r.level) {
        Some(level) => level,
        None if r.level.is_empty() => {
            errors.push(format!("{path}.level: Required value"));
            Level::None
        }
        None => {
            let supported: Vec<String> = Level::ALL.iter().map(|l| format!("{:?}", l.as_str())).collect();
            errors.push(format!(
                "{path}.level: Unsupported value: {:?}: supported values: {}",
                r.level,
                supported.join(", ")
            ));
            Level::None
        }
    };
    for (i, url) in r.non_resource_urls.iter().enumerate() {
        if url == "*" {
            continue;
        }
        if !url.starts_with('/') {
            errors.push(format!(
                "{path}.nonResourceURLs[{i}]: Invalid value: {url:?}: non-resource URL rules must begin with a '/' character"
            ));
        }
        if url.char_indices().any(|(at, c)| c == '*' && at + 1 < url.len()) {
            errors.push(format!(
                "{path}.nonResourceURLs[{i}]: Invalid value: {url:?}: non-resource URL wildcards '*' must be the final character of the rule"
            ));
        }
    }
    for (i, gr) in r.resources.iter().enumerate() {
        if !gr.group.is_empty() {
            let reasons = navarch_api::names::dns1123_subdomain(&gr.group);
            if !reasons.is_empty() {
                errors.push(format!(
                    "{path}.resources[{i}].group: Invalid value: {:?}: {}",
                    gr.group,
                    reasons.join(",")
                ));
            }
        }
        if !gr.resource_names.is_empty() && gr.resources.is_empty() {
            errors.push(format!(
                "{path}.resources[{i}].resourceNames: Invalid value: {:?}: using resourceNames requires at least one resource",
                gr.resource_names
            ));
        }
    }
    if !r.non_resource_urls.is_empty() && (!r.resources.is_empty() || !r.namespaces.is_empty()) {
        errors.push(format!(
            "{path}.nonResourceURLs: Invalid value: {:?}: rules cannot apply to both regular resources and non-resource URLs",
            r.non_resource_urls
        ));
    }
    let omit_stages = stages(&r.omit_stages, &format!("{path}.omitStages"), errors).union(policy_stages);
    Rule {
        level,
        users: r.users,
        user_groups: r.user_groups,
        verbs: r.verbs,
        resources: r.resources,
        namespaces: r.namespaces,
        non_resource_urls: r.non_resource_urls,
        omit_stages,
        omit_managed_fields: r.omit_managed_fields.unwrap_or(policy_omit_managed_fields),
    }
}

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|s| s == value)
}

impl Rule {
    fn matches(&self, user: Option<&UserInfo>, a: &RequestAttributes) -> bool {
        if !self.users.is_empty() && !user.is_some_and(|u| has(&self.users, &u.name)) {
            return false;
        }
        if !self.user_groups.is_empty()
            && !user.is_some_and(|u| u.groups.iter().any(|g| has(&self.user_groups, g)))
        {
            return false;
        }
        if !self.verbs.is_empty() && !has(&self.verbs, &a.verb) {
            return false;
        }
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            return self.matches_resource(a);
        }
        if !self.non_resource_urls.is_empty() {
            return !a.resource_request
                && self.non_resource_urls.iter().any(|spec| path_matches(&a.path, spec));
        }
        true
    }

    fn matches_resource(&self, a: &RequestAttributes) -> bool {
        if !a.resource_request {
            return false;
        }
        // Cluster-scoped objects have the namespace "".
        if !self.namespaces.is_empty() && !has(&self.namespaces, &a.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        self.resources.iter().filter(|gr| gr.group == a.api_group).any(|gr| {
            if gr.resources.is_empty() {
                return true;
            }
            if !gr.resource_names.is_empty() && !has(&gr.resource_names, &a.name) {
                return false;
            }
            gr.resources.iter().any(|res| {
                res == "*"
                    || *res == combined
                    || (!a.subresource.is_empty() && res.strip_prefix("*/") == Some(a.subresource.as_str()))
                    || res.strip_suffix("/*") == Some(a.resource.as_str())
            })
        })
    }
}

/// `*` matches every path, `/healthz*` every path starting with `/healthz`, anything else itself.
fn path_matches(path: &str, spec: &str) -> bool {
    spec == "*"
        || spec == path
        || spec.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix.trim_end_matches('*')))
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
