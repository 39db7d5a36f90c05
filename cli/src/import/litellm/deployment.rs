//! One `model_list` entry: the provider kind its `litellm_params.model` prefix names (from
//! the kinds' descriptors), the provider's address and credentials, and the deployment's
//! model id, weight hints, price and defaults. Then, per model, the weights LiteLLM's
//! simple-shuffle would pick by and the `max_tokens` its deployments give.

use super::fields::{boolean, number, text, Fields};
use super::settings::no_equivalent;
use super::{Context, ModelDraft, Pending, PendingWhat, ProviderDraft, Secret, Setting};
use crate::import::report::{Report, Severity};
use serde_yaml::Value;
use switchboard_core::providers::kinds::{self, ApiKey, Kind, KINDS};
use switchboard_core::usage::litellm::{is_price_field, price_of};
use switchboard_core::usage::pricing::PriceSpec;

/// A number from the file with its path.
pub(super) struct Hint {
    pub value: f64,
    pub path: String,
}

pub(super) struct DeploymentDraft {
    /// The `model_list` entry.
    pub path: String,
    pub model_name: String,
    pub provider: usize,
    /// The provider's model id (Azure: the deployment name).
    pub model: String,
    pub weight: Option<Hint>,
    pub rpm: Option<Hint>,
    pub tpm: Option<Hint>,
    /// The weight written (set by [`balance`]; none when the model's deployments weigh alike).
    pub out_weight: Option<u64>,
    pub price: Option<PriceSpec>,
    pub price_as: Option<String>,
    pub max_tokens: Option<Hint>,
    pub drop_params: Option<bool>,
    /// `model_info.id`: fallbacks may name a deployment by it.
    pub id: Option<String>,
}

/// Where a `litellm_params.model` goes.
pub(super) enum Route {
    /// A kind, the prefix that named it (none for a bare name) and the model id behind it.
    Kind(&'static Kind, &'static str, String),
    /// A LiteLLM provider without a Switchboard kind.
    Unknown(String),
}

/// The kind whose LiteLLM prefix `model` starts with (the longest wins). A bare name is
/// OpenAI's, as in LiteLLM, except Anthropic's `claude-*` models, which LiteLLM also knows.
pub(super) fn route(model: &str) -> Route {
    let best = KINDS
        .iter()
        .flat_map(|k| k.litellm_prefixes.iter().map(move |p| (k, *p)))
        .filter(|(_, prefix)| model.starts_with(prefix))
        .max_by_key(|(_, prefix)| prefix.len());
    if let Some((kind, prefix)) = best {
        let id = model.strip_prefix(prefix).unwrap_or(model).to_owned();
        return Route::Kind(kind, prefix, id);
    }
    if let Some((provider, _)) = model.split_once('/') {
        return Route::Unknown(provider.to_owned());
    }
    let bare = if model.starts_with("claude") {
        "anthropic"
    } else {
        "openai"
    };
    match kinds::find(bare) {
        Some(kind) => Route::Kind(kind, "", model.to_owned()),
        None => Route::Unknown(bare.to_owned()),
    }
}

/// Reads entry `path` of `model_list`; `None` when it cannot become a deployment (reported).
pub(super) fn read(entry: &Value, path: &str, cx: &mut Context) -> Option<DeploymentDraft> {
    let Some(map) = entry.as_mapping() else {
        cx.report.left_out(path, "not a mapping: skipped");
        return None;
    };
    let mut top = Fields::new(map, path);
    let model_name = match top.take("model_name").and_then(|(v, _)| text(&v)) {
        Some(name) if !name.trim().is_empty() => name,
        _ => {
            cx.report.left_out(path, "no model_name: skipped");
            return None;
        }
    };
    let Some((params, params_path)) = top.take("litellm_params") else {
        cx.report.left_out(path, "no litellm_params: skipped");
        return None;
    };
    let Some(params) = params.as_mapping() else {
        cx.report
            .left_out(params_path, "not a mapping: the entry is skipped");
        return None;
    };
    let mut params = Fields::new(params, &params_path);
    if let Some((value, at)) = params.take("litellm_credential_name") {
        match text(&value).and_then(|name| cx.credential(&name)) {
            Some((values, credential_path)) => {
                params.extend(&values, &format!("{credential_path}.credential_values"))
            }
            None => {
                cx.report.left_out(
                    at,
                    "no such entry in credential_list: its values are missing",
                );
            }
        }
    }
    let mut info = match top.take("model_info") {
        Some((Value::Mapping(m), at)) => Some(Fields::new(&m, &at)),
        Some((_, at)) => {
            cx.report.left_out(at, "not a mapping");
            None
        }
        None => None,
    };

    let Some((model, model_path)) = params.take("model") else {
        cx.report
            .left_out(params.path(), "no `model`: the entry is skipped");
        return None;
    };
    let Some(model) = text(&model) else {
        cx.report.left_out(model_path, "not a model name: skipped");
        return None;
    };
    let model = match params
        .take("custom_llm_provider")
        .and_then(|(v, _)| text(&v))
    {
        Some(p) if !model.starts_with(&format!("{p}/")) => format!("{p}/{model}"),
        _ => model,
    };
    let (kind, prefix, id) = match route(&model) {
        Route::Kind(kind, prefix, id) => (kind, prefix, id),
        Route::Unknown(provider) => {
            cx.report.left_out(
                model_path,
                format!(
                    "LiteLLM provider `{provider}` has no Switchboard kind (`switchboard \
                     providers` lists them): the entry is skipped"
                ),
            );
            return None;
        }
    };
    if id.contains('*') && prefix.is_empty() {
        cx.report.left_out(
            model_path,
            format!(
                "wildcard `{model}` (any model of any provider LiteLLM has credentials for): \
                 no equivalent, Switchboard serves only the models listed by name"
            ),
        );
        return None;
    }
    if kind.name == "bedrock" && id.contains('/') && !id.starts_with("arn:") {
        let route = id.split('/').next().unwrap_or_default();
        cx.report.left_out(
            model_path,
            format!("LiteLLM's `bedrock/{route}/` route has no equivalent: the entry is skipped"),
        );
        return None;
    }
    if prefix == "bedrock/invoke/" {
        cx.report.note(
            &model_path,
            "served through Bedrock's Converse API, as every Bedrock chat model here",
        );
    }

    let mut literals = Vec::new();
    let Some(draft) = provider(kind, &id, &mut params, &mut literals, cx) else {
        cx.report
            .left_out(path, "skipped: its provider cannot be written (above)");
        return None;
    };
    let provider = cx.provider(draft);
    for (at, field) in literals {
        let item = cx.report.left_out(at, "");
        cx.pending.push(Pending {
            item,
            provider,
            what: PendingWhat::Literal(field),
        });
    }
    if model_name.contains('*') || id.contains('*') {
        let pattern = if id.contains('*') { model } else { model_name };
        let item = cx.report.left_out(path, "");
        cx.pending.push(Pending {
            item,
            provider,
            what: PendingWhat::Wildcard(pattern),
        });
        report_rest(params, info, top, &mut cx.report);
        return None;
    }

    let hint = |fields: &mut Fields, key: &str, report: &mut Report| {
        let (value, at) = fields.take(key)?;
        match number(&value) {
            Some(value) if value >= 0.0 => Some(Hint { value, path: at }),
            _ => {
                report.left_out(at, "not a number of at least 0");
                None
            }
        }
    };
    let weight = hint(&mut params, "weight", &mut cx.report);
    let rpm =
        hint(&mut params, "rpm", &mut cx.report).or_else(|| hint(&mut top, "rpm", &mut cx.report));
    let tpm =
        hint(&mut params, "tpm", &mut cx.report).or_else(|| hint(&mut top, "tpm", &mut cx.report));
    let max_tokens = hint(&mut params, "max_tokens", &mut cx.report);
    let drop_params = params.take("drop_params").and_then(|(v, at)| {
        let b = boolean(&v);
        if b.is_none() {
            cx.report.left_out(at, "not true or false");
        }
        b
    });

    // Custom prices: `litellm_params` first, then `model_info`.
    let mut price_fields = serde_json::Map::new();
    let mut price_paths = Vec::new();
    let info_prices = info
        .as_mut()
        .map(|i| i.take_where(is_price_field))
        .unwrap_or_default();
    for (key, value, at) in params
        .take_where(is_price_field)
        .into_iter()
        .chain(info_prices)
    {
        if !price_fields.contains_key(&key) {
            price_fields.insert(key, serde_json::to_value(&value).unwrap_or_default());
            price_paths.push(at);
        }
    }
    let price = if price_fields.is_empty() {
        None
    } else {
        let price = price_of(&price_fields);
        if price.is_none() {
            for at in price_paths {
                cx.report.left_out(
                    at,
                    "a price needs input_cost_per_token (USD per token) to be carried over",
                );
            }
        }
        price
    };
    let mut price_as = None;
    let mut id_in_info = None;
    if let Some(info) = info.as_mut() {
        if let Some((value, at)) = info.take("base_model") {
            if price.is_some() {
                cx.report.note(
                    at,
                    "the deployment's own price applies (no price_as needed)",
                );
            } else {
                price_as = text(&value);
            }
        }
        id_in_info = info.take("id").and_then(|(v, at)| {
            cx.report.note(
                at,
                "Switchboard names deployments by model and position (`gpt-4o/0`); \
                 fallbacks to this id go to its model",
            );
            text(&v)
        });
    }
    report_rest(params, info, top, &mut cx.report);
    Some(DeploymentDraft {
        path: path.to_owned(),
        model_name,
        provider,
        model: id,
        weight,
        rpm,
        tpm,
        out_weight: None,
        price,
        price_as,
        max_tokens,
        drop_params,
        id: id_in_info,
    })
}

/// The provider a deployment's parameters describe: address, credentials, the kind's
/// settings. `None` when it cannot have one (reported).
fn provider(
    kind: &'static Kind,
    model_id: &str,
    params: &mut Fields,
    literals: &mut Vec<(String, String)>,
    cx: &mut Context,
) -> Option<ProviderDraft> {
    let mut kind = kind;
    let mut draft = ProviderDraft {
        kind,
        base_url: None,
        api_key: None,
        settings: Vec::new(),
        headers: Vec::new(),
    };
    let mut base_url = match params.take("api_base") {
        Some((value, at)) => Some((cx.literal(&value, &at)?, at)),
        None => None,
    };
    match kind.name {
        "openai" => {
            // `openai/` at another address is LiteLLM's OpenAI-compatible server.
            let elsewhere = base_url
                .as_ref()
                .is_some_and(|(url, _)| !url.contains("://api.openai.com"));
            if let Some(compatible) = kinds::find("openai_compatible").filter(|_| elsewhere) {
                kind = compatible;
            }
            if let Some((value, at)) = params.take("organization") {
                let org = match super::fields::env_reference(&value) {
                    Some(name) => Setting::Secret(Secret::Env(name.to_owned())),
                    None => Setting::Text(cx.literal(&value, &at)?),
                };
                draft.headers.push(("OpenAI-Organization".into(), org));
            }
        }
        "ollama" => {
            // LiteLLM's address is the server's root; Switchboard speaks its /v1 API.
            if let Some((url, at)) = base_url.as_mut() {
                let root = url.trim_end_matches('/');
                if !root.ends_with("/v1") {
                    *url = format!("{root}/v1");
                    cx.report.note(
                        at.as_str(),
                        "`/v1` added: Switchboard speaks Ollama's OpenAI API",
                    );
                }
            }
        }
        "azure" => {
            if base_url.is_none() {
                match cx.resolve("AZURE_API_BASE") {
                    Some(url) => {
                        cx.report.note(
                            params.at("api_base"),
                            "none given: AZURE_API_BASE at import, as LiteLLM reads it",
                        );
                        base_url = Some((url, params.at("api_base")));
                    }
                    None => {
                        cx.report.left_out(
                            params.at("api_base"),
                            "no api_base, and AZURE_API_BASE is not set here: the entry is \
                             skipped (import with it set)",
                        );
                        return None;
                    }
                }
            }
            match params.take("api_version") {
                Some((value, at)) => {
                    let version = cx.literal(&value, &at)?;
                    draft.settings.push(("api_version", Setting::Text(version)));
                }
                None => {
                    cx.report.note(
                        params.at("api_version"),
                        "none given: Switchboard sends its default api-version (LiteLLM's \
                         came from AZURE_API_VERSION or its own default)",
                    );
                }
            }
            if let Some((value, at)) = params.take("azure_ad_token") {
                if params.has("api_key") {
                    cx.report
                        .left_out(at, "api_key is used: one credential per provider");
                } else {
                    draft.api_key = cx.secret(&value, &at, "api_key", literals);
                    draft
                        .settings
                        .push(("auth", Setting::Text("bearer".into())));
                }
            }
        }
        "bedrock" => {
            let region = bedrock_region(model_id, params, cx);
            draft.settings.push(("region", Setting::Text(region)));
            if base_url.is_none() {
                if let Some((value, at)) = params.take("aws_bedrock_runtime_endpoint") {
                    base_url = Some((cx.literal(&value, &at)?, at));
                }
            }
            let mut keys = 0;
            for (litellm, field) in [
                ("aws_access_key_id", "access_key_id"),
                ("aws_secret_access_key", "secret_access_key"),
                ("aws_session_token", "session_token"),
            ] {
                if let Some((value, at)) = params.take(litellm) {
                    if let Some(secret) = cx.secret(&value, &at, field, literals) {
                        draft.settings.push((field, Setting::Secret(secret)));
                        keys += 1;
                    }
                }
            }
            if keys == 0 && !params.has("api_key") {
                cx.report.note(
                    params.path(),
                    "no AWS keys: Switchboard reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY \
                     and AWS_SESSION_TOKEN from Envoy's environment (no roles, profiles or \
                     instance credentials)",
                );
            }
        }
        "vertex" => {
            let project = match params.take("vertex_project") {
                Some((value, at)) => match super::fields::env_reference(&value) {
                    Some(name) => Setting::Secret(Secret::Env(name.to_owned())),
                    None => Setting::Text(cx.literal(&value, &at)?),
                },
                None => {
                    cx.report.note(
                        params.at("vertex_project"),
                        "none given: read from VERTEXAI_PROJECT, as LiteLLM does",
                    );
                    Setting::Secret(Secret::Env("VERTEXAI_PROJECT".into()))
                }
            };
            let location = match params.take("vertex_location") {
                Some((value, at)) => cx.literal(&value, &at),
                None => None,
            }
            .or_else(|| cx.resolve("VERTEXAI_LOCATION"))
            .unwrap_or_else(|| {
                cx.report.note(
                    params.at("vertex_location"),
                    "none given: us-central1, LiteLLM's default",
                );
                "us-central1".into()
            });
            draft.settings.push(("project", project));
            draft.settings.push(("location", Setting::Text(location)));
            let at = match params.take("vertex_credentials") {
                Some((_, at)) => at,
                None => params.path().to_owned(),
            };
            cx.report.left_out(
                at,
                "Google credentials: Switchboard sends the OAuth access token in api_key and \
                 cannot mint or refresh one: refresh it as examples/vertex.yaml shows",
            );
        }
        _ => {}
    }
    draft.kind = kind;
    draft.base_url = base_url.map(|(url, _)| url.trim_end_matches('/').to_owned());
    if let Some((value, at)) = params.take("api_key") {
        // LiteLLM's docs write `api_key: none` for servers that take no key.
        let placeholder = matches!(kind.api_key, ApiKey::Optional)
            && text(&value).is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
        if placeholder {
            cx.report.note(at, "`none`: the provider sends no key");
        } else {
            draft.api_key = cx.secret(&value, &at, "api_key", literals);
        }
    }
    if draft.api_key.is_none() {
        if let ApiKey::Required { example } = kind.api_key {
            cx.report.note(
                params.at("api_key"),
                format!("none given: the provider reads {{env: {example}}}"),
            );
            draft.api_key = Some(Secret::Env(example.to_owned()));
        }
    }
    if let Some((value, at)) = params.take("extra_headers") {
        match value.as_mapping() {
            Some(headers) => {
                for (name, value) in headers {
                    let Some(name) = text(name) else { continue };
                    let at = format!("{at}.{name}");
                    let credential = ["auth", "key", "token", "secret"]
                        .iter()
                        .any(|w| name.to_ascii_lowercase().contains(w));
                    let setting = if credential {
                        cx.secret(value, &at, &name, literals).map(Setting::Secret)
                    } else if let Some(env) = super::fields::env_reference(value) {
                        Some(Setting::Secret(Secret::Env(env.to_owned())))
                    } else {
                        cx.literal(value, &at).map(Setting::Text)
                    };
                    if let Some(setting) = setting {
                        draft.headers.push((name, setting));
                    }
                }
            }
            None => {
                cx.report.left_out(at, "not a mapping of headers");
            }
        }
    }
    Some(draft)
}

/// Bedrock's region, found as LiteLLM finds it: `aws_region_name`, the model's ARN,
/// AWS_REGION_NAME, AWS_REGION, else us-west-2. Switchboard needs it written.
fn bedrock_region(model_id: &str, params: &mut Fields, cx: &mut Context) -> String {
    let at = params.at("aws_region_name");
    if let Some((value, at)) = params.take("aws_region_name") {
        if let Some(region) = cx.literal(&value, &at) {
            return region;
        }
    }
    if let Some(region) = model_id
        .strip_prefix("arn:aws:bedrock:")
        .and_then(|rest| rest.split(':').next())
        .filter(|r| !r.is_empty())
    {
        return region.to_owned();
    }
    for name in ["AWS_REGION_NAME", "AWS_REGION"] {
        if let Some(region) = cx.resolve(name) {
            cx.report.note(
                &at,
                format!("none given: {name} at import, as LiteLLM reads it"),
            );
            return region;
        }
    }
    cx.report
        .note(&at, "none given: us-west-2, LiteLLM's default");
    "us-west-2".into()
}

/// Reports every field of the entry no one took.
fn report_rest(params: Fields, info: Option<Fields>, top: Fields, report: &mut Report) {
    for (key, path) in params.rest() {
        let (severity, why) = no_equivalent(&key);
        push(report, severity, path, why);
    }
    if let Some(info) = info {
        for (key, path) in info.rest() {
            let informational = key == "mode"
                || key.starts_with("supports_")
                || key.starts_with("max_")
                || key == "description";
            if informational {
                report.note(path, "informational: Switchboard does not need it");
            } else {
                let (severity, why) = no_equivalent(&key);
                push(report, severity, path, why);
            }
        }
    }
    for (key, path) in top.rest() {
        let (severity, why) = no_equivalent(&key);
        push(report, severity, path, why);
    }
}

fn push(report: &mut Report, severity: Severity, path: String, message: &str) {
    match severity {
        Severity::LeftOut => report.left_out(path, message),
        Severity::Note => report.note(path, message),
    };
}

/// Which hint LiteLLM's simple-shuffle weighs a model's deployments by.
#[derive(Clone, Copy, PartialEq)]
enum Basis {
    Weight,
    Rpm,
    Tpm,
}

/// Sets the weights as simple-shuffle picks: by `weight` if the model's first deployment has
/// one, else by `rpm`, else by `tpm` (a deployment without it weighs 0 and is never picked),
/// else evenly. Reports rpm and tpm, which are also limits in LiteLLM.
pub(super) fn balance(model: &mut ModelDraft, report: &mut Report) {
    let basis = model.deployments.first().and_then(|d| {
        if d.weight.is_some() {
            Some(Basis::Weight)
        } else if d.rpm.is_some() {
            Some(Basis::Rpm)
        } else if d.tpm.is_some() {
            Some(Basis::Tpm)
        } else {
            None
        }
    });
    let several = model.deployments.len() > 1;
    for d in &model.deployments {
        for (hint, this) in [(&d.rpm, Basis::Rpm), (&d.tpm, Basis::Tpm)] {
            let Some(hint) = hint else { continue };
            let message = if several && basis == Some(this) {
                "carried as the deployment's weight (simple-shuffle weighs by it); as a \
                 per-deployment limit (LiteLLM also caps concurrent requests by it) it has no \
                 equivalent: virtual keys and teams have rpm and tpm"
            } else {
                "a per-deployment limit (LiteLLM also caps concurrent requests by it): no \
                 equivalent; virtual keys and teams have rpm and tpm"
            };
            report.left_out(&hint.path, message);
        }
    }
    let Some(basis) = basis.filter(|_| several) else {
        return;
    };
    let of = |d: &DeploymentDraft| {
        match basis {
            Basis::Weight => d.weight.as_ref(),
            Basis::Rpm => d.rpm.as_ref(),
            Basis::Tpm => d.tpm.as_ref(),
        }
        .map_or(0.0, |h| h.value)
    };
    let label = match basis {
        Basis::Weight => "weight",
        Basis::Rpm => "rpm",
        Basis::Tpm => "tpm",
    };
    let hint_path = |d: &DeploymentDraft| {
        match basis {
            Basis::Weight => d.weight.as_ref(),
            Basis::Rpm => d.rpm.as_ref(),
            Basis::Tpm => d.tpm.as_ref(),
        }
        .map_or_else(|| d.path.clone(), |h| h.path.clone())
    };
    if model.deployments.iter().all(|d| of(d) == 0.0) {
        if let Some(first) = model.deployments.first() {
            report.note(
                hint_path(first),
                format!("every {label} of the model is 0: its deployments weigh alike"),
            );
        }
        return;
    }
    let mut kept = Vec::new();
    for d in std::mem::take(&mut model.deployments) {
        if of(&d) > 0.0 {
            kept.push(d);
        } else {
            report.left_out(
                hint_path(&d),
                format!(
                    "LiteLLM never picks it ({label} 0 where the model's first deployment has \
                     one): the deployment is skipped"
                ),
            );
        }
    }
    model.deployments = kept;
    let values: Vec<f64> = model.deployments.iter().map(of).collect();
    let integral = values.iter().all(|v| v.fract() == 0.0);
    let scaled: Vec<u64> = values
        .iter()
        .map(|v| {
            let v = if integral { *v } else { (v * 1000.0).round() };
            (v as u64).max(1)
        })
        .collect();
    let divisor = scaled.iter().copied().fold(0, gcd).max(1);
    let alike = scaled.windows(2).all(|w| w.first() == w.last());
    if alike {
        return;
    }
    for (d, w) in model.deployments.iter_mut().zip(scaled) {
        d.out_weight = Some(w / divisor);
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The model's `max_tokens` from its deployments' (LiteLLM sends each deployment's own when
/// the client gives none; Switchboard has one per model: the smallest).
pub(super) fn max_tokens(model: &mut ModelDraft, report: &mut Report) {
    let given: Vec<&Hint> = model
        .deployments
        .iter()
        .filter_map(|d| d.max_tokens.as_ref())
        .collect();
    let Some(smallest) = given
        .iter()
        .map(|h| h.value)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))))
    else {
        return;
    };
    let value = smallest.round() as u32;
    model.max_tokens = Some(value.max(1));
    let all_alike =
        given.len() == model.deployments.len() && given.iter().all(|h| h.value == smallest);
    if !all_alike {
        for h in given {
            report.note(
                &h.path,
                format!(
                    "Switchboard has one max_tokens per model: {value} (the smallest given) \
                     for each of its deployments"
                ),
            );
        }
    }
}
