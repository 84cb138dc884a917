//! The client's error type and the §2.3 error-envelope parsing and classification.

use serde_json::Value;
use std::fmt::Write as _;

/// Longest slice of a non-JSON error body kept in an error (keeps logs readable).
const MAX_RAW_BODY_CHARS: usize = 2000;

/// Everything a control-plane call can fail with.
///
/// Classification (§2.3): [`ApiError::is_fatal_4xx`] is true for HTTP 400–499 except
/// 408, 409 and 429; every other error except [`ApiError::Config`] is
/// [`ApiError::is_transient`]. `Config` is a programming/configuration error and is neither.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The client was built or called with unusable settings (empty credential, bad URL,
    /// header value with control characters, …). Retrying does not help.
    #[error("invalid API client configuration: {0}")]
    Config(String),
    /// No HTTP response: connection refused, DNS failure, TLS error, timeout, broken body.
    #[error("{}", transport_text(message, *timeout))]
    Transport { message: String, timeout: bool },
    /// The control plane answered with a non-success status.
    #[error("{}", status_text(*status, error_type, message, error_code, request_id))]
    Status {
        status: u16,
        /// `error.type` of the envelope, e.g. `not_found_error`.
        error_type: Option<String>,
        /// `error.message` of the envelope (or the start of a non-JSON body).
        message: Option<String>,
        /// `error.details.error_code`, e.g. `heartbeat_precondition_failed`.
        error_code: Option<String>,
        /// The full parsed body (`Value::String` for non-JSON bodies, `Null` when empty).
        body: Value,
        /// `request-id` response header, for support requests.
        request_id: Option<String>,
    },
    /// A success response whose body is not the JSON the protocol promises.
    #[error("the control plane sent a malformed response (HTTP {status}): {message}")]
    Decode { status: u16, message: String },
    /// The event stream delivered an `event: error` message (§2.5).
    #[error("the session event stream reported an error: {0}")]
    Stream(String),
}

impl ApiError {
    /// HTTP status of the failure, if the server answered (`Decode` included).
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } | ApiError::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// 400–499 except 408, 409, 429: retrying the same request cannot succeed (§2.3).
    pub fn is_fatal_4xx(&self) -> bool {
        match self {
            ApiError::Status { status, .. } => is_fatal_status(*status),
            _ => false,
        }
    }

    /// Worth retrying at the helper level: everything except fatal 4xx and `Config` (§2.3).
    pub fn is_transient(&self) -> bool {
        !matches!(self, ApiError::Config(_)) && !self.is_fatal_4xx()
    }

    /// `error.details.error_code` of a status error.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            ApiError::Status { error_code, .. } => error_code.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn transport(err: &reqwest::Error) -> ApiError {
        ApiError::Transport {
            message: describe_reqwest_error(err),
            timeout: err.is_timeout(),
        }
    }

    /// Builds a `Status` error from a non-success response, tolerating any body (§2.3).
    pub(crate) fn from_response(status: u16, request_id: Option<String>, raw: &[u8]) -> ApiError {
        let body = if raw.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice::<Value>(raw).unwrap_or_else(|_| {
                let text = String::from_utf8_lossy(raw);
                Value::String(text.chars().take(MAX_RAW_BODY_CHARS).collect())
            })
        };
        let error = body.get("error");
        let text_of = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let (error_type, message, error_code) = match &body {
            Value::String(raw_text) => (None, Some(raw_text.trim().to_owned()), None),
            _ => (
                text_of(error.and_then(|e| e.get("type"))),
                text_of(error.and_then(|e| e.get("message"))),
                text_of(error.and_then(|e| e.pointer("/details/error_code"))),
            ),
        };
        // The header is authoritative; fall back to the envelope's copy.
        let request_id = request_id.or_else(|| text_of(body.get("request_id")));
        ApiError::Status {
            status,
            error_type,
            message,
            error_code,
            body,
            request_id,
        }
    }
}

/// 400–499 except 408 (timeout), 409 (conflict) and 429 (rate limit).
pub(crate) fn is_fatal_status(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 408 | 409 | 429)
}

/// reqwest's Display stops at the outermost layer ("error sending request"); the cause
/// chain says what actually went wrong (connection refused, DNS, TLS…).
fn describe_reqwest_error(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

fn transport_text(message: &str, timeout: bool) -> String {
    if timeout {
        format!("the request to the control plane timed out ({message}); check the network and the base URL")
    } else {
        format!("could not reach the control plane ({message}); check the network and the base URL")
    }
}

fn status_text(
    status: u16,
    error_type: &Option<String>,
    message: &Option<String>,
    error_code: &Option<String>,
    request_id: &Option<String>,
) -> String {
    let mut text = format!("the control plane answered HTTP {status}");
    if let Some(kind) = error_type {
        let _ = write!(text, " {kind}");
    }
    if let Some(message) = message.as_deref().filter(|m| !m.is_empty()) {
        let _ = write!(text, ": {message}");
    }
    if let Some(code) = error_code {
        let _ = write!(text, " (error_code {code})");
    }
    let hint = match status {
        401 => Some("the credential was rejected; check the environment key or API key"),
        403 => Some("the credential is not allowed to make this call"),
        404 => Some("the resource does not exist or is not visible to this credential"),
        _ => None,
    };
    if let Some(hint) = hint {
        let _ = write!(text, "; {hint}");
    }
    if let Some(id) = request_id {
        let _ = write!(text, " [request-id {id}]");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status_error(status: u16) -> ApiError {
        ApiError::from_response(status, None, b"")
    }

    #[test]
    fn classification_follows_section_2_3() {
        for fatal in [400, 401, 403, 404, 412, 422, 499] {
            let err = status_error(fatal);
            assert!(err.is_fatal_4xx(), "{fatal} should be fatal");
            assert!(!err.is_transient(), "{fatal} should not be transient");
        }
        for transient in [408, 409, 429, 500, 502, 503, 529] {
            let err = status_error(transient);
            assert!(!err.is_fatal_4xx(), "{transient} should not be fatal");
            assert!(err.is_transient(), "{transient} should be transient");
        }
        let transport = ApiError::Transport {
            message: "refused".into(),
            timeout: false,
        };
        assert!(transport.is_transient() && !transport.is_fatal_4xx());
        assert!(ApiError::Stream("boom".into()).is_transient());
        let decode = ApiError::Decode {
            status: 200,
            message: "x".into(),
        };
        assert!(decode.is_transient());
        assert_eq!(decode.status(), Some(200));
        let config = ApiError::Config("empty".into());
        assert!(!config.is_transient() && !config.is_fatal_4xx());
        assert_eq!(config.status(), None);
    }

    #[test]
    fn parses_error_envelope() {
        let body = json!({
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": "expected_last_heartbeat does not match",
                "details": {"error_code": "heartbeat_precondition_failed"}
            },
            "request_id": "req_body"
        });
        let err = ApiError::from_response(412, None, body.to_string().as_bytes());
        let ApiError::Status {
            status,
            error_type,
            message,
            error_code,
            request_id,
            body: parsed,
        } = &err
        else {
            panic!("expected a status error, got {err:?}");
        };
        assert_eq!(*status, 412);
        assert_eq!(error_type.as_deref(), Some("invalid_request_error"));
        assert_eq!(
            message.as_deref(),
            Some("expected_last_heartbeat does not match")
        );
        assert_eq!(error_code.as_deref(), Some("heartbeat_precondition_failed"));
        assert_eq!(request_id.as_deref(), Some("req_body"));
        assert_eq!(parsed, &body);
        assert_eq!(err.error_code(), Some("heartbeat_precondition_failed"));
        let text = err.to_string();
        assert!(text.contains("HTTP 412") && text.contains("heartbeat_precondition_failed"));
    }

    #[test]
    fn header_request_id_wins_and_non_json_bodies_are_kept() {
        let err = ApiError::from_response(502, Some("req_hdr".into()), b"<html>Bad gateway</html>");
        let ApiError::Status {
            message,
            request_id,
            body,
            error_type,
            ..
        } = &err
        else {
            panic!("expected a status error");
        };
        assert_eq!(request_id.as_deref(), Some("req_hdr"));
        assert_eq!(message.as_deref(), Some("<html>Bad gateway</html>"));
        assert_eq!(body, &Value::String("<html>Bad gateway</html>".into()));
        assert!(error_type.is_none());
        assert!(err.to_string().contains("[request-id req_hdr]"));
    }

    #[test]
    fn json_body_without_envelope_is_tolerated() {
        let err = ApiError::from_response(500, None, b"[1,2]");
        assert_eq!(err.status(), Some(500));
        assert!(err.error_code().is_none());
        assert_eq!(status_error(404).to_string(), "the control plane answered HTTP 404; the resource does not exist or is not visible to this credential");
    }
}
