//! Kubernetes' `ephemeral-volume` controller: for each generic ephemeral volume of a pod, the claim
//! `<pod>-<volume>` made from the volume's `volumeClaimTemplate`, controlled by the pod (so the garbage
//! collector deletes it with the pod). A claim of that name the pod does not control is never touched:
//! the pod waits, with Kubernetes' `FailedBinding` event on it.

use std::sync::Arc;

use navarch_api::Resource;
use navarch_api::v1::{ObjectMeta, OwnerReference, PersistentVolumeClaim, Pod};
use navarch_client::{Action, Client, Controller, EventRecorder, ObjectRef, Store, object_ref};

use crate::run::{Reconciler, Wiring};

/// What a sync does for one pod's ephemeral volume.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Create this claim.
    Create(Box<PersistentVolumeClaim>),
    /// The claim exists but belongs to something else (Kubernetes' message).
    NotOwner(String),
}

/// The claims the pod's ephemeral volumes still need, given the claims of its namespace.
pub fn plan(pod: &Pod, claims: &Store<PersistentVolumeClaim>) -> Vec<Step> {
    let m = pod.meta();
    if !m.deletion_timestamp.is_empty() {
        return Vec::new();
    }
    let volumes = pod.spec.as_ref().map(|s| s.volumes.as_slice()).unwrap_or(&[]);
    let mut steps = Vec::new();
    for v in volumes {
        let Some(template) = v.ephemeral.as_ref().and_then(|e| e.volume_claim_template.as_ref()) else {
            continue;
        };
        let name = format!("{}-{}", m.name, v.name);
        if let Some(existing) = claims.get(&ObjectRef::new(&m.namespace, &name)) {
            let owned =
                existing.meta().owner_references.iter().any(|r| r.controller == Some(true) && r.uid == m.uid);
            if !owned {
                steps.push(Step::NotOwner(format!(
                    "PVC {}/{name} was not created for pod {}/{} (pod is not owner)",
                    m.namespace, m.namespace, m.name
                )));
            }
            continue;
        }
        let tm = template.metadata.clone().unwrap_or_default();
        let mut claim = PersistentVolumeClaim {
            metadata: Some(ObjectMeta {
                name,
                namespace: m.namespace.clone(),
                labels: tm.labels,
                annotations: tm.annotations,
                owner_references: vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Pod".into(),
                    name: m.name.clone(),
                    uid: m.uid.clone(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }],
                ..Default::default()
            }),
            spec: template.spec.clone(),
            status: None,
            ..Default::default()
        };
        claim.set_type_meta();
        steps.push(Step::Create(Box::new(claim)));
    }
    steps
}

struct Ephemeral {
    client: Client,
    claims: Store<PersistentVolumeClaim>,
    events: EventRecorder,
}

#[derive(Debug, thiserror::Error)]
enum EphemeralError {
    #[error("{0}")]
    Api(#[from] navarch_client::Error),
    #[error("{0}")]
    NotOwner(String),
}

impl Reconciler<Pod> for Ephemeral {
    type Error = EphemeralError;

    async fn reconcile(&self, pod: Arc<Pod>) -> Result<Action, EphemeralError> {
        for step in plan(&pod, &self.claims) {
            match step {
                Step::Create(claim) => {
                    let api = self.client.api::<PersistentVolumeClaim>(&pod.meta().namespace);
                    match api.create(&claim).await {
                        Ok(_) | Err(navarch_client::Error::AlreadyExists(_)) => {}
                        Err(e) => {
                            let message = format!("create PVC {}: {e}", claim.meta().name);
                            self.events.record(object_ref(pod.as_ref()), "Warning", "FailedBinding", message);
                            return Err(e.into());
                        }
                    }
                }
                Step::NotOwner(message) => {
                    self.events.record(object_ref(pod.as_ref()), "Warning", "FailedBinding", message.clone());
                    return Err(EphemeralError::NotOwner(message));
                }
            }
        }
        Ok(Action::await_change())
    }
}

/// The pod a claim is the ephemeral claim of (its controller, a Pod).
fn owner_pod(pvc: &PersistentVolumeClaim) -> Option<ObjectRef> {
    let m = pvc.meta();
    let owner = m.owner_references.iter().find(|r| r.controller == Some(true) && r.kind == "Pod")?;
    Some(ObjectRef::new(&m.namespace, &owner.name))
}

/// Runs the controller over pods with ephemeral volumes (claims wake their pod).
pub fn spawn(w: &mut Wiring) {
    let events = w.recorder("ephemeral_volume");
    let inf = &w.informers;
    let ctx = Arc::new(Ephemeral {
        client: w.client.clone(),
        claims: inf.persistent_volume_claims.store(),
        events,
    });
    let controller = Controller::for_shared(&inf.pods)
        .watches_shared(&inf.persistent_volume_claims, |pvc: &PersistentVolumeClaim| {
            owner_pod(pvc).into_iter().collect()
        });
    w.controller::<Pod, _>(controller, ctx, std::time::Duration::from_secs(5));
}

#[cfg(test)]
mod tests {
    use super::*;
    use navarch_client::{Event, store};

    fn claims_of(items: Vec<PersistentVolumeClaim>) -> Store<PersistentVolumeClaim> {
        let (s, mut w) = store();
        w.apply_owned(Event::Init);
        for c in items {
            w.apply_owned(Event::InitApply(c));
        }
        w.apply_owned(Event::InitDone);
        s
    }

    fn pod() -> Pod {
        serde_yaml::from_str(
            "metadata: {name: p, namespace: ns, uid: u1}\nspec:\n  containers: [{name: c, image: i}]\n  volumes:\n  \
             - name: scratch\n    ephemeral:\n      volumeClaimTemplate:\n        metadata: {labels: {type: scratch}}\n        \
             spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n  - name: plain\n    emptyDir: {}\n",
        )
        .unwrap()
    }

    #[test]
    fn a_claim_per_ephemeral_volume_controlled_by_the_pod() {
        let steps = plan(&pod(), &claims_of(vec![]));
        assert_eq!(steps.len(), 1);
        let Step::Create(c) = &steps[0] else { panic!("{steps:?}") };
        let m = c.meta();
        assert_eq!((m.name.as_str(), m.namespace.as_str()), ("p-scratch", "ns"));
        assert_eq!(m.labels.get("type").map(String::as_str), Some("scratch"));
        let r = &m.owner_references[0];
        assert_eq!(
            (r.kind.as_str(), r.uid.as_str(), r.controller, r.block_owner_deletion),
            ("Pod", "u1", Some(true), Some(true))
        );
        assert_eq!(c.spec.as_ref().unwrap().access_modes, ["ReadWriteOnce"]);
    }

    #[test]
    fn an_existing_claim_of_someone_else_is_reported_not_taken() {
        let other: PersistentVolumeClaim =
            serde_yaml::from_str("metadata: {name: p-scratch, namespace: ns}\n").unwrap();
        let steps = plan(&pod(), &claims_of(vec![other]));
        assert_eq!(
            steps,
            [Step::NotOwner("PVC ns/p-scratch was not created for pod ns/p (pod is not owner)".into())]
        );
        let mut mine: PersistentVolumeClaim = serde_yaml::from_str(
            "metadata: {name: p-scratch, namespace: ns, ownerReferences: [{apiVersion: v1, kind: Pod, name: p, uid: u1, controller: true}]}\n",
        )
        .unwrap();
        mine.set_type_meta();
        assert!(plan(&pod(), &claims_of(vec![mine])).is_empty(), "its own claim: nothing to do");
        let mut deleting = pod();
        deleting.meta_mut().deletion_timestamp = "2026-01-01T00:00:00Z".into();
        assert!(plan(&deleting, &claims_of(vec![])).is_empty(), "a deleting pod gets no claim");
    }
}
