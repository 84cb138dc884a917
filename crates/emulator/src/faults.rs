//! Fault injection for the worker's integration tests.
//!
//! Faults are armed in-process with [`crate::Emulator::inject_faults`] or over
//! HTTP (`POST /v1/emulator/faults`, same JSON). Request faults match
//! `method` (optional) + `path_prefix` and are consumed one per matching
//! request; `/v1/emulator/*` paths are never affected so tests can always
//! reach the admin endpoints.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::Duration;

/// Make the next `count` matching requests fail with `status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FailRule {
    #[serde(default)]
    pub method: Option<String>,
    pub path_prefix: String,
    pub status: u16,
    #[serde(default = "one")]
    pub count: u32,
}

/// Hold the next `count` matching requests for `delay_ms` before serving them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DelayRule {
    #[serde(default)]
    pub method: Option<String>,
    pub path_prefix: String,
    pub delay_ms: u64,
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// A batch of faults to arm; every field is optional and additive.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    #[serde(default)]
    pub fail: Vec<FailRule>,
    #[serde(default)]
    pub delay: Vec<DelayRule>,
    /// End every open SSE stream now.
    #[serde(default)]
    pub drop_streams_now: bool,
    /// From now on, end each SSE stream after it has sent this many events
    /// (pings not counted). `0` switches the fault off.
    #[serde(default)]
    pub drop_streams_after_events: Option<u64>,
    /// Work ids whose lease expires now (re-queued; stale heartbeats get 412).
    #[serde(default)]
    pub expire_leases: Vec<String>,
    /// Work ids whose heartbeats are answered with 412 until faults are cleared.
    #[serde(default)]
    pub reject_heartbeats: Vec<String>,
}

/// Armed faults.
#[derive(Debug, Default)]
pub struct FaultState {
    pub fail: Vec<FailRule>,
    pub delay: Vec<DelayRule>,
    pub drop_streams_after_events: Option<u64>,
    pub reject_heartbeats: HashSet<String>,
}

impl FaultState {
    pub fn clear(&mut self) {
        *self = FaultState::default();
    }

    /// Arms the request/stream faults of `faults` (leases are handled by the caller).
    pub fn arm(&mut self, faults: &Faults) {
        self.fail.extend(faults.fail.iter().cloned());
        self.delay.extend(faults.delay.iter().cloned());
        match faults.drop_streams_after_events {
            Some(0) => self.drop_streams_after_events = None,
            Some(n) => self.drop_streams_after_events = Some(n),
            None => {}
        }
        self.reject_heartbeats
            .extend(faults.reject_heartbeats.iter().cloned());
    }

    /// Consumes one matching fail rule, returning its status.
    pub fn take_failure(&mut self, method: &str, path: &str) -> Option<u16> {
        let index = self
            .fail
            .iter()
            .position(|r| matches(r.method.as_deref(), &r.path_prefix, method, path))?;
        let rule = &mut self.fail[index];
        let status = rule.status;
        rule.count = rule.count.saturating_sub(1);
        if rule.count == 0 {
            self.fail.remove(index);
        }
        Some(status)
    }

    /// Consumes one matching delay rule, returning its delay.
    pub fn take_delay(&mut self, method: &str, path: &str) -> Option<Duration> {
        let index = self
            .delay
            .iter()
            .position(|r| matches(r.method.as_deref(), &r.path_prefix, method, path))?;
        let rule = &mut self.delay[index];
        let delay = Duration::from_millis(rule.delay_ms);
        rule.count = rule.count.saturating_sub(1);
        if rule.count == 0 {
            self.delay.remove(index);
        }
        Some(delay)
    }
}

fn matches(rule_method: Option<&str>, prefix: &str, method: &str, path: &str) -> bool {
    rule_method.is_none_or(|m| m.eq_ignore_ascii_case(method)) && path.starts_with(prefix)
}

/// Middleware applying delay and fail rules before routing.
pub async fn apply_request_faults(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    if path.starts_with("/v1/emulator/") {
        return next.run(request).await;
    }
    let method = request.method().as_str().to_string();
    let (delay, failure) = {
        let mut faults = state.faults();
        (
            faults.take_delay(&method, &path),
            faults.take_failure(&method, &path),
        )
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return ApiError::injected(status).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_rules_are_consumed_per_match() {
        let mut state = FaultState::default();
        state.arm(&Faults {
            fail: vec![FailRule {
                method: Some("GET".into()),
                path_prefix: "/v1/environments/".into(),
                status: 503,
                count: 2,
            }],
            ..Faults::default()
        });
        assert_eq!(
            state.take_failure("POST", "/v1/environments/e/work/w/ack"),
            None
        );
        assert_eq!(
            state.take_failure("get", "/v1/environments/e/work/poll"),
            Some(503)
        );
        assert_eq!(
            state.take_failure("GET", "/v1/environments/e/work/poll"),
            Some(503)
        );
        assert_eq!(
            state.take_failure("GET", "/v1/environments/e/work/poll"),
            None
        );
    }

    #[test]
    fn zero_switches_stream_drops_off() {
        let mut state = FaultState::default();
        state.arm(&Faults {
            drop_streams_after_events: Some(3),
            ..Faults::default()
        });
        assert_eq!(state.drop_streams_after_events, Some(3));
        state.arm(&Faults {
            drop_streams_after_events: Some(0),
            ..Faults::default()
        });
        assert_eq!(state.drop_streams_after_events, None);
    }

    #[test]
    fn unknown_fault_fields_are_rejected() {
        let err = serde_json::from_str::<Faults>(r#"{"fial": []}"#).unwrap_err();
        assert!(err.to_string().contains("fial"));
    }
}
