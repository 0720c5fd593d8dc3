//! The exporter against OTLP receivers of the test's own, one per protocol, on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use switchyard_telemetry::{OtlpExporter, OtlpProtocol, TraceConfig, TraceError};
use switchyard_types::{AttemptEntry, RequestRecord, Usage};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Longest any single wait in these tests may take.
const WAIT: Duration = Duration::from_secs(10);

const ROOT_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const ROOT_SPAN: &str = "b7ad6b7169203331";
const CHILD_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CHILD_SPAN: &str = "00f067aa0ba902b7";
const CALLER_SPAN: &str = "53995c3f42cd8ad8";

/// What a receiver saw: the request's headers (gRPC metadata included) and its spans.
type Received = (HeaderMap, ExportTraceServiceRequest);

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.unwrap_or_else(|_| panic!("{what} took longer than {WAIT:?}"))
}

fn records() -> Vec<RequestRecord> {
    let root = RequestRecord {
        id: "req-root".into(),
        trace_id: ROOT_TRACE.into(),
        span_id: ROOT_SPAN.into(),
        sampled: true,
        received_at_us: 1_700_000_000_000_000,
        duration_us: 250_000,
        first_token_us: Some(80_000),
        operation: "chat".into(),
        surface: "openai".into(),
        requested_model: Some("smart".into()),
        provider: Some("openai".into()),
        upstream_model: Some("gpt-4o".into()),
        response_model: Some("gpt-4o-2024-08-06".into()),
        stream: true,
        status: 200,
        session: Some("conv-1".into()),
        attempts: vec![
            AttemptEntry {
                model: "smart".into(),
                provider: "azure".into(),
                target_model: "gpt-4o-azure".into(),
                outcome: "failed".into(),
                reason: Some("upstream_5xx".into()),
                start_us: 100,
                duration_us: 20_000,
            },
            AttemptEntry {
                model: "smart".into(),
                provider: "openai".into(),
                target_model: "gpt-4o".into(),
                outcome: "answered".into(),
                reason: None,
                start_us: 21_000,
                duration_us: 220_000,
            },
        ],
        finish_reasons: vec!["stop".into()],
        usage: Some(Usage { input_tokens: 12, output_tokens: 34, ..Default::default() }),
        ..Default::default()
    };
    let child = RequestRecord {
        id: "req-child".into(),
        trace_id: CHILD_TRACE.into(),
        span_id: CHILD_SPAN.into(),
        parent_span_id: Some(CALLER_SPAN.into()),
        sampled: true,
        received_at_us: 1_700_000_001_000_000,
        duration_us: 50_000,
        operation: "embeddings".into(),
        surface: "openai".into(),
        requested_model: Some("embed".into()),
        provider: Some("openai".into()),
        status: 200,
        ..Default::default()
    };
    // The caller chose not to sample this trace: it must not reach the collector.
    let unsampled = RequestRecord {
        id: "req-unsampled".into(),
        trace_id: "11111111111111111111111111111111".into(),
        span_id: "2222222222222222".into(),
        parent_span_id: Some("3333333333333333".into()),
        sampled: false,
        operation: "chat".into(),
        status: 200,
        ..Default::default()
    };
    vec![root, child, unsampled]
}

fn config(endpoint: String, protocol: OtlpProtocol) -> TraceConfig {
    TraceConfig {
        endpoint,
        protocol,
        sample_rate: 1.0,
        // Mixed case on purpose: gRPC metadata keys must go out lowercase.
        headers: vec![("X-Test-Token".into(), "secret-123".into())],
        service_name: "switchyard-test".into(),
        timeout: Duration::from_secs(5),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn str_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match span.attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn int_attr(span: &Span, key: &str) -> Option<i64> {
    match span.attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()? {
        Value::IntValue(n) => Some(*n),
        _ => None,
    }
}

/// What every protocol must deliver for [`records`].
fn assert_received(headers: &HeaderMap, request: &ExportTraceServiceRequest) {
    assert_eq!(headers.get("x-test-token").map(|v| v.to_str().unwrap()), Some("secret-123"));

    assert_eq!(request.resource_spans.len(), 1);
    let resource_spans = &request.resource_spans[0];
    let resource = resource_spans.resource.as_ref().unwrap();
    let service = resource.attributes.iter().find(|kv| kv.key == "service.name").unwrap();
    assert_eq!(service.value.as_ref().unwrap().value, Some(Value::StringValue("switchyard-test".into())));
    let scope_spans = &resource_spans.scope_spans[0];
    assert_eq!(scope_spans.scope.as_ref().unwrap().name, "switchyard");

    let spans = &scope_spans.spans;
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["chat smart", "chat gpt-4o-azure", "chat gpt-4o", "embeddings embed"], "unsampled left out");

    let root = &spans[0];
    assert_eq!(hex(&root.trace_id), ROOT_TRACE);
    assert_eq!(hex(&root.span_id), ROOT_SPAN);
    assert!(root.parent_span_id.is_empty());
    assert_eq!(root.kind, SpanKind::Server as i32);
    assert_eq!(root.start_time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(root.end_time_unix_nano, 1_700_000_000_250_000_000);
    assert_eq!(str_attr(root, "gen_ai.operation.name"), Some("chat"));
    assert_eq!(str_attr(root, "gen_ai.request.model"), Some("smart"));
    assert_eq!(str_attr(root, "gen_ai.provider.name"), Some("openai"));
    assert_eq!(str_attr(root, "gen_ai.response.model"), Some("gpt-4o-2024-08-06"));
    assert_eq!(str_attr(root, "gen_ai.conversation.id"), Some("conv-1"));
    assert_eq!(int_attr(root, "gen_ai.usage.input_tokens"), Some(12));
    assert_eq!(int_attr(root, "gen_ai.usage.output_tokens"), Some(34));
    assert_eq!(int_attr(root, "switchyard.attempts"), Some(2));
    assert_eq!(str_attr(root, "switchyard.request_id"), Some("req-root"));

    for attempt in &spans[1..3] {
        assert_eq!(attempt.trace_id, root.trace_id);
        assert_eq!(attempt.parent_span_id, root.span_id);
        assert_eq!(attempt.kind, SpanKind::Client as i32);
    }
    assert_eq!(str_attr(&spans[1], "error.type"), Some("_OTHER"));
    assert_eq!(str_attr(&spans[1], "gen_ai.provider.name"), Some("azure"));
    assert_eq!(str_attr(&spans[2], "switchyard.attempt.outcome"), Some("answered"));
    assert_eq!(int_attr(&spans[2], "gen_ai.usage.output_tokens"), Some(34));

    let child = &spans[3];
    assert_eq!(hex(&child.trace_id), CHILD_TRACE);
    assert_eq!(hex(&child.span_id), CHILD_SPAN);
    assert_eq!(hex(&child.parent_span_id), CALLER_SPAN);
    assert_eq!(str_attr(child, "gen_ai.operation.name"), Some("embeddings"));
}

// ---- gRPC receiver ----

struct GrpcReceiver {
    seen: mpsc::UnboundedSender<Received>,
    answer: Result<ExportTraceServiceResponse, tonic::Status>,
}

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let (metadata, _, message) = request.into_parts();
        let _ = self.seen.send((metadata.into_headers(), message));
        self.answer.clone().map(tonic::Response::new)
    }
}

async fn grpc_receiver(
    answer: Result<ExportTraceServiceResponse, tonic::Status>,
) -> (SocketAddr, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, received) = mpsc::unbounded_channel();
    let service = TraceServiceServer::new(GrpcReceiver { seen, answer });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (addr, received)
}

// ---- HTTP receiver ----

#[derive(Clone)]
struct HttpReceiver {
    seen: mpsc::UnboundedSender<Received>,
    answer: (StatusCode, ExportTraceServiceResponse),
}

async fn http_export(State(receiver): State<HttpReceiver>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    if headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()) != Some(b"application/x-protobuf".as_slice()) {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new()).into_response();
    }
    let Ok(message) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, b"not an ExportTraceServiceRequest".to_vec()).into_response();
    };
    let _ = receiver.seen.send((headers, message));
    let (status, response) = receiver.answer;
    (status, [(header::CONTENT_TYPE, "application/x-protobuf")], response.encode_to_vec()).into_response()
}

async fn http_receiver(
    answer: (StatusCode, ExportTraceServiceResponse),
) -> (SocketAddr, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, received) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(http_export))
        .with_state(HttpReceiver { seen, answer });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, received)
}

// ---- tests ----

#[tokio::test]
async fn grpc_export_delivers_spans_and_metadata() {
    let (addr, mut received) = grpc_receiver(Ok(ExportTraceServiceResponse::default())).await;
    let exporter = OtlpExporter::new(config(format!("http://{addr}"), OtlpProtocol::Grpc)).unwrap();

    within("gRPC export", exporter.export(&records())).await.unwrap();
    let (headers, request) = within("the gRPC receiver", received.recv()).await.unwrap();
    assert_received(&headers, &request);

    // A clone shares the channel and keeps working.
    within("second gRPC export", exporter.clone().export(&records()[..1])).await.unwrap();
    let (_, again) = within("the gRPC receiver", received.recv()).await.unwrap();
    assert_eq!(again.resource_spans[0].scope_spans[0].spans.len(), 3);
}

#[tokio::test]
async fn http_export_delivers_spans_and_headers() {
    let (addr, mut received) = http_receiver((StatusCode::OK, ExportTraceServiceResponse::default())).await;
    // Both spellings of the endpoint reach `/v1/traces`.
    for endpoint in [format!("http://{addr}"), format!("http://{addr}/v1/traces")] {
        let exporter = OtlpExporter::new(config(endpoint.clone(), OtlpProtocol::HttpProtobuf)).unwrap();
        within("HTTP export", exporter.export(&records())).await.unwrap_or_else(|e| panic!("{endpoint}: {e}"));
        let (headers, request) = within("the HTTP receiver", received.recv()).await.unwrap();
        assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), "application/x-protobuf");
        assert_received(&headers, &request);
    }
}

#[tokio::test]
async fn nothing_is_sent_when_nothing_is_sampled() {
    let (addr, mut received) = http_receiver((StatusCode::OK, ExportTraceServiceResponse::default())).await;
    let cfg = TraceConfig { sample_rate: 0.0, ..config(format!("http://{addr}"), OtlpProtocol::HttpProtobuf) };
    let exporter = OtlpExporter::new(cfg).unwrap();
    // Only the root record lacks a parent, and rate 0 drops it; the child's caller sampled it.
    within("HTTP export", exporter.export(&records()[..1])).await.unwrap();
    within("HTTP export", exporter.export(&records()[1..])).await.unwrap();
    let (_, request) = within("the HTTP receiver", received.recv()).await.unwrap();
    let names: Vec<&str> = request.resource_spans[0].scope_spans[0].spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["embeddings embed"]);
    assert!(received.try_recv().is_err(), "the unsampled batch sent nothing");
}

#[tokio::test]
async fn collector_refusals_are_errors() {
    let rejecting = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess { rejected_spans: 2, error_message: "too old".into() }),
    };

    let (addr, _received) = http_receiver((StatusCode::OK, rejecting.clone())).await;
    let exporter = OtlpExporter::new(config(format!("http://{addr}"), OtlpProtocol::HttpProtobuf)).unwrap();
    let err = within("HTTP export", exporter.export(&records())).await.unwrap_err();
    assert!(matches!(&err, TraceError::Rejected { rejected: 2, message } if message == "too old"), "{err}");

    let (addr, _received) = http_receiver((StatusCode::SERVICE_UNAVAILABLE, Default::default())).await;
    let exporter = OtlpExporter::new(config(format!("http://{addr}"), OtlpProtocol::HttpProtobuf)).unwrap();
    let err = within("HTTP export", exporter.export(&records())).await.unwrap_err();
    assert!(matches!(err, TraceError::HttpStatus { status: 503, .. }), "{err}");
    assert!(err.is_retryable());

    let (addr, _received) = grpc_receiver(Ok(rejecting)).await;
    let exporter = OtlpExporter::new(config(format!("http://{addr}"), OtlpProtocol::Grpc)).unwrap();
    let err = within("gRPC export", exporter.export(&records())).await.unwrap_err();
    assert!(matches!(err, TraceError::Rejected { rejected: 2, .. }), "{err}");

    let (addr, _received) = grpc_receiver(Err(tonic::Status::unavailable("busy"))).await;
    let exporter = OtlpExporter::new(config(format!("http://{addr}"), OtlpProtocol::Grpc)).unwrap();
    let err = within("gRPC export", exporter.export(&records())).await.unwrap_err();
    assert!(matches!(&err, TraceError::Grpc { code: tonic::Code::Unavailable, message } if message == "busy"), "{err}");
    assert!(err.is_retryable());
}

/// A port nobody listens on: bound, then released.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn nothing_listening_is_an_error_not_a_hang() {
    let timeout = Duration::from_secs(2);
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        let addr = closed_port().await;
        let cfg = TraceConfig { timeout, ..config(format!("http://{addr}"), protocol) };
        let exporter = OtlpExporter::new(cfg).unwrap();
        let started = Instant::now();
        let result = within("export to a closed port", exporter.export(&records())).await;
        let err = result.expect_err("nothing is listening");
        assert!(started.elapsed() <= timeout + Duration::from_secs(1), "{protocol}: took {:?}", started.elapsed());
        assert!(err.is_retryable(), "{protocol}: {err}");
    }
}

#[tokio::test]
async fn a_collector_that_never_answers_times_out() {
    let timeout = Duration::from_millis(300);
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        // The kernel accepts connections into the backlog, and nobody ever reads or answers.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let cfg = TraceConfig { timeout, ..config(format!("http://{addr}"), protocol) };
        let exporter = OtlpExporter::new(cfg).unwrap();
        let started = Instant::now();
        let err = within("export to a silent collector", exporter.export(&records())).await.unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, TraceError::Timeout(t) if t == timeout), "{protocol}: {err}");
        assert!(took >= timeout && took <= timeout + Duration::from_secs(2), "{protocol}: took {took:?}");
        drop(silent);
    }
}

#[tokio::test]
async fn a_collector_that_comes_up_later_is_reached() {
    // The lazy gRPC channel must reconnect after a refused connection, not stay broken: a
    // collector that starts after the gateway is the common case.
    let addr = closed_port().await;
    let exporter = OtlpExporter::new(config(format!("http://{addr}"), OtlpProtocol::Grpc)).unwrap();
    within("export to a closed port", exporter.export(&records())).await.unwrap_err();

    let listener = TcpListener::bind(addr).await.unwrap();
    let (seen, mut received) = mpsc::unbounded_channel();
    let service = TraceServiceServer::new(GrpcReceiver { seen, answer: Ok(ExportTraceServiceResponse::default()) });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    within("export once the collector is up", exporter.export(&records())).await.unwrap();
    let (headers, request) = within("the gRPC receiver", received.recv()).await.unwrap();
    assert_received(&headers, &request);
}
