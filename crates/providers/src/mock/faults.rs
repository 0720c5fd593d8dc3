//! The knobs of the mock, settable per process and per request.

use std::time::Duration;

use serde_json::Value;

/// How the mock misbehaves (or not) for one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Delay before the response headers.
    pub latency: Duration,
    /// Answer with this status and an OpenAI error body instead.
    pub status: Option<u16>,
    /// With `status`: a `retry-after` header, in seconds.
    pub retry_after: Option<u64>,
    /// Fail this fraction of requests with a 500 (0.0–1.0), chosen by a per-process counter so
    /// runs are repeatable.
    pub error_rate: f64,
    /// Number of content chunks a streamed answer is cut into.
    pub chunks: Option<usize>,
    /// Delay between two chunks.
    pub chunk_delay: Duration,
    /// Answer length in words (= tokens).
    pub words: Option<usize>,
    /// Stop sending after this many chunks, keeping the connection open.
    pub stall_after: Option<usize>,
    /// Drop the connection after this many chunks.
    pub cut_after: Option<usize>,
    /// Send broken data: `json` (a non-streamed body that is not JSON) or `sse` (a stream frame
    /// that is not JSON).
    pub malformed: Option<String>,
    /// Apply `status` only to the first N requests this mock receives, then answer normally.
    pub fail_first: Option<u64>,
    /// The `code` in error bodies (`context_length_exceeded`, `content_policy_violation`, …).
    pub error_code: Option<String>,
    /// Answer 401 to requests whose bearer key is this one.
    pub deny_key: Option<String>,
    /// Make this fraction of requests slow (0.0–1.0), evenly spread, for latency-tail tests.
    pub tail_rate: f64,
    /// The extra delay of a slow request.
    pub tail: Duration,
}

impl Faults {
    /// Applies per-request overrides, from headers first and then from the body's `mock` object.
    pub fn overridden(&self, headers: &http::HeaderMap, body: Option<&Value>) -> Faults {
        let mut f = self.clone();
        let mut set = |name: &str, value: String| {
            let num = || value.trim().parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0);
            match name {
                "latency-ms" | "latency_ms" => {
                    f.latency = num().map_or(f.latency, |n| Duration::from_secs_f64(n / 1000.0))
                }
                "status" => f.status = num().map(|n| n as u16).filter(|s| (100..600).contains(s)),
                "retry-after" | "retry_after" => f.retry_after = num().map(|n| n as u64),
                "error-rate" | "error_rate" => f.error_rate = num().unwrap_or(0.0).min(1.0),
                "chunks" => f.chunks = num().map(|n| (n as usize).max(1)),
                "chunk-delay-ms" | "chunk_delay_ms" => {
                    f.chunk_delay = num().map_or(f.chunk_delay, |n| Duration::from_secs_f64(n / 1000.0))
                }
                "words" => f.words = num().map(|n| n as usize),
                "stall-after" | "stall_after" => f.stall_after = num().map(|n| n as usize),
                "cut-after" | "cut_after" => f.cut_after = num().map(|n| n as usize),
                "malformed" => f.malformed = Some(value),
                "fail-first" | "fail_first" => f.fail_first = num().map(|n| n as u64),
                "error-code" | "error_code" => f.error_code = Some(value),
                "deny-key" | "deny_key" => f.deny_key = Some(value),
                "tail-rate" | "tail_rate" => f.tail_rate = num().unwrap_or(0.0).min(1.0),
                "tail-ms" | "tail_ms" => f.tail = num().map_or(f.tail, |n| Duration::from_secs_f64(n / 1000.0)),
                _ => {}
            }
        };
        for (name, value) in headers {
            if let (Some(knob), Ok(v)) = (name.as_str().strip_prefix("x-mock-"), value.to_str()) {
                set(knob, v.to_string());
            }
        }
        if let Some(Value::Object(knobs)) = body.and_then(|b| b.get("mock")) {
            for (k, v) in knobs {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                set(k, v);
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_body_override_defaults() {
        let base = Faults { chunks: Some(4), ..Default::default() };
        let mut h = http::HeaderMap::new();
        h.insert("x-mock-status", http::HeaderValue::from_static("429"));
        h.insert("x-mock-retry-after", http::HeaderValue::from_static("2"));
        let body = serde_json::json!({"mock": {"chunk_delay_ms": 5, "cut_after": 2}});
        let f = base.overridden(&h, Some(&body));
        assert_eq!(f.status, Some(429));
        assert_eq!(f.retry_after, Some(2));
        assert_eq!(f.chunks, Some(4));
        assert_eq!(f.chunk_delay, Duration::from_millis(5));
        assert_eq!(f.cut_after, Some(2));
        // Nonsense values are ignored, not trusted.
        h.insert("x-mock-status", http::HeaderValue::from_static("abc"));
        assert_eq!(base.overridden(&h, None).status, None);
    }
}
