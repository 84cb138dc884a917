//! A local emulator of the Claude Managed Agents control plane (protocol.md
//! §3, §6, §7, §11): environments, the work queue with leases, agents,
//! sessions with event logs and SSE, skills, a scripted agent
//! ([`scenario`]) and fault injection ([`faults`]). It is a test double that
//! the official Python SDK and the sandkeep worker both run against.

pub mod auth;
pub mod error;
pub mod events;
pub mod extract;
pub mod faults;
pub mod ids;
pub mod queue;
mod routes;
pub mod scenario;
pub mod sse;
pub mod state;

pub use faults::{DelayRule, FailRule, Faults};
pub use scenario::Scenario;

use state::{AppState, Shared};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Emulator settings.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Plays the operator's Claude API key and unlocks `/v1/emulator/*`.
    pub admin_key: String,
    /// Work-item lease TTL (§3.4.2; the real server's default is 300 s).
    pub lease_ttl_seconds: u64,
    /// Default `reclaim_older_than_ms` for un-acked items (§3.4.1).
    pub reclaim_default_ms: u64,
    /// Interval of `event: ping` on SSE streams.
    pub ping_interval: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            admin_key: "sk-emu-admin".into(),
            lease_ttl_seconds: 300,
            reclaim_default_ms: 5000,
            ping_interval: Duration::from_secs(15),
        }
    }
}

/// The emulator; cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct Emulator {
    state: AppState,
}

impl Emulator {
    pub fn new(config: EmulatorConfig) -> Self {
        Self {
            state: Arc::new(Shared::new(config)),
        }
    }

    pub fn config(&self) -> &EmulatorConfig {
        &self.state.config
    }

    /// The axum router serving the whole API.
    pub fn router(&self) -> axum::Router {
        routes::router(self.state.clone())
    }

    /// Serves on `listener` until the process ends.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        use axum::serve::ListenerExt;
        // Small SSE chunks and responses must leave at once: with Nagle a write
        // waits for the peer's (possibly delayed) ACK of the previous one.
        let listener = listener.tap_io(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY on an accepted connection");
            }
        });
        axum::serve(listener, self.router()).await
    }

    /// Binds `addr` (e.g. `"127.0.0.1:0"`), serves on a background task and
    /// returns the emulator with the bound address.
    pub async fn spawn(
        config: EmulatorConfig,
        addr: &str,
    ) -> std::io::Result<(Emulator, SocketAddr)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let emulator = Emulator::new(config);
        let server = emulator.clone();
        tokio::spawn(async move {
            if let Err(error) = server.serve(listener).await {
                tracing::error!(%error, "emulator server stopped");
            }
        });
        Ok((emulator, bound))
    }

    /// Arms faults in-process (same effect as `POST /v1/emulator/faults`).
    /// Returns the work ids whose lease was actually expired.
    pub fn inject_faults(&self, faults: Faults) -> Vec<String> {
        apply_faults(&self.state, &faults)
    }

    /// Disarms every request, stream and heartbeat fault.
    pub fn clear_faults(&self) {
        self.state.faults().clear();
    }
}

/// Arms `faults`; stream drops and lease expiry take effect immediately.
pub(crate) fn apply_faults(state: &AppState, faults: &Faults) -> Vec<String> {
    state.faults().arm(faults);
    if faults.drop_streams_now {
        state
            .stream_drops
            .send_modify(|generation| *generation += 1);
    }
    let mut store = state.store();
    let expired: Vec<String> = faults
        .expire_leases
        .iter()
        .filter(|id| queue::force_expire(&mut store, id))
        .cloned()
        .collect();
    drop(store);
    if !expired.is_empty() {
        state.work_enqueued.notify_waiters();
    }
    expired
}
