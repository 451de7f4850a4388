//! The default RBAC policy (Kubernetes' `plugin/pkg/auth/authorizer/rbac/bootstrappolicy`): the
//! ClusterRoles and ClusterRoleBindings the api-server creates and keeps up to date at start-up, with
//! Kubernetes' rules for the kinds navarch serves, labelled `kubernetes.io/bootstrapping: rbac-defaults`
//! and annotated `rbac.authorization.kubernetes.io/autoupdate: "true"`; and the reconciliation that
//! decides what to write ([`reconcile`]).
//!
//! Kubernetes' feature-gated rules (dynamic resource allocation, fine-grained kubelet authorization)
//! are left out. navarch runs one controller-manager identity, so `system:kube-controller-manager`
//! carries the rules of the `system:controller:*` roles of the controllers navarch runs
//! (`controller_manager.rs`). navarch's own additions: the `system:navarch:cluster-dns` ClusterRole
//! (reading Services, Endpoints, EndpointSlices, Namespaces) and Role in `kube-system` (registering
//! itself as `kube-dns`), the `navarch:certificatesigningrequests:kubeproxyclient` ClusterRole (a
//! joining node's kube-proxy asking for its client certificate), and bindings for navarch's admin
//! certificates' group, cluster-dns, the api-server's kubelet client and node TLS bootstrapping (named
//! `navarch:*`, as kubeadm names its own `kubeadm:*`).

mod controller_manager;
pub mod reconcile;

use std::collections::BTreeMap;

use navarch_api::v1::LabelSelector;

use super::policy::{
    AUTO_UPDATE_ANNOTATION, AggregationRule, BOOTSTRAPPING_LABEL, BOOTSTRAPPING_LABEL_VALUE, ClusterRole,
    ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use crate::user_info::{
    AUTHENTICATED_GROUP, MASTERS_GROUP, NODES_GROUP, SERVICE_ACCOUNTS_GROUP, UNAUTHENTICATED_GROUP,
};

pub(crate) const CORE: &str = "";
pub(crate) const APPS: &str = "apps";
pub(crate) const AUTHENTICATION: &str = "authentication.k8s.io";
pub(crate) const AUTHORIZATION: &str = "authorization.k8s.io";
pub(crate) const AUTOSCALING: &str = "autoscaling";
pub(crate) const BATCH: &str = "batch";
pub(crate) const CERTIFICATES: &str = "certificates.k8s.io";
pub(crate) const COORDINATION: &str = "coordination.k8s.io";
pub(crate) const DISCOVERY: &str = "discovery.k8s.io";
pub(crate) const EVENTS: &str = "events.k8s.io";
pub(crate) const EXTENSIONS: &str = "extensions";
pub(crate) const NETWORKING: &str = "networking.k8s.io";
pub(crate) const NODE: &str = "node.k8s.io";
pub(crate) const POLICY: &str = "policy";
pub(crate) const RBAC: &str = "rbac.authorization.k8s.io";
pub(crate) const STORAGE: &str = "storage.k8s.io";

pub(crate) const READ: &[&str] = &["get", "list", "watch"];
pub(crate) const READ_WRITE: &[&str] =
    &["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];
/// Kubernetes' `Write`: every mutating verb.
pub(crate) const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// `rbac.authorization.k8s.io/aggregate-to-admin` and friends: the labels `admin`, `edit` and `view`
/// gather roles by.
pub const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
pub const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
pub const AGGREGATE_TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

/// The group of navarch's admin certificates (bound to `cluster-admin`).
pub const CLUSTER_ADMINS_GROUP: &str = "navarch:cluster-admins";
/// Bootstrap tokens' group (kubelet TLS bootstrapping).
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";
/// The ClusterRole whose `create` on `certificatesigningrequests/kubeproxyclient` lets a CSR for a
/// `system:kube-proxy` client certificate be approved (the controller-manager asks a SubjectAccessReview of
/// its requester).
pub const KUBE_PROXY_CLIENT_ROLE: &str = "navarch:certificatesigningrequests:kubeproxyclient";
/// The user and role of the cluster DNS server.
pub const CLUSTER_DNS_USER: &str = "system:navarch:cluster-dns";
pub const SCHEDULER_USER: &str = "system:kube-scheduler";
pub const CONTROLLER_MANAGER_USER: &str = "system:kube-controller-manager";
pub const KUBE_PROXY_USER: &str = "system:kube-proxy";
/// The api-server's client certificate towards kubelets.
pub const APISERVER_KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";
pub const MONITORING_GROUP: &str = "system:monitoring";
/// Where cluster-dns registers itself (the Service and Endpoints `kube-dns`).
pub const KUBE_SYSTEM: &str = "kube-system";
pub const KUBE_DNS: &str = "kube-dns";

/// A rule on resources: verbs (sorted, deduplicated), groups as given, resources (sorted).
pub(crate) fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: sorted(verbs),
        api_groups: groups.iter().map(|g| g.to_string()).collect(),
        resources: sorted(resources),
        ..PolicyRule::default()
    }
}

/// A rule limited to resource names (sorted).
pub(crate) fn named(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule { resource_names: sorted(names), ..rule(verbs, groups, resources) }
}

/// A rule on non-resource URLs (sorted).
pub(crate) fn urls(verbs: &[&str], paths: &[&str]) -> PolicyRule {
    PolicyRule { verbs: sorted(verbs), non_resource_urls: sorted(paths), ..PolicyRule::default() }
}

fn sorted(items: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    out.sort();
    out.dedup();
    out
}

/// Kubernetes' `eventsRule()`: writing events in both event groups.
pub(crate) fn events_rule() -> PolicyRule {
    rule(&["create", "update", "patch"], &[CORE, EVENTS], &["events"])
}

fn default_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(BOOTSTRAPPING_LABEL.to_string(), BOOTSTRAPPING_LABEL_VALUE.to_string())])
}

fn default_annotations() -> BTreeMap<String, String> {
    BTreeMap::from([(AUTO_UPDATE_ANNOTATION.to_string(), "true".to_string())])
}

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        name: name.into(),
        labels: default_labels(),
        annotations: default_annotations(),
        rules,
        aggregation_rule: None,
    }
}

/// `role` with the extra label `key: "true"` (aggregated into the role selecting `key`).
fn labelled(mut role: ClusterRole, key: &str) -> ClusterRole {
    role.labels.insert(key.into(), "true".into());
    role
}

/// A ClusterRole whose rules are gathered from the roles labelled `key: "true"`.
fn aggregated(name: &str, key: &str) -> ClusterRole {
    let selector = LabelSelector {
        match_labels: BTreeMap::from([(key.to_string(), "true".to_string())]),
        ..LabelSelector::default()
    };
    ClusterRole {
        aggregation_rule: Some(AggregationRule { cluster_role_selectors: vec![selector] }),
        ..cluster_role(name, Vec::new())
    }
}

/// `system:aggregated-metrics-reader`, as metrics-server's manifest installs it: reading
/// `metrics.k8s.io` (what `kubectl top` needs), aggregated into view, edit and admin.
fn aggregated_metrics_reader() -> ClusterRole {
    let mut role = cluster_role(
        "system:aggregated-metrics-reader",
        vec![rule(&["get", "list", "watch"], &["metrics.k8s.io"], &["pods", "nodes"])],
    );
    role.labels.insert("k8s-app".into(), "metrics-server".into());
    [AGGREGATE_TO_ADMIN, AGGREGATE_TO_EDIT, AGGREGATE_TO_VIEW].into_iter().fold(role, labelled)
}

/// The default ClusterRoles, by name.
pub fn cluster_roles() -> Vec<ClusterRole> {
    let mut roles = vec![
        // A "root" role which can do absolutely anything.
        cluster_role("cluster-admin", vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])]),
        aggregated("admin", AGGREGATE_TO_ADMIN),
        labelled(aggregated("edit", AGGREGATE_TO_EDIT), AGGREGATE_TO_ADMIN),
        labelled(aggregated("view", AGGREGATE_TO_VIEW), AGGREGATE_TO_EDIT),
        labelled(cluster_role("system:aggregate-to-admin", aggregate_to_admin_rules()), AGGREGATE_TO_ADMIN),
        labelled(cluster_role("system:aggregate-to-edit", aggregate_to_edit_rules()), AGGREGATE_TO_EDIT),
        labelled(cluster_role("system:aggregate-to-view", aggregate_to_view_rules()), AGGREGATE_TO_VIEW),
        aggregated_metrics_reader(),
        cluster_role(
            "system:basic-user",
            vec![
                rule(&["create"], &[AUTHORIZATION], &["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
                rule(&["create"], &[AUTHENTICATION], &["selfsubjectreviews"]),
            ],
        ),
        cluster_role(
            "system:discovery",
            vec![urls(
                &["get"],
                &[
                    "/healthz",
                    "/livez",
                    "/readyz",
                    "/version",
                    "/version/",
                    "/openapi",
                    "/openapi/*",
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                ],
            )],
        ),
        cluster_role(
            "system:public-info-viewer",
            vec![urls(&["get"], &["/healthz", "/livez", "/readyz", "/version", "/version/"])],
        ),
        cluster_role(
            "system:monitoring",
            vec![urls(
                &["get"],
                &[
                    "/metrics",
                    "/metrics/slis",
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/livez/*",
                    "/readyz/*",
                    "/healthz/*",
                ],
            )],
        ),
        cluster_role(
            "system:auth-delegator",
            vec![
                rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
                rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
            ],
        ),
        cluster_role("system:kube-scheduler", scheduler_rules()),
        // What the scheduler's volume binding reads and writes (claimRefs, claims' selected node).
        cluster_role(
            "system:volume-scheduler",
            vec![
                rule(&["get", "list", "watch", "update", "patch"], &[CORE], &["persistentvolumes"]),
                rule(READ, &[STORAGE], &["storageclasses"]),
                rule(&["get", "list", "watch", "update", "patch"], &[CORE], &["persistentvolumeclaims"]),
            ],
        ),
        cluster_role("system:kube-controller-manager", controller_manager::rules()),
        cluster_role(
            "system:node-proxier",
            vec![
                rule(&["list", "watch"], &[CORE], &["services", "endpoints"]),
                rule(READ, &[CORE], &["nodes"]),
                events_rule(),
                rule(&["list", "watch"], &[DISCOVERY], &["endpointslices"]),
            ],
        ),
        cluster_role(
            "system:kubelet-api-admin",
            vec![
                rule(READ, &[CORE], &["nodes"]),
                rule(&["proxy"], &[CORE], &["nodes"]),
                rule(&["*"], &[CORE], &["nodes/proxy", "nodes/metrics", "nodes/stats", "nodes/log"]),
            ],
        ),
        cluster_role(
            "system:node-bootstrapper",
            vec![rule(&["create", "get", "list", "watch"], &[CERTIFICATES], &["certificatesigningrequests"])],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![rule(&["create"], &[CERTIFICATES], &["certificatesigningrequests/nodeclient"])],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![rule(&["create"], &[CERTIFICATES], &["certificatesigningrequests/selfnodeclient"])],
        ),
        cluster_role(
            KUBE_PROXY_CLIENT_ROLE,
            vec![rule(&["create"], &[CERTIFICATES], &["certificatesigningrequests/kubeproxyclient"])],
        ),
        cluster_role(
            "system:service-account-issuer-discovery",
            vec![urls(
                &["get"],
                &[
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                ],
            )],
        ),
        cluster_role("system:node", node_rules()),
        // For an out-of-tree dynamic provisioner (nobody is bound to it by default).
        cluster_role(
            "system:persistent-volume-provisioner",
            vec![
                rule(&["get", "list", "watch", "create", "delete"], &[CORE], &["persistentvolumes"]),
                // update: for the lock annotations of claims.
                rule(&["get", "list", "watch", "update"], &[CORE], &["persistentvolumeclaims"]),
                rule(READ, &[STORAGE], &["storageclasses"]),
                rule(&["watch"], &[CORE], &["events"]),
                events_rule(),
            ],
        ),
        cluster_role(
            CLUSTER_DNS_USER,
            vec![
                rule(READ, &[CORE], &["services", "endpoints", "namespaces"]),
                rule(READ, &[DISCOVERY], &["endpointslices"]),
            ],
        ),
    ];
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    roles
}

fn aggregate_to_admin_rules() -> Vec<PolicyRule> {
    vec![
        rule(&["create"], &[AUTHORIZATION], &["localsubjectaccessreviews"]),
        rule(READ_WRITE, &[RBAC], &["roles", "rolebindings"]),
    ]
}

/// Kubernetes' `edit` rules. Deliberately without `pods/ephemeralcontainers` (adding an ephemeral
/// container bypasses admission written for pods: Kubernetes leaves that to explicit grants).
fn aggregate_to_edit_rules() -> Vec<PolicyRule> {
    vec![
        // Secrets and proxies can be used to escalate: not in view.
        rule(
            READ,
            &[CORE],
            &["pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy"],
        ),
        rule(&["impersonate"], &[CORE], &["serviceaccounts"]),
        rule(WRITE, &[CORE], &["pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"]),
        rule(&["create"], &[CORE], &["pods/eviction"]),
        rule(
            WRITE,
            &[CORE],
            &[
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
                "events",
            ],
        ),
        rule(&["create"], &[CORE], &["serviceaccounts/token"]),
        rule(
            WRITE,
            &[APPS],
            &[
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ],
        ),
        rule(WRITE, &[AUTOSCALING], &["horizontalpodautoscalers"]),
        rule(WRITE, &[BATCH], &["jobs", "cronjobs"]),
        rule(
            WRITE,
            &[EXTENSIONS],
            &[
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "ingresses",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(WRITE, &[POLICY], &["poddisruptionbudgets"]),
        rule(WRITE, &[NETWORKING], &["networkpolicies", "ingresses"]),
        rule(READ_WRITE, &[COORDINATION], &["leases"]),
    ]
}

/// Kubernetes' `view` rules: read access to what is not an escalation path (no secrets, no proxies).
fn aggregate_to_view_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            &[CORE],
            &[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ],
        ),
        rule(
            READ,
            &[CORE],
            &[
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ],
        ),
        // Reading namespaces at namespace scope means reading *this* namespace.
        rule(READ, &[CORE], &["namespaces"]),
        rule(READ, &[DISCOVERY], &["endpointslices"]),
        rule(
            READ,
            &[APPS],
            &[
                "controllerrevisions",
                "statefulsets",
                "statefulsets/status",
                "statefulsets/scale",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/status",
                "deployments/scale",
                "replicasets",
                "replicasets/status",
                "replicasets/scale",
            ],
        ),
        rule(READ, &[AUTOSCALING], &["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
        rule(READ, &[BATCH], &["jobs", "cronjobs", "cronjobs/status", "jobs/status"]),
        rule(
            READ,
            &[EXTENSIONS],
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(READ, &[POLICY], &["poddisruptionbudgets", "poddisruptionbudgets/status"]),
        rule(READ, &[NETWORKING], &["networkpolicies", "ingresses", "ingresses/status"]),
    ]
}

fn scheduler_rules() -> Vec<PolicyRule> {
    vec![
        events_rule(),
        // Leader election: any lease may be created, only the scheduler's lease read and renewed.
        rule(&["create"], &[COORDINATION], &["leases"]),
        named(&["get", "list", "update", "watch"], &[COORDINATION], &["leases"], &["kube-scheduler"]),
        rule(READ_WRITE, &[COORDINATION], &["leasecandidates"]),
        rule(READ, &[CORE], &["nodes"]),
        rule(&["get", "list", "watch", "delete"], &[CORE], &["pods"]),
        rule(&["create"], &[CORE], &["pods/binding", "bindings"]),
        rule(&["patch", "update"], &[CORE], &["pods/status"]),
        rule(READ, &[CORE], &["replicationcontrollers", "services"]),
        rule(READ, &[APPS, EXTENSIONS], &["replicasets"]),
        rule(READ, &[APPS], &["statefulsets"]),
        rule(READ, &[POLICY], &["poddisruptionbudgets"]),
        rule(READ, &[CORE], &["persistentvolumeclaims", "persistentvolumes"]),
        // For delegated authentication and authorization.
        rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
        rule(READ, &[STORAGE], &["csinodes"]),
        rule(READ, &[STORAGE], &["volumeattachments"]),
        rule(READ, &[CORE], &["namespaces"]),
        rule(READ, &[STORAGE], &["csidrivers"]),
        rule(READ, &[STORAGE], &["csistoragecapacities"]),
    ]
}

/// Kubernetes' `system:node` rules, used alongside the Node authorizer (which limits each kubelet to
/// its own node's objects).
fn node_rules() -> Vec<PolicyRule> {
    vec![
        // Checking API access; these creates do not mutate anything.
        rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews", "localsubjectaccessreviews"]),
        rule(READ, &[CORE], &["services"]),
        rule(&["create", "get", "list", "watch"], &[CORE], &["nodes"]),
        rule(&["update", "patch"], &[CORE], &["nodes/status"]),
        rule(&["update", "patch"], &[CORE], &["nodes"]),
        rule(&["create", "update", "patch"], &[CORE], &["events"]),
        rule(READ, &[CORE], &["pods"]),
        // Mirror pods.
        rule(&["create", "delete"], &[CORE], &["pods"]),
        rule(&["update", "patch"], &[CORE], &["pods/status"]),
        rule(&["create"], &[CORE], &["pods/eviction"]),
        rule(READ, &[CORE], &["secrets", "configmaps"]),
        rule(&["get"], &[CORE], &["persistentvolumeclaims", "persistentvolumes"]),
        // navarch's local-path provisioner runs in the kubelet: it follows claims, volumes and classes,
        // and creates and deletes the volumes of its node (NodeRestriction narrows these to its own).
        rule(&["list", "watch"], &[CORE], &["persistentvolumeclaims", "persistentvolumes"]),
        rule(&["create", "delete"], &[CORE], &["persistentvolumes"]),
        rule(&["get", "list", "watch"], &[STORAGE], &["storageclasses"]),
        rule(&["get"], &[CORE], &["endpoints"]),
        rule(&["create", "get", "list", "watch"], &[CERTIFICATES], &["certificatesigningrequests"]),
        rule(&["delete", "create", "update", "get", "patch"], &[COORDINATION], &["leases"]),
        rule(&["get"], &[STORAGE], &["volumeattachments"]),
        rule(&["create"], &[CORE], &["serviceaccounts/token"]),
        rule(&["get", "update", "patch"], &[CORE], &["persistentvolumeclaims/status"]),
        rule(READ, &[STORAGE], &["csidrivers"]),
        rule(&["create", "delete", "get", "patch", "update"], &[STORAGE], &["csinodes"]),
        rule(READ, &[NODE], &["runtimeclasses"]),
    ]
}

fn binding(name: &str, role: &str, subjects: Vec<Subject>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        name: name.into(),
        labels: default_labels(),
        annotations: default_annotations(),
        role_ref: RoleRef::cluster_role(role),
        subjects,
    }
}

/// The default ClusterRoleBindings, by name.
pub fn cluster_role_bindings() -> Vec<ClusterRoleBinding> {
    let mut bindings = vec![
        binding("cluster-admin", "cluster-admin", vec![Subject::group(MASTERS_GROUP)]),
        binding("navarch:cluster-admins", "cluster-admin", vec![Subject::group(CLUSTER_ADMINS_GROUP)]),
        binding("system:monitoring", "system:monitoring", vec![Subject::group(MONITORING_GROUP)]),
        binding("system:discovery", "system:discovery", vec![Subject::group(AUTHENTICATED_GROUP)]),
        binding("system:basic-user", "system:basic-user", vec![Subject::group(AUTHENTICATED_GROUP)]),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            vec![Subject::group(AUTHENTICATED_GROUP), Subject::group(UNAUTHENTICATED_GROUP)],
        ),
        binding("system:node-proxier", "system:node-proxier", vec![Subject::user(KUBE_PROXY_USER)]),
        binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            vec![Subject::user(CONTROLLER_MANAGER_USER)],
        ),
        binding("system:kube-scheduler", "system:kube-scheduler", vec![Subject::user(SCHEDULER_USER)]),
        binding("system:volume-scheduler", "system:volume-scheduler", vec![Subject::user(SCHEDULER_USER)]),
        // Kubernetes keeps this binding without subjects: nodes are authorized by the Node authorizer.
        binding("system:node", "system:node", Vec::new()),
        binding(
            "system:service-account-issuer-discovery",
            "system:service-account-issuer-discovery",
            vec![Subject::group(SERVICE_ACCOUNTS_GROUP)],
        ),
        binding(CLUSTER_DNS_USER, CLUSTER_DNS_USER, vec![Subject::user(CLUSTER_DNS_USER)]),
        binding(
            "navarch:kube-apiserver-kubelet-client",
            "system:kubelet-api-admin",
            vec![Subject::user(APISERVER_KUBELET_CLIENT_USER)],
        ),
    ];
    bindings.extend(node_join_bindings());
    bindings.sort_by(|a, b| a.name.cmp(&b.name));
    bindings
}

/// What a node joining with a bootstrap token needs. The first three are the ones kubeadm makes
/// (`kubeadm:kubelet-bootstrap`, `kubeadm:node-autoapprove-bootstrap`,
/// `kubeadm:node-autoapprove-certificate-rotation`), named `navarch:*` here: bootstrap tokens may create
/// CertificateSigningRequests and have their kubelet client certificate approved, nodes have theirs
/// renewed. The fourth is navarch's: bootstrap tokens may also have a `system:kube-proxy` client
/// certificate approved, for the node's kube-proxy.
fn node_join_bindings() -> Vec<ClusterRoleBinding> {
    vec![
        binding(
            "navarch:kubelet-bootstrap",
            "system:node-bootstrapper",
            vec![Subject::group(BOOTSTRAPPERS_GROUP)],
        ),
        binding(
            "navarch:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![Subject::group(BOOTSTRAPPERS_GROUP)],
        ),
        binding(
            "navarch:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![Subject::group(NODES_GROUP)],
        ),
        binding(
            "navarch:kube-proxy-autoapprove-bootstrap",
            KUBE_PROXY_CLIENT_ROLE,
            // Joining (the token), and renewing as itself.
            vec![Subject::group(BOOTSTRAPPERS_GROUP), Subject::user(KUBE_PROXY_USER)],
        ),
        // kube-proxy runs with a client certificate (not a ServiceAccount token as in kubeadm): it asks
        // for the next one itself, as a node does.
        binding(
            "navarch:kube-proxy-certificate-rotation",
            "system:node-bootstrapper",
            vec![Subject::user(KUBE_PROXY_USER)],
        ),
    ]
}

/// The default Roles: cluster-dns's self-registration in `kube-system` (creating the Service and the
/// Endpoints `kube-dns`, updating those Endpoints), which a ClusterRole would grant in every namespace.
pub fn roles() -> Vec<Role> {
    vec![Role {
        namespace: KUBE_SYSTEM.into(),
        name: CLUSTER_DNS_USER.into(),
        labels: default_labels(),
        annotations: default_annotations(),
        rules: vec![
            rule(&["create"], &[CORE], &["services", "endpoints"]),
            named(&["get", "update"], &[CORE], &["endpoints"], &[KUBE_DNS]),
        ],
    }]
}

/// The default RoleBindings.
pub fn role_bindings() -> Vec<RoleBinding> {
    vec![RoleBinding {
        namespace: KUBE_SYSTEM.into(),
        name: CLUSTER_DNS_USER.into(),
        labels: default_labels(),
        annotations: default_annotations(),
        role_ref: RoleRef::role(CLUSTER_DNS_USER),
        subjects: vec![Subject::user(CLUSTER_DNS_USER)],
    }]
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
