//! Prices from LiteLLM's `model_prices_and_context_window.json`, so users keep their price data.
//!
//! Each entry is keyed by a model id, often with a provider prefix (`azure/gpt-4o`,
//! `bedrock/...`, `vertex_ai/...`), and gives USD per *token*: `input_cost_per_token`,
//! `output_cost_per_token`, `cache_read_input_token_cost`, `cache_creation_input_token_cost`,
//! and long-context tiers as `<that>_above_<N>[k]_tokens`. Entries without an input price
//! (images, audio, the `sample_spec` header) are skipped; every other field is ignored.

use super::pricing::{PriceSpec, TierSpec};
use crate::providers::kinds;
use std::collections::{BTreeMap, HashMap};

/// The imported entries that carry token prices, by LiteLLM key.
#[derive(Debug, Default)]
pub struct PriceList {
    entries: HashMap<String, PriceSpec>,
}

const INPUT: &str = "input_cost_per_token";
const OUTPUT: &str = "output_cost_per_token";
const CACHE_READ: &str = "cache_read_input_token_cost";
const CACHE_WRITE: &str = "cache_creation_input_token_cost";

impl PriceList {
    pub fn parse(json: &str) -> Result<PriceList, String> {
        let all: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(json).map_err(|e| format!("not a LiteLLM price file: {e}"))?;
        let entries = all
            .into_iter()
            .filter(|(key, _)| key != "sample_spec")
            .filter_map(|(key, entry)| Some((key, price_of(entry.as_object()?)?)))
            .collect();
        Ok(PriceList { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The price of a deployment: `key` when given (a deployment's `price_as`), else the
    /// provider kind's prefixed model id, else the bare model id. Returns the key that matched.
    pub fn lookup(
        &self,
        kind: &str,
        model: &str,
        key: Option<&str>,
    ) -> Option<(String, &PriceSpec)> {
        let candidates = match key {
            Some(k) => vec![k.to_owned()],
            None => candidates(kind, model),
        };
        candidates
            .into_iter()
            .find_map(|c| self.entries.get(&c).map(|p| (c, p)))
    }
}

/// LiteLLM keys a deployment may be priced under, best first: the model id behind each of
/// its kind's prefixes (`kinds::KINDS`), then the bare id.
pub fn candidates(kind: &str, model: &str) -> Vec<String> {
    let prefixes = kinds::find(kind).map_or(&[][..], |k| k.litellm_prefixes);
    prefixes
        .iter()
        .map(|prefix| format!("{prefix}{model}"))
        .chain([model.to_owned()])
        .collect()
}

/// A LiteLLM number: JSON numbers, or numbers written as strings (`"3e-7"`).
fn number(entry: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<f64> {
    match entry.get(key)? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|v| v.is_finite() && *v >= 0.0)
}

/// USD per token → USD per million tokens, kept to the precision prices are held at.
fn per_million(per_token: f64) -> f64 {
    (per_token * 1e12).round() / 1e6
}

/// The token price of one LiteLLM entry (a price-file entry, or a deployment's custom
/// pricing in `litellm_params`/`model_info`); `None` without an input price.
pub fn price_of(entry: &serde_json::Map<String, serde_json::Value>) -> Option<PriceSpec> {
    let get = |key: &str| number(entry, key).map(per_million);
    let mut thresholds: Vec<u64> = entry.keys().filter_map(|k| tier_threshold(k)).collect();
    thresholds.sort_unstable();
    thresholds.dedup();
    let tiers = thresholds
        .into_iter()
        .map(|n| {
            let above = |base: &str| get(&tier_key(base, n, entry));
            TierSpec {
                above_prompt_tokens: n,
                input: above(INPUT),
                output: above(OUTPUT),
                cache_read: above(CACHE_READ),
                cache_write: above(CACHE_WRITE),
            }
        })
        .collect();
    Some(PriceSpec {
        input: get(INPUT)?,
        // LiteLLM bills a missing output price as 0 (embedding models).
        output: get(OUTPUT).unwrap_or(0.0),
        cache_read: get(CACHE_READ),
        cache_write: get(CACHE_WRITE),
        tiers,
    })
}

/// Whether [`price_of`] reads `key`: a token price or one of its prompt-size tiers.
pub fn is_price_field(key: &str) -> bool {
    [INPUT, OUTPUT, CACHE_READ, CACHE_WRITE].contains(&key) || tier_threshold(key).is_some()
}

/// The prompt size a `<base>_above_<N>[k]_tokens` key starts at, for the four token bases.
/// Service-tier variants (`..._priority`) and the one-hour cache TTL
/// (`cache_creation_input_token_cost_above_1hr`) are not prompt-size tiers.
fn tier_threshold(key: &str) -> Option<u64> {
    let rest = [INPUT, OUTPUT, CACHE_READ, CACHE_WRITE]
        .iter()
        .find_map(|base| key.strip_prefix(base)?.strip_prefix("_above_"))?;
    let size = rest.strip_suffix("_tokens")?;
    let (digits, scale) = match size.strip_suffix('k') {
        Some(d) => (d, 1000),
        None => (size, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

/// The key of `base`'s tier at `n` tokens as this entry spells it (`200k` or `200000`).
fn tier_key(base: &str, n: u64, entry: &serde_json::Map<String, serde_json::Value>) -> String {
    let plain = format!("{base}_above_{n}_tokens");
    if n.is_multiple_of(1000) {
        let short = format!("{base}_above_{}k_tokens", n / 1000);
        if entry.contains_key(&short) {
            return short;
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    /// A few entries in the real file's shape (values as LiteLLM publishes them, per token).
    const FIXTURE: &str = r#"{
        "sample_spec": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0,
                        "litellm_provider": "one of https://docs.litellm.ai/docs/providers"},
        "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
                   "cache_read_input_token_cost": 1.25e-06, "litellm_provider": "openai",
                   "mode": "chat", "max_input_tokens": 128000, "supports_vision": true},
        "azure/gpt-4o": {"input_cost_per_token": 2.75e-06, "output_cost_per_token": 1.1e-05,
                         "litellm_provider": "azure", "mode": "chat"},
        "claude-sonnet-4-5": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
            "cache_read_input_token_cost": 3e-07, "cache_creation_input_token_cost": 3.75e-06,
            "cache_creation_input_token_cost_above_1hr": 6e-06,
            "input_cost_per_token_above_200k_tokens": 6e-06,
            "output_cost_per_token_above_200k_tokens": 2.25e-05,
            "cache_read_input_token_cost_above_200k_tokens": 6e-07,
            "cache_creation_input_token_cost_above_200k_tokens": 7.5e-06,
            "litellm_provider": "anthropic", "mode": "chat"},
        "gemini/gemini-2.5-pro": {"input_cost_per_token": "1.25e-6", "output_cost_per_token": 1e-05,
            "input_cost_per_token_above_200k_tokens": 2.5e-06,
            "output_cost_per_token_above_200k_tokens": 1.5e-05,
            "input_cost_per_token_priority": 2.5e-06,
            "litellm_provider": "gemini", "mode": "chat"},
        "text-embedding-3-small": {"input_cost_per_token": 2e-08, "litellm_provider": "openai",
                                   "mode": "embedding"},
        "dall-e-3": {"output_cost_per_image": 0.04, "litellm_provider": "openai"},
        "odd": {"input_cost_per_token": -1, "output_cost_per_token": 1e-06},
        "odd-tier": {"input_cost_per_token": 1e-06, "input_cost_per_token_above_128_tokens": 2e-06,
                     "input_cost_per_token_above_k_tokens": 3e-06}
    }"#;

    #[test]
    fn imports_token_prices_per_million() {
        let list = PriceList::parse(FIXTURE).unwrap();
        // sample_spec, dall-e-3 (no token price) and odd (negative input) are skipped
        assert_eq!(list.len(), 6);
        let (key, gpt) = list.lookup("openai", "gpt-4o", None).unwrap();
        assert_eq!(key, "gpt-4o");
        assert_eq!(
            gpt,
            &PriceSpec {
                input: 2.5,
                output: 10.0,
                cache_read: Some(1.25),
                cache_write: None,
                tiers: vec![],
            }
        );
        let (_, embed) = list
            .lookup("openai", "text-embedding-3-small", None)
            .unwrap();
        assert_eq!((embed.input, embed.output), (0.02, 0.0));
    }

    #[test]
    fn price_fields_are_the_token_prices_and_their_tiers() {
        for key in [
            "input_cost_per_token",
            "cache_creation_input_token_cost",
            "output_cost_per_token_above_200k_tokens",
            "input_cost_per_token_above_128000_tokens",
        ] {
            assert!(is_price_field(key), "{key}");
        }
        for key in [
            "input_cost_per_token_priority",
            "cache_creation_input_token_cost_above_1hr",
            "input_cost_per_second",
            "mode",
        ] {
            assert!(!is_price_field(key), "{key}");
        }
    }

    #[test]
    fn imports_long_context_tiers_but_not_ttls_or_service_tiers() {
        let list = PriceList::parse(FIXTURE).unwrap();
        let (_, claude) = list.lookup("anthropic", "claude-sonnet-4-5", None).unwrap();
        assert_eq!(
            (
                claude.input,
                claude.output,
                claude.cache_read,
                claude.cache_write
            ),
            (3.0, 15.0, Some(0.3), Some(3.75))
        );
        assert_eq!(
            claude.tiers,
            [TierSpec {
                above_prompt_tokens: 200_000,
                input: Some(6.0),
                output: Some(22.5),
                cache_read: Some(0.6),
                cache_write: Some(7.5),
            }]
        );
        let (_, gemini) = list.lookup("gemini", "gemini-2.5-pro", None).unwrap();
        assert_eq!(gemini.input, 1.25, "numbers written as strings");
        assert_eq!(gemini.tiers.len(), 1);
        assert_eq!(gemini.tiers[0].cache_read, None);
        let (_, odd) = list.lookup("openai", "odd-tier", None).unwrap();
        assert_eq!(odd.tiers.len(), 1);
        assert_eq!(odd.tiers[0].above_prompt_tokens, 128);
        // And the imported price bills the way LiteLLM's tiers do.
        let price = crate::usage::pricing::Price::from_spec(claude).unwrap();
        let usage = crate::usage::Usage {
            prompt_tokens: 250_000,
            completion_tokens: 1000,
            cached_tokens: 50_000,
            cache_write_tokens: 0,
            reasoning_tokens: 0,
        };
        // 200000*6 + 50000*0.6 + 1000*22.5 = 1200000 + 30000 + 22500 → $1.2525
        assert_eq!(price.cost(&usage).usd(), "1.2525");
    }

    #[test]
    fn matches_deployments_by_provider_prefix_then_bare_id() {
        let list = PriceList::parse(FIXTURE).unwrap();
        let key = |kind: &str, model: &str, price_as: Option<&str>| {
            list.lookup(kind, model, price_as).map(|(k, _)| k)
        };
        assert_eq!(
            key("azure", "gpt-4o", None).as_deref(),
            Some("azure/gpt-4o")
        );
        assert_eq!(key("openai", "gpt-4o", None).as_deref(), Some("gpt-4o"));
        assert_eq!(
            key("gemini", "gemini-2.5-pro", None).as_deref(),
            Some("gemini/gemini-2.5-pro")
        );
        assert_eq!(key("azure", "my-prod-deployment", None), None);
        assert_eq!(
            key("azure", "my-prod-deployment", Some("azure/gpt-4o")).as_deref(),
            Some("azure/gpt-4o")
        );
        assert_eq!(key("groq", "gpt-4o", Some("nope")), None);
        assert_eq!(
            candidates("fireworks", "accounts/fireworks/models/x"),
            [
                "fireworks_ai/accounts/fireworks/models/x",
                "accounts/fireworks/models/x"
            ]
        );
        assert_eq!(candidates("openai_compatible", "m"), ["m"]);
        assert!(PriceList::parse("[1]").is_err());
    }
}
