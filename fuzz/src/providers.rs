//! One provider of every kind, built from test sections through the kinds table, grouped by the
//! translator family a target covers: the OpenAI wire (every kind built as
//! `Build::OpenAiWire`), or a kind with a module of its own.

use std::cell::RefCell;
use std::rc::Rc;
use switchboard_core::config::{ModelSettings, ProviderSpec};
use switchboard_core::providers::kinds::{Build, Kind, KINDS};
use switchboard_core::providers::{self, Attempt, Provider, ProviderSetup, ResponseContext};

/// The translator families, one set of targets each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// OpenAI's wire: every kind built as `Build::OpenAiWire`, and Azure's paths on it.
    OpenAi,
    Anthropic,
    Cohere,
    Bedrock,
    Gemini,
    Vertex,
}

impl Family {
    /// The family translating for `kind`; `None` for a kind with a module no target covers.
    pub fn of(kind: &Kind) -> Option<Family> {
        match (&kind.build, kind.name) {
            (Build::OpenAiWire(_), _) | (_, "azure") => Some(Family::OpenAi),
            (_, "anthropic") => Some(Family::Anthropic),
            (_, "cohere") => Some(Family::Cohere),
            (_, "bedrock") => Some(Family::Bedrock),
            (_, "gemini") => Some(Family::Gemini),
            (_, "vertex") => Some(Family::Vertex),
            _ => None,
        }
    }

    /// Whether the gateway writes every event of its client streams (OpenAI's wire passes
    /// the provider's events through).
    pub fn translates_streams(self) -> bool {
        self != Family::OpenAi
    }

    /// Upstream model ids the family's translation depends on (Vertex's publisher, Bedrock's
    /// embedding model, Gemini's thinking settings).
    pub fn models(self) -> &'static [&'static str] {
        match self {
            Family::OpenAi => &["gpt-4o"],
            Family::Anthropic => &["claude-sonnet-4-5"],
            Family::Cohere => &["command-a-03-2025", "embed-v4.0"],
            Family::Bedrock => &[
                "anthropic.claude-3-5-sonnet-20240620-v1:0",
                "amazon.titan-embed-text-v2:0",
                "cohere.embed-v4:0",
            ],
            Family::Gemini => &["gemini-2.5-flash", "gemini-3-pro-preview"],
            Family::Vertex => &[
                "gemini-2.5-flash",
                "claude-sonnet-4@20250514",
                "text-embedding-005",
            ],
        }
    }
}

/// Test sections of a kind, beyond `kind` and `base_url`: each way of setting it up that
/// changes what its translators do.
fn sections(kind: &str) -> &'static [&'static str] {
    match kind {
        "azure" => &[
            "api_key: k",
            "api_key: k\nauth: bearer",
            "api_key: k\napi_version: v1",
        ],
        "anthropic" => &["api_key: k\nbeta: [b1, b2]"],
        "cohere" => &["api_key: k\nembed_input_type: search_query"],
        "bedrock" => &[
            "api_key: k\nregion: us-east-1",
            "region: eu-west-3\naccess_key_id: AKIDEXAMPLE\nsecret_access_key: s\nsession_token: t",
        ],
        "vertex" => &[
            "api_key: k\nproject: p\nlocation: global",
            "api_key: k\nproject: p\nlocation: europe-west4",
        ],
        _ => &["api_key: k"],
    }
}

/// The providers of a family.
pub type Providers = Rc<Vec<Box<dyn Provider>>>;

/// Every provider of the family (built once per thread).
pub fn of(family: Family) -> Providers {
    thread_local! {
        static BUILT: RefCell<Vec<(Family, Providers)>> =
            const { RefCell::new(Vec::new()) };
    }
    BUILT.with(|built| {
        let mut built = built.borrow_mut();
        if let Some((_, providers)) = built.iter().find(|(f, _)| *f == family) {
            return providers.clone();
        }
        let providers = Rc::new(build(family));
        built.push((family, providers.clone()));
        providers
    })
}

/// One provider per kind the family translates for and section of that kind. Panics when a
/// kind has a module but no family, so a new kind cannot go unfuzzed.
fn build(family: Family) -> Vec<Box<dyn Provider>> {
    let mut out = Vec::new();
    for kind in KINDS {
        let Some(of) = Family::of(kind) else {
            panic!(
                "provider kind `{}` has a module of its own but no fuzz targets: add a Family",
                kind.name
            );
        };
        if of != family {
            continue;
        }
        for section in sections(kind.name) {
            let yaml = format!(
                "kind: {}\nbase_url: https://h.example/v1\n{section}",
                kind.name
            );
            let spec: ProviderSpec = match serde_yaml::from_str(&yaml) {
                Ok(spec) => spec,
                Err(e) => panic!("{yaml}: {e}"),
            };
            let setup = ProviderSetup {
                name: "fuzz",
                spec: &spec,
                env: &|_: &str| None,
                path: "providers.fuzz".into(),
            };
            match providers::build(&setup) {
                Ok(provider) => out.push(provider),
                Err(problems) => panic!("{yaml}: {problems:?}"),
            }
        }
    }
    out
}

/// The model settings an attempt may carry: none, and an output cap with unsupported
/// parameters dropped.
pub fn settings() -> [ModelSettings; 2] {
    [
        ModelSettings::default(),
        ModelSettings {
            max_tokens: Some(1024),
            drop_unsupported_params: true,
        },
    ]
}

pub fn attempt<'a>(upstream_model: &'a str, settings: &'a ModelSettings) -> Attempt<'a> {
    Attempt {
        upstream_model,
        settings,
        now_ms: 1_700_000_000_000,
    }
}

/// The response contexts an answer is translated under.
pub fn contexts(upstream_model: &str) -> [ResponseContext<'_>; 2] {
    let plain = ResponseContext {
        upstream_model,
        include_usage: false,
        base64_embeddings: false,
        created: 1_700_000_000,
        request_id: "req-fuzz",
        json_schema: None,
    };
    let asking = ResponseContext {
        include_usage: true,
        base64_embeddings: true,
        json_schema: Some("answer"),
        ..plain.clone()
    };
    [plain, asking]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_family_and_every_family_providers_of_its_kinds() {
        for kind in KINDS {
            assert!(Family::of(kind).is_some(), "{}", kind.name);
        }
        let families = [
            Family::OpenAi,
            Family::Anthropic,
            Family::Cohere,
            Family::Bedrock,
            Family::Gemini,
            Family::Vertex,
        ];
        for family in families {
            let providers = of(family);
            assert!(!providers.is_empty(), "{family:?}");
            for provider in providers.iter() {
                let kind = KINDS.iter().find(|k| k.name == provider.kind());
                assert_eq!(kind.and_then(Family::of), Some(family));
            }
        }
        // Every OpenAI-wire kind, and Azure in three sections.
        let openai_wire = KINDS
            .iter()
            .filter(|k| matches!(k.build, Build::OpenAiWire(_)))
            .count();
        assert_eq!(of(Family::OpenAi).len(), openai_wire + 3);
    }
}
