//! Azure OpenAI: OpenAI's wire under `/openai/deployments/{deployment}/...?api-version=`,
//! authenticated with the `api-key` header (or an Entra ID bearer token). With
//! `api_version: v1` the newer `/openai/v1/...` surface is used and the model goes in the body.

use super::kinds::Kind;
use super::openai::{api_path, OpenAiWire, Preset, Router};
use super::upstream::{Auth, Upstream};
use super::{Provider, ProviderSetup};
use crate::api::Operation;
use crate::config::Problem;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AzureSettings {
    #[serde(default = "default_api_version")]
    api_version: String,
    /// `api-key` (default) or `bearer` (an Entra ID token in `api_key`).
    #[serde(default)]
    auth: AzureAuth,
}

#[derive(Deserialize, Default, PartialEq)]
#[serde(rename_all = "kebab-case")]
enum AzureAuth {
    #[default]
    ApiKey,
    Bearer,
}

fn default_api_version() -> String {
    "2024-10-21".into()
}

fn deployment_router(op: Operation, deployment: &str) -> String {
    format!("/openai/deployments/{deployment}{}", api_path(op))
}

fn v1_router(op: Operation, _model: &str) -> String {
    format!("/openai/v1{}", api_path(op))
}

pub fn build(
    setup: &ProviderSetup,
    kind: &'static Kind,
) -> Result<Box<dyn Provider>, Vec<Problem>> {
    let endpoint = setup.endpoint(kind, None).map_err(|p| vec![p])?;
    let settings: AzureSettings = setup.settings().map_err(|p| vec![p])?;
    let credential = setup.api_key();
    let auth = match settings.auth {
        AzureAuth::ApiKey => Auth::Header("api-key", credential),
        AzureAuth::Bearer => Auth::Bearer(credential),
    };
    let (router, query): (Router, String) = if settings.api_version == "v1" {
        (v1_router, String::new())
    } else {
        (
            deployment_router,
            format!("?api-version={}", settings.api_version),
        )
    };
    Ok(Box::new(OpenAiWire {
        kind: kind.name,
        upstream: Upstream::new(endpoint, auth, setup.headers()?, &[]),
        preset: Preset::CHAT_AND_EMBEDDINGS,
        router,
        query,
    }))
}

#[cfg(test)]
mod tests {
    use crate::providers::testing::*;
    use crate::testkit::test;

    struct Case {
        name: &'static str,
        yaml: &'static str,
        path: &'static str,
        /// The one header sent: the credential.
        auth: (&'static str, &'static str),
    }

    #[test]
    fn paths_and_auth() {
        let cases = [
            Case {
                name: "a deployment, api-key",
                yaml: "kind: azure\nbase_url: https://r.openai.azure.com\napi_key: k",
                path: "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
                auth: ("api-key", "k"),
            },
            Case {
                name: "another api_version, an Entra ID token",
                yaml: "kind: azure\nbase_url: https://r.openai.azure.com\napi_key: t\napi_version: 2025-01-01-preview\nauth: bearer",
                path: "/openai/deployments/prod-4o/chat/completions?api-version=2025-01-01-preview",
                auth: ("authorization", "Bearer t"),
            },
            Case {
                name: "the v1 surface",
                yaml: "kind: azure\nbase_url: https://r.openai.azure.com\napi_key: k\napi_version: v1",
                path: "/openai/v1/chat/completions",
                auth: ("api-key", "k"),
            },
        ];
        for case in cases {
            let p = provider(case.yaml);
            let up = send_chat(
                p.as_ref(),
                r#"{"model":"m","messages":[]}"#,
                &attempt("prod-4o"),
            )
            .unwrap();
            assert_eq!(up.path, case.path, "{}", case.name);
            assert_eq!(up.headers, owned_pairs(&[case.auth]), "{}", case.name);
            assert!(
                String::from_utf8(up.body)
                    .unwrap()
                    .contains("\"model\":\"prod-4o\""),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn embeddings_path() {
        let p = provider("kind: azure\nbase_url: https://r.openai.azure.com\napi_key: k");
        let up =
            send_embeddings(p.as_ref(), r#"{"model":"m","input":"x"}"#, &attempt("emb")).unwrap();
        assert_eq!(
            up.path,
            "/openai/deployments/emb/embeddings?api-version=2024-10-21"
        );
    }

    #[test]
    fn config_problems() {
        assert_build_error(
            "kind: azure\napi_key: k",
            "providers.test.base_url: required",
        );
        assert_build_error(
            "kind: azure\nbase_url: https://r.openai.azure.com\napi_key: k\napi_versoin: x",
            "unknown field `api_versoin`",
        );
    }
}
