//! The notification service's configuration, read from the environment in one pass.
//!
//! Every variable has a default that works on a developer machine, and every bad variable —
//! ours and the sidecar's (`DAPR_HTTP_PORT`, …, checked by [`dapr::ClientConfig`]) — is
//! reported at once rather than one per restart. Tests pass a map instead of touching the
//! process environment.

use secrecy::SecretString;
use std::net::SocketAddr;
use std::time::Duration;

use dapr::FailurePolicy;
use middleware::LogFormat;

use crate::reminders::{DEFAULT_MAX_RETRIES, DEFAULT_RETRY_INTERVAL_SECS};
pub use middleware::env::EnvError as ConfigError;
use middleware::env::{EnvReader, ServiceEnv};

/// Variables the service reads, with their meaning, for `--help`.
pub const ENV_HELP: &str = "\
Environment (defaults in brackets):
  NOTIFICATION_HOST      address to listen on [127.0.0.1]
  NOTIFICATION_PORT      port for Dapr callbacks (/dapr/subscribe, /events/*, /job/*), health
                         and metrics routes [8001]
  METRICS_PORT           serve /metrics on this port (same host) instead of the one above [unset]
  BACKEND_APP_ID         Dapr app id of the backend, asked about a task when its reminder
                         fires [backend]
  STATE_STORE            Dapr state store for the ordering and de-duplication records
                         [statestore]
  REMINDER_RETRY_INTERVAL_SECS  seconds between the Scheduler's retries of a reminder
                         trigger that failed (backend, broker or state store down) [2]
  REMINDER_MAX_RETRIES   retries of a failed trigger before the Scheduler gives it up [1800,
                         one hour at the default interval]; a trigger that no replica can
                         take (all down) is kept until one is back, whatever this says
  DAPR_HTTP_PORT, DAPR_HTTP_ENDPOINT, DAPR_API_TOKEN  the sidecar (see the dapr crate) [3500]
  APP_API_TOKEN          token daprd must present on every callback [none: not checked]
  SHUTDOWN_GRACE_SECS    time allowed for in-flight deliveries and triggers at shutdown [10]
  SHUTDOWN_DRAIN_SECS    after SIGTERM, serve on with failing health probes so daprd stops sending work [0]
  LOG_FORMAT             json | pretty | auto (json when stdout is not a terminal) [auto]
  RUST_LOG               log filter [info]";

/// Typed configuration of the notification process. `Debug` is safe to log: the token is a
/// `SecretString`, which prints `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the HTTP server listens.
    pub listen: SocketAddr,
    /// Where `/metrics` is served instead of `listen` (`METRICS_PORT`); unset: on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// App id of the backend (service invocation target).
    pub backend_app_id: String,
    /// Dapr state store name.
    pub state_store: String,
    /// What the Scheduler does when a reminder trigger fails.
    pub job_failure_policy: FailurePolicy,
    /// How to reach the sidecar.
    pub dapr: dapr::ClientConfig,
    /// Token daprd presents on callbacks; `None` disables the check.
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
        let service = ServiceEnv::read(&mut env, "NOTIFICATION", 8001);
        let backend_app_id = env.app_id("BACKEND_APP_ID", "backend");
        let state_store = env.string("STATE_STORE", "statestore");
        let job_failure_policy = FailurePolicy::Constant {
            interval: env.secs("REMINDER_RETRY_INTERVAL_SECS", DEFAULT_RETRY_INTERVAL_SECS),
            max_retries: Some(env.positive("REMINDER_MAX_RETRIES", DEFAULT_MAX_RETRIES)),
        };
        let dapr = env.dapr_client();
        env.finish()?;
        Ok(Self {
            listen: service.listen,
            metrics_listen: service.metrics_listen,
            backend_app_id,
            state_store,
            job_failure_policy,
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
        assert_eq!(c.listen, "127.0.0.1:8001".parse().unwrap());
        assert_eq!(c.backend_app_id, "backend");
        assert_eq!(c.state_store, "statestore");
        assert_eq!(
            c.job_failure_policy,
            crate::reminders::DEFAULT_JOB_FAILURE_POLICY
        );
        assert_eq!(c.dapr.http_endpoint, "http://127.0.0.1:3500");
        assert!(c.app_api_token.is_none());
        assert_eq!(c.shutdown_grace, Duration::from_secs(10));
        assert_eq!(c.log_format, LogFormat::Auto);
        assert_eq!(c.log_filter, "info");
    }

    #[test]
    fn reads_overrides() {
        let c = load(&[
            ("NOTIFICATION_HOST", "0.0.0.0"),
            ("NOTIFICATION_PORT", "9001"),
            ("BACKEND_APP_ID", "todo-backend"),
            ("STATE_STORE", "pgstate"),
            ("REMINDER_RETRY_INTERVAL_SECS", "5"),
            ("REMINDER_MAX_RETRIES", "3"),
            ("DAPR_HTTP_PORT", "3601"),
            ("APP_API_TOKEN", "s3cret"),
            ("SHUTDOWN_GRACE_SECS", "3"),
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "debug"),
        ])
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:9001".parse().unwrap());
        assert_eq!(c.backend_app_id, "todo-backend");
        assert_eq!(c.state_store, "pgstate");
        assert_eq!(
            c.job_failure_policy,
            FailurePolicy::Constant {
                interval: Duration::from_secs(5),
                max_retries: Some(3),
            }
        );
        assert_eq!(c.dapr.http_endpoint, "http://127.0.0.1:3601");
        assert_eq!(
            c.app_api_token.as_ref().map(ExposeSecret::expose_secret),
            Some("s3cret")
        );
        assert_eq!(c.shutdown_grace, Duration::from_secs(3));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.log_filter, "debug");
    }

    #[test]
    fn reports_every_bad_variable_at_once() {
        let err = load(&[
            ("NOTIFICATION_HOST", "nowhere"),
            ("NOTIFICATION_PORT", "eighty"),
            ("BACKEND_APP_ID", "back/end"),
            ("REMINDER_MAX_RETRIES", "0"),
            ("SHUTDOWN_GRACE_SECS", "0"),
            ("LOG_FORMAT", "xml"),
            ("DAPR_HTTP_PORT", "abc"),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 7, "{err}");
        let text = err.to_string();
        for var in [
            "NOTIFICATION_HOST",
            "NOTIFICATION_PORT",
            "BACKEND_APP_ID",
            "REMINDER_MAX_RETRIES",
            "SHUTDOWN_GRACE_SECS",
            "LOG_FORMAT",
            "DAPR_HTTP_PORT",
        ] {
            assert!(text.contains(var), "{var} missing from: {text}");
        }
    }

    #[test]
    fn help_names_every_variable_read() {
        for var in [
            "NOTIFICATION_HOST",
            "NOTIFICATION_PORT",
            "BACKEND_APP_ID",
            "STATE_STORE",
            "REMINDER_RETRY_INTERVAL_SECS",
            "REMINDER_MAX_RETRIES",
            "DAPR_HTTP_PORT",
            "APP_API_TOKEN",
            "SHUTDOWN_GRACE_SECS",
            "LOG_FORMAT",
            "RUST_LOG",
        ] {
            assert!(ENV_HELP.contains(var), "{var} missing from ENV_HELP");
        }
    }

    #[test]
    fn debug_hides_the_app_token() {
        // Test fixture only.
        let c = load(&[("APP_API_TOKEN", "fixture-notification-token")]).unwrap();
        assert_eq!(
            c.app_api_token.as_ref().map(ExposeSecret::expose_secret),
            Some("fixture-notification-token")
        );
        let shown = format!("{c:?}");
        assert!(!shown.contains("fixture-notification-token"), "{shown}");
        assert!(shown.contains("REDACTED"));
    }
}
