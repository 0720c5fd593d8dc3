//! `GET /admin/budgets`: every budget a key counts against, with what it has spent in its
//! current period, what requests in flight hold, and when it resets.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchyard_policy::usd;
use switchyard_store::time::{format_us, now_us};

use super::admin::{Access, admin};
use crate::AppState;
use crate::error::SurfaceError;

pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = admin(&state, &headers, Access::Read) {
        return SurfaceError::openai(e).into_response();
    }
    let mut data = Vec::new();
    for scope in crate::budgets::scopes(&state) {
        let (spent, reserved) = match &state.shared_budgets {
            Some(shared) => shared.spent(&scope).await,
            None => state.budgets.spent(&scope, now_us()),
        };
        let b = &scope.budget;
        let w = b.period.window(now_us());
        data.push(json!({
            "owner": scope.owner.as_str(),
            "name": scope.name,
            "budget_usd": usd(b.max),
            "period": b.period.name(),
            "spent_usd": usd(spent),
            "reserved_usd": usd(reserved),
            "remaining_usd": usd((b.max - spent - reserved).max(0)),
            "period_start": (w.from_us > 0).then(|| format_us(w.from_us)),
            "resets_at": w.resets_at_us.map(format_us),
            "alerts": b.alerts,
            "books": if state.shared_budgets.as_ref().is_some_and(|s| !s.degraded()) { "shared" } else { "local" },
        }));
    }
    axum::Json(json!({ "data": Value::Array(data) })).into_response()
}
