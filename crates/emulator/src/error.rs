//! The §2.3 error envelope. Every failure the emulator returns goes through
//! [`ApiError`], so clients always see `{"type":"error","error":{…},"request_id"}`
//! plus a `request-id` header (and `x-should-retry: false` on 409/412, §2.2).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// An API error rendered as the §2.3 envelope.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authentication_error", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_error", message)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("{what} {id} was not found"),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict_error", message)
    }

    /// An error with an arbitrary status, used by fault injection.
    pub fn injected(status: StatusCode) -> Self {
        let kind = match status.as_u16() {
            400 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            409 => "conflict_error",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        };
        Self::new(
            status,
            kind,
            format!("injected fault: HTTP {}", status.as_u16()),
        )
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// A fresh `req_…` id for the `request-id` header and the envelope.
pub fn new_request_id() -> String {
    crate::ids::new_id("req")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = new_request_id();
        let mut error = json!({"type": self.kind, "message": self.message});
        if let Some(details) = self.details {
            error["details"] = details;
        }
        let body = json!({"type": "error", "error": error, "request_id": request_id});
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            headers.insert("request-id", value);
        }
        if matches!(self.status.as_u16(), 409 | 412) {
            headers.insert("x-should-retry", HeaderValue::from_static("false"));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
