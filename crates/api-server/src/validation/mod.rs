//! Defaulting and validation of every kind, as Kubernetes' api-server does them (the `SetDefaults_*`
//! functions and `pkg/apis/*/validation`).
//!
//! [`apply_defaults`] fills in what Kubernetes fills in on create and update; [`validate`] returns every
//! problem of an object (and, on update, every forbidden change against the stored object) as
//! [`FieldError`]s whose paths and reasons read like Kubernetes' (`spec.replicas: Invalid value: -1: must
//! be greater than or equal to 0`).
//!
//! Ordering contract for the registry: call [`apply_defaults`] after `metadata.uid` is assigned (a Job's
//! selector is generated from it, as Kubernetes does) and before [`validate`]. Server-owned metadata
//! (creationTimestamp, generation, deletionTimestamp) and allocated Service values (clusterIP, nodePorts)
//! are the registry's to carry over from the stored object on update; they are not checked here.
//!
//! This file only dispatches by kind. The kinds live in `pod` (pods and pod templates), `workloads`,
//! `batch`, `autoscaling`, `policy`, `quota`, `scheduling`, `service`, `storage`, `limit_range`, `rbac`, `certificates`, `other` and `meta` (object metadata); the field paths,
//! error constructors and value helpers they all share are `field`'s.

mod autoscaling;
mod batch;
pub mod certificates;
mod field;
mod limit_range;
mod meta;
mod other;
mod pod;
pub mod policy;
mod quota;
pub mod rbac;
mod resource_names;
mod scheduling;
mod service;
mod storage;
#[cfg(test)]
mod testing;
mod workloads;

use navarch_api::Object;

pub use field::FieldError;
use field::{Errors, Path};

/// Fills in what Kubernetes defaults on create and update.
pub fn apply_defaults(obj: &mut Object) {
    match obj {
        Object::Namespace(o) => other::default_namespace(o),
        Object::Node(o) => other::default_node(o),
        Object::Pod(o) => pod::default_pod(o),
        Object::Service(o) => service::default_service(o),
        Object::Endpoints(o) => other::default_endpoints(o),
        Object::Secret(o) => other::default_secret(o),
        Object::ReplicaSet(o) => workloads::default_replica_set(o),
        Object::ReplicationController(o) => workloads::default_replication_controller(o),
        Object::Deployment(o) => workloads::default_deployment(o),
        Object::DaemonSet(o) => workloads::default_daemon_set(o),
        Object::StatefulSet(o) => workloads::default_stateful_set(o),
        Object::Job(o) => batch::default_job(o),
        Object::CronJob(o) => batch::default_cron_job(o),
        Object::HorizontalPodAutoscaler(o) => autoscaling::default_horizontal_pod_autoscaler(o),
        Object::RoleBinding(o) => rbac::default_role_binding(o),
        Object::ClusterRoleBinding(o) => rbac::default_cluster_role_binding(o),
        Object::CertificateSigningRequest(o) => certificates::default_certificate_signing_request(o),
        Object::PersistentVolume(o) => storage::default_persistent_volume(o),
        Object::PersistentVolumeClaim(o) => storage::default_persistent_volume_claim(o),
        Object::StorageClass(o) => storage::default_storage_class(o),
        Object::PriorityClass(o) => scheduling::default_priority_class(o),
        Object::LimitRange(o) => limit_range::default_limit_range(o),
        Object::ConfigMap(_)
        | Object::ServiceAccount(_)
        | Object::Event(_)
        | Object::Lease(_)
        | Object::ControllerRevision(_)
        | Object::Role(_)
        | Object::ClusterRole(_)
        | Object::PodDisruptionBudget(_)
        | Object::ResourceQuota(_)
        | Object::NodeMetrics(_)
        | Object::PodMetrics(_) => {}
    }
}

/// What the kind's strategy sets on create (`old` None) and on an update of more than the status,
/// after defaulting: a DaemonSet's template generation; a new PersistentVolume's or claim's initial status;
/// a new ResourceQuota's empty status.
pub fn prepare_write(obj: &mut Object, old: Option<&Object>) {
    match obj {
        Object::DaemonSet(ds) => {
            let old = match old {
                Some(Object::DaemonSet(o)) => Some(o),
                _ => None,
            };
            workloads::prepare_daemon_set(ds, old);
        }
        Object::PersistentVolume(_) | Object::PersistentVolumeClaim(_) => {
            storage::prepare_write(obj, old, &now());
        }
        // A new quota starts without status: only the resource quota controller computes it.
        Object::ResourceQuota(q) if old.is_none() => q.status = None,
        _ => {}
    }
}

/// What the kind's strategy sets on a status write: a PersistentVolume's `lastPhaseTransitionTime`.
pub fn prepare_status_write(new: &mut Object, old: &Object) {
    storage::prepare_status_write(new, old, &now());
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Validates `obj`; `old` is the stored object on update (then immutable fields are checked too).
pub fn validate(obj: &Object, old: Option<&Object>) -> Vec<FieldError> {
    let mut errs = Errors::default();
    if old.is_some_and(|old| old.kind() != obj.kind()) {
        errs.immutable(&Path::new("kind"));
        return errs.into_vec();
    }
    meta::validate_object_meta(obj.meta(), obj.info(), name_rule(obj), &Path::new("metadata"), &mut errs);
    if let Some(old) = old {
        meta::validate_object_meta_update(obj.meta(), old.meta(), &Path::new("metadata"), &mut errs);
    }

    /// The stored object as the same kind as `obj` (checked above).
    macro_rules! old_as {
        ($kind:ident) => {
            old.and_then(|o| match o {
                Object::$kind(o) => Some(o),
                _ => None,
            })
        };
    }
    match obj {
        Object::Namespace(o) => other::validate_namespace(o, &mut errs),
        Object::Node(o) => other::validate_node(o, old_as!(Node), &mut errs),
        Object::Pod(o) => pod::validate_pod(o, old_as!(Pod), &mut errs),
        Object::Service(o) => service::validate_service(o, old_as!(Service), &mut errs),
        Object::Endpoints(o) => other::validate_endpoints(o, &mut errs),
        Object::ConfigMap(o) => other::validate_config_map(o, old_as!(ConfigMap), &mut errs),
        Object::Secret(o) => other::validate_secret(o, old_as!(Secret), &mut errs),
        Object::ServiceAccount(o) => other::validate_service_account(o, &mut errs),
        Object::Event(o) => other::validate_event(o, &mut errs),
        Object::LimitRange(o) => limit_range::validate_limit_range(o, &mut errs),
        Object::ReplicaSet(o) => workloads::validate_replica_set(o, old_as!(ReplicaSet), &mut errs),
        Object::ReplicationController(o) => workloads::validate_replication_controller(o, &mut errs),
        Object::Deployment(o) => workloads::validate_deployment(o, old_as!(Deployment), &mut errs),
        Object::DaemonSet(o) => workloads::validate_daemon_set(o, old_as!(DaemonSet), &mut errs),
        Object::StatefulSet(o) => workloads::validate_stateful_set(o, old_as!(StatefulSet), &mut errs),
        Object::ControllerRevision(o) => {
            workloads::validate_controller_revision(o, old_as!(ControllerRevision), &mut errs)
        }
        Object::Job(o) => batch::validate_job(o, old_as!(Job), &mut errs),
        Object::CronJob(o) => batch::validate_cron_job(o, &mut errs),
        Object::PodDisruptionBudget(o) => policy::validate_pod_disruption_budget(o, &mut errs),
        Object::HorizontalPodAutoscaler(o) => autoscaling::validate_horizontal_pod_autoscaler(o, &mut errs),
        Object::PersistentVolume(o) => {
            storage::validate_persistent_volume(o, old_as!(PersistentVolume), &mut errs)
        }
        Object::PersistentVolumeClaim(o) => {
            storage::validate_persistent_volume_claim(o, old_as!(PersistentVolumeClaim), &mut errs)
        }
        Object::StorageClass(o) => storage::validate_storage_class(o, old_as!(StorageClass), &mut errs),
        Object::PriorityClass(o) => scheduling::validate_priority_class(o, old_as!(PriorityClass), &mut errs),
        Object::ResourceQuota(o) => quota::validate_resource_quota(o, old_as!(ResourceQuota), &mut errs),
        Object::Lease(o) => other::validate_lease(o, &mut errs),
        Object::Role(o) => rbac::validate_role(o, &mut errs),
        Object::ClusterRole(o) => rbac::validate_cluster_role(o, &mut errs),
        Object::RoleBinding(o) => rbac::validate_role_binding(o, old_as!(RoleBinding), &mut errs),
        Object::ClusterRoleBinding(o) => {
            rbac::validate_cluster_role_binding(o, old_as!(ClusterRoleBinding), &mut errs)
        }
        Object::CertificateSigningRequest(o) => certificates::validate_certificate_signing_request(
            o,
            old_as!(CertificateSigningRequest),
            &mut errs,
        ),
        // Never written: the metrics pipeline answers reads of these, writes are refused before here.
        Object::NodeMetrics(_) | Object::PodMetrics(_) => {}
    }
    errs.into_vec()
}

/// Validates a write through `pods/<name>/ephemeralcontainers` (Kubernetes'
/// `ValidatePodEphemeralContainersUpdate`): `new` is the stored pod `old` with the request's ephemeral
/// containers, defaulted. Only pods have the subresource.
pub fn validate_ephemeral_containers_update(new: &Object, old: &Object) -> Vec<FieldError> {
    let mut errs = Errors::default();
    let (Object::Pod(new_pod), Object::Pod(old_pod)) = (new, old) else {
        errs.forbidden(&Path::new("kind"), format!("{} has no ephemeral containers", new.kind()));
        return errs.into_vec();
    };
    let meta_path = Path::new("metadata");
    meta::validate_object_meta(new.meta(), new.info(), name_rule(new), &meta_path, &mut errs);
    meta::validate_object_meta_update(new.meta(), old.meta(), &meta_path, &mut errs);
    pod::validate_ephemeral_containers_update(new_pod, old_pod, &mut errs);
    errs.into_vec()
}

/// Which syntax a kind's names must follow.
fn name_rule(obj: &Object) -> meta::NameRule {
    match obj {
        Object::Namespace(_) => meta::NameRule::Dns1123Label,
        Object::Service(_) => meta::NameRule::Dns1035Label,
        // Jobs get an 11-character suffix (`-<minutes>`) and must stay a 63-character label.
        Object::CronJob(_) => meta::NameRule::Dns1123SubdomainMax(52),
        // RBAC objects may have any name that is one URL path segment (`system:controller:...`);
        // CertificateSigningRequests too (Kubernetes checks nothing more).
        Object::Role(_)
        | Object::ClusterRole(_)
        | Object::RoleBinding(_)
        | Object::ClusterRoleBinding(_)
        | Object::CertificateSigningRequest(_) => meta::NameRule::PathSegment,
        _ => meta::NameRule::Dns1123Subdomain,
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    /// The api crate's manifest fixtures (real-shaped manifests of every kind) validate once the registry
    /// has done its part (namespace and uid assigned) and defaults are applied.
    #[test]
    fn api_fixtures_validate() {
        for (file, text) in [
            ("app.yaml", include_str!("../../../api/tests/fixtures/app.yaml")),
            ("misc.yaml", include_str!("../../../api/tests/fixtures/misc.yaml")),
        ] {
            let objs = navarch_api::manifest::parse(text, file).unwrap();
            assert!(objs.len() > 2, "{file}");
            for mut obj in objs {
                if obj.info().namespaced && obj.meta().namespace.is_empty() {
                    obj.meta_mut().namespace = "default".into();
                }
                obj.meta_mut().uid = "0a1b2c3d-0000-4000-8000-000000000001".into();
                apply_defaults(&mut obj);
                let errs = validate(&obj, None);
                assert!(
                    errs.is_empty(),
                    "{file}: {} {}:
{}",
                    obj.kind(),
                    obj.key(),
                    render(&errs)
                );
            }
        }
    }

    #[test]
    fn kind_change_is_rejected() {
        let cm = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\n");
        let sa = parse("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: default}\n");
        let errs = validate(&sa, Some(&cm));
        assert_single(&errs, "kind", "field is immutable", "");
    }
}
