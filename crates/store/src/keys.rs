//! Virtual keys and the audit log. The store keeps a key's SHA-256 digest (hex) and a short
//! prefix, never the key; callers hash before they come here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sql::{Cells, Sql, Value};
use crate::{Store, StoreError};

/// A key's rate limits as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u64>,
}

/// A dollar budget as stored: at most `usd` over `period` (`daily`, `weekly`, `monthly`,
/// `lifetime` or a duration such as `30d`), alerting at each of the `alerts` fractions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredBudget {
    pub usd: f64,
    #[serde(default = "lifetime")]
    pub period: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<f64>,
}

fn lifetime() -> String {
    "lifetime".into()
}

/// A virtual key as the admin API shows it: everything but the secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VirtualKey {
    pub id: String,
    pub name: String,
    /// The key's first characters, to recognise it by.
    pub prefix: String,
    pub team: Option<String>,
    pub user: Option<String>,
    /// Model names and `*` patterns; `None` is every model.
    pub models: Option<Vec<String>>,
    pub limits: Option<StoredLimits>,
    pub budget: Option<StoredBudget>,
    pub capture: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// Microseconds since the epoch.
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A team made through the admin API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredTeam {
    pub name: String,
    pub limits: Option<StoredLimits>,
    pub budget: Option<StoredBudget>,
    pub capture: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn team_from_row(row: &impl Cells) -> Result<StoredTeam, sqlx::Error> {
    let parse = |c: &str| -> Result<Option<serde_json::Value>, sqlx::Error> {
        Ok(row.text(c)?.and_then(|s| serde_json::from_str(&s).ok()))
    };
    Ok(StoredTeam {
        name: row.text("name")?.unwrap_or_default(),
        limits: parse("limits")?.and_then(|v| serde_json::from_value(v).ok()),
        budget: parse("budget")?.and_then(|v| serde_json::from_value(v).ok()),
        capture: row.text("capture")?,
        metadata: parse("metadata")?.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default(),
        created_at: row.int("created_at")?.unwrap_or(0),
        updated_at: row.int("updated_at")?.unwrap_or(0),
    })
}

/// A user made through the admin API: someone (or some service) keys belong to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredUser {
    pub name: String,
    pub team: Option<String>,
    pub limits: Option<StoredLimits>,
    pub budget: Option<StoredBudget>,
    pub metadata: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn user_from_row(row: &impl Cells) -> Result<StoredUser, sqlx::Error> {
    let parse = |c: &str| -> Result<Option<serde_json::Value>, sqlx::Error> {
        Ok(row.text(c)?.and_then(|s| serde_json::from_str(&s).ok()))
    };
    Ok(StoredUser {
        name: row.text("name")?.unwrap_or_default(),
        team: row.text("team")?,
        limits: parse("limits")?.and_then(|v| serde_json::from_value(v).ok()),
        budget: parse("budget")?.and_then(|v| serde_json::from_value(v).ok()),
        metadata: parse("metadata")?.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default(),
        created_at: row.int("created_at")?.unwrap_or(0),
        updated_at: row.int("updated_at")?.unwrap_or(0),
    })
}

fn audit_from_row(row: &impl Cells) -> Result<AuditEntry, sqlx::Error> {
    Ok(AuditEntry {
        id: row.text("id")?.unwrap_or_default(),
        at: row.int("at")?.unwrap_or(0),
        actor: row.text("actor")?.unwrap_or_default(),
        action: row.text("action")?.unwrap_or_default(),
        target: row.text("target")?.unwrap_or_default(),
        details: row.text("details")?.and_then(|d| serde_json::from_str(&d).ok()).unwrap_or_default(),
    })
}

/// One admin action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub at: i64,
    /// The name of the admin key that acted.
    pub actor: String,
    /// `key.create`, `key.update`, `key.rotate`, `key.revoke`.
    pub action: String,
    /// The id of what was acted on.
    pub target: String,
    pub details: serde_json::Value,
}

const KEY_COLUMNS: &str = "id, name, prefix, hash, team, user_id, models, limits, budget, capture, metadata, \
                           expires_at, revoked_at, created_at, updated_at";

fn json_text<T: Serialize>(v: &Option<T>) -> Value {
    Value::Text(v.as_ref().and_then(|v| serde_json::to_string(v).ok()))
}

fn key_from_row(row: &impl Cells) -> Result<(String, VirtualKey), sqlx::Error> {
    let parse = |c: &str| -> Result<Option<serde_json::Value>, sqlx::Error> {
        Ok(row.text(c)?.and_then(|s| serde_json::from_str(&s).ok()))
    };
    let key = VirtualKey {
        id: row.text("id")?.unwrap_or_default(),
        name: row.text("name")?.unwrap_or_default(),
        prefix: row.text("prefix")?.unwrap_or_default(),
        team: row.text("team")?,
        user: row.text("user_id")?,
        models: parse("models")?.and_then(|v| serde_json::from_value(v).ok()),
        limits: parse("limits")?.and_then(|v| serde_json::from_value(v).ok()),
        budget: parse("budget")?.and_then(|v| serde_json::from_value(v).ok()),
        capture: row.text("capture")?,
        metadata: parse("metadata")?.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default(),
        expires_at: row.int("expires_at")?,
        revoked_at: row.int("revoked_at")?,
        created_at: row.int("created_at")?.unwrap_or(0),
        updated_at: row.int("updated_at")?.unwrap_or(0),
    };
    Ok((row.text("hash")?.unwrap_or_default(), key))
}

impl Store {
    async fn execute(&self, sql: &Sql) -> Result<u64, StoreError> {
        Ok(match self {
            Store::Sqlite(p) => sql.sqlite().execute(p).await?.rows_affected(),
            Store::Postgres(p) => sql.postgres().execute(p).await?.rows_affected(),
        })
    }

    async fn keys_where(&self, sql: &Sql) -> Result<Vec<(String, VirtualKey)>, StoreError> {
        Ok(match self {
            Store::Sqlite(p) => {
                sql.sqlite().fetch_all(p).await?.iter().map(key_from_row).collect::<Result<Vec<_>, _>>()?
            }
            Store::Postgres(p) => {
                sql.postgres().fetch_all(p).await?.iter().map(key_from_row).collect::<Result<Vec<_>, _>>()?
            }
        })
    }

    /// Stores a new key under the digest of its secret. A taken name or digest is an error.
    pub async fn create_key(&self, key: &VirtualKey, hash: &str) -> Result<(), StoreError> {
        let mut sql = Sql::new(self.dialect(), &format!("INSERT INTO virtual_keys ({KEY_COLUMNS}) VALUES ("));
        let values = [
            key.id.as_str().into(),
            key.name.as_str().into(),
            key.prefix.as_str().into(),
            hash.into(),
            Value::Text(key.team.clone()),
            Value::Text(key.user.clone()),
            json_text(&key.models),
            json_text(&key.limits),
            json_text(&key.budget),
            Value::Text(key.capture.clone()),
            json_text(&Some(&key.metadata)),
            Value::Int(key.expires_at),
            Value::Int(key.revoked_at),
            key.created_at.into(),
            key.updated_at.into(),
        ];
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(v);
        }
        sql.push(")");
        self.execute(&sql).await.map(|_| ())
    }

    /// Every key, revoked ones included, by name.
    pub async fn list_keys(&self) -> Result<Vec<VirtualKey>, StoreError> {
        let sql = Sql::new(self.dialect(), &format!("SELECT {KEY_COLUMNS} FROM virtual_keys ORDER BY name"));
        Ok(self.keys_where(&sql).await?.into_iter().map(|(_, k)| k).collect())
    }

    pub async fn get_key(&self, id: &str) -> Result<Option<VirtualKey>, StoreError> {
        let mut sql = Sql::new(self.dialect(), &format!("SELECT {KEY_COLUMNS} FROM virtual_keys WHERE id = "));
        sql.bind(id);
        Ok(self.keys_where(&sql).await?.into_iter().next().map(|(_, k)| k))
    }

    /// The keys that may be used now, with their digests, for the gateway's in-memory ring.
    pub async fn active_keys(&self, now_us: i64) -> Result<Vec<(String, VirtualKey)>, StoreError> {
        let mut sql = Sql::new(
            self.dialect(),
            &format!(
                "SELECT {KEY_COLUMNS} FROM virtual_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > "
            ),
        );
        sql.bind(now_us).push(")");
        self.keys_where(&sql).await
    }

    /// Rewrites a key's settings (not its name, secret or dates of creation).
    pub async fn update_key(&self, key: &VirtualKey) -> Result<bool, StoreError> {
        let mut sql = Sql::new(self.dialect(), "UPDATE virtual_keys SET team = ");
        sql.bind(Value::Text(key.team.clone()));
        sql.push(", user_id = ").bind(Value::Text(key.user.clone()));
        sql.push(", models = ").bind(json_text(&key.models));
        sql.push(", limits = ").bind(json_text(&key.limits));
        sql.push(", budget = ").bind(json_text(&key.budget));
        sql.push(", capture = ").bind(Value::Text(key.capture.clone()));
        sql.push(", metadata = ").bind(json_text(&Some(&key.metadata)));
        sql.push(", expires_at = ").bind(Value::Int(key.expires_at));
        sql.push(", updated_at = ").bind(key.updated_at);
        sql.push(" WHERE id = ").bind(key.id.as_str());
        Ok(self.execute(&sql).await? == 1)
    }

    /// Gives a key a new secret (its digest and prefix); the old one stops working.
    pub async fn rotate_key(&self, id: &str, hash: &str, prefix: &str, now_us: i64) -> Result<bool, StoreError> {
        let mut sql = Sql::new(self.dialect(), "UPDATE virtual_keys SET hash = ");
        sql.bind(hash).push(", prefix = ").bind(prefix).push(", updated_at = ").bind(now_us);
        sql.push(" WHERE revoked_at IS NULL AND id = ").bind(id);
        Ok(self.execute(&sql).await? == 1)
    }

    pub async fn revoke_key(&self, id: &str, now_us: i64) -> Result<bool, StoreError> {
        let mut sql = Sql::new(self.dialect(), "UPDATE virtual_keys SET revoked_at = ");
        sql.bind(now_us).push(", updated_at = ").bind(now_us).push(" WHERE revoked_at IS NULL AND id = ").bind(id);
        Ok(self.execute(&sql).await? == 1)
    }

    pub async fn create_team(&self, t: &StoredTeam) -> Result<(), StoreError> {
        let mut sql = Sql::new(
            self.dialect(),
            "INSERT INTO teams (name, limits, budget, capture, metadata, created_at, updated_at) VALUES (",
        );
        sql.bind(t.name.as_str()).push(", ").bind(json_text(&t.limits)).push(", ").bind(json_text(&t.budget));
        sql.push(", ").bind(Value::Text(t.capture.clone()));
        sql.push(", ").bind(json_text(&Some(&t.metadata))).push(", ").bind(t.created_at).push(", ").bind(t.updated_at);
        sql.push(")");
        self.execute(&sql).await.map(|_| ())
    }

    pub async fn update_team(&self, t: &StoredTeam) -> Result<bool, StoreError> {
        let mut sql = Sql::new(self.dialect(), "UPDATE teams SET limits = ");
        sql.bind(json_text(&t.limits)).push(", budget = ").bind(json_text(&t.budget));
        sql.push(", capture = ").bind(Value::Text(t.capture.clone()));
        sql.push(", metadata = ").bind(json_text(&Some(&t.metadata))).push(", updated_at = ").bind(t.updated_at);
        sql.push(" WHERE name = ").bind(t.name.as_str());
        Ok(self.execute(&sql).await? == 1)
    }

    pub async fn delete_team(&self, name: &str) -> Result<bool, StoreError> {
        let mut sql = Sql::new(self.dialect(), "DELETE FROM teams WHERE name = ");
        sql.bind(name);
        Ok(self.execute(&sql).await? == 1)
    }

    pub async fn list_teams(&self) -> Result<Vec<StoredTeam>, StoreError> {
        let sql = Sql::new(
            self.dialect(),
            "SELECT name, limits, budget, capture, metadata, created_at, updated_at FROM teams ORDER BY name",
        );
        Ok(match self {
            Store::Sqlite(p) => sql.sqlite().fetch_all(p).await?.iter().map(team_from_row).collect::<Result<_, _>>()?,
            Store::Postgres(p) => {
                sql.postgres().fetch_all(p).await?.iter().map(team_from_row).collect::<Result<_, _>>()?
            }
        })
    }

    pub async fn create_user(&self, u: &StoredUser) -> Result<(), StoreError> {
        let mut sql = Sql::new(
            self.dialect(),
            "INSERT INTO users (name, team, limits, budget, metadata, created_at, updated_at) VALUES (",
        );
        sql.bind(u.name.as_str()).push(", ").bind(Value::Text(u.team.clone()));
        sql.push(", ").bind(json_text(&u.limits)).push(", ").bind(json_text(&u.budget));
        sql.push(", ").bind(json_text(&Some(&u.metadata))).push(", ").bind(u.created_at).push(", ").bind(u.updated_at);
        sql.push(")");
        self.execute(&sql).await.map(|_| ())
    }

    pub async fn update_user(&self, u: &StoredUser) -> Result<bool, StoreError> {
        let mut sql = Sql::new(self.dialect(), "UPDATE users SET team = ");
        sql.bind(Value::Text(u.team.clone())).push(", limits = ").bind(json_text(&u.limits));
        sql.push(", budget = ").bind(json_text(&u.budget)).push(", metadata = ").bind(json_text(&Some(&u.metadata)));
        sql.push(", updated_at = ").bind(u.updated_at).push(" WHERE name = ").bind(u.name.as_str());
        Ok(self.execute(&sql).await? == 1)
    }

    pub async fn delete_user(&self, name: &str) -> Result<bool, StoreError> {
        let mut sql = Sql::new(self.dialect(), "DELETE FROM users WHERE name = ");
        sql.bind(name);
        Ok(self.execute(&sql).await? == 1)
    }

    pub async fn list_users(&self) -> Result<Vec<StoredUser>, StoreError> {
        let sql = Sql::new(
            self.dialect(),
            "SELECT name, team, limits, budget, metadata, created_at, updated_at FROM users ORDER BY name",
        );
        Ok(match self {
            Store::Sqlite(p) => sql.sqlite().fetch_all(p).await?.iter().map(user_from_row).collect::<Result<_, _>>()?,
            Store::Postgres(p) => {
                sql.postgres().fetch_all(p).await?.iter().map(user_from_row).collect::<Result<_, _>>()?
            }
        })
    }

    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut sql =
            Sql::new(self.dialect(), "INSERT INTO audit_log (id, at, actor, action, target, details) VALUES (");
        sql.bind(entry.id.as_str()).push(", ").bind(entry.at).push(", ").bind(entry.actor.as_str());
        sql.push(", ").bind(entry.action.as_str()).push(", ").bind(entry.target.as_str());
        sql.push(", ").bind(entry.details.to_string()).push(")");
        self.execute(&sql).await.map(|_| ())
    }

    /// The newest audit entries first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let mut sql = Sql::new(
            self.dialect(),
            "SELECT id, at, actor, action, target, details FROM audit_log ORDER BY at DESC, id DESC LIMIT ",
        );
        sql.bind(i64::from(limit.clamp(1, 1000)));
        Ok(match self {
            Store::Sqlite(p) => {
                sql.sqlite().fetch_all(p).await?.iter().map(audit_from_row).collect::<Result<_, _>>()?
            }
            Store::Postgres(p) => {
                sql.postgres().fetch_all(p).await?.iter().map(audit_from_row).collect::<Result<_, _>>()?
            }
        })
    }
}
