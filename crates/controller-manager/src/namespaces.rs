//! Per-namespace housekeeping.
//!
//! * **Namespace**: a namespace being deleted (Terminating, finalizer `kubernetes`) has everything in
//!   it deleted; the api-server removes the namespace once it holds nothing.
//! * **ServiceAccount**: every namespace that is not terminating has a `default` ServiceAccount
//!   (recreated if deleted).
//!
//! [`spawn`] wires it to the shared Namespace and ServiceAccount reflectors.

use std::sync::Arc;
use std::time::Duration;

use navarch_api::v1::{Namespace, ObjectMeta, ServiceAccount};
use navarch_api::{KINDS, Resource};
use navarch_client::{Action, Client, Controller, DeleteParams, ListParams, ObjectRef};

use crate::run::{Reconciler, Wiring};

pub struct NamespaceController {
    pub client: Client,
}

impl Reconciler<Namespace> for NamespaceController {
    type Error = navarch_client::Error;

    async fn reconcile(&self, ns: Arc<Namespace>) -> Result<Action, navarch_client::Error> {
        let name = ns.meta().name.clone();
        if ns.meta().deletion_timestamp.is_empty() {
            self.ensure_default_service_account(&name).await?;
            return Ok(Action::await_change());
        }
        let mut left = 0;
        // Everything stored in the namespace (the resource metrics kinds are served, never stored).
        for kind in KINDS.iter().filter(|k| k.namespaced && k.is_stored()) {
            let list = self
                .client
                .list(kind.kind, &ListParams { namespace: name.clone(), ..Default::default() })
                .await?;
            for o in list.items {
                left += 1;
                if !o.meta().deletion_timestamp.is_empty() {
                    continue;
                }
                let params = DeleteParams { precondition_uid: o.meta().uid.clone(), ..Default::default() };
                match self.client.delete(kind.kind, &name, &o.meta().name, &params).await {
                    Ok(_)
                    | Err(navarch_client::Error::NotFound(_))
                    | Err(navarch_client::Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if left > 0 {
            tracing::debug!(namespace = %name, objects = left, "namespace terminating: deleting its content");
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        Ok(Action::requeue(Duration::from_secs(5)))
    }
}

impl NamespaceController {
    async fn ensure_default_service_account(&self, namespace: &str) -> Result<(), navarch_client::Error> {
        let api = self.client.api::<ServiceAccount>(namespace);
        if api.get_opt("default").await?.is_some() {
            return Ok(());
        }
        let mut sa = ServiceAccount {
            metadata: Some(ObjectMeta {
                name: "default".into(),
                namespace: namespace.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        sa.set_type_meta();
        match api.create(&sa).await {
            Ok(_) | Err(navarch_client::Error::AlreadyExists(_)) => Ok(()),
            // Terminating meanwhile: nothing to do.
            Err(navarch_client::Error::FailedPrecondition(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Runs the Namespace controller: Namespaces, re-synced when their `default` ServiceAccount changes
/// (all of them after a ServiceAccount relist).
pub fn spawn(w: &mut Wiring) {
    let controller = Controller::for_shared(&w.informers.namespaces).concurrency(w.workers).watches_shared(
        &w.informers.service_accounts,
        |sa: &ServiceAccount| {
            let m = sa.meta();
            if m.name == "default" { vec![ObjectRef::new("", &m.namespace)] } else { vec![] }
        },
    );
    let ctx = Arc::new(NamespaceController { client: w.client.clone() });
    w.controller(controller, ctx, Duration::from_secs(2));
}
