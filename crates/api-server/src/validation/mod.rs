//! Defaulting and validation of every kind, as Kubernetes' api-server does them (the `SetDefaults_*`
//! functions and `pkg/apis/*/validation`).
//!
//! [`apply_defaults`] fills in what Kubernetes fills in on create and update; [`validate`] returns every
//! problem of an object (and, on update, every forbidden change against the stored object) as
//! [`FieldError`]s whose paths and reasons read like Kubernetes' (`spec.replicas: Invalid value: -1: must
//! be greater than or equal to 0`).
//!
//! Ordering contract for the registry: call [`apply_defaults`] after `metadata.uid` is assigned (a Job's
//! selector is generated from it, as Kubernetes does) and before [`validate`]. Server-owned metadata
//! (creationTimestamp, generation, deletionTimestamp) and allocated Service values (clusterIP, nodePorts)
//! are the registry's to carry over from the stored object on update; they are not checked here.

mod batch;
mod meta;
mod other;
mod pod;
mod service;
mod workloads;

use std::fmt;

use navarch_api::Object;
use serde::Serialize;
use serde_yaml::Value;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Kubernetes' field path: `spec.template.spec.containers[0].ports[1].containerPort`,
    /// `metadata.labels[app.kubernetes.io/name]`.
    pub path: String,
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Fills in what Kubernetes defaults on create and update.
pub fn apply_defaults(obj: &mut Object) {
    match obj {
        Object::Namespace(o) => other::default_namespace(o),
        Object::Node(o) => other::default_node(o),
        Object::Pod(o) => pod::default_pod(o),
        Object::Service(o) => service::default_service(o),
        Object::Endpoints(o) => other::default_endpoints(o),
        Object::Secret(o) => other::default_secret(o),
        Object::ReplicaSet(o) => workloads::default_replica_set(o),
        Object::Deployment(o) => workloads::default_deployment(o),
        Object::DaemonSet(o) => workloads::default_daemon_set(o),
        Object::StatefulSet(o) => workloads::default_stateful_set(o),
        Object::Job(o) => batch::default_job(o),
        Object::CronJob(o) => batch::default_cron_job(o),
        Object::ConfigMap(_) | Object::ServiceAccount(_) | Object::Event(_) | Object::Lease(_) => {}
    }
}

/// Validates `obj`; `old` is the stored object on update (then immutable fields are checked too).
pub fn validate(obj: &Object, old: Option<&Object>) -> Vec<FieldError> {
    let mut errs = Errors::default();
    if old.is_some_and(|old| old.kind() != obj.kind()) {
        errs.immutable(&Path::new("kind"));
        return errs.into_vec();
    }
    meta::validate_object_meta(obj.meta(), obj.info(), name_rule(obj), &Path::new("metadata"), &mut errs);
    if let Some(old) = old {
        meta::validate_object_meta_update(obj.meta(), old.meta(), &Path::new("metadata"), &mut errs);
    }

    /// The stored object as the same kind as `obj` (checked above).
    macro_rules! old_as {
        ($kind:ident) => {
            old.and_then(|o| match o {
                Object::$kind(o) => Some(o),
                _ => None,
            })
        };
    }
    match obj {
        Object::Namespace(o) => other::validate_namespace(o, &mut errs),
        Object::Node(o) => other::validate_node(o, old_as!(Node), &mut errs),
        Object::Pod(o) => pod::validate_pod(o, old_as!(Pod), &mut errs),
        Object::Service(o) => service::validate_service(o, old_as!(Service), &mut errs),
        Object::Endpoints(o) => other::validate_endpoints(o, &mut errs),
        Object::ConfigMap(o) => other::validate_config_map(o, old_as!(ConfigMap), &mut errs),
        Object::Secret(o) => other::validate_secret(o, old_as!(Secret), &mut errs),
        Object::ServiceAccount(o) => other::validate_service_account(o, &mut errs),
        Object::Event(o) => other::validate_event(o, &mut errs),
        Object::ReplicaSet(o) => workloads::validate_replica_set(o, old_as!(ReplicaSet), &mut errs),
        Object::Deployment(o) => workloads::validate_deployment(o, old_as!(Deployment), &mut errs),
        Object::DaemonSet(o) => workloads::validate_daemon_set(o, old_as!(DaemonSet), &mut errs),
        Object::StatefulSet(o) => workloads::validate_stateful_set(o, old_as!(StatefulSet), &mut errs),
        Object::Job(o) => batch::validate_job(o, old_as!(Job), &mut errs),
        Object::CronJob(o) => batch::validate_cron_job(o, &mut errs),
        Object::Lease(o) => other::validate_lease(o, &mut errs),
    }
    errs.into_vec()
}

/// Which syntax a kind's names must follow.
fn name_rule(obj: &Object) -> meta::NameRule {
    match obj {
        Object::Namespace(_) => meta::NameRule::Dns1123Label,
        Object::Service(_) => meta::NameRule::Dns1035Label,
        // Jobs get an 11-character suffix (`-<minutes>`) and must stay a 63-character label.
        Object::CronJob(_) => meta::NameRule::Dns1123SubdomainMax(52),
        _ => meta::NameRule::Dns1123Subdomain,
    }
}

/// A field path under construction, printed in Kubernetes' notation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path(String);

impl Path {
    pub(crate) fn new(root: &str) -> Path {
        Path(root.to_string())
    }
    /// `a.b`
    pub(crate) fn child(&self, name: &str) -> Path {
        if self.0.is_empty() { Path(name.to_string()) } else { Path(format!("{}.{name}", self.0)) }
    }
    /// `a[3]`
    pub(crate) fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }
    /// `a[key]`
    pub(crate) fn key(&self, k: &str) -> Path {
        Path(format!("{}[{k}]", self.0))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Sets a string field to its default when it is empty.
pub(crate) fn set_if_empty(field: &mut String, value: &str) {
    if field.is_empty() {
        *field = value.to_string();
    }
}

/// An IPv4 or IPv6 address.
pub(crate) fn is_ip(v: &str) -> bool {
    v.parse::<std::net::IpAddr>().is_ok()
}

/// An address and prefix length (`10.244.0.0/16`, `fd00::/64`).
pub(crate) fn parse_cidr(v: &str) -> Option<(std::net::IpAddr, u8)> {
    let (ip, prefix) = v.split_once('/')?;
    let ip: std::net::IpAddr = ip.parse().ok()?;
    if !prefix.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let len: u8 = prefix.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

/// A string value as Kubernetes prints it in reasons (Go's `%q`).
pub(crate) fn q(s: &str) -> String {
    format!("{s:?}")
}

/// `"a", "b", "c"`
fn quoted_list(values: &[&str]) -> String {
    values.iter().map(|v| q(v)).collect::<Vec<_>>().join(", ")
}

/// The errors found so far, with constructors for Kubernetes' kinds of field error.
#[derive(Debug, Default)]
pub(crate) struct Errors(Vec<FieldError>);

impl Errors {
    pub(crate) fn into_vec(self) -> Vec<FieldError> {
        self.0
    }

    pub(crate) fn add(&mut self, path: &Path, reason: impl Into<String>) {
        self.0.push(FieldError { path: path.0.clone(), reason: reason.into() });
    }

    /// `Required value` (with an optional detail).
    pub(crate) fn required(&mut self, path: &Path, detail: &str) {
        if detail.is_empty() {
            self.add(path, "Required value");
        } else {
            self.add(path, format!("Required value: {detail}"));
        }
    }

    /// `Invalid value: <value>: <detail>`; `value` is printed as given (use [`q`] for strings).
    pub(crate) fn invalid(&mut self, path: &Path, value: impl fmt::Display, detail: impl AsRef<str>) {
        self.add(path, format!("Invalid value: {value}: {}", detail.as_ref()));
    }

    /// `Unsupported value: "x": supported values: "a", "b"`
    pub(crate) fn not_supported(&mut self, path: &Path, value: &str, supported: &[&str]) {
        self.add(
            path,
            format!("Unsupported value: {}: supported values: {}", q(value), quoted_list(supported)),
        );
    }

    /// `Duplicate value: <value>`
    pub(crate) fn duplicate(&mut self, path: &Path, value: impl fmt::Display) {
        self.add(path, format!("Duplicate value: {value}"));
    }

    /// `Forbidden: <detail>`
    pub(crate) fn forbidden(&mut self, path: &Path, detail: impl AsRef<str>) {
        self.add(path, format!("Forbidden: {}", detail.as_ref()));
    }

    /// `Not found: <value>`
    pub(crate) fn not_found(&mut self, path: &Path, value: impl fmt::Display) {
        self.add(path, format!("Not found: {value}"));
    }

    /// `Too long: must have at most <max> bytes`
    pub(crate) fn too_long(&mut self, path: &Path, max: usize) {
        self.add(path, format!("Too long: must have at most {max} bytes"));
    }

    /// `Too many: <n>: must have at most <max> items`
    pub(crate) fn too_many(&mut self, path: &Path, n: usize, max: usize) {
        self.add(path, format!("Too many: {n}: must have at most {max} items"));
    }

    pub(crate) fn immutable(&mut self, path: &Path) {
        self.add(path, "field is immutable");
    }

    /// Reports the reasons a syntax check (`navarch_api::names::*`) gave for `value`.
    pub(crate) fn syntax(&mut self, path: &Path, value: &str, reasons: Vec<String>) {
        let got = format!(", got {}", q(value));
        for r in reasons {
            let r = r.strip_suffix(&got).unwrap_or(&r);
            self.invalid(path, q(value), r);
        }
    }

    /// `value` must be one of `supported`.
    pub(crate) fn one_of(&mut self, path: &Path, value: &str, supported: &[&str]) {
        if !supported.contains(&value) {
            self.not_supported(path, value, supported);
        }
    }

    /// Like [`Errors::one_of`], but an empty value is `Required value`.
    pub(crate) fn required_one_of(&mut self, path: &Path, value: &str, supported: &[&str]) {
        if value.is_empty() {
            self.required(path, "");
        } else {
            self.one_of(path, value, supported);
        }
    }

    /// `must be greater than or equal to 0`
    pub(crate) fn non_negative(&mut self, path: &Path, value: i64) {
        if value < 0 {
            self.invalid(path, value, "must be greater than or equal to 0");
        }
    }

    /// `must be greater than zero`
    pub(crate) fn positive(&mut self, path: &Path, value: i64) {
        if value <= 0 {
            self.invalid(path, value, "must be greater than zero");
        }
    }

    /// `must be between <lo> and <hi>, inclusive`
    pub(crate) fn in_range(&mut self, path: &Path, value: i64, lo: i64, hi: i64) {
        if value < lo || value > hi {
            self.invalid(path, value, format!("must be between {lo} and {hi}, inclusive"));
        }
    }
}

/// The paths at which `new` differs from `old` (both serialized as their manifest form), for reporting
/// forbidden changes precisely. Struct fields are joined with `.`, list items and map keys that are not
/// plain identifiers with brackets.
pub(crate) fn changed_paths<T: Serialize + PartialEq>(base: &Path, old: &T, new: &T) -> Vec<Path> {
    if old == new {
        // The common case (status updates, no-op applies) costs no serialization.
        return Vec::new();
    }
    let (Ok(old), Ok(new)) = (serde_yaml::to_value(old), serde_yaml::to_value(new)) else {
        return vec![base.clone()];
    };
    let mut out = Vec::new();
    diff_values(base, &old, &new, &mut out);
    out
}

fn diff_values(path: &Path, old: &Value, new: &Value, out: &mut Vec<Path>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Mapping(a), Value::Mapping(b)) => {
            let mut keys: Vec<&Value> = a.keys().collect();
            keys.extend(b.keys().filter(|k| !a.contains_key(*k)));
            for k in keys {
                let name = k.as_str().map(str::to_string).unwrap_or_else(|| format!("{k:?}"));
                let is_field = name.starts_with(|c: char| c.is_ascii_alphabetic())
                    && name.chars().all(|c| c.is_ascii_alphanumeric());
                let p = if is_field { path.child(&name) } else { path.key(&name) };
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff_values(&p, x, y, out),
                    _ => out.push(p),
                }
            }
        }
        (Value::Sequence(a), Value::Sequence(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_values(&path.index(i), x, y, out);
            }
        }
        _ => out.push(path.clone()),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the table-driven tests of every validation file.

    use navarch_api::Object;

    use super::{FieldError, apply_defaults, validate};

    /// Reads one object from YAML (panics on malformed test input).
    pub(crate) fn parse(yaml: &str) -> Object {
        let mut objs = navarch_api::manifest::parse(yaml, "test.yaml")
            .unwrap_or_else(|e| panic!("test manifest does not parse: {e:?}"));
        assert_eq!(objs.len(), 1, "expected one object");
        objs.remove(0)
    }

    /// Reads, defaults and validates every document of `yaml`.
    pub(crate) fn defaulted_errors(yaml: &str) -> Vec<FieldError> {
        let objs = navarch_api::manifest::parse(yaml, "test.yaml")
            .unwrap_or_else(|e| panic!("test manifest does not parse: {e:?}"));
        objs.into_iter()
            .flat_map(|mut o| {
                apply_defaults(&mut o);
                validate(&o, None)
            })
            .collect()
    }

    /// Asserts that the defaulted object validates cleanly.
    pub(crate) fn assert_valid(yaml: &str) {
        let errs = defaulted_errors(yaml);
        assert!(errs.is_empty(), "expected no errors, got:\n{}", render(&errs));
    }

    /// Asserts that the defaulted object has exactly one error, at `path`, whose reason contains
    /// `reason`.
    pub(crate) fn assert_error(yaml: &str, path: &str, reason: &str) {
        let errs = defaulted_errors(yaml);
        assert_single(&errs, path, reason, yaml);
    }

    pub(crate) fn assert_single(errs: &[FieldError], path: &str, reason: &str, context: &str) {
        assert!(
            errs.len() == 1 && errs[0].path == path && errs[0].reason.contains(reason),
            "expected exactly `{path}: ...{reason}...`, got:\n{}\nfor:\n{context}",
            render(errs)
        );
    }

    /// Validates `new` as an update of `old` (both defaulted).
    pub(crate) fn update_errors(old: &str, new: &str) -> Vec<FieldError> {
        let mut old = parse(old);
        let mut new = parse(new);
        apply_defaults(&mut old);
        apply_defaults(&mut new);
        validate(&new, Some(&old))
    }

    pub(crate) fn render(errs: &[FieldError]) -> String {
        errs.iter().map(|e| format!("  {e}\n")).collect()
    }

    /// Applies `edit` (a `sed`-like `from` → `to` replacement that must match) to `base`.
    pub(crate) fn edit(base: &str, from: &str, to: &str) -> String {
        assert!(base.contains(from), "test edit {from:?} does not match the base manifest");
        base.replacen(from, to, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn display_and_paths() {
        let e = FieldError { path: "spec.replicas".into(), reason: "Required value".into() };
        assert_eq!(e.to_string(), "spec.replicas: Required value");
        let p = Path::new("spec").child("containers").index(0).child("resources").child("limits").key("cpu");
        assert_eq!(p.to_string(), "spec.containers[0].resources.limits[cpu]");
        assert_eq!(Path::new("").child("a").to_string(), "a");
    }

    #[test]
    fn error_texts() {
        let mut errs = Errors::default();
        let p = Path::new("x");
        errs.not_supported(&p, "Sometimes", &["Always", "OnFailure", "Never"]);
        errs.invalid(&p, -1, "must be greater than or equal to 0");
        errs.syntax(&p, "Foo", navarch_api::names::dns1123_label("Foo"));
        let v = errs.into_vec();
        assert_eq!(
            v[0].to_string(),
            r#"x: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#
        );
        assert_eq!(v[1].to_string(), "x: Invalid value: -1: must be greater than or equal to 0");
        assert!(v[2].to_string().starts_with(r#"x: Invalid value: "Foo": a lowercase RFC 1123 label"#));
        assert!(!v[2].reason.contains("got"), "{}", v[2]);
    }

    #[test]
    fn diff_paths() {
        #[derive(Serialize, PartialEq)]
        struct S {
            a: i32,
            items: Vec<i32>,
            labels: std::collections::BTreeMap<String, String>,
        }
        let old =
            S { a: 1, items: vec![1, 2], labels: [("app.kubernetes.io/name".into(), "x".into())].into() };
        let new =
            S { a: 2, items: vec![1, 3], labels: [("app.kubernetes.io/name".into(), "y".into())].into() };
        let paths: Vec<String> =
            changed_paths(&Path::new("spec"), &old, &new).iter().map(|p| p.to_string()).collect();
        assert_eq!(paths, ["spec.a", "spec.items[1]", "spec.labels[app.kubernetes.io/name]"]);
        assert!(changed_paths(&Path::new("spec"), &old, &old).is_empty());
    }

    /// The api crate's manifest fixtures (real-shaped manifests of every kind) validate once the registry
    /// has done its part (namespace and uid assigned) and defaults are applied.
    #[test]
    fn api_fixtures_validate() {
        for (file, text) in [
            ("app.yaml", include_str!("../../../api/tests/fixtures/app.yaml")),
            ("misc.yaml", include_str!("../../../api/tests/fixtures/misc.yaml")),
        ] {
            let objs = navarch_api::manifest::parse(text, file).unwrap();
            assert!(objs.len() > 2, "{file}");
            for mut obj in objs {
                if obj.info().namespaced && obj.meta().namespace.is_empty() {
                    obj.meta_mut().namespace = "default".into();
                }
                obj.meta_mut().uid = "0a1b2c3d-0000-4000-8000-000000000001".into();
                apply_defaults(&mut obj);
                let errs = validate(&obj, None);
                assert!(
                    errs.is_empty(),
                    "{file}: {} {}:
{}",
                    obj.kind(),
                    obj.key(),
                    render(&errs)
                );
            }
        }
    }

    #[test]
    fn kind_change_is_rejected() {
        let cm = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\n");
        let sa = parse("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: default}\n");
        let errs = validate(&sa, Some(&cm));
        assert_single(&errs, "kind", "field is immutable", "");
    }
}
