//! The secret values a run handed to its processes, written down for the log scan.
//!
//! Whatever the harness gives a process as a secret — app and Dapr API tokens, environment
//! variables named like secrets, passwords inside URLs, entries of the local secret store — is
//! appended to [`RECORD_FILE`] in the run's log directory (owner-only, mode 0600). After the
//! suites, `cargo xtask test` reads these records and fails if any value turns up in a log file
//! of the run. Recording the values themselves rather than fixture constants keeps the scan
//! right when a suite switches to a generated secret.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The record's file name inside a run's log directory; the scan never treats it as a log.
pub const RECORD_FILE: &str = "secret-values.jsonl";

/// One recorded secret: where it was used, and the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// What the value is, for the scan's report (e.g. `backend env JWT_SECRET`).
    pub name: String,
    /// The secret itself.
    pub value: String,
}

impl std::fmt::Debug for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorded")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// Appends `value` under `name` to the record in `log_dir`; empty values are skipped.
pub fn record(log_dir: &Path, name: &str, value: &str) -> anyhow::Result<()> {
    if value.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(log_dir)
        .with_context(|| format!("creating log directory {}", log_dir.display()))?;
    let path = log_dir.join(RECORD_FILE);
    let mut line = serde_json::to_vec(&Recorded {
        name: name.to_owned(),
        value: value.to_owned(),
    })?;
    line.push(b'\n');
    // One `write` per line on an append-mode file: concurrent recorders never interleave.
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(&line)
        .with_context(|| format!("writing {}", path.display()))
}

/// Records the secrets among a process's environment: variables named like secrets, and the
/// password of any URL-shaped value (e.g. a `DATABASE_URL` with credentials).
pub fn record_env<'a>(
    log_dir: &Path,
    process: &str,
    env: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> anyhow::Result<()> {
    for (name, value) in env {
        if names_a_secret(name) {
            record(log_dir, &format!("{process} env {name}"), value)?;
        } else if let Some(password) = url_password(value) {
            record(
                log_dir,
                &format!("{process} env {name} (password)"),
                password,
            )?;
        }
    }
    Ok(())
}

/// Records every string of the local secret store's entries (nested maps included).
pub fn record_store(log_dir: &Path, secrets: &Map<String, Value>) -> anyhow::Result<()> {
    fn walk(log_dir: &Path, name: &str, value: &Value) -> anyhow::Result<()> {
        match value {
            Value::String(s) => record(log_dir, &format!("secret store {name}"), s),
            Value::Object(map) => map
                .iter()
                .try_for_each(|(k, v)| walk(log_dir, &format!("{name}.{k}"), v)),
            _ => Ok(()),
        }
    }
    secrets.iter().try_for_each(|(k, v)| walk(log_dir, k, v))
}

/// Every record in `log_dir` (none when the run recorded nothing).
pub fn read(log_dir: &Path) -> anyhow::Result<Vec<Recorded>> {
    let path = log_dir.join(RECORD_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{}: line {} is not a record", path.display(), i + 1))
        })
        .collect()
}

/// Whether an environment variable's name says it holds a secret.
pub fn names_a_secret(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    [
        "SECRET",
        "TOKEN",
        "PASSWORD",
        "PASSWD",
        "PRIVATE_KEY",
        "API_KEY",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// The password of `scheme://user:password@host…`, if the value is such a URL.
fn url_password(value: &str) -> Option<&str> {
    let (_, rest) = value.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn records_round_trip_owner_only_and_skip_what_is_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        record(dir.path(), "token", "fixture-value \"quoted\"\nline").unwrap();
        record(dir.path(), "empty", "").unwrap();
        record_env(
            dir.path(),
            "backend",
            [
                ("JWT_SECRET", "fixture-jwt"),
                ("APP_API_TOKEN", "fixture-app"),
                (
                    "DATABASE_URL",
                    "postgres://postgres:fixture%20pw@127.0.0.1:5/db",
                ),
                ("BACKEND_PORT", "8000"),
                ("SMTP_HOST", "127.0.0.1"),
                ("OTHER_URL", "postgres://postgres@127.0.0.1:5/db"),
            ],
        )
        .unwrap();
        let mut store = Map::new();
        store.insert("jwt-secret".into(), "fixture-store".into());
        store.insert(
            "smtp".into(),
            serde_json::json!({"password": "fixture-smtp", "port": 25}),
        );
        record_store(dir.path(), &store).unwrap();

        let got: Vec<(String, String)> = read(dir.path())
            .unwrap()
            .into_iter()
            .map(|r| (r.name, r.value))
            .collect();
        let want = [
            ("token", "fixture-value \"quoted\"\nline"),
            ("backend env JWT_SECRET", "fixture-jwt"),
            ("backend env APP_API_TOKEN", "fixture-app"),
            ("backend env DATABASE_URL (password)", "fixture%20pw"),
            ("secret store jwt-secret", "fixture-store"),
            ("secret store smtp.password", "fixture-smtp"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(got, want);
        let mode = std::fs::metadata(dir.path().join(RECORD_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{:?}", read(dir.path()).unwrap()).contains("fixture"));
    }

    #[test]
    fn nothing_recorded_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_empty());
    }
}
