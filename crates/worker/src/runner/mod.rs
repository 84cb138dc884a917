//! The session tool runner (protocol.md §6): learns about tool calls from the
//! session's event stream and history, executes the ones this worker owns one at a
//! time in arrival order, and posts their results.
//!
//! Structure: a reader task ([`reader`]) feeds a channel; the dispatcher here owns
//! the [`state::RunnerState`], starts calls, posts results ([`send`]) and watches
//! the idle countdown and the cancellation token. A call already executing when
//! the runner is told to stop still finishes and its result is posted.

pub mod content;
pub mod io;
pub mod reader;
pub mod send;
pub mod state;

use futures::future::BoxFuture;
use futures::FutureExt;
use io::{owner_of, SessionEvents, ToolHost};
use reader::{read_events, Feed};
use sandkeep_tools::ToolOutput;
use state::{RunnerState, StopReason, ToolCall};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Result-send window when no lease TTL is known (§4.1).
pub const DEFAULT_SEND_WINDOW: Duration = Duration::from_secs(300);

/// How one session is run.
#[derive(Clone)]
pub struct RunnerOptions {
    /// `None` disables the idle countdown.
    pub max_idle: Option<Duration>,
    /// Outer bound of any tool call (150 s).
    pub tool_timeout: Duration,
    /// Latest lease TTL in seconds, published by the heartbeat loop; the
    /// result-send window. `None` → 300 s.
    pub send_window: watch::Receiver<Option<u64>>,
}

enum Step {
    Executed(ToolCall, ToolOutput),
    Posted(ToolCall, bool),
}

/// Tokio's clock as a std `Instant` (so paused-time tests stay consistent).
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Run the session until it terminates, idles out, is rejected, or `cancel` fires.
pub async fn run<A: SessionEvents, H: ToolHost>(
    api: A,
    host: Arc<H>,
    options: RunnerOptions,
    cancel: CancellationToken,
) -> StopReason {
    let mut state = RunnerState::new(owner_of(&host), options.max_idle);
    let (feed_tx, mut feed) = mpsc::channel(256);
    let reader = tokio::spawn(read_events(api.clone(), feed_tx));
    let mut inflight: Option<BoxFuture<'static, Step>> = None;
    let mut reader_open = true;
    loop {
        if inflight.is_none() {
            if state.stop_reason().is_some() {
                break;
            }
            if let Some(call) = state.next_call() {
                inflight = Some(execute(Arc::clone(&host), call, options.tool_timeout).boxed());
            }
        }
        let stopping = state.stop_reason().is_some();
        let idle_deadline = state.idle_deadline().filter(|_| !stopping);
        tokio::select! {
            step = async { inflight.as_mut().expect("guarded by the select condition").await }, if inflight.is_some() => {
                inflight = None;
                match step {
                    Step::Executed(call, output) if state.should_post(&call) => {
                        let event = content::result_event(&call, &output);
                        let window = (*options.send_window.borrow()).map(Duration::from_secs).unwrap_or(DEFAULT_SEND_WINDOW);
                        let api = api.clone();
                        inflight = Some(async move {
                            let posted = send::send_result(&api, &call.id, event, window).await;
                            Step::Posted(call, posted)
                        }.boxed());
                    }
                    Step::Executed(call, _) => {
                        tracing::info!(tool_use_id = %call.id, "call resolved elsewhere or its thread terminated; result not posted");
                        state.finish(&call, false, now());
                    }
                    Step::Posted(call, posted) => state.finish(&call, posted, now()),
                }
            }
            message = feed.recv(), if reader_open && !stopping => match message {
                Some(Feed::History(events)) => state.on_history(&events, now()),
                Some(Feed::HistoryFailed) => state.on_history_failed(),
                Some(Feed::Live(event)) => state.on_live(&event, now()),
                Some(Feed::Rejected(why)) => {
                    tracing::warn!(error = %why, "the session event stream was rejected; stopping the runner");
                    state.request_stop(StopReason::StreamRejected(why));
                }
                None => reader_open = false,
            },
            _ = sleep_until(idle_deadline), if idle_deadline.is_some() => {
                tracing::info!("session idle for max_idle; stopping the runner");
                state.request_stop(StopReason::Idle);
            }
            _ = cancel.cancelled(), if !stopping => state.request_stop(StopReason::Cancelled),
        }
    }
    reader.abort();
    state
        .stop_reason()
        .cloned()
        .unwrap_or(StopReason::Cancelled)
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
    }
}

async fn execute<H: ToolHost>(host: Arc<H>, call: ToolCall, timeout: Duration) -> Step {
    tracing::info!(tool_use_id = %call.id, tool = %call.name, "executing tool call");
    // The host enforces `timeout` itself; this outer bound (plus a grace for the
    // host's own cleanup) guards against a host that never answers.
    let bounded = tokio::time::timeout(
        timeout + Duration::from_secs(5),
        host.call(&call.name, call.input.clone(), timeout),
    );
    let output = bounded
        .await
        .unwrap_or_else(|_| ToolOutput::deadline(&call.name));
    Step::Executed(call, output)
}

#[cfg(test)]
mod tests;
