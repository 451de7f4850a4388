//! Field paths and field errors, shared by every validator: [`Path`] builds Kubernetes' field paths
//! (`spec.containers[0].image`, `metadata.labels[app]`), [`Errors`] collects [`FieldError`]s with
//! constructors for Kubernetes' kinds of error (`Required value`, `Invalid value`, `Unsupported value`,
//! ...), [`changed_paths`] finds what an update changed, and the small value helpers every validator and
//! defaulter uses ([`q`], [`is_ip`], [`parse_cidr`], [`set_if_empty`], [`PROTOCOLS`]).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use navarch_api::cidr::{CidrError, Ipv4Cidr};
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

/// The protocols of container, Service and Endpoints ports.
pub(crate) const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];

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
    v.parse::<IpAddr>().is_ok()
}

/// An address and prefix length (`10.244.0.0/16`, `fd00::/64`): IPv4 as every daemon reads it
/// ([`Ipv4Cidr`]), IPv6 with std's address parser and a prefix length of at most 128.
pub(crate) fn parse_cidr(v: &str) -> Option<(IpAddr, u8)> {
    match v.parse::<Ipv4Cidr>() {
        Ok(c) => Some((IpAddr::V4(c.addr()), c.prefix_len())),
        // An IPv6 address with a prefix length of digits only.
        Err(CidrError::NotIpv4(_)) => {
            let (ip, len) = v.split_once('/')?;
            let ip: Ipv6Addr = ip.parse().ok()?;
            let len: u8 = len.parse().ok()?;
            (len <= 128).then_some((IpAddr::V6(ip), len))
        }
        Err(CidrError::Shape(_) | CidrError::PrefixLength(_)) => None,
    }
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
mod tests {
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
    fn cidrs() {
        let v4: IpAddr = "10.244.0.0".parse().unwrap();
        let v6: IpAddr = "fd00::".parse().unwrap();
        assert_eq!(parse_cidr("10.244.0.0/16"), Some((v4, 16)));
        assert_eq!(parse_cidr("fd00::/64"), Some((v6, 64)));
        assert_eq!(parse_cidr("fd00::/128"), Some((v6, 128)));
        for bad in
            ["10.244.0.0", "10.244.0.0/", "10.244.0.0/33", "10.244.0.0/+8", "x/8", "fd00::/129", "fd00::/"]
        {
            assert_eq!(parse_cidr(bad), None, "{bad}");
        }
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
}
