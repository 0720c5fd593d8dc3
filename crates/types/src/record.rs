//! The request record: one wide row per client call, written off the request path.
//!
//! It is what the request log stores, what `/admin/logs` returns, and what traces are built
//! from, so each of those reads the same facts. Times are microseconds: `received_at_us` since
//! the Unix epoch, the others since `received_at_us`, so one clock reading anchors the rest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Usage;

/// How much of a call the request log keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureMode {
    /// The record and both bodies.
    Full,
    /// The record without any body bytes.
    #[default]
    Metadata,
    /// No record is stored (metrics and traces still see the call).
    None,
}

impl CaptureMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureMode::Full => "full",
            CaptureMode::Metadata => "metadata",
            CaptureMode::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<CaptureMode> {
        match s {
            "full" => Some(CaptureMode::Full),
            "metadata" => Some(CaptureMode::Metadata),
            "none" => Some(CaptureMode::None),
            _ => None,
        }
    }
}

/// Dollars, by token type. `total` is their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
    pub total: f64,
}

/// One upstream attempt of a call (or a target the router skipped, with why).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptEntry {
    /// The configured model (route) the attempt served.
    pub model: String,
    pub provider: String,
    /// The model name the provider was asked for.
    pub target_model: String,
    /// `answered`, `failed`, `skipped` or `cancelled` (a hedge that lost).
    pub outcome: String,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub start_us: i64,
    pub duration_us: i64,
}

/// One client call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// The `x-request-id` the client got (a UUIDv7, so ids sort by time).
    pub id: String,
    /// W3C trace context: 32 and 16 lowercase hex digits. The trace is the caller's when it sent
    /// a `traceparent`, whose span is then `parent_span_id`.
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    /// Whether the trace is sampled (the caller's flag, or the configured rate).
    pub sampled: bool,

    pub received_at_us: i64,
    /// When the answering attempt's upstream answer began: its first event for streams, the whole
    /// answer otherwise.
    pub first_byte_us: Option<i64>,
    /// When the first token went to the client (streams only).
    pub first_token_us: Option<i64>,
    /// When the last byte went to the client.
    pub duration_us: i64,
    /// Time spent in upstream attempts and the waits between them.
    pub upstream_us: Option<i64>,
    /// The gateway's own time before the first byte: everything but `upstream_us`.
    pub overhead_us: Option<i64>,

    pub key: Option<String>,
    pub team: Option<String>,
    pub user: Option<String>,
    pub session: Option<String>,
    pub tags: Vec<String>,
    pub metadata: BTreeMap<String, String>,

    /// The protocol the client spoke (`openai`, `anthropic`).
    pub surface: String,
    /// `chat` or `embeddings`.
    pub operation: String,
    pub requested_model: Option<String>,
    pub provider: Option<String>,
    /// The model name the answering provider was asked for.
    pub upstream_model: Option<String>,
    /// The model the provider says answered.
    pub response_model: Option<String>,
    pub stream: bool,

    /// The HTTP status the client got; 499 when it left before the answer ended.
    pub status: u16,
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    pub attempts: Vec<AttemptEntry>,
    /// Another model than the one asked for answered.
    pub fallback: bool,
    pub finish_reasons: Vec<String>,
    /// `hit`, `miss` or `bypass` once a response cache exists; `None` until then.
    pub cache_status: Option<String>,

    pub usage: Option<Usage>,
    pub cost: Option<Cost>,

    pub capture: CaptureMode,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
}

impl RequestRecord {
    /// The end of the call, since the epoch.
    pub fn ended_at_us(&self) -> i64 {
        self.received_at_us.saturating_add(self.duration_us)
    }

    pub fn is_error(&self) -> bool {
        self.status >= 400
    }
}
