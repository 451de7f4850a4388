//! Pod networking: one network namespace per pod (a bind-mounted nsfs file, so it outlives every
//! process in it), wired up by the CNI plugins (bridge + host-local by default, from the config the
//! kubelet writes from the node's pod CIDR). The namespace calls sit behind [`Namespaces`] and the
//! plugin calls behind [`Cni`] so the pod logic can be tested without root.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network namespace {path}: {what}: {source}")]
    Namespace { path: PathBuf, what: &'static str, source: std::io::Error },
    #[error("CNI plugin {plugin} {command} for {id}: {message}")]
    Plugin { plugin: String, command: &'static str, id: String, message: String },
    #[error("CNI result for {id}: {reason}")]
    Result { id: String, reason: String },
}

pub type Result<T> = std::result::Result<T, NetworkError>;

/// Creating and removing network namespaces.
pub trait Namespaces: Send + Sync {
    /// Creates a new network namespace pinned at `path` (nothing happens if it exists).
    fn create(&self, path: &Path) -> Result<()>;
    /// Unpins and removes it (nothing happens if it is gone).
    fn remove(&self, path: &Path) -> Result<()>;
}

/// The kernel: unshare(CLONE_NEWNET) on a throwaway thread and bind-mount its namespace.
pub struct KernelNamespaces;

fn ns_err(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> NetworkError {
    let path = path.to_path_buf();
    move |source| NetworkError::Namespace { path, what, source }
}

fn is_mountpoint_of_nsfs(path: &Path) -> bool {
    // A pinned namespace file is an nsfs inode; a plain empty file is not.
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), path.parent().map(std::fs::metadata)) {
        (Ok(m), Some(Ok(parent))) => m.dev() != parent.dev(),
        _ => false,
    }
}

impl Namespaces for KernelNamespaces {
    fn create(&self, path: &Path) -> Result<()> {
        if is_mountpoint_of_nsfs(path) {
            return Ok(());
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(ns_err(path, "creating directory"))?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(ns_err(path, "creating pin file"))?;
        let target = path.to_path_buf();
        // unshare(2) moves only the calling thread: this short-lived one, never a runtime's.
        let result = std::thread::spawn(move || -> std::io::Result<()> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            crate::sys::loopback_up()?;
            mount(
                Some("/proc/thread-self/ns/net"),
                target.as_path(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("namespace thread panicked")));
        if let Err(e) = result {
            let _ = std::fs::remove_file(path);
            return Err(ns_err(path, "unshare and bind mount")(e));
        }
        Ok(())
    }

    fn remove(&self, path: &Path) -> Result<()> {
        if !path.exists() {
            return Ok(());
        }
        // EINVAL: not (or no longer) a mount point.
        if let Err(e) = umount2(path, MntFlags::MNT_DETACH)
            && e != Errno::EINVAL
        {
            return Err(ns_err(path, "unmounting")(e.into()));
        }
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ns_err(path, "removing pin file")(e)),
        }
    }
}

/// What ADD gave a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    /// The pod's IPv4 address (no prefix).
    pub ip: String,
    /// The full CNI result, kept for DEL.
    pub result: Value,
}

/// Running the CNI plugin chain. `ports` are the pod's hostPort mappings (CNI `portMappings`).
pub trait Cni: Send + Sync {
    fn add(&self, id: &str, netns: &Path, ports: &Value) -> impl Future<Output = Result<Attachment>> + Send;
    fn del(
        &self,
        id: &str,
        netns: &Path,
        ports: &Value,
        prev: Option<&Value>,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// The plugin chain from a conflist, run as executables per the CNI spec.
pub struct CniPlugins {
    pub bin_dir: PathBuf,
    pub conflist: Value,
    pub ifname: String,
}

/// The conflist the kubelet writes from the node's pod CIDR: a bridge with the gateway on the host,
/// host-local addresses, hairpin for Services, no masquerade (traffic stays inside the cluster).
pub fn default_conflist(bridge: &str, pod_cidr: &str, data_dir: &Path) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": "navarch",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": pod_cidr }]],
                    "routes": [{ "dst": "0.0.0.0/0" }],
                    "dataDir": data_dir.display().to_string(),
                }
            },
            { "type": "portmap", "capabilities": { "portMappings": true } }
        ]
    })
}

impl CniPlugins {
    async fn exec(
        &self,
        plugin: &Value,
        command: &'static str,
        id: &str,
        netns: &Path,
        ports: &Value,
        prev: Option<&Value>,
    ) -> Result<Value> {
        let ty = plugin.get("type").and_then(|t| t.as_str()).unwrap_or_default().to_string();
        let perr =
            |message: String| NetworkError::Plugin { plugin: ty.clone(), command, id: id.into(), message };
        let mut conf = plugin.clone();
        conf["name"] = self.conflist["name"].clone();
        conf["cniVersion"] = self.conflist["cniVersion"].clone();
        if let Some(p) = prev {
            conf["prevResult"] = p.clone();
        }
        if conf.get("capabilities").is_some() {
            conf["runtimeConfig"] = json!({ "portMappings": ports });
        }
        let exe = self.bin_dir.join(&ty);
        let mut child = tokio::process::Command::new(&exe)
            .env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", &self.ifname)
            .env("CNI_PATH", &self.bin_dir)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| perr(format!("running {}: {e}", exe.display())))?;
        {
            use tokio::io::AsyncWriteExt;
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin
                .write_all(conf.to_string().as_bytes())
                .await
                .map_err(|e| perr(format!("writing config: {e}")))?;
        }
        let out = child.wait_with_output().await.map_err(|e| perr(format!("waiting: {e}")))?;
        let stdout: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if !out.status.success() {
            let msg = stdout
                .get("msg")
                .and_then(|m| m.as_str())
                .map(|m| {
                    let details = stdout.get("details").and_then(|d| d.as_str()).unwrap_or("");
                    if details.is_empty() { m.to_string() } else { format!("{m}: {details}") }
                })
                .unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).trim().to_string());
            return Err(perr(msg));
        }
        Ok(stdout)
    }

    fn plugins(&self) -> Vec<Value> {
        self.conflist.get("plugins").and_then(|p| p.as_array()).cloned().unwrap_or_default()
    }
}

/// The pod's hostPort mappings in CNI's `portMappings` form.
pub fn port_mappings(pod: &navarch_api::v1::Pod) -> Value {
    let mut out = Vec::new();
    for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        for p in &c.ports {
            if p.host_port > 0 {
                let protocol =
                    if p.protocol.is_empty() { "tcp".to_string() } else { p.protocol.to_lowercase() };
                out.push(json!({
                    "hostPort": p.host_port, "containerPort": p.container_port,
                    "protocol": protocol, "hostIP": p.host_ip,
                }));
            }
        }
    }
    Value::Array(out)
}

/// The first IPv4 address of a CNI result.
pub fn result_ip(result: &Value) -> Option<String> {
    result.get("ips")?.as_array()?.iter().find_map(|ip| {
        let a = ip.get("address")?.as_str()?;
        let addr = a.split('/').next()?;
        addr.contains('.').then(|| addr.to_string())
    })
}

impl Cni for CniPlugins {
    async fn add(&self, id: &str, netns: &Path, ports: &Value) -> Result<Attachment> {
        let mut prev: Option<Value> = None;
        for plugin in self.plugins() {
            let r = self.exec(&plugin, "ADD", id, netns, ports, prev.as_ref()).await?;
            prev = Some(r);
        }
        let result = prev.unwrap_or(Value::Null);
        let ip = result_ip(&result).ok_or_else(|| NetworkError::Result {
            id: id.into(),
            reason: format!("no IPv4 address in {result}"),
        })?;
        Ok(Attachment { ip, result })
    }

    async fn del(&self, id: &str, netns: &Path, ports: &Value, prev: Option<&Value>) -> Result<()> {
        let mut first_err = None;
        for plugin in self.plugins().iter().rev() {
            if let Err(e) = self.exec(plugin, "DEL", id, netns, ports, prev).await {
                tracing::warn!(id, error = %e, "CNI DEL");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_from_result() {
        let r = json!({"ips": [{"address": "fd00::5/64"}, {"address": "10.244.0.5/24", "gateway": "10.244.0.1"}]});
        assert_eq!(result_ip(&r).as_deref(), Some("10.244.0.5"));
        assert_eq!(result_ip(&json!({})), None);
    }

    #[test]
    fn conflist_uses_the_pod_cidr() {
        let c = default_conflist("nv0", "10.244.1.0/24", Path::new("/var/lib/x"));
        assert_eq!(c["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.244.1.0/24");
        assert_eq!(c["plugins"][0]["ipMasq"], false);
    }
}
