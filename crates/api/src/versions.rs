//! Kinds also served at an API version other than the one they are stored as (autoscaling/v1's
//! HorizontalPodAutoscaler beside the stored autoscaling/v2): for each, the version's [`KindInfo`] (the
//! REST layer's paths and discovery), the navarch message that describes its shape (Kubernetes protobuf
//! bodies, OpenAPI), and a pair of conversions between its JSON form and the stored version's.
//!
//! Everything behind the REST layer (registry, validation, gRPC, controllers) sees the stored version only.

use std::sync::LazyLock;

use serde_json::Value;

use crate::{KINDS, KindInfo};

/// A kind served at another version through a pair of JSON conversions.
pub struct ServedVersion {
    /// The kind at this version: `api_version` is the served one, everything else the stored kind's.
    pub info: KindInfo,
    /// The navarch message with this version's shape.
    pub message: &'static str,
    /// This version's JSON → the stored version's; an error says which field this version cannot have.
    pub to_stored: fn(Value) -> Result<Value, String>,
    /// The stored version's JSON → this version's.
    pub from_stored: fn(Value) -> Value,
}

fn also_at(kind: &str, api_version: &'static str) -> KindInfo {
    let stored = KINDS.iter().find(|k| k.kind == kind).expect("a served version of a stored kind");
    KindInfo { api_version, ..stored.clone() }
}

/// Every kind served at a version besides its stored one.
pub static SERVED_VERSIONS: LazyLock<Vec<ServedVersion>> = LazyLock::new(|| {
    vec![ServedVersion {
        info: also_at("HorizontalPodAutoscaler", "autoscaling/v1"),
        message: "HorizontalPodAutoscalerV1",
        to_stored: crate::autoscaling::v1::to_v2,
        from_stored: crate::autoscaling::v1::from_v2,
    }]
});

/// The served version `info` names, or `None` when `info` is a stored kind.
pub fn served(info: &KindInfo) -> Option<&'static ServedVersion> {
    SERVED_VERSIONS.iter().find(|s| s.info.kind == info.kind && s.info.api_version == info.api_version)
}

/// Every kind at every version it is served at: the stored kinds, then the other versions.
pub fn all_kinds() -> impl Iterator<Item = &'static KindInfo> {
    KINDS.iter().chain(SERVED_VERSIONS.iter().map(|s| &s.info))
}

/// The navarch message describing `info`'s shape at its version (the kind's own name for stored kinds).
pub fn message(info: &KindInfo) -> &'static str {
    served(info).map_or(info.kind, |s| s.message)
}

/// The kind whose shape navarch's `message` is (`HorizontalPodAutoscalerV1` → `HorizontalPodAutoscaler`):
/// a served version's kind, else the message's own name.
pub fn kind_of_message(message: &str) -> &str {
    SERVED_VERSIONS.iter().find(|s| s.message == message).map_or(message, |s| s.info.kind)
}

/// `value`, an object of `info`'s version, as the stored version's JSON.
pub fn to_stored(info: &KindInfo, value: Value) -> Result<Value, String> {
    match served(info) {
        Some(s) => (s.to_stored)(value),
        None => Ok(value),
    }
}

/// `value`, the stored version's JSON, as `info`'s version's.
pub fn from_stored(info: &KindInfo, value: Value) -> Value {
    match served(info) {
        Some(s) => (s.from_stored)(value),
        None => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpa_is_served_at_v1_too() {
        let v1 = all_kinds().find(|k| k.api_version == "autoscaling/v1").unwrap();
        assert_eq!(
            (v1.kind, v1.plural, v1.has_status),
            ("HorizontalPodAutoscaler", "horizontalpodautoscalers", true)
        );
        assert_eq!(message(v1), "HorizontalPodAutoscalerV1");
        let v2 = crate::kind_info("hpa").unwrap();
        assert_eq!(v2.api_version, "autoscaling/v2");
        assert!(served(v2).is_none());
        assert_eq!(message(v2), "HorizontalPodAutoscaler");
        assert_eq!(kind_of_message("HorizontalPodAutoscalerV1"), "HorizontalPodAutoscaler");
        assert_eq!(kind_of_message("Pod"), "Pod");
    }
}
