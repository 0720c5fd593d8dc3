//! ConverseStream events: each event's type (its `:event-type`, or `:exception-type` for an
//! exception) and JSON payload, to IR stream events and back. The binary event-stream framing is
//! done by the caller.
//!
//! Bedrock streams block by block like Anthropic, with an index on each event, but only a tool
//! use has a `contentBlockStart`: text and reasoning blocks begin with their first delta. It
//! sends no id and no model; the decoder makes the id up and is told the model.

use serde_json::{Value, json};
use switchyard_types::{FinishReason, GatewayError, StreamEvent, Usage};

use super::error::{decode_exception, exception_event};
use super::{decode_usage, encode_usage, finish_from, finish_to, new_id, redacted_from_wire, redacted_to_wire};

/// Turns ConverseStream events into IR events.
#[derive(Debug)]
pub struct StreamDecoder {
    id: String,
    model: String,
    started: bool,
    /// Each toolUse block: its block index, its tool-call index, and whether argument text came.
    tools: Vec<(u64, u32, bool)>,
    stop_reason: Option<String>,
}

impl StreamDecoder {
    /// A decoder for one answer of `model` (the one in the request's URL).
    pub fn new(model: &str) -> StreamDecoder {
        StreamDecoder { id: new_id(), model: model.to_string(), started: false, tools: Vec::new(), stop_reason: None }
    }

    /// The id given to the answer.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The stop reason as Bedrock spelled it (`stop_sequence`, `guardrail_intervened`, …).
    pub fn stop_reason(&self) -> Option<&str> {
        self.stop_reason.as_deref()
    }

    /// Decodes one event. Exceptions become an `Error` event with the status Bedrock gives them;
    /// events added later are skipped; a payload that is not a JSON object is an error.
    pub fn decode(&mut self, event_type: &str, payload: &Value) -> Result<Vec<StreamEvent>, GatewayError> {
        if let Some(e) = decode_exception(event_type, payload) {
            return Ok(vec![StreamEvent::Error(e)]);
        }
        if !payload.is_object() {
            return Err(GatewayError::upstream(
                502,
                format!("a Bedrock '{event_type}' event whose payload is not an object"),
            )
            .with_code("upstream_invalid_json"));
        }
        let mut out = Vec::new();
        if !self.started {
            // messageStart comes first; should it not, the answer still begins before its content.
            self.started = true;
            out.push(StreamEvent::Start { id: self.id.clone(), model: self.model.clone(), created: 0 });
            out.push(StreamEvent::Role { choice: 0 });
        }
        let index = payload.get("contentBlockIndex").and_then(Value::as_u64).unwrap_or(0);
        match event_type {
            "contentBlockStart" => out.extend(self.block_start(index, payload.get("start"))),
            "contentBlockDelta" => out.extend(self.block_delta(index, payload.get("delta"))),
            "contentBlockStop" => out.extend(self.block_stop(index)),
            "messageStop" => {
                let reason = payload.get("stopReason").and_then(Value::as_str).unwrap_or("end_turn");
                self.stop_reason = Some(reason.to_string());
                out.push(StreamEvent::Finish { choice: 0, reason: finish_from(reason) });
            }
            "metadata" => out.extend(payload.get("usage").and_then(decode_usage).map(StreamEvent::Usage)),
            // messageStart (the role is always the assistant's), and events added later.
            _ => {}
        }
        Ok(out)
    }

    /// A tool use begins with its id and name; a server tool's use is not an IR call.
    fn block_start(&mut self, index: u64, start: Option<&Value>) -> Option<StreamEvent> {
        let tool = start?.get("toolUse")?;
        if tool.get("type").is_some_and(|t| t != "tool_use") {
            return None;
        }
        let call = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
        self.tools.push((index, call, false));
        let s = |k: &str| tool.get(k).and_then(Value::as_str).map(str::to_string);
        Some(StreamEvent::ToolCall {
            choice: 0,
            index: call,
            id: s("toolUseId"),
            name: s("name"),
            arguments: String::new(),
        })
    }

    fn block_delta(&mut self, index: u64, delta: Option<&Value>) -> Option<StreamEvent> {
        let delta = delta?;
        if let Some(text) = delta.get("text").and_then(Value::as_str) {
            // Some models (gpt-oss) send an empty text delta before their reasoning.
            return (!text.is_empty()).then(|| StreamEvent::Text { choice: 0, text: text.to_string() });
        }
        if let Some(input) = delta.pointer("/toolUse/input").and_then(Value::as_str) {
            let (_, call, seen) = self.tools.iter_mut().find(|(b, ..)| *b == index)?;
            *seen |= !input.is_empty();
            return Some(StreamEvent::ToolCall {
                choice: 0,
                index: *call,
                id: None,
                name: None,
                arguments: input.into(),
            });
        }
        let r = delta.get("reasoningContent")?;
        let s = |k: &str| r.get(k).and_then(Value::as_str);
        if let Some(text) = s("text") {
            return Some(StreamEvent::Reasoning { choice: 0, text: text.to_string(), signature: None });
        }
        if let Some(sig) = s("signature") {
            return Some(StreamEvent::Reasoning { choice: 0, text: String::new(), signature: Some(sig.to_string()) });
        }
        s("redactedContent").map(|data| StreamEvent::RedactedReasoning { choice: 0, data: redacted_from_wire(data) })
    }

    /// A call with no input streams no argument text: its arguments are `{}`.
    fn block_stop(&mut self, index: u64) -> Option<StreamEvent> {
        let (_, call, seen) = self.tools.iter_mut().find(|(b, ..)| *b == index)?;
        if *seen {
            return None;
        }
        *seen = true;
        Some(StreamEvent::ToolCall { choice: 0, index: *call, id: None, name: None, arguments: "{}".into() })
    }
}

/// An event as ConverseStream writes it: its type and payload. A type ending in `Exception` is
/// an exception (`:message-type exception`, the type in `:exception-type`).
pub type Frame = (&'static str, Value);

/// What kind of block is open in the stream being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Reasoning,
    Tool,
}

/// Writes IR stream events as ConverseStream events, and the closing ones at the end.
#[derive(Debug, Default)]
pub struct StreamEncoder {
    started: bool,
    open: Option<Open>,
    /// Blocks begun so far; the next block's index.
    blocks: u64,
    /// The block index of each tool call, by its IR index.
    tool_blocks: Vec<(u32, u64)>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    ended: bool,
}

impl StreamEncoder {
    pub fn new() -> StreamEncoder {
        StreamEncoder::default()
    }

    pub fn encode(&mut self, event: &StreamEvent) -> Vec<Frame> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        match event {
            StreamEvent::Start { .. } | StreamEvent::Role { .. } => self.ensure_started(&mut out),
            // Converse answers with one choice; another one (only an OpenAI upstream with n > 1
            // has it, and this surface never asks for that) is not written.
            StreamEvent::Text { choice, .. }
            | StreamEvent::Refusal { choice, .. }
            | StreamEvent::Reasoning { choice, .. }
            | StreamEvent::RedactedReasoning { choice, .. }
            | StreamEvent::ToolCall { choice, .. }
            | StreamEvent::Finish { choice, .. }
                if *choice != 0 => {}
            StreamEvent::Text { text, .. } | StreamEvent::Refusal { text, .. } if text.is_empty() => {
                self.ensure_started(&mut out)
            }
            StreamEvent::Text { text, .. } | StreamEvent::Refusal { text, .. } => {
                self.open_block(&mut out, Open::Text);
                out.push(self.delta(json!({ "text": text })));
            }
            StreamEvent::Reasoning { text, signature, .. } => self.reasoning(&mut out, text, signature.as_deref()),
            StreamEvent::RedactedReasoning { data, .. } => {
                self.open_new_block(&mut out, Open::Reasoning);
                out.push(self.delta(json!({"reasoningContent": {"redactedContent": redacted_to_wire(data)}})));
                self.close_block(&mut out);
            }
            StreamEvent::ToolCall { index, id, name, arguments, .. } => {
                self.tool_call(&mut out, *index, id.as_deref(), name.as_deref(), arguments)
            }
            StreamEvent::Finish { reason, .. } => self.finish = Some(reason.clone()),
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Error(e) => {
                self.ended = true;
                out.push(exception_event(e));
            }
        }
        out
    }

    /// The closing events: the open block's stop, `messageStop` and `metadata` with the usage.
    /// Nothing after an exception.
    pub fn finish(&mut self) -> Vec<Frame> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.ended = true;
        self.ensure_started(&mut out);
        self.close_block(&mut out);
        let reason = self.finish.as_ref().map_or("end_turn", finish_to);
        out.push(("messageStop", json!({ "stopReason": reason })));
        let usage = encode_usage(&self.usage.unwrap_or_default());
        out.push(("metadata", json!({"usage": usage, "metrics": {"latencyMs": 0}})));
        out
    }

    fn reasoning(&mut self, out: &mut Vec<Frame>, text: &str, signature: Option<&str>) {
        self.open_block(out, Open::Reasoning);
        if !text.is_empty() {
            out.push(self.delta(json!({"reasoningContent": {"text": text}})));
        }
        if let Some(sig) = signature {
            out.push(self.delta(json!({"reasoningContent": {"signature": sig}})));
            // A signature ends its block: the next reasoning is a new one.
            self.close_block(out);
        }
    }

    fn tool_call(&mut self, out: &mut Vec<Frame>, index: u32, id: Option<&str>, name: Option<&str>, arguments: &str) {
        self.ensure_started(out);
        let block = match self.tool_blocks.iter().find(|(t, _)| *t == index) {
            Some((_, b)) => *b,
            None => {
                self.open_new_block(out, Open::Tool);
                let b = self.blocks - 1;
                out.push((
                    "contentBlockStart",
                    json!({"contentBlockIndex": b, "start": {"toolUse": {
                        "toolUseId": id.unwrap_or_default(), "name": name.unwrap_or_default()}}}),
                ));
                self.tool_blocks.push((index, b));
                b
            }
        };
        if !arguments.is_empty() {
            // Pieces of a call whose block is already closed still name its index; clients
            // assemble by index.
            out.push((
                "contentBlockDelta",
                json!({"contentBlockIndex": block, "delta": {"toolUse": {"input": arguments}}}),
            ));
        }
    }

    fn ensure_started(&mut self, out: &mut Vec<Frame>) {
        if !self.started {
            self.started = true;
            out.push(("messageStart", json!({"role": "assistant"})));
        }
    }

    /// Continues the open block when it is of `kind`, else begins one.
    fn open_block(&mut self, out: &mut Vec<Frame>, kind: Open) {
        if self.open != Some(kind) {
            self.open_new_block(out, kind);
        }
    }

    fn open_new_block(&mut self, out: &mut Vec<Frame>, kind: Open) {
        self.ensure_started(out);
        self.close_block(out);
        self.blocks += 1;
        self.open = Some(kind);
    }

    fn close_block(&mut self, out: &mut Vec<Frame>) {
        if self.open.take().is_some() {
            out.push(("contentBlockStop", json!({"contentBlockIndex": self.blocks - 1})));
        }
    }

    fn delta(&self, delta: Value) -> Frame {
        ("contentBlockDelta", json!({"contentBlockIndex": self.blocks - 1, "delta": delta}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assemble(events: &[StreamEvent]) -> switchyard_types::ChatResponse {
        let mut a = switchyard_types::StreamAssembler::default();
        events.iter().for_each(|e| a.push(e));
        a.finish()
    }

    #[test]
    fn an_encoded_stream_decodes_to_the_same_answer() {
        let events = vec![
            StreamEvent::Start { id: "x".into(), model: "m".into(), created: 0 },
            StreamEvent::Role { choice: 0 },
            StreamEvent::Reasoning { choice: 0, text: "think".into(), signature: None },
            StreamEvent::Reasoning { choice: 0, text: String::new(), signature: Some("sig==".into()) },
            StreamEvent::RedactedReasoning { choice: 0, data: "EtkECk".into() },
            StreamEvent::Text { choice: 0, text: "Hel".into() },
            StreamEvent::Text { choice: 0, text: "lo".into() },
            StreamEvent::ToolCall {
                choice: 0,
                index: 0,
                id: Some("a".into()),
                name: Some("f".into()),
                arguments: String::new(),
            },
            StreamEvent::ToolCall { choice: 0, index: 0, id: None, name: None, arguments: "{\"x\":".into() },
            StreamEvent::ToolCall {
                choice: 0,
                index: 1,
                id: Some("b".into()),
                name: Some("g".into()),
                arguments: "{}".into(),
            },
            StreamEvent::ToolCall { choice: 0, index: 0, id: None, name: None, arguments: "1}".into() },
            StreamEvent::Finish { choice: 0, reason: FinishReason::ToolCalls },
            StreamEvent::Usage(Usage { input_tokens: 30, cache_read_tokens: 20, output_tokens: 9, ..Usage::default() }),
        ];
        let mut enc = StreamEncoder::new();
        let mut frames: Vec<Frame> = events.iter().flat_map(|e| enc.encode(e)).collect();
        frames.extend(enc.finish());
        let mut dec = StreamDecoder::new("m");
        let back: Vec<StreamEvent> =
            frames.iter().flat_map(|(t, p)| dec.decode(t, p).unwrap_or_else(|e| panic!("{e}"))).collect();
        let mut want = assemble(&events);
        want.id = dec.id().to_string();
        assert_eq!(assemble(&back), want);
        let redacted = frames.iter().find_map(|(_, p)| p.pointer("/delta/reasoningContent/redactedContent").cloned());
        assert_eq!(redacted, Some(json!("RXRrRUNr")));
        assert_eq!(frames.iter().filter(|(t, _)| *t == "contentBlockStart").count(), 2, "tool uses only");
        let stops = frames.iter().filter(|(t, _)| *t == "contentBlockStop").count();
        assert_eq!(stops, 5, "reasoning, redacted, text, two tool calls, each closed");
        assert_eq!(frames.first().map(|f| f.0), Some("messageStart"));
        assert_eq!(dec.stop_reason(), Some("tool_use"));
    }

    #[test]
    fn a_tool_call_without_input_gets_empty_arguments() {
        let mut dec = StreamDecoder::new("m");
        let mut events = Vec::new();
        for (t, p) in [
            ("messageStart", json!({"role": "assistant"})),
            (
                "contentBlockStart",
                json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": "now"}}}),
            ),
            ("contentBlockStop", json!({"contentBlockIndex": 0})),
            ("messageStop", json!({"stopReason": "tool_use"})),
        ] {
            events.extend(dec.decode(t, &p).unwrap_or_default());
        }
        let r = assemble(&events);
        assert_eq!(r.choices[0].message.tool_calls[0].arguments, "{}");
        assert_eq!(r.model, "m");
    }

    #[test]
    fn exceptions_become_errors_with_their_status_and_end_the_stream() {
        let mut dec = StreamDecoder::new("m");
        for (t, status) in [
            ("throttlingException", 429),
            ("modelStreamErrorException", 424),
            ("validationException", 400),
            ("internalServerException", 500),
            ("serviceUnavailableException", 503),
        ] {
            let got = dec.decode(t, &json!({"message": "boom"})).unwrap_or_default();
            let [StreamEvent::Error(e)] = &got[..] else { panic!("{t}: {got:?}") };
            assert_eq!((e.http_status(), e.message.as_str()), (status, "boom"), "{t}");
        }
        assert!(dec.decode("contentBlockDelta", &json!("x")).is_err());
        let mut enc = StreamEncoder::new();
        let frames = enc.encode(&StreamEvent::Error(GatewayError::upstream(429, "slow down")));
        assert_eq!(frames, vec![("throttlingException", json!({"message": "slow down"}))]);
        assert!(enc.finish().is_empty());
    }
}
