//! The table of each kind, as `kubectl get` shows it: the columns Kubernetes' server-side printers
//! define (`pkg/printers/internalversion/printers.go`, Kubernetes 1.32) and the cells of an object's row.
//!
//! One piece of code for both ends: the api-server builds `meta.k8s.io/v1 Table` responses from it, and
//! navctl prints its tables from it. The cells are computed from the object's JSON form (what
//! `serde_json::to_value(&object)` gives: the Kubernetes shape, which is also the manifest shape).
//!
//! Like the api-server's printers, which always print "wide", [`cells`] gives one cell for every column
//! of [`columns`], the `-o wide` ones (priority 1) included; a client hides those unless asked. Cells
//! are JSON strings, except the counts Kubernetes sends as integers, which are JSON numbers.

pub mod age;
/// The HorizontalPodAutoscaler's row and its TARGETS text (also what describe shows per metric).
pub mod autoscaling;
mod cells;
mod metrics;
mod quota;
mod storage;

use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

/// One column of a kind's Table, as Kubernetes' server-side printers define it. Serializes as a
/// `meta.k8s.io/v1 TableColumnDefinition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ColumnDefinition {
    /// Upstream's name (`Name`, `Ready`, `Nominated Node`...); kubectl prints it upper-cased.
    pub name: &'static str,
    /// `string`, `integer`, `boolean` or `date`, as upstream declares it.
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// `name` for the column holding the object's name, empty otherwise.
    pub format: &'static str,
    pub description: &'static str,
    /// 0: always shown; 1: only with `-o wide`.
    pub priority: i32,
}

const fn col(name: &'static str, type_: &'static str, description: &'static str) -> ColumnDefinition {
    ColumnDefinition { name, type_, format: "", description, priority: 0 }
}

const fn wide(name: &'static str, type_: &'static str, description: &'static str) -> ColumnDefinition {
    ColumnDefinition { name, type_, format: "", description, priority: 1 }
}

const NAME: ColumnDefinition = ColumnDefinition {
    name: "Name",
    type_: "string",
    format: "name",
    description: "Name of the object, unique within its namespace.",
    priority: 0,
};
const AGE: ColumnDefinition = col("Age", "string", "Time since the object was created.");
const CONTAINERS: ColumnDefinition = wide("Containers", "string", "Names of each container in the template.");
const IMAGES: ColumnDefinition =
    wide("Images", "string", "Images referenced by each container in the template.");
const SELECTOR: ColumnDefinition =
    wide("Selector", "string", "Label selector of the pods this object manages.");

const READY_REPLICAS: ColumnDefinition =
    col("Ready", "string", "Ready replicas out of the replicas asked for.");

/// A kind's columns: `Name`, the kind's own columns, `Age`, then (after a `;`) the columns that follow
/// it: the `-o wide` ones, for most kinds.
macro_rules! table {
    ($($own:expr),* $(,)?) => {
        &[NAME, $($own,)* AGE]
    };
    ($($own:expr),* ; $($after:expr),* $(,)?) => {
        &[NAME, $($own,)* AGE, $($after),*]
    };
}

const POD: &[ColumnDefinition] = table![
    col("Ready", "string", "Ready containers out of all containers of the pod."),
    col("Status", "string", "The pod's aggregate status: its phase or the reason a container gives."),
    col("Restarts", "string", "Container restarts, and how long ago the last one was.");
    wide("IP", "string", "The pod's IP address."),
    wide("Node", "string", "The node the pod is bound to."),
    wide("Nominated Node", "string", "The node preemption nominated for the pod."),
    wide("Readiness Gates", "string", "Readiness gates that are met, out of all of them."),
];

const REPLICA_SET: &[ColumnDefinition] = table![
    col("Desired", "integer", "Replicas asked for."),
    col("Current", "integer", "Replicas that exist."),
    col("Ready", "integer", "Replicas that are ready.");
    CONTAINERS, IMAGES, SELECTOR
];

const DAEMON_SET: &[ColumnDefinition] = table![
    col("Desired", "integer", "Nodes that should run the daemon pod."),
    col("Current", "integer", "Nodes that run the daemon pod."),
    col("Ready", "integer", "Nodes whose daemon pod is ready."),
    col("Up-to-date", "integer", "Nodes that run the current template."),
    col("Available", "integer", "Nodes whose daemon pod is available."),
    col("Node Selector", "string", "The node selector of the pod template.");
    CONTAINERS, IMAGES, SELECTOR
];

const JOB: &[ColumnDefinition] = table![
    col("Status", "string", "The job's status: Complete, Failed, Running..."),
    col("Completions", "string", "Pods that succeeded, out of the completions asked for."),
    col("Duration", "string", "How long the job ran or has been running.");
    CONTAINERS, IMAGES, SELECTOR
];

const CRON_JOB: &[ColumnDefinition] = table![
    col("Schedule", "string", "The cron schedule."),
    col("Timezone", "string", "The time zone of the schedule."),
    col("Suspend", "boolean", "Whether new runs are suspended."),
    col("Active", "integer", "Jobs running now."),
    col("Last Schedule", "string", "Time since a job was last scheduled.");
    CONTAINERS, IMAGES, SELECTOR
];

const SERVICE: &[ColumnDefinition] = table![
    col("Type", "string", "How the service is exposed."),
    col("Cluster-IP", "string", "The service's virtual IP inside the cluster."),
    col("External-IP", "string", "Addresses the service is reachable at from outside."),
    col("Port(s)", "string", "The service's ports, with their node ports.");
    wide("Selector", "string", "Labels of the pods the service sends traffic to."),
];

const DEPLOYMENT: &[ColumnDefinition] = table![
    READY_REPLICAS,
    col("Up-to-date", "string", "Replicas that run the current template."),
    col("Available", "string", "Replicas that are available.");
    CONTAINERS, IMAGES, SELECTOR
];

const STATEFUL_SET: &[ColumnDefinition] = table![READY_REPLICAS; CONTAINERS, IMAGES];

const NODE: &[ColumnDefinition] = &[
    NAME,
    col("Status", "string", "Whether the node is ready, and schedulable."),
    col("Roles", "string", "The node's roles, from its node-role labels."),
    AGE,
    col("Version", "string", "The kubelet's version."),
    wide("Internal-IP", "string", "The node's internal IP address."),
    wide("External-IP", "string", "The node's external IP address."),
    wide("OS-Image", "string", "The operating system the node runs."),
    wide("Kernel-Version", "string", "The node's kernel version."),
    wide("Container-Runtime", "string", "The node's container runtime and its version."),
];

const EVENT: &[ColumnDefinition] = &[
    col("Last Seen", "string", "Time since the event last happened."),
    col("Type", "string", "Normal or Warning."),
    col("Reason", "string", "Why the event happened, in one word."),
    col("Object", "string", "The object the event is about."),
    wide("Subobject", "string", "The part of the object the event is about."),
    wide("Source", "string", "The component that reported the event."),
    col("Message", "string", "What happened."),
    wide("First Seen", "string", "Time since the event first happened."),
    wide("Count", "string", "How many times the event happened."),
    ColumnDefinition { priority: 1, ..NAME },
];

const ENDPOINTS: &[ColumnDefinition] =
    table![col("Endpoints", "string", "Ready addresses with their ports.")];
const NAMESPACE: &[ColumnDefinition] = table![col("Status", "string", "Active or Terminating.")];
const SECRET: &[ColumnDefinition] =
    table![col("Type", "string", "The kind of secret."), col("Data", "string", "Number of keys.")];
const SERVICE_ACCOUNT: &[ColumnDefinition] =
    table![col("Secrets", "string", "Number of secrets the service account refers to.")];
const CONFIG_MAP: &[ColumnDefinition] = table![col("Data", "string", "Number of keys.")];
const CONTROLLER_REVISION: &[ColumnDefinition] = table![
    col("Controller", "string", "Controller of the object"),
    col("Revision", "number", "Revision indicates the revision of the state represented by Data."),
];

const LEASE: &[ColumnDefinition] = table![col("Holder", "string", "The identity that holds the lease.")];

/// Roles, ClusterRoles and LimitRanges have no printer upstream: the api-server's default table (`NAME`,
/// `CREATED AT`).
const ROLE: &[ColumnDefinition] =
    &[NAME, col("Created At", "date", "When the object was created (RFC 3339, UTC).")];
const ROLE_BINDING: &[ColumnDefinition] = table![
    col("Role", "string", "The role granted: its kind and name.");
    wide("Users", "string", "Users in the roleBinding"),
    wide("Groups", "string", "Groups in the roleBinding"),
    wide("ServiceAccounts", "string", "ServiceAccounts in the roleBinding"),
];
const CERTIFICATE_SIGNING_REQUEST: &[ColumnDefinition] = &[
    NAME,
    AGE,
    col("SignerName", "string", "The signer asked to issue the certificate."),
    col("Requestor", "string", "The user who created the request."),
    col("RequestedDuration", "string", "How long the certificate is asked to be valid."),
    col("Condition", "string", "Approved or Denied (or Pending), then Failed and Issued when they hold."),
];

const POD_DISRUPTION_BUDGET: &[ColumnDefinition] = table![
    col("Min Available", "string", "The minimum number of pods that must be available."),
    col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
    col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
];

const HORIZONTAL_POD_AUTOSCALER: &[ColumnDefinition] = table![
    col("Reference", "string", "The workload whose scale the autoscaler sets, as Kind/name."),
    col("Targets", "string", "The metrics' current values and targets."),
    col("MinPods", "string", "The fewest replicas the autoscaler scales down to."),
    col("MaxPods", "integer", "The most replicas the autoscaler scales up to."),
    col("Replicas", "integer", "The target's replicas as the autoscaler last saw them."),
];

const PERSISTENT_VOLUME: &[ColumnDefinition] = table![
    col("Capacity", "string", "The volume's capacity (its storage)."),
    col("Access Modes", "string", "The ways the volume can be mounted (RWO, ROX, RWX, RWOP)."),
    col("Reclaim Policy", "string", "What happens to the volume when its claim is released."),
    col("Status", "string", "The volume's phase; Terminating while it is being deleted."),
    col("Claim", "string", "The claim bound to the volume, as namespace/name."),
    col("StorageClass", "string", "StorageClass of the pv"),
    col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
    col("Reason", "string", "Why the volume is in its phase (e.g. a failed recycle).");
    wide("VolumeMode", "string", "Filesystem or Block."),
];

const PERSISTENT_VOLUME_CLAIM: &[ColumnDefinition] = table![
    col("Status", "string", "The claim's phase; Terminating while it is being deleted."),
    col("Volume", "string", "The volume bound to the claim."),
    col("Capacity", "string", "The storage of the bound volume."),
    col("Access Modes", "string", "The access modes of the bound volume (RWO, ROX, RWX, RWOP)."),
    col("StorageClass", "string", "StorageClass of the pvc"),
    col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc");
    wide("VolumeMode", "string", "Filesystem or Block."),
];

const STORAGE_CLASS: &[ColumnDefinition] = table![
    col("Provisioner", "string", "The program that makes the class's volumes."),
    col("ReclaimPolicy", "string", "What happens to the class's volumes when their claims are released."),
    col(
        "VolumeBindingMode",
        "string",
        "When claims of the class are bound: Immediate or WaitForFirstConsumer."
    ),
    col("AllowVolumeExpansion", "string", "Whether claims of the class may grow."),
];

/// PreemptionPolicy comes after Age, as in Kubernetes.
const PRIORITY_CLASS: &[ColumnDefinition] = table![
    col("Value", "integer", "The priority pods of this class get."),
    col("Global-Default", "boolean", "Whether pods naming no class get this class's priority.");
    col("PreemptionPolicy", "string", "Whether pods of this class may preempt pods of lower priority."),
];

/// Age comes before the usage columns, as in Kubernetes.
const RESOURCE_QUOTA: &[ColumnDefinition] = table![;
    col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
    col(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."
    ),
];

/// Kinds without a printer of their own.
const DEFAULT: &[ColumnDefinition] = table![];

fn definitions(kind: &str) -> &'static [ColumnDefinition] {
    match kind {
        "Pod" => POD,
        "ReplicaSet" | "ReplicationController" => REPLICA_SET,
        "DaemonSet" => DAEMON_SET,
        "Job" => JOB,
        "CronJob" => CRON_JOB,
        "Service" => SERVICE,
        "StatefulSet" => STATEFUL_SET,
        "Endpoints" => ENDPOINTS,
        "Node" => NODE,
        "Event" => EVENT,
        "Namespace" => NAMESPACE,
        "Secret" => SECRET,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "Deployment" => DEPLOYMENT,
        "ConfigMap" => CONFIG_MAP,
        "Lease" => LEASE,
        "ControllerRevision" => CONTROLLER_REVISION,
        "Role" | "ClusterRole" | "LimitRange" => ROLE,
        "RoleBinding" | "ClusterRoleBinding" => ROLE_BINDING,
        "CertificateSigningRequest" => CERTIFICATE_SIGNING_REQUEST,
        "PodDisruptionBudget" => POD_DISRUPTION_BUDGET,
        "HorizontalPodAutoscaler" => HORIZONTAL_POD_AUTOSCALER,
        "PersistentVolume" => PERSISTENT_VOLUME,
        "PersistentVolumeClaim" => PERSISTENT_VOLUME_CLAIM,
        "StorageClass" => STORAGE_CLASS,
        "PriorityClass" => PRIORITY_CLASS,
        "ResourceQuota" => RESOURCE_QUOTA,
        "NodeMetrics" | "PodMetrics" => metrics::COLUMNS,
        _ => DEFAULT,
    }
}

/// Every column of `kind`'s table, the `-o wide` ones included, in upstream's order.
pub fn columns(kind: &str) -> Vec<ColumnDefinition> {
    definitions(kind).to_vec()
}

/// The cells of `obj`'s row in `kind`'s table: one per column of [`columns`], ages as of `now`.
pub fn cells(kind: &str, obj: &Value, now: SystemTime) -> Vec<Value> {
    let row = cells::row(kind, obj, now);
    debug_assert_eq!(row.len(), definitions(kind).len(), "{kind}");
    row
}

/// Reads a dotted path (`status.containerStatuses`); `Null` when any step is missing.
pub fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    path.split('.').try_fold(v, |cur, key| cur.get(key)).unwrap_or(&NULL)
}

/// The string at `path`; empty when missing or not a string.
pub fn str_at<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path).as_str().unwrap_or("")
}

/// The integer at `path`; 0 when missing.
pub fn int_at(v: &Value, path: &str) -> i64 {
    at(v, path).as_i64().unwrap_or(0)
}

/// The boolean at `path`; false when missing.
pub fn bool_at(v: &Value, path: &str) -> bool {
    at(v, path).as_bool().unwrap_or(false)
}

/// The array at `path`; empty when missing.
pub fn list_at<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    at(v, path).as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn or_none(s: impl Into<String>) -> String {
    let s = s.into();
    if s.is_empty() { "<none>".to_string() } else { s }
}

/// A label map as `k=v,k2=v2`, sorted by key (`labels.FormatLabels`); `<none>` when empty.
pub fn labels_string(v: &Value) -> String {
    match v.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".to_string(),
    }
}

/// A structured label selector in its string form (`app=web,tier in (a,b)`), requirements sorted by
/// key and values sorted (`metav1.FormatLabelSelector`); `<none>` when it selects by nothing,
/// `<error>` for an operator a label selector cannot have.
pub fn selector_string(sel: &Value) -> String {
    selector_requirements(sel).map_or_else(|| "<error>".to_string(), or_none)
}

/// The requirements of a label selector, joined; `None` for an unknown operator.
fn selector_requirements(sel: &Value) -> Option<String> {
    let mut parts: Vec<(&str, String)> = Vec::new();
    if let Some(m) = at(sel, "matchLabels").as_object() {
        parts.extend(m.iter().map(|(k, v)| (k.as_str(), format!("{k}={}", v.as_str().unwrap_or_default()))));
    }
    for e in list_at(sel, "matchExpressions") {
        let key = str_at(e, "key");
        let mut values: Vec<&str> = list_at(e, "values").iter().filter_map(Value::as_str).collect();
        values.sort_unstable();
        values.dedup();
        let values = values.join(",");
        parts.push((
            key,
            match str_at(e, "operator") {
                "In" => format!("{key} in ({values})"),
                "NotIn" => format!("{key} notin ({values})"),
                "Exists" => key.to_string(),
                "DoesNotExist" => format!("!{key}"),
                _ => return None,
            },
        ));
    }
    parts.sort_by_key(|(key, _)| *key);
    Some(parts.into_iter().map(|(_, p)| p).collect::<Vec<_>>().join(","))
}

#[cfg(test)]
mod tests;
