//! The session event log (§6.1, §6.3, §11): appending with server-assigned
//! fields, tool-call bookkeeping, status transitions, validation of
//! client-sent events, and cursor pagination.

use crate::error::ApiError;
use crate::ids;
use crate::state::{SessionRecord, ToolCallKind};
use serde_json::{json, Value};

/// Appends `event` to the log: adds `id` (`sevt_…`) and `processed_at`,
/// tracks tool calls and answers, moves the session status, and fans the
/// stored event out to live SSE subscribers. Returns the stored event.
pub fn append(session: &mut SessionRecord, mut event: Value) -> Value {
    let id = ids::new_id("sevt");
    event["id"] = json!(id);
    event["processed_at"] = json!(ids::now());
    let kind = event["type"].as_str().unwrap_or_default().to_string();
    match kind.as_str() {
        "agent.tool_use" => {
            session.tool_calls.insert(id.clone(), ToolCallKind::Builtin);
        }
        "agent.custom_tool_use" => {
            session.tool_calls.insert(id.clone(), ToolCallKind::Custom);
        }
        "user.tool_result" => {
            answer(session, &event["tool_use_id"]);
        }
        "user.custom_tool_result" => {
            answer(session, &event["custom_tool_use_id"]);
        }
        "user.tool_confirmation" if event["result"] != "allow" => {
            // A denial resolves the call server-side (§6.7).
            answer(session, &event["tool_use_id"]);
        }
        _ => {}
    }
    if let Some(status) = status_after(&kind) {
        session.status = status.to_string();
    }
    session.updated_at = ids::now();
    session.events.push(event.clone());
    // No subscribers is normal; the event is still in the log.
    let _ = session.stream.send(event.clone());
    event
}

fn answer(session: &mut SessionRecord, id: &Value) {
    if let Some(id) = id.as_str() {
        session.answered.insert(id.to_string());
    }
}

fn status_after(event_type: &str) -> Option<&'static str> {
    match event_type {
        "session.status_running" => Some("running"),
        "session.status_idle" => Some("idle"),
        "session.status_rescheduled" => Some("rescheduling"),
        "session.status_terminated" | "session.deleted" => Some("terminated"),
        _ => None,
    }
}

/// Event types a client may send through `POST /v1/sessions/{id}/events`.
const CLIENT_EVENT_TYPES: &[&str] = &[
    "user.message",
    "user.tool_result",
    "user.custom_tool_result",
    "user.tool_confirmation",
    "user.interrupt",
    "user.define_outcome",
];

/// Checks a client-sent event before anything is appended (§11.5).
pub fn validate_client_event(
    session: &SessionRecord,
    event: &Value,
    index: usize,
) -> Result<(), ApiError> {
    let at = format!("events[{index}]");
    let Some(kind) = event.get("type").and_then(Value::as_str) else {
        return Err(ApiError::bad_request(format!(
            "{at}.type: a string event type is required"
        )));
    };
    if !CLIENT_EVENT_TYPES.contains(&kind) {
        return Err(ApiError::bad_request(format!(
            "{at}.type: '{kind}' cannot be sent by a client; expected one of {}",
            CLIENT_EVENT_TYPES.join(", ")
        )));
    }
    let tool_call = |field: &str, want: ToolCallKind| -> Result<(), ApiError> {
        let Some(id) = event.get(field).and_then(Value::as_str) else {
            return Err(ApiError::bad_request(format!(
                "{at}.{field}: a tool call id string is required"
            )));
        };
        match session.tool_calls.get(id) {
            None => Err(ApiError::bad_request(format!(
                "{at}.{field}: {id} is not a tool call of session {}",
                session.id
            ))),
            Some(kind) if *kind != want => Err(ApiError::bad_request(format!(
                "{at}.{field}: {id} is a {} tool call; answer it with {}",
                if want == ToolCallKind::Builtin {
                    "custom"
                } else {
                    "built-in"
                },
                if want == ToolCallKind::Builtin {
                    "user.custom_tool_result"
                } else {
                    "user.tool_result"
                },
            ))),
            Some(_) if session.answered.contains(id) => Err(ApiError::bad_request(format!(
                "{at}.{field}: tool call {id} has already been answered"
            ))),
            Some(_) => Ok(()),
        }
    };
    match kind {
        "user.tool_result" => {
            tool_call("tool_use_id", ToolCallKind::Builtin)?;
            validate_content(event, &at)
        }
        "user.custom_tool_result" => {
            tool_call("custom_tool_use_id", ToolCallKind::Custom)?;
            validate_content(event, &at)
        }
        "user.tool_confirmation" => {
            tool_call("tool_use_id", ToolCallKind::Builtin)?;
            match event.get("result").and_then(Value::as_str) {
                Some("allow" | "deny") => Ok(()),
                _ => Err(ApiError::bad_request(format!(
                    "{at}.result: must be \"allow\" or \"deny\""
                ))),
            }
        }
        "user.message" => match event.get("content") {
            Some(Value::Array(blocks)) if !blocks.is_empty() => Ok(()),
            Some(Value::String(_)) => Ok(()),
            _ => Err(ApiError::bad_request(format!(
                "{at}.content: a non-empty list of content blocks is required"
            ))),
        },
        _ => Ok(()),
    }
}

fn validate_content(event: &Value, at: &str) -> Result<(), ApiError> {
    match event.get("content") {
        None | Some(Value::Array(_)) => {}
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "{at}.content: must be a list of content blocks"
            )))
        }
    }
    match event.get("is_error") {
        None | Some(Value::Bool(_)) | Some(Value::Null) => Ok(()),
        Some(_) => Err(ApiError::bad_request(format!(
            "{at}.is_error: must be a boolean"
        ))),
    }
}

/// The text of a result's content blocks, concatenated (for expectations).
pub fn result_text(event: &Value) -> String {
    match event.get("content") {
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

/// One page of a list; the cursor is an opaque offset.
pub fn paginate<T: Clone>(
    items: &[T],
    limit: usize,
    page: Option<&str>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = match page.filter(|p| !p.is_empty()) {
        None => 0,
        Some(cursor) => cursor
            .strip_prefix("page_")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "page: '{cursor}' is not a cursor returned by this list"
                ))
            })?,
    };
    let end = start.saturating_add(limit).min(items.len());
    let data = items
        .get(start.min(items.len())..end)
        .unwrap_or_default()
        .to_vec();
    let next = (end < items.len()).then(|| format!("page_{end}"));
    Ok((data, next))
}

/// Validates a `limit` query value: 1..=1000, default `default`.
pub fn limit(value: Option<i64>, default: usize) -> Result<usize, ApiError> {
    match value {
        None => Ok(default),
        Some(n) if n < 1 => Err(ApiError::bad_request(format!(
            "limit: must be at least 1, got {n}"
        ))),
        Some(n) => Ok((n as usize).min(1000)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_walks_all_items() {
        let items: Vec<u32> = (0..5).collect();
        let (a, next) = paginate(&items, 2, None).unwrap();
        assert_eq!(a, vec![0, 1]);
        let (b, next) = paginate(&items, 2, next.as_deref()).unwrap();
        assert_eq!(b, vec![2, 3]);
        let (c, next) = paginate(&items, 2, next.as_deref()).unwrap();
        assert_eq!((c, next), (vec![4], None));
        assert!(paginate(&items, 2, Some("bogus")).is_err());
        assert_eq!(
            paginate(&items, 2, Some("page_99")).unwrap().0,
            Vec::<u32>::new()
        );
    }

    #[test]
    fn limit_is_capped_and_checked() {
        assert_eq!(limit(None, 20).unwrap(), 20);
        assert_eq!(limit(Some(5000), 20).unwrap(), 1000);
        assert!(limit(Some(0), 20).is_err());
    }

    #[test]
    fn result_text_joins_text_blocks() {
        let event = json!({"content": [{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}]});
        assert_eq!(result_text(&event), "ab");
    }
}
