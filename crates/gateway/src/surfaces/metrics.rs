//! `GET /metrics`: the Prometheus exposition.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use switchyard_router::BreakerState;
use switchyard_telemetry::TargetLabels;

use crate::AppState;

pub async fn metrics(State(state): State<AppState>) -> Response {
    let rt = state.runtime.load();
    // Per-target gauges are read from the running config at scrape time, so they are exact and
    // targets removed by a reload disappear.
    let targets = rt.catalogue.routes().flat_map(|route| {
        route.targets.iter().map(|t| {
            let labels = TargetLabels {
                gen_ai_request_model: route.name.clone(),
                gen_ai_provider_name: t.provider.name.clone(),
                gen_ai_response_model: t.model.clone(),
            };
            let breaker = match t.health.state() {
                BreakerState::Closed => 0,
                BreakerState::HalfOpen => 1,
                BreakerState::Open => 2,
            };
            (labels, breaker, t.stats.in_flight() as i64)
        })
    });
    let mut resp = state.metrics.scrape(targets).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(switchyard_telemetry::CONTENT_TYPE));
    resp
}
