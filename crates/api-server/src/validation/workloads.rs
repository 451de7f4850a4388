//! apps/v1 workloads — ReplicaSet, Deployment, DaemonSet, StatefulSet — and the v1
//! ReplicationController: Kubernetes' defaults (`SetDefaults_Deployment`, ...) and validation
//! (`ValidateDeployment`, ..., and what an update may not change: the selector always, but a
//! ReplicationController's; most of a StatefulSet's spec).

use navarch_api::Resource;
use navarch_api::names;
use navarch_api::selector::Selector;
use navarch_api::v1::*;

use super::field::{Errors, Path, q, set_if_empty};
use super::meta::{self, Unique};
use super::pod::{self, PodSpecRules};

const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;

// ---------------------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------------------

pub(super) fn default_replica_set(rs: &mut ReplicaSet) {
    let spec = rs.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    pod::default_pod_template(spec.template.as_mut(), true);
}

/// Kubernetes' `SetDefaults_ReplicationController`: an empty selector, and empty labels, are the
/// template's labels; one replica.
pub(super) fn default_replication_controller(rc: &mut ReplicationController) {
    let spec = rc.spec.get_or_insert_with(Default::default);
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .map(|m| m.labels.clone())
        .unwrap_or_default();
    if spec.selector.is_empty() {
        spec.selector = template_labels.clone();
    }
    spec.replicas.get_or_insert(1);
    pod::default_pod_template(spec.template.as_mut(), true);
    let meta = rc.metadata.get_or_insert_with(Default::default);
    if meta.labels.is_empty() {
        meta.labels = template_labels;
    }
}

pub(super) fn default_deployment(d: &mut Deployment) {
    let spec = d.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    let strategy = spec.strategy.get_or_insert_with(Default::default);
    set_if_empty(&mut strategy.r#type, "RollingUpdate");
    if strategy.r#type == "RollingUpdate" {
        let ru = strategy.rolling_update.get_or_insert_with(Default::default);
        ru.max_unavailable.get_or_insert_with(|| IntOrString::string("25%"));
        ru.max_surge.get_or_insert_with(|| IntOrString::string("25%"));
    }
    spec.revision_history_limit.get_or_insert(DEFAULT_REVISION_HISTORY_LIMIT);
    spec.progress_deadline_seconds.get_or_insert(DEFAULT_PROGRESS_DEADLINE_SECONDS);
    pod::default_pod_template(spec.template.as_mut(), true);
}

pub(super) fn default_daemon_set(ds: &mut DaemonSet) {
    let spec = ds.spec.get_or_insert_with(Default::default);
    let strategy = spec.update_strategy.get_or_insert_with(Default::default);
    set_if_empty(&mut strategy.r#type, "RollingUpdate");
    if strategy.r#type == "RollingUpdate" {
        let ru = strategy.rolling_update.get_or_insert_with(Default::default);
        ru.max_unavailable.get_or_insert_with(|| IntOrString::int(1));
        ru.max_surge.get_or_insert_with(|| IntOrString::int(0));
    }
    spec.revision_history_limit.get_or_insert(DEFAULT_REVISION_HISTORY_LIMIT);
    pod::default_pod_template(spec.template.as_mut(), true);
}

/// The annotation holding a DaemonSet's template generation (Kubernetes' internal
/// `spec.templateGeneration`, which apps/v1 carries as this annotation).
pub const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

/// What Kubernetes' DaemonSet strategy sets on create (`old` None) and update: the template generation, 1
/// at first, one more each time the pod template changes.
pub(crate) fn prepare_daemon_set(ds: &mut DaemonSet, old: Option<&DaemonSet>) {
    let template_of = |d: &DaemonSet| d.spec.as_ref().and_then(|s| s.template.clone());
    let generation = match old {
        None => 1,
        Some(old) => {
            let current: i64 =
                old.meta().annotations.get(TEMPLATE_GENERATION).and_then(|g| g.parse().ok()).unwrap_or(1);
            if template_of(ds) != template_of(old) { current + 1 } else { current }
        }
    };
    ds.meta_mut().annotations.insert(TEMPLATE_GENERATION.into(), generation.to_string());
}

pub(super) fn default_stateful_set(ss: &mut StatefulSet) {
    let spec = ss.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    set_if_empty(&mut spec.pod_management_policy, "OrderedReady");
    // As Kubernetes: bounds (partition 0) only for a defaulted strategy or given bounds; an explicit
    // `type: RollingUpdate` without them stays without (kubectl's rollout status tells the two apart).
    let strategy = spec.update_strategy.get_or_insert_with(Default::default);
    if strategy.r#type.is_empty() {
        strategy.r#type = "RollingUpdate".into();
        strategy.rolling_update.get_or_insert_with(Default::default);
    }
    if strategy.r#type == "RollingUpdate"
        && let Some(bounds) = strategy.rolling_update.as_mut()
    {
        bounds.partition.get_or_insert(0);
    }
    spec.revision_history_limit.get_or_insert(DEFAULT_REVISION_HISTORY_LIMIT);
    let retention = spec.persistent_volume_claim_retention_policy.get_or_insert_with(Default::default);
    set_if_empty(&mut retention.when_deleted, "Retain");
    set_if_empty(&mut retention.when_scaled, "Retain");
    // The templates are claims, defaulted as claims (their status `Pending` included, as Kubernetes shows).
    for claim in &mut spec.volume_claim_templates {
        super::storage::default_persistent_volume_claim(claim);
    }
    pod::default_pod_template(spec.template.as_mut(), true);
}

// ---------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------

/// The selector is required and non-empty, the template valid, and the template's labels must match the
/// selector (or the controller would never see its own pods).
pub(super) fn validate_selector_and_template(
    selector: Option<&LabelSelector>,
    template: Option<&PodTemplateSpec>,
    kind: &str,
    path: &Path,
    rules: &PodSpecRules,
    errs: &mut Errors,
) {
    let sp = path.child("selector");
    match selector {
        None => errs.required(&sp, ""),
        Some(s) => {
            meta::validate_label_selector(s, &sp, errs);
            if s.match_labels.is_empty() && s.match_expressions.is_empty() {
                errs.invalid(
                    &sp,
                    "{}",
                    format!("empty selector is invalid for {}", kind.to_ascii_lowercase()),
                );
            }
        }
    }
    let tp = path.child("template");
    pod::validate_pod_template(template, &tp, rules, errs);
    let (Some(s), Some(t)) = (selector, template) else { return };
    let Ok(sel) = Selector::from_label_selector(Some(s)) else { return };
    if sel.is_empty() {
        return;
    }
    let default = ObjectMeta::default();
    let labels = &t.metadata.as_ref().unwrap_or(&default).labels;
    if !sel.matches(labels) {
        errs.invalid(
            &tp.child("metadata").child("labels"),
            meta::show_labels(labels),
            "`selector` does not match template `labels`",
        );
    }
}

fn optional_non_negative(v: Option<i32>, path: &Path, errs: &mut Errors) {
    if let Some(v) = v {
        errs.non_negative(path, v.into());
    }
}

/// An absolute number (≥ 0) or a percentage (`25%`, at most 100%); returns whether it is zero.
pub(super) fn validate_int_or_percent(v: Option<&IntOrString>, path: &Path, errs: &mut Errors) -> bool {
    let Some(v) = v else { return true };
    if let Some(n) = v.as_int() {
        errs.non_negative(path, n.into());
        return n == 0;
    }
    let s = v.as_str().unwrap_or_default();
    match s.strip_suffix('%').filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit())) {
        None => {
            errs.invalid(
                path,
                q(s),
                "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', \
                 regex used for validation is '[0-9]+%')",
            );
            false
        }
        Some(d) => {
            let pct: u64 = d.parse().unwrap_or(u64::MAX);
            if pct > 100 {
                errs.invalid(path, q(s), "must not be greater than 100%");
            }
            pct == 0
        }
    }
}

/// [`validate_selector_and_template`] for a controller whose pods run until deleted (ReplicaSet,
/// Deployment, DaemonSet; a StatefulSet's rules also name its claim templates).
fn validate_long_running(
    selector: Option<&LabelSelector>,
    template: Option<&PodTemplateSpec>,
    kind: &'static str,
    path: &Path,
    errs: &mut Errors,
) {
    let rules = PodSpecRules::long_running(kind);
    validate_selector_and_template(selector, template, kind, path, &rules, errs);
}

/// A rolling update's `maxUnavailable` and `maxSurge` (Deployment, DaemonSet) under `path`: each a number
/// or a percentage, not both zero. Returns whether both are non-zero.
fn validate_unavailable_and_surge(
    max_unavailable: Option<&IntOrString>,
    max_surge: Option<&IntOrString>,
    path: &Path,
    errs: &mut Errors,
) -> bool {
    let unavailable_zero = validate_int_or_percent(max_unavailable, &path.child("maxUnavailable"), errs);
    let surge_zero = validate_int_or_percent(max_surge, &path.child("maxSurge"), errs);
    if unavailable_zero && surge_zero {
        errs.invalid(&path.child("maxUnavailable"), 0, "may not be 0 when `maxSurge` is 0");
    }
    !unavailable_zero && !surge_zero
}

/// A ReplicaSet's, Deployment's or DaemonSet's spec (its default when absent), checked by `validate_spec`;
/// on update (`old` is the stored object's spec) the selector, which `selector` reads, may not change.
fn validate_controller<S: Default>(
    spec: Option<&S>,
    old: Option<Option<&S>>,
    selector: fn(&S) -> Option<&LabelSelector>,
    validate_spec: fn(&S, &Path, &mut Errors),
    errs: &mut Errors,
) {
    let path = Path::new("spec");
    let default = S::default();
    let spec = spec.unwrap_or(&default);
    validate_spec(spec, &path, errs);
    if old.is_some_and(|old| old.and_then(selector) != selector(spec)) {
        errs.immutable(&path.child("selector"));
    }
}

pub(super) fn validate_replica_set(rs: &ReplicaSet, old: Option<&ReplicaSet>, errs: &mut Errors) {
    let old = old.map(|o| o.spec.as_ref());
    validate_controller(rs.spec.as_ref(), old, |s| s.selector.as_ref(), validate_replica_set_spec, errs);
}

fn validate_replica_set_spec(spec: &ReplicaSetSpec, path: &Path, errs: &mut Errors) {
    optional_non_negative(spec.replicas, &path.child("replicas"), errs);
    errs.non_negative(&path.child("minReadySeconds"), spec.min_ready_seconds.into());
    validate_long_running(spec.selector.as_ref(), spec.template.as_ref(), "ReplicaSet", path, errs);
}

/// Kubernetes' `ValidateReplicationController`: as a ReplicaSet's spec, with an equality selector that
/// an update may change.
pub(super) fn validate_replication_controller(rc: &ReplicationController, errs: &mut Errors) {
    let path = Path::new("spec");
    let spec = rc.spec.clone().unwrap_or_default();
    optional_non_negative(spec.replicas, &path.child("replicas"), errs);
    errs.non_negative(&path.child("minReadySeconds"), spec.min_ready_seconds.into());
    let selector = (!spec.selector.is_empty())
        .then(|| LabelSelector { match_labels: spec.selector.clone(), ..Default::default() });
    validate_long_running(selector.as_ref(), spec.template.as_ref(), "ReplicationController", &path, errs);
}

pub(super) fn validate_deployment(d: &Deployment, old: Option<&Deployment>, errs: &mut Errors) {
    let old = old.map(|o| o.spec.as_ref());
    validate_controller(d.spec.as_ref(), old, |s| s.selector.as_ref(), validate_deployment_spec, errs);
}

fn validate_deployment_spec(spec: &DeploymentSpec, path: &Path, errs: &mut Errors) {
    optional_non_negative(spec.replicas, &path.child("replicas"), errs);
    validate_long_running(spec.selector.as_ref(), spec.template.as_ref(), "Deployment", path, errs);
    validate_deployment_strategy(spec.strategy.as_ref(), &path.child("strategy"), errs);
    errs.non_negative(&path.child("minReadySeconds"), spec.min_ready_seconds.into());
    optional_non_negative(spec.revision_history_limit, &path.child("revisionHistoryLimit"), errs);
    if let Some(p) = spec.progress_deadline_seconds {
        let pp = path.child("progressDeadlineSeconds");
        errs.non_negative(&pp, p.into());
        if p >= 0 && p <= spec.min_ready_seconds {
            errs.invalid(&pp, p, "must be greater than minReadySeconds");
        }
    }
}

fn validate_deployment_strategy(strategy: Option<&DeploymentStrategy>, path: &Path, errs: &mut Errors) {
    let strategy = strategy.cloned().unwrap_or_default();
    errs.required_one_of(&path.child("type"), &strategy.r#type, &["Recreate", "RollingUpdate"]);
    let rp = path.child("rollingUpdate");
    match (strategy.r#type.as_str(), &strategy.rolling_update) {
        ("Recreate", Some(_)) => {
            errs.forbidden(&rp, "may not be specified when strategy `type` is 'Recreate'")
        }
        ("RollingUpdate", None) => errs.required(&rp, "this should be defaulted and never be nil"),
        ("RollingUpdate", Some(ru)) => {
            validate_unavailable_and_surge(ru.max_unavailable.as_ref(), ru.max_surge.as_ref(), &rp, errs);
        }
        _ => {}
    }
}

/// Kubernetes' `ValidateControllerRevision` (and `...Update`: `data` never changes).
pub(super) fn validate_controller_revision(
    cr: &ControllerRevision,
    old: Option<&ControllerRevision>,
    errs: &mut Errors,
) {
    if cr.data.as_ref().is_none_or(|d| d.raw.is_empty()) {
        errs.required(&Path::new("data"), "data is mandatory");
    }
    errs.non_negative(&Path::new("revision"), cr.revision);
    if old.is_some_and(|old| old.data != cr.data) {
        errs.immutable(&Path::new("data"));
    }
}

pub(super) fn validate_daemon_set(ds: &DaemonSet, old: Option<&DaemonSet>, errs: &mut Errors) {
    let old = old.map(|o| o.spec.as_ref());
    validate_controller(ds.spec.as_ref(), old, |s| s.selector.as_ref(), validate_daemon_set_spec, errs);
}

fn validate_daemon_set_spec(spec: &DaemonSetSpec, path: &Path, errs: &mut Errors) {
    validate_long_running(spec.selector.as_ref(), spec.template.as_ref(), "DaemonSet", path, errs);
    validate_daemon_set_strategy(spec.update_strategy.as_ref(), &path.child("updateStrategy"), errs);
    errs.non_negative(&path.child("minReadySeconds"), spec.min_ready_seconds.into());
    optional_non_negative(spec.revision_history_limit, &path.child("revisionHistoryLimit"), errs);
}

fn validate_daemon_set_strategy(strategy: Option<&DaemonSetUpdateStrategy>, path: &Path, errs: &mut Errors) {
    let strategy = strategy.cloned().unwrap_or_default();
    errs.required_one_of(&path.child("type"), &strategy.r#type, &["RollingUpdate", "OnDelete"]);
    let rp = path.child("rollingUpdate");
    match (strategy.r#type.as_str(), &strategy.rolling_update) {
        ("RollingUpdate", None) => errs.required(&rp, ""),
        ("RollingUpdate", Some(ru)) => {
            let both_non_zero =
                validate_unavailable_and_surge(ru.max_unavailable.as_ref(), ru.max_surge.as_ref(), &rp, errs);
            if both_non_zero {
                let surge = ru.max_surge.as_ref().map(|s| s.to_string()).unwrap_or_default();
                errs.invalid(
                    &rp.child("maxSurge"),
                    q(&surge),
                    "may not be set when maxUnavailable is non-zero",
                );
            }
        }
        _ => {}
    }
}

/// Kubernetes 1.32's message (1.33 made `revisionHistoryLimit` updatable too).
const STATEFUL_SET_UPDATE_FORBIDDEN: &str = "updates to statefulset spec for fields other than 'replicas', \
'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are \
forbidden";

pub(super) fn validate_stateful_set(ss: &StatefulSet, old: Option<&StatefulSet>, errs: &mut Errors) {
    let path = Path::new("spec");
    let default = StatefulSetSpec::default();
    let spec = ss.spec.as_ref().unwrap_or(&default);
    optional_non_negative(spec.replicas, &path.child("replicas"), errs);
    match spec.pod_management_policy.as_str() {
        "" => errs.required(&path.child("podManagementPolicy"), ""),
        "OrderedReady" | "Parallel" => {}
        other => {
            errs.invalid(&path.child("podManagementPolicy"), q(other), "must be 'OrderedReady' or 'Parallel'")
        }
    }

    let sp = path.child("updateStrategy");
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    errs.required_one_of(&sp.child("type"), &strategy.r#type, &["RollingUpdate", "OnDelete"]);
    if let Some(ru) = &strategy.rolling_update {
        let rp = sp.child("rollingUpdate");
        if strategy.r#type != "RollingUpdate" {
            errs.invalid(&rp, q(&strategy.r#type), "only allowed for updateStrategy 'RollingUpdate'");
        }
        optional_non_negative(ru.partition, &rp.child("partition"), errs);
        if let Some(mu) = &ru.max_unavailable {
            let mp = rp.child("maxUnavailable");
            if validate_int_or_percent(Some(mu), &mp, errs) {
                errs.invalid(&mp, q(&mu.to_string()), "must be greater than 0");
            }
        }
    }
    optional_non_negative(spec.revision_history_limit, &path.child("revisionHistoryLimit"), errs);
    errs.non_negative(&path.child("minReadySeconds"), spec.min_ready_seconds.into());
    if let Some(r) = &spec.persistent_volume_claim_retention_policy {
        let rp = path.child("persistentVolumeClaimRetentionPolicy");
        errs.required_one_of(&rp.child("whenDeleted"), &r.when_deleted, &["Retain", "Delete"]);
        errs.required_one_of(&rp.child("whenScaled"), &r.when_scaled, &["Retain", "Delete"]);
    }
    if let Some(o) = &spec.ordinals {
        errs.non_negative(&path.child("ordinals").child("start"), o.start.into());
    }
    if !spec.service_name.is_empty() {
        errs.syntax(&path.child("serviceName"), &spec.service_name, names::dns1123_label(&spec.service_name));
    }

    let mut claim_names = Unique::default();
    let mut claims = Vec::new();
    for (i, c) in spec.volume_claim_templates.iter().enumerate() {
        let p = path.child("volumeClaimTemplates").index(i);
        let name = c.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or_default();
        let np = p.child("metadata").child("name");
        if name.is_empty() {
            errs.required(&np, "");
        } else {
            errs.syntax(&np, name, names::dns1123_label(name));
            if claim_names.check(name, &np, errs) {
                claims.push(name);
            }
        }
        // Kubernetes checks nothing else of the templates: a bad spec is reported when the StatefulSet
        // controller creates the claim (its FailedCreate event carries the claim's validation errors).
    }
    let mut rules = PodSpecRules::long_running("StatefulSet");
    rules.claim_templates = claims;
    validate_selector_and_template(
        spec.selector.as_ref(),
        spec.template.as_ref(),
        "StatefulSet",
        &path,
        &rules,
        errs,
    );

    if let Some(old) = old {
        let old_spec = old.spec.clone().unwrap_or_default();
        let mut allowed = old_spec.clone();
        allowed.replicas = spec.replicas;
        allowed.ordinals = spec.ordinals;
        allowed.template = spec.template.clone();
        allowed.update_strategy = spec.update_strategy.clone();
        allowed.persistent_volume_claim_retention_policy =
            spec.persistent_volume_claim_retention_policy.clone();
        allowed.min_ready_seconds = spec.min_ready_seconds;
        if allowed != *spec {
            errs.forbidden(&path, STATEFUL_SET_UPDATE_FORBIDDEN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    /// The Kubernetes documentation's nginx Deployment, with probes, resources, volumes and env added.
    const NGINX: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  namespace: default
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
        env:
        - name: NGINX_PORT
          value: \"80\"
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        resources:
          requests:
            cpu: 100m
            memory: 128Mi
          limits:
            cpu: 500m
            memory: 256Mi
        livenessProbe:
          httpGet:
            path: /
            port: 80
          initialDelaySeconds: 15
          periodSeconds: 20
        readinessProbe:
          httpGet:
            path: /
            port: 80
          initialDelaySeconds: 5
          periodSeconds: 10
        volumeMounts:
        - name: html
          mountPath: /usr/share/nginx/html
          readOnly: true
        - name: cache
          mountPath: /var/cache/nginx
      volumes:
      - name: html
        configMap:
          name: nginx-html
      - name: cache
        emptyDir: {}
";

    /// What `helm create mychart` renders (with the chart's default values), its pod template labelled with
    /// the chart's selector labels only.
    const HELM: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: release-name-mychart
  namespace: default
  labels:
    helm.sh/chart: mychart-0.1.0
    app.kubernetes.io/name: mychart
    app.kubernetes.io/instance: release-name
    app.kubernetes.io/version: "1.16.0"
    app.kubernetes.io/managed-by: Helm
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: mychart
      app.kubernetes.io/instance: release-name
  template:
    metadata:
      annotations:
        checksum/config: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
      labels:
        app.kubernetes.io/name: mychart
        app.kubernetes.io/instance: release-name
    spec:
      serviceAccountName: release-name-mychart
      securityContext:
        {}
      containers:
        - name: mychart
          securityContext:
            capabilities:
              drop:
              - ALL
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            runAsUser: 1000
          image: "nginx:1.16.0"
          imagePullPolicy: IfNotPresent
          ports:
            - name: http
              containerPort: 80
              protocol: TCP
          livenessProbe:
            httpGet:
              path: /
              port: http
          readinessProbe:
            httpGet:
              path: /
              port: http
          resources:
            {}
      nodeSelector:
        {}
      affinity:
        {}
      tolerations:
        []
"#;

    const STATEFUL_SET: &str = "\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
  namespace: default
spec:
  selector:
    matchLabels:
      app: nginx
  serviceName: nginx
  replicas: 3
  minReadySeconds: 10
  template:
    metadata:
      labels:
        app: nginx
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.24
        ports:
        - containerPort: 80
          name: web
        volumeMounts:
        - name: www
          mountPath: /usr/share/nginx/html
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: [ \"ReadWriteOnce\" ]
      storageClassName: \"my-storage-class\"
      resources:
        requests:
          storage: 1Gi
";

    const DAEMON_SET: &str = "\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: fluentd-elasticsearch
  namespace: kube-system
  labels:
    k8s-app: fluentd-logging
spec:
  selector:
    matchLabels:
      name: fluentd-elasticsearch
  template:
    metadata:
      labels:
        name: fluentd-elasticsearch
    spec:
      tolerations:
      - key: node-role.kubernetes.io/control-plane
        operator: Exists
        effect: NoSchedule
      containers:
      - name: fluentd-elasticsearch
        image: quay.io/fluentd_elasticsearch/fluentd:v2.5.2
        resources:
          limits:
            memory: 200Mi
          requests:
            cpu: 100m
            memory: 200Mi
        volumeMounts:
        - name: varlog
          mountPath: /var/log
      terminationGracePeriodSeconds: 30
      volumes:
      - name: varlog
        hostPath:
          path: /var/log
";

    const REPLICA_SET: &str = "\
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: frontend
  namespace: default
spec:
  replicas: 3
  selector:
    matchLabels:
      tier: frontend
  template:
    metadata:
      labels:
        tier: frontend
    spec:
      containers:
      - name: php-redis
        image: us-docker.pkg.dev/google-samples/containers/gke/gb-frontend:v5
";

    #[test]
    fn realistic_manifests_validate() {
        for m in [NGINX, HELM, STATEFUL_SET, DAEMON_SET, REPLICA_SET] {
            assert_valid(m);
        }
    }

    #[test]
    fn deployment_defaults() {
        let navarch_api::Object::Deployment(d) = defaulted(HELM) else { unreachable!() };
        let spec = d.spec.unwrap();
        assert_eq!(spec.revision_history_limit, Some(10));
        assert_eq!(spec.progress_deadline_seconds, Some(600));
        let strategy = spec.strategy.unwrap();
        assert_eq!(strategy.r#type, "RollingUpdate");
        let ru = strategy.rolling_update.unwrap();
        assert_eq!(ru.max_unavailable.unwrap().as_str(), Some("25%"));
        assert_eq!(ru.max_surge.unwrap().as_str(), Some("25%"));
        let pod = spec.template.unwrap().spec.unwrap();
        assert_eq!(pod.restart_policy, "Always");
        assert_eq!(pod.containers[0].termination_message_path, "/dev/termination-log");

        let unscaled = edit(NGINX, "  replicas: 3\n", "");
        let navarch_api::Object::Deployment(d) = defaulted(&unscaled) else { unreachable!() };
        assert_eq!(d.spec.unwrap().replicas, Some(1));
    }

    #[test]
    fn stateful_and_daemon_set_defaults() {
        let navarch_api::Object::StatefulSet(s) = defaulted(STATEFUL_SET) else { unreachable!() };
        let spec = s.spec.unwrap();
        assert_eq!(spec.pod_management_policy, "OrderedReady");
        let strategy = spec.update_strategy.unwrap();
        assert_eq!(strategy.r#type, "RollingUpdate");
        assert_eq!(strategy.rolling_update.unwrap().partition, Some(0));
        let explicit = STATEFUL_SET
            .replace("  replicas: 3\n", "  replicas: 3\n  updateStrategy: {type: RollingUpdate}\n");
        let navarch_api::Object::StatefulSet(e) = defaulted(&explicit) else { unreachable!() };
        let strategy = e.spec.unwrap().update_strategy.unwrap();
        assert_eq!((strategy.r#type.as_str(), strategy.rolling_update), ("RollingUpdate", None));
        let retention = spec.persistent_volume_claim_retention_policy.unwrap();
        assert_eq!((retention.when_deleted.as_str(), retention.when_scaled.as_str()), ("Retain", "Retain"));
        assert_eq!(spec.revision_history_limit, Some(10));
        let claim = spec.volume_claim_templates[0].spec.as_ref().unwrap();
        assert_eq!(claim.volume_mode.as_deref(), Some("Filesystem"));

        let navarch_api::Object::DaemonSet(d) = defaulted(DAEMON_SET) else { unreachable!() };
        let spec = d.spec.unwrap();
        let ru = spec.update_strategy.unwrap().rolling_update.unwrap();
        assert_eq!(ru.max_unavailable.unwrap().as_int(), Some(1));
        assert_eq!(ru.max_surge.unwrap().as_int(), Some(0));
    }

    #[test]
    fn deployment_errors() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "  replicas: 3\n",
                "  replicas: -1\n",
                "spec.replicas",
                "Invalid value: -1: must be greater than or equal to 0",
            ),
            ("  selector:\n    matchLabels:\n      app: nginx\n", "", "spec.selector", "Required value"),
            (
                "    matchLabels:\n      app: nginx\n",
                "    matchLabels: {}\n",
                "spec.selector",
                "empty selector is invalid for deployment",
            ),
            (
                "      labels:\n        app: nginx\n    spec:",
                "      labels:\n        app: apache\n    spec:",
                "spec.template.metadata.labels",
                "Invalid value: {\"app\":\"apache\"}: `selector` does not match template `labels`",
            ),
            (
                "    spec:\n      containers:",
                "    spec:\n      restartPolicy: OnFailure\n      containers:",
                "spec.template.spec.restartPolicy",
                "Unsupported value: \"OnFailure\": supported values: \"Always\"",
            ),
            (
                "    spec:\n      containers:",
                "    spec:\n      activeDeadlineSeconds: 10\n      containers:",
                "spec.template.spec.activeDeadlineSeconds",
                "Forbidden: activeDeadlineSeconds in Deployment is not Supported",
            ),
            (
                "        - containerPort: 80\n",
                "        - containerPort: 0\n",
                "spec.template.spec.containers[0].ports[0].containerPort",
                "Required value",
            ),
            (
                "  replicas: 3\n",
                "  replicas: 3\n  strategy: {type: Rolling}\n",
                "spec.strategy.type",
                "Unsupported value: \"Rolling\": supported values: \"Recreate\", \"RollingUpdate\"",
            ),
            (
                "  replicas: 3\n",
                "  replicas: 3\n  strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}\n",
                "spec.strategy.rollingUpdate",
                "Forbidden: may not be specified when strategy `type` is 'Recreate'",
            ),
            (
                "  replicas: 3\n",
                "  replicas: 3\n  strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}\n",
                "spec.strategy.rollingUpdate.maxUnavailable",
                "may not be 0 when `maxSurge` is 0",
            ),
            (
                "  replicas: 3\n",
                "  replicas: 3\n  strategy: {rollingUpdate: {maxSurge: -1}}\n",
                "spec.strategy.rollingUpdate.maxSurge",
                "must be greater than or equal to 0",
            ),
            (
                "  replicas: 3\n",
                "  replicas: 3\n  strategy: {rollingUpdate: {maxSurge: 'ten'}}\n",
                "spec.strategy.rollingUpdate.maxSurge",
                "a valid percent string",
            ),
            (
                "  replicas: 3\n",
                "  replicas: 3\n  strategy: {rollingUpdate: {maxUnavailable: 150%}}\n",
                "spec.strategy.rollingUpdate.maxUnavailable",
                "must not be greater than 100%",
            ),
            (
                "  replicas: 3\n",
                "  replicas: 3\n  minReadySeconds: -1\n",
                "spec.minReadySeconds",
                "must be greater than or equal to 0",
            ),
            (
                "  replicas: 3\n",
                "  replicas: 3\n  revisionHistoryLimit: -1\n",
                "spec.revisionHistoryLimit",
                "must be greater than or equal to 0",
            ),
            (
                "  replicas: 3\n",
                "  replicas: 3\n  minReadySeconds: 30\n  progressDeadlineSeconds: 30\n",
                "spec.progressDeadlineSeconds",
                "must be greater than minReadySeconds",
            ),
        ];
        assert_edit_errors(NGINX, cases);
        let no_template = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: default}\nspec: {selector: {matchLabels: {a: b}}}\n";
        assert_error(no_template, "spec.template", "Required value");
    }

    #[test]
    fn selector_is_immutable() {
        let changed = add_selector_label(NGINX, "app: nginx", "tier: web");
        assert_update_error(NGINX, &changed, "spec.selector", "field is immutable");
        let scaled = edit(NGINX, "  replicas: 3\n", "  replicas: 5\n");
        assert!(update_errors(NGINX, &scaled).is_empty());
        let rs_changed = add_selector_label(REPLICA_SET, "tier: frontend", "x: y");
        assert_update_error(REPLICA_SET, &rs_changed, "spec.selector", "field is immutable");
        let ds_changed = add_selector_label(DAEMON_SET, "name: fluentd-elasticsearch", "x: y");
        assert_update_error(DAEMON_SET, &ds_changed, "spec.selector", "field is immutable");
        assert!(update_errors(DAEMON_SET, DAEMON_SET).is_empty());
    }

    /// `base` with `extra` added after `label`, its last match label, to both the selector and the pod
    /// template's labels (which then still match).
    fn add_selector_label(base: &str, label: &str, extra: &str) -> String {
        let selector = edit(
            base,
            &format!("      {label}\n  template"),
            &format!("      {label}\n      {extra}\n  template"),
        );
        edit(
            &selector,
            &format!("        {label}\n    spec"),
            &format!("        {label}\n        {extra}\n    spec"),
        )
    }

    #[test]
    fn replica_set_and_daemon_set_errors() {
        assert_edit_errors(
            REPLICA_SET,
            &[
                ("  replicas: 3\n", "  replicas: -2\n", "spec.replicas", "Invalid value: -2"),
                (
                    "        tier: frontend\n    spec",
                    "        tier: backend\n    spec",
                    "spec.template.metadata.labels",
                    "`selector` does not match template `labels`",
                ),
            ],
        );
        let update_strategy = |strategy: &str| format!("spec:\n  updateStrategy: {strategy}\n  selector:");
        assert_edit_errors(
            DAEMON_SET,
            &[
                (
                    "spec:\n  selector:",
                    &update_strategy("{type: Always}"),
                    "spec.updateStrategy.type",
                    "Unsupported value: \"Always\": supported values: \"RollingUpdate\", \"OnDelete\"",
                ),
                (
                    "spec:\n  selector:",
                    &update_strategy("{rollingUpdate: {maxUnavailable: 1, maxSurge: 1}}"),
                    "spec.updateStrategy.rollingUpdate.maxSurge",
                    "may not be set when maxUnavailable is non-zero",
                ),
                (
                    "spec:\n  selector:",
                    &update_strategy("{rollingUpdate: {maxUnavailable: 0%, maxSurge: 0}}"),
                    "spec.updateStrategy.rollingUpdate.maxUnavailable",
                    "may not be 0 when `maxSurge` is 0",
                ),
                (
                    "    matchLabels:\n      name: fluentd-elasticsearch\n",
                    "    matchLabels: {}\n",
                    "spec.selector",
                    "empty selector is invalid for daemonset",
                ),
            ],
        );
    }

    /// Kubernetes' documentation's ReplicationController.
    const REPLICATION_CONTROLLER: &str = "\
apiVersion: v1
kind: ReplicationController
metadata:
  name: nginx
  namespace: default
spec:
  replicas: 3
  selector:
    app: nginx
  template:
    metadata:
      name: nginx
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx
        ports:
        - containerPort: 80
";

    #[test]
    fn replication_controllers() {
        assert_valid(REPLICATION_CONTROLLER);
        // No selector: the template's labels, which become the object's labels too.
        let navarch_api::Object::ReplicationController(rc) =
            defaulted(&edit(REPLICATION_CONTROLLER, "  selector:\n    app: nginx\n", ""))
        else {
            panic!("a ReplicationController")
        };
        let spec = rc.spec.unwrap();
        assert_eq!(spec.selector.get("app").map(String::as_str), Some("nginx"));
        assert_eq!(rc.metadata.unwrap().labels.get("app").map(String::as_str), Some("nginx"));
        assert_edit_errors(
            REPLICATION_CONTROLLER,
            &[
                ("  replicas: 3\n", "  replicas: -1\n", "spec.replicas", "Invalid value: -1"),
                (
                    "  selector:\n    app: nginx\n",
                    "  selector:\n    app: web\n",
                    "spec.template.metadata.labels",
                    "`selector` does not match template `labels`",
                ),
                (
                    "    spec:\n      containers",
                    "    spec:\n      restartPolicy: OnFailure\n      containers",
                    "spec.template.spec.restartPolicy",
                    "Unsupported value: \"OnFailure\": supported values: \"Always\"",
                ),
            ],
        );
        // Unlike the apps/v1 kinds', its selector may change.
        let old = defaulted(REPLICATION_CONTROLLER);
        let new = defaulted(&REPLICATION_CONTROLLER.replace("app: nginx", "app: web"));
        assert!(super::super::validate(&new, Some(&old)).is_empty());
    }

    #[test]
    fn stateful_set_errors() {
        let cases: &[(&str, &str, &str, &str)] = &[
            ("  replicas: 3\n", "  replicas: -1\n", "spec.replicas", "must be greater than or equal to 0"),
            (
                "  replicas: 3\n",
                "  replicas: 3\n  podManagementPolicy: Random\n",
                "spec.podManagementPolicy",
                "Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
            ),
            (
                "  replicas: 3\n",
                "  replicas: 3\n  updateStrategy: {type: OnDelete, rollingUpdate: {partition: 1}}\n",
                "spec.updateStrategy.rollingUpdate",
                "only allowed for updateStrategy 'RollingUpdate'",
            ),
            (
                "  replicas: 3\n",
                "  replicas: 3\n  updateStrategy: {rollingUpdate: {partition: -1}}\n",
                "spec.updateStrategy.rollingUpdate.partition",
                "must be greater than or equal to 0",
            ),
            (
                "  replicas: 3\n",
                "  replicas: 3\n  persistentVolumeClaimRetentionPolicy: {whenDeleted: Keep}\n",
                "spec.persistentVolumeClaimRetentionPolicy.whenDeleted",
                "Unsupported value: \"Keep\": supported values: \"Retain\", \"Delete\"",
            ),
            (
                "        - name: www\n",
                "        - name: data\n",
                "spec.template.spec.containers[0].volumeMounts[0].name",
                "Not found: \"data\"",
            ),
            (
                "      name: www\n    spec:",
                "      name: WWW\n    spec:",
                "spec.volumeClaimTemplates[0].metadata.name",
                "a lowercase RFC 1123 label",
            ),
        ];
        for (from, to, path, reason) in cases {
            let yaml = edit(STATEFUL_SET, from, to);
            let errs = defaulted_errors(&yaml);
            // Renaming the claim template also orphans the mount; only the first error is under test.
            assert!(
                errs.first().is_some_and(|e| e.path == *path && e.reason.contains(reason)),
                "expected `{path}: ...{reason}...`, got:\n{}",
                render(&errs)
            );
        }
    }

    /// Kubernetes validates nothing of a claim template's spec: the claim made from it is validated when
    /// the controller creates it.
    #[test]
    fn claim_template_specs_are_not_validated() {
        assert_valid(&edit(STATEFUL_SET, "      accessModes: [ \"ReadWriteOnce\" ]\n", ""));
        assert_valid(&edit(
            STATEFUL_SET,
            "        requests:\n          storage: 1Gi\n",
            "        requests: {}\n",
        ));
        let navarch_api::Object::StatefulSet(ss) = defaulted(STATEFUL_SET) else { unreachable!() };
        let claim = &ss.spec.unwrap().volume_claim_templates[0];
        assert_eq!(claim.status.as_ref().unwrap().phase, "Pending");
    }

    #[test]
    fn stateful_set_update_rules() {
        let scaled = edit(STATEFUL_SET, "  replicas: 3\n", "  replicas: 5\n");
        assert!(update_errors(STATEFUL_SET, &scaled).is_empty());
        let new_image = edit(STATEFUL_SET, "nginx-slim:0.24", "nginx-slim:0.25");
        assert!(update_errors(STATEFUL_SET, &new_image).is_empty());
        let renamed_service = edit(STATEFUL_SET, "  serviceName: nginx\n", "  serviceName: other\n");
        let message = "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', \
                       'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and \
                       'minReadySeconds' are forbidden";
        assert_update_error(STATEFUL_SET, &renamed_service, "spec", message);
        let bigger = edit(STATEFUL_SET, "storage: 1Gi", "storage: 2Gi");
        assert_update_error(STATEFUL_SET, &bigger, "spec", message);
        // Kubernetes 1.32: revisionHistoryLimit is not among the updatable fields.
        let history = edit(STATEFUL_SET, "  replicas: 3\n", "  replicas: 3\n  revisionHistoryLimit: 2\n");
        assert_update_error(STATEFUL_SET, &history, "spec", message);
        let retention = edit(
            STATEFUL_SET,
            "  replicas: 3\n",
            "  replicas: 3\n  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Delete}\n",
        );
        assert!(update_errors(STATEFUL_SET, &retention).is_empty());
    }
}
