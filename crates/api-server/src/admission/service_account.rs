//! Kubernetes' `ServiceAccount` admission plugin (`plugin/pkg/admission/serviceaccount`), for pods being
//! created:
//!
//! * `spec.serviceAccountName` defaults to `default`, and the ServiceAccount must exist (the `default`
//!   one is looked up again for a while: the controller-manager makes it right after the namespace);
//!   otherwise the pod is forbidden (`error looking up service account ns/sa: serviceaccount "sa" not
//!   found`);
//! * unless `automountServiceAccountToken: false` (the pod's wins over its ServiceAccount's), every
//!   container and init container without a mount at [`TOKEN_MOUNT_PATH`] gets a read-only one of the
//!   projected volume `kube-api-access-<5 random characters>`: a bound token of the pod's
//!   ServiceAccount ([`TOKEN_EXPIRATION_SECONDS`], refreshed by the kubelet), the cluster's CA bundle
//!   (ConfigMap [`ROOT_CA_CONFIG_MAP`], published in every namespace by the controller-manager) and the
//!   namespace (downward API) — what in-cluster clients read. A volume named `kube-api-access-*`
//!   already in the pod is reused instead. Ephemeral containers are never given the mount: they can
//!   only be added later, through `pods/ephemeralcontainers`, which Kubernetes does not mutate;
//! * a pod without `imagePullSecrets` gets its ServiceAccount's;
//! * mirror pods (annotation [`MIRROR_POD_ANNOTATION`]) are not changed, and may reference neither a
//!   ServiceAccount, nor Secrets, nor token projections.
//!
//! The registry calls [`admit_pod`] on create, after defaulting and before validation; the api-server's
//! `--disable-admission-plugins=ServiceAccount` turns it off (as in Kubernetes' integration tests).

use std::time::Duration;

use navarch_api::v1::{
    ConfigMapProjection, DownwardApiProjection, DownwardApiVolumeFile, KeyToPath, LocalObjectReference,
    ObjectFieldSelector, Pod, PodSpec, ProjectedVolumeSource, ServiceAccount, ServiceAccountTokenProjection,
    Volume, VolumeMount, VolumeProjection,
};
use rand::Rng;

/// The plugin's name in `--disable-admission-plugins`.
pub const PLUGIN: &str = "ServiceAccount";
/// The ServiceAccount of pods that name none.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// Where containers find the token, `ca.crt` and `namespace`.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The prefix of the projected volume's name.
pub const VOLUME_PREFIX: &str = "kube-api-access";
/// The ConfigMap holding the cluster's CA bundle in every namespace.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
/// Its key (and the file's name).
pub const ROOT_CA_KEY: &str = "ca.crt";
/// The token's requested lifetime: one hour and seven seconds, the value Kubernetes uses to recognise
/// automounted tokens (`WarnOnlyBoundTokenExpirationSeconds`).
pub const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
/// The files' permission bits: 0644.
pub const DEFAULT_MODE: i32 = 0o644;
/// Marks a mirror pod (the api-server's copy of a kubelet's static pod).
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Lookups of the `default` ServiceAccount before giving up (other names: one).
const DEFAULT_ATTEMPTS: usize = 10;

/// Why a pod is not admitted; the registry answers `Forbidden`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    #[error("error looking up service account {namespace}/{name}: {reason}")]
    Lookup { namespace: String, name: String, reason: String },
    #[error("a mirror pod may not reference service accounts")]
    MirrorServiceAccount,
    #[error("a mirror pod may not reference secrets")]
    MirrorSecrets,
    #[error("a mirror pod may not use ServiceAccountToken volume projections")]
    MirrorTokenProjection,
}

/// Where ServiceAccounts are read (the registry; a map in tests).
pub trait ServiceAccounts: Sync {
    /// The ServiceAccount `namespace/name`; `Ok(None)` when there is none, `Err` when it cannot be read.
    fn service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<ServiceAccount>, String>> + Send;
}

/// How long to wait between lookups of a missing `default` ServiceAccount.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub interval: Duration,
}

impl Default for Retry {
    /// 100 to 200 ms, as Kubernetes.
    fn default() -> Retry {
        Retry { interval: Duration::from_millis(rand::rng().random_range(100..200)) }
    }
}

/// Admits a pod being created in `namespace`: see the module's documentation.
pub async fn admit_pod<S: ServiceAccounts>(
    pod: &mut Pod,
    namespace: &str,
    accounts: &S,
    retry: Retry,
) -> Result<(), AdmissionError> {
    let mirror = pod.metadata.as_ref().is_some_and(|m| m.annotations.contains_key(MIRROR_POD_ANNOTATION));
    let spec = pod.spec.get_or_insert_with(Default::default);
    if mirror {
        return validate_mirror(spec);
    }
    if spec.service_account_name.is_empty() {
        spec.service_account_name = DEFAULT_SERVICE_ACCOUNT.to_string();
    }
    // The deprecated spelling follows, as Kubernetes' conversion writes it.
    spec.service_account = spec.service_account_name.clone();
    let name = spec.service_account_name.clone();
    let sa = lookup(accounts, namespace, &name, retry).await?;
    if should_automount(&sa, spec) {
        mount_token(spec, &random_suffix());
    }
    if spec.image_pull_secrets.is_empty() {
        spec.image_pull_secrets =
            sa.image_pull_secrets.iter().map(|s| LocalObjectReference { name: s.name.clone() }).collect();
    }
    Ok(())
}

/// The ServiceAccount, looked up [`DEFAULT_ATTEMPTS`] times if it is the missing `default` one.
async fn lookup<S: ServiceAccounts>(
    accounts: &S,
    namespace: &str,
    name: &str,
    retry: Retry,
) -> Result<ServiceAccount, AdmissionError> {
    let error = |reason: String| AdmissionError::Lookup {
        namespace: namespace.to_string(),
        name: name.to_string(),
        reason,
    };
    let attempts = if name == DEFAULT_SERVICE_ACCOUNT { DEFAULT_ATTEMPTS } else { 1 };
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(retry.interval).await;
        }
        if let Some(sa) = accounts.service_account(namespace, name).await.map_err(error)? {
            return Ok(sa);
        }
    }
    Err(error(format!("serviceaccount {name:?} not found")))
}

/// The pod's `automountServiceAccountToken`, else its ServiceAccount's, else true.
pub fn should_automount(sa: &ServiceAccount, spec: &PodSpec) -> bool {
    spec.automount_service_account_token.or(sa.automount_service_account_token).unwrap_or(true)
}

/// Five characters of Kubernetes' name generator's alphabet.
fn random_suffix() -> String {
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// Mounts the token volume (reused if the pod has one named `kube-api-access-*`, else added as
/// `kube-api-access-<suffix>`) in every container and init container that has nothing mounted at
/// [`TOKEN_MOUNT_PATH`]; the volume is added only if some container mounts it.
pub fn mount_token(spec: &mut PodSpec, suffix: &str) {
    let prefix = format!("{VOLUME_PREFIX}-");
    let existing = spec.volumes.iter().find(|v| v.name.starts_with(&prefix)).map(|v| v.name.clone());
    let volume_name = existing.clone().unwrap_or_else(|| format!("{prefix}{suffix}"));
    let mount = VolumeMount {
        name: volume_name.clone(),
        read_only: true,
        mount_path: TOKEN_MOUNT_PATH.to_string(),
        ..Default::default()
    };
    let mut mounted = false;
    for c in spec.init_containers.iter_mut().chain(spec.containers.iter_mut()) {
        if !c.volume_mounts.iter().any(|m| m.mount_path == TOKEN_MOUNT_PATH) {
            c.volume_mounts.push(mount.clone());
            mounted = true;
        }
    }
    if mounted && existing.is_none() {
        spec.volumes.push(Volume {
            name: volume_name,
            projected: Some(token_volume_source()),
            ..Default::default()
        });
    }
}

/// The projected source of `kube-api-access-*` volumes, every default written out (as Kubernetes
/// does, so that the stored pod shows them).
pub fn token_volume_source() -> ProjectedVolumeSource {
    ProjectedVolumeSource {
        default_mode: Some(DEFAULT_MODE),
        sources: vec![
            VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    expiration_seconds: Some(TOKEN_EXPIRATION_SECONDS),
                    path: "token".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            VolumeProjection {
                config_map: Some(ConfigMapProjection {
                    name: ROOT_CA_CONFIG_MAP.into(),
                    items: vec![KeyToPath {
                        key: ROOT_CA_KEY.into(),
                        path: ROOT_CA_KEY.into(),
                        ..Default::default()
                    }],
                    optional: None,
                }),
                ..Default::default()
            },
            VolumeProjection {
                downward_api: Some(DownwardApiProjection {
                    items: vec![DownwardApiVolumeFile {
                        path: "namespace".into(),
                        field_ref: Some(ObjectFieldSelector {
                            api_version: "v1".into(),
                            field_path: "metadata.namespace".into(),
                        }),
                        ..Default::default()
                    }],
                }),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

/// What a mirror pod may not reference.
fn validate_mirror(spec: &PodSpec) -> Result<(), AdmissionError> {
    if !spec.service_account_name.is_empty() {
        return Err(AdmissionError::MirrorServiceAccount);
    }
    if references_secrets(spec) {
        return Err(AdmissionError::MirrorSecrets);
    }
    let token = spec
        .volumes
        .iter()
        .filter_map(|v| v.projected.as_ref())
        .any(|p| p.sources.iter().any(|s| s.service_account_token.is_some()));
    if token {
        return Err(AdmissionError::MirrorTokenProjection);
    }
    Ok(())
}

/// Whether the pod names any Secret (Kubernetes' `VisitPodSecretNames` over all containers).
fn references_secrets(spec: &PodSpec) -> bool {
    let volumes = spec.volumes.iter().any(|v| {
        v.secret.is_some()
            || v.projected.as_ref().is_some_and(|p| p.sources.iter().any(|s| s.secret.is_some()))
    });
    let containers =
        spec.init_containers.iter().chain(&spec.containers).chain(&spec.ephemeral_containers).any(|c| {
            c.env_from.iter().any(|e| e.secret_ref.is_some())
                || c.env.iter().any(|e| e.value_from.as_ref().is_some_and(|v| v.secret_key_ref.is_some()))
        });
    !spec.image_pull_secrets.is_empty() || volumes || containers
}

impl ServiceAccounts for crate::registry::Registry {
    async fn service_account(&self, namespace: &str, name: &str) -> Result<Option<ServiceAccount>, String> {
        match self.get("ServiceAccount", namespace, name).await {
            Ok(navarch_api::Object::ServiceAccount(sa)) => Ok(Some(sa)),
            Ok(other) => Err(format!("stored object is a {}", other.kind())),
            Err(crate::error::ApiError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
#[path = "service_account_tests.rs"]
mod tests;
