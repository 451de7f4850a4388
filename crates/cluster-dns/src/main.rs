//! `cluster-dns`: the daemon shell (config, tracing, signals, admin server) around [`run`], which serves
//! DNS for the cluster domain until SIGTERM (then leaves the kube-dns Endpoints).
//!
//! [`run`]: navarch_cluster_dns::run::run

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    navarch_daemon::main(navarch_cluster_dns::run::run)
}
