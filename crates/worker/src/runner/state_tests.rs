//! State-machine tests against protocol.md §12.4 (cases 56–85), driven by
//! synthetic event sequences.

use super::*;
use serde_json::json;

const IDLE: Duration = Duration::from_millis(100);

fn state() -> RunnerState {
    RunnerState::new(
        Box::new(|name| matches!(name, "echo" | "bash" | "gated" | "slow")),
        Some(IDLE),
    )
}

fn tool_use(id: &str, name: &str) -> Value {
    json!({"type": "agent.tool_use", "id": id, "name": name, "input": {"x": 42}})
}

fn gated(id: &str, permission: &str) -> Value {
    json!({"type": "agent.tool_use", "id": id, "name": "gated", "input": {}, "evaluated_permission": permission})
}

fn confirm(id: &str, result: &str) -> Value {
    json!({"type": "user.tool_confirmation", "id": format!("c_{id}"), "tool_use_id": id, "result": result})
}

fn end_turn() -> Value {
    json!({"type": "session.status_idle", "id": "idle", "stop_reason": {"type": "end_turn"}})
}

fn result_for(id: &str) -> Value {
    json!({"type": "user.tool_result", "id": format!("r_{id}"), "tool_use_id": id})
}

/// Feed live events, then run every queued call to completion (posted); return the
/// executed ids in order.
fn drive(s: &mut RunnerState, events: &[Value], now: Instant) -> Vec<String> {
    for e in events {
        s.on_live(e, now);
    }
    drain(s, now)
}

fn drain(s: &mut RunnerState, now: Instant) -> Vec<String> {
    let mut done = Vec::new();
    while let Some(call) = s.next_call() {
        done.push(call.id.clone());
        s.finish(&call, true, now);
    }
    done
}

#[test]
fn parses_tool_calls() {
    let call = ToolCall::from_event(&tool_use("tu_1", "echo"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (call.id.as_str(), call.kind, call.input["x"].as_i64()),
        ("tu_1", CallKind::Builtin, Some(42))
    );
    let custom = json!({"type": "agent.custom_tool_use", "id": "c1", "name": "w", "session_thread_id": "sthr_1"});
    let call = ToolCall::from_event(&custom).unwrap().unwrap();
    assert_eq!(
        (call.kind, call.thread_id.as_deref()),
        (CallKind::Custom, Some("sthr_1"))
    );
    assert_eq!(call.input, json!({}));
    assert!(
        ToolCall::from_event(&json!({"type": "agent.tool_use", "name": "x"}))
            .unwrap()
            .is_err()
    );
    assert!(ToolCall::from_event(&json!({"type": "agent.message"})).is_none());
}

#[test]
fn case_56_61_unowned_calls_are_left_pending() {
    let mut s = state();
    let done = drive(
        &mut s,
        &[tool_use("evt_99", "nope"), tool_use("tu_ok", "echo")],
        Instant::now(),
    );
    assert_eq!(done, vec!["tu_ok"]);
    assert!(!s.is_answered("evt_99"));
}

#[test]
fn case_57_history_answer_dedupes_live_replay() {
    let mut s = state();
    let now = Instant::now();
    s.on_history(&[tool_use("tu_1", "echo"), result_for("tu_1")], now);
    assert!(drive(&mut s, &[tool_use("tu_1", "echo")], now).is_empty());
}

#[test]
fn live_duplicate_is_dispatched_once() {
    let mut s = state();
    assert_eq!(
        drive(
            &mut s,
            &[tool_use("a", "echo"), tool_use("a", "echo")],
            Instant::now()
        ),
        vec!["a"]
    );
}

#[test]
fn case_62_unowned_in_history_keeps_runner_alive() {
    let mut s = state();
    s.on_history(&[tool_use("x", "nope"), end_turn()], Instant::now());
    assert_eq!(s.idle_deadline(), None);
}

#[test]
fn case_63_64_65_ask_gating() {
    let mut s = state();
    let now = Instant::now();
    assert!(drive(&mut s, &[gated("g", "ask")], now).is_empty());
    assert_eq!(s.held_ids(), vec!["g"]);
    assert_eq!(drive(&mut s, &[confirm("g", "allow")], now), vec!["g"]);
    let mut s = state();
    assert!(drive(&mut s, &[gated("g", "ask"), confirm("g", "deny")], now).is_empty());
    assert!(s.is_answered("g"));
}

#[test]
fn case_66_pre_denied_never_executes() {
    let mut s = state();
    let now = Instant::now();
    assert!(drive(&mut s, &[confirm("d", "allow"), gated("d", "deny")], now).is_empty());
    assert!(s.is_answered("d"));
}

#[test]
fn case_67_68_history_confirmations() {
    let now = Instant::now();
    let mut s = state();
    s.on_history(&[gated("g", "ask"), confirm("g", "allow")], now);
    assert_eq!(drain(&mut s, now), vec!["g"]);
    let mut s = state();
    s.on_history(&[gated("g", "ask"), confirm("g", "deny"), end_turn()], now);
    assert!(drain(&mut s, now).is_empty());
    assert_eq!(s.idle_deadline(), Some(now + IDLE));
}

#[test]
fn case_69_held_call_defers_idle() {
    let now = Instant::now();
    let mut s = state();
    drive(&mut s, &[gated("g", "ask"), end_turn()], now);
    assert_eq!(s.idle_deadline(), None);
    let mut s = state();
    s.on_history(&[gated("g", "ask"), end_turn()], now);
    assert_eq!(s.idle_deadline(), None);
}

#[test]
fn case_70_reconnect_does_not_double_dispatch_held_call() {
    let now = Instant::now();
    let mut s = state();
    drive(&mut s, &[gated("g", "ask")], now);
    s.on_history(&[gated("g", "ask"), confirm("g", "allow")], now);
    let call = s.next_call().unwrap();
    assert_eq!(call.id, "g");
    s.on_history(&[gated("g", "ask"), confirm("g", "allow")], now);
    assert!(
        s.queued_ids().is_empty(),
        "executing call must not be queued again"
    );
    s.finish(&call, false, now);
    assert!(s.next_call().is_none());
}

#[test]
fn case_71_history_confirmation_releases_live_held_call() {
    let now = Instant::now();
    let mut s = state();
    drive(&mut s, &[gated("g", "ask")], now);
    s.on_history(&[confirm("g", "allow")], now);
    assert_eq!(drain(&mut s, now), vec!["g"]);
}

#[test]
fn case_72_held_call_does_not_block_others() {
    let mut s = state();
    let done = drive(
        &mut s,
        &[
            gated("g", "ask"),
            tool_use("e", "echo"),
            confirm("g", "allow"),
        ],
        Instant::now(),
    );
    assert_eq!(done, vec!["e", "g"]);
}

#[test]
fn case_73_74_75_76_fail_closed() {
    let now = Instant::now();
    let mut s = state();
    assert!(drive(&mut s, &[confirm("ghost", "allow")], now).is_empty());
    let mut s = state();
    assert!(drive(&mut s, &[gated("g", "ask"), confirm("g", "escalate")], now).is_empty());
    assert!(s.is_answered("g"));
    let mut s = state();
    assert!(drive(&mut s, &[gated("g", "ask_strict")], now).is_empty());
    assert_eq!(drive(&mut s, &[confirm("g", "allow")], now), vec!["g"]);
    let mut s = state();
    assert!(drive(&mut s, &[confirm("u", "deny"), tool_use("u", "echo")], now).is_empty());
    assert!(s.is_answered("u"));
}

#[test]
fn case_77_deny_after_end_turn_starts_countdown() {
    let t0 = Instant::now();
    let mut s = state();
    drive(&mut s, &[gated("g", "ask"), end_turn()], t0);
    assert_eq!(s.idle_deadline(), None);
    let t1 = t0 + Duration::from_secs(5);
    drive(&mut s, &[confirm("g", "deny")], t1);
    assert_eq!(s.idle_deadline(), Some(t1 + IDLE));
}

#[test]
fn case_78_countdown_starts_after_released_call_finishes() {
    let t0 = Instant::now();
    let mut s = state();
    s.on_history(&[gated("g", "ask"), confirm("g", "allow"), end_turn()], t0);
    let call = s.next_call().unwrap();
    assert_eq!(s.idle_deadline(), None);
    let t1 = t0 + Duration::from_millis(600);
    s.finish(&call, true, t1);
    assert_eq!(s.idle_deadline(), Some(t1 + IDLE));
}

#[test]
fn case_79_80_stop_reasons_arm_except_requires_action() {
    let now = Instant::now();
    for reason in [
        "end_turn",
        "retries_exhausted",
        "budget_reached",
        "refusal",
        "something_new",
    ] {
        let mut s = state();
        s.on_live(
            &json!({"type": "session.status_idle", "stop_reason": {"type": reason}}),
            now,
        );
        assert_eq!(s.idle_deadline(), Some(now + IDLE), "{reason}");
    }
    let mut s = state();
    s.on_live(&json!({"type": "session.status_idle"}), now);
    assert!(
        s.idle_deadline().is_some(),
        "missing stop_reason ends the turn"
    );
    let mut s = state();
    s.on_live(
        &json!({"type": "session.status_idle", "stop_reason": {"type": "requires_action"}}),
        now,
    );
    assert_eq!(s.idle_deadline(), None);
}

#[test]
fn case_81_82_83_new_events_disarm_and_termination_stops() {
    let now = Instant::now();
    let mut s = state();
    s.on_live(&end_turn(), now);
    s.on_live(&tool_use("t", "echo"), now);
    assert_eq!(s.idle_deadline(), None);
    s.on_live(&json!({"type": "session.status_terminated"}), now);
    assert_eq!(s.stop_reason(), Some(&StopReason::Terminated));
    assert_eq!(drain(&mut s, now), vec!["t"]);
    let mut s = state();
    s.on_live(&json!({"type": "session.deleted"}), now);
    assert_eq!(s.stop_reason(), Some(&StopReason::Deleted));
    let mut s = state();
    s.on_live(&end_turn(), now);
    s.on_live(&json!({"type": "agent.message", "content": []}), now);
    assert_eq!(s.idle_deadline(), None);
}

#[test]
fn case_84_neutral_events_keep_the_countdown() {
    let now = Instant::now();
    let mut s = state();
    s.on_live(&end_turn(), now);
    let later = now + Duration::from_millis(50);
    s.on_live(&confirm("ghost", "allow"), later);
    s.on_live(
        &json!({"type": "session.thread_status_terminated", "session_thread_id": "sthr_9"}),
        later,
    );
    assert_eq!(s.idle_deadline(), Some(now + IDLE));
    // After a failed history read a thread termination disarms too (§6.8).
    s.on_history_failed();
    s.on_live(
        &json!({"type": "session.thread_status_terminated", "session_thread_id": "sthr_8"}),
        later,
    );
    assert_eq!(s.idle_deadline(), None);
}

#[test]
fn case_85_terminated_thread_drops_calls() {
    let now = Instant::now();
    let mut s = state();
    let in_thread = |id: &str| json!({"type": "agent.tool_use", "id": id, "name": "echo", "session_thread_id": "sthr_1"});
    let held = json!({"type": "agent.tool_use", "id": "h", "name": "gated", "evaluated_permission": "ask", "session_thread_id": "sthr_1"});
    s.on_live(&in_thread("running"), now);
    let running = s.next_call().unwrap();
    s.on_live(&in_thread("queued"), now);
    s.on_live(&held, now);
    s.on_live(
        &json!({"type": "session.thread_status_terminated", "session_thread_id": "sthr_1"}),
        now,
    );
    assert!(
        !s.should_post(&running),
        "the executing call of a terminated thread is not posted"
    );
    s.finish(&running, false, now);
    assert!(s.next_call().is_none());
    assert!(s.held_ids().is_empty());
    assert!(drive(&mut s, &[in_thread("late")], now).is_empty());
}

#[test]
fn not_posted_call_is_redispatched_after_reconnect() {
    let now = Instant::now();
    let mut s = state();
    s.on_live(&tool_use("a", "echo"), now);
    let call = s.next_call().unwrap();
    s.finish(&call, false, now);
    s.on_history(&[tool_use("a", "echo")], now);
    assert_eq!(drain(&mut s, now), vec!["a"]);
}

#[test]
fn result_from_elsewhere_drops_queued_call() {
    let now = Instant::now();
    let mut s = state();
    s.on_live(&tool_use("a", "echo"), now);
    s.on_live(&tool_use("b", "echo"), now);
    let a = s.next_call().unwrap();
    s.on_live(&result_for("b"), now);
    s.finish(&a, true, now);
    assert!(s.next_call().is_none());
}

#[test]
fn max_idle_none_never_arms() {
    let mut s = RunnerState::new(Box::new(|_| true), None);
    s.on_live(&end_turn(), Instant::now());
    assert_eq!(s.idle_deadline(), None);
}

#[test]
fn malformed_events_are_skipped() {
    let now = Instant::now();
    let mut s = state();
    s.on_live(&json!({"no_type": true}), now);
    s.on_live(&json!({"type": "agent.tool_use", "id": "x"}), now);
    s.on_live(&json!({"type": "user.tool_confirmation"}), now);
    s.on_live(&json!({"type": "user.tool_result"}), now);
    assert!(s.next_call().is_none());
    assert!(s.stop_reason().is_none());
}
