//! batch/v1 — Job and CronJob: Kubernetes' defaults (`SetDefaults_Job`, `SetDefaults_CronJob`, the Job
//! selector generated from the uid) and validation (`ValidateJob`, `ValidateCronJob`, including the cron
//! schedule syntax Kubernetes accepts: five fields or a `@` descriptor).

use navarch_api::cron::{Schedule, Zone};
use navarch_api::names;
use navarch_api::v1::*;

use super::field::{Errors, Path, changed_paths, q};
use super::meta;
use super::pod::{self, PodSpecRules};
use super::workloads::validate_selector_and_template;

/// The label that ties a Job's pods to it (its value is the Job's uid).
const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// Older spellings Kubernetes still sets for compatibility.
const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
const LEGACY_JOB_NAME_LABEL: &str = "job-name";
const MAX_INDEXED_COMPLETIONS: i32 = 100_000;
const MAX_POD_FAILURE_POLICY_RULES: usize = 20;
const MAX_EXIT_CODE_VALUES: usize = 255;

// ---------------------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------------------

pub(super) fn default_job(job: &mut Job) {
    let (name, uid) = job.metadata.as_ref().map(|m| (m.name.clone(), m.uid.clone())).unwrap_or_default();
    let spec = job.spec.get_or_insert_with(Default::default);
    default_job_spec(spec);
    if spec.manual_selector != Some(true) && !uid.is_empty() {
        generate_selector(spec, &name, &uid);
    }
}

fn default_job_spec(spec: &mut JobSpec) {
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
    }
    spec.parallelism.get_or_insert(1);
    if spec.backoff_limit.is_none() {
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() { i32::MAX } else { 6 });
    }
    spec.completion_mode.get_or_insert_with(|| "NonIndexed".to_string());
    spec.suspend.get_or_insert(false);
    let replacement = if spec.pod_failure_policy.is_some() { "Failed" } else { "TerminatingOrFailed" };
    spec.pod_replacement_policy.get_or_insert_with(|| replacement.to_string());
    // Job templates keep their restartPolicy as written: it must be OnFailure or Never.
    pod::default_pod_template(spec.template.as_mut(), false);
}

/// Labels the template with the Job's name and uid and selects on the uid, as Kubernetes does for Jobs
/// without `manualSelector: true`.
fn generate_selector(spec: &mut JobSpec, name: &str, uid: &str) {
    if let Some(t) = spec.template.as_mut() {
        let labels = &mut t.metadata.get_or_insert_with(Default::default).labels;
        for key in [LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL] {
            labels.entry(key.to_string()).or_insert_with(|| name.to_string());
        }
        for key in [LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL] {
            labels.entry(key.to_string()).or_insert_with(|| uid.to_string());
        }
    }
    let selector = spec.selector.get_or_insert_with(Default::default);
    selector.match_labels.entry(CONTROLLER_UID_LABEL.to_string()).or_insert_with(|| uid.to_string());
}

pub(super) fn default_cron_job(cj: &mut CronJob) {
    let spec = cj.spec.get_or_insert_with(Default::default);
    if spec.concurrency_policy.is_empty() {
        spec.concurrency_policy = "Allow".to_string();
    }
    spec.suspend.get_or_insert(false);
    spec.successful_jobs_history_limit.get_or_insert(3);
    spec.failed_jobs_history_limit.get_or_insert(1);
    // Like Kubernetes, the job template's own fields are defaulted when the Job is created; only its pod
    // template is defaulted here.
    if let Some(job) = spec.job_template.as_mut().and_then(|t| t.spec.as_mut()) {
        pod::default_pod_template(job.template.as_mut(), false);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------

pub(super) fn validate_job(job: &Job, old: Option<&Job>, errs: &mut Errors) {
    let path = Path::new("spec");
    let default = JobSpec::default();
    let spec = job.spec.as_ref().unwrap_or(&default);
    let uid = job.metadata.as_ref().map(|m| m.uid.as_str()).unwrap_or_default();
    validate_job_spec(spec, &path, errs);
    if spec.selector.is_none() && spec.manual_selector != Some(true) && uid.is_empty() {
        // The selector is generated from the uid (see `apply_defaults`).
        errs.required(&Path::new("metadata").child("uid"), "a Job's selector is generated from its uid");
    }
    validate_selector_and_template(
        spec.selector.as_ref(),
        spec.template.as_ref(),
        "Job",
        &path,
        &PodSpecRules::job(),
        errs,
    );
    // A generated selector must select exactly this Job's uid.
    let generated = spec.manual_selector != Some(true) && !uid.is_empty();
    let selects_uid =
        |s: &LabelSelector| s.match_labels.get(CONTROLLER_UID_LABEL).map(String::as_str) == Some(uid);
    if let Some(s) = spec.selector.as_ref().filter(|s| generated && !selects_uid(s)) {
        errs.invalid(
            &path.child("selector"),
            meta::show_labels(&s.match_labels),
            "`selector` not auto-generated",
        );
    }
    if let Some(old) = old {
        validate_job_update(spec, old, &path, errs);
    }
}

/// The parts of a Job spec that are checked the same in a Job and in a CronJob's job template.
fn validate_job_spec(spec: &JobSpec, path: &Path, errs: &mut Errors) {
    for (v, field) in [
        (spec.parallelism, "parallelism"),
        (spec.completions, "completions"),
        (spec.backoff_limit, "backoffLimit"),
        (spec.ttl_seconds_after_finished, "ttlSecondsAfterFinished"),
        (spec.backoff_limit_per_index, "backoffLimitPerIndex"),
        (spec.max_failed_indexes, "maxFailedIndexes"),
    ] {
        if let Some(v) = v {
            errs.non_negative(&path.child(field), v.into());
        }
    }
    if let Some(d) = spec.active_deadline_seconds {
        errs.non_negative(&path.child("activeDeadlineSeconds"), d);
    }
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    if let Some(mode) = spec.completion_mode.as_deref() {
        errs.one_of(&path.child("completionMode"), mode, &["NonIndexed", "Indexed"]);
    }
    if indexed {
        match spec.completions {
            None => errs.required(&path.child("completions"), "when completion mode is Indexed"),
            Some(c) if c > MAX_INDEXED_COMPLETIONS => errs.invalid(
                &path.child("completions"),
                c,
                format!(
                    "must be less than or equal to {MAX_INDEXED_COMPLETIONS} when completion mode is Indexed"
                ),
            ),
            _ => {}
        }
        if let Some(p) = spec.parallelism.filter(|p| *p > MAX_INDEXED_COMPLETIONS) {
            errs.invalid(
                &path.child("parallelism"),
                p,
                format!(
                    "must be less than or equal to {MAX_INDEXED_COMPLETIONS} when completion mode is Indexed"
                ),
            );
        }
    }
    if spec.backoff_limit_per_index.is_some() && !indexed {
        errs.forbidden(&path.child("backoffLimitPerIndex"), "requires indexed completion mode");
    }
    if spec.max_failed_indexes.is_some() && spec.backoff_limit_per_index.is_none() {
        errs.required(&path.child("backoffLimitPerIndex"), "when maxFailedIndexes is specified");
    }
    if let Some(p) = spec.pod_replacement_policy.as_deref() {
        let pp = path.child("podReplacementPolicy");
        errs.one_of(&pp, p, &["TerminatingOrFailed", "Failed"]);
        if spec.pod_failure_policy.is_some() && p != "Failed" {
            errs.not_supported(&pp, p, &["Failed"]);
        }
    }
    if let Some(pfp) = &spec.pod_failure_policy {
        validate_pod_failure_policy(pfp, spec, &path.child("podFailurePolicy"), errs);
        let restart = spec.template.as_ref().and_then(|t| t.spec.as_ref()).map(|s| s.restart_policy.as_str());
        if let Some(r) = restart.filter(|r| *r != "Never") {
            errs.invalid(
                &path.child("template").child("spec").child("restartPolicy"),
                q(r),
                "only \"Never\" is supported when podFailurePolicy is specified",
            );
        }
    }
    if let Some(sp) = &spec.success_policy {
        let p = path.child("successPolicy");
        if !indexed {
            errs.invalid(&p, q(""), "requires indexed completion mode");
        }
        let rp = p.child("rules");
        if sp.rules.is_empty() {
            errs.required(&rp, "at least one rules must be specified when the successPolicy is specified");
        }
        for (i, r) in sp.rules.iter().enumerate() {
            let p = rp.index(i);
            if r.succeeded_indexes.is_none() && r.succeeded_count.is_none() {
                errs.required(&p, "at least one of succeededCount or succeededIndexes must be specified");
            }
            if let Some(c) = r.succeeded_count {
                errs.non_negative(&p.child("succeededCount"), c.into());
                if let Some(total) = spec.completions.filter(|t| c > *t) {
                    errs.invalid(
                        &p.child("succeededCount"),
                        c,
                        format!(
                            "must be less than or equal to {total} (the number of specified completions)"
                        ),
                    );
                }
            }
        }
    }
}

fn validate_pod_failure_policy(pfp: &PodFailurePolicy, spec: &JobSpec, path: &Path, errs: &mut Errors) {
    let rp = path.child("rules");
    if pfp.rules.len() > MAX_POD_FAILURE_POLICY_RULES {
        errs.too_many(&rp, pfp.rules.len(), MAX_POD_FAILURE_POLICY_RULES);
    }
    for (i, r) in pfp.rules.iter().enumerate() {
        let p = rp.index(i);
        errs.required_one_of(&p.child("action"), &r.action, &["FailJob", "FailIndex", "Ignore", "Count"]);
        if r.action == "FailIndex" && spec.backoff_limit_per_index.is_none() {
            errs.forbidden(
                &p.child("action"),
                "FailIndex may only be used when backoffLimitPerIndex is specified",
            );
        }
        match (&r.on_exit_codes, r.on_pod_conditions.is_empty()) {
            (Some(_), false) => {
                errs.invalid(&p, q(""), "specifying both OnExitCodes and OnPodConditions is not supported")
            }
            (None, true) => {
                errs.invalid(&p, q(""), "specifying one of OnExitCodes and OnPodConditions is required")
            }
            _ => {}
        }
        if let Some(codes) = &r.on_exit_codes {
            let cp = p.child("onExitCodes");
            errs.required_one_of(&cp.child("operator"), &codes.operator, &["In", "NotIn"]);
            let vp = cp.child("values");
            if codes.values.is_empty() {
                errs.required(&vp, "at least one value is required");
            }
            if codes.values.len() > MAX_EXIT_CODE_VALUES {
                errs.too_many(&vp, codes.values.len(), MAX_EXIT_CODE_VALUES);
            }
            for (j, v) in codes.values.iter().enumerate() {
                if codes.operator == "In" && *v == 0 {
                    errs.invalid(&vp.index(j), v, "must not be 0 for the In operator");
                }
                if j > 0 && codes.values[j - 1] >= *v {
                    let reason =
                        if codes.values[j - 1] == *v { "duplicate value" } else { "must be ordered" };
                    errs.invalid(&vp.index(j), v, reason);
                }
            }
        }
        for (j, c) in r.on_pod_conditions.iter().enumerate() {
            let cp = p.child("onPodConditions").index(j);
            if c.r#type.is_empty() {
                errs.required(&cp.child("type"), "");
            } else {
                errs.syntax(&cp.child("type"), &c.r#type, names::qualified_name(&c.r#type));
            }
            errs.required_one_of(&cp.child("status"), &c.status, &["True", "False", "Unknown"]);
        }
    }
}

/// A Job's selector, completion mode and failure handling are fixed; its template may change only while
/// it is suspended and has never started, and then only in scheduling directives and metadata.
fn validate_job_update(new: &JobSpec, old: &Job, path: &Path, errs: &mut Errors) {
    let default = JobSpec::default();
    let old_spec = old.spec.as_ref().unwrap_or(&default);
    if new.selector != old_spec.selector {
        errs.immutable(&path.child("selector"));
    }
    if new.completion_mode != old_spec.completion_mode {
        errs.immutable(&path.child("completionMode"));
    }
    if new.pod_failure_policy != old_spec.pod_failure_policy {
        errs.immutable(&path.child("podFailurePolicy"));
    }
    if new.backoff_limit_per_index != old_spec.backoff_limit_per_index {
        errs.immutable(&path.child("backoffLimitPerIndex"));
    }
    let elastic = new.completion_mode.as_deref() == Some("Indexed") && new.completions == new.parallelism;
    if new.completions != old_spec.completions && !elastic {
        errs.immutable(&path.child("completions"));
    }

    let never_started = old.status.as_ref().is_none_or(|s| s.start_time.is_empty());
    let mut allowed = old_spec.template.clone().unwrap_or_default();
    let new_template = new.template.clone().unwrap_or_default();
    if old_spec.suspend == Some(true) && never_started {
        allowed.metadata = new_template.metadata.clone();
        if let Some(n) = &new_template.spec {
            let a = allowed.spec.get_or_insert_with(Default::default);
            a.node_selector = n.node_selector.clone();
            a.tolerations = n.tolerations.clone();
            a.scheduling_gates = n.scheduling_gates.clone();
            let mut affinity = a.affinity.take().unwrap_or_default();
            affinity.node_affinity = n.affinity.as_ref().and_then(|x| x.node_affinity.clone());
            a.affinity = (affinity != Affinity::default() || n.affinity.is_some()).then_some(affinity);
        }
    }
    for p in changed_paths(&path.child("template"), &allowed, &new_template) {
        errs.immutable(&p);
    }
}

/// Everything of a CronJob may change on update; each version is checked on its own.
pub(super) fn validate_cron_job(cj: &CronJob, errs: &mut Errors) {
    let path = Path::new("spec");
    let default = CronJobSpec::default();
    let spec = cj.spec.as_ref().unwrap_or(&default);
    let sp = path.child("schedule");
    if spec.schedule.is_empty() {
        errs.required(&sp, "");
    } else {
        if let Err(e) = Schedule::parse(&spec.schedule) {
            errs.invalid(&sp, q(&spec.schedule), e.to_string());
        }
        if spec.schedule.contains("TZ") {
            errs.invalid(
                &sp,
                q(&spec.schedule),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            );
        }
    }
    if let Some(tz) = spec.time_zone.as_deref() {
        validate_time_zone(tz, &path.child("timeZone"), errs);
    }
    errs.required_one_of(
        &path.child("concurrencyPolicy"),
        &spec.concurrency_policy,
        &["Allow", "Forbid", "Replace"],
    );
    if let Some(d) = spec.starting_deadline_seconds {
        errs.non_negative(&path.child("startingDeadlineSeconds"), d);
    }
    for (v, field) in [
        (spec.successful_jobs_history_limit, "successfulJobsHistoryLimit"),
        (spec.failed_jobs_history_limit, "failedJobsHistoryLimit"),
    ] {
        if let Some(v) = v {
            errs.non_negative(&path.child(field), v.into());
        }
    }

    let tp = path.child("jobTemplate");
    let Some(t) = &spec.job_template else {
        errs.required(&tp, "");
        return;
    };
    meta::validate_template_meta(t.metadata.as_ref(), &tp.child("metadata"), errs);
    let jp = tp.child("spec");
    let job_default = JobSpec::default();
    let job = t.spec.as_ref().unwrap_or(&job_default);
    validate_job_spec(job, &jp, errs);
    pod::validate_pod_template(job.template.as_ref(), &jp.child("template"), &PodSpecRules::job(), errs);
    if let Some(s) = &job.selector {
        errs.invalid(
            &jp.child("selector"),
            meta::show_labels(&s.match_labels),
            "`selector` will be auto-generated",
        );
    }
    if job.manual_selector == Some(true) {
        errs.not_supported(&jp.child("manualSelector"), "true", &["nil", "false"]);
    }
}

/// An IANA time zone name (`Europe/Berlin`, `UTC`) the system's zone database has, as Kubernetes'
/// `time.LoadLocation` check; `Local` is not explicit enough.
fn validate_time_zone(tz: &str, path: &Path, errs: &mut Errors) {
    if tz.is_empty() {
        errs.invalid(path, q(tz), "timeZone must be nil or non-empty string");
        return;
    }
    if tz.eq_ignore_ascii_case("local") {
        errs.invalid(
            path,
            q(tz),
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        );
        return;
    }
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 14
            && p != "."
            && p != ".."
            && !p.starts_with('-')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
    };
    if !tz.split('/').all(part_ok) {
        errs.invalid(path, q(tz), format!("unknown time zone {tz}"));
        return;
    }
    // The zone must exist in the system's time zone database.
    if let Err(e) = Zone::load(tz) {
        errs.invalid(path, q(tz), e.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    /// The CronJob of the Kubernetes documentation.
    const CRON_JOB: &str = "\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
  namespace: default
spec:
  schedule: \"* * * * *\"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: hello
            image: busybox:1.28
            imagePullPolicy: IfNotPresent
            command:
            - /bin/sh
            - -c
            - date; echo Hello from the Kubernetes cluster
          restartPolicy: OnFailure
";

    /// The pi Job of the Kubernetes documentation (with a uid, as the registry assigns one before
    /// defaulting).
    const JOB: &str = "\
apiVersion: batch/v1
kind: Job
metadata:
  name: pi
  namespace: default
  uid: 6f1a3c1e-1111-2222-3333-444455556666
spec:
  template:
    spec:
      containers:
      - name: pi
        image: perl:5.34.0
        command: [\"perl\",  \"-Mbignum=bpi\", \"-wle\", \"print bpi(2000)\"]
      restartPolicy: Never
  backoffLimit: 4
";

    #[test]
    fn realistic_manifests_validate() {
        assert_valid(CRON_JOB);
        assert_valid(&edit(CRON_JOB, "  schedule:", "  timeZone: Europe/Paris\n  schedule:"));
        assert_valid(&edit(CRON_JOB, "\"* * * * *\"", "\"0 9 * * MON-FRI\""));
        assert_valid(JOB);
    }

    #[test]
    fn job_defaults_and_generated_selector() {
        let navarch_api::Object::Job(job) = defaulted(JOB) else { unreachable!() };
        let spec = job.spec.unwrap();
        assert_eq!((spec.completions, spec.parallelism), (Some(1), Some(1)));
        assert_eq!(spec.backoff_limit, Some(4));
        assert_eq!(spec.completion_mode.as_deref(), Some("NonIndexed"));
        assert_eq!(spec.suspend, Some(false));
        let uid = "6f1a3c1e-1111-2222-3333-444455556666";
        assert_eq!(spec.selector.unwrap().match_labels[CONTROLLER_UID_LABEL], uid);
        let template = spec.template.unwrap();
        let labels = &template.metadata.unwrap().labels;
        assert_eq!(labels[JOB_NAME_LABEL], "pi");
        assert_eq!(labels[CONTROLLER_UID_LABEL], uid);
        assert_eq!(template.spec.unwrap().restart_policy, "Never");

        let parallel = edit(JOB, "  backoffLimit: 4\n", "  parallelism: 3\n");
        let navarch_api::Object::Job(job) = defaulted(&parallel) else { unreachable!() };
        let spec = job.spec.unwrap();
        assert_eq!((spec.completions, spec.parallelism, spec.backoff_limit), (None, Some(3), Some(6)));
    }

    #[test]
    fn cron_job_defaults() {
        let navarch_api::Object::CronJob(cj) = defaulted(CRON_JOB) else { unreachable!() };
        let spec = cj.spec.unwrap();
        assert_eq!(spec.concurrency_policy, "Allow");
        assert_eq!(spec.suspend, Some(false));
        assert_eq!((spec.successful_jobs_history_limit, spec.failed_jobs_history_limit), (Some(3), Some(1)));
        let job = spec.job_template.unwrap().spec.unwrap();
        assert_eq!(job.backoff_limit, None, "job template fields are defaulted on the Job");
        let pod = job.template.unwrap().spec.unwrap();
        assert_eq!(pod.restart_policy, "OnFailure");
        assert_eq!(pod.dns_policy, "ClusterFirst");
    }

    #[test]
    fn job_errors() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "      restartPolicy: Never\n",
                "",
                "spec.template.spec.restartPolicy",
                "Unsupported value: \"\": supported values: \"OnFailure\", \"Never\"",
            ),
            (
                "      restartPolicy: Never\n",
                "      restartPolicy: Always\n",
                "spec.template.spec.restartPolicy",
                "Unsupported value: \"Always\"",
            ),
            (
                "  backoffLimit: 4\n",
                "  backoffLimit: -1\n",
                "spec.backoffLimit",
                "Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                "  backoffLimit: 4\n",
                "  parallelism: -1\n",
                "spec.parallelism",
                "must be greater than or equal to 0",
            ),
            (
                "  backoffLimit: 4\n",
                "  completions: -3\n",
                "spec.completions",
                "must be greater than or equal to 0",
            ),
            (
                "  backoffLimit: 4\n",
                "  activeDeadlineSeconds: -3\n",
                "spec.activeDeadlineSeconds",
                "must be greater than or equal to 0",
            ),
            (
                "  backoffLimit: 4\n",
                "  completionMode: Sometimes\n",
                "spec.completionMode",
                "Unsupported value: \"Sometimes\"",
            ),
            (
                "  backoffLimit: 4\n",
                "  completionMode: Indexed\n  completions: null\n  parallelism: 2\n",
                "spec.completions",
                "Required value: when completion mode is Indexed",
            ),
            (
                "  backoffLimit: 4\n",
                "  podFailurePolicy: {rules: [{action: FailJob, onExitCodes: {operator: In, values: [0]}}]}\n",
                "spec.podFailurePolicy.rules[0].onExitCodes.values[0]",
                "must not be 0 for the In operator",
            ),
            (
                "  backoffLimit: 4\n",
                "  podFailurePolicy: {rules: [{action: Retry, onExitCodes: {operator: In, values: [1]}}]}\n",
                "spec.podFailurePolicy.rules[0].action",
                "Unsupported value: \"Retry\"",
            ),
            (
                "  backoffLimit: 4\n",
                "  podFailurePolicy: {rules: [{action: Ignore}]}\n",
                "spec.podFailurePolicy.rules[0]",
                "specifying one of OnExitCodes and OnPodConditions is required",
            ),
            (
                "  backoffLimit: 4\n",
                "  selector: {matchLabels: {app: pi}}\n",
                "spec.template.metadata.labels",
                "`selector` does not match template `labels`",
            ),
            ("        image: perl:5.34.0\n", "", "spec.template.spec.containers[0].image", "Required value"),
        ];
        for (from, to, path, reason) in cases {
            let errs = defaulted_errors(&edit(JOB, from, to));
            let found = errs.iter().any(|e| e.path == *path && e.reason.contains(reason));
            assert!(found, "expected `{path}: ...{reason}...`, got:\n{}", render(&errs));
            if !path.contains("labels") {
                assert_single(&errs, path, reason, from);
            }
        }
    }

    #[test]
    fn job_without_uid_cannot_get_a_selector() {
        let yaml = edit(JOB, "  uid: 6f1a3c1e-1111-2222-3333-444455556666\n", "");
        let errs = defaulted_errors(&yaml);
        assert_eq!(
            errs[0].to_string(),
            "metadata.uid: Required value: a Job's selector is generated from its uid"
        );
        let manual = edit(
            &yaml,
            "  backoffLimit: 4\n",
            "  manualSelector: true\n  selector: {matchLabels: {app: pi}}\n",
        );
        let manual = edit(
            &manual,
            "  template:\n    spec:",
            "  template:\n    metadata: {labels: {app: pi}}\n    spec:",
        );
        assert_valid(&manual);
    }

    #[test]
    fn job_update_rules() {
        assert!(update_errors(JOB, JOB).is_empty());
        let new_image = edit(JOB, "image: perl:5.34.0", "image: perl:5.36.0");
        assert_update_error(JOB, &new_image, "spec.template.spec.containers[0].image", "field is immutable");
        let suspended = edit(JOB, "  backoffLimit: 4\n", "  backoffLimit: 4\n  suspend: true\n");
        let moved = edit(
            &suspended,
            "      restartPolicy: Never\n",
            "      restartPolicy: Never\n      nodeSelector: {disk: ssd}\n",
        );
        assert!(
            update_errors(&suspended, &moved).is_empty(),
            "{}",
            render(&update_errors(&suspended, &moved))
        );
        let more = edit(JOB, "  backoffLimit: 4\n", "  backoffLimit: 4\n  completions: 5\n");
        assert_update_error(JOB, &more, "spec.completions", "field is immutable");
    }

    #[test]
    fn cron_job_errors() {
        let cases: &[(&str, &str, &str, &str)] = &[
            ("\"* * * * *\"", "\"\"", "spec.schedule", "Required value"),
            (
                "\"* * * * *\"",
                "\"* * * *\"",
                "spec.schedule",
                "Invalid value: \"* * * *\": expected exactly 5 fields, found 4",
            ),
            ("\"* * * * *\"", "\"61 * * * *\"", "spec.schedule", "end of range (61) above maximum (59): 61"),
            (
                "\"* * * * *\"",
                "\"TZ=UTC 0 * * * *\"",
                "spec.schedule",
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ),
            ("\"* * * * *\"", "\"@fortnightly\"", "spec.schedule", "unrecognized descriptor: @fortnightly"),
            (
                "  schedule:",
                "  timeZone: Local\n  schedule:",
                "spec.timeZone",
                "must be an explicit time zone",
            ),
            ("  schedule:", "  timeZone: ../etc/passwd\n  schedule:", "spec.timeZone", "unknown time zone"),
            (
                "  schedule:",
                "  timeZone: Mars/Olympus\n  schedule:",
                "spec.timeZone",
                "Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus",
            ),
            (
                "\"* * * * *\"",
                "\"0 0 1 * * *\"",
                "spec.schedule",
                "Invalid value: \"0 0 1 * * *\": expected exactly 5 fields, found 6: [0 0 1 * * *]",
            ),
            (
                "  schedule:",
                "  concurrencyPolicy: Sometimes\n  schedule:",
                "spec.concurrencyPolicy",
                "Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
            ),
            (
                "  schedule:",
                "  startingDeadlineSeconds: -1\n  schedule:",
                "spec.startingDeadlineSeconds",
                "must be greater than or equal to 0",
            ),
            (
                "  schedule:",
                "  successfulJobsHistoryLimit: -1\n  schedule:",
                "spec.successfulJobsHistoryLimit",
                "must be greater than or equal to 0",
            ),
            (
                "          restartPolicy: OnFailure\n",
                "",
                "spec.jobTemplate.spec.template.spec.restartPolicy",
                "Unsupported value: \"\"",
            ),
            (
                "    spec:\n      template:",
                "    spec:\n      selector: {matchLabels: {a: b}}\n      template:",
                "spec.jobTemplate.spec.selector",
                "`selector` will be auto-generated",
            ),
            (
                "    spec:\n      template:",
                "    spec:\n      manualSelector: true\n      template:",
                "spec.jobTemplate.spec.manualSelector",
                "Unsupported value: \"true\"",
            ),
            (
                "    spec:\n      template:",
                "    spec:\n      backoffLimit: -1\n      template:",
                "spec.jobTemplate.spec.backoffLimit",
                "must be greater than or equal to 0",
            ),
        ];
        assert_edit_errors(CRON_JOB, cases);
        let long_name = edit(CRON_JOB, "  name: hello\n", &format!("  name: {}\n", "a".repeat(53)));
        assert_error(&long_name, "metadata.name", "must be no more than 52 characters");
    }
}
