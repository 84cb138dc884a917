//! Sessions (§6.1, §6.2): create (enqueues a work item), retrieve, list,
//! update, delete, archive. Creation is shared with the admin
//! `POST /v1/emulator/sessions`, which can also attach a scenario.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::events::{self, limit, paginate};
use crate::extract::{json_body, required_str, string_map, P, Q};
use crate::scenario::ScenarioRun;
use crate::state::{AppState, SessionRecord, Store};
use crate::{ids, queue};
use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use sandkeep_api::types::WorkData;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use tokio::sync::broadcast;

/// The §6.2 session object.
pub fn session_object(session: &SessionRecord) -> Value {
    json!({
        "type": "session",
        "id": session.id,
        "status": session.status,
        "environment_id": session.environment_id,
        "agent": session.agent,
        "title": session.title,
        "resources": session.resources,
        "metadata": session.metadata,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "archived_at": session.archived_at,
        "outcome_evaluations": [],
        "stats": {},
        "usage": {},
        "vault_ids": [],
    })
}

fn resolve_agent(store: &Store, agent: Option<&Value>) -> ApiResult<Value> {
    let id =
        match agent {
            Some(Value::String(id)) => id.as_str(),
            Some(Value::Object(map)) => map
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::bad_request("agent.id: required"))?,
            _ => return Err(ApiError::bad_request(
                "agent: required, an agent id or {\"type\": \"agent\", \"id\": …, \"version\": …}",
            )),
        };
    let agent = store
        .agent(id)
        .ok_or_else(|| ApiError::not_found("agent", id))?;
    Ok(agent.clone())
}

fn validate_resources(environment: &Value, body: &Value) -> ApiResult<Vec<Value>> {
    let resources = match body.get("resources") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(resources)) => resources.clone(),
        Some(_) => return Err(ApiError::bad_request("resources: must be a list")),
    };
    let self_hosted = environment["config"]["type"] == "self_hosted";
    if self_hosted && resources.iter().any(|r| r["type"] != "memory_store") {
        // Exact text from the docs (§3.1).
        return Err(ApiError::bad_request(format!(
            "Environment {} is a self-hosted environment. `resources` are not supported with self-hosted environments.",
            environment["id"].as_str().unwrap_or_default()
        )));
    }
    Ok(resources)
}

/// Creates a session, enqueues its work item and replays `initial_events`.
pub fn create_session(
    state: &AppState,
    body: &Value,
    scenario: Option<ScenarioRun>,
) -> ApiResult<Value> {
    let environment_id = required_str(body, "environment_id")?;
    let metadata = string_map(body, "metadata")?;
    let initial: Vec<Value> = match body.get("initial_events") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(events)) => events.clone(),
        Some(_) => return Err(ApiError::bad_request("initial_events: must be a list")),
    };
    let mut store = state.store();
    let environment = store
        .environment(environment_id)
        .ok_or_else(|| ApiError::not_found("environment", environment_id))?;
    if !environment["archived_at"].is_null() {
        return Err(ApiError::bad_request(format!(
            "environment {environment_id} is archived; sessions cannot be created in it"
        )));
    }
    let resources = validate_resources(environment, body)?;
    let agent = resolve_agent(&store, body.get("agent"))?;
    let now = ids::now();
    let mut session = SessionRecord {
        id: ids::new_id("sesn"),
        environment_id: environment_id.to_string(),
        agent,
        status: "idle".into(),
        title: body
            .get("title")
            .and_then(Value::as_str)
            .map(str::to_string),
        metadata,
        resources,
        created_at: now.clone(),
        updated_at: now,
        archived_at: None,
        events: Vec::new(),
        tool_calls: HashMap::new(),
        answered: HashSet::new(),
        stream: broadcast::channel(1024).0,
        scenario,
    };
    for (index, event) in initial.iter().enumerate() {
        if event["type"] != "user.message" && event["type"] != "user.define_outcome" {
            return Err(ApiError::bad_request(format!(
                "initial_events[{index}].type: only user.message and user.define_outcome are allowed"
            )));
        }
        events::validate_client_event(&session, event, index)?;
    }
    for event in initial {
        post_client_event(&mut session, event);
    }
    let object = session_object(&session);
    let id = session.id.clone();
    store.session_order.push(id.clone());
    store.sessions.insert(id.clone(), session);
    queue::enqueue(
        &mut store,
        environment_id,
        WorkData {
            kind: "session".into(),
            id,
        },
    );
    drop(store);
    state.work_enqueued.notify_waiters();
    Ok(object)
}

/// Appends a validated client event and lets the scenario react to it.
pub fn post_client_event(session: &mut SessionRecord, event: Value) -> Value {
    let stored = events::append(session, event);
    if let Some(mut run) = session.scenario.take() {
        run.on_event(session, &stored);
        session.scenario = Some(run);
    }
    stored
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let body: Value = json_body(&body)?;
    Ok(Json(create_session(&state, &body, None)?))
}

pub async fn retrieve(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
) -> ApiResult<Json<Value>> {
    let store = state.store();
    caller.require_session_access(&store, &id)?;
    Ok(Json(session_object(&store.sessions[&id])))
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    include_archived: Option<bool>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Q(query): Q<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let limit = limit(query.limit, 20)?;
    let store = state.store();
    let sessions: Vec<Value> = store
        .session_order
        .iter()
        .filter_map(|id| store.sessions.get(id))
        .filter(|s| query.include_archived.unwrap_or(false) || s.archived_at.is_none())
        .map(session_object)
        .collect();
    let (data, next_page) = paginate(&sessions, limit, query.page.as_deref())?;
    Ok(Json(json!({"data": data, "next_page": next_page})))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let body: Value = json_body(&body)?;
    let metadata = string_map(&body, "metadata")?;
    let mut store = state.store();
    let session = store
        .sessions
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("session", &id))?;
    if body.get("metadata").is_some() {
        session.metadata = metadata;
    }
    if let Some(title) = body.get("title") {
        session.title = title.as_str().map(str::to_string);
    }
    session.updated_at = ids::now();
    Ok(Json(session_object(session)))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let mut store = state.store();
    let session = store
        .sessions
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("session", &id))?;
    if session.status != "terminated" {
        events::append(session, json!({"type": "session.deleted"}));
    }
    store.session_order.retain(|s| *s != id);
    Ok(Json(json!({"type": "session_deleted", "id": id})))
}

pub async fn archive(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let mut store = state.store();
    let session = store
        .sessions
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("session", &id))?;
    if session.archived_at.is_none() {
        session.archived_at = Some(ids::now());
    }
    Ok(Json(session_object(session)))
}
