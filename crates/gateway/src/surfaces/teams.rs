//! The admin API's teams: made, listed, changed and deleted in the store, beside the config's
//! `teams:`. A team brings its rate limits, dollar budget and body-capture mode to its keys.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_policy::Limits;
use switchyard_store::time::{self, now_us};
use switchyard_store::{StoredBudget, StoredLimits, StoredTeam};
use switchyard_types::{CaptureMode, ErrorKind, GatewayError};

use super::admin::Access;
use super::keys::{
    applied, budget_json, context, invalid, reply, store_budget, store_error, valid_limits, valid_name, write_audit,
};
use crate::runtime::stored_budget;
use crate::{AppState, TeamPolicy};

/// What a stored team brings to its keys.
pub fn policy(t: &StoredTeam) -> TeamPolicy {
    TeamPolicy {
        limits: t.limits.map_or_else(Limits::default, |l| Limits {
            rpm: l.rpm,
            tpm: l.tpm,
            concurrency: l.concurrency,
        }),
        capture: t.capture.as_deref().and_then(CaptureMode::parse),
        budget: t.budget.as_ref().and_then(stored_budget),
    }
}

/// The fields a client may set on a team; on update, `null` clears one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamSpec {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, with = "super::keys::double_option")]
    limits: Option<Option<StoredLimits>>,
    #[serde(default, with = "super::keys::double_option")]
    budget: Option<Option<StoredBudget>>,
    #[serde(default, with = "super::keys::double_option")]
    capture: Option<Option<String>>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

impl TeamSpec {
    fn apply(self, team: &mut StoredTeam) -> Result<Value, GatewayError> {
        let mut changed = serde_json::Map::new();
        if let Some(limits) = self.limits {
            let limits = valid_limits(limits)?;
            changed.insert("limits".into(), json!(limits));
            team.limits = limits;
        }
        if let Some(budget) = self.budget {
            let budget = store_budget(budget)?;
            changed.insert("budget".into(), json!(budget));
            team.budget = budget;
        }
        if let Some(capture) = self.capture {
            if capture.as_deref().is_some_and(|c| CaptureMode::parse(c).is_none()) {
                return Err(invalid("capture", "capture must be full, metadata or none."));
            }
            changed.insert("capture".into(), json!(capture));
            team.capture = capture;
        }
        if let Some(metadata) = self.metadata {
            changed.insert("metadata".into(), json!(metadata));
            team.metadata = metadata;
        }
        Ok(Value::Object(changed))
    }
}

fn team_json(t: &StoredTeam) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    v["created_at"] = json!(time::format_us(t.created_at));
    v["updated_at"] = json!(time::format_us(t.updated_at));
    v["source"] = json!("api");
    v
}

fn parse(body: &[u8]) -> Result<TeamSpec, GatewayError> {
    serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid(format!("Invalid team: {e}")).with_code("invalid_team_spec"))
}

fn taken(name: &str) -> GatewayError {
    GatewayError::new(ErrorKind::InvalidRequest, format!("A team named '{name}' already exists."))
        .with_param("name")
        .with_code("team_name_taken")
        .with_status(409)
}

fn missing(name: &str) -> GatewayError {
    GatewayError::new(ErrorKind::NotFound, format!("No team made through the API is named '{name}'."))
        .with_code("team_not_found")
}

/// `POST /admin/teams`: `{"name", "limits"?, "budget"?, "capture"?, "metadata"?}`.
pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    reply(
        async {
            let (store, actor) = context(&state, &headers, Access::Change)?;
            let mut spec = parse(&body)?;
            let name = valid_name(spec.name.take(), "team")?;
            if state.runtime.load().teams.contains_key(&name) {
                return Err(taken(&name));
            }
            let now = now_us();
            let mut team = StoredTeam { name, created_at: now, updated_at: now, ..StoredTeam::default() };
            let details = spec.apply(&mut team)?;
            store.create_team(&team).await.map_err(|e| match store_error(e) {
                e if e.http_status() == 409 => taken(&team.name),
                e => e,
            })?;
            write_audit(&store, &actor, "team.create", &team.name, json!({"set": details})).await?;
            applied(&state, &store).await;
            Ok((StatusCode::CREATED, team_json(&team)))
        }
        .await,
    )
}

/// `GET /admin/teams`: the config's teams (`source: config`, read-only here) and the API's.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    reply(
        async {
            let (store, _) = context(&state, &headers, Access::Read)?;
            let rt = state.runtime.load();
            let mut data: Vec<Value> = rt
                .teams
                .iter()
                .map(|(name, t)| {
                    json!({"name": name, "source": "config", "limits": {"rpm": t.limits.rpm, "tpm": t.limits.tpm,
                        "concurrency": t.limits.concurrency}, "budget": budget_json(t.budget.as_ref()),
                        "capture": t.capture})
                })
                .collect();
            data.extend(store.list_teams().await.map_err(store_error)?.iter().map(team_json));
            data.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            Ok((StatusCode::OK, json!({"data": data})))
        }
        .await,
    )
}

/// `PATCH /admin/teams/{name}`: the fields given change; `null` clears one.
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
                return Err(invalid("name", "A team's name cannot change."));
            }
            let mut team = store
                .list_teams()
                .await
                .map_err(store_error)?
                .into_iter()
                .find(|t| t.name == name)
                .ok_or_else(|| missing(&name))?;
            let details = spec.apply(&mut team)?;
            team.updated_at = now_us();
            store.update_team(&team).await.map_err(store_error)?;
            write_audit(&store, &actor, "team.update", &name, json!({"set": details})).await?;
            applied(&state, &store).await;
            Ok((StatusCode::OK, team_json(&team)))
        }
        .await,
    )
}

/// `DELETE /admin/teams/{name}`: refused (409) while an active key or a user made through the
/// API belongs to the team.
pub async fn remove(State(state): State<AppState>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    reply(
        async {
            let (store, actor) = context(&state, &headers, Access::Change)?;
            let keys = store.list_keys().await.map_err(store_error)?;
            let keys: Vec<&str> = keys
                .iter()
                .filter(|k| k.revoked_at.is_none() && k.team.as_deref() == Some(name.as_str()))
                .map(|k| k.name.as_str())
                .collect();
            let in_use = |what: &str, names: &[&str], how: &str| {
                GatewayError::new(
                    ErrorKind::InvalidRequest,
                    format!("The team '{name}' still has {what}: {}. Move or {how} them first.", names.join(", ")),
                )
                .with_code("team_in_use")
                .with_status(409)
            };
            if !keys.is_empty() {
                return Err(in_use("keys", &keys, "revoke"));
            }
            let users = store.list_users().await.map_err(store_error)?;
            let users: Vec<&str> =
                users.iter().filter(|u| u.team.as_deref() == Some(name.as_str())).map(|u| u.name.as_str()).collect();
            if !users.is_empty() {
                return Err(in_use("users", &users, "delete"));
            }
            if !store.delete_team(&name).await.map_err(store_error)? {
                return Err(missing(&name));
            }
            write_audit(&store, &actor, "team.delete", &name, json!({})).await?;
            applied(&state, &store).await;
            Ok((StatusCode::OK, json!({"name": name, "deleted": true})))
        }
        .await,
    )
}
