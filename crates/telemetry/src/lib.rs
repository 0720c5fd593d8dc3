//! Telemetry: the Prometheus metrics served at `/metrics`.
//!
//! Names follow the OpenTelemetry GenAI conventions where one exists
//! (`gen_ai.server.request.duration` becomes `gen_ai_server_request_duration_seconds`), and
//! `switchyard_*` otherwise. Labels are bounded: model names come from the config (a client's
//! `provider/model` is labelled `direct`), providers from the config, surfaces and outcomes from
//! small fixed sets. No key, user or request id is ever a label.

pub mod traces;
mod writer;

pub use traces::{OtlpExporter, OtlpProtocol, TraceConfig, TraceError};
pub use writer::{RecordSink, WriterHandle, start_writer};

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use switchyard_types::Usage;

/// The content type of `/metrics`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub surface: &'static str,
    pub gen_ai_operation_name: &'static str,
    pub gen_ai_request_model: String,
    /// The provider that answered, or `none`.
    pub gen_ai_provider_name: String,
    /// `2xx`, `4xx`, `5xx`, or `cancelled` when the client left first.
    pub status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub surface: &'static str,
    pub gen_ai_request_model: String,
    /// The error's code (`model_not_found`, `upstream_transport_error`…) or its kind.
    pub error_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub gen_ai_operation_name: &'static str,
    pub gen_ai_request_model: String,
    pub gen_ai_provider_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub gen_ai_request_model: String,
    pub gen_ai_provider_name: String,
    /// `input`, `output`, `cache_read`, `cache_write` or `reasoning`.
    pub gen_ai_token_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub gen_ai_request_model: String,
    pub gen_ai_provider_name: String,
    /// `answered`, `failed`, `skipped` or `cancelled`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub gen_ai_request_model: String,
    pub gen_ai_provider_name: String,
    pub gen_ai_response_model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SurfaceLabels {
    pub surface: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelOnly {
    pub gen_ai_request_model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CostLabels {
    pub gen_ai_request_model: String,
    pub gen_ai_provider_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TeamLabels {
    /// A team from the config, or `none`.
    pub team: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OwnerLabels {
    /// What the budget belongs to: `key`, `team` or `user`.
    pub owner: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `sent` or `failed`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// The error code: `rate_limit_exceeded`, `concurrency_limit_exceeded` or
    /// `tokens_exceed_limit`.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// `queue_full` or `store_unavailable`.
    pub reason: &'static str,
}

fn duration_histogram() -> Histogram {
    // OpenTelemetry's advised buckets for GenAI durations (0.01 … 81.92 s), with 5 ms in front
    // for fast local models.
    Histogram::new([0.005].into_iter().chain(exponential_buckets(0.01, 2.0, 14)))
}

fn ttft_histogram() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0])
}

fn overhead_histogram() -> Histogram {
    // 25 µs … 100 ms: the gateway's own time is sub-millisecond when healthy.
    Histogram::new(exponential_buckets(0.000_025, 2.0, 13))
}

fn token_histogram() -> Histogram {
    // OpenTelemetry's advised buckets: 1, 4, 16 … 67,108,864.
    Histogram::new(exponential_buckets(1.0, 4.0, 14))
}

/// Every metric the gateway exports. One per process; cheap to share behind an `Arc`.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<ModelLabels, Histogram>,
    ttft: Family<ModelLabels, Histogram>,
    overhead: Family<SurfaceLabels, Histogram>,
    token_usage: Family<ModelLabels, Histogram>,
    tokens: Family<TokenLabels, Counter>,
    attempts: Family<AttemptLabels, Counter>,
    fallbacks: Family<ModelOnly, Counter>,
    in_flight: Family<SurfaceLabels, Gauge>,
    breaker: Family<TargetLabels, Gauge>,
    upstream_in_flight: Family<TargetLabels, Gauge>,
    cost: Family<CostLabels, Counter<f64, AtomicU64>>,
    team_requests: Family<TeamLabels, Counter>,
    team_cost: Family<TeamLabels, Counter<f64, AtomicU64>>,
    records_written: Counter,
    records_dropped: Family<DropLabels, Counter>,
    record_write_errors: Counter,
    record_queue: Gauge,
    record_bodies_dropped: Counter,
    limit_rejections: Family<LimitLabels, Counter>,
    budget_rejections: Family<OwnerLabels, Counter>,
    budget_alerts: Family<OutcomeLabels, Counter>,
    budget_pending: Gauge<f64, std::sync::atomic::AtomicU64>,
    spans_exported: Counter,
    spans_dropped: Counter,
    /// One scrape at a time: the per-target gauges are cleared and refilled on each.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::default();
        registry.register(
            "switchyard_requests",
            "Requests by surface, model, answering provider and status",
            requests.clone(),
        );
        let errors = Family::default();
        registry.register("switchyard_errors", "Failed requests by error type", errors.clone());
        let duration = Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "gen_ai_server_request_duration",
            "Time from the request's arrival to the last byte of the answer",
            Unit::Seconds,
            duration.clone(),
        );
        let ttft = Family::new_with_constructor(ttft_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "gen_ai_server_time_to_first_token",
            "Time from the request's arrival to the first token sent (streams)",
            Unit::Seconds,
            ttft.clone(),
        );
        let overhead = Family::new_with_constructor(overhead_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "switchyard_gateway_overhead",
            "The gateway's own time: request time to the first byte minus time spent in upstream attempts",
            Unit::Seconds,
            overhead.clone(),
        );
        let token_usage = Family::new_with_constructor(token_histogram as fn() -> Histogram);
        registry.register(
            "gen_ai_client_token_usage",
            "Input plus output tokens per answered request",
            token_usage.clone(),
        );
        let tokens = Family::default();
        registry.register("switchyard_tokens", "Tokens by type, as the providers reported them", tokens.clone());
        let attempts = Family::default();
        registry.register(
            "switchyard_attempts",
            "Upstream attempts by outcome (retries, fallbacks and hedges included)",
            attempts.clone(),
        );
        let fallbacks = Family::default();
        registry.register("switchyard_fallbacks", "Requests answered by a fallback model", fallbacks.clone());
        let in_flight = Family::default();
        registry.register("switchyard_in_flight_requests", "Requests being served", in_flight.clone());
        let breaker = Family::default();
        registry.register(
            "switchyard_breaker_state",
            "Each target's breaker: 0 closed, 1 half-open, 2 open",
            breaker.clone(),
        );
        let upstream_in_flight = Family::default();
        registry.register("switchyard_upstream_in_flight", "Requests in flight per target", upstream_in_flight.clone());
        let cost = Family::default();
        registry.register(
            "switchyard_cost_usd",
            "Dollars spent, priced from the usage providers reported",
            cost.clone(),
        );
        let team_requests = Family::default();
        registry.register("switchyard_team_requests", "Requests by the caller's team", team_requests.clone());
        let team_cost = Family::default();
        registry.register("switchyard_team_cost_usd", "Dollars spent by the caller's team", team_cost.clone());
        let records_written = Counter::default();
        registry.register(
            "switchyard_records_written",
            "Request records written to the store",
            records_written.clone(),
        );
        let records_dropped = Family::default();
        registry.register(
            "switchyard_records_dropped",
            "Request records lost: the writer's queue was full, or the store stayed down past shutdown",
            records_dropped.clone(),
        );
        let record_write_errors = Counter::default();
        registry.register(
            "switchyard_record_write_errors",
            "Failed writes of a batch of records (retried)",
            record_write_errors.clone(),
        );
        let record_queue = Gauge::default();
        registry.register("switchyard_record_queue", "Records waiting for the writer", record_queue.clone());
        let record_bodies_dropped = Counter::default();
        registry.register(
            "switchyard_record_bodies_dropped",
            "Records queued without their bodies because queued bodies passed 64 MiB (the store is behind)",
            record_bodies_dropped.clone(),
        );
        let limit_rejections = Family::default();
        registry.register(
            "switchyard_limit_rejections",
            "Requests refused by a rate limit, by error code",
            limit_rejections.clone(),
        );
        let budget_rejections = Family::default();
        registry.register(
            "switchyard_budget_rejections",
            "Requests refused by a dollar budget, by what owns the budget",
            budget_rejections.clone(),
        );
        let budget_alerts = Family::default();
        registry.register(
            "switchyard_budget_alerts",
            "Budget alerts delivered to the webhook, or given up on",
            budget_alerts.clone(),
        );
        let budget_pending = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "switchyard_budget_pending_usd",
            "Spend settled while Redis was unreachable, waiting to be added to the shared books",
            budget_pending.clone(),
        );
        let spans_exported = Counter::default();
        registry.register(
            "switchyard_traces_exported",
            "Requests whose spans were sent to the OTLP collector",
            spans_exported.clone(),
        );
        let spans_dropped = Counter::default();
        registry.register(
            "switchyard_traces_dropped",
            "Requests whose spans were not exported: the collector failed or fell behind",
            spans_dropped.clone(),
        );
        Metrics {
            registry,
            cost,
            team_requests,
            team_cost,
            records_written,
            records_dropped,
            record_write_errors,
            record_queue,
            record_bodies_dropped,
            limit_rejections,
            budget_rejections,
            budget_alerts,
            budget_pending,
            spans_exported,
            spans_dropped,
            requests,
            errors,
            duration,
            ttft,
            overhead,
            token_usage,
            tokens,
            attempts,
            fallbacks,
            in_flight,
            breaker,
            upstream_in_flight,
            scrape: Mutex::new(()),
        }
    }

    pub fn in_flight(&self, surface: &'static str) -> Gauge {
        self.in_flight.get_or_create(&SurfaceLabels { surface }).clone()
    }

    pub fn request(&self, labels: RequestLabels) {
        self.requests.get_or_create(&labels).inc();
    }

    pub fn error(&self, surface: &'static str, model: &str, error_type: &str) {
        let labels =
            ErrorLabels { surface, gen_ai_request_model: model.to_string(), error_type: error_type.to_string() };
        self.errors.get_or_create(&labels).inc();
    }

    pub fn duration(&self, labels: &ModelLabels, d: Duration) {
        self.duration.get_or_create(labels).observe(d.as_secs_f64());
    }

    pub fn time_to_first_token(&self, labels: &ModelLabels, d: Duration) {
        self.ttft.get_or_create(labels).observe(d.as_secs_f64());
    }

    pub fn overhead(&self, surface: &'static str, d: Duration) {
        self.overhead.get_or_create(&SurfaceLabels { surface }).observe(d.as_secs_f64());
    }

    pub fn usage(&self, labels: &ModelLabels, usage: &Usage) {
        self.token_usage.get_or_create(labels).observe(usage.total_tokens() as f64);
        for (kind, n) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_tokens),
            ("reasoning", usage.reasoning_tokens),
        ] {
            let l = TokenLabels {
                gen_ai_request_model: labels.gen_ai_request_model.clone(),
                gen_ai_provider_name: labels.gen_ai_provider_name.clone(),
                gen_ai_token_type: kind,
            };
            self.tokens.get_or_create(&l).inc_by(n);
        }
    }

    pub fn attempt(&self, model: &str, provider: &str, outcome: &'static str) {
        let labels = AttemptLabels {
            gen_ai_request_model: model.to_string(),
            gen_ai_provider_name: provider.to_string(),
            outcome,
        };
        self.attempts.get_or_create(&labels).inc();
    }

    pub fn fallback(&self, model: &str) {
        self.fallbacks.get_or_create(&ModelOnly { gen_ai_request_model: model.to_string() }).inc();
    }

    pub fn cost(&self, model: &str, provider: &str, usd: f64) {
        let labels = CostLabels { gen_ai_request_model: model.to_string(), gen_ai_provider_name: provider.to_string() };
        self.cost.get_or_create(&labels).inc_by(usd);
    }

    pub fn team(&self, team: Option<&str>, usd: f64) {
        let labels = TeamLabels { team: team.unwrap_or("none").to_string() };
        self.team_requests.get_or_create(&labels).inc();
        if usd > 0.0 {
            self.team_cost.get_or_create(&labels).inc_by(usd);
        }
    }

    pub fn records_written(&self, n: u64) {
        self.records_written.inc_by(n);
    }

    pub fn records_dropped(&self, reason: &'static str, n: u64) {
        self.records_dropped.get_or_create(&DropLabels { reason }).inc_by(n);
    }

    pub fn record_write_error(&self) {
        self.record_write_errors.inc();
    }

    pub fn limit_rejection(&self, code: &str) {
        self.limit_rejections.get_or_create(&LimitLabels { code: code.to_string() }).inc();
    }

    pub fn budget_rejection(&self, owner: &'static str) {
        self.budget_rejections.get_or_create(&OwnerLabels { owner }).inc();
    }

    pub fn budget_alert(&self, outcome: &'static str) {
        self.budget_alerts.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn budget_pending(&self, usd: f64) {
        self.budget_pending.set(usd);
    }

    pub fn record_bodies_dropped(&self) {
        self.record_bodies_dropped.inc();
    }

    pub fn record_queue(&self) -> &Gauge {
        &self.record_queue
    }

    pub fn spans(&self, exported: u64, dropped: u64) {
        self.spans_exported.inc_by(exported);
        self.spans_dropped.inc_by(dropped);
    }

    /// The Prometheus text exposition of every metric, with the per-target gauges set from
    /// `targets` (the running config: targets it no longer has disappear).
    pub fn scrape(&self, targets: impl IntoIterator<Item = (TargetLabels, i64, i64)>) -> String {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        self.breaker.clear();
        self.upstream_in_flight.clear();
        for (labels, state, in_flight) in targets {
            self.breaker.get_or_create(&labels).set(state);
            self.upstream_in_flight.get_or_create(&labels).set(in_flight);
        }
        self.render()
    }

    fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_units_and_totals() {
        let m = Metrics::new();
        let labels = ModelLabels {
            gen_ai_operation_name: "chat",
            gen_ai_request_model: "smart".into(),
            gen_ai_provider_name: "openai".into(),
        };
        m.duration(&labels, Duration::from_millis(120));
        m.usage(&labels, &Usage { input_tokens: 10, output_tokens: 5, ..Default::default() });
        m.overhead("openai", Duration::from_micros(80));
        let text = m.render();
        assert!(text.contains("gen_ai_server_request_duration_seconds_count{"), "{text}");
        assert!(text.contains("switchyard_tokens_total{gen_ai_request_model=\"smart\",gen_ai_provider_name=\"openai\",gen_ai_token_type=\"input\"} 10"), "{text}");
        assert!(text.contains("switchyard_gateway_overhead_seconds_bucket"), "{text}");
    }
}
