//! The admin API's routing part: each target's health, latency and load, and draining.

use std::sync::atomic::Ordering;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchyard_policy::authorize_admin;
use switchyard_router::{ModelRoute, Target};
use switchyard_types::{ErrorKind, GatewayError};

use crate::AppState;
use crate::error::SurfaceError;

/// Whether an admin call changes anything (which a read-only admin key may not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Change,
}

/// The admin key that calls, or why it may not.
pub fn admin(
    state: &AppState,
    headers: &HeaderMap,
    access: Access,
) -> Result<switchyard_policy::Principal, GatewayError> {
    let rt = state.runtime.load();
    let principal = super::authenticate(state, &rt, headers)?;
    authorize_admin(&principal, access == Access::Change)?;
    Ok(principal)
}

/// `GET /admin/targets`: every model's targets with breaker state, latency and load.
pub async fn targets(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = admin(&state, &headers, Access::Read) {
        return SurfaceError::openai(e).into_response();
    }
    let rt = state.runtime.load();
    let models: Vec<Value> = rt.catalogue.routes().map(|r| route_json(r)).collect();
    axum::Json(json!({ "models": models })).into_response()
}

/// `POST /admin/models/{model}/targets/{index}/drain` and `…/undrain`: take a target out of
/// rotation (requests in flight finish) or put it back.
pub async fn drain(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((model, index, action)): Path<(String, usize, String)>,
) -> Response {
    if let Err(e) = admin(&state, &headers, Access::Change) {
        return SurfaceError::openai(e).into_response();
    }
    let drained = match action.as_str() {
        "drain" => true,
        "undrain" => false,
        _ => return super::ops::not_found().await,
    };
    let rt = state.runtime.load();
    let Some(target) = rt.catalogue.route(&model).and_then(|r| r.targets.get(index)) else {
        let e = GatewayError::new(ErrorKind::NotFound, format!("Model `{model}` has no target #{index}."));
        return SurfaceError::openai(e).into_response();
    };
    target.drained.store(drained, Ordering::Relaxed);
    tracing::info!(model = %model, target = %target.label(), "target {}", if drained { "drained" } else { "undrained" });
    axum::Json(target_json(index, target)).into_response()
}

fn route_json(r: &ModelRoute) -> Value {
    let targets: Vec<Value> = r.targets.iter().enumerate().map(|(i, t)| target_json(i, t)).collect();
    json!({ "name": r.name, "strategy": format!("{:?}", r.strategy).to_lowercase(), "targets": targets })
}

fn target_json(index: usize, t: &Target) -> Value {
    let health = t.health.report();
    let ms = |d: Option<std::time::Duration>| d.map(|d| (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0);
    json!({
        "index": index,
        "provider": t.provider.name,
        "model": t.model,
        "tier": t.tier,
        "weight": t.weight,
        "drained": t.is_drained(),
        "breaker": health.state.as_str(),
        "consecutive_failures": health.consecutive_failures,
        "ejections": health.ejections,
        "retry_in_ms": ms(health.retry_in),
        "ewma_ttft_ms": ms(t.stats.ewma_ttft()),
        "p95_ttft_ms": ms(t.stats.p95_ttft()),
        "in_flight": t.stats.in_flight(),
        "requests": t.stats.requests.load(Ordering::Relaxed),
        "failures": t.stats.failures.load(Ordering::Relaxed),
    })
}

/// The admin API's OpenAPI document. It describes, and holds no secret, so it needs no key.
const OPENAPI: &str = include_str!("openapi.json");

/// `GET /admin/openapi.json`.
pub async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every admin route the app serves is in the document, with its methods: adding a route
    /// without describing it fails here.
    #[test]
    fn the_openapi_document_covers_every_admin_route() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap_or_else(|e| panic!("openapi.json: {e}"));
        assert_eq!(doc["openapi"], "3.1.0");
        // One `.route(…)` call per piece, however rustfmt wrapped it.
        let app: String = include_str!("../lib.rs").split_whitespace().collect();
        let mut checked = 0;
        for line in app.split(".route(").skip(1).filter(|l| l.starts_with("\"/admin/")) {
            let line = line.split(".route(").next().unwrap_or_default();
            let path = line.split('"').nth(1).unwrap_or_default();
            if path == "/admin/openapi.json" {
                continue;
            }
            let ops = &doc["paths"][path];
            assert!(ops.is_object(), "{path} is not in openapi.json");
            for (method, call) in [("get", "get("), ("post", "post("), ("patch", "patch("), ("delete", "delete(")] {
                let served = line.contains(&format!(",{call}")) || line.contains(&format!(".{call}"));
                assert_eq!(
                    served,
                    ops[method].is_object(),
                    "{path} {method}: served {served}, documented {}",
                    ops[method].is_object()
                );
            }
            checked += 1;
        }
        assert!(checked >= 9, "found only {checked} admin routes in lib.rs");
    }
}
