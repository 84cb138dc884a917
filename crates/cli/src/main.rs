//! `sandkeep`: the self-hosted sandbox worker for Claude Managed Agents.
//!
//! The binary is thin: argument parsing, logging and dispatch. The worker lives in
//! `sandkeep-worker`, isolation in `sandkeep-sandbox`, the control-plane emulator in
//! `sandkeep-emulator`. The sandbox's init re-executes this same binary with the
//! hidden first argument `__sandbox-init` (the codex-rs pattern: one binary, many roles).

mod args;
mod commands;
mod duration;
mod logging;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == sandkeep_sandbox::INIT_ARG)
    {
        sandkeep_sandbox::init_main();
    }
    let cli = args::Cli::parse();
    logging::init(cli.log_format(), cli.default_log_level());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
