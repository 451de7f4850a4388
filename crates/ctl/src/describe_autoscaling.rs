//! `describe` of a HorizontalPodAutoscaler, as kubectl 1.32's `describeHorizontalPodAutoscalerV2`: the
//! reference, each metric's `current / target`, the bounds, the behavior, the target's pods and the
//! conditions with their messages.

use navarch_api::table_columns::{at, int_at, list_at, str_at};
use serde_json::Value;

use crate::describe::Description;
use crate::printers::table::Table;

/// One metric's line: its description and `current / target`.
fn metric_line(spec: &Value, status: &Value) -> (String, String) {
    let q = |v: &Value| v.as_str().map(str::to_string);
    let unknown = || "<unknown>".to_string();
    match str_at(spec, "type") {
        ty @ ("Resource" | "ContainerResource") => {
            let source = if ty == "Resource" { "resource" } else { "containerResource" };
            let name = str_at(spec, &format!("{source}.name"));
            let on = if ty == "Resource" {
                format!("resource {name} on pods")
            } else {
                format!(
                    "resource {name} of container \"{}\" on pods",
                    str_at(spec, "containerResource.container")
                )
            };
            let target = at(spec, &format!("{source}.target"));
            let current = at(status, &format!("{source}.current"));
            if let Some(avg) = q(&target["averageValue"]) {
                (on, format!("{} / {avg}", q(&current["averageValue"]).unwrap_or_else(unknown)))
            } else {
                let current = match current["averageUtilization"].as_i64() {
                    Some(u) => format!("{u}% ({})", current["averageValue"].as_str().unwrap_or("0")),
                    None => unknown(),
                };
                let target = target["averageUtilization"]
                    .as_i64()
                    .map_or_else(|| "<auto>".into(), |u| format!("{u}%"));
                (format!("{on}  (as a percentage of request)"), format!("{current} / {target}"))
            }
        }
        "Pods" => (
            format!("\"{}\" on pods", str_at(spec, "pods.metric.name")),
            format!(
                "{} / {}",
                q(at(status, "pods.current.averageValue")).unwrap_or_else(unknown),
                str_at(spec, "pods.target.averageValue")
            ),
        ),
        "Object" => (
            format!(
                "\"{}\" on {}/{}",
                str_at(spec, "object.metric.name"),
                str_at(spec, "object.describedObject.kind"),
                str_at(spec, "object.describedObject.name")
            ),
            format!(
                "{} / {}",
                q(at(status, "object.current.value")).unwrap_or_else(unknown),
                str_at(spec, "object.target.value")
            ),
        ),
        "External" => (
            format!("\"{}\" (target value)", str_at(spec, "external.metric.name")),
            format!(
                "{} / {}",
                q(at(status, "external.current.value")).unwrap_or_else(unknown),
                str_at(spec, "external.target.value")
            ),
        ),
        other => (format!("<unknown metric type {other:?}>"), String::new()),
    }
}

fn rules(d: &mut Description, heading: &str, r: &Value) {
    if r.is_null() {
        return;
    }
    d.text(2, format!("{heading}:"));
    if let Some(w) = r["stabilizationWindowSeconds"].as_i64() {
        d.text(4, format!("Stabilization Window: {w} seconds"));
    }
    if let Some(p) = r["selectPolicy"].as_str() {
        d.text(4, format!("Select Policy: {p}"));
    }
    d.text(4, "Policies:");
    for p in list_at(r, "policies") {
        d.text(
            6,
            format!(
                "- Type: {:<7}  Value: {:<3}  Period: {} seconds",
                str_at(p, "type"),
                int_at(p, "value"),
                int_at(p, "periodSeconds")
            ),
        );
    }
}

pub(crate) fn horizontal_pod_autoscaler(d: &mut Description, o: &Value) {
    d.field(
        0,
        "Reference",
        format!("{}/{}", str_at(o, "spec.scaleTargetRef.kind"), str_at(o, "spec.scaleTargetRef.name")),
    );
    d.field(0, "Metrics", "( current / target )");
    let statuses = list_at(o, "status.currentMetrics");
    for (i, m) in list_at(o, "spec.metrics").iter().enumerate() {
        let (what, values) = metric_line(m, statuses.get(i).unwrap_or(&Value::Null));
        d.field(2, &what, values);
    }
    let min = at(o, "spec.minReplicas").as_i64().map_or_else(|| "<unset>".to_string(), |n| n.to_string());
    d.field(0, "Min replicas", min);
    d.field(0, "Max replicas", int_at(o, "spec.maxReplicas").to_string());
    let behavior = at(o, "spec.behavior");
    if !behavior.is_null() {
        d.text(0, "Behavior:");
        rules(d, "Scale Up", &behavior["scaleUp"]);
        rules(d, "Scale Down", &behavior["scaleDown"]);
    }
    d.field(
        0,
        &format!("{} pods", str_at(o, "spec.scaleTargetRef.kind")),
        format!(
            "{} current / {} desired",
            int_at(o, "status.currentReplicas"),
            int_at(o, "status.desiredReplicas")
        ),
    );
    let conds = list_at(o, "status.conditions");
    if conds.is_empty() {
        return;
    }
    d.text(0, "Conditions:");
    let mut rows = vec![["Type", "Status", "Reason", "Message"].map(String::from).to_vec()];
    rows.push(rows[0].iter().map(|h| "-".repeat(h.len())).collect());
    for c in conds {
        rows.push(["type", "status", "reason", "message"].map(|k| str_at(c, k).to_string()).to_vec());
    }
    for line in Table::new().format(&rows).lines() {
        d.text(2, line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    #[test]
    fn description_like_kubectl() {
        let hpa = navarch_api::manifest::parse(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web, namespace: default}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  minReplicas: 1\n  maxReplicas: 5\n  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}}]\nstatus:\n  currentReplicas: 2\n  desiredReplicas: 3\n  currentMetrics: [{type: Resource, resource: {name: cpu, current: {averageUtilization: 37, averageValue: 37m}}}]\n  conditions: [{type: AbleToScale, status: 'True', reason: SucceededRescale, message: the HPA controller was able to update the target scale to 3}]\n",
            "t.yaml",
        )
        .unwrap()
        .remove(0);
        let text = crate::describe::describe(&hpa, Some(&[]), &[], SystemTime::now());
        for want in [
            "Reference:",
            "Deployment/web",
            "Metrics:",
            "( current / target )",
            "  resource cpu on pods  (as a percentage of request):  37% (37m) / 50%",
            "Min replicas:",
            "Deployment pods:",
            "2 current / 3 desired",
            "  AbleToScale   True     SucceededRescale   the HPA controller was able to update the target scale to 3",
        ] {
            assert!(text.contains(want), "{want:?} not in\n{text}");
        }
    }
}
