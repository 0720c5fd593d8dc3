//! The translation matrix on recorded traffic: every recorded request of every protocol
//! (`../shared/fixtures/`) is encoded for every other protocol and decoded back, and what both
//! protocols can express is checked field by field: the system prompt, each turn's text, every
//! tool call (name and arguments as JSON values), every tool result, the tools offered, the
//! sampling limits. Where a target cannot express the request, the refusal must be a 400 that
//! names the parameter, never a partial translation.

mod common;

use serde_json::Value;
use switchyard_protocols::{anthropic, bedrock, check_translatable, gemini, openai};
use switchyard_types::{ChatRequest, ContentPart, GatewayError, Message, Protocol, Role};

use common::*;

/// Every recorded request, decoded by its own protocol.
fn recorded() -> Vec<(String, Protocol, ChatRequest)> {
    let mut out = Vec::new();
    for x in all_exchanges("openai", "") {
        if let (true, Some(Value::Object(body))) = (x.url.ends_with("chat/completions"), &x.request)
            && let Ok(ir) = openai::decode_chat_request(body)
        {
            out.push((x.file.clone(), Protocol::OpenAi, ir));
        }
    }
    for x in all_exchanges("anthropic", "") {
        let path = x.url.split('?').next().unwrap_or_default();
        if let (true, Some(Value::Object(body))) = (path.ends_with("/v1/messages"), &x.request)
            && let Ok(ir) = anthropic::decode_messages_request(body, true)
        {
            out.push((x.file.clone(), Protocol::Anthropic, ir));
        }
    }
    for x in all_exchanges("gemini", "") {
        let Some((model, action)) = gemini::split_model_action(&x.url) else { continue };
        if let (true, Some(Value::Object(body))) = (action.contains("enerateContent"), &x.request)
            && let Ok(mut ir) = gemini::decode_chat_request(body)
        {
            ir.model = model.to_string();
            out.push((x.file.clone(), Protocol::Gemini, ir));
        }
    }
    for x in all_exchanges("bedrock", "") {
        let path = x.url.split('?').next().unwrap_or_default();
        let Some(rest) = path.split("/model/").nth(1) else { continue };
        let model = rest.split('/').next().unwrap_or_default().replace("%3A", ":");
        if let (true, Some(Value::Object(body))) = (path.contains("/converse"), &x.request)
            && let Ok(ir) = bedrock::decode_converse_request(body, &model)
        {
            out.push((x.file.clone(), Protocol::Bedrock, ir));
        }
    }
    out
}

/// Encodes for `target` and decodes back, as the gateway would send it and as a provider of
/// that protocol would read it.
fn through(ir: &ChatRequest, target: Protocol) -> Result<ChatRequest, GatewayError> {
    check_translatable(ir, target)?;
    match target {
        Protocol::OpenAi => openai::decode_chat_request(&openai::encode_chat_request(ir, &ir.model)),
        Protocol::Anthropic => {
            anthropic::decode_messages_request(&anthropic::encode_messages_request(ir, &ir.model)?, true)
        }
        Protocol::Gemini => gemini::decode_chat_request(&gemini::encode_chat_request(ir)?),
        Protocol::Bedrock => bedrock::decode_converse_request(&bedrock::encode_converse_request(ir)?, &ir.model),
    }
}

fn text(parts: &[ContentPart]) -> String {
    parts.iter().filter_map(|p| if let ContentPart::Text(t) = p { Some(t.text.as_str()) } else { None }).collect()
}

/// What every protocol can say about a conversation, in a form that does not depend on how a
/// protocol groups turns (Anthropic and Bedrock merge consecutive turns of one role).
#[derive(Debug, PartialEq)]
struct Portable {
    system: String,
    user_text: String,
    assistant_text: String,
    calls: Vec<(String, Value)>,
    results: Vec<String>,
    tools: Vec<String>,
    max_tokens: Option<u64>,
    temperature: Option<f64>,
    stop: Vec<String>,
    reasoning: bool,
}

fn portable(ir: &ChatRequest) -> Portable {
    let of = |role: Role| ir.messages.iter().filter(|m| m.role == role).map(|m: &Message| text(&m.content)).collect();
    Portable {
        system: ir.system.iter().map(|s| text(&s.content)).collect(),
        user_text: of(Role::User),
        assistant_text: of(Role::Assistant),
        calls: ir
            .messages
            .iter()
            .flat_map(|m| &m.tool_calls)
            .map(|c| (c.name.clone(), serde_json::from_str(&c.arguments).unwrap_or(Value::Null)))
            .collect(),
        results: ir.messages.iter().filter(|m| m.role == Role::Tool).map(|m| text(&m.content)).collect(),
        tools: ir.tools.iter().map(|t| t.name.clone()).collect(),
        max_tokens: ir.sampling.max_tokens,
        temperature: ir.sampling.temperature,
        stop: ir.sampling.stop.clone(),
        reasoning: ir.reasoning.is_some(),
    }
}

#[test]
fn every_recorded_request_crosses_to_every_protocol_or_is_refused_by_name() {
    let all = recorded();
    let targets = [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini, Protocol::Bedrock];
    let mut crossed = std::collections::BTreeMap::new();
    for (file, from, ir) in &all {
        let want = portable(ir);
        for &to in targets.iter().filter(|t| *t != from) {
            let entry = crossed.entry(format!("{} -> {}", from.as_str(), to.as_str())).or_insert((0, 0));
            match through(ir, to) {
                Ok(back) => {
                    entry.0 += 1;
                    let mut got = portable(&back);
                    // Anthropic requires max_tokens, and a Claude model on Bedrock needs one above
                    // its thinking budget: a request without one is given one.
                    if matches!(to, Protocol::Anthropic | Protocol::Bedrock) && want.max_tokens.is_none() {
                        got.max_tokens = None;
                    }
                    assert_eq!(got, want, "{file}: {} -> {}", from.as_str(), to.as_str());
                }
                Err(e) => {
                    entry.1 += 1;
                    println!(
                        "  {file}: {} -> {} refused: {}",
                        from.as_str(),
                        to.as_str(),
                        e.param.as_deref().unwrap_or("?")
                    );
                    assert_eq!(e.http_status(), 400, "{file}: {} -> {}: {e:?}", from.as_str(), to.as_str());
                    assert!(
                        e.param.is_some(),
                        "{file}: {} -> {}: a refusal names the parameter: {e:?}",
                        from.as_str(),
                        to.as_str()
                    );
                }
            }
        }
    }
    for (pair, (ok, refused)) in &crossed {
        println!("{pair}: {ok} translated, {refused} refused by name");
        assert!(*ok >= 3, "{pair}: only {ok} of the recorded requests translate");
    }
    assert_eq!(crossed.len(), 12, "every ordered pair of the four protocols");
}
