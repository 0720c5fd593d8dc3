//! The OpenAI surface: `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use switchyard_policy::{BudgetHold, BudgetRefusal, Limits, Principal, Scope, authorize_model, nanos};
use switchyard_protocols::{anthropic, openai, sse};
use switchyard_providers::{ChatOutcome, EventStream, ProviderType, StreamItem, StreamStart};
use switchyard_router::{
    Attempt, Caller, Demand, Execution, InFlight, ModelRoute, Plan, Price, RequestView, Target, apply_rules, execute,
    execute_avoiding,
};
use switchyard_types::{
    ChatRequest, ContentPart, EmbeddingInput, EmbeddingRequest, ErrorKind, GatewayError, JsonMap, Message, Protocol,
    ResponseFormat, Role, StreamAssembler, StreamEvent, Usage,
};

use super::meta::RequestMeta;
use super::observe::{Answer, Observed, finish_name};
use super::{authenticate, read_body, routing_headers};
use crate::error::SurfaceError;
use crate::runtime::Runtime;
use crate::{AppState, RequestId};

/// What routing needs from a decoded request.
trait Routable {
    fn model(&self) -> &str;
    fn demand(&self) -> Demand;
    /// The chat request, for an exact token count where the estimate is not enough.
    fn chat(&self) -> Option<&ChatRequest> {
        None
    }
    fn user(&self) -> Option<&str>;
    fn stream(&self) -> bool;
}

impl Routable for ChatRequest {
    fn model(&self) -> &str {
        &self.model
    }
    fn chat(&self) -> Option<&ChatRequest> {
        Some(self)
    }
    fn demand(&self) -> Demand {
        Demand { input_tokens: self.estimated_input_tokens(), max_tokens: self.sampling.max_tokens }
    }
    fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
    fn stream(&self) -> bool {
        self.stream
    }
}

impl Routable for EmbeddingRequest {
    fn model(&self) -> &str {
        &self.model
    }
    fn demand(&self) -> Demand {
        let input_tokens = match &self.input {
            EmbeddingInput::Texts(t) => t.iter().map(|s| s.len() as u64 / 4 + 1).sum(),
            EmbeddingInput::Tokens(t) => t.iter().map(|v| v.len() as u64).sum(),
        };
        Demand { input_tokens, max_tokens: Some(0) }
    }
    fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
    fn stream(&self) -> bool {
        false
    }
}

/// A request that passed admission: the client's JSON, its IR, and the plan of attempts.
struct Admitted<R> {
    raw: JsonMap,
    req: R,
    plan: Plan,
}

/// The stages every OpenAI endpoint shares: authenticate, read and decode the body, check the
/// key may use the model (and any alternatives the request lists), apply routing rules, plan.
/// What is learnt on the way goes into the request's record.
async fn admit<R: Routable>(
    state: &AppState,
    rt: &Runtime,
    observed: &mut Observed,
    headers: &HeaderMap,
    body: Body,
    decode: fn(&JsonMap) -> Result<R, GatewayError>,
) -> Result<Admitted<R>, GatewayError> {
    let principal = authenticate(state, rt, headers)?;
    observed.caller(&principal);
    let meta = RequestMeta::from_headers(headers)?;
    let reading = Instant::now();
    let bytes = read_body(body, headers, rt.max_body_bytes, rt.client_timeout).await?;
    observed.request_body(&bytes, reading.elapsed());
    let mut raw = openai::parse_object(&bytes)?;
    // OpenRouter's `models`: alternatives to try in order. It is the gateway's to act on, so it is
    // taken out of what goes upstream.
    let alternatives = match raw.remove("models") {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .into_iter()
            .map(|m| match m {
                Value::String(s) => Ok(s),
                _ => Err(GatewayError::invalid("'models' must be a list of model names.").with_param("models")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(GatewayError::invalid("'models' must be a list of model names.").with_param("models")),
    };
    let req = decode(&raw)?;
    // A key that belongs to a user speaks for that user: its requests are the user's in the log
    // and in the user's budget, whatever end user the client names.
    let user = principal.user.clone().or(meta.user).or_else(|| req.user().map(str::to_string));
    let meta = RequestMeta { user, ..meta };
    observed.request(rt, req.model(), req.stream(), meta.clone());
    authorize_model(&principal, req.model())?;
    for alt in &alternatives {
        authorize_model(&principal, alt)?;
    }
    let mut demand = req.demand();
    if let Some(chat) = req.chat()
        && let Some(tokenizer_model) = near_an_openai_window(rt, req.model(), &demand)
    {
        // Near the edge the estimate could send the request to a model it does not fit, or away
        // from one it does: count with the model's own tokenizer, off the async threads.
        let owned = chat.clone();
        if let Ok(n) = tokio::task::spawn_blocking(move || crate::tokens::openai(&tokenizer_model, &owned)).await {
            demand.input_tokens = n;
        }
    }
    let scopes = limit_scopes(rt, &principal, req.model(), meta.user.as_deref());
    if !scopes.is_empty() {
        let estimate = demand.input_tokens.saturating_add(demand.max_tokens.unwrap_or(0));
        let admitted = match &state.shared_limits {
            Some(shared) => shared.admit_all(&scopes, estimate).await,
            None => state.limiter.admit_all(&scopes, estimate),
        };
        match admitted {
            Ok(admissions) => observed.admitted(admissions),
            Err(refused) => {
                state.metrics.limit_rejection(refused.code.as_deref().unwrap_or("rate_limit_exceeded"));
                return Err(refused);
            }
        }
    }
    let view = RequestView {
        model: req.model(),
        key: &principal.name,
        user: meta.user.as_deref(),
        session: meta.session.as_deref(),
        tags: &meta.tags,
        headers,
        params: &raw,
        prompt_tokens: demand.input_tokens,
    };
    let model = apply_rules(&rt.rules, &view).map_or(req.model(), |(_, model)| model);
    let caller = Caller { key: &principal.name, user: meta.user.as_deref(), session: meta.session.as_deref(), headers };
    let plan = rt.catalogue.plan(model, &alternatives, demand, &caller)?;
    if !principal.budgets.is_empty() {
        let output = demand.max_tokens.unwrap_or(rt.budgets.default_max_tokens);
        let amount = nanos(plan.worst_case_cost(demand.input_tokens, output));
        let held = match &state.shared_budgets {
            Some(shared) => shared.reserve(&principal.budgets, amount).await,
            None => state
                .budgets
                .reserve(&principal.budgets, amount, switchyard_store::time::now_us())
                .map(|reservation| BudgetHold::Local { reservation, shared: None })
                .map_err(BudgetRefusal::Over),
        };
        match held {
            Ok(hold) => observed.budget(hold),
            Err(refused) => {
                let owner = match &refused {
                    BudgetRefusal::Over(r) => r.scope.owner.as_str(),
                    BudgetRefusal::Unavailable => "unavailable",
                };
                state.metrics.budget_rejection(owner);
                return Err(refused.error(rt.budgets.status));
            }
        }
    }
    Ok(Admitted { raw, req, plan })
}

/// The model of an OpenAI target of `model` whose context window the estimated request comes
/// within a quarter of (or passes), if any: there, the estimate is not good enough to route on.
fn near_an_openai_window(rt: &Runtime, model: &str, demand: &Demand) -> Option<String> {
    let needed = demand.input_tokens.saturating_add(demand.max_tokens.unwrap_or(0));
    rt.catalogue.route(model)?.targets.iter().find_map(|t| {
        let window = t.context_window?;
        let openai = matches!(t.provider.kind, ProviderType::Openai | ProviderType::AzureOpenai);
        (openai && needed.saturating_mul(4) >= window.saturating_mul(3)).then(|| t.model.clone())
    })
}

/// The rate-limit scopes a request counts against, the ones with limits only: its key, its
/// team, the user it belongs to, its end user under the key, its model, and its key on that
/// model.
fn limit_scopes(rt: &Runtime, p: &Principal, model: &str, user: Option<&str>) -> Vec<Scope> {
    let mut scopes = Vec::new();
    let mut add = |id: String, label: String, limits: Limits| {
        if !limits.is_empty() {
            scopes.push(Scope { id, label, limits });
        }
    };
    let l = &p.limits;
    add(format!("key:{}", p.name), format!("the key '{}'", p.name), l.key);
    if let Some(team) = &p.team {
        add(format!("team:{team}"), format!("the team '{team}'"), l.team);
    }
    if let Some(user) = &p.user {
        add(format!("user:{user}"), format!("the user '{user}'"), l.user);
    }
    if let Some(user) = user {
        add(format!("key-user:{}:{user}", p.name), format!("the user '{user}' of the key '{}'", p.name), l.per_user);
    }
    if let Some(limits) = rt.model_limits.get(model) {
        add(format!("model:{model}"), format!("the model '{model}'"), *limits);
    }
    if let Some(limits) = l.per_model.get(model) {
        add(format!("key-model:{}:{model}", p.name), format!("the key '{}' on the model '{model}'", p.name), *limits);
    }
    scopes
}

/// Admission with its observation: the request's `Observed` and what passed, or the error
/// response (already counted and logged).
async fn admit_observed<R: Routable>(
    (surface, operation): (Protocol, &'static str),
    state: &AppState,
    rt: &Runtime,
    id: &RequestId,
    headers: &HeaderMap,
    body: Body,
    decode: fn(&JsonMap) -> Result<R, GatewayError>,
) -> Result<(Observed, Admitted<R>), Response> {
    let mut observed = Observed::start(state, rt, &id.0, surface.as_str(), operation, headers);
    match admit(state, rt, &mut observed, headers, body, decode).await {
        Ok(admitted) => Ok((observed, admitted)),
        Err(e) => {
            observed.finish_err(&e);
            Err(SurfaceError::new(surface, e).into_response())
        }
    }
}

/// A JSON answer, and what the record keeps of it.
fn json_answer(body: &Value, mut answer: Answer, capture: bool) -> (Response, Answer) {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    answer.bytes = bytes.len() as u64;
    if capture {
        answer.body = Some(String::from_utf8_lossy(&bytes).into_owned());
    }
    let mut resp = Response::new(Body::from(bytes));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    (resp, answer)
}

/// One chat attempt on the target the router chose.
async fn chat_attempt(
    state: &AppState,
    req: &ChatRequest,
    raw: Option<&JsonMap>,
    attempt: Attempt,
) -> Result<ChatOutcome, GatewayError> {
    let provider = &attempt.target.provider;
    let passthrough = raw.filter(|_| Some(provider.protocol()) == req.extra.protocol);
    // A stream begun before its first token is timed at its first token, by the relay task.
    let begins_early = req.stream && attempt.route.stream_start == StreamStart::Immediately;
    if begins_early {
        attempt.time_first_token_later();
    }
    let outcome = switchyard_providers::chat(
        &state.client,
        provider,
        &attempt.target.model,
        req,
        passthrough,
        &attempt.route.timeouts,
        attempt.route.stream_start,
    )
    .await?;
    Ok(match outcome {
        ChatOutcome::Stream(s) => {
            ChatOutcome::Stream(decouple(s, attempt.in_flight, attempt.route.timeouts.stall, begins_early))
        }
        whole => whole,
    })
}

/// Items buffered between an upstream stream and a slow client.
const STREAM_BUFFER: usize = 16;

/// Reads the upstream in a task of its own, into a small buffer the client drains. A client that
/// stops reading (its TCP window full) would otherwise hold the upstream connection, and the
/// provider's generation, open for ever, since nothing polls a stream nobody writes out; here,
/// when the client has taken nothing for `stall`, or has gone, the upstream is dropped. The task
/// also holds the attempt's in-flight count, so it lasts exactly as long as the upstream stream.
/// With `time_first_token`, the task takes the target's time-to-first-token sample when the
/// first content passes.
fn decouple(mut upstream: EventStream, in_flight: InFlight, stall: Duration, time_first_token: bool) -> EventStream {
    let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
    let abandoned = Arc::new(AtomicBool::new(false));
    let gave_up = abandoned.clone();
    tokio::spawn(async move {
        let mut timing = time_first_token;
        loop {
            let item = tokio::select! {
                item = upstream.next() => item,
                // The client left while the upstream was silent: stop at once.
                () = tx.closed() => return,
            };
            let Some(item) = item else { return };
            if timing && item.events.iter().any(StreamEvent::is_content) {
                in_flight.first_token();
                timing = false;
            }
            if !matches!(tokio::time::timeout(stall, tx.send(item)).await, Ok(Ok(()))) {
                gave_up.store(true, Ordering::Relaxed);
                return;
            }
        }
    });
    // A client that resumes reading after the upstream was dropped must see an error, not an
    // answer that looks complete.
    Box::pin(
        futures_util::stream::unfold((rx, abandoned, false), |(mut rx, abandoned, told)| async move {
            if told {
                return None;
            }
            match rx.recv().await {
                Some(item) => Some((item, (rx, abandoned, false))),
                None if abandoned.load(Ordering::Relaxed) => {
                    let mut e = GatewayError::new(
                        ErrorKind::Timeout,
                        "The answer was abandoned because the client stopped reading it.",
                    )
                    .with_code("client_read_stall");
                    e.status = Some(408);
                    Some((StreamItem { events: vec![StreamEvent::Error(e)], raw: None }, (rx, abandoned, true)))
                }
                None => None,
            }
        })
        .fuse(),
    )
}

pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    chat(Protocol::OpenAi, state, id, headers, body, openai::decode_chat_request).await
}

/// A chat call from a client of `surface`'s protocol, whatever protocol answers it: admission,
/// routing, and the answer or stream in the client's protocol (the provider's own bytes when
/// both speak the same one).
pub(super) async fn chat(
    surface: Protocol,
    state: AppState,
    id: RequestId,
    headers: HeaderMap,
    body: Body,
    decode: fn(&JsonMap) -> Result<ChatRequest, GatewayError>,
) -> Response {
    let rt = state.runtime.load_full();
    let (observed, Admitted { raw, req, plan }) =
        match admit_observed((surface, "chat"), &state, &rt, &id, &headers, body, decode).await {
            Ok(v) => v,
            Err(resp) => return resp,
        };
    let routing = Instant::now();
    let exec = execute(&plan, |a| chat_attempt(&state, &req, Some(&raw), a)).await;
    let Routed { observed, value: outcome, route, target, headers: mut routed } =
        match routed(surface, observed, exec, routing.elapsed()) {
            Ok(v) => v,
            Err(resp) => return *resp,
        };
    let passthrough = target.provider.protocol() == surface;
    let capture = observed.captures_bodies();
    let resp = match outcome {
        ChatOutcome::Complete { response, body } => {
            let mut body = match (passthrough, surface) {
                (true, _) => body,
                (false, Protocol::Anthropic) => anthropic::encode_messages_response(&response),
                (false, _) => openai::encode_chat_response(&response),
            };
            let cost = target.price.zip(response.usage).map(|(p, u)| p.cost(&u).total);
            if let Some(usd) = cost {
                add_cost(&mut body, usd);
                cost_header(&mut routed, usd);
            }
            let (resp, answer) = json_answer(&body, Answer::of_chat(&response), capture);
            observed.finish_ok(response.usage.as_ref(), answer);
            resp
        }
        ChatOutcome::Stream(events) => {
            let wire = match surface {
                Protocol::Anthropic => ClientWire::anthropic(&req.model),
                _ => ClientWire::openai(req.stream_usage),
            };
            let relay = Relay::new(wire, passthrough, capture, target.price);
            let recover = route.recover_streams && continuable(&req);
            let recovery = recover.then(|| Recovery { state: state.clone(), req, plan, used: false });
            let mut resp = Response::new(sse_body(events, target, relay, recovery, observed));
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert("x-accel-buffering", HeaderValue::from_static("no"));
            resp
        }
    };
    with_headers(resp, routed)
}

/// An execution that answered: its answer, who gave it, and the response headers so far (who
/// answered, the caller's limits).
struct Routed<T> {
    observed: Observed,
    value: T,
    route: Arc<ModelRoute>,
    target: Arc<Target>,
    headers: HeaderMap,
}

/// Records the execution in the request's observation and splits it: what answered, or the
/// error response (counted and logged) with the routing headers, so a client sees what was
/// tried.
fn routed<T>(
    surface: Protocol,
    mut observed: Observed,
    exec: Execution<T>,
    routing: Duration,
) -> Result<Routed<T>, Box<Response>> {
    observed.routed(&exec, routing);
    let mut headers = routing_headers(&exec);
    headers.extend(observed.quota_headers());
    let error = match (exec.result, exec.answered) {
        (Ok(value), Some((route, target))) => return Ok(Routed { observed, value, route, target, headers }),
        (Err(e), _) => e,
        (Ok(_), None) => GatewayError::upstream(502, "The router returned an answer without its target."),
    };
    observed.finish_err(&error);
    Err(Box::new(with_headers(SurfaceError::new(surface, error).into_response(), headers)))
}

fn with_headers(mut resp: Response, headers: HeaderMap) -> Response {
    resp.headers_mut().extend(headers);
    resp
}

/// Whether a broken answer to this request could be continued soundly: one choice, free text.
/// A JSON-schema answer continued by another model may not parse; several choices cannot be
/// stitched; tool calls are checked as they stream.
fn continuable(req: &ChatRequest) -> bool {
    req.sampling.n.unwrap_or(1) == 1 && !matches!(req.response_format, Some(ResponseFormat::JsonSchema { .. }))
}

/// A stream that broke after it began can be continued on another attempt.
struct Recovery {
    state: AppState,
    req: ChatRequest,
    plan: Plan,
    used: bool,
}

/// The client's SSE body: the relay's frames for each upstream item, a continuation if the
/// upstream breaks and recovery is on, and `[DONE]` at a clean end.
fn sse_body(
    events: EventStream,
    target: Arc<Target>,
    relay: Relay,
    recovery: Option<Recovery>,
    observed: Observed,
) -> Body {
    struct Pump {
        /// Finished when the stream ends; dropped unfinished if the client leaves first.
        observed: Option<Observed>,
        current: EventStream,
        /// The target streaming now: a break mid-stream counts against its health.
        target: Arc<Target>,
        relay: Relay,
        recovery: Option<Recovery>,
        pending: VecDeque<Bytes>,
        done: bool,
    }
    impl Drop for Pump {
        /// The client left first: the record still gets what was sent and the usage seen.
        fn drop(&mut self) {
            if let Some(mut observed) = self.observed.take() {
                let usage = self.relay.usage;
                observed.answered(usage.as_ref(), self.relay.answer());
            }
        }
    }
    let pump = Pump {
        observed: Some(observed),
        current: events,
        target,
        relay,
        recovery,
        pending: VecDeque::new(),
        done: false,
    };
    let stream = futures_util::stream::unfold(pump, |mut p| async move {
        loop {
            if let Some(frame) = p.pending.pop_front() {
                // A stream that begins before its first token (`stream_start: immediately`)
                // sends its opening frames first; the time to first token is the content's.
                if let Some(observed) = p.observed.as_mut().filter(|_| p.relay.content_sent) {
                    observed.first_token();
                }
                return Some((Ok::<Bytes, std::convert::Infallible>(frame), p));
            }
            if p.done {
                if let Some(mut observed) = p.observed.take() {
                    let usage = p.relay.usage;
                    match p.relay.error.take() {
                        Some(e) => {
                            observed.answered(usage.as_ref(), p.relay.answer());
                            observed.finish_err(&e);
                        }
                        None => observed.finish_ok(usage.as_ref(), p.relay.answer()),
                    }
                }
                return None;
            }
            match p.current.next().await {
                None => {
                    let closing = p.relay.close();
                    p.pending.extend(closing);
                    p.done = true;
                }
                Some(item) => {
                    let error = item.events.iter().find_map(|e| match e {
                        StreamEvent::Error(e) => Some(e.message.clone()),
                        _ => None,
                    });
                    if let Some(why) = &error {
                        p.target.health.record_failure();
                        if let Some(observed) = &mut p.observed {
                            observed.stream_broke(why);
                        }
                    }
                    // The continuation is boxed: inline, its routing future (7 KB) would sit in
                    // every open stream's state, used or not.
                    if error.is_some()
                        && p.relay.continuable()
                        && let Some((next, target)) = Box::pin(continue_stream(
                            &mut p.recovery,
                            &p.target,
                            &p.relay.text_sent,
                            p.observed.as_mut(),
                        ))
                        .await
                    {
                        p.current = next;
                        p.relay.price = target.price;
                        p.target = target;
                        p.relay.passthrough = false;
                        continue;
                    }
                    let frames = p.relay.frames(item);
                    p.pending.extend(frames);
                    p.done = p.relay.ended;
                }
            }
        }
    });
    Body::from_stream(stream)
}

/// Asks for the rest of a broken answer: the conversation, the partial answer as the assistant's
/// turn, and a request to go on from there. Used once per request.
async fn continue_stream(
    recovery: &mut Option<Recovery>,
    broken: &Arc<Target>,
    text_sent: &str,
    observed: Option<&mut Observed>,
) -> Option<(EventStream, Arc<Target>)> {
    let r = recovery.as_mut().filter(|r| !r.used)?;
    r.used = true;
    let mut req = r.req.clone();
    if !text_sent.is_empty() {
        req.messages.push(Message::new(Role::Assistant, vec![ContentPart::text(text_sent)]));
        req.messages.push(Message::new(
            Role::User,
            vec![ContentPart::text(
                "Your previous message was cut off. Continue it exactly where it stopped, without repeating anything \
                 and without any preamble.",
            )],
        ));
    }
    let state = r.state.clone();
    let exec = execute_avoiding(&r.plan, std::slice::from_ref(broken), |a| chat_attempt(&state, &req, None, a)).await;
    if let Some(observed) = observed {
        observed.continued(&exec);
    }
    match (exec.result, exec.answered) {
        (Ok(ChatOutcome::Stream(s)), Some((_, target))) => Some((s, target)),
        _ => None,
    }
}

/// The client's stream protocol, and what writing it needs.
enum ClientWire {
    OpenAi {
        encoder: openai::ChunkEncoder,
        include_usage: bool,
        role_sent: bool,
    },
    Anthropic {
        encoder: anthropic::EventEncoder,
        /// The stop sequence that ended a passthrough answer, for the closing events.
        stop_sequence: Option<String>,
    },
}

impl ClientWire {
    fn openai(include_usage: bool) -> ClientWire {
        ClientWire::OpenAi { encoder: openai::ChunkEncoder::new(include_usage), include_usage, role_sent: false }
    }

    fn anthropic(model: &str) -> ClientWire {
        ClientWire::Anthropic { encoder: anthropic::EventEncoder::new(model), stop_sequence: None }
    }
}

/// Turns upstream stream items into the client's SSE frames.
struct Relay {
    wire: ClientWire,
    /// The upstream speaks the client's protocol: forward its frames unchanged.
    passthrough: bool,
    /// The end (`[DONE]`, `message_stop`) or an error was sent; nothing follows.
    ended: bool,
    /// The text the client has received, for a continuation.
    text_sent: String,
    /// Content (text, a tool call, reasoning, a refusal or the finish) has been sent.
    content_sent: bool,
    /// Tool calls or several choices cannot be continued soundly.
    continuable: bool,
    /// The usage the upstream reported, and the error that ended the stream, for metrics.
    usage: Option<Usage>,
    error: Option<GatewayError>,
    /// What the record keeps: finish reasons, the answering model, bytes sent, and the whole
    /// answer when bodies are captured.
    finish_reasons: Vec<String>,
    response_model: Option<String>,
    bytes_sent: u64,
    transcript: Option<StreamAssembler>,
    /// The streaming target's price: the usage chunk gets `usage.cost`.
    price: Option<Price>,
}

impl Relay {
    fn new(wire: ClientWire, passthrough: bool, capture: bool, price: Option<Price>) -> Relay {
        Relay {
            wire,
            price,
            finish_reasons: Vec::new(),
            response_model: None,
            bytes_sent: 0,
            transcript: capture.then(StreamAssembler::default),
            passthrough,
            ended: false,
            text_sent: String::new(),
            content_sent: false,
            continuable: true,
            usage: None,
            error: None,
        }
    }

    fn continuable(&self) -> bool {
        self.continuable && !self.ended
    }

    /// What the client got, for the record.
    fn answer(&mut self) -> Answer {
        let whole = self.transcript.take().map(StreamAssembler::finish);
        let body = whole.map(|r| match self.wire {
            ClientWire::Anthropic { .. } => anthropic::encode_messages_response(&r).to_string(),
            ClientWire::OpenAi { .. } => openai::encode_chat_response(&r).to_string(),
        });
        Answer {
            finish_reasons: std::mem::take(&mut self.finish_reasons),
            response_model: self.response_model.take(),
            bytes: self.bytes_sent,
            body,
        }
    }

    /// The frames that end a stream the upstream ended cleanly: `[DONE]`, or Anthropic's
    /// closing block, stop reason and `message_stop` (unless the upstream sent them itself).
    fn close(&mut self) -> Vec<Bytes> {
        if self.ended {
            return Vec::new();
        }
        self.ended = true;
        let out: Vec<Bytes> = match &mut self.wire {
            ClientWire::OpenAi { .. } => vec![sse::encode(None, "[DONE]")],
            ClientWire::Anthropic { encoder, stop_sequence } => {
                let mut frames = encoder.finish(stop_sequence.as_deref());
                if let (Some(price), Some(u)) = (self.price, self.usage) {
                    for (name, data) in &mut frames {
                        if *name == "message_delta" {
                            add_cost(data, price.cost(&u).total);
                        }
                    }
                }
                frames.iter().map(|(name, data)| sse::encode(Some(name), &data.to_string())).collect()
            }
        };
        self.bytes_sent += out.iter().map(|f| f.len() as u64).sum::<u64>();
        out
    }

    fn frames(&mut self, item: StreamItem) -> Vec<Bytes> {
        if self.ended {
            return Vec::new();
        }
        let mut out = Vec::new();
        for ev in &item.events {
            if let Some(t) = &mut self.transcript {
                t.push(ev);
            }
            self.content_sent |= ev.is_content();
            match ev {
                StreamEvent::Start { model, .. } if self.response_model.is_none() && !model.is_empty() => {
                    self.response_model = Some(model.clone());
                }
                StreamEvent::Text { choice: 0, text } => self.text_sent.push_str(text),
                // Only free text can be continued: not tool calls, other choices, reasoning
                // (it would be sent again from the start), or an answer that already finished.
                StreamEvent::Text { .. }
                | StreamEvent::ToolCall { .. }
                | StreamEvent::Reasoning { .. }
                | StreamEvent::RedactedReasoning { .. }
                | StreamEvent::Refusal { .. } => self.continuable = false,
                StreamEvent::Finish { reason, .. } => {
                    self.continuable = false;
                    self.finish_reasons.push(finish_name(reason));
                }
                StreamEvent::Error(e) => {
                    self.ended = true;
                    self.error = Some(e.clone());
                }
                StreamEvent::Usage(u) => self.usage = Some(*u),
                _ => {}
            }
        }
        let price = self.price;
        match (&mut self.wire, item.raw) {
            (ClientWire::OpenAi { encoder, include_usage, role_sent }, Some(raw)) if self.passthrough => {
                // The encoder learns the answer's id from the upstream's first chunk, so that a
                // continuation (re-encoded) keeps it.
                for ev in item.events.iter().filter(|e| matches!(e, StreamEvent::Start { .. })) {
                    encoder.encode(ev);
                }
                *role_sent |= item.events.iter().any(|e| matches!(e, StreamEvent::Role { .. }));
                if raw.trim() == "[DONE]" {
                    self.ended = true;
                    out.push(sse::encode(None, "[DONE]"));
                } else if *include_usage || !is_usage_only(&item.events) {
                    let priced = priced_usage(price, &item.events).and_then(|cost| with_cost(&raw, cost));
                    out.push(sse::encode(None, priced.as_deref().unwrap_or(&raw)));
                }
            }
            (ClientWire::Anthropic { stop_sequence, encoder }, Some(raw)) if self.passthrough => {
                // The encoder follows what the client receives (its output is not sent), so a
                // continuation written by it goes on in the same block.
                for ev in &item.events {
                    drop(encoder.encode(ev));
                }
                // Anthropic names each event by its data's `type`; only `message_delta` (the stop
                // sequence, and the usage the cost is added to) is read again.
                let name = event_name(&raw);
                let priced = match (name.as_str(), priced_usage(price, &item.events)) {
                    ("message_delta", cost) => {
                        let mut data: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
                        if let Some(s) = data.pointer("/delta/stop_sequence").and_then(Value::as_str) {
                            *stop_sequence = Some(s.to_string());
                        }
                        cost.map(|usd| {
                            add_cost(&mut data, usd);
                            data.to_string()
                        })
                    }
                    _ => None,
                };
                out.push(sse::encode(Some(&name), priced.as_deref().unwrap_or(&raw)));
                if name == "message_stop" || name == "error" {
                    self.ended = true;
                }
            }
            (ClientWire::OpenAi { encoder, role_sent, .. }, _) => {
                for ev in &item.events {
                    if matches!(ev, StreamEvent::Role { .. }) {
                        if *role_sent {
                            continue;
                        }
                        *role_sent = true;
                    }
                    if let Some(mut chunk) = encoder.encode(ev) {
                        if let (StreamEvent::Usage(u), Some(price)) = (ev, price) {
                            add_cost(&mut chunk, price.cost(u).total);
                        }
                        out.push(sse::encode(None, &chunk.to_string()));
                    }
                }
            }
            (ClientWire::Anthropic { encoder, .. }, _) => {
                for ev in &item.events {
                    for (name, data) in encoder.encode(ev) {
                        out.push(sse::encode(Some(name), &data.to_string()));
                    }
                }
            }
        }
        self.bytes_sent += out.iter().map(|f| f.len() as u64).sum::<u64>();
        out
    }
}

/// An Anthropic event's name: its data's `type`, read without parsing the whole event.
fn event_name(raw: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Typed<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    serde_json::from_str::<Typed>(raw).map_or_else(|_| "message".to_string(), |t| t.kind.into_owned())
}

/// The cost of the usage in these events, when the target is priced.
fn priced_usage(price: Option<Price>, events: &[StreamEvent]) -> Option<f64> {
    let price = price?;
    events.iter().find_map(|e| match e {
        StreamEvent::Usage(u) => Some(price.cost(u).total),
        _ => None,
    })
}

/// The answer's cost in dollars as `usage.cost` (OpenRouter's field; SDKs keep unknown fields).
fn add_cost(body: &mut Value, usd: f64) {
    if let Some(usage) = body.get_mut("usage").and_then(Value::as_object_mut) {
        usage.insert("cost".into(), serde_json::json!(usd));
    }
}

/// A passthrough chunk with `usage.cost` added, or `None` to send it unchanged.
fn with_cost(raw: &str, usd: f64) -> Option<String> {
    let mut chunk: Value = serde_json::from_str(raw).ok()?;
    add_cost(&mut chunk, usd);
    Some(chunk.to_string())
}

/// `x-switchyard-cost-usd` for a whole answer from a priced target.
fn cost_header(headers: &mut HeaderMap, usd: f64) {
    if let Ok(v) = HeaderValue::from_str(&format!("{usd:.9}")) {
        headers.insert("x-switchyard-cost-usd", v);
    }
}

/// The usage chunk the gateway asked for on its own behalf.
fn is_usage_only(events: &[StreamEvent]) -> bool {
    events.iter().any(|e| matches!(e, StreamEvent::Usage(_)))
        && events.iter().all(|e| matches!(e, StreamEvent::Usage(_) | StreamEvent::Start { .. }))
}

pub async fn embeddings(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let rt = state.runtime.load_full();
    let (observed, Admitted { raw, req, plan }) = match admit_observed(
        (Protocol::OpenAi, "embeddings"),
        &state,
        &rt,
        &id,
        &headers,
        body,
        openai::decode_embedding_request,
    )
    .await
    {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let client = &state.client;
    let routing = Instant::now();
    let exec = execute(&plan, |a: Attempt| {
        let (req, raw) = (&req, &raw);
        async move {
            let provider = &a.target.provider;
            let passthrough = (provider.protocol() == Protocol::OpenAi).then_some(raw);
            switchyard_providers::embeddings(client, provider, &a.target.model, req, passthrough, &a.route.timeouts)
                .await
        }
    })
    .await;
    let Routed { observed, value: (response, body), target, headers: mut routed, .. } =
        match routed(Protocol::OpenAi, observed, exec, routing.elapsed()) {
            Ok(v) => v,
            Err(resp) => return *resp,
        };
    let passthrough = target.provider.protocol() == Protocol::OpenAi;
    let mut body = if passthrough { body } else { openai::encode_embedding_response(&response) };
    if let Some(price) = target.price {
        let usd = price.cost(&response.usage).total;
        add_cost(&mut body, usd);
        cost_header(&mut routed, usd);
    }
    let answer = Answer { response_model: Some(response.model.clone()).filter(|m| !m.is_empty()), ..Answer::default() };
    let (resp, answer) = json_answer(&body, answer, observed.captures_bodies());
    observed.finish_ok(Some(&response.usage), answer);
    with_headers(resp, routed)
}

/// The public model names this key may use.
pub async fn models(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let rt = state.runtime.load();
    let principal = match authenticate(&state, &rt, &headers) {
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

#[cfg(test)]
mod tests {
    use switchyard_types::FinishReason;

    use super::*;

    fn item(events: Vec<StreamEvent>) -> StreamItem {
        StreamItem { events, raw: None }
    }

    #[test]
    fn only_unfinished_free_text_is_continuable() {
        let mut relay = Relay::new(ClientWire::openai(false), false, false, None);
        relay.frames(item(vec![StreamEvent::Text { choice: 0, text: "Hello".into() }]));
        assert!(relay.continuable());
        assert_eq!(relay.text_sent, "Hello");
        relay.frames(item(vec![StreamEvent::Finish { choice: 0, reason: FinishReason::Stop }]));
        assert!(!relay.continuable(), "a finished answer is not continued");

        let mut relay = Relay::new(ClientWire::openai(false), false, false, None);
        relay.frames(item(vec![StreamEvent::Reasoning { choice: 0, text: "hmm".into(), signature: None }]));
        assert!(!relay.continuable(), "reasoning would be sent again");

        let mut relay = Relay::new(ClientWire::openai(false), false, false, None);
        relay.frames(item(vec![StreamEvent::ToolCall {
            choice: 0,
            index: 0,
            id: Some("c".into()),
            name: Some("f".into()),
            arguments: String::new(),
        }]));
        assert!(!relay.continuable(), "tool calls cannot be stitched");
    }

    #[test]
    fn usage_and_errors_are_kept_for_metrics() {
        let mut relay = Relay::new(ClientWire::openai(true), false, false, None);
        relay.frames(item(vec![StreamEvent::Usage(Usage { input_tokens: 3, output_tokens: 4, ..Default::default() })]));
        assert_eq!(relay.usage.map(|u| u.total_tokens()), Some(7));
        let frames = relay.frames(item(vec![StreamEvent::Error(GatewayError::upstream(502, "boom"))]));
        assert_eq!(frames.len(), 1, "the error is sent");
        assert!(relay.ended && relay.error.is_some());
        assert!(relay.frames(item(vec![StreamEvent::Text { choice: 0, text: "late".into() }])).is_empty());
    }
}
