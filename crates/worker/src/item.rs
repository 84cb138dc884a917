//! The per-item flow (protocol.md §5.2): credential, heartbeat, session fetch,
//! skills, the tool runner, teardown and the final force-stop.
//!
//! Cancellation only ever arrives as a token (lease end, hard shutdown); the item
//! future itself is never dropped, so teardown and the final stop always run.

use crate::config::WorkerConfig;
use crate::lease::{ApiLease, Lease, LeaseEnd};
use crate::runner::{self, io::ApiSession, state::StopReason, RunnerOptions};
use crate::skills;
use crate::workspace::{skills_dir, Workspace};
use anyhow::{anyhow, Context};
use sandkeep_api::{decode_sessions_token, Client, Helper, Session, WorkItem};
use sandkeep_sandbox::{SessionExecutor, SessionSpec};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The §1.3 error when an item has no usable credential.
pub fn no_credential_message(work_id: &str) -> String {
    format!(
        "the work item's secret payload yielded no sessions token and no environment key is available; \
         provide a secret whose payload carries a sessions_token, or an environment key \
         (pass one or set ANTHROPIC_ENVIRONMENT_KEY) work_id={work_id}"
    )
}

/// Sessions token from the secret, else the environment key (§1.3).
pub fn item_credential(work: &WorkItem, environment_key: Option<&str>) -> anyhow::Result<String> {
    let token = decode_sessions_token(work.secret.as_deref());
    if token.is_none() && work.secret.as_deref().is_some_and(|s| !s.is_empty()) {
        tracing::warn!(
            "the work item's secret yielded no sessions token; falling back to the environment key"
        );
    }
    token
        .or_else(|| {
            environment_key
                .filter(|k| !k.is_empty())
                .map(str::to_string)
        })
        .ok_or_else(|| anyhow!(no_credential_message(&work.id)))
}

/// A client for `credential`, sharing `base`'s connection pool when there is one.
fn client_for(
    config: &WorkerConfig,
    base: Option<&Client>,
    credential: &str,
    helper: Helper,
) -> anyhow::Result<Client> {
    let client = match base {
        Some(base) => base.scoped(credential, helper),
        None => Client::new(config.client.clone(), credential, helper),
    };
    client.context("cannot build the control-plane client for this work item")
}

/// Run the whole flow for one claimed (and acked) item.
pub async fn handle_item(
    config: &WorkerConfig,
    base: Option<&Client>,
    work: &WorkItem,
    hard_cancel: CancellationToken,
) -> anyhow::Result<()> {
    let span = tracing::info_span!("work_item", work_id = %work.id, session_id = %work.data.id);
    async {
        let credential = item_credential(work, config.environment_key.as_deref())?;
        let worker = client_for(config, base, &credential, Helper::Worker)?;
        if !work.data.is_session() {
            tracing::info!(work_type = %work.data.kind, "not a session work item; stopping it");
            final_stop(&worker, work).await;
            return Ok(());
        }
        // Before anything slow, so a long skill download cannot let the lease lapse.
        let lease_api = ApiLease { client: worker.clone(), environment_id: work.environment_id.clone(), work_id: work.id.clone() };
        let lease = Lease::start(lease_api, &work.id);
        let outcome = serve_session(config, base, &credential, &worker, work, &lease, hard_cancel).await;
        let reason = lease.finish(LeaseEnd::RunnerDone).await;
        if reason.is_lost() {
            tracing::info!(reason = ?reason, "lease lost; released the work item without stopping it");
        } else {
            final_stop(&worker, work).await;
        }
        outcome
    }
    .instrument(span)
    .await
}

/// `stop {"force": true}`; 409 (already stopped) is success.
async fn final_stop(worker: &Client, work: &WorkItem) {
    match worker.stop_work(&work.environment_id, &work.id, true).await {
        Ok(()) => tracing::info!("work item stopped"),
        Err(e) if e.status() == Some(409) => {}
        Err(e) => tracing::warn!(error = %e, "force-stop on exit failed"),
    }
}

async fn serve_session(
    config: &WorkerConfig,
    base: Option<&Client>,
    credential: &str,
    worker: &Client,
    work: &WorkItem,
    lease: &Lease,
    hard_cancel: CancellationToken,
) -> anyhow::Result<()> {
    let session_id = &work.data.id;
    let ended = lease.ended();
    let session = tokio::select! {
        session = worker.retrieve_session(session_id) => session.with_context(|| format!("cannot read session {session_id}"))?,
        _ = ended.cancelled() => return Ok(()),
        _ = hard_cancel.cancelled() => return Ok(()),
    };
    if session.is_terminated() {
        tracing::info!("session is terminated; nothing to run");
        crate::workspace::remove_ended(config, session_id);
        return Ok(());
    }
    if session
        .resources
        .iter()
        .any(|r| r.get("type").and_then(|t| t.as_str()) == Some("memory_store"))
    {
        tracing::warn!("this session has memory stores attached; sandkeep does not mount memory stores, so the session runs without them");
    }
    let workspace = Workspace::open(config, session_id)?;
    let result = serve_in_workspace(
        config,
        base,
        credential,
        worker,
        &session,
        &workspace.path,
        lease,
        hard_cancel,
    )
    .await;
    workspace.close(matches!(result, Ok(true)));
    result.map(|_| ())
}

#[allow(clippy::too_many_arguments)]
async fn serve_in_workspace(
    config: &WorkerConfig,
    base: Option<&Client>,
    credential: &str,
    worker: &Client,
    session: &Session,
    workspace: &std::path::Path,
    lease: &Lease,
    hard_cancel: CancellationToken,
) -> anyhow::Result<bool> {
    let ended = lease.ended();
    let mut installed: Vec<PathBuf> = Vec::new();
    if !session.agent.skills.is_empty() {
        let target = skills_dir(workspace);
        tokio::select! {
            _ = skills::download_all(worker, &session.agent.skills, &target, &mut installed) => {}
            _ = ended.cancelled() => {}
            _ = hard_cancel.cancelled() => {}
        }
    }
    let result = if ended.is_cancelled() || hard_cancel.is_cancelled() {
        Ok(false)
    } else {
        run_tools(
            config,
            base,
            credential,
            session,
            workspace,
            lease,
            hard_cancel,
        )
        .await
    };
    skills::remove_installed(&installed);
    result
}

async fn run_tools(
    config: &WorkerConfig,
    base: Option<&Client>,
    credential: &str,
    session: &Session,
    workspace: &std::path::Path,
    lease: &Lease,
    hard_cancel: CancellationToken,
) -> anyhow::Result<bool> {
    let spec = SessionSpec {
        session_id: session.id.clone(),
        workspace: workspace.to_path_buf(),
        allowed_roots: Vec::new(),
    };
    let policy = config.policy.clone();
    let executor = tokio::task::spawn_blocking(move || SessionExecutor::start(&policy, &spec))
        .await
        .map_err(|e| anyhow!("the sandbox start task failed: {e}"))?
        .context("cannot start the session's tool host")?;
    let host = Arc::new(executor);
    let api = ApiSession {
        client: client_for(config, base, credential, Helper::SessionToolRunner)?,
        session_id: session.id.clone(),
    };
    let options = RunnerOptions {
        max_idle: config.max_idle,
        tool_timeout: config.tool_timeout,
        send_window: lease.ttl(),
    };
    let runner_cancel = CancellationToken::new();
    let runner = runner::run(api, Arc::clone(&host), options, runner_cancel.clone());
    tokio::pin!(runner);
    let ended = lease.ended();
    let reason = tokio::select! {
        reason = &mut runner => reason,
        _ = ended.cancelled() => { runner_cancel.cancel(); runner.await }
        _ = hard_cancel.cancelled() => { runner_cancel.cancel(); runner.await }
    };
    tracing::info!(reason = ?reason, "session runner finished");
    match Arc::try_unwrap(host) {
        Ok(mut executor) => executor.close().await,
        Err(_) => {
            tracing::warn!("the tool host is still referenced; it will be closed when released")
        }
    }
    // Whether the session itself has ended (its workspace may go), not just this item.
    Ok(matches!(
        reason,
        StopReason::Terminated | StopReason::Deleted
    ))
}
