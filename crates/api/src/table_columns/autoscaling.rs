//! The HorizontalPodAutoscaler's row (`printHorizontalPodAutoscaler` of Kubernetes 1.32): the reference
//! `<Kind>/<name>`, the targets as `formatHPAMetrics` writes them (`cpu: 37%/50%`, `cpu: <unknown>/50%`,
//! `memory: 10Mi/100Mi`, at most two then `+ N more...`), MINPODS (`<unset>` without one), MAXPODS and
//! the current replicas.

use serde_json::Value;

use super::{at, int_at, list_at, str_at};

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// How many metrics the TARGETS cell shows before `+ N more...`.
const SHOWN: usize = 2;

/// A metric's `current/target` as `formatHPAMetrics` writes it, `status` being its entry in
/// `status.currentMetrics` (the same index), or `Null`.
pub fn format_metric(spec: &Value, status: &Value) -> String {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let known = |v: Option<String>| v.unwrap_or_else(|| "<unknown>".into());
    let percent = |v: &Value| v.as_i64().map(|p| format!("{p}%"));
    match spec["type"].as_str().unwrap_or("") {
        "External" | "Object" => {
            let source = if spec["type"] == "External" { "external" } else { "object" };
            let (target, current) = (&spec[source]["target"], &status[source]["current"]);
            if target["averageValue"].is_string() {
                let current = known(text(&current["averageValue"]));
                format!("{current}/{} (avg)", target["averageValue"].as_str().unwrap_or(""))
            } else {
                let current = if status[source].is_object() {
                    current["value"].as_str().unwrap_or("0")
                } else {
                    "<unknown>"
                };
                format!("{current}/{}", target["value"].as_str().unwrap_or("0"))
            }
        }
        "Pods" => {
            let current = known(text(&status["pods"]["current"]["averageValue"]));
            format!("{current}/{}", spec["pods"]["target"]["averageValue"].as_str().unwrap_or("0"))
        }
        ty @ ("Resource" | "ContainerResource") => {
            let source = if ty == "Resource" { "resource" } else { "containerResource" };
            let (name, target, current) =
                (&spec[source]["name"], &spec[source]["target"], &status[source]["current"]);
            let name = name.as_str().unwrap_or("");
            if let Some(avg) = target["averageValue"].as_str() {
                format!("{name}: {}/{avg}", known(text(&current["averageValue"])))
            } else {
                let target = percent(&target["averageUtilization"]).unwrap_or_else(|| "<auto>".into());
                format!("{name}: {}/{target}", known(percent(&current["averageUtilization"])))
            }
        }
        _ => "<unknown type>".into(),
    }
}

/// The TARGETS cell.
pub fn targets(o: &Value) -> String {
    let specs = list_at(o, "spec.metrics");
    if specs.is_empty() {
        return "<none>".into();
    }
    let statuses = list_at(o, "status.currentMetrics");
    let all: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, m)| format_metric(m, statuses.get(i).unwrap_or(&Value::Null)))
        .collect();
    if all.len() > SHOWN {
        format!("{} + {} more...", all[..SHOWN].join(", "), all.len() - SHOWN)
    } else {
        all.join(", ")
    }
}

pub(super) fn horizontal_pod_autoscaler(o: &Value, age: Value) -> Vec<Value> {
    let reference =
        format!("{}/{}", str_at(o, "spec.scaleTargetRef.kind"), str_at(o, "spec.scaleTargetRef.name"));
    let min = match at(o, "spec.minReplicas").as_i64() {
        Some(n) => n.to_string(),
        None => "<unset>".into(),
    };
    vec![
        s(str_at(o, "metadata.name")),
        s(reference),
        s(targets(o)),
        s(min),
        Value::from(int_at(o, "spec.maxReplicas")),
        Value::from(int_at(o, "status.currentReplicas")),
        age,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cpu(target: i64) -> Value {
        json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}})
    }

    #[test]
    fn targets_as_kubectl_prints_them() {
        let hpa = json!({"spec": {"metrics": [cpu(50)]}});
        assert_eq!(targets(&hpa), "cpu: <unknown>/50%");
        let hpa = json!({"spec": {"metrics": [cpu(50)]}, "status": {"currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 37, "averageValue": "37m"}}}]}});
        assert_eq!(targets(&hpa), "cpu: 37%/50%");
        let memory = json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}});
        let hpa = json!({"spec": {"metrics": [memory, cpu(50), cpu(60)]}, "status": {"currentMetrics": [
            {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "10Mi"}}}]}});
        assert_eq!(targets(&hpa), "memory: 10Mi/100Mi, cpu: <unknown>/50% + 1 more...");
        assert_eq!(targets(&json!({"spec": {}})), "<none>");
        let container = json!({"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "target": {"type": "Utilization", "averageUtilization": 70}}});
        assert_eq!(targets(&json!({"spec": {"metrics": [container]}})), "cpu: <unknown>/70%");
    }

    #[test]
    fn row() {
        let hpa = json!({"metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "maxReplicas": 5, "metrics": [cpu(50)]}, "status": {"currentReplicas": 2}});
        assert_eq!(
            horizontal_pod_autoscaler(&hpa, json!("5s")),
            vec![
                json!("web"),
                json!("Deployment/web"),
                json!("cpu: <unknown>/50%"),
                json!("<unset>"),
                json!(5),
                json!(2),
                json!("5s")
            ]
        );
    }
}
