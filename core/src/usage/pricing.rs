//! Prices and the cost of one answer.
//!
//! Prices are written in USD per million tokens (`price:` on a model or a deployment) and held
//! as integer pico-dollars (1e-12 USD) per token, so a cost is an exact integer sum: no float
//! drift however many requests are added up. A price is kept to 1e-6 USD per million tokens
//! (finer digits are rounded to the nearest), which is 1 pico-dollar per token.
//!
//! Cost of one answer, at the rates of the tier its prompt size falls in:
//!
//! ```text
//! (prompt - cached - cache_write) * input + cached * cache_read
//!   + cache_write * cache_write_rate + completion * output      (completion includes reasoning)
//! ```
//!
//! so a cached token is billed once, at the cache rate, never again at the input rate.
//! An unset `cache_read` or `cache_write` rate is the input rate: a missing rate never hides
//! spend. (LiteLLM bills an undeclared cache rate at 0 on its flat prices and at the input rate
//! in its tiered tables; we take the second rule everywhere.) A tier applies to the whole
//! request once `prompt_tokens > above_prompt_tokens`, as providers bill long contexts; a rate
//! the tier does not set is the base price's.

use super::Usage;
use serde::{Deserialize, Serialize};

/// A price as written in the filter YAML: USD per million tokens.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSpec {
    pub input: f64,
    pub output: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<TierSpec>,
}

/// Rates that replace the base price once the prompt is larger than `above_prompt_tokens`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TierSpec {
    pub above_prompt_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
}

/// Pico-dollars per token (1 = 1e-12 USD = 1e-6 USD per million tokens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

/// A validated price: base rates and tiers by ascending threshold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Price {
    pub base: Rates,
    pub tiers: Vec<(u64, Rates)>,
}

/// Largest accepted rate: 1,000,000 USD per million tokens.
const MAX_USD_PER_MILLION: f64 = 1e6;

/// USD per million tokens → pico-dollars per token, or why not.
pub fn pico_per_token(usd_per_million: f64) -> Result<u64, String> {
    if !(usd_per_million.is_finite() && usd_per_million >= 0.0) {
        return Err(format!(
            "must be a number of USD per million tokens, at least 0 (got {usd_per_million})"
        ));
    }
    if usd_per_million > MAX_USD_PER_MILLION {
        return Err(format!(
            "{usd_per_million} USD per million tokens is not a plausible price"
        ));
    }
    Ok((usd_per_million * 1e6).round() as u64)
}

impl Price {
    /// Validates a written price; problems come as (sub-path, message), e.g. `tiers[0].input`.
    pub fn from_spec(spec: &PriceSpec) -> Result<Price, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut rate = |path: String, value: f64| {
            pico_per_token(value).unwrap_or_else(|m| {
                problems.push((path, m));
                0
            })
        };
        let input = rate("input".into(), spec.input);
        let base = Rates {
            input,
            output: rate("output".into(), spec.output),
            cache_read: spec
                .cache_read
                .map_or(input, |v| rate("cache_read".into(), v)),
            cache_write: spec
                .cache_write
                .map_or(input, |v| rate("cache_write".into(), v)),
        };
        let mut tiers = Vec::new();
        for (i, t) in spec.tiers.iter().enumerate() {
            let mut or_base = |field: &str, value: Option<f64>, base: u64| {
                value.map_or(base, |v| rate(format!("tiers[{i}].{field}"), v))
            };
            let rates = Rates {
                input: or_base("input", t.input, base.input),
                output: or_base("output", t.output, base.output),
                cache_read: or_base("cache_read", t.cache_read, base.cache_read),
                cache_write: or_base("cache_write", t.cache_write, base.cache_write),
            };
            tiers.push((t.above_prompt_tokens, rates));
        }
        for (i, pair) in spec.tiers.windows(2).enumerate() {
            if let [a, b] = pair {
                if b.above_prompt_tokens <= a.above_prompt_tokens {
                    problems.push((
                        format!("tiers[{}].above_prompt_tokens", i + 1),
                        "tiers must be listed by increasing above_prompt_tokens".into(),
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(Price { base, tiers })
        } else {
            Err(problems)
        }
    }

    /// The rates a prompt of this size is billed at.
    pub fn rates_for(&self, prompt_tokens: u64) -> &Rates {
        self.tiers
            .iter()
            .rev()
            .find(|(above, _)| prompt_tokens > *above)
            .map_or(&self.base, |(_, rates)| rates)
    }

    /// What an answer with this usage costs.
    pub fn cost(&self, usage: &Usage) -> Cost {
        let rates = self.rates_for(usage.prompt_tokens);
        // Reported subsets larger than their whole are clamped, never billed twice.
        let cached = usage.cached_tokens.min(usage.prompt_tokens);
        let written = usage.cache_write_tokens.min(usage.prompt_tokens - cached);
        let uncached = usage.prompt_tokens - cached - written;
        let pico = u128::from(uncached) * u128::from(rates.input)
            + u128::from(cached) * u128::from(rates.cache_read)
            + u128::from(written) * u128::from(rates.cache_write)
            + u128::from(usage.completion_tokens) * u128::from(rates.output);
        Cost(u64::try_from(pico).unwrap_or(u64::MAX))
    }
}

/// An amount of money in pico-dollars (1e-12 USD).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cost(pub u64);

impl Cost {
    /// Nano-dollars (1e-9 USD), rounded half up: the unit of the cost counter.
    pub fn nano_usd(self) -> u64 {
        self.0 / 1000 + u64::from(self.0 % 1000 >= 500)
    }

    /// Exact decimal USD, without trailing zeros: `0.000435`, `12`, `0`.
    pub fn usd(self) -> String {
        const SCALE: u64 = 1_000_000_000_000;
        let whole = self.0 / SCALE;
        let fraction = self.0 % SCALE;
        if fraction == 0 {
            return whole.to_string();
        }
        let digits = format!("{fraction:012}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    fn price(yaml: &str) -> Price {
        Price::from_spec(&serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    fn usage(prompt: u64, completion: u64, cached: u64, written: u64, reasoning: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: cached,
            cache_write_tokens: written,
            reasoning_tokens: reasoning,
        }
    }

    #[test]
    fn cost_rules() {
        // Every row worked out by hand.
        struct Case {
            name: &'static str,
            price: &'static str,
            usage: Usage,
            usd: &'static str,
        }
        let anthropic = "{input: 3, output: 15, cache_read: 0.3, cache_write: 3.75}";
        let cases = [
            Case {
                // 1000 in at $2.50/M + 200 out at $10/M = 0.0025 + 0.002
                name: "input and output",
                price: "{input: 2.5, output: 10}",
                usage: usage(1000, 200, 0, 0, 0),
                usd: "0.0045",
            },
            Case {
                // 400 cached at $1.25/M, 600 uncached at $2.50/M, 200 out at $10/M
                name: "cached input at its rate",
                price: "{input: 2.5, output: 10, cache_read: 1.25}",
                usage: usage(1000, 200, 400, 0, 0),
                usd: "0.004",
            },
            Case {
                // 120 in (20 cached): 100*3 + 20*0.3 + 30*15 = 300 + 6 + 450 = 756 µ$ per M
                name: "Anthropic's cache read",
                price: anthropic,
                usage: usage(120, 30, 20, 0, 0),
                usd: "0.000756",
            },
            Case {
                // 1000 in = 200 read + 500 written + 300 plain; 100 out
                // 300*3 + 200*0.3 + 500*3.75 + 100*15 = 900 + 60 + 1875 + 1500 = 4335 → $0.004335
                name: "cache writes",
                price: anthropic,
                usage: usage(1000, 100, 200, 500, 0),
                usd: "0.004335",
            },
            Case {
                name: "reasoning is part of completion: billed once, at the output rate",
                price: "{input: 1.1, output: 4.4}",
                usage: usage(10, 500, 0, 0, 400),
                usd: "0.002211",
            },
            Case {
                // Never free, never twice.
                name: "no cache_read rate: cached tokens at the input rate",
                price: "{input: 2, output: 8}",
                usage: usage(1000, 0, 900, 0, 0),
                usd: "0.002",
            },
            Case {
                name: "subsets larger than the prompt are clamped",
                price: "{input: 2, output: 8, cache_read: 1}",
                usage: usage(10, 0, 50, 0, 0),
                usd: "0.00001",
            },
            Case {
                name: "no tokens",
                price: "{input: 0.15, output: 0.6}",
                usage: usage(0, 0, 0, 0, 0),
                usd: "0",
            },
            Case {
                name: "sub-nano amounts stay exact: 7 tokens at $0.02/M = 1.4e-7",
                price: "{input: 0.02, output: 0}",
                usage: usage(7, 0, 0, 0, 0),
                usd: "0.00000014",
            },
            Case {
                name: "a price of a dollar a token",
                price: "{input: 1000000, output: 0}",
                usage: usage(2, 0, 0, 0, 0),
                usd: "2",
            },
        ];
        for case in cases {
            let got = price(case.price).cost(&case.usage).usd();
            assert_eq!(
                got, case.usd,
                "{}: {} {:?}",
                case.name, case.price, case.usage
            );
        }
    }

    #[test]
    fn tiers_bill_the_whole_request_above_the_threshold() {
        let p = price(
            "{input: 1.25, output: 10, cache_read: 0.31,
              tiers: [{above_prompt_tokens: 200000, input: 2.5, output: 15}]}",
        );
        // At the threshold: base rates. 200000*1.25 + 1000*10 = 250000 + 10000 µ$ → $0.26
        assert_eq!(p.cost(&usage(200_000, 1000, 0, 0, 0)).usd(), "0.26");
        // Above: every token at the tier. 200001*2.5 + 1000*15 = 500002.5 + 15000 → $0.5150025
        assert_eq!(p.cost(&usage(200_001, 1000, 0, 0, 0)).usd(), "0.5150025");
        // The tier sets no cache_read rate: the base's applies.
        // 100001*2.5 + 100000*0.31 = 250002.5 + 31000 → $0.2810025
        assert_eq!(p.cost(&usage(200_001, 0, 100_000, 0, 0)).usd(), "0.2810025");
        let stacked = price(
            "{input: 1, output: 1, tiers: [{above_prompt_tokens: 10, input: 2}, {above_prompt_tokens: 20, input: 3}]}",
        );
        let rates: Vec<u64> = [10, 11, 20, 21]
            .iter()
            .map(|&n| stacked.rates_for(n).input)
            .collect();
        assert_eq!(rates, [1_000_000, 2_000_000, 2_000_000, 3_000_000]);
    }

    #[test]
    fn bad_prices_are_refused_with_paths() {
        let spec: PriceSpec = serde_yaml::from_str(
            "{input: -1, output: .nan, cache_read: 2000000, tiers: [{above_prompt_tokens: 5}, {above_prompt_tokens: 5}]}",
        )
        .unwrap();
        let problems = Price::from_spec(&spec).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "input",
                "output",
                "cache_read",
                "tiers[1].above_prompt_tokens"
            ]
        );
        assert!(serde_yaml::from_str::<PriceSpec>("{input: 1}").is_err());
        assert!(serde_yaml::from_str::<PriceSpec>("{input: 1, output: 2, cached: 1}").is_err());
    }

    #[test]
    fn money_is_exact_and_rounds_half_up_to_nano_dollars() {
        struct Case {
            name: &'static str,
            picos: u64,
            usd: &'static str,
            nano_usd: u64,
        }
        let cases = [
            Case {
                name: "nothing",
                picos: 0,
                usd: "0",
                nano_usd: 0,
            },
            Case {
                name: "a pico-dollar",
                picos: 1,
                usd: "0.000000000001",
                nano_usd: 0,
            },
            Case {
                name: "just under half a nano-dollar rounds down",
                picos: 499,
                usd: "0.000000000499",
                nano_usd: 0,
            },
            Case {
                name: "half a nano-dollar rounds up",
                picos: 500,
                usd: "0.0000000005",
                nano_usd: 1,
            },
            Case {
                name: "one and a half nano-dollars round up",
                picos: 1_500,
                usd: "0.0000000015",
                nano_usd: 2,
            },
            Case {
                name: "a fraction of a cent",
                picos: 756_000_000,
                usd: "0.000756",
                nano_usd: 756_000,
            },
            Case {
                name: "whole dollars",
                picos: 12_000_000_000_000,
                usd: "12",
                nano_usd: 12_000_000_000,
            },
            Case {
                name: "every digit kept",
                picos: 12_345_678_901_234_567,
                usd: "12345.678901234567",
                nano_usd: 12_345_678_901_235,
            },
        ];
        for case in cases {
            let cost = Cost(case.picos);
            assert_eq!(cost.usd(), case.usd, "{}", case.name);
            assert_eq!(
                cost.nano_usd(),
                case.nano_usd,
                "{}: {}",
                case.name,
                case.picos
            );
        }
        // Prices finer than 1e-6 $/M round to the nearest pico-dollar per token.
        assert_eq!(pico_per_token(0.15), Ok(150_000));
        assert_eq!(pico_per_token(0.0000004), Ok(0));
        assert_eq!(pico_per_token(0.0000006), Ok(1));
        // Huge usage saturates instead of wrapping.
        let p = price("{input: 1000000, output: 1000000}");
        assert_eq!(p.cost(&usage(u64::MAX, u64::MAX, 0, 0, 0)), Cost(u64::MAX));
    }
}
