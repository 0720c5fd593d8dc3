//! The admin API's virtual keys: create (the secret is shown once), list, read, update, rotate
//! and revoke, each mutation written to the audit log; and the loop that brings the store's
//! keys into memory, so authentication never waits on the database.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_policy::{Budget, KeyLimits, KeyRing, Limits, ModelAllowList, Principal};
use switchyard_store::time::{self, now_us};
use switchyard_store::{AuditEntry, Store, StoreError, StoredBudget, StoredLimits, VirtualKey};
use switchyard_types::{CaptureMode, ErrorKind, GatewayError};

use super::admin::{Access, admin};
use crate::error::SurfaceError;
use crate::runtime::{budget_scopes, stored_budget};
use crate::{AppState, Runtime};

/// How often every instance reloads the store's keys: a key made, changed or revoked on one
/// instance applies on all within this.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// The visible start of every key the store hands out, so they are recognisable in a leak scan.
const KEY_PREFIX: &str = "sk-sy-";

/// A new secret: the prefix and 40 random letters and digits (about 238 bits).
fn new_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = fastrand::Rng::new();
    let body: String = (0..40).map(|_| ALPHABET[rng.usize(..ALPHABET.len())] as char).collect();
    format!("{KEY_PREFIX}{body}")
}

fn hex_digest(secret: &str) -> String {
    switchyard_policy::digest(secret).iter().map(|b| format!("{b:02x}")).collect()
}

/// What the gateway makes of a stored key: the principal it authenticates as.
pub fn principal(state: &AppState, rt: &Runtime, key: &VirtualKey) -> Principal {
    let user = key.user.as_ref().and_then(|u| state.user(rt, u));
    let team_name = key.team.clone().or_else(|| user.as_ref().and_then(|u| u.team.clone()));
    let team = team_name.as_ref().and_then(|t| state.team(rt, t));
    let limits = key.limits.map_or_else(Limits::default, stored_limits);
    let budget = key.budget.as_ref().and_then(stored_budget);
    Principal {
        capture: key.capture.as_deref().and_then(CaptureMode::parse).or(team.as_ref().and_then(|t| t.capture)),
        limits: KeyLimits {
            key: limits,
            team: team.as_ref().map(|t| t.limits).unwrap_or_default(),
            user: user.as_ref().map(|u| u.limits).unwrap_or_default(),
            ..KeyLimits::default()
        },
        budgets: budget_scopes(
            (&key.name, budget.as_ref()),
            team_name.as_deref().map(|t| (t, team.as_ref().and_then(|p| p.budget.as_ref()))),
            key.user.as_deref().map(|u| (u, user.as_ref().and_then(|p| p.budget.as_ref()))),
        ),
        team: team_name,
        user: key.user.clone(),
        expires_at_us: key.expires_at,
        ..Principal::new(key.name.clone(), ModelAllowList::from_patterns(key.models.clone()))
    }
}

pub fn stored_limits(l: StoredLimits) -> Limits {
    Limits { rpm: l.rpm, tpm: l.tpm, concurrency: l.concurrency }
}

/// A team a key or user names must exist, in the config or the store.
pub(super) fn known_team(state: &AppState, rt: &Runtime, team: Option<&str>) -> Result<(), GatewayError> {
    match team {
        Some(t) if state.team(rt, t).is_none() => {
            Err(invalid("team", format!("There is no team '{t}' (in the config or made through /admin/teams).")))
        }
        _ => Ok(()),
    }
}

/// Checks a budget a client sent, for the store.
pub(super) fn store_budget(b: Option<StoredBudget>) -> Result<Option<StoredBudget>, GatewayError> {
    let Some(mut b) = b else { return Ok(None) };
    let budget = crate::config::budget(b.usd, Some(&b.period), &b.alerts).map_err(|e| invalid("budget", &e))?;
    b.alerts = budget.alerts;
    Ok(Some(b))
}

/// Checks limits a client sent: a limit of 0 would refuse every request.
pub(super) fn valid_limits(l: Option<StoredLimits>) -> Result<Option<StoredLimits>, GatewayError> {
    if let Some(l) = l
        && [l.rpm, l.tpm, l.concurrency].contains(&Some(0))
    {
        return Err(invalid("limits", "A limit of 0 would refuse every request."));
    }
    Ok(l)
}

/// A budget of the config as the admin API shows it, in the shape a client sends.
pub(super) fn budget_json(b: Option<&Budget>) -> Value {
    let Some(b) = b else { return Value::Null };
    json!({"usd": switchyard_policy::usd(b.max), "period": b.period.name(), "alerts": b.alerts})
}

/// Reloads the store's usable keys into memory every `REFRESH_EVERY`. While the store cannot be
/// read, the keys already loaded keep working.
pub async fn refresh_loop(state: AppState, store: Store) {
    let mut failing = false;
    loop {
        match refresh(&state, &store).await {
            Ok(()) if failing => {
                tracing::info!("keys are loaded from the store again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %e, "cannot load keys from the store; the keys already loaded keep working");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(REFRESH_EVERY).await;
    }
}

pub async fn refresh(state: &AppState, store: &Store) -> Result<(), StoreError> {
    let wait = Duration::from_secs(10);
    let teams = tokio::time::timeout(wait, store.list_teams()).await.unwrap_or(Err(StoreError::Timeout(wait)))?;
    state.store_teams.store(Arc::new(teams.iter().map(|t| (t.name.clone(), super::teams::policy(t))).collect()));
    let users = tokio::time::timeout(wait, store.list_users()).await.unwrap_or(Err(StoreError::Timeout(wait)))?;
    state.store_users.store(Arc::new(users.iter().map(|u| (u.name.clone(), super::users::policy(u))).collect()));
    let keys =
        tokio::time::timeout(wait, store.active_keys(now_us())).await.unwrap_or(Err(StoreError::Timeout(wait)))?;
    let rt = state.runtime.load();
    let mut ring = KeyRing::default();
    for (hash, key) in keys {
        let Some(digest) = parse_digest(&hash) else { continue };
        ring.insert_digest(digest, principal(state, &rt, &key));
    }
    state.store_keys.store(Arc::new(ring));
    Ok(())
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The fields a client may set on a key. On update, absent fields are left as they are and
/// `null` clears one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, with = "double_option")]
    team: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    user: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    models: Option<Option<Vec<String>>>,
    #[serde(default, with = "double_option")]
    limits: Option<Option<StoredLimits>>,
    #[serde(default, with = "double_option")]
    budget: Option<Option<StoredBudget>>,
    #[serde(default, with = "double_option")]
    capture: Option<Option<String>>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    /// RFC 3339 or Unix seconds.
    #[serde(default, with = "double_option")]
    expires_at: Option<Option<String>>,
}

/// `null` and absent are different on an update.
pub(super) mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// A name for a key, a team or a user: 1 to 128 characters, none of them control characters (names
/// appear in logs, metrics and error messages).
pub(super) fn valid_name(name: Option<String>, what: &str) -> Result<String, GatewayError> {
    let name = name.map(|n| n.trim().to_string()).unwrap_or_default();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            format!("A {what} needs a name of 1 to 128 characters, without control characters."),
        ));
    }
    Ok(name)
}

pub(super) fn invalid(param: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::invalid(message).with_param(param).with_code("invalid_key_spec")
}

impl KeySpec {
    /// Applies the spec to a key, checking every value.
    fn apply(self, key: &mut VirtualKey, state: &AppState, rt: &Runtime) -> Result<Value, GatewayError> {
        let mut changed = serde_json::Map::new();
        if let Some(team) = self.team {
            known_team(state, rt, team.as_deref())?;
            changed.insert("team".into(), json!(team));
            key.team = team;
        }
        if let Some(user) = self.user {
            if let Some(u) = &user
                && state.user(rt, u).is_none()
            {
                return Err(invalid(
                    "user",
                    format!("There is no user '{u}' (in the config or made through /admin/users)."),
                ));
            }
            changed.insert("user".into(), json!(user));
            key.user = user;
        }
        if let Some(models) = self.models {
            changed.insert("models".into(), json!(models));
            key.models = models;
        }
        if let Some(limits) = self.limits {
            let limits = valid_limits(limits)?;
            changed.insert("limits".into(), json!(limits));
            key.limits = limits;
        }
        if let Some(budget) = self.budget {
            let budget = store_budget(budget)?;
            changed.insert("budget".into(), json!(budget));
            key.budget = budget;
        }
        if let Some(capture) = self.capture {
            if let Some(c) = &capture
                && CaptureMode::parse(c).is_none()
            {
                return Err(invalid("capture", "capture must be full, metadata or none."));
            }
            changed.insert("capture".into(), json!(capture));
            key.capture = capture;
        }
        if let Some(metadata) = self.metadata {
            changed.insert("metadata".into(), json!(metadata));
            key.metadata = metadata;
        }
        if let Some(expires) = self.expires_at {
            key.expires_at = match &expires {
                None => None,
                Some(t) => Some(
                    time::parse_us(t)
                        .ok_or_else(|| invalid("expires_at", "expires_at must be an RFC 3339 time or Unix seconds."))?,
                ),
            };
            changed.insert("expires_at".into(), json!(expires));
        }
        Ok(Value::Object(changed))
    }
}

/// A key as the API shows it: the stored fields with readable times, never the secret.
fn key_json(k: &VirtualKey) -> Value {
    let mut v = serde_json::to_value(k).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        let at = |t: Option<i64>| t.map(time::format_us);
        o.insert("expires_at".into(), json!(at(k.expires_at)));
        o.insert("revoked_at".into(), json!(at(k.revoked_at)));
        o.insert("created_at".into(), json!(time::format_us(k.created_at)));
        o.insert("updated_at".into(), json!(time::format_us(k.updated_at)));
        o.insert("status".into(), json!(if k.revoked_at.is_some() { "revoked" } else { "active" }));
    }
    v
}

pub(super) fn store_error(e: StoreError) -> GatewayError {
    let unique = matches!(&e, StoreError::Query(sqlx::Error::Database(db)) if db.is_unique_violation());
    if unique {
        return GatewayError::new(ErrorKind::InvalidRequest, "A key with this name already exists.")
            .with_param("name")
            .with_code("key_name_taken")
            .with_status(409);
    }
    GatewayError::new(ErrorKind::Unavailable, format!("The key store cannot be used now: {e}"))
        .with_code("store_unavailable")
}

/// The store, and the admin who calls.
pub(super) fn context(
    state: &AppState,
    headers: &HeaderMap,
    access: Access,
) -> Result<(Store, Principal), GatewayError> {
    let admin = admin(state, headers, access)?;
    let store = state.store.clone().ok_or_else(|| {
        GatewayError::new(ErrorKind::NotFound, "Keys made through the API need a store: set `storage:` in the config.")
            .with_code("store_disabled")
    })?;
    Ok((store, admin))
}

pub(super) async fn write_audit(
    store: &Store,
    actor: &Principal,
    action: &str,
    target: &str,
    details: Value,
) -> Result<(), GatewayError> {
    let entry = AuditEntry {
        id: uuid::Uuid::now_v7().to_string(),
        at: now_us(),
        actor: actor.name.clone(),
        action: action.into(),
        target: target.into(),
        details,
    };
    store.audit(&entry).await.map_err(store_error)
}

pub(super) fn reply(result: Result<(StatusCode, Value), GatewayError>) -> Response {
    match result {
        Ok((status, v)) => (status, axum::Json(v)).into_response(),
        Err(e) => SurfaceError::openai(e).into_response(),
    }
}

fn parse_spec(body: &[u8]) -> Result<KeySpec, GatewayError> {
    serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid(format!("Invalid key: {e}")).with_code("invalid_key_spec"))
}

/// After a change: this instance sees it at once; the others within `REFRESH_EVERY`.
pub(super) async fn applied(state: &AppState, store: &Store) {
    let _ = refresh(state, store).await;
}

/// `POST /admin/keys`: `{"name": …, "team"?, "user"?, "models"?, "limits"?, "budget"?,
/// "capture"?, "metadata"?, "expires_at"?}`. Answers 201 with the key and, this once, its secret in `key`.
pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    reply(
        async {
            let (store, actor) = context(&state, &headers, Access::Change)?;
            let mut spec = parse_spec(&body)?;
            let name = valid_name(spec.name.take(), "key")?;
            let rt = state.runtime.load();
            if name == "master" || rt.keys.has_name(&name) {
                return Err(GatewayError::new(
                    ErrorKind::InvalidRequest,
                    format!("The name '{name}' is a key of the config."),
                )
                .with_param("name")
                .with_code("key_name_taken")
                .with_status(409));
            }
            let secret = new_secret();
            let now = now_us();
            let mut key = VirtualKey {
                id: format!("key_{}", uuid::Uuid::now_v7().simple()),
                name,
                prefix: secret[..KEY_PREFIX.len() + 4].to_string(),
                created_at: now,
                updated_at: now,
                ..VirtualKey::default()
            };
            let details = spec.apply(&mut key, &state, &rt)?;
            store.create_key(&key, &hex_digest(&secret)).await.map_err(store_error)?;
            write_audit(&store, &actor, "key.create", &key.id, json!({"name": key.name, "set": details})).await?;
            applied(&state, &store).await;
            let mut v = key_json(&key);
            v["key"] = json!(secret);
            Ok((StatusCode::CREATED, v))
        }
        .await,
    )
}

/// `GET /admin/keys`: every key, revoked ones included, without secrets.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    reply(
        async {
            let (store, _) = context(&state, &headers, Access::Read)?;
            let keys = store.list_keys().await.map_err(store_error)?;
            Ok((StatusCode::OK, json!({"data": keys.iter().map(key_json).collect::<Vec<_>>()})))
        }
        .await,
    )
}

async fn find(store: &Store, id: &str) -> Result<VirtualKey, GatewayError> {
    store.get_key(id).await.map_err(store_error)?.ok_or_else(|| {
        GatewayError::new(ErrorKind::NotFound, format!("No key has the id '{id}'.")).with_code("key_not_found")
    })
}

pub async fn one(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    reply(
        async {
            let (store, _) = context(&state, &headers, Access::Read)?;
            Ok((StatusCode::OK, key_json(&find(&store, &id).await?)))
        }
        .await,
    )
}

/// `PATCH /admin/keys/{id}`: the fields given change; `null` clears one. The name stays.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    reply(
        async {
            let (store, actor) = context(&state, &headers, Access::Change)?;
            let spec = parse_spec(&body)?;
            if spec.name.is_some() {
                return Err(invalid("name", "A key's name cannot change; make a new key."));
            }
            let mut key = find(&store, &id).await?;
            let details = spec.apply(&mut key, &state, &state.runtime.load())?;
            key.updated_at = now_us();
            store.update_key(&key).await.map_err(store_error)?;
            write_audit(&store, &actor, "key.update", &key.id, json!({"set": details})).await?;
            applied(&state, &store).await;
            Ok((StatusCode::OK, key_json(&key)))
        }
        .await,
    )
}

/// `POST /admin/keys/{id}/rotate`: a new secret, shown once; the old one stops working.
pub async fn rotate(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    reply(
        async {
            let (store, actor) = context(&state, &headers, Access::Change)?;
            let secret = new_secret();
            let prefix = &secret[..KEY_PREFIX.len() + 4];
            if !store.rotate_key(&id, &hex_digest(&secret), prefix, now_us()).await.map_err(store_error)? {
                return Err(GatewayError::new(ErrorKind::NotFound, format!("No active key has the id '{id}'."))
                    .with_code("key_not_found"));
            }
            write_audit(&store, &actor, "key.rotate", &id, json!({"prefix": prefix})).await?;
            applied(&state, &store).await;
            let mut v = key_json(&find(&store, &id).await?);
            v["key"] = json!(secret);
            Ok((StatusCode::OK, v))
        }
        .await,
    )
}

/// `DELETE /admin/keys/{id}`: revokes the key (kept, marked revoked, for the log's sake).
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    reply(
        async {
            let (store, actor) = context(&state, &headers, Access::Change)?;
            if !store.revoke_key(&id, now_us()).await.map_err(store_error)? {
                return Err(GatewayError::new(ErrorKind::NotFound, format!("No active key has the id '{id}'."))
                    .with_code("key_not_found"));
            }
            write_audit(&store, &actor, "key.revoke", &id, json!({})).await?;
            applied(&state, &store).await;
            Ok((StatusCode::OK, key_json(&find(&store, &id).await?)))
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /admin/audit?limit=N`: the newest admin actions first.
pub async fn audit(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<AuditQuery>) -> Response {
    reply(
        async {
            let (store, _) = context(&state, &headers, Access::Read)?;
            let entries = store.audit_log(q.limit.unwrap_or(100)).await.map_err(store_error)?;
            let data: Vec<Value> = entries
                .iter()
                .map(|e| {
                    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
                    v["at"] = json!(time::format_us(e.at));
                    v
                })
                .collect();
            Ok((StatusCode::OK, json!({"data": data})))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_prefixed_and_digests_round_trip() {
        let a = new_secret();
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 40);
        assert_ne!(a, new_secret());
        let hex = hex_digest(&a);
        assert_eq!(parse_digest(&hex), Some(switchyard_policy::digest(&a)));
        assert_eq!(parse_digest("zz"), None);
    }

    /// The config's budgets are listed in the shape a client sends, which reads back as the same
    /// budget.
    #[test]
    fn listed_budgets_read_back_as_the_same_budget() {
        for period in ["daily", "weekly", "monthly", "lifetime", "30d", "12h", "90m", "2w"] {
            let budget = crate::config::budget(2.5, Some(period), &[0.9, 0.5]).unwrap_or_else(|e| panic!("{e}"));
            let shown = budget_json(Some(&budget));
            let stored: StoredBudget = serde_json::from_value(shown.clone()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(crate::runtime::stored_budget(&stored), Some(budget), "{period}: {shown}");
        }
        assert_eq!(budget_json(None), Value::Null);
    }
}
