//! Session events (§6.1, §11): list with cursors, send client events, and
//! the live SSE stream.

use super::sessions::post_client_event;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::events::{self, limit, paginate};
use crate::extract::{json_body, P, Q};
use crate::sse;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashSet;

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    order: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
    Q(query): Q<ListQuery>,
) -> ApiResult<Json<Value>> {
    let limit = limit(query.limit, 20)?;
    let store = state.store();
    caller.require_session_access(&store, &id)?;
    let session = &store.sessions[&id];
    let data = match query.order.as_deref() {
        None | Some("asc") => paginate(&session.events, limit, query.page.as_deref())?,
        Some("desc") => {
            let reversed: Vec<Value> = session.events.iter().rev().cloned().collect();
            paginate(&reversed, limit, query.page.as_deref())?
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "order: must be \"asc\" or \"desc\", got {other:?}"
            )))
        }
    };
    Ok(Json(json!({"data": data.0, "next_page": data.1})))
}

#[derive(Deserialize)]
struct SendBody {
    events: Vec<Value>,
}

pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let body: SendBody = json_body(&body)?;
    if body.events.is_empty() {
        return Err(ApiError::bad_request(
            "events: at least one event is required",
        ));
    }
    let mut store = state.store();
    caller.require_session_access(&store, &id)?;
    let session = store
        .sessions
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("session", &id))?;
    if session.status == "terminated" {
        return Err(ApiError::bad_request(format!(
            "session {id} is terminated and accepts no more events"
        )));
    }
    // Validate the whole batch first so a bad event leaves the log untouched.
    let mut answered_here = HashSet::new();
    for (index, event) in body.events.iter().enumerate() {
        events::validate_client_event(session, event, index)?;
        let answered = event
            .get("tool_use_id")
            .or_else(|| event.get("custom_tool_use_id"));
        if event["type"] != "user.tool_confirmation" {
            if let Some(answered) = answered.and_then(Value::as_str) {
                if !answered_here.insert(answered.to_string()) {
                    return Err(ApiError::bad_request(format!(
                        "events[{index}]: tool call {answered} is answered twice in this request"
                    )));
                }
            }
        }
    }
    let stored: Vec<Value> = body
        .events
        .into_iter()
        .map(|event| post_client_event(session, event))
        .collect();
    Ok(Json(json!({"data": stored})))
}

pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
) -> ApiResult<impl IntoResponse> {
    let receiver = {
        let store = state.store();
        caller.require_session_access(&store, &id)?;
        store.sessions[&id].stream.subscribe()
    };
    Ok(sse::stream(state, receiver))
}
