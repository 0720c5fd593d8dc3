//! The Switchyard HTTP server: surfaces, config loading and hot reload, and the wiring of the
//! request stages.

mod budgets;
pub mod config;
pub mod demo;
mod error;
mod probes;
mod records;
mod reload;
pub mod runtime;
mod server;
mod surfaces;
mod tokens;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, patch, post};
use switchyard_policy::{Alerts, Budgets, KeyRing, Limiter, OnRedisOutage, SharedBudgets, SharedLimiter};
use switchyard_providers::UpstreamClient;
use switchyard_store::Store;
use switchyard_telemetry::{Metrics, RecordSink};

pub use error::SurfaceError;
pub use runtime::{Runtime, TeamPolicy, UserPolicy};
pub use server::serve_on;

/// What every handler shares. Cloning is cheap (reference counts).
#[derive(Clone)]
pub struct AppState {
    pub runtime: Arc<ArcSwap<Runtime>>,
    pub client: UpstreamClient,
    /// Why the last reload failed, while the previous config keeps serving.
    pub reload_error: Arc<ArcSwap<Option<String>>>,
    pub metrics: Arc<Metrics>,
    /// Where finished requests' records go (off without a store or trace export).
    pub records: RecordSink,
    /// The request log, for the admin API and retention.
    pub store: Option<Store>,
    /// Rate-limit counts, kept across reloads.
    pub limiter: Arc<Limiter>,
    /// The counts shared with other instances through Redis, when `redis:` is set.
    pub shared_limits: Option<Arc<SharedLimiter>>,
    /// Keys made through the admin API, loaded from the store and refreshed every few seconds.
    pub store_keys: Arc<ArcSwap<KeyRing>>,
    /// Teams made through the admin API, loaded with the keys.
    pub store_teams: Arc<ArcSwap<HashMap<String, TeamPolicy>>>,
    /// Users made through the admin API, likewise.
    pub store_users: Arc<ArcSwap<HashMap<String, UserPolicy>>>,
    /// Budget books in this process: all of them without Redis, a stand-in during its outages.
    pub budgets: Arc<Budgets>,
    /// The books shared with other instances through Redis, when `redis:` is set.
    pub shared_budgets: Option<Arc<SharedBudgets>>,
    /// Where budget alerts go, to the webhook sender.
    pub alerts: Alerts,
}

impl AppState {
    /// A team by name: the config's, else one made through the admin API.
    pub fn team(&self, rt: &Runtime, name: &str) -> Option<TeamPolicy> {
        rt.teams.get(name).cloned().or_else(|| self.store_teams.load().get(name).cloned())
    }

    /// A user by name: the config's, else one made through the admin API.
    pub fn user(&self, rt: &Runtime, name: &str) -> Option<UserPolicy> {
        rt.users.get(name).cloned().or_else(|| self.store_users.load().get(name).cloned())
    }
}

impl AppState {
    pub fn new(runtime: Runtime, client: UpstreamClient) -> Self {
        let metrics = Arc::new(Metrics::new());
        AppState {
            runtime: Arc::new(ArcSwap::from_pointee(runtime)),
            client,
            reload_error: Arc::new(ArcSwap::from_pointee(None)),
            records: RecordSink::off(metrics.clone()),
            metrics,
            store: None,
            limiter: Arc::default(),
            shared_limits: None,
            store_keys: Arc::new(ArcSwap::from_pointee(KeyRing::default())),
            store_teams: Arc::new(ArcSwap::from_pointee(HashMap::new())),
            store_users: Arc::new(ArcSwap::from_pointee(HashMap::new())),
            budgets: Arc::default(),
            shared_budgets: None,
            alerts: Alerts::off(),
        }
    }
}

/// A request's id: the `x-request-id` it is answered with and the key of its record.
#[derive(Clone, Debug)]
pub struct RequestId(pub Arc<str>);

/// The gateway's routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(surfaces::openai::chat_completions))
        .route("/v1/embeddings", post(surfaces::openai::embeddings))
        .route("/v1/messages", post(surfaces::anthropic::messages))
        .route("/v1/messages/count_tokens", post(surfaces::anthropic::count_tokens))
        .route("/v1/models", get(surfaces::openai::models))
        .route("/health/live", get(surfaces::ops::live))
        .route("/health/ready", get(surfaces::ops::ready))
        .route("/metrics", get(surfaces::metrics::metrics))
        .route("/admin/targets", get(surfaces::admin::targets))
        .route("/admin/logs", get(surfaces::logs::list))
        .route("/admin/logs/{id}", get(surfaces::logs::one))
        .route("/admin/usage", get(surfaces::logs::usage))
        .route("/admin/keys", get(surfaces::keys::list).post(surfaces::keys::create))
        .route(
            "/admin/keys/{id}",
            get(surfaces::keys::one).patch(surfaces::keys::update).delete(surfaces::keys::revoke),
        )
        .route("/admin/keys/{id}/rotate", post(surfaces::keys::rotate))
        .route("/admin/audit", get(surfaces::keys::audit))
        .route("/admin/budgets", get(surfaces::spend::list))
        .route("/admin/teams", get(surfaces::teams::list).post(surfaces::teams::create))
        .route("/admin/teams/{name}", patch(surfaces::teams::update).delete(surfaces::teams::remove))
        .route("/admin/users", get(surfaces::users::list).post(surfaces::users::create))
        .route("/admin/users/{name}", patch(surfaces::users::update).delete(surfaces::users::remove))
        .route("/admin/openapi.json", get(surfaces::admin::openapi))
        .route("/admin/models/{model}/targets/{index}/{action}", post(surfaces::admin::drain))
        .fallback(surfaces::ops::not_found)
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

/// Gives every response an `x-request-id` (a UUIDv7: unique and time-ordered, so ids sort like
/// the log).
async fn request_id(mut req: Request, next: Next) -> Response {
    let id: Arc<str> = uuid::Uuid::now_v7().to_string().into();
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// The tasks a serving gateway runs beside its requests: active health probes, and the sweep
/// that forgets idle rate-limit scopes (end users come and go).
fn start_background(state: &AppState) {
    probes::start(state);
    let limiter = state.limiter.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            limiter.sweep();
        }
    });
}

/// `switchyard serve` options.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// The config file; `None` uses `./switchyard.yaml` if present, else the environment.
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    /// Allow a non-loopback address without any key.
    pub insecure_no_auth: bool,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:4141";

/// Errors that stop `serve` from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("invalid listen address '{0}': expected HOST:PORT such as 127.0.0.1:4141")]
    Listen(String),
    #[error(
        "refusing to listen on {0} without authentication: set server.master_key or keys in the config \
         (or SWITCHYARD_MASTER_KEY), or pass --insecure-no-auth if this network is trusted"
    )]
    NoAuth(SocketAddr),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("{0}")]
    Client(String),
    #[error("storage: {0}")]
    Store(#[from] switchyard_store::StoreError),
    #[error("tracing: {0}")]
    Tracing(#[from] switchyard_telemetry::TraceError),
}

/// Runs the gateway until SIGINT or SIGTERM.
pub async fn run(opts: ServeOptions) -> Result<(), StartError> {
    let path = match &opts.config {
        Some(p) => Some(p.clone()),
        None => Some(PathBuf::from("switchyard.yaml")).filter(|p| p.exists()),
    };
    let (runtime, file) = match &path {
        Some(p) => {
            let cfg = config::load(p).map_err(|e| StartError::Config(e.to_string()))?;
            let rt = Runtime::build(&cfg, &p.display().to_string())
                .map_err(|errs| StartError::Config(format!("{}: {}", p.display(), errs.join("; "))))?;
            (rt, Some(cfg))
        }
        None => (Runtime::from_env(&|v| std::env::var(v).ok()), None),
    };
    for w in &runtime.warnings {
        tracing::warn!("{w}");
    }
    let listen = opts
        .listen
        .clone()
        .or_else(|| file.as_ref().and_then(|c| c.server.listen.clone()))
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let addr: SocketAddr = listen.parse().map_err(|_| StartError::Listen(listen.clone()))?;
    if !addr.ip().is_loopback() && runtime.keys.is_open() && !opts.insecure_no_auth {
        return Err(StartError::NoAuth(addr));
    }
    let server = file.as_ref().map(|c| c.server.clone()).unwrap_or_default();
    let connect = server.connect_timeout.map_or(Duration::from_secs(5), |s| s.0);
    let grace = server.shutdown_grace.map_or(Duration::from_secs(30), |s| s.0);
    let client = UpstreamClient::new(connect).map_err(|e| StartError::Client(e.message))?;
    let mut state = AppState::new(runtime, client);
    if let Some(url) = file.as_ref().and_then(|c| c.redis.as_deref()) {
        let counters = switchyard_store::SharedCounters::connect(url, Duration::from_millis(500))?;
        let on_outage = match file.as_ref().and_then(|c| c.redis_outage) {
            Some(config::RedisOutage::Reject) => OnRedisOutage::Reject,
            _ => OnRedisOutage::Local,
        };
        state.shared_limits = Some(Arc::new(SharedLimiter::new(counters.clone(), state.limiter.clone(), on_outage)));
        state.shared_budgets = Some(Arc::new(SharedBudgets::new(counters, state.budgets.clone(), on_outage)));
    }
    let (storage, logging, tracing_cfg) = match &file {
        Some(c) => (c.storage.clone(), c.logging.clone(), c.tracing.clone()),
        None => (None, config::LoggingConfig::default(), None),
    };
    let writer = records::start(&mut state, storage.as_deref(), &logging, tracing_cfg.as_ref()).await?;
    budgets::start(&mut state);
    start_background(&state);
    if let Some(p) = path {
        tokio::spawn(reload::watch(p, state.clone()));
    }
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| StartError::Bind(addr, e))?;
    let local = listener.local_addr().map_err(|e| StartError::Bind(addr, e))?;
    tracing::info!("switchyard listening on http://{local}");
    println!("switchyard listening on http://{local}");
    serve_on(listener, app(state), server::shutdown_signal(), grace).await;
    records::stop(writer).await;
    Ok(())
}
