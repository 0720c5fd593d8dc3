//! Bedrock's errors: a status, the error type in the `x-amzn-errortype` header
//! (`ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/`), and a body
//! `{"message": …}`. In a stream, an exception event whose type is the error's, camel-cased.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_types::{ErrorKind, GatewayError};

use super::stream::Frame;

/// Bedrock runtime's error types and their statuses, from its API model, and the AWS-wide
/// authentication errors a request can also meet.
const TYPES: &[(&str, u16)] = &[
    ("ValidationException", 400),
    ("ServiceQuotaExceededException", 400),
    ("ConflictException", 400),
    ("AccessDeniedException", 403),
    ("UnrecognizedClientException", 403),
    ("InvalidSignatureException", 403),
    ("ExpiredTokenException", 403),
    ("ResourceNotFoundException", 404),
    ("ModelTimeoutException", 408),
    ("ModelErrorException", 424),
    ("ModelStreamErrorException", 424),
    ("ThrottlingException", 429),
    ("ModelNotReadyException", 429),
    ("InternalServerException", 500),
    ("ServiceUnavailableException", 503),
];

/// The exceptions a ConverseStream can carry, by type and event name.
const STREAM_EXCEPTIONS: &[(&str, &str)] = &[
    ("ThrottlingException", "throttlingException"),
    ("ModelStreamErrorException", "modelStreamErrorException"),
    ("ValidationException", "validationException"),
    ("InternalServerException", "internalServerException"),
    ("ServiceUnavailableException", "serviceUnavailableException"),
];

/// The bare type a header or body names: `ValidationException:http://…` and
/// `com.amazon.coral.service#ValidationException` are both `ValidationException`.
fn bare_type(raw: &str) -> &str {
    let t = raw.split(':').next().unwrap_or_default();
    t.rsplit('#').next().unwrap_or_default().trim()
}

fn known(t: &str) -> Option<(&'static str, u16)> {
    TYPES.iter().find(|(name, _)| name.eq_ignore_ascii_case(t)).copied()
}

/// Reads an upstream error: the status as Bedrock answered it, the type from the
/// `x-amzn-errortype` header (or the body's `__type`, as some AWS front ends write it). A body
/// that is not JSON is read as OpenAI's codec reads one.
pub fn decode_error(status: u16, body: &[u8], error_type: Option<&str>, retry_after: Option<Duration>) -> GatewayError {
    let v = serde_json::from_slice::<Value>(body).ok();
    let from_body = v.as_ref().and_then(|v| v.get("__type")).and_then(Value::as_str);
    let kind = error_type.or(from_body).map(bare_type).filter(|t| !t.is_empty());
    // A status that is not an error's (a body read alone) is the type's own.
    let status = if status >= 400 { status } else { kind.and_then(known).map_or(502, |(_, s)| s) };
    let message = v.as_ref().and_then(|v| v.get("message").or_else(|| v.get("Message"))).and_then(Value::as_str);
    let mut err = match message {
        Some(m) => GatewayError::upstream(status, m),
        None => crate::openai::decode_error(status, body, None),
    };
    err.upstream_type = kind.map(|k| known(k).map_or(k, |(name, _)| name).to_string());
    err.retry_after = retry_after;
    err
}

/// Renders an error as Bedrock would: its type, for the `x-amzn-errortype` header, and the body.
/// The status is the error's `http_status()`.
pub fn encode_error(e: &GatewayError) -> (&'static str, Value) {
    (type_for(e), json!({ "message": e.message }))
}

/// Bedrock's own type when the error came from Bedrock; otherwise the type Bedrock gives its
/// errors of that status.
fn type_for(e: &GatewayError) -> &'static str {
    if let Some((name, _)) = e.upstream_type.as_deref().map(bare_type).and_then(known) {
        return name;
    }
    match (e.kind, e.http_status()) {
        (ErrorKind::BudgetExceeded, _) => "ServiceQuotaExceededException",
        (_, 401 | 403) => "AccessDeniedException",
        (_, 404) => "ResourceNotFoundException",
        (_, 408 | 504) => "ModelTimeoutException",
        (_, 424) => "ModelErrorException",
        (_, 429) => "ThrottlingException",
        (_, 503 | 529) => "ServiceUnavailableException",
        (_, s) if s >= 500 => "InternalServerException",
        _ => "ValidationException",
    }
}

/// An exception event of a stream, or `None` for any other event. The status is the type's,
/// as Bedrock's API model gives it (424 for a model's failure mid-stream).
pub(crate) fn decode_exception(event_type: &str, payload: &Value) -> Option<GatewayError> {
    if !event_type.ends_with("Exception") {
        return None;
    }
    let (name, status) = known(event_type).unwrap_or(("", 502));
    let message = payload.get("message").and_then(Value::as_str).map_or_else(|| payload.to_string(), str::to_string);
    let mut err = GatewayError::upstream(status, message);
    err.upstream_type = Some(if name.is_empty() { event_type.to_string() } else { name.to_string() });
    Some(err)
}

/// An error as the exception event a stream can carry: its own type when it is one of those,
/// else the one of its status.
pub(crate) fn exception_event(e: &GatewayError) -> Frame {
    let t = type_for(e);
    let t = match STREAM_EXCEPTIONS.iter().find(|(name, _)| *name == t) {
        Some(_) => t,
        None => match known(t).map(|(_, s)| s) {
            Some(429) => "ThrottlingException",
            Some(503) => "ServiceUnavailableException",
            Some(408 | 424) => "ModelStreamErrorException",
            Some(s) if s < 500 => "ValidationException",
            _ => "InternalServerException",
        },
    };
    let event = STREAM_EXCEPTIONS.iter().find(|(name, _)| *name == t).map_or("internalServerException", |(_, ev)| ev);
    (event, json!({ "message": e.message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_give_their_statuses_and_come_back() {
        let header = "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/";
        let e = decode_error(
            429,
            br#"{"message":"Too many requests, please wait before trying again."}"#,
            Some(header),
            None,
        );
        assert_eq!((e.http_status(), e.upstream_type.as_deref()), (429, Some("ThrottlingException")));
        assert_eq!(
            encode_error(&e),
            ("ThrottlingException", json!({"message": "Too many requests, please wait before trying again."}))
        );
        for (t, status) in [
            ("ValidationException", 400),
            ("AccessDeniedException", 403),
            ("ResourceNotFoundException", 404),
            ("ModelTimeoutException", 408),
            ("ModelErrorException", 424),
            ("ModelNotReadyException", 429),
            ("InternalServerException", 500),
            ("ServiceUnavailableException", 503),
        ] {
            let e = decode_error(0, br#"{"message":"m"}"#, Some(t), None);
            assert_eq!(e.http_status(), status, "{t}");
            assert_eq!(encode_error(&e).0, t);
        }
        let coral = decode_error(
            400,
            br#"{"__type":"com.amazon.coral.validate#ValidationException","Message":"bad"}"#,
            None,
            None,
        );
        assert_eq!((coral.message.as_str(), coral.upstream_type.as_deref()), ("bad", Some("ValidationException")));
    }

    #[test]
    fn other_errors_take_the_type_of_their_status() {
        let cases = [
            (GatewayError::new(ErrorKind::Authentication, "no key"), "AccessDeniedException"),
            (GatewayError::new(ErrorKind::NotFound, "no model"), "ResourceNotFoundException"),
            (GatewayError::new(ErrorKind::RateLimited, "slow"), "ThrottlingException"),
            (GatewayError::new(ErrorKind::BudgetExceeded, "spent"), "ServiceQuotaExceededException"),
            (GatewayError::new(ErrorKind::Timeout, "late"), "ModelTimeoutException"),
            (GatewayError::upstream(529, "Overloaded"), "ServiceUnavailableException"),
            (GatewayError::upstream(502, "bad gateway"), "InternalServerException"),
            (GatewayError::invalid("bad"), "ValidationException"),
        ];
        for (e, t) in cases {
            assert_eq!(encode_error(&e).0, t, "{e}");
        }
        let text = decode_error(500, b"upstream exploded", None, None);
        assert_eq!((text.http_status(), text.message.as_str(), text.upstream_type), (500, "upstream exploded", None));
    }

    #[test]
    fn stream_exceptions_use_the_five_stream_types() {
        assert_eq!(exception_event(&GatewayError::new(ErrorKind::Timeout, "t")).0, "modelStreamErrorException");
        assert_eq!(exception_event(&GatewayError::new(ErrorKind::NotFound, "n")).0, "validationException");
        assert_eq!(exception_event(&GatewayError::upstream(503, "u")).0, "serviceUnavailableException");
        assert_eq!(decode_exception("messageStop", &json!({})), None);
        let odd = decode_exception("newKindOfException", &json!({"message": "?"}));
        assert_eq!(odd.map(|e| (e.http_status(), e.upstream_type)), Some((502, Some("newKindOfException".into()))));
    }
}
