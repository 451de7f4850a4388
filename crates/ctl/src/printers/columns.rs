//! The table columns of each kind, as kubectl prints them, computed from the object's JSON form (the
//! Kubernetes shape, which is also navarch's manifest shape).

use std::time::SystemTime;

use serde_json::Value;

use super::age;

/// Reads a dotted path (`status.containerStatuses`); `Null` when any step is missing.
pub fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    path.split('.').try_fold(v, |cur, key| cur.get(key)).unwrap_or(&NULL)
}

pub fn str_at<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path).as_str().unwrap_or("")
}

pub fn int_at(v: &Value, path: &str) -> i64 {
    at(v, path).as_i64().unwrap_or(0)
}

pub fn list_at<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    at(v, path).as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn map_len(v: &Value, path: &str) -> usize {
    at(v, path).as_object().map_or(0, |m| m.len())
}

fn or_none(s: impl Into<String>) -> String {
    let s = s.into();
    if s.is_empty() { "<none>".to_string() } else { s }
}

/// `k=v,k2=v2`, for label maps and node selectors.
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

/// A structured label selector in the string form (`app=web,tier in (a,b)`).
pub fn selector_string(sel: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = at(sel, "matchLabels").as_object() {
        parts.extend(m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())));
    }
    for e in list_at(sel, "matchExpressions") {
        let key = str_at(e, "key");
        let values: Vec<&str> = list_at(e, "values").iter().filter_map(Value::as_str).collect();
        parts.push(match str_at(e, "operator") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            op => format!("{key} {op} ({})", values.join(",")),
        });
    }
    or_none(parts.join(","))
}

/// Context for computing cells.
#[derive(Debug, Clone, Copy)]
pub struct RowContext {
    pub wide: bool,
    pub now: SystemTime,
}

impl RowContext {
    fn age(&self, o: &Value) -> String {
        age::since(str_at(o, "metadata.creationTimestamp"), self.now)
    }
}

/// Column headers of `kind`'s table.
pub fn headers(kind: &str, wide: bool) -> Vec<&'static str> {
    let (normal, extra): (&[&str], &[&str]) = match kind {
        "Pod" => (
            &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            &["IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
        ),
        "Deployment" => {
            (&["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], &["CONTAINERS", "IMAGES", "SELECTOR"])
        }
        "ReplicaSet" => {
            (&["NAME", "DESIRED", "CURRENT", "READY", "AGE"], &["CONTAINERS", "IMAGES", "SELECTOR"])
        }
        "DaemonSet" => (
            &["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"],
            &["CONTAINERS", "IMAGES", "SELECTOR"],
        ),
        "StatefulSet" => (&["NAME", "READY", "AGE"], &["CONTAINERS", "IMAGES"]),
        "Service" => (&["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], &["SELECTOR"]),
        "Endpoints" => (&["NAME", "ENDPOINTS", "AGE"], &[]),
        "Node" => (
            &["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
            &["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"],
        ),
        "Namespace" => (&["NAME", "STATUS", "AGE"], &[]),
        "ConfigMap" => (&["NAME", "DATA", "AGE"], &[]),
        "Secret" => (&["NAME", "TYPE", "DATA", "AGE"], &[]),
        "ServiceAccount" => (&["NAME", "SECRETS", "AGE"], &[]),
        "Job" => {
            (&["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"], &["CONTAINERS", "IMAGES", "SELECTOR"])
        }
        "CronJob" => (
            &["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"],
            &["CONTAINERS", "IMAGES", "SELECTOR"],
        ),
        "Event" => {
            if wide {
                return vec![
                    "LAST SEEN",
                    "TYPE",
                    "REASON",
                    "OBJECT",
                    "SUBOBJECT",
                    "SOURCE",
                    "MESSAGE",
                    "FIRST SEEN",
                    "COUNT",
                    "NAME",
                ];
            }
            (&["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], &[])
        }
        "Lease" => (&["NAME", "HOLDER", "AGE"], &[]),
        _ => (&["NAME", "AGE"], &[]),
    };
    let mut h = normal.to_vec();
    if wide {
        h.extend_from_slice(extra);
    }
    h
}

/// The cells of one object's row (matching [`headers`]).
pub fn cells(kind: &str, o: &Value, cx: &RowContext) -> Vec<String> {
    let name = str_at(o, "metadata.name").to_string();
    let mut row = match kind {
        "Pod" => pod(o, cx),
        "Deployment" => {
            let spec_replicas = int_at(o, "spec.replicas");
            vec![
                name,
                format!("{}/{spec_replicas}", int_at(o, "status.readyReplicas")),
                int_at(o, "status.updatedReplicas").to_string(),
                int_at(o, "status.availableReplicas").to_string(),
                cx.age(o),
            ]
        }
        "ReplicaSet" => vec![
            name,
            int_at(o, "spec.replicas").to_string(),
            int_at(o, "status.replicas").to_string(),
            int_at(o, "status.readyReplicas").to_string(),
            cx.age(o),
        ],
        "DaemonSet" => vec![
            name,
            int_at(o, "status.desiredNumberScheduled").to_string(),
            int_at(o, "status.currentNumberScheduled").to_string(),
            int_at(o, "status.numberReady").to_string(),
            int_at(o, "status.updatedNumberScheduled").to_string(),
            int_at(o, "status.numberAvailable").to_string(),
            labels_string(at(o, "spec.template.spec.nodeSelector")),
            cx.age(o),
        ],
        "StatefulSet" => vec![
            name,
            format!("{}/{}", int_at(o, "status.readyReplicas"), int_at(o, "spec.replicas")),
            cx.age(o),
        ],
        "Service" => vec![
            name,
            str_at(o, "spec.type").to_string(),
            or_none(str_at(o, "spec.clusterIP")),
            service_external_ip(o),
            service_ports(o),
            cx.age(o),
        ],
        "Endpoints" => vec![name, endpoints_string(o), cx.age(o)],
        "Node" => vec![
            name,
            node_status(o),
            node_roles(o),
            cx.age(o),
            str_at(o, "status.nodeInfo.kubeletVersion").to_string(),
        ],
        "Namespace" => vec![name, str_at(o, "status.phase").to_string(), cx.age(o)],
        "ConfigMap" => {
            vec![name, (map_len(o, "data") + map_len(o, "binaryData")).to_string(), cx.age(o)]
        }
        "Secret" => {
            let mut keys: Vec<&String> = Vec::new();
            for field in ["data", "stringData"] {
                if let Some(m) = at(o, field).as_object() {
                    keys.extend(m.keys());
                }
            }
            keys.sort();
            keys.dedup();
            vec![name, str_at(o, "type").to_string(), keys.len().to_string(), cx.age(o)]
        }
        "ServiceAccount" => vec![name, list_at(o, "secrets").len().to_string(), cx.age(o)],
        "Job" => job(o, cx),
        "CronJob" => vec![
            name,
            str_at(o, "spec.schedule").to_string(),
            or_none(str_at(o, "spec.timeZone")),
            if at(o, "spec.suspend").as_bool().unwrap_or(false) { "True" } else { "False" }.to_string(),
            list_at(o, "status.active").len().to_string(),
            match str_at(o, "status.lastScheduleTime") {
                "" => "<none>".to_string(),
                ts => age::since(ts, cx.now),
            },
            cx.age(o),
        ],
        "Event" => return event(o, cx),
        "Lease" => vec![name, str_at(o, "spec.holderIdentity").to_string(), cx.age(o)],
        _ => vec![name, cx.age(o)],
    };
    if cx.wide {
        row.extend(wide_cells(kind, o));
    }
    row
}

fn wide_cells(kind: &str, o: &Value) -> Vec<String> {
    let template_containers = |path: &str| -> (String, String) {
        let cs = list_at(o, path);
        let names: Vec<&str> = cs.iter().map(|c| str_at(c, "name")).collect();
        let images: Vec<&str> = cs.iter().map(|c| str_at(c, "image")).collect();
        (names.join(","), images.join(","))
    };
    match kind {
        "Pod" => {
            let mut ip = list_at(o, "status.podIPs").first().map(|p| str_at(p, "ip")).unwrap_or("");
            if ip.is_empty() {
                ip = str_at(o, "status.podIP");
            }
            let gates = list_at(o, "spec.readinessGates");
            let readiness = if gates.is_empty() {
                "<none>".to_string()
            } else {
                let conditions = list_at(o, "status.conditions");
                let ok = gates
                    .iter()
                    .filter(|g| {
                        conditions.iter().any(|c| {
                            str_at(c, "type") == str_at(g, "conditionType") && str_at(c, "status") == "True"
                        })
                    })
                    .count();
                format!("{ok}/{}", gates.len())
            };
            vec![
                or_none(ip),
                or_none(str_at(o, "spec.nodeName")),
                or_none(str_at(o, "status.nominatedNodeName")),
                readiness,
            ]
        }
        "Deployment" | "ReplicaSet" | "DaemonSet" | "Job" => {
            let (names, images) = template_containers("spec.template.spec.containers");
            vec![names, images, selector_string(at(o, "spec.selector"))]
        }
        "StatefulSet" => {
            let (names, images) = template_containers("spec.template.spec.containers");
            vec![names, images]
        }
        "CronJob" => {
            let (names, images) = template_containers("spec.jobTemplate.spec.template.spec.containers");
            vec![names, images, selector_string(at(o, "spec.jobTemplate.spec.selector"))]
        }
        "Service" => vec![labels_string(at(o, "spec.selector"))],
        "Node" => {
            let addr = |ty: &str| {
                or_none(
                    list_at(o, "status.addresses")
                        .iter()
                        .filter(|a| str_at(a, "type") == ty)
                        .map(|a| str_at(a, "address"))
                        .collect::<Vec<_>>()
                        .join(","),
                )
            };
            vec![
                addr("InternalIP"),
                addr("ExternalIP"),
                or_none(str_at(o, "status.nodeInfo.osImage")),
                or_none(str_at(o, "status.nodeInfo.kernelVersion")),
                or_none(str_at(o, "status.nodeInfo.containerRuntimeVersion")),
            ]
        }
        _ => Vec::new(),
    }
}

/// kubectl's pod row: READY, STATUS (its reason logic) and RESTARTS.
fn pod(o: &Value, cx: &RowContext) -> Vec<String> {
    let phase = str_at(o, "status.phase");
    let mut reason = if str_at(o, "status.reason").is_empty() {
        phase.to_string()
    } else {
        str_at(o, "status.reason").into()
    };
    let conditions = list_at(o, "status.conditions");
    if conditions
        .iter()
        .any(|c| str_at(c, "type") == "PodScheduled" && str_at(c, "reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }
    let total = list_at(o, "spec.containers").len();
    let mut ready = 0;
    let mut restarts = Restarts::default();
    let init_specs = list_at(o, "spec.initContainers");
    let mut initializing = false;
    for (i, c) in list_at(o, "status.initContainerStatuses").iter().enumerate() {
        restarts.note(c);
        let terminated = at(c, "state.terminated");
        let waiting_reason = str_at(c, "state.waiting.reason");
        if !terminated.is_null() && int_at(terminated, "exitCode") == 0 {
            continue;
        }
        if !terminated.is_null() {
            reason = match str_at(terminated, "reason") {
                "" if int_at(terminated, "signal") != 0 => {
                    format!("Init:Signal:{}", int_at(terminated, "signal"))
                }
                "" => format!("Init:ExitCode:{}", int_at(terminated, "exitCode")),
                r => format!("Init:{r}"),
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }
    let initialized =
        conditions.iter().any(|c| str_at(c, "type") == "Initialized" && str_at(c, "status") == "True");

    if !initializing || initialized {
        restarts = Restarts::default();
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
            } else if at(c, "ready").as_bool().unwrap_or(false) && !at(c, "state.running").is_null() {
                has_running = true;
                ready += 1;
            }
        }
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
    if reason.is_empty() {
        reason = "Pending".to_string();
    }
    let restarts_cell = match restarts.last {
        Some(t) if restarts.count != 0 => {
            let ago = cx.now.duration_since(t).map(age::human_duration).unwrap_or_else(|_| "0s".into());
            format!("{} ({ago} ago)", restarts.count)
        }
        _ => restarts.count.to_string(),
    };
    vec![str_at(o, "metadata.name").to_string(), format!("{ready}/{total}"), reason, restarts_cell, cx.age(o)]
}

/// Container restarts and when the last one happened.
#[derive(Default)]
struct Restarts {
    count: i64,
    last: Option<SystemTime>,
}

impl Restarts {
    fn note(&mut self, container_status: &Value) {
        self.count += int_at(container_status, "restartCount");
        if let Some(t) = age::parse_timestamp(str_at(container_status, "lastState.terminated.finishedAt"))
            && self.last.is_none_or(|l| l < t)
        {
            self.last = Some(t);
        }
    }
}

/// EXTERNAL-IP of a service (kubectl's `getServiceExternalIP`).
fn service_external_ip(o: &Value) -> String {
    let external: Vec<&str> = list_at(o, "spec.externalIPs").iter().filter_map(Value::as_str).collect();
    match str_at(o, "spec.type") {
        "ExternalName" => str_at(o, "spec.externalName").to_string(),
        "LoadBalancer" => {
            let mut ips: Vec<&str> = list_at(o, "status.loadBalancer.ingress")
                .iter()
                .map(|i| if str_at(i, "ip").is_empty() { str_at(i, "hostname") } else { str_at(i, "ip") })
                .filter(|s| !s.is_empty())
                .collect();
            ips.extend(external);
            if ips.is_empty() { "<pending>".to_string() } else { ips.join(",") }
        }
        _ => or_none(external.join(",")),
    }
}

/// PORT(S) of a service: `80/TCP`, `80:30080/TCP`.
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
                    0 => format!("{}/{protocol}", int_at(p, "port")),
                    node_port => format!("{}:{node_port}/{protocol}", int_at(p, "port")),
                }
            })
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// ENDPOINTS of an Endpoints object: up to three `ip:port`, then `+ N more...`.
fn endpoints_string(o: &Value) -> String {
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut count = 0;
    for subset in list_at(o, "subsets") {
        let addresses = list_at(subset, "addresses");
        let ports = list_at(subset, "ports");
        if ports.is_empty() {
            count += addresses.len();
            list.extend(addresses.iter().map(|a| str_at(a, "ip").to_string()));
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                let ip = str_at(a, "ip");
                let p = int_at(port, "port");
                list.push(if ip.contains(':') { format!("[{ip}]:{p}") } else { format!("{ip}:{p}") });
            }
        }
    }
    if list.is_empty() {
        return "<none>".to_string();
    }
    if count > MAX {
        list.truncate(MAX);
        return format!("{} + {} more...", list.join(","), count - MAX);
    }
    list.join(",")
}

fn node_status(o: &Value) -> String {
    let mut status = match list_at(o, "status.conditions").iter().find(|c| str_at(c, "type") == "Ready") {
        Some(c) if str_at(c, "status") == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if at(o, "spec.unschedulable").as_bool().unwrap_or(false) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_roles(o: &Value) -> String {
    let mut roles: Vec<String> = Vec::new();
    if let Some(labels) = at(o, "metadata.labels").as_object() {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role.to_string());
                }
            } else if k == "kubernetes.io/role"
                && let Some(v) = v.as_str().filter(|v| !v.is_empty())
            {
                roles.push(v.to_string());
            }
        }
    }
    roles.sort();
    roles.dedup();
    or_none(roles.join(","))
}

fn job(o: &Value, cx: &RowContext) -> Vec<String> {
    let succeeded = int_at(o, "status.succeeded");
    let completions = match at(o, "spec.completions").as_i64() {
        Some(c) => format!("{succeeded}/{c}"),
        None => match int_at(o, "spec.parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = str_at(o, "status.startTime");
    let duration = match (start, str_at(o, "status.completionTime")) {
        ("", _) => String::new(),
        (s, "") => age::since(s, cx.now),
        (s, e) => age::between(s, e).unwrap_or_default(),
    };
    let has = |ty: &str| {
        list_at(o, "status.conditions")
            .iter()
            .any(|c| str_at(c, "type") == ty && str_at(c, "status") == "True")
    };
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if !str_at(o, "metadata.deletionTimestamp").is_empty() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    vec![str_at(o, "metadata.name").to_string(), status.to_string(), completions, duration, cx.age(o)]
}

fn event(o: &Value, cx: &RowContext) -> Vec<String> {
    let since_or = |primary: &str, fallback: &str| {
        let ts = if primary.is_empty() { fallback } else { primary };
        age::since(ts, cx.now)
    };
    let first = since_or(str_at(o, "firstTimestamp"), str_at(o, "eventTime"));
    let mut last = match str_at(o, "lastTimestamp") {
        "" => first.clone(),
        ts => age::since(ts, cx.now),
    };
    let mut count = int_at(o, "count");
    if !at(o, "series").is_null() {
        last = age::since(str_at(o, "series.lastObservedTime"), cx.now);
        count = int_at(o, "series.count");
    } else if count == 0 {
        count = 1;
    }
    let involved_kind = str_at(o, "involvedObject.kind").to_ascii_lowercase();
    let target = match str_at(o, "involvedObject.name") {
        "" => involved_kind,
        name => format!("{involved_kind}/{name}"),
    };
    let message = str_at(o, "message").trim().to_string();
    if cx.wide {
        let component = str_at(o, "source.component");
        let component = if component.is_empty() { str_at(o, "reportingComponent") } else { component };
        let host = str_at(o, "source.host");
        let host = if host.is_empty() { str_at(o, "reportingInstance") } else { host };
        let source = match (component, host) {
            (c, "") => c.to_string(),
            (c, h) => format!("{c}, {h}"),
        };
        return vec![
            last,
            str_at(o, "type").to_string(),
            str_at(o, "reason").to_string(),
            target,
            str_at(o, "involvedObject.fieldPath").to_string(),
            source,
            message,
            first,
            count.to_string(),
            str_at(o, "metadata.name").to_string(),
        ];
    }
    vec![last, str_at(o, "type").to_string(), str_at(o, "reason").to_string(), target, message]
}
