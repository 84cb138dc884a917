//! Wire types and HTTP client for the Claude Managed Agents self-hosted environment
//! protocol (`/work/shared/spec/protocol.md`).
//!
//! * [`Client`]: one Bearer credential + helper tag per client, a shared connection pool,
//!   the protocol headers (§1.4–1.6), HTTP-layer retries (§2.2) and typed endpoints for
//!   the work queue (§3), sessions/events (§6) and skills (§7).
//! * [`ApiError`]: error envelope parsing and transient/fatal classification (§2.3).
//! * [`EventStream`]: the session SSE stream (§2.5).
//! * [`decode_sessions_token`]: per-item credential extraction (§1.2).
//!
//! ```no_run
//! use sandkeep_api::{decode_sessions_token, default_worker_id, Client, ClientConfig, Helper};
//!
//! # async fn demo() -> Result<(), sandkeep_api::ApiError> {
//! let poller = Client::new(ClientConfig::from_env()?, "env-key", Helper::WorkPoller)?
//!     .with_worker_id(default_worker_id());
//! if let Some(item) = poller.poll_work("env_1", Some(999), None).await? {
//!     poller.ack_work("env_1", &item.id).await?;
//!     let token = decode_sessions_token(item.secret.as_deref());
//!     let worker = poller.scoped(token.as_deref().unwrap_or("env-key"), Helper::Worker)?;
//!     let beat = worker.heartbeat("env_1", &item.id, sandkeep_api::NO_HEARTBEAT).await?;
//!     println!("lease state {:?}, ttl {} s", beat.state, beat.ttl_seconds);
//! }
//! # Ok(())
//! # }
//! ```

// `ApiError::Status` carries the whole parsed error body by design (callers inspect
// `details`); boxing it would change the public variant shape other crates match on.
#![allow(clippy::result_large_err)]

mod client;
mod config;
mod endpoints;
mod error;
pub mod retry;
mod secret;
pub mod sse;
pub mod types;

pub use client::Client;
pub use config::{parse_custom_headers, ClientConfig, Helper};
pub use error::ApiError;
pub use secret::{decode_sessions_token, default_worker_id};
pub use sse::EventStream;
pub use types::*;
