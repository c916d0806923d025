//! The service's configuration, read from the environment in one pass.
//!
//! Every variable has a default that works on a developer machine, and every bad variable —
//! ours and the sidecar's `DAPR_*` ones — is reported at once rather than one per restart.

use secrecy::SecretString;
use std::net::SocketAddr;
use std::time::Duration;

use middleware::LogFormat;
pub use middleware::env::EnvError as ConfigError;
use middleware::env::{EnvReader, ServiceEnv};

/// Variables the service reads, with their meaning, for `--help`.
pub const ENV_HELP: &str = "\
Environment (defaults in brackets):
  RECURRING_TASK_HOST    address to listen on [127.0.0.1]
  RECURRING_TASK_PORT    port for event deliveries, health and metrics routes [8003]
  METRICS_PORT           serve /metrics on this port (same host) instead of the one above [unset]
  BACKEND_APP_ID         Dapr app id of the backend, called for each next occurrence [backend]
  DAPR_HTTP_PORT, DAPR_HTTP_ENDPOINT, DAPR_API_TOKEN  the sidecar (see the dapr crate) [3500]
  APP_API_TOKEN          token daprd must present on every call into this app [none]
  SHUTDOWN_GRACE_SECS    time allowed for in-flight deliveries at shutdown [10]
  SHUTDOWN_DRAIN_SECS    after SIGTERM, serve on with failing health probes so daprd stops sending work [0]
  LOG_FORMAT             json | pretty | auto (json when stdout is not a terminal) [auto]
  RUST_LOG               log filter [info]";

/// Typed configuration of the recurring-task process. `Debug` is safe to log: the token is a
/// `SecretString`, which prints `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the HTTP server listens.
    pub listen: SocketAddr,
    /// Where `/metrics` is served instead of `listen` (`METRICS_PORT`); unset: on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// Dapr app id of the backend.
    pub backend_app_id: String,
    /// How to reach our sidecar.
    pub dapr: dapr::ClientConfig,
    /// Token daprd presents on calls into this app (`None`: not checked).
    pub app_api_token: Option<SecretString>,
    /// Grace period for shutdown.
    pub shutdown_grace: Duration,
    /// Drain before it (`SHUTDOWN_DRAIN_SECS`, see `middleware::server::Shutdown`).
    pub shutdown_drain: Duration,
    /// Log output format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_filter: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = EnvReader::new(&lookup);
        let service = ServiceEnv::read(&mut env, "RECURRING_TASK", 8003);
        let backend_app_id = env.app_id("BACKEND_APP_ID", "backend");
        let dapr = env.dapr_client();
        env.finish()?;
        Ok(Self {
            listen: service.listen,
            metrics_listen: service.metrics_listen,
            backend_app_id,
            dapr,
            app_api_token: service.app_api_token,
            shutdown_grace: service.shutdown_grace,
            shutdown_drain: service.shutdown_drain,
            log_format: service.log_format,
            log_filter: service.log_filter,
        })
    }
}

#[cfg(test)]
mod tests {
    use middleware::env::map_lookup;
    use secrecy::ExposeSecret;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(map_lookup(vars))
    }

    #[test]
    fn defaults_work_locally() {
        let c = load(&[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8003".parse().unwrap());
        assert_eq!(c.backend_app_id, "backend");
        assert_eq!(c.dapr.http_endpoint, "http://127.0.0.1:3500");
        assert!(c.app_api_token.is_none());
        assert_eq!(c.shutdown_grace, Duration::from_secs(10));
        assert_eq!(c.log_filter, "info");
    }

    #[test]
    fn reads_overrides() {
        let c = load(&[
            ("RECURRING_TASK_HOST", "0.0.0.0"),
            ("RECURRING_TASK_PORT", "9003"),
            ("BACKEND_APP_ID", "todo-backend"),
            ("DAPR_HTTP_PORT", "3603"),
            ("APP_API_TOKEN", "s3cret"),
            ("SHUTDOWN_GRACE_SECS", "3"),
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "debug"),
        ])
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:9003".parse().unwrap());
        assert_eq!(c.backend_app_id, "todo-backend");
        assert_eq!(c.dapr.http_endpoint, "http://127.0.0.1:3603");
        assert_eq!(
            c.app_api_token.as_ref().map(ExposeSecret::expose_secret),
            Some("s3cret")
        );
        assert_eq!(c.shutdown_grace, Duration::from_secs(3));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.log_filter, "debug");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn reports_every_bad_variable_at_once() {
        let err = load(&[
            ("RECURRING_TASK_HOST", "nowhere"),
            ("RECURRING_TASK_PORT", "eighty"),
            ("BACKEND_APP_ID", "back/end"),
            ("SHUTDOWN_GRACE_SECS", "0"),
            ("LOG_FORMAT", "xml"),
            ("DAPR_HTTP_PORT", "abc"),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 6, "{err}");
        let text = err.to_string();
        for var in [
            "RECURRING_TASK_HOST",
            "RECURRING_TASK_PORT",
            "BACKEND_APP_ID",
            "SHUTDOWN_GRACE_SECS",
            "LOG_FORMAT",
            "DAPR_HTTP_PORT",
        ] {
            assert!(text.contains(var), "{var} missing from: {text}");
        }
    }
}
