//! One module per subcommand; this file routes to them and holds the shared glue.

mod demo;
mod doctor;
mod emulator;
mod policy;
mod worker;

use crate::args::{Cli, Command, WorkerCmd};
use std::process::ExitCode;
use tokio_util_shutdown::shutdown_on_signals;

pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Worker(WorkerCmd::Poll(args)) => worker::poll(args, shutdown_on_signals()).await,
        Command::Worker(WorkerCmd::Run(args)) => worker::run(args, shutdown_on_signals()).await,
        Command::Emulator(args) => emulator::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Doctor(args) => doctor::run(args),
    }
}

mod tokio_util_shutdown {
    use tokio::signal::unix::{signal, SignalKind};
    use tokio_util::sync::CancellationToken;

    /// A token cancelled on the first SIGTERM or SIGINT; a second signal exits at once.
    pub fn shutdown_on_signals() -> CancellationToken {
        let token = CancellationToken::new();
        let child = token.clone();
        tokio::spawn(async move {
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::warn!("cannot install signal handlers; SIGTERM will not drain gracefully");
                return;
            };
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            tracing::info!(
                "shutdown requested: no new work is claimed; in-flight sessions are drained"
            );
            child.cancel();
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        });
        token
    }
}
