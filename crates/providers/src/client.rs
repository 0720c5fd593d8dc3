//! The one pooled HTTP client every upstream call goes through.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use switchyard_types::{ErrorKind, GatewayError};
use tokio::time::Instant;

/// The time limits of one upstream attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// From sending the request to the first token (for a stream: the first content event; for a
    /// whole answer: the response headers). A provider that has not begun to answer by then fails
    /// this attempt while nothing has reached the client, so the next target can take over.
    pub first_token: Duration,
    /// The longest silence between two chunks of a stream. LLM streams tick every few tens of
    /// milliseconds; a long silence is a stuck upstream, not a slow model.
    pub stall: Duration,
    /// The whole attempt, body included.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            first_token: Duration::from_secs(60),
            stall: Duration::from_secs(60),
            total: Duration::from_secs(600),
        }
    }
}

/// The most bytes of a non-streamed upstream body the gateway will hold. Real answers are far
/// smaller (base64 embeddings of large batches are the biggest); past this the upstream is broken.
const MAX_UPSTREAM_BODY: usize = 256 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct UpstreamClient {
    http: reqwest::Client,
}

impl UpstreamClient {
    /// `connect_timeout` bounds the TCP and TLS handshake: an address that does not answer fails
    /// fast so the next target can be tried.
    pub fn new(connect_timeout: Duration) -> Result<UpstreamClient, GatewayError> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            // Idle connections are kept for reuse but not forever: providers' load balancers drop
            // idle connections after about a minute, and a reused dead socket costs an attempt.
            .pool_idle_timeout(Duration::from_secs(50))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            // HTTP/1.1 only: over HTTP/2, hyper multiplexes every request to a host on one
            // connection, and providers cap concurrent streams per connection at about 100, so
            // request 101 would wait (tensorzero#3450). An HTTP/1.1 pool opens a connection per
            // request in flight instead, which is what a gateway under load needs.
            .http1_only()
            // Upstream redirects are never followed: a POST with a credential must not wander.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("cannot build the HTTP client: {e}")))?;
        Ok(UpstreamClient { http })
    }

    /// The underlying client, for requests that are not provider calls (health probes).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn post(&self, url: &str) -> reqwest::RequestBuilder {
        self.http.post(url)
    }

    /// Sends a request and waits for the response headers, within `first_token`.
    pub async fn send(
        &self,
        provider: &str,
        req: reqwest::RequestBuilder,
        timeouts: &Timeouts,
    ) -> Result<reqwest::Response, GatewayError> {
        let wait = timeouts.first_token.min(timeouts.total);
        match tokio::time::timeout(wait, req.send()).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(transport_error(provider, &e)),
            Err(_) => Err(GatewayError::new(
                ErrorKind::Timeout,
                format!("provider '{provider}' sent no response within {} ms", wait.as_millis()),
            )
            .with_code("first_token_timeout")),
        }
    }
}

/// Reads a whole body, bounded in size and by the attempt's deadline.
pub(crate) async fn read_body(
    provider: &str,
    resp: reqwest::Response,
    deadline: Instant,
) -> Result<Bytes, GatewayError> {
    let mut stream = resp.bytes_stream();
    let mut buf = BytesMut::new();
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next()).await.map_err(|_| {
            GatewayError::new(ErrorKind::Timeout, format!("provider '{provider}' did not finish its answer in time"))
                .with_code("total_timeout")
        })?;
        match next {
            None => return Ok(buf.freeze()),
            Some(Ok(chunk)) => {
                if buf.len() + chunk.len() > MAX_UPSTREAM_BODY {
                    return Err(GatewayError::upstream(502, format!("provider '{provider}' sent an oversized body")));
                }
                buf.extend_from_slice(&chunk);
            }
            Some(Err(e)) => return Err(transport_error(provider, &e)),
        }
    }
}

/// Describes a transport failure without the URL (which may carry a credential for some kinds).
pub(crate) fn transport_error(provider: &str, e: &reqwest::Error) -> GatewayError {
    if e.is_timeout() {
        return GatewayError::new(ErrorKind::Timeout, format!("provider '{provider}' timed out"));
    }
    let what = if e.is_connect() {
        "could not be reached"
    } else if e.is_body() || e.is_decode() {
        "broke off its answer"
    } else {
        "failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    let mut err = GatewayError::new(
        ErrorKind::Unavailable,
        if detail.is_empty() {
            format!("provider '{provider}' {what}")
        } else {
            format!("provider '{provider}' {what}: {detail}")
        },
    );
    err.status = Some(502);
    err.code = Some(if e.is_connect() { "upstream_connect_error" } else { "upstream_transport_error" }.into());
    err
}

/// The longest `retry-after` believed: a provider asking for more is treated as asking for an
/// hour (and a broken header cannot overflow a clock).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Parses a `retry-after` header in seconds (the form providers use).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs = v.trim().parse::<f64>().ok().filter(|s| *s >= 0.0)?;
    Duration::try_from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_parsed_and_clamped() {
        let parse = |v: &str| {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(
                reqwest::header::RETRY_AFTER,
                reqwest::header::HeaderValue::from_str(v).unwrap_or_else(|e| panic!("{e}")),
            );
            retry_after(&h)
        };
        assert_eq!(parse("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse("1e20"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse("10000000000000000000"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse("-1"), None);
        assert_eq!(parse("NaN"), None);
        assert_eq!(parse("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
