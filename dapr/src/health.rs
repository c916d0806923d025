//! Sidecar health, metadata and shutdown.
//!
//! [`DaprClient::wait_ready`] polls the *outbound* health endpoint on purpose: `/v1.0/healthz`
//! also waits for the app channel, and daprd opens that only once the app listens, so an app
//! waiting on it before serving would deadlock with its own sidecar.

use std::time::Duration;

use http::Method;
use serde_json::Value;
use tokio::time::Instant;

use crate::client::{DaprClient, body, decode_json};
use crate::error::Error;

/// Time between readiness probes.
const READY_POLL_INTERVAL: Duration = Duration::from_millis(100);

impl DaprClient {
    /// The sidecar's metadata document (app id, runtime version, components, subscriptions, ...).
    pub async fn metadata(&self) -> Result<Value, Error> {
        let url = self.url(["v1.0", "metadata"])?;
        let response = Self::send_ok(self.request(Method::GET, url)).await?;
        decode_json("metadata", &body(response).await?)
    }

    /// Ok when the sidecar's components and API are up (the app channel is not required).
    pub async fn healthz_outbound(&self) -> Result<(), Error> {
        self.probe(&["v1.0", "healthz", "outbound"], None).await
    }

    /// Ok when the sidecar is fully up, including its connection to this app.
    pub async fn healthz(&self) -> Result<(), Error> {
        self.probe(&["v1.0", "healthz"], None).await
    }

    /// Polls `/v1.0/healthz/outbound` every 100 ms until it answers 2xx or `timeout` passes.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        let start = Instant::now();
        let deadline = start + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            // Bound each probe by what is left, so a hung sidecar cannot stretch the deadline.
            let probe = remaining
                .min(self.config().timeout)
                .max(Duration::from_millis(1));
            let last = match self
                .probe(&["v1.0", "healthz", "outbound"], Some(probe))
                .await
            {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::NotReady {
                    waited: now - start,
                    last: Box::new(last),
                });
            }
            tokio::time::sleep(READY_POLL_INTERVAL.min(deadline - now)).await;
        }
    }

    /// Asks the sidecar to shut down gracefully.
    pub async fn shutdown(&self) -> Result<(), Error> {
        let url = self.url(["v1.0", "shutdown"])?;
        Self::send_empty(self.request(Method::POST, url)).await
    }

    async fn probe(&self, path: &[&str], timeout: Option<Duration>) -> Result<(), Error> {
        let url = self.url(path.iter().copied())?;
        let mut request = self.request(Method::GET, url);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        Self::send_empty(request).await
    }
}
