//! Runs a plan: attempt after attempt until one succeeds or a failure is final.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_types::{ErrorKind, GatewayError};

use crate::Plan;
use crate::catalogue::PlanStep;

/// What happened in one attempt, for response headers and logs.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub provider: String,
    pub model: String,
    pub elapsed: Duration,
    /// `None` for the attempt that answered.
    pub error: Option<String>,
}

pub struct Execution<T> {
    pub result: Result<T, GatewayError>,
    /// The step that answered.
    pub answered: Option<PlanStep>,
    pub attempts: Vec<AttemptRecord>,
}

/// Tries each step in turn. A step's failure moves on only if its model's retry policy says the
/// error is worth another target; otherwise, or when steps run out, the last error is returned.
pub async fn execute<T, F, Fut>(plan: &Plan, mut attempt: F) -> Execution<T>
where
    F: FnMut(PlanStep) -> Fut,
    Fut: Future<Output = Result<T, GatewayError>>,
{
    let mut attempts = Vec::new();
    let mut last_error = None;
    for step in &plan.steps {
        let started = Instant::now();
        let target = step.target.clone();
        match attempt(step.clone()).await {
            Ok(value) => {
                target.health.record_success();
                attempts.push(record(&target, started, None));
                return Execution { result: Ok(value), answered: Some(step.clone()), attempts };
            }
            Err(e) => {
                let retryable = step.route.retry.retries(&e);
                if retryable {
                    target.health.record_failure();
                }
                attempts.push(record(&target, started, Some(e.message.clone())));
                last_error = Some(e);
                if !retryable {
                    break;
                }
            }
        }
    }
    let mut error = last_error.unwrap_or_else(|| {
        GatewayError::new(ErrorKind::Unavailable, "The model has no target to send the request to.")
    });
    if attempts.len() > 1 {
        let tried: Vec<String> = attempts
            .iter()
            .map(|a| format!("{}/{}: {}", a.provider, a.model, a.error.as_deref().unwrap_or("ok")))
            .collect();
        error.message = format!("{} (after {} attempts: {})", error.message, attempts.len(), tried.join("; "));
    }
    Execution { result: Err(error), answered: None, attempts }
}

fn record(target: &Arc<crate::Target>, started: Instant, error: Option<String>) -> AttemptRecord {
    AttemptRecord {
        provider: target.provider.name.clone(),
        model: target.model.clone(),
        elapsed: started.elapsed(),
        error,
    }
}
