//! ServiceAccount tokens for projected volumes, as Kubernetes' kubelet keeps them
//! (`pkg/kubelet/token/token_manager.go`): requested from the api-server (TokenRequest, bound to the
//! pod), cached per (ServiceAccount, audiences, lifetime, bound object), and requested again once 80%
//! of a token's lifetime has passed or it is 24 hours old (minus up to 10 s of jitter, so that the pods
//! of a node do not all ask at once). When a refresh fails, the cached token is used while it has not
//! expired. Tokens of a removed pod are forgotten ([`TokenManager::forget_pod`]); expired ones are
//! dropped once a minute.
//!
//! The pod worker's periodic sync (at least every 30 s) reads the token through here and rewrites the
//! volume atomically when it changed ([`crate::volumes::write_atomic`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use navarch_api::v1::TokenRequest;
use rand::Rng;

/// A token is renewed at the latest this long after it was issued.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// At most this much earlier than due, at random.
pub const MAX_JITTER: Duration = Duration::from_secs(10);
/// How often expired tokens are dropped.
const GC_PERIOD: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("failed to fetch token: {0}")]
    Fetch(String),
    #[error("token {key} expired and refresh failed: {reason}")]
    Expired { key: String, reason: String },
    #[error("the api-server's token answer has no token or expiration: {0}")]
    Answer(String),
}

/// What a cached token is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    namespace: String,
    name: String,
    audiences: Vec<String>,
    expiration_seconds: Option<i64>,
    /// (kind, name, uid) of the bound object.
    bound: Option<(String, String, String)>,
}

impl Key {
    fn of(namespace: &str, name: &str, req: &TokenRequest) -> Key {
        let spec = req.spec.clone().unwrap_or_default();
        Key {
            namespace: namespace.to_string(),
            name: name.to_string(),
            audiences: spec.audiences,
            expiration_seconds: spec.expiration_seconds,
            bound: spec.bound_object_ref.map(|r| (r.kind, r.name, r.uid)),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)?;
        if let Some((kind, name, _)) = &self.bound {
            write!(f, " bound to {kind} {name}")?;
        }
        Ok(())
    }
}

/// When the token expires (`status.expirationTimestamp`).
fn expires(tr: &TokenRequest) -> Option<SystemTime> {
    let ts = tr.status.as_ref().map(|s| s.expiration_timestamp.as_str()).unwrap_or_default();
    humantime::parse_rfc3339_weak(ts).ok()
}

/// Whether `tr` is due for renewal at `now`: once 80% of its lifetime (`spec.expirationSeconds`) has
/// passed, or [`MAX_TTL`] since it was issued — each less `jitter`. A token without a lifetime is never
/// renewed (Kubernetes logs it); one without an expiration time always is.
pub fn requires_refresh(tr: &TokenRequest, now: SystemTime, jitter: Duration) -> bool {
    let Some(seconds) = tr.spec.as_ref().and_then(|s| s.expiration_seconds) else {
        tracing::error!("a token request without expirationSeconds: never refreshed");
        return false;
    };
    let Some(exp) = expires(tr) else { return true };
    let lifetime = Duration::from_secs(seconds.max(0) as u64);
    let issued = exp.checked_sub(lifetime).unwrap_or(SystemTime::UNIX_EPOCH);
    if issued + MAX_TTL.saturating_sub(jitter) < now {
        return true;
    }
    // 20% of the lifetime in whole seconds, as Kubernetes computes it.
    let fifth = Duration::from_secs((seconds.max(0) * 20 / 100) as u64);
    exp.checked_sub(fifth + jitter).is_none_or(|due| due < now)
}

/// Whether `tr` has expired at `now`.
fn expired(tr: &TokenRequest, now: SystemTime) -> bool {
    expires(tr).is_none_or(|exp| exp < now)
}

fn jitter() -> Duration {
    Duration::from_secs_f64(rand::rng().random_range(0.0..MAX_JITTER.as_secs_f64())).min(MAX_JITTER)
}

/// The tokens this kubelet holds.
#[derive(Debug)]
pub struct TokenManager {
    cache: Mutex<HashMap<Key, TokenRequest>>,
    last_gc: Mutex<SystemTime>,
}

impl Default for TokenManager {
    fn default() -> TokenManager {
        TokenManager { cache: Mutex::default(), last_gc: Mutex::new(SystemTime::now()) }
    }
}

impl TokenManager {
    /// The token `req` asks of ServiceAccount `namespace/name`: the cached one unless it is due for
    /// renewal, else a new one from `fetch` (the api-server's TokenRequest); the cached one again if
    /// that fails and it has not expired.
    pub async fn token<F, Fut>(
        &self,
        namespace: &str,
        name: &str,
        req: &TokenRequest,
        fetch: F,
    ) -> Result<TokenRequest, TokenError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<TokenRequest, String>>,
    {
        self.token_at(namespace, name, req, fetch, SystemTime::now(), jitter()).await
    }

    async fn token_at<F, Fut>(
        &self,
        namespace: &str,
        name: &str,
        req: &TokenRequest,
        fetch: F,
        now: SystemTime,
        jitter: Duration,
    ) -> Result<TokenRequest, TokenError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<TokenRequest, String>>,
    {
        self.gc(now);
        let key = Key::of(namespace, name, req);
        let cached = self.lock().get(&key).cloned();
        if let Some(c) = &cached
            && !requires_refresh(c, now, jitter)
        {
            return Ok(c.clone());
        }
        let fresh = fetch().await.and_then(|tr| {
            let token = tr.status.as_ref().map(|s| s.token.as_str()).unwrap_or_default();
            if token.is_empty() || expires(&tr).is_none() {
                return Err(TokenError::Answer(key.to_string()).to_string());
            }
            Ok(tr)
        });
        match (fresh, cached) {
            (Ok(tr), _) => {
                self.lock().insert(key, tr.clone());
                Ok(tr)
            }
            (Err(reason), None) => Err(TokenError::Fetch(reason)),
            (Err(reason), Some(c)) if expired(&c, now) => {
                Err(TokenError::Expired { key: key.to_string(), reason })
            }
            (Err(reason), Some(c)) => {
                tracing::warn!(token = %key, error = %reason, "couldn't renew a token; using the current one");
                Ok(c)
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, TokenRequest>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets the tokens bound to the pod `uid` (it was removed).
    pub fn forget_pod(&self, uid: &str) {
        self.lock().retain(|k, _| k.bound.as_ref().is_none_or(|(kind, _, u)| kind != "Pod" || u != uid));
    }

    /// Drops expired tokens, at most once per [`GC_PERIOD`].
    fn gc(&self, now: SystemTime) {
        {
            let mut last = self.last_gc.lock().unwrap_or_else(|p| p.into_inner());
            if now.duration_since(*last).unwrap_or_default() < GC_PERIOD {
                return;
            }
            *last = now;
        }
        self.lock().retain(|_, tr| !expired(tr, now));
    }

    /// How many tokens are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use navarch_api::v1::{BoundObjectReference, TokenRequestSpec, TokenRequestStatus};

    use super::*;

    const T0: Duration = Duration::from_secs(1_700_000_000);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + T0 + Duration::from_secs(secs)
    }

    fn request(uid: &str) -> TokenRequest {
        TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(3607),
                bound_object_ref: Some(BoundObjectReference {
                    kind: "Pod".into(),
                    api_version: "v1".into(),
                    name: "web".into(),
                    uid: uid.into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// `req` answered at `issued` with token `token`.
    fn answer(req: &TokenRequest, issued: SystemTime, token: &str) -> TokenRequest {
        let mut tr = req.clone();
        let lifetime = Duration::from_secs(tr.spec.as_ref().unwrap().expiration_seconds.unwrap() as u64);
        tr.status = Some(TokenRequestStatus {
            token: token.into(),
            expiration_timestamp: humantime::format_rfc3339_seconds(issued + lifetime).to_string(),
        });
        tr
    }

    #[test]
    fn refresh_at_eighty_percent_of_the_lifetime_less_jitter() {
        let tr = answer(&request("u"), at(0), "t");
        // 3607 s: due 3607 - 721 = 2886 s after issue.
        assert!(!requires_refresh(&tr, at(2886), Duration::ZERO));
        assert!(requires_refresh(&tr, at(2887), Duration::ZERO));
        assert!(!requires_refresh(&tr, at(2876), Duration::from_secs(10)));
        assert!(requires_refresh(&tr, at(2877), Duration::from_secs(10)));
        assert!(!requires_refresh(&tr, at(60), Duration::ZERO));
    }

    #[test]
    fn long_tokens_are_renewed_after_a_day() {
        let mut req = request("u");
        req.spec.as_mut().unwrap().expiration_seconds = Some(7 * 24 * 3600);
        let tr = answer(&req, at(0), "t");
        assert!(!requires_refresh(&tr, at(24 * 3600 - 1), Duration::ZERO));
        assert!(requires_refresh(&tr, at(24 * 3600 + 1), Duration::ZERO));
        assert!(requires_refresh(&tr, at(24 * 3600 - 5), Duration::from_secs(10)));
        // Without a lifetime, never; without an expiration time, always.
        let mut none = tr.clone();
        none.spec.as_mut().unwrap().expiration_seconds = None;
        assert!(!requires_refresh(&none, at(10 * 24 * 3600), Duration::ZERO));
        let mut no_exp = tr.clone();
        no_exp.status.as_mut().unwrap().expiration_timestamp.clear();
        assert!(requires_refresh(&no_exp, at(0), Duration::ZERO));
    }

    #[tokio::test]
    async fn cached_until_due_then_renewed_and_kept_when_renewal_fails() {
        let m = TokenManager::default();
        let req = request("u1");
        let fetches = AtomicUsize::new(0);
        let fetch = |issued: SystemTime, token: &'static str| {
            let req = req.clone();
            let fetches = &fetches;
            move || async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                Ok(answer(&req, issued, token))
            }
        };
        let get = |now, f| m.token_at("ns", "default", &req, f, now, Duration::ZERO);
        let t = get(at(0), fetch(at(0), "one")).await.unwrap();
        assert_eq!(t.status.unwrap().token, "one");
        let t = get(at(1000), fetch(at(1000), "two")).await.unwrap();
        assert_eq!((t.status.unwrap().token.as_str(), fetches.load(Ordering::SeqCst)), ("one", 1), "cached");
        let t = get(at(2900), fetch(at(2900), "two")).await.unwrap();
        assert_eq!((t.status.unwrap().token.as_str(), fetches.load(Ordering::SeqCst)), ("two", 2), "renewed");
        // Due again, the api-server down: the current token while it lasts, then an error.
        let down = || async { Err::<TokenRequest, _>("unavailable".to_string()) };
        let t = m.token_at("ns", "default", &req, down, at(2900 + 2900), Duration::ZERO).await.unwrap();
        assert_eq!(t.status.unwrap().token, "two");
        let e = m.token_at("ns", "default", &req, down, at(2900 + 3700), Duration::ZERO).await.unwrap_err();
        assert!(
            e.to_string().starts_with("token ns/default bound to Pod web expired and refresh failed"),
            "{e}"
        );
        let e = m.token_at("ns", "default", &request("u2"), down, at(0), Duration::ZERO).await.unwrap_err();
        assert_eq!(e.to_string(), "failed to fetch token: unavailable");
        // An answer without a token is refused.
        let empty = || async { Ok(TokenRequest::default()) };
        assert!(m.token_at("ns", "default", &request("u3"), empty, at(0), Duration::ZERO).await.is_err());
    }

    #[tokio::test]
    async fn tokens_of_removed_pods_and_expired_ones_go() {
        let m = TokenManager::default();
        for uid in ["a", "b"] {
            let req = request(uid);
            let ok = || async { Ok(answer(&req, at(0), "t")) };
            m.token_at("ns", "default", &req, ok, at(0), Duration::ZERO).await.unwrap();
        }
        assert_eq!(m.len(), 2, "one per bound pod");
        m.forget_pod("a");
        assert_eq!(m.len(), 1);
        // A minute after the last collection, expired tokens go.
        *m.last_gc.lock().unwrap() = at(0);
        let req = request("c");
        let ok = || async { Ok(answer(&req, at(4000), "t")) };
        m.token_at("ns", "default", &req, ok, at(4000), Duration::ZERO).await.unwrap();
        assert_eq!(m.len(), 1, "b expired at 3607 s");
    }
}
