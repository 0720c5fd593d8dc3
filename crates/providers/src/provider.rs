//! What a provider is: its kind, where it lives and how it authenticates.

use std::collections::BTreeMap;

use serde::Deserialize;
use switchyard_types::Protocol;

/// The `providers:` entries of the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    #[serde(rename = "type")]
    pub kind: ProviderType,
    /// The credential. Optional for local servers that take none.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Overrides the kind's default URL (required for `openai-compatible` and `azure-openai`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Azure OpenAI's `api-version` query parameter.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Extra headers sent with every request (organisation ids, gateway tokens, …).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
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
            ProviderType::AzureOpenai | ProviderType::OpenaiCompatible => return None,
        })
    }

    /// Hosted services need a key; local servers usually do not.
    pub fn needs_api_key(self) -> bool {
        !matches!(
            self,
            ProviderType::OpenaiCompatible | ProviderType::Vllm | ProviderType::Ollama | ProviderType::LlamaCpp
        )
    }

    pub fn protocol(self) -> Protocol {
        Protocol::OpenAi
    }
}

/// A provider ready to call.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub kind: ProviderType,
    base_url: String,
    api_key: Option<String>,
    api_version: Option<String>,
    headers: Vec<(String, String)>,
}

/// Azure's `api-version` when the config names none: the current GA version as of this release.
const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

impl Provider {
    pub fn new(name: &str, spec: &ProviderSpec) -> Result<Provider, String> {
        let base_url = match (&spec.base_url, spec.kind.default_base_url()) {
            (Some(url), _) => url.clone(),
            (None, Some(url)) => url.to_string(),
            (None, None) => return Err(format!("provider '{name}' of type {} needs a base_url", spec.kind.as_str())),
        };
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(format!("provider '{name}': base_url must start with http:// or https://"));
        }
        let api_key = spec.api_key.clone().filter(|k| !k.is_empty());
        if api_key.is_none() && spec.kind.needs_api_key() {
            return Err(format!("provider '{name}' of type {} needs an api_key", spec.kind.as_str()));
        }
        for (k, v) in &spec.headers {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err() || http::HeaderValue::from_str(v).is_err() {
                return Err(format!("provider '{name}': header '{k}' is not a valid HTTP header"));
            }
        }
        Ok(Provider {
            name: name.to_string(),
            kind: spec.kind,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            api_version: spec.api_version.clone(),
            headers: spec.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
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

    /// Adds the provider's credential and headers to a request.
    pub fn authorize(&self, mut req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        match (&self.api_key, self.kind) {
            (Some(key), ProviderType::AzureOpenai) => req.header("api-key", key),
            (Some(key), _) => req.bearer_auth(key),
            (None, _) => req,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: ProviderType) -> ProviderSpec {
        ProviderSpec { kind, api_key: Some("k".into()), base_url: None, api_version: None, headers: BTreeMap::new() }
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
}
