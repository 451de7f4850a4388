//! Tests of the ServiceAccount admission plugin.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// ServiceAccounts by `namespace/name`, counting lookups.
#[derive(Default)]
struct Accounts {
    map: HashMap<String, ServiceAccount>,
    lookups: AtomicUsize,
    broken: bool,
}

impl Accounts {
    fn with(yaml: &[&str]) -> Accounts {
        let mut map = HashMap::new();
        for y in yaml {
            let sa: ServiceAccount = serde_yaml::from_str(y).unwrap();
            let m = sa.metadata.clone().unwrap();
            map.insert(format!("{}/{}", m.namespace, m.name), sa);
        }
        Accounts { map, ..Default::default() }
    }
}

impl ServiceAccounts for Accounts {
    async fn service_account(&self, namespace: &str, name: &str) -> Result<Option<ServiceAccount>, String> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        if self.broken {
            return Err("storage unavailable: etcd down".into());
        }
        Ok(self.map.get(&format!("{namespace}/{name}")).cloned())
    }
}

const FAST: Retry = Retry { interval: Duration::from_millis(1) };

fn default_sa() -> Accounts {
    Accounts::with(&["{metadata: {name: default, namespace: ns}}"])
}

fn pod(yaml: &str) -> Pod {
    serde_yaml::from_str(yaml).unwrap()
}

async fn admit(p: &mut Pod, accounts: &Accounts) -> Result<(), AdmissionError> {
    admit_pod(p, "ns", accounts, FAST).await
}

fn spec(p: &Pod) -> &PodSpec {
    p.spec.as_ref().unwrap()
}

fn mounts(c: &navarch_api::v1::Container) -> Vec<(&str, &str, bool)> {
    c.volume_mounts.iter().map(|m| (m.name.as_str(), m.mount_path.as_str(), m.read_only)).collect()
}

#[tokio::test]
async fn defaults_the_account_and_mounts_the_token_everywhere() {
    let mut p = pod(
        "{metadata: {name: web}, spec: {initContainers: [{name: i}], containers: [{name: a}, {name: b}]}}",
    );
    admit(&mut p, &default_sa()).await.unwrap();
    let s = spec(&p);
    assert_eq!((s.service_account_name.as_str(), s.service_account.as_str()), ("default", "default"));
    assert_eq!(s.volumes.len(), 1);
    let v = &s.volumes[0];
    let suffix = v.name.strip_prefix("kube-api-access-").unwrap();
    assert_eq!(suffix.len(), 5);
    assert!(suffix.bytes().all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)), "{suffix}");
    for c in s.init_containers.iter().chain(&s.containers) {
        assert_eq!(mounts(c), [(v.name.as_str(), TOKEN_MOUNT_PATH, true)], "{}", c.name);
    }
    // The volume as Kubernetes writes it.
    let expected: ProjectedVolumeSource = serde_yaml::from_str(
        "{defaultMode: 420, sources: [\
         {serviceAccountToken: {expirationSeconds: 3607, path: token}}, \
         {configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}}, \
         {downwardAPI: {items: [{path: namespace, fieldRef: {apiVersion: v1, fieldPath: metadata.namespace}}]}}]}",
    )
    .unwrap();
    assert_eq!(v.projected.as_ref(), Some(&expected));
}

#[tokio::test]
async fn the_deprecated_field_names_the_account_too() {
    let accounts = Accounts::with(&["{metadata: {name: builder, namespace: ns}}"]);
    let mut p = pod("{spec: {serviceAccountName: builder, containers: [{name: a}]}}");
    admit(&mut p, &accounts).await.unwrap();
    assert_eq!(spec(&p).service_account, "builder");
    assert_eq!(spec(&p).volumes.len(), 1);
}

#[tokio::test]
async fn automount_false_on_the_pod_or_its_account_mounts_nothing() {
    let mut p = pod("{spec: {automountServiceAccountToken: false, containers: [{name: a}]}}");
    admit(&mut p, &default_sa()).await.unwrap();
    assert!(spec(&p).volumes.is_empty());
    assert!(spec(&p).containers[0].volume_mounts.is_empty());
    assert_eq!(spec(&p).service_account_name, "default");

    let accounts =
        Accounts::with(&["{metadata: {name: quiet, namespace: ns}, automountServiceAccountToken: false}"]);
    let mut p = pod("{spec: {serviceAccountName: quiet, containers: [{name: a}]}}");
    admit(&mut p, &accounts).await.unwrap();
    assert!(spec(&p).volumes.is_empty());
    // The pod's preference wins over its account's.
    let mut p = pod(
        "{spec: {serviceAccountName: quiet, automountServiceAccountToken: true, containers: [{name: a}]}}",
    );
    admit(&mut p, &accounts).await.unwrap();
    assert_eq!(spec(&p).volumes.len(), 1);
}

#[tokio::test]
async fn a_container_with_its_own_mount_there_keeps_it() {
    let mut p = pod("{spec: {volumes: [{name: mine, emptyDir: {}}], containers: [\
         {name: a, volumeMounts: [{name: mine, mountPath: /var/run/secrets/kubernetes.io/serviceaccount}]}, {name: b}]}}");
    admit(&mut p, &default_sa()).await.unwrap();
    let s = spec(&p);
    assert_eq!(mounts(&s.containers[0]), [("mine", TOKEN_MOUNT_PATH, false)]);
    assert_eq!(mounts(&s.containers[1])[0].1, TOKEN_MOUNT_PATH);
    assert_eq!(s.volumes.len(), 2);
    // Every container has its own: no volume is added.
    let mut p = pod("{spec: {volumes: [{name: mine, emptyDir: {}}], initContainers: [\
         {name: i, volumeMounts: [{name: mine, mountPath: /var/run/secrets/kubernetes.io/serviceaccount}]}], containers: [\
         {name: a, volumeMounts: [{name: mine, mountPath: /var/run/secrets/kubernetes.io/serviceaccount}]}]}}");
    admit(&mut p, &default_sa()).await.unwrap();
    assert_eq!(spec(&p).volumes.len(), 1);
}

#[tokio::test]
async fn an_existing_token_volume_is_reused() {
    let mut p =
        pod("{spec: {volumes: [{name: kube-api-access-abcde, emptyDir: {}}], containers: [{name: a}]}}");
    admit(&mut p, &default_sa()).await.unwrap();
    let s = spec(&p);
    assert_eq!(s.volumes.len(), 1);
    assert!(s.volumes[0].empty_dir.is_some());
    assert_eq!(mounts(&s.containers[0]), [("kube-api-access-abcde", TOKEN_MOUNT_PATH, true)]);
}

#[tokio::test]
async fn a_missing_account_is_forbidden_after_retries_for_default() {
    let none = Accounts::default();
    let mut p = pod("{spec: {containers: [{name: a}]}}");
    let e = admit(&mut p, &none).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "error looking up service account ns/default: serviceaccount \"default\" not found"
    );
    assert_eq!(none.lookups.load(Ordering::SeqCst), 10);

    let none = Accounts::default();
    let mut p = pod("{spec: {serviceAccountName: builder, containers: [{name: a}]}}");
    let e = admit(&mut p, &none).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "error looking up service account ns/builder: serviceaccount \"builder\" not found"
    );
    assert_eq!(none.lookups.load(Ordering::SeqCst), 1);

    let broken = Accounts { broken: true, ..Default::default() };
    let e = admit(&mut p, &broken).await.unwrap_err();
    assert_eq!(e.to_string(), "error looking up service account ns/builder: storage unavailable: etcd down");
    assert_eq!(broken.lookups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn image_pull_secrets_come_from_the_account_when_the_pod_has_none() {
    let accounts =
        Accounts::with(&["{metadata: {name: default, namespace: ns}, imagePullSecrets: [{name: regcred}]}"]);
    let mut p = pod("{spec: {containers: [{name: a}]}}");
    admit(&mut p, &accounts).await.unwrap();
    assert_eq!(spec(&p).image_pull_secrets, [LocalObjectReference { name: "regcred".into() }]);
    let mut p = pod("{spec: {imagePullSecrets: [{name: mine}], containers: [{name: a}]}}");
    admit(&mut p, &accounts).await.unwrap();
    assert_eq!(spec(&p).image_pull_secrets, [LocalObjectReference { name: "mine".into() }]);
}

#[tokio::test]
async fn mirror_pods_are_left_alone_and_limited() {
    let mirror = |spec: &str| {
        pod(&format!("{{metadata: {{annotations: {{kubernetes.io/config.mirror: x}}}}, spec: {spec}}}"))
    };
    let none = Accounts::default();
    let mut p = mirror("{containers: [{name: a}]}");
    admit(&mut p, &none).await.unwrap();
    assert!(spec(&p).service_account_name.is_empty());
    assert!(spec(&p).volumes.is_empty());
    assert_eq!(none.lookups.load(Ordering::SeqCst), 0);
    for (s, e) in [
        ("{serviceAccountName: default, containers: [{name: a}]}", AdmissionError::MirrorServiceAccount),
        (
            "{volumes: [{name: s, secret: {secretName: x}}], containers: [{name: a}]}",
            AdmissionError::MirrorSecrets,
        ),
        (
            "{containers: [{name: a, env: [{name: X, valueFrom: {secretKeyRef: {name: s, key: k}}}]}]}",
            AdmissionError::MirrorSecrets,
        ),
        (
            "{volumes: [{name: t, projected: {sources: [{serviceAccountToken: {path: t}}]}}], containers: [{name: a}]}",
            AdmissionError::MirrorTokenProjection,
        ),
    ] {
        assert_eq!(admit(&mut mirror(s), &none).await.unwrap_err(), e, "{s}");
    }
}
