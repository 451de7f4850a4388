//! Pods and pod specs (also the pod templates of every workload): Kubernetes' defaults
//! (`SetDefaults_Pod`, `SetDefaults_PodSpec`, `SetDefaults_Container`, `SetDefaults_Probe`, ...) and
//! validation (`ValidatePodSpec`, `ValidatePodUpdate`).

use std::collections::{BTreeMap, BTreeSet};

use navarch_api::names;
use navarch_api::quantity::{self, Amount};
use navarch_api::v1::*;

use super::meta::{self, Unique};
use super::{Errors, Path, changed_paths, is_ip, q, set_if_empty};

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];
const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const MAX_USER_ID: i64 = i32::MAX as i64;
const MAX_FILE_MODE: i32 = 0o777;
const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,\
`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing \
tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

// ---------------------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------------------

pub(super) fn default_pod(pod: &mut Pod) {
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
pub(super) fn default_pod_template(t: Option<&mut PodTemplateSpec>, default_restart_policy: bool) {
    if let Some(t) = t {
        default_pod_spec(t.spec.get_or_insert_with(Default::default), default_restart_policy);
    }
}

fn requests_from_limits(requests: &mut BTreeMap<String, Quantity>, limits: &BTreeMap<String, Quantity>) {
    for (k, v) in limits {
        requests.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

pub(super) fn default_pod_spec(spec: &mut PodSpec, default_restart_policy: bool) {
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

pub(super) fn default_pvc_spec(spec: &mut PersistentVolumeClaimSpec) {
    spec.volume_mode.get_or_insert_with(|| "Filesystem".to_string());
}

// ---------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------

/// What differs between a pod's own spec and the pod templates of the various workloads.
pub(super) struct PodSpecRules<'a> {
    /// Allowed `restartPolicy` values.
    pub restart_policies: &'a [&'a str],
    /// Names that volume mounts may use besides `volumes` (a StatefulSet's volumeClaimTemplates).
    pub claim_templates: Vec<&'a str>,
    /// The owning kind when `activeDeadlineSeconds` is not supported (long-running workloads).
    pub no_active_deadline: Option<&'a str>,
    /// Checks only a real pod gets (image whitespace, ephemeral containers).
    pub is_pod: bool,
}

impl PodSpecRules<'static> {
    pub(super) fn pod() -> Self {
        PodSpecRules {
            restart_policies: RESTART_POLICIES,
            claim_templates: Vec::new(),
            no_active_deadline: None,
            is_pod: true,
        }
    }
    /// ReplicaSet, Deployment, DaemonSet, StatefulSet: pods run forever.
    pub(super) fn long_running(kind: &'static str) -> Self {
        PodSpecRules {
            restart_policies: &["Always"],
            claim_templates: Vec::new(),
            no_active_deadline: Some(kind),
            is_pod: false,
        }
    }
    /// Job and CronJob templates.
    pub(super) fn job() -> Self {
        PodSpecRules {
            restart_policies: &["OnFailure", "Never"],
            claim_templates: Vec::new(),
            no_active_deadline: None,
            is_pod: false,
        }
    }
}

pub(super) fn validate_pod(pod: &Pod, old: Option<&Pod>, errs: &mut Errors) {
    let path = Path::new("spec");
    let Some(spec) = pod.spec.as_ref() else {
        errs.required(&path, "");
        return;
    };
    validate_pod_spec(spec, &path, &PodSpecRules::pod(), errs);
    match old.map(|o| o.spec.clone().unwrap_or_default()) {
        None => {
            if !spec.ephemeral_containers.is_empty() {
                errs.forbidden(&path.child("ephemeralContainers"), "cannot be set on create");
            }
        }
        Some(old_spec) => validate_pod_spec_update(spec, &old_spec, &path, errs),
    }
}

/// A workload's pod template: present, labels and annotations valid, spec valid under `rules`.
pub(super) fn validate_pod_template(
    t: Option<&PodTemplateSpec>,
    path: &Path,
    rules: &PodSpecRules,
    errs: &mut Errors,
) {
    let Some(t) = t else {
        errs.required(path, "");
        return;
    };
    meta::validate_template_meta(t.metadata.as_ref(), &path.child("metadata"), errs);
    let default = PodSpec::default();
    let spec = t.spec.as_ref().unwrap_or(&default);
    let spec_path = path.child("spec");
    validate_pod_spec(spec, &spec_path, rules, errs);
    if !spec.ephemeral_containers.is_empty() {
        errs.forbidden(
            &spec_path.child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        );
    }
}

/// Validates a pod spec (of a pod or a template).
pub(super) fn validate_pod_spec(spec: &PodSpec, path: &Path, rules: &PodSpecRules, errs: &mut Errors) {
    let volumes = validate_volumes(&spec.volumes, &path.child("volumes"), errs);
    let ctx = SpecContext { spec, volumes, claim_templates: &rules.claim_templates, rules };

    if spec.containers.is_empty() {
        errs.required(&path.child("containers"), "");
    }
    let mut names = Unique::default();
    for (kind, list, field) in [
        (ContainerKind::Init, &spec.init_containers, "initContainers"),
        (ContainerKind::Regular, &spec.containers, "containers"),
        (ContainerKind::Ephemeral, &spec.ephemeral_containers, "ephemeralContainers"),
    ] {
        for (i, c) in list.iter().enumerate() {
            let p = path.child(field).index(i);
            if !c.name.is_empty() {
                names.check(&c.name, &p.child("name"), errs);
            }
            validate_container(c, &p, kind, &ctx, errs);
        }
    }
    validate_host_ports(spec, path, errs);

    errs.one_of(&path.child("restartPolicy"), &spec.restart_policy, rules.restart_policies);
    errs.required_one_of(&path.child("dnsPolicy"), &spec.dns_policy, DNS_POLICIES);
    validate_dns_config(spec, path, errs);
    meta::validate_labels(&spec.node_selector, &path.child("nodeSelector"), errs);
    for (field, value) in [
        ("serviceAccountName", &spec.service_account_name),
        ("nodeName", &spec.node_name),
        ("schedulerName", &spec.scheduler_name),
        ("priorityClassName", &spec.priority_class_name),
    ] {
        if !value.is_empty() {
            errs.syntax(&path.child(field), value, names::dns1123_subdomain(value));
        }
    }
    if let Some(rc) = spec.runtime_class_name.as_deref() {
        errs.syntax(&path.child("runtimeClassName"), rc, names::dns1123_subdomain(rc));
    }
    for (field, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if !value.is_empty() {
            errs.syntax(&path.child(field), value, names::dns1123_label(value));
        }
    }
    if let Some(t) = spec.termination_grace_period_seconds {
        errs.non_negative(&path.child("terminationGracePeriodSeconds"), t);
    }
    if let Some(d) = spec.active_deadline_seconds {
        let p = path.child("activeDeadlineSeconds");
        match rules.no_active_deadline {
            Some(kind) => errs.forbidden(&p, format!("activeDeadlineSeconds in {kind} is not Supported")),
            None => errs.in_range(&p, d, 1, i64::from(i32::MAX)),
        }
    }
    if let Some(sc) = &spec.security_context {
        validate_pod_security_context(sc, &path.child("securityContext"), errs);
    }
    if let Some(a) = &spec.affinity {
        validate_affinity(a, &path.child("affinity"), errs);
    }
    for (i, t) in spec.tolerations.iter().enumerate() {
        validate_toleration(t, &path.child("tolerations").index(i), errs);
    }
    for (i, h) in spec.host_aliases.iter().enumerate() {
        let p = path.child("hostAliases").index(i);
        if !is_ip(&h.ip) {
            errs.invalid(&p.child("ip"), q(&h.ip), "must be valid IP address");
        }
        for (j, n) in h.hostnames.iter().enumerate() {
            errs.syntax(&p.child("hostnames").index(j), n, names::dns1123_subdomain(n));
        }
    }
    for (i, g) in spec.readiness_gates.iter().enumerate() {
        let v = &g.condition_type;
        errs.syntax(
            &path.child("readinessGates").index(i).child("conditionType"),
            v,
            names::qualified_name(v),
        );
    }
    if let Some(pp) = spec.preemption_policy.as_deref() {
        errs.one_of(&path.child("preemptionPolicy"), pp, &["PreemptLowerPriority", "Never"]);
    }
    validate_resource_list(&spec.overhead, &path.child("overhead"), ResourceScope::Pod, errs);
    validate_topology_spread(
        &spec.topology_spread_constraints,
        &path.child("topologySpreadConstraints"),
        errs,
    );
    if let Some(os) = &spec.os {
        errs.required_one_of(&path.child("os").child("name"), &os.name, &["linux", "windows"]);
    }
    let mut gates = Unique::default();
    for (i, g) in spec.scheduling_gates.iter().enumerate() {
        let p = path.child("schedulingGates").index(i);
        errs.syntax(&p, &g.name, names::qualified_name(&g.name));
        gates.check(&g.name, &p, errs);
    }
    let mut claims = Unique::default();
    for (i, c) in spec.resource_claims.iter().enumerate() {
        let p = path.child("resourceClaims").index(i);
        errs.syntax(&p.child("name"), &c.name, names::dns1123_label(&c.name));
        claims.check(&c.name, &p.child("name"), errs);
        match (&c.resource_claim_name, &c.resource_claim_template_name) {
            (Some(_), Some(_)) => errs.invalid(
                &p,
                q(&c.name),
                "at most one of `resourceClaimName` or `resourceClaimTemplateName` may be set",
            ),
            (None, None) => errs.invalid(
                &p,
                q(&c.name),
                "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`",
            ),
            _ => {}
        }
    }
    if let Some(r) = &spec.resources {
        validate_resources(r, &path.child("resources"), ResourceScope::Pod, errs);
    }
}

/// What the checks of one container need from the pod spec around it.
struct SpecContext<'a> {
    spec: &'a PodSpec,
    volumes: BTreeMap<&'a str, &'a Volume>,
    claim_templates: &'a [&'a str],
    rules: &'a PodSpecRules<'a>,
}

impl SpecContext<'_> {
    fn has_volume(&self, name: &str) -> bool {
        self.volumes.contains_key(name) || self.claim_templates.contains(&name)
    }
    fn has_container(&self, name: &str) -> bool {
        self.spec.containers.iter().chain(&self.spec.init_containers).any(|c| c.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContainerKind {
    Regular,
    Init,
    Ephemeral,
}

fn validate_container(c: &Container, path: &Path, kind: ContainerKind, ctx: &SpecContext, errs: &mut Errors) {
    let name_path = path.child("name");
    if c.name.is_empty() {
        errs.required(&name_path, "");
    } else {
        errs.syntax(&name_path, &c.name, names::dns1123_label(&c.name));
    }
    if c.image.is_empty() {
        errs.required(&path.child("image"), "");
    } else if ctx.rules.is_pod && c.image.trim() != c.image {
        errs.invalid(&path.child("image"), q(&c.image), "must not have leading or trailing whitespace");
    }
    errs.required_one_of(
        &path.child("terminationMessagePolicy"),
        &c.termination_message_policy,
        &["File", "FallbackToLogsOnError"],
    );
    errs.required_one_of(&path.child("imagePullPolicy"), &c.image_pull_policy, PULL_POLICIES);

    let sidecar = kind == ContainerKind::Init && c.restart_policy.as_deref() == Some("Always");
    match (kind, c.restart_policy.as_deref()) {
        (_, None) => {}
        (ContainerKind::Init, Some(p)) => errs.one_of(&path.child("restartPolicy"), p, &["Always"]),
        (_, Some(_)) => {
            errs.forbidden(&path.child("restartPolicy"), "may not be set for non-init containers")
        }
    }

    if kind == ContainerKind::Ephemeral {
        for (set, field) in [
            (!c.ports.is_empty(), "ports"),
            (c.liveness_probe.is_some(), "livenessProbe"),
            (c.readiness_probe.is_some(), "readinessProbe"),
            (c.startup_probe.is_some(), "startupProbe"),
            (c.lifecycle.is_some(), "lifecycle"),
            (c.resources.as_ref().is_some_and(|r| r != &ResourceRequirements::default()), "resources"),
        ] {
            if set {
                errs.forbidden(&path.child(field), "cannot be set for an Ephemeral Container");
            }
        }
    } else {
        validate_container_ports(c, path, ctx, errs);
    }

    let probes_allowed = kind == ContainerKind::Regular || sidecar;
    for (probe, field, kind_of) in [
        (&c.liveness_probe, "livenessProbe", ProbeKind::Liveness),
        (&c.readiness_probe, "readinessProbe", ProbeKind::Readiness),
        (&c.startup_probe, "startupProbe", ProbeKind::Startup),
    ] {
        let Some(probe) = probe else { continue };
        let p = path.child(field);
        if probes_allowed {
            validate_probe(probe, &p, kind_of, errs);
        } else if kind == ContainerKind::Init {
            errs.forbidden(&p, "may not be set for init containers without restartPolicy=Always");
        }
    }
    if let Some(l) = &c.lifecycle {
        let p = path.child("lifecycle");
        if kind == ContainerKind::Init && !sidecar {
            errs.forbidden(&p, "may not be set for init containers without restartPolicy=Always");
        } else if kind != ContainerKind::Ephemeral {
            validate_lifecycle(l, &p, ctx.spec, errs);
        }
    }

    validate_env(c, path, ctx, errs);
    validate_volume_mounts(c, path, ctx, errs);
    if let Some(r) = &c.resources {
        validate_resources(r, &path.child("resources"), ResourceScope::Container, errs);
    }
    for (i, rp) in c.resize_policy.iter().enumerate() {
        let p = path.child("resizePolicy").index(i);
        errs.required_one_of(&p.child("resourceName"), &rp.resource_name, &["cpu", "memory"]);
        errs.required_one_of(
            &p.child("restartPolicy"),
            &rp.restart_policy,
            &["NotRequired", "RestartContainer"],
        );
    }
    if let Some(sc) = &c.security_context {
        validate_security_context(sc, &path.child("securityContext"), errs);
    }
}

fn validate_container_ports(c: &Container, path: &Path, ctx: &SpecContext, errs: &mut Errors) {
    let mut names = Unique::default();
    for (i, port) in c.ports.iter().enumerate() {
        let p = path.child("ports").index(i);
        if !port.name.is_empty() {
            errs.syntax(&p.child("name"), &port.name, names::port_name(&port.name));
            names.check(&port.name, &p.child("name"), errs);
        }
        if port.container_port == 0 {
            errs.required(&p.child("containerPort"), "");
        } else {
            errs.in_range(&p.child("containerPort"), port.container_port.into(), 1, 65535);
        }
        if port.host_port != 0 {
            errs.in_range(&p.child("hostPort"), port.host_port.into(), 1, 65535);
            if ctx.spec.host_network && port.host_port != port.container_port {
                errs.invalid(
                    &p.child("hostPort"),
                    port.host_port,
                    "must match `containerPort` when `hostNetwork` is true",
                );
            }
        }
        errs.required_one_of(&p.child("protocol"), &port.protocol, PROTOCOLS);
        if !port.host_ip.is_empty() && !is_ip(&port.host_ip) {
            errs.invalid(&p.child("hostIP"), q(&port.host_ip), "must be a valid IP address");
        }
    }
}

/// Two containers of a pod may not claim the same host port.
fn validate_host_ports(spec: &PodSpec, path: &Path, errs: &mut Errors) {
    let mut seen = BTreeSet::new();
    for (list, field) in [(&spec.containers, "containers"), (&spec.init_containers, "initContainers")] {
        for (i, c) in list.iter().enumerate() {
            for (j, port) in c.ports.iter().enumerate() {
                if port.host_port == 0 {
                    continue;
                }
                let key = format!("{}{}/{}", port.host_ip, port.host_port, port.protocol);
                let key = key.trim_start_matches('/').to_string();
                if !seen.insert(key.clone()) {
                    errs.duplicate(
                        &path.child(field).index(i).child("ports").index(j).child("hostPort"),
                        q(&key),
                    );
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

fn validate_probe(p: &Probe, path: &Path, kind: ProbeKind, errs: &mut Errors) {
    let handlers: Vec<&str> = [
        (p.exec.is_some(), "exec"),
        (p.http_get.is_some(), "httpGet"),
        (p.tcp_socket.is_some(), "tcpSocket"),
        (p.grpc.is_some(), "grpc"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    check_one_handler(&handlers, path, errs);
    if let Some(e) = &p.exec {
        validate_exec(e, &path.child("exec"), errs);
    }
    if let Some(g) = &p.http_get {
        validate_http_get(g, &path.child("httpGet"), errs);
    }
    if let Some(t) = &p.tcp_socket {
        validate_port_num_or_name(t.port.as_ref(), &path.child("tcpSocket").child("port"), errs);
    }
    if let Some(g) = &p.grpc {
        errs.in_range(&path.child("grpc").child("port"), g.port.into(), 1, 65535);
    }
    errs.non_negative(&path.child("initialDelaySeconds"), p.initial_delay_seconds.into());
    for (field, value) in [
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ] {
        if value < 1 {
            errs.invalid(&path.child(field), value, "must be greater than or equal to 1");
        }
    }
    if kind != ProbeKind::Readiness && p.success_threshold > 1 {
        errs.invalid(&path.child("successThreshold"), p.success_threshold, "must be 1");
    }
    if let Some(t) = p.termination_grace_period_seconds {
        let tp = path.child("terminationGracePeriodSeconds");
        if kind == ProbeKind::Readiness {
            errs.invalid(&tp, t, "must not be set for readinessProbes");
        } else {
            errs.positive(&tp, t);
        }
    }
}

fn check_one_handler(handlers: &[&str], path: &Path, errs: &mut Errors) {
    if handlers.is_empty() {
        errs.required(path, "must specify a handler type");
    }
    for extra in handlers.iter().skip(1) {
        errs.forbidden(&path.child(extra), "may not specify more than 1 handler type");
    }
}

fn validate_exec(e: &ExecAction, path: &Path, errs: &mut Errors) {
    if e.command.is_empty() {
        errs.required(&path.child("command"), "");
    }
}

fn validate_http_get(g: &HttpGetAction, path: &Path, errs: &mut Errors) {
    if g.path.is_empty() {
        errs.required(&path.child("path"), "");
    }
    validate_port_num_or_name(g.port.as_ref(), &path.child("port"), errs);
    errs.required_one_of(&path.child("scheme"), &g.scheme, &["HTTP", "HTTPS"]);
    for (i, h) in g.http_headers.iter().enumerate() {
        let ok = !h.name.is_empty() && h.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            errs.invalid(
                &path.child("httpHeaders").index(i).child("name"),
                q(&h.name),
                "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', \
                 regex used for validation is '[-A-Za-z0-9]+')",
            );
        }
    }
}

/// A port given as a number (1–65535) or as the name of a container port (IANA service name).
pub(super) fn validate_port_num_or_name(port: Option<&IntOrString>, path: &Path, errs: &mut Errors) {
    let Some(port) = port else {
        errs.required(path, "");
        return;
    };
    match (port.as_int(), port.as_str()) {
        (Some(n), _) => errs.in_range(path, n.into(), 1, 65535),
        (None, Some("")) => errs.required(path, ""),
        (None, Some(s)) => errs.syntax(path, s, names::port_name(s)),
        (None, None) => errs.invalid(path, q(&port.to_string()), "must be an integer or a port name"),
    }
}

fn validate_lifecycle(l: &Lifecycle, path: &Path, spec: &PodSpec, errs: &mut Errors) {
    for (h, field) in [(&l.post_start, "postStart"), (&l.pre_stop, "preStop")] {
        let Some(h) = h else { continue };
        let p = path.child(field);
        let handlers: Vec<&str> = [
            (h.exec.is_some(), "exec"),
            (h.http_get.is_some(), "httpGet"),
            (h.tcp_socket.is_some(), "tcpSocket"),
            (h.sleep.is_some(), "sleep"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        check_one_handler(&handlers, &p, errs);
        if let Some(e) = &h.exec {
            validate_exec(e, &p.child("exec"), errs);
        }
        if let Some(g) = &h.http_get {
            validate_http_get(g, &p.child("httpGet"), errs);
        }
        if let Some(t) = &h.tcp_socket {
            validate_port_num_or_name(t.port.as_ref(), &p.child("tcpSocket").child("port"), errs);
        }
        if let Some(s) = &h.sleep {
            let grace = spec.termination_grace_period_seconds.unwrap_or(30);
            if s.seconds < 0 || (grace >= 0 && s.seconds > grace) {
                errs.invalid(
                    &p.child("sleep").child("seconds"),
                    s.seconds,
                    format!("must be non-negative and less than terminationGracePeriodSeconds ({grace})"),
                );
            }
        }
    }
    if let Some(sig) = l.stop_signal.as_deref() {
        let name = sig.strip_prefix("SIG").unwrap_or_default();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-') {
            errs.invalid(&path.child("stopSignal"), q(sig), "must be a signal name such as \"SIGTERM\"");
        }
    }
}

/// Kubernetes (since 1.30) allows any printable ASCII character except '=' in variable names.
fn env_name_ok(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| (' '..='~').contains(&c) && c != '=')
}

const ENV_NAME_REASON: &str =
    "a valid environment variable name must consist only of printable ASCII characters other than '='";

/// Fields of the pod a `fieldRef` may name in an env var and in a downward API volume.
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const VOLUME_FIELD_PATHS: &[&str] =
    &["metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"];

fn validate_env(c: &Container, path: &Path, ctx: &SpecContext, errs: &mut Errors) {
    for (i, e) in c.env.iter().enumerate() {
        let p = path.child("env").index(i);
        if e.name.is_empty() {
            errs.required(&p.child("name"), "");
        } else if !env_name_ok(&e.name) {
            errs.invalid(&p.child("name"), q(&e.name), ENV_NAME_REASON);
        }
        let Some(vf) = &e.value_from else { continue };
        let vp = p.child("valueFrom");
        let sources = [
            vf.field_ref.is_some(),
            vf.resource_field_ref.is_some(),
            vf.config_map_key_ref.is_some(),
            vf.secret_key_ref.is_some(),
            vf.file_key_ref.is_some(),
        ]
        .into_iter()
        .filter(|s| *s)
        .count();
        if !e.value.is_empty() {
            errs.invalid(&vp, q(""), "may not be specified when `value` is not empty");
        }
        match sources {
            0 => errs.invalid(
                &vp,
                q(""),
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`",
            ),
            1 => {}
            _ => errs.invalid(&vp, q(""), "may not have more than one field specified at a time"),
        }
        if let Some(f) = &vf.field_ref {
            validate_field_selector(f, ENV_FIELD_PATHS, &vp.child("fieldRef"), errs);
        }
        if let Some(r) = &vf.resource_field_ref {
            validate_resource_field_selector(r, false, ctx, &vp.child("resourceFieldRef"), errs);
        }
        if let Some(s) = &vf.config_map_key_ref {
            validate_key_selector(&s.name, &s.key, &vp.child("configMapKeyRef"), errs);
        }
        if let Some(s) = &vf.secret_key_ref {
            validate_key_selector(&s.name, &s.key, &vp.child("secretKeyRef"), errs);
        }
        if let Some(f) = &vf.file_key_ref {
            let fp = vp.child("fileKeyRef");
            if f.volume_name.is_empty() {
                errs.required(&fp.child("volumeName"), "");
            } else if ctx.volumes.get(f.volume_name.as_str()).is_none_or(|v| v.empty_dir.is_none()) {
                errs.invalid(
                    &fp.child("volumeName"),
                    q(&f.volume_name),
                    "must reference an emptyDir volume of the pod",
                );
            }
            if f.path.is_empty() {
                errs.required(&fp.child("path"), "");
            } else {
                local_descending_path(&f.path, &fp.child("path"), errs);
            }
            if f.key.is_empty() {
                errs.required(&fp.child("key"), "");
            } else if !env_name_ok(&f.key) {
                errs.invalid(&fp.child("key"), q(&f.key), ENV_NAME_REASON);
            }
        }
    }
    for (i, e) in c.env_from.iter().enumerate() {
        let p = path.child("envFrom").index(i);
        if !e.prefix.is_empty() && !env_name_ok(&e.prefix) {
            errs.invalid(&p.child("prefix"), q(&e.prefix), ENV_NAME_REASON);
        }
        match (&e.config_map_ref, &e.secret_ref) {
            (None, None) => errs.invalid(&p, q(""), "must specify one of: `configMapRef` or `secretRef`"),
            (Some(_), Some(_)) => {
                errs.invalid(&p, q(""), "may not have more than one field specified at a time")
            }
            _ => {}
        }
        for (name, field) in [
            (e.config_map_ref.as_ref().map(|r| &r.name), "configMapRef"),
            (e.secret_ref.as_ref().map(|r| &r.name), "secretRef"),
        ] {
            let Some(name) = name else { continue };
            let np = p.child(field).child("name");
            if name.is_empty() {
                errs.required(&np, "");
            } else {
                errs.syntax(&np, name, names::dns1123_subdomain(name));
            }
        }
    }
}

/// `configMapKeyRef` / `secretKeyRef`: a name and a valid key.
fn validate_key_selector(name: &str, key: &str, path: &Path, errs: &mut Errors) {
    if name.is_empty() {
        errs.required(&path.child("name"), "");
    }
    if key.is_empty() {
        errs.required(&path.child("key"), "");
    } else {
        config_key(key, &path.child("key"), errs);
    }
}

/// A ConfigMap or Secret key: `[-._a-zA-Z0-9]+`, at most 253 characters, not `.`/`..`/`..*`.
pub(super) fn config_key(key: &str, path: &Path, errs: &mut Errors) {
    if key.len() > 253 {
        errs.invalid(path, q(key), "must be no more than 253 characters");
    }
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        errs.invalid(
            path,
            q(key),
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name', or \
             'KEY_NAME', or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        );
    }
    if key == "." {
        errs.invalid(path, q(key), "must not be '.'");
    } else if key == ".." {
        errs.invalid(path, q(key), "must not be '..'");
    } else if key.starts_with("..") {
        errs.invalid(path, q(key), "must not start with '..'");
    }
}

fn validate_field_selector(f: &ObjectFieldSelector, supported: &[&str], path: &Path, errs: &mut Errors) {
    errs.required_one_of(&path.child("apiVersion"), &f.api_version, &["v1"]);
    let fp = path.child("fieldPath");
    if f.field_path.is_empty() {
        errs.required(&fp, "");
        return;
    }
    // `metadata.labels['key']` and `metadata.annotations['key']` select one entry.
    if let Some((map, rest)) = f.field_path.split_once('[') {
        let key = rest.strip_suffix("']").and_then(|r| r.strip_prefix('\''));
        match (map, key) {
            ("metadata.labels" | "metadata.annotations", Some(key)) => {
                let reasons = names::qualified_name(&key.to_ascii_lowercase());
                errs.syntax(&fp, &f.field_path, reasons);
            }
            _ => errs.not_supported(&fp, &f.field_path, supported),
        }
        return;
    }
    errs.one_of(&fp, &f.field_path, supported);
}

const RESOURCE_FIELDS: &[&str] = &[
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
];

fn validate_resource_field_selector(
    r: &ResourceFieldSelector,
    in_volume: bool,
    ctx: &SpecContext,
    path: &Path,
    errs: &mut Errors,
) {
    let cp = path.child("containerName");
    if r.container_name.is_empty() {
        if in_volume {
            errs.required(&cp, "");
        }
    } else if !ctx.has_container(&r.container_name) {
        errs.invalid(&cp, q(&r.container_name), "must reference a container in the pod");
    }
    let rp = path.child("resource");
    let hugepages =
        r.resource.starts_with("limits.hugepages-") || r.resource.starts_with("requests.hugepages-");
    if r.resource.is_empty() {
        errs.required(&rp, "");
    } else if !hugepages {
        errs.one_of(&rp, &r.resource, RESOURCE_FIELDS);
    }
    if let Some(d) = r.divisor.as_ref().filter(|d| !d.string.is_empty()) {
        let allowed: &[&str] = if r.resource.ends_with(".cpu") {
            &["1m", "1"]
        } else {
            &["1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"]
        };
        errs.one_of(&path.child("divisor"), &d.string, allowed);
    }
}

fn validate_volume_mounts(c: &Container, path: &Path, ctx: &SpecContext, errs: &mut Errors) {
    let mut paths = BTreeSet::new();
    let privileged = c.security_context.as_ref().and_then(|s| s.privileged) == Some(true);
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let p = path.child("volumeMounts").index(i);
        if m.name.is_empty() {
            errs.required(&p.child("name"), "");
        } else if !ctx.has_volume(&m.name) {
            errs.not_found(&p.child("name"), q(&m.name));
        }
        let mp = p.child("mountPath");
        if m.mount_path.is_empty() {
            errs.required(&mp, "");
        } else if !paths.insert(m.mount_path.as_str()) {
            errs.invalid(&mp, q(&m.mount_path), "must be unique");
        }
        if !m.sub_path.is_empty() {
            local_descending_path(&m.sub_path, &p.child("subPath"), errs);
        }
        if !m.sub_path_expr.is_empty() {
            if !m.sub_path.is_empty() {
                errs.invalid(
                    &p.child("subPathExpr"),
                    q(&m.sub_path_expr),
                    "subPathExpr and subPath are mutually exclusive",
                );
            }
            if m.sub_path_expr.starts_with('/') {
                errs.invalid(&p.child("subPathExpr"), q(&m.sub_path_expr), "must be a relative path");
            }
        }
        if let Some(prop) = m.mount_propagation.as_deref() {
            let pp = p.child("mountPropagation");
            errs.one_of(&pp, prop, &["None", "HostToContainer", "Bidirectional"]);
            if prop == "Bidirectional" && !privileged {
                errs.forbidden(
                    &pp,
                    "Bidirectional mount propagation is available only to privileged containers",
                );
            }
        }
        if let Some(rro) = m.recursive_read_only.as_deref() {
            let rp = p.child("recursiveReadOnly");
            errs.one_of(&rp, rro, &["Disabled", "IfPossible", "Enabled"]);
            if rro != "Disabled" {
                if !m.read_only {
                    errs.forbidden(&rp, "may only be specified when readOnly is true");
                }
                if m.mount_propagation.as_deref().is_some_and(|p| p != "None") {
                    errs.forbidden(
                        &rp,
                        "may only be specified when mountPropagation is None or not specified",
                    );
                }
            }
        }
    }
    let mut devices = BTreeSet::new();
    for (i, d) in c.volume_devices.iter().enumerate() {
        let p = path.child("volumeDevices").index(i);
        let np = p.child("name");
        if d.name.is_empty() {
            errs.required(&np, "");
        } else {
            match ctx.volumes.get(d.name.as_str()) {
                None if !ctx.claim_templates.contains(&d.name.as_str()) => errs.not_found(&np, q(&d.name)),
                Some(v) if v.persistent_volume_claim.is_none() && v.ephemeral.is_none() => errs.invalid(
                    &np,
                    q(&d.name),
                    "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
                ),
                _ => {}
            }
            if c.volume_mounts.iter().any(|m| m.name == d.name) {
                errs.invalid(&np, q(&d.name), "must not already exist in volumeMounts");
            }
        }
        let dp = p.child("devicePath");
        if d.device_path.is_empty() {
            errs.required(&dp, "");
        } else if !devices.insert(d.device_path.as_str()) {
            errs.invalid(&dp, q(&d.device_path), "must be unique");
        } else if d.device_path.split('/').any(|s| s == "..") {
            errs.invalid(&dp, q(&d.device_path), "must not contain '..'");
        }
    }
}

/// A relative path that stays inside its directory.
fn local_descending_path(v: &str, path: &Path, errs: &mut Errors) {
    if v.starts_with('/') {
        errs.invalid(path, q(v), "must be a relative path");
    }
    if v.split('/').any(|s| s == "..") {
        errs.invalid(path, q(v), "must not contain '..'");
    }
}

// --- resources ---

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResourceScope {
    Container,
    Pod,
}

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

/// Extended resources (a domain other than kubernetes.io) are counted in whole units, never overcommitted.
fn is_extended_resource(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

fn validate_resources(r: &ResourceRequirements, path: &Path, scope: ResourceScope, errs: &mut Errors) {
    let limits = validate_resource_list(&r.limits, &path.child("limits"), scope, errs);
    let requests = validate_resource_list(&r.requests, &path.child("requests"), scope, errs);
    for (name, req) in &requests {
        let p = path.child("requests").key(name);
        let req_text = &r.requests[*name].string;
        match limits.get(name) {
            Some(lim) if is_extended_resource(name) && req != lim => {
                let lim_text = &r.limits[*name].string;
                errs.invalid(&p, q(req_text), format!("must be equal to {name} limit of {lim_text}"));
            }
            Some(lim) if req > lim => {
                let lim_text = &r.limits[*name].string;
                errs.invalid(
                    &p,
                    q(req_text),
                    format!("must be less than or equal to {name} limit of {lim_text}"),
                );
            }
            None if is_extended_resource(name) => {
                errs.forbidden(&p, "Limit must be set for non overcommitable resources");
            }
            _ => {}
        }
    }
    for (i, c) in r.claims.iter().enumerate() {
        let p = path.child("claims").index(i);
        if c.name.is_empty() {
            errs.required(&p.child("name"), "");
        }
    }
}

/// Checks each name and amount; returns the amounts that parsed.
fn validate_resource_list<'a>(
    list: &'a BTreeMap<String, Quantity>,
    path: &Path,
    scope: ResourceScope,
    errs: &mut Errors,
) -> BTreeMap<&'a str, Amount> {
    let mut out = BTreeMap::new();
    for (name, qty) in list {
        let p = path.key(name);
        let reasons = names::qualified_name(name);
        if !reasons.is_empty() {
            errs.syntax(&p, name, reasons);
        } else if !name.contains('/') {
            let ok = match scope {
                ResourceScope::Container => is_standard_container_resource(name),
                ResourceScope::Pod => {
                    matches!(name.as_str(), "cpu" | "memory" | "ephemeral-storage")
                        || name.starts_with("hugepages-")
                }
            };
            if !ok {
                let what = if scope == ResourceScope::Container { "containers" } else { "pods" };
                errs.invalid(&p, q(name), format!("must be a standard resource for {what}"));
            }
        }
        match quantity::parse(&qty.string) {
            Err(e) => errs.syntax(&p, &qty.string, vec![e.to_string()]),
            Ok(a) if a.is_negative() => {
                errs.invalid(&p, q(&qty.string), "must be greater than or equal to 0")
            }
            Ok(a) => {
                if is_extended_resource(name) && a.0 % 1_000_000_000 != 0 {
                    errs.invalid(&p, q(&qty.string), "must be an integer");
                }
                out.insert(name.as_str(), a);
            }
        }
    }
    out
}

// --- security ---

fn validate_user_id(v: Option<i64>, path: &Path, errs: &mut Errors) {
    if let Some(v) = v {
        errs.in_range(path, v, 0, MAX_USER_ID);
    }
}

/// The seccomp and AppArmor profiles of a pod or container security context.
fn validate_profiles(
    seccomp: Option<&navarch_api::v1::SeccompProfile>,
    app_armor: Option<&navarch_api::v1::AppArmorProfile>,
    path: &Path,
    errs: &mut Errors,
) {
    if let Some(s) = seccomp {
        validate_profile(
            &s.r#type,
            s.localhost_profile.as_deref(),
            &path.child("seccompProfile"),
            "seccomp",
            errs,
        );
    }
    if let Some(a) = app_armor {
        validate_profile(
            &a.r#type,
            a.localhost_profile.as_deref(),
            &path.child("appArmorProfile"),
            "AppArmor",
            errs,
        );
    }
}

fn validate_profile(type_: &str, localhost: Option<&str>, path: &Path, what: &str, errs: &mut Errors) {
    errs.required_one_of(&path.child("type"), type_, &["RuntimeDefault", "Unconfined", "Localhost"]);
    let lp = path.child("localhostProfile");
    match (type_, localhost) {
        ("Localhost", None | Some("")) => {
            errs.required(&lp, &format!("must be set when {what} type is Localhost"))
        }
        ("Localhost", _) | (_, None) => {}
        (_, Some(_)) => errs.invalid(
            &lp,
            q(localhost.unwrap_or_default()),
            format!("can only be set when {what} type is Localhost"),
        ),
    }
}

fn validate_pod_security_context(sc: &PodSecurityContext, path: &Path, errs: &mut Errors) {
    validate_user_id(sc.run_as_user, &path.child("runAsUser"), errs);
    validate_user_id(sc.run_as_group, &path.child("runAsGroup"), errs);
    validate_user_id(sc.fs_group, &path.child("fsGroup"), errs);
    for (i, g) in sc.supplemental_groups.iter().enumerate() {
        errs.in_range(&path.child("supplementalGroups").index(i), *g, 0, MAX_USER_ID);
    }
    if let Some(p) = sc.fs_group_change_policy.as_deref() {
        errs.one_of(&path.child("fsGroupChangePolicy"), p, &["OnRootMismatch", "Always"]);
    }
    if let Some(p) = sc.supplemental_groups_policy.as_deref() {
        errs.one_of(&path.child("supplementalGroupsPolicy"), p, &["Merge", "Strict"]);
    }
    if let Some(p) = sc.se_linux_change_policy.as_deref() {
        errs.one_of(&path.child("seLinuxChangePolicy"), p, &["Recursive", "MountOption"]);
    }
    let mut seen = Unique::default();
    for (i, s) in sc.sysctls.iter().enumerate() {
        let p = path.child("sysctls").index(i).child("name");
        if s.name.is_empty() {
            errs.required(&p, "");
        } else if !sysctl_name_ok(&s.name) {
            errs.invalid(
                &p,
                q(&s.name),
                "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
            );
        } else {
            seen.check(&s.name, &p, errs);
        }
    }
    validate_profiles(sc.seccomp_profile.as_ref(), sc.app_armor_profile.as_ref(), path, errs);
}

fn sysctl_name_ok(name: &str) -> bool {
    let seg_ok = |s: &str| {
        let edge = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        !s.is_empty()
            && s.starts_with(edge)
            && s.ends_with(edge)
            && s.chars().all(|c| edge(c) || c == '-' || c == '_')
    };
    name.len() <= 253 && name.split(['.', '/']).all(seg_ok)
}

fn validate_security_context(sc: &SecurityContext, path: &Path, errs: &mut Errors) {
    validate_user_id(sc.run_as_user, &path.child("runAsUser"), errs);
    validate_user_id(sc.run_as_group, &path.child("runAsGroup"), errs);
    if let Some(p) = sc.proc_mount.as_deref() {
        errs.one_of(&path.child("procMount"), p, &["Default", "Unmasked"]);
    }
    if sc.allow_privilege_escalation == Some(false) {
        if sc.privileged == Some(true) {
            errs.invalid(
                path,
                q("false"),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            );
        }
        let sys_admin = sc
            .capabilities
            .as_ref()
            .is_some_and(|c| c.add.iter().any(|a| a == "SYS_ADMIN" || a == "CAP_SYS_ADMIN"));
        if sys_admin {
            errs.invalid(
                path,
                q("false"),
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            );
        }
    }
    validate_profiles(sc.seccomp_profile.as_ref(), sc.app_armor_profile.as_ref(), path, errs);
}

// --- scheduling ---

const NODE_SELECTOR_OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"];

fn validate_affinity(a: &Affinity, path: &Path, errs: &mut Errors) {
    if let Some(na) = &a.node_affinity {
        let p = path.child("nodeAffinity");
        if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
            validate_node_selector(req, &p.child("requiredDuringSchedulingIgnoredDuringExecution"), errs);
        }
        for (i, pref) in na.preferred_during_scheduling_ignored_during_execution.iter().enumerate() {
            let pp = p.child("preferredDuringSchedulingIgnoredDuringExecution").index(i);
            validate_weight(pref.weight, &pp.child("weight"), errs);
            match &pref.preference {
                Some(t) => validate_node_selector_term(t, &pp.child("preference"), errs),
                None => errs.required(&pp.child("preference"), ""),
            }
        }
    }
    for (terms, weighted, field) in [
        (
            a.pod_affinity.as_ref().map(|p| &p.required_during_scheduling_ignored_during_execution),
            a.pod_affinity.as_ref().map(|p| &p.preferred_during_scheduling_ignored_during_execution),
            "podAffinity",
        ),
        (
            a.pod_anti_affinity.as_ref().map(|p| &p.required_during_scheduling_ignored_during_execution),
            a.pod_anti_affinity.as_ref().map(|p| &p.preferred_during_scheduling_ignored_during_execution),
            "podAntiAffinity",
        ),
    ] {
        let p = path.child(field);
        for (i, t) in terms.into_iter().flatten().enumerate() {
            validate_pod_affinity_term(
                t,
                &p.child("requiredDuringSchedulingIgnoredDuringExecution").index(i),
                errs,
            );
        }
        for (i, w) in weighted.into_iter().flatten().enumerate() {
            let wp = p.child("preferredDuringSchedulingIgnoredDuringExecution").index(i);
            validate_weight(w.weight, &wp.child("weight"), errs);
            match &w.pod_affinity_term {
                Some(t) => validate_pod_affinity_term(t, &wp.child("podAffinityTerm"), errs),
                None => errs.required(&wp.child("podAffinityTerm"), ""),
            }
        }
    }
}

fn validate_weight(w: i32, path: &Path, errs: &mut Errors) {
    if !(1..=100).contains(&w) {
        errs.invalid(path, w, "must be in the range 1-100");
    }
}

fn validate_node_selector(s: &NodeSelector, path: &Path, errs: &mut Errors) {
    let p = path.child("nodeSelectorTerms");
    if s.node_selector_terms.is_empty() {
        errs.required(&p, "must have at least one node selector term");
    }
    for (i, t) in s.node_selector_terms.iter().enumerate() {
        validate_node_selector_term(t, &p.index(i), errs);
    }
}

fn validate_node_selector_term(t: &NodeSelectorTerm, path: &Path, errs: &mut Errors) {
    for (i, r) in t.match_expressions.iter().enumerate() {
        validate_node_selector_requirement(r, &path.child("matchExpressions").index(i), errs);
    }
    for (i, r) in t.match_fields.iter().enumerate() {
        let p = path.child("matchFields").index(i);
        errs.one_of(&p.child("key"), &r.key, &["metadata.name"]);
        match r.operator.as_str() {
            "In" | "NotIn" if r.values.len() != 1 => errs.required(
                &p.child("values"),
                "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
            ),
            "In" | "NotIn" => {}
            op => errs.not_supported(&p.child("operator"), op, &["In", "NotIn"]),
        }
    }
}

pub(super) fn validate_node_selector_requirement(
    r: &NodeSelectorRequirement,
    path: &Path,
    errs: &mut Errors,
) {
    let vp = path.child("values");
    match r.operator.as_str() {
        "In" | "NotIn" if r.values.is_empty() => {
            errs.required(&vp, "must be specified when `operator` is 'In' or 'NotIn'")
        }
        "Exists" | "DoesNotExist" if !r.values.is_empty() => {
            errs.forbidden(&vp, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        }
        "Gt" | "Lt" if r.values.len() != 1 => {
            errs.required(&vp, "must be specified single value when `operator` is 'Lt' or 'Gt'")
        }
        "Gt" | "Lt" if r.values[0].parse::<i64>().is_err() => {
            errs.invalid(&vp.index(0), q(&r.values[0]), "must be an integer when `operator` is 'Lt' or 'Gt'")
        }
        op if !NODE_SELECTOR_OPERATORS.contains(&op) => {
            errs.not_supported(&path.child("operator"), op, NODE_SELECTOR_OPERATORS)
        }
        _ => {}
    }
    errs.syntax(&path.child("key"), &r.key, names::qualified_name(&r.key));
}

fn validate_pod_affinity_term(t: &PodAffinityTerm, path: &Path, errs: &mut Errors) {
    if let Some(s) = &t.label_selector {
        meta::validate_label_selector(s, &path.child("labelSelector"), errs);
    }
    if let Some(s) = &t.namespace_selector {
        meta::validate_label_selector(s, &path.child("namespaceSelector"), errs);
    }
    for (i, ns) in t.namespaces.iter().enumerate() {
        errs.syntax(&path.child("namespaces").index(i), ns, names::dns1123_label(ns));
    }
    let tp = path.child("topologyKey");
    if t.topology_key.is_empty() {
        errs.required(&tp, "can not be empty");
    } else {
        errs.syntax(&tp, &t.topology_key, names::qualified_name(&t.topology_key));
    }
    for (keys, field) in
        [(&t.match_label_keys, "matchLabelKeys"), (&t.mismatch_label_keys, "mismatchLabelKeys")]
    {
        for (i, k) in keys.iter().enumerate() {
            let p = path.child(field).index(i);
            errs.syntax(&p, k, names::qualified_name(k));
            if t.label_selector.is_none() {
                errs.forbidden(&p, "must not be specified when labelSelector is not set");
            }
        }
    }
    for (i, k) in t.match_label_keys.iter().enumerate() {
        if t.mismatch_label_keys.contains(k) {
            errs.invalid(
                &path.child("matchLabelKeys").index(i),
                q(k),
                "exists in both matchLabelKeys and mismatchLabelKeys",
            );
        }
    }
}

pub(super) fn validate_toleration(t: &Toleration, path: &Path, errs: &mut Errors) {
    if !t.key.is_empty() {
        errs.syntax(&path.child("key"), &t.key, names::qualified_name(&t.key));
    }
    let op = path.child("operator");
    if t.key.is_empty() && t.operator != "Exists" {
        errs.invalid(
            &op,
            q(&t.operator),
            "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        );
    }
    if t.toleration_seconds.is_some() && t.effect != "NoExecute" {
        errs.invalid(
            &path.child("effect"),
            q(&t.effect),
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        );
    }
    match t.operator.as_str() {
        "" | "Equal" => errs.syntax(&path.child("value"), &t.value, names::label_value(&t.value)),
        "Exists" => {
            if !t.value.is_empty() {
                errs.invalid(&op, q(&t.value), "value must be empty when `operator` is 'Exists'");
            }
        }
        other => errs.not_supported(&op, other, &["Equal", "Exists"]),
    }
    if !t.effect.is_empty() {
        errs.one_of(&path.child("effect"), &t.effect, &["NoSchedule", "PreferNoSchedule", "NoExecute"]);
    }
}

fn validate_topology_spread(list: &[TopologySpreadConstraint], path: &Path, errs: &mut Errors) {
    let mut seen = BTreeSet::new();
    for (i, c) in list.iter().enumerate() {
        let p = path.index(i);
        if c.max_skew <= 0 {
            errs.invalid(&p.child("maxSkew"), c.max_skew, "must be greater than zero");
        }
        let kp = p.child("topologyKey");
        if c.topology_key.is_empty() {
            errs.required(&kp, "can not be empty");
        } else {
            errs.syntax(&kp, &c.topology_key, names::qualified_name(&c.topology_key));
        }
        errs.required_one_of(
            &p.child("whenUnsatisfiable"),
            &c.when_unsatisfiable,
            &["DoNotSchedule", "ScheduleAnyway"],
        );
        if let Some(m) = c.min_domains {
            if m <= 0 {
                errs.invalid(&p.child("minDomains"), m, "must be greater than zero");
            } else if c.when_unsatisfiable != "DoNotSchedule" {
                errs.invalid(
                    &p.child("minDomains"),
                    m,
                    "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway",
                );
            }
        }
        for (policy, field) in
            [(&c.node_affinity_policy, "nodeAffinityPolicy"), (&c.node_taints_policy, "nodeTaintsPolicy")]
        {
            if let Some(v) = policy.as_deref() {
                errs.one_of(&p.child(field), v, &["Honor", "Ignore"]);
            }
        }
        if let Some(s) = &c.label_selector {
            meta::validate_label_selector(s, &p.child("labelSelector"), errs);
        }
        for (j, k) in c.match_label_keys.iter().enumerate() {
            errs.syntax(&p.child("matchLabelKeys").index(j), k, names::qualified_name(k));
        }
        if !seen.insert((c.topology_key.as_str(), c.when_unsatisfiable.as_str())) {
            errs.duplicate(&p, format!("{{{}, {}}}", c.topology_key, c.when_unsatisfiable));
        }
    }
}

fn validate_dns_config(spec: &PodSpec, path: &Path, errs: &mut Errors) {
    let cp = path.child("dnsConfig");
    let Some(cfg) = &spec.dns_config else {
        if spec.dns_policy == "None" {
            errs.required(&cp, "must provide `dnsConfig` when `dnsPolicy` is None");
        }
        return;
    };
    let np = cp.child("nameservers");
    if cfg.nameservers.len() > 3 {
        errs.invalid(&np, q(&cfg.nameservers.join(",")), "must not have more than 3 nameservers");
    }
    if spec.dns_policy == "None" && cfg.nameservers.is_empty() {
        errs.required(&np, "must provide at least one DNS nameserver when `dnsPolicy` is None");
    }
    for (i, ns) in cfg.nameservers.iter().enumerate() {
        if !is_ip(ns) {
            errs.invalid(&np.index(i), q(ns), "must be valid IP address");
        }
    }
    let sp = cp.child("searches");
    if cfg.searches.len() > 32 {
        errs.invalid(&sp, q(&cfg.searches.join(",")), "must not have more than 32 search paths");
    }
    for (i, s) in cfg.searches.iter().enumerate() {
        if s != "." {
            let domain = s.strip_suffix('.').unwrap_or(s);
            errs.syntax(&sp.index(i), s, names::dns1123_subdomain(domain));
        }
    }
    for (i, o) in cfg.options.iter().enumerate() {
        if o.name.is_empty() {
            errs.required(&cp.child("options").index(i).child("name"), "");
        }
    }
}

// --- volumes ---

fn volume_sources(v: &Volume) -> Vec<&'static str> {
    [
        (v.host_path.is_some(), "hostPath"),
        (v.empty_dir.is_some(), "emptyDir"),
        (v.secret.is_some(), "secret"),
        (v.nfs.is_some(), "nfs"),
        (v.persistent_volume_claim.is_some(), "persistentVolumeClaim"),
        (v.downward_api.is_some(), "downwardAPI"),
        (v.config_map.is_some(), "configMap"),
        (v.projected.is_some(), "projected"),
        (v.csi.is_some(), "csi"),
        (v.ephemeral.is_some(), "ephemeral"),
        (v.iscsi.is_some(), "iscsi"),
        (v.image.is_some(), "image"),
        (v.git_repo.is_some(), "gitRepo"),
        (v.fc.is_some(), "fc"),
        (v.local.is_some(), "local"),
        (v.gce_persistent_disk.is_some(), "gcePersistentDisk"),
        (v.aws_elastic_block_store.is_some(), "awsElasticBlockStore"),
        (v.glusterfs.is_some(), "glusterfs"),
        (v.rbd.is_some(), "rbd"),
        (v.flex_volume.is_some(), "flexVolume"),
        (v.cinder.is_some(), "cinder"),
        (v.cephfs.is_some(), "cephfs"),
        (v.flocker.is_some(), "flocker"),
        (v.azure_file.is_some(), "azureFile"),
        (v.vsphere_volume.is_some(), "vsphereVolume"),
        (v.quobyte.is_some(), "quobyte"),
        (v.azure_disk.is_some(), "azureDisk"),
        (v.photon_persistent_disk.is_some(), "photonPersistentDisk"),
        (v.portworx_volume.is_some(), "portworxVolume"),
        (v.scale_io.is_some(), "scaleIO"),
        (v.storageos.is_some(), "storageos"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect()
}

fn validate_volumes<'a>(
    volumes: &'a [Volume],
    path: &Path,
    errs: &mut Errors,
) -> BTreeMap<&'a str, &'a Volume> {
    let mut by_name = BTreeMap::new();
    for (i, v) in volumes.iter().enumerate() {
        let p = path.index(i);
        let np = p.child("name");
        if v.name.is_empty() {
            errs.required(&np, "");
        } else {
            errs.syntax(&np, &v.name, names::dns1123_label(&v.name));
            if by_name.insert(v.name.as_str(), v).is_some() {
                errs.duplicate(&np, q(&v.name));
            }
        }
        let sources = volume_sources(v);
        if sources.is_empty() {
            errs.required(&p, "must specify a volume type");
        }
        for extra in sources.iter().skip(1) {
            errs.forbidden(&p.child(extra), "may not specify more than 1 volume type");
        }
        validate_volume_source(v, &p, errs);
    }
    by_name
}

fn file_mode(mode: Option<i32>, path: &Path, errs: &mut Errors) {
    if let Some(m) = mode.filter(|m| !(0..=MAX_FILE_MODE).contains(m)) {
        errs.invalid(path, m, "must be a number between 0 and 0777 (octal), both inclusive");
    }
}

fn validate_key_to_paths(items: &[KeyToPath], path: &Path, errs: &mut Errors) {
    for (i, k) in items.iter().enumerate() {
        let p = path.index(i);
        if k.key.is_empty() {
            errs.required(&p.child("key"), "");
        }
        if k.path.is_empty() {
            errs.required(&p.child("path"), "");
        } else {
            local_descending_path(&k.path, &p.child("path"), errs);
        }
        file_mode(k.mode, &p.child("mode"), errs);
    }
}

fn required_str(value: &str, path: &Path, errs: &mut Errors) -> bool {
    if value.is_empty() {
        errs.required(path, "");
        false
    } else {
        true
    }
}

fn absolute_path(value: &str, path: &Path, errs: &mut Errors) {
    if required_str(value, path, errs) && !value.starts_with('/') {
        errs.invalid(path, q(value), "must be an absolute path");
    }
}

fn validate_downward_files(items: &[DownwardApiVolumeFile], path: &Path, errs: &mut Errors) {
    for (i, f) in items.iter().enumerate() {
        let p = path.index(i);
        if required_str(&f.path, &p.child("path"), errs) {
            local_descending_path(&f.path, &p.child("path"), errs);
        }
        file_mode(f.mode, &p.child("mode"), errs);
        match (&f.field_ref, &f.resource_field_ref) {
            (Some(r), None) => validate_field_selector(r, VOLUME_FIELD_PATHS, &p.child("fieldRef"), errs),
            (None, Some(r)) => {
                let rp = p.child("resourceFieldRef");
                if r.container_name.is_empty() {
                    errs.required(&rp.child("containerName"), "");
                }
                if r.resource.is_empty() {
                    errs.required(&rp.child("resource"), "");
                } else if !r.resource.contains(".hugepages-") {
                    errs.one_of(&rp.child("resource"), &r.resource, RESOURCE_FIELDS);
                }
            }
            (Some(_), Some(_)) => errs.invalid(
                &p,
                q("resource"),
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ),
            (None, None) => errs.required(&p, "one of fieldRef and resourceFieldRef is required"),
        }
    }
}

fn validate_volume_source(v: &Volume, p: &Path, errs: &mut Errors) {
    if let Some(h) = &v.host_path {
        let hp = p.child("hostPath");
        absolute_path(&h.path, &hp.child("path"), errs);
        if h.path.split('/').any(|s| s == "..") {
            errs.invalid(&hp.child("path"), q(&h.path), "must not contain '..'");
        }
        if let Some(t) = h.r#type.as_deref() {
            errs.one_of(
                &hp.child("type"),
                t,
                &[
                    "",
                    "DirectoryOrCreate",
                    "Directory",
                    "FileOrCreate",
                    "File",
                    "Socket",
                    "CharDevice",
                    "BlockDevice",
                ],
            );
        }
    }
    if let Some(e) = &v.empty_dir {
        let ep = p.child("emptyDir");
        if !e.medium.starts_with("HugePages-") {
            errs.one_of(&ep.child("medium"), &e.medium, &["", "Memory", "HugePages"]);
        }
        if let Some(s) = e.size_limit.as_ref().filter(|s| !s.string.is_empty()) {
            let sp = ep.child("sizeLimit");
            match quantity::parse(&s.string) {
                Err(err) => errs.syntax(&sp, &s.string, vec![err.to_string()]),
                Ok(a) if a.is_negative() => {
                    errs.invalid(&sp, q(&s.string), "must be greater than or equal to 0")
                }
                Ok(_) => {}
            }
        }
    }
    if let Some(s) = &v.secret {
        let sp = p.child("secret");
        if required_str(&s.secret_name, &sp.child("secretName"), errs) {
            errs.syntax(&sp.child("secretName"), &s.secret_name, names::dns1123_subdomain(&s.secret_name));
        }
        validate_key_to_paths(&s.items, &sp.child("items"), errs);
        file_mode(s.default_mode, &sp.child("defaultMode"), errs);
    }
    if let Some(c) = &v.config_map {
        let cp = p.child("configMap");
        if required_str(&c.name, &cp.child("name"), errs) {
            errs.syntax(&cp.child("name"), &c.name, names::dns1123_subdomain(&c.name));
        }
        validate_key_to_paths(&c.items, &cp.child("items"), errs);
        file_mode(c.default_mode, &cp.child("defaultMode"), errs);
    }
    if let Some(n) = &v.nfs {
        let np = p.child("nfs");
        required_str(&n.server, &np.child("server"), errs);
        absolute_path(&n.path, &np.child("path"), errs);
    }
    if let Some(c) = &v.persistent_volume_claim {
        required_str(&c.claim_name, &p.child("persistentVolumeClaim").child("claimName"), errs);
    }
    if let Some(d) = &v.downward_api {
        let dp = p.child("downwardAPI");
        validate_downward_files(&d.items, &dp.child("items"), errs);
        file_mode(d.default_mode, &dp.child("defaultMode"), errs);
    }
    if let Some(pr) = &v.projected {
        validate_projected(pr, &p.child("projected"), errs);
    }
    if let Some(c) = &v.csi {
        let dp = p.child("csi").child("driver");
        if required_str(&c.driver, &dp, errs) {
            let lower = c.driver.to_ascii_lowercase();
            let reasons = names::dns1123_subdomain(&lower);
            if c.driver.len() > 63 || !reasons.is_empty() {
                errs.invalid(
                    &dp,
                    q(&c.driver),
                    "a CSI driver name must be at most 63 characters of alphanumerics, '-' or '.', starting and ending with an alphanumeric",
                );
            }
        }
    }
    if let Some(e) = &v.ephemeral {
        let tp = p.child("ephemeral").child("volumeClaimTemplate");
        match &e.volume_claim_template {
            None => errs.required(&tp, ""),
            Some(t) => {
                if let Some(m) = &t.metadata {
                    meta::validate_labels(&m.labels, &tp.child("metadata").child("labels"), errs);
                    meta::validate_annotations(
                        &m.annotations,
                        &tp.child("metadata").child("annotations"),
                        errs,
                    );
                    for (field, set) in [("name", !m.name.is_empty()), ("namespace", !m.namespace.is_empty())]
                    {
                        if set {
                            errs.forbidden(
                                &tp.child("metadata").child(field),
                                "must be empty; it is set from the pod",
                            );
                        }
                    }
                }
                validate_pvc_spec(t.spec.as_ref(), &tp.child("spec"), errs);
            }
        }
    }
    if let Some(i) = &v.iscsi {
        let ip = p.child("iscsi");
        required_str(&i.target_portal, &ip.child("targetPortal"), errs);
        required_str(&i.iqn, &ip.child("iqn"), errs);
        errs.in_range(&ip.child("lun"), i.lun.into(), 0, 255);
    }
    if let Some(i) = &v.image {
        let ip = p.child("image");
        required_str(&i.reference, &ip.child("reference"), errs);
        errs.required_one_of(&ip.child("pullPolicy"), &i.pull_policy, PULL_POLICIES);
    }
    if let Some(g) = &v.git_repo {
        let gp = p.child("gitRepo");
        required_str(&g.repository, &gp.child("repository"), errs);
        if g.directory.starts_with('/') || g.directory.split('/').any(|s| s == "..") {
            errs.invalid(
                &gp.child("directory"),
                q(&g.directory),
                "must be a relative path that does not contain '..'",
            );
        }
    }
    if let Some(f) = &v.fc {
        let fp = p.child("fc");
        if f.target_ww_ns.is_empty() && f.wwids.is_empty() {
            errs.required(&fp.child("targetWWNs"), "must specify either targetWWNs or wwids, but not both");
        } else if !f.target_ww_ns.is_empty() && !f.wwids.is_empty() {
            errs.invalid(
                &fp.child("targetWWNs"),
                q(&f.target_ww_ns.join(",")),
                "targetWWNs and wwids can not be specified simultaneously",
            );
        } else if !f.target_ww_ns.is_empty() {
            match f.lun {
                None => errs.required(&fp.child("lun"), "lun is required if targetWWNs is specified"),
                Some(l) => errs.in_range(&fp.child("lun"), l.into(), 0, 255),
            }
        }
    }
    if v.local.is_some() {
        errs.forbidden(
            &p.child("local"),
            "local volumes are PersistentVolumes only, not a pod volume source",
        );
    }
}

fn validate_projected(pr: &ProjectedVolumeSource, path: &Path, errs: &mut Errors) {
    file_mode(pr.default_mode, &path.child("defaultMode"), errs);
    let mut all_paths: BTreeSet<String> = BTreeSet::new();
    let mut note = |p: &str, at: &Path, errs: &mut Errors| {
        if !p.is_empty() && !all_paths.insert(p.to_string()) {
            errs.invalid(at, q(p), "conflicting duplicate paths");
        }
    };
    for (i, s) in pr.sources.iter().enumerate() {
        let sp = path.child("sources").index(i);
        let kinds: Vec<&str> = [
            (s.secret.is_some(), "secret"),
            (s.downward_api.is_some(), "downwardAPI"),
            (s.config_map.is_some(), "configMap"),
            (s.service_account_token.is_some(), "serviceAccountToken"),
            (s.cluster_trust_bundle.is_some(), "clusterTrustBundle"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        if kinds.is_empty() {
            errs.required(&sp, "must specify exactly 1 projection type");
        }
        for extra in kinds.iter().skip(1) {
            errs.forbidden(&sp.child(extra), "may not specify more than 1 projection type");
        }
        for (items, name, field) in [
            (s.secret.as_ref().map(|x| &x.items), s.secret.as_ref().map(|x| &x.name), "secret"),
            (s.config_map.as_ref().map(|x| &x.items), s.config_map.as_ref().map(|x| &x.name), "configMap"),
        ] {
            let (Some(items), Some(name)) = (items, name) else { continue };
            let fp = sp.child(field);
            required_str(name, &fp.child("name"), errs);
            validate_key_to_paths(items, &fp.child("items"), errs);
            for (j, k) in items.iter().enumerate() {
                note(&k.path, &fp.child("items").index(j).child("path"), errs);
            }
        }
        if let Some(d) = &s.downward_api {
            let dp = sp.child("downwardAPI");
            validate_downward_files(&d.items, &dp.child("items"), errs);
            for (j, f) in d.items.iter().enumerate() {
                note(&f.path, &dp.child("items").index(j).child("path"), errs);
            }
        }
        if let Some(t) = &s.service_account_token {
            let tp = sp.child("serviceAccountToken");
            if required_str(&t.path, &tp.child("path"), errs) {
                local_descending_path(&t.path, &tp.child("path"), errs);
                note(&t.path, &tp.child("path"), errs);
            }
            if let Some(e) = t.expiration_seconds {
                if e < 600 {
                    errs.invalid(
                        &tp.child("expirationSeconds"),
                        e,
                        "may not specify a duration less than 10 minutes",
                    );
                } else if e > 1 << 32 {
                    errs.invalid(
                        &tp.child("expirationSeconds"),
                        e,
                        "may not specify a duration larger than 2^32 seconds",
                    );
                }
            }
        }
        if let Some(b) = &s.cluster_trust_bundle {
            let bp = sp.child("clusterTrustBundle");
            if required_str(&b.path, &bp.child("path"), errs) {
                local_descending_path(&b.path, &bp.child("path"), errs);
                note(&b.path, &bp.child("path"), errs);
            }
            match (b.name.as_deref(), b.signer_name.as_deref()) {
                (Some(_), Some(_)) => errs.invalid(&bp, q(""), "only one of name and signerName may be used"),
                (None, None) => errs.required(&bp, "either name or signerName must be specified"),
                _ => {}
            }
        }
    }
}

const ACCESS_MODES: &[&str] = &["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"];

/// A PersistentVolumeClaim spec (ephemeral volumes, StatefulSet volumeClaimTemplates).
pub(super) fn validate_pvc_spec(spec: Option<&PersistentVolumeClaimSpec>, path: &Path, errs: &mut Errors) {
    let default = PersistentVolumeClaimSpec::default();
    let spec = spec.unwrap_or(&default);
    let ap = path.child("accessModes");
    if spec.access_modes.is_empty() {
        errs.required(&ap, "at least 1 access mode is required");
    }
    for (i, m) in spec.access_modes.iter().enumerate() {
        errs.one_of(&ap.index(i), m, ACCESS_MODES);
    }
    if spec.access_modes.len() > 1 && spec.access_modes.iter().any(|m| m == "ReadWriteOncePod") {
        errs.forbidden(&ap, "may not use ReadWriteOncePod with other access modes");
    }
    let rp = path.child("resources");
    let requests = spec.resources.as_ref().map(|r| &r.requests);
    match requests.and_then(|r| r.get("storage")) {
        None => errs.required(&rp.key("storage"), ""),
        Some(s) => match quantity::parse(&s.string) {
            Err(e) => errs.syntax(&rp.key("storage"), &s.string, vec![e.to_string()]),
            Ok(a) if a.0 <= 0 => errs.invalid(&rp.key("storage"), q(&s.string), "must be greater than zero"),
            Ok(_) => {}
        },
    }
    if let Some(m) = spec.volume_mode.as_deref() {
        errs.one_of(&path.child("volumeMode"), m, &["Block", "Filesystem"]);
    }
    if let Some(sc) = spec.storage_class_name.as_deref().filter(|s| !s.is_empty()) {
        errs.syntax(&path.child("storageClassName"), sc, names::dns1123_subdomain(sc));
    }
    if let Some(s) = &spec.selector {
        meta::validate_label_selector(s, &path.child("selector"), errs);
    }
}

// --- update ---

/// A pod's spec may change only in images, activeDeadlineSeconds (shorter), tolerations (additions),
/// scheduling gates (removals), nodeName (from empty, as binding does) and terminationGracePeriodSeconds
/// (from negative to 1).
fn validate_pod_spec_update(new: &PodSpec, old: &PodSpec, path: &Path, errs: &mut Errors) {
    let mut allowed = old.clone();
    for (list, new_list) in
        [(&mut allowed.containers, &new.containers), (&mut allowed.init_containers, &new.init_containers)]
    {
        for (c, n) in list.iter_mut().zip(new_list) {
            c.image = n.image.clone();
        }
    }

    let adp = path.child("activeDeadlineSeconds");
    match (old.active_deadline_seconds, new.active_deadline_seconds) {
        (Some(_), None) => {
            errs.invalid(&adp, q("nil"), "must not update from a positive integer to nil value")
        }
        (Some(o), Some(n)) if n > o => errs.invalid(&adp, n, "must be less than or equal to previous value"),
        _ => {}
    }
    allowed.active_deadline_seconds = new.active_deadline_seconds;

    let same = |a: &Toleration, b: &Toleration| {
        a.key == b.key && a.operator == b.operator && a.value == b.value && a.effect == b.effect
    };
    if old.tolerations.iter().all(|o| new.tolerations.iter().any(|n| same(o, n))) {
        allowed.tolerations = new.tolerations.clone();
    } else {
        errs.forbidden(
            &path.child("tolerations"),
            "existing toleration can not be modified except its tolerationSeconds",
        );
        allowed.tolerations = new.tolerations.clone();
    }

    if old.termination_grace_period_seconds.is_some_and(|t| t < 0)
        && new.termination_grace_period_seconds == Some(1)
    {
        allowed.termination_grace_period_seconds = Some(1);
    }
    if old.node_name.is_empty() {
        allowed.node_name = new.node_name.clone();
    }
    let added_gate = new.scheduling_gates.iter().find(|g| !old.scheduling_gates.contains(g));
    match added_gate {
        Some(g) => {
            errs.forbidden(
                &path.child("schedulingGates"),
                format!("only deletion is allowed, but found new scheduling gate '{}'", g.name),
            );
            allowed.scheduling_gates = new.scheduling_gates.clone();
        }
        None => allowed.scheduling_gates = new.scheduling_gates.clone(),
    }

    for p in changed_paths(path, &allowed, new) {
        errs.forbidden(&p, POD_UPDATE_FORBIDDEN);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    const POD: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
  labels: {app: web}
spec:
  initContainers:
  - name: init
    image: busybox:1.36
    command: [sh, -c, 'true']
  containers:
  - name: app
    image: nginx:1.25
    ports:
    - {name: http, containerPort: 80}
    - {name: metrics, containerPort: 9090, protocol: TCP}
    env:
    - {name: MODE, value: production}
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: db, key: password}}
    - name: CPU_LIMIT
      valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}
    envFrom:
    - configMapRef: {name: app-env}
    resources:
      requests: {cpu: 250m, memory: 64Mi}
      limits: {cpu: 500m, memory: 128Mi}
    livenessProbe:
      httpGet: {path: /healthz, port: http}
      initialDelaySeconds: 3
      periodSeconds: 3
    readinessProbe:
      tcpSocket: {port: 80}
    startupProbe:
      exec: {command: [cat, /tmp/healthy]}
      failureThreshold: 30
    lifecycle:
      preStop: {sleep: {seconds: 5}}
    volumeMounts:
    - {name: data, mountPath: /data}
    - {name: config, mountPath: /etc/app, readOnly: true}
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
  volumes:
  - name: data
    emptyDir: {sizeLimit: 1Gi}
  - name: config
    configMap: {name: app-config, items: [{key: app.yaml, path: app.yaml}]}
  nodeSelector: {kubernetes.io/os: linux}
  tolerations:
  - {key: dedicated, operator: Equal, value: web, effect: NoSchedule}
  - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 300}
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: topology.kubernetes.io/zone, operator: In, values: [a, b]}
          - {key: cores, operator: Gt, values: ['4']}
";

    #[test]
    fn defaults() {
        let mut obj = parse(POD);
        apply_defaults_to(&mut obj);
        let navarch_api::Object::Pod(pod) = obj else { unreachable!() };
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

    fn apply_defaults_to(obj: &mut navarch_api::Object) {
        super::super::apply_defaults(obj);
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
        let mut obj = parse(yaml);
        apply_defaults_to(&mut obj);
        let navarch_api::Object::Pod(pod) = obj else { unreachable!() };
        let r = pod.spec.unwrap().containers[0].resources.clone().unwrap();
        assert_eq!(r.requests["cpu"].string, "500m");
        assert_eq!(r.requests["memory"].string, "1Gi");
    }

    #[test]
    fn valid_pod() {
        assert_valid(POD);
    }

    #[test]
    fn invalid_fields() {
        let c = "spec.containers[0]";
        let cases: Vec<(&str, &str, String, &str)> = vec![
            ("  - name: app\n", "  - name: App\n", format!("{c}.name"), "a lowercase RFC 1123 label"),
            ("  - name: app\n", "  - name: init\n", format!("{c}.name"), "Duplicate value: \"init\""),
            ("    image: nginx:1.25\n", "", format!("{c}.image"), "Required value"),
            ("    image: nginx:1.25\n", "    image: ' nginx'\n", format!("{c}.image"), "leading or trailing whitespace"),
            ("containerPort: 80}", "containerPort: 0}", format!("{c}.ports[0].containerPort"), "Required value"),
            ("containerPort: 80}", "containerPort: 70000}", format!("{c}.ports[0].containerPort"), "Invalid value: 70000: must be between 1 and 65535, inclusive"),
            ("containerPort: 80}", "containerPort: 80, hostPort: -1}", format!("{c}.ports[0].hostPort"), "must be between 1 and 65535"),
            ("{name: metrics,", "{name: http,", format!("{c}.ports[1].name"), "Duplicate value: \"http\""),
            ("{name: metrics,", "{name: metrics-endpoint-x,", format!("{c}.ports[1].name"), "no more than 15"),
            ("protocol: TCP}", "protocol: HTTP}", format!("{c}.ports[1].protocol"), "Unsupported value: \"HTTP\": supported values: \"TCP\", \"UDP\", \"SCTP\""),
            ("{name: MODE,", "{name: A=B,", format!("{c}.env[0].name"), "printable ASCII characters other than '='"),
            ("{name: MODE, value: production}", "{name: MODE, value: x, valueFrom: {fieldRef: {fieldPath: metadata.name}}}", format!("{c}.env[0].valueFrom"), "may not be specified when `value` is not empty"),
            ("{fieldRef: {fieldPath: status.podIP}}", "{}", format!("{c}.env[1].valueFrom"), "must specify one of"),
            ("{fieldRef: {fieldPath: status.podIP}}", "{fieldRef: {fieldPath: status.podIP}, secretKeyRef: {name: a, key: b}}", format!("{c}.env[1].valueFrom"), "may not have more than one field"),
            ("fieldPath: status.podIP", "fieldPath: status.phase", format!("{c}.env[1].valueFrom.fieldRef.fieldPath"), "Unsupported value: \"status.phase\""),
            ("{name: db, key: password}", "{name: db, key: 'a/b'}", format!("{c}.env[2].valueFrom.secretKeyRef.key"), "a valid config key"),
            ("divisor: 1m", "divisor: 2m", format!("{c}.env[3].valueFrom.resourceFieldRef.divisor"), "Unsupported value: \"2m\""),
            ("- configMapRef: {name: app-env}", "- {prefix: X_}", format!("{c}.envFrom[0]"), "must specify one of: `configMapRef` or `secretRef`"),
            ("requests: {cpu: 250m, memory: 64Mi}", "requests: {cpu: '2', memory: 64Mi}", format!("{c}.resources.requests[cpu]"), "Invalid value: \"2\": must be less than or equal to cpu limit of 500m"),
            ("requests: {cpu: 250m, memory: 64Mi}", "requests: {cpu: 250m, memory: 64Mx}", format!("{c}.resources.requests[memory]"), "Invalid value: \"64Mx\": quantities must match"),
            ("requests: {cpu: 250m, memory: 64Mi}", "requests: {cpu: 250m, memory: -64Mi}", format!("{c}.resources.requests[memory]"), "must be greater than or equal to 0"),
            ("requests: {cpu: 250m, memory: 64Mi}", "requests: {cpu: 250m, memory: 64Mi, gpu: '1'}", format!("{c}.resources.requests[gpu]"), "must be a standard resource for containers"),
            ("requests: {cpu: 250m, memory: 64Mi}", "requests: {cpu: 250m, memory: 64Mi, example.com/gpu: '1'}", format!("{c}.resources.requests[example.com/gpu]"), "Forbidden: Limit must be set for non overcommitable resources"),
            ("      httpGet: {path: /healthz, port: http}\n", "      httpGet: {path: /healthz, port: http}\n      tcpSocket: {port: 80}\n", format!("{c}.livenessProbe.tcpSocket"), "Forbidden: may not specify more than 1 handler type"),
            ("      httpGet: {path: /healthz, port: http}\n", "", format!("{c}.livenessProbe"), "Required value: must specify a handler type"),
            ("      periodSeconds: 3\n", "      periodSeconds: -1\n", format!("{c}.livenessProbe.periodSeconds"), "must be greater than or equal to 1"),
            ("      periodSeconds: 3\n", "      periodSeconds: 3\n      successThreshold: 2\n", format!("{c}.livenessProbe.successThreshold"), "Invalid value: 2: must be 1"),
            ("      failureThreshold: 30\n", "      failureThreshold: -2\n", format!("{c}.startupProbe.failureThreshold"), "must be greater than or equal to 1"),
            ("httpGet: {path: /healthz, port: http}", "httpGet: {path: /healthz, port: 0}", format!("{c}.livenessProbe.httpGet.port"), "must be between 1 and 65535"),
            ("httpGet: {path: /healthz, port: http}", "httpGet: {path: /healthz, port: http, scheme: FTP}", format!("{c}.livenessProbe.httpGet.scheme"), "Unsupported value: \"FTP\""),
            ("tcpSocket: {port: 80}", "tcpSocket: {port: 80}\n      terminationGracePeriodSeconds: 10", format!("{c}.readinessProbe.terminationGracePeriodSeconds"), "must not be set for readinessProbes"),
            ("exec: {command: [cat, /tmp/healthy]}", "exec: {command: []}", format!("{c}.startupProbe.exec.command"), "Required value"),
            ("preStop: {sleep: {seconds: 5}}", "preStop: {}", format!("{c}.lifecycle.preStop"), "must specify a handler type"),
            ("preStop: {sleep: {seconds: 5}}", "preStop: {sleep: {seconds: 50}}", format!("{c}.lifecycle.preStop.sleep.seconds"), "less than terminationGracePeriodSeconds (30)"),
            ("{name: data, mountPath: /data}", "{name: cache, mountPath: /data}", format!("{c}.volumeMounts[0].name"), "Not found: \"cache\""),
            ("{name: data, mountPath: /data}", "{name: data}", format!("{c}.volumeMounts[0].mountPath"), "Required value"),
            ("{name: config, mountPath: /etc/app,", "{name: config, mountPath: /data,", format!("{c}.volumeMounts[1].mountPath"), "must be unique"),
            ("{name: data, mountPath: /data}", "{name: data, mountPath: /data, subPath: ../etc}", format!("{c}.volumeMounts[0].subPath"), "must not contain '..'"),
            ("{name: data, mountPath: /data}", "{name: data, mountPath: /data, mountPropagation: Bidirectional}", format!("{c}.volumeMounts[0].mountPropagation"), "only to privileged containers"),
            ("{allowPrivilegeEscalation: false,", "{allowPrivilegeEscalation: false, privileged: true,", format!("{c}.securityContext"), "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"),
            ("{allowPrivilegeEscalation: false,", "{runAsUser: -1,", format!("{c}.securityContext.runAsUser"), "must be between 0 and 2147483647"),
            ("  - name: data\n    emptyDir", "  - name: config\n    emptyDir: {}\n  - name: data\n    emptyDir", "spec.volumes[2].name".into(), "Duplicate value: \"config\""),
            ("  - name: data\n    emptyDir", "  - name: Data\n    emptyDir: {}\n  - name: data\n    emptyDir", "spec.volumes[0].name".into(), "Invalid value: \"Data\": a lowercase RFC 1123 label"),
            ("    emptyDir: {sizeLimit: 1Gi}\n", "    emptyDir: {sizeLimit: 1Gi}\n    hostPath: {path: /x}\n", "spec.volumes[0].emptyDir".into(), "Forbidden: may not specify more than 1 volume type"),
            ("    emptyDir: {sizeLimit: 1Gi}\n", "", "spec.volumes[0]".into(), "Required value: must specify a volume type"),
            ("configMap: {name: app-config,", "configMap: {name: '',", "spec.volumes[1].configMap.name".into(), "Required value"),
            ("[{key: app.yaml, path: app.yaml}]", "[{key: app.yaml, path: /etc/app.yaml}]", "spec.volumes[1].configMap.items[0].path".into(), "must be a relative path"),
            ("[{key: app.yaml, path: app.yaml}]", "[{key: app.yaml, path: app.yaml, mode: 1000}]", "spec.volumes[1].configMap.items[0].mode".into(), "between 0 and 0777"),
            ("{kubernetes.io/os: linux}", "{kubernetes.io/os: -linux}", "spec.nodeSelector[kubernetes.io/os]".into(), "a valid label must be"),
            ("{key: dedicated, operator: Equal, value: web, effect: NoSchedule}", "{key: dedicated, operator: Exists, value: web, effect: NoSchedule}", "spec.tolerations[0].operator".into(), "value must be empty when `operator` is 'Exists'"),
            ("{key: dedicated, operator: Equal, value: web, effect: NoSchedule}", "{key: dedicated, operator: Maybe, effect: NoSchedule}", "spec.tolerations[0].operator".into(), "Unsupported value: \"Maybe\": supported values: \"Equal\", \"Exists\""),
            ("{key: dedicated, operator: Equal, value: web, effect: NoSchedule}", "{key: dedicated, value: web, effect: Sometimes}", "spec.tolerations[0].effect".into(), "Unsupported value: \"Sometimes\""),
            ("effect: NoExecute, tolerationSeconds: 300}", "effect: NoSchedule, tolerationSeconds: 300}", "spec.tolerations[1].effect".into(), "effect must be 'NoExecute' when `tolerationSeconds` is set"),
            ("{key: dedicated, operator: Equal,", "{operator: Equal,", "spec.tolerations[0].operator".into(), "operator must be Exists when `key` is empty"),
            ("operator: In, values: [a, b]}", "operator: In, values: []}", "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values".into(), "must be specified when `operator` is 'In' or 'NotIn'"),
            ("operator: In, values: [a, b]}", "operator: Exists, values: [a]}", "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values".into(), "may not be specified"),
            ("operator: Gt, values: ['4']}", "operator: Gt, values: ['4', '5']}", "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].values".into(), "single value"),
            ("operator: Gt, values: ['4']}", "operator: Gt, values: [four]}", "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].values[0]".into(), "must be an integer"),
            ("operator: Gt, values: ['4']}", "operator: Near, values: ['4']}", "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].operator".into(), "Unsupported value: \"Near\""),
            ("  nodeSelector:", "  restartPolicy: Sometimes\n  nodeSelector:", "spec.restartPolicy".into(), "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""),
            ("  nodeSelector:", "  dnsPolicy: Maybe\n  nodeSelector:", "spec.dnsPolicy".into(), "Unsupported value: \"Maybe\""),
            ("  nodeSelector:", "  dnsPolicy: None\n  nodeSelector:", "spec.dnsConfig".into(), "must provide `dnsConfig` when `dnsPolicy` is None"),
            ("  nodeSelector:", "  terminationGracePeriodSeconds: -5\n  nodeSelector:", "spec.terminationGracePeriodSeconds".into(), "Invalid value: -5: must be greater than or equal to 0"),
            ("  nodeSelector:", "  activeDeadlineSeconds: 0\n  nodeSelector:", "spec.activeDeadlineSeconds".into(), "must be between 1 and 2147483647, inclusive"),
            ("  nodeSelector:", "  hostname: Web_1\n  nodeSelector:", "spec.hostname".into(), "a lowercase RFC 1123 label"),
            ("  nodeSelector:", "  securityContext: {sysctls: [{name: 'net/ipv4/../x', value: '1'}]}\n  nodeSelector:", "spec.securityContext.sysctls[0].name".into(), "must have at most 253 characters"),
            ("  nodeSelector:", "  securityContext: {seccompProfile: {type: Localhost}}\n  nodeSelector:", "spec.securityContext.seccompProfile.localhostProfile".into(), "must be set when seccomp type is Localhost"),
            ("  nodeSelector:", "  topologySpreadConstraints: [{maxSkew: 0, topologyKey: zone, whenUnsatisfiable: DoNotSchedule}]\n  nodeSelector:", "spec.topologySpreadConstraints[0].maxSkew".into(), "must be greater than zero"),
            ("  nodeSelector:", "  ephemeralContainers: [{name: debug, image: busybox}]\n  nodeSelector:", "spec.ephemeralContainers".into(), "cannot be set on create"),
            ("    command: [sh, -c, 'true']\n", "    command: [sh, -c, 'true']\n    readinessProbe: {exec: {command: ['true']}}\n", "spec.initContainers[0].readinessProbe".into(), "may not be set for init containers without restartPolicy=Always"),
            ("    command: [sh, -c, 'true']\n", "    command: [sh, -c, 'true']\n    restartPolicy: Never\n", "spec.initContainers[0].restartPolicy".into(), "Unsupported value: \"Never\": supported values: \"Always\""),
        ];
        for (from, to, path, reason) in &cases {
            assert_error(&edit(POD, from, to), path, reason);
        }
    }

    #[test]
    fn extended_resources_are_whole_units() {
        let yaml = edit(
            POD,
            "limits: {cpu: 500m, memory: 128Mi}",
            "limits: {cpu: 500m, memory: 128Mi, example.com/gpu: 500m}",
        );
        let errs = defaulted_errors(&yaml);
        let c = "spec.containers[0].resources";
        // The request defaults to the limit, so both are reported.
        assert_eq!(errs.len(), 2, "{}", render(&errs));
        assert_eq!(
            errs[0].to_string(),
            format!("{c}.limits[example.com/gpu]: Invalid value: \"500m\": must be an integer")
        );
        assert_eq!(errs[1].path, format!("{c}.requests[example.com/gpu]"));
    }

    #[test]
    fn sidecar_init_container_may_have_probes() {
        let yaml = edit(
            POD,
            "    command: [sh, -c, 'true']\n",
            "    restartPolicy: Always\n    readinessProbe: {exec: {command: ['true']}}\n",
        );
        assert_valid(&yaml);
    }

    #[test]
    fn host_ports() {
        let yaml = edit(
            POD,
            "    command: [sh, -c, 'true']\n",
            "    command: [sh, -c, 'true']\n    restartPolicy: Always\n    ports: [{containerPort: 8080, hostPort: 80}]\n",
        );
        let yaml = edit(
            &yaml,
            "- {name: http, containerPort: 80}",
            "- {name: http, containerPort: 80, hostPort: 80}",
        );
        assert_error(&yaml, "spec.initContainers[0].ports[0].hostPort", "Duplicate value: \"80/TCP\"");
        let host_net = edit(POD, "  nodeSelector:", "  hostNetwork: true\n  nodeSelector:");
        assert_valid(&host_net);
        let mismatch = edit(
            &host_net,
            "- {name: http, containerPort: 80}",
            "- {name: http, containerPort: 80, hostPort: 81}",
        );
        assert_error(&mismatch, "spec.containers[0].ports[0].hostPort", "must match `containerPort`");
    }

    #[test]
    fn no_containers() {
        let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec: {}\n";
        assert_error(yaml, "spec.containers", "Required value");
    }

    #[test]
    fn updates() {
        assert!(update_errors(POD, POD).is_empty());
        let new_image = edit(POD, "image: nginx:1.25", "image: nginx:1.26");
        assert!(update_errors(POD, &new_image).is_empty());
        let new_toleration = edit(
            POD,
            "  tolerations:\n",
            "  tolerations:\n  - {key: extra, operator: Exists, effect: NoSchedule}\n",
        );
        assert!(update_errors(POD, &new_toleration).is_empty());
        let bound = edit(POD, "  nodeSelector:", "  nodeName: node-1\n  nodeSelector:");
        assert!(update_errors(POD, &bound).is_empty(), "binding sets nodeName once");
        let rebound = edit(POD, "  nodeSelector:", "  nodeName: node-2\n  nodeSelector:");
        assert_single(
            &update_errors(&bound, &rebound),
            "spec.nodeName",
            "pod updates may not change fields",
            "",
        );

        let port = edit(POD, "containerPort: 9090", "containerPort: 9091");
        assert_single(
            &update_errors(POD, &port),
            "spec.containers[0].ports[1].containerPort",
            "Forbidden: pod updates may not change fields other than",
            "",
        );
        let removed =
            edit(POD, "  - {key: dedicated, operator: Equal, value: web, effect: NoSchedule}\n", "");
        assert_single(
            &update_errors(POD, &removed),
            "spec.tolerations",
            "existing toleration can not be modified",
            "",
        );
        let deadline = edit(POD, "  nodeSelector:", "  activeDeadlineSeconds: 100\n  nodeSelector:");
        let longer = edit(POD, "  nodeSelector:", "  activeDeadlineSeconds: 200\n  nodeSelector:");
        assert_single(
            &update_errors(&deadline, &longer),
            "spec.activeDeadlineSeconds",
            "must be less than or equal to previous value",
            "",
        );
        let shorter = edit(POD, "  nodeSelector:", "  activeDeadlineSeconds: 50\n  nodeSelector:");
        assert!(update_errors(&deadline, &shorter).is_empty());
        let labels = edit(POD, "labels: {app: web}", "labels: {app: web, extra: x}");
        assert!(update_errors(POD, &labels).is_empty(), "metadata may change");
    }

    #[test]
    fn volume_sources_validate() {
        let base = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers: [{name: a, image: x, volumeMounts: [{name: v, mountPath: /v}]}]\n  volumes:\n  - name: v\n";
        let ok = [
            "    hostPath: {path: /var/log, type: Directory}\n",
            "    secret: {secretName: s, defaultMode: 0400}\n",
            "    persistentVolumeClaim: {claimName: c}\n",
            "    nfs: {server: nfs.example.com, path: /exports}\n",
            "    downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}, {path: cpu, resourceFieldRef: {containerName: a, resource: limits.cpu}}]}\n",
            "    projected: {sources: [{serviceAccountToken: {path: token, expirationSeconds: 3600}}, {configMap: {name: ca, items: [{key: ca.crt, path: ca.crt}]}}, {downwardAPI: {items: [{path: ns, fieldRef: {fieldPath: metadata.namespace}}]}}]}\n",
            "    csi: {driver: secrets-store.csi.k8s.io}\n",
            "    ephemeral: {volumeClaimTemplate: {spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}}\n",
            "    image: {reference: 'registry.example/data:v1'}\n",
        ];
        for src in ok {
            assert_valid(&format!("{base}{src}"));
        }
        let bad: &[(&str, &str, &str)] = &[
            ("    hostPath: {path: var/log}\n", "spec.volumes[0].hostPath.path", "must be an absolute path"),
            (
                "    hostPath: {path: /x, type: Folder}\n",
                "spec.volumes[0].hostPath.type",
                "Unsupported value: \"Folder\"",
            ),
            ("    secret: {}\n", "spec.volumes[0].secret.secretName", "Required value"),
            (
                "    persistentVolumeClaim: {}\n",
                "spec.volumes[0].persistentVolumeClaim.claimName",
                "Required value",
            ),
            ("    nfs: {server: s, path: exports}\n", "spec.volumes[0].nfs.path", "must be an absolute path"),
            (
                "    downwardAPI: {items: [{path: x, fieldRef: {fieldPath: spec.nodeName}}]}\n",
                "spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath",
                "Unsupported value: \"spec.nodeName\"",
            ),
            (
                "    downwardAPI: {items: [{path: x, resourceFieldRef: {resource: limits.cpu}}]}\n",
                "spec.volumes[0].downwardAPI.items[0].resourceFieldRef.containerName",
                "Required value",
            ),
            (
                "    projected: {sources: [{serviceAccountToken: {path: t, expirationSeconds: 60}}]}\n",
                "spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds",
                "less than 10 minutes",
            ),
            (
                "    projected: {sources: [{serviceAccountToken: {path: t}}, {serviceAccountToken: {path: t}}]}\n",
                "spec.volumes[0].projected.sources[1].serviceAccountToken.path",
                "conflicting duplicate paths",
            ),
            (
                "    projected: {sources: [{}]}\n",
                "spec.volumes[0].projected.sources[0]",
                "must specify exactly 1 projection type",
            ),
            (
                "    ephemeral: {volumeClaimTemplate: {spec: {resources: {requests: {storage: 1Gi}}}}}\n",
                "spec.volumes[0].ephemeral.volumeClaimTemplate.spec.accessModes",
                "at least 1 access mode is required",
            ),
            (
                "    ephemeral: {volumeClaimTemplate: {spec: {accessModes: [ReadWriteOnce]}}}\n",
                "spec.volumes[0].ephemeral.volumeClaimTemplate.spec.resources[storage]",
                "Required value",
            ),
            ("    local: {path: /mnt}\n", "spec.volumes[0].local", "PersistentVolumes only"),
            ("    csi: {driver: 'bad driver'}\n", "spec.volumes[0].csi.driver", "a CSI driver name"),
        ];
        for (src, path, reason) in bad {
            assert_error(&format!("{base}{src}"), path, reason);
        }
    }

    #[test]
    fn pod_affinity_terms() {
        let base = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers: [{name: a, image: x}]\n  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {matchExpressions: [{key: app, operator: In, values: [web]}]}\n        topologyKey: kubernetes.io/hostname\n";
        assert_valid(base);
        let p = "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]";
        assert_error(
            &edit(base, "        topologyKey: kubernetes.io/hostname\n", ""),
            &format!("{p}.topologyKey"),
            "Required value: can not be empty",
        );
        assert_error(
            &edit(base, "operator: In, values: [web]", "operator: In"),
            &format!("{p}.labelSelector.matchExpressions[0].values"),
            "must be specified",
        );
        assert_error(
            &edit(base, "operator: In,", "operator: Within,"),
            &format!("{p}.labelSelector.matchExpressions[0].operator"),
            "Unsupported value: \"Within\"",
        );
        let weighted = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers: [{name: a, image: x}]\n  affinity:\n    podAffinity:\n      preferredDuringSchedulingIgnoredDuringExecution:\n      - weight: 101\n        podAffinityTerm: {topologyKey: zone}\n";
        assert_error(
            weighted,
            "spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
            "must be in the range 1-100",
        );
    }
}
