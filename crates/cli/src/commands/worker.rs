//! `sandkeep worker poll|run`: the drop-in for `ant beta:worker poll|run` (§10).

use super::policy;
use crate::args::{CommonArgs, PollArgs, RunArgs};
use anyhow::{bail, Context};
use sandkeep_api::ClientConfig;
use sandkeep_sandbox::Isolation;
use sandkeep_worker::{ClaimedItem, WorkdirLayout, WorkerConfig};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn base_config(common: &CommonArgs) -> anyhow::Result<WorkerConfig> {
    let policy = policy::resolve(&common.policy)?;
    policy::ensure_supported(&policy)?;
    let workdir = std::path::absolute(&common.workdir)
        .with_context(|| format!("cannot resolve --workdir {}", common.workdir.display()))?;
    if policy.isolation == Isolation::Process {
        check_traversable(&workdir, common.shared_workdir)?;
    }
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    Ok(WorkerConfig {
        client: ClientConfig {
            base_url: common.base_url.clone(),
            ..ClientConfig::default()
        },
        environment_id: common.environment_id.clone().filter(|s| !s.is_empty()),
        environment_key: common.environment_key.clone().filter(|s| !s.is_empty()),
        worker_id: sandkeep_api::default_worker_id(),
        workdir,
        layout: if common.shared_workdir {
            WorkdirLayout::Shared
        } else {
            WorkdirLayout::PerSession
        },
        max_idle: (!common.max_idle.is_zero()).then_some(common.max_idle),
        max_sessions: cpus * 4,
        drain_timeout: Duration::from_secs(30),
        drain: false,
        reclaim_older_than_ms: None,
        on_work: None,
        policy,
        keep_workspace: common.keep_workspace,
        tool_timeout: Duration::from_secs(150),
    })
}

pub async fn poll(args: PollArgs, shutdown: CancellationToken) -> anyhow::Result<ExitCode> {
    if args
        .common
        .environment_id
        .as_deref()
        .unwrap_or("")
        .is_empty()
        || args
            .common
            .environment_key
            .as_deref()
            .unwrap_or("")
            .is_empty()
    {
        bail!(
            "EnvironmentWorker.run: environment_id and environment_key are required to poll for work \
             (pass --environment-id/--environment-key or set ANTHROPIC_ENVIRONMENT_ID/ANTHROPIC_ENVIRONMENT_KEY)"
        );
    }
    let mut config = base_config(&args.common)?;
    if let Some(id) = args.worker_id.filter(|s| !s.is_empty()) {
        config.worker_id = id;
    }
    if let Some(n) = args.max_sessions {
        if n == 0 {
            bail!("--max-sessions must be at least 1");
        }
        config.max_sessions = n;
    }
    config.drain_timeout = args.drain_timeout;
    config.drain = args.drain;
    config.reclaim_older_than_ms = args.reclaim_older_than_ms;
    config.on_work = args
        .on_work
        .filter(|p| p.as_os_str() != "in-process" && !p.as_os_str().is_empty());
    tracing::info!(
        worker_id = %config.worker_id,
        isolation = ?config.policy.isolation,
        network = %config.policy.network_label(),
        max_sessions = config.max_sessions,
        "sandkeep worker polling"
    );
    sandkeep_worker::run_poll(config, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn run(args: RunArgs, shutdown: CancellationToken) -> anyhow::Result<ExitCode> {
    let required = |v: &Option<String>, name: &str, var: &str| -> anyhow::Result<String> {
        match v.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Ok(s.to_string()),
            None => bail!("handle_item: {name} is required — pass it or set {var}"),
        }
    };
    let work_id = required(&args.work_id, "work_id", "ANTHROPIC_WORK_ID")?;
    let environment_id = required(
        &args.common.environment_id,
        "environment_id",
        "ANTHROPIC_ENVIRONMENT_ID",
    )?;
    let session_id = required(&args.session_id, "session_id", "ANTHROPIC_SESSION_ID")?;
    let secret = match &args.work_secret_file {
        Some(path) => Some(read_secret_file(path)?),
        None => std::env::var("ANTHROPIC_WORK_SECRET")
            .ok()
            .filter(|s| !s.is_empty()),
    };
    if secret.is_none()
        && args
            .common
            .environment_key
            .as_deref()
            .unwrap_or("")
            .is_empty()
    {
        bail!(
            "provide an environment key (--environment-key or ANTHROPIC_ENVIRONMENT_KEY) or a work secret \
             (--work-secret-file, ANTHROPIC_WORK_SECRET_FILE, or ANTHROPIC_WORK_SECRET)"
        );
    }
    let config = base_config(&args.common)?;
    let item = ClaimedItem {
        work_id,
        environment_id,
        session_id,
        secret,
    };
    sandkeep_worker::run_item(config, item, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// As root, each sandboxed session runs under its own subordinate uid, which must be
/// able to reach `<workdir>/sessions/<id>`: every existing directory on the way needs
/// the execute bit for others (with `--shared-workdir` the workdir itself is the
/// session's directory, so only its ancestors). Say so at start instead of failing
/// every session.
fn check_traversable(workdir: &Path, shared: bool) -> anyhow::Result<()> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    for dir in workdir.ancestors().skip(usize::from(shared)) {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        if meta.permissions().mode() & 0o001 == 0 {
            bail!(
                "--workdir {} is not reachable by sandboxed sessions: {} (mode {:04o}) cannot be \
                 traversed by other users, and each session runs under its own uid. \
                 Run `chmod o+x {}` or choose another --workdir",
                workdir.display(),
                dir.display(),
                meta.permissions().mode() & 0o7777,
                dir.display()
            );
        }
    }
    Ok(())
}

/// `--work-secret-file`: trimmed contents; refuse empty files and files open to "other".
fn read_secret_file(path: &Path) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read work secret file {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o006 != 0 {
        bail!(
            "work secret file {} (mode {:04o}) is readable or writable by every user on this machine — run chmod o-rw on it",
            path.display(),
            mode
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read work secret file {}", path.display()))?;
    let secret = text.trim().to_string();
    if secret.is_empty() {
        bail!("work secret file {} is empty", path.display());
    }
    Ok(secret)
}
