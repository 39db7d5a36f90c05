//! The `auth`, `keys` and `teams` sections: who may call, and the limits and budgets they
//! spend (`limits::setup` turns them into `Limits`).

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    /// Refuse requests without a valid key. Default: true when keys are configured.
    #[serde(default)]
    pub required: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    pub usd: f64,
    pub period: Period,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    pub name: String,
    /// SHA-256 of the key, hex (`switchboard key new` prints it).
    pub sha256: String,
    #[serde(default)]
    pub team: Option<String>,
    /// Globs of the model names the key may use (`claude-*`); absent: every model.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// RFC 3339 date-time or date (00:00 UTC) from which the key is refused.
    #[serde(default)]
    pub expires: Option<String>,
    #[serde(default)]
    pub budget: Option<BudgetSpec>,
    #[serde(default)]
    pub rpm: Option<u64>,
    #[serde(default)]
    pub tpm: Option<u64>,
    #[serde(default)]
    pub max_parallel: Option<u64>,
}

/// Limits shared by every key of the team (each key's own limits apply as well).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamSpec {
    pub name: String,
    #[serde(default)]
    pub budget: Option<BudgetSpec>,
    #[serde(default)]
    pub rpm: Option<u64>,
    #[serde(default)]
    pub tpm: Option<u64>,
    #[serde(default)]
    pub max_parallel: Option<u64>,
}

/// How often a budget starts afresh. Periods are calendar-aligned in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Day,
    /// Monday 00:00 UTC to the next Monday.
    Week,
    /// The 1st 00:00 UTC to the next 1st.
    Month,
    /// Never resets.
    Total,
}

impl Period {
    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Total => "total",
        }
    }
}
