//! The value transformer of one resource: its providers in configuration order, as Kubernetes'
//! `value.NewPrefixTransformers` chains them.
//!
//! A write uses the first provider: `identity` stores the value as it is; a keyed provider stores
//! `k8s:enc:<provider>:v1:<first key's name>:` and the sealed value ([`super::ciphers`]). A read tries
//! every provider whose prefix the value starts with, in order (`identity` has the empty prefix but
//! refuses values starting with `k8s:enc:`), and inside a keyed provider every key whose `<name>:`
//! follows; the first that opens it wins. A value read with anything but the first provider and its
//! first key is *stale*: the registry rewrites it on an update even when the object did not change, so
//! re-writing every object moves it to the current key (key rotation).

use std::borrow::Cow;
use std::sync::Arc;

use super::ciphers::{Algorithm, KeyCipher};

/// What every encrypted value starts with; `identity` refuses to read such values.
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

/// Why a value could not be transformed to or from its stored form. The messages are Kubernetes'.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// No configured provider's prefix matches the value (e.g. a plaintext value and no `identity`).
    #[error("no matching prefix found")]
    NoMatchingPrefix,
    /// The value names a key the provider does not have.
    #[error("no matching key was found for the provided {family} transformer{}", written_with(.wanted))]
    NoMatchingKey { family: &'static str, wanted: Option<String> },
    /// An encrypted value read where nothing is configured to decrypt it.
    #[error("identity transformer tried to read encrypted data")]
    EncryptedForIdentity,
    #[error("the stored data was shorter than the required size")]
    TooShort,
    #[error("the stored data is not a multiple of the block size")]
    NotBlockMultiple,
    #[error("invalid PKCS7 data (empty or not padded)")]
    InvalidPkcs7Data,
    #[error("invalid padding on input")]
    InvalidPkcs7Padding,
    /// AES-GCM or secretbox: the value was changed, or sealed with another key or for another etcd key.
    #[error("cipher: message authentication failed")]
    Authentication,
    #[error("unable to read sufficient random bytes")]
    Random,
    #[error("the value could not be encrypted")]
    Seal,
    /// Several candidates failed (Kubernetes' error aggregate).
    #[error("[{}]", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    Several(Vec<TransformError>),
}

fn written_with(wanted: &Option<String>) -> String {
    wanted.as_ref().map(|k| format!(" (the value was written with key {k:?})")).unwrap_or_default()
}

/// Kubernetes' `errors.Reduce(errors.NewAggregate(errs))`: one error as itself, several (duplicates
/// dropped) in brackets.
fn aggregate(mut errs: Vec<TransformError>) -> Option<TransformError> {
    let mut seen = std::collections::HashSet::new();
    errs.retain(|e| seen.insert(e.to_string()));
    match errs.len() {
        0 => None,
        1 => errs.pop(),
        _ => Some(TransformError::Several(errs)),
    }
}

/// A value read from storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plain<'a> {
    pub value: Cow<'a, [u8]>,
    /// Read with a provider or key other than the first: writing it again would store it differently.
    pub stale: bool,
}

/// A named key of a keyed provider.
#[derive(Debug)]
pub struct NamedKey {
    pub name: String,
    pub cipher: KeyCipher,
}

/// One entry of a resource's `providers` list.
#[derive(Debug)]
pub enum Provider {
    Identity,
    Keyed { algorithm: Algorithm, prefix: String, keys: Vec<NamedKey> },
}

impl Provider {
    /// A keyed provider; `keys` is not empty (the configuration guarantees it).
    pub fn keyed(algorithm: Algorithm, keys: Vec<NamedKey>) -> Provider {
        Provider::Keyed { algorithm, prefix: format!("k8s:enc:{}:v1:", algorithm.name()), keys }
    }

    /// `aescbc (key2, key1)` or `identity`, for logs.
    pub fn describe(&self) -> String {
        match self {
            Provider::Identity => "identity".into(),
            Provider::Keyed { algorithm, keys, .. } => {
                let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
                format!("{} ({})", algorithm.name(), names.join(", "))
            }
        }
    }

    fn seal(&self, plain: Vec<u8>, etcd_key: &str) -> Result<Vec<u8>, TransformError> {
        match self {
            Provider::Identity => Ok(plain),
            Provider::Keyed { algorithm, prefix, keys } => {
                let key = keys
                    .first()
                    .ok_or(TransformError::NoMatchingKey { family: algorithm.family(), wanted: None })?;
                let sealed = key.cipher.seal(&plain, etcd_key.as_bytes())?;
                let mut out = Vec::with_capacity(prefix.len() + key.name.len() + 1 + sealed.len());
                out.extend_from_slice(prefix.as_bytes());
                out.extend_from_slice(key.name.as_bytes());
                out.push(b':');
                out.extend_from_slice(&sealed);
                Ok(out)
            }
        }
    }

    /// `None` when the value is not this provider's (its prefix does not match); otherwise the
    /// plaintext, stale when a key other than the first opened it.
    fn open<'a>(&self, stored: &'a [u8], etcd_key: &str) -> Option<Result<Plain<'a>, TransformError>> {
        match self {
            Provider::Identity => Some(identity_read(stored)),
            Provider::Keyed { algorithm, prefix, keys } => {
                let rest = stored.strip_prefix(prefix.as_bytes())?;
                let mut errs = Vec::new();
                for (i, key) in keys.iter().enumerate() {
                    let Some(sealed) =
                        rest.strip_prefix(key.name.as_bytes()).and_then(|r| r.strip_prefix(b":"))
                    else {
                        continue;
                    };
                    match key.cipher.open(sealed, etcd_key.as_bytes()) {
                        Ok(plain) => return Some(Ok(Plain { value: Cow::Owned(plain), stale: i != 0 })),
                        Err(e) => errs.push(e),
                    }
                }
                Some(Err(aggregate(errs).unwrap_or_else(|| TransformError::NoMatchingKey {
                    family: algorithm.family(),
                    wanted: key_name_of(rest),
                })))
            }
        }
    }
}

/// The key name a keyed value says it was written with: what precedes the first `:` (when short and
/// printable), for error messages.
fn key_name_of(rest: &[u8]) -> Option<String> {
    let end = rest.iter().take(256).position(|&b| b == b':')?;
    let name = std::str::from_utf8(&rest[..end]).ok()?;
    (!name.is_empty() && name.chars().all(|c| !c.is_control())).then(|| name.to_string())
}

/// The providers of one resource, in configuration order (never empty).
#[derive(Debug)]
pub struct Transformer {
    providers: Vec<Arc<Provider>>,
}

impl Transformer {
    /// `providers` must not be empty.
    pub fn new(providers: Vec<Arc<Provider>>) -> Transformer {
        Transformer { providers }
    }

    pub fn providers(&self) -> &[Arc<Provider>] {
        &self.providers
    }

    /// The stored form of `plain` at `etcd_key`: through the first provider.
    pub fn to_storage(&self, plain: Vec<u8>, etcd_key: &str) -> Result<Vec<u8>, TransformError> {
        match self.providers.first() {
            Some(p) => p.seal(plain, etcd_key),
            None => Ok(plain),
        }
    }

    /// The plaintext of a value stored at `etcd_key`.
    pub fn from_storage<'a>(&self, stored: &'a [u8], etcd_key: &str) -> Result<Plain<'a>, TransformError> {
        let mut errs = Vec::new();
        for (i, provider) in self.providers.iter().enumerate() {
            match provider.open(stored, etcd_key) {
                None => {}
                Some(Ok(plain)) => return Ok(Plain { stale: plain.stale || i != 0, ..plain }),
                // Identity refusing encrypted data lets the next providers try (as in Kubernetes, where
                // an identity first in the list is how encryption is turned off).
                Some(Err(TransformError::EncryptedForIdentity)) => {}
                Some(Err(e)) => errs.push(e),
            }
        }
        Err(aggregate(errs).unwrap_or(TransformError::NoMatchingPrefix))
    }
}

/// How a resource without configured providers is read: plaintext, refusing encrypted values
/// (Kubernetes' `identity.NewEncryptCheckTransformer`).
pub fn identity_read(stored: &[u8]) -> Result<Plain<'_>, TransformError> {
    if stored.starts_with(ENCRYPTED_PREFIX) {
        return Err(TransformError::EncryptedForIdentity);
    }
    Ok(Plain { value: Cow::Borrowed(stored), stale: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "/registry/secrets/default/s1";

    fn keyed(alg: Algorithm, keys: &[(&str, u8)]) -> Arc<Provider> {
        let keys = keys
            .iter()
            .map(|(name, fill)| NamedKey {
                name: name.to_string(),
                cipher: KeyCipher::new(alg, &[*fill; 32]).unwrap(),
            })
            .collect();
        Arc::new(Provider::keyed(alg, keys))
    }

    fn chain(providers: &[&Arc<Provider>]) -> Transformer {
        Transformer::new(providers.iter().map(|p| Arc::clone(p)).collect())
    }

    fn read(t: &Transformer, stored: &[u8]) -> Result<(Vec<u8>, bool), TransformError> {
        t.from_storage(stored, KEY).map(|p| (p.value.into_owned(), p.stale))
    }

    #[test]
    fn writes_carry_the_first_provider_and_key() {
        for (alg, name) in [
            (Algorithm::AesCbc, "aescbc"),
            (Algorithm::AesGcm, "aesgcm"),
            (Algorithm::Secretbox, "secretbox"),
        ] {
            let p = keyed(alg, &[("key1", 1), ("key2", 2)]);
            let t = chain(&[&p, &Arc::new(Provider::Identity)]);
            let stored = t.to_storage(b"plaintext value".to_vec(), KEY).unwrap();
            let prefix = format!("k8s:enc:{name}:v1:key1:");
            assert!(stored.starts_with(prefix.as_bytes()), "{name}");
            assert!(!stored.windows(9).any(|w| w == b"plaintext"), "{name}: no plaintext");
            assert_eq!(read(&t, &stored).unwrap(), (b"plaintext value".to_vec(), false));
        }
    }

    #[test]
    fn identity_first_writes_plaintext_and_reads_encrypted_values_as_stale() {
        let aes = keyed(Algorithm::AesCbc, &[("key1", 1)]);
        let id = Arc::new(Provider::Identity);
        let encrypting = chain(&[&aes, &id]);
        let decrypting = chain(&[&id, &aes]);
        let sealed = encrypting.to_storage(b"v".to_vec(), KEY).unwrap();
        assert_eq!(read(&decrypting, &sealed).unwrap(), (b"v".to_vec(), true));
        assert_eq!(decrypting.to_storage(b"v".to_vec(), KEY).unwrap(), b"v");
        assert_eq!(read(&decrypting, b"v").unwrap(), (b"v".to_vec(), false));
        assert_eq!(read(&encrypting, b"v").unwrap(), (b"v".to_vec(), true), "plaintext through identity");
    }

    #[test]
    fn rotation_reads_old_keys_as_stale() {
        let old = chain(&[&keyed(Algorithm::Secretbox, &[("key1", 1)])]);
        let both = chain(&[&keyed(Algorithm::Secretbox, &[("key2", 2), ("key1", 1)])]);
        let sealed_old = old.to_storage(b"v".to_vec(), KEY).unwrap();
        assert_eq!(read(&both, &sealed_old).unwrap(), (b"v".to_vec(), true));
        let sealed_new = both.to_storage(b"v".to_vec(), KEY).unwrap();
        assert!(sealed_new.starts_with(b"k8s:enc:secretbox:v1:key2:"));
        assert_eq!(read(&both, &sealed_new).unwrap(), (b"v".to_vec(), false));
        // Another provider of the same algorithm later in the list (Kubernetes' documented rotation
        // between two aescbc entries).
        let split = chain(&[
            &keyed(Algorithm::Secretbox, &[("key2", 2)]),
            &keyed(Algorithm::Secretbox, &[("key1", 1)]),
        ]);
        assert_eq!(read(&split, &sealed_old).unwrap(), (b"v".to_vec(), true));
        assert_eq!(read(&split, &sealed_new).unwrap(), (b"v".to_vec(), false));
    }

    #[test]
    fn unreadable_values_say_why() {
        let aes = keyed(Algorithm::AesCbc, &[("key1", 1)]);
        let t = chain(&[&aes]);
        assert_eq!(read(&t, b"plain protobuf"), Err(TransformError::NoMatchingPrefix));
        assert_eq!(read(&t, b""), Err(TransformError::NoMatchingPrefix));
        let foreign =
            chain(&[&keyed(Algorithm::AesCbc, &[("key9", 9)])]).to_storage(b"v".to_vec(), KEY).unwrap();
        let e = read(&t, &foreign).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no matching key was found for the provided AES transformer (the value was written with key \"key9\")"
        );
        let boxed = chain(&[&keyed(Algorithm::Secretbox, &[("k", 1)])]);
        let e = read(&boxed, b"k8s:enc:secretbox:v1:").unwrap_err();
        assert_eq!(e.to_string(), "no matching key was found for the provided Secretbox transformer");
        assert_eq!(read(&boxed, b"k8s:enc:secretbox:v1:k:short"), Err(TransformError::TooShort));
        // Another provider's value.
        assert_eq!(read(&boxed, &foreign), Err(TransformError::NoMatchingPrefix));
        // An encrypted value where only identity is configured.
        let id = chain(&[&Arc::new(Provider::Identity)]);
        assert_eq!(read(&id, &foreign), Err(TransformError::NoMatchingPrefix));
        assert_eq!(identity_read(&foreign), Err(TransformError::EncryptedForIdentity));
        assert_eq!(identity_read(b"plain").unwrap().value.as_ref(), b"plain");
    }

    #[test]
    fn same_name_in_two_providers_reports_every_failure() {
        let a = keyed(Algorithm::AesGcm, &[("k", 1)]);
        let b = keyed(Algorithm::AesGcm, &[("k", 2)]);
        let sealed = chain(&[&keyed(Algorithm::AesGcm, &[("k", 3)])]).to_storage(b"v".to_vec(), KEY).unwrap();
        // Both fail the same way: one message.
        assert_eq!(read(&chain(&[&a, &b]), &sealed), Err(TransformError::Authentication));
        let truncated = &sealed[..sealed.len() - 20];
        let cbc = keyed(Algorithm::AesCbc, &[("k", 1)]);
        let mixed = [b"k8s:enc:aescbc:v1:k:".as_slice(), &[0u8; 20]].concat();
        assert_eq!(read(&chain(&[&cbc]), &mixed), Err(TransformError::NotBlockMultiple));
        assert_eq!(read(&chain(&[&a, &b]), truncated), Err(TransformError::TooShort));
        let several = TransformError::Several(vec![TransformError::TooShort, TransformError::Authentication]);
        assert_eq!(
            several.to_string(),
            "[the stored data was shorter than the required size, cipher: message authentication failed]"
        );
    }

    #[test]
    fn a_value_moved_to_another_key_does_not_open_with_aesgcm() {
        let t = chain(&[&keyed(Algorithm::AesGcm, &[("k", 1)])]);
        let sealed = t.to_storage(b"v".to_vec(), KEY).unwrap();
        assert_eq!(
            t.from_storage(&sealed, "/registry/secrets/default/s2"),
            Err(TransformError::Authentication)
        );
    }

    #[test]
    fn key_names_in_errors_are_bounded_and_printable() {
        assert_eq!(key_name_of(b"key1:rest"), Some("key1".into()));
        assert_eq!(key_name_of(b":rest"), None);
        assert_eq!(key_name_of(b"no colon"), None);
        assert_eq!(key_name_of(b"bad\x07:x"), None);
        assert_eq!(key_name_of(b"\xff\xfe:x"), None);
        assert_eq!(key_name_of(&[b'a'; 300]), None);
    }

    #[test]
    fn describes_providers_without_secrets() {
        let p = keyed(Algorithm::AesCbc, &[("key2", 2), ("key1", 1)]);
        assert_eq!(p.describe(), "aescbc (key2, key1)");
        assert_eq!(Provider::Identity.describe(), "identity");
        assert!(!format!("{p:?}").contains("[2, 2"), "{p:?}");
    }
}
