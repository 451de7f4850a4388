//! navctl end to end: the built `navctl` binary against a real etcd + api-server (TestEnv).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use navarch_tests::TestEnv;
use serde_yaml::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The navctl binary (built by the test environment if missing).
fn navctl_bin() -> PathBuf {
    navarch_tests::binary("ctl", "navctl")
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs navctl against one api-server, isolated from the user's config: its own `$HOME` whose
/// `.navarch/config.yaml` names the kubeconfig to use, as `make up` writes it.
struct Navctl {
    home: PathBuf,
}

impl Navctl {
    /// With the config file `kubeconfig: <kubeconfig>`, or no config file.
    fn new(kubeconfig: Option<&std::path::Path>) -> Navctl {
        let home = std::env::temp_dir().join(format!("navctl-it-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(home.join(".navarch")).unwrap();
        if let Some(k) = kubeconfig {
            std::fs::write(home.join(".navarch/config.yaml"), format!("kubeconfig: {}\n", k.display()))
                .unwrap();
        }
        Navctl { home }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(navctl_bin());
        c.args(args)
            .env("HOME", &self.home)
            .env_remove("NAVCTL_SERVER")
            .env_remove("NAVCTL_CONFIG")
            .env_remove("NAVCTL_KUBECONFIG")
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str]) -> Out {
        self.run_stdin(args, None).await
    }

    async fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Out {
        use tokio::io::AsyncWriteExt;
        let mut c = self.command(args);
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawning navctl");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("navctl hung")
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert_eq!(out.code, 0, "navctl {args:?}: {out:?}");
        out.stdout
    }

    async fn apply(&self, manifest: &str) -> Out {
        self.run_stdin(&["apply", "-f", "-"], Some(manifest)).await
    }
}

impl Drop for Navctl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    h.finish()
}

async fn start() -> (TestEnv, Navctl) {
    let env = TestEnv::start().await;
    let navctl = Navctl::new(Some(&env.admin_kubeconfig()));
    (env, navctl)
}

const NS: &str = "navctl-e2e";

fn app_manifest(replicas: i32, config_value: &str, extra_label: bool) -> String {
    let extra = if extra_label { "\n    extra: \"yes\"" } else { "" };
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {NS}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  namespace: {NS}
  labels:
    app: web{extra}
data:
  greeting: {config_value}
  mode: production
---
apiVersion: v1
kind: Secret
metadata:
  name: app-secret
  namespace: {NS}
type: Opaque
data:
  password: c2VjcmV0
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {NS}
  labels:
    app: web
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
        resources:
          requests:
            cpu: 100m
            memory: 64Mi
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: {NS}
spec:
  type: NodePort
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 80
    protocol: TCP
---
apiVersion: v1
kind: Pod
metadata:
  name: standalone
  namespace: {NS}
  labels:
    app: standalone
spec:
  containers:
  - name: busybox
    image: busybox:1.36
    command: ["sleep", "3600"]
"#
    )
}

/// Every field of `want` is in `got` with the same value (maps: subset; lists: same length, each
/// element a subset), so server-added fields are ignored. Returns the first difference.
fn contains(got: &Value, want: &Value, path: &str) -> Result<(), String> {
    match (got, want) {
        (Value::Mapping(g), Value::Mapping(w)) => {
            for (k, wv) in w {
                let key = k.as_str().unwrap_or("?");
                let p = if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
                match g.get(k) {
                    Some(gv) => contains(gv, wv, &p)?,
                    None => return Err(format!("{p}: missing in the output")),
                }
            }
            Ok(())
        }
        (Value::Sequence(g), Value::Sequence(w)) => {
            if g.len() != w.len() {
                return Err(format!("{path}: {} items, want {}", g.len(), w.len()));
            }
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                contains(gv, wv, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (g, w) if g == w => Ok(()),
        (g, w) => Err(format!("{path}: got {g:?}, want {w:?}")),
    }
}

fn docs(manifest: &str) -> Vec<Value> {
    manifest.split("\n---\n").map(|d| serde_yaml::from_str(d).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_get_roundtrip_reapply_and_delete() {
    let (_env, navctl) = start().await;
    let manifest = app_manifest(2, "hello", true);

    let out = navctl.apply(&manifest).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "namespace/{NS} created\nconfigmap/app-config created\nsecret/app-secret created\n\
             deployment.apps/web created\nservice/web created\npod/standalone created\n"
        )
    );

    // get shows them all, with kubectl's columns.
    let tables = navctl.ok(&["get", "cm,secret,deploy,svc,po", "-n", NS]).await;
    for row in
        ["configmap/app-config", "secret/app-secret", "deployment.apps/web", "service/web", "pod/standalone"]
    {
        assert!(tables.contains(row), "{row} missing from\n{tables}");
    }
    let svc = navctl.ok(&["get", "svc", "web", "-n", NS]).await;
    assert!(svc.starts_with("NAME   TYPE       CLUSTER-IP"), "{svc}");
    assert!(svc.lines().nth(1).is_some_and(|row| row.contains("NodePort") && row.contains("   80")), "{svc}");
    let deploy = navctl.ok(&["get", "deploy", "-n", NS]).await;
    assert!(deploy.starts_with("NAME   READY   UP-TO-DATE   AVAILABLE   AGE\nweb    0/2"), "{deploy}");

    // -o yaml round-trips every given field.
    for doc in docs(&manifest) {
        let kind = doc["kind"].as_str().unwrap();
        let name = doc["metadata"]["name"].as_str().unwrap();
        let yaml = navctl.ok(&["get", &format!("{kind}/{name}"), "-n", NS, "-o", "yaml"]).await;
        let got: Value = serde_yaml::from_str(&yaml).unwrap();
        assert!(yaml.starts_with("apiVersion: "), "{yaml}");
        if let Err(diff) = contains(&got, &doc, "") {
            panic!("{kind}/{name} does not round-trip: {diff}\n{yaml}");
        }
    }
    let json = navctl.ok(&["get", "cm", "-n", NS, "-o", "json"]).await;
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["metadata"]["name"], "app-config");
    assert_eq!(navctl.ok(&["get", "deploy", "-n", NS, "-o", "name"]).await, "deployment.apps/web\n");

    // Re-applying the same manifest changes nothing.
    let out = navctl.apply(&manifest).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.lines().all(|l| l.ends_with(" unchanged")), "{out:?}");

    // An edit is configured and visible; the rest stays unchanged.
    let edited = app_manifest(3, "bonjour", true);
    let out = navctl.apply(&edited).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("configmap/app-config configured\n"), "{out:?}");
    assert!(out.stdout.contains("deployment.apps/web configured\n"), "{out:?}");
    assert!(out.stdout.contains("service/web unchanged\n"), "{out:?}");
    let cm = navctl.ok(&["get", "cm", "app-config", "-n", NS, "-o", "yaml"]).await;
    assert!(cm.contains("greeting: bonjour"), "{cm}");
    let replicas = navctl.ok(&["get", "deploy", "web", "-n", NS, "-o", "json"]).await;
    let replicas: serde_json::Value = serde_json::from_str(&replicas).unwrap();
    assert_eq!(replicas["spec"]["replicas"], 3);

    // A field removed from the manifest is removed from the object; fields set by others are kept.
    navctl.ok(&["label", "cm", "app-config", "-n", NS, "by-hand=kept"]).await;
    let removed = app_manifest(3, "bonjour", false);
    let out = navctl.apply(&removed).await;
    assert!(out.stdout.contains("configmap/app-config configured\n"), "{out:?}");
    let labels = navctl.ok(&["get", "cm", "app-config", "-n", NS, "--show-labels", "--no-headers"]).await;
    assert!(labels.contains("app=web") && labels.contains("by-hand=kept"), "{labels}");
    assert!(!labels.contains("extra"), "{labels}");

    // describe has kubectl's sections.
    let d = navctl.ok(&["describe", "deploy", "web", "-n", NS]).await;
    assert!(d.starts_with("Name:"), "{d}");
    assert!(d.contains("Namespace:") && d.contains("Replicas:") && d.contains("nginx:1.25"), "{d}");

    // delete removes, then get reports NotFound.
    let out = navctl.run(&["delete", "-n", NS, "cm", "app-config", "--wait=false"]).await;
    assert_eq!(out.stdout, "configmap \"app-config\" deleted\n", "{out:?}");
    let out = navctl.run(&["get", "cm", "app-config", "-n", NS]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stderr, "Error from server (NotFound): configmaps \"app-config\" not found\n");
    let out = navctl.run(&["delete", "cm", "app-config", "-n", NS]).await;
    assert_eq!(out.code, 1, "{out:?}");
    let out = navctl.run(&["delete", "cm", "app-config", "-n", NS, "--ignore-not-found"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = navctl.run_stdin(&["delete", "-f", "-", "--wait=false"], Some(&removed)).await;
    assert!(out.stdout.contains("service \"web\" deleted"), "{out:?}");
    assert!(out.stderr.contains("Error from server (NotFound)"), "app-config was already gone: {out:?}");
    assert_eq!(out.code, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn replace_with_stale_resource_version_is_a_conflict() {
    let (_env, navctl) = start().await;
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rv\ndata:\n  a: \"1\"\n";
    let out = navctl.run_stdin(&["create", "-f", "-"], Some(cm)).await;
    assert_eq!(out.stdout, "configmap/rv created\n", "{out:?}");
    let out = navctl.run_stdin(&["create", "-f", "-"], Some(cm)).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("Error from server (AlreadyExists): "), "{out:?}");

    let stale = navctl.ok(&["get", "cm", "rv", "-o", "yaml"]).await;
    navctl.ok(&["annotate", "cm", "rv", "touched=yes"]).await;
    let stale = stale.replace("a: \"1\"", "a: \"2\"").replace("a: '1'", "a: '2'");
    let out = navctl.run_stdin(&["replace", "-f", "-"], Some(&stale)).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.starts_with("Error from server (Conflict): "), "{out:?}");

    // Without a resourceVersion, replace uses the live one.
    let fresh = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rv\ndata:\n  a: \"3\"\n";
    let out = navctl.run_stdin(&["replace", "-f", "-"], Some(fresh)).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, "configmap/rv replaced\n"), "{out:?}");

    // annotate refuses to change an existing key without --overwrite.
    let out = navctl.run(&["annotate", "cm", "rv", "note=first"]).await;
    assert_eq!(out.stdout, "configmap/rv annotated\n", "{out:?}");
    let out = navctl.run(&["annotate", "cm", "rv", "note=second"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("'note' already has a value (first), and --overwrite is false"), "{out:?}");
    let out = navctl.run(&["annotate", "cm", "rv", "note=second", "--overwrite"]).await;
    assert_eq!(out.stdout, "configmap/rv annotated\n", "{out:?}");
    let out = navctl.run(&["label", "cm", "rv", "x=1"]).await;
    assert_eq!(out.stdout, "configmap/rv labeled\n", "{out:?}");
    let out = navctl.run(&["label", "cm", "rv", "x=2"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("'x' already has a value (1), and --overwrite is false"), "{out:?}");
    navctl.ok(&["label", "cm", "rv", "x=2", "--overwrite"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_manifests_store_nothing() {
    let (_env, navctl) = start().await;
    let good = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: innocent\ndata:\n  a: b\n---\n";
    let deploy = |spec: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: broken\nspec:\n{spec}  selector:\n    matchLabels: {{app: x}}\n  template:\n    metadata:\n      labels: {{app: x}}\n    spec:\n      containers: [{{name: c, image: busybox}}]\n"
        )
    };
    // Rejected while reading: nothing at all is sent, not even the good ConfigMap before it.
    let parse_cases = [
        ("bad yaml", format!("{good}apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: [\n"), "invalid YAML"),
        ("unknown field", format!("{good}{}", deploy("  replicaz: 2\n")), "spec.replicaz: unknown field"),
        ("wrong type", format!("{good}{}", deploy("  replicas: three\n")), "spec.replicas: invalid type"),
        (
            "unknown kind",
            format!("{good}apiVersion: v1\nkind: Frob\nmetadata: {{name: f}}\n"),
            "kind: unknown kind \"Frob\"",
        ),
    ];
    for (what, manifest, want) in parse_cases {
        let out = navctl.apply(&manifest).await;
        assert_eq!(out.code, 1, "{what}: {out:?}");
        assert!(out.stdout.is_empty(), "{what}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{what}: one error: {out:?}");
        assert!(out.stderr.starts_with("error: -: document "), "{what}: {out:?}");
        assert!(out.stderr.contains(want), "{what}: {out:?}");
        let out = navctl.run(&["get", "cm", "innocent"]).await;
        assert_eq!(out.code, 1, "{what}: nothing stored: {out:?}");
    }
    // Rejected by the api-server's validation: one error naming the field, nothing stored.
    let server_cases = [
        (
            "invalid name",
            deploy("  replicas: 1\n").replace("name: broken", "name: Broken_Name"),
            "metadata.name",
        ),
        ("negative replicas", deploy("  replicas: -1\n"), "spec.replicas"),
    ];
    for (what, manifest, want) in server_cases {
        let out = navctl.apply(&manifest).await;
        assert_eq!(out.code, 1, "{what}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{what}: {out:?}");
        assert!(out.stderr.starts_with("Error from server (Invalid): "), "{what}: {out:?}");
        assert!(out.stderr.contains(want), "{what}: {out:?}");
    }
    let out = navctl.run(&["get", "deploy"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "No resources found in default namespace.\n");
}

/// Reads lines from a child's stdout until one satisfies `pred`.
async fn read_until(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    pred: impl Fn(&str) -> bool,
) -> String {
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if pred(&line) {
                return Some(line);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(line)) => line,
        _ => panic!("no matching line from navctl get -w; output so far:\n{seen}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn get_watch_prints_changes_live() {
    let (_env, navctl) = start().await;
    navctl
        .run_stdin(&["apply", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n"))
        .await;
    let mut child: Child =
        navctl.command(&["get", "cm", "-w"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    read_until(&mut lines, |l| l.starts_with("NAME")).await;
    read_until(&mut lines, |l| l.starts_with("first ")).await;

    let out = navctl
        .apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: second}\ndata: {a: '1', b: '2'}\n")
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let row = read_until(&mut lines, |l| l.starts_with("second ")).await;
    assert!(row.split_whitespace().nth(1) == Some("2"), "DATA column: {row}");

    navctl.ok(&["delete", "cm", "first"]).await;
    read_until(&mut lines, |l| l.starts_with("first ")).await;
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn get_watch_survives_an_api_server_restart() {
    let (mut env, navctl) = start().await;
    navctl.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: before}\n").await;
    let mut child: Child =
        navctl.command(&["get", "cm", "-w"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    read_until(&mut lines, |l| l.starts_with("before ")).await;

    env.api_server.restart().await;
    let out = navctl.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after}\n").await;
    assert_eq!(out.code, 0, "{out:?}");
    // The watch resumes from its last resourceVersion (or relists) and shows the change.
    read_until(&mut lines, |l| l.starts_with("after ")).await;
    child.kill().await.unwrap();
}

/// Credentials: the kubeconfig of the config file (as `make up` writes it), `--kubeconfig` over it,
/// `--server` over its address; without one no command connects; a client certificate the cluster
/// CA did not sign is refused.
#[tokio::test(flavor = "multi_thread")]
async fn connects_with_the_kubeconfig_of_its_config() {
    let (env, navctl) = start().await;
    let view = navctl.ok(&["config", "view"]).await;
    let kubeconfig = env.admin_kubeconfig();
    assert!(view.contains(&format!("kubeconfig: {}\n", kubeconfig.display())), "{view}");
    assert!(view.contains(&format!("server: {}\n", env.api_server_url())), "{view}");
    assert!(
        view.contains("# kubeconfig from the config file ") && view.contains("a client certificate"),
        "{view}"
    );
    navctl.ok(&["get", "ns", "default"]).await;
    // --server replaces only the address: the same credentials against the same api-server.
    let addr = env.api_server_addr().to_string();
    navctl.ok(&["--server", &addr, "get", "ns", "default"]).await;

    // No kubeconfig anywhere: a clear error, nothing sent.
    let bare = Navctl::new(None);
    let out = bare.run(&["get", "pods"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.starts_with(
            "error: no credentials: set kubeconfig in ~/.navarch/config.yaml (make up writes it)"
        ),
        "{out:?}"
    );
    let view = bare.ok(&["config", "view"]).await;
    assert!(view.contains("kubeconfig: null\n"), "{view}");
    // --kubeconfig gives them.
    let flag = format!("--kubeconfig={}", kubeconfig.display());
    assert!(bare.ok(&[&flag, "get", "ns", "default"]).await.contains("default"));

    // A client certificate of another CA (the right CA for the server): refused.
    let stranger = navarch_tests::TestPki::new();
    let (cert, key) = stranger.identity_pem("admin");
    let text = navarch_pki::cluster::kubeconfig(
        "x",
        &env.api_server_url(),
        &env.pki().ca_pem(),
        &cert,
        &key,
        "default",
    );
    let foreign = stranger.write_kubeconfig("foreign", &text);
    let out = bare.run(&[&format!("--kubeconfig={}", foreign.display()), "get", "ns", "default"]).await;
    assert_ne!(out.code, 0, "{out:?}");
}
