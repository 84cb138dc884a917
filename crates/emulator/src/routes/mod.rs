//! The HTTP surface: every route of the emulator in one table.

mod admin;
mod agents;
mod environments;
mod session_events;
mod sessions;
mod skills;
mod work;

use crate::error::{new_request_id, ApiError};
use crate::faults::apply_request_faults;
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

/// Largest request body accepted: a `read` result at the 5 MiB image cap is ~5.3 MB
/// of JSON, and skill uploads carry archives; axum's 2 MB default rejects both.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let env = "/v1/environments/{environment_id}";
    let work = "/v1/environments/{environment_id}/work/{work_id}";
    Router::new()
        .route(
            "/v1/environments",
            post(environments::create).get(environments::list),
        )
        .route(
            env,
            get(environments::retrieve)
                .post(environments::update)
                .delete(environments::delete),
        )
        .route(&format!("{env}/archive"), post(environments::archive))
        .route(&format!("{env}/work"), get(work::list))
        .route(&format!("{env}/work/poll"), get(work::poll))
        .route(&format!("{env}/work/stats"), get(work::stats))
        .route(work, get(work::retrieve).post(work::update))
        .route(&format!("{work}/ack"), post(work::ack))
        .route(&format!("{work}/heartbeat"), post(work::heartbeat))
        .route(&format!("{work}/stop"), post(work::stop))
        .route("/v1/agents", post(agents::create).get(agents::list))
        .route("/v1/agents/{agent_id}", get(agents::retrieve))
        .route("/v1/sessions", post(sessions::create).get(sessions::list))
        .route(
            "/v1/sessions/{session_id}",
            get(sessions::retrieve)
                .post(sessions::update)
                .delete(sessions::delete),
        )
        .route("/v1/sessions/{session_id}/archive", post(sessions::archive))
        .route(
            "/v1/sessions/{session_id}/events",
            get(session_events::list).post(session_events::send),
        )
        .route(
            "/v1/sessions/{session_id}/events/stream",
            get(session_events::stream),
        )
        .route(
            "/v1/skills/{skill_id}/versions/{version}",
            get(skills::retrieve_version),
        )
        .route(
            "/v1/skills/{skill_id}/versions/{version}/content",
            get(skills::download),
        )
        .route(
            "/v1/emulator/environments/{environment_id}/keys",
            post(admin::mint_key),
        )
        .route(
            "/v1/emulator/environments/{environment_id}/work",
            post(admin::enqueue_work),
        )
        .route(
            "/v1/emulator/sessions",
            post(admin::create_scripted_session),
        )
        .route(
            "/v1/emulator/sessions/{session_id}/scenario",
            get(admin::scenario_state)
                .post(admin::attach_scenario)
                .put(admin::attach_scenario),
        )
        .route(
            "/v1/emulator/sessions/{session_id}/events",
            post(admin::append_events),
        )
        .route(
            "/v1/emulator/faults",
            post(admin::inject_faults).delete(admin::clear_faults),
        )
        .route("/v1/emulator/skills", post(skills::upload))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            apply_request_faults,
        ))
        .layer(middleware::from_fn(stamp_request_id))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found_error",
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        format!(
            "method {} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}

/// Every response carries a `request-id` header (§2.3); error responses
/// already set one matching their body.
async fn stamp_request_id(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await.into_response();
    if !response.headers().contains_key("request-id") {
        if let Ok(value) = HeaderValue::from_str(&new_request_id()) {
            response.headers_mut().insert("request-id", value);
        }
    }
    response
}
