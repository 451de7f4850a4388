//! The api-server's errors and their one mapping to gRPC statuses (the REST API's mapping to HTTP is
//! `rest::status`). Storage details are logged, never
//! sent to clients.

use tonic::Status;

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Validation failed: `errors` are `path: reason` strings.
    #[error("{kind} {name:?} is invalid: {}", errors.join("; "))]
    Invalid { kind: String, name: String, errors: Vec<String> },
    #[error("{0}")]
    BadRequest(String),
    #[error("{plural} {name:?} not found")]
    NotFound { plural: String, name: String },
    #[error("{plural} {name:?} already exists")]
    AlreadyExists { plural: String, name: String },
    #[error(
        "Operation cannot be fulfilled on {plural} {name:?}: the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict { plural: String, name: String },
    /// The object's state conflicts with the request (a uid precondition, binding a deleted pod).
    #[error("{0}")]
    Precondition(String),
    /// The request is not allowed in any state of the object (a terminating namespace, deleting a
    /// protected namespace).
    #[error("{0}")]
    Forbidden(String),
    /// Authorization refused the request (Kubernetes' 403 `Forbidden`; gRPC `PERMISSION_DENIED`).
    #[error("{0}")]
    Denied(String),
    /// A pool the request needs is used up (no free cluster IP or node port).
    #[error("{0}")]
    Exhausted(String),
    /// The resourceVersion asked for is too old: relist.
    #[error("{0}")]
    Expired(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A kubelet could not be reached (logs, exec, top).
    #[error("{0}")]
    Backend(String),
    /// A kubelet's answer, relayed as it is (its messages are meant for clients).
    #[error("{}", .0.message())]
    Relayed(Box<Status>),
    /// Not now, maybe later (an eviction a PodDisruptionBudget refuses): Kubernetes' 429 with its
    /// causes (`(reason, message)`) and a suggested wait (0: none); gRPC `RESOURCE_EXHAUSTED`.
    #[error("{message}")]
    TooManyRequests { message: String, causes: Vec<(&'static str, String)>, retry_after_seconds: i32 },
    /// A request the server cannot serve as asked (a pod with several PodDisruptionBudgets): Kubernetes'
    /// bare `Failure` Status with code 500 and this message; gRPC `INTERNAL` with it.
    #[error("{0}")]
    Unsupported(String),
    /// The resource does not serve this verb (a write or watch of the read-only resource metrics kinds):
    /// Kubernetes' 405 MethodNotAllowed; gRPC `UNIMPLEMENTED`.
    #[error("{0}")]
    MethodNotAllowed(String),
}

impl ApiError {
    pub fn from_storage(e: StorageError, plural: &str, name: &str) -> ApiError {
        match e {
            StorageError::AlreadyExists(_) => {
                ApiError::AlreadyExists { plural: plural.into(), name: name.into() }
            }
            StorageError::NotFound(_) => ApiError::NotFound { plural: plural.into(), name: name.into() },
            StorageError::Conflict { .. } => ApiError::Conflict { plural: plural.into(), name: name.into() },
            StorageError::Compacted(rev) => ApiError::Expired(format!(
                "the continue token is too old (revision {rev} was compacted); restart the list without it"
            )),
            StorageError::BadContinue => ApiError::BadRequest("continue: invalid continue token".into()),
            StorageError::Etcd(e) => ApiError::Unavailable(e.to_string()),
            StorageError::Taken(keys) => ApiError::Internal(format!("allocation keys taken: {keys:?}")),
            e @ StorageError::Transform { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

impl ApiError {
    pub fn from_backend(s: Status) -> ApiError {
        ApiError::Relayed(Box::new(s))
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        match &e {
            ApiError::Invalid { .. } | ApiError::BadRequest(_) => Status::invalid_argument(e.to_string()),
            ApiError::NotFound { .. } => Status::not_found(e.to_string()),
            ApiError::AlreadyExists { .. } => Status::already_exists(e.to_string()),
            ApiError::Conflict { .. } => Status::aborted(e.to_string()),
            ApiError::Precondition(_) | ApiError::Forbidden(_) => Status::failed_precondition(e.to_string()),
            ApiError::Denied(_) => Status::permission_denied(e.to_string()),
            ApiError::Exhausted(_) => Status::resource_exhausted(e.to_string()),
            ApiError::Expired(_) => Status::out_of_range(e.to_string()),
            ApiError::Unavailable(detail) => {
                tracing::warn!(%detail, "storage unavailable");
                Status::unavailable("storage unavailable, try again")
            }
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                Status::internal("internal error")
            }
            ApiError::Backend(_) => Status::unavailable(e.to_string()),
            ApiError::Relayed(s) => Status::new(s.code(), s.message()),
            ApiError::TooManyRequests { message, .. } => Status::resource_exhausted(message.clone()),
            ApiError::Unsupported(m) => Status::internal(m.clone()),
            ApiError::MethodNotAllowed(m) => Status::unimplemented(m.clone()),
        }
    }
}

impl ApiError {
    /// The gRPC code name, for metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid { .. } | ApiError::BadRequest(_) => "InvalidArgument",
            ApiError::NotFound { .. } => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Aborted",
            ApiError::Precondition(_) | ApiError::Forbidden(_) => "FailedPrecondition",
            ApiError::Denied(_) => "PermissionDenied",
            ApiError::Exhausted(_) => "ResourceExhausted",
            ApiError::Expired(_) => "OutOfRange",
            ApiError::Unavailable(_) => "Unavailable",
            ApiError::Internal(_) => "Internal",
            ApiError::Backend(_) => "Unavailable",
            ApiError::Relayed(_) => "Relayed",
            ApiError::TooManyRequests { .. } => "ResourceExhausted",
            ApiError::Unsupported(_) => "Internal",
            ApiError::MethodNotAllowed(_) => "Unimplemented",
        }
    }
}
