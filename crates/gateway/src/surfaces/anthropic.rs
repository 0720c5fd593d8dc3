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
                tokio::task::spawn_blocking(move || tokens::openai(&model, &req))
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

/// Exact counts with OpenAI's tokenizers.
mod tokens {
    use switchyard_types::{ChatRequest, ContentPart};
    use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

    /// A chat request's prompt tokens the way OpenAI counts them: each message's text plus 4
    /// tokens of framing (role and separators), 3 more to prime the answer, the tools' names,
    /// descriptions and schemas; images at 765 (a high-detail 512×512 tile's worth; the real
    /// count depends on the image's size).
    pub fn openai(model: &str, req: &ChatRequest) -> u64 {
        let bpe = match get_tokenizer(model) {
            Some(Tokenizer::Cl100kBase) => tiktoken_rs::cl100k_base_singleton(),
            _ => tiktoken_rs::o200k_base_singleton(),
        };
        let count = |text: &str| bpe.encode_ordinary(text).len() as u64;
        let parts = |content: &[ContentPart]| -> u64 {
            content
                .iter()
                .map(|p| match p {
                    ContentPart::Text(t) => count(&t.text),
                    ContentPart::Image(_) => 765,
                    _ => 1000,
                })
                .sum()
        };
        let system: u64 = req.system.iter().map(|s| 4 + parts(&s.content)).sum();
        let messages: u64 = req
            .messages
            .iter()
            .map(|m| {
                4 + parts(&m.content) + m.tool_calls.iter().map(|c| count(&c.name) + count(&c.arguments)).sum::<u64>()
            })
            .sum();
        let tools: u64 = req
            .tools
            .iter()
            .map(|t| {
                let schema = t.parameters.as_ref().map(ToString::to_string).unwrap_or_default();
                8 + count(&t.name) + t.description.as_deref().map_or(0, count) + count(&schema)
            })
            .sum();
        system + messages + tools + 3
    }

    #[cfg(test)]
    mod tests {
        use switchyard_types::{Message, Role};

        use super::*;

        #[test]
        fn counts_with_the_models_own_tokenizer() {
            let req = ChatRequest {
                messages: vec![Message::new(Role::User, vec![ContentPart::text("Hello, world!")])],
                ..ChatRequest::default()
            };
            // o200k: "Hello" "," " world" "!"; framing 4, priming 3.
            assert_eq!(openai("gpt-4o", &req), 11);
            let long = ChatRequest {
                messages: vec![Message::new(Role::User, vec![ContentPart::text("word ".repeat(1000).trim_end())])],
                ..ChatRequest::default()
            };
            assert_eq!(openai("gpt-4o", &long), 1000 + 7);
        }
    }
}
