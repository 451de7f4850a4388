//! What a request asks to do, in authorization's terms (Kubernetes' `authorizer.Attributes`), and an
//! authorizer's answer (`authorizer.Decision` with its reason).

use crate::user_info::UserInfo;

/// The verbs of resource requests (Kubernetes' `RequestInfo` verbs) plus the special verbs some
/// checks ask about. Non-resource requests use the HTTP method lower-cased (`get`, `post`, ...).
pub mod verbs {
    pub const GET: &str = "get";
    pub const LIST: &str = "list";
    pub const WATCH: &str = "watch";
    pub const CREATE: &str = "create";
    pub const UPDATE: &str = "update";
    pub const PATCH: &str = "patch";
    pub const DELETE: &str = "delete";
    pub const DELETE_COLLECTION: &str = "deletecollection";
    /// `--as` / `Impersonate-User`: on users, groups, serviceaccounts, uids, userextras/<key>.
    pub const IMPERSONATE: &str = "impersonate";
    /// Creating a (Cluster)RoleBinding to a role without holding its permissions.
    pub const BIND: &str = "bind";
    /// Creating or updating a (Cluster)Role with permissions not held.
    pub const ESCALATE: &str = "escalate";
    /// Approving a CertificateSigningRequest for a signer (`signers`, resourceName = signer).
    pub const APPROVE: &str = "approve";
    /// Signing a CertificateSigningRequest for a signer.
    pub const SIGN: &str = "sign";
    /// Using a PodSecurityPolicy-like object.
    pub const USE: &str = "use";
    /// `*` in a rule: every verb.
    pub const ALL: &str = "*";
}

/// One request as authorization sees it. Resource requests name a resource (`pods`), maybe a
/// subresource (`log`), a namespace (empty for cluster-scoped kinds and for lists across namespaces)
/// and a name (empty for list, watch of a collection, create without a name, deletecollection);
/// non-resource requests name a path (`/healthz`, `/apis`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub user: UserInfo,
    pub verb: String,
    pub namespace: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub is_resource_request: bool,
    pub path: String,
    /// The request's field selector as sent (`spec.nodeName=node-1`), empty when none: the Node
    /// authorizer lets a kubelet list and watch only its own pods.
    pub field_selector: String,
}

impl Attributes {
    /// A resource request of `user` with `verb` on `resource` in `api_group` (`""` = the core group);
    /// chain [`Attributes::namespace`], [`Attributes::name`], [`Attributes::subresource`] as needed.
    pub fn resource(
        user: UserInfo,
        verb: impl Into<String>,
        api_group: impl Into<String>,
        resource: impl Into<String>,
    ) -> Attributes {
        Attributes {
            user,
            verb: verb.into(),
            api_group: api_group.into(),
            resource: resource.into(),
            is_resource_request: true,
            ..Attributes::default()
        }
    }

    /// A non-resource request of `user`: `verb` is the HTTP method lower-cased.
    pub fn non_resource(user: UserInfo, verb: impl Into<String>, path: impl Into<String>) -> Attributes {
        Attributes { user, verb: verb.into(), path: path.into(), ..Attributes::default() }
    }

    pub fn namespace(mut self, namespace: impl Into<String>) -> Attributes {
        self.namespace = namespace.into();
        self
    }

    pub fn name(mut self, name: impl Into<String>) -> Attributes {
        self.name = name.into();
        self
    }

    pub fn subresource(mut self, subresource: impl Into<String>) -> Attributes {
        self.subresource = subresource.into();
        self
    }

    pub fn field_selector(mut self, field_selector: impl Into<String>) -> Attributes {
        self.field_selector = field_selector.into();
        self
    }

    pub fn api_version(mut self, api_version: impl Into<String>) -> Attributes {
        self.api_version = api_version.into();
        self
    }

    /// `get`, `list` and `watch` (Kubernetes' `IsReadOnly`).
    pub fn is_read_only(&self) -> bool {
        matches!(self.verb.as_str(), verbs::GET | verbs::LIST | verbs::WATCH)
    }
}

/// An authorizer's answer with its reason. RBAC only ever allows or has no opinion; `Deny` exists for
/// authorizers that refuse outright (a union of authorizers stops at the first `Allow` or `Deny`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// e.g. `RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to
    /// Group "system:masters"`.
    Allow(String),
    /// Empty, or the errors met while resolving the user's rules (`RBAC: clusterrole.rbac.authorization.k8s.io
    /// "missing" not found`): a request nothing allows is refused with this reason appended.
    NoOpinion(String),
    Deny(String),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow(r) | Decision::NoOpinion(r) | Decision::Deny(r) => r,
        }
    }
}
