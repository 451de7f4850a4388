//! Kubernetes' Priority admission plugin (`plugin/pkg/admission/priority`) and the PriorityClass
//! storage rule that goes with it:
//!
//! * **pod creates** (mutating): `spec.priorityClassName` names the class whose value becomes
//!   `spec.priority` and whose policy becomes `spec.preemptionPolicy`; a pod naming no class gets the
//!   global default class (its name is written into `priorityClassName` too) or, when there is none,
//!   priority 0 and `PreemptLowerPriority`. An unknown class, or a `priority`/`preemptionPolicy` the pod
//!   sets itself that differs from the class's, is refused with Kubernetes' messages ([`admit_pod_spec`]).
//!   Kubernetes 1.17+ no longer limits the system classes to `kube-system`: that is left to ResourceQuota
//!   (a quota scoped to `PriorityClass In [...]`), as there;
//! * **pod updates**: a `priority` or `preemptionPolicy` the update leaves out keeps its stored value;
//! * **PriorityClass creates and updates** (validating): at most one class is the global default
//!   (`PriorityClass <name> is already marked as default. Only one default can exist`);
//! * **deletes**: the built-in classes `system-node-critical` and `system-cluster-critical` cannot be
//!   deleted ([`refuse_system_class_delete`]).
//!
//! The classes come from the api-server's own store; a name the store has not seen yet (created an instant
//! ago) is read from etcd before the pod is refused, and the global-default check of a class write reads
//! etcd. Refusals are 403 Forbidden `<resource> "<name>" is forbidden: <why>`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use navarch_api::Object;
use navarch_api::priority::{self, DEFAULT_PRIORITY, PREEMPT_LOWER_PRIORITY, class_name, global_default};
use navarch_api::v1::{PodSpec, PriorityClass};

use crate::error::ApiError;
use crate::local_store::LocalStore;
use crate::registry::{ListOptions, Registry, WriteOperation};

/// The plugin's name in `--disable-admission-plugins`.
pub const PLUGIN: &str = "Priority";
/// The qualified resource of PriorityClasses in messages.
const RESOURCE: &str = "priorityclasses.scheduling.k8s.io";

/// Where classes are read when the store is not enough (the registry, i.e. etcd; a list in tests).
pub trait PriorityClasses: Sync {
    /// The class named `name`, if it exists.
    fn priority_class(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<PriorityClass>, ApiError>> + Send;
    /// Every class.
    fn priority_classes(&self) -> impl Future<Output = Result<Vec<PriorityClass>, ApiError>> + Send;
}

impl PriorityClasses for Registry {
    async fn priority_class(&self, name: &str) -> Result<Option<PriorityClass>, ApiError> {
        match self.get("PriorityClass", "", name).await {
            Ok(Object::PriorityClass(pc)) => Ok(Some(pc)),
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn priority_classes(&self) -> Result<Vec<PriorityClass>, ApiError> {
        let list = self.list("PriorityClass", &ListOptions::default()).await?;
        Ok(list.items.into_iter().filter_map(as_class).collect())
    }
}

fn as_class(o: Object) -> Option<PriorityClass> {
    match o {
        Object::PriorityClass(pc) => Some(pc),
        _ => None,
    }
}

/// The plugin: the store of PriorityClasses (set once at start).
#[derive(Default)]
pub struct Priority {
    store: OnceLock<Arc<LocalStore>>,
    off: AtomicBool,
}

impl Priority {
    /// Sets the store of PriorityClasses the plugin reads (once).
    pub fn set_store(&self, store: Arc<LocalStore>) {
        let _ = self.store.set(store);
    }

    /// Turns the plugin off (`--disable-admission-plugins=Priority`).
    pub fn turn_off(&self) {
        self.off.store(true, Ordering::Relaxed);
    }

    fn on(&self) -> bool {
        !self.off.load(Ordering::Relaxed)
    }

    /// The mutating half on a pod create: resolves the pod's class into its priority and preemption
    /// policy. Right after start it waits a little for the store, then refuses (Kubernetes' "not yet
    /// ready to handle request").
    pub async fn admit_pod<S: PriorityClasses>(&self, obj: &mut Object, source: &S) -> Result<(), ApiError> {
        if !self.on() {
            return Ok(());
        }
        let refused = |obj: &Object, why: &str| {
            let m = obj.meta();
            let name = if m.name.is_empty() { &m.generate_name } else { &m.name };
            ApiError::Forbidden(format!("pods {name:?} is forbidden: {why}"))
        };
        let Object::Pod(pod) = &*obj else { return Ok(()) };
        let wanted = pod.spec.as_ref().map(|s| s.priority_class_name.clone()).unwrap_or_default();
        let Some(store) = self.store.get() else { return Ok(()) };
        if !wait_synced(store).await {
            return Err(refused(obj, "not yet ready to handle request"));
        }
        let class = if wanted.is_empty() {
            let classes: Vec<Arc<Object>> = store.list();
            global_default(classes.iter().filter_map(|o| match o.as_ref() {
                Object::PriorityClass(pc) => Some(pc),
                _ => None,
            }))
            .cloned()
        } else {
            match store.get("", &wanted).map(|o| as_class(o.as_ref().clone())) {
                Some(found) => found,
                None => source.priority_class(&wanted).await?,
            }
        };
        let result = match obj {
            Object::Pod(pod) => admit_pod_spec(pod.spec.get_or_insert_with(Default::default), class.as_ref()),
            _ => Ok(()),
        };
        result.map_err(|why| refused(obj, &why))
    }

    /// The validating half on PriorityClass creates and updates: at most one class is the global
    /// default (read from etcd, so that two writes an instant apart see each other as far as etcd does).
    pub async fn check_class<S: PriorityClasses>(
        &self,
        operation: WriteOperation,
        obj: &Object,
        source: &S,
    ) -> Result<(), ApiError> {
        let Object::PriorityClass(pc) = obj else { return Ok(()) };
        let subresource =
            matches!(operation, WriteOperation::Update { subresource } if !subresource.is_empty());
        if !self.on() || !pc.global_default || subresource || operation == WriteOperation::Delete {
            return Ok(());
        }
        let classes = source.priority_classes().await?;
        let name = class_name(pc);
        match global_default(&classes) {
            Some(other) if operation == WriteOperation::Create || class_name(other) != name => {
                Err(ApiError::Forbidden(format!(
                    "{RESOURCE} {name:?} is forbidden: PriorityClass {} is already marked as default. Only one default can exist",
                    class_name(other)
                )))
            }
            _ => Ok(()),
        }
    }

    /// On a pod update (not a subresource): a priority or preemption policy the new pod leaves out keeps
    /// the stored one (validation then refuses any other change of them).
    pub fn keep_on_update(&self, new: &mut Object, old: &Object) {
        let (Object::Pod(new), Object::Pod(old)) = (new, old) else { return };
        let (Some(spec), Some(old_spec)) = (new.spec.as_mut(), old.spec.as_ref()) else { return };
        if !self.on() {
            return;
        }
        if spec.priority.is_none() {
            spec.priority = old_spec.priority;
        }
        if spec.preemption_policy.is_none() {
            spec.preemption_policy.clone_from(&old_spec.preemption_policy);
        }
    }
}

/// Waits up to 5 s for the store's first list.
async fn wait_synced(store: &LocalStore) -> bool {
    for _ in 0..100 {
        if store.is_synced() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.is_synced()
}

/// Kubernetes' `admitPod` on a create, given the class the pod's `priorityClassName` names (`None`: it
/// does not exist) or, when it names none, the global default class (`None`: there is none). Fills in
/// `priority`, `preemptionPolicy` and, from the global default, `priorityClassName`; `Err` is why the pod
/// is refused.
pub fn admit_pod_spec(spec: &mut PodSpec, class: Option<&PriorityClass>) -> Result<(), String> {
    let (value, policy) = match class {
        Some(pc) => (pc.value, pc.preemption_policy.clone()),
        None if spec.priority_class_name.is_empty() => {
            (DEFAULT_PRIORITY, Some(PREEMPT_LOWER_PRIORITY.to_string()))
        }
        None => return Err(format!("no PriorityClass with name {} was found", spec.priority_class_name)),
    };
    if spec.priority_class_name.is_empty()
        && let Some(pc) = class
    {
        spec.priority_class_name = class_name(pc).to_string();
    }
    if let Some(given) = spec.priority
        && given != value
    {
        return Err(format!(
            "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"
        ));
    }
    spec.priority = Some(value);
    if let Some(policy) = policy {
        if let Some(given) = spec.preemption_policy.as_deref()
            && given != policy
        {
            return Err(format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            ));
        }
        spec.preemption_policy = Some(policy);
    }
    Ok(())
}

/// The built-in classes cannot be deleted (Kubernetes' PriorityClass storage).
pub fn refuse_system_class_delete(kind: &str, name: &str) -> Result<(), ApiError> {
    if kind == "PriorityClass" && priority::is_system_class(name) {
        return Err(ApiError::Forbidden(format!(
            "{RESOURCE} {name:?} is forbidden: this is a system priority class and cannot be deleted"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
