//! Each identity a navarch component runs as holds only its least-privilege rules, as the real kubectl
//! (1.32) lists them with `kubectl auth can-i --list` (a SelfSubjectRulesReview) from a kubeconfig with
//! that identity's client certificate: what the component needs is there, and nothing broad is (no
//! `*.*` with `[*]`, no Secrets for those that do not handle them, no writing RBAC objects, no
//! impersonation, exec or kubelet proxy). `kubectl auth can-i` answers (exit 0 yes, 1 no) check the
//! same through the authorizer chain, the Node authorizer included.
//!
//! The rules are Kubernetes' bootstrap policy (`system:kube-scheduler`, `system:node-proxier`,
//! `system:node` through the Node authorizer), the controller-manager's being the union of the
//! `system:controller:*` roles of the controllers it runs (one identity, as kube-controller-manager
//! without `--use-service-account-credentials`), and cluster-dns's navarch's own
//! (`system:navarch:cluster-dns`: reading what it serves, registering itself in `kube-system`).

use std::collections::BTreeSet;

use navarch_tests::{Kubectl, TestEnv};

/// One line of `kubectl auth can-i --list`. kubectl breaks the rules down to one resource (and name)
/// each and merges the verbs of a resource: `pods/binding`, `leases.coordination.k8s.io` (and
/// `deployments.apps/status`), `*.*`; non-resource lines have no resource and one URL.
#[derive(Debug)]
struct Line {
    resource: String,
    urls: String,
    names: BTreeSet<String>,
    verbs: BTreeSet<String>,
}

/// `[a b c]` (Go's printing of a slice).
fn list(cell: &str) -> BTreeSet<String> {
    cell.trim().trim_start_matches('[').trim_end_matches(']').split_whitespace().map(String::from).collect()
}

/// The lines of kubectl's table, cut at the columns of its header.
fn parse(table: &str) -> Vec<Line> {
    let mut lines = table.lines();
    let header = lines.next().expect("a header");
    let at = |title: &str| header.find(title).unwrap_or_else(|| panic!("no column {title:?}: {table}"));
    let cuts = [0, at("Non-Resource URLs"), at("Resource Names"), at("Verbs"), usize::MAX];
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cell = |i: usize| l.get(cuts[i]..cuts[i + 1].min(l.len())).unwrap_or("").trim();
            Line {
                resource: cell(0).into(),
                urls: cell(1).into(),
                names: list(cell(2)),
                verbs: list(cell(3)),
            }
        })
        .collect()
}

/// kubectl's `resource.group/subresource` as (resource, group, subresource).
fn split(spelled: &str) -> (&str, &str, &str) {
    let (head, sub) = spelled.split_once('/').unwrap_or((spelled, ""));
    let (resource, group) = head.split_once('.').unwrap_or((head, ""));
    (resource, group, sub)
}

impl Line {
    /// Whether this line allows `verb` on `resource` (kubectl's spelling), for any name when `name`
    /// is `None`.
    fn allows(&self, verb: &str, resource: &str, name: Option<&str>) -> bool {
        let (r, g, s) = split(&self.resource);
        let (want_r, want_g, want_s) = split(resource);
        let names = self.names.is_empty() || name.is_some_and(|n| self.names.contains(n));
        !self.resource.is_empty()
            && (self.verbs.contains(verb) || self.verbs.contains("*"))
            && (g == "*" || g == want_g)
            && (r == "*" || (r == want_r && s == want_s))
            && names
    }
}

/// The rules of one identity, as kubectl listed them.
struct Rules {
    who: &'static str,
    lines: Vec<Line>,
    text: String,
}

impl Rules {
    fn may(&self, verb: &str, resource: &str) -> bool {
        self.lines.iter().any(|l| l.allows(verb, resource, None))
    }

    fn may_named(&self, verb: &str, resource: &str, name: &str) -> bool {
        self.lines.iter().any(|l| l.allows(verb, resource, Some(name)))
    }

    /// Every `(verb, resource)` of `wanted` is allowed (for any name).
    fn has(&self, wanted: &[(&str, &str)]) {
        for (verb, resource) in wanted {
            assert!(self.may(verb, resource), "{} may not {verb} {resource}:\n{}", self.who, self.text);
        }
    }

    /// No `(verb, resource)` of `refused` is allowed, not even for one name.
    fn lacks(&self, refused: &[(&str, &str)]) {
        for (verb, resource) in refused {
            let line = self.lines.iter().find(|l| {
                l.allows(verb, resource, None) || l.names.iter().any(|n| l.allows(verb, resource, Some(n)))
            });
            assert!(line.is_none(), "{} may {verb} {resource} ({line:?}):\n{}", self.who, self.text);
        }
    }

    /// The resources of the lines, each with its names and verbs, sorted: for comparing a whole list.
    fn resource_lines(&self) -> BTreeSet<(String, Vec<String>, Vec<String>)> {
        self.lines
            .iter()
            .filter(|l| !l.resource.is_empty())
            .map(|l| {
                (l.resource.clone(), l.names.iter().cloned().collect(), l.verbs.iter().cloned().collect())
            })
            .collect()
    }

    /// What no component identity may do, but for the `(verb, resource)` pairs of `except`: everything
    /// (`*.*` or a `*` URL with `[*]`), impersonate, reach into pods (exec, attach, port-forward) or
    /// through the kubelet (`nodes/proxy`), or write RBAC objects (create, bind, escalate, update,
    /// patch, delete).
    fn nothing_broad(&self, except: &[(&str, &str)]) {
        for l in &self.lines {
            let everything = split(&l.resource).0 == "*" || l.urls == "[*]";
            assert!(!(everything && l.verbs.contains("*")), "{}: {l:?}\n{}", self.who, self.text);
        }
        let mut refused = vec![
            ("impersonate", "users"),
            ("impersonate", "groups"),
            ("impersonate", "serviceaccounts"),
            ("create", "pods/exec"),
            ("create", "pods/attach"),
            ("create", "pods/portforward"),
            ("get", "nodes/proxy"),
            ("create", "nodes/proxy"),
        ];
        for kind in RBAC_KINDS {
            for verb in ["create", "bind", "escalate", "update", "patch", "delete"] {
                refused.push((verb, kind));
            }
        }
        refused.retain(|r| !except.contains(r));
        self.lacks(&refused);
    }
}

const RBAC_KINDS: [&str; 4] = [
    "roles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
    "clusterroles.rbac.authorization.k8s.io",
    "clusterrolebindings.rbac.authorization.k8s.io",
];

/// What every authenticated user gets (`system:basic-user` through `system:authenticated`).
const BASIC: &[(&str, &str)] = &[
    ("create", "selfsubjectaccessreviews.authorization.k8s.io"),
    ("create", "selfsubjectrulesreviews.authorization.k8s.io"),
    ("create", "selfsubjectreviews.authentication.k8s.io"),
];

/// `(resource, names, verbs)` lines as [`Rules::resource_lines`] gives them.
fn lines_of(expected: &[(&str, &[&str], &[&str])]) -> BTreeSet<(String, Vec<String>, Vec<String>)> {
    let sorted = |items: &[&str]| {
        let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    expected.iter().map(|(r, names, verbs)| (r.to_string(), sorted(names), sorted(verbs))).collect()
}

/// The basic lines: one per resource of [`BASIC`].
fn basic_lines() -> Vec<(&'static str, &'static [&'static str], &'static [&'static str])> {
    BASIC.iter().map(|(_, r)| (*r, &[] as &[&str], &["create"] as &[&str])).collect()
}

/// An identity's kubectl: the component certificate `<stem>` of the cluster's PKI.
struct Identity {
    who: &'static str,
    kubectl: Kubectl,
}

impl Identity {
    fn new(env: &TestEnv, who: &'static str, stem: &str) -> Identity {
        let kubectl = Kubectl::with_kubeconfig(&env.pki().kubeconfig(stem, &env.api_server_url()));
        Identity { who, kubectl }
    }

    /// `kubectl auth whoami` names the identity: the certificate is the component's.
    async fn is(&self, user: &str, groups: &[&str]) {
        let out = self.kubectl.ok(&["auth", "whoami", "-o", "json"]).await;
        let review: serde_json::Value = serde_json::from_str(&out).expect("a SelfSubjectReview");
        let info = &review["status"]["userInfo"];
        assert_eq!(info["username"], user, "{out}");
        for g in groups.iter().chain(&["system:authenticated"]) {
            assert!(info["groups"].as_array().is_some_and(|a| a.iter().any(|x| x == g)), "{g}: {out}");
        }
    }

    /// `kubectl auth can-i --list` (in `namespace`).
    async fn rules(&self, namespace: &str) -> Rules {
        let out = self.kubectl.run(&["auth", "can-i", "--list", "-n", namespace]).await;
        assert_eq!(out.code, 0, "{}: {out:?}", self.who);
        Rules { who: self.who, lines: parse(&out.stdout), text: format!("{}{}", out.stdout, out.stderr) }
    }

    /// `kubectl auth can-i <args>` answers `allowed`: "yes" with exit code 0, "no" with 1.
    async fn answers(&self, args: &[&str], allowed: bool) {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        let out = self.kubectl.run(&all).await;
        let (code, answer) = if allowed { (0, "yes") } else { (1, "no") };
        assert!(
            out.code == code && out.stdout.lines().next().is_some_and(|l| l.starts_with(answer)),
            "{}: kubectl {all:?} should answer {answer}: {out:?}",
            self.who
        );
    }

    async fn can(&self, args: &[&str]) {
        self.answers(args, true).await;
    }

    async fn cannot(&self, args: &[&str]) {
        self.answers(args, false).await;
    }
}

/// A cluster, and kubectl as the component whose certificate is `<stem>` (checked to name `user`).
async fn component(stem: &'static str, user: &str) -> (TestEnv, Identity) {
    let env = TestEnv::start().await;
    let identity = Identity::new(&env, stem, stem);
    identity.is(user, &[]).await;
    (env, identity)
}

/// Reading Secrets, which these identities never need.
const SECRETS: &[(&str, &str)] = &[("get", "secrets"), ("list", "secrets"), ("watch", "secrets")];

#[tokio::test(flavor = "multi_thread")]
async fn scheduler_binds_pods_and_reads_what_scheduling_needs() {
    let (_env, scheduler) = component("scheduler", "system:kube-scheduler").await;
    let rules = scheduler.rules("default").await;
    rules.has(BASIC);
    rules.has(&[
        ("create", "pods/binding"),
        ("create", "bindings"),
        ("get", "pods"),
        ("list", "pods"),
        ("watch", "pods"),
        ("delete", "pods"),
        ("update", "pods/status"),
        ("patch", "pods/status"),
        ("list", "nodes"),
        ("watch", "nodes"),
        ("list", "services"),
        ("list", "replicasets.apps"),
        ("list", "statefulsets.apps"),
        ("list", "poddisruptionbudgets.policy"),
        ("list", "persistentvolumeclaims"),
        ("list", "csinodes.storage.k8s.io"),
        ("list", "namespaces"),
        ("create", "events"),
        ("create", "events.events.k8s.io"),
        ("create", "leases.coordination.k8s.io"),
    ]);
    assert!(rules.may_named("update", "leases.coordination.k8s.io", "kube-scheduler"), "{}", rules.text);
    rules.lacks(SECRETS);
    assert!(!rules.may("update", "leases.coordination.k8s.io"), "only its own lease:\n{}", rules.text);
    rules.lacks(&[
        ("create", "pods"),
        ("update", "pods"),
        ("patch", "pods"),
        ("update", "nodes"),
        ("patch", "nodes"),
        ("delete", "nodes"),
        ("create", "deployments.apps"),
        ("update", "replicasets.apps"),
        ("get", "configmaps"),
        ("create", "serviceaccounts/token"),
        ("update", "services"),
        ("create", "certificatesigningrequests.certificates.k8s.io"),
    ]);
    rules.nothing_broad(&[]);
    assert!(rules.lines.iter().all(|l| split(&l.resource).0 != "*"), "no wildcard at all:\n{}", rules.text);

    scheduler.can(&["create", "pods", "--subresource=binding"]).await;
    scheduler.can(&["list", "nodes"]).await;
    scheduler.cannot(&["list", "secrets", "--all-namespaces"]).await;
    scheduler.cannot(&["get", "secrets", "-n", "kube-system"]).await;
    scheduler.cannot(&["create", "pods"]).await;
    scheduler
        .cannot(&["update", "leases.coordination.k8s.io/kube-controller-manager", "-n", "kube-system"])
        .await;
    scheduler.can(&["update", "leases.coordination.k8s.io/kube-scheduler", "-n", "kube-system"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kube_proxy_reads_services_endpoints_and_nodes_only() {
    let (_env, proxy) = component("kube-proxy", "system:kube-proxy").await;
    let rules = proxy.rules("default").await;
    // The whole list: system:node-proxier, what every user has, and asking for its next client
    // certificate (navarch's kube-proxy runs with one, not with a ServiceAccount token).
    let mut expected = vec![
        ("services", &[] as &[&str], &["list", "watch"] as &[&str]),
        ("endpoints", &[], &["list", "watch"]),
        ("endpointslices.discovery.k8s.io", &[], &["list", "watch"]),
        ("nodes", &[], &["get", "list", "watch"]),
        ("events", &[], &["create", "patch", "update"]),
        ("events.events.k8s.io", &[], &["create", "patch", "update"]),
        ("certificatesigningrequests.certificates.k8s.io", &[], &["create", "get", "list", "watch"]),
        ("certificatesigningrequests.certificates.k8s.io/kubeproxyclient", &[], &["create"]),
    ];
    expected.extend(basic_lines());
    assert_eq!(rules.resource_lines(), lines_of(&expected), "{}", rules.text);
    rules.lacks(SECRETS);
    rules.lacks(&[("get", "services"), ("get", "pods"), ("list", "pods"), ("list", "configmaps")]);
    rules.nothing_broad(&[]);

    // (EndpointSlices are in its role, as in Kubernetes', but navarch does not serve them yet: kubectl
    // cannot resolve the resource to ask about it.)
    proxy.can(&["list", "endpoints", "--all-namespaces"]).await;
    proxy.can(&["watch", "services", "--all-namespaces"]).await;
    proxy.cannot(&["list", "secrets", "--all-namespaces"]).await;
    proxy.cannot(&["create", "services"]).await;
    proxy.cannot(&["update", "endpoints"]).await;
    proxy.cannot(&["patch", "nodes/node-1", "--subresource=status"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_dns_reads_what_it_serves_and_registers_only_itself() {
    let (_env, dns) = component("cluster-dns", "system:navarch:cluster-dns").await;
    let mut expected: Vec<(&str, &[&str], &[&str])> = vec![
        ("services", &[], &["get", "list", "watch"]),
        ("endpoints", &[], &["get", "list", "watch"]),
        ("namespaces", &[], &["get", "list", "watch"]),
        ("endpointslices.discovery.k8s.io", &[], &["get", "list", "watch"]),
    ];
    expected.extend(basic_lines());
    let rules = dns.rules("default").await;
    assert_eq!(rules.resource_lines(), lines_of(&expected), "in default: {}", rules.text);
    rules.lacks(SECRETS);
    rules.lacks(&[
        ("create", "services"),
        ("create", "endpoints"),
        ("update", "endpoints"),
        ("list", "pods"),
    ]);
    rules.nothing_broad(&[]);

    // In kube-system it may also create the kube-dns Service and Endpoints and keep those Endpoints
    // current (kubectl merges the verbs of a resource: the reads and the create on one line).
    let rules = dns.rules("kube-system").await;
    let mut expected: Vec<(&str, &[&str], &[&str])> = vec![
        ("services", &[], &["create", "get", "list", "watch"]),
        ("endpoints", &[], &["create", "get", "list", "watch"]),
        ("endpoints", &["kube-dns"], &["get", "update"]),
        ("namespaces", &[], &["get", "list", "watch"]),
        ("endpointslices.discovery.k8s.io", &[], &["get", "list", "watch"]),
    ];
    expected.extend(basic_lines());
    assert_eq!(rules.resource_lines(), lines_of(&expected), "in kube-system: {}", rules.text);
    rules.lacks(SECRETS);
    assert!(!rules.may("update", "endpoints"), "only kube-dns's Endpoints:\n{}", rules.text);
    rules.lacks(&[("update", "services"), ("delete", "services"), ("delete", "endpoints")]);
    rules.nothing_broad(&[]);

    dns.can(&["watch", "services", "--all-namespaces"]).await;
    dns.can(&["update", "endpoints/kube-dns", "-n", "kube-system"]).await;
    dns.cannot(&["update", "endpoints/kubernetes", "-n", "default"]).await;
    dns.cannot(&["update", "endpoints/other", "-n", "kube-system"]).await;
    dns.cannot(&["create", "services", "-n", "default"]).await;
    dns.cannot(&["list", "secrets", "--all-namespaces"]).await;
    dns.cannot(&["list", "pods", "--all-namespaces"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn controller_manager_holds_its_controllers_rules_and_cannot_grant_rbac() {
    let (_env, cm) = component("controller-manager", "system:kube-controller-manager").await;
    let rules = cm.rules("default").await;
    rules.has(BASIC);
    rules.has(&[
        ("list", "*.*"),
        ("watch", "*.*"),
        ("create", "pods"),
        ("delete", "pods"),
        ("create", "replicasets.apps"),
        ("update", "deployments.apps/status"),
        ("update", "replicasets.apps/status"),
        // The Job controller: status, and the tracking finalizer of pods.
        ("update", "jobs.batch/status"),
        ("update", "pods"),
        ("create", "endpoints"),
        ("update", "namespaces/finalize"),
        ("create", "serviceaccounts"),
        ("create", "serviceaccounts/token"),
        ("create", "configmaps"),
        ("update", "configmaps"),
        ("update", "nodes/status"),
        ("update", "certificatesigningrequests.certificates.k8s.io/approval"),
        ("update", "certificatesigningrequests.certificates.k8s.io/status"),
        ("create", "subjectaccessreviews.authorization.k8s.io"),
        ("create", "tokenreviews.authentication.k8s.io"),
        ("create", "events"),
        // The ClusterRole aggregation controller writes any rule into an aggregated role.
        ("escalate", "clusterroles.rbac.authorization.k8s.io"),
        ("update", "clusterroles.rbac.authorization.k8s.io"),
    ]);
    assert!(
        rules.may_named("update", "leases.coordination.k8s.io", "kube-controller-manager"),
        "{}",
        rules.text
    );
    assert!(
        rules.may_named("sign", "signers.certificates.k8s.io", "kubernetes.io/kube-apiserver-client-kubelet"),
        "{}",
        rules.text
    );
    // Its one wildcard line is the garbage collector's and the namespace controller's (read, change
    // owner references, delete): never `*`, never create, bind, escalate or impersonate.
    let wildcard: Vec<&Line> = rules.lines.iter().filter(|l| l.resource == "*.*").collect();
    assert_eq!(wildcard.len(), 1, "{}", rules.text);
    let verbs: Vec<&str> = wildcard[0].verbs.iter().map(String::as_str).collect();
    assert_eq!(
        verbs,
        ["delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        "{}",
        rules.text
    );
    rules.lacks(&[
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
        ("create", "rolebindings.rbac.authorization.k8s.io"),
        ("create", "clusterroles.rbac.authorization.k8s.io"),
        ("create", "roles.rbac.authorization.k8s.io"),
        ("bind", "clusterroles.rbac.authorization.k8s.io"),
        ("bind", "roles.rbac.authorization.k8s.io"),
        ("escalate", "roles.rbac.authorization.k8s.io"),
        ("create", "deployments.apps"),
        ("create", "nodes"),
        ("create", "services"),
    ]);
    // The wildcard line changes and deletes RBAC objects too, and reads `nodes/proxy` (as Kubernetes'
    // generic-garbage-collector role does); escalate is the aggregation controller's, on ClusterRoles.
    let mut except = vec![("escalate", RBAC_KINDS[2]), ("get", "nodes/proxy")];
    for kind in RBAC_KINDS {
        except.extend([("update", kind), ("patch", kind), ("delete", kind)]);
    }
    rules.nothing_broad(&except);

    cm.can(&["escalate", "clusterroles"]).await;
    cm.can(&["list", "secrets", "--all-namespaces"]).await; // its informers list everything
    cm.can(&["create", "pods", "-n", "default"]).await;
    cm.cannot(&["bind", "clusterroles"]).await;
    cm.cannot(&["create", "clusterrolebindings"]).await;
    cm.cannot(&["create", "rolebindings", "-n", "kube-system"]).await;
    cm.cannot(&["impersonate", "users"]).await;
    cm.cannot(&["create", "pods", "--subresource=exec"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_lists_only_rbac_rules_and_the_node_authorizer_decides_the_rest() {
    let env = TestEnv::start().await;
    env.pki().node("node-1", &["127.0.0.1".parse().expect("an address")]);
    let node = Identity::new(&env, "node-1", "nodes/node-1/kubelet-client");
    node.is("system:node:node-1", &["system:nodes"]).await;
    let out = node.kubectl.run(&["auth", "can-i", "--list"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    // Kubernetes' answer: the Node authorizer cannot list a node's rules, so the list is incomplete.
    assert!(
        out.stderr.contains("the list may be incomplete")
            && out.stderr.contains("node authorizer does not support user rule resolution"),
        "{out:?}"
    );
    let rules = Rules { who: "node-1", lines: parse(&out.stdout), text: out.stdout.clone() };
    // What RBAC binds to system:nodes (system:node itself is bound to nobody): renewing its own
    // client certificate.
    let mut expected = basic_lines();
    expected.push(("certificatesigningrequests.certificates.k8s.io/selfnodeclient", &[], &["create"]));
    assert_eq!(rules.resource_lines(), lines_of(&expected), "{}", rules.text);
    rules.nothing_broad(&[]);

    node.can(&["get", "nodes/node-1"]).await;
    node.cannot(&["get", "nodes/node-2"]).await;
    node.cannot(&["list", "nodes"]).await;
    node.can(&["create", "certificatesigningrequests.certificates.k8s.io", "--subresource=selfnodeclient"])
        .await;
    node.cannot(&["create", "deployments"]).await;
    node.cannot(&["create", "deployments.apps", "-n", "kube-system"]).await;
    node.cannot(&["list", "secrets", "--all-namespaces"]).await;
    node.cannot(&["list", "secrets"]).await;
    node.cannot(&["get", "secrets/anything"]).await; // no pod of node-1 uses it
    node.cannot(&["create", "clusterrolebindings"]).await;
    node.cannot(&["delete", "nodes/node-2"]).await;
    node.cannot(&["create", "pods", "--subresource=exec"]).await;
}
