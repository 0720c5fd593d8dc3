//! Public model names, their targets, and the plan of attempts for one request.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use switchyard_providers::{Provider, StreamStart, Timeouts};
use switchyard_types::{ErrorKind, GatewayError};

use crate::Target;
use crate::strategy::{self, Facts, Strategy};

/// Which failures move on to the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOn {
    /// 429 from the provider.
    RateLimited,
    /// Any 5xx from the provider.
    ServerError,
    /// No answer in time.
    Timeout,
    /// The provider could not be reached or broke the connection.
    Connect,
    /// A specific status.
    Status(u16),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts on this model's targets before its fallbacks; `None` tries each target once.
    pub attempts: Option<usize>,
    pub on: Vec<RetryOn>,
    /// First backoff before trying a target again; doubles per retry, with full jitter.
    pub backoff: Duration,
    /// The longest a request waits for a `retry-after` (or a rate-limited target) when no other
    /// target is available; a longer wait fails at once with the provider's 429.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: None,
            on: vec![RetryOn::RateLimited, RetryOn::ServerError, RetryOn::Timeout, RetryOn::Connect],
            backoff: Duration::from_millis(100),
            max_wait: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Whether this error may be tried again. Client errors (400, 401, 404…) would fail the same
    /// way on any target, so they are returned at once.
    pub fn retries(&self, e: &GatewayError) -> bool {
        let status = e.http_status();
        self.on.iter().any(|on| match on {
            RetryOn::RateLimited => status == 429,
            RetryOn::ServerError => e.kind == ErrorKind::Upstream && status >= 500,
            RetryOn::Timeout => e.kind == ErrorKind::Timeout,
            RetryOn::Connect => e.kind == ErrorKind::Unavailable,
            RetryOn::Status(s) => status == *s,
        })
    }

    /// Full-jitter exponential backoff before the `n`th retry of the same target (n ≥ 1):
    /// spreads retries from many requests so they do not arrive at the provider together.
    pub fn backoff(&self, n: u32) -> Duration {
        let cap = self.backoff.saturating_mul(1 << n.saturating_sub(1).min(10)).min(Duration::from_secs(5));
        cap.mul_f64(fastrand::f64())
    }
}

/// What sticky routing keys on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sticky {
    Key,
    User,
    Session,
    Header(String),
}

/// When to start a second, parallel attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeAfter {
    Fixed(Duration),
    /// The target's observed 95th percentile time to first token (the fixed delay until there are
    /// enough samples).
    P95 {
        until_known: Duration,
    },
}

#[derive(Debug)]
pub struct ModelRoute {
    pub name: String,
    pub targets: Vec<Arc<Target>>,
    pub strategy: Strategy,
    pub sticky: Option<Sticky>,
    pub fallbacks: Vec<String>,
    /// Models to use when the request is too long for this one.
    pub context_fallbacks: Vec<String>,
    /// Models to use when the provider refuses the content.
    pub content_fallbacks: Vec<String>,
    pub retry: RetryPolicy,
    pub timeouts: Timeouts,
    pub hedge: Option<HedgeAfter>,
    /// Continue a stream that breaks after it began on another target.
    pub recover_streams: bool,
    /// When a stream attempt has answered and the client's stream begins.
    pub stream_start: StreamStart,
    counter: AtomicUsize,
}

impl ModelRoute {
    pub fn new(name: impl Into<String>, targets: Vec<Arc<Target>>) -> Self {
        ModelRoute {
            name: name.into(),
            targets,
            strategy: Strategy::Weighted,
            sticky: None,
            fallbacks: Vec::new(),
            context_fallbacks: Vec::new(),
            content_fallbacks: Vec::new(),
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
            hedge: None,
            recover_streams: false,
            stream_start: StreamStart::FirstToken,
            counter: AtomicUsize::new(0),
        }
    }

    /// This model's targets in the order to try them for a request.
    pub fn order(&self, facts: &Facts) -> Vec<Arc<Target>> {
        strategy::order(&self.targets, self.strategy, facts, &self.counter)
    }
}

/// Who is asking, for sticky routing.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub key: &'a str,
    pub user: Option<&'a str>,
    pub session: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
}

/// The size of a request, for context windows and cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Demand {
    pub input_tokens: u64,
    pub max_tokens: Option<u64>,
}

/// Output tokens assumed for pricing when a request sets no `max_tokens`.
const TYPICAL_OUTPUT_TOKENS: u64 = 512;

/// One model in a plan, with what its strategy needs to know about the request.
#[derive(Debug, Clone)]
pub struct Leg {
    pub route: Arc<ModelRoute>,
    pub facts: Facts,
}

/// The models to try for one request, in order, and where to turn on two kinds of refusal.
#[derive(Debug, Clone)]
pub struct Plan {
    pub legs: Vec<Leg>,
    pub context_fallbacks: Vec<Leg>,
    pub content_fallbacks: Vec<Leg>,
    pub demand: Demand,
}

impl Plan {
    /// The most this request could cost at any target the plan may reach (fallbacks included):
    /// what a budget reserves for it. Zero when no target is priced.
    pub fn worst_case_cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        self.legs
            .iter()
            .chain(&self.context_fallbacks)
            .chain(&self.content_fallbacks)
            .flat_map(|leg| &leg.route.targets)
            .filter_map(|t| t.price)
            .map(|p| p.worst_case(input_tokens, output_tokens))
            .fold(0.0, f64::max)
    }
}

#[derive(Debug, Default)]
pub struct Catalogue {
    models: HashMap<String, Arc<ModelRoute>>,
    /// Public names in config order, for `GET /v1/models`.
    order: Vec<String>,
    providers: HashMap<String, Arc<Provider>>,
    /// Where a bare model name that no route names goes (zero-config mode).
    default_provider: Option<String>,
    /// Routes made for `provider/model` names, kept so their targets keep breakers and rate
    /// limits across requests. Bounded: the names come from clients.
    direct: Mutex<HashMap<String, Arc<ModelRoute>>>,
}

/// Direct routes remembered at most; past it the memory starts over (a client inventing names
/// must not grow it without end).
const MAX_DIRECT_ROUTES: usize = 1024;

impl Catalogue {
    pub fn new(providers: HashMap<String, Arc<Provider>>, default_provider: Option<String>) -> Self {
        Catalogue { providers, default_provider, ..Default::default() }
    }

    pub fn add(&mut self, route: ModelRoute) {
        self.order.push(route.name.clone());
        self.models.insert(route.name.clone(), Arc::new(route));
    }

    pub fn provider(&self, name: &str) -> Option<&Arc<Provider>> {
        self.providers.get(name)
    }

    pub fn providers(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.providers.values()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.models.contains_key(name)
    }

    pub fn route(&self, name: &str) -> Option<&Arc<ModelRoute>> {
        self.models.get(name)
    }

    /// Routes in config order.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<ModelRoute>> {
        self.order.iter().filter_map(|n| self.models.get(n))
    }

    pub fn public_models(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    /// The plan for a request: the model, then the models the request itself lists as
    /// alternatives (OpenRouter's `models`), then every configured fallback, transitively and
    /// breadth-first, each model once.
    pub fn plan(
        &self,
        model: &str,
        alternatives: &[String],
        demand: Demand,
        caller: &Caller,
    ) -> Result<Plan, GatewayError> {
        let mut start = vec![self.resolve(model, "model")?];
        for alt in alternatives {
            start.push(self.resolve(alt, "models")?);
        }
        let context = start[0].context_fallbacks.clone();
        let content = start[0].content_fallbacks.clone();
        Ok(Plan {
            legs: self.chain(start, demand, caller),
            context_fallbacks: self.chain(self.named(&context), demand, caller),
            content_fallbacks: self.chain(self.named(&content), demand, caller),
            demand,
        })
    }

    fn named(&self, names: &[String]) -> Vec<Arc<ModelRoute>> {
        names.iter().filter_map(|n| self.models.get(n).cloned()).collect()
    }

    fn chain(&self, start: Vec<Arc<ModelRoute>>, demand: Demand, caller: &Caller) -> Vec<Leg> {
        let mut queue: VecDeque<Arc<ModelRoute>> = start.into();
        let mut seen: Vec<String> = Vec::new();
        let mut legs = Vec::new();
        while let Some(route) = queue.pop_front() {
            if seen.contains(&route.name) {
                continue;
            }
            seen.push(route.name.clone());
            queue.extend(self.named(&route.fallbacks));
            let facts = Facts {
                input_tokens: demand.input_tokens,
                output_tokens: demand.max_tokens.unwrap_or(TYPICAL_OUTPUT_TOKENS),
                sticky: route.sticky.as_ref().and_then(|s| sticky_value(s, caller)),
            };
            legs.push(Leg { route, facts });
        }
        legs
    }

    fn resolve(&self, model: &str, param: &str) -> Result<Arc<ModelRoute>, GatewayError> {
        if let Some(r) = self.models.get(model) {
            return Ok(r.clone());
        }
        self.direct(model).ok_or_else(|| {
            GatewayError::new(
                ErrorKind::NotFound,
                format!("The model `{model}` does not exist or you do not have access to it."),
            )
            .with_code("model_not_found")
            .with_param(param)
        })
    }

    /// A name no route defines may address a provider directly as `provider/model`; in
    /// zero-config mode a bare name goes to the default provider.
    fn direct(&self, model: &str) -> Option<Arc<ModelRoute>> {
        let (provider, upstream_model) = match model.split_once('/') {
            Some((p, m)) if self.providers.contains_key(p) && !m.is_empty() => (p, m),
            _ => (self.default_provider.as_deref()?, model),
        };
        let provider = self.providers.get(provider)?.clone();
        let mut known = self.direct.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(route) = known.get(model) {
            return Some(route.clone());
        }
        if known.len() >= MAX_DIRECT_ROUTES {
            known.clear();
        }
        let route = Arc::new(ModelRoute::new(model, vec![Arc::new(Target::new(provider, upstream_model))]));
        known.insert(model.to_string(), route.clone());
        Some(route)
    }
}

fn sticky_value(sticky: &Sticky, caller: &Caller) -> Option<String> {
    match sticky {
        Sticky::Key => Some(caller.key.to_string()),
        Sticky::User => caller.user.map(str::to_string),
        Sticky::Session => caller.session.map(str::to_string),
        Sticky::Header(name) => caller.headers.get(name.as_str()).and_then(|v| v.to_str().ok()).map(str::to_string),
    }
}

#[cfg(test)]
mod tests {

    use switchyard_providers::{ProviderSpec, ProviderType};

    use super::*;

    #[test]
    fn direct_routes_keep_their_target_across_requests() {
        let spec = ProviderSpec::of(ProviderType::Ollama);
        let provider = Arc::new(Provider::new("local", &spec).unwrap_or_else(|e| panic!("{e}")));
        let catalogue = Catalogue::new([("local".to_string(), provider)].into(), None);
        let headers = http::HeaderMap::new();
        let caller = Caller { key: "k", user: None, session: None, headers: &headers };
        let target = |model: &str| {
            let plan = catalogue.plan(model, &[], Demand::default(), &caller).unwrap_or_else(|e| panic!("{e}"));
            plan.legs[0].route.targets[0].clone()
        };
        // The same target (and so the same breaker and rate limit) every time.
        assert!(Arc::ptr_eq(&target("local/llama3"), &target("local/llama3")));
        assert_eq!(target("local/llama3").model, "llama3");
        assert!(catalogue.plan("elsewhere/x", &[], Demand::default(), &caller).is_err());
    }
}
