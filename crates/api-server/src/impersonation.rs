//! Acting as someone else (`kubectl --as alice --as-group devs`): Kubernetes' impersonation headers,
//! `Impersonate-User`, `Impersonate-Group` (repeated), `Impersonate-Uid` and `Impersonate-Extra-<key>`.
//! The authenticated user needs the `impersonate` verb on each: `users` (or `serviceaccounts` for a
//! `system:serviceaccount:<ns>:<name>` user), `groups`, `uids` and `userextras/<key>` (group
//! `authentication.k8s.io`). The request then runs as the impersonated user; the real one is kept for
//! the audit log.

use http::HeaderMap;

use crate::authorization::Authorization;
use crate::authz::Attributes;
use crate::error::ApiError;
use crate::user_info::{
    ANONYMOUS, AUTHENTICATED_GROUP, SERVICE_ACCOUNTS_GROUP, UNAUTHENTICATED_GROUP, UserInfo,
};

pub const IMPERSONATE_USER: &str = "impersonate-user";
pub const IMPERSONATE_GROUP: &str = "impersonate-group";
pub const IMPERSONATE_UID: &str = "impersonate-uid";
pub const IMPERSONATE_EXTRA_PREFIX: &str = "impersonate-extra-";

fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect()
}

/// Whether the request asks to impersonate anyone.
pub fn requested(headers: &HeaderMap) -> bool {
    headers.keys().any(|k| k.as_str().starts_with("impersonate-"))
}

/// The user the request runs as: `Ok(None)` without impersonation headers; a 403 (Kubernetes' message)
/// when the real user may not impersonate what it asks; a 400 for headers without `Impersonate-User`.
pub fn impersonate(
    authorization: &Authorization,
    real: &UserInfo,
    headers: &HeaderMap,
) -> Result<Option<UserInfo>, ApiError> {
    if !requested(headers) {
        return Ok(None);
    }
    let Some(name) = values(headers, IMPERSONATE_USER).first().map(|s| s.to_string()) else {
        return Err(ApiError::BadRequest(
            "requested impersonation of groups, uid or extras without impersonating a user".into(),
        ));
    };
    let check = |attributes: Attributes| authorization.check(&attributes).map(|_| ());
    let mut groups: Vec<String> = Vec::new();
    if let Some((namespace, sa)) = name.strip_prefix("system:serviceaccount:").and_then(|r| r.split_once(':'))
    {
        check(
            Attributes::resource(real.clone(), "impersonate", "", "serviceaccounts")
                .namespace(namespace)
                .name(sa),
        )?;
        groups.push(SERVICE_ACCOUNTS_GROUP.into());
        groups.push(format!("{SERVICE_ACCOUNTS_GROUP}:{namespace}"));
    } else {
        check(Attributes::resource(real.clone(), "impersonate", "", "users").name(name.as_str()))?;
    }
    for group in values(headers, IMPERSONATE_GROUP) {
        check(Attributes::resource(real.clone(), "impersonate", "", "groups").name(group))?;
        if !groups.iter().any(|g| g == group) {
            groups.push(group.to_string());
        }
    }
    let uid = values(headers, IMPERSONATE_UID).first().map(|s| s.to_string()).unwrap_or_default();
    if !uid.is_empty() {
        check(
            Attributes::resource(real.clone(), "impersonate", "authentication.k8s.io", "uids")
                .name(uid.as_str()),
        )?;
    }
    let mut user = UserInfo { name, uid, groups, ..UserInfo::default() };
    for (header, value) in headers {
        let Some(key) = header.as_str().strip_prefix(IMPERSONATE_EXTRA_PREFIX) else { continue };
        let Ok(value) = value.to_str() else { continue };
        let key = percent_decode(key);
        check(
            Attributes::resource(real.clone(), "impersonate", "authentication.k8s.io", "userextras")
                .subresource(key.as_str())
                .name(value),
        )?;
        user.extra.entry(key).or_default().push(value.to_string());
    }
    let implied = if user.name == ANONYMOUS { UNAUTHENTICATED_GROUP } else { AUTHENTICATED_GROUP };
    if !user.in_group(implied) {
        user.groups.push(implied.into());
    }
    Ok(Some(user))
}

/// Extra keys are percent-encoded in header names (`Impersonate-Extra-acme.com%2Fproject`).
fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_extra_keys() {
        assert_eq!(percent_decode("acme.com%2Fproject"), "acme.com/project");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
