//! The api-server's narrow view of etcd: create-if-absent, get, paged list at a revision,
//! compare-and-swap update and delete. The watch cache is the only other code that talks to etcd.
//!
//! Object values pass through the [`Transformers`] of `--encryption-provider-config` ([`crate::encryption`]):
//! every create and update is written in the stored form of its key (encrypted for the resources the
//! configuration covers), and every value read (get, list) is turned back into plaintext; a value that
//! cannot be (a missing key, a tampered value) is [`StorageError::Transform`], naming its key.
//!
//! [`Storage::write_all`] commits several objects in one transaction (the scheduler's batched bindings):
//! they share one revision, which watchers resuming at it are sent again ([`crate::watch_cache`]).
//!
//! A write may carry a [`Sidecar`]: keys created (if absent) and deleted in the same etcd transaction as
//! the object itself. Services keep their allocated cluster IPs and node ports that way
//! ([`crate::allocation`]): the object and its allocations are committed together or not at all.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use etcd_client::{Compare, CompareOp, GetOptions, KvClient, Txn, TxnOp, TxnOpResponse};

use crate::encryption::{TransformError, Transformers};

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    /// The key's mod_revision is not the expected one (or the key vanished).
    #[error("key {key} changed (expected revision {expected})")]
    Conflict { key: String, expected: i64 },
    /// The requested revision has been compacted.
    #[error("revision {0} has been compacted")]
    Compacted(i64),
    #[error("invalid continue token")]
    BadContinue,
    /// Sidecar keys that were to be created exist already (the write was not done).
    #[error("keys {0:?} already exist")]
    Taken(Vec<String>),
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// A value could not be decrypted (or encrypted) with the configured providers.
    #[error("unable to transform key {key:?}: {source}")]
    Transform { key: String, source: TransformError },
}

/// A stored value with its revisions.
#[derive(Debug, Clone)]
pub struct Stored {
    pub key: String,
    /// The plaintext value.
    pub value: Vec<u8>,
    pub mod_revision: i64,
    /// Stored with an encryption provider or key other than the current first one: a write of the same
    /// object would store it differently (the registry rewrites it even when nothing changed).
    pub stale: bool,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Stored>,
    /// The revision the page was read at.
    pub revision: i64,
    /// Key to continue after, when more remain.
    pub more: bool,
    pub remaining: i64,
}

/// The object write of [`Storage::write`].
#[derive(Debug, Clone)]
pub enum Write {
    /// Create-if-absent.
    Create(Vec<u8>),
    /// Replace if the key's mod_revision is still `expected`.
    Update { expected: i64, value: Vec<u8> },
    /// Delete if the key's mod_revision is still `expected`.
    Delete { expected: i64 },
}

/// Keys written in the same transaction as an object: `claim`s are created only if absent (a claim
/// that exists fails the whole write with [`StorageError::Taken`]); `release`s are deleted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sidecar {
    pub claim: Vec<(String, Vec<u8>)>,
    pub release: Vec<String>,
}

impl Sidecar {
    pub fn is_empty(&self) -> bool {
        self.claim.is_empty() && self.release.is_empty()
    }
}

/// Largest etcd response accepted (list pages of large objects).
const MAX_ETCD_MESSAGE: usize = 256 << 20;

#[derive(Clone)]
pub struct Storage {
    /// Several connections used round-robin: one HTTP/2 connection serialises every request through a
    /// single connection task, which caps throughput well below what etcd can do.
    kv: Arc<[KvClient]>,
    next: Arc<AtomicUsize>,
    client: etcd_client::Client,
    transformers: Transformers,
}

fn compacted(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s) if s.message().contains("compacted"))
}

/// The end of the range of keys starting with `prefix`.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Continue tokens carry the revision of the first page and the last key returned.
pub fn encode_continue(revision: i64, last_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{revision}\n{last_key}"))
}

pub fn decode_continue(token: &str) -> Result<(i64, String), StorageError> {
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| StorageError::BadContinue)?;
    let text = String::from_utf8(raw).map_err(|_| StorageError::BadContinue)?;
    let (rev, key) = text.split_once('\n').ok_or(StorageError::BadContinue)?;
    Ok((rev.parse().map_err(|_| StorageError::BadContinue)?, key.to_string()))
}

impl Storage {
    /// `pool` holds extra connections to the same etcd (may be empty).
    pub fn new(client: etcd_client::Client, pool: Vec<etcd_client::Client>) -> Storage {
        let kv: Vec<KvClient> = std::iter::once(&client)
            .chain(pool.iter())
            .map(|c| c.kv_client().max_decoding_message_size(MAX_ETCD_MESSAGE))
            .collect();
        Storage {
            kv: kv.into(),
            next: Arc::new(AtomicUsize::new(0)),
            client,
            transformers: Transformers::default(),
        }
    }

    /// Stores object values in the form `transformers` gives their keys (encryption at rest).
    pub fn with_transformers(mut self, transformers: Transformers) -> Storage {
        self.transformers = transformers;
        self
    }

    /// A stored value, in plaintext.
    fn stored(&self, key: String, value: &[u8], mod_revision: i64) -> Result<Stored, StorageError> {
        match self.transformers.from_storage(&key, value) {
            Ok(plain) => {
                Ok(Stored { value: plain.value.into_owned(), mod_revision, stale: plain.stale, key })
            }
            Err(source) => Err(StorageError::Transform { key, source }),
        }
    }

    /// The form in which `value` is written at `key`.
    fn to_storage(&self, key: &str, value: Vec<u8>) -> Result<Vec<u8>, StorageError> {
        self.transformers
            .to_storage(key, value)
            .map_err(|source| StorageError::Transform { key: key.to_string(), source })
    }

    fn kv(&self) -> KvClient {
        self.kv[self.next.fetch_add(1, Ordering::Relaxed) % self.kv.len()].clone()
    }

    pub fn etcd(&self) -> &etcd_client::Client {
        &self.client
    }

    /// Writes `value` at `key` only if the key does not exist. Returns the new revision.
    pub async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StorageError> {
        self.write(key, Write::Create(value), &Sidecar::default()).await
    }

    pub async fn get(&self, key: &str) -> Result<Stored, StorageError> {
        let resp = self.kv().get(key, None).await?;
        let kv = resp.kvs().first().ok_or_else(|| StorageError::NotFound(key.to_string()))?;
        self.stored(key.to_string(), kv.value(), kv.mod_revision())
    }

    /// Replaces the value at `key` if its mod_revision is still `expected`. Returns the new revision.
    pub async fn update(&self, key: &str, expected: i64, value: Vec<u8>) -> Result<i64, StorageError> {
        self.write(key, Write::Update { expected, value }, &Sidecar::default()).await
    }

    /// Deletes `key` if its mod_revision is still `expected`. Returns the deletion revision.
    pub async fn delete(&self, key: &str, expected: i64) -> Result<i64, StorageError> {
        self.write(key, Write::Delete { expected }, &Sidecar::default()).await
    }

    /// The compare and the operation of an object write, and the mod_revision it expects (None: absent).
    fn compare_and_op(&self, key: &str, write: Write) -> Result<(Compare, TxnOp, Option<i64>), StorageError> {
        Ok(match write {
            Write::Create(value) => (
                Compare::create_revision(key, CompareOp::Equal, 0),
                TxnOp::put(key, self.to_storage(key, value)?, None),
                None,
            ),
            Write::Update { expected, value } => (
                Compare::mod_revision(key, CompareOp::Equal, expected),
                TxnOp::put(key, self.to_storage(key, value)?, None),
                Some(expected),
            ),
            Write::Delete { expected } => (
                Compare::mod_revision(key, CompareOp::Equal, expected),
                TxnOp::delete(key, None),
                Some(expected),
            ),
        })
    }

    /// One transaction: the object write at `key` and the sidecar's claims and releases, all or
    /// nothing. Returns the new revision. A failed object compare is reported first
    /// (`AlreadyExists` / `Conflict`), then claims that exist (`Taken`, every one of them).
    pub async fn write(&self, key: &str, write: Write, side: &Sidecar) -> Result<i64, StorageError> {
        let (compare, op, expected) = self.compare_and_op(key, write)?;
        let mut compares = vec![compare];
        let mut ops = vec![op];
        for (k, v) in &side.claim {
            compares.push(Compare::version(k.as_str(), CompareOp::Equal, 0));
            ops.push(TxnOp::put(k.as_str(), v.clone(), None));
        }
        ops.extend(side.release.iter().map(|k| TxnOp::delete(k.as_str(), None)));
        let mut txn = Txn::new().when(compares).and_then(ops);
        if !side.claim.is_empty() {
            // On failure, read what failed: the object key and every claim.
            let keys_only = || Some(GetOptions::new().with_keys_only());
            let reads: Vec<TxnOp> = std::iter::once(key)
                .chain(side.claim.iter().map(|(k, _)| k.as_str()))
                .map(|k| TxnOp::get(k, keys_only()))
                .collect();
            txn = txn.or_else(reads);
        }
        let resp = self.kv().txn(txn).await?;
        if resp.succeeded() {
            return Ok(resp.header().map(|h| h.revision()).unwrap_or_default());
        }
        let failed = |expected: Option<i64>| match expected {
            None => StorageError::AlreadyExists(key.to_string()),
            Some(expected) => StorageError::Conflict { key: key.to_string(), expected },
        };
        if side.claim.is_empty() {
            return Err(failed(expected));
        }
        let found: Vec<Option<i64>> = resp
            .op_responses()
            .iter()
            .map(|r| match r {
                TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.mod_revision()),
                _ => None,
            })
            .collect();
        let object_ok = match (expected, found.first().copied().flatten()) {
            (None, existing) => existing.is_none(),
            (Some(expected), existing) => existing == Some(expected),
        };
        if !object_ok {
            return Err(failed(expected));
        }
        let taken: Vec<String> = side
            .claim
            .iter()
            .zip(found.iter().skip(1))
            .filter(|(_, f)| f.is_some())
            .map(|((k, _), _)| k.clone())
            .collect();
        if taken.is_empty() {
            // Cannot happen: the reads run at the revision the compares failed at.
            return Err(failed(expected));
        }
        Err(StorageError::Taken(taken))
    }

    /// Several object writes in one etcd transaction, all or nothing (they share its revision, which is
    /// returned). `Ok(None)` when any compare failed: nothing was written, and the caller goes key by key.
    pub async fn write_all(&self, writes: Vec<(String, Write)>) -> Result<Option<i64>, StorageError> {
        let mut compares = Vec::with_capacity(writes.len());
        let mut ops = Vec::with_capacity(writes.len());
        for (key, write) in writes {
            let (compare, op, _) = self.compare_and_op(&key, write)?;
            compares.push(compare);
            ops.push(op);
        }
        if ops.is_empty() {
            return Ok(None);
        }
        let resp = self.kv().txn(Txn::new().when(compares).and_then(ops)).await?;
        Ok(resp.succeeded().then(|| resp.header().map(|h| h.revision()).unwrap_or_default()))
    }

    /// Which of `keys` exist now.
    pub async fn existing(&self, keys: &[String]) -> Result<Vec<String>, StorageError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let reads: Vec<TxnOp> =
            keys.iter().map(|k| TxnOp::get(k.as_str(), Some(GetOptions::new().with_count_only()))).collect();
        let resp = self.kv().txn(Txn::new().and_then(reads)).await?;
        Ok(keys
            .iter()
            .zip(resp.op_responses())
            .filter(|(_, r)| matches!(r, TxnOpResponse::Get(g) if g.count() > 0))
            .map(|(k, _)| k.clone())
            .collect())
    }

    /// Creates `key` if absent and `guard`'s mod_revision is still `guard_revision` (0: absent).
    /// Returns whether it was written.
    pub async fn create_guarded(
        &self,
        key: &str,
        value: Vec<u8>,
        guard: &str,
        guard_revision: i64,
    ) -> Result<bool, StorageError> {
        let txn = Txn::new()
            .when([
                Compare::version(key, CompareOp::Equal, 0),
                Compare::mod_revision(guard, CompareOp::Equal, guard_revision),
            ])
            .and_then([TxnOp::put(key, value, None)]);
        Ok(self.kv().txn(txn).await?.succeeded())
    }

    /// Every key under `prefix` (without values) and the revision they were read at; `revision` 0 reads
    /// the current state.
    pub async fn keys_under(
        &self,
        prefix: &str,
        revision: i64,
    ) -> Result<(Vec<(String, i64)>, i64), StorageError> {
        let mut opts = GetOptions::new().with_range(prefix_end(prefix)).with_keys_only();
        if revision > 0 {
            opts = opts.with_revision(revision);
        }
        let resp = match self.kv().get(prefix, Some(opts)).await {
            Ok(r) => r,
            Err(e) if compacted(&e) => return Err(StorageError::Compacted(revision)),
            Err(e) => return Err(e.into()),
        };
        let rev = resp.header().map(|h| h.revision()).unwrap_or_default();
        let keys = resp
            .kvs()
            .iter()
            .map(|kv| (String::from_utf8_lossy(kv.key()).into_owned(), kv.mod_revision()))
            .collect();
        Ok((keys, if revision > 0 { revision } else { rev }))
    }

    /// Up to `limit` (0 = all) keys under `prefix`, after `after_key` when given, read at `revision`
    /// (0 = now).
    pub async fn list(
        &self,
        prefix: &str,
        after_key: Option<&str>,
        revision: i64,
        limit: i64,
    ) -> Result<Page, StorageError> {
        let start = match after_key {
            Some(k) => {
                let mut s = k.as_bytes().to_vec();
                s.push(0);
                s
            }
            None => prefix.as_bytes().to_vec(),
        };
        let mut opts = GetOptions::new().with_range(prefix_end(prefix));
        if limit > 0 {
            opts = opts.with_limit(limit);
        }
        if revision > 0 {
            opts = opts.with_revision(revision);
        }
        let resp = match self.kv().get(start, Some(opts)).await {
            Ok(r) => r,
            Err(e) if compacted(&e) => return Err(StorageError::Compacted(revision)),
            Err(e) => return Err(e.into()),
        };
        let rev = resp.header().map(|h| h.revision()).unwrap_or_default();
        let items: Vec<Stored> = resp
            .kvs()
            .iter()
            .map(|kv| {
                self.stored(String::from_utf8_lossy(kv.key()).into_owned(), kv.value(), kv.mod_revision())
            })
            .collect::<Result<_, _>>()?;
        let remaining = (resp.count() - items.len() as i64).max(0);
        Ok(Page { items, revision: if revision > 0 { revision } else { rev }, more: resp.more(), remaining })
    }

    /// True when at least one key exists under `prefix`.
    pub async fn any_under(&self, prefix: &str) -> Result<bool, StorageError> {
        let opts = GetOptions::new().with_range(prefix_end(prefix)).with_count_only();
        let resp = self.kv().get(prefix, Some(opts)).await?;
        Ok(resp.count() > 0)
    }

    /// The current etcd revision.
    pub async fn current_revision(&self) -> Result<i64, StorageError> {
        let resp = self.kv().get("\0", Some(GetOptions::new().with_count_only())).await?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_round_trip() {
        let t = encode_continue(42, "/registry/pods/default/a");
        assert_eq!(decode_continue(&t).unwrap(), (42, "/registry/pods/default/a".to_string()));
        assert!(decode_continue("!!").is_err());
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
    }
}
