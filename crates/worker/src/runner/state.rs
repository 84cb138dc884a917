//! The runner's bookkeeping as pure logic (protocol.md §6.5–6.9): dedupe, permission
//! gating, threads, the FIFO of calls to execute and the idle countdown.
//!
//! No I/O and no clock of its own: callers pass `now`, feed live events and history
//! listings in, and pull calls out with [`RunnerState::next_call`]. This keeps every
//! rule testable with synthetic event sequences.

use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Which result event answers a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// `agent.tool_use`, answered by `user.tool_result`.
    Builtin,
    /// `agent.custom_tool_use`, answered by `user.custom_tool_result`.
    Custom,
}

/// One tool call taken from an event.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub input: Value,
    pub kind: CallKind,
    pub thread_id: Option<String>,
    pub permission: Option<String>,
}

impl ToolCall {
    /// `None` when the event is not a tool call; `Some(Err)` when it is one but
    /// lacks its id or name.
    pub fn from_event(event: &Value) -> Option<Result<ToolCall, String>> {
        let kind = match event.get("type").and_then(Value::as_str)? {
            "agent.tool_use" => CallKind::Builtin,
            "agent.custom_tool_use" => CallKind::Custom,
            _ => return None,
        };
        let text = |key: &str| {
            event
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let (Some(id), Some(name)) = (text("id"), text("name")) else {
            return Some(Err("tool call event without an id or name".to_string()));
        };
        Some(Ok(ToolCall {
            id,
            name,
            input: event
                .get("input")
                .cloned()
                .unwrap_or_else(|| Value::Object(Default::default())),
            kind,
            thread_id: text("session_thread_id"),
            permission: event
                .get("evaluated_permission")
                .and_then(Value::as_str)
                .map(str::to_string),
        }))
    }
}

/// Why the runner stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    Terminated,
    Deleted,
    Idle,
    StreamRejected(String),
    Cancelled,
}

/// Everything the runner remembers for the life of one session.
pub struct RunnerState {
    owns: Box<dyn Fn(&str) -> bool + Send + Sync>,
    max_idle: Option<Duration>,
    seen: HashSet<String>,
    answered: HashSet<String>,
    /// `true` = allow; anything but `allow` is stored as `false` (fails closed).
    verdicts: HashMap<String, bool>,
    held: Vec<ToolCall>,
    terminated_threads: HashSet<String>,
    queue: VecDeque<ToolCall>,
    executing: Option<String>,
    primary_thread: Option<String>,
    history_failed: bool,
    /// A turn-ending idle was seen while calls were outstanding; the countdown
    /// starts fresh once they resolve.
    idle_pending: bool,
    idle_armed_at: Option<Instant>,
    stop: Option<StopReason>,
}

fn event_type(event: &Value) -> &str {
    event.get("type").and_then(Value::as_str).unwrap_or("")
}

fn str_field<'a>(event: &'a Value, key: &str) -> Option<&'a str> {
    event.get(key).and_then(Value::as_str)
}

/// A `session.status_idle` whose stop reason is anything but `requires_action`.
fn ends_turn(event: &Value) -> bool {
    event_type(event) == "session.status_idle"
        && event
            .get("stop_reason")
            .and_then(|r| r.get("type"))
            .and_then(Value::as_str)
            != Some("requires_action")
}

/// Events that neither arm nor disarm the idle countdown (§6.8).
fn is_neutral(event: &Value) -> bool {
    matches!(
        event_type(event),
        "user.tool_confirmation" | "session.thread_status_terminated"
    )
}

impl RunnerState {
    pub fn new(owns: Box<dyn Fn(&str) -> bool + Send + Sync>, max_idle: Option<Duration>) -> Self {
        Self {
            owns,
            max_idle,
            seen: HashSet::new(),
            answered: HashSet::new(),
            verdicts: HashMap::new(),
            held: Vec::new(),
            terminated_threads: HashSet::new(),
            queue: VecDeque::new(),
            executing: None,
            primary_thread: None,
            history_failed: false,
            idle_pending: false,
            idle_armed_at: None,
            stop: None,
        }
    }

    pub fn stop_reason(&self) -> Option<&StopReason> {
        self.stop.as_ref()
    }

    /// Record a stop; the first reason wins.
    pub fn request_stop(&mut self, reason: StopReason) {
        self.stop.get_or_insert(reason);
    }

    pub fn is_answered(&self, id: &str) -> bool {
        self.answered.contains(id)
    }

    pub fn held_ids(&self) -> Vec<&str> {
        self.held.iter().map(|c| c.id.as_str()).collect()
    }

    pub fn queued_ids(&self) -> Vec<&str> {
        self.queue.iter().map(|c| c.id.as_str()).collect()
    }

    // ------------------------------------------------------------ live events

    /// Apply one event received on the stream.
    pub fn on_live(&mut self, event: &Value, now: Instant) {
        let kind = event_type(event);
        if kind.is_empty() {
            tracing::warn!("skipping a session event without a type");
            return;
        }
        if ends_turn(event) {
            self.idle_pending = true;
            self.idle_armed_at = None;
        } else if !is_neutral(event)
            || (self.history_failed && kind == "session.thread_status_terminated")
        {
            self.idle_pending = false;
            self.idle_armed_at = None;
        }
        match ToolCall::from_event(event) {
            Some(Ok(call)) => {
                if self.seen.insert(call.id.clone()) && !self.answered.contains(&call.id) {
                    self.route(call);
                }
            }
            Some(Err(why)) => tracing::warn!(event_type = kind, "skipping malformed event: {why}"),
            None => self.apply_non_call(event, true),
        }
        self.refresh_idle(now);
    }

    /// Results, confirmations, thread and session status. `live` routes released
    /// held calls immediately (history applies verdicts after its own routing).
    fn apply_non_call(&mut self, event: &Value, live: bool) {
        match event_type(event) {
            "user.tool_result" => self.mark_answered(str_field(event, "tool_use_id")),
            "user.custom_tool_result" => self.mark_answered(str_field(event, "custom_tool_use_id")),
            "user.tool_confirmation" => {
                let Some(id) = str_field(event, "tool_use_id") else {
                    tracing::warn!("skipping user.tool_confirmation without tool_use_id");
                    return;
                };
                if !self.answered.contains(id) {
                    self.verdicts
                        .insert(id.to_string(), str_field(event, "result") == Some("allow"));
                    if live {
                        self.release_held(id);
                    }
                }
            }
            "session.status_terminated" => self.request_stop(StopReason::Terminated),
            "session.deleted" => self.request_stop(StopReason::Deleted),
            "session.thread_status_terminated" => match str_field(event, "session_thread_id") {
                Some(thread) => {
                    self.terminated_threads.insert(thread.to_string());
                    self.held.retain(|c| c.thread_id.as_deref() != Some(thread));
                }
                None => tracing::warn!(
                    "skipping session.thread_status_terminated without session_thread_id"
                ),
            },
            "session.thread_status_running"
            | "session.thread_status_idle"
            | "session.thread_status_rescheduled"
                if self.primary_thread.is_none() =>
            {
                // Tracing only: the first thread seen is the session's primary one.
                self.primary_thread = str_field(event, "session_thread_id").map(str::to_string);
                tracing::debug!(thread = ?self.primary_thread, "primary session thread");
            }
            other => tracing::trace!(event_type = other, "event not acted on by the runner"),
        }
    }

    fn mark_answered(&mut self, id: Option<&str>) {
        match id {
            Some(id) => {
                self.answered.insert(id.to_string());
                self.held.retain(|c| c.id != id);
            }
            None => tracing::warn!("skipping a tool result event without its tool use id"),
        }
    }

    // ------------------------------------------------------------ routing (§6.7)

    fn thread_terminated(&self, call: &ToolCall) -> bool {
        call.thread_id
            .as_ref()
            .is_some_and(|t| self.terminated_threads.contains(t))
    }

    fn is_dispatched(&self, id: &str) -> bool {
        self.executing.as_deref() == Some(id) || self.queue.iter().any(|c| c.id == id)
    }

    /// Route a call that is not answered yet.
    fn route(&mut self, call: ToolCall) {
        if self.thread_terminated(&call) || self.is_dispatched(&call.id) {
            return;
        }
        if self.held.iter().any(|c| c.id == call.id) {
            self.release_held(&call.id);
            return;
        }
        if call.permission.as_deref() == Some("deny") {
            self.answered.insert(call.id);
            return;
        }
        match self.verdicts.get(&call.id) {
            Some(true) => self.execute(call),
            Some(false) => {
                self.answered.insert(call.id);
            }
            None => match call.permission.as_deref() {
                None | Some("allow") => self.execute(call),
                Some(_) => self.held.push(call),
            },
        }
    }

    /// Resolve a held call if a verdict for it exists.
    fn release_held(&mut self, id: &str) {
        let Some(verdict) = self.verdicts.get(id).copied() else {
            return;
        };
        let Some(pos) = self.held.iter().position(|c| c.id == id) else {
            return;
        };
        let call = self.held.remove(pos);
        if verdict {
            self.execute(call);
        } else {
            self.answered.insert(call.id);
        }
    }

    fn execute(&mut self, call: ToolCall) {
        if (self.owns)(&call.name) {
            self.queue.push_back(call);
        } else {
            // Split-client contract (§6.5): another client may own this tool.
            tracing::info!(tool_use_id = %call.id, tool = %call.name, "tool not served by this worker; leaving it unanswered");
        }
    }

    // ------------------------------------------------------------ reconcile (§6.6)

    /// The history listing failed part-way: nothing from it is applied.
    pub fn on_history_failed(&mut self) {
        self.history_failed = true;
    }

    /// Apply a complete history listing.
    pub fn on_history(&mut self, events: &[Value], now: Instant) {
        self.history_failed = false;
        let mut pending = Vec::new();
        let mut last_ends_turn = false;
        for event in events {
            if event_type(event).is_empty() {
                continue;
            }
            if !is_neutral(event) {
                last_ends_turn = ends_turn(event);
            }
            match ToolCall::from_event(event) {
                Some(Ok(call)) => {
                    self.seen.insert(call.id.clone());
                    pending.push(call);
                }
                Some(Err(why)) => tracing::warn!("skipping malformed history event: {why}"),
                None => self.apply_non_call(event, false),
            }
        }
        let mut outstanding = false;
        for call in pending {
            if self.answered.contains(&call.id) {
                continue;
            }
            let owned = (self.owns)(&call.name);
            self.route(call.clone());
            let resolved = self.answered.contains(&call.id) || self.thread_terminated(&call);
            let held = self.held.iter().any(|c| c.id == call.id);
            let will_run = owned && self.is_dispatched(&call.id);
            if !(resolved || held || will_run) {
                outstanding = true;
            }
        }
        let held: Vec<String> = self.held.iter().map(|c| c.id.clone()).collect();
        for id in held {
            self.release_held(&id);
        }
        self.idle_armed_at = None;
        self.idle_pending = last_ends_turn && !outstanding;
        self.refresh_idle(now);
    }

    // ------------------------------------------------------------ dispatch

    /// The next call to execute, in arrival order. Calls answered or orphaned by a
    /// thread termination while queued are dropped.
    pub fn next_call(&mut self) -> Option<ToolCall> {
        if self.executing.is_some() {
            return None;
        }
        while let Some(call) = self.queue.pop_front() {
            if self.answered.contains(&call.id) || self.thread_terminated(&call) {
                continue;
            }
            self.executing = Some(call.id.clone());
            return Some(call);
        }
        None
    }

    /// Whether a finished call's result should be posted (its thread may have
    /// terminated while it ran, §6.9).
    pub fn should_post(&self, call: &ToolCall) -> bool {
        !self.thread_terminated(call) && !self.answered.contains(&call.id)
    }

    /// The executing call is done; `posted` = its result reached the server.
    pub fn finish(&mut self, call: &ToolCall, posted: bool, now: Instant) {
        if posted {
            self.answered.insert(call.id.clone());
        }
        if self.executing.as_deref() == Some(call.id.as_str()) {
            self.executing = None;
        }
        self.refresh_idle(now);
    }

    // ------------------------------------------------------------ idle (§6.8)

    fn has_blockers(&self) -> bool {
        !self.held.is_empty() || !self.queue.is_empty() || self.executing.is_some()
    }

    /// Defer the countdown while calls are held, queued or executing; start it
    /// fresh when the last one resolves.
    fn refresh_idle(&mut self, now: Instant) {
        if self.has_blockers() {
            if self.idle_armed_at.take().is_some() {
                self.idle_pending = true;
            }
        } else if self.idle_pending {
            self.idle_pending = false;
            self.idle_armed_at = Some(now);
        }
    }

    /// When the idle grace expires, if the countdown is running.
    pub fn idle_deadline(&self) -> Option<Instant> {
        Some(self.idle_armed_at? + self.max_idle?)
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
