//! Table rendering from YAML fixtures shaped like the api-server's objects.

use std::time::SystemTime;

use navarch_api::table_columns::age;
use serde_json::{Value, json};

use super::*;

fn now() -> SystemTime {
    age::parse_timestamp("2024-05-01T10:00:00Z").unwrap()
}

fn docs(yaml: &str) -> Vec<Value> {
    yaml.split("\n---\n").map(|d| serde_yaml::from_str(d).unwrap()).collect()
}

fn render(kind: &str, yaml: &str, wide: bool) -> String {
    let kind = navarch_api::kind_info(kind).unwrap();
    TablePrinter::new(kind, TableOptions { wide, ..Default::default() }).rows(&docs(yaml), now())
}

const PODS: &str = r#"
metadata: {name: web-1, namespace: default, creationTimestamp: "2024-05-01T09:55:00Z"}
spec:
  nodeName: node-a
  containers: [{name: app, image: nginx}, {name: side, image: busybox}]
status:
  phase: Running
  podIP: 10.244.0.5
  podIPs: [{ip: 10.244.0.5}]
  conditions: [{type: Ready, status: "True"}]
  containerStatuses:
  - {name: app, ready: true, restartCount: 0, state: {running: {startedAt: "2024-05-01T09:55:10Z"}}}
  - {name: side, ready: true, restartCount: 0, state: {running: {startedAt: "2024-05-01T09:55:10Z"}}}
---
metadata: {name: crashy, namespace: default, creationTimestamp: "2024-05-01T05:57:00Z"}
spec:
  containers: [{name: app, image: bad}]
status:
  phase: Running
  containerStatuses:
  - {name: app, ready: false, restartCount: 5, state: {waiting: {reason: CrashLoopBackOff}},
     lastState: {terminated: {exitCode: 1, finishedAt: "2024-05-01T09:58:00Z"}}}
---
metadata: {name: init, namespace: default, creationTimestamp: "2024-05-01T09:59:55Z"}
spec:
  initContainers: [{name: setup, image: busybox}]
  containers: [{name: app, image: nginx}]
status:
  phase: Pending
  initContainerStatuses:
  - {name: setup, ready: false, restartCount: 0, state: {running: {}}}
  containerStatuses:
  - {name: app, ready: false, restartCount: 0, state: {waiting: {reason: PodInitializing}}}
---
metadata: {name: new, namespace: default, creationTimestamp: "2024-05-01T09:59:58Z"}
spec:
  containers: [{name: app, image: nginx}]
---
metadata: {name: going, namespace: default, creationTimestamp: "2024-04-27T05:00:00Z", deletionTimestamp: "2024-05-01T09:59:00Z"}
spec: {containers: [{name: app, image: nginx}]}
status: {phase: Running, containerStatuses: [{name: app, ready: true, restartCount: 0, state: {running: {}}}]}
---
metadata: {name: done, namespace: default, creationTimestamp: "2024-05-01T09:00:00Z"}
spec: {containers: [{name: app, image: nginx}]}
status:
  phase: Succeeded
  containerStatuses: [{name: app, ready: false, restartCount: 0, state: {terminated: {exitCode: 0, reason: Completed}}}]
"#;

#[test]
fn pods_table() {
    assert_eq!(
        render("Pod", PODS, false),
        "\
NAME     READY   STATUS             RESTARTS     AGE
web-1    2/2     Running            0            5m
crashy   0/1     CrashLoopBackOff   5 (2m ago)   4h3m
init     0/1     Init:0/1           0            5s
new      0/1     Pending            0            2s
going    1/1     Terminating        0            4d5h
done     0/1     Completed          0            60m
"
    );
}

#[test]
fn pods_table_wide() {
    let out = render("Pod", PODS, true);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "NAME     READY   STATUS             RESTARTS     AGE    IP           NODE     NOMINATED NODE   READINESS GATES"
    );
    assert_eq!(
        lines[1],
        "web-1    2/2     Running            0            5m     10.244.0.5   node-a   <none>           <none>"
    );
    assert!(lines[2].ends_with("<none>       <none>   <none>           <none>"), "{}", lines[2]);
}

const DEPLOYMENTS: &str = r#"
metadata: {name: web, namespace: default, creationTimestamp: "2024-05-01T09:59:30Z"}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: nginx, image: "nginx:1.25"}, {name: log, image: busybox}]}
status: {replicas: 3, readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2}
---
metadata: {name: api, namespace: default, creationTimestamp: "2024-05-01T09:57:00Z"}
spec:
  replicas: 1
  selector:
    matchLabels: {app: api}
    matchExpressions: [{key: tier, operator: In, values: [a, b]}]
  template:
    spec: {containers: [{name: api, image: "api:v2"}]}
"#;

#[test]
fn deployments_table() {
    assert_eq!(
        render("Deployment", DEPLOYMENTS, false),
        "\
NAME   READY   UP-TO-DATE   AVAILABLE   AGE
web    2/3     3            2           30s
api    0/1     0            0           3m
"
    );
    assert_eq!(
        render("Deployment", DEPLOYMENTS, true),
        "\
NAME   READY   UP-TO-DATE   AVAILABLE   AGE   CONTAINERS   IMAGES               SELECTOR
web    2/3     3            2           30s   nginx,log    nginx:1.25,busybox   app=web
api    0/1     0            0           3m    api          api:v2               app=api,tier in (a,b)
"
    );
}

const SERVICES: &str = r#"
metadata: {name: web, namespace: default, creationTimestamp: "2024-05-01T09:00:00Z"}
spec:
  type: NodePort
  clusterIP: 10.96.0.20
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP}, {name: dns, port: 53, protocol: UDP, nodePort: 30053}]
---
metadata: {name: kubernetes, namespace: default, creationTimestamp: "2024-04-01T10:00:00Z"}
spec:
  type: ClusterIP
  clusterIP: 10.96.0.1
  ports: [{name: https, port: 443, protocol: TCP, targetPort: 6443}]
---
metadata: {name: headless, namespace: default, creationTimestamp: "2024-05-01T09:59:00Z"}
spec: {type: ClusterIP, clusterIP: None, selector: {app: db}}
---
metadata: {name: lb, namespace: default, creationTimestamp: "2024-05-01T09:59:00Z"}
spec: {type: LoadBalancer, clusterIP: 10.96.0.30, ports: [{port: 443, protocol: TCP, nodePort: 31443}]}
"#;

#[test]
fn services_table() {
    assert_eq!(
        render("Service", SERVICES, false),
        "\
NAME         TYPE           CLUSTER-IP   EXTERNAL-IP   PORT(S)                     AGE
web          NodePort       10.96.0.20   <none>        80:30080/TCP,53:30053/UDP   60m
kubernetes   ClusterIP      10.96.0.1    <none>        443/TCP                     30d
headless     ClusterIP      None         <none>        <none>                      60s
lb           LoadBalancer   10.96.0.30   <pending>     443:31443/TCP               60s
"
    );
    let wide = render("Service", SERVICES, true);
    assert!(wide.lines().next().unwrap().ends_with("AGE   SELECTOR"), "{wide}");
    assert!(wide.lines().nth(1).unwrap().ends_with("60m   app=web"), "{wide}");
}

#[test]
fn endpoints_and_small_kinds() {
    let ep = r#"
metadata: {name: web, creationTimestamp: "2024-05-01T09:59:00Z"}
subsets:
- addresses: [{ip: 10.0.0.1}, {ip: 10.0.0.2}, {ip: 10.0.0.3}, {ip: 10.0.0.4}]
  ports: [{port: 8080}]
---
metadata: {name: empty, creationTimestamp: "2024-05-01T09:59:00Z"}
"#;
    assert_eq!(
        render("Endpoints", ep, false),
        "\
NAME    ENDPOINTS                                               AGE
web     10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 1 more...   60s
empty   <none>                                                  60s
"
    );
    let node = r#"
metadata: {name: n1, creationTimestamp: "2024-05-01T09:00:00Z", labels: {node-role.kubernetes.io/control-plane: ""}}
spec: {unschedulable: true}
status:
  conditions: [{type: Ready, status: "True"}]
  nodeInfo: {kubeletVersion: v0.1.0}
"#;
    assert_eq!(
        render("Node", node, false),
        "NAME   STATUS                     ROLES           AGE   VERSION\nn1     Ready,SchedulingDisabled   control-plane   60m   v0.1.0\n"
    );
    let job = r#"
metadata: {name: pi, creationTimestamp: "2024-05-01T09:00:00Z"}
spec: {completions: 3}
status:
  succeeded: 3
  startTime: "2024-05-01T09:00:00Z"
  completionTime: "2024-05-01T09:00:42Z"
  conditions: [{type: Complete, status: "True"}]
"#;
    assert_eq!(
        render("Job", job, false),
        "NAME   STATUS     COMPLETIONS   DURATION   AGE\npi     Complete   3/3           42s        60m\n"
    );
    let cm = "metadata: {name: cfg, creationTimestamp: \"2024-05-01T09:59:50Z\"}\ndata: {a: '1', b: '2'}\n";
    assert_eq!(render("ConfigMap", cm, false), "NAME   DATA   AGE\ncfg    2      10s\n");
}

#[test]
fn namespace_labels_and_kind_prefix() {
    let kind = navarch_api::kind_info("ConfigMap").unwrap();
    let objs = docs(
        "metadata: {name: a, namespace: team, creationTimestamp: \"2024-05-01T09:59:50Z\", labels: {x: '1'}}\n",
    );
    let mut p = TablePrinter::new(
        kind,
        TableOptions { with_namespace: true, show_labels: true, with_kind: true, ..Default::default() },
    );
    assert_eq!(
        p.rows(&objs, now()),
        "NAMESPACE   NAME          DATA   AGE   LABELS\nteam        configmap/a   0      10s   x=1\n"
    );
    // Later rows (watch) carry no header and keep the alignment.
    assert_eq!(p.rows(&objs, now()), "team        configmap/a   0      10s   x=1\n");
    let mut quiet = TablePrinter::new(kind, TableOptions { no_headers: true, ..Default::default() });
    assert_eq!(quiet.rows(&objs, now()), "a     0     10s\n");
}

#[test]
fn formats_parse() {
    assert_eq!("yaml".parse::<Format>().unwrap(), Format::Yaml);
    assert_eq!("".parse::<Format>().unwrap(), Format::Table);
    assert!("xml".parse::<Format>().is_err());
}

#[test]
fn yaml_and_json_have_type_meta_first() {
    let cm: Object = navarch_api::v1::ConfigMap {
        metadata: Some(navarch_api::v1::ObjectMeta { name: "c".into(), ..Default::default() }),
        data: [("k".to_string(), "v".to_string())].into(),
        ..Default::default()
    }
    .into();
    let y = serialize(std::slice::from_ref(&cm), Format::Yaml, true).unwrap();
    assert_eq!(y, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n");
    let l = serialize(&[cm.clone(), cm.clone()], Format::Yaml, false).unwrap();
    assert!(
        l.starts_with("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n"),
        "{l}"
    );
    let j = serialize(std::slice::from_ref(&cm), Format::Json, true).unwrap();
    assert!(j.starts_with("{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"ConfigMap\""), "{j}");
    assert_eq!(name_of(&cm), "configmap/c");
}

#[test]
fn events_show_wide_columns_only_with_wide() {
    let ev = r#"
metadata: {name: web.17a, creationTimestamp: "2024-05-01T09:00:00Z"}
involvedObject: {kind: Pod, name: web, fieldPath: "spec.containers{app}"}
reason: BackOff
message: "Back-off restarting\nfailed container"
type: Warning
source: {component: kubelet, host: node-a}
firstTimestamp: "2024-05-01T09:00:00Z"
lastTimestamp: "2024-05-01T09:58:00Z"
count: 7
"#;
    assert_eq!(
        render("Event", ev, false),
        "\
LAST SEEN   TYPE      REASON    OBJECT    MESSAGE
2m          Warning   BackOff   pod/web   Back-off restarting...
"
    );
    assert_eq!(
        render("Event", ev, true),
        "\
LAST SEEN   TYPE      REASON    OBJECT    SUBOBJECT              SOURCE            MESSAGE                  FIRST SEEN   COUNT   NAME
2m          Warning   BackOff   pod/web   spec.containers{app}   kubelet, node-a   Back-off restarting...   60m          7       web.17a
"
    );
    // Several kinds in one `get`: the name column gets the kind, wherever it stands.
    let kind = navarch_api::kind_info("Event").unwrap();
    let mut p = TablePrinter::new(
        kind,
        TableOptions { wide: true, with_kind: true, no_headers: true, ..Default::default() },
    );
    assert!(p.rows(&docs(ev), now()).trim_end().ends_with("   event/web.17a"));
}

#[test]
fn cells_print_like_kubectl() {
    assert_eq!(cell_text(&json!("a\nb")), "a...");
    assert_eq!(cell_text(&json!(3)), "3");
    assert_eq!(cell_text(&json!(true)), "true");
    assert_eq!(cell_text(&Value::Null), "");
}

/// The fixtures read through the generated types (as `get` receives them) print the same tables.
#[test]
fn typed_objects_render_the_same() {
    for (kind, yaml) in [("Pod", PODS), ("Deployment", DEPLOYMENTS), ("Service", SERVICES)] {
        let typed: Vec<Value> = yaml
            .split("\n---\n")
            .map(|doc| {
                let raw: serde_yaml::Value = serde_yaml::from_str(doc).unwrap();
                to_value(&Object::from_value(kind, raw).unwrap_or_else(|e| panic!("{kind}: {e}")))
            })
            .collect();
        let info = navarch_api::kind_info(kind).unwrap();
        for wide in [false, true] {
            let mut printer = TablePrinter::new(info, TableOptions { wide, ..Default::default() });
            assert_eq!(printer.rows(&typed, now()), render(kind, yaml, wide), "{kind}");
        }
    }
}
