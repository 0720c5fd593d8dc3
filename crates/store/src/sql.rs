//! A statement built once and bound to either database: the one place that knows their
//! placeholders (`?` against `$1`) and how each reads a column.

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{AssertSqlSafe, Postgres, Row, Sqlite};

use crate::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Store {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Store::Sqlite(_) => Dialect::Sqlite,
            Store::Postgres(_) => Dialect::Postgres,
        }
    }
}

/// A bound value. Nulls are typed: Postgres infers a parameter's type from its column and
/// rejects a text null bound to an integer one.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_string()))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}

/// The query with every argument bound: the same code for either database's `Query` type.
macro_rules! bind_all {
    ($sql:expr) => {{
        let mut q = sqlx::query(AssertSqlSafe($sql.text.clone()));
        for a in &$sql.args {
            q = match a {
                Value::Int(v) => q.bind(*v),
                Value::Real(v) => q.bind(*v),
                Value::Text(v) => q.bind(v.clone()),
            };
        }
        q
    }};
}

/// SQL text with its arguments.
#[derive(Debug)]
pub struct Sql {
    pub text: String,
    args: Vec<Value>,
    dialect: Dialect,
}

impl Sql {
    pub fn new(dialect: Dialect, text: &str) -> Sql {
        Sql { text: text.to_string(), args: Vec::new(), dialect }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `value`.
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.args.push(value.into());
        match self.dialect {
            Dialect::Sqlite => self.text.push('?'),
            Dialect::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.args.len().to_string());
            }
        }
        self
    }

    pub fn sqlite(&self) -> Query<'_, Sqlite, SqliteArguments> {
        bind_all!(self)
    }

    pub fn postgres(&self) -> Query<'_, Postgres, PgArguments> {
        bind_all!(self)
    }
}

/// Reading a row's columns by name, the same way from either database.
pub trait Cells {
    fn int(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    fn real(&self, col: &str) -> Result<Option<f64>, sqlx::Error>;
    fn text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
}

macro_rules! cells {
    ($row:ty) => {
        impl Cells for $row {
            fn int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(col)
            }
            fn real(&self, col: &str) -> Result<Option<f64>, sqlx::Error> {
                self.try_get(col)
            }
            fn text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(col)
            }
        }
    };
}

cells!(SqliteRow);
cells!(PgRow);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_dialect() {
        let mut s = Sql::new(Dialect::Postgres, "a = ");
        s.bind(1).push(" AND b = ").bind("x");
        assert_eq!(s.text, "a = $1 AND b = $2");
        let mut s = Sql::new(Dialect::Sqlite, "a = ");
        s.bind(1).push(" AND b = ").bind("x");
        assert_eq!(s.text, "a = ? AND b = ?");
    }
}
