//! Reading objects from request bodies (JSON, YAML; a missing Content-Type is JSON), with Kubernetes'
//! field validation: `Strict` rejects unknown fields, `Warn` (the default) drops them with a warning,
//! `Ignore` drops them silently. Type errors always reject, naming the field path.

use navarch_api::{KindInfo, Object};
use serde_yaml::Value;

use super::media::BodyFormat;
use super::query::Query;
use super::status::StatusError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

impl FieldValidation {
    pub fn from_query(q: &Query) -> Result<FieldValidation, StatusError> {
        match q.get("fieldValidation").unwrap_or("") {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Strict" => Ok(FieldValidation::Strict),
            "Ignore" => Ok(FieldValidation::Ignore),
            other => Err(StatusError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// Parses a body into a generic value. A Kubernetes protobuf body (what client-go's typed clients send) is
/// decoded as navarch's `message` (a kind, or a shape such as `Eviction`) into its JSON form; without a
/// message it is not accepted.
pub fn value(body: &[u8], format: BodyFormat, message: Option<&str>) -> Result<Value, StatusError> {
    match format {
        BodyFormat::Json => serde_json::from_slice::<Value>(body)
            .map_err(|e| StatusError::bad_request(format!("the body of the request is not valid JSON: {e}"))),
        BodyFormat::Yaml => serde_yaml::from_slice::<Value>(body)
            .map_err(|e| StatusError::bad_request(format!("the body of the request is not valid YAML: {e}"))),
        BodyFormat::Protobuf => {
            let message =
                message.ok_or_else(|| StatusError::unsupported_media_type(super::media::PROTOBUF))?;
            let json = super::protobuf::decode_message(message, body).map_err(|e| {
                StatusError::bad_request(format!(
                    "the body of the request is not a valid protobuf {message}: {e}"
                ))
            })?;
            serde_yaml::to_value(&json)
                .map_err(|e| StatusError::bad_request(format!("the body of the request: {e}")))
        }
    }
}

/// Parses a body that is JSON (or, from hand-written clients, YAML) into `T`; `what` names the body in
/// the error (`the patch`, `DeleteOptions`).
pub fn json_or_yaml<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, StatusError> {
    serde_json::from_slice(body)
        .or_else(|_| serde_yaml::from_slice(body))
        .map_err(|e| StatusError::bad_request(format!("{what} is not valid JSON: {e}")))
}

/// A decoded object and the warnings for fields that were dropped.
pub struct Decoded {
    pub object: Object,
    pub warnings: Vec<String>,
}

/// `<Kind> in version "<version>" cannot be handled as a <Kind>: <reason>`, Kubernetes' words for a body it
/// cannot read.
fn cannot_handle(kind: &str, api_version: &str, reason: impl std::fmt::Display) -> StatusError {
    let version = api_version.rsplit('/').next().unwrap_or(api_version);
    StatusError::bad_request(format!("{kind} in version {version:?} cannot be handled as a {kind}: {reason}"))
}

/// Checks that `value` is an object whose own `kind` and `apiVersion`, where it has them, are the
/// request's.
fn check_type_meta(value: &Value, kind: &str, api_version: &str) -> Result<(), StatusError> {
    let Value::Mapping(map) = value else {
        return Err(cannot_handle(kind, api_version, "the body must be an object"));
    };
    let text = |key: &str| map.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    let (own_kind, own_api_version) = (text("kind"), text("apiVersion"));
    if !own_kind.is_empty() && own_kind != kind {
        return Err(StatusError::bad_request(format!(
            "the kind of the object ({own_kind}) does not match the kind of the request ({kind})"
        )));
    }
    if !own_api_version.is_empty() && own_api_version != api_version {
        return Err(StatusError::bad_request(format!(
            "the API version in the data ({own_api_version}) does not match the expected API version ({api_version})"
        )));
    }
    Ok(())
}

/// Reads a request body whose shape is no stored kind — the review kinds (`SelfSubjectAccessReview`,
/// `SubjectAccessReview`, `LocalSubjectAccessReview`, `SelfSubjectRulesReview`, `TokenReview`,
/// `SelfSubjectReview`) and `TokenRequest` — as navarch's message `T`, named `kind`, of `api_version`
/// (`authorization.k8s.io/v1`): JSON, YAML, or Kubernetes protobuf (kubectl's `auth can-i`, `create token`,
/// `auth whoami`). `kind`/`apiVersion` must be absent or match; unknown fields and wrong types are refused.
pub fn message<T: serde::de::DeserializeOwned>(
    body: &[u8],
    format: BodyFormat,
    kind: &str,
    api_version: &str,
) -> Result<T, StatusError> {
    let value = value(body, format, Some(kind))?;
    check_type_meta(&value, kind, api_version)?;
    serde_yaml::from_value(value).map_err(|e| cannot_handle(kind, api_version, e))
}

/// Reads an object of kind `info` from `value`: `kind`/`apiVersion` must be absent or match, unknown
/// fields are handled per `validation`. A body of a version the kind is only served at (not stored) is
/// converted to the stored version first.
pub fn object(
    info: &KindInfo,
    mut value: Value,
    validation: FieldValidation,
) -> Result<Decoded, StatusError> {
    let cannot = |reason: String| cannot_handle(info.kind, info.api_version, reason);
    check_type_meta(&value, info.kind, info.api_version)?;
    if navarch_api::versions::served(info).is_some() {
        let json = serde_json::to_value(&value).map_err(|e| cannot(e.to_string()))?;
        let stored = navarch_api::versions::to_stored(info, json)
            .map_err(|e| cannot(format!("strict decoding error: {e}")))?;
        value = serde_yaml::to_value(&stored).map_err(|e| cannot(e.to_string()))?;
    }
    let mut warnings = Vec::new();
    loop {
        match Object::from_value(info.kind, value.clone()) {
            Ok(object) => return Ok(Decoded { object, warnings }),
            Err(navarch_api::Error::Field { path, reason }) if reason.starts_with("unknown field") => {
                if validation == FieldValidation::Strict {
                    return Err(cannot(format!("strict decoding error: unknown field {path:?}")));
                }
                if !remove(&mut value, &path) {
                    return Err(cannot(format!("{path}: {reason}")));
                }
                if validation == FieldValidation::Warn {
                    warnings.push(format!("unknown field {path:?}"));
                }
            }
            Err(navarch_api::Error::Field { path, reason }) => {
                return Err(cannot(format!("{path}: {reason}")));
            }
            Err(e) => return Err(cannot(e.to_string())),
        }
    }
}

/// Removes the field at `path` (`spec.template.spec.containers[0].foo`); false when it is not there.
fn remove(value: &mut Value, path: &str) -> bool {
    let mut steps: Vec<Step> = Vec::new();
    for part in path.split('.') {
        let (key, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            steps.push(Step::Key(key.to_string()));
        }
        for idx in indexes.split('[').filter(|s| !s.is_empty()) {
            match idx.trim_end_matches(']').parse() {
                Ok(i) => steps.push(Step::Index(i)),
                Err(_) => return false,
            }
        }
    }
    let Some((Step::Key(last), parents)) = steps.split_last() else { return false };
    let mut cur = value;
    for s in parents {
        cur = match (s, cur) {
            (Step::Key(k), Value::Mapping(m)) => match m.get_mut(k.as_str()) {
                Some(v) => v,
                None => return false,
            },
            (Step::Index(i), Value::Sequence(seq)) => match seq.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match cur {
        Value::Mapping(m) => m.remove(last.as_str()).is_some(),
        _ => false,
    }
}

enum Step {
    Key(String),
    Index(usize),
}

#[cfg(test)]
mod tests {
    use navarch_api::kind_info;

    use super::*;

    fn deployment(extra: &str) -> Value {
        serde_yaml::from_str(&format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: 1\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn strict_rejects_unknown_fields_naming_them() {
        let info = kind_info("Deployment").unwrap();
        let v = deployment("  bogus: 1\n");
        let e = object(info, v, FieldValidation::Strict).err().unwrap();
        assert!(e.message.contains(r#"strict decoding error: unknown field "spec.bogus""#), "{}", e.message);
    }

    #[test]
    fn warn_drops_unknown_fields_with_a_warning() {
        let info = kind_info("Deployment").unwrap();
        let v = deployment(
            "  bogus: 1\n  template:\n    spec:\n      containers:\n      - name: c\n        image: x\n        nope: 2\n",
        );
        let d = object(info, v, FieldValidation::Warn).unwrap();
        assert_eq!(
            d.warnings,
            vec![
                r#"unknown field "spec.bogus""#.to_string(),
                r#"unknown field "spec.template.spec.containers[0].nope""#.to_string()
            ]
        );
        let d = object(info, deployment("  bogus: 1\n"), FieldValidation::Ignore).unwrap();
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn wrong_types_and_kinds_are_errors() {
        let info = kind_info("Deployment").unwrap();
        let v: Value = serde_yaml::from_str("kind: Deployment\nspec: {replicas: many}").unwrap();
        let e = object(info, v, FieldValidation::Ignore).err().unwrap();
        assert!(e.message.contains("spec.replicas"), "{}", e.message);
        let v: Value = serde_yaml::from_str("kind: Pod\nmetadata: {name: x}").unwrap();
        assert!(object(info, v, FieldValidation::Warn).is_err());
        let v: Value = serde_yaml::from_str("apiVersion: v1\nkind: Deployment").unwrap();
        assert!(object(info, v, FieldValidation::Warn).is_err());
    }
}
