//! `switchboard import litellm`: a LiteLLM proxy `config.yaml` becomes a Switchboard filter
//! configuration. `model_list` entries become deployments of the model their `model_name`
//! names, on providers made one per distinct kind, address and credentials; `router_settings`
//! and `litellm_settings` give fallbacks, aliases, retries, the timeout and `drop_params`.
//! Everything else is reported with its path (`report`), never dropped silently, and no
//! secret written in the LiteLLM file is copied: the provider reads it from a variable.
//!
//! Reading is split by section: `deployment` (one `model_list` entry: its provider and its
//! deployment), `settings` (the router and module settings, the server settings), `output`
//! (the YAML written).

mod deployment;
mod fields;
mod output;
mod settings;
#[cfg(test)]
mod tests;

use super::report::Report;
use deployment::DeploymentDraft;
#[cfg(test)]
use deployment::{route, Route};
use fields::{env_reference, text, Fields};
use serde_yaml::Value;
use settings::Routing;
use std::collections::BTreeSet;
use switchboard_core::config::secret::Env;
use switchboard_core::providers::kinds::Kind;

/// The converted configuration and what did not carry over.
pub struct Converted {
    pub yaml: String,
    pub report: Report,
    pub models: usize,
    pub providers: usize,
    pub deployments: usize,
}

/// A provider as a deployment describes it; deployments with equal ones share a provider.
#[derive(Clone)]
struct ProviderDraft {
    pub kind: &'static Kind,
    pub base_url: Option<String>,
    pub api_key: Option<Secret>,
    /// The kind's own settings (`api_version`, `region`, ...), in the order written.
    pub settings: Vec<(&'static str, Setting)>,
    pub headers: Vec<(String, Setting)>,
}

impl PartialEq for ProviderDraft {
    fn eq(&self, other: &Self) -> bool {
        self.kind.name == other.kind.name
            && self.base_url == other.base_url
            && self.api_key == other.api_key
            && self.settings == other.settings
            && self.headers == other.headers
    }
}

#[derive(Clone, PartialEq)]
enum Setting {
    Text(String),
    Secret(Secret),
}

/// A credential. Not `Debug`: a literal one must never reach a message.
#[derive(Clone, PartialEq)]
enum Secret {
    /// `os.environ/NAME` in LiteLLM, `{env: NAME}` here.
    Env(String),
    /// Written in the LiteLLM file: compared, never copied. The provider reads
    /// `<PROVIDER>_<FIELD>` instead.
    Literal(String),
}

/// A report item finished once providers have names.
struct Pending {
    item: usize,
    provider: usize,
    what: PendingWhat,
}

enum PendingWhat {
    /// A literal secret of this field (`api_key`, `access_key_id`, a header's name).
    Literal(String),
    /// A wildcard entry whose provider was kept.
    Wildcard(String),
}

/// One `environment_variables` entry: LiteLLM sets it in its own process at start.
struct EnvEntry {
    name: String,
    value: Option<String>,
    path: String,
    /// Read at import for a field Switchboard needs written out (a base URL, a region).
    resolved: bool,
}

/// One `credential_list` entry (`litellm_credential_name` refers to it).
struct Credential {
    name: String,
    values: serde_yaml::Mapping,
    path: String,
    used: bool,
}

/// What reading the file needs and gathers.
struct Context<'a> {
    report: Report,
    env: &'a dyn Env,
    env_section: Vec<EnvEntry>,
    credentials: Vec<Credential>,
    providers: Vec<ProviderDraft>,
    pending: Vec<Pending>,
}

impl Context<'_> {
    /// A variable's value at import: LiteLLM's `environment_variables` first (it sets them),
    /// then this process's environment.
    fn resolve(&mut self, name: &str) -> Option<String> {
        if let Some(entry) = self.env_section.iter_mut().find(|e| e.name == name) {
            if entry.value.is_some() {
                entry.resolved = true;
                return entry.value.clone();
            }
        }
        self.env.var(name).filter(|v| !v.is_empty())
    }

    /// A field Switchboard needs as a literal (an address, a region, a version): the value,
    /// or the one its `os.environ/NAME` has at import, or `None`, reported.
    fn literal(&mut self, value: &Value, path: &str) -> Option<String> {
        if let Some(name) = env_reference(value) {
            let name = name.to_owned();
            return match self.resolve(&name) {
                Some(v) => {
                    self.report.note(
                        path,
                        format!("read from {name} at import (Switchboard needs it in the file)"),
                    );
                    Some(v)
                }
                None => {
                    self.report.left_out(
                        path,
                        format!("reads {name}, which is not set here: import with it set"),
                    );
                    None
                }
            };
        }
        let found = text(value);
        if found.is_none() {
            self.report.left_out(path, "not a single value");
        }
        found
    }

    /// A credential: `os.environ/NAME` is kept as `{env: NAME}`; a literal one is kept out
    /// of the output (`literals` collects it, to be reported once its provider has a name).
    fn secret(
        &mut self,
        value: &Value,
        path: &str,
        field: &str,
        literals: &mut Vec<(String, String)>,
    ) -> Option<Secret> {
        if let Some(name) = env_reference(value) {
            return Some(Secret::Env(name.to_owned()));
        }
        match text(value) {
            Some(v) if !v.is_empty() => {
                literals.push((path.to_owned(), field.to_owned()));
                Some(Secret::Literal(v))
            }
            _ => {
                self.report.left_out(path, "not a single value");
                None
            }
        }
    }

    /// The values of the credential named `name`, marked used.
    fn credential(&mut self, name: &str) -> Option<(serde_yaml::Mapping, String)> {
        let entry = self.credentials.iter_mut().find(|c| c.name == name)?;
        entry.used = true;
        Some((entry.values.clone(), entry.path.clone()))
    }

    /// The index of the provider `draft` describes, added when new.
    fn provider(&mut self, draft: ProviderDraft) -> usize {
        match self.providers.iter().position(|p| *p == draft) {
            Some(i) => i,
            None => {
                self.providers.push(draft);
                self.providers.len() - 1
            }
        }
    }
}

/// A public model: the deployments sharing a `model_name`, and what the settings give it.
struct ModelDraft {
    pub name: String,
    pub deployments: Vec<DeploymentDraft>,
    pub aliases: Vec<String>,
    pub fallbacks: Vec<String>,
    pub max_tokens: Option<u32>,
    pub drop_unsupported_params: bool,
}

/// Converts a LiteLLM proxy configuration (`source` names it in the output's header).
/// `env` is read for the fields Switchboard needs as literals (`api_base:
/// os.environ/AZURE_API_BASE`), never for secrets.
pub fn convert(config: &str, source: &str, env: &dyn Env) -> Result<Converted, String> {
    let document: Value =
        serde_yaml::from_str(config).map_err(|e| format!("not a YAML document: {e}"))?;
    let top = document
        .as_mapping()
        .ok_or("not a LiteLLM proxy configuration: expected a mapping with `model_list`")?;
    let sections: Vec<String> = top.keys().filter_map(fields::text).collect();
    let mut top = Fields::new(top, "");
    let (model_list, _) = top
        .take("model_list")
        .ok_or("not a LiteLLM proxy configuration: no `model_list`")?;
    let entries = model_list
        .as_sequence()
        .ok_or("model_list: expected a list of models")?;

    let mut cx = Context {
        report: Report::default(),
        env,
        env_section: Vec::new(),
        credentials: Vec::new(),
        providers: Vec::new(),
        pending: Vec::new(),
    };
    if let Some((section, path)) = top.take("environment_variables") {
        cx.env_section = settings::env_section(&section, &path, &mut cx.report);
    }
    if let Some((list, path)) = top.take("credential_list") {
        cx.credentials = settings::credential_list(&list, &path, &mut cx.report);
    }

    let mut models: Vec<ModelDraft> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(d) = deployment::read(entry, &format!("model_list[{i}]"), &mut cx) else {
            continue;
        };
        match models.iter_mut().find(|m| m.name == d.model_name) {
            Some(model) => model.deployments.push(d),
            None => models.push(ModelDraft {
                name: d.model_name.clone(),
                deployments: vec![d],
                aliases: Vec::new(),
                fallbacks: Vec::new(),
                max_tokens: None,
                drop_unsupported_params: false,
            }),
        }
    }
    for model in &mut models {
        deployment::balance(model, &mut cx.report);
        deployment::max_tokens(model, &mut cx.report);
    }

    let routing = Routing::read(
        top.take("router_settings"),
        top.take("litellm_settings"),
        &mut cx.report,
    );
    let options = routing.apply(&mut models, &mut cx.report);
    if let Some((section, path)) = top.take("general_settings") {
        settings::general(&section, &path, &mut cx.report);
    }
    for (key, path) in top.rest() {
        cx.report.left_out(path, settings::no_equivalent(&key).1);
    }

    let names = output::Names::new(&cx.providers);
    finish_pending(&mut cx, &names);
    report_env_section(&mut cx);
    for credential in cx.credentials.iter().filter(|c| !c.used) {
        cx.report.note(
            &credential.path,
            "no model refers to it (litellm_credential_name)",
        );
    }
    // In file order: by section, then by entry (items of one entry keep their order).
    cx.report.sort_by_path(|path| {
        let section = path.split(['.', '[']).next().unwrap_or_default();
        let entry = path
            .strip_prefix(section)
            .and_then(|rest| rest.strip_prefix('['))
            .and_then(|rest| rest.split(']').next())
            .and_then(|i| i.parse::<usize>().ok());
        (sections.iter().position(|s| s == section), entry)
    });
    let yaml = output::write(source, options, &cx.providers, &names, &models);
    Ok(Converted {
        yaml,
        models: models.len(),
        providers: cx.providers.len(),
        deployments: models.iter().map(|m| m.deployments.len()).sum(),
        report: cx.report,
    })
}

/// Writes the messages that name a provider (or the variable one of its secrets is read from).
fn finish_pending(cx: &mut Context, names: &output::Names) {
    for pending in &cx.pending {
        let name = names.provider(pending.provider);
        let message = match &pending.what {
            PendingWhat::Literal(field) => format!(
                "a secret written in the file is not copied: provider `{name}` reads it from \
                 {{env: {}}} (set it in Envoy's environment)",
                names.literal(pending.provider, field)
            ),
            PendingWhat::Wildcard(pattern) => format!(
                "wildcard `{pattern}`: Switchboard serves only the models listed by name (no \
                 wildcard routes yet), so other names get 404; its provider is kept as \
                 `{name}`: add a model for each name clients use"
            ),
        };
        if let Some(item) = cx.report.items.get_mut(pending.item) {
            item.message = message;
        }
    }
}

/// Says what became of each `environment_variables` entry (never its value).
fn report_env_section(cx: &mut Context) {
    let read: BTreeSet<String> = cx.providers.iter().flat_map(output::env_names).collect();
    let mut items = Vec::new();
    for entry in &cx.env_section {
        if read.contains(&entry.name) {
            items.push((
                true,
                entry.path.clone(),
                format!(
                    "the configuration reads {}: set it in Envoy's environment (LiteLLM set it \
                     from this section)",
                    entry.name
                ),
            ));
        } else if entry.resolved {
            items.push((
                false,
                entry.path.clone(),
                "written into the configuration where LiteLLM read it".to_owned(),
            ));
        } else {
            items.push((
                true,
                entry.path.clone(),
                "LiteLLM sets it in its own environment at start: Switchboard does not read it"
                    .to_owned(),
            ));
        }
    }
    for (left_out, path, message) in items {
        if left_out {
            cx.report.left_out(path, message);
        } else {
            cx.report.note(path, message);
        }
    }
}
