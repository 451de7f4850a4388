//! `api-server`: the daemon shell (config, tracing, signals, admin server) around [`run`].
//!
//! [`run`]: navarch_api_server::run

#![forbid(unsafe_code)]

// The request path allocates many small buffers; glibc malloc spent a fifth of the CPU on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    navarch_daemon::main(navarch_api_server::run)
}
