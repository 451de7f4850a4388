//! The rules of navarch's controller-manager: Kubernetes' `system:kube-controller-manager` role plus
//! the rules of the `system:controller:*` role of each controller navarch runs (Kubernetes gives every
//! controller its own ServiceAccount; navarch runs them under one identity), without duplicates.

use crate::authz::policy::PolicyRule;

use super::{
    APPS, AUTHENTICATION, AUTHORIZATION, AUTOSCALING, BATCH, CERTIFICATES, COORDINATION, CORE, EXTENSIONS,
    POLICY, RBAC, READ, STORAGE, events_rule, named, rule,
};

/// `system:kube-controller-manager`'s rules.
pub(super) fn rules() -> Vec<PolicyRule> {
    let mut out: Vec<PolicyRule> = Vec::new();
    let controllers = [
        base(),
        deployment_controller(),
        replicaset_controller(),
        replication_controller(),
        daemon_set_controller(),
        statefulset_controller(),
        job_controller(),
        cronjob_controller(),
        ttl_after_finished_controller(),
        disruption_controller(),
        horizontal_pod_autoscaler(),
        node_controller(),
        endpoint_controller(),
        namespace_controller(),
        service_account_controller(),
        garbage_collector(),
        service_controller(),
        clusterrole_aggregation_controller(),
        certificate_controller(),
        root_ca_cert_publisher(),
        persistent_volume_binder(),
        pvc_protection_controller(),
        pv_protection_controller(),
        resourcequota_controller(),
    ];
    for rule in controllers.into_iter().flatten() {
        if !out.contains(&rule) {
            out.push(rule);
        }
    }
    out
}

/// Kubernetes' `system:kube-controller-manager`: leader election on its lease, the secrets and
/// ServiceAccounts of the token controller, delegated authentication and authorization, and
/// list/watch on everything for the shared informers.
fn base() -> Vec<PolicyRule> {
    vec![
        events_rule(),
        rule(&["create"], &[COORDINATION], &["leases"]),
        named(&["get", "update"], &[COORDINATION], &["leases"], &["kube-controller-manager"]),
        rule(&["create"], &[CORE], &["secrets", "serviceaccounts"]),
        rule(&["delete"], &[CORE], &["secrets"]),
        rule(&["get"], &[CORE], &["namespaces", "secrets", "serviceaccounts", "configmaps"]),
        rule(&["update"], &[CORE], &["secrets", "serviceaccounts"]),
        rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
        rule(&["list", "watch"], &["*"], &["*"]),
        rule(&["create"], &[CORE], &["serviceaccounts/token"]),
    ]
}

/// `system:controller:deployment-controller`.
fn deployment_controller() -> Vec<PolicyRule> {
    vec![
        rule(&["get", "list", "watch", "update"], &[APPS, EXTENSIONS], &["deployments"]),
        rule(&["update"], &[APPS, EXTENSIONS], &["deployments/status"]),
        rule(&["update"], &[APPS, EXTENSIONS], &["deployments/finalizers"]),
        rule(
            &["get", "list", "watch", "create", "update", "patch", "delete"],
            &[APPS, EXTENSIONS],
            &["replicasets"],
        ),
        // Pods are only relabelled, for adoption.
        rule(&["get", "list", "watch", "update"], &[CORE], &["pods"]),
        events_rule(),
    ]
}

/// `system:controller:replicaset-controller`.
fn replicaset_controller() -> Vec<PolicyRule> {
    vec![
        rule(&["get", "list", "watch", "update"], &[APPS, EXTENSIONS], &["replicasets"]),
        rule(&["update"], &[APPS, EXTENSIONS], &["replicasets/status"]),
        rule(&["update"], &[APPS, EXTENSIONS], &["replicasets/finalizers"]),
        rule(&["list", "watch", "patch", "create", "delete"], &[CORE], &["pods"]),
        events_rule(),
    ]
}

/// `system:controller:replication-controller`.
fn replication_controller() -> Vec<PolicyRule> {
    vec![
        rule(&["get", "list", "watch", "update"], &[CORE], &["replicationcontrollers"]),
        rule(&["update"], &[CORE], &["replicationcontrollers/status"]),
        rule(&["update"], &[CORE], &["replicationcontrollers/finalizers"]),
        rule(&["list", "watch", "patch", "create", "delete"], &[CORE], &["pods"]),
        events_rule(),
    ]
}

/// `system:controller:daemon-set-controller`. navarch's client has no patch: pods are adopted and
/// released with `update`, which Kubernetes' role lacks.
fn daemon_set_controller() -> Vec<PolicyRule> {
    vec![
        rule(&["get", "list", "watch"], &[APPS, EXTENSIONS], &["daemonsets"]),
        rule(&["update"], &[APPS, EXTENSIONS], &["daemonsets/status"]),
        rule(&["update"], &[APPS, EXTENSIONS], &["daemonsets/finalizers"]),
        rule(&["list", "watch"], &[CORE], &["nodes"]),
        rule(&["list", "watch", "create", "delete", "update", "patch"], &[CORE], &["pods"]),
        rule(&["create"], &[CORE], &["pods/binding"]),
        rule(
            &["get", "list", "watch", "create", "delete", "update", "patch"],
            &[APPS],
            &["controllerrevisions"],
        ),
        events_rule(),
    ]
}

/// `system:controller:statefulset-controller` (with StatefulSetAutoDeletePVC's update and delete of
/// claims). navarch's client has no patch: pods and claims are adopted and released with `update`.
fn statefulset_controller() -> Vec<PolicyRule> {
    vec![
        rule(&["list", "watch"], &[CORE], &["pods"]),
        rule(&["list", "watch"], &[APPS], &["statefulsets"]),
        rule(&["update"], &[APPS], &["statefulsets/status"]),
        rule(&["update"], &[APPS], &["statefulsets/finalizers"]),
        rule(&["get", "create", "delete", "update", "patch"], &[CORE], &["pods"]),
        rule(
            &["get", "create", "delete", "update", "patch", "list", "watch"],
            &[APPS],
            &["controllerrevisions"],
        ),
        rule(&["get", "create"], &[CORE], &["persistentvolumeclaims"]),
        events_rule(),
        rule(&["update", "delete"], &[CORE], &["persistentvolumeclaims"]),
    ]
}

/// `system:controller:job-controller`. navarch's client has no patch: the tracking finalizer is
/// removed from pods (and adopted pods are labelled) with `update`, which Kubernetes' role lacks.
fn job_controller() -> Vec<PolicyRule> {
    vec![
        rule(&["get", "list", "watch", "update", "patch"], &[BATCH], &["jobs"]),
        rule(&["update", "patch"], &[BATCH], &["jobs/status"]),
        rule(&["update"], &[BATCH], &["jobs/finalizers"]),
        rule(&["list", "watch", "create", "delete", "update", "patch"], &[CORE], &["pods"]),
        events_rule(),
    ]
}

/// `system:controller:resourcequota-controller`: counts anything (list/watch on everything), writes the
/// quotas' status.
fn resourcequota_controller() -> Vec<PolicyRule> {
    vec![
        rule(&["list", "watch"], &["*"], &["*"]),
        rule(&["update"], &[CORE], &["resourcequotas/status"]),
        events_rule(),
    ]
}

/// `system:controller:disruption-controller`: reads budgets and the scale of pods' controllers, writes
/// the budgets' status.
fn disruption_controller() -> Vec<PolicyRule> {
    vec![
        rule(READ, &[EXTENSIONS, APPS], &["deployments"]),
        rule(READ, &[APPS, EXTENSIONS], &["replicasets"]),
        rule(READ, &[CORE], &["replicationcontrollers"]),
        rule(READ, &[POLICY], &["poddisruptionbudgets"]),
        rule(READ, &[APPS], &["statefulsets"]),
        rule(&["update"], &[POLICY], &["poddisruptionbudgets/status"]),
        rule(&["get"], &["*"], &["*/scale"]),
        rule(&["patch", "update"], &[CORE], &["pods/status"]),
        events_rule(),
    ]
}

/// `system:controller:horizontal-pod-autoscaler`: reads autoscalers, their targets' scale, pods and pod
/// metrics, writes autoscalers' status and the scale. navarch sets the scale through the target object
/// itself (`update` on the four scalable kinds), which Kubernetes' role reaches through `*/scale`.
fn horizontal_pod_autoscaler() -> Vec<PolicyRule> {
    vec![
        rule(READ, &[AUTOSCALING], &["horizontalpodautoscalers"]),
        rule(&["update"], &[AUTOSCALING], &["horizontalpodautoscalers/status"]),
        rule(&["get", "update"], &["*"], &["*/scale"]),
        rule(&["get", "update"], &[APPS], &["deployments", "replicasets", "statefulsets"]),
        rule(&["get", "update"], &[CORE], &["replicationcontrollers"]),
        rule(&["list"], &[CORE], &["pods"]),
        rule(&["list"], &["metrics.k8s.io"], &["pods"]),
        rule(&["get", "list"], &["custom.metrics.k8s.io"], &["*"]),
        rule(&["get", "list"], &["external.metrics.k8s.io"], &["*"]),
        events_rule(),
    ]
}

/// `system:controller:cronjob-controller`: creates, replaces and prunes the Jobs of CronJobs.
fn cronjob_controller() -> Vec<PolicyRule> {
    vec![
        rule(&["get", "list", "watch", "update"], &[BATCH], &["cronjobs"]),
        rule(&["get", "list", "watch", "create", "update", "delete", "patch"], &[BATCH], &["jobs"]),
        rule(&["update"], &[BATCH], &["cronjobs/status"]),
        rule(&["update"], &[BATCH], &["cronjobs/finalizers"]),
        rule(&["list", "delete"], &[CORE], &["pods"]),
        events_rule(),
    ]
}

/// `system:controller:ttl-after-finished-controller`: deletes finished Jobs whose TTL has passed.
fn ttl_after_finished_controller() -> Vec<PolicyRule> {
    vec![rule(&["get", "list", "watch", "delete"], &[BATCH], &["jobs"]), events_rule()]
}

/// `system:controller:node-controller` (node lifecycle; Kubernetes' node IPAM controller runs with
/// the same identity).
fn node_controller() -> Vec<PolicyRule> {
    vec![
        rule(&["get", "list", "update", "delete", "patch", "watch"], &[CORE], &["nodes"]),
        rule(&["patch", "update"], &[CORE], &["nodes/status"]),
        // Marking pods not ready when their node is.
        rule(&["patch", "update"], &[CORE], &["pods/status"]),
        // Evicting pods from unreachable nodes.
        rule(&["list", "get", "delete", "watch"], &[CORE], &["pods"]),
        events_rule(),
    ]
}

/// `system:controller:endpoint-controller`.
fn endpoint_controller() -> Vec<PolicyRule> {
    vec![
        rule(READ, &[CORE], &["services", "pods"]),
        rule(&["get", "list", "create", "update", "delete", "watch"], &[CORE], &["endpoints"]),
        rule(&["create"], &[CORE], &["endpoints/restricted"]),
        events_rule(),
    ]
}

/// `system:controller:namespace-controller`: deletes everything in a terminating namespace.
fn namespace_controller() -> Vec<PolicyRule> {
    vec![
        rule(&["get", "list", "watch", "delete"], &[CORE], &["namespaces"]),
        rule(&["update"], &[CORE], &["namespaces/finalize", "namespaces/status"]),
        rule(&["get", "list", "delete", "deletecollection", "watch"], &["*"], &["*"]),
    ]
}

/// `system:controller:service-account-controller`.
fn service_account_controller() -> Vec<PolicyRule> {
    vec![rule(&["create"], &[CORE], &["serviceaccounts"]), events_rule()]
}

/// `system:controller:generic-garbage-collector`: reads and updates owner references of, and
/// deletes, anything.
fn garbage_collector() -> Vec<PolicyRule> {
    vec![rule(&["get", "list", "watch", "patch", "update", "delete"], &["*"], &["*"]), events_rule()]
}

/// `system:controller:service-controller` (LoadBalancer Services).
fn service_controller() -> Vec<PolicyRule> {
    vec![
        rule(READ, &[CORE], &["services"]),
        rule(&["patch", "update"], &[CORE], &["services/status"]),
        rule(&["list", "watch"], &[CORE], &["nodes"]),
        events_rule(),
    ]
}

/// `system:controller:clusterrole-aggregation-controller`: `escalate` so it may write any rule into
/// an aggregated role.
fn clusterrole_aggregation_controller() -> Vec<PolicyRule> {
    vec![rule(&["escalate", "get", "list", "watch", "update", "patch"], &[RBAC], &["clusterroles"])]
}

/// `system:controller:certificate-controller` (CSR signing, approving and cleaning). Kubernetes'
/// approver approves only kubelet client certificates; navarch's also approves kubelet serving
/// certificates and kube-proxy client certificates (`kubernetes.io/kube-apiserver-client`).
fn certificate_controller() -> Vec<PolicyRule> {
    vec![
        rule(&["get", "list", "watch", "delete"], &[CERTIFICATES], &["certificatesigningrequests"]),
        rule(
            &["update"],
            &[CERTIFICATES],
            &["certificatesigningrequests/status", "certificatesigningrequests/approval"],
        ),
        named(
            &["approve"],
            &[CERTIFICATES],
            &["signers"],
            &[
                "kubernetes.io/kube-apiserver-client",
                "kubernetes.io/kube-apiserver-client-kubelet",
                "kubernetes.io/kubelet-serving",
            ],
        ),
        named(
            &["sign"],
            &[CERTIFICATES],
            &["signers"],
            &[
                "kubernetes.io/kube-apiserver-client",
                "kubernetes.io/kube-apiserver-client-kubelet",
                "kubernetes.io/kubelet-serving",
                "kubernetes.io/legacy-unknown",
            ],
        ),
        rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
        events_rule(),
    ]
}

/// `system:controller:root-ca-cert-publisher` (`kube-root-ca.crt` in every namespace).
fn root_ca_cert_publisher() -> Vec<PolicyRule> {
    vec![rule(&["create", "update"], &[CORE], &["configmaps"]), events_rule()]
}

/// `system:controller:persistent-volume-binder` (Kubernetes' rules without those of the removed in-tree
/// GlusterFS and OpenStack plugins). navarch's own addition: `create` of StorageClasses, for the default
/// `local-path` class the PV controller makes at start when it is missing.
fn persistent_volume_binder() -> Vec<PolicyRule> {
    vec![
        rule(&["get", "list", "watch", "update", "create", "delete"], &[CORE], &["persistentvolumes"]),
        rule(&["update"], &[CORE], &["persistentvolumes/status"]),
        rule(&["get", "list", "watch", "update"], &[CORE], &["persistentvolumeclaims"]),
        rule(&["update"], &[CORE], &["persistentvolumeclaims/status"]),
        rule(&["list", "watch", "get", "create", "delete"], &[CORE], &["pods"]),
        rule(READ, &[STORAGE], &["storageclasses"]),
        rule(&["create"], &[STORAGE], &["storageclasses"]),
        // Watching the events of recycler pods.
        rule(&["watch"], &[CORE], &["events"]),
        events_rule(),
    ]
}

/// `system:controller:pvc-protection-controller`: removes `kubernetes.io/pvc-protection` from claims no
/// pod uses.
fn pvc_protection_controller() -> Vec<PolicyRule> {
    vec![
        rule(&["get", "list", "watch", "update"], &[CORE], &["persistentvolumeclaims"]),
        rule(&["list", "watch", "get"], &[CORE], &["pods"]),
        events_rule(),
    ]
}

/// `system:controller:pv-protection-controller`: removes `kubernetes.io/pv-protection` from volumes no
/// longer bound.
fn pv_protection_controller() -> Vec<PolicyRule> {
    vec![rule(&["get", "list", "watch", "update"], &[CORE], &["persistentvolumes"]), events_rule()]
}
