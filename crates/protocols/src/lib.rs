//! Wire formats and their conversion to and from the IR, one module per protocol, and the
//! codecs the streaming formats share.

pub mod anthropic;
pub mod bedrock;
pub mod gemini;
pub mod openai;
pub mod sse;

use switchyard_types::{ChatRequest, GatewayError, Protocol};

/// Request fields of each protocol that the IR does not carry but that change nothing about the
/// answer (storage, billing tier, cache routing hints): crossing to another protocol they are
/// left behind without a word.
fn harmless(from: Protocol) -> &'static [&'static str] {
    match from {
        Protocol::OpenAi => &["store", "service_tier", "prompt_cache_key", "safety_identifier", "prediction"],
        // Top-level `cache_control` asks Anthropic to cache the prompt: a cost hint, not content.
        Protocol::Anthropic => &["service_tier", "cache_control", anthropic::THINKING_EXTRA],
        Protocol::Gemini => gemini::HARMLESS,
        Protocol::Bedrock => &["serviceTier", "performanceConfig"],
    }
}

/// Keys the codecs themselves put in `extra` maps; they describe the request, they are not the
/// client's fields.
const INTERNAL: &[&str] = &[anthropic::BLOCK_ORDER, anthropic::IS_ERROR, anthropic::THINKING_OFF, anthropic::DOCUMENT];

/// Gemini's `responseModalities: ["TEXT"]` asks for what every protocol answers anyway (SDKs
/// send it by default); other modalities (images, audio) cannot cross.
fn text_only(key: &str, value: &serde_json::Value) -> bool {
    key == "generationConfig.responseModalities"
        && value
            .as_array()
            .is_some_and(|m| m.iter().all(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("text"))))
}

/// Checks that a request can go to a provider of another protocol without losing what the
/// client asked for: a field or block with no equivalent there is a 400 naming it, never a
/// silent drop. A request going to its own protocol is always fine (what the IR does not model
/// travels as it came).
pub fn check_translatable(req: &ChatRequest, target: Protocol) -> Result<(), GatewayError> {
    let Some(from) = req.extra.protocol.filter(|p| *p != target) else { return Ok(()) };
    let lost = |what: String| {
        GatewayError::invalid(format!(
            "{what} has no equivalent in the {} protocol of the model this request was routed to; remove it, or \
             use a model served over {}.",
            target.as_str(),
            from.as_str()
        ))
    };
    let kept = |k: &str, v: &serde_json::Value| harmless(from).contains(&k) || INTERNAL.contains(&k) || text_only(k, v);
    if let Some(key) = req.extra.fields.iter().find(|(k, v)| !kept(k, v)).map(|(k, _)| k) {
        return Err(lost(format!("The parameter '{key}'")).with_param(key.clone()));
    }
    for (i, m) in req.messages.iter().enumerate() {
        if m.extra.contains_key(anthropic::BLOCKS) {
            return Err(
                lost(format!("A server-tool block in messages.{i}")).with_param(format!("messages.{i}.content"))
            );
        }
        if let Some(key) = m.extra.keys().find(|k| !INTERNAL.contains(&k.as_str())) {
            return Err(lost(format!("The field '{key}' of messages[{i}]")).with_param(format!("messages[{i}].{key}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_without_an_equivalent_are_refused_across_protocols_only() {
        let body = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
                          "container": "c1", "service_tier": "auto"});
        let req = anthropic::decode_messages_request(body.as_object().unwrap_or(&Default::default()), true)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(check_translatable(&req, Protocol::Anthropic).is_ok());
        let e = check_translatable(&req, Protocol::OpenAi).err();
        assert_eq!(e.as_ref().and_then(|e| e.param.as_deref()), Some("container"));
        assert_eq!(e.map(|e| e.http_status()), Some(400));
        let openai = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "store": true});
        let req = openai::decode_chat_request(openai.as_object().unwrap_or(&Default::default()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(check_translatable(&req, Protocol::Anthropic).is_ok(), "store changes nothing about the answer");
    }
}
