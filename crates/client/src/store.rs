//! The reflector and its store: an in-memory copy of every object a watcher reports, readable by any
//! number of readers. A relist is built aside and swapped in at `InitDone`, so readers never see a
//! half-relisted state. [`reflector`] feeds one consumer's stream; a
//! [`SharedReflector`](crate::SharedReflector) feeds many.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use navarch_api::Resource;
use tokio::sync::watch;

use crate::error::Result;
use crate::shared::Change;
use crate::watcher::Event;

/// Identifies an object of a known kind: `namespace/name`, or `name` for cluster-scoped kinds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(namespace: &str, name: &str) -> ObjectRef {
        ObjectRef { namespace: namespace.to_string(), name: name.to_string() }
    }

    pub fn from_obj<K: Resource>(o: &K) -> ObjectRef {
        let m = o.meta();
        ObjectRef {
            namespace: if K::NAMESPACED { m.namespace.clone() } else { String::new() },
            name: m.name.clone(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

type Map<K> = HashMap<ObjectRef, Arc<K>>;

/// The read side. Cheap to clone.
#[derive(Debug)]
pub struct Store<K> {
    map: Arc<RwLock<Map<K>>>,
    ready: watch::Receiver<bool>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Store { map: self.map.clone(), ready: self.ready.clone() }
    }
}

/// The write side, fed by [`reflector`].
#[derive(Debug)]
pub struct Writer<K> {
    map: Arc<RwLock<Map<K>>>,
    relist: Option<Map<K>>,
    ready: watch::Sender<bool>,
}

/// A new empty store and its writer.
pub fn store<K>() -> (Store<K>, Writer<K>) {
    let map = Arc::new(RwLock::new(HashMap::new()));
    let (tx, rx) = watch::channel(false);
    (Store { map: map.clone(), ready: rx }, Writer { map, relist: None, ready: tx })
}

impl<K: Resource> Writer<K> {
    /// Applies one watcher event.
    pub fn apply(&mut self, ev: &Event<K>) {
        self.apply_owned(ev.clone());
    }

    /// Applies one watcher event, keeping its object, and returns the change as the subscribers of a
    /// [`SharedReflector`](crate::SharedReflector) see it: nothing for `Init` and `InitApply` (a relist
    /// is reported once, as [`Change::Resync`], when the store holds it).
    pub fn apply_owned(&mut self, ev: Event<K>) -> Option<Change<K>> {
        match ev {
            Event::Init => {
                self.relist = Some(HashMap::new());
                None
            }
            Event::InitApply(o) => {
                self.relist.get_or_insert_with(HashMap::new).insert(ObjectRef::from_obj(&o), Arc::new(o));
                None
            }
            Event::InitDone => {
                let fresh = self.relist.take().unwrap_or_default();
                *self.map.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                self.ready.send_replace(true);
                Some(Change::Resync)
            }
            Event::Apply(o) => {
                let o = Arc::new(o);
                self.map
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(ObjectRef::from_obj(o.as_ref()), o.clone());
                Some(Change::Apply(o))
            }
            Event::Delete(o) => {
                self.map.write().unwrap_or_else(|e| e.into_inner()).remove(&ObjectRef::from_obj(&o));
                Some(Change::Delete(Arc::new(o)))
            }
        }
    }
}

impl<K> Store<K> {
    pub fn get(&self, key: &ObjectRef) -> Option<Arc<K>> {
        self.map.read().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    /// The key of every object (in no particular order).
    pub fn keys(&self) -> Vec<ObjectRef> {
        self.map.read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    /// Every object (in no particular order).
    pub fn state(&self) -> Vec<Arc<K>> {
        self.map.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once the first complete list has been stored.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits for the first complete list.
    pub async fn wait_until_ready(&self) {
        let mut rx = self.ready.clone();
        let _ = rx.wait_for(|r| *r).await;
    }
}

/// Applies every event of `stream` to `writer`, passing the events on.
pub fn reflector<K, S>(mut writer: Writer<K>, stream: S) -> impl Stream<Item = Result<Event<K>>>
where
    K: Resource,
    S: Stream<Item = Result<Event<K>>>,
{
    stream.map(move |ev| {
        if let Ok(e) = &ev {
            writer.apply(e);
        }
        ev
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use navarch_api::v1::{ConfigMap, ObjectMeta};

    /// The ConfigMap `ns/<name>` with `k: <v>`.
    pub(crate) fn cm(name: &str, v: &str) -> ConfigMap {
        ConfigMap {
            metadata: Some(ObjectMeta { name: name.into(), namespace: "ns".into(), ..Default::default() }),
            data: [("k".to_string(), v.to_string())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn relist_is_swapped_in_atomically() {
        let (reader, mut w) = store::<ConfigMap>();
        assert!(!reader.is_ready());
        w.apply(&Event::Init);
        w.apply(&Event::InitApply(cm("a", "1")));
        assert!(reader.is_empty(), "nothing visible before InitDone");
        w.apply(&Event::InitDone);
        assert!(reader.is_ready());
        assert_eq!(reader.get(&ObjectRef::new("ns", "a")).unwrap().data["k"], "1");
        w.apply(&Event::Apply(cm("b", "1")));
        w.apply(&Event::Apply(cm("a", "2")));
        assert_eq!(reader.len(), 2);
        // A relist without b: b disappears only when the relist completes.
        w.apply(&Event::Init);
        w.apply(&Event::InitApply(cm("a", "3")));
        assert_eq!(reader.len(), 2);
        w.apply(&Event::InitDone);
        assert_eq!(reader.len(), 1);
        assert_eq!(reader.get(&ObjectRef::new("ns", "a")).unwrap().data["k"], "3");
        w.apply(&Event::Delete(cm("a", "3")));
        assert!(reader.is_empty());
    }

    #[test]
    fn object_ref_display() {
        assert_eq!(ObjectRef::new("ns", "a").to_string(), "ns/a");
        assert_eq!(ObjectRef::new("", "n1").to_string(), "n1");
    }
}
