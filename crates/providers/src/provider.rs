//! What a provider is: its kind, where it lives and how it authenticates.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use switchyard_types::Protocol;

use crate::aws::sigv4::{Credentials, region_from_env};

/// The `providers:` entries of the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    #[serde(rename = "type")]
    pub kind: ProviderType,
    /// The credential. Optional for local servers that take none.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Several credentials for one provider: requests rotate through them, a key that gets a 429
    /// rests for its `retry-after`, and one that gets 401 or 403 is retired until a reload.
    #[serde(default)]
    pub api_keys: Vec<String>,
    /// Overrides the kind's default URL (required for `openai-compatible` and `azure-openai`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Azure OpenAI's `api-version` query parameter.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Extra headers sent with every request (organisation ids, gateway tokens, …).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Probe the provider in the background (`GET {base_url}/models`) and feed its targets'
    /// breakers, so an outage is known before a client request pays for it.
    #[serde(default)]
    pub health_check: Option<HealthCheckSpec>,
    /// Bedrock: the AWS region (default `AWS_REGION`, then `AWS_DEFAULT_REGION`).
    #[serde(default)]
    pub region: Option<String>,
    /// Bedrock: AWS credentials (default the standard `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` variables).
    #[serde(default)]
    pub aws_access_key_id: Option<String>,
    #[serde(default)]
    pub aws_secret_access_key: Option<String>,
    #[serde(default)]
    pub aws_session_token: Option<String>,
}

impl ProviderSpec {
    /// A provider of this kind with every option at its default (no key, the kind's URL).
    pub fn of(kind: ProviderType) -> Self {
        ProviderSpec {
            kind,
            api_key: None,
            api_keys: Vec::new(),
            base_url: None,
            api_version: None,
            headers: BTreeMap::new(),
            health_check: None,
            region: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_session_token: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSpec {
    /// Seconds between probes.
    pub interval_secs: f64,
}

/// Every provider kind. The OpenAI-compatible presets differ only in their default URL.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderType {
    Openai,
    AzureOpenai,
    OpenaiCompatible,
    Groq,
    Together,
    Mistral,
    Deepseek,
    Fireworks,
    Openrouter,
    Vllm,
    Ollama,
    #[serde(rename = "llamacpp", alias = "llama-cpp")]
    LlamaCpp,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API (AI Studio).
    Gemini,
    /// AWS Bedrock's Converse API, signed with SigV4.
    Bedrock,
}

impl ProviderType {
    /// The name as written in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::Openai => "openai",
            ProviderType::AzureOpenai => "azure-openai",
            ProviderType::OpenaiCompatible => "openai-compatible",
            ProviderType::Groq => "groq",
            ProviderType::Together => "together",
            ProviderType::Mistral => "mistral",
            ProviderType::Deepseek => "deepseek",
            ProviderType::Fireworks => "fireworks",
            ProviderType::Openrouter => "openrouter",
            ProviderType::Vllm => "vllm",
            ProviderType::Ollama => "ollama",
            ProviderType::LlamaCpp => "llamacpp",
            ProviderType::Anthropic => "anthropic",
            ProviderType::Gemini => "gemini",
            ProviderType::Bedrock => "bedrock",
        }
    }

    /// Where the kind's API lives when the config gives no `base_url`.
    pub fn default_base_url(self) -> Option<&'static str> {
        Some(match self {
            ProviderType::Openai => "https://api.openai.com/v1",
            ProviderType::Groq => "https://api.groq.com/openai/v1",
            ProviderType::Together => "https://api.together.xyz/v1",
            ProviderType::Mistral => "https://api.mistral.ai/v1",
            ProviderType::Deepseek => "https://api.deepseek.com/v1",
            ProviderType::Fireworks => "https://api.fireworks.ai/inference/v1",
            ProviderType::Openrouter => "https://openrouter.ai/api/v1",
            ProviderType::Vllm => "http://127.0.0.1:8000/v1",
            ProviderType::Ollama => "http://127.0.0.1:11434/v1",
            ProviderType::LlamaCpp => "http://127.0.0.1:8080/v1",
            ProviderType::Anthropic => "https://api.anthropic.com/v1",
            ProviderType::Gemini => "https://generativelanguage.googleapis.com/v1beta",
            // Bedrock's URL depends on the region.
            ProviderType::AzureOpenai | ProviderType::OpenaiCompatible | ProviderType::Bedrock => return None,
        })
    }

    /// Hosted services need a key; local servers usually do not.
    pub fn needs_api_key(self) -> bool {
        // Bedrock signs with AWS credentials instead.
        !matches!(
            self,
            ProviderType::OpenaiCompatible
                | ProviderType::Vllm
                | ProviderType::Ollama
                | ProviderType::LlamaCpp
                | ProviderType::Bedrock
        )
    }

    pub fn protocol(self) -> Protocol {
        match self {
            ProviderType::Anthropic => Protocol::Anthropic,
            ProviderType::Gemini => Protocol::Gemini,
            ProviderType::Bedrock => Protocol::Bedrock,
            _ => Protocol::OpenAi,
        }
    }
}

/// A provider ready to call.
#[derive(Debug)]
pub struct Provider {
    pub name: String,
    pub kind: ProviderType,
    pub health_check: Option<HealthCheckSpec>,
    base_url: String,
    keys: Vec<ApiKey>,
    next_key: AtomicUsize,
    api_version: Option<String>,
    headers: Vec<(String, String)>,
    /// Bedrock's signing credentials and region.
    pub aws: Option<AwsSigning>,
}

/// What SigV4 signs Bedrock requests with.
#[derive(Debug)]
pub struct AwsSigning {
    pub credentials: Credentials,
    pub region: String,
}

/// One credential and what the provider said about it.
struct ApiKey {
    value: String,
    retired: AtomicBool,
    resting_until: Mutex<Option<Instant>>,
}

/// Never prints the key: a `{:?}` of a provider (or anything holding one) must not leak it.
impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey").field("value", &"<redacted>").field("retired", &self.retired).finish()
    }
}

impl ApiKey {
    fn usable(&self, now: Instant) -> bool {
        !self.retired.load(Ordering::Relaxed) && self.resting_until.lock().map_or(true, |t| t.is_none_or(|t| now >= t))
    }
}

/// How long a key rests after a 429 that named no `retry-after`.
const DEFAULT_KEY_REST: Duration = Duration::from_secs(5);

/// Bedrock's region and credentials: the config's, else AWS's standard variables.
fn aws_signing(name: &str, spec: &ProviderSpec, env: &dyn Fn(&str) -> Option<String>) -> Result<AwsSigning, String> {
    let region = spec.region.clone().filter(|r| !r.is_empty()).or_else(|| region_from_env(env)).ok_or_else(|| {
        format!("provider '{name}' of type bedrock needs a region (region:, or AWS_REGION in the environment)")
    })?;
    let credentials = match (&spec.aws_access_key_id, &spec.aws_secret_access_key) {
        (Some(id), Some(secret)) => Credentials::new(id.clone(), secret.clone(), spec.aws_session_token.clone()),
        (None, None) => Credentials::from_env(env).map_err(|e| {
            format!("provider '{name}' of type bedrock needs AWS credentials (aws_access_key_id and aws_secret_access_key, or the AWS environment variables): {e}")
        })?,
        _ => {
            return Err(format!("provider '{name}': set both aws_access_key_id and aws_secret_access_key, or neither"));
        }
    };
    Ok(AwsSigning { credentials, region })
}

/// The `anthropic-version` header sent unless the config sets one.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Azure's `api-version` when the config names none: the current GA version as of this release.
const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

impl Provider {
    pub fn new(name: &str, spec: &ProviderSpec) -> Result<Provider, String> {
        Provider::with_env(name, spec, &|k| std::env::var(k).ok())
    }

    /// As `new`, reading AWS's standard variables (for Bedrock) through `env`.
    pub fn with_env(name: &str, spec: &ProviderSpec, env: &dyn Fn(&str) -> Option<String>) -> Result<Provider, String> {
        let aws = match spec.kind {
            ProviderType::Bedrock => Some(aws_signing(name, spec, env)?),
            _ => None,
        };
        let regional = aws.as_ref().map(|a| format!("https://bedrock-runtime.{}.amazonaws.com", a.region));
        let base_url = match (&spec.base_url, spec.kind.default_base_url(), regional) {
            (Some(url), _, _) => url.clone(),
            (None, Some(url), _) => url.to_string(),
            (None, None, Some(url)) => url,
            (None, None, None) => {
                return Err(format!("provider '{name}' of type {} needs a base_url", spec.kind.as_str()));
            }
        };
        if spec.kind == ProviderType::Bedrock && spec.health_check.is_some() {
            return Err(format!("provider '{name}': health_check is not supported for bedrock"));
        }
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(format!("provider '{name}': base_url must start with http:// or https://"));
        }
        let values: Vec<String> =
            spec.api_key.iter().chain(spec.api_keys.iter()).filter(|k| !k.is_empty()).cloned().collect();
        if values.is_empty() && spec.kind.needs_api_key() {
            return Err(format!("provider '{name}' of type {} needs an api_key", spec.kind.as_str()));
        }
        let keys = values
            .into_iter()
            .map(|value| ApiKey { value, retired: AtomicBool::new(false), resting_until: Mutex::new(None) })
            .collect();
        if let Some(check) = spec.health_check
            && !(check.interval_secs.is_finite() && (0.05..=86_400.0).contains(&check.interval_secs))
        {
            return Err(format!("provider '{name}': health_check.interval_secs must be between 0.05 and 86400"));
        }
        for (k, v) in &spec.headers {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err() || http::HeaderValue::from_str(v).is_err() {
                return Err(format!("provider '{name}': header '{k}' is not a valid HTTP header"));
            }
        }
        Ok(Provider {
            name: name.to_string(),
            kind: spec.kind,
            health_check: spec.health_check,
            base_url: base_url.trim_end_matches('/').to_string(),
            keys,
            next_key: AtomicUsize::new(0),
            api_version: spec.api_version.clone(),
            headers: spec.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            aws,
        })
    }

    pub fn protocol(&self) -> Protocol {
        self.kind.protocol()
    }

    /// The URL of an OpenAI-protocol endpoint (`chat/completions`, `embeddings`) for `model`.
    ///
    /// Azure addresses a deployment in the path and wants `api-version`; everyone else takes the
    /// model in the body.
    pub fn endpoint_url(&self, endpoint: &str, model: &str) -> String {
        match self.kind {
            ProviderType::AzureOpenai => {
                let base = self.base_url.trim_end_matches("/openai");
                let version = self.api_version.as_deref().unwrap_or(AZURE_DEFAULT_API_VERSION);
                format!("{base}/openai/deployments/{model}/{endpoint}?api-version={version}")
            }
            _ => format!("{}/{endpoint}", self.base_url),
        }
    }

    /// The headers the config adds to every request.
    pub fn extra_headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Adds a credential and the provider's headers to a request. Returns which key was used
    /// (to report the answer with `report_key`), or an error when every key is retired or resting.
    pub fn authorize(
        &self,
        mut req: reqwest::RequestBuilder,
    ) -> Result<(reqwest::RequestBuilder, Option<usize>), Duration> {
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if self.keys.is_empty() {
            return Ok((req, None));
        }
        let now = Instant::now();
        let start = self.next_key.fetch_add(1, Ordering::Relaxed);
        let n = self.keys.len();
        let Some(i) = (0..n).map(|k| (start + k) % n).find(|i| self.keys[*i].usable(now)) else {
            return Err(self.key_wait(now));
        };
        let key = &self.keys[i].value;
        let req = match self.kind {
            ProviderType::AzureOpenai => req.header("api-key", key),
            ProviderType::Gemini => req.header("x-goog-api-key", key),
            ProviderType::Anthropic => {
                let req = req.header("x-api-key", key);
                // The API version Anthropic's SDKs send; a configured header wins.
                if self.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("anthropic-version")) {
                    req
                } else {
                    req.header("anthropic-version", ANTHROPIC_VERSION)
                }
            }
            _ => req.bearer_auth(key),
        };
        Ok((req, Some(i)))
    }

    /// Tells the provider how a key fared: a 401 retires it (while another key is still usable:
    /// the last one is kept, so a provider-wide outage cannot lock every key out until a reload),
    /// a 429 rests it. A 403 says nothing about the key (it is usually about a model, project or
    /// region), so it changes nothing.
    pub fn report_key(&self, index: usize, status: u16, retry_after: Option<Duration>) {
        let Some(key) = self.keys.get(index) else { return };
        match status {
            401 => {
                let now = Instant::now();
                let others = self.keys.iter().enumerate().any(|(i, k)| i != index && k.usable(now));
                if others && !key.retired.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        provider = %self.name,
                        "API key #{} was refused with 401; it is retired until the config is reloaded",
                        index + 1
                    );
                }
            }
            429 => {
                let now = Instant::now();
                let until = now.checked_add(retry_after.unwrap_or(DEFAULT_KEY_REST)).unwrap_or(now);
                if let Ok(mut t) = key.resting_until.lock() {
                    *t = Some(until);
                }
            }
            _ => {}
        }
    }

    /// Probes the provider: `GET {base_url}/models` with its credential. True if it answered 2xx.
    pub async fn probe(&self, client: &reqwest::Client, timeout: Duration) -> bool {
        let url = match self.kind {
            ProviderType::AzureOpenai => {
                let version = self.api_version.as_deref().unwrap_or(AZURE_DEFAULT_API_VERSION);
                format!("{}/openai/models?api-version={version}", self.base_url.trim_end_matches("/openai"))
            }
            _ => format!("{}/models", self.base_url),
        };
        let Ok((req, _)) = self.authorize(client.get(url).timeout(timeout)) else { return false };
        req.send().await.is_ok_and(|r| r.status().is_success())
    }

    /// Whether a request could get a key now.
    pub fn has_usable_key(&self) -> bool {
        let now = Instant::now();
        self.keys.is_empty() || self.keys.iter().any(|k| k.usable(now))
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// How long until some key that is not retired stops resting.
    fn key_wait(&self, now: Instant) -> Duration {
        self.keys
            .iter()
            .filter(|k| !k.retired.load(Ordering::Relaxed))
            .filter_map(|k| k.resting_until.lock().ok().and_then(|t| *t))
            .map(|t| t.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: ProviderType) -> ProviderSpec {
        ProviderSpec { api_key: Some("k".into()), ..ProviderSpec::of(kind) }
    }

    #[test]
    fn azure_uses_deployment_urls_and_api_version() {
        let mut s = spec(ProviderType::AzureOpenai);
        assert!(Provider::new("az", &s).is_err(), "azure needs a base_url");
        s.base_url = Some("https://res.openai.azure.com/".into());
        s.api_version = Some("2025-01-01-preview".into());
        let p = Provider::new("az", &s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.endpoint_url("chat/completions", "gpt4o-deploy"),
            "https://res.openai.azure.com/openai/deployments/gpt4o-deploy/chat/completions?api-version=2025-01-01-preview"
        );
    }

    #[test]
    fn presets_fill_the_url_and_hosted_ones_need_a_key() {
        let p = Provider::new("g", &spec(ProviderType::Groq)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.endpoint_url("chat/completions", "llama"), "https://api.groq.com/openai/v1/chat/completions");
        let mut s = spec(ProviderType::Openai);
        s.api_key = None;
        assert!(Provider::new("o", &s).is_err());
        let mut s = spec(ProviderType::Ollama);
        s.api_key = None;
        assert!(Provider::new("l", &s).is_ok());
    }

    #[test]
    fn debug_output_never_shows_a_key() {
        let p = Provider::new("o", &spec(ProviderType::Openai)).unwrap_or_else(|e| panic!("{e}"));
        let mut s = spec(ProviderType::Openai);
        s.api_key = Some("sk-very-secret-value".into());
        let q = Provider::new("o", &s).unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{p:?}{q:?}").contains("sk-very-secret-value"));
    }

    #[test]
    fn keys_rotate_rest_on_429_and_retire_on_401() {
        let mut s = spec(ProviderType::Openai);
        s.api_key = None;
        s.api_keys = vec!["k1".into(), "k2".into()];
        let p = Provider::new("o", &s).unwrap_or_else(|e| panic!("{e}"));
        let client = reqwest::Client::new();
        let used = |p: &Provider| p.authorize(client.post("http://x")).ok().and_then(|(_, i)| i);
        let (a, b) = (used(&p), used(&p));
        assert_ne!(a, b, "rotation");
        p.report_key(0, 403, None);
        assert_ne!(used(&p), used(&p), "a 403 is not the key's fault");
        p.report_key(0, 401, None);
        assert!((0..4).all(|_| used(&p) == Some(1)), "retired key 0 is skipped");
        p.report_key(1, 401, None);
        assert!((0..4).all(|_| used(&p) == Some(1)), "the last usable key is never retired");
        p.report_key(1, 429, Some(Duration::from_secs(30)));
        assert!(!p.has_usable_key());
        let wait = p.authorize(client.post("http://x")).err().unwrap_or_default();
        assert!(wait > Duration::from_secs(25), "{wait:?}");
    }

    #[test]
    fn bedrock_takes_its_region_and_credentials_from_the_config_or_aws_variables() {
        let none = |_: &str| None;
        let spec = ProviderSpec::of(ProviderType::Bedrock);
        assert!(Provider::with_env("b", &spec, &none).is_err_and(|e| e.contains("region")));
        let env = |k: &str| match k {
            "AWS_REGION" => Some("eu-west-1".to_string()),
            "AWS_ACCESS_KEY_ID" => Some("AKIDENV".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("env-secret-value".to_string()),
            _ => None,
        };
        let p = Provider::with_env("b", &spec, &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.endpoint_url("model/m/converse", ""),
            "https://bedrock-runtime.eu-west-1.amazonaws.com/model/m/converse"
        );
        assert_eq!(p.aws.as_ref().map(|a| a.credentials.access_key_id()), Some("AKIDENV"));
        assert!(!format!("{p:?}").contains("env-secret-value"), "the secret never prints");
        let half = ProviderSpec { region: Some("us-east-1".into()), aws_access_key_id: Some("AKID".into()), ..spec };
        assert!(Provider::with_env("b", &half, &none).is_err_and(|e| e.contains("both")));
    }
}
