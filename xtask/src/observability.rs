//! The offline check of `grafana/`: dashboards and Prometheus rules, run by `cargo xtask test`.
//!
//! No Grafana server is reachable here, so the dashboards are checked the way a compiler would:
//! each committed JSON is wrapped as a TypeScript object literal typed with Grafana's own
//! `@grafana/schema` (panels also with their plugin's options type) and `tsc --strict` rejects
//! unknown keys, wrong types and values outside an enum. The steps, each able to fail alone:
//!
//! 1. the committed `grafana/dashboards/*.json` are exactly what `grafana/build.py` renders;
//! 2. every metric name a dashboard, rule or rule test uses is one our code exports (the
//!    `pub const … = "todo_…"` strings, read from the sources at run time), a recording rule,
//!    or one of the daprd / Scheduler / cAdvisor / process names in [`EXTERNAL`];
//! 3. `promtool check rules` on the rules and on every dashboard query (wrapped as recording
//!    rules, Grafana's `$__…` variables replaced), so a query that does not parse fails here;
//! 4. `promtool test rules` (every alert shown to fire and not to fire);
//! 5. the TypeScript check above, with `@grafana/schema` and `typescript` installed by npm
//!    into the cache directory (outside the checkout) and reused while the pinned versions match.
//!
//! Debian's `prometheus` package (promtool) is installed by `cargo xtask deps`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use harness::binaries::find_on_path;
use serde_json::Value;

use crate::step;

/// npm packages of the schema check, pinned.
const NPM_PACKAGES: &[(&str, &str)] = &[("@grafana/schema", "13.2.3"), ("typescript", "5.9.3")];

/// A metric from outside our code that dashboards and rules may use.
struct External {
    name: &'static str,
    /// Who exports it, for messages.
    source: &'static str,
    /// A histogram: `_bucket`, `_sum` and `_count` series exist.
    histogram: bool,
}

const fn ext(name: &'static str, source: &'static str, histogram: bool) -> External {
    External {
        name,
        source,
        histogram,
    }
}

/// The external metrics we know, as exported by daprd and the Scheduler 1.18
/// (`pkg/diagnostics`, `pkg/scheduler/monitoring`), cAdvisor and the process collector.
const EXTERNAL: &[External] = &[
    ext("up", "prometheus", false),
    ext("process_resident_memory_bytes", "process", false),
    ext("process_cpu_seconds_total", "process", false),
    ext("container_memory_working_set_bytes", "cadvisor", false),
    ext("container_cpu_usage_seconds_total", "cadvisor", false),
    ext("container_spec_memory_limit_bytes", "cadvisor", false),
    ext("dapr_component_pubsub_ingress_count", "daprd", false),
    ext("dapr_component_pubsub_ingress_latencies", "daprd", true),
    ext("dapr_component_pubsub_egress_count", "daprd", false),
    ext("dapr_component_pubsub_egress_latencies", "daprd", true),
    ext("dapr_component_job_success_count", "daprd", false),
    ext("dapr_component_job_failure_count", "daprd", false),
    ext("dapr_component_job_latencies", "daprd", true),
    ext("dapr_scheduler_sidecars_connected", "scheduler", false),
    ext("dapr_scheduler_jobs_created_total", "scheduler", false),
    ext("dapr_scheduler_jobs_triggered_total", "scheduler", false),
    ext("dapr_scheduler_jobs_failed_total", "scheduler", false),
    ext("dapr_scheduler_jobs_undelivered_total", "scheduler", false),
    ext("dapr_scheduler_trigger_latency", "scheduler", true),
];

const HISTOGRAM_SUFFIXES: &[&str] = &["_bucket", "_sum", "_count"];

const RULES: &str = "rules/todo-dapr.rules.yaml";
const RULE_TESTS: &str = "rules/todo-dapr.tests.yaml";

/// Runs every check of `grafana/`; see the module docs.
pub(crate) fn check() -> anyhow::Result<()> {
    let root = harness::repo_root();
    let grafana = root.join("grafana");
    let promtool = find_on_path("promtool")
        .context("`promtool` not found: `cargo xtask deps` installs Debian's `prometheus`")?;

    let dashboards = rendered_up_to_date(&grafana)?;
    step::info(&format!(
        "dashboards match grafana/build.py: {}",
        dashboards.keys().cloned().collect::<Vec<_>>().join(", ")
    ));

    let rules_text = read(&grafana.join(RULES))?;
    let tests_text = read(&grafana.join(RULE_TESTS))?;
    check_links(&dashboards, &rules_text)?;
    check_metric_names(&root, &dashboards, &rules_text, &tests_text)?;

    let queries = dashboard_queries(&dashboards);
    let scratch = tempfile::Builder::new()
        .prefix("todo-dapr-grafana-")
        .tempdir()?;
    let queries_file = scratch.path().join("dashboard-queries.rules.yaml");
    std::fs::write(&queries_file, queries_as_rules(&queries))?;
    run(
        Command::new(&promtool)
            .args(["check", "rules"])
            .arg(grafana.join(RULES))
            .arg(&queries_file),
        "promtool check rules",
    )?;
    step::info(&format!(
        "promtool check rules: {RULES} and {} dashboard queries parse",
        queries.len()
    ));
    run(
        Command::new(&promtool)
            .args(["test", "rules"])
            .arg(grafana.join(RULE_TESTS))
            .current_dir(grafana.join("rules")),
        "promtool test rules",
    )?;
    step::info(&format!("promtool test rules: {RULE_TESTS} passes"));

    let panels = typecheck_dashboards(&dashboards)?;
    step::info(&format!(
        "tsc --strict against @grafana/schema: {} dashboards, {panels} panels",
        dashboards.len()
    ));
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Runs `cmd`; on failure the error carries its output.
fn run(cmd: &mut Command, what: &str) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("{what} failed ({}):\n{}", out.status, text.trim_end());
    }
    Ok(text)
}

// --- 1. rendered JSON ---------------------------------------------------------------------

/// Renders the dashboards into a temporary directory, requires the committed files to be
/// byte-identical, and returns them parsed, by file name.
fn rendered_up_to_date(grafana: &Path) -> anyhow::Result<BTreeMap<String, Value>> {
    let python = find_on_path("python3").context("`python3` not found (runs grafana/build.py)")?;
    let out = tempfile::Builder::new()
        .prefix("todo-dapr-dashboards-")
        .tempdir()?;
    run(
        Command::new(python)
            .arg(grafana.join("build.py"))
            .arg("--out")
            .arg(out.path()),
        "python3 grafana/build.py",
    )?;
    let rendered = json_files(out.path())?;
    let committed = json_files(&grafana.join("dashboards"))?;
    let names = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<BTreeSet<_>>();
    ensure!(
        names(&rendered) == names(&committed),
        "grafana/dashboards holds {:?} but grafana/build.py renders {:?}: run \
         `python3 grafana/build.py` and commit the result",
        names(&committed),
        names(&rendered)
    );
    let mut parsed = BTreeMap::new();
    for (name, text) in &committed {
        if let Some((line, (want, got))) = rendered[name]
            .lines()
            .zip(text.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
        {
            bail!(
                "grafana/dashboards/{name} is not what grafana/build.py renders (line {}: \
                 committed `{}`, rendered `{}`): run `python3 grafana/build.py` and commit",
                line + 1,
                got.trim(),
                want.trim()
            );
        }
        ensure!(
            rendered[name] == *text,
            "grafana/dashboards/{name} differs from its rendering in length: run \
             `python3 grafana/build.py` and commit"
        );
        let value: Value =
            serde_json::from_str(text).with_context(|| format!("parsing dashboards/{name}"))?;
        parsed.insert(name.clone(), value);
    }
    check_uids(&parsed)?;
    Ok(parsed)
}

fn json_files(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .context("non-UTF-8 file name")?
                .to_owned();
            files.insert(name, read(&path)?);
        }
    }
    Ok(files)
}

/// Every dashboard has its own fixed `uid` (links and provisioning rely on it), and panel ids
/// are unique within a dashboard.
fn check_uids(dashboards: &BTreeMap<String, Value>) -> anyhow::Result<()> {
    let mut uids = BTreeSet::new();
    for (name, d) in dashboards {
        let uid = d["uid"].as_str().unwrap_or_default();
        ensure!(
            !uid.is_empty()
                && uid.len() <= 40
                && uid
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{name}: `uid` must be set, at most 40 characters of [A-Za-z0-9_-]"
        );
        ensure!(uids.insert(uid), "{name}: uid `{uid}` is used twice");
        let mut ids = BTreeSet::new();
        for panel in all_panels(d) {
            let id = panel["id"].as_u64().unwrap_or_default();
            ensure!(ids.insert(id), "{name}: panel id {id} is used twice");
        }
    }
    Ok(())
}

/// Top-level panels and the panels inside rows.
fn all_panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        out.extend(panel["panels"].as_array().into_iter().flatten());
    }
    out
}

/// Alert annotations `dashboard: /d/<uid>` point at one of our dashboards.
fn check_links(dashboards: &BTreeMap<String, Value>, rules: &str) -> anyhow::Result<()> {
    let uids: BTreeSet<&str> = dashboards
        .values()
        .filter_map(|d| d["uid"].as_str())
        .collect();
    for link in yaml_values(rules, "dashboard") {
        let uid = link.strip_prefix("/d/").unwrap_or(&link);
        ensure!(
            uids.contains(uid),
            "{RULES}: annotation `dashboard: {link}` names no dashboard uid"
        );
    }
    Ok(())
}

// --- 2. metric names ----------------------------------------------------------------------

/// A query found in a dashboard: where it is and its text.
struct Query {
    /// `<dashboard file>: <panel title>` or `<file>: variable <name>`.
    place: String,
    /// Record name for the promtool check.
    record: String,
    expr: String,
    /// PromQL (panel targets), not a Grafana variable query.
    promql: bool,
}

fn dashboard_queries(dashboards: &BTreeMap<String, Value>) -> Vec<Query> {
    let mut queries = Vec::new();
    for (file, d) in dashboards {
        let stem = file.trim_end_matches(".json").replace('-', "_");
        for panel in all_panels(d) {
            let title = panel["title"].as_str().unwrap_or_default();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    queries.push(Query {
                        place: format!("{file}: panel \"{title}\""),
                        record: format!(
                            "{stem}:panel_{}:{}",
                            panel["id"],
                            target["refId"].as_str().unwrap_or("X")
                        ),
                        expr: expr.to_owned(),
                        promql: true,
                    });
                }
            }
        }
        for var in d["templating"]["list"].as_array().into_iter().flatten() {
            let query = var["query"]["query"]
                .as_str()
                .or(if var["type"] == "query" {
                    var["query"].as_str()
                } else {
                    None
                });
            if let Some(expr) = query {
                queries.push(Query {
                    place: format!("{file}: variable {}", var["name"]),
                    record: String::new(),
                    expr: expr.to_owned(),
                    promql: false,
                });
            }
        }
    }
    queries
}

fn check_metric_names(
    root: &Path,
    dashboards: &BTreeMap<String, Value>,
    rules: &str,
    tests: &str,
) -> anyhow::Result<()> {
    let ours = exported_names(root)?;
    ensure!(
        !ours.is_empty(),
        "found no `pub const … = \"todo_…\"` metric names in middleware/ and services/"
    );
    let recorded: BTreeSet<String> = yaml_values(rules, "record").into_iter().collect();
    let exprs = yaml_values(rules, "expr");
    let rule_count = yaml_values(rules, "record").len() + yaml_values(rules, "alert").len();
    ensure!(
        exprs.len() == rule_count,
        "{RULES}: read {} `expr` for {rule_count} rules: keep the file in block style",
        exprs.len()
    );

    let mut used: Vec<(String, String)> = Vec::new();
    for q in dashboard_queries(dashboards) {
        used.extend(
            metric_names(&q.expr)
                .into_iter()
                .map(|m| (m, q.place.clone())),
        );
    }
    for expr in &exprs {
        used.extend(
            metric_names(expr)
                .into_iter()
                .map(|m| (m, RULES.to_owned())),
        );
    }
    for expr in yaml_values(tests, "expr") {
        used.extend(
            metric_names(&expr)
                .into_iter()
                .map(|m| (m, RULE_TESTS.to_owned())),
        );
    }
    for series in yaml_values(tests, "series")
        .into_iter()
        .chain(yaml_values(tests, "labels"))
    {
        let name = series
            .split('{')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        used.push((name, RULE_TESTS.to_owned()));
    }

    let known = |name: &str| {
        ours.contains(name)
            || recorded.contains(name)
            || EXTERNAL.iter().any(|e| e.name == name)
            || HISTOGRAM_SUFFIXES.iter().any(|suffix| {
                name.strip_suffix(suffix).is_some_and(|base| {
                    (ours.contains(base) && !base.ends_with("_total"))
                        || EXTERNAL.iter().any(|e| e.histogram && e.name == base)
                })
            })
    };
    let unknown: Vec<String> = used
        .iter()
        .filter(|(name, _)| !known(name))
        .map(|(name, place)| format!("`{name}` in {place}"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    ensure!(
        unknown.is_empty(),
        "metric names that neither our code exports (pub const … = \"todo_…\") nor daprd, the \
         Scheduler, cAdvisor or the process collector do:\n  {}",
        unknown.join("\n  ")
    );

    let distinct: BTreeSet<&str> = used.iter().map(|(n, _)| n.as_str()).collect();
    let by_source = |source: &str| {
        distinct
            .iter()
            .filter(|n| {
                EXTERNAL.iter().any(|e| {
                    e.source == source
                        && (**n == e.name || n.strip_prefix(e.name).is_some_and(is_suffix))
                })
            })
            .count()
    };
    let (from_code, unused): (Vec<&String>, Vec<&String>) = ours.iter().partition(|o| {
        distinct
            .iter()
            .any(|n| n == o || n.strip_prefix(o.as_str()).is_some_and(is_suffix))
    });
    step::info(&format!(
        "metric names: {} used, all known (our code: {} of {} exported, {} recorded, daprd {}, \
         scheduler {}, cadvisor {}, process/up {})",
        distinct.len(),
        from_code.len(),
        ours.len(),
        distinct.iter().filter(|n| recorded.contains(**n)).count(),
        by_source("daprd"),
        by_source("scheduler"),
        by_source("cadvisor"),
        by_source("process") + by_source("prometheus"),
    ));
    if !unused.is_empty() {
        let unused: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        step::info(&format!(
            "exported but on no dashboard: {}",
            unused.join(", ")
        ));
    }
    Ok(())
}

fn is_suffix(rest: &str) -> bool {
    HISTOGRAM_SUFFIXES.contains(&rest)
}

/// The metric names our code exports: the `pub const NAME: &str = "todo_…";` items under
/// `middleware/src` and `services/*/src`.
fn exported_names(root: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut dirs = vec![root.join("middleware/src")];
    for entry in std::fs::read_dir(root.join("services"))? {
        dirs.push(entry?.path().join("src"));
    }
    let mut names = BTreeSet::new();
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                names.extend(const_metric_names(&read(&path)?));
            }
        }
    }
    Ok(names)
}

/// `pub const X: &str = "todo_…";` string values in `source` (a declaration may span lines).
fn const_metric_names(source: &str) -> Vec<String> {
    source
        .split("pub const ")
        .skip(1)
        .filter_map(|decl| {
            let decl = &decl[..decl.find(';')?];
            let (ty, value) = decl.split_once('=')?;
            if !ty.contains("&str") && !ty.contains("&'static str") {
                return None;
            }
            let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
            value.starts_with("todo_").then(|| value.to_owned())
        })
        .collect()
}

/// Aggregation operators: followed by `(` or by `by`/`without`, never metric names.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// Keywords that take a parenthesised label list.
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];

/// The metric names a PromQL expression (or Grafana's `label_values(selector, label)`) selects.
///
/// A small lexer, not a parser: it skips strings, label matchers `{…}`, ranges `[…]`, numbers,
/// durations, Grafana variables, keywords with their label lists, and identifiers followed by
/// `(` (functions). What is left are the metric names.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '{' {
            i = skip_group(&chars, i, '{', '}');
        } else if c == '[' {
            i = skip_group(&chars, i, '[', ']');
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '$' {
            i += 1;
            if chars.get(i) == Some(&'{') {
                i = skip_group(&chars, i, '{', '}');
            } else {
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let lower = word.to_ascii_lowercase();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let call = chars.get(next) == Some(&'(');
            if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
                if call {
                    i = skip_group(&chars, next, '(', ')');
                }
            } else if word == "label_values" && call {
                let end = skip_group(&chars, next, '(', ')');
                let args: String = chars[next + 1..end.saturating_sub(1)].iter().collect();
                // The last argument is a label; a first one, if any, a series selector.
                if let Some((selector, _label)) = args.rsplit_once(',') {
                    names.extend(metric_names(selector));
                }
                i = end;
            } else if !call
                && !KEYWORDS.contains(&lower.as_str())
                && !AGGREGATIONS.contains(&lower.as_str())
            {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Index just past the string literal starting at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '\\' && quote != '`' {
            i += 2;
        } else if chars[i] == quote {
            return i + 1;
        } else {
            i += 1;
        }
    }
    i
}

/// Index just past the `close` matching the `open` at `start`, strings inside skipped.
fn skip_group(chars: &[char], start: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(chars, i);
            continue;
        }
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    i
}

/// The values of `key:` in a block-style YAML document: plain, `'…'` and `"…"` scalars on the
/// key's line, and `|`/`>` block scalars (the more-indented lines that follow). Enough for the
/// rule files, whose layout the caller cross-checks (one `expr` per rule).
fn yaml_values(text: &str, key: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut values = Vec::new();
    let mut n = 0;
    while n < lines.len() {
        let line = lines[n];
        n += 1;
        let mut indent = line.len() - line.trim_start().len();
        let mut content = line.trim_start();
        if let Some(rest) = content.strip_prefix("- ") {
            indent += 2;
            content = rest.trim_start();
        }
        let Some(rest) = content.strip_prefix(key).and_then(|r| r.strip_prefix(':')) else {
            continue;
        };
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let mut block = Vec::new();
            while n < lines.len() {
                let next = lines[n];
                let next_indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && next_indent <= indent {
                    break;
                }
                block.push(next.trim());
                n += 1;
            }
            values.push(block.join("\n").trim().to_owned());
        } else if let Some(inner) = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
            values.push(inner.replace("''", "'"));
        } else if let Some(inner) = rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            values.push(inner.replace("\\\"", "\"").replace("\\\\", "\\"));
        } else if !rest.is_empty() {
            values.push(rest.to_owned());
        }
    }
    values
}

// --- 3. dashboard queries through promtool --------------------------------------------------

/// The PromQL panel queries as one rule group, Grafana's variables replaced by values of the
/// right kind, each preceded by a comment saying where it comes from.
fn queries_as_rules(queries: &[Query]) -> String {
    let mut yaml = String::from("groups:\n  - name: dashboard-queries\n    rules:\n");
    for q in queries.iter().filter(|q| q.promql) {
        let expr = q
            .expr
            .replace("$__rate_interval", "2m")
            .replace("$__interval", "1m")
            .replace("$__range", "1h")
            .replace("$namespace", ".*");
        let _ = writeln!(yaml, "      # {}", q.place);
        let _ = writeln!(yaml, "      - record: {}", q.record);
        let _ = writeln!(yaml, "        expr: {}", serde_json::Value::String(expr));
    }
    yaml
}

// --- 5. dashboards against @grafana/schema ------------------------------------------------

/// Types the dashboards are checked against. `AsJson<T>` is `T` as JSON sees it: string enums
/// become the union of their values (`ThresholdsMode` → `"absolute" | "percentage"`), the rest
/// is unchanged, so excess-property and type checks still apply everywhere. Panels are checked
/// a second time with their plugin's options (`PanelOf<"timeseries">`); a panel type missing
/// from `PanelTypes` does not compile. The `@ts-expect-error` lines prove the check can fail:
/// if one of them stopped being an error, tsc reports the unused directive.
const SCHEMA_TS: &str = r#"import type { Dashboard, Panel, RowPanel, ThresholdsConfig } from "@grafana/schema";
import type {
  FieldConfig as TimeSeriesFieldConfig,
  Options as TimeSeriesOptions,
} from "@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen";
import type { Options as StatOptions } from "@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen";

export type AsJson<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? AsJson<U>[]
      : T extends object
        ? { [K in keyof T]: AsJson<T[K]> }
        : T;

type WithOptions<O, F> = Omit<Panel<O, F>, "options"> & { options: O };
interface PanelTypes {
  timeseries: WithOptions<TimeSeriesOptions, TimeSeriesFieldConfig>;
  stat: WithOptions<StatOptions, Record<string, never>>;
  row: RowPanel;
}
export type PanelOf<K extends keyof PanelTypes> = AsJson<PanelTypes[K]> & { type: K };
export type JsonDashboard = AsJson<Dashboard>;

// @ts-expect-error an unknown dashboard key
export const unknownKey: JsonDashboard = { schemaVersion: 39, titel: "x" };
// @ts-expect-error a wrong type
export const wrongType: JsonDashboard = { schemaVersion: "39" };
// @ts-expect-error a value outside a string enum
export const badEnum: AsJson<ThresholdsConfig> = { mode: "absolut", steps: [] };
// @ts-expect-error a panel type we have no options type for
export type UnknownPanel = PanelOf<"graph">;
export const unknownOption: PanelOf<"timeseries"> = {
  type: "timeseries",
  options: {
    legend: { displayMode: "list", placement: "bottom", showLegend: true, calcs: [] },
    tooltip: { mode: "multi", sort: "desc" },
    // @ts-expect-error an option the time series panel does not have
    legendd: {},
  },
};
"#;

const TSCONFIG: &str = r#"{
  "compilerOptions": {
    "strict": true,
    "noEmit": true,
    "target": "es2022",
    "module": "esnext",
    "moduleResolution": "bundler",
    "skipLibCheck": true,
    "types": []
  },
  "include": ["*.ts"]
}
"#;

/// Type-checks every dashboard; returns how many panels were checked.
fn typecheck_dashboards(dashboards: &BTreeMap<String, Value>) -> anyhow::Result<usize> {
    let node = find_on_path("node").context("`node` not found (Node.js runs tsc)")?;
    let modules = npm_packages()?;
    // A fresh directory per run, beside node_modules so that imports resolve there; kept on
    // failure so that tsc's file:line can be opened.
    let dir = tempfile::Builder::new()
        .prefix("check-")
        .tempdir_in(modules.parent().context("cache directory")?)?;
    std::fs::write(dir.path().join("schema.ts"), SCHEMA_TS)?;
    std::fs::write(dir.path().join("tsconfig.json"), TSCONFIG)?;
    let mut panels = 0;
    for (name, dashboard) in dashboards {
        let mut ts = String::from(
            "import type { JsonDashboard, PanelOf } from \"./schema\";\n\nexport const dashboard: JsonDashboard = ",
        );
        to_ts(dashboard, 0, false, &mut ts);
        ts.push_str(";\n");
        let stem = name.trim_end_matches(".json").replace('-', "_");
        std::fs::write(dir.path().join(format!("{stem}.ts")), ts)?;
        panels += all_panels(dashboard).len();
    }
    let tsc = modules.join("typescript/bin/tsc");
    let result = run(
        Command::new(node)
            .arg(tsc)
            .arg("-p")
            .arg(dir.path().join("tsconfig.json")),
        "tsc --strict (dashboards against @grafana/schema)",
    );
    if let Err(err) = result {
        let kept = dir.keep();
        bail!("{err:#}\n(the checked files are in {})", kept.display());
    }
    Ok(panels)
}

/// Writes `v` as a TypeScript expression; panels (elements of a `panels` array) get
/// `satisfies PanelOf<"<type>">` so that their options are checked against their plugin.
fn to_ts(v: &Value, indent: usize, panel_list: bool, out: &mut String) {
    let pad = "  ".repeat(indent + 1);
    let close = "  ".repeat(indent);
    match v {
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            for (key, value) in map {
                out.push_str(&pad);
                out.push_str(&Value::String(key.clone()).to_string());
                out.push_str(": ");
                to_ts(value, indent + 1, key == "panels", out);
                out.push_str(",\n");
            }
            out.push_str(&close);
            out.push('}');
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for item in items {
                out.push_str(&pad);
                to_ts(item, indent + 1, false, out);
                if let (true, Some(kind)) = (panel_list, item["type"].as_str()) {
                    let _ = write!(out, " satisfies PanelOf<{}>", Value::String(kind.into()));
                }
                out.push_str(",\n");
            }
            out.push_str(&close);
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `<cache>/grafana-schema/node_modules` with the pinned packages, installed when missing.
/// Installs go to a temporary sibling that is renamed into place, so concurrent runs never see
/// half an install.
fn npm_packages() -> anyhow::Result<PathBuf> {
    let cache = crate::dapr_runtime::cache_root()?;
    let dir = cache.join("grafana-schema");
    let modules = dir.join("node_modules");
    if installed(&modules) {
        step::info(&format!("npm packages reused from {}", dir.display()));
        return Ok(modules);
    }
    let npm = find_on_path("npm").context("`npm` not found (installs @grafana/schema)")?;
    std::fs::create_dir_all(&cache)?;
    let staging = tempfile::Builder::new()
        .prefix("grafana-schema-")
        .tempdir_in(&cache)?;
    let specs: Vec<String> = NPM_PACKAGES
        .iter()
        .map(|(name, version)| format!("{name}@{version}"))
        .collect();
    step::info(&format!("npm install {}", specs.join(" ")));
    run(
        Command::new(npm)
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--save-exact",
                "--prefix",
            ])
            .arg(staging.path())
            .args(&specs),
        "npm install",
    )?;
    ensure!(
        installed(&staging.path().join("node_modules")),
        "npm install did not produce the pinned versions of {specs:?}"
    );
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let staged = staging.keep();
    if let Err(err) = std::fs::rename(&staged, &dir) {
        // Another run may have won the race; use its install if it is complete.
        let _ = std::fs::remove_dir_all(&staged);
        ensure!(
            installed(&modules),
            "moving the npm install into {}: {err}",
            dir.display()
        );
    }
    Ok(modules)
}

/// Whether every pinned package is in `modules` at its pinned version.
fn installed(modules: &Path) -> bool {
    NPM_PACKAGES.iter().all(|(name, version)| {
        std::fs::read_to_string(modules.join(name).join("package.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .is_some_and(|pkg| pkg["version"] == *version)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        metric_names(expr).into_iter().collect()
    }

    #[test]
    fn finds_metric_names_and_nothing_else() {
        assert_eq!(
            names(
                r#"histogram_quantile(0.95, sum by (service, le) (rate(todo_http_request_duration_seconds_bucket{service="backend",route=~"/a|b"}[$__rate_interval])))"#
            ),
            ["todo_http_request_duration_seconds_bucket"]
        );
        assert_eq!(
            names(
                r#"max by (namespace, pod) (a_bytes{container="daprd"}) / on (namespace, pod) group_left(x) b_bytes > 0.9 * 128 * 1024"#
            ),
            ["a_bytes", "b_bytes"]
        );
        assert_eq!(
            names(
                r#"x unless x offset 10m or label_replace(y:rec, "service", "$1", "app_id", "(.*)") and count(up == 0) or vector(0)"#
            ),
            ["up", "x", "y:rec"]
        );
        assert_eq!(names("deriv(max(p)[10m:1m]) > 1e3"), ["p"]);
        assert_eq!(
            names(
                r#"label_values(container_memory_working_set_bytes{container="daprd"}, namespace)"#
            ),
            ["container_memory_working_set_bytes"]
        );
        assert!(names("label_values(namespace)").is_empty());
    }

    #[test]
    fn reads_metric_consts_even_across_lines() {
        let src = r#"
/// Doc.
pub const A: &str = "todo_a_total";
pub const LONG_NAME_THAT_RUSTFMT_BREAKS: &str =
    "todo_long_seconds";
pub const ROUTE: &str = "unmatched";
pub const BUCKETS: &[f64] = &[0.1, 1.0];
pub const fn as_str(self) -> &'static str { "x" }
"#;
        assert_eq!(
            const_metric_names(src),
            ["todo_a_total", "todo_long_seconds"]
        );
    }

    #[test]
    fn reads_yaml_scalars_of_every_style() {
        let yaml = r#"
groups:
  - name: g
    rules:
      - record: a:b:rate5m
        expr: sum(rate(x[5m]))
      - alert: A
        expr: |
          y > 1
            and
          z < 2
        for: 5m
      - alert: B
        expr: 'q{l="v"} == 0'
        annotations:
          description: "say \"hi\""
"#;
        assert_eq!(
            yaml_values(yaml, "expr"),
            ["sum(rate(x[5m]))", "y > 1\nand\nz < 2", r#"q{l="v"} == 0"#]
        );
        assert_eq!(yaml_values(yaml, "record"), ["a:b:rate5m"]);
        assert_eq!(yaml_values(yaml, "description"), [r#"say "hi""#]);
    }

    #[test]
    fn panels_get_their_plugin_type() {
        let dashboard = serde_json::json!({
            "panels": [{"type": "row", "panels": []}, {"type": "stat", "targets": [{"expr": "up"}]}]
        });
        let mut ts = String::new();
        to_ts(&dashboard, 0, false, &mut ts);
        assert!(ts.contains(r#"} satisfies PanelOf<"row">"#), "{ts}");
        assert!(ts.contains(r#"} satisfies PanelOf<"stat">"#), "{ts}");
        assert_eq!(ts.matches("satisfies").count(), 2, "{ts}");
    }
}
