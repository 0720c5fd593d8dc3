//! Persistence: the request log in SQLite (the embedded default) or Postgres (shared by several
//! instances), chosen by the `storage:` URL.
//!
//! One `Store` type with a variant per database, rather than a trait object: the two differ only
//! in placeholders and a few SQL functions (`sql.rs`), and a `match` keeps each query in one
//! place. Nothing here is called on the request path; the telemetry writer and the admin API
//! are its callers.

mod counters;
mod keys;
mod migrate;
mod requests;
mod spend;
mod sql;
pub mod time;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub use counters::{ScopeLimits, SharedCounters, Verdict};
pub use keys::{AuditEntry, StoredBudget, StoredLimits, StoredTeam, StoredUser, VirtualKey};
pub use requests::{Bucket, LogPage, LogQuery, Percentiles, StatusFilter, UsageQuery, UsageRow};
pub use spend::{BudgetBooks, Hold, Settled};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not named back: it may hold a password.
    #[error("unsupported storage URL: expected sqlite://PATH, sqlite::memory: or postgres://USER@HOST/DB")]
    Url,
    #[error("cannot open the {0} store: {1}")]
    Connect(&'static str, sqlx::Error),
    #[error("migrating the store failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("invalid {0} in the query: {1}")]
    Invalid(&'static str, String),
    #[error("the store did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis: {0}")]
    Redis(redis::RedisError),
}

impl StoreError {
    /// The database refused these rows for what they hold (a constraint, a value it cannot
    /// store, a size limit), so retrying them cannot help; any other error may pass.
    pub fn is_rejection(&self) -> bool {
        let StoreError::Query(sqlx::Error::Database(db)) = self else { return false };
        let code = db.code().unwrap_or_default();
        match self_backend(db.as_ref()) {
            // SQLSTATE classes 22 (data exception), 23 (integrity) and 54 (program limit).
            Backend::Postgres => code.starts_with("22") || code.starts_with("23") || code.starts_with("54"),
            // SQLITE_TOOBIG, SQLITE_CONSTRAINT (and its extended codes), SQLITE_MISMATCH.
            Backend::Sqlite => {
                let primary = code.parse::<i32>().unwrap_or(0) & 0xff;
                matches!(primary, 18..=20)
            }
        }
    }
}

enum Backend {
    Sqlite,
    Postgres,
}

fn self_backend(db: &dyn sqlx::error::DatabaseError) -> Backend {
    if db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() { Backend::Postgres } else { Backend::Sqlite }
}

/// A connection pool to the configured database.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// How long a query waits for a pooled connection before it fails: a store outage must surface
/// as an error the writer can retry, not as a wait without end.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Opens the store and brings its schema up to date (migrations run under a lock, so
    /// instances starting together apply each one once).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the pool without waiting for the database where it is a server: Postgres connects
    /// on first use, so a gateway can start while its database is down and write once it is
    /// back. A SQLite file is opened at once, so a wrong path fails at start. Call `migrate`
    /// before the first query.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|_| StoreError::Url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5));
            // An in-memory database lives in its connection: one connection, kept for ever.
            let pool = if memory {
                SqlitePoolOptions::new().max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None)
            } else {
                SqlitePoolOptions::new().max_connections(4)
            };
            let pool = pool
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(opts)
                .await
                .map_err(|e| StoreError::Connect("sqlite", e))?;
            Ok(Store::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // A statement that hangs (a stalled connection, a lock) fails after this, so the
            // writer can retry and the admin API can answer.
            let opts =
                PgConnectOptions::from_str(url).map_err(|_| StoreError::Url)?.options([("statement_timeout", "30s")]);
            let pool = PgPoolOptions::new().max_connections(8).acquire_timeout(ACQUIRE_TIMEOUT).connect_lazy_with(opts);
            Ok(Store::Postgres(pool))
        } else {
            Err(StoreError::Url)
        }
    }

    /// Applies the migrations this version has and the database lacks.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate::run(self).await
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ())?,
            Store::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ())?,
        }
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(p) => p.close().await,
            Store::Postgres(p) => p.close().await,
        }
    }
}
