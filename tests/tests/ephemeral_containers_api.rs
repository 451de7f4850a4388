//! `pods/<name>/ephemeralcontainers` through both doors, against a real etcd + api-server. REST, request by
//! request: discovery lists it; GET is the pod; a strategic merge patch (what `kubectl debug` sends), a
//! JSON patch, a merge patch and a PUT add ephemeral containers and nothing else; changing or removing one,
//! fields an ephemeral container may not set, a target that is no container of the pod are refused with
//! Kubernetes' 422s; a plain update of the pod may not touch them. gRPC: `UpdateEphemeralContainers`, the
//! same rules.

use navarch_api::Object;
use navarch_api::proto::UpdateRequest;
use navarch_api::proto::api_server_client::ApiServerClient;
use navarch_api::v1::Pod;
use navarch_tests::{Rest, TestEnv};
use serde_json::{Value, json};

const PODS: &str = "/api/v1/namespaces/default/pods";
const EPHEMERAL: &str = "/api/v1/namespaces/default/pods/web/ephemeralcontainers";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";

fn debugger(name: &str) -> Value {
    json!({"name": name, "image": "busybox:1.36", "stdin": true, "tty": true, "targetContainerName": "web",
        "terminationMessagePolicy": "File", "resources": {}})
}

/// A patch adding `containers` to the pod's ephemeral containers, as kubectl debug sends it.
fn adding(containers: Value) -> Value {
    json!({"spec": {"ephemeralContainers": containers}})
}

/// The 422 of a refused write: its message and its one cause's field.
async fn refused(
    rest: &Rest,
    method: &str,
    path: &str,
    content_type: &str,
    body: &Value,
) -> (String, String) {
    let (code, s) = rest.json(method, path, content_type, Some(body)).await;
    assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")), "{s}");
    let causes = s["details"]["causes"].as_array().unwrap();
    assert_eq!(causes.len(), 1, "{s}");
    (s["message"].as_str().unwrap().to_string(), causes[0]["field"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn ephemeral_containers_are_added_never_changed_or_removed() {
    let env = TestEnv::start().await;
    let a = env.rest();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}});
    let (code, s) = a.json("POST", PODS, "application/json", Some(&pod)).await;
    assert_eq!(code, 201, "{s}");

    // Discovery: the subresource, with its verbs and the kind it answers.
    let (_, v1) = a.json("GET", "/api/v1", "", None).await;
    let sub = v1["resources"].as_array().unwrap().iter().find(|r| r["name"] == "pods/ephemeralcontainers");
    assert_eq!(
        sub.map(|r| (r["kind"].clone(), r["verbs"].clone())),
        Some((json!("Pod"), json!(["get", "patch", "update"]))),
        "{v1}"
    );
    let (code, got) = a.json("GET", EPHEMERAL, "", None).await;
    assert_eq!(
        (code, got["kind"].as_str(), got["metadata"]["name"].as_str()),
        (200, Some("Pod"), Some("web"))
    );

    // kubectl debug's strategic merge patch; whatever else a patch says of the pod is ignored.
    let mut patch = adding(json!([debugger("debugger-1")]));
    patch["metadata"] = json!({"labels": {"app": "changed"}});
    patch["spec"]["containers"] = json!([{"name": "web", "image": "busybox:latest"}]);
    let (code, p) = a.json("PATCH", EPHEMERAL, STRATEGIC, Some(&patch)).await;
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["kind"], "Pod");
    let e = &p["spec"]["ephemeralContainers"];
    assert_eq!(
        (e[0]["name"].as_str(), e[0]["targetContainerName"].as_str()),
        (Some("debugger-1"), Some("web"))
    );
    // Defaulted as every container is.
    assert_eq!(e[0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(e[0]["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(
        (p["metadata"]["labels"]["app"].as_str(), p["spec"]["containers"][0]["image"].as_str()),
        (Some("web"), Some("busybox:1.36"))
    );
    let managers: Vec<(&str, &str)> = p["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| Some((m["manager"].as_str()?, m["subresource"].as_str()?)))
        .collect();
    assert_eq!(managers, [("navarch-tests", "ephemeralcontainers")], "{p}");

    // A JSON patch appending one, a merge patch naming both (the list replaced), a PUT of the pod with a
    // third.
    let append =
        json!([{"op": "add", "path": "/spec/ephemeralContainers/-", "value": debugger("debugger-2")}]);
    let (code, p) = a.json("PATCH", EPHEMERAL, JSON_PATCH, Some(&append)).await;
    assert_eq!((code, p["spec"]["ephemeralContainers"].as_array().map(Vec::len)), (200, Some(2)), "{p}");
    let both = adding(p["spec"]["ephemeralContainers"].clone());
    let (code, p) = a.json("PATCH", EPHEMERAL, MERGE, Some(&both)).await;
    assert_eq!(code, 200, "{p}");
    let mut put = p.clone();
    put["spec"]["ephemeralContainers"].as_array_mut().unwrap().push(debugger("debugger-3"));
    let (code, p) = a.json("PUT", EPHEMERAL, "application/json", Some(&put)).await;
    assert_eq!((code, p["spec"]["ephemeralContainers"].as_array().map(Vec::len)), (200, Some(3)), "{p}");
    // A PUT with a stale resourceVersion is a conflict, as any update.
    let (code, s) = a.json("PUT", EPHEMERAL, "application/json", Some(&put)).await;
    assert_eq!((code, s["reason"].as_str()), (409, Some("Conflict")), "{s}");

    // Changing or removing one.
    let change =
        json!([{"op": "replace", "path": "/spec/ephemeralContainers/0/image", "value": "busybox:latest"}]);
    let (message, field) = refused(&a, "PATCH", EPHEMERAL, JSON_PATCH, &change).await;
    assert!(
        message.starts_with(
            "Pod \"web\" is invalid: spec.ephemeralContainers[debugger-1]: Forbidden: existing ephemeral containers \"debugger-1\" may not be changed\n"
        ),
        "{message}"
    );
    assert!(message.contains("-\timage: \"busybox:1.36\"\n+\timage: \"busybox:latest\""), "{message}");
    assert_eq!(field, "spec.ephemeralContainers[debugger-1]");
    let remove = json!([{"op": "remove", "path": "/spec/ephemeralContainers/1"}]);
    let (message, field) = refused(&a, "PATCH", EPHEMERAL, JSON_PATCH, &remove).await;
    assert_eq!(
        message,
        "Pod \"web\" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debugger-2\" may not be removed\n"
    );
    assert_eq!(field, "spec.ephemeralContainers");

    // Fields an ephemeral container may not set; a target that is no container of the pod; a name taken.
    for (extra, path, reason) in [
        (
            json!({"ports": [{"containerPort": 80}]}),
            "ports",
            "Forbidden: cannot be set for an Ephemeral Container",
        ),
        (
            json!({"readinessProbe": {"exec": {"command": ["true"]}}}),
            "readinessProbe",
            "Forbidden: cannot be set for an Ephemeral Container",
        ),
        (
            json!({"resources": {"limits": {"cpu": "100m"}}}),
            "resources",
            "Forbidden: cannot be set for an Ephemeral Container",
        ),
        (
            json!({"lifecycle": {"preStop": {"exec": {"command": ["true"]}}}}),
            "lifecycle",
            "Forbidden: cannot be set for an Ephemeral Container",
        ),
        (json!({"targetContainerName": "nope"}), "targetContainerName", "Not found: \"nope\""),
        (json!({"name": "web"}), "name", "Duplicate value: \"web\""),
    ] {
        let mut c = debugger("debugger-4");
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (message, field) = refused(&a, "PATCH", EPHEMERAL, STRATEGIC, &adding(json!([c]))).await;
        assert_eq!(field, format!("spec.ephemeralContainers[3].{path}"), "{message}");
        assert_eq!(message, format!("Pod \"web\" is invalid: {field}: {reason}"));
    }
    let (message, field) =
        refused(&a, "PATCH", EPHEMERAL, STRATEGIC, &adding(json!([{"name": "debugger-4"}]))).await;
    assert_eq!(
        (message.as_str(), field.as_str()),
        (
            "Pod \"web\" is invalid: spec.ephemeralContainers[3].image: Required value",
            "spec.ephemeralContainers[3].image",
        )
    );

    // The pod itself: an update may not touch them, as Kubernetes refuses it.
    let (message, field) =
        refused(&a, "PATCH", &format!("{PODS}/web"), STRATEGIC, &adding(json!([debugger("debugger-4")])))
            .await;
    assert_eq!(field, "spec.ephemeralContainers");
    assert!(message.contains("Forbidden: pod updates may not change fields other than"), "{message}");
    // Only pods have the subresource; it takes no POST or DELETE.
    let (code, _) =
        a.json("GET", "/api/v1/namespaces/default/services/web/ephemeralcontainers", "", None).await;
    assert_eq!(code, 404);
    let (code, s) = a.json("DELETE", EPHEMERAL, "", None).await;
    assert_eq!((code, s["reason"].as_str()), (405, Some("MethodNotAllowed")), "{s}");
    let (_, p) = a.json("GET", &format!("{PODS}/web"), "", None).await;
    assert_eq!(p["spec"]["ephemeralContainers"].as_array().map(Vec::len), Some(3), "{p}");
}

#[tokio::test]
async fn the_grpc_door_adds_them_and_refuses_removals() {
    let env = TestEnv::start().await;
    let pods = env.client().await.api::<Pod>("default");
    let pod: Pod = serde_yaml::from_str(
        "{metadata: {name: web}, spec: {containers: [{name: web, image: 'busybox:1.36'}]}}",
    )
    .unwrap();
    pods.create(&pod).await.unwrap();
    let mut grpc = ApiServerClient::new(env.grpc_channel().await);
    let request = |p: &Pod| UpdateRequest { object: Some(Object::Pod(p.clone()).to_proto()), dry_run: false };

    let mut p = pods.get("web").await.unwrap();
    let spec = p.spec.as_mut().unwrap();
    spec.ephemeral_containers.push(serde_json::from_value(debugger("debugger-1")).unwrap());
    // Only the ephemeral containers are taken from the request.
    spec.containers[0].image = "busybox:latest".into();
    let written = grpc.update_ephemeral_containers(request(&p)).await.unwrap().into_inner();
    let Object::Pod(written) = Object::from_proto(&written).unwrap() else { panic!("not a pod") };
    let spec = written.spec.clone().unwrap();
    assert_eq!(
        (spec.ephemeral_containers[0].name.as_str(), spec.containers[0].image.as_str()),
        ("debugger-1", "busybox:1.36")
    );

    let mut removed = written.clone();
    removed.spec.as_mut().unwrap().ephemeral_containers.clear();
    let e = grpc.update_ephemeral_containers(request(&removed)).await.unwrap_err();
    assert_eq!(format!("{:?}", e.code()), "InvalidArgument", "{e:?}");
    assert!(
        e.message().contains("spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debugger-1\" may not be removed"),
        "{e:?}"
    );
    // The plain Update refuses any change of them.
    let e = pods.update(&removed).await.unwrap_err();
    assert!(e.to_string().contains("pod updates may not change fields other than"), "{e}");
}
