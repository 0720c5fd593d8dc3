//! The admin API's request log: `GET /admin/logs` (filtered, newest first, a page at a time),
//! `GET /admin/logs/{id}` (one whole record) and `GET /admin/usage` (aggregates).

use std::future::Future;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchyard_store::{Bucket, LogQuery, StatusFilter, Store, StoreError, UsageQuery, time};
use switchyard_types::{ErrorKind, GatewayError, RequestRecord};

use super::admin::{Access, admin};
use crate::AppState;
use crate::error::SurfaceError;

const DEFAULT_PAGE: u32 = 50;

/// The longest a log query may take before the API answers 503.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

async fn bounded<T>(query: impl Future<Output = Result<T, StoreError>>) -> Result<T, GatewayError> {
    tokio::time::timeout(QUERY_TIMEOUT, query)
        .await
        .unwrap_or(Err(StoreError::Timeout(QUERY_TIMEOUT)))
        .map_err(store_error)
}
const DAY_US: i64 = 86_400_000_000;

type Params = Query<Vec<(String, String)>>;

fn store(state: &AppState, headers: &HeaderMap) -> Result<Store, GatewayError> {
    admin(state, headers, Access::Read)?;
    state.store.clone().ok_or_else(|| {
        GatewayError::new(ErrorKind::NotFound, "The request log is off: set `storage:` in the config to keep one.")
            .with_code("request_log_disabled")
    })
}

fn store_error(e: StoreError) -> GatewayError {
    match e {
        StoreError::Invalid(what, value) => {
            GatewayError::invalid(format!("Invalid {what}: '{value}'.")).with_code("invalid_query")
        }
        other => GatewayError::new(ErrorKind::Unavailable, format!("The request log cannot be read now: {other}"))
            .with_code("store_unavailable"),
    }
}

fn bad(param: &str, message: String) -> GatewayError {
    GatewayError::invalid(message).with_param(param).with_code("invalid_query")
}

/// The filters both endpoints share, from the query string. `tag` may repeat; metadata is
/// `metadata.NAME=VALUE`. Unknown parameters are errors, so a typo cannot widen a query.
fn log_query(params: &[(String, String)], extra: &[&str]) -> Result<LogQuery, GatewayError> {
    let mut q = LogQuery { limit: DEFAULT_PAGE, ..LogQuery::default() };
    for (name, value) in params {
        let text = || Some(value.clone()).filter(|v| !v.is_empty());
        match name.as_str() {
            "from" | "to" => {
                let at = time::parse_us(value)
                    .ok_or_else(|| bad(name, format!("'{name}' must be an RFC 3339 time or Unix seconds.")))?;
                if name == "from" { q.from_us = Some(at) } else { q.to_us = Some(at) }
            }
            "key" => q.key = text(),
            "team" => q.team = text(),
            "user" => q.user = text(),
            "model" => q.model = text(),
            "provider" => q.provider = text(),
            "session" => q.session = text(),
            "tag" => q.tags.push(value.clone()),
            "q" => q.text = text(),
            "cursor" => q.cursor = text(),
            "status" => {
                q.status =
                    Some(StatusFilter::parse(value).ok_or_else(|| {
                        bad("status", "'status' must be a code (429), a class (5xx) or 'error'.".into())
                    })?)
            }
            "limit" => {
                q.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| bad("limit", "'limit' must be between 1 and 1000.".into()))?
            }
            other => match other.strip_prefix("metadata.") {
                Some(key) if is_metadata_name(key) => q.metadata.push((key.to_ascii_lowercase(), value.clone())),
                _ if extra.contains(&other) => {}
                _ => return Err(bad(other, format!("Unknown query parameter '{other}'."))),
            },
        }
    }
    Ok(q)
}

/// Metadata names come from header names (`x-switchyard-metadata-NAME`), so only those
/// characters can match; anything else is a mistake worth a 400.
fn is_metadata_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A record as the API shows it: the stored fields plus readable times.
fn record_json(r: &RequestRecord) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        let ms = |us: Option<i64>| us.map(|us| us as f64 / 1000.0);
        o.insert("received_at".into(), time::format_us(r.received_at_us).into());
        o.insert("ended_at".into(), time::format_us(r.ended_at_us()).into());
        o.insert("duration_ms".into(), json!(ms(Some(r.duration_us))));
        o.insert("ttft_ms".into(), json!(ms(r.first_token_us)));
        o.insert("upstream_ms".into(), json!(ms(r.upstream_us)));
        o.insert("overhead_ms".into(), json!(ms(r.overhead_us)));
    }
    v
}

fn respond(result: Result<Value, GatewayError>) -> Response {
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => SurfaceError::openai(e).into_response(),
    }
}

/// `GET /admin/logs`: `{"data": [record…], "next_cursor": …}`, newest first, bodies left out.
pub async fn list(State(state): State<AppState>, headers: HeaderMap, Query(params): Params) -> Response {
    respond(
        async {
            let store = store(&state, &headers)?;
            let q = log_query(&params, &[])?;
            let page = bounded(store.query_records(&q)).await?;
            let data: Vec<Value> = page.records.iter().map(record_json).collect();
            Ok(json!({ "data": data, "next_cursor": page.next_cursor }))
        }
        .await,
    )
}

/// `GET /admin/logs/{id}`: the whole record, bodies included. Records are written a few
/// milliseconds after the answer ends.
pub async fn one(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    respond(
        async {
            let store = store(&state, &headers)?;
            match bounded(store.get_record(&id)).await? {
                Some(r) => Ok(record_json(&r)),
                None => Err(GatewayError::new(ErrorKind::NotFound, format!("No request record has the id '{id}'."))
                    .with_code("record_not_found")),
            }
        }
        .await,
    )
}

/// `GET /admin/usage`: aggregates by `bucket` (minute, hour, day) and `group_by` (a comma list
/// of dimensions), over the last day unless `from` says otherwise.
pub async fn usage(State(state): State<AppState>, headers: HeaderMap, Query(params): Params) -> Response {
    respond(
        async {
            let store = store(&state, &headers)?;
            let mut q = UsageQuery { filter: log_query(&params, &["bucket", "group_by"])?, ..UsageQuery::default() };
            for (name, value) in &params {
                match name.as_str() {
                    "bucket" => {
                        q.bucket = Some(
                            Bucket::parse(value)
                                .ok_or_else(|| bad("bucket", "'bucket' must be minute, hour or day.".into()))?,
                        )
                    }
                    "group_by" => {
                        q.group_by.extend(value.split(',').map(|d| d.trim().to_string()).filter(|d| !d.is_empty()))
                    }
                    _ => {}
                }
            }
            if q.filter.from_us.is_none() {
                q.filter.from_us = Some(time::now_us() - DAY_US);
            }
            let rows = bounded(store.usage(&q)).await?;
            Ok(json!({ "data": rows }))
        }
        .await,
    )
}
