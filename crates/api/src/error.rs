//! Errors of the API model crate.

/// Why an object or manifest could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("kind: unknown kind {0:?}")]
    UnknownKind(String),
    #[error("decoding {kind}: {reason}")]
    Decode { kind: String, reason: String },
    /// A field has the wrong type, is unknown, or is missing: `path` like `spec.template.spec.containers[0].ports[0].containerPort`.
    #[error("{path}: {reason}")]
    Field { path: String, reason: String },
    #[error("invalid YAML: {0}")]
    Syntax(String),
    #[error("{0}")]
    Quantity(String),
    #[error("{0}")]
    Selector(String),
}

impl Error {
    pub(crate) fn from_path_error(e: serde_path_to_error::Error<serde_yaml::Error>) -> Error {
        let path = e.path().to_string();
        let path = if path == "." { "(document)".to_string() } else { path };
        Error::Field { path, reason: e.into_inner().to_string() }
    }

    pub fn field(path: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Field { path: path.into(), reason: reason.into() }
    }
}
