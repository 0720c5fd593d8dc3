//! `generateContent` / `streamGenerateContent` request bodies, read: strictly, with the path of
//! what is wrong, keeping what the IR does not model in `extra` for the same protocol.

use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_types::{
    AudioPart, ChatRequest, ContentPart, Extra, FilePart, GatewayError, ImagePart, JsonMap, MediaSource, Message,
    Protocol, ReasoningConfig, ResponseFormat, Role, Sampling, SystemPrompt, TextPart, Tool, ToolCall, ToolChoice,
};

use super::schema::openapi_to_json_schema;
use super::{FUNCTION_EXTRAS, SIGNATURE_SENTINEL, bare_model, from_object, invalid, push_reasoning};

/// The media type of an image given by URI (`fileData.mimeType`), kept on the IR image part:
/// Gemini wants it and a URI rarely says it.
pub(super) const MIME_TYPE: &str = "gemini.mimeType";

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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::gemini::encode_chat_request;

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
