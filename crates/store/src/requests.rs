//! The request log: writing records in batches, reading them back with filters and a cursor,
//! aggregating usage, and deleting by age.

use std::collections::{BTreeMap, HashMap};

use futures_util::TryStreamExt;
use serde::Serialize;
use switchyard_types::{CaptureMode, Cost, RequestRecord, Usage};

use crate::sql::{Cells, Dialect, Sql, Value};
use crate::{Store, StoreError};

/// The columns in insert order; `values` yields them in the same order.
const COLUMNS: &[&str] = &[
    "id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "sampled",
    "received_at",
    "first_byte_us",
    "first_token_us",
    "duration_us",
    "upstream_us",
    "overhead_us",
    "key_name",
    "team",
    "user_id",
    "session_id",
    "tags",
    "metadata",
    "surface",
    "operation",
    "requested_model",
    "provider",
    "upstream_model",
    "response_model",
    "stream",
    "status",
    "error_type",
    "error_message",
    "attempts",
    "attempt_count",
    "fallback",
    "finish_reasons",
    "cache_status",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_input",
    "cost_output",
    "cost_cache_read",
    "cost_cache_write",
    "cost_total",
    "capture",
    "request_bytes",
    "response_bytes",
    "request_body",
    "response_body",
];

/// The most rows per INSERT statement (well under SQLite's 32,766 and Postgres's 65,535
/// parameters).
const ROWS_PER_STATEMENT: usize = 64;

/// Splits a batch into statements of 64, 32, 16, 8, 4, 2 and 1 rows. Each connection keeps its
/// prepared statements, and a wide one holds a sizeable compiled program, so a few fixed shapes
/// keep that memory small where one shape per batch size would fill the cache (it did: 80 MB).
fn statement_sizes(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let size = if n >= ROWS_PER_STATEMENT { ROWS_PER_STATEMENT } else { 1 << n.checked_ilog2()? };
        n -= size;
        Some(size)
    })
}

fn chunks(records: &[RequestRecord]) -> impl Iterator<Item = &[RequestRecord]> {
    let mut rest = records;
    statement_sizes(records.len()).map(move |size| {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        chunk
    })
}

/// Rows deleted (or stripped of bodies) per statement, so retention never holds a long lock.
const RETENTION_CHUNK: i64 = 5_000;

fn int(v: u64) -> Value {
    Value::Int(Some(i64::try_from(v).unwrap_or(i64::MAX)))
}

fn json<T: Serialize>(v: &T) -> Value {
    Value::Text(Some(serde_json::to_string(v).unwrap_or_default()))
}

/// The longest value kept in an indexed column (names, models, ids a client chose).
const MAX_SHORT: usize = 256;

/// Makes a client-chosen string storable: Postgres text cannot hold NUL, and an index entry must
/// stay well under a page, so one odd request can never make a batch unwritable.
fn clean(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].replace('\0', "")
}

fn values(r: &RequestRecord) -> Vec<Value> {
    let u = r.usage;
    let c = r.cost;
    let text = |v: &Option<String>| Value::Text(v.as_deref().map(|s| clean(s, MAX_SHORT)));
    let long = |v: &Option<String>| Value::Text(v.as_deref().map(|s| clean(s, usize::MAX)));
    vec![
        clean(&r.id, MAX_SHORT).into(),
        clean(&r.trace_id, MAX_SHORT).into(),
        clean(&r.span_id, MAX_SHORT).into(),
        text(&r.parent_span_id),
        i64::from(r.sampled).into(),
        r.received_at_us.into(),
        Value::Int(r.first_byte_us),
        Value::Int(r.first_token_us),
        r.duration_us.into(),
        Value::Int(r.upstream_us),
        Value::Int(r.overhead_us),
        text(&r.key),
        text(&r.team),
        text(&r.user),
        text(&r.session),
        json(&r.tags),
        json(&r.metadata),
        r.surface.as_str().into(),
        r.operation.as_str().into(),
        text(&r.requested_model),
        text(&r.provider),
        text(&r.upstream_model),
        text(&r.response_model),
        i64::from(r.stream).into(),
        i64::from(r.status).into(),
        text(&r.error_type),
        long(&r.error_message),
        json(&r.attempts),
        int(r.attempts.len() as u64),
        i64::from(r.fallback).into(),
        json(&r.finish_reasons),
        text(&r.cache_status),
        Value::Int(u.map(|u| i64::try_from(u.input_tokens).unwrap_or(i64::MAX))),
        Value::Int(u.map(|u| i64::try_from(u.output_tokens).unwrap_or(i64::MAX))),
        Value::Int(u.map(|u| i64::try_from(u.cache_read_tokens).unwrap_or(i64::MAX))),
        Value::Int(u.map(|u| i64::try_from(u.cache_write_tokens).unwrap_or(i64::MAX))),
        Value::Int(u.map(|u| i64::try_from(u.reasoning_tokens).unwrap_or(i64::MAX))),
        Value::Real(c.map(|c| c.input)),
        Value::Real(c.map(|c| c.output)),
        Value::Real(c.map(|c| c.cache_read)),
        Value::Real(c.map(|c| c.cache_write)),
        Value::Real(c.map(|c| c.total)),
        r.capture.as_str().into(),
        int(r.request_bytes),
        int(r.response_bytes),
        long(&r.request_body),
        long(&r.response_body),
    ]
}

fn decode_json<T: serde::de::DeserializeOwned + Default>(row: &impl Cells, col: &str) -> Result<T, sqlx::Error> {
    Ok(row.text(col)?.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default())
}

fn from_row(row: &impl Cells, bodies: bool) -> Result<RequestRecord, sqlx::Error> {
    let int = |c: &str| row.int(c);
    let uint = |c: &str| -> Result<u64, sqlx::Error> { Ok(row.int(c)?.unwrap_or(0).max(0) as u64) };
    let text = |c: &str| row.text(c);
    let usage = match int("input_tokens")? {
        None => None,
        Some(_) => Some(Usage {
            input_tokens: uint("input_tokens")?,
            output_tokens: uint("output_tokens")?,
            cache_read_tokens: uint("cache_read_tokens")?,
            cache_write_tokens: uint("cache_write_tokens")?,
            reasoning_tokens: uint("reasoning_tokens")?,
        }),
    };
    let cost = match row.real("cost_total")? {
        None => None,
        Some(total) => Some(Cost {
            input: row.real("cost_input")?.unwrap_or(0.0),
            output: row.real("cost_output")?.unwrap_or(0.0),
            cache_read: row.real("cost_cache_read")?.unwrap_or(0.0),
            cache_write: row.real("cost_cache_write")?.unwrap_or(0.0),
            total,
        }),
    };
    Ok(RequestRecord {
        id: text("id")?.unwrap_or_default(),
        trace_id: text("trace_id")?.unwrap_or_default(),
        span_id: text("span_id")?.unwrap_or_default(),
        parent_span_id: text("parent_span_id")?,
        sampled: int("sampled")? == Some(1),
        received_at_us: int("received_at")?.unwrap_or(0),
        first_byte_us: int("first_byte_us")?,
        first_token_us: int("first_token_us")?,
        duration_us: int("duration_us")?.unwrap_or(0),
        upstream_us: int("upstream_us")?,
        overhead_us: int("overhead_us")?,
        key: text("key_name")?,
        team: text("team")?,
        user: text("user_id")?,
        session: text("session_id")?,
        tags: decode_json(row, "tags")?,
        metadata: decode_json(row, "metadata")?,
        surface: text("surface")?.unwrap_or_default(),
        operation: text("operation")?.unwrap_or_default(),
        requested_model: text("requested_model")?,
        provider: text("provider")?,
        upstream_model: text("upstream_model")?,
        response_model: text("response_model")?,
        stream: int("stream")? == Some(1),
        status: u16::try_from(int("status")?.unwrap_or(0)).unwrap_or(0),
        error_type: text("error_type")?,
        error_message: text("error_message")?,
        attempts: decode_json(row, "attempts")?,
        fallback: int("fallback")? == Some(1),
        finish_reasons: decode_json(row, "finish_reasons")?,
        cache_status: text("cache_status")?,
        usage,
        cost,
        capture: text("capture")?.as_deref().and_then(CaptureMode::parse).unwrap_or_default(),
        request_bytes: uint("request_bytes")?,
        response_bytes: uint("response_bytes")?,
        request_body: if bodies { text("request_body")? } else { None },
        response_body: if bodies { text("response_body")? } else { None },
    })
}

/// Which statuses a query wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Exact(u16),
    /// `2xx`, `4xx`, `5xx`: the hundreds digit.
    Class(u16),
    /// Any status of 400 or more.
    Error,
}

impl StatusFilter {
    pub fn parse(s: &str) -> Option<StatusFilter> {
        let s = s.trim();
        if s == "error" {
            return Some(StatusFilter::Error);
        }
        if let Some(d) = s.strip_suffix("xx").and_then(|d| d.parse::<u16>().ok()).filter(|d| (1..=5).contains(d)) {
            return Some(StatusFilter::Class(d));
        }
        s.parse::<u16>().ok().filter(|c| (100..600).contains(c)).map(StatusFilter::Exact)
    }
}

/// The filters shared by `/admin/logs` and `/admin/usage`. Absent fields match everything.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Inclusive lower and exclusive upper bound on `received_at`, in µs since the epoch.
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    pub key: Option<String>,
    pub team: Option<String>,
    pub user: Option<String>,
    /// The requested model or the upstream model that answered.
    pub model: Option<String>,
    pub provider: Option<String>,
    pub status: Option<StatusFilter>,
    pub session: Option<String>,
    /// Records carrying every one of these tags.
    pub tags: Vec<String>,
    /// Records whose metadata has each of these name = value pairs.
    pub metadata: Vec<(String, String)>,
    /// Case-insensitive text in the captured request or response body.
    pub text: Option<String>,
    /// Where the previous page ended (`next_cursor`).
    pub cursor: Option<String>,
    pub limit: u32,
}

/// One page of records, newest first.
#[derive(Debug, Clone)]
pub struct LogPage {
    pub records: Vec<RequestRecord>,
    /// Pass back as `cursor` for the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

impl LogQuery {
    fn push_filters(&self, sql: &mut Sql) -> Result<(), StoreError> {
        let d = sql.dialect();
        if let Some(v) = self.from_us {
            sql.push(" AND received_at >= ").bind(v);
        }
        if let Some(v) = self.to_us {
            sql.push(" AND received_at < ").bind(v);
        }
        for (col, v) in [
            ("key_name", &self.key),
            ("team", &self.team),
            ("user_id", &self.user),
            ("provider", &self.provider),
            ("session_id", &self.session),
        ] {
            if let Some(v) = v {
                sql.push(" AND ").push(col).push(" = ").bind(v.as_str());
            }
        }
        if let Some(m) = &self.model {
            sql.push(" AND (requested_model = ")
                .bind(m.as_str())
                .push(" OR upstream_model = ")
                .bind(m.as_str())
                .push(")");
        }
        match self.status {
            Some(StatusFilter::Exact(c)) => drop(sql.push(" AND status = ").bind(i64::from(c))),
            Some(StatusFilter::Class(c)) => {
                let c = i64::from(c) * 100;
                sql.push(" AND status >= ").bind(c).push(" AND status < ").bind(c + 100);
            }
            Some(StatusFilter::Error) => drop(sql.push(" AND status >= 400")),
            None => {}
        }
        for tag in &self.tags {
            match d {
                Dialect::Sqlite => {
                    sql.push(" AND EXISTS (SELECT 1 FROM json_each(tags) WHERE value = ").bind(tag.as_str()).push(")")
                }
                Dialect::Postgres => {
                    sql.push(" AND tags::jsonb @> jsonb_build_array(CAST(").bind(tag.as_str()).push(" AS TEXT))")
                }
            };
        }
        for (name, value) in &self.metadata {
            match d {
                Dialect::Sqlite => {
                    // A JSON path quotes the name; names are header tokens, so they hold no quote.
                    if name.contains('"') {
                        return Err(StoreError::Invalid("metadata name", name.clone()));
                    }
                    sql.push(" AND json_extract(metadata, ")
                        .bind(format!("$.\"{name}\""))
                        .push(") = ")
                        .bind(value.as_str())
                }
                Dialect::Postgres => {
                    sql.push(" AND (metadata::jsonb ->> ").bind(name.as_str()).push(") = ").bind(value.as_str())
                }
            };
        }
        if let Some(t) = &self.text {
            let find = match d {
                Dialect::Sqlite => "instr",
                Dialect::Postgres => "strpos",
            };
            sql.push(&format!(" AND ({find}(lower(request_body), lower(")).bind(t.as_str());
            sql.push(&format!(")) > 0 OR {find}(lower(response_body), lower(")).bind(t.as_str()).push(")) > 0)");
        }
        Ok(())
    }
}

/// The cursor is the last record's `received_at` and id: ids break ties within a microsecond.
fn parse_cursor(c: &str) -> Result<(i64, String), StoreError> {
    let bad = || StoreError::Invalid("cursor", c.to_string());
    let (at, id) = c.split_once('_').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_string()))
}

/// The time bucket of a usage row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    pub fn parse(s: &str) -> Option<Bucket> {
        match s {
            "minute" => Some(Bucket::Minute),
            "hour" => Some(Bucket::Hour),
            "day" => Some(Bucket::Day),
            _ => None,
        }
    }

    fn micros(self) -> i64 {
        match self {
            Bucket::Minute => 60_000_000,
            Bucket::Hour => 3_600_000_000,
            Bucket::Day => 86_400_000_000,
        }
    }
}

/// The dimensions usage can be grouped by, with their columns.
const DIMENSIONS: &[(&str, &str)] = &[
    ("key", "key_name"),
    ("team", "team"),
    ("user", "user_id"),
    ("model", "requested_model"),
    ("upstream_model", "upstream_model"),
    ("provider", "provider"),
    ("session", "session_id"),
    ("operation", "operation"),
    ("surface", "surface"),
    ("status", "status"),
];

/// `/admin/usage`: the filters, an optional time bucket, and the dimensions to group by
/// (`key`, `team`, `user`, `model`, `upstream_model`, `provider`, `session`, `operation`,
/// `surface`, `status`, or `metadata.NAME`).
#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    pub filter: LogQuery,
    pub bucket: Option<Bucket>,
    pub group_by: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

/// One aggregated group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageRow {
    /// The bucket's start, RFC 3339, when bucketed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// The group's value for each requested dimension (`null` where the record had none).
    pub group: BTreeMap<String, Option<String>>,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_usd: f64,
    /// Milliseconds from arrival to the last byte.
    pub latency_ms: Percentiles,
    /// Milliseconds to the first token, over streamed requests that had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<Percentiles>,
}

#[derive(Default)]
struct Group {
    row: UsageRow,
    latencies: Vec<i64>,
    ttfts: Vec<i64>,
}

/// Nearest-rank percentiles of microsecond samples, in milliseconds.
fn percentiles(samples: &mut [i64]) -> Percentiles {
    samples.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1] as f64 / 1000.0
    };
    if samples.is_empty() {
        return Percentiles::default();
    }
    Percentiles { p50: at(0.50), p95: at(0.95), p99: at(0.99) }
}

struct Aggregator<'q> {
    q: &'q UsageQuery,
    groups: HashMap<(Option<i64>, Vec<Option<String>>), Group>,
}

impl Aggregator<'_> {
    fn add(&mut self, row: &impl Cells) -> Result<(), StoreError> {
        let received = row.int("received_at")?.unwrap_or(0);
        let bucket = self.q.bucket.map(|b| received.div_euclid(b.micros()) * b.micros());
        let mut metadata: Option<BTreeMap<String, String>> = None;
        let mut key = Vec::with_capacity(self.q.group_by.len());
        for dim in &self.q.group_by {
            let value = if let Some(name) = dim.strip_prefix("metadata.") {
                if metadata.is_none() {
                    metadata = Some(decode_json(row, "metadata")?);
                }
                metadata.as_ref().and_then(|m| m.get(name).cloned())
            } else if dim == "status" {
                row.int("status")?.map(|s| s.to_string())
            } else {
                let col = DIMENSIONS.iter().find(|(d, _)| d == dim).map(|(_, c)| *c).unwrap_or("id");
                row.text(col)?
            };
            key.push(value);
        }
        let g = self.groups.entry((bucket, key)).or_default();
        let u = |c: &str| -> Result<u64, StoreError> { Ok(row.int(c)?.unwrap_or(0).max(0) as u64) };
        let r = &mut g.row;
        r.requests += 1;
        if row.int("status")?.unwrap_or(0) >= 400 {
            r.errors += 1;
        }
        r.input_tokens += u("input_tokens")?;
        r.output_tokens += u("output_tokens")?;
        r.cache_read_tokens += u("cache_read_tokens")?;
        r.cache_write_tokens += u("cache_write_tokens")?;
        r.reasoning_tokens += u("reasoning_tokens")?;
        r.cost_usd += row.real("cost_total")?.unwrap_or(0.0);
        g.latencies.push(row.int("duration_us")?.unwrap_or(0));
        if let Some(t) = row.int("first_token_us")? {
            g.ttfts.push(t);
        }
        Ok(())
    }

    fn finish(self) -> Vec<UsageRow> {
        let mut rows: Vec<UsageRow> = self
            .groups
            .into_iter()
            .map(|((bucket, key), mut g)| {
                g.row.bucket = bucket.map(crate::time::format_us);
                g.row.group = self.q.group_by.iter().cloned().zip(key).collect();
                g.row.error_rate = g.row.errors as f64 / g.row.requests.max(1) as f64;
                g.row.latency_ms = percentiles(&mut g.latencies);
                g.row.ttft_ms = (!g.ttfts.is_empty()).then(|| percentiles(&mut g.ttfts));
                g.row
            })
            .collect();
        // Time order, then the biggest spenders first.
        rows.sort_by(|a, b| {
            a.bucket.cmp(&b.bucket).then(b.cost_usd.total_cmp(&a.cost_usd)).then(b.requests.cmp(&a.requests))
        });
        rows
    }
}

fn insert_statement(dialect: Dialect, rows: &[RequestRecord]) -> Sql {
    let mut sql = Sql::new(dialect, "INSERT INTO requests (");
    sql.push(&COLUMNS.join(", ")).push(") VALUES ");
    for (i, r) in rows.iter().enumerate() {
        sql.push(if i == 0 { "(" } else { ", (" });
        for (j, v) in values(r).into_iter().enumerate() {
            if j > 0 {
                sql.push(", ");
            }
            sql.bind(v);
        }
        sql.push(")");
    }
    sql.push(" ON CONFLICT (id) DO NOTHING");
    sql
}

impl Store {
    /// Writes records in one transaction. Writing a record whose id is already stored does
    /// nothing, so a batch retried after an unclear failure is never counted twice.
    ///
    /// Rows go many to a statement: each statement is a round trip (to SQLite's worker thread, or
    /// over the network to Postgres), and those dominate the cost.
    pub async fn insert_records(&self, records: &[RequestRecord]) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(p) => {
                let mut tx = p.begin().await?;
                for chunk in chunks(records) {
                    insert_statement(self.dialect(), chunk).sqlite().execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Store::Postgres(p) => {
                let mut tx = p.begin().await?;
                for chunk in chunks(records) {
                    insert_statement(self.dialect(), chunk).postgres().execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// One record, bodies included.
    pub async fn get_record(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        let mut sql = Sql::new(self.dialect(), "SELECT * FROM requests WHERE id = ");
        sql.bind(id);
        Ok(match self {
            Store::Sqlite(p) => sql.sqlite().fetch_optional(p).await?.map(|r| from_row(&r, true)).transpose()?,
            Store::Postgres(p) => sql.postgres().fetch_optional(p).await?.map(|r| from_row(&r, true)).transpose()?,
        })
    }

    /// A page of records matching the query, newest first, without bodies.
    pub async fn query_records(&self, q: &LogQuery) -> Result<LogPage, StoreError> {
        let limit = q.limit.clamp(1, 1000);
        let columns: Vec<&str> = COLUMNS.iter().copied().filter(|c| !c.ends_with("_body")).collect();
        let mut sql = Sql::new(self.dialect(), &format!("SELECT {} FROM requests WHERE 1 = 1", columns.join(", ")));
        q.push_filters(&mut sql)?;
        if let Some(c) = &q.cursor {
            let (at, id) = parse_cursor(c)?;
            sql.push(" AND (received_at < ").bind(at).push(" OR (received_at = ").bind(at);
            sql.push(" AND id < ").bind(id).push("))");
        }
        sql.push(" ORDER BY received_at DESC, id DESC LIMIT ").bind(i64::from(limit) + 1);
        let mut records = match self {
            Store::Sqlite(p) => {
                sql.sqlite().fetch_all(p).await?.iter().map(|r| from_row(r, false)).collect::<Result<Vec<_>, _>>()?
            }
            Store::Postgres(p) => {
                sql.postgres().fetch_all(p).await?.iter().map(|r| from_row(r, false)).collect::<Result<Vec<_>, _>>()?
            }
        };
        let next_cursor = if records.len() > limit as usize {
            records.truncate(limit as usize);
            records.last().map(|r| format!("{}_{}", r.received_at_us, r.id))
        } else {
            None
        };
        Ok(LogPage { records, next_cursor })
    }

    /// Aggregates the matching records. Rows stream through, so memory grows with the number of
    /// groups and the latency samples, not with the rows' width.
    pub async fn usage(&self, q: &UsageQuery) -> Result<Vec<UsageRow>, StoreError> {
        for dim in &q.group_by {
            let known = DIMENSIONS.iter().any(|(d, _)| d == dim)
                || dim.strip_prefix("metadata.").is_some_and(|n| !n.is_empty());
            if !known {
                return Err(StoreError::Invalid("group_by dimension", dim.clone()));
            }
        }
        let mut sql = Sql::new(
            self.dialect(),
            "SELECT received_at, key_name, team, user_id, requested_model, upstream_model, provider, session_id, \
             operation, surface, status, metadata, duration_us, first_token_us, input_tokens, output_tokens, \
             cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_total FROM requests WHERE 1 = 1",
        );
        q.filter.push_filters(&mut sql)?;
        let mut agg = Aggregator { q, groups: HashMap::new() };
        match self {
            Store::Sqlite(p) => {
                let query = sql.sqlite();
                let mut rows = query.fetch(p);
                while let Some(row) = rows.try_next().await? {
                    agg.add(&row)?;
                }
            }
            Store::Postgres(p) => {
                let query = sql.postgres();
                let mut rows = query.fetch(p);
                while let Some(row) = rows.try_next().await? {
                    agg.add(&row)?;
                }
            }
        }
        Ok(agg.finish())
    }

    /// Deletes records received before `cutoff_us`, a chunk at a time. Returns how many.
    pub async fn delete_before(&self, cutoff_us: i64) -> Result<u64, StoreError> {
        let mut sql =
            Sql::new(self.dialect(), "DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE received_at < ");
        sql.bind(cutoff_us).push(" LIMIT ").bind(RETENTION_CHUNK).push(")");
        self.in_chunks(&sql).await
    }

    /// Drops the bodies of records received before `cutoff_us`, keeping the rest of the record.
    pub async fn strip_bodies_before(&self, cutoff_us: i64) -> Result<u64, StoreError> {
        let mut sql = Sql::new(
            self.dialect(),
            "UPDATE requests SET request_body = NULL, response_body = NULL WHERE id IN (SELECT id FROM requests \
             WHERE received_at < ",
        );
        sql.bind(cutoff_us);
        sql.push(" AND (request_body IS NOT NULL OR response_body IS NOT NULL) LIMIT ").bind(RETENTION_CHUNK).push(")");
        self.in_chunks(&sql).await
    }

    async fn in_chunks(&self, sql: &Sql) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = match self {
                Store::Sqlite(p) => sql.sqlite().execute(p).await?.rows_affected(),
                Store::Postgres(p) => sql.postgres().execute(p).await?.rows_affected(),
            };
            total += n;
            if n < RETENTION_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    /// Spend in the log by one key, team or user (`owner`: `key`, `team` or `user`) received in
    /// `[from_us, until_us)`, summed per step of `step_us` and returned as (step start, dollars).
    /// Budgets load what was spent before an instance started from here.
    pub async fn spend_steps(
        &self,
        owner: &str,
        name: &str,
        from_us: i64,
        until_us: i64,
        step_us: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        let column = match owner {
            "key" => "key_name",
            "team" => "team",
            "user" => "user_id",
            other => return Err(StoreError::Invalid("budget owner", other.to_string())),
        };
        let mut sql = Sql::new(self.dialect(), "SELECT (received_at - ");
        sql.bind(from_us).push(") / ").bind(step_us.max(1));
        sql.push(&format!(" AS step, SUM(cost_total) AS usd FROM requests WHERE {column} = ")).bind(name.to_string());
        sql.push(" AND received_at >= ").bind(from_us).push(" AND received_at < ").bind(until_us);
        sql.push(" AND cost_total IS NOT NULL GROUP BY step");
        let read = |step: Option<i64>, usd: Option<f64>| {
            (from_us.saturating_add(step.unwrap_or(0).saturating_mul(step_us.max(1))), usd.unwrap_or(0.0))
        };
        let rows = match self {
            Store::Sqlite(p) => sql
                .sqlite()
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| Ok(read(r.int("step")?, r.real("usd")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?,
            Store::Postgres(p) => sql
                .postgres()
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| Ok(read(r.int("step")?, r.real("usd")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?,
        };
        Ok(rows)
    }

    /// How many records are stored.
    pub async fn count_records(&self) -> Result<u64, StoreError> {
        let sql = Sql::new(self.dialect(), "SELECT COUNT(*) AS n FROM requests");
        let n = match self {
            Store::Sqlite(p) => sql.sqlite().fetch_one(p).await?.int("n")?,
            Store::Postgres(p) => sql.postgres().fetch_one(p).await?.int("n")?,
        };
        Ok(n.unwrap_or(0).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_has_a_value() {
        assert_eq!(values(&RequestRecord::default()).len(), COLUMNS.len());
    }

    #[test]
    fn batches_split_into_a_few_statement_shapes() {
        assert_eq!(statement_sizes(0).collect::<Vec<_>>(), Vec::<usize>::new());
        assert_eq!(statement_sizes(1).collect::<Vec<_>>(), [1]);
        assert_eq!(statement_sizes(150).collect::<Vec<_>>(), [64, 64, 16, 4, 2]);
        let rows: Vec<_> = (0..1000).map(|i| RequestRecord { id: i.to_string(), ..Default::default() }).collect();
        let rejoined: Vec<_> = chunks(&rows).flatten().cloned().collect();
        assert_eq!(rejoined, rows);
    }

    #[test]
    fn client_strings_are_made_storable() {
        assert_eq!(clean("a\0b", 10), "ab");
        assert_eq!(clean("ééé", 3), "é", "cut at a character boundary");
        let long = "m".repeat(10_000);
        let r = RequestRecord { requested_model: Some(long.clone()), request_body: Some(long), ..Default::default() };
        let v = values(&r);
        let at = |c: &str| COLUMNS.iter().position(|x| *x == c).map(|i| v[i].clone());
        assert_eq!(at("requested_model"), Some(Value::Text(Some("m".repeat(MAX_SHORT)))));
        assert_eq!(
            at("request_body"),
            Some(Value::Text(Some("m".repeat(10_000)))),
            "bodies are cut upstream, not here"
        );
    }

    #[test]
    fn status_filters_parse() {
        assert_eq!(StatusFilter::parse("429"), Some(StatusFilter::Exact(429)));
        assert_eq!(StatusFilter::parse("5xx"), Some(StatusFilter::Class(5)));
        assert_eq!(StatusFilter::parse("error"), Some(StatusFilter::Error));
        assert_eq!(StatusFilter::parse("9xx"), None);
        assert_eq!(StatusFilter::parse("abc"), None);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut s: Vec<i64> = (1..=100).map(|i| i * 1000).collect();
        let p = percentiles(&mut s);
        assert_eq!((p.p50, p.p95, p.p99), (50.0, 95.0, 99.0));
        assert_eq!(percentiles(&mut [7000]).p99, 7.0);
    }
}
