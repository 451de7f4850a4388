//! Client errors, one variant per api-server error class (see proto/navarch/apiserver/v1/apiserver.proto).

use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// Optimistic concurrency: the resourceVersion given is not the stored one.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Validation failed; the message names the field paths.
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("precondition failed: {0}")]
    FailedPrecondition(String),
    /// The resourceVersion is compacted or the watch fell behind: relist.
    #[error("expired: {0}")]
    Expired(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("api-server error ({code:?}): {message}")]
    Api { code: Code, message: String },
    /// A kubeconfig or credential that cannot be used.
    #[error("{0}")]
    Config(String),
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error(transparent)]
    Decode(#[from] navarch_api::Error),
}

impl From<Status> for Error {
    fn from(s: Status) -> Error {
        let m = s.message().to_string();
        match s.code() {
            Code::NotFound => Error::NotFound(m),
            Code::AlreadyExists => Error::AlreadyExists(m),
            Code::Aborted => Error::Conflict(m),
            Code::InvalidArgument => Error::Invalid(m),
            Code::FailedPrecondition => Error::FailedPrecondition(m),
            Code::OutOfRange => Error::Expired(m),
            Code::Unavailable => Error::Unavailable(m),
            code => Error::Api { code, message: m },
        }
    }
}

impl Error {
    /// Whether the api-server does not know the call (an older version).
    pub fn is_unimplemented(&self) -> bool {
        matches!(self, Error::Api { code: Code::Unimplemented, .. })
    }

    /// The api-server's own message, without this client's class prefix (what Kubernetes' controllers put
    /// in events: `pods "web-x" is forbidden: exceeded quota: ...`); other errors as they display.
    pub fn server_message(&self) -> String {
        match self {
            Error::NotFound(m)
            | Error::AlreadyExists(m)
            | Error::Conflict(m)
            | Error::Invalid(m)
            | Error::FailedPrecondition(m)
            | Error::Expired(m)
            | Error::Unavailable(m)
            | Error::Api { message: m, .. } => m.clone(),
            e => e.to_string(),
        }
    }

    /// True for errors worth retrying after a pause (the server or the network is down).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable(_) | Error::Connect { .. })
            || matches!(self, Error::Api { code, .. } if matches!(code, Code::Unknown | Code::Internal | Code::DeadlineExceeded | Code::Cancelled | Code::ResourceExhausted))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
