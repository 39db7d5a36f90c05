//! Where and how a provider is reached: its address, the credential it sends and the
//! section's extra headers, which every request to it carries.

use super::{Credential, Endpoint, Secrets, UpstreamRequest};
use crate::api::ApiError;
use crate::config::secret::Secret;

/// How a provider's credential is sent.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    /// `authorization: Bearer <credential>`.
    Bearer(Credential),
    /// The credential as the value of this header.
    Header(&'static str, Credential),
}

pub struct Upstream {
    pub endpoint: Endpoint,
    pub auth: Auth,
    /// The section's `headers`, resolved.
    pub headers: Vec<(String, Secret)>,
    /// The credential and the header values, to hide from clients.
    pub secrets: Secrets,
}

impl Upstream {
    /// An upstream whose secrets are its credential, its header values and `also` (credentials
    /// sent another way, such as the keys a signature is made with).
    pub fn new(
        endpoint: Endpoint,
        auth: Auth,
        headers: Vec<(String, Secret)>,
        also: &[&Credential],
    ) -> Self {
        let credential = match &auth {
            Auth::None => None,
            Auth::Bearer(c) | Auth::Header(_, c) => Some(c),
        };
        let secrets = Secrets::new(
            credential
                .into_iter()
                .chain(also.iter().copied())
                .filter_map(|c| match c {
                    Credential::Present(s) => Some(s.expose()),
                    Credential::None | Credential::Missing(_) => None,
                })
                .chain(headers.iter().map(|(_, v)| v.expose())),
        );
        Upstream {
            endpoint,
            auth,
            headers,
            secrets,
        }
    }

    /// The request headers: the credential's, then the kind's `own`, then the section's.
    pub fn headers(&self, own: &[(&str, &str)]) -> Result<Vec<(String, String)>, ApiError> {
        let mut headers = Vec::with_capacity(1 + own.len() + self.headers.len());
        let credential = match &self.auth {
            Auth::None => None,
            Auth::Bearer(c) => c
                .get()?
                .map(|key| ("authorization", format!("Bearer {key}"))),
            Auth::Header(name, c) => c.get()?.map(|key| (*name, key.to_owned())),
        };
        headers.extend(credential.map(|(name, value)| (name.to_owned(), value)));
        headers.extend(own.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())));
        headers.extend(
            self.headers
                .iter()
                .map(|(n, v)| (n.clone(), v.expose().to_owned())),
        );
        Ok(headers)
    }

    /// A request to `api_path` under the base path, with [`Upstream::headers`].
    pub fn request(
        &self,
        api_path: &str,
        own: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<UpstreamRequest, ApiError> {
        Ok(UpstreamRequest {
            path: self.endpoint.path(api_path),
            headers: self.headers(own)?,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::owned_pairs;
    use crate::testkit::test;

    struct Case {
        name: &'static str,
        auth: Auth,
        expected: Result<&'static [(&'static str, &'static str)], &'static str>,
    }

    #[test]
    fn credential_then_own_then_the_sections_headers() {
        let key = || Credential::Present(Secret::new("k"));
        let cases = [
            Case {
                name: "bearer",
                auth: Auth::Bearer(key()),
                expected: Ok(&[
                    ("authorization", "Bearer k"),
                    ("anthropic-version", "v"),
                    ("x-team", "blue"),
                ]),
            },
            Case {
                name: "a header of its own",
                auth: Auth::Header("x-api-key", key()),
                expected: Ok(&[
                    ("x-api-key", "k"),
                    ("anthropic-version", "v"),
                    ("x-team", "blue"),
                ]),
            },
            Case {
                name: "no credential",
                auth: Auth::None,
                expected: Ok(&[("anthropic-version", "v"), ("x-team", "blue")]),
            },
            Case {
                name: "an optional key not configured",
                auth: Auth::Bearer(Credential::None),
                expected: Ok(&[("anthropic-version", "v"), ("x-team", "blue")]),
            },
            Case {
                name: "a key whose variable is unset",
                auth: Auth::Bearer(Credential::Missing("no api_key".into())),
                expected: Err("no api_key"),
            },
        ];
        for case in cases {
            let upstream = Upstream::new(
                Endpoint::parse("https://h/base").unwrap(),
                case.auth,
                vec![("x-team".into(), Secret::new("blue"))],
                &[],
            );
            let got = upstream.request("/v1/x", &[("anthropic-version", "v")], b"{}".to_vec());
            match (got, case.expected) {
                (Ok(up), Ok(headers)) => {
                    assert_eq!(up.path, "/base/v1/x", "{}", case.name);
                    assert_eq!(up.headers, owned_pairs(headers), "{}", case.name);
                }
                (Err(e), Err(message)) => assert_eq!(e.message, message, "{}", case.name),
                (got, _) => panic!("{}: {got:?}", case.name),
            }
        }
    }
}
