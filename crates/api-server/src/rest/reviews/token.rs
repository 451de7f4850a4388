//! A ServiceAccount's `token` subresource: a TokenRequest answered with a signed token
//! (pkg/registry/core/serviceaccount/storage/token.go). The ServiceAccount must exist; a
//! `boundObjectRef` (a Pod running as that ServiceAccount, a Secret, a Node) is looked up and the token
//! dies with it; audiences default to the api-server's; `expirationSeconds` defaults to an hour, must
//! be 10 minutes to 2^32 seconds, and is shortened to `--service-account-max-token-expiration`.
//!
//! Objects are read from the registry (etcd), as Kubernetes reads them, so a ServiceAccount or pod
//! created a moment ago is found.

use std::time::SystemTime;

use navarch_api::Object;
use navarch_api::v1::{ObjectMeta, TokenRequest, TokenRequestSpec, TokenRequestStatus};
use serde_json::Value;

use super::{conflict, go_value, invalid};
use crate::authn::service_account::{
    BindError, BoundObjectReference, DEFAULT_EXPIRATION_SECONDS, IssueError, MAX_EXPIRATION_SECONDS,
    MIN_EXPIRATION_SECONDS, resolve_bound_object,
};
use crate::authn::{BoundObjects, LiveObject, LivePod, ServiceAccountRef};
use crate::error::ApiError;
use crate::rest::StatusError;
use crate::state::{ApiState, Security};

pub const API_VERSION: &str = "authentication.k8s.io/v1";
const KIND: &str = "TokenRequest";

/// An answered TokenRequest, and the warnings for the response (a shortened expiration).
#[derive(Debug, Clone)]
pub struct Issued {
    pub request: TokenRequest,
    pub warnings: Vec<String>,
}

fn registry_error(e: ApiError) -> StatusError {
    StatusError::from_api(e, None)
}

/// Reads an object; `None` when it does not exist.
async fn read(
    state: &ApiState,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<Object>, StatusError> {
    match state.registry.get(kind, namespace, name).await {
        Ok(o) => Ok(Some(o)),
        Err(ApiError::NotFound { .. }) => Ok(None),
        Err(e) => Err(registry_error(e)),
    }
}

/// The objects a `boundObjectRef` may name, read beforehand for [`resolve_bound_object`].
#[derive(Default)]
struct Fetched {
    pod: Option<LivePod>,
    secret: Option<LiveObject>,
    node: Option<LiveObject>,
}

impl BoundObjects for Fetched {
    fn service_account(&self, _namespace: &str, _name: &str) -> Option<LiveObject> {
        None
    }
    fn pod(&self, _namespace: &str, _name: &str) -> Option<LivePod> {
        self.pod.clone()
    }
    fn secret(&self, _namespace: &str, _name: &str) -> Option<LiveObject> {
        self.secret.clone()
    }
    fn node(&self, _name: &str) -> Option<LiveObject> {
        self.node.clone()
    }
}

/// Reads what `reference` names (and a pod's node), as `schema.FromAPIVersionAndKind` reads the kind.
async fn fetch(
    state: &ApiState,
    namespace: &str,
    reference: &BoundObjectReference<'_>,
) -> Result<Fetched, StatusError> {
    let core = !reference.api_version.contains('/');
    let mut fetched = Fetched::default();
    match reference.kind {
        "Pod" if core => {
            if let Some(Object::Pod(pod)) = read(state, "Pod", namespace, reference.name).await? {
                let live = LivePod::from_pod(&pod);
                if !live.node_name.is_empty() {
                    fetched.node = read(state, "Node", "", &live.node_name)
                        .await?
                        .map(|n| LiveObject::from_meta(n.meta()));
                }
                fetched.pod = Some(live);
            }
        }
        "Secret" if core => {
            fetched.secret = read(state, "Secret", namespace, reference.name)
                .await?
                .map(|s| LiveObject::from_meta(s.meta()));
        }
        "Node" if core => {
            fetched.node =
                read(state, "Node", "", reference.name).await?.map(|n| LiveObject::from_meta(n.meta()));
        }
        _ => {}
    }
    Ok(fetched)
}

fn bind_error(e: BindError) -> StatusError {
    match e {
        BindError::NotFound { resource, name } => {
            registry_error(ApiError::NotFound { plural: resource.to_string(), name })
        }
        e @ (BindError::DifferentServiceAccount(_) | BindError::UnsupportedKind(_)) => {
            StatusError::bad_request(e.to_string())
        }
        BindError::UidMismatch { ref kind, ref name, .. } => conflict("", kind, name, &e.to_string()),
    }
}

/// Answers a TokenRequest for ServiceAccount `name` in `namespace`.
pub async fn create(
    state: &ApiState,
    security: &Security,
    namespace: &str,
    name: &str,
    mut request: TokenRequest,
) -> Result<Issued, StatusError> {
    // Without a signing key Kubernetes serves no token subresource.
    let Some(issuer) = security.token_issuer.as_deref() else { return Err(StatusError::no_such_path()) };
    if namespace.is_empty() {
        return Err(StatusError::bad_request("namespace is required"));
    }
    // NodeRestriction: a kubelet asks only for tokens bound to a pod running on it.
    if let Some(user) = crate::request_context::current_user() {
        let lookup = |kind: &str, ns: &str, n: &str| match kind {
            "Pod" => security.bound.pods.get(ns, n),
            "Node" => security.bound.nodes.get("", n),
            _ => None,
        };
        crate::admission::node_restriction::admit_token_request(&user, namespace, name, &request, &lookup)
            .map_err(registry_error)?;
    }
    let meta = request.metadata.get_or_insert_with(ObjectMeta::default);
    if !meta.name.is_empty() && meta.name != name {
        let e = format!(
            "metadata.name: Invalid value: {}: must match the service account name if specified",
            go_value::quote(&meta.name)
        );
        return Err(invalid(API_VERSION, KIND, name, vec![e]));
    }
    if !meta.namespace.is_empty() && meta.namespace != namespace {
        let e = format!(
            "metadata.namespace: Invalid value: {}: must match the service account namespace if specified",
            go_value::quote(&meta.namespace)
        );
        return Err(invalid(API_VERSION, KIND, name, vec![e]));
    }
    let service_account = read(state, "ServiceAccount", namespace, name).await?.ok_or_else(|| {
        registry_error(ApiError::NotFound { plural: "serviceaccounts".into(), name: name.into() })
    })?;
    let sa_uid = service_account.meta().uid.clone();

    let now = SystemTime::now();
    meta.name = name.to_string();
    meta.namespace = namespace.to_string();
    meta.creation_timestamp = humantime::format_rfc3339_seconds(now).to_string();
    request.status = None;
    let spec = request.spec.get_or_insert_with(TokenRequestSpec::default);
    // v1 defaulting, then `ValidateTokenRequest`.
    let expiration = *spec.expiration_seconds.get_or_insert(DEFAULT_EXPIRATION_SECONDS);
    if expiration < MIN_EXPIRATION_SECONDS {
        let e = format!(
            "spec.expirationSeconds: Invalid value: {expiration}: may not specify a duration less than 10 minutes"
        );
        return Err(invalid(API_VERSION, KIND, "", vec![e]));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        let e = format!(
            "spec.expirationSeconds: Invalid value: {expiration}: may not specify a duration larger than 2^32 seconds"
        );
        return Err(invalid(API_VERSION, KIND, "", vec![e]));
    }

    let bound_object = match &spec.bound_object_ref {
        None => None,
        Some(r) => {
            let reference = BoundObjectReference {
                kind: &r.kind,
                api_version: &r.api_version,
                name: &r.name,
                uid: &r.uid,
            };
            let fetched = fetch(state, namespace, &reference).await?;
            Some(resolve_bound_object(namespace, name, &reference, &fetched).map_err(bind_error)?)
        }
    };
    let to_issue = crate::authn::TokenRequest {
        service_account: ServiceAccountRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: sa_uid,
        },
        bound_object,
        audiences: spec.audiences.clone(),
        expiration_seconds: Some(expiration),
    };
    let issued = issuer.issue(&to_issue, now).map_err(|e| match e {
        IssueError::InvalidExpiration { value, message } => invalid(
            API_VERSION,
            KIND,
            "",
            vec![format!("spec.expirationSeconds: Invalid value: {value}: {message}")],
        ),
        IssueError::Signing(e) => {
            registry_error(ApiError::Internal(format!("failed to generate token: {e}")))
        }
    })?;
    tracing::info!(
        namespace,
        service_account = name,
        credential_id = %issued.credential_id,
        "issued a ServiceAccount token"
    );
    spec.audiences = issued.audiences;
    spec.expiration_seconds = Some(issued.expiration_seconds);
    request.status = Some(TokenRequestStatus {
        token: issued.token,
        expiration_timestamp: humantime::format_rfc3339_seconds(issued.expiration_timestamp).to_string(),
    });
    Ok(Issued { request, warnings: issued.warnings })
}

/// The answer's JSON form (`kind`, `apiVersion`, `metadata` as Kubernetes writes them).
pub fn to_value(request: &TokenRequest) -> Value {
    let v = serde_json::to_value(request).unwrap_or_else(|_| serde_json::json!({}));
    super::with_type_meta(v, KIND, API_VERSION)
}
