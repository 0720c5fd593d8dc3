//! OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_types::{ErrorKind, GatewayError};

/// Renders an error in OpenAI's shape. Upstream errors keep the provider's type and code.
pub fn encode_error(e: &GatewayError) -> Value {
    let default_type = match e.kind {
        ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::PayloadTooLarge => "invalid_request_error",
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::Permission => "permission_error",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::BudgetExceeded => "insufficient_quota",
        ErrorKind::GuardrailBlocked => "guardrail_error",
        ErrorKind::Upstream => "upstream_error",
        ErrorKind::Timeout => "timeout_error",
        ErrorKind::Unavailable => "service_unavailable",
        ErrorKind::Internal => "server_error",
    };
    json!({
        "error": {
            "message": e.message,
            "type": e.upstream_type.as_deref().unwrap_or(default_type),
            "param": e.param,
            "code": e.code,
        }
    })
}

/// Reads an upstream error body (OpenAI's shape, or anything else) into an upstream error with
/// the provider's status and message.
pub fn decode_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> GatewayError {
    let mut err = match serde_json::from_slice::<Value>(body) {
        Ok(v) => decode_error_value(v.get("error").unwrap_or(&v), status),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let message = if text.is_empty() {
                format!("The provider answered with status {status} and no body.")
            } else {
                text.chars().take(2000).collect()
            };
            GatewayError::upstream(status, message)
        }
    };
    err.retry_after = retry_after;
    err
}

pub(crate) fn decode_error_value(e: &Value, status: u16) -> GatewayError {
    let message = match e {
        Value::String(s) => s.clone(),
        _ => e.get("message").and_then(Value::as_str).map_or_else(|| e.to_string(), str::to_string),
    };
    let mut err = GatewayError::upstream(status, message);
    err.upstream_type = e.get("type").and_then(Value::as_str).map(str::to_string);
    err.param = e.get("param").and_then(Value::as_str).map(str::to_string);
    err.code = match e.get("code") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_error_keeps_type_code_and_status() {
        let body = br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
        let e = decode_error(401, body, None);
        assert_eq!(e.http_status(), 401);
        assert_eq!(e.code.as_deref(), Some("invalid_api_key"));
        let back = encode_error(&e);
        assert_eq!(back["error"]["type"], "invalid_request_error");
        assert_eq!(back["error"]["message"], "Incorrect API key provided");
        let plain = decode_error(502, b"<html>Bad gateway</html>", None);
        assert_eq!(plain.message, "<html>Bad gateway</html>");
    }
}
