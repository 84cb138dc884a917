//! Turn `--policy FILE` plus flags into a validated policy, and fail closed when
//! the host cannot provide it.

use crate::args::{IsolationArg, NetworkArg, PolicyArgs};
use anyhow::Context;
use sandkeep_sandbox::policy::{Isolation, Network, Policy};

/// Load the file (if any), apply flag overrides, validate.
pub fn resolve(args: &PolicyArgs) -> anyhow::Result<Policy> {
    let mut policy = sandkeep_sandbox::load_policy(args.policy.as_deref())?;
    if let Some(i) = args.isolation {
        policy.isolation = match i {
            IsolationArg::None => Isolation::None,
            IsolationArg::Process => Isolation::Process,
        };
    }
    if let Some(n) = args.network {
        policy.network = match n {
            NetworkArg::Off => Network::Off,
            NetworkArg::Host => Network::Host,
        };
    }
    if let Some(v) = args.memory_mib {
        policy.memory_mib = v;
    }
    if let Some(v) = args.pids {
        policy.pids = v;
    }
    if let Some(v) = args.cpus {
        policy.cpus = v;
    }
    if let Some(v) = args.tmp_mib {
        policy.tmp_mib = v;
    }
    if let Some(v) = &args.allow_tools {
        policy.allowed_tools = v.clone();
    }
    if policy.isolation == Isolation::None {
        let needs_sandbox: Vec<&str> = [
            ("--network", args.network.is_some()),
            ("--memory-mib", args.memory_mib.is_some()),
            ("--pids", args.pids.is_some()),
            ("--cpus", args.cpus.is_some()),
            ("--tmp-mib", args.tmp_mib.is_some()),
        ]
        .iter()
        .filter(|(_, given)| *given)
        .map(|(flag, _)| *flag)
        .collect();
        if !needs_sandbox.is_empty() {
            anyhow::bail!(
                "{} cannot be enforced with --isolation none (tools run directly on the host); \
                 drop them or use --isolation process",
                needs_sandbox.join(", ")
            );
        }
    }
    policy.validate().context("invalid policy")?;
    Ok(policy)
}

/// Refuse to start when the requested isolation is unavailable (never downgrade).
pub fn ensure_supported(policy: &Policy) -> anyhow::Result<()> {
    if policy.isolation == Isolation::None {
        tracing::warn!(
            "isolation `none`: tools run directly on this host with path confinement only (bash is unconfined)"
        );
        return Ok(());
    }
    let report = sandkeep_sandbox::probe_host();
    report.supports(policy).map_err(|why| {
        anyhow::anyhow!(
            "this host cannot provide isolation `process`: {why}\n\
             Run `sandkeep doctor` for details, or pass `--isolation none` to run tools unsandboxed on purpose."
        )
    })
}
