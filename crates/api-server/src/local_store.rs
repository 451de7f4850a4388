//! The api-server's own reflectors (kube-rs' watcher → store, inside the server): an in-memory copy of
//! one kind, listed from etcd and then kept current from that kind's watch cache, relisted whenever the
//! watch ends. Authentication (ServiceAccounts, Pods, Nodes, bootstrap-token Secrets) and
//! authorization (the RBAC kinds, the Node authorizer's graph) read these on every request without a
//! round trip to etcd; whoever needs to follow changes gets each one through a callback.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use navarch_api::Object;

use crate::registry::ListOptions;
use crate::state::ApiState;
use crate::watch_cache::EventType;
use crate::watch_stream::{WatchItem, WatchParams};

/// A change of the store, in the order it happened.
pub enum StoreChange<'a> {
    /// The whole content after a (re)list.
    Reset(&'a [Arc<Object>]),
    Upsert(&'a Arc<Object>),
    Delete(&'a Arc<Object>),
}

pub type OnChange = Arc<dyn Fn(StoreChange<'_>) + Send + Sync>;

/// (namespace, name) → object.
type Objects = HashMap<(String, String), Arc<Object>>;

/// One kind's objects (optionally of one namespace).
pub struct LocalStore {
    kind: &'static str,
    objects: RwLock<Objects>,
    synced: AtomicBool,
}

fn key(o: &Object) -> (String, String) {
    let m = o.meta();
    (m.namespace.clone(), m.name.clone())
}

/// Pause before a relist (after a watch ended or a list failed).
const RETRY: Duration = Duration::from_millis(200);

impl LocalStore {
    /// Starts a store of `kind` in `namespace` (empty: all) as a task of the api-server.
    pub fn start(
        state: &Arc<ApiState>,
        kind: &'static str,
        namespace: &str,
        on_change: Option<OnChange>,
    ) -> Arc<LocalStore> {
        let store = Arc::new(LocalStore {
            kind,
            objects: RwLock::new(HashMap::new()),
            synced: AtomicBool::new(false),
        });
        let (s, state2, ns) = (store.clone(), state.clone(), namespace.to_string());
        state.tasks.spawn(async move {
            loop {
                if let Err(e) = s.sync(&state2, &ns, on_change.as_ref()).await {
                    tracing::debug!(kind, error = %e, "local store relists");
                }
                tokio::select! {
                    _ = state2.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RETRY) => {}
                }
            }
        });
        store
    }

    /// One list, then the watch from its revision until it ends.
    async fn sync(
        &self,
        state: &ApiState,
        namespace: &str,
        on_change: Option<&OnChange>,
    ) -> Result<(), String> {
        let opts = ListOptions { namespace: namespace.to_string(), ..ListOptions::default() };
        let list = state.registry.list(self.kind, &opts).await.map_err(|e| e.to_string())?;
        let items: Vec<Arc<Object>> = list.items.into_iter().map(Arc::new).collect();
        {
            let mut objects = self.objects.write().unwrap_or_else(|p| p.into_inner());
            *objects = items.iter().map(|o| (key(o), o.clone())).collect();
        }
        if let Some(f) = on_change {
            f(StoreChange::Reset(&items));
        }
        self.synced.store(true, Ordering::Release);
        let params = WatchParams {
            kind: self.kind.to_string(),
            namespace: namespace.to_string(),
            resource_version: list.resource_version.to_string(),
            ..WatchParams::default()
        };
        let mut rx = state.watch(&params).await.map_err(|e| e.to_string())?;
        while let Some(item) = tokio::select! {
            i = rx.recv() => i,
            _ = state.shutdown.cancelled() => None,
        } {
            match item {
                WatchItem::Event(ev) => {
                    let object = ev.object.clone();
                    let deleted = ev.event_type == EventType::Deleted;
                    {
                        let mut objects = self.objects.write().unwrap_or_else(|p| p.into_inner());
                        if deleted {
                            objects.remove(&key(&object));
                        } else {
                            objects.insert(key(&object), object.clone());
                        }
                    }
                    if let Some(f) = on_change {
                        f(if deleted { StoreChange::Delete(&object) } else { StoreChange::Upsert(&object) });
                    }
                }
                WatchItem::Bookmark { .. } => {}
                WatchItem::End(e) => return Err(e.to_string()),
            }
        }
        Err("watch ended".into())
    }

    /// A store holding `objects`, synced and never updated (tests of what reads stores).
    pub fn fixed(kind: &'static str, objects: Vec<Object>) -> Arc<LocalStore> {
        Arc::new(LocalStore {
            kind,
            objects: RwLock::new(objects.into_iter().map(|o| (key(&o), Arc::new(o))).collect()),
            synced: AtomicBool::new(true),
        })
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<Object>> {
        let objects = self.objects.read().unwrap_or_else(|p| p.into_inner());
        objects.get(&(namespace.to_string(), name.to_string())).cloned()
    }

    pub fn list(&self) -> Vec<Arc<Object>> {
        self.objects.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Whether the first list has arrived.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }
}
