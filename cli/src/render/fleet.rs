//! What `switchboard render` adds for the `fleet` backend: three `envoy.filters.http.ratelimit`
//! instances after the gateway role (settle, rate, budget; see `limits::fleet`), the
//! descriptors and charges of each route (`RateLimitPerRoute`: Envoy 1.40 sends
//! `hits_addend` only from there), the HTTP/2 cluster of the rate-limit service, and the
//! service's own configuration (`--rls-config`).

use serde_json::{json, Map, Value};
use switchboard_core::limits::fleet::service::{reference_engine_notes, service_config};
use switchboard_core::limits::fleet::{
    descriptor, state, Fleet, Stage, LIMIT_HEADER, SERVICE_CLUSTER, SETTLE_FILTER, SETTLE_METADATA,
};
use switchboard_core::runtime::Runtime;

const RATE_LIMIT: &str = "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit";
const PER_ROUTE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute";
const EXPR: &str = "type.googleapis.com/envoy.extensions.rate_limit_descriptors.expr.v3.Descriptor";

/// Adds the fleet backend to a rendered bootstrap: the filters before the router of every
/// listener, the descriptors on every route, the service's cluster.
pub fn apply(bootstrap: &mut Value, fleet: &Fleet, connect_timeout: &str) {
    let Some(resources) = bootstrap.get_mut("static_resources") else {
        return;
    };
    if let Some(listeners) = resources.get_mut("listeners").and_then(Value::as_array_mut) {
        for hcm in listeners
            .iter_mut()
            .filter_map(|l| l.pointer_mut("/filter_chains/0/filters/0/typed_config"))
        {
            if let Some(filters) = hcm.get_mut("http_filters").and_then(Value::as_array_mut) {
                // Before the router, the last.
                let at = filters.len().saturating_sub(1);
                for (i, filter) in http_filters(fleet).into_iter().enumerate() {
                    filters.insert(at + i, filter);
                }
            }
            let routes = hcm
                .pointer_mut("/route_config/virtual_hosts")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
                .filter_map(|vh| vh.get_mut("routes").and_then(Value::as_array_mut))
                .flatten();
            for route in routes {
                add_route_limits(route);
            }
        }
    }
    if let Some(clusters) = resources.get_mut("clusters").and_then(Value::as_array_mut) {
        clusters.push(cluster(fleet, connect_timeout));
    }
}

/// The three ratelimit filters, in chain order. The settle filter comes first so that it runs
/// on every request the gateway role lets through, whichever admission filter refuses.
pub fn http_filters(fleet: &Fleet) -> Vec<Value> {
    let service = |metadata: Option<(&str, &str)>| {
        let mut grpc = json!({"envoy_grpc": {"cluster_name": SERVICE_CLUSTER}});
        if let (Some((key, value)), Some(obj)) = (metadata, grpc.as_object_mut()) {
            obj.insert(
                "initial_metadata".into(),
                json!([{"key": key, "value": value}]),
            );
        }
        json!({"transport_api_version": "V3", "grpc_service": grpc})
    };
    let settle = json!({
        "name": SETTLE_FILTER,
        "typed_config": {
            "@type": RATE_LIMIT,
            "domain": fleet.domain,
            "stat_prefix": "switchboard_settle",
            "timeout": fleet.timeout.envoy(),
            // Stream-done calls cannot refuse anything.
            "failure_mode_deny": false,
            "rate_limit_service": service(Some((SETTLE_METADATA, "true"))),
        }
    });
    let admission = |stage: Stage| {
        let mut config = json!({
            "@type": RATE_LIMIT,
            "domain": fleet.domain,
            "stat_prefix": stage.filter().replace('-', "_"),
            "timeout": fleet.timeout.envoy(),
            "failure_mode_deny": !fleet.fail_open,
            // The service's answers (present: this call was counted) land here.
            "metadata_namespace": stage.metadata_namespace(),
            "response_headers_to_add": [{
                "header": {"key": LIMIT_HEADER, "value": stage.name()},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }],
            "rate_limit_service": service(None),
        });
        if let (Stage::Rate, Some(obj)) = (stage, config.as_object_mut()) {
            // `retry-after` to the end of the service's minute window.
            obj.insert("enable_retry_after_header".into(), Value::Bool(true));
        }
        json!({"name": stage.filter(), "typed_config": config})
    };
    vec![settle, admission(Stage::Rate), admission(Stage::Budget)]
}

/// A descriptor entry `key=<value>` taken from the gateway role's filter state; a descriptor
/// whose state is absent is skipped (so is one whose charge is absent).
fn from_state(key: &str, property: &str) -> Value {
    json!({"extension": {
        "name": "envoy.rate_limit_descriptors.expr",
        "typed_config": {
            "@type": EXPR,
            "descriptor_key": key,
            "text": format!("filter_state['wasm.{property}']"),
            "skip_if_error": true,
        }
    }})
}

fn limit(value: &str) -> Value {
    json!({"generic_key": {"descriptor_key": descriptor::LIMIT, "descriptor_value": value}})
}

fn charge(property: &str) -> String {
    format!("%FILTER_STATE(wasm.{property}:PLAIN)%")
}

/// The descriptors of one kind of limit, for the key and for its team.
fn descriptors(kind: &str) -> Vec<Vec<Value>> {
    [
        (descriptor::KEY, state::KEY),
        (descriptor::TEAM, state::TEAM),
    ]
    .into_iter()
    .map(|(key, property)| {
        let mut actions = vec![limit(kind), from_state(key, property)];
        if kind == descriptor::BUDGET_MONTH {
            actions.push(from_state(descriptor::PERIOD, state::MONTH));
        }
        actions
    })
    .collect()
}

/// One rate limit: its actions and charge (`refund`: negative hits), at admission or when the
/// stream is done.
fn entry(actions: Vec<Value>, hits: &str, refund: bool, stream_done: bool) -> Value {
    let mut hits_addend = json!({"format": charge(hits)});
    let mut out = json!({"actions": actions});
    if let (true, Some(h)) = (refund, hits_addend.as_object_mut()) {
        h.insert("is_negative_hits".into(), Value::Bool(true));
    }
    if let Some(obj) = out.as_object_mut() {
        obj.insert("hits_addend".into(), hits_addend);
        if stream_done {
            obj.insert("apply_on_stream_done".into(), Value::Bool(true));
        }
    }
    out
}

/// Each kind of limit with its admission charge and its settlement charges.
const KINDS: [(&str, &str, &str, &str); 4] = [
    (
        descriptor::RPM,
        state::REQUESTS,
        state::REQUESTS_EXTRA,
        state::REQUESTS_REFUND,
    ),
    (
        descriptor::TPM,
        state::TOKENS,
        state::TOKENS_EXTRA,
        state::TOKENS_REFUND,
    ),
    (
        descriptor::BUDGET,
        state::USD,
        state::USD_EXTRA,
        state::USD_REFUND,
    ),
    (
        descriptor::BUDGET_MONTH,
        state::USD,
        state::USD_EXTRA,
        state::USD_REFUND,
    ),
];

/// Each filter's `RateLimitPerRoute`, by filter name.
pub fn route_limits() -> Map<String, Value> {
    let mut rate = Vec::new();
    let mut budget = Vec::new();
    let mut settle = Vec::new();
    for (kind, admit, extra, refund) in KINDS {
        let admission = if kind == descriptor::RPM || kind == descriptor::TPM {
            &mut rate
        } else {
            &mut budget
        };
        for actions in descriptors(kind) {
            admission.push(entry(actions.clone(), admit, false, false));
            settle.push(entry(actions.clone(), extra, false, true));
            settle.push(entry(actions, refund, true, true));
        }
    }
    let per_route = |limits: Vec<Value>| json!({"@type": PER_ROUTE, "rate_limits": limits});
    let mut out = Map::new();
    out.insert(SETTLE_FILTER.into(), per_route(settle));
    out.insert(Stage::Rate.filter().into(), per_route(rate));
    out.insert(Stage::Budget.filter().into(), per_route(budget));
    out
}

fn add_route_limits(route: &mut Value) {
    let Some(obj) = route.as_object_mut() else {
        return;
    };
    let per_filter = obj
        .entry("typed_per_filter_config")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(per_filter) = per_filter.as_object_mut() {
        per_filter.extend(route_limits());
    }
}

/// The service's cluster: gRPC needs HTTP/2.
pub fn cluster(fleet: &Fleet, connect_timeout: &str) -> Value {
    json!({
        "name": SERVICE_CLUSTER,
        "type": "STRICT_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": connect_timeout,
        "lb_policy": "ROUND_ROBIN",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}
            }
        },
        "load_assignment": {
            "cluster_name": SERVICE_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                "address": fleet.address, "port_value": fleet.port
            }}}}]}]
        }
    })
}

/// The service's configuration file (envoyproxy/ratelimit's format) for `rt`'s keys and
/// teams, and notes on what envoyproxy/ratelimit could not load or count exactly.
pub fn service_file(
    rt: &Runtime,
    fleet: &Fleet,
    source: &str,
) -> Result<(String, Vec<String>), String> {
    let config = service_config(&rt.limits, &fleet.domain);
    let yaml = serde_yaml::to_string(&config).map_err(|e| e.to_string())?;
    let header = format!(
        "# The rate-limit service's limits for {source}, written by `switchboard render \
         --rls-config`:\n# rpm and tpm per minute; budgets in units of 1e-4 USD (budget_month: \
         one counter per\n# calendar month, the `period`). Read by switchboard-rls and, except \
         unit `total`,\n# by envoyproxy/ratelimit.\n"
    );
    Ok((header + &yaml, reference_engine_notes(&config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{bootstrap, prepare, RenderOptions};

    const CONFIG: &str = r#"
providers: {p: {kind: openai, api_key: k}}
models: [{name: m, deployments: [{provider: p, model: x}]}]
limits: {backend: fleet, service: {address: rls.internal, port: 8081}, timeout: 40ms,
         failure_mode: open}
teams: [{name: t, budget: {usd: 5, period: month}}]
keys: [{name: a, sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b,
        team: t, rpm: 3}]
"#;

    fn rendered(config: &str) -> Value {
        let prepared = prepare(config, &|_: &str| None, None).unwrap();
        bootstrap(
            &prepared,
            &RenderOptions {
                wasm_path: "/x.wasm".into(),
            },
        )
    }

    #[test]
    fn the_bootstrap_carries_filters_routes_and_cluster() {
        let b = rendered(CONFIG);
        let hcm = &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"];
        let names: Vec<&str> = hcm["http_filters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        // After every gateway-role filter (they set what the descriptors read), before the
        // router.
        assert_eq!(
            names[names.len() - 4..],
            [
                "switchboard-settle",
                "switchboard-rate",
                "switchboard-budget",
                "envoy.filters.http.router"
            ]
        );
        assert!(names[..names.len() - 4]
            .iter()
            .all(|n| n.starts_with("switchboard")));
        let filters = hcm["http_filters"].as_array().unwrap();
        let rate = &filters[names.len() - 3]["typed_config"];
        assert_eq!(rate["timeout"], "0.04s");
        assert_eq!(rate["failure_mode_deny"], false);
        assert_eq!(rate["enable_retry_after_header"], true);
        assert_eq!(rate["metadata_namespace"], "switchboard.rate");
        assert_eq!(
            rate["response_headers_to_add"][0]["header"],
            json!({"key": "x-switchboard-limit", "value": "rate"})
        );
        let settle =
            &filters[names.len() - 4]["typed_config"]["rate_limit_service"]["grpc_service"];
        assert_eq!(
            settle["initial_metadata"],
            json!([{"key": "x-switchboard-settle", "value": "true"}])
        );
        // Every route, the endpoint routes' own filter switches kept.
        let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
            .as_array()
            .unwrap();
        for route in routes {
            let per_filter = route["typed_per_filter_config"].as_object().unwrap();
            for name in [
                "switchboard-settle",
                "switchboard-rate",
                "switchboard-budget",
            ] {
                assert_eq!(per_filter[name]["@type"], PER_ROUTE, "{name}");
            }
        }
        assert!(routes[0]["typed_per_filter_config"]
            .get("switchboard-chat")
            .is_some());
        let per_filter = &routes[0]["typed_per_filter_config"];
        let rate_limits = per_filter["switchboard-rate"]["rate_limits"]
            .as_array()
            .unwrap();
        assert_eq!(
            rate_limits[0],
            json!({
                "actions": [
                    {"generic_key": {"descriptor_key": "limit", "descriptor_value": "rpm"}},
                    {"extension": {"name": "envoy.rate_limit_descriptors.expr", "typed_config": {
                        "@type": EXPR, "descriptor_key": "key",
                        "text": "filter_state['wasm.sb_key']", "skip_if_error": true}}}
                ],
                "hits_addend": {"format": "%FILTER_STATE(wasm.sb_requests:PLAIN)%"}
            })
        );
        let settle = per_filter["switchboard-settle"]["rate_limits"]
            .as_array()
            .unwrap();
        assert_eq!(settle.len(), 16);
        assert!(settle.iter().all(|e| e["apply_on_stream_done"] == true));
        let refunds = settle
            .iter()
            .filter(|e| e["hits_addend"]["is_negative_hits"] == true)
            .count();
        assert_eq!(refunds, 8);
        let month = &per_filter["switchboard-budget"]["rate_limits"][2]["actions"];
        assert_eq!(month[0]["generic_key"]["descriptor_value"], "budget_month");
        assert_eq!(
            month[2]["extension"]["typed_config"]["text"],
            "filter_state['wasm.sb_month']"
        );
        let cluster = b["static_resources"]["clusters"]
            .as_array()
            .unwrap()
            .last()
            .unwrap();
        assert_eq!(cluster["name"], "switchboard_rls");
        assert!(cluster["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["explicit_http_config"]
            .get("http2_protocol_options")
            .is_some());
        assert_eq!(
            cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                ["socket_address"],
            json!({"address": "rls.internal", "port_value": 8081})
        );
    }

    #[test]
    fn the_local_backend_renders_no_ratelimit_filter() {
        let b = rendered(&CONFIG.replace("backend: fleet", "backend: local"));
        let text = b.to_string();
        assert!(!text.contains("ratelimit"), "{text}");
        assert!(!text.contains(SERVICE_CLUSTER));
    }

    #[test]
    fn the_service_file_is_generated_from_keys_and_teams() {
        let prepared = prepare(CONFIG, &|_: &str| None, None).unwrap();
        let rt = &prepared.runtime;
        let fleet = rt.limits.fleet.clone().unwrap();
        let (text, notes) = service_file(rt, &fleet, "x.yaml").unwrap();
        assert!(text.starts_with("# The rate-limit service's limits for x.yaml"));
        assert!(text.contains("value: budget_month"), "{text}");
        assert!(text.contains("requests_per_unit: 50000"), "{text}");
        assert_eq!(notes, Vec::<String>::new());
    }
}
