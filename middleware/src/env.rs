//! Reading a service's configuration from environment variables, every problem at once.
//!
//! Each service's `Config::from_lookup` checks a dozen variables and must report every bad one
//! in one message (not one per restart), and all of them read the same six variables for the
//! listen address, the app API token, shutdown and logging. [`EnvReader`] parses each variable
//! once: a bad value becomes a problem line (``NAME: `value` is not …``) and the default is
//! returned so reading can go on; [`EnvReader::finish`] then fails with all the lines.
//! [`ServiceEnv`] is the six shared variables. Loaders take a lookup function, so tests pass a
//! map instead of touching the process environment.

use secrecy::SecretString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use crate::LogFormat;
use crate::app_token::APP_API_TOKEN_ENV;
use crate::env_help::EnvDoc;

/// The variable that moves `/metrics` to a port of its own (see [`ServiceEnv::metrics_listen`]).
pub const METRICS_PORT_ENV: &str = "METRICS_PORT";

/// Every problem found in the environment, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n  {}", .problems.join("\n  "))]
pub struct EnvError {
    /// One line per bad variable (or bad combination), in the order they were read.
    pub problems: Vec<String>,
}

/// Reads variables through a lookup function and collects one problem line per bad one.
///
/// Values are trimmed, and a blank value counts as unset (except through [`EnvReader::raw`]).
pub struct EnvReader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

impl fmt::Debug for EnvReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvReader")
            .field("problems", &self.problems)
            .finish_non_exhaustive()
    }
}

impl<'a> EnvReader<'a> {
    /// Reads through `lookup`: `|k| std::env::var(k).ok()` in a service, a map in tests.
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            lookup,
            problems: Vec::new(),
        }
    }

    /// The value of `key` exactly as set, not trimmed (for tokens compared byte for byte).
    pub fn raw(&self, key: &str) -> Option<String> {
        (self.lookup)(key)
    }

    /// The trimmed value of `key`; unset and blank are the same.
    pub fn optional(&self, key: &str) -> Option<String> {
        self.raw(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The trimmed value of `key`, or `default` when it is unset or blank.
    pub fn string(&self, key: &str, default: &str) -> String {
        self.optional(key).unwrap_or_else(|| default.to_owned())
    }

    /// Checks the value of `key` (or `default`, when unset) with `parse`; on failure records
    /// ``KEY: `value` {error}`` and answers `None`.
    ///
    /// The general form, for a value that must be known to be valid (say, before checking it
    /// against another); the typed readers below answer their default instead.
    pub fn check<T, E: fmt::Display>(
        &mut self,
        key: &str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let value = self.string(key, default);
        match parse(&value) {
            Ok(parsed) => Some(parsed),
            Err(why) => {
                self.problem(format!("{key}: `{value}` {why}"));
                None
            }
        }
    }

    /// Parses `key` with `parse`; `default` when it is unset, and also (after recording
    /// ``KEY: `value` {error}``) when it is bad.
    pub fn parse_with<T, E: fmt::Display>(
        &mut self,
        key: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> T {
        let Some(value) = self.optional(key) else {
            return default;
        };
        match parse(&value) {
            Ok(parsed) => parsed,
            Err(why) => {
                self.problem(format!("{key}: `{value}` {why}"));
                default
            }
        }
    }

    /// Parses `key` with [`FromStr`]; a bad value is recorded as ``KEY: `value` is not {what}``
    /// (say, `what` = `"a port number"`) and `default` returned.
    pub fn parse<T: FromStr>(&mut self, key: &str, default: T, what: &str) -> T {
        self.parse_with(key, default, |v| {
            v.parse().map_err(|_| format!("is not {what}"))
        })
    }

    /// An integer greater than zero (see [`positive_integer`]).
    pub fn positive<T>(&mut self, key: &str, default: T) -> T
    where
        T: FromStr + PartialOrd + From<u8>,
    {
        self.parse_with(key, default, positive_integer)
    }

    /// `true`/`1` or `false`/`0`.
    pub fn flag(&mut self, key: &str, default: bool) -> bool {
        self.parse_with(key, default, |v| match v {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err("is not true/false"),
        })
    }

    /// Whole seconds, at least 1 and at most `u32::MAX` (some 136 years, so that adding a
    /// margin to the duration can never overflow).
    pub fn secs(&mut self, key: &str, default: u32) -> Duration {
        Duration::from_secs(self.positive::<u32>(key, default).into())
    }

    /// A Dapr app id: letters, digits, `-`, `_` and `.` (it becomes one path segment of a
    /// service invocation URL).
    pub fn app_id(&mut self, key: &str, default: &str) -> String {
        self.parse_with(key, default.to_owned(), |v| {
            if v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                Ok(v.to_owned())
            } else {
                Err("is not a Dapr app id (letters, digits, `-`, `_`, `.`)")
            }
        })
    }

    /// Records a problem that is not one variable's value (say, two that exclude each other).
    pub fn problem(&mut self, problem: impl Into<String>) {
        self.problems.push(problem.into());
    }

    /// The sidecar's settings (`DAPR_HTTP_PORT`, `DAPR_HTTP_ENDPOINT`, `DAPR_API_TOKEN`, read
    /// by the `dapr` crate); their problems join ours, and the default stands in meanwhile.
    pub fn dapr_client(&mut self) -> dapr::ClientConfig {
        dapr::ClientConfig::from_lookup(self.lookup).unwrap_or_else(|e| {
            self.extend(&e.problems);
            dapr::ClientConfig::default()
        })
    }

    /// Records problems found elsewhere, such as `dapr::ClientConfig`'s.
    pub fn extend<I>(&mut self, problems: I)
    where
        I: IntoIterator,
        I::Item: fmt::Display,
    {
        self.problems
            .extend(problems.into_iter().map(|p| p.to_string()));
    }

    /// `Ok` when nothing was wrong, else every problem recorded.
    pub fn finish(self) -> Result<(), EnvError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(EnvError {
                problems: self.problems,
            })
        }
    }
}

/// Parses an integer greater than zero; the error reads "is not a positive integer".
pub fn positive_integer<T>(value: &str) -> Result<T, &'static str>
where
    T: FromStr + PartialOrd + From<u8>,
{
    match value.parse::<T>() {
        Ok(n) if n > T::from(0) => Ok(n),
        _ => Err("is not a positive integer"),
    }
}

/// A lookup over fixed pairs, for tests: `Config::from_lookup(map_lookup(&[("PORT", "80")]))`.
/// A later pair wins over an earlier one with the same name, as in a map.
pub fn map_lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |key| {
        vars.iter()
            .rev()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| (*value).to_owned())
    }
}

/// What the shared start-up ([`crate::server::run_main`]) and `--help` need of a service's
/// configuration. Each service's `Config` implements it, so reading the process environment,
/// generating the `--help` list ([`crate::env_help`]) and checking that list are written once.
pub trait ServiceConfig: Sized {
    /// The service's own rows of its `--help` environment list.
    const ENV_DOCS: &'static [EnvDoc];

    /// Reads every variable through `lookup` (tests pass [`map_lookup`]), reporting every bad
    /// one at once.
    fn read(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, EnvError>;

    /// The variables every service reads the same way.
    fn service(&self) -> &ServiceEnv;

    /// Reads `vars` as if they were the whole environment (tests).
    fn load(vars: &[(&str, &str)]) -> Result<Self, EnvError> {
        Self::read(&map_lookup(vars))
    }

    /// Reads the process environment.
    fn from_env() -> Result<Self, EnvError> {
        Self::read(&|key| std::env::var(key).ok())
    }

    /// The environment section of `--help`: what [`ServiceConfig::read`] reads, in that order,
    /// described.
    fn env_help() -> String {
        crate::env_help::render(Self::ENV_DOCS, |lookup| {
            let _ = Self::read(lookup);
        })
    }

    /// For a service's tests: panics unless every variable [`ServiceConfig::read`] reads has a
    /// row and every row is read ([`crate::env_help::undocumented`]).
    fn assert_help_complete() {
        crate::env_help::assert_documented(Self::ENV_DOCS, |lookup| {
            let _ = Self::read(lookup);
        });
    }

    /// For a service's tests: panics unless the service reads the variables every service
    /// shares as [`ServiceEnv`] and the Dapr client do, under its `prefix` and `default_port`
    /// (see [`crate::env_checks`]). `own_bad` are bad values of the service's own variables,
    /// reported together with the shared ones.
    fn assert_reads_shared_variables(prefix: &str, default_port: u16, own_bad: &[(&str, &str)])
    where
        Self: fmt::Debug,
    {
        crate::env_checks::assert_reads_shared_variables::<Self>(prefix, default_port, own_bad);
    }
}

/// The variables every service reads the same way: where to listen, the app API token,
/// the shutdown grace period and logging. `Debug` prints the token as `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct ServiceEnv {
    /// `<PREFIX>_HOST` (an IP address, default `127.0.0.1`) and `<PREFIX>_PORT` (0 lets the
    /// system pick).
    pub listen: SocketAddr,
    /// `METRICS_PORT`: where `/metrics` is served instead of on `listen` (same host), so a
    /// Service that carries clients to `listen` never exposes it. Unset: on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// `APP_API_TOKEN` as set, not trimmed, as [`crate::AppTokenLayer`] reads it; empty or unset
    /// is `None` (no check).
    pub app_api_token: Option<SecretString>,
    /// `SHUTDOWN_GRACE_SECS` (see [`EnvReader::secs`]), default 10 seconds.
    pub shutdown_grace: Duration,
    /// `SHUTDOWN_DRAIN_SECS`, default 0: see [`crate::server::Shutdown::drain`].
    pub shutdown_drain: Duration,
    /// `LOG_FORMAT`: `json`, `pretty` or `auto` (the default).
    pub log_format: LogFormat,
    /// `RUST_LOG`, default `info`.
    pub log_filter: String,
    /// How to reach the sidecar: `DAPR_HTTP_PORT` and friends ([`EnvReader::dapr_client`]).
    pub dapr: dapr::ClientConfig,
}

impl ServiceEnv {
    /// How the server stops: [`crate::server::Shutdown`] from `SHUTDOWN_DRAIN_SECS` and
    /// `SHUTDOWN_GRACE_SECS`.
    pub fn shutdown(&self) -> crate::server::Shutdown {
        crate::server::Shutdown {
            drain: self.shutdown_drain,
            grace: self.shutdown_grace,
        }
    }

    /// Reads `<prefix>_HOST`, `<prefix>_PORT` (default `default_port`), `METRICS_PORT`,
    /// `APP_API_TOKEN`, `SHUTDOWN_GRACE_SECS`, `SHUTDOWN_DRAIN_SECS`, `LOG_FORMAT`, `RUST_LOG` and
    /// the Dapr client's variables, recording problems in `env`.
    pub fn read(env: &mut EnvReader<'_>, prefix: &str, default_port: u16) -> Self {
        let host = env.parse(
            &format!("{prefix}_HOST"),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "an IP address",
        );
        let port_var = format!("{prefix}_PORT");
        let port = env.parse(&port_var, default_port, "a port number");
        let metrics_port = env.optional(METRICS_PORT_ENV).and_then(|_| {
            env.check(METRICS_PORT_ENV, "", |v| {
                v.parse::<u16>().map_err(|_| "is not a port number")
            })
        });
        // Port 0 asks the system for a free one, so two zeros are two different ports.
        if metrics_port.is_some_and(|m| m != 0 && m == port) {
            env.problem(format!(
                "{METRICS_PORT_ENV}: `{port}` is also {port_var}; the metrics port must be its own"
            ));
        }
        Self {
            listen: SocketAddr::new(host, port),
            metrics_listen: metrics_port.map(|m| SocketAddr::new(host, m)),
            app_api_token: env
                .raw(APP_API_TOKEN_ENV)
                .filter(|t| !t.is_empty())
                .map(SecretString::from),
            shutdown_grace: env.secs("SHUTDOWN_GRACE_SECS", 10),
            shutdown_drain: Duration::from_secs(env.parse(
                "SHUTDOWN_DRAIN_SECS",
                0,
                "a whole number of seconds",
            )),
            log_format: env.parse("LOG_FORMAT", LogFormat::Auto, "json, pretty or auto"),
            log_filter: env.string("RUST_LOG", "info"),
            dapr: env.dapr_client(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `read` over `vars` and answers what it read and what `finish` said.
    fn with<T>(
        vars: &[(&str, &str)],
        read: impl FnOnce(&mut EnvReader<'_>) -> T,
    ) -> (T, Result<(), EnvError>) {
        let lookup = map_lookup(vars);
        let mut env = EnvReader::new(&lookup);
        let value = read(&mut env);
        (value, env.finish())
    }

    #[test]
    fn unset_and_blank_values_take_the_default() {
        let ((port, name, missing), result) = with(&[("PORT", "  "), ("NAME", " x ")], |env| {
            (
                env.parse("PORT", 8000_u16, "a port number"),
                env.string("NAME", "d"),
                env.optional("MISSING"),
            )
        });
        assert_eq!(port, 8000);
        assert_eq!(name, "x");
        assert_eq!(missing, None);
        assert!(result.is_ok());
    }

    #[test]
    fn raw_keeps_the_value_as_set() {
        let ((raw, trimmed), _) = with(&[("T", " t ")], |env| (env.raw("T"), env.optional("T")));
        assert_eq!(raw.as_deref(), Some(" t "));
        assert_eq!(trimmed.as_deref(), Some("t"));
    }

    #[test]
    fn every_bad_value_is_reported_once_and_reading_goes_on() {
        let ((port, n, flag, grace, id), result) = with(
            &[
                ("PORT", "eighty"),
                ("N", "0"),
                ("FLAG", "yes"),
                ("GRACE", "-1"),
                ("ID", "a/b"),
                ("OK", "7"),
            ],
            |env| {
                let values = (
                    env.parse("PORT", 8000_u16, "a port number"),
                    env.positive::<u32>("N", 10),
                    env.flag("FLAG", true),
                    env.secs("GRACE", 10),
                    env.app_id("ID", "backend"),
                );
                assert_eq!(env.positive::<u64>("OK", 1), 7);
                env.problem("A and B: set one, not both");
                values
            },
        );
        assert_eq!(
            (port, n, flag, grace, id.as_str()),
            (8000, 10, true, Duration::from_secs(10), "backend")
        );
        let err = result.unwrap_err();
        assert_eq!(
            err.problems,
            [
                "PORT: `eighty` is not a port number",
                "N: `0` is not a positive integer",
                "FLAG: `yes` is not true/false",
                "GRACE: `-1` is not a positive integer",
                "ID: `a/b` is not a Dapr app id (letters, digits, `-`, `_`, `.`)",
                "A and B: set one, not both",
            ]
        );
        assert!(
            err.to_string()
                .starts_with("invalid configuration:\n  PORT: `eighty`"),
            "{err}"
        );
    }

    #[test]
    fn typed_readers_accept_what_they_document() {
        let ((on, off, one, zero, big), result) = with(
            &[
                ("ON", "true"),
                ("OFF", "false"),
                ("ONE", "1"),
                ("ZERO", "0"),
                ("BIG", "4294967296"),
            ],
            |env| {
                (
                    env.flag("ON", false),
                    env.flag("OFF", true),
                    env.flag("ONE", false),
                    env.flag("ZERO", true),
                    env.secs("BIG", 10),
                )
            },
        );
        assert!(on && !off && one && !zero);
        assert_eq!(big, Duration::from_secs(10));
        assert_eq!(
            result.unwrap_err().problems,
            ["BIG: `4294967296` is not a positive integer"]
        );
    }

    #[test]
    fn check_answers_none_for_a_bad_default_or_value() {
        let ((good, bad), result) = with(&[("B", "x")], |env| {
            (
                env.check("A", "5", positive_integer::<u64>),
                env.check("B", "5", positive_integer::<u64>),
            )
        });
        assert_eq!((good, bad), (Some(5), None));
        assert_eq!(
            result.unwrap_err().problems,
            ["B: `x` is not a positive integer"]
        );
    }

    #[test]
    fn map_lookup_answers_the_last_pair_of_a_name() {
        let lookup = map_lookup(&[("A", "1"), ("B", "2"), ("A", "3")]);
        assert_eq!(lookup("A").as_deref(), Some("3"));
        assert_eq!(lookup("B").as_deref(), Some("2"));
        assert_eq!(lookup("C"), None);
    }

    #[test]
    fn extend_joins_problems_from_elsewhere() {
        let ((), result) = with(&[], |env| env.extend(["X: bad", "Y: worse"]));
        assert_eq!(result.unwrap_err().problems, ["X: bad", "Y: worse"]);
    }

    #[test]
    fn service_env_defaults() {
        let (service, result) = with(&[], |env| ServiceEnv::read(env, "NOTIFICATION", 8001));
        assert!(result.is_ok());
        assert_eq!(
            service.shutdown(),
            crate::server::Shutdown {
                drain: Duration::ZERO,
                grace: Duration::from_secs(10)
            }
        );
        let ServiceEnv {
            listen,
            metrics_listen,
            app_api_token,
            shutdown_grace,
            shutdown_drain,
            log_format,
            log_filter,
            dapr,
        } = service;
        assert_eq!(dapr.http_endpoint, "http://127.0.0.1:3500");
        assert_eq!(listen, "127.0.0.1:8001".parse().unwrap());
        assert_eq!(metrics_listen, None);
        assert!(app_api_token.is_none());
        assert_eq!(shutdown_grace, Duration::from_secs(10));
        assert_eq!(shutdown_drain, Duration::ZERO);
        assert_eq!(log_format, LogFormat::Auto);
        assert_eq!(log_filter, "info");
    }

    #[test]
    fn service_env_reads_overrides_and_hides_the_token() {
        let (service, result) = with(
            &[
                ("SVC_HOST", "0.0.0.0"),
                ("SVC_PORT", " 9001 "),
                ("APP_API_TOKEN", " s3cret "),
                ("SHUTDOWN_GRACE_SECS", "3"),
                ("SHUTDOWN_DRAIN_SECS", "5"),
                ("LOG_FORMAT", "json"),
                ("RUST_LOG", "debug"),
            ],
            |env| ServiceEnv::read(env, "SVC", 8001),
        );
        assert!(result.is_ok());
        assert_eq!(service.shutdown_drain, Duration::from_secs(5));
        assert_eq!(service.listen, "0.0.0.0:9001".parse().unwrap());
        // As set: daprd sends the token exactly as configured.
        assert_eq!(
            service
                .app_api_token
                .as_ref()
                .map(secrecy::ExposeSecret::expose_secret),
            Some(" s3cret ")
        );
        assert_eq!(service.shutdown_grace, Duration::from_secs(3));
        assert_eq!(service.log_format, LogFormat::Json);
        assert_eq!(service.log_filter, "debug");
        assert!(!format!("{service:?}").contains("s3cret"));
    }

    #[test]
    fn service_env_metrics_port_is_its_own_on_the_same_host() {
        let (service, result) = with(
            &[
                ("SVC_HOST", "0.0.0.0"),
                ("SVC_PORT", "8001"),
                ("METRICS_PORT", " 9464 "),
            ],
            |env| ServiceEnv::read(env, "SVC", 8001),
        );
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            service.metrics_listen,
            Some("0.0.0.0:9464".parse().unwrap())
        );

        let (_, result) = with(&[("SVC_PORT", "8001"), ("METRICS_PORT", "8001")], |env| {
            ServiceEnv::read(env, "SVC", 8001)
        });
        assert_eq!(
            result.unwrap_err().problems,
            ["METRICS_PORT: `8001` is also SVC_PORT; the metrics port must be its own"]
        );
        let (_, result) = with(&[("METRICS_PORT", "metrics")], |env| {
            ServiceEnv::read(env, "SVC", 8001)
        });
        assert_eq!(
            result.unwrap_err().problems,
            ["METRICS_PORT: `metrics` is not a port number"]
        );
        let (service, result) = with(&[("SVC_PORT", "0"), ("METRICS_PORT", "0")], |env| {
            ServiceEnv::read(env, "SVC", 8001)
        });
        assert!(result.is_ok(), "two system-picked ports are two ports");
        assert_eq!(service.metrics_listen.map(|a| a.port()), Some(0));
    }

    #[test]
    fn service_env_port_zero_is_allowed_and_an_empty_token_is_none() {
        let (service, result) = with(&[("SVC_PORT", "0"), ("APP_API_TOKEN", "")], |env| {
            ServiceEnv::read(env, "SVC", 8001)
        });
        assert!(result.is_ok());
        assert_eq!(service.listen.port(), 0);
        assert!(service.app_api_token.is_none());
    }

    #[test]
    fn service_env_reports_every_bad_variable() {
        let (_, result) = with(
            &[
                ("SVC_HOST", "nowhere"),
                ("SVC_PORT", "70000"),
                ("SHUTDOWN_GRACE_SECS", "0"),
                ("LOG_FORMAT", "xml"),
            ],
            |env| ServiceEnv::read(env, "SVC", 8001),
        );
        assert_eq!(
            result.unwrap_err().problems,
            [
                "SVC_HOST: `nowhere` is not an IP address",
                "SVC_PORT: `70000` is not a port number",
                "SHUTDOWN_GRACE_SECS: `0` is not a positive integer",
                "LOG_FORMAT: `xml` is not json, pretty or auto",
            ]
        );
    }
}
