//! `switchboard render`: the filter configuration turned into a complete, runnable Envoy
//! bootstrap (DESIGN §1 and §3): listener + route with `cluster_header` and the fallback
//! retry policy, one cluster per model group with priorities, weights, endpoint metadata and
//! TLS/SNI, both filter roles, admin on loopback; stats tags, histogram buckets and the
//! per-request JSON access log (`observability`); prices imported from LiteLLM (`prices`).

pub mod fleet;
pub mod observability;
pub mod prices;

use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use switchboard_core::api::{Api, Operation};
use switchboard_core::config::{CircuitBreakers, Options, Problem};
use switchboard_core::flow::gateway::{canonical_path, VERSION_PREFIX};
use switchboard_core::names::{
    endpoint_filter, CLUSTER_HEADER, DEPLOYMENT_KEY, GENERIC_FILTER, METADATA_NAMESPACE,
    OWN_HEADER_PREFIX, STRIP_FILTER, UPSTREAM_FILTER, VM_ID,
};
use switchboard_core::providers::{self, anthropic, Endpoint};
use switchboard_core::runtime::Runtime;

/// Request headers the route removes before any attempt: the routing header, the client's
/// credentials (AWS's included: an unsigned security token would change whose request it
/// is) and encodings the filter could not translate. Envoy does it natively, so the upstream
/// role need not read the request's headers to find them.
const REMOVED_REQUEST_HEADERS: [&str; 11] = [
    CLUSTER_HEADER,
    "proxy-authorization",
    "cookie",
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "x-amz-security-token",
    "x-amz-date",
    "x-amz-content-sha256",
    "accept-encoding",
];
/// The least a stream may buffer (see `stream_buffer_limit`).
const RESPONSE_BUFFER_SLACK: u32 = 16 << 20;
/// Listener buffer beyond `max_request_bytes`.
const LISTENER_BUFFER_SLACK: u32 = 1 << 20;

pub struct RenderOptions {
    /// Absolute path of `switchboard.wasm` as Envoy will see it.
    pub wasm_path: String,
}

/// A validated configuration ready to render: the document as JSON and its runtime model.
pub struct Prepared {
    pub document: Value,
    pub runtime: Runtime,
}

/// Where `--mock-upstream` sends providers: the mock provider's base URL, and which
/// providers go there (`--mock-providers`; `None`: every one).
pub struct Mock<'a> {
    pub url: &'a str,
    pub providers: Option<&'a [String]>,
}

impl Mock<'_> {
    fn serves(&self, provider: &str) -> bool {
        self.providers
            .is_none_or(|names| names.iter().any(|n| n == provider))
    }
}

/// Parses and validates the filter YAML. With a `mock`, the providers it serves are sent to
/// its base URL (keeping their API paths) and their `{env: NAME}` secrets become the literal
/// `mock-NAME`, so a demo or test runs without those credentials; the others are left as
/// they are.
pub fn prepare(
    text: &str,
    env: &dyn switchboard_core::config::secret::Env,
    mock: Option<&Mock>,
) -> Result<Prepared, Vec<Problem>> {
    let Some(mock) = mock else {
        let runtime = Runtime::from_text(text, env)?;
        let document =
            serde_yaml::from_str(text).map_err(|e| vec![Problem::new("", e.to_string())])?;
        return Ok(Prepared { document, runtime });
    };
    let url = Endpoint::parse(mock.url).map_err(|m| vec![Problem::new("--mock-upstream", m)])?;
    // Secrets are replaced below, so resolve them to placeholders (and warn about nothing).
    let placeholder = |name: &str| Some(format!("mock-{name}"));
    let original = Runtime::from_text(text, &placeholder)?;
    let unknown: Vec<Problem> = mock
        .providers
        .unwrap_or_default()
        .iter()
        .filter(|name| !original.providers.iter().any(|p| p.name == **name))
        .map(|name| {
            Problem::new(
                "--mock-providers",
                format!("no provider `{name}` in the configuration"),
            )
        })
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    let mut document: Value =
        serde_yaml::from_str(text).map_err(|e| vec![Problem::new("", e.to_string())])?;
    let scheme = if url.tls { "https" } else { "http" };
    if let Some(providers) = document.get_mut("providers").and_then(Value::as_object_mut) {
        for entry in original.providers.iter().filter(|p| mock.serves(&p.name)) {
            let base = entry.provider.endpoint();
            if let Some(spec) = providers
                .get_mut(&entry.name)
                .and_then(Value::as_object_mut)
            {
                let base_url = format!(
                    "{scheme}://{}{}{}",
                    url.authority(),
                    url.base_path,
                    base.base_path
                );
                spec.insert("base_url".into(), Value::String(base_url));
                for value in spec.values_mut() {
                    replace_env_secrets(value);
                }
            }
        }
    }
    let patched =
        serde_yaml::to_string(&document).map_err(|e| vec![Problem::new("", e.to_string())])?;
    let runtime = Runtime::from_text(&patched, env)?;
    Ok(Prepared { document, runtime })
}

/// `{env: NAME}` → `"mock-NAME"`, recursively.
fn replace_env_secrets(value: &mut Value) {
    let env_name = value
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("env"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match (env_name, value) {
        (Some(name), v) => *v = Value::String(format!("mock-{name}")),
        (None, Value::Object(o)) => o.values_mut().for_each(replace_env_secrets),
        (None, Value::Array(a)) => a.iter_mut().for_each(replace_env_secrets),
        _ => {}
    }
}

/// The Envoy bootstrap, as a JSON value (serialize it as YAML or JSON).
pub fn bootstrap(prepared: &Prepared, opts: &RenderOptions) -> Value {
    let rt = &prepared.runtime;
    let env_keys = env_keys(&prepared.document);
    let listener = &doc_options(&prepared.document);
    let clusters: Vec<Value> = rt
        .models
        .iter()
        .map(|m| cluster(rt, m, opts, &env_keys, &prepared.document))
        .collect();
    let mut bootstrap = json!({
        "admin": {
            "address": socket(&listener.admin_address, listener.admin_port),
        },
        "stats_config": observability::stats_config(),
        "static_resources": {
            "listeners": [{
                "name": "switchboard",
                "address": socket(&listener.address, listener.port),
                // Envoy answers a plain 413 itself when its buffer fills before the filter sees
                // the body: the slack (more than one read of a socket) lets the filter refuse
                // first, in OpenAI's shape.
                "per_connection_buffer_limit_bytes": rt.options.max_request_bytes.saturating_add(LISTENER_BUFFER_SLACK),
                "filter_chains": [{
                    "filters": [{
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": "switchboard",
                            "codec_type": "AUTO",
                            "access_log": observability::access_log(&rt.options),
                            "local_reply_config": local_reply_config(),
                            "route_config": route_config(rt),
                            "http_filters": gateway_filters(opts, &env_keys, &prepared.document),
                        }
                    }]
                }]
            }],
            "clusters": clusters,
        }
    });
    if let Some(f) = &rt.limits.fleet {
        fleet::apply(&mut bootstrap, f, &rt.options.connect_timeout.envoy());
    }
    bootstrap
}

/// The same gateway for an Istio ingress gateway: a Gateway and VirtualService for `host`, and
/// an EnvoyFilter that inserts the gateway-role filter before the router, turns the route into
/// the `cluster_header` route with the fallback retry policy, and adds the model-group clusters
/// with the upstream-role filter. (WasmPlugin cannot set `allow_on_headers_stop_iteration` nor
/// attach upstream filters, hence EnvoyFilter.)
pub fn istio(prepared: &Prepared, opts: &RenderOptions, host: &str) -> Vec<Value> {
    let b = bootstrap(prepared, opts);
    let hcm = b
        .pointer("/static_resources/listeners/0/filter_chains/0/filters/0/typed_config")
        .cloned()
        .unwrap_or_default();
    // The generic path only: a VirtualService route cannot enable the endpoint filters.
    let route = hcm
        .pointer("/route_config/virtual_hosts/0/routes")
        .and_then(Value::as_array)
        .and_then(|routes| routes.last())
        .cloned()
        .unwrap_or_default();
    let gateway_match = json!({"context": "GATEWAY"});
    let before_router = |filter: Option<&Value>| {
        json!({
            "applyTo": "HTTP_FILTER",
            "match": {"context": "GATEWAY", "listener": {"filterChain": {"filter": {
                "name": "envoy.filters.network.http_connection_manager",
                "subFilter": {"name": "envoy.filters.http.router"}}}}},
            "patch": {"operation": "INSERT_BEFORE", "value": filter},
        })
    };
    // The header strip filter, then the generic gateway-role filter (each inserted before
    // the router, so they keep this order).
    let mut patches = vec![
        before_router(hcm.pointer("/http_filters/0")),
        before_router(hcm.pointer("/http_filters/1")),
        json!({
            "applyTo": "HTTP_ROUTE",
            "match": {"context": "GATEWAY", "routeConfiguration": {"vhost": {
                "name": format!("{host}:80"), "route": {"name": "switchboard"}}}},
            "patch": {"operation": "MERGE", "value": {
                "route": route.get("route"),
                "request_headers_to_remove": route.get("request_headers_to_remove"),
                "request_headers_to_add": route.get("request_headers_to_add"),
                "per_request_buffer_limit_bytes": route.get("per_request_buffer_limit_bytes")}},
        }),
    ];
    if let Some(clusters) = b
        .pointer("/static_resources/clusters")
        .and_then(Value::as_array)
    {
        patches.extend(clusters.iter().map(|c| {
            json!({"applyTo": "CLUSTER", "match": gateway_match, "patch": {"operation": "ADD", "value": c}})
        }));
    }
    vec![
        json!({
            "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": "switchboard", "namespace": "istio-system"},
            "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{
                "port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": [host]}]},
        }),
        json!({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "switchboard", "namespace": "istio-system"},
            // The destination is replaced by the EnvoyFilter's cluster_header route.
            "spec": {"hosts": [host], "gateways": ["switchboard"], "http": [{
                "name": "switchboard", "route": [{"destination": {"host": "switchboard.invalid"}}]}]},
        }),
        json!({
            "apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
            "metadata": {"name": "switchboard", "namespace": "istio-system"},
            "spec": {"workloadSelector": {"labels": {"istio": "ingressgateway"}}, "configPatches": patches},
        }),
    ]
}

struct ListenerOptions {
    address: String,
    port: u64,
    admin_address: String,
    admin_port: u64,
}

fn doc_options(doc: &Value) -> ListenerOptions {
    let get = |section: &str, key: &str| doc.get(section).and_then(|s| s.get(key)).cloned();
    ListenerOptions {
        address: get("listener", "address")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "127.0.0.1".into()),
        port: get("listener", "port")
            .and_then(|v| v.as_u64())
            .unwrap_or(10000),
        admin_address: get("admin", "address")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "127.0.0.1".into()),
        admin_port: get("admin", "port")
            .and_then(|v| v.as_u64())
            .unwrap_or(9901),
    }
}

fn socket(address: &str, port: u64) -> Value {
    json!({"socket_address": {"address": address, "port_value": port}})
}

fn route_config(rt: &Runtime) -> Value {
    let mut retry = json!({
        "retry_on": "5xx,reset,connect-failure,retriable-status-codes",
        "retriable_status_codes": [429],
        "num_retries": rt.retries(),
        // Each retry moves to the next priority: the next fallback model.
        "retry_priority": {
            "name": "envoy.retry_priorities.previous_priorities",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                "update_frequency": 1
            }
        },
        // Within a priority, prefer a deployment not tried yet.
        "retry_host_predicate": [{
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
            }
        }],
        "host_selection_retry_max_attempts": 3
    });
    if let (Some(t), Some(obj)) = (rt.options.per_try_timeout, retry.as_object_mut()) {
        obj.insert("per_try_timeout".into(), Value::String(t.envoy()));
    }
    let action = json!({
        "cluster_header": CLUSTER_HEADER,
        "timeout": rt.options.request_timeout.envoy(),
        "retry_policy": retry
    });
    let mut routes = Vec::new();
    for op in FAST_ENDPOINTS {
        let filter = endpoint_filter(op);
        for path in endpoint_paths(op) {
            let enable = json!({
                filter: enable_filter(),
                GENERIC_FILTER: {"@type": FILTER_CONFIG, "disabled": true},
            });
            let mut route = proxied_route(rt, endpoint_match(path), &action, Some(enable));
            if op.api() == Api::AnthropicMessages {
                if let Some(Value::Array(added)) = route.get_mut("request_headers_to_add") {
                    // Anthropic requires a version; the client's, when it sends one, passes.
                    added.push(json!({
                        "header": {"key": "anthropic-version", "value": anthropic::DEFAULT_VERSION},
                        "append_action": "ADD_IF_ABSENT"
                    }));
                }
            }
            routes.push(route);
        }
    }
    routes.push(proxied_route(rt, json!({"prefix": "/"}), &action, None));
    json!({
        "name": "switchboard",
        "virtual_hosts": [{
            "name": "switchboard",
            "domains": ["*"],
            "routes": routes,
        }]
    })
}

/// Route-level per-filter configuration: enables or disables a filter on a route.
const FILTER_CONFIG: &str = "type.googleapis.com/envoy.config.route.v3.FilterConfig";
/// The endpoints with a gateway-role filter of their own, enabled only on their routes: it
/// need not read the request line (a value read from Envoy costs a nested call into the VM).
const FAST_ENDPOINTS: [Operation; 5] = [
    Operation::ChatCompletions,
    Operation::Embeddings,
    Operation::Messages,
    Operation::CountTokens,
    Operation::Responses,
];

/// The paths of an endpoint: its canonical one and the same without the optional
/// `VERSION_PREFIX` (as `classify` has it).
fn endpoint_paths(op: Operation) -> [&'static str; 2] {
    let canonical = canonical_path(op);
    [
        canonical,
        canonical.strip_prefix(VERSION_PREFIX).unwrap_or(canonical),
    ]
}

/// A fast-path match: the endpoint's path, POST, and a request id the access log can hold
/// as is (no quotes, backslashes or control characters; Envoy always sets one). Any other
/// request takes the generic filter, which answers or cleans it.
fn endpoint_match(path: &str) -> Value {
    json!({
        "path": path,
        "headers": [
            {"name": ":method", "string_match": {"exact": "POST"}},
            {
                "name": "x-request-id",
                "string_match": {"safe_regex": {"regex": "[ !#-\\[\\]-~]*"}},
                "treat_missing_header_as_empty": true
            }
        ]
    })
}

/// Enables a filter that is disabled by default. The Wasm filter has no per-route
/// configuration of its own and Envoy refuses an empty one, so the entry carries an empty
/// message marked optional (ignored), which leaves the filter enabled on the route.
fn enable_filter() -> Value {
    json!({
        "@type": FILTER_CONFIG,
        "config": {"@type": "type.googleapis.com/google.protobuf.Empty"},
        "is_optional": true
    })
}

/// What Envoy may buffer of one request, each way. It bounds the request body retries replay
/// and, for the upstream filters, the answer buffered for translation: so it must exceed both
/// of the filter's own limits by more than one read, or Envoy's buffer overflow (a bare 500)
/// races the filter's refusal (a 413 or 502 in the client's API).
fn stream_buffer_limit(options: &Options) -> u32 {
    options
        .max_request_bytes
        .max(options.max_response_bytes)
        .saturating_mul(2)
        .max(RESPONSE_BUFFER_SLACK)
}

fn proxied_route(rt: &Runtime, matcher: Value, action: &Value, filters: Option<Value>) -> Value {
    let mut route = json!({
        "match": matcher,
        "request_headers_to_remove": REMOVED_REQUEST_HEADERS,
        // Every provider takes JSON; the gateway role has checked the body is JSON.
        "request_headers_to_add": [{
            "header": {"key": "content-type", "value": "application/json"},
            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"
        }],
        "route": action,
        "per_request_buffer_limit_bytes": stream_buffer_limit(&rt.options)
    });
    if let (Some(filters), Some(obj)) = (filters, route.as_object_mut()) {
        obj.insert("typed_per_filter_config".into(), filters);
    }
    route
}

fn cluster(
    rt: &Runtime,
    model: &switchboard_core::runtime::Model,
    opts: &RenderOptions,
    env_keys: &[String],
    doc: &Value,
) -> Value {
    let mut tls_hosts = BTreeSet::new();
    let priorities: Vec<Value> = model
        .priorities
        .iter()
        .enumerate()
        .map(|(priority, deployments)| {
            let endpoints: Vec<Value> = deployments
                .iter()
                .filter_map(|&d| rt.deployments.get(d))
                .filter_map(|d| {
                    let provider = rt.provider_of(d)?.provider.endpoint();
                    let mut metadata = Map::new();
                    metadata.insert(METADATA_NAMESPACE.into(), json!({DEPLOYMENT_KEY: d.id}));
                    if provider.tls {
                        tls_hosts.insert(provider.host.clone());
                        metadata.insert(
                            "envoy.transport_socket_match".into(),
                            json!({"sni": provider.host}),
                        );
                    }
                    Some(json!({
                        "endpoint": {
                            "address": socket(&provider.host, u64::from(provider.port)),
                            "hostname": provider.host,
                        },
                        "load_balancing_weight": d.weight,
                        "metadata": {"filter_metadata": metadata},
                    }))
                })
                .collect();
            json!({"priority": priority, "lb_endpoints": endpoints})
        })
        .collect();
    // Endpoints of one cluster may live at different https hosts: each gets its own SNI.
    let tls_matches: Vec<Value> = tls_hosts
        .iter()
        .map(|host| {
            json!({
                "name": format!("tls-{host}"),
                "match": {"sni": host},
                "transport_socket": {
                    "name": "envoy.transport_sockets.tls",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                        "sni": host,
                        "common_tls_context": {
                            "validation_context": {
                                "trusted_ca": {"filename": rt.options.ca_bundle},
                                "match_typed_subject_alt_names": [{
                                    "san_type": "DNS",
                                    "matcher": {"exact": host}
                                }]
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let mut cluster = json!({
        "name": model.cluster,
        "type": "STRICT_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": rt.options.connect_timeout.envoy(),
        "lb_policy": "ROUND_ROBIN",
        "per_connection_buffer_limit_bytes": stream_buffer_limit(&rt.options),
        "load_assignment": {"cluster_name": model.cluster, "endpoints": priorities},
        "circuit_breakers": circuit_breakers(&rt.options.circuit_breakers),
        "outlier_detection": {
            "consecutive_5xx": 5,
            "interval": "10s",
            "base_ejection_time": "30s",
            "max_ejection_percent": 50
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http_protocol_options": {}},
                "http_filters": [
                    wasm_filter(UPSTREAM_FILTER, "upstream", None, opts, env_keys, doc),
                    {
                        "name": "envoy.filters.http.upstream_codec",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"
                        }
                    }
                ]
            }
        }
    });
    if !tls_matches.is_empty() {
        if let Some(obj) = cluster.as_object_mut() {
            obj.insert("transport_socket_matches".into(), Value::Array(tls_matches));
        }
    }
    cluster
}

/// Envoy's own refusals of requests its filters never see (malformed requests, headers too
/// large, HTTP/1.0): OpenAI-shaped JSON instead of Envoy's plain text. Every other local reply
/// passes the gateway role, which answers or rewrites it in the client API's shape itself.
fn local_reply_config() -> Value {
    const CODEC_REFUSAL: &str = "response.code_details.startsWith('http1.') \
        || response.code_details.startsWith('http2.') \
        || response.code_details.startsWith('http3.') \
        || response.code_details in ['low_version', 'request_header_timeout', 'missing_host_header']";
    let mapper = |status_filter: Value, kind: &str| {
        json!({
            "filter": {"and_filter": {"filters": [
                status_filter,
                {"extension_filter": {
                    "name": "envoy.access_loggers.extension_filters.cel",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                        "expression": CODEC_REFUSAL
                    }
                }}
            ]}},
            "body_format_override": {"json_format": {"error": {
                "message": "%LOCAL_REPLY_BODY%",
                "type": kind,
                "param": null,
                "code": "%RESPONSE_CODE_DETAILS%"
            }}}
        })
    };
    let status = |op: &str, value: u32| {
        json!({"status_code_filter": {"comparison": {
            "op": op,
            "value": {"default_value": value, "runtime_key": "switchboard.local_reply.status"}
        }}})
    };
    json!({"mappers": [
        mapper(status("GE", 500), "server_error"),
        mapper(status("GE", 400), "invalid_request_error"),
    ]})
}

/// The cluster's thresholds (`options.circuit_breakers`), the same at every routing priority.
fn circuit_breakers(limits: &CircuitBreakers) -> Value {
    let threshold = |priority: &str| {
        json!({
            "priority": priority,
            "max_connections": limits.max_connections,
            "max_pending_requests": limits.max_pending_requests,
            "max_requests": limits.max_requests,
            "max_retries": limits.max_retries(),
        })
    };
    json!({"thresholds": [threshold("DEFAULT"), threshold("HIGH")]})
}

/// The listener's HTTP filters: the generic gateway-role filter (enabled by default), one per
/// endpoint (enabled only by their routes), then the router.
fn gateway_filters(opts: &RenderOptions, env_keys: &[String], doc: &Value) -> Vec<Value> {
    let mut filters = vec![wasm_filter(
        GENERIC_FILTER,
        "gateway",
        None,
        opts,
        env_keys,
        doc,
    )];
    for op in FAST_ENDPOINTS {
        let mut filter = wasm_filter(
            endpoint_filter(op),
            "gateway",
            Some(op),
            opts,
            env_keys,
            doc,
        );
        if let Some(obj) = filter.as_object_mut() {
            obj.insert("disabled".into(), Value::Bool(true));
        }
        filters.push(filter);
    }
    filters.insert(0, header_strip_filter());
    filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
            // No x-envoy-* headers of the router's own toward providers or clients.
            "suppress_envoy_headers": true
        }
    }));
    filters
}

/// Removes, before any other filter runs, every request header a client may not set: the
/// gateway's own (`x-switchboard-*`: routing and handoff are the gateway's alone) and Envoy's
/// (`x-envoy-*`: retry and timeout controls, debug flags). Route removal takes exact names
/// only; these are prefixes.
fn header_strip_filter() -> Value {
    let prefix = |p: &str| json!({"remove_on_match": {"key_matcher": {"prefix": p}}});
    json!({
        "name": STRIP_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            "mutations": {"request_mutations": [prefix(OWN_HEADER_PREFIX), prefix("x-envoy-")]}
        }
    })
}

/// The same module and VM for every instance (identical `vm_config`, so one VM per worker
/// hosts them all and the parsed request is handed over); only the role and endpoint in the
/// configuration differ.
fn wasm_filter(
    name: &str,
    role: &str,
    endpoint: Option<Operation>,
    opts: &RenderOptions,
    env_keys: &[String],
    doc: &Value,
) -> Value {
    let mut config = doc.clone();
    if let Some(obj) = config.as_object_mut() {
        obj.insert("role".into(), Value::String(role.into()));
        if let Some(op) = endpoint {
            obj.insert("endpoint".into(), Value::String(op.config_name().into()));
        }
        // Render-only sections stay out of the filter's copy.
        obj.remove("listener");
        obj.remove("admin");
    }
    let mut vm_config = json!({
        "vm_id": VM_ID,
        "runtime": "envoy.wasm.runtime.v8",
        "code": {"local": {"filename": opts.wasm_path}},
    });
    if !env_keys.is_empty() {
        if let Some(obj) = vm_config.as_object_mut() {
            obj.insert(
                "environment_variables".into(),
                json!({"host_env_keys": env_keys}),
            );
        }
    }
    json!({
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": VM_ID,
                // Without it, pausing in the headers callback would hang body-based routing.
                "allow_on_headers_stop_iteration": true,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": config.to_string(),
                },
                "vm_config": vm_config,
            }
        }
    })
}

/// Every environment variable any provider reads (for `host_env_keys`).
fn env_keys(doc: &Value) -> Vec<String> {
    let Ok(document) = serde_json::from_value::<switchboard_core::config::Document>(doc.clone())
    else {
        return Vec::new();
    };
    let mut keys: BTreeSet<String> = BTreeSet::new();
    for spec in document.providers.values() {
        keys.extend(providers::env_names(spec).into_iter().map(str::to_owned));
    }
    keys.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
listener: {port: 18000}
providers:
  openai: {kind: openai, api_key: {env: OPENAI_API_KEY}}
  azure: {kind: azure, base_url: "https://r.openai.azure.com", api_key: {env: AZURE_KEY}}
  local: {kind: vllm, base_url: "http://10.0.0.5:8000/v1"}
models:
  - name: gpt-4o
    deployments:
      - {provider: openai, model: gpt-4o, weight: 3}
      - {provider: azure, model: prod, weight: 1}
    fallbacks: [llama]
  - name: llama
    deployments: [{provider: local, model: meta/llama}]
"#;

    fn render(mock: Option<&str>) -> Value {
        let mock = mock.map(|url| Mock {
            url,
            providers: None,
        });
        let prepared = prepare(CONFIG, &|_: &str| None, mock.as_ref()).unwrap();
        bootstrap(
            &prepared,
            &RenderOptions {
                wasm_path: "/x/switchboard.wasm".into(),
            },
        )
    }

    #[test]
    fn clusters_carry_priorities_weights_metadata_and_sni() {
        let b = render(None);
        let c = &b["static_resources"]["clusters"][0];
        assert_eq!(c["name"], "sb_gpt-4o");
        let p0 = &c["load_assignment"]["endpoints"][0];
        assert_eq!(p0["priority"], 0);
        let e0 = &p0["lb_endpoints"][0];
        assert_eq!(
            e0["endpoint"]["address"]["socket_address"]["address"],
            "api.openai.com"
        );
        assert_eq!(
            e0["endpoint"]["address"]["socket_address"]["port_value"],
            443
        );
        assert_eq!(e0["load_balancing_weight"], 3);
        assert_eq!(
            e0["metadata"]["filter_metadata"]["switchboard"]["deployment"],
            "gpt-4o/0"
        );
        assert_eq!(
            e0["metadata"]["filter_metadata"]["envoy.transport_socket_match"]["sni"],
            "api.openai.com"
        );
        let p1 = &c["load_assignment"]["endpoints"][1];
        assert_eq!(p1["priority"], 1);
        assert_eq!(
            p1["lb_endpoints"][0]["metadata"]["filter_metadata"]["switchboard"]["deployment"],
            "llama/0"
        );
        assert!(p1["lb_endpoints"][0]["metadata"]["filter_metadata"]
            .get("envoy.transport_socket_match")
            .is_none());
        let sni: Vec<&str> = c["transport_socket_matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["match"]["sni"].as_str().unwrap())
            .collect();
        assert_eq!(sni, ["api.openai.com", "r.openai.azure.com"]);
        assert_eq!(c["circuit_breakers"]["thresholds"][0]["max_retries"], 1024);
    }

    #[test]
    fn both_roles_share_one_vm_config() {
        let b = render(None);
        let hcm = &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"];
        assert_eq!(hcm["http_filters"][0]["name"], STRIP_FILTER);
        let gateway = &hcm["http_filters"][1]["typed_config"]["config"];
        let upstream = &b["static_resources"]["clusters"][0]["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"][0]
            ["typed_config"]["config"];
        assert_eq!(gateway["vm_config"], upstream["vm_config"]);
        assert_eq!(gateway["allow_on_headers_stop_iteration"], true);
        assert_eq!(
            gateway["vm_config"]["environment_variables"]["host_env_keys"],
            json!(["AZURE_KEY", "OPENAI_API_KEY"])
        );
        let role = |c: &Value| -> String {
            let v: Value =
                serde_json::from_str(c["configuration"]["value"].as_str().unwrap()).unwrap();
            v["role"].as_str().unwrap().to_owned()
        };
        assert_eq!(role(gateway), "gateway");
        assert_eq!(role(upstream), "upstream");
        let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
            .as_array()
            .unwrap();
        let added = |path: &str| {
            let route = routes.iter().find(|r| r["match"]["path"] == path).unwrap();
            route["request_headers_to_add"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["header"]["key"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(added("/v1/chat/completions"), ["content-type"]);
        for path in ["/v1/messages", "/messages/count_tokens"] {
            assert_eq!(added(path), ["content-type", "anthropic-version"], "{path}");
        }
        let route = &routes[0]["route"];
        assert_eq!(route["cluster_header"], "x-switchboard-cluster");
        assert_eq!(route["retry_policy"]["num_retries"], 1);
        assert_eq!(
            route["retry_policy"]["retriable_status_codes"],
            json!([429])
        );
        assert_eq!(
            b["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"],
            18000
        );
    }

    #[test]
    fn istio_manifests_carry_the_same_filters_route_and_clusters() {
        let prepared = prepare(CONFIG, &|_: &str| None, None).unwrap();
        let opts = RenderOptions {
            wasm_path: "/etc/switchboard/switchboard.wasm".into(),
        };
        let docs = istio(&prepared, &opts, "llm.example.com");
        let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["Gateway", "VirtualService", "EnvoyFilter"]);
        let patches = docs[2]["spec"]["configPatches"].as_array().unwrap();
        let b = bootstrap(&prepared, &opts);
        let hcm = &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"];
        assert_eq!(patches[0]["patch"]["value"], hcm["http_filters"][0]);
        assert_eq!(patches[1]["patch"]["value"], hcm["http_filters"][1]);
        assert_eq!(
            patches[2]["patch"]["value"]["route"]["cluster_header"],
            "x-switchboard-cluster"
        );
        assert_eq!(
            patches[2]["match"]["routeConfiguration"]["vhost"]["name"],
            "llm.example.com:80"
        );
        assert_eq!(patches.len(), 3 + 2, "one CLUSTER patch per model group");
        assert_eq!(
            patches[3]["patch"]["value"],
            b["static_resources"]["clusters"][0]
        );
    }

    #[test]
    fn mock_upstream_redirects_every_provider_keeping_paths() {
        let mock = Mock {
            url: "http://127.0.0.1:9999",
            providers: None,
        };
        let prepared = prepare(CONFIG, &|_: &str| None, Some(&mock)).unwrap();
        let endpoints: Vec<String> = prepared
            .runtime
            .providers
            .iter()
            .map(|p| {
                let e = p.provider.endpoint();
                format!("{}:{}{}", e.host, e.port, e.base_path)
            })
            .collect();
        assert_eq!(
            endpoints,
            ["127.0.0.1:9999", "127.0.0.1:9999/v1", "127.0.0.1:9999/v1"]
        );
        let b = render(Some("http://127.0.0.1:9999"));
        assert!(b["static_resources"]["clusters"][0]
            .get("transport_socket_matches")
            .is_none());
    }
    struct MockCase {
        name: &'static str,
        providers: Option<&'static [&'static str]>,
        /// Each provider's address and the key it sends, by provider name.
        expected: [(&'static str, &'static str); 3],
    }

    #[test]
    fn mock_providers_sends_only_those_to_the_mock() {
        let env = |name: &str| (name == "OPENAI_API_KEY").then(|| "sk-real".to_owned());
        let cases = [
            MockCase {
                name: "every provider",
                providers: None,
                expected: [
                    ("127.0.0.1:9999", "mock-AZURE_KEY"),
                    ("127.0.0.1:9999/v1", ""),
                    ("127.0.0.1:9999/v1", "Bearer mock-OPENAI_API_KEY"),
                ],
            },
            MockCase {
                name: "only the one without its key",
                providers: Some(&["azure"]),
                expected: [
                    ("127.0.0.1:9999", "mock-AZURE_KEY"),
                    ("10.0.0.5:8000/v1", ""),
                    ("api.openai.com:443/v1", "Bearer sk-real"),
                ],
            },
        ];
        for case in cases {
            let names: Option<Vec<String>> = case
                .providers
                .map(|names| names.iter().map(|n| (*n).to_owned()).collect());
            let mock = Mock {
                url: "http://127.0.0.1:9999",
                providers: names.as_deref(),
            };
            let prepared = prepare(CONFIG, &env, Some(&mock)).unwrap();
            let got: Vec<(String, String)> = prepared
                .runtime
                .providers
                .iter()
                .map(|p| {
                    let e = p.provider.endpoint();
                    let (req, raw) = (
                        serde_json::from_str(r#"{"model":"m","messages":[]}"#).unwrap(),
                        br#"{"model":"m","messages":[]}"#,
                    );
                    let attempt = switchboard_core::providers::Attempt {
                        upstream_model: "m",
                        settings: &Default::default(),
                        now_ms: 0,
                    };
                    let up = p.provider.chat_request(&req, raw, &attempt).unwrap();
                    let key = up
                        .headers
                        .first()
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    (format!("{}:{}{}", e.host, e.port, e.base_path), key)
                })
                .collect();
            let expected: Vec<(String, String)> = case
                .expected
                .iter()
                .map(|(a, k)| ((*a).to_owned(), (*k).to_owned()))
                .collect();
            assert_eq!(got, expected, "{}", case.name);
        }
        let unknown = Mock {
            url: "http://127.0.0.1:9999",
            providers: Some(&["nope".to_owned()]),
        };
        let problems = match prepare(CONFIG, &env, Some(&unknown)) {
            Ok(_) => panic!("an unknown provider was mocked"),
            Err(p) => p,
        };
        assert_eq!(
            problems[0].to_string(),
            "--mock-providers: no provider `nope` in the configuration"
        );
    }
}
