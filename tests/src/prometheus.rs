//! Debian's Prometheus server as a child process, scraping the harness's processes.
//!
//! The configuration is generated from a list of [`ScrapeTarget`]s (one static target each,
//! grouped into jobs), so the jobs and labels are exactly those `grafana/README.md` says a real
//! deployment must have; rule files are loaded as given, so Prometheus itself evaluates the
//! repository's recording and alerting rules. Unlike a scrape done by hand, this proves the
//! queries against the real server's parsing, staleness and rule evaluation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::process::{ManagedProcess, StopPolicy};
use crate::{binaries, ports, wait};

/// Variable naming the `prometheus` program (default: found on `PATH`).
pub const PROMETHEUS_ENV: &str = "PROMETHEUS_PATH";

/// One endpoint to scrape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeTarget {
    /// The `job` label (`todo-dapr`, `daprd`, `dapr-scheduler`).
    pub job: String,
    /// `127.0.0.1:<port>`.
    pub address: String,
    /// HTTP path of the metrics (`/metrics`, or `/` for daprd).
    pub path: String,
    /// Labels added to every series of this target (e.g. `app_id`).
    pub labels: BTreeMap<String, String>,
}

impl ScrapeTarget {
    /// A target on 127.0.0.1:`port` with no extra labels.
    pub fn new(job: &str, port: u16, path: &str) -> Self {
        Self {
            job: job.to_owned(),
            address: format!("127.0.0.1:{port}"),
            path: path.to_owned(),
            labels: BTreeMap::new(),
        }
    }

    /// Adds a target label.
    #[must_use]
    pub fn label(mut self, name: &str, value: &str) -> Self {
        self.labels.insert(name.to_owned(), value.to_owned());
        self
    }
}

/// How to run Prometheus.
#[derive(Clone, Debug)]
pub struct PrometheusOptions {
    /// What to scrape.
    pub targets: Vec<ScrapeTarget>,
    /// Rule files to load (absolute paths).
    pub rule_files: Vec<PathBuf>,
    /// Global `scrape_interval` and `evaluation_interval`.
    pub interval: Duration,
}

impl Default for PrometheusOptions {
    fn default() -> Self {
        Self {
            targets: Vec::new(),
            rule_files: Vec::new(),
            interval: Duration::from_secs(1),
        }
    }
}

/// One sample of an instant query's result vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The series' labels (`__name__` included when the result keeps it).
    pub labels: BTreeMap<String, String>,
    /// The value (Prometheus sends it as a string; `NaN` and `±Inf` included).
    pub value: f64,
}

/// A rule group as `/api/v1/rules` reports it.
#[derive(Clone, Debug, Deserialize)]
pub struct RuleGroup {
    /// Group name.
    pub name: String,
    /// The file it was loaded from.
    pub file: String,
    /// Its rules, with their evaluation health.
    pub rules: Vec<RuleState>,
}

/// One loaded rule and how its last evaluation went.
#[derive(Clone, Debug, Deserialize)]
pub struct RuleState {
    /// The recorded series or the alert name.
    pub name: String,
    /// `recording` or `alerting`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `ok`, `err` or `unknown` (not evaluated yet).
    pub health: String,
    /// The error of the last evaluation, if any.
    #[serde(rename = "lastError", default)]
    pub last_error: Option<String>,
}

/// A running Prometheus owned by the harness.
#[derive(Debug)]
pub struct Prometheus {
    process: ManagedProcess,
    port: u16,
    config: PathBuf,
    api: PrometheusApi,
}

impl Prometheus {
    /// Writes the configuration to `root/prometheus.yml`, starts Prometheus with its TSDB in
    /// `root/prometheus-data` on a free loopback port, and waits until `/-/ready` answers 200.
    pub async fn start(
        opts: &PrometheusOptions,
        root: &Path,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let program = locate()?;
        std::fs::create_dir_all(root)?;
        let config = root.join("prometheus.yml");
        std::fs::write(&config, render_config(opts)?)
            .with_context(|| format!("writing {}", config.display()))?;
        let port = ports::free_port()?;
        let mut cmd = Command::new(&program);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                root.join("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=info");
        let mut process =
            ManagedProcess::spawn("prometheus", cmd, log_dir, StopPolicy::default(), false)?;
        let api = PrometheusApi::new(format!("http://127.0.0.1:{port}"))?;
        let url = format!("{}/-/ready", api.base_url());
        wait::until_running(
            "prometheus /-/ready",
            Duration::from_secs(60),
            &mut process,
            || {
                let req = api.http.get(&url).send();
                async move { Ok::<_, anyhow::Error>((req.await?.status() == 200).then_some(())) }
            },
        )
        .await?;
        Ok(Self {
            process,
            port,
            config,
            api,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The generated configuration file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Its HTTP API.
    pub fn api(&self) -> &PrometheusApi {
        &self.api
    }

    /// [`PrometheusApi::instant_query`].
    pub async fn instant_query(&self, expr: &str) -> anyhow::Result<Vec<Sample>> {
        self.api.instant_query(expr).await
    }

    /// [`PrometheusApi::rule_groups`].
    pub async fn rule_groups(&self) -> anyhow::Result<Vec<RuleGroup>> {
        self.api.rule_groups().await
    }

    /// [`PrometheusApi::targets`].
    pub async fn targets(&self) -> anyhow::Result<Vec<(String, String, String, String)>> {
        self.api.targets().await
    }

    /// [`PrometheusApi::wait_targets_up`].
    pub async fn wait_targets_up(&self, expected: usize, timeout: Duration) -> anyhow::Result<()> {
        self.api.wait_targets_up(expected, timeout).await
    }

    /// The process (logs).
    pub fn process_mut(&mut self) -> &mut ManagedProcess {
        &mut self.process
    }
}

/// The HTTP API of a Prometheus, whoever runs it (the harness, or an operator in a cluster).
#[derive(Clone, Debug)]
pub struct PrometheusApi {
    base_url: String,
    http: reqwest::Client,
}

impl PrometheusApi {
    /// The API at `base_url` (`http://host:port`, no trailing slash).
    pub fn new(base_url: impl Into<String>) -> anyhow::Result<Self> {
        Ok(Self {
            base_url: base_url.into(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        })
    }

    /// `http://host:port`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Evaluates `expr` at the current time (`/api/v1/query`); a scalar or string result is
    /// one sample without labels. Fails on a PromQL error, with Prometheus's message.
    pub async fn instant_query(&self, expr: &str) -> anyhow::Result<Vec<Sample>> {
        let body: Value = self
            .http
            .get(format!("{}/api/v1/query", self.base_url))
            .query(&[("query", expr)])
            .send()
            .await?
            .json()
            .await
            .context("decoding a /api/v1/query answer")?;
        parse_query_result(&body).with_context(|| format!("query `{expr}`"))
    }

    /// The rule groups Prometheus loaded, with each rule's last evaluation (`/api/v1/rules`).
    pub async fn rule_groups(&self) -> anyhow::Result<Vec<RuleGroup>> {
        let body: Value = self
            .http
            .get(format!("{}/api/v1/rules", self.base_url))
            .send()
            .await?
            .json()
            .await?;
        if body["status"] != "success" {
            bail!("/api/v1/rules answered {body}");
        }
        Ok(serde_json::from_value(body["data"]["groups"].clone())?)
    }

    /// `(job, instance, health, last error)` of every active target (`/api/v1/targets`).
    pub async fn targets(&self) -> anyhow::Result<Vec<(String, String, String, String)>> {
        let body: Value = self
            .http
            .get(format!("{}/api/v1/targets?state=active", self.base_url))
            .send()
            .await?
            .json()
            .await?;
        let targets = body["data"]["activeTargets"]
            .as_array()
            .context("no activeTargets in /api/v1/targets")?;
        Ok(targets
            .iter()
            .map(|t| {
                let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                (
                    s(&t["labels"]["job"]),
                    s(&t["labels"]["instance"]),
                    s(&t["health"]),
                    s(&t["lastError"]),
                )
            })
            .collect())
    }

    /// Waits until every configured target has been scraped successfully at least once.
    pub async fn wait_targets_up(&self, expected: usize, timeout: Duration) -> anyhow::Result<()> {
        wait::until("every scrape target up", timeout, || async {
            let targets = self.targets().await?;
            let down: Vec<String> = targets
                .iter()
                .filter(|(_, _, health, _)| health != "up")
                .map(|(job, instance, health, err)| format!("{job} {instance} {health} {err}"))
                .collect();
            if targets.len() == expected && down.is_empty() {
                return Ok(Some(()));
            }
            Err(anyhow::anyhow!(
                "{} of {expected} targets known; not up: {down:?}",
                targets.len()
            ))
        })
        .await?;
        Ok(())
    }
}

/// The `prometheus` program: `PROMETHEUS_PATH`, else found on `PATH` (Debian's package,
/// which `cargo xtask deps` installs for `promtool`).
pub fn locate() -> anyhow::Result<PathBuf> {
    std::env::var_os(PROMETHEUS_ENV)
        .map(PathBuf::from)
        .or_else(|| binaries::find_on_path("prometheus"))
        .filter(|p| p.is_file())
        .with_context(|| {
            format!(
                "prometheus not found (set {PROMETHEUS_ENV}, or run `cargo xtask deps`, which \
                 installs Debian's `prometheus` package)"
            )
        })
}

/// The configuration file: global intervals, rule files, and one scrape job per distinct
/// `job` of `opts.targets` (in first-seen order) with one static config per target. Written
/// as JSON, which is YAML too.
pub fn render_config(opts: &PrometheusOptions) -> anyhow::Result<String> {
    let interval = format!("{}ms", opts.interval.as_millis());
    let mut jobs: Vec<(&str, &str, Vec<Value>)> = Vec::new();
    for t in &opts.targets {
        let entry = json!({ "targets": [t.address], "labels": t.labels });
        match jobs.iter_mut().find(|(job, _, _)| *job == t.job) {
            Some((_, path, configs)) => {
                anyhow::ensure!(
                    *path == t.path,
                    "job {} has targets with different paths ({path}, {})",
                    t.job,
                    t.path
                );
                configs.push(entry);
            }
            None => jobs.push((&t.job, &t.path, vec![entry])),
        }
    }
    let scrape_configs: Vec<Value> = jobs
        .into_iter()
        .map(|(job, path, configs)| {
            json!({ "job_name": job, "metrics_path": path, "static_configs": configs })
        })
        .collect();
    let config = json!({
        "global": { "scrape_interval": interval, "evaluation_interval": interval },
        "rule_files": opts.rule_files,
        "scrape_configs": scrape_configs,
    });
    Ok(serde_json::to_string_pretty(&config)?)
}

/// The samples of a `/api/v1/query` answer.
pub fn parse_query_result(body: &Value) -> anyhow::Result<Vec<Sample>> {
    if body["status"] != "success" {
        bail!(
            "{}: {}",
            body["errorType"].as_str().unwrap_or("error"),
            body["error"].as_str().unwrap_or("no message")
        );
    }
    let value_of = |pair: &Value| -> anyhow::Result<f64> {
        let text = pair[1].as_str().context("sample value is not a string")?;
        // Prometheus writes NaN and ±Inf as Go does.
        Ok(match text {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other.parse()?,
        })
    };
    let data = &body["data"];
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .context("vector without result")?
            .iter()
            .map(|s| {
                Ok(Sample {
                    labels: serde_json::from_value(s["metric"].clone())?,
                    value: value_of(&s["value"])?,
                })
            })
            .collect(),
        Some("scalar") => Ok(vec![Sample {
            labels: BTreeMap::new(),
            value: value_of(&data["result"])?,
        }]),
        other => bail!("unexpected result type {other:?} for an instant query"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_groups_targets_into_jobs_with_their_labels() {
        let opts = PrometheusOptions {
            targets: vec![
                ScrapeTarget::new("todo-dapr", 8000, "/metrics").label("app_id", "backend"),
                ScrapeTarget::new("daprd", 9090, "/").label("app_id", "backend"),
                ScrapeTarget::new("todo-dapr", 8001, "/metrics").label("app_id", "notification"),
                ScrapeTarget::new("dapr-scheduler", 9095, "/"),
            ],
            rule_files: vec!["/repo/grafana/rules/todo-dapr.rules.yaml".into()],
            interval: Duration::from_secs(1),
        };
        let config: Value = serde_yaml_ng::from_str(&render_config(&opts).unwrap()).unwrap();
        assert_eq!(config["global"]["scrape_interval"], "1000ms");
        assert_eq!(config["global"]["evaluation_interval"], "1000ms");
        assert_eq!(
            config["rule_files"],
            json!(["/repo/grafana/rules/todo-dapr.rules.yaml"])
        );
        let jobs = config["scrape_configs"].as_array().unwrap();
        let names: Vec<&str> = jobs
            .iter()
            .map(|j| j["job_name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["todo-dapr", "daprd", "dapr-scheduler"]);
        assert_eq!(jobs[0]["metrics_path"], "/metrics");
        assert_eq!(jobs[1]["metrics_path"], "/");
        assert_eq!(
            jobs[0]["static_configs"],
            json!([
                {"targets": ["127.0.0.1:8000"], "labels": {"app_id": "backend"}},
                {"targets": ["127.0.0.1:8001"], "labels": {"app_id": "notification"}},
            ])
        );
        assert_eq!(jobs[2]["static_configs"][0]["labels"], json!({}));
    }

    #[test]
    fn config_refuses_one_job_with_two_paths() {
        let opts = PrometheusOptions {
            targets: vec![
                ScrapeTarget::new("daprd", 1, "/"),
                ScrapeTarget::new("daprd", 2, "/metrics"),
            ],
            ..PrometheusOptions::default()
        };
        assert!(render_config(&opts).is_err());
    }

    #[test]
    fn parses_vectors_scalars_and_errors() {
        let vector = json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"app_id": "backend"}, "value": [1.5, "2"]},
            {"metric": {}, "value": [1.5, "NaN"]},
        ]}});
        let samples = parse_query_result(&vector).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].labels["app_id"], "backend");
        assert!((samples[0].value - 2.0).abs() < f64::EPSILON);
        assert!(samples[1].value.is_nan());

        let empty = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
        assert!(parse_query_result(&empty).unwrap().is_empty());

        let scalar =
            json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "+Inf"]}});
        assert_eq!(parse_query_result(&scalar).unwrap()[0].value, f64::INFINITY);

        let error = json!({"status": "error", "errorType": "bad_data", "error": "parse error"});
        let message = parse_query_result(&error).unwrap_err().to_string();
        assert!(message.contains("bad_data: parse error"), "{message}");
    }
}
