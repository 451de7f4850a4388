//! How the suite drives the cluster: `navctl` and `kubectl` with the kubeconfig `make up` wrote, manifests
//! applied into the namespace `e2e`, `scripts/cluster.sh` (or Vagrant) to break and mend nodes, and the
//! waits' allowance on the VM cluster.

use std::process::Command;
use std::time::Duration;

use navarch_tests::eventually_blocking;

use super::{NS, VAGRANT};

pub(crate) fn vagrant() -> bool {
    VAGRANT.get().copied().unwrap_or(false)
}

pub(crate) fn root() -> std::path::PathBuf {
    navarch_tests::workspace_root()
}

/// `make up`'s state: `$NAVARCH_HOME`, default `.navarch/` in the checkout.
pub(crate) fn navarch_home() -> std::path::PathBuf {
    std::env::var_os("NAVARCH_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join(".navarch"))
}

/// The admin kubeconfig `make up` wrote (the api-server's address, its CA and a client certificate):
/// `$NAVARCH_HOME/kubeconfig` (default `.navarch/kubeconfig` in the checkout), else the `kubeconfig`
/// entry of navctl's config file (`$NAVCTL_CONFIG` or `~/.navarch/config.yaml`). `None` on the VM
/// cluster, whose credentials navctl takes from its own configuration.
pub(crate) fn kubeconfig() -> Option<std::path::PathBuf> {
    static FOUND: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            if vagrant() {
                return None;
            }
            let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
            let made = navarch_home().join("kubeconfig");
            if made.exists() {
                return Some(made);
            }
            let config = var("NAVCTL_CONFIG")
                .map(std::path::PathBuf::from)
                .or_else(|| var("HOME").map(|h| std::path::PathBuf::from(h).join(".navarch/config.yaml")))?;
            let text = std::fs::read_to_string(config).ok()?;
            let value: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
            value.get("kubeconfig")?.as_str().map(std::path::PathBuf::from)
        })
        .clone()
}

/// The command `navctl ARGS` (the release build, with `make up`'s kubeconfig).
pub(crate) fn navctl_command(args: &[&str]) -> Command {
    let mut command = Command::new(root().join("target/release/navctl"));
    if let Some(k) = kubeconfig() {
        command.arg(format!("--kubeconfig={}", k.display()));
    }
    command.args(args);
    command
}

/// `navctl ARGS`: stdout, or the failure with its stderr.
pub(crate) fn navctl_try(args: &[&str]) -> Result<String, String> {
    let out = navctl_command(args).output().map_err(|e| format!("navctl: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(format!(
            "navctl {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}

pub(crate) fn navctl(args: &[&str]) -> String {
    navctl_try(args).unwrap_or_else(|e| panic!("{e}"))
}

/// `navctl VERB -n e2e ARGS...` (before any `--` of exec).
pub(crate) fn in_ns<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![args[0], "-n", NS];
    a.extend(&args[1..]);
    a
}

pub(crate) fn nv(args: &[&str]) -> String {
    navctl(&in_ns(args))
}

pub(crate) fn nv_try(args: &[&str]) -> Result<String, String> {
    navctl_try(&in_ns(args))
}

/// `scripts/cluster.sh CMD` with `VARS` (what `make node-stop NODE=1` etc. run); on the VM cluster,
/// `vm-stop` and `vm-start` of worker `NODE` through Vagrant.
pub(crate) fn cluster(cmd: &str, vars: &[(&str, &str)]) {
    let mut command = if vagrant() {
        let node = vars.iter().find(|(k, _)| *k == "NODE").map(|(_, v)| *v).expect("NODE");
        let machine = format!("worker-{node}");
        // A libvirt domain is powered off at once (vagrant-libvirt's `halt --force` first waits
        // a minute for an ACPI shutdown); other providers through `vagrant halt --force`.
        let libvirt_id = root().join("vagrant/.vagrant/machines").join(&machine).join("libvirt/id");
        let domain = std::fs::read_to_string(libvirt_id).ok().map(|s| s.trim().to_string());
        let mut c;
        match (cmd, domain) {
            ("vm-stop", Some(uuid)) => {
                c = Command::new("virsh");
                c.args(["--connect", "qemu:///system", "destroy", &uuid]);
            }
            ("vm-stop", None) => {
                c = Command::new("vagrant");
                c.args(["halt", "--force", &machine]);
            }
            ("vm-start", _) => {
                c = Command::new("vagrant");
                c.args(["up", &machine]);
            }
            _ => panic!("{cmd}: not available on the VM cluster"),
        }
        c.current_dir(root().join("vagrant"));
        c
    } else {
        let mut c = Command::new(root().join("scripts/cluster.sh"));
        c.arg(cmd).envs(vars.iter().copied());
        c
    };
    let out = command.output().expect("scripts/cluster.sh or vagrant");
    assert!(
        out.status.success(),
        "{cmd} {vars:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn apply_try(yaml: &str) -> Result<String, String> {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), yaml).unwrap();
    nv_try(&["apply", "-f", f.path().to_str().unwrap()])
}

pub(crate) fn apply(yaml: &str) {
    apply_try(yaml).unwrap_or_else(|e| panic!("{e}"));
}

/// Creates the namespace `e2e` again when an earlier scenario (8) deleted it, and waits for its
/// `default` ServiceAccount (pods need it).
pub(crate) fn ensure_namespace() {
    if navctl_try(&["get", "namespace", NS]).is_err() {
        apply(&format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NS}}}\n"));
    }
    eventually_blocking("the default ServiceAccount", allow(30), || {
        nv_try(&["get", "serviceaccount", "default"]).is_ok()
    });
}

/// Deletes the namespace `ns` if an earlier run left it, creates it, and waits for its `default`
/// ServiceAccount (pods need it).
pub(crate) fn fresh_namespace(ns: &str) {
    if kubectl_try(&["get", "namespace", ns]).is_ok() {
        kubectl(&["delete", "namespace", ns, "--wait=false"]);
        eventually_blocking(format!("the old namespace {ns} gone"), allow(180), || {
            kubectl_try(&["get", "namespace", ns]).is_err()
        });
    }
    kubectl(&["create", "namespace", ns]);
    eventually_blocking("the default ServiceAccount", allow(30), || {
        kubectl_try(&["get", "serviceaccount", "default", "-n", ns]).is_ok()
    });
}

/// How long a wait of `secs` seconds may take: three times as long on the VM cluster (`--vagrant`).
pub(crate) fn allow(secs: u64) -> Duration {
    let timeout = Duration::from_secs(secs);
    if vagrant() { timeout * 3 } else { timeout }
}

/// `kubectl` with the kubeconfig `make up` wrote.
pub(crate) fn kubectl_command() -> Command {
    let mut c = Command::new("kubectl");
    if let Some(k) = kubeconfig() {
        c.env("KUBECONFIG", k);
    }
    c
}

/// `kubectl ARGS` with the kubeconfig `make up` wrote: stdout, or the failure with its stderr.
pub(crate) fn kubectl_try(args: &[&str]) -> Result<String, String> {
    run_kubectl(kubectl_command(), args)
}

/// `command ARGS` (a kubectl): stdout, or the failure with its stderr.
pub(crate) fn run_kubectl(mut command: Command, args: &[&str]) -> Result<String, String> {
    let out = command.args(args).output().map_err(|e| format!("kubectl: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(format!(
            "kubectl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

pub(crate) fn kubectl(args: &[&str]) -> String {
    kubectl_try(args).unwrap_or_else(|e| panic!("{e}"))
}
