//! Pods get their ServiceAccount's token, as in Kubernetes: the api-server's ServiceAccount admission adds
//! the projected volume `kube-api-access-*`, the controller-manager publishes `kube-root-ca.crt` in every
//! namespace, the kubelet asks the api-server for a token bound to the pod and writes
//! `/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}`; the token authenticates as
//! `system:serviceaccount:<ns>:<sa>`. Plus the `default/kubernetes` Service the containers' variables name.
//! The node tests need root (network namespaces, mounts); run by `make test`.

use std::time::Duration;

use navarch_api::Resource;
use navarch_api::v1::{ConfigMap, Endpoints, Pod, Service};
use navarch_client::{Api, Client, DeleteParams};
use navarch_tests::{
    ApiServer, Containerd, Daemon, Etcd, Kubelet, Registry, Rest, TestEnv, eventually, ready_node,
};
use serde_json::json;

const DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap()
}

/// etcd and an api-server that signs tokens and runs the ServiceAccount admission plugin, plus `extra`
/// flags.
async fn token_env(extra: &[&str]) -> TestEnv {
    let etcd = Etcd::start().await;
    let pki = etcd.pki().clone();
    let file = |f: &str| pki.path(f).display().to_string();
    let mut args = vec![
        "--disable-admission-plugins=".to_string(),
        format!("--service-account-signing-key-file={}", file("sa.key")),
        format!("--service-account-key-file={}", file("sa.pub")),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let api_server = ApiServer::start_with(&etcd, &args).await;
    TestEnv { api_server, etcd }
}

fn controller_manager(env: &TestEnv, extra: &[&str]) -> Daemon {
    let mut args = vec!["--leader-elect=false"];
    args.extend(extra);
    Daemon::start(env, "controller-manager", "controller-manager", &args)
}

async fn logs(c: &Client, pod: &str) -> String {
    use futures::StreamExt;
    let req = navarch_api::kubelet_proto::LogsRequest {
        namespace: "default".into(),
        name: pod.into(),
        container: "c".into(),
        ..Default::default()
    };
    let mut s = c.pod_logs(req).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend(chunk.unwrap());
    }
    String::from_utf8_lossy(&out).into()
}

/// The value after `key=` on a line of `text`.
fn value<'a>(text: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {key}= in {text}"))
}

/// Waits until the pod has ended and returns its phase.
async fn finished(pods: &Api<Pod>, name: &str, k: &Kubelet) -> String {
    eventually(k.with_log(&format!("{name} finished")), Duration::from_secs(90), async || {
        let phase = pods.get(name).await.ok()?.status?.phase;
        (phase == "Succeeded" || phase == "Failed").then_some(phase)
    })
    .await
}

#[tokio::test]
async fn pods_get_a_bound_token_the_ca_and_their_namespace() {
    let env = token_env(&[]).await;
    let _cm = controller_manager(&env, &[]);
    let registry = Registry::with_test_images();
    let ctd = Containerd::start().await;
    let kubelet = Kubelet::start(&env.api_server, &ctd, &registry).await;
    let c = env.client().await;
    ready_node(&c, &kubelet).await;
    let pods: Api<Pod> = c.api("default");
    let cms: Api<ConfigMap> = c.api("default");
    let ca = eventually("kube-root-ca.crt published in default", Duration::from_secs(30), async || {
        cms.get_opt("kube-root-ca.crt").await.ok()??.data.get("ca.crt").cloned()
    })
    .await;
    assert_eq!(ca.as_bytes(), env.pki().ca_pem(), "the CA of the controller-manager's kubeconfig");

    let script = format!(
        "echo ns=$(cat {DIR}/namespace); echo token=$(cat {DIR}/token); cat {DIR}/ca.crt; \
         echo host=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT; echo link=$KUBERNETES_PORT_443_TCP; \
         touch {DIR}/x 2>/dev/null || echo read-only"
    );
    let pod: Pod = from_yaml(&format!(
        "{{metadata: {{name: reader}}, spec: {{nodeName: {}, restartPolicy: Never, \
         containers: [{{name: c, image: busybox:1.36, command: [sh, -c, {script:?}]}}]}}}}",
        kubelet.node_name
    ));
    let created = pods.create(&pod).await.unwrap();
    let spec = created.spec.clone().unwrap();
    assert_eq!(spec.service_account_name, "default");
    let volume = spec.volumes.iter().find(|v| v.name.starts_with("kube-api-access-")).expect("token volume");
    let mount = &spec.containers[0].volume_mounts[0];
    assert_eq!(
        (mount.name.as_str(), mount.mount_path.as_str(), mount.read_only),
        (volume.name.as_str(), DIR, true)
    );

    assert_eq!(finished(&pods, "reader", &kubelet).await, "Succeeded");
    let out = logs(&c, "reader").await;
    assert_eq!(value(&out, "ns"), "default");
    assert!(out.contains(&ca), "ca.crt is the published CA:\n{out}");
    assert!(out.contains("read-only"), "{out}");
    let port = env.api_server_addr().port();
    assert_eq!(value(&out, "host"), "10.96.0.1:443");
    assert_eq!(value(&out, "link"), "tcp://10.96.0.1:443");
    let svc: Service = c.api("default").get("kubernetes").await.unwrap();
    let sp = &svc.spec.unwrap().ports[0];
    assert_eq!(
        (sp.name.as_str(), sp.port, sp.target_port.as_ref().and_then(|t| t.as_int())),
        ("https", 443, Some(i32::from(port)))
    );

    // The token authenticates as the pod's ServiceAccount, bound to the pod.
    let token = value(&out, "token").to_string();
    let (code, review) = env
        .rest()
        .json(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            "application/json",
            Some(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})),
        )
        .await;
    assert_eq!(code, 201, "{review}");
    assert_eq!(review["status"]["authenticated"], true, "{review}");
    assert_eq!(review["status"]["user"]["username"], "system:serviceaccount:default:default", "{review}");
    let extra = &review["status"]["user"]["extra"];
    assert_eq!(extra["authentication.kubernetes.io/pod-name"], json!(["reader"]), "{review}");
    assert_eq!(extra["authentication.kubernetes.io/pod-uid"], json!([created.meta().uid]), "{review}");
    // Presented by a client, it is that ServiceAccount (SelfSubjectReview, open to every user).
    let anonymous = Rest::new(env.api_server_addr(), env.pki().rustls_config(None, &[b"http/1.1"]));
    let bearer = format!("Bearer {token}");
    let body =
        serde_json::to_vec(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}))
            .unwrap();
    let resp = anonymous
        .request_async(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            &[("Authorization", &bearer), ("Content-Type", "application/json")],
            Some(body),
        )
        .await;
    let who: serde_json::Value = serde_json::from_str(&resp.body).unwrap_or_default();
    assert_eq!(
        who["status"]["userInfo"]["username"], "system:serviceaccount:default:default",
        "{}",
        resp.body
    );

    // automountServiceAccountToken: false mounts nothing.
    let quiet: Pod = from_yaml(&format!(
        "{{metadata: {{name: quiet}}, spec: {{nodeName: {}, restartPolicy: Never, automountServiceAccountToken: false, \
         containers: [{{name: c, image: busybox:1.36, command: [sh, -c, 'ls {DIR} 2>&1; echo done']}}]}}}}",
        kubelet.node_name
    ));
    let created = pods.create(&quiet).await.unwrap();
    let spec = created.spec.unwrap();
    assert!(spec.volumes.is_empty() && spec.containers[0].volume_mounts.is_empty(), "{spec:?}");
    assert_eq!(finished(&pods, "quiet", &kubelet).await, "Succeeded");
    let out = logs(&c, "quiet").await;
    assert!(out.contains("No such file or directory") && out.contains("done"), "{out}");

    // A ServiceAccount that does not exist: the pod is refused.
    let orphan: Pod = from_yaml(
        "{metadata: {name: lost}, spec: {serviceAccountName: nobody, containers: [{name: c, image: busybox:1.36}]}}",
    );
    let e = pods.create(&orphan).await.unwrap_err().to_string();
    assert!(
        e.contains("pods \"lost\" is forbidden: error looking up service account default/nobody: serviceaccount \"nobody\" not found"),
        "{e}"
    );

    for name in ["reader", "quiet"] {
        pods.delete(name, &DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
            .await
            .unwrap();
    }
    eventually(kubelet.with_log("pods gone"), Duration::from_secs(60), async || {
        pods.list(&Default::default()).await.ok()?.items.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_root_ca_is_published_in_every_namespace_and_repaired() {
    let env = token_env(&[]).await;
    let pki = env.pki().clone();
    let ca_file = pki.path("ca.crt").display().to_string();
    let _cm = controller_manager(&env, &[&format!("--root-ca-file={ca_file}")]);
    let c = env.client().await;
    let ca = String::from_utf8(std::fs::read(&ca_file).unwrap()).unwrap();
    let published = async |ns: &str| {
        let cms: Api<ConfigMap> = c.api(ns);
        eventually(format!("kube-root-ca.crt in {ns}"), Duration::from_secs(30), async || {
            let cm = cms.get_opt("kube-root-ca.crt").await.ok()??;
            (cm.data.get("ca.crt") == Some(&ca)).then_some(cm)
        })
        .await
    };
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let cm = published(ns).await;
        let description = cm.meta().annotations.get("kubernetes.io/description").cloned().unwrap_or_default();
        assert!(
            description.starts_with("Contains a CA bundle that can be used to verify the kube-apiserver")
        );
    }
    c.api::<navarch_api::v1::Namespace>("").create(&from_yaml("{metadata: {name: team-a}}")).await.unwrap();
    published("team-a").await;

    // Deleted: made again. Changed: put back, with the other fields kept.
    let cms: Api<ConfigMap> = c.api("team-a");
    cms.delete("kube-root-ca.crt", &DeleteParams::default()).await.unwrap();
    published("team-a").await;
    let mut cm = cms.get("kube-root-ca.crt").await.unwrap();
    cm.data.insert("ca.crt".into(), "forged".into());
    cm.meta_mut().labels.insert("mine".into(), "kept".into());
    cms.update(&cm).await.unwrap();
    let fixed = published("team-a").await;
    assert_eq!(fixed.meta().labels.get("mine").map(String::as_str), Some("kept"));
}

#[tokio::test]
async fn the_kubernetes_service_points_at_the_api_server() {
    let env = token_env(&["--advertise-address=192.0.2.10"]).await;
    let c = env.client().await;
    let port = env.api_server_addr().port();
    let services: Api<Service> = c.api("default");
    let svc = eventually("default/kubernetes", Duration::from_secs(20), async || {
        services.get_opt("kubernetes").await.ok()?
    })
    .await;
    let spec = svc.spec.clone().unwrap();
    assert_eq!((spec.cluster_ip.as_str(), spec.r#type.as_str()), ("10.96.0.1", "ClusterIP"));
    assert!(spec.selector.is_empty());
    assert_eq!(svc.meta().labels.get("component").map(String::as_str), Some("apiserver"));
    let endpoints: Api<Endpoints> = c.api("default");
    let ep = eventually("default/kubernetes Endpoints", Duration::from_secs(20), async || {
        endpoints.get_opt("kubernetes").await.ok()?
    })
    .await;
    assert_eq!(ep.subsets.len(), 1);
    assert_eq!(ep.subsets[0].addresses[0].ip, "192.0.2.10");
    assert_eq!(
        (ep.subsets[0].ports[0].name.as_str(), ep.subsets[0].ports[0].port),
        ("https", i32::from(port))
    );

    // A changed port is put back at the next pass (every 10 s).
    let mut changed = svc.clone();
    changed.spec.as_mut().unwrap().ports[0].port = 8443;
    services.update(&changed).await.unwrap();
    eventually("the port put back", Duration::from_secs(30), async || {
        let s = services.get("kubernetes").await.ok()?;
        (s.spec?.ports[0].port == 443).then_some(())
    })
    .await;
    // Deleted: made again, at the same address.
    services.delete("kubernetes", &DeleteParams::default()).await.unwrap();
    let again = eventually("default/kubernetes again", Duration::from_secs(30), async || {
        services.get_opt("kubernetes").await.ok()?
    })
    .await;
    assert_eq!(again.spec.unwrap().cluster_ip, "10.96.0.1");
}
