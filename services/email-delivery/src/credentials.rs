//! SMTP credentials from the Dapr secret store, read once at start-up.
//!
//! The secret `SMTP_CREDENTIALS_SECRET` holds keys `username` and `password`. Stores shape
//! that differently: Kubernetes (and local files with `multiValued: true`) return both keys
//! under the one secret name; the local file store with its default `nestedSeparator: ":"`
//! flattens `{"smtp-credentials": {"username": …}}` into separate secrets named
//! `smtp-credentials:username` and `smtp-credentials:password`. Both forms are accepted.
//! A secret that does not exist means "no authentication" (a local sink needs none); one
//! that exists with only one of the two keys is an error, not a silent anonymous login.
//! A store that only serves listed secrets (the Kubernetes store behind the Helm chart's
//! Configuration) refuses the flattened names, which are never on its list: that refusal
//! means they do not exist there, while a refusal of the secret's own name stays an error.

use dapr::DaprClient;

use crate::config::SmtpCredentials;

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The secret store could not be asked (sidecar down, store misconfigured).
    #[error("reading secret `{name}` from store `{store}` failed")]
    Dapr {
        /// The store.
        store: String,
        /// The secret.
        name: String,
        /// What the sidecar said.
        #[source]
        source: dapr::Error,
    },
    /// The secret exists but lacks a key.
    #[error("secret `{name}` in store `{store}` has no `{key}` key")]
    MissingKey {
        /// The store.
        store: String,
        /// The secret.
        name: String,
        /// The missing key (`username` or `password`).
        key: &'static str,
    },
}

/// Reads credentials from secret `name` in `store`; `Ok(None)` when the secret is absent.
pub async fn from_secret_store(
    dapr: &DaprClient,
    store: &str,
    name: &str,
) -> Result<Option<SmtpCredentials>, CredentialsError> {
    let dapr_error = |secret: &str, source| CredentialsError::Dapr {
        store: store.to_owned(),
        name: secret.to_owned(),
        source,
    };
    let missing = |key| CredentialsError::MissingKey {
        store: store.to_owned(),
        name: name.to_owned(),
        key,
    };
    let (username, password) = match fetch(dapr, store, name).await {
        Ok(Some(mut secret)) => (secret.remove("username"), secret.remove("password")),
        Ok(None) => {
            // The flattened form of the local file store.
            let user_name = format!("{name}:username");
            let password_name = format!("{name}:password");
            let username = fetch_flattened(dapr, store, &user_name)
                .await
                .map_err(|e| dapr_error(&user_name, e))?;
            let password = fetch_flattened(dapr, store, &password_name)
                .await
                .map_err(|e| dapr_error(&password_name, e))?;
            (username, password)
        }
        Err(e) => return Err(dapr_error(name, e)),
    };
    match (username, password) {
        (Some(username), Some(password)) => Ok(Some(SmtpCredentials {
            username: username.into(),
            password: password.into(),
        })),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(missing("username")),
        (Some(_), None) => Err(missing("password")),
    }
}

/// The keys of secret `name`; `None` when the store says it does not exist or is empty.
async fn fetch(
    dapr: &DaprClient,
    store: &str,
    name: &str,
) -> Result<Option<std::collections::BTreeMap<String, String>>, dapr::Error> {
    match dapr.get_secret(store, name).await {
        Ok(secret) if secret.is_empty() => Ok(None),
        Ok(secret) => Ok(Some(secret)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The value of single-value secret `name` (`{name: value}`, or the only key there is).
async fn fetch_single(
    dapr: &DaprClient,
    store: &str,
    name: &str,
) -> Result<Option<String>, dapr::Error> {
    Ok(fetch(dapr, store, name)
        .await?
        .and_then(|mut secret| secret.remove(name).or_else(|| secret.into_values().next())))
}

/// A flattened single-value secret; `None` also when the store's policy refuses the name
/// (see the module docs).
async fn fetch_flattened(
    dapr: &DaprClient,
    store: &str,
    name: &str,
) -> Result<Option<String>, dapr::Error> {
    match fetch_single(dapr, store, name).await {
        Err(e)
            if e.api_error()
                .is_some_and(|api| api.status == axum::http::StatusCode::FORBIDDEN) =>
        {
            Ok(None)
        }
        other => other,
    }
}

/// daprd wraps a store's "no such secret" in a 500 (local file) or passes a 404 through.
fn is_not_found(error: &dapr::Error) -> bool {
    error
        .api_error()
        .is_some_and(dapr::DaprApiError::is_not_found)
}

#[cfg(test)]
mod tests {
    //! Against a stub sidecar answering the secrets API as daprd does with the Kubernetes
    //! store and the chart's secret scoping (the cluster suite runs the real one).

    use super::*;
    use axum::Router;
    use axum::extract::Path;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use dapr::ClientConfig;

    /// A sidecar whose store holds no `smtp-credentials` and whose policy refuses every name
    /// but `allowed`.
    async fn sidecar(allowed: &'static str) -> DaprClient {
        let app = Router::new().route(
            "/v1.0/secrets/secretstore/{name}",
            axum::routing::get(move |Path(name): Path<String>| async move {
                let response: Response = if name == allowed {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        r#"{"errorCode":"ERR_SECRET_GET","message":"failed getting secret: secrets \"smtp-credentials\" not found"}"#,
                    )
                        .into_response()
                } else {
                    (
                        StatusCode::FORBIDDEN,
                        format!(r#"{{"errorCode":"ERR_PERMISSION_DENIED","message":"access denied by policy to get \"{name}\""}}"#),
                    )
                        .into_response()
                };
                response
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("binding the stub sidecar");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        DaprClient::new(ClientConfig {
            http_endpoint: format!("http://{addr}"),
            ..ClientConfig::default()
        })
        .expect("a client")
    }

    #[tokio::test]
    async fn a_missing_secret_whose_flattened_names_are_refused_means_no_login() {
        let dapr = sidecar("smtp-credentials").await;
        let found = from_secret_store(&dapr, "secretstore", "smtp-credentials").await;
        assert!(matches!(found, Ok(None)), "{found:?}");
    }

    #[tokio::test]
    async fn a_refusal_of_the_secret_itself_is_an_error() {
        let dapr = sidecar("something-else").await;
        let found = from_secret_store(&dapr, "secretstore", "smtp-credentials").await;
        assert!(
            matches!(&found, Err(CredentialsError::Dapr { name, .. }) if name == "smtp-credentials"),
            "{found:?}"
        );
    }
}
