//! Durations written the way operators write them: `30s`, `500ms`, `2m`, or plain seconds.

use serde::de::{self, Deserializer};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Millis(pub u64);

impl Millis {
    pub fn parse(text: &str) -> Result<Millis, String> {
        let t = text.trim();
        let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
            (n, 1)
        } else if let Some(n) = t.strip_suffix('s') {
            (n, 1000)
        } else if let Some(n) = t.strip_suffix('m') {
            (n, 60_000)
        } else if let Some(n) = t.strip_suffix('h') {
            (n, 3_600_000)
        } else {
            (t, 1000)
        };
        let value: f64 = number
            .trim()
            .parse()
            .map_err(|_| format!("invalid duration `{text}` (use e.g. 500ms, 30s, 5m)"))?;
        if !(value.is_finite() && value >= 0.0) {
            return Err(format!("invalid duration `{text}`"));
        }
        Ok(Millis((value * scale as f64).round() as u64))
    }

    /// Envoy's protobuf Duration as YAML text, e.g. `1.5s`.
    pub fn envoy(&self) -> String {
        if self.0.is_multiple_of(1000) {
            format!("{}s", self.0 / 1000)
        } else {
            format!("{}s", self.0 as f64 / 1000.0)
        }
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) if n.is_finite() && n >= 0.0 => Ok(Millis((n * 1000.0).round() as u64)),
            Raw::Number(n) => Err(de::Error::custom(format!("invalid duration {n}"))),
            Raw::Text(t) => Millis::parse(&t).map_err(de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    #[test]
    fn parses_units() {
        for (text, ms) in [
            ("500ms", 500),
            ("30s", 30_000),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("1.5", 1500),
        ] {
            assert_eq!(Millis::parse(text), Ok(Millis(ms)), "{text}");
        }
        assert!(Millis::parse("soon").is_err());
        assert_eq!(Millis(1500).envoy(), "1.5s");
        assert_eq!(Millis(30_000).envoy(), "30s");
    }
}
