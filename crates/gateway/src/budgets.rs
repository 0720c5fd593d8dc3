//! The work budgets need beside requests: loading spend from the request log into the books
//! (at start, for budgets added later, and into Redis after it lost its data), adding spend
//! settled during a Redis outage once it is back, and sending alerts to the webhook.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use switchyard_policy::{Alerts, BudgetScope, Crossing, usd};
use switchyard_store::time::{format_us, now_us};
use tokio::sync::mpsc::Receiver;

use crate::AppState;

/// How often budgets are seeded and deferred spend is flushed.
const TICK: Duration = Duration::from_secs(5);
/// A store query of the keeper gives up after this; the next tick tries again.
const QUERY_WAIT: Duration = Duration::from_secs(10);
/// Attempts per alert, and the wait for the receiver to answer each.
const ALERT_ATTEMPTS: u32 = 3;
const ALERT_WAIT: Duration = Duration::from_secs(10);

/// Starts the keeper and the alert sender. Call after the store is attached.
pub fn start(state: &mut AppState) {
    let (alerts, rx) = Alerts::channel();
    state.alerts = alerts;
    tokio::spawn(send_alerts(state.clone(), rx));
    tokio::spawn(keep(state.clone()));
}

/// Every budget some key counts against now, once each.
pub fn scopes(state: &AppState) -> Vec<BudgetScope> {
    let rt = state.runtime.load();
    let stored = state.store_keys.load();
    let mut out: HashMap<String, BudgetScope> = HashMap::new();
    for p in rt.keys.principals().chain(stored.principals()) {
        for s in &p.budgets {
            out.entry(s.id()).or_insert_with(|| s.clone());
        }
    }
    let mut list: Vec<BudgetScope> = out.into_values().collect();
    list.sort_by_key(BudgetScope::id);
    list
}

async fn keep(state: AppState) {
    let started = now_us();
    loop {
        if let Some(store) = &state.store {
            for scope in scopes(&state) {
                // The ledger of this instance: the log's spend before it started.
                let local = tokio::time::timeout(QUERY_WAIT, state.budgets.seed_from(store, &scope, started)).await;
                if let Ok(Err(e)) = local {
                    tracing::debug!(error = %e, scope = %scope.id(), "cannot load a budget's spend from the store yet");
                }
                if let Some(shared) = &state.shared_budgets
                    && !shared.degraded()
                {
                    let _ = tokio::time::timeout(QUERY_WAIT, shared.seed(store, &scope)).await;
                }
            }
        }
        if let Some(shared) = &state.shared_budgets {
            let pending = shared.flush().await;
            state.metrics.budget_pending(usd(pending));
        }
        tokio::time::sleep(TICK).await;
    }
}

/// The JSON an alert is sent as.
pub fn alert_body(c: &Crossing) -> serde_json::Value {
    json!({
        "type": if c.threshold >= 1.0 { "budget.exhausted" } else { "budget.threshold" },
        "owner": c.owner.as_str(),
        "name": c.name,
        "threshold": c.threshold,
        "spent_usd": usd(c.spent),
        "budget_usd": usd(c.max),
        "period": c.period.name(),
        "resets_at": c.resets_at_us.map(format_us),
        "at": format_us(now_us()),
    })
}

async fn send_alerts(state: AppState, mut rx: Receiver<Crossing>) {
    let client = match reqwest::Client::builder().timeout(ALERT_WAIT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the budget webhook client: alerts are only logged");
            reqwest::Client::new()
        }
    };
    while let Some(c) = rx.recv().await {
        let body = alert_body(&c);
        tracing::warn!(alert = %body, "budget alert");
        let settings = state.runtime.load().budgets.clone();
        let Some(url) = settings.webhook else { continue };
        let mut delivered = false;
        for attempt in 0..ALERT_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
            }
            let mut req = client.post(&url).header("content-type", "application/json").body(body.to_string());
            for (k, v) in &settings.webhook_headers {
                req = req.header(k, v);
            }
            match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    delivered = true;
                    break;
                }
                Ok(resp) => tracing::warn!(status = resp.status().as_u16(), "the budget webhook refused an alert"),
                // The URL is the operator's; the error is reqwest's, without the body.
                Err(e) => tracing::warn!(error = %e.without_url(), "the budget webhook could not be reached"),
            }
        }
        state.metrics.budget_alert(if delivered { "sent" } else { "failed" });
    }
}
