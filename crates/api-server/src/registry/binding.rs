//! The pods/binding subresource: one binding (Kubernetes' `POST .../pods/{name}/binding`), and the
//! scheduler's batches of them (navarch's gRPC `BindMany`), whose bindings are committed in one etcd
//! transaction: one round trip and one raft entry for the batch instead of one per pod.
//!
//! Either way a binding is a compare-and-swap of the pod as read (or as this api-server just created it,
//! [`crate::recent_writes`]): a pod changed meanwhile is read again, a pod already bound, being deleted
//! or of another uid is refused with Kubernetes' messages. A batch whose transaction fails (some pod
//! changed since it was read) is bound pod by pod, so one conflict costs a retry, never a wrong result.

use navarch_api::Object;
use navarch_api::v1::{Pod, PodCondition};

use super::{CAS_RETRIES, Registry, kind_of, now_rfc3339, uid_mismatch};
use crate::codec::encode_value;
use crate::error::ApiError;
use crate::storage::{StorageError, Write};

/// Most bindings written in one etcd transaction (etcd refuses more than `--max-txn-ops`, 128 by
/// default).
pub const MAX_PER_TRANSACTION: usize = 100;

/// One binding: the pod (its uid when set must match) and the node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BindTarget {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
}

/// A binding ready to be written: the pod's key, the mod_revision it was read at, the bound pod.
struct Prepared {
    key: String,
    mod_revision: i64,
    pod: Pod,
}

impl Registry {
    /// Binds a pending pod to a node (pods/binding).
    pub async fn bind(&self, t: &BindTarget) -> Result<Object, ApiError> {
        for _ in 0..CAS_RETRIES {
            let p = self.prepare(t).await?;
            let obj = Object::Pod(p.pod);
            match self.storage.update(&p.key, p.mod_revision, encode_value(&obj)).await {
                Ok(rev) => return Ok(bound(obj, rev)),
                Err(StorageError::Conflict { .. }) => continue,
                Err(e) => return Err(ApiError::from_storage(e, "pods", &t.name)),
            }
        }
        Err(ApiError::Conflict { plural: "pods".into(), name: t.name.clone() })
    }

    /// Binds several pods (each result in the order of `targets`): every binding that can be made is
    /// written in one transaction (per [`MAX_PER_TRANSACTION`]); the refused ones get their own error.
    pub async fn bind_all(&self, targets: &[BindTarget]) -> Vec<Result<Object, ApiError>> {
        let mut out = Vec::with_capacity(targets.len());
        for chunk in targets.chunks(MAX_PER_TRANSACTION) {
            out.extend(self.bind_chunk(chunk).await);
        }
        out
    }

    async fn bind_chunk(&self, targets: &[BindTarget]) -> Vec<Result<Object, ApiError>> {
        let prepared = futures::future::join_all(targets.iter().map(|t| self.prepare(t))).await;
        let writes: Vec<(String, Write)> = prepared
            .iter()
            .flatten()
            .map(|p| {
                let value = encode_value(&Object::Pod(p.pod.clone()));
                (p.key.clone(), Write::Update { expected: p.mod_revision, value })
            })
            .collect();
        let committed = match writes.len() {
            0 => None,
            _ => match self.storage.write_all(writes).await {
                Ok(rev) => rev,
                Err(e) => {
                    // Every binding of the batch shares the transaction's fate (ApiError is not Clone).
                    let (unavailable, msg) = (matches!(e, StorageError::Etcd(_)), e.to_string());
                    let error = || {
                        if unavailable {
                            ApiError::Unavailable(msg.clone())
                        } else {
                            ApiError::Internal(msg.clone())
                        }
                    };
                    return prepared.into_iter().map(|p| p.and_then(|_| Err(error()))).collect();
                }
            },
        };
        match committed {
            Some(rev) => prepared.into_iter().map(|p| p.map(|p| bound(Object::Pod(p.pod), rev))).collect(),
            // Some pod changed since it was read: each on its own (they re-read as needed).
            None => {
                let each = targets.iter().zip(prepared).map(|(t, p)| async move {
                    match p {
                        Ok(_) => self.bind(t).await,
                        Err(e) => Err(e),
                    }
                });
                futures::future::join_all(each).await
            }
        }
    }

    /// The pod of `t` bound to its node, with the mod_revision to write it at: from the copy this
    /// api-server remembers when that can be bound (the write's compare checks the guess), else as read.
    async fn prepare(&self, t: &BindTarget) -> Result<Prepared, ApiError> {
        if t.node.is_empty() {
            return Err(ApiError::BadRequest("target.name: Required value".into()));
        }
        let key = self.key(kind_of("Pod")?, &t.namespace, &t.name);
        if let Some((mod_revision, Object::Pod(pod))) = self.recent_pods.take(&key)
            && let Ok(pod) = assign(pod, t)
        {
            // A refusal is judged on what etcd holds, not on a remembered copy.
            return Ok(Prepared { key, mod_revision, pod });
        }
        let stored = self.storage.get(&key).await.map_err(|e| ApiError::from_storage(e, "pods", &t.name))?;
        let Object::Pod(pod) = self.decode("Pod", &stored.value, stored.mod_revision)? else {
            return Err(ApiError::Internal("pod key holds another kind".into()));
        };
        Ok(Prepared { key, mod_revision: stored.mod_revision, pod: assign(pod, t)? })
    }
}

fn bound(mut obj: Object, rev: i64) -> Object {
    obj.meta_mut().resource_version = rev.to_string();
    tracing::debug!(key = %obj.key(), rev, "bound");
    obj
}

/// `pod` with `spec.nodeName` set and PodScheduled True, or why it cannot be bound.
fn assign(mut pod: Pod, t: &BindTarget) -> Result<Pod, ApiError> {
    let meta = pod.metadata.clone().unwrap_or_default();
    if !t.uid.is_empty() && t.uid != meta.uid {
        return Err(uid_mismatch(&t.uid, &meta.uid));
    }
    if !meta.deletion_timestamp.is_empty() {
        return Err(ApiError::Precondition(format!(
            "pod {}/{} is being deleted, cannot be assigned to a host",
            t.namespace, t.name
        )));
    }
    let spec = pod.spec.get_or_insert_with(Default::default);
    if !spec.node_name.is_empty() {
        return Err(ApiError::Precondition(format!(
            "pod {} is already assigned to node {:?}",
            t.name, spec.node_name
        )));
    }
    spec.node_name = t.node.clone();
    let status = pod.status.get_or_insert_with(Default::default);
    let now = now_rfc3339();
    match status.conditions.iter_mut().find(|c| c.r#type == "PodScheduled") {
        Some(c) => {
            if c.status != "True" {
                c.last_transition_time = now;
            }
            c.status = "True".into();
            c.reason.clear();
            c.message.clear();
        }
        None => status.conditions.push(PodCondition {
            r#type: "PodScheduled".into(),
            status: "True".into(),
            last_transition_time: now,
            ..Default::default()
        }),
    }
    Ok(pod)
}
