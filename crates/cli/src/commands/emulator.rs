//! `sandkeep emulator`: serve the control-plane emulator until interrupted.

use crate::args::EmulatorArgs;
use sandkeep_emulator::{Emulator, EmulatorConfig};
use std::process::ExitCode;

pub async fn run(args: EmulatorArgs) -> anyhow::Result<ExitCode> {
    let config = EmulatorConfig {
        admin_key: args.admin_key,
        lease_ttl_seconds: args.lease_ttl,
        ..Default::default()
    };
    let (_emulator, addr) = Emulator::spawn(config, &args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    // Tests read this line to learn the port when --listen ends in :0.
    println!("sandkeep emulator listening on http://{addr}");
    tokio::signal::ctrl_c().await?;
    Ok(ExitCode::SUCCESS)
}
