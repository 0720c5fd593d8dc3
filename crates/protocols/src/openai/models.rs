//! `GET /v1/models`.

use serde_json::{Value, json};

pub struct ModelEntry<'a> {
    pub id: &'a str,
    pub owned_by: &'a str,
    pub created: u64,
}

pub fn encode_model_list<'a>(models: impl IntoIterator<Item = ModelEntry<'a>>) -> Value {
    let data: Vec<Value> = models
        .into_iter()
        .map(|m| json!({"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by}))
        .collect();
    json!({"object": "list", "data": data})
}
