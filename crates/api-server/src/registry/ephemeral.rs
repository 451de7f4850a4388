//! Writes through `pods/<name>/ephemeralcontainers` (what `kubectl debug` patches), as Kubernetes'
//! `podEphemeralContainersStrategy` makes them: of the request only `spec.ephemeralContainers` is taken,
//! everything else of the pod stays as stored (`dropNonEphemeralContainerUpdates`), and the result is
//! validated by `ValidatePodEphemeralContainersUpdate` instead of the rules of a pod update (which refuse
//! any change of ephemeral containers). [`Registry::update`](super::Registry::update) does the rest
//! (concurrency, defaults, managed fields, the write).

use navarch_api::Object;

use super::{FieldManager, invalid};
use crate::error::ApiError;
use crate::validation;

/// The subresource's name, as a writer's `subresource` (it is also what `metadata.managedFields` records).
pub const SUBRESOURCE: &str = "ephemeralcontainers";

/// Whether `manager` writes through the subresource.
pub(super) fn through_subresource(manager: &FieldManager<'_>) -> bool {
    matches!(manager, FieldManager::Update(w) if w.subresource == SUBRESOURCE)
}

/// The stored pod with the request's ephemeral containers.
pub(super) fn prepare_update(request: &Object, stored: &Object) -> Result<Object, ApiError> {
    let (Object::Pod(request), Object::Pod(stored)) = (request, stored) else {
        return Err(ApiError::BadRequest(format!(
            "{}: only pods have the {SUBRESOURCE} subresource",
            request.info().plural
        )));
    };
    let mut pod = stored.clone();
    pod.spec.get_or_insert_with(Default::default).ephemeral_containers =
        request.spec.as_ref().map(|s| s.ephemeral_containers.clone()).unwrap_or_default();
    let mut pod = Object::Pod(pod);
    pod.set_type_meta();
    Ok(pod)
}

pub(super) fn check_valid(new: &Object, old: &Object) -> Result<(), ApiError> {
    let errs = validation::validate_ephemeral_containers_update(new, old);
    if errs.is_empty() { Ok(()) } else { Err(invalid(new, errs.iter().map(|e| e.to_string()).collect())) }
}

#[cfg(test)]
mod tests {
    use navarch_api::managed_fields::UpdateWriter;

    use super::*;

    fn pod(yaml: &str) -> Object {
        Object::Pod(serde_yaml::from_str(yaml).unwrap())
    }

    #[test]
    fn only_the_ephemeral_containers_of_the_request_are_taken() {
        let stored = pod(
            "{metadata: {name: web, labels: {a: b}}, spec: {containers: [{name: web, image: busybox:1.36}]}}",
        );
        let request = pod(
            "{metadata: {name: web, labels: {a: changed}}, spec: {containers: [{name: web, image: other}], ephemeralContainers: [{name: debug, image: busybox:1.36}]}}",
        );
        let Object::Pod(p) = prepare_update(&request, &stored).unwrap() else { unreachable!() };
        let spec = p.spec.unwrap();
        assert_eq!(spec.containers[0].image, "busybox:1.36");
        assert_eq!(spec.ephemeral_containers[0].name, "debug");
        assert_eq!(p.metadata.unwrap().labels["a"], "b");
        let cm = Object::ConfigMap(Default::default());
        assert!(matches!(prepare_update(&cm, &cm), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn the_subresource_is_the_writers() {
        let w = |subresource| {
            FieldManager::Update(UpdateWriter { manager: "kubectl", subresource, reset: false })
        };
        assert!(through_subresource(&w(SUBRESOURCE)));
        assert!(!through_subresource(&w("")) && !through_subresource(&w("status")));
    }
}
