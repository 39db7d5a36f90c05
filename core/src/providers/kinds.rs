//! One descriptor per provider kind, in one table: how a section of the kind becomes a
//! provider, and what the rest of the gateway, the CLI and the docs need to know about it (its
//! default address, how it authenticates, its LiteLLM price keys, the environment it reads).
//! Adding a kind is adding its row to [`KINDS`]; everything else reads the table.

use super::openai::Preset;
use super::{anthropic, azure, bedrock, cohere, gemini, openai, vertex};
use super::{Provider, ProviderSetup};
use crate::config::{Problem, ProviderSpec};

/// A provider kind (`kind:` in a provider section).
pub struct Kind {
    pub name: &'static str,
    pub build: Build,
    /// Where the provider is when the section names no `base_url`.
    pub base_url: BaseUrl,
    pub api_key: ApiKey,
    /// How requests authenticate, as the README's table of kinds says it.
    pub auth: &'static str,
    /// LiteLLM's prefixes for the kind: the `litellm_params.model` routes `switchboard import
    /// litellm` maps to it (the longest that matches wins), and the price-file key prefixes
    /// its models are priced under, tried in order before the bare model id (`azure/gpt-4o`,
    /// then `gpt-4o`).
    pub litellm_prefixes: &'static [&'static str],
    /// Environment variables the kind reads when the section does not name its credentials.
    pub implied_env: &'static [ImpliedEnv],
}

/// A provider module's builder: a section of `kind` → the provider, or every problem found.
pub type Builder = fn(&ProviderSetup, &'static Kind) -> Result<Box<dyn Provider>, Vec<Problem>>;

/// How a section of a kind becomes a provider.
pub enum Build {
    /// The kind's own module builds it.
    Module(Builder),
    /// OpenAI's wire at the kind's address, as the preset says.
    OpenAiWire(Preset),
}

/// A kind's default address.
pub enum BaseUrl {
    /// The same for every section.
    Fixed(&'static str),
    /// `url` with its `{setting}` replaced by the section's setting of that name (Bedrock's
    /// `{region}`); `special` is a value of the setting with an address of its own.
    Template {
        url: &'static str,
        special: Option<(&'static str, &'static str)>,
    },
    /// None: the section names it (`note` says what it is).
    None { note: &'static str },
}

/// Whether a section must give `api_key`.
pub enum ApiKey {
    /// Required; `example` is the variable it usually comes from.
    Required { example: &'static str },
    /// Optional: a local server, or credentials of another kind.
    Optional,
}

/// An environment variable a kind reads when the section does not say otherwise.
pub struct ImpliedEnv {
    pub name: &'static str,
    /// Read only when the section sets none of these fields.
    pub unless: &'static [&'static str],
    /// The provider cannot serve without it (an optional one is used when set).
    pub required: bool,
}

/// The kind an OpenAI-compatible vendor is: its address, a required key and its price keys.
const fn vendor(
    name: &'static str,
    base_url: &'static str,
    key_env: &'static str,
    litellm_prefix: &'static [&'static str],
    preset: Preset,
) -> Kind {
    Kind {
        name,
        build: Build::OpenAiWire(preset),
        base_url: BaseUrl::Fixed(base_url),
        api_key: ApiKey::Required { example: key_env },
        auth: "Bearer",
        litellm_prefixes: litellm_prefix,
        implied_env: &[],
    }
}

/// Every provider kind, in the order the README lists them.
pub const KINDS: &[Kind] = &[
    Kind {
        name: "openai",
        build: Build::OpenAiWire(Preset::CHAT_AND_EMBEDDINGS),
        base_url: BaseUrl::Fixed("https://api.openai.com/v1"),
        api_key: ApiKey::Required {
            example: "OPENAI_API_KEY",
        },
        auth: "`Authorization: Bearer`",
        litellm_prefixes: &["openai/"],
        implied_env: &[],
    },
    Kind {
        name: "azure",
        build: Build::Module(azure::build),
        base_url: BaseUrl::None {
            note: "your resource",
        },
        api_key: ApiKey::Required {
            example: "AZURE_OPENAI_API_KEY",
        },
        auth: "`api-key` or Bearer",
        litellm_prefixes: &["azure/"],
        implied_env: &[],
    },
    Kind {
        name: "anthropic",
        build: Build::Module(anthropic::build),
        base_url: BaseUrl::Fixed("https://api.anthropic.com"),
        api_key: ApiKey::Required {
            example: "ANTHROPIC_API_KEY",
        },
        auth: "`x-api-key` + `anthropic-version`",
        litellm_prefixes: &["anthropic/"],
        implied_env: &[],
    },
    Kind {
        name: "cohere",
        build: Build::Module(cohere::build),
        base_url: BaseUrl::Fixed("https://api.cohere.com"),
        api_key: ApiKey::Required {
            example: "COHERE_API_KEY",
        },
        auth: "Bearer",
        litellm_prefixes: &["cohere_chat/", "cohere/"],
        implied_env: &[],
    },
    Kind {
        name: "bedrock",
        build: Build::Module(bedrock::build),
        base_url: BaseUrl::Template {
            url: "https://bedrock-runtime.{region}.amazonaws.com",
            special: None,
        },
        api_key: ApiKey::Optional,
        auth: "SigV4 over the final body, or Bearer (API key)",
        litellm_prefixes: &["bedrock/converse/", "bedrock/invoke/", "bedrock/"],
        implied_env: &[
            ImpliedEnv {
                name: bedrock::DEFAULT_ACCESS_KEY_ID_ENV,
                unless: &["api_key", "access_key_id"],
                required: true,
            },
            ImpliedEnv {
                name: bedrock::DEFAULT_SECRET_ACCESS_KEY_ENV,
                unless: &["api_key", "secret_access_key"],
                required: true,
            },
            ImpliedEnv {
                name: bedrock::DEFAULT_SESSION_TOKEN_ENV,
                unless: &["api_key", "session_token", "access_key_id"],
                required: false,
            },
        ],
    },
    Kind {
        name: "gemini",
        build: Build::Module(gemini::build),
        base_url: BaseUrl::Fixed("https://generativelanguage.googleapis.com"),
        api_key: ApiKey::Required {
            example: "GEMINI_API_KEY",
        },
        auth: "`x-goog-api-key`",
        litellm_prefixes: &["gemini/"],
        implied_env: &[],
    },
    Kind {
        name: "vertex",
        build: Build::Module(vertex::build),
        base_url: BaseUrl::Template {
            url: "https://{location}-aiplatform.googleapis.com",
            special: Some(("global", "https://aiplatform.googleapis.com")),
        },
        api_key: ApiKey::Required {
            example: "VERTEX_ACCESS_TOKEN",
        },
        auth: "Bearer (OAuth access token)",
        litellm_prefixes: &["vertex_ai/"],
        implied_env: &[],
    },
    vendor(
        "groq",
        "https://api.groq.com/openai/v1",
        "GROQ_API_KEY",
        &["groq/"],
        Preset::CHAT,
    ),
    vendor(
        "together",
        "https://api.together.xyz/v1",
        "TOGETHER_API_KEY",
        &["together_ai/"],
        Preset::CHAT_AND_EMBEDDINGS,
    ),
    vendor(
        "fireworks",
        "https://api.fireworks.ai/inference/v1",
        "FIREWORKS_API_KEY",
        &["fireworks_ai/"],
        Preset::CHAT_AND_EMBEDDINGS,
    ),
    vendor(
        "deepseek",
        "https://api.deepseek.com/v1",
        "DEEPSEEK_API_KEY",
        &["deepseek/"],
        Preset::CHAT,
    ),
    // Mistral and Perplexity put usage on the last chunk unasked.
    vendor(
        "mistral",
        "https://api.mistral.ai/v1",
        "MISTRAL_API_KEY",
        &["mistral/"],
        Preset {
            stream_usage_option: false,
            embeddings: true,
        },
    ),
    vendor(
        "openrouter",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
        &["openrouter/"],
        Preset::CHAT,
    ),
    vendor(
        "xai",
        "https://api.x.ai/v1",
        "XAI_API_KEY",
        &["xai/"],
        Preset::CHAT,
    ),
    vendor(
        "perplexity",
        "https://api.perplexity.ai",
        "PERPLEXITY_API_KEY",
        &["perplexity/"],
        Preset {
            stream_usage_option: false,
            embeddings: false,
        },
    ),
    Kind {
        name: "ollama",
        build: Build::OpenAiWire(Preset::CHAT_AND_EMBEDDINGS),
        base_url: BaseUrl::Fixed("http://127.0.0.1:11434/v1"),
        api_key: ApiKey::Optional,
        auth: "none",
        litellm_prefixes: &["ollama_chat/", "ollama/"],
        implied_env: &[],
    },
    Kind {
        name: "vllm",
        build: Build::OpenAiWire(Preset::CHAT_AND_EMBEDDINGS),
        base_url: BaseUrl::Fixed("http://127.0.0.1:8000/v1"),
        api_key: ApiKey::Optional,
        auth: "Bearer if `api_key` is set",
        litellm_prefixes: &["hosted_vllm/"],
        implied_env: &[],
    },
    Kind {
        name: "openai_compatible",
        build: Build::OpenAiWire(Preset::CHAT_AND_EMBEDDINGS),
        base_url: BaseUrl::None { note: "required" },
        api_key: ApiKey::Optional,
        auth: "Bearer if `api_key` is set",
        litellm_prefixes: &[],
        implied_env: &[],
    },
];

/// The kind named `name`.
pub fn find(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

impl Kind {
    /// Builds the provider a section of this kind describes, reporting a missing `api_key`
    /// with the section's other problems.
    pub fn build(&'static self, setup: &ProviderSetup) -> Result<Box<dyn Provider>, Vec<Problem>> {
        let missing_key = match self.api_key {
            ApiKey::Required { example } if setup.spec.api_key.is_none() => Some(Problem::new(
                format!("{}.api_key", setup.path),
                format!(
                    "required for kind `{}` (e.g. api_key: {{env: {example}}})",
                    self.name
                ),
            )),
            _ => None,
        };
        let built = match &self.build {
            Build::Module(build) => build(setup, self),
            Build::OpenAiWire(preset) => openai::build(setup, self, preset),
        };
        match (missing_key, built) {
            (None, built) => built,
            (Some(problem), Ok(_)) => Err(vec![problem]),
            (Some(problem), Err(mut problems)) => {
                problems.insert(0, problem);
                Err(problems)
            }
        }
    }

    /// The environment variables the kind reads for `spec` beyond those it names.
    pub fn implied_env_for(&self, spec: &ProviderSpec) -> Vec<&'static ImpliedEnv> {
        let sets = |field: &str| match field {
            "api_key" => spec.api_key.is_some(),
            "base_url" => spec.base_url.is_some(),
            other => spec.settings.contains_key(other),
        };
        self.implied_env
            .iter()
            .filter(|v| !v.unless.iter().any(|field| sets(field)))
            .collect()
    }
}

impl BaseUrl {
    /// The address a section gets when it names none: `setting` is its value of the
    /// template's setting.
    pub fn default_for(&self, setting: Option<&str>) -> Option<String> {
        match (self, setting) {
            (BaseUrl::Fixed(url), _) => Some((*url).to_owned()),
            (BaseUrl::Template { special, .. }, Some(value))
                if special.is_some_and(|(v, _)| v == value) =>
            {
                special.map(|(_, url)| url.to_owned())
            }
            (BaseUrl::Template { url, .. }, Some(value)) => {
                let (head, rest) = url.split_once('{')?;
                let (_, tail) = rest.split_once('}')?;
                Some(format!("{head}{value}{tail}"))
            }
            _ => None,
        }
    }

    /// The README's cell for it.
    pub fn describe(&self) -> String {
        match self {
            BaseUrl::Fixed(url) => format!("`{url}`"),
            BaseUrl::Template { url, special: None } => format!("`{url}`"),
            BaseUrl::Template {
                url,
                special: Some((value, special)),
            } => {
                let host = special.split_once("://").map_or(*special, |(_, h)| h);
                format!("`{url}` (`{host}` for `{value}`)")
            }
            BaseUrl::None { note } => format!("— ({note})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    #[test]
    fn kinds_are_named_once() {
        for (i, kind) in KINDS.iter().enumerate() {
            assert!(
                KINDS.iter().skip(i + 1).all(|k| k.name != kind.name),
                "{} twice",
                kind.name
            );
        }
    }

    #[test]
    fn every_kind_builds_a_provider_of_its_name() {
        for kind in KINDS {
            // The settings a kind cannot do without.
            let required = match kind.name {
                "bedrock" => "\nregion: us-east-1",
                "vertex" => "\nproject: p\nlocation: global",
                _ => "",
            };
            let yaml = format!(
                "kind: {}\napi_key: k\nbase_url: https://h.example/v1{required}",
                kind.name
            );
            let spec: ProviderSpec = serde_yaml::from_str(&yaml).unwrap();
            let setup = ProviderSetup {
                name: "test",
                spec: &spec,
                env: &|_: &str| None,
                path: "providers.test".into(),
            };
            match kind.build(&setup) {
                Ok(provider) => assert_eq!(provider.kind(), kind.name),
                Err(problems) => panic!("{}: {problems:?}", kind.name),
            }
        }
    }

    #[test]
    fn env_vars_named_then_implied_once_each_with_what_it_is_for() {
        let spec: ProviderSpec = serde_yaml::from_str(
            "kind: bedrock\nregion: us-east-1\nheaders: {X-Team: {env: TEAM}, X-Also: {env: TEAM}}",
        )
        .unwrap();
        let got: Vec<(&str, bool)> = crate::providers::env_vars(&spec)
            .iter()
            .map(|v| (v.name, v.required))
            .collect();
        assert_eq!(
            got,
            [
                ("TEAM", true),
                ("AWS_ACCESS_KEY_ID", true),
                ("AWS_SECRET_ACCESS_KEY", true),
                ("AWS_SESSION_TOKEN", false)
            ]
        );
    }

    struct Case {
        name: &'static str,
        base_url: BaseUrl,
        setting: Option<&'static str>,
        expected: Option<&'static str>,
        described: &'static str,
    }

    #[test]
    fn default_addresses_fixed_templated_or_none() {
        let vertex = || BaseUrl::Template {
            url: "https://{location}-aiplatform.googleapis.com",
            special: Some(("global", "https://aiplatform.googleapis.com")),
        };
        let cases = [
            Case {
                name: "fixed",
                base_url: BaseUrl::Fixed("https://api.x.ai/v1"),
                setting: None,
                expected: Some("https://api.x.ai/v1"),
                described: "`https://api.x.ai/v1`",
            },
            Case {
                name: "a template filled",
                base_url: vertex(),
                setting: Some("europe-west4"),
                expected: Some("https://europe-west4-aiplatform.googleapis.com"),
                described: "`https://{location}-aiplatform.googleapis.com` (`aiplatform.googleapis.com` for `global`)",
            },
            Case {
                name: "a template's special value",
                base_url: vertex(),
                setting: Some("global"),
                expected: Some("https://aiplatform.googleapis.com"),
                described: "`https://{location}-aiplatform.googleapis.com` (`aiplatform.googleapis.com` for `global`)",
            },
            Case {
                name: "a template without its setting",
                base_url: vertex(),
                setting: None,
                expected: None,
                described: "`https://{location}-aiplatform.googleapis.com` (`aiplatform.googleapis.com` for `global`)",
            },
            Case {
                name: "none",
                base_url: BaseUrl::None {
                    note: "your resource",
                },
                setting: None,
                expected: None,
                described: "— (your resource)",
            },
        ];
        for case in cases {
            assert_eq!(
                case.base_url.default_for(case.setting).as_deref(),
                case.expected,
                "{}",
                case.name
            );
            assert_eq!(case.base_url.describe(), case.described, "{}", case.name);
        }
    }

    #[test]
    fn a_required_key_is_reported_with_the_other_problems() {
        let spec: ProviderSpec =
            serde_yaml::from_str("kind: anthropic\ndefault_max_tokens: 0").unwrap();
        let setup = ProviderSetup {
            name: "test",
            spec: &spec,
            env: &|_: &str| None,
            path: "providers.test".into(),
        };
        let problems: Vec<String> = match find("anthropic").unwrap().build(&setup) {
            Ok(_) => panic!("built without a key"),
            Err(p) => p.iter().map(ToString::to_string).collect(),
        };
        assert_eq!(
            problems,
            [
                "providers.test.api_key: required for kind `anthropic` (e.g. api_key: {env: ANTHROPIC_API_KEY})",
                "providers.test.default_max_tokens: must be at least 1",
            ]
        );
    }
}
