//! Messages streams: Anthropic's SSE events to IR stream events and back.
//!
//! Anthropic streams one content block at a time (`content_block_start`, deltas,
//! `content_block_stop`), each with an index in the message; the IR streams deltas by kind, and
//! numbers tool calls among themselves. The decoder maps block indexes to tool-call indexes; the
//! encoder opens and closes blocks as the kind of delta changes.

use serde_json::{Value, json};
use switchyard_types::{FinishReason, GatewayError, StreamEvent, Usage};

use super::{decode_usage, encode_usage, finish_from, finish_to, response::message_id};

/// Turns each SSE event of a Messages stream into IR events.
#[derive(Debug, Default)]
pub struct EventDecoder {
    /// Each tool-use block: its block index, its tool-call index, and whether any argument text
    /// came for it.
    tool_of_block: Vec<(u64, u32, bool)>,
    tools: u32,
    usage: Usage,
    stop_sequence: Option<String>,
}

impl EventDecoder {
    /// Decodes one event's `data:` (its `type` field names the event, so the `event:` line is
    /// not needed).
    pub fn decode(&mut self, data: &str) -> Result<Vec<StreamEvent>, GatewayError> {
        let v: Value = serde_json::from_str(data).map_err(|e| {
            GatewayError::upstream(502, format!("invalid JSON in an Anthropic stream event: {e}"))
                .with_code("upstream_invalid_json")
        })?;
        let mut out = Vec::new();
        match v.get("type").and_then(Value::as_str).unwrap_or_default() {
            "message_start" => {
                let m = &v["message"];
                if let Some(u) = m.get("usage").and_then(decode_usage) {
                    self.usage = u;
                }
                out.push(StreamEvent::Start {
                    id: m.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
                    model: m.get("model").and_then(Value::as_str).unwrap_or_default().to_string(),
                    created: 0,
                });
                out.push(StreamEvent::Role { choice: 0 });
            }
            "content_block_start" => {
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                let b = &v["content_block"];
                match b.get("type").and_then(Value::as_str).unwrap_or_default() {
                    "tool_use" => {
                        let tool = self.tools;
                        self.tools += 1;
                        self.tool_of_block.push((index, tool, false));
                        // The block's `input` is `{}` here; the arguments arrive as deltas.
                        out.push(StreamEvent::ToolCall {
                            choice: 0,
                            index: tool,
                            id: b.get("id").and_then(Value::as_str).map(str::to_string),
                            name: b.get("name").and_then(Value::as_str).map(str::to_string),
                            arguments: String::new(),
                        });
                    }
                    "text" => {
                        let text = b.get("text").and_then(Value::as_str).unwrap_or_default();
                        if !text.is_empty() {
                            out.push(StreamEvent::Text { choice: 0, text: text.to_string() });
                        }
                    }
                    "thinking" => {
                        let text = b.get("thinking").and_then(Value::as_str).unwrap_or_default();
                        if !text.is_empty() {
                            out.push(StreamEvent::Reasoning { choice: 0, text: text.to_string(), signature: None });
                        }
                    }
                    "redacted_thinking" => out.push(StreamEvent::RedactedReasoning {
                        choice: 0,
                        data: b.get("data").and_then(Value::as_str).unwrap_or_default().to_string(),
                    }),
                    _ => {}
                }
            }
            "content_block_delta" => {
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                let d = &v["delta"];
                let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                match d.get("type").and_then(Value::as_str).unwrap_or_default() {
                    "text_delta" => out.push(StreamEvent::Text { choice: 0, text: s("text") }),
                    "thinking_delta" => {
                        out.push(StreamEvent::Reasoning { choice: 0, text: s("thinking"), signature: None })
                    }
                    "signature_delta" => out.push(StreamEvent::Reasoning {
                        choice: 0,
                        text: String::new(),
                        signature: Some(s("signature")),
                    }),
                    "input_json_delta" => {
                        // A server tool's input (web search) has no IR call to belong to.
                        if let Some((_, tool, seen)) = self.tool_of_block.iter_mut().find(|(b, ..)| *b == index) {
                            let partial = s("partial_json");
                            *seen |= !partial.is_empty();
                            let tool = *tool;
                            out.push(StreamEvent::ToolCall {
                                choice: 0,
                                index: tool,
                                id: None,
                                name: None,
                                arguments: partial,
                            });
                        }
                    }
                    _ => {}
                }
            }
            // A call with no input streams no argument text: its arguments are `{}`.
            "content_block_stop" => {
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                if let Some((_, tool, seen)) = self.tool_of_block.iter_mut().find(|(b, ..)| *b == index)
                    && !*seen
                {
                    *seen = true;
                    out.push(StreamEvent::ToolCall {
                        choice: 0,
                        index: *tool,
                        id: None,
                        name: None,
                        arguments: "{}".into(),
                    });
                }
            }
            "message_delta" => {
                if let Some(u) = v.get("usage") {
                    self.merge_usage(u);
                }
                if let Some(s) = v.pointer("/delta/stop_sequence").and_then(Value::as_str) {
                    self.stop_sequence = Some(s.to_string());
                }
                if let Some(reason) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    out.push(StreamEvent::Finish { choice: 0, reason: finish_from(reason) });
                }
                // The usage is whole here (`message_stop` carries none), so it is priced with
                // this event.
                out.push(StreamEvent::Usage(self.usage));
            }
            "error" => {
                let e = v.get("error").unwrap_or(&v);
                let status = match e.get("type").and_then(Value::as_str) {
                    Some("overloaded_error") => 529,
                    Some("rate_limit_error") => 429,
                    Some("invalid_request_error") => 400,
                    _ => 500,
                };
                out.push(StreamEvent::Error(super::error::decode_error_value(e, status)));
            }
            // `message_stop`, `ping`, and events added later.
            _ => {}
        }
        Ok(out)
    }

    /// The stop sequence that ended the answer, when one did.
    pub fn stop_sequence(&self) -> Option<&str> {
        self.stop_sequence.as_deref()
    }

    /// `message_delta` usage counts are cumulative; newer API versions repeat the input counts
    /// there too.
    fn merge_usage(&mut self, u: &Value) {
        let n = |k: &str| u.get(k).and_then(Value::as_u64);
        let cached = self.usage.cache_read_tokens + self.usage.cache_write_tokens;
        let mut uncached = self.usage.input_tokens.saturating_sub(cached);
        if let Some(v) = n("input_tokens") {
            uncached = v;
        }
        if let Some(v) = n("cache_read_input_tokens") {
            self.usage.cache_read_tokens = v;
        }
        if let Some(v) = n("cache_creation_input_tokens") {
            self.usage.cache_write_tokens = v;
        }
        self.usage.input_tokens = uncached + self.usage.cache_read_tokens + self.usage.cache_write_tokens;
        if let Some(v) = n("output_tokens") {
            self.usage.output_tokens = v;
        }
    }
}

/// What kind of block is open in the stream being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    Tool(u32),
}

/// Writes IR stream events as a Messages stream: a list of (event name, data) per event, and the
/// closing events at the end.
#[derive(Debug, Default)]
pub struct EventEncoder {
    started: bool,
    open: Option<Open>,
    /// Blocks begun so far; the next block's index.
    blocks: u64,
    /// The block index of each tool call, by its IR index.
    tool_blocks: Vec<(u32, u64)>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    model: String,
    ended: bool,
}

pub type Frame = (&'static str, Value);

impl EventEncoder {
    pub fn new(model: &str) -> EventEncoder {
        EventEncoder { model: model.to_string(), ..EventEncoder::default() }
    }

    pub fn encode(&mut self, event: &StreamEvent) -> Vec<Frame> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        match event {
            StreamEvent::Start { id, model, .. } => {
                if !self.started {
                    let model = if model.is_empty() { self.model.clone() } else { model.clone() };
                    self.start(&mut out, id, &model);
                }
            }
            StreamEvent::Role { .. } => {}
            // Anthropic has one choice; a second one (only an OpenAI upstream with n > 1 has
            // it, and the Anthropic surface never asks for that) is not written.
            StreamEvent::Text { choice, .. }
            | StreamEvent::Refusal { choice, .. }
            | StreamEvent::Reasoning { choice, .. }
            | StreamEvent::RedactedReasoning { choice, .. }
            | StreamEvent::ToolCall { choice, .. }
            | StreamEvent::Finish { choice, .. }
                if *choice != 0 => {}
            StreamEvent::Text { text, .. } | StreamEvent::Refusal { text, .. } => {
                self.ensure_started(&mut out);
                self.open_block(&mut out, Open::Text, json!({"type": "text", "text": ""}));
                out.push(self.delta(json!({"type": "text_delta", "text": text})));
            }
            StreamEvent::Reasoning { text, signature, .. } => {
                self.ensure_started(&mut out);
                self.open_block(&mut out, Open::Thinking, json!({"type": "thinking", "thinking": "", "signature": ""}));
                if !text.is_empty() {
                    out.push(self.delta(json!({"type": "thinking_delta", "thinking": text})));
                }
                if let Some(sig) = signature {
                    out.push(self.delta(json!({"type": "signature_delta", "signature": sig})));
                    // A signature ends its block: the next reasoning is a new one.
                    self.close_block(&mut out);
                }
            }
            StreamEvent::RedactedReasoning { data, .. } => {
                self.ensure_started(&mut out);
                self.close_block(&mut out);
                let index = self.blocks;
                self.blocks += 1;
                out.push((
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "redacted_thinking", "data": data}}),
                ));
                out.push(("content_block_stop", json!({"type": "content_block_stop", "index": index})));
            }
            StreamEvent::ToolCall { index, id, name, arguments, .. } => {
                self.ensure_started(&mut out);
                let known = self.tool_blocks.iter().find(|(t, _)| t == index).map(|(_, b)| *b);
                let block = match known {
                    Some(b) => b,
                    None => {
                        let start = json!({"type": "tool_use", "id": id.clone().unwrap_or_default(),
                            "name": name.clone().unwrap_or_default(), "input": {}});
                        self.open_block(&mut out, Open::Tool(*index), start);
                        let b = self.blocks - 1;
                        self.tool_blocks.push((*index, b));
                        b
                    }
                };
                if !arguments.is_empty() {
                    // Pieces of a call whose block is already closed still name its index;
                    // clients assemble by index.
                    out.push((
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": block,
                        "delta": {"type": "input_json_delta", "partial_json": arguments}}),
                    ));
                }
            }
            StreamEvent::Finish { reason, .. } => self.finish = Some(reason.clone()),
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Error(e) => {
                self.ended = true;
                out.push(("error", super::error::encode_error(e)));
            }
        }
        out
    }

    /// The closing events: the open block's stop, the stop reason with the usage, and
    /// `message_stop`. Nothing after an error event.
    pub fn finish(&mut self, stop_sequence: Option<&str>) -> Vec<Frame> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.ended = true;
        self.ensure_started(&mut out);
        self.close_block(&mut out);
        let reason = self.finish.as_ref().map(|f| finish_to(f, stop_sequence.is_some()));
        let usage = self.usage.unwrap_or_default();
        out.push((
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": stop_sequence},
            "usage": encode_usage(&usage)}),
        ));
        out.push(("message_stop", json!({"type": "message_stop"})));
        out
    }

    fn ensure_started(&mut self, out: &mut Vec<Frame>) {
        if !self.started {
            let model = self.model.clone();
            self.start(out, "", &model);
        }
    }

    fn start(&mut self, out: &mut Vec<Frame>, id: &str, model: &str) {
        self.started = true;
        let id = if id.is_empty() { format!("msg_{:024x}", fastrand::u128(..)) } else { message_id(id) };
        out.push((
            "message_start",
            json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        ));
    }

    fn open_block(&mut self, out: &mut Vec<Frame>, kind: Open, start: Value) {
        if self.open == Some(kind) {
            return;
        }
        self.close_block(out);
        out.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": self.blocks, "content_block": start}),
        ));
        self.blocks += 1;
        self.open = Some(kind);
    }

    fn close_block(&mut self, out: &mut Vec<Frame>) {
        if self.open.take().is_some() {
            out.push(("content_block_stop", json!({"type": "content_block_stop", "index": self.blocks - 1})));
        }
    }

    fn delta(&self, delta: Value) -> Frame {
        ("content_block_delta", json!({"type": "content_block_delta", "index": self.blocks - 1, "delta": delta}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_stream_decodes_to_the_same_events() {
        let events = vec![
            StreamEvent::Start { id: "msg_1".into(), model: "m".into(), created: 0 },
            StreamEvent::Role { choice: 0 },
            StreamEvent::Reasoning { choice: 0, text: "think".into(), signature: None },
            StreamEvent::Reasoning { choice: 0, text: String::new(), signature: Some("sig==".into()) },
            StreamEvent::RedactedReasoning { choice: 0, data: "opaque".into() },
            StreamEvent::Text { choice: 0, text: "Hel".into() },
            StreamEvent::Text { choice: 0, text: "lo".into() },
            StreamEvent::ToolCall {
                choice: 0,
                index: 0,
                id: Some("toolu_a".into()),
                name: Some("f".into()),
                arguments: String::new(),
            },
            StreamEvent::ToolCall { choice: 0, index: 0, id: None, name: None, arguments: "{\"x\":".into() },
            StreamEvent::ToolCall {
                choice: 0,
                index: 1,
                id: Some("toolu_b".into()),
                name: Some("g".into()),
                arguments: "{}".into(),
            },
            StreamEvent::ToolCall { choice: 0, index: 0, id: None, name: None, arguments: "1}".into() },
            StreamEvent::Finish { choice: 0, reason: FinishReason::ToolCalls },
            StreamEvent::Usage(Usage { input_tokens: 30, cache_read_tokens: 20, output_tokens: 9, ..Usage::default() }),
        ];
        let mut enc = EventEncoder::new("m");
        let mut frames: Vec<Frame> = events.iter().flat_map(|e| enc.encode(e)).collect();
        frames.extend(enc.finish(None));
        let mut dec = EventDecoder::default();
        let mut back = Vec::new();
        for (name, data) in &frames {
            assert_eq!(data["type"], *name);
            back.extend(dec.decode(&data.to_string()).unwrap_or_else(|e| panic!("{e}")));
        }
        let assemble = |evs: &[StreamEvent]| {
            let mut a = switchyard_types::StreamAssembler::default();
            evs.iter().for_each(|e| a.push(e));
            a.finish()
        };
        assert_eq!(assemble(&back), assemble(&events));
        let stops = frames.iter().filter(|(n, _)| *n == "content_block_stop").count();
        let starts = frames.iter().filter(|(n, _)| *n == "content_block_start").count();
        assert_eq!((starts, stops), (5, 5), "thinking, redacted, text, two tool calls, each closed");
    }

    #[test]
    fn an_error_event_ends_the_stream() {
        let mut enc = EventEncoder::new("m");
        let frames = enc.encode(&StreamEvent::Error(GatewayError::upstream(529, "Overloaded")));
        assert_eq!(
            frames.last().map(|(n, d)| (*n, d["error"]["type"].clone())),
            Some(("error", json!("overloaded_error")))
        );
        assert!(enc.finish(None).is_empty());
        let mut dec = EventDecoder::default();
        let back = dec.decode(&frames[frames.len() - 1].1.to_string()).unwrap_or_default();
        assert!(matches!(&back[..], [StreamEvent::Error(e)] if e.http_status() == 529));
    }
}
