//! The cells of each kind's row, following the upstream printers' logic (`printPod`, `printNode`...).

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::age::{self, parse_timestamp, since};
use super::{
    at, bool_at, int_at, labels_string, list_at, or_none, selector_requirements, selector_string, str_at,
};

/// A string cell.
fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// An integer cell (upstream sends these counts as `int64`).
fn n(v: impl Into<i64>) -> Value {
    Value::Number(v.into().into())
}

fn count(len: usize) -> Value {
    n(i64::try_from(len).unwrap_or(i64::MAX))
}

pub(super) fn row(kind: &str, o: &Value, now: SystemTime) -> Vec<Value> {
    let name = || s(str_at(o, "metadata.name"));
    let age = || s(since(str_at(o, "metadata.creationTimestamp"), now));
    let template = |path: &str| containers(list_at(o, path));
    match kind {
        "Pod" => pod(o, now),
        // The same printer upstream, a ReplicationController's selector being a label map.
        "ReplicaSet" | "ReplicationController" => {
            let mut row = vec![
                name(),
                n(int_at(o, "spec.replicas")),
                n(int_at(o, "status.replicas")),
                n(int_at(o, "status.readyReplicas")),
                age(),
            ];
            row.extend(template("spec.template.spec.containers"));
            row.push(s(if kind == "ReplicationController" {
                labels_string(at(o, "spec.selector"))
            } else {
                selector_string(at(o, "spec.selector"))
            }));
            row
        }
        "DaemonSet" => {
            let mut row = vec![name()];
            row.extend(
                [
                    "desiredNumberScheduled",
                    "currentNumberScheduled",
                    "numberReady",
                    "updatedNumberScheduled",
                    "numberAvailable",
                ]
                .map(|field| n(int_at(at(o, "status"), field))),
            );
            row.push(s(labels_string(at(o, "spec.template.spec.nodeSelector"))));
            row.push(age());
            row.extend(template("spec.template.spec.containers"));
            row.push(s(selector_string(at(o, "spec.selector"))));
            row
        }
        "Job" => {
            let mut row =
                vec![name(), s(job_status(o)), s(job_completions(o)), s(job_duration(o, now)), age()];
            row.extend(template("spec.template.spec.containers"));
            row.push(s(selector_string(at(o, "spec.selector"))));
            row
        }
        "CronJob" => {
            let suspend = match at(o, "spec.suspend").as_bool() {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            };
            let last_schedule = match str_at(o, "status.lastScheduleTime") {
                "" => "<none>".to_string(),
                ts => since(ts, now),
            };
            let mut row = vec![
                name(),
                s(str_at(o, "spec.schedule")),
                s(at(o, "spec.timeZone").as_str().unwrap_or("<none>")),
                s(suspend),
                count(list_at(o, "status.active").len()),
                s(last_schedule),
                age(),
            ];
            row.extend(template("spec.jobTemplate.spec.template.spec.containers"));
            row.push(s(selector_string(at(o, "spec.jobTemplate.spec.selector"))));
            row
        }
        "Service" => vec![
            name(),
            s(str_at(o, "spec.type")),
            s(service_cluster_ip(o)),
            s(service_external_ip(o)),
            s(service_ports(o)),
            age(),
            s(labels_string(at(o, "spec.selector"))),
        ],
        "StatefulSet" => {
            let ready = format!("{}/{}", int_at(o, "status.readyReplicas"), int_at(o, "spec.replicas"));
            let mut row = vec![name(), s(ready), age()];
            row.extend(template("spec.template.spec.containers"));
            row
        }
        "Endpoints" => vec![name(), s(endpoints(o)), age()],
        "Node" => node(o, now),
        "Event" => event(o, now),
        "Namespace" => vec![name(), s(str_at(o, "status.phase")), age()],
        "Secret" => vec![name(), s(str_at(o, "type")), count(map_len(o, "data")), age()],
        "ServiceAccount" => vec![name(), count(list_at(o, "secrets").len()), age()],
        "Deployment" => {
            let ready = format!("{}/{}", int_at(o, "status.readyReplicas"), int_at(o, "spec.replicas"));
            let mut row = vec![
                name(),
                s(ready),
                n(int_at(o, "status.updatedReplicas")),
                n(int_at(o, "status.availableReplicas")),
                age(),
            ];
            row.extend(template("spec.template.spec.containers"));
            // printDeployment writes the selector as it is: empty when it selects by nothing.
            row.push(s(selector_requirements(at(o, "spec.selector")).unwrap_or_else(|| "<invalid>".into())));
            row
        }
        "ConfigMap" => vec![name(), count(map_len(o, "data") + map_len(o, "binaryData")), age()],
        "Lease" => vec![name(), s(str_at(o, "spec.holderIdentity")), age()],
        "PodDisruptionBudget" => {
            // An IntOrString as its text; `N/A` when unset.
            let bound = |path: &str| match at(o, path) {
                Value::Null => s("N/A"),
                Value::String(v) => s(v.as_str()),
                v => s(v.to_string()),
            };
            let allowed = int_at(o, "status.disruptionsAllowed");
            vec![name(), bound("spec.minAvailable"), bound("spec.maxUnavailable"), n(allowed), age()]
        }
        "ControllerRevision" => vec![name(), s(revision_controller(o)), n(int_at(o, "revision")), age()],
        "HorizontalPodAutoscaler" => super::autoscaling::horizontal_pod_autoscaler(o, age()),
        "PersistentVolume" => super::storage::persistent_volume(o, age()),
        "PersistentVolumeClaim" => super::storage::persistent_volume_claim(o, age()),
        "StorageClass" => super::storage::storage_class(o, age()),
        "ResourceQuota" => super::quota::resource_quota(o, name(), age()),
        "PriorityClass" => vec![
            name(),
            n(int_at(o, "value")),
            Value::Bool(bool_at(o, "globalDefault")),
            age(),
            s(str_at(o, "preemptionPolicy")),
        ],
        "NodeMetrics" | "PodMetrics" => super::metrics::row(kind, o),
        "Role" | "ClusterRole" | "LimitRange" => vec![name(), s(created_at(o))],
        "RoleBinding" | "ClusterRoleBinding" => {
            let role = format!("{}/{}", str_at(o, "roleRef.kind"), str_at(o, "roleRef.name"));
            let mut row = vec![name(), s(role), age()];
            row.extend(subjects(list_at(o, "subjects")).map(|names| s(names.join(", "))));
            row
        }
        "CertificateSigningRequest" => {
            let requested = match at(o, "spec.expirationSeconds").as_i64() {
                Some(seconds) if seconds < -1 => "<invalid>".to_string(),
                Some(seconds) => age::human_duration(Duration::from_secs(seconds.max(0).unsigned_abs())),
                None => "<none>".to_string(),
            };
            vec![
                name(),
                age(),
                s(or_none(str_at(o, "spec.signerName"))),
                s(str_at(o, "spec.username")),
                s(requested),
                s(csr_condition(o)),
            ]
        }
        _ => vec![name(), age()],
    }
}

/// The default table's `Created At`: the creation time as RFC 3339 (Go's zero time when there is none).
fn created_at(o: &Value) -> &str {
    match str_at(o, "metadata.creationTimestamp") {
        "" => "0001-01-01T00:00:00Z",
        ts => ts,
    }
}

/// The users, groups and ServiceAccounts (`namespace/name`) of a binding's subjects, in order
/// (`rbac.SubjectsStrings`); subjects of other kinds are left out.
fn subjects(subjects: &[Value]) -> [Vec<String>; 3] {
    let [mut users, mut groups, mut service_accounts] = [Vec::new(), Vec::new(), Vec::new()];
    for subject in subjects {
        let name = str_at(subject, "name").to_string();
        match str_at(subject, "kind") {
            "User" => users.push(name),
            "Group" => groups.push(name),
            "ServiceAccount" => service_accounts.push(match str_at(subject, "namespace") {
                "" => name,
                namespace => format!("{namespace}/{name}"),
            }),
            _ => {}
        }
    }
    [users, groups, service_accounts]
}

/// A CertificateSigningRequest's CONDITION (`extractCSRStatus`): Denied over Approved over Pending, then
/// `,Failed` and `,Issued` when they hold.
fn csr_condition(o: &Value) -> String {
    let conditions = list_at(o, "status.conditions");
    let has = |ty: &str| conditions.iter().any(|c| str_at(c, "type") == ty);
    let mut condition = if has("Denied") {
        "Denied".to_string()
    } else if has("Approved") {
        "Approved".to_string()
    } else {
        "Pending".to_string()
    };
    if has("Failed") {
        condition.push_str(",Failed");
    }
    if !str_at(o, "status.certificate").is_empty() {
        condition.push_str(",Issued");
    }
    condition
}

/// A ControllerRevision's controller as `<kind>.<group>/<name>` in lower case (`daemonset.apps/x`), or
/// `<none>` (printControllerRevision).
fn revision_controller(o: &Value) -> String {
    let Some(r) = list_at(o, "metadata.ownerReferences").iter().find(|r| bool_at(r, "controller")) else {
        return "<none>".into();
    };
    let group = str_at(r, "apiVersion").rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    let kind = if group.is_empty() {
        str_at(r, "kind").to_string()
    } else {
        format!("{}.{group}", str_at(r, "kind"))
    };
    format!("{}/{}", kind.to_lowercase(), str_at(r, "name"))
}

fn map_len(v: &Value, path: &str) -> usize {
    at(v, path).as_object().map_or(0, |m| m.len())
}

/// The CONTAINERS and IMAGES cells of a pod template's containers.
fn containers(cs: &[Value]) -> [Value; 2] {
    let join = |field: &str| cs.iter().map(|c| str_at(c, field)).collect::<Vec<_>>().join(",");
    [s(join("name")), s(join("image"))]
}

/// The status of the first condition of type `ty` is `True` (the printers' `hasJobCondition` and
/// friends look at the first condition of a type only).
fn condition_true(conditions: &[Value], ty: &str) -> bool {
    conditions.iter().find(|c| str_at(c, "type") == ty).is_some_and(|c| str_at(c, "status") == "True")
}

/// Container restarts and when the last one happened.
#[derive(Default, Clone, Copy)]
struct Restarts {
    count: i64,
    last: Option<SystemTime>,
}

impl Restarts {
    fn note(&mut self, container_status: &Value) {
        self.count += int_at(container_status, "restartCount");
        if let Some(t) = parse_timestamp(str_at(container_status, "lastState.terminated.finishedAt"))
            && self.last.is_none_or(|l| l < t)
        {
            self.last = Some(t);
        }
    }
}

/// `printPod`: READY, STATUS (the reason logic) and RESTARTS, then the wide cells.
fn pod(o: &Value, now: SystemTime) -> Vec<Value> {
    let phase = str_at(o, "status.phase");
    let mut reason = match str_at(o, "status.reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    let conditions = list_at(o, "status.conditions");
    if conditions
        .iter()
        .any(|c| str_at(c, "type") == "PodScheduled" && str_at(c, "reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    // Sidecars (init containers that restart always) count as containers of the pod.
    let init_specs = list_at(o, "spec.initContainers");
    let sidecar = |c: &Value| str_at(c, "restartPolicy") == "Always";
    let is_sidecar = |name: &str| init_specs.iter().any(|c| str_at(c, "name") == name && sidecar(c));
    let total = list_at(o, "spec.containers").len() + init_specs.iter().filter(|c| sidecar(c)).count();
    let mut ready = 0;
    let mut restarts = Restarts::default();
    let mut sidecar_restarts = Restarts::default();
    let mut initializing = false;
    for (i, c) in list_at(o, "status.initContainerStatuses").iter().enumerate() {
        restarts.note(c);
        let restartable = is_sidecar(str_at(c, "name"));
        if restartable {
            sidecar_restarts.note(c);
        }
        let terminated = at(c, "state.terminated");
        let waiting_reason = str_at(c, "state.waiting.reason");
        if !terminated.is_null() && int_at(terminated, "exitCode") == 0 {
            continue;
        }
        if restartable && bool_at(c, "started") {
            if bool_at(c, "ready") {
                ready += 1;
            }
            continue;
        }
        reason = if !terminated.is_null() {
            match str_at(terminated, "reason") {
                "" if int_at(terminated, "signal") != 0 => {
                    format!("Init:Signal:{}", int_at(terminated, "signal"))
                }
                "" => format!("Init:ExitCode:{}", int_at(terminated, "exitCode")),
                r => format!("Init:{r}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        let mut has_running = false;
        for c in list_at(o, "status.containerStatuses").iter().rev() {
            restarts.note(c);
            let waiting = str_at(c, "state.waiting.reason");
            let terminated = at(c, "state.terminated");
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if !terminated.is_null() {
                reason = match str_at(terminated, "reason") {
                    "" if int_at(terminated, "signal") != 0 => {
                        format!("Signal:{}", int_at(terminated, "signal"))
                    }
                    "" => format!("ExitCode:{}", int_at(terminated, "exitCode")),
                    r => r.to_string(),
                };
            } else if bool_at(c, "ready") && !at(c, "state.running").is_null() {
                has_running = true;
                ready += 1;
            }
        }
        // A container still running turns a Completed pod back into Running (or NotReady).
        if reason == "Completed" && has_running {
            let pod_ready =
                conditions.iter().any(|c| str_at(c, "type") == "Ready" && str_at(c, "status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    let deleting = !str_at(o, "metadata.deletionTimestamp").is_empty();
    if deleting && str_at(o, "status.reason") == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }
    // Kubernetes' api-server sets phase Pending when it creates a pod; navarch's leaves it to the
    // kubelet, so a pod nobody has reported on yet reads as Kubernetes would show it.
    if reason.is_empty() {
        reason = "Pending".to_string();
    }
    let restarts_cell = match restarts.last {
        Some(t) if restarts.count != 0 => format!("{} ({} ago)", restarts.count, age::span(t, now)),
        _ => restarts.count.to_string(),
    };

    let ip = match list_at(o, "status.podIPs").first().map(|p| str_at(p, "ip")) {
        Some(ip) if !ip.is_empty() => ip,
        _ => str_at(o, "status.podIP"),
    };
    let gates = list_at(o, "spec.readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let met = gates.iter().filter(|g| condition_true(conditions, str_at(g, "conditionType"))).count();
        format!("{met}/{}", gates.len())
    };
    vec![
        s(str_at(o, "metadata.name")),
        s(format!("{ready}/{total}")),
        s(reason),
        s(restarts_cell),
        s(since(str_at(o, "metadata.creationTimestamp"), now)),
        s(or_none(ip)),
        s(or_none(str_at(o, "spec.nodeName"))),
        s(or_none(str_at(o, "status.nominatedNodeName"))),
        s(readiness_gates),
    ]
}

/// `printNode`: STATUS from the Ready condition, ROLES from the node-role labels.
fn node(o: &Value, now: SystemTime) -> Vec<Value> {
    let mut status = match list_at(o, "status.conditions").iter().rfind(|c| str_at(c, "type") == "Ready") {
        Some(c) if str_at(c, "status") == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if bool_at(o, "spec.unschedulable") {
        status.push_str(",SchedulingDisabled");
    }
    let address = |ty: &str| {
        list_at(o, "status.addresses")
            .iter()
            .find(|a| str_at(a, "type") == ty)
            .map_or_else(|| "<none>".to_string(), |a| str_at(a, "address").to_string())
    };
    let info = |field: &str| match str_at(at(o, "status.nodeInfo"), field) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        s(str_at(o, "metadata.name")),
        s(status),
        s(node_roles(o)),
        s(since(str_at(o, "metadata.creationTimestamp"), now)),
        s(str_at(o, "status.nodeInfo.kubeletVersion")),
        s(address("InternalIP")),
        s(address("ExternalIP")),
        s(info("osImage")),
        s(info("kernelVersion")),
        s(info("containerRuntimeVersion")),
    ]
}

/// `node-role.kubernetes.io/<role>` labels and the `kubernetes.io/role` label, sorted; `<none>`.
fn node_roles(o: &Value) -> String {
    let mut roles: Vec<&str> = Vec::new();
    if let Some(labels) = at(o, "metadata.labels").as_object() {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role);
                }
            } else if k == "kubernetes.io/role"
                && let Some(v) = v.as_str().filter(|v| !v.is_empty())
            {
                roles.push(v);
            }
        }
    }
    roles.sort_unstable();
    roles.dedup();
    or_none(roles.join(","))
}

/// CLUSTER-IP: the first of `clusterIPs` (`clusterIP` when only that is set); `<none>`.
fn service_cluster_ip(o: &Value) -> String {
    match list_at(o, "spec.clusterIPs").first().and_then(Value::as_str) {
        Some(ip) => ip.to_string(),
        None => or_none(str_at(o, "spec.clusterIP")),
    }
}

/// EXTERNAL-IP (`getServiceExternalIP`): the external IPs, for a LoadBalancer its ingress addresses
/// first (`<pending>` while it has none), for an ExternalName the name.
fn service_external_ip(o: &Value) -> String {
    let external: Vec<&str> = list_at(o, "spec.externalIPs").iter().filter_map(Value::as_str).collect();
    match str_at(o, "spec.type") {
        "ClusterIP" | "NodePort" => or_none(external.join(",")),
        "LoadBalancer" => {
            let mut ips: Vec<&str> = list_at(o, "status.loadBalancer.ingress")
                .iter()
                .map(|i| if str_at(i, "ip").is_empty() { str_at(i, "hostname") } else { str_at(i, "ip") })
                .filter(|s| !s.is_empty())
                .collect();
            ips.sort_unstable();
            ips.dedup();
            ips.extend(external);
            if ips.is_empty() { "<pending>".to_string() } else { ips.join(",") }
        }
        "ExternalName" => str_at(o, "spec.externalName").to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// PORT(S) (`makePortString`): `80/TCP`, `80:30080/TCP`; `<none>`.
fn service_ports(o: &Value) -> String {
    or_none(
        list_at(o, "spec.ports")
            .iter()
            .map(|p| {
                let protocol = match str_at(p, "protocol") {
                    "" => "TCP",
                    proto => proto,
                };
                match int_at(p, "nodePort") {
                    node_port if node_port > 0 => format!("{}:{node_port}/{protocol}", int_at(p, "port")),
                    _ => format!("{}/{protocol}", int_at(p, "port")),
                }
            })
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// ENDPOINTS (`formatEndpoints`): up to three ready `ip:port`, then `+ N more...`; `<none>` without
/// subsets.
fn endpoints(o: &Value) -> String {
    const MAX: usize = 3;
    let subsets = list_at(o, "subsets");
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    let mut count = 0;
    for subset in subsets {
        let addresses = list_at(subset, "addresses");
        let ports = list_at(subset, "ports");
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            list.extend(addresses.iter().map(|a| str_at(a, "ip").to_string()));
            continue;
        }
        for port in ports {
            count += addresses.len();
            let p = int_at(port, "port");
            list.extend(addresses.iter().map(|a| match str_at(a, "ip") {
                ip if ip.contains(':') => format!("[{ip}]:{p}"),
                ip => format!("{ip}:{p}"),
            }));
        }
    }
    if count > MAX {
        list.truncate(MAX);
        return format!("{} + {} more...", list.join(","), count - MAX);
    }
    list.join(",")
}

fn job_status(o: &Value) -> &'static str {
    let conditions = list_at(o, "status.conditions");
    if condition_true(conditions, "Complete") {
        "Complete"
    } else if condition_true(conditions, "Failed") {
        "Failed"
    } else if !str_at(o, "metadata.deletionTimestamp").is_empty() {
        "Terminating"
    } else if condition_true(conditions, "Suspended") {
        "Suspended"
    } else if condition_true(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

fn job_completions(o: &Value) -> String {
    let succeeded = int_at(o, "status.succeeded");
    match at(o, "spec.completions").as_i64() {
        Some(c) => format!("{succeeded}/{c}"),
        None => match int_at(o, "spec.parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    }
}

/// How long the job ran (start to completion) or has been running; empty before it started.
fn job_duration(o: &Value, now: SystemTime) -> String {
    let Some(start) = parse_timestamp(str_at(o, "status.startTime")) else { return String::new() };
    match parse_timestamp(str_at(o, "status.completionTime")) {
        Some(end) => age::span(start, end),
        None => age::span(start, now),
    }
}

/// `printEvent`: the series' last observation and count when the event has one.
fn event(o: &Value, now: SystemTime) -> Vec<Value> {
    let first = match str_at(o, "firstTimestamp") {
        "" => since(str_at(o, "eventTime"), now),
        ts => since(ts, now),
    };
    let mut last = match str_at(o, "lastTimestamp") {
        "" => first.clone(),
        ts => since(ts, now),
    };
    let mut count = int_at(o, "count");
    if !at(o, "series").is_null() {
        last = since(str_at(o, "series.lastObservedTime"), now);
        count = int_at(o, "series.count");
    } else if count == 0 {
        // Singleton events of the new API carry no count.
        count = 1;
    }
    let involved_kind = str_at(o, "involvedObject.kind").to_lowercase();
    let target = match str_at(o, "involvedObject.name") {
        "" => involved_kind,
        name => format!("{involved_kind}/{name}"),
    };
    let source = match (
        first_non_empty(str_at(o, "source.component"), str_at(o, "reportingComponent")),
        first_non_empty(str_at(o, "source.host"), str_at(o, "reportingInstance")),
    ) {
        (component, "") => component.to_string(),
        (component, host) => format!("{component}, {host}"),
    };
    vec![
        s(last),
        s(str_at(o, "type")),
        s(str_at(o, "reason")),
        s(target),
        s(str_at(o, "involvedObject.fieldPath")),
        s(source),
        s(str_at(o, "message").trim()),
        s(first),
        n(count),
        s(str_at(o, "metadata.name")),
    ]
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}
