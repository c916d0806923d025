//! Service invocation: calling another app's HTTP route through the sidecars.
//!
//! [`DaprClient::invoke`] hands back the raw response, because the callee's statuses mean
//! whatever that app says they mean; [`DaprClient::invoke_json`] is the shortcut for the common
//! "2xx with a JSON body, anything else is an error" case.

use http::Method;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use reqwest::Response;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::client::{DaprClient, body, decode_json, require_non_empty};
use crate::cloudevent::APPLICATION_JSON;
use crate::error::Error;

impl DaprClient {
    /// Calls `method path` on app `app_id`; returns the response whatever its status.
    ///
    /// `path` may carry a query string (`tasks/1?expand=tags`); its segments are percent-encoded
    /// as needed. Only a transport failure or an invalid header is an `Err`.
    pub async fn invoke(
        &self,
        app_id: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Response, Error> {
        require_non_empty("app id", app_id)?;
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        let mut url = self.url(
            ["v1.0", "invoke", app_id, "method"]
                .into_iter()
                .chain(path.trim_start_matches('/').split('/')),
        )?;
        url.set_query(query);
        let mut request = self.request(method, url);
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Error::InvalidArgument(format!("`{name}` is not a valid header name"))
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                Error::InvalidArgument(format!("header `{name}` has an invalid value"))
            })?;
            request = request.header(name, value);
        }
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).map_err(|source| Error::Encode {
                what: "invocation body",
                source,
            })?;
            request = request.header(CONTENT_TYPE, APPLICATION_JSON).body(bytes);
        }
        Self::send(request).await
    }

    /// Like [`DaprClient::invoke`], decoding a 2xx JSON body into `T` and turning any other
    /// status into [`Error::Api`] (an empty body decodes as `null`).
    pub async fn invoke_json<T: DeserializeOwned>(
        &self,
        app_id: &str,
        method: Method,
        path: &str,
        body_json: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<T, Error> {
        let response = self
            .invoke(app_id, method, path, body_json, headers)
            .await?;
        if !response.status().is_success() {
            return Err(Error::Api(crate::client::api_error(response).await));
        }
        decode_json("invocation response", &body(response).await?)
    }
}
