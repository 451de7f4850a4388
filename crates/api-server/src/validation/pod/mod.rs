//! Pods and pod specs (also the pod templates of every workload): Kubernetes' defaults
//! (`SetDefaults_Pod`, `SetDefaults_PodSpec`, `SetDefaults_Container`, `SetDefaults_Probe`, ...) and
//! validation (`ValidatePodSpec`, `ValidatePodUpdate`).
//!
//! This file owns what applies to the pod spec as a whole: the rules that differ between a pod and the
//! templates of workloads ([`PodSpecRules`]), the entry points for pods and templates, and the spec-level
//! fields (restart and DNS policy, names, deadlines, host aliases, DNS config, gates, resource claims).
//! Each other concern has its own file:
//!
//! * [`defaults`]: everything Kubernetes fills in on a pod spec;
//! * [`containers`]: containers, their ports, probes and lifecycle hooks;
//! * [`env`]: environment variables and the field references of the downward API;
//! * [`ephemeral`]: what ephemeral containers may not set, and what a write through
//!   `pods/ephemeralcontainers` may change;
//! * [`resources`]: resource requests, limits and overhead;
//! * [`security`]: pod and container security contexts;
//! * [`scheduling`]: node selectors, affinity, tolerations and topology spread;
//! * [`volumes`]: volume sources, volume mounts and devices, PersistentVolumeClaim specs;
//! * [`update`]: what a pod update may change.

mod containers;
mod defaults;
mod env;
mod ephemeral;
mod resources;
mod scheduling;
mod security;
mod update;
mod volumes;

use std::collections::BTreeMap;

use navarch_api::names;
use navarch_api::v1::*;

pub(super) use self::containers::validate_port_num_or_name;
use self::containers::{ContainerKind, validate_container, validate_host_ports};
pub(super) use self::defaults::{default_pod, default_pod_template, default_pvc_spec};
pub(super) use self::env::config_key;
pub(super) use self::ephemeral::validate_ephemeral_containers_update;
use self::resources::{ResourceScope, validate_resource_list, validate_resources};
pub(super) use self::scheduling::validate_node_selector;
use self::scheduling::{validate_affinity, validate_toleration, validate_topology_spread};
use self::security::validate_pod_security_context;
use self::update::validate_pod_spec_update;
use self::volumes::validate_volumes;
pub(super) use self::volumes::{
    no_backsteps, validate_access_modes, validate_host_path, validate_nfs, validate_pvc_spec,
};
use super::field::{Errors, Path, is_ip, q};
use super::meta::{self, Unique};

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];
/// `imagePullPolicy` values (of containers and of image volumes).
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];

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

#[cfg(test)]
pub(super) mod tests {
    use super::super::testing::*;

    /// A pod that uses most of the spec; the tests of every file edit it to break one field.
    pub(super) const POD: &str = "\
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

    /// The shared [`assert_edit_errors`](super::super::testing::assert_edit_errors) of edits of [`POD`].
    pub(super) fn assert_edit_errors(cases: &[(&str, &str, String, &str)]) {
        super::super::testing::assert_edit_errors(POD, cases);
    }

    #[test]
    fn valid_pod() {
        assert_valid(POD);
    }
    #[test]
    fn invalid_spec_fields() {
        let c = "spec.containers[0]";
        assert_edit_errors(&[
            ("  - name: app\n", "  - name: init\n", format!("{c}.name"), "Duplicate value: \"init\""),
            (
                "  nodeSelector:",
                "  restartPolicy: Sometimes\n  nodeSelector:",
                "spec.restartPolicy".into(),
                "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ),
            (
                "  nodeSelector:",
                "  dnsPolicy: Maybe\n  nodeSelector:",
                "spec.dnsPolicy".into(),
                "Unsupported value: \"Maybe\"",
            ),
            (
                "  nodeSelector:",
                "  dnsPolicy: None\n  nodeSelector:",
                "spec.dnsConfig".into(),
                "must provide `dnsConfig` when `dnsPolicy` is None",
            ),
            (
                "  nodeSelector:",
                "  terminationGracePeriodSeconds: -5\n  nodeSelector:",
                "spec.terminationGracePeriodSeconds".into(),
                "Invalid value: -5: must be greater than or equal to 0",
            ),
            (
                "  nodeSelector:",
                "  activeDeadlineSeconds: 0\n  nodeSelector:",
                "spec.activeDeadlineSeconds".into(),
                "must be between 1 and 2147483647, inclusive",
            ),
            (
                "  nodeSelector:",
                "  hostname: Web_1\n  nodeSelector:",
                "spec.hostname".into(),
                "a lowercase RFC 1123 label",
            ),
            (
                "  nodeSelector:",
                "  ephemeralContainers: [{name: debug, image: busybox}]\n  nodeSelector:",
                "spec.ephemeralContainers".into(),
                "cannot be set on create",
            ),
        ]);
    }

    #[test]
    fn no_containers() {
        let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec: {}\n";
        assert_error(yaml, "spec.containers", "Required value");
    }
}
