//! Cells from YAML fixtures shaped like the api-server's objects.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::*;
use crate::{KINDS, Object};

fn now() -> SystemTime {
    age::parse_timestamp("2024-05-01T10:00:00Z").unwrap()
}

fn doc(yaml: &str) -> Value {
    serde_yaml::from_str(yaml).unwrap()
}

/// The cells of one object, as strings (numbers as they print).
fn row(kind: &str, yaml: &str) -> Vec<String> {
    cells(kind, &doc(yaml), now())
        .into_iter()
        .map(|c| match c {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect()
}

/// The cells of the columns named `names`.
fn pick(kind: &str, yaml: &str, names: &[&str]) -> Vec<String> {
    let row = row(kind, yaml);
    let cols = columns(kind);
    names
        .iter()
        .map(|n| {
            let i = cols.iter().position(|c| c.name == *n).unwrap_or_else(|| panic!("{kind}: no {n}"));
            row[i].clone()
        })
        .collect()
}

#[test]
fn every_kind_has_a_table_with_a_cell_per_column() {
    for info in KINDS.iter() {
        let cols = columns(info.kind);
        assert!(cols.len() >= 2, "{}", info.kind);
        assert_eq!(cols.iter().filter(|c| c.format == "name").count(), 1, "{}: one name column", info.kind);
        for c in &cols {
            assert!(
                matches!(c.type_, "string" | "integer" | "number" | "boolean" | "date"),
                "{}: {c:?}",
                info.kind
            );
            assert!(matches!(c.priority, 0 | 1) && !c.description.is_empty(), "{}: {c:?}", info.kind);
        }
        // An empty object and a typed default object both give a full row.
        assert_eq!(cells(info.kind, &json!({}), now()).len(), cols.len(), "{}", info.kind);
        let typed =
            Object::from_value(info.kind, serde_yaml::from_str("metadata: {name: x}").unwrap()).unwrap();
        let typed = serde_json::to_value(&typed).unwrap();
        let row = cells(info.kind, &typed, now());
        assert_eq!(row.len(), cols.len(), "{}", info.kind);
        let name = cols.iter().position(|c| c.format == "name").unwrap();
        assert_eq!(row[name], "x", "{}", info.kind);
    }
    assert_eq!(columns("NoSuchKind").iter().map(|c| c.name).collect::<Vec<_>>(), ["Name", "Age"]);
}

fn names(kind: &str, priority: i32) -> Vec<&'static str> {
    columns(kind).into_iter().filter(|c| c.priority == priority).map(|c| c.name).collect()
}

#[test]
fn upstream_column_names_and_order() {
    assert_eq!(names("Pod", 0), ["Name", "Ready", "Status", "Restarts", "Age"]);
    assert_eq!(names("Pod", 1), ["IP", "Node", "Nominated Node", "Readiness Gates"]);
    assert_eq!(
        columns("Event").iter().map(|c| (c.name, c.priority)).collect::<Vec<_>>(),
        [
            ("Last Seen", 0),
            ("Type", 0),
            ("Reason", 0),
            ("Object", 0),
            ("Subobject", 1),
            ("Source", 1),
            ("Message", 0),
            ("First Seen", 1),
            ("Count", 1),
            ("Name", 1),
        ]
    );
    assert_eq!(names("Deployment", 0), ["Name", "Ready", "Up-to-date", "Available", "Age"]);
    assert_eq!(names("Deployment", 1), ["Containers", "Images", "Selector"]);
    assert_eq!(
        names("Node", 1),
        ["Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"]
    );
    assert_eq!(
        names("CronJob", 0),
        ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"]
    );
    assert_eq!(names("Job", 0), ["Name", "Status", "Completions", "Duration", "Age"]);
    assert_eq!(names("Service", 0), ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"]);
    let rs = columns("ReplicaSet");
    assert_eq!(
        rs.iter().map(|c| c.type_).collect::<Vec<_>>()[..5],
        ["string", "integer", "integer", "integer", "string"]
    );
    // Serialized as a meta.k8s.io/v1 TableColumnDefinition.
    assert_eq!(
        serde_json::to_value(columns("Pod")[0]).unwrap(),
        json!({"name": "Name", "type": "string", "format": "name", "description": NAME.description, "priority": 0})
    );
}

#[test]
fn integer_cells_are_numbers() {
    let rs = "metadata: {name: web-5d, creationTimestamp: \"2024-05-01T09:00:00Z\"}\n\
              spec: {replicas: 3}\nstatus: {replicas: 3, readyReplicas: 2}\n";
    assert_eq!(
        cells("ReplicaSet", &doc(rs), now())[..5],
        [json!("web-5d"), json!(3), json!(3), json!(2), json!("60m")]
    );
    let cm = "metadata: {name: c}\ndata: {a: '1'}\nbinaryData: {b: AA==}\n";
    assert_eq!(cells("ConfigMap", &doc(cm), now())[1], json!(2));
}

fn pod(status: &str) -> String {
    format!(
        "metadata: {{name: p, creationTimestamp: \"2024-05-01T09:00:00Z\"}}\n\
         spec: {{containers: [{{name: app, image: nginx}}, {{name: side, image: busybox}}]}}\nstatus:\n{status}"
    )
}

#[test]
fn pod_ready_restarts_and_status() {
    let running =
        pod("  phase: Running\n  conditions: [{type: Ready, status: \"True\"}]\n  containerStatuses:\n\
         \x20 - {name: app, ready: true, restartCount: 0, state: {running: {}}}\n\
         \x20 - {name: side, ready: false, restartCount: 0, state: {running: {}}}\n");
    assert_eq!(
        pick("Pod", &running, &["Ready", "Status", "Restarts", "Age"]),
        ["1/2", "Running", "0", "60m"]
    );

    let crashing = pod("  phase: Running\n  containerStatuses:\n\
         \x20 - {name: app, ready: false, restartCount: 5, state: {waiting: {reason: CrashLoopBackOff}},\n\
         \x20    lastState: {terminated: {exitCode: 1, finishedAt: \"2024-05-01T09:55:00Z\"}}}\n\
         \x20 - {name: side, ready: true, restartCount: 2, state: {running: {}},\n\
         \x20    lastState: {terminated: {exitCode: 2, finishedAt: \"2024-05-01T09:40:00Z\"}}}\n");
    assert_eq!(
        pick("Pod", &crashing, &["Ready", "Status", "Restarts"]),
        ["1/2", "CrashLoopBackOff", "7 (5m ago)"]
    );

    let completed = pod("  phase: Succeeded\n  containerStatuses:\n\
         \x20 - {name: app, ready: false, state: {terminated: {exitCode: 0, reason: Completed}}}\n\
         \x20 - {name: side, ready: false, state: {terminated: {exitCode: 0, reason: Completed}}}\n");
    assert_eq!(pick("Pod", &completed, &["Ready", "Status"]), ["0/2", "Completed"]);

    // A container still running turns Completed back into Running / NotReady.
    let half_done = pod("  phase: Running\n  containerStatuses:\n\
         \x20 - {name: app, ready: false, state: {terminated: {exitCode: 0, reason: Completed}}}\n\
         \x20 - {name: side, ready: true, state: {running: {}}}\n");
    assert_eq!(pick("Pod", &half_done, &["Status"]), ["NotReady"]);

    let killed =
        pod("  phase: Running\n  containerStatuses:\n  - {name: app, state: {terminated: {signal: 9}}}\n");
    assert_eq!(pick("Pod", &killed, &["Status"]), ["Signal:9"]);
    let exited =
        pod("  phase: Running\n  containerStatuses:\n  - {name: app, state: {terminated: {exitCode: 3}}}\n");
    assert_eq!(pick("Pod", &exited, &["Status"]), ["ExitCode:3"]);

    let terminating = running
        .replace("creationTimestamp:", "deletionTimestamp: \"2024-05-01T09:59:00Z\", creationTimestamp:");
    assert_eq!(pick("Pod", &terminating, &["Status"]), ["Terminating"]);
    let lost = pod("  phase: Running\n  reason: NodeLost\n")
        .replace("creationTimestamp:", "deletionTimestamp: \"2024-05-01T09:59:00Z\", creationTimestamp:");
    assert_eq!(pick("Pod", &lost, &["Status"]), ["Unknown"]);
    let evicted = pod("  phase: Failed\n  reason: Evicted\n");
    assert_eq!(pick("Pod", &evicted, &["Status"]), ["Evicted"]);
    let gated = pod(
        "  phase: Pending\n  conditions: [{type: PodScheduled, status: \"False\", reason: SchedulingGated}]\n",
    );
    assert_eq!(pick("Pod", &gated, &["Status"]), ["SchedulingGated"]);
    let unreported = pod("  {}\n");
    assert_eq!(pick("Pod", &unreported, &["Ready", "Status", "Restarts"]), ["0/2", "Pending", "0"]);
}

#[test]
fn pod_init_containers_and_sidecars() {
    let base = "metadata: {name: p, creationTimestamp: \"2024-05-01T09:00:00Z\"}\nspec:\n\
                \x20 initContainers: [{name: setup, image: busybox}, {name: proxy, image: envoy, restartPolicy: Always}]\n\
                \x20 containers: [{name: app, image: nginx}]\nstatus:\n  phase: Pending\n";
    let waiting = format!(
        "{base}  initContainerStatuses:\n\
         \x20 - {{name: setup, restartCount: 2, state: {{waiting: {{reason: CrashLoopBackOff}}}},\n\
         \x20    lastState: {{terminated: {{exitCode: 1, finishedAt: \"2024-05-01T09:58:00Z\"}}}}}}\n\
         \x20 - {{name: proxy, state: {{waiting: {{reason: PodInitializing}}}}}}\n"
    );
    assert_eq!(
        pick("Pod", &waiting, &["Ready", "Status", "Restarts"]),
        ["0/2", "Init:CrashLoopBackOff", "2 (2m ago)"]
    );
    let running_init =
        format!("{base}  initContainerStatuses:\n  - {{name: setup, state: {{running: {{}}}}}}\n");
    assert_eq!(pick("Pod", &running_init, &["Status"]), ["Init:0/2"]);
    let failed_init = format!(
        "{base}  initContainerStatuses:\n  - {{name: setup, state: {{terminated: {{exitCode: 2, reason: Error}}}}}}\n"
    );
    assert_eq!(pick("Pod", &failed_init, &["Status"]), ["Init:Error"]);
    // The sidecar started and is ready: it counts, and the pod runs.
    let up = format!(
        "{base}  conditions: [{{type: Initialized, status: \"True\"}}]\n  initContainerStatuses:\n\
         \x20 - {{name: setup, state: {{terminated: {{exitCode: 0, reason: Completed}}}}}}\n\
         \x20 - {{name: proxy, started: true, ready: true, restartCount: 1, state: {{running: {{}}}}}}\n\
         \x20 containerStatuses:\n  - {{name: app, ready: true, restartCount: 0, state: {{running: {{}}}}}}\n"
    )
    .replace("phase: Pending", "phase: Running");
    assert_eq!(pick("Pod", &up, &["Ready", "Status", "Restarts"]), ["2/2", "Running", "1"]);
}

#[test]
fn pod_wide_cells() {
    let p = "metadata: {name: p}\n\
             spec: {nodeName: n1, containers: [{name: a}], readinessGates: [{conditionType: x}, {conditionType: y}]}\n\
             status:\n  podIPs: [{ip: 10.244.1.5}]\n  nominatedNodeName: n2\n\
             \x20 conditions: [{type: x, status: \"True\"}, {type: y, status: \"False\"}]\n";
    assert_eq!(
        pick("Pod", p, &["IP", "Node", "Nominated Node", "Readiness Gates"]),
        ["10.244.1.5", "n1", "n2", "1/2"]
    );
    assert_eq!(
        pick("Pod", "metadata: {name: p}\n", &["IP", "Node", "Nominated Node", "Readiness Gates", "Age"]),
        ["<none>", "<none>", "<none>", "<none>", "<unknown>"]
    );
}

#[test]
fn node_status_roles_and_wide_cells() {
    let node = |labels: &str, extra: &str| {
        format!(
            "metadata: {{name: n1, creationTimestamp: \"2024-05-01T09:00:00Z\", labels: {{{labels}}}}}\n{extra}"
        )
    };
    let ready = node(
        "node-role.kubernetes.io/control-plane: '', node-role.kubernetes.io/etcd: '', kubernetes.io/role: master",
        "status:\n  conditions: [{type: MemoryPressure, status: \"False\"}, {type: Ready, status: \"True\"}]\n\
         \x20 nodeInfo: {kubeletVersion: v1.32.0, osImage: Debian, kernelVersion: 6.1.0, containerRuntimeVersion: containerd://2.0}\n\
         \x20 addresses: [{type: Hostname, address: n1}, {type: InternalIP, address: 10.0.0.1}, {type: InternalIP, address: 10.0.0.9}]\n",
    );
    assert_eq!(
        row("Node", &ready),
        [
            "n1",
            "Ready",
            "control-plane,etcd,master",
            "60m",
            "v1.32.0",
            "10.0.0.1",
            "<none>",
            "Debian",
            "6.1.0",
            "containerd://2.0"
        ]
    );
    let not_ready =
        node("", "spec: {unschedulable: true}\nstatus: {conditions: [{type: Ready, status: \"Unknown\"}]}\n");
    assert_eq!(
        pick("Node", &not_ready, &["Status", "Roles", "OS-Image", "Container-Runtime"]),
        ["NotReady,SchedulingDisabled", "<none>", "<unknown>", "<unknown>"]
    );
    let unknown = node("node-role.kubernetes.io/: ''", "spec: {unschedulable: true}\n");
    assert_eq!(pick("Node", &unknown, &["Status", "Roles"]), ["Unknown,SchedulingDisabled", "<none>"]);
}

#[test]
fn service_ips_and_ports() {
    let svc =
        |spec: &str| format!("metadata: {{name: s, creationTimestamp: \"2024-05-01T09:00:00Z\"}}\n{spec}");
    let cols = ["Type", "Cluster-IP", "External-IP", "Port(s)", "Selector"];
    let cluster_ip = svc(
        "spec: {type: ClusterIP, clusterIP: 10.96.0.10, clusterIPs: [10.96.0.10], selector: {k8s-app: dns, a: b},\n\
         \x20 ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]}\n",
    );
    assert_eq!(
        pick("Service", &cluster_ip, &cols),
        ["ClusterIP", "10.96.0.10", "<none>", "53/UDP,53/TCP", "a=b,k8s-app=dns"]
    );
    let node_port = svc("spec: {type: NodePort, clusterIP: 10.96.0.20, externalIPs: [192.0.2.1],\n\
         \x20 ports: [{port: 80, nodePort: 30080, protocol: TCP}]}\n");
    assert_eq!(
        pick("Service", &node_port, &cols),
        ["NodePort", "10.96.0.20", "192.0.2.1", "80:30080/TCP", "<none>"]
    );
    let pending = svc(
        "spec: {type: LoadBalancer, clusterIP: 10.96.0.30, ports: [{port: 443, protocol: TCP, nodePort: 31443}]}\n",
    );
    assert_eq!(pick("Service", &pending, &["External-IP", "Port(s)"]), ["<pending>", "443:31443/TCP"]);
    let balanced = svc("spec: {type: LoadBalancer, externalIPs: [192.0.2.9]}\n\
         status: {loadBalancer: {ingress: [{ip: 203.0.113.7}, {hostname: lb.example.com}, {ip: 203.0.113.7}]}}\n");
    assert_eq!(
        pick("Service", &balanced, &["Cluster-IP", "External-IP", "Port(s)"]),
        ["<none>", "203.0.113.7,lb.example.com,192.0.2.9", "<none>"]
    );
    let external_name = svc("spec: {type: ExternalName, externalName: db.example.com}\n");
    assert_eq!(pick("Service", &external_name, &["Cluster-IP", "External-IP"]), ["<none>", "db.example.com"]);
    let headless = svc("spec: {type: ClusterIP, clusterIP: None, clusterIPs: [None]}\n");
    assert_eq!(pick("Service", &headless, &["Cluster-IP"]), ["None"]);
}

#[test]
fn deployment_cells() {
    let d = "metadata: {name: web, creationTimestamp: \"2024-05-01T09:59:30Z\"}\n\
             spec:\n  replicas: 3\n\
             \x20 selector: {matchLabels: {tier: web}, matchExpressions: [{key: app, operator: In, values: [b, a]}, {key: canary, operator: DoesNotExist}]}\n\
             \x20 template: {spec: {containers: [{name: nginx, image: \"nginx:1.25\"}, {name: log, image: busybox}]}}\n\
             status: {replicas: 3, readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2}\n";
    assert_eq!(
        cells("Deployment", &doc(d), now()),
        [
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("30s"),
            json!("nginx,log"),
            json!("nginx:1.25,busybox"),
            json!("app in (a,b),!canary,tier=web"),
        ]
    );
    let bare = "metadata: {name: api}\nspec: {replicas: 1}\n";
    assert_eq!(row("Deployment", bare), ["api", "0/1", "0", "0", "<unknown>", "", "", ""]);
    assert_eq!(row("ReplicaSet", bare)[7], "<none>", "FormatLabelSelector prints <none>");
}

#[test]
fn workload_and_small_kind_cells() {
    let job = "metadata: {name: pi, creationTimestamp: \"2024-05-01T09:00:00Z\"}\n\
               spec: {parallelism: 2}\n\
               status: {succeeded: 1, startTime: \"2024-05-01T09:58:00Z\",\n\
               \x20 conditions: [{type: SuccessCriteriaMet, status: \"True\"}, {type: Suspended, status: \"False\"}]}\n";
    assert_eq!(row("Job", job)[..5], ["pi", "Running", "1/1 of 2", "2m", "60m"]);
    let cron = "metadata: {name: c, creationTimestamp: \"2024-05-01T09:00:00Z\"}\n\
                spec: {schedule: '*/5 * * * *', timeZone: Etc/UTC, suspend: false}\n\
                status: {active: [{name: c-1}], lastScheduleTime: \"2024-05-01T09:55:00Z\"}\n";
    assert_eq!(row("CronJob", cron)[..7], ["c", "*/5 * * * *", "Etc/UTC", "False", "1", "5m", "60m"]);
    assert_eq!(
        pick("CronJob", "metadata: {name: c}\n", &["Timezone", "Suspend", "Last Schedule"]),
        ["<none>", "<unset>", "<none>"]
    );
    let ds = "metadata: {name: d}\nspec: {template: {spec: {nodeSelector: {kubernetes.io/os: linux}}}}\n\
              status: {desiredNumberScheduled: 2, currentNumberScheduled: 2, numberReady: 1}\n";
    assert_eq!(row("DaemonSet", ds)[..7], ["d", "2", "2", "1", "0", "0", "kubernetes.io/os=linux"]);
    let ep = "metadata: {name: e}\nsubsets: [{notReadyAddresses: [{ip: 10.0.0.1}], ports: [{port: 80}]}]\n";
    assert_eq!(row("Endpoints", ep)[1], "", "subsets without ready addresses");
    let ep6 = "metadata: {name: e}\nsubsets: [{addresses: [{ip: 'fd00::1'}, {ip: 10.0.0.2}], ports: [{port: 80}, {port: 81}]}]\n";
    assert_eq!(row("Endpoints", ep6)[1], "[fd00::1]:80,10.0.0.2:80,[fd00::1]:81 + 1 more...");
    let secret = "metadata: {name: s}\ntype: Opaque\ndata: {a: YQ==, b: Yg==}\n";
    assert_eq!(row("Secret", secret)[..3], ["s", "Opaque", "2"]);
    assert_eq!(row("ServiceAccount", "metadata: {name: default}\nsecrets: [{name: t}]\n")[1], "1");
    assert_eq!(row("Lease", "metadata: {name: l}\nspec: {holderIdentity: node-a}\n")[1], "node-a");
    let cr = "metadata: {name: ds-1, ownerReferences: [{apiVersion: apps/v1, kind: DaemonSet, name: ds, uid: u, controller: true}]}\nrevision: 3\ndata: {}\n";
    assert_eq!(row("ControllerRevision", cr)[1..3], ["daemonset.apps/ds", "3"]);
    assert_eq!(row("ControllerRevision", "metadata: {name: x}\nrevision: 1\n")[1], "<none>");
    assert_eq!(row("Namespace", "metadata: {name: ns}\nstatus: {phase: Terminating}\n")[1], "Terminating");
    let sts = "metadata: {name: db}\nspec: {replicas: 3, template: {spec: {containers: [{name: pg, image: postgres}]}}}\n\
               status: {readyReplicas: 1}\n";
    assert_eq!(row("StatefulSet", sts), ["db", "1/3", "<unknown>", "pg", "postgres"]);
}

#[test]
fn rbac_cells() {
    assert_eq!(names("Role", 0), ["Name", "Created At"]);
    assert_eq!(names("ClusterRole", 0), ["Name", "Created At"]);
    assert_eq!(columns("Role")[1].type_, "date");
    let role = "metadata: {name: pod-reader, creationTimestamp: \"2024-05-01T09:00:00Z\"}\n\
                rules: [{verbs: [get], apiGroups: [''], resources: [pods]}]\n";
    assert_eq!(row("Role", role), ["pod-reader", "2024-05-01T09:00:00Z"]);
    assert_eq!(row("ClusterRole", "metadata: {name: x}\n")[1], "0001-01-01T00:00:00Z");

    for kind in ["RoleBinding", "ClusterRoleBinding"] {
        assert_eq!(names(kind, 0), ["Name", "Role", "Age"], "{kind}");
        assert_eq!(names(kind, 1), ["Users", "Groups", "ServiceAccounts"], "{kind}");
    }
    let binding = "metadata: {name: b, creationTimestamp: \"2024-05-01T09:00:00Z\"}\n\
                   roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\n\
                   subjects:\n\
                   - {kind: User, name: alice}\n\
                   - {kind: ServiceAccount, name: sa, namespace: default}\n\
                   - {kind: Group, name: devs}\n\
                   - {kind: User, name: bob}\n\
                   - {kind: ServiceAccount, name: bare}\n\
                   - {kind: Robot, name: r2}\n";
    assert_eq!(
        row("RoleBinding", binding),
        ["b", "ClusterRole/view", "60m", "alice, bob", "devs", "default/sa, bare"]
    );
    assert_eq!(row("ClusterRoleBinding", "metadata: {name: e}\n")[1..], ["/", "<unknown>", "", "", ""]);
}

#[test]
fn certificate_signing_request_cells() {
    assert_eq!(
        names("CertificateSigningRequest", 0),
        ["Name", "Age", "SignerName", "Requestor", "RequestedDuration", "Condition"]
    );
    let csr = "metadata: {name: alice, creationTimestamp: \"2024-05-01T09:59:00Z\"}\n\
               spec: {signerName: kubernetes.io/kube-apiserver-client, username: admin, expirationSeconds: 86400}\n";
    assert_eq!(
        row("CertificateSigningRequest", csr),
        ["alice", "60s", "kubernetes.io/kube-apiserver-client", "admin", "24h", "Pending"]
    );
    let condition = |status: &str| pick("CertificateSigningRequest", status, &["Condition"]).remove(0);
    assert_eq!(condition("status: {conditions: [{type: Approved, status: 'True'}]}\n"), "Approved");
    assert_eq!(
        condition("status: {conditions: [{type: Approved}, {type: Denied}, {type: Failed}]}\n"),
        "Denied,Failed"
    );
    assert_eq!(
        condition("status: {conditions: [{type: Approved}], certificate: LS0tLQ==}\n"),
        "Approved,Issued"
    );
    assert_eq!(condition("status: {certificate: LS0tLQ==}\n"), "Pending,Issued");
    let empty =
        pick("CertificateSigningRequest", "metadata: {name: x}\n", &["SignerName", "RequestedDuration"]);
    assert_eq!(empty, ["<none>", "<none>"]);
    let duration = |seconds: &str| {
        pick(
            "CertificateSigningRequest",
            &format!("spec: {{expirationSeconds: {seconds}}}\n"),
            &["RequestedDuration"],
        )
        .remove(0)
    };
    assert_eq!(duration("600"), "10m");
    assert_eq!(duration("0"), "0s");
    assert_eq!(duration("-1"), "0s");
    assert_eq!(duration("-5"), "<invalid>");
    assert_eq!(duration("2147483647"), "68y");
}

#[test]
fn event_cells() {
    let e = "metadata: {name: web.17a}\n\
             involvedObject: {kind: Pod, name: web, fieldPath: 'spec.containers{app}'}\n\
             reason: BackOff\nmessage: \"  Back-off restarting  \"\ntype: Warning\n\
             source: {component: kubelet, host: node-a}\n\
             firstTimestamp: \"2024-05-01T09:00:00Z\"\nlastTimestamp: \"2024-05-01T09:58:00Z\"\ncount: 7\n";
    assert_eq!(
        cells("Event", &doc(e), now()),
        [
            json!("2m"),
            json!("Warning"),
            json!("BackOff"),
            json!("pod/web"),
            json!("spec.containers{app}"),
            json!("kubelet, node-a"),
            json!("Back-off restarting"),
            json!("60m"),
            json!(7),
            json!("web.17a"),
        ]
    );
    let new_api = "metadata: {name: x}\ninvolvedObject: {kind: Node}\neventTime: \"2024-05-01T09:59:00.000000Z\"\n\
                   reportingComponent: scheduler\n";
    assert_eq!(row("Event", new_api), ["60s", "", "", "node", "", "scheduler", "", "60s", "1", "x"]);
    let series = "metadata: {name: s}\nfirstTimestamp: \"2024-05-01T09:00:00Z\"\n\
                  series: {count: 4, lastObservedTime: \"2024-05-01T09:59:30.000000Z\"}\n";
    assert_eq!(pick("Event", series, &["Last Seen", "First Seen", "Count"]), ["30s", "60m", "4"]);
}

/// Typed objects (what the api-server stores) give the rows their YAML gives: the paths read are the
/// typed objects' JSON names.
#[test]
fn typed_objects_give_the_same_cells() {
    let fixtures = [
        ("Pod", pod("  phase: Running\n  podIPs: [{ip: 10.0.0.1}]\n  containerStatuses:\n  - {name: app, ready: true, restartCount: 1, state: {running: {}}, lastState: {terminated: {exitCode: 1, finishedAt: \"2024-05-01T09:00:00Z\"}}}\n")),
        ("Service", "metadata: {name: s}\nspec: {type: NodePort, clusterIP: 10.96.0.2, ports: [{port: 80, protocol: TCP, nodePort: 30001}], selector: {a: b}}\n".to_string()),
        ("Node", "metadata: {name: n, labels: {node-role.kubernetes.io/worker: ''}}\nstatus: {conditions: [{type: Ready, status: \"True\"}], addresses: [{type: InternalIP, address: 10.0.0.1}]}\n".to_string()),
        ("Deployment", "metadata: {name: d}\nspec: {replicas: 2, selector: {matchLabels: {a: b}}, template: {spec: {containers: [{name: c, image: i}]}}}\nstatus: {readyReplicas: 1}\n".to_string()),
        ("CronJob", "metadata: {name: c}\nspec: {schedule: '@hourly', suspend: true, jobTemplate: {spec: {template: {spec: {containers: [{name: c, image: i}]}}}}}\n".to_string()),
        ("Event", "metadata: {name: e}\ninvolvedObject: {kind: Pod, name: p}\ncount: 3\nlastTimestamp: \"2024-05-01T09:00:00Z\"\n".to_string()),
    ];
    for (kind, yaml) in fixtures {
        let raw: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        let typed = Object::from_value(kind, raw.clone()).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let direct: Value = serde_json::to_value(&raw).unwrap();
        assert_eq!(
            cells(kind, &serde_json::to_value(&typed).unwrap(), now()),
            cells(kind, &direct, now()),
            "{kind}"
        );
    }
}

#[test]
fn json_helpers() {
    let v = json!({"a": {"b": [1, 2], "c": "x", "n": 4, "t": true}});
    assert_eq!(list_at(&v, "a.b").len(), 2);
    assert_eq!(str_at(&v, "a.c"), "x");
    assert_eq!(int_at(&v, "a.n"), 4);
    assert!(bool_at(&v, "a.t") && !bool_at(&v, "a.missing"));
    assert!(at(&v, "a.c.d").is_null());
    assert_eq!(labels_string(&json!({"b": "2", "a": "1"})), "a=1,b=2");
    assert_eq!(labels_string(&json!({})), "<none>");
    assert_eq!(selector_string(&json!({})), "<none>");
    assert_eq!(
        selector_string(&json!({"matchExpressions": [{"key": "k", "operator": "Gt", "values": ["1"]}]})),
        "<error>"
    );
    assert_eq!(
        selector_string(
            &json!({"matchExpressions": [{"key": "z", "operator": "NotIn", "values": ["b", "a"]}, {"key": "e", "operator": "Exists"}]})
        ),
        "e,z notin (a,b)"
    );
}

#[test]
fn storage_tables_are_kubectls() {
    let names = |kind: &str| columns(kind).iter().map(|c| c.name).collect::<Vec<_>>();
    assert_eq!(
        names("PersistentVolume"),
        [
            "Name",
            "Capacity",
            "Access Modes",
            "Reclaim Policy",
            "Status",
            "Claim",
            "StorageClass",
            "VolumeAttributesClass",
            "Reason",
            "Age",
            "VolumeMode"
        ]
    );
    assert_eq!(
        names("PersistentVolumeClaim"),
        [
            "Name",
            "Status",
            "Volume",
            "Capacity",
            "Access Modes",
            "StorageClass",
            "VolumeAttributesClass",
            "Age",
            "VolumeMode"
        ]
    );
    assert_eq!(
        names("StorageClass"),
        ["Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode", "AllowVolumeExpansion", "Age"]
    );
    assert_eq!(columns("PersistentVolume").last().unwrap().priority, 1, "VolumeMode is -o wide");

    let pv = "metadata: {name: pv1, creationTimestamp: \"2024-05-01T09:00:00Z\"}\n\
              spec: {capacity: {storage: 5Gi}, accessModes: [ReadWriteOncePod, ReadOnlyMany, ReadWriteOnce, ReadWriteMany],\n\
              \x20 persistentVolumeReclaimPolicy: Retain, storageClassName: manual, volumeMode: Filesystem,\n\
              \x20 claimRef: {namespace: default, name: data}}\n\
              status: {phase: Bound}\n";
    assert_eq!(
        row("PersistentVolume", pv),
        [
            "pv1",
            "5Gi",
            "RWO,ROX,RWX,RWOP",
            "Retain",
            "Bound",
            "default/data",
            "manual",
            "<unset>",
            "",
            "60m",
            "Filesystem"
        ]
    );
    let released = "metadata: {name: pv2, deletionTimestamp: \"2024-05-01T09:59:00Z\", annotations: \
                    {volume.beta.kubernetes.io/storage-class: old}}\n\
                    spec: {storageClassName: new, volumeAttributesClassName: gold}\nstatus: {phase: Released, reason: Gone}\n";
    assert_eq!(
        row("PersistentVolume", released)[1..10],
        ["0", "", "", "Terminating", "", "old", "gold", "Gone", "<unknown>"]
    );
    assert_eq!(row("PersistentVolume", released)[10], "<unset>");

    let pending = "metadata: {name: data, creationTimestamp: \"2024-05-01T09:58:00Z\"}\n\
                   spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}, storageClassName: local-path, volumeMode: Filesystem}\n\
                   status: {phase: Pending}\n";
    assert_eq!(
        row("PersistentVolumeClaim", pending),
        ["data", "Pending", "", "", "", "local-path", "<unset>", "2m", "Filesystem"]
    );
    let bound = "metadata: {name: data}\nspec: {volumeName: pvc-1, accessModes: [ReadWriteOnce]}\n\
                 status: {phase: Bound, capacity: {storage: 2Gi}, accessModes: [ReadWriteMany, ReadWriteOnce]}\n";
    assert_eq!(row("PersistentVolumeClaim", bound)[1..6], ["Bound", "pvc-1", "2Gi", "RWO,RWX", ""]);

    let default = "metadata: {name: local-path, annotations: {storageclass.kubernetes.io/is-default-class: \"true\"}}\n\
                   provisioner: navarch.io/local-path\nvolumeBindingMode: WaitForFirstConsumer\n";
    assert_eq!(
        cells("StorageClass", &doc(default), now())[..5],
        [
            json!("local-path (default)"),
            json!("navarch.io/local-path"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(false)
        ]
    );
    let beta = "metadata: {name: old, annotations: {storageclass.beta.kubernetes.io/is-default-class: \"true\"}}\n\
                provisioner: p\nreclaimPolicy: Retain\nallowVolumeExpansion: true\n";
    assert_eq!(row("StorageClass", beta)[..5], ["old (default)", "p", "Retain", "Immediate", "true"]);
    let plain = "metadata: {name: x, annotations: {storageclass.kubernetes.io/is-default-class: \"false\"}}\nprovisioner: p\n";
    assert_eq!(row("StorageClass", plain)[0], "x");
}

#[test]
fn resource_quota_rows() {
    let names: Vec<&str> = columns("ResourceQuota").iter().map(|c| c.name).collect();
    assert_eq!(names, ["Name", "Age", "Request", "Limit"]);
    let q = "metadata: {name: compute, creationTimestamp: \"2024-05-01T09:58:00Z\"}\n\
             status: {hard: {requests.memory: 2Gi, pods: \"10\", limits.cpu: \"2\", limits.memory: 1.5Gi},\n\
                      used: {requests.memory: \"0\", pods: \"3\", limits.cpu: 500m}}\n";
    assert_eq!(
        row("ResourceQuota", q),
        [
            "compute",
            "2m",
            "pods: 3/10, requests.memory: 0/2Gi",
            "limits.cpu: 500m/2, limits.memory: 0/1536Mi"
        ]
    );
    assert_eq!(row("ResourceQuota", "metadata: {name: new}\n")[2..], ["", ""]);
}

#[test]
fn priority_class_rows() {
    let names: Vec<&str> = columns("PriorityClass").iter().map(|c| c.name).collect();
    assert_eq!(names, ["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"]);
    assert!(columns("PriorityClass").iter().all(|c| c.priority == 0), "kubectl shows every column");
    let pc = "metadata: {name: high, creationTimestamp: \"2024-05-01T09:58:00Z\"}\n\
              value: 1000000\nglobalDefault: true\npreemptionPolicy: Never\n";
    assert_eq!(
        cells("PriorityClass", &doc(pc), now()),
        [json!("high"), json!(1000000), json!(true), json!("2m"), json!("Never")]
    );
    assert_eq!(row("PriorityClass", "metadata: {name: low}\nvalue: -5\n")[1..3], ["-5", "false"]);
}
