//! Conformance on real recorded OpenAI traffic (`../shared/fixtures/`): every recorded request
//! and answer decodes into the IR, re-encodes, and decodes to the same IR; the decoded fields are
//! checked against the recorded JSON.

mod common;

use serde_json::Value;
use switchyard_protocols::{openai, sse};
use switchyard_types::StreamEvent;

use common::*;

fn stream_events(body: &str) -> Vec<StreamEvent> {
    let mut d = sse::SseDecoder::default();
    let mut frames = d.feed(body.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    frames.extend(d.finish());
    let mut chunks = openai::ChunkDecoder::default();
    frames.iter().flat_map(|f| chunks.decode(&f.data).unwrap_or_else(|e| panic!("{e}: {}", f.data))).collect()
}

#[test]
fn chat_requests_round_trip_through_the_ir() {
    let exchanges = all_exchanges("openai", "");
    let mut checked = 0;
    for x in exchanges.iter().filter(|x| x.url.ends_with("chat/completions") && x.status == 200) {
        let Some(Value::Object(body)) = &x.request else { panic!("{}: no request body", x.file) };
        let ir = openai::decode_chat_request(body).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        let again = openai::decode_chat_request(&openai::encode_chat_request(&ir, &ir.model))
            .unwrap_or_else(|e| panic!("{}: {e}", x.file));
        assert_eq!(again, ir, "{}", x.file);
        assert_eq!(ir.messages.len() + ir.system.len(), body["messages"].as_array().map_or(0, Vec::len), "{}", x.file);
        assert_eq!(ir.tools.len(), body.get("tools").and_then(Value::as_array).map_or(0, Vec::len), "{}", x.file);
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} chat requests found");
}

#[test]
fn chat_answers_decode_field_by_field_and_round_trip() {
    let mut checked = 0;
    for x in all_exchanges("openai", "").iter().filter(|x| x.url.ends_with("chat/completions") && x.status == 200) {
        if x.body.trim_start().starts_with("data:") {
            let events = stream_events(&x.body);
            // The text and tool-call arguments equal the concatenated deltas of the recording.
            let mut text = String::new();
            let mut args = String::new();
            for line in x.body.lines().filter_map(|l| l.strip_prefix("data: ")) {
                let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
                for c in v["choices"].as_array().into_iter().flatten() {
                    text.push_str(c["delta"]["content"].as_str().unwrap_or(""));
                    for t in c["delta"]["tool_calls"].as_array().into_iter().flatten() {
                        args.push_str(t["function"]["arguments"].as_str().unwrap_or(""));
                    }
                }
            }
            let ir_text: String = events
                .iter()
                .filter_map(|e| if let StreamEvent::Text { text, .. } = e { Some(text.as_str()) } else { None })
                .collect();
            let ir_args: String = events
                .iter()
                .filter_map(|e| {
                    if let StreamEvent::ToolCall { arguments, .. } = e { Some(arguments.as_str()) } else { None }
                })
                .collect();
            assert_eq!(ir_text, text, "{}", x.file);
            assert_eq!(ir_args, args, "{}", x.file);
            assert!(events.iter().any(|e| matches!(e, StreamEvent::Finish { .. })), "{}: no finish", x.file);
            // Re-encoded and decoded again, the events are the same.
            let mut enc = openai::ChunkEncoder::new(true);
            let mut dec = openai::ChunkDecoder::default();
            let again: Vec<StreamEvent> = events
                .iter()
                .filter_map(|e| enc.encode(e))
                .flat_map(|c| dec.decode(&c.to_string()).unwrap_or_else(|e| panic!("{e}")))
                .collect();
            assert_eq!(again, events, "{}", x.file);
        } else {
            let v: Value = serde_json::from_str(&x.body).unwrap_or_else(|e| panic!("{}: {e}", x.file));
            let ir = openai::decode_chat_response(&v);
            let msg = &v["choices"][0]["message"];
            assert_eq!(ir.choices[0].message.text(), msg["content"].as_str().unwrap_or(""), "{}", x.file);
            assert_eq!(
                ir.choices[0].message.tool_calls.len(),
                msg["tool_calls"].as_array().map_or(0, Vec::len),
                "{}",
                x.file
            );
            let u = ir.usage.unwrap_or_default();
            assert_eq!(Some(u.input_tokens), v["usage"]["prompt_tokens"].as_u64(), "{}", x.file);
            assert_eq!(Some(u.output_tokens), v["usage"]["completion_tokens"].as_u64(), "{}", x.file);
            assert_eq!(
                u.reasoning_tokens,
                v["usage"]["completion_tokens_details"]["reasoning_tokens"].as_u64().unwrap_or(0),
                "{}",
                x.file
            );
            let encoded = openai::encode_chat_response(&ir);
            assert_eq!(openai::decode_chat_response(&encoded), ir, "{}", x.file);
            // Provider-only fields (service_tier, system_fingerprint, Azure's filter results) survive.
            for key in v.as_object().into_iter().flatten().map(|(k, _)| k) {
                assert!(encoded.get(key).is_some(), "{}: lost top-level field {key}", x.file);
            }
        }
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} chat answers found");
}

#[test]
fn recorded_errors_keep_status_type_and_message() {
    let mut checked = 0;
    for x in all_exchanges("openai", "")
        .iter()
        .chain(all_exchanges("embeddings", "openai").iter())
        .filter(|x| x.status >= 400)
    {
        let recorded: Value = serde_json::from_str(&x.body).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        let e = openai::decode_error(x.status, x.body.as_bytes(), None);
        assert_eq!(e.http_status(), x.status, "{}", x.file);
        assert_eq!(Some(e.message.as_str()), recorded["error"]["message"].as_str(), "{}", x.file);
        let back = openai::encode_error(&e);
        assert_eq!(back["error"]["type"], recorded["error"]["type"], "{}", x.file);
        assert_eq!(back["error"]["code"], recorded["error"]["code"], "{}", x.file);
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} errors found");
}

#[test]
fn raw_recordings_decode() {
    let dir = fixtures().join("openai");
    let sse = std::fs::read_to_string(dir.join("gomodel-raw-chat-stream.sse")).unwrap_or_else(|e| panic!("{e}"));
    let events = stream_events(&sse);
    assert!(matches!(events.first(), Some(StreamEvent::Start { .. })));
    assert!(events.iter().any(|e| matches!(e, StreamEvent::Text { .. })));
    let json = std::fs::read_to_string(dir.join("gomodel-raw-chat-tool-call.json")).unwrap_or_else(|e| panic!("{e}"));
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    let ir = openai::decode_chat_response(&v);
    let call = &ir.choices[0].message.tool_calls[0];
    assert_eq!(
        Some(call.arguments.as_str()),
        v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"].as_str()
    );
}

#[test]
fn embeddings_round_trip() {
    let mut checked = 0;
    for x in all_exchanges("embeddings", "openai").iter().filter(|x| x.status == 200) {
        let Some(Value::Object(body)) = &x.request else { panic!("{}: no request", x.file) };
        let ir = openai::decode_embedding_request(body).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        assert_eq!(
            openai::decode_embedding_request(&openai::encode_embedding_request(&ir, &ir.model)).ok(),
            Some(ir.clone())
        );
        let v: Value = serde_json::from_str(&x.body).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        let resp = openai::decode_embedding_response(&v);
        assert_eq!(resp.data.len(), v["data"].as_array().map_or(0, Vec::len), "{}", x.file);
        assert_eq!(Some(resp.usage.input_tokens), v["usage"]["prompt_tokens"].as_u64(), "{}", x.file);
        let again = openai::decode_embedding_response(&openai::encode_embedding_response(&resp));
        assert_eq!(again.data, resp.data, "{}", x.file);
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} embeddings found");
}
