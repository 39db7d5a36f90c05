//! Prices from a LiteLLM price file baked into the rendered filter configuration: every
//! deployment with no `price:` of its own nor of its model gets the imported one (explicit
//! prices always win), and each deployment's price source is reported.

use super::Prepared;
use serde_json::Value;
use std::fmt;
use switchboard_core::config::secret::Env;
use switchboard_core::config::{Document, Problem};
use switchboard_core::runtime::Runtime;
use switchboard_core::usage::litellm::PriceList;

/// Where a deployment's price comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceSource {
    Deployment,
    Model,
    /// The LiteLLM key it was imported from.
    Imported(String),
    Missing,
}

/// One deployment and where its price comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentPrice {
    /// Path in the configuration, e.g. `models[2].deployments[0]`.
    pub path: String,
    pub provider: String,
    pub model: String,
    pub source: PriceSource,
}

impl fmt::Display for DeploymentPrice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = format!("{} ({} {})", self.path, self.provider, self.model);
        match &self.source {
            PriceSource::Deployment => write!(f, "{at}: priced by its `price:`"),
            PriceSource::Model => write!(f, "{at}: priced by its model's `price:`"),
            PriceSource::Imported(key) => write!(f, "{at}: priced from LiteLLM `{key}`"),
            PriceSource::Missing => write!(
                f,
                "{at}: no price (set `price:` or `price_as:`); its cost is reported as unknown"
            ),
        }
    }
}

/// Fills in imported prices (when a list is given) and reports every deployment's source.
/// The runtime model is rebuilt from the changed document, so baked prices are validated.
pub fn bake(
    prepared: &mut Prepared,
    list: Option<&PriceList>,
    env: &dyn Env,
) -> Result<Vec<DeploymentPrice>, Vec<Problem>> {
    let kinds: Vec<(String, String)> = prepared
        .document
        .get("providers")
        .and_then(Value::as_object)
        .map(|providers| {
            providers
                .iter()
                .map(|(name, spec)| (name.clone(), text(spec, "kind")))
                .collect()
        })
        .unwrap_or_default();
    let mut report = Vec::new();
    let mut changed = false;
    let models = prepared
        .document
        .get_mut("models")
        .and_then(Value::as_array_mut);
    for (i, model) in models.into_iter().flatten().enumerate() {
        let model_priced = model.get("price").is_some();
        let deployments = model.get_mut("deployments").and_then(Value::as_array_mut);
        for (j, deployment) in deployments.into_iter().flatten().enumerate() {
            let provider = text(deployment, "provider");
            let upstream = text(deployment, "model");
            let kind = kinds
                .iter()
                .find(|(name, _)| *name == provider)
                .map(|(_, kind)| kind.as_str())
                .unwrap_or_default();
            let source = if deployment.get("price").is_some() {
                PriceSource::Deployment
            } else if model_priced {
                PriceSource::Model
            } else {
                let price_as = deployment.get("price_as").and_then(Value::as_str);
                match list.and_then(|l| l.lookup(kind, &upstream, price_as)) {
                    Some((key, spec)) => {
                        let price = serde_json::to_value(spec)
                            .map_err(|e| vec![Problem::new("", e.to_string())])?;
                        if let Some(obj) = deployment.as_object_mut() {
                            obj.insert("price".into(), price);
                            changed = true;
                        }
                        PriceSource::Imported(key)
                    }
                    None => PriceSource::Missing,
                }
            };
            report.push(DeploymentPrice {
                path: format!("models[{i}].deployments[{j}]"),
                provider,
                model: upstream,
                source,
            });
        }
    }
    if changed {
        let doc: Document = serde_json::from_value(prepared.document.clone())
            .map_err(|e| vec![Problem::new("", e.to_string())])?;
        prepared.runtime = Runtime::from_document(&doc, env)?;
    }
    Ok(report)
}

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::prepare;

    const CONFIG: &str = r#"
providers:
  openai: {kind: openai, api_key: k}
  azure: {kind: azure, base_url: "https://r.openai.azure.com", api_key: k}
models:
  - name: gpt-4o
    deployments:
      - {provider: openai, model: gpt-4o}
      - {provider: azure, model: prod-4o, price_as: azure/gpt-4o}
      - {provider: azure, model: gpt-4o, price: {input: 9, output: 9}}
  - name: mini
    price: {input: 0.15, output: 0.6}
    deployments: [{provider: openai, model: gpt-4o-mini}]
  - name: custom
    deployments: [{provider: openai, model: my-finetune}]
"#;

    const PRICES: &str = r#"{
        "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
                   "cache_read_input_token_cost": 1.25e-06},
        "azure/gpt-4o": {"input_cost_per_token": 2.75e-06, "output_cost_per_token": 1.1e-05},
        "gpt-4o-mini": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06}
    }"#;

    #[test]
    fn imported_prices_fill_only_unpriced_deployments() {
        let mut prepared = prepare(CONFIG, &|_: &str| None, None).unwrap();
        let list = PriceList::parse(PRICES).unwrap();
        let report = bake(&mut prepared, Some(&list), &|_: &str| None).unwrap();
        let sources: Vec<&PriceSource> = report.iter().map(|r| &r.source).collect();
        assert_eq!(
            sources,
            [
                &PriceSource::Imported("gpt-4o".into()),
                &PriceSource::Imported("azure/gpt-4o".into()),
                &PriceSource::Deployment,
                &PriceSource::Model,
                &PriceSource::Missing,
            ]
        );
        let baked = &prepared.document["models"][0]["deployments"][0]["price"];
        assert_eq!(
            baked,
            &serde_json::json!({"input": 2.5, "output": 10.0, "cache_read": 1.25})
        );
        // The runtime model carries them: gpt-4o/1 at Azure's imported $2.75/M, mini at the
        // model's own price, not the file's.
        let rt = &prepared.runtime;
        let input = |id: &str| {
            rt.price(rt.deployment_index(id).unwrap().0)
                .map(|p| p.base.input)
        };
        assert_eq!(input("gpt-4o/1"), Some(2_750_000));
        assert_eq!(input("gpt-4o/2"), Some(9_000_000));
        assert_eq!(input("mini/0"), Some(150_000));
        assert_eq!(input("custom/0"), None);
        assert_eq!(
            report[4].to_string(),
            "models[2].deployments[0] (openai my-finetune): no price (set `price:` or `price_as:`); its cost is reported as unknown"
        );
    }

    #[test]
    fn without_a_list_only_reports() {
        let mut prepared = prepare(CONFIG, &|_: &str| None, None).unwrap();
        let report = bake(&mut prepared, None, &|_: &str| None).unwrap();
        let missing = report
            .iter()
            .filter(|r| r.source == PriceSource::Missing)
            .count();
        assert_eq!(missing, 3);
    }
}
