//! One request's observation: metrics as it goes, and its request record when it ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};
use prometheus_client::metrics::gauge::Gauge;
use switchyard_policy::{Admissions, Alerts, BudgetHold, Principal, nanos};
use switchyard_router::{Execution, Outcome, Price};
use switchyard_telemetry::{Metrics, ModelLabels, RecordSink, RequestLabels};
use switchyard_types::{AttemptEntry, CaptureMode, ChatResponse, GatewayError, RequestRecord, Usage};

use super::meta::RequestMeta;
use crate::AppState;
use crate::runtime::Runtime;

/// The status logged for a request whose client left before the answer ended (nginx's).
const CLIENT_CLOSED: u16 = 499;

/// What the client was sent, for the record.
#[derive(Debug, Default)]
pub struct Answer {
    pub finish_reasons: Vec<String>,
    pub response_model: Option<String>,
    pub bytes: u64,
    /// The answer's text, when bodies are captured.
    pub body: Option<String>,
}

impl Answer {
    pub fn of_chat(response: &ChatResponse) -> Answer {
        Answer {
            finish_reasons: response.choices.iter().filter_map(|c| c.finish_reason.as_ref()).map(finish_name).collect(),
            response_model: Some(response.model.clone()).filter(|m| !m.is_empty()),
            ..Answer::default()
        }
    }
}

pub fn finish_name(reason: &switchyard_types::FinishReason) -> String {
    serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// One request's measurements. Dropped without `finish_*` (a client that left mid-stream), it
/// records the request as cancelled, so every request is counted and logged once.
pub struct Observed {
    metrics: Arc<Metrics>,
    sink: RecordSink,
    surface: &'static str,
    operation: &'static str,
    started: Instant,
    model: String,
    provider: String,
    in_flight: Gauge,
    finished: bool,
    /// The answering target's price, for the cost.
    price: Option<Price>,
    default_capture: CaptureMode,
    max_body: usize,
    body_read: Duration,
    /// The request's place under its rate limits, held until it ends.
    admission: Option<Admissions>,
    /// Its reservation under its budgets, settled to its cost or given back when it ends.
    budget: BudgetHold,
    alerts: Alerts,
    record: RequestRecord,
}

impl Observed {
    pub fn start(
        state: &AppState,
        rt: &Runtime,
        id: &str,
        surface: &'static str,
        operation: &'static str,
        headers: &HeaderMap,
    ) -> Self {
        let in_flight = state.metrics.in_flight(surface);
        in_flight.inc();
        let trace = TraceContext::from_headers(headers);
        Observed {
            metrics: state.metrics.clone(),
            sink: state.records.clone(),
            surface,
            operation,
            started: Instant::now(),
            model: "none".into(),
            provider: "none".into(),
            in_flight,
            finished: false,
            price: None,
            default_capture: rt.logging.capture,
            max_body: rt.logging.max_body_bytes,
            body_read: Duration::ZERO,
            admission: None,
            budget: BudgetHold::None,
            alerts: state.alerts.clone(),
            record: RequestRecord {
                id: id.to_string(),
                trace_id: trace.trace_id,
                span_id: format!("{:016x}", fastrand::u64(1..)),
                parent_span_id: trace.parent_span_id,
                sampled: trace.sampled,
                received_at_us: switchyard_store::time::now_us(),
                surface: surface.to_string(),
                operation: operation.to_string(),
                capture: rt.logging.capture,
                ..RequestRecord::default()
            },
        }
    }

    /// The authenticated caller: its key, team, and how much of its requests to keep.
    pub fn caller(&mut self, principal: &Principal) {
        self.record.key = Some(principal.name.clone());
        self.record.team.clone_from(&principal.team);
        self.record.capture = principal.capture.unwrap_or(self.default_capture);
    }

    pub fn admitted(&mut self, admissions: Admissions) {
        self.admission = Some(admissions);
    }

    pub fn budget(&mut self, hold: BudgetHold) {
        self.budget = hold;
    }

    /// OpenAI's `x-ratelimit-*` headers, for a key with limits.
    pub fn quota_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        let Some(q) = self.admission.as_ref().and_then(Admissions::quota) else { return h };
        let secs = |d: Duration| HeaderValue::from_str(&format!("{}s", d.as_secs_f64().ceil() as u64));
        if let Some(limit) = q.limit_requests {
            h.insert("x-ratelimit-limit-requests", HeaderValue::from(limit));
            h.insert("x-ratelimit-remaining-requests", HeaderValue::from(q.remaining_requests));
            if let Ok(v) = secs(q.reset_requests) {
                h.insert("x-ratelimit-reset-requests", v);
            }
        }
        if let Some(limit) = q.limit_tokens {
            h.insert("x-ratelimit-limit-tokens", HeaderValue::from(limit));
            h.insert("x-ratelimit-remaining-tokens", HeaderValue::from(q.remaining_tokens));
            if let Ok(v) = secs(q.reset_tokens) {
                h.insert("x-ratelimit-reset-tokens", v);
            }
        }
        h
    }

    /// Whether this request's bodies are kept: only when captured and logged at all.
    pub fn captures_bodies(&self) -> bool {
        self.record.capture == CaptureMode::Full && self.sink.stores()
    }

    /// The request body, and how long the client took to send it (not the gateway's time).
    pub fn request_body(&mut self, body: &[u8], took: Duration) {
        self.body_read = took;
        self.record.request_bytes = body.len() as u64;
        if self.captures_bodies() {
            self.record.request_body = Some(self.cut(body));
        }
    }

    /// The decoded request: its model (as a metric label and in the record) and the caller's
    /// metadata.
    pub fn request(&mut self, rt: &Runtime, requested: &str, stream: bool, meta: RequestMeta) {
        // Configured names are labels as they are; anything else a client invented
        // (`provider/model`) is `direct`, so clients cannot grow the label set.
        self.model = if rt.catalogue.contains(requested) { requested.to_string() } else { "direct".to_string() };
        self.record.requested_model = Some(requested.to_string());
        self.record.stream = stream;
        self.record.user = meta.user;
        self.record.session = meta.session;
        self.record.tags = meta.tags;
        self.record.metadata = meta.metadata;
    }

    /// Records the attempts and the gateway's own time up to now (the first byte), excluding
    /// `routing`, the time spent in the executor: upstream attempts (hedges run side by side)
    /// and the waits between them (backoff, `retry-after`), which are not the gateway's work;
    /// nor the time the client took to send its body.
    pub fn routed<T>(&mut self, exec: &Execution<T>, routing: Duration) {
        self.attempts(exec);
        if let Some((route, _)) = &exec.answered {
            let first_leg = exec.attempts.first().map(|a| a.model.as_str());
            if first_leg.is_some_and(|m| m != route.name) {
                self.metrics.fallback(&self.model);
                self.record.fallback = true;
            }
        }
        let elapsed = self.started.elapsed();
        let overhead = elapsed.saturating_sub(routing).saturating_sub(self.body_read);
        self.metrics.overhead(self.surface, overhead);
        self.record.first_byte_us = Some(micros(elapsed));
        self.record.upstream_us = Some(micros(routing));
        self.record.overhead_us = Some(micros(overhead));
    }

    /// Adds an execution's attempts, and makes its answering target the one that answered.
    fn attempts<T>(&mut self, exec: &Execution<T>) {
        for a in &exec.attempts {
            let (outcome, reason) = match &a.outcome {
                Outcome::Answered => ("answered", None),
                Outcome::Failed(why) => ("failed", Some(why.clone())),
                Outcome::Skipped(why) => ("skipped", Some(why.clone())),
                Outcome::Cancelled => ("cancelled", None),
            };
            self.metrics.attempt(&self.model, &a.provider, outcome);
            self.record.attempts.push(AttemptEntry {
                model: a.model.clone(),
                provider: a.provider.clone(),
                target_model: a.target_model.clone(),
                outcome: outcome.to_string(),
                reason,
                start_us: micros(a.started.saturating_duration_since(self.started)),
                duration_us: micros(a.elapsed),
            });
        }
        if let Some((_, target)) = &exec.answered {
            self.provider = target.provider.name.clone();
            self.price = target.price;
            self.record.provider = Some(target.provider.name.clone());
            self.record.upstream_model = Some(target.model.clone());
        }
    }

    /// The answering stream broke: its attempt failed after all.
    pub fn stream_broke(&mut self, why: &str) {
        if let Some(a) = self.record.attempts.iter_mut().rev().find(|a| a.outcome == "answered") {
            a.outcome = "failed".into();
            a.reason = Some(format!("the stream broke: {why}"));
        }
    }

    /// A broken stream was continued on another attempt (`recover_streams`): its attempts join
    /// the record, and the target that continued prices the usage it reports.
    pub fn continued<T>(&mut self, exec: &Execution<T>) {
        self.attempts(exec);
    }

    /// The first token went out (streams).
    pub fn first_token(&mut self) {
        if self.record.first_token_us.is_some() {
            return;
        }
        let elapsed = self.started.elapsed();
        self.metrics.time_to_first_token(&self.labels(), elapsed);
        self.record.first_token_us = Some(micros(elapsed));
    }

    /// Keeps at most `max_body` bytes of a body, cut at a character boundary.
    fn cut(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        if text.len() <= self.max_body {
            return text.into_owned();
        }
        let mut end = self.max_body;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…[{} more bytes not kept]", &text[..end], text.len() - end)
    }

    /// What was sent of the answer and the usage reported: all of it for an answer that ends
    /// well, the part before the end for one that fails or is abandoned (tokens used are still
    /// counted and priced).
    pub fn answered(&mut self, usage: Option<&Usage>, answer: Answer) {
        if let Some(u) = usage {
            if let Some(a) = &mut self.admission {
                a.settle(u.total_tokens());
            }
            self.metrics.usage(&self.labels(), u);
            if let Some(price) = self.price {
                let cost = price.cost(u);
                self.budget.settle(nanos(cost.total), &self.alerts);
                self.metrics.cost(&self.model, &self.provider, cost.total);
                self.record.cost = Some(cost);
            }
            self.record.usage = Some(*u);
        }
        self.record.finish_reasons = answer.finish_reasons;
        self.record.response_model = answer.response_model;
        self.record.response_bytes = answer.bytes;
        if let Some(body) = answer.body.filter(|_| self.captures_bodies()) {
            self.record.response_body = Some(self.cut(body.as_bytes()));
        }
    }

    pub fn finish_ok(mut self, usage: Option<&Usage>, answer: Answer) {
        self.answered(usage, answer);
        self.record.status = 200;
        self.end("2xx");
    }

    pub fn finish_err(mut self, e: &GatewayError) {
        let status = e.http_status();
        let error_type = error_type(e);
        self.metrics.error(self.surface, &self.model, &error_type);
        self.record.status = status;
        self.record.error_type = Some(error_type);
        self.record.error_message = Some(e.message.clone());
        self.end(if status < 500 { "4xx" } else { "5xx" });
    }

    fn labels(&self) -> ModelLabels {
        ModelLabels {
            gen_ai_operation_name: self.operation,
            gen_ai_request_model: self.model.clone(),
            gen_ai_provider_name: self.provider.clone(),
        }
    }

    fn end(&mut self, status_class: &'static str) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.in_flight.dec();
        let elapsed = self.started.elapsed();
        self.metrics.duration(&self.labels(), elapsed);
        self.metrics.request(RequestLabels {
            surface: self.surface,
            gen_ai_operation_name: self.operation,
            gen_ai_request_model: self.model.clone(),
            gen_ai_provider_name: self.provider.clone(),
            status_class,
        });
        self.metrics.team(self.record.team.as_deref(), self.record.cost.map_or(0.0, |c| c.total));
        if self.sink.is_on() {
            if status_class == "cancelled" {
                self.record.status = CLIENT_CLOSED;
                self.record.error_type = Some("client_closed".into());
            }
            self.record.duration_us = micros(elapsed);
            self.sink.send(std::mem::take(&mut self.record));
        }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The W3C trace context a request joins: the caller's `traceparent`, or a new trace.
struct TraceContext {
    trace_id: String,
    parent_span_id: Option<String>,
    sampled: bool,
}

impl TraceContext {
    fn from_headers(headers: &HeaderMap) -> TraceContext {
        headers.get("traceparent").and_then(|v| v.to_str().ok()).and_then(TraceContext::parse).unwrap_or_else(|| {
            TraceContext { trace_id: format!("{:032x}", fastrand::u128(1..)), parent_span_id: None, sampled: false }
        })
    }

    /// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`; all-zero ids and version `ff` are
    /// invalid, and an invalid header starts a new trace (as the spec asks).
    fn parse(v: &str) -> Option<TraceContext> {
        let parts: Vec<&str> = v.trim().split('-').collect();
        let [version, trace, span, flags, ..] = parts[..] else { return None };
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let valid = hex(version, 2)
            && version != "ff"
            && (version != "00" || parts.len() == 4)
            && hex(trace, 32)
            && hex(span, 16)
            && hex(flags, 2)
            && trace.bytes().any(|b| b != b'0')
            && span.bytes().any(|b| b != b'0');
        let flags = u8::from_str_radix(flags, 16).ok()?;
        valid.then(|| TraceContext {
            trace_id: trace.to_string(),
            parent_span_id: Some(span.to_string()),
            sampled: flags & 1 == 1,
        })
    }
}

/// The gateway's own error codes: a fixed set, so the label stays bounded. Codes a provider chose
/// (any string an upstream sends) are labelled by kind and status class instead.
const OWN_CODES: &[&str] = &[
    "missing_api_key",
    "invalid_api_key",
    "model_not_allowed",
    "model_not_found",
    "empty_array",
    "request_too_large",
    "client_timeout",
    "client_read_stall",
    "first_token_timeout",
    "total_timeout",
    "stream_stall_timeout",
    "upstream_connect_error",
    "upstream_transport_error",
    "upstream_invalid_json",
    "upstream_stream_truncated",
    "upstream_auth_error",
    "upstream_forbidden",
    "no_usable_provider_key",
    "no_available_target",
    "all_targets_rate_limited",
    "context_length_exceeded",
    "content_policy_violation",
    "rate_limit_exceeded",
];

fn error_type(e: &GatewayError) -> String {
    match e.code.as_deref() {
        Some(code) if OWN_CODES.contains(&code) => code.to_string(),
        _ => format!("{}_{}xx", format!("{:?}", e.kind).to_lowercase(), e.http_status() / 100),
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        self.end("cancelled");
    }
}

#[cfg(test)]
mod tests {
    use switchyard_types::ErrorKind;

    use super::*;

    #[test]
    fn traceparent_is_joined_only_when_valid() {
        let t = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .map(|t| (t.trace_id, t.parent_span_id, t.sampled));
        assert_eq!(t, Some(("4bf92f3577b34da6a3ce929d0e0e4736".into(), Some("00f067aa0ba902b7".into()), true)));
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "{bad}");
        }
        assert!(TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-future").is_some());
    }

    #[test]
    fn error_labels_are_bounded() {
        let own = GatewayError::new(ErrorKind::NotFound, "x").with_code("model_not_found");
        assert_eq!(error_type(&own), "model_not_found");
        let theirs = GatewayError::upstream(503, "x").with_code("some-provider-code-8f3a");
        assert_eq!(error_type(&theirs), "upstream_5xx");
        assert_eq!(error_type(&GatewayError::invalid("x")), "invalidrequest_4xx");
    }
}
