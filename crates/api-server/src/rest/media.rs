//! Content negotiation: what a client's `Accept` asks for and what a request body is.

use http::HeaderMap;
use http::header::{ACCEPT, CONTENT_TYPE};

pub const JSON: &str = "application/json";
pub const YAML: &str = "application/yaml";
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
pub const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";
pub const DISCOVERY_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
pub const DISCOVERY_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// One media range of an `Accept` header: `type/subtype` and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MediaRange {
    essence: String,
    params: Vec<(String, String)>,
}

impl MediaRange {
    fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn parse_media(s: &str) -> MediaRange {
    let mut parts = s.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_string()))
        .collect();
    MediaRange { essence, params }
}

fn accept(headers: &HeaderMap) -> Vec<MediaRange> {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(parse_media)
        .filter(|m| !m.essence.is_empty())
        .collect()
}

/// How to encode a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// `meta.k8s.io/v1 Table` (what `kubectl get` asks for).
    Table,
}

impl Output {
    /// The first acceptable of Table, YAML and JSON, in the client's order. Protobuf is answered with
    /// JSON: clients decode by the response's Content-Type.
    pub fn negotiate(headers: &HeaderMap) -> Output {
        for m in accept(headers) {
            if m.param("as") == Some("Table") && m.param("g") == Some("meta.k8s.io") {
                if matches!(m.param("v"), Some("v1" | "v1beta1")) {
                    return Output::Table;
                }
                continue;
            }
            if m.params.iter().any(|(k, _)| k == "as") {
                continue; // another conversion (PartialObjectMetadata...) we don't serve: try the next
            }
            match m.essence.as_str() {
                YAML => return Output::Yaml,
                JSON | "*/*" | "application/*" => return Output::Json,
                _ => {}
            }
        }
        Output::Json
    }
}

/// Which aggregated discovery version the client asks for, if any.
pub fn aggregated_discovery(headers: &HeaderMap) -> Option<&'static str> {
    for m in accept(headers) {
        if m.param("g") == Some("apidiscovery.k8s.io") && m.param("as") == Some("APIGroupDiscoveryList") {
            match m.param("v") {
                Some("v2") => return Some("v2"),
                Some("v2beta1") => return Some("v2beta1"),
                _ => {}
            }
        } else if m.params.is_empty() {
            return None; // plain JSON before any aggregated type: the legacy lists
        }
    }
    None
}

/// What a request body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Yaml,
    Protobuf,
}

/// The request's body format from its Content-Type (none is JSON); `Err` carries the unsupported type.
pub fn body_format(headers: &HeaderMap) -> Result<BodyFormat, String> {
    let Some(v) = headers.get(CONTENT_TYPE) else { return Ok(BodyFormat::Json) };
    let s = v.to_str().map_err(|_| "<not text>".to_string())?;
    match parse_media(s).essence.as_str() {
        "" | JSON => Ok(BodyFormat::Json),
        YAML | "application/x-yaml" | "text/yaml" => Ok(BodyFormat::Yaml),
        PROTOBUF => Ok(BodyFormat::Protobuf),
        _ => Err(s.to_string()),
    }
}

/// The patch type of a PATCH request's Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    StrategicMerge,
    Apply,
}

pub fn patch_type(headers: &HeaderMap) -> Option<PatchType> {
    let s = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    match parse_media(s).essence.as_str() {
        "application/json-patch+json" => Some(PatchType::Json),
        "application/merge-patch+json" => Some(PatchType::Merge),
        "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(PatchType::Apply),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_str(accept).unwrap());
        h
    }

    #[test]
    fn kubectl_get_asks_for_a_table() {
        let h = headers(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
        );
        assert_eq!(Output::negotiate(&h), Output::Table);
        assert_eq!(Output::negotiate(&headers("application/json")), Output::Json);
        assert_eq!(
            Output::negotiate(&headers("application/vnd.kubernetes.protobuf,application/json")),
            Output::Json
        );
        assert_eq!(Output::negotiate(&headers("application/yaml")), Output::Yaml);
        assert_eq!(Output::negotiate(&HeaderMap::new()), Output::Json);
        let partial =
            headers("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json");
        assert_eq!(Output::negotiate(&partial), Output::Json);
    }

    #[test]
    fn discovery() {
        let h = headers(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
        );
        assert_eq!(aggregated_discovery(&h), Some("v2"));
        assert_eq!(aggregated_discovery(&headers("application/json, */*")), None);
    }

    #[test]
    fn bodies() {
        let mut h = HeaderMap::new();
        assert_eq!(body_format(&h), Ok(BodyFormat::Json));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        assert_eq!(body_format(&h), Ok(BodyFormat::Json));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(body_format(&h).is_err());
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/strategic-merge-patch+json"));
        assert_eq!(patch_type(&h), Some(PatchType::StrategicMerge));
    }
}
