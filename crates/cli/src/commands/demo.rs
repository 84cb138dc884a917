//! `sandkeep demo`: the whole loop on one machine, on a copy of a real directory.

use super::policy;
use crate::args::DemoArgs;
use std::process::ExitCode;

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let policy = policy::resolve(&args.policy)?;
    policy::ensure_supported(&policy)?;
    let options = sandkeep_demo::DemoOptions {
        source: args.source,
        policy,
        verbose: args.verbose,
    };
    let passed = sandkeep_demo::run(options).await?;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
