//! Streamed chat completion chunks (`chat.completion.chunk`), to and from IR stream events.

use serde_json::{Map, Value, json};
use switchyard_types::{FinishReason, GatewayError, StreamEvent};

use super::{decode_usage, encode_error, encode_usage, str_field};

/// Turns upstream chunks into IR events. One per stream: it remembers whether the start was seen.
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    started: bool,
}

impl ChunkDecoder {
    /// Decodes the data of one SSE event. `[DONE]` yields nothing.
    pub fn decode(&mut self, data: &str) -> Result<Vec<StreamEvent>, GatewayError> {
        if data.trim() == "[DONE]" {
            return Ok(Vec::new());
        }
        let v: Value = serde_json::from_str(data)
            .map_err(|e| GatewayError::upstream(502, format!("The provider sent an invalid stream chunk: {e}")))?;
        let mut out = Vec::new();
        if let Some(err) = v.get("error") {
            out.push(StreamEvent::Error(super::error::decode_error_value(err, 500)));
            return Ok(out);
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: str_field(&v, "id").unwrap_or_default(),
                model: str_field(&v, "model").unwrap_or_default(),
                created: v.get("created").and_then(Value::as_u64).unwrap_or(0),
            });
        }
        for c in v.get("choices").and_then(Value::as_array).into_iter().flatten() {
            let choice = c.get("index").and_then(Value::as_u64).unwrap_or(0) as u32;
            let delta = c.get("delta").unwrap_or(&Value::Null);
            if delta.get("role").is_some() {
                out.push(StreamEvent::Role { choice });
            }
            let reasoning = str_field(delta, "reasoning_content").or_else(|| str_field(delta, "reasoning"));
            if let Some(text) = reasoning.filter(|t| !t.is_empty()) {
                out.push(StreamEvent::Reasoning { choice, text, signature: None });
            }
            if let Some(text) = delta.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                out.push(StreamEvent::Text { choice, text: text.to_string() });
            }
            if let Some(text) = delta.get("refusal").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                out.push(StreamEvent::Refusal { choice, text: text.to_string() });
            }
            for (pos, call) in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
                out.push(StreamEvent::ToolCall {
                    choice,
                    index: call.get("index").and_then(Value::as_u64).map_or(pos as u32, |i| i as u32),
                    id: str_field(call, "id"),
                    name: call.pointer("/function/name").and_then(Value::as_str).map(str::to_string),
                    arguments: call
                        .pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                });
            }
            if let Some(reason) = c.get("finish_reason").and_then(Value::as_str) {
                out.push(StreamEvent::Finish { choice, reason: FinishReason::from_openai(reason) });
            }
        }
        if let Some(usage) = v.get("usage").and_then(decode_usage) {
            out.push(StreamEvent::Usage(usage));
        }
        Ok(out)
    }
}

/// Turns IR events into OpenAI chunks for a client.
#[derive(Debug)]
pub struct ChunkEncoder {
    id: String,
    model: String,
    created: u64,
    /// The client asked for `stream_options.include_usage`.
    include_usage: bool,
}

impl ChunkEncoder {
    pub fn new(include_usage: bool) -> Self {
        ChunkEncoder { id: String::new(), model: String::new(), created: 0, include_usage }
    }

    /// The chunk for one event, if the event shows in OpenAI's format.
    pub fn encode(&mut self, event: &StreamEvent) -> Option<Value> {
        let (choice, delta, finish) = match event {
            StreamEvent::Start { id, model, created } => {
                // The first start names the answer; a later one (a stream continued on another
                // target) must not change what the client sees.
                if self.id.is_empty() {
                    self.id.clone_from(id);
                    self.model.clone_from(model);
                    self.created = *created;
                }
                return None;
            }
            StreamEvent::Role { choice } => (*choice, json!({"role": "assistant", "content": ""}), None),
            StreamEvent::Text { choice, text } => (*choice, json!({"content": text}), None),
            StreamEvent::Refusal { choice, text } => (*choice, json!({"refusal": text}), None),
            StreamEvent::Reasoning { choice, text, .. } => {
                if text.is_empty() {
                    return None;
                }
                (*choice, json!({"reasoning_content": text}), None)
            }
            // OpenAI's chat format has no place for encrypted reasoning.
            StreamEvent::RedactedReasoning { .. } => return None,
            StreamEvent::ToolCall { choice, index, id, name, arguments } => {
                let mut call = Map::new();
                call.insert("index".into(), (*index).into());
                let mut function = Map::new();
                if let Some(id) = id {
                    call.insert("id".into(), id.clone().into());
                    call.insert("type".into(), "function".into());
                }
                if let Some(name) = name {
                    function.insert("name".into(), name.clone().into());
                }
                function.insert("arguments".into(), arguments.clone().into());
                call.insert("function".into(), function.into());
                (*choice, json!({"tool_calls": [call]}), None)
            }
            StreamEvent::Finish { choice, reason } => (*choice, json!({}), Some(reason.as_openai().to_string())),
            StreamEvent::Usage(u) => {
                if !self.include_usage {
                    return None;
                }
                let mut chunk = self.envelope();
                chunk.insert("choices".into(), json!([]));
                chunk.insert("usage".into(), encode_usage(u));
                return Some(Value::Object(chunk));
            }
            StreamEvent::Error(e) => return Some(encode_error(e)),
        };
        let mut chunk = self.envelope();
        chunk.insert(
            "choices".into(),
            json!([{"index": choice, "delta": delta, "logprobs": null, "finish_reason": finish}]),
        );
        Some(Value::Object(chunk))
    }

    fn envelope(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("id".into(), self.id.clone().into());
        m.insert("object".into(), "chat.completion.chunk".into());
        m.insert("created".into(), self.created.into());
        m.insert("model".into(), self.model.clone().into());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_types::Usage;

    #[test]
    fn parallel_tool_call_chunks_round_trip() {
        let chunks = [
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}"#,
            r#"{"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}"#,
            r#"{"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"x\":"}}]},"finish_reason":null}]}"#,
            r#"{"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","type":"function","function":{"name":"g","arguments":"{}"}}]},"finish_reason":null}]}"#,
            r#"{"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"id":"c","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#,
            "[DONE]",
        ];
        let mut dec = ChunkDecoder::default();
        let events: Vec<StreamEvent> =
            chunks.iter().flat_map(|c| dec.decode(c).unwrap_or_else(|e| panic!("{e}"))).collect();
        assert!(matches!(&events[0], StreamEvent::Start { id, .. } if id == "c"));
        assert!(events.contains(&StreamEvent::Usage(Usage {
            input_tokens: 3,
            output_tokens: 4,
            ..Default::default()
        })));
        assert!(events.contains(&StreamEvent::Finish { choice: 0, reason: FinishReason::ToolCalls }));

        // Re-encoding and decoding again gives the same events.
        let mut enc = ChunkEncoder::new(true);
        let mut dec2 = ChunkDecoder::default();
        let mut again = Vec::new();
        for e in &events {
            if let Some(chunk) = enc.encode(e) {
                again.extend(dec2.decode(&chunk.to_string()).unwrap_or_else(|e| panic!("{e}")));
            } else {
                assert!(matches!(e, StreamEvent::Start { .. }));
            }
        }
        // The start event is re-derived from the first chunk's envelope.
        assert_eq!(again, events);
    }

    #[test]
    fn usage_is_hidden_unless_asked_and_garbage_is_an_error() {
        let mut enc = ChunkEncoder::new(false);
        assert!(enc.encode(&StreamEvent::Usage(Usage::default())).is_none());
        assert!(ChunkDecoder::default().decode("{not json").is_err());
    }
}
