//! Resource names (`cpu`, `requests.storage`, `example.com/gpu`) as Kubernetes' `validateResourceName`
//! and `validateContainerResourceName` check them: qualified names, and without a domain one of the
//! standard names. Used by LimitRange (and any kind that keys a map by resource name).

use navarch_api::names;
pub(crate) use navarch_api::quota::names::is_native_resource;
use navarch_api::quota::names::{is_extended_resource as is_extended_resource_name, is_standard_resource};

use crate::validation::field::{Errors, Path, q};

/// Kubernetes' `IsStandardContainerResourceName`.
fn is_standard_container_resource_name(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

/// Kubernetes' `validateResourceName`: a qualified name; without a domain a standard one.
pub(crate) fn validate_resource_name(name: &str, path: &Path, errs: &mut Errors) {
    let reasons = names::qualified_name(name);
    if !reasons.is_empty() {
        errs.syntax(path, name, reasons);
        return;
    }
    if !name.contains('/') && !is_standard_resource(name) {
        errs.invalid(path, q(name), "must be a standard resource type or fully qualified");
    }
}

/// Kubernetes' `validateContainerResourceName`: [`validate_resource_name`], then a container's own
/// names (`cpu`, `memory`, `ephemeral-storage`, `hugepages-*`) or an extended resource.
pub(crate) fn validate_container_resource_name(name: &str, path: &Path, errs: &mut Errors) {
    validate_resource_name(name, path, errs);
    if !name.contains('/') {
        if !is_standard_container_resource_name(name) {
            errs.invalid(path, q(name), "must be a standard resource for containers");
        }
    } else if !is_native_resource(name) && !is_extended_resource_name(name) {
        errs.invalid(path, q(name), "doesn't follow extended resource name standard");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(f: fn(&str, &Path, &mut Errors), name: &str) -> Vec<String> {
        let mut errs = Errors::default();
        f(name, &Path::new("x"), &mut errs);
        errs.into_vec().into_iter().map(|e| e.reason).collect()
    }

    #[test]
    fn names_as_kubernetes_checks_them() {
        assert!(reasons(validate_resource_name, "requests.storage").is_empty());
        assert!(reasons(validate_resource_name, "example.com/foo").is_empty());
        assert_eq!(
            reasons(validate_resource_name, "gpu"),
            ["Invalid value: \"gpu\": must be a standard resource type or fully qualified"]
        );
        assert!(reasons(validate_container_resource_name, "hugepages-2Mi").is_empty());
        assert!(reasons(validate_container_resource_name, "example.com/gpu").is_empty());
        // Both checks speak for an unknown name, as in Kubernetes.
        assert_eq!(
            reasons(validate_container_resource_name, "gpu"),
            [
                "Invalid value: \"gpu\": must be a standard resource type or fully qualified",
                "Invalid value: \"gpu\": must be a standard resource for containers",
            ]
        );
        assert_eq!(
            reasons(validate_container_resource_name, "storage"),
            ["Invalid value: \"storage\": must be a standard resource for containers"]
        );
    }
}
