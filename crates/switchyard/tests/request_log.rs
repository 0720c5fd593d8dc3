//! The request log end to end: the real binary against mock providers, records read back from
//! the real SQLite file and the real Postgres on 127.0.0.1:5432 (which must be running: these
//! tests fail without it, they never skip).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Value, json};
use switchyard_store::{LogQuery, Store};
use switchyard_types::RequestRecord;

/// Waits until the store holds `n` records (they are written just after each answer ends).
async fn wait_for_records(store: &Store, n: u64) {
    let start = Instant::now();
    loop {
        let have = store.count_records().await.unwrap_or(0);
        if have >= n {
            assert_eq!(have, n, "more records than requests");
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "only {have} of {n} records after 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn request_id(resp: &reqwest::Response) -> String {
    resp.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// What a test expects of one record.
#[derive(Debug)]
struct Expect {
    status: u16,
    stream: bool,
    usage: Option<(u64, u64)>,
    sent: usize,
    fallback: bool,
}

const PRICED: &str = r"  - name: priced
    targets: [{ provider: up, model: mock-large, price: { input_per_mtok: 2, output_per_mtok: 8 } }]
  - name: broken
    targets: [{ provider: down, model: mock-large }]
    retry: { attempts: 1 }
    fallbacks: [priced]
  - name: dead
    targets: [{ provider: down, model: mock-large }]
    retry: { attempts: 1 }
";

/// A config whose `down` provider always answers 503.
fn config(up: &Proc, down: &Proc, storage: &str, extra: &str) -> String {
    let base = simple_config(up, PRICED);
    base.replacen(
        "providers:\n",
        &format!(
            "storage: \"{storage}\"\n{extra}providers:\n  down: {{ type: openai-compatible, base_url: \"{}/v1\" }}\n",
            down.url
        ),
        1,
    )
}

/// Sends a mix of requests, streamed and not, answered, failed and fallen back, and returns
/// what each record must say, by request id.
async fn mixed_traffic(gw: &Proc) -> HashMap<String, Expect> {
    let url = format!("{}/v1/chat/completions", gw.url);
    let mut expected = HashMap::new();
    for (i, model) in ["priced", "priced", "broken", "dead", "chat", "nope"].iter().enumerate() {
        for stream in [false, true] {
            let mut body = json!({"model": model, "messages": user(&format!("request {i} marker-secret-{i}"))});
            if stream {
                body["stream"] = json!(true);
                body["stream_options"] = json!({"include_usage": true});
            }
            let resp = post(&url, Some(MASTER), &body).await;
            let id = request_id(&resp);
            let status = resp.status().as_u16();
            let sent = header(&resp, "x-switchyard-attempts").and_then(|a| a.parse().ok()).unwrap_or(0);
            let usage = if status != 200 {
                None
            } else if stream {
                let frames = sse_data(resp).await;
                let last = frames
                    .iter()
                    .rev()
                    .find_map(|f| serde_json::from_str::<Value>(f).ok().filter(|v| v["usage"].is_object()));
                last.map(|v| {
                    (
                        v["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
                        v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
                    )
                })
            } else {
                let v = json(resp).await;
                Some((
                    v["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
                    v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
                ))
            };
            let fallback = *model == "broken";
            expected.insert(id, Expect { status, stream, usage, sent, fallback });
        }
    }
    expected
}

fn check(records: &[RequestRecord], expected: &HashMap<String, Expect>) {
    assert_eq!(records.len(), expected.len());
    for r in records {
        let e = expected.get(&r.id).unwrap_or_else(|| panic!("record {} names no request", r.id));
        let what = format!("{} {:?} {:?}", r.id, r.requested_model, e);
        assert_eq!(r.status, e.status, "{what}");
        assert_eq!(r.stream, e.stream, "{what}");
        assert_eq!(r.usage.map(|u| (u.input_tokens, u.output_tokens)), e.usage, "{what}: tokens as the upstream sent");
        let sent = r.attempts.iter().filter(|a| a.outcome != "skipped").count();
        assert_eq!(sent, e.sent, "{what}: attempts as x-switchyard-attempts");
        assert_eq!(r.fallback, e.fallback, "{what}");
        assert_eq!(r.key.as_deref(), Some("master"));
        assert!(r.request_body.is_none() && r.response_body.is_none(), "metadata capture keeps no body");
        assert!(r.request_bytes > 0, "{what}");
        assert_eq!(r.trace_id.len(), 32);
        assert!(r.duration_us > 0);
        // Priced answers carry their cost: 2 and 8 dollars per million tokens.
        match (r.upstream_model.as_deref(), r.provider.as_deref(), r.usage) {
            (_, Some("up"), Some(u)) if r.requested_model.as_deref() != Some("chat") => {
                let cost = r.cost.unwrap_or_else(|| panic!("{what}: no cost"));
                let want = (u.input_tokens as f64 * 2.0 + u.output_tokens as f64 * 8.0) / 1e6;
                assert!((cost.total - want).abs() < 1e-12, "{what}: cost {} != {want}", cost.total);
            }
            _ => assert!(r.cost.is_none(), "{what}: unpriced targets have no cost"),
        }
        if e.status == 200 {
            assert_eq!(r.finish_reasons, ["stop"], "{what}");
            assert!(r.first_byte_us.is_some() && r.overhead_us.is_some());
            assert_eq!(r.first_token_us.is_some(), e.stream, "{what}: time to first token for streams");
        } else {
            assert!(r.error_type.is_some(), "{what}");
        }
    }
}

async fn all_records(store: &Store) -> Vec<RequestRecord> {
    let page =
        store.query_records(&LogQuery { limit: 1000, ..Default::default() }).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(page.next_cursor.is_none());
    page.records
}

#[tokio::test]
async fn every_request_leaves_one_record_matching_the_upstream_sqlite() {
    let (up, down) = (mock(&[]), mock(&["--status", "503"]));
    let dir = temp_dir();
    let db = dir.join("log.db");
    let (gw, _) = gateway(&config(&up, &down, &format!("sqlite://{}", db.display()), ""));
    let expected = mixed_traffic(&gw).await;
    assert!(expected.values().any(|e| e.status == 200 && e.stream) && expected.values().any(|e| e.status >= 500));
    let store = Store::open(&format!("sqlite://{}", db.display())).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for_records(&store, expected.len() as u64).await;
    check(&all_records(&store).await, &expected);
    drop(gw);
    // Under `metadata`, not one byte of a body is in the database's files.
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")).flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        let found = bytes.windows(14).any(|w| w == b"marker-secret-");
        assert!(!found, "{} holds request text", entry.path().display());
    }
}

#[tokio::test]
async fn every_request_leaves_one_record_matching_the_upstream_postgres() {
    let (up, down) = (mock(&[]), mock(&["--status", "503"]));
    let schema = PgSchema::new().await;
    let (gw, _) = gateway(&config(&up, &down, &schema.url(), ""));
    let expected = mixed_traffic(&gw).await;
    let store = Store::open(&schema.url()).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for_records(&store, expected.len() as u64).await;
    check(&all_records(&store).await, &expected);
}

#[tokio::test]
async fn capture_follows_key_then_team_then_default() {
    let up = mock(&[]);
    let dir = temp_dir();
    let db = format!("sqlite://{}", dir.join("log.db").display());
    let extra = r"logging: { capture: metadata }
teams:
  - { name: research, capture: full }
keys:
  - { name: alice, key: sk-alice-0001, team: research }
  - { name: bob, key: sk-bob-00001, team: research, capture: none }
  - { name: carol, key: sk-carol-0001 }
";
    let (gw, _) = gateway(&config(&up, &up, &db, extra));
    let url = format!("{}/v1/chat/completions", gw.url);
    let mut ids = HashMap::new();
    for key in ["sk-alice-0001", "sk-bob-00001", "sk-carol-0001"] {
        for stream in [false, true] {
            let body = json!({"model": "chat", "stream": stream, "messages": user("the magic word is xyzzy")});
            let resp = post(&url, Some(key), &body).await;
            assert_eq!(resp.status(), 200);
            ids.insert(request_id(&resp), (key, stream));
            let _ = resp.text().await;
        }
    }
    let store = Store::open(&db).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for_records(&store, 4).await;
    for (id, (key, stream)) in &ids {
        let r = store.get_record(id).await.unwrap_or_else(|e| panic!("{e}"));
        match *key {
            "sk-bob-00001" => assert!(r.is_none(), "capture none stores no record"),
            "sk-alice-0001" => {
                let r = r.unwrap_or_else(|| panic!("alice's record"));
                assert_eq!(r.team.as_deref(), Some("research"));
                assert!(r.request_body.as_deref().unwrap_or_default().contains("xyzzy"));
                let answer: Value =
                    serde_json::from_str(r.response_body.as_deref().unwrap_or("null")).unwrap_or(Value::Null);
                let text = answer["choices"][0]["message"]["content"].as_str().unwrap_or_default();
                assert!(!text.is_empty(), "the whole answer is kept (stream: {stream}): {answer}");
            }
            _ => {
                let r = r.unwrap_or_else(|| panic!("carol's record"));
                assert!(r.request_body.is_none() && r.response_body.is_none());
            }
        }
    }
    // The admin API searches captured bodies.
    let resp = client().get(format!("{}/admin/logs?q=XYZZY", gw.url)).bearer_auth(MASTER).send().await;
    let found = json(resp.unwrap_or_else(|e| panic!("{e}"))).await;
    let keys: Vec<_> =
        found["data"].as_array().map(|d| d.iter().map(|r| r["key"].clone()).collect()).unwrap_or_default();
    assert_eq!(keys, [json!("alice"), json!("alice")]);
}

#[tokio::test]
async fn admin_api_filters_pages_aggregates_and_joins_traces() {
    let up = mock(&[]);
    let dir = temp_dir();
    let db = format!("sqlite://{}", dir.join("log.db").display());
    let (gw, _) = gateway(&config(&up, &up, &db, ""));
    let url = format!("{}/v1/chat/completions", gw.url);
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut req = client()
            .post(&url)
            .bearer_auth(MASTER)
            .header("x-switchyard-user", if i % 2 == 0 { "ann" } else { "ben" })
            .header("x-switchyard-session", "s-42")
            .header("x-switchyard-tags", if i < 3 { "beta,eu" } else { "eu" })
            .header("x-switchyard-metadata-app", format!("app-{}", i % 3))
            .json(&json!({"model": if i == 6 { "nope" } else { "priced" }, "messages": user("hi")}));
        if i == 0 {
            req = req.header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{e}"));
        ids.push(request_id(&resp));
    }
    let store = Store::open(&db).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for_records(&store, 7).await;
    let get = |q: &str| {
        let url = format!("{}/admin/{q}", gw.url);
        async move {
            let resp = client().get(url).bearer_auth(MASTER).send().await.unwrap_or_else(|e| panic!("{e}"));
            (resp.status().as_u16(), json(resp).await)
        }
    };
    let count = |v: &Value| v["data"].as_array().map_or(0, Vec::len);
    assert_eq!(count(&get("logs").await.1), 7);
    assert_eq!(count(&get("logs?user=ann").await.1), 4);
    assert_eq!(count(&get("logs?tag=beta").await.1), 3);
    assert_eq!(count(&get("logs?tag=beta&tag=eu&metadata.app=app-0").await.1), 1);
    assert_eq!(count(&get("logs?status=404").await.1), 1);
    assert_eq!(count(&get("logs?status=2xx&session=s-42&model=priced").await.1), 6);
    assert_eq!(count(&get("logs?from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z").await.1), 0);

    // Pages of 3: 3 + 3 + 1, newest first, each record once.
    let mut seen = Vec::new();
    let mut q = "logs?limit=3".to_string();
    loop {
        let (_, page) = get(&q).await;
        seen.extend(
            page["data"].as_array().into_iter().flatten().map(|r| r["id"].as_str().unwrap_or_default().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => q = format!("logs?limit=3&cursor={c}"),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let (status, one) = get(&format!("logs/{}", ids[0])).await;
    assert_eq!(status, 200);
    assert_eq!(one["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "the caller's trace is joined");
    assert_eq!(one["parent_span_id"], "00f067aa0ba902b7");
    assert_eq!(one["metadata"]["app"], "app-0");
    assert_eq!(one["tags"], json!(["beta", "eu"]));
    assert!(one["received_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(get("logs/nope").await.0, 404);
    assert_eq!(get("logs?status=teapot").await.0, 400);
    assert_eq!(get("logs?colour=red").await.0, 400);

    let (status, usage) = get("usage?group_by=user,model&bucket=hour").await;
    assert_eq!(status, 200, "{usage}");
    let rows = usage["data"].as_array().cloned().unwrap_or_default();
    let total: u64 = rows.iter().map(|r| r["requests"].as_u64().unwrap_or(0)).sum();
    assert_eq!(total, 7);
    let ann = rows
        .iter()
        .find(|r| r["group"] == json!({"user": "ann", "model": "priced"}))
        .unwrap_or_else(|| panic!("{usage}"));
    assert_eq!(ann["requests"], 3);
    assert!(ann["cost_usd"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(ann["latency_ms"]["p99"].as_f64().unwrap_or(0.0) > 0.0);
    assert_eq!(get("usage?group_by=colour").await.0, 400);

    // A key that is not the master key cannot read the log.
    let resp = client().get(format!("{}/admin/logs", gw.url)).bearer_auth("sk-wrong").send().await;
    assert_eq!(resp.map(|r| r.status().as_u16()).unwrap_or(0), 401);
}

#[tokio::test]
async fn the_log_is_off_without_storage() {
    let up = mock(&[]);
    let (gw, _) = gateway(&simple_config(&up, ""));
    let resp = client().get(format!("{}/admin/logs", gw.url)).bearer_auth(MASTER).send().await;
    let resp = resp.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 404);
    assert_eq!(json(resp).await["error"]["code"], "request_log_disabled");
}

#[tokio::test]
async fn sigterm_under_load_keeps_the_record_of_every_answered_request() {
    let up = mock(&["--latency-ms", "100", "--words", "10", "--chunk-delay-ms", "20"]);
    let dir = temp_dir();
    let db = format!("sqlite://{}", dir.join("log.db").display());
    let (mut gw, _) = gateway(&config(&up, &up, &db, ""));
    let url = format!("{}/v1/chat/completions", gw.url);
    let mut calls = Vec::new();
    for i in 0..80 {
        let url = url.clone();
        calls.push(tokio::spawn(async move {
            // Spread the arrivals so some are in flight, some done and some refused at the signal.
            tokio::time::sleep(Duration::from_millis(i * 5)).await;
            let body = json!({"model": "chat", "stream": i % 2 == 0, "messages": user("load")});
            let resp = client().post(&url).bearer_auth(MASTER).json(&body).send().await.ok()?;
            let id = request_id(&resp);
            let complete = resp.text().await.ok()?;
            (i % 2 == 1 || complete.contains("[DONE]")).then_some(id)
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = gw.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().is_ok_and(|s| s.success()));
    let mut answered = Vec::new();
    for c in calls {
        if let Ok(Some(id)) = c.await {
            answered.push(id);
        }
    }
    let waited = Instant::now();
    while gw.child.try_wait().ok().flatten().is_none() {
        assert!(waited.elapsed() < Duration::from_secs(20), "the gateway did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!answered.is_empty(), "no request was answered before the signal");
    let store = Store::open(&db).await.unwrap_or_else(|e| panic!("{e}"));
    for id in &answered {
        let r = store.get_record(id).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(r.is_some_and(|r| r.status == 200), "request {id} was answered but has no record");
    }
}

#[tokio::test]
async fn retention_deletes_old_records_at_start() {
    let up = mock(&[]);
    let dir = temp_dir();
    let db = format!("sqlite://{}", dir.join("log.db").display());
    let store = Store::open(&db).await.unwrap_or_else(|e| panic!("{e}"));
    let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
    let day = 86_400_000_000_i64;
    let old = |id: &str, age_days: i64| RequestRecord {
        id: id.into(),
        received_at_us: now_us - age_days * day,
        surface: "openai".into(),
        operation: "chat".into(),
        status: 200,
        capture: switchyard_types::CaptureMode::Full,
        request_body: Some("body".into()),
        ..Default::default()
    };
    store
        .insert_records(&[old("ancient", 40), old("middle", 10), old("fresh", 0)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let extra = "logging: { retention: 30d, body_retention: 7d }\n";
    let (_gw, _) = gateway(&config(&up, &up, &db, extra));
    let start = Instant::now();
    loop {
        let gone = store.get_record("ancient").await.ok().flatten().is_none();
        let stripped = store.get_record("middle").await.ok().flatten().is_some_and(|r| r.request_body.is_none());
        if gone && stripped {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "retention did not run at start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fresh = store.get_record("fresh").await.ok().flatten();
    assert_eq!(fresh.and_then(|r| r.request_body).as_deref(), Some("body"), "young records keep their bodies");
}

/// An OTLP/HTTP receiver of the test's own: every span it is sent, decoded.
async fn otlp_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<Span>) {
    use axum::routing::post;
    use prost::Message;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).unwrap_or_default();
                for span in req.resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans) {
                    let _ = tx.send(span);
                }
                axum::body::Bytes::from(ExportTraceServiceResponse::default().encode_to_vec())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), rx)
}

fn attr(span: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        V::StringValue(s) => Some(s.clone()),
        V::IntValue(i) => Some(i.to_string()),
        V::BoolValue(b) => Some(b.to_string()),
        V::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn requests_are_exported_as_gen_ai_spans_joining_the_callers_trace() {
    let up = mock(&[]);
    let (endpoint, mut spans) = otlp_receiver().await;
    let extra = format!("tracing: {{ endpoint: \"{endpoint}\", protocol: http/protobuf, sample_rate: 1 }}\n");
    // No storage: traces do not need the log.
    let down = format!("  down: {{ type: openai-compatible, base_url: \"{}/v1\" }}\n", up.url);
    let cfg = simple_config(&up, PRICED).replacen("providers:\n", &format!("{extra}providers:\n{down}"), 1);
    let (gw, _) = gateway(&cfg);
    let url = format!("{}/v1/chat/completions", gw.url);
    let body = json!({"model": "priced", "messages": user("trace me")});
    let sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let unsampled = "00-11111111111111111111111111111111-00f067aa0ba902b7-00";
    for parent in [unsampled, sampled] {
        let resp = client().post(&url).bearer_auth(MASTER).header("traceparent", parent).json(&body).send().await;
        assert_eq!(resp.map(|r| r.status().as_u16()).unwrap_or(0), 200);
    }
    let mut got = Vec::new();
    while got.len() < 2 {
        let span = tokio::time::timeout(Duration::from_secs(10), spans.recv()).await;
        got.push(span.ok().flatten().unwrap_or_else(|| panic!("only {} spans arrived", got.len())));
    }
    let server = got.iter().find(|s| s.parent_span_id == [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
    let server = server.unwrap_or_else(|| panic!("no span is the caller's child: {got:?}"));
    assert_eq!(hex(&server.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736", "the caller's trace, not the unsampled one");
    assert_eq!(server.name, "chat priced");
    assert_eq!(attr(server, "gen_ai.operation.name").as_deref(), Some("chat"));
    assert_eq!(attr(server, "gen_ai.request.model").as_deref(), Some("priced"));
    assert_eq!(attr(server, "gen_ai.provider.name").as_deref(), Some("up"));
    assert!(attr(server, "gen_ai.usage.input_tokens").is_some_and(|n| n != "0"));
    assert!(attr(server, "gen_ai.usage.output_tokens").is_some());
    assert!(attr(server, "switchyard.cost_usd").is_some());
    let attempt = got.iter().find(|s| s.parent_span_id == server.span_id).unwrap_or_else(|| panic!("no attempt span"));
    assert_eq!(attr(attempt, "gen_ai.request.model").as_deref(), Some("mock-large"));
    // The unsampled trace is never exported.
    let extra = tokio::time::timeout(Duration::from_millis(500), spans.recv()).await;
    assert!(extra.is_err(), "an unsampled caller's trace was exported: {extra:?}");
}

#[tokio::test]
async fn broken_cancelled_and_continued_streams_keep_what_was_sent() {
    let breaks = mock(&["--words", "30", "--cut-after", "6", "--chunk-delay-ms", "5"]);
    let slow = mock(&["--words", "200", "--chunk-delay-ms", "20"]);
    let dir = temp_dir();
    let db = format!("sqlite://{}", dir.join("log.db").display());
    let models = r"  - name: recovers
    targets:
      - { provider: breaks, model: a }
      - { provider: up, model: b, tier: 2, price: { input_per_mtok: 1, output_per_mtok: 1 } }
    recover_streams: true
  - name: brittle
    targets: [{ provider: breaks, model: a }]
    retry: { attempts: 1 }
  - name: slow
    targets: [{ provider: slowp, model: s }]
";
    let up = mock(&[]);
    let cfg = simple_config(&up, models).replacen(
        "providers:\n",
        &format!(
            "storage: \"{db}\"\nproviders:\n  breaks: {{ type: openai-compatible, base_url: \"{}/v1\" }}\n  slowp: {{ type: openai-compatible, base_url: \"{}/v1\" }}\n",
            breaks.url, slow.url
        ),
        1,
    );
    let (gw, _) = gateway(&cfg);
    let url = format!("{}/v1/chat/completions", gw.url);
    let stream = |model: &str| json!({"model": model, "stream": true, "stream_options": {"include_usage": true}, "messages": user("go on")});

    // Breaks after a few chunks, nowhere to continue: an error frame ends it.
    let resp = post(&url, Some(MASTER), &stream("brittle")).await;
    let broken_id = request_id(&resp);
    let frames = sse_data(resp).await;
    assert!(frames.last().is_some_and(|f| f.contains("\"error\"")), "{frames:?}");

    // Breaks, then another target continues it.
    let resp = post(&url, Some(MASTER), &stream("recovers")).await;
    let continued_id = request_id(&resp);
    let frames = sse_data(resp).await;
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));

    // The client reads a little, then leaves.
    let mut resp = post(&url, Some(MASTER), &stream("slow")).await;
    let cancelled_id = request_id(&resp);
    let first = tokio::time::timeout(Duration::from_secs(10), resp.chunk()).await;
    assert!(first.is_ok_and(|c| c.is_ok_and(|c| c.is_some())));
    drop(resp);

    let store = Store::open(&db).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for_records(&store, 3).await;
    let get = |id: String| {
        let store = store.clone();
        async move { store.get_record(&id).await.ok().flatten().unwrap_or_else(|| panic!("no record {id}")) }
    };

    let broken = get(broken_id).await;
    assert!(broken.status >= 500, "{broken:?}");
    assert!(broken.response_bytes > 0, "what was sent before the break is counted");
    assert_eq!(broken.attempts.len(), 1);
    assert_eq!(broken.attempts[0].outcome, "failed", "the attempt broke after answering");
    assert!(broken.attempts[0].reason.as_deref().is_some_and(|r| r.starts_with("the stream broke")));
    assert!(broken.first_token_us.is_some());

    let continued = get(continued_id).await;
    assert_eq!(continued.status, 200);
    let outcomes: Vec<_> = continued.attempts.iter().map(|a| (a.provider.as_str(), a.outcome.as_str())).collect();
    assert_eq!(outcomes, [("breaks", "failed"), ("up", "answered")]);
    assert_eq!(continued.provider.as_deref(), Some("up"), "the target that finished the answer");
    assert!(continued.usage.is_some() && continued.cost.is_some(), "priced by the continuing target");

    let cancelled = get(cancelled_id).await;
    assert_eq!(cancelled.status, 499);
    assert_eq!(cancelled.error_type.as_deref(), Some("client_closed"));
    assert!(cancelled.response_bytes > 0 && cancelled.first_token_us.is_some());
}

#[tokio::test]
async fn odd_client_strings_are_stored_on_postgres() {
    let up = mock(&[]);
    let schema = PgSchema::new().await;
    let (gw, _) = gateway(&config(&up, &up, &schema.url(), ""));
    let url = format!("{}/v1/chat/completions", gw.url);
    // A NUL in the end-user id, and a model name far longer than an index entry may be.
    let nul = post(&url, Some(MASTER), &json!({"model": "chat", "user": "a\u{0}b", "messages": user("x")})).await;
    assert_eq!(nul.status(), 200);
    let long = post(&url, Some(MASTER), &json!({"model": "m".repeat(5000), "messages": user("x")})).await;
    assert_eq!(long.status(), 404);
    let ids = [request_id(&nul), request_id(&long)];
    let store = Store::open(&schema.url()).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for_records(&store, 2).await;
    let first = store.get_record(&ids[0]).await.ok().flatten().unwrap_or_else(|| panic!("no record"));
    assert_eq!(first.user.as_deref(), Some("ab"));
    let second = store.get_record(&ids[1]).await.ok().flatten().unwrap_or_else(|| panic!("no record"));
    assert_eq!(second.requested_model.map(|m| m.len()), Some(256));
}
