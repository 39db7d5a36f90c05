//! Fixtures shared by the providers' table tests.

use super::{Attempt, Provider, ProviderSetup, ResponseContext, StreamTranslator};
use crate::api::chat::ChatRequest;
use crate::api::embeddings::EmbeddingsRequest;
use crate::config::{Deployment, ModelSettings, ProviderSpec};
use crate::usage::Usage;

fn test_env(name: &str) -> Option<String> {
    match name {
        "TEST_KEY" => Some("env-secret".into()),
        _ => None,
    }
}

/// Builds a provider from its YAML section (named `test`).
pub fn provider(yaml: &str) -> Box<dyn Provider> {
    let spec: ProviderSpec = serde_yaml::from_str(yaml).unwrap();
    let setup = ProviderSetup {
        name: "test",
        spec: &spec,
        env: &test_env,
        path: "providers.test".into(),
    };
    match super::build(&setup) {
        Ok(p) => p,
        Err(problems) => panic!("{yaml}: {problems:?}"),
    }
}

/// Asserts building fails with a problem starting with `expected`.
pub fn assert_build_error(yaml: &str, expected: &str) {
    let spec: ProviderSpec = serde_yaml::from_str(yaml).unwrap();
    let setup = ProviderSetup {
        name: "test",
        spec: &spec,
        env: &test_env,
        path: "providers.test".into(),
    };
    let problems: Vec<String> = match super::build(&setup) {
        Ok(_) => panic!("{yaml} should not build"),
        Err(p) => p.iter().map(ToString::to_string).collect(),
    };
    assert!(
        problems.iter().any(|p| p.contains(expected)),
        "{yaml}: wanted `{expected}` in {problems:?}"
    );
}

pub fn chat_request(json: &str) -> (ChatRequest, String) {
    (serde_json::from_str(json).unwrap(), json.to_string())
}

pub fn embeddings_request(json: &str) -> (EmbeddingsRequest, String) {
    (serde_json::from_str(json).unwrap(), json.to_string())
}

/// An attempt on a deployment of `upstream_model` with default model settings.
pub fn attempt(upstream_model: &str) -> Attempt<'static> {
    attempt_with(upstream_model, ModelSettings::default())
}

pub fn attempt_with(upstream_model: &str, settings: ModelSettings) -> Attempt<'static> {
    let deployment = Box::leak(Box::new(Deployment {
        id: "m/0".into(),
        model: 0,
        provider: 0,
        upstream_model: upstream_model.into(),
        weight: 1,
    }));
    Attempt {
        deployment,
        settings: Box::leak(Box::new(settings)),
        now_ms: 1_700_000_000_000,
    }
}

pub fn ctx(include_usage: bool) -> ResponseContext<'static> {
    ResponseContext {
        upstream_model: "up-model",
        include_usage,
        base64_embeddings: false,
        created: 1_700_000_000,
        request_id: "req-1",
        json_schema: None,
    }
}

/// Feeds the whole input at once.
pub fn run_stream_whole<T: StreamTranslator>(
    make: impl Fn() -> T,
    input: &[u8],
) -> (Vec<u8>, Option<Usage>) {
    let mut t = make();
    let mut out = Vec::new();
    t.feed(input, &mut out);
    t.finish(&mut out);
    (out, t.usage())
}

/// Splits the input at every byte boundary (two pieces), and also feeds it byte by byte;
/// every way must give exactly `expected`.
pub fn assert_every_split_matches<T: StreamTranslator>(
    make: impl Fn() -> T,
    input: &[u8],
    expected: &[u8],
) {
    for split in 0..=input.len() {
        let (a, b) = input.split_at(split);
        let mut t = make();
        let mut out = Vec::new();
        t.feed(a, &mut out);
        t.feed(b, &mut out);
        t.finish(&mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(expected),
            "split at {split}"
        );
    }
    let mut t = make();
    let mut out = Vec::new();
    for byte in input {
        t.feed(std::slice::from_ref(byte), &mut out);
    }
    t.finish(&mut out);
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(expected),
        "byte by byte"
    );
}
