//! Server-side apply and managedFields over the REST API, request by request, against a real etcd +
//! api-server: Kubernetes' errors (no field manager, another kind, managedFields in a configuration, `force`
//! on other patches), 201 then 200 without a write, the 409 `Status` of a conflict and `force`, dry runs,
//! the status subresource, the manager of every write (`fieldManager`, the User-Agent's product, gRPC's
//! user-agent), and managedFields sent in a body (replaced, reset).

use navarch_tests::{Rest, TestEnv};
use serde_json::{Value, json};

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const APPLY: &str = "application/apply-patch+yaml";

/// One request, off the test's runtime.
async fn call(
    rest: &Rest,
    method: &str,
    path: &str,
    content_type: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
    let mut headers = vec![("User-Agent", "rest-test/1.0 (linux/amd64)")];
    if !content_type.is_empty() {
        headers.push(("Content-Type", content_type));
    }
    let resp = rest.request_async(method, path, &headers, bytes).await;
    let v = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
    (resp.status, v)
}

fn deployment(replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}
    })
}

/// `manager:Operation[/subresource]` of each managedFields entry, sorted.
fn managers(obj: &Value) -> Vec<String> {
    let mut m: Vec<String> = obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    let sub = e["subresource"].as_str().map(|s| format!("/{s}")).unwrap_or_default();
                    format!("{}:{}{sub}", e["manager"].as_str().unwrap(), e["operation"].as_str().unwrap())
                })
                .collect()
        })
        .unwrap_or_default();
    m.sort();
    m
}

#[tokio::test]
async fn apply_errors_are_kubernetes_errors() {
    let env = TestEnv::start().await;
    let rest = env.rest();
    let a = &rest;
    let web = format!("{DEPLOYMENTS}/web");
    let (code, s) = call(a, "PATCH", &web, APPLY, Some(deployment(1))).await;
    assert_eq!(code, 422, "{s}");
    assert_eq!(s["reason"], "Invalid");
    assert_eq!(
        s["message"],
        r#"PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch"#
    );
    assert_eq!(
        s["details"]["causes"][0],
        json!({"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"})
    );

    let apply = format!("{web}?fieldManager=test");
    let mut other = deployment(1);
    other["apiVersion"] = json!("apps/v2");
    let (code, s) = call(a, "PATCH", &apply, APPLY, Some(other)).await;
    assert_eq!(
        (code, s["message"].as_str().unwrap()),
        (400, "invalid object type: apps/v2, Kind=Deployment")
    );
    let mut with_mf = deployment(1);
    with_mf["metadata"]["managedFields"] = json!([]);
    let (code, s) = call(a, "PATCH", &apply, APPLY, Some(with_mf)).await;
    assert_eq!((code, s["message"].as_str().unwrap()), (400, "metadata.managedFields must be nil"));
    let (code, s) =
        call(a, "PATCH", &format!("{DEPLOYMENTS}/other?fieldManager=test"), APPLY, Some(deployment(1))).await;
    assert_eq!(code, 400, "{s}");
    assert_eq!(s["message"], "the name of the object (web) does not match the name on the URL (other)");
    let mut unknown = deployment(1);
    unknown["spec"]["replicass"] = json!(1);
    let (code, s) = call(a, "PATCH", &apply, APPLY, Some(unknown)).await;
    assert_eq!(code, 500, "Kubernetes answers a configuration its schema rejects with 500: {s}");
    assert_eq!(
        s["message"],
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.replicass: field not declared in schema"
    );
    let (code, s) =
        call(a, "PATCH", &format!("{web}?fieldManager={}", "m".repeat(129)), APPLY, Some(deployment(1)))
            .await;
    assert_eq!(code, 422, "{s}");
    assert!(
        s["message"].as_str().unwrap().ends_with("fieldManager: Too long: may not be more than 128 bytes"),
        "{s}"
    );
    // `force` belongs to apply patches only.
    call(a, "PATCH", &apply, APPLY, Some(deployment(1))).await;
    let (code, s) =
        call(a, "PATCH", &format!("{web}?force=true"), "application/merge-patch+json", Some(json!({}))).await;
    assert_eq!(code, 422, "{s}");
    assert_eq!(
        s["message"],
        r#"PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch"#
    );
}

#[tokio::test]
async fn apply_creates_updates_conflicts_and_forces() {
    let env = TestEnv::start().await;
    let rest = env.rest();
    let a = &rest;
    let web = format!("{DEPLOYMENTS}/web");

    // A dry run creates nothing.
    let (code, _) =
        call(a, "PATCH", &format!("{web}?fieldManager=a&dryRun=All"), APPLY, Some(deployment(1))).await;
    assert_eq!(code, 201);
    assert_eq!(call(a, "GET", &web, "", None).await.0, 404);

    let (code, created) =
        call(a, "PATCH", &format!("{web}?fieldManager=a"), APPLY, Some(deployment(1))).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(managers(&created), ["a:Apply"]);
    assert_eq!(created["metadata"]["managedFields"][0]["apiVersion"], "apps/v1");
    let rv = created["metadata"]["resourceVersion"].clone();
    let (code, again) = call(a, "PATCH", &format!("{web}?fieldManager=a"), APPLY, Some(deployment(1))).await;
    assert_eq!(code, 200);
    assert_eq!(again["metadata"]["resourceVersion"], rv, "nothing changed, nothing written");

    // Another applier sharing a value is no conflict; changing one is.
    let (code, shared) = call(a, "PATCH", &format!("{web}?fieldManager=b"), APPLY, Some(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1}
    }))).await;
    assert_eq!(code, 200, "{shared}");
    assert_eq!(managers(&shared), ["a:Apply", "b:Apply"]);
    let (code, s) = call(a, "PATCH", &format!("{web}?fieldManager=c"), APPLY, Some(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}
    }))).await;
    assert_eq!(code, 409, "{s}");
    assert_eq!(s["kind"], "Status");
    assert_eq!(s["reason"], "Conflict");
    assert_eq!(s["code"], 409);
    assert_eq!(
        s["message"],
        "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.replicas\nconflicts with \"b\":\n- .spec.replicas"
    );
    assert_eq!(
        s["details"]["causes"],
        json!([
            {"reason": "FieldManagerConflict", "message": "conflict with \"a\"", "field": ".spec.replicas"},
            {"reason": "FieldManagerConflict", "message": "conflict with \"b\"", "field": ".spec.replicas"}
        ])
    );
    let (code, forced) = call(a, "PATCH", &format!("{web}?fieldManager=c&force=true"), APPLY, Some(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}
    }))).await;
    assert_eq!(code, 200, "{forced}");
    assert_eq!(forced["spec"]["replicas"], 3);
    assert_eq!(managers(&forced), ["a:Apply", "c:Apply"], "b owned only replicas");
    assert!(forced["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"].get("f:replicas").is_none());

    // A resourceVersion in the configuration is a precondition.
    let mut stale = deployment(1);
    stale["metadata"]["resourceVersion"] = json!("1");
    let (code, s) = call(a, "PATCH", &format!("{web}?fieldManager=a"), APPLY, Some(stale)).await;
    assert_eq!((code, s["reason"].as_str().unwrap()), (409, "Conflict"), "{s}");

    // `a` drops its container port: gone from the object (nobody else owns it).
    let mut fewer = deployment(1);
    fewer["spec"]["template"]["spec"]["containers"][0].as_object_mut().unwrap().remove("ports");
    fewer["spec"].as_object_mut().unwrap().remove("replicas");
    let (code, pruned) = call(a, "PATCH", &format!("{web}?fieldManager=a"), APPLY, Some(fewer)).await;
    assert_eq!(code, 200, "{pruned}");
    assert!(pruned["spec"]["template"]["spec"]["containers"][0].get("ports").is_none(), "{pruned}");
    assert_eq!(pruned["spec"]["replicas"], 3, "c's replicas stay");

    // The status subresource: applied through /status, owned with subresource "status".
    let status = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "status": {"observedGeneration": 7}});
    let (code, st) = call(a, "PATCH", &format!("{web}/status?fieldManager=ctrl"), APPLY, Some(status)).await;
    assert_eq!(code, 200, "{st}");
    assert_eq!(st["status"]["observedGeneration"], 7);
    assert!(managers(&st).contains(&"ctrl:Apply/status".to_string()), "{st}");
}

#[tokio::test]
async fn every_write_records_its_manager() {
    let env = TestEnv::start().await;
    let rest = env.rest();
    let a = &rest;
    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let (code, created) = call(a, "POST", cms, "application/json", Some(cm)).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(managers(&created), ["rest-test:Update"], "from the User-Agent");
    assert_eq!(created["metadata"]["managedFields"][0]["fieldsV1"], json!({"f:data": {".": {}, "f:a": {}}}));

    let mut changed = created.clone();
    changed["data"]["b"] = json!("2");
    let (code, updated) =
        call(a, "PUT", &format!("{cms}/c?fieldManager=editor"), "application/json", Some(changed)).await;
    assert_eq!(code, 200, "{updated}");
    assert_eq!(managers(&updated), ["editor:Update", "rest-test:Update"]);
    let editor =
        updated["metadata"]["managedFields"].as_array().unwrap().iter().find(|e| e["manager"] == "editor");
    assert_eq!(editor.unwrap()["fieldsV1"], json!({"f:data": {"f:b": {}}}));

    // managedFields sent back as exported: replaced by a different valid list, reset by an empty one.
    let mut renamed = updated.clone();
    for e in renamed["metadata"]["managedFields"].as_array_mut().unwrap() {
        if e["manager"] == "editor" {
            e["manager"] = json!("renamed");
        }
    }
    let (_, replaced) = call(a, "PUT", &format!("{cms}/c"), "application/json", Some(renamed)).await;
    assert_eq!(managers(&replaced), ["renamed:Update", "rest-test:Update"]);
    let mut reset = replaced.clone();
    reset["metadata"]["managedFields"] = json!([]);
    let (_, emptied) = call(a, "PUT", &format!("{cms}/c"), "application/json", Some(reset)).await;
    assert!(emptied["metadata"].get("managedFields").is_none(), "{emptied}");
    // An untracked object stays so on updates, as in Kubernetes.
    let mut more = emptied.clone();
    more["data"]["c"] = json!("3");
    let (_, still) = call(a, "PUT", &format!("{cms}/c"), "application/json", Some(more)).await;
    assert!(still["metadata"].get("managedFields").is_none(), "{still}");

    // Status writes are recorded with their subresource.
    let web = format!("{DEPLOYMENTS}/web");
    call(a, "PATCH", &format!("{web}?fieldManager=a"), APPLY, Some(deployment(1))).await;
    let (code, st) = call(
        a,
        "PATCH",
        &format!("{web}/status"),
        "application/merge-patch+json",
        Some(json!({"status": {"replicas": 1}})),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    assert_eq!(managers(&st), ["a:Apply", "rest-test:Update/status"]);

    // gRPC writes: the manager is the program in the client's user-agent.
    let (code, _, err) = env.navctl(&["scale", "deployment", "web", "--replicas", "4"]).await;
    assert_eq!(code, 0, "{err}");
    let (_, scaled) = call(a, "GET", &web, "", None).await;
    let navctl =
        scaled["metadata"]["managedFields"].as_array().unwrap().iter().find(|e| e["manager"] == "navctl");
    assert_eq!(
        navctl.expect("navctl's entry")["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}}),
        "{scaled}"
    );
}
