//! Virtual keys through the admin API, end to end: made, used, limited, rotated and revoked, in
//! a SQLite file and shared by two instances through the real Postgres on 127.0.0.1:5432.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

async fn admin(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut req = client().request(method, url).bearer_auth(MASTER);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn chat(gw: &Proc, key: &str, model: &str) -> u16 {
    post(&format!("{}/v1/chat/completions", gw.url), Some(key), &json!({"model": model, "messages": user("hi")}))
        .await
        .status()
        .as_u16()
}

/// Polls until `key` gets `want` on `gw` (other instances learn of changes within seconds).
async fn eventually(gw: &Proc, key: &str, want: u16) {
    let start = Instant::now();
    loop {
        let got = chat(gw, key, "chat").await;
        if got == want {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "still {got}, not {want}, after 15 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn with_storage(up: &Proc, storage: &str) -> String {
    simple_config(up, "").replacen("providers:\n", &format!("storage: \"{storage}\"\nproviders:\n"), 1)
}

#[tokio::test]
async fn a_key_is_made_used_limited_rotated_and_revoked() {
    let up = mock(&[]);
    let dir = temp_dir();
    let (gw, _) = gateway(&with_storage(&up, &format!("sqlite://{}", dir.join("gw.db").display())));
    let keys = format!("{}/admin/keys", gw.url);
    let (status, made) = admin(
        reqwest::Method::POST,
        keys.clone(),
        Some(json!({"name": "web", "models": ["chat"], "limits": {"rpm": 2}, "metadata": {"owner": "ann"}})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let secret = made["key"].as_str().unwrap_or_default().to_string();
    let id = made["id"].as_str().unwrap_or_default().to_string();
    assert!(secret.starts_with("sk-sy-") && secret.starts_with(made["prefix"].as_str().unwrap_or("?")));

    assert_eq!(chat(&gw, &secret, "chat").await, 200, "usable at once on the instance that made it");
    assert_eq!(chat(&gw, &secret, "embed").await, 403, "outside its model list");
    assert_eq!(chat(&gw, &secret, "chat").await, 200, "a refused model does not count against the limit");
    assert_eq!(chat(&gw, &secret, "chat").await, 429, "its limit of 2 a minute");
    // The secret is shown once: never listed, never stored.
    let (_, listed) = admin(reqwest::Method::GET, keys.clone(), None).await;
    assert!(!listed.to_string().contains(&secret) && listed["data"][0]["name"] == "web", "{listed}");
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")).flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the key",
            entry.path().display()
        );
    }
    // A virtual key is not an admin key.
    let resp = client().get(&keys).bearer_auth(&secret).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 403);

    let (status, patched) = admin(reqwest::Method::PATCH, format!("{keys}/{id}"), Some(json!({"limits": null}))).await;
    assert_eq!((status, &patched["limits"]), (200, &Value::Null));
    assert_eq!(chat(&gw, &secret, "chat").await, 200, "no limit any more");

    let (status, rotated) = admin(reqwest::Method::POST, format!("{keys}/{id}/rotate"), None).await;
    assert_eq!(status, 200);
    let fresh = rotated["key"].as_str().unwrap_or_default().to_string();
    assert_ne!(fresh, secret);
    assert_eq!(chat(&gw, &secret, "chat").await, 401, "the old secret stops at once");
    assert_eq!(chat(&gw, &fresh, "chat").await, 200);

    let (status, revoked) = admin(reqwest::Method::DELETE, format!("{keys}/{id}"), None).await;
    assert_eq!((status, revoked["status"].as_str()), (200, Some("revoked")));
    assert_eq!(chat(&gw, &fresh, "chat").await, 401);
    assert_eq!(admin(reqwest::Method::DELETE, format!("{keys}/{id}"), None).await.0, 404, "already revoked");

    let (_, audit) = admin(reqwest::Method::GET, format!("{}/admin/audit", gw.url), None).await;
    let actions: Vec<_> =
        audit["data"].as_array().into_iter().flatten().map(|e| e["action"].as_str().unwrap_or("")).collect();
    assert_eq!(actions, ["key.revoke", "key.rotate", "key.update", "key.create"]);
    assert!(audit["data"].as_array().into_iter().flatten().all(|e| e["actor"] == "master"));
    assert!(!audit.to_string().contains(&fresh) && !audit.to_string().contains(&secret), "no secret in the audit log");

    // Bad specs are clear 4xx answers.
    assert_eq!(admin(reqwest::Method::POST, keys.clone(), Some(json!({"name": "web"}))).await.0, 409);
    assert_eq!(admin(reqwest::Method::POST, keys.clone(), Some(json!({"models": ["chat"]}))).await.0, 400);
    assert_eq!(admin(reqwest::Method::POST, keys.clone(), Some(json!({"name": "n".repeat(129)}))).await.0, 400);
    assert_eq!(
        admin(
            reqwest::Method::POST,
            keys.clone(),
            Some(json!({"name": "bad
name"}))
        )
        .await
        .0,
        400
    );
    assert_eq!(admin(reqwest::Method::POST, keys.clone(), Some(json!({"name": "x", "colour": 1}))).await.0, 400);
    assert_eq!(admin(reqwest::Method::POST, keys.clone(), Some(json!({"name": "y", "team": "nope"}))).await.0, 400);
    assert_eq!(admin(reqwest::Method::POST, keys, Some(json!({"name": "z", "limits": {"rpm": 0}}))).await.0, 400);
}

#[tokio::test]
async fn two_instances_sharing_postgres_see_each_others_keys_within_seconds() {
    let up = mock(&[]);
    let schema = format!("sy_keys_{}_{}", std::process::id(), fastrand::u32(..));
    let Ok(switchyard_store::Store::Postgres(pool)) = switchyard_store::Store::connect(POSTGRES).await else {
        panic!("Postgres must run on 127.0.0.1:5432 for this test")
    };
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!("{POSTGRES}?options%5Bsearch_path%5D={schema}");
    let (a, _) = gateway(&with_storage(&up, &url));
    let (b, _) = gateway(&with_storage(&up, &url));
    let (status, made) =
        admin(reqwest::Method::POST, format!("{}/admin/keys", a.url), Some(json!({"name": "shared"}))).await;
    assert_eq!(status, 201, "{made}");
    let secret = made["key"].as_str().unwrap_or_default().to_string();
    eventually(&b, &secret, 200).await;
    let id = made["id"].as_str().unwrap_or_default();
    assert_eq!(admin(reqwest::Method::DELETE, format!("{}/admin/keys/{id}", a.url), None).await.0, 200);
    eventually(&b, &secret, 401).await;
    drop((a, b));
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&pool).await;
}

#[tokio::test]
async fn keys_need_a_store() {
    let up = mock(&[]);
    let (gw, _) = gateway(&simple_config(&up, ""));
    let (status, body) =
        admin(reqwest::Method::POST, format!("{}/admin/keys", gw.url), Some(json!({"name": "x"}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("store_disabled")));
}

#[tokio::test]
async fn admin_keys_read_or_change_as_their_role_allows() {
    let up = mock(&[]);
    let dir = temp_dir();
    let extra = "keys:\n  - { name: auditor, key: sk-auditor-01, admin: read }\n  - { name: ops, key: sk-ops-000001, admin: full }\n";
    let cfg = simple_config(&up, extra).replacen(
        "providers:\n",
        &format!("storage: \"sqlite://{}\"\nproviders:\n", dir.join("gw.db").display()),
        1,
    );
    let (gw, _) = gateway(&cfg);
    let call = |key: &'static str, method: reqwest::Method, path: &str, body: Option<Value>| {
        let url = format!("{}{path}", gw.url);
        async move {
            let mut req = client().request(method, url).bearer_auth(key);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.unwrap_or_else(|e| panic!("{e}"));
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let made = call("sk-ops-000001", reqwest::Method::POST, "/admin/keys", Some(json!({"name": "by-ops"}))).await;
    assert_eq!(made.0, 201, "{}", made.1);
    let refused =
        call("sk-auditor-01", reqwest::Method::POST, "/admin/keys", Some(json!({"name": "by-auditor"}))).await;
    assert_eq!((refused.0, refused.1["error"]["code"].as_str()), (403, Some("admin_read_only")));
    assert_eq!(call("sk-auditor-01", reqwest::Method::GET, "/admin/keys", None).await.0, 200);
    assert_eq!(call("sk-auditor-01", reqwest::Method::GET, "/admin/logs", None).await.0, 200);
    assert_eq!(call("sk-auditor-01", reqwest::Method::POST, "/admin/models/chat/targets/0/drain", None).await.0, 403);
    let (_, audit) = call("sk-auditor-01", reqwest::Method::GET, "/admin/audit", None).await;
    assert_eq!(audit["data"][0]["actor"], "ops");
}

#[tokio::test]
async fn the_keys_command_makes_lists_and_revokes() {
    let up = mock(&[]);
    let dir = temp_dir();
    let (gw, _) = gateway(&with_storage(&up, &format!("sqlite://{}", dir.join("gw.db").display())));
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin())
            .arg("keys")
            .args(args)
            .args(["--url", &gw.url])
            .env("SWITCHYARD_MASTER_KEY", MASTER)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, stdout, stderr) = run(&["create", "--name", "cli", "--models", "chat,embed", "--rpm", "100"]);
    assert!(ok, "{stderr}");
    let secret = stdout.trim().to_string();
    assert!(secret.starts_with("sk-sy-"), "{stdout}");
    assert_eq!(chat(&gw, &secret, "chat").await, 200);
    let (ok, listed, _) = run(&["list"]);
    assert!(ok && listed.contains("cli") && listed.contains("chat,embed") && !listed.contains(&secret), "{listed}");
    let id = stderr.split_whitespace().nth(1).unwrap_or_default().trim_end_matches(':').to_string();
    let (ok, _, stderr) = run(&["revoke", &id]);
    assert!(ok, "{stderr}");
    assert_eq!(chat(&gw, &secret, "chat").await, 401);
    let (ok, _, stderr) = run(&["revoke", &id]);
    assert!(!ok && stderr.contains("404"), "{stderr}");
}

#[tokio::test]
async fn teams_made_through_the_api_limit_their_keys() {
    let up = mock(&[]);
    let dir = temp_dir();
    let cfg = with_storage(&up, &format!("sqlite://{}", dir.join("gw.db").display())).replacen(
        "providers:\n",
        "teams:\n  - { name: from-config }\nproviders:\n",
        1,
    );
    let (gw, _) = gateway(&cfg);
    let teams = format!("{}/admin/teams", gw.url);
    let (status, made) =
        admin(reqwest::Method::POST, teams.clone(), Some(json!({"name": "growth", "limits": {"rpm": 1}}))).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(admin(reqwest::Method::POST, teams.clone(), Some(json!({"name": "growth"}))).await.0, 409);
    assert_eq!(admin(reqwest::Method::POST, teams.clone(), Some(json!({"name": "from-config"}))).await.0, 409);
    let (_, key) =
        admin(reqwest::Method::POST, format!("{}/admin/keys", gw.url), Some(json!({"name": "g1", "team": "growth"})))
            .await;
    let secret = key["key"].as_str().unwrap_or_default().to_string();
    assert_eq!(chat(&gw, &secret, "chat").await, 200);
    let over = post(
        &format!("{}/v1/chat/completions", gw.url),
        Some(&secret),
        &json!({"model": "chat", "messages": user("x")}),
    )
    .await;
    assert_eq!(over.status(), 429);
    assert!(json(over).await["error"]["message"].as_str().is_some_and(|m| m.contains("the team 'growth'")));
    // Raising the team's limit applies to its keys at once.
    let (status, _) =
        admin(reqwest::Method::PATCH, format!("{teams}/growth"), Some(json!({"limits": {"rpm": 100}}))).await;
    assert_eq!(status, 200);
    assert_eq!(chat(&gw, &secret, "chat").await, 200);
    let (_, listed) = admin(reqwest::Method::GET, teams.clone(), None).await;
    let names: Vec<_> =
        listed["data"].as_array().into_iter().flatten().map(|t| (t["name"].clone(), t["source"].clone())).collect();
    assert_eq!(names, [(json!("from-config"), json!("config")), (json!("growth"), json!("api"))]);
    // A team with keys cannot go; once its key is revoked it can.
    assert_eq!(admin(reqwest::Method::DELETE, format!("{teams}/growth"), None).await.0, 409);
    let id = key["id"].as_str().unwrap_or_default();
    assert_eq!(admin(reqwest::Method::DELETE, format!("{}/admin/keys/{id}", gw.url), None).await.0, 200);
    assert_eq!(admin(reqwest::Method::DELETE, format!("{teams}/growth"), None).await.0, 200);
    assert_eq!(
        admin(reqwest::Method::POST, format!("{}/admin/keys", gw.url), Some(json!({"name": "g2", "team": "growth"})))
            .await
            .0,
        400
    );
}

/// The actions of the audit log, oldest first.
async fn audit_actions(gw: &Proc) -> Vec<(String, String, Value)> {
    let (_, audit) = admin(reqwest::Method::GET, format!("{}/admin/audit", gw.url), None).await;
    let mut entries: Vec<_> = audit["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_string(),
                e["target"].as_str().unwrap_or("").to_string(),
                e["details"].clone(),
            )
        })
        .collect();
    entries.reverse();
    entries
}

fn error_of(body: &Value) -> (Option<&str>, Option<&str>) {
    (body["error"]["code"].as_str(), body["error"]["param"].as_str())
}

#[tokio::test]
async fn users_made_through_the_api_are_listed_changed_and_deleted_unless_keys_use_them() {
    let up = mock(&[]);
    let dir = temp_dir();
    let cfg = with_storage(&up, &format!("sqlite://{}", dir.join("gw.db").display())).replacen(
        "providers:\n",
        "teams:\n  - { name: from-config }\nusers:\n  - { name: carol, team: from-config, budget: { usd: 3, period: weekly } }\nproviders:\n",
        1,
    );
    let (gw, _) = gateway(&cfg);
    let users = format!("{}/admin/users", gw.url);
    let keys = format!("{}/admin/keys", gw.url);
    assert_eq!(
        admin(reqwest::Method::POST, format!("{}/admin/teams", gw.url), Some(json!({"name": "growth"}))).await.0,
        201
    );
    let spec = json!({"name": "alice", "team": "growth", "limits": {"rpm": 50},
        "budget": {"usd": 5, "period": "monthly", "alerts": [0.9, 0.5]}, "metadata": {"org": "sales"}});
    let (status, made) = admin(reqwest::Method::POST, users.clone(), Some(spec)).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!((&made["source"], &made["team"], &made["limits"]["rpm"]), (&json!("api"), &json!("growth"), &json!(50)));
    assert_eq!(made["budget"], json!({"usd": 5.0, "period": "monthly", "alerts": [0.5, 0.9]}), "alerts in order");

    // Names are unique over the config's users and the store's.
    for name in ["alice", "carol"] {
        let (status, body) = admin(reqwest::Method::POST, users.clone(), Some(json!({"name": name}))).await;
        assert_eq!((status, error_of(&body)), (409, (Some("user_name_taken"), Some("name"))), "{name}: {body}");
    }
    let (status, body) =
        admin(reqwest::Method::POST, users.clone(), Some(json!({"name": "bob", "team": "nope"}))).await;
    assert_eq!((status, error_of(&body).1), (400, Some("team")), "{body}");
    assert_eq!(admin(reqwest::Method::POST, users.clone(), Some(json!({"team": "growth"}))).await.0, 400, "no name");
    assert_eq!(admin(reqwest::Method::POST, users.clone(), Some(json!({"name": "x", "colour": 1}))).await.0, 400);
    let (status, _) =
        admin(reqwest::Method::POST, users.clone(), Some(json!({"name": "dave", "team": "from-config"}))).await;
    assert_eq!(status, 201, "a config team will do");

    let (status, listed) = admin(reqwest::Method::GET, users.clone(), None).await;
    assert_eq!(status, 200);
    let names: Vec<_> =
        listed["data"].as_array().into_iter().flatten().map(|u| (u["name"].clone(), u["source"].clone())).collect();
    assert_eq!(
        names,
        [(json!("alice"), json!("api")), (json!("carol"), json!("config")), (json!("dave"), json!("api"))]
    );
    let carol = &listed["data"][1];
    assert_eq!(
        (&carol["team"], &carol["budget"]["usd"], &carol["budget"]["period"]),
        (&json!("from-config"), &json!(3.0), &json!("weekly"))
    );

    // PATCH: absent stays, null clears; the name and config users cannot change here.
    let (status, patched) = admin(
        reqwest::Method::PATCH,
        format!("{users}/alice"),
        Some(json!({"budget": null, "metadata": {"org": "ops"}})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (&patched["budget"], &patched["team"], &patched["limits"]["rpm"]),
        (&Value::Null, &json!("growth"), &json!(50))
    );
    assert_eq!(patched["metadata"], json!({"org": "ops"}));
    let (status, body) = admin(reqwest::Method::PATCH, format!("{users}/alice"), Some(json!({"team": "nope"}))).await;
    assert_eq!((status, error_of(&body).1), (400, Some("team")));
    assert_eq!(admin(reqwest::Method::PATCH, format!("{users}/alice"), Some(json!({"name": "al"}))).await.0, 400);
    assert_eq!(admin(reqwest::Method::PATCH, format!("{users}/carol"), Some(json!({}))).await.0, 404);
    assert_eq!(admin(reqwest::Method::PATCH, format!("{users}/nobody"), Some(json!({}))).await.0, 404);

    // A key's user must exist.
    let (status, body) = admin(reqwest::Method::POST, keys.clone(), Some(json!({"name": "k0", "user": "ghost"}))).await;
    assert_eq!((status, error_of(&body).1), (400, Some("user")), "{body}");
    let (status, key) = admin(reqwest::Method::POST, keys.clone(), Some(json!({"name": "k1", "user": "alice"}))).await;
    assert_eq!(status, 201, "{key}");
    let id = key["id"].as_str().unwrap_or_default().to_string();
    let (status, body) = admin(reqwest::Method::PATCH, format!("{keys}/{id}"), Some(json!({"user": "ghost"}))).await;
    assert_eq!((status, error_of(&body).1), (400, Some("user")), "{body}");

    // A user with a key cannot go, nor a team with a user; once the key is revoked the user can.
    let (status, body) = admin(reqwest::Method::DELETE, format!("{users}/alice"), None).await;
    assert_eq!((status, error_of(&body).0), (409, Some("user_in_use")), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("k1")), "{body}");
    let (status, body) = admin(reqwest::Method::DELETE, format!("{}/admin/teams/growth", gw.url), None).await;
    assert_eq!((status, error_of(&body).0), (409, Some("team_in_use")), "{body}");
    assert_eq!(admin(reqwest::Method::DELETE, format!("{keys}/{id}"), None).await.0, 200);
    assert_eq!(admin(reqwest::Method::DELETE, format!("{users}/alice"), None).await.0, 200);
    assert_eq!(admin(reqwest::Method::DELETE, format!("{users}/alice"), None).await.0, 404, "already gone");
    assert_eq!(admin(reqwest::Method::DELETE, format!("{users}/carol"), None).await.0, 404, "the config's");
    assert_eq!(admin(reqwest::Method::POST, keys, Some(json!({"name": "k2", "user": "alice"}))).await.0, 400);

    let users_audit: Vec<_> =
        audit_actions(&gw).await.into_iter().filter(|(action, _, _)| action.starts_with("user.")).collect();
    let actions: Vec<_> = users_audit.iter().map(|(a, t, _)| (a.as_str(), t.as_str())).collect();
    assert_eq!(
        actions,
        [("user.create", "alice"), ("user.create", "dave"), ("user.update", "alice"), ("user.delete", "alice")]
    );
    assert_eq!(users_audit[0].2["set"]["budget"], json!({"usd": 5.0, "period": "monthly", "alerts": [0.5, 0.9]}));
    assert_eq!(users_audit[2].2["set"], json!({"budget": null, "metadata": {"org": "ops"}}));
}

#[tokio::test]
async fn budgets_are_set_cleared_and_checked_on_keys_teams_and_users() {
    let up = mock(&[]);
    let dir = temp_dir();
    let cfg = with_storage(&up, &format!("sqlite://{}", dir.join("gw.db").display())).replacen(
        "providers:\n",
        "teams:\n  - { name: from-config, budget: { usd: 100, period: 30d, alerts: [0.8] } }\nproviders:\n",
        1,
    );
    let (gw, _) = gateway(&cfg);
    let teams = format!("{}/admin/teams", gw.url);
    let keys = format!("{}/admin/keys", gw.url);
    let users = format!("{}/admin/users", gw.url);

    let (status, team) = admin(reqwest::Method::POST, teams.clone(), Some(json!({"name": "growth"}))).await;
    assert_eq!((status, &team["budget"]), (201, &Value::Null), "{team}");
    let (status, team) = admin(
        reqwest::Method::PATCH,
        format!("{teams}/growth"),
        Some(json!({"budget": {"usd": 10, "period": "daily", "alerts": [1, 0.5]}})),
    )
    .await;
    assert_eq!(status, 200, "{team}");
    assert_eq!(team["budget"], json!({"usd": 10.0, "period": "daily", "alerts": [0.5, 1.0]}));
    let (_, listed) = admin(reqwest::Method::GET, teams.clone(), None).await;
    assert_eq!(listed["data"][0]["budget"], json!({"usd": 100.0, "period": "30d", "alerts": [0.8]}), "{listed}");
    assert_eq!(listed["data"][1]["budget"]["period"], "daily", "{listed}");
    let (status, team) =
        admin(reqwest::Method::PATCH, format!("{teams}/growth"), Some(json!({"capture": "none"}))).await;
    assert_eq!((status, &team["budget"]["usd"]), (200, &json!(10.0)), "absent leaves the budget");
    let (status, team) = admin(reqwest::Method::PATCH, format!("{teams}/growth"), Some(json!({"budget": null}))).await;
    assert_eq!((status, &team["budget"]), (200, &Value::Null));

    let (status, key) =
        admin(reqwest::Method::POST, keys.clone(), Some(json!({"name": "k1", "budget": {"usd": 2.5}}))).await;
    assert_eq!(status, 201, "{key}");
    assert_eq!(key["budget"], json!({"usd": 2.5, "period": "lifetime"}), "lifetime by default");
    let secret = key["key"].as_str().unwrap_or_default().to_string();
    let id = key["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(chat(&gw, &secret, "chat").await, 200, "usable under its budget");
    let (status, key) = admin(reqwest::Method::PATCH, format!("{keys}/{id}"), Some(json!({"budget": null}))).await;
    assert_eq!((status, &key["budget"]), (200, &Value::Null), "{key}");
    let (status, key) =
        admin(reqwest::Method::PATCH, format!("{keys}/{id}"), Some(json!({"budget": {"usd": 1, "period": "weekly"}})))
            .await;
    assert_eq!((status, &key["budget"]["period"]), (200, &json!("weekly")), "{key}");
    let (_, one) = admin(reqwest::Method::GET, format!("{keys}/{id}"), None).await;
    assert_eq!(one["budget"], json!({"usd": 1.0, "period": "weekly"}), "stored");

    // Bad budgets are 400s naming `budget`, on each kind, and change nothing.
    let bad = [
        json!({"usd": 5, "period": "fortnightly"}),
        json!({"usd": 5, "alerts": [2]}),
        json!({"usd": 5, "alerts": [0]}),
        json!({"usd": -1}),
        json!({"usd": 5, "period": "10m"}),
    ];
    for budget in &bad {
        let calls = [
            (reqwest::Method::POST, keys.clone(), json!({"name": "k2", "budget": budget})),
            (reqwest::Method::PATCH, format!("{keys}/{id}"), json!({"budget": budget})),
            (reqwest::Method::POST, teams.clone(), json!({"name": "t2", "budget": budget})),
            (reqwest::Method::PATCH, format!("{teams}/growth"), json!({"budget": budget})),
            (reqwest::Method::POST, users.clone(), json!({"name": "u2", "budget": budget})),
        ];
        for (method, url, body) in calls {
            let (status, answer) = admin(method.clone(), url.clone(), Some(body)).await;
            assert_eq!((status, error_of(&answer).1), (400, Some("budget")), "{method} {url} {budget}: {answer}");
        }
    }
    assert_eq!(
        admin(reqwest::Method::POST, keys, Some(json!({"name": "k3", "budget": {"period": "daily"}}))).await.0,
        400,
        "usd is required"
    );
    let (_, one) = admin(reqwest::Method::GET, format!("{}/admin/keys/{id}", gw.url), None).await;
    assert_eq!(one["budget"], json!({"usd": 1.0, "period": "weekly"}), "unchanged by the bad PATCHes");
    let (_, listed) = admin(reqwest::Method::GET, users, None).await;
    assert_eq!(listed["data"], json!([]), "no user was made");

    let audit = audit_actions(&gw).await;
    let updates: Vec<_> =
        audit.iter().filter(|(a, _, _)| a == "key.update").map(|(_, _, d)| d["set"].clone()).collect();
    assert_eq!(updates, [json!({"budget": null}), json!({"budget": {"usd": 1.0, "period": "weekly"}})]);
    let team_sets: Vec<_> =
        audit.iter().filter(|(a, _, _)| a == "team.update").map(|(_, _, d)| d["set"].clone()).collect();
    assert_eq!(team_sets[0]["budget"], json!({"usd": 10.0, "period": "daily", "alerts": [0.5, 1.0]}));
    assert_eq!(team_sets[2], json!({"budget": null}));
}

#[tokio::test]
async fn a_users_limit_applies_over_all_its_keys() {
    let up = mock(&[]);
    let dir = temp_dir();
    let (gw, _) = gateway(&with_storage(&up, &format!("sqlite://{}", dir.join("gw.db").display())));
    let (status, made) = admin(
        reqwest::Method::POST,
        format!("{}/admin/users", gw.url),
        Some(json!({"name": "alice", "limits": {"rpm": 2}})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let mut secrets = Vec::new();
    for name in ["a1", "a2"] {
        let (status, key) = admin(
            reqwest::Method::POST,
            format!("{}/admin/keys", gw.url),
            Some(json!({"name": name, "user": "alice"})),
        )
        .await;
        assert_eq!(status, 201, "{key}");
        secrets.push(key["key"].as_str().unwrap_or_default().to_string());
    }
    let before = mock_stats(&up).await["requests"].as_u64().unwrap_or_default();
    assert_eq!(chat(&gw, &secrets[0], "chat").await, 200);
    assert_eq!(chat(&gw, &secrets[1], "chat").await, 200, "a second key of the user");
    let over = post(
        &format!("{}/v1/chat/completions", gw.url),
        Some(&secrets[0]),
        &json!({"model": "chat", "messages": user("x")}),
    )
    .await;
    assert_eq!(over.status(), 429, "the third request of the user within a minute");
    let body = json(over).await;
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("the user 'alice'")), "{body}");
    let sent = mock_stats(&up).await["requests"].as_u64().unwrap_or_default() - before;
    assert_eq!(sent, 2, "the refused request never reached the provider");
}
