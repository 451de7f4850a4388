//! autoscaling/v1 ↔ autoscaling/v2 (stored) for the HorizontalPodAutoscaler, on the objects' JSON forms.
//!
//! v1 knows one metric: `spec.targetCPUUtilizationPercentage` is v2's `Resource` cpu `Utilization` metric
//! and `status.currentCPUUtilizationPercentage` its current utilization. What v1 cannot say travels in
//! annotations, as Kubernetes' conversion does: the other metrics (`autoscaling.alpha.kubernetes.io/metrics`),
//! the behavior (`autoscaling.alpha.kubernetes.io/behavior`) and the conditions
//! (`autoscaling.alpha.kubernetes.io/conditions`), each as v2 JSON; they are taken back out on the way in.

use serde_json::{Map, Value, json};

pub const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
pub const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
pub const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";

fn is_cpu_utilization(metric: &Value) -> bool {
    metric["type"] == "Resource"
        && metric["resource"]["name"] == "cpu"
        && metric["resource"]["target"]["type"] == "Utilization"
}

fn annotations(obj: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let meta = obj.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let a = meta.as_object_mut().expect("an object").entry("annotations").or_insert_with(|| json!({}));
    if !a.is_object() {
        *a = json!({});
    }
    a.as_object_mut().expect("an object")
}

fn drop_empty_annotations(obj: &mut Map<String, Value>) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        && meta.get("annotations").and_then(Value::as_object).is_some_and(Map::is_empty)
    {
        meta.remove("annotations");
    }
}

/// A v1 object's JSON as the stored v2 JSON. An error names a field v1 does not have.
pub fn to_v2(mut v: Value) -> Result<Value, String> {
    let Some(obj) = v.as_object_mut() else { return Ok(v) };
    if obj.contains_key("apiVersion") {
        obj.insert("apiVersion".into(), json!("autoscaling/v2"));
    }
    let taken: Vec<(String, Option<Value>)> =
        [METRICS_ANNOTATION, BEHAVIOR_ANNOTATION, CONDITIONS_ANNOTATION]
            .iter()
            .map(|k| {
                let raw = annotations(obj).remove(*k);
                let parsed = raw.as_ref().and_then(Value::as_str).and_then(|s| serde_json::from_str(s).ok());
                (k.to_string(), parsed)
            })
            .collect();
    drop_empty_annotations(obj);
    let annotation = |k: &str| taken.iter().find(|(n, _)| n == k).and_then(|(_, v)| v.clone());
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        for v2_only in ["metrics", "behavior"] {
            if spec.contains_key(v2_only) {
                return Err(format!("unknown field \"spec.{v2_only}\""));
            }
        }
        let mut metrics = Vec::new();
        if let Some(cpu) = spec.remove("targetCPUUtilizationPercentage").filter(|c| !c.is_null()) {
            metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": cpu}}}));
        }
        if let Some(Value::Array(others)) = annotation(METRICS_ANNOTATION) {
            metrics.extend(others.into_iter().filter(|m| !is_cpu_utilization(m)));
        }
        if !metrics.is_empty() {
            spec.insert("metrics".into(), Value::Array(metrics));
        }
        if let Some(behavior) = annotation(BEHAVIOR_ANNOTATION) {
            spec.insert("behavior".into(), behavior);
        }
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        for v2_only in ["currentMetrics", "conditions"] {
            if status.contains_key(v2_only) {
                return Err(format!("unknown field \"status.{v2_only}\""));
            }
        }
        if let Some(cpu) = status.remove("currentCPUUtilizationPercentage").filter(|c| !c.is_null()) {
            status.insert(
                "currentMetrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu}}}]),
            );
        }
        if let Some(conditions) = annotation(CONDITIONS_ANNOTATION) {
            status.insert("conditions".into(), conditions);
        }
    }
    Ok(v)
}

/// The stored v2 JSON as v1's.
pub fn from_v2(mut v: Value) -> Value {
    let Some(obj) = v.as_object_mut() else { return v };
    if obj.contains_key("apiVersion") {
        obj.insert("apiVersion".into(), json!("autoscaling/v1"));
    }
    let mut moved = Vec::new();
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        let metrics = match spec.remove("metrics") {
            Some(Value::Array(m)) => m,
            _ => Vec::new(),
        };
        let (cpu, others): (Vec<Value>, Vec<Value>) = metrics.into_iter().partition(is_cpu_utilization);
        if let Some(target) = cpu.first().map(|m| m["resource"]["target"]["averageUtilization"].clone()) {
            spec.insert("targetCPUUtilizationPercentage".into(), target);
        }
        if !others.is_empty() {
            moved.push((METRICS_ANNOTATION, Value::Array(others)));
        }
        if let Some(behavior) = spec.remove("behavior") {
            moved.push((BEHAVIOR_ANNOTATION, behavior));
        }
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        if let Some(Value::Array(current)) = status.remove("currentMetrics") {
            let cpu = current.iter().find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu");
            if let Some(u) =
                cpu.map(|m| &m["resource"]["current"]["averageUtilization"]).filter(|u| !u.is_null())
            {
                status.insert("currentCPUUtilizationPercentage".into(), u.clone());
            }
        }
        if let Some(conditions) = status.remove("conditions") {
            moved.push((CONDITIONS_ANNOTATION, conditions));
        }
    }
    for (key, value) in moved {
        annotations(obj).insert(key.into(), json!(value.to_string()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_target_cpu_is_a_v2_cpu_utilization_metric_and_back() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                     "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50},
            "status": {"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 37}});
        let v2 = to_v2(v1.clone()).unwrap();
        assert_eq!(v2["apiVersion"], "autoscaling/v2");
        assert_eq!(
            v2["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}])
        );
        assert_eq!(v2["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"], 37);
        assert!(v2["spec"].get("targetCPUUtilizationPercentage").is_none());
        assert_eq!(from_v2(v2), v1);
    }

    #[test]
    fn what_v1_cannot_say_travels_in_annotations() {
        let v2 = json!({"apiVersion": "autoscaling/v2", "metadata": {"name": "web"},
            "spec": {"maxReplicas": 5, "metrics": [
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
            "status": {"desiredReplicas": 1, "conditions": [{"type": "AbleToScale", "status": "True"}]}});
        let v1 = from_v2(v2.clone());
        assert!(v1["spec"].get("targetCPUUtilizationPercentage").is_none());
        assert!(v1["metadata"]["annotations"][METRICS_ANNOTATION].as_str().unwrap().contains("memory"));
        assert!(v1["metadata"]["annotations"][CONDITIONS_ANNOTATION].is_string());
        assert_eq!(to_v2(v1).unwrap(), v2);
    }

    #[test]
    fn v2_fields_in_a_v1_body_are_unknown() {
        let err = to_v2(json!({"spec": {"metrics": []}})).unwrap_err();
        assert_eq!(err, "unknown field \"spec.metrics\"");
    }
}
