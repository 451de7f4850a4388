//! [`Kubectl`]: the installed `kubectl` (the real one, 1.32 behind the machine's dispatcher) against an
//! api-server, with its own kubeconfig (the cluster CA and a client certificate: the admin's, or any
//! user's) and discovery cache in a temporary directory (the user's `~/.kube` is never read or
//! written).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use crate::ApiServer;

/// What a kubectl run printed.
pub struct KubectlOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for KubectlOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

pub struct Kubectl {
    dir: TempDir,
}

impl Kubectl {
    /// kubectl as the admin (`kubernetes-admin`, group `navarch:cluster-admins`) against `api`,
    /// namespace `default`.
    pub fn new(api: &ApiServer) -> Kubectl {
        Kubectl::with_kubeconfig(&api.pki().admin_kubeconfig(&api.url()))
    }

    /// kubectl as `user` in `groups` (a certificate issued by the cluster CA) against `api`.
    pub fn as_user(api: &ApiServer, user: &str, groups: &[&str]) -> Kubectl {
        Kubectl::with_kubeconfig(&api.pki().user_kubeconfig(user, groups, &api.url()))
    }

    /// kubectl with the kubeconfig `config` (its text).
    pub fn with_kubeconfig(config: &str) -> Kubectl {
        let dir = tempfile::Builder::new().prefix("navarch-kubectl-").tempdir().expect("temp dir");
        std::fs::write(dir.path().join("kubeconfig"), config).expect("writing the kubeconfig");
        Kubectl { dir }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// A file in this kubectl's directory (for manifests).
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("writing a file");
        p
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.dir.path())
            .arg(format!("--cache-dir={}", self.dir.path().join("cache").display()))
            .args(args)
            .kill_on_drop(true);
        c
    }

    /// Runs kubectl with `stdin` (or none) and waits at most a minute.
    pub async fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> KubectlOutput {
        let mut c = self.command(args);
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("running kubectl (is it installed?)");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.expect("writing kubectl's stdin");
        }
        drop(input);
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} hung"))
            .expect("kubectl's output");
        KubectlOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub async fn run(&self, args: &[&str]) -> KubectlOutput {
        self.run_stdin(args, None).await
    }

    /// Runs kubectl and expects exit 0; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert_eq!(out.code, 0, "kubectl {args:?}: {out:?}");
        out.stdout
    }

    /// Runs kubectl and expects a failure; returns what it printed.
    /// Runs `args` with `-o json` (it must succeed) and parses the output.
    pub async fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all).await).expect("kubectl printed JSON")
    }

    pub async fn fails(&self, args: &[&str]) -> KubectlOutput {
        let out = self.run(args).await;
        assert_ne!(out.code, 0, "kubectl {args:?} should fail: {out:?}");
        out
    }

    /// `kubectl apply -f -` of `manifest`.
    pub async fn apply(&self, manifest: &str, extra: &[&str]) -> KubectlOutput {
        let mut args = vec!["apply", "-f", "-"];
        args.extend_from_slice(extra);
        self.run_stdin(&args, Some(manifest)).await
    }

    /// Starts a long-running kubectl (e.g. `get -w`) with its output piped.
    pub fn spawn(&self, args: &[&str]) -> Child {
        let mut c = self.command(args);
        c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().expect("running kubectl")
    }
}
