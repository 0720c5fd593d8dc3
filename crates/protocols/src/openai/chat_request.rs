//! `POST /v1/chat/completions` request bodies.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_types::{
    AudioPart, ChatRequest, ContentPart, Extra, FilePart, GatewayError, ImagePart, JsonMap, MediaSource, Message,
    Protocol, ReasoningConfig, ResponseFormat, Role, Sampling, SystemPrompt, TextPart, Tool, ToolCall, ToolChoice,
};

use super::from_object;

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    messages: Vec<WireMessage>,
    #[serde(default)]
    tools: Option<Vec<WireTool>>,
    #[serde(default)]
    tool_choice: Option<WireToolChoice>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default)]
    response_format: Option<WireResponseFormat>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u64>,
    #[serde(default)]
    stop: Option<OneOrMany>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    frequency_penalty: Option<f64>,
    #[serde(default)]
    presence_penalty: Option<f64>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    logprobs: Option<bool>,
    #[serde(default)]
    top_logprobs: Option<u32>,
    #[serde(default)]
    reasoning_effort: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<WireStreamOptions>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    metadata: Option<JsonMap>,
    #[serde(flatten)]
    extra: JsonMap,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct WireStreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum WireMessage {
    System {
        content: WireContent,
    },
    Developer {
        content: WireContent,
    },
    User {
        content: WireContent,
        #[serde(default)]
        name: Option<String>,
        #[serde(flatten)]
        extra: JsonMap,
    },
    Assistant {
        #[serde(default)]
        content: Option<WireContent>,
        #[serde(default)]
        tool_calls: Option<Vec<WireToolCall>>,
        #[serde(default)]
        refusal: Option<String>,
        #[serde(default)]
        name: Option<String>,
        /// DeepSeek, vLLM and others return reasoning under this name; clients send it back.
        #[serde(default)]
        reasoning_content: Option<String>,
        #[serde(flatten)]
        extra: JsonMap,
    },
    Tool {
        content: WireContent,
        tool_call_id: String,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireContent {
    Text(String),
    Parts(Vec<WirePart>),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart {
    Text {
        text: String,
        #[serde(flatten)]
        extra: JsonMap,
    },
    ImageUrl {
        image_url: WireImageUrl,
    },
    InputAudio {
        input_audio: AudioPart,
    },
    File {
        file: WireFile,
    },
    Refusal {
        refusal: String,
    },
}

#[derive(Deserialize)]
struct WireImageUrl {
    url: String,
    #[serde(default)]
    detail: Option<String>,
}

#[derive(Deserialize)]
struct WireFile {
    #[serde(default)]
    file_data: Option<String>,
    #[serde(default)]
    file_id: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: String,
    function: WireFunctionCall,
}

#[derive(Deserialize)]
struct WireFunctionCall {
    name: String,
    arguments: String,
}

#[derive(Deserialize)]
struct WireTool {
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireToolChoice {
    Mode(String),
    Function { function: WireNamed },
}

#[derive(Deserialize)]
struct WireNamed {
    name: String,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: WireJsonSchema },
}

#[derive(Deserialize)]
struct WireJsonSchema {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

/// Decodes a chat request object into the IR.
pub fn decode_chat_request(body: &JsonMap) -> Result<ChatRequest, GatewayError> {
    let wire: WireRequest = from_object(body)?;
    if wire.messages.is_empty() {
        return Err(GatewayError::invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        )
        .with_param("messages")
        .with_code("empty_array"));
    }
    let mut system = Vec::new();
    let mut messages = Vec::new();
    for (i, m) in wire.messages.into_iter().enumerate() {
        match m {
            WireMessage::System { content } => {
                system.push(SystemPrompt { developer: false, content: decode_content(content, i)? })
            }
            WireMessage::Developer { content } => {
                system.push(SystemPrompt { developer: true, content: decode_content(content, i)? })
            }
            WireMessage::User { content, name, extra } => {
                let mut msg = Message::new(Role::User, decode_content(content, i)?);
                msg.name = name;
                msg.extra = extra;
                messages.push(msg);
            }
            WireMessage::Assistant { content, tool_calls, refusal, name, reasoning_content, extra } => {
                let content = match content {
                    Some(c) => decode_content(c, i)?,
                    None => Vec::new(),
                };
                let mut msg = Message::new(Role::Assistant, content);
                msg.tool_calls = tool_calls
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| ToolCall {
                        id: c.id,
                        name: c.function.name,
                        arguments: c.function.arguments,
                        signature: None,
                    })
                    .collect();
                msg.refusal = refusal;
                msg.name = name;
                if let Some(text) = reasoning_content {
                    msg.reasoning.push(switchyard_types::Reasoning { text, ..Default::default() });
                }
                msg.extra = extra;
                messages.push(msg);
            }
            WireMessage::Tool { content, tool_call_id } => {
                let mut msg = Message::new(Role::Tool, decode_content(content, i)?);
                msg.tool_call_id = Some(tool_call_id);
                messages.push(msg);
            }
        }
    }
    let tool_choice = match wire.tool_choice {
        None => None,
        Some(WireToolChoice::Function { function }) => Some(ToolChoice::Tool(function.name)),
        Some(WireToolChoice::Mode(mode)) => Some(match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(GatewayError::invalid(format!(
                    "Invalid value for 'tool_choice': '{other}'. Expected 'none', 'auto', 'required' or a named function."
                ))
                .with_param("tool_choice"));
            }
        }),
    };
    let response_format = wire.response_format.map(|f| match f {
        WireResponseFormat::Text => ResponseFormat::Text,
        WireResponseFormat::JsonObject => ResponseFormat::JsonObject,
        WireResponseFormat::JsonSchema { json_schema: s } => {
            ResponseFormat::JsonSchema { name: s.name, description: s.description, schema: s.schema, strict: s.strict }
        }
    });
    let stream = wire.stream.unwrap_or(false);
    Ok(ChatRequest {
        model: wire.model,
        system,
        messages,
        tools: wire
            .tools
            .unwrap_or_default()
            .into_iter()
            .map(|t| Tool {
                name: t.function.name,
                description: t.function.description,
                parameters: t.function.parameters,
                strict: t.function.strict,
                cache: None,
            })
            .collect(),
        tool_choice,
        parallel_tool_calls: wire.parallel_tool_calls,
        response_format,
        sampling: Sampling {
            max_tokens: wire.max_completion_tokens.or(wire.max_tokens),
            temperature: wire.temperature,
            top_p: wire.top_p,
            top_k: wire.top_k,
            stop: match wire.stop {
                None => Vec::new(),
                Some(OneOrMany::One(s)) => vec![s],
                Some(OneOrMany::Many(v)) => v,
            },
            seed: wire.seed,
            frequency_penalty: wire.frequency_penalty,
            presence_penalty: wire.presence_penalty,
            n: wire.n,
            logprobs: wire.logprobs,
            top_logprobs: wire.top_logprobs,
        },
        reasoning: wire.reasoning_effort.map(|effort| ReasoningConfig { effort: Some(effort), budget_tokens: None }),
        stream,
        stream_usage: stream && wire.stream_options.and_then(|o| o.include_usage).unwrap_or(false),
        user: wire.user,
        metadata: wire.metadata,
        extra: Extra { protocol: Some(Protocol::OpenAi), fields: wire.extra },
    })
}

fn decode_content(content: WireContent, index: usize) -> Result<Vec<ContentPart>, GatewayError> {
    let parts = match content {
        WireContent::Text(text) => return Ok(vec![ContentPart::text(text)]),
        WireContent::Parts(parts) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        out.push(match part {
            WirePart::Text { text, extra } => ContentPart::Text(TextPart { text, cache: None, extra }),
            WirePart::ImageUrl { image_url } => ContentPart::Image(ImagePart {
                source: MediaSource::from_url(&image_url.url),
                detail: image_url.detail,
                extra: JsonMap::new(),
            }),
            WirePart::InputAudio { input_audio } => ContentPart::Audio(input_audio),
            WirePart::File { file } => {
                let source = match (file.file_id, file.file_data) {
                    (Some(id), _) => MediaSource::FileId { id },
                    (None, Some(data)) => MediaSource::from_url(&data),
                    (None, None) => {
                        return Err(GatewayError::invalid("A file part needs 'file_id' or 'file_data'.")
                            .with_param(format!("messages[{index}].content")));
                    }
                };
                ContentPart::File(FilePart { source, filename: file.filename })
            }
            // A refusal part only appears in assistant history; as text it keeps its meaning.
            WirePart::Refusal { refusal } => ContentPart::text(refusal),
        });
    }
    Ok(out)
}

/// Encodes an IR chat request as an OpenAI request body for `model`.
///
/// Fields in `req.extra` that came from an OpenAI surface are restored, so an OpenAI-to-OpenAI
/// hop loses nothing.
pub fn encode_chat_request(req: &ChatRequest, model: &str) -> JsonMap {
    let mut body = Map::new();
    if req.extra.protocol == Some(Protocol::OpenAi) {
        body.extend(req.extra.fields.clone());
    }
    body.insert("model".into(), model.into());
    let mut messages = Vec::with_capacity(req.system.len() + req.messages.len());
    for s in &req.system {
        let role = if s.developer { "developer" } else { "system" };
        messages.push(json!({ "role": role, "content": encode_content(&s.content) }));
    }
    for m in &req.messages {
        messages.push(encode_message(m));
    }
    body.insert("messages".into(), Value::Array(messages));
    if !req.tools.is_empty() {
        let tools = req
            .tools
            .iter()
            .map(|t| {
                let mut f = Map::new();
                f.insert("name".into(), t.name.clone().into());
                if let Some(d) = &t.description {
                    f.insert("description".into(), d.clone().into());
                }
                if let Some(p) = &t.parameters {
                    f.insert("parameters".into(), p.clone());
                }
                if let Some(s) = t.strict {
                    f.insert("strict".into(), s.into());
                }
                json!({ "type": "function", "function": f })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = &req.tool_choice {
        let v = match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(name) => json!({ "type": "function", "function": { "name": name } }),
        };
        body.insert("tool_choice".into(), v);
    }
    insert_opt(&mut body, "parallel_tool_calls", req.parallel_tool_calls);
    if let Some(f) = &req.response_format {
        let v = match f {
            ResponseFormat::Text => json!({ "type": "text" }),
            ResponseFormat::JsonObject => json!({ "type": "json_object" }),
            ResponseFormat::JsonSchema { name, description, schema, strict } => {
                let mut s = Map::new();
                s.insert("name".into(), name.clone().into());
                insert_opt(&mut s, "description", description.clone());
                insert_opt(&mut s, "schema", schema.clone());
                insert_opt(&mut s, "strict", *strict);
                json!({ "type": "json_schema", "json_schema": s })
            }
        };
        body.insert("response_format".into(), v);
    }
    let s = &req.sampling;
    insert_opt(&mut body, "max_completion_tokens", s.max_tokens);
    insert_opt(&mut body, "temperature", s.temperature);
    insert_opt(&mut body, "top_p", s.top_p);
    insert_opt(&mut body, "top_k", s.top_k);
    if !s.stop.is_empty() {
        body.insert("stop".into(), s.stop.clone().into());
    }
    insert_opt(&mut body, "seed", s.seed);
    insert_opt(&mut body, "frequency_penalty", s.frequency_penalty);
    insert_opt(&mut body, "presence_penalty", s.presence_penalty);
    insert_opt(&mut body, "n", s.n);
    insert_opt(&mut body, "logprobs", s.logprobs);
    insert_opt(&mut body, "top_logprobs", s.top_logprobs);
    if let Some(r) = &req.reasoning {
        // A thinking budget (Anthropic, Gemini) becomes the nearest effort; reasoning asked for
        // with neither (Anthropic's adaptive thinking) is the default, medium.
        let effort = match (&r.effort, r.budget_tokens) {
            (Some(effort), _) => effort.clone(),
            (None, Some(budget)) if budget <= 2048 => "low".into(),
            (None, Some(budget)) if budget <= 8192 => "medium".into(),
            (None, Some(_)) => "high".into(),
            (None, None) => "medium".into(),
        };
        body.insert("reasoning_effort".into(), effort.into());
    }
    if req.stream {
        body.insert("stream".into(), true.into());
        if req.stream_usage {
            body.insert("stream_options".into(), json!({ "include_usage": true }));
        }
    }
    insert_opt(&mut body, "user", req.user.clone());
    insert_opt(&mut body, "metadata", req.metadata.clone());
    body
}

fn insert_opt<T: Into<Value>>(map: &mut JsonMap, key: &str, value: Option<T>) {
    if let Some(v) = value {
        map.insert(key.into(), v.into());
    }
}

fn encode_message(m: &Message) -> Value {
    let mut obj = m.extra.clone();
    match m.role {
        Role::User => {
            obj.insert("role".into(), "user".into());
            obj.insert("content".into(), encode_content(&m.content));
        }
        Role::Tool => {
            obj.insert("role".into(), "tool".into());
            obj.insert("content".into(), encode_content(&m.content));
            insert_opt(&mut obj, "tool_call_id", m.tool_call_id.clone());
        }
        Role::Assistant => {
            obj.insert("role".into(), "assistant".into());
            let content = if m.content.is_empty() { Value::Null } else { encode_content(&m.content) };
            obj.insert("content".into(), content);
            if !m.tool_calls.is_empty() {
                let calls = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "type": "function",
                            "function": { "name": c.name, "arguments": c.arguments },
                        })
                    })
                    .collect();
                obj.insert("tool_calls".into(), Value::Array(calls));
            }
            insert_opt(&mut obj, "refusal", m.refusal.clone());
        }
    }
    insert_opt(&mut obj, "name", m.name.clone());
    Value::Object(obj)
}

/// A single text part is sent as a plain string, the form every OpenAI-compatible server takes.
fn encode_content(parts: &[ContentPart]) -> Value {
    if let [ContentPart::Text(t)] = parts
        && t.extra.is_empty()
    {
        return Value::String(t.text.clone());
    }
    Value::Array(
        parts
            .iter()
            .map(|p| match p {
                ContentPart::Text(t) => {
                    let mut obj = t.extra.clone();
                    obj.insert("type".into(), "text".into());
                    obj.insert("text".into(), t.text.clone().into());
                    Value::Object(obj)
                }
                ContentPart::Image(img) => {
                    let mut url = Map::new();
                    url.insert("url".into(), img.source.to_url().into());
                    insert_opt(&mut url, "detail", img.detail.clone());
                    json!({ "type": "image_url", "image_url": url })
                }
                ContentPart::Audio(a) => {
                    json!({ "type": "input_audio", "input_audio": { "data": a.data, "format": a.format } })
                }
                ContentPart::File(f) => {
                    let mut file = Map::new();
                    match &f.source {
                        MediaSource::FileId { id } => file.insert("file_id".into(), id.clone().into()),
                        other => file.insert("file_data".into(), other.to_url().into()),
                    };
                    insert_opt(&mut file, "filename", f.filename.clone());
                    json!({ "type": "file", "file": file })
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::parse_object;

    fn decode(body: &str) -> Result<ChatRequest, GatewayError> {
        decode_chat_request(&parse_object(body.as_bytes())?)
    }

    #[test]
    fn decodes_every_message_kind_and_round_trips() {
        let body = r#"{
            "model": "gpt-4.1",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                    {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
                    {"type": "file", "file": {"file_id": "file-1", "filename": "a.pdf"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "1"},
                {"role": "tool", "tool_call_id": "call_2", "content": "2"}
            ],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": true}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": true,
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}, "strict": true}},
            "max_tokens": 50, "temperature": 0.5, "stop": "END", "seed": 3,
            "reasoning_effort": "low",
            "stream": true, "stream_options": {"include_usage": true},
            "vendor_knob": {"a": [1, 2]}
        }"#;
        let req = decode(body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(req.system.len(), 2);
        assert!(req.system[1].developer);
        assert_eq!(req.messages.len(), 4);
        assert_eq!(req.messages[0].content.len(), 4);
        assert!(matches!(&req.messages[0].content[1], ContentPart::Image(i)
            if matches!(&i.source, MediaSource::Base64 { media_type: Some(t), .. } if t == "image/png")));
        assert_eq!(req.messages[1].tool_calls.len(), 2);
        assert_eq!(req.messages[1].tool_calls[0].arguments, "{\"x\":1}");
        assert_eq!(req.messages[2].tool_call_id.as_deref(), Some("call_1"));
        assert_eq!(req.tool_choice, Some(ToolChoice::Tool("f".into())));
        assert_eq!(req.sampling.max_tokens, Some(50));
        assert_eq!(req.sampling.stop, vec!["END".to_string()]);
        assert!(req.stream && req.stream_usage);
        assert_eq!(req.extra.fields.get("vendor_knob"), Some(&json!({"a": [1, 2]})));

        // IR -> wire -> IR is the identity.
        let encoded = encode_chat_request(&req, "gpt-4.1");
        assert_eq!(encoded.get("vendor_knob"), Some(&json!({"a": [1, 2]})));
        let again = decode_chat_request(&encoded).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, req);
    }

    #[test]
    fn wrong_types_name_the_parameter() {
        let err = decode(r#"{"model": "m", "messages": [{"role": "user", "content": 5}]}"#).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[0]"));
        let err = decode(r#"{"model": "m", "messages": [], "temperature": "hot"}"#).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("temperature"));
        let err = decode(r#"{"messages": [{"role": "user", "content": "hi"}]}"#).unwrap_err();
        assert!(err.message.contains("model"), "{}", err.message);
        let err = decode(r#"{"model": "m", "messages": []}"#).unwrap_err();
        assert_eq!(err.code.as_deref(), Some("empty_array"));
        let err = decode(r#"{"model": "m", "messages": [{"role": "wizard", "content": "x"}]}"#).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[0].role"));
        assert!(decode("[1]").is_err());
        assert!(decode("{not json").is_err());
    }
}
