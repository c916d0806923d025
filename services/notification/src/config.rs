//! The notification service's configuration, read from the environment in one pass.
//!
//! Every variable has a default that works on a developer machine, and every bad variable —
//! ours and the sidecar's (`DAPR_HTTP_PORT`, …, checked by [`dapr::ClientConfig`]) — is
//! reported at once rather than one per restart. Tests pass a map instead of touching the
//! process environment.

use dapr::FailurePolicy;

use crate::reminders::{DEFAULT_MAX_RETRIES, DEFAULT_RETRY_INTERVAL_SECS};
pub use middleware::env::EnvError as ConfigError;
use middleware::env::{EnvReader, ServiceConfig, ServiceEnv};
use middleware::env_help::EnvDoc;

/// What the variables the service reads mean. `ServiceConfig::env_help` lists them for
/// `--help` in the order [`Config`]'s `read` reads them; the rows every service shares are in
/// `middleware::env_help::SHARED`, and a test checks that every variable read has a row and
/// every row is read.
pub const ENV_DOCS: &[EnvDoc] = &[
    ("NOTIFICATION_HOST", "address to listen on [127.0.0.1]"),
    (
        "NOTIFICATION_PORT",
        "port for Dapr callbacks (/dapr/subscribe, /events/*, /job/*), health\nand metrics routes [8001]",
    ),
    (
        "BACKEND_APP_ID",
        "Dapr app id of the backend, asked about a task when its reminder\nfires [backend]",
    ),
    (
        "STATE_STORE",
        "Dapr state store for the ordering and de-duplication records\n[statestore]",
    ),
    (
        "REMINDER_RETRY_INTERVAL_SECS",
        "seconds between the Scheduler's retries of a reminder\ntrigger that failed (backend, broker or state store down) [2]",
    ),
    (
        "REMINDER_MAX_RETRIES",
        "retries of a failed trigger before the Scheduler gives it up [1800,\none hour at the default interval]; a trigger that no replica can\ntake (all down) is kept until one is back, whatever this says",
    ),
    (
        "APP_API_TOKEN",
        "token daprd must present on every callback [none: not checked]",
    ),
    (
        "SHUTDOWN_GRACE_SECS",
        "time allowed for in-flight deliveries and triggers at shutdown [10]",
    ),
];

/// Typed configuration of the notification process. `Debug` is safe to log: the token is a
/// `SecretString`, which prints `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct Config {
    /// Listen address, metrics port, app token, shutdown and logging, read the same way in
    /// every service.
    pub service: ServiceEnv,
    /// App id of the backend (service invocation target).
    pub backend_app_id: String,
    /// Dapr state store name.
    pub state_store: String,
    /// What the Scheduler does when a reminder trigger fails.
    pub job_failure_policy: FailurePolicy,
}

impl ServiceConfig for Config {
    const ENV_DOCS: &'static [EnvDoc] = ENV_DOCS;

    fn service(&self) -> &ServiceEnv {
        &self.service
    }

    fn read(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = EnvReader::new(lookup);
        let service = ServiceEnv::read(&mut env, "NOTIFICATION", 8001);
        let backend_app_id = env.app_id("BACKEND_APP_ID", "backend");
        let state_store = env.string("STATE_STORE", "statestore");
        let job_failure_policy = FailurePolicy::Constant {
            interval: env.secs("REMINDER_RETRY_INTERVAL_SECS", DEFAULT_RETRY_INTERVAL_SECS),
            max_retries: Some(env.positive("REMINDER_MAX_RETRIES", DEFAULT_MAX_RETRIES)),
        };
        env.finish()?;
        Ok(Self {
            service,
            backend_app_id,
            state_store,
            job_failure_policy,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn reads_the_variables_every_service_shares() {
        Config::assert_reads_shared_variables(
            "NOTIFICATION",
            8001,
            &[
                ("BACKEND_APP_ID", "back/end"),
                ("REMINDER_MAX_RETRIES", "0"),
            ],
        );
    }

    #[test]
    fn defaults_work_locally() {
        let c = Config::load(&[]).unwrap();
        assert_eq!(c.backend_app_id, "backend");
        assert_eq!(c.state_store, "statestore");
        assert_eq!(
            c.job_failure_policy,
            crate::reminders::DEFAULT_JOB_FAILURE_POLICY
        );
    }

    #[test]
    fn reads_overrides() {
        let c = Config::load(&[
            ("BACKEND_APP_ID", "todo-backend"),
            ("STATE_STORE", "pgstate"),
            ("REMINDER_RETRY_INTERVAL_SECS", "5"),
            ("REMINDER_MAX_RETRIES", "3"),
        ])
        .unwrap();
        assert_eq!(c.backend_app_id, "todo-backend");
        assert_eq!(c.state_store, "pgstate");
        assert_eq!(
            c.job_failure_policy,
            FailurePolicy::Constant {
                interval: Duration::from_secs(5),
                max_retries: Some(3),
            }
        );
    }
}
