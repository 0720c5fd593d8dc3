//! The running configuration: the config file compiled into routes and keys, swapped whole on
//! reload so a request always sees one consistent version.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use switchyard_policy::{KeyRing, ModelAllowList, Principal};
use switchyard_providers::{Provider, ProviderSpec, ProviderType, Timeouts};
use switchyard_router::{Catalogue, ModelRoute, RetryOn, RetryPolicy, Strategy, Target};

use crate::config::{ConfigFile, RetryCondition, Routing};

pub const DEFAULT_MAX_BODY: usize = 32 * 1024 * 1024;
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Runtime {
    pub catalogue: Catalogue,
    pub keys: KeyRing,
    pub max_body_bytes: usize,
    pub client_timeout: Duration,
    /// Where this config came from, for logs and `/health/ready`.
    pub source: String,
    /// Things worth telling the operator that do not stop the gateway.
    pub warnings: Vec<String>,
}

impl Runtime {
    /// Compiles a config file, or lists everything wrong with it.
    pub fn build(cfg: &ConfigFile, source: &str) -> Result<Runtime, Vec<String>> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let providers = build_providers(&cfg.providers, &mut errors);
        let mut catalogue = Catalogue::new(providers.clone(), None, Timeouts::default());
        let names: HashSet<&str> = cfg.models.iter().map(|m| m.name.as_str()).collect();
        let mut seen = HashSet::new();
        for m in &cfg.models {
            if !seen.insert(m.name.as_str()) {
                errors.push(format!("model '{}' is defined twice", m.name));
                continue;
            }
            if m.targets.is_empty() {
                errors.push(format!("model '{}' has no targets", m.name));
            }
            let mut targets = Vec::new();
            for t in &m.targets {
                match providers.get(&t.provider) {
                    Some(p) => targets.push(Arc::new(Target {
                        provider: p.clone(),
                        model: t.model.clone(),
                        weight: t.weight.unwrap_or(1),
                        health: Default::default(),
                    })),
                    None if cfg.providers.contains_key(&t.provider) => {} // already reported
                    None => errors.push(format!("model '{}': target provider '{}' is not defined", m.name, t.provider)),
                }
            }
            for f in &m.fallbacks {
                if !names.contains(f.as_str()) {
                    errors.push(format!("model '{}': fallback '{f}' is not a defined model", m.name));
                }
            }
            let strategy = match m.routing.unwrap_or(Routing::Weighted) {
                Routing::Weighted => Strategy::Weighted,
                Routing::RoundRobin => Strategy::RoundRobin,
                other => {
                    warnings.push(format!(
                        "model '{}': routing '{}' is not available in this version; weighted routing is used",
                        m.name,
                        match other {
                            Routing::LeastBusy => "least-busy",
                            Routing::Latency => "latency",
                            _ => "cost",
                        }
                    ));
                    Strategy::Weighted
                }
            };
            let retry = match &m.retry {
                None => RetryPolicy::default(),
                Some(r) => RetryPolicy {
                    attempts: r.attempts,
                    on: match &r.on {
                        None => RetryPolicy::default().on,
                        Some(on) => on.iter().filter_map(|c| retry_on(c, &m.name, &mut errors)).collect(),
                    },
                },
            };
            let defaults = Timeouts::default();
            let t = m.timeout.clone().unwrap_or_default();
            let timeouts = Timeouts {
                first_byte: t.first_token.map_or(defaults.first_byte, |s| s.0),
                stall: t.stall.map_or(defaults.stall, |s| s.0),
                total: t.total.map_or(defaults.total, |s| s.0),
            };
            catalogue.add(ModelRoute::new(m.name.clone(), targets, strategy, m.fallbacks.clone(), retry, timeouts));
        }
        let keys = build_keys(cfg, &mut errors);
        if cfg.keys.iter().any(|k| k.limits.is_some() || k.budget.is_some()) {
            warnings.push("key limits and budgets are accepted but not enforced in this version".into());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Runtime {
            catalogue,
            keys,
            max_body_bytes: cfg.server.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY),
            client_timeout: cfg.server.client_timeout.map_or(DEFAULT_CLIENT_TIMEOUT, |s| s.0),
            source: source.to_string(),
            warnings,
        })
    }

    /// Zero-config mode: providers from the usual environment variables; `provider/model`
    /// addresses a provider directly and a bare model name goes to the first one found.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Runtime {
        let mut specs = BTreeMap::new();
        let mut order = Vec::new();
        let presets = [
            ("openai", ProviderType::Openai, "OPENAI_API_KEY", Some("OPENAI_BASE_URL")),
            ("azure", ProviderType::AzureOpenai, "AZURE_OPENAI_API_KEY", Some("AZURE_OPENAI_ENDPOINT")),
            ("groq", ProviderType::Groq, "GROQ_API_KEY", None),
            ("mistral", ProviderType::Mistral, "MISTRAL_API_KEY", None),
            ("deepseek", ProviderType::Deepseek, "DEEPSEEK_API_KEY", None),
            ("together", ProviderType::Together, "TOGETHER_API_KEY", None),
            ("fireworks", ProviderType::Fireworks, "FIREWORKS_API_KEY", None),
            ("openrouter", ProviderType::Openrouter, "OPENROUTER_API_KEY", None),
        ];
        for (name, kind, key_var, url_var) in presets {
            let Some(key) = env(key_var).filter(|k| !k.is_empty()) else { continue };
            let spec = ProviderSpec {
                kind,
                api_key: Some(key),
                base_url: url_var.and_then(env).filter(|u| !u.is_empty()),
                api_version: (kind == ProviderType::AzureOpenai).then(|| env("AZURE_OPENAI_API_VERSION")).flatten(),
                headers: BTreeMap::new(),
            };
            specs.insert(name.to_string(), spec);
            order.push(name);
        }
        let mut errors = Vec::new();
        let providers = build_providers(&specs, &mut errors);
        let default = order.into_iter().find(|n| providers.contains_key(*n)).map(str::to_string);
        let mut keys = KeyRing::default();
        if let Some(master) = env("SWITCHYARD_MASTER_KEY").filter(|k| !k.is_empty()) {
            keys.insert(&master, Principal { name: "master".into(), models: ModelAllowList::All });
        }
        let mut warnings = errors;
        if providers.is_empty() {
            warnings.push(
                "no provider is configured: set OPENAI_API_KEY (or another provider's key) or write a config file"
                    .into(),
            );
        }
        Runtime {
            catalogue: Catalogue::new(providers, default, Timeouts::default()),
            keys,
            max_body_bytes: DEFAULT_MAX_BODY,
            client_timeout: DEFAULT_CLIENT_TIMEOUT,
            source: "environment".into(),
            warnings,
        }
    }
}

fn build_providers(specs: &BTreeMap<String, ProviderSpec>, errors: &mut Vec<String>) -> HashMap<String, Arc<Provider>> {
    let mut out = HashMap::new();
    for (name, spec) in specs {
        if name.is_empty() || name.contains('/') {
            errors.push(format!("provider name '{name}' must be non-empty and contain no '/'"));
            continue;
        }
        match Provider::new(name, spec) {
            Ok(p) => {
                out.insert(name.clone(), Arc::new(p));
            }
            Err(e) => errors.push(e),
        }
    }
    out
}

fn build_keys(cfg: &ConfigFile, errors: &mut Vec<String>) -> KeyRing {
    let mut keys = KeyRing::default();
    if let Some(master) = cfg.server.master_key.as_deref() {
        if master.is_empty() {
            errors.push("server.master_key is empty: remove it or give it a value".into());
        } else {
            keys.insert(master, Principal { name: "master".into(), models: ModelAllowList::All });
        }
    }
    let mut names = HashSet::new();
    for k in &cfg.keys {
        if !names.insert(k.name.as_str()) {
            errors.push(format!("key name '{}' is used twice", k.name));
        }
        if k.key.len() < 8 {
            errors.push(format!("key '{}': the key must be at least 8 characters", k.name));
            continue;
        }
        let principal = Principal { name: k.name.clone(), models: ModelAllowList::from_patterns(k.models.clone()) };
        if !keys.insert(&k.key, principal) {
            errors.push(format!("key '{}': the same key value is used by another key", k.name));
        }
    }
    keys
}

fn retry_on(c: &RetryCondition, model: &str, errors: &mut Vec<String>) -> Option<RetryOn> {
    match c {
        RetryCondition::Status(429) => Some(RetryOn::RateLimited),
        RetryCondition::Status(s) if (400..600).contains(s) => Some(RetryOn::Status(*s)),
        RetryCondition::Named(n) => match n.as_str() {
            "5xx" => Some(RetryOn::ServerError),
            "429" => Some(RetryOn::RateLimited),
            "timeout" => Some(RetryOn::Timeout),
            "connect" => Some(RetryOn::Connect),
            other => {
                errors.push(format!(
                    "model '{model}': retry.on '{other}' is not one of 429, 5xx, timeout, connect or a status"
                ));
                None
            }
        },
        RetryCondition::Status(s) => {
            errors.push(format!("model '{model}': retry.on {s} is not an HTTP error status"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn build(text: &str) -> Result<Runtime, Vec<String>> {
        let cfg = parse("t.yaml", text, &|_| None).map_err(|e| vec![e.to_string()])?;
        Runtime::build(&cfg, "t.yaml")
    }

    #[test]
    fn reports_every_broken_reference() {
        let errors = build(
            "providers:\n  p: { type: openai-compatible, base_url: 'http://127.0.0.1:1/v1' }\n\
             models:\n  - name: a\n    targets: [{ provider: nope, model: x }]\n    fallbacks: [ghost]\n\
             keys:\n  - { name: k, key: short }\n",
        )
        .err()
        .unwrap_or_default();
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn zero_config_uses_environment_keys() {
        let env = |v: &str| match v {
            "GROQ_API_KEY" => Some("gsk".to_string()),
            "SWITCHYARD_MASTER_KEY" => Some("master-key-1".to_string()),
            _ => None,
        };
        let rt = Runtime::from_env(&env);
        assert!(rt.catalogue.provider("groq").is_some());
        assert!(rt.catalogue.plan("llama-3.3-70b").is_ok(), "bare names go to the default provider");
        assert!(!rt.keys.is_open());
    }
}
