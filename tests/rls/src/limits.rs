//! The service's configuration (envoyproxy/ratelimit's format, see
//! `switchboard_core::limits::fleet::service`) as a lookup tree, and what a request's
//! descriptors ask of the counters: which counter in Redis, how much, against which limit,
//! until when.
//!
//! Matching follows envoyproxy/ratelimit: each entry of a descriptor, in order, takes the
//! child with the same key and value, else the child with the same key and no value; the limit
//! is the one on the node the last entry reaches. A descriptor that matches nothing is not
//! limited and counts nothing.

use crate::proto::RateLimitDescriptor;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use switchboard_core::limits::fleet::service::{DescriptorConfig, ServiceConfig, Unit};

/// A configured limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub unit: Unit,
    pub amount: u64,
    /// Never refuses and counts nothing.
    pub unlimited: bool,
    /// Counts, never refuses.
    pub shadow: bool,
    pub name: String,
}

#[derive(Debug, Default)]
struct Node {
    limit: Option<Limit>,
    /// By entry key, then value (`None`: any value).
    children: HashMap<String, HashMap<Option<String>, Node>>,
}

/// Every domain's tree.
#[derive(Debug, Default)]
pub struct Limits {
    domains: HashMap<String, Node>,
}

impl Limits {
    /// Reads `paths` (files, or directories whose `*.yaml`/`*.yml` files are read), one domain
    /// per file.
    pub fn load(paths: &[PathBuf]) -> Result<Limits, String> {
        let mut files = Vec::new();
        for path in paths {
            if path.is_dir() {
                let entries =
                    std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let mut found: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        let hidden = p
                            .file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with('.'));
                        let yaml = p.extension().is_some_and(|e| e == "yaml" || e == "yml");
                        yaml && !hidden
                    })
                    .collect();
                found.sort();
                files.extend(found);
            } else {
                files.push(path.clone());
            }
        }
        let mut limits = Limits::default();
        for file in files {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            limits.add(&file, &text)?;
        }
        Ok(limits)
    }

    /// Adds one file's domain.
    pub fn add(&mut self, file: &Path, text: &str) -> Result<(), String> {
        let config: ServiceConfig =
            serde_yaml::from_str(text).map_err(|e| format!("{}: {e}", file.display()))?;
        if config.domain.is_empty() {
            return Err(format!("{}: the domain must not be empty", file.display()));
        }
        if self.domains.contains_key(&config.domain) {
            return Err(format!(
                "{}: domain `{}` is configured twice",
                file.display(),
                config.domain
            ));
        }
        let mut root = Node::default();
        add_children(&mut root, &config.descriptors, &config.domain)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        self.domains.insert(config.domain, root);
        Ok(())
    }

    pub fn domains(&self) -> usize {
        self.domains.len()
    }

    /// The limit a descriptor's entries reach in `domain`.
    pub fn find(&self, domain: &str, descriptor: &RateLimitDescriptor) -> Option<&Limit> {
        let mut node = self.domains.get(domain)?;
        for entry in &descriptor.entries {
            let by_value = node.children.get(&entry.key)?;
            node = by_value
                .get(&Some(entry.value.clone()))
                .or_else(|| by_value.get(&None))?;
        }
        node.limit.as_ref()
    }
}

fn add_children(node: &mut Node, configs: &[DescriptorConfig], path: &str) -> Result<(), String> {
    for c in configs {
        let here = format!("{path}.{}_{}", c.key, c.value.as_deref().unwrap_or(""));
        if c.key.is_empty() {
            return Err(format!("{here}: a descriptor needs a key"));
        }
        let slot = node.children.entry(c.key.clone()).or_default();
        if slot.contains_key(&c.value) {
            return Err(format!("{here}: declared twice"));
        }
        let mut child = Node {
            limit: c.rate_limit.as_ref().map(|r| Limit {
                unit: r.unit,
                amount: r.requests_per_unit,
                unlimited: r.unlimited,
                shadow: c.shadow_mode,
                name: r.name.clone().unwrap_or_default(),
            }),
            children: HashMap::new(),
        };
        add_children(&mut child, &c.descriptors, &here)?;
        slot.insert(c.value.clone(), child);
    }
    Ok(())
}

/// What one descriptor does to its counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The Redis key: domain, entries and window.
    pub counter: String,
    pub hits: u64,
    pub refund: bool,
    pub limit: Limit,
    /// When the window ends (ms since the epoch); `None` for `total`.
    pub window_end_ms: Option<u64>,
}

/// The charge of descriptor `descriptor` at `now_ms` when a limit applies to it.
pub fn charge(
    limits: &Limits,
    domain: &str,
    descriptor: &RateLimitDescriptor,
    request_hits: u32,
    now_ms: u64,
) -> Option<Charge> {
    let limit = limits.find(domain, descriptor)?;
    if limit.unlimited {
        return None;
    }
    let hits = match &descriptor.hits_addend {
        Some(h) => h.value,
        None if request_hits > 0 => u64::from(request_hits),
        None => 1,
    };
    let (start, end) = limit.unit.window(now_ms);
    let window = match end {
        Some(_) => (start / 1000).to_string(),
        None => "total".to_owned(),
    };
    Some(Charge {
        counter: counter_key(domain, descriptor, &window),
        hits,
        refund: descriptor.is_negative_hits,
        limit: limit.clone(),
        window_end_ms: end,
    })
}

/// Prefix of every counter the service keeps in Redis.
pub const PREFIX: &str = "sbrl";

/// `sbrl|<domain>|<key>=<value>|…|<window start, s>`, with `%`, `|` and `=` escaped in names and
/// values so distinct descriptors never share a counter.
pub fn counter_key(domain: &str, descriptor: &RateLimitDescriptor, window: &str) -> String {
    let escape = |s: &str| {
        s.replace('%', "%25")
            .replace('|', "%7C")
            .replace('=', "%3D")
    };
    let mut key = format!("{PREFIX}|{}", escape(domain));
    for e in &descriptor.entries {
        key.push('|');
        key.push_str(&escape(&e.key));
        key.push('=');
        key.push_str(&escape(&e.value));
    }
    key.push('|');
    key.push_str(window);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Entry, UInt64Value};

    const CONFIG: &str = r#"
domain: sb
descriptors:
  - key: limit
    value: rpm
    descriptors:
      - {key: key, value: a, rate_limit: {unit: minute, requests_per_unit: 3}}
      - {key: key, rate_limit: {unit: MINUTE, requests_per_unit: 100}}
      - {key: key, value: free, rate_limit: {unit: minute, unlimited: true}}
  - key: limit
    value: budget_month
    descriptors:
      - key: team
        value: t
        descriptors:
          - {key: period, shadow_mode: true, rate_limit: {unit: year, requests_per_unit: 5000000000}}
"#;

    fn descriptor(entries: &[(&str, &str)], hits: Option<u64>) -> RateLimitDescriptor {
        RateLimitDescriptor {
            entries: entries
                .iter()
                .map(|(k, v)| Entry {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
            hits_addend: hits.map(|value| UInt64Value { value }),
            is_negative_hits: false,
        }
    }

    fn limits() -> Limits {
        let mut l = Limits::default();
        l.add(Path::new("sb.yaml"), CONFIG).unwrap();
        l
    }

    #[test]
    fn descriptors_match_by_value_then_by_key() {
        let l = limits();
        let amount =
            |entries: &[(&str, &str)]| l.find("sb", &descriptor(entries, None)).map(|x| x.amount);
        assert_eq!(amount(&[("limit", "rpm"), ("key", "a")]), Some(3));
        assert_eq!(amount(&[("limit", "rpm"), ("key", "zed")]), Some(100));
        // Too few entries stop on a node without a limit; too many find no child.
        assert_eq!(amount(&[("limit", "rpm")]), None);
        assert_eq!(amount(&[("limit", "rpm"), ("key", "a"), ("x", "y")]), None);
        assert_eq!(amount(&[("limit", "tpm"), ("key", "a")]), None);
        let month = [
            ("limit", "budget_month"),
            ("team", "t"),
            ("period", "2026-12"),
        ];
        let found = l.find("sb", &descriptor(&month, None)).unwrap();
        assert_eq!((found.amount, found.shadow), (5_000_000_000, true));
        assert!(l.find("other", &descriptor(&month, None)).is_none());
    }

    #[test]
    fn bad_files_are_refused_with_their_name() {
        let mut l = limits();
        let again = l.add(Path::new("b.yaml"), "domain: sb\n").unwrap_err();
        assert!(again.contains("configured twice"), "{again}");
        let twice = "domain: x\ndescriptors: [{key: a, value: b}, {key: a, value: b}]\n";
        assert!(l
            .add(Path::new("c.yaml"), twice)
            .unwrap_err()
            .contains("declared twice"));
        let unit = "domain: y\ndescriptors: [{key: a, rate_limit: {unit: fortnight}}]\n";
        let e = l.add(Path::new("d.yaml"), unit).unwrap_err();
        assert!(
            e.starts_with("d.yaml: ") && e.contains("unknown unit"),
            "{e}"
        );
    }

    #[test]
    fn charges_carry_hits_window_and_counter() {
        let l = limits();
        // 2026-12-02 10:00:30 UTC.
        let now = 1_796_205_630_000;
        let c = charge(
            &l,
            "sb",
            &descriptor(&[("limit", "rpm"), ("key", "a")], None),
            0,
            now,
        )
        .unwrap();
        assert_eq!(c.hits, 1);
        assert_eq!(c.counter, "sbrl|sb|limit=rpm|key=a|1796205600");
        assert_eq!(c.window_end_ms, Some(1_796_205_660_000));
        let c = charge(
            &l,
            "sb",
            &descriptor(&[("limit", "rpm"), ("key", "a")], None),
            4,
            now,
        )
        .unwrap();
        assert_eq!(c.hits, 4);
        let c = charge(
            &l,
            "sb",
            &descriptor(&[("limit", "rpm"), ("key", "a|b=c")], Some(0)),
            4,
            now,
        )
        .unwrap();
        assert_eq!(c.hits, 0);
        assert_eq!(c.counter, "sbrl|sb|limit=rpm|key=a%7Cb%3Dc|1796205600");
        assert!(charge(
            &l,
            "sb",
            &descriptor(&[("limit", "rpm"), ("key", "free")], None),
            0,
            now
        )
        .is_none());
    }
}
