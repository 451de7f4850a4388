//! A small, bounded memory of the pods this api-server wrote last, so a bind right after a create
//! skips the etcd read of its read-modify-write.
//!
//! It is only ever a guess: the write that uses it is a compare-and-swap on the remembered
//! mod_revision, so a stale entry costs one failed compare (and a real read), never a lost write.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use navarch_api::Object;

/// Remembered objects by etcd key, first-in first-out beyond `capacity`.
pub struct RecentWrites {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_key: HashMap<String, (i64, Object)>,
    order: VecDeque<String>,
}

impl RecentWrites {
    pub fn new(capacity: usize) -> RecentWrites {
        RecentWrites { capacity, inner: Mutex::new(Inner::default()) }
    }

    /// Remembers `obj` as stored under `key` at `mod_revision`.
    pub fn remember(&self, key: &str, mod_revision: i64, obj: &Object) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock().expect("recent writes lock");
        if inner.by_key.insert(key.to_string(), (mod_revision, obj.clone())).is_none() {
            inner.order.push_back(key.to_string());
            while inner.order.len() > self.capacity {
                if let Some(old) = inner.order.pop_front() {
                    inner.by_key.remove(&old);
                }
            }
        }
    }

    /// Takes the remembered object for `key` out (a caller writes a newer one back on success).
    pub fn take(&self, key: &str) -> Option<(i64, Object)> {
        self.inner.lock().expect("recent writes lock").by_key.remove(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use navarch_api::v1::Pod;

    fn pod(name: &str) -> Object {
        let mut p = Pod::default();
        p.metadata.get_or_insert_with(Default::default).name = name.into();
        Object::Pod(p)
    }

    #[test]
    fn remembers_and_evicts_oldest() {
        let r = RecentWrites::new(2);
        r.remember("a", 1, &pod("a"));
        r.remember("b", 2, &pod("b"));
        r.remember("c", 3, &pod("c"));
        assert!(r.take("a").is_none());
        assert_eq!(r.take("b").map(|(rev, _)| rev), Some(2));
        assert_eq!(r.take("c").map(|(rev, _)| rev), Some(3));
        assert!(r.take("c").is_none());
    }

    #[test]
    fn newer_write_replaces() {
        let r = RecentWrites::new(4);
        r.remember("a", 1, &pod("a"));
        r.remember("a", 5, &pod("a"));
        assert_eq!(r.take("a").map(|(rev, _)| rev), Some(5));
    }

    #[test]
    fn zero_capacity_remembers_nothing() {
        let r = RecentWrites::new(0);
        r.remember("a", 1, &pod("a"));
        assert!(r.take("a").is_none());
    }
}
