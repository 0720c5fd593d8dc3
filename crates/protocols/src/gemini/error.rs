//! Google's error body: `{"error": {"code": 400, "message", "status": "INVALID_ARGUMENT",
//! "details": [ErrorInfo, RetryInfo, BadRequest, …]}}`.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_types::{ErrorKind, GatewayError};

const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";
const RETRY_INFO: &str = "type.googleapis.com/google.rpc.RetryInfo";
const BAD_REQUEST: &str = "type.googleapis.com/google.rpc.BadRequest";

/// Reads an upstream error body (Google's shape, or anything else). The error keeps the
/// provider's status, its status name as `upstream_type`, and the `ErrorInfo` reason as `code`;
/// its kind says what it means: an invalid API key comes as a 400 `INVALID_ARGUMENT` with the
/// reason `API_KEY_INVALID`, and is an authentication error.
pub fn decode_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> GatewayError {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    // A JSON-array stream (no `alt=sse`) wraps its error in the array.
    let parsed = match parsed {
        Some(Value::Array(mut items)) if !items.is_empty() => Some(items.swap_remove(0)),
        other => other,
    };
    let mut err = match parsed.as_ref().and_then(|v| v.get("error")) {
        Some(e) => decode_error_value(e, status),
        None => plain(status, body),
    };
    if retry_after.is_some() {
        err.retry_after = retry_after;
    }
    err
}

fn plain(status: u16, body: &[u8]) -> GatewayError {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let message = if text.is_empty() {
        format!("The provider answered with status {status} and no body.")
    } else {
        text.chars().take(2000).collect()
    };
    let mut err = GatewayError::new(kind_of(None, None, status), message);
    err.status = Some(status);
    err
}

pub(crate) fn decode_error_value(e: &Value, status: u16) -> GatewayError {
    let message = match e {
        Value::String(s) => s.clone(),
        _ => e.get("message").and_then(Value::as_str).map_or_else(|| e.to_string(), str::to_string),
    };
    let google_status = e.get("status").and_then(Value::as_str);
    let detail = |kind: &str| {
        e.get("details")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|d| d.get("@type").and_then(Value::as_str) == Some(kind))
    };
    let reason = detail(ERROR_INFO).and_then(|d| d.get("reason")).and_then(Value::as_str);
    let mut err = GatewayError::new(kind_of(google_status, reason, status), message);
    err.status = Some(status);
    err.upstream_type = google_status.map(str::to_string);
    err.code = reason.map(str::to_string);
    err.param = detail(BAD_REQUEST)
        .and_then(|d| d.pointer("/fieldViolations/0/field"))
        .and_then(Value::as_str)
        .map(str::to_string);
    err.retry_after = detail(RETRY_INFO).and_then(|d| d.get("retryDelay")).and_then(Value::as_str).and_then(duration);
    err
}

/// What a Google error means, from its status name, reason, and HTTP status.
fn kind_of(google_status: Option<&str>, reason: Option<&str>, http: u16) -> ErrorKind {
    if matches!(reason, Some("API_KEY_INVALID" | "API_KEY_EXPIRED")) {
        return ErrorKind::Authentication;
    }
    match google_status {
        Some("INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE") => ErrorKind::InvalidRequest,
        Some("UNAUTHENTICATED") => ErrorKind::Authentication,
        Some("PERMISSION_DENIED") => ErrorKind::Permission,
        Some("NOT_FOUND") => ErrorKind::NotFound,
        Some("RESOURCE_EXHAUSTED") => ErrorKind::RateLimited,
        Some("DEADLINE_EXCEEDED") => ErrorKind::Timeout,
        Some(_) => ErrorKind::Upstream,
        None => match http {
            400 => ErrorKind::InvalidRequest,
            401 => ErrorKind::Authentication,
            403 => ErrorKind::Permission,
            404 => ErrorKind::NotFound,
            413 => ErrorKind::PayloadTooLarge,
            429 => ErrorKind::RateLimited,
            504 => ErrorKind::Timeout,
            _ => ErrorKind::Upstream,
        },
    }
}

/// A protobuf duration (`"37s"`, `"0.5s"`).
fn duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.strip_suffix('s')?.parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

/// Renders an error in Google's shape. An upstream error keeps Google's status name and reason;
/// the parameter at fault and the wait before a retry go in the details Google uses for them.
pub fn encode_error(e: &GatewayError) -> Value {
    let code = e.http_status();
    let status = e.upstream_type.clone().unwrap_or_else(|| status_name(e.kind, code).to_string());
    let mut details = Vec::new();
    if let Some(reason) = &e.code {
        details.push(json!({ "@type": ERROR_INFO, "reason": reason, "domain": "googleapis.com" }));
    }
    if let Some(field) = &e.param {
        details
            .push(json!({ "@type": BAD_REQUEST, "fieldViolations": [{ "field": field, "description": e.message }] }));
    }
    if let Some(after) = e.retry_after {
        details.push(json!({ "@type": RETRY_INFO, "retryDelay": format!("{}s", after.as_secs_f64()) }));
    }
    let mut error = json!({ "code": code, "message": e.message, "status": status });
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    json!({ "error": error })
}

/// Google's status name (`google.rpc.Code`) for an error of the gateway's own.
fn status_name(kind: ErrorKind, http: u16) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::PayloadTooLarge | ErrorKind::GuardrailBlocked => "INVALID_ARGUMENT",
        ErrorKind::Authentication => "UNAUTHENTICATED",
        ErrorKind::Permission => "PERMISSION_DENIED",
        ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::RateLimited | ErrorKind::BudgetExceeded => "RESOURCE_EXHAUSTED",
        ErrorKind::Timeout => "DEADLINE_EXCEEDED",
        ErrorKind::Unavailable => "UNAVAILABLE",
        ErrorKind::Internal => "INTERNAL",
        ErrorKind::Upstream => match http {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            429 => "RESOURCE_EXHAUSTED",
            503 => "UNAVAILABLE",
            504 => "DEADLINE_EXCEEDED",
            _ => "INTERNAL",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_carry_their_retry_delay() {
        let body = br#"{"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}"#;
        let e = decode_error(429, body, None);
        assert_eq!(
            (e.kind, e.http_status(), e.retry_after),
            (ErrorKind::RateLimited, 429, Some(Duration::from_secs(37)))
        );
        assert_eq!(decode_error(429, body, Some(Duration::from_secs(2))).retry_after, Some(Duration::from_secs(2)));
        let back = encode_error(&e);
        assert_eq!(back["error"]["status"], "RESOURCE_EXHAUSTED");
        assert_eq!(back["error"]["details"][0]["retryDelay"], "37s");
    }

    #[test]
    fn kinds_from_status_names_and_plain_bodies() {
        for (status, name, kind) in [
            (400, "INVALID_ARGUMENT", ErrorKind::InvalidRequest),
            (401, "UNAUTHENTICATED", ErrorKind::Authentication),
            (403, "PERMISSION_DENIED", ErrorKind::Permission),
            (404, "NOT_FOUND", ErrorKind::NotFound),
            (500, "INTERNAL", ErrorKind::Upstream),
            (503, "UNAVAILABLE", ErrorKind::Upstream),
            (504, "DEADLINE_EXCEEDED", ErrorKind::Timeout),
        ] {
            let body = json!({"error": {"code": status, "message": "m", "status": name}}).to_string();
            let e = decode_error(status, body.as_bytes(), None);
            assert_eq!((e.kind, e.http_status()), (kind, status), "{name}");
            assert_eq!(encode_error(&e)["error"]["status"], name);
        }
        let e = decode_error(502, b"<html>bad gateway</html>", None);
        assert_eq!(
            (e.kind, e.http_status(), e.message.as_str()),
            (ErrorKind::Upstream, 502, "<html>bad gateway</html>")
        );
        let wrapped = br#"[{"error": {"code": 400, "message": "Function call is missing a thought_signature", "status": "INVALID_ARGUMENT"}}]"#;
        assert_eq!(decode_error(400, wrapped, None).kind, ErrorKind::InvalidRequest);
    }

    #[test]
    fn the_gateways_own_errors_in_googles_shape() {
        let e = GatewayError::invalid("bad seed").with_param("generationConfig.seed");
        let v = encode_error(&e);
        assert_eq!(v["error"]["code"], 400);
        assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
        assert_eq!(v["error"]["details"][0]["fieldViolations"][0]["field"], "generationConfig.seed");
        let back = decode_error(400, v.to_string().as_bytes(), None);
        assert_eq!(
            (back.kind, back.param.as_deref(), back.message.as_str()),
            (ErrorKind::InvalidRequest, Some("generationConfig.seed"), "bad seed")
        );
    }
}
