//! `router_settings` and `litellm_settings` (fallbacks, aliases, retries, the timeout,
//! `drop_params`), `general_settings`, `environment_variables`, `credential_list`, and why
//! each setting without an equivalent has none.

use super::fields::{boolean, names, number, text, Fields};
use super::{Credential, EnvEntry, ModelDraft};
use crate::import::report::{Report, Severity};
use crate::import::yaml::Node;
use serde_yaml::Value;

/// A `fallbacks` entry: `{source: [targets]}`.
struct FallbackRule {
    source: String,
    targets: Vec<String>,
    path: String,
}

struct Alias {
    alias: String,
    target: String,
    hidden: bool,
    path: String,
}

/// What the router and module settings say about routing.
#[derive(Default)]
pub(super) struct Routing {
    fallbacks: Vec<FallbackRule>,
    default_fallbacks: Option<(Vec<String>, String)>,
    aliases: Vec<Alias>,
    num_retries: Option<(u64, String)>,
    timeout: Option<(f64, String)>,
    drop_params: bool,
}

impl Routing {
    /// Reads `router_settings`, then `litellm_settings` (LiteLLM's router takes its own
    /// settings first, the module's when it has none).
    pub fn read(
        router: Option<(Value, String)>,
        module: Option<(Value, String)>,
        report: &mut Report,
    ) -> Routing {
        let mut routing = Routing::default();
        for (section, path) in [router, module].into_iter().flatten() {
            let Some(map) = section.as_mapping() else {
                report.left_out(path, "not a mapping");
                continue;
            };
            let mut fields = Fields::new(map, &path);
            routing.take_section(&mut fields, report);
            for (key, path) in fields.rest() {
                let (severity, why) = no_equivalent(&key);
                match severity {
                    Severity::LeftOut => report.left_out(path, why),
                    Severity::Note => report.note(path, why),
                };
            }
        }
        routing
    }

    fn take_section(&mut self, fields: &mut Fields, report: &mut Report) {
        let first = |set: bool, path: &str, report: &mut Report| {
            if set {
                report.note(
                    path,
                    "router_settings gives it too, and LiteLLM's router takes that one",
                );
            }
            !set
        };
        if let Some((value, path)) = fields.take("routing_strategy") {
            let strategy = text(&value).unwrap_or_default();
            if strategy != "simple-shuffle" {
                report.left_out(
                    path,
                    format!(
                        "`{strategy}`: Switchboard picks a model's deployments at random by \
                         weight, as simple-shuffle does (weights come from weight, rpm or tpm)"
                    ),
                );
            }
        }
        if let Some((value, path)) = fields.take("model_group_alias") {
            self.read_aliases(&value, &path, report);
        }
        for key in ["fallbacks", "default_fallbacks"] {
            if let Some((value, path)) = fields.take(key) {
                let set = if key == "fallbacks" {
                    !self.fallbacks.is_empty()
                } else {
                    self.default_fallbacks.is_some()
                };
                if first(set, &path, report) {
                    self.read_fallbacks(key, &value, &path, report);
                }
            }
        }
        for key in ["context_window_fallbacks", "content_policy_fallbacks"] {
            if let Some((_, path)) = fields.take(key) {
                report.left_out(
                    path,
                    "Switchboard falls back on 429, 5xx, timeouts and connection failures: a \
                     provider's 400 (context window, content policy) goes back to the client",
                );
            }
        }
        if let Some((value, path)) = fields.take("num_retries") {
            match number(&value).filter(|n| *n >= 0.0 && n.fract() == 0.0) {
                Some(n) if first(self.num_retries.is_some(), &path, report) => {
                    self.num_retries = Some((n as u64, path));
                }
                Some(_) => {}
                None => {
                    report.left_out(path, "not a whole number");
                }
            }
        }
        for key in ["timeout", "request_timeout"] {
            if let Some((value, path)) = fields.take(key) {
                match number(&value).filter(|n| *n > 0.0) {
                    Some(s) if first(self.timeout.is_some(), &path, report) => {
                        self.timeout = Some((s, path));
                    }
                    Some(_) => {}
                    None => {
                        report.left_out(path, "not a number of seconds");
                    }
                }
            }
        }
        if let Some((value, path)) = fields.take("drop_params") {
            match boolean(&value) {
                Some(b) => self.drop_params = b,
                None => {
                    report.left_out(path, "not true or false");
                }
            }
        }
    }

    fn read_aliases(&mut self, value: &Value, path: &str, report: &mut Report) {
        let Some(map) = value.as_mapping() else {
            report.left_out(path, "not a mapping of alias to model");
            return;
        };
        for (alias, target) in map {
            let alias = text(alias).unwrap_or_default();
            let at = format!("{path}.{alias}");
            let (target, hidden) = match target {
                Value::Mapping(m) => (
                    m.get("model").and_then(text),
                    m.get("hidden").and_then(boolean).unwrap_or(false),
                ),
                other => (text(other), false),
            };
            match target {
                Some(target) => self.aliases.push(Alias {
                    alias,
                    target,
                    hidden,
                    path: at,
                }),
                None => {
                    report.left_out(at, "no model named");
                }
            }
        }
    }

    fn read_fallbacks(&mut self, key: &str, value: &Value, path: &str, report: &mut Report) {
        if key == "default_fallbacks" {
            match names(value) {
                Some(targets) => self.default_fallbacks = Some((targets, path.to_owned())),
                None => {
                    report.left_out(path, "not a list of model names");
                }
            }
            return;
        }
        // `[{gpt-4o: [claude]}, ...]` (a single mapping also reads).
        let rules: Vec<(usize, &serde_yaml::Mapping)> = match value {
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item.as_mapping() {
                    Some(m) => Some((i, m)),
                    None => {
                        report.left_out(format!("{path}[{i}]"), "not {model: [fallbacks]}");
                        None
                    }
                })
                .collect(),
            Value::Mapping(m) => vec![(0, m)],
            _ => {
                report.left_out(path, "not a list of {model: [fallbacks]}");
                return;
            }
        };
        for (i, map) in rules {
            for (source, targets) in map {
                let source = text(source).unwrap_or_default();
                let at = format!("{path}[{i}].{source}");
                match names(targets) {
                    // LiteLLM's `*` entry is the default for every model.
                    Some(targets) if source == "*" => {
                        if self.default_fallbacks.is_none() {
                            self.default_fallbacks = Some((targets, at));
                        }
                    }
                    Some(targets) => self.fallbacks.push(FallbackRule {
                        source,
                        targets,
                        path: at,
                    }),
                    None => {
                        report.left_out(at, "not a list of model names");
                    }
                }
            }
        }
    }

    /// Gives the models their aliases, fallbacks and `drop_unsupported_params`; returns the
    /// `options` entries (retries, the timeout).
    pub fn apply(self, models: &mut [ModelDraft], report: &mut Report) -> Vec<(String, Node)> {
        for model in models.iter_mut() {
            let explicit: Vec<bool> = model
                .deployments
                .iter()
                .filter_map(|d| d.drop_params)
                .collect();
            let any_true = explicit.iter().any(|b| *b);
            let all_false = explicit.len() == model.deployments.len() && !any_true;
            model.drop_unsupported_params = any_true || (self.drop_params && !all_false);
            let mixed = !explicit.is_empty()
                && (explicit.len() < model.deployments.len()
                    || explicit.iter().any(|b| *b != any_true));
            if mixed && model.drop_unsupported_params {
                for d in model.deployments.iter().filter(|d| d.drop_params.is_some()) {
                    report.note(
                        format!("{}.litellm_params.drop_params", d.path),
                        "Switchboard drops unsupported parameters per model: on for all of \
                         its deployments",
                    );
                }
            }
        }

        let lookup = Lookup::new(models, &self.aliases);
        for alias in &self.aliases {
            if lookup.model_index(&alias.alias).is_some() {
                report.left_out(
                    &alias.path,
                    format!(
                        "a model is named `{}` too: Switchboard cannot have both",
                        alias.alias
                    ),
                );
                continue;
            }
            let Some(i) = lookup.model_index(&alias.target) else {
                report.left_out(&alias.path, format!("no model `{}` to alias", alias.target));
                continue;
            };
            if let Some(model) = models.get_mut(i) {
                if !model.aliases.contains(&alias.alias) {
                    model.aliases.push(alias.alias.clone());
                }
            }
            if !alias.hidden {
                report.note(
                    &alias.path,
                    "aliases are not listed by Switchboard's /v1/models (as `hidden: true` in \
                     LiteLLM)",
                );
            }
        }

        let mut has_rule = vec![false; models.len()];
        for rule in &self.fallbacks {
            let Some(i) = lookup.resolve(&rule.source, &rule.path, report) else {
                report.left_out(
                    &rule.path,
                    format!("no model `{}` to fall back from", rule.source),
                );
                continue;
            };
            if has_rule.get(i).copied().unwrap_or(true) {
                report.note(&rule.path, "an earlier entry for this model applies");
                continue;
            }
            if let Some(flag) = has_rule.get_mut(i) {
                *flag = true;
            }
            let targets = lookup.targets(i, &rule.targets, &rule.path, report);
            if let Some(model) = models.get_mut(i) {
                model.fallbacks = targets;
            }
        }
        if let Some((defaults, path)) = &self.default_fallbacks {
            let mut reported = false;
            for (i, model) in models.iter_mut().enumerate() {
                if has_rule.get(i).copied().unwrap_or(true) {
                    continue;
                }
                // Unknown defaults are reported once, not per model.
                let mut quiet = Report::default();
                let report_here = if reported { &mut quiet } else { &mut *report };
                model.fallbacks = lookup.targets(i, defaults, path, report_here);
                reported = true;
            }
        }

        let mut options = Vec::new();
        if let Some((secs, _)) = self.timeout {
            options.push(("request_timeout".to_owned(), Node::str(seconds(secs))));
        }
        if let Some((retries, path)) = self.num_retries {
            let deepest = models.iter().map(|m| m.fallbacks.len()).max().unwrap_or(0) as u64;
            if retries < deepest {
                report.note(
                    path,
                    format!(
                        "each Switchboard retry goes to the next fallback model (LiteLLM \
                         retries the same model first): options.retries is {deepest}, enough \
                         to reach every fallback"
                    ),
                );
            }
            options.push(("retries".to_owned(), Node::Int(retries.max(deepest))));
        }
        options
    }
}

/// Finds models by name, alias, or a deployment's `model_info.id`.
struct Lookup {
    names: Vec<String>,
    aliases: Vec<(String, String)>,
    ids: Vec<(String, usize)>,
}

impl Lookup {
    fn new(models: &[ModelDraft], aliases: &[Alias]) -> Lookup {
        Lookup {
            names: models.iter().map(|m| m.name.clone()).collect(),
            aliases: aliases
                .iter()
                .map(|a| (a.alias.clone(), a.target.clone()))
                .collect(),
            ids: models
                .iter()
                .enumerate()
                .flat_map(|(i, m)| {
                    m.deployments
                        .iter()
                        .filter_map(move |d| d.id.clone().map(|id| (id, i)))
                })
                .collect(),
        }
    }

    fn model_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The model `name` means: its own, an alias's (noted), or a deployment id's (noted).
    fn resolve(&self, name: &str, path: &str, report: &mut Report) -> Option<usize> {
        if let Some(i) = self.model_index(name) {
            return Some(i);
        }
        if let Some((_, target)) = self.aliases.iter().find(|(a, _)| a == name) {
            let i = self.model_index(target)?;
            report.note(
                path,
                format!("`{name}` is an alias: its model `{target}` is meant"),
            );
            return Some(i);
        }
        let (_, i) = self.ids.iter().find(|(id, _)| id == name)?;
        let model = self.names.get(*i).map_or("", String::as_str);
        report.note(
            path,
            format!(
                "`{name}` is a deployment id: Switchboard falls back to its whole model `{model}`"
            ),
        );
        Some(*i)
    }

    /// Fallback model names for model `from`, each resolved once, itself left out.
    fn targets(
        &self,
        from: usize,
        targets: &[String],
        path: &str,
        report: &mut Report,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for target in targets {
            match self.resolve(target, path, report) {
                Some(i) if i == from => {}
                Some(i) => {
                    if let Some(name) = self.names.get(i) {
                        if !out.contains(name) {
                            out.push(name.clone());
                        }
                    }
                }
                None => {
                    report.left_out(path, format!("no model `{target}` to fall back to"));
                }
            }
        }
        out
    }
}

/// `30s`, `1.5s`.
fn seconds(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as u64;
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// `general_settings`: the proxy server's own settings; Switchboard has none of them.
pub(super) fn general(section: &Value, path: &str, report: &mut Report) {
    let Some(map) = section.as_mapping() else {
        report.left_out(path, "not a mapping");
        return;
    };
    for (key, _) in map {
        let key = text(key).unwrap_or_default();
        let (severity, why) = no_equivalent(&key);
        let at = format!("{path}.{key}");
        match severity {
            Severity::LeftOut => report.left_out(at, why),
            Severity::Note => report.note(at, why),
        };
    }
}

/// `environment_variables`: names and values (values are never reported).
pub(super) fn env_section(section: &Value, path: &str, report: &mut Report) -> Vec<EnvEntry> {
    let Some(map) = section.as_mapping() else {
        report.left_out(path, "not a mapping");
        return Vec::new();
    };
    map.iter()
        .map(|(name, value)| {
            let name = text(name).unwrap_or_default();
            EnvEntry {
                path: format!("{path}.{name}"),
                value: text(value),
                name,
                resolved: false,
            }
        })
        .collect()
}

/// `credential_list`: named sets of `litellm_params` values.
pub(super) fn credential_list(list: &Value, path: &str, report: &mut Report) -> Vec<Credential> {
    let Some(items) = list.as_sequence() else {
        report.left_out(path, "not a list");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let name = item.get("credential_name").and_then(text);
        let values = item.get("credential_values").and_then(Value::as_mapping);
        match (name, values) {
            (Some(name), Some(values)) => out.push(Credential {
                name,
                values: values.clone(),
                path: at,
                used: false,
            }),
            _ => {
                report.left_out(at, "needs credential_name and credential_values");
            }
        }
    }
    out
}

const REQUEST_DEFAULT: &str = "a request parameter LiteLLM adds to every call: Switchboard \
                               sends the client's parameters and adds none";
const GENERIC: &str = "no equivalent in Switchboard";

/// Why a LiteLLM setting or parameter is not carried over, and whether that loses anything.
pub(super) fn no_equivalent(key: &str) -> (Severity, &'static str) {
    use Severity::{LeftOut, Note};
    let why = match key {
        "temperature"
        | "top_p"
        | "top_k"
        | "seed"
        | "stop"
        | "presence_penalty"
        | "frequency_penalty"
        | "n"
        | "response_format"
        | "user"
        | "logit_bias"
        | "reasoning_effort"
        | "max_completion_tokens"
        | "tools"
        | "tool_choice"
        | "thinking"
        | "extra_body"
        | "logprobs"
        | "top_logprobs" => REQUEST_DEFAULT,
        "timeout" | "stream_timeout" => {
            "a per-deployment timeout: Switchboard has options.request_timeout and \
             options.per_try_timeout for every model"
        }
        "max_retries" => {
            "retries inside one deployment: Envoy's retries (options.retries) cover every model"
        }
        "max_parallel_requests" | "default_max_parallel_requests" => {
            "no cap on concurrent requests per deployment (virtual keys have max_parallel)"
        }
        "global_max_parallel_requests" => {
            "no proxy-wide cap on concurrent requests (Envoy's circuit breakers can set one)"
        }
        "order" => "priorities among a model's deployments: use fallbacks to other models",
        "tags" | "enable_tag_filtering" | "tag_filtering_match_any" => {
            "tag-based routing has no equivalent"
        }
        "region_name" => "region-based routing has no equivalent",
        "cooldown_time" | "allowed_fails" | "allowed_fails_policy" | "disable_cooldowns" => {
            "no cooldowns: a failed attempt is retried on the next deployment or fallback"
        }
        "mock_response" => "no mock responses",
        "additional_drop_params" | "allowed_openai_params" => {
            "Switchboard drops every unsupported parameter or none (drop_unsupported_params)"
        }
        "aws_role_name"
        | "aws_session_name"
        | "aws_profile_name"
        | "aws_web_identity_token"
        | "aws_sts_endpoint"
        | "aws_external_id" => {
            "Switchboard signs with access keys (or a Bedrock API key): it assumes no role and \
             reads no profile"
        }
        "azure_ad_token_provider"
        | "tenant_id"
        | "client_id"
        | "client_secret"
        | "azure_username"
        | "azure_password"
        | "azure_scope" => {
            "Switchboard sends a static api-key or Entra ID token (auth: bearer): it fetches no \
             tokens"
        }
        "use_in_pass_through" | "use_litellm_proxy" => "no pass-through endpoints",
        "access_groups" => "model access groups: give keys model globs (keys[].models)",
        "health_check_model"
        | "health_check_timeout"
        | "background_health_checks"
        | "health_check_interval" => {
            "no active health checks: failed attempts fall back (Envoy retries)"
        }
        "routing_strategy_args" => "routing strategy settings: Switchboard weighs by weight",
        "redis_host" | "redis_port" | "redis_password" | "redis_url" | "cache_responses"
        | "cache_kwargs" | "client_ttl" => {
            "no shared Redis state: each Envoy routes and counts on its own"
        }
        "retry_policy" | "model_group_retry_policy" | "retry_after" => {
            "retries per error type: Envoy retries 429, 5xx, resets and connection failures \
             alike (options.retries)"
        }
        "enable_pre_call_checks" | "optional_pre_call_checks" => {
            "no pre-call checks (context window, region, deployment rate limits)"
        }
        "provider_budget_config" | "max_budget" | "budget_duration" | "max_end_user_budget" => {
            "budgets are per virtual key and team (keys:, teams:)"
        }
        "success_callback" | "failure_callback" | "callbacks" | "service_callbacks" | "logging" => {
            "logging callbacks: Switchboard writes a JSON access log (the spend ledger) and \
             Prometheus metrics"
        }
        "cache" | "cache_params" => "no response cache",
        "set_verbose" | "json_logs" => "LiteLLM's own logging",
        "turn_off_message_logging"
        | "redact_user_api_key_info"
        | "redact_messages_in_exceptions" => {
            return (Note, "Switchboard logs no messages and no keys");
        }
        "guardrails" => "no guardrails",
        "modify_params" => "Switchboard rewrites requests only to translate them",
        "master_key" => {
            "Switchboard authenticates clients with virtual keys: `switchboard key new` prints \
             one and its keys: entry"
        }
        "database_url"
        | "store_model_in_db"
        | "database_connection_pool_limit"
        | "database_connection_timeout"
        | "disable_spend_logs"
        | "proxy_batch_write_at"
        | "use_redis_transaction_buffer"
        | "maximum_spend_logs_retention_period" => {
            "Switchboard keeps no database: this file is its whole configuration"
        }
        "alerting" | "alerting_threshold" | "alert_types" | "alert_to_webhook_url" => {
            "no alerting: alert on the Prometheus metrics"
        }
        "include" => "included files are not read: import each of them",
        "model_info" => "informational",
        _ if key.contains("cost_per") || key.contains("_cost") => {
            "Switchboard prices tokens only (USD per million)"
        }
        _ => GENERIC,
    };
    (LeftOut, why)
}
