//! The `import-legacy` subcommand: its options (each also from the environment), the two
//! connections, our migrations, the run, and the report on stdout.
//!
//! The report goes to stdout as plain lines (and, with `--report-json`, to a file); the few
//! errors that end a run go to stderr. No log output: the report is the output.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Instant;

use chrono::{TimeDelta, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::{ImportError, ImportOptions, Report};

/// Import an installation of the original (Python) system into this one.
///
/// Carries its users' tasks, categories, tags, tag links, due dates, recurrence rules and
/// pending reminders, and keeps a map of the original ids (the MCP tools accept them). Safe to
/// run again: rows that did not change are not written, changed ones are updated, deleted ones
/// deleted. Prints one line per value that could not be carried, then a summary; exits non-zero
/// only when the run itself failed (connection, schema, database). See docs/migration.md.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// PostgreSQL URL of the original system's database, read in one read-only transaction.
    /// Prefer the environment variable: a command line is visible to every user of the host.
    /// Tables are looked up on the URL's search path (`?options=-c%20search_path%3D<schema>`).
    #[arg(
        long,
        env = "LEGACY_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub source: SecretUrl,
    /// PostgreSQL URL of our database; our migrations are applied to it first.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: SecretUrl,
    /// Rows per read and per write transaction.
    #[arg(
        long,
        env = "IMPORT_BATCH_SIZE",
        default_value_t = 500,
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    pub batch_size: u32,
    /// Minutes before its due time a pending task is reminded (the original's poller reminded
    /// within the hour before); 0 carries no reminders.
    #[arg(
        long,
        env = "IMPORT_REMINDER_LEAD_MINUTES",
        default_value_t = 60,
        value_parser = clap::value_parser!(u32).range(0..=525_600)
    )]
    pub reminder_lead_minutes: u32,
    /// Also write the report as JSON to this file.
    #[arg(long, env = "IMPORT_REPORT_JSON", value_name = "FILE")]
    pub report_json: Option<PathBuf>,
}

impl ImportArgs {
    /// The run's options, with "now" read from the clock.
    pub fn options(&self) -> ImportOptions {
        ImportOptions {
            batch_size: self.batch_size,
            reminder_lead: (self.reminder_lead_minutes > 0)
                .then(|| TimeDelta::minutes(i64::from(self.reminder_lead_minutes))),
            now: Utc::now(),
        }
    }
}

/// A database URL that may carry a password: its `Debug` shows it with the password masked,
/// and it has no `Display`, so it cannot be logged or printed whole by accident.
#[derive(Clone)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The URL itself, for the driver.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password (user-info or `password=` parameter) replaced by `***`.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

impl FromStr for SecretUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SecretUrl").field(&self.redacted()).finish()
    }
}

/// Masks the password of a `postgres://user:password@host/db?password=…` URL. Errs on the side
/// of hiding: everything between the first `:` after the scheme and the last `@` goes, so a
/// password holding an unescaped `@` or `/` is hidden whole.
fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme) = out.find("://") {
        let start = scheme + 3;
        if let (Some(at), Some(colon)) = (out.rfind('@'), out[start..].find(':')) {
            let colon = start + colon;
            if colon < at {
                out.replace_range(colon + 1..at, "***");
            }
        }
    }
    let Some(query) = out.find('?') else {
        return out;
    };
    let params: Vec<String> = out[query + 1..]
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                format!("{key}=***")
            }
            _ => param.to_owned(),
        })
        .collect();
    format!("{}?{}", &out[..query], params.join("&"))
}

/// Runs the subcommand: the report on stdout and exit code 0, or the failure on stderr and 1.
pub async fn main(args: ImportArgs) -> ExitCode {
    let started = Instant::now();
    match run(&args).await {
        Ok(report) => {
            let rows =
                report.users.read + report.categories.read + report.tags.read + report.tasks.read;
            let secs = started.elapsed().as_secs_f64();
            // Lossless enough: a rate for people, not for arithmetic.
            #[allow(clippy::cast_precision_loss)]
            let rate = rows as f64 / secs.max(0.001);
            let text = format!("{report}\n  time        {secs:.1} s ({rate:.0} rows/s)\n");
            match std::io::stdout().lock().write_all(text.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
        Err(e) => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "backend import-legacy: {:#}",
                anyhow::Error::new(e)
            );
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &ImportArgs) -> Result<Report, ImportError> {
    let connect = |which| move |source| ImportError::Connect { which, source };
    let options = PgConnectOptions::from_str(args.source.expose())
        .map_err(connect("the original database"))?
        .application_name("todo-dapr import-legacy");
    let mut source = options
        .connect()
        .await
        .map_err(connect("the original database"))?;
    let target = crate::db::connect(args.database_url.expose(), 4)
        .await
        .map_err(connect("our database"))?;
    crate::db::MIGRATOR
        .run(&target)
        .await
        .map_err(ImportError::Migrate)?;
    let report = super::import(&mut source, &target, &args.options()).await?;
    if let Some(path) = &args.report_json {
        let json = serde_json::to_vec_pretty(&report).map_err(std::io::Error::other);
        json.and_then(|json| std::fs::write(path, json))
            .map_err(|source| ImportError::Report {
                path: path.clone(),
                source,
            })?;
    }
    // Both are done with; a failure to say goodbye changes nothing that was written.
    let _ = source.close().await;
    target.close().await;
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ImportArgs,
    }

    #[test]
    fn passwords_never_show() {
        for (url, shown) in [
            (
                "postgres://app:s3cr%40t@db.example:5432/todo?sslmode=require",
                "postgres://app:***@db.example:5432/todo?sslmode=require",
            ),
            (
                "postgres://app:p@ss/w@db/todo",
                "postgres://app:***@db/todo",
            ),
            (
                "postgres://db/todo?user=app&password=hunter2&sslmode=verify-full",
                "postgres://db/todo?user=app&password=***&sslmode=verify-full",
            ),
            ("postgres://app@db:5432/todo", "postgres://app@db:5432/todo"),
        ] {
            let secret: SecretUrl = url.parse().unwrap();
            assert_eq!(secret.redacted(), shown);
            let debug = format!("{secret:?}");
            assert!(
                !debug.contains("s3cr") && !debug.contains("hunter2") && !debug.contains("ss/w")
            );
            assert_eq!(secret.expose(), url);
        }
    }

    #[test]
    fn every_option_has_a_variable_and_help_hides_their_values() {
        let cli = Cli::try_parse_from([
            "import-legacy",
            "--source",
            "postgres://old:pw@h/db",
            "--database-url",
            "postgres://new:pw@h/db",
        ])
        .unwrap();
        assert_eq!(cli.args.batch_size, 500);
        assert_eq!(
            cli.args.options().reminder_lead,
            Some(TimeDelta::minutes(60))
        );
        assert!(!format!("{cli:?}").contains(":pw@"));

        let mut command = <Cli as clap::CommandFactory>::command();
        let help = command.render_long_help().to_string();
        for var in [
            "LEGACY_DATABASE_URL",
            "DATABASE_URL",
            "IMPORT_BATCH_SIZE",
            "IMPORT_REMINDER_LEAD_MINUTES",
            "IMPORT_REPORT_JSON",
        ] {
            assert!(help.contains(var), "{var} missing from --help:\n{help}");
        }
        let no_lead = Cli::try_parse_from([
            "import-legacy",
            "--source=s",
            "--database-url=t",
            "--reminder-lead-minutes=0",
        ])
        .unwrap();
        assert_eq!(no_lead.args.options().reminder_lead, None);
        assert!(
            Cli::try_parse_from([
                "import-legacy",
                "--source=s",
                "--database-url=t",
                "--batch-size=0"
            ])
            .is_err()
        );
    }
}
