//! Test rig: the real `switchyard` binary as mock providers and gateways, over real sockets.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

pub const MASTER: &str = "sk-master-e2e-key";

/// A running `switchyard` process, killed when dropped.
pub struct Proc {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_switchyard")
}

/// Starts the binary and waits for its "listening on http://…" line.
pub fn spawn(args: &[&str]) -> Proc {
    let mut child = Command::new(bin())
        .args(args)
        .env("SWITCHYARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin()));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(Ok(line)) = lines.next() {
            if let Some(i) = line.find("http://") {
                let _ = tx.send(line[i..].trim().to_string());
                break;
            }
        }
        // Keep draining so the child never blocks on a full pipe.
        for _ in lines {}
    });
    let url = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("switchyard {args:?} did not report its address within 20 s"));
    Proc { child, url }
}

pub fn mock(args: &[&str]) -> Proc {
    let mut all = vec!["mock", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    spawn(&all)
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory for one test's files.
pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-e2e-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

/// A gateway on an ephemeral port with this config; returns the process and the config path.
pub fn gateway(config: &str) -> (Proc, PathBuf) {
    let path = temp_dir().join("switchyard.yaml");
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("{e}"));
    let p = path.display().to_string();
    (spawn(&["serve", "--config", &p, "--listen", "127.0.0.1:0"]), path)
}

/// A config with one provider `up` at `mock` and one model `chat` on it, plus extra YAML.
pub fn simple_config(mock: &Proc, extra_models: &str) -> String {
    format!(
        "server:\n  master_key: {MASTER}\nproviders:\n  up: {{ type: openai-compatible, base_url: \"{}/v1\" }}\n\
         models:\n  - name: chat\n    targets: [{{ provider: up, model: mock-large }}]\n  - name: embed\n    targets: [{{ provider: up, model: mock-embed }}]\n{extra_models}",
        mock.url
    )
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_else(|e| panic!("{e}"))
}

pub async fn post(url: &str, key: Option<&str>, body: &serde_json::Value) -> reqwest::Response {
    let mut req = client().post(url).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

pub async fn json(resp: reqwest::Response) -> serde_json::Value {
    resp.json().await.unwrap_or_else(|e| panic!("not JSON: {e}"))
}

pub async fn mock_stats(mock: &Proc) -> serde_json::Value {
    json(client().get(format!("{}/mock/stats", mock.url)).send().await.unwrap_or_else(|e| panic!("{e}"))).await
}

/// The gateway's Prometheus exposition.
pub async fn metrics(gw: &Proc) -> String {
    let resp = client().get(format!("{}/metrics", gw.url)).send().await.unwrap_or_else(|e| panic!("{e}"));
    resp.text().await.unwrap_or_else(|e| panic!("{e}"))
}

/// Reads an SSE body into its `data:` payloads.
pub async fn sse_data(resp: reqwest::Response) -> Vec<String> {
    let text = resp.text().await.unwrap_or_else(|e| panic!("{e}"));
    text.split("\n\n")
        .filter_map(|frame| frame.lines().find_map(|l| l.strip_prefix("data: ")).map(str::to_string))
        .collect()
}

pub fn user(text: &str) -> serde_json::Value {
    serde_json::json!([{"role": "user", "content": text}])
}

pub const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A Postgres schema of the test's own, dropped when the guard goes.
pub struct PgSchema {
    pub name: String,
}

impl PgSchema {
    pub async fn new() -> PgSchema {
        let name = format!("sy_e2e_{}_{}", std::process::id(), fastrand::u32(..));
        let admin = switchyard_store::Store::connect(POSTGRES).await.unwrap_or_else(|e| panic!("{e}"));
        let switchyard_store::Store::Postgres(pool) = &admin else { panic!("not postgres") };
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(pool)
            .await
            .unwrap_or_else(|e| panic!("Postgres must run on 127.0.0.1:5432 for this test: {e}"));
        PgSchema { name }
    }

    pub fn url(&self) -> String {
        format!("{POSTGRES}?options%5Bsearch_path%5D={}", self.name)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if let Ok(switchyard_store::Store::Postgres(pool)) = switchyard_store::Store::connect(POSTGRES).await {
                    let _ =
                        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE"))).execute(&pool).await;
                }
            });
        })
        .join();
    }
}

/// A TCP proxy to `127.0.0.1:target` that refuses connections (and drops open ones) while `up`
/// is false: a server that stops and comes back, without stopping the one other tests share.
pub async fn tcp_proxy(target: u16, up: std::sync::Arc<std::sync::atomic::AtomicBool>) -> u16 {
    use std::sync::atomic::Ordering;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            if !up.load(Ordering::SeqCst) {
                continue;
            }
            let up = up.clone();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else { return };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    () = async { while up.load(Ordering::SeqCst) { tokio::time::sleep(Duration::from_millis(20)).await } } => {}
                }
            });
        }
    });
    port
}
