//! Streamed Responses answers: the typed SSE events (`response.output_text.delta`, …) to and
//! from IR stream events.
//!
//! Reasoning follows the blocks `responses.rs` describes: summary text deltas, a block closed by
//! the item id at each `reasoning_summary_part.done`, and, when the item carries
//! `encrypted_content` (read from `output_item.done`, the final form), a redacted block closed
//! by the id too.

use serde_json::{Map, Value, json};
use switchyard_types::{FinishReason, GatewayError, StreamEvent, Usage};

use super::error::decode_error_value;
use super::responses::{decode_usage, encode_usage, finish_from, status_of};
use super::str_field;

/// Turns upstream Responses events into IR events. One per stream.
#[derive(Debug, Default)]
pub struct ResponsesStreamDecoder {
    /// Function-call item ids, by IR call index, with the argument text seen so far.
    calls: Vec<(String, String)>,
    /// Summary text seen in the open summary part, and whether the reasoning item had any part.
    summary_text: String,
    summary_parts: bool,
    /// An `error` event was passed on; the `response.failed` after it adds nothing.
    errored: bool,
}

impl ResponsesStreamDecoder {
    /// Decodes the data of one SSE event (its `type` field names it).
    pub fn decode(&mut self, data: &str) -> Result<Vec<StreamEvent>, GatewayError> {
        let v: Value = serde_json::from_str(data)
            .map_err(|e| GatewayError::upstream(502, format!("The provider sent an invalid stream event: {e}")))?;
        let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
        Ok(match kind {
            "response.created" => self.created(&v),
            "response.output_item.added" => self.item_added(&v),
            "response.output_text.delta" => {
                text_of(&v, "delta").map(|text| StreamEvent::Text { choice: 0, text }).into_iter().collect()
            }
            "response.refusal.delta" => {
                text_of(&v, "delta").map(|text| StreamEvent::Refusal { choice: 0, text }).into_iter().collect()
            }
            "response.function_call_arguments.delta" => self.arguments(&v, false),
            "response.function_call_arguments.done" => self.arguments(&v, true),
            "response.reasoning_summary_part.added" => {
                self.summary_text.clear();
                self.summary_parts = true;
                Vec::new()
            }
            "response.reasoning_summary_text.delta" => self.summary_delta(&v),
            "response.reasoning_summary_part.done" => self.summary_done(&v),
            "response.output_item.done" => self.item_done(&v),
            "response.completed" | "response.incomplete" => self.finished(&v),
            "response.failed" => self.failed(&v),
            "error" => {
                self.errored = true;
                vec![StreamEvent::Error(stream_error(&v))]
            }
            // `in_progress`, content parts, `*.done` echoes and newer events add nothing.
            _ => Vec::new(),
        })
    }

    fn created(&mut self, v: &Value) -> Vec<StreamEvent> {
        let r = &v["response"];
        vec![
            StreamEvent::Start {
                id: str_field(r, "id").unwrap_or_default(),
                model: str_field(r, "model").unwrap_or_default(),
                created: r.get("created_at").and_then(Value::as_u64).unwrap_or(0),
            },
            StreamEvent::Role { choice: 0 },
        ]
    }

    fn item_added(&mut self, v: &Value) -> Vec<StreamEvent> {
        let item = &v["item"];
        match item.get("type").and_then(Value::as_str) {
            Some("function_call") => self.call_started(item),
            Some("reasoning") => {
                self.summary_parts = false;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// A new function call gets the next index; parallel calls thus get distinct ones.
    fn call_started(&mut self, item: &Value) -> Vec<StreamEvent> {
        let arguments = str_field(item, "arguments").unwrap_or_default();
        self.calls.push((str_field(item, "id").unwrap_or_default(), arguments.clone()));
        vec![StreamEvent::ToolCall {
            choice: 0,
            index: (self.calls.len() - 1) as u32,
            id: str_field(item, "call_id"),
            name: str_field(item, "name"),
            arguments,
        }]
    }

    /// Argument deltas; at `done`, only what the deltas did not already say (some servers send
    /// the whole arguments there and no delta).
    fn arguments(&mut self, v: &Value, done: bool) -> Vec<StreamEvent> {
        let item_id = str_field(v, "item_id").unwrap_or_default();
        let Some(index) = self.calls.iter().position(|(id, _)| *id == item_id) else { return Vec::new() };
        let seen = &mut self.calls[index].1;
        let text = if done {
            let whole = str_field(v, "arguments").unwrap_or_default();
            match whole.strip_prefix(seen.as_str()) {
                Some(rest) => rest.to_string(),
                None => return Vec::new(),
            }
        } else {
            text_of(v, "delta").unwrap_or_default()
        };
        if text.is_empty() {
            return Vec::new();
        }
        seen.push_str(&text);
        vec![StreamEvent::ToolCall { choice: 0, index: index as u32, id: None, name: None, arguments: text }]
    }

    fn summary_delta(&mut self, v: &Value) -> Vec<StreamEvent> {
        let Some(text) = text_of(v, "delta") else { return Vec::new() };
        self.summary_text.push_str(&text);
        vec![StreamEvent::Reasoning { choice: 0, text, signature: None }]
    }

    /// Closes the summary part's block with the item id (with the part's text when no delta
    /// carried it).
    fn summary_done(&mut self, v: &Value) -> Vec<StreamEvent> {
        let text = match self.summary_text.is_empty() {
            true => v.pointer("/part/text").and_then(Value::as_str).unwrap_or_default().to_string(),
            false => String::new(),
        };
        self.summary_text.clear();
        vec![StreamEvent::Reasoning { choice: 0, text, signature: str_field(v, "item_id") }]
    }

    fn item_done(&mut self, v: &Value) -> Vec<StreamEvent> {
        let item = &v["item"];
        match item.get("type").and_then(Value::as_str) {
            Some("reasoning") => {
                let id = str_field(item, "id");
                let mut out = Vec::new();
                if let Some(data) = str_field(item, "encrypted_content") {
                    out.push(StreamEvent::RedactedReasoning { choice: 0, data });
                } else if self.summary_parts {
                    return out;
                }
                // Closes the redacted block, or stands for an item with nothing to show.
                out.push(StreamEvent::Reasoning { choice: 0, text: String::new(), signature: id });
                out
            }
            Some("function_call") => {
                let id = str_field(item, "id").unwrap_or_default();
                if self.calls.iter().any(|(known, _)| *known == id) {
                    return Vec::new();
                }
                // A call announced only when done.
                self.call_started(item)
            }
            _ => Vec::new(),
        }
    }

    fn finished(&mut self, v: &Value) -> Vec<StreamEvent> {
        let r = &v["response"];
        let mut out = vec![StreamEvent::Finish { choice: 0, reason: finish_from(r, !self.calls.is_empty()) }];
        if let Some(u) = r.get("usage").and_then(decode_usage) {
            out.push(StreamEvent::Usage(u));
        }
        out
    }

    fn failed(&mut self, v: &Value) -> Vec<StreamEvent> {
        if self.errored {
            return Vec::new();
        }
        self.errored = true;
        let e = v.pointer("/response/error").filter(|e| e.is_object()).unwrap_or(&Value::Null);
        let mut err = stream_error(e);
        if e.is_null() {
            err.message = "The provider failed the response without saying why.".into();
        }
        vec![StreamEvent::Error(err)]
    }
}

fn text_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_string)
}

/// An error inside a stream: `{"type": "error", "code", "message", "param"}` as documented, or
/// with the fields nested under `error` as some servers send it. The HTTP status the error would
/// have had follows from its type or code.
fn stream_error(v: &Value) -> GatewayError {
    let e = v.get("error").filter(|e| e.is_object()).unwrap_or(v);
    let what = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let status = match (what("type").as_str(), what("code").as_str()) {
        (_, "insufficient_quota" | "rate_limit_exceeded") | ("insufficient_quota" | "rate_limit_error", _) => 429,
        ("invalid_request_error", _) => 400,
        ("authentication_error", _) | (_, "invalid_api_key") => 401,
        _ => 500,
    };
    let mut err = decode_error_value(e, status);
    if err.upstream_type.as_deref() == Some("error") {
        err.upstream_type = None;
    }
    err
}

/// Which item is open, so that a change of kind closes it first.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    None,
    Message,
    Reasoning,
    Call(usize),
}

/// Turns IR events into Responses events for a client. `finish` ends the stream.
#[derive(Debug)]
pub struct ResponsesStreamEncoder {
    response: Map<String, Value>,
    sequence: u64,
    /// Every item so far, as `response.completed` lists them.
    output: Vec<Value>,
    open: Open,
    /// The open text or refusal part of the open message, and the open summary part.
    part_open: bool,
    summary_open: bool,
    /// Output index of each IR tool call.
    calls: Vec<usize>,
    reason: Option<FinishReason>,
    usage: Option<Usage>,
    ended: bool,
}

impl ResponsesStreamEncoder {
    pub fn new(model: &str) -> Self {
        let mut response = Map::new();
        response.insert("id".into(), format!("resp_{}", fastrand::u64(..)).into());
        response.insert("object".into(), "response".into());
        response.insert("created_at".into(), 0.into());
        response.insert("model".into(), model.into());
        ResponsesStreamEncoder {
            response,
            sequence: 0,
            output: Vec::new(),
            open: Open::None,
            part_open: false,
            summary_open: false,
            calls: Vec::new(),
            reason: None,
            usage: None,
            ended: false,
        }
    }

    /// The events for one IR event; each is an SSE `data` whose `type` is also its event name.
    pub fn encode(&mut self, event: &StreamEvent) -> Vec<Value> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        match event {
            StreamEvent::Start { id, model, created } => self.start(&mut out, id, model, *created),
            StreamEvent::Role { .. } => {}
            StreamEvent::Text { text, .. } => self.text(&mut out, "output_text", text),
            StreamEvent::Refusal { text, .. } => self.text(&mut out, "refusal", text),
            StreamEvent::Reasoning { text, signature, .. } => self.reasoning(&mut out, text, signature.is_some()),
            StreamEvent::RedactedReasoning { data, .. } => {
                self.open_reasoning(&mut out);
                if let Some(item) = self.output.last_mut().and_then(Value::as_object_mut) {
                    item.insert("encrypted_content".into(), data.clone().into());
                }
            }
            StreamEvent::ToolCall { index, id, name, arguments, .. } => {
                self.tool_call(&mut out, *index as usize, id, name, arguments)
            }
            StreamEvent::Finish { reason, .. } => self.reason = Some(reason.clone()),
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Error(e) => self.error(&mut out, e),
        }
        out
    }

    /// Closes what is open and ends the stream with `response.completed` (or `incomplete`).
    pub fn finish(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.close(&mut out);
        self.ended = true;
        let (status, details) = status_of(self.reason.as_ref());
        let kind = if status == "incomplete" { "response.incomplete" } else { "response.completed" };
        let mut r = self.snapshot(status);
        r.insert("incomplete_details".into(), details);
        r.insert("usage".into(), self.usage.as_ref().map_or(Value::Null, encode_usage));
        self.emit(&mut out, kind, json!({ "response": r }));
        out
    }

    fn snapshot(&self, status: &str) -> Map<String, Value> {
        let mut r = self.response.clone();
        r.insert("status".into(), status.into());
        r.insert("output".into(), Value::Array(self.output.clone()));
        r
    }

    fn emit(&mut self, out: &mut Vec<Value>, kind: &str, body: Value) {
        let mut obj = match body {
            Value::Object(o) => o,
            _ => Map::new(),
        };
        obj.insert("type".into(), kind.into());
        obj.insert("sequence_number".into(), self.sequence.into());
        self.sequence += 1;
        out.push(Value::Object(obj));
    }

    fn start(&mut self, out: &mut Vec<Value>, id: &str, model: &str, created: u64) {
        // A later start (a stream continued on another target) must not rename the response.
        if self.sequence > 0 {
            return;
        }
        self.response.insert("id".into(), id.into());
        self.response.insert("model".into(), model.into());
        self.response.insert("created_at".into(), created.into());
        let r = self.snapshot("in_progress");
        self.emit(out, "response.created", json!({ "response": r }));
        let r = self.snapshot("in_progress");
        self.emit(out, "response.in_progress", json!({ "response": r }));
    }

    fn ensure_started(&mut self, out: &mut Vec<Value>) {
        if self.sequence == 0 {
            let model = self.response["model"].as_str().unwrap_or_default().to_string();
            let id = self.response["id"].as_str().unwrap_or_default().to_string();
            self.start(out, &id, &model, 0);
        }
    }

    fn add_item(&mut self, out: &mut Vec<Value>, item: Value, open: Open) {
        self.close(out);
        self.output.push(item.clone());
        self.open = open;
        let index = self.output.len() - 1;
        self.emit(out, "response.output_item.added", json!({ "output_index": index, "item": item }));
    }

    fn item_id(&self) -> (usize, Value) {
        let index = self.output.len().saturating_sub(1);
        (index, self.output.last().map_or(Value::Null, |i| i["id"].clone()))
    }

    fn text(&mut self, out: &mut Vec<Value>, part_type: &str, text: &str) {
        self.ensure_started(out);
        if self.open != Open::Message {
            let id = format!("msg_{}", self.output.len());
            let item =
                json!({"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []});
            self.add_item(out, item, Open::Message);
        }
        let last_type =
            self.output.last().and_then(|i| i["content"].as_array()?.last()?["type"].as_str().map(str::to_string));
        if !self.part_open || last_type.as_deref() != Some(part_type) {
            self.close_part(out);
            let part = if part_type == "refusal" {
                json!({"type": "refusal", "refusal": ""})
            } else {
                json!({"type": "output_text", "annotations": [], "text": ""})
            };
            let content_index = self.push_part(part.clone());
            let (index, id) = self.item_id();
            let body = json!({"output_index": index, "item_id": id, "content_index": content_index, "part": part});
            self.emit(out, "response.content_part.added", body);
            self.part_open = true;
        }
        let key = if part_type == "refusal" { "refusal" } else { "text" };
        let content_index = self.append_to_part(key, text);
        let (index, id) = self.item_id();
        let kind = if part_type == "refusal" { "response.refusal.delta" } else { "response.output_text.delta" };
        let body = json!({"output_index": index, "item_id": id, "content_index": content_index, "delta": text});
        self.emit(out, kind, body);
    }

    fn push_part(&mut self, part: Value) -> usize {
        let parts = self.output.last_mut().and_then(|i| i.get_mut("content")).and_then(Value::as_array_mut);
        parts.map_or(0, |p| {
            p.push(part);
            p.len() - 1
        })
    }

    fn append_to_part(&mut self, key: &str, text: &str) -> usize {
        let parts = self.output.last_mut().and_then(|i| i.get_mut("content")).and_then(Value::as_array_mut);
        let Some(parts) = parts else { return 0 };
        let index = parts.len().saturating_sub(1);
        if let Some(part) = parts.last_mut().and_then(Value::as_object_mut) {
            let mut s = part.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
            s.push_str(text);
            part.insert(key.into(), s.into());
        }
        index
    }

    fn close_part(&mut self, out: &mut Vec<Value>) {
        if !self.part_open {
            return;
        }
        self.part_open = false;
        let (index, id) = self.item_id();
        let parts = self.output.last().and_then(|i| i["content"].as_array().cloned()).unwrap_or_default();
        let Some(part) = parts.last().cloned() else { return };
        let content_index = parts.len() - 1;
        let base = json!({"output_index": index, "item_id": id, "content_index": content_index});
        let mut done = base.clone();
        if part["type"] == "refusal" {
            done["refusal"] = part["refusal"].clone();
            self.emit(out, "response.refusal.done", done);
        } else {
            done["text"] = part["text"].clone();
            self.emit(out, "response.output_text.done", done);
        }
        let mut part_done = base;
        part_done["part"] = part;
        self.emit(out, "response.content_part.done", part_done);
    }

    fn open_reasoning(&mut self, out: &mut Vec<Value>) {
        self.ensure_started(out);
        if self.open != Open::Reasoning {
            let id = format!("rs_{}", self.output.len());
            self.add_item(out, json!({"id": id, "type": "reasoning", "summary": []}), Open::Reasoning);
        }
    }

    /// Summary text opens a summary part if none is open; a signature closes it.
    fn reasoning(&mut self, out: &mut Vec<Value>, text: &str, closes: bool) {
        if text.is_empty() && !closes {
            return;
        }
        self.open_reasoning(out);
        let (index, id) = self.item_id();
        if !text.is_empty() {
            if !self.summary_open {
                let summary_index = self.push_summary();
                let body = json!({"output_index": index, "item_id": id, "summary_index": summary_index,
                                  "part": {"type": "summary_text", "text": ""}});
                self.emit(out, "response.reasoning_summary_part.added", body);
                self.summary_open = true;
            }
            let summary_index = self.append_summary(text);
            let body = json!({"output_index": index, "item_id": id, "summary_index": summary_index, "delta": text});
            self.emit(out, "response.reasoning_summary_text.delta", body);
        }
        if closes {
            self.close_summary(out);
        }
    }

    fn push_summary(&mut self) -> usize {
        let summary = self.output.last_mut().and_then(|i| i.get_mut("summary")).and_then(Value::as_array_mut);
        summary.map_or(0, |s| {
            s.push(json!({"type": "summary_text", "text": ""}));
            s.len() - 1
        })
    }

    fn append_summary(&mut self, text: &str) -> usize {
        let summary = self.output.last_mut().and_then(|i| i.get_mut("summary")).and_then(Value::as_array_mut);
        let Some(summary) = summary else { return 0 };
        let index = summary.len().saturating_sub(1);
        if let Some(part) = summary.last_mut() {
            let joined = format!("{}{text}", part["text"].as_str().unwrap_or_default());
            part["text"] = joined.into();
        }
        index
    }

    fn close_summary(&mut self, out: &mut Vec<Value>) {
        if !self.summary_open {
            return;
        }
        self.summary_open = false;
        let (index, id) = self.item_id();
        let summary = self.output.last().and_then(|i| i["summary"].as_array().cloned()).unwrap_or_default();
        let Some(part) = summary.last().cloned() else { return };
        let summary_index = summary.len() - 1;
        let body = json!({"output_index": index, "item_id": id, "summary_index": summary_index, "text": part["text"]});
        self.emit(out, "response.reasoning_summary_text.done", body);
        let body = json!({"output_index": index, "item_id": id, "summary_index": summary_index, "part": part});
        self.emit(out, "response.reasoning_summary_part.done", body);
    }

    fn tool_call(
        &mut self,
        out: &mut Vec<Value>,
        index: usize,
        id: &Option<String>,
        name: &Option<String>,
        arguments: &str,
    ) {
        self.ensure_started(out);
        let position = match self.calls.get(index) {
            Some(p) => *p,
            None => {
                let call_id = id.clone().unwrap_or_default();
                let item = json!({"id": format!("fc_{call_id}"), "type": "function_call", "status": "in_progress",
                                  "arguments": "", "call_id": call_id, "name": name.clone().unwrap_or_default()});
                self.add_item(out, item, Open::None);
                let position = self.output.len() - 1;
                self.open = Open::Call(position);
                self.calls.resize(index + 1, position);
                position
            }
        };
        if arguments.is_empty() {
            return;
        }
        if let Some(item) = self.output.get_mut(position) {
            let joined = format!("{}{arguments}", item["arguments"].as_str().unwrap_or_default());
            item["arguments"] = joined.into();
        }
        let item_id = self.output.get(position).map_or(Value::Null, |i| i["id"].clone());
        let body = json!({"output_index": position, "item_id": item_id, "delta": arguments});
        self.emit(out, "response.function_call_arguments.delta", body);
    }

    /// Ends the open item with its `done` events.
    fn close(&mut self, out: &mut Vec<Value>) {
        let open = std::mem::replace(&mut self.open, Open::None);
        let position = match open {
            Open::None => return,
            Open::Message => {
                self.close_part(out);
                self.output.len() - 1
            }
            Open::Reasoning => {
                self.close_summary(out);
                self.output.len() - 1
            }
            Open::Call(position) => {
                let item = self.output.get(position).cloned().unwrap_or_default();
                let body = json!({"output_index": position, "item_id": item["id"], "arguments": item["arguments"]});
                self.emit(out, "response.function_call_arguments.done", body);
                position
            }
        };
        if let Some(item) = self.output.get_mut(position).and_then(Value::as_object_mut)
            && item.contains_key("status")
        {
            item.insert("status".into(), "completed".into());
        }
        let item = self.output.get(position).cloned().unwrap_or_default();
        self.emit(out, "response.output_item.done", json!({"output_index": position, "item": item}));
    }

    fn error(&mut self, out: &mut Vec<Value>, e: &GatewayError) {
        self.ensure_started(out);
        let wire = super::encode_error(e);
        let inner = wire["error"].clone();
        self.emit(out, "error", json!({"code": inner["code"], "message": inner["message"], "param": inner["param"]}));
        let mut r = self.snapshot("failed");
        r.insert("error".into(), json!({"code": inner["code"], "message": inner["message"]}));
        self.emit(out, "response.failed", json!({ "response": r }));
        self.ended = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_types::StreamAssembler;

    fn decode_all(events: &[Value]) -> Vec<StreamEvent> {
        let mut d = ResponsesStreamDecoder::default();
        events.iter().flat_map(|e| d.decode(&e.to_string()).unwrap_or_default()).collect()
    }

    #[test]
    fn an_encoded_stream_decodes_to_the_same_answer() {
        let events = vec![
            StreamEvent::Start { id: "resp_1".into(), model: "m".into(), created: 5 },
            StreamEvent::Role { choice: 0 },
            StreamEvent::Reasoning { choice: 0, text: "think".into(), signature: None },
            StreamEvent::Reasoning { choice: 0, text: String::new(), signature: Some("rs_0".into()) },
            StreamEvent::RedactedReasoning { choice: 0, data: "ENC".into() },
            StreamEvent::Reasoning { choice: 0, text: String::new(), signature: Some("rs_0".into()) },
            StreamEvent::Text { choice: 0, text: "Hel".into() },
            StreamEvent::Text { choice: 0, text: "lo".into() },
            StreamEvent::ToolCall {
                choice: 0,
                index: 0,
                id: Some("c1".into()),
                name: Some("f".into()),
                arguments: "{".into(),
            },
            StreamEvent::ToolCall { choice: 0, index: 0, id: None, name: None, arguments: "}".into() },
            StreamEvent::ToolCall {
                choice: 0,
                index: 1,
                id: Some("c2".into()),
                name: Some("g".into()),
                arguments: "{}".into(),
            },
            StreamEvent::Finish { choice: 0, reason: FinishReason::ToolCalls },
            StreamEvent::Usage(Usage { input_tokens: 3, output_tokens: 4, reasoning_tokens: 1, ..Default::default() }),
        ];
        let mut enc = ResponsesStreamEncoder::new("m");
        let mut wire: Vec<Value> = events.iter().flat_map(|e| enc.encode(e)).collect();
        wire.extend(enc.finish());
        let seq: Vec<u64> = wire.iter().filter_map(|e| e["sequence_number"].as_u64()).collect();
        assert_eq!(seq, (0..wire.len() as u64).collect::<Vec<_>>());
        let assemble = |events: &[StreamEvent]| {
            let mut a = StreamAssembler::default();
            events.iter().for_each(|e| a.push(e));
            a.finish()
        };
        assert_eq!(assemble(&decode_all(&wire)), assemble(&events));
        let last = wire.last().cloned().unwrap_or_default();
        assert_eq!(last["type"], "response.completed");
        assert_eq!(last["response"]["output"][2]["arguments"], "{}");
    }

    #[test]
    fn an_error_event_ends_the_stream_once() {
        let events = [
            json!({"type": "error", "code": "rate_limit_exceeded", "message": "slow down", "param": null}),
            json!({"type": "response.failed", "response": {"status": "failed", "error": {"code": "rate_limit_exceeded", "message": "slow down"}}}),
        ];
        let got = decode_all(&events);
        assert!(matches!(&got[..], [StreamEvent::Error(e)] if e.http_status() == 429 && e.message == "slow down"));
        let failed_only = decode_all(&events[1..]);
        assert!(
            matches!(&failed_only[..], [StreamEvent::Error(e)] if e.code.as_deref() == Some("rate_limit_exceeded"))
        );
        let mut enc = ResponsesStreamEncoder::new("m");
        let mut wire: Vec<Value> = got.iter().flat_map(|e| enc.encode(e)).collect();
        wire.extend(enc.finish());
        assert_eq!(wire.iter().filter(|e| e["type"] == "response.completed").count(), 0);
        assert!(
            matches!(&decode_all(&wire)[..], [StreamEvent::Start { .. }, StreamEvent::Role { .. }, StreamEvent::Error(e)]
            if e.code.as_deref() == Some("rate_limit_exceeded"))
        );
    }

    #[test]
    fn an_incomplete_answer_finishes_with_length() {
        let got = decode_all(&[json!({"type": "response.incomplete", "response": {"status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"}, "usage": {"input_tokens": 2, "output_tokens": 9}}})]);
        assert_eq!(got[0], StreamEvent::Finish { choice: 0, reason: FinishReason::Length });
        assert!(matches!(got[1], StreamEvent::Usage(u) if u.output_tokens == 9));
    }
}
