//! The `--encryption-provider-config` file: Kubernetes' `EncryptionConfiguration`
//! (`apiserver.config.k8s.io/v1`), in YAML or JSON, read strictly (an unknown field is an error) and
//! checked as Kubernetes checks it, every problem reported with its field path:
//!
//! ```yaml
//! apiVersion: apiserver.config.k8s.io/v1
//! kind: EncryptionConfiguration
//! resources:
//!   - resources: [secrets, configmaps]
//!     providers:
//!       - aescbc:                      # or aesgcm, secretbox
//!           keys:
//!             - name: key1
//!               secret: <base64 of 16, 24 or 32 random bytes; secretbox: 32>
//!       - identity: {}
//! ```
//!
//! `kms` providers are recognised and refused: navarch has no KMS plugin client.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer};

use super::ciphers::{Algorithm, KeyCipher};
use super::resources::{self, GroupResource, Rule};
use super::transformer::{NamedKey, Provider};

pub const API_VERSION: &str = "apiserver.config.k8s.io/v1";
pub const KIND: &str = "EncryptionConfiguration";

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("error opening encryption provider configuration file {path:?}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("encryption provider configuration file {0:?} is empty")]
    Empty(PathBuf),
    /// Not YAML/JSON of the expected shape (unknown field, wrong type); the message names the path.
    #[error("{0}")]
    Syntax(String),
    /// Field errors, Kubernetes-style (`resources[0].providers[0].aescbc.keys[0].secret: ...`).
    #[error("{}", aggregate(.0))]
    Invalid(Vec<String>),
    #[error(transparent)]
    Masked(#[from] resources::MaskedError),
}

fn aggregate(messages: &[String]) -> String {
    match messages {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Field errors in Kubernetes' words (`field.Required`, `field.Invalid`).
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<String>);

impl FieldErrors {
    pub fn required(&mut self, path: &str, detail: &str) {
        self.0.push(format!("{path}: Required value: {detail}"));
    }

    /// `value` as it should be printed (quoted, or `REDACTED` for secrets).
    pub fn invalid(&mut self, path: &str, value: &str, detail: &str) {
        self.0.push(format!("{path}: Invalid value: {value}: {detail}"));
    }

    pub fn into_messages(self) -> Vec<String> {
        self.0
    }
}

/// `null` reads as the empty value, as in Kubernetes' decoder.
fn or_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileFormat {
    #[serde(default, deserialize_with = "or_default")]
    api_version: String,
    #[serde(default, deserialize_with = "or_default")]
    kind: String,
    #[serde(default, deserialize_with = "or_default")]
    resources: Vec<EntryFormat>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFormat {
    #[serde(default, deserialize_with = "or_default")]
    resources: Vec<String>,
    #[serde(default, deserialize_with = "or_default")]
    providers: Vec<ProviderFormat>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderFormat {
    #[serde(default)]
    aescbc: Option<KeysFormat>,
    #[serde(default)]
    aesgcm: Option<KeysFormat>,
    #[serde(default)]
    secretbox: Option<KeysFormat>,
    #[serde(default)]
    identity: Option<IdentityFormat>,
    /// Recognised so that it can be refused by name.
    #[serde(default)]
    kms: Option<serde_yaml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFormat {
    #[serde(default, deserialize_with = "or_default")]
    keys: Vec<KeyFormat>,
}

/// Deliberately not `Debug`: it holds the secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFormat {
    #[serde(default, deserialize_with = "or_default")]
    name: String,
    #[serde(default, deserialize_with = "or_default")]
    secret: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFormat {}

/// Reads and checks the file at `path`.
pub fn load(path: &Path) -> Result<Vec<Rule>, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    if text.trim().is_empty() {
        return Err(ConfigError::Empty(path.into()));
    }
    parse(&text)
}

/// Parses and checks a configuration; the rules are in file order, their keys decoded.
pub fn parse(text: &str) -> Result<Vec<Rule>, ConfigError> {
    let file: FileFormat = serde_yaml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    let mut errs = FieldErrors::default();
    if file.api_version != API_VERSION {
        errs.invalid("apiVersion", &format!("{:?}", file.api_version), &format!("must be {API_VERSION:?}"));
    }
    if file.kind != KIND {
        errs.invalid("kind", &format!("{:?}", file.kind), &format!("must be {KIND:?}"));
    }
    if file.resources.is_empty() {
        errs.required("resources", "at least one resources is required");
    }
    let mut rules = Vec::new();
    for (i, entry) in file.resources.iter().enumerate() {
        let path = format!("resources[{i}]");
        resources::validate(&entry.resources, &format!("{path}.resources"), &mut errs);
        let providers_path = format!("{path}.providers");
        if entry.providers.is_empty() {
            errs.required(&providers_path, &format!("at least one {providers_path} is required"));
        }
        let providers: Vec<Arc<Provider>> = entry
            .providers
            .iter()
            .enumerate()
            .filter_map(|(j, p)| provider(p, &format!("{providers_path}[{j}]"), &mut errs))
            .map(Arc::new)
            .collect();
        rules.push(Rule {
            resources: entry.resources.iter().map(|r| GroupResource::parse(r)).collect(),
            providers,
        });
    }
    let messages = errs.into_messages();
    if !messages.is_empty() {
        return Err(ConfigError::Invalid(messages));
    }
    Ok(rules)
}

/// One `providers` element: exactly one provider, its keys valid.
fn provider(p: &ProviderFormat, path: &str, errs: &mut FieldErrors) -> Option<Provider> {
    let keyed = [
        (Algorithm::AesGcm, &p.aesgcm),
        (Algorithm::AesCbc, &p.aescbc),
        (Algorithm::Secretbox, &p.secretbox),
    ];
    let named = keyed.iter().filter(|(_, k)| k.is_some()).count()
        + usize::from(p.identity.is_some())
        + usize::from(p.kms.is_some());
    if named == 0 {
        errs.invalid(
            path,
            "{}",
            "provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity",
        );
        return None;
    }
    if named > 1 {
        errs.invalid(
            path,
            "{...}",
            "more than one provider specified in a single element, should split into different list elements",
        );
        return None;
    }
    if p.kms.is_some() {
        errs.invalid(&format!("{path}.kms"), "{...}", "kms providers are not supported by navarch");
        return None;
    }
    if p.identity.is_some() {
        return Some(Provider::Identity);
    }
    let (algorithm, keys) = keyed.iter().find_map(|(a, k)| k.as_ref().map(|k| (*a, k)))?;
    let keys_path = format!("{path}.{}.keys", algorithm.name());
    if keys.keys.is_empty() {
        errs.required(&keys_path, "at least one keys is required");
        return None;
    }
    let before = errs.0.len();
    let named_keys: Vec<NamedKey> = keys
        .keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| key(algorithm, k, &format!("{keys_path}[{i}]"), errs))
        .collect();
    (errs.0.len() == before).then(|| Provider::keyed(algorithm, named_keys))
}

/// One key: a name, and a secret that is base64 of a key of a size the provider takes.
fn key(algorithm: Algorithm, k: &KeyFormat, path: &str, errs: &mut FieldErrors) -> Option<NamedKey> {
    if k.name.is_empty() {
        errs.required(&format!("{path}.name"), "name is a mandatory field for a key");
    }
    let secret_path = format!("{path}.secret");
    if k.secret.is_empty() {
        errs.required(&secret_path, "secret is a mandatory field for a key");
        return None;
    }
    let Ok(bytes) = STANDARD.decode(&k.secret) else {
        errs.invalid(&secret_path, "\"REDACTED\"", "secrets must be base64 encoded");
        return None;
    };
    match KeyCipher::new(algorithm, &bytes) {
        Ok(cipher) if !k.name.is_empty() => Some(NamedKey { name: k.name.clone(), cipher }),
        Ok(_) => None,
        Err(e) => {
            errs.invalid(&secret_path, "\"REDACTED\"", &e.to_string());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY32: &str = "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY="; // abcdefghijklmnopqrstuvwxyz123456
    const KEY16: &str = "c2VjcmV0IGlzIHNlY3VyZQ=="; // "secret is secure"

    fn config(body: &str) -> String {
        format!("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n{body}")
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_every_provider() {
        let text = config(&format!(
            "resources:\n\
             - resources: [secrets, configmaps]\n  providers:\n\
             \x20 - aescbc: {{keys: [{{name: key2, secret: {KEY32}}}, {{name: key1, secret: {KEY16}}}]}}\n\
             \x20 - aesgcm: {{keys: [{{name: g, secret: {KEY16}}}]}}\n\
             \x20 - secretbox: {{keys: [{{name: s, secret: {KEY32}}}]}}\n\
             \x20 - identity: {{}}\n\
             - resources: ['*.apps']\n  providers: [{{identity: {{}}}}]\n"
        ));
        let rules = parse(&text).unwrap();
        assert_eq!(rules.len(), 2);
        let described: Vec<String> = rules[0].providers.iter().map(|p| p.describe()).collect();
        assert_eq!(described, ["aescbc (key2, key1)", "aesgcm (g)", "secretbox (s)", "identity"]);
        assert_eq!(rules[1].resources, [GroupResource::parse("*.apps")]);
    }

    #[test]
    fn reads_json_too() {
        let text = format!(
            r#"{{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration",
            "resources":[{{"resources":["secrets"],"providers":[{{"secretbox":{{"keys":[{{"name":"k","secret":"{KEY32}"}}]}}}}]}}]}}"#
        );
        assert_eq!(parse(&text).unwrap()[0].providers[0].describe(), "secretbox (k)");
    }

    #[test]
    fn unknown_fields_name_their_path() {
        let e = error(&config("resources:\n- resources: [secrets]\n  providers:\n  - aescbcc: {}\n"));
        assert!(e.contains("resources[0].providers[0]") && e.contains("unknown field `aescbcc`"), "{e}");
        let e = error(&config(&format!(
            "resources:\n- resources: [secrets]\n  providers:\n  - aescbc: {{keys: [{{name: a, secret: {KEY32}, size: 3}}]}}\n"
        )));
        assert!(
            e.contains("resources[0].providers[0].aescbc.keys[0]") && e.contains("unknown field `size`"),
            "{e}"
        );
        let e = error(&config("resources: []\nextra: 1\n"));
        assert!(e.contains("unknown field `extra`"), "{e}");
        let e = error(&config("resources:\n- resources: secrets\n"));
        assert!(e.contains("resources[0].resources") && e.contains("invalid type"), "{e}");
        let e = error(&config("resources:\n- resources: [secrets]\n  providers:\n  - identity: {x: 1}\n"));
        assert!(e.contains("resources[0].providers[0].identity") && e.contains("unknown field `x`"), "{e}");
    }

    #[test]
    fn type_and_version_are_checked() {
        let e = error(
            "apiVersion: v1\nkind: Secret\nresources: [{resources: [secrets], providers: [{identity: {}}]}]\n",
        );
        assert_eq!(
            e,
            "[apiVersion: Invalid value: \"v1\": must be \"apiserver.config.k8s.io/v1\", \
             kind: Invalid value: \"Secret\": must be \"EncryptionConfiguration\"]"
        );
        let e = error(
            "kind: EncryptionConfiguration\nresources: [{resources: [secrets], providers: [{identity: {}}]}]\n",
        );
        assert!(e.starts_with("apiVersion: Invalid value: \"\""), "{e}");
    }

    #[test]
    fn structure_errors_are_reported_together() {
        assert_eq!(
            error(&config("resources: []\n")),
            "resources: Required value: at least one resources is required"
        );
        assert_eq!(
            error(&config("resources: null\n")),
            "resources: Required value: at least one resources is required"
        );
        let e = error(&config(
            "resources:\n- resources: [secrets]\n  providers: []\n- resources: []\n  providers: [{identity: {}}]\n",
        ));
        assert_eq!(
            e,
            "[resources[0].providers: Required value: at least one resources[0].providers is required, \
             resources[1].resources: Required value: at least one resources[1].resources is required]"
        );
        let e = error(&config("resources:\n- resources: [secrets]\n  providers: [{}]\n"));
        assert!(
            e.starts_with("resources[0].providers[0]: Invalid value: {}: provider does not contain any"),
            "{e}"
        );
        let e = error(&config(
            "resources:\n- resources: [secrets]\n  providers: [{identity: {}, aescbc: {keys: []}}]\n",
        ));
        assert!(e.contains("more than one provider specified in a single element"), "{e}");
        let e = error(&config(
            "resources:\n- resources: [secrets]\n  providers: [{kms: {name: x, endpoint: 'unix:///k'}}]\n",
        ));
        assert!(e.contains("resources[0].providers[0].kms") && e.contains("not supported"), "{e}");
        let e = error(&config("resources:\n- resources: [secrets]\n  providers: [{aesgcm: {keys: []}}]\n"));
        assert_eq!(e, "resources[0].providers[0].aesgcm.keys: Required value: at least one keys is required");
    }

    #[test]
    fn key_errors_never_show_the_secret() {
        let keys = |list: &str| {
            error(&config(&format!(
                "resources:\n- resources: [secrets]\n  providers: [{{aescbc: {{keys: {list}}}}}]\n"
            )))
        };
        assert_eq!(
            keys("[{name: k, secret: 'bm90IGJhc2U2NA=!'}]"),
            "resources[0].providers[0].aescbc.keys[0].secret: Invalid value: \"REDACTED\": secrets must be base64 encoded"
        );
        let short = keys("[{name: k, secret: c2hvcnQ=}]");
        assert_eq!(
            short,
            "resources[0].providers[0].aescbc.keys[0].secret: Invalid value: \"REDACTED\": \
             secret is not of the expected length, got 5, expected one of [16, 24, 32]"
        );
        assert!(!short.contains("c2hvcnQ"));
        assert_eq!(
            keys(&format!("[{{secret: {KEY16}}}, {{name: b}}]")),
            "[resources[0].providers[0].aescbc.keys[0].name: Required value: name is a mandatory field for a key, \
             resources[0].providers[0].aescbc.keys[1].secret: Required value: secret is a mandatory field for a key]"
        );
        let e = error(&config(&format!(
            "resources:\n- resources: [secrets]\n  providers: [{{secretbox: {{keys: [{{name: s, secret: {KEY16}}}]}}}}]\n"
        )));
        assert!(e.ends_with("secret is not of the expected length, got 16, expected one of [32]"), "{e}");
    }

    #[test]
    fn resource_names_are_checked_with_their_path() {
        let e = error(&config("resources:\n- resources: [Secrets]\n  providers: [{identity: {}}]\n"));
        assert_eq!(
            e,
            "resources[0].resources[0]: Invalid value: \"Secrets\": resource name should not contain capital letters"
        );
    }

    #[test]
    fn files_that_cannot_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.yaml");
        assert!(matches!(load(&missing), Err(ConfigError::Read { .. })));
        let empty = dir.path().join("empty.yaml");
        std::fs::write(&empty, "\n").unwrap();
        assert!(load(&empty).unwrap_err().to_string().ends_with("is empty"));
        assert!(matches!(parse("- a\n- b\n"), Err(ConfigError::Syntax(_))));
        assert!(matches!(parse(":\n  - ]["), Err(ConfigError::Syntax(_))));
    }
}
