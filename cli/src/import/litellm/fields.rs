//! Reading a LiteLLM mapping key by key: each field is taken once, and whatever is left at
//! the end is reported, so nothing is dropped silently.

use serde_yaml::{Mapping, Value};

/// The entries of one mapping, each with its path in the LiteLLM file.
pub struct Fields {
    path: String,
    entries: Vec<(String, Value, String)>,
}

impl Fields {
    pub fn new(map: &Mapping, path: &str) -> Fields {
        let mut fields = Fields {
            path: path.to_owned(),
            entries: Vec::new(),
        };
        fields.extend(map, path);
        fields
    }

    /// Adds the entries of `map` (found at `path`) that this one does not have.
    pub fn extend(&mut self, map: &Mapping, path: &str) {
        for (key, value) in map {
            let key = text(key).unwrap_or_default();
            if !self.entries.iter().any(|(k, _, _)| *k == key) {
                let at = join(path, &key);
                self.entries.push((key, value.clone(), at));
            }
        }
    }

    /// Takes `key`: its value and path.
    pub fn take(&mut self, key: &str) -> Option<(Value, String)> {
        let i = self.entries.iter().position(|(k, _, _)| k == key)?;
        let (_, value, path) = self.entries.remove(i);
        Some((value, path))
    }

    /// Takes every entry whose key passes `keep`.
    pub fn take_where(&mut self, keep: impl Fn(&str) -> bool) -> Vec<(String, Value, String)> {
        let (taken, rest) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|(k, _, _)| keep(k));
        self.entries = rest;
        taken
    }

    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _, _)| k == key)
    }

    /// The path `key` has (or would have) in this mapping.
    pub fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// What no one took: `(key, path)`.
    pub fn rest(self) -> Vec<(String, String)> {
        self.entries.into_iter().map(|(k, _, p)| (k, p)).collect()
    }
}

/// `key`'s path under `path` (the top level has none).
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A scalar as text (`api_version: 2024-02-01` may arrive as a string or a number).
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A number, also written as a string (`"1e-6"`).
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

/// A boolean, also Python's spelling in a string (`"True"`).
pub fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// The variable an `os.environ/NAME` value reads.
pub fn env_reference(value: &Value) -> Option<&str> {
    value
        .as_str()?
        .trim()
        .strip_prefix("os.environ/")
        .filter(|name| !name.is_empty())
}

/// A list of names (`["gpt-4o", "claude"]`, or one name alone).
pub fn names(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Sequence(items) => items.iter().map(text).collect(),
        other => text(other).map(|n| vec![n]),
    }
}
