//! The Anthropic surface: `POST /v1/messages` and `POST /v1/messages/count_tokens`, so the
//! Anthropic SDK and tools built on it can use any configured model, whatever protocol serves it.

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchyard_policy::authorize_model;
use switchyard_protocols::{anthropic, openai};
use switchyard_types::{ChatRequest, GatewayError, JsonMap, Protocol};

use super::{authenticate, read_body};
use crate::error::SurfaceError;
use crate::{AppState, RequestId};

fn decode(body: &JsonMap) -> Result<ChatRequest, GatewayError> {
    anthropic::decode_messages_request(body, true)
}

pub async fn messages(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    super::openai::chat(Protocol::Anthropic, state, id, headers, body, decode).await
}

/// Counts a request's input tokens without running it: the same estimate the gateway uses for
/// limits, budgets and context windows (see docs/translation.md for how it is made).
pub async fn count_tokens(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let rt = state.runtime.load_full();
    let counted = async {
        let principal = authenticate(&state, &rt, &headers)?;
        let bytes = read_body(body, &headers, rt.max_body_bytes, rt.client_timeout).await?;
        let raw = openai::parse_object(&bytes)?;
        let req = anthropic::decode_messages_request(&raw, false)?;
        authorize_model(&principal, &req.model)?;
        if !rt.catalogue.contains(&req.model) && !req.model.contains('/') {
            return Err(GatewayError::new(switchyard_types::ErrorKind::NotFound, format!("model: {}", req.model))
                .with_code("model_not_found"));
        }
        Ok::<u64, GatewayError>(req.estimated_input_tokens())
    }
    .await;
    match counted {
        Ok(n) => axum::Json(json!({"input_tokens": n})).into_response(),
        Err(e) => SurfaceError::new(Protocol::Anthropic, e).into_response(),
    }
}
