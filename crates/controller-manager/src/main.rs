//! `controller-manager`: the daemon shell (config, tracing, signals, admin server) around [`run`].
//!
//! [`run`]: navarch_controller_manager::run::run

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    navarch_daemon::main(navarch_controller_manager::run::run)
}
