//! The horizontal pod autoscaler controller (Kubernetes' `podautoscaler`): every
//! [`SYNC_PERIOD`] (and on each change of an autoscaler) it reads the target's scale through the generic
//! client (`spec.replicas`, the pod selector), computes the replicas each metric asks for from the pods
//! of the target and their resource metrics ([`replicas`], through [`metrics::MetricsSource`]), takes
//! the largest, stabilizes and rate-limits it ([`normalize`]), writes the target's `spec.replicas` (re-read
//! and retried on a conflict) and the autoscaler's status, with Kubernetes' conditions and events.
//!
//! Resource and ContainerResource metrics are computed; Pods, Object and External metrics need a custom
//! or external metrics API navarch does not have, and fail as Kubernetes fails without one. The
//! recommendations and scale events of each autoscaler live in memory (a restarted controller starts
//! empty, as Kubernetes'); everything else is read again at each sync, so a restart converges.

pub mod metrics;
pub mod normalize;
pub mod replicas;
pub mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use navarch_api::autoscaling::{SCALABLE, pod_selector, replicas_mut};
use navarch_api::selector::Selector;
use navarch_api::v1::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus, MetricSpec, MetricStatus, Pod,
};
use navarch_api::{Resource, kind_info};
use navarch_client::{Action, Client, Controller, EventRecorder, Store, object_ref};
use tracing::Instrument;

use crate::run::{Reconciler, Wiring};
use metrics::{MetricsSource, ResourceMetricsClient};
use normalize::History;
use replicas::Target;

/// `--horizontal-pod-autoscaler-sync-period`.
pub const SYNC_PERIOD: Duration = Duration::from_secs(15);
/// How often a conflicting write of the target's replicas is retried.
const SCALE_ATTEMPTS: usize = 5;

/// The controller's state.
pub struct HpaController<M: MetricsSource> {
    pub client: Client,
    pub pods: Store<Pod>,
    pub metrics: M,
    pub events: EventRecorder,
    /// Per autoscaler (`namespace/name`): its recommendations and scale events.
    pub history: Mutex<HashMap<String, History>>,
}

/// One metric's outcome: the replicas it asks for and why, or the condition and error of its failure.
struct MetricOutcome {
    proposal: Result<(i32, String), (&'static str, String)>,
    status: Option<MetricStatus>,
}

fn now_stamp(now: SystemTime) -> String {
    humantime::format_rfc3339_seconds(now).to_string()
}

impl<M: MetricsSource> HpaController<M> {
    /// The replicas `m` asks for (`computeReplicasForMetric`).
    async fn metric(
        &self,
        namespace: &str,
        selector: &str,
        pods: &[&Pod],
        m: &MetricSpec,
        current: i32,
    ) -> MetricOutcome {
        let fail = |reason: &'static str, error: String| MetricOutcome {
            proposal: Err((reason, error)),
            status: None,
        };
        let (source, container, reason) = match m.r#type.as_str() {
            "Resource" => (m.resource.as_ref().map(|r| (&r.name, &r.target)), "", "FailedGetResourceMetric"),
            "ContainerResource" => (
                m.container_resource.as_ref().map(|r| (&r.name, &r.target)),
                m.container_resource.as_ref().map_or("", |r| r.container.as_str()),
                "FailedGetContainerResourceMetric",
            ),
            "Pods" => {
                let name = m.pods.as_ref().and_then(|p| p.metric.as_ref()).map_or("", |i| i.name.as_str());
                return fail(
                    "FailedGetPodsMetric",
                    format!(
                        "unable to get metric {name}: unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered"
                    ),
                );
            }
            "Object" => {
                let name = m.object.as_ref().and_then(|p| p.metric.as_ref()).map_or("", |i| i.name.as_str());
                return fail(
                    "FailedGetObjectMetric",
                    format!(
                        "unable to get metric {name}: unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered"
                    ),
                );
            }
            "External" => {
                let name =
                    m.external.as_ref().and_then(|p| p.metric.as_ref()).map_or("", |i| i.name.as_str());
                return fail(
                    "FailedGetExternalMetric",
                    format!(
                        "unable to get external metric {namespace}/{name}: unable to fetch metrics from external metrics API: no external metrics API (external.metrics.k8s.io) registered"
                    ),
                );
            }
            other => return fail("InvalidMetricSourceType", format!("unknown metric source type {other:?}")),
        };
        let Some((resource, Some(target))) = source else {
            return fail(reason, "invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into());
        };
        let (target, what) = match (target.average_value.as_ref(), target.average_utilization) {
            (Some(v), _) => (Target::AverageValue(v.amount().map(|a| a.milli_value()).unwrap_or(0)), "usage"),
            (None, Some(u)) => (Target::Utilization(u), "utilization"),
            (None, None) => {
                return fail(reason, "invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into());
            }
        };
        let samples = match self.metrics.pod_metrics(namespace, selector, resource, container).await {
            Ok(s) => s,
            Err(e) => {
                return fail(
                    reason,
                    format!(
                        "failed to get {resource} {what}: unable to get metrics for resource {resource}: {e}"
                    ),
                );
            }
        };
        match replicas::resource_replicas(
            current,
            target,
            resource,
            container,
            pods,
            samples,
            SystemTime::now(),
        ) {
            Ok(p) => {
                let kind = if container.is_empty() { "resource" } else { "container resource" };
                let name = match target {
                    Target::Utilization(_) => {
                        format!("{resource} {kind} utilization (percentage of request)")
                    }
                    Target::AverageValue(_) => format!("{resource} {kind}"),
                };
                let utilization = if matches!(target, Target::Utilization(_)) { p.utilization } else { None };
                MetricOutcome {
                    proposal: Ok((p.replicas, name)),
                    status: Some(status::resource_status(resource, container, utilization, p.raw_average)),
                }
            }
            Err(e) => fail(reason, format!("failed to get {resource} {what}: {e}")),
        }
    }

    /// Sets the target's `spec.replicas`, re-reading it on a conflict.
    async fn rescale(&self, kind: &str, namespace: &str, name: &str, replicas: i32) -> Result<(), String> {
        for attempt in 1..=SCALE_ATTEMPTS {
            let mut target = self.client.get(kind, namespace, name).await.map_err(|e| e.to_string())?;
            let Some(r) = replicas_mut(&mut target) else { return Err(format!("{kind} has no scale")) };
            *r = Some(replicas);
            match self.client.update(&target).await {
                Ok(_) => return Ok(()),
                Err(navarch_client::Error::Conflict(_)) if attempt < SCALE_ATTEMPTS => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("too many conflicts".into())
    }

    async fn sync(&self, hpa: &HorizontalPodAutoscaler) -> Result<Action, navarch_client::Error> {
        let mut hpa = hpa.clone();
        let original = hpa.status.clone();
        let key = hpa.key();
        let namespace = hpa.meta().namespace.clone();
        let now = SystemTime::now();
        let stamp = now_stamp(now);
        let spec = hpa.spec.clone().unwrap_or_default();
        let target_ref = spec.scale_target_ref.clone().unwrap_or_default();
        let reference = format!("{}/{}/{}", target_ref.kind, namespace, target_ref.name);
        let mut st = hpa.status.clone().unwrap_or_default();
        st.observed_generation = Some(hpa.meta().generation);
        let me = object_ref(&hpa);
        let recorder = |ty: &'static str, reason: &'static str, message: String| {
            self.events.record(me.clone(), ty, reason, message);
        };

        // The target's scale.
        let info =
            kind_info(&target_ref.kind).filter(|i| SCALABLE.contains(&i.kind) && i.kind == target_ref.kind);
        let target = match info {
            None => Err(format!(
                "unable to determine resource for scale target reference: no matches for kind {:?} in group {:?}",
                target_ref.kind,
                target_ref.api_version.rsplit_once('/').map_or("", |(g, _)| g)
            )),
            Some(info) => {
                self.client.get(info.kind, &namespace, &target_ref.name).await.map_err(|e| e.to_string())
            }
        };
        let target = match target {
            Ok(t) => t,
            Err(e) => {
                recorder("Warning", "FailedGetScale", e.clone());
                status::set_condition(
                    &mut st.conditions,
                    "AbleToScale",
                    false,
                    "FailedGetScale",
                    format!("the HPA controller was unable to get the target's current scale: {e}"),
                    &stamp,
                );
                st.current_metrics.clear();
                self.write_status(&mut hpa, original, st).await?;
                tracing::warn!(error = %e, "failed to query scale subresource for {reference}");
                return Ok(Action::requeue(SYNC_PERIOD));
            }
        };
        status::set_condition(
            &mut st.conditions,
            "AbleToScale",
            true,
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale".into(),
            &stamp,
        );
        let current = navarch_api::autoscaling::replicas(&target).unwrap_or(0);
        {
            let mut history = self.history.lock().expect("not poisoned");
            let h = history.entry(key.clone()).or_default();
            if h.recommendations.is_empty() {
                h.recommendations.push(normalize::Recommendation { replicas: current, at: now });
            }
        }
        let min = spec.min_replicas.unwrap_or(1);
        let mut metric_statuses = Vec::new();
        let (desired, rescale_reason, rescale) = if current == 0 && min != 0 {
            status::set_condition(
                &mut st.conditions,
                "ScalingActive",
                false,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero".into(),
                &stamp,
            );
            (0, String::new(), false)
        } else if current > spec.max_replicas {
            (spec.max_replicas, "Current number of replicas above Spec.MaxReplicas".to_string(), true)
        } else if current < min {
            (min, "Current number of replicas below Spec.MinReplicas".to_string(), true)
        } else {
            // computeReplicasForMetrics.
            let selector = pod_selector(&target)
                .filter(|s| !s.match_labels.is_empty() || !s.match_expressions.is_empty());
            let Some(selector) = selector else {
                recorder("Warning", "SelectorRequired", "selector is required".into());
                status::set_condition(
                    &mut st.conditions,
                    "ScalingActive",
                    false,
                    "InvalidSelector",
                    "the HPA target's scale is missing a selector".into(),
                    &stamp,
                );
                self.write_status(&mut hpa, original, st).await?;
                return Ok(Action::requeue(SYNC_PERIOD));
            };
            let text = navarch_api::table_columns::selector_string(
                &serde_json::to_value(&selector).unwrap_or_default(),
            );
            let parsed =
                Selector::from_label_selector(Some(&selector)).unwrap_or_else(|_| Selector::everything());
            let all = self.pods.state();
            let pods: Vec<&Pod> = all
                .iter()
                .map(AsRef::as_ref)
                .filter(|p: &&Pod| p.meta().namespace == namespace && parsed.matches(&p.meta().labels))
                .collect();
            let (mut best, mut best_name, mut invalid, mut first_error) = (0, String::new(), 0usize, None);
            for m in &spec.metrics {
                let outcome = self.metric(&namespace, &text, &pods, m, current).await;
                metric_statuses.push(
                    outcome
                        .status
                        .unwrap_or_else(|| MetricStatus { r#type: String::new(), ..Default::default() }),
                );
                match outcome.proposal {
                    Ok((replicas, name)) => {
                        if best == 0 || replicas > best {
                            best = replicas;
                            best_name = name;
                        }
                    }
                    Err((reason, error)) => {
                        recorder("Warning", reason, error.clone());
                        invalid += 1;
                        first_error.get_or_insert((reason, error));
                    }
                }
            }
            metric_statuses.retain(|s| !s.r#type.is_empty());
            if let Some((reason, error)) = &first_error
                && (invalid >= spec.metrics.len() || best < current)
            {
                status::set_condition(
                    &mut st.conditions,
                    "ScalingActive",
                    false,
                    reason,
                    format!("the HPA was unable to compute the replica count: {error}"),
                    &stamp,
                );
                st.current_replicas = current;
                st.current_metrics = metric_statuses;
                self.write_status(&mut hpa, original, st).await?;
                recorder(
                    "Warning",
                    "FailedComputeMetricsReplicas",
                    format!(
                        "invalid metrics ({invalid} invalid out of {}), first error is: {error}",
                        spec.metrics.len()
                    ),
                );
                return Ok(Action::requeue(SYNC_PERIOD));
            }
            status::set_condition(
                &mut st.conditions,
                "ScalingActive",
                true,
                "ValidMetricFound",
                format!("the HPA was able to successfully calculate a replica count from {best_name}"),
                &stamp,
            );
            let reason = if best > current {
                format!("{best_name} above target")
            } else if best < current {
                "All metrics below target".to_string()
            } else {
                String::new()
            };
            let args = normalize::Args {
                behavior: spec.behavior.as_ref(),
                min,
                max: spec.max_replicas,
                current,
                desired: best,
            };
            let n = {
                let mut history = self.history.lock().expect("not poisoned");
                normalize::normalize(&args, history.entry(key.clone()).or_default(), now)
            };
            status::set_condition(&mut st.conditions, "AbleToScale", true, n.able.0, n.able.1.into(), &stamp);
            status::set_condition(
                &mut st.conditions,
                "ScalingLimited",
                n.limited,
                n.limit.0,
                n.limit.1.into(),
                &stamp,
            );
            (n.replicas, reason, n.replicas != current)
        };
        let mut desired = desired;
        if rescale {
            match self.rescale(&target_ref.kind, &namespace, &target_ref.name, desired).await {
                Ok(()) => {
                    status::set_condition(
                        &mut st.conditions,
                        "AbleToScale",
                        true,
                        "SucceededRescale",
                        format!("the HPA controller was able to update the target scale to {desired}"),
                        &stamp,
                    );
                    recorder(
                        "Normal",
                        "SuccessfulRescale",
                        format!("New size: {desired}; reason: {rescale_reason}"),
                    );
                    let mut history = self.history.lock().expect("not poisoned");
                    normalize::record_scale(
                        spec.behavior.as_ref(),
                        history.entry(key.clone()).or_default(),
                        current,
                        desired,
                        now,
                    );
                    st.last_scale_time = stamp.clone();
                    tracing::info!(from = current, to = desired, reason = %rescale_reason, "rescaled {reference}");
                }
                Err(e) => {
                    recorder(
                        "Warning",
                        "FailedRescale",
                        format!("New size: {desired}; reason: {rescale_reason}; error: {e}"),
                    );
                    status::set_condition(
                        &mut st.conditions,
                        "AbleToScale",
                        false,
                        "FailedUpdateScale",
                        format!("the HPA controller was unable to update the target scale: {e}"),
                        &stamp,
                    );
                    st.current_replicas = current;
                    st.current_metrics = metric_statuses;
                    self.write_status(&mut hpa, original, st).await?;
                    return Ok(Action::requeue(SYNC_PERIOD));
                }
            }
        } else {
            desired = current;
        }
        st.current_replicas = current;
        st.desired_replicas = desired;
        st.current_metrics = metric_statuses;
        self.write_status(&mut hpa, original, st).await?;
        Ok(Action::requeue(SYNC_PERIOD))
    }

    /// Writes `status` unless it is what the autoscaler already says.
    async fn write_status(
        &self,
        hpa: &mut HorizontalPodAutoscaler,
        original: Option<HorizontalPodAutoscalerStatus>,
        status: HorizontalPodAutoscalerStatus,
    ) -> Result<(), navarch_client::Error> {
        if original.as_ref() == Some(&status) {
            return Ok(());
        }
        hpa.status = Some(status);
        match self.client.api::<HorizontalPodAutoscaler>(&hpa.meta().namespace).update_status(hpa).await {
            Ok(_) => Ok(()),
            // A newer autoscaler is on its way; the next sync writes from it.
            Err(navarch_client::Error::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl<M: MetricsSource> Reconciler<HorizontalPodAutoscaler> for HpaController<M> {
    type Error = navarch_client::Error;

    async fn reconcile(&self, hpa: Arc<HorizontalPodAutoscaler>) -> Result<Action, navarch_client::Error> {
        if !self.pods.is_ready() {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        let span = tracing::debug_span!("hpa", key = %hpa.key());
        self.sync(&hpa).instrument(span).await
    }
}

/// Runs the HPA controller over the autoscalers' shared reflector.
pub fn spawn(w: &mut Wiring) {
    let events = w.recorder("horizontal-pod-autoscaler");
    let informers = &w.informers;
    let controller = Controller::for_shared(&informers.horizontal_pod_autoscalers).concurrency(w.workers);
    let ctx = Arc::new(HpaController {
        client: w.client.clone(),
        pods: informers.pods.store(),
        metrics: ResourceMetricsClient(w.client.clone()),
        events,
        history: Mutex::new(HashMap::new()),
    });
    w.controller(controller, ctx, Duration::from_secs(1));
}
