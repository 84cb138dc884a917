//! Work-queue endpoints (§3.4): poll, ack, heartbeat, stop, list, retrieve,
//! update, stats. The queue rules live in [`crate::queue`].

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::events::{limit, paginate};
use crate::extract::{json_body, P, Q};
use crate::queue;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn ensure_environment(state: &AppState, id: &str) -> ApiResult<()> {
    match state.store().environment(id) {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("environment", id)),
    }
}

#[derive(Deserialize)]
pub struct PollQuery {
    #[serde(default)]
    block_ms: Option<i64>,
    #[serde(default)]
    reclaim_older_than_ms: Option<i64>,
}

/// §3.4.1: claim the oldest claimable item, waiting up to `block_ms`.
pub async fn poll(
    State(state): State<AppState>,
    caller: Caller,
    P(environment_id): P<String>,
    headers: HeaderMap,
    Q(query): Q<PollQuery>,
) -> ApiResult<Json<Value>> {
    caller.require_environment_key(&environment_id)?;
    ensure_environment(&state, &environment_id)?;
    let block = match query.block_ms {
        None => Duration::ZERO,
        Some(ms @ 1..=999) => Duration::from_millis(ms as u64),
        Some(ms) => {
            return Err(ApiError::bad_request(format!(
                "block_ms: must be between 1 and 999 (omit it for a non-blocking poll), got {ms}"
            )))
        }
    };
    let reclaim = match query.reclaim_older_than_ms {
        None => Duration::from_millis(state.config.reclaim_default_ms),
        Some(ms) if ms >= 0 => Duration::from_millis(ms as u64),
        Some(ms) => {
            return Err(ApiError::bad_request(format!(
                "reclaim_older_than_ms: must not be negative, got {ms}"
            )))
        }
    };
    let worker_id = headers
        .get("anthropic-worker-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let deadline = tokio::time::Instant::now() + block;
    loop {
        // Register for the wake-up before looking, so an enqueue in between is not missed.
        let notified = state.work_enqueued.notified();
        let claimed = {
            let mut store = state.store();
            let now = Instant::now();
            if let Some(worker) = &worker_id {
                queue::note_worker(&mut store, &environment_id, worker, now);
            }
            queue::claim(&mut store, &environment_id, reclaim, now)
        };
        if let Some(item) = claimed {
            return Ok(Json(serde_json::to_value(item).unwrap_or(Value::Null)));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            // §3.4.1: an empty queue is `200 application/json null`, never 204.
            return Ok(Json(Value::Null));
        }
        // Pending items become reclaimable by time alone, so re-check now and then.
        let wait = (deadline - now).min(Duration::from_millis(100));
        let _ = tokio::time::timeout(wait, notified).await;
    }
}

pub async fn ack(
    State(state): State<AppState>,
    caller: Caller,
    P((environment_id, work_id)): P<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require_environment_key(&environment_id)?;
    let ttl = Duration::from_secs(state.config.lease_ttl_seconds);
    let item = queue::ack(
        &mut state.store(),
        &environment_id,
        &work_id,
        ttl,
        Instant::now(),
    )?;
    Ok(Json(json!(item)))
}

#[derive(Deserialize)]
pub struct HeartbeatQuery {
    #[serde(default)]
    expected_last_heartbeat: Option<String>,
    #[serde(default)]
    desired_ttl_seconds: Option<u64>,
}

pub async fn heartbeat(
    State(state): State<AppState>,
    caller: Caller,
    P((environment_id, work_id)): P<(String, String)>,
    Q(query): Q<HeartbeatQuery>,
) -> ApiResult<Json<Value>> {
    caller.require_work_access(&environment_id, &work_id, false)?;
    // The SDK never sends desired_ttl_seconds; honour it within 1 s..=configured TTL.
    let ttl_seconds = query
        .desired_ttl_seconds
        .map(|s| s.clamp(1, state.config.lease_ttl_seconds))
        .unwrap_or(state.config.lease_ttl_seconds);
    let force_412 = state.faults().reject_heartbeats.contains(&work_id);
    let heartbeat = queue::heartbeat(
        &mut state.store(),
        &environment_id,
        &work_id,
        query.expected_last_heartbeat.as_deref(),
        Duration::from_secs(ttl_seconds),
        force_412,
        Instant::now(),
    )?;
    Ok(Json(json!(heartbeat)))
}

#[derive(Deserialize)]
struct StopBody {
    #[serde(default)]
    force: Option<bool>,
}

pub async fn stop(
    State(state): State<AppState>,
    caller: Caller,
    P((environment_id, work_id)): P<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require_work_access(&environment_id, &work_id, true)?;
    let body: StopBody = json_body(&body)?;
    let item = queue::stop(
        &mut state.store(),
        &environment_id,
        &work_id,
        body.force.unwrap_or(false),
    )?;
    Ok(Json(json!(item)))
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    page: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    P(environment_id): P<String>,
    Q(query): Q<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require_environment_key(&environment_id)?;
    let limit = limit(query.limit, 20)?;
    let mut store = state.store();
    queue::expire_leases(&mut store, Instant::now());
    let items: Vec<Value> = store
        .work
        .iter()
        .filter(|w| w.item.environment_id == environment_id)
        .map(|w| json!(w.item))
        .collect();
    let (data, next_page) = paginate(&items, limit, query.page.as_deref())?;
    Ok(Json(json!({"data": data, "next_page": next_page})))
}

pub async fn retrieve(
    State(state): State<AppState>,
    caller: Caller,
    P((environment_id, work_id)): P<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let mut store = state.store();
    queue::expire_leases(&mut store, Instant::now());
    let record = store
        .work_mut(&environment_id, &work_id)
        .ok_or_else(|| ApiError::not_found("work item", &work_id))?;
    Ok(Json(json!(record.item)))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    P((environment_id, work_id)): P<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let body: Value = json_body(&body)?;
    let patch = match body.get("metadata") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "metadata: must be an object of string or null values",
            ))
        }
    };
    let item = queue::update_metadata(&mut state.store(), &environment_id, &work_id, &patch)?;
    Ok(Json(json!(item)))
}

pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    P(environment_id): P<String>,
) -> ApiResult<Json<Value>> {
    caller.require_operator_or_environment(&environment_id)?;
    ensure_environment(&state, &environment_id)?;
    let reclaim = Duration::from_millis(state.config.reclaim_default_ms);
    let stats = queue::stats(&mut state.store(), &environment_id, reclaim, Instant::now());
    Ok(Json(json!(stats)))
}
