//! The admin API's users: people or services that keys belong to, with their own team, rate
//! limits and dollar budget over all their keys.

use switchyard_store::StoredUser;

use super::keys::stored_limits;
use crate::runtime::{UserPolicy, stored_budget};

/// What a stored user brings to its keys.
pub fn policy(u: &StoredUser) -> UserPolicy {
    UserPolicy {
        team: u.team.clone(),
        limits: u.limits.map(stored_limits).unwrap_or_default(),
        budget: u.budget.as_ref().and_then(stored_budget),
    }
}
