//! A pod's volumes on the host and its containers' environment: emptyDir (a directory, or tmpfs
//! for `medium: Memory`), hostPath, configMap, secret, downwardAPI and projected (configMaps,
//! secrets, the downward API and ServiceAccount tokens bound to the pod — the `kube-api-access-*`
//! volume — their files written atomically through a `..data` symlink swap, as Kubernetes does, and
//! rewritten when the objects change or a token is renewed), and env from values, configMaps,
//! secrets and the downward API, plus the `kubernetes` Service's variables (`KUBERNETES_SERVICE_HOST`,
//! `KUBERNETES_SERVICE_PORT`, the docker-link `KUBERNETES_PORT*`) that in-cluster clients read.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use navarch_api::v1::{
    BoundObjectReference, ConfigMap, Container, KeyToPath, ObjectFieldSelector, Pod, Secret, Service,
    ServiceAccountTokenProjection, TokenRequest, TokenRequestSpec, Volume,
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
}

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

/// Materialises every volume of the pod under `pod_dir`; returns volume name → host path.
pub async fn prepare<S: Sources>(pod: &Pod, pod_dir: &Path, sources: &S) -> Result<HashMap<String, PathBuf>> {
    let ns = meta(pod).namespace;
    let mut out = HashMap::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter()) {
        let dir = volume_dir(pod_dir, &v.name);
        let path = prepare_one(pod, &ns, v, &dir, sources).await?;
        out.insert(v.name.clone(), path);
    }
    Ok(out)
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
                return Err(VolumeError::Config(format!(
                    "hostPath type check failed: {} is not a file",
                    h.path
                )));
            }
            "Socket" | "CharDevice" | "BlockDevice" if !p.exists() => {
                return Err(VolumeError::Config(format!(
                    "hostPath type check failed: {} does not exist",
                    h.path
                )));
            }
            _ => {}
        }
        return Ok(p);
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

fn is_mountpoint(dir: &Path) -> bool {
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

/// Unmounts tmpfs volumes and removes the pod's directory.
pub fn cleanup(pod_dir: &Path) -> std::io::Result<()> {
    if let Ok(entries) = std::fs::read_dir(pod_dir.join("volumes")) {
        for e in entries.flatten() {
            if is_mountpoint(&e.path()) {
                let _ = umount2(&e.path(), MntFlags::MNT_DETACH);
            }
        }
    }
    match std::fs::remove_dir_all(pod_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The container's bind mounts for its volumeMounts.
pub fn mounts(c: &Container, volumes: &HashMap<String, PathBuf>) -> Result<Vec<BindMount>> {
    let mut out = Vec::new();
    for m in &c.volume_mounts {
        let host = volumes
            .get(&m.name)
            .ok_or_else(|| VolumeError::Config(format!("volumeMounts: volume {:?} not found", m.name)))?;
        let host = if m.sub_path.is_empty() {
            host.clone()
        } else {
            if m.sub_path.starts_with('/') || m.sub_path.split('/').any(|c| c == "..") {
                return Err(VolumeError::Config(format!(
                    "subPath {:?} must be relative without '..'",
                    m.sub_path
                )));
            }
            let p = host.join(&m.sub_path);
            if !p.exists() {
                std::fs::create_dir_all(&p).map_err(io(&m.name, &p))?;
            }
            p
        };
        out.push(BindMount {
            host_path: host.display().to_string(),
            container_path: m.mount_path.clone(),
            read_only: m.read_only,
        });
    }
    Ok(out)
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
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Fake {
        cms: Mutex<HashMap<String, ConfigMap>>,
        secrets: HashMap<String, Secret>,
        services: HashMap<String, Service>,
        /// The token requests asked, as (namespace, account, request).
        tokens: Mutex<Vec<(String, String, TokenRequest)>>,
        token: Mutex<String>,
    }

    impl Sources for Fake {
        async fn config_map(&self, _: &str, name: &str) -> Result<Option<ConfigMap>> {
            Ok(self.cms.lock().unwrap().get(name).cloned())
        }
        async fn secret(&self, _: &str, name: &str) -> Result<Option<Secret>> {
            Ok(self.secrets.get(name).cloned())
        }
        async fn service(&self, ns: &str, name: &str) -> Result<Option<Service>> {
            Ok(self.services.get(&format!("{ns}/{name}")).cloned())
        }
        async fn service_account_token(
            &self,
            ns: &str,
            name: &str,
            request: &TokenRequest,
        ) -> Result<String> {
            self.tokens.lock().unwrap().push((ns.into(), name.into(), request.clone()));
            Ok(self.token.lock().unwrap().clone())
        }
    }

    fn fake() -> Fake {
        let cm: ConfigMap = serde_yaml::from_str("{metadata: {name: cfg}, data: {a: '1', b: two}}").unwrap();
        let s: Secret = serde_yaml::from_str("{metadata: {name: sec}, data: {pw: aHVudGVyMg==}}").unwrap();
        Fake {
            cms: Mutex::new([("cfg".into(), cm)].into()),
            secrets: [("sec".into(), s)].into(),
            ..Default::default()
        }
    }

    fn pod(y: &str) -> Pod {
        serde_yaml::from_str(y).unwrap()
    }

    #[tokio::test]
    async fn env_from_everywhere() {
        let p = pod(
            "{metadata: {name: web, namespace: ns, labels: {app: x}}, status: {podIP: 10.0.0.9}, spec: {containers: [{name: c, envFrom: [{configMapRef: {name: cfg}, prefix: P_}], env: [{name: A, value: a}, {name: B, value: '$(A)-$(P_a)'}, {name: PW, valueFrom: {secretKeyRef: {name: sec, key: pw}}}, {name: N, valueFrom: {fieldRef: {fieldPath: metadata.name}}}, {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}, {name: L, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['app']\"}}}]}]}}",
        );
        let c = &p.spec.as_ref().unwrap().containers[0];
        let env = env(&p, c, &fake()).await.unwrap();
        let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("P_a"), Some("1"));
        assert_eq!(get("B"), Some("a-1"));
        assert_eq!(get("PW"), Some("hunter2"));
        assert_eq!(get("N"), Some("web"));
        assert_eq!(get("IP"), Some("10.0.0.9"));
        assert_eq!(get("L"), Some("x"));
    }

    #[tokio::test]
    async fn missing_key_is_a_config_error() {
        let p = pod(
            "{metadata: {namespace: ns}, spec: {containers: [{name: c, env: [{name: X, valueFrom: {configMapKeyRef: {name: cfg, key: nope}}}]}]}}",
        );
        let c = &p.spec.as_ref().unwrap().containers[0];
        let err = env(&p, c, &fake()).await.unwrap_err();
        assert_eq!(err.to_string(), "couldn't find key nope in ConfigMap ns/cfg");
    }

    #[tokio::test]
    async fn config_map_volume_updates_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = pod(
            "{metadata: {namespace: ns}, spec: {containers: [], volumes: [{name: v, configMap: {name: cfg, defaultMode: 0600}}, {name: s, secret: {secretName: sec, items: [{key: pw, path: sub/password}]}}, {name: e, emptyDir: {}}]}}",
        );
        let f = fake();
        let vols = prepare(&p, dir.path(), &f).await.unwrap();
        let v = &vols["v"];
        assert_eq!(std::fs::read_to_string(v.join("a")).unwrap(), "1");
        assert_eq!(std::fs::metadata(v.join("b")).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(vols["s"].join("sub/password")).unwrap(), "hunter2");
        assert!(vols["e"].is_dir());
        let first = std::fs::read_link(v.join("..data")).unwrap();
        // Unchanged: nothing rewritten.
        prepare(&p, dir.path(), &f).await.unwrap();
        assert_eq!(std::fs::read_link(v.join("..data")).unwrap(), first);
        // Changed: new content, key removed, old directory gone.
        f.cms.lock().unwrap().get_mut("cfg").unwrap().data = [("a".to_string(), "9".to_string())].into();
        prepare(&p, dir.path(), &f).await.unwrap();
        assert_eq!(std::fs::read_to_string(v.join("a")).unwrap(), "9");
        assert!(!v.join("b").exists());
        assert!(!v.join(&first).exists());
    }

    #[tokio::test]
    async fn missing_config_map_unless_optional() {
        let dir = tempfile::tempdir().unwrap();
        let p = pod("{spec: {containers: [], volumes: [{name: v, configMap: {name: nope}}]}}");
        assert_eq!(
            prepare(&p, dir.path(), &fake()).await.unwrap_err().to_string(),
            "configmap \"nope\" not found"
        );
        let p =
            pod("{spec: {containers: [], volumes: [{name: v, configMap: {name: nope, optional: true}}]}}");
        prepare(&p, dir.path(), &fake()).await.unwrap();
    }

    /// The volume the api-server's ServiceAccount admission adds.
    const KUBE_API_ACCESS: &str = "{name: kube-api-access-x2b4c, projected: {defaultMode: 420, sources: [\
        {serviceAccountToken: {expirationSeconds: 3607, path: token}}, \
        {configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}}, \
        {downwardAPI: {items: [{path: namespace, fieldRef: {apiVersion: v1, fieldPath: metadata.namespace}}]}}]}}";

    #[tokio::test]
    async fn kube_api_access_has_a_bound_token_the_ca_and_the_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let p = pod(&format!(
            "{{metadata: {{name: web, namespace: ns, uid: u-1}}, spec: {{serviceAccountName: builder, containers: [], volumes: [{KUBE_API_ACCESS}]}}}}"
        ));
        let f = fake();
        let ca: ConfigMap =
            serde_yaml::from_str("{metadata: {name: kube-root-ca.crt}, data: {ca.crt: PEM}}").unwrap();
        f.cms.lock().unwrap().insert("kube-root-ca.crt".into(), ca);
        *f.token.lock().unwrap() = "jwt-1".into();
        let vols = prepare(&p, dir.path(), &f).await.unwrap();
        let v = &vols["kube-api-access-x2b4c"];
        assert_eq!(std::fs::read_to_string(v.join("token")).unwrap(), "jwt-1");
        assert_eq!(std::fs::read_to_string(v.join("ca.crt")).unwrap(), "PEM");
        assert_eq!(std::fs::read_to_string(v.join("namespace")).unwrap(), "ns");
        assert_eq!(std::fs::metadata(v.join("token")).unwrap().permissions().mode() & 0o777, 0o644);
        let (ns, account, req) = f.tokens.lock().unwrap()[0].clone();
        assert_eq!((ns.as_str(), account.as_str()), ("ns", "builder"));
        let expected: TokenRequest = serde_yaml::from_str(
            "{apiVersion: authentication.k8s.io/v1, kind: TokenRequest, spec: {expirationSeconds: 3607, \
             boundObjectRef: {kind: Pod, apiVersion: v1, name: web, uid: u-1}}}",
        )
        .unwrap();
        assert_eq!(req, expected);
        // A renewed token replaces the file atomically.
        let first = std::fs::read_link(v.join("..data")).unwrap();
        *f.token.lock().unwrap() = "jwt-2".into();
        prepare(&p, dir.path(), &f).await.unwrap();
        assert_eq!(std::fs::read_to_string(v.join("token")).unwrap(), "jwt-2");
        assert_ne!(std::fs::read_link(v.join("..data")).unwrap(), first);
        // Without the CA ConfigMap the volume cannot be made (as in Kubernetes).
        f.cms.lock().unwrap().remove("kube-root-ca.crt");
        let e = prepare(&p, dir.path(), &f).await.unwrap_err();
        assert_eq!(e.to_string(), "configmap \"kube-root-ca.crt\" not found");
    }

    #[test]
    fn token_requests_ask_the_projections_audience_and_lifetime() {
        let p = pod("{metadata: {name: web, uid: u}, spec: {containers: []}}");
        let t: ServiceAccountTokenProjection = serde_yaml::from_str("{path: t, audience: vault}").unwrap();
        let spec = token_request(&p, &t).spec.unwrap();
        assert_eq!((spec.audiences, spec.expiration_seconds), (vec!["vault".to_string()], Some(3600)));
        assert_eq!(service_account_of(&p), "default");
    }

    #[tokio::test]
    async fn the_kubernetes_service_is_in_every_environment() {
        let svc: Service = serde_yaml::from_str(
            "{metadata: {name: kubernetes, namespace: default}, spec: {clusterIP: 10.96.0.1, ports: [{name: https, port: 443, protocol: TCP, targetPort: 6443}]}}",
        )
        .unwrap();
        let expected = [
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
            ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
            ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
            ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
            ("KUBERNETES_PORT_443_TCP_PORT", "443"),
            ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(service_env(&svc), expected);
        let mut f = fake();
        f.services.insert("default/kubernetes".into(), svc);
        let p = pod(
            "{metadata: {namespace: ns}, spec: {containers: [{name: c, env: [{name: API, value: 'https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)'}, {name: KUBERNETES_SERVICE_PORT, value: '8443'}]}]}}",
        );
        let env = env(&p, &p.spec.as_ref().unwrap().containers[0], &f).await.unwrap();
        let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("API"), Some("https://10.96.0.1:443"));
        assert_eq!(get("KUBERNETES_SERVICE_PORT"), Some("8443"), "the container's own value wins");
        assert_eq!(get("KUBERNETES_PORT_443_TCP_ADDR"), Some("10.96.0.1"));
        assert_eq!(env.iter().filter(|(k, _)| k == "KUBERNETES_SERVICE_PORT").count(), 1);
        // Headless or missing: nothing.
        let headless: Service =
            serde_yaml::from_str("{metadata: {name: h}, spec: {clusterIP: None, ports: [{port: 1}]}}")
                .unwrap();
        assert!(service_env(&headless).is_empty());
        let env = super::env(&p, &p.spec.as_ref().unwrap().containers[0], &fake()).await.unwrap();
        assert!(env.iter().all(|(k, _)| !k.starts_with("KUBERNETES_PORT")));
    }

    #[test]
    fn sub_paths_stay_inside() {
        let c: Container =
            serde_yaml::from_str("{name: c, volumeMounts: [{name: v, mountPath: /x, subPath: ../etc}]}")
                .unwrap();
        let vols = [("v".to_string(), PathBuf::from("/tmp/v"))].into();
        assert!(mounts(&c, &vols).is_err());
    }
}
