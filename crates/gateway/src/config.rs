//! The config file: its schema, `${ENV}` interpolation, and errors with line and column.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use switchyard_providers::{ProviderSpec, StreamStart};
use switchyard_types::CaptureMode;

/// The whole `switchyard.yaml`. Unknown keys are errors: a typo must not silently disable a limit.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerConfig,
    /// Where keys, spend and logs are stored (`sqlite://…` or `postgres://…`).
    #[serde(default)]
    pub storage: Option<String>,
    /// Shared counters when several instances run (`redis://…`).
    #[serde(default)]
    pub redis: Option<String>,
    /// While Redis is unreachable: `local` (count per instance; the default) or `reject`.
    #[serde(default)]
    pub redis_outage: Option<RedisOutage>,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSpec>,
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// Conditional routing, tried in order; the first match decides.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Teams that keys belong to, with their settings.
    #[serde(default)]
    pub teams: Vec<TeamConfig>,
    /// Users that keys belong to (`keys[].user`), with their own limits and budget.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// How dollar budgets answer and alert.
    #[serde(default)]
    pub budgets: BudgetsConfig,
    /// The request log: what it keeps and for how long.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// OpenTelemetry trace export; off unless set.
    #[serde(default)]
    pub tracing: Option<TracingConfig>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RedisOutage {
    Local,
    Reject,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    pub name: String,
    /// Body capture for the team's keys, unless a key says otherwise.
    #[serde(default)]
    pub capture: Option<CaptureMode>,
    /// Limits shared by every key of the team.
    #[serde(default)]
    pub limits: Option<LimitsConfig>,
    /// A dollar budget shared by every key of the team.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    /// The user's team, for keys of the user that name none.
    #[serde(default)]
    pub team: Option<String>,
    /// Limits over all the user's keys.
    #[serde(default)]
    pub limits: Option<LimitsConfig>,
    /// A dollar budget over all the user's keys.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetsConfig {
    /// Where alerts are POSTed when spend crosses a budget's `alerts` fractions.
    #[serde(default)]
    pub webhook: Option<String>,
    /// Headers sent with each alert (an `authorization` for the receiver, say).
    #[serde(default)]
    pub webhook_headers: BTreeMap<String, String>,
    /// The status of a refusal: 402 (the default) or 429.
    #[serde(default)]
    pub status: Option<u16>,
    /// The output a request without `max_tokens` is reserved for (default 4096).
    #[serde(default)]
    pub default_max_tokens: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// `full` (record and bodies), `metadata` (record, no bodies; the default) or `none`.
    #[serde(default)]
    pub capture: Option<CaptureMode>,
    /// The most bytes of each body kept under `full` (default 1 MiB); longer ones are cut.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// Records older than this are deleted (default: kept until deleted by hand).
    #[serde(default)]
    pub retention: Option<Seconds>,
    /// Bodies older than this are deleted, the rest of the record kept.
    #[serde(default)]
    pub body_retention: Option<Seconds>,
    /// Records waiting for the writer; when full, new ones are dropped and counted (default
    /// 10000). Read at start only.
    #[serde(default)]
    pub queue: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// The collector: `http://127.0.0.1:4317` for gRPC, `http://127.0.0.1:4318` for HTTP.
    pub endpoint: String,
    /// `grpc` (default) or `http/protobuf`.
    #[serde(default)]
    pub protocol: Option<String>,
    /// The share of traces exported, 0 to 1 (default 1). A caller's `traceparent` decides for
    /// its own trace.
    #[serde(default)]
    pub sample_rate: Option<f64>,
    /// Sent with every export, e.g. an authorization header.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `service.name` of the spans (default `switchyard`).
    #[serde(default)]
    pub service_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// The condition (see docs/routing.md); absent matches every request.
    #[serde(default)]
    pub when: Option<serde_json::Value>,
    /// Send matching requests to this model…
    #[serde(default)]
    pub model: Option<String>,
    /// …or split them between models by percentage.
    #[serde(default)]
    pub split: Option<BTreeMap<String, u32>>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The address to listen on; `--listen` overrides it.
    #[serde(default)]
    pub listen: Option<String>,
    /// The admin credential: may use every model and, later, the admin API.
    #[serde(default)]
    pub master_key: Option<String>,
    /// The largest request body accepted, in bytes (default 32 MiB, for inline images).
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// How long a client may take to send its request body (default 30s).
    #[serde(default)]
    pub client_timeout: Option<Seconds>,
    /// How long opening a connection to a provider may take (default 5s).
    #[serde(default)]
    pub connect_timeout: Option<Seconds>,
    /// How long a shutdown waits for requests in flight (default 30s).
    #[serde(default)]
    pub shutdown_grace: Option<Seconds>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The name clients ask for.
    pub name: String,
    #[serde(default)]
    pub routing: Option<Routing>,
    pub targets: Vec<TargetConfig>,
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Models to use when a request is too long for this one.
    #[serde(default)]
    pub context_fallbacks: Vec<String>,
    /// Models to use when the provider refuses the content.
    #[serde(default)]
    pub content_policy_fallbacks: Vec<String>,
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    #[serde(default)]
    pub timeout: Option<TimeoutConfig>,
    /// Route requests with the same key, user, session or header value to the same target.
    #[serde(default)]
    pub sticky: Option<String>,
    #[serde(default)]
    pub breaker: Option<BreakerConfig>,
    #[serde(default)]
    pub hedge: Option<HedgeConfig>,
    /// Continue a broken stream on another target (see docs/routing.md for when this is sound).
    #[serde(default)]
    pub recover_streams: bool,
    /// When a client's stream begins: at the upstream's first token (`first_token`, so failures
    /// before it move to another target unseen) or at its first event (`immediately`).
    #[serde(default)]
    pub stream_start: StreamStart,
    /// Limits on the model as a whole, over every key.
    #[serde(default)]
    pub limits: Option<LimitsConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    #[serde(default)]
    pub failures: Option<u32>,
    #[serde(default)]
    pub error_rate: Option<f64>,
    #[serde(default)]
    pub cooldown: Option<Seconds>,
    #[serde(default)]
    pub max_cooldown: Option<Seconds>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HedgeConfig {
    /// A duration, or `p95` for the target's observed 95th percentile time to first token.
    pub after: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Routing {
    Weighted,
    RoundRobin,
    LeastBusy,
    Latency,
    Cost,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub provider: String,
    pub model: String,
    #[serde(default)]
    pub weight: Option<u32>,
    /// Priority tier: 1 (default) first; a higher tier only when no lower one is available.
    #[serde(default)]
    pub tier: Option<u32>,
    /// The model's context window in tokens; longer requests skip this target.
    #[serde(default)]
    pub context_window: Option<u64>,
    #[serde(default)]
    pub price: Option<PriceConfig>,
}

/// Dollars per million tokens. Each field set here replaces the built-in list price's; those
/// left out keep it (or are 0 for a model the built-in table does not know).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    #[serde(default)]
    pub input_per_mtok: Option<f64>,
    #[serde(default)]
    pub output_per_mtok: Option<f64>,
    #[serde(default)]
    pub cached_input_per_mtok: Option<f64>,
    #[serde(default)]
    pub cache_write_per_mtok: Option<f64>,
    #[serde(default)]
    pub reasoning_per_mtok: Option<f64>,
    /// Rates for a whole request whose prompt is longer than `above_input_tokens`.
    #[serde(default)]
    pub long_context: Option<LongContextConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LongContextConfig {
    pub above_input_tokens: u64,
    #[serde(default)]
    pub input_per_mtok: Option<f64>,
    #[serde(default)]
    pub output_per_mtok: Option<f64>,
    #[serde(default)]
    pub cached_input_per_mtok: Option<f64>,
    #[serde(default)]
    pub cache_write_per_mtok: Option<f64>,
    #[serde(default)]
    pub reasoning_per_mtok: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(default)]
    pub attempts: Option<usize>,
    #[serde(default)]
    pub on: Option<Vec<RetryCondition>>,
    /// First backoff before retrying the same target (default 100ms; doubles, with jitter).
    #[serde(default)]
    pub backoff: Option<Seconds>,
    /// Longest wait for a provider's `retry-after` when no other target can answer (default 5s).
    #[serde(default)]
    pub max_wait: Option<Seconds>,
}

/// A status (`429`), a class (`5xx`), or `timeout` / `connect`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum RetryCondition {
    Status(u16),
    Named(String),
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeoutConfig {
    #[serde(default)]
    pub first_token: Option<Seconds>,
    #[serde(default)]
    pub stall: Option<Seconds>,
    #[serde(default)]
    pub total: Option<Seconds>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub name: String,
    pub key: String,
    /// Model names and `*` patterns; absent means every model.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub limits: Option<LimitsConfig>,
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
    /// A team from `teams:`.
    #[serde(default)]
    pub team: Option<String>,
    /// A user from `users:`.
    #[serde(default)]
    pub user: Option<String>,
    /// Body capture for this key's requests; overrides the team's and the default.
    #[serde(default)]
    pub capture: Option<CaptureMode>,
    /// Limits for each end user of this key.
    #[serde(default)]
    pub user_limits: Option<LimitsConfig>,
    /// Makes this an admin key: `read` (the admin API's reads) or `full` (as the master key).
    #[serde(default)]
    pub admin: Option<switchyard_policy::AdminRole>,
    /// Limits for this key on one model: `{ smart: { rpm: 10 } }`.
    #[serde(default)]
    pub model_limits: BTreeMap<String, LimitsConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default)]
    pub rpm: Option<u64>,
    #[serde(default)]
    pub tpm: Option<u64>,
    #[serde(default)]
    pub concurrency: Option<u64>,
}

impl LimitsConfig {
    /// The limits, or why they are wrong (`what` names them in the message).
    pub fn limits(&self, what: &str) -> Result<switchyard_policy::Limits, String> {
        if [self.rpm, self.tpm, self.concurrency].contains(&Some(0)) {
            return Err(format!(
                "{what}: a limit of 0 would refuse every request; remove the limit or the key instead"
            ));
        }
        Ok(switchyard_policy::Limits { rpm: self.rpm, tpm: self.tpm, concurrency: self.concurrency })
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    pub usd: f64,
    /// `daily`, `weekly`, `monthly`, `lifetime` (the default) or a rolling duration (`30d`).
    #[serde(default)]
    pub period: Option<String>,
    /// Fractions of `usd` at which the webhook is told (`[0.5, 0.8, 1.0]`).
    #[serde(default)]
    pub alerts: Vec<f64>,
}

impl BudgetConfig {
    /// The budget, or why it is wrong (`what` names it in the message).
    pub fn budget(&self, what: &str) -> Result<switchyard_policy::Budget, String> {
        budget(self.usd, self.period.as_deref(), &self.alerts).map_err(|e| format!("{what}: {e}"))
    }
}

/// Checks and builds a budget, for the config and the admin API alike.
pub fn budget(usd: f64, period: Option<&str>, alerts: &[f64]) -> Result<switchyard_policy::Budget, String> {
    if !usd.is_finite() || usd < 0.0 {
        return Err(format!("budget usd must be a number of dollars, 0 or more (got {usd})"));
    }
    let period = switchyard_policy::Period::parse(period.unwrap_or("lifetime"))?;
    let mut alerts = alerts.to_vec();
    if let Some(bad) = alerts.iter().find(|a| !(a.is_finite() && **a > 0.0 && **a <= 1.0)) {
        return Err(format!("budget alerts are fractions of the budget in (0, 1] (got {bad})"));
    }
    alerts.sort_by(f64::total_cmp);
    alerts.dedup();
    Ok(switchyard_policy::Budget { max: switchyard_policy::nanos(usd), period, alerts })
}

/// A duration written as `500ms`, `10s`, `2m`, `1h` or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds(pub Duration);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        let parsed = match Raw::deserialize(d)? {
            Raw::Number(n) => seconds(n),
            Raw::Text(t) => parse_duration(&t),
        };
        parsed.map(Seconds).ok_or_else(|| serde::de::Error::custom("expected a duration such as 500ms, 10s, 2m or 1h"))
    }
}

pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok().filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return None,
    };
    seconds(secs)
}

/// The longest duration any setting takes: a year. Longer values are typos, and unbounded ones
/// would overflow clocks.
const MAX_DURATION_SECS: f64 = 365.0 * 86_400.0;

fn seconds(n: f64) -> Option<Duration> {
    (n.is_finite() && (0.0..=MAX_DURATION_SECS).contains(&n)).then(|| Duration::from_secs_f64(n))
}

/// A config error, located where the file can say where.
#[derive(Debug, thiserror::Error)]
#[error("{path}{}: {message}", location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct ConfigError {
    pub path: String,
    /// Line and column, 1-based.
    pub location: Option<(u64, u64)>,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: &str, message: impl Into<String>) -> Self {
        ConfigError { path: path.to_string(), location: None, message: message.into() }
    }
}

/// Reads, interpolates and parses a config file.
pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::new(&name, format!("cannot read: {e}")))?;
    parse(&name, &text, &|var| std::env::var(var).ok())
}

/// Parses config text. `env` looks variables up, so tests need not touch the process environment.
pub fn parse(name: &str, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<ConfigFile, ConfigError> {
    let text = interpolate(name, text, env)?;
    serde_saphyr::from_str::<ConfigFile>(&text).map_err(|e| {
        let location = e.location().map(|l| (l.line(), l.column()));
        let message = e.to_string();
        let message = strip_location(message.lines().next().unwrap_or_default()).to_string();
        ConfigError { path: name.to_string(), location, message }
    })
}

/// The library puts `error: line L column C: ` in front of its message; ours is located already.
fn strip_location(message: &str) -> &str {
    let rest = message.strip_prefix("error: ").unwrap_or(message);
    if let Some(after) = rest.strip_prefix("line ")
        && let Some(i) = after.find(": ")
        && after[..i].contains("column")
    {
        return &after[i + 2..];
    }
    rest
}

/// Replaces `${VAR}` and `${VAR:-default}`. An unset or empty variable without a default is an
/// error, because an empty `master_key` or `api_key` would silently change what the gateway does.
/// `$${` writes a literal `${`. Values are substituted as text, so line numbers stay true.
fn interpolate(name: &str, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        // Comments may mention variables that are not set.
        let code_end = comment_start(line).unwrap_or(line.len());
        let (code, comment) = line.split_at(code_end);
        let mut rest = code;
        while let Some(found) = rest.find("${") {
            // Where this reference starts in the line, for the error's column.
            let at = code.len() - rest.len() + found;
            if rest[..found].ends_with('$') {
                out.push_str(&rest[..found - 1]);
                out.push_str("${");
                rest = &rest[found + 2..];
                continue;
            }
            out.push_str(&rest[..found]);
            let after = &rest[found + 2..];
            let Some(end) = after.find('}') else {
                return Err(located(name, line_no, code, at, "unclosed ${ in variable reference"));
            };
            let expr = &after[..end];
            let (var, default) = match expr.split_once(":-") {
                Some((v, d)) => (v, Some(d)),
                None => (expr, None),
            };
            let valid = !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(located(name, line_no, code, at, &format!("'{var}' is not a valid variable name")));
            }
            match (env(var).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    let why = if env(var).is_some() { "is set but empty" } else { "is not set" };
                    return Err(located(
                        name,
                        line_no,
                        code,
                        at,
                        &format!("environment variable {var} {why} (write ${{{var}:-}} to allow it to be empty)"),
                    ));
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out.push_str(comment);
    }
    Ok(out)
}

/// Where a YAML comment starts on a line, ignoring `#` inside quotes.
fn comment_start(line: &str) -> Option<usize> {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev.is_whitespace() => return Some(i),
            _ => {}
        }
        prev = c;
    }
    None
}

fn located(name: &str, line_no: usize, line: &str, byte: usize, message: &str) -> ConfigError {
    let column = line[..byte].chars().count() as u64 + 1;
    ConfigError { path: name.to_string(), location: Some((line_no as u64 + 1, column)), message: message.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(var: &str) -> Option<String> {
        match var {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    /// The example of DESIGN.md section 6, which must parse.
    pub const DESIGN_EXAMPLE: &str = r#"
server:
  listen: 127.0.0.1:4141
  master_key: ${SWITCHYARD_MASTER_KEY}
storage: sqlite://switchyard.db          # or postgres://…
# redis: redis://127.0.0.1:6379          # when several instances share limits, budgets and cache

providers:
  openai:    { type: openai, api_key: "${OPENAI_API_KEY}" }
  anthropic: { type: anthropic, api_key: "${ANTHROPIC_API_KEY}" }
  local:     { type: openai-compatible, base_url: "http://127.0.0.1:11434/v1" }

models:
  - name: smart                          # the name clients ask for
    routing: latency                     # weighted (default) | round-robin | least-busy | latency | cost
    targets:
      - { provider: anthropic, model: claude-sonnet-4-5 }
      - { provider: openai, model: gpt-4.1, weight: 2 }
    fallbacks: [cheap]
    retry: { attempts: 2, on: [429, 5xx, timeout] }
    timeout: { first_token: 10s, total: 120s }
  - name: cheap
    targets:
      - { provider: local, model: llama3.2, price: { input_per_mtok: 0, output_per_mtok: 0 } }

keys:
  - name: web-app
    key: ${WEB_APP_KEY}
    models: [smart, cheap]
    limits: { rpm: 600, tpm: 200000 }
    budget: { usd: 50, period: 30d }
"#;

    #[test]
    fn interpolation_defaults_and_errors() {
        assert_eq!(interpolate("f", "a: ${SET}\n", &env).ok().as_deref(), Some("a: value\n"));
        assert_eq!(interpolate("f", "a: ${NOPE:-dflt}\n", &env).ok().as_deref(), Some("a: dflt\n"));
        assert_eq!(interpolate("f", "a: ${EMPTY:-dflt}\n", &env).ok().as_deref(), Some("a: dflt\n"));
        assert_eq!(interpolate("f", "a: $${SET}\n", &env).ok().as_deref(), Some("a: ${SET}\n"));
        assert_eq!(interpolate("f", "a: 1 # ${NOPE}\n", &env).ok().as_deref(), Some("a: 1 # ${NOPE}\n"));
        let e = interpolate("f", "x: 1\ny:  ${NOPE}\n", &env).unwrap_err();
        assert_eq!(e.location, Some((2, 5)));
        assert!(e.to_string().contains("NOPE"), "{e}");
        let e = interpolate("f", "a: [${SET}, ${NOPE}]\n", &env).unwrap_err();
        assert_eq!(e.location, Some((1, 13)), "the second reference's own column");
        let e = interpolate("f", "\u{e9}: ${SET}x${NOPE}\n", &env).unwrap_err();
        assert_eq!(e.location, Some((1, 11)), "columns count characters");
        let e = interpolate("f", "k: ${EMPTY}\n", &env).unwrap_err();
        assert!(e.to_string().contains("set but empty"), "{e}");
    }

    #[test]
    fn unknown_keys_are_errors_with_line_and_column() {
        let text = "server:\n  listen: 127.0.0.1:1\nmodels:\n  - name: a\n    targets: []\n    retries: 3\n";
        let e = parse("cfg.yaml", text, &env).unwrap_err();
        assert_eq!(e.location.map(|l| l.0), Some(6), "{e}");
        assert!(e.to_string().contains("retries"), "{e}");
        assert!(e.to_string().starts_with("cfg.yaml:6:"), "{e}");
        assert!(!e.to_string().contains("error: line"), "location given once: {e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("fast"), None);
        assert_eq!(parse_duration("99999999999999999999999h"), None);
        assert_eq!(parse_duration("1e30"), None);
    }

    #[test]
    fn the_design_example_parses() {
        let all = |v: &str| Some(format!("test-{v}"));
        // The `anthropic` provider kind arrives with the translation issue; until then the example
        // is checked with that one provider swapped for an OpenAI-compatible one.
        let text =
            DESIGN_EXAMPLE.replace("type: anthropic,", "type: openai-compatible, base_url: \"http://127.0.0.1:9/v1\",");
        let cfg = parse("design.yaml", &text, &all).unwrap_or_else(|e| panic!("{e}"));
        let rt = crate::Runtime::build(&cfg, "design.yaml").unwrap_or_else(|e| panic!("{e:?}"));
        let headers = http::HeaderMap::new();
        let caller = switchyard_router::Caller { key: "k", user: None, session: None, headers: &headers };
        let plan = rt.catalogue.plan("smart", &[], Default::default(), &caller).unwrap_or_else(|e| panic!("{e}"));
        let legs: Vec<&str> = plan.legs.iter().map(|l| l.route.name.as_str()).collect();
        assert_eq!(legs, ["smart", "cheap"]);
        assert_eq!(cfg.models.len(), 2);
        assert_eq!(cfg.models[0].timeout.as_ref().and_then(|t| t.first_token), Some(Seconds(Duration::from_secs(10))));
        assert_eq!(cfg.keys[0].key, "test-WEB_APP_KEY");
    }
}
