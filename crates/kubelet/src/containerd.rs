//! containerd through its native gRPC API: a thin, typed layer over the services the kubelet uses
//! (content, images, leases, snapshots, diff, containers, tasks, events), every call in one
//! containerd namespace and every error carrying the object it was about.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    ApplyRequest, CloseIoRequest, Container, CreateContainerRequest, CreateImageRequest,
    CreateRequest as CreateLeaseRequest, CreateTaskRequest, DeleteContainerRequest, DeleteProcessRequest,
    DeleteRequest as DeleteLeaseRequest, DeleteTaskRequest, ExecProcessRequest, GetContainerRequest,
    GetImageRequest, GetRequest as GetTaskRequest, Image, InfoRequest, KillRequest, ListContainersRequest,
    ListImagesRequest, ReadContentRequest, ResizePtyRequest, StartRequest, SubscribeRequest,
    UpdateContainerRequest, UpdateImageRequest, WaitRequest, WriteAction, WriteContentRequest,
};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Code, Request, Status};
use containerd_client::types::v1::Status as ProcessStatus;
use containerd_client::types::{Descriptor, Mount};
use futures::StreamExt;
use prost::Message;
use prost_types::Any;

/// The type URL containerd expects for an OCI runtime spec.
const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/// The type URL of an OCI process spec (for exec).
const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
pub const SNAPSHOTTER: &str = "overlayfs";
pub const RUNTIME: &str = "io.containerd.runc.v2";
/// Bytes per content write message.
const WRITE_CHUNK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("connecting to containerd at {path}: {source}")]
    Connect { path: String, source: containerd_client::tonic::transport::Error },
    #[error("containerd {op} {what}: {status}")]
    Call { op: &'static str, what: String, status: Box<Status> },
    #[error("containerd {op} {what}: {reason}")]
    Protocol { op: &'static str, what: String, reason: String },
}

impl RuntimeError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, RuntimeError::Call { status, .. } if status.code() == Code::NotFound)
    }
    pub fn is_already_exists(&self) -> bool {
        matches!(self, RuntimeError::Call { status, .. } if status.code() == Code::AlreadyExists)
    }
}

pub type Result<T> = std::result::Result<T, RuntimeError>;

fn call(op: &'static str, what: impl Into<String>) -> impl FnOnce(Status) -> RuntimeError {
    let what = what.into();
    move |status| RuntimeError::Call { op, what, status: Box::new(status) }
}

/// A task's state as containerd reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskState {
    /// No task (never started, or deleted).
    Absent,
    Created,
    Running {
        pid: u32,
    },
    Exited {
        code: u32,
        at: Option<SystemTime>,
    },
    Other(String),
}

/// A container record with its labels.
#[derive(Debug, Clone)]
pub struct ContainerRecord {
    pub id: String,
    pub labels: HashMap<String, String>,
    pub image: String,
    pub created_at: Option<SystemTime>,
}

/// Where a process's stdio goes (a task's or an exec'd one's): FIFO paths, empty for not connected;
/// with `terminal`, stdout carries the terminal and stderr is empty.
#[derive(Debug, Clone, Default)]
pub struct Stdio {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// A connection to containerd, bound to one namespace.
#[derive(Clone)]
pub struct Containerd {
    channel: Channel,
    namespace: String,
}

fn timestamp(t: Option<prost_types::Timestamp>) -> Option<SystemTime> {
    let t = t?;
    if t.seconds <= 0 {
        return None;
    }
    Some(SystemTime::UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanos.max(0) as u32))
}

impl Containerd {
    pub async fn connect(socket: &Path, namespace: &str) -> Result<Containerd> {
        let channel = containerd_client::connect(socket)
            .await
            .map_err(|source| RuntimeError::Connect { path: socket.display().to_string(), source })?;
        Ok(Containerd { channel, namespace: namespace.to_string() })
    }

    fn req<T>(&self, msg: T) -> Request<T> {
        self.req_leased(msg, None)
    }

    /// A request in this namespace, optionally under a lease (what it creates is kept from GC).
    fn req_leased<T>(&self, msg: T, lease: Option<&str>) -> Request<T> {
        let mut r = Request::new(msg);
        r.metadata_mut().insert("containerd-namespace", self.namespace.parse().expect("namespace is ascii"));
        if let Some(l) = lease {
            r.metadata_mut().insert("containerd-lease", l.parse().expect("lease id is ascii"));
        }
        r
    }

    // ---- leases ----

    /// A lease that keeps what is written under it from garbage collection until it is deleted
    /// (or expires after an hour, if the kubelet dies first).
    pub async fn create_lease(&self, id: &str) -> Result<()> {
        let expire = humantime::format_rfc3339(SystemTime::now() + Duration::from_secs(3600)).to_string();
        let labels = HashMap::from([("containerd.io/gc.expire".to_string(), expire)]);
        LeasesClient::new(self.channel.clone())
            .create(self.req(CreateLeaseRequest { id: id.into(), labels }))
            .await
            .map_err(call("create lease", id))?;
        Ok(())
    }

    pub async fn delete_lease(&self, id: &str) -> Result<()> {
        LeasesClient::new(self.channel.clone())
            .delete(self.req(DeleteLeaseRequest { id: id.into(), sync: false }))
            .await
            .map_err(call("delete lease", id))?;
        Ok(())
    }

    // ---- content ----

    pub async fn content_exists(&self, digest: &str) -> Result<bool> {
        match ContentClient::new(self.channel.clone())
            .info(self.req(InfoRequest { digest: digest.into() }))
            .await
        {
            Ok(_) => Ok(true),
            Err(s) if s.code() == Code::NotFound => Ok(false),
            Err(s) => Err(call("content info", digest)(s)),
        }
    }

    /// Writes a blob whose digest is known, with labels (GC references).
    pub async fn write_content(
        &self,
        lease: &str,
        digest: &str,
        data: Vec<u8>,
        labels: HashMap<String, String>,
    ) -> Result<()> {
        let total = data.len() as i64;
        let reference = format!("navarch-{digest}");
        let mut msgs = Vec::new();
        let mut offset = 0usize;
        while offset < data.len() {
            let end = (offset + WRITE_CHUNK).min(data.len());
            msgs.push(WriteContentRequest {
                action: WriteAction::Write as i32,
                r#ref: reference.clone(),
                total,
                offset: offset as i64,
                data: data[offset..end].to_vec(),
                ..Default::default()
            });
            offset = end;
        }
        msgs.push(WriteContentRequest {
            action: WriteAction::Commit as i32,
            r#ref: reference.clone(),
            total,
            expected: digest.into(),
            offset: data.len() as i64,
            labels,
            ..Default::default()
        });
        let stream = futures::stream::iter(msgs);
        let resp = ContentClient::new(self.channel.clone()).write(self.req_leased(stream, Some(lease))).await;
        let mut resp = match resp {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == Code::AlreadyExists => return Ok(()),
            Err(s) => return Err(call("write content", digest)(s)),
        };
        loop {
            match resp.message().await {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(s) if s.code() == Code::AlreadyExists => return Ok(()),
                Err(s) => return Err(call("write content", digest)(s)),
            }
        }
    }

    pub async fn read_content(&self, digest: &str) -> Result<Vec<u8>> {
        let mut stream = ContentClient::new(self.channel.clone())
            .read(self.req(ReadContentRequest { digest: digest.into(), offset: 0, size: 0 }))
            .await
            .map_err(call("read content", digest))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(chunk) = stream.message().await.map_err(call("read content", digest))? {
            out.extend_from_slice(&chunk.data);
        }
        Ok(out)
    }

    // ---- images ----

    pub async fn get_image(&self, name: &str) -> Result<Option<Image>> {
        match ImagesClient::new(self.channel.clone())
            .get(self.req(GetImageRequest { name: name.into() }))
            .await
        {
            Ok(r) => Ok(r.into_inner().image),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(call("get image", name)(s)),
        }
    }

    /// Every image record in the namespace.
    pub async fn list_images(&self) -> Result<Vec<Image>> {
        let r = ImagesClient::new(self.channel.clone())
            .list(self.req(ListImagesRequest { filters: vec![] }))
            .await
            .map_err(call("list images", ""))?;
        Ok(r.into_inner().images)
    }

    /// Creates or repoints the image record `name` at `target`.
    pub async fn put_image(&self, name: &str, target: Descriptor) -> Result<()> {
        let image = Image { name: name.into(), target: Some(target), ..Default::default() };
        let mut images = ImagesClient::new(self.channel.clone());
        match images
            .create(self.req(CreateImageRequest { image: Some(image.clone()), source_date_epoch: None }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::AlreadyExists => {
                images
                    .update(self.req(UpdateImageRequest {
                        image: Some(image),
                        update_mask: None,
                        source_date_epoch: None,
                    }))
                    .await
                    .map_err(call("update image", name))?;
                Ok(())
            }
            Err(s) => Err(call("create image", name)(s)),
        }
    }

    // ---- snapshots ----

    pub async fn snapshot_exists(&self, key: &str) -> Result<bool> {
        let r = SnapshotsClient::new(self.channel.clone())
            .stat(self.req(StatSnapshotRequest { snapshotter: SNAPSHOTTER.into(), key: key.into() }))
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(s) if s.code() == Code::NotFound => Ok(false),
            Err(s) => Err(call("stat snapshot", key)(s)),
        }
    }

    pub async fn prepare_snapshot(&self, key: &str, parent: &str, lease: Option<&str>) -> Result<Vec<Mount>> {
        let r = SnapshotsClient::new(self.channel.clone())
            .prepare(self.req_leased(
                PrepareSnapshotRequest {
                    snapshotter: SNAPSHOTTER.into(),
                    key: key.into(),
                    parent: parent.into(),
                    labels: HashMap::new(),
                },
                lease,
            ))
            .await
            .map_err(call("prepare snapshot", key))?;
        Ok(r.into_inner().mounts)
    }

    pub async fn snapshot_mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let r = SnapshotsClient::new(self.channel.clone())
            .mounts(self.req(MountsRequest { snapshotter: SNAPSHOTTER.into(), key: key.into() }))
            .await
            .map_err(call("snapshot mounts", key))?;
        Ok(r.into_inner().mounts)
    }

    pub async fn commit_snapshot(&self, name: &str, key: &str, lease: &str) -> Result<()> {
        SnapshotsClient::new(self.channel.clone())
            .commit(self.req_leased(
                CommitSnapshotRequest {
                    snapshotter: SNAPSHOTTER.into(),
                    name: name.into(),
                    key: key.into(),
                    labels: HashMap::new(),
                },
                Some(lease),
            ))
            .await
            .map_err(call("commit snapshot", name))?;
        Ok(())
    }

    pub async fn remove_snapshot(&self, key: &str) -> Result<()> {
        let r = SnapshotsClient::new(self.channel.clone())
            .remove(self.req(RemoveSnapshotRequest { snapshotter: SNAPSHOTTER.into(), key: key.into() }))
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(call("remove snapshot", key)(s)),
        }
    }

    /// Applies a layer blob onto mounts (containerd's differ unpacks it).
    pub async fn apply_layer(&self, layer: Descriptor, mounts: Vec<Mount>) -> Result<()> {
        let digest = layer.digest.clone();
        DiffClient::new(self.channel.clone())
            .apply(self.req(ApplyRequest {
                diff: Some(layer),
                mounts,
                payloads: HashMap::new(),
                sync_fs: false,
            }))
            .await
            .map_err(call("apply layer", digest))?;
        Ok(())
    }

    // ---- containers ----

    pub async fn create_container(
        &self,
        id: &str,
        image: &str,
        labels: HashMap<String, String>,
        spec_json: Vec<u8>,
    ) -> Result<()> {
        let container = Container {
            id: id.into(),
            labels,
            image: image.into(),
            runtime: Some(Runtime { name: RUNTIME.into(), options: None }),
            spec: Some(Any { type_url: SPEC_TYPE_URL.into(), value: spec_json }),
            snapshotter: SNAPSHOTTER.into(),
            snapshot_key: id.into(),
            ..Default::default()
        };
        ContainersClient::new(self.channel.clone())
            .create(self.req(CreateContainerRequest { container: Some(container) }))
            .await
            .map_err(call("create container", id))?;
        Ok(())
    }

    /// Containers whose labels match every `key==value` filter.
    pub async fn list_containers(&self, filters: &[(&str, &str)]) -> Result<Vec<ContainerRecord>> {
        let filter =
            filters.iter().map(|(k, v)| format!("labels.\"{k}\"=={v}")).collect::<Vec<_>>().join(",");
        let filters = if filter.is_empty() { vec![] } else { vec![filter] };
        let r = ContainersClient::new(self.channel.clone())
            .list(self.req(ListContainersRequest { filters }))
            .await
            .map_err(call("list containers", ""))?;
        Ok(r.into_inner()
            .containers
            .into_iter()
            .map(|c| ContainerRecord {
                id: c.id,
                labels: c.labels,
                image: c.image,
                created_at: timestamp(c.created_at),
            })
            .collect())
    }

    /// One container's record, if it exists.
    pub async fn get_container(&self, id: &str) -> Result<Option<ContainerRecord>> {
        match ContainersClient::new(self.channel.clone())
            .get(self.req(GetContainerRequest { id: id.into() }))
            .await
        {
            Ok(r) => Ok(r.into_inner().container.map(|c| ContainerRecord {
                id: c.id,
                labels: c.labels,
                image: c.image,
                created_at: timestamp(c.created_at),
            })),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(call("get container", id)(s)),
        }
    }

    /// containerd's version, for the node's info.
    pub async fn version(&self) -> Result<String> {
        let r = containerd_client::services::v1::version_client::VersionClient::new(self.channel.clone())
            .version(())
            .await
            .map_err(call("version", ""))?;
        Ok(format!("containerd://{}", r.into_inner().version))
    }

    /// The snapshotter's root directory (where images' layers and containers' writable layers are:
    /// the node's image filesystem), from the `root` its plugin exports; None if not exported.
    pub async fn snapshotter_root(&self) -> Result<Option<std::path::PathBuf>> {
        use containerd_client::services::v1::PluginsRequest;
        use containerd_client::services::v1::introspection_client::IntrospectionClient;
        let filter = format!("type==io.containerd.snapshotter.v1,id=={SNAPSHOTTER}");
        let r = IntrospectionClient::new(self.channel.clone())
            .plugins(PluginsRequest { filters: vec![filter] })
            .await
            .map_err(call("list plugins", SNAPSHOTTER))?;
        Ok(r.into_inner().plugins.into_iter().find_map(|p| p.exports.get("root").map(Into::into)))
    }

    /// Sets (adds or replaces) labels on a container, leaving the others.
    pub async fn set_labels(&self, id: &str, labels: HashMap<String, String>) -> Result<()> {
        let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
        let container = Container { id: id.into(), labels, ..Default::default() };
        ContainersClient::new(self.channel.clone())
            .update(self.req(UpdateContainerRequest {
                container: Some(container),
                update_mask: Some(prost_types::FieldMask { paths }),
            }))
            .await
            .map_err(call("update container labels", id))?;
        Ok(())
    }

    pub async fn delete_container(&self, id: &str) -> Result<()> {
        match ContainersClient::new(self.channel.clone())
            .delete(self.req(DeleteContainerRequest { id: id.into() }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(call("delete container", id)(s)),
        }
    }

    // ---- tasks ----

    /// Creates the task (runc create) with the container's snapshot as rootfs and its stdio on the
    /// given FIFOs, which the shim opens (and keeps open) itself.
    pub async fn create_task(&self, id: &str, io: &Stdio) -> Result<u32> {
        let rootfs = self.snapshot_mounts(id).await?;
        let r = TasksClient::new(self.channel.clone())
            .create(self.req(CreateTaskRequest {
                container_id: id.into(),
                rootfs,
                stdin: io.stdin.clone(),
                stdout: io.stdout.clone(),
                stderr: io.stderr.clone(),
                terminal: io.terminal,
                ..Default::default()
            }))
            .await
            .map_err(call("create task", id))?;
        Ok(r.into_inner().pid)
    }

    pub async fn start_task(&self, id: &str) -> Result<u32> {
        let r = TasksClient::new(self.channel.clone())
            .start(self.req(StartRequest { container_id: id.into(), exec_id: String::new() }))
            .await
            .map_err(call("start task", id))?;
        Ok(r.into_inner().pid)
    }

    pub async fn task_state(&self, id: &str) -> Result<TaskState> {
        let r = TasksClient::new(self.channel.clone())
            .get(self.req(GetTaskRequest { container_id: id.into(), exec_id: String::new() }))
            .await;
        let p = match r {
            Ok(r) => r.into_inner().process.unwrap_or_default(),
            Err(s) if s.code() == Code::NotFound => return Ok(TaskState::Absent),
            Err(s) => return Err(call("get task", id)(s)),
        };
        Ok(match ProcessStatus::try_from(p.status).unwrap_or(ProcessStatus::Unknown) {
            ProcessStatus::Created => TaskState::Created,
            ProcessStatus::Running => TaskState::Running { pid: p.pid },
            ProcessStatus::Stopped => TaskState::Exited { code: p.exit_status, at: timestamp(p.exited_at) },
            other => TaskState::Other(other.as_str_name().to_lowercase()),
        })
    }

    pub async fn kill_task(&self, id: &str, signal: u32) -> Result<()> {
        let r = TasksClient::new(self.channel.clone())
            .kill(self.req(KillRequest {
                container_id: id.into(),
                exec_id: String::new(),
                signal,
                all: true,
            }))
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(s) if matches!(s.code(), Code::NotFound | Code::FailedPrecondition) => Ok(()),
            Err(s) => Err(call("kill task", id)(s)),
        }
    }

    /// Deletes a stopped (or never started) task; a missing task is fine.
    pub async fn delete_task(&self, id: &str) -> Result<()> {
        let r = TasksClient::new(self.channel.clone())
            .delete(self.req(DeleteTaskRequest { container_id: id.into() }))
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(call("delete task", id)(s)),
        }
    }

    // ---- exec ----

    /// The OCI runtime spec a container was created with.
    pub async fn container_spec(&self, id: &str) -> Result<serde_json::Value> {
        let r = ContainersClient::new(self.channel.clone())
            .get(self.req(GetContainerRequest { id: id.into() }))
            .await
            .map_err(call("get container", id))?;
        let spec = r.into_inner().container.and_then(|c| c.spec).map(|a| a.value).unwrap_or_default();
        serde_json::from_slice(&spec).map_err(|e| RuntimeError::Protocol {
            op: "read spec of",
            what: id.into(),
            reason: e.to_string(),
        })
    }

    /// Adds a process (`process` is an OCI process spec) to a running task, its stdio on the
    /// given FIFOs (empty: none). It runs after [`Containerd::start_exec`].
    pub async fn exec(&self, id: &str, exec_id: &str, process: &serde_json::Value, io: &Stdio) -> Result<()> {
        let what = format!("{id}/{exec_id}");
        TasksClient::new(self.channel.clone())
            .exec(self.req(ExecProcessRequest {
                container_id: id.into(),
                exec_id: exec_id.into(),
                stdin: io.stdin.clone(),
                stdout: io.stdout.clone(),
                stderr: io.stderr.clone(),
                terminal: io.terminal,
                spec: Some(Any {
                    type_url: PROCESS_TYPE_URL.into(),
                    value: serde_json::to_vec(process).unwrap_or_default(),
                }),
            }))
            .await
            .map_err(call("exec in", what))?;
        Ok(())
    }

    pub async fn start_exec(&self, id: &str, exec_id: &str) -> Result<u32> {
        let r = TasksClient::new(self.channel.clone())
            .start(self.req(StartRequest { container_id: id.into(), exec_id: exec_id.into() }))
            .await
            .map_err(call("start exec", format!("{id}/{exec_id}")))?;
        Ok(r.into_inner().pid)
    }

    /// Waits for a process of a task (the task itself with an empty `exec_id`) to exit; its
    /// exit status.
    pub async fn wait(&self, id: &str, exec_id: &str) -> Result<u32> {
        let r = TasksClient::new(self.channel.clone())
            .wait(self.req(WaitRequest { container_id: id.into(), exec_id: exec_id.into() }))
            .await
            .map_err(call("wait for", format!("{id}/{exec_id}")))?;
        Ok(r.into_inner().exit_status)
    }

    pub async fn kill_exec(&self, id: &str, exec_id: &str, signal: u32) -> Result<()> {
        let r = TasksClient::new(self.channel.clone())
            .kill(self.req(KillRequest {
                container_id: id.into(),
                exec_id: exec_id.into(),
                signal,
                all: false,
            }))
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(s) if matches!(s.code(), Code::NotFound | Code::FailedPrecondition) => Ok(()),
            Err(s) => Err(call("kill exec", format!("{id}/{exec_id}"))(s)),
        }
    }

    /// Removes an exited exec process; a missing one is fine.
    pub async fn delete_exec(&self, id: &str, exec_id: &str) -> Result<()> {
        let r = TasksClient::new(self.channel.clone())
            .delete_process(
                self.req(DeleteProcessRequest { container_id: id.into(), exec_id: exec_id.into() }),
            )
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(call("delete exec", format!("{id}/{exec_id}"))(s)),
        }
    }

    /// Closes a process's stdin (end of input).
    pub async fn close_stdin(&self, id: &str, exec_id: &str) -> Result<()> {
        TasksClient::new(self.channel.clone())
            .close_io(self.req(CloseIoRequest {
                container_id: id.into(),
                exec_id: exec_id.into(),
                stdin: true,
            }))
            .await
            .map_err(call("close stdin of", format!("{id}/{exec_id}")))?;
        Ok(())
    }

    pub async fn resize_pty(&self, id: &str, exec_id: &str, width: u32, height: u32) -> Result<()> {
        TasksClient::new(self.channel.clone())
            .resize_pty(self.req(ResizePtyRequest {
                container_id: id.into(),
                exec_id: exec_id.into(),
                width,
                height,
            }))
            .await
            .map_err(call("resize tty of", format!("{id}/{exec_id}")))?;
        Ok(())
    }

    // ---- events ----

    /// Container ids of task exits (and OOMs), as they happen.
    pub async fn task_events(&self) -> Result<impl futures::Stream<Item = String> + Send + use<>> {
        let filters = vec![
            format!("namespace=={},topic==\"/tasks/exit\"", self.namespace),
            format!("namespace=={},topic==\"/tasks/oom\"", self.namespace),
        ];
        let stream = EventsClient::new(self.channel.clone())
            .subscribe(Request::new(SubscribeRequest { filters }))
            .await
            .map_err(call("subscribe events", ""))?
            .into_inner();
        Ok(stream.filter_map(|env| async move {
            let event = env.ok()?.event?;
            let exit = containerd_client::events::TaskExit::decode(event.value.as_slice()).ok()?;
            Some(exit.container_id)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_timestamp_is_none() {
        assert_eq!(timestamp(Some(prost_types::Timestamp { seconds: 0, nanos: 0 })), None);
        assert!(timestamp(Some(prost_types::Timestamp { seconds: 5, nanos: 0 })).is_some());
    }
}
