//! [`Containerd`]: a real containerd (CRI plugin disabled) for the kubelet to run pods on, with
//! [`Containerd::ctr`] to look inside it, and the cleanup of everything run in it when dropped.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::poll::{describe, eventually};
use crate::process::{ChildProcess, STARTUP_TIMEOUT, log_to, quietly, tail};

/// A real containerd with its own root, state and socket in a temp dir. On drop every task in it is
/// killed and deleted, its containers removed, then containerd stopped and its mounts undone.
pub struct Containerd {
    process: ChildProcess,
    dir: TempDir,
    pub namespace: String,
}

impl Containerd {
    pub async fn start() -> Containerd {
        let dir = tempfile::Builder::new().prefix("navarch-containerd-").tempdir().expect("temp dir");
        let d = dir.path();
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n",
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("containerd.sock").display()
        );
        std::fs::write(d.join("config.toml"), config).expect("writing containerd config");
        let child = log_to(
            Command::new("containerd").arg("--config").arg(d.join("config.toml")),
            &d.join("containerd.log"),
        )
        .spawn()
        .expect("starting containerd (apt install containerd)");
        let c = Containerd { process: ChildProcess::new(child), dir, namespace: "navarch".into() };
        let (socket, log) = (c.socket(), c.log_path());
        eventually(
            describe(|| format!("containerd's socket:\n{}", tail(&log, 30))),
            STARTUP_TIMEOUT,
            async || socket.exists(),
        )
        .await;
        c
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("containerd.log")
    }

    /// `ctr` against this containerd, in its namespace; stdout.
    pub fn ctr(&self, args: &[&str]) -> String {
        let out = Command::new("ctr")
            .arg("-a")
            .arg(self.socket())
            .arg("-n")
            .arg(&self.namespace)
            .args(args)
            .output()
            .expect("running ctr");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Container ids in the namespace, sorted.
    pub fn container_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> =
            self.ctr(&["containers", "ls", "-q"]).lines().map(str::to_string).collect();
        ids.sort();
        ids
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in self.ctr(&["tasks", "ls", "-q"]).lines() {
            self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]);
        }
        std::thread::sleep(Duration::from_millis(300));
        for id in self.ctr(&["tasks", "ls", "-q"]).lines() {
            self.ctr(&["tasks", "delete", "-f", id]);
        }
        for id in self.container_ids() {
            self.ctr(&["containers", "rm", &id]);
        }
        self.process.kill9();
        // Shims containerd could not reap in time (a task still being killed when the test ended)
        // outlive it: kill every shim that talks to this containerd's socket.
        let socket = self.socket().display().to_string();
        for pid in shims_of(&socket) {
            quietly("kill", &["-KILL", &pid.to_string()]);
        }
        // Whatever is still mounted under the temp dir (rootfs of killed tasks).
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            let root = self.dir.path().display().to_string();
            let mut points: Vec<&str> =
                mounts.lines().filter_map(|l| l.split(' ').nth(1)).filter(|p| p.starts_with(&root)).collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                quietly("umount", &["-l", p]);
            }
        }
    }
}

/// The pids of `containerd-shim*` processes started with `-address <socket>`.
fn shims_of(socket: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let is_shim =
                args.first().is_some_and(|a| String::from_utf8_lossy(a).contains("containerd-shim"));
            is_shim && args.windows(2).any(|w| w[0] == b"-address" && w[1] == socket.as_bytes())
        })
        .collect()
}
