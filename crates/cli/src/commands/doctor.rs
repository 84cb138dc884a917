//! `sandkeep doctor`: host capabilities and the isolation level that will be used.

use super::policy;
use crate::args::DoctorArgs;
use std::process::ExitCode;

pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let report = sandkeep_sandbox::probe_host();
    println!("{report}");
    let policy = policy::resolve(&args.policy)?;
    match report.supports(&policy) {
        Ok(()) => {
            println!(
                "isolation in use: {:?} (network {}) — OK",
                policy.isolation,
                policy.network_label()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            println!("isolation {:?} is NOT available: {why}", policy.isolation);
            Ok(ExitCode::from(2))
        }
    }
}
