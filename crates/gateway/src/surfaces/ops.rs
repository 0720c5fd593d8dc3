//! Operations endpoints: liveness, readiness, and the answer for unknown paths.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchyard_types::{ErrorKind, GatewayError};

use crate::AppState;
use crate::error::SurfaceError;

pub async fn live() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Ready once a config is loaded. A failed reload does not make the gateway unready (the last good
/// config keeps serving) but is shown, so an operator can see why a change did not take. Nor
/// does a Redis outage: the gateway serves on with per-instance limits (or refuses limited
/// requests, if so configured), and says `degraded`.
pub async fn ready(State(state): State<AppState>) -> Response {
    let rt = state.runtime.load();
    let reload_error = state.reload_error.load().as_ref().as_ref().map(|e| e.to_string());
    let limits = match &state.shared_limits {
        None => "local",
        Some(s) if s.degraded() => "redis-unreachable",
        Some(_) => "shared",
    };
    let body = json!({
        "status": if limits == "redis-unreachable" { "degraded" } else { "ready" },
        "config": {"source": rt.source, "models": rt.catalogue.public_models().count(), "last_reload_error": reload_error},
        "limits": limits,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

pub async fn not_found() -> Response {
    SurfaceError::openai(GatewayError::new(ErrorKind::NotFound, "Unknown path.").with_code("unknown_url"))
        .into_response()
}
