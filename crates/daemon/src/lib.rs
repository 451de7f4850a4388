//! The shell every navarch daemon runs in, so that a daemon is a config struct, a `run` function and
//! a few lines of `main`:
//!
//! * [`config`]: one struct per daemon that is both its flags and its file schema, resolved flag >
//!   environment (`NAVARCH_<DAEMON>_*`) > YAML file (`--config`) > default by one loader;
//!   `--print-config` prints the effective result.
//! * [`lifecycle`]: tracing (text or JSON), the one shutdown future, owned tasks drained with a
//!   deadline, run-as-elected-leader-or-alone.
//! * [`admin`]: the one admin HTTP server (`/healthz`, `/livez`, `/readyz`, `/metrics`).
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     navarch_daemon::main::<SchedulerConfig, _, _>(navarch_scheduler::run::run)
//! }
//! ```

#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod lifecycle;

use std::future::Future;
use std::process::ExitCode;

pub use admin::{Admin, Check, registered};
pub use config::{
    ConfigError, DaemonConfig, Env, LogFormat, Resolved, resolve, resolve_args, resolve_yaml, to_yaml,
};
pub use lifecycle::{
    DRAIN_DEADLINE, Daemon, DaemonHandle, Election, LifecycleError, cancel_on_signal, init_tracing,
    run_elected,
};
pub use tokio_util::sync::CancellationToken;

/// A daemon's whole `main`: resolves `C` from the command line and the process environment (printing
/// it and exiting with `--print-config`), initializes tracing, runs `run` on a multi-threaded runtime
/// until it returns or a signal arrives, then drains the shell's tasks.
pub fn main<C, F, Fut, E>(run: F) -> ExitCode
where
    C: DaemonConfig,
    F: FnOnce(Daemon<C>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let resolved = match resolve::<C>(std::env::args_os(), &Env::Process) {
        Ok(r) => r,
        Err(ConfigError::Flags(e)) => e.exit(),
        Err(e) => {
            eprintln!("{}: configuration: {e}", C::command().get_name());
            return ExitCode::from(2);
        }
    };
    if resolved.print_config {
        print!("{}", to_yaml(&resolved.config));
        return ExitCode::SUCCESS;
    }
    init_tracing::<C>(resolved.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let name = C::command().get_name().to_string();
    let result = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let signals = tokio::spawn(cancel_on_signal(shutdown.clone()));
        let daemon = Daemon::new(resolved.config, shutdown.clone());
        let tasks = daemon.handle();
        let result = run(daemon).await.map_err(Into::into);
        tasks.drain(DRAIN_DEADLINE).await;
        signals.abort();
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut message = e.to_string();
            let mut cause = e.source();
            while let Some(c) = cause {
                message = format!("{message}: {c}");
                cause = c.source();
            }
            tracing::error!(error = %message, "{name} failed");
            eprintln!("{name}: {message}");
            ExitCode::FAILURE
        }
    }
}
