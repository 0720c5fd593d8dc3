//! Conformance on real recorded Anthropic traffic (`../shared/fixtures/anthropic`): requests
//! decode into the IR and round-trip through it; answers and streams decode with every field
//! checked against the recorded JSON (signatures byte-exact), and re-encode to the same thing.

mod common;

use serde_json::Value;
use switchyard_protocols::{anthropic, sse};
use switchyard_types::{ChatResponse, FinishReason, StreamAssembler, StreamEvent};

use common::*;

fn is_messages(x: &Exchange) -> bool {
    let path = x.url.split('?').next().unwrap_or_default();
    path.ends_with("/v1/messages")
}

fn is_sse(body: &str) -> bool {
    body.trim_start().starts_with("event:")
}

fn decode_sse(body: &str) -> (Vec<StreamEvent>, Vec<Value>) {
    let mut d = sse::SseDecoder::default();
    let mut frames = d.feed(body.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    frames.extend(d.finish());
    let data: Vec<Value> = frames.iter().filter_map(|f| serde_json::from_str(&f.data).ok()).collect();
    let mut dec = anthropic::EventDecoder::default();
    let events =
        frames.iter().flat_map(|f| dec.decode(&f.data).unwrap_or_else(|e| panic!("{e}: {}", f.data))).collect();
    (events, data)
}

fn assemble(events: &[StreamEvent]) -> ChatResponse {
    let mut a = StreamAssembler::default();
    events.iter().for_each(|e| a.push(e));
    a.finish()
}

#[test]
fn requests_round_trip_through_the_ir() {
    let mut checked = 0;
    for x in all_exchanges("anthropic", "").iter().filter(|x| is_messages(x)) {
        let Some(Value::Object(body)) = &x.request else { continue };
        let ir = anthropic::decode_messages_request(body, true).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        let encoded = anthropic::encode_messages_request(&ir, &ir.model).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        let again = anthropic::decode_messages_request(&encoded, true).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        assert_eq!(again, ir, "{}", x.file);
        // Every recorded block is somewhere in the IR: count them.
        let blocks = |v: &Value| -> usize {
            v["messages"].as_array().into_iter().flatten().map(|m| m["content"].as_array().map_or(1, Vec::len)).sum()
        };
        assert_eq!(blocks(&Value::Object(encoded.clone())), blocks(&Value::Object(body.clone())), "{}", x.file);
        for key in ["model", "max_tokens", "tools", "tool_choice", "thinking", "system", "stop_sequences"] {
            if let Some(v) = body.get(key) {
                match (key, v) {
                    // A string system prompt comes back as one text block.
                    ("system", Value::String(s)) => assert_eq!(encoded[key][0]["text"], *s, "{}", x.file),
                    _ => assert_eq!(encoded.get(key), Some(v), "{}: {key}", x.file),
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} requests");
}

#[test]
fn whole_answers_decode_field_by_field_and_re_encode() {
    let mut checked = 0;
    for x in all_exchanges("anthropic", "").iter().filter(|x| is_messages(x) && x.status == 200 && !is_sse(&x.body)) {
        let v: Value = serde_json::from_str(&x.body).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        let r = anthropic::decode_messages_response(&v);
        let m = &r.choices[0].message;
        let blocks = v["content"].as_array().cloned().unwrap_or_default();
        let of = |t: &str| blocks.iter().filter(|b| b["type"] == t).cloned().collect::<Vec<_>>();
        let text: String = of("text").iter().filter_map(|b| b["text"].as_str()).collect();
        assert_eq!(m.text(), text, "{}", x.file);
        assert_eq!(m.tool_calls.len(), of("tool_use").len(), "{}", x.file);
        for (call, b) in m.tool_calls.iter().zip(of("tool_use")) {
            assert_eq!(call.id, b["id"].as_str().unwrap_or_default());
            assert_eq!(serde_json::from_str::<Value>(&call.arguments).ok(), Some(b["input"].clone()), "{}", x.file);
        }
        let sigs: Vec<_> = m.reasoning.iter().filter_map(|r| r.signature.clone()).collect();
        let want: Vec<_> = of("thinking").iter().filter_map(|b| b["signature"].as_str().map(str::to_string)).collect();
        assert_eq!(sigs, want, "{}: signatures byte-exact", x.file);
        let u = r.usage.unwrap_or_default();
        let n = |k: &str| v["usage"][k].as_u64().unwrap_or(0);
        assert_eq!(u.input_tokens, n("input_tokens") + n("cache_read_input_tokens") + n("cache_creation_input_tokens"));
        assert_eq!((u.output_tokens, u.cache_read_tokens), (n("output_tokens"), n("cache_read_input_tokens")));
        let back = anthropic::encode_messages_response(&r);
        assert_eq!(back["content"], v["content"], "{}", x.file);
        assert_eq!(back["stop_reason"], v["stop_reason"], "{}", x.file);
        assert_eq!(back["id"], v["id"]);
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} answers");
}

/// Reassembles a recorded stream by hand: the text, each tool block's JSON, the signatures.
fn by_hand(data: &[Value]) -> (String, Vec<Value>, Vec<String>, Option<String>) {
    let mut text = String::new();
    let mut tools: Vec<(u64, String)> = Vec::new();
    let mut sigs = Vec::new();
    let mut stop = None;
    for d in data {
        match d["type"].as_str().unwrap_or_default() {
            "content_block_start" if d["content_block"]["type"] == "tool_use" => {
                tools.push((d["index"].as_u64().unwrap_or(0), String::new()))
            }
            "content_block_delta" => {
                let delta = &d["delta"];
                match delta["type"].as_str().unwrap_or_default() {
                    "text_delta" => text.push_str(delta["text"].as_str().unwrap_or_default()),
                    "signature_delta" => sigs.push(delta["signature"].as_str().unwrap_or_default().to_string()),
                    "input_json_delta" => {
                        if let Some(t) = tools.iter_mut().find(|(i, _)| Some(*i) == d["index"].as_u64()) {
                            t.1.push_str(delta["partial_json"].as_str().unwrap_or_default());
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => stop = d["delta"]["stop_reason"].as_str().map(str::to_string),
            _ => {}
        }
    }
    let tools = tools
        .into_iter()
        .map(|(_, j)| serde_json::from_str(if j.is_empty() { "{}" } else { &j }).unwrap_or(Value::Null))
        .collect();
    (text, tools, sigs, stop)
}

#[test]
fn streams_decode_like_the_recorded_deltas_and_re_encode() {
    let mut bodies: Vec<(String, String)> = all_exchanges("anthropic", "")
        .into_iter()
        .filter(|x| is_messages(x) && x.status == 200 && is_sse(&x.body))
        .map(|x| (x.file, x.body))
        .collect();
    let raw = fixtures().join("anthropic/gomodel-raw-stream-text.sse");
    bodies.push(("gomodel-raw-stream-text.sse".into(), std::fs::read_to_string(raw).unwrap_or_else(|e| panic!("{e}"))));
    let jsonl = std::fs::read_to_string(fixtures().join("anthropic/vercel-stream-tool-use-args.chunks.jsonl"))
        .unwrap_or_else(|e| panic!("{e}"));
    let as_sse: String =
        jsonl.lines().filter(|l| !l.trim().is_empty()).map(|l| format!("event: x\ndata: {l}\n\n")).collect();
    bodies.push(("vercel-stream-tool-use-args.chunks.jsonl".into(), as_sse));
    let mut parallel = 0;
    for (file, body) in &bodies {
        let (events, data) = decode_sse(body);
        let r = assemble(&events);
        let m = &r.choices[0].message;
        let (text, tools, sigs, stop) = by_hand(&data);
        assert_eq!(m.text(), text, "{file}");
        let calls: Vec<Value> =
            m.tool_calls.iter().map(|c| serde_json::from_str(&c.arguments).unwrap_or(Value::Null)).collect();
        // Server tools (web search) stream input too but are not IR tool calls; `by_hand`
        // counts client tools only.
        assert_eq!(calls, tools, "{file}: arguments reassembled exactly");
        parallel += usize::from(calls.len() > 1);
        let got_sigs: Vec<String> = m.reasoning.iter().filter_map(|r| r.signature.clone()).collect();
        assert_eq!(got_sigs, sigs, "{file}: signatures byte-exact");
        let finish = r.choices[0].finish_reason.clone();
        assert_eq!(finish.is_some(), stop.is_some(), "{file}");
        if stop.as_deref() == Some("tool_use") {
            assert_eq!(finish, Some(FinishReason::ToolCalls));
        }
        let start_usage = data.iter().find(|d| d["type"] == "message_start").map(|d| d["message"]["usage"].clone());
        let u = r.usage.unwrap_or_default();
        assert_eq!(
            Some(u.input_tokens >= start_usage.as_ref().and_then(|s| s["input_tokens"].as_u64()).unwrap_or(0)),
            Some(true)
        );
        let final_out =
            data.iter().rev().find(|d| d["type"] == "message_delta").and_then(|d| d["usage"]["output_tokens"].as_u64());
        assert_eq!(Some(u.output_tokens), final_out, "{file}");
        // Written back as a stream and read again: the same answer.
        let mut enc = anthropic::EventEncoder::new(&r.model);
        let mut frames: Vec<anthropic::Frame> = events.iter().flat_map(|e| enc.encode(e)).collect();
        frames.extend(enc.finish(None));
        let mut dec = anthropic::EventDecoder::default();
        let again: Vec<StreamEvent> =
            frames.iter().flat_map(|(_, d)| dec.decode(&d.to_string()).unwrap_or_else(|e| panic!("{e}"))).collect();
        let mut r2 = assemble(&again);
        r2.id = r.id.clone();
        assert_eq!(r2.choices, r.choices, "{file}");
        assert_eq!(r2.usage, r.usage, "{file}");
    }
    assert!(bodies.len() >= 8, "only {} streams", bodies.len());
    assert!(parallel >= 1, "no recorded stream had parallel tool calls");
}

#[test]
fn recorded_errors_keep_their_status_and_type() {
    let mut checked = 0;
    for x in all_exchanges("anthropic", "").iter().filter(|x| x.status >= 400) {
        let e = anthropic::decode_error(x.status, x.body.as_bytes(), None);
        assert_eq!(e.http_status(), x.status, "{}", x.file);
        let v: Value = serde_json::from_str(&x.body).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        assert_eq!(e.upstream_type.as_deref(), v["error"]["type"].as_str(), "{}", x.file);
        assert_eq!(anthropic::encode_error(&e)["error"], v["error"], "{}: re-encoded as recorded", x.file);
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} errors");
}
