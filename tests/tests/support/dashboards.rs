//! The two live checks of `grafana/` against a running Prometheus, shared by the local suite
//! (`observability_live`) and the cluster's (`cluster_monitoring`): the rule file is loaded and
//! evaluates cleanly, and every dashboard query and recording rule returns data.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::ensure;
use harness::grafana::{self, Intervals, Query, Rule};
use harness::prometheus::{PrometheusApi, RuleGroup};
use harness::{repo_root, wait};

/// `grafana/rules/todo-dapr.rules.yaml`.
pub(crate) fn rules_file() -> PathBuf {
    repo_root().join("grafana/rules/todo-dapr.rules.yaml")
}

/// Every panel target and variable query of every dashboard (with `$__rate_interval` as
/// `rate_interval`), and every recording rule.
pub(crate) fn all_queries(rate_interval: &str) -> anyhow::Result<Vec<Query>> {
    let intervals = Intervals {
        rate_interval: rate_interval.into(),
        ..Intervals::default()
    };
    let mut all = grafana::dashboard_queries(&repo_root().join("grafana/dashboards"), &intervals)?;
    all.extend(grafana::recording_rule_queries(&rules_file())?);
    Ok(all)
}

/// Waits until Prometheus has loaded every group and rule of `rules` (by name, nothing more or
/// less) and evaluated each once; fails if any evaluates with an error. Returns the groups.
pub(crate) async fn rules_load_and_evaluate(
    api: &PrometheusApi,
    rules: &Path,
    deadline: Duration,
) -> anyhow::Result<Vec<RuleGroup>> {
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rule in grafana::rules(rules)? {
        let (group, name) = match rule {
            Rule::Recording { group, record, .. } => (group, record),
            Rule::Alerting { group, alert, .. } => (group, alert),
        };
        expected.entry(group).or_default().push(name);
    }
    let groups = wait::until("every rule loaded and evaluated", deadline, || async {
        let groups = api.rule_groups().await?;
        let loaded: BTreeMap<String, Vec<String>> = groups
            .iter()
            .map(|g| {
                (
                    g.name.clone(),
                    g.rules.iter().map(|r| r.name.clone()).collect(),
                )
            })
            .collect();
        let unevaluated: Vec<&str> = groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter(|r| r.health == "unknown")
            .map(|r| r.name.as_str())
            .collect();
        if loaded == expected && unevaluated.is_empty() {
            Ok(Some(groups))
        } else {
            Err(anyhow::anyhow!(
                "loaded {loaded:?} (not evaluated yet: {unevaluated:?}), the file has {expected:?}"
            ))
        }
    })
    .await?;
    let failing: Vec<String> = groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| r.health != "ok" || r.last_error.as_deref().is_some_and(|e| !e.is_empty()))
        .map(|r| format!("{} ({}): {} {:?}", r.name, r.kind, r.health, r.last_error))
        .collect();
    ensure!(failing.is_empty(), "rules failing: {failing:#?}");
    Ok(groups)
}

/// How [`every_query_returns_data`] paces itself.
pub(crate) struct Pace {
    /// For every query to have returned data.
    pub(crate) deadline: Duration,
    /// Between two rounds of the queries still pending.
    pub(crate) poll: Duration,
    /// How often `redrive` runs meanwhile: rate windows need fresh samples.
    pub(crate) redrive_every: Duration,
}

/// Asks every query until each has returned at least one sample, running `redrive` (light
/// traffic) every `pace.redrive_every`. The failure lists every query that never did, with the
/// last error Prometheus gave for it.
pub(crate) async fn every_query_returns_data<F, Fut>(
    api: &PrometheusApi,
    queries: &[Query],
    pace: &Pace,
    mut redrive: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut pending: Vec<&Query> = queries.iter().collect();
    let mut errors: BTreeMap<String, String> = BTreeMap::new();
    let mut last_drive = Instant::now();
    let deadline = Instant::now() + pace.deadline;
    loop {
        let mut still = Vec::new();
        for q in pending {
            match api.instant_query(&q.promql).await {
                Ok(samples) if !samples.is_empty() => {}
                Ok(_) => still.push(q),
                Err(e) => {
                    errors.insert(q.origin.to_string(), format!("{e:#}"));
                    still.push(q);
                }
            }
        }
        pending = still;
        if pending.is_empty() || Instant::now() >= deadline {
            break;
        }
        if last_drive.elapsed() >= pace.redrive_every {
            redrive().await?;
            last_drive = Instant::now();
        }
        tokio::time::sleep(pace.poll).await;
    }
    if pending.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = pending
        .iter()
        .map(|q| {
            let error = errors
                .get(&q.origin.to_string())
                .map(|e| format!("\n      error: {e}"))
                .unwrap_or_default();
            format!("{}\n      {}{error}", q.origin, q.promql)
        })
        .collect();
    anyhow::bail!(
        "{} of {} queries returned no data within {:?}:\n  {}",
        pending.len(),
        queries.len(),
        pace.deadline,
        list.join("\n  ")
    )
}
