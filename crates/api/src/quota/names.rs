//! The resource names and scopes of quotas (Kubernetes' `pkg/apis/core/helper` and
//! `pkg/apis/core/v1/helper` facts that ResourceQuota validation and the evaluators use).

use crate::names;

/// The suffix of per-class claim resources: `gold.storageclass.storage.k8s.io/requests.storage`.
pub const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// The scopes a quota may name (`spec.scopes`, `scopeSelector.matchExpressions[].scopeName`).
pub const SCOPES: &[&str] = &[
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
];

/// Names a quota may hold without a `/` (Kubernetes' `standardQuotaResources`).
const STANDARD_QUOTA_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

/// Names counted in whole units.
const INTEGER_RESOURCES: &[&str] = &[
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

/// The compute names pod scopes apply to.
const POD_COMPUTE_RESOURCES: &[&str] =
    &["cpu", "memory", "limits.cpu", "limits.memory", "requests.cpu", "requests.memory"];

/// `hugepages-<size>` or `requests.hugepages-<size>`.
pub fn is_quota_huge_pages(name: &str) -> bool {
    name.starts_with("hugepages-") || name.starts_with("requests.hugepages-")
}

/// Kubernetes' `IsStandardQuotaResourceName`.
pub fn is_standard_quota_resource(name: &str) -> bool {
    STANDARD_QUOTA_RESOURCES.contains(&name) || is_quota_huge_pages(name)
}

/// Kubernetes' `IsStandardResourceName`: the quota names and `storage`.
pub fn is_standard_resource(name: &str) -> bool {
    is_standard_quota_resource(name) || name == "storage"
}

/// In the `kubernetes.io` domain (unprefixed names are).
pub fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// Kubernetes' `IsExtendedResourceName`: another domain's resource, not `requests.`-prefixed, whose
/// `requests.` form is a qualified name.
pub fn is_extended_resource(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && names::qualified_name(&format!("requests.{name}")).is_empty()
}

/// Kubernetes' `IsIntegerResourceName`.
pub fn is_integer_resource(name: &str) -> bool {
    INTEGER_RESOURCES.contains(&name) || is_extended_resource(name)
}

/// Kubernetes' `IsResourceQuotaScopeValidForResource`.
pub fn is_scope_valid_for_resource(scope: &str, resource: &str) -> bool {
    match scope {
        "Terminating"
        | "NotTerminating"
        | "NotBestEffort"
        | "PriorityClass"
        | "CrossNamespacePodAffinity" => resource == "pods" || POD_COMPUTE_RESOURCES.contains(&resource),
        "BestEffort" => resource == "pods",
        _ => true,
    }
}

/// The object count name of a resource: `count/<plural>` for the core group, else
/// `count/<plural>.<group>`.
pub fn object_count_name(plural: &str, api_version: &str) -> String {
    match api_version.split_once('/') {
        Some((group, _)) => format!("count/{plural}.{group}"),
        None => format!("count/{plural}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_standard_quota_resource("requests.memory"));
        assert!(is_standard_quota_resource("hugepages-2Mi"));
        assert!(!is_standard_quota_resource("storage"));
        assert!(is_extended_resource("example.com/gpu"));
        assert!(!is_extended_resource("requests.example.com/gpu"));
        // Per-class storage names count as extended (whole units), as in Kubernetes.
        assert!(is_extended_resource("gold.storageclass.storage.k8s.io/requests.storage"));
        assert!(is_integer_resource("pods"));
        assert!(!is_integer_resource("cpu"));
        assert!(is_scope_valid_for_resource("BestEffort", "pods"));
        assert!(!is_scope_valid_for_resource("BestEffort", "requests.cpu"));
        assert!(is_scope_valid_for_resource("NotBestEffort", "limits.memory"));
        assert!(!is_scope_valid_for_resource("Terminating", "services"));
        assert_eq!(object_count_name("deployments", "apps/v1"), "count/deployments.apps");
        assert_eq!(object_count_name("pods", "v1"), "count/pods");
    }
}
