//! The Switchboard configuration written: provider names, the variables literal secrets move
//! to, and the YAML itself.

use super::{ModelDraft, ProviderDraft, Secret, Setting};
use crate::import::yaml::{document, Node};
use std::collections::BTreeSet;

/// The names the output gives: providers', and the variables literal secrets move to.
pub(super) struct Names {
    pub providers: Vec<String>,
    /// `(provider, field)` → variable.
    literal: Vec<((usize, String), String)>,
}

impl Names {
    /// Names every provider, then a variable for each literal secret: `<PROVIDER>_<FIELD>`,
    /// numbered if a provider already reads a variable of that name.
    pub fn new(providers: &[ProviderDraft]) -> Names {
        let names = provider_names(providers);
        let mut taken: BTreeSet<String> = providers.iter().flat_map(env_names).collect();
        let mut literal = Vec::new();
        for (i, (p, name)) in providers.iter().zip(&names).enumerate() {
            for field in literal_fields(p) {
                let base = literal_env(name, &field);
                let mut env = base.clone();
                let mut n = 2;
                while taken.contains(&env) {
                    env = format!("{base}_{n}");
                    n += 1;
                }
                taken.insert(env.clone());
                literal.push(((i, field), env));
            }
        }
        Names {
            providers: names,
            literal,
        }
    }

    pub fn provider(&self, i: usize) -> &str {
        self.providers.get(i).map_or("", String::as_str)
    }

    /// The variable provider `i` reads its literal `field` from.
    pub fn literal(&self, i: usize, field: &str) -> &str {
        self.literal
            .iter()
            .find(|((p, f), _)| *p == i && f == field)
            .map_or("", |(_, env)| env.as_str())
    }
}

/// The fields of a provider the LiteLLM file gave literal secrets.
fn literal_fields(p: &ProviderDraft) -> Vec<String> {
    let literal = |s: &Setting| matches!(s, Setting::Secret(Secret::Literal(_)));
    p.api_key
        .iter()
        .filter(|k| matches!(k, Secret::Literal(_)))
        .map(|_| "api_key".to_owned())
        .chain(
            p.settings
                .iter()
                .filter(|(_, s)| literal(s))
                .map(|(f, _)| (*f).to_owned()),
        )
        .chain(
            p.headers
                .iter()
                .filter(|(_, s)| literal(s))
                .map(|(h, _)| h.clone()),
        )
        .collect()
}

/// A readable name per provider: its kind when it is the only one of its kind, else the kind
/// and what sets it apart (the address's first label, the region, the location), numbered
/// when that is not enough.
fn provider_names(providers: &[ProviderDraft]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for p in providers {
        let alone = providers
            .iter()
            .filter(|q| q.kind.name == p.kind.name)
            .count()
            == 1;
        let base = match detail(p).filter(|_| !alone) {
            Some(detail) => format!("{}-{detail}", p.kind.name),
            None => p.kind.name.to_owned(),
        };
        let mut name = base.clone();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        names.push(name);
    }
    names
}

/// What tells a provider from others of its kind, as a name part.
fn detail(p: &ProviderDraft) -> Option<String> {
    let setting = |name: &str| {
        p.settings.iter().find_map(|(k, v)| match v {
            Setting::Text(t) if *k == name => Some(t.clone()),
            _ => None,
        })
    };
    let found = match p.kind.name {
        "bedrock" => setting("region"),
        "vertex" => setting("location"),
        _ => None,
    }
    .or_else(|| {
        let url = p.base_url.as_deref()?;
        let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
        let label = host.split('.').next()?;
        // An address such as 127.0.0.1 or localhost tells nothing.
        let telling = label != "localhost" && !label.chars().all(|c| c.is_ascii_digit());
        telling.then(|| label.to_owned())
    })?;
    let clean: String = found
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let clean = clean.trim_matches('-').to_owned();
    (!clean.is_empty()).then_some(clean)
}

/// The variable a provider would read a secret from that the LiteLLM file held literally:
/// `AZURE_EU_API_KEY`.
fn literal_env(provider: &str, field: &str) -> String {
    format!("{provider}_{field}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The variables a provider reads that the LiteLLM file named (`os.environ/NAME`).
pub(super) fn env_names(p: &ProviderDraft) -> Vec<String> {
    let secret = |s: &Secret| match s {
        Secret::Env(name) => Some(name.clone()),
        Secret::Literal(_) => None,
    };
    let setting = |s: &Setting| match s {
        Setting::Secret(s) => secret(s),
        Setting::Text(_) => None,
    };
    p.api_key
        .iter()
        .filter_map(secret)
        .chain(p.settings.iter().filter_map(|(_, s)| setting(s)))
        .chain(p.headers.iter().filter_map(|(_, s)| setting(s)))
        .collect()
}

/// `{env: NAME}`: a literal secret is never written, its provider reads a variable instead.
fn secret_node(secret: &Secret, names: &Names, provider: usize, field: &str) -> Node {
    let name = match secret {
        Secret::Env(name) => name.clone(),
        Secret::Literal(_) => names.literal(provider, field).to_owned(),
    };
    Node::FlowMap(vec![("env".into(), Node::Str(name))])
}

fn setting_node(setting: &Setting, names: &Names, provider: usize, field: &str) -> Node {
    match setting {
        Setting::Text(t) => Node::str(t.clone()),
        Setting::Secret(s) => secret_node(s, names, provider, field),
    }
}

fn provider_node(p: &ProviderDraft, names: &Names, i: usize) -> Node {
    let mut entries = vec![("kind".to_owned(), Node::str(p.kind.name))];
    if let Some(url) = &p.base_url {
        entries.push(("base_url".into(), Node::str(url.clone())));
    }
    if let Some(key) = &p.api_key {
        entries.push(("api_key".into(), secret_node(key, names, i, "api_key")));
    }
    for (field, setting) in &p.settings {
        entries.push(((*field).to_owned(), setting_node(setting, names, i, field)));
    }
    if !p.headers.is_empty() {
        let headers = p
            .headers
            .iter()
            .map(|(h, s)| (h.clone(), setting_node(s, names, i, h)))
            .collect();
        entries.push(("headers".into(), Node::Map(headers)));
    }
    Node::Map(entries)
}

fn price_node(price: &switchboard_core::usage::pricing::PriceSpec) -> Node {
    let mut entries = vec![
        ("input".to_owned(), Node::Num(price.input)),
        ("output".to_owned(), Node::Num(price.output)),
    ];
    if let Some(v) = price.cache_read {
        entries.push(("cache_read".into(), Node::Num(v)));
    }
    if let Some(v) = price.cache_write {
        entries.push(("cache_write".into(), Node::Num(v)));
    }
    if !price.tiers.is_empty() {
        let tiers = price
            .tiers
            .iter()
            .map(|t| {
                let mut tier = vec![(
                    "above_prompt_tokens".to_owned(),
                    Node::Int(t.above_prompt_tokens),
                )];
                for (name, value) in [
                    ("input", t.input),
                    ("output", t.output),
                    ("cache_read", t.cache_read),
                    ("cache_write", t.cache_write),
                ] {
                    if let Some(v) = value {
                        tier.push((name.to_owned(), Node::Num(v)));
                    }
                }
                Node::FlowMap(tier)
            })
            .collect();
        entries.push(("tiers".into(), Node::FlowList(tiers)));
    }
    Node::FlowMap(entries)
}

fn model_node(m: &ModelDraft, names: &Names) -> Node {
    let mut entries = vec![("name".to_owned(), Node::str(m.name.clone()))];
    if !m.aliases.is_empty() {
        let aliases = m.aliases.iter().cloned().map(Node::Str).collect();
        entries.push(("aliases".into(), Node::FlowList(aliases)));
    }
    let deployments = m
        .deployments
        .iter()
        .map(|d| {
            let mut fields = vec![
                ("provider".to_owned(), Node::str(names.provider(d.provider))),
                ("model".to_owned(), Node::str(d.model.clone())),
            ];
            if let Some(w) = d.out_weight {
                fields.push(("weight".into(), Node::Int(w)));
            }
            if let Some(price) = &d.price {
                fields.push(("price".into(), price_node(price)));
            }
            if let Some(key) = &d.price_as {
                fields.push(("price_as".into(), Node::str(key.clone())));
            }
            Node::FlowMap(fields)
        })
        .collect();
    entries.push(("deployments".into(), Node::List(deployments)));
    if !m.fallbacks.is_empty() {
        let fallbacks = m.fallbacks.iter().cloned().map(Node::Str).collect();
        entries.push(("fallbacks".into(), Node::FlowList(fallbacks)));
    }
    if let Some(n) = m.max_tokens {
        entries.push(("max_tokens".into(), Node::Int(u64::from(n))));
    }
    if m.drop_unsupported_params {
        entries.push(("drop_unsupported_params".into(), Node::Bool(true)));
    }
    Node::Map(entries)
}

/// The configuration file: a header naming its source, then options, providers, models.
pub(super) fn write(
    source: &str,
    options: Vec<(String, Node)>,
    providers: &[ProviderDraft],
    names: &Names,
    models: &[ModelDraft],
) -> String {
    let mut root = Vec::new();
    if !options.is_empty() {
        root.push(("options".to_owned(), Node::Map(options)));
    }
    let providers = providers
        .iter()
        .enumerate()
        .map(|(i, p)| (names.provider(i).to_owned(), provider_node(p, names, i)))
        .collect();
    root.push(("providers".to_owned(), Node::Map(providers)));
    let models = models.iter().map(|m| model_node(m, names)).collect();
    root.push(("models".to_owned(), Node::List(models)));
    format!(
        "# Switchboard configuration imported from {source} by `switchboard import litellm`.\n{}",
        document(&root)
    )
}
