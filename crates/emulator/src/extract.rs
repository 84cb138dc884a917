//! Request parsing that never panics: bad JSON bodies and query strings
//! become 400 `invalid_request_error` with the parser's explanation.

use crate::error::ApiError;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query};
use serde::de::DeserializeOwned;

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(format!("invalid query string: {}", rejection.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(format!("invalid path: {}", rejection.body_text()))
    }
}

/// `Query` with §2.3 errors.
#[derive(FromRequestParts)]
#[from_request(via(Query), rejection(ApiError))]
pub struct Q<T>(pub T);

/// `Path` with §2.3 errors.
#[derive(FromRequestParts)]
#[from_request(via(Path), rejection(ApiError))]
pub struct P<T>(pub T);

/// Parses a JSON request body; an empty body parses as `{}` when `T` allows it.
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// A required string field of a JSON object.
pub fn required_str<'a>(body: &'a serde_json::Value, field: &str) -> Result<&'a str, ApiError> {
    body.get(field)
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{field}: a non-empty string is required")))
}

/// Checks that `metadata` (if present) maps strings to strings.
pub fn string_map(
    body: &serde_json::Value,
    field: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match body.get(field) {
        None | Some(serde_json::Value::Null) => Ok(serde_json::Map::new()),
        Some(serde_json::Value::Object(map)) if map.values().all(|v| v.is_string()) => {
            Ok(map.clone())
        }
        Some(_) => Err(ApiError::bad_request(format!(
            "{field}: must be an object of string values"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn empty_body_is_an_empty_object_and_garbage_is_400() {
        let v: Value = json_body(b"").unwrap();
        assert_eq!(v, json!({}));
        let err = json_body::<Value>(b"{nope").unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
        assert!(err.message.starts_with("invalid JSON body"));
    }

    #[test]
    fn metadata_must_hold_strings() {
        assert!(string_map(&json!({"metadata": {"a": 1}}), "metadata").is_err());
        assert_eq!(string_map(&json!({}), "metadata").unwrap().len(), 0);
    }
}
