//! Conformance on real recorded Bedrock traffic (`../shared/fixtures/bedrock`): Converse requests
//! decode into the IR and round-trip through it; answers and ConverseStream streams decode with
//! every field checked against the recorded JSON (signatures and redacted reasoning byte-exact),
//! and re-encode to the same thing; errors keep their status.
//!
//! Stream bodies are binary event-stream frames (raw `.eventstream.bin` files, or base64 in the
//! cassettes). The protocols crate cannot use the providers' decoder, so `frames` below reads
//! them minimally: this crate's codec sees only each event's type and JSON payload.

mod common;

use serde_json::{Map, Value, json};
use switchyard_protocols::bedrock;
use switchyard_types::{ChatResponse, FinishReason, StreamAssembler, StreamEvent};

use common::*;

fn is_converse(x: &Exchange) -> bool {
    let path = x.url.split('?').next().unwrap_or_default();
    path.ends_with("/converse") || path.ends_with("/converse-stream")
}

/// The model id in a Converse URL, `%3A` and all decoded.
fn model_of(url: &str) -> String {
    let id = url.split("/model/").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or_default();
    id.replace("%3A", ":").replace("%3a", ":").replace("%2F", "/")
}

/// Base64 as the cassettes store binary bodies (line-wrapped).
fn unbase64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).unwrap_or_else(|| panic!("not base64: {c}"));
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The events of an event-stream body: each message's `:event-type` (or `:exception-type`) and
/// JSON payload. Prelude: total length, headers length, CRC; headers are name, type 7 (string),
/// u16 length, value; the message ends with a CRC.
fn frames(bytes: &[u8]) -> Vec<Event> {
    let u32_at = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let (total, headers_len) = (u32_at(at), u32_at(at + 4));
        let headers = &bytes[at + 12..at + 12 + headers_len];
        let payload = &bytes[at + 12 + headers_len..at + total - 4];
        let mut event_type = String::new();
        let mut h = 0;
        while h < headers.len() {
            let name_len = headers[h] as usize;
            let name = String::from_utf8_lossy(&headers[h + 1..h + 1 + name_len]).to_string();
            h += 1 + name_len;
            assert_eq!(headers[h], 7, "Bedrock sends string headers only");
            let len = u16::from_be_bytes([headers[h + 1], headers[h + 2]]) as usize;
            let value = String::from_utf8_lossy(&headers[h + 3..h + 3 + len]).to_string();
            h += 3 + len;
            if name == ":event-type" || name == ":exception-type" {
                event_type = value;
            }
        }
        let json = serde_json::from_slice(payload).unwrap_or_else(|e| panic!("{e}: {payload:?}"));
        out.push((event_type, json));
        at += total;
    }
    out
}

/// InvokeModelWithResponseStream wraps a model's own events in `chunk` frames: for Nova those are
/// Converse's events, `{"messageStart": {…}}`, in `bytes` (base64).
fn unwrap_chunks(events: Vec<Event>) -> Vec<Event> {
    events
        .into_iter()
        .filter_map(|(_, payload)| {
            let inner: Value = serde_json::from_slice(&unbase64(payload["bytes"].as_str()?)).ok()?;
            let (name, event) = inner.as_object()?.iter().next()?;
            Some((name.clone(), event.clone()))
        })
        .collect()
}

fn assemble(events: &[StreamEvent]) -> ChatResponse {
    let mut a = StreamAssembler::default();
    events.iter().for_each(|e| a.push(e));
    a.finish()
}

/// An empty list or object is the same as the field left out.
fn absent_if_empty(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| match v {
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    })
}

/// The JSON schema in `outputConfig` is a JSON text; its spacing is the client's.
fn schema_parsed(output_config: Option<&Value>) -> Option<Value> {
    let mut oc = output_config?.clone();
    if let Some(schema) = oc.pointer_mut("/textFormat/structure/jsonSchema/schema") {
        *schema = serde_json::from_str(schema.as_str().unwrap_or_default()).unwrap_or(Value::Null);
    }
    Some(oc)
}

#[test]
fn requests_round_trip_through_the_ir() {
    let mut checked = 0;
    for x in all_exchanges("bedrock", "").iter().filter(|x| is_converse(x)) {
        let Some(Value::Object(body)) = &x.request else { continue };
        let model = model_of(&x.url);
        let ir = bedrock::decode_converse_request(body, &model).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        assert_eq!(ir.model, model);
        let encoded = bedrock::encode_converse_request(&ir).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        let again = bedrock::decode_converse_request(&encoded, &model).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        assert_eq!(again, ir, "{}", x.file);
        // Written back exactly as recorded, every block in its place.
        assert_eq!(encoded.get("messages"), body.get("messages"), "{}: messages", x.file);
        for key in ["system", "inferenceConfig", "toolConfig", "additionalModelRequestFields"] {
            assert_eq!(absent_if_empty(encoded.get(key)), absent_if_empty(body.get(key)), "{}: {key}", x.file);
        }
        assert_eq!(schema_parsed(encoded.get("outputConfig")), schema_parsed(body.get("outputConfig")), "{}", x.file);
        let known =
            ["messages", "system", "inferenceConfig", "toolConfig", "additionalModelRequestFields", "outputConfig"];
        assert!(body.keys().all(|k| known.contains(&k.as_str())), "{}: a field this test does not compare", x.file);
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} requests");
}

#[test]
fn recorded_requests_hold_what_the_ir_should() {
    let by_file = |file: &str| {
        all_exchanges("bedrock", file)
            .into_iter()
            .filter_map(|x| {
                let Some(Value::Object(body)) = x.request else { return None };
                bedrock::decode_converse_request(&body, &model_of(&x.url)).ok()
            })
            .collect::<Vec<_>>()
    };
    let cache = &by_file("pydantic-cassette-converse-cache-point")[0];
    let cached: Vec<bool> = cache.messages[0]
        .content
        .iter()
        .map(|p| matches!(p, switchyard_types::ContentPart::Text(t) if t.cache.is_some()))
        .collect();
    assert_eq!(cached, [false, false, true, true], "text, document, \"\\n\" + cachePoint, question + cachePoint");
    assert!(matches!(&cache.messages[0].content[1],
        switchyard_types::ContentPart::File(f) if f.filename.as_deref() == Some("Document 1")));
    assert!(cache.tools[1].cache.is_some() && cache.tools[0].cache.is_none());
    assert!(matches!(&cache.system[0].content[0], switchyard_types::ContentPart::Text(t) if t.cache.is_some()));
    let thinking = &by_file("pydantic-cassette-converse-stream-reasoning-signature")[0];
    assert_eq!(thinking.reasoning.as_ref().and_then(|r| r.budget_tokens), Some(1024));
    let adaptive = &by_file("pydantic-cassette-converse-reasoning-adaptive")[1];
    let replayed = &adaptive.messages[1].reasoning[0];
    assert!(replayed.signature.as_deref().is_some_and(|s| s.starts_with("Ev8BCkgIDRAB")));
    let structured = &by_file("pydantic-cassette-converse-stream-structured-output")[0];
    assert!(matches!(&structured.response_format,
        Some(switchyard_types::ResponseFormat::JsonSchema { name, schema: Some(s), .. }) if name == "CityInfo" && s["required"][0] == "city"));
    let tools = &by_file("pydantic-cassette-converse-stream-tool-use")[1];
    let roles: Vec<_> = tools.messages.iter().map(|m| m.role).collect();
    use switchyard_types::Role::*;
    assert_eq!(roles, [User, Assistant, Tool]);
    assert_eq!(tools.messages[1].tool_calls[0].arguments, r#"{"city":"Paris"}"#);
    assert_eq!(tools.sampling.top_p, Some(0.5));
}

#[test]
fn whole_answers_decode_field_by_field_and_re_encode() {
    let mut checked = 0;
    let answers = all_exchanges("bedrock", "")
        .into_iter()
        .filter(|x| is_converse(x) && x.status == 200 && x.url.ends_with("/converse"));
    for x in answers {
        let v: Value = serde_json::from_str(&x.body).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        let r = bedrock::decode_converse_response(&v);
        let m = &r.choices[0].message;
        let blocks = v.pointer("/output/message/content").and_then(Value::as_array).cloned().unwrap_or_default();
        let of = |kind: &str| blocks.iter().filter_map(|b| b.get(kind)).cloned().collect::<Vec<_>>();
        let text: String = of("text").iter().filter_map(Value::as_str).collect();
        assert_eq!(m.text(), text, "{}", x.file);
        assert_eq!(m.tool_calls.len(), of("toolUse").len(), "{}", x.file);
        for (call, b) in m.tool_calls.iter().zip(of("toolUse")) {
            assert_eq!(
                (call.id.as_str(), call.name.as_str()),
                (b["toolUseId"].as_str().unwrap_or_default(), b["name"].as_str().unwrap_or_default())
            );
            assert_eq!(serde_json::from_str::<Value>(&call.arguments).ok(), Some(b["input"].clone()), "{}", x.file);
        }
        let reasoning: Vec<(String, Option<String>)> =
            m.reasoning.iter().map(|r| (r.text.clone(), r.signature.clone())).collect();
        let want: Vec<(String, Option<String>)> = of("reasoningContent")
            .iter()
            .map(|r| {
                let t = &r["reasoningText"];
                (t["text"].as_str().unwrap_or_default().to_string(), t["signature"].as_str().map(str::to_string))
            })
            .collect();
        assert_eq!(reasoning, want, "{}: reasoning and signatures byte-exact", x.file);
        let u = r.usage.unwrap_or_default();
        let n = |k: &str| v["usage"][k].as_u64().unwrap_or(0);
        assert_eq!(
            u.input_tokens,
            n("inputTokens") + n("cacheReadInputTokens") + n("cacheWriteInputTokens"),
            "{}",
            x.file
        );
        assert_eq!(
            (u.output_tokens, u.cache_read_tokens, u.cache_write_tokens),
            (n("outputTokens"), n("cacheReadInputTokens"), n("cacheWriteInputTokens"))
        );
        assert_eq!(u.total_tokens(), n("totalTokens"), "{}", x.file);
        let stop = v["stopReason"].as_str().unwrap_or_default();
        let want_finish = match stop {
            "tool_use" => FinishReason::ToolCalls,
            "end_turn" => FinishReason::Stop,
            other => panic!("{}: a stop reason this test does not know: {other}", x.file),
        };
        assert_eq!(r.choices[0].finish_reason, Some(want_finish), "{}", x.file);
        let back = bedrock::encode_converse_response(&r);
        // `type: tool_use` on a tool use is informative, and left out when written.
        let mut recorded = v["output"].clone();
        for b in recorded.pointer_mut("/message/content").and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(tool) = b.get_mut("toolUse").and_then(Value::as_object_mut) {
                tool.remove("type");
            }
        }
        assert_eq!(back["output"], recorded, "{}", x.file);
        assert_eq!(back["stopReason"], v["stopReason"], "{}", x.file);
        for k in ["inputTokens", "outputTokens", "totalTokens"] {
            assert_eq!(back["usage"][k], v["usage"][k], "{}: {k}", x.file);
        }
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} answers");
}

/// A recorded stream reassembled by hand: text, each tool block's input, the reasoning text,
/// signatures, redacted blobs, the stop reason and the usage.
#[derive(Debug, Default, PartialEq)]
struct ByHand {
    text: String,
    tools: Vec<(String, String, Value)>,
    reasoning: String,
    signatures: Vec<String>,
    redacted: Vec<String>,
    stop: Option<String>,
    /// Input (cache reads and writes included) and output tokens.
    usage: Option<(u64, u64)>,
}

fn by_hand(events: &[Event]) -> ByHand {
    let mut h = ByHand::default();
    let mut inputs: Vec<(u64, String, String, String)> = Vec::new();
    for (t, p) in events {
        let index = p["contentBlockIndex"].as_u64().unwrap_or(0);
        match t.as_str() {
            "contentBlockStart" => {
                let tool = &p["start"]["toolUse"];
                let s = |k: &str| tool[k].as_str().unwrap_or_default().to_string();
                inputs.push((index, s("toolUseId"), s("name"), String::new()));
            }
            "contentBlockDelta" => {
                let d = &p["delta"];
                let s = |ptr: &str| d.pointer(ptr).and_then(Value::as_str).map(str::to_string);
                if let Some(text) = s("/text") {
                    h.text.push_str(&text);
                }
                if let Some(input) = s("/toolUse/input")
                    && let Some(tool) = inputs.iter_mut().find(|(i, ..)| *i == index)
                {
                    tool.3.push_str(&input);
                }
                h.reasoning.push_str(&s("/reasoningContent/text").unwrap_or_default());
                h.signatures.extend(s("/reasoningContent/signature"));
                h.redacted.extend(s("/reasoningContent/redactedContent"));
            }
            "messageStop" => h.stop = p["stopReason"].as_str().map(str::to_string),
            "metadata" => {
                let u = &p["usage"];
                let n = |k: &str| u[k].as_u64().unwrap_or(0);
                // Nova's own events spell the cache counts `…TokenCount`.
                let cached = |k: &str| n(&format!("{k}Tokens")).max(n(&format!("{k}TokenCount")));
                h.usage =
                    Some((n("inputTokens") + cached("cacheReadInput") + cached("cacheWriteInput"), n("outputTokens")));
            }
            _ => {}
        }
    }
    h.tools = inputs
        .into_iter()
        .map(|(_, id, name, json)| {
            (id, name, serde_json::from_str(if json.is_empty() { "{}" } else { &json }).unwrap_or(Value::Null))
        })
        .collect();
    h
}

/// What the IR answer says, in `ByHand`'s terms.
fn from_ir(r: &ChatResponse, stop: Option<&str>) -> ByHand {
    let m = &r.choices[0].message;
    ByHand {
        text: m.text(),
        tools: m
            .tool_calls
            .iter()
            .map(|c| (c.id.clone(), c.name.clone(), serde_json::from_str(&c.arguments).unwrap_or(Value::Null)))
            .collect(),
        reasoning: m.reasoning.iter().map(|r| r.text.as_str()).collect(),
        signatures: m.reasoning.iter().filter_map(|r| r.signature.clone()).collect(),
        redacted: m.reasoning.iter().filter_map(|r| r.redacted.clone()).collect(),
        stop: stop.map(str::to_string),
        usage: r.usage.map(|u| (u.input_tokens, u.output_tokens)),
    }
}

/// One event of a stream: its type and payload.
type Event = (String, Value);

/// Each recorded stream: where it is from, the model it was asked of, its events.
fn recorded_streams() -> Vec<(String, String, Vec<Event>)> {
    let mut streams: Vec<(String, String, Vec<Event>)> = all_exchanges("bedrock", "")
        .into_iter()
        .filter(|x| x.url.ends_with("/converse-stream") && x.status == 200)
        .map(|x| (x.file, model_of(&x.url), frames(&unbase64(&x.body))))
        .collect();
    for file in [
        "kong-converse-stream-text.eventstream.bin",
        "pydantic-converse-stream-reasoning-signature.body.eventstream.bin",
        "pydantic-converse-stream-redacted-reasoning.body.eventstream.bin",
        "pydantic-converse-stream-tool-use.body.eventstream.bin",
    ] {
        let bytes = std::fs::read(fixtures().join("bedrock").join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        streams.push((file.to_string(), "m".to_string(), frames(&bytes)));
    }
    let nova = "agentgateway-invoke-model-with-response-stream-nova.eventstream.bin";
    let bytes = std::fs::read(fixtures().join("bedrock").join(nova)).unwrap_or_else(|e| panic!("{nova}: {e}"));
    streams.push((nova.to_string(), "us.amazon.nova-lite-v1:0".to_string(), unwrap_chunks(frames(&bytes))));
    streams
}

#[test]
fn streams_decode_like_the_recorded_deltas_and_re_encode() {
    let streams = recorded_streams();
    let mut seen = (0, 0, 0, 0);
    for (file, model, events) in &streams {
        let mut dec = bedrock::StreamDecoder::new(model);
        let ir: Vec<StreamEvent> =
            events.iter().flat_map(|(t, p)| dec.decode(t, p).unwrap_or_else(|e| panic!("{file}: {e}"))).collect();
        assert!(
            matches!(&ir[..2], [StreamEvent::Start { model: m, .. }, StreamEvent::Role { choice: 0 }] if m == model),
            "{file}"
        );
        let r = assemble(&ir);
        let hand = by_hand(events);
        // The IR keeps a redacted blob's bytes: for Claude, the `data` text of Anthropic's block.
        let decoded: Vec<String> =
            hand.redacted.iter().map(|b| String::from_utf8(unbase64(b)).unwrap_or_default()).collect();
        assert_eq!(from_ir(&r, dec.stop_reason()), ByHand { redacted: decoded, ..by_hand(events) }, "{file}");
        let finish = r.choices[0].finish_reason.clone();
        match hand.stop.as_deref() {
            Some("tool_use") => assert_eq!(finish, Some(FinishReason::ToolCalls), "{file}"),
            Some("end_turn") => assert_eq!(finish, Some(FinishReason::Stop), "{file}"),
            other => panic!("{file}: stop reason {other:?}"),
        }
        seen.0 += usize::from(!hand.tools.is_empty());
        seen.1 += usize::from(!hand.signatures.is_empty());
        seen.2 += usize::from(!hand.redacted.is_empty());
        seen.3 += usize::from(!hand.reasoning.is_empty() && hand.signatures.is_empty());
        // Written back as a stream and read again: the same answer, the same blobs.
        let mut enc = bedrock::StreamEncoder::new();
        let mut written: Vec<bedrock::Frame> = ir.iter().flat_map(|e| enc.encode(e)).collect();
        written.extend(enc.finish());
        let written: Vec<Event> = written.into_iter().map(|(t, p)| (t.to_string(), p)).collect();
        let mut dec2 = bedrock::StreamDecoder::new(model);
        let again: Vec<StreamEvent> = written.iter().flat_map(|(t, p)| dec2.decode(t, p).unwrap_or_default()).collect();
        let mut r2 = assemble(&again);
        r2.id = r.id.clone();
        assert_eq!(r2, r, "{file}");
        assert_eq!(by_hand(&written).redacted, hand.redacted, "{file}: redacted blobs byte-exact");
        assert_eq!(by_hand(&written).signatures, hand.signatures, "{file}");
    }
    assert!(streams.len() >= 11, "only {} streams", streams.len());
    assert!(seen.0 >= 2 && seen.1 >= 2 && seen.2 >= 2 && seen.3 >= 1, "tools, signed, redacted, unsigned: {seen:?}");
}

#[test]
fn recorded_errors_keep_their_status_and_message() {
    let mut checked = 0;
    for x in all_exchanges("bedrock", "").iter().filter(|x| x.status >= 400) {
        // The recorder dropped the x-amzn-errortype header; the status alone says what it was.
        let e = bedrock::decode_error(x.status, x.body.as_bytes(), None, None);
        assert_eq!(e.http_status(), x.status, "{}", x.file);
        let v: Value = serde_json::from_str(&x.body).unwrap_or_else(|e| panic!("{}: {e}", x.file));
        assert_eq!(e.message, v["message"].as_str().unwrap_or_default(), "{}", x.file);
        let (kind, body) = bedrock::encode_error(&e);
        assert_eq!((kind, body), ("ValidationException", v.clone()), "{}: re-encoded as recorded", x.file);
        let typed = bedrock::decode_error(
            x.status,
            x.body.as_bytes(),
            Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            None,
        );
        assert_eq!(typed.upstream_type.as_deref(), Some("ValidationException"));
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} errors");
}

#[test]
fn a_request_from_another_protocol_is_refused_where_bedrock_cannot_follow() {
    let openai = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]});
    let req = switchyard_protocols::openai::decode_chat_request(openai.as_object().unwrap_or(&Map::new()))
        .unwrap_or_else(|e| panic!("{e}"));
    let e = bedrock::encode_converse_request(&req).err();
    assert_eq!(e.as_ref().map(|e| e.http_status()), Some(400));
    assert_eq!(e.and_then(|e| e.param).as_deref(), Some("messages[0].content[1]"));
    let anthropic = json!({"model": "m", "max_tokens": 100, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "EtkECk"}, {"type": "text", "text": "yo"}]}]});
    let req =
        switchyard_protocols::anthropic::decode_messages_request(anthropic.as_object().unwrap_or(&Map::new()), true)
            .unwrap_or_else(|e| panic!("{e}"));
    let body = Value::Object(bedrock::encode_converse_request(&req).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(body["messages"][0]["content"], json!([{"text": "hi"}, {"cachePoint": {"type": "default"}}]));
    assert_eq!(body["messages"][1]["content"][0], json!({"reasoningContent": {"redactedContent": "RXRrRUNr"}}));
    assert_eq!(body["inferenceConfig"], json!({"maxTokens": 100}));
}
