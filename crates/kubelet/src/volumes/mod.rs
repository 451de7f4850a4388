//! A pod's volumes on the host and its containers' environment: emptyDir (a directory, or tmpfs
//! for `medium: Memory`), hostPath, configMap, secret, downwardAPI and projected (configMaps,
//! secrets, the downward API and ServiceAccount tokens bound to the pod — the `kube-api-access-*`
//! volume — their files written atomically through a `..data` symlink swap, as Kubernetes does, and
//! rewritten when the objects change or a token is renewed), and env from values, configMaps,
//! secrets and the downward API, plus the `kubernetes` Service's variables (`KUBERNETES_SERVICE_HOST`,
//! `KUBERNETES_SERVICE_PORT`, the docker-link `KUBERNETES_PORT*`) that in-cluster clients read.
//!
//! * [`claims`]: `persistentVolumeClaim` and generic `ephemeral` volumes, through their bound
//!   PersistentVolume (`hostPath`, `local`, or `nfs` through [`nfs`]); until every claim can be used the
//!   pod waits ([`VolumeError::Unmounted`], Kubernetes' `FailedMount`);
//! * [`ownership`]: the pod's `fsGroup` on its persistent volumes.
//!
//! Containers mount volumes at their `volumeMounts` ([`mounts`]): `subPath` / `subPathExpr` inside the
//! volume, read-only when the mount or the volume says so.

pub mod claims;
pub mod nfs;
pub mod ownership;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use navarch_api::v1::{
    BoundObjectReference, ConfigMap, Container, HostPathVolumeSource, KeyToPath, ObjectFieldSelector,
    PersistentVolume, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccountTokenProjection,
    TokenRequest, TokenRequestSpec, Volume,
};
use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::spec::BindMount;
use crate::token::TokenManager;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The container cannot be configured yet (a missing configMap/secret/key): Kubernetes'
    /// `CreateContainerConfigError`.
    #[error("{0}")]
    Config(String),
    #[error("volume {volume}: {path}: {source}")]
    Io { volume: String, path: PathBuf, source: std::io::Error },
    #[error("looking up {what}: {message}")]
    Lookup { what: String, message: String },
    /// Volumes that cannot be set up yet (claims not bound, volumes missing, mounts failing): the pod
    /// waits in ContainerCreating and the kubelet reports `FailedMount`.
    #[error("{}", .0.message())]
    Unmounted(Unmounted),
}

/// The claim volumes a pod waits for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unmounted {
    /// (pod volume, why it cannot be used): Kubernetes' "failed to process volumes".
    pub unprocessed: Vec<(String, String)>,
    /// (pod volume, the event's message): the volume is known but could not be set up.
    pub failed: Vec<(String, String)>,
}

impl Unmounted {
    fn is_empty(&self) -> bool {
        self.unprocessed.is_empty() && self.failed.is_empty()
    }

    /// Kubernetes' `WaitForAttachAndMount` error: `unmounted volumes=[data], unattached volumes=[],
    /// failed to process volumes=[data]: error processing PVC ns/data: PVC is not bound`.
    pub fn message(&self) -> String {
        let names = |v: &mut dyn Iterator<Item = &String>| {
            let mut n: Vec<&str> = v.map(String::as_str).collect();
            n.sort_unstable();
            n.join(" ")
        };
        let unmounted = names(&mut self.unprocessed.iter().chain(&self.failed).map(|(n, _)| n));
        let unprocessed = names(&mut self.unprocessed.iter().map(|(n, _)| n));
        let cause = if self.unprocessed.is_empty() {
            "timed out waiting for the condition".to_string()
        } else {
            self.unprocessed.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>().join("; ")
        };
        format!(
            "unmounted volumes=[{unmounted}], unattached volumes=[], failed to process volumes=[{unprocessed}]: {cause}"
        )
    }

    /// The `FailedMount` events: one per volume that failed to set up (`MountVolume.SetUp failed for
    /// volume ...`), and `Unable to attach or mount volumes: ...` when claims cannot be used.
    pub fn events(&self) -> Vec<String> {
        let mut out: Vec<String> = self.failed.iter().map(|(_, m)| m.clone()).collect();
        if !self.unprocessed.is_empty() {
            out.push(format!("Unable to attach or mount volumes: {}", self.message()));
        }
        out
    }
}

/// A pod volume on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostVolume {
    pub path: PathBuf,
    /// Containers must mount it read-only (a read-only claim or volume source).
    pub read_only: bool,
}

/// Volume name → where it is on the host.
pub type HostVolumes = HashMap<String, HostVolume>;

type Result<T> = std::result::Result<T, VolumeError>;

/// Where configMaps, secrets, Services and ServiceAccount tokens come from (the api-server; maps in
/// tests).
pub trait Sources: Send + Sync {
    fn config_map(&self, ns: &str, name: &str) -> impl Future<Output = Result<Option<ConfigMap>>> + Send;
    fn secret(&self, ns: &str, name: &str) -> impl Future<Output = Result<Option<Secret>>> + Send;
    fn service(&self, ns: &str, name: &str) -> impl Future<Output = Result<Option<Service>>> + Send;
    /// A token of the ServiceAccount `ns/name` as `request` asks (cached and renewed by the kubelet).
    fn service_account_token(
        &self,
        ns: &str,
        name: &str,
        request: &TokenRequest,
    ) -> impl Future<Output = Result<String>> + Send;
    fn claim(
        &self,
        ns: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<PersistentVolumeClaim>>> + Send;
    fn persistent_volume(&self, name: &str) -> impl Future<Output = Result<Option<PersistentVolume>>> + Send;
}

/// The kubelet's sources: the api-server, with its tokens cached and renewed by a [`TokenManager`].
pub struct ApiSources<'a> {
    pub client: &'a navarch_client::Client,
    pub tokens: &'a TokenManager,
}

fn lookup(what: String) -> impl FnOnce(navarch_client::Error) -> VolumeError {
    move |e| VolumeError::Lookup { what, message: e.to_string() }
}

impl Sources for ApiSources<'_> {
    async fn config_map(&self, ns: &str, name: &str) -> Result<Option<ConfigMap>> {
        self.client.api::<ConfigMap>(ns).get_opt(name).await.map_err(lookup(format!("configmap {ns}/{name}")))
    }
    async fn secret(&self, ns: &str, name: &str) -> Result<Option<Secret>> {
        self.client.api::<Secret>(ns).get_opt(name).await.map_err(lookup(format!("secret {ns}/{name}")))
    }
    async fn service(&self, ns: &str, name: &str) -> Result<Option<Service>> {
        self.client.api::<Service>(ns).get_opt(name).await.map_err(lookup(format!("service {ns}/{name}")))
    }
    async fn service_account_token(&self, ns: &str, name: &str, request: &TokenRequest) -> Result<String> {
        let fetch = || async { self.client.create_token(ns, name, request).await.map_err(|e| e.to_string()) };
        let tr = self.tokens.token(ns, name, request, fetch).await.map_err(|e| VolumeError::Lookup {
            what: format!("a token of serviceaccount {ns}/{name}"),
            message: e.to_string(),
        })?;
        Ok(tr.status.map(|s| s.token).unwrap_or_default())
    }
    async fn claim(&self, ns: &str, name: &str) -> Result<Option<PersistentVolumeClaim>> {
        let api = self.client.api::<PersistentVolumeClaim>(ns);
        api.get_opt(name).await.map_err(lookup(format!("persistentvolumeclaim {ns}/{name}")))
    }
    async fn persistent_volume(&self, name: &str) -> Result<Option<PersistentVolume>> {
        let api = self.client.api::<PersistentVolume>("");
        api.get_opt(name).await.map_err(lookup(format!("persistentvolume {name}")))
    }
}

fn io(volume: &str, path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError {
    let (volume, path) = (volume.to_string(), path.to_path_buf());
    move |source| VolumeError::Io { volume, path, source }
}

fn meta(pod: &Pod) -> navarch_api::v1::ObjectMeta {
    pod.metadata.clone().unwrap_or_default()
}

/// A downward API field of the pod.
pub fn field_value(pod: &Pod, sel: &ObjectFieldSelector) -> Result<String> {
    let m = meta(pod);
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let path = sel.field_path.as_str();
    let keyed = |prefix: &str, map: &BTreeMap<String, String>| -> Option<String> {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.get(key).cloned().unwrap_or_default())
    };
    let lines = |map: &BTreeMap<String, String>| {
        map.iter().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join("\n")
    };
    let labels: BTreeMap<String, String> = m.labels.clone().into_iter().collect();
    let annotations: BTreeMap<String, String> = m.annotations.clone().into_iter().collect();
    Ok(match path {
        "metadata.name" => m.name,
        "metadata.namespace" => m.namespace,
        "metadata.uid" => m.uid,
        "metadata.labels" => lines(&labels),
        "metadata.annotations" => lines(&annotations),
        "spec.nodeName" => spec.node_name,
        "spec.serviceAccountName" => spec.service_account_name,
        "status.podIP" => status.pod_ip,
        "status.hostIP" => status.host_ip,
        "status.podIPs" => status.pod_i_ps.iter().map(|p| p.ip.clone()).collect::<Vec<_>>().join(","),
        "status.hostIPs" => status.host_i_ps.iter().map(|p| p.ip.clone()).collect::<Vec<_>>().join(","),
        _ => keyed("metadata.labels['", &labels)
            .or_else(|| keyed("metadata.annotations['", &annotations))
            .ok_or_else(|| VolumeError::Config(format!("unsupported fieldRef.fieldPath {path:?}")))?,
    })
}

fn decode_b64(what: &str, v: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(v)
        .map_err(|e| VolumeError::Config(format!("{what}: invalid base64: {e}")))
}

/// Key → bytes of a configMap (data and binaryData).
fn config_map_data(cm: &ConfigMap) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out: BTreeMap<String, Vec<u8>> =
        cm.data.iter().map(|(k, v)| (k.clone(), v.as_bytes().to_vec())).collect();
    for (k, v) in &cm.binary_data {
        out.insert(k.clone(), decode_b64(&format!("configmap key {k}"), v)?);
    }
    Ok(out)
}

fn secret_data(s: &Secret) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for (k, v) in &s.data {
        out.insert(k.clone(), decode_b64(&format!("secret key {k}"), v)?);
    }
    for (k, v) in &s.string_data {
        out.insert(k.clone(), v.as_bytes().to_vec());
    }
    Ok(out)
}

/// A file to project: relative path, content, mode.
type Projected = Vec<(String, Vec<u8>, u32)>;

fn project(
    what: &str,
    data: &BTreeMap<String, Vec<u8>>,
    items: &[KeyToPath],
    mode: u32,
    out: &mut Projected,
) -> Result<()> {
    if items.is_empty() {
        for (k, v) in data {
            out.push((k.clone(), v.clone(), mode));
        }
        return Ok(());
    }
    for item in items {
        let v = data
            .get(&item.key)
            .ok_or_else(|| VolumeError::Config(format!("{what}: key {:?} not found", item.key)))?;
        out.push((item.path.clone(), v.clone(), item.mode.map(|m| m as u32).unwrap_or(mode)));
    }
    Ok(())
}

/// A configMap's data by key; `None` when it is missing and `optional`, an error when it is missing
/// and required.
async fn config_map_of<S: Sources>(
    sources: &S,
    ns: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<Option<BTreeMap<String, Vec<u8>>>> {
    match sources.config_map(ns, name).await? {
        Some(cm) => Ok(Some(config_map_data(&cm)?)),
        None if optional == Some(true) => Ok(None),
        None => Err(VolumeError::Config(format!("configmap \"{name}\" not found"))),
    }
}

/// A secret's data by key, with the same rules as [`config_map_of`].
async fn secret_of<S: Sources>(
    sources: &S,
    ns: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<Option<BTreeMap<String, Vec<u8>>>> {
    match sources.secret(ns, name).await? {
        Some(s) => Ok(Some(secret_data(&s)?)),
        None if optional == Some(true) => Ok(None),
        None => Err(VolumeError::Config(format!("secret \"{name}\" not found"))),
    }
}

/// Downward API files of the pod.
fn project_downward(
    pod: &Pod,
    items: &[navarch_api::v1::DownwardApiVolumeFile],
    mode: u32,
    out: &mut Projected,
) -> Result<()> {
    for item in items {
        if let Some(f) = &item.field_ref {
            out.push((
                item.path.clone(),
                field_value(pod, f)?.into_bytes(),
                item.mode.map(|m| m as u32).unwrap_or(mode),
            ));
        }
    }
    Ok(())
}

/// Writes `files` into `dir` atomically: a fresh timestamped directory, `..data` swapped to point
/// at it with a rename, top-level names as symlinks into `..data`, the old directory removed.
/// Unchanged content is left alone.
pub fn write_atomic(volume: &str, dir: &Path, files: &Projected) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(volume, dir))?;
    let data_link = dir.join("..data");
    // Unchanged? Compare with what ..data holds.
    if let Ok(current) = std::fs::read_link(&data_link) {
        let cur_dir = dir.join(&current);
        let same = files.iter().all(|(p, content, mode)| {
            let f = cur_dir.join(p);
            std::fs::read(&f).ok().as_deref() == Some(content.as_slice())
                && std::fs::metadata(&f).map(|m| m.permissions().mode() & 0o7777 == *mode).unwrap_or(false)
        }) && count_files(&cur_dir) == files.len();
        if same {
            return Ok(());
        }
    }
    let stamp = format!(
        "..{}",
        humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string().replace(':', "_")
    );
    let new_dir = dir.join(&stamp);
    std::fs::create_dir_all(&new_dir).map_err(io(volume, &new_dir))?;
    for (p, content, mode) in files {
        if p.starts_with('/') || p.split('/').any(|c| c == "..") {
            return Err(VolumeError::Config(format!(
                "volume {volume}: path {p:?} must be relative without '..'"
            )));
        }
        let f = new_dir.join(p);
        if let Some(parent) = f.parent() {
            std::fs::create_dir_all(parent).map_err(io(volume, parent))?;
        }
        std::fs::write(&f, content).map_err(io(volume, &f))?;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(*mode)).map_err(io(volume, &f))?;
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp).map_err(io(volume, &tmp))?;
    let old = std::fs::read_link(&data_link).ok();
    std::fs::rename(&tmp, &data_link).map_err(io(volume, &data_link))?;
    // Top-level entries.
    let tops: std::collections::BTreeSet<String> =
        files.iter().map(|(p, _, _)| p.split('/').next().unwrap_or("").to_string()).collect();
    for top in &tops {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(top), &link).map_err(io(volume, &link))?;
        }
    }
    // Remove links of names no longer projected, and the old directory.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.starts_with("..") && !tops.contains(&name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    if let Some(old) = old
        && old.as_os_str() != stamp.as_str()
    {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(())
}

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => n += count_files(&e.path()),
                Ok(_) => n += 1,
                Err(_) => {}
            }
        }
    }
    n
}

/// The host directory of a pod volume.
pub fn volume_dir(pod_dir: &Path, name: &str) -> PathBuf {
    pod_dir.join("volumes").join(name)
}

/// Materialises every volume of the pod under `pod_dir`; returns volume name → host path. Claim
/// volumes that cannot be set up yet are all reported together ([`VolumeError::Unmounted`]).
pub async fn prepare<S: Sources>(pod: &Pod, pod_dir: &Path, sources: &S) -> Result<HostVolumes> {
    let ns = meta(pod).namespace;
    let mut out = HashMap::new();
    let mut waiting = Unmounted::default();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter()) {
        let dir = volume_dir(pod_dir, &v.name);
        if let Some(claim) = claims::claim_of(pod, v) {
            let plan = match claims::resolve(pod, &v.name, &claim, sources).await {
                Ok(plan) => plan,
                Err(e) => {
                    waiting.unprocessed.push((v.name.clone(), e));
                    continue;
                }
            };
            match set_up_claim(pod, &v.name, &plan, pod_dir, &dir).await {
                Ok(h) => out.insert(v.name.clone(), h),
                Err(e) => {
                    waiting.failed.push((v.name.clone(), e));
                    continue;
                }
            };
            continue;
        }
        let path = prepare_one(pod, &ns, v, &dir, sources).await?;
        out.insert(v.name.clone(), HostVolume { path, read_only: false });
    }
    if !waiting.is_empty() {
        return Err(VolumeError::Unmounted(waiting));
    }
    Ok(out)
}

/// Sets up a claim's volume as planned; the error is the `FailedMount` event's message.
async fn set_up_claim(
    pod: &Pod,
    name: &str,
    plan: &claims::MountPlan,
    pod_dir: &Path,
    dir: &Path,
) -> std::result::Result<HostVolume, String> {
    let set_up_failed = |e: String| format!("MountVolume.SetUp failed for volume {:?} : {e}", plan.volume);
    let (path, owned) = match &plan.backing {
        claims::Backing::HostPath(h) => (host_path(name, h).map_err(|e| set_up_failed(e.to_string()))?, true),
        claims::Backing::Local { path } => {
            if !Path::new(path).exists() {
                return Err(format!(
                    "MountVolume.NewMounter initialization failed for volume {:?} : path {path:?} does not exist",
                    plan.volume
                ));
            }
            (PathBuf::from(path), true)
        }
        claims::Backing::Nfs { server, path } => {
            nfs::mount(server, path, dir, plan.read_only, &plan.mount_options)
                .await
                .map_err(set_up_failed)?;
            // Ownership of NFS files is the server's (root squash); Kubernetes' nfs plugin leaves it.
            (dir.to_path_buf(), false)
        }
    };
    let security = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    if let Some(gid) = security.and_then(|s| s.fs_group)
        && owned
        && !plan.read_only
    {
        let policy = security.and_then(|s| s.fs_group_change_policy.clone());
        let marker = pod_dir.join("volume-ownership").join(name);
        ownership::apply_once(marker, path.clone(), gid, policy)
            .await
            .map_err(|e| set_up_failed(format!("applying fsGroup {gid}: {e}")))?;
    }
    Ok(HostVolume { path, read_only: plan.read_only })
}

/// A hostPath on the node, checked or created as its `type` says.
fn host_path(name: &str, h: &HostPathVolumeSource) -> Result<PathBuf> {
    let p = PathBuf::from(&h.path);
    match h.r#type.as_deref().unwrap_or("") {
        "DirectoryOrCreate" => {
            std::fs::create_dir_all(&p).map_err(io(name, &p))?;
        }
        "FileOrCreate" => {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(io(name, parent))?;
            }
            std::fs::OpenOptions::new().create(true).append(true).open(&p).map_err(io(name, &p))?;
        }
        "Directory" if !p.is_dir() => {
            return Err(VolumeError::Config(format!(
                "hostPath type check failed: {} is not a directory",
                h.path
            )));
        }
        "File" if !p.is_file() => {
            return Err(VolumeError::Config(format!("hostPath type check failed: {} is not a file", h.path)));
        }
        "Socket" | "CharDevice" | "BlockDevice" if !p.exists() => {
            return Err(VolumeError::Config(format!(
                "hostPath type check failed: {} does not exist",
                h.path
            )));
        }
        _ => {}
    }
    Ok(p)
}

async fn prepare_one<S: Sources>(
    pod: &Pod,
    ns: &str,
    v: &Volume,
    dir: &Path,
    sources: &S,
) -> Result<PathBuf> {
    let name = v.name.as_str();
    if let Some(e) = &v.empty_dir {
        std::fs::create_dir_all(dir).map_err(io(name, dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).map_err(io(name, dir))?;
        if e.medium == "Memory" && !is_mountpoint(dir) {
            mount_tmpfs(dir).map_err(io(name, dir))?;
        }
        return Ok(dir.to_path_buf());
    }
    if let Some(h) = &v.host_path {
        return host_path(name, h);
    }
    let mut files: Projected = Vec::new();
    if let Some(c) = &v.config_map {
        let mode = c.default_mode.unwrap_or(0o644) as u32;
        if let Some(data) = config_map_of(sources, ns, &c.name, c.optional).await? {
            project(&format!("configmap {:?}", c.name), &data, &c.items, mode, &mut files)?;
        }
    } else if let Some(s) = &v.secret {
        let mode = s.default_mode.unwrap_or(0o644) as u32;
        if let Some(data) = secret_of(sources, ns, &s.secret_name, s.optional).await? {
            project(&format!("secret {:?}", s.secret_name), &data, &s.items, mode, &mut files)?;
        }
    } else if let Some(d) = &v.downward_api {
        project_downward(pod, &d.items, d.default_mode.unwrap_or(0o644) as u32, &mut files)?;
    } else if let Some(p) = &v.projected {
        let mode = p.default_mode.unwrap_or(0o644) as u32;
        for src in &p.sources {
            if let Some(c) = &src.config_map
                && let Some(data) = config_map_of(sources, ns, &c.name, c.optional).await?
            {
                project(&format!("configmap {:?}", c.name), &data, &c.items, mode, &mut files)?;
            }
            if let Some(s) = &src.secret
                && let Some(data) = secret_of(sources, ns, &s.name, s.optional).await?
            {
                project(&format!("secret {:?}", s.name), &data, &s.items, mode, &mut files)?;
            }
            if let Some(d) = &src.downward_api {
                project_downward(pod, &d.items, mode, &mut files)?;
            }
            if let Some(t) = &src.service_account_token {
                let account = service_account_of(pod);
                let token = sources.service_account_token(ns, &account, &token_request(pod, t)).await?;
                files.push((t.path.clone(), token.into_bytes(), mode));
            }
        }
    } else {
        return Err(VolumeError::Config(format!(
            "volume {name}: this volume type is not supported by this kubelet"
        )));
    }
    write_atomic(name, dir, &files)?;
    Ok(dir.to_path_buf())
}

/// The pod's ServiceAccount (`default` if it names none, as the api-server defaults it).
fn service_account_of(pod: &Pod) -> String {
    let spec = pod.spec.as_ref();
    let name = spec.map(|s| s.service_account_name.as_str()).filter(|n| !n.is_empty());
    let name = name.or_else(|| spec.map(|s| s.service_account.as_str()).filter(|n| !n.is_empty()));
    name.unwrap_or("default").to_string()
}

/// The TokenRequest of a projection, as Kubernetes' kubelet asks it: bound to the pod, for the
/// projection's audience (none: the api-server's own) and lifetime (default an hour). The file's mode
/// stays the volume's (Kubernetes uses 0600 only with fsGroup, which this kubelet does not apply).
pub fn token_request(pod: &Pod, t: &ServiceAccountTokenProjection) -> TokenRequest {
    let m = meta(pod);
    TokenRequest {
        api_version: "authentication.k8s.io/v1".into(),
        kind: "TokenRequest".into(),
        spec: Some(TokenRequestSpec {
            audiences: if t.audience.is_empty() { vec![] } else { vec![t.audience.clone()] },
            expiration_seconds: Some(t.expiration_seconds.unwrap_or(3600)),
            bound_object_ref: Some(BoundObjectReference {
                kind: "Pod".into(),
                api_version: "v1".into(),
                name: m.name,
                uid: m.uid,
            }),
        }),
        ..Default::default()
    }
}

pub(crate) fn is_mountpoint(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(dir), dir.parent().map(std::fs::metadata)) {
        (Ok(m), Some(Ok(p))) => m.dev() != p.dev(),
        _ => false,
    }
}

fn mount_tmpfs(dir: &Path) -> std::io::Result<()> {
    mount(Some("tmpfs"), dir, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, None::<&str>)?;
    Ok(())
}

/// Unmounts the pod's mounted volumes (tmpfs, NFS) and removes the pod's directory — never while a
/// volume is still mounted, whose files are not the pod's to remove.
pub fn cleanup(pod_dir: &Path) -> std::io::Result<()> {
    if let Ok(entries) = std::fs::read_dir(pod_dir.join("volumes")) {
        for e in entries.flatten() {
            if is_mountpoint(&e.path()) {
                let _ = umount2(&e.path(), MntFlags::MNT_DETACH);
                if is_mountpoint(&e.path()) {
                    return Err(std::io::Error::other(format!("{} is still mounted", e.path().display())));
                }
            }
        }
    }
    match std::fs::remove_dir_all(pod_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The container's bind mounts for its volumeMounts: `subPath`, or `subPathExpr` with `$(VAR)` expanded
/// from the container's environment `env`; read-only when the mount or the volume is.
pub fn mounts(c: &Container, volumes: &HostVolumes, env: &[(String, String)]) -> Result<Vec<BindMount>> {
    let mut out = Vec::new();
    for m in &c.volume_mounts {
        let volume = volumes
            .get(&m.name)
            .ok_or_else(|| VolumeError::Config(format!("volumeMounts: volume {:?} not found", m.name)))?;
        let sub = if m.sub_path_expr.is_empty() {
            m.sub_path.clone()
        } else {
            crate::spec::expand(&m.sub_path_expr, env)
        };
        let host = if sub.is_empty() { volume.path.clone() } else { sub_path(&m.name, &volume.path, &sub)? };
        out.push(BindMount {
            host_path: host.display().to_string(),
            container_path: m.mount_path.clone(),
            read_only: m.read_only || volume.read_only,
        });
    }
    Ok(out)
}

/// The directory `sub` of a volume (made if missing), which must stay inside the volume once symbolic
/// links are resolved: a container must not reach the host through a link it made in its volume.
fn sub_path(name: &str, root: &Path, sub: &str) -> Result<PathBuf> {
    if sub.starts_with('/') || sub.split('/').any(|c| c == "..") {
        return Err(VolumeError::Config(format!("subPath {sub:?} must be relative without '..'")));
    }
    let p = root.join(sub);
    if std::fs::symlink_metadata(&p).is_err() {
        std::fs::create_dir_all(&p).map_err(io(name, &p))?;
    }
    let real_root = root.canonicalize().map_err(io(name, root))?;
    let real = p.canonicalize().map_err(io(name, &p))?;
    if !real.starts_with(&real_root) {
        return Err(VolumeError::Config(format!(
            "subpath {:?} not within volume path {:?}",
            real.display().to_string(),
            real_root.display().to_string()
        )));
    }
    Ok(real)
}

/// The Service pods reach the api-server through; its variables are in every container.
pub const MASTER_SERVICE: (&str, &str) = ("default", "kubernetes");

/// The variables Kubernetes' kubelet gives containers for a Service (`envvars.FromServices`):
/// `<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT` (the first port), `<NAME>_SERVICE_PORT_<PORT NAME>`,
/// and Docker's link variables `<NAME>_PORT`, `<NAME>_PORT_<port>_<PROTO>{,_PROTO,_PORT,_ADDR}`.
/// None for a Service without a cluster IP.
pub fn service_env(svc: &Service) -> Vec<(String, String)> {
    let name = |s: &str| s.replace('-', "_").to_uppercase();
    let spec = svc.spec.clone().unwrap_or_default();
    let ip = spec.cluster_ip.as_str();
    if ip.is_empty() || ip == "None" || spec.ports.is_empty() {
        return vec![];
    }
    let prefix = name(&meta_of(svc).name);
    let mut out = vec![
        (format!("{prefix}_SERVICE_HOST"), ip.to_string()),
        (format!("{prefix}_SERVICE_PORT"), spec.ports[0].port.to_string()),
    ];
    for p in spec.ports.iter().filter(|p| !p.name.is_empty()) {
        out.push((format!("{prefix}_SERVICE_PORT_{}", name(&p.name)), p.port.to_string()));
    }
    let host = |port: i32| if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") };
    for (i, p) in spec.ports.iter().enumerate() {
        let protocol = if p.protocol.is_empty() { "TCP" } else { p.protocol.as_str() };
        let url = format!("{}://{}", protocol.to_lowercase(), host(p.port));
        if i == 0 {
            out.push((format!("{prefix}_PORT"), url.clone()));
        }
        let pp = format!("{prefix}_PORT_{}_{}", p.port, protocol.to_uppercase());
        out.push((pp.clone(), url));
        out.push((format!("{pp}_PROTO"), protocol.to_lowercase()));
        out.push((format!("{pp}_PORT"), p.port.to_string()));
        out.push((format!("{pp}_ADDR"), ip.to_string()));
    }
    out
}

fn meta_of(svc: &Service) -> navarch_api::v1::ObjectMeta {
    svc.metadata.clone().unwrap_or_default()
}

/// The container's environment: envFrom first, then env (later wins), `$(VAR)` expanded (from those
/// and the [`MASTER_SERVICE`]'s variables), then the Service's variables the container did not set.
pub async fn env<S: Sources>(pod: &Pod, c: &Container, sources: &S) -> Result<Vec<(String, String)>> {
    let ns = meta(pod).namespace;
    let services = match sources.service(MASTER_SERVICE.0, MASTER_SERVICE.1).await? {
        Some(svc) => service_env(&svc),
        None => vec![],
    };
    let mut out: Vec<(String, String)> = Vec::new();
    let set = |out: &mut Vec<(String, String)>, k: String, v: String| {
        out.retain(|(key, _)| *key != k);
        out.push((k, v));
    };
    for from in &c.env_from {
        let mut data = BTreeMap::new();
        if let Some(r) = &from.config_map_ref {
            data.extend(config_map_of(sources, &ns, &r.name, r.optional).await?.unwrap_or_default());
        }
        if let Some(r) = &from.secret_ref {
            data.extend(secret_of(sources, &ns, &r.name, r.optional).await?.unwrap_or_default());
        }
        for (k, v) in data {
            set(&mut out, format!("{}{k}", from.prefix), String::from_utf8_lossy(&v).to_string());
        }
    }
    // The value of `key` in an object's data; None when the object or key is optional and missing.
    let key_of = |data: Option<BTreeMap<String, Vec<u8>>>,
                  key: &str,
                  optional: Option<bool>,
                  kind: &str,
                  name: &str| {
        match data.as_ref().map(|d| d.get(key)) {
            Some(Some(v)) => Ok(Some(String::from_utf8_lossy(v).to_string())),
            _ if optional == Some(true) => Ok(None),
            _ => Err(VolumeError::Config(format!("couldn't find key {key} in {kind} {ns}/{name}"))),
        }
    };
    for e in &c.env {
        let value = match &e.value_from {
            None => {
                let known: Vec<(String, String)> = services.iter().chain(&out).cloned().collect();
                crate::spec::expand(&e.value, &known)
            }
            Some(src) => {
                if let Some(f) = &src.field_ref {
                    field_value(pod, f)?
                } else if let Some(r) = &src.config_map_key_ref {
                    let data = config_map_of(sources, &ns, &r.name, r.optional).await?;
                    match key_of(data, &r.key, r.optional, "ConfigMap", &r.name)? {
                        Some(v) => v,
                        None => continue,
                    }
                } else if let Some(r) = &src.secret_key_ref {
                    let data = secret_of(sources, &ns, &r.name, r.optional).await?;
                    match key_of(data, &r.key, r.optional, "Secret", &r.name)? {
                        Some(v) => v,
                        None => continue,
                    }
                } else if let Some(r) = &src.resource_field_ref {
                    resource_field(c, &r.resource)?
                } else {
                    return Err(VolumeError::Config(format!("env {}: unsupported valueFrom", e.name)));
                }
            }
        };
        set(&mut out, e.name.clone(), value);
    }
    for (k, v) in services {
        if !out.iter().any(|(key, _)| *key == k) {
            out.push((k, v));
        }
    }
    Ok(out)
}

fn resource_field(c: &Container, resource: &str) -> Result<String> {
    let res = c.resources.clone().unwrap_or_default();
    let (which, name) = resource
        .split_once('.')
        .ok_or_else(|| VolumeError::Config(format!("resourceFieldRef {resource:?}: unsupported")))?;
    let list = if which == "limits" { &res.limits } else { &res.requests };
    let Some(q) = list.get(name) else { return Ok("0".into()) };
    let a = q.amount().map_err(|e| VolumeError::Config(format!("resources.{which}.{name}: {e}")))?;
    // cpu in whole cores rounded up (divisor 1), memory in bytes.
    Ok(if name == "cpu" { ((a.milli_value() + 999) / 1000).to_string() } else { a.value().to_string() })
}

#[cfg(test)]
mod tests;
