//! `authorization.k8s.io/v1`: "may this user do that?" (SubjectAccessReview, LocalSubjectAccessReview,
//! SelfSubjectAccessReview: the authorizer chain's decision) and "what may I do here?"
//! (SelfSubjectRulesReview: the rules RBAC grants in a namespace), with kube-apiserver's validation
//! (pkg/apis/authorization/validation) and answers (pkg/registry/authorization/*).

use navarch_api::v1::{
    LocalSubjectAccessReview, NonResourceAttributes, NonResourceRule, ObjectMeta, ResourceAttributes,
    ResourceRule, SelfSubjectAccessReview, SelfSubjectRulesReview, SelfSubjectRulesReviewSpec,
    SubjectAccessReview, SubjectAccessReviewSpec, SubjectAccessReviewStatus, SubjectRulesReviewStatus,
};

use super::go_value;
use super::invalid;
use crate::authorization::Authorization;
use crate::authz::{Attributes, Decision, go_format};
use crate::rest::StatusError;
use crate::user_info::UserInfo;

const API_VERSION: &str = "authorization.k8s.io/v1";

/// Why the Node authorizer lists no rules for a node (it decides from the objects a node's pods use).
pub const NODE_RULES_UNSUPPORTED: &str = "node authorizer does not support user rule resolution";

/// A SelfSubjectAccessReview: may the caller do what the spec says?
pub fn self_subject_access_review(
    authorization: &Authorization,
    user: &UserInfo,
    mut review: SelfSubjectAccessReview,
) -> Result<SelfSubjectAccessReview, StatusError> {
    let spec = review.spec.clone().unwrap_or_default();
    let (resource, non_resource) = (spec.resource_attributes.as_ref(), spec.non_resource_attributes.as_ref());
    let mut errors = exactly_one(resource, non_resource);
    errors.extend(selector_errors(resource));
    errors.extend(metadata_must_be_empty(review.metadata.as_ref(), false));
    if !errors.is_empty() {
        return Err(invalid(API_VERSION, "SelfSubjectAccessReview", "", errors));
    }
    let attributes = attributes(user.clone(), resource, non_resource);
    review.status = Some(status(authorization.authorize(&attributes), resource));
    Ok(review)
}

/// A SubjectAccessReview: may the user of the spec do what it says?
pub fn subject_access_review(
    authorization: &Authorization,
    mut review: SubjectAccessReview,
) -> Result<SubjectAccessReview, StatusError> {
    let spec = review.spec.clone().unwrap_or_default();
    let mut errors = spec_errors(&spec);
    errors.extend(metadata_must_be_empty(review.metadata.as_ref(), false));
    if !errors.is_empty() {
        return Err(invalid(API_VERSION, "SubjectAccessReview", "", errors));
    }
    review.status = Some(decide(authorization, &spec));
    Ok(review)
}

/// A LocalSubjectAccessReview: a SubjectAccessReview within `metadata.namespace` (the request's; the
/// REST door has set it from the path).
pub fn local_subject_access_review(
    authorization: &Authorization,
    mut review: LocalSubjectAccessReview,
) -> Result<LocalSubjectAccessReview, StatusError> {
    let spec = review.spec.clone().unwrap_or_default();
    let namespace = review.metadata.as_ref().map(|m| m.namespace.clone()).unwrap_or_default();
    let mut errors = spec_errors(&spec);
    errors.extend(metadata_must_be_empty(review.metadata.as_ref(), true));
    if let Some(r) = &spec.resource_attributes
        && r.namespace != namespace
    {
        errors.push(format!(
            "spec.resourceAttributes.namespace: Invalid value: {}: must match metadata.namespace",
            go_value::quote(&r.namespace)
        ));
    }
    if let Some(n) = &spec.non_resource_attributes {
        errors.push(format!(
            "spec.nonResourceAttributes: Invalid value: {}: disallowed on this kind of request",
            go_value::non_resource_attributes(n)
        ));
    }
    if !errors.is_empty() {
        return Err(invalid(API_VERSION, "LocalSubjectAccessReview", "", errors));
    }
    if namespace.is_empty() {
        return Err(StatusError::bad_request("namespace is required on this type: "));
    }
    review.status = Some(decide(authorization, &spec));
    Ok(review)
}

/// A SelfSubjectRulesReview: what the caller may do in `spec.namespace`. The answer is a new object:
/// an empty spec and the rules (Kubernetes does not echo the question).
pub fn self_subject_rules_review(
    authorization: &Authorization,
    user: &UserInfo,
    review: SelfSubjectRulesReview,
) -> Result<SelfSubjectRulesReview, StatusError> {
    let namespace = review.spec.map(|s| s.namespace).unwrap_or_default();
    if namespace.is_empty() {
        return Err(StatusError::bad_request("no namespace on request"));
    }
    let rules = authorization.rbac.rules_review(user, &namespace);
    let mut status = SubjectRulesReviewStatus {
        resource_rules: rules
            .resource_rules
            .into_iter()
            .map(|r| ResourceRule {
                verbs: r.verbs,
                api_groups: r.api_groups,
                resources: r.resources,
                resource_names: r.resource_names,
            })
            .collect(),
        non_resource_rules: rules
            .non_resource_rules
            .into_iter()
            .map(|r| NonResourceRule { verbs: r.verbs, non_resource_ur_ls: r.non_resource_urls })
            .collect(),
        incomplete: rules.incomplete,
        evaluation_error: String::new(),
    };
    // The union of the Node authorizer and RBAC: a node's own rules cannot be listed.
    let mut errors: Vec<String> = Vec::new();
    if user.node_name().is_some() {
        status.incomplete = true;
        errors.push(NODE_RULES_UNSUPPORTED.to_string());
    }
    if !rules.evaluation_error.is_empty() {
        errors.push(rules.evaluation_error);
    }
    status.evaluation_error = go_format::aggregate(&errors);
    Ok(SelfSubjectRulesReview {
        spec: Some(SelfSubjectRulesReviewSpec::default()),
        status: Some(status),
        ..SelfSubjectRulesReview::default()
    })
}

/// The decision on a (Local)SubjectAccessReview's spec, for the user it names.
fn decide(authorization: &Authorization, spec: &SubjectAccessReviewSpec) -> SubjectAccessReviewStatus {
    let user = UserInfo {
        name: spec.user.clone(),
        uid: spec.uid.clone(),
        groups: spec.groups.clone(),
        extra: spec.extra.iter().map(|(k, v)| (k.clone(), v.items.clone())).collect(),
    };
    let (resource, non_resource) = (spec.resource_attributes.as_ref(), spec.non_resource_attributes.as_ref());
    let attributes = attributes(user, resource, non_resource);
    status(authorization.authorize(&attributes), resource)
}

/// Kubernetes' `ResourceAttributesFrom` / `NonResourceAttributesFrom`: an empty version is every
/// version.
fn attributes(
    user: UserInfo,
    resource: Option<&ResourceAttributes>,
    non_resource: Option<&NonResourceAttributes>,
) -> Attributes {
    match (resource, non_resource) {
        (Some(r), _) => {
            let version = if r.version.is_empty() { "*" } else { r.version.as_str() };
            Attributes::resource(user, r.verb.as_str(), r.group.as_str(), r.resource.as_str())
                .namespace(r.namespace.as_str())
                .subresource(r.subresource.as_str())
                .name(r.name.as_str())
                .api_version(version)
        }
        (None, Some(n)) => Attributes::non_resource(user, n.verb.as_str(), n.path.as_str()),
        (None, None) => Attributes::non_resource(user, "", ""),
    }
}

/// The status of a decision, with the selector parse errors Kubernetes reports beside it.
fn status(decision: Decision, resource: Option<&ResourceAttributes>) -> SubjectAccessReviewStatus {
    let (allowed, denied) = (decision.is_allowed(), matches!(decision, Decision::Deny(_)));
    SubjectAccessReviewStatus {
        allowed,
        denied,
        reason: decision.reason().to_string(),
        evaluation_error: selector_parse_errors(resource).join("; "),
    }
}

/// `ValidateSubjectAccessReviewSpec`.
fn spec_errors(spec: &SubjectAccessReviewSpec) -> Vec<String> {
    let (resource, non_resource) = (spec.resource_attributes.as_ref(), spec.non_resource_attributes.as_ref());
    let mut errors = exactly_one(resource, non_resource);
    if spec.user.is_empty() && spec.groups.is_empty() {
        errors.push(format!(
            "spec.user: Invalid value: {}: at least one of user or group must be specified",
            go_value::quote(&spec.user)
        ));
    }
    errors.extend(selector_errors(resource));
    errors
}

/// Exactly one of `resourceAttributes` and `nonResourceAttributes`.
fn exactly_one(
    resource: Option<&ResourceAttributes>,
    non_resource: Option<&NonResourceAttributes>,
) -> Vec<String> {
    match (resource, non_resource) {
        (Some(_), Some(n)) => vec![format!(
            "spec.nonResourceAttributes: Invalid value: {}: cannot be specified in combination with resourceAttributes",
            go_value::non_resource_attributes(n)
        )],
        (None, None) => vec![
            "spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified"
                .to_string(),
        ],
        _ => Vec::new(),
    }
}

/// `validateResourceAttributes`: a field or label selector gives its raw form or its requirements, not
/// both and not neither; requirements name a key.
fn selector_errors(resource: Option<&ResourceAttributes>) -> Vec<String> {
    let Some(r) = resource else { return Vec::new() };
    let mut errors = Vec::new();
    let mut check = |path: &str, raw: &str, keys: Vec<&str>| {
        if !raw.is_empty() && !keys.is_empty() {
            errors.push(format!(
                "{path}.rawSelector: Invalid value: {}: may not specified at the same time as requirements",
                go_value::quote(raw)
            ));
        }
        if raw.is_empty() && keys.is_empty() {
            errors.push(format!(
                "{path}.requirements: Required value: when {path} is specified, requirements or rawSelector is required"
            ));
        }
        for (i, key) in keys.iter().enumerate() {
            if key.is_empty() {
                errors.push(format!("{path}.requirements[{i}].key: Required value: must be specified"));
            }
        }
    };
    if let Some(f) = &r.field_selector {
        let keys = f.requirements.iter().map(|q| q.key.as_str()).collect();
        check("spec.resourceAttributes.fieldSelector", &f.raw_selector, keys);
    }
    if let Some(l) = &r.label_selector {
        let keys = l.requirements.iter().map(|q| q.key.as_str()).collect();
        check("spec.resourceAttributes.labelSelector", &l.raw_selector, keys);
    }
    errors
}

/// `BuildEvaluationError`'s selector part: selectors that do not parse are ignored (the decision is then
/// broader), and the answer says so.
fn selector_parse_errors(resource: Option<&ResourceAttributes>) -> Vec<String> {
    let Some(r) = resource else { return Vec::new() };
    let mut errors = Vec::new();
    if let Some(f) = &r.field_selector {
        let (parsed, failed) = if !f.requirements.is_empty() {
            let ok = f
                .requirements
                .iter()
                .filter(|q| matches!(q.operator.as_str(), "In" | "NotIn") && q.values.len() == 1)
                .count();
            (ok, ok < f.requirements.len())
        } else if !f.raw_selector.is_empty() {
            match crate::field_selector::FieldSelector::parse(&f.raw_selector) {
                Ok(_) => (1, false),
                Err(_) => (0, true),
            }
        } else {
            (0, false)
        };
        if failed {
            errors.push(ignored("fieldSelector", parsed));
        }
    }
    if let Some(l) = &r.label_selector {
        let (parsed, failed) = if !l.requirements.is_empty() {
            let ok = l
                .requirements
                .iter()
                .filter(|q| match q.operator.as_str() {
                    "In" | "NotIn" => !q.values.is_empty(),
                    "Exists" | "DoesNotExist" => q.values.is_empty(),
                    _ => false,
                })
                .count();
            (ok, ok < l.requirements.len())
        } else if !l.raw_selector.is_empty() {
            match navarch_api::selector::Selector::parse(&l.raw_selector) {
                Ok(_) => (1, false),
                Err(_) => (0, true),
            }
        } else {
            (0, false)
        };
        if failed {
            errors.push(ignored("labelSelector", parsed));
        }
    }
    errors
}

fn ignored(which: &str, parsed: usize) -> String {
    let how = if parsed > 0 { "partially ignored" } else { "ignored" };
    format!("spec.resourceAttributes.{which} {how} due to parse error")
}

/// `metadata: Invalid value: v1.ObjectMeta{...}: must be empty` (or `must be empty except for
/// namespace`): reviews carry no metadata (managed fields aside).
fn metadata_must_be_empty(meta: Option<&ObjectMeta>, except_namespace: bool) -> Option<String> {
    let meta = meta?;
    let mut rest = meta.clone();
    rest.managed_fields.clear();
    if except_namespace {
        rest.namespace.clear();
    }
    if rest == ObjectMeta::default() {
        return None;
    }
    let what = if except_namespace { "must be empty except for namespace" } else { "must be empty" };
    Some(format!("metadata: Invalid value: {}: {what}", go_value::object_meta(meta)))
}
