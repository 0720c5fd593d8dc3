//! Recorded provider traffic (`../shared/fixtures/`) as the conformance tests read it.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

pub fn fixtures() -> PathBuf {
    // Read when the test runs, not when it was built: cargo reuses a cached test binary after the
    // checkout moves (CI clones to a new place each time), and a path baked in would be stale.
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let dir = PathBuf::from(crate_dir).join("../../../shared/fixtures");
    assert!(dir.is_dir(), "fixtures not found at {} (shared/ must sit beside the repository)", dir.display());
    dir
}

/// One recorded exchange, whatever the cassette format.
pub struct Exchange {
    pub file: String,
    pub url: String,
    pub request: Option<Value>,
    pub status: u16,
    pub body: String,
}

pub fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Reads go-vcr (envoy) and vcrpy (mirascope, pydantic) cassettes. Gzip bodies are skipped.
pub fn cassette(path: &PathBuf) -> Vec<Exchange> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let opts = serde_saphyr::options! { ignore_binary_tag_for_string: true };
    let doc: Value =
        serde_saphyr::from_str_with_options(&text, opts).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
    let mut out = Vec::new();
    for i in doc["interactions"].as_array().into_iter().flatten() {
        let (req, resp) = (&i["request"], &i["response"]);
        let gzip = resp["headers"].as_object().is_some_and(|h| {
            h.iter().any(|(k, v)| k.eq_ignore_ascii_case("content-encoding") && v.to_string().contains("gzip"))
        });
        let request = req
            .get("parsed_body")
            .cloned()
            .or_else(|| text_of(req.get("body")).and_then(|b| serde_json::from_str(&b).ok()));
        let body = if let Some(p) = resp.get("parsed_body") {
            Some(p.to_string())
        } else if let Some(s) = resp["body"].get("string") {
            text_of(Some(s))
        } else {
            text_of(resp.get("body"))
        };
        let status = resp["code"].as_u64().or_else(|| resp["status"]["code"].as_u64()).unwrap_or(0) as u16;
        let (Some(body), false) = (body, gzip) else { continue };
        out.push(Exchange {
            file: file.clone(),
            url: text_of(req.get("uri").or(req.get("url"))).unwrap_or_default(),
            request,
            status,
            body,
        });
    }
    out
}

pub fn all_exchanges(dir: &str, prefix: &str) -> Vec<Exchange> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures().join(dir))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
            name.ends_with(".yaml") && name.starts_with(prefix)
        })
        .collect();
    paths.sort();
    paths.iter().flat_map(cassette).collect()
}
