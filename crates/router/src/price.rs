//! What a call costs: per-token rates, a long-context tier, and the built-in table of providers'
//! list prices (`prices/builtin.json`, versioned by its date), which a target's own `price`
//! in the config overrides.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;
use switchyard_types::{Cost, Usage};

/// Dollars per million tokens. Cached reads, cache writes and reasoning cost the input (or
/// output) price unless priced on their own.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    pub cache_read_per_mtok: Option<f64>,
    pub cache_write_per_mtok: Option<f64>,
    pub reasoning_per_mtok: Option<f64>,
}

/// Higher rates for a whole request whose prompt is longer than a threshold (Gemini Pro and
/// Claude's 1M-token context bill so).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LongContext {
    pub above_input_tokens: u64,
    pub rates: Rates,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Price {
    pub rates: Rates,
    pub long_context: Option<LongContext>,
}

impl Price {
    /// A price with input and output rates only.
    pub fn flat(input_per_mtok: f64, output_per_mtok: f64) -> Price {
        Price { rates: Rates { input_per_mtok, output_per_mtok, ..Rates::default() }, long_context: None }
    }

    /// The rates a prompt of this many tokens (cached ones included) is billed at.
    pub fn rates_for(&self, input_tokens: u64) -> &Rates {
        match &self.long_context {
            Some(long) if input_tokens > long.above_input_tokens => &long.rates,
            _ => &self.rates,
        }
    }

    /// What a call with this usage costs. Input counts cached tokens too (the IR's convention),
    /// so they are taken out of it and priced at their own rate; output includes reasoning,
    /// which is priced on its own only where a provider bills it differently.
    pub fn cost(&self, u: &Usage) -> Cost {
        let r = self.rates_for(u.input_tokens);
        let per = |tokens: u64, price: f64| tokens as f64 * price / 1e6;
        let cached = u.cache_read_tokens.saturating_add(u.cache_write_tokens);
        let input = per(u.input_tokens.saturating_sub(cached), r.input_per_mtok);
        let reasoning = u.reasoning_tokens.min(u.output_tokens);
        let output = per(u.output_tokens - reasoning, r.output_per_mtok)
            + per(reasoning, r.reasoning_per_mtok.unwrap_or(r.output_per_mtok));
        let cache_read = per(u.cache_read_tokens, r.cache_read_per_mtok.unwrap_or(r.input_per_mtok));
        let cache_write = per(u.cache_write_tokens, r.cache_write_per_mtok.unwrap_or(r.input_per_mtok));
        Cost { input, output, cache_read, cache_write, total: input + output + cache_read + cache_write }
    }

    /// The most a request of `input_tokens` that may generate `output_tokens` can cost: every
    /// input token uncached (or written to the cache, if that is dearer), every output token at
    /// the dearer of the output and reasoning rates.
    pub fn worst_case(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        let r = self.rates_for(input_tokens);
        let input = r.input_per_mtok.max(r.cache_write_per_mtok.unwrap_or(0.0));
        let output = r.output_per_mtok.max(r.reasoning_per_mtok.unwrap_or(0.0));
        (input_tokens as f64 * input + output_tokens as f64 * output) / 1e6
    }
}

/// The built-in list prices, by provider and model.
#[derive(Debug, Default)]
pub struct PriceTable {
    version: String,
    rows: HashMap<(String, String), Price>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    version: String,
    #[allow(dead_code)]
    note: String,
    models: Vec<Row>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    provider: String,
    model: String,
    #[serde(default)]
    aliases: Vec<String>,
    input: f64,
    output: f64,
    #[serde(default)]
    cache_read: Option<f64>,
    #[serde(default)]
    cache_write: Option<f64>,
    #[serde(default)]
    reasoning: Option<f64>,
    #[serde(default)]
    tiers: Vec<Tier>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tier {
    above_input_tokens: u64,
    input: f64,
    output: f64,
    #[serde(default)]
    cache_read: Option<f64>,
    #[serde(default)]
    cache_write: Option<f64>,
    #[serde(default)]
    reasoning: Option<f64>,
}

fn rates(input: f64, output: f64, cache_read: Option<f64>, cache_write: Option<f64>, reasoning: Option<f64>) -> Rates {
    Rates {
        input_per_mtok: input,
        output_per_mtok: output,
        cache_read_per_mtok: cache_read,
        cache_write_per_mtok: cache_write,
        reasoning_per_mtok: reasoning,
    }
}

const BUILTIN: &str = include_str!("../prices/builtin.json");

/// Bedrock's cross-region inference profiles bill as the model they name.
const REGION_PREFIXES: &[&str] = &["us.", "eu.", "apac.", "jp.", "au.", "ca.", "us-gov.", "global."];

impl PriceTable {
    /// The table shipped in the binary.
    pub fn builtin() -> &'static PriceTable {
        static TABLE: OnceLock<PriceTable> = OnceLock::new();
        TABLE.get_or_init(|| PriceTable::parse(BUILTIN).unwrap_or_default())
    }

    fn parse(json: &str) -> Result<PriceTable, String> {
        let file: TableFile = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut rows = HashMap::new();
        for row in file.models {
            if row.tiers.len() > 1 {
                return Err(format!("{}/{}: one long-context tier at most", row.provider, row.model));
            }
            let price = Price {
                rates: rates(row.input, row.output, row.cache_read, row.cache_write, row.reasoning),
                long_context: row.tiers.first().map(|t| LongContext {
                    above_input_tokens: t.above_input_tokens,
                    rates: rates(t.input, t.output, t.cache_read, t.cache_write, t.reasoning),
                }),
            };
            for model in std::iter::once(&row.model).chain(&row.aliases) {
                if rows.insert((row.provider.clone(), model.clone()), price).is_some() {
                    return Err(format!("{}/{model} is listed twice", row.provider));
                }
            }
        }
        Ok(PriceTable { version: file.version, rows })
    }

    /// The table's date: which list prices it holds.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The list price of `model` at a provider of this kind (`openai`, `azure-openai`,
    /// `bedrock`, …). Azure bills OpenAI's models at OpenAI's list price when the deployment is
    /// named after the model; Bedrock's region prefixes and Gemini's `models/` are looked past.
    pub fn lookup(&self, provider_kind: &str, model: &str) -> Option<Price> {
        let provider = match provider_kind {
            "azure-openai" => "openai",
            "vertex" if model.starts_with("claude") => "anthropic",
            "vertex" => "gemini",
            other => other,
        };
        let mut model = model.strip_prefix("models/").unwrap_or(model);
        if provider == "bedrock" {
            model = REGION_PREFIXES.iter().find_map(|p| model.strip_prefix(p)).unwrap_or(model);
        }
        self.rows.get(&(provider.to_string(), model.to_string())).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_tokens_are_priced_at_their_own_rate() {
        let p = Price {
            rates: Rates {
                input_per_mtok: 2.0,
                output_per_mtok: 8.0,
                cache_read_per_mtok: Some(0.5),
                ..Rates::default()
            },
            long_context: None,
        };
        let u = Usage {
            input_tokens: 1_000_000,
            output_tokens: 500_000,
            cache_read_tokens: 400_000,
            cache_write_tokens: 100_000,
            reasoning_tokens: 0,
        };
        let c = p.cost(&u);
        assert!((c.input - 1.0).abs() < 1e-12, "500k uncached at $2");
        assert!((c.cache_read - 0.2).abs() < 1e-12);
        assert!((c.cache_write - 0.2).abs() < 1e-12, "cache writes default to the input price");
        assert!((c.output - 4.0).abs() < 1e-12);
        assert!((c.total - 5.4).abs() < 1e-12);
    }

    #[test]
    fn long_prompts_switch_the_whole_request_to_the_long_context_rates() {
        let p = Price {
            rates: Rates { input_per_mtok: 1.25, output_per_mtok: 10.0, ..Rates::default() },
            long_context: Some(LongContext {
                above_input_tokens: 200_000,
                rates: Rates { input_per_mtok: 2.5, output_per_mtok: 15.0, ..Rates::default() },
            }),
        };
        let short = Usage { input_tokens: 200_000, output_tokens: 1_000, ..Usage::default() };
        let long = Usage { input_tokens: 200_001, output_tokens: 1_000, ..Usage::default() };
        assert!((p.cost(&short).total - (0.25 + 0.01)).abs() < 1e-12);
        assert!((p.cost(&long).total - (200_001.0 * 2.5 / 1e6 + 0.015)).abs() < 1e-12);
        assert!((p.worst_case(300_000, 10_000) - (0.75 + 0.15)).abs() < 1e-12);
    }

    #[test]
    fn reasoning_is_output_unless_priced_apart() {
        let mut p = Price::flat(1.0, 4.0);
        let u = Usage { input_tokens: 0, output_tokens: 1_000_000, reasoning_tokens: 250_000, ..Usage::default() };
        assert!((p.cost(&u).output - 4.0).abs() < 1e-12);
        p.rates.reasoning_per_mtok = Some(8.0);
        assert!((p.cost(&u).output - (3.0 + 2.0)).abs() < 1e-12);
    }

    #[test]
    fn the_builtin_table_parses_and_finds_models_past_their_prefixes() {
        let table = PriceTable::parse(BUILTIN).unwrap_or_else(|e| panic!("prices/builtin.json: {e}"));
        assert!(table.len() >= 30, "{} rows", table.len());
        assert!(table.version().starts_with("20"), "dated: {}", table.version());
        let direct = table.lookup("openai", "gpt-4o");
        assert!(direct.is_some());
        assert_eq!(table.lookup("azure-openai", "gpt-4o"), direct);
        assert_eq!(table.lookup("openai", "no-such-model"), None);
        let bedrock = table.rows.keys().find(|(p, _)| p == "bedrock").map(|(_, m)| m.clone());
        if let Some(m) = bedrock {
            assert!(table.lookup("bedrock", &format!("us.{m}")).is_some());
        }
        for ((provider, model), price) in &table.rows {
            let r = price.rates;
            assert!(r.input_per_mtok >= 0.0 && r.output_per_mtok >= 0.0, "{provider}/{model}");
            if let Some(read) = r.cache_read_per_mtok {
                assert!(read <= r.input_per_mtok, "{provider}/{model}: a cached read dearer than input");
            }
        }
    }

    #[test]
    fn a_malformed_table_says_why() {
        assert!(PriceTable::parse("{}").is_err());
        let twice = r#"{"version":"x","note":"","models":[
            {"provider":"p","model":"m","input":1,"output":2},
            {"provider":"p","model":"m","input":1,"output":2}]}"#;
        assert!(PriceTable::parse(twice).is_err_and(|e| e.contains("twice")));
    }
}
