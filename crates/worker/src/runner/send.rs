//! Result-send retries (protocol.md §4.4).

use super::io::{Failure, SessionEvents};
use crate::backoff;
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// Post one result event. Transient failures are retried with jittered backoff
/// until `window` has elapsed; a fatal 4xx gives up at once. Returns whether the
/// result reached the server.
pub async fn send_result<A: SessionEvents>(
    api: &A,
    tool_use_id: &str,
    event: Value,
    window: Duration,
) -> bool {
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match api.send(event.clone()).await {
            Ok(()) => return true,
            Err(Failure::Fatal(why)) => {
                tracing::warn!(tool_use_id, error = %why, "result rejected; not posted");
                return false;
            }
            Err(Failure::Transient(why)) => {
                let remaining = window.saturating_sub(started.elapsed());
                if remaining.is_zero() {
                    tracing::warn!(tool_use_id, attempts = attempt, error = %why, "result send window exhausted; not posted");
                    return false;
                }
                tracing::debug!(tool_use_id, attempt, error = %why, "result send failed; retrying");
                tokio::time::sleep(backoff::result_send(attempt).min(remaining)).await;
            }
        }
    }
}
