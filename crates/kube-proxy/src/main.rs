//! `kube-proxy`: the daemon shell (config, tracing, signals, admin server) around [`run`], which keeps
//! the node's Service rules in sync until SIGTERM (or removes them with `--cleanup`).
//!
//! [`run`]: navarch_kube_proxy::run::run

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    navarch_daemon::main(navarch_kube_proxy::run::run)
}
