//! What Kubernetes fills in on a pod spec (`SetDefaults_Pod`, `SetDefaults_PodSpec`,
//! `SetDefaults_Container`, `SetDefaults_Probe`, the volume sources' defaults): for pods and for the pod
//! templates of workloads.

use std::collections::BTreeMap;

use navarch_api::v1::*;

use crate::validation::field::set_if_empty;

pub(in crate::validation) fn default_pod(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(Default::default);
    default_pod_spec(spec, true);
    // Only pods (not templates): a resource with a limit and no request requests its limit.
    for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut()) {
        if let Some(r) = c.resources.as_mut() {
            requests_from_limits(&mut r.requests, &r.limits);
        }
    }
    if let Some(r) = spec.resources.as_mut() {
        requests_from_limits(&mut r.requests, &r.limits);
    }
}

/// Defaults a workload's pod template. `default_restart_policy` is false for Jobs and CronJobs, whose
/// templates must say `OnFailure` or `Never` themselves.
pub(in crate::validation) fn default_pod_template(
    t: Option<&mut PodTemplateSpec>,
    default_restart_policy: bool,
) {
    if let Some(t) = t {
        default_pod_spec(t.spec.get_or_insert_with(Default::default), default_restart_policy);
    }
}

fn requests_from_limits(requests: &mut BTreeMap<String, Quantity>, limits: &BTreeMap<String, Quantity>) {
    for (k, v) in limits {
        requests.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

fn default_pod_spec(spec: &mut PodSpec, default_restart_policy: bool) {
    if default_restart_policy {
        set_if_empty(&mut spec.restart_policy, "Always");
    }
    set_if_empty(&mut spec.dns_policy, "ClusterFirst");
    set_if_empty(&mut spec.scheduler_name, "default-scheduler");
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.security_context.get_or_insert_with(Default::default);
    spec.enable_service_links.get_or_insert(true);
    // `serviceAccount` is the deprecated spelling of `serviceAccountName`; Kubernetes keeps them equal.
    if spec.service_account_name.is_empty() {
        spec.service_account_name = spec.service_account.clone();
    }
    spec.service_account = spec.service_account_name.clone();
    let host_network = spec.host_network;
    for c in spec.containers.iter_mut().chain(&mut spec.init_containers).chain(&mut spec.ephemeral_containers)
    {
        default_container(c, host_network);
    }
    for v in &mut spec.volumes {
        default_volume(v);
    }
}

/// `Always` for `:latest` or untagged images without a digest, `IfNotPresent` otherwise.
fn default_pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':').map(|(_, tag)| tag) {
        Some("latest") => "Always",
        Some(_) => "IfNotPresent",
        None if digest.is_some() => "IfNotPresent",
        None => "Always",
    }
}

fn default_container(c: &mut Container, host_network: bool) {
    set_if_empty(&mut c.termination_message_path, "/dev/termination-log");
    set_if_empty(&mut c.termination_message_policy, "File");
    if c.image_pull_policy.is_empty() {
        c.image_pull_policy = default_pull_policy(&c.image).to_string();
    }
    for p in &mut c.ports {
        set_if_empty(&mut p.protocol, "TCP");
        if host_network && p.host_port == 0 {
            p.host_port = p.container_port;
        }
    }
    for probe in [&mut c.liveness_probe, &mut c.readiness_probe, &mut c.startup_probe].into_iter().flatten() {
        default_probe(probe);
    }
    if let Some(l) = c.lifecycle.as_mut() {
        for h in [&mut l.post_start, &mut l.pre_stop].into_iter().flatten() {
            if let Some(g) = h.http_get.as_mut() {
                default_http_get(g);
            }
        }
    }
    for e in &mut c.env {
        if let Some(f) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            set_if_empty(&mut f.api_version, "v1");
        }
    }
}

fn default_probe(p: &mut Probe) {
    for (field, value) in [
        (&mut p.timeout_seconds, 1),
        (&mut p.period_seconds, 10),
        (&mut p.success_threshold, 1),
        (&mut p.failure_threshold, 3),
    ] {
        if *field == 0 {
            *field = value;
        }
    }
    if let Some(g) = p.http_get.as_mut() {
        default_http_get(g);
    }
}

fn default_http_get(g: &mut HttpGetAction) {
    set_if_empty(&mut g.path, "/");
    set_if_empty(&mut g.scheme, "HTTP");
}

/// 0644, the mode of projected files unless told otherwise.
const DEFAULT_FILE_MODE: i32 = 0o644;

fn default_volume(v: &mut Volume) {
    if let Some(s) = v.secret.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_FILE_MODE);
    }
    if let Some(c) = v.config_map.as_mut() {
        c.default_mode.get_or_insert(DEFAULT_FILE_MODE);
    }
    if let Some(d) = v.downward_api.as_mut() {
        d.default_mode.get_or_insert(DEFAULT_FILE_MODE);
        default_downward_files(&mut d.items);
    }
    if let Some(p) = v.projected.as_mut() {
        p.default_mode.get_or_insert(DEFAULT_FILE_MODE);
        for s in &mut p.sources {
            if let Some(d) = s.downward_api.as_mut() {
                default_downward_files(&mut d.items);
            }
            // An hour, as Kubernetes' SetDefaults_ServiceAccountTokenProjection.
            if let Some(t) = s.service_account_token.as_mut() {
                t.expiration_seconds.get_or_insert(3600);
            }
        }
    }
    if let Some(h) = v.host_path.as_mut() {
        h.r#type.get_or_insert_with(String::new);
    }
    if let Some(i) = v.iscsi.as_mut() {
        set_if_empty(&mut i.iscsi_interface, "default");
    }
    if let Some(i) = v.image.as_mut().filter(|i| i.pull_policy.is_empty()) {
        i.pull_policy = default_pull_policy(&i.reference).to_string();
    }
    if let Some(spec) =
        v.ephemeral.as_mut().and_then(|e| e.volume_claim_template.as_mut()).and_then(|t| t.spec.as_mut())
    {
        default_pvc_spec(spec);
    }
}

fn default_downward_files(items: &mut [DownwardApiVolumeFile]) {
    for f in items {
        if let Some(r) = f.field_ref.as_mut() {
            set_if_empty(&mut r.api_version, "v1");
        }
    }
}

pub(in crate::validation) fn default_pvc_spec(spec: &mut PersistentVolumeClaimSpec) {
    spec.volume_mode.get_or_insert_with(|| "Filesystem".to_string());
}

#[cfg(test)]
mod tests {
    use super::super::tests::POD;
    use super::*;
    use crate::validation::testing::*;

    #[test]
    fn defaults() {
        let navarch_api::Object::Pod(pod) = defaulted(POD) else { unreachable!() };
        let spec = pod.spec.unwrap();
        assert_eq!(spec.restart_policy, "Always");
        assert_eq!(spec.dns_policy, "ClusterFirst");
        assert_eq!(spec.scheduler_name, "default-scheduler");
        assert_eq!(spec.termination_grace_period_seconds, Some(30));
        assert_eq!(spec.enable_service_links, Some(true));
        assert!(spec.security_context.is_some());
        let c = &spec.containers[0];
        assert_eq!(c.termination_message_path, "/dev/termination-log");
        assert_eq!(c.termination_message_policy, "File");
        assert_eq!(c.image_pull_policy, "IfNotPresent");
        assert_eq!(c.ports[0].protocol, "TCP");
        let live = c.liveness_probe.as_ref().unwrap();
        assert_eq!(
            (live.timeout_seconds, live.period_seconds, live.success_threshold, live.failure_threshold),
            (1, 3, 1, 3)
        );
        let http = live.http_get.as_ref().unwrap();
        assert_eq!((http.path.as_str(), http.scheme.as_str()), ("/healthz", "HTTP"));
        assert_eq!(c.readiness_probe.as_ref().unwrap().period_seconds, 10);
        let env_ref = c.env[1].value_from.as_ref().unwrap().field_ref.as_ref().unwrap();
        assert_eq!(env_ref.api_version, "v1");
        assert_eq!(spec.volumes[1].config_map.as_ref().unwrap().default_mode, Some(0o644));
        assert_eq!(spec.init_containers[0].image_pull_policy, "IfNotPresent");
    }

    #[test]
    fn pull_policy_and_requests_from_limits() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/nginx"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/nginx:1.2"), "IfNotPresent");
        assert_eq!(default_pull_policy("nginx@sha256:abcd"), "IfNotPresent");
        assert_eq!(default_pull_policy("nginx:1.25"), "IfNotPresent");

        let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers:\n  - name: a\n    image: x\n    resources: {limits: {cpu: '1', memory: 1Gi}, requests: {cpu: 500m}}\n";
        let navarch_api::Object::Pod(pod) = defaulted(yaml) else { unreachable!() };
        let r = pod.spec.unwrap().containers[0].resources.clone().unwrap();
        assert_eq!(r.requests["cpu"].string, "500m");
        assert_eq!(r.requests["memory"].string, "1Gi");
    }
}
