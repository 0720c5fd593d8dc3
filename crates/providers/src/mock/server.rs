//! The mock's HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use switchyard_protocols::{anthropic, bedrock, gemini, openai, sse};

use crate::aws::eventstream::HeaderValue as EventHeader;
use switchyard_types::Protocol;

use super::answer::{self, Answer};
use super::faults::Faults;

/// Counters a test can read at `GET /mock/stats`.
#[derive(Default)]
pub struct MockStats {
    pub requests: AtomicU64,
    /// Streams whose body is still being sent; drops to zero when clients go away.
    pub open_streams: AtomicU64,
    pub streams_started: AtomicU64,
    last_request: Mutex<Value>,
    /// Requests seen per bearer key.
    keys: Mutex<std::collections::BTreeMap<String, u64>>,
}

impl MockStats {
    fn snapshot(&self) -> Value {
        let last = self.last_request.lock().map(|v| v.clone()).unwrap_or(Value::Null);
        let keys = self.keys.lock().map(|k| json!(*k)).unwrap_or(Value::Null);
        json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "open_streams": self.open_streams.load(Ordering::Relaxed),
            "streams_started": self.streams_started.load(Ordering::Relaxed),
            "last_request": last,
            "keys": keys,
        })
    }
}

#[derive(Clone)]
struct Mock {
    faults: Faults,
    stats: Arc<MockStats>,
}

/// The mock's routes. The Azure deployment paths are served too, so Azure URLs and the `api-key`
/// header can be tested.
pub fn router(faults: Faults) -> (Router, Arc<MockStats>) {
    let stats = Arc::new(MockStats::default());
    let state = Mock { faults, stats: stats.clone() };
    let router = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/openai/deployments/{deployment}/chat/completions", post(chat))
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1beta/models/{target}", post(gemini_call))
        .route("/model/{model}/converse", post(converse))
        .route("/model/{model}/converse-stream", post(converse_stream))
        .route("/v1/embeddings", post(embeddings))
        .route("/openai/deployments/{deployment}/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/openai/models", get(models))
        .route("/mock/stats", get(stats_handler))
        .with_state(state);
    (router, stats)
}

/// Binds `listen`, prints the address (tests read this line to find an ephemeral port), serves.
pub async fn serve(listen: SocketAddr, faults: Faults) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    println!("switchyard mock listening on http://{addr}");
    let (app, _) = router(faults);
    axum::serve(listener, app).await
}

async fn stats_handler(State(mock): State<Mock>) -> Response {
    axum::Json(mock.stats.snapshot()).into_response()
}

async fn models(State(mock): State<Mock>, headers: HeaderMap) -> Response {
    let faults = mock.faults.overridden(&headers, None);
    if let Some(status) = faults.status {
        return error_response(status, faults.retry_after, faults.error_code.as_deref());
    }
    axum::Json(openai::encode_model_list([openai::ModelEntry {
        id: "mock-model",
        owned_by: "switchyard-mock",
        created: 0,
    }]))
    .into_response()
}

/// Reads the body, records the request, and applies the faults that come before any answer.
async fn intake(mock: &Mock, req: Request, protocol: Protocol) -> Result<(Faults, Value), Response> {
    let n = mock.stats.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024).await.unwrap_or_default();
    let value: Option<Value> = serde_json::from_slice(&bytes).ok();
    let faults = mock.faults.overridden(&parts.headers, value.as_ref());
    let header_key = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let bearer = header_key(header::AUTHORIZATION.as_str())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| header_key("x-api-key"))
        .or_else(|| header_key("x-goog-api-key"))
        .map(str::to_string);
    if let (Some(key), Ok(mut keys)) = (&bearer, mock.stats.keys.lock()) {
        *keys.entry(key.clone()).or_insert(0) += 1;
    }
    if let Ok(mut last) = mock.stats.last_request.lock() {
        *last = json!({
            "path": parts.uri.path(),
            "query": parts.uri.query(),
            "headers": headers_json(&parts.headers),
            "body": value.clone().unwrap_or(Value::Null),
        });
    }
    let slow = every(n, faults.tail_rate);
    let delay = faults.latency + if slow { faults.tail } else { Duration::ZERO };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let refuse = |status, retry_after, code| match protocol {
        Protocol::Anthropic => anthropic_error(status, retry_after),
        Protocol::Gemini => gemini_error(status),
        Protocol::Bedrock => bedrock_error(status),
        _ => error_response(status, retry_after, code),
    };
    if faults.deny_key.is_some() && bearer == faults.deny_key {
        // Google refuses a bad key with a 400 that names the reason; everyone else with a 401.
        if protocol == Protocol::Gemini {
            let body = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}});
            return Err((StatusCode::BAD_REQUEST, axum::Json(body)).into_response());
        }
        return Err(refuse(401, None, Some("invalid_api_key")));
    }
    let rate_fault = every(n, faults.error_rate);
    let status = faults.status.filter(|_| faults.fail_first.is_none_or(|first| n < first));
    if let Some(status) = status.or(rate_fault.then_some(500)) {
        return Err(refuse(status, faults.retry_after, faults.error_code.as_deref()));
    }
    match value {
        Some(v) => Ok((faults, v)),
        None => Err(refuse(400, None, None)),
    }
}

/// Whether request `n` is one of a `rate` fraction spread evenly over the sequence (repeatable,
/// unlike a random draw).
fn every(n: u64, rate: f64) -> bool {
    rate > 0.0 && ((n + 1) as f64 * rate).floor() > (n as f64 * rate).floor()
}

fn headers_json(headers: &HeaderMap) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in headers {
        m.insert(k.as_str().to_string(), Value::String(v.to_str().unwrap_or("<binary>").to_string()));
    }
    Value::Object(m)
}

fn error_response(status: u16, retry_after: Option<u64>, code: Option<&str>) -> Response {
    let (kind, code_for_status) = match status {
        400 => ("invalid_request_error", "mock_bad_request"),
        401 => ("invalid_request_error", "invalid_api_key"),
        403 => ("permission_error", "mock_forbidden"),
        404 => ("invalid_request_error", "model_not_found"),
        429 => ("requests", "rate_limit_exceeded"),
        _ => ("server_error", "mock_fault"),
    };
    let code = code.unwrap_or(code_for_status);
    let body = json!({"error": {"message": format!("mock fault: status {status}"), "type": kind, "param": null, "code": code}});
    let mut resp =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(body)).into_response();
    if let Some(secs) = retry_after
        && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// A fault in Anthropic's shape, with the type Anthropic gives each status.
fn anthropic_error(status: u16, retry_after: Option<u64>) -> Response {
    let e = switchyard_types::GatewayError::upstream(status, format!("mock fault: status {status}"));
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(anthropic::encode_error(&e)),
    )
        .into_response();
    if let Some(secs) = retry_after
        && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

async fn chat(State(mock): State<Mock>, req: Request) -> Response {
    let (faults, body) = match intake(&mock, req, Protocol::OpenAi).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let ir = match body.as_object().map(openai::decode_chat_request) {
        Some(Ok(ir)) => ir,
        Some(Err(e)) => return (StatusCode::BAD_REQUEST, axum::Json(openai::encode_error(&e))).into_response(),
        None => return error_response(400, None, None),
    };
    let plan = answer::plan(&ir, faults.words);
    let id = format!("chatcmpl-mock{:012x}", answer::fnv(body.to_string().as_bytes()) & 0xffff_ffff_ffff);
    if faults.malformed.as_deref() == Some("json") && !ir.stream {
        return ([(header::CONTENT_TYPE, "application/json")], "{\"id\": \"broken").into_response();
    }
    if !ir.stream {
        return axum::Json(complete_body(&id, &ir.model, &plan)).into_response();
    }
    let frames = stream_frames(&id, &ir.model, &plan, &faults, ir.stream_usage);
    mock.stats.streams_started.fetch_add(1, Ordering::Relaxed);
    let body = paced_body(frames, &faults, mock.stats.clone());
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn complete_body(id: &str, model: &str, plan: &Answer) -> Value {
    let calls: Vec<Value> = plan
        .tool_calls
        .iter()
        .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
        .collect();
    let content = if calls.is_empty() { Value::String(plan.words.concat()) } else { Value::Null };
    let mut message = json!({"role": "assistant", "content": content, "refusal": null});
    if let Some(t) = &plan.thinking {
        // DeepSeek's and vLLM's field for reasoning text; OpenAI's chat format has none.
        message["reasoning_content"] = t.text.clone().into();
    }
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": id,
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": plan.finish_reason}],
        "usage": usage_json(plan),
        "system_fingerprint": "fp_mock",
    })
}

fn usage_json(plan: &Answer) -> Value {
    let u = &plan.usage;
    json!({
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens(),
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    })
}

/// The SSE frames of a streamed answer, in order.
fn stream_frames(id: &str, model: &str, plan: &Answer, faults: &Faults, include_usage: bool) -> Vec<Bytes> {
    let created = now();
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
               "system_fingerprint": "fp_mock",
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    let mut frames = vec![chunk(json!({"role": "assistant", "content": "", "refusal": null}), Value::Null)];
    if let Some(t) = &plan.thinking {
        frames.push(chunk(json!({"reasoning_content": t.text}), Value::Null));
    }
    if plan.tool_calls.is_empty() {
        let groups = faults.chunks.unwrap_or(plan.words.len().max(1)).max(1);
        let per = plan.words.len().div_ceil(groups).max(1);
        for words in plan.words.chunks(per) {
            frames.push(chunk(json!({"content": words.concat()}), Value::Null));
        }
    } else {
        for (i, call) in plan.tool_calls.iter().enumerate() {
            let head = json!({"tool_calls": [{"index": i, "id": call.id, "type": "function",
                                              "function": {"name": call.name, "arguments": ""}}]});
            frames.push(chunk(head, Value::Null));
            for piece in split_in(&call.arguments, faults.chunks.unwrap_or(3)) {
                frames
                    .push(chunk(json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}), Value::Null));
            }
        }
    }
    frames.push(chunk(json!({}), Value::String(plan.finish_reason.into())));
    if include_usage {
        frames.push(json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [], "usage": usage_json(plan)}));
    }
    let mut out: Vec<Bytes> = frames.iter().map(|f| sse::encode(None, &f.to_string())).collect();
    if faults.malformed.as_deref() == Some("sse") {
        // After the first content, so the break is mid-stream.
        out.insert(2.min(out.len()), Bytes::from_static(b"data: {\"choices\": [{\"delta\": broken\n\n"));
    }
    out.push(sse::encode(None, "[DONE]"));
    out
}

/// `POST /v1/messages`: the same answers in Anthropic's protocol.
async fn messages(State(mock): State<Mock>, req: Request) -> Response {
    let (faults, body) = match intake(&mock, req, Protocol::Anthropic).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let ir = match body.as_object().map(|b| anthropic::decode_messages_request(b, true)) {
        Some(Ok(ir)) => ir,
        Some(Err(e)) => return (StatusCode::BAD_REQUEST, axum::Json(anthropic::encode_error(&e))).into_response(),
        None => return anthropic_error(400, None),
    };
    let plan = answer::plan(&ir, faults.words);
    let id = format!("msg_mock{:012x}", answer::fnv(body.to_string().as_bytes()) & 0xffff_ffff_ffff);
    if faults.malformed.as_deref() == Some("json") && !ir.stream {
        return ([(header::CONTENT_TYPE, "application/json")], "{\"id\": \"broken").into_response();
    }
    let events = answer::events(&id, &ir.model, &plan, faults.chunks);
    if !ir.stream {
        let mut whole = switchyard_types::StreamAssembler::default();
        events.iter().for_each(|e| whole.push(e));
        return axum::Json(anthropic::encode_messages_response(&whole.finish())).into_response();
    }
    let mut enc = anthropic::EventEncoder::new(&ir.model);
    let mut named: Vec<anthropic::Frame> = events.iter().flat_map(|e| enc.encode(e)).collect();
    named.extend(enc.finish(None));
    let mut frames: Vec<Bytes> = named.iter().map(|(name, data)| sse::encode(Some(name), &data.to_string())).collect();
    if faults.malformed.as_deref() == Some("sse") {
        frames.insert(
            3.min(frames.len()),
            Bytes::from_static(b"event: content_block_delta\ndata: {\"type\": broken\n\n"),
        );
    }
    mock.stats.streams_started.fetch_add(1, Ordering::Relaxed);
    let body = paced_body(frames, &faults, mock.stats.clone());
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A fault in Bedrock's shape: `{"message"}` with the exception's name in `x-amzn-errortype`.
fn bedrock_error(status: u16) -> Response {
    let kind = match status {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    };
    let body = json!({"message": format!("mock fault: status {status}")});
    let mut resp =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(body)).into_response();
    resp.headers_mut().insert("x-amzn-errortype", header::HeaderValue::from_static(kind));
    resp
}

async fn converse(State(mock): State<Mock>, Path(model): Path<String>, req: Request) -> Response {
    bedrock_call(mock, model, req, false).await
}

async fn converse_stream(State(mock): State<Mock>, Path(model): Path<String>, req: Request) -> Response {
    bedrock_call(mock, model, req, true).await
}

/// Bedrock's Converse and ConverseStream. The request must be SigV4-signed (the signature is
/// not checked, its presence is: a gateway that forgot to sign gets AWS's 403).
async fn bedrock_call(mock: Mock, model: String, req: Request, stream: bool) -> Response {
    let signed = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 Credential=") && v.contains("/bedrock/aws4_request"));
    let (faults, body) = match intake(&mock, req, Protocol::Bedrock).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    if !signed {
        return bedrock_error(403);
    }
    let Some(obj) = body.as_object() else { return bedrock_error(400) };
    let mut ir = match bedrock::decode_converse_request(obj, &model) {
        Ok(ir) => ir,
        Err(e) => {
            let (kind, body) = bedrock::encode_error(&e);
            let mut resp = (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
            if let Ok(v) = header::HeaderValue::from_str(kind) {
                resp.headers_mut().insert("x-amzn-errortype", v);
            }
            return resp;
        }
    };
    ir.stream = stream;
    let plan = answer::plan(&ir, faults.words);
    let events = answer::events("", &model, &plan, faults.chunks);
    if !stream {
        let mut whole = switchyard_types::StreamAssembler::default();
        events.iter().for_each(|e| whole.push(e));
        return axum::Json(bedrock::encode_converse_response(&whole.finish())).into_response();
    }
    let mut enc = bedrock::StreamEncoder::default();
    let mut named: Vec<bedrock::Frame> = events.iter().flat_map(|e| enc.encode(e)).collect();
    named.extend(enc.finish());
    let frames: Vec<Bytes> = named
        .iter()
        .filter_map(|(kind, payload)| {
            let headers = [
                (":event-type", EventHeader::String(kind.to_string())),
                (":content-type", EventHeader::String("application/json".into())),
                (":message-type", EventHeader::String("event".into())),
            ];
            crate::aws::eventstream::encode(&headers, payload.to_string().as_bytes()).ok()
        })
        .collect();
    mock.stats.streams_started.fetch_add(1, Ordering::Relaxed);
    let body = paced_body(frames, &faults, mock.stats.clone());
    Response::builder()
        .header(header::CONTENT_TYPE, "application/vnd.amazon.eventstream")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A fault in Google's shape.
fn gemini_error(status: u16) -> Response {
    let e = switchyard_types::GatewayError::upstream(status, format!("mock fault: status {status}"));
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(gemini::encode_error(&e)))
        .into_response()
}

/// `POST /v1beta/models/{model}:{action}`: Gemini's `generateContent`, `streamGenerateContent`
/// (`?alt=sse`) and `batchEmbedContents`.
async fn gemini_call(State(mock): State<Mock>, Path(target): Path<String>, req: Request) -> Response {
    let (model, action) = match target.split_once(':') {
        Some((m, a)) => (m.to_string(), a.to_string()),
        None => return gemini_error(404),
    };
    let (faults, body) = match intake(&mock, req, Protocol::Gemini).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let Some(obj) = body.as_object() else { return gemini_error(400) };
    let bad = |e: switchyard_types::GatewayError| {
        (StatusCode::BAD_REQUEST, axum::Json(gemini::encode_error(&e))).into_response()
    };
    if action == "batchEmbedContents" {
        let ir = match gemini::decode_embedding_request(obj) {
            Ok(ir) => ir,
            Err(e) => return bad(e),
        };
        let texts: Vec<String> = match &ir.input {
            switchyard_types::EmbeddingInput::Texts(t) => t.clone(),
            switchyard_types::EmbeddingInput::Tokens(t) => t.iter().map(|ids| format!("{ids:?}")).collect(),
        };
        let dims = ir.dimensions.map_or(8, |d| d.clamp(1, 4096) as usize);
        let data = texts
            .iter()
            .enumerate()
            .map(|(i, t)| switchyard_types::Embedding {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                vector: switchyard_types::EmbeddingVector::Float(answer::embedding(t, dims)),
            })
            .collect();
        let response = switchyard_types::EmbeddingResponse { model, data, usage: switchyard_types::Usage::default() };
        return axum::Json(gemini::encode_embedding_response(&response)).into_response();
    }
    let mut ir = match gemini::decode_chat_request(obj) {
        Ok(ir) => ir,
        Err(e) => return bad(e),
    };
    ir.model = model;
    ir.stream = action == "streamGenerateContent";
    let plan = answer::plan(&ir, faults.words);
    let id = format!("mockresp{:012x}", answer::fnv(body.to_string().as_bytes()) & 0xffff_ffff_ffff);
    let events = answer::events(&id, &ir.model, &plan, faults.chunks);
    if !ir.stream {
        let mut whole = switchyard_types::StreamAssembler::default();
        events.iter().for_each(|e| whole.push(e));
        return axum::Json(gemini::encode_chat_response(&whole.finish())).into_response();
    }
    let mut enc = gemini::StreamEncoder::default();
    let mut chunks: Vec<Value> = events.iter().flat_map(|e| enc.encode(e)).collect();
    chunks.extend(enc.finish());
    let frames = chunks.iter().map(|c| sse::encode(None, &c.to_string())).collect();
    mock.stats.streams_started.fetch_add(1, Ordering::Relaxed);
    let body = paced_body(frames, &faults, mock.stats.clone());
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `POST /v1/messages/count_tokens`: the mock's prompt tokens (its words).
async fn count_tokens(State(mock): State<Mock>, req: Request) -> Response {
    let (_, body) = match intake(&mock, req, Protocol::Anthropic).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    match body.as_object().map(|b| anthropic::decode_messages_request(b, false)) {
        Some(Ok(ir)) => axum::Json(json!({"input_tokens": answer::prompt_tokens(&ir)})).into_response(),
        Some(Err(e)) => (StatusCode::BAD_REQUEST, axum::Json(anthropic::encode_error(&e))).into_response(),
        None => anthropic_error(400, None),
    }
}

/// Splits text into at most `n` non-empty pieces on character boundaries.
fn split_in(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let per = chars.len().div_ceil(n.max(1)).max(1);
    chars.chunks(per).map(|c| c.iter().collect()).collect()
}

/// Keeps `open_streams` honest: the body stream is dropped when the client goes away.
struct OpenStream(Arc<MockStats>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The longest a stalled stream stays open: long enough for any timeout under test, bounded so a
/// forgotten client cannot hold a mock task forever.
const STALL_LIMIT: Duration = Duration::from_secs(600);

fn paced_body(frames: Vec<Bytes>, faults: &Faults, stats: Arc<MockStats>) -> Body {
    stats.open_streams.fetch_add(1, Ordering::Relaxed);
    let guard = OpenStream(stats);
    let delay = faults.chunk_delay;
    let stall_after = faults.stall_after;
    let cut_after = faults.cut_after;
    let stream =
        futures_util::stream::unfold((frames.into_iter(), 0usize, guard), move |(mut it, sent, guard)| async move {
            if sent > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if stall_after == Some(sent) {
                tokio::time::sleep(STALL_LIMIT).await;
                return None;
            }
            if cut_after == Some(sent) {
                let err = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "mock cut the stream");
                return Some((Err(err), (it, sent + 1, guard)));
            }
            let frame = it.next()?;
            Some((Ok::<_, std::io::Error>(frame), (it, sent + 1, guard)))
        });
    Body::from_stream(stream)
}

async fn embeddings(State(mock): State<Mock>, req: Request) -> Response {
    let (faults, body) = match intake(&mock, req, Protocol::OpenAi).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    if faults.malformed.as_deref() == Some("json") {
        return ([(header::CONTENT_TYPE, "application/json")], "{\"data\": [").into_response();
    }
    let ir = match body.as_object().map(openai::decode_embedding_request) {
        Some(Ok(ir)) => ir,
        Some(Err(e)) => return (StatusCode::BAD_REQUEST, axum::Json(openai::encode_error(&e))).into_response(),
        None => return error_response(400, None, None),
    };
    let texts: Vec<String> = match &ir.input {
        switchyard_types::EmbeddingInput::Texts(t) => t.clone(),
        switchyard_types::EmbeddingInput::Tokens(t) => t.iter().map(|ids| format!("{ids:?}")).collect(),
    };
    let dims = ir.dimensions.map_or(8, |d| d.clamp(1, 4096) as usize);
    let base64 = ir.encoding_format.as_deref() == Some("base64");
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let v = answer::embedding(t, dims);
            let embedding = if base64 { json!(answer::base64_f32(&v)) } else { json!(v) };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let tokens: usize = texts.iter().map(|t| t.split_whitespace().count().max(1)).sum();
    axum::Json(json!({"object": "list", "data": data, "model": ir.model,
                      "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}))
    .into_response()
}
