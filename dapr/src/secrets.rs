//! The secrets API: one secret or every secret of a store, as string maps.
//!
//! A secret is a map because multi-key stores (Kubernetes, multi-valued local files) return
//! several keys per secret; single-value stores return `{name: value}`.

use std::collections::BTreeMap;

use http::Method;

use crate::client::{DaprClient, body, decode_json, require_non_empty};
use crate::error::Error;

impl DaprClient {
    /// Reads secret `name` from `store`; an empty map when the store has no data for it.
    pub async fn get_secret(
        &self,
        store: &str,
        name: &str,
    ) -> Result<BTreeMap<String, String>, Error> {
        require_non_empty("secret store name", store)?;
        require_non_empty("secret name", name)?;
        let url = self.url(["v1.0", "secrets", store, name])?;
        let response = Self::send_ok(self.request(Method::GET, url)).await?;
        let secret: Option<BTreeMap<String, String>> =
            decode_json("secret", &body(response).await?)?;
        Ok(secret.unwrap_or_default())
    }

    /// Reads every secret the app may see in `store`, keyed by secret name.
    pub async fn get_bulk_secrets(
        &self,
        store: &str,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, Error> {
        require_non_empty("secret store name", store)?;
        let url = self.url(["v1.0", "secrets", store, "bulk"])?;
        let response = Self::send_ok(self.request(Method::GET, url)).await?;
        let secrets: Option<BTreeMap<String, BTreeMap<String, String>>> =
            decode_json("bulk secrets", &body(response).await?)?;
        Ok(secrets.unwrap_or_default())
    }
}
