//! The Responses API (`POST /v1/responses`): request bodies and whole answers.
//!
//! Conversation state lives in typed items rather than chat messages: a turn's reasoning,
//! text and function calls are separate items, and a function result is its own item. Items
//! decode into IR messages (consecutive assistant-side items form one assistant message, with
//! their order kept in `block_order`), and encode back the same way.
//!
//! A reasoning item maps to IR reasoning blocks that share its `id` as their `signature`: one
//! block per summary part (its text), then one block holding `encrypted_content` as
//! `redacted`. The id is what OpenAI needs to accept the item again, and keeping it in the
//! signature (rather than in a message's `extra`) lets the conversation still cross to another
//! protocol, which a non-internal `extra` key would forbid. The stream decoder builds the same
//! blocks, so a streamed and a whole answer give the same IR.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_types::{
    ChatRequest, ChatResponse, Choice, ContentPart, Extra, FilePart, FinishReason, GatewayError, ImagePart, JsonMap,
    MediaSource, Message, Protocol, Reasoning, ReasoningConfig, ResponseFormat, Role, Sampling, SystemPrompt, TextPart,
    Tool, ToolCall, ToolChoice, Usage,
};

use super::{from_object, str_field};
use crate::anthropic::{in_order, keep_order};

/// Item skeletons of an answer (each output item without what the IR carries: ids, status,
/// annotations, logprobs), in `Message::extra` of a decoded answer, so that the same protocol
/// can write the items back as they came.
pub const OUTPUT_ITEMS: &str = "openai.output";

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    input: WireInput,
    #[serde(default)]
    instructions: Option<String>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default)]
    max_output_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_logprobs: Option<u32>,
    #[serde(default)]
    reasoning: Option<WireReasoning>,
    #[serde(default)]
    text: Option<WireText>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    metadata: Option<JsonMap>,
    #[serde(flatten)]
    extra: JsonMap,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireInput {
    Text(String),
    Items(Vec<Value>),
}

#[derive(Deserialize)]
struct WireReasoning {
    #[serde(default)]
    effort: Option<String>,
    /// `summary` and anything newer: display preferences the IR does not model.
    #[serde(flatten)]
    rest: JsonMap,
}

#[derive(Deserialize)]
struct WireText {
    #[serde(default)]
    format: Option<WireFormat>,
    /// `verbosity` and anything newer.
    #[serde(flatten)]
    rest: JsonMap,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        schema: Option<Value>,
        #[serde(default)]
        strict: Option<bool>,
    },
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireItem {
    Message(WireMessage),
    FunctionCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    FunctionCallOutput {
        call_id: String,
        output: WireContent,
    },
    Reasoning {
        id: String,
        #[serde(default)]
        summary: Vec<WireSummary>,
        #[serde(default)]
        encrypted_content: Option<String>,
    },
}

#[derive(Deserialize)]
struct WireMessage {
    role: WireRole,
    content: WireContent,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum WireRole {
    User,
    Assistant,
    System,
    Developer,
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
    InputText {
        text: String,
        #[serde(flatten)]
        extra: JsonMap,
    },
    OutputText {
        text: String,
        #[serde(flatten)]
        extra: JsonMap,
    },
    Refusal {
        refusal: String,
    },
    InputImage {
        #[serde(default)]
        image_url: Option<String>,
        #[serde(default)]
        file_id: Option<String>,
        #[serde(default)]
        detail: Option<String>,
    },
    InputFile {
        #[serde(default)]
        file_id: Option<String>,
        #[serde(default)]
        file_data: Option<String>,
        #[serde(default)]
        file_url: Option<String>,
        #[serde(default)]
        filename: Option<String>,
    },
}

#[derive(Deserialize)]
struct WireSummary {
    text: String,
}

/// Deserialises one value, naming the offending parameter under `at` (`input[2].call_id`).
fn from_value<T: serde::de::DeserializeOwned>(v: &Value, at: &str) -> Result<T, GatewayError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let param = if path == "." { at.to_string() } else { format!("{at}.{path}") };
        GatewayError::invalid(format!("Invalid value for '{param}': {}", e.into_inner())).with_param(param)
    })
}

/// Decodes a Responses request object into the IR.
pub fn decode_responses_request(body: &JsonMap) -> Result<ChatRequest, GatewayError> {
    let wire: WireRequest = from_object(body)?;
    let mut extra = wire.extra;
    // A null is the API's default: keeping it would make a harmless `"previous_response_id":
    // null` look like a field another protocol cannot take.
    extra.retain(|_, v| !v.is_null());
    let mut system: Vec<SystemPrompt> = wire
        .instructions
        .map(|text| SystemPrompt { developer: false, content: vec![ContentPart::text(text)] })
        .into_iter()
        .collect();
    let messages = match wire.input {
        WireInput::Text(text) => vec![Message::new(Role::User, vec![ContentPart::text(text)])],
        WireInput::Items(items) => decode_items(&items, &mut system)?,
    };
    let (tools, builtin) = decode_tools(wire.tools.unwrap_or_default())?;
    if !builtin.is_empty() {
        extra.insert("tools".into(), Value::Array(builtin));
    }
    let tool_choice = match wire.tool_choice {
        None | Some(Value::Null) => None,
        Some(v) => decode_tool_choice(v, &mut extra)?,
    };
    let reasoning = wire.reasoning.and_then(|r| {
        let rest: JsonMap = r.rest.into_iter().filter(|(_, v)| !v.is_null()).collect();
        if !rest.is_empty() {
            extra.insert("reasoning".into(), Value::Object(rest));
        }
        r.effort.map(|effort| ReasoningConfig { effort: Some(effort), budget_tokens: None })
    });
    let response_format = wire.text.and_then(|t| {
        let rest: JsonMap = t.rest.into_iter().filter(|(_, v)| !v.is_null()).collect();
        if !rest.is_empty() {
            extra.insert("text".into(), Value::Object(rest));
        }
        t.format.map(decode_format)
    });
    let stream = wire.stream.unwrap_or(false);
    Ok(ChatRequest {
        model: wire.model,
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: wire.parallel_tool_calls,
        response_format,
        sampling: Sampling {
            max_tokens: wire.max_output_tokens,
            temperature: wire.temperature,
            top_p: wire.top_p,
            top_logprobs: wire.top_logprobs,
            ..Sampling::default()
        },
        reasoning,
        stream,
        // A Responses stream always ends with its usage (in `response.completed`).
        stream_usage: stream,
        user: wire.user,
        metadata: wire.metadata,
        extra: Extra { protocol: Some(Protocol::OpenAi), fields: extra },
    })
}

fn decode_format(f: WireFormat) -> ResponseFormat {
    match f {
        WireFormat::Text => ResponseFormat::Text,
        WireFormat::JsonObject => ResponseFormat::JsonObject,
        WireFormat::JsonSchema { name, description, schema, strict } => {
            ResponseFormat::JsonSchema { name, description, schema, strict }
        }
    }
}

/// Function tools become IR tools; built-in tools (`web_search`, `file_search`, …) have no IR
/// form and are kept apart, for the same protocol only.
fn decode_tools(tools: Vec<Value>) -> Result<(Vec<Tool>, Vec<Value>), GatewayError> {
    #[derive(Deserialize)]
    struct WireTool {
        name: String,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        parameters: Option<Value>,
        #[serde(default)]
        strict: Option<bool>,
    }
    let mut functions = Vec::new();
    let mut builtin = Vec::new();
    for (i, t) in tools.into_iter().enumerate() {
        if t.get("type").and_then(Value::as_str) != Some("function") {
            builtin.push(t);
            continue;
        }
        let w: WireTool = from_value(&t, &format!("tools[{i}]"))?;
        functions.push(Tool {
            name: w.name,
            description: w.description,
            parameters: w.parameters,
            strict: w.strict,
            cache: None,
        });
    }
    Ok((functions, builtin))
}

/// Modes and a named function map to the IR; other choices (a built-in tool, `allowed_tools`)
/// are kept in `extra` for the same protocol.
fn decode_tool_choice(v: Value, extra: &mut JsonMap) -> Result<Option<ToolChoice>, GatewayError> {
    let choice = match &v {
        Value::String(mode) => match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(GatewayError::invalid(format!(
                    "Invalid value for 'tool_choice': '{other}'. Expected 'none', 'auto', 'required' or a tool."
                ))
                .with_param("tool_choice"));
            }
        },
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            match o.get("name").and_then(Value::as_str) {
                Some(name) => ToolChoice::Tool(name.to_string()),
                None => {
                    return Err(GatewayError::invalid("Missing required parameter: 'tool_choice.name'.")
                        .with_param("tool_choice.name"));
                }
            }
        }
        Value::Object(_) => {
            extra.insert("tool_choice".into(), v);
            return Ok(None);
        }
        _ => {
            return Err(GatewayError::invalid("Invalid type for 'tool_choice': expected a string or an object.")
                .with_param("tool_choice"));
        }
    };
    Ok(Some(choice))
}

/// What one input item becomes in the IR.
enum Decoded {
    System(SystemPrompt),
    User(Message),
    Tool(Message),
    /// A piece of an assistant turn: its kind as `block_order` names it, and the message to fold in.
    Assistant(&'static str, Message),
}

fn decode_items(items: &[Value], system: &mut Vec<SystemPrompt>) -> Result<Vec<Message>, GatewayError> {
    let mut messages: Vec<Message> = Vec::new();
    // Block kinds of the assistant message being built, for `block_order`.
    let mut kinds: Vec<&'static str> = Vec::new();
    let mut open = false;
    for (i, item) in items.iter().enumerate() {
        let decoded = decode_item(item, i)?;
        if !matches!(decoded, Decoded::Assistant(..)) {
            close_assistant(&mut messages, &mut kinds);
            open = false;
        }
        match decoded {
            Decoded::System(s) => system.push(s),
            Decoded::User(m) | Decoded::Tool(m) => messages.push(m),
            Decoded::Assistant(kind, piece) => {
                if !open {
                    messages.push(Message::new(Role::Assistant, Vec::new()));
                    open = true;
                }
                kinds.extend(std::iter::repeat_n(kind, block_count(kind, &piece)));
                if let Some(m) = messages.last_mut() {
                    m.content.extend(piece.content);
                    m.tool_calls.extend(piece.tool_calls);
                    m.reasoning.extend(piece.reasoning);
                    if piece.refusal.is_some() {
                        m.refusal = piece.refusal;
                    }
                }
            }
        }
    }
    close_assistant(&mut messages, &mut kinds);
    Ok(messages)
}

/// How many IR blocks of `kind` a piece adds: `block_order` counts blocks, not items.
fn block_count(kind: &str, piece: &Message) -> usize {
    match kind {
        "reasoning" => piece.reasoning.len(),
        "text" => piece.content.len(),
        _ => piece.tool_calls.len(),
    }
}

/// Ends the assistant message being built, recording its block order when unusual.
fn close_assistant(messages: &mut [Message], kinds: &mut Vec<&'static str>) {
    if kinds.is_empty() {
        return;
    }
    if let Some(m) = messages.last_mut() {
        keep_order(&mut m.extra, std::mem::take(kinds));
    }
    kinds.clear();
}

fn decode_item(item: &Value, i: usize) -> Result<Decoded, GatewayError> {
    let at = format!("input[{i}]");
    // A message may omit its `type` (the "easy" input message form).
    let wire: WireItem = if item.get("type").is_none() && item.is_object() {
        WireItem::Message(from_value(item, &at)?)
    } else {
        from_value(item, &at)?
    };
    Ok(match wire {
        WireItem::Message(m) => decode_message(m, &at)?,
        WireItem::FunctionCall { call_id, name, arguments } => {
            let mut m = Message::new(Role::Assistant, Vec::new());
            m.tool_calls.push(ToolCall { id: call_id, name, arguments, signature: None });
            Decoded::Assistant("tool_call", m)
        }
        WireItem::FunctionCallOutput { call_id, output } => {
            let mut m = Message::new(Role::Tool, decode_content(output, &at)?);
            m.tool_call_id = Some(call_id);
            Decoded::Tool(m)
        }
        WireItem::Reasoning { id, summary, encrypted_content } => {
            let mut m = Message::new(Role::Assistant, Vec::new());
            m.reasoning = reasoning_blocks(&id, summary.into_iter().map(|s| s.text), encrypted_content);
            Decoded::Assistant("reasoning", m)
        }
    })
}

/// The IR blocks of one reasoning item (see the module documentation).
pub(crate) fn reasoning_blocks(
    id: &str,
    summaries: impl Iterator<Item = String>,
    encrypted: Option<String>,
) -> Vec<Reasoning> {
    let signature = Some(id.to_string());
    let mut blocks: Vec<Reasoning> =
        summaries.map(|text| Reasoning { text, signature: signature.clone(), redacted: None }).collect();
    if encrypted.is_some() || blocks.is_empty() {
        blocks.push(Reasoning { text: String::new(), signature, redacted: encrypted });
    }
    blocks
}

fn decode_message(m: WireMessage, at: &str) -> Result<Decoded, GatewayError> {
    let content = decode_content(m.content, at)?;
    Ok(match m.role {
        WireRole::System | WireRole::Developer => {
            Decoded::System(SystemPrompt { developer: m.role == WireRole::Developer, content })
        }
        WireRole::User => Decoded::User(Message::new(Role::User, content)),
        WireRole::Assistant => {
            let mut msg = Message::new(Role::Assistant, Vec::new());
            for part in content {
                match part {
                    // A refusal part in history: the IR keeps it apart from the text.
                    ContentPart::Text(t) if t.extra.get("type").and_then(Value::as_str) == Some("refusal") => {
                        msg.refusal = Some(t.text)
                    }
                    other => msg.content.push(other),
                }
            }
            Decoded::Assistant("text", msg)
        }
    })
}

fn decode_content(content: WireContent, at: &str) -> Result<Vec<ContentPart>, GatewayError> {
    let parts = match content {
        WireContent::Text(text) => return Ok(vec![ContentPart::text(text)]),
        WireContent::Parts(parts) => parts,
    };
    parts.into_iter().enumerate().map(|(j, p)| decode_part(p, &format!("{at}.content[{j}]"))).collect()
}

fn decode_part(part: WirePart, at: &str) -> Result<ContentPart, GatewayError> {
    Ok(match part {
        WirePart::InputText { text, extra } | WirePart::OutputText { text, extra } => {
            ContentPart::Text(TextPart { text, cache: None, extra })
        }
        // Marked so that an assistant message can take it out as its refusal.
        WirePart::Refusal { refusal } => {
            let mut extra = JsonMap::new();
            extra.insert("type".into(), "refusal".into());
            ContentPart::Text(TextPart { text: refusal, cache: None, extra })
        }
        WirePart::InputImage { image_url, file_id, detail } => {
            let source = media_source(image_url.as_deref(), file_id, at)?;
            ContentPart::Image(ImagePart { source, detail, extra: JsonMap::new() })
        }
        WirePart::InputFile { file_id, file_data, file_url, filename } => {
            let source = match (file_id, file_data, file_url) {
                (Some(id), _, _) => MediaSource::FileId { id },
                (None, Some(data), _) => file_data_source(&data, filename.as_deref()),
                (None, None, Some(url)) => MediaSource::Url { url },
                (None, None, None) => {
                    return Err(GatewayError::invalid(
                        "An input_file part needs 'file_id', 'file_data' or 'file_url'.",
                    )
                    .with_param(at.to_string()));
                }
            };
            ContentPart::File(FilePart { source, filename })
        }
    })
}

fn media_source(url: Option<&str>, file_id: Option<String>, at: &str) -> Result<MediaSource, GatewayError> {
    match (file_id, url) {
        (Some(id), _) => Ok(MediaSource::FileId { id }),
        (None, Some(url)) => Ok(MediaSource::from_url(url)),
        (None, None) => Err(GatewayError::invalid("An input_image part needs 'image_url' or 'file_id'.")
            .with_param(format!("{at}.image_url"))),
    }
}

/// `file_data` is a data URL, or bare base64 (the media type then follows from nothing known).
fn file_data_source(data: &str, _filename: Option<&str>) -> MediaSource {
    match MediaSource::from_url(data) {
        MediaSource::Url { url } => MediaSource::Base64 { media_type: None, data: url },
        inline => inline,
    }
}

/// Encodes an IR request as a Responses body for `model`.
///
/// Fields kept in `extra` by an OpenAI surface are restored first, so a Responses-to-Responses
/// hop loses nothing the IR drops. Sampling settings the Responses API has no parameter for
/// are refused rather than dropped.
pub fn encode_responses_request(req: &ChatRequest, model: &str) -> Result<JsonMap, GatewayError> {
    refuse_unsupported(req)?;
    let mut body = Map::new();
    if req.extra.protocol == Some(Protocol::OpenAi) {
        body.extend(req.extra.fields.clone());
    }
    body.insert("model".into(), model.into());
    let (instructions, input) = encode_input(req)?;
    if let Some(text) = instructions {
        body.insert("instructions".into(), text.into());
    }
    body.insert("input".into(), Value::Array(input));
    encode_tools(req, &mut body);
    insert_opt(&mut body, "parallel_tool_calls", req.parallel_tool_calls);
    insert_opt(&mut body, "max_output_tokens", req.sampling.max_tokens);
    insert_opt(&mut body, "temperature", req.sampling.temperature);
    insert_opt(&mut body, "top_p", req.sampling.top_p);
    insert_opt(&mut body, "top_logprobs", req.sampling.top_logprobs);
    if let Some(r) = &req.reasoning {
        merge_object(&mut body, "reasoning", "effort", effort_of(r).into());
    }
    if let Some(f) = &req.response_format {
        merge_object(&mut body, "text", "format", encode_format(f));
    }
    if req.stream {
        body.insert("stream".into(), true.into());
    }
    insert_opt(&mut body, "user", req.user.clone());
    insert_opt(&mut body, "metadata", req.metadata.clone());
    Ok(body)
}

/// IR settings with no Responses parameter: sending the request without them would change the
/// answer the client asked for.
fn refuse_unsupported(req: &ChatRequest) -> Result<(), GatewayError> {
    let s = &req.sampling;
    let lost = [
        ("stop", !s.stop.is_empty()),
        ("seed", s.seed.is_some()),
        ("top_k", s.top_k.is_some()),
        ("n", s.n.is_some_and(|n| n > 1)),
        ("frequency_penalty", s.frequency_penalty.is_some_and(|p| p != 0.0)),
        ("presence_penalty", s.presence_penalty.is_some_and(|p| p != 0.0)),
        ("logprobs", s.logprobs == Some(true)),
    ];
    if let Some((name, _)) = lost.iter().find(|(_, set)| *set) {
        return Err(GatewayError::invalid(format!(
            "The parameter '{name}' has no equivalent in the OpenAI Responses API of the model this request was \
             routed to; remove it."
        ))
        .with_param(*name));
    }
    Ok(())
}

fn effort_of(r: &ReasoningConfig) -> String {
    // A thinking budget becomes the nearest effort, as for Chat Completions.
    match (&r.effort, r.budget_tokens) {
        (Some(effort), _) => effort.clone(),
        (None, Some(budget)) if budget <= 2048 => "low".into(),
        (None, Some(budget)) if budget <= 8192 => "medium".into(),
        (None, Some(_)) => "high".into(),
        (None, None) => "medium".into(),
    }
}

/// Sets `key` inside the object `field`, keeping what `extra` restored there.
fn merge_object(body: &mut JsonMap, field: &str, key: &str, value: Value) {
    let mut obj = match body.remove(field) {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    };
    obj.insert(key.into(), value);
    body.insert(field.into(), Value::Object(obj));
}

fn encode_format(f: &ResponseFormat) -> Value {
    match f {
        ResponseFormat::Text => json!({ "type": "text" }),
        ResponseFormat::JsonObject => json!({ "type": "json_object" }),
        ResponseFormat::JsonSchema { name, description, schema, strict } => {
            let mut s = Map::new();
            s.insert("type".into(), "json_schema".into());
            s.insert("name".into(), name.clone().into());
            insert_opt(&mut s, "description", description.clone());
            insert_opt(&mut s, "schema", schema.clone());
            insert_opt(&mut s, "strict", *strict);
            Value::Object(s)
        }
    }
}

/// Function tools, then the built-in tools kept in `extra` (already restored into `body`).
fn encode_tools(req: &ChatRequest, body: &mut JsonMap) {
    let builtin = match body.remove("tools") {
        Some(Value::Array(tools)) => tools,
        _ => Vec::new(),
    };
    let mut tools: Vec<Value> = req.tools.iter().map(encode_tool).collect();
    tools.extend(builtin);
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
    }
    let choice = match &req.tool_choice {
        None => return,
        Some(ToolChoice::Auto) => json!("auto"),
        Some(ToolChoice::None) => json!("none"),
        Some(ToolChoice::Required) => json!("required"),
        Some(ToolChoice::Tool(name)) => json!({ "type": "function", "name": name }),
    };
    body.insert("tool_choice".into(), choice);
}

fn encode_tool(t: &Tool) -> Value {
    let mut f = Map::new();
    f.insert("type".into(), "function".into());
    f.insert("name".into(), t.name.clone().into());
    insert_opt(&mut f, "description", t.description.clone());
    insert_opt(&mut f, "parameters", t.parameters.clone());
    insert_opt(&mut f, "strict", t.strict);
    Value::Object(f)
}

/// The first system prompt, if not a developer one, becomes `instructions`; the others become
/// system or developer messages at the head of `input` (where they stood among the turns is
/// not kept by the IR).
fn encode_input(req: &ChatRequest) -> Result<(Option<String>, Vec<Value>), GatewayError> {
    let mut input = Vec::new();
    let mut system = req.system.iter().peekable();
    let instructions = match system.peek() {
        Some(s) if !s.developer && plain_text(&s.content).is_some() => {
            system.next().and_then(|s| plain_text(&s.content))
        }
        _ => None,
    };
    for s in system {
        let role = if s.developer { "developer" } else { "system" };
        input.push(json!({ "role": role, "content": encode_content(&s.content, "input_text")? }));
    }
    for (i, m) in req.messages.iter().enumerate() {
        encode_message(m, i, &mut input)?;
    }
    Ok((instructions, input))
}

/// The text of content that is exactly one plain text part.
fn plain_text(content: &[ContentPart]) -> Option<String> {
    match content {
        [ContentPart::Text(t)] if t.extra.is_empty() => Some(t.text.clone()),
        _ => None,
    }
}

fn encode_message(m: &Message, i: usize, input: &mut Vec<Value>) -> Result<(), GatewayError> {
    match m.role {
        Role::User => input.push(json!({ "role": "user", "content": encode_content(&m.content, "input_text")? })),
        Role::Tool => {
            let output = match plain_text(&m.content) {
                Some(text) => Value::String(text),
                None => encode_content(&m.content, "input_text")?,
            };
            let call_id = m.tool_call_id.clone().ok_or_else(|| {
                GatewayError::invalid(format!("messages[{i}] is a tool result without the id of its call."))
                    .with_param(format!("messages[{i}].tool_call_id"))
            })?;
            input.push(json!({ "type": "function_call_output", "call_id": call_id, "output": output }));
        }
        Role::Assistant => input.extend(encode_assistant(m, true)?),
    }
    Ok(())
}

/// An assistant turn as items, in its recorded block order. In a request (`history`), only
/// reasoning that OpenAI issued (an `rs_` id) is sent back: another provider's reasoning has no
/// form OpenAI would accept.
fn encode_assistant(m: &Message, history: bool) -> Result<Vec<Value>, GatewayError> {
    let reasoning: Vec<Value> = m
        .reasoning
        .iter()
        .filter(|r| !history || r.signature.as_deref().is_some_and(|s| s.starts_with("rs_")))
        .enumerate()
        .map(|(n, r)| reasoning_fragment(r, n))
        .collect();
    let mut text = Vec::new();
    for part in &m.content {
        text.push(json!({ "type": "message", "role": "assistant", "content": [output_part(part)?] }));
    }
    if let Some(refusal) = &m.refusal {
        text.push(
            json!({ "type": "message", "role": "assistant", "content": [{ "type": "refusal", "refusal": refusal }] }),
        );
    }
    let calls = m
        .tool_calls
        .iter()
        .map(|c| json!({ "type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments }))
        .collect();
    let ordered = in_order(&m.extra, vec![("reasoning", reasoning), ("text", text), ("tool_call", calls)]);
    Ok(merge_fragments(ordered))
}

/// One reasoning block as a (partial) reasoning item; `merge_fragments` joins the blocks of
/// one item back together.
fn reasoning_fragment(r: &Reasoning, n: usize) -> Value {
    let id = r.signature.clone().filter(|s| s.starts_with("rs_")).unwrap_or_else(|| format!("rs_{n}"));
    let mut item = Map::new();
    item.insert("type".into(), "reasoning".into());
    item.insert("id".into(), id.into());
    let summary: Vec<Value> = (r.redacted.is_none() && !r.text.is_empty())
        .then(|| json!({ "type": "summary_text", "text": r.text }))
        .into_iter()
        .collect();
    item.insert("summary".into(), summary.into());
    insert_opt(&mut item, "encrypted_content", r.redacted.clone());
    Value::Object(item)
}

/// Joins neighbouring fragments of one item: reasoning blocks with the same id, and text parts
/// of one assistant message.
fn merge_fragments(items: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for item in items {
        if let Some(prev) = out.last_mut()
            && same_item(prev, &item)
        {
            merge_into(prev, item);
        } else {
            out.push(item);
        }
    }
    out
}

fn same_item(a: &Value, b: &Value) -> bool {
    match (a["type"].as_str(), b["type"].as_str()) {
        (Some("reasoning"), Some("reasoning")) => a["id"] == b["id"],
        (Some("message"), Some("message")) => true,
        _ => false,
    }
}

fn merge_into(prev: &mut Value, item: Value) {
    let key = if prev["type"] == "reasoning" { "summary" } else { "content" };
    let more = item[key].as_array().cloned().unwrap_or_default();
    if let Some(list) = prev.get_mut(key).and_then(Value::as_array_mut) {
        list.extend(more);
    }
    if let (Some(obj), Some(enc)) = (prev.as_object_mut(), item.get("encrypted_content")) {
        obj.insert("encrypted_content".into(), enc.clone());
    }
}

fn output_part(part: &ContentPart) -> Result<Value, GatewayError> {
    match part {
        ContentPart::Text(t) => {
            let mut obj = t.extra.clone();
            obj.insert("type".into(), "output_text".into());
            obj.insert("text".into(), t.text.clone().into());
            Ok(Value::Object(obj))
        }
        _ => Err(GatewayError::invalid("An assistant message in the Responses API can only hold text.")),
    }
}

/// A single plain text part is sent as a string, as the API's own clients do.
fn encode_content(parts: &[ContentPart], text_type: &str) -> Result<Value, GatewayError> {
    if let Some(text) = plain_text(parts) {
        return Ok(Value::String(text));
    }
    parts.iter().map(|p| encode_part(p, text_type)).collect::<Result<Vec<_>, _>>().map(Value::Array)
}

fn encode_part(part: &ContentPart, text_type: &str) -> Result<Value, GatewayError> {
    Ok(match part {
        ContentPart::Text(t) => {
            let mut obj = t.extra.clone();
            obj.entry("type").or_insert_with(|| text_type.into());
            obj.insert("text".into(), t.text.clone().into());
            Value::Object(obj)
        }
        ContentPart::Image(img) => {
            let mut obj = Map::new();
            obj.insert("type".into(), "input_image".into());
            match &img.source {
                MediaSource::FileId { id } => obj.insert("file_id".into(), id.clone().into()),
                other => obj.insert("image_url".into(), other.to_url().into()),
            };
            insert_opt(&mut obj, "detail", img.detail.clone());
            Value::Object(obj)
        }
        ContentPart::File(f) => {
            let mut obj = Map::new();
            obj.insert("type".into(), "input_file".into());
            match &f.source {
                MediaSource::FileId { id } => obj.insert("file_id".into(), id.clone().into()),
                MediaSource::Url { url } => obj.insert("file_url".into(), url.clone().into()),
                inline => obj.insert("file_data".into(), inline.to_url().into()),
            };
            insert_opt(&mut obj, "filename", f.filename.clone());
            Value::Object(obj)
        }
        ContentPart::Audio(_) => {
            return Err(GatewayError::invalid(
                "Audio input has no equivalent in the OpenAI Responses API of the model this request was routed to.",
            )
            .with_param("input"));
        }
    })
}

fn insert_opt<T: Into<Value>>(map: &mut JsonMap, key: &str, value: Option<T>) {
    if let Some(v) = value {
        map.insert(key.into(), v.into());
    }
}

/// Answer fields the IR models; everything else is kept in `extra`.
const KNOWN: &[&str] = &["id", "created_at", "model", "output", "usage", "status", "incomplete_details"];

/// Decodes an upstream Responses answer leniently: missing fields take defaults.
pub fn decode_responses_response(v: &Value) -> ChatResponse {
    let output = v.get("output").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let message = decode_output(output);
    let finish_reason = Some(finish_from(v, !message.tool_calls.is_empty()));
    let extra = v
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
        .map(|(k, val)| (k.clone(), val.clone()))
        .collect();
    ChatResponse {
        id: str_field(v, "id").unwrap_or_default(),
        model: str_field(v, "model").unwrap_or_default(),
        created: v.get("created_at").and_then(Value::as_u64).unwrap_or(0),
        choices: vec![Choice { index: 0, message, finish_reason }],
        usage: v.get("usage").and_then(decode_usage),
        extra: Extra { protocol: Some(Protocol::OpenAi), fields: extra },
    }
}

/// The output items as one assistant message, with each item's skeleton kept in `extra`.
fn decode_output(output: &[Value]) -> Message {
    let mut m = Message::new(Role::Assistant, Vec::new());
    let mut kinds = Vec::new();
    let mut skeletons = Vec::new();
    for item in output {
        let mut skeleton = item.clone();
        match item.get("type").and_then(Value::as_str) {
            Some("message") => decode_output_message(item, &mut m, &mut kinds, &mut skeleton),
            Some("function_call") => {
                m.tool_calls.push(ToolCall {
                    id: str_field(item, "call_id").unwrap_or_default(),
                    name: str_field(item, "name").unwrap_or_default(),
                    arguments: str_field(item, "arguments").unwrap_or_default(),
                    signature: None,
                });
                kinds.push("tool_call");
                strip(&mut skeleton, &["call_id", "name", "arguments"]);
            }
            Some("reasoning") => {
                let blocks = decode_output_reasoning(item);
                kinds.extend(std::iter::repeat_n("reasoning", blocks.len()));
                m.reasoning.extend(blocks);
                strip(&mut skeleton, &["id", "summary", "encrypted_content"]);
            }
            // Built-in tool calls (web search, …) have no IR form: the skeleton is the whole item.
            _ => kinds.push("other"),
        }
        skeletons.push(skeleton);
    }
    keep_order(&mut m.extra, kinds);
    if !skeletons.is_empty() {
        m.extra.insert(OUTPUT_ITEMS.into(), Value::Array(skeletons));
    }
    m
}

fn decode_output_message(item: &Value, m: &mut Message, kinds: &mut Vec<&'static str>, skeleton: &mut Value) {
    for part in item.get("content").and_then(Value::as_array).into_iter().flatten() {
        match part.get("type").and_then(Value::as_str) {
            Some("refusal") => {
                m.refusal.get_or_insert_with(String::new).push_str(part["refusal"].as_str().unwrap_or_default())
            }
            _ => {
                m.content.push(ContentPart::text(part.get("text").and_then(Value::as_str).unwrap_or_default()));
                kinds.push("text");
            }
        }
    }
    if let Some(parts) = skeleton.get_mut("content").and_then(Value::as_array_mut) {
        parts.iter_mut().for_each(|p| strip(p, &["text", "refusal"]));
    }
}

fn decode_output_reasoning(item: &Value) -> Vec<Reasoning> {
    let summaries = item
        .get("summary")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| s.get("text").and_then(Value::as_str).unwrap_or_default().to_string());
    let encrypted = str_field(item, "encrypted_content");
    reasoning_blocks(&str_field(item, "id").unwrap_or_default(), summaries, encrypted)
}

fn strip(v: &mut Value, keys: &[&str]) {
    if let Some(obj) = v.as_object_mut() {
        keys.iter().for_each(|k| drop(obj.remove(*k)));
    }
}

/// The finish reason of an answer: its status, and whether it called a function.
pub(crate) fn finish_from(v: &Value, called: bool) -> FinishReason {
    match v.get("status").and_then(Value::as_str) {
        Some("incomplete") => match v.pointer("/incomplete_details/reason").and_then(Value::as_str) {
            Some("max_output_tokens") => FinishReason::Length,
            Some("content_filter") => FinishReason::ContentFilter,
            Some(other) => FinishReason::Other(other.to_string()),
            None => FinishReason::Other("incomplete".into()),
        },
        Some("failed") | Some("cancelled") => FinishReason::Other(v["status"].as_str().unwrap_or_default().into()),
        _ if called => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// The `status` and `incomplete_details` of a finish reason.
pub(crate) fn status_of(reason: Option<&FinishReason>) -> (&'static str, Value) {
    let incomplete = |why: &str| ("incomplete", json!({ "reason": why }));
    match reason {
        None | Some(FinishReason::Stop) | Some(FinishReason::ToolCalls) => ("completed", Value::Null),
        Some(FinishReason::Length) => incomplete("max_output_tokens"),
        Some(FinishReason::ContentFilter) => incomplete("content_filter"),
        Some(FinishReason::Other(s)) if s == "failed" => ("failed", Value::Null),
        Some(FinishReason::Other(s)) if s == "cancelled" => ("cancelled", Value::Null),
        Some(FinishReason::Other(s)) if s == "incomplete" => ("incomplete", Value::Null),
        Some(FinishReason::Other(s)) => incomplete(s),
    }
}

/// Responses usage: `input_tokens` includes cached tokens and `output_tokens` reasoning tokens,
/// as the IR counts them.
pub(crate) fn decode_usage(v: &Value) -> Option<Usage> {
    let obj = v.as_object()?;
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    Some(Usage {
        input_tokens: n(obj.get("input_tokens")),
        output_tokens: n(obj.get("output_tokens")),
        cache_read_tokens: n(v.pointer("/input_tokens_details/cached_tokens")),
        cache_write_tokens: 0,
        reasoning_tokens: n(v.pointer("/output_tokens_details/reasoning_tokens")),
    })
}

pub(crate) fn encode_usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "input_tokens_details": { "cached_tokens": u.cache_read_tokens },
        "output_tokens": u.output_tokens,
        "output_tokens_details": { "reasoning_tokens": u.reasoning_tokens },
        "total_tokens": u.total_tokens(),
    })
}

/// Encodes an IR answer as a Responses body. An answer that came from the Responses API gets
/// its own fields and item skeletons back; any other is given the fields a client needs.
pub fn encode_responses_response(r: &ChatResponse) -> Value {
    let mut body = Map::new();
    let same = r.extra.protocol == Some(Protocol::OpenAi) && r.extra.fields.get("object") == Some(&json!("response"));
    if same {
        body.extend(r.extra.fields.clone());
    }
    body.insert("id".into(), r.id.clone().into());
    body.insert("object".into(), "response".into());
    body.insert("created_at".into(), r.created.into());
    body.insert("model".into(), r.model.clone().into());
    let choice = r.choices.first();
    let (status, incomplete) = status_of(choice.and_then(|c| c.finish_reason.as_ref()));
    body.insert("status".into(), status.into());
    body.insert("incomplete_details".into(), incomplete);
    let output = choice.map(|c| encode_output(&c.message, &r.id)).unwrap_or_default();
    body.insert("output".into(), Value::Array(output));
    body.insert("usage".into(), r.usage.as_ref().map_or(Value::Null, encode_usage));
    Value::Object(body)
}

/// The output items of an answer: laid over the decoded skeletons when there are any, or built
/// in the message's block order.
pub(crate) fn encode_output(m: &Message, response_id: &str) -> Vec<Value> {
    match m.extra.get(OUTPUT_ITEMS).and_then(Value::as_array) {
        Some(skeletons) => fill_skeletons(m, skeletons),
        None => {
            let items = encode_assistant(m, false).unwrap_or_default();
            items.into_iter().enumerate().map(|(n, item)| with_ids(item, n, response_id)).collect()
        }
    }
}

/// Gives an item built from the IR the ids and status a Responses client expects.
fn with_ids(mut item: Value, n: usize, response_id: &str) -> Value {
    let suffix = response_id.strip_prefix("resp_").unwrap_or(response_id);
    if let Some(obj) = item.as_object_mut() {
        let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
        match kind.as_str() {
            "message" => {
                obj.insert("id".into(), format!("msg_{suffix}_{n}").into());
                obj.insert("status".into(), "completed".into());
                for p in obj.get_mut("content").and_then(Value::as_array_mut).into_iter().flatten() {
                    if p["type"] == "output_text"
                        && let Some(p) = p.as_object_mut()
                    {
                        p.entry("annotations").or_insert_with(|| json!([]));
                    }
                }
            }
            "function_call" => {
                let call = obj.get("call_id").and_then(Value::as_str).unwrap_or_default().to_string();
                obj.insert("id".into(), format!("fc_{call}").into());
                obj.insert("status".into(), "completed".into());
            }
            _ => {}
        }
    }
    item
}

/// Lays the IR content over the recorded item skeletons, in their order.
fn fill_skeletons(m: &Message, skeletons: &[Value]) -> Vec<Value> {
    let mut texts = m.content.iter().filter_map(|p| if let ContentPart::Text(t) = p { Some(&t.text) } else { None });
    let mut calls = m.tool_calls.iter();
    let mut reasoning = reasoning_items(&m.reasoning).into_iter();
    let mut out = Vec::with_capacity(skeletons.len());
    for skeleton in skeletons {
        let mut item = skeleton.clone();
        let kind = item.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
        match (kind.as_str(), item.as_object_mut()) {
            ("message", Some(obj)) => {
                for p in obj.get_mut("content").and_then(Value::as_array_mut).into_iter().flatten() {
                    let Some(p) = p.as_object_mut() else { continue };
                    if p.get("type").and_then(Value::as_str) == Some("refusal") {
                        p.insert("refusal".into(), m.refusal.clone().unwrap_or_default().into());
                    } else {
                        p.insert("text".into(), texts.next().cloned().unwrap_or_default().into());
                    }
                }
            }
            ("function_call", Some(obj)) => {
                if let Some(c) = calls.next() {
                    obj.insert("call_id".into(), c.id.clone().into());
                    obj.insert("name".into(), c.name.clone().into());
                    obj.insert("arguments".into(), c.arguments.clone().into());
                }
            }
            ("reasoning", Some(obj)) => {
                if let Some(Value::Object(r)) = reasoning.next() {
                    obj.extend(r);
                }
            }
            _ => {}
        }
        out.push(item);
    }
    out
}

/// The reasoning blocks as whole reasoning items, blocks of one item joined.
fn reasoning_items(blocks: &[Reasoning]) -> Vec<Value> {
    merge_fragments(blocks.iter().enumerate().map(|(n, r)| reasoning_fragment(r, n)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::parse_object;

    fn decode(body: &str) -> Result<ChatRequest, GatewayError> {
        decode_responses_request(&parse_object(body.as_bytes())?)
    }

    #[test]
    fn decodes_items_and_round_trips() {
        let body = r#"{
            "model": "gpt-5", "instructions": "be brief",
            "input": [
                {"role": "developer", "content": "dev"},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "look"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
                    {"type": "input_file", "file_id": "file-1"}
                ]},
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "a"},
                    {"type": "summary_text", "text": "b"}], "encrypted_content": "ENC"},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "reasoning", "id": "rs_2", "summary": []},
                {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{\"x\":1}"},
                {"type": "function_call_output", "call_id": "c1", "output": "1"},
                {"type": "function_call_output", "call_id": "c2", "output": "2"},
                {"role": "assistant", "content": [{"type": "output_text", "text": "done", "annotations": []}]}
            ],
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": true},
                      {"type": "web_search"}],
            "tool_choice": {"type": "function", "name": "f"},
            "reasoning": {"effort": "low", "summary": "auto"},
            "text": {"format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}, "strict": true},
                     "verbosity": "low"},
            "max_output_tokens": 50, "stream": true, "store": false,
            "include": ["reasoning.encrypted_content"], "previous_response_id": null
        }"#;
        let req = decode(body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(req.system.len(), 2);
        assert!(req.system[1].developer);
        assert_eq!(req.messages.len(), 5);
        let turn = &req.messages[1];
        assert_eq!(turn.tool_calls.len(), 2);
        assert_eq!(turn.reasoning.len(), 4, "two summaries, the encrypted block, and rs_2");
        assert_eq!(turn.reasoning[2].redacted.as_deref(), Some("ENC"));
        assert_eq!(
            turn.extra.get("block_order"),
            Some(&json!(["reasoning", "reasoning", "reasoning", "tool_call", "reasoning", "tool_call"]))
        );
        assert_eq!(req.tool_choice, Some(ToolChoice::Tool("f".into())));
        assert_eq!(req.extra.fields.get("tools"), Some(&json!([{"type": "web_search"}])));
        assert!(!req.extra.fields.contains_key("previous_response_id"));
        assert!(req.stream && req.stream_usage);

        let encoded = encode_responses_request(&req, "gpt-5").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(encoded["instructions"], "be brief");
        assert_eq!(encoded["reasoning"], json!({"summary": "auto", "effort": "low"}));
        assert_eq!(encoded["text"]["verbosity"], "low");
        assert_eq!(encoded["input"][2]["summary"].as_array().map(Vec::len), Some(2));
        assert_eq!(encoded["input"][2]["encrypted_content"], "ENC");
        let again = decode_responses_request(&encoded).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, req);
    }

    #[test]
    fn wrong_input_is_refused_with_its_path() {
        let err =
            decode(r#"{"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}"#).err();
        assert_eq!(err.and_then(|e| e.param).as_deref(), Some("input[0]"));
        let err = decode(r#"{"model": "m", "input": [{"role": "wizard", "content": "x"}]}"#).err();
        assert_eq!(err.and_then(|e| e.param).as_deref(), Some("input[0].role"));
        let err = decode(r#"{"model": "m", "input": [{"type": "teleport"}]}"#).err();
        assert!(err.is_some_and(|e| e.param.as_deref() == Some("input[0].type")));
        let err = decode(r#"{"model": "m", "input": "hi", "tool_choice": "sometimes"}"#).err();
        assert_eq!(err.and_then(|e| e.param).as_deref(), Some("tool_choice"));
        let err = decode(r#"{"model": "m", "input": 5}"#).err();
        assert!(err.is_some());
        let err = decode(r#"{"input": "hi"}"#).err();
        assert!(err.is_some_and(|e| e.message.contains("model")));
    }

    #[test]
    fn previous_response_id_and_builtin_tools_stay_in_their_protocol() {
        let req = decode(r#"{"model": "m", "input": "hi", "previous_response_id": "resp_1"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        let e = crate::check_translatable(&req, Protocol::Anthropic).err();
        assert_eq!(e.and_then(|e| e.param).as_deref(), Some("previous_response_id"));
        let req = decode(r#"{"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(crate::check_translatable(&req, Protocol::Gemini).is_err());
        assert!(crate::check_translatable(&req, Protocol::OpenAi).is_ok());
    }

    #[test]
    fn settings_without_a_responses_parameter_are_refused() {
        let mut req = decode(r#"{"model": "m", "input": "hi"}"#).unwrap_or_else(|e| panic!("{e}"));
        req.sampling.stop = vec!["END".into()];
        let e = encode_responses_request(&req, "m").err();
        assert_eq!(e.and_then(|e| e.param).as_deref(), Some("stop"));
        req.sampling.stop.clear();
        req.messages[0]
            .content
            .push(ContentPart::Audio(switchyard_types::AudioPart { data: "UklG".into(), format: "wav".into() }));
        assert!(encode_responses_request(&req, "m").is_err());
    }

    #[test]
    fn foreign_reasoning_is_not_sent_back_but_openai_reasoning_is() {
        let mut m = Message::new(Role::Assistant, vec![ContentPart::text("hi")]);
        m.reasoning.push(Reasoning { text: "t".into(), signature: Some("anthropic-sig".into()), redacted: None });
        let items = encode_assistant(&m, true).unwrap_or_default();
        assert_eq!(items.len(), 1);
        m.reasoning[0].signature = Some("rs_9".into());
        let items = encode_assistant(&m, true).unwrap_or_default();
        assert_eq!(items[0]["id"], "rs_9");
    }

    #[test]
    fn statuses_map_to_finish_reasons_and_back() {
        for (status, reason, want) in [
            ("completed", None, FinishReason::Stop),
            ("incomplete", Some("max_output_tokens"), FinishReason::Length),
            ("incomplete", Some("content_filter"), FinishReason::ContentFilter),
            ("failed", None, FinishReason::Other("failed".into())),
        ] {
            let v = json!({"status": status, "incomplete_details": reason.map(|r| json!({"reason": r}))});
            let got = finish_from(&v, false);
            assert_eq!(got, want);
            let (s, details) = status_of(Some(&got));
            assert_eq!((s, details.pointer("/reason").and_then(Value::as_str)), (status, reason));
        }
        assert_eq!(finish_from(&json!({"status": "completed"}), true), FinishReason::ToolCalls);
    }

    #[test]
    fn an_answer_from_another_protocol_gets_items_with_ids() {
        let mut m = Message::new(Role::Assistant, vec![ContentPart::text("hi")]);
        m.tool_calls.push(ToolCall { id: "toolu_1".into(), name: "f".into(), arguments: "{}".into(), signature: None });
        let r = ChatResponse {
            id: "msg_1".into(),
            choices: vec![Choice { index: 0, message: m, finish_reason: Some(FinishReason::ToolCalls) }],
            ..Default::default()
        };
        let v = encode_responses_response(&r);
        assert_eq!(v["output"][0]["type"], "message");
        assert_eq!(v["output"][1]["id"], "fc_toolu_1");
        let back = decode_responses_response(&v);
        assert_eq!(back.choices[0].message.tool_calls, r.choices[0].message.tool_calls);
        assert_eq!(back.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    }
}
