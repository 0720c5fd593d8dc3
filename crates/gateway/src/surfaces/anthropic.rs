//! The Anthropic surface: `POST /v1/messages` and `POST /v1/messages/count_tokens`, so the
//! Anthropic SDK and tools built on it can use any configured model, whatever protocol serves it.

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchyard_policy::authorize_model;
use switchyard_protocols::{anthropic, openai};
use switchyard_providers::ProviderType;
use switchyard_router::{Caller, Demand};
use switchyard_types::{ChatRequest, ErrorKind, GatewayError, JsonMap, Protocol};

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

/// Counts a request's input tokens without running it, as exactly as the model's provider
/// allows: an Anthropic provider counts them itself; OpenAI's models are counted with their own
/// tokenizer; anything else gets the gateway's estimate (docs/translation.md says how).
pub async fn count_tokens(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let rt = state.runtime.load_full();
    let counted = async {
        let principal = authenticate(&state, &rt, &headers)?;
        let bytes = read_body(body, &headers, rt.max_body_bytes, rt.client_timeout).await?;
        let raw = openai::parse_object(&bytes)?;
        let req = anthropic::decode_messages_request(&raw, false)?;
        authorize_model(&principal, &req.model)?;
        let caller = Caller { key: &principal.name, user: None, session: None, headers: &headers };
        let plan = rt.catalogue.plan(&req.model, &[], Demand::default(), &caller)?;
        let Some((route, target)) =
            plan.legs.first().and_then(|l| Some((l.route.clone(), l.route.targets.first()?.clone())))
        else {
            return Ok(req.estimated_input_tokens());
        };
        match target.provider.kind {
            ProviderType::Anthropic => {
                switchyard_providers::count_tokens(
                    &state.client,
                    &target.provider,
                    &target.model,
                    &raw,
                    &route.timeouts,
                )
                .await
            }
            ProviderType::Openai | ProviderType::AzureOpenai => {
                let model = target.model.clone();
                // Tokenizing is CPU work in proportion to the prompt: off the async threads.
                tokio::task::spawn_blocking(move || crate::tokens::openai(&model, &req))
                    .await
                    .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("counting tokens failed: {e}")))
            }
            _ => Ok(req.estimated_input_tokens()),
        }
    }
    .await;
    match counted {
        Ok(n) => axum::Json(json!({"input_tokens": n})).into_response(),
        Err(e) => SurfaceError::new(Protocol::Anthropic, e).into_response(),
    }
}
