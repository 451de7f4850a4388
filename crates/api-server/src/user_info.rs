//! Who made a request: what authentication established (a client certificate's subject, a
//! ServiceAccount token's claims, a bootstrap token, or nobody) and what authorization, audit and
//! admission read. Kubernetes' `user.Info`.

use std::collections::BTreeMap;

/// The user `system:anonymous` in group `system:unauthenticated`: a request without credentials.
pub const ANONYMOUS: &str = "system:anonymous";
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// Added to every user that authenticated.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// Every ServiceAccount's groups: `system:serviceaccounts` and `system:serviceaccounts:<namespace>`.
pub const SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";
/// Kubernetes' superuser group (bound to `cluster-admin`); navarch issues no certificate in it.
pub const MASTERS_GROUP: &str = "system:masters";
/// Every node's group; node users are `system:node:<name>`.
pub const NODES_GROUP: &str = "system:nodes";
pub const NODE_USER_PREFIX: &str = "system:node:";
pub const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";

/// An authenticated (or anonymous) user. Carried in the request's extensions from the authentication
/// layer to every later step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    /// Empty for certificate users; the ServiceAccount's uid for its tokens.
    pub uid: String,
    pub groups: Vec<String>,
    /// e.g. `authentication.kubernetes.io/pod-name`, `authentication.kubernetes.io/credential-id`.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn anonymous() -> UserInfo {
        UserInfo { name: ANONYMOUS.into(), groups: vec![UNAUTHENTICATED_GROUP.into()], ..UserInfo::default() }
    }

    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS
    }

    /// `system:node:<name>` in group `system:nodes`: the node's name.
    pub fn node_name(&self) -> Option<&str> {
        let name = self.name.strip_prefix(NODE_USER_PREFIX)?;
        (self.groups.iter().any(|g| g == NODES_GROUP) && !name.is_empty()).then_some(name)
    }

    /// `system:serviceaccount:<namespace>:<name>`: (namespace, name).
    pub fn service_account(&self) -> Option<(&str, &str)> {
        let rest = self.name.strip_prefix(SERVICE_ACCOUNT_USER_PREFIX)?;
        let (namespace, name) = rest.split_once(':')?;
        (!namespace.is_empty() && !name.is_empty() && !name.contains(':')).then_some((namespace, name))
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities() {
        let node = UserInfo {
            name: "system:node:node-1".into(),
            groups: vec![NODES_GROUP.into()],
            ..UserInfo::default()
        };
        assert_eq!(node.node_name(), Some("node-1"));
        let not_node = UserInfo { name: "system:node:node-1".into(), ..UserInfo::default() };
        assert_eq!(not_node.node_name(), None, "the group is required");
        let sa = UserInfo { name: "system:serviceaccount:default:builder".into(), ..UserInfo::default() };
        assert_eq!(sa.service_account(), Some(("default", "builder")));
        assert!(UserInfo::anonymous().is_anonymous());
        assert!(UserInfo::anonymous().in_group(UNAUTHENTICATED_GROUP));
    }
}
