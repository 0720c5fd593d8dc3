//! `generateContent` / `streamGenerateContent` request bodies.
//!
//! What the IR carries that Gemini cannot take is a 400 naming it, never a silent drop:
//! a file uploaded to another provider (`file_id`), inline bytes whose media type is unknown,
//! tool-call arguments that are not a JSON object, an image by URL inside a tool result, a seed
//! beyond 32 bits, an effort Gemini has no thinking level for, and a tool result whose function
//! cannot be named. Dropped because they change nothing Gemini could honour, and listed in
//! `docs/translation-gemini.md`: `user`, `metadata`, `parallel_tool_calls` (Gemini cannot forbid
//! parallel calls), `strict` on tools and schemas (Gemini always constrains), cache markers
//! (Gemini caches implicitly or through `cachedContent`), an image's `detail`, a file's name, a
//! participant's `name`, the name and description of a response schema, and Anthropic's redacted
//! reasoning (encrypted for Anthropic only).

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_types::{
    AudioPart, ChatRequest, ContentPart, Extra, FilePart, GatewayError, ImagePart, JsonMap, MediaSource, Message,
    Protocol, ReasoningConfig, ResponseFormat, Role, Sampling, SystemPrompt, TextPart, Tool, ToolCall, ToolChoice,
};

use super::schema::{json_schema_for_gemini, openapi_to_json_schema};
use super::{FUNCTION_EXTRAS, SIGNATURE_SENTINEL, bare_model, from_object, insert_at_path, invalid, push_reasoning};

/// The media type of an image given by URI (`fileData.mimeType`), kept on the IR image part:
/// Gemini wants it and a URI rarely says it.
const MIME_TYPE: &str = "gemini.mimeType";

/// A second sentinel Google documents; read like the first.
const OTHER_SENTINEL: &str = "context_engineering_is_the_way_to_go";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest {
    #[serde(default)]
    contents: Vec<WireContent>,
    #[serde(default, alias = "system_instruction")]
    system_instruction: Option<WireContent>,
    #[serde(default)]
    tools: Option<Vec<WireTool>>,
    #[serde(default, alias = "tool_config")]
    tool_config: Option<WireToolConfig>,
    #[serde(default, alias = "generation_config")]
    generation_config: Option<WireGenerationConfig>,
    /// The URL names the model; a body may repeat it as `models/NAME`.
    #[serde(default)]
    model: Option<String>,
    /// `safetySettings`, `cachedContent`, `labels`, … for the same protocol.
    #[serde(flatten)]
    extra: JsonMap,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireContent {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    parts: Vec<WirePart>,
}

/// A part is a oneof (text, inline data, file data, function call or response) with shared
/// fields (`thought`, `thoughtSignature`, `videoMetadata`, …).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default, alias = "inline_data")]
    inline_data: Option<WireBlob>,
    #[serde(default, alias = "file_data")]
    file_data: Option<WireFileData>,
    #[serde(default, alias = "function_call")]
    function_call: Option<WireFunctionCall>,
    #[serde(default, alias = "function_response")]
    function_response: Option<WireFunctionResponse>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(default, alias = "thought_signature")]
    thought_signature: Option<String>,
    #[serde(flatten)]
    extra: JsonMap,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireBlob {
    #[serde(alias = "mime_type")]
    mime_type: String,
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireFileData {
    #[serde(default, alias = "mime_type")]
    mime_type: Option<String>,
    #[serde(alias = "file_uri")]
    file_uri: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFunctionCall {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    args: Option<JsonMap>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFunctionResponse {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    response: Option<JsonMap>,
    #[serde(default)]
    parts: Option<Vec<WireResponsePart>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WireResponsePart {
    #[serde(alias = "inline_data")]
    inline_data: WireBlob,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTool {
    #[serde(default, alias = "function_declarations")]
    function_declarations: Option<Vec<WireFunctionDeclaration>>,
    /// Server tools (`googleSearch`, `codeExecution`, `urlContext`, …).
    #[serde(flatten)]
    other: JsonMap,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireFunctionDeclaration {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default, alias = "parameters_json_schema")]
    parameters_json_schema: Option<Value>,
    #[serde(flatten)]
    extra: JsonMap,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireToolConfig {
    #[serde(default, alias = "function_calling_config")]
    function_calling_config: Option<WireFunctionCallingConfig>,
    #[serde(flatten)]
    extra: JsonMap,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireFunctionCallingConfig {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default, alias = "allowed_function_names")]
    allowed_function_names: Option<Vec<String>>,
    #[serde(flatten)]
    extra: JsonMap,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireGenerationConfig {
    #[serde(default, alias = "stop_sequences")]
    stop_sequences: Option<Vec<String>>,
    #[serde(default, alias = "response_mime_type")]
    response_mime_type: Option<String>,
    #[serde(default, alias = "response_schema")]
    response_schema: Option<Value>,
    #[serde(default, alias = "response_json_schema")]
    response_json_schema: Option<Value>,
    #[serde(default, alias = "candidate_count")]
    candidate_count: Option<u32>,
    #[serde(default, alias = "max_output_tokens")]
    max_output_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default, alias = "top_p")]
    top_p: Option<f64>,
    /// A number: Google's SDKs send it as a float (`40.0`).
    #[serde(default, alias = "top_k")]
    top_k: Option<f64>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default, alias = "presence_penalty")]
    presence_penalty: Option<f64>,
    #[serde(default, alias = "frequency_penalty")]
    frequency_penalty: Option<f64>,
    #[serde(default, alias = "response_logprobs")]
    response_logprobs: Option<bool>,
    #[serde(default)]
    logprobs: Option<u32>,
    #[serde(default, alias = "thinking_config")]
    thinking_config: Option<WireThinkingConfig>,
    #[serde(flatten)]
    extra: JsonMap,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireThinkingConfig {
    #[serde(default, alias = "include_thoughts")]
    include_thoughts: Option<bool>,
    #[serde(default, alias = "thinking_budget")]
    thinking_budget: Option<i64>,
    #[serde(default, alias = "thinking_level")]
    thinking_level: Option<String>,
    #[serde(flatten)]
    extra: JsonMap,
}

/// Decodes a `generateContent` body into the IR. The model and streaming come from the URL (see
/// [`super::split_model_action`]): `model` is set only when the body repeats it, and `stream` is
/// false until the caller says otherwise.
pub fn decode_chat_request(body: &JsonMap) -> Result<ChatRequest, GatewayError> {
    let wire: WireRequest = from_object(body)?;
    if wire.contents.is_empty() {
        return Err(invalid("contents", "* GenerateContentRequest.contents: contents is not specified"));
    }
    let mut extra = wire.extra;
    let system = match wire.system_instruction {
        Some(content) => decode_system(content)?,
        None => Vec::new(),
    };
    let mut turns = Turns::default();
    for (i, content) in wire.contents.into_iter().enumerate() {
        turns.push(i, content)?;
    }
    let tools = decode_tools(wire.tools.unwrap_or_default(), &mut extra)?;
    let tool_choice = match wire.tool_config {
        Some(config) => decode_tool_config(config, &mut extra)?,
        None => None,
    };
    let config = wire.generation_config.unwrap_or_default();
    let response_format = decode_response_format(&config, &mut extra)?;
    let sampling = decode_sampling(&config)?;
    let reasoning = match config.thinking_config {
        Some(thinking) => decode_thinking(thinking, &mut extra)?,
        None => None,
    };
    keep(&mut extra, "generationConfig", config.extra);
    Ok(ChatRequest {
        model: wire.model.as_deref().map(bare_model).unwrap_or_default().to_string(),
        system,
        messages: turns.messages,
        tools,
        tool_choice,
        parallel_tool_calls: None,
        response_format,
        sampling,
        reasoning,
        stream: false,
        // Gemini puts usage on every streamed chunk: a Gemini client always gets it.
        stream_usage: true,
        user: None,
        metadata: None,
        extra: Extra { protocol: Some(Protocol::Gemini), fields: extra },
    })
}

/// Keeps fields the IR does not model under their dotted path, for the same protocol.
fn keep(extra: &mut JsonMap, prefix: &str, fields: JsonMap) {
    for (k, v) in fields {
        extra.insert(format!("{prefix}.{k}"), v);
    }
}

/// A part's one payload, once the oneof is checked.
enum Payload {
    Text(String),
    Inline(WireBlob),
    File(WireFileData),
    Call(WireFunctionCall),
    Response(WireFunctionResponse),
}

struct Part {
    payload: Payload,
    thought: bool,
    signature: Option<String>,
    extra: JsonMap,
}

/// Part kinds Gemini has that the IR cannot hold in a conversation.
const UNSUPPORTED_PARTS: &[&str] =
    &["executableCode", "codeExecutionResult", "toolCall", "toolResponse", "executable_code", "code_execution_result"];

fn split_part(p: WirePart, param: &str) -> Result<Part, GatewayError> {
    let mut payloads = Vec::with_capacity(1);
    payloads.extend(p.text.map(Payload::Text));
    payloads.extend(p.inline_data.map(Payload::Inline));
    payloads.extend(p.file_data.map(Payload::File));
    payloads.extend(p.function_call.map(Payload::Call));
    payloads.extend(p.function_response.map(Payload::Response));
    if let Some(kind) = p.extra.keys().find(|k| UNSUPPORTED_PARTS.contains(&k.as_str())) {
        return Err(invalid(param, format!("'{kind}' parts are not supported by this gateway.")));
    }
    let payload = match (payloads.pop(), payloads.is_empty()) {
        (Some(payload), true) => payload,
        _ => {
            return Err(invalid(
                param,
                "A part must set exactly one of text, inlineData, fileData, functionCall and functionResponse.",
            ));
        }
    };
    // Google's documented stand-ins for a missing signature are no signature.
    let signature = p.thought_signature.filter(|s| s != SIGNATURE_SENTINEL && s != OTHER_SENTINEL);
    Ok(Part { payload, thought: p.thought.unwrap_or(false), signature, extra: p.extra })
}

fn no_extra(extra: &JsonMap, param: &str) -> Result<(), GatewayError> {
    match extra.keys().next() {
        Some(key) => Err(invalid(format!("{param}.{key}"), format!("'{key}' is not supported on this kind of part."))),
        None => Ok(()),
    }
}

fn decode_system(content: WireContent) -> Result<Vec<SystemPrompt>, GatewayError> {
    if content.parts.is_empty() {
        return Ok(Vec::new());
    }
    let mut parts = Vec::with_capacity(content.parts.len());
    for (j, p) in content.parts.into_iter().enumerate() {
        let param = format!("systemInstruction.parts[{j}]");
        let part = split_part(p, &param)?;
        parts.push(user_part(part, &param)?);
    }
    Ok(vec![SystemPrompt { developer: false, content: parts }])
}

/// A content part of a user turn or a system instruction.
fn user_part(part: Part, param: &str) -> Result<ContentPart, GatewayError> {
    if part.thought || part.signature.is_some() {
        return Err(invalid(param, "Only model turns carry thoughts and thought signatures."));
    }
    media_or_text(part.payload, part.extra, param)
}

fn media_or_text(payload: Payload, extra: JsonMap, param: &str) -> Result<ContentPart, GatewayError> {
    match payload {
        Payload::Text(text) => Ok(ContentPart::Text(TextPart { text, cache: None, extra })),
        Payload::Inline(blob) => inline_part(blob, extra, param),
        Payload::File(file) => file_part(file, extra, param),
        Payload::Call(_) => Err(invalid(param, "A functionCall part belongs in a model turn.")),
        Payload::Response(_) => Err(invalid(param, "A functionResponse part belongs in a user turn.")),
    }
}

fn inline_part(blob: WireBlob, extra: JsonMap, param: &str) -> Result<ContentPart, GatewayError> {
    let mime = blob.mime_type;
    if mime.starts_with("image/") {
        let source = MediaSource::Base64 { media_type: Some(mime), data: blob.data };
        return Ok(ContentPart::Image(ImagePart { source, detail: None, extra }));
    }
    no_extra(&extra, param)?;
    if let Some(format) = audio_format(&mime) {
        return Ok(ContentPart::Audio(AudioPart { data: blob.data, format }));
    }
    let source = MediaSource::Base64 { media_type: Some(mime), data: blob.data };
    Ok(ContentPart::File(FilePart { source, filename: None }))
}

fn file_part(file: WireFileData, mut extra: JsonMap, param: &str) -> Result<ContentPart, GatewayError> {
    let source = MediaSource::Url { url: file.file_uri };
    match file.mime_type {
        Some(mime) if mime.starts_with("image/") => {
            extra.insert(MIME_TYPE.into(), mime.into());
            Ok(ContentPart::Image(ImagePart { source, detail: None, extra }))
        }
        _ => {
            no_extra(&extra, param)?;
            Ok(ContentPart::File(FilePart { source, filename: None }))
        }
    }
}

/// The IR's audio format for an audio media type: the subtype, with `mpeg` called `mp3` as
/// OpenAI names it.
pub(super) fn audio_format(mime: &str) -> Option<String> {
    let sub = mime.strip_prefix("audio/")?;
    Some(if sub == "mpeg" { "mp3".to_string() } else { sub.to_string() })
}

/// The conversation so far, with the calls of the last model turn that no response has answered.
#[derive(Default)]
struct Turns {
    messages: Vec<Message>,
    open_calls: Vec<(String, String)>,
}

impl Turns {
    fn push(&mut self, i: usize, content: WireContent) -> Result<(), GatewayError> {
        if content.parts.is_empty() {
            return Err(invalid(format!("contents[{i}].parts"), "contents.parts must not be empty."));
        }
        match content.role.as_deref() {
            // A single-turn request may leave the role out; `function` is the old role of
            // function responses.
            None | Some("user" | "function") => self.user(i, content.parts),
            Some("model") => self.model(i, content.parts),
            Some(_) => Err(invalid(format!("contents[{i}].role"), "Please use a valid role: user, model.")),
        }
    }

    fn user(&mut self, i: usize, parts: Vec<WirePart>) -> Result<(), GatewayError> {
        let mut content = Vec::new();
        for (j, p) in parts.into_iter().enumerate() {
            let param = format!("contents[{i}].parts[{j}]");
            let part = split_part(p, &param)?;
            if let Payload::Response(response) = part.payload {
                if part.thought || part.signature.is_some() {
                    return Err(invalid(param, "Only model turns carry thoughts and thought signatures."));
                }
                no_extra(&part.extra, &param)?;
                self.flush_user(&mut content);
                let msg = self.tool_result(i, j, response)?;
                self.messages.push(msg);
            } else {
                content.push(user_part(part, &param)?);
            }
        }
        self.flush_user(&mut content);
        Ok(())
    }

    fn flush_user(&mut self, content: &mut Vec<ContentPart>) {
        if !content.is_empty() {
            self.messages.push(Message::new(Role::User, std::mem::take(content)));
        }
    }

    /// A function response as an IR tool message. Its call is the one with its id, or else the
    /// earliest open call of that name; one that answers no call of the turn before keeps the
    /// function's name on the message, where encoding finds it.
    fn tool_result(&mut self, i: usize, j: usize, r: WireFunctionResponse) -> Result<Message, GatewayError> {
        let position = match &r.id {
            Some(id) => self.open_calls.iter().position(|(open, _)| open == id),
            None => self.open_calls.iter().position(|(_, name)| *name == r.name),
        };
        let answered = position.map(|at| self.open_calls.remove(at));
        let id = match (r.id, &answered) {
            (Some(id), _) => id,
            (None, Some((id, _))) => id.clone(),
            (None, None) => format!("call_{i}_{j}"),
        };
        let mut content: Vec<ContentPart> = response_text(r.response).map(ContentPart::text).into_iter().collect();
        for (k, p) in r.parts.into_iter().flatten().enumerate() {
            let param = format!("contents[{i}].parts[{j}].functionResponse.parts[{k}]");
            content.push(inline_part(p.inline_data, JsonMap::new(), &param)?);
        }
        let mut msg = Message::new(Role::Tool, content);
        msg.tool_call_id = Some(id);
        if answered.is_none() {
            msg.name = Some(r.name);
        }
        Ok(msg)
    }

    fn model(&mut self, i: usize, parts: Vec<WirePart>) -> Result<(), GatewayError> {
        let mut msg = Message::new(Role::Assistant, Vec::new());
        for (j, p) in parts.into_iter().enumerate() {
            let param = format!("contents[{i}].parts[{j}]");
            let part = split_part(p, &param)?;
            match part.payload {
                Payload::Text(text) if part.thought => {
                    no_extra(&part.extra, &param)?;
                    if !text.is_empty() || part.signature.is_some() {
                        push_reasoning(&mut msg.reasoning, &text, part.signature);
                    }
                }
                _ if part.thought => return Err(invalid(param, "Only text parts can be thoughts.")),
                Payload::Call(call) => {
                    no_extra(&part.extra, &param)?;
                    let n = msg.tool_calls.len();
                    msg.tool_calls.push(ToolCall {
                        id: call.id.unwrap_or_else(|| format!("call_{i}_{n}")),
                        name: call.name,
                        arguments: Value::Object(call.args.unwrap_or_default()).to_string(),
                        signature: part.signature,
                    });
                }
                payload => {
                    if part.signature.is_some() {
                        push_reasoning(&mut msg.reasoning, "", part.signature);
                    }
                    msg.content.push(media_or_text(payload, part.extra, &param)?);
                }
            }
        }
        self.open_calls = msg.tool_calls.iter().map(|c| (c.id.clone(), c.name.clone())).collect();
        self.messages.push(msg);
        Ok(())
    }
}

/// A function's response object as the text of an IR tool message: Gemini's conventional
/// `{"output": "…"}` is its text; any other object is its JSON.
fn response_text(response: Option<JsonMap>) -> Option<String> {
    let response = response.filter(|r| !r.is_empty())?;
    if let (1, Some(Value::String(s))) = (response.len(), response.get("output")) {
        return Some(s.clone());
    }
    Some(Value::Object(response).to_string())
}

fn decode_tools(tools: Vec<WireTool>, extra: &mut JsonMap) -> Result<Vec<Tool>, GatewayError> {
    let mut out = Vec::new();
    let mut server_tools = Vec::new();
    let mut declaration_extras = Map::new();
    for (i, tool) in tools.into_iter().enumerate() {
        for (j, f) in tool.function_declarations.into_iter().flatten().enumerate() {
            let parameters = match (f.parameters, f.parameters_json_schema) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        format!("tools[{i}].functionDeclarations[{j}]"),
                        "parameters and parametersJsonSchema are mutually exclusive.",
                    ));
                }
                (Some(schema), None) => Some(openapi_to_json_schema(&schema)),
                (None, schema) => schema,
            };
            if !f.extra.is_empty() {
                declaration_extras.insert(f.name.clone(), Value::Object(f.extra));
            }
            out.push(Tool { name: f.name, description: f.description, parameters, strict: None, cache: None });
        }
        if !tool.other.is_empty() {
            server_tools.push(Value::Object(tool.other));
        }
    }
    if !server_tools.is_empty() {
        extra.insert("tools".into(), Value::Array(server_tools));
    }
    if !declaration_extras.is_empty() {
        extra.insert(FUNCTION_EXTRAS.into(), Value::Object(declaration_extras));
    }
    Ok(out)
}

/// `functionCallingConfig` as the IR's tool choice where it has one (AUTO, NONE, ANY, ANY of one
/// function); other settings (VALIDATED, ANY of several functions) stay in `extra`.
fn decode_tool_config(config: WireToolConfig, extra: &mut JsonMap) -> Result<Option<ToolChoice>, GatewayError> {
    keep(extra, "toolConfig", config.extra);
    let Some(fc) = config.function_calling_config else { return Ok(None) };
    let prefix = "toolConfig.functionCallingConfig";
    keep(extra, prefix, fc.extra);
    let mode = fc.mode.as_deref().map(str::to_ascii_uppercase);
    let names = fc.allowed_function_names.unwrap_or_default();
    let choice = match (mode.as_deref(), names.as_slice()) {
        (None, []) => None,
        (Some("AUTO"), []) => Some(ToolChoice::Auto),
        (Some("NONE"), []) => Some(ToolChoice::None),
        (Some("ANY"), []) => Some(ToolChoice::Required),
        (Some("ANY"), [name]) => Some(ToolChoice::Tool(name.clone())),
        (None | Some("AUTO" | "NONE" | "ANY" | "VALIDATED" | "MODE_UNSPECIFIED"), _) => {
            if let Some(mode) = fc.mode {
                extra.insert(format!("{prefix}.mode"), mode.into());
            }
            if !names.is_empty() {
                extra.insert(format!("{prefix}.allowedFunctionNames"), names.into());
            }
            None
        }
        (Some(other), _) => {
            return Err(invalid(
                format!("{prefix}.mode"),
                format!("Invalid value '{other}': expected AUTO, ANY, NONE or VALIDATED."),
            ));
        }
    };
    Ok(choice)
}

fn decode_sampling(g: &WireGenerationConfig) -> Result<Sampling, GatewayError> {
    let top_k = match g.top_k {
        None => None,
        Some(k) if k >= 0.0 && k.fract() == 0.0 && k <= u32::MAX as f64 => Some(k as u64),
        Some(k) => return Err(invalid("generationConfig.topK", format!("Invalid value {k}: expected an integer."))),
    };
    Ok(Sampling {
        max_tokens: g.max_output_tokens,
        temperature: g.temperature,
        top_p: g.top_p,
        top_k,
        stop: g.stop_sequences.clone().unwrap_or_default(),
        seed: g.seed,
        frequency_penalty: g.frequency_penalty,
        presence_penalty: g.presence_penalty,
        n: g.candidate_count,
        logprobs: g.response_logprobs,
        top_logprobs: g.logprobs,
    })
}

/// The response's media type and schema as the IR's format. JSON with a schema, JSON, and plain
/// text have one; other types (`text/x.enum`) stay in `extra` with their schema.
fn decode_response_format(
    g: &WireGenerationConfig,
    extra: &mut JsonMap,
) -> Result<Option<ResponseFormat>, GatewayError> {
    let schema = match (&g.response_json_schema, &g.response_schema) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "generationConfig.responseJsonSchema",
                "responseJsonSchema and responseSchema are mutually exclusive.",
            ));
        }
        (Some(s), None) => Some(s.clone()),
        (None, Some(s)) => Some(openapi_to_json_schema(s)),
        (None, None) => None,
    };
    let format = match (g.response_mime_type.as_deref(), schema) {
        (Some("application/json"), Some(schema)) => {
            let name = schema.get("title").and_then(Value::as_str).unwrap_or("response").to_string();
            Some(ResponseFormat::JsonSchema { name, description: None, schema: Some(schema), strict: None })
        }
        (Some("application/json"), None) => Some(ResponseFormat::JsonObject),
        (Some("text/plain"), None) => Some(ResponseFormat::Text),
        (None, None) => None,
        (mime, _) => {
            let fields = [
                ("responseMimeType", mime.map(Value::from)),
                ("responseSchema", g.response_schema.clone()),
                ("responseJsonSchema", g.response_json_schema.clone()),
            ];
            for (key, value) in fields {
                if let Some(v) = value {
                    extra.insert(format!("generationConfig.{key}"), v);
                }
            }
            None
        }
    };
    Ok(format)
}

/// `thinkingConfig`: a level is the IR's effort, a budget its budget, and the dynamic budget
/// (-1) is a reasoning config with neither. `includeThoughts` stays in `extra`.
fn decode_thinking(t: WireThinkingConfig, extra: &mut JsonMap) -> Result<Option<ReasoningConfig>, GatewayError> {
    let prefix = "generationConfig.thinkingConfig";
    keep(extra, prefix, t.extra);
    if let Some(include) = t.include_thoughts {
        extra.insert(format!("{prefix}.includeThoughts"), include.into());
    }
    let budget_tokens = match t.thinking_budget {
        None | Some(-1) => None,
        Some(b) => Some(u64::try_from(b).map_err(|_| {
            invalid(format!("{prefix}.thinkingBudget"), format!("Invalid value {b}: expected -1 or more."))
        })?),
    };
    let effort = t.thinking_level.map(|l| l.to_ascii_lowercase());
    if effort.is_none() && budget_tokens.is_none() && t.thinking_budget.is_none() {
        return Ok(None);
    }
    Ok(Some(ReasoningConfig { effort, budget_tokens }))
}

/// Encodes an IR chat request as a `generateContent` body (the model goes in the URL). Fields
/// that came from a Gemini client and the IR does not model are put back.
pub fn encode_chat_request(req: &ChatRequest) -> Result<JsonMap, GatewayError> {
    let same = req.extra.protocol == Some(Protocol::Gemini);
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(encode_contents(req, same)?));
    let system: Vec<Value> = req
        .system
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.content.iter().enumerate().map(move |(j, p)| (i, j, p)))
        .map(|(i, j, p)| encode_part(p, same, &format!("system[{i}].content[{j}]")))
        .collect::<Result<_, _>>()?;
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    let tools = encode_tools(req, same);
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = &req.tool_choice {
        body.insert("toolConfig".into(), json!({ "functionCallingConfig": encode_tool_choice(choice) }));
    }
    let config = encode_generation_config(req, same)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    if same {
        for (key, value) in &req.extra.fields {
            if key != "tools" && key != FUNCTION_EXTRAS {
                insert_at_path(&mut body, key, value.clone());
            }
        }
    }
    Ok(body)
}

fn encode_contents(req: &ChatRequest, same: bool) -> Result<Vec<Value>, GatewayError> {
    let active_from = active_loop_start(&req.messages);
    let sentinel_ok = !before_gemini_3(&req.model);
    let mut contents = Vec::with_capacity(req.messages.len());
    // Consecutive tool results answer one model turn: Gemini wants them in one user content.
    let mut results: Vec<Value> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        if m.role == Role::Tool {
            results.push(encode_tool_result(&req.messages[..i], i, m)?);
            continue;
        }
        if !results.is_empty() {
            contents.push(json!({ "role": "user", "parts": std::mem::take(&mut results) }));
        }
        let (role, parts) = match m.role {
            Role::Assistant => ("model", encode_model_turn(m, i, same, sentinel_ok && i >= active_from, true)?),
            _ => ("user", encode_parts(&m.content, same, i)?),
        };
        // Gemini refuses a content without parts; an empty turn says nothing.
        if !parts.is_empty() {
            contents.push(json!({ "role": role, "parts": parts }));
        }
    }
    if !results.is_empty() {
        contents.push(json!({ "role": "user", "parts": results }));
    }
    Ok(contents)
}

/// Where the current turn's tool loop starts: after the last user message with text. Gemini 3
/// checks signatures there only.
fn active_loop_start(messages: &[Message]) -> usize {
    messages
        .iter()
        .rposition(|m| {
            m.role == Role::User && m.content.iter().any(|p| matches!(p, ContentPart::Text(t) if !t.text.is_empty()))
        })
        .unwrap_or(0)
}

/// Whether the model is named as a Gemini 1.x or 2.x, which check no function-call signatures
/// and know thinking budgets but not thinking levels. (The IR's model may be a public alias:
/// then it is taken for a current model.)
fn before_gemini_3(model: &str) -> bool {
    let name = model.rsplit('/').next().unwrap_or_default().to_ascii_lowercase();
    name.starts_with("gemini-1") || name.starts_with("gemini-2")
}

fn encode_parts(parts: &[ContentPart], same: bool, i: usize) -> Result<Vec<Value>, GatewayError> {
    parts.iter().enumerate().map(|(j, p)| encode_part(p, same, &format!("messages[{i}].content[{j}]"))).collect()
}

/// An assistant turn: its reasoning as thought parts, then its content, then its function calls
/// (Gemini's order). Signatures go back where Gemini put them: on the call, on the thought, or
/// on the first text of the answer for a signature that came without thoughts. When no call
/// carries a signature, the last reasoning block's signature is the first call's (a streamed
/// answer leaves it there); failing that, in the current turn, the first call gets Google's
/// stand-in, without which Gemini 3 refuses the turn.
///
/// Not `strict` (an answer being encoded, which cannot fail): arguments that are not a JSON
/// object become `{}`, and media Gemini cannot take are left out.
pub(super) fn encode_model_turn(
    m: &Message,
    i: usize,
    same: bool,
    stand_in: bool,
    strict: bool,
) -> Result<Vec<Value>, GatewayError> {
    let mut parts = Vec::new();
    let calls_signed = m.tool_calls.iter().any(|c| c.signature.is_some());
    let last = m.reasoning.len().saturating_sub(1);
    let moved = match (m.tool_calls.is_empty() || calls_signed, m.reasoning.last()) {
        (false, Some(r)) => r.signature.as_deref(),
        _ => None,
    };
    let has_text = m.content.iter().any(|p| matches!(p, ContentPart::Text(_)));
    let mut on_text = None;
    for (k, r) in m.reasoning.iter().enumerate() {
        let signature = if moved.is_some() && k == last { None } else { r.signature.as_deref() };
        match (r.text.is_empty(), signature) {
            // Redacted reasoning is Anthropic's, encrypted for Anthropic: nothing Gemini can read.
            (true, None) => {}
            (true, Some(s)) if k == last && has_text => on_text = Some(s),
            (true, Some(s)) => parts.push(json!({ "text": "", "thoughtSignature": s })),
            (false, s) => {
                let mut part = json!({ "text": r.text, "thought": true });
                if let Some(s) = s {
                    part["thoughtSignature"] = s.into();
                }
                parts.push(part);
            }
        }
    }
    for (j, p) in m.content.iter().enumerate() {
        let mut part = match encode_part(p, same, &format!("messages[{i}].content[{j}]")) {
            Ok(part) => part,
            Err(e) if strict => return Err(e),
            Err(_) => continue,
        };
        if let (ContentPart::Text(_), Some(s)) = (p, on_text) {
            part["thoughtSignature"] = s.into();
            on_text = None;
        }
        parts.push(part);
    }
    if let Some(refusal) = &m.refusal {
        parts.push(json!({ "text": refusal }));
    }
    for (j, c) in m.tool_calls.iter().enumerate() {
        let args = match call_arguments(&c.arguments, &format!("messages[{i}].tool_calls[{j}].function.arguments")) {
            Ok(args) => args,
            Err(e) if strict => return Err(e),
            Err(_) => Value::Object(Map::new()),
        };
        let mut call = Map::new();
        if !c.id.is_empty() {
            call.insert("id".into(), c.id.clone().into());
        }
        call.insert("name".into(), c.name.clone().into());
        call.insert("args".into(), args);
        let mut part = json!({ "functionCall": call });
        let borrowed = if j == 0 { moved.or(stand_in.then_some(SIGNATURE_SENTINEL)) } else { None };
        if let Some(s) = c.signature.as_deref().or(if calls_signed { None } else { borrowed }) {
            part["thoughtSignature"] = s.into();
        }
        parts.push(part);
    }
    Ok(parts)
}

/// Tool-call arguments as Gemini's `args` object. Models of other providers sometimes write
/// invalid JSON; Gemini cannot carry it.
fn call_arguments(arguments: &str, param: &str) -> Result<Value, GatewayError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(invalid(param, "Gemini needs tool-call arguments that are a JSON object; these are not.")),
    }
}

/// A tool message as a `functionResponse` part. Gemini needs the function's name, which the IR
/// keeps on the call: it is found through the call id.
fn encode_tool_result(before: &[Message], i: usize, m: &Message) -> Result<Value, GatewayError> {
    let id = m.tool_call_id.as_deref().unwrap_or_default();
    let name = before
        .iter()
        .rev()
        .flat_map(|prev| prev.tool_calls.iter())
        .find(|c| !id.is_empty() && c.id == id)
        .map(|c| c.name.clone())
        .or_else(|| m.name.clone())
        .ok_or_else(|| {
            invalid(
                format!("messages[{i}].tool_call_id"),
                format!("Gemini needs the name of the function '{id}' answers, and no earlier assistant tool call has that id."),
            )
        })?;
    let texts: Vec<&str> = m
        .content
        .iter()
        .filter_map(|p| if let ContentPart::Text(t) = p { Some(t.text.as_str()) } else { None })
        .collect();
    let response = if texts.is_empty() {
        Map::new()
    } else {
        let text = texts.concat();
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(obj)) => obj,
            _ => Map::from_iter([("output".to_string(), Value::String(text))]),
        }
    };
    let mut fr = Map::new();
    if !id.is_empty() {
        fr.insert("id".into(), id.into());
    }
    fr.insert("name".into(), name.into());
    fr.insert("response".into(), Value::Object(response));
    let media: Vec<Value> = m
        .content
        .iter()
        .enumerate()
        .filter(|(_, p)| !matches!(p, ContentPart::Text(_)))
        .map(|(j, p)| tool_result_media(p, &format!("messages[{i}].content[{j}]")))
        .collect::<Result<_, _>>()?;
    if !media.is_empty() {
        fr.insert("parts".into(), Value::Array(media));
    }
    Ok(json!({ "functionResponse": fr }))
}

/// Media in a tool result: Gemini takes inline bytes there, not URIs.
fn tool_result_media(part: &ContentPart, param: &str) -> Result<Value, GatewayError> {
    let encoded = encode_part(part, false, param)?;
    match encoded.get("inlineData") {
        Some(blob) => Ok(json!({ "inlineData": blob })),
        None => Err(invalid(param, "Gemini takes only inline data (base64) in a tool result, not a URL.")),
    }
}

/// One content part of a user, system or model turn.
fn encode_part(part: &ContentPart, same: bool, param: &str) -> Result<Value, GatewayError> {
    let value = match part {
        ContentPart::Text(t) => {
            let mut p = if same { t.extra.clone() } else { Map::new() };
            p.insert("text".into(), t.text.clone().into());
            Value::Object(p)
        }
        ContentPart::Image(img) => {
            let hint = img.extra.get(MIME_TYPE).and_then(Value::as_str);
            let mut p = media(&img.source, hint, None, param)?;
            if same {
                for (k, v) in img.extra.iter().filter(|(k, _)| *k != MIME_TYPE) {
                    p.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            Value::Object(p)
        }
        ContentPart::Audio(a) => {
            json!({ "inlineData": { "mimeType": audio_mime(&a.format), "data": a.data } })
        }
        ContentPart::File(f) => Value::Object(media(&f.source, None, f.filename.as_deref(), param)?),
    };
    Ok(value)
}

fn audio_mime(format: &str) -> String {
    if format.contains('/') { format.to_string() } else { format!("audio/{format}") }
}

/// Bytes or a URI as `inlineData` or `fileData`. Gemini needs the media type of inline bytes; it
/// is taken from the source, the file name, or the bytes' signature.
fn media(
    source: &MediaSource,
    hint: Option<&str>,
    filename: Option<&str>,
    param: &str,
) -> Result<JsonMap, GatewayError> {
    let mut out = Map::new();
    match source {
        MediaSource::Base64 { media_type, data } => {
            let mime = media_type
                .clone()
                .or_else(|| hint.map(str::to_string))
                .or_else(|| filename.and_then(mime_from_name))
                .or_else(|| sniff_base64(data))
                .ok_or_else(|| {
                    invalid(param, "Gemini needs the media type of inline data, and it could not be determined.")
                })?;
            out.insert("inlineData".into(), json!({ "mimeType": mime, "data": data }));
        }
        MediaSource::Url { url } => {
            let mut file = Map::new();
            let mime =
                hint.map(str::to_string).or_else(|| filename.and_then(mime_from_name)).or_else(|| mime_from_name(url));
            if let Some(mime) = mime {
                file.insert("mimeType".into(), mime.into());
            }
            file.insert("fileUri".into(), url.clone().into());
            out.insert("fileData".into(), Value::Object(file));
        }
        MediaSource::FileId { id } => {
            return Err(invalid(
                param,
                format!(
                    "The file '{id}' was uploaded to another provider; Gemini cannot read it. Send its data or a URL."
                ),
            ));
        }
    }
    Ok(out)
}

/// The media type a file name or URL's extension implies, for the types Gemini reads.
fn mime_from_name(name: &str) -> Option<String> {
    let path = name.split(['?', '#']).next().unwrap_or_default();
    let (_, ext) = path.rsplit_once('.')?;
    let mime = match ext.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "xml" => "text/xml",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        "aiff" => "audio/aiff",
        "mp4" => "video/mp4",
        "mpeg" | "mpg" => "video/mpeg",
        "mov" => "video/mov",
        "webm" => "video/webm",
        "avi" => "video/avi",
        _ => return None,
    };
    Some(mime.to_string())
}

/// The media type of base64 bytes from their first bytes, for the formats clients send most.
fn sniff_base64(data: &str) -> Option<String> {
    let kinds = [
        ("iVBORw0KGgo", "image/png"),
        ("/9j/", "image/jpeg"),
        ("R0lGOD", "image/gif"),
        ("JVBERi0", "application/pdf"),
        ("SUQz", "audio/mp3"),
    ];
    if data.starts_with("UklGR") {
        // RIFF: WEBP or WAVE, named at bytes 8..12 (base64 characters 11..16).
        let tag = data.get(11..16)?;
        return Some(if tag.starts_with("XRUJQ") { "image/webp" } else { "audio/wav" }.to_string());
    }
    kinds.iter().find(|(prefix, _)| data.starts_with(prefix)).map(|(_, mime)| mime.to_string())
}

fn encode_tools(req: &ChatRequest, same: bool) -> Vec<Value> {
    let mut out = Vec::new();
    let kept = if same { req.extra.fields.get(FUNCTION_EXTRAS).and_then(Value::as_object) } else { None };
    if !req.tools.is_empty() {
        let declarations: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut d = Map::new();
                d.insert("name".into(), t.name.clone().into());
                if let Some(description) = &t.description {
                    d.insert("description".into(), description.clone().into());
                }
                if let Some(schema) = &t.parameters {
                    d.insert("parametersJsonSchema".into(), json_schema_for_gemini(schema));
                }
                if let Some(Value::Object(extra)) = kept.and_then(|k| k.get(&t.name)) {
                    for (k, v) in extra {
                        d.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                Value::Object(d)
            })
            .collect();
        out.push(json!({ "functionDeclarations": declarations }));
    }
    if same && let Some(Value::Array(server_tools)) = req.extra.fields.get("tools") {
        out.extend(server_tools.iter().cloned());
    }
    out
}

fn encode_tool_choice(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!({ "mode": "AUTO" }),
        ToolChoice::None => json!({ "mode": "NONE" }),
        ToolChoice::Required => json!({ "mode": "ANY" }),
        ToolChoice::Tool(name) => json!({ "mode": "ANY", "allowedFunctionNames": [name] }),
    }
}

fn encode_generation_config(req: &ChatRequest, same: bool) -> Result<JsonMap, GatewayError> {
    let s = &req.sampling;
    let mut g = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            g.insert(key.into(), v);
        }
    };
    put("maxOutputTokens", s.max_tokens.map(Value::from));
    put("temperature", s.temperature.map(Value::from));
    put("topP", s.top_p.map(Value::from));
    put("topK", s.top_k.map(Value::from));
    put("stopSequences", (!s.stop.is_empty()).then(|| Value::from(s.stop.clone())));
    put("presencePenalty", s.presence_penalty.map(Value::from));
    put("frequencyPenalty", s.frequency_penalty.map(Value::from));
    put("candidateCount", s.n.map(Value::from));
    put("responseLogprobs", s.logprobs.map(Value::from));
    put("logprobs", s.top_logprobs.map(Value::from));
    if let Some(seed) = s.seed {
        let seed = i32::try_from(seed).map_err(|_| invalid("seed", "Gemini takes a seed of at most 32 bits."))?;
        g.insert("seed".into(), seed.into());
    }
    match &req.response_format {
        None => {}
        Some(ResponseFormat::Text) => {
            g.insert("responseMimeType".into(), "text/plain".into());
        }
        Some(ResponseFormat::JsonObject) => {
            g.insert("responseMimeType".into(), "application/json".into());
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            g.insert("responseMimeType".into(), "application/json".into());
            if let Some(schema) = schema {
                g.insert("responseJsonSchema".into(), json_schema_for_gemini(schema));
            }
        }
    }
    if let Some(r) = &req.reasoning {
        // A Gemini client's own settings go as they came, whatever the model.
        let budgets_only = !same && before_gemini_3(&req.model);
        g.insert("thinkingConfig".into(), Value::Object(encode_thinking(r, same, budgets_only)?));
    }
    Ok(g)
}

/// The IR's reasoning as `thinkingConfig`: a budget is `thinkingBudget`, an effort is
/// `thinkingLevel` (`none` turns thinking off with a zero budget), and neither is the dynamic
/// budget. Gemini 2 refuses thinking levels: for it an effort is a budget (see
/// [`effort_budget`]). A client of another protocol that asks for reasoning expects to see it:
/// thought summaries are requested for it (a Gemini client says so itself).
fn encode_thinking(r: &ReasoningConfig, same: bool, budgets_only: bool) -> Result<JsonMap, GatewayError> {
    let mut t = Map::new();
    if let Some(budget) = r.budget_tokens {
        t.insert("thinkingBudget".into(), budget.into());
    }
    let effort = r.effort.as_deref().map(str::to_ascii_lowercase);
    match effort.as_deref() {
        None => {}
        Some(effort) if budgets_only && r.budget_tokens.is_none() => {
            let budget = effort_budget(effort).ok_or_else(|| unknown_effort(effort))?;
            t.insert("thinkingBudget".into(), budget.into());
        }
        Some("none") => {
            t.entry("thinkingBudget").or_insert(0.into());
        }
        Some(level @ ("minimal" | "low" | "medium" | "high")) => {
            t.insert("thinkingLevel".into(), level.to_ascii_uppercase().into());
        }
        Some("xhigh" | "max") => {
            t.insert("thinkingLevel".into(), "HIGH".into());
        }
        Some(other) if same => {
            t.insert("thinkingLevel".into(), other.to_ascii_uppercase().into());
        }
        Some(other) => return Err(unknown_effort(other)),
    }
    if t.is_empty() {
        t.insert("thinkingBudget".into(), (-1).into());
    }
    let off = t.get("thinkingBudget").and_then(Value::as_i64) == Some(0);
    if !same && !off {
        t.insert("includeThoughts".into(), true.into());
    }
    Ok(t)
}

/// A thinking budget for an effort, for models that take budgets only. Every budget is within
/// the range of each Gemini 2.5 model (Pro 128–32768, Flash 0–24576, Flash-Lite 512–24576).
fn effort_budget(effort: &str) -> Option<u64> {
    Some(match effort {
        "none" => 0,
        "minimal" => 512,
        "low" => 1024,
        "medium" => 8192,
        "high" | "xhigh" | "max" => 24576,
        _ => return None,
    })
}

fn unknown_effort(effort: &str) -> GatewayError {
    invalid(
        "reasoning_effort",
        format!("Gemini has no thinking level for the effort '{effort}' (minimal, low, medium, high)."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(v: Value) -> Result<ChatRequest, GatewayError> {
        decode_chat_request(v.as_object().unwrap_or(&Map::new()))
    }

    fn round_trip(req: &ChatRequest) -> ChatRequest {
        let body = encode_chat_request(req).unwrap_or_else(|e| panic!("{e}"));
        decode_chat_request(&body).unwrap_or_else(|e| panic!("{e}: {}", Value::Object(body.clone())))
    }

    #[test]
    fn every_part_kind_decodes_and_round_trips() {
        let req = decode(json!({
            "systemInstruction": {"role": "user", "parts": [{"text": "be brief"}]},
            "contents": [
                {"role": "user", "parts": [
                    {"text": "look"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                    {"inline_data": {"mime_type": "audio/mpeg", "data": "SUQz"}},
                    {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/a.pdf"}},
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/x"}}
                ]},
                {"role": "model", "parts": [
                    {"text": "thinking…", "thought": true},
                    {"text": "Calling.", "thoughtSignature": "U0lH"},
                    {"functionCall": {"name": "f", "args": {"x": 1}}, "thoughtSignature": "Q0FMTA=="},
                    {"functionCall": {"name": "g", "args": {}}},
                    {"functionCall": {"name": "f", "args": {"x": 2}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "f", "response": {"output": "one"}}},
                    {"functionResponse": {"name": "g", "response": {"temp": 20}}},
                    {"functionResponse": {"name": "f", "response": {"output": "two"}}},
                    {"text": "and now?"}
                ]}
            ],
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT", "properties": {"x": {"type": "INTEGER"}}}}]},
                      {"googleSearch": {}}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "generationConfig": {"temperature": 0.3, "topK": 40.0, "maxOutputTokens": 100, "stopSequences": ["END"],
                                 "responseModalities": ["TEXT"], "seed": 7,
                                 "thinkingConfig": {"includeThoughts": true, "thinkingLevel": "low"}}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(req.system.len(), 1);
        let user = &req.messages[0].content;
        assert!(matches!(&user[2], ContentPart::Audio(a) if a.format == "mp3"));
        assert!(
            matches!(&user[3], ContentPart::File(f) if matches!(&f.source, MediaSource::Url { url } if url == "gs://b/a.pdf"))
        );
        assert!(matches!(&user[4], ContentPart::Image(_)));
        let model = &req.messages[1];
        // The signature on the answer text closes the thought block before it.
        assert_eq!(model.reasoning.len(), 1);
        assert_eq!(model.reasoning[0].signature.as_deref(), Some("U0lH"));
        let ids: Vec<&str> = model.tool_calls.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["call_1_0", "call_1_1", "call_1_2"]);
        assert_eq!(model.tool_calls[0].signature.as_deref(), Some("Q0FMTA=="));
        // Responses without ids find their calls by name, in order.
        let answered: Vec<&str> = req.messages[2..5].iter().filter_map(|m| m.tool_call_id.as_deref()).collect();
        assert_eq!(answered, ["call_1_0", "call_1_1", "call_1_2"]);
        assert_eq!(req.messages[2].text(), "one");
        assert_eq!(req.messages[3].text(), r#"{"temp":20}"#);
        assert_eq!(req.messages[5].role, Role::User);
        assert_eq!(req.tools[0].parameters, Some(json!({"type": "object", "properties": {"x": {"type": "integer"}}})));
        assert_eq!(req.tool_choice, Some(ToolChoice::Tool("f".into())));
        assert_eq!(req.sampling.top_k, Some(40));
        assert_eq!(req.reasoning, Some(ReasoningConfig { effort: Some("low".into()), budget_tokens: None }));
        assert!(req.extra.fields.contains_key("safetySettings"));
        assert_eq!(req.extra.fields.get("generationConfig.responseModalities"), Some(&json!(["TEXT"])));
        assert_eq!(req.extra.fields.get("tools"), Some(&json!([{"googleSearch": {}}])));

        let body = encode_chat_request(&req).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            body["generationConfig"]["thinkingConfig"],
            json!({"thinkingLevel": "LOW", "includeThoughts": true})
        );
        assert_eq!(body["tools"][1], json!({"googleSearch": {}}));
        // The three responses travel in one user content, before the text.
        assert_eq!(body["contents"][2]["parts"].as_array().map(Vec::len), Some(3));
        assert_eq!(body["contents"][2]["parts"][0]["functionResponse"]["response"], json!({"output": "one"}));
        assert_eq!(round_trip(&req), req);
    }

    #[test]
    fn wrong_shapes_name_the_field() {
        let cases = [
            (json!({"contents": []}), "contents"),
            (json!({"contents": [{"role": "wizard", "parts": [{"text": "x"}]}]}), "contents[0].role"),
            (json!({"contents": [{"role": "user", "parts": []}]}), "contents[0].parts"),
            (
                json!({"contents": [{"role": "user", "parts": [{"text": "a", "inlineData": {"mimeType": "x", "data": ""}}]}]}),
                "contents[0].parts[0]",
            ),
            (
                json!({"contents": [{"role": "user", "parts": [{"executableCode": {"code": "1"}}]}]}),
                "contents[0].parts[0]",
            ),
            (
                json!({"contents": [{"parts": [{"text": "a"}]}], "generationConfig": {"temperature": "hot"}}),
                "generationConfig.temperature",
            ),
            (
                json!({"contents": [{"parts": [{"text": "a"}]}], "generationConfig": {"topK": 2.5}}),
                "generationConfig.topK",
            ),
            (json!({"contents": [{"parts": [{"text": "a", "thoughtSignature": "x"}]}]}), "contents[0].parts[0]"),
            (json!({"contents": [{"parts": [{"text": "a"}], "extra": 1}]}), "contents[0].extra"),
        ];
        for (body, param) in cases {
            let e = decode(body.clone()).err().unwrap_or_else(|| panic!("accepted {body}"));
            assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
            assert_eq!(e.http_status(), 400);
        }
    }

    fn user(text: &str) -> Message {
        Message::new(Role::User, vec![ContentPart::text(text)])
    }

    fn assistant_calling(id: &str, args: &str) -> Message {
        let mut m = Message::new(Role::Assistant, Vec::new());
        m.tool_calls.push(ToolCall { id: id.into(), name: "f".into(), arguments: args.into(), signature: None });
        m
    }

    fn tool(id: &str, text: &str) -> Message {
        let mut m = Message::new(Role::Tool, vec![ContentPart::text(text)]);
        m.tool_call_id = Some(id.into());
        m
    }

    #[test]
    fn what_gemini_cannot_take_is_a_400() {
        let base = ChatRequest { messages: vec![user("hi")], ..Default::default() };
        let with = |f: &dyn Fn(&mut ChatRequest)| {
            let mut r = base.clone();
            f(&mut r);
            encode_chat_request(&r).err().map(|e| (e.http_status(), e.param.unwrap_or_default()))
        };
        let file_id =
            ContentPart::File(FilePart { source: MediaSource::FileId { id: "file-1".into() }, filename: None });
        assert_eq!(
            with(&|r| r.messages[0].content.push(file_id.clone())),
            Some((400, "messages[0].content[1]".into()))
        );
        let unknown = ContentPart::Image(ImagePart {
            source: MediaSource::Base64 { media_type: None, data: "AAAA".into() },
            detail: None,
            extra: JsonMap::new(),
        });
        assert_eq!(
            with(&|r| r.messages[0].content.push(unknown.clone())),
            Some((400, "messages[0].content[1]".into()))
        );
        assert_eq!(
            with(&|r| r.messages.push(assistant_calling("c", "{not json"))),
            Some((400, "messages[1].tool_calls[0].function.arguments".into()))
        );
        assert_eq!(with(&|r| r.messages.push(tool("nobody", "x"))), Some((400, "messages[1].tool_call_id".into())));
        assert_eq!(with(&|r| r.sampling.seed = Some(1 << 40)), Some((400, "seed".into())));
        assert_eq!(
            with(&|r| r.reasoning = Some(ReasoningConfig { effort: Some("galaxy-brain".into()), budget_tokens: None })),
            Some((400, "reasoning_effort".into()))
        );
        let url_image = ContentPart::Image(ImagePart {
            source: MediaSource::Url { url: "https://x/y.png".into() },
            detail: None,
            extra: JsonMap::new(),
        });
        assert_eq!(
            with(&|r| {
                r.messages.push(assistant_calling("c", "{}"));
                let mut t = tool("c", "seen");
                t.content.push(url_image.clone());
                r.messages.push(t);
            }),
            Some((400, "messages[2].content[1]".into()))
        );
    }

    #[test]
    fn another_protocols_request_becomes_gemini() {
        let mut req = ChatRequest {
            model: "gpt-4o".into(),
            system: vec![SystemPrompt { developer: false, content: vec![ContentPart::text("sys")] }],
            messages: vec![
                user("weather?"),
                assistant_calling("call_a", r#"{"city":"Paris"}"#),
                tool("call_a", "sunny"),
            ],
            tools: vec![Tool {
                name: "f".into(),
                description: Some("d".into()),
                parameters: Some(
                    json!({"type": "object", "properties": {"c": {"$ref": "#/$defs/C", "description": "c"}}}),
                ),
                strict: Some(true),
                cache: None,
            }],
            tool_choice: Some(ToolChoice::Required),
            response_format: Some(ResponseFormat::JsonSchema {
                name: "out".into(),
                description: None,
                schema: Some(json!({"type": "object"})),
                strict: Some(true),
            }),
            reasoning: Some(ReasoningConfig { effort: Some("high".into()), budget_tokens: None }),
            ..Default::default()
        };
        req.sampling.n = Some(2);
        req.sampling.stop = vec!["x".into()];
        let body = Value::Object(encode_chat_request(&req).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(body["systemInstruction"], json!({"parts": [{"text": "sys"}]}));
        let call = &body["contents"][1]["parts"][0];
        assert_eq!(call["functionCall"], json!({"id": "call_a", "name": "f", "args": {"city": "Paris"}}));
        // An unsigned call of the current turn gets Google's stand-in signature.
        assert_eq!(call["thoughtSignature"], SIGNATURE_SENTINEL);
        assert_eq!(
            body["contents"][2],
            json!({"role": "user", "parts": [{"functionResponse": {"id": "call_a", "name": "f", "response": {"output": "sunny"}}}]})
        );
        let decl = &body["tools"][0]["functionDeclarations"][0];
        assert_eq!(
            decl["parametersJsonSchema"]["properties"]["c"],
            json!({"description": "c", "anyOf": [{"$ref": "#/$defs/C"}]})
        );
        assert_eq!(body["toolConfig"], json!({"functionCallingConfig": {"mode": "ANY"}}));
        let g = &body["generationConfig"];
        assert_eq!(g["responseMimeType"], "application/json");
        assert_eq!(g["responseJsonSchema"], json!({"type": "object"}));
        assert_eq!(g["candidateCount"], 2);
        assert_eq!(g["thinkingConfig"], json!({"thinkingLevel": "HIGH", "includeThoughts": true}));

        // Gemini 2 models check no signatures (no stand-in for them) and refuse thinking levels.
        req.model = "gemini-2.5-flash".into();
        let body = encode_chat_request(&req).unwrap_or_else(|e| panic!("{e}"));
        assert!(body["contents"][1]["parts"][0].get("thoughtSignature").is_none());
        assert_eq!(
            body["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 24576, "includeThoughts": true})
        );
    }

    #[test]
    fn a_streamed_signature_goes_back_on_the_first_call() {
        // What a streamed Gemini answer assembles to: the call's signature is a reasoning block.
        let mut m = assistant_calling("call_r_0", "{}");
        m.reasoning.push(switchyard_types::Reasoning {
            text: String::new(),
            signature: Some("SIG".into()),
            redacted: None,
        });
        let req = ChatRequest { messages: vec![user("go"), m], ..Default::default() };
        let body = encode_chat_request(&req).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            body["contents"][1]["parts"],
            json!([{"functionCall": {"id": "call_r_0", "name": "f", "args": {}}, "thoughtSignature": "SIG"}])
        );
    }

    #[test]
    fn thinking_settings_round_trip() {
        for config in [
            json!({"thinkingBudget": 1024}),
            json!({"thinkingBudget": -1}),
            json!({"thinking_budget": 0, "include_thoughts": false}),
            json!({"thinkingLevel": "HIGH", "includeThoughts": true}),
            json!({"includeThoughts": true}),
        ] {
            let req = decode(
                json!({"contents": [{"parts": [{"text": "a"}]}], "generationConfig": {"thinkingConfig": config}}),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(round_trip(&req), req, "{config}");
        }
        let dynamic = decode(json!({"contents": [{"parts": [{"text": "a"}]}], "generationConfig": {"thinkingConfig": {"thinkingBudget": -1}}}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dynamic.reasoning, Some(ReasoningConfig { effort: None, budget_tokens: None }));
    }
}
