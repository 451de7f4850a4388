//! The API objects a pod references by name, in its own namespace: what the Node authorizer lets the
//! pod's node read, and what NodeRestriction forbids in the mirror pods a node creates. Kubernetes'
//! `podutil.VisitPodSecretNames` / `VisitPodConfigmapNames` over all containers (init, regular and
//! ephemeral), plus the claims of `persistentVolumeClaim` and generic ephemeral volumes and the
//! ServiceAccount.

use std::collections::BTreeSet;

use navarch_api::v1::{Container, LocalObjectReference, Pod, Volume};

/// The names a pod references; each set is sorted and free of duplicates and empty names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodReferences {
    /// `spec.serviceAccountName` (or the deprecated `spec.serviceAccount` when that is empty).
    pub service_account: Option<String>,
    pub secrets: BTreeSet<String>,
    pub config_maps: BTreeSet<String>,
    /// `persistentVolumeClaim.claimName`, and `<pod>-<volume>` for generic ephemeral volumes.
    pub claims: BTreeSet<String>,
}

impl PodReferences {
    /// Everything `pod` references.
    pub fn of(pod: &Pod) -> PodReferences {
        let mut refs = PodReferences::default();
        let Some(spec) = pod.spec.as_ref() else {
            return refs;
        };
        let sa = if spec.service_account_name.is_empty() {
            &spec.service_account
        } else {
            &spec.service_account_name
        };
        refs.service_account = (!sa.is_empty()).then(|| sa.clone());
        for s in &spec.image_pull_secrets {
            insert(&mut refs.secrets, &s.name);
        }
        let containers =
            spec.init_containers.iter().chain(&spec.containers).chain(&spec.ephemeral_containers);
        for c in containers {
            refs.add_container(c);
        }
        let pod_name = pod.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or_default();
        for v in &spec.volumes {
            refs.add_volume(pod_name, v);
        }
        refs
    }

    fn add_container(&mut self, c: &Container) {
        for from in &c.env_from {
            if let Some(s) = &from.secret_ref {
                insert(&mut self.secrets, &s.name);
            }
            if let Some(cm) = &from.config_map_ref {
                insert(&mut self.config_maps, &cm.name);
            }
        }
        for source in c.env.iter().filter_map(|e| e.value_from.as_ref()) {
            if let Some(s) = &source.secret_key_ref {
                insert(&mut self.secrets, &s.name);
            }
            if let Some(cm) = &source.config_map_key_ref {
                insert(&mut self.config_maps, &cm.name);
            }
        }
    }

    fn add_volume(&mut self, pod_name: &str, v: &Volume) {
        if let Some(s) = &v.secret {
            insert(&mut self.secrets, &s.secret_name);
        }
        if let Some(cm) = &v.config_map {
            insert(&mut self.config_maps, &cm.name);
        }
        if let Some(p) = &v.projected {
            for source in &p.sources {
                if let Some(s) = &source.secret {
                    insert(&mut self.secrets, &s.name);
                }
                if let Some(cm) = &source.config_map {
                    insert(&mut self.config_maps, &cm.name);
                }
            }
        }
        if let Some(a) = &v.azure_file {
            insert(&mut self.secrets, &a.secret_name);
        }
        if let Some(csi) = &v.csi {
            secret_ref(&mut self.secrets, csi.node_publish_secret_ref.as_ref());
        }
        let secret_refs = [
            v.cephfs.as_ref().and_then(|s| s.secret_ref.as_ref()),
            v.cinder.as_ref().and_then(|s| s.secret_ref.as_ref()),
            v.flex_volume.as_ref().and_then(|s| s.secret_ref.as_ref()),
            v.rbd.as_ref().and_then(|s| s.secret_ref.as_ref()),
            v.scale_io.as_ref().and_then(|s| s.secret_ref.as_ref()),
            v.iscsi.as_ref().and_then(|s| s.secret_ref.as_ref()),
            v.storageos.as_ref().and_then(|s| s.secret_ref.as_ref()),
        ];
        for r in secret_refs {
            secret_ref(&mut self.secrets, r);
        }
        if let Some(claim) = &v.persistent_volume_claim {
            insert(&mut self.claims, &claim.claim_name);
        } else if v.ephemeral.is_some() && !pod_name.is_empty() && !v.name.is_empty() {
            // Kubernetes' ephemeral.VolumeClaimName: the claim the ephemeral volume controller
            // creates for the pod is named `<pod name>-<volume name>`.
            self.claims.insert(format!("{pod_name}-{}", v.name));
        }
    }
}

fn insert(set: &mut BTreeSet<String>, name: &str) {
    if !name.is_empty() && !set.contains(name) {
        set.insert(name.to_string());
    }
}

fn secret_ref(set: &mut BTreeSet<String>, r: Option<&LocalObjectReference>) {
    if let Some(r) = r {
        insert(set, &r.name);
    }
}
