//! The model catalogue, target selection, passive health, and the attempt executor.

mod catalogue;
mod execute;
mod health;

pub use catalogue::{Catalogue, ModelRoute, Plan, PlanStep, RetryOn, RetryPolicy, Strategy, Target};
pub use execute::{AttemptRecord, Execution, execute};
pub use health::Health;
