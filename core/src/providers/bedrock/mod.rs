//! AWS Bedrock. Chat goes through the Converse API (`/model/{id}/converse`, and
//! `/model/{id}/converse-stream`, which answers in AWS eventstream framing); embeddings through
//! InvokeModel (`/model/{id}/invoke`) for Titan and Cohere models. Requests are signed with
//! SigV4 over the final body, or carry a Bedrock API key as a bearer token.
//!
//! Converse wants strictly alternating user/assistant turns: consecutive messages of one role
//! are merged, and tool results (OpenAI `tool` messages) become `toolResult` blocks of the
//! user turn that follows the assistant's `toolUse` turn.
//!
//! `reasoning_effort` asks Claude models for thinking (Anthropic's budgets, in
//! `additionalModelRequestFields.thinking`); their signed reasoning (`reasoningContent`) comes
//! back as `thinking_blocks` and, handed back on assistant turns, goes back to Converse while
//! thinking is on, as Claude requires to continue a tool loop.
//!
//! Answers follow Converse's reference: `output.message.content` and `stopReason` are required
//! (a ConverseStream's `messageStop` carries the latter), else the answer is a 502
//! (`invalid_upstream_response`). An empty `content` list is an answer (Claude's documented
//! empty `end_turn` turns, a guardrail's intervention), as is a stream without content events.
//!
//! Titan embeds one text per call, so a list of several inputs is refused with a 400 naming
//! `input` rather than fanned out into several signed calls (use a `cohere.embed-*` model to
//! embed batches).
//!
//! One file per seam: `wire` (Converse, ConverseStream and InvokeModel types), `request`,
//! `response`, `stream`, `error`, `embeddings`; this file holds the provider (settings,
//! credentials, signing, paths).

mod embeddings;
mod error;
mod request;
mod response;
mod stream;
mod wire;

use super::kinds::Kind;
use super::upstream::{Auth, Upstream};
use super::{
    sigv4, Attempt, Credential, Provider, ProviderSetup, ResponseContext, StreamTranslator,
    Translated, UpstreamRequest,
};
use crate::api::chat::ChatRequest;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::ApiError;
use crate::config::secret::SecretSpec;
use crate::config::Problem;
use serde::Deserialize;

const KIND: &str = "bedrock";

/// The SigV4 signing name of `bedrock-runtime`.
const SIGNING_SERVICE: &str = "bedrock";

/// Where credentials come from when the configuration does not say, as in AWS's SDKs (the
/// kind's `implied_env`). A session token belongs to its keys: it is taken from the
/// environment only with the access key id from there too.
pub const DEFAULT_ACCESS_KEY_ID_ENV: &str = "AWS_ACCESS_KEY_ID";
pub const DEFAULT_SECRET_ACCESS_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";
pub const DEFAULT_SESSION_TOKEN_ENV: &str = "AWS_SESSION_TOKEN";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    region: String,
    #[serde(default)]
    access_key_id: Option<SecretSpec>,
    #[serde(default)]
    secret_access_key: Option<SecretSpec>,
    #[serde(default)]
    session_token: Option<SecretSpec>,
}

enum AwsAuth {
    SigV4 {
        access_key_id: Credential,
        secret_access_key: Credential,
        session_token: Credential,
    },
    /// A Bedrock API key, sent as `Authorization: Bearer`.
    ApiKey(Credential),
}

pub struct Bedrock {
    /// Address and extra headers; the credential is `auth`'s (a signature, or a key).
    upstream: Upstream,
    region: String,
    auth: AwsAuth,
}

pub fn build(
    setup: &ProviderSetup,
    kind: &'static Kind,
) -> Result<Box<dyn Provider>, Vec<Problem>> {
    let settings: Settings = setup.settings().map_err(|p| vec![p])?;
    let region = settings.region.as_str();
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(vec![Problem::new(
            format!("{}.region", setup.path),
            format!("`{region}` is not an AWS region name (e.g. us-east-1)"),
        )]);
    }
    let endpoint = setup.endpoint(kind, Some(region)).map_err(|p| vec![p])?;
    let auth = if setup.spec.api_key.is_some() {
        if settings.access_key_id.is_some()
            || settings.secret_access_key.is_some()
            || settings.session_token.is_some()
        {
            return Err(vec![Problem::new(
                format!("{}.api_key", setup.path),
                "set either api_key (a Bedrock API key) or AWS access keys, not both",
            )]);
        }
        AwsAuth::ApiKey(setup.api_key())
    } else {
        let env_default = |name: &str| SecretSpec::Env {
            env: name.to_owned(),
        };
        let session_token = match &settings.session_token {
            Some(spec) => setup.credential("session_token", Some(spec)),
            // A token belongs to its keys: taken from the environment (when there is one) only
            // with the access key id from the environment too.
            None if settings.access_key_id.is_none() => {
                match env_default(DEFAULT_SESSION_TOKEN_ENV).resolve(setup.env) {
                    Ok(token) => Credential::Present(token),
                    Err(_) => Credential::None,
                }
            }
            None => Credential::None,
        };
        AwsAuth::SigV4 {
            access_key_id: setup.credential(
                "access_key_id",
                Some(
                    settings
                        .access_key_id
                        .as_ref()
                        .unwrap_or(&env_default(DEFAULT_ACCESS_KEY_ID_ENV)),
                ),
            ),
            secret_access_key: setup.credential(
                "secret_access_key",
                Some(
                    settings
                        .secret_access_key
                        .as_ref()
                        .unwrap_or(&env_default(DEFAULT_SECRET_ACCESS_KEY_ENV)),
                ),
            ),
            session_token,
        }
    };
    let credentials = match &auth {
        AwsAuth::SigV4 {
            access_key_id,
            secret_access_key,
            session_token,
        } => vec![access_key_id, secret_access_key, session_token],
        AwsAuth::ApiKey(key) => vec![key],
    };
    Ok(Box::new(Bedrock {
        upstream: Upstream::new(endpoint, Auth::None, setup.headers()?, &credentials),
        region: settings.region,
        auth,
    }))
}

impl Bedrock {
    /// A signed POST to `/model/{model}/{action}`. The model id is one path segment, so the
    /// `:` and `/` of ids and ARNs are percent-encoded.
    fn upstream_request(
        &self,
        action: &str,
        model: &str,
        body: Vec<u8>,
        now_ms: u64,
    ) -> Result<UpstreamRequest, ApiError> {
        let path = self
            .upstream
            .endpoint
            .path(&format!("/model/{}/{action}", sigv4::uri_encode(model)));
        let mut headers = self.upstream.headers(&[])?;
        match &self.auth {
            AwsAuth::ApiKey(key) => {
                let key = key
                    .get()?
                    .ok_or_else(|| ApiError::server("the Bedrock API key is not configured"))?;
                headers.push(("authorization".to_owned(), format!("Bearer {key}")));
            }
            AwsAuth::SigV4 {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                let missing = || ApiError::server("AWS credentials are not configured");
                let credentials = sigv4::Credentials {
                    access_key_id: access_key_id.get()?.ok_or_else(missing)?,
                    secret_access_key: secret_access_key.get()?.ok_or_else(missing)?,
                    session_token: session_token.get()?,
                };
                let request = sigv4::Request {
                    method: "POST",
                    host: &self.upstream.endpoint.authority(),
                    path: &path,
                    query: &[],
                    headers: &[],
                    payload: &body,
                };
                let scope = sigv4::Scope {
                    region: &self.region,
                    service: SIGNING_SERVICE,
                };
                headers.extend(sigv4::sign(&request, &credentials, &scope, now_ms));
            }
        }
        Ok(UpstreamRequest {
            path,
            headers,
            body,
        })
    }
}

impl Provider for Bedrock {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        _raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let body = request::converse_request(req, attempt.upstream_model, attempt.settings)?;
        let body = serde_json::to_vec(&body).map_err(|e| ApiError::server(e.to_string()))?;
        let action = if req.stream {
            "converse-stream"
        } else {
            "converse"
        };
        self.upstream_request(action, attempt.upstream_model, body, attempt.now_ms)
    }

    fn chat_response(&self, body: &[u8], ctx: &ResponseContext) -> Result<Translated, ApiError> {
        response::chat_completion(body, ctx)
    }

    fn stream_translator(&self, ctx: &ResponseContext) -> Box<dyn StreamTranslator> {
        Box::new(stream::ConverseStream::new(ctx))
    }

    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let model = attempt.upstream_model;
        let body = embeddings::invoke_request(req, raw, model, attempt.settings)?;
        let body = serde_json::to_vec(&body).map_err(|e| ApiError::server(e.to_string()))?;
        self.upstream_request("invoke", model, body, attempt.now_ms)
    }

    fn embeddings_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<Translated, ApiError> {
        embeddings::invoke_response(body, ctx)
    }

    fn signs_with_time(&self) -> bool {
        matches!(self.auth, AwsAuth::SigV4 { .. })
    }

    fn provider_error(&self, status: u16, body: &[u8]) -> ApiError {
        error::bedrock_error(status, body)
    }
}

/// The provider section the tests sign with: AWS's documentation example keys.
#[cfg(test)]
const KEYS: &str = "kind: bedrock\nregion: us-east-1\naccess_key_id: AKIDEXAMPLE\nsecret_access_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderSpec;
    use crate::providers::testing::*;
    use crate::testkit::test;

    const CLAUDE: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

    #[test]
    fn config_problems_and_defaults() {
        assert_build_error("kind: bedrock", "providers.test: missing field `region`");
        assert_build_error(
            "kind: bedrock\nregion: Mars 1",
            "providers.test.region: `Mars 1` is not an AWS region name",
        );
        assert_build_error(
            "kind: bedrock\nregion: us-east-1\napi_key: k\naccess_key_id: a",
            "set either api_key",
        );
        assert_build_error(
            "kind: bedrock\nregion: us-east-1\nsecret: x",
            "unknown field `secret`",
        );

        let spec: ProviderSpec =
            serde_yaml::from_str("kind: bedrock\nregion: eu-west-3\naccess_key_id: {env: MY_KEY}")
                .unwrap();
        assert_eq!(
            crate::providers::env_names(&spec),
            ["MY_KEY", "AWS_SECRET_ACCESS_KEY"]
        );
        let spec: ProviderSpec = serde_yaml::from_str("kind: bedrock\nregion: eu-west-3").unwrap();
        assert_eq!(
            crate::providers::env_names(&spec),
            [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN"
            ]
        );
        let spec: ProviderSpec =
            serde_yaml::from_str("kind: bedrock\nregion: eu-west-3\napi_key: {env: BR}").unwrap();
        assert_eq!(crate::providers::env_names(&spec), ["BR"]);

        let p = provider("kind: bedrock\nregion: eu-west-3");
        assert_eq!(p.endpoint().host, "bedrock-runtime.eu-west-3.amazonaws.com");
        assert!(p.endpoint().tls);
        // Credentials default to AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, unset here: the
        // configuration loads, the request fails.
        let (req, raw) =
            chat_request(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
        let err = p
            .chat_request(&req, raw.as_bytes(), &attempt(CLAUDE))
            .unwrap_err();
        assert_eq!(err.status, 500);
        assert_eq!(
            err.message,
            "provider `test` has no access_key_id configured"
        );
    }

    #[test]
    fn session_tokens_come_with_their_keys() {
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKIDENV".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("env-secret".to_owned()),
            "AWS_SESSION_TOKEN" => Some("env-token".to_owned()),
            _ => None,
        };
        let cases = [
            SessionCase {
                name: "keys and token from the environment",
                yaml: "kind: bedrock\nregion: us-east-1".to_owned(),
                token: Some("env-token"),
                key_id: "AKIDENV",
            },
            SessionCase {
                name: "configured keys leave the environment's token alone",
                yaml: KEYS.to_owned(),
                token: None,
                key_id: "AKIDEXAMPLE",
            },
            SessionCase {
                name: "configured keys with their own token",
                yaml: format!("{KEYS}session_token: own-token"),
                token: Some("own-token"),
                key_id: "AKIDEXAMPLE",
            },
        ];
        for case in cases {
            let spec: ProviderSpec = serde_yaml::from_str(&case.yaml).unwrap();
            let setup = ProviderSetup {
                name: "test",
                spec: &spec,
                env: &env,
                path: "providers.test".into(),
            };
            let Ok(p) = crate::providers::build(&setup) else {
                panic!("{}", case.name)
            };
            let up = send_chat(
                p.as_ref(),
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
                &attempt(CLAUDE),
            )
            .unwrap();
            let header = |name: &str| {
                up.headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(header("x-amz-security-token"), case.token, "{}", case.name);
            assert!(
                header("authorization")
                    .unwrap()
                    .contains(&format!("Credential={}/", case.key_id)),
                "{}",
                case.name
            );
        }
    }

    struct SessionCase {
        name: &'static str,
        yaml: String,
        /// The session token sent, if any.
        token: Option<&'static str>,
        /// The access key id the signature names.
        key_id: &'static str,
    }

    #[test]
    fn requests_are_signed_over_the_final_body() {
        let p = provider(&format!(
            "{KEYS}session_token: tok\nbase_url: http://mock:9000/bedrock\nheaders: {{X-Team: a}}"
        ));
        let (req, raw) = chat_request(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
        );
        let up = p
            .chat_request(&req, raw.as_bytes(), &attempt(CLAUDE))
            .unwrap();
        assert_eq!(
            up.path,
            "/bedrock/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"
        );
        let expected = sigv4::sign(
            &sigv4::Request {
                method: "POST",
                host: "mock:9000",
                path: &up.path,
                query: &[],
                headers: &[],
                payload: &up.body,
            },
            &sigv4::Credentials {
                access_key_id: "AKIDEXAMPLE",
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                session_token: Some("tok"),
            },
            &sigv4::Scope {
                region: "us-east-1",
                service: "bedrock",
            },
            1_700_000_000_000,
        );
        let mut want = vec![("x-team".to_owned(), "a".to_owned())];
        want.extend(expected);
        assert_eq!(up.headers, want);
        let auth = &up.headers.last().unwrap().1;
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature="), "{auth}");
        assert_eq!(
            up.headers[1],
            ("x-amz-date".to_owned(), "20231114T221320Z".to_owned())
        );

        // ARNs keep their slashes inside the one path segment.
        let up = p
            .chat_request(
                &req,
                raw.as_bytes(),
                &attempt("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-1-8b-instruct-v1:0"),
            )
            .unwrap();
        assert_eq!(up.path, "/bedrock/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.meta.llama3-1-8b-instruct-v1%3A0/converse-stream");

        let p = provider("kind: bedrock\nregion: us-west-2\napi_key: br-key");
        let up = p
            .chat_request(&req, raw.as_bytes(), &attempt(CLAUDE))
            .unwrap();
        assert_eq!(
            up.headers,
            [("authorization".to_owned(), "Bearer br-key".to_owned())]
        );
    }
}
