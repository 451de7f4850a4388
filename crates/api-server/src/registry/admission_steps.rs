//! The admission steps the registry runs itself, around its writes: ServiceAccount admission of pod
//! creates, the storage plugins on claims and volumes, and the request's admission chain
//! ([`super::Admission`]: RBAC escalation, NodeRestriction, certificates) for writes made for a request.

use std::time::Duration;

use navarch_api::Object;

use super::{Registry, WriteOperation};
use crate::error::ApiError;

impl Registry {
    /// The storage admission of a claim or volume being created. DefaultStorageClass needs the
    /// StorageClass store synced; right after start it waits a little for it, then refuses (Kubernetes'
    /// "not yet ready to handle request").
    pub(super) async fn admit_storage(&self, obj: &mut Object) -> Result<(), ApiError> {
        let needs_classes =
            self.storage_admission.default_storage_class && matches!(obj, Object::PersistentVolumeClaim(_));
        let classes = match self.storage_classes.get() {
            Some(store) if needs_classes => {
                for _ in 0..100 {
                    if store.is_synced() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if !store.is_synced() {
                    let m = obj.meta();
                    let name = if m.name.is_empty() { &m.generate_name } else { &m.name };
                    return Err(ApiError::Forbidden(format!(
                        "{} {name:?} is forbidden: not yet ready to handle request",
                        obj.info().plural
                    )));
                }
                store.list()
            }
            _ => Vec::new(),
        };
        crate::admission::storage::admit(obj, self.storage_admission, &classes);
        Ok(())
    }

    /// Admission of a write, when it is made for a request.
    pub(super) fn admit_write(
        &self,
        operation: WriteOperation,
        new: Option<&Object>,
        old: Option<&Object>,
    ) -> Result<(), ApiError> {
        let (Some(admission), Some(user)) = (self.admission.get(), crate::request_context::current_user())
        else {
            return Ok(());
        };
        admission.admit(&user, operation, new, old)
    }

    /// The ServiceAccount admission of a pod being created (its namespace checked first, as
    /// Kubernetes' NamespaceLifecycle plugin runs before it).
    pub(super) async fn admit_pod(&self, obj: &mut Object) -> Result<(), ApiError> {
        let m = obj.meta();
        let namespace = m.namespace.clone();
        let name = if m.name.is_empty() { m.generate_name.clone() } else { m.name.clone() };
        self.check_namespace(&namespace).await?;
        let Object::Pod(pod) = obj else { return Ok(()) };
        let retry = crate::admission::service_account::Retry::default();
        crate::admission::service_account::admit_pod(pod, &namespace, self, retry)
            .await
            .map_err(|e| ApiError::Forbidden(format!("pods {name:?} is forbidden: {e}")))
    }
}
