//! Converse request bodies: `POST /model/{modelId}/converse` and `/converse-stream` (the same
//! body; the URL says whether to stream, and names the model).
//!
//! Bedrock wants turns to alternate: the IR's consecutive turns of one role are merged, and its
//! tool messages become `toolResult` blocks of a user turn, as in Anthropic's encoder. Model
//! options that Converse has no field for go in `additionalModelRequestFields`, in the names
//! Claude takes (`thinking`, `top_k`): Converse does not say which model family the id is, and
//! Claude is the one family that has both.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_types::{
    ChatRequest, ContentPart, Extra, GatewayError, JsonMap, Message, Protocol, ReasoningConfig, ResponseFormat, Role,
    Sampling, SystemPrompt, Tool, ToolChoice,
};

use super::content::{
    Block, Turn, assistant_blocks, cache_point, decode_block, encode_tool_result, field, invalid, member, object, only,
    string, string_field, user_blocks,
};
use super::{SYSTEM_TOOLS, merge_missing};
use crate::anthropic::{THINKING_OFF, Turns, add_effort, effort_budget};
use crate::openai::from_object;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest {
    messages: Vec<WireMessage>,
    #[serde(default)]
    system: Option<Vec<Value>>,
    #[serde(default)]
    inference_config: Option<WireInference>,
    #[serde(default)]
    tool_config: Option<WireToolConfig>,
    #[serde(default)]
    additional_model_request_fields: Option<JsonMap>,
    #[serde(default)]
    output_config: Option<WireOutputConfig>,
    #[serde(default)]
    request_metadata: Option<JsonMap>,
    #[serde(flatten)]
    extra: JsonMap,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireMessage {
    role: WireRole,
    content: Vec<Value>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum WireRole {
    User,
    Assistant,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireInference {
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    stop_sequences: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireToolConfig {
    tools: Vec<Value>,
    #[serde(default)]
    tool_choice: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOutputConfig {
    #[serde(default)]
    text_format: Option<Value>,
    #[serde(default)]
    effort: Option<String>,
    #[serde(flatten)]
    extra: JsonMap,
}

/// Decodes a Converse body into the IR. The model comes from the URL; `stream` is false (a
/// `/converse-stream` caller sets `stream` and `stream_usage`, Bedrock's streams always end
/// with their usage).
pub fn decode_converse_request(body: &JsonMap, model: &str) -> Result<ChatRequest, GatewayError> {
    let wire: WireRequest = from_object(body)?;
    let mut extra = wire.extra;
    let system = decode_system(wire.system.as_deref().unwrap_or_default())?;
    let mut messages = Vec::new();
    for (i, m) in wire.messages.iter().enumerate() {
        decode_message(m, i, &mut messages)?;
    }
    let (tools, tool_choice) = match &wire.tool_config {
        Some(tc) => decode_tool_config(tc, &mut extra)?,
        None => (Vec::new(), None),
    };
    let mut fields = wire.additional_model_request_fields.unwrap_or_default();
    let top_k = take_top_k(&mut fields);
    let mut reasoning = take_thinking(&mut fields)?;
    let mut response_format = None;
    if let Some(oc) = wire.output_config {
        if let Some(effort) = oc.effort {
            add_effort(&mut reasoning, &mut extra, effort);
        }
        if let Some(tf) = &oc.text_format {
            response_format = Some(decode_text_format(tf)?);
        }
        if !oc.extra.is_empty() {
            extra.insert("outputConfig".into(), Value::Object(oc.extra));
        }
    }
    if !fields.is_empty() {
        extra.insert("additionalModelRequestFields".into(), Value::Object(fields));
    }
    let inference = wire.inference_config;
    Ok(ChatRequest {
        model: model.to_string(),
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: None,
        response_format,
        sampling: Sampling {
            max_tokens: inference.as_ref().and_then(|c| c.max_tokens),
            temperature: inference.as_ref().and_then(|c| c.temperature),
            top_p: inference.as_ref().and_then(|c| c.top_p),
            top_k,
            stop: inference.and_then(|c| c.stop_sequences).unwrap_or_default(),
            ..Sampling::default()
        },
        reasoning,
        stream: false,
        stream_usage: false,
        user: None,
        metadata: decode_metadata(wire.request_metadata)?,
        extra: Extra { protocol: Some(Protocol::Bedrock), fields: extra },
    })
}

fn decode_message(m: &WireMessage, i: usize, out: &mut Vec<Message>) -> Result<(), GatewayError> {
    let role = match m.role {
        WireRole::User => Role::User,
        WireRole::Assistant => Role::Assistant,
    };
    let mut turn = Turn::new(role, out);
    for (j, b) in m.content.iter().enumerate() {
        let at = format!("messages.{i}.content.{j}");
        let block = decode_block(b, &at)?;
        turn.push(block, b, &at)?;
    }
    turn.finish();
    Ok(())
}

/// System blocks are text, each maybe followed by a cache point. Guard content has no IR form
/// and, outside a message, nowhere to be kept: it is refused.
fn decode_system(blocks: &[Value]) -> Result<Vec<SystemPrompt>, GatewayError> {
    let mut content: Vec<ContentPart> = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("system.{j}");
        match decode_block(b, &at)? {
            Block::Part(p @ ContentPart::Text(_)) => content.push(p),
            Block::Cache(marker) => match content.last_mut() {
                Some(ContentPart::Text(t)) if t.cache.is_none() => t.cache = Some(marker),
                _ => return Err(invalid(at.clone(), format!("{at}: a system cachePoint must follow a text block"))),
            },
            _ => {
                return Err(invalid(
                    at.clone(),
                    format!(
                        "{at}: system blocks must be text or cachePoint; this gateway does not take guardContent there"
                    ),
                ));
            }
        }
    }
    Ok(if content.is_empty() { Vec::new() } else { vec![SystemPrompt { developer: false, content }] })
}

/// Tool specs become IR tools (a cache point after one is its marker); system tools, and cache
/// points after them, have no IR form and are kept for the same protocol.
fn decode_tool_config(
    tc: &WireToolConfig,
    extra: &mut JsonMap,
) -> Result<(Vec<Tool>, Option<ToolChoice>), GatewayError> {
    let mut tools: Vec<Tool> = Vec::new();
    let mut kept = Vec::new();
    let mut after_spec = false;
    for (k, t) in tc.tools.iter().enumerate() {
        let at = format!("toolConfig.tools.{k}");
        let (kind, v) = member(t, &at)?;
        let spec = kind == "toolSpec";
        match (kind, decode_block(t, &at)?) {
            ("toolSpec", _) => tools.push(decode_tool_spec(v, &format!("{at}.toolSpec"))?),
            (_, Block::Cache(marker)) if after_spec && tools.last().is_some_and(|t| t.cache.is_none()) => {
                if let Some(last) = tools.last_mut() {
                    last.cache = Some(marker);
                }
            }
            _ => kept.push(t.clone()),
        }
        after_spec = spec;
    }
    if !kept.is_empty() {
        extra.insert(SYSTEM_TOOLS.into(), Value::Array(kept));
    }
    let choice = tc.tool_choice.as_ref().map(decode_tool_choice).transpose()?;
    Ok((tools, choice))
}

fn decode_tool_spec(v: &Value, at: &str) -> Result<Tool, GatewayError> {
    let obj = object(v, at)?;
    if let Some(unknown) = obj.keys().find(|k| !["name", "description", "inputSchema", "strict"].contains(&k.as_str()))
    {
        return Err(invalid(format!("{at}.{unknown}"), format!("{at}: unknown field '{unknown}'")));
    }
    let schema_at = format!("{at}.inputSchema");
    let (kind, schema) = member(field(obj, "inputSchema", at)?, &schema_at)?;
    if kind != "json" {
        return Err(invalid(schema_at.clone(), format!("{schema_at} must be {{\"json\": <a JSON schema>}}")));
    }
    let strict = match obj.get("strict") {
        None => None,
        Some(s) => {
            Some(s.as_bool().ok_or_else(|| invalid(format!("{at}.strict"), format!("{at}.strict must be a boolean")))?)
        }
    };
    Ok(Tool {
        name: string_field(obj, "name", at)?,
        description: obj.get("description").map(|d| string(d, &format!("{at}.description"))).transpose()?,
        parameters: Some(schema.clone()),
        strict,
        cache: None,
    })
}

fn decode_tool_choice(c: &Value) -> Result<ToolChoice, GatewayError> {
    let at = "toolConfig.toolChoice";
    let (kind, v) = member(c, at)?;
    match kind {
        "auto" => Ok(ToolChoice::Auto),
        "any" => Ok(ToolChoice::Required),
        "tool" => Ok(ToolChoice::Tool(string_field(
            object(v, "toolConfig.toolChoice.tool")?,
            "name",
            "toolConfig.toolChoice.tool",
        )?)),
        other => Err(invalid(at, format!("{at} must be auto, any or tool, not '{other}'"))),
    }
}

fn take_top_k(fields: &mut JsonMap) -> Option<u64> {
    let k = fields.get("top_k").and_then(Value::as_u64)?;
    fields.remove("top_k");
    Some(k)
}

/// Claude's `thinking` in `additionalModelRequestFields`. What the IR does not model of it stays
/// there, for the same protocol; a plain `disabled` is no reasoning and leaves nothing behind.
fn take_thinking(fields: &mut JsonMap) -> Result<Option<ReasoningConfig>, GatewayError> {
    let Some(Value::Object(thinking)) = fields.get("thinking") else { return Ok(None) };
    let mut rest = thinking.clone();
    let kind = rest.remove("type");
    let config = match kind.as_ref().and_then(Value::as_str) {
        // Without a budget the IR would read "adaptive": Claude requires one with `enabled`.
        Some("enabled") => {
            let budget = rest.remove("budget_tokens").and_then(|b| b.as_u64()).ok_or_else(|| {
                invalid(
                    "additionalModelRequestFields.thinking.budget_tokens",
                    "additionalModelRequestFields.thinking.budget_tokens: a positive integer is required",
                )
            })?;
            Some(ReasoningConfig { effort: None, budget_tokens: Some(budget) })
        }
        Some("adaptive") => Some(ReasoningConfig { effort: None, budget_tokens: None }),
        Some("disabled") => {
            if rest.is_empty() {
                fields.remove("thinking");
            }
            return Ok(None);
        }
        _ => {
            return Err(invalid(
                "additionalModelRequestFields.thinking.type",
                "additionalModelRequestFields.thinking.type must be enabled, adaptive or disabled",
            ));
        }
    };
    if rest.is_empty() {
        fields.remove("thinking");
    } else {
        fields.insert("thinking".into(), Value::Object(rest));
    }
    Ok(config)
}

/// `outputConfig.textFormat`: a JSON schema, which Converse carries as a JSON text.
fn decode_text_format(tf: &Value) -> Result<ResponseFormat, GatewayError> {
    let at = "outputConfig.textFormat";
    let obj = object(tf, at)?;
    if string_field(obj, "type", at)? != "json_schema" {
        return Err(invalid(format!("{at}.type"), format!("{at}.type must be json_schema")));
    }
    let structure = object(field(obj, "structure", at)?, &format!("{at}.structure"))?;
    let at = format!("{at}.structure.jsonSchema");
    let def = object(field(structure, "jsonSchema", &format!("{at}.structure"))?, &at)?;
    if !only(def, &["schema", "name", "description"]) || !only(obj, &["type", "structure"]) {
        return Err(invalid(at.clone(), format!("{at}: only schema, name and description are known")));
    }
    let text = string_field(def, "schema", &at)?;
    let schema: Value = serde_json::from_str(&text)
        .map_err(|e| invalid(format!("{at}.schema"), format!("{at}.schema is not valid JSON: {e}")))?;
    Ok(ResponseFormat::JsonSchema {
        name: def.get("name").map(|n| string(n, &format!("{at}.name"))).transpose()?.unwrap_or_else(|| "output".into()),
        description: def.get("description").map(|d| string(d, &format!("{at}.description"))).transpose()?,
        schema: Some(schema),
        // Bedrock always constrains the output to the schema.
        strict: Some(true),
    })
}

/// `requestMetadata` (string pairs that tag the invocation logs) is the IR's provider-side
/// metadata.
fn decode_metadata(m: Option<JsonMap>) -> Result<Option<JsonMap>, GatewayError> {
    let Some(m) = m else { return Ok(None) };
    if let Some(k) = m.iter().find(|(_, v)| !v.is_string()).map(|(k, _)| k) {
        return Err(invalid(format!("requestMetadata.{k}"), format!("requestMetadata.{k} must be a string")));
    }
    Ok(Some(m))
}

/// Encodes an IR request as a Converse body (the model goes in the URL). What Converse cannot
/// express is a 400 naming it, never a silent drop.
pub fn encode_converse_request(req: &ChatRequest) -> Result<JsonMap, GatewayError> {
    refuse_unsupported(req)?;
    let native = req.extra.protocol == Some(Protocol::Bedrock);
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(encode_messages(&req.messages)?));
    let system = encode_system(&req.system)?;
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let mut fields = Map::new();
    let mut output = Map::new();
    let budget = encode_reasoning(req, native, &mut fields, &mut output)?;
    let inference = encode_inference(req, budget.filter(|_| !native));
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(tc) = encode_tool_config(req, native)? {
        body.insert("toolConfig".into(), tc);
    }
    if let Some(k) = req.sampling.top_k {
        fields.insert("top_k".into(), k.into());
    }
    if let Some(format) = encode_response_format(req.response_format.as_ref())? {
        output.insert("textFormat".into(), format);
    }
    if let Some(meta) = encode_metadata(req) {
        body.insert("requestMetadata".into(), Value::Object(meta));
    }
    if native {
        restore_extra(&mut body, &mut fields, &mut output, &req.extra.fields);
    }
    if !fields.is_empty() {
        body.insert("additionalModelRequestFields".into(), Value::Object(fields));
    }
    if !output.is_empty() {
        body.insert("outputConfig".into(), Value::Object(output));
    }
    Ok(body)
}

fn refuse_unsupported(req: &ChatRequest) -> Result<(), GatewayError> {
    let s = &req.sampling;
    let unsupported = [
        ("n", s.n.is_some_and(|n| n > 1)),
        ("logprobs", s.logprobs == Some(true) || s.top_logprobs.is_some()),
        ("frequency_penalty", s.frequency_penalty.is_some_and(|v| v != 0.0)),
        ("presence_penalty", s.presence_penalty.is_some_and(|v| v != 0.0)),
        ("seed", s.seed.is_some()),
        // Converse cannot ask a model to call one tool at a time.
        ("parallel_tool_calls", req.parallel_tool_calls == Some(false)),
    ];
    match unsupported.iter().find(|(_, set)| *set) {
        Some((param, _)) => {
            Err(invalid(param.to_string(), format!("'{param}' is not supported by Bedrock's Converse API.")))
        }
        None => Ok(()),
    }
}

fn encode_messages(messages: &[Message]) -> Result<Vec<Value>, GatewayError> {
    let mut turns = Turns::default();
    for (i, m) in messages.iter().enumerate() {
        let (role, blocks) = match m.role {
            Role::Tool => (Role::User, encode_tool_result(m, i)?),
            Role::User => (Role::User, user_blocks(m, i)?),
            Role::Assistant => (Role::Assistant, assistant_blocks(m, i, true)?),
        };
        turns.push(role, blocks);
    }
    Ok(turns.into_json())
}

fn encode_system(system: &[SystemPrompt]) -> Result<Vec<Value>, GatewayError> {
    let mut out = Vec::new();
    for (j, p) in system.iter().flat_map(|s| &s.content).enumerate() {
        let ContentPart::Text(t) = p else {
            return Err(invalid(
                format!("system[{j}]"),
                format!("system[{j}]: Bedrock system prompts hold text only."),
            ));
        };
        if !t.text.is_empty() {
            out.push(json!({"text": t.text}));
        }
        if let Some(c) = &t.cache {
            out.push(cache_point(c));
        }
    }
    Ok(out)
}

/// Room for the answer when a thinking budget is set and the client gave no limit: Claude
/// requires `maxTokens` above the budget.
const ANSWER_TOKENS: u64 = 4096;

fn encode_inference(req: &ChatRequest, budget: Option<u64>) -> Map<String, Value> {
    let s = &req.sampling;
    let mut c = Map::new();
    if let Some(max) = s.max_tokens.or(budget.map(|b| b + ANSWER_TOKENS)) {
        c.insert("maxTokens".into(), max.into());
    }
    if let Some(t) = s.temperature {
        c.insert("temperature".into(), t.into());
    }
    if let Some(p) = s.top_p {
        c.insert("topP".into(), p.into());
    }
    if !s.stop.is_empty() {
        c.insert("stopSequences".into(), s.stop.clone().into());
    }
    c
}

enum Thinking {
    Off,
    Adaptive,
    Budget(u64),
}

/// Claude's thinking, in `additionalModelRequestFields`; Bedrock's own effort, in
/// `outputConfig`. Another protocol's effort becomes a thinking budget. Returns the budget.
fn encode_reasoning(
    req: &ChatRequest,
    native: bool,
    fields: &mut Map<String, Value>,
    output: &mut Map<String, Value>,
) -> Result<Option<u64>, GatewayError> {
    let Some(r) = &req.reasoning else { return Ok(None) };
    let off = native && req.extra.fields.contains_key(THINKING_OFF);
    let thinking = match (r.budget_tokens, r.effort.as_deref()) {
        _ if off => Thinking::Off,
        (Some(budget), _) => Thinking::Budget(budget),
        (None, None) => Thinking::Adaptive,
        (None, Some(_)) if native => Thinking::Adaptive,
        (None, Some("none")) => Thinking::Off,
        (None, Some(effort)) => Thinking::Budget(effort_budget(effort)?),
    };
    match thinking {
        Thinking::Budget(b) => drop(fields.insert("thinking".into(), json!({"type": "enabled", "budget_tokens": b}))),
        Thinking::Adaptive => drop(fields.insert("thinking".into(), json!({"type": "adaptive"}))),
        Thinking::Off => {}
    }
    if native && let Some(effort) = &r.effort {
        output.insert("effort".into(), effort.clone().into());
    }
    Ok(if let Thinking::Budget(b) = thinking { Some(b) } else { None })
}

/// Converse has no "none" tool choice. Without tools in the conversation, leaving the tools out
/// says it; with them, Bedrock requires the tools declared and the call cannot be forbidden: 400.
fn encode_tool_config(req: &ChatRequest, native: bool) -> Result<Option<Value>, GatewayError> {
    if req.tool_choice == Some(ToolChoice::None) {
        let tool_history = req.messages.iter().any(|m| m.role == Role::Tool || !m.tool_calls.is_empty());
        if tool_history {
            return Err(invalid(
                "tool_choice",
                "Bedrock's Converse API has no 'none' tool choice, and a conversation that holds tool calls must \
                 declare its tools. Use 'auto', or leave out the tools and the tool turns.",
            ));
        }
        return Ok(None);
    }
    let mut tools: Vec<Value> = req.tools.iter().flat_map(encode_tool).collect();
    if native && let Some(Value::Array(kept)) = req.extra.fields.get(SYSTEM_TOOLS) {
        tools.extend(kept.iter().cloned());
    }
    if tools.is_empty() {
        return Ok(None);
    }
    let mut tc = json!({ "tools": tools });
    match &req.tool_choice {
        None | Some(ToolChoice::None) => {}
        Some(ToolChoice::Auto) => tc["toolChoice"] = json!({"auto": {}}),
        Some(ToolChoice::Required) => tc["toolChoice"] = json!({"any": {}}),
        Some(ToolChoice::Tool(name)) => tc["toolChoice"] = json!({"tool": {"name": name}}),
    }
    Ok(Some(tc))
}

fn encode_tool(t: &Tool) -> Vec<Value> {
    let mut spec = Map::new();
    spec.insert("name".into(), t.name.clone().into());
    if let Some(d) = &t.description {
        spec.insert("description".into(), d.clone().into());
    }
    let schema = t.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    spec.insert("inputSchema".into(), json!({ "json": schema }));
    if let Some(strict) = t.strict {
        spec.insert("strict".into(), strict.into());
    }
    [Some(json!({ "toolSpec": spec })), t.cache.as_ref().map(cache_point)].into_iter().flatten().collect()
}

fn encode_response_format(f: Option<&ResponseFormat>) -> Result<Option<Value>, GatewayError> {
    match f {
        None | Some(ResponseFormat::Text) => Ok(None),
        // Structured output takes a schema; an open object schema is refused by the models that
        // constrain output (Claude requires closed objects), so there is nothing faithful to send.
        Some(ResponseFormat::JsonObject) => Err(invalid(
            "response_format",
            "Bedrock's structured output needs a JSON schema: use response_format json_schema, not json_object.",
        )),
        Some(ResponseFormat::JsonSchema { name, description, schema, .. }) => {
            let schema = schema.clone().unwrap_or_else(|| json!({"type": "object"}));
            let mut def = Map::new();
            def.insert("schema".into(), schema.to_string().into());
            if !name.is_empty() {
                def.insert("name".into(), name.clone().into());
            }
            if let Some(d) = description {
                def.insert("description".into(), d.clone().into());
            }
            Ok(Some(json!({"type": "json_schema", "structure": {"jsonSchema": def}})))
        }
    }
}

/// The IR's metadata, and its end user under `user`, tag Bedrock's invocation logs. Bedrock takes
/// string values only: others go as their JSON text.
fn encode_metadata(req: &ChatRequest) -> Option<Map<String, Value>> {
    let mut meta: Map<String, Value> = req
        .metadata
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string).into()))
        .collect();
    if let Some(user) = &req.user {
        meta.entry("user").or_insert_with(|| user.clone().into());
    }
    (!meta.is_empty()).then_some(meta)
}

/// Same protocol: what the IR does not model goes back as it came (not the codecs' own markers).
fn restore_extra(
    body: &mut Map<String, Value>,
    fields: &mut Map<String, Value>,
    output: &mut Map<String, Value>,
    extra: &JsonMap,
) {
    for (k, v) in extra {
        match (k.as_str(), v) {
            (SYSTEM_TOOLS, _) => {}
            (k, _) if k.starts_with("anthropic.") || k.starts_with("bedrock.") => {}
            ("additionalModelRequestFields", Value::Object(more)) => merge_missing(fields, more),
            ("outputConfig", Value::Object(more)) => merge_missing(output, more),
            _ => drop(body.entry(k.clone()).or_insert_with(|| v.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use switchyard_types::{ImagePart, MediaSource, ToolCall};

    use super::*;

    fn decode(body: Value) -> Result<ChatRequest, GatewayError> {
        decode_converse_request(body.as_object().unwrap_or(&Map::new()), "m")
    }

    fn user(text: &str) -> Message {
        Message::new(Role::User, vec![ContentPart::text(text)])
    }

    fn param_of(r: Result<JsonMap, GatewayError>) -> Option<String> {
        let e = r.err()?;
        assert_eq!(e.http_status(), 400);
        e.param
    }

    #[test]
    fn a_full_request_round_trips() {
        let body = json!({
            "messages": [
                {"role": "user", "content": [{"text": "hi"}, {"cachePoint": {"type": "default"}}]},
                {"role": "assistant", "content": [
                    {"reasoningContent": {"reasoningText": {"text": "t", "signature": "c2ln"}}},
                    {"toolUse": {"toolUseId": "a", "name": "f", "input": {"x": 1}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "a", "content": [{"text": "1"}]}},
                                             {"guardContent": {"text": {"text": "check"}}}]}],
            "system": [{"text": "be brief"}, {"cachePoint": {"type": "default", "ttl": "1h"}}],
            "inferenceConfig": {"maxTokens": 2048, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
            "toolConfig": {"tools": [{"toolSpec": {"name": "f", "description": "d", "inputSchema": {"json": {"type": "object"}}, "strict": true}},
                                     {"cachePoint": {"type": "default"}}, {"systemTool": {"name": "nova_grounding"}}],
                           "toolChoice": {"tool": {"name": "f"}}},
            "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}, "top_k": 40, "anthropic_beta": ["x"]},
            "outputConfig": {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {"schema": "{\"type\":\"object\"}", "name": "N"}}}, "effort": "high"},
            "requestMetadata": {"team": "a"},
            "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"}
        });
        let ir = decode(body.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ir.sampling.top_k, Some(40));
        assert_eq!(ir.reasoning, Some(ReasoningConfig { effort: Some("high".into()), budget_tokens: Some(1024) }));
        assert_eq!(ir.tool_choice, Some(ToolChoice::Tool("f".into())));
        assert!(ir.tools[0].cache.is_some());
        assert_eq!(ir.messages.len(), 4, "user, assistant, tool result, user's guard content");
        let back = encode_converse_request(&ir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Value::Object(back.clone()), body);
        assert_eq!(decode(Value::Object(back)).ok(), Some(ir));
    }

    #[test]
    fn requests_from_other_protocols_get_converse_forms() {
        let mut req = ChatRequest { model: "m".into(), ..ChatRequest::default() };
        req.messages = vec![
            user("a"),
            user("b"),
            Message {
                tool_calls: vec![ToolCall {
                    id: "c1".into(),
                    name: "f".into(),
                    arguments: String::new(),
                    signature: None,
                }],
                ..Message::new(Role::Assistant, vec![ContentPart::text("")])
            },
            Message { tool_call_id: Some("c1".into()), ..Message::new(Role::Tool, vec![ContentPart::text("ok")]) },
            user("thanks"),
        ];
        req.reasoning = Some(ReasoningConfig { effort: Some("medium".into()), budget_tokens: None });
        req.user = Some("u-1".into());
        req.tool_choice = Some(ToolChoice::Required);
        req.tools = vec![Tool { name: "f".into(), description: None, parameters: None, strict: None, cache: None }];
        let body = Value::Object(encode_converse_request(&req).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(body["messages"][0]["content"], json!([{"text": "a"}, {"text": "b"}]), "user turns merged");
        assert_eq!(body["messages"][1]["content"], json!([{"toolUse": {"toolUseId": "c1", "name": "f", "input": {}}}]));
        assert_eq!(
            body["messages"][2]["content"],
            json!([{"toolResult": {"toolUseId": "c1", "content": [{"text": "ok"}]}}, {"text": "thanks"}])
        );
        assert_eq!(body["additionalModelRequestFields"]["thinking"], json!({"type": "enabled", "budget_tokens": 4096}));
        assert_eq!(body["inferenceConfig"]["maxTokens"], 4096 + ANSWER_TOKENS);
        assert_eq!(body["requestMetadata"], json!({"user": "u-1"}));
        assert_eq!(body["toolConfig"]["toolChoice"], json!({"any": {}}));
        assert_eq!(body.get("outputConfig"), None, "effort crosses as a budget only");
    }

    #[test]
    fn what_converse_cannot_say_is_a_400_naming_it() {
        let base = ChatRequest { messages: vec![user("hi")], ..ChatRequest::default() };
        let with = |f: &dyn Fn(&mut ChatRequest)| {
            let mut r = base.clone();
            f(&mut r);
            encode_converse_request(&r)
        };
        assert_eq!(param_of(with(&|r| r.sampling.n = Some(2))).as_deref(), Some("n"));
        assert_eq!(param_of(with(&|r| r.sampling.seed = Some(1))).as_deref(), Some("seed"));
        assert_eq!(param_of(with(&|r| r.sampling.logprobs = Some(true))).as_deref(), Some("logprobs"));
        assert_eq!(param_of(with(&|r| r.parallel_tool_calls = Some(false))).as_deref(), Some("parallel_tool_calls"));
        assert_eq!(
            param_of(with(&|r| r.response_format = Some(ResponseFormat::JsonObject))).as_deref(),
            Some("response_format")
        );
        let effort = |r: &mut ChatRequest| {
            r.reasoning = Some(ReasoningConfig { effort: Some("max".into()), budget_tokens: None })
        };
        assert_eq!(param_of(with(&effort)).as_deref(), Some("reasoning_effort"));
        let image = |r: &mut ChatRequest| {
            r.messages.push(Message::new(
                Role::User,
                vec![ContentPart::Image(ImagePart {
                    source: MediaSource::Url { url: "https://example.com/cat.png".into() },
                    detail: None,
                    extra: JsonMap::new(),
                })],
            ))
        };
        assert_eq!(param_of(with(&image)).as_deref(), Some("messages[1].content[0]"));
        let tool_history = |r: &mut ChatRequest| {
            r.tool_choice = Some(ToolChoice::None);
            r.messages.push(Message { tool_call_id: Some("c".into()), ..Message::new(Role::Tool, Vec::new()) });
        };
        assert_eq!(param_of(with(&tool_history)).as_deref(), Some("tool_choice"));
        let nameless = |r: &mut ChatRequest| r.messages.push(Message::new(Role::Tool, Vec::new()));
        assert_eq!(param_of(with(&nameless)).as_deref(), Some("messages[1].tool_call_id"));
        let system_image = |r: &mut ChatRequest| {
            r.system = vec![SystemPrompt {
                developer: false,
                content: vec![ContentPart::Audio(switchyard_types::AudioPart {
                    data: "AA==".into(),
                    format: "wav".into(),
                })],
            }]
        };
        assert_eq!(param_of(with(&system_image)).as_deref(), Some("system[0]"));
        // "none" with no tool turns: the tools are left out instead.
        let none = with(&|r| {
            r.tool_choice = Some(ToolChoice::None);
            r.tools = vec![Tool { name: "f".into(), description: None, parameters: None, strict: None, cache: None }];
        });
        assert_eq!(none.ok().map(|b| b.contains_key("toolConfig")), Some(false));
    }

    #[test]
    fn malformed_requests_are_400s_with_their_path() {
        let cases = [
            (json!({"messages": [{"role": "system", "content": []}]}), "messages[0].role"),
            (json!({"messages": [], "inferenceConfig": {"topK": 3}}), "inferenceConfig.topK"),
            (json!({"messages": [], "system": [{"cachePoint": {"type": "default"}}]}), "system.0"),
            (json!({"messages": [], "system": [{"guardContent": {"text": {"text": "x"}}}]}), "system.0"),
            (json!({"messages": [], "toolConfig": {"tools": [], "toolChoice": {"none": {}}}}), "toolConfig.toolChoice"),
            (
                json!({"messages": [], "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"yaml": ""}}}]}}),
                "toolConfig.tools.0.toolSpec.inputSchema",
            ),
            (
                json!({"messages": [], "additionalModelRequestFields": {"thinking": {"type": "on"}}}),
                "additionalModelRequestFields.thinking.type",
            ),
            (
                json!({"messages": [], "additionalModelRequestFields": {"thinking": {"type": "enabled"}}}),
                "additionalModelRequestFields.thinking.budget_tokens",
            ),
            (
                json!({"messages": [], "outputConfig": {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {"schema": "{"}}}}}),
                "outputConfig.textFormat.structure.jsonSchema.schema",
            ),
            (json!({"messages": [], "requestMetadata": {"n": 1}}), "requestMetadata.n"),
        ];
        for (body, param) in cases {
            let e = decode(body.clone()).err();
            assert_eq!(e.as_ref().map(GatewayError::http_status), Some(400), "{body}");
            assert_eq!(e.and_then(|e| e.param).as_deref(), Some(param), "{body}");
        }
    }

    #[test]
    fn effort_alone_keeps_thinking_off_for_bedrock() {
        let body = json!({"messages": [], "outputConfig": {"effort": "low"},
                          "additionalModelRequestFields": {"thinking": {"type": "disabled"}}});
        let ir = decode(body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ir.reasoning.as_ref().and_then(|r| r.effort.as_deref()), Some("low"));
        let back = Value::Object(encode_converse_request(&ir).unwrap_or_default());
        assert_eq!(back, json!({"messages": [], "outputConfig": {"effort": "low"}}));
        let adaptive = decode(
            json!({"messages": [], "additionalModelRequestFields": {"thinking": {"type": "adaptive", "display": "x"}}}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let back = Value::Object(encode_converse_request(&adaptive).unwrap_or_default());
        assert_eq!(back["additionalModelRequestFields"], json!({"thinking": {"type": "adaptive", "display": "x"}}));
    }
}
