//! Schema migrations, embedded in the binary and applied at start.
//!
//! Each database has its own list, since column types differ; both lists carry the same
//! versions. sqlx's migrator records what ran, checks that applied files did not change, and
//! on Postgres holds an advisory lock so concurrent starts do not race.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

use crate::{Store, StoreError};

const SQLITE: &[(i64, &str, &str)] = &[
    (1, "requests", include_str!("../migrations/sqlite/0001_requests.sql")),
    (2, "keys", include_str!("../migrations/sqlite/0002_keys.sql")),
    (3, "teams", include_str!("../migrations/sqlite/0003_teams.sql")),
    (4, "users_budgets", include_str!("../migrations/sqlite/0004_users_budgets.sql")),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (1, "requests", include_str!("../migrations/postgres/0001_requests.sql")),
    (2, "keys", include_str!("../migrations/postgres/0002_keys.sql")),
    (3, "teams", include_str!("../migrations/postgres/0003_teams.sql")),
    (4, "users_budgets", include_str!("../migrations/postgres/0004_users_budgets.sql")),
];

/// A database migrated by a newer version is fine: during a rolling upgrade the older instances
/// keep writing (migrations only ever add).
fn migrator(list: &[(i64, &'static str, &'static str)]) -> Migrator {
    let mut m = Migrator::with_migrations(
        list.iter()
            .map(|&(version, name, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(name),
                    MigrationType::Simple,
                    AssertSqlSafe(sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    );
    m.set_ignore_missing(true);
    m
}

pub async fn run(store: &Store) -> Result<(), StoreError> {
    match store {
        Store::Sqlite(p) => migrator(SQLITE).run(p).await?,
        Store::Postgres(p) => migrator(POSTGRES).run(p).await?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_databases_have_the_same_versions() {
        let versions = |l: &[(i64, &'static str, &'static str)]| l.iter().map(|m| (m.0, m.1)).collect::<Vec<_>>();
        assert_eq!(versions(SQLITE), versions(POSTGRES));
    }
}
