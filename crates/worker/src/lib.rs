//! The sandkeep worker: claims work items from an environment's queue and serves
//! each session's tool calls (protocol.md §4–§7, §10).
//!
//! * [`run_poll`]: the long-running poll loop (`sandkeep poll`), with up to
//!   `max_sessions` items in flight and a graceful drain on shutdown.
//! * [`run_item`]: one already-claimed item (`sandkeep run`, SDK `handle_item`).
//!
//! Inside: [`lease`] (heartbeats), [`item`] (the per-item flow), [`runner`] (the
//! session tool runner), [`skills`] (download and safe extraction), [`on_work`]
//! (`--on-work` scripts).

pub mod backoff;
pub mod config;
pub mod item;
pub mod lease;
pub mod on_work;
pub mod poller;
pub mod runner;
pub mod skills;
pub mod workspace;

pub use config::{ClaimedItem, WorkdirLayout, WorkerConfig};
pub use poller::run_poll;

use sandkeep_api::{WorkData, WorkItem, WorkState};
use tokio_util::sync::CancellationToken;

/// Run the per-item flow once for an item claimed elsewhere. It does not poll or
/// ack. Cancelling `shutdown` ends the session promptly: an executing tool call
/// still finishes and is posted, then teardown and the final stop run.
pub async fn run_item(
    config: WorkerConfig,
    item: ClaimedItem,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let work = WorkItem {
        kind: "work".into(),
        id: item.work_id,
        environment_id: item.environment_id,
        state: WorkState::Starting,
        data: WorkData {
            kind: "session".into(),
            id: item.session_id,
        },
        metadata: Default::default(),
        secret: item.secret,
        created_at: None,
        acknowledged_at: None,
        started_at: None,
        latest_heartbeat_at: None,
        stop_requested_at: None,
        stopped_at: None,
    };
    item::handle_item(&config, None, &work, shutdown).await
}
