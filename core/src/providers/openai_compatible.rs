//! Providers that speak OpenAI's API at their own address: one preset per vendor (base URL,
//! whether a key is required, which endpoints and stream options it supports), plus
//! `openai_compatible` for anything else (base_url required, key optional).

use super::openai::{plain_router, Auth, NoSettings, OpenAiWire};
use super::{Provider, ProviderSetup};
use crate::config::Problem;

struct Preset {
    kind: &'static str,
    base_url: Option<&'static str>,
    key_required: bool,
    stream_usage_option: bool,
    embeddings: bool,
}

const PRESETS: &[Preset] = &[
    Preset {
        kind: "openai_compatible",
        base_url: None,
        key_required: false,
        stream_usage_option: true,
        embeddings: true,
    },
    Preset {
        kind: "groq",
        base_url: Some("https://api.groq.com/openai/v1"),
        key_required: true,
        stream_usage_option: true,
        embeddings: false,
    },
    Preset {
        kind: "together",
        base_url: Some("https://api.together.xyz/v1"),
        key_required: true,
        stream_usage_option: true,
        embeddings: true,
    },
    Preset {
        kind: "fireworks",
        base_url: Some("https://api.fireworks.ai/inference/v1"),
        key_required: true,
        stream_usage_option: true,
        embeddings: true,
    },
    Preset {
        kind: "deepseek",
        base_url: Some("https://api.deepseek.com/v1"),
        key_required: true,
        stream_usage_option: true,
        embeddings: false,
    },
    // Mistral and Perplexity put usage on the last chunk unasked.
    Preset {
        kind: "mistral",
        base_url: Some("https://api.mistral.ai/v1"),
        key_required: true,
        stream_usage_option: false,
        embeddings: true,
    },
    Preset {
        kind: "openrouter",
        base_url: Some("https://openrouter.ai/api/v1"),
        key_required: true,
        stream_usage_option: true,
        embeddings: false,
    },
    Preset {
        kind: "xai",
        base_url: Some("https://api.x.ai/v1"),
        key_required: true,
        stream_usage_option: true,
        embeddings: false,
    },
    Preset {
        kind: "perplexity",
        base_url: Some("https://api.perplexity.ai"),
        key_required: true,
        stream_usage_option: false,
        embeddings: false,
    },
    Preset {
        kind: "ollama",
        base_url: Some("http://127.0.0.1:11434/v1"),
        key_required: false,
        stream_usage_option: true,
        embeddings: true,
    },
    Preset {
        kind: "vllm",
        base_url: Some("http://127.0.0.1:8000/v1"),
        key_required: false,
        stream_usage_option: true,
        embeddings: true,
    },
];

pub fn build(setup: &ProviderSetup) -> Result<Box<dyn Provider>, Vec<Problem>> {
    let Some(preset) = PRESETS.iter().find(|p| p.kind == setup.spec.kind) else {
        return Err(vec![Problem::new(
            format!("{}.kind", setup.path),
            format!("no preset for kind `{}`", setup.spec.kind),
        )]);
    };
    let endpoint = setup.endpoint(preset.base_url).map_err(|p| vec![p])?;
    setup.settings::<NoSettings>().map_err(|p| vec![p])?;
    if preset.key_required && setup.spec.api_key.is_none() {
        return Err(vec![Problem::new(
            format!("{}.api_key", setup.path),
            format!("required for kind `{}`", preset.kind),
        )]);
    }
    let auth = if setup.spec.api_key.is_some() {
        Auth::Bearer(setup.api_key())
    } else {
        Auth::None
    };
    Ok(Box::new(OpenAiWire {
        kind: preset.kind,
        endpoint,
        auth,
        headers: setup.headers()?,
        stream_usage_option: preset.stream_usage_option,
        embeddings: preset.embeddings,
        router: plain_router,
        query: String::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::PRESETS;
    use crate::providers::testing::*;
    use crate::testkit::test;

    #[test]
    fn every_preset_builds_and_routes() {
        for preset in PRESETS {
            let yaml = match preset.base_url {
                Some(_) => format!("kind: {}\napi_key: k", preset.kind),
                None => format!("kind: {}\nbase_url: http://h:1/v1\napi_key: k", preset.kind),
            };
            let p = provider(&yaml);
            let (req, raw) = chat_request(r#"{"model":"m","messages":[],"stream":true}"#);
            let up = p
                .chat_request(&req, raw.as_bytes(), &attempt("up"))
                .unwrap();
            let base = preset.base_url.unwrap_or("http://h:1/v1");
            let base_path = base
                .splitn(4, '/')
                .nth(3)
                .map(|p| format!("/{p}"))
                .unwrap_or_default();
            assert_eq!(
                up.path,
                format!("{base_path}/chat/completions"),
                "{}",
                preset.kind
            );
            assert_eq!(
                up.headers,
                [("authorization".to_string(), "Bearer k".to_string())]
            );
            let body = String::from_utf8(up.body).unwrap();
            assert_eq!(
                body.contains("include_usage"),
                preset.stream_usage_option,
                "{}",
                preset.kind
            );
        }
    }

    #[test]
    fn keyless_local_servers_send_no_auth() {
        let p = provider("kind: ollama");
        let (req, raw) = chat_request(r#"{"model":"m","messages":[]}"#);
        let up = p
            .chat_request(&req, raw.as_bytes(), &attempt("llama3"))
            .unwrap();
        assert!(up.headers.is_empty());
        assert_eq!(p.endpoint().authority(), "127.0.0.1:11434");
    }

    #[test]
    fn config_problems() {
        assert_build_error(
            "kind: groq",
            "providers.test.api_key: required for kind `groq`",
        );
        assert_build_error(
            "kind: openai_compatible",
            "providers.test.base_url: required",
        );
        assert_build_error("kind: vllm\nregion: x", "unknown field `region`");
    }
}
