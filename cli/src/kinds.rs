//! `switchboard providers` and `switchboard env`: what the provider kinds' descriptors
//! (`switchboard_core::providers::kinds`) say, for the README and for scripts.

use switchboard_core::config::parse_document;
use switchboard_core::config::secret::Env;
use switchboard_core::config::Problem;
use switchboard_core::providers::env_vars;
use switchboard_core::providers::kinds::KINDS;

/// The README's table of provider kinds: default base URL and authentication, one row a kind.
pub fn table() -> String {
    let mut out = String::from("| kind | default base URL | auth |\n|---|---|---|\n");
    for kind in KINDS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            kind.name,
            kind.base_url.describe(),
            kind.auth
        ));
    }
    out
}

/// Every environment variable each provider of a configuration reads, one line each:
/// `provider<TAB>NAME<TAB>set|unset<TAB>required|optional` (an empty variable is unset, as
/// the filter takes it). A provider with a required variable unset cannot serve.
pub fn env_report(text: &str, env: &dyn Env) -> Result<String, Problem> {
    let document = parse_document(text)?;
    let mut out = String::new();
    for (name, spec) in &document.providers {
        for var in env_vars(spec) {
            let set = env.var(var.name).is_some_and(|v| !v.is_empty());
            out.push_str(&format!(
                "{name}\t{}\t{}\t{}\n",
                var.name,
                if set { "set" } else { "unset" },
                if var.required { "required" } else { "optional" }
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README as committed: its table of kinds is the descriptors' (rebuilt when it changes).
    const README: &str = include_str!("../../README.md");

    #[test]
    fn the_readme_lists_the_kinds_as_the_descriptors_describe_them() {
        let lines: Vec<&str> = README.lines().collect();
        let start = lines
            .iter()
            .position(|l| *l == "| kind | default base URL | auth |")
            .expect("README.md has a table of provider kinds");
        let in_readme: String = lines
            .iter()
            .skip(start)
            .take_while(|l| l.starts_with('|'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            in_readme,
            table(),
            "README.md's table of provider kinds differs from `switchboard providers`"
        );
    }

    struct Case {
        name: &'static str,
        providers: &'static str,
        expected: &'static str,
    }

    #[test]
    fn env_lists_each_providers_variables_and_whether_they_are_set() {
        let env = |name: &str| match name {
            "OPENAI_API_KEY" => Some("sk-1".to_owned()),
            "AWS_ACCESS_KEY_ID" => Some("AKID".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let cases = [
            Case {
                name: "keys named by the sections",
                providers: "openai: {kind: openai, api_key: {env: OPENAI_API_KEY}}\n  \
                            anthropic: {kind: anthropic, api_key: {env: ANTHROPIC_API_KEY}}",
                expected: "anthropic\tANTHROPIC_API_KEY\tunset\trequired\n\
                           openai\tOPENAI_API_KEY\tset\trequired\n",
            },
            Case {
                name: "a kind's own variables, an empty one unset",
                providers:
                    "aws: {kind: bedrock, region: us-east-1, headers: {X-Team: {env: EMPTY}}}",
                expected: "aws\tEMPTY\tunset\trequired\n\
                           aws\tAWS_ACCESS_KEY_ID\tset\trequired\n\
                           aws\tAWS_SECRET_ACCESS_KEY\tunset\trequired\n\
                           aws\tAWS_SESSION_TOKEN\tunset\toptional\n",
            },
            Case {
                name: "no variables: no lines",
                providers: "local: {kind: ollama}",
                expected: "",
            },
        ];
        for case in cases {
            let text = format!("providers:\n  {}\nmodels: []\n", case.providers);
            assert_eq!(
                env_report(&text, &env).unwrap(),
                case.expected,
                "{}",
                case.name
            );
        }
        assert!(env_report("providers: [", &env).is_err());
    }
}
