//! `scheduler`: the daemon shell (config, tracing, signals, admin server) around [`run`].
//!
//! [`run`]: navarch_scheduler::run::run

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    navarch_daemon::main(navarch_scheduler::run::run)
}
