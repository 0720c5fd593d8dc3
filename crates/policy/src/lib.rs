//! Who is calling and what they may use.
//!
//! Keys are held only as SHA-256 digests: the raw key is compared by hashing what the client
//! presents, so a memory dump or a debug print never shows one.

mod budgets;
mod limits;
mod shared;
mod shared_budgets;

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use switchyard_types::{CaptureMode, ErrorKind, GatewayError};

pub use budgets::{
    Budget, BudgetRefused, BudgetScope, Budgets, Crossing, Nanos, Owner, Period, Reservation, Window, nanos, usd,
};
pub use limits::{Admission, Admissions, Exceeded, KeyLimits, Limiter, Limits, Quota, Refused, Scope};
pub use shared::{OnRedisOutage, SharedAdmission, SharedLimiter};
pub use shared_budgets::{Alerts, BudgetHold, BudgetRefusal, SharedBudgets, SharedHold};

/// The caller of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The key's name from the config (`master` for the master key, `anonymous` without auth).
    pub name: String,
    pub models: ModelAllowList,
    /// What it may do with the admin API, if anything.
    pub admin: Option<AdminRole>,
    pub team: Option<String>,
    /// The user the key belongs to, if any.
    pub user: Option<String>,
    /// How much of this caller's requests the log keeps, when the key or its team says.
    pub capture: Option<CaptureMode>,
    /// The rate limits its requests count against.
    pub limits: KeyLimits,
    /// The dollar budgets its requests count against: its own, its team's, its user's.
    pub budgets: Vec<BudgetScope>,
    /// When the key stops working (microseconds since the epoch), for keys that expire.
    pub expires_at_us: Option<i64>,
}

impl Principal {
    pub fn new(name: impl Into<String>, models: ModelAllowList) -> Principal {
        Principal {
            name: name.into(),
            models,
            admin: None,
            team: None,
            user: None,
            capture: None,
            limits: KeyLimits::default(),
            budgets: Vec::new(),
            expires_at_us: None,
        }
    }

    pub fn anonymous() -> Principal {
        Principal::new("anonymous", ModelAllowList::All)
    }

    /// The master key: every model and the admin API.
    pub fn master() -> Principal {
        Principal { admin: Some(AdminRole::Full), ..Principal::new("master", ModelAllowList::All) }
    }
}

/// The model names a key may use: exact names, and patterns with `*` wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelAllowList {
    All,
    Only(Vec<String>),
}

impl ModelAllowList {
    pub fn from_patterns(patterns: Option<Vec<String>>) -> ModelAllowList {
        match patterns {
            None => ModelAllowList::All,
            Some(p) if p.iter().any(|x| x == "*") => ModelAllowList::All,
            Some(p) => ModelAllowList::Only(p),
        }
    }

    pub fn allows(&self, model: &str) -> bool {
        match self {
            ModelAllowList::All => true,
            ModelAllowList::Only(patterns) => patterns.iter().any(|p| wildcard_match(p, model)),
        }
    }
}

/// `*` matches any run of characters, everything else itself.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

pub type KeyDigest = [u8; 32];

pub fn digest(key: &str) -> KeyDigest {
    Sha256::digest(key.as_bytes()).into()
}

/// The keys that may call the gateway.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: HashMap<KeyDigest, Principal>,
}

impl KeyRing {
    /// Adds a key. Returns false if the same key is already present under another name.
    pub fn insert(&mut self, raw_key: &str, principal: Principal) -> bool {
        self.keys.insert(digest(raw_key), principal).is_none()
    }

    /// Adds a key known only by its digest (a key from the store).
    pub fn insert_digest(&mut self, digest: KeyDigest, principal: Principal) {
        self.keys.insert(digest, principal);
    }

    pub fn principals(&self) -> impl Iterator<Item = &Principal> {
        self.keys.values()
    }

    /// No key at all: the gateway is open (allowed only on loopback).
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn get(&self, digest: &KeyDigest) -> Option<&Principal> {
        self.keys.get(digest)
    }

    pub fn has_name(&self, name: &str) -> bool {
        self.keys.values().any(|p| p.name == name)
    }

    /// Who presents this credential.
    pub fn authenticate(&self, presented: Option<&str>) -> Result<Principal, GatewayError> {
        authenticate(&[self], presented, 0)
    }
}

/// Who presents this credential, looked up in each ring in turn (the config's keys, then the
/// store's). With no key anywhere the gateway is open. `now_us` checks expiry.
pub fn authenticate(rings: &[&KeyRing], presented: Option<&str>, now_us: i64) -> Result<Principal, GatewayError> {
    if rings.iter().all(|r| r.is_open()) {
        return Ok(Principal::anonymous());
    }
    let Some(key) = presented.filter(|k| !k.is_empty()) else {
        return Err(GatewayError::new(
            ErrorKind::Authentication,
            "You didn't provide an API key. Send it as 'Authorization: Bearer KEY' or 'x-api-key: KEY'.",
        )
        .with_code("missing_api_key"));
    };
    let d = digest(key);
    let invalid =
        || GatewayError::new(ErrorKind::Authentication, "Incorrect API key provided.").with_code("invalid_api_key");
    let p = rings.iter().find_map(|r| r.get(&d)).ok_or_else(invalid)?;
    if p.expires_at_us.is_some_and(|at| at <= now_us) {
        return Err(
            GatewayError::new(ErrorKind::Authentication, "This API key has expired.").with_code("expired_api_key")
        );
    }
    Ok(p.clone())
}

/// An admin key's reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminRole {
    /// Reads the admin API (logs, usage, keys, targets, audit) and changes nothing.
    Read,
    /// Everything the master key may do in the admin API.
    Full,
}

/// Checks that a principal may use the admin API: reading with any admin role, changing with
/// `full` only.
pub fn authorize_admin(principal: &Principal, changes: bool) -> Result<(), GatewayError> {
    match principal.admin {
        Some(AdminRole::Full) => Ok(()),
        Some(AdminRole::Read) if !changes => Ok(()),
        Some(AdminRole::Read) => Err(GatewayError::new(
            ErrorKind::Permission,
            format!("The admin key '{}' may read the admin API, not change anything.", principal.name),
        )
        .with_code("admin_read_only")),
        None => Err(GatewayError::new(ErrorKind::Permission, "The admin API needs the master key or an admin key.")
            .with_code("admin_only")),
    }
}

/// Checks that a principal may use a model.
pub fn authorize_model(principal: &Principal, model: &str) -> Result<(), GatewayError> {
    if principal.models.allows(model) {
        return Ok(());
    }
    Err(GatewayError::new(
        ErrorKind::Permission,
        format!("The key '{}' is not allowed to use the model `{model}`.", principal.name),
    )
    .with_code("model_not_allowed")
    .with_param("model"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("gpt-*", "gpt-4.1"));
        assert!(wildcard_match("*-mini", "gpt-4o-mini"));
        assert!(wildcard_match("openai/*/x", "openai/a/b/x"));
        assert!(!wildcard_match("gpt-*", "claude"));
        assert!(!wildcard_match("ab*ba", "aba"));
        assert!(wildcard_match("smart", "smart"));
    }

    #[test]
    fn keys_are_checked_by_digest_and_never_echoed() {
        let mut ring = KeyRing::default();
        assert!(ring.authenticate(None).is_ok(), "no keys: open");
        ring.insert(
            "sk-web-123456789",
            Principal::new("web", ModelAllowList::from_patterns(Some(vec!["smart".into()]))),
        );
        let p = ring.authenticate(Some("sk-web-123456789")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.name, "web");
        assert!(authorize_model(&p, "smart").is_ok());
        assert_eq!(authorize_model(&p, "other").map_err(|e| e.http_status()), Err(403));
        let err = ring.authenticate(Some("sk-wrong-key-value")).unwrap_err();
        assert_eq!(err.http_status(), 401);
        assert!(!err.message.contains("sk-wrong-key-value"));
        assert_eq!(ring.authenticate(None).map_err(|e| e.http_status()), Err(401));
    }
}
