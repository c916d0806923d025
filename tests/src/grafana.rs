//! The queries of the committed Grafana dashboards and Prometheus rules, in the form a live
//! Prometheus can answer.
//!
//! Grafana sends a panel's `expr` only after replacing its variables: the built-in intervals
//! (`$__rate_interval`, `$__interval`, `$__range`) and the dashboard's template variables.
//! [`substitute`] does the same with fixed values, and fails on a variable it does not know,
//! so a dashboard that gains a new variable cannot slip through unreplaced. The offline check
//! (`cargo xtask test`, `xtask/src/observability.rs`) proves the queries parse; this module
//! feeds the live check (`tests/tests/observability_live.rs`), which proves they return data.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;

/// Values for Grafana's built-in interval variables.
#[derive(Clone, Debug)]
pub struct Intervals {
    /// `$__rate_interval`: Grafana uses max(4 × scrape interval, `$__interval` + scrape
    /// interval), which is 1m for a 15 s scrape.
    pub rate_interval: String,
    /// `$__interval`: the step of one pixel.
    pub interval: String,
    /// `$__range`: the dashboard's time range.
    pub range: String,
}

impl Default for Intervals {
    fn default() -> Self {
        Self {
            rate_interval: "1m".into(),
            interval: "15s".into(),
            range: "1h".into(),
        }
    }
}

/// Where a query comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// A panel target: dashboard file name, panel title, target `refId`.
    Panel {
        /// e.g. `services.json`.
        dashboard: String,
        /// The panel's title.
        panel: String,
        /// The target's `refId` (`A`, `B`, …).
        ref_id: String,
    },
    /// A template variable's query (`label_values(…)`).
    Variable {
        /// e.g. `sidecar-overhead.json`.
        dashboard: String,
        /// The variable's name.
        name: String,
    },
    /// A recording rule, queried by the series it records.
    RecordingRule {
        /// The recorded series name.
        record: String,
    },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Panel {
                dashboard,
                panel,
                ref_id,
            } => write!(f, "{dashboard}: panel \"{panel}\" {ref_id}"),
            Self::Variable { dashboard, name } => write!(f, "{dashboard}: variable ${name}"),
            Self::RecordingRule { record } => write!(f, "rule {record}"),
        }
    }
}

/// One query to put to Prometheus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// Where it comes from.
    pub origin: Origin,
    /// The text as committed (a panel's `expr`, a variable's query, a rule's `expr`).
    pub raw: String,
    /// What to send to `/api/v1/query`: variables replaced; for a recording rule, the
    /// recorded series; for `label_values(selector, label)`, the selector.
    pub promql: String,
}

/// The queries of every `*.json` dashboard in `dir`, in file-name order.
pub fn dashboard_queries(dir: &Path, intervals: &Intervals) -> anyhow::Result<Vec<Query>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no dashboards in {}", dir.display());
    let mut out = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let dashboard: Value = serde_json::from_slice(&std::fs::read(&path)?)
            .with_context(|| format!("parsing {}", path.display()))?;
        out.extend(queries_of(&name, &dashboard, intervals).with_context(|| name.clone())?);
    }
    Ok(out)
}

/// The panel targets (rows' nested panels included) and variable queries of one dashboard.
pub fn queries_of(
    file: &str,
    dashboard: &Value,
    intervals: &Intervals,
) -> anyhow::Result<Vec<Query>> {
    let variables = template_values(dashboard)?;
    let mut out = Vec::new();
    let top = dashboard["panels"].as_array().into_iter().flatten();
    for panel in
        top.flat_map(|p| std::iter::once(p).chain(p["panels"].as_array().into_iter().flatten()))
    {
        let title = panel["title"].as_str().unwrap_or_default();
        for target in panel["targets"].as_array().into_iter().flatten() {
            let Some(expr) = target["expr"].as_str() else {
                continue;
            };
            let origin = Origin::Panel {
                dashboard: file.to_owned(),
                panel: title.to_owned(),
                ref_id: target["refId"].as_str().unwrap_or("?").to_owned(),
            };
            let promql =
                substitute(expr, &variables, intervals).with_context(|| format!("{origin}"))?;
            out.push(Query {
                origin,
                raw: expr.to_owned(),
                promql,
            });
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] != "query" {
            continue;
        }
        let raw = var["query"]["query"]
            .as_str()
            .or_else(|| var["query"].as_str())
            .unwrap_or_default();
        let origin = Origin::Variable {
            dashboard: file.to_owned(),
            name: var["name"].as_str().unwrap_or_default().to_owned(),
        };
        let promql = variable_promql(&substitute(raw, &variables, intervals)?)
            .with_context(|| format!("{origin}"))?;
        out.push(Query {
            origin,
            raw: raw.to_owned(),
            promql,
        });
    }
    Ok(out)
}

/// The value each template variable takes in the check: its `allValue` (`.*`, for the
/// regex matchers the dashboards use), else its current value. Data source variables are left
/// out: they choose the data source, never appear in a query.
pub fn template_values(dashboard: &Value) -> anyhow::Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = var["name"].as_str().context("a variable without a name")?;
        if var["type"] == "datasource" {
            continue;
        }
        let value = var["allValue"]
            .as_str()
            .filter(|_| var["includeAll"] == true)
            .or_else(|| var["current"]["value"].as_str())
            .with_context(|| {
                format!("variable ${name} has neither an allValue nor a current value")
            })?;
        values.insert(name.to_owned(), value.to_owned());
    }
    Ok(values)
}

/// Replaces Grafana's variables in `expr` (`$name`, `${name}`, `${name:format}`, `[[name]]`):
/// the built-in intervals from `intervals`, template variables from `variables`. An unknown
/// variable is an error; `$1`-style capture references (`label_replace`) are left alone.
pub fn substitute(
    expr: &str,
    variables: &BTreeMap<String, String>,
    intervals: &Intervals,
) -> anyhow::Result<String> {
    let lookup = |name: &str| -> anyhow::Result<String> {
        Ok(match name {
            "__rate_interval" => intervals.rate_interval.clone(),
            "__interval" => intervals.interval.clone(),
            "__range" => intervals.range.clone(),
            other => match variables.get(other) {
                Some(v) => v.clone(),
                None => bail!("unknown Grafana variable ${other} in `{expr}`"),
            },
        })
    };
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(pos) = rest.find(['$', '[']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(inner) = tail.strip_prefix("${") {
            let end = inner
                .find('}')
                .with_context(|| format!("unclosed ${{ in `{expr}`"))?;
            let name = inner[..end].split(':').next().unwrap_or_default();
            out.push_str(&lookup(name)?);
            rest = &inner[end + 1..];
        } else if let Some(inner) = tail.strip_prefix("[[") {
            match inner.find("]]") {
                Some(end) if is_name(&inner[..end]) => {
                    out.push_str(&lookup(&inner[..end])?);
                    rest = &inner[end + 2..];
                }
                // A PromQL subquery or range like `[10m:]` or `[[` of something else.
                _ => {
                    out.push('[');
                    rest = &tail[1..];
                }
            }
        } else if let Some(inner) = tail.strip_prefix('$') {
            let len = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            let name = &inner[..len];
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                out.push('$');
                rest = inner;
            } else {
                out.push_str(&lookup(name)?);
                rest = &inner[len..];
            }
        } else {
            out.push('[');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What a variable query needs from Prometheus: `label_values(selector, label)` needs series
/// of `selector` with `label`; `label_values(label)` any series with it.
fn variable_promql(query: &str) -> anyhow::Result<String> {
    let Some(args) = query
        .trim()
        .strip_prefix("label_values(")
        .and_then(|a| a.strip_suffix(')'))
    else {
        bail!("unsupported variable query `{query}` (only label_values is understood)");
    };
    Ok(match args.rsplit_once(',') {
        Some((selector, label)) => {
            let label = label.trim();
            let selector = selector.trim();
            // Only series carrying the label make a value.
            match selector.strip_suffix('}') {
                Some(open) => format!("{open},{label}!=\"\"}}"),
                None => format!("{selector}{{{label}!=\"\"}}"),
            }
        }
        None => format!("{{{}!=\"\"}}", args.trim()),
    })
}

/// A rule of a Prometheus rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A recording rule: the series it records and its expression.
    Recording {
        /// Group name.
        group: String,
        /// Recorded series.
        record: String,
        /// The expression.
        expr: String,
    },
    /// An alerting rule.
    Alerting {
        /// Group name.
        group: String,
        /// Alert name.
        alert: String,
        /// The expression.
        expr: String,
    },
}

/// Every rule of a Prometheus rule file, in file order.
pub fn rules(path: &Path) -> anyhow::Result<Vec<Rule>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: Value =
        serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut out = Vec::new();
    for group in doc["groups"].as_array().into_iter().flatten() {
        let gname = group["name"].as_str().unwrap_or_default().to_owned();
        for rule in group["rules"].as_array().into_iter().flatten() {
            let expr = rule["expr"]
                .as_str()
                .context("a rule without expr")?
                .to_owned();
            out.push(match (rule["record"].as_str(), rule["alert"].as_str()) {
                (Some(record), None) => Rule::Recording {
                    group: gname.clone(),
                    record: record.to_owned(),
                    expr,
                },
                (None, Some(alert)) => Rule::Alerting {
                    group: gname.clone(),
                    alert: alert.to_owned(),
                    expr,
                },
                _ => bail!("a rule in group {gname} is neither record nor alert"),
            });
        }
    }
    Ok(out)
}

/// The recording rules of `path` as queries of the series they record.
pub fn recording_rule_queries(path: &Path) -> anyhow::Result<Vec<Query>> {
    Ok(rules(path)?
        .into_iter()
        .filter_map(|r| match r {
            Rule::Recording { record, expr, .. } => Some(Query {
                origin: Origin::RecordingRule {
                    record: record.clone(),
                },
                raw: expr,
                promql: record,
            }),
            Rule::Alerting { .. } => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn substitutes_builtins_and_template_variables() {
        let i = Intervals::default();
        let v = vars(&[("namespace", ".*"), ("app_id", "backend")]);
        let got = substitute(
            r#"sum(rate(x{namespace=~"$namespace",app_id="${app_id}"}[$__rate_interval])) / increase(y[$__range]) + z[[app_id]] + w[$__interval]"#,
            &v,
            &i,
        )
        .unwrap();
        assert_eq!(
            got,
            r#"sum(rate(x{namespace=~".*",app_id="backend"}[1m])) / increase(y[1h]) + zbackend + w[15s]"#
        );
        // Subqueries, `${var:format}` and capture references.
        assert_eq!(
            substitute(
                r#"deriv(max(a)[10m:]) + label_replace(b, "s", "$1", "l", "(.*)") + c{n=~"${namespace:regex}"}"#,
                &v,
                &i
            )
            .unwrap(),
            r#"deriv(max(a)[10m:]) + label_replace(b, "s", "$1", "l", "(.*)") + c{n=~".*"}"#
        );
    }

    #[test]
    fn an_unknown_variable_is_an_error() {
        let err = substitute("x{pod=~\"$pod\"}", &vars(&[]), &Intervals::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("$pod"), "{err}");
        assert!(substitute("x[$__auto]", &vars(&[]), &Intervals::default()).is_err());
    }

    #[test]
    fn reads_panels_rows_and_variables_of_a_dashboard() {
        let dashboard = json!({
            "templating": {"list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {"name": "namespace", "type": "query", "includeAll": true, "allValue": ".*",
                 "query": {"query": "label_values(kube_pod_info{app=\"x\"}, namespace)"}},
            ]},
            "panels": [
                {"type": "row", "title": "r", "panels": [
                    {"title": "nested", "targets": [{"refId": "A", "expr": "up{namespace=~\"$namespace\"}"}]},
                ]},
                {"title": "top", "targets": [
                    {"refId": "A", "expr": "rate(a[$__rate_interval])"},
                    {"refId": "B", "datasource": {"type": "loki"}},
                ]},
            ],
        });
        let queries = queries_of("d.json", &dashboard, &Intervals::default()).unwrap();
        let got: Vec<(String, &str)> = queries
            .iter()
            .map(|q| (q.origin.to_string(), q.promql.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "d.json: panel \"nested\" A".to_owned(),
                    "up{namespace=~\".*\"}"
                ),
                ("d.json: panel \"top\" A".to_owned(), "rate(a[1m])"),
                (
                    "d.json: variable $namespace".to_owned(),
                    "kube_pod_info{app=\"x\",namespace!=\"\"}"
                ),
            ]
        );
    }

    #[test]
    fn reads_recording_and_alerting_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.yaml");
        std::fs::write(
            &path,
            "groups:\n  - name: g\n    rules:\n      - record: a:b:c\n        expr: sum(x)\n      - alert: Down\n        expr: up == 0\n",
        )
        .unwrap();
        let queries = recording_rule_queries(&path).unwrap();
        assert_eq!(queries.len(), 1);
        assert_eq!(queries[0].promql, "a:b:c");
        assert_eq!(queries[0].raw, "sum(x)");
        assert_eq!(rules(&path).unwrap().len(), 2);
    }

    #[test]
    fn the_repository_dashboards_have_queries_and_no_unreplaced_variable() {
        let root = crate::repo_root().join("grafana");
        let queries = dashboard_queries(&root.join("dashboards"), &Intervals::default()).unwrap();
        assert!(queries.len() > 50, "{} queries", queries.len());
        for q in &queries {
            assert!(!q.promql.contains('$'), "{}: {}", q.origin, q.promql);
        }
        let rules = recording_rule_queries(&root.join("rules/todo-dapr.rules.yaml")).unwrap();
        assert!(!rules.is_empty());
    }
}
