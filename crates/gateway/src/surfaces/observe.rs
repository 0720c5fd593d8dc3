//! Per-request metrics: started when a request arrives, finished when its answer ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;
use switchyard_router::{Execution, Outcome};
use switchyard_telemetry::{Metrics, ModelLabels, RequestLabels};
use switchyard_types::{GatewayError, Usage};

use crate::runtime::Runtime;

/// One request's measurements. Dropped without `finish_*` (a client that left mid-stream), it
/// records the request as `cancelled`, so every request is counted once.
pub struct Observed {
    metrics: Arc<Metrics>,
    surface: &'static str,
    operation: &'static str,
    started: Instant,
    model: String,
    provider: String,
    in_flight: Gauge,
    finished: bool,
}

impl Observed {
    pub fn start(metrics: &Arc<Metrics>, surface: &'static str, operation: &'static str) -> Self {
        let in_flight = metrics.in_flight(surface);
        in_flight.inc();
        Observed {
            metrics: metrics.clone(),
            surface,
            operation,
            started: Instant::now(),
            model: "none".into(),
            provider: "none".into(),
            in_flight,
            finished: false,
        }
    }

    /// The requested model, as a label: configured names as they are; anything else a client
    /// invented (`provider/model`) as `direct`, so clients cannot grow the label set.
    pub fn model(&mut self, rt: &Runtime, requested: &str) {
        self.model = if rt.catalogue.contains(requested) { requested.to_string() } else { "direct".to_string() };
    }

    /// Records the attempts and the gateway's own time up to now (the first byte), excluding
    /// `routing`, the time spent in the executor: upstream attempts (hedges run side by side)
    /// and the waits between them (backoff, `retry-after`), which are not the gateway's work.
    pub fn routed<T>(&mut self, exec: &Execution<T>, routing: Duration) {
        for a in &exec.attempts {
            let outcome = match a.outcome {
                Outcome::Answered => "answered",
                Outcome::Failed(_) => "failed",
                Outcome::Skipped(_) => "skipped",
                Outcome::Cancelled => "cancelled",
            };
            self.metrics.attempt(&self.model, &a.provider, outcome);
        }
        if let Some((route, target)) = &exec.answered {
            self.provider = target.provider.name.clone();
            let first_leg = exec.attempts.first().map(|a| a.model.as_str());
            if first_leg.is_some_and(|m| m != route.name) {
                self.metrics.fallback(&self.model);
            }
        }
        self.metrics.overhead(self.surface, self.started.elapsed().saturating_sub(routing));
    }

    /// The first token went out (streams).
    pub fn first_token(&self) {
        self.metrics.time_to_first_token(&self.labels(), self.started.elapsed());
    }

    pub fn finish_ok(mut self, usage: Option<&Usage>) {
        let labels = self.labels();
        if let Some(u) = usage {
            self.metrics.usage(&labels, u);
        }
        self.end("2xx");
    }

    pub fn finish_err(mut self, e: &GatewayError) {
        let status = e.http_status();
        self.metrics.error(self.surface, &self.model, &error_type(e));
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
        self.metrics.duration(&self.labels(), self.started.elapsed());
        self.metrics.request(RequestLabels {
            surface: self.surface,
            gen_ai_operation_name: self.operation,
            gen_ai_request_model: self.model.clone(),
            gen_ai_provider_name: self.provider.clone(),
            status_class,
        });
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
    fn error_labels_are_bounded() {
        let own = GatewayError::new(ErrorKind::NotFound, "x").with_code("model_not_found");
        assert_eq!(error_type(&own), "model_not_found");
        let theirs = GatewayError::upstream(503, "x").with_code("some-provider-code-8f3a");
        assert_eq!(error_type(&theirs), "upstream_5xx");
        assert_eq!(error_type(&GatewayError::invalid("x")), "invalidrequest_4xx");
    }
}
