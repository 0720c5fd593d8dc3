//! The admin API's users: people or services that keys belong to, with their own team, rate
//! limits and dollar budget over all their keys. Made, listed, changed and deleted in the store,
//! beside the config's `users:`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_store::time::{self, now_us};
use switchyard_store::{StoredBudget, StoredLimits, StoredUser};
use switchyard_types::{ErrorKind, GatewayError};

use super::admin::Access;
use super::keys::{
    applied, budget_json, context, invalid, known_team, reply, store_budget, store_error, stored_limits, valid_limits,
    valid_name, write_audit,
};
use crate::runtime::{UserPolicy, stored_budget};
use crate::{AppState, Runtime};

/// What a stored user brings to its keys.
pub fn policy(u: &StoredUser) -> UserPolicy {
    UserPolicy {
        team: u.team.clone(),
        limits: u.limits.map(stored_limits).unwrap_or_default(),
        budget: u.budget.as_ref().and_then(stored_budget),
    }
}

/// The fields a client may set on a user; on update, absent fields stay and `null` clears one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, with = "super::keys::double_option")]
    team: Option<Option<String>>,
    #[serde(default, with = "super::keys::double_option")]
    limits: Option<Option<StoredLimits>>,
    #[serde(default, with = "super::keys::double_option")]
    budget: Option<Option<StoredBudget>>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

impl UserSpec {
    /// Applies the spec to a user, checking every value; answers what was set, for the audit log.
    fn apply(self, user: &mut StoredUser, state: &AppState, rt: &Runtime) -> Result<Value, GatewayError> {
        let mut changed = serde_json::Map::new();
        if let Some(team) = self.team {
            known_team(state, rt, team.as_deref())?;
            changed.insert("team".into(), json!(team));
            user.team = team;
        }
        if let Some(limits) = self.limits {
            let limits = valid_limits(limits)?;
            changed.insert("limits".into(), json!(limits));
            user.limits = limits;
        }
        if let Some(budget) = self.budget {
            let budget = store_budget(budget)?;
            changed.insert("budget".into(), json!(budget));
            user.budget = budget;
        }
        if let Some(metadata) = self.metadata {
            changed.insert("metadata".into(), json!(metadata));
            user.metadata = metadata;
        }
        Ok(Value::Object(changed))
    }
}

fn user_json(u: &StoredUser) -> Value {
    let mut v = serde_json::to_value(u).unwrap_or(Value::Null);
    v["created_at"] = json!(time::format_us(u.created_at));
    v["updated_at"] = json!(time::format_us(u.updated_at));
    v["source"] = json!("api");
    v
}

fn config_user_json(name: &str, u: &UserPolicy) -> Value {
    json!({
        "name": name,
        "source": "config",
        "team": u.team,
        "limits": {"rpm": u.limits.rpm, "tpm": u.limits.tpm, "concurrency": u.limits.concurrency},
        "budget": budget_json(u.budget.as_ref()),
    })
}

fn parse(body: &[u8]) -> Result<UserSpec, GatewayError> {
    serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid(format!("Invalid user: {e}")).with_code("invalid_user_spec"))
}

fn taken(name: &str) -> GatewayError {
    GatewayError::new(ErrorKind::InvalidRequest, format!("A user named '{name}' already exists."))
        .with_param("name")
        .with_code("user_name_taken")
        .with_status(409)
}

fn missing(name: &str) -> GatewayError {
    GatewayError::new(ErrorKind::NotFound, format!("No user made through the API is named '{name}'."))
        .with_code("user_not_found")
}

/// `POST /admin/users`: `{"name", "team"?, "limits"?, "budget"?, "metadata"?}`.
pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    reply(
        async {
            let (store, actor) = context(&state, &headers, Access::Change)?;
            let mut spec = parse(&body)?;
            let name = valid_name(spec.name.take(), "user")?;
            let rt = state.runtime.load();
            if rt.users.contains_key(&name) {
                return Err(taken(&name));
            }
            let now = now_us();
            let mut user = StoredUser { name, created_at: now, updated_at: now, ..StoredUser::default() };
            let details = spec.apply(&mut user, &state, &rt)?;
            store.create_user(&user).await.map_err(|e| match store_error(e) {
                e if e.http_status() == 409 => taken(&user.name),
                e => e,
            })?;
            write_audit(&store, &actor, "user.create", &user.name, json!({"set": details})).await?;
            applied(&state, &store).await;
            Ok((StatusCode::CREATED, user_json(&user)))
        }
        .await,
    )
}

/// `GET /admin/users`: the config's users (`source: config`, read-only here) and the API's.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    reply(
        async {
            let (store, _) = context(&state, &headers, Access::Read)?;
            let rt = state.runtime.load();
            let mut data: Vec<Value> = rt.users.iter().map(|(name, u)| config_user_json(name, u)).collect();
            data.extend(store.list_users().await.map_err(store_error)?.iter().map(user_json));
            data.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            Ok((StatusCode::OK, json!({"data": data})))
        }
        .await,
    )
}

/// `PATCH /admin/users/{name}`: the fields given change; `null` clears one. The name stays.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    reply(
        async {
            let (store, actor) = context(&state, &headers, Access::Change)?;
            let spec = parse(&body)?;
            if spec.name.is_some() {
                return Err(invalid("name", "A user's name cannot change."));
            }
            let mut user = store
                .list_users()
                .await
                .map_err(store_error)?
                .into_iter()
                .find(|u| u.name == name)
                .ok_or_else(|| missing(&name))?;
            let details = spec.apply(&mut user, &state, &state.runtime.load())?;
            user.updated_at = now_us();
            store.update_user(&user).await.map_err(store_error)?;
            write_audit(&store, &actor, "user.update", &name, json!({"set": details})).await?;
            applied(&state, &store).await;
            Ok((StatusCode::OK, user_json(&user)))
        }
        .await,
    )
}

/// `DELETE /admin/users/{name}`: refused (409) while an active key belongs to the user.
pub async fn remove(State(state): State<AppState>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    reply(
        async {
            let (store, actor) = context(&state, &headers, Access::Change)?;
            let keys = store.list_keys().await.map_err(store_error)?;
            let keys: Vec<&str> = keys
                .iter()
                .filter(|k| k.revoked_at.is_none() && k.user.as_deref() == Some(name.as_str()))
                .map(|k| k.name.as_str())
                .collect();
            if !keys.is_empty() {
                return Err(GatewayError::new(
                    ErrorKind::InvalidRequest,
                    format!("The user '{name}' still has keys: {}. Move or revoke them first.", keys.join(", ")),
                )
                .with_code("user_in_use")
                .with_status(409));
            }
            if !store.delete_user(&name).await.map_err(store_error)? {
                return Err(missing(&name));
            }
            write_audit(&store, &actor, "user.delete", &name, json!({})).await?;
            applied(&state, &store).await;
            Ok((StatusCode::OK, json!({"name": name, "deleted": true})))
        }
        .await,
    )
}
