//! Kubernetes' storage admission plugins, for PersistentVolumeClaims and PersistentVolumes being created:
//!
//! * **DefaultStorageClass** (`plugin/pkg/admission/storage/storageclass/setdefault`): a claim that asks
//!   for no class (no `spec.storageClassName` and no beta class annotation; an empty string is a request
//!   for "no class" and is left alone) gets the default StorageClass — the one annotated
//!   `storageclass.kubernetes.io/is-default-class: "true"`, the newest if several are
//!   ([`navarch_api::storage::default_class`]); with no default class the claim is left as it is;
//! * **StorageObjectInUseProtection** (`plugin/pkg/admission/storage/storageobjectinuseprotection`): every
//!   new claim gets the finalizer `kubernetes.io/pvc-protection`, every new volume
//!   `kubernetes.io/pv-protection`, which the controller-manager's protection controllers remove once
//!   the object is no longer in use.
//!
//! The registry calls [`admit`] on create, after defaulting and before validation, with the StorageClasses
//! of the api-server's own store; `--disable-admission-plugins` turns either off.

use std::sync::Arc;

use navarch_api::Object;
use navarch_api::storage::{
    FINALIZER_PV_PROTECTION, FINALIZER_PVC_PROTECTION, claim_names_class, default_class,
};
use navarch_api::v1::StorageClass;

/// The plugins' names in `--disable-admission-plugins`.
pub const DEFAULT_STORAGE_CLASS: &str = "DefaultStorageClass";
pub const STORAGE_OBJECT_IN_USE_PROTECTION: &str = "StorageObjectInUseProtection";

/// Which of the plugins run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plugins {
    pub default_storage_class: bool,
    pub in_use_protection: bool,
}

impl Default for Plugins {
    fn default() -> Self {
        Plugins { default_storage_class: true, in_use_protection: true }
    }
}

/// Applies the plugins to `obj` (a claim or volume being created; other kinds are left alone). `classes`
/// are the StorageClasses as the api-server's store has them.
pub fn admit(obj: &mut Object, plugins: Plugins, classes: &[Arc<Object>]) {
    match obj {
        Object::PersistentVolumeClaim(pvc) => {
            if plugins.default_storage_class {
                let names_class = claim_names_class(pvc);
                let classes = classes.iter().filter_map(|o| match o.as_ref() {
                    Object::StorageClass(sc) => Some(sc),
                    _ => None,
                });
                if !names_class && let Some(class) = default_class(classes) {
                    let name = class_name(class);
                    tracing::debug!(claim = %obj_key(pvc.metadata.as_ref()), class = name, "default storage class");
                    pvc.spec.get_or_insert_with(Default::default).storage_class_name = Some(name.to_string());
                }
            }
            if plugins.in_use_protection {
                add_finalizer(obj, FINALIZER_PVC_PROTECTION);
            }
        }
        Object::PersistentVolume(_) if plugins.in_use_protection => {
            add_finalizer(obj, FINALIZER_PV_PROTECTION)
        }
        _ => {}
    }
}

fn class_name(sc: &StorageClass) -> &str {
    sc.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("")
}

fn obj_key(m: Option<&navarch_api::v1::ObjectMeta>) -> String {
    m.map(|m| format!("{}/{}", m.namespace, m.name)).unwrap_or_default()
}

fn add_finalizer(obj: &mut Object, finalizer: &str) {
    let finalizers = &mut obj.meta_mut().finalizers;
    if !finalizers.iter().any(|f| f == finalizer) {
        finalizers.push(finalizer.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Object {
        navarch_api::manifest::parse(yaml, "test.yaml").unwrap().remove(0)
    }

    fn class(name: &str, created: &str, default: bool) -> Arc<Object> {
        Arc::new(parse(&format!(
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: {name}\n  \
             creationTimestamp: '{created}'\n  annotations: {{storageclass.kubernetes.io/is-default-class: \
             '{default}'}}\nprovisioner: example.com/p\n"
        )))
    }

    const CLAIM: &str = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: default}\n\
                         spec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n";

    fn admitted(yaml: &str, classes: &[Arc<Object>]) -> Object {
        let mut obj = parse(yaml);
        admit(&mut obj, Plugins::default(), classes);
        obj
    }

    fn class_of(obj: &Object) -> Option<String> {
        let Object::PersistentVolumeClaim(pvc) = obj else { panic!("not a claim") };
        pvc.spec.as_ref().and_then(|s| s.storage_class_name.clone())
    }

    #[test]
    fn a_claim_without_class_gets_the_newest_default() {
        let classes = [
            class("old", "2024-01-01T00:00:00Z", true),
            class("new", "2024-03-01T00:00:00Z", true),
            class("newest-not-default", "2024-05-01T00:00:00Z", false),
        ];
        let obj = admitted(CLAIM, &classes);
        assert_eq!(class_of(&obj).as_deref(), Some("new"));
        assert_eq!(obj.meta().finalizers, ["kubernetes.io/pvc-protection"]);
    }

    #[test]
    fn a_claim_naming_a_class_or_none_is_left_alone() {
        let classes = [class("standard", "2024-01-01T00:00:00Z", true)];
        let named = CLAIM.replace("spec:\n", "spec:\n  storageClassName: fast\n");
        assert_eq!(class_of(&admitted(&named, &classes)).as_deref(), Some("fast"));
        let none = CLAIM.replace("spec:\n", "spec:\n  storageClassName: ''\n");
        assert_eq!(class_of(&admitted(&none, &classes)).as_deref(), Some(""));
        let beta = CLAIM.replace(
            "namespace: default}",
            "namespace: default, annotations: {volume.beta.kubernetes.io/storage-class: slow}}",
        );
        assert_eq!(class_of(&admitted(&beta, &classes)), None);
        // No default class: nothing set.
        assert_eq!(class_of(&admitted(CLAIM, &[class("x", "2024-01-01T00:00:00Z", false)])), None);
    }

    #[test]
    fn volumes_get_their_finalizer_once_and_plugins_can_be_off() {
        let pv = "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pv1, finalizers: [kubernetes.io/pv-protection]}\n\
                  spec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce], hostPath: {path: /x}}\n";
        assert_eq!(admitted(pv, &[]).meta().finalizers, ["kubernetes.io/pv-protection"]);
        let mut obj = parse(CLAIM);
        let off = Plugins { default_storage_class: false, in_use_protection: false };
        admit(&mut obj, off, &[class("standard", "2024-01-01T00:00:00Z", true)]);
        assert_eq!(class_of(&obj), None);
        assert!(obj.meta().finalizers.is_empty());
    }
}
