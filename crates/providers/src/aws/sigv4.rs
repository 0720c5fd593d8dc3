//! AWS Signature Version 4 request signing (header form, `AWS4-HMAC-SHA256`), as Bedrock runtime
//! takes it: service `bedrock`, host `bedrock-runtime.{region}.amazonaws.com`.
//!
//! The steps, each a function below:
//! 1. the canonical request: method, canonical URI, canonical query, canonical headers, the
//!    signed header names, and the hex SHA-256 of the body;
//! 2. the string to sign: algorithm, timestamp, credential scope, hex SHA-256 of step 1;
//! 3. the signing key: an HMAC chain over date, region, service and `aws4_request`, keyed by
//!    `"AWS4" + secret`;
//! 4. the signature: hex HMAC of step 2 under step 3's key, sent in `authorization`.
//!
//! The canonical URI is where hand-written signers usually go wrong. For every service but S3
//! the path is URI-encoded *again* on top of the encoding it already has on the wire, segment by
//! segment. A Bedrock model id such as `anthropic.claude-3-haiku-20240307-v1:0` is sent as
//! `…-v1%3A0` (see [`encode_path_segment`]) and signed as `…-v1%253A0`. Signing the wire path
//! as-is gets a 403 for every model id with a `:` in it, which is nearly all of them. The path is
//! also normalised first (empty, `.` and `..` segments removed), as AWS does for non-S3 services.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use http::{HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The signing name of Bedrock runtime (its host says `bedrock-runtime`, its scope says this).
pub const BEDROCK_SERVICE: &str = "bedrock";

const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";

/// Headers the signer writes itself. Passing one in would sign it twice (AWS then sees one header
/// and a signature over two) or sign a value other than the one sent.
const RESERVED_HEADERS: [&str; 5] = ["authorization", "host", X_AMZ_DATE, X_AMZ_SECURITY_TOKEN, X_AMZ_CONTENT_SHA256];

/// An access key, its secret, and the session token temporary credentials come with.
///
/// The secret and the token are never printed: `Debug` redacts them and no error carries them.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl Credentials {
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: session_token.filter(|t| !t.trim().is_empty()),
        }
    }

    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, when set, `AWS_SESSION_TOKEN`. An empty
    /// variable counts as unset. `env` is `|k| std::env::var(k).ok()` outside tests.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, CredentialsError> {
        let access_key_id =
            non_empty(env, "AWS_ACCESS_KEY_ID").ok_or(CredentialsError::Missing("AWS_ACCESS_KEY_ID"))?;
        let secret =
            non_empty(env, "AWS_SECRET_ACCESS_KEY").ok_or(CredentialsError::Missing("AWS_SECRET_ACCESS_KEY"))?;
        Ok(Credentials::new(access_key_id, secret, non_empty(env, "AWS_SESSION_TOKEN")))
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub fn has_session_token(&self) -> bool {
        self.session_token.is_some()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The region from `AWS_REGION`, else `AWS_DEFAULT_REGION` (the SDKs' order).
pub fn region_from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    non_empty(env, "AWS_REGION").or_else(|| non_empty(env, "AWS_DEFAULT_REGION"))
}

fn non_empty(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.trim().is_empty())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("{0} is not set")]
    Missing(&'static str),
}

/// Why a request could not be signed. Names what is wrong, never a header value or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("cannot sign the URL: {0}")]
    InvalidUrl(&'static str),
    #[error("{0:?} is not a valid HTTP method")]
    InvalidMethod(String),
    #[error("header {0:?} is written by the signer and cannot be passed in")]
    ReservedHeader(String),
    #[error("{0:?} is not a valid header name")]
    InvalidHeaderName(String),
    #[error("header {0:?} has a value that cannot be sent (control characters)")]
    InvalidHeaderValue(String),
    #[error("invalid signing scope: {0}")]
    InvalidScope(&'static str),
    #[error("the signing time is outside 1970..=9999")]
    InvalidTime,
}

/// What gets signed.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The URL exactly as it will be sent, its path already percent-encoded for the wire (build
    /// model-id segments with [`encode_path_segment`]). The `host` signed is this URL's host,
    /// with the port only when it is not the scheme's default, which is what HTTP clients send.
    pub url: &'a str,
    /// Further headers to sign (`content-type`, `accept`…), sent by the caller exactly as given.
    /// `host`, `x-amz-*` and `authorization` are the signer's and are refused here.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Who signs, for what, and when.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    pub credentials: &'a Credentials,
    pub region: &'a str,
    /// `bedrock` ([`BEDROCK_SERVICE`]) for Bedrock runtime.
    pub service: &'a str,
    /// Passed in rather than read, so tests are exact; AWS refuses a clock more than 5 min off.
    pub time: SystemTime,
    /// Also send (and sign) `x-amz-content-sha256`. Bedrock does not need it; S3 does.
    pub content_sha256_header: bool,
}

/// The result: headers to add to the request as it is sent.
pub struct Signed {
    /// `authorization`, `x-amz-date`, then `x-amz-security-token` and `x-amz-content-sha256`
    /// when they apply. The authorization and the token are marked sensitive, so `http`'s
    /// `Debug` does not print them.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Safe to log when a signature is refused: it holds the hash of the canonical request, not
    /// the request (whose headers include the session token).
    pub string_to_sign: String,
    pub signature: String,
}

impl fmt::Debug for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed").field("headers", &self.headers).field("string_to_sign", &self.string_to_sign).finish()
    }
}

/// Signs `request`: see the module comment for the steps.
pub fn sign(request: &Request<'_>, params: &Params<'_>) -> Result<Signed, SignError> {
    check_scope(params)?;
    let time = AmzTime::new(params.time)?;
    let canonical = canonical_request(request, params, &time)?;
    let scope = format!("{}/{}/{}/aws4_request", time.date(), params.region, params.service);
    let string_to_sign = format!("{ALGORITHM}\n{}\n{scope}\n{}", time.stamp, hex_sha256(canonical.text.as_bytes()));
    let key = signing_key(&params.credentials.secret_access_key, time.date(), params.region, params.service);
    let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
        params.credentials.access_key_id, canonical.signed_headers
    );

    let mut headers = vec![
        (http::header::AUTHORIZATION, sensitive_value("authorization", &authorization)?),
        (HeaderName::from_static(X_AMZ_DATE), header_value(X_AMZ_DATE, &time.stamp)?),
    ];
    if let Some(token) = &params.credentials.session_token {
        headers.push((HeaderName::from_static(X_AMZ_SECURITY_TOKEN), sensitive_value(X_AMZ_SECURITY_TOKEN, token)?));
    }
    if params.content_sha256_header {
        headers.push((
            HeaderName::from_static(X_AMZ_CONTENT_SHA256),
            header_value(X_AMZ_CONTENT_SHA256, &canonical.payload_hash)?,
        ));
    }
    Ok(Signed { headers, string_to_sign, signature })
}

/// Encodes one raw path segment for the wire: everything but RFC 3986's unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) as `%XX`, so `:` becomes `%3A` and `/` inside an ARN `%2F`.
pub fn encode_path_segment(raw: &str) -> String {
    uri_encode(raw.as_bytes())
}

fn check_scope(params: &Params<'_>) -> Result<(), SignError> {
    // Each of these lands between '/' in the credential scope; a '/' or a space would shift it.
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b',');
    if !plain(params.region) {
        return Err(SignError::InvalidScope("region"));
    }
    if !plain(params.service) {
        return Err(SignError::InvalidScope("service"));
    }
    if !plain(&params.credentials.access_key_id) {
        return Err(SignError::InvalidScope("access key id"));
    }
    Ok(())
}

/// The canonical request and the pieces of it the signature needs again.
struct Canonical {
    text: String,
    signed_headers: String,
    payload_hash: String,
}

fn canonical_request(request: &Request<'_>, params: &Params<'_>, time: &AmzTime) -> Result<Canonical, SignError> {
    if request.method.is_empty() || !request.method.bytes().all(is_tchar) {
        return Err(SignError::InvalidMethod(request.method.to_string()));
    }
    let url = Url::parse(request.url)?;
    let payload_hash = hex_sha256(request.body);

    let mut headers: Vec<(String, String)> = Vec::with_capacity(request.headers.len() + 4);
    for (name, value) in request.headers {
        let lower = name.to_ascii_lowercase();
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(SignError::InvalidHeaderName(name.to_string()));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(SignError::ReservedHeader(lower));
        }
        headers.push((lower, canonical_header_value(name, value)?));
    }
    headers.push(("host".to_string(), url.host.clone()));
    headers.push((X_AMZ_DATE.to_string(), time.stamp.clone()));
    if let Some(token) = &params.credentials.session_token {
        headers.push((X_AMZ_SECURITY_TOKEN.to_string(), canonical_header_value(X_AMZ_SECURITY_TOKEN, token)?));
    }
    if params.content_sha256_header {
        headers.push((X_AMZ_CONTENT_SHA256.to_string(), payload_hash.clone()));
    }
    // Stable, so a repeated header keeps its values in the order given.
    headers.sort_by(|a, b| a.0.cmp(&b.0));

    let mut canonical_headers = String::new();
    let mut names: Vec<&str> = Vec::new();
    for (name, value) in &headers {
        if names.last() == Some(&name.as_str()) {
            // A repeated header is one line, its values comma-joined.
            canonical_headers.pop();
            canonical_headers.push(',');
        } else {
            names.push(name);
            canonical_headers.push_str(name);
            canonical_headers.push(':');
        }
        canonical_headers.push_str(value);
        canonical_headers.push('\n');
    }
    let signed_headers = names.join(";");
    let text = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        request.method,
        canonical_uri(url.path),
        canonical_query(url.query),
    );
    Ok(Canonical { text, signed_headers, payload_hash })
}

/// The parts of an absolute URL that signing reads.
struct Url<'a> {
    /// Lowercased, the default port dropped: the `Host` header an HTTP client sends.
    host: String,
    path: &'a str,
    query: &'a str,
}

impl<'a> Url<'a> {
    fn parse(url: &'a str) -> Result<Self, SignError> {
        let (scheme, rest) = url.split_once("://").ok_or(SignError::InvalidUrl("not an absolute URL"))?;
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "https" => ":443",
            "http" => ":80",
            _ => return Err(SignError::InvalidUrl("the scheme is not http or https")),
        };
        // The fragment never leaves the client.
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (authority, path_and_query) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        if authority.contains('@') {
            return Err(SignError::InvalidUrl("user info in the URL"));
        }
        if !authority.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SignError::InvalidUrl("the host has spaces or control characters"));
        }
        let mut host = authority.to_ascii_lowercase();
        if host.ends_with(default_port) {
            host.truncate(host.len() - default_port.len());
        }
        if host.is_empty() || host.starts_with(':') {
            return Err(SignError::InvalidUrl("no host"));
        }
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        Ok(Url { host, path, query })
    }
}

/// The wire path normalised (empty, `.` and `..` segments dropped, as AWS does for every service
/// but S3) and each segment URI-encoded once more.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut uri = String::with_capacity(path.len() + 8);
    for segment in &segments {
        uri.push('/');
        uri.push_str(&uri_encode(segment.as_bytes()));
    }
    if segments.is_empty() || path.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Parameters decoded, re-encoded the one canonical way, and sorted by name then value. `+` is
/// taken literally (SigV4 has no form-encoding), so a space must be sent as `%20`.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&percent_decode(name)), uri_encode(&percent_decode(value)))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("&")
}

/// Trimmed, with runs of spaces collapsed to one. A value with a line break or another control
/// character is refused: it cannot be sent as one header and would forge canonical lines.
fn canonical_header_value(name: &str, value: &str) -> Result<String, SignError> {
    if value.bytes().any(|b| (b.is_ascii_control() && b != b'\t') || b == 0x7f) {
        return Err(SignError::InvalidHeaderValue(name.to_string()));
    }
    let mut out = String::with_capacity(value.len());
    for word in value.trim_matches([' ', '\t']).split(' ').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    Ok(out)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// SigV4's `UriEncode`: every byte but the unreserved ones as `%XX`, upper-case hex.
fn uri_encode(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// `%XX` to its byte; anything else, a malformed escape included, kept as it is.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&hi), Some(&lo)) => hex_digit(hi).zip(hex_digit(lo)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

fn hex_digit(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// The signing key: `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length (a long one is hashed first); this error cannot happen.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else { unreachable!("HMAC accepts keys of any length") };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hex_sha256(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn header_value(name: &str, value: &str) -> Result<HeaderValue, SignError> {
    HeaderValue::from_str(value).map_err(|_| SignError::InvalidHeaderValue(name.to_string()))
}

fn sensitive_value(name: &str, value: &str) -> Result<HeaderValue, SignError> {
    let mut v = header_value(name, value)?;
    v.set_sensitive(true);
    Ok(v)
}

/// The signing time as SigV4 writes it: `YYYYMMDDTHHMMSSZ`, UTC.
struct AmzTime {
    stamp: String,
}

impl AmzTime {
    fn new(time: SystemTime) -> Result<Self, SignError> {
        let secs = time.duration_since(UNIX_EPOCH).map_err(|_| SignError::InvalidTime)?.as_secs();
        let days = i64::try_from(secs / 86_400).map_err(|_| SignError::InvalidTime)?;
        let (year, month, day) = civil_from_days(days);
        if year > 9999 {
            return Err(SignError::InvalidTime);
        }
        let of_day = secs % 86_400;
        let stamp =
            format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", of_day / 3600, of_day % 3600 / 60, of_day % 60);
        Ok(AmzTime { stamp })
    }

    /// `YYYYMMDD`, the date in the credential scope.
    fn date(&self) -> &str {
        self.stamp.get(..8).unwrap_or_default()
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day): Howard Hinnant's
/// `civil_from_days`, here so a timestamp needs no date crate.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    // The AWS SigV4 test suite's fixed inputs.
    const SUITE_KEY_ID: &str = "AKIDEXAMPLE";
    const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    /// 2015-08-30T12:36:00Z, the suite's `20150830T123600Z`.
    const SUITE_EPOCH_SECS: u64 = 1_440_938_160;
    const SUITE_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn at(epoch_secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(epoch_secs)
    }

    /// One case of the AWS SigV4 test suite (aws-sig-v4-test-suite, as published with the
    /// SigV4 documentation): the request, and the expected `.creq`, `.sts` and `.authz`.
    struct Case {
        name: &'static str,
        method: &'static str,
        url: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
        token: Option<&'static str>,
        creq: &'static str,
        sts_hash: &'static str,
        signed_headers: &'static str,
        signature: &'static str,
    }

    fn check(case: &Case) {
        let credentials = Credentials::new(SUITE_KEY_ID, SUITE_SECRET, case.token.map(str::to_string));
        let params = Params {
            credentials: &credentials,
            region: "us-east-1",
            service: "service",
            time: at(SUITE_EPOCH_SECS),
            content_sha256_header: false,
        };
        let request = Request { method: case.method, url: case.url, headers: case.headers, body: case.body.as_bytes() };
        let time = AmzTime::new(params.time).unwrap_or_else(|e| panic!("{e}"));
        let canonical = canonical_request(&request, &params, &time).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(canonical.text, case.creq, "{}: canonical request", case.name);

        let signed = sign(&request, &params).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let sts =
            format!("AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n{}", case.sts_hash);
        assert_eq!(signed.string_to_sign, sts, "{}: string to sign", case.name);
        assert_eq!(signed.signature, case.signature, "{}: signature", case.name);
        let authz = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={}, Signature={}",
            case.signed_headers, case.signature
        );
        assert_eq!(header(&signed, "authorization"), Some(authz.as_str()), "{}: authorization", case.name);
        assert_eq!(header(&signed, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(header(&signed, "x-amz-security-token"), case.token);
    }

    fn header<'a>(signed: &'a Signed, name: &str) -> Option<&'a str> {
        signed.headers.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.to_str().ok())
    }

    #[test]
    fn suite_get_vanilla() {
        check(&Case {
            name: "get-vanilla",
            method: "GET",
            url: "https://example.amazonaws.com/",
            headers: &[],
            body: "",
            token: None,
            creq: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts_hash: "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
            signed_headers: "host;x-amz-date",
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        });
    }

    #[test]
    fn suite_post_vanilla() {
        check(&Case {
            name: "post-vanilla",
            method: "POST",
            url: "https://example.amazonaws.com/",
            headers: &[],
            body: "",
            token: None,
            creq: "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts_hash: "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
            signed_headers: "host;x-amz-date",
            signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        });
    }

    #[test]
    fn suite_post_x_www_form_urlencoded() {
        check(&Case {
            name: "post-x-www-form-urlencoded",
            method: "POST",
            url: "https://example.amazonaws.com/",
            headers: &[("Content-Type", "application/x-www-form-urlencoded")],
            body: "Param1=value1",
            token: None,
            creq: "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            sts_hash: "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
            signed_headers: "content-type;host;x-amz-date",
            signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        });
    }

    #[test]
    fn suite_post_x_www_form_urlencoded_parameters() {
        check(&Case {
            name: "post-x-www-form-urlencoded-parameters",
            method: "POST",
            url: "https://example.amazonaws.com/",
            headers: &[("Content-Type", "application/x-www-form-urlencoded; charset=utf8")],
            body: "Param1=value1",
            token: None,
            creq: "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf8\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            sts_hash: "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c",
            signed_headers: "content-type;host;x-amz-date",
            signature: "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe",
        });
    }

    #[test]
    fn suite_post_sts_header_before() {
        check(&Case {
            name: "post-sts-header-before",
            method: "POST",
            url: "https://example.amazonaws.com/",
            headers: &[],
            body: "",
            token: Some(SUITE_TOKEN),
            creq: "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==\n\nhost;x-amz-date;x-amz-security-token\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts_hash: "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
            signed_headers: "host;x-amz-date;x-amz-security-token",
            signature: "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        });
    }

    #[test]
    fn suite_headers_sorted_trimmed_and_joined() {
        check(&Case {
            name: "get-header-key-duplicate",
            method: "GET",
            url: "https://example.amazonaws.com/",
            headers: &[("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")],
            body: "",
            token: None,
            creq: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts_hash: "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
            signed_headers: "host;my-header1;x-amz-date",
            signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        });
        check(&Case {
            name: "get-header-value-trim",
            method: "GET",
            url: "https://example.amazonaws.com/",
            headers: &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
            body: "",
            token: None,
            creq: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts_hash: "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
            signed_headers: "host;my-header1;my-header2;x-amz-date",
            signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        });
        check(&Case {
            name: "post-header-key-sort",
            method: "POST",
            url: "https://example.amazonaws.com/",
            headers: &[("My-Header1", "value1")],
            body: "",
            token: None,
            creq: "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts_hash: "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
            signed_headers: "host;my-header1;x-amz-date",
            signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
        });
    }

    #[test]
    fn suite_paths() {
        check(&Case {
            name: "get-unreserved",
            method: "GET",
            url: "https://example.amazonaws.com/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            headers: &[],
            body: "",
            token: None,
            creq: "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts_hash: "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
            signed_headers: "host;x-amz-date",
            signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
        });
        check(&Case {
            name: "get-utf8",
            method: "GET",
            url: "https://example.amazonaws.com/\u{1234}",
            headers: &[],
            body: "",
            token: None,
            creq: "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts_hash: "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
            signed_headers: "host;x-amz-date",
            signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
        });
        check(&Case {
            name: "get-space",
            method: "GET",
            url: "https://example.amazonaws.com/example space/",
            headers: &[],
            body: "",
            token: None,
            creq: "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts_hash: "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
            signed_headers: "host;x-amz-date",
            signature: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
        });
        check(&Case {
            name: "get-slashes",
            method: "GET",
            url: "https://example.amazonaws.com//example//",
            headers: &[],
            body: "",
            token: None,
            creq: "GET\n/example/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts_hash: "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015",
            signed_headers: "host;x-amz-date",
            signature: "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
        });
        check(&Case {
            name: "get-slash-pointless-dot",
            method: "GET",
            url: "https://example.amazonaws.com/./example",
            headers: &[],
            body: "",
            token: None,
            creq: "GET\n/example\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts_hash: "214d50c111a8edc4819da6a636336472c916b5240f51e9a51b5c3305180cf702",
            signed_headers: "host;x-amz-date",
            signature: "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
        });
        // get-relative, get-relative-relative, get-slash, get-slash-dot-slash: all sign as get-vanilla.
        for url in ["/example/..", "/example1/example2/../..", "//", "/./"] {
            let url = format!("https://example.amazonaws.com{url}");
            let credentials = Credentials::new(SUITE_KEY_ID, SUITE_SECRET, None);
            let params = Params {
                credentials: &credentials,
                region: "us-east-1",
                service: "service",
                time: at(SUITE_EPOCH_SECS),
                content_sha256_header: false,
            };
            let request = Request { method: "GET", url: &url, headers: &[], body: b"" };
            let signed = sign(&request, &params).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(signed.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31", "{url}");
        }
    }

    #[test]
    fn suite_queries() {
        check(&Case {
            name: "get-vanilla-query-order-key-case",
            method: "GET",
            url: "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            headers: &[],
            body: "",
            token: None,
            creq: "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts_hash: "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
            signed_headers: "host;x-amz-date",
            signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        });
        check(&Case {
            name: "get-vanilla-query-order-value",
            method: "GET",
            url: "https://example.amazonaws.com/?Param1=value2&Param1=value1",
            headers: &[],
            body: "",
            token: None,
            creq: "GET\n/\nParam1=value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts_hash: "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606",
            signed_headers: "host;x-amz-date",
            signature: "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
        });
        check(&Case {
            name: "get-vanilla-utf8-query",
            method: "GET",
            url: "https://example.amazonaws.com/?\u{1234}=bar",
            headers: &[],
            body: "",
            token: None,
            creq: "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts_hash: "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
            signed_headers: "host;x-amz-date",
            signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        });
    }

    /// The worked example of the SigV4 documentation: IAM `ListUsers`, whose canonical request
    /// hashes to f536975d… and whose signature is 5d672d79….
    #[test]
    fn documentation_iam_list_users() {
        let credentials = Credentials::new(SUITE_KEY_ID, SUITE_SECRET, None);
        let params = Params {
            credentials: &credentials,
            region: "us-east-1",
            service: "iam",
            time: at(SUITE_EPOCH_SECS),
            content_sha256_header: false,
        };
        let request = Request {
            method: "GET",
            url: "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
            headers: &[("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
            body: b"",
        };
        let signed = sign(&request, &params).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            signed.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\nf536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        assert_eq!(signed.signature, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
    }

    /// The signing keys of the SigV4 documentation ("Examples of how to derive a signing key").
    #[test]
    fn documentation_signing_keys() {
        assert_eq!(
            hex(&signing_key(SUITE_SECRET, "20120215", "us-east-1", "iam")),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
        assert_eq!(
            hex(&signing_key(SUITE_SECRET, "20150830", "us-east-1", "iam")),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    /// Bedrock-shaped requests. No AWS-published vector exists for these; the expected values were
    /// produced by botocore 1.43 (`SigV4Auth(creds, "bedrock", region)` with its clock fixed), an
    /// implementation independent of this one, and show the double-encoded model id.
    #[test]
    fn bedrock_converse_stream_with_session_token() {
        let credentials = Credentials::new(SUITE_KEY_ID, SUITE_SECRET, Some(SUITE_TOKEN.to_string()));
        let params = Params {
            credentials: &credentials,
            region: "us-east-1",
            service: BEDROCK_SERVICE,
            time: at(1_714_555_800), // 2024-05-01T09:30:00Z
            content_sha256_header: false,
        };
        let model = encode_path_segment("anthropic.claude-3-haiku-20240307-v1:0");
        assert_eq!(model, "anthropic.claude-3-haiku-20240307-v1%3A0");
        let url = format!("https://bedrock-runtime.us-east-1.amazonaws.com/model/{model}/converse-stream");
        let body = br#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}],"inferenceConfig":{"maxTokens":64}}"#;
        let request = Request { method: "POST", url: &url, headers: &[("Content-Type", "application/json")], body };

        let time = AmzTime::new(params.time).unwrap_or_else(|e| panic!("{e}"));
        let canonical = canonical_request(&request, &params, &time).unwrap_or_else(|e| panic!("{e}"));
        let expected_creq = format!(
            "POST\n/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse-stream\n\ncontent-type:application/json\nhost:bedrock-runtime.us-east-1.amazonaws.com\nx-amz-date:20240501T093000Z\nx-amz-security-token:{SUITE_TOKEN}\n\ncontent-type;host;x-amz-date;x-amz-security-token\nf5b802cc64a01910fd197a46e9e959f3a5795f7728fa5710fb28f1ec3019f545"
        );
        assert_eq!(canonical.text, expected_creq);

        let signed = sign(&request, &params).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            signed.string_to_sign,
            "AWS4-HMAC-SHA256\n20240501T093000Z\n20240501/us-east-1/bedrock/aws4_request\n4a9d9e8d5f699f0fab75a4842bb6089c6a4415853248866ed0cd1a0e17db561d"
        );
        assert_eq!(
            header(&signed, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=ed700bfeffd50920597e276f09e154916fe5b72e210da2286f3ecf8f082ec19b"
            )
        );
        assert_eq!(header(&signed, "x-amz-date"), Some("20240501T093000Z"));
        assert_eq!(header(&signed, "x-amz-security-token"), Some(SUITE_TOKEN));
        assert_eq!(header(&signed, "x-amz-content-sha256"), None);
        let names: Vec<&str> = signed.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["authorization", "x-amz-date", "x-amz-security-token"]);
    }

    #[test]
    fn bedrock_inference_profile_arn() {
        let credentials = Credentials::new(SUITE_KEY_ID, SUITE_SECRET, None);
        let params = Params {
            credentials: &credentials,
            region: "eu-west-3",
            service: BEDROCK_SERVICE,
            time: at(1_714_555_800),
            content_sha256_header: false,
        };
        let arn =
            "arn:aws:bedrock:eu-west-3:123456789012:inference-profile/eu.anthropic.claude-3-5-sonnet-20240620-v1:0";
        let url = format!(
            "https://bedrock-runtime.eu-west-3.amazonaws.com/model/{}/invoke-with-response-stream",
            encode_path_segment(arn)
        );
        let body = br#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}],"inferenceConfig":{"maxTokens":64}}"#;
        let request = Request { method: "POST", url: &url, headers: &[("content-type", "application/json")], body };
        let time = AmzTime::new(params.time).unwrap_or_else(|e| panic!("{e}"));
        let canonical = canonical_request(&request, &params, &time).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            canonical.text.starts_with("POST\n/model/arn%253Aaws%253Abedrock%253Aeu-west-3%253A123456789012%253Ainference-profile%252Feu.anthropic.claude-3-5-sonnet-20240620-v1%253A0/invoke-with-response-stream\n"),
            "{}",
            canonical.text
        );
        let signed = sign(&request, &params).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(signed.signature, "76314fa06ecc96589728e1029d5ad162d9ee065163875780d8cf8bee88794cac");
    }

    #[test]
    fn content_sha256_header_is_sent_and_signed_when_asked() {
        let credentials = Credentials::new(SUITE_KEY_ID, SUITE_SECRET, None);
        let params = Params {
            credentials: &credentials,
            region: "us-east-1",
            service: "service",
            time: at(SUITE_EPOCH_SECS),
            content_sha256_header: true,
        };
        let request = Request { method: "POST", url: "https://example.amazonaws.com/", headers: &[], body: b"" };
        let time = AmzTime::new(params.time).unwrap_or_else(|e| panic!("{e}"));
        let canonical = canonical_request(&request, &params, &time).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(canonical.signed_headers, "host;x-amz-content-sha256;x-amz-date");
        assert!(canonical.text.contains(&format!("\nx-amz-content-sha256:{EMPTY_SHA256}\n")));
        let signed = sign(&request, &params).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(header(&signed, "x-amz-content-sha256"), Some(EMPTY_SHA256));
    }

    #[test]
    fn host_is_what_an_http_client_sends() {
        for (url, host) in [
            ("https://Bedrock-Runtime.us-east-1.amazonaws.com/x", "bedrock-runtime.us-east-1.amazonaws.com"),
            ("https://example.com:443/x", "example.com"),
            ("https://example.com:8443/x", "example.com:8443"),
            ("http://example.com:80", "example.com"),
            ("http://127.0.0.1:9000?a=b", "127.0.0.1:9000"),
            ("http://[::1]:80/", "[::1]"),
            ("http://[::1]:8080/", "[::1]:8080"),
        ] {
            assert_eq!(Url::parse(url).map(|u| u.host).as_deref(), Ok(host), "{url}");
        }
        let u = Url::parse("https://h/a/b?x=1#frag").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((u.path, u.query), ("/a/b", "x=1"));
        let u = Url::parse("https://h").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((canonical_uri(u.path), u.query), ("/".to_string(), ""));
    }

    #[test]
    fn canonical_pieces() {
        assert_eq!(canonical_uri("/model/a%3Ab/invoke"), "/model/a%253Ab/invoke");
        assert_eq!(canonical_uri("/a/./b/../c/"), "/a/c/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("b=2&a=1&a=0&flag"), "a=0&a=1&b=2&flag=");
        assert_eq!(canonical_query("k=a%20b&k2=a+b&k3=%zz&k4=%3a"), "k=a%20b&k2=a%2Bb&k3=%25zz&k4=%3A");
        assert_eq!(encode_path_segment("a b/c~d._-*é"), "a%20b%2Fc~d._-%2A%C3%A9");
        assert_eq!(canonical_header_value("x", "  a \t b   c  ").as_deref(), Ok("a \t b c"));
    }

    fn params_for(credentials: &Credentials) -> Params<'_> {
        Params {
            credentials,
            region: "us-east-1",
            service: "bedrock",
            time: at(SUITE_EPOCH_SECS),
            content_sha256_header: false,
        }
    }

    #[test]
    fn refuses_what_cannot_be_signed() {
        let credentials = Credentials::new(SUITE_KEY_ID, SUITE_SECRET, None);
        let params = params_for(&credentials);
        let sign_with = |method: &str, url: &str, headers: &[(&str, &str)]| {
            sign(&Request { method, url, headers, body: b"" }, &params).map(|_| ())
        };
        let ok_url = "https://example.amazonaws.com/";
        assert_eq!(sign_with("POST", ok_url, &[]), Ok(()));
        assert_eq!(sign_with("POST", ok_url, &[("Host", "other")]), Err(SignError::ReservedHeader("host".into())));
        assert_eq!(
            sign_with("POST", ok_url, &[("X-Amz-Date", "x")]),
            Err(SignError::ReservedHeader("x-amz-date".into()))
        );
        assert_eq!(
            sign_with("POST", ok_url, &[("Authorization", "x")]),
            Err(SignError::ReservedHeader("authorization".into()))
        );
        assert_eq!(
            sign_with("POST", ok_url, &[("bad name", "x")]),
            Err(SignError::InvalidHeaderName("bad name".into()))
        );
        assert_eq!(sign_with("POST", ok_url, &[("", "x")]), Err(SignError::InvalidHeaderName(String::new())));
        assert_eq!(
            sign_with("POST", ok_url, &[("x-a", "v\r\nx-b: forged")]),
            Err(SignError::InvalidHeaderValue("x-a".into()))
        );
        assert_eq!(sign_with("PO ST", ok_url, &[]), Err(SignError::InvalidMethod("PO ST".into())));
        assert_eq!(sign_with("", ok_url, &[]), Err(SignError::InvalidMethod(String::new())));
        for url in ["example.com/x", "ftp://example.com/", "https:///x", "https://user:pw@example.com/", "https://a b/"]
        {
            assert!(matches!(sign_with("POST", url, &[]), Err(SignError::InvalidUrl(_))), "{url}");
        }

        for (region, service) in [("", "bedrock"), ("us-east-1/x", "bedrock"), ("us-east-1", "bed rock")] {
            let p = Params { region, service, ..params };
            let r = sign(&Request { method: "POST", url: ok_url, headers: &[], body: b"" }, &p);
            assert!(matches!(r, Err(SignError::InvalidScope(_))), "{region} {service}");
        }

        let before_epoch = Params { time: UNIX_EPOCH - Duration::from_secs(1), ..params };
        let r = sign(&Request { method: "POST", url: ok_url, headers: &[], body: b"" }, &before_epoch);
        assert!(matches!(r, Err(SignError::InvalidTime)));

        let bad_token = Credentials::new(SUITE_KEY_ID, SUITE_SECRET, Some("s3cr3t\nvalue".into()));
        let r = sign(&Request { method: "POST", url: ok_url, headers: &[], body: b"" }, &params_for(&bad_token));
        let err = r.err().unwrap_or_else(|| panic!("a token with a line break was signed"));
        assert_eq!(err, SignError::InvalidHeaderValue("x-amz-security-token".into()));
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }

    #[test]
    fn timestamps() {
        let stamp = |secs| AmzTime::new(at(secs)).map(|t| t.stamp).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stamp(0), "19700101T000000Z");
        assert_eq!(stamp(SUITE_EPOCH_SECS), "20150830T123600Z");
        assert_eq!(stamp(951_782_400), "20000229T000000Z"); // a century leap day
        assert_eq!(stamp(1_709_251_199), "20240229T235959Z");
        assert_eq!(stamp(253_402_300_799), "99991231T235959Z");
        assert!(AmzTime::new(at(253_402_300_800)).is_err());
        let t = AmzTime::new(at(SUITE_EPOCH_SECS)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.date(), "20150830");
    }

    #[test]
    fn credentials_from_env() {
        let vars = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let full = vars(&[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", SUITE_SECRET),
            ("AWS_SESSION_TOKEN", "session-token-value"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ]);
        let creds = Credentials::from_env(&|k| full.get(k).cloned()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(creds, Credentials::new("AKIDEXAMPLE", SUITE_SECRET, Some("session-token-value".into())));
        assert!(creds.has_session_token());
        assert_eq!(region_from_env(&|k| full.get(k).cloned()).as_deref(), Some("eu-west-1"));

        let both_regions = vars(&[("AWS_REGION", "us-west-2"), ("AWS_DEFAULT_REGION", "eu-west-1")]);
        assert_eq!(region_from_env(&|k| both_regions.get(k).cloned()).as_deref(), Some("us-west-2"));
        assert_eq!(region_from_env(&|_| None), None);

        let no_token =
            vars(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s"), ("AWS_SESSION_TOKEN", "")]);
        let creds = Credentials::from_env(&|k| no_token.get(k).cloned()).unwrap_or_else(|e| panic!("{e}"));
        assert!(!creds.has_session_token());

        let no_secret = vars(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", " ")]);
        assert_eq!(
            Credentials::from_env(&|k| no_secret.get(k).cloned()),
            Err(CredentialsError::Missing("AWS_SECRET_ACCESS_KEY"))
        );
        assert_eq!(Credentials::from_env(&|_| None), Err(CredentialsError::Missing("AWS_ACCESS_KEY_ID")));
    }

    #[test]
    fn secrets_never_printed() {
        let creds = Credentials::new(SUITE_KEY_ID, SUITE_SECRET, Some(SUITE_TOKEN.into()));
        let debug = format!("{creds:?} {creds:#?}");
        assert!(debug.contains("AKIDEXAMPLE"), "{debug}");
        assert!(!debug.contains("wJalr") && !debug.contains("EXAMPLEKEY"), "{debug}");
        assert!(!debug.contains("AQoDYX"), "{debug}");

        let params = params_for(&creds);
        let signed =
            sign(&Request { method: "POST", url: "https://example.amazonaws.com/", headers: &[], body: b"" }, &params)
                .unwrap_or_else(|e| panic!("{e}"));
        let debug = format!("{signed:?}");
        assert!(!debug.contains("AQoDYX") && !debug.contains("wJalr"), "{debug}");
        assert!(!debug.contains(&signed.signature), "the authorization header is printed: {debug}");
        assert!(debug.contains("x-amz-date"), "{debug}");
    }
}
