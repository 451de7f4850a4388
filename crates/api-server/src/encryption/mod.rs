//! Encryption at rest: the transformation of stored values between their plaintext (the protobuf of
//! the object) and the form written to etcd, configured as Kubernetes configures it
//! (`--encryption-provider-config`, an `EncryptionConfiguration` file) and stored in Kubernetes' format
//! (`k8s:enc:aescbc:v1:<key name>:...`).
//!
//! The parts: [`config`] reads and checks the file; [`resources`] maps its resource names to navarch's
//! kinds; [`ciphers`] seals and opens values with one key of the aescbc, aesgcm and secretbox
//! providers; [`transformer`] chains a resource's providers (the first writes, any reads, and what is
//! read with an older provider or key is *stale*). [`Transformers`], built from all that, is what
//! [`crate::storage::Storage`] and the watch caches call: it picks the transformer by etcd key.
//! Keys of kinds that no rule covers, and everything that is not an object (the Service allocation
//! keys), are stored as they are; reading an encrypted value there is an error.

pub mod ciphers;
pub mod config;
pub mod resources;
pub mod transformer;

use std::path::Path;
use std::sync::Arc;

pub use self::config::ConfigError;
pub use self::transformer::{Plain, TransformError, Transformer};

use crate::codec;

/// The transformers of every covered kind, found by etcd key. The default covers nothing: values are
/// stored as they are and encrypted values are refused.
#[derive(Clone, Default)]
pub struct Transformers {
    covered: Arc<[CoveredPrefix]>,
}

struct CoveredPrefix {
    /// `/registry/secrets/`
    key_prefix: String,
    /// `secrets`, `deployments.apps`
    resource: String,
    transformer: Arc<Transformer>,
}

impl std::fmt::Debug for Transformers {
    /// The covered resources and their providers' names: never key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.summary()).finish()
    }
}

impl Transformers {
    /// Reads the configuration file at `path` for objects stored under `etcd_prefix`.
    pub fn load(path: &Path, etcd_prefix: &str) -> Result<Transformers, ConfigError> {
        Transformers::from_rules(&config::load(path)?, etcd_prefix)
    }

    /// The transformers of a configuration given as text (YAML or JSON).
    pub fn parse(text: &str, etcd_prefix: &str) -> Result<Transformers, ConfigError> {
        Transformers::from_rules(&config::parse(text)?, etcd_prefix)
    }

    fn from_rules(rules: &[resources::Rule], etcd_prefix: &str) -> Result<Transformers, ConfigError> {
        let resolution = resources::resolve(rules, &navarch_api::KINDS)?;
        for name in &resolution.unmatched {
            tracing::warn!(
                resource = %name,
                "the encryption configuration names a resource this api-server does not serve; nothing is encrypted for it"
            );
        }
        let covered = resolution
            .covered
            .into_iter()
            .map(|c| {
                let group = c.kind.api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
                CoveredPrefix {
                    key_prefix: codec::kind_prefix(etcd_prefix, c.kind),
                    resource: if group.is_empty() {
                        c.kind.plural.into()
                    } else {
                        format!("{}.{group}", c.kind.plural)
                    },
                    transformer: c.transformer,
                }
            })
            .collect();
        Ok(Transformers { covered })
    }

    /// Whether any kind is covered.
    pub fn is_empty(&self) -> bool {
        self.covered.is_empty()
    }

    /// `secrets: aescbc (key2, key1), identity`, one line per covered resource, for logs.
    pub fn summary(&self) -> Vec<String> {
        self.covered
            .iter()
            .map(|c| {
                let providers: Vec<String> = c.transformer.providers().iter().map(|p| p.describe()).collect();
                format!("{}: {}", c.resource, providers.join(", "))
            })
            .collect()
    }

    fn for_key(&self, etcd_key: &str) -> Option<&Transformer> {
        self.covered.iter().find(|c| etcd_key.starts_with(&c.key_prefix)).map(|c| c.transformer.as_ref())
    }

    /// The form in which `plain` is written at `etcd_key`.
    pub fn to_storage(&self, etcd_key: &str, plain: Vec<u8>) -> Result<Vec<u8>, TransformError> {
        match self.for_key(etcd_key) {
            Some(t) => t.to_storage(plain, etcd_key),
            None => Ok(plain),
        }
    }

    /// The plaintext of the value stored at `etcd_key`.
    pub fn from_storage<'a>(&self, etcd_key: &str, stored: &'a [u8]) -> Result<Plain<'a>, TransformError> {
        match self.for_key(etcd_key) {
            Some(t) => t.from_storage(stored, etcd_key),
            None => transformer::identity_read(stored),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY32: &str = "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=";

    fn transformers(resources: &str, prefix: &str) -> Transformers {
        let text = format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n\
             - resources: {resources}\n  providers:\n  - secretbox: {{keys: [{{name: k1, secret: {KEY32}}}]}}\n  - identity: {{}}\n"
        );
        Transformers::parse(&text, prefix).unwrap()
    }

    #[test]
    fn encrypts_only_covered_kinds_under_the_prefix() {
        let t = transformers("[secrets]", "/registry");
        assert_eq!(t.summary(), ["secrets: secretbox (k1), identity"]);
        let secret = t.to_storage("/registry/secrets/default/a", b"v".to_vec()).unwrap();
        assert!(secret.starts_with(b"k8s:enc:secretbox:v1:k1:"));
        let back = t.from_storage("/registry/secrets/default/a", &secret).unwrap();
        assert_eq!((back.value.as_ref(), back.stale), (&b"v"[..], false));
        for plain_key in
            ["/registry/configmaps/default/a", "/registry/ranges/serviceips/10.96.0.1", "/other/secrets/a"]
        {
            assert_eq!(t.to_storage(plain_key, b"v".to_vec()).unwrap(), b"v", "{plain_key}");
            assert_eq!(
                t.from_storage(plain_key, &secret).unwrap_err(),
                TransformError::EncryptedForIdentity,
                "{plain_key}: an encrypted value where none is expected"
            );
        }
        let custom = transformers("['*.']", "/custom/root/");
        assert!(custom.to_storage("/custom/root/pods/ns/p", b"v".to_vec()).unwrap().starts_with(b"k8s:enc:"));
        assert_eq!(custom.to_storage("/custom/root/deployments/ns/d", b"v".to_vec()).unwrap(), b"v");
    }

    #[test]
    fn nothing_configured_passes_values_through() {
        let t = Transformers::default();
        assert!(t.is_empty());
        assert_eq!(t.to_storage("/registry/secrets/a/b", b"x".to_vec()).unwrap(), b"x");
        let read = t.from_storage("/registry/secrets/a/b", b"x").unwrap();
        assert!(matches!(read.value, std::borrow::Cow::Borrowed(_)), "no copy");
        assert_eq!(format!("{t:?}"), "[]");
    }

    #[test]
    fn debug_lists_resources_not_keys() {
        let t = transformers("[secrets, deployments.apps]", "/registry");
        let shown = format!("{t:?}");
        assert!(shown.contains("deployments.apps: secretbox (k1), identity"), "{shown}");
        assert!(!shown.contains(KEY32) && !shown.contains("abcdefgh"), "{shown}");
    }
}
