//! `switchyard keys …`: the admin API's virtual keys from the command line, against a running
//! gateway.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

#[derive(Args)]
pub struct KeysArgs {
    /// The gateway.
    #[arg(long, env = "SWITCHYARD_URL", default_value = "http://127.0.0.1:4141", global = true)]
    url: String,
    /// The master key or an admin key.
    #[arg(long, env = "SWITCHYARD_MASTER_KEY", hide_env_values = true, global = true)]
    admin_key: Option<String>,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a key and print it (it is shown this once).
    Create {
        #[arg(long)]
        name: String,
        /// Model names and `*` patterns, comma-separated (default: every model).
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        rpm: Option<u64>,
        #[arg(long)]
        tpm: Option<u64>,
        #[arg(long)]
        concurrency: Option<u64>,
        /// RFC 3339 or Unix seconds.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List the keys (never their secrets).
    List,
    /// Give a key a new secret and print it; the old one stops working.
    Rotate { id: String },
    /// Revoke a key.
    Revoke { id: String },
}

pub async fn run(args: KeysArgs) -> Result<(), String> {
    let admin_key = args.admin_key.ok_or("give the admin key with --admin-key or SWITCHYARD_MASTER_KEY")?;
    let base = format!("{}/admin/keys", args.url.trim_end_matches('/'));
    let http =
        reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().map_err(|e| e.to_string())?;
    let (method, url, body) = match args.command {
        KeysCommand::Create { name, models, team, user, rpm, tpm, concurrency, expires_at } => {
            let mut spec = json!({"name": name});
            let o = spec.as_object_mut().ok_or("spec")?;
            for (k, v) in [("team", team), ("user", user), ("expires_at", expires_at)] {
                if let Some(v) = v {
                    o.insert(k.into(), json!(v));
                }
            }
            if let Some(m) = models {
                o.insert("models".into(), json!(m));
            }
            if rpm.is_some() || tpm.is_some() || concurrency.is_some() {
                o.insert("limits".into(), json!({"rpm": rpm, "tpm": tpm, "concurrency": concurrency}));
            }
            (reqwest::Method::POST, base, Some(spec))
        }
        KeysCommand::List => (reqwest::Method::GET, base, None),
        KeysCommand::Rotate { id } => (reqwest::Method::POST, format!("{base}/{id}/rotate"), None),
        KeysCommand::Revoke { id } => (reqwest::Method::DELETE, format!("{base}/{id}"), None),
    };
    let mut req = http.request(method, &url).bearer_auth(admin_key);
    if let Some(b) = &body {
        req = req.json(b);
    }
    let resp = req.send().await.map_err(|e| format!("cannot reach the gateway at {}: {e}", args.url))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let message = v["error"]["message"].as_str().unwrap_or("no message");
        return Err(format!("{status}: {message}"));
    }
    match v.get("data").and_then(Value::as_array) {
        Some(keys) => {
            println!("{:<40} {:<24} {:<12} {:<8} models", "id", "name", "prefix", "status");
            for k in keys {
                let models = k["models"]
                    .as_array()
                    .map_or("*".to_string(), |m| m.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","));
                let text = |f: &str| k[f].as_str().unwrap_or("").to_string();
                println!(
                    "{:<40} {:<24} {:<12} {:<8} {models}",
                    text("id"),
                    text("name"),
                    text("prefix"),
                    text("status")
                );
            }
        }
        None => {
            if let Some(secret) = v["key"].as_str() {
                println!("{secret}");
                eprintln!("id {}: keep the key above now; it will not be shown again", v["id"].as_str().unwrap_or(""));
            } else {
                println!("{} {}", v["id"].as_str().unwrap_or(""), v["status"].as_str().unwrap_or(""));
            }
        }
    }
    Ok(())
}
