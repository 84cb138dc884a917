//! Shared in-memory state of the emulator: one [`Store`] behind a mutex
//! (never held across an `.await`), plus the wake-ups used by blocking polls
//! and SSE streams.

use crate::faults::FaultState;
use crate::scenario::ScenarioRun;
use crate::EmulatorConfig;
use sandkeep_api::types::WorkItem;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::{broadcast, watch, Notify};

/// Kind of an `agent.*tool_use` call, which decides the result event type
/// that may answer it (§11.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolCallKind {
    Builtin,
    Custom,
}

/// One session and its event log.
#[derive(Debug)]
pub struct SessionRecord {
    pub id: String,
    pub environment_id: String,
    /// The agent snapshot embedded in the session object (§6.2).
    pub agent: Value,
    pub status: String,
    pub title: Option<String>,
    pub metadata: Map<String, Value>,
    pub resources: Vec<Value>,
    pub created_at: String,
    pub updated_at: String,
    pub archived_at: Option<String>,
    pub events: Vec<Value>,
    pub tool_calls: HashMap<String, ToolCallKind>,
    pub answered: HashSet<String>,
    /// Live fan-out to SSE subscribers (live events only, §6.6).
    pub stream: broadcast::Sender<Value>,
    pub scenario: Option<ScenarioRun>,
}

/// A work item plus the server-side lease bookkeeping (§3.3).
#[derive(Debug, Clone)]
pub struct WorkRecord {
    pub item: WorkItem,
    /// Set when a poll handed the item out and it has not been acked (pending).
    pub polled_at: Option<Instant>,
    /// The exact `last_heartbeat` string of the current lease, if any.
    pub last_heartbeat: Option<String>,
    pub lease_expires: Option<Instant>,
}

/// A skill and its versions (newest last).
#[derive(Debug, Clone)]
pub struct SkillRecord {
    pub id: String,
    pub versions: Vec<SkillVersionRecord>,
}

#[derive(Debug, Clone)]
pub struct SkillVersionRecord {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub created_at: String,
    pub archive: Vec<u8>,
}

/// What a sessions token grants (§1.2): one session, one work item.
#[derive(Debug, Clone)]
pub struct SessionsTokenScope {
    pub session_id: String,
    pub work_id: String,
}

#[derive(Debug, Default)]
pub struct Store {
    pub environments: Vec<Value>,
    /// environment key → environment id
    pub environment_keys: HashMap<String, String>,
    pub agents: Vec<Value>,
    pub sessions: HashMap<String, SessionRecord>,
    pub session_order: Vec<String>,
    pub work: Vec<WorkRecord>,
    pub sessions_tokens: HashMap<String, SessionsTokenScope>,
    pub skills: Vec<SkillRecord>,
    /// worker id → last poll time, for `workers_polling` (§3.4.5)
    pub workers: HashMap<String, (String, Instant)>,
}

impl Store {
    pub fn environment(&self, id: &str) -> Option<&Value> {
        self.environments.iter().find(|e| e["id"] == id)
    }

    pub fn environment_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.environments.iter_mut().find(|e| e["id"] == id)
    }

    pub fn agent(&self, id: &str) -> Option<&Value> {
        self.agents.iter().find(|a| a["id"] == id)
    }

    pub fn work_mut(&mut self, environment_id: &str, work_id: &str) -> Option<&mut WorkRecord> {
        self.work
            .iter_mut()
            .find(|w| w.item.id == work_id && w.item.environment_id == environment_id)
    }

    pub fn skill(&self, id: &str) -> Option<&SkillRecord> {
        self.skills.iter().find(|s| s.id == id)
    }
}

/// Everything the handlers share.
pub struct Shared {
    pub config: EmulatorConfig,
    store: Mutex<Store>,
    pub faults: Mutex<FaultState>,
    /// Woken whenever work is enqueued, so blocking polls return promptly.
    pub work_enqueued: Notify,
    /// Bumped to make every open SSE stream end now (fault injection).
    pub stream_drops: watch::Sender<u64>,
}

pub type AppState = Arc<Shared>;

impl Shared {
    pub fn new(config: EmulatorConfig) -> Self {
        Self {
            config,
            store: Mutex::new(Store::default()),
            faults: Mutex::new(FaultState::default()),
            work_enqueued: Notify::new(),
            stream_drops: watch::channel(0).0,
        }
    }

    /// Locks the store. A poisoned lock only means a handler panicked while
    /// holding it; the data is still usable for a test double.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultState> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }
}
