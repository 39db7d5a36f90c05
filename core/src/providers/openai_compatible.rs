//! Providers that speak OpenAI's API at their own address: the vendor presets (Groq, Together,
//! Mistral, ... ; their addresses, keys and price keys are rows of `kinds::KINDS`) and
//! `openai_compatible` for anything else (base_url required, key optional).

use super::kinds::Kind;
use super::openai::{plain_router, Auth, NoSettings, OpenAiWire};
use super::{Provider, ProviderSetup};
use crate::config::Problem;

/// What an OpenAI-compatible vendor supports of OpenAI's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// Accepts `stream_options.include_usage` (else usage arrives, or not, unasked).
    pub stream_usage_option: bool,
    pub embeddings: bool,
}

impl Preset {
    /// Chat completions only.
    pub const CHAT: Preset = Preset {
        stream_usage_option: true,
        embeddings: false,
    };
    pub const CHAT_AND_EMBEDDINGS: Preset = Preset {
        stream_usage_option: true,
        embeddings: true,
    };
}

pub fn build(
    setup: &ProviderSetup,
    kind: &'static Kind,
    preset: &Preset,
) -> Result<Box<dyn Provider>, Vec<Problem>> {
    let endpoint = setup.endpoint(kind, None).map_err(|p| vec![p])?;
    setup.settings::<NoSettings>().map_err(|p| vec![p])?;
    let auth = if setup.spec.api_key.is_some() {
        Auth::Bearer(setup.api_key())
    } else {
        Auth::None
    };
    Ok(Box::new(OpenAiWire {
        kind: kind.name,
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
    use crate::providers::kinds::{BaseUrl, Build, KINDS};
    use crate::providers::testing::*;
    use crate::testkit::test;

    #[test]
    fn every_preset_builds_and_routes() {
        let presets = KINDS.iter().filter_map(|kind| match &kind.build {
            Build::OpenAiCompatible(preset) => Some((kind, preset)),
            Build::Module(_) => None,
        });
        for (kind, preset) in presets {
            // The kind's own address, else one in the section.
            let (base, yaml) = match kind.base_url {
                BaseUrl::Fixed(url) => (url, format!("kind: {}\napi_key: k", kind.name)),
                _ => (
                    "http://h:1/v1",
                    format!("kind: {}\nbase_url: http://h:1/v1\napi_key: k", kind.name),
                ),
            };
            let p = provider(&yaml);
            let up = send_chat(
                p.as_ref(),
                r#"{"model":"m","messages":[],"stream":true}"#,
                &attempt("up"),
            )
            .unwrap();
            let base_path = base
                .splitn(4, '/')
                .nth(3)
                .map(|p| format!("/{p}"))
                .unwrap_or_default();
            assert_eq!(
                up.path,
                format!("{base_path}/chat/completions"),
                "{}",
                kind.name
            );
            assert_eq!(
                up.headers,
                owned_pairs(&[("authorization", "Bearer k")]),
                "{}",
                kind.name
            );
            let body = String::from_utf8(up.body).unwrap();
            assert_eq!(
                body.contains("include_usage"),
                preset.stream_usage_option,
                "{}",
                kind.name
            );
            let embeddings =
                send_embeddings(p.as_ref(), r#"{"model":"m","input":"x"}"#, &attempt("up"));
            assert_eq!(embeddings.is_ok(), preset.embeddings, "{}", kind.name);
        }
    }

    #[test]
    fn keyless_local_servers_send_no_auth() {
        let p = provider("kind: ollama");
        let up = send_chat(
            p.as_ref(),
            r#"{"model":"m","messages":[]}"#,
            &attempt("llama3"),
        )
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
