//! The client-facing endpoints, one module per protocol, and what they share.

pub mod admin;
pub mod anthropic;
pub mod keys;
pub mod logs;
mod meta;
pub mod metrics;
mod observe;
pub mod openai;
pub mod ops;
pub mod spend;
pub mod teams;
pub mod users;

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use switchyard_router::Execution;
use switchyard_types::{ErrorKind, GatewayError};

/// Who is calling: the presented key, looked up among the config's keys and then the store's.
pub fn authenticate(
    state: &crate::AppState,
    rt: &crate::Runtime,
    headers: &HeaderMap,
) -> Result<switchyard_policy::Principal, GatewayError> {
    let store_keys = state.store_keys.load();
    switchyard_policy::authenticate(&[&rt.keys, &store_keys], presented_key(headers), switchyard_store::time::now_us())
}

/// The credential a client presents: `Authorization: Bearer KEY` or `x-api-key: KEY`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if let Some(key) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")) {
            return Some(key.trim());
        }
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Reads a request body, bounded in size and in time so a slow or huge upload cannot tie up the
/// gateway.
pub async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, GatewayError> {
    let too_large = || {
        GatewayError::new(ErrorKind::PayloadTooLarge, format!("The request body exceeds the limit of {limit} bytes."))
            .with_code("request_too_large")
    };
    let declared = headers.get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let read = async {
        let mut stream = body.into_data_stream();
        let mut buf = BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| GatewayError::invalid(format!("could not read the request body: {e}")))?;
            if buf.len() + chunk.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| {
        let mut e = GatewayError::new(ErrorKind::Timeout, "The request body was not received in time.")
            .with_code("client_timeout");
        e.status = Some(408);
        e
    })?
}

/// The routing headers: who answered and after how many attempts sent to providers.
pub fn routing_headers<T>(exec: &Execution<T>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some((_, target)) = &exec.answered {
        if let Ok(v) = HeaderValue::from_str(&target.provider.name) {
            headers.insert("x-switchyard-provider", v);
        }
        if let Ok(v) = HeaderValue::from_str(&target.model) {
            headers.insert("x-switchyard-model", v);
        }
    }
    headers.insert("x-switchyard-attempts", HeaderValue::from(exec.sent()));
    headers
}
