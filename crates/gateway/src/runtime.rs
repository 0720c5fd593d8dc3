//! The running configuration: the config file compiled into routes and keys, swapped whole on
//! reload so a request always sees one consistent version.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use switchyard_policy::{Budget, BudgetScope, KeyLimits, KeyRing, Limits, ModelAllowList, Owner, Period, Principal};
use switchyard_providers::{Provider, ProviderSpec, ProviderType, Timeouts};
use switchyard_router::{
    BreakerPolicy, Catalogue, Health, HedgeAfter, LongContext, ModelRoute, Price, PriceTable, Rates, RetryOn,
    RetryPolicy, Rule, Sticky, Strategy, Target,
};
use switchyard_types::CaptureMode;

use crate::config::{ConfigFile, LimitsConfig, ModelConfig, PriceConfig, RetryCondition, Routing, parse_duration};

pub const DEFAULT_MAX_BODY: usize = 32 * 1024 * 1024;
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// What the request log keeps. Reloadable, unlike where it is kept (`storage:`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogPolicy {
    /// For callers whose key and team say nothing.
    pub capture: CaptureMode,
    pub max_body_bytes: usize,
    pub retention: Option<Duration>,
    pub body_retention: Option<Duration>,
}

pub const DEFAULT_CAPTURED_BODY: usize = 1024 * 1024;

impl Default for LogPolicy {
    fn default() -> Self {
        LogPolicy {
            capture: CaptureMode::Metadata,
            max_body_bytes: DEFAULT_CAPTURED_BODY,
            retention: None,
            body_retention: None,
        }
    }
}

/// What a team brings to its keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TeamPolicy {
    pub limits: Limits,
    pub capture: Option<CaptureMode>,
    pub budget: Option<Budget>,
}

/// What a user brings to its keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPolicy {
    pub team: Option<String>,
    pub limits: Limits,
    pub budget: Option<Budget>,
}

/// How budgets answer and alert.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSettings {
    /// 402, or 429 for clients that only retry on that.
    pub status: u16,
    /// The output reserved for a request without `max_tokens`.
    pub default_max_tokens: u64,
    pub webhook: Option<String>,
    pub webhook_headers: Vec<(String, String)>,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        BudgetSettings { status: 402, default_max_tokens: 4096, webhook: None, webhook_headers: Vec::new() }
    }
}

/// How far back a budget period can reach.
fn period_reach(p: Period) -> Duration {
    const DAY: u64 = 86_400;
    match p {
        Period::Daily => Duration::from_secs(DAY),
        Period::Weekly => Duration::from_secs(7 * DAY),
        Period::Monthly => Duration::from_secs(31 * DAY),
        Period::Rolling(d) => d,
        Period::Lifetime => Duration::MAX,
    }
}

/// A budget from the store; one that no longer checks (written by a newer version, say) is left
/// out rather than stopping the key.
pub fn stored_budget(b: &switchyard_store::StoredBudget) -> Option<Budget> {
    crate::config::budget(b.usd, Some(&b.period), &b.alerts).ok()
}

/// The budget scopes of a key: its own, its team's and its user's budgets, those that exist.
pub fn budget_scopes(
    key: (&str, Option<&Budget>),
    team: Option<(&str, Option<&Budget>)>,
    user: Option<(&str, Option<&Budget>)>,
) -> Vec<BudgetScope> {
    let owned = [(Owner::Key, Some(key)), (Owner::Team, team), (Owner::User, user)];
    owned
        .into_iter()
        .filter_map(|(owner, o)| {
            let (name, budget) = o?;
            Some(BudgetScope { owner, name: name.to_string(), budget: budget?.clone() })
        })
        .collect()
}

pub struct Runtime {
    pub catalogue: Catalogue,
    pub rules: Vec<Rule>,
    pub keys: KeyRing,
    pub max_body_bytes: usize,
    pub client_timeout: Duration,
    pub logging: LogPolicy,
    /// Limits on a model over every key, by public model name.
    pub model_limits: HashMap<String, Limits>,
    /// The teams of the config, for keys made through the admin API.
    pub teams: HashMap<String, TeamPolicy>,
    /// The users of the config, likewise.
    pub users: HashMap<String, UserPolicy>,
    pub budgets: BudgetSettings,
    /// Where this config came from, for logs and `/health/ready`.
    pub source: String,
    /// Things worth telling the operator that do not stop the gateway.
    pub warnings: Vec<String>,
}

impl Runtime {
    /// Compiles a config file, or lists everything wrong with it.
    pub fn build(cfg: &ConfigFile, source: &str) -> Result<Runtime, Vec<String>> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let providers = build_providers(&cfg.providers, &mut errors);
        let mut catalogue = Catalogue::new(providers.clone(), None);
        let names: HashSet<&str> = cfg.models.iter().map(|m| m.name.as_str()).collect();
        let mut seen = HashSet::new();
        for m in &cfg.models {
            if !seen.insert(m.name.as_str()) {
                errors.push(format!("model '{}' is defined twice", m.name));
                continue;
            }
            match build_route(m, &providers, &names, &mut warnings) {
                Ok(route) => catalogue.add(route),
                Err(mut errs) => errors.append(&mut errs),
            }
        }
        let mut rules = Vec::new();
        for (i, r) in cfg.rules.iter().enumerate() {
            let name = r.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
            match Rule::compile(&name, r.when.as_ref(), r.model.as_deref(), r.split.as_ref()) {
                Ok(rule) => {
                    for m in rule.models() {
                        if !names.contains(m) {
                            errors.push(format!("rule '{name}': model '{m}' is not defined"));
                        }
                    }
                    rules.push(rule);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        let teams: HashMap<String, TeamPolicy> = cfg
            .teams
            .iter()
            .map(|t| {
                let what = format!("team '{}'", t.name);
                let limits = t
                    .limits
                    .as_ref()
                    .and_then(|l| l.limits(&what).map_err(|e| errors.push(e)).ok())
                    .unwrap_or_default();
                let budget = t.budget.as_ref().and_then(|b| b.budget(&what).map_err(|e| errors.push(e)).ok());
                (t.name.clone(), TeamPolicy { limits, capture: t.capture, budget })
            })
            .collect();
        let mut users = HashMap::new();
        for u in &cfg.users {
            let what = format!("user '{}'", u.name);
            if u.team.as_ref().is_some_and(|t| !teams.contains_key(t)) {
                errors.push(format!("{what}: team '{}' is not defined in teams:", u.team.as_deref().unwrap_or("")));
            }
            let limits = match u.limits.as_ref().map(|l| l.limits(&what)) {
                Some(Err(e)) => {
                    errors.push(e);
                    Limits::default()
                }
                other => other.and_then(Result::ok).unwrap_or_default(),
            };
            let budget = u.budget.as_ref().and_then(|b| b.budget(&what).map_err(|e| errors.push(e)).ok());
            if users.insert(u.name.clone(), UserPolicy { team: u.team.clone(), limits, budget }).is_some() {
                errors.push(format!("{what} is defined twice"));
            }
        }
        let keys = build_keys(cfg, &teams, &users, &mut errors);
        let budgets = BudgetSettings {
            status: cfg.budgets.status.unwrap_or(402),
            default_max_tokens: cfg.budgets.default_max_tokens.unwrap_or(4096),
            webhook: cfg.budgets.webhook.clone(),
            webhook_headers: cfg.budgets.webhook_headers.clone().into_iter().collect(),
        };
        if let Some(retention) = cfg.logging.retention.map(|s| s.0) {
            let longest =
                keys.principals().flat_map(|p| &p.budgets).map(|b| b.budget.period).max_by_key(|p| period_reach(*p));
            if let Some(p) = longest.filter(|p| period_reach(*p) > retention) {
                warnings.push(format!(
                    "logging.retention ({}s) is shorter than a {} budget: spend older than the retention is \
                     forgotten when an instance starts (the request log is the budgets' ledger)",
                    retention.as_secs(),
                    p.name()
                ));
            }
        }
        if !matches!(budgets.status, 402 | 429) {
            errors.push(format!("budgets.status must be 402 or 429 (got {})", budgets.status));
        }
        if let Some(url) = &budgets.webhook
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            errors.push(format!("budgets.webhook must be an http(s) URL (got '{url}')"));
        }
        let mut model_limits = HashMap::new();
        for m in &cfg.models {
            match m.limits.as_ref().map(|l| l.limits(&format!("model '{}'", m.name))) {
                Some(Ok(l)) => drop(model_limits.insert(m.name.clone(), l)),
                Some(Err(e)) => errors.push(e),
                None => {}
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Runtime {
            catalogue,
            rules,
            keys,
            max_body_bytes: cfg.server.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY),
            client_timeout: cfg.server.client_timeout.map_or(DEFAULT_CLIENT_TIMEOUT, |s| s.0),
            model_limits,
            teams,
            users,
            budgets,
            logging: LogPolicy {
                capture: cfg.logging.capture.unwrap_or_default(),
                max_body_bytes: cfg.logging.max_body_bytes.unwrap_or(DEFAULT_CAPTURED_BODY),
                retention: cfg.logging.retention.map(|s| s.0),
                body_retention: cfg.logging.body_retention.map(|s| s.0),
            },
            source: source.to_string(),
            warnings,
        })
    }

    /// Zero-config mode: providers from the usual environment variables; `provider/model`
    /// addresses a provider directly and a bare model name goes to the first one found.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Runtime {
        let mut specs = BTreeMap::new();
        let mut order = Vec::new();
        let presets = [
            ("openai", ProviderType::Openai, "OPENAI_API_KEY", Some("OPENAI_BASE_URL")),
            ("azure", ProviderType::AzureOpenai, "AZURE_OPENAI_API_KEY", Some("AZURE_OPENAI_ENDPOINT")),
            ("groq", ProviderType::Groq, "GROQ_API_KEY", None),
            ("mistral", ProviderType::Mistral, "MISTRAL_API_KEY", None),
            ("deepseek", ProviderType::Deepseek, "DEEPSEEK_API_KEY", None),
            ("together", ProviderType::Together, "TOGETHER_API_KEY", None),
            ("fireworks", ProviderType::Fireworks, "FIREWORKS_API_KEY", None),
            ("openrouter", ProviderType::Openrouter, "OPENROUTER_API_KEY", None),
        ];
        for (name, kind, key_var, url_var) in presets {
            let Some(key) = env(key_var).filter(|k| !k.is_empty()) else { continue };
            let spec = ProviderSpec {
                api_key: Some(key),
                base_url: url_var.and_then(env).filter(|u| !u.is_empty()),
                api_version: (kind == ProviderType::AzureOpenai).then(|| env("AZURE_OPENAI_API_VERSION")).flatten(),
                ..ProviderSpec::of(kind)
            };
            specs.insert(name.to_string(), spec);
            order.push(name);
        }
        let mut errors = Vec::new();
        let providers = build_providers(&specs, &mut errors);
        let default = order.into_iter().find(|n| providers.contains_key(*n)).map(str::to_string);
        let mut keys = KeyRing::default();
        if let Some(master) = env("SWITCHYARD_MASTER_KEY").filter(|k| !k.is_empty()) {
            keys.insert(&master, Principal::master());
        }
        let mut warnings = errors;
        if providers.is_empty() {
            warnings.push(
                "no provider is configured: set OPENAI_API_KEY (or another provider's key) or write a config file"
                    .into(),
            );
        }
        Runtime {
            catalogue: Catalogue::new(providers, default),
            rules: Vec::new(),
            keys,
            max_body_bytes: DEFAULT_MAX_BODY,
            client_timeout: DEFAULT_CLIENT_TIMEOUT,
            logging: LogPolicy::default(),
            model_limits: HashMap::new(),
            teams: HashMap::new(),
            users: HashMap::new(),
            budgets: BudgetSettings::default(),
            source: "environment".into(),
            warnings,
        }
    }
}

/// Compiles one model, or lists what is wrong with it (each error names the model).
fn build_route(
    m: &ModelConfig,
    providers: &HashMap<String, Arc<Provider>>,
    names: &HashSet<&str>,
    warnings: &mut Vec<String>,
) -> Result<ModelRoute, Vec<String>> {
    let mut errors = Vec::new();
    let name = &m.name;
    if m.targets.is_empty() {
        errors.push(format!("model '{name}' has no targets"));
    }
    let defaults = BreakerPolicy::default();
    let breaker = m.breaker.as_ref().map_or(defaults, |b| BreakerPolicy {
        failures: b.failures.unwrap_or(defaults.failures).max(1),
        error_rate: b.error_rate.unwrap_or(defaults.error_rate).clamp(0.01, 1.0),
        cooldown: b.cooldown.map_or(defaults.cooldown, |s| s.0),
        max_cooldown: b.max_cooldown.map_or(defaults.max_cooldown, |s| s.0),
    });
    let mut targets = Vec::new();
    for t in &m.targets {
        let Some(p) = providers.get(&t.provider) else {
            errors.push(format!("model '{name}': target provider '{}' is not defined (or is invalid)", t.provider));
            continue;
        };
        let mut target = Target::new(p.clone(), t.model.clone());
        target.weight = t.weight.unwrap_or(1);
        target.tier = t.tier.unwrap_or(1);
        target.context_window = t.context_window;
        target.price = price(p.kind.as_str(), &t.model, t.price.as_ref());
        target.health = Health::new(breaker);
        targets.push(Arc::new(target));
    }
    let lists = [
        ("fallback", &m.fallbacks),
        ("context fallback", &m.context_fallbacks),
        ("content-policy fallback", &m.content_policy_fallbacks),
    ];
    for (what, list) in lists {
        for f in list.iter() {
            if !names.contains(f.as_str()) {
                errors.push(format!("model '{name}': {what} '{f}' is not a defined model"));
            }
        }
    }
    let strategy = match m.routing.unwrap_or(Routing::Weighted) {
        Routing::Weighted => Strategy::Weighted,
        Routing::RoundRobin => Strategy::RoundRobin,
        Routing::LeastBusy => Strategy::LeastBusy,
        Routing::Latency => Strategy::Latency,
        Routing::Cost => {
            if targets.iter().any(|t| t.price.is_none()) {
                warnings.push(format!("model '{name}': cost routing puts targets without a price last"));
            }
            Strategy::Cost
        }
    };
    let defaults = RetryPolicy::default();
    let retry = match &m.retry {
        None => defaults,
        Some(r) => RetryPolicy {
            attempts: r.attempts,
            on: match &r.on {
                None => defaults.on,
                Some(on) => on.iter().filter_map(|c| retry_on(c, name, &mut errors)).collect(),
            },
            backoff: r.backoff.map_or(defaults.backoff, |s| s.0),
            max_wait: r.max_wait.map_or(defaults.max_wait, |s| s.0),
        },
    };
    let sticky = match m.sticky.as_deref() {
        None => None,
        Some("key") => Some(Sticky::Key),
        Some("user") => Some(Sticky::User),
        Some("session") => Some(Sticky::Session),
        Some(other) => match other.strip_prefix("header:") {
            Some(h) if !h.is_empty() => Some(Sticky::Header(h.to_ascii_lowercase())),
            _ => {
                errors.push(format!("model '{name}': sticky must be key, user, session or header:NAME, not '{other}'"));
                None
            }
        },
    };
    let hedge = match m.hedge.as_ref().map(|h| h.after.trim()) {
        None => None,
        Some("p95") => Some(HedgeAfter::P95 { until_known: Duration::from_secs(2) }),
        Some(d) => match parse_duration(d) {
            Some(d) => Some(HedgeAfter::Fixed(d)),
            None => {
                errors.push(format!("model '{name}': hedge.after must be a duration or p95, not '{d}'"));
                None
            }
        },
    };
    let defaults = Timeouts::default();
    let t = m.timeout.clone().unwrap_or_default();
    let timeouts = Timeouts {
        first_token: t.first_token.map_or(defaults.first_token, |s| s.0),
        stall: t.stall.map_or(defaults.stall, |s| s.0),
        total: t.total.map_or(defaults.total, |s| s.0),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut route = ModelRoute::new(name.clone(), targets);
    route.strategy = strategy;
    route.sticky = sticky;
    route.fallbacks = m.fallbacks.clone();
    route.context_fallbacks = m.context_fallbacks.clone();
    route.content_fallbacks = m.content_policy_fallbacks.clone();
    route.retry = retry;
    route.timeouts = timeouts;
    route.hedge = hedge;
    route.recover_streams = m.recover_streams;
    route.stream_start = m.stream_start;
    Ok(route)
}

/// A target's price: the built-in list price of its model at its kind of provider, with each
/// rate the config sets put in its place. `None` when neither knows the model.
fn price(kind: &str, model: &str, set: Option<&PriceConfig>) -> Option<Price> {
    let listed = PriceTable::builtin().lookup(kind, model);
    let Some(set) = set else { return listed };
    let mut p = listed.unwrap_or_default();
    let r = &mut p.rates;
    r.input_per_mtok = set.input_per_mtok.unwrap_or(r.input_per_mtok);
    r.output_per_mtok = set.output_per_mtok.unwrap_or(r.output_per_mtok);
    r.cache_read_per_mtok = set.cached_input_per_mtok.or(r.cache_read_per_mtok);
    r.cache_write_per_mtok = set.cache_write_per_mtok.or(r.cache_write_per_mtok);
    r.reasoning_per_mtok = set.reasoning_per_mtok.or(r.reasoning_per_mtok);
    if let Some(long) = &set.long_context {
        let base = p.long_context.map_or(p.rates, |l| l.rates);
        p.long_context = Some(LongContext {
            above_input_tokens: long.above_input_tokens,
            rates: Rates {
                input_per_mtok: long.input_per_mtok.unwrap_or(base.input_per_mtok),
                output_per_mtok: long.output_per_mtok.unwrap_or(base.output_per_mtok),
                cache_read_per_mtok: long.cached_input_per_mtok.or(base.cache_read_per_mtok),
                cache_write_per_mtok: long.cache_write_per_mtok.or(base.cache_write_per_mtok),
                reasoning_per_mtok: long.reasoning_per_mtok.or(base.reasoning_per_mtok),
            },
        });
    }
    Some(p)
}

fn build_providers(specs: &BTreeMap<String, ProviderSpec>, errors: &mut Vec<String>) -> HashMap<String, Arc<Provider>> {
    let mut out = HashMap::new();
    for (name, spec) in specs {
        if name.is_empty() || name.contains('/') {
            errors.push(format!("provider name '{name}' must be non-empty and contain no '/'"));
            continue;
        }
        match Provider::new(name, spec) {
            Ok(p) => {
                out.insert(name.clone(), Arc::new(p));
            }
            Err(e) => errors.push(e),
        }
    }
    out
}

fn build_keys(
    cfg: &ConfigFile,
    teams: &HashMap<String, TeamPolicy>,
    users: &HashMap<String, UserPolicy>,
    errors: &mut Vec<String>,
) -> KeyRing {
    let mut keys = KeyRing::default();
    if let Some(master) = cfg.server.master_key.as_deref() {
        if master.is_empty() {
            errors.push("server.master_key is empty: remove it or give it a value".into());
        } else {
            keys.insert(master, Principal::master());
        }
    }
    let mut seen_teams = HashSet::new();
    for t in &cfg.teams {
        if !seen_teams.insert(t.name.as_str()) {
            errors.push(format!("team '{}' is defined twice", t.name));
        }
    }
    let mut names = HashSet::new();
    for k in &cfg.keys {
        if !names.insert(k.name.as_str()) {
            errors.push(format!("key name '{}' is used twice", k.name));
        }
        if k.key.len() < 8 {
            errors.push(format!("key '{}': the key must be at least 8 characters", k.name));
            continue;
        }
        let user = match k.user.as_deref() {
            None => None,
            Some(u) => match users.get(u) {
                Some(user) => Some((u, user)),
                None => {
                    errors.push(format!("key '{}': user '{u}' is not defined in users:", k.name));
                    continue;
                }
            },
        };
        let team_name = k.team.as_deref().or(user.and_then(|(_, u)| u.team.as_deref()));
        let team = match team_name {
            None => None,
            Some(t) => match teams.get(t) {
                Some(team) => Some((t, team)),
                None => {
                    errors.push(format!("key '{}': team '{t}' is not defined in teams:", k.name));
                    continue;
                }
            },
        };
        let mut limit = |l: Option<&LimitsConfig>, what: String| match l.map(|l| l.limits(&what)) {
            None => Limits::default(),
            Some(Ok(limits)) => limits,
            Some(Err(e)) => {
                errors.push(e);
                Limits::default()
            }
        };
        let mut limits = KeyLimits {
            key: limit(k.limits.as_ref(), format!("key '{}'", k.name)),
            team: team.map(|(_, t)| t.limits).unwrap_or_default(),
            user: user.map(|(_, u)| u.limits).unwrap_or_default(),
            per_user: limit(k.user_limits.as_ref(), format!("key '{}': user_limits", k.name)),
            per_model: BTreeMap::new(),
        };
        let mut unknown = Vec::new();
        for (model, l) in &k.model_limits {
            let what = format!("key '{}': model_limits.{model}", k.name);
            limits.per_model.insert(model.clone(), limit(Some(l), what));
            if !cfg.models.iter().any(|m| &m.name == model) {
                unknown.push(format!("key '{}': model_limits names '{model}', which is not a defined model", k.name));
            }
        }
        errors.append(&mut unknown);
        let budget =
            k.budget.as_ref().and_then(|b| b.budget(&format!("key '{}'", k.name)).map_err(|e| errors.push(e)).ok());
        let principal = Principal {
            team: team.map(|(t, _)| t.to_string()),
            user: user.map(|(u, _)| u.to_string()),
            capture: k.capture.or(team.and_then(|(_, t)| t.capture)),
            limits,
            budgets: budget_scopes(
                (&k.name, budget.as_ref()),
                team.map(|(t, p)| (t, p.budget.as_ref())),
                user.map(|(u, p)| (u, p.budget.as_ref())),
            ),
            admin: k.admin,
            ..Principal::new(k.name.clone(), ModelAllowList::from_patterns(k.models.clone()))
        };
        if !keys.insert(&k.key, principal) {
            errors.push(format!("key '{}': the same key value is used by another key", k.name));
        }
    }
    keys
}

fn retry_on(c: &RetryCondition, model: &str, errors: &mut Vec<String>) -> Option<RetryOn> {
    match c {
        RetryCondition::Status(429) => Some(RetryOn::RateLimited),
        RetryCondition::Status(s) if (400..600).contains(s) => Some(RetryOn::Status(*s)),
        RetryCondition::Named(n) => match n.as_str() {
            "5xx" => Some(RetryOn::ServerError),
            "429" => Some(RetryOn::RateLimited),
            "timeout" => Some(RetryOn::Timeout),
            "connect" => Some(RetryOn::Connect),
            other => {
                errors.push(format!(
                    "model '{model}': retry.on '{other}' is not one of 429, 5xx, timeout, connect or a status"
                ));
                None
            }
        },
        RetryCondition::Status(s) => {
            errors.push(format!("model '{model}': retry.on {s} is not an HTTP error status"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn build(text: &str) -> Result<Runtime, Vec<String>> {
        let cfg = parse("t.yaml", text, &|_| None).map_err(|e| vec![e.to_string()])?;
        Runtime::build(&cfg, "t.yaml")
    }

    #[test]
    fn reports_every_broken_reference() {
        let errors = build(
            "providers:\n  p: { type: openai-compatible, base_url: 'http://127.0.0.1:1/v1' }\n\
             models:\n  - name: a\n    targets: [{ provider: nope, model: x }]\n    fallbacks: [ghost]\n\
             keys:\n  - { name: k, key: short }\n",
        )
        .err()
        .unwrap_or_default();
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn zero_config_uses_environment_keys() {
        let env = |v: &str| match v {
            "GROQ_API_KEY" => Some("gsk".to_string()),
            "SWITCHYARD_MASTER_KEY" => Some("master-key-1".to_string()),
            _ => None,
        };
        let rt = Runtime::from_env(&env);
        assert!(rt.catalogue.provider("groq").is_some());
        let headers = http::HeaderMap::new();
        let caller = switchyard_router::Caller { key: "k", user: None, session: None, headers: &headers };
        let plan = rt.catalogue.plan("llama-3.3-70b", &[], Default::default(), &caller);
        assert!(plan.is_ok(), "bare names go to the default provider");
        assert!(!rt.keys.is_open());
    }

    #[test]
    fn budgets_are_checked_and_reach_the_keys_principals() {
        let base = "providers:\n  p: { type: openai-compatible, base_url: 'http://127.0.0.1:1/v1' }\n\
                    models:\n  - name: m\n    targets: [{ provider: p, model: x }]\n";
        let bad = build(&format!(
            "{base}teams:\n  - {{ name: t, budget: {{ usd: -1 }} }}\n\
             users:\n  - {{ name: u, team: nope, budget: {{ usd: 5, period: fortnightly }} }}\n\
             keys:\n  - {{ name: k, key: sk-k-12345678, user: ghost, budget: {{ usd: 1, alerts: [1.5] }} }}\n\
             budgets: {{ status: 500, webhook: ftp://x }}\n"
        ))
        .err()
        .unwrap_or_default();
        for expected in ["usd", "team 'nope'", "fortnightly", "user 'ghost'", "402 or 429", "http(s)"] {
            assert!(bad.iter().any(|e| e.contains(expected)), "no error about {expected}: {bad:?}");
        }
        let rt = build(&format!(
            "{base}teams:\n  - {{ name: t, budget: {{ usd: 100, period: monthly }} }}\n\
             users:\n  - {{ name: u, team: t, budget: {{ usd: 10, period: 7d, alerts: [0.8, 0.5] }} }}\n\
             keys:\n  - {{ name: k, key: sk-k-12345678, user: u, budget: {{ usd: 1, period: daily }} }}\n\
             logging: {{ retention: 7d }}\n"
        ))
        .unwrap_or_else(|e| panic!("{e:?}"));
        let p = rt.keys.authenticate(Some("sk-k-12345678")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.team.as_deref(), p.user.as_deref()), (Some("t"), Some("u")), "the key takes its user's team");
        let ids: Vec<String> = p.budgets.iter().map(BudgetScope::id).collect();
        assert_eq!(ids, ["key:k", "team:t", "user:u"]);
        assert_eq!(p.budgets[2].budget.alerts, [0.5, 0.8], "alerts are sorted");
        assert!(rt.warnings.iter().any(|w| w.contains("retention") && w.contains("monthly")), "{:?}", rt.warnings);
    }

    #[test]
    fn targets_take_the_list_price_unless_the_config_sets_one() {
        let rt = build(
            "providers:\n  o: { type: openai, api_key: sk-x }\n\
             models:\n  - name: listed\n    targets: [{ provider: o, model: gpt-4o }]\n\
             \x20 - name: discounted\n    targets: [{ provider: o, model: gpt-4o, price: { input_per_mtok: 2 } }]\n\
             \x20 - name: unknown\n    targets: [{ provider: o, model: in-house-1 }]\n",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let price = |m: &str| rt.catalogue.routes().find(|r| r.name == m).and_then(|r| r.targets[0].price);
        let listed = PriceTable::builtin().lookup("openai", "gpt-4o");
        assert!(listed.is_some());
        assert_eq!(price("listed"), listed);
        let discounted = price("discounted").map(|p| p.rates);
        assert_eq!(discounted.map(|r| r.input_per_mtok), Some(2.0));
        assert_eq!(
            discounted.map(|r| r.output_per_mtok),
            listed.map(|p| p.rates.output_per_mtok),
            "the rest is listed"
        );
        assert_eq!(price("unknown"), None);
    }
}
