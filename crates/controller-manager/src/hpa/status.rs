//! The autoscaler's status as Kubernetes' controller writes it: conditions (AbleToScale, ScalingActive,
//! ScalingLimited; the transition time kept while the status stays), metric statuses, and quantities in
//! their canonical decimal form (`37m`, `10485760`, `100M`).

use navarch_api::v1::{
    ContainerResourceMetricStatus, HorizontalPodAutoscalerCondition, MetricStatus, MetricValueStatus,
    Quantity, ResourceMetricStatus,
};

/// Sets the condition `ty` (`setCondition`): a new status stamps `now` as the transition time.
pub fn set_condition(
    conditions: &mut Vec<HorizontalPodAutoscalerCondition>,
    ty: &str,
    status: bool,
    reason: &str,
    message: String,
    now: &str,
) {
    let status = if status { "True" } else { "False" };
    let c = match conditions.iter_mut().find(|c| c.r#type == ty) {
        Some(c) => c,
        None => {
            conditions.push(HorizontalPodAutoscalerCondition { r#type: ty.into(), ..Default::default() });
            conditions.last_mut().expect("just pushed")
        }
    };
    if c.status != status {
        c.status = status.into();
        c.last_transition_time = now.into();
    }
    c.reason = reason.into();
    c.message = message;
}

/// `resource.NewMilliQuantity(v, DecimalSI).String()`.
pub fn milli_quantity(v: i64) -> Quantity {
    if v % 1000 != 0 {
        return Quantity { string: format!("{v}m") };
    }
    let mut n = v / 1000;
    let mut suffix = 0;
    const SUFFIXES: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    while n != 0 && n % 1000 == 0 && suffix < SUFFIXES.len() - 1 {
        n /= 1000;
        suffix += 1;
    }
    Quantity { string: format!("{n}{}", SUFFIXES[suffix]) }
}

/// The status of a Resource or ContainerResource metric.
pub fn resource_status(resource: &str, container: &str, utilization: Option<i32>, raw: i64) -> MetricStatus {
    let current = Some(MetricValueStatus {
        average_utilization: utilization,
        average_value: Some(milli_quantity(raw)),
        value: None,
    });
    if container.is_empty() {
        MetricStatus {
            r#type: "Resource".into(),
            resource: Some(ResourceMetricStatus { name: resource.into(), current }),
            ..Default::default()
        }
    } else {
        MetricStatus {
            r#type: "ContainerResource".into(),
            container_resource: Some(ContainerResourceMetricStatus {
                name: resource.into(),
                current,
                container: container.into(),
            }),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_quantities() {
        assert_eq!(milli_quantity(37).string, "37m");
        assert_eq!(milli_quantity(10_485_760_000).string, "10485760");
        assert_eq!(milli_quantity(100_000_000_000).string, "100M");
        assert_eq!(milli_quantity(0).string, "0");
    }

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let mut c = Vec::new();
        set_condition(&mut c, "AbleToScale", true, "SucceededGetScale", "a".into(), "t1");
        set_condition(&mut c, "AbleToScale", true, "ReadyForNewScale", "b".into(), "t2");
        assert_eq!((c[0].last_transition_time.as_str(), c[0].reason.as_str()), ("t1", "ReadyForNewScale"));
        set_condition(&mut c, "AbleToScale", false, "FailedGetScale", "c".into(), "t3");
        assert_eq!(c[0].last_transition_time, "t3");
    }
}
