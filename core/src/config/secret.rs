//! Secrets in the config: a literal, or `{env: NAME}` read from the host environment
//! (Envoy passes it in through `vm_config.environment_variables.host_env_keys`).

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SecretSpec {
    Literal(String),
    Env { env: String },
}

/// A resolved secret. `Debug` never prints the value, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where environment variables come from: the real environment, or a table in tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

impl SecretSpec {
    /// Resolves the secret; an unset or empty variable is an error naming the variable.
    pub fn resolve(&self, env: &dyn Env) -> Result<Secret, String> {
        match self {
            SecretSpec::Literal(v) => Ok(Secret::new(v.clone())),
            SecretSpec::Env { env: name } => match env.var(name) {
                Some(v) if !v.is_empty() => Ok(Secret::new(v)),
                _ => Err(format!(
                    "environment variable {name} is not set (Envoy passes it to the filter through host_env_keys)"
                )),
            },
        }
    }

    /// The variable this secret reads, if any (the renderer lists them in `host_env_keys`).
    pub fn env_name(&self) -> Option<&str> {
        match self {
            SecretSpec::Env { env } => Some(env),
            SecretSpec::Literal(_) => None,
        }
    }
}
