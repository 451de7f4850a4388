//! `authentication.k8s.io/v1`: who a token authenticates (TokenReview, for webhook authenticators and
//! kubelets checking their callers) and who the caller is (SelfSubjectReview, `kubectl auth whoami`),
//! as pkg/registry/authentication/{tokenreview,selfsubjectreview} answer.

use std::time::SystemTime;

use navarch_api::v1::{
    ExtraValue, ObjectMeta, SelfSubjectReview, SelfSubjectReviewStatus, TokenReview, TokenReviewStatus,
    UserInfo as ApiUserInfo,
};

use crate::authenticate::ClusterTokens;
use crate::rest::StatusError;
use crate::user_info::{AUTHENTICATED_GROUP, UserInfo};

/// What a token that no authenticator recognizes is told (Kubernetes' bearer-token authenticator).
pub const INVALID_BEARER_TOKEN: &str = "invalid bearer token";

/// A user as the API writes it.
pub fn api_user_info(user: &UserInfo) -> ApiUserInfo {
    ApiUserInfo {
        username: user.name.clone(),
        uid: user.uid.clone(),
        groups: user.groups.clone(),
        extra: user.extra.iter().map(|(k, v)| (k.clone(), ExtraValue { items: v.clone() })).collect(),
    }
}

/// A TokenReview: the token of `spec.token` checked for `spec.audiences` (the api-server's when empty)
/// as a request's bearer token would be. `tokens` is `None` when the api-server accepts no bearer
/// tokens: nothing authenticates then.
pub fn token_review(
    tokens: Option<&ClusterTokens>,
    mut review: TokenReview,
) -> Result<TokenReview, StatusError> {
    let spec = review.spec.clone().unwrap_or_default();
    if spec.token.is_empty() {
        return Err(StatusError::bad_request("token is required for TokenReview in authentication"));
    }
    // `user` is a struct in Kubernetes' type: always written, `{}` when nobody.
    let mut status = TokenReviewStatus { user: Some(ApiUserInfo::default()), ..TokenReviewStatus::default() };
    if let Some(tokens) = tokens {
        let audiences =
            if spec.audiences.is_empty() { tokens.audiences.clone() } else { spec.audiences.clone() };
        let objects = &*tokens.objects;
        match tokens.bearer.authenticate(&spec.token, &audiences, SystemTime::now(), objects, objects) {
            Ok(authenticated) => {
                let mut user = authenticated.user;
                // Kubernetes' authenticator adds the group to every user it authenticates.
                if !user.in_group(AUTHENTICATED_GROUP) {
                    user.groups.push(AUTHENTICATED_GROUP.into());
                }
                status.authenticated = true;
                status.user = Some(api_user_info(&user));
                status.audiences = authenticated.audiences;
            }
            Err(e) if e.is_unrecognized() => status.error = INVALID_BEARER_TOKEN.into(),
            Err(e) => status.error = e.to_string(),
        }
    }
    review.status = Some(status);
    Ok(review)
}

/// A SelfSubjectReview: the caller as authentication (and impersonation) established it, in a new
/// object created `now`.
pub fn self_subject_review(user: &UserInfo, now: SystemTime) -> SelfSubjectReview {
    SelfSubjectReview {
        metadata: Some(ObjectMeta {
            creation_timestamp: humantime::format_rfc3339_seconds(now).to_string(),
            ..ObjectMeta::default()
        }),
        status: Some(SelfSubjectReviewStatus { user_info: Some(api_user_info(user)) }),
        ..SelfSubjectReview::default()
    }
}
