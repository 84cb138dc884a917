//! The poll loop (protocol.md §4.2) with bounded concurrency and graceful drain.
//!
//! Up to `max_sessions` items run at once; the loop polls only while a slot is
//! free. On shutdown it stops claiming, lets in-flight items finish within
//! `drain_timeout`, then cancels them (their teardown and final stop still run).

use crate::backoff;
use crate::config::WorkerConfig;
use crate::{item, on_work};
use anyhow::{anyhow, bail};
use sandkeep_api::{ApiError, Client, Helper, WorkItem};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The poll `block_ms` the worker always sends.
const BLOCK_MS: u32 = 999;
/// Reminder interval of the "queue is empty" log line.
const IDLE_REMINDER: Duration = Duration::from_secs(300);

/// Why the loop stopped claiming work.
enum LoopEnd {
    Shutdown,
    Drained,
    Failed(anyhow::Error),
}

/// A finished item task: `Err` only for errors that must stop the poller.
type ItemResult = anyhow::Result<()>;

pub async fn run_poll(config: WorkerConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let environment_id = config.environment_id.clone().filter(|s| !s.is_empty());
    let environment_key = config.environment_key.clone().filter(|s| !s.is_empty());
    let (Some(env), Some(key)) = (environment_id, environment_key) else {
        bail!(
            "environment_id and environment_key are required to poll for work; pass --environment-id and \
             --environment-key or set ANTHROPIC_ENVIRONMENT_ID and ANTHROPIC_ENVIRONMENT_KEY"
        );
    };
    let poller = Client::new(config.client.clone(), &key, Helper::WorkPoller)?
        .with_worker_id(config.worker_id.clone());
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.max_sessions.max(1)));
    let hard_cancel = CancellationToken::new();
    let mut items: JoinSet<ItemResult> = JoinSet::new();
    tracing::info!(environment_id = %env, worker_id = %config.worker_id, max_sessions = config.max_sessions, "polling for work");

    let end = claim_loop(
        &config,
        &poller,
        &env,
        &slots,
        &shutdown,
        &hard_cancel,
        &mut items,
    )
    .await;
    let end_now = !matches!(end, LoopEnd::Drained);
    let fatal = finish_items(
        &mut items,
        &shutdown,
        end_now,
        config.drain_timeout,
        &hard_cancel,
    )
    .await;
    match end {
        LoopEnd::Failed(e) => Err(e),
        LoopEnd::Shutdown | LoopEnd::Drained => fatal.map_or(Ok(()), Err),
    }
}

/// Claim and dispatch items until shutdown, an empty queue in drain mode, or a
/// fatal error.
async fn claim_loop(
    config: &Arc<WorkerConfig>,
    poller: &Client,
    env: &str,
    slots: &Arc<Semaphore>,
    shutdown: &CancellationToken,
    hard_cancel: &CancellationToken,
    items: &mut JoinSet<ItemResult>,
) -> LoopEnd {
    let mut poll_attempt = 0u32;
    let mut ack_attempt = 0u32;
    let mut idle_logged_at: Option<Instant> = None;
    loop {
        // A fatal item error (an unrunnable --on-work script) stops claiming at once.
        while let Some(done) = items.try_join_next() {
            if let Some(e) = fatal_of(done) {
                return LoopEnd::Failed(e);
            }
        }
        let permit = tokio::select! {
            permit = Arc::clone(slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return LoopEnd::Shutdown,
            },
            Some(done) = items.join_next() => {
                if let Some(e) = fatal_of(done) { return LoopEnd::Failed(e) }
                continue;
            }
            _ = shutdown.cancelled() => return LoopEnd::Shutdown,
        };
        let polled = tokio::select! {
            polled = poller.poll_work(env, Some(BLOCK_MS), config.reclaim_older_than_ms) => polled,
            _ = shutdown.cancelled() => return LoopEnd::Shutdown,
        };
        let work = match polled {
            Ok(Some(work)) => work,
            Ok(None) => {
                poll_attempt = 0;
                if config.drain {
                    tracing::info!("work queue is empty; drain mode, stopping");
                    return LoopEnd::Drained;
                }
                if idle_logged_at.is_none_or(|t| t.elapsed() >= IDLE_REMINDER) {
                    tracing::info!("no work queued; waiting");
                    idle_logged_at = Some(Instant::now());
                }
                if let Some(end) = pause(backoff::empty_poll(), shutdown, items).await {
                    return end;
                }
                continue;
            }
            Err(e) if e.is_fatal_4xx() => return LoopEnd::Failed(anyhow!(poll_rejected(env, &e))),
            Err(e) if !e.is_transient() => return LoopEnd::Failed(e.into()),
            Err(e) => {
                poll_attempt += 1;
                let wait = backoff::poll_failure(poll_attempt);
                tracing::warn!(error = %e, attempt = poll_attempt, wait_s = wait.as_secs_f64(), "poll failed; backing off");
                if let Some(end) = pause(wait, shutdown, items).await {
                    return end;
                }
                continue;
            }
        };
        poll_attempt = 0;
        idle_logged_at = None;
        match poller.ack_work(env, &work.id).await {
            Ok(()) => {
                ack_attempt = 0;
                tracing::info!(work_id = %work.id, session_id = %work.data.id, "claimed work item");
                let tokens = ItemTokens {
                    shutdown: shutdown.clone(),
                    hard_cancel: hard_cancel.clone(),
                };
                items.spawn(run_item_task(
                    Arc::clone(config),
                    poller.clone(),
                    work,
                    tokens,
                    permit,
                ));
            }
            Err(e) if e.is_fatal_4xx() => {
                tracing::warn!(work_id = %work.id, error = %e, "ack rejected; force-stopping the work item");
                match poller.stop_work(env, &work.id, true).await {
                    Ok(()) => {}
                    Err(stop) if stop.status() == Some(409) => {}
                    Err(stop) => {
                        tracing::warn!(work_id = %work.id, error = %stop, "force-stop after ack failure failed")
                    }
                }
            }
            Err(e) if !e.is_transient() => return LoopEnd::Failed(e.into()),
            Err(e) => {
                ack_attempt += 1;
                let wait = backoff::poll_failure(ack_attempt);
                // Not stopped: the server reclaims un-acked items (§4.2 step 3).
                tracing::warn!(work_id = %work.id, error = %e, attempt = ack_attempt, "ack failed; backing off");
                if let Some(end) = pause(wait, shutdown, items).await {
                    return end;
                }
            }
        }
    }
}

fn poll_rejected(env: &str, e: &ApiError) -> String {
    let hint = match e.status() {
        Some(401) => "check that the environment key is valid (ANTHROPIC_ENVIRONMENT_KEY / --environment-key)",
        Some(403) => "check that the environment key belongs to this environment",
        Some(404) => "check the environment id (ANTHROPIC_ENVIRONMENT_ID / --environment-id) and the base URL",
        _ => "check the environment id, the environment key and the base URL",
    };
    format!("polling environment {env} was rejected: {e}; {hint}")
}

/// Sleep `wait`, reaping finished items meanwhile. Returns early with the
/// loop's end on shutdown or on a fatal item error.
async fn pause(
    wait: Duration,
    shutdown: &CancellationToken,
    items: &mut JoinSet<ItemResult>,
) -> Option<LoopEnd> {
    let sleep = tokio::time::sleep(wait);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return None,
            _ = shutdown.cancelled() => return Some(LoopEnd::Shutdown),
            Some(done) = items.join_next() => {
                if let Some(e) = fatal_of(done) {
                    return Some(LoopEnd::Failed(e));
                }
            }
        }
    }
}

/// `shutdown`: the poller is stopping (scripts get SIGTERM at once).
/// `hard_cancel`: the drain timeout passed (built-in sessions are cancelled).
struct ItemTokens {
    shutdown: CancellationToken,
    hard_cancel: CancellationToken,
}

async fn run_item_task(
    config: Arc<WorkerConfig>,
    poller: Client,
    work: WorkItem,
    tokens: ItemTokens,
    _slot: OwnedSemaphorePermit,
) -> ItemResult {
    if let Some(script) = config.on_work_script() {
        return on_work::handle_item(
            &config,
            &poller,
            &work,
            script,
            &tokens.shutdown,
            &tokens.hard_cancel,
        )
        .await;
    }
    if let Err(e) = item::handle_item(&config, Some(&poller), &work, tokens.hard_cancel).await {
        tracing::error!("work item failed work_id={} error={e:#}", work.id);
    }
    Ok(())
}

fn fatal_of(done: Result<ItemResult, tokio::task::JoinError>) -> Option<anyhow::Error> {
    match done {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(e) if e.is_panic() => {
            tracing::error!(error = %e, "a work item task panicked");
            None
        }
        Err(_) => None,
    }
}

/// Wait for in-flight items. Once draining starts (shutdown, or `now`), they get
/// `drain_timeout`, then the hard-cancel token fires and the rest are awaited.
/// Returns the first fatal error an item reported.
async fn finish_items(
    items: &mut JoinSet<ItemResult>,
    shutdown: &CancellationToken,
    now: bool,
    drain_timeout: Duration,
    hard_cancel: &CancellationToken,
) -> Option<anyhow::Error> {
    let mut fatal = None;
    let mut deadline = now.then(|| Instant::now() + drain_timeout);
    if !items.is_empty() && deadline.is_some() {
        tracing::info!(in_flight = items.len(), "waiting for in-flight work items");
    }
    loop {
        let hard_deadline = deadline.filter(|_| !hard_cancel.is_cancelled());
        tokio::select! {
            done = items.join_next() => match done {
                None => return fatal,
                Some(done) => if let Some(e) = fatal_of(done) { fatal.get_or_insert(e); },
            },
            _ = shutdown.cancelled(), if deadline.is_none() => deadline = Some(Instant::now() + drain_timeout),
            _ = tokio::time::sleep_until(hard_deadline.unwrap_or_else(Instant::now)), if hard_deadline.is_some() => {
                tracing::warn!(in_flight = items.len(), "drain timeout reached; cancelling in-flight work items");
                hard_cancel.cancel();
            }
        }
    }
}
