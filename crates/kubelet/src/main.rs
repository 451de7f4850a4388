//! `kubelet`: the daemon shell (config, tracing, signals, admin server) around [`run`], the node agent.
//! Pods keep running when the kubelet stops; a restarted kubelet adopts them.
//!
//! [`run`]: navarch_kubelet::run::run

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    navarch_daemon::main(navarch_kubelet::run::run)
}
