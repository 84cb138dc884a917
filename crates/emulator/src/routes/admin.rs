//! Emulator-only endpoints under `/v1/emulator/` (admin key only): environment
//! keys, raw work items, scripted sessions, agent-side events, scenario state
//! and fault injection. Documented in `docs/emulator.md`.

use super::sessions::create_session;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::events;
use crate::extract::{json_body, required_str, P};
use crate::faults::Faults;
use crate::scenario::{Scenario, ScenarioRun};
use crate::state::AppState;
use crate::{ids, queue};
use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use sandkeep_api::types::WorkData;
use serde_json::{json, Value};

/// Mints an environment key scoped to one environment.
pub async fn mint_key(
    State(state): State<AppState>,
    caller: Caller,
    P(environment_id): P<String>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let mut store = state.store();
    if store.environment(&environment_id).is_none() {
        return Err(ApiError::not_found("environment", &environment_id));
    }
    let key = ids::new_token("sk-emu-env");
    store
        .environment_keys
        .insert(key.clone(), environment_id.clone());
    Ok(Json(
        json!({"type": "environment_key", "environment_id": environment_id, "key": key}),
    ))
}

/// Enqueues an arbitrary work item, e.g. `{"data": {"type": "healthcheck"}}`.
pub async fn enqueue_work(
    State(state): State<AppState>,
    caller: Caller,
    P(environment_id): P<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let body: Value = json_body(&body)?;
    let data = body
        .get("data")
        .ok_or_else(|| ApiError::bad_request("data: required, e.g. {\"type\": \"healthcheck\"}"))?;
    let kind = required_str(data, "type")
        .map_err(|_| ApiError::bad_request("data.type: a non-empty string is required"))?;
    let id = data.get("id").and_then(Value::as_str).unwrap_or_default();
    let mut store = state.store();
    if store.environment(&environment_id).is_none() {
        return Err(ApiError::not_found("environment", &environment_id));
    }
    let work_id = queue::enqueue(
        &mut store,
        &environment_id,
        WorkData {
            kind: kind.into(),
            id: id.into(),
        },
    );
    let item = store
        .work_mut(&environment_id, &work_id)
        .map(|w| json!(w.item));
    drop(store);
    state.work_enqueued.notify_waiters();
    Ok(Json(item.unwrap_or(Value::Null)))
}

fn parse_scenario(value: &Value) -> ApiResult<ScenarioRun> {
    let script: Scenario = serde_json::from_value(value.clone())
        .map_err(|e| ApiError::bad_request(format!("scenario: {e}")))?;
    Ok(ScenarioRun::new(script))
}

/// `POST /v1/sessions` plus an optional `scenario`.
pub async fn create_scripted_session(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let mut body: Value = json_body(&body)?;
    let scenario = match body.as_object_mut().and_then(|b| b.remove("scenario")) {
        Some(value) => Some(parse_scenario(&value)?),
        None => None,
    };
    Ok(Json(create_session(&state, &body, scenario)?))
}

/// Attaches (or replaces) the scenario of an existing session.
pub async fn attach_scenario(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let run = parse_scenario(&json_body(&body)?)?;
    let mut store = state.store();
    let session = store
        .sessions
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("session", &id))?;
    let report = run.report();
    session.scenario = Some(run);
    Ok(Json(report))
}

pub async fn scenario_state(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let store = state.store();
    let session = store
        .sessions
        .get(&id)
        .ok_or_else(|| ApiError::not_found("session", &id))?;
    let run = session
        .scenario
        .as_ref()
        .ok_or_else(|| ApiError::not_found("scenario of session", &id))?;
    Ok(Json(run.report()))
}

/// Appends agent-side events verbatim (server adds `id`, `processed_at`).
pub async fn append_events(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let body: Value = json_body(&body)?;
    let Some(list) = body.get("events").and_then(Value::as_array) else {
        return Err(ApiError::bad_request(
            "events: a list of events is required",
        ));
    };
    for (index, event) in list.iter().enumerate() {
        if !event.get("type").is_some_and(Value::is_string) {
            return Err(ApiError::bad_request(format!(
                "events[{index}].type: a string event type is required"
            )));
        }
    }
    let mut store = state.store();
    let session = store
        .sessions
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("session", &id))?;
    let stored: Vec<Value> = list
        .iter()
        .map(|event| events::append(session, event.clone()))
        .collect();
    Ok(Json(json!({"data": stored})))
}

pub async fn inject_faults(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let faults: Faults = json_body(&body)?;
    let expired = crate::apply_faults(&state, &faults);
    Ok(Json(
        json!({"type": "faults_armed", "expired_leases": expired}),
    ))
}

pub async fn clear_faults(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    state.faults().clear();
    Ok(Json(json!({"type": "faults_cleared"})))
}
