//! The service's configuration, read from the environment in one pass.
//!
//! Every variable has a default that works on a developer machine, and every bad variable —
//! ours and the sidecar's `DAPR_*` — is reported at once rather than one per restart. SMTP
//! credentials may come from the environment for local use; otherwise they are read from the
//! Dapr secret store at start-up (see [`crate::credentials`]), so they never sit in a manifest.

use secrecy::SecretString;
use std::str::FromStr;
use std::time::Duration;

use lettre::Address;
use lettre::message::Mailbox;
use middleware::app_token::APP_API_TOKEN_ENV;
pub use middleware::env::EnvError as ConfigError;
use middleware::env::{EnvReader, ServiceConfig, ServiceEnv, positive_integer};
use middleware::env_help::EnvDoc;

/// What the variables the service reads mean. `ServiceConfig::env_help` lists them for
/// `--help` in the order [`Config`]'s `read` reads them; the rows every service shares are in
/// `middleware::env_help::SHARED`, and a test checks that every variable read has a row and
/// every row is read.
pub const ENV_DOCS: &[EnvDoc] = &[
    ("EMAIL_DELIVERY_HOST", "address to listen on [127.0.0.1]"),
    (
        "EMAIL_DELIVERY_PORT",
        "port for Dapr deliveries, health and metrics [8002]",
    ),
    ("SMTP_HOST", "mail server host name or address [127.0.0.1]"),
    ("SMTP_PORT", "mail server port [25]"),
    (
        "SMTP_TLS",
        "none | starttls | tls (implicit TLS, usually port 465) [none]",
    ),
    (
        "SMTP_FROM",
        "sender mailbox [Todo Reminders <reminders@localhost>]",
    ),
    (
        "SMTP_TIMEOUT_SECS",
        "deadline of one whole SMTP conversation [10]",
    ),
    ("SMTP_HELLO_NAME", "name sent with EHLO [localhost]"),
    (
        "SMTP_USERNAME, SMTP_PASSWORD",
        "credentials for local use; when both are unset they are read\nfrom the secret store (absent secret = no authentication)",
    ),
    ("SECRET_STORE", "Dapr secret store name [secretstore]"),
    (
        "SMTP_CREDENTIALS_SECRET",
        "secret with keys `username` and `password` [smtp-credentials]",
    ),
    (
        "STATE_STORE",
        "Dapr state store for the once-only records [statestore]",
    ),
    (
        "EMAIL_CLAIM_TTL_SECS",
        "lifetime of an in-flight claim; frees it if a replica dies while\nsending; at least 3 x SMTP_TIMEOUT_SECS [120]",
    ),
    (
        "EMAIL_RECORD_TTL_SECS",
        "lifetime of sent/failed records; 0 keeps them forever [2592000]",
    ),
    (
        "APP_API_TOKEN",
        "token daprd must present on delivery routes [none]",
    ),
    (
        "SHUTDOWN_GRACE_SECS",
        "time allowed for in-flight deliveries at shutdown [10]",
    ),
];

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text (a local relay or a test sink).
    #[default]
    None,
    /// Plain connect, then `STARTTLS`, which is required to succeed.
    StartTls,
    /// TLS from the first byte ("implicit TLS", SMTPS).
    Tls,
}

impl FromStr for SmtpTls {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            _ => Err("is not none, starttls or tls"),
        }
    }
}

/// SMTP username and password; `Debug` prints neither (`[REDACTED]`).
#[derive(Clone, Debug)]
pub struct SmtpCredentials {
    /// The login name (not secret, but kept out of logs all the same).
    pub username: SecretString,
    /// The password.
    pub password: SecretString,
}

/// Everything needed to talk to the mail server.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    /// Host name or address of the server.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is protected.
    pub tls: SmtpTls,
    /// The `From` mailbox of every reminder.
    pub from: Mailbox,
    /// Deadline of one whole SMTP conversation (also lettre's per-command timeout).
    pub timeout: Duration,
    /// Name sent with `EHLO`.
    pub hello_name: String,
    /// Credentials from the environment (else: secret store, see [`crate::credentials`]).
    pub credentials: Option<SmtpCredentials>,
}

/// Typed configuration of the email-delivery process.
#[derive(Clone, Debug)]
pub struct Config {
    /// Listen address, metrics port, app token, shutdown and logging, read the same way in
    /// every service.
    pub service: ServiceEnv,
    /// The mail server.
    pub smtp: SmtpConfig,
    /// Dapr secret store name.
    pub secret_store: String,
    /// Secret holding `username` and `password`.
    pub smtp_credentials_secret: String,
    /// Dapr state store for the once-only records.
    pub state_store: String,
    /// Lifetime of a `sending` claim.
    pub claim_ttl: Duration,
    /// Lifetime of `sent`/`failed` records; `None` keeps them forever.
    pub record_ttl: Option<Duration>,
}

impl ServiceConfig for Config {
    const ENV_DOCS: &'static [EnvDoc] = ENV_DOCS;

    fn service(&self) -> &ServiceEnv {
        &self.service
    }

    fn read(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = EnvReader::new(lookup);
        let mut service = ServiceEnv::read(&mut env, "EMAIL_DELIVERY", 8002);
        // Stricter than the shared reading, as this service has always been: port 0 is refused,
        // and the app token is trimmed (blank: no check).
        if service.listen.port() == 0 {
            let value = env.string("EMAIL_DELIVERY_PORT", "");
            env.problem(format!(
                "EMAIL_DELIVERY_PORT: `{value}` is not a port number"
            ));
        }
        service.app_api_token = env.optional(APP_API_TOKEN_ENV).map(SecretString::from);

        let smtp_host = env.string("SMTP_HOST", "127.0.0.1");
        let smtp_port = env.parse_with("SMTP_PORT", 25, nonzero_port);
        let tls = env.parse_with("SMTP_TLS", SmtpTls::None, str::parse);
        let from = env.parse(
            "SMTP_FROM",
            // `Todo Reminders <reminders@localhost>`; `defaults_work_locally` checks it.
            Mailbox::new(
                Some("Todo Reminders".to_owned()),
                Address::new_dangerous("reminders", "localhost"),
            ),
            "a mailbox like `Name <user@example.org>`",
        );
        // Checked against each other below, so a bad one must be told apart from the default.
        let timeout = env.check("SMTP_TIMEOUT_SECS", "10", positive_integer::<u64>);
        let hello_name = env.string("SMTP_HELLO_NAME", "localhost");
        let credentials = match (env.optional("SMTP_USERNAME"), env.optional("SMTP_PASSWORD")) {
            (Some(username), Some(password)) => Some(SmtpCredentials {
                username: username.into(),
                password: password.into(),
            }),
            (None, None) => None,
            _ => {
                env.problem(
                    "SMTP_USERNAME and SMTP_PASSWORD: set both or neither (neither reads the \
                     secret store)",
                );
                None
            }
        };
        let claim_ttl = env.check("EMAIL_CLAIM_TTL_SECS", "120", positive_integer::<u64>);
        let record_ttl = env.parse(
            "EMAIL_RECORD_TTL_SECS",
            2_592_000,
            "a whole number of seconds",
        );
        if let (Some(claim_ttl), Some(timeout)) = (claim_ttl, timeout)
            && claim_ttl < timeout.saturating_mul(3)
        {
            env.problem(format!(
                "EMAIL_CLAIM_TTL_SECS: `{claim_ttl}` must be at least 3 x SMTP_TIMEOUT_SECS \
                 ({timeout}), or a claim could expire while its mail is still being sent"
            ));
        }

        let config = Self {
            service,
            smtp: SmtpConfig {
                host: smtp_host,
                port: smtp_port,
                tls,
                from,
                // A bad value has been recorded, and `finish` below fails: 0 is never used.
                timeout: Duration::from_secs(timeout.unwrap_or_default()),
                hello_name,
                credentials,
            },
            secret_store: env.string("SECRET_STORE", "secretstore"),
            smtp_credentials_secret: env.string("SMTP_CREDENTIALS_SECRET", "smtp-credentials"),
            state_store: env.string("STATE_STORE", "statestore"),
            claim_ttl: Duration::from_secs(claim_ttl.unwrap_or_default()),
            record_ttl: (record_ttl > 0).then(|| Duration::from_secs(record_ttl)),
        };
        env.finish()?;
        Ok(config)
    }
}

/// A mail server port; 0 is not one.
fn nonzero_port(v: &str) -> Result<u16, &'static str> {
    match v.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err("is not a port number"),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn reads_the_variables_every_service_shares() {
        Config::assert_reads_shared_variables(
            "EMAIL_DELIVERY",
            8002,
            &[
                ("SMTP_PORT", "0"),
                ("SMTP_TLS", "ssl"),
                ("SMTP_FROM", "not a mailbox"),
            ],
        );
    }

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(vars)
    }

    #[test]
    fn defaults_work_locally() {
        let c = load(&[]).unwrap();
        assert_eq!(c.smtp.host, "127.0.0.1");
        assert_eq!(c.smtp.port, 25);
        assert_eq!(c.smtp.tls, SmtpTls::None);
        assert_eq!(
            c.smtp.from.to_string(),
            "Todo Reminders <reminders@localhost>"
        );
        assert_eq!(c.smtp.timeout, Duration::from_secs(10));
        assert!(c.smtp.credentials.is_none());
        assert_eq!(c.secret_store, "secretstore");
        assert_eq!(c.smtp_credentials_secret, "smtp-credentials");
        assert_eq!(c.state_store, "statestore");
        assert_eq!(c.claim_ttl, Duration::from_secs(120));
        assert_eq!(c.record_ttl, Some(Duration::from_secs(30 * 24 * 3600)));
    }

    #[test]
    fn reads_overrides_and_hides_secrets() {
        let c = load(&[
            ("SMTP_HOST", "mail.example.org"),
            ("SMTP_PORT", "465"),
            ("SMTP_TLS", "TLS"),
            ("SMTP_FROM", "reminders@example.org"),
            ("SMTP_USERNAME", "robot"),
            ("SMTP_PASSWORD", "hunter2"),
            ("EMAIL_RECORD_TTL_SECS", "0"),
        ])
        .unwrap();
        assert_eq!(c.smtp.tls, SmtpTls::Tls);
        assert_eq!(c.smtp.port, 465);
        assert_eq!(c.smtp.from.email.to_string(), "reminders@example.org");
        assert_eq!(c.record_ttl, None);
        let credentials = c.smtp.credentials.as_ref().unwrap();
        assert_eq!(credentials.password.expose_secret(), "hunter2");
        let debug = format!("{c:?}");
        for secret in ["robot", "hunter2"] {
            assert!(!debug.contains(secret), "{secret} leaked into {debug}");
        }
    }

    #[test]
    fn reports_bad_combinations_with_the_rest() {
        let err = load(&[
            ("SMTP_PORT", "0"),
            ("SMTP_TIMEOUT_SECS", "60"),
            ("SMTP_USERNAME", "robot"),
        ])
        .unwrap_err();
        let text = err.to_string();
        for var in ["SMTP_PORT", "SMTP_PASSWORD", "EMAIL_CLAIM_TTL_SECS"] {
            assert!(text.contains(var), "{var} missing from: {text}");
        }
        assert_eq!(err.problems.len(), 3, "{text}");
        assert!(!text.contains("robot"), "{text}");
    }
}
