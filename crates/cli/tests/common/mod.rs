//! Shared helpers for the end-to-end tests of the `sandkeep` binary: the emulator
//! and worker as child processes (killed on drop), an HTTP client for the
//! emulator's admin and public endpoints, and bounded waits.
//!
//! Every wait has a deadline and every child is killed when its handle drops, so a
//! misbehaving worker fails a test instead of hanging the suite.
#![allow(dead_code)]

pub mod emulator;
pub mod process;

#[allow(unused_imports)]
pub use emulator::{Emulator, Setup};
#[allow(unused_imports)]
pub use process::{Worker, WorkerArgs};

use serde_json::{json, Value};
use std::future::Future;
use std::time::{Duration, Instant};

/// Admin key the `sandkeep emulator` subcommand accepts by default.
pub const ADMIN_KEY: &str = "sk-emu-admin";

/// Path of the binary under test.
pub fn sandkeep_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sandkeep")
}

/// Poll `probe` every 100 ms until it yields `Some`, or panic after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A builtin scenario call with an expectation.
pub fn call(name: &str, input: Value, expect: Value) -> Value {
    json!({"name": name, "input": input, "expect": expect})
}

/// A one-turn scenario whose steps run one after another. The session stays
/// open afterwards (the worker leaves it after `--max-idle`).
pub fn one_turn(steps: Vec<Vec<Value>>) -> Value {
    json!({"turns": [{"steps": steps, "message": "Done."}]})
}

/// Like [`one_turn`], but the session is terminated after the turn, which ends
/// the session for good (and so its per-session directory).
pub fn one_turn_then_terminate(steps: Vec<Vec<Value>>) -> Value {
    json!({"turns": [{"steps": steps, "message": "Done."}], "terminate_after": true})
}

/// Ids of the agent-side tool calls (`agent.tool_use` and `agent.custom_tool_use`).
pub fn tool_use_ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| {
            matches!(
                e["type"].as_str(),
                Some("agent.tool_use" | "agent.custom_tool_use")
            )
        })
        .filter_map(|e| e["id"].as_str().map(str::to_string))
        .collect()
}

/// How many result events answer `tool_use_id`.
pub fn result_count(events: &[Value], tool_use_id: &str) -> usize {
    events
        .iter()
        .filter(|e| {
            (e["type"] == "user.tool_result" && e["tool_use_id"] == tool_use_id)
                || (e["type"] == "user.custom_tool_result"
                    && e["custom_tool_use_id"] == tool_use_id)
        })
        .count()
}

/// Panics unless every builtin tool call in `events` has exactly one result.
pub fn assert_each_call_answered_once(events: &[Value]) {
    for event in events.iter().filter(|e| e["type"] == "agent.tool_use") {
        let id = event["id"].as_str().unwrap_or_default();
        let count = result_count(events, id);
        assert_eq!(
            count, 1,
            "tool call {id} ({}) has {count} results; events: {events:#?}",
            event["name"]
        );
    }
}

/// Concatenated text blocks of every result event, for leak checks.
pub fn all_result_text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| {
            matches!(
                e["type"].as_str(),
                Some("user.tool_result" | "user.custom_tool_result")
            )
        })
        .map(|e| e["content"].to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A fresh temporary directory for a worker's `--workdir`.
pub fn workdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sandkeep-e2e-")
        .tempdir()
        .expect("create a temp dir")
}
