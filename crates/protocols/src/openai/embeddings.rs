//! `POST /v1/embeddings`.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_types::{
    Embedding, EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EmbeddingVector, Extra, GatewayError, JsonMap,
    Protocol,
};

use super::{decode_usage, from_object, str_field};

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    input: WireInput,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(flatten)]
    extra: JsonMap,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

pub fn decode_embedding_request(body: &JsonMap) -> Result<EmbeddingRequest, GatewayError> {
    let wire: WireRequest = from_object(body)?;
    let input = match wire.input {
        WireInput::Text(t) => EmbeddingInput::Texts(vec![t]),
        WireInput::Texts(t) => EmbeddingInput::Texts(t),
        WireInput::Tokens(t) => EmbeddingInput::Tokens(vec![t]),
        WireInput::TokenLists(t) => EmbeddingInput::Tokens(t),
    };
    if input.is_empty() {
        return Err(GatewayError::invalid("'input' must not be empty.").with_param("input"));
    }
    if let Some(f) = wire.encoding_format.as_deref()
        && f != "float"
        && f != "base64"
    {
        return Err(GatewayError::invalid(format!(
            "Invalid value for 'encoding_format': '{f}'. Expected 'float' or 'base64'."
        ))
        .with_param("encoding_format"));
    }
    Ok(EmbeddingRequest {
        model: wire.model,
        input,
        dimensions: wire.dimensions,
        encoding_format: wire.encoding_format,
        user: wire.user,
        extra: Extra { protocol: Some(Protocol::OpenAi), fields: wire.extra },
    })
}

pub fn encode_embedding_request(req: &EmbeddingRequest, model: &str) -> JsonMap {
    let mut body = Map::new();
    if req.extra.protocol == Some(Protocol::OpenAi) {
        body.extend(req.extra.fields.clone());
    }
    body.insert("model".into(), model.into());
    let input = match &req.input {
        EmbeddingInput::Texts(t) => json!(t),
        EmbeddingInput::Tokens(t) => json!(t),
    };
    body.insert("input".into(), input);
    if let Some(d) = req.dimensions {
        body.insert("dimensions".into(), d.into());
    }
    if let Some(f) = &req.encoding_format {
        body.insert("encoding_format".into(), f.clone().into());
    }
    if let Some(u) = &req.user {
        body.insert("user".into(), u.clone().into());
    }
    body
}

pub fn decode_embedding_response(v: &Value) -> EmbeddingResponse {
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, d)| Embedding {
            index: d.get("index").and_then(Value::as_u64).map_or(i as u32, |x| x as u32),
            vector: match d.get("embedding") {
                Some(Value::String(s)) => EmbeddingVector::Base64(s.clone()),
                Some(Value::Array(a)) => {
                    EmbeddingVector::Float(a.iter().map(|x| x.as_f64().unwrap_or(0.0) as f32).collect())
                }
                _ => EmbeddingVector::Float(Vec::new()),
            },
        })
        .collect();
    EmbeddingResponse {
        model: str_field(v, "model").unwrap_or_default(),
        data,
        usage: v.get("usage").and_then(decode_usage).unwrap_or_default(),
    }
}

pub fn encode_embedding_response(r: &EmbeddingResponse) -> Value {
    let data: Vec<Value> =
        r.data.iter().map(|e| json!({"object": "embedding", "index": e.index, "embedding": e.vector})).collect();
    json!({
        "object": "list",
        "data": data,
        "model": r.model,
        "usage": {"prompt_tokens": r.usage.input_tokens, "total_tokens": r.usage.input_tokens},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::parse_object;

    #[test]
    fn every_input_shape_decodes() {
        for (body, n) in [
            (r#"{"model":"e","input":"a"}"#, 1),
            (r#"{"model":"e","input":["a","b"]}"#, 2),
            (r#"{"model":"e","input":[1,2,3]}"#, 1),
            (r#"{"model":"e","input":[[1],[2]]}"#, 2),
        ] {
            let req = decode_embedding_request(&parse_object(body.as_bytes()).unwrap_or_default());
            assert_eq!(req.map(|r| r.input.len()).ok(), Some(n), "{body}");
        }
        for bad in
            [r#"{"model":"e","input":[]}"#, r#"{"model":"e"}"#, r#"{"model":"e","input":"a","encoding_format":"hex"}"#]
        {
            assert!(decode_embedding_request(&parse_object(bad.as_bytes()).unwrap_or_default()).is_err(), "{bad}");
        }
    }
}
