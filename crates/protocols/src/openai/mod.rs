//! The OpenAI protocol: Chat Completions (JSON and SSE), Embeddings, Models, and its error shape.
//!
//! Requests are decoded strictly (a wrong type is the client's error, with the parameter path);
//! upstream answers are decoded leniently (a field the provider omits or adds must not fail a
//! paid-for answer).

mod chat_request;
mod chat_response;
mod chat_stream;
mod embeddings;
mod error;
mod models;
mod responses;
mod responses_stream;

pub use chat_request::{decode_chat_request, encode_chat_request};
pub use chat_response::{decode_chat_response, encode_chat_response};
pub use chat_stream::{ChunkDecoder, ChunkEncoder};
pub use embeddings::{
    decode_embedding_request, decode_embedding_response, encode_embedding_request, encode_embedding_response,
};
pub use error::{decode_error, encode_error};
pub use models::{ModelEntry, encode_model_list};
pub use responses::{
    OUTPUT_ITEMS, decode_responses_request, decode_responses_response, encode_responses_request,
    encode_responses_response,
};
pub use responses_stream::{ResponsesStreamDecoder, ResponsesStreamEncoder};

use serde_json::{Map, Value};
use switchyard_types::{GatewayError, JsonMap, Usage};

/// Parses a request body into a JSON object, with OpenAI-style messages for what is wrong.
pub fn parse_object(body: &[u8]) -> Result<JsonMap, GatewayError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(GatewayError::invalid("The request body must be a JSON object.")),
        Err(e) => Err(GatewayError::invalid(format!(
            "We could not parse the JSON body of your request: {e}. (HINT: This likely means you \
             aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)"
        ))),
    }
}

/// Deserialises a wire type from an already-parsed object, naming the offending parameter.
pub(crate) fn from_object<T: serde::de::DeserializeOwned>(map: &JsonMap) -> Result<T, GatewayError> {
    // Straight from the borrowed map: the body is not copied before the IR takes its fields.
    serde_path_to_error::deserialize(map).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let message = if path == "." { inner } else { format!("Invalid value for '{path}': {inner}") };
        let mut err = GatewayError::invalid(message);
        if path != "." {
            err.param = Some(path);
        }
        err
    })
}

/// OpenAI usage: `prompt_tokens` includes cached tokens and `completion_tokens` includes
/// reasoning tokens, as the IR counts them.
pub(crate) fn decode_usage(v: &Value) -> Option<Usage> {
    let obj = v.as_object()?;
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    Some(Usage {
        input_tokens: n(obj.get("prompt_tokens")),
        output_tokens: n(obj.get("completion_tokens")),
        cache_read_tokens: n(v.pointer("/prompt_tokens_details/cached_tokens")),
        // OpenAI does not report cache writes; compatible servers fronting Anthropic models do,
        // under this name.
        cache_write_tokens: n(v.pointer("/prompt_tokens_details/cache_write_tokens")),
        reasoning_tokens: n(v.pointer("/completion_tokens_details/reasoning_tokens")),
    })
}

pub(crate) fn encode_usage(u: &Usage) -> Value {
    let mut obj = Map::new();
    obj.insert("prompt_tokens".into(), u.input_tokens.into());
    obj.insert("completion_tokens".into(), u.output_tokens.into());
    obj.insert("total_tokens".into(), u.total_tokens().into());
    let mut prompt_details = Map::new();
    prompt_details.insert("cached_tokens".into(), u.cache_read_tokens.into());
    if u.cache_write_tokens > 0 {
        prompt_details.insert("cache_write_tokens".into(), u.cache_write_tokens.into());
    }
    obj.insert("prompt_tokens_details".into(), Value::Object(prompt_details));
    let mut completion_details = Map::new();
    completion_details.insert("reasoning_tokens".into(), u.reasoning_tokens.into());
    obj.insert("completion_tokens_details".into(), Value::Object(completion_details));
    Value::Object(obj)
}

pub(crate) fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}
