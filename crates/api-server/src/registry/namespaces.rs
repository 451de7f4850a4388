//! The registry's view of namespaces (Kubernetes' NamespaceLifecycle): which exist and which are
//! terminating (a cache kept by the registry's own writes, filled from etcd on a miss), the refusal of new
//! content in a terminating namespace, and the last step of a namespace's deletion once it holds nothing.

use navarch_api::{KINDS, Object};

use super::{FieldManager, Registry, SERVER_MANAGER, kind_of};
use crate::codec::{decode_value, namespace_prefix};
use crate::error::ApiError;
use crate::storage::StorageError;

impl Registry {
    /// Whether `namespace` exists and may receive new objects.
    pub(super) async fn check_namespace(&self, namespace: &str) -> Result<(), ApiError> {
        let cached = self.namespaces.read().expect("namespace cache lock").get(namespace).copied();
        let terminating = match cached {
            Some(t) => t,
            None => {
                let info = kind_of("Namespace")?;
                let key = self.key(info, "", namespace);
                let stored = self.storage.get(&key).await.map_err(|e| match e {
                    StorageError::NotFound(_) => {
                        ApiError::NotFound { plural: "namespaces".into(), name: namespace.into() }
                    }
                    e => ApiError::from_storage(e, "namespaces", namespace),
                })?;
                let obj = decode_value("Namespace", &stored.value, stored.mod_revision)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                let t = !obj.meta().deletion_timestamp.is_empty();
                self.note_namespace(namespace, Some(t));
                t
            }
        };
        if terminating {
            return Err(ApiError::Forbidden(format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            )));
        }
        Ok(())
    }

    pub(super) fn note_namespace(&self, name: &str, terminating: Option<bool>) {
        let mut m = self.namespaces.write().expect("namespace cache lock");
        match terminating {
            Some(t) => m.insert(name.to_string(), t),
            None => m.remove(name),
        };
    }

    pub(super) fn note_if_namespace(&self, obj: &Object, deleted: bool) {
        if let Object::Namespace(_) = obj {
            let t = if deleted { None } else { Some(!obj.meta().deletion_timestamp.is_empty()) };
            self.note_namespace(&obj.meta().name, t);
        }
    }

    /// The last step of namespace deletion: once a terminating namespace holds nothing, its `kubernetes`
    /// finalizer is removed and the namespace with it. (Deleting what it holds is the namespace
    /// controller's job; this only finishes when that is done, by whoever did it.)
    pub(super) async fn finish_namespace_if_empty(&self, namespace: &str) {
        let cached = self.namespaces.read().expect("namespace cache lock").get(namespace).copied();
        if cached == Some(false) {
            return;
        }
        let result: Result<(), ApiError> = async {
            let mut ns = self.get("Namespace", "", namespace).await?;
            let terminating = !ns.meta().deletion_timestamp.is_empty();
            self.note_namespace(namespace, Some(terminating));
            if !terminating || !self.namespace_is_empty(namespace).await? {
                return Ok(());
            }
            if let Object::Namespace(n) = &mut ns
                && let Some(spec) = n.spec.as_mut()
            {
                spec.finalizers.retain(|f| f != "kubernetes");
            }
            Box::pin(self.update(ns, false, false, FieldManager::update(SERVER_MANAGER))).await.map(|_| ())
        }
        .await;
        match result {
            Ok(()) | Err(ApiError::NotFound { .. }) | Err(ApiError::Conflict { .. }) => {}
            Err(e) => tracing::warn!(namespace, error = %e, "finishing namespace deletion"),
        }
    }

    pub(super) async fn namespace_is_empty(&self, namespace: &str) -> Result<bool, ApiError> {
        for info in KINDS.iter().filter(|k| k.namespaced && k.is_stored()) {
            let prefix = namespace_prefix(&self.prefix, info, namespace);
            if self
                .storage
                .any_under(&prefix)
                .await
                .map_err(|e| ApiError::from_storage(e, info.plural, ""))?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
