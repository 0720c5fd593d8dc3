//! The order in which a model's targets are tried for one request.
//!
//! Every strategy orders within a priority tier; tiers never mix (tier 2 is tried only after
//! every available tier-1 target). Unavailable targets (breaker open, rate-limited) go last, so a
//! request can still reach one whose cooldown ends while earlier attempts run. Drained targets are
//! left out.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// A weight-biased random order: traffic splits by weight and failures spread out.
    Weighted,
    /// Each request starts at the next target.
    RoundRobin,
    /// Fewest requests in flight per unit of weight first.
    LeastBusy,
    /// Power of two choices over the moving average of time to first token, penalised by requests
    /// in flight: cheap (two reads), adapts within a few requests, and avoids the herd that
    /// "always the fastest" causes.
    Latency,
    /// Cheapest first for this request's estimated tokens.
    Cost,
}

/// What a request brings to the ordering.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub input_tokens: u64,
    /// Output tokens to price: `max_tokens` when given, else a typical answer length.
    pub output_tokens: u64,
    /// The value sticky routing hashes (a key, user or session), when the model is sticky.
    pub sticky: Option<String>,
}

pub fn order(targets: &[Arc<Target>], strategy: Strategy, facts: &Facts, counter: &AtomicUsize) -> Vec<Arc<Target>> {
    let live: Vec<&Arc<Target>> = targets.iter().filter(|t| !t.is_drained()).collect();
    let mut tiers: Vec<u32> = live.iter().map(|t| t.tier).collect();
    tiers.sort_unstable();
    tiers.dedup();
    let mut available = Vec::with_capacity(live.len());
    for tier in tiers {
        let group: Vec<Arc<Target>> =
            live.iter().filter(|t| t.tier == tier && t.is_available()).map(|t| Arc::clone(t)).collect();
        available.extend(match &facts.sticky {
            Some(value) => rendezvous(group, value),
            None => by_strategy(group, strategy, facts, counter),
        });
    }
    let mut cooling: Vec<Arc<Target>> = live.into_iter().filter(|t| !t.is_available()).cloned().collect();
    cooling.sort_by_key(|t| (t.tier, t.health.wait()));
    available.extend(cooling);
    available
}

fn by_strategy(
    mut group: Vec<Arc<Target>>,
    strategy: Strategy,
    facts: &Facts,
    counter: &AtomicUsize,
) -> Vec<Arc<Target>> {
    if group.len() < 2 {
        return group;
    }
    match strategy {
        Strategy::Weighted => weighted(group),
        Strategy::RoundRobin => {
            let start = counter.fetch_add(1, Ordering::Relaxed) % group.len();
            group.rotate_left(start);
            group
        }
        Strategy::LeastBusy => {
            fastrand::shuffle(&mut group);
            group.sort_by(|a, b| load(a).total_cmp(&load(b)));
            group
        }
        Strategy::Latency => {
            fastrand::shuffle(&mut group);
            // The first two of a shuffle are the two random choices; the winner goes first and
            // the rest follow by score, so retries also prefer fast targets.
            let winner = if latency_score(&group[1]) < latency_score(&group[0]) { 1 } else { 0 };
            let first = group.remove(winner);
            group.sort_by(|a, b| latency_score(a).total_cmp(&latency_score(b)));
            group.insert(0, first);
            group
        }
        Strategy::Cost => {
            let mut group = weighted(group);
            group.sort_by(|a, b| {
                a.estimated_cost(facts.input_tokens, facts.output_tokens)
                    .total_cmp(&b.estimated_cost(facts.input_tokens, facts.output_tokens))
            });
            group
        }
    }
}

/// Efraimidis–Spirakis: sorting by u^(1/w) gives a weighted random permutation.
fn weighted(group: Vec<Arc<Target>>) -> Vec<Arc<Target>> {
    let mut keyed: Vec<(f64, Arc<Target>)> =
        group.into_iter().map(|t| (fastrand::f64().powf(1.0 / f64::from(t.weight.max(1))), t)).collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    keyed.into_iter().map(|(_, t)| t).collect()
}

fn load(t: &Target) -> f64 {
    t.stats.in_flight() as f64 / f64::from(t.weight.max(1))
}

/// Expected wait: the average time to first token times the queue it would join. A target with
/// no sample yet scores 0, so new or recovered targets get explored.
fn latency_score(t: &Target) -> f64 {
    let ewma = t.stats.ewma_ttft().map_or(0.0, |d| d.as_secs_f64());
    ewma * (1.0 + t.stats.in_flight() as f64)
}

/// Rendezvous (highest random weight) hashing: each value maps to a stable order of targets, and
/// losing a target moves only the values that were on it, so provider prompt caches keep hits.
fn rendezvous(mut group: Vec<Arc<Target>>, value: &str) -> Vec<Arc<Target>> {
    group.sort_by_cached_key(|t| std::cmp::Reverse(fnv(&[value.as_bytes(), b"\0", t.label().as_bytes()])));
    group
}

fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    // FNV's low bits mix poorly for short inputs; a final avalanche spreads them.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use switchyard_providers::{Provider, ProviderSpec, ProviderType};

    use super::*;
    use crate::Price;

    fn target(name: &str, tier: u32, weight: u32) -> Arc<Target> {
        let spec = ProviderSpec::of(ProviderType::Ollama);
        let provider = Arc::new(Provider::new(name, &spec).unwrap_or_else(|e| panic!("{e}")));
        let mut t = Target::new(provider, "m");
        t.tier = tier;
        t.weight = weight;
        Arc::new(t)
    }

    fn first_counts(targets: &[Arc<Target>], strategy: Strategy, facts: &Facts, n: usize) -> BTreeMap<String, usize> {
        let counter = AtomicUsize::new(0);
        let mut counts = BTreeMap::new();
        for _ in 0..n {
            let o = order(targets, strategy, facts, &counter);
            *counts.entry(o[0].provider.name.clone()).or_insert(0) += 1;
        }
        counts
    }

    #[test]
    fn weights_split_traffic() {
        let ts = [target("a", 1, 3), target("b", 1, 1)];
        let c = first_counts(&ts, Strategy::Weighted, &Facts::default(), 4000);
        let a = c.get("a").copied().unwrap_or(0) as f64 / 4000.0;
        assert!((0.70..0.80).contains(&a), "a got {a}");
    }

    #[test]
    fn lower_tiers_first_and_cooling_targets_last() {
        let ts = [target("backup", 2, 10), target("main", 1, 1), target("main2", 1, 1)];
        let c = first_counts(&ts, Strategy::Weighted, &Facts::default(), 200);
        assert!(!c.contains_key("backup"));
        ts[1].health.limit_for(Duration::from_secs(60));
        ts[2].drained.store(true, Ordering::Relaxed);
        let o = order(&ts, Strategy::Weighted, &Facts::default(), &AtomicUsize::new(0));
        let names: Vec<&str> = o.iter().map(|t| t.provider.name.as_str()).collect();
        assert_eq!(names, ["backup", "main"], "drained left out, rate-limited last");
    }

    #[test]
    fn round_robin_rotates() {
        let ts = [target("a", 1, 1), target("b", 1, 1), target("c", 1, 1)];
        let c = first_counts(&ts, Strategy::RoundRobin, &Facts::default(), 300);
        assert!(c.values().all(|n| *n == 100), "{c:?}");
    }

    #[test]
    fn latency_prefers_the_faster_and_least_busy_the_idler() {
        let ts = [target("fast", 1, 1), target("slow", 1, 1)];
        for _ in 0..5 {
            ts[0].stats.record_ttft(Duration::from_millis(20));
            ts[1].stats.record_ttft(Duration::from_millis(400));
        }
        let c = first_counts(&ts, Strategy::Latency, &Facts::default(), 100);
        assert_eq!(c.get("fast"), Some(&100), "with two targets, P2C always compares both");
        ts[1].stats.in_flight.store(0, Ordering::Relaxed);
        ts[0].stats.in_flight.store(5, Ordering::Relaxed);
        let c = first_counts(&ts, Strategy::LeastBusy, &Facts::default(), 50);
        assert_eq!(c.get("slow"), Some(&50));
    }

    #[test]
    fn cost_picks_the_cheapest_for_the_request() {
        let ts = [target("dear", 1, 1), target("cheap", 1, 1), target("unpriced", 1, 1)];
        // Targets are shared; set prices through fresh ones.
        let mut dear = Target::new(ts[0].provider.clone(), "m");
        dear.price = Some(Price::flat(3.0, 15.0));
        let mut cheap = Target::new(ts[1].provider.clone(), "m");
        cheap.price = Some(Price::flat(0.15, 0.6));
        let ts = [Arc::new(dear), Arc::new(cheap), ts[2].clone()];
        let facts = Facts { input_tokens: 1000, output_tokens: 500, sticky: None };
        let o = order(&ts, Strategy::Cost, &facts, &AtomicUsize::new(0));
        let names: Vec<&str> = o.iter().map(|t| t.provider.name.as_str()).collect();
        assert_eq!(names, ["cheap", "dear", "unpriced"]);
    }

    #[test]
    fn sticky_values_stay_put_and_spread() {
        let ts = [target("a", 1, 1), target("b", 1, 1), target("c", 1, 1)];
        let mut firsts = BTreeMap::new();
        for user in 0..60 {
            let facts = Facts { sticky: Some(format!("user-{user}")), ..Default::default() };
            let c = first_counts(&ts, Strategy::Weighted, &facts, 5);
            assert_eq!(c.len(), 1, "user-{user} moved: {c:?}");
            *firsts.entry(c.into_keys().next().unwrap_or_default()).or_insert(0) += 1;
        }
        assert_eq!(firsts.len(), 3, "values spread over every target: {firsts:?}");
    }
}
