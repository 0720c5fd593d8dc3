//! OTLP trace export: each [`RequestRecord`] becomes one `SERVER` span for the client call and
//! one `CLIENT` span per upstream attempt, sent over OTLP gRPC or HTTP/protobuf.
//!
//! The spans are built from the record after the call has ended, not from live spans opened on
//! the request path. The record is already the one source of truth for the request log and
//! `/admin/logs`, so a trace can never disagree with the log about a call's timing, attempts,
//! usage or cost. It also keeps tracing off the hot path: the request path only fills the record,
//! and [`OtlpExporter::export`] runs in the background batch writer, where a slow or dead
//! collector delays nothing but the next batch. The price is that a span appears only once its
//! call has finished, which is what a backend shows anyway.
//!
//! Only the generated OTLP protobuf types are used, not the OpenTelemetry SDK's tracer and span
//! processors: the record already holds every timestamp and id, so there is nothing to measure,
//! buffer or batch a second time.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use switchyard_types::{AttemptEntry, RequestRecord, Usage};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// The instrumentation scope every span is reported under.
pub const SCOPE_NAME: &str = "switchyard";

/// The path OTLP/HTTP collectors serve traces on.
const HTTP_TRACES_PATH: &str = "/v1/traces";

/// Records per export request. Collectors commonly refuse gRPC messages over 4 MiB; a record
/// with a few attempts encodes to one or two kilobytes, so this stays well below that.
const MAX_RECORDS_PER_REQUEST: usize = 512;

/// W3C trace flags: bit 0 is `sampled`. Every exported span was sampled.
const FLAG_SAMPLED: u32 = 0x01;
/// OTLP span flags: whether the parent is remote is known (bit 8), and it is (bit 9).
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// The wire protocol to the collector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum OtlpProtocol {
    /// OTLP/gRPC, conventionally on port 4317.
    #[default]
    Grpc,
    /// OTLP/HTTP with protobuf bodies, conventionally on port 4318.
    HttpProtobuf,
}

impl OtlpProtocol {
    /// The names `OTEL_EXPORTER_OTLP_PROTOCOL` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::HttpProtobuf => "http/protobuf",
        }
    }

    pub fn parse(s: &str) -> Option<OtlpProtocol> {
        match s {
            "grpc" => Some(OtlpProtocol::Grpc),
            "http/protobuf" => Some(OtlpProtocol::HttpProtobuf),
            _ => None,
        }
    }
}

impl FromStr for OtlpProtocol {
    type Err = TraceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OtlpProtocol::parse(s).ok_or_else(|| TraceError::Protocol(s.to_string()))
    }
}

impl fmt::Display for OtlpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where and how traces are sent.
#[derive(Clone, PartialEq)]
pub struct TraceConfig {
    /// The collector: `http://host:4317` for gRPC; for HTTP the base URL (`/v1/traces` is
    /// appended unless it is already there).
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    /// The share of new traces (no caller parent) exported, in `0..=1`.
    pub sample_rate: f64,
    /// Sent with every export: HTTP headers, or gRPC metadata. Typically authentication.
    pub headers: Vec<(String, String)>,
    /// The resource's `service.name`.
    pub service_name: String,
    /// The most one [`OtlpExporter::export`] call may take, connecting included.
    pub timeout: Duration,
}

impl Default for TraceConfig {
    /// The OTLP defaults: gRPC to a local collector, 10 s timeout, everything sampled.
    fn default() -> Self {
        TraceConfig {
            endpoint: "http://localhost:4317".to_string(),
            protocol: OtlpProtocol::Grpc,
            sample_rate: 1.0,
            headers: Vec::new(),
            service_name: SCOPE_NAME.to_string(),
            timeout: Duration::from_secs(10),
        }
    }
}

// By hand, because header values are usually credentials and configs end up in logs.
impl fmt::Debug for TraceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("TraceConfig")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("sample_rate", &self.sample_rate)
            .field("headers", &header_names)
            .field("service_name", &self.service_name)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("unknown OTLP protocol {0:?} (expected \"grpc\" or \"http/protobuf\")")]
    Protocol(String),
    #[error("invalid OTLP endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("invalid OTLP header {name:?}: {reason}")]
    Header { name: String, reason: String },
    #[error("trace sample rate {0} is not within 0..=1")]
    SampleRate(f64),
    #[error("OTLP export timed out after {0:?}")]
    Timeout(Duration),
    #[error("OTLP gRPC export failed: {code:?}: {message}")]
    Grpc { code: tonic::Code, message: String },
    #[error("OTLP HTTP export failed: {0}")]
    Http(String),
    #[error("OTLP HTTP export got status {status}: {body}")]
    HttpStatus { status: u16, body: String },
    #[error("the collector rejected {rejected} spans: {message}")]
    Rejected { rejected: i64, message: String },
}

impl TraceError {
    /// Whether sending the same batch again may succeed, by the OTLP spec's retry rules. A
    /// partial rejection is not: the collector has kept the rest and would keep it twice.
    pub fn is_retryable(&self) -> bool {
        match self {
            // Transport failures: the collector may be back by the next batch.
            TraceError::Timeout(_) | TraceError::Http(_) => true,
            TraceError::Grpc { code, .. } => matches!(
                code,
                tonic::Code::Cancelled
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Aborted
                    | tonic::Code::OutOfRange
                    | tonic::Code::Unavailable
                    | tonic::Code::DataLoss
            ),
            TraceError::HttpStatus { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            TraceError::Protocol(_)
            | TraceError::Endpoint { .. }
            | TraceError::Header { .. }
            | TraceError::SampleRate(_)
            | TraceError::Rejected { .. } => false,
        }
    }
}

/// Sends records as spans to one collector. Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct OtlpExporter {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: String,
    service_name: String,
    timeout: Duration,
    sampler: Sampler,
    transport: Transport,
}

// One per exporter, behind its `Arc`: the size of the gRPC variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Transport {
    Grpc {
        endpoint: Endpoint,
        // Made on the first export rather than in `new`: a tonic channel spawns its worker on
        // the current Tokio runtime, and `new` may run before there is one (config loading).
        // The channel then lives on the runtime of that first export.
        channel: OnceLock<Channel>,
        metadata: MetadataMap,
    },
    Http {
        client: reqwest::Client,
        url: reqwest::Url,
        headers: reqwest::header::HeaderMap,
    },
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match self.inner.transport {
            Transport::Grpc { .. } => OtlpProtocol::Grpc,
            Transport::Http { .. } => OtlpProtocol::HttpProtobuf,
        };
        f.debug_struct("OtlpExporter")
            .field("endpoint", &self.inner.endpoint)
            .field("protocol", &protocol)
            .field("sampler", &self.inner.sampler)
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// Checks the config and prepares the client. Connects to nothing: the gRPC channel is made
    /// lazily, so a collector that is down at start-up costs failed exports, not a failed start.
    pub fn new(cfg: TraceConfig) -> Result<Self, TraceError> {
        let sampler = Sampler::new(cfg.sample_rate)?;
        let transport = match cfg.protocol {
            OtlpProtocol::Grpc => grpc_transport(&cfg)?,
            OtlpProtocol::HttpProtobuf => http_transport(&cfg)?,
        };
        Ok(OtlpExporter {
            inner: Arc::new(Inner {
                endpoint: cfg.endpoint,
                service_name: cfg.service_name,
                timeout: cfg.timeout,
                sampler,
                transport,
            }),
        })
    }

    /// Whether `record`'s trace is to be exported.
    ///
    /// A caller that sent a `traceparent` has already decided for its whole trace, and a trace
    /// with holes is worse than none, so its flag (`record.sampled`) wins over the local rate.
    /// Otherwise the trace id decides, as OpenTelemetry's `TraceIdRatioBased` does, so any other
    /// service sampling the same trace id at the same rate makes the same choice.
    pub fn wants(&self, record: &RequestRecord) -> bool {
        if record.parent_span_id.is_some() {
            return record.sampled;
        }
        match parse_id::<16>(&record.trace_id) {
            Some(trace_id) => self.inner.sampler.samples(&trace_id),
            None => false,
        }
    }

    /// Sends the spans of the records [`wants`](Self::wants) picks. Returns once the collector
    /// has answered, or with [`TraceError::Timeout`] when the whole export (connecting,
    /// every request) took longer than the configured timeout. Does not retry: see
    /// [`TraceError::is_retryable`]. A large batch goes out in several requests, so on an error
    /// some of its spans may have arrived; sending it again repeats them with the same ids.
    pub async fn export(&self, records: &[RequestRecord]) -> Result<(), TraceError> {
        let sampled: Vec<&RequestRecord> = records.iter().filter(|r| self.wants(r)).collect();
        if sampled.is_empty() {
            return Ok(());
        }
        let timeout = self.inner.timeout;
        let send_all = async {
            for chunk in sampled.chunks(MAX_RECORDS_PER_REQUEST) {
                let request = build_request(chunk.iter().copied(), &self.inner.service_name);
                if request.resource_spans.iter().all(|rs| rs.scope_spans.iter().all(|ss| ss.spans.is_empty())) {
                    continue;
                }
                self.send(request).await?;
            }
            Ok(())
        };
        tokio::time::timeout(timeout, send_all).await.map_err(|_| TraceError::Timeout(timeout))?
    }

    async fn send(&self, request: ExportTraceServiceRequest) -> Result<(), TraceError> {
        let response = match &self.inner.transport {
            Transport::Grpc { endpoint, channel, metadata } => {
                let channel = channel.get_or_init(|| endpoint.connect_lazy()).clone();
                let mut request = tonic::Request::from_parts(metadata.clone(), Default::default(), request);
                // Tells the collector how long we wait, so it can give up when we have.
                request.set_timeout(self.inner.timeout);
                TraceServiceClient::new(channel)
                    .export(request)
                    .await
                    .map_err(|status| grpc_error(&status, self.inner.timeout))?
                    .into_inner()
            }
            Transport::Http { client, url, headers } => {
                let response = client
                    .post(url.clone())
                    .headers(headers.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
                    .body(request.encode_to_vec())
                    .send()
                    .await
                    .map_err(http_error)?;
                let status = response.status();
                let body = response.bytes().await.map_err(http_error)?;
                if !status.is_success() {
                    return Err(TraceError::HttpStatus { status: status.as_u16(), body: body_excerpt(&body) });
                }
                // An empty or undecodable success body is still a success: the spec makes the
                // body optional in practice, and the spans were accepted.
                ExportTraceServiceResponse::decode(body).unwrap_or_default()
            }
        };
        match response.partial_success {
            Some(partial) if partial.rejected_spans > 0 => {
                Err(TraceError::Rejected { rejected: partial.rejected_spans, message: partial.error_message })
            }
            _ => Ok(()),
        }
    }
}

/// The message with its causes: a transport error's own text ("error sending request") rarely
/// says what went wrong, its sources ("connection refused") do.
fn with_sources(message: &str, mut source: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut out = message.to_string();
    while let Some(e) = source {
        let text = e.to_string();
        // Some layers repeat their cause in their own message.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

fn grpc_error(status: &tonic::Status, timeout: Duration) -> TraceError {
    // tonic enforces the request's `grpc-timeout` itself, and that is our own deadline: whichever
    // of the two fires first, the export timed out.
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<tonic::TimeoutExpired>() {
            return TraceError::Timeout(timeout);
        }
        source = e.source();
    }
    TraceError::Grpc { code: status.code(), message: with_sources(status.message(), std::error::Error::source(status)) }
}

/// The URL is left out: an endpoint can carry credentials, and errors end up in logs.
fn http_error(e: reqwest::Error) -> TraceError {
    let e = e.without_url();
    TraceError::Http(with_sources(&e.to_string(), std::error::Error::source(&e)))
}

fn grpc_transport(cfg: &TraceConfig) -> Result<Transport, TraceError> {
    let bad_endpoint = |reason: String| TraceError::Endpoint { endpoint: cfg.endpoint.clone(), reason };
    let mut endpoint = Endpoint::from_shared(cfg.endpoint.clone()).map_err(|e| bad_endpoint(e.to_string()))?;
    match endpoint.uri().scheme_str() {
        Some("http") => {}
        Some("https") => {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_webpki_roots())
                .map_err(|e| bad_endpoint(e.to_string()))?;
        }
        _ => return Err(bad_endpoint("expected an http:// or https:// URL".to_string())),
    }
    // The channel connects in its own task, which the export's timeout does not stop: without
    // this, a collector that drops SYNs would hold the channel (and every later export queued on
    // it) until the OS gives up on the connection.
    let endpoint = endpoint.connect_timeout(cfg.timeout);
    let mut metadata = MetadataMap::new();
    for (name, value) in &cfg.headers {
        let bad_header = |reason: &str| TraceError::Header { name: name.clone(), reason: reason.to_string() };
        // gRPC metadata keys are lowercase on the wire; `-bin` keys would need binary values.
        let key = AsciiMetadataKey::from_str(&name.to_ascii_lowercase())
            .map_err(|_| bad_header("not a valid gRPC metadata key"))?;
        let value =
            AsciiMetadataValue::try_from(value.as_str()).map_err(|_| bad_header("value is not visible ASCII"))?;
        metadata.append(key, value);
    }
    Ok(Transport::Grpc { endpoint, channel: OnceLock::new(), metadata })
}

fn http_transport(cfg: &TraceConfig) -> Result<Transport, TraceError> {
    let bad_endpoint = |reason: String| TraceError::Endpoint { endpoint: cfg.endpoint.clone(), reason };
    let url = http_traces_url(&cfg.endpoint);
    let url = reqwest::Url::parse(&url).map_err(|e| bad_endpoint(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad_endpoint("expected an http:// or https:// URL".to_string()));
    }
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &cfg.headers {
        let bad_header = |reason: &str| TraceError::Header { name: name.clone(), reason: reason.to_string() };
        let key = reqwest::header::HeaderName::from_str(name).map_err(|_| bad_header("not a valid header name"))?;
        let value =
            reqwest::header::HeaderValue::from_str(value).map_err(|_| bad_header("not a valid header value"))?;
        headers.append(key, value);
    }
    // No client timeouts: `export` bounds the whole call, and dropping a reqwest future aborts
    // its connection attempt too.
    let client = reqwest::Client::builder().build().map_err(|e| bad_endpoint(e.to_string()))?;
    Ok(Transport::Http { client, url, headers })
}

/// `{endpoint}/v1/traces`, unless the endpoint already names the traces path (as
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` does).
fn http_traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with(HTTP_TRACES_PATH) { base.to_string() } else { format!("{base}{HTTP_TRACES_PATH}") }
}

/// The start of an error body, if it is text: collectors answer either a message or a
/// protobuf `google.rpc.Status`, and only the former is worth a log line.
fn body_excerpt(body: &[u8]) -> String {
    const MAX: usize = 256;
    match std::str::from_utf8(body) {
        Ok(text) => text.chars().take(MAX).collect(),
        Err(_) => format!("({} bytes of binary body)", body.len()),
    }
}

/// OpenTelemetry's `TraceIdRatioBased` decision: the trace id's lower 8 bytes, shifted to 63
/// bits, against the rate scaled to 2^63. The same as the Rust SDK's, so a Switchyard and an
/// SDK-instrumented service at the same rate agree on every trace.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sampler {
    /// Traces whose 63-bit random part is below this are sampled.
    bound: u64,
    always: bool,
}

impl Sampler {
    fn new(rate: f64) -> Result<Sampler, TraceError> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(TraceError::SampleRate(rate));
        }
        // `as` saturates, and 1.0 gives 2^63, above every 63-bit value; `always` says so plainly.
        Ok(Sampler { bound: (rate * (1u64 << 63) as f64) as u64, always: rate >= 1.0 })
    }

    fn samples(&self, trace_id: &[u8; 16]) -> bool {
        if self.always {
            return true;
        }
        let mut lower = [0u8; 8];
        lower.copy_from_slice(&trace_id[8..]);
        (u64::from_be_bytes(lower) >> 1) < self.bound
    }
}

/// The spans of `records`, all of them (no sampling), under one resource and scope. Records
/// whose ids are not valid W3C ids are left out.
pub fn spans(records: &[RequestRecord], service_name: &str) -> ExportTraceServiceRequest {
    build_request(records.iter(), service_name)
}

fn build_request<'a>(
    records: impl IntoIterator<Item = &'a RequestRecord>,
    service_name: &str,
) -> ExportTraceServiceRequest {
    let mut spans = Vec::new();
    for record in records {
        record_spans(record, &mut spans);
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![string("service.name", service_name)], ..Default::default() }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.to_string(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Appends the record's server span and its attempts' client spans; nothing if an id is bad.
fn record_spans(record: &RequestRecord, out: &mut Vec<Span>) {
    let Some(trace_id) = parse_id::<16>(&record.trace_id) else { return };
    let Some(span_id) = parse_id::<8>(&record.span_id) else { return };
    let parent = match &record.parent_span_id {
        // A parent we cannot read would orphan the span in the caller's trace; leave it out
        // like any other corrupt record.
        Some(parent) => match parse_id::<8>(parent) {
            Some(parent) => Some(parent),
            None => return,
        },
        None => None,
    };
    let received = record.received_at_us;
    let operation = if record.operation.is_empty() { "chat" } else { record.operation.as_str() };

    let mut attributes = vec![string("gen_ai.operation.name", operation)];
    push_opt(&mut attributes, "gen_ai.request.model", record.requested_model.as_deref());
    push_opt(&mut attributes, "gen_ai.provider.name", record.provider.as_deref());
    push_opt(
        &mut attributes,
        "gen_ai.response.model",
        record.response_model.as_deref().or(record.upstream_model.as_deref()),
    );
    if record.stream {
        attributes.push(kv("gen_ai.request.stream", Value::BoolValue(true)));
    }
    if let Some(usage) = &record.usage {
        push_usage(&mut attributes, usage);
    }
    if !record.finish_reasons.is_empty() {
        let values =
            record.finish_reasons.iter().map(|r| AnyValue { value: Some(Value::StringValue(r.clone())) }).collect();
        attributes.push(kv("gen_ai.response.finish_reasons", Value::ArrayValue(ArrayValue { values })));
    }
    if let Some(first_token) = record.first_token_us {
        attributes.push(kv("gen_ai.response.time_to_first_chunk", Value::DoubleValue(first_token as f64 / 1e6)));
    }
    push_opt(&mut attributes, "gen_ai.conversation.id", record.session.as_deref());
    attributes.push(kv("http.response.status_code", Value::IntValue(i64::from(record.status))));
    attributes.push(string("switchyard.request_id", &record.id));
    push_opt(&mut attributes, "switchyard.key", record.key.as_deref());
    push_opt(&mut attributes, "switchyard.team", record.team.as_deref());
    push_opt(&mut attributes, "switchyard.user", record.user.as_deref());
    if let Some(cost) = &record.cost {
        attributes.push(kv("switchyard.cost_usd", Value::DoubleValue(cost.total)));
    }
    let tried: Vec<(usize, &AttemptEntry)> =
        record.attempts.iter().enumerate().filter(|(_, a)| a.outcome != "skipped").collect();
    attributes.push(kv("switchyard.attempts", Value::IntValue(tried.len() as i64)));
    attributes.push(kv("switchyard.fallback", Value::BoolValue(record.fallback)));
    if let Some(overhead) = record.overhead_us {
        attributes.push(kv("switchyard.overhead_ms", Value::DoubleValue(overhead as f64 / 1e3)));
    }

    let status = if record.is_error() {
        // Our own error code when there is one, else the status code, as the HTTP conventions
        // do for `error.type`.
        let error_type = record.error_type.clone().unwrap_or_else(|| record.status.to_string());
        attributes.push(string("error.type", &error_type));
        let message = record.error_message.clone().unwrap_or(error_type);
        Some(Status { code: StatusCode::Error as i32, message })
    } else {
        None
    };

    let name = match &record.requested_model {
        Some(model) => format!("{operation} {model}"),
        None => operation.to_string(),
    };
    let start = unix_nanos(received);
    out.push(Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
        flags: FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | if parent.is_some() { FLAG_IS_REMOTE } else { 0 },
        name,
        kind: SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: unix_nanos(received.saturating_add(record.duration_us)).max(start),
        attributes,
        status,
        ..Default::default()
    });

    let server_id = u64::from_be_bytes(span_id);
    // Ids already in use in this trace as far as the record knows; a child must not reuse one.
    let mut taken = vec![server_id];
    if let Some(parent) = parent {
        taken.push(u64::from_be_bytes(parent));
    }
    for (index, attempt) in tried {
        let id = attempt_span_id(server_id, index, &taken);
        taken.push(id);
        out.push(attempt_span(record, attempt, operation, trace_id, span_id, id));
    }
}

fn attempt_span(
    record: &RequestRecord,
    attempt: &AttemptEntry,
    operation: &str,
    trace_id: [u8; 16],
    parent: [u8; 8],
    span_id: u64,
) -> Span {
    let mut attributes = vec![
        string("gen_ai.operation.name", operation),
        string("gen_ai.provider.name", &attempt.provider),
        string("gen_ai.request.model", &attempt.target_model),
        string("switchyard.route", &attempt.model),
        string("switchyard.attempt.outcome", &attempt.outcome),
    ];
    let mut status = None;
    match attempt.outcome.as_str() {
        "answered" => {
            push_opt(&mut attributes, "gen_ai.response.model", record.response_model.as_deref());
            if let Some(usage) = &record.usage {
                push_usage(&mut attributes, usage);
            }
        }
        "failed" => {
            // The reason is the provider's message: free text, so it goes in the status, and
            // `error.type` keeps the conventions' bounded `_OTHER`.
            attributes.push(string("error.type", "_OTHER"));
            let message = attempt.reason.clone().unwrap_or_default();
            status = Some(Status { code: StatusCode::Error as i32, message });
        }
        // A hedge that lost was cancelled on purpose: not an error.
        _ => {}
    }
    let start_us = record.received_at_us.saturating_add(attempt.start_us);
    let start = unix_nanos(start_us);
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_be_bytes().to_vec(),
        parent_span_id: parent.to_vec(),
        flags: FLAG_SAMPLED | FLAG_HAS_IS_REMOTE,
        name: format!("{operation} {}", attempt.target_model),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: unix_nanos(start_us.saturating_add(attempt.duration_us)).max(start),
        attributes,
        status,
        ..Default::default()
    }
}

/// A client span id derived from the server span's id and the attempt's index, rather than
/// random: exporting the same record twice (a retried batch) then yields the same spans, which
/// backends merge instead of showing each attempt twice.
fn attempt_span_id(server: u64, index: usize, taken: &[u64]) -> u64 {
    let mut salt = index as u64;
    loop {
        // `mix` is a bijection, so distinct indices give distinct ids; the loop only runs again
        // on a (2^-64) clash with zero, the server span or the parent.
        let id = mix(server ^ mix(salt.wrapping_add(1)));
        if id != 0 && !taken.contains(&id) {
            return id;
        }
        // Far from the next attempts' salts, so a retry cannot take a later attempt's id.
        salt = salt.wrapping_add(1 << 32);
    }
}

/// SplitMix64's finaliser: a cheap bijective mixer on u64.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn push_usage(attributes: &mut Vec<KeyValue>, usage: &Usage) {
    attributes.push(int("gen_ai.usage.input_tokens", usage.input_tokens));
    attributes.push(int("gen_ai.usage.output_tokens", usage.output_tokens));
    // `Usage` cannot tell "none" from "not reported", and most providers report no cache or
    // reasoning tokens at all: a zero would claim a count nobody gave.
    for (key, n) in [
        ("gen_ai.usage.cache_read.input_tokens", usage.cache_read_tokens),
        ("gen_ai.usage.cache_creation.input_tokens", usage.cache_write_tokens),
        ("gen_ai.usage.reasoning.output_tokens", usage.reasoning_tokens),
    ] {
        if n > 0 {
            attributes.push(int(key, n));
        }
    }
}

/// A W3C id from lowercase or uppercase hex; `None` unless it is exactly `N` bytes and not all
/// zero (the all-zero id is W3C's "invalid").
fn parse_id<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let digits = hex.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    if out.iter().all(|&b| b == 0) { None } else { Some(out) }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Microseconds since the epoch as OTLP's nanoseconds: negative clamps to 0, overflow to max.
fn unix_nanos(us: i64) -> u64 {
    u64::try_from(us).unwrap_or(0).saturating_mul(1_000)
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn string(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.to_string()))
}

/// OTLP integers are signed; token counts beyond i64 are a broken provider, so they saturate.
fn int(key: &str, n: u64) -> KeyValue {
    kv(key, Value::IntValue(i64::try_from(n).unwrap_or(i64::MAX)))
}

fn push_opt(attributes: &mut Vec<KeyValue>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        attributes.push(string(key, value));
    }
}

#[cfg(test)]
mod tests {
    use switchyard_types::Cost;

    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";
    const PARENT: &str = "b7ad6b7169203331";

    fn attempt(model: &str, provider: &str, outcome: &str, start_us: i64, duration_us: i64) -> AttemptEntry {
        AttemptEntry {
            model: model.to_string(),
            provider: provider.to_string(),
            target_model: format!("{provider}-model"),
            outcome: outcome.to_string(),
            reason: (outcome == "failed" || outcome == "skipped").then(|| format!("{outcome} because")),
            start_us,
            duration_us,
        }
    }

    fn record() -> RequestRecord {
        RequestRecord {
            id: "0198c2a0-0000-7000-8000-000000000001".into(),
            trace_id: TRACE.into(),
            span_id: SPAN.into(),
            parent_span_id: None,
            sampled: true,
            received_at_us: 1_700_000_000_000_000,
            first_byte_us: Some(90_000),
            first_token_us: Some(120_000),
            duration_us: 500_000,
            upstream_us: Some(480_000),
            overhead_us: Some(1_500),
            key: Some("key-1".into()),
            team: Some("team-a".into()),
            user: Some("alice".into()),
            session: Some("conv-9".into()),
            surface: "openai".into(),
            operation: "chat".into(),
            requested_model: Some("smart".into()),
            provider: Some("openai".into()),
            upstream_model: Some("gpt-4o".into()),
            response_model: Some("gpt-4o-2024-08-06".into()),
            stream: true,
            status: 200,
            attempts: vec![
                attempt("smart", "anthropic", "skipped", 0, 0),
                attempt("smart", "azure", "failed", 1_000, 40_000),
                attempt("smart", "openai", "answered", 42_000, 450_000),
            ],
            fallback: true,
            finish_reasons: vec!["stop".into()],
            usage: Some(Usage {
                input_tokens: 100,
                output_tokens: 20,
                cache_read_tokens: 64,
                cache_write_tokens: 0,
                reasoning_tokens: 5,
            }),
            cost: Some(Cost { total: 0.0125, ..Default::default() }),
            ..Default::default()
        }
    }

    fn all_spans(req: &ExportTraceServiceRequest) -> Vec<&Span> {
        req.resource_spans.iter().flat_map(|rs| &rs.scope_spans).flat_map(|ss| &ss.spans).collect()
    }

    fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
        span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    fn str_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
        match attr(span, key) {
            Some(Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    fn exporter(rate: f64) -> OtlpExporter {
        OtlpExporter::new(TraceConfig { sample_rate: rate, ..Default::default() }).unwrap()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn resource_and_scope_name_the_service() {
        let req = spans(&[record()], "gateway-eu");
        let rs = &req.resource_spans[0];
        let resource = rs.resource.as_ref().unwrap();
        assert_eq!(resource.attributes[0].key, "service.name");
        assert_eq!(resource.attributes[0].value.as_ref().unwrap().value, Some(Value::StringValue("gateway-eu".into())));
        assert_eq!(rs.scope_spans[0].scope.as_ref().unwrap().name, "switchyard");
    }

    #[test]
    fn server_span_carries_ids_times_and_gen_ai_attributes() {
        let req = spans(&[record()], "switchyard");
        let spans = all_spans(&req);
        let server = spans[0];
        assert_eq!(hex(&server.trace_id), TRACE);
        assert_eq!(hex(&server.span_id), SPAN);
        assert!(server.parent_span_id.is_empty());
        assert_eq!(server.kind, SpanKind::Server as i32);
        assert_eq!(server.name, "chat smart");
        assert_eq!(server.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(server.end_time_unix_nano, 1_700_000_000_500_000_000);
        assert_eq!(server.status, None);
        assert_eq!(server.flags, FLAG_SAMPLED | FLAG_HAS_IS_REMOTE);

        assert_eq!(str_attr(server, "gen_ai.operation.name"), Some("chat"));
        assert_eq!(str_attr(server, "gen_ai.request.model"), Some("smart"));
        assert_eq!(str_attr(server, "gen_ai.provider.name"), Some("openai"));
        assert_eq!(str_attr(server, "gen_ai.response.model"), Some("gpt-4o-2024-08-06"));
        assert_eq!(attr(server, "gen_ai.request.stream"), Some(&Value::BoolValue(true)));
        assert_eq!(attr(server, "gen_ai.usage.input_tokens"), Some(&Value::IntValue(100)));
        assert_eq!(attr(server, "gen_ai.usage.output_tokens"), Some(&Value::IntValue(20)));
        assert_eq!(attr(server, "gen_ai.usage.cache_read.input_tokens"), Some(&Value::IntValue(64)));
        assert_eq!(attr(server, "gen_ai.usage.cache_creation.input_tokens"), None, "zero is not reported");
        assert_eq!(attr(server, "gen_ai.usage.reasoning.output_tokens"), Some(&Value::IntValue(5)));
        let Some(Value::ArrayValue(reasons)) = attr(server, "gen_ai.response.finish_reasons") else {
            panic!("finish reasons are a string array")
        };
        assert_eq!(reasons.values, vec![AnyValue { value: Some(Value::StringValue("stop".into())) }]);
        assert_eq!(attr(server, "gen_ai.response.time_to_first_chunk"), Some(&Value::DoubleValue(0.12)));
        assert_eq!(str_attr(server, "gen_ai.conversation.id"), Some("conv-9"));
        assert_eq!(attr(server, "http.response.status_code"), Some(&Value::IntValue(200)));
        assert_eq!(str_attr(server, "switchyard.request_id"), Some("0198c2a0-0000-7000-8000-000000000001"));
        assert_eq!(str_attr(server, "switchyard.key"), Some("key-1"));
        assert_eq!(str_attr(server, "switchyard.team"), Some("team-a"));
        assert_eq!(str_attr(server, "switchyard.user"), Some("alice"));
        assert_eq!(attr(server, "switchyard.cost_usd"), Some(&Value::DoubleValue(0.0125)));
        assert_eq!(attr(server, "switchyard.attempts"), Some(&Value::IntValue(2)));
        assert_eq!(attr(server, "switchyard.fallback"), Some(&Value::BoolValue(true)));
        assert_eq!(attr(server, "switchyard.overhead_ms"), Some(&Value::DoubleValue(1.5)));
        assert_eq!(attr(server, "error.type"), None);
    }

    #[test]
    fn absent_values_are_omitted_and_the_upstream_model_stands_in() {
        let r = RequestRecord {
            operation: "embeddings".into(),
            requested_model: None,
            response_model: None,
            stream: false,
            usage: None,
            cost: None,
            session: None,
            key: None,
            team: None,
            user: None,
            first_token_us: None,
            overhead_us: None,
            finish_reasons: vec![],
            attempts: vec![],
            ..record()
        };
        let req = spans(&[r], "switchyard");
        let server = all_spans(&req)[0];
        assert_eq!(server.name, "embeddings");
        assert_eq!(str_attr(server, "gen_ai.response.model"), Some("gpt-4o"));
        for key in [
            "gen_ai.request.model",
            "gen_ai.request.stream",
            "gen_ai.usage.input_tokens",
            "gen_ai.response.finish_reasons",
            "gen_ai.response.time_to_first_chunk",
            "gen_ai.conversation.id",
            "switchyard.key",
            "switchyard.team",
            "switchyard.user",
            "switchyard.cost_usd",
            "switchyard.overhead_ms",
        ] {
            assert_eq!(attr(server, key), None, "{key}");
        }
        assert_eq!(attr(server, "switchyard.attempts"), Some(&Value::IntValue(0)));
    }

    #[test]
    fn a_caller_parent_is_kept_and_marked_remote() {
        let r = RequestRecord { parent_span_id: Some(PARENT.into()), ..record() };
        let req = spans(&[r], "switchyard");
        let server = all_spans(&req)[0];
        assert_eq!(hex(&server.parent_span_id), PARENT);
        assert_eq!(server.flags, FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE);
    }

    #[test]
    fn errors_set_status_and_error_type() {
        let r = RequestRecord {
            status: 502,
            error_type: Some("upstream_5xx".into()),
            error_message: Some("every target failed".into()),
            ..record()
        };
        let req = spans(&[r], "switchyard");
        let server = all_spans(&req)[0];
        assert_eq!(
            server.status,
            Some(Status { code: StatusCode::Error as i32, message: "every target failed".into() })
        );
        assert_eq!(str_attr(server, "error.type"), Some("upstream_5xx"));
        assert_eq!(attr(server, "http.response.status_code"), Some(&Value::IntValue(502)));

        let bare = RequestRecord { status: 499, error_type: None, error_message: None, ..record() };
        let req = spans(&[bare], "switchyard");
        let server = all_spans(&req)[0];
        assert_eq!(str_attr(server, "error.type"), Some("499"));
        assert_eq!(server.status.as_ref().unwrap().code, StatusCode::Error as i32);
    }

    #[test]
    fn attempts_become_client_children_and_skipped_ones_are_left_out() {
        let req = spans(&[record()], "switchyard");
        let spans = all_spans(&req);
        assert_eq!(spans.len(), 3, "server + failed + answered; the skipped target has no span");
        let (server, failed, answered) = (spans[0], spans[1], spans[2]);

        for child in [failed, answered] {
            assert_eq!(child.trace_id, server.trace_id);
            assert_eq!(child.parent_span_id, server.span_id);
            assert_eq!(child.kind, SpanKind::Client as i32);
            assert_eq!(child.span_id.len(), 8);
            assert_ne!(child.span_id, vec![0; 8]);
            assert_ne!(child.span_id, server.span_id);
            assert_eq!(str_attr(child, "gen_ai.operation.name"), Some("chat"));
            assert_eq!(str_attr(child, "switchyard.route"), Some("smart"));
        }
        assert_ne!(failed.span_id, answered.span_id);

        assert_eq!(failed.name, "chat azure-model");
        assert_eq!(str_attr(failed, "gen_ai.provider.name"), Some("azure"));
        assert_eq!(str_attr(failed, "gen_ai.request.model"), Some("azure-model"));
        assert_eq!(str_attr(failed, "switchyard.attempt.outcome"), Some("failed"));
        assert_eq!(str_attr(failed, "error.type"), Some("_OTHER"));
        assert_eq!(failed.status, Some(Status { code: StatusCode::Error as i32, message: "failed because".into() }));
        assert_eq!(failed.start_time_unix_nano, 1_700_000_000_001_000_000);
        assert_eq!(failed.end_time_unix_nano, 1_700_000_000_041_000_000);
        assert_eq!(attr(failed, "gen_ai.usage.input_tokens"), None);

        assert_eq!(answered.name, "chat openai-model");
        assert_eq!(str_attr(answered, "switchyard.attempt.outcome"), Some("answered"));
        assert_eq!(answered.status, None);
        assert_eq!(attr(answered, "error.type"), None);
        assert_eq!(attr(answered, "gen_ai.usage.input_tokens"), Some(&Value::IntValue(100)));
        assert_eq!(attr(answered, "gen_ai.usage.output_tokens"), Some(&Value::IntValue(20)));
        assert_eq!(str_attr(answered, "gen_ai.response.model"), Some("gpt-4o-2024-08-06"));
        assert_eq!(answered.start_time_unix_nano, 1_700_000_000_042_000_000);
        assert_eq!(answered.end_time_unix_nano, 1_700_000_000_492_000_000);
    }

    #[test]
    fn a_lost_hedge_is_a_span_but_not_an_error() {
        let r = RequestRecord { attempts: vec![attempt("smart", "groq", "cancelled", 10, 20)], ..record() };
        let req = spans(&[r], "switchyard");
        let hedge = all_spans(&req)[1];
        assert_eq!(str_attr(hedge, "switchyard.attempt.outcome"), Some("cancelled"));
        assert_eq!(hedge.status, None);
    }

    #[test]
    fn attempt_ids_are_deterministic_and_distinct() {
        let a = spans(&[record()], "switchyard");
        let b = spans(&[record()], "switchyard");
        assert_eq!(a, b, "exporting a record twice yields the same spans");

        let many = RequestRecord {
            attempts: (0..200).map(|i| attempt("smart", "openai", "failed", i, 1)).collect(),
            ..record()
        };
        let req = spans(&[many], "switchyard");
        let mut ids: Vec<&Vec<u8>> = all_spans(&req).iter().map(|s| &s.span_id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert_eq!(n, 201);

        // A clash with an id already in use moves on to another.
        let clash = mix(7 ^ mix(1));
        assert_ne!(attempt_span_id(7, 0, &[7, clash]), clash);
    }

    #[test]
    fn malformed_ids_skip_the_record_without_panicking() {
        let good = record();
        let bad = [
            RequestRecord { trace_id: "xyz".into(), ..record() },
            RequestRecord { trace_id: "4bf92f3577b34da6a3ce929d0e0e473".into(), ..record() },
            RequestRecord { trace_id: "00000000000000000000000000000000".into(), ..record() },
            RequestRecord { trace_id: "4bf92f3577b34da6a3ce929d0e0e47zz".into(), ..record() },
            RequestRecord { trace_id: "é bf92f3577b34da6a3ce929d0e0e473".into(), ..record() },
            RequestRecord { span_id: String::new(), ..record() },
            RequestRecord { span_id: "0000000000000000".into(), ..record() },
            RequestRecord { parent_span_id: Some("b7ad6b71692033".into()), ..record() },
        ];
        for r in &bad {
            assert!(all_spans(&spans(std::slice::from_ref(r), "s")).is_empty(), "{r:?}");
        }
        let mut batch = bad.to_vec();
        batch.push(good);
        assert_eq!(all_spans(&spans(&batch, "s")).len(), 3);
    }

    #[test]
    fn times_saturate_instead_of_overflowing() {
        let r = RequestRecord { received_at_us: -5, duration_us: -10, attempts: vec![], ..record() };
        let server = all_spans(&spans(&[r], "s"))[0].clone();
        assert_eq!((server.start_time_unix_nano, server.end_time_unix_nano), (0, 0));

        let r = RequestRecord { received_at_us: i64::MAX, duration_us: i64::MAX, attempts: vec![], ..record() };
        let server = all_spans(&spans(&[r], "s"))[0].clone();
        assert_eq!(server.end_time_unix_nano, u64::MAX);
    }

    #[test]
    fn rate_zero_exports_no_new_trace_and_rate_one_every_one() {
        let none = exporter(0.0);
        let all = exporter(1.0);
        for i in 0..1000u64 {
            let r = RequestRecord { trace_id: format!("{:032x}", mix(i) as u128 | 1 << 100), ..record() };
            assert!(!none.wants(&r));
            assert!(all.wants(&r));
        }
        let max = RequestRecord { trace_id: "ffffffffffffffffffffffffffffffff".into(), ..record() };
        assert!(all.wants(&max));
        assert!(!exporter(0.999_999).wants(&max));
    }

    #[test]
    fn the_callers_decision_wins_over_the_rate() {
        let sampled = RequestRecord { parent_span_id: Some(PARENT.into()), sampled: true, ..record() };
        let unsampled = RequestRecord { parent_span_id: Some(PARENT.into()), sampled: false, ..record() };
        assert!(exporter(0.0).wants(&sampled));
        assert!(!exporter(1.0).wants(&unsampled));
        // Without a parent, the record's own flag is not what decides.
        let root = RequestRecord { sampled: false, ..record() };
        assert!(exporter(1.0).wants(&root));
    }

    #[test]
    fn the_ratio_is_roughly_the_rate_and_depends_only_on_the_trace_id() {
        let sampler = exporter(0.25);
        let mut rng = fastrand_like(0x5eed);
        let n = 20_000;
        let mut kept = 0;
        for _ in 0..n {
            let r = RequestRecord { trace_id: format!("{:016x}{:016x}", rng() | 1, rng()), ..record() };
            let decision = sampler.wants(&r);
            assert_eq!(decision, sampler.wants(&r), "deterministic");
            kept += usize::from(decision);
        }
        let share = kept as f64 / n as f64;
        assert!((0.2..0.3).contains(&share), "kept {share}");
    }

    #[test]
    fn the_decision_matches_trace_id_ratio_based() {
        // The upper half does not matter; the lower 8 bytes >> 1 against rate * 2^63 does.
        let s = Sampler::new(0.5).unwrap();
        let mut id = [0xffu8; 16];
        id[8..].copy_from_slice(&0x7fff_ffff_ffff_ffffu64.to_be_bytes());
        assert!(s.samples(&id), "(2^63 - 1) >> 1 < 2^62");
        id[8..].copy_from_slice(&0x8000_0000_0000_0000u64.to_be_bytes());
        assert!(!s.samples(&id), "2^62 is not below 2^62");
    }

    #[test]
    fn records_with_a_bad_trace_id_are_not_wanted() {
        assert!(!exporter(1.0).wants(&RequestRecord { trace_id: "nope".into(), ..record() }));
    }

    #[tokio::test]
    async fn nothing_sampled_sends_nothing() {
        // Port 9 (discard) on a TEST-NET address: a send would fail or time out, not succeed.
        let cfg = TraceConfig {
            endpoint: "http://192.0.2.1:9".into(),
            sample_rate: 0.0,
            timeout: Duration::from_millis(50),
            ..Default::default()
        };
        let exporter = OtlpExporter::new(cfg).unwrap();
        exporter.export(&[record(), record()]).await.unwrap();
        exporter.export(&[]).await.unwrap();
    }

    #[test]
    fn config_is_checked_up_front() {
        for rate in [-0.1, 1.5, f64::NAN] {
            let err = OtlpExporter::new(TraceConfig { sample_rate: rate, ..Default::default() }).unwrap_err();
            assert!(matches!(err, TraceError::SampleRate(_)), "{err}");
        }
        for (protocol, endpoint) in [
            (OtlpProtocol::Grpc, "not a url"),
            (OtlpProtocol::Grpc, "ftp://collector:4317"),
            (OtlpProtocol::HttpProtobuf, "collector:4318"),
            (OtlpProtocol::HttpProtobuf, "ftp://collector:4318"),
        ] {
            let err = OtlpExporter::new(TraceConfig { endpoint: endpoint.into(), protocol, ..Default::default() })
                .unwrap_err();
            assert!(matches!(err, TraceError::Endpoint { .. }), "{endpoint}: {err}");
        }
        for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
            let cfg = TraceConfig {
                endpoint: "http://localhost:4318".into(),
                protocol,
                headers: vec![("bad header".into(), "x".into())],
                ..Default::default()
            };
            assert!(matches!(OtlpExporter::new(cfg).unwrap_err(), TraceError::Header { .. }));
        }
    }

    #[test]
    fn new_needs_no_runtime_and_https_is_accepted() {
        // Outside any Tokio runtime: `new` must neither connect nor spawn.
        for (protocol, endpoint) in
            [(OtlpProtocol::Grpc, "https://otlp.example.com"), (OtlpProtocol::HttpProtobuf, "https://otlp.example.com")]
        {
            let cfg = TraceConfig {
                endpoint: endpoint.into(),
                protocol,
                headers: vec![("Authorization".into(), "Bearer secret".into())],
                ..Default::default()
            };
            let exporter = OtlpExporter::new(cfg.clone()).unwrap();
            assert!(!format!("{exporter:?} {cfg:?}").contains("secret"), "credentials stay out of Debug");
        }
    }

    #[test]
    fn protocol_names_round_trip() {
        for p in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
            assert_eq!(p.as_str().parse::<OtlpProtocol>().unwrap(), p);
        }
        assert!(matches!("http/json".parse::<OtlpProtocol>(), Err(TraceError::Protocol(_))));
    }

    #[test]
    fn the_http_path_is_appended_once() {
        assert_eq!(http_traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(http_traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(http_traces_url("http://c/otel/"), "http://c/otel/v1/traces");
        assert_eq!(http_traces_url("http://c:4318/v1/traces"), "http://c:4318/v1/traces");
    }

    #[test]
    fn retryable_errors_follow_the_spec() {
        assert!(TraceError::Timeout(Duration::from_secs(1)).is_retryable());
        assert!(TraceError::Grpc { code: tonic::Code::Unavailable, message: String::new() }.is_retryable());
        assert!(!TraceError::Grpc { code: tonic::Code::InvalidArgument, message: String::new() }.is_retryable());
        assert!(TraceError::HttpStatus { status: 503, body: String::new() }.is_retryable());
        assert!(!TraceError::HttpStatus { status: 400, body: String::new() }.is_retryable());
        assert!(!TraceError::Rejected { rejected: 1, message: String::new() }.is_retryable());
    }

    /// A small xorshift generator, so the test needs no random-number crate and is repeatable.
    fn fastrand_like(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }
}
