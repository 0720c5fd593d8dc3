//! Calls to a provider in its own protocol, returning IR answers.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use switchyard_protocols::{anthropic, bedrock, gemini, openai, sse};
use switchyard_types::{
    ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, ErrorKind, GatewayError, JsonMap, Protocol,
    StreamEvent,
};
use tokio::time::Instant;

use crate::client::{read_body, retry_after, transport_error};
use crate::{Provider, Timeouts, UpstreamClient, aws};

/// What a chat call produced once the provider accepted it.
pub enum ChatOutcome {
    /// A whole answer: the IR and the provider's JSON as received.
    Complete {
        response: Box<ChatResponse>,
        body: Value,
    },
    Stream(EventStream),
}

/// One upstream stream event: its IR events, and its data as the provider sent it so a
/// same-protocol client can get the bytes unchanged.
#[derive(Debug)]
pub struct StreamItem {
    pub events: Vec<StreamEvent>,
    pub raw: Option<String>,
}

/// An upstream stream. It ends after an item holding `StreamEvent::Error` if the upstream fails;
/// dropping it closes the upstream connection at once.
pub type EventStream = Pin<Box<dyn Stream<Item = StreamItem> + Send>>;

/// When a stream attempt has answered, and so when the client's stream begins.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StreamStart {
    /// At the upstream's first content event (text, tool call, reasoning, refusal or finish).
    /// Until then the client has seen nothing, so an error, a break or a late first token
    /// moves to the next target unseen.
    #[default]
    FirstToken,
    /// At the upstream's first event of any kind (OpenAI's role chunk, Anthropic's
    /// `message_start`): the client's stream begins as soon as the upstream's does, and a
    /// failure after that is a mid-stream one.
    Immediately,
}

/// Sends a chat request. `passthrough` is the client's own body when it spoke this provider's
/// protocol: it goes upstream unchanged but for the model, so fields the IR does not know survive.
/// A stream is returned once it has begun as `start` says.
pub async fn chat(
    client: &UpstreamClient,
    provider: &Provider,
    model: &str,
    req: &ChatRequest,
    passthrough: Option<&JsonMap>,
    timeouts: &Timeouts,
    start: StreamStart,
) -> Result<ChatOutcome, GatewayError> {
    let started = Instant::now();
    let deadline = started + timeouts.total;
    let protocol = provider.protocol();
    if passthrough.is_none() {
        switchyard_protocols::check_translatable(req, protocol)?;
    }
    if protocol == Protocol::Bedrock {
        return bedrock_chat(client, provider, model, req, timeouts, started, start).await;
    }
    let mut body = match (passthrough, protocol) {
        (Some(raw), _) => {
            let mut body = raw.clone();
            body.insert("model".into(), model.into());
            body
        }
        (None, Protocol::Anthropic) => anthropic::encode_messages_request(req, model)?,
        (None, Protocol::Gemini) => gemini::encode_chat_request(req)?,
        (None, _) => openai::encode_chat_request(req, model),
    };
    if req.stream && protocol == Protocol::OpenAi {
        // Usage is always requested so the call can be accounted; the surface hides the usage
        // chunk from a client that did not ask for it. (Anthropic streams always report it.)
        let opts = body.entry("stream_options").or_insert_with(|| Value::Object(JsonMap::new()));
        if let Value::Object(o) = opts {
            o.insert("include_usage".into(), true.into());
        }
    }
    let endpoint = match (protocol, req.stream) {
        (Protocol::Anthropic, _) => "messages".to_string(),
        // Gemini names the model and the streaming in the path; the body has neither.
        (Protocol::Gemini, false) => format!("models/{model}:generateContent"),
        (Protocol::Gemini, true) => format!("models/{model}:streamGenerateContent?alt=sse"),
        _ => "chat/completions".to_string(),
    };
    if protocol == Protocol::Gemini {
        body.remove("model");
        body.remove("stream");
    }
    let resp = post_json(client, provider, &endpoint, model, &body, timeouts, deadline).await?;
    if !req.stream {
        let bytes = read_body(&provider.name, resp, deadline).await?;
        let body = parse_json(&provider.name, &bytes)?;
        let response = match protocol {
            Protocol::Anthropic => anthropic::decode_messages_response(&body),
            Protocol::Gemini => gemini::decode_chat_response(&body),
            _ => openai::decode_chat_response(&body),
        };
        return Ok(ChatOutcome::Complete { response: Box::new(response), body });
    }
    let framing = Framing::Sse(sse::SseDecoder::default());
    let stream = event_stream(provider.name.clone(), resp, framing, Chunks::of(protocol), *timeouts, deadline);
    stream_begins(&provider.name, stream, started + timeouts.first_token.min(timeouts.total), start)
        .await
        .map(ChatOutcome::Stream)
}

/// A Converse call: the body encoded from the IR (no client speaks Bedrock), the model in the
/// path, the request signed with SigV4; streams arrive in AWS's binary event stream.
async fn bedrock_chat(
    client: &UpstreamClient,
    provider: &Provider,
    model: &str,
    req: &ChatRequest,
    timeouts: &Timeouts,
    started: Instant,
    start: StreamStart,
) -> Result<ChatOutcome, GatewayError> {
    let deadline = started + timeouts.total;
    let body = bedrock::encode_converse_request(req)?;
    let action = if req.stream { "converse-stream" } else { "converse" };
    let endpoint = format!("model/{}/{action}", aws::sigv4::encode_path_segment(model));
    let resp = post_signed(client, provider, &endpoint, &body, timeouts, deadline).await?;
    if !req.stream {
        let bytes = read_body(&provider.name, resp, deadline).await?;
        let body = parse_json(&provider.name, &bytes)?;
        let mut response = bedrock::decode_converse_response(&body);
        if response.model.is_empty() {
            response.model = model.to_string();
        }
        return Ok(ChatOutcome::Complete { response: Box::new(response), body });
    }
    let framing = Framing::Aws(aws::eventstream::Decoder::new());
    let chunks = Chunks::Bedrock(bedrock::StreamDecoder::new(model));
    let stream = event_stream(provider.name.clone(), resp, framing, chunks, *timeouts, deadline);
    stream_begins(&provider.name, stream, started + timeouts.first_token.min(timeouts.total), start)
        .await
        .map(ChatOutcome::Stream)
}

/// Sends a SigV4-signed JSON POST to a Bedrock endpoint; a refusal becomes the provider's error.
async fn post_signed(
    client: &UpstreamClient,
    provider: &Provider,
    endpoint: &str,
    body: &JsonMap,
    timeouts: &Timeouts,
    deadline: Instant,
) -> Result<reqwest::Response, GatewayError> {
    let Some(signing) = &provider.aws else {
        return Err(GatewayError::new(
            ErrorKind::Internal,
            format!("provider '{}' has no AWS credentials", provider.name),
        ));
    };
    let url = provider.endpoint_url(endpoint, "");
    let bytes = serde_json::to_vec(body).map_err(|e| GatewayError::new(ErrorKind::Internal, e.to_string()))?;
    let request = aws::sigv4::Request {
        method: "POST",
        url: &url,
        headers: &[("content-type", "application/json")],
        body: &bytes,
    };
    let params = aws::sigv4::Params {
        credentials: &signing.credentials,
        region: &signing.region,
        service: "bedrock",
        time: std::time::SystemTime::now(),
        content_sha256_header: false,
    };
    let signed = aws::sigv4::sign(&request, &params).map_err(|e| {
        GatewayError::new(ErrorKind::Internal, format!("provider '{}': cannot sign the request: {e}", provider.name))
    })?;
    let mut builder = client.post(&url).header("content-type", "application/json");
    for (name, value) in signed.headers {
        builder = builder.header(name, value);
    }
    for (k, v) in provider.extra_headers() {
        builder = builder.header(k, v);
    }
    let resp = client.send(&provider.name, builder.body(bytes), timeouts).await?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    Err(refusal(provider, resp, None, deadline).await)
}

/// Waits for a stream to begin as `start` says (by default its first content: text, tool call,
/// reasoning, refusal or finish) and returns the stream with what was read put back in front.
/// Until then nothing has reached the client, so an error or a late first token fails the
/// attempt and the router may try the next target.
async fn stream_begins(
    provider: &str,
    mut stream: EventStream,
    by: Instant,
    start: StreamStart,
) -> Result<EventStream, GatewayError> {
    let mut head = Vec::new();
    loop {
        let item = tokio::time::timeout_at(by, stream.next()).await.map_err(|_| {
            GatewayError::new(ErrorKind::Timeout, format!("provider '{provider}' sent no first token in time"))
                .with_code("first_token_timeout")
        })?;
        let Some(item) = item else {
            // The upstream ended already: what was read is all there is (a finished stream must
            // not be polled again).
            return Ok(Box::pin(futures_util::stream::iter(head)));
        };
        if let Some(StreamEvent::Error(e)) = item.events.iter().find(|e| matches!(e, StreamEvent::Error(_))) {
            return Err(e.clone());
        }
        let begun = start == StreamStart::Immediately && !item.events.is_empty();
        let content = begun || item.events.iter().any(StreamEvent::is_content);
        head.push(item);
        if content {
            break;
        }
    }
    Ok(Box::pin(futures_util::stream::iter(head).chain(stream)))
}

pub async fn embeddings(
    client: &UpstreamClient,
    provider: &Provider,
    model: &str,
    req: &EmbeddingRequest,
    passthrough: Option<&JsonMap>,
    timeouts: &Timeouts,
) -> Result<(EmbeddingResponse, Value), GatewayError> {
    let deadline = Instant::now() + timeouts.total;
    if provider.protocol() == Protocol::Gemini {
        let body = gemini::encode_embedding_request(req, model)?;
        let endpoint = format!("models/{model}:batchEmbedContents");
        let resp = post_json(client, provider, &endpoint, model, &body, timeouts, deadline).await?;
        let bytes = read_body(&provider.name, resp, deadline).await?;
        let body = parse_json(&provider.name, &bytes)?;
        let mut decoded = gemini::decode_embedding_response(&body);
        if decoded.model.is_empty() {
            decoded.model = model.to_string();
        }
        return Ok((decoded, body));
    }
    if provider.protocol() != Protocol::OpenAi {
        return Err(GatewayError::invalid(format!(
            "provider '{}' ({}) does not serve embeddings through the gateway yet",
            provider.name,
            provider.kind.as_str()
        ))
        .with_code("embeddings_unsupported"));
    }
    let body = match passthrough {
        Some(raw) => {
            let mut body = raw.clone();
            body.insert("model".into(), model.into());
            body
        }
        None => openai::encode_embedding_request(req, model),
    };
    let resp = post_json(client, provider, "embeddings", model, &body, timeouts, deadline).await?;
    let bytes = read_body(&provider.name, resp, deadline).await?;
    let body = parse_json(&provider.name, &bytes)?;
    Ok((openai::decode_embedding_response(&body), body))
}

/// Asks an Anthropic provider to count a Messages request's input tokens (its own tokenizer:
/// exact). `raw` is the client's Anthropic body; its `model` is replaced by the target's.
pub async fn count_tokens(
    client: &UpstreamClient,
    provider: &Provider,
    model: &str,
    raw: &JsonMap,
    timeouts: &Timeouts,
) -> Result<u64, GatewayError> {
    let deadline = Instant::now() + timeouts.total;
    let mut body = raw.clone();
    body.insert("model".into(), model.into());
    let resp = post_json(client, provider, "messages/count_tokens", model, &body, timeouts, deadline).await?;
    let bytes = read_body(&provider.name, resp, deadline).await?;
    let v = parse_json(&provider.name, &bytes)?;
    v.get("input_tokens").and_then(Value::as_u64).ok_or_else(|| {
        GatewayError::upstream(502, format!("provider '{}' answered count_tokens without input_tokens", provider.name))
    })
}

/// Sends a JSON body to one of the provider's endpoints with one of its keys, and turns a non-2xx
/// answer into an upstream error carrying the provider's status, message and `retry-after`.
async fn post_json(
    client: &UpstreamClient,
    provider: &Provider,
    endpoint: &str,
    model: &str,
    body: &JsonMap,
    timeouts: &Timeouts,
    deadline: Instant,
) -> Result<reqwest::Response, GatewayError> {
    let url = provider.endpoint_url(endpoint, model);
    let body = serde_json::to_vec(body).map_err(|e| GatewayError::new(ErrorKind::Internal, e.to_string()))?;
    let (request, key) = provider.authorize(client.post(&url)).map_err(|wait| {
        GatewayError::new(
            ErrorKind::RateLimited,
            format!("provider '{}' has no usable API key right now", provider.name),
        )
        .with_code("no_usable_provider_key")
        .with_retry_after(wait)
    })?;
    let request = request.header("content-type", "application/json").body(body);
    let resp = client.send(&provider.name, request, timeouts).await?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    Err(refusal(provider, resp, key, deadline).await)
}

/// A provider's non-2xx answer as the error the router sees: the provider's status, message and
/// `retry-after`, in its protocol's shape; its key told how it fared.
async fn refusal(provider: &Provider, resp: reqwest::Response, key: Option<usize>, deadline: Instant) -> GatewayError {
    let status = resp.status().as_u16();
    let after = retry_after(resp.headers());
    let error_type = resp.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()).map(str::to_string);
    // A 401 or 403 is never read: its message may quote the key.
    let decoded = if matches!(status, 401 | 403) {
        None
    } else {
        let body = read_body(&provider.name, resp, deadline).await.unwrap_or_default();
        Some(match provider.protocol() {
            Protocol::Anthropic => anthropic::decode_error(status, &body, after),
            Protocol::Gemini => gemini::decode_error(status, &body, after),
            Protocol::Bedrock => bedrock::decode_error(status, &body, error_type.as_deref(), after),
            Protocol::OpenAi => openai::decode_error(status, &body, after),
        })
    };
    // Gemini refuses a bad key with a 400 (`API_KEY_INVALID`): the same verdict as a 401.
    let refused_key = status == 401 || decoded.as_ref().is_some_and(|e| e.kind == ErrorKind::Authentication);
    if let Some(key) = key {
        provider.report_key(key, if refused_key { 401 } else { status }, after);
    }
    match decoded {
        Some(e) if !refused_key => e,
        _ => {
            // The provider refused the gateway's credential or what it may use. The client would
            // read a 401/403 as a verdict on its own key: neither the status nor the message goes
            // out.
            let (code, what) = if refused_key {
                (UPSTREAM_AUTH_ERROR, "refused the gateway's credentials")
            } else {
                (UPSTREAM_FORBIDDEN, "refused the request with 403 (the gateway's account may not use this model)")
            };
            let mut e = GatewayError::upstream(502, format!("provider '{}' {what}", provider.name)).with_code(code);
            e.kind = ErrorKind::Unavailable;
            e
        }
    }
}

/// The code of a provider's credential refusal (401) once its message is hidden; the router
/// rotates to another key of the provider on it.
pub const UPSTREAM_AUTH_ERROR: &str = "upstream_auth_error";

/// The code of a provider's 403, once its message is hidden.
pub const UPSTREAM_FORBIDDEN: &str = "upstream_forbidden";

fn parse_json(provider: &str, bytes: &Bytes) -> Result<Value, GatewayError> {
    serde_json::from_slice(bytes).map_err(|e| {
        GatewayError::upstream(502, format!("provider '{provider}' sent a body that is not valid JSON: {e}"))
            .with_code("upstream_invalid_json")
    })
}

/// The decoder of one protocol's SSE data.
enum Chunks {
    OpenAi(openai::ChunkDecoder),
    Anthropic(anthropic::EventDecoder),
    Gemini(gemini::StreamDecoder),
    Bedrock(bedrock::StreamDecoder),
}

impl Chunks {
    fn of(protocol: Protocol) -> Chunks {
        match protocol {
            Protocol::Anthropic => Chunks::Anthropic(anthropic::EventDecoder::default()),
            Protocol::Gemini => Chunks::Gemini(gemini::StreamDecoder::default()),
            _ => Chunks::OpenAi(openai::ChunkDecoder::default()),
        }
    }

    fn decode(&mut self, name: Option<&str>, data: &str) -> Result<Vec<StreamEvent>, GatewayError> {
        match self {
            Chunks::OpenAi(d) => d.decode(data),
            Chunks::Anthropic(d) => d.decode(data),
            Chunks::Gemini(d) => d.decode(data),
            Chunks::Bedrock(d) => {
                let payload: Value = serde_json::from_str(data).map_err(|e| {
                    GatewayError::upstream(502, format!("invalid JSON in a Bedrock stream event: {e}"))
                        .with_code("upstream_invalid_json")
                })?;
                d.decode(name.unwrap_or_default(), &payload)
            }
        }
    }

    /// Events a decoder holds back until the stream ends (Gemini's last usage).
    fn finish(&mut self) -> Vec<StreamEvent> {
        match self {
            Chunks::Gemini(d) => d.finish(),
            _ => Vec::new(),
        }
    }

    /// Whether this data ends the answer normally: OpenAI's `[DONE]`, Anthropic's
    /// `message_stop`. (A finish reason counts too; see `push_event`.)
    fn is_end(&self, data: &str) -> bool {
        match self {
            Chunks::OpenAi(_) => data.trim() == "[DONE]",
            Chunks::Anthropic(_) => data.contains("\"message_stop\""),
            // Gemini has no end marker: its last chunk carries a finish reason.
            Chunks::Gemini(_) => false,
            // Bedrock ends with `metadata` (the usage) after `messageStop`; the finish counts.
            Chunks::Bedrock(_) => false,
        }
    }
}

/// How a stream's events are framed on the wire.
enum Framing {
    Sse(sse::SseDecoder),
    /// AWS's binary event stream (Bedrock).
    Aws(aws::eventstream::Decoder),
}

/// One framed event: its name (the SSE `event:` line, or the AWS event or exception type) and
/// its data.
struct Framed {
    name: Option<String>,
    data: String,
}

impl Framing {
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Framed>, String> {
        match self {
            Framing::Sse(d) => Ok(d
                .feed(bytes)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|e| Framed { name: e.event, data: e.data })
                .collect()),
            Framing::Aws(d) => Ok(d
                .feed(bytes)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|m| Framed {
                    name: m.event_type().or_else(|| m.exception_type()).map(str::to_string),
                    data: String::from_utf8_lossy(&m.payload).into_owned(),
                })
                .collect()),
        }
    }

    fn finish(&mut self) -> Option<Framed> {
        match self {
            Framing::Sse(d) => d.finish().map(|e| Framed { name: e.event, data: e.data }),
            Framing::Aws(_) => None,
        }
    }
}

struct StreamState {
    provider: String,
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    framing: Framing,
    chunks: Chunks,
    pending: std::collections::VecDeque<StreamItem>,
    timeouts: Timeouts,
    deadline: Instant,
    done: bool,
    /// `[DONE]` or a finish reason was seen, so the upstream closing is a normal end.
    complete: bool,
}

fn event_stream(
    provider: String,
    resp: reqwest::Response,
    framing: Framing,
    chunks: Chunks,
    timeouts: Timeouts,
    deadline: Instant,
) -> EventStream {
    let state = StreamState {
        provider,
        body: Box::pin(resp.bytes_stream()),
        framing,
        chunks,
        pending: Default::default(),
        timeouts,
        deadline,
        done: false,
        complete: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.pending.pop_front() {
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            let left = st.deadline.saturating_duration_since(Instant::now());
            let wait = st.timeouts.stall.min(left);
            let next = tokio::time::timeout(wait, st.body.next()).await;
            let failure = match next {
                Err(_) if wait == left => Some(
                    GatewayError::new(
                        ErrorKind::Timeout,
                        format!("provider '{}' did not finish its answer within the total timeout", st.provider),
                    )
                    .with_code("total_timeout"),
                ),
                Err(_) => Some(
                    GatewayError::new(
                        ErrorKind::Timeout,
                        format!("provider '{}' stalled: no data for {} ms", st.provider, wait.as_millis()),
                    )
                    .with_code("stream_stall_timeout"),
                ),
                Ok(Some(Err(e))) => Some(transport_error(&st.provider, &e)),
                Ok(Some(Ok(bytes))) => match st.framing.feed(&bytes) {
                    Ok(events) => {
                        for ev in events {
                            st.push_event(ev);
                        }
                        None
                    }
                    Err(e) => Some(GatewayError::upstream(502, format!("provider '{}': {e}", st.provider))),
                },
                Ok(None) => {
                    st.done = true;
                    if let Some(ev) = st.framing.finish() {
                        st.push_event(ev);
                    }
                    let held = st.chunks.finish();
                    if !held.is_empty() {
                        st.pending.push_back(StreamItem { events: held, raw: None });
                    }
                    (!st.complete).then(|| {
                        GatewayError::upstream(502, format!("provider '{}' ended the stream early", st.provider))
                            .with_code("upstream_stream_truncated")
                    })
                }
            };
            if let Some(err) = failure {
                st.done = true;
                // After the finish, only the usage chunk and `[DONE]` were missing: the answer is
                // whole, so a broken connection now ends it normally.
                if !st.complete {
                    st.pending.push_back(StreamItem { events: vec![StreamEvent::Error(err)], raw: None });
                }
            }
        }
    }))
}

impl StreamState {
    fn push_event(&mut self, ev: Framed) {
        if matches!(self.chunks, Chunks::OpenAi(_)) && self.chunks.is_end(&ev.data) {
            self.complete = true;
            self.pending.push_back(StreamItem { events: Vec::new(), raw: Some(ev.data) });
            return;
        }
        if self.chunks.is_end(&ev.data) {
            self.complete = true;
        }
        match self.chunks.decode(ev.name.as_deref(), &ev.data) {
            Ok(events) => {
                if events.iter().any(|e| matches!(e, StreamEvent::Finish { .. } | StreamEvent::Error(_))) {
                    self.complete = true;
                }
                if events.iter().any(|e| matches!(e, StreamEvent::Error(_))) {
                    self.done = true;
                }
                self.pending.push_back(StreamItem { events, raw: Some(ev.data) });
            }
            Err(mut e) => {
                e.message = format!("provider '{}': {}", self.provider, e.message);
                self.done = true;
                self.pending.push_back(StreamItem { events: vec![StreamEvent::Error(e)], raw: None });
            }
        }
    }
}
