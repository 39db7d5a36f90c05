//! Gateway role: which endpoint a request is for, whether its body is acceptable, and which
//! model group serves it. Every refusal is an OpenAI-shaped error with the right status.

use super::{DecodedRequest, ParsedRequest};
use crate::api::chat::ChatRequest;
use crate::api::models::{ModelEntry, ModelList};
use crate::api::Operation;
use crate::api::{Api, ApiError, ErrorKind};
use crate::flow::estimate::tokens;
use crate::flow::metrics::Rejection;
use crate::flow::metrics::Series;
use crate::flow::record::rejection;
use crate::inputs;
use crate::limits::store::Store;
use crate::limits::{Caller, Estimate, Reservation, SubjectRef};
use crate::runtime::{Model, Runtime};
use serde::de::DeserializeOwned;

/// What a request asks of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Proxied to a provider after the body is read.
    Proxy(Operation),
    ListModels,
    GetModel(String),
    Health,
}

/// The prefix of every endpoint's path, optional as clients differ.
pub const VERSION_PREFIX: &str = "/v1";

/// The path the ledger gives a request of an instance that serves one endpoint.
pub fn canonical_path(op: Operation) -> &'static str {
    match op {
        Operation::ChatCompletions => "/v1/chat/completions",
        Operation::Embeddings => "/v1/embeddings",
        Operation::Messages => "/v1/messages",
        Operation::CountTokens => "/v1/messages/count_tokens",
        Operation::Responses => "/v1/responses",
    }
}

/// Classifies method and path; the `VERSION_PREFIX` is optional.
pub fn classify(method: &str, path: &str) -> Result<Endpoint, ApiError> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let route = path.strip_prefix(VERSION_PREFIX).unwrap_or(path);
    let (endpoint, allowed) = match route {
        "/chat/completions" => (Endpoint::Proxy(Operation::ChatCompletions), "POST"),
        "/embeddings" => (Endpoint::Proxy(Operation::Embeddings), "POST"),
        "/messages" => (Endpoint::Proxy(Operation::Messages), "POST"),
        "/messages/count_tokens" => (Endpoint::Proxy(Operation::CountTokens), "POST"),
        "/responses" => (Endpoint::Proxy(Operation::Responses), "POST"),
        "/models" => (Endpoint::ListModels, "GET"),
        "/health" | "/healthz" => (Endpoint::Health, "GET"),
        _ => match route.strip_prefix("/models/") {
            Some(id) if !id.is_empty() => (Endpoint::GetModel(id.to_owned()), "GET"),
            _ => {
                return Err(ApiError::new(
                    ErrorKind::NotFound,
                    format!("Unknown request URL: {method} {path}."),
                )
                .with_code("unknown_url"))
            }
        },
    };
    if method == allowed || (allowed == "GET" && method == "HEAD") {
        Ok(endpoint)
    } else {
        Err(ApiError::invalid(format!(
            "Method {method} is not allowed on {path}; use {allowed}."
        ))
        .with_status(405)
        .with_code("method_not_allowed"))
    }
}

/// The request id made safe for the access log's JSON line, and whether it changed: Envoy
/// writes the id there unescaped, so quotes, backslashes and control characters are replaced.
pub fn loggable_request_id(id: String) -> (String, bool) {
    let safe = |c: char| (' '..='~').contains(&c) && c != '"' && c != '\\';
    if id.chars().all(safe) {
        return (id, false);
    }
    let cleaned = id.chars().map(|c| if safe(c) { c } else { '_' }).collect();
    (cleaned, true)
}

/// A request the gateway accepted: its model group and the parsed body.
#[derive(Debug)]
pub struct Admission<'g> {
    pub model: &'g Model,
    pub request: ParsedRequest,
}

/// What an admitted request is expected to use: the estimated tokens (see
/// `flow::estimate`) priced at its model's first-priority deployments, the dearest when
/// several share the traffic. An unpriced deployment adds nothing (its answers cost nothing
/// against a budget either).
pub fn estimate(rt: &Runtime, admission: &Admission) -> Estimate {
    if admission.request.operation() == Operation::CountTokens {
        // Counting is free: it reserves nothing on tokens or budgets.
        return Estimate::default();
    }
    let usage = tokens(&admission.request, &admission.model.settings);
    let cost = admission
        .model
        .priorities
        .first()
        .into_iter()
        .flatten()
        .filter_map(|&d| rt.price(d))
        .map(|price| price.cost(&usage).0)
        .max()
        .unwrap_or(0);
    Estimate {
        tokens: usage.total_tokens(),
        cost,
    }
}

/// Parses and checks the body of a proxied request and resolves its model.
pub fn admit<'g>(rt: &'g Runtime, op: Operation, body: &[u8]) -> Result<Admission<'g>, ApiError> {
    let request = parse_request(op, body)?;
    let model = rt
        .model(request.model())
        .ok_or_else(|| ApiError::model_not_found(request.model()))?;
    Ok(Admission { model, request })
}

/// Parses the body of a request of `op`: an OpenAI body as it is, another input API's decoded
/// into the canonical chat request.
pub fn parse_request(op: Operation, body: &[u8]) -> Result<ParsedRequest, ApiError> {
    Ok(match op {
        Operation::ChatCompletions => {
            let req: ChatRequest = parse_body(body)?;
            if req.messages.is_empty() {
                return Err(ApiError::invalid_param(
                    "messages",
                    "`messages` must contain at least one message.",
                ));
            }
            ParsedRequest::Chat(Box::new(req))
        }
        Operation::Embeddings => ParsedRequest::Embeddings(parse_body(body)?),
        Operation::Messages | Operation::CountTokens | Operation::Responses => {
            let decoded = inputs::decode(op, body)?;
            let chat: ChatRequest = parse_body(&decoded.chat_body)?;
            ParsedRequest::Decoded(Box::new(DecodedRequest {
                operation: op,
                chat,
                chat_body: decoded.chat_body,
                context: decoded.context,
            }))
        }
    })
}

/// The answer to a count_tokens request the gateway gives itself: an estimate of its prompt,
/// unless every deployment of its model, fallbacks included (an attempt may land on any),
/// speaks Messages and can count.
pub fn local_token_count(rt: &Runtime, model: &Model, request: &ParsedRequest) -> Option<Vec<u8>> {
    if request.operation() != Operation::CountTokens {
        return None;
    }
    let native = model.priorities.iter().flatten().all(|&d| {
        rt.deployments
            .get(d)
            .and_then(|d| rt.provider_of(d))
            .is_some_and(|p| p.provider.native_api() == Some(Api::AnthropicMessages))
    });
    if native {
        return None;
    }
    let prompt = request.chat().map_or(0, crate::flow::estimate::chat_prompt);
    Some(inputs::messages::count_tokens_answer(prompt))
}

/// A proxied request the gateway role lets through: the cluster to route it to, the parsed
/// request to park for its attempts, the public model it resolved to, and what it holds on its
/// key's limits until the response ends.
#[derive(Debug)]
pub struct Admitted<'r> {
    pub cluster: &'r str,
    /// The answer the gateway gives itself instead of sending the request on (count_tokens
    /// where no deployment can count).
    pub local_answer: Option<Vec<u8>>,
    pub request: ParsedRequest,
    pub model: Option<usize>,
    pub reservation: Option<Reservation>,
}

/// A proxied request the gateway role answers itself, the public model it named (once its
/// body did), and the rejection to count (a key's refusals are counted; a malformed body is
/// not a rejection).
#[derive(Debug)]
pub struct Refused {
    pub error: ApiError,
    pub model: Option<usize>,
    pub rejection: Option<Series>,
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Self {
        Refused {
            error,
            model: None,
            rejection: None,
        }
    }
}

/// The admission sequence of a proxied request's body: parse it and resolve its model, check
/// the caller may use that model, then take the caller's limits (an estimate of the request
/// reserved on its budget and token counters), in that order.
pub fn decide<'r>(
    rt: &'r Runtime,
    op: Operation,
    caller: Caller,
    body: &[u8],
    store: &dyn Store,
    now_ms: u64,
) -> Result<Admitted<'r>, Box<Refused>> {
    let admission = admit(rt, op, body).map_err(|e| Box::new(Refused::from(e)))?;
    let requested = admission.request.model();
    let model = rt.model_index(requested);
    if let Err(error) = check_access(rt, caller, admission.model, requested) {
        let key = match caller {
            Caller::Key(k) => Some(SubjectRef::Key(k)),
            Caller::Anonymous => None,
        };
        return Err(Box::new(Refused {
            error,
            model,
            rejection: Some(rejection(op, Rejection::ModelNotAllowed, key, model)),
        }));
    }
    let reservation = match caller {
        Caller::Key(key) => {
            let expected = estimate(rt, &admission);
            match rt.limits.admit(store, key, expected, now_ms) {
                Ok(r) => Some(r),
                Err(refusal) => {
                    return Err(Box::new(Refused {
                        rejection: refusal.limit.map(|limit| {
                            rejection(op, Rejection::Limit(limit), refusal.subject, model)
                        }),
                        error: refusal.error,
                        model,
                    }))
                }
            }
        }
        Caller::Anonymous => None,
    };
    Ok(Admitted {
        cluster: &admission.model.cluster,
        local_answer: local_token_count(rt, admission.model, &admission.request),
        request: admission.request,
        model,
        reservation,
    })
}

/// Deserializes a JSON body, turning serde's complaint into a 400 that names the field.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            "The request body is empty; send a JSON object.",
        ));
    }
    // JSON is UTF-8, and serde skips unknown members without checking theirs: a body that
    // passes through to a provider must be JSON there too. Checked once, here: serde reads
    // the `str` without checking it again.
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(ApiError::invalid(
            "The request body is not valid UTF-8; send JSON encoded in UTF-8.",
        ));
    };
    // Parsed once without tracking where it is; a body that fails is parsed again to name
    // the field (the bookkeeping would otherwise slow every request).
    if let Ok(parsed) = serde_json::from_str(text) {
        return Ok(parsed);
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    let result: Result<T, _> = serde_path_to_error::deserialize(de);
    result.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::invalid(format!(
                "We could not parse the JSON body of your request: {inner}."
            ));
        }
        let message = strip_position(&inner.to_string());
        if let Some(field) = quoted_after(&message, "duplicate field `") {
            let param = if path == "." {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            return ApiError::invalid_param(
                param.clone(),
                format!("The key `{param}` appears more than once; give it once."),
            );
        }
        if let Some(field) = quoted_after(&message, "missing field `") {
            let param = if path == "." {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            return ApiError::invalid_param(
                param.clone(),
                format!("Missing required parameter: `{param}`."),
            );
        }
        if path == "." {
            return ApiError::invalid(format!(
                "The request body must be a JSON object: {message}."
            ));
        }
        ApiError::invalid_param(
            path.clone(),
            format!("Invalid value for `{path}`: {message}."),
        )
    })
}

/// The name serde quotes after `prefix` (`missing field `x``, `duplicate field `x``).
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    message
        .strip_prefix(prefix)
        .and_then(|rest| rest.split('`').next())
}

/// serde_json appends " at line L column C"; the field path says more to a client.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message.get(..i).unwrap_or(message).to_owned(),
        None => message.to_owned(),
    }
}

/// `GET /v1/models`: every public model name the caller may use.
pub fn list_models(rt: &Runtime, caller: Caller) -> Vec<u8> {
    let list = ModelList::new(
        rt.models
            .iter()
            .filter(|m| rt.limits.allows(caller, m.names()))
            .map(|m| ModelEntry::new(&m.name, "switchboard"))
            .collect(),
    );
    serde_json::to_vec(&list).unwrap_or_default()
}

/// `GET /v1/models/{id}`.
pub fn get_model(rt: &Runtime, caller: Caller, id: &str) -> Result<Vec<u8>, ApiError> {
    let model = rt.model(id).ok_or_else(|| ApiError::model_not_found(id))?;
    check_access(rt, caller, model, id)?;
    serde_json::to_vec(&ModelEntry::new(&model.name, "switchboard"))
        .map_err(|e| ApiError::server(e.to_string()))
}

/// 403 unless the caller's key may use the model (`requested`: the name the client used).
pub fn check_access(
    rt: &Runtime,
    caller: Caller,
    model: &Model,
    requested: &str,
) -> Result<(), ApiError> {
    if rt.limits.allows(caller, model.names()) {
        Ok(())
    } else {
        Err(rt.limits.not_allowed(caller, requested))
    }
}

pub fn too_large(limit: u32) -> ApiError {
    ApiError::invalid(format!(
        "The request body is larger than this gateway's limit of {limit} bytes."
    ))
    .with_status(413)
    .with_code("request_too_large")
}

/// Envoy's plain-text local replies, explained in OpenAI's shape. Envoy answers 413 itself
/// when a body outgrows its buffer before the filter sees it: same answer as the filter's own.
pub fn envoy_error(status: u16, text: &str, max_request_bytes: u32) -> ApiError {
    let text = text.trim();
    let message = match status {
        413 => return too_large(max_request_bytes),
        503 => format!("No deployment of this model could answer: {text}"),
        504 => format!("The provider did not answer in time: {text}"),
        _ => format!("The gateway could not complete the request: {text}"),
    };
    let kind = match status {
        503 | 502 => ErrorKind::Upstream,
        _ => ErrorKind::from_status(status),
    };
    ApiError::new(kind, message).with_status(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    fn runtime() -> Runtime {
        Runtime::from_text(
            "providers: {p: {kind: openai, api_key: k}}\nmodels:\n- {name: gpt, aliases: [g], deployments: [{provider: p, model: x}]}\n",
            &|_: &str| None,
        )
        .unwrap()
    }

    #[test]
    fn classifies_requests() {
        struct Routed {
            name: &'static str,
            method: &'static str,
            path: &'static str,
            expected: Endpoint,
        }
        let ok = [
            Routed {
                name: "chat completions",
                method: "POST",
                path: "/v1/chat/completions",
                expected: Endpoint::Proxy(Operation::ChatCompletions),
            },
            Routed {
                name: "chat completions without /v1, with a query",
                method: "POST",
                path: "/chat/completions?x=1",
                expected: Endpoint::Proxy(Operation::ChatCompletions),
            },
            Routed {
                name: "embeddings",
                method: "POST",
                path: "/v1/embeddings",
                expected: Endpoint::Proxy(Operation::Embeddings),
            },
            Routed {
                name: "the model list",
                method: "GET",
                path: "/v1/models",
                expected: Endpoint::ListModels,
            },
            Routed {
                name: "a model whose id has a slash",
                method: "GET",
                path: "/v1/models/org/m",
                expected: Endpoint::GetModel("org/m".into()),
            },
            Routed {
                name: "health",
                method: "GET",
                path: "/health",
                expected: Endpoint::Health,
            },
            Routed {
                name: "messages with a query",
                method: "POST",
                path: "/v1/messages?beta=true",
                expected: Endpoint::Proxy(Operation::Messages),
            },
            Routed {
                name: "messages without /v1",
                method: "POST",
                path: "/messages",
                expected: Endpoint::Proxy(Operation::Messages),
            },
            Routed {
                name: "count tokens with a query",
                method: "POST",
                path: "/v1/messages/count_tokens?beta=true",
                expected: Endpoint::Proxy(Operation::CountTokens),
            },
        ];
        for case in ok {
            assert_eq!(
                classify(case.method, case.path),
                Ok(case.expected),
                "{}: {} {}",
                case.name,
                case.method,
                case.path
            );
        }
        struct Refused {
            name: &'static str,
            method: &'static str,
            path: &'static str,
            status: u16,
        }
        let bad = [
            Refused {
                name: "chat completions by GET",
                method: "GET",
                path: "/v1/chat/completions",
                status: 405,
            },
            Refused {
                name: "the model list by POST",
                method: "POST",
                path: "/v1/models",
                status: 405,
            },
            Refused {
                name: "the legacy completions",
                method: "POST",
                path: "/v1/completions",
                status: 404,
            },
            Refused {
                name: "the root",
                method: "GET",
                path: "/",
                status: 404,
            },
        ];
        for case in bad {
            assert_eq!(
                classify(case.method, case.path).unwrap_err().status,
                case.status,
                "{}: {} {}",
                case.name,
                case.method,
                case.path
            );
        }
    }

    #[test]
    fn bad_bodies_get_named_400s() {
        let rt = runtime();
        struct Case {
            name: &'static str,
            body: &'static str,
            status: u16,
            param: Option<&'static str>,
            /// Part of the message.
            message: &'static str,
        }
        let cases = [
            Case {
                name: "an extra parameter twice",
                body: r#"{"model":"gpt","messages":[{"role":"user","content":"x"}],"top_k":1,"top_k":2}"#,
                status: 400,
                param: Some("top_k"),
                message: "appears more than once",
            },
            Case {
                name: "the model twice",
                body: r#"{"model":"gpt","model":"other","messages":[{"role":"user","content":"x"}]}"#,
                status: 400,
                param: Some("model"),
                message: "appears more than once",
            },
            Case {
                name: "a member of a message twice",
                body: r#"{"model":"gpt","messages":[{"role":"user","role":"system","content":"x"}]}"#,
                status: 400,
                param: Some("messages[0].role"),
                message: "appears more than once",
            },
            Case {
                name: "a known parameter twice",
                body: r#"{"model":"gpt","messages":[{"role":"user","content":"x"}],"seed":1,"seed":2}"#,
                status: 400,
                param: Some("seed"),
                message: "appears more than once",
            },
            Case {
                name: "not JSON",
                body: "not json",
                status: 400,
                param: None,
                message: "could not parse the JSON body",
            },
            Case {
                name: "an empty body",
                body: "",
                status: 400,
                param: None,
                message: "body is empty",
            },
            Case {
                name: "not an object",
                body: "[1]",
                status: 400,
                param: None,
                message: "must be a JSON object",
            },
            Case {
                name: "no model",
                body: r#"{"messages":[{"role":"user","content":"x"}]}"#,
                status: 400,
                param: Some("model"),
                message: "Missing required parameter",
            },
            Case {
                name: "no messages",
                body: r#"{"model":"gpt"}"#,
                status: 400,
                param: Some("messages"),
                message: "Missing required parameter",
            },
            Case {
                name: "empty messages",
                body: r#"{"model":"gpt","messages":[]}"#,
                status: 400,
                param: Some("messages"),
                message: "at least one message",
            },
            Case {
                name: "a value of the wrong type",
                body: r#"{"model":"gpt","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#,
                status: 400,
                param: Some("stream"),
                message: "Invalid value for `stream`",
            },
            Case {
                name: "a message without a role",
                body: r#"{"model":"gpt","messages":[{"content":"x"}]}"#,
                status: 400,
                param: Some("messages[0].role"),
                message: "Missing required parameter",
            },
            Case {
                name: "an unknown model: 404",
                body: r#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#,
                status: 404,
                param: Some("model"),
                message: "does not exist",
            },
        ];
        for case in cases {
            let err = admit(&rt, Operation::ChatCompletions, case.body.as_bytes()).unwrap_err();
            assert_eq!(err.status, case.status, "{}: {}", case.name, case.body);
            assert_eq!(
                err.param.as_deref(),
                case.param,
                "{}: {}",
                case.name,
                case.body
            );
            assert!(
                err.message.contains(case.message),
                "{}: {}: {}",
                case.name,
                case.body,
                err.message
            );
        }
    }

    #[test]
    fn a_body_that_is_not_utf8_is_refused_even_in_a_member_nobody_reads() {
        let body = b"{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"x\":\"\xff\"}";
        for op in [Operation::ChatCompletions, Operation::Embeddings] {
            let err = admit(&runtime(), op, body).unwrap_err();
            assert_eq!(err.status, 400, "{op:?}");
            assert!(err.message.contains("not valid UTF-8"), "{}", err.message);
        }
    }

    #[test]
    fn admits_by_alias() {
        let rt = runtime();
        let a = admit(
            &rt,
            Operation::ChatCompletions,
            br#"{"model":"g","messages":[{"role":"user","content":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(a.model.cluster, "sb_gpt");
        let e = admit(&rt, Operation::Embeddings, br#"{"model":"gpt","input":5}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input"));
        let e = admit(
            &rt,
            Operation::Embeddings,
            br#"{"model":"gpt","input":"a","input":"b"}"#,
        )
        .unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, Some("input")));
    }

    #[test]
    fn envoy_local_replies_become_openai_errors() {
        let e = envoy_error(503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure\n", 10);
        assert_eq!((e.status, e.kind), (503, ErrorKind::Upstream));
        assert!(e
            .message
            .starts_with("No deployment of this model could answer: upstream connect error"));
        assert!(!e.message.ends_with('\n'));
        assert_eq!(
            envoy_error(504, "upstream request timeout", 10).kind,
            ErrorKind::Timeout
        );
        assert_eq!(envoy_error(413, "Payload Too Large", 10), too_large(10));
        assert_eq!(too_large(10).code.as_deref(), Some("request_too_large"));
    }

    #[test]
    fn keys_see_and_get_only_their_models() {
        let hash = crate::limits::keys::to_hex(&crate::limits::keys::sha256("sk"));
        let rt = Runtime::from_text(
            &format!(
                "providers: {{p: {{kind: openai, api_key: k}}}}\n\
                 models:\n\
                 - {{name: gpt, deployments: [{{provider: p, model: x}}]}}\n\
                 - {{name: claude-haiku, deployments: [{{provider: p, model: y}}]}}\n\
                 keys: [{{name: k, sha256: \"{hash}\", models: [\"claude-*\"]}}]\n"
            ),
            &|_: &str| None,
        )
        .unwrap();
        let ids = |caller| {
            let v: serde_json::Value = serde_json::from_slice(&list_models(&rt, caller)).unwrap();
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(Caller::Key(0)), ["claude-haiku"]);
        assert_eq!(ids(Caller::Anonymous), ["gpt", "claude-haiku"]);
        assert!(get_model(&rt, Caller::Key(0), "claude-haiku").is_ok());
        let e = get_model(&rt, Caller::Key(0), "gpt").unwrap_err();
        assert_eq!(
            (e.status, e.code.as_deref()),
            (403, Some("model_not_allowed"))
        );
    }

    #[test]
    fn estimates_are_priced_at_the_dearest_first_priority_deployment() {
        let rt = Runtime::from_text(
            "providers: {p: {kind: openai, api_key: k}}\n\
             models:\n\
             - {name: m, price: {input: 2, output: 8}, fallbacks: [dear],\n\
                deployments: [{provider: p, model: a}, {provider: p, model: b, price: {input: 3, output: 10}}]}\n\
             - {name: dear, price: {input: 100, output: 100}, deployments: [{provider: p, model: c}]}\n\
             - {name: free, deployments: [{provider: p, model: d}]}\n",
            &|_: &str| None,
        )
        .unwrap();
        let body = |model: &str| {
            format!(
                r#"{{"model":"{model}","max_tokens":100,"messages":[{{"role":"user","content":"hello there"}}]}}"#
            )
        };
        // 3 + 4 prompt tokens, 100 answer tokens: 7 * $3/M + 100 * $10/M = $0.001021.
        let a = admit(&rt, Operation::ChatCompletions, body("m").as_bytes()).unwrap();
        assert_eq!(
            estimate(&rt, &a),
            Estimate {
                tokens: 107,
                cost: 1_021_000_000
            }
        );
        let a = admit(&rt, Operation::ChatCompletions, body("free").as_bytes()).unwrap();
        assert_eq!(estimate(&rt, &a).cost, 0);
    }

    #[test]
    fn count_tokens_is_native_only_where_every_deployment_counts() {
        let rt = Runtime::from_text(
            "providers: {an: {kind: anthropic, api_key: k}, oa: {kind: openai, api_key: k}}\n\
             models:\n\
             - {name: claude, deployments: [{provider: an, model: c}]}\n\
             - {name: claude-then-gpt, deployments: [{provider: an, model: c}], fallbacks: [gpt]}\n\
             - {name: gpt, deployments: [{provider: oa, model: g}]}\n",
            &|_: &str| None,
        )
        .unwrap();
        let count = |model: &str| {
            let body = format!(
                r#"{{"model":"{model}","messages":[{{"role":"user","content":"hello there"}}]}}"#
            );
            let a = admit(&rt, Operation::CountTokens, body.as_bytes()).unwrap();
            assert_eq!(
                estimate(&rt, &a),
                Estimate::default(),
                "counting reserves nothing"
            );
            local_token_count(&rt, a.model, &a.request)
        };
        assert_eq!(count("claude"), None);
        // 11 bytes -> 3 tokens, + 4 for the message.
        let estimated = br#"{"input_tokens":7,"estimated":true}"#.to_vec();
        assert_eq!(count("claude-then-gpt"), Some(estimated.clone()));
        assert_eq!(count("gpt"), Some(estimated));
    }

    #[test]
    fn lists_models() {
        let v: serde_json::Value =
            serde_json::from_slice(&list_models(&runtime(), Caller::Anonymous)).unwrap();
        assert_eq!(v["object"], "list");
        assert_eq!(v["data"][0]["id"], "gpt");
        assert_eq!(
            get_model(&runtime(), Caller::Anonymous, "x")
                .unwrap_err()
                .status,
            404
        );
    }
}
