//! The api-server's narrow view of etcd: create-if-absent, get, paged list at a revision,
//! compare-and-swap update and delete. The watch cache is the only other code that talks to etcd.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use etcd_client::{Compare, CompareOp, GetOptions, KvClient, Txn, TxnOp};

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
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
}

/// A stored value with its revisions.
#[derive(Debug, Clone)]
pub struct Stored {
    pub key: String,
    pub value: Vec<u8>,
    pub mod_revision: i64,
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

/// Largest etcd response accepted (list pages of large objects).
const MAX_ETCD_MESSAGE: usize = 256 << 20;

#[derive(Clone)]
pub struct Storage {
    /// Several connections used round-robin: one HTTP/2 connection serialises every request through a
    /// single connection task, which caps throughput well below what etcd can do.
    kv: Arc<[KvClient]>,
    next: Arc<AtomicUsize>,
    client: etcd_client::Client,
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
        Storage { kv: kv.into(), next: Arc::new(AtomicUsize::new(0)), client }
    }

    fn kv(&self) -> KvClient {
        self.kv[self.next.fetch_add(1, Ordering::Relaxed) % self.kv.len()].clone()
    }

    pub fn etcd(&self) -> &etcd_client::Client {
        &self.client
    }

    /// Writes `value` at `key` only if the key does not exist. Returns the new revision.
    pub async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StorageError> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value, None)]);
        let resp = self.kv().txn(txn).await?;
        if !resp.succeeded() {
            return Err(StorageError::AlreadyExists(key.to_string()));
        }
        Ok(resp.header().map(|h| h.revision()).unwrap_or_default())
    }

    pub async fn get(&self, key: &str) -> Result<Stored, StorageError> {
        let resp = self.kv().get(key, None).await?;
        let kv = resp.kvs().first().ok_or_else(|| StorageError::NotFound(key.to_string()))?;
        Ok(Stored { key: key.to_string(), value: kv.value().to_vec(), mod_revision: kv.mod_revision() })
    }

    /// Replaces the value at `key` if its mod_revision is still `expected`. Returns the new revision.
    pub async fn update(&self, key: &str, expected: i64, value: Vec<u8>) -> Result<i64, StorageError> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then([TxnOp::put(key, value, None)]);
        let resp = self.kv().txn(txn).await?;
        if !resp.succeeded() {
            return Err(StorageError::Conflict { key: key.to_string(), expected });
        }
        Ok(resp.header().map(|h| h.revision()).unwrap_or_default())
    }

    /// Deletes `key` if its mod_revision is still `expected`. Returns the deletion revision.
    pub async fn delete(&self, key: &str, expected: i64) -> Result<i64, StorageError> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then([TxnOp::delete(key, None)]);
        let resp = self.kv().txn(txn).await?;
        if !resp.succeeded() {
            return Err(StorageError::Conflict { key: key.to_string(), expected });
        }
        Ok(resp.header().map(|h| h.revision()).unwrap_or_default())
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
            .map(|kv| Stored {
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                value: kv.value().to_vec(),
                mod_revision: kv.mod_revision(),
            })
            .collect();
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
