//! Anthropic's error body: `{"type": "error", "error": {"type", "message"}}`, also the data of a
//! stream's `error` event.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_types::{ErrorKind, GatewayError};

const TYPES: &[&str] = &[
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "timeout_error",
    "api_error",
    "overloaded_error",
];

/// Renders an error in Anthropic's shape. An upstream error keeps Anthropic's own type when it
/// came from Anthropic; otherwise the type follows the status, as Anthropic's would.
pub fn encode_error(e: &GatewayError) -> Value {
    let kind = match e.upstream_type.as_deref() {
        Some(t) if TYPES.contains(&t) => t,
        _ => match (e.kind, e.http_status()) {
            (ErrorKind::BudgetExceeded, _) => "billing_error",
            (_, 400 | 422) => "invalid_request_error",
            (_, 401) => "authentication_error",
            (_, 402) => "billing_error",
            (_, 403) => "permission_error",
            (_, 404) => "not_found_error",
            (_, 413) => "request_too_large",
            (_, 429) => "rate_limit_error",
            (_, 504) => "timeout_error",
            (_, 503 | 529) => "overloaded_error",
            _ => "api_error",
        },
    };
    json!({"type": "error", "error": {"type": kind, "message": e.message}})
}

/// Reads an upstream error body (Anthropic's shape, or anything else).
pub fn decode_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> GatewayError {
    let mut err = match serde_json::from_slice::<Value>(body) {
        Ok(v) => decode_error_value(v.get("error").unwrap_or(&v), status),
        Err(_) => crate::openai::decode_error(status, body, None),
    };
    err.retry_after = retry_after;
    err
}

pub(crate) fn decode_error_value(e: &Value, status: u16) -> GatewayError {
    let message = e.get("message").and_then(Value::as_str).map_or_else(|| e.to_string(), str::to_string);
    let mut err = GatewayError::upstream(status, message);
    err.upstream_type = e.get("type").and_then(Value::as_str).map(str::to_string);
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_anthropic_or_the_status() {
        let e =
            decode_error(529, br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#, None);
        assert_eq!((e.http_status(), e.message.as_str()), (529, "Overloaded"));
        assert_eq!(encode_error(&e)["error"]["type"], "overloaded_error");
        let openai = crate::openai::decode_error(429, br#"{"error":{"message":"slow down","type":"requests"}}"#, None);
        assert_eq!(encode_error(&openai)["error"]["type"], "rate_limit_error");
        let own = GatewayError::new(ErrorKind::NotFound, "no such model");
        assert_eq!(
            encode_error(&own),
            json!({"type": "error", "error": {"type": "not_found_error", "message": "no such model"}})
        );
    }
}
