//! The RBAC objects authorization works on (`rbac.authorization.k8s.io/v1` Role, ClusterRole,
//! RoleBinding, ClusterRoleBinding and their parts), as plain Rust types with Kubernetes' field
//! meanings. The registry converts the generated API kinds into these; nothing here knows the wire
//! format.

use std::collections::BTreeMap;

use navarch_api::v1::LabelSelector;

/// `rbac.authorization.k8s.io`: the API group of the RBAC kinds and of User/Group subjects.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
pub const KIND_ROLE: &str = "Role";
pub const KIND_CLUSTER_ROLE: &str = "ClusterRole";
pub const KIND_USER: &str = "User";
pub const KIND_GROUP: &str = "Group";
pub const KIND_SERVICE_ACCOUNT: &str = "ServiceAccount";
/// `*` in verbs, apiGroups, resources and nonResourceURLs.
pub const ALL: &str = "*";
/// Default-policy objects carrying `"false"` here are never reconciled; `"true"` marks them as the
/// api-server's to keep up to date.
pub const AUTO_UPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";
/// Every default-policy object has `kubernetes.io/bootstrapping: rbac-defaults`.
pub const BOOTSTRAPPING_LABEL: &str = "kubernetes.io/bootstrapping";
pub const BOOTSTRAPPING_LABEL_VALUE: &str = "rbac-defaults";

/// What a rule allows: every combination of its verbs with its (apiGroup, resource) pairs, limited
/// to `resource_names` when any are given — or its verbs on its `non_resource_urls`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    /// `pods`, `pods/log` (a subresource), `*/scale` (that subresource of anything), `*`.
    pub resources: Vec<String>,
    /// Empty: every name. Never matches a request without a name (list, create without a name).
    pub resource_names: Vec<String>,
    /// `/healthz`, `/apis/*` (a trailing `*` is a prefix match), `*`.
    pub non_resource_urls: Vec<String>,
}

impl PolicyRule {
    /// A resource rule.
    pub fn resource<S: AsRef<str>>(verbs: &[S], api_groups: &[S], resources: &[S]) -> PolicyRule {
        PolicyRule {
            verbs: owned(verbs),
            api_groups: owned(api_groups),
            resources: owned(resources),
            ..PolicyRule::default()
        }
    }

    /// A non-resource rule.
    pub fn non_resource<S: AsRef<str>>(verbs: &[S], urls: &[S]) -> PolicyRule {
        PolicyRule { verbs: owned(verbs), non_resource_urls: owned(urls), ..PolicyRule::default() }
    }

    /// This rule limited to `names`.
    pub fn with_names<S: AsRef<str>>(mut self, names: &[S]) -> PolicyRule {
        self.resource_names = owned(names);
        self
    }
}

fn owned<S: AsRef<str>>(items: &[S]) -> Vec<String> {
    items.iter().map(|s| s.as_ref().to_string()).collect()
}

/// Who a binding grants its role to: kind `User` or `Group` (apiGroup `rbac.authorization.k8s.io`) or
/// `ServiceAccount` (apiGroup `""`, a namespace; in a RoleBinding an empty namespace means the
/// binding's). Subjects of other kinds never match anyone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject {
    pub kind: String,
    pub api_group: String,
    pub name: String,
    pub namespace: String,
}

impl Subject {
    pub fn user(name: impl Into<String>) -> Subject {
        Subject {
            kind: KIND_USER.into(),
            api_group: RBAC_GROUP.into(),
            name: name.into(),
            namespace: String::new(),
        }
    }

    pub fn group(name: impl Into<String>) -> Subject {
        Subject {
            kind: KIND_GROUP.into(),
            api_group: RBAC_GROUP.into(),
            name: name.into(),
            namespace: String::new(),
        }
    }

    pub fn service_account(namespace: impl Into<String>, name: impl Into<String>) -> Subject {
        Subject {
            kind: KIND_SERVICE_ACCOUNT.into(),
            api_group: String::new(),
            name: name.into(),
            namespace: namespace.into(),
        }
    }
}

/// The role a binding grants: kind `Role` (a RoleBinding's own namespace) or `ClusterRole`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RoleRef {
    pub api_group: String,
    pub kind: String,
    pub name: String,
}

impl RoleRef {
    pub fn cluster_role(name: impl Into<String>) -> RoleRef {
        RoleRef { api_group: RBAC_GROUP.into(), kind: KIND_CLUSTER_ROLE.into(), name: name.into() }
    }

    pub fn role(name: impl Into<String>) -> RoleRef {
        RoleRef { api_group: RBAC_GROUP.into(), kind: KIND_ROLE.into(), name: name.into() }
    }
}

/// A Role with the metadata the default policy reconciles (labels, annotations).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Role {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub rules: Vec<PolicyRule>,
}

/// `aggregationRule`: the ClusterRole's rules are the union of the rules of the ClusterRoles matching
/// any of the selectors (kept up to date by the aggregation controller).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AggregationRule {
    pub cluster_role_selectors: Vec<LabelSelector>,
}

/// A ClusterRole with the metadata the default policy reconciles (labels, annotations).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterRole {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub rules: Vec<PolicyRule>,
    pub aggregation_rule: Option<AggregationRule>,
}

/// A RoleBinding with the metadata the default policy reconciles (labels, annotations).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleBinding {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub role_ref: RoleRef,
    pub subjects: Vec<Subject>,
}

/// A ClusterRoleBinding with the metadata the default policy reconciles (labels, annotations).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterRoleBinding {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub role_ref: RoleRef,
    pub subjects: Vec<Subject>,
}
