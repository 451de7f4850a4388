//! The rows of PersistentVolumes, PersistentVolumeClaims and StorageClasses (`printPersistentVolume`,
//! `printPersistentVolumeClaim`, `printStorageClass` of Kubernetes 1.32): access modes abbreviated
//! (`RWO,ROX,RWX,RWOP`), classes read as `helper.GetPersistentVolume(Claim)Class` reads them, and the
//! default class's name followed by ` (default)`.

use serde_json::Value;

use super::{at, list_at, str_at};
use crate::storage::{ANN_BETA_DEFAULT_CLASS, ANN_BETA_STORAGE_CLASS, ANN_DEFAULT_CLASS};

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// `helper.GetAccessModesAsString`: the modes present, abbreviated, in Kubernetes' fixed order.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .into_iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| short)
    .collect::<Vec<_>>()
    .join(",")
}

/// A quantity as the printers show it: its text, `0` when absent (Go's zero Quantity).
fn quantity(v: &Value) -> String {
    v.as_str().map_or_else(|| "0".to_string(), str::to_string)
}

fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    at(o, "metadata.annotations").get(key).and_then(Value::as_str)
}

/// The phase, or `Terminating` once the object is being deleted.
fn phase(o: &Value) -> String {
    if str_at(o, "metadata.deletionTimestamp").is_empty() {
        str_at(o, "status.phase").to_string()
    } else {
        "Terminating".to_string()
    }
}

/// An optional string field, `<unset>` when absent.
fn or_unset(v: &Value) -> String {
    v.as_str().unwrap_or("<unset>").to_string()
}

pub(super) fn persistent_volume(o: &Value, age: Value) -> Vec<Value> {
    let claim = match at(o, "spec.claimRef") {
        Value::Null => String::new(),
        r => format!("{}/{}", str_at(r, "namespace"), str_at(r, "name")),
    };
    // The beta annotation wins over the field.
    let class = annotation(o, ANN_BETA_STORAGE_CLASS).unwrap_or_else(|| str_at(o, "spec.storageClassName"));
    vec![
        s(str_at(o, "metadata.name")),
        s(quantity(at(o, "spec.capacity.storage"))),
        s(access_modes(list_at(o, "spec.accessModes"))),
        s(str_at(o, "spec.persistentVolumeReclaimPolicy")),
        s(phase(o)),
        s(claim),
        s(class),
        s(or_unset(at(o, "spec.volumeAttributesClassName"))),
        s(str_at(o, "status.reason")),
        age,
        s(or_unset(at(o, "spec.volumeMode"))),
    ]
}

pub(super) fn persistent_volume_claim(o: &Value, age: Value) -> Vec<Value> {
    let volume = str_at(o, "spec.volumeName");
    // Capacity and access modes are the bound volume's, shown once the claim names one.
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (quantity(at(o, "status.capacity.storage")), access_modes(list_at(o, "status.accessModes")))
    };
    let class = annotation(o, ANN_BETA_STORAGE_CLASS)
        .or_else(|| at(o, "spec.storageClassName").as_str())
        .unwrap_or_default();
    vec![
        s(str_at(o, "metadata.name")),
        s(phase(o)),
        s(volume),
        s(capacity),
        s(modes),
        s(class),
        s(or_unset(at(o, "spec.volumeAttributesClassName"))),
        age,
        s(or_unset(at(o, "spec.volumeMode"))),
    ]
}

pub(super) fn storage_class(o: &Value, age: Value) -> Vec<Value> {
    let mut name = str_at(o, "metadata.name").to_string();
    let default =
        [ANN_DEFAULT_CLASS, ANN_BETA_DEFAULT_CLASS].iter().any(|k| annotation(o, k) == Some("true"));
    if default {
        name.push_str(" (default)");
    }
    let or = |path: &str, default: &str| at(o, path).as_str().unwrap_or(default).to_string();
    vec![
        s(name),
        s(str_at(o, "provisioner")),
        s(or("reclaimPolicy", "Delete")),
        s(or("volumeBindingMode", "Immediate")),
        // A boolean cell, as upstream sends it.
        Value::Bool(at(o, "allowVolumeExpansion").as_bool().unwrap_or(false)),
        age,
    ]
}
