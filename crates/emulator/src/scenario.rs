//! A scripted agent (§11.6–§11.7). A [`Scenario`] is a list of turns; each
//! turn is one or more sequential steps of tool calls and a final message.
//! On `user.message` the engine emits `session.status_running`, the first
//! step's calls and `session.status_idle` (`requires_action`); once every
//! call of a step is answered it checks the expectations and goes on with the
//! next step, finally emitting `agent.message` + `session.status_idle`
//! (`end_turn`). Results are recorded for `GET /v1/emulator/sessions/{id}/scenario`.

use crate::events::{self, result_text};
use crate::state::SessionRecord;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub turns: Vec<Turn>,
    /// Emit `session.status_terminated` after the last turn.
    #[serde(default)]
    pub terminate_after: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// Sequential batches of calls; each batch waits for all its results.
    #[serde(default)]
    pub steps: Vec<Vec<ScriptedCall>>,
    /// Shorthand for a single step (run before `steps`).
    #[serde(default)]
    pub calls: Vec<ScriptedCall>,
    #[serde(default = "default_message")]
    pub message: String,
}

fn default_message() -> String {
    "Done.".into()
}

impl Turn {
    fn all_steps(&self) -> Vec<Vec<ScriptedCall>> {
        let mut steps = Vec::new();
        if !self.calls.is_empty() {
            steps.push(self.calls.clone());
        }
        steps.extend(self.steps.iter().filter(|s| !s.is_empty()).cloned());
        steps
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    #[default]
    Builtin,
    Custom,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScriptedCall {
    pub name: String,
    #[serde(default = "empty_object")]
    pub input: Value,
    #[serde(default)]
    pub kind: CallKind,
    /// `evaluated_permission` to put on the call (e.g. `"ask"`, §6.7).
    #[serde(default)]
    pub permission: Option<String>,
    #[serde(default)]
    pub expect: Option<Expectation>,
}

fn empty_object() -> Value {
    json!({})
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    #[serde(default)]
    pub is_error: Option<bool>,
    #[serde(default)]
    pub contains: Vec<String>,
    #[serde(default)]
    pub not_contains: Vec<String>,
    #[serde(default)]
    pub equals: Option<String>,
    /// Whether the call is expected to be denied by a `user.tool_confirmation`.
    #[serde(default)]
    pub denied: Option<bool>,
    /// Content block types that must appear in the result (e.g. `["image"]`).
    #[serde(default)]
    pub block_types: Vec<String>,
}

impl Expectation {
    /// Reasons the observed result violates this expectation (empty = pass).
    pub fn check(&self, denied: bool, is_error: bool, text: &str) -> Vec<String> {
        let mut reasons = Vec::new();
        if denied != self.denied.unwrap_or(false) {
            reasons.push(format!(
                "expected denied={}, got denied={denied}",
                self.denied.unwrap_or(false)
            ));
        }
        if denied {
            return reasons;
        }
        if let Some(want) = self.is_error {
            if want != is_error {
                reasons.push(format!("expected is_error={want}, got is_error={is_error}"));
            }
        }
        for needle in &self.contains {
            if !text.contains(needle.as_str()) {
                reasons.push(format!("output does not contain {needle:?}"));
            }
        }
        for needle in &self.not_contains {
            if text.contains(needle.as_str()) {
                reasons.push(format!("output contains {needle:?}"));
            }
        }
        if let Some(want) = &self.equals {
            if want != text {
                reasons.push(format!("output {text:?} is not equal to {want:?}"));
            }
        }
        reasons
    }
}

/// Reasons for each wanted block type that the result's `content` lacks.
fn missing_block_types(wanted: &[String], event: &Value) -> Vec<String> {
    let types: Vec<&str> = event["content"]
        .as_array()
        .map(|blocks| blocks.iter().filter_map(|b| b["type"].as_str()).collect())
        .unwrap_or_default();
    wanted
        .iter()
        .filter(|w| !types.contains(&w.as_str()))
        .map(|w| format!("result has no {w:?} block (blocks: {types:?})"))
        .collect()
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    AwaitingMessage,
    AwaitingResults,
    Finished,
}

/// The outcome of one scripted call.
#[derive(Debug, Clone, Serialize)]
pub struct CallOutcome {
    pub turn: usize,
    pub step: usize,
    pub name: String,
    pub tool_use_id: String,
    /// `None` while unanswered.
    pub passed: Option<bool>,
    pub reasons: Vec<String>,
    pub is_error: Option<bool>,
    pub denied: bool,
    pub output: Option<String>,
}

/// A scenario attached to a session, and how far it got.
#[derive(Debug, Clone)]
pub struct ScenarioRun {
    script: Scenario,
    phase: Phase,
    turn: usize,
    step: usize,
    steps: Vec<Vec<ScriptedCall>>,
    waiting_messages: usize,
    outcomes: Vec<CallOutcome>,
}

impl ScenarioRun {
    pub fn new(script: Scenario) -> Self {
        let phase = if script.turns.is_empty() {
            Phase::Finished
        } else {
            Phase::AwaitingMessage
        };
        Self {
            script,
            phase,
            turn: 0,
            step: 0,
            steps: Vec::new(),
            waiting_messages: 0,
            outcomes: Vec::new(),
        }
    }

    /// Reacts to a client event that was just appended to `session`.
    pub fn on_event(&mut self, session: &mut SessionRecord, event: &Value) {
        match event["type"].as_str().unwrap_or_default() {
            "user.message" => self.on_message(session),
            "user.tool_result" => self.on_result(session, &event["tool_use_id"], event, false),
            "user.custom_tool_result" => {
                self.on_result(session, &event["custom_tool_use_id"], event, false)
            }
            "user.tool_confirmation" if event["result"] != "allow" => {
                self.on_result(session, &event["tool_use_id"], event, true)
            }
            "user.interrupt" if self.phase == Phase::AwaitingResults => {
                for outcome in self.outcomes.iter_mut().filter(|o| o.passed.is_none()) {
                    outcome.passed = Some(false);
                    outcome
                        .reasons
                        .push("interrupted before a result arrived".into());
                }
                self.finish_turn(session, "Interrupted.".into());
            }
            _ => {}
        }
    }

    fn on_message(&mut self, session: &mut SessionRecord) {
        match self.phase {
            Phase::AwaitingResults => self.waiting_messages += 1,
            Phase::AwaitingMessage => self.start_turn(session),
            Phase::Finished => {
                events::append(session, json!({"type": "session.status_running"}));
                events::append(
                    session,
                    agent_message("The scripted agent has no more turns."),
                );
                events::append(
                    session,
                    json!({"type": "session.status_idle", "stop_reason": {"type": "end_turn"}}),
                );
            }
        }
    }

    fn start_turn(&mut self, session: &mut SessionRecord) {
        events::append(session, json!({"type": "session.status_running"}));
        self.steps = self.script.turns[self.turn].all_steps();
        self.step = 0;
        self.start_step_or_finish(session);
    }

    fn start_step_or_finish(&mut self, session: &mut SessionRecord) {
        let Some(calls) = self.steps.get(self.step).cloned() else {
            let message = self.script.turns[self.turn].message.clone();
            return self.finish_turn(session, message);
        };
        let mut ids = Vec::new();
        for call in calls {
            let event_type = match call.kind {
                CallKind::Builtin => "agent.tool_use",
                CallKind::Custom => "agent.custom_tool_use",
            };
            let mut event = json!({"type": event_type, "name": call.name, "input": call.input});
            if let Some(permission) = &call.permission {
                event["evaluated_permission"] = json!(permission);
            }
            let stored = events::append(session, event);
            let id = stored["id"].as_str().unwrap_or_default().to_string();
            self.outcomes.push(CallOutcome {
                turn: self.turn,
                step: self.step,
                name: call.name.clone(),
                tool_use_id: id.clone(),
                passed: None,
                reasons: Vec::new(),
                is_error: None,
                denied: false,
                output: None,
            });
            ids.push(id);
        }
        events::append(
            session,
            json!({"type": "session.status_idle", "stop_reason": {"type": "requires_action", "event_ids": ids}}),
        );
        self.phase = Phase::AwaitingResults;
    }

    fn on_result(&mut self, session: &mut SessionRecord, id: &Value, event: &Value, denied: bool) {
        let Some(id) = id.as_str() else { return };
        let Some(index) = self
            .outcomes
            .iter()
            .position(|o| o.tool_use_id == id && o.passed.is_none())
        else {
            return;
        };
        let (turn, step) = (self.outcomes[index].turn, self.outcomes[index].step);
        let call_index = self.outcomes[..index]
            .iter()
            .filter(|o| o.turn == turn && o.step == step)
            .count();
        let expectation = self
            .steps
            .get(step)
            .and_then(|calls| calls.get(call_index))
            .and_then(|c| c.expect.clone())
            .unwrap_or_default();
        let is_error = event["is_error"].as_bool().unwrap_or(false);
        let text = result_text(event);
        let mut reasons = expectation.check(denied, is_error, &text);
        if !denied {
            reasons.extend(missing_block_types(&expectation.block_types, event));
        }
        let outcome = &mut self.outcomes[index];
        outcome.passed = Some(reasons.is_empty());
        outcome.reasons = reasons;
        outcome.denied = denied;
        if !denied {
            outcome.is_error = Some(is_error);
            outcome.output = Some(text);
        }
        if self.outcomes.iter().all(|o| o.passed.is_some()) && self.phase == Phase::AwaitingResults
        {
            events::append(session, json!({"type": "session.status_running"}));
            self.step += 1;
            self.start_step_or_finish(session);
        }
    }

    fn finish_turn(&mut self, session: &mut SessionRecord, message: String) {
        events::append(session, agent_message(&message));
        events::append(
            session,
            json!({"type": "session.status_idle", "stop_reason": {"type": "end_turn"}}),
        );
        self.turn += 1;
        if self.turn >= self.script.turns.len() {
            self.phase = Phase::Finished;
            if self.script.terminate_after {
                events::append(session, json!({"type": "session.status_terminated"}));
            }
            return;
        }
        self.phase = Phase::AwaitingMessage;
        if self.waiting_messages > 0 {
            self.waiting_messages -= 1;
            self.start_turn(session);
        }
    }

    /// The report served by the scenario endpoint.
    pub fn report(&self) -> Value {
        let failures: Vec<String> = self
            .outcomes
            .iter()
            .filter(|o| o.passed == Some(false))
            .map(|o| {
                format!(
                    "turn {} step {} {} ({}): {}",
                    o.turn,
                    o.step,
                    o.name,
                    o.tool_use_id,
                    o.reasons.join("; ")
                )
            })
            .collect();
        let outstanding: Vec<&str> = self
            .outcomes
            .iter()
            .filter(|o| o.passed.is_none())
            .map(|o| o.tool_use_id.as_str())
            .collect();
        let complete = self.phase == Phase::Finished;
        json!({
            "type": "scenario_state",
            "phase": self.phase,
            "turn": self.turn,
            "turns": self.script.turns.len(),
            "complete": complete,
            "passed": complete && failures.is_empty(),
            "outstanding": outstanding,
            "failures": failures,
            "results": self.outcomes,
        })
    }
}

fn agent_message(text: &str) -> Value {
    json!({"type": "agent.message", "content": [{"type": "text", "text": text}]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_report_every_violation() {
        let expect = Expectation {
            is_error: Some(false),
            contains: vec!["hello".into()],
            not_contains: vec!["secret".into()],
            equals: Some("hello".into()),
            denied: None,
            block_types: Vec::new(),
        };
        assert!(expect.check(false, false, "hello").is_empty());
        let image = json!({"content": [{"type": "image", "source": {}}]});
        assert!(missing_block_types(&["image".into()], &image).is_empty());
        assert_eq!(missing_block_types(&["document".into()], &image).len(), 1);
        let reasons = expect.check(false, true, "secret");
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert_eq!(
            expect.check(true, false, "").len(),
            1,
            "an unexpected denial fails"
        );
    }

    #[test]
    fn scenario_json_shape() {
        let s: Scenario = serde_json::from_value(json!({
            "turns": [{"calls": [{"name": "bash", "input": {"command": "ls"}}], "steps": [[{"name": "x", "kind": "custom"}]], "message": "ok"}]
        }))
        .unwrap();
        let steps = s.turns[0].all_steps();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[1][0].kind, CallKind::Custom);
        assert!(serde_json::from_value::<Scenario>(json!({"turns": [{"calz": []}]})).is_err());
    }
}
