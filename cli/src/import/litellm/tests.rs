//! The importer over LiteLLM configurations shaped as LiteLLM's own docs write them: each
//! case is a folder of `cli/tests/fixtures/litellm/` holding `config.yaml` (LiteLLM's),
//! `expected.yaml` (the Switchboard configuration) and `expected.report` (the stderr report).

use super::{convert, route, Route};
use crate::import::validate;
use std::path::PathBuf;

struct Case {
    name: &'static str,
    /// The importing machine's environment (read only for fields Switchboard needs written).
    env: &'static [(&'static str, &'static str)],
    /// Items left out: the exit status is 3 unless none.
    left_out: usize,
}

const CASES: &[Case] = &[
    Case {
        name: "quick_start",
        env: &[],
        left_out: 8,
    },
    Case {
        name: "multi_provider",
        env: &[],
        left_out: 1,
    },
    Case {
        name: "azure",
        env: &[("AZURE_API_BASE", "https://from-env.openai.azure.com/")],
        left_out: 3,
    },
    Case {
        name: "bedrock",
        env: &[("AWS_REGION_NAME", "eu-central-1")],
        left_out: 5,
    },
    Case {
        name: "vertex",
        env: &[],
        left_out: 3,
    },
    Case {
        name: "fallbacks",
        env: &[],
        left_out: 7,
    },
    Case {
        name: "aliases",
        env: &[],
        left_out: 2,
    },
    Case {
        name: "env_keys",
        env: &[],
        left_out: 2,
    },
    Case {
        name: "literal_keys",
        env: &[],
        left_out: 6,
    },
    Case {
        name: "weights_and_prices",
        env: &[],
        left_out: 6,
    },
    Case {
        name: "wildcards",
        env: &[],
        left_out: 3,
    },
    Case {
        name: "complete",
        env: &[],
        left_out: 0,
    },
];

fn fixture(case: &str, file: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests/fixtures/litellm",
        case,
        file,
    ]
    .iter()
    .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn real_world_configs_convert_to_the_expected_configuration_and_report() {
    for case in CASES {
        let env = |name: &str| {
            case.env
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let converted = convert(&fixture(case.name, "config.yaml"), "config.yaml", &env)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(
            converted.yaml,
            fixture(case.name, "expected.yaml"),
            "{}: configuration",
            case.name
        );
        assert_eq!(
            converted.report.lines(),
            fixture(case.name, "expected.report"),
            "{}: report",
            case.name
        );
        assert_eq!(
            converted.report.left_out_count(),
            case.left_out,
            "{}: items left out",
            case.name
        );
        if let Err(problems) = validate(&converted.yaml) {
            panic!("{}: the output does not validate:\n{problems}", case.name);
        }
    }
}

#[test]
fn secrets_written_in_the_litellm_file_never_reach_the_output_or_the_report() {
    for case in ["literal_keys", "bedrock", "env_keys", "quick_start"] {
        let converted = convert(&fixture(case, "config.yaml"), "config.yaml", &|_: &str| {
            None
        })
        .unwrap_or_else(|e| panic!("{case}: {e}"));
        let report = converted.report.lines();
        for secret in [
            "sk-proj-literal-one",
            "sk-proj-literal-two",
            "sk-ant-literal-three",
            "corp-literal-four",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AKIAIOSFODNN7EXAMPLE",
            "sk-team-not-to-be-copied",
            "sk-1234",
        ] {
            assert!(
                !converted.yaml.contains(secret),
                "{case}: {secret} in the output"
            );
            assert!(!report.contains(secret), "{case}: {secret} in the report");
        }
    }
}

#[test]
fn a_literal_secret_never_shares_a_variable_another_provider_reads() {
    let converted = convert(&fixture("literal_keys", "config.yaml"), "c", &|_: &str| {
        None
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let doc: serde_yaml::Value = serde_yaml::from_str(&converted.yaml).unwrap();
    let keys: Vec<String> = doc["providers"]
        .as_mapping()
        .unwrap()
        .values()
        .filter_map(|p| p["api_key"]["env"].as_str().map(str::to_owned))
        .collect();
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(keys.len(), unique.len(), "{keys:?}");
    assert!(keys.contains(&"OPENAI_API_KEY".to_owned()), "{keys:?}");
    assert!(keys.contains(&"OPENAI_API_KEY_2".to_owned()), "{keys:?}");
}

#[test]
fn the_kinds_descriptors_route_litellm_models() {
    struct Routed {
        name: &'static str,
        /// LiteLLM's `model`.
        model: &'static str,
        kind: &'static str,
        /// The provider's model id.
        id: &'static str,
    }
    let cases = [
        Routed {
            name: "a provider prefix",
            model: "openai/gpt-4o",
            kind: "openai",
            id: "gpt-4o",
        },
        Routed {
            name: "no prefix: an OpenAI model",
            model: "gpt-4o-mini",
            kind: "openai",
            id: "gpt-4o-mini",
        },
        Routed {
            name: "no prefix: an Anthropic model",
            model: "claude-3-opus-20240229",
            kind: "anthropic",
            id: "claude-3-opus-20240229",
        },
        Routed {
            name: "an Azure deployment",
            model: "azure/my-deployment",
            kind: "azure",
            id: "my-deployment",
        },
        Routed {
            name: "Bedrock's converse route",
            model: "bedrock/converse/anthropic.claude-3",
            kind: "bedrock",
            id: "anthropic.claude-3",
        },
        Routed {
            name: "Bedrock's invoke route",
            model: "bedrock/invoke/meta.llama3",
            kind: "bedrock",
            id: "meta.llama3",
        },
        Routed {
            name: "Bedrock without a route",
            model: "bedrock/amazon.nova-pro-v1:0",
            kind: "bedrock",
            id: "amazon.nova-pro-v1:0",
        },
        Routed {
            name: "Cohere's chat prefix",
            model: "cohere_chat/command-r",
            kind: "cohere",
            id: "command-r",
        },
        Routed {
            name: "Cohere's own prefix",
            model: "cohere/command-r-plus",
            kind: "cohere",
            id: "command-r-plus",
        },
        Routed {
            name: "Vertex AI",
            model: "vertex_ai/gemini-1.5-pro",
            kind: "vertex",
            id: "gemini-1.5-pro",
        },
        Routed {
            name: "Gemini",
            model: "gemini/gemini-2.5-flash",
            kind: "gemini",
            id: "gemini-2.5-flash",
        },
        Routed {
            name: "a model id with a slash",
            model: "together_ai/meta-llama/Llama-3-8b",
            kind: "together",
            id: "meta-llama/Llama-3-8b",
        },
        Routed {
            name: "Ollama's chat prefix",
            model: "ollama_chat/llama3",
            kind: "ollama",
            id: "llama3",
        },
        Routed {
            name: "hosted vLLM, a model id with a slash",
            model: "hosted_vllm/org/model",
            kind: "vllm",
            id: "org/model",
        },
    ];
    for case in cases {
        match route(case.model) {
            Route::Kind(k, _, got) => assert_eq!(
                (k.name, got.as_str()),
                (case.kind, case.id),
                "{}: {}",
                case.name,
                case.model
            ),
            Route::Unknown(p) => panic!("{}: {}: unknown provider {p}", case.name, case.model),
        }
    }
    match route("huggingface/bigcode/starcoder") {
        Route::Unknown(p) => assert_eq!(p, "huggingface"),
        Route::Kind(k, _, _) => panic!("huggingface routed to {}", k.name),
    }
}

#[test]
fn what_is_not_a_litellm_configuration_is_an_error() {
    let none = |_: &str| None;
    let cases = [
        ("model_list: [", "not a YAML document"),
        ("- a\n- b", "expected a mapping with `model_list`"),
        ("general_settings: {master_key: sk-1}", "no `model_list`"),
        ("model_list: {gpt: 1}", "model_list: expected a list"),
    ];
    for (text, expected) in cases {
        match convert(text, "c", &none) {
            Ok(_) => panic!("{text:?} converted"),
            Err(e) => assert!(e.contains(expected), "{text:?}: {e}"),
        }
    }
}

#[test]
fn the_readme_side_by_side_is_what_the_import_writes() {
    const README: &str = include_str!("../../../../README.md");
    let section = README
        .split("## Coming from LiteLLM")
        .nth(1)
        .expect("README.md has a Coming from LiteLLM section");
    let blocks: Vec<&str> = section
        .split("```yaml\n")
        .skip(1)
        .take(2)
        .filter_map(|b| b.split("```").next())
        .collect();
    let [litellm, switchboard] = blocks[..] else {
        panic!("two YAML blocks side by side, found {}", blocks.len());
    };
    let converted = convert(litellm, "config.yaml", &|_: &str| None).unwrap();
    let body = converted.yaml.split_once('\n').unwrap().1;
    assert_eq!(body, switchboard);
    assert_eq!(converted.report.left_out_count(), 0);
}
