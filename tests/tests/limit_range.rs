//! LimitRange through the real kubectl (1.32) against a real etcd + api-server: the LimitRanger
//! admission fills a pod's missing limits and requests from the namespace's LimitRange (visible in the
//! stored pod, with the `kubernetes.io/limit-ranger` annotation) right after the LimitRange is created,
//! refuses a container above its max, a pod whose containers sum above the Pod max, and claims outside
//! the storage bounds, with Kubernetes' messages; `kubectl get limits` and `describe` (kubectl's and
//! navctl's); a LimitRange that contradicts itself is refused as Kubernetes refuses it.

use navarch_tests::{Kubectl, TestEnv};

const LIMITS: &str = r#"apiVersion: v1
kind: LimitRange
metadata: {name: limits, namespace: default}
spec:
  limits:
  - type: Container
    max: {cpu: "1", memory: 1Gi}
    min: {cpu: 50m}
    default: {cpu: 500m, memory: 512Mi}
    defaultRequest: {cpu: 100m, memory: 256Mi}
    maxLimitRequestRatio: {cpu: "10"}
  - type: Pod
    max: {memory: 1536Mi}
  - type: PersistentVolumeClaim
    min: {storage: 1Gi}
    max: {storage: 10Gi}
"#;

fn pod(name: &str, containers: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  containers:\n{containers}"
    )
}

fn claim(name: &str, size: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  storageClassName: \"\"\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: {size}}}}}\n"
    )
}

#[tokio::test]
async fn limit_ranges_through_kubectl() {
    let env = TestEnv::start().await;
    let k = Kubectl::new(&env.api_server);
    let out = k.apply(LIMITS, &[]).await;
    assert_eq!(out.stdout.trim(), "limitrange/limits created", "{out:?}");

    // Right away (the api-server's store may not have it yet): defaults fill the bare container and
    // the memory the other one lacks.
    let out = k
        .apply(
            &pod(
                "web",
                "  - {name: app, image: nginx}\n  - {name: side, image: busybox, resources: {limits: {cpu: 200m}}}\n",
            ),
            &[],
        )
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let web = k.json(&["get", "pod", "web"]).await;
    let app = &web["spec"]["containers"][0]["resources"];
    assert_eq!(app["limits"], serde_json::json!({"cpu": "500m", "memory": "512Mi"}), "{web}");
    assert_eq!(app["requests"], serde_json::json!({"cpu": "100m", "memory": "256Mi"}), "{web}");
    // The request of cpu follows the given limit (pod defaulting, before LimitRanger).
    let side = &web["spec"]["containers"][1]["resources"];
    assert_eq!(side["limits"], serde_json::json!({"cpu": "200m", "memory": "512Mi"}), "{web}");
    assert_eq!(side["requests"], serde_json::json!({"cpu": "200m", "memory": "256Mi"}), "{web}");
    assert_eq!(
        web["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app; \
         memory request for container side; memory limit for container side"
    );
    assert_eq!(web["status"]["qosClass"], "Burstable");

    // Above the Container max, above the ratio, above the Pod max.
    let out = k
        .apply(
            &pod(
                "big",
                "  - {name: app, image: nginx, resources: {limits: {cpu: '2'}, requests: {cpu: '1'}}}\n",
            ),
            &[],
        )
        .await;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains(
            r#"Error from server (Forbidden): error when creating "STDIN": pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2"#
        ),
        "{out:?}"
    );
    let out = k
        .apply(
            &pod(
                "spiky",
                "  - {name: app, image: nginx, resources: {limits: {cpu: '1'}, requests: {cpu: 50m}}}\n",
            ),
            &[],
        )
        .await;
    assert!(
        out.stderr.contains(r#"pods "spiky" is forbidden: cpu max limit to request ratio per Container is 10, but provided ratio is 20.000000"#),
        "{out:?}"
    );
    let three = "  - {name: a, image: x}\n  - {name: b, image: x}\n  - {name: c, image: x, resources: {limits: {memory: 1Gi}}}\n";
    let out = k.apply(&pod("fat", three), &[]).await;
    assert!(
        out.stderr
            .contains(r#"pods "fat" is forbidden: maximum memory usage per Pod is 1536Mi, but limit is 2Gi"#),
        "{out:?}"
    );
    assert!(k.fails(&["get", "pod", "big"]).await.stderr.contains("NotFound"));

    // Claims: min and max of the requested storage, on create and on update.
    let out = k.apply(&claim("small", "500Mi"), &[]).await;
    assert!(
        out.stderr.contains(r#"persistentvolumeclaims "small" is forbidden: minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"#),
        "{out:?}"
    );
    let out = k.apply(&claim("huge", "20Gi"), &[]).await;
    assert!(
        out.stderr.contains(r#"persistentvolumeclaims "huge" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"#),
        "{out:?}"
    );
    let out = k.apply(&claim("fine", "5Gi"), &[]).await;
    assert_eq!(out.code, 0, "{out:?}");

    // kubectl's columns and description.
    let get = k.ok(&["get", "limits"]).await;
    let lines: Vec<&str> = get.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("CREATED AT"), "{get}");
    assert!(lines[1].starts_with("limits ") && lines[1].trim_end().ends_with('Z'), "{get}");
    let described = k.ok(&["describe", "limitrange", "limits"]).await;
    for line in [
        "Type                   Resource  Min  Max     Default Request  Default Limit  Max Limit/Request Ratio",
        "Container              cpu       50m  1       100m             500m           10",
        "Pod                    memory    -    1536Mi  -                -              -",
        "PersistentVolumeClaim  storage   1Gi  10Gi    -                -              -",
    ] {
        assert!(described.contains(line), "{line:?} in\n{described}");
    }
    let (code, navctl, stderr) = env.navctl(&["describe", "limits", "limits"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        navctl.contains("Container              memory    -    1Gi     256Mi            512Mi          -"),
        "{navctl}"
    );

    // A LimitRange that contradicts itself.
    let bad = "apiVersion: v1\nkind: LimitRange\nmetadata: {name: bad, namespace: default}\nspec:\n  limits:\n  - type: Pod\n    min: {cpu: '2'}\n    max: {cpu: '1'}\n";
    let out = k.apply(bad, &[]).await;
    assert!(
        out.stderr.contains(r#"The LimitRange "bad" is invalid: spec.limits[0].min[cpu]: Invalid value: resource.Quantity{i:resource.int64Amount{value:2, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:"2", Format:"DecimalSI"}: min value 2 is greater than max value 1"#),
        "{out:?}"
    );
}
