//! `POST /v1/messages` (and `/v1/messages/count_tokens`) request bodies.
//!
//! Anthropic interleaves a turn's blocks in one list; the IR keeps a message's reasoning, text
//! and tool calls apart. Encoding puts them back in the order Anthropic requires of a replayed
//! assistant turn: reasoning first, then text, then tool calls. Tool results, which Anthropic
//! carries as blocks of a user message, are the IR's tool messages; consecutive ones (and any user
//! text after them) go back into one user message.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_types::{
    CacheMarker, ChatRequest, ContentPart, Extra, FilePart, GatewayError, ImagePart, JsonMap, MediaSource, Message,
    Protocol, Reasoning, ReasoningConfig, ResponseFormat, Role, Sampling, SystemPrompt, TextPart, Tool, ToolCall,
    ToolChoice,
};

use super::response::assistant_turn;
use super::{
    BLOCKS, DOCUMENT, IS_ERROR, THINKING_EXTRA, THINKING_OFF, Turns, add_effort, block_kind, effort_budget, keep_order,
};
use crate::openai::from_object;

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    messages: Vec<WireMessage>,
    #[serde(default)]
    system: Option<WireSystem>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    metadata: Option<WireMetadata>,
    #[serde(default)]
    stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u64>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    tool_choice: Option<WireToolChoice>,
    #[serde(default)]
    thinking: Option<WireThinking>,
    #[serde(default)]
    output_config: Option<WireOutputConfig>,
    #[serde(flatten)]
    extra: JsonMap,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireSystem {
    Text(String),
    Blocks(Vec<Value>),
}

#[derive(Deserialize)]
struct WireMetadata {
    #[serde(default)]
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    role: WireRole,
    content: WireContent,
}

#[derive(Deserialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum WireRole {
    User,
    Assistant,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireContent {
    Text(String),
    Blocks(Vec<Value>),
}

#[derive(Deserialize)]
struct WireToolChoice {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Deserialize)]
struct WireThinking {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    budget_tokens: Option<u64>,
    #[serde(flatten)]
    extra: JsonMap,
}

#[derive(Deserialize)]
struct WireOutputConfig {
    #[serde(default)]
    format: Option<Value>,
    #[serde(default)]
    effort: Option<String>,
    #[serde(flatten)]
    extra: JsonMap,
}

fn invalid(param: String, message: impl Into<String>) -> GatewayError {
    GatewayError::invalid(message).with_param(param)
}

/// Decodes a Messages request into the IR. `count_tokens` bodies have no `max_tokens`; pass
/// `needs_max_tokens: false` for them.
pub fn decode_messages_request(body: &JsonMap, needs_max_tokens: bool) -> Result<ChatRequest, GatewayError> {
    let wire: WireRequest = from_object(body)?;
    if needs_max_tokens && wire.max_tokens.is_none() {
        return Err(invalid("max_tokens".into(), "max_tokens: Field required"));
    }
    let system = match wire.system {
        None => Vec::new(),
        Some(WireSystem::Text(text)) => vec![SystemPrompt { developer: false, content: vec![ContentPart::text(text)] }],
        Some(WireSystem::Blocks(blocks)) => {
            let mut content = Vec::new();
            for (i, b) in blocks.iter().enumerate() {
                match decode_block(b, &format!("system.{i}"))? {
                    Block::Part(p) => content.push(p),
                    _ => return Err(invalid(format!("system.{i}"), "system blocks must be text blocks")),
                }
            }
            vec![SystemPrompt { developer: false, content }]
        }
    };
    let mut messages = Vec::new();
    for (i, m) in wire.messages.into_iter().enumerate() {
        decode_message(m, i, &mut messages)?;
    }
    let (tools, server_tools) = decode_tools(wire.tools.unwrap_or_default())?;
    let mut extra = wire.extra;
    if !server_tools.is_empty() {
        extra.insert("tools".into(), Value::Array(server_tools));
    }
    let (tool_choice, parallel_tool_calls) = match wire.tool_choice {
        None => (None, None),
        Some(c) => {
            let choice = match (c.kind.as_str(), c.name) {
                ("auto", _) => ToolChoice::Auto,
                ("any", _) => ToolChoice::Required,
                ("none", _) => ToolChoice::None,
                ("tool", Some(name)) => ToolChoice::Tool(name),
                (other, _) => {
                    return Err(invalid(
                        "tool_choice".into(),
                        format!("tool_choice.type must be auto, any, tool (with a name) or none, not '{other}'"),
                    ));
                }
            };
            (Some(choice), c.disable_parallel_tool_use.map(|d| !d))
        }
    };
    let mut reasoning = match wire.thinking {
        None => None,
        Some(t) => {
            if !t.extra.is_empty() {
                extra.insert(THINKING_EXTRA.into(), Value::Object(t.extra));
            }
            match t.kind.as_str() {
                "enabled" => Some(ReasoningConfig { effort: None, budget_tokens: t.budget_tokens }),
                "adaptive" => Some(ReasoningConfig { effort: None, budget_tokens: None }),
                "disabled" => None,
                other => {
                    return Err(invalid(
                        "thinking.type".into(),
                        format!("thinking.type must be enabled, adaptive or disabled, not '{other}'"),
                    ));
                }
            }
        }
    };
    let mut response_format = None;
    if let Some(oc) = wire.output_config {
        if let Some(effort) = oc.effort {
            add_effort(&mut reasoning, &mut extra, effort);
        }
        if let Some(format) = oc.format {
            response_format = Some(decode_format(&format)?);
        }
        if !oc.extra.is_empty() {
            extra.insert("output_config".into(), Value::Object(oc.extra));
        }
    }
    let stream = wire.stream.unwrap_or(false);
    Ok(ChatRequest {
        model: wire.model,
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls,
        response_format,
        sampling: Sampling {
            max_tokens: wire.max_tokens,
            temperature: wire.temperature,
            top_p: wire.top_p,
            top_k: wire.top_k,
            stop: wire.stop_sequences.unwrap_or_default(),
            ..Sampling::default()
        },
        reasoning,
        stream,
        // An Anthropic stream always reports usage.
        stream_usage: stream,
        user: wire.metadata.and_then(|m| m.user_id),
        metadata: None,
        extra: Extra { protocol: Some(Protocol::Anthropic), fields: extra },
    })
}

fn decode_format(v: &Value) -> Result<ResponseFormat, GatewayError> {
    match v.get("type").and_then(Value::as_str) {
        Some("json_schema") => Ok(ResponseFormat::JsonSchema {
            name: v.get("name").and_then(Value::as_str).unwrap_or("output").to_string(),
            description: None,
            schema: v.get("schema").cloned(),
            strict: Some(true),
        }),
        _ => Err(invalid("output_config.format".into(), "output_config.format.type must be json_schema")),
    }
}

/// Custom tools become IR tools; Anthropic's server tools (`web_search_20250305`, …) have no IR
/// form and are kept apart, for the same protocol only.
fn decode_tools(tools: Vec<Value>) -> Result<(Vec<Tool>, Vec<Value>), GatewayError> {
    let mut custom = Vec::new();
    let mut server = Vec::new();
    for (i, t) in tools.into_iter().enumerate() {
        let kind = t.get("type").and_then(Value::as_str);
        if kind.is_some_and(|k| k != "custom") {
            server.push(t);
            continue;
        }
        let Some(name) = t.get("name").and_then(Value::as_str) else {
            return Err(invalid(format!("tools.{i}.name"), "tools.{i}.name: Field required"));
        };
        custom.push(Tool {
            name: name.to_string(),
            description: t.get("description").and_then(Value::as_str).map(str::to_string),
            parameters: t.get("input_schema").cloned(),
            strict: t.get("strict").and_then(Value::as_bool),
            cache: cache_marker(&t),
        });
    }
    Ok((custom, server))
}

fn cache_marker(v: &Value) -> Option<CacheMarker> {
    let c = v.get("cache_control")?;
    Some(CacheMarker { ttl: c.get("ttl").and_then(Value::as_str).map(str::to_string) })
}

/// One content block, sorted by where the IR keeps it.
enum Block {
    Part(ContentPart),
    Reasoning(Reasoning),
    Call(ToolCall),
    Result {
        id: String,
        content: Vec<ContentPart>,
        is_error: Option<bool>,
    },
    /// A block the IR has no form for (server tool use and results, search results, …).
    Other(Value),
}

fn str_of<'a>(b: &'a Value, key: &str, at: &str) -> Result<&'a str, GatewayError> {
    b.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{at}.{key}"), format!("{at}.{key}: Field required")))
}

fn decode_block(b: &Value, at: &str) -> Result<Block, GatewayError> {
    let kind = b.get("type").and_then(Value::as_str).unwrap_or_default();
    Ok(match kind {
        "text" => {
            let mut extra = JsonMap::new();
            if let Some(c) = b.get("citations") {
                extra.insert("citations".into(), c.clone());
            }
            Block::Part(ContentPart::Text(TextPart {
                text: str_of(b, "text", at)?.to_string(),
                cache: cache_marker(b),
                extra,
            }))
        }
        "image" => {
            let mut extra = JsonMap::new();
            if let Some(c) = b.get("cache_control") {
                extra.insert("cache_control".into(), c.clone());
            }
            Block::Part(ContentPart::Image(ImagePart { source: decode_source(b, at)?, detail: None, extra }))
        }
        // A plain-text document is text to any other protocol; the block's other fields ride
        // along for the same protocol.
        "document" if b.pointer("/source/type").and_then(Value::as_str) == Some("text") => {
            let text = b.pointer("/source/data").and_then(Value::as_str).unwrap_or_default().to_string();
            let mut doc = b.as_object().cloned().unwrap_or_default();
            doc.remove("source");
            let mut extra = JsonMap::new();
            extra.insert(DOCUMENT.into(), Value::Object(doc));
            Block::Part(ContentPart::Text(TextPart { text, cache: cache_marker(b), extra }))
        }
        "document" => Block::Part(ContentPart::File(FilePart {
            source: decode_source(b, at)?,
            filename: b.get("title").and_then(Value::as_str).map(str::to_string),
        })),
        "tool_use" => Block::Call(ToolCall {
            id: str_of(b, "id", at)?.to_string(),
            name: str_of(b, "name", at)?.to_string(),
            arguments: b.get("input").cloned().unwrap_or_else(|| json!({})).to_string(),
            signature: None,
        }),
        "tool_result" => {
            let content = match b.get("content") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(s)) => vec![ContentPart::text(s.clone())],
                Some(Value::Array(items)) => {
                    let mut parts = Vec::new();
                    for (j, item) in items.iter().enumerate() {
                        match decode_block(item, &format!("{at}.content.{j}"))? {
                            Block::Part(p) => parts.push(p),
                            _ => {
                                return Err(invalid(
                                    format!("{at}.content.{j}"),
                                    "tool_result content holds text, image or document blocks",
                                ));
                            }
                        }
                    }
                    parts
                }
                Some(_) => {
                    return Err(invalid(format!("{at}.content"), "tool_result content must be a string or a list"));
                }
            };
            Block::Result {
                id: str_of(b, "tool_use_id", at)?.to_string(),
                content,
                is_error: b.get("is_error").and_then(Value::as_bool),
            }
        }
        "thinking" => Block::Reasoning(Reasoning {
            text: str_of(b, "thinking", at)?.to_string(),
            signature: b.get("signature").and_then(Value::as_str).map(str::to_string),
            redacted: None,
        }),
        "redacted_thinking" => Block::Reasoning(Reasoning {
            text: String::new(),
            signature: None,
            redacted: Some(str_of(b, "data", at)?.to_string()),
        }),
        "" => return Err(invalid(format!("{at}.type"), format!("{at}.type: Field required"))),
        _ => Block::Other(b.clone()),
    })
}

fn decode_source(b: &Value, at: &str) -> Result<MediaSource, GatewayError> {
    let s = b.get("source").ok_or_else(|| invalid(format!("{at}.source"), format!("{at}.source: Field required")))?;
    let at = format!("{at}.source");
    Ok(match s.get("type").and_then(Value::as_str).unwrap_or_default() {
        "base64" => MediaSource::Base64 {
            media_type: s.get("media_type").and_then(Value::as_str).map(str::to_string),
            data: str_of(s, "data", &at)?.to_string(),
        },
        "url" => MediaSource::Url { url: str_of(s, "url", &at)?.to_string() },
        "file" => MediaSource::FileId { id: str_of(s, "file_id", &at)?.to_string() },
        other => return Err(invalid(format!("{at}.type"), format!("source type '{other}' is not supported"))),
    })
}

fn decode_message(m: WireMessage, i: usize, out: &mut Vec<Message>) -> Result<(), GatewayError> {
    let blocks = match m.content {
        WireContent::Text(text) => {
            let role = if m.role == WireRole::User { Role::User } else { Role::Assistant };
            out.push(Message::new(role, vec![ContentPart::text(text)]));
            return Ok(());
        }
        WireContent::Blocks(blocks) => blocks,
    };
    let role = if m.role == WireRole::User { Role::User } else { Role::Assistant };
    let mut msg = Message::new(role, Vec::new());
    let mut others = Vec::new();
    let mut kinds = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("messages.{i}.content.{j}");
        let kind = b.get("type").and_then(Value::as_str).unwrap_or_default();
        if role == Role::Assistant {
            kinds.push(block_kind(kind));
        }
        match decode_block(b, &at)? {
            Block::Part(p) => msg.content.push(p),
            Block::Reasoning(r) if role == Role::Assistant => msg.reasoning.push(r),
            Block::Call(c) if role == Role::Assistant => msg.tool_calls.push(c),
            Block::Result { id, content, is_error } if role == Role::User => {
                let mut result = Message::new(Role::Tool, content);
                result.tool_call_id = Some(id);
                if let Some(e) = is_error {
                    result.extra.insert(IS_ERROR.into(), Value::Bool(e));
                }
                out.push(result);
            }
            Block::Other(v) => others.push(v),
            _ => return Err(invalid(at, format!("this block type is not allowed in a {} message", role_name(role)))),
        }
    }
    if !others.is_empty() {
        msg.extra.insert(BLOCKS.into(), Value::Array(others));
    }
    keep_order(&mut msg.extra, kinds);
    // A user message of tool results only has nothing left to say.
    let empty = msg.content.is_empty() && msg.tool_calls.is_empty() && msg.reasoning.is_empty() && msg.extra.is_empty();
    if !(empty && role == Role::User && out.last().is_some_and(|m| m.role == Role::Tool)) {
        out.push(msg);
    }
    Ok(())
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// Encodes an IR chat request as an Anthropic Messages body for `model`. What Anthropic cannot
/// express is a 400 naming it, never a silent drop: several choices, audio, logprobs,
/// frequency/presence penalties, seeds.
pub fn encode_messages_request(req: &ChatRequest, model: &str) -> Result<JsonMap, GatewayError> {
    let s = &req.sampling;
    let unsupported = [
        ("n", s.n.is_some_and(|n| n > 1)),
        ("logprobs", s.logprobs == Some(true) || s.top_logprobs.is_some()),
        ("frequency_penalty", s.frequency_penalty.is_some_and(|v| v != 0.0)),
        ("presence_penalty", s.presence_penalty.is_some_and(|v| v != 0.0)),
        ("seed", s.seed.is_some()),
    ];
    if let Some((param, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(invalid(param.to_string(), format!("'{param}' is not supported by Anthropic models.")));
    }
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    // Anthropic requires max_tokens; a client of another protocol may not send it.
    body.insert("max_tokens".into(), s.max_tokens.unwrap_or(super::DEFAULT_MAX_TOKENS).into());
    let system: Vec<Value> = req.system.iter().flat_map(|p| &p.content).map(encode_part).collect::<Result<_, _>>()?;
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    body.insert("messages".into(), Value::Array(encode_messages(&req.messages)?));
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut tool = Map::new();
                tool.insert("name".into(), t.name.clone().into());
                if let Some(d) = &t.description {
                    tool.insert("description".into(), d.clone().into());
                }
                tool.insert("input_schema".into(), t.parameters.clone().unwrap_or_else(|| json!({"type": "object"})));
                if let Some(strict) = t.strict {
                    tool.insert("strict".into(), strict.into());
                }
                if let Some(c) = &t.cache {
                    tool.insert("cache_control".into(), encode_cache(c));
                }
                Value::Object(tool)
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if req.tool_choice.is_some() || req.parallel_tool_calls == Some(false) {
        let mut choice = match &req.tool_choice {
            None | Some(ToolChoice::Auto) => json!({"type": "auto"}),
            Some(ToolChoice::None) => json!({"type": "none"}),
            Some(ToolChoice::Required) => json!({"type": "any"}),
            Some(ToolChoice::Tool(name)) => json!({"type": "tool", "name": name}),
        };
        if req.parallel_tool_calls == Some(false) {
            choice["disable_parallel_tool_use"] = true.into();
        }
        body.insert("tool_choice".into(), choice);
    }
    if !s.stop.is_empty() {
        body.insert("stop_sequences".into(), s.stop.clone().into());
    }
    for (key, v) in [("temperature", s.temperature), ("top_p", s.top_p)] {
        if let Some(v) = v {
            body.insert(key.into(), v.into());
        }
    }
    if let Some(k) = s.top_k {
        body.insert("top_k".into(), k.into());
    }
    let mut output_config = Map::new();
    if let Some(r) = &req.reasoning {
        let native = req.extra.protocol == Some(Protocol::Anthropic);
        let off = native && req.extra.fields.contains_key(THINKING_OFF);
        let thinking = match (r.budget_tokens, r.effort.as_deref()) {
            (_, _) if off => None,
            (Some(budget), _) => Some(json!({"type": "enabled", "budget_tokens": budget})),
            (None, _) if native => Some(json!({"type": "adaptive"})),
            (None, None) => Some(json!({"type": "adaptive"})),
            (None, Some("none")) => Some(json!({"type": "disabled"})),
            // Another protocol's effort as a thinking budget: every thinking model takes one.
            (None, Some(effort)) => Some(json!({"type": "enabled", "budget_tokens": effort_budget(effort)?})),
        };
        if let Some(mut t) = thinking {
            if native && let Some(Value::Object(more)) = req.extra.fields.get(THINKING_EXTRA) {
                for (k, v) in more {
                    t[k] = v.clone();
                }
            }
            body.insert("thinking".into(), t);
        }
        if native && let Some(effort) = &r.effort {
            output_config.insert("effort".into(), effort.clone().into());
        }
    }
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            output_config.insert(
                "format".into(),
                json!({"type": "json_schema", "schema": schema.clone().unwrap_or_else(|| json!({"type": "object"}))}),
            );
        }
        Some(ResponseFormat::JsonObject) => {
            output_config.insert(
                "format".into(),
                json!({"type": "json_schema", "schema": {"type": "object", "additionalProperties": true}}),
            );
        }
    }
    if !output_config.is_empty() {
        body.insert("output_config".into(), Value::Object(output_config));
    }
    if let Some(user) = &req.user {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    if req.stream {
        body.insert("stream".into(), true.into());
    }
    // Same protocol: what the IR does not model goes back as it came (not the IR's own
    // markers, which start with `anthropic.`).
    if req.extra.protocol == Some(Protocol::Anthropic) {
        for (k, v) in req.extra.fields.iter().filter(|(k, _)| !k.starts_with("anthropic.")) {
            match (k.as_str(), body.get_mut(k.as_str())) {
                // Server tools go after the custom ones, as one list.
                ("tools", Some(Value::Array(tools))) => tools.extend(v.as_array().cloned().unwrap_or_default()),
                ("output_config", Some(Value::Object(oc))) => {
                    for (ok, ov) in v.as_object().into_iter().flatten() {
                        oc.entry(ok.clone()).or_insert_with(|| ov.clone());
                    }
                }
                (_, Some(_)) => {}
                (_, None) => drop(body.insert(k.clone(), v.clone())),
            }
        }
    }
    Ok(body)
}

fn encode_cache(c: &CacheMarker) -> Value {
    match &c.ttl {
        Some(ttl) => json!({"type": "ephemeral", "ttl": ttl}),
        None => json!({"type": "ephemeral"}),
    }
}

fn encode_source(source: &MediaSource) -> Value {
    match source {
        MediaSource::Url { url } => json!({"type": "url", "url": url}),
        MediaSource::Base64 { media_type, data } => {
            json!({"type": "base64", "media_type": media_type.as_deref().unwrap_or("application/octet-stream"), "data": data})
        }
        MediaSource::FileId { id } => json!({"type": "file", "file_id": id}),
    }
}

fn encode_part(p: &ContentPart) -> Result<Value, GatewayError> {
    Ok(match p {
        ContentPart::Text(t) if t.extra.contains_key(DOCUMENT) => {
            let mut block = t.extra.get(DOCUMENT).cloned().unwrap_or_else(|| json!({"type": "document"}));
            block["source"] = json!({"type": "text", "media_type": "text/plain", "data": t.text});
            block
        }
        ContentPart::Text(t) => {
            let mut block = json!({"type": "text", "text": t.text});
            if let Some(c) = &t.cache {
                block["cache_control"] = encode_cache(c);
            }
            if let Some(c) = t.extra.get("citations") {
                block["citations"] = c.clone();
            }
            block
        }
        ContentPart::Image(i) => {
            let mut block = json!({"type": "image", "source": encode_source(&i.source)});
            if let Some(c) = i.extra.get("cache_control") {
                block["cache_control"] = c.clone();
            }
            block
        }
        ContentPart::File(f) => {
            let mut block = json!({"type": "document", "source": encode_source(&f.source)});
            if let Some(title) = &f.filename {
                block["title"] = title.clone().into();
            }
            block
        }
        ContentPart::Audio(_) => {
            return Err(GatewayError::invalid("Anthropic models do not take audio input.").with_param("messages"));
        }
    })
}

fn encode_messages(messages: &[Message]) -> Result<Vec<Value>, GatewayError> {
    let mut turns = Turns::default();
    for m in messages {
        let (role, blocks) = match m.role {
            Role::Tool => {
                let mut result =
                    json!({"type": "tool_result", "tool_use_id": m.tool_call_id.clone().unwrap_or_default()});
                if !m.content.is_empty() {
                    result["content"] = Value::Array(m.content.iter().map(encode_part).collect::<Result<_, _>>()?);
                }
                if let Some(e) = m.extra.get(IS_ERROR) {
                    result["is_error"] = e.clone();
                }
                (Role::User, vec![result])
            }
            Role::User => (Role::User, m.content.iter().map(encode_part).collect::<Result<_, _>>()?),
            Role::Assistant => {
                let mut reasoning = Vec::new();
                for r in &m.reasoning {
                    match (&r.redacted, &r.signature) {
                        (Some(data), _) => reasoning.push(json!({"type": "redacted_thinking", "data": data})),
                        (None, Some(sig)) => {
                            reasoning.push(json!({"type": "thinking", "thinking": r.text, "signature": sig}))
                        }
                        // Reasoning without a signature (another provider's) cannot be replayed
                        // to Anthropic, which checks signatures; it is history, not input.
                        (None, None) => {}
                    }
                }
                let text = m.content.iter().map(encode_part).collect::<Result<Vec<_>, _>>()?;
                (Role::Assistant, assistant_turn(m, reasoning, text))
            }
        };
        let mut blocks = blocks;
        if m.role != Role::Assistant
            && let Some(Value::Array(others)) = m.extra.get(BLOCKS)
        {
            blocks.extend(others.iter().cloned());
        }
        turns.push(role, blocks);
    }
    Ok(turns.into_json())
}
