//! Agents: create, retrieve, list. The agent is snapshotted into each
//! session created from it (§6.2 `session.agent`).

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::events::{limit, paginate};
use crate::extract::{json_body, required_str, string_map, P, Q};
use crate::ids;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

fn validate_tools(body: &Value) -> ApiResult<Vec<Value>> {
    let tools = match body.get("tools") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(ApiError::bad_request("tools: must be a list")),
    };
    for (i, tool) in tools.iter().enumerate() {
        match tool.get("type").and_then(Value::as_str) {
            Some("agent_toolset_20260401" | "mcp_toolset") => {}
            Some("custom") => {
                required_str(tool, "name").map_err(|_| ApiError::bad_request(format!("tools[{i}].name: required for a custom tool")))?;
                if !tool.get("input_schema").is_some_and(Value::is_object) {
                    return Err(ApiError::bad_request(format!("tools[{i}].input_schema: a JSON schema object is required")));
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "tools[{i}].type: {other:?} is not supported; use \"agent_toolset_20260401\", \"custom\" or \"mcp_toolset\""
                )))
            }
        }
    }
    Ok(tools.clone())
}

fn validate_skills(body: &Value) -> ApiResult<Vec<Value>> {
    let skills = match body.get("skills") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(skills)) => skills,
        Some(_) => return Err(ApiError::bad_request("skills: must be a list")),
    };
    skills
        .iter()
        .enumerate()
        .map(|(i, skill)| {
            let skill_id = required_str(skill, "skill_id")
                .map_err(|_| ApiError::bad_request(format!("skills[{i}].skill_id: required")))?;
            let kind = skill
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("custom");
            let version = skill
                .get("version")
                .and_then(Value::as_str)
                .unwrap_or("latest");
            Ok(json!({"type": kind, "skill_id": skill_id, "version": version}))
        })
        .collect()
}

fn model(body: &Value) -> ApiResult<Value> {
    match body.get("model") {
        Some(Value::String(id)) if !id.is_empty() => Ok(json!({"id": id})),
        Some(Value::Object(m)) if m.get("id").is_some_and(Value::is_string) => {
            Ok(Value::Object(m.clone()))
        }
        _ => Err(ApiError::bad_request(
            "model: required, a model id string or {\"id\": …}",
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
    let now = ids::now();
    let agent = json!({
        "type": "agent",
        "id": ids::new_id("agent"),
        "name": required_str(&body, "name")?,
        "description": body.get("description").cloned().unwrap_or(Value::Null),
        "model": model(&body)?,
        "system": body.get("system").cloned().unwrap_or(Value::Null),
        "tools": validate_tools(&body)?,
        "skills": validate_skills(&body)?,
        "mcp_servers": body.get("mcp_servers").cloned().unwrap_or(json!([])),
        "metadata": string_map(&body, "metadata")?,
        "execution_identity": {"type": "service_account"},
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "archived_at": null,
    });
    state.store().agents.push(agent.clone());
    Ok(Json(agent))
}

pub async fn retrieve(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let store = state.store();
    let agent = store
        .agent(&id)
        .ok_or_else(|| ApiError::not_found("agent", &id))?;
    Ok(Json(agent.clone()))
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
    Q(query): Q<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let limit = limit(query.limit, 20)?;
    let store = state.store();
    let (data, next_page) = paginate(&store.agents, limit, query.page.as_deref())?;
    Ok(Json(json!({"data": data, "next_page": next_page})))
}
