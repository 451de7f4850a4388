//! Turning client errors into kubectl's messages (`Error from server (NotFound): pods "x" not found`),
//! which scripts match on.

use std::fmt;

use navarch_api::KindInfo;
use navarch_client::Error as ClientError;
use tonic::Code;

use crate::kinds::{kind_ref, plural_ref};

/// An error reported by the api-server about one object, displayed exactly as kubectl does.
#[derive(Debug)]
pub struct ServerError {
    /// `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...
    pub reason: &'static str,
    pub message: String,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Error from server ({}): {}", self.reason, self.message)
    }
}

impl std::error::Error for ServerError {}

/// The api-server could not be reached at all.
#[derive(Debug)]
pub struct Unreachable {
    pub server: String,
    pub detail: String,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "cannot reach the api-server at {}: {} (is the cluster up? run make up)",
            self.server, self.detail
        )
    }
}

impl std::error::Error for Unreachable {}

/// What an operation on one object was, for messages like `error when creating "web.yaml"`.
#[derive(Debug, Clone, Copy)]
pub enum Verb {
    Get,
    Create,
    Update,
    Replace,
    Delete,
}

impl Verb {
    fn gerund(self) -> &'static str {
        match self {
            Verb::Get => "retrieving",
            Verb::Create => "creating",
            Verb::Update => "applying",
            Verb::Replace => "replacing",
            Verb::Delete => "deleting",
        }
    }
}

/// The object an error is about.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub kind: &'static KindInfo,
    pub name: &'a str,
    /// The manifest file the object came from, if any.
    pub source: Option<&'a str>,
}

/// Describes a failed call on one object like kubectl.
pub fn describe(err: ClientError, server: &str, verb: Verb, target: Target) -> anyhow::Error {
    let Target { kind, name, source } = target;
    let prefix = match source {
        Some(src) => format!("error when {} {src:?}: ", verb.gerund()),
        None => String::new(),
    };
    let server_error = |reason: &'static str, message: String| -> anyhow::Error {
        ServerError { reason, message: format!("{prefix}{message}") }.into()
    };
    let plural = plural_ref(kind);
    match err {
        ClientError::NotFound(_) => server_error("NotFound", format!("{plural} {name:?} not found")),
        ClientError::AlreadyExists(_) => {
            server_error("AlreadyExists", format!("{plural} {name:?} already exists"))
        }
        // The api-server words these like Kubernetes; keep its message when it has that shape.
        ClientError::Conflict(m) if m.starts_with("Operation cannot be fulfilled") => {
            server_error("Conflict", m)
        }
        ClientError::Conflict(m) => server_error(
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {plural} {name:?}: {}",
                if m.is_empty() {
                    "the object has been modified; please apply your changes to the latest version and try again"
                } else {
                    &m
                }
            ),
        ),
        ClientError::Invalid(m) if m.contains(" is invalid: ") => server_error("Invalid", m),
        ClientError::Invalid(m) => {
            server_error("Invalid", format!("{} {name:?} is invalid: {m}", kind_ref(kind)))
        }
        ClientError::FailedPrecondition(m) => server_error("Forbidden", m),
        other => general(other, server),
    }
}

/// Describes an error not tied to one object (list, watch, discovery).
pub fn general(err: ClientError, server: &str) -> anyhow::Error {
    match err {
        ClientError::Connect { source, .. } => {
            Unreachable { server: server.to_string(), detail: source_chain(&source) }.into()
        }
        ClientError::Unavailable(m)
            if (m.contains("connect") || m.contains("transport"))
                && !m.starts_with("error dialing backend") =>
        {
            Unreachable { server: server.to_string(), detail: m }.into()
        }
        ClientError::Unavailable(m) => ServerError { reason: "ServiceUnavailable", message: m }.into(),
        ClientError::Invalid(m) => ServerError { reason: "BadRequest", message: m }.into(),
        ClientError::NotFound(m) => ServerError { reason: "NotFound", message: m }.into(),
        ClientError::Expired(m) => ServerError { reason: "Expired", message: m }.into(),
        ClientError::FailedPrecondition(m) => ServerError { reason: "BadRequest", message: m }.into(),
        ClientError::Api { code, message } => ServerError { reason: code_reason(code), message }.into(),
        other => anyhow::Error::new(other),
    }
}

fn code_reason(code: Code) -> &'static str {
    match code {
        Code::Internal | Code::Unknown => "InternalError",
        Code::DeadlineExceeded => "Timeout",
        Code::PermissionDenied => "Forbidden",
        Code::Unauthenticated => "Unauthorized",
        Code::ResourceExhausted => "TooManyRequests",
        Code::Unimplemented => "MethodNotAllowed",
        _ => "InternalError",
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}
