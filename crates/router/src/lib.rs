//! The model catalogue, routing strategies and rules, per-target health, and the attempt
//! executor (retries, fallbacks, hedging).

mod catalogue;
mod execute;
mod health;
mod price;
mod rules;
mod strategy;
mod target;

pub use catalogue::{Caller, Catalogue, Demand, HedgeAfter, Leg, ModelRoute, Plan, RetryOn, RetryPolicy, Sticky};
pub use execute::{Attempt, AttemptRecord, Execution, Outcome, execute, execute_avoiding};
pub use health::{BreakerPolicy, BreakerState, Health, HealthReport, Refusal};
pub use price::{LongContext, Price, PriceTable, Rates};
pub use rules::{RequestView, Rule, RuleError, apply_rules};
pub use strategy::{Facts, Strategy};
pub use target::{InFlight, Permit, Target, TargetStats};
