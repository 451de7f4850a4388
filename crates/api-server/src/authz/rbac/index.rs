//! The in-memory RBAC index: every Role, ClusterRole, RoleBinding and ClusterRoleBinding, with the
//! bindings indexed by subject — cluster-wide for ClusterRoleBindings, per namespace for RoleBindings —
//! so a decision looks at the bindings naming the user or one of its groups and nothing else. Updated
//! one object at a time as watch events arrive.

use std::collections::HashMap;
use std::sync::Arc;

use crate::authz::go_format::quote;
use crate::authz::policy::{
    ClusterRole, ClusterRoleBinding, KIND_CLUSTER_ROLE, KIND_GROUP, KIND_ROLE, KIND_SERVICE_ACCOUNT,
    KIND_USER, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use crate::user_info::{SERVICE_ACCOUNT_USER_PREFIX, UserInfo};

/// A RoleBinding or ClusterRoleBinding as the index keeps it (`namespace` empty for the latter).
#[derive(Debug)]
pub(crate) struct StoredBinding {
    pub namespace: String,
    pub name: String,
    pub role_ref: RoleRef,
    pub subjects: Vec<Subject>,
}

impl StoredBinding {
    fn is_cluster_binding(&self) -> bool {
        self.namespace.is_empty()
    }

    /// The first subject that applies to `user` (Kubernetes reports that one in its reasons).
    pub fn applying_subject(&self, user: &UserInfo) -> Option<&Subject> {
        self.subjects.iter().find(|s| subject_applies(user, s, &self.namespace))
    }

    /// `ClusterRoleBinding "b" of ClusterRole "r" to Group "g"` or `RoleBinding "b/ns" of Role "r" to
    /// ServiceAccount "sa/ns"`.
    pub fn describe(&self, subject: &Subject) -> String {
        let (kind, name) = if self.is_cluster_binding() {
            ("ClusterRoleBinding", quote(&self.name))
        } else {
            ("RoleBinding", quote(&format!("{}/{}", self.name, self.namespace)))
        };
        format!(
            "{kind} {name} of {} {} to {}",
            self.role_ref.kind,
            quote(&self.role_ref.name),
            describe_subject(subject, &self.namespace)
        )
    }
}

fn describe_subject(s: &Subject, binding_namespace: &str) -> String {
    if s.kind == KIND_SERVICE_ACCOUNT {
        let namespace = if s.namespace.is_empty() { binding_namespace } else { &s.namespace };
        format!("{} {}", s.kind, quote(&format!("{}/{}", s.name, namespace)))
    } else {
        format!("{} {}", s.kind, quote(&s.name))
    }
}

/// Kubernetes' `appliesToUser`: a User subject by name, a Group by membership, a ServiceAccount by its
/// user name (its namespace defaulting to the binding's; none at all never matches).
pub(crate) fn subject_applies(user: &UserInfo, s: &Subject, binding_namespace: &str) -> bool {
    match s.kind.as_str() {
        KIND_USER => user.name == s.name,
        KIND_GROUP => user.in_group(&s.name),
        KIND_SERVICE_ACCOUNT => {
            let namespace = if s.namespace.is_empty() { binding_namespace } else { &s.namespace };
            !namespace.is_empty()
                && user
                    .name
                    .strip_prefix(SERVICE_ACCOUNT_USER_PREFIX)
                    .and_then(|rest| rest.strip_prefix(namespace))
                    .and_then(|rest| rest.strip_prefix(':'))
                    == Some(s.name.as_str())
        }
        _ => false,
    }
}

/// What a subject is looked up by: the user name (ServiceAccounts by `system:serviceaccount:<ns>:<name>`)
/// or the group.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SubjectKey {
    User(String),
    Group(String),
}

fn subject_key(s: &Subject, binding_namespace: &str) -> Option<SubjectKey> {
    match s.kind.as_str() {
        KIND_USER => Some(SubjectKey::User(s.name.clone())),
        KIND_GROUP => Some(SubjectKey::Group(s.name.clone())),
        KIND_SERVICE_ACCOUNT => {
            let namespace = if s.namespace.is_empty() { binding_namespace } else { &s.namespace };
            (!namespace.is_empty())
                .then(|| SubjectKey::User(format!("{SERVICE_ACCOUNT_USER_PREFIX}{namespace}:{}", s.name)))
        }
        _ => None,
    }
}

/// Bindings by the user names and groups their subjects name.
#[derive(Debug, Default)]
struct SubjectIndex {
    users: HashMap<String, Vec<Arc<StoredBinding>>>,
    groups: HashMap<String, Vec<Arc<StoredBinding>>>,
}

impl SubjectIndex {
    fn insert(&mut self, binding: &Arc<StoredBinding>) {
        for key in binding_keys(binding) {
            let (map, name) = self.map_for(key);
            map.entry(name).or_default().push(binding.clone());
        }
    }

    fn remove(&mut self, binding: &Arc<StoredBinding>) {
        for key in binding_keys(binding) {
            let (map, name) = self.map_for(key);
            if let Some(list) = map.get_mut(&name) {
                list.retain(|b| !Arc::ptr_eq(b, binding));
                if list.is_empty() {
                    map.remove(&name);
                }
            }
        }
    }

    fn map_for(&mut self, key: SubjectKey) -> (&mut HashMap<String, Vec<Arc<StoredBinding>>>, String) {
        match key {
            SubjectKey::User(name) => (&mut self.users, name),
            SubjectKey::Group(name) => (&mut self.groups, name),
        }
    }

    fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }

    /// The bindings naming `user` or one of its groups; a binding naming several of them comes once
    /// per name.
    fn candidates<'a>(&'a self, user: &'a UserInfo) -> impl Iterator<Item = &'a Arc<StoredBinding>> + 'a {
        let by_name = self.users.get(&user.name).into_iter().flatten();
        by_name.chain(user.groups.iter().filter_map(|g| self.groups.get(g)).flatten())
    }
}

/// The distinct lookup keys of a binding's subjects.
fn binding_keys(binding: &StoredBinding) -> Vec<SubjectKey> {
    let mut keys: Vec<SubjectKey> = Vec::with_capacity(binding.subjects.len());
    for key in binding.subjects.iter().filter_map(|s| subject_key(s, &binding.namespace)) {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// Object counts, for metrics and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexCounts {
    pub roles: usize,
    pub cluster_roles: usize,
    pub role_bindings: usize,
    pub cluster_role_bindings: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    /// namespace → name → rules.
    roles: HashMap<String, HashMap<String, Arc<[PolicyRule]>>>,
    cluster_roles: HashMap<String, Arc<[PolicyRule]>>,
    /// namespace → name → binding.
    role_bindings: HashMap<String, HashMap<String, Arc<StoredBinding>>>,
    cluster_role_bindings: HashMap<String, Arc<StoredBinding>>,
    cluster_subjects: SubjectIndex,
    /// namespace → that namespace's RoleBindings by subject.
    namespace_subjects: HashMap<String, SubjectIndex>,
}

impl Index {
    pub fn upsert_role(&mut self, role: Role) {
        self.roles.entry(role.namespace).or_default().insert(role.name, role.rules.into());
    }

    pub fn remove_role(&mut self, namespace: &str, name: &str) {
        if let Some(in_namespace) = self.roles.get_mut(namespace) {
            in_namespace.remove(name);
            if in_namespace.is_empty() {
                self.roles.remove(namespace);
            }
        }
    }

    pub fn upsert_cluster_role(&mut self, role: ClusterRole) {
        self.cluster_roles.insert(role.name, role.rules.into());
    }

    pub fn remove_cluster_role(&mut self, name: &str) {
        self.cluster_roles.remove(name);
    }

    /// A RoleBinding with an empty namespace is ignored: RoleBindings always have one, and an empty
    /// namespace would make it a ClusterRoleBinding here.
    pub fn upsert_role_binding(&mut self, b: RoleBinding) {
        if b.namespace.is_empty() {
            return;
        }
        self.remove_role_binding(&b.namespace, &b.name);
        let stored = Arc::new(StoredBinding {
            namespace: b.namespace.clone(),
            name: b.name.clone(),
            role_ref: b.role_ref,
            subjects: b.subjects,
        });
        self.namespace_subjects.entry(b.namespace.clone()).or_default().insert(&stored);
        self.role_bindings.entry(b.namespace).or_default().insert(b.name, stored);
    }

    pub fn remove_role_binding(&mut self, namespace: &str, name: &str) {
        let Some(in_namespace) = self.role_bindings.get_mut(namespace) else { return };
        let Some(old) = in_namespace.remove(name) else { return };
        if in_namespace.is_empty() {
            self.role_bindings.remove(namespace);
        }
        if let Some(subjects) = self.namespace_subjects.get_mut(namespace) {
            subjects.remove(&old);
            if subjects.is_empty() {
                self.namespace_subjects.remove(namespace);
            }
        }
    }

    pub fn upsert_cluster_role_binding(&mut self, b: ClusterRoleBinding) {
        self.remove_cluster_role_binding(&b.name);
        let stored = Arc::new(StoredBinding {
            namespace: String::new(),
            name: b.name.clone(),
            role_ref: b.role_ref,
            subjects: b.subjects,
        });
        self.cluster_subjects.insert(&stored);
        self.cluster_role_bindings.insert(b.name, stored);
    }

    pub fn remove_cluster_role_binding(&mut self, name: &str) {
        if let Some(old) = self.cluster_role_bindings.remove(name) {
            self.cluster_subjects.remove(&old);
        }
    }

    /// Forgets every object of one kind (`Role`, `ClusterRole`, `RoleBinding`, `ClusterRoleBinding`),
    /// before a relist of that kind adds them again.
    pub fn clear_kind(&mut self, kind: &str) {
        match kind {
            "Role" => self.roles.clear(),
            "ClusterRole" => self.cluster_roles.clear(),
            "RoleBinding" => {
                self.role_bindings.clear();
                self.namespace_subjects.clear();
            }
            "ClusterRoleBinding" => {
                self.cluster_role_bindings.clear();
                self.cluster_subjects = SubjectIndex::default();
            }
            _ => {}
        }
    }

    pub fn counts(&self) -> IndexCounts {
        IndexCounts {
            roles: self.roles.values().map(HashMap::len).sum(),
            cluster_roles: self.cluster_roles.len(),
            role_bindings: self.role_bindings.values().map(HashMap::len).sum(),
            cluster_role_bindings: self.cluster_role_bindings.len(),
        }
    }

    /// The bindings that may apply to `user` in `namespace`: ClusterRoleBindings first, then the
    /// namespace's RoleBindings (none for an empty namespace: cluster-scoped requests).
    pub fn candidates<'a>(
        &'a self,
        user: &'a UserInfo,
        namespace: &str,
    ) -> impl Iterator<Item = &'a Arc<StoredBinding>> + 'a {
        let in_namespace = if namespace.is_empty() { None } else { self.namespace_subjects.get(namespace) };
        self.cluster_subjects
            .candidates(user)
            .chain(in_namespace.into_iter().flat_map(|s| s.candidates(user)))
    }

    /// The rules `role_ref` grants in `binding_namespace` (Kubernetes' `GetRoleReferenceRules`).
    pub fn role_ref_rules<'a>(
        &'a self,
        role_ref: &'a RoleRef,
        binding_namespace: &str,
    ) -> Result<&'a Arc<[PolicyRule]>, MissingRole<'a>> {
        match role_ref.kind.as_str() {
            KIND_ROLE => self
                .roles
                .get(binding_namespace)
                .and_then(|in_namespace| in_namespace.get(&role_ref.name))
                .ok_or(MissingRole::Role(&role_ref.name)),
            KIND_CLUSTER_ROLE => {
                self.cluster_roles.get(&role_ref.name).ok_or(MissingRole::ClusterRole(&role_ref.name))
            }
            other => Err(MissingRole::UnsupportedKind(other)),
        }
    }
}

/// A role reference that resolves to nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MissingRole<'a> {
    Role(&'a str),
    ClusterRole(&'a str),
    UnsupportedKind(&'a str),
}

impl MissingRole<'_> {
    /// The error the authorizer's listers report: `clusterrole.rbac.authorization.k8s.io "x" not found`.
    pub fn lister_message(&self) -> String {
        match self {
            MissingRole::Role(name) => format!("role.rbac.authorization.k8s.io {} not found", quote(name)),
            MissingRole::ClusterRole(name) => {
                format!("clusterrole.rbac.authorization.k8s.io {} not found", quote(name))
            }
            MissingRole::UnsupportedKind(kind) => format!("unsupported role reference kind: {}", quote(kind)),
        }
    }
}
