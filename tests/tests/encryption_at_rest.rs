//! Secrets encrypted at rest (`--encryption-provider-config`), modelled on Kubernetes'
//! `TestSecretsShouldBeTransformed` (test/integration/controlplane/transformation): a real etcd and
//! api-server; Secrets are written through the API, their raw etcd values read with an etcd client
//! must carry `k8s:enc:<provider>:v1:<key>:` and no plaintext, and read back through the API (get, list
//! and the watch cache). Then the operator's procedures: turning encryption on over plaintext data,
//! rotating a key (add second, restart, move first, restart, `kubectl get secrets -A -o json | kubectl
//! replace -f -`, remove the old key), turning it off (identity first), and what a missing key or a
//! tampered value does.

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{ConfigMap, Namespace, ObjectMeta, Secret};
use navarch_client::{Api, Error, ListParams, WatchEvent, WatchParams};
use navarch_tests::{Kubectl, TestEnv, binary};
use tempfile::TempDir;

/// 32-byte test keys (base64): AES-256 or secretbox.
const KEY_ONE: &str = "bmF2YXJjaC1lbmNyeXB0aW9uLXRlc3Qta2V5LW9uZSE=";
const KEY_TWO: &str = "bmF2YXJjaC1lbmNyeXB0aW9uLXRlc3Qta2V5LXR3byE=";
/// A 16-byte key: AES-128.
const KEY_SHORT: &str = "c2VjcmV0IGlzIHNlY3VyZQ==";

const SECRET_VALUE: &str = "correct-horse-battery-staple";

/// An EncryptionConfiguration for `resources` with `providers` (YAML flow mappings, in order).
fn config(resources: &str, providers: &[String]) -> String {
    let providers: String = providers.iter().map(|p| format!("      - {p}\n")).collect();
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  \
         - resources: {resources}\n    providers:\n{providers}"
    )
}

/// A keyed provider: `keyed("aescbc", &[("key1", KEY_ONE)])`.
fn keyed(provider: &str, keys: &[(&str, &str)]) -> String {
    let keys: Vec<String> = keys.iter().map(|(n, s)| format!("{{name: {n}, secret: \"{s}\"}}")).collect();
    format!("{provider}: {{keys: [{}]}}", keys.join(", "))
}

fn identity() -> String {
    "identity: {}".into()
}

/// etcd + an api-server reading its encryption configuration from a file that the test rewrites.
struct Cluster {
    env: TestEnv,
    config_path: PathBuf,
    _dir: TempDir,
}

impl Cluster {
    async fn start(encryption: &str) -> Cluster {
        let dir = tempfile::Builder::new().prefix("navarch-encryption-").tempdir().expect("temp dir");
        let config_path = dir.path().join("encryption.yaml");
        std::fs::write(&config_path, encryption).expect("writing the encryption configuration");
        let flag = format!("--encryption-provider-config={}", config_path.display());
        let env = TestEnv::start_with(&[&flag]).await;
        Cluster { env, config_path, _dir: dir }
    }

    /// Writes a new configuration and restarts the api-server with it (same etcd).
    async fn reconfigure(&mut self, encryption: &str) {
        std::fs::write(&self.config_path, encryption).expect("writing the encryption configuration");
        self.env.api_server.restart().await;
    }

    async fn secrets(&self, namespace: &str) -> Api<Secret> {
        self.env.client().await.api(namespace)
    }

    /// The value etcd holds at `key` and its mod_revision.
    async fn raw(&self, key: &str) -> (Vec<u8>, i64) {
        let mut etcd = self.env.etcd.client().await;
        let resp = etcd.get(key, None).await.expect("etcd get");
        let kv = resp.kvs().first().unwrap_or_else(|| panic!("{key} is not in etcd"));
        (kv.value().to_vec(), kv.mod_revision())
    }

    async fn put_raw(&self, key: &str, value: Vec<u8>) {
        self.env.etcd.client().await.put(key, value, None).await.expect("etcd put");
    }

    /// `kubectl get secrets -A -o json | kubectl replace -f -`: the documented way to rewrite every
    /// Secret with the current first key.
    async fn rewrite_all_secrets(&self) {
        let kubectl = Kubectl::new(&self.env.api_server);
        let all = kubectl.ok(&["get", "secrets", "--all-namespaces", "-o", "json"]).await;
        let out = kubectl.run_stdin(&["replace", "-f", "-"], Some(&all)).await;
        assert_eq!(out.code, 0, "kubectl replace: {out:?}");
    }
}

fn secret(name: &str) -> Secret {
    Secret {
        metadata: Some(ObjectMeta { name: name.into(), ..Default::default() }),
        string_data: [("password".to_string(), SECRET_VALUE.to_string())].into(),
        ..Default::default()
    }
}

/// What the API returns for `password` (base64 of [`SECRET_VALUE`]).
const SECRET_VALUE_BASE64: &str = "Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5LXN0YXBsZQ==";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Asserts the raw value is encrypted with `provider` and `key` and holds no plaintext.
fn assert_encrypted(raw: &[u8], provider: &str, key: &str) {
    let prefix = format!("k8s:enc:{provider}:v1:{key}:");
    assert!(
        raw.starts_with(prefix.as_bytes()),
        "expected {prefix}, etcd holds {:?}",
        String::from_utf8_lossy(&raw[..raw.len().min(40)])
    );
    assert!(!contains(raw, SECRET_VALUE) && !contains(raw, SECRET_VALUE_BASE64), "plaintext in etcd");
}

fn assert_plaintext(raw: &[u8]) {
    assert!(!raw.starts_with(b"k8s:enc:"), "expected plaintext in etcd");
    assert!(contains(raw, SECRET_VALUE_BASE64), "expected the Secret's data in etcd");
}

fn password(s: &Secret) -> &str {
    s.data.get("password").map(String::as_str).unwrap_or_default()
}

/// The gRPC door's answer to a value it cannot decrypt: `Internal` (the details go to the log only).
fn is_internal<T>(r: &Result<T, Error>) -> bool {
    matches!(r, Err(e @ Error::Api { .. }) if e.to_string().starts_with("api-server error (Internal)"))
}

async fn next_change(stream: &mut navarch_client::WatchStream<Secret>) -> Secret {
    loop {
        let ev =
            tokio::time::timeout(Duration::from_secs(20), stream.next()).await.expect("watch event in time");
        match ev.expect("watch open").expect("watch event") {
            WatchEvent::Added(s) | WatchEvent::Modified(s) => return s,
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Deleted(s) => panic!("unexpected deletion of {}", s.meta().name),
        }
    }
}

/// Create, raw check, get, list, watch and delete through one provider.
async fn secrets_are_transformed(provider: &str, secret_key: &str) {
    let cluster =
        Cluster::start(&config("[secrets]", &[keyed(provider, &[("key1", secret_key)]), identity()])).await;
    let secrets = cluster.secrets("default").await;
    let mut watch = secrets.watch(&WatchParams::default()).await.unwrap();

    let created = secrets.create(&secret("s1")).await.unwrap();
    assert_eq!(password(&created), SECRET_VALUE_BASE64);
    let (raw, rev) = cluster.raw("/registry/secrets/default/s1").await;
    assert_encrypted(&raw, provider, "key1");
    assert_eq!(rev.to_string(), created.meta().resource_version);
    if provider == "aesgcm" {
        // The etcd key is authenticated: the value copied to another key does not open.
        cluster.put_raw("/registry/secrets/default/copy", raw.clone()).await;
        let copy = secrets.get("copy").await;
        assert!(is_internal(&copy), "{copy:?}");
        cluster.env.etcd.client().await.delete("/registry/secrets/default/copy", None).await.unwrap();
    }

    assert_eq!(secrets.get("s1").await.unwrap(), created);
    let listed = secrets.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items, std::slice::from_ref(&created));
    assert_eq!(next_change(&mut watch).await, created, "the watch cache decrypts");

    let mut changed = created.clone();
    changed.data.insert("user".into(), "YWRtaW4=".into());
    let updated = secrets.update(&changed).await.unwrap();
    assert_encrypted(&cluster.raw("/registry/secrets/default/s1").await.0, provider, "key1");
    assert_eq!(next_change(&mut watch).await, updated, "modified: new and previous value decrypted");

    // ConfigMaps are not covered: stored as they are.
    let cms: Api<ConfigMap> = cluster.env.client().await.api("default");
    let cm = ConfigMap {
        metadata: Some(ObjectMeta { name: "plain".into(), ..Default::default() }),
        data: [("k".to_string(), SECRET_VALUE.to_string())].into(),
        ..Default::default()
    };
    cms.create(&cm).await.unwrap();
    let (raw_cm, _) = cluster.raw("/registry/configmaps/default/plain").await;
    assert!(!raw_cm.starts_with(b"k8s:enc:") && contains(&raw_cm, SECRET_VALUE));

    let deleted = secrets.delete("s1", &Default::default()).await.unwrap();
    assert!(!deleted.pending);
    assert_eq!(
        password(&deleted.object),
        SECRET_VALUE_BASE64,
        "the deleted object as last stored, decrypted"
    );
}

#[tokio::test]
async fn secrets_are_encrypted_with_aescbc() {
    secrets_are_transformed("aescbc", KEY_ONE).await;
}

#[tokio::test]
async fn secrets_are_encrypted_with_aesgcm() {
    secrets_are_transformed("aesgcm", KEY_SHORT).await;
}

#[tokio::test]
async fn secrets_are_encrypted_with_secretbox() {
    secrets_are_transformed("secretbox", KEY_TWO).await;
}

/// Encryption turned on over plaintext Secrets, then key 1 rotated to key 2 by the documented
/// procedure; every Secret ends up under key 2 and reads back.
#[tokio::test]
async fn turning_on_and_rotating_rewrites_every_secret() {
    // Before: Secrets are not covered (only ConfigMaps are), so they are stored as they are.
    let mut cluster = Cluster::start(&config("[configmaps]", &[keyed("aescbc", &[("key1", KEY_ONE)])])).await;
    let ns: Api<Namespace> = cluster.env.client().await.api("");
    ns.create(&Namespace {
        metadata: Some(ObjectMeta { name: "other".into(), ..Default::default() }),
        ..Default::default()
    })
    .await
    .unwrap();
    let names = [("default", "a"), ("default", "b"), ("other", "c")];
    for (namespace, name) in names {
        cluster.secrets(namespace).await.create(&secret(name)).await.unwrap();
        assert_plaintext(&cluster.raw(&format!("/registry/secrets/{namespace}/{name}")).await.0);
    }

    // Turn encryption on, identity last so the plaintext ones still read; rewrite encrypts them.
    cluster.reconfigure(&config("[secrets]", &[keyed("aescbc", &[("key1", KEY_ONE)]), identity()])).await;
    for (namespace, name) in names {
        let s = cluster.secrets(namespace).await.get(name).await.unwrap();
        assert_eq!(password(&s), SECRET_VALUE_BASE64);
    }
    cluster.rewrite_all_secrets().await;
    for (namespace, name) in names {
        assert_encrypted(
            &cluster.raw(&format!("/registry/secrets/{namespace}/{name}")).await.0,
            "aescbc",
            "key1",
        );
    }

    // Rotation, step 1: key 2 added second (every api-server can read it before any writes with it).
    cluster
        .reconfigure(&config("[secrets]", &[keyed("aescbc", &[("key1", KEY_ONE), ("key2", KEY_TWO)])]))
        .await;
    cluster.secrets("default").await.create(&secret("d")).await.unwrap();
    assert_encrypted(&cluster.raw("/registry/secrets/default/d").await.0, "aescbc", "key1");
    // Step 2: key 2 first. New writes use it; old values still read.
    cluster
        .reconfigure(&config("[secrets]", &[keyed("aescbc", &[("key2", KEY_TWO), ("key1", KEY_ONE)])]))
        .await;
    cluster.secrets("default").await.create(&secret("e")).await.unwrap();
    assert_encrypted(&cluster.raw("/registry/secrets/default/e").await.0, "aescbc", "key2");
    assert_encrypted(&cluster.raw("/registry/secrets/default/a").await.0, "aescbc", "key1");
    // Step 3: rewrite. Unchanged objects are written because their stored form is stale.
    let all = [("default", "a"), ("default", "b"), ("other", "c"), ("default", "d"), ("default", "e")];
    let mut before = Vec::new();
    for (namespace, name) in all {
        before.push(cluster.raw(&format!("/registry/secrets/{namespace}/{name}")).await.1);
    }
    cluster.rewrite_all_secrets().await;
    for ((namespace, name), old_rev) in all.into_iter().zip(before) {
        let key = format!("/registry/secrets/{namespace}/{name}");
        let (raw, rev) = cluster.raw(&key).await;
        assert_encrypted(&raw, "aescbc", "key2");
        if name == "e" {
            assert_eq!(rev, old_rev, "{key}: already under key2 and unchanged: not written");
        } else {
            assert!(rev > old_rev, "{key}: rewritten");
        }
    }
    // Step 4: key 1 removed. Everything still reads.
    cluster.reconfigure(&config("[secrets]", &[keyed("aescbc", &[("key2", KEY_TWO)])])).await;
    let mut listed = 0;
    for namespace in ["default", "other"] {
        for s in cluster.secrets(namespace).await.list(&ListParams::default()).await.unwrap().items {
            assert_eq!(password(&s), SECRET_VALUE_BASE64, "{}", s.meta().name);
            listed += 1;
        }
    }
    assert_eq!(listed, all.len());
}

/// Decryption turned off: identity first writes plaintext and still reads what was encrypted.
#[tokio::test]
async fn identity_first_reads_encrypted_values_and_rewrites_them_as_plaintext() {
    let aesgcm = keyed("aesgcm", &[("key1", KEY_ONE)]);
    let mut cluster = Cluster::start(&config("['*.']", &[aesgcm.clone(), identity()])).await;
    let secrets = cluster.secrets("default").await;
    secrets.create(&secret("old")).await.unwrap();
    assert_encrypted(&cluster.raw("/registry/secrets/default/old").await.0, "aesgcm", "key1");

    cluster.reconfigure(&config("['*.']", &[identity(), aesgcm])).await;
    let secrets = cluster.secrets("default").await;
    assert_eq!(password(&secrets.get("old").await.unwrap()), SECRET_VALUE_BASE64);
    secrets.create(&secret("new")).await.unwrap();
    assert_plaintext(&cluster.raw("/registry/secrets/default/new").await.0);
    cluster.rewrite_all_secrets().await;
    assert_plaintext(&cluster.raw("/registry/secrets/default/old").await.0);
}

/// A value the configuration cannot decrypt is an internal error for that object, with the etcd key
/// and the reason in the api-server's log; everything else keeps working.
#[tokio::test]
async fn undecryptable_values_are_internal_errors_naming_the_key() {
    let mut cluster = Cluster::start(&config("[secrets]", &[keyed("secretbox", &[("key1", KEY_ONE)])])).await;
    let secrets = cluster.secrets("default").await;
    secrets.create(&secret("s1")).await.unwrap();
    let (sealed, _) = cluster.raw("/registry/secrets/default/s1").await;

    // The key is gone from the configuration.
    cluster.reconfigure(&config("[secrets]", &[keyed("secretbox", &[("key2", KEY_TWO)])])).await;
    let secrets = cluster.secrets("default").await;
    assert!(is_internal(&secrets.get("s1").await));
    assert!(is_internal(&secrets.list(&ListParams::default()).await));
    let expected = "unable to transform key \"/registry/secrets/default/s1\": no matching key was found for the \
                    provided Secretbox transformer (the value was written with key \"key1\")";
    assert!(
        cluster.env.api_server.log().contains(expected),
        "api-server log:\n{}",
        cluster.env.api_server.log()
    );
    // Through the REST door too.
    let kubectl = Kubectl::new(&cluster.env.api_server);
    let out = kubectl.fails(&["get", "secret", "s1"]).await;
    assert!(out.stderr.contains("InternalError") || out.stderr.contains("Internal error"), "{out:?}");
    // Other objects are unaffected.
    secrets.create(&secret("s2")).await.unwrap();
    assert_eq!(password(&secrets.get("s2").await.unwrap()), SECRET_VALUE_BASE64);

    // A tampered value under a known key.
    let (mut raw, _) = cluster.raw("/registry/secrets/default/s2").await;
    if let Some(last) = raw.last_mut() {
        *last ^= 0x01;
    }
    cluster.put_raw("/registry/secrets/default/s2", raw).await;
    assert!(is_internal(&secrets.get("s2").await));
    assert!(cluster.env.api_server.log().contains(
        "unable to transform key \"/registry/secrets/default/s2\": cipher: message authentication failed"
    ));

    // A plaintext value where no identity provider is configured.
    cluster.put_raw("/registry/secrets/default/s3", b"\x0a\x02v1".to_vec()).await;
    assert!(is_internal(&secrets.get("s3").await));
    assert!(
        cluster.env.api_server.log().contains("\"/registry/secrets/default/s3\": no matching prefix found")
    );

    // The original key back: the first Secret reads again, as stored.
    cluster.reconfigure(&config("[secrets]", &[keyed("secretbox", &[("key1", KEY_ONE)])])).await;
    assert_eq!(password(&cluster.secrets("default").await.get("s1").await.unwrap()), SECRET_VALUE_BASE64);
    assert_eq!(cluster.raw("/registry/secrets/default/s1").await.0, sealed);
}

/// A configuration Kubernetes would refuse stops the api-server with the field path.
#[tokio::test]
async fn a_bad_configuration_stops_the_api_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("encryption.yaml");
    std::fs::write(&path, config("[secrets]", &[keyed("aescbc", &[("key1", "c2hvcnQ=")])])).unwrap();
    let out = tokio::process::Command::new(binary("api-server", "api-server"))
        .arg(format!("--encryption-provider-config={}", path.display()))
        .args(TLS_PLACEHOLDERS)
        .arg("--listen=127.0.0.1:0")
        .arg("--http-listen=127.0.0.1:0")
        .env_remove("NAVARCH_APISERVER_CONFIG")
        .output()
        .await
        .expect("running the api-server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "--encryption-provider-config: error while parsing file: resources[0].providers[0].aescbc.keys[0].secret: \
             Invalid value: \"REDACTED\": secret is not of the expected length, got 5, expected one of [16, 24, 32]"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("c2hvcnQ"), "the secret is never printed: {stderr}");
}

/// The api-server's required TLS files: never read, because a bad encryption configuration stops it
/// before anything else.
const TLS_PLACEHOLDERS: &[&str] = &[
    "--tls-cert-file=/nonexistent/apiserver.crt",
    "--tls-private-key-file=/nonexistent/apiserver.key",
    "--client-ca-file=/nonexistent/ca.crt",
    "--kubelet-certificate-authority=/nonexistent/ca.crt",
];
