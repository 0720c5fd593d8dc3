//! Runs a plan: attempt after attempt, until one answers or a failure is final.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use switchyard_providers::UPSTREAM_AUTH_ERROR;
use switchyard_types::{ErrorKind, GatewayError};

use crate::Target;
use crate::catalogue::{HedgeAfter, Leg, ModelRoute, Plan};
use crate::health::Refusal;
use crate::target::{InFlight, Permit};

/// One attempt handed to the caller's function.
pub struct Attempt {
    pub target: Arc<Target>,
    pub route: Arc<ModelRoute>,
    /// Counts the request in flight on the target while it lives: keep it with the answer (a
    /// stream holds it until it ends).
    pub in_flight: InFlight,
    /// Set when the answer comes before its first token; see `time_first_token_later`.
    first_token_later: Arc<AtomicBool>,
}

impl Attempt {
    /// For an attempt that answers before its first token (a stream begun at the upstream's
    /// first event): the executor then takes no time-to-first-token sample when it answers,
    /// and the caller takes it at the first token with `InFlight::first_token`.
    pub fn time_first_token_later(&self) {
        self.first_token_later.store(true, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    Failed(String),
    /// Not sent: the target was cooling, rate-limited or too small for the request.
    Skipped(String),
    /// A hedged attempt that lost the race and was cancelled.
    Cancelled,
}

/// What happened in one attempt, for response headers, errors and logs.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub model: String,
    pub provider: String,
    pub target_model: String,
    /// When the attempt began (or was skipped).
    pub started: Instant,
    pub elapsed: Duration,
    pub outcome: Outcome,
}

impl AttemptRecord {
    /// Whether a request went to the provider.
    pub fn was_sent(&self) -> bool {
        !matches!(self.outcome, Outcome::Skipped(_))
    }
}

pub struct Execution<T> {
    pub result: Result<T, GatewayError>,
    /// The model and target that answered.
    pub answered: Option<(Arc<ModelRoute>, Arc<Target>)>,
    pub attempts: Vec<AttemptRecord>,
}

impl<T> Execution<T> {
    /// Requests actually sent to providers.
    pub fn sent(&self) -> usize {
        self.attempts.iter().filter(|a| a.was_sent()).count()
    }
}

/// Runs the plan. `attempt` makes one call; it is called again for retries, fallbacks and hedges,
/// and may run twice at once when a model hedges.
pub async fn execute<T, F, Fut>(plan: &Plan, attempt: F) -> Execution<T>
where
    F: Fn(Attempt) -> Fut,
    Fut: Future<Output = Result<T, GatewayError>>,
{
    execute_avoiding(plan, &[], attempt).await
}

/// Like `execute`, but the `avoid` targets (one that just broke, say) are tried only after every
/// other target of their model.
pub async fn execute_avoiding<T, F, Fut>(plan: &Plan, avoid: &[Arc<Target>], attempt: F) -> Execution<T>
where
    F: Fn(Attempt) -> Fut,
    Fut: Future<Output = Result<T, GatewayError>>,
{
    let mut run = Run {
        attempts: Vec::new(),
        last_error: None,
        soonest: None,
        only_rate_limited: true,
        avoid,
        attempt: &attempt,
    };
    let mut legs = plan.legs.clone();
    let mut turned = false;
    let mut i = 0;
    while let Some(leg) = legs.get(i).cloned() {
        i += 1;
        match run.leg(&leg, plan).await {
            LegEnd::Answered(value, target) => {
                return Execution { result: Ok(value), answered: Some((leg.route, target)), attempts: run.attempts };
            }
            LegEnd::Exhausted => {}
            LegEnd::Final(e) => return run.fail(e),
            // Too long for this model: the context-window fallbacks take over, once. Without
            // them, a refusal by the provider is the client's error; a skip (known before
            // sending) moves on to the ordinary fallbacks, which may be larger.
            LegEnd::TooLong(refusal) if !turned && !plan.context_fallbacks.is_empty() => {
                turned = true;
                legs = plan.context_fallbacks.clone();
                i = 0;
                let _ = refusal;
            }
            LegEnd::TooLong(Some(e)) => return run.fail(e),
            LegEnd::TooLong(None) => {}
            LegEnd::ContentRefused(_) if !turned && !plan.content_fallbacks.is_empty() => {
                turned = true;
                legs = plan.content_fallbacks.clone();
                i = 0;
            }
            LegEnd::ContentRefused(e) => return run.fail(e),
        }
    }
    let e = run.last_error.take().unwrap_or_else(|| {
        // Nothing was sent: every target was cooling or rate-limited. Say which, and when to
        // come back, instead of making the client guess.
        let mut e = if run.only_rate_limited && run.soonest.is_some() {
            GatewayError::new(ErrorKind::RateLimited, "Every target of this model is rate-limited by its provider.")
                .with_code("all_targets_rate_limited")
        } else {
            GatewayError::new(ErrorKind::Unavailable, "No target can take the request now.")
                .with_code("no_available_target")
        };
        e.retry_after = run.soonest.map(|d| d.max(Duration::from_secs(1)));
        e
    });
    run.fail(e)
}

enum LegEnd<T> {
    Answered(T, Arc<Target>),
    /// Every attempt the model allows failed or was skipped.
    Exhausted,
    /// A failure no other target would fix.
    Final(GatewayError),
    /// The request is too long for this model; the provider's refusal if it said so.
    TooLong(Option<GatewayError>),
    ContentRefused(GatewayError),
}

struct Run<'a, F> {
    attempts: Vec<AttemptRecord>,
    last_error: Option<GatewayError>,
    /// The earliest time a skipped target could be tried, for `retry-after` on a 503.
    soonest: Option<Duration>,
    /// Every skip so far was a provider's rate limit (not a breaker, not a drain).
    only_rate_limited: bool,
    avoid: &'a [Arc<Target>],
    attempt: &'a F,
}

impl<F, Fut, T> Run<'_, F>
where
    F: Fn(Attempt) -> Fut,
    Fut: Future<Output = Result<T, GatewayError>>,
{
    async fn leg(&mut self, leg: &Leg, plan: &Plan) -> LegEnd<T> {
        let route = &leg.route;
        let mut order = route.order(&leg.facts);
        order.sort_by_key(|t| contains(self.avoid, t));
        if order.is_empty() {
            self.only_rate_limited = false;
            self.skip(route, None, "every target is drained".into());
            return LegEnd::Exhausted;
        }
        // By default each target once, and a lone target twice: one retry of a transient failure
        // is worth it; the breaker stops retries from piling up during an outage.
        let budget = route.retry.attempts.unwrap_or(order.len().max(2)).max(1);
        let needed = plan.demand.input_tokens.saturating_add(plan.demand.max_tokens.unwrap_or(0));
        let mut sent = 0;
        let mut tried: Vec<Arc<Target>> = Vec::new();
        let mut skipped: Vec<Arc<Target>> = Vec::new();
        let mut retries = 0;
        let mut key_retries = 0;
        let mut idx = 0;
        // Bounded even if every attempt is skipped: each target is looked at a few times at most.
        while sent < budget && idx < order.len() * 3 + budget {
            let target = order[idx % order.len()].clone();
            idx += 1;
            if let Some(window) = target.context_window.filter(|w| needed > *w) {
                if !contains(&skipped, &target) {
                    skipped.push(target.clone());
                    self.only_rate_limited = false;
                    self.skip(route, Some(&target), format!("~{needed} tokens exceed its context window of {window}"));
                }
                if order.iter().all(|t| t.context_window.is_some_and(|w| needed > w)) {
                    return LegEnd::TooLong(None);
                }
                continue;
            }
            let permit = match target.acquire() {
                Ok(permit) => permit,
                Err(refusal) => {
                    let others = order.iter().any(|t| !Arc::ptr_eq(t, &target) && t.is_available());
                    let waited = match refusal {
                        // A pause the provider asked for is worth waiting out when it is short
                        // and nothing else can answer; a breaker's cooldown never is.
                        Refusal::RateLimited(wait) if wait <= route.retry.max_wait && !others => {
                            tokio::time::sleep(wait).await;
                            target.acquire().ok()
                        }
                        _ => None,
                    };
                    match waited {
                        Some(permit) => permit,
                        None => {
                            self.soonest = Some(self.soonest.map_or(refusal.wait(), |s| s.min(refusal.wait())));
                            self.only_rate_limited &= matches!(refusal, Refusal::RateLimited(_));
                            if !contains(&skipped, &target) {
                                skipped.push(target.clone());
                                let why = match refusal {
                                    Refusal::Open(w) => format!("breaker open, retry in {} ms", w.as_millis()),
                                    Refusal::RateLimited(w) => format!("rate-limited, retry in {} ms", w.as_millis()),
                                };
                                self.skip(route, Some(&target), why);
                            }
                            if !order.iter().any(|t| t.is_available()) {
                                break;
                            }
                            continue;
                        }
                    }
                }
            };
            if contains(&tried, &target) {
                retries += 1;
                tokio::time::sleep(route.retry.backoff(retries)).await;
            }
            tried.push(target.clone());
            sent += 1;
            let backup = order.iter().find(|t| !contains(&tried, t) && t.is_available()).cloned();
            let (result, target) = self.hedged(route, target, permit, backup, &mut tried).await;
            let e = match result {
                Ok(value) => return LegEnd::Answered(value, target),
                Err(e) => e,
            };
            let status = e.http_status();
            if is_context_overflow(&e) {
                return LegEnd::TooLong(Some(e));
            }
            if is_content_refusal(&e) {
                return LegEnd::ContentRefused(e);
            }
            let provider = &target.provider;
            if (status == 429 || e.code.as_deref() == Some(UPSTREAM_AUTH_ERROR))
                && provider.key_count() > 1
                && provider.has_usable_key()
                && key_retries < provider.key_count()
            {
                // That key is retired or resting; another key of the same provider may answer.
                // This is the provider's key problem, not the model's, so it uses no attempt.
                key_retries += 1;
                sent -= 1;
                idx -= 1;
                self.last_error = Some(e);
                continue;
            }
            if !route.retry.retries(&e) {
                return LegEnd::Final(e);
            }
            self.last_error = Some(e);
        }
        LegEnd::Exhausted
    }

    /// One attempt, with a second one racing it if the model hedges and the first is slow.
    async fn hedged(
        &mut self,
        route: &Arc<ModelRoute>,
        target: Arc<Target>,
        permit: Permit,
        backup: Option<Arc<Target>>,
        tried: &mut Vec<Arc<Target>>,
    ) -> (Result<T, GatewayError>, Arc<Target>) {
        let (Some(hedge), Some(backup)) = (route.hedge, backup) else {
            let (result, record) = one(self.attempt, route.clone(), target.clone(), permit).await;
            self.attempts.push(record);
            return (result, target);
        };
        let delay = match hedge {
            HedgeAfter::Fixed(d) => d,
            HedgeAfter::P95 { until_known } => target.stats.p95_ttft().unwrap_or(until_known),
        };
        let first_started = Instant::now();
        let first = one(self.attempt, route.clone(), target.clone(), permit);
        tokio::pin!(first);
        tokio::select! {
            (result, record) = &mut first => {
                self.attempts.push(record);
                return (result, target);
            }
            () = tokio::time::sleep(delay) => {}
        }
        let Ok(backup_permit) = backup.acquire() else {
            let (result, record) = first.await;
            self.attempts.push(record);
            return (result, target);
        };
        tried.push(backup.clone());
        let second_started = Instant::now();
        let second = one(self.attempt, route.clone(), backup.clone(), backup_permit);
        tokio::pin!(second);
        // The first answer wins; the other attempt is dropped, which cancels its upstream call
        // (and releases its breaker probe, if it held one). A failure is noted for its target
        // before waiting on the other.
        let (result, winner, (loser, loser_started)) = tokio::select! {
            (result, record) = &mut first => {
                self.attempts.push(record);
                match result {
                    Ok(v) => (Ok(v), target, (backup, second_started)),
                    Err(_) => {
                        let (result, record) = second.await;
                        self.attempts.push(record);
                        return (result, backup);
                    }
                }
            }
            (result, record) = &mut second => {
                self.attempts.push(record);
                match result {
                    Ok(v) => (Ok(v), backup, (target, first_started)),
                    Err(_) => {
                        let (result, record) = first.await;
                        self.attempts.push(record);
                        return (result, target);
                    }
                }
            }
        };
        self.attempts.push(AttemptRecord {
            model: route.name.clone(),
            provider: loser.provider.name.clone(),
            target_model: loser.model.clone(),
            started: loser_started,
            elapsed: loser_started.elapsed(),
            outcome: Outcome::Cancelled,
        });
        (result, winner)
    }

    fn skip(&mut self, route: &ModelRoute, target: Option<&Arc<Target>>, why: String) {
        self.attempts.push(AttemptRecord {
            model: route.name.clone(),
            provider: target.map(|t| t.provider.name.clone()).unwrap_or_default(),
            target_model: target.map(|t| t.model.clone()).unwrap_or_default(),
            started: Instant::now(),
            elapsed: Duration::ZERO,
            outcome: Outcome::Skipped(why),
        });
    }

    /// The final error, with every attempt listed when there was more than one.
    fn fail(self, mut error: GatewayError) -> Execution<T> {
        if self.attempts.len() > 1 {
            let tried: Vec<String> = self
                .attempts
                .iter()
                .map(|a| {
                    let what = match &a.outcome {
                        Outcome::Answered => "answered".to_string(),
                        Outcome::Failed(m) => m.clone(),
                        Outcome::Skipped(m) => format!("skipped: {m}"),
                        Outcome::Cancelled => "cancelled".to_string(),
                    };
                    format!("{}/{}: {what}", a.provider, a.target_model)
                })
                .collect();
            error.message = format!("{} (attempts: {})", error.message, tried.join("; "));
        }
        Execution { result: Err(error), answered: None, attempts: self.attempts }
    }
}

/// Makes one call and times it, holding the target's permit until it ends. A success records
/// the time to first token, unless the attempt takes that sample itself later.
async fn one<F, Fut, T>(
    attempt: &F,
    route: Arc<ModelRoute>,
    target: Arc<Target>,
    permit: Permit,
) -> (Result<T, GatewayError>, AttemptRecord)
where
    F: Fn(Attempt) -> Fut,
    Fut: Future<Output = Result<T, GatewayError>>,
{
    let started = Instant::now();
    let in_flight = InFlight::new(target.clone());
    let first_token_later = Arc::new(AtomicBool::new(false));
    let result = attempt(Attempt {
        target: target.clone(),
        route: route.clone(),
        in_flight,
        first_token_later: first_token_later.clone(),
    })
    .await;
    let elapsed = started.elapsed();
    // The verdict is given while the permit is held, so a failed probe reopens the breaker;
    // only then is the permit dropped (which releases a probe that got no verdict).
    let outcome = match &result {
        Ok(_) => {
            target.health.record_success();
            if !first_token_later.load(Ordering::Relaxed) {
                target.stats.record_ttft(elapsed);
            }
            Outcome::Answered
        }
        Err(e) => {
            target.stats.failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            note_failure(&route, &target, e);
            Outcome::Failed(e.message.clone())
        }
    };
    drop(permit);
    let record = AttemptRecord {
        model: route.name.clone(),
        provider: target.provider.name.clone(),
        target_model: target.model.clone(),
        started,
        elapsed,
        outcome,
    };
    (result, record)
}

/// What a retryable failure says about its target: a 429 holds it back for the provider's
/// `retry-after` (it is alive, not broken); anything else counts against its breaker. A key's
/// problem (a 429 or refused credential while the provider has other usable keys) says nothing
/// about the target: the key rests or retires, and the next key is tried.
fn note_failure(route: &ModelRoute, target: &Target, e: &GatewayError) {
    if !route.retry.retries(e) {
        return;
    }
    let key_problem = e.http_status() == 429 || e.code.as_deref() == Some(UPSTREAM_AUTH_ERROR);
    if key_problem && target.provider.key_count() > 1 && target.provider.has_usable_key() {
        return;
    }
    if e.http_status() == 429 {
        target.health.limit_for(e.retry_after.unwrap_or(Duration::from_secs(1)));
    } else {
        target.health.record_failure();
    }
}

fn contains(list: &[Arc<Target>], t: &Arc<Target>) -> bool {
    list.iter().any(|x| Arc::ptr_eq(x, t))
}

/// The provider said the request is longer than the model's context window.
fn is_context_overflow(e: &GatewayError) -> bool {
    let code = e.code.as_deref().unwrap_or_default();
    code == "context_length_exceeded"
        || (e.http_status() == 400
            && (e.message.contains("maximum context length") || e.message.contains("context window")))
}

/// The provider refused the content (moderation, safety filters).
fn is_content_refusal(e: &GatewayError) -> bool {
    matches!(e.code.as_deref(), Some("content_policy_violation" | "content_filter"))
}
