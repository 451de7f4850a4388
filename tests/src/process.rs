//! What every process of the test environment shares: free loopback ports, finding (and building)
//! the workspace's binaries, log files and their tails, and [`ChildProcess`], the handle that kills
//! its process when dropped so that a failing test leaves nothing running.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::poll::{describe, eventually};

/// How long a component may take to become ready.
pub(crate) const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A free TCP port on 127.0.0.1 for a daemon to listen on: one that binds now, taken below the
/// kernel's ephemeral range (32768+) so that no outgoing connection (the tests make many, each from an
/// ephemeral port) can take it between this check and the daemon's bind. Ports are handed out in turn
/// from a per-process starting point, so parallel tests do not pick the same one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % COUNT,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral port").local_addr().unwrap().port()
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The directory holding the workspace's binaries for this test run.
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("NAVARCH_BIN_DIR") {
        return PathBuf::from(d);
    }
    // Tests run from target/<profile>/deps/<test>-<hash>, binaries (bench-api) from target/<profile>.
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("executable has a directory");
    if dir.ends_with("deps") {
        dir.parent().expect("target/<profile>").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// The path of a workspace binary, building it with cargo if it is missing.
pub fn binary(package: &str, bin: &str) -> PathBuf {
    let path = bin_dir().join(bin);
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", package, "--bin", bin]);
        if bin_dir().ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "building {bin} failed");
    }
    assert!(path.exists(), "{} does not exist", path.display());
    path
}

/// Sends `cmd`'s stdout and stderr to the file at `log` (created, or appended to after a restart).
pub(crate) fn log_to<'a>(cmd: &'a mut Command, log: &Path) -> &'a mut Command {
    let file = File::options().create(true).append(true).open(log).expect("opening a log file");
    cmd.stdout(file.try_clone().expect("log file handle")).stderr(file)
}

/// The last `lines` lines of the file at `path` (empty if it cannot be read).
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a command, ignoring failures (cleanup paths).
pub(crate) fn quietly(cmd: &str, args: &[&str]) {
    let _ = Command::new(cmd).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// A child process that is SIGKILLed and reaped when dropped. It may be empty: before the first
/// spawn, or after [`ChildProcess::kill9`] until the next [`ChildProcess::set`] (restarts).
#[derive(Debug, Default)]
pub struct ChildProcess {
    child: Option<Child>,
}

impl ChildProcess {
    pub fn new(child: Child) -> ChildProcess {
        ChildProcess { child: Some(child) }
    }

    /// Holds `child` from now on, killing the one held before (if any).
    pub fn set(&mut self, child: Child) {
        self.kill9();
        self.child = Some(child);
    }

    /// The pid of the running process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How the process ended, if it has.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Panics with the last `lines` of its log if `name`'s process has exited (while waiting for it to
    /// become ready).
    pub(crate) fn assert_running(&mut self, name: &str, log: &Path, lines: usize) {
        if let Some(status) = self.exit_status() {
            panic!("{name} exited with {status}:\n{}", tail(log, lines));
        }
    }

    /// Waits up to [`STARTUP_TIMEOUT`] until `ready` says `name` is up; panics with the last `lines`
    /// of its log if the process exits first or time runs out.
    pub(crate) async fn wait_started(
        &mut self,
        name: &str,
        log: &Path,
        lines: usize,
        mut ready: impl AsyncFnMut() -> bool,
    ) {
        eventually(
            describe(|| format!("{name} to be ready:\n{}", tail(log, lines))),
            STARTUP_TIMEOUT,
            async || {
                if ready().await {
                    return true;
                }
                self.assert_running(name, log, lines);
                false
            },
        )
        .await;
    }

    /// SIGKILLs the process (like a crash) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else { return false };
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        c.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
