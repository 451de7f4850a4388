//! autoscaling/v2 HorizontalPodAutoscaler: Kubernetes' defaults (`navarch_api::autoscaling::set_defaults`)
//! and `ValidateHorizontalPodAutoscaler` (bounds, the scale target reference, each metric source, the
//! behavior's rules) plus the status update's non-negative counts.

use navarch_api::names;
use navarch_api::v1::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, HpaScalingRules,
    MetricIdentifier, MetricSpec, MetricTarget, Quantity,
};

use super::field::{Errors, Path, q};

/// The longest allowed scaling policy period.
const MAX_PERIOD_SECONDS: i32 = 1800;
/// The longest allowed stabilization window.
const MAX_STABILIZATION_WINDOW_SECONDS: i32 = 3600;
const METRIC_SOURCE_TYPES: &[&str] = &["ContainerResource", "External", "Object", "Pods", "Resource"];
const SELECT_POLICIES: &[&str] = &["Disabled", "Max", "Min"];
const POLICY_TYPES: &[&str] = &["Percent", "Pods"];

pub(super) fn default_horizontal_pod_autoscaler(hpa: &mut HorizontalPodAutoscaler) {
    navarch_api::autoscaling::set_defaults(hpa);
}

pub(super) fn validate_horizontal_pod_autoscaler(hpa: &HorizontalPodAutoscaler, errs: &mut Errors) {
    let default = HorizontalPodAutoscalerSpec::default();
    let spec = hpa.spec.as_ref().unwrap_or(&default);
    let path = Path::new("spec");
    if let Some(min) = spec.min_replicas
        && min < 1
    {
        errs.invalid(&path.child("minReplicas"), min, "must be greater than or equal to 1");
    }
    if spec.max_replicas < 1 {
        errs.invalid(&path.child("maxReplicas"), spec.max_replicas, "must be greater than 0");
    }
    if let Some(min) = spec.min_replicas
        && spec.max_replicas < min
    {
        errs.invalid(
            &path.child("maxReplicas"),
            spec.max_replicas,
            "must be greater than or equal to `minReplicas`",
        );
    }
    let reference = spec.scale_target_ref.clone().unwrap_or_default();
    validate_reference(&reference, &path.child("scaleTargetRef"), errs);
    for (i, m) in spec.metrics.iter().enumerate() {
        validate_metric(m, &path.child("metrics").index(i), errs);
    }
    if let Some(b) = &spec.behavior {
        let path = path.child("behavior");
        for (name, rules) in [("scaleUp", &b.scale_up), ("scaleDown", &b.scale_down)] {
            if let Some(rules) = rules {
                validate_rules(rules, &path.child(name), errs);
            }
        }
    }
    if let Some(status) = &hpa.status {
        errs.non_negative(&Path::new("status").child("currentReplicas"), status.current_replicas.into());
        errs.non_negative(&Path::new("status").child("desiredReplicas"), status.desired_replicas.into());
    }
}

fn validate_reference(r: &CrossVersionObjectReference, path: &Path, errs: &mut Errors) {
    for (name, value) in [("kind", &r.kind), ("name", &r.name)] {
        if value.is_empty() {
            errs.required(&path.child(name), "");
        } else {
            for reason in names::path_segment_name(value) {
                errs.invalid(&path.child(name), q(value), reason);
            }
        }
    }
}

fn validate_metric(m: &MetricSpec, path: &Path, errs: &mut Errors) {
    if m.r#type.is_empty() {
        errs.required(&path.child("type"), "must specify a metric source type");
    }
    let present: Vec<&str> = [
        ("object", m.object.is_some()),
        ("external", m.external.is_some()),
        ("pods", m.pods.is_some()),
        ("resource", m.resource.is_some()),
        ("containerResource", m.container_resource.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    // Only the first source given is checked, as Kubernetes does.
    match present.first().copied() {
        Some("object") => {
            let o = m.object.as_ref().expect("present");
            let p = path.child("object");
            validate_reference(
                &o.described_object.clone().unwrap_or_default(),
                &p.child("describedObject"),
                errs,
            );
            validate_identifier(o.metric.as_ref(), &p.child("metric"), errs);
            let t = validate_target(o.target.as_ref(), &p.child("target"), errs);
            if t.value.is_none() && t.average_value.is_none() {
                errs.required(
                    &p.child("target").child("averageValue"),
                    "must set either a target value or averageValue",
                );
            }
        }
        Some("external") => {
            let e = m.external.as_ref().expect("present");
            let p = path.child("external");
            validate_identifier(e.metric.as_ref(), &p.child("metric"), errs);
            let t = validate_target(e.target.as_ref(), &p.child("target"), errs);
            if t.value.is_none() && t.average_value.is_none() {
                errs.required(
                    &p.child("target").child("averageValue"),
                    "must set either a target value for metric or a per-pod target",
                );
            }
            if t.value.is_some() && t.average_value.is_some() {
                errs.forbidden(
                    &p.child("target").child("value"),
                    "may not set both a target value for metric and a per-pod target",
                );
            }
        }
        Some("pods") => {
            let s = m.pods.as_ref().expect("present");
            let p = path.child("pods");
            validate_identifier(s.metric.as_ref(), &p.child("metric"), errs);
            let t = validate_target(s.target.as_ref(), &p.child("target"), errs);
            if t.average_value.is_none() {
                errs.required(
                    &p.child("target").child("averageValue"),
                    "must specify a positive target averageValue",
                );
            }
        }
        Some("resource") => {
            let r = m.resource.as_ref().expect("present");
            let p = path.child("resource");
            if r.name.is_empty() {
                errs.required(&p.child("name"), "must specify a resource name");
            }
            validate_resource_target(r.target.as_ref(), &p.child("target"), errs);
        }
        Some(_) => {
            let c = m.container_resource.as_ref().expect("present");
            let p = path.child("containerResource");
            if c.name.is_empty() {
                errs.required(&p.child("name"), "must specify a resource name");
            } else if !c.name.contains('/')
                && !["cpu", "memory", "ephemeral-storage"].contains(&c.name.as_str())
                && !c.name.starts_with("hugepages-")
            {
                errs.invalid(&p.child("name"), q(&c.name), "must be a standard resource for containers");
            }
            if c.container.is_empty() {
                errs.required(&p.child("container"), "must specify a container");
            } else {
                errs.syntax(&p.child("container"), &c.container, names::dns1123_label(&c.container));
            }
            validate_resource_target(c.target.as_ref(), &p.child("target"), errs);
        }
        None => {}
    }
    let expected = match m.r#type.as_str() {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "External" => "external",
        "ContainerResource" => "containerResource",
        other => {
            errs.not_supported(&path.child("type"), other, METRIC_SOURCE_TYPES);
            ""
        }
    };
    if !expected.is_empty() && !present.contains(&expected) {
        errs.required(&path.child(expected), "must populate information for the given metric source");
    }
    if present.len() > 1 {
        for other in present.iter().filter(|p| **p != expected) {
            errs.forbidden(&path.child(other), "must populate the given metric source only");
        }
    }
}

/// A Resource or ContainerResource target: a utilization or an average value, not both.
fn validate_resource_target(target: Option<&MetricTarget>, path: &Path, errs: &mut Errors) {
    let t = validate_target(target, path, errs);
    if t.average_utilization.is_none() && t.average_value.is_none() {
        errs.required(
            &path.child("averageUtilization"),
            "must set either a target raw value or a target utilization",
        );
    }
    if t.average_utilization.is_some() && t.average_value.is_some() {
        errs.forbidden(
            &path.child("averageValue"),
            "may not set both a target raw value and a target utilization",
        );
    }
}

fn positive(v: &Quantity) -> bool {
    v.amount().is_ok_and(|a| a.0 > 0)
}

/// `validateMetricTarget`; returns the target (empty when unset) for the source's own checks.
fn validate_target(target: Option<&MetricTarget>, path: &Path, errs: &mut Errors) -> MetricTarget {
    let t = target.cloned().unwrap_or_default();
    if t.r#type.is_empty() {
        errs.required(&path.child("type"), "must specify a metric target type");
    }
    if !["Utilization", "Value", "AverageValue"].contains(&t.r#type.as_str()) {
        errs.invalid(&path.child("type"), q(&t.r#type), "must be either Utilization, Value, or AverageValue");
    }
    for (name, v) in [("value", &t.value), ("averageValue", &t.average_value)] {
        if let Some(v) = v
            && !positive(v)
        {
            errs.invalid(&path.child(name), q(&v.string), "must be positive");
        }
    }
    if let Some(u) = t.average_utilization
        && u < 1
    {
        errs.invalid(&path.child("averageUtilization"), u, "must be greater than 0");
    }
    t
}

fn validate_identifier(id: Option<&MetricIdentifier>, path: &Path, errs: &mut Errors) {
    let name = id.map(|i| i.name.as_str()).unwrap_or("");
    if name.is_empty() {
        errs.required(&path.child("name"), "must specify a metric name");
    } else {
        for reason in names::path_segment_name(name) {
            errs.invalid(&path.child("name"), q(name), reason);
        }
    }
}

fn validate_rules(rules: &HpaScalingRules, path: &Path, errs: &mut Errors) {
    if let Some(w) = rules.stabilization_window_seconds {
        let p = path.child("stabilizationWindowSeconds");
        if w < 0 {
            errs.invalid(&p, w, "must be greater than or equal to zero");
        }
        if w > MAX_STABILIZATION_WINDOW_SECONDS {
            errs.invalid(&p, w, format!("must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"));
        }
    }
    if let Some(policy) = &rules.select_policy {
        errs.one_of(&path.child("selectPolicy"), policy, SELECT_POLICIES);
    }
    let policies = path.child("policies");
    if rules.policies.is_empty() {
        errs.required(&policies, "must specify at least one Policy");
    }
    for (i, p) in rules.policies.iter().enumerate() {
        let path = policies.index(i);
        errs.one_of(&path.child("type"), &p.r#type, POLICY_TYPES);
        errs.positive(&path.child("value"), p.value.into());
        errs.positive(&path.child("periodSeconds"), p.period_seconds.into());
        if p.period_seconds > MAX_PERIOD_SECONDS {
            errs.invalid(
                &path.child("periodSeconds"),
                p.period_seconds,
                format!("must be less than or equal to {MAX_PERIOD_SECONDS}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    fn errors_of(yaml: &str) -> Vec<String> {
        defaulted_errors(yaml).iter().map(ToString::to_string).collect()
    }

    fn hpa(spec: &str) -> String {
        format!(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: web, namespace: default}}\nspec:\n{spec}"
        )
    }

    const VALID: &str = "  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  minReplicas: 1\n  maxReplicas: 5\n";

    #[test]
    fn valid_and_defaulted() {
        assert_valid(&hpa(VALID));
        let o = defaulted(&hpa(VALID));
        let navarch_api::Object::HorizontalPodAutoscaler(h) = o else { panic!() };
        assert_eq!(h.spec.unwrap().metrics[0].resource.as_ref().unwrap().name, "cpu");
    }

    #[test]
    fn kubernetes_messages() {
        let cases = [
            (
                "  scaleTargetRef: {kind: Deployment, name: web}\n  minReplicas: 3\n  maxReplicas: 2\n",
                "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
            ),
            (
                "  scaleTargetRef: {kind: Deployment, name: web}\n  minReplicas: 0\n  maxReplicas: 2\n",
                "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
            ),
            ("  scaleTargetRef: {name: web}\n  maxReplicas: 2\n", "spec.scaleTargetRef.kind: Required value"),
            (
                "  scaleTargetRef: {kind: Deployment, name: web}\n  maxReplicas: 2\n  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization}}}]\n",
                "spec.metrics[0].resource.target.averageUtilization: Required value: must set either a target raw value or a target utilization",
            ),
            (
                "  scaleTargetRef: {kind: Deployment, name: web}\n  maxReplicas: 2\n  metrics: [{type: Pods, resource: {name: cpu, target: {type: Utilization, averageUtilization: 5}}}]\n",
                "spec.metrics[0].pods: Required value: must populate information for the given metric source",
            ),
            (
                "  scaleTargetRef: {kind: Deployment, name: web}\n  maxReplicas: 2\n  metrics: [{type: Foo}]\n",
                "spec.metrics[0].type: Unsupported value: \"Foo\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\"",
            ),
            (
                "  scaleTargetRef: {kind: Deployment, name: web}\n  maxReplicas: 2\n  behavior: {scaleDown: {stabilizationWindowSeconds: 4000, policies: [{type: Pods, value: 0, periodSeconds: 15}]}}\n",
                "spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: 4000: must be less than or equal to 3600",
            ),
            (
                "  scaleTargetRef: {kind: Deployment, name: web}\n  maxReplicas: 2\n  behavior: {scaleDown: {policies: [{type: Pods, value: 0, periodSeconds: 15}]}}\n",
                "spec.behavior.scaleDown.policies[0].value: Invalid value: 0: must be greater than zero",
            ),
        ];
        for (spec, want) in cases {
            let errs = errors_of(&hpa(spec));
            assert!(errs.iter().any(|e| e == want), "{spec}: {errs:?}");
        }
    }
}
