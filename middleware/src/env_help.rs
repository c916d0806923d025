//! The environment section of each service's `--help`, generated from what its configuration
//! loader reads.
//!
//! A hand-kept list drifts: a variable gets added to a loader and never to the help, or stays in
//! the help after the loader stopped reading it. Here the list is the loader's own: it is run
//! once over an empty environment with a lookup that records every name asked for, and the help
//! prints those names in that order, each with its row from a table of meanings. A service's
//! table holds its own rows; the variables every service reads the same way ([`SHARED`]: the
//! sidecar, the app token, shutdown, logging) are described once here. [`undocumented`] is the
//! check each service's tests run: every name read has a row, and every row names something
//! read.

use std::cell::RefCell;

use crate::app_token::APP_API_TOKEN_ENV;
use crate::env::METRICS_PORT_ENV;

/// One row of the list: the variable, or several read together (`"A, B"`), and its meaning with
/// the default in brackets. A meaning may run over several lines (`\n`); they are indented under
/// the first.
pub type EnvDoc = (&'static str, &'static str);

/// Rows for the variables every service reads through [`crate::env::ServiceEnv`] and
/// [`crate::env::EnvReader::dapr_client`]. A service's own row for the same name wins (to say
/// what its port or token guards).
pub const SHARED: &[EnvDoc] = &[
    (
        METRICS_PORT_ENV,
        "serve /metrics on this port (same host) instead of the one above [unset]",
    ),
    (
        "DAPR_HTTP_PORT, DAPR_HTTP_ENDPOINT, DAPR_API_TOKEN",
        "the sidecar (see the dapr crate) [3500]",
    ),
    (
        APP_API_TOKEN_ENV,
        "token daprd must present on every call into this app [none: not checked]",
    ),
    (
        "SHUTDOWN_GRACE_SECS",
        "time allowed for in-flight work at shutdown [10]",
    ),
    (
        "SHUTDOWN_DRAIN_SECS",
        "after SIGTERM, serve on with failing health probes so daprd stops sending\nwork [0]",
    ),
    (
        "LOG_FORMAT",
        "json | pretty | auto (json when stdout is not a terminal) [auto]",
    ),
    ("RUST_LOG", "log filter [info]"),
];

/// Column at which meanings start.
const MEANING_COLUMN: usize = 25;

/// Every variable name `load` looks up, in the order of first lookup, when the environment
/// holds `vars` (a variable read only when another is set shows up only when that one is).
pub fn variables_read(
    vars: &[(&str, &str)],
    load: impl FnOnce(&dyn Fn(&str) -> Option<String>),
) -> Vec<String> {
    let read = RefCell::new(Vec::<String>::new());
    let lookup = |key: &str| {
        let mut read = read.borrow_mut();
        if !read.iter().any(|k| k == key) {
            read.push(key.to_owned());
        }
        vars.iter()
            .rev()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| (*value).to_owned())
    };
    load(&lookup);
    read.into_inner()
}

/// The names of a row.
fn names(row: &EnvDoc) -> impl Iterator<Item = &'static str> {
    row.0.split(',').map(str::trim)
}

/// The row describing `name`: the service's own, else the shared one.
fn row_for(name: &str, docs: &[EnvDoc]) -> Option<EnvDoc> {
    docs.iter()
        .chain(SHARED)
        .find(|row| names(row).any(|n| n == name))
        .copied()
}

/// The `--help` section for the loader `load` (a service's `Config::from_lookup`): each row
/// once, where `load` first reads one of its variables in an empty environment; then the
/// service's rows for variables read only when another is set.
pub fn render(docs: &[EnvDoc], load: impl FnOnce(&dyn Fn(&str) -> Option<String>)) -> String {
    rows_in_order(&variables_read(&[], load), docs)
}

/// The section for a loader that reads `read` (see [`variables_read`]).
fn rows_in_order(read: &[String], docs: &[EnvDoc]) -> String {
    // (names, meaning); a name without a row (a test failure, see `undocumented`) still shows.
    let mut rows: Vec<(String, &str)> = Vec::new();
    let mut add = |names: &str, meaning: &'static str| {
        if !rows.iter().any(|(n, _)| n == names) {
            rows.push((names.to_owned(), meaning));
        }
    };
    for name in read {
        match row_for(name, docs) {
            Some((names, meaning)) => add(names, meaning),
            None => add(name, "(not described)"),
        }
    }
    for (names, meaning) in docs {
        add(names, meaning);
    }
    let mut out = String::from("Environment (defaults in brackets):");
    for (names, meaning) in rows {
        let head = format!("  {names}");
        let gap = MEANING_COLUMN
            .checked_sub(head.len())
            .filter(|g| *g > 0)
            .unwrap_or(2);
        out.push('\n');
        out.push_str(&head);
        out.push_str(&" ".repeat(gap));
        let mut lines = meaning.lines();
        out.push_str(lines.next().unwrap_or_default());
        for line in lines {
            out.push('\n');
            out.push_str(&" ".repeat(MEANING_COLUMN));
            out.push_str(line);
        }
    }
    out
}

/// The check behind the generated help: runs `load` over an empty environment and over one
/// where every variable the rows name is set to `"1"` (so variables read only when another is
/// set are read too), and answers what is wrong: names read without a row, and rows of `docs`
/// naming variables never read. Empty when the help is complete.
pub fn undocumented(
    docs: &[EnvDoc],
    load: impl Fn(&dyn Fn(&str) -> Option<String>),
) -> Vec<String> {
    let all: Vec<(&str, &str)> = docs
        .iter()
        .chain(SHARED)
        .flat_map(names)
        .map(|n| (n, "1"))
        .collect();
    let mut read = variables_read(&[], &load);
    for name in variables_read(&all, &load) {
        if !read.contains(&name) {
            read.push(name);
        }
    }
    let mut problems: Vec<String> = read
        .iter()
        .filter(|name| row_for(name, docs).is_none())
        .map(|name| format!("{name} is read but has no row"))
        .collect();
    problems.extend(
        docs.iter()
            .flat_map(names)
            .filter(|name| !read.iter().any(|r| r == name))
            .map(|name| format!("{name} has a row but is never read")),
    );
    problems
}

/// For a service's tests: panics with every finding of [`undocumented`].
pub fn assert_documented(docs: &[EnvDoc], load: impl Fn(&dyn Fn(&str) -> Option<String>)) {
    let problems = undocumented(docs, load);
    assert!(
        problems.is_empty(),
        "the --help environment list and the loader disagree:\n  {}",
        problems.join("\n  ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loader of the usual shape: one variable always, one only when the first is set.
    fn load(lookup: &dyn Fn(&str) -> Option<String>) {
        if lookup("A_HOST").is_some() {
            let _ = lookup("A_EXTRA");
        }
        let _ = lookup("RUST_LOG");
    }

    const DOCS: &[EnvDoc] = &[
        ("A_HOST", "where to listen [127.0.0.1]"),
        ("A_EXTRA", "read only with A_HOST\nsecond line"),
    ];

    #[test]
    fn records_names_in_order_of_first_lookup() {
        let read = variables_read(&[("A_HOST", "x")], |lookup| {
            load(lookup);
            let _ = lookup("A_HOST");
        });
        assert_eq!(read, ["A_HOST", "A_EXTRA", "RUST_LOG"]);
        assert_eq!(variables_read(&[], load), ["A_HOST", "RUST_LOG"]);
    }

    #[test]
    fn help_follows_the_reads_and_uses_shared_rows() {
        let help = render(DOCS, load);
        let lines: Vec<&str> = help.lines().collect();
        assert_eq!(lines[0], "Environment (defaults in brackets):");
        assert_eq!(
            lines[1],
            "  A_HOST                 where to listen [127.0.0.1]"
        );
        assert_eq!(lines[2], "  RUST_LOG               log filter [info]");
        // Read only when A_HOST is set: after the others, its second line indented.
        assert_eq!(lines[3], "  A_EXTRA                read only with A_HOST");
        assert_eq!(
            lines[4],
            format!("{}second line", " ".repeat(MEANING_COLUMN))
        );
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn a_row_of_several_names_is_printed_once_and_long_names_get_two_spaces() {
        let docs: &[EnvDoc] = &[("A_VERY_LONG_NAME, ANOTHER_ONE", "both [x]")];
        let help = render(docs, |lookup| {
            let _ = lookup("A_VERY_LONG_NAME");
            let _ = lookup("ANOTHER_ONE");
        });
        assert_eq!(
            help.lines().nth(1),
            Some("  A_VERY_LONG_NAME, ANOTHER_ONE  both [x]")
        );
        assert_eq!(help.lines().count(), 2);
    }

    #[test]
    fn undocumented_names_both_kinds_of_drift() {
        assert!(undocumented(DOCS, load).is_empty());
        let missing = undocumented(&DOCS[..1], load);
        assert_eq!(missing, ["A_EXTRA is read but has no row"]);
        let stale: &[EnvDoc] = &[DOCS[0], DOCS[1], ("A_GONE", "no longer read")];
        assert_eq!(
            undocumented(stale, load),
            ["A_GONE has a row but is never read"]
        );
    }
}
