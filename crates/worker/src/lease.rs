//! The per-item heartbeat loop (protocol.md §4.3).
//!
//! [`Lease::start`] spawns the loop; the lease ends when the server says stop, the
//! lease is lost or rejected, or the item's flow ends it. Its `ended` token cancels
//! the rest of the item's flow; `ttl` publishes the latest lease TTL to the runner
//! as its result-send window.

use crate::backoff;
use sandkeep_api::{ApiError, Client, Heartbeat, NO_HEARTBEAT};
use serde_json::Value;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Interval before the first response.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// TTL assumed before the first successful heartbeat.
const ASSUMED_TTL: u64 = 90;

/// Why a lease ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseEnd {
    /// The server reported `stopping`/`stopped` or did not extend the lease.
    HeartbeatStop,
    /// HTTP 412: another heartbeat won; the item is no longer ours.
    LeaseLost,
    /// Another fatal 4xx.
    Rejected,
    /// Transient failures for longer than the TTL.
    AssumedLost,
    /// The item's flow finished.
    RunnerDone,
}

impl LeaseEnd {
    /// After these the worker must not stop the item (§4.3 lease-lost rule).
    pub fn is_lost(self) -> bool {
        matches!(self, LeaseEnd::LeaseLost | LeaseEnd::AssumedLost)
    }
}

/// How one heartbeat failed.
#[derive(Debug, Clone)]
pub enum HeartbeatFailure {
    /// 412; the text describes the server's view of the lease.
    PreconditionFailed(String),
    Fatal(String),
    Transient(String),
}

impl From<ApiError> for HeartbeatFailure {
    fn from(e: ApiError) -> Self {
        if e.status() == Some(412) {
            let state = match &e {
                ApiError::Status { body, .. } => {
                    body.pointer("/error/details/current_state").cloned()
                }
                _ => None,
            }
            .unwrap_or(Value::Null);
            HeartbeatFailure::PreconditionFailed(format!(
                "server state={} ttl_seconds={} last_heartbeat={}",
                state["state"], state["ttl_seconds"], state["last_heartbeat"]
            ))
        } else if e.is_fatal_4xx() {
            HeartbeatFailure::Fatal(e.to_string())
        } else {
            HeartbeatFailure::Transient(e.to_string())
        }
    }
}

/// One heartbeat call for a fixed item.
pub trait HeartbeatApi: Send + Sync + 'static {
    fn heartbeat(
        &self,
        expected: &str,
    ) -> impl Future<Output = Result<Heartbeat, HeartbeatFailure>> + Send;
}

/// The control-plane implementation (`environments-worker` client).
pub struct ApiLease {
    pub client: Client,
    pub environment_id: String,
    pub work_id: String,
}

impl HeartbeatApi for ApiLease {
    async fn heartbeat(&self, expected: &str) -> Result<Heartbeat, HeartbeatFailure> {
        Ok(self
            .client
            .heartbeat(&self.environment_id, &self.work_id, expected)
            .await?)
    }
}

/// A running heartbeat loop.
pub struct Lease {
    ended: CancellationToken,
    reason: Arc<Mutex<Option<LeaseEnd>>>,
    ttl: watch::Receiver<Option<u64>>,
    task: JoinHandle<()>,
}

impl Lease {
    pub fn start<A: HeartbeatApi>(api: A, work_id: &str) -> Lease {
        let ended = CancellationToken::new();
        let reason = Arc::new(Mutex::new(None));
        let (ttl_tx, ttl) = watch::channel(None);
        let span = tracing::info_span!("lease", work_id);
        let task = tokio::spawn(tracing::Instrument::instrument(
            heartbeat_loop(api, ended.clone(), Arc::clone(&reason), ttl_tx),
            span,
        ));
        Lease {
            ended,
            reason,
            ttl,
            task,
        }
    }

    /// Cancelled when the lease ends for any reason.
    pub fn ended(&self) -> CancellationToken {
        self.ended.clone()
    }

    /// The latest lease TTL (seconds), for the runner's send window.
    pub fn ttl(&self) -> watch::Receiver<Option<u64>> {
        self.ttl.clone()
    }

    pub fn reason(&self) -> Option<LeaseEnd> {
        *self.reason.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// End the lease (if it has not ended yet), wait for the loop, and return the
    /// reason it actually ended with.
    pub async fn finish(self, reason: LeaseEnd) -> LeaseEnd {
        end(&self.ended, &self.reason, reason);
        let actual = Arc::clone(&self.reason);
        let _ = self.task.await;
        let ended_with = *actual.lock().unwrap_or_else(|p| p.into_inner());
        ended_with.unwrap_or(reason)
    }
}

fn end(token: &CancellationToken, slot: &Mutex<Option<LeaseEnd>>, reason: LeaseEnd) {
    slot.lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert(reason);
    token.cancel();
}

async fn heartbeat_loop<A: HeartbeatApi>(
    api: A,
    ended: CancellationToken,
    reason: Arc<Mutex<Option<LeaseEnd>>>,
    ttl_tx: watch::Sender<Option<u64>>,
) {
    let mut interval = DEFAULT_INTERVAL;
    let mut ttl = ASSUMED_TTL;
    let mut expected = NO_HEARTBEAT.to_string();
    let mut last_success = Instant::now();
    loop {
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(interval, api.heartbeat(&expected)) => outcome,
            _ = ended.cancelled() => return,
        };
        let failure = match outcome {
            Ok(Ok(beat)) => {
                expected = beat.last_heartbeat.clone();
                last_success = Instant::now();
                if let Some(next) = backoff::heartbeat_interval(beat.ttl_seconds) {
                    ttl = beat.ttl_seconds as u64;
                    interval = next;
                    let _ = ttl_tx.send(Some(ttl));
                }
                if beat.state.is_stopping() || !beat.lease_extended {
                    tracing::info!(state = ?beat.state, lease_extended = beat.lease_extended, "work item is stopping; wrapping up");
                    return end(&ended, &reason, LeaseEnd::HeartbeatStop);
                }
                None
            }
            Ok(Err(HeartbeatFailure::PreconditionFailed(details))) => {
                tracing::warn!(
                    "lease lost; released the work item without stopping it ({details})"
                );
                return end(&ended, &reason, LeaseEnd::LeaseLost);
            }
            Ok(Err(HeartbeatFailure::Fatal(why))) => {
                tracing::warn!(error = %why, "heartbeat rejected; ending the work item");
                return end(&ended, &reason, LeaseEnd::Rejected);
            }
            Ok(Err(HeartbeatFailure::Transient(why))) => Some(why),
            Err(_) => Some(format!("no answer within {:.1} s", interval.as_secs_f64())),
        };
        if let Some(why) = failure {
            if last_success.elapsed() > Duration::from_secs(ttl) {
                tracing::warn!(error = %why, ttl_seconds = ttl, "lease lost; released the work item (no successful heartbeat within the lease TTL)");
                return end(&ended, &reason, LeaseEnd::AssumedLost);
            }
            tracing::warn!(error = %why, "heartbeat failed; will retry");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = ended.cancelled() => return,
        }
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
