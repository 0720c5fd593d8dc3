//! Public model names, their targets, and the ordered plan of attempts for one request.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use switchyard_providers::{Provider, Timeouts};
use switchyard_types::{ErrorKind, GatewayError};

use crate::Health;

/// One deployment: a provider and the model name it knows.
#[derive(Debug)]
pub struct Target {
    pub provider: Arc<Provider>,
    pub model: String,
    pub weight: u32,
    pub health: Health,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Random order, biased by weight: traffic splits by weight and failures spread out.
    Weighted,
    /// Each request starts at the next target.
    RoundRobin,
}

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
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: None,
            on: vec![RetryOn::RateLimited, RetryOn::ServerError, RetryOn::Timeout, RetryOn::Connect],
        }
    }
}

impl RetryPolicy {
    /// Whether this error may be tried again elsewhere. Client errors (400, 401, 404…) would fail
    /// the same way on any target, so they are returned at once.
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
}

#[derive(Debug)]
pub struct ModelRoute {
    pub name: String,
    pub targets: Vec<Arc<Target>>,
    pub strategy: Strategy,
    pub fallbacks: Vec<String>,
    pub retry: RetryPolicy,
    pub timeouts: Timeouts,
    next: AtomicUsize,
}

impl ModelRoute {
    pub fn new(
        name: String,
        targets: Vec<Arc<Target>>,
        strategy: Strategy,
        fallbacks: Vec<String>,
        retry: RetryPolicy,
        timeouts: Timeouts,
    ) -> Self {
        ModelRoute { name, targets, strategy, fallbacks, retry, timeouts, next: AtomicUsize::new(0) }
    }

    /// This model's targets in the order to try them: available ones first (by strategy), then
    /// cooling ones as a last resort, so a model never refuses outright while it has targets.
    fn ordered(&self) -> Vec<Arc<Target>> {
        let mut order: Vec<Arc<Target>> = match self.strategy {
            Strategy::RoundRobin => {
                let start = self.next.fetch_add(1, Ordering::Relaxed) % self.targets.len().max(1);
                self.targets.iter().cycle().skip(start).take(self.targets.len()).cloned().collect()
            }
            Strategy::Weighted => {
                // Efraimidis–Spirakis: sorting by u^(1/w) gives a weighted random permutation.
                let mut keyed: Vec<(f64, Arc<Target>)> = self
                    .targets
                    .iter()
                    .map(|t| (fastrand::f64().powf(1.0 / f64::from(t.weight.max(1))), t.clone()))
                    .collect();
                keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
                keyed.into_iter().map(|(_, t)| t).collect()
            }
        };
        order.sort_by_key(|t| !t.health.is_available());
        order
    }
}

/// One planned attempt.
#[derive(Debug, Clone)]
pub struct Step {
    pub route: Arc<ModelRoute>,
    pub target: Arc<Target>,
}

/// The ordered attempts for one request.
#[derive(Debug, Clone)]
pub struct Plan {
    pub steps: Vec<Step>,
}

#[derive(Debug, Default)]
pub struct Catalogue {
    models: HashMap<String, Arc<ModelRoute>>,
    /// Public names in config order, for `GET /v1/models`.
    order: Vec<String>,
    providers: HashMap<String, Arc<Provider>>,
    /// Where a bare model name that no route names goes (zero-config mode).
    default_provider: Option<String>,
    direct_timeouts: Timeouts,
}

impl Catalogue {
    pub fn new(
        providers: HashMap<String, Arc<Provider>>,
        default_provider: Option<String>,
        direct_timeouts: Timeouts,
    ) -> Self {
        Catalogue { providers, default_provider, direct_timeouts, ..Default::default() }
    }

    pub fn add(&mut self, route: ModelRoute) {
        self.order.push(route.name.clone());
        self.models.insert(route.name.clone(), Arc::new(route));
    }

    pub fn provider(&self, name: &str) -> Option<&Arc<Provider>> {
        self.providers.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.models.contains_key(name)
    }

    pub fn route(&self, name: &str) -> Option<&Arc<ModelRoute>> {
        self.models.get(name)
    }

    pub fn public_models(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    /// The attempts for a requested model: its targets, then each fallback model's targets.
    ///
    /// A name no route defines may still address a provider directly as `provider/model`, and in
    /// zero-config mode a bare name goes to the default provider.
    pub fn plan(&self, model: &str) -> Result<Plan, GatewayError> {
        let Some(route) = self.models.get(model) else {
            return self.direct(model).ok_or_else(|| {
                GatewayError::new(
                    ErrorKind::NotFound,
                    format!("The model `{model}` does not exist or you do not have access to it."),
                )
                .with_code("model_not_found")
                .with_param("model")
            });
        };
        // Fallbacks are followed breadth-first and transitively (a → b → c), each model once,
        // so a chain written across models works and a cycle cannot loop.
        let mut steps = Vec::new();
        let mut queue = std::collections::VecDeque::from([route.clone()]);
        let mut seen = vec![route.name.clone()];
        while let Some(r) = queue.pop_front() {
            self.push_steps(&r, &mut steps);
            for fallback in &r.fallbacks {
                if seen.contains(fallback) {
                    continue;
                }
                seen.push(fallback.clone());
                if let Some(next) = self.models.get(fallback) {
                    queue.push_back(next.clone());
                }
            }
        }
        Ok(Plan { steps })
    }

    fn push_steps(&self, route: &Arc<ModelRoute>, steps: &mut Vec<Step>) {
        let ordered = route.ordered();
        let n = route.retry.attempts.unwrap_or(ordered.len()).max(1);
        for target in ordered.iter().cycle().take(n.min(ordered.len() * 8)) {
            steps.push(Step { route: route.clone(), target: target.clone() });
        }
    }

    fn direct(&self, model: &str) -> Option<Plan> {
        let (provider, upstream_model) = match model.split_once('/') {
            Some((p, m)) if self.providers.contains_key(p) && !m.is_empty() => (p, m),
            _ => (self.default_provider.as_deref()?, model),
        };
        let provider = self.providers.get(provider)?.clone();
        let target =
            Arc::new(Target { provider, model: upstream_model.to_string(), weight: 1, health: Health::default() });
        let route = Arc::new(ModelRoute::new(
            model.to_string(),
            vec![target.clone()],
            Strategy::Weighted,
            Vec::new(),
            RetryPolicy::default(),
            self.direct_timeouts,
        ));
        Some(Plan { steps: vec![Step { route, target }] })
    }
}

pub use Step as PlanStep;
