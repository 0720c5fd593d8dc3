//! What a caller says about a request in headers, for logs and routing rules: the end user, the
//! session, tags and free metadata (`x-switchyard-metadata-NAME`).

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use switchyard_types::GatewayError;

/// Bounds that keep one record small whatever a client sends.
const MAX_TAGS: usize = 32;
const MAX_METADATA: usize = 32;
const MAX_VALUE_BYTES: usize = 1024;

const METADATA_PREFIX: &str = "x-switchyard-metadata-";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestMeta {
    pub user: Option<String>,
    pub session: Option<String>,
    pub tags: Vec<String>,
    pub metadata: BTreeMap<String, String>,
}

impl RequestMeta {
    pub fn from_headers(headers: &HeaderMap) -> Result<RequestMeta, GatewayError> {
        let text = |name: &str| -> Result<Option<String>, GatewayError> {
            match headers.get(name) {
                None => Ok(None),
                Some(v) => {
                    let v = v.to_str().map_err(|_| invalid(format!("The header {name} must be ASCII text.")))?.trim();
                    if v.len() > MAX_VALUE_BYTES {
                        return Err(invalid(format!("The header {name} is longer than {MAX_VALUE_BYTES} bytes.")));
                    }
                    Ok(Some(v.to_string()).filter(|v| !v.is_empty()))
                }
            }
        };
        let tags: Vec<String> = text("x-switchyard-tags")?
            .map(|t| t.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        if tags.len() > MAX_TAGS {
            return Err(invalid(format!("x-switchyard-tags holds more than {MAX_TAGS} tags.")));
        }
        let mut metadata = BTreeMap::new();
        for name in headers.keys().map(|n| n.as_str()).filter(|n| n.starts_with(METADATA_PREFIX)) {
            let key = &name[METADATA_PREFIX.len()..];
            if key.is_empty() {
                continue;
            }
            if metadata.len() == MAX_METADATA {
                return Err(invalid(format!("More than {MAX_METADATA} x-switchyard-metadata-* headers.")));
            }
            if let Some(v) = text(name)? {
                metadata.insert(key.to_string(), v);
            }
        }
        Ok(RequestMeta { user: text("x-switchyard-user")?, session: text("x-switchyard-session")?, tags, metadata })
    }
}

fn invalid(message: String) -> GatewayError {
    GatewayError::invalid(message).with_code("invalid_header")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn reads_and_bounds_caller_metadata() {
        let mut h = HeaderMap::new();
        h.insert("x-switchyard-user", HeaderValue::from_static("alice"));
        h.insert("x-switchyard-tags", HeaderValue::from_static("beta, eu,,"));
        h.insert("x-switchyard-metadata-app", HeaderValue::from_static("web"));
        h.insert("X-Switchyard-Metadata-Env", HeaderValue::from_static("prod"));
        let m = RequestMeta::from_headers(&h).unwrap_or_default();
        assert_eq!(m.user.as_deref(), Some("alice"));
        assert_eq!(m.tags, ["beta", "eu"]);
        assert_eq!(m.metadata.get("env").map(String::as_str), Some("prod"));
        assert_eq!(m.metadata.len(), 2);

        h.insert(
            "x-switchyard-session",
            HeaderValue::from_str(&"s".repeat(2000)).unwrap_or(HeaderValue::from_static("")),
        );
        assert_eq!(RequestMeta::from_headers(&h).map_err(|e| e.http_status()), Err(400));
        let mut h = HeaderMap::new();
        let many = (0..40).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        h.insert("x-switchyard-tags", HeaderValue::from_str(&many).unwrap_or(HeaderValue::from_static("")));
        assert!(RequestMeta::from_headers(&h).is_err());
    }
}
