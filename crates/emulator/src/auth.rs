//! Credential resolution and scope checks (§1.2, §1.3).
//!
//! Three kinds of caller: the admin key (plays the operator's Claude API key),
//! environment keys (one environment's queue and its sessions), and sessions
//! tokens minted into each poll's `secret` (one session and one work item).
//! Unknown credentials get 401, known ones outside their scope get 403.

use crate::error::ApiError;
use crate::state::{AppState, SessionsTokenScope, Store};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

#[derive(Debug, Clone)]
pub enum Principal {
    Admin,
    Environment(String),
    SessionsToken(SessionsTokenScope),
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

fn credential(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get("authorization") {
        let value = value.to_str().ok()?.trim();
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))?;
        return Some(token.trim().to_string());
    }
    parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = credential(parts).filter(|t| !t.is_empty()) else {
            return Err(ApiError::unauthorized(
                "missing credentials: send `Authorization: Bearer <key>` or `X-Api-Key: <key>`",
            ));
        };
        if token == state.config.admin_key {
            return Ok(Caller(Principal::Admin));
        }
        let store = state.store();
        if let Some(env) = store.environment_keys.get(&token) {
            return Ok(Caller(Principal::Environment(env.clone())));
        }
        if let Some(scope) = store.sessions_tokens.get(&token) {
            return Ok(Caller(Principal::SessionsToken(scope.clone())));
        }
        Err(ApiError::unauthorized("invalid x-api-key or bearer token"))
    }
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        matches!(self.0, Principal::Admin)
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "this endpoint requires the API key (admin key); environment keys and sessions tokens are not accepted",
            ))
        }
    }

    /// Poll / ack / list: the environment key of exactly this environment.
    pub fn require_environment_key(&self, environment_id: &str) -> Result<(), ApiError> {
        match &self.0 {
            Principal::Environment(env) if env == environment_id => Ok(()),
            Principal::Environment(_) => Err(ApiError::forbidden(format!(
                "this environment key is not valid for environment {environment_id}"
            ))),
            _ => Err(ApiError::forbidden(
                "this endpoint requires the environment key of the environment (Bearer)",
            )),
        }
    }

    /// Stats: the API key or this environment's key.
    pub fn require_operator_or_environment(&self, environment_id: &str) -> Result<(), ApiError> {
        if self.is_admin() {
            return Ok(());
        }
        self.require_environment_key(environment_id)
    }

    /// Heartbeat / stop of one item: this environment's key, the item's
    /// sessions token, or (stop only) the API key.
    pub fn require_work_access(
        &self,
        environment_id: &str,
        work_id: &str,
        allow_admin: bool,
    ) -> Result<(), ApiError> {
        match &self.0 {
            Principal::Admin if allow_admin => Ok(()),
            Principal::SessionsToken(scope) if scope.work_id == work_id => Ok(()),
            Principal::SessionsToken(_) => Err(ApiError::forbidden(
                "this sessions token is not valid for this work item",
            )),
            _ => self.require_environment_key(environment_id),
        }
    }

    /// Session, events and stream calls: the API key, the key of the
    /// session's environment, or that session's token.
    pub fn require_session_access(&self, store: &Store, session_id: &str) -> Result<(), ApiError> {
        let session = store
            .sessions
            .get(session_id)
            .ok_or_else(|| ApiError::not_found("session", session_id))?;
        match &self.0 {
            Principal::Admin => Ok(()),
            Principal::Environment(env) if *env == session.environment_id => Ok(()),
            Principal::SessionsToken(scope) if scope.session_id == session_id => Ok(()),
            _ => Err(ApiError::forbidden(format!(
                "this credential is not valid for session {session_id}"
            ))),
        }
    }

    /// Skills: the API key, or a credential whose session(s) use the skill.
    pub fn require_skill_access(&self, store: &Store, skill_id: &str) -> Result<(), ApiError> {
        let uses_skill = |agent: &serde_json::Value| {
            agent["skills"]
                .as_array()
                .is_some_and(|skills| skills.iter().any(|s| s["skill_id"] == skill_id))
        };
        let allowed = match &self.0 {
            Principal::Admin => true,
            Principal::Environment(env) => store
                .sessions
                .values()
                .any(|s| s.environment_id == *env && uses_skill(&s.agent)),
            Principal::SessionsToken(scope) => store
                .sessions
                .get(&scope.session_id)
                .is_some_and(|s| uses_skill(&s.agent)),
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this credential is not valid for skill {skill_id}: no session it serves uses that skill"
            )))
        }
    }
}
