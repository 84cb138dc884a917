//! Tests of the bash tool against a real `/bin/bash` (§12.5 items 121–130).

use super::*;
use crate::Toolset;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};

fn toolset(dir: &Path) -> Toolset {
    let mut config = ToolConfig::new(dir);
    config
        .shell_env
        .push(("ANTHROPIC_CANARY".into(), "leaked".into()));
    Toolset::new(config)
}

fn call(tools: &mut Toolset, input: Value) -> (bool, String) {
    let out = tools.call("bash", &input, None);
    (out.is_error, out.joined_text())
}

#[test]
fn state_persists_and_exit_codes_map_to_errors() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("sub")).unwrap();
    let mut t = toolset(tmp.path());
    assert_eq!(
        call(
            &mut t,
            json!({"command": "export FOO=bar; echo set; cd sub"})
        ),
        (false, "set".into())
    );
    assert_eq!(
        call(&mut t, json!({"command": "echo $FOO; basename $PWD"})),
        (false, "bar\nsub".into())
    );
    assert_eq!(
        call(&mut t, json!({"command": "echo out; false"})),
        (true, "out".into())
    );
    assert_eq!(
        call(&mut t, json!({"command": "true"})),
        (false, "(no output)".into())
    );
    assert_eq!(
        call(&mut t, json!({"command": "echo hello; echo err 1>&2"})),
        (false, "hello\nerr".into())
    );
    assert_eq!(
        call(
            &mut t,
            json!({"command": "printf '\\033[31mred\\033[0m\\n'"})
        ),
        (false, "red".into())
    );
    assert_eq!(
        call(&mut t, json!({"command": "printf 'caf\\xe9\\n'"})),
        (false, "caf\u{fffd}".into())
    );
}

#[test]
fn input_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = toolset(tmp.path());
    assert_eq!(
        call(&mut t, json!({})),
        (true, "bash: command is required".into())
    );
    assert_eq!(
        call(&mut t, json!({"command": ""})),
        (true, "bash: command is required".into())
    );
    assert_eq!(
        call(&mut t, json!({"command": "ls", "description": "x"})),
        (
            true,
            "ValueError('Invalid arguments for function bash')".into()
        )
    );
    assert_eq!(
        call(&mut t, json!({"restart": true, "command": "echo ignored"})),
        (false, "bash session restarted".into())
    );
}

#[test]
fn environment_is_scrubbed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = toolset(tmp.path());
    let (is_error, text) = call(
        &mut t,
        json!({"command": "echo $ANTHROPIC_CANARY; echo $TERM; echo [$PS1]; env | grep -c ANTHROPIC_"}),
    );
    assert_eq!((is_error, text.as_str()), (true, "\ndumb\n[]\n0"));
}

#[test]
fn stdin_is_at_eof_and_sentinel_cannot_be_spoofed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = toolset(tmp.path());
    let started = Instant::now();
    assert_eq!(
        call(
            &mut t,
            json!({"command": "cat; echo done", "timeout_ms": 5000})
        ),
        (false, "done".into())
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let spoof = "printf '__ANT_CMD_DONE__7\\nafter\\n'; echo __ANT_CMD_00000000000000000000000000000000_DONE__0; (exit 3)";
    assert_eq!(
        call(&mut t, json!({"command": spoof})),
        (
            true,
            "__ANT_CMD_DONE__7\nafter\n__ANT_CMD_00000000000000000000000000000000_DONE__0".into()
        )
    );
}

#[test]
fn large_output_keeps_the_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = toolset(tmp.path());
    let (is_error, text) = call(
        &mut t,
        json!({"command": "head -c 199999 /dev/zero | tr '\\0' a; echo END"}),
    );
    assert!(!is_error);
    let body = text
        .strip_prefix("[output truncated]\n")
        .expect("truncation prefix");
    assert!(
        body.len() <= OUTPUT_LIMIT && body.len() > OUTPUT_LIMIT - 100 && body.ends_with("aaaEND"),
        "{}",
        body.len()
    );
    assert_eq!(
        call(&mut t, json!({"command": "echo small"})),
        (false, "small".into())
    );
}

static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);
fn count_hook() {
    HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn timeout_kills_and_the_next_call_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = ToolConfig::new(tmp.path());
    config.after_shell_kill = Some(count_hook);
    let mut t = Toolset::new(config);
    call(&mut t, json!({"command": "export KEEP=1"}));
    let started = Instant::now();
    let (is_error, text) = call(&mut t, json!({"command": "sleep 5", "timeout_ms": 200}));
    assert!(is_error && started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        text,
        format!("bash: bash command timed out after 0.2s\n{TIMEOUT_NOTE}")
    );
    assert!(HOOK_CALLS.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        call(&mut t, json!({"command": "echo [$KEEP]"})),
        (false, "[]".into())
    );
    // A quote left open swallows the sentinel: the call times out too.
    let (_, text) = call(
        &mut t,
        json!({"command": "echo \"unterminated", "timeout_ms": "300"}),
    );
    assert!(
        text.starts_with("bash: bash command timed out after 0.3s\n"),
        "{text}"
    );
    let (_, text) = call(&mut t, json!({"command": "echo never", "timeout_ms": -5}));
    assert!(
        text.starts_with("bash: bash command timed out after -0.005s\n"),
        "{text}"
    );
    assert_eq!(
        call(&mut t, json!({"command": "echo works"})),
        (false, "works".into())
    );
}

#[test]
fn policy_caps_the_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = ToolConfig::new(tmp.path());
    config.max_bash_timeout = Some(Duration::from_millis(300));
    let mut t = Toolset::new(config);
    let (_, text) = call(&mut t, json!({"command": "sleep 5", "timeout_ms": 60000}));
    assert!(
        text.starts_with("bash: bash command timed out after 0.3s\n"),
        "{text}"
    );
}

#[test]
fn outer_deadline_kills_the_shell_without_stale_output() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = toolset(tmp.path());
    let out = t.call(
        "bash",
        &json!({"command": "sleep 1; echo STALE_MARKER"}),
        Some(Instant::now() + Duration::from_millis(300)),
    );
    assert!(out.is_error && out.deadline_exceeded);
    assert_eq!(out.joined_text(), "tool 'bash' timed out");
    std::thread::sleep(Duration::from_millis(1000));
    let (is_error, text) = call(&mut t, json!({"command": "echo fresh"}));
    assert_eq!((is_error, text), (false, format!("{KILLED_NOTICE}\nfresh")));
}

#[test]
fn a_dead_shell_is_reported_then_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = toolset(tmp.path());
    assert_eq!(
        call(&mut t, json!({"command": "exit 3"})),
        (true, "(no output)".into())
    );
    assert_eq!(
        call(&mut t, json!({"command": "echo hi"})),
        (false, format!("{EXITED_NOTICE}\nhi"))
    );
    // Closing the brace group early is a syntax error that ends the shell.
    let (is_error, text) = call(&mut t, json!({"command": "echo ok; }"}));
    assert!(
        is_error && text.starts_with("ok\n") && text.contains("syntax error"),
        "{text}"
    );
    assert!(
        !text.contains("__ANT_CMD_"),
        "the split sentinel must not be reassembled: {text}"
    );
    assert_eq!(
        call(&mut t, json!({"command": "echo again"})).1,
        format!("{EXITED_NOTICE}\nagain")
    );
    // A background job holding the pipe open does not hide the exit.
    let started = Instant::now();
    assert_eq!(
        call(&mut t, json!({"command": "sleep 30 & exit 4"})),
        (true, "(no output)".into())
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn background_output_shows_up_later_and_does_not_block() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = toolset(tmp.path());
    let started = Instant::now();
    assert_eq!(
        call(
            &mut t,
            json!({"command": "(sleep 0.3; echo late) & echo bg"})
        ),
        (false, "bg".into())
    );
    assert_eq!(
        call(
            &mut t,
            json!({"command": "sleep 30 >/dev/null & echo quick"})
        ),
        (false, "quick".into())
    );
    assert!(started.elapsed() < Duration::from_millis(300));
    assert_eq!(
        call(&mut t, json!({"command": "sleep 0.6; echo next"})),
        (false, "late\nnext".into())
    );
    t.close();
    t.close();
}

#[test]
fn python_style_timeout_numbers() {
    assert_eq!(timeout_secs(None, None), 120.0);
    assert_eq!(timeout_secs(Some(0), None), 120.0);
    assert_eq!(timeout_secs(Some(5000), None), 5.0);
    assert_eq!(timeout_secs(Some(-5), None), -0.005);
    assert_eq!(timeout_secs(None, Some(Duration::from_secs(30))), 30.0);
    assert_eq!(float_repr(timeout_secs(None, None)), "120.0");
}
