//! The sidecar client handle, its configuration, and the request plumbing every API module shares.
//!
//! Unlike the official SDKs this speaks plain HTTP/1.1 to the sidecar on loopback: one pooled
//! `reqwest::Client`, the token as a default header, and no gRPC or TLS stack to build or carry.
//! The building-block methods live beside their types (`publish.rs`, `state.rs`, ...) as further
//! `impl DaprClient` blocks.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;

use crate::error::{DaprApiError, Error};

/// Header daprd reads the API token from.
pub(crate) const API_TOKEN_HEADER: &str = "dapr-api-token";

const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:3500";
const DEFAULT_PORT: u16 = 3500;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the sidecar is and how to authenticate to it. `Debug` prints the token as `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Base URL of the sidecar HTTP API, e.g. `http://127.0.0.1:3500`.
    pub http_endpoint: String,
    /// Sent as `dapr-api-token` on every request when set.
    pub api_token: Option<SecretString>,
    /// Whole-request timeout for each call.
    pub timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            http_endpoint: DEFAULT_ENDPOINT.to_owned(),
            api_token: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl ClientConfig {
    /// Reads `DAPR_HTTP_ENDPOINT`, `DAPR_HTTP_PORT` and `DAPR_API_TOKEN` from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`ClientConfig::from_env`], reading variables through `lookup` (tests pass a map).
    ///
    /// `DAPR_HTTP_ENDPOINT` (a full URL) wins over `DAPR_HTTP_PORT` (on 127.0.0.1, default 3500).
    /// Every malformed variable is reported, not just the first.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut config = Self::default();

        let port = match lookup("DAPR_HTTP_PORT") {
            None => Some(DEFAULT_PORT),
            Some(raw) => match raw.trim().parse::<u16>() {
                Ok(port) if port != 0 => Some(port),
                _ => {
                    problems.push(ConfigProblem::new(
                        "DAPR_HTTP_PORT",
                        &raw,
                        "is not a port number",
                    ));
                    None
                }
            },
        };
        match lookup("DAPR_HTTP_ENDPOINT").filter(|raw| !raw.trim().is_empty()) {
            Some(raw) => match parse_endpoint(raw.trim()) {
                Ok(_) => config.http_endpoint = raw.trim().to_owned(),
                Err(reason) => {
                    problems.push(ConfigProblem::new("DAPR_HTTP_ENDPOINT", &raw, reason));
                }
            },
            None => {
                if let Some(port) = port {
                    config.http_endpoint = format!("http://127.0.0.1:{port}");
                }
            }
        }
        // An empty token means "no token": that is how an unset Kubernetes secret usually arrives.
        if let Some(token) = lookup("DAPR_API_TOKEN").filter(|t| !t.is_empty()) {
            if HeaderValue::from_str(&token).is_ok() {
                config.api_token = Some(token.into());
            } else {
                problems.push(ConfigProblem {
                    variable: "DAPR_API_TOKEN",
                    // Never echo a secret, even a malformed one.
                    value: None,
                    reason: "contains characters not allowed in an http header",
                });
            }
        }

        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }
}

/// Checks that `raw` is an absolute http(s) URL we can append API paths to.
fn parse_endpoint(raw: &str) -> Result<Url, &'static str> {
    let url = Url::parse(raw).map_err(|_| "is not a url")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("is not an http(s) url");
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err("has no host");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment");
    }
    Ok(url)
}

/// Every malformed sidecar variable found in the environment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid dapr client configuration: {}", join_problems(.problems))]
pub struct ConfigError {
    /// One entry per bad variable, in the order they were checked.
    pub problems: Vec<ConfigProblem>,
}

fn join_problems(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One bad variable: which, what it held, and why it was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The variable name, e.g. `DAPR_HTTP_PORT`.
    pub variable: &'static str,
    /// Its value, omitted for secrets.
    pub value: Option<String>,
    /// Why it was rejected, e.g. "is not a port number".
    pub reason: &'static str,
}

impl ConfigProblem {
    fn new(variable: &'static str, value: &str, reason: &'static str) -> Self {
        Self {
            variable,
            value: Some(value.to_owned()),
            reason,
        }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}: `{value}` {}", self.variable, self.reason),
            None => write!(f, "{}: {}", self.variable, self.reason),
        }
    }
}

/// A cheap-to-clone handle on the sidecar HTTP API.
#[derive(Clone, Debug)]
pub struct DaprClient {
    http: reqwest::Client,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    /// Parsed once so building a request URL cannot fail on the hot path.
    base: Url,
}

impl DaprClient {
    /// Builds a client; fails only on a malformed endpoint or token.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let base = parse_endpoint(&config.http_endpoint).map_err(|reason| {
            Error::InvalidArgument(format!("http_endpoint `{}` {reason}", config.http_endpoint))
        })?;
        let mut headers = HeaderMap::new();
        if let Some(token) = &config.api_token {
            let mut value = HeaderValue::from_str(token.expose_secret()).map_err(|_| {
                Error::InvalidArgument(
                    "api_token contains characters not allowed in a header".into(),
                )
            })?;
            value.set_sensitive(true);
            headers.insert(API_TOKEN_HEADER, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.timeout)
            // The sidecar is local: an HTTP_PROXY meant for the internet must not capture it.
            .no_proxy()
            .build()
            .map_err(Error::Transport)?;
        Ok(Self {
            http,
            inner: Arc::new(Inner { config, base }),
        })
    }

    /// Builds a client from [`ClientConfig::from_env`].
    pub fn from_env() -> Result<Self, Error> {
        Self::new(ClientConfig::from_env()?)
    }

    /// The sidecar base URL this client talks to.
    pub fn endpoint(&self) -> &str {
        &self.inner.config.http_endpoint
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The base URL extended by `segments`, each percent-encoded as one path segment.
    pub(crate) fn url<'a>(
        &self,
        segments: impl IntoIterator<Item = &'a str>,
    ) -> Result<Url, Error> {
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .map_err(|()| Error::InvalidArgument("endpoint cannot take a path".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// A request to `url` with the configured token and timeout.
    pub(crate) fn request(&self, method: http::Method, url: Url) -> RequestBuilder {
        self.http.request(method, url)
    }

    /// Sends `request`, returning the response whatever its status.
    pub(crate) async fn send(request: RequestBuilder) -> Result<Response, Error> {
        request.send().await.map_err(Error::Transport)
    }

    /// Sends `request` and turns any non-2xx answer into [`Error::Api`].
    pub(crate) async fn send_ok(request: RequestBuilder) -> Result<Response, Error> {
        let response = Self::send(request).await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(Error::Api(api_error(response).await))
        }
    }

    /// Sends `request`, requires 2xx and discards the body.
    pub(crate) async fn send_empty(request: RequestBuilder) -> Result<(), Error> {
        Self::send_ok(request).await.map(drop)
    }
}

/// Reads a non-success response into a [`DaprApiError`]; an unreadable body leaves the message empty.
pub(crate) async fn api_error(response: Response) -> DaprApiError {
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    DaprApiError::from_response(status, &body)
}

/// Reads the whole body of a response.
pub(crate) async fn body(response: Response) -> Result<Bytes, Error> {
    response.bytes().await.map_err(Error::Transport)
}

/// Decodes a JSON body; an empty body decodes as `null` so `()` and `Option<T>` work for 204s.
pub(crate) fn decode_json<T: DeserializeOwned>(
    what: &'static str,
    body: &[u8],
) -> Result<T, Error> {
    let result = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::from_value(serde_json::Value::Null)
    } else {
        serde_json::from_slice(body)
    };
    result.map_err(|source| Error::Decode { what, source })
}

/// Rejects an empty name that would silently change which daprd route a URL hits.
pub(crate) fn require_non_empty(what: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        Err(Error::InvalidArgument(format!("{what} must not be empty")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let config = ClientConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(config.http_endpoint, ClientConfig::default().http_endpoint);
        assert_eq!(config.http_endpoint, "http://127.0.0.1:3500");
        assert!(config.api_token.is_none());
        assert_eq!(config.timeout, Duration::from_secs(10));
    }

    #[test]
    fn port_builds_a_loopback_endpoint() {
        let config = ClientConfig::from_lookup(lookup(&[
            ("DAPR_HTTP_PORT", "3601"),
            ("DAPR_API_TOKEN", "s3cret"),
        ]))
        .unwrap();
        assert_eq!(config.http_endpoint, "http://127.0.0.1:3601");
        assert_eq!(
            config.api_token.as_ref().map(ExposeSecret::expose_secret),
            Some("s3cret")
        );
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn endpoint_wins_over_port() {
        let config = ClientConfig::from_lookup(lookup(&[
            ("DAPR_HTTP_ENDPOINT", "http://dapr.local:4000"),
            ("DAPR_HTTP_PORT", "3601"),
            ("DAPR_API_TOKEN", ""),
        ]))
        .unwrap();
        assert_eq!(config.http_endpoint, "http://dapr.local:4000");
        assert!(config.api_token.is_none());
    }

    #[test]
    fn every_bad_variable_is_reported_together() {
        let err = ClientConfig::from_lookup(lookup(&[
            ("DAPR_HTTP_ENDPOINT", "ftp://x"),
            ("DAPR_HTTP_PORT", "abc"),
            ("DAPR_API_TOKEN", "bad\ntoken"),
        ]))
        .unwrap_err();
        let variables: Vec<_> = err.problems.iter().map(|p| p.variable).collect();
        assert_eq!(
            variables,
            ["DAPR_HTTP_PORT", "DAPR_HTTP_ENDPOINT", "DAPR_API_TOKEN"]
        );
        let message = err.to_string();
        assert!(
            message.contains("DAPR_HTTP_PORT: `abc` is not a port number"),
            "{message}"
        );
        assert!(
            message.contains("DAPR_HTTP_ENDPOINT: `ftp://x` is not an http(s) url"),
            "{message}"
        );
        assert!(!message.contains("bad\ntoken"), "{message}");
    }

    #[test]
    fn port_zero_and_garbage_endpoints_are_rejected() {
        let err = ClientConfig::from_lookup(lookup(&[("DAPR_HTTP_PORT", "0")])).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        let err =
            ClientConfig::from_lookup(lookup(&[("DAPR_HTTP_ENDPOINT", "not a url")])).unwrap_err();
        assert_eq!(err.problems[0].reason, "is not a url");
    }

    #[test]
    fn new_rejects_a_bad_endpoint() {
        let config = ClientConfig {
            http_endpoint: "localhost".into(),
            ..ClientConfig::default()
        };
        assert!(matches!(
            DaprClient::new(config),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn url_encodes_segments_and_keeps_a_base_path() {
        let client = DaprClient::new(ClientConfig {
            http_endpoint: "http://127.0.0.1:3500/".into(),
            ..ClientConfig::default()
        })
        .unwrap();
        let url = client.url(["v1.0", "state", "store", "a b/c?"]).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:3500/v1.0/state/store/a%20b%2Fc%3F"
        );

        let client = DaprClient::new(ClientConfig {
            http_endpoint: "http://proxy:80/dapr".into(),
            ..ClientConfig::default()
        })
        .unwrap();
        let url = client.url(["v1.0", "healthz"]).unwrap();
        assert_eq!(url.as_str(), "http://proxy/dapr/v1.0/healthz");
    }
}
