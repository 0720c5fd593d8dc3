//! Conformance on real recorded Gemini and Vertex traffic (`../shared/fixtures/gemini`,
//! `embeddings/gemini-*`, `embeddings/vertex-*`): requests decode into the IR and round-trip
//! through it; answers decode with every field checked against the recorded JSON (thought
//! signatures byte-exact); SSE and JSON-array streams reassemble to what the chunks say and
//! re-encode to the same events; errors keep their status and meaning; embeddings round-trip.
//!
//! Several recordings store their bodies gzipped (as base64 `!!binary`); the inflater shared in
//! `common` reads them, so that the JSON-array streams and two of the errors are covered too.

mod common;

use serde_json::Value;
use switchyard_protocols::{gemini, sse};
use switchyard_types::{ChatResponse, EmbeddingInput, ErrorKind, FinishReason, StreamAssembler, StreamEvent, Usage};

use common::{Exchange, fixtures, gzip_exchanges as exchanges};

fn is_chat(x: &Exchange) -> bool {
    gemini::split_model_action(&x.url).is_some_and(|(_, action)| action.ends_with("enerateContent"))
}

fn chat_exchanges() -> Vec<Exchange> {
    exchanges("gemini", "").into_iter().filter(is_chat).collect()
}

/// Every `thoughtSignature` in a body, in order.
fn signatures(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(v, &mut |obj| {
        if let Some(s) = obj.get("thoughtSignature").and_then(Value::as_str) {
            out.push(s.to_string());
        }
    });
    out
}

/// Every `functionCall` (name and args) in a body, in order; snake_case too.
fn function_calls(v: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    walk(v, &mut |obj| {
        if let Some(call) = obj.get("functionCall").or_else(|| obj.get("function_call")) {
            let name = call["name"].as_str().unwrap_or_default().to_string();
            out.push((name, call.get("args").cloned().unwrap_or_else(|| serde_json::json!({}))));
        }
    });
    out
}

fn walk(v: &Value, f: &mut dyn FnMut(&serde_json::Map<String, Value>)) {
    match v {
        Value::Object(obj) => {
            f(obj);
            obj.values().for_each(|v| walk(v, f));
        }
        Value::Array(items) => items.iter().for_each(|v| walk(v, f)),
        _ => {}
    }
}

#[test]
fn requests_round_trip_through_the_ir() {
    let mut checked = 0;
    for x in chat_exchanges().iter().filter(|x| x.request.is_some()) {
        let Some(Value::Object(body)) = &x.request else { panic!("{}: request is not an object", x.file) };
        let ir = gemini::decode_chat_request(body).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        let encoded = gemini::encode_chat_request(&ir).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        let again = gemini::decode_chat_request(&encoded).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        assert_eq!(again, ir, "{}", x.file);

        let recorded = Value::Object(body.clone());
        let encoded = Value::Object(encoded);
        // Signatures go back byte-exact (Google's stand-in may be added to an unsigned call).
        let sent: Vec<String> = signatures(&encoded).into_iter().filter(|s| s != gemini::SIGNATURE_SENTINEL).collect();
        assert_eq!(sent, signatures(&recorded), "{}", x.file);
        assert_eq!(function_calls(&encoded), function_calls(&recorded), "{}", x.file);
        let declared = |v: &Value| {
            v["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["functionDeclarations"].as_array())
                .flatten()
                .count()
        };
        assert_eq!(ir.tools.len(), declared(&recorded), "{}", x.file);
        assert_eq!(ir.system.is_empty(), recorded.get("systemInstruction").is_none(), "{}", x.file);
        // Fields the IR does not model travel for the same protocol.
        for key in ["safetySettings", "cachedContent"] {
            assert_eq!(encoded.get(key), recorded.get(key), "{}: {key}", x.file);
        }
        let modalities = |v: &Value| v.pointer("/generationConfig/responseModalities").cloned();
        assert_eq!(modalities(&encoded), modalities(&recorded), "{}", x.file);
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} requests found");
}

#[test]
fn the_recorded_function_responses_find_their_calls() {
    let x = chat_exchanges()
        .into_iter()
        .find(|x| {
            x.file.contains("parallel-function-calls")
                && x.request.as_ref().is_some_and(|r| r.to_string().contains("functionResponse"))
        })
        .unwrap_or_else(|| panic!("no parallel function-call follow-up"));
    let Some(Value::Object(body)) = &x.request else { panic!("no request") };
    let ir = gemini::decode_chat_request(body).unwrap_or_else(|e| panic!("{e}"));
    let calls: Vec<&str> = ir.messages[1].tool_calls.iter().map(|c| c.id.as_str()).collect();
    let answered: Vec<&str> = ir.messages[2..].iter().filter_map(|m| m.tool_call_id.as_deref()).collect();
    assert_eq!(calls, answered);
    assert_eq!(calls.len(), 2);
    assert_eq!(ir.messages[2].text(), "Welcome to Moria!");
    // The URL-safe base64 the client sent back stays exactly as sent.
    assert!(ir.messages[1].tool_calls[0].signature.as_deref().is_some_and(|s| s.contains('_')));
}

/// The text, reasoning, calls and signatures a list of answer chunks (or one answer) holds.
struct Said {
    text: String,
    thoughts: String,
    calls: Vec<(String, Value)>,
    signatures: Vec<String>,
}

fn said(chunks: &[Value]) -> Said {
    let mut s = Said { text: String::new(), thoughts: String::new(), calls: Vec::new(), signatures: Vec::new() };
    for chunk in chunks {
        for part in chunk.pointer("/candidates/0/content/parts").and_then(Value::as_array).into_iter().flatten() {
            let text = part["text"].as_str().unwrap_or_default();
            if part["thought"] == Value::Bool(true) {
                s.thoughts.push_str(text);
            } else {
                s.text.push_str(text);
            }
        }
        s.calls.extend(function_calls(chunk));
        s.signatures.extend(signatures(chunk));
    }
    s
}

/// Checks an answer in the IR against what the recorded chunks say.
fn check_answer(r: &ChatResponse, chunks: &[Value], file: &str) {
    let want = said(chunks);
    let m = &r.choices[0].message;
    assert_eq!(m.text(), want.text, "{file}");
    let thoughts: String = m.reasoning.iter().map(|b| b.text.as_str()).collect();
    assert_eq!(thoughts, want.thoughts, "{file}");
    let calls: Vec<(String, Value)> = m
        .tool_calls
        .iter()
        .map(|c| (c.name.clone(), serde_json::from_str(&c.arguments).unwrap_or_else(|e| panic!("{file}: {e}"))))
        .collect();
    assert_eq!(calls, want.calls, "{file}");
    // Every signature Gemini sent is kept, byte for byte, on a call or a reasoning block.
    let mut kept: Vec<String> = m.tool_calls.iter().filter_map(|c| c.signature.clone()).collect();
    kept.extend(m.reasoning.iter().filter_map(|b| b.signature.clone()));
    let mut sent = want.signatures.clone();
    kept.sort();
    sent.sort();
    assert_eq!(kept, sent, "{file}");
    let ids: std::collections::HashSet<&str> = m.tool_calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), m.tool_calls.len(), "{file}: call ids must be distinct");
    let last = chunks.last().unwrap_or(&Value::Null);
    let n = |k: &str| last["usageMetadata"][k].as_u64().unwrap_or(0);
    let u = r.usage.unwrap_or_default();
    assert_eq!(u.input_tokens, n("promptTokenCount") + n("toolUsePromptTokenCount"), "{file}");
    assert_eq!(u.output_tokens, n("candidatesTokenCount") + n("thoughtsTokenCount"), "{file}");
    assert_eq!(
        (u.reasoning_tokens, u.cache_read_tokens),
        (n("thoughtsTokenCount"), n("cachedContentTokenCount")),
        "{file}"
    );
    let finish = chunks.iter().rev().find_map(|c| c.pointer("/candidates/0/finishReason")).and_then(Value::as_str);
    let expected = match finish {
        Some("STOP") if !want.calls.is_empty() => Some(FinishReason::ToolCalls),
        Some("STOP") => Some(FinishReason::Stop),
        Some("MAX_TOKENS") => Some(FinishReason::Length),
        Some(other) => panic!("{file}: unexpected finish reason {other} in the recordings"),
        None => None,
    };
    assert_eq!(r.choices[0].finish_reason, expected, "{file}");
    assert_eq!(r.id, last["responseId"].as_str().unwrap_or_default(), "{file}");
    assert_eq!(r.model, last["modelVersion"].as_str().unwrap_or_default(), "{file}");
}

#[test]
fn whole_answers_decode_field_by_field_and_round_trip() {
    let mut checked = 0;
    for x in chat_exchanges().iter().filter(|x| x.status == 200 && x.body.trim_start().starts_with('{')) {
        let v: Value = serde_json::from_str(&x.body).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        let r = gemini::decode_chat_response(&v);
        check_answer(&r, std::slice::from_ref(&v), &x.file);
        let encoded = gemini::encode_chat_response(&r);
        assert_eq!(gemini::decode_chat_response(&encoded), r, "{}", x.file);
        for key in v.as_object().into_iter().flatten().map(|(k, _)| k) {
            assert!(encoded.get(key).is_some(), "{}: lost top-level field {key}", x.file);
        }
        assert_eq!(signatures(&encoded), signatures(&v), "{}", x.file);
        assert_eq!(encoded["usageMetadata"], v["usageMetadata"], "{}", x.file);
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} answers found");
}

/// The chunks of a recorded stream: SSE events' data, or the elements of a JSON array.
fn stream_chunks(body: &str) -> Vec<String> {
    if body.trim_start().starts_with('[') {
        let mut framer = gemini::JsonArrayFramer::default();
        return framer.feed(body.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut d = sse::SseDecoder::default();
    let mut frames = d.feed(body.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    frames.extend(d.finish());
    frames.into_iter().map(|f| f.data).collect()
}

fn decode_stream(chunks: &[String]) -> Vec<StreamEvent> {
    let mut d = gemini::StreamDecoder::default();
    let mut events: Vec<StreamEvent> =
        chunks.iter().flat_map(|c| d.decode(c).unwrap_or_else(|e| panic!("{e}: {c}"))).collect();
    events.extend(d.finish());
    events
}

fn assemble(events: &[StreamEvent]) -> ChatResponse {
    let mut a = StreamAssembler::default();
    events.iter().for_each(|e| a.push(e));
    a.finish()
}

#[test]
fn streams_reassemble_to_what_their_chunks_say() {
    let mut checked = 0;
    let mut json_arrays = 0;
    for x in chat_exchanges().iter().filter(|x| x.status == 200 && x.url.contains(":streamGenerateContent")) {
        let chunks = stream_chunks(&x.body);
        assert!(!chunks.is_empty(), "{}: no chunks", x.file);
        json_arrays += usize::from(x.body.trim_start().starts_with('['));
        let values: Vec<Value> =
            chunks.iter().map(|c| serde_json::from_str(c).unwrap_or_else(|e| panic!("{}: {e}", x.file))).collect();
        let events = decode_stream(&chunks);
        assert!(matches!(events.first(), Some(StreamEvent::Start { .. })), "{}", x.file);
        let count = |f: &dyn Fn(&StreamEvent) -> bool| events.iter().filter(|e| f(e)).count();
        assert_eq!(count(&|e| matches!(e, StreamEvent::Usage(_))), 1, "{}: usage once", x.file);
        assert_eq!(count(&|e| matches!(e, StreamEvent::Finish { .. })), 1, "{}: one finish", x.file);
        assert_eq!(count(&|e| matches!(e, StreamEvent::Role { .. })), 1, "{}: one role", x.file);
        // Whole calls, one event each, with increasing indexes.
        let indexes: Vec<u32> = events
            .iter()
            .filter_map(|e| if let StreamEvent::ToolCall { index, .. } = e { Some(*index) } else { None })
            .collect();
        assert_eq!(indexes, (0..indexes.len() as u32).collect::<Vec<_>>(), "{}", x.file);
        let r = assemble(&events);
        check_answer(&r, &values, &x.file);

        // The same events come back through the encoder a Gemini client is served by.
        let mut enc = gemini::StreamEncoder::default();
        let mut out: Vec<Value> = events.iter().flat_map(|e| enc.encode(e)).collect();
        out.extend(enc.finish());
        let again = decode_stream(&out.iter().map(Value::to_string).collect::<Vec<_>>());
        assert_eq!(again, events, "{}", x.file);
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} streams found");
    assert!(json_arrays >= 3, "only {json_arrays} JSON-array streams found");
}

#[test]
fn parallel_calls_in_one_chunk_get_distinct_indexes_and_ids() {
    let x = chat_exchanges()
        .into_iter()
        .find(|x| x.file.contains("parallel-function-calls") && x.body.contains("functionCall"))
        .unwrap_or_else(|| panic!("no parallel function-call stream"));
    let events = decode_stream(&stream_chunks(&x.body));
    let calls: Vec<(u32, String)> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCall { index, id, .. } => Some((*index, id.clone().unwrap_or_default())),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!((calls[0].0, calls[1].0), (0, 1));
    assert_ne!(calls[0].1, calls[1].1);
    let r = assemble(&events);
    assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    // Streamed, the first call's signature closes a reasoning block; sent back, it is the call's.
    let mut req = switchyard_types::ChatRequest::default();
    req.messages.push(switchyard_types::Message::new(
        switchyard_types::Role::User,
        vec![switchyard_types::ContentPart::text("go")],
    ));
    req.messages.push(r.choices[0].message.clone());
    let body = gemini::encode_chat_request(&req).unwrap_or_else(|e| panic!("{e}"));
    let sent = &body["contents"][1]["parts"];
    let recorded: Vec<String> = stream_chunks(&x.body)
        .iter()
        .flat_map(|c| signatures(&serde_json::from_str(c).unwrap_or(Value::Null)))
        .collect();
    assert_eq!(recorded.len(), 1);
    assert_eq!(sent[0]["thoughtSignature"].as_str(), Some(recorded[0].as_str()));
    assert!(sent[0].get("functionCall").is_some() && sent[1].get("thoughtSignature").is_none());
}

#[test]
fn a_json_array_stream_cut_mid_object_reassembles() {
    let dir = fixtures().join("gemini");
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (first, second) = (
        read("kong-stream-jsonarray-partial-json-split-input-1.json.part"),
        read("kong-stream-jsonarray-partial-json-split-input-2.json.part"),
    );
    let mut framer = gemini::JsonArrayFramer::default();
    let mut chunks = framer.feed(&first).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(chunks.len(), 1, "the first read ends inside the second element");
    chunks.extend(framer.feed(&second).unwrap_or_else(|e| panic!("{e}")));
    // The same elements as reading the whole body at once (closed here, as the stream would be).
    let mut whole = [first, second].concat();
    whole.push(b']');
    let values: Vec<Value> = serde_json::from_slice::<Vec<Value>>(&whole).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(chunks.len(), values.len());
    let events = decode_stream(&chunks);
    let r = assemble(&events);
    check_answer(&r, &values, "kong");
    // Gemini 1.5 repeated STOP on every chunk: one finish, and the last chunk's usage.
    assert_eq!(events.iter().filter(|e| matches!(e, StreamEvent::Finish { .. })).count(), 1);
}

#[test]
fn recorded_errors_keep_status_meaning_and_message() {
    let mut checked = 0;
    let all = exchanges("gemini", "").into_iter().chain(exchanges("embeddings", "gemini"));
    for x in all.filter(|x| x.status >= 400) {
        let recorded: Value = serde_json::from_str(&x.body).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        let e = gemini::decode_error(x.status, x.body.as_bytes(), None);
        assert_eq!(e.http_status(), x.status, "{}", x.file);
        assert_eq!(Some(e.message.as_str()), recorded["error"]["message"].as_str(), "{}", x.file);
        let expected = match (x.status, recorded["error"]["details"][0]["reason"].as_str()) {
            (400, Some("API_KEY_INVALID")) => ErrorKind::Authentication,
            (400, _) => ErrorKind::InvalidRequest,
            (404, _) => ErrorKind::NotFound,
            (status, _) => panic!("{}: unexpected status {status} in the recordings", x.file),
        };
        assert_eq!(e.kind, expected, "{}", x.file);
        let back = gemini::encode_error(&e);
        for key in ["code", "status", "message"] {
            assert_eq!(back["error"][key], recorded["error"][key], "{}: {key}", x.file);
        }
        assert_eq!(back["error"]["details"][0]["reason"], recorded["error"]["details"][0]["reason"], "{}", x.file);
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} errors found");
}

#[test]
fn embeddings_round_trip() {
    let mut checked = 0;
    for x in exchanges("embeddings", "gemini").iter().filter(|x| x.status == 200) {
        let Some(Value::Object(body)) = &x.request else { panic!("{}: no request", x.file) };
        let ir = gemini::decode_embedding_request(body).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        let encoded = gemini::encode_embedding_request(&ir, &ir.model).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        assert_eq!(Value::Object(encoded), Value::Object(body.clone()), "{}", x.file);
        let v: Value = serde_json::from_str(&x.body).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        let resp = gemini::decode_embedding_response(&v);
        let recorded = v["embeddings"].as_array().unwrap_or_else(|| panic!("{}: no embeddings", x.file));
        assert_eq!(resp.data.len(), recorded.len(), "{}", x.file);
        assert_eq!(resp.data.len(), ir.input.len(), "{}", x.file);
        for (got, want) in resp.data.iter().zip(recorded) {
            let switchyard_types::EmbeddingVector::Float(values) = &got.vector else {
                panic!("{}: not floats", x.file)
            };
            let want: Vec<f32> =
                want["values"].as_array().into_iter().flatten().map(|f| f.as_f64().unwrap_or(0.0) as f32).collect();
            assert_eq!(values, &want, "{}", x.file);
            if let Some(d) = ir.dimensions {
                assert_eq!(values.len(), d as usize, "{}", x.file);
            }
        }
        let tokens = v.pointer("/usageMetadata/promptTokenCount").and_then(Value::as_u64).unwrap_or(0);
        assert_eq!(resp.usage, Usage { input_tokens: tokens, ..Default::default() }, "{}", x.file);
        let again = gemini::decode_embedding_response(&gemini::encode_embedding_response(&resp));
        assert_eq!(again, resp, "{}", x.file);
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} embeddings found");
}

#[test]
fn vertex_predict_embeddings() {
    let x = exchanges("embeddings", "vertex").into_iter().next().unwrap_or_else(|| panic!("no Vertex recording"));
    let recorded = x.request.clone().unwrap_or(Value::Null);
    let instance = &recorded["instances"][0];
    let mut extra = switchyard_types::JsonMap::new();
    extra.insert("task_type".into(), instance["task_type"].clone());
    let ir = switchyard_types::EmbeddingRequest {
        model: "gemini-embedding-001".into(),
        input: EmbeddingInput::Texts(vec![instance["content"].as_str().unwrap_or_default().to_string()]),
        dimensions: None,
        encoding_format: None,
        user: None,
        extra: switchyard_types::Extra { protocol: Some(switchyard_types::Protocol::OpenAi), fields: extra },
    };
    let body = gemini::encode_vertex_embedding_request(&ir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(Value::Object(body), recorded);
    let v: Value = serde_json::from_str(&x.body).unwrap_or_else(|e| panic!("{e}"));
    let resp = gemini::decode_embedding_response(&v);
    assert_eq!(resp.data.len(), 1);
    let values = v.pointer("/predictions/0/embeddings/values").and_then(Value::as_array).map_or(0, Vec::len);
    assert!(
        matches!(&resp.data[0].vector, switchyard_types::EmbeddingVector::Float(f) if f.len() == values && values > 0)
    );
    let tokens = v.pointer("/predictions/0/embeddings/statistics/token_count").and_then(Value::as_u64);
    assert_eq!(Some(resp.usage.input_tokens), tokens);
}
