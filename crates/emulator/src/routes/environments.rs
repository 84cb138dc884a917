//! Environments (§3.1): create, list, retrieve, update, delete, archive.

use crate::auth::{Caller, Principal};
use crate::error::{ApiError, ApiResult};
use crate::events::{limit, paginate};
use crate::extract::{json_body, required_str, string_map, P, Q};
use crate::ids;
use crate::state::{AppState, Store};
use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

fn validate_config(body: &Value) -> ApiResult<Option<Value>> {
    match body.get("config") {
        None | Some(Value::Null) => Ok(None),
        Some(config @ Value::Object(map)) if map.get("type").is_some_and(Value::is_string) => {
            Ok(Some(config.clone()))
        }
        Some(_) => Err(ApiError::bad_request(
            "config: must be an object with a string `type`, e.g. {\"type\": \"self_hosted\"}",
        )),
    }
}

fn validate_scope(body: &Value) -> ApiResult<Option<Value>> {
    match body.get("scope") {
        None => Ok(None),
        Some(scope @ (Value::Null | Value::String(_)))
            if scope.is_null() || matches!(scope.as_str(), Some("organization" | "account")) =>
        {
            Ok(Some(scope.clone()))
        }
        Some(_) => Err(ApiError::bad_request(
            "scope: must be \"organization\", \"account\" or null",
        )),
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let body: Value = json_body(&body)?;
    let name = required_str(&body, "name")?;
    let config = validate_config(&body)?.ok_or_else(|| {
        ApiError::bad_request("config: required, e.g. {\"type\": \"self_hosted\"}")
    })?;
    let now = ids::now();
    let environment = json!({
        "type": "environment",
        "id": ids::new_id("env"),
        "name": name,
        "config": config,
        "description": body.get("description").cloned().unwrap_or(Value::Null),
        "metadata": string_map(&body, "metadata")?,
        "scope": validate_scope(&body)?.unwrap_or(json!("organization")),
        "created_at": now,
        "updated_at": now,
        "archived_at": null,
    });
    state.store().environments.push(environment.clone());
    Ok(Json(environment))
}

/// Looks up an environment the caller may see (admin, or its own key).
pub fn visible_environment<'a>(
    store: &'a Store,
    caller: &Caller,
    id: &str,
) -> ApiResult<&'a Value> {
    let environment = store
        .environment(id)
        .ok_or_else(|| ApiError::not_found("environment", id))?;
    match &caller.0 {
        Principal::Admin => Ok(environment),
        Principal::Environment(env) if env == id => Ok(environment),
        _ => Err(ApiError::forbidden(format!(
            "this credential is not valid for environment {id}"
        ))),
    }
}

pub async fn retrieve(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
) -> ApiResult<Json<Value>> {
    let store = state.store();
    Ok(Json(visible_environment(&store, &caller, &id)?.clone()))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let body: Value = json_body(&body)?;
    let config = validate_config(&body)?;
    let scope = validate_scope(&body)?;
    let metadata = string_map(&body, "metadata")?;
    let mut store = state.store();
    let environment = store
        .environment_mut(&id)
        .ok_or_else(|| ApiError::not_found("environment", &id))?;
    if let Some(name) = body.get("name").and_then(Value::as_str) {
        environment["name"] = json!(name);
    }
    if let Some(description) = body.get("description") {
        environment["description"] = description.clone();
    }
    if let Some(config) = config {
        environment["config"] = config;
    }
    if let Some(scope) = scope {
        environment["scope"] = scope;
    }
    if body.get("metadata").is_some() {
        environment["metadata"] = Value::Object(metadata);
    }
    environment["updated_at"] = json!(ids::now());
    Ok(Json(environment.clone()))
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    include_archived: Option<bool>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    page: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Q(query): Q<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let limit = limit(query.limit, 20)?;
    let store = state.store();
    let visible: Vec<Value> = store
        .environments
        .iter()
        .filter(|e| query.include_archived.unwrap_or(false) || e["archived_at"].is_null())
        .cloned()
        .collect();
    let (data, next_page) = paginate(&visible, limit, query.page.as_deref())?;
    Ok(Json(json!({"data": data, "next_page": next_page})))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let mut store = state.store();
    let before = store.environments.len();
    store.environments.retain(|e| e["id"] != id.as_str());
    if store.environments.len() == before {
        return Err(ApiError::not_found("environment", &id));
    }
    store.environment_keys.retain(|_, env| *env != id);
    Ok(Json(json!({"type": "environment_deleted", "id": id})))
}

pub async fn archive(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let mut store = state.store();
    let environment = store
        .environment_mut(&id)
        .ok_or_else(|| ApiError::not_found("environment", &id))?;
    if environment["archived_at"].is_null() {
        let now = ids::now();
        environment["archived_at"] = json!(now);
        environment["updated_at"] = json!(now);
    }
    Ok(Json(environment.clone()))
}
