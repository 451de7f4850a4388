//! The volumes of a pod on the host and its containers' environment, against fake sources.

use super::*;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

#[derive(Default)]
struct Fake {
    cms: Mutex<HashMap<String, ConfigMap>>,
    secrets: HashMap<String, Secret>,
    services: HashMap<String, Service>,
    /// The token requests asked, as (namespace, account, request).
    tokens: Mutex<Vec<(String, String, TokenRequest)>>,
    token: Mutex<String>,
    claims: Mutex<HashMap<String, PersistentVolumeClaim>>,
    volumes: Mutex<HashMap<String, PersistentVolume>>,
}

impl Sources for Fake {
    async fn config_map(&self, _: &str, name: &str) -> Result<Option<ConfigMap>> {
        Ok(self.cms.lock().unwrap().get(name).cloned())
    }
    async fn secret(&self, _: &str, name: &str) -> Result<Option<Secret>> {
        Ok(self.secrets.get(name).cloned())
    }
    async fn service(&self, ns: &str, name: &str) -> Result<Option<Service>> {
        Ok(self.services.get(&format!("{ns}/{name}")).cloned())
    }
    async fn service_account_token(&self, ns: &str, name: &str, request: &TokenRequest) -> Result<String> {
        self.tokens.lock().unwrap().push((ns.into(), name.into(), request.clone()));
        Ok(self.token.lock().unwrap().clone())
    }
    async fn claim(&self, ns: &str, name: &str) -> Result<Option<PersistentVolumeClaim>> {
        Ok(self.claims.lock().unwrap().get(&format!("{ns}/{name}")).cloned())
    }
    async fn persistent_volume(&self, name: &str) -> Result<Option<PersistentVolume>> {
        Ok(self.volumes.lock().unwrap().get(name).cloned())
    }
}

fn fake() -> Fake {
    let cm: ConfigMap = serde_yaml::from_str("{metadata: {name: cfg}, data: {a: '1', b: two}}").unwrap();
    let s: Secret = serde_yaml::from_str("{metadata: {name: sec}, data: {pw: aHVudGVyMg==}}").unwrap();
    Fake {
        cms: Mutex::new([("cfg".into(), cm)].into()),
        secrets: [("sec".into(), s)].into(),
        ..Default::default()
    }
}

fn pod(y: &str) -> Pod {
    serde_yaml::from_str(y).unwrap()
}

#[tokio::test]
async fn env_from_everywhere() {
    let p = pod(
        "{metadata: {name: web, namespace: ns, labels: {app: x}}, status: {podIP: 10.0.0.9}, spec: {containers: [{name: c, envFrom: [{configMapRef: {name: cfg}, prefix: P_}], env: [{name: A, value: a}, {name: B, value: '$(A)-$(P_a)'}, {name: PW, valueFrom: {secretKeyRef: {name: sec, key: pw}}}, {name: N, valueFrom: {fieldRef: {fieldPath: metadata.name}}}, {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}, {name: L, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['app']\"}}}]}]}}",
    );
    let c = &p.spec.as_ref().unwrap().containers[0];
    let env = env(&p, c, &fake()).await.unwrap();
    let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(get("P_a"), Some("1"));
    assert_eq!(get("B"), Some("a-1"));
    assert_eq!(get("PW"), Some("hunter2"));
    assert_eq!(get("N"), Some("web"));
    assert_eq!(get("IP"), Some("10.0.0.9"));
    assert_eq!(get("L"), Some("x"));
}

#[tokio::test]
async fn missing_key_is_a_config_error() {
    let p = pod(
        "{metadata: {namespace: ns}, spec: {containers: [{name: c, env: [{name: X, valueFrom: {configMapKeyRef: {name: cfg, key: nope}}}]}]}}",
    );
    let c = &p.spec.as_ref().unwrap().containers[0];
    let err = env(&p, c, &fake()).await.unwrap_err();
    assert_eq!(err.to_string(), "couldn't find key nope in ConfigMap ns/cfg");
}

#[tokio::test]
async fn config_map_volume_updates_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let p = pod(
        "{metadata: {namespace: ns}, spec: {containers: [], volumes: [{name: v, configMap: {name: cfg, defaultMode: 0600}}, {name: s, secret: {secretName: sec, items: [{key: pw, path: sub/password}]}}, {name: e, emptyDir: {}}]}}",
    );
    let f = fake();
    let vols = prepare(&p, dir.path(), &f).await.unwrap();
    let v = &vols["v"].path;
    assert_eq!(std::fs::read_to_string(v.join("a")).unwrap(), "1");
    assert_eq!(std::fs::metadata(v.join("b")).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(vols["s"].path.join("sub/password")).unwrap(), "hunter2");
    assert!(vols["e"].path.is_dir());
    let first = std::fs::read_link(v.join("..data")).unwrap();
    // Unchanged: nothing rewritten.
    prepare(&p, dir.path(), &f).await.unwrap();
    assert_eq!(std::fs::read_link(v.join("..data")).unwrap(), first);
    // Changed: new content, key removed, old directory gone.
    f.cms.lock().unwrap().get_mut("cfg").unwrap().data = [("a".to_string(), "9".to_string())].into();
    prepare(&p, dir.path(), &f).await.unwrap();
    assert_eq!(std::fs::read_to_string(v.join("a")).unwrap(), "9");
    assert!(!v.join("b").exists());
    assert!(!v.join(&first).exists());
}

#[tokio::test]
async fn missing_config_map_unless_optional() {
    let dir = tempfile::tempdir().unwrap();
    let p = pod("{spec: {containers: [], volumes: [{name: v, configMap: {name: nope}}]}}");
    assert_eq!(
        prepare(&p, dir.path(), &fake()).await.unwrap_err().to_string(),
        "configmap \"nope\" not found"
    );
    let p = pod("{spec: {containers: [], volumes: [{name: v, configMap: {name: nope, optional: true}}]}}");
    prepare(&p, dir.path(), &fake()).await.unwrap();
}

/// The volume the api-server's ServiceAccount admission adds.
const KUBE_API_ACCESS: &str = "{name: kube-api-access-x2b4c, projected: {defaultMode: 420, sources: [\
    {serviceAccountToken: {expirationSeconds: 3607, path: token}}, \
    {configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}}, \
    {downwardAPI: {items: [{path: namespace, fieldRef: {apiVersion: v1, fieldPath: metadata.namespace}}]}}]}}";

#[tokio::test]
async fn kube_api_access_has_a_bound_token_the_ca_and_the_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let p = pod(&format!(
        "{{metadata: {{name: web, namespace: ns, uid: u-1}}, spec: {{serviceAccountName: builder, containers: [], volumes: [{KUBE_API_ACCESS}]}}}}"
    ));
    let f = fake();
    let ca: ConfigMap =
        serde_yaml::from_str("{metadata: {name: kube-root-ca.crt}, data: {ca.crt: PEM}}").unwrap();
    f.cms.lock().unwrap().insert("kube-root-ca.crt".into(), ca);
    *f.token.lock().unwrap() = "jwt-1".into();
    let vols = prepare(&p, dir.path(), &f).await.unwrap();
    let v = &vols["kube-api-access-x2b4c"].path;
    assert_eq!(std::fs::read_to_string(v.join("token")).unwrap(), "jwt-1");
    assert_eq!(std::fs::read_to_string(v.join("ca.crt")).unwrap(), "PEM");
    assert_eq!(std::fs::read_to_string(v.join("namespace")).unwrap(), "ns");
    assert_eq!(std::fs::metadata(v.join("token")).unwrap().permissions().mode() & 0o777, 0o644);
    let (ns, account, req) = f.tokens.lock().unwrap()[0].clone();
    assert_eq!((ns.as_str(), account.as_str()), ("ns", "builder"));
    let expected: TokenRequest = serde_yaml::from_str(
        "{apiVersion: authentication.k8s.io/v1, kind: TokenRequest, spec: {expirationSeconds: 3607, \
         boundObjectRef: {kind: Pod, apiVersion: v1, name: web, uid: u-1}}}",
    )
    .unwrap();
    assert_eq!(req, expected);
    // A renewed token replaces the file atomically.
    let first = std::fs::read_link(v.join("..data")).unwrap();
    *f.token.lock().unwrap() = "jwt-2".into();
    prepare(&p, dir.path(), &f).await.unwrap();
    assert_eq!(std::fs::read_to_string(v.join("token")).unwrap(), "jwt-2");
    assert_ne!(std::fs::read_link(v.join("..data")).unwrap(), first);
    // Without the CA ConfigMap the volume cannot be made (as in Kubernetes).
    f.cms.lock().unwrap().remove("kube-root-ca.crt");
    let e = prepare(&p, dir.path(), &f).await.unwrap_err();
    assert_eq!(e.to_string(), "configmap \"kube-root-ca.crt\" not found");
}

#[test]
fn token_requests_ask_the_projections_audience_and_lifetime() {
    let p = pod("{metadata: {name: web, uid: u}, spec: {containers: []}}");
    let t: ServiceAccountTokenProjection = serde_yaml::from_str("{path: t, audience: vault}").unwrap();
    let spec = token_request(&p, &t).spec.unwrap();
    assert_eq!((spec.audiences, spec.expiration_seconds), (vec!["vault".to_string()], Some(3600)));
    assert_eq!(service_account_of(&p), "default");
}

#[tokio::test]
async fn the_kubernetes_service_is_in_every_environment() {
    let svc: Service = serde_yaml::from_str(
        "{metadata: {name: kubernetes, namespace: default}, spec: {clusterIP: 10.96.0.1, ports: [{name: https, port: 443, protocol: TCP, targetPort: 6443}]}}",
    )
    .unwrap();
    let expected = [
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
        ("KUBERNETES_SERVICE_PORT", "443"),
        ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
        ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
        ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
        ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
        ("KUBERNETES_PORT_443_TCP_PORT", "443"),
        ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    assert_eq!(service_env(&svc), expected);
    let mut f = fake();
    f.services.insert("default/kubernetes".into(), svc);
    let p = pod(
        "{metadata: {namespace: ns}, spec: {containers: [{name: c, env: [{name: API, value: 'https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)'}, {name: KUBERNETES_SERVICE_PORT, value: '8443'}]}]}}",
    );
    let env = env(&p, &p.spec.as_ref().unwrap().containers[0], &f).await.unwrap();
    let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(get("API"), Some("https://10.96.0.1:443"));
    assert_eq!(get("KUBERNETES_SERVICE_PORT"), Some("8443"), "the container's own value wins");
    assert_eq!(get("KUBERNETES_PORT_443_TCP_ADDR"), Some("10.96.0.1"));
    assert_eq!(env.iter().filter(|(k, _)| k == "KUBERNETES_SERVICE_PORT").count(), 1);
    // Headless or missing: nothing.
    let headless: Service =
        serde_yaml::from_str("{metadata: {name: h}, spec: {clusterIP: None, ports: [{port: 1}]}}").unwrap();
    assert!(service_env(&headless).is_empty());
    let env = super::env(&p, &p.spec.as_ref().unwrap().containers[0], &fake()).await.unwrap();
    assert!(env.iter().all(|(k, _)| !k.starts_with("KUBERNETES_PORT")));
}

fn host(path: &Path, read_only: bool) -> HostVolume {
    HostVolume { path: path.to_path_buf(), read_only }
}

#[test]
fn sub_paths_stay_inside() {
    let c: Container =
        serde_yaml::from_str("{name: c, volumeMounts: [{name: v, mountPath: /x, subPath: ../etc}]}").unwrap();
    let vols = [("v".to_string(), host(Path::new("/tmp/v"), false))].into();
    assert!(mounts(&c, &vols, &[]).is_err());
    // Nor through a symbolic link made inside the volume.
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("vol");
    std::fs::create_dir(&root).unwrap();
    std::os::unix::fs::symlink(t.path(), root.join("escape")).unwrap();
    let c: Container =
        serde_yaml::from_str("{name: c, volumeMounts: [{name: v, mountPath: /x, subPath: escape}]}").unwrap();
    let vols = [("v".to_string(), host(&root, false))].into();
    assert!(mounts(&c, &vols, &[]).unwrap_err().to_string().contains("not within volume path"));
}

#[test]
fn sub_path_exprs_and_read_only_volumes() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().canonicalize().unwrap();
    let c: Container = serde_yaml::from_str(
        "{name: c, volumeMounts: [{name: data, mountPath: /data, subPathExpr: 'logs/$(POD_NAME)'}, \
         {name: data, mountPath: /all, readOnly: true}, {name: ro, mountPath: /ro, subPath: sub}]}",
    )
    .unwrap();
    let vols = [("data".to_string(), host(&root, false)), ("ro".to_string(), host(&root, true))].into();
    let env = vec![("POD_NAME".to_string(), "web-0".to_string())];
    let m = mounts(&c, &vols, &env).unwrap();
    assert_eq!(m[0].host_path, root.join("logs/web-0").display().to_string());
    assert!(root.join("logs/web-0").is_dir(), "a missing sub path is made");
    assert!(!m[0].read_only);
    assert!(m[1].read_only, "the mount's readOnly");
    assert!(m[2].read_only, "the volume's readOnly");
    assert_eq!(m[2].host_path, root.join("sub").display().to_string());
}

fn bound_claim(f: &Fake, name: &str, volume_yaml: &str) {
    let claim: PersistentVolumeClaim = serde_yaml::from_str(&format!(
        "{{metadata: {{name: {name}, namespace: ns, uid: uid-{name}}}, spec: {{volumeName: pv-{name}}}, status: {{phase: Bound}}}}"
    ))
    .unwrap();
    let pv: PersistentVolume = serde_yaml::from_str(&format!(
        "{{metadata: {{name: pv-{name}}}, spec: {{{volume_yaml}, claimRef: {{namespace: ns, name: {name}, uid: uid-{name}}}}}}}"
    ))
    .unwrap();
    f.claims.lock().unwrap().insert(format!("ns/{name}"), claim);
    f.volumes.lock().unwrap().insert(format!("pv-{name}"), pv);
}

#[tokio::test]
async fn claims_wait_until_bound_then_mount_their_volumes() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().canonicalize().unwrap();
    let p = pod(&format!(
        "{{metadata: {{name: web, namespace: ns, uid: u}}, spec: {{securityContext: {{fsGroup: {}}}, containers: [], volumes: [\
         {{name: data, persistentVolumeClaim: {{claimName: data}}}}, {{name: logs, persistentVolumeClaim: {{claimName: logs, readOnly: true}}}}, \
         {{name: e, emptyDir: {{}}}}]}}}}",
        std::fs::metadata(t.path()).unwrap().gid()
    ));
    let f = fake();
    let pod_dir = base.join("pod");
    // Neither claim exists yet, then one is pending.
    let e = prepare(&p, &pod_dir, &f).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "unmounted volumes=[data logs], unattached volumes=[], failed to process volumes=[data logs]: \
         error processing PVC ns/data: failed to fetch PVC from API server: persistentvolumeclaims \"data\" not found; \
         error processing PVC ns/logs: failed to fetch PVC from API server: persistentvolumeclaims \"logs\" not found"
    );
    let data_dir = base.join("disks/data");
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::write(data_dir.join("f"), "x").unwrap();
    std::fs::set_permissions(data_dir.join("f"), std::fs::Permissions::from_mode(0o600)).unwrap();
    bound_claim(&f, "data", &format!("hostPath: {{path: {}, type: DirectoryOrCreate}}", data_dir.display()));
    bound_claim(&f, "logs", &format!("local: {{path: {}}}", base.join("disks/logs").display()));
    f.claims.lock().unwrap().get_mut("ns/logs").unwrap().status.as_mut().unwrap().phase = "Pending".into();
    let VolumeError::Unmounted(u) = prepare(&p, &pod_dir, &f).await.unwrap_err() else { panic!("unmounted") };
    assert_eq!(
        u.events(),
        [
            "Unable to attach or mount volumes: unmounted volumes=[logs], unattached volumes=[], failed to process \
          volumes=[logs]: error processing PVC ns/logs: PVC is not bound"
        ]
    );
    // The volume that could be set up was, fsGroup and all (once for the pod).
    assert_eq!(std::fs::metadata(data_dir.join("f")).unwrap().permissions().mode() & 0o777, 0o660);
    // Bound, but the local path is missing: a set-up failure.
    f.claims.lock().unwrap().get_mut("ns/logs").unwrap().status.as_mut().unwrap().phase = "Bound".into();
    let VolumeError::Unmounted(u) = prepare(&p, &pod_dir, &f).await.unwrap_err() else { panic!("unmounted") };
    assert_eq!(
        u.events(),
        [format!(
            "MountVolume.NewMounter initialization failed for volume \"pv-logs\" : path {:?} does not exist",
            base.join("disks/logs").display().to_string()
        )]
    );
    assert_eq!(
        u.message(),
        "unmounted volumes=[logs], unattached volumes=[], failed to process volumes=[]: timed out waiting for the condition"
    );
    std::fs::create_dir_all(base.join("disks/logs")).unwrap();
    let vols = prepare(&p, &pod_dir, &f).await.unwrap();
    assert_eq!(vols["data"], host(&data_dir, false));
    assert_eq!(vols["logs"], host(&base.join("disks/logs"), true));
    assert!(vols["e"].path.starts_with(&pod_dir));
    // fsGroup on the writable volume, not on the read-only one.
    assert_eq!(std::fs::metadata(data_dir.join("f")).unwrap().permissions().mode() & 0o777, 0o660);
    assert_eq!(std::fs::metadata(&data_dir).unwrap().permissions().mode() & 0o2000, 0o2000);
    assert_eq!(std::fs::metadata(base.join("disks/logs")).unwrap().permissions().mode() & 0o2000, 0);
    // Cleanup removes the pod's directory, not the volumes' data.
    cleanup(&pod_dir).unwrap();
    assert!(!pod_dir.exists());
    assert!(data_dir.join("f").exists());
}
