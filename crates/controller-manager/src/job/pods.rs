//! What the Job controller reads from and writes into pods: the tracking finalizer, completion
//! indexes, when a pod counts as failed and when it finished, the pod failure policy's verdict on a
//! failed pod, and the pod a Job creates from its template ([`pod_for`]).

use std::collections::BTreeMap;
use std::time::SystemTime;

use navarch_api::Resource;
use navarch_api::v1::{
    ContainerStatus, EnvVar, EnvVarSource, Job, ObjectFieldSelector, ObjectMeta, OwnerReference, Pod,
    PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
};

use crate::pod_control::controller_ref;

use super::{COMPLETION_INDEX, COMPLETION_INDEX_ENV, TRACKING_FINALIZER, spec_of};

pub fn phase(p: &Pod) -> &str {
    p.status.as_ref().map(|s| s.phase.as_str()).unwrap_or_default()
}

pub fn is_succeeded(p: &Pod) -> bool {
    phase(p) == "Succeeded"
}

pub fn is_terminal(p: &Pod) -> bool {
    matches!(phase(p), "Succeeded" | "Failed")
}

pub fn is_deleting(p: &Pod) -> bool {
    !p.meta().deletion_timestamp.is_empty()
}

/// Being deleted and not yet ended (Kubernetes' `IsPodTerminating`).
pub fn is_terminating(p: &Pod) -> bool {
    is_deleting(p) && !is_terminal(p)
}

pub fn has_finalizer(p: &Pod) -> bool {
    p.meta().finalizers.iter().any(|f| f == TRACKING_FINALIZER)
}

/// The pod's completion index (annotation, else label); `None` when absent or not a number.
pub fn completion_index(p: &Pod) -> Option<i32> {
    let m = p.meta();
    m.annotations
        .get(COMPLETION_INDEX)
        .or_else(|| m.labels.get(COMPLETION_INDEX))
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|i| *i >= 0)
}

/// Replacement pods wait until the old one has ended (`podReplacementPolicy: Failed`, implied by a
/// pod failure policy), rather than only until it started terminating.
pub fn only_replace_failed(job: &Job) -> bool {
    let spec = spec_of(job);
    spec.pod_replacement_policy.as_deref() == Some("Failed") || spec.pod_failure_policy.is_some()
}

/// Whether the pod counts as failed (Kubernetes' `isPodFailed`): phase Failed; or, unless replacements
/// wait for pods to end, being deleted before it succeeded (so orphaned pods count). A deleted pod
/// that was never scheduled counts as failed either way: no kubelet will ever end it (Kubernetes'
/// pod garbage collector marks such pods Failed).
pub fn is_failed(p: &Pod, job: &Job) -> bool {
    if phase(p) == "Failed" {
        return true;
    }
    if !is_deleting(p) || is_succeeded(p) {
        return false;
    }
    let unscheduled = p.spec.as_ref().is_none_or(|s| s.node_name.is_empty());
    !only_replace_failed(job) || unscheduled
}

/// When the pod finished: the latest container exit, else its Ready condition turning False, else its
/// deletion, else `now` (first seen finished).
pub fn finished_time(p: &Pod, now: SystemTime) -> SystemTime {
    let parse = |s: &str| humantime::parse_rfc3339_weak(s).ok();
    let status = p.status.as_ref();
    let exits = status
        .into_iter()
        .flat_map(|s| s.container_statuses.iter().chain(&s.init_container_statuses))
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref())
        .filter_map(|t| parse(&t.finished_at))
        .max();
    let not_ready = || {
        let c = status?.conditions.iter().find(|c| c.r#type == "Ready" && c.status == "False")?;
        parse(&c.last_transition_time)
    };
    exits.or_else(not_ready).or_else(|| parse(&p.meta().deletion_timestamp)).unwrap_or(now)
}

/// Container restarts of a pending or running pod (what `restartPolicy: OnFailure` counts against
/// backoffLimit).
pub fn restarts(p: &Pod) -> i32 {
    if !matches!(phase(p), "Pending" | "Running") {
        return 0;
    }
    let s = p.status.as_ref();
    s.into_iter()
        .flat_map(|s| s.container_statuses.iter().chain(&s.init_container_statuses))
        .map(|c| c.restart_count)
        .sum()
}

/// A pod failure policy rule's action on a failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No rule matched, or `Count`: the failure counts against backoffLimit.
    Count,
    /// `Ignore`: not counted.
    Ignore,
    /// `FailJob`: the Job fails, with this message.
    FailJob(String),
    /// `FailIndex`: with backoffLimitPerIndex, the pod's index fails at once (the failure counts too).
    FailIndex,
}

impl Verdict {
    /// Whether the failure counts in `status.failed`.
    pub fn counts(&self) -> bool {
        !matches!(self, Verdict::Ignore)
    }
}

/// The first rule of the Job's pod failure policy that matches the failed pod (Kubernetes'
/// `matchPodFailurePolicy`); `Count` without a policy or a match.
pub fn failure_verdict(job: &Job, p: &Pod) -> Verdict {
    let Some(policy) = spec_of(job).pod_failure_policy.as_ref() else { return Verdict::Count };
    let m = p.meta();
    for (index, rule) in policy.rules.iter().enumerate() {
        let matched = if let Some(req) = &rule.on_exit_codes {
            exit_code_match(p, req).map(|c| {
                let code = c.state.as_ref().and_then(|s| s.terminated.as_ref()).map(|t| t.exit_code);
                format!(
                    "Container {} for pod {}/{} failed with exit code {} matching {} rule at index {index}",
                    c.name,
                    m.namespace,
                    m.name,
                    code.unwrap_or_default(),
                    rule.action
                )
            })
        } else {
            condition_match(p, rule).map(|t| {
                format!(
                    "Pod {}/{} has condition {t} matching {} rule at index {index}",
                    m.namespace, m.name, rule.action
                )
            })
        };
        let Some(message) = matched else { continue };
        return match rule.action.as_str() {
            "Ignore" => Verdict::Ignore,
            "FailJob" => Verdict::FailJob(message),
            "FailIndex" => Verdict::FailIndex,
            _ => Verdict::Count,
        };
    }
    Verdict::Count
}

/// The first container (then init container) that exited non-zero with a code the requirement matches.
fn exit_code_match<'a>(
    p: &'a Pod,
    req: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<&'a ContainerStatus> {
    let s = p.status.as_ref()?;
    s.container_statuses.iter().chain(&s.init_container_statuses).find(|c| {
        let Some(t) = c.state.as_ref().and_then(|s| s.terminated.as_ref()) else { return false };
        let named = req.container_name.as_ref().is_none_or(|n| *n == c.name);
        let listed = req.values.contains(&t.exit_code);
        let matches = match req.operator.as_str() {
            "In" => listed,
            "NotIn" => !listed,
            _ => false,
        };
        named && t.exit_code != 0 && matches
    })
}

/// The type of the first pod condition matching one of the rule's patterns (status defaults to True).
fn condition_match<'a>(p: &'a Pod, rule: &PodFailurePolicyRule) -> Option<&'a str> {
    let s = p.status.as_ref()?;
    s.conditions
        .iter()
        .find(|c| {
            rule.on_pod_conditions.iter().any(|pat| {
                let status = if pat.status.is_empty() { "True" } else { pat.status.as_str() };
                c.r#type == pat.r#type && c.status == status
            })
        })
        .map(|c| c.r#type.as_str())
}

/// The controller ownerReference to the Job.
pub fn owner_ref(job: &Job) -> OwnerReference {
    controller_ref::<Job>(job.meta())
}

/// At most this long a generated name's prefix (Kubernetes' `MaxGeneratedNameLength`: 63 less the
/// 5-character random suffix).
const MAX_GENERATE_NAME: usize = 58;

/// `<job>-<index>-`, the job name cut so the whole fits a generated name.
fn generate_name_with_index(job: &str, index: i32) -> String {
    let suffix = format!("-{index}-");
    let keep = MAX_GENERATE_NAME.saturating_sub(suffix.len()).min(job.len());
    let cut = (0..=keep).rev().find(|i| job.is_char_boundary(*i)).unwrap_or(0);
    format!("{}{suffix}", &job[..cut])
}

/// The pod the Job runs (for `index` when Indexed): its template, named after the Job, owned by it,
/// with the tracking finalizer; an Indexed pod also gets its index (annotation, label, the
/// `JOB_COMPLETION_INDEX` variable in every container) and the hostname `<job>-<index>`.
pub fn pod_for(job: &Job, index: Option<i32>) -> Pod {
    let spec = spec_of(job);
    let template = spec.template.clone().unwrap_or_default();
    let tm = template.metadata.unwrap_or_default();
    let m = job.meta();
    let mut finalizers = tm.finalizers;
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.to_string());
    }
    let (mut labels, mut annotations): (BTreeMap<_, _>, BTreeMap<_, _>) = (tm.labels, tm.annotations);
    let mut pod_spec = template.spec.unwrap_or_default();
    let generate_name = match index {
        Some(ix) => {
            annotations.insert(COMPLETION_INDEX.to_string(), ix.to_string());
            labels.insert(COMPLETION_INDEX.to_string(), ix.to_string());
            pod_spec.hostname = format!("{}-{ix}", m.name);
            for c in pod_spec.init_containers.iter_mut().chain(pod_spec.containers.iter_mut()) {
                if !c.env.iter().any(|e| e.name == COMPLETION_INDEX_ENV) {
                    c.env.push(EnvVar {
                        name: COMPLETION_INDEX_ENV.into(),
                        value_from: Some(EnvVarSource {
                            field_ref: Some(ObjectFieldSelector {
                                api_version: "v1".into(),
                                field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                }
            }
            generate_name_with_index(&m.name, ix)
        }
        None => format!("{}-", m.name),
    };
    let mut pod = Pod {
        metadata: Some(ObjectMeta {
            generate_name,
            namespace: m.namespace.clone(),
            labels,
            annotations,
            finalizers,
            owner_references: vec![owner_ref(job)],
            ..Default::default()
        }),
        spec: Some(pod_spec),
        ..Default::default()
    };
    pod.set_type_meta();
    pod
}
