//! [`Daemon`]: any other daemon of this workspace (scheduler, controller-manager, kube-proxy,
//! cluster-dns) run as a child process against a [`TestEnv`], logging to the test's stderr; SIGKILLed
//! on drop. Each connects with a kubeconfig of its own identity (the scheduler as
//! `system:kube-scheduler`, ...), as in a real cluster, so that authorization applies to it.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::TestEnv;
use crate::process::{ChildProcess, binary, free_port};

/// A daemon of this workspace run as a child process against a [`TestEnv`]; killed (SIGKILL,
/// like a crash) on drop or by [`Daemon::kill9`].
pub struct Daemon {
    process: ChildProcess,
    /// Its `--http-listen` address (/healthz, /metrics).
    pub http: SocketAddr,
}

impl Daemon {
    /// Starts binary `bin` of `package` with `--kubeconfig` (its own identity, see [`identity`]) and
    /// `--http-listen` (a free port) set, then `args`. Logs at `$NAVARCH_TEST_LOG` (default info) to the
    /// test's stderr.
    pub fn start(env: &TestEnv, package: &str, bin: &str, args: &[&str]) -> Daemon {
        Daemon::start_as(env, identity(bin), package, bin, args)
    }

    /// Like [`Daemon::start`] with the credentials of the PKI identity `<stem>`.
    pub fn start_as(env: &TestEnv, stem: &str, package: &str, bin: &str, args: &[&str]) -> Daemon {
        let port = free_port();
        let child = Command::new(binary(package, bin))
            .arg(format!("--kubeconfig={}", env.api_server.kubeconfig_file(stem).display()))
            .arg(format!("--http-listen=127.0.0.1:{port}"))
            .args(args)
            .env("RUST_LOG", std::env::var("NAVARCH_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        Daemon { process: ChildProcess::new(child), http: SocketAddr::from(([127, 0, 0, 1], port)) }
    }

    pub fn kill9(&mut self) {
        self.process.kill9();
    }
}

/// The PKI identity (certificate stem) a daemon binary connects as: its own component certificate,
/// the admin's for anything else.
pub fn identity(bin: &str) -> &'static str {
    navarch_pki::cluster::COMPONENTS
        .iter()
        .map(|c| c.file)
        .find(|f| *f == bin && *f != "admin")
        .unwrap_or("admin")
}
