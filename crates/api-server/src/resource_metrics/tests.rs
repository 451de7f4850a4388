//! Get and list of NodeMetrics and PodMetrics over hand-made snapshots and stores.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use navarch_api::kubelet_proto::{ContainerUsage, PodUsage, StatsResponse};
use navarch_api::v1::{Node, ObjectMeta, Pod};

use super::*;

fn meta(namespace: &str, name: &str, uid: &str, labels: &[(&str, &str)]) -> Option<ObjectMeta> {
    Some(ObjectMeta {
        name: name.into(),
        namespace: namespace.into(),
        uid: uid.into(),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        ..Default::default()
    })
}

fn pod(namespace: &str, name: &str, uid: &str, labels: &[(&str, &str)]) -> Object {
    Object::Pod(Pod { metadata: meta(namespace, name, uid, labels), ..Default::default() })
}

fn node(name: &str, labels: &[(&str, &str)]) -> Object {
    Object::Node(Node { metadata: meta("", name, "", labels), ..Default::default() })
}

fn stats(node: &str, pods: &[(&str, &str, &str, u64)]) -> StatsResponse {
    StatsResponse {
        node_name: node.into(),
        node_cpu_nano_cores: 1_500_000,
        node_memory_working_set_bytes: 2 << 20,
        pods: pods
            .iter()
            .map(|(ns, name, uid, cpu)| PodUsage {
                namespace: ns.to_string(),
                name: name.to_string(),
                uid: uid.to_string(),
                containers: vec![ContainerUsage {
                    name: "app".into(),
                    cpu_nano_cores: *cpu,
                    memory_working_set_bytes: 8192,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
        timestamp: "2026-12-04T20:00:00Z".into(),
        window_seconds: 15.0,
        ..Default::default()
    }
}

/// Nodes n1 (zone a) and n2 (zone b); pods web-1 (app=web), web-2 (app=web, recreated: another uid than
/// the sample's), db (app=db) in default, dns in kube-system; ghost only in the sample.
fn api() -> ResourceMetrics {
    let pods = LocalStore::fixed(
        "Pod",
        vec![
            pod("default", "web-1", "u1", &[("app", "web")]),
            pod("default", "web-2", "u2-new", &[("app", "web")]),
            pod("default", "db", "u3", &[("app", "db")]),
            pod("kube-system", "dns", "u4", &[("app", "dns")]),
        ],
    );
    let nodes = LocalStore::fixed("Node", vec![node("n1", &[("zone", "a")]), node("n2", &[("zone", "b")])]);
    let api = ResourceMetrics::new(pods, nodes);
    let now = Instant::now();
    let res = Duration::from_secs(15);
    let results = vec![
        (
            "n1".to_string(),
            Ok(sample::node_sample(
                stats(
                    "n1",
                    &[
                        ("default", "web-1", "u1", 10),
                        ("default", "web-2", "u2", 20),
                        ("default", "ghost", "g", 1),
                    ],
                ),
                now,
                res,
            )),
        ),
        (
            "n2".to_string(),
            Ok(sample::node_sample(
                stats("n2", &[("default", "db", "u3", 30), ("kube-system", "dns", "u4", 40)]),
                now,
                res,
            )),
        ),
    ];
    api.publish(sample::next(&Snapshot::default(), results, now, 2 * res).0);
    api
}

fn names(l: &ListResult) -> Vec<String> {
    l.items.iter().map(|o| format!("{}/{}", o.meta().namespace, o.meta().name)).collect()
}

fn opts(namespace: &str, labels: &str, fields: &str) -> ListOptions {
    ListOptions {
        namespace: namespace.into(),
        label_selector: labels.into(),
        field_selector: fields.into(),
        ..Default::default()
    }
}

#[test]
fn lists_pods_with_their_labels_by_namespace_and_selectors() {
    let api = api();
    let all = api.list("PodMetrics", &opts("", "", "")).unwrap();
    // ghost has no Pod; web-2's sample is of an older pod of that name.
    assert_eq!(names(&all), ["default/db", "default/web-1", "kube-system/dns"]);
    assert_eq!(
        names(&api.list("PodMetrics", &opts("default", "", "")).unwrap()),
        ["default/db", "default/web-1"]
    );
    assert_eq!(
        names(&api.list("PodMetrics", &opts("", "app in (web,dns)", "")).unwrap()),
        ["default/web-1", "kube-system/dns"]
    );
    assert_eq!(names(&api.list("PodMetrics", &opts("", "", "metadata.name=db")).unwrap()), ["default/db"]);
    assert_eq!(
        names(&api.list("PodMetrics", &opts("", "", "metadata.namespace!=default")).unwrap()),
        ["kube-system/dns"]
    );
    let Object::PodMetrics(web) = &all.items[1] else { panic!("a PodMetrics") };
    assert_eq!(web.metadata.as_ref().unwrap().labels["app"], "web");
    assert_eq!(web.containers[0].usage["cpu"].string, "10n");
    assert_eq!(web.containers[0].usage["memory"].string, "8Ki");
    assert_eq!(web.window, "15s");
    assert_eq!(web.timestamp, "2026-12-04T20:00:00Z");
    let e = api.list("PodMetrics", &opts("", "", "spec.nodeName=n1")).err().expect("refused");
    assert_eq!(e.to_string(), "fieldSelector: field label not supported: spec.nodeName");
}

#[test]
fn lists_nodes_with_their_labels() {
    let api = api();
    let all = api.list("NodeMetrics", &opts("", "", "")).unwrap();
    assert_eq!(names(&all), ["/n1", "/n2"]);
    assert_eq!(names(&api.list("NodeMetrics", &opts("", "zone=b", "")).unwrap()), ["/n2"]);
    let Object::NodeMetrics(n1) = &all.items[0] else { panic!("a NodeMetrics") };
    assert_eq!(n1.usage["cpu"].string, "1500u");
    assert_eq!(n1.usage["memory"].string, "2Mi");
    assert_eq!(n1.metadata.as_ref().unwrap().labels["zone"], "a");
}

#[test]
fn get_says_what_is_missing_as_metrics_server() {
    let api = api();
    let Object::PodMetrics(db) = api.get("PodMetrics", "default", "db").unwrap() else { panic!() };
    assert_eq!(db.containers[0].usage["cpu"].string, "30n");
    let e = api.get("PodMetrics", "default", "nope").unwrap_err();
    assert_eq!(e.to_string(), r#"pods "nope" not found"#);
    let e = api.get("PodMetrics", "default", "web-2").unwrap_err();
    assert_eq!(e.to_string(), r#"podmetrics.metrics.k8s.io "default/web-2" not found"#);
    let e = api.get("NodeMetrics", "", "n3").unwrap_err();
    assert_eq!(e.to_string(), r#"nodes "n3" not found"#);
    assert!(api.get("NodeMetrics", "", "n2").is_ok());
    // REST qualifies the metrics resource with its group, never the Pod or Node.
    let info = navarch_api::kind_info("PodMetrics");
    let rest = |e| crate::rest::status::StatusError::from_api(e, info).message;
    assert_eq!(rest(api.get("PodMetrics", "default", "nope").unwrap_err()), r#"pods "nope" not found"#);
    assert_eq!(
        rest(api.get("PodMetrics", "default", "web-2").unwrap_err()),
        r#"podmetrics.metrics.k8s.io "default/web-2" not found"#
    );
}

#[test]
fn writes_and_watches_are_method_not_allowed() {
    let info = navarch_api::kind_info("pods.metrics.k8s.io").unwrap();
    let e = read_only(info, "create");
    let status = crate::rest::status::StatusError::from_api(e, Some(info));
    assert_eq!(status.code, http::StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(status.reason, "MethodNotAllowed");
    assert_eq!(status.message, "the server does not allow this method on the requested resource");
    assert_eq!(tonic::Status::from(read_only(info, "watch")).code(), tonic::Code::Unimplemented);
}
