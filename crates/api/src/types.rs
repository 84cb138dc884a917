//! Wire types of the self-hosted environment protocol (protocol.md §3, §6, §7).
//!
//! Every struct tolerates unknown fields (serde's default), and events stay
//! loosely typed (`serde_json::Value`) so that an unknown event type is never
//! fatal. Only the fields the worker and emulator act on are modelled.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Beta header sent on environments, work and session calls (§1.6).
pub const BETA_MANAGED_AGENTS: &str = "managed-agents-2026-04-01";
/// `anthropic-version` sent by SDK 2.10.0 (§1.6).
pub const ANTHROPIC_VERSION: &str = "2026-10-21";
/// First `expected_last_heartbeat` of a lease (§3.4.2).
pub const NO_HEARTBEAT: &str = "NO_HEARTBEAT";

/// Work item lifecycle state (§3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkState {
    Queued,
    Starting,
    Active,
    Stopping,
    Stopped,
    /// A state this build does not know; treated like `active`.
    #[serde(other)]
    Unknown,
}

impl WorkState {
    /// `stopping` and `stopped` end the lease (§4.3 step 2).
    pub fn is_stopping(self) -> bool {
        matches!(self, WorkState::Stopping | WorkState::Stopped)
    }
}

/// `data` of a work item: `{"type": "session", "id": "sesn_…"}` or another type (§3.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkData {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: String,
}

impl WorkData {
    pub fn is_session(&self) -> bool {
        self.kind == "session"
    }
}

/// A work item (`type: "work"`, §3.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    #[serde(rename = "type", default = "work_type")]
    pub kind: String,
    pub id: String,
    #[serde(default)]
    pub environment_id: String,
    #[serde(default = "queued")]
    pub state: WorkState,
    pub data: WorkData,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub acknowledged_at: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub latest_heartbeat_at: Option<String>,
    #[serde(default)]
    pub stop_requested_at: Option<String>,
    #[serde(default)]
    pub stopped_at: Option<String>,
}

fn work_type() -> String {
    "work".into()
}
fn queued() -> WorkState {
    WorkState::Queued
}

/// Heartbeat response (`type: "work_heartbeat"`, §3.4.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    #[serde(rename = "type", default = "heartbeat_type")]
    pub kind: String,
    #[serde(default)]
    pub last_heartbeat: String,
    #[serde(default)]
    pub lease_extended: bool,
    pub state: WorkState,
    #[serde(default)]
    pub ttl_seconds: i64,
}

fn heartbeat_type() -> String {
    "work_heartbeat".into()
}

/// Queue statistics (`type: "work_queue_stats"`, §3.4.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkQueueStats {
    #[serde(rename = "type")]
    pub kind: String,
    pub depth: u64,
    pub pending: u64,
    pub oldest_queued_at: Option<String>,
    pub workers_polling: Option<u64>,
}

/// A cursor page (§2.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub next_page: Option<String>,
}

/// An agent's skill reference (§6.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkillRef {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub skill_id: String,
    #[serde(default = "latest")]
    pub version: String,
}

fn latest() -> String {
    "latest".into()
}

/// The agent embedded in a session (§6.2). Tools stay raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SessionAgent {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub tools: Vec<Value>,
    #[serde(default)]
    pub skills: Vec<SkillRef>,
}

/// Session object, the fields the worker reads (§6.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub id: String,
    /// `rescheduling` | `running` | `idle` | `terminated`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub environment_id: Option<String>,
    #[serde(default)]
    pub agent: SessionAgent,
    #[serde(default)]
    pub resources: Vec<Value>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl Session {
    pub fn is_terminated(&self) -> bool {
        self.status == "terminated"
    }
}

/// Skill version metadata (`type: "skill_version"`, §7.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkillVersion {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub id: String,
    #[serde(default)]
    pub skill_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// Environment object (§3.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub id: String,
    pub name: String,
    pub config: Value,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}
