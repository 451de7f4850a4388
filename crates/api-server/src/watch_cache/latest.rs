//! The latest object under every key of the cache's kind, as the events so far left it (the store of
//! Kubernetes' watchCache). It gives each modification its previous object (watchers filter on both) and
//! each deletion the object deleted, so the etcd watch does not ask for previous values: etcd would read
//! every one back from its backend and the api-server decode it, for each change. It is seeded by a list
//! at the revision right before the watch starts.

use std::collections::HashMap;
use std::sync::Arc;

use navarch_api::{KindInfo, Object};

use crate::codec;
use crate::storage::{Storage, StorageError};

/// Keys read per page while seeding.
const SEED_PAGE: i64 = 1000;

/// Why a seed failed.
pub(super) enum SeedError {
    /// The revision asked for is compacted.
    Compacted,
    Other(String),
}

#[derive(Default)]
pub(super) struct Latest {
    objects: HashMap<String, Arc<Object>>,
}

impl Latest {
    /// The objects under `prefix` at `revision` (0: now) and the revision they were read at. Values that
    /// cannot be decoded are left out (their next change is then an addition).
    pub(super) async fn seed(
        storage: &Storage,
        prefix: &str,
        kind: &KindInfo,
        revision: i64,
    ) -> Result<(Latest, i64), SeedError> {
        let mut objects = HashMap::new();
        let mut after: Option<String> = None;
        let mut at = revision;
        loop {
            let page = match storage.list(prefix, after.as_deref(), at, SEED_PAGE).await {
                Ok(p) => p,
                Err(StorageError::Compacted(_)) => return Err(SeedError::Compacted),
                Err(e) => return Err(SeedError::Other(e.to_string())),
            };
            at = page.revision;
            for item in &page.items {
                match codec::decode_value(kind.kind, &item.value, item.mod_revision) {
                    Ok(o) => {
                        objects.insert(item.key.clone(), Arc::new(o));
                    }
                    Err(e) => {
                        tracing::warn!(key = %item.key, error = %e, "undecodable stored value; not cached")
                    }
                }
            }
            match (page.more, page.items.last()) {
                (true, Some(last)) => after = Some(last.key.clone()),
                _ => return Ok((Latest { objects }, at)),
            }
        }
    }

    /// Records `obj` as the object at `key`; returns the one it replaces.
    pub(super) fn put(&mut self, key: &str, obj: Arc<Object>) -> Option<Arc<Object>> {
        self.objects.insert(key.to_string(), obj)
    }

    /// Forgets `key`; returns its last object.
    pub(super) fn remove(&mut self, key: &str) -> Option<Arc<Object>> {
        self.objects.remove(key)
    }
}
