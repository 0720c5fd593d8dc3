//! Embeddings: Google AI's `models/NAME:batchEmbedContents` both ways, and Vertex AI's
//! `:predict` request; answers of either (and of a single `embedContent`) decode alike.
//!
//! `taskType` and `title` have no IR field: they are read from `extra` whatever the client's
//! protocol (an OpenAI client can send them as extra body fields). Gemini embeds text only
//! (token ids are a 400) and always answers with floats: a client that asked for base64 (the
//! OpenAI SDK does by default) must have them encoded by its surface.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_types::{
    Embedding, EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EmbeddingVector, Extra, GatewayError, JsonMap,
    Protocol, Usage,
};

use super::{bare_model, from_object, invalid};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBatch {
    requests: Vec<WireEmbed>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEmbed {
    model: String,
    content: WireContent,
    #[serde(default, alias = "output_dimensionality")]
    output_dimensionality: Option<u32>,
    /// `taskType`, `title`, …: the same for every input, as the IR keeps them once.
    #[serde(flatten)]
    extra: JsonMap,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireContent {
    parts: Vec<WireTextPart>,
    #[serde(default)]
    #[allow(dead_code)]
    role: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireTextPart {
    text: String,
}

/// The task type and title of an embedding request, wherever the client spelled them.
fn task_and_title(req: &EmbeddingRequest) -> [(&'static str, &'static str, Option<&Value>); 2] {
    let get = |camel: &str, snake: &str| req.extra.fields.get(camel).or_else(|| req.extra.fields.get(snake));
    [("taskType", "task_type", get("taskType", "task_type")), ("title", "title", get("title", "title"))]
}

fn texts(req: &EmbeddingRequest) -> Result<&[String], GatewayError> {
    match &req.input {
        EmbeddingInput::Texts(texts) => Ok(texts),
        EmbeddingInput::Tokens(_) => Err(invalid("input", "Gemini embeds text only, not token ids.")),
    }
}

/// A `batchEmbedContents` body for `model`: one request per input.
pub fn encode_embedding_request(req: &EmbeddingRequest, model: &str) -> Result<JsonMap, GatewayError> {
    let model = format!("models/{}", bare_model(model));
    let requests: Vec<Value> = texts(req)?
        .iter()
        .map(|text| {
            let mut r = Map::new();
            r.insert("model".into(), model.clone().into());
            r.insert("content".into(), json!({ "parts": [{ "text": text }] }));
            if let Some(d) = req.dimensions {
                r.insert("outputDimensionality".into(), d.into());
            }
            for (key, _, value) in task_and_title(req) {
                if let Some(v) = value {
                    r.insert(key.into(), v.clone());
                }
            }
            Value::Object(r)
        })
        .collect();
    Ok(Map::from_iter([("requests".to_string(), Value::Array(requests))]))
}

/// A Vertex AI `:predict` body for the embedding models (`instances` with `content`, `task_type`
/// and `title`; `parameters.outputDimensionality`).
pub fn encode_vertex_embedding_request(req: &EmbeddingRequest) -> Result<JsonMap, GatewayError> {
    let instances: Vec<Value> = texts(req)?
        .iter()
        .map(|text| {
            let mut i = Map::new();
            i.insert("content".into(), text.clone().into());
            for (_, key, value) in task_and_title(req) {
                if let Some(v) = value {
                    i.insert(key.into(), v.clone());
                }
            }
            Value::Object(i)
        })
        .collect();
    let mut body = Map::from_iter([("instances".to_string(), Value::Array(instances))]);
    if let Some(d) = req.dimensions {
        body.insert("parameters".into(), json!({ "outputDimensionality": d }));
    }
    Ok(body)
}

/// Decodes a `batchEmbedContents` body (for the mock and a Gemini surface). The IR holds one
/// model, dimension and task for all inputs: requests that differ in them are a 400, as is an
/// input that is not one text part.
pub fn decode_embedding_request(body: &JsonMap) -> Result<EmbeddingRequest, GatewayError> {
    let wire: WireBatch = from_object(body)?;
    let Some(first) = wire.requests.first() else {
        return Err(invalid("requests", "requests must not be empty."));
    };
    let (model, dimensions, extra) = (first.model.clone(), first.output_dimensionality, first.extra.clone());
    let mut texts = Vec::with_capacity(wire.requests.len());
    for (i, r) in wire.requests.into_iter().enumerate() {
        if r.model != model || r.output_dimensionality != dimensions || r.extra != extra {
            return Err(invalid(
                format!("requests[{i}]"),
                "Every request of a batch must name the same model, outputDimensionality, taskType and title here.",
            ));
        }
        match <[WireTextPart; 1]>::try_from(r.content.parts) {
            Ok([part]) => texts.push(part.text),
            Err(_) => return Err(invalid(format!("requests[{i}].content.parts"), "Each input must be one text part.")),
        }
    }
    Ok(EmbeddingRequest {
        model: bare_model(&model).to_string(),
        input: EmbeddingInput::Texts(texts),
        dimensions,
        encoding_format: None,
        user: None,
        extra: Extra { protocol: Some(Protocol::Gemini), fields: extra },
    })
}

/// Decodes an embedding answer leniently: `embeddings[].values` (batch), `embedding.values`
/// (single), or Vertex's `predictions[].embeddings.values`. Tokens are Gemini's
/// `usageMetadata.promptTokenCount`, or the sum of Vertex's per-input counts. The answer does not
/// name its model: the caller knows it.
pub fn decode_embedding_response(v: &Value) -> EmbeddingResponse {
    let vectors: Vec<&Value> = if let Some(list) = v.get("embeddings").and_then(Value::as_array) {
        list.iter().collect()
    } else if let Some(one) = v.get("embedding") {
        vec![one]
    } else {
        v.get("predictions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| p.get("embeddings").unwrap_or(&Value::Null))
            .collect()
    };
    let data = vectors
        .iter()
        .enumerate()
        .map(|(i, e)| Embedding {
            index: i as u32,
            vector: EmbeddingVector::Float(
                e.get("values")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|x| x.as_f64().unwrap_or(0.0) as f32)
                    .collect(),
            ),
        })
        .collect();
    let counted = v.pointer("/usageMetadata/promptTokenCount").and_then(Value::as_u64);
    let per_input: u64 =
        vectors.iter().filter_map(|e| e.pointer("/statistics/token_count").and_then(Value::as_u64)).sum();
    EmbeddingResponse {
        model: String::new(),
        data,
        usage: Usage { input_tokens: counted.unwrap_or(per_input), ..Default::default() },
    }
}

/// Encodes an IR embedding answer as a `batchEmbedContents` answer, in input order.
pub fn encode_embedding_response(r: &EmbeddingResponse) -> Value {
    let mut data: Vec<&Embedding> = r.data.iter().collect();
    data.sort_by_key(|e| e.index);
    let embeddings: Vec<Value> = data.iter().map(|e| json!({ "values": floats(&e.vector) })).collect();
    let mut body = Map::from_iter([("embeddings".to_string(), Value::Array(embeddings))]);
    if r.usage.input_tokens > 0 {
        body.insert(
            "usageMetadata".into(),
            json!({ "promptTokenCount": r.usage.input_tokens, "totalTokenCount": r.usage.input_tokens }),
        );
    }
    Value::Object(body)
}

/// A vector as floats; OpenAI's base64 form is little-endian f32s.
fn floats(v: &EmbeddingVector) -> Vec<f32> {
    match v {
        EmbeddingVector::Float(f) => f.clone(),
        EmbeddingVector::Base64(b) => {
            base64_bytes(b).chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        }
    }
}

/// Standard base64 to bytes; characters outside the alphabet are skipped.
fn base64_bytes(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(texts: &[&str]) -> EmbeddingRequest {
        EmbeddingRequest {
            model: "gemini-embedding-001".into(),
            input: EmbeddingInput::Texts(texts.iter().map(|t| t.to_string()).collect()),
            dimensions: Some(768),
            encoding_format: None,
            user: None,
            extra: Extra {
                protocol: Some(Protocol::OpenAi),
                fields: JsonMap::from_iter([("task_type".to_string(), json!("RETRIEVAL_QUERY"))]),
            },
        }
    }

    #[test]
    fn batch_requests_both_ways() {
        let body = encode_embedding_request(&request(&["a", "b"]), "models/gemini-embedding-001").unwrap_or_default();
        assert_eq!(
            body["requests"][1],
            json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]},
                   "outputDimensionality": 768, "taskType": "RETRIEVAL_QUERY"})
        );
        let ir = decode_embedding_request(&body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ir.input, EmbeddingInput::Texts(vec!["a".into(), "b".into()]));
        assert_eq!(ir.extra.fields.get("taskType"), Some(&json!("RETRIEVAL_QUERY")));
        assert_eq!(encode_embedding_request(&ir, &ir.model).ok(), Some(body));
        let tokens = EmbeddingRequest { input: EmbeddingInput::Tokens(vec![vec![1]]), ..request(&[]) };
        assert_eq!(encode_embedding_request(&tokens, "m").err().and_then(|e| e.param), Some("input".into()));
        let mixed = json!({"requests": [
            {"model": "models/a", "content": {"parts": [{"text": "x"}]}},
            {"model": "models/b", "content": {"parts": [{"text": "y"}]}}]});
        assert!(decode_embedding_request(mixed.as_object().unwrap_or(&Map::new())).is_err());
    }

    #[test]
    fn vertex_predict_and_base64_vectors() {
        let body = encode_vertex_embedding_request(&request(&["Hello"])).unwrap_or_default();
        assert_eq!(
            Value::Object(body),
            json!({"instances": [{"content": "Hello", "task_type": "RETRIEVAL_QUERY"}], "parameters": {"outputDimensionality": 768}})
        );
        // 1.0f32 and -2.0f32, little-endian.
        let r = EmbeddingResponse {
            model: "m".into(),
            data: vec![Embedding { index: 0, vector: EmbeddingVector::Base64("AACAPwAAAMA=".into()) }],
            usage: Usage { input_tokens: 3, ..Default::default() },
        };
        let v = encode_embedding_response(&r);
        assert_eq!(v["embeddings"][0]["values"], json!([1.0, -2.0]));
        assert_eq!(decode_embedding_response(&v).usage.input_tokens, 3);
    }
}
