//! Schemas both ways. The IR holds JSON Schema. Gemini takes it as it is in
//! `parametersJsonSchema` and `responseJsonSchema` (the older `parameters` and `responseSchema`
//! take an OpenAPI 3.0 subset with upper-case types and refuse unknown keywords), so requests go
//! out with the JSON Schema fields and the OpenAPI forms are converted when a client sends them.

use serde_json::{Map, Value};

/// Keywords whose value is one sub-schema.
const ONE: &[&str] = &["items", "additionalProperties", "not", "contains", "propertyNames"];
/// Keywords whose value is a list of sub-schemas.
const LIST: &[&str] = &["anyOf", "oneOf", "allOf", "prefixItems"];
/// Keywords whose value maps names to sub-schemas.
const MAP: &[&str] = &["properties", "$defs", "definitions", "patternProperties"];

/// Applies `f` to every sub-schema of `schema` (not to `schema` itself), leaving values that are
/// data (`enum`, `default`, `example`, `required`) alone.
fn map_children(schema: &mut Map<String, Value>, f: &dyn Fn(&Value) -> Value) {
    for (key, value) in schema.iter_mut() {
        let key = key.as_str();
        if ONE.contains(&key) && value.is_object() {
            *value = f(value);
        } else if LIST.contains(&key)
            && let Value::Array(items) = value
        {
            items.iter_mut().for_each(|s| *s = f(s));
        } else if MAP.contains(&key)
            && let Value::Object(named) = value
        {
            named.values_mut().for_each(|s| *s = f(s));
        }
    }
}

/// An OpenAPI-subset schema (`parameters`, `responseSchema`) as JSON Schema: types in lower case
/// (`STRING` → `string`) and `nullable: true` as a `null` type.
pub(crate) fn openapi_to_json_schema(schema: &Value) -> Value {
    let Value::Object(obj) = schema else { return schema.clone() };
    let mut out = obj.clone();
    map_children(&mut out, &openapi_to_json_schema);
    let nullable = out.remove("nullable").is_some_and(|n| n == Value::Bool(true));
    let ty = match out.remove("type") {
        Some(Value::String(t)) if t.eq_ignore_ascii_case("TYPE_UNSPECIFIED") => None,
        Some(Value::String(t)) => Some(Value::String(t.to_ascii_lowercase())),
        other => other,
    };
    let kept = match (ty, nullable) {
        (Some(t), true) => Some(("type", Value::Array(vec![t, "null".into()]))),
        (Some(t), false) => Some(("type", t)),
        (None, true) => Some(("nullable", true.into())),
        (None, false) => None,
    };
    if let Some((key, value)) = kept {
        out.insert(key.into(), value);
    }
    Value::Object(out)
}

/// JSON Schema as Gemini accepts it. Unsupported keywords are ignored by Gemini, but a `$ref`
/// with siblings is refused ("no other properties may be set"); pydantic writes
/// `{"$ref": …, "description": …}`, so the reference moves into a one-branch `anyOf` that keeps
/// the description's meaning.
pub(crate) fn json_schema_for_gemini(schema: &Value) -> Value {
    let Value::Object(obj) = schema else { return schema.clone() };
    let mut out = obj.clone();
    map_children(&mut out, &json_schema_for_gemini);
    let has_siblings = out.keys().any(|k| !k.starts_with('$'));
    if out.contains_key("$ref") && has_siblings {
        let (refs, rest): (Map<String, Value>, Map<String, Value>) =
            out.into_iter().partition(|(k, _)| k.starts_with('$'));
        let mut wrapped = rest;
        wrapped.insert("anyOf".into(), Value::Array(vec![Value::Object(refs)]));
        return Value::Object(wrapped);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn openapi_types_become_json_schema() {
        let s = json!({"type": "OBJECT", "properties": {
            "password": {"type": "STRING", "title": "Password"},
            "tags": {"type": "ARRAY", "items": {"type": "STRING", "enum": ["A", "B"]}, "nullable": true},
            "n": {"anyOf": [{"type": "INTEGER"}, {"type": "NULL"}]}
        }, "required": ["password"]});
        assert_eq!(
            openapi_to_json_schema(&s),
            json!({"type": "object", "properties": {
                "password": {"type": "string", "title": "Password"},
                "tags": {"type": ["array", "null"], "items": {"type": "string", "enum": ["A", "B"]}},
                "n": {"anyOf": [{"type": "integer"}, {"type": "null"}]}
            }, "required": ["password"]})
        );
        // Already JSON Schema: unchanged.
        let js = json!({"type": "object", "properties": {"x": {"type": "integer"}}});
        assert_eq!(openapi_to_json_schema(&js), js);
    }

    #[test]
    fn refs_with_siblings_are_wrapped() {
        let s = json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/A", "description": "the a"}},
                       "$defs": {"A": {"type": "string"}}});
        let out = json_schema_for_gemini(&s);
        assert_eq!(out["properties"]["a"], json!({"description": "the a", "anyOf": [{"$ref": "#/$defs/A"}]}));
        assert_eq!(out["$defs"], s["$defs"]);
        assert_eq!(json_schema_for_gemini(&out), out, "idempotent");
    }
}
