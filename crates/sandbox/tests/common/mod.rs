//! Shared helpers: start a `process` session on a temp workspace, run calls.

#![allow(dead_code)]

use sandkeep_sandbox::{Policy, SessionExecutor, SessionSpec};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Once;
use std::time::Duration;

pub const CANARY: &str = "canary-7f3a9c1e5b";

/// Point the executor at this crate's init binary and plant the credential canary.
pub fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var(
            "SANDKEEP_INIT_EXE",
            env!("CARGO_BIN_EXE_sandkeep-sandbox-init"),
        );
        std::env::set_var("ANTHROPIC_API_KEY", CANARY);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", CANARY);
    });
}

/// Start a sandboxed session, or print SKIP and return None when the host can't.
pub fn start(name: &str, policy: &Policy, ws: &Path) -> Option<SessionExecutor> {
    setup();
    if let Err(why) = sandkeep_sandbox::probe_host().supports(policy) {
        println!("SKIP {name}: {why}");
        return None;
    }
    let spec = SessionSpec {
        session_id: name.to_string(),
        workspace: ws.to_path_buf(),
        allowed_roots: vec![],
    };
    Some(SessionExecutor::start(policy, &spec).expect("sandbox start"))
}

pub async fn call(ex: &SessionExecutor, tool: &str, input: Value) -> (bool, String) {
    let out = ex.call(tool, input, Duration::from_secs(60)).await;
    (out.is_error, out.joined_text())
}

pub async fn bash(ex: &SessionExecutor, cmd: &str) -> (bool, String) {
    call(ex, "bash", json!({"command": cmd})).await
}

/// Run `cmd` and require success.
pub async fn ok(ex: &SessionExecutor, cmd: &str) -> String {
    let (err, text) = bash(ex, cmd).await;
    assert!(!err, "`{cmd}` failed: {text}");
    text
}

/// Run `cmd` and require failure; returns the output.
pub async fn fails(ex: &SessionExecutor, cmd: &str) -> String {
    let (err, text) = bash(ex, cmd).await;
    assert!(err, "`{cmd}` should have failed but printed: {text}");
    text
}
