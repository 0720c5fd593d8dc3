//! The OpenAI surface: `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use switchyard_policy::authorize_model;
use switchyard_protocols::{openai, sse};
use switchyard_providers::{ChatOutcome, EventStream, StreamItem};
use switchyard_router::{Execution, Plan, execute};
use switchyard_types::{GatewayError, JsonMap, Protocol, StreamEvent};

use super::{presented_key, read_body, routing_headers};
use crate::AppState;
use crate::error::SurfaceError;
use crate::runtime::Runtime;

/// A request that passed admission: the client's JSON, its IR, and the plan of attempts.
struct Admitted<R> {
    raw: JsonMap,
    req: R,
    plan: Plan,
}

/// The stages every OpenAI endpoint shares: authenticate, read and decode the body, check the
/// key may use the model, and plan the attempts.
async fn admit<R>(
    rt: &Runtime,
    headers: &HeaderMap,
    body: Body,
    decode: fn(&JsonMap) -> Result<R, GatewayError>,
    model: fn(&R) -> &str,
) -> Result<Admitted<R>, GatewayError> {
    let principal = rt.keys.authenticate(presented_key(headers))?;
    let bytes = read_body(body, headers, rt.max_body_bytes, rt.client_timeout).await?;
    let raw = openai::parse_object(&bytes)?;
    let req = decode(&raw)?;
    authorize_model(&principal, model(&req))?;
    let plan = rt.catalogue.plan(model(&req))?;
    Ok(Admitted { raw, req, plan })
}

/// Renders an execution's failure with the routing headers, so a client can see what was tried.
fn failure<T>(exec: &Execution<T>, error: GatewayError) -> Response {
    let mut resp = SurfaceError::openai(error).into_response();
    routing_headers(resp.headers_mut(), exec.answered.as_ref(), &exec.attempts);
    resp
}

pub async fn chat_completions(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let rt = state.runtime.load_full();
    let Admitted { raw, req, plan } =
        match admit(&rt, &headers, body, openai::decode_chat_request, |r| r.model.as_str()).await {
            Ok(v) => v,
            Err(e) => return SurfaceError::openai(e).into_response(),
        };
    let client = &state.client;
    let exec = execute(&plan, |step| {
        let (req, raw) = (&req, &raw);
        async move {
            let provider = &step.target.provider;
            let passthrough = (provider.protocol() == Protocol::OpenAi).then_some(raw);
            switchyard_providers::chat(client, provider, &step.target.model, req, passthrough, &step.route.timeouts)
                .await
        }
    })
    .await;
    if let Err(e) = &exec.result {
        return failure(&exec, e.clone());
    }
    let Execution { result, answered, attempts } = exec;
    let passthrough = answered.as_ref().is_some_and(|s| s.target.provider.protocol() == Protocol::OpenAi);
    let mut resp = match result {
        Ok(ChatOutcome::Complete { response, body }) => {
            let body = if passthrough { body } else { openai::encode_chat_response(&response) };
            axum::Json(body).into_response()
        }
        Ok(ChatOutcome::Stream(events)) => sse_response(events, passthrough, req.stream_usage),
        Err(e) => SurfaceError::openai(e).into_response(),
    };
    routing_headers(resp.headers_mut(), answered.as_ref(), &attempts);
    resp
}

fn sse_response(events: EventStream, passthrough: bool, include_usage: bool) -> Response {
    let mut relay =
        Relay { encoder: openai::ChunkEncoder::new(include_usage), passthrough, include_usage, ended: false };
    let frames = events
        .map(move |item| relay.frames(item))
        .chain(futures_util::stream::once(async { Vec::new() }))
        .flat_map(futures_util::stream::iter)
        .map(Ok::<Bytes, std::convert::Infallible>);
    let mut resp = Response::new(Body::from_stream(frames));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// Turns upstream stream items into the client's SSE frames.
struct Relay {
    encoder: openai::ChunkEncoder,
    /// The upstream speaks OpenAI too: forward its frames unchanged.
    passthrough: bool,
    include_usage: bool,
    /// `[DONE]` or an error was sent; nothing follows.
    ended: bool,
}

impl Relay {
    fn frames(&mut self, item: StreamItem) -> Vec<Bytes> {
        if self.ended {
            return Vec::new();
        }
        let failed = item.events.iter().any(|e| matches!(e, StreamEvent::Error(_)));
        let mut out = Vec::new();
        match item.raw {
            Some(raw) if self.passthrough => {
                if raw.trim() == "[DONE]" {
                    self.ended = true;
                    out.push(sse::encode(None, "[DONE]"));
                } else if self.include_usage || !is_usage_only(&item.events) {
                    out.push(sse::encode(None, &raw));
                }
            }
            _ => {
                for ev in &item.events {
                    if let Some(chunk) = self.encoder.encode(ev) {
                        out.push(sse::encode(None, &chunk.to_string()));
                    }
                }
            }
        }
        if failed {
            self.ended = true;
        }
        out
    }
}

/// The usage chunk the gateway asked for on its own behalf.
fn is_usage_only(events: &[StreamEvent]) -> bool {
    events.iter().any(|e| matches!(e, StreamEvent::Usage(_)))
        && events.iter().all(|e| matches!(e, StreamEvent::Usage(_) | StreamEvent::Start { .. }))
}

pub async fn embeddings(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let rt = state.runtime.load_full();
    let Admitted { raw, req, plan } =
        match admit(&rt, &headers, body, openai::decode_embedding_request, |r| r.model.as_str()).await {
            Ok(v) => v,
            Err(e) => return SurfaceError::openai(e).into_response(),
        };
    let client = &state.client;
    let exec = execute(&plan, |step| {
        let (req, raw) = (&req, &raw);
        async move {
            let provider = &step.target.provider;
            let passthrough = (provider.protocol() == Protocol::OpenAi).then_some(raw);
            switchyard_providers::embeddings(
                client,
                provider,
                &step.target.model,
                req,
                passthrough,
                &step.route.timeouts,
            )
            .await
        }
    })
    .await;
    let mut resp = match &exec.result {
        Ok((response, body)) => {
            let passthrough = exec.answered.as_ref().is_some_and(|s| s.target.provider.protocol() == Protocol::OpenAi);
            let body = if passthrough { body.clone() } else { openai::encode_embedding_response(response) };
            axum::Json(body).into_response()
        }
        Err(e) => return failure(&exec, e.clone()),
    };
    routing_headers(resp.headers_mut(), exec.answered.as_ref(), &exec.attempts);
    resp
}

/// The public model names this key may use.
pub async fn models(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let rt = state.runtime.load();
    let principal = match rt.keys.authenticate(presented_key(&headers)) {
        Ok(p) => p,
        Err(e) => return SurfaceError::openai(e).into_response(),
    };
    let entries = rt.catalogue.public_models().filter(|m| principal.models.allows(m)).map(|id| openai::ModelEntry {
        id,
        owned_by: "switchyard",
        created: 0,
    });
    axum::Json(openai::encode_model_list(entries)).into_response()
}
