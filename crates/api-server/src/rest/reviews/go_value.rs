//! Go's `%#v` of the values Kubernetes puts in these kinds' validation errors (`field.Invalid` of a
//! struct prints it so): `authorization.NonResourceAttributes{Path:"/x", Verb:"get"}` and
//! `v1.ObjectMeta{Name:"x", ...}`, so the messages read as kube-apiserver's.

use std::collections::BTreeMap;

use navarch_api::v1::{NonResourceAttributes, ObjectMeta};

use crate::authz::go_format;

/// Go's `%q`.
pub fn quote(s: &str) -> String {
    go_format::quote(s)
}

/// `%#v` of the internal `authorization.NonResourceAttributes`.
pub fn non_resource_attributes(n: &NonResourceAttributes) -> String {
    format!("authorization.NonResourceAttributes{{Path:{}, Verb:{}}}", quote(&n.path), quote(&n.verb))
}

/// `%#v` of a `map[string]string`: `map[string]string(nil)` or `map[string]string{"a":"b"}` (sorted,
/// as Go prints maps).
fn string_map(m: &BTreeMap<String, String>) -> String {
    if m.is_empty() {
        return "map[string]string(nil)".into();
    }
    let items: Vec<String> = m.iter().map(|(k, v)| format!("{}:{}", quote(k), quote(v))).collect();
    format!("map[string]string{{{}}}", items.join(", "))
}

/// `%#v` of a `[]string`.
fn string_slice(items: &[String]) -> String {
    if items.is_empty() {
        return "[]string(nil)".into();
    }
    let items: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[]string{{{}}}", items.join(", "))
}

/// `%#v` of a `metav1.Time` (its `GoString`): `time.Date(2024, time.May, 1, 10, 0, 0, 0, time.Local)`;
/// the zero time is in UTC.
fn time(rfc3339: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let parsed =
        navarch_api::rfc3339::parse(rfc3339).ok().map(|t| humantime::format_rfc3339_nanos(t).to_string());
    let Some(t) = parsed else { return "time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC)".into() };
    // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ
    let num = |range: std::ops::Range<usize>| t.get(range).and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
    let month = MONTHS.get(num(5..7).saturating_sub(1) as usize).copied().unwrap_or("January");
    format!(
        "time.Date({}, time.{month}, {}, {}, {}, {}, {}, time.Local)",
        num(0..4),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
        num(20..29)
    )
}

/// `%#v` of a `metav1.ObjectMeta` (owner references and managed fields summarized by count: their Go
/// form is pointers and raw bytes).
pub fn object_meta(m: &ObjectMeta) -> String {
    let deletion =
        if m.deletion_timestamp.is_empty() { "<nil>".to_string() } else { time(&m.deletion_timestamp) };
    let grace = match m.deletion_grace_period_seconds {
        None => "(*int64)(nil)".to_string(),
        Some(s) => format!("(*int64)({s})"),
    };
    let owners = if m.owner_references.is_empty() {
        "[]v1.OwnerReference(nil)".to_string()
    } else {
        format!("[]v1.OwnerReference{{...{} items}}", m.owner_references.len())
    };
    let managed = if m.managed_fields.is_empty() {
        "[]v1.ManagedFieldsEntry(nil)".to_string()
    } else {
        format!("[]v1.ManagedFieldsEntry{{...{} items}}", m.managed_fields.len())
    };
    format!(
        "v1.ObjectMeta{{Name:{}, GenerateName:{}, Namespace:{}, SelfLink:{}, UID:{}, ResourceVersion:{}, \
         Generation:{}, CreationTimestamp:{}, DeletionTimestamp:{deletion}, DeletionGracePeriodSeconds:{grace}, \
         Labels:{}, Annotations:{}, OwnerReferences:{owners}, Finalizers:{}, ManagedFields:{managed}}}",
        quote(&m.name),
        quote(&m.generate_name),
        quote(&m.namespace),
        quote(&m.self_link),
        quote(&m.uid),
        quote(&m.resource_version),
        m.generation,
        time(&m.creation_timestamp),
        string_map(&m.labels),
        string_map(&m.annotations),
        string_slice(&m.finalizers),
    )
}
