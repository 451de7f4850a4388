//! HorizontalPodAutoscaler facts shared by the api-server, the controller-manager's HPA controller and
//! navctl: Kubernetes' defaults (`SetDefaults_HorizontalPodAutoscaler` of autoscaling/v2 and the default
//! scaling rules), the scale of a scalable object (its replicas and pod selector, what the `scale`
//! subresource shows), and the autoscaling/v1 conversion ([`v1`]).

pub mod v1;

use std::collections::BTreeMap;

use crate::Object;
use crate::v1::{
    HorizontalPodAutoscaler, HpaScalingPolicy, HpaScalingRules, LabelSelector, MetricSpec, MetricTarget,
    ResourceMetricSource,
};

/// The average CPU utilization an autoscaler without metrics keeps (`autoscaling.DefaultCPUUtilization`).
pub const DEFAULT_CPU_UTILIZATION: i32 = 80;
/// `--horizontal-pod-autoscaler-downscale-stabilization`'s default: the scale-down window of autoscalers
/// whose behavior names none.
pub const DEFAULT_DOWNSCALE_STABILIZATION_SECONDS: i32 = 300;
/// The kinds with a scale an autoscaler can target.
pub const SCALABLE: &[&str] = &["Deployment", "ReplicaSet", "StatefulSet", "ReplicationController"];

/// A metric of `type: Resource` on `resource` with a `Utilization` target.
pub fn resource_utilization_metric(resource: &str, percent: i32) -> MetricSpec {
    MetricSpec {
        r#type: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: resource.into(),
            target: Some(MetricTarget {
                r#type: "Utilization".into(),
                average_utilization: Some(percent),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

fn policy(ty: &str, value: i32, period_seconds: i32) -> HpaScalingPolicy {
    HpaScalingPolicy { r#type: ty.into(), value, period_seconds }
}

/// Kubernetes' scale-up rules: no stabilization, at most 4 pods or 100% more per 15 s, whichever is more.
pub fn default_scale_up_rules() -> HpaScalingRules {
    HpaScalingRules {
        stabilization_window_seconds: Some(0),
        select_policy: Some("Max".into()),
        policies: vec![policy("Pods", 4, 15), policy("Percent", 100, 15)],
    }
}

/// Kubernetes' scale-down rules: up to 100% per 15 s; the window stays unset (the controller's
/// `--horizontal-pod-autoscaler-downscale-stabilization` applies).
pub fn default_scale_down_rules() -> HpaScalingRules {
    HpaScalingRules {
        stabilization_window_seconds: None,
        select_policy: Some("Max".into()),
        policies: vec![policy("Percent", 100, 15)],
    }
}

/// `rules` with every unset field taken from `defaults` (`GenerateHPAScale{Up,Down}Rules`).
pub fn fill_rules(rules: Option<HpaScalingRules>, defaults: HpaScalingRules) -> HpaScalingRules {
    let Some(mut r) = rules else { return defaults };
    if r.stabilization_window_seconds.is_none() {
        r.stabilization_window_seconds = defaults.stabilization_window_seconds;
    }
    if r.select_policy.is_none() {
        r.select_policy = defaults.select_policy;
    }
    if r.policies.is_empty() {
        r.policies = defaults.policies;
    }
    r
}

/// autoscaling/v2's defaults: `minReplicas` 1, an 80% cpu utilization metric when there is none, and a
/// behavior that is set gets both directions' unset rules from Kubernetes' (an unset behavior stays unset).
pub fn set_defaults(hpa: &mut HorizontalPodAutoscaler) {
    let spec = hpa.spec.get_or_insert_with(Default::default);
    spec.min_replicas.get_or_insert(1);
    if spec.metrics.is_empty() {
        spec.metrics.push(resource_utilization_metric("cpu", DEFAULT_CPU_UTILIZATION));
    }
    if let Some(b) = &mut spec.behavior {
        b.scale_up = Some(fill_rules(b.scale_up.take(), default_scale_up_rules()));
        b.scale_down = Some(fill_rules(b.scale_down.take(), default_scale_down_rules()));
    }
}

/// The `spec.replicas` of a scalable object (unset reads as Kubernetes' default, 1); `None` for other kinds.
pub fn replicas(o: &Object) -> Option<i32> {
    let r = match o {
        Object::Deployment(d) => d.spec.as_ref().map(|s| s.replicas),
        Object::ReplicaSet(r) => r.spec.as_ref().map(|s| s.replicas),
        Object::ReplicationController(r) => r.spec.as_ref().map(|s| s.replicas),
        Object::StatefulSet(s) => s.spec.as_ref().map(|s| s.replicas),
        _ => return None,
    };
    Some(r.flatten().unwrap_or(1))
}

/// The `spec.replicas` field of a scalable object, to set; `None` for other kinds.
pub fn replicas_mut(o: &mut Object) -> Option<&mut Option<i32>> {
    match o {
        Object::Deployment(d) => Some(&mut d.spec.get_or_insert_with(Default::default).replicas),
        Object::ReplicaSet(r) => Some(&mut r.spec.get_or_insert_with(Default::default).replicas),
        Object::ReplicationController(r) => Some(&mut r.spec.get_or_insert_with(Default::default).replicas),
        Object::StatefulSet(s) => Some(&mut s.spec.get_or_insert_with(Default::default).replicas),
        _ => None,
    }
}

/// The pod selector of a scalable object as its scale shows it (a ReplicationController's label map as
/// `matchLabels`); `None` for other kinds or without one.
pub fn pod_selector(o: &Object) -> Option<LabelSelector> {
    let labels =
        |m: &BTreeMap<String, String>| LabelSelector { match_labels: m.clone(), ..Default::default() };
    match o {
        Object::Deployment(d) => d.spec.as_ref()?.selector.clone(),
        Object::ReplicaSet(r) => r.spec.as_ref()?.selector.clone(),
        Object::StatefulSet(s) => s.spec.as_ref()?.selector.clone(),
        Object::ReplicationController(r) => Some(labels(&r.spec.as_ref()?.selector)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_min_metrics_and_only_a_set_behavior() {
        let mut hpa = HorizontalPodAutoscaler::default();
        set_defaults(&mut hpa);
        let spec = hpa.spec.as_ref().unwrap();
        assert_eq!(spec.min_replicas, Some(1));
        assert_eq!(spec.metrics, vec![resource_utilization_metric("cpu", 80)]);
        assert!(spec.behavior.is_none());

        let mut hpa = HorizontalPodAutoscaler::default();
        let spec = hpa.spec.get_or_insert_with(Default::default);
        spec.behavior = Some(crate::v1::HorizontalPodAutoscalerBehavior {
            scale_down: Some(HpaScalingRules {
                stabilization_window_seconds: Some(60),
                ..Default::default()
            }),
            scale_up: None,
        });
        set_defaults(&mut hpa);
        let b = hpa.spec.unwrap().behavior.unwrap();
        assert_eq!(b.scale_up, Some(default_scale_up_rules()));
        let down = b.scale_down.unwrap();
        assert_eq!(down.stabilization_window_seconds, Some(60));
        assert_eq!(down.select_policy.as_deref(), Some("Max"));
        assert_eq!(down.policies, vec![policy("Percent", 100, 15)]);
    }
}
