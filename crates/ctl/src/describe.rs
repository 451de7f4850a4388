//! `navctl describe`: kubectl-like sections (Name, Namespace, Labels, Annotations, kind-specific
//! fields) and the object's Events; LimitRanges and ResourceQuotas in their own table shapes
//! ([`limit_range`], [`quota`]), PriorityClasses with kubectl's fields ([`priority_class`]).

mod limit_range;
mod priority_class;
mod quota;

use std::time::SystemTime;

use navarch_api::table_columns::{age, at, int_at, labels_string, list_at, selector_string, str_at};
use navarch_api::{Object, kind_info};
use navarch_client::ListParams;
use serde_json::Value;

use crate::apply::LAST_APPLIED;
use crate::cli::DescribeArgs;
use crate::context::{Context, Outcome, emit};
use crate::errors;
use crate::kinds;
use crate::printers::table::Table;

pub async fn run(ctx: &Context, args: &DescribeArgs) -> anyhow::Result<Outcome> {
    let selections = kinds::parse_args(&args.resources)?;
    let mut failed = false;
    let mut first = true;
    for sel in selections {
        let objects = if sel.names.is_empty() {
            let namespace = if args.all_namespaces { String::new() } else { ctx.namespace().to_string() };
            let p = ListParams {
                namespace: namespace.clone(),
                label_selector: args.selector.clone().unwrap_or_default(),
                ..Default::default()
            };
            let (objects, _) = ctx.list(sel.kind, &p, 500).await?;
            if objects.is_empty() {
                let ns = (!args.all_namespaces).then_some(namespace.as_str());
                eprintln!("{}", crate::printers::no_resources_message(sel.kind, ns));
            }
            objects
        } else {
            let mut objects = Vec::new();
            for name in &sel.names {
                match ctx.get(sel.kind, ctx.namespace(), name).await {
                    Ok(o) => objects.push(o),
                    Err(e) if e.downcast_ref::<errors::ServerError>().is_some() => {
                        crate::report(&e);
                        failed = true;
                    }
                    Err(e) => return Err(e),
                }
            }
            objects
        };
        for o in objects {
            let events = events_for(ctx, &o).await?;
            let pods = pods_for(ctx, &o).await?;
            if !first {
                emit("\n\n");
            }
            first = false;
            emit(&describe(&o, events.as_deref(), &pods, SystemTime::now()));
        }
    }
    Ok(Outcome::from_failed(failed))
}

/// The pods a StatefulSet controls (kubectl counts their phases); none for other kinds.
async fn pods_for(ctx: &Context, o: &Object) -> anyhow::Result<Vec<Value>> {
    let (Object::StatefulSet(_), Some(pod_kind)) = (o, kind_info("Pod")) else { return Ok(Vec::new()) };
    let v = crate::printers::to_value(o);
    let selector = map_lines(at(&v, "spec.selector.matchLabels"), "=", &[]).join(",");
    let meta = o.meta();
    let p = ListParams { namespace: meta.namespace.clone(), label_selector: selector, ..Default::default() };
    let (pods, _) = ctx.list(pod_kind, &p, 500).await?;
    Ok(pods
        .iter()
        .filter(|p| p.meta().owner_references.iter().any(|r| r.controller == Some(true) && r.uid == meta.uid))
        .map(crate::printers::to_value)
        .collect())
}

/// The events about `o`, oldest first; `None` when the server has no Event kind.
async fn events_for(ctx: &Context, o: &Object) -> anyhow::Result<Option<Vec<Value>>> {
    let Some(event_kind) = kind_info("Event").filter(|k| k.kind == "Event") else { return Ok(None) };
    if o.kind() == "Event" {
        return Ok(None);
    }
    let meta = o.meta();
    let namespace = if meta.namespace.is_empty() { "default".to_string() } else { meta.namespace.clone() };
    let selector = format!("involvedObject.name={},involvedObject.kind={}", meta.name, o.kind());
    let p = ListParams { namespace: namespace.clone(), field_selector: selector, ..Default::default() };
    let events = match ctx.list(event_kind, &p, 500).await {
        Ok((events, _)) => events,
        // The server does not support these field selectors: filter here.
        Err(e) if e.downcast_ref::<errors::ServerError>().is_some() => {
            let p = ListParams { namespace, ..Default::default() };
            ctx.list(event_kind, &p, 500).await?.0
        }
        Err(e) => return Err(e),
    };
    let mut events: Vec<Value> = events
        .iter()
        .map(crate::printers::to_value)
        .filter(|e| {
            str_at(e, "involvedObject.name") == meta.name
                && str_at(e, "involvedObject.kind") == o.kind()
                && (str_at(e, "involvedObject.uid").is_empty() || str_at(e, "involvedObject.uid") == meta.uid)
        })
        .collect();
    events.sort_by_key(|e| last_seen(e).to_string());
    Ok(Some(events))
}

fn last_seen(e: &Value) -> &str {
    for path in ["lastTimestamp", "series.lastObservedTime", "eventTime", "firstTimestamp"] {
        let ts = str_at(e, path);
        if !ts.is_empty() {
            return ts;
        }
    }
    str_at(e, "metadata.creationTimestamp")
}

/// The lines of a description: `Key:  value` aligned per indentation level, or free text.
#[derive(Default)]
pub(crate) struct Description {
    lines: Vec<(usize, String, Vec<String>)>,
}

const NONE: &str = "<none>";

impl Description {
    pub(crate) fn field(&mut self, indent: usize, key: &str, value: impl Into<String>) {
        self.lines.push((indent, format!("{key}:"), vec![value.into()]));
    }
    fn multi(&mut self, indent: usize, key: &str, values: Vec<String>) {
        let values = if values.is_empty() { vec![NONE.to_string()] } else { values };
        self.lines.push((indent, format!("{key}:"), values));
    }
    pub(crate) fn text(&mut self, indent: usize, text: impl Into<String>) {
        self.lines.push((indent, text.into(), Vec::new()));
    }

    fn render(&self) -> String {
        let mut widths: std::collections::BTreeMap<usize, usize> = Default::default();
        for (indent, key, values) in &self.lines {
            if !values.is_empty() {
                let w = widths.entry(*indent).or_default();
                *w = (*w).max(key.chars().count() + 2);
            }
        }
        let mut out = String::new();
        for (indent, key, values) in &self.lines {
            let pad = " ".repeat(*indent);
            if values.is_empty() {
                out.push_str(&format!("{pad}{key}\n"));
                continue;
            }
            let width = widths[indent];
            for (i, v) in values.iter().enumerate() {
                let head = if i == 0 { key.as_str() } else { "" };
                let line = format!("{pad}{head:<width$}{v}");
                out.push_str(line.trim_end());
                out.push('\n');
            }
        }
        out
    }
}

/// kubectl's timestamp format in describe: `Wed, 01 May 2024 10:00:00 +0000`.
pub fn describe_time(ts: &str) -> String {
    let Some(t) = age::parse_timestamp(ts) else {
        return if ts.is_empty() { NONE.to_string() } else { ts.to_string() };
    };
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = secs / 86400;
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let canonical = humantime::format_rfc3339_seconds(t).to_string(); // 2024-05-01T10:00:00Z
    let month: usize = canonical[5..7].parse().unwrap_or(1);
    format!(
        "{}, {} {} {} {} +0000",
        WEEKDAYS[(days % 7) as usize],
        &canonical[8..10],
        MONTHS[month.clamp(1, 12) - 1],
        &canonical[0..4],
        &canonical[11..19]
    )
}

/// `containerPort` → `Container Port`, `podIP` → `Pod IP`.
fn title(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if i == 0 {
            out.extend(c.to_uppercase());
            continue;
        }
        let prev = chars[i - 1];
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        if c.is_uppercase() && (prev.is_lowercase() || (prev.is_uppercase() && next_lower)) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Renders any JSON value as nested `Key: value` lines.
fn generic(d: &mut Description, indent: usize, key: &str, v: &Value) {
    match v {
        Value::Null => {}
        Value::Object(m) if m.is_empty() => {}
        Value::Array(a) if a.is_empty() => {}
        Value::Object(m) => {
            d.text(indent, format!("{}:", title(key)));
            for (k, v) in m {
                generic(d, indent + 2, k, v);
            }
        }
        Value::Array(a) if a.iter().all(|x| scalar(x).is_some()) => {
            d.field(indent, &title(key), a.iter().filter_map(scalar).collect::<Vec<_>>().join(", "));
        }
        Value::Array(a) => {
            d.text(indent, format!("{}:", title(key)));
            for item in a {
                match (item.get("name").and_then(Value::as_str), item.as_object()) {
                    (Some(name), Some(m)) => {
                        d.text(indent + 2, format!("{name}:"));
                        for (k, v) in m.iter().filter(|(k, _)| *k != "name") {
                            generic(d, indent + 4, k, v);
                        }
                    }
                    (None, Some(m)) => {
                        for (i, (k, v)) in m.iter().enumerate() {
                            let bullet = if i == 0 { "- " } else { "  " };
                            match scalar(v) {
                                Some(s) => d.text(indent + 2, format!("{bullet}{}: {s}", title(k))),
                                None => generic(d, indent + 2, k, v),
                            }
                        }
                    }
                    _ => d.text(indent + 2, scalar(item).unwrap_or_default()),
                }
            }
        }
        other => d.field(indent, &title(key), scalar(other).unwrap_or_default()),
    }
}

fn map_lines(v: &Value, sep: &str, skip: &[&str]) -> Vec<String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .map(|(k, v)| format!("{k}{sep}{}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

fn common(d: &mut Description, o: &Value, namespaced: bool) {
    d.field(0, "Name", str_at(o, "metadata.name"));
    if namespaced {
        d.field(0, "Namespace", str_at(o, "metadata.namespace"));
    }
    d.multi(0, "Labels", map_lines(at(o, "metadata.labels"), "=", &[]));
    d.multi(0, "Annotations", map_lines(at(o, "metadata.annotations"), ": ", &[LAST_APPLIED]));
    d.field(0, "CreationTimestamp", describe_time(str_at(o, "metadata.creationTimestamp")));
    if let Some(owner) =
        list_at(o, "metadata.ownerReferences").iter().find(|r| at(r, "controller").as_bool().unwrap_or(false))
    {
        d.field(0, "Controlled By", format!("{}/{}", str_at(owner, "kind"), str_at(owner, "name")));
    }
    if !str_at(o, "metadata.deletionTimestamp").is_empty() {
        d.field(0, "Deletion Requested", describe_time(str_at(o, "metadata.deletionTimestamp")));
    }
}

fn container_state(d: &mut Description, indent: usize, key: &str, state: &Value) {
    let Some((name, detail)) = state.as_object().and_then(|m| m.iter().next()) else { return };
    d.field(indent, key, title(name));
    for (k, v) in detail.as_object().into_iter().flatten() {
        let value = match k.as_str() {
            "startedAt" | "finishedAt" => describe_time(v.as_str().unwrap_or_default()),
            _ => scalar(v).unwrap_or_default(),
        };
        d.field(indent + 2, &title(k), value);
    }
}

fn containers(d: &mut Description, indent: usize, heading: &str, specs: &[Value], statuses: &[Value]) {
    if specs.is_empty() {
        return;
    }
    d.text(indent, format!("{heading}:"));
    for c in specs {
        let name = str_at(c, "name");
        d.text(indent + 2, format!("{name}:"));
        let i = indent + 4;
        d.field(i, "Image", str_at(c, "image"));
        let ports: Vec<String> = list_at(c, "ports")
            .iter()
            .map(|p| {
                let proto = match str_at(p, "protocol") {
                    "" => "TCP",
                    p => p,
                };
                format!("{}/{proto}", int_at(p, "containerPort"))
            })
            .collect();
        d.field(i, "Port", if ports.is_empty() { NONE.to_string() } else { ports.join(", ") });
        for (key, path) in [("Command", "command"), ("Args", "args")] {
            let parts: Vec<String> = list_at(c, path).iter().filter_map(scalar).collect();
            if !parts.is_empty() {
                d.multi(i, key, parts);
            }
        }
        if let Some(st) = statuses.iter().find(|s| str_at(s, "name") == name) {
            container_state(d, i, "State", at(st, "state"));
            container_state(d, i, "Last State", at(st, "lastState"));
            d.field(i, "Ready", if at(st, "ready").as_bool().unwrap_or(false) { "True" } else { "False" });
            d.field(i, "Restart Count", int_at(st, "restartCount").to_string());
        }
        for (key, path) in [("Limits", "resources.limits"), ("Requests", "resources.requests")] {
            let lines = map_lines(at(c, path), ": ", &[]);
            if !lines.is_empty() {
                d.text(i, format!("{key}:"));
                for l in lines {
                    d.text(i + 2, l);
                }
            }
        }
        let env: Vec<String> = list_at(c, "env")
            .iter()
            .map(|e| match at(e, "value") {
                Value::String(v) => format!("{}: {v}", str_at(e, "name")),
                _ => format!("{}: (from {})", str_at(e, "name"), "valueFrom"),
            })
            .collect();
        if env.is_empty() {
            d.field(i, "Environment", NONE);
        } else {
            d.text(i, "Environment:");
            for l in env {
                d.text(i + 2, l);
            }
        }
    }
}

fn conditions(d: &mut Description, o: &Value, path: &str, with_reason: bool) {
    let conds = list_at(o, path);
    if conds.is_empty() {
        return;
    }
    d.text(0, "Conditions:");
    let mut rows = vec![if with_reason {
        vec!["Type".to_string(), "Status".into(), "Reason".into()]
    } else {
        vec!["Type".to_string(), "Status".into()]
    }];
    rows.push(rows[0].iter().map(|h| "-".repeat(h.len())).collect());
    for c in conds {
        let mut row = vec![str_at(c, "type").to_string(), str_at(c, "status").to_string()];
        if with_reason {
            row.push(str_at(c, "reason").to_string());
        }
        rows.push(row);
    }
    for line in Table::new().format(&rows).lines() {
        d.text(2, line.trim_end());
    }
}

fn pod_template(d: &mut Description, t: &Value) {
    d.text(0, "Pod Template:");
    d.multi(2, "Labels", map_lines(at(t, "metadata.labels"), "=", &[]));
    containers(d, 2, "Init Containers", list_at(t, "spec.initContainers"), &[]);
    containers(d, 2, "Containers", list_at(t, "spec.containers"), &[]);
}

/// kubectl's `describeStatefulSet` lines (`pods`: the pods it controls).
fn statefulset(d: &mut Description, o: &Value, pods: &[Value]) {
    d.field(0, "Selector", selector_string(at(o, "spec.selector")));
    d.field(
        0,
        "Replicas",
        format!("{} desired | {} total", int_at(o, "spec.replicas"), int_at(o, "status.replicas")),
    );
    d.field(0, "Update Strategy", str_at(o, "spec.updateStrategy.type"));
    let ru = at(o, "spec.updateStrategy.rollingUpdate");
    if let Some(partition) = scalar(at(ru, "partition")) {
        d.field(2, "Partition", partition);
        if let Some(max) = scalar(at(ru, "maxUnavailable")) {
            d.field(2, "MaxUnavailable", max);
        }
    }
    let count = |phase: &str| pods.iter().filter(|p| str_at(p, "status.phase") == phase).count();
    d.field(
        0,
        "Pods Status",
        format!(
            "{} Running / {} Waiting / {} Succeeded / {} Failed",
            count("Running"),
            count("Pending"),
            count("Succeeded"),
            count("Failed")
        ),
    );
    pod_template(d, at(o, "spec.template"));
    let templates = list_at(o, "spec.volumeClaimTemplates");
    if templates.is_empty() {
        d.field(0, "Volume Claims", NONE);
        return;
    }
    d.text(0, "Volume Claims:");
    for t in templates {
        d.field(2, "Name", str_at(t, "metadata.name"));
        d.field(2, "StorageClass", str_at(t, "spec.storageClassName"));
        d.multi(2, "Labels", map_lines(at(t, "metadata.labels"), "=", &[]));
        d.multi(2, "Annotations", map_lines(at(t, "metadata.annotations"), "=", &[]));
        let capacity = scalar(at(t, "spec.resources.requests.storage")).unwrap_or_else(|| "<default>".into());
        d.field(2, "Capacity", capacity);
        let modes: Vec<&str> = list_at(t, "spec.accessModes").iter().filter_map(Value::as_str).collect();
        d.field(2, "Access Modes", format!("[{}]", modes.join(" ")));
    }
}

fn kind_specific(d: &mut Description, kind: &str, o: &Value, pods: &[Value]) {
    match kind {
        "HorizontalPodAutoscaler" => crate::describe_autoscaling::horizontal_pod_autoscaler(d, o),
        "Pod" => {
            d.field(0, "Service Account", str_at(o, "spec.serviceAccountName"));
            let node = match (str_at(o, "spec.nodeName"), str_at(o, "status.hostIP")) {
                ("", _) => NONE.to_string(),
                (n, "") => n.to_string(),
                (n, ip) => format!("{n}/{ip}"),
            };
            d.field(0, "Node", node);
            if !str_at(o, "status.startTime").is_empty() {
                d.field(0, "Start Time", describe_time(str_at(o, "status.startTime")));
            }
            let status = if str_at(o, "metadata.deletionTimestamp").is_empty() {
                str_at(o, "status.phase")
            } else {
                "Terminating"
            };
            d.field(0, "Status", if status.is_empty() { "Pending" } else { status });
            if !str_at(o, "status.reason").is_empty() {
                d.field(0, "Reason", str_at(o, "status.reason"));
            }
            if !str_at(o, "status.message").is_empty() {
                d.field(0, "Message", str_at(o, "status.message"));
            }
            d.field(0, "IP", str_at(o, "status.podIP"));
            let statuses = list_at(o, "status.containerStatuses");
            containers(
                d,
                0,
                "Init Containers",
                list_at(o, "spec.initContainers"),
                list_at(o, "status.initContainerStatuses"),
            );
            containers(d, 0, "Containers", list_at(o, "spec.containers"), statuses);
            conditions(d, o, "status.conditions", false);
            d.multi(0, "Node-Selectors", map_lines(at(o, "spec.nodeSelector"), "=", &[]));
            let tolerations: Vec<String> = list_at(o, "spec.tolerations")
                .iter()
                .map(|t| {
                    let mut s = str_at(t, "key").to_string();
                    if !str_at(t, "value").is_empty() {
                        s.push_str(&format!("={}", str_at(t, "value")));
                    }
                    if !str_at(t, "effect").is_empty() {
                        s.push_str(&format!(":{}", str_at(t, "effect")));
                    }
                    if str_at(t, "operator") == "Exists" && s.is_empty() {
                        s = "op=Exists".into();
                    }
                    s
                })
                .collect();
            d.multi(0, "Tolerations", tolerations);
        }
        "Deployment" => {
            d.field(0, "Selector", selector_string(at(o, "spec.selector")));
            let desired = int_at(o, "spec.replicas");
            d.field(
                0,
                "Replicas",
                format!(
                    "{desired} desired | {} updated | {} total | {} available | {} unavailable",
                    int_at(o, "status.updatedReplicas"),
                    int_at(o, "status.replicas"),
                    int_at(o, "status.availableReplicas"),
                    int_at(o, "status.unavailableReplicas"),
                ),
            );
            d.field(0, "StrategyType", str_at(o, "spec.strategy.type"));
            d.field(0, "MinReadySeconds", int_at(o, "spec.minReadySeconds").to_string());
            if str_at(o, "spec.strategy.type") == "RollingUpdate" {
                let ru = at(o, "spec.strategy.rollingUpdate");
                let v = |k: &str| scalar(at(ru, k)).unwrap_or_else(|| "25%".into());
                d.field(
                    0,
                    "RollingUpdateStrategy",
                    format!("{} max unavailable, {} max surge", v("maxUnavailable"), v("maxSurge")),
                );
            }
            pod_template(d, at(o, "spec.template"));
            conditions(d, o, "status.conditions", true);
        }
        "DaemonSet" => {
            d.field(0, "Selector", selector_string(at(o, "spec.selector")));
            let node_selector = labels_string(at(o, "spec.template.spec.nodeSelector"));
            d.field(
                0,
                "Node-Selector",
                if node_selector.is_empty() { NONE.to_string() } else { node_selector },
            );
            let count = |k: &str| int_at(o, &format!("status.{k}")).to_string();
            d.field(0, "Desired Number of Nodes Scheduled", count("desiredNumberScheduled"));
            d.field(0, "Current Number of Nodes Scheduled", count("currentNumberScheduled"));
            d.field(0, "Number of Nodes Scheduled with Up-to-date Pods", count("updatedNumberScheduled"));
            d.field(0, "Number of Nodes Scheduled with Available Pods", count("numberAvailable"));
            d.field(0, "Number of Nodes Misscheduled", count("numberMisscheduled"));
            d.field(
                0,
                "Pods Status",
                format!(
                    "{} Ready / {} Unavailable",
                    int_at(o, "status.numberReady"),
                    int_at(o, "status.numberUnavailable")
                ),
            );
            pod_template(d, at(o, "spec.template"));
            conditions(d, o, "status.conditions", true);
        }
        "Job" => {
            let unset = |v: &Value| scalar(v).unwrap_or_else(|| "<unset>".into());
            d.field(0, "Selector", selector_string(at(o, "spec.selector")));
            d.field(0, "Parallelism", unset(at(o, "spec.parallelism")));
            d.field(0, "Completions", unset(at(o, "spec.completions")));
            d.field(0, "Completion Mode", str_at(o, "spec.completionMode"));
            let suspend = at(o, "spec.suspend").as_bool().unwrap_or(false);
            d.field(0, "Suspend", suspend.to_string());
            d.field(0, "Backoff Limit", unset(at(o, "spec.backoffLimit")));
            let started = str_at(o, "status.startTime");
            if !started.is_empty() {
                d.field(0, "Start Time", describe_time(started));
            }
            let completed = str_at(o, "status.completionTime");
            if !completed.is_empty() {
                d.field(0, "Completed At", describe_time(completed));
            }
            if !at(o, "spec.activeDeadlineSeconds").is_null() {
                d.field(
                    0,
                    "Active Deadline Seconds",
                    format!("{}s", unset(at(o, "spec.activeDeadlineSeconds"))),
                );
            }
            d.field(
                0,
                "Pods Statuses",
                format!(
                    "{} Active ({} Ready) / {} Succeeded / {} Failed",
                    int_at(o, "status.active"),
                    int_at(o, "status.ready"),
                    int_at(o, "status.succeeded"),
                    int_at(o, "status.failed")
                ),
            );
            if str_at(o, "spec.completionMode") == "Indexed" {
                let done = str_at(o, "status.completedIndexes");
                d.field(0, "Completed Indexes", if done.is_empty() { "<none>" } else { done });
            }
            pod_template(d, at(o, "spec.template"));
            conditions(d, o, "status.conditions", true);
        }
        "StatefulSet" => statefulset(d, o, pods),
        "ReplicaSet" | "ReplicationController" => {
            let selector = if kind == "ReplicationController" {
                labels_string(at(o, "spec.selector"))
            } else {
                selector_string(at(o, "spec.selector"))
            };
            d.field(0, "Selector", selector);
            d.field(
                0,
                "Replicas",
                format!("{} current / {} desired", int_at(o, "status.replicas"), int_at(o, "spec.replicas")),
            );
            if let Some(status) = at(o, "status").as_object() {
                let line: Vec<String> = status
                    .iter()
                    .filter_map(|(k, v)| v.as_i64().map(|n| format!("{n} {}", title(k))))
                    .collect();
                if !line.is_empty() {
                    d.field(0, "Pods Status", line.join(" / "));
                }
            }
            pod_template(d, at(o, "spec.template"));
            conditions(d, o, "status.conditions", true);
        }
        "CronJob" => {
            let unset = |v: &Value| scalar(v).unwrap_or_else(|| "<unset>".into());
            d.field(0, "Schedule", str_at(o, "spec.schedule"));
            if let Some(tz) = at(o, "spec.timeZone").as_str() {
                d.field(0, "Time Zone", tz);
            }
            d.field(0, "Concurrency Policy", str_at(o, "spec.concurrencyPolicy"));
            let suspend = at(o, "spec.suspend").as_bool().unwrap_or(false);
            d.field(0, "Suspend", if suspend { "True" } else { "False" });
            d.field(0, "Successful Job History Limit", unset(at(o, "spec.successfulJobsHistoryLimit")));
            d.field(0, "Failed Job History Limit", unset(at(o, "spec.failedJobsHistoryLimit")));
            d.field(0, "Starting Deadline Seconds", unset(at(o, "spec.startingDeadlineSeconds")));
            let job = at(o, "spec.jobTemplate.spec");
            let selector = at(job, "selector");
            d.field(
                0,
                "Selector",
                if selector.is_null() { "<unset>".into() } else { selector_string(selector) },
            );
            d.field(0, "Parallelism", unset(at(job, "parallelism")));
            d.field(0, "Completions", unset(at(job, "completions")));
            if !at(job, "activeDeadlineSeconds").is_null() {
                d.field(
                    0,
                    "Active Deadline Seconds",
                    format!("{}s", unset(at(job, "activeDeadlineSeconds"))),
                );
            }
            pod_template(d, at(job, "template"));
            let last = str_at(o, "status.lastScheduleTime");
            d.field(
                0,
                "Last Schedule Time",
                if last.is_empty() { "<unset>".into() } else { describe_time(last) },
            );
            let active: Vec<&str> = list_at(o, "status.active").iter().map(|r| str_at(r, "name")).collect();
            d.field(0, "Active Jobs", if active.is_empty() { NONE.to_string() } else { active.join(", ") });
        }
        "Service" => {
            d.field(0, "Selector", labels_string(at(o, "spec.selector")));
            d.field(0, "Type", str_at(o, "spec.type"));
            d.field(0, "IP", str_at(o, "spec.clusterIP"));
            let ips: Vec<&str> = list_at(o, "spec.externalIPs").iter().filter_map(Value::as_str).collect();
            if !ips.is_empty() {
                d.field(0, "External IPs", ips.join(","));
            }
            for p in list_at(o, "spec.ports") {
                let proto = match str_at(p, "protocol") {
                    "" => "TCP",
                    p => p,
                };
                let name = match str_at(p, "name") {
                    "" => "<unset>",
                    n => n,
                };
                d.field(0, "Port", format!("{name}  {}/{proto}", int_at(p, "port")));
                let target = scalar(at(p, "targetPort")).unwrap_or_else(|| int_at(p, "port").to_string());
                d.field(0, "TargetPort", format!("{target}/{proto}"));
                if int_at(p, "nodePort") != 0 {
                    d.field(0, "NodePort", format!("{name}  {}/{proto}", int_at(p, "nodePort")));
                }
            }
            d.field(0, "Session Affinity", str_at(o, "spec.sessionAffinity"));
        }
        "ConfigMap" => {
            d.text(0, "");
            d.text(0, "Data");
            d.text(0, "====");
            for (k, v) in at(o, "data").as_object().into_iter().flatten() {
                d.text(0, format!("{k}:"));
                d.text(0, "----");
                d.text(0, v.as_str().unwrap_or_default());
                d.text(0, "");
            }
            d.text(0, "");
            d.text(0, "BinaryData");
            d.text(0, "====");
            for (k, v) in at(o, "binaryData").as_object().into_iter().flatten() {
                d.text(0, format!("{k}: {} bytes", v.as_str().unwrap_or_default().len() * 3 / 4));
            }
            d.text(0, "");
        }
        "Secret" => {
            d.text(0, "");
            d.field(0, "Type", str_at(o, "type"));
            d.text(0, "");
            d.text(0, "Data");
            d.text(0, "====");
            for (k, v) in at(o, "data").as_object().into_iter().flatten() {
                let encoded = v.as_str().unwrap_or_default().trim_end_matches('=');
                d.text(0, format!("{k}:  {} bytes", encoded.len() * 3 / 4));
            }
        }
        "Namespace" => {
            d.field(0, "Status", str_at(o, "status.phase"));
        }
        "Node" => {
            let taints: Vec<String> = list_at(o, "spec.taints")
                .iter()
                .map(|t| match str_at(t, "value") {
                    "" => format!("{}:{}", str_at(t, "key"), str_at(t, "effect")),
                    v => format!("{}={v}:{}", str_at(t, "key"), str_at(t, "effect")),
                })
                .collect();
            d.multi(0, "Taints", taints);
            let cordoned = at(o, "spec.unschedulable").as_bool().unwrap_or(false);
            d.field(0, "Unschedulable", if cordoned { "true" } else { "false" });
            let conds = list_at(o, "status.conditions");
            if !conds.is_empty() {
                d.text(0, "Conditions:");
                let mut rows = vec![
                    ["Type", "Status", "LastHeartbeatTime", "LastTransitionTime", "Reason", "Message"]
                        .map(String::from)
                        .to_vec(),
                ];
                rows.push(rows[0].iter().map(|h| "-".repeat(h.len())).collect());
                for c in conds {
                    rows.push(
                        ["type", "status", "lastHeartbeatTime", "lastTransitionTime", "reason", "message"]
                            .map(|k| str_at(c, k).to_string())
                            .to_vec(),
                    );
                }
                for line in Table::new().format(&rows).lines() {
                    d.text(2, line.trim_end());
                }
            }
            let addresses: Vec<String> = list_at(o, "status.addresses")
                .iter()
                .map(|a| format!("{}: {}", str_at(a, "type"), str_at(a, "address")))
                .collect();
            d.multi(0, "Addresses", addresses);
            for (key, path) in [("Capacity", "status.capacity"), ("Allocatable", "status.allocatable")] {
                let lines = map_lines(at(o, path), ": ", &[]);
                if !lines.is_empty() {
                    d.text(0, format!("{key}:"));
                    for l in lines {
                        d.text(2, l);
                    }
                }
            }
            d.field(0, "PodCIDR", str_at(o, "spec.podCIDR"));
        }
        _ => {
            for (k, v) in o.as_object().into_iter().flatten() {
                if !matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    generic(d, 0, k, v);
                }
            }
        }
    }
}

fn events_section(d: &mut Description, events: Option<&[Value]>, now: SystemTime) {
    let Some(events) = events else { return };
    if events.is_empty() {
        d.field(0, "Events", NONE);
        return;
    }
    d.text(0, "Events:");
    let mut rows = vec![["Type", "Reason", "Age", "From", "Message"].map(String::from).to_vec()];
    rows.push(rows[0].iter().map(|h| "-".repeat(h.len())).collect());
    for e in events {
        let count = int_at(e, "count").max(int_at(e, "series.count"));
        let last = age::since(last_seen(e), now);
        let age = if count > 1 {
            let first = match str_at(e, "firstTimestamp") {
                "" => str_at(e, "eventTime"),
                ts => ts,
            };
            format!("{last} (x{count} over {})", age::since(first, now))
        } else {
            last
        };
        let from = match str_at(e, "source.component") {
            "" => str_at(e, "reportingComponent"),
            c => c,
        };
        rows.push(vec![
            str_at(e, "type").to_string(),
            str_at(e, "reason").to_string(),
            age,
            from.to_string(),
            str_at(e, "message").trim().to_string(),
        ]);
    }
    for line in Table::new().format(&rows).lines() {
        d.text(2, line.trim_end());
    }
}

/// kubectl's `Pod Template:` section alone (`rollout history --revision`).
pub fn describe_pod_template(t: &Value) -> String {
    let mut d = Description::default();
    pod_template(&mut d, t);
    d.render()
}

/// The full description of one object (`pods`: those it controls, for the kinds whose description
/// counts them).
pub fn describe(o: &Object, events: Option<&[Value]>, pods: &[Value], now: SystemTime) -> String {
    let v = crate::printers::to_value(o);
    if let Object::LimitRange(_) = o {
        return limit_range::describe(&v);
    }
    // kubectl's quota description has no labels, annotations or events.
    if let Object::ResourceQuota(_) = o {
        return quota::describe(&v);
    }
    let mut d = Description::default();
    if let Object::PriorityClass(_) = o {
        priority_class::describe(&mut d, &v);
        events_section(&mut d, events, now);
        return d.render();
    }
    common(&mut d, &v, o.info().namespaced);
    kind_specific(&mut d, o.kind(), &v, pods);
    events_section(&mut d, events, now);
    d.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statefulset_description_like_kubectl() {
        let sts = navarch_api::manifest::parse(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web, namespace: default}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: web}}\n  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}\n  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: 'nginx:1'}]}}\n  volumeClaimTemplates: [{metadata: {name: data}, spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}]\nstatus: {replicas: 2}\n",
            "t",
        )
        .unwrap()
        .remove(0);
        let pods = [
            serde_json::json!({"status": {"phase": "Running"}}),
            serde_json::json!({"status": {"phase": "Pending"}}),
        ];
        let out = describe(&sts, Some(&[]), &pods, SystemTime::now());
        assert!(out.contains("Replicas:           3 desired | 2 total\n"), "{out}");
        assert!(out.contains("Update Strategy:    RollingUpdate\n  Partition:"), "{out}");
        assert!(
            out.contains("Pods Status:        1 Running / 1 Waiting / 0 Succeeded / 0 Failed\n"),
            "{out}"
        );
        assert!(out.contains("Volume Claims:\n  Name:"), "{out}");
        assert!(out.contains("Capacity:") && out.contains("1Gi") && out.contains("[ReadWriteOnce]"), "{out}");
    }

    #[test]
    fn titles() {
        assert_eq!(title("containerPort"), "Container Port");
        assert_eq!(title("podIP"), "Pod IP");
        assert_eq!(title("holderIdentity"), "Holder Identity");
        assert_eq!(title("leaseDurationSeconds"), "Lease Duration Seconds");
    }

    #[test]
    fn times() {
        assert_eq!(describe_time("2024-05-01T10:00:00Z"), "Wed, 01 May 2024 10:00:00 +0000");
        assert_eq!(describe_time(""), "<none>");
    }

    #[test]
    fn node_description_shows_taints_and_conditions() {
        let node = navarch_api::manifest::parse(
            "apiVersion: v1\nkind: Node\nmetadata: {name: n2}\nspec:\n  unschedulable: true\n  podCIDR: 10.244.1.0/24\n  taints: [{key: node.kubernetes.io/unreachable, effect: NoExecute, timeAdded: '2024-05-01T10:00:00Z'}]\nstatus:\n  conditions: [{type: Ready, status: Unknown, reason: NodeStatusUnknown, message: Kubelet stopped posting node status.}]\n  addresses: [{type: InternalIP, address: 10.0.0.2}]\n",
            "t",
        )
        .unwrap()
        .remove(0);
        let out = describe(&node, None, &[], SystemTime::now());
        assert!(out.contains("Taints:             node.kubernetes.io/unreachable:NoExecute\n"), "{out}");
        assert!(out.contains("Unschedulable:      true\n"), "{out}");
        assert!(out.contains("  Ready   Unknown"), "{out}");
        assert!(out.contains("NodeStatusUnknown   Kubelet stopped posting node status."), "{out}");
        assert!(out.contains("Addresses:          InternalIP: 10.0.0.2\n"), "{out}");
        assert!(out.contains("PodCIDR:            10.244.1.0/24"), "{out}");
    }

    #[test]
    fn config_map_description() {
        let cm = navarch_api::manifest::parse(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: default\n  labels: {app: web, tier: fe}\n  creationTimestamp: \"2024-05-01T10:00:00Z\"\ndata:\n  key: value\n",
            "t",
        )
        .unwrap()
        .remove(0);
        let out = describe(&cm, Some(&[]), &[], SystemTime::now());
        assert_eq!(
            out,
            "\
Name:               cfg
Namespace:          default
Labels:             app=web
                    tier=fe
Annotations:        <none>
CreationTimestamp:  Wed, 01 May 2024 10:00:00 +0000

Data
====
key:
----
value


BinaryData
====

Events:             <none>
"
        );
    }

    #[test]
    fn job_and_daemon_set_descriptions_show_their_own_counts() {
        let parse = |y: &str| navarch_api::manifest::parse(y, "t").unwrap().remove(0);
        let job = parse(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: pi, namespace: default}\nspec:\n  parallelism: 2\n  completions: 5\n  completionMode: Indexed\n  backoffLimit: 6\n  suspend: false\n  selector: {matchLabels: {job-name: pi}}\n  template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}\nstatus: {active: 2, ready: 1, succeeded: 3, completedIndexes: 0-2}\n",
        );
        let out = describe(&job, Some(&[]), &[], SystemTime::now());
        for line in [
            "Parallelism:",
            "Completion Mode:",
            "Pods Statuses:",
            "2 Active (1 Ready) / 3 Succeeded / 0 Failed",
            "Completed Indexes:",
        ] {
            assert!(out.contains(line), "{line:?} in\n{out}");
        }
        assert!(!out.contains("Replicas:"), "{out}");
        let ds = parse(
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent, namespace: default}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template: {metadata: {labels: {app: agent}}, spec: {nodeSelector: {node-role: edge}, containers: [{name: c, image: busybox}]}}\nstatus: {desiredNumberScheduled: 2, currentNumberScheduled: 2, updatedNumberScheduled: 1, numberAvailable: 2, numberReady: 2}\n",
        );
        let out = describe(&ds, Some(&[]), &[], SystemTime::now());
        let value = |key: &str| {
            let line = out.lines().find(|l| l.starts_with(key)).unwrap_or_default();
            line[key.len().min(line.len())..].trim().to_string()
        };
        assert_eq!(value("Node-Selector:"), "node-role=edge", "{out}");
        assert_eq!(value("Desired Number of Nodes Scheduled:"), "2", "{out}");
        assert_eq!(value("Number of Nodes Scheduled with Up-to-date Pods:"), "1", "{out}");
        assert_eq!(value("Pods Status:"), "2 Ready / 0 Unavailable", "{out}");
    }
}
