//! Conformance on real recorded OpenAI Responses traffic (`../shared/fixtures/openai-responses`):
//! every recorded request round-trips through the IR; every answer decodes with its fields
//! checked against the recorded JSON (encrypted reasoning byte-exact) and re-encodes to the
//! recorded JSON; every stream reassembles to what its deltas say and survives re-encoding;
//! errors, in a body or inside a stream, keep their status, type and code.

mod common;

use std::path::PathBuf;

use serde_json::Value;
use switchyard_protocols::{openai, sse};
use switchyard_types::{ChatResponse, ContentPart, FinishReason, StreamAssembler, StreamEvent};

use common::{Exchange, fixtures, gzip_exchanges};

const DIR: &str = "openai-responses";

fn exchanges() -> Vec<Exchange> {
    gzip_exchanges(DIR, "")
}

fn raw(name: &str) -> String {
    let path: PathBuf = fixtures().join(DIR).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn is_stream(body: &str) -> bool {
    let start = body.trim_start();
    start.starts_with("event:") || start.starts_with("data:")
}

/// The JSON data of each event of an SSE body.
fn sse_events(body: &str) -> Vec<Value> {
    let mut d = sse::SseDecoder::default();
    let mut frames = d.feed(body.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    frames.extend(d.finish());
    frames.iter().map(|f| serde_json::from_str(&f.data).unwrap_or_else(|e| panic!("{e}: {}", f.data))).collect()
}

fn decode_stream(events: &[Value]) -> Vec<StreamEvent> {
    let mut d = openai::ResponsesStreamDecoder::default();
    events.iter().flat_map(|e| d.decode(&e.to_string()).unwrap_or_else(|err| panic!("{err}: {e}"))).collect()
}

fn assemble(events: &[StreamEvent]) -> ChatResponse {
    let mut a = StreamAssembler::default();
    events.iter().for_each(|e| a.push(e));
    a.finish()
}

fn items<'a>(output: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    output.as_array().into_iter().flatten().filter(move |i| i["type"] == kind)
}

#[test]
fn requests_round_trip_through_the_ir() {
    let mut checked = 0;
    for x in &exchanges() {
        let Some(Value::Object(body)) = &x.request else { panic!("{}: no request body", x.file) };
        let ir = openai::decode_responses_request(body).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        let encoded = openai::encode_responses_request(&ir, &ir.model).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        let again = openai::decode_responses_request(&encoded).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        assert_eq!(again, ir, "{}", x.file);
        assert_eq!(
            ir.tools.len() + ir.extra.fields.get("tools").and_then(Value::as_array).map_or(0, Vec::len),
            body.get("tools").and_then(Value::as_array).map_or(0, Vec::len),
            "{}",
            x.file
        );
        // Every function call, result and encrypted reasoning of the history is in the IR as it came.
        let input = body.get("input").cloned().unwrap_or_default();
        let calls: Vec<_> = ir.messages.iter().flat_map(|m| &m.tool_calls).collect();
        for (call, item) in calls.iter().zip(items(&input, "function_call")) {
            assert_eq!(
                (Some(call.id.as_str()), Some(call.arguments.as_str())),
                (item["call_id"].as_str(), item["arguments"].as_str()),
                "{}",
                x.file
            );
        }
        assert_eq!(calls.len(), items(&input, "function_call").count(), "{}", x.file);
        let results = ir.messages.iter().filter(|m| m.tool_call_id.is_some()).count();
        assert_eq!(results, items(&input, "function_call_output").count(), "{}", x.file);
        let redacted: Vec<&str> =
            ir.messages.iter().flat_map(|m| &m.reasoning).filter_map(|r| r.redacted.as_deref()).collect();
        let recorded: Vec<&str> = items(&input, "reasoning").filter_map(|i| i["encrypted_content"].as_str()).collect();
        assert_eq!(redacted, recorded, "{}", x.file);
        let ids: Vec<&str> = items(&encoded["input"], "reasoning").filter_map(|i| i["id"].as_str()).collect();
        let recorded_ids: Vec<&str> = items(&input, "reasoning").filter_map(|i| i["id"].as_str()).collect();
        assert_eq!(ids, recorded_ids, "{}: reasoning ids are sent back", x.file);
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} requests found");
}

/// Checks a decoded answer against the recorded `response` object.
fn check_answer(ir: &ChatResponse, v: &Value, file: &str) {
    let output = &v["output"];
    let m = &ir.choices[0].message;
    let text: String = items(output, "message")
        .flat_map(|i| i["content"].as_array().into_iter().flatten())
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert_eq!(m.text(), text, "{file}");
    let calls: Vec<(&str, &str, &str)> =
        m.tool_calls.iter().map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str())).collect();
    let recorded: Vec<(&str, &str, &str)> = items(output, "function_call")
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or_default();
            (s("call_id"), s("name"), s("arguments"))
        })
        .collect();
    assert_eq!(calls, recorded, "{file}");
    let summaries: Vec<&str> =
        m.reasoning.iter().filter(|r| r.redacted.is_none() && !r.text.is_empty()).map(|r| r.text.as_str()).collect();
    let recorded: Vec<&str> = items(output, "reasoning")
        .flat_map(|i| i["summary"].as_array().into_iter().flatten())
        .filter_map(|s| s["text"].as_str())
        .collect();
    assert_eq!(summaries, recorded, "{file}");
    let u = ir.usage.unwrap_or_default();
    let n = |p: &str| v["usage"].pointer(p).and_then(Value::as_u64).unwrap_or(0);
    assert_eq!(
        (u.input_tokens, u.cache_read_tokens, u.output_tokens, u.reasoning_tokens),
        (
            n("/input_tokens"),
            n("/input_tokens_details/cached_tokens"),
            n("/output_tokens"),
            n("/output_tokens_details/reasoning_tokens")
        ),
        "{file}"
    );
    let want = match (v["status"].as_str(), !recorded_calls_empty(output)) {
        (Some("completed"), true) => FinishReason::ToolCalls,
        (Some("completed"), false) => FinishReason::Stop,
        (status, _) => panic!("{file}: unexpected status {status:?}"),
    };
    assert_eq!(ir.choices[0].finish_reason, Some(want), "{file}");
}

fn recorded_calls_empty(output: &Value) -> bool {
    items(output, "function_call").next().is_none()
}

#[test]
fn answers_decode_field_by_field_and_re_encode_as_recorded() {
    let mut bodies: Vec<(String, String)> =
        exchanges().into_iter().filter(|x| x.status == 200 && !is_stream(&x.body)).map(|x| (x.file, x.body)).collect();
    bodies.push(("gomodel-raw-response.json".into(), raw("gomodel-raw-response.json")));
    for (file, body) in &bodies {
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{file}: {e}"));
        let ir = openai::decode_responses_response(&v);
        check_answer(&ir, &v, file);
        let m = &ir.choices[0].message;
        let redacted: Vec<&str> = m.reasoning.iter().filter_map(|r| r.redacted.as_deref()).collect();
        let recorded: Vec<&str> =
            items(&v["output"], "reasoning").filter_map(|i| i["encrypted_content"].as_str()).collect();
        assert_eq!(redacted, recorded, "{file}: encrypted reasoning byte-exact");
        let encoded = openai::encode_responses_response(&ir);
        assert_eq!(encoded, v, "{file}: re-encoded as recorded");
        assert_eq!(openai::decode_responses_response(&encoded), ir, "{file}");
    }
    assert!(bodies.len() >= 7, "only {} answers found", bodies.len());
}

/// What the recorded events of a stream say, put together by hand.
#[derive(Debug, Default, PartialEq)]
struct Said {
    text: String,
    /// (call_id, name, arguments) per function-call item, from the argument deltas.
    calls: Vec<(String, String, String)>,
    summaries: Vec<String>,
    encrypted: Vec<String>,
}

fn said(events: &[Value]) -> Said {
    let mut s = Said::default();
    for e in events {
        let delta = e["delta"].as_str().unwrap_or_default();
        match e["type"].as_str().unwrap_or_default() {
            "response.output_text.delta" => s.text.push_str(delta),
            "response.output_item.added" if e["item"]["type"] == "function_call" => s.calls.push((
                e["item"]["call_id"].as_str().unwrap_or_default().into(),
                e["item"]["name"].as_str().unwrap_or_default().into(),
                String::new(),
            )),
            "response.function_call_arguments.delta" => {
                if let Some(c) = s.calls.last_mut() {
                    c.2.push_str(delta)
                }
            }
            "response.reasoning_summary_part.added" => s.summaries.push(String::new()),
            "response.reasoning_summary_text.delta" => {
                if let Some(t) = s.summaries.last_mut() {
                    t.push_str(delta)
                }
            }
            "response.output_item.done" => {
                s.encrypted.extend(e["item"]["encrypted_content"].as_str().map(str::to_string));
            }
            _ => {}
        }
    }
    s
}

fn said_by_ir(r: &ChatResponse) -> Said {
    let m = &r.choices[0].message;
    Said {
        text: m.text(),
        calls: m.tool_calls.iter().map(|c| (c.id.clone(), c.name.clone(), c.arguments.clone())).collect(),
        summaries: m
            .reasoning
            .iter()
            .filter(|r| r.redacted.is_none() && !r.text.is_empty())
            .map(|r| r.text.clone())
            .collect(),
        encrypted: m.reasoning.iter().filter_map(|r| r.redacted.clone()).collect(),
    }
}

/// Every stream: from the cassettes, the raw `.sse` file and the `.chunks.jsonl` file.
fn streams() -> Vec<(String, Vec<Value>)> {
    let mut out: Vec<(String, Vec<Value>)> = exchanges()
        .into_iter()
        .filter(|x| x.status == 200 && is_stream(&x.body))
        .map(|x| (x.file, sse_events(&x.body)))
        .collect();
    out.push(("gomodel-raw-stream-text.sse".into(), sse_events(&raw("gomodel-raw-stream-text.sse"))));
    let jsonl = raw("vercel-stream-error-event-insufficient-quota.chunks.jsonl");
    let chunks = jsonl.lines().filter(|l| !l.trim().is_empty());
    out.push((
        "vercel-stream-error-event-insufficient-quota.chunks.jsonl".into(),
        chunks.map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect(),
    ));
    out
}

/// Reasoning ids a re-encoded stream gives its items are its own; everything else must match.
fn without_reasoning_ids(mut r: ChatResponse) -> ChatResponse {
    r.choices.iter_mut().flat_map(|c| c.message.reasoning.iter_mut()).for_each(|b| b.signature = None);
    r
}

#[test]
fn streams_reassemble_to_what_their_deltas_say() {
    let mut checked = 0;
    for (file, events) in &streams() {
        let ir = decode_stream(events);
        let r = assemble(&ir);
        assert_eq!(said_by_ir(&r), said(events), "{file}");
        let completed = events.iter().find(|e| e["type"] == "response.completed");
        match completed {
            Some(done) => {
                let whole = &done["response"];
                check_answer(&r, whole, file);
                assert_eq!(r.id, whole["id"].as_str().unwrap_or_default(), "{file}");
                // The whole answer and the streamed one are the same IR, but for the encrypted
                // reasoning, which OpenAI encrypts afresh each time it sends it.
                let mut from_whole = openai::decode_responses_response(whole);
                from_whole.extra = Default::default();
                from_whole.choices[0].message.extra.clear();
                let mut streamed = r.clone();
                streamed.choices[0].message.extra.clear();
                let strip = |r: &mut ChatResponse| {
                    r.choices[0]
                        .message
                        .reasoning
                        .iter_mut()
                        .for_each(|b| b.redacted = b.redacted.as_ref().map(|_| String::new()))
                };
                strip(&mut from_whole);
                strip(&mut streamed);
                assert_eq!(streamed, from_whole, "{file}");
            }
            None => {
                assert!(ir.iter().any(|e| matches!(e, StreamEvent::Error(_))), "{file}: neither completed nor failed")
            }
        }
        // Re-encoded and decoded again, the stream gives the same answer.
        let mut enc = openai::ResponsesStreamEncoder::new("m");
        let mut wire: Vec<Value> = ir.iter().flat_map(|e| enc.encode(e)).collect();
        wire.extend(enc.finish());
        let again = decode_stream(&wire);
        assert_eq!(without_reasoning_ids(assemble(&again)), without_reasoning_ids(r), "{file}");
        assert_eq!(
            again.iter().filter(|e| matches!(e, StreamEvent::Error(_))).count(),
            ir.iter().filter(|e| matches!(e, StreamEvent::Error(_))).count(),
            "{file}"
        );
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} streams found");
}

#[test]
fn parallel_function_calls_get_distinct_indexes() {
    let mut checked = 0;
    for (file, events) in streams().iter().filter(|(f, _)| f.contains("parallel")) {
        let ir = decode_stream(events);
        let firsts: Vec<(u32, &str)> = ir
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCall { index, id: Some(id), .. } => Some((*index, id.as_str())),
                _ => None,
            })
            .collect();
        if firsts.len() < 2 {
            continue;
        }
        let indexes: Vec<u32> = firsts.iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, (0..firsts.len() as u32).collect::<Vec<_>>(), "{file}");
        let calls = &assemble(&ir).choices[0].message.tool_calls;
        assert!(calls.iter().all(|c| c.arguments.starts_with('{') && c.arguments.ends_with('}')), "{file}: {calls:?}");
        assert_ne!(calls[0].id, calls[1].id, "{file}");
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} parallel-call streams found");
}

#[test]
fn usage_comes_from_the_completed_event() {
    for (file, events) in streams() {
        let Some(done) = events.iter().find(|e| e["type"] == "response.completed") else { continue };
        let usage = assemble(&decode_stream(&events)).usage.unwrap_or_else(|| panic!("{file}: no usage"));
        let u = &done["response"]["usage"];
        assert_eq!(Some(usage.input_tokens), u["input_tokens"].as_u64(), "{file}");
        assert_eq!(
            Some(usage.reasoning_tokens),
            u.pointer("/output_tokens_details/reasoning_tokens").and_then(Value::as_u64),
            "{file}"
        );
    }
}

#[test]
fn recorded_errors_keep_status_type_and_code() {
    let mut bodies: Vec<(String, u16, String)> =
        exchanges().into_iter().filter(|x| x.status >= 400).map(|x| (x.file, x.status, x.body)).collect();
    bodies.push((
        "vercel-error-429-insufficient-quota.json".into(),
        429,
        raw("vercel-error-429-insufficient-quota.json"),
    ));
    for (file, status, body) in &bodies {
        let recorded: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{file}: {e}"));
        let e = openai::decode_error(*status, body.as_bytes(), None);
        assert_eq!(e.http_status(), *status, "{file}");
        assert_eq!(Some(e.message.as_str()), recorded["error"]["message"].as_str(), "{file}");
        let back = openai::encode_error(&e);
        for key in ["type", "code", "param"] {
            assert_eq!(back["error"][key], recorded["error"][key], "{file}: {key}");
        }
    }
    assert!(bodies.len() >= 3, "only {} errors found", bodies.len());
}

#[test]
fn the_stream_error_event_keeps_its_meaning() {
    let (_, events) = streams().into_iter().find(|(f, _)| f.ends_with(".chunks.jsonl")).unwrap_or_default();
    let ir = decode_stream(&events);
    let errors: Vec<_> = ir.iter().filter_map(|e| if let StreamEvent::Error(e) = e { Some(e) } else { None }).collect();
    assert_eq!(errors.len(), 1, "the error event and response.failed are one failure");
    let recorded = &events.iter().find(|e| e["type"] == "error").cloned().unwrap_or_default()["error"];
    let e = errors[0];
    assert_eq!(e.http_status(), 429);
    assert_eq!(e.code.as_deref(), recorded["code"].as_str());
    assert_eq!(e.upstream_type.as_deref(), recorded["type"].as_str());
    assert_eq!(Some(e.message.as_str()), recorded["message"].as_str());
    assert!(matches!(ir.first(), Some(StreamEvent::Start { .. })));
    assert!(!ir.iter().any(|e| matches!(e, StreamEvent::Finish { .. })));
}

#[test]
fn recorded_text_is_whole_and_parts_keep_their_annotations() {
    let v: Value = serde_json::from_str(&raw("gomodel-raw-response.json")).unwrap_or_else(|e| panic!("{e}"));
    let ir = openai::decode_responses_response(&v);
    assert_eq!(ir.choices[0].message.content, vec![ContentPart::text("Hello, World!")]);
    let skeleton = &ir.choices[0].message.extra[openai::OUTPUT_ITEMS][0];
    assert_eq!(skeleton["content"][0]["annotations"], serde_json::json!([]));
    assert_eq!(ir.extra.fields.get("service_tier"), Some(&serde_json::json!("default")));
}
