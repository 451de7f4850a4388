//! Hand-computed cases of the replica calculator, Kubernetes' documented examples first.

use std::time::{Duration, SystemTime};

use navarch_api::v1::{
    Container, ObjectMeta, Pod, PodCondition, PodSpec, PodStatus, Quantity, ResourceRequirements,
};

use super::*;

const HOUR: Duration = Duration::from_secs(3600);

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A Running pod started an hour ago and Ready since, requesting `cpu` (milli-cores).
fn pod(name: &str, cpu: i64) -> Pod {
    let started = now() - HOUR;
    Pod {
        metadata: Some(ObjectMeta { name: name.into(), ..Default::default() }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                resources: Some(ResourceRequirements {
                    requests: [("cpu".to_string(), Quantity { string: format!("{cpu}m") })].into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: "Running".into(),
            start_time: stamp(started),
            conditions: vec![PodCondition {
                r#type: "Ready".into(),
                status: "True".into(),
                last_transition_time: stamp(started + Duration::from_secs(10)),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn metrics(values: &[(&str, i64)]) -> PodMetrics {
    values
        .iter()
        .map(|(n, v)| {
            (n.to_string(), PodMetric { value: *v, timestamp: now(), window: Duration::from_secs(15) })
        })
        .collect()
}

fn run(current: i32, target: Target, pods: &[Pod], m: &[(&str, i64)]) -> Result<Proposal, String> {
    let refs: Vec<&Pod> = pods.iter().collect();
    resource_replicas(current, target, "cpu", "", &refs, metrics(m), now())
}

#[test]
fn documented_example_double_and_halve() {
    // The docs: current 200m against a desired 100m doubles the replicas; 50m halves them.
    let pods = [pod("a", 1000)];
    assert_eq!(run(1, Target::AverageValue(100), &pods, &[("a", 200)]).unwrap().replicas, 2);
    let pods = [pod("a", 1000), pod("b", 1000)];
    assert_eq!(run(2, Target::AverageValue(100), &pods, &[("a", 50), ("b", 50)]).unwrap().replicas, 1);
}

#[test]
fn utilization_of_requests() {
    // 3 pods requesting 100m using 90m each: 90% of 50% → ratio 1.8 → ceil(5.4) = 6.
    let pods = [pod("a", 100), pod("b", 100), pod("c", 100)];
    let p = run(3, Target::Utilization(50), &pods, &[("a", 90), ("b", 90), ("c", 90)]).unwrap();
    assert_eq!(p, Proposal { replicas: 6, utilization: Some(90), raw_average: 90 });
}

#[test]
fn within_tolerance_nothing_changes() {
    // 54% against 50%: ratio 1.08, within 10%.
    let pods = [pod("a", 100), pod("b", 100)];
    assert_eq!(run(2, Target::Utilization(50), &pods, &[("a", 54), ("b", 54)]).unwrap().replicas, 2);
    // 56%: ratio 1.12 → ceil(2.24) = 3.
    assert_eq!(run(2, Target::Utilization(50), &pods, &[("a", 56), ("b", 56)]).unwrap().replicas, 3);
}

#[test]
fn missing_metrics_count_as_full_on_scale_down_and_zero_on_scale_up() {
    let pods = [pod("a", 100), pod("b", 100), pod("c", 100)];
    // Scale down: a and b at 10% of 50% (ratio 0.2), c missing counts 100%: (10+10+100)/300 = 40% →
    // ratio 0.8 → ceil(0.8 * 3) = 3: no change.
    assert_eq!(run(3, Target::Utilization(50), &pods, &[("a", 10), ("b", 10)]).unwrap().replicas, 3);
    // Scale up: a and b at 100% (ratio 2), c missing counts 0: 200/300 = 66% → 1.32 → ceil(3.96) = 4.
    assert_eq!(run(3, Target::Utilization(50), &pods, &[("a", 100), ("b", 100)]).unwrap().replicas, 4);
}

#[test]
fn unready_pods_are_left_out_then_count_as_zero_on_scale_up() {
    let mut young = pod("c", 100);
    let status = young.status.as_mut().unwrap();
    status.start_time = stamp(now() - Duration::from_secs(60));
    status.conditions[0].status = "False".into();
    let pods = [pod("a", 100), pod("b", 100), young];
    // a, b at 100% of 50%: ratio 2; c unready counts 0: 200/300 → 1.32 → 4 (not 4 from 2 ready pods × 2).
    let p = run(3, Target::Utilization(50), &pods, &[("a", 100), ("b", 100), ("c", 100)]).unwrap();
    assert_eq!(p.replicas, 4);
    assert_eq!(p.utilization, Some(100), "the unready pod's sample is not in the reported utilization");
    // On a scale-down the unready pod is simply left out: 20% of 50% over the 2 ready pods → ceil(0.8) = 1.
    let p = run(3, Target::Utilization(50), &pods, &[("a", 20), ("b", 20), ("c", 100)]).unwrap();
    assert_eq!(p.replicas, 1);
}

#[test]
fn pending_deleted_and_failed_pods() {
    let mut pending = pod("p", 100);
    pending.status.as_mut().unwrap().phase = "Pending".into();
    let mut failed = pod("f", 100);
    failed.status.as_mut().unwrap().phase = "Failed".into();
    let pods = [pod("a", 100), pending, failed];
    // Only a counts on a scale-down (pending is unready, failed ignored): 10% of 50% → ceil(0.2) = 1.
    assert_eq!(run(3, Target::Utilization(50), &pods, &[("a", 10), ("f", 500)]).unwrap().replicas, 1);
}

#[test]
fn errors_as_kubernetes_words_them() {
    let mut no_request = pod("a", 100);
    no_request.spec.as_mut().unwrap().containers[0].resources = None;
    assert_eq!(
        run(1, Target::Utilization(50), &[no_request], &[("a", 10)]).unwrap_err(),
        "missing request for cpu in container app of Pod a"
    );
    assert_eq!(
        run(1, Target::Utilization(50), &[pod("a", 100)], &[]).unwrap_err(),
        "did not receive metrics for targeted pods (pods might be unready)"
    );
    assert_eq!(
        run(1, Target::Utilization(50), &[], &[]).unwrap_err(),
        "no pods returned by selector while calculating replica count"
    );
}
