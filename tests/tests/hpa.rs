//! HorizontalPodAutoscalers against a real etcd + api-server + controller-manager, no kubelets (so no
//! metrics): validation with Kubernetes' messages, autoscaling/v2 defaults, autoscaling/v1 served by
//! conversion (create as v1, read as v2 and back), `kubectl autoscale` and `kubectl get hpa`'s columns,
//! and the controller: raising a target below minReplicas without metrics, ScalingActive False with
//! FailedGetResourceMetric, ScalingDisabled at 0 replicas, convergence after a kill -9.

use std::time::Duration;

use navarch_api::v1::{Deployment, HorizontalPodAutoscaler};
use navarch_client::{Api, ListParams};
use navarch_tests::{Daemon, Kubectl, TestEnv, eventually};
use serde_json::{Value, json};

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_yaml::from_str(&format!(
        "{{metadata: {{name: {name}}}, spec: {{replicas: {replicas}, selector: {{matchLabels: {{app: {name}}}}}, template: {{metadata: {{labels: {{app: {name}}}}}, spec: {{containers: [{{name: c, image: busybox:1.36, resources: {{requests: {{cpu: 100m}}}}}}]}}}}}}}}"
    ))
    .unwrap()
}

fn condition<'a>(
    h: &'a HorizontalPodAutoscaler,
    ty: &str,
) -> Option<&'a navarch_api::v1::HorizontalPodAutoscalerCondition> {
    h.status.as_ref()?.conditions.iter().find(|c| c.r#type == ty)
}

async fn replicas_of(deployments: &Api<Deployment>, name: &str, want: i32) {
    eventually(format!("{name} at {want} replicas"), Duration::from_secs(30), async || {
        let d = deployments.get(name).await.unwrap();
        let got = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        if got == want { Ok(()) } else { Err(format!("{got}")) }
    })
    .await
}

async fn events_of(env: &TestEnv, name: &str) -> Vec<(String, String)> {
    let client = env.client().await;
    let l = client
        .list(
            "Event",
            &ListParams {
                namespace: "default".into(),
                field_selector: format!("involvedObject.name={name}"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    l.items
        .into_iter()
        .filter_map(|o| match o {
            navarch_api::Object::Event(e) => Some((e.reason, e.message)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn validation_defaults_and_both_versions() {
    let env = TestEnv::start().await;
    let rest = env.rest();
    // Validation, in Kubernetes' words.
    let bad = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "bad"},
        "spec": {"scaleTargetRef": {"name": "web"}, "minReplicas": 3, "maxReplicas": 2}});
    let (code, body) = rest
        .json(
            "POST",
            "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers",
            "application/json",
            Some(&bad),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message
            .contains("spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"),
        "{message}"
    );
    assert!(message.contains("spec.scaleTargetRef.kind: Required value"), "{message}");

    // Created as v1: stored as v2 with the cpu metric and the defaults.
    let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5,
                 "targetCPUUtilizationPercentage": 50}});
    let (code, created) = rest
        .json(
            "POST",
            "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
            "application/json",
            Some(&v1),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["apiVersion"], "autoscaling/v1");
    assert_eq!(created["spec"]["targetCPUUtilizationPercentage"], 50);
    assert_eq!(created["spec"]["minReplicas"], 1);
    let (code, v2) = rest
        .json("GET", "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web", "", None)
        .await;
    assert_eq!(code, 200);
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}])
    );
    assert!(v2["spec"].get("behavior").is_none(), "an unset behavior stays unset: {v2}");
    let (_, list) =
        rest.json("GET", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers", "", None).await;
    assert_eq!(list["kind"], "HorizontalPodAutoscalerList");
    assert_eq!(list["apiVersion"], "autoscaling/v1");
    assert_eq!(list["items"][0]["spec"]["targetCPUUtilizationPercentage"], 50);

    // A behavior given in part gets Kubernetes' rules for the rest.
    let with_behavior = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "b"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5,
                 "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}});
    let (code, b) = rest
        .json(
            "POST",
            "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers",
            "application/json",
            Some(&with_behavior),
        )
        .await;
    assert_eq!(code, 201, "{b}");
    assert_eq!(b["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 80);
    assert_eq!(
        b["spec"]["behavior"]["scaleUp"],
        json!({"selectPolicy": "Max", "stabilizationWindowSeconds": 0, "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]})
    );
    assert_eq!(
        b["spec"]["behavior"]["scaleDown"]["policies"],
        json!([{"type": "Percent", "value": 100, "periodSeconds": 15}])
    );

    // Discovery: both versions, v2 preferred.
    let (_, group) = rest.json("GET", "/apis/autoscaling", "", None).await;
    assert_eq!(group["preferredVersion"]["version"], "v2");
    let versions: Vec<&str> =
        group["versions"].as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["v2", "v1"]);

    // kubectl autoscale, and get hpa's columns.
    let deployments: Api<Deployment> = env.client().await.api("default");
    deployments.create(&deployment("api", 1)).await.unwrap();
    let k = Kubectl::new(&env.api_server);
    let out = k.ok(&["autoscale", "deployment", "api", "--cpu-percent=50", "--min=1", "--max=5"]).await;
    assert_eq!(out.trim(), "horizontalpodautoscaler.autoscaling/api autoscaled");
    let table = k.ok(&["get", "hpa", "api"]).await;
    let lines: Vec<&str> = table.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]);
    assert!(lines[1].starts_with("api"), "{table}");
    assert!(lines[1].contains("Deployment/api") && lines[1].contains("cpu: <unknown>/50%"), "{table}");
    let v2: Value = serde_json::from_str(&k.ok(&["get", "hpa", "api", "-o", "json"]).await).unwrap();
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"]["scaleTargetRef"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"})
    );

    let described = k.ok(&["describe", "hpa", "api"]).await;
    assert!(described.contains("Reference:") && described.contains("Deployment/api"), "{described}");
    let (code, described, _) = env.navctl(&["describe", "hpa", "api"]).await;
    assert_eq!(code, 0);
    assert!(
        described.contains("resource cpu on pods  (as a percentage of request):  <unknown> / 50%"),
        "{described}"
    );

    // navctl autoscale, kubectl's flags and words.
    let (code, out, err) = env.navctl(&["autoscale", "deployment/api", "--max=3", "--name=api2"]).await;
    assert_eq!((code, out.trim()), (0, "horizontalpodautoscaler.autoscaling/api2 autoscaled"), "{err}");
    let (_, h) = rest
        .json("GET", "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/api2", "", None)
        .await;
    assert_eq!(h["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 80, "{h}");
    assert_eq!(h["spec"]["minReplicas"], 1);
}

#[tokio::test]
async fn controller_without_metrics() {
    let env = TestEnv::start().await;
    let client = env.client().await;
    let deployments: Api<Deployment> = client.api("default");
    let hpas: Api<HorizontalPodAutoscaler> = client.api("default");
    let mut cm = Daemon::start(&env, "controller-manager", "controller-manager", &[]);
    deployments.create(&deployment("web", 1)).await.unwrap();
    deployments.create(&deployment("off", 0)).await.unwrap();
    let hpa = |name: &str, min: i32| -> HorizontalPodAutoscaler {
        serde_yaml::from_str(&format!(
            "{{metadata: {{name: {name}}}, spec: {{scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}, minReplicas: {min}, maxReplicas: 5, metrics: [{{type: Resource, resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 50}}}}}}]}}}}"
        ))
        .unwrap()
    };
    hpas.create(&hpa("web", 2)).await.unwrap();
    hpas.create(&hpa("off", 1)).await.unwrap();

    // Below minReplicas: raised to it, metrics or not.
    replicas_of(&deployments, "web", 2).await;
    let events = eventually("SuccessfulRescale", Duration::from_secs(30), async || {
        let e = events_of(&env, "web").await;
        if e.iter().any(|(r, _)| r == "SuccessfulRescale") { Ok(e) } else { Err(format!("{e:?}")) }
    })
    .await;
    assert!(
        events.contains(&(
            "SuccessfulRescale".into(),
            "New size: 2; reason: Current number of replicas below Spec.MinReplicas".into()
        )),
        "{events:?}"
    );
    // Then no metrics: ScalingActive False, FailedGetResourceMetric (the next sync, within 15 s).
    let h = eventually("ScalingActive False", Duration::from_secs(40), async || {
        let h = hpas.get("web").await.unwrap();
        match condition(&h, "ScalingActive") {
            Some(c) if c.status == "False" => Ok(h),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let active = condition(&h, "ScalingActive").unwrap();
    assert_eq!(active.reason, "FailedGetResourceMetric");
    assert!(
        active
            .message
            .starts_with("the HPA was unable to compute the replica count: failed to get cpu utilization: "),
        "{active:?}"
    );
    assert_eq!(condition(&h, "AbleToScale").unwrap().reason, "SucceededGetScale");
    let e = events_of(&env, "web").await;
    assert!(e.iter().any(|(r, _)| r == "FailedGetResourceMetric"), "{e:?}");
    assert!(
        e.iter().any(|(r, m)| r == "FailedComputeMetricsReplicas"
            && m.starts_with("invalid metrics (1 invalid out of 1), first error is: ")),
        "{e:?}"
    );

    // A target at 0 replicas: scaling disabled.
    let off = eventually("ScalingDisabled", Duration::from_secs(30), async || {
        let h = hpas.get("off").await.unwrap();
        match condition(&h, "ScalingActive") {
            Some(c) if c.reason == "ScalingDisabled" => Ok(h),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(
        condition(&off, "ScalingActive").unwrap().message,
        "scaling is disabled since the replica count of the target is zero"
    );
    replicas_of(&deployments, "off", 0).await;

    // kill -9 of the controller-manager; the target drops below min meanwhile; a new one converges.
    cm.kill9();
    let mut d = deployments.get("web").await.unwrap();
    d.spec.as_mut().unwrap().replicas = Some(1);
    deployments.update(&d).await.unwrap();
    let _cm = Daemon::start(&env, "controller-manager", "controller-manager", &[]);
    replicas_of(&deployments, "web", 2).await;
}
