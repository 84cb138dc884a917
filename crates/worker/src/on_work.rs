//! `poll --on-work <script>` (protocol.md §10.4): hand each claimed item to an
//! external script instead of the built-in runner.

use crate::config::WorkerConfig;
use anyhow::anyhow;
use sandkeep_api::{Client, ClientConfig, WorkItem};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Grace between SIGTERM and abandoning the script on shutdown.
const TERM_GRACE: Duration = Duration::from_secs(30);
/// Bound of the plain stop after the script returns.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Run the script for one item, then post a plain stop with the environment key.
/// The script gets SIGTERM as soon as `shutdown` or `cancel` fires (§10.4 step 6).
/// `Err` is fatal for the whole poller (the script cannot be started).
pub async fn handle_item(
    config: &WorkerConfig,
    poller: &Client,
    work: &WorkItem,
    script: &Path,
    shutdown: &CancellationToken,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let span = tracing::info_span!("work_item", work_id = %work.id, session_id = %work.data.id);
    async {
        if work.data.is_session() {
            run_script(config, work, script, shutdown, cancel).await?;
        } else {
            tracing::info!(work_type = %work.data.kind, "unsupported work type, skipping");
        }
        let stop = tokio::time::timeout(
            STOP_TIMEOUT,
            poller.stop_work(&work.environment_id, &work.id, false),
        )
        .await;
        match stop {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.status() == Some(409) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "stopping the work item after the on-work script failed")
            }
            Err(_) => tracing::warn!("stopping the work item after the on-work script timed out"),
        }
        Ok(())
    }
    .instrument(span)
    .await
}

fn command(config: &WorkerConfig, work: &WorkItem, script: &Path) -> Command {
    let mut cmd = Command::new(script);
    cmd.env("ANTHROPIC_WORK_ID", &work.id)
        .env("ANTHROPIC_ENVIRONMENT_ID", &work.environment_id)
        .env("ANTHROPIC_SESSION_ID", &work.data.id)
        .env(
            "ANTHROPIC_ENVIRONMENT_KEY",
            config.environment_key.as_deref().unwrap_or(""),
        )
        // The secret travels on stdin only.
        .env_remove("ANTHROPIC_WORK_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A base URL given by flag (not by environment) still reaches the script.
    if std::env::var_os("ANTHROPIC_BASE_URL").is_none()
        && config.client.base_url != ClientConfig::default().base_url
    {
        cmd.env("ANTHROPIC_BASE_URL", &config.client.base_url);
    }
    cmd
}

async fn run_script(
    config: &WorkerConfig,
    work: &WorkItem,
    script: &Path,
    shutdown: &CancellationToken,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let mut child = command(config, work, script).spawn().map_err(|e| {
        anyhow!(
            "fatal worker error: on-work script \"{}\" is unrunnable: {e}",
            script.display()
        )
    })?;
    let copies = forward_output(&mut child);
    if let Some(mut stdin) = child.stdin.take() {
        let body = serde_json::to_vec(work)?;
        // A script that ignores stdin may close it early; that is not an error.
        let _ = stdin.write_all(&body).await;
    }
    let status = tokio::select! {
        status = child.wait() => status.ok(),
        _ = shutdown.cancelled() => terminate(&mut child).await,
        _ = cancel.cancelled() => terminate(&mut child).await,
    };
    // A detached grandchild may keep the pipes open; its output keeps flowing in
    // the background, but the item does not wait for it.
    for copy in copies {
        let _ = tokio::time::timeout(Duration::from_secs(2), copy).await;
    }
    match status {
        Some(status) if status.success() => tracing::info!("on-work script finished"),
        Some(status) => {
            tracing::warn!(status = %describe(status), "on-work script exited non-zero")
        }
        None => tracing::warn!("on-work script abandoned"),
    }
    Ok(())
}

/// Copy the script's stdout and stderr to our stderr.
fn forward_output(child: &mut Child) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        tasks.push(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut out, &mut tokio::io::stderr()).await;
        }));
    }
    if let Some(mut err) = child.stderr.take() {
        tasks.push(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut err, &mut tokio::io::stderr()).await;
        }));
    }
    tasks
}

/// SIGTERM, then wait up to 30 s; past that, kill and abandon it.
async fn terminate(child: &mut Child) -> Option<ExitStatus> {
    if let Some(pid) = child.id() {
        // SAFETY: plain signal delivery to our own child's pid.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    }
    match tokio::time::timeout(TERM_GRACE, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            tracing::warn!("on-work script ignored SIGTERM for 30 s; killing it");
            let _ = child.start_kill();
            None
        }
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => status.to_string(),
    }
}
