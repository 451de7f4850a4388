//! The local-path provisioner's node agent (`navarch.io/local-path`, like the provisioner k3s ships):
//! each kubelet makes and removes the volumes of its own node.
//!
//! * Provision: a claim the scheduler placed here (`volume.kubernetes.io/selected-node: <this node>`),
//!   of a class whose provisioner is `navarch.io/local-path`, not bound yet → the directory
//!   `<root dir>/local-path/pvc-<claim uid>_<namespace>_<claim name>` (mode 0777), then the volume
//!   `pvc-<claim uid>`: a `hostPath` there, node affinity `kubernetes.io/hostname In [<node>]`, the claim's
//!   request, access modes and volume mode, the class's reclaim policy and mount options, pre-bound to the
//!   claim, annotated `pv.kubernetes.io/provisioned-by: navarch.io/local-path`; the PV controller binds
//!   them. Events `Provisioning` / `ProvisioningSucceeded` / `ProvisioningFailed` on the claim.
//! * Delete: a volume of this provisioner tied to this node, `Released` with reclaim policy `Delete` →
//!   its directory removed (only a directory directly under this kubelet's `local-path` directory; any
//!   other path is refused with a `VolumeFailedDelete` warning), then the volume deleted.
//! * At start: directories under `local-path` whose claim uid has neither a volume nor a claim are
//!   removed (a crash between the directory and the volume's creation).
//!
//! Every step is idempotent (an existing volume is success, a missing directory is removed already) and
//! all state is the api-server's objects and the directories, so a restarted kubelet carries on. File
//! system work runs on blocking threads; the watches and controllers are tasks owned by [`LocalPath::run`],
//! stopped on shutdown.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use navarch_api::storage::{
    ANN_PROVISIONED_BY, ANN_SELECTED_NODE, LOCAL_PATH_PROVISIONER, class_reclaim_policy,
};
use navarch_api::v1::{
    HostPathVolumeSource, ObjectMeta, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeSpec, StorageClass,
};
use navarch_api::{Resource, local_path};
use navarch_client::{
    Action, Client, Controller, DeleteParams, EventRecorder, ObjectRef, SharedReflector, Store,
    WatcherConfig, object_ref,
};
use tokio_util::sync::CancellationToken;

/// The provisioner's directory under the kubelet's root directory.
pub const DIR: &str = "local-path";

#[derive(Debug, thiserror::Error)]
pub enum LocalPathError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("api-server: {0}")]
    Api(#[from] navarch_client::Error),
}

/// The volume made for a claim: `pvc-<claim uid>`.
pub fn volume_name(claim_uid: &str) -> String {
    format!("pvc-{claim_uid}")
}

/// The directory name of a claim's volume: `pvc-<uid>_<namespace>_<name>`.
pub fn dir_name(claim: &PersistentVolumeClaim) -> String {
    let m = claim.meta();
    format!("{}_{}_{}", volume_name(&m.uid), m.namespace, m.name)
}

/// The claim uid of a directory this provisioner made (`pvc-<uid>_...`).
pub fn claim_uid_of_dir(name: &str) -> Option<&str> {
    let (volume, _) = name.split_once('_')?;
    volume.strip_prefix("pvc-").filter(|uid| !uid.is_empty())
}

/// Whether `path` is a directory this provisioner may remove: directly under `base`, named like its
/// directories, written without `.` or `..` (compared as written: a volume's path that merely leads
/// into `base` some other way is refused).
pub fn contained(base: &Path, path: &Path) -> bool {
    let Some(text) = path.to_str() else { return false };
    if !path.is_absolute() || text.split('/').any(|c| c == "." || c == "..") {
        return false;
    }
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    path.parent() == Some(base) && claim_uid_of_dir(name).is_some()
}

/// The class a claim of this node waits for this provisioner with: its selected node is `node`, it is
/// not bound nor being deleted, and its class (from `classes`) names `navarch.io/local-path`.
pub fn class_to_provision(
    claim: &PersistentVolumeClaim,
    node: &str,
    classes: &Store<StorageClass>,
) -> Option<Arc<StorageClass>> {
    let m = claim.meta();
    if m.annotations.get(ANN_SELECTED_NODE).map(String::as_str) != Some(node)
        || !m.deletion_timestamp.is_empty()
    {
        return None;
    }
    if claim.spec.as_ref().is_none_or(|s| !s.volume_name.is_empty()) {
        return None;
    }
    let class_name = navarch_api::storage::claim_class(claim);
    if class_name.is_empty() {
        return None;
    }
    classes.get(&ObjectRef::new("", class_name)).filter(|c| c.provisioner == LOCAL_PATH_PROVISIONER)
}

/// The volume for `claim` of `class` on `node`, at `path`, pre-bound to the claim.
pub fn volume_for(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    node: &str,
    path: &Path,
) -> PersistentVolume {
    let m = claim.meta();
    let spec = claim.spec.clone().unwrap_or_default();
    let capacity = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.get("storage"))
        .map(|q| [("storage".to_string(), q.clone())].into_iter().collect())
        .unwrap_or_default();
    let mut pv = PersistentVolume {
        metadata: Some(ObjectMeta {
            name: volume_name(&m.uid),
            annotations: [(ANN_PROVISIONED_BY.to_string(), LOCAL_PATH_PROVISIONER.to_string())]
                .into_iter()
                .collect(),
            ..Default::default()
        }),
        spec: Some(PersistentVolumeSpec {
            capacity,
            host_path: Some(HostPathVolumeSource {
                path: path.display().to_string(),
                r#type: Some("DirectoryOrCreate".into()),
            }),
            access_modes: spec.access_modes.clone(),
            claim_ref: Some(ObjectReference {
                kind: PersistentVolumeClaim::KIND.into(),
                api_version: PersistentVolumeClaim::API_VERSION.into(),
                namespace: m.namespace.clone(),
                name: m.name.clone(),
                uid: m.uid.clone(),
                ..Default::default()
            }),
            persistent_volume_reclaim_policy: class_reclaim_policy(class).to_string(),
            storage_class_name: class.meta().name.clone(),
            mount_options: class.mount_options.clone(),
            volume_mode: Some(
                spec.volume_mode.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| "Filesystem".into()),
            ),
            node_affinity: Some(local_path::node_affinity(node)),
            ..Default::default()
        }),
        status: None,
        ..Default::default()
    };
    pv.set_type_meta();
    pv
}

/// Whether the volume is this node's to delete now: this provisioner's, tied to `node`, `Released`,
/// reclaim policy `Delete`.
pub fn due_for_deletion(pv: &PersistentVolume, node: &str) -> bool {
    let phase = pv.status.as_ref().map(|s| s.phase.as_str()).unwrap_or_default();
    let reclaim = pv.spec.as_ref().map(|s| s.persistent_volume_reclaim_policy.as_str()).unwrap_or_default();
    local_path::is_local_path_volume_of(pv, node) && phase == "Released" && reclaim == "Delete"
}

/// The directories under `base` whose claim uid is in neither `volumes` (uids of `pvc-<uid>` volumes)
/// nor `claims`, and which are empty: what a crash between making the directory and creating its volume
/// leaves. A directory with data is kept even without a volume (an administrator may have deleted a
/// Retain volume by hand: its data stays theirs, as in Kubernetes).
pub fn orphans(
    base: &Path,
    volumes: &HashSet<String>,
    claims: &HashSet<String>,
) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(base) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(uid) = claim_uid_of_dir(&name)
            && !volumes.contains(uid)
            && !claims.contains(uid)
            && std::fs::read_dir(e.path())?.next().is_none()
        {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LocalPathError {
    let path = path.to_path_buf();
    move |source| LocalPathError::Io { path, source }
}

/// Makes a volume's directory (mode 0777, whatever the umask), on a blocking thread.
async fn make_dir(path: PathBuf) -> Result<(), LocalPathError> {
    let p = path.clone();
    let made = tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&p)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777))
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r);
    made.map_err(io_err(&path))
}

/// Removes a volume's directory (already gone is fine), on a blocking thread. `remove_dir_all` does not
/// follow symbolic links.
async fn remove_dir(path: PathBuf) -> Result<(), LocalPathError> {
    let p = path.clone();
    let removed = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r);
    removed.map_err(io_err(&path))
}

/// The agent of one node.
pub struct LocalPath {
    client: Client,
    node: String,
    /// `<root dir>/local-path`.
    base: PathBuf,
    events: EventRecorder,
    classes: Store<StorageClass>,
    volumes: Store<PersistentVolume>,
}

/// How soon a claim whose class is not known yet is looked at again.
const CLASS_RETRY: Duration = Duration::from_secs(5);

impl LocalPath {
    /// Runs the agent of `node` (volumes under `<root_dir>/local-path`, events through `events`) until
    /// `shutdown`; returns once its tasks have stopped.
    pub async fn run(
        client: Client,
        node: String,
        root_dir: PathBuf,
        events: EventRecorder,
        shutdown: CancellationToken,
    ) {
        let base = root_dir.join(DIR);
        let all = WatcherConfig::default();
        let claims = SharedReflector::new(client.api::<PersistentVolumeClaim>(""), all.clone());
        let volumes = SharedReflector::new(client.api::<PersistentVolume>(""), all.clone());
        let classes = SharedReflector::new(client.api::<StorageClass>(""), all);
        let claim_controller = Controller::for_shared(&claims).concurrency(2);
        let volume_controller = Controller::for_shared(&volumes).concurrency(2);
        let mut tasks = tokio::task::JoinSet::new();
        let claim_store = claims.spawn(&mut tasks, shutdown.clone());
        let volume_store = volumes.spawn(&mut tasks, shutdown.clone());
        let class_store = classes.spawn(&mut tasks, shutdown.clone());
        let agent = Arc::new(LocalPath {
            client,
            node,
            base,
            events,
            classes: class_store.clone(),
            volumes: volume_store.clone(),
        });
        let ready = async {
            claim_store.wait_until_ready().await;
            volume_store.wait_until_ready().await;
            class_store.wait_until_ready().await;
        };
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = ready => {
                agent.sweep(&claim_store).await;
                tasks.spawn(claim_controller.run(
                    |claim, a: Arc<LocalPath>| async move { a.provision(claim).await },
                    |_claim, _err, _a| Action::requeue(Duration::from_secs(5)),
                    agent.clone(),
                    shutdown.clone(),
                ));
                tasks.spawn(volume_controller.run(
                    |pv, a: Arc<LocalPath>| async move { a.delete(pv).await },
                    |_pv, _err, _a| Action::requeue(Duration::from_secs(5)),
                    agent.clone(),
                    shutdown.clone(),
                ));
                tracing::info!(node = %agent.node, dir = %agent.base.display(), "local-path provisioner running");
                shutdown.cancelled().await;
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Removes the directories no volume and no claim account for.
    async fn sweep(&self, claims: &Store<PersistentVolumeClaim>) {
        let volumes: HashSet<String> = self
            .volumes
            .state()
            .iter()
            .filter_map(|v| v.meta().name.strip_prefix("pvc-").map(str::to_string))
            .collect();
        let claims: HashSet<String> = claims.state().iter().map(|c| c.meta().uid.clone()).collect();
        let base = self.base.clone();
        let found = tokio::task::spawn_blocking(move || orphans(&base, &volumes, &claims)).await;
        let found = match found {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                tracing::warn!(dir = %self.base.display(), error = %e, "listing local-path volumes");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "listing local-path volumes");
                return;
            }
        };
        for dir in found {
            tracing::info!(dir = %dir.display(), "removing a local-path directory no volume or claim owns");
            if let Err(e) = remove_dir(dir).await {
                tracing::warn!(error = %e, "removing an orphaned local-path directory");
            }
        }
    }

    /// Provisions the claim's volume when it is this node's to make.
    async fn provision(&self, claim: Arc<PersistentVolumeClaim>) -> Result<Action, LocalPathError> {
        let m = claim.meta();
        let Some(class) = class_to_provision(&claim, &self.node, &self.classes) else {
            let waits_for_class = m.annotations.get(ANN_SELECTED_NODE) == Some(&self.node)
                && self.classes.get(&ObjectRef::new("", navarch_api::storage::claim_class(&claim))).is_none();
            return Ok(if waits_for_class { Action::requeue(CLASS_RETRY) } else { Action::await_change() });
        };
        let name = volume_name(&m.uid);
        if self.volumes.get(&ObjectRef::new("", &name)).is_some() {
            return Ok(Action::await_change());
        }
        let key = format!("{}/{}", m.namespace, m.name);
        let on_claim = |kind, reason, message: String| {
            self.events.record(object_ref(claim.as_ref()), kind, reason, message)
        };
        on_claim(
            "Normal",
            "Provisioning",
            format!("External provisioner is provisioning volume for claim {key:?}"),
        );
        let path = self.base.join(dir_name(&claim));
        let failed = |e: &LocalPathError| {
            on_claim(
                "Warning",
                "ProvisioningFailed",
                format!("failed to provision volume with StorageClass {:?}: {e}", class.meta().name),
            )
        };
        if let Err(e) = make_dir(path.clone()).await {
            failed(&e);
            return Err(e);
        }
        let pv = volume_for(&claim, &class, &self.node, &path);
        match self.client.api::<PersistentVolume>("").create(&pv).await {
            Ok(_) => {
                tracing::info!(claim = %key, volume = %name, path = %path.display(), "volume provisioned");
                on_claim(
                    "Normal",
                    "ProvisioningSucceeded",
                    format!("Successfully provisioned volume {name}"),
                );
            }
            Err(navarch_client::Error::AlreadyExists(_)) => {}
            Err(e) => {
                let e = LocalPathError::from(e);
                failed(&e);
                return Err(e);
            }
        }
        Ok(Action::await_change())
    }

    /// Deletes a released volume of this node: its directory, then the object.
    async fn delete(&self, pv: Arc<PersistentVolume>) -> Result<Action, LocalPathError> {
        if !due_for_deletion(&pv, &self.node) {
            return Ok(Action::await_change());
        }
        let m = pv.meta();
        let path = pv.spec.as_ref().and_then(|s| s.host_path.as_ref()).map(|h| PathBuf::from(&h.path));
        let Some(path) = path.filter(|p| contained(&self.base, p)) else {
            let message =
                format!("refusing to remove the volume's path: not a directory of {}", self.base.display());
            tracing::warn!(volume = %m.name, %message);
            self.events.record(object_ref(pv.as_ref()), "Warning", "VolumeFailedDelete", message);
            return Ok(Action::await_change());
        };
        if let Err(e) = remove_dir(path.clone()).await {
            self.events.record(object_ref(pv.as_ref()), "Warning", "VolumeFailedDelete", e.to_string());
            return Err(e);
        }
        if !m.deletion_timestamp.is_empty() {
            // Deleted already; the pv-protection finalizer's controller finishes it.
            return Ok(Action::await_change());
        }
        let params = DeleteParams { precondition_uid: m.uid.clone(), ..Default::default() };
        match self.client.api::<PersistentVolume>("").delete(&m.name, &params).await {
            Ok(_) | Err(navarch_client::Error::NotFound(_)) | Err(navarch_client::Error::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(volume = %m.name, path = %path.display(), "released volume deleted");
        Ok(Action::await_change())
    }
}

#[cfg(test)]
mod tests;
