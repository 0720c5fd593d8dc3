//! Streamed answers. `streamGenerateContent?alt=sse` sends one answer-shaped chunk per SSE event;
//! without `alt=sse` the same chunks come as the elements of one JSON array, which
//! [`JsonArrayFramer`] cuts out of the bytes as they arrive.
//!
//! Gemini streams differ from the IR's events in three ways. Function calls arrive whole, never
//! in pieces. Usage is repeated, growing, on every chunk: it is emitted once, with the chunk that
//! finishes the answer (or at [`StreamDecoder::finish`] if none did). And a function call's
//! thought signature has no place on the IR's tool-call event: it is sent as a reasoning
//! signature just before the call, which the encoder (and `encode_chat_request`) put back on it.

use serde_json::{Map, Value, json};
use switchyard_types::{GatewayError, StreamEvent, Usage};

use super::chat_response::{answer_content, call_arguments};
use super::error::{decode_error_value, encode_error};
use super::{call_id, decode_finish, decode_usage, encode_finish, encode_usage, rfc3339, str_field, unix_seconds};

/// What the decoder knows about one candidate.
#[derive(Debug, Default, Clone)]
struct Candidate {
    seen: bool,
    calls: u32,
    finished: bool,
}

/// Turns upstream chunks into IR events; one per stream.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    response_id: String,
    candidates: Vec<Candidate>,
    /// The latest usage seen, and the last one emitted.
    usage: Option<Usage>,
    usage_sent: Option<Usage>,
}

impl StreamDecoder {
    /// Decodes the data of one SSE event.
    pub fn decode(&mut self, data: &str) -> Result<Vec<StreamEvent>, GatewayError> {
        let data = data.trim();
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let v: Value = serde_json::from_str(data)
            .map_err(|e| GatewayError::upstream(502, format!("The provider sent an invalid stream chunk: {e}")))?;
        Ok(self.decode_value(&v))
    }

    /// Decodes one parsed chunk (an SSE event's data, or an element of a JSON-array stream).
    pub fn decode_value(&mut self, v: &Value) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if let Some(err) = v.get("error") {
            let status = err.get("code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok()).unwrap_or(500);
            out.push(StreamEvent::Error(decode_error_value(err, status)));
            return out;
        }
        if !self.started {
            self.started = true;
            self.response_id = str_field(v, "responseId").unwrap_or_default();
            out.push(StreamEvent::Start {
                id: self.response_id.clone(),
                model: str_field(v, "modelVersion").unwrap_or_default(),
                created: v.get("createTime").and_then(Value::as_str).and_then(unix_seconds).unwrap_or(0),
            });
        }
        if let Some(usage) = v.get("usageMetadata").and_then(decode_usage) {
            self.usage = Some(usage);
        }
        let candidates = v.get("candidates").and_then(Value::as_array).filter(|c| !c.is_empty());
        let mut final_chunk = candidates.is_none();
        for (pos, c) in candidates.into_iter().flatten().enumerate() {
            final_chunk |= self.candidate(c, pos, &mut out);
        }
        if candidates.is_none() && v.pointer("/promptFeedback/blockReason").is_some() {
            // The prompt was blocked: no candidate comes.
            self.finish_choice(0, "PROHIBITED_CONTENT", &mut out);
        }
        if final_chunk {
            self.emit_usage(&mut out);
        }
        out
    }

    /// Called when the stream ends: the usage, if the last chunk seen did not finish the answer
    /// (a cut stream; the old Gemini 1.5 repeated `STOP` on every chunk) or brought newer counts.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        self.emit_usage(&mut out);
        out
    }

    fn emit_usage(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(usage) = self.usage
            && self.usage_sent != Some(usage)
        {
            self.usage_sent = Some(usage);
            out.push(StreamEvent::Usage(usage));
        }
    }

    fn state(&mut self, choice: u32) -> &mut Candidate {
        let at = choice as usize;
        if self.candidates.len() <= at {
            self.candidates.resize(at + 1, Candidate::default());
        }
        &mut self.candidates[at]
    }

    /// One candidate of a chunk; true if it finished the candidate.
    fn candidate(&mut self, c: &Value, pos: usize, out: &mut Vec<StreamEvent>) -> bool {
        let choice = c.get("index").and_then(Value::as_u64).map_or(pos as u32, |i| i as u32);
        self.role(choice, out);
        for part in c.pointer("/content/parts").and_then(Value::as_array).into_iter().flatten() {
            self.part(choice, part, out);
        }
        match c.get("finishReason").and_then(Value::as_str) {
            Some(reason) => self.finish_choice(choice, reason, out),
            None => false,
        }
    }

    fn role(&mut self, choice: u32, out: &mut Vec<StreamEvent>) {
        let state = self.state(choice);
        if !state.seen {
            state.seen = true;
            out.push(StreamEvent::Role { choice });
        }
    }

    /// A finish reason, once per candidate: Gemini 1.5 repeated it on every chunk.
    fn finish_choice(&mut self, choice: u32, reason: &str, out: &mut Vec<StreamEvent>) -> bool {
        self.role(choice, out);
        let state = self.state(choice);
        if state.finished {
            return false;
        }
        state.finished = true;
        let reason = decode_finish(reason, state.calls > 0);
        out.push(StreamEvent::Finish { choice, reason });
        true
    }

    fn part(&mut self, choice: u32, part: &Value, out: &mut Vec<StreamEvent>) {
        let signature = str_field(part, "thoughtSignature");
        if let Some(call) = part.get("functionCall") {
            if signature.is_some() {
                out.push(StreamEvent::Reasoning { choice, text: String::new(), signature });
            }
            let state = self.state(choice);
            let index = state.calls;
            state.calls += 1;
            out.push(StreamEvent::ToolCall {
                choice,
                index,
                id: Some(str_field(call, "id").unwrap_or_else(|| call_id(&self.response_id, choice, index as usize))),
                name: Some(str_field(call, "name").unwrap_or_default()),
                arguments: call_arguments(call),
            });
            return;
        }
        let thought = part.get("thought").and_then(Value::as_bool).unwrap_or(false);
        if let (true, Some(text)) = (thought, part.get("text").and_then(Value::as_str)) {
            if !text.is_empty() || signature.is_some() {
                out.push(StreamEvent::Reasoning { choice, text: text.to_string(), signature });
            }
            return;
        }
        if signature.is_some() {
            out.push(StreamEvent::Reasoning { choice, text: String::new(), signature });
        }
        // Media (generated images, audio) has no stream event.
        if let Some(switchyard_types::ContentPart::Text(t)) = answer_content(part) {
            out.push(StreamEvent::Text { choice, text: t.text });
        }
    }
}

/// A function call being put together from IR pieces: Gemini sends calls whole.
#[derive(Debug)]
struct PendingCall {
    choice: u32,
    index: u32,
    id: String,
    name: String,
    arguments: String,
    signature: Option<String>,
}

/// Turns IR events into Gemini chunks for a client (each chunk is one SSE event's data).
/// Call [`StreamEncoder::finish`] at the end: a finished candidate waits for the usage, which
/// Gemini puts on the same chunk.
#[derive(Debug, Default)]
pub struct StreamEncoder {
    id: String,
    model: String,
    created: u64,
    /// A signature that came without text: Gemini carries it on the next part of its choice.
    signatures: Vec<(u32, String)>,
    calls: Vec<PendingCall>,
    finished: Vec<Value>,
}

impl StreamEncoder {
    /// The chunks for one event (none, while a call or a finish waits for what follows).
    pub fn encode(&mut self, event: &StreamEvent) -> Vec<Value> {
        let mut out = Vec::new();
        match event {
            StreamEvent::Start { id, model, created } => {
                // A stream continued on another target keeps the name it started with.
                if self.id.is_empty() && self.model.is_empty() {
                    self.id.clone_from(id);
                    self.model.clone_from(model);
                    self.created = *created;
                }
            }
            // Gemini has no role chunk, and Anthropic's encrypted reasoning means nothing to it.
            StreamEvent::Role { .. } | StreamEvent::RedactedReasoning { .. } => {}
            StreamEvent::Text { choice, text } | StreamEvent::Refusal { choice, text } => {
                self.flush_finished(&mut out);
                self.flush_calls(&mut out);
                let mut part = json!({ "text": text });
                if let Some(s) = self.take_signature(*choice) {
                    part["thoughtSignature"] = s.into();
                }
                out.push(Value::Object(self.chunk(vec![candidate(*choice, vec![part])])));
            }
            StreamEvent::Reasoning { choice, text, signature } => {
                self.flush_finished(&mut out);
                self.flush_signature(*choice, &mut out);
                match (text.is_empty(), signature) {
                    (true, None) => {}
                    (true, Some(s)) => self.signatures.push((*choice, s.clone())),
                    (false, s) => {
                        self.flush_calls(&mut out);
                        let mut part = json!({ "text": text, "thought": true });
                        if let Some(s) = s {
                            part["thoughtSignature"] = s.clone().into();
                        }
                        out.push(Value::Object(self.chunk(vec![candidate(*choice, vec![part])])));
                    }
                }
            }
            StreamEvent::ToolCall { choice, index, id, name, arguments } => {
                self.flush_finished(&mut out);
                self.add_call(*choice, *index, id.as_deref(), name.as_deref(), arguments);
            }
            StreamEvent::Finish { choice, reason } => {
                self.flush_calls(&mut out);
                self.flush_signature(*choice, &mut out);
                let mut c = candidate(*choice, vec![json!({ "text": "" })]);
                c.insert("finishReason".into(), encode_finish(reason).into());
                self.finished.push(Value::Object(c));
            }
            StreamEvent::Usage(u) => {
                self.flush_calls(&mut out);
                let candidates = std::mem::take(&mut self.finished);
                let mut chunk = self.chunk(candidates);
                chunk.insert("usageMetadata".into(), encode_usage(u, Map::new()));
                out.push(Value::Object(chunk));
            }
            StreamEvent::Error(e) => {
                out.extend(self.finish());
                out.push(encode_error(e));
            }
        }
        out
    }

    /// What is still held when the stream ends.
    pub fn finish(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        self.flush_calls(&mut out);
        let choices: Vec<u32> = self.signatures.iter().map(|(c, _)| *c).collect();
        for choice in choices {
            self.flush_signature(choice, &mut out);
        }
        self.flush_finished(&mut out);
        out
    }

    fn add_call(&mut self, choice: u32, index: u32, id: Option<&str>, name: Option<&str>, arguments: &str) {
        if let Some(call) = self.calls.iter_mut().find(|c| c.choice == choice && c.index == index) {
            if let Some(id) = id {
                call.id = id.to_string();
            }
            if let Some(name) = name {
                call.name.push_str(name);
            }
            call.arguments.push_str(arguments);
            return;
        }
        let signature = self.take_signature(choice);
        self.calls.push(PendingCall {
            choice,
            index,
            id: id.unwrap_or_default().to_string(),
            name: name.unwrap_or_default().to_string(),
            arguments: arguments.to_string(),
            signature,
        });
    }

    fn take_signature(&mut self, choice: u32) -> Option<String> {
        let at = self.signatures.iter().position(|(c, _)| *c == choice)?;
        Some(self.signatures.remove(at).1)
    }

    /// A held signature that no part took, on an empty text part as Gemini sends it.
    fn flush_signature(&mut self, choice: u32, out: &mut Vec<Value>) {
        if let Some(s) = self.take_signature(choice) {
            let part = json!({ "text": "", "thoughtSignature": s });
            out.push(Value::Object(self.chunk(vec![candidate(choice, vec![part])])));
        }
    }

    /// The held calls, whole, in one chunk: parallel calls arrive together from Gemini too.
    fn flush_calls(&mut self, out: &mut Vec<Value>) {
        if self.calls.is_empty() {
            return;
        }
        let mut candidates: Vec<Map<String, Value>> = Vec::new();
        for call in std::mem::take(&mut self.calls) {
            let part = call_part(call.id, call.name, &call.arguments, call.signature);
            let at = match candidates.iter().position(|c| c.get("index") == Some(&call.choice.into())) {
                Some(at) => at,
                None => {
                    candidates.push(candidate(call.choice, Vec::new()));
                    candidates.len() - 1
                }
            };
            if let Some(Value::Array(parts)) = candidates[at].get_mut("content").and_then(|c| c.get_mut("parts")) {
                parts.push(part);
            }
        }
        out.push(Value::Object(self.chunk(candidates)));
    }

    /// Finished candidates whose usage did not come.
    fn flush_finished(&mut self, out: &mut Vec<Value>) {
        if !self.finished.is_empty() {
            let candidates = std::mem::take(&mut self.finished);
            out.push(Value::Object(self.chunk(candidates)));
        }
    }

    fn chunk<C: Into<Value>>(&self, candidates: Vec<C>) -> Map<String, Value> {
        let mut chunk = Map::new();
        if !candidates.is_empty() {
            chunk.insert("candidates".into(), Value::Array(candidates.into_iter().map(Into::into).collect()));
        }
        chunk.insert("modelVersion".into(), self.model.clone().into());
        if self.created > 0 {
            chunk.insert("createTime".into(), rfc3339(self.created).into());
        }
        chunk.insert("responseId".into(), self.id.clone().into());
        chunk
    }
}

fn candidate(choice: u32, parts: Vec<Value>) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("content".into(), json!({ "parts": parts, "role": "model" }));
    c.insert("index".into(), choice.into());
    c
}

/// A whole function call. Arguments that are not a JSON object (a model of another provider
/// wrote invalid JSON) cannot be Gemini's `args`: they become `{}`.
fn call_part(id: String, name: String, arguments: &str, signature: Option<String>) -> Value {
    let args = match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::Object(Map::new()),
    };
    let mut call = Map::new();
    if !id.is_empty() {
        call.insert("id".into(), id.into());
    }
    call.insert("name".into(), name.into());
    call.insert("args".into(), args);
    let mut part = json!({ "functionCall": call });
    if let Some(s) = signature {
        part["thoughtSignature"] = s.into();
    }
    part
}

/// Cuts the elements out of a JSON-array stream (`[{…}\n,\r\n{…}]`) as its bytes arrive, however
/// they are split; each element is scanned once. One element is bounded like an SSE frame.
#[derive(Debug)]
pub struct JsonArrayFramer {
    max_frame: usize,
    buf: Vec<u8>,
    /// Bytes of `buf` already scanned.
    scanned: usize,
    /// Where the element being read starts in `buf`.
    start: Option<usize>,
    depth: u32,
    in_string: bool,
    escaped: bool,
}

impl Default for JsonArrayFramer {
    fn default() -> Self {
        Self::new(crate::sse::DEFAULT_MAX_FRAME)
    }
}

impl JsonArrayFramer {
    pub fn new(max_frame: usize) -> Self {
        JsonArrayFramer {
            max_frame,
            buf: Vec::new(),
            scanned: 0,
            start: None,
            depth: 0,
            in_string: false,
            escaped: false,
        }
    }

    /// Feeds the next bytes read and returns the elements they complete, as JSON texts.
    pub fn feed(&mut self, input: &[u8]) -> Result<Vec<String>, GatewayError> {
        self.buf.extend_from_slice(input);
        let mut out = Vec::new();
        let mut i = self.scanned;
        while i < self.buf.len() {
            let b = self.buf[i];
            match self.start {
                None => match b {
                    b'{' => {
                        self.start = Some(i);
                        self.depth = 1;
                    }
                    b'[' | b']' | b',' | b' ' | b'\t' | b'\r' | b'\n' => {}
                    _ => {
                        return Err(GatewayError::upstream(
                            502,
                            "The provider's stream is not a JSON array of objects.",
                        ));
                    }
                },
                Some(start) => {
                    if self.scan(b) {
                        let element = String::from_utf8(self.buf[start..=i].to_vec())
                            .map_err(|_| GatewayError::upstream(502, "The provider's stream is not valid UTF-8."))?;
                        out.push(element);
                        self.start = None;
                    }
                }
            }
            i += 1;
        }
        // Keep only the element being read.
        let keep = self.start.unwrap_or(i);
        self.buf.drain(..keep);
        self.start = self.start.map(|_| 0);
        self.scanned = i - keep;
        if self.buf.len() > self.max_frame {
            return Err(GatewayError::upstream(
                502,
                format!("A stream element exceeds the maximum frame size of {} bytes.", self.max_frame),
            ));
        }
        Ok(out)
    }

    /// One byte inside an element; true when it closes the element.
    fn scan(&mut self, b: u8) -> bool {
        if self.in_string {
            match (self.escaped, b) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
            return false;
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                return self.depth == 0;
            }
            _ => {}
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use switchyard_types::{FinishReason, StreamAssembler};

    use super::*;

    fn decode_all(chunks: &[Value]) -> Vec<StreamEvent> {
        let mut d = StreamDecoder::default();
        let mut events: Vec<StreamEvent> = chunks.iter().flat_map(|c| d.decode_value(c)).collect();
        events.extend(d.finish());
        events
    }

    fn reencode(events: &[StreamEvent]) -> Vec<StreamEvent> {
        let mut enc = StreamEncoder::default();
        let mut chunks: Vec<Value> = events.iter().flat_map(|e| enc.encode(e)).collect();
        chunks.extend(enc.finish());
        let mut d = StreamDecoder::default();
        let mut again: Vec<StreamEvent> =
            chunks.iter().flat_map(|c| d.decode(&c.to_string()).unwrap_or_else(|e| panic!("{e}: {c}"))).collect();
        again.extend(d.finish());
        again
    }

    #[test]
    fn parallel_calls_signatures_and_usage_once() {
        let chunks = [
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "plan", "thought": true}]}, "index": 0}],
                   "usageMetadata": {"promptTokenCount": 5, "thoughtsTokenCount": 3, "totalTokenCount": 8},
                   "modelVersion": "m", "responseId": "R"}),
            json!({"candidates": [{"content": {"role": "model", "parts": [
                      {"functionCall": {"name": "f", "args": {"x": 1}}, "thoughtSignature": "S1"},
                      {"functionCall": {"name": "f", "args": {"x": 2}}}]},
                   "finishReason": "STOP", "index": 0}],
                   "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 9, "thoughtsTokenCount": 3,
                                     "totalTokenCount": 17},
                   "modelVersion": "m", "responseId": "R"}),
        ];
        let events = decode_all(&chunks);
        let usages: Vec<&StreamEvent> = events.iter().filter(|e| matches!(e, StreamEvent::Usage(_))).collect();
        assert_eq!(usages.len(), 1);
        assert_eq!(
            usages[0],
            &StreamEvent::Usage(Usage {
                input_tokens: 5,
                output_tokens: 12,
                reasoning_tokens: 3,
                ..Default::default()
            })
        );
        let mut a = StreamAssembler::default();
        events.iter().for_each(|e| a.push(e));
        let r = a.finish();
        let m = &r.choices[0].message;
        let calls: Vec<(&str, &str)> = m.tool_calls.iter().map(|c| (c.id.as_str(), c.arguments.as_str())).collect();
        assert_eq!(calls, [("call_R_0", r#"{"x":1}"#), ("call_R_1", r#"{"x":2}"#)]);
        // The call's signature closes the thought block before it.
        assert_eq!(m.reasoning[0].signature.as_deref(), Some("S1"));
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
        assert_eq!(reencode(&events), events);
    }

    #[test]
    fn fragmented_calls_of_another_protocol_are_sent_whole() {
        let events = [
            StreamEvent::Start { id: "c".into(), model: "gpt".into(), created: 0 },
            StreamEvent::Role { choice: 0 },
            StreamEvent::Text { choice: 0, text: "Let me check.".into() },
            StreamEvent::ToolCall {
                choice: 0,
                index: 0,
                id: Some("a".into()),
                name: Some("f".into()),
                arguments: String::new(),
            },
            StreamEvent::ToolCall { choice: 0, index: 0, id: None, name: None, arguments: "{\"q\":".into() },
            StreamEvent::ToolCall { choice: 0, index: 0, id: None, name: None, arguments: "1}".into() },
            StreamEvent::ToolCall {
                choice: 0,
                index: 1,
                id: Some("b".into()),
                name: Some("g".into()),
                arguments: "{}".into(),
            },
            StreamEvent::Finish { choice: 0, reason: FinishReason::ToolCalls },
            StreamEvent::Usage(Usage { input_tokens: 3, output_tokens: 4, ..Default::default() }),
        ];
        let mut enc = StreamEncoder::default();
        let mut chunks: Vec<Value> = events.iter().flat_map(|e| enc.encode(e)).collect();
        chunks.extend(enc.finish());
        assert_eq!(chunks.len(), 3, "{chunks:?}");
        assert_eq!(
            chunks[1]["candidates"][0]["content"]["parts"],
            json!([{"functionCall": {"id": "a", "name": "f", "args": {"q": 1}}}, {"functionCall": {"id": "b", "name": "g", "args": {}}}])
        );
        assert_eq!(chunks[2]["candidates"][0]["finishReason"], "STOP");
        assert_eq!(chunks[2]["usageMetadata"]["totalTokenCount"], 7);
        let again = decode_all(&chunks);
        let mut a = StreamAssembler::default();
        again.iter().for_each(|e| a.push(e));
        let r = a.finish();
        assert_eq!(r.choices[0].message.tool_calls[0].arguments, r#"{"q":1}"#);
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    }

    #[test]
    fn blocked_prompts_errors_and_repeated_stops() {
        let events = decode_all(&[
            json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}}),
        ]);
        assert!(events.contains(&StreamEvent::Finish { choice: 0, reason: FinishReason::ContentFilter }));
        let events =
            decode_all(&[json!({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}})]);
        assert!(matches!(&events[0], StreamEvent::Error(e) if e.http_status() == 429));
        // Gemini 1.5 said STOP on every chunk: one finish, and the usage of the last chunk.
        let chunk = |t: &str, n: u64| {
            json!({"candidates": [{"content": {"parts": [{"text": t}], "role": "model"}, "finishReason": "STOP", "index": 0}],
                   "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": n}})
        };
        let events = decode_all(&[chunk("a", 1), chunk("b", 2)]);
        assert_eq!(events.iter().filter(|e| matches!(e, StreamEvent::Finish { .. })).count(), 1);
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Usage(Usage { input_tokens: 1, output_tokens: 2, ..Default::default() }))
        );
        assert!(StreamDecoder::default().decode("{oops").is_err());
    }

    #[test]
    fn json_array_elements_survive_any_split() {
        let text = br#"[{"a": "}{\"]", "b": [1, {"c": 2}]}
,
{"d": "\\"}
]"#;
        let whole = {
            let mut f = JsonArrayFramer::default();
            f.feed(text).unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(whole.len(), 2);
        assert_eq!(serde_json::from_str::<Value>(&whole[1]).ok(), Some(json!({"d": "\\"})));
        for i in 0..=text.len() {
            for j in i..=text.len() {
                let mut f = JsonArrayFramer::default();
                let mut got = Vec::new();
                for piece in [&text[..i], &text[i..j], &text[j..]] {
                    got.extend(f.feed(piece).unwrap_or_else(|e| panic!("{e}")));
                }
                assert_eq!(got, whole, "split at {i},{j}");
            }
        }
        let mut small = JsonArrayFramer::new(8);
        assert!(small.feed(b"[{\"a\": \"0123456789\"").is_err());
        assert!(JsonArrayFramer::default().feed(b"nope").is_err());
    }
}
