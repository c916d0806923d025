//! The secret scan of `cargo xtask test`: no secret a run handed to its processes appears in
//! any of the run's log files.
//!
//! The harness records each secret value it gives a process (app and Dapr API tokens, secret
//! environment variables, URL passwords, secret-store entries) in the run's log directory
//! (`harness::secrets`). The scan reads every record of the runs this invocation made and
//! searches every file of those runs for each value — as written, JSON-escaped (our services log
//! JSON) and percent-encoded or decoded (URLs) — and for two shapes that are credentials
//! whatever their value: a signed JWT (a bearer token) and a PEM private key. A finding names
//! the file, the line and what the secret is; the secret itself is never printed.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use harness::secrets::{RECORD_FILE, Recorded};

use crate::step;

/// Shorter values are not searched: they would match ordinary log text. They are reported.
const MIN_SCANNED_LEN: usize = 8;

/// One secret found in a log.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Finding {
    /// The log file.
    pub(crate) file: PathBuf,
    /// 1-based line number.
    pub(crate) line: usize,
    /// What was found (the record's name or the shape), never the value.
    pub(crate) what: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.what)
    }
}

/// What one scan looked at and found.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) runs: usize,
    pub(crate) files: usize,
    pub(crate) bytes: u64,
    /// Distinct values searched for.
    pub(crate) secrets: usize,
    /// Names of recorded values too short to search.
    pub(crate) too_short: BTreeSet<String>,
    pub(crate) findings: Vec<Finding>,
}

/// The step: scans the runs started since `since` under the harness's log root.
pub(crate) fn check(since: SystemTime) -> anyhow::Result<()> {
    let root = harness::stack::log_root();
    let runs = runs_since(&root, since)?;
    let report = scan(&runs)?;
    step::info(&format!(
        "{} runs, {} files, {:.1} MB, {} secret values (+ signed JWTs, PEM private keys)",
        report.runs,
        report.files,
        report.bytes as f64 / 1e6,
        report.secrets
    ));
    if !report.too_short.is_empty() {
        let names: Vec<&str> = report.too_short.iter().map(String::as_str).collect();
        step::info(&format!(
            "not searched (shorter than {MIN_SCANNED_LEN} bytes): {}",
            names.join(", ")
        ));
    }
    if report.findings.is_empty() {
        return Ok(());
    }
    for finding in &report.findings {
        step::error(&finding.to_string());
    }
    anyhow::bail!(
        "{} secret value(s) in the logs under {}",
        report.findings.len(),
        root.display()
    )
}

/// The run directories under `root` (`<unix seconds>-<pid>`) started at or after `since`.
pub(crate) fn runs_since(root: &Path, since: SystemTime) -> anyhow::Result<Vec<PathBuf>> {
    let since = since
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", root.display())),
    };
    let mut runs = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let started = name
            .to_str()
            .and_then(|n| n.split_once('-'))
            .and_then(|(secs, _)| secs.parse::<u64>().ok());
        if started.is_some_and(|s| s >= since) && entry.file_type()?.is_dir() {
            runs.push(entry.path());
        }
    }
    runs.sort();
    Ok(runs)
}

/// Scans every file of `runs` for every value recorded in any of them.
pub(crate) fn scan(runs: &[PathBuf]) -> anyhow::Result<Report> {
    let mut report = Report {
        runs: runs.len(),
        ..Report::default()
    };
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    let mut values = BTreeSet::new();
    for run in runs {
        for Recorded { name, value } in harness::secrets::read(run)? {
            if value.len() < MIN_SCANNED_LEN {
                report.too_short.insert(name);
                continue;
            }
            if !values.insert(value.clone()) {
                continue;
            }
            for form in forms(&value) {
                needles.push((name.clone(), form));
            }
        }
    }
    report.secrets = values.len();
    let mut files = Vec::new();
    for run in runs {
        collect_files(run, &mut files)?;
    }
    files.sort();
    for file in files {
        let text = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        report.files += 1;
        report.bytes += text.len() as u64;
        let mut found = BTreeSet::new();
        for (name, needle) in &needles {
            for offset in memchr::memmem::find_iter(&text, needle) {
                found.insert((line_of(&text, offset), name.clone()));
            }
        }
        for offset in signed_jwts(&text) {
            found.insert((
                line_of(&text, offset),
                "a signed JWT (bearer token)".to_owned(),
            ));
        }
        for offset in memchr::memmem::find_iter(&text, b"PRIVATE KEY-----") {
            found.insert((line_of(&text, offset), "a PEM private key".to_owned()));
        }
        report
            .findings
            .extend(found.into_iter().map(|(line, what)| Finding {
                file: file.clone(),
                line,
                what,
            }));
    }
    Ok(report)
}

/// Every regular file under `dir` but the secret record itself.
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_files(&entry.path(), out)?;
        } else if kind.is_file() && entry.file_name() != RECORD_FILE {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// The forms a value takes in a log: as is, inside a JSON string, percent-encoded, and
/// percent-decoded (a password recorded from a URL).
fn forms(value: &str) -> Vec<Vec<u8>> {
    let mut forms = vec![value.as_bytes().to_vec()];
    let json = serde_json::Value::String(value.to_owned()).to_string();
    let json = &json[1..json.len() - 1];
    let candidates = [
        Some(json.to_owned()),
        Some(percent_encode(value)),
        percent_decode(value),
    ];
    for form in candidates.into_iter().flatten() {
        let form = form.into_bytes();
        if form.len() >= MIN_SCANNED_LEN && !forms.contains(&form) {
            forms.push(form);
        }
    }
    forms
}

fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn line_of(text: &[u8], offset: usize) -> usize {
    memchr::memchr_iter(b'\n', &text[..offset]).count() + 1
}

/// Offsets of signed JWTs: `eyJ…` `.` `eyJ…` `.` signature, in base64url. A header and payload
/// that are JSON objects always start `eyJ` (`{"`); an unsigned token carries no credential.
fn signed_jwts(text: &[u8]) -> Vec<usize> {
    let b64 = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    let run = |from: usize| text[from..].iter().take_while(|b| b64(b)).count();
    let mut found = Vec::new();
    for start in memchr::memmem::find_iter(text, b"eyJ") {
        if start > 0 && b64(&text[start - 1]) {
            continue;
        }
        let header = run(start);
        let dot = start + header;
        if header < 10 || text.get(dot) != Some(&b'.') || !text[dot + 1..].starts_with(b"eyJ") {
            continue;
        }
        let payload = run(dot + 1);
        let dot = dot + 1 + payload;
        if payload < 10 || text.get(dot) != Some(&b'.') {
            continue;
        }
        // HS256 signatures are 43 characters, RS256 and EdDSA longer.
        if run(dot + 1) >= 40 {
            found.push(start);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    /// Test fixtures only: a value planted as a secret, and a JWT signed with a fixture key.
    const PLANTED: &str = "fixture-planted \"secret\" value";
    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1IiwiZXhwIjo0MTAyNDQ0ODAwfQ.\
                       5mhBHqs5_DTLdINd9p5m7ZJ6XD0Xc55kIaCGPR6y8Zk";

    fn run_dir(root: &Path, name: &str) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_planted_secret_is_found_by_file_and_line_in_every_form() {
        let root = tempfile::tempdir().unwrap();
        let run = run_dir(root.path(), "100-1");
        harness::secrets::record(&run, "backend env JWT_SECRET", PLANTED).unwrap();
        harness::secrets::record(&run, "short one", "pw").unwrap();
        let json_escaped = r#"fixture-planted \"secret\" value"#;
        let encoded = "fixture-planted%20%22secret%22%20value";
        std::fs::write(
            run.join("backend.log"),
            format!("starting\n{{\"msg\":\"key {json_escaped}\"}}\nok pw\nurl x://u:{encoded}@h\n"),
        )
        .unwrap();
        let nested = run_dir(&run, "mail");
        std::fs::write(nested.join("0.eml"), format!("a\nb\n{PLANTED}\n")).unwrap();
        std::fs::write(
            run.join("daprd.log"),
            format!("Bearer {JWT}\n-----BEGIN PRIVATE KEY-----\n"),
        )
        .unwrap();

        let report = scan(std::slice::from_ref(&run)).unwrap();
        let found: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
        let at = |file: &str, line: usize, what: &str| {
            format!("{}:{line}: {what}", run.join(file).display())
        };
        assert_eq!(
            found,
            [
                at("backend.log", 2, "backend env JWT_SECRET"),
                at("backend.log", 4, "backend env JWT_SECRET"),
                at("daprd.log", 1, "a signed JWT (bearer token)"),
                at("daprd.log", 2, "a PEM private key"),
                at("mail/0.eml", 3, "backend env JWT_SECRET"),
            ]
        );
        assert!(
            found.iter().all(|f| !f.contains("planted")),
            "no finding shows the value"
        );
        assert_eq!(report.secrets, 1);
        assert!(report.too_short.contains("short one"));
        // The record itself is not a log.
        assert_eq!(report.files, 3);
    }

    #[test]
    fn logs_without_the_secrets_pass() {
        let root = tempfile::tempdir().unwrap();
        let run = run_dir(root.path(), "100-1");
        harness::secrets::record(&run, "daprd APP_API_TOKEN", PLANTED).unwrap();
        std::fs::write(
            run.join("backend.log"),
            "fixture-planted secret value\nan unsigned eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.\n\
             a public key -----BEGIN PUBLIC KEY-----\n",
        )
        .unwrap();
        let report = scan(&[run]).unwrap();
        assert_eq!(report.findings, []);
        assert_eq!((report.files, report.secrets), (1, 1));
    }

    #[test]
    fn only_runs_started_since_the_invocation_are_scanned() {
        let root = tempfile::tempdir().unwrap();
        for name in ["99-7", "100-1", "101-2", "notes", "x-1"] {
            run_dir(root.path(), name);
        }
        std::fs::write(root.path().join("102-3"), "a file, not a run").unwrap();
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let runs = runs_since(root.path(), since).unwrap();
        assert_eq!(runs, [root.path().join("100-1"), root.path().join("101-2")]);
        assert_eq!(
            runs_since(&root.path().join("none"), since).unwrap(),
            Vec::<PathBuf>::new()
        );
    }

    #[test]
    fn forms_cover_json_and_urls() {
        let text = |value: &str| -> Vec<String> {
            forms(value)
                .into_iter()
                .map(|f| String::from_utf8(f).unwrap())
                .collect()
        };
        assert_eq!(
            text("a b\"c/d@e"),
            ["a b\"c/d@e", r#"a b\"c/d@e"#, "a%20b%22c%2Fd%40e"]
        );
        assert_eq!(
            text("pass%40word"),
            ["pass%40word", "pass%2540word", "pass@word"]
        );
    }
}
