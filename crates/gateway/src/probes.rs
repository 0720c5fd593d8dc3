//! Active health checks: providers with `health_check` are probed in the background, and the
//! result feeds their targets' breakers, so an outage opens them before a client pays for it and
//! a recovery closes them without waiting for a client's probe.

use std::sync::{Arc, Weak};
use std::time::Duration;

use switchyard_providers::UpstreamClient;

use crate::AppState;
use crate::runtime::Runtime;

/// Starts a probe task per provider that asks for one. A task ends when its config is replaced.
pub fn start(state: &AppState) {
    let rt = state.runtime.load_full();
    for provider in rt.catalogue.providers() {
        let Some(check) = provider.health_check else { continue };
        let interval = Duration::from_secs_f64(check.interval_secs.max(0.05));
        let weak = Arc::downgrade(&rt);
        let client = state.client.clone();
        let name = provider.name.clone();
        tokio::spawn(probe_loop(weak, name, interval, client));
    }
}

async fn probe_loop(runtime: Weak<Runtime>, provider: String, interval: Duration, client: UpstreamClient) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(rt) = runtime.upgrade() else { return };
        let Some(p) = rt.catalogue.provider(&provider).cloned() else { return };
        let healthy = p.probe(client.http(), interval.min(Duration::from_secs(10))).await;
        for route in rt.catalogue.routes() {
            for t in route.targets.iter().filter(|t| Arc::ptr_eq(&t.provider, &p)) {
                apply(t, healthy);
            }
        }
        drop(rt);
    }
}

fn apply(t: &switchyard_router::Target, healthy: bool) {
    use switchyard_router::BreakerState;
    match (healthy, t.health.state()) {
        (false, _) => t.health.record_failure(),
        (true, BreakerState::Closed) => {}
        (true, _) => t.health.record_success(),
    }
}
