//! The RBAC kinds as stored (`navarch_api::v1`) ↔ the authorizer's plain types ([`crate::authz::policy`]).

use std::collections::BTreeMap;

use navarch_api::Resource;
use navarch_api::v1;

use crate::authz;

fn rule(r: &v1::PolicyRule) -> authz::PolicyRule {
    authz::PolicyRule {
        verbs: r.verbs.clone(),
        api_groups: r.api_groups.clone(),
        resources: r.resources.clone(),
        resource_names: r.resource_names.clone(),
        non_resource_urls: r.non_resource_ur_ls.clone(),
    }
}

fn rule_out(r: &authz::PolicyRule) -> v1::PolicyRule {
    v1::PolicyRule {
        verbs: r.verbs.clone(),
        api_groups: r.api_groups.clone(),
        resources: r.resources.clone(),
        resource_names: r.resource_names.clone(),
        non_resource_ur_ls: r.non_resource_urls.clone(),
    }
}

fn subject(s: &v1::Subject) -> authz::Subject {
    authz::Subject {
        kind: s.kind.clone(),
        api_group: s.api_group.clone(),
        name: s.name.clone(),
        namespace: s.namespace.clone(),
    }
}

fn subject_out(s: &authz::Subject) -> v1::Subject {
    v1::Subject {
        kind: s.kind.clone(),
        api_group: s.api_group.clone(),
        name: s.name.clone(),
        namespace: s.namespace.clone(),
    }
}

fn role_ref(r: Option<&v1::RoleRef>) -> authz::RoleRef {
    r.map(|r| authz::RoleRef { api_group: r.api_group.clone(), kind: r.kind.clone(), name: r.name.clone() })
        .unwrap_or_default()
}

fn role_ref_out(r: &authz::RoleRef) -> v1::RoleRef {
    v1::RoleRef { api_group: r.api_group.clone(), kind: r.kind.clone(), name: r.name.clone() }
}

fn maps(meta: &v1::ObjectMeta) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    (
        meta.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        meta.annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    )
}

fn meta_out(
    namespace: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> v1::ObjectMeta {
    v1::ObjectMeta {
        namespace: namespace.to_string(),
        name: name.to_string(),
        labels: labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        annotations: annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        ..v1::ObjectMeta::default()
    }
}

pub fn role(r: &v1::Role) -> authz::Role {
    let (labels, annotations) = maps(r.meta());
    authz::Role {
        namespace: r.meta().namespace.clone(),
        name: r.meta().name.clone(),
        labels,
        annotations,
        rules: r.rules.iter().map(rule).collect(),
    }
}

pub fn cluster_role(r: &v1::ClusterRole) -> authz::ClusterRole {
    let (labels, annotations) = maps(r.meta());
    authz::ClusterRole {
        name: r.meta().name.clone(),
        labels,
        annotations,
        rules: r.rules.iter().map(rule).collect(),
        aggregation_rule: r
            .aggregation_rule
            .as_ref()
            .map(|a| authz::AggregationRule { cluster_role_selectors: a.cluster_role_selectors.clone() }),
    }
}

pub fn role_binding(b: &v1::RoleBinding) -> authz::RoleBinding {
    let (labels, annotations) = maps(b.meta());
    authz::RoleBinding {
        namespace: b.meta().namespace.clone(),
        name: b.meta().name.clone(),
        labels,
        annotations,
        role_ref: role_ref(b.role_ref.as_ref()),
        subjects: b.subjects.iter().map(subject).collect(),
    }
}

pub fn cluster_role_binding(b: &v1::ClusterRoleBinding) -> authz::ClusterRoleBinding {
    let (labels, annotations) = maps(b.meta());
    authz::ClusterRoleBinding {
        name: b.meta().name.clone(),
        labels,
        annotations,
        role_ref: role_ref(b.role_ref.as_ref()),
        subjects: b.subjects.iter().map(subject).collect(),
    }
}

/// The stored form of a default policy object, keeping the stored object's server-owned metadata
/// (uid, resourceVersion, ...) when `stored` is given.
pub fn role_out(r: &authz::Role, stored: Option<&v1::Role>) -> v1::Role {
    let mut meta = stored
        .map(|s| s.meta().clone())
        .unwrap_or_else(|| meta_out(&r.namespace, &r.name, &r.labels, &r.annotations));
    meta.labels = meta_out("", "", &r.labels, &r.annotations).labels;
    meta.annotations = meta_out("", "", &r.labels, &r.annotations).annotations;
    v1::Role { metadata: Some(meta), rules: r.rules.iter().map(rule_out).collect(), ..v1::Role::default() }
}

pub fn cluster_role_out(r: &authz::ClusterRole, stored: Option<&v1::ClusterRole>) -> v1::ClusterRole {
    let fresh = meta_out("", &r.name, &r.labels, &r.annotations);
    let mut meta = stored.map(|s| s.meta().clone()).unwrap_or_else(|| fresh.clone());
    meta.labels = fresh.labels;
    meta.annotations = fresh.annotations;
    v1::ClusterRole {
        metadata: Some(meta),
        rules: r.rules.iter().map(rule_out).collect(),
        aggregation_rule: r
            .aggregation_rule
            .as_ref()
            .map(|a| v1::AggregationRule { cluster_role_selectors: a.cluster_role_selectors.clone() }),
        ..v1::ClusterRole::default()
    }
}

pub fn role_binding_out(b: &authz::RoleBinding, stored: Option<&v1::RoleBinding>) -> v1::RoleBinding {
    let fresh = meta_out(&b.namespace, &b.name, &b.labels, &b.annotations);
    let mut meta = stored.map(|s| s.meta().clone()).unwrap_or_else(|| fresh.clone());
    meta.labels = fresh.labels;
    meta.annotations = fresh.annotations;
    v1::RoleBinding {
        metadata: Some(meta),
        role_ref: Some(role_ref_out(&b.role_ref)),
        subjects: b.subjects.iter().map(subject_out).collect(),
        ..v1::RoleBinding::default()
    }
}

pub fn cluster_role_binding_out(
    b: &authz::ClusterRoleBinding,
    stored: Option<&v1::ClusterRoleBinding>,
) -> v1::ClusterRoleBinding {
    let fresh = meta_out("", &b.name, &b.labels, &b.annotations);
    let mut meta = stored.map(|s| s.meta().clone()).unwrap_or_else(|| fresh.clone());
    meta.labels = fresh.labels;
    meta.annotations = fresh.annotations;
    v1::ClusterRoleBinding {
        metadata: Some(meta),
        role_ref: Some(role_ref_out(&b.role_ref)),
        subjects: b.subjects.iter().map(subject_out).collect(),
        ..v1::ClusterRoleBinding::default()
    }
}
