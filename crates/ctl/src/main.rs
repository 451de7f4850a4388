//! navctl: the kubectl-like command-line client of the navarch api-server.
//!
//! Owns the command line (apply, create (-f, token, job), replace, get, describe, delete, label, annotate, scale, expose, set image, rollout (status, history, undo, pause, resume, restart), cordon, uncordon, drain, logs, exec,
//! top, auth can-i, auth whoami, create token, version, api-resources, completion, config view),
//! `--as`/`--as-group` impersonation, kubectl's output formats and messages, and client-side apply.
//! Exit status: 0 success, 1 any error, 2 usage error.

mod apply;
mod auth;
mod cli;
mod config;
mod context;
mod create;
mod delete;
mod describe;
mod describe_autoscaling;
mod errors;
mod exec;
mod get;
mod info;
mod kinds;
mod logs;
mod manifests;
mod metadata;
mod nodes;
mod printers;
mod rollout;
// The crate's only `unsafe` (denied everywhere else by the workspace lints): the terminal's window
// size ioctl, with its `// SAFETY:` argument.
#[allow(unsafe_code)]
mod terminal;
mod top;
mod workloads;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{AuthCommand, Cli, Command, ConfigCommand, CreateCommand};
use context::{Context, Outcome};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::FAILURE,
        Ok(Outcome::Exit(code)) => ExitCode::from(code),
        Err(e) => {
            report(&e);
            ExitCode::FAILURE
        }
    }
}

/// Prints an error like kubectl: server errors as `Error from server (Reason): ...`, others as
/// `error: ...`.
pub fn report(e: &anyhow::Error) {
    if e.downcast_ref::<errors::ServerError>().is_some() {
        eprintln!("{e}");
    } else {
        eprintln!("error: {e:#}");
    }
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    if let Command::Completion { shell } = cli.command {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "navctl", &mut out);
        context::emit(&String::from_utf8_lossy(&out));
        return Ok(Outcome::Success);
    }
    let config = config::resolve(&config::Inputs::from_process(cli.server, cli.namespace, cli.kubeconfig))?;
    if cli.as_user.is_none() && !cli.as_group.is_empty() {
        anyhow::bail!("requesting uid, groups or user-extra for  without impersonating a user");
    }
    let impersonation =
        cli.as_user.map(|user| navarch_client::Impersonation { user, groups: cli.as_group.clone() });
    let ctx = Context::new(config).impersonating(impersonation);
    match cli.command {
        Command::Apply(a) => apply::run(&ctx, &a).await,
        Command::Create(a) => match &a.command {
            Some(CreateCommand::Token(t)) => auth::create_token(&ctx, t).await,
            Some(CreateCommand::Job(j)) => create::create_job(&ctx, j).await,
            None => create::create(&ctx, &a.files).await,
        },
        Command::Auth(AuthCommand::CanI(a)) => auth::can_i(&ctx, &a).await,
        Command::Auth(AuthCommand::Whoami(a)) => auth::whoami(&ctx, &a).await,
        Command::Replace(a) => create::replace(&ctx, &a).await,
        Command::Get(a) => get::run(&ctx, &a).await,
        Command::Describe(a) => describe::run(&ctx, &a).await,
        Command::Delete(a) => delete::run(&ctx, &a).await,
        Command::Label(a) => metadata::run(&ctx, &a, metadata::Field::Labels).await,
        Command::Annotate(a) => metadata::run(&ctx, &a, metadata::Field::Annotations).await,
        Command::Scale(a) => workloads::scale(&ctx, &a).await,
        Command::Autoscale(a) => workloads::autoscale(&ctx, &a).await,
        Command::Expose(a) => workloads::expose(&ctx, &a).await,
        Command::Set(cli::SetCommand::Image(a)) => workloads::set_image(&ctx, &a).await,
        Command::Rollout(r) => rollout::run(&ctx, &r).await,
        Command::Cordon(a) => nodes::cordon(&ctx, &a, true).await,
        Command::Uncordon(a) => nodes::cordon(&ctx, &a, false).await,
        Command::Drain(a) => nodes::drain(&ctx, &a).await,
        Command::Logs(a) => logs::run(&ctx, &a).await,
        Command::Exec(a) => exec::run(&ctx, &a).await,
        Command::Top(t) => top::run(&ctx, &t).await,
        Command::Version => info::version(&ctx).await,
        Command::ApiResources => info::api_resources(&ctx).await,
        Command::Config(ConfigCommand::View) => {
            context::emit(&config::view(&ctx.config));
            Ok(Outcome::Success)
        }
        Command::Completion { .. } => unreachable!("handled above"),
    }
}
