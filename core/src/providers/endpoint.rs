//! A provider's base URL, split into what Envoy (cluster address, TLS, SNI) and the
//! upstream role (`:authority`, path prefix) need.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash, e.g. `/v1` or empty.
    pub base_path: String,
}

impl Endpoint {
    /// Accepts `http(s)://host[:port][/path]`; anything else (queries, user info) is refused.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("`{url}` must start with http:// or https://"));
        };
        if rest.contains(['?', '#', '@', '[']) {
            return Err(format!(
                "`{url}` must not carry a query, fragment or user info"
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        // IPv6 literals are not supported: use a hostname.
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("`{url}` has an invalid port `{p}`"))?;
                (h, port)
            }
            None => (authority, if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        Ok(Endpoint {
            tls,
            host: host.to_owned(),
            port,
            base_path: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The `:authority` to send: the host, plus the port when it is not the scheme's default.
    pub fn authority(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Base path joined with an API path such as `/chat/completions`.
    pub fn path(&self, api_path: &str) -> String {
        let mut p = String::with_capacity(self.base_path.len() + api_path.len());
        p.push_str(&self.base_path);
        p.push_str(api_path);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    /// A base URL (which names the case) and what it parses into, if it does.
    struct Case {
        url: &'static str,
        expected: Option<Endpoint>,
    }

    #[test]
    fn parses_base_urls() {
        let cases = [
            Case {
                url: "https://api.openai.com/v1",
                expected: Some(Endpoint {
                    tls: true,
                    host: "api.openai.com".into(),
                    port: 443,
                    base_path: "/v1".into(),
                }),
            },
            Case {
                url: "http://127.0.0.1:8080",
                expected: Some(Endpoint {
                    tls: false,
                    host: "127.0.0.1".into(),
                    port: 8080,
                    base_path: "".into(),
                }),
            },
            Case {
                url: "http://localhost:11434/v1/",
                expected: Some(Endpoint {
                    tls: false,
                    host: "localhost".into(),
                    port: 11434,
                    base_path: "/v1".into(),
                }),
            },
            Case {
                url: "https://x.openai.azure.com",
                expected: Some(Endpoint {
                    tls: true,
                    host: "x.openai.azure.com".into(),
                    port: 443,
                    base_path: "".into(),
                }),
            },
            Case {
                url: "ftp://x",
                expected: None,
            },
            Case {
                url: "https://:443",
                expected: None,
            },
            Case {
                url: "https://h:99999",
                expected: None,
            },
            Case {
                url: "https://h/v1?x=1",
                expected: None,
            },
        ];
        for case in cases {
            assert_eq!(
                Endpoint::parse(case.url).ok(),
                case.expected,
                "{}",
                case.url
            );
        }
        let e = Endpoint::parse("http://mock:9000/v1").unwrap();
        assert_eq!(e.authority(), "mock:9000");
        assert_eq!(e.path("/chat/completions"), "/v1/chat/completions");
    }
}
