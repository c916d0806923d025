//! The cluster of `cargo xtask cluster up`, as the cluster suites reach it: `kubectl` with the
//! administrator's kubeconfig, the backend through its Service, sidecars through
//! `kubectl port-forward`, pods at their addresses on the pod network.
//!
//! The cluster is not started here: `cargo xtask test` (or `cargo xtask cluster up`) starts it
//! and records it in a state file named by `TODO_CLUSTER_STATE`. Without it, every scenario of a
//! suite is listed as ignored ([`run`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, SecondsFormat, Utc};
use harness::suite::{self, Parallelism};
use harness::wait;
use serde_json::Value;

/// The state file `cargo xtask cluster up` writes.
pub(crate) const STATE_ENV: &str = "TODO_CLUSTER_STATE";
/// The chart's `metrics.port` (helm/todo-dapr/values.yaml), which values-local.yaml keeps: every
/// pod serves `/metrics` there, not on its app port.
pub(crate) const METRICS_PORT: u16 = 9464;
/// Where `cluster up` runs Prometheus (see `xtask/src/cluster/monitoring.rs`).
pub(crate) const MONITORING_NAMESPACE: &str = "monitoring";
/// Generous for two cores running a whole cluster; waits return as soon as the condition holds.
pub(crate) const DEADLINE: Duration = Duration::from_secs(120);

pub(crate) struct Env {
    pub(crate) kubectl: PathBuf,
    pub(crate) kubeconfig: PathBuf,
    pub(crate) namespace: String,
    pub(crate) mail_dir: PathBuf,
    pub(crate) log_dir: PathBuf,
    pub(crate) backend: String,
    pub(crate) jwt_key: String,
    pub(crate) http: reqwest::Client,
    /// The state file as `cluster up` wrote it (the release's chart, values, drills, helm).
    pub(crate) state: Value,
}

/// Lists every scenario as ignored, naming what is missing (a plain `cargo test` has no cluster).
pub(crate) fn ignored_without_cluster(tests: &harness::suite::Tests<Env>) -> ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let trials = tests
        .iter()
        .map(|(name, _)| libtest_mimic::Trial::test(*name, || Ok(())).with_ignored_flag(true))
        .collect();
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{STATE_ENV} is not set: these run on the cluster of `cargo xtask test`");
    }
    libtest_mimic::run(&args, trials).exit_code()
}

impl Env {
    pub(crate) async fn load(state: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(state)
            .with_context(|| format!("reading {}", state.display()))?;
        let state: Value = serde_json::from_str(&text)?;
        let path = |v: &Value| -> anyhow::Result<PathBuf> {
            Ok(PathBuf::from(
                v.as_str().context("a path in the cluster state")?,
            ))
        };
        let release = &state["release"];
        ensure!(
            !release.is_null(),
            "the cluster state has no release: `cluster up` did not finish"
        );
        let mut env = Self {
            kubectl: path(&state["kubectl"])?,
            kubeconfig: path(&state["node"]["kubeconfig"])?,
            namespace: release["namespace"]
                .as_str()
                .context("namespace")?
                .to_owned(),
            mail_dir: path(&release["mail_dir"])?,
            log_dir: path(&state["node"]["data_dir"])?.join("logs"),
            backend: String::new(),
            jwt_key: String::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()?,
            state: state.clone(),
        };
        let service = env.kubectl_json(&[
            "get",
            "service",
            "-l",
            "app.kubernetes.io/component=backend",
        ])?;
        let backend = &service["items"][0]["spec"];
        env.backend = format!(
            "http://{}:{}",
            backend["clusterIP"]
                .as_str()
                .context("the backend Service's cluster IP")?,
            backend["ports"][0]["port"]
        );
        env.jwt_key = env.secret("jwt-secret", "jwt-secret")?;
        Ok(env)
    }

    /// `kubectl <args>` in the release's namespace; its standard output.
    pub(crate) fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        self.kubectl_in(&self.namespace, args)
    }

    /// `kubectl <args>` in `namespace`; its standard output.
    pub(crate) fn kubectl_in(&self, namespace: &str, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.kubectl)
            .env("KUBECONFIG", &self.kubeconfig)
            .args(["--namespace", namespace])
            .args(args)
            .output()
            .context("running kubectl")?;
        if !out.status.success() {
            bail!(
                "kubectl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub(crate) fn kubectl_json(&self, args: &[&str]) -> anyhow::Result<Value> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        Ok(serde_json::from_str(&self.kubectl(&all)?)?)
    }

    /// A Secret's value, read as the cluster's administrator.
    pub(crate) fn secret(&self, name: &str, key: &str) -> anyhow::Result<String> {
        let template = format!("--template={{{{index .data \"{key}\" | base64decode}}}}");
        let value = self.kubectl(&["get", "secret", name, "-o", "go-template", &template])?;
        ensure!(!value.is_empty(), "key {key} of Secret {name} is empty");
        Ok(value)
    }

    /// The pods of a service (by the chart's component label), as JSON.
    pub(crate) fn pods(&self, component: &str) -> anyhow::Result<Vec<Value>> {
        let list = self.kubectl_json(&[
            "get",
            "pods",
            "-l",
            &format!("app.kubernetes.io/component={component}"),
        ])?;
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }

    /// The API of the Prometheus that `cluster up` runs with the Prometheus Operator, at its
    /// pod's address.
    pub(crate) fn prometheus(&self) -> anyhow::Result<harness::prometheus::PrometheusApi> {
        let pods = self.kubectl_json(&[
            "--namespace",
            MONITORING_NAMESPACE,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/name=prometheus",
        ])?;
        let ip = pods["items"][0]["status"]["podIP"]
            .as_str()
            .context("no Prometheus pod with an address in `monitoring`")?;
        harness::prometheus::PrometheusApi::new(format!("http://{ip}:9090"))
    }

    /// A bearer token for `user`, signed with the key the backend reads from its Secret.
    pub(crate) fn token(&self, user: &str) -> String {
        super::tokens::token_signed_with(user, &self.jwt_key)
    }

    /// A request to the backend through its Service.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.backend))
            .bearer_auth(self.token(user));
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    pub(crate) async fn create_task(&self, user: &str, body: Value) -> anyhow::Result<Value> {
        let (status, task) = self
            .send(reqwest::Method::POST, "/api/v1/tasks", user, Some(&body))
            .await?;
        ensure!(status == 201, "creating a task answered {status}: {task}");
        Ok(task)
    }

    /// Completes task `id` of `user` through the backend; fails unless it answers 200.
    pub(crate) async fn complete_task(&self, user: &str, id: &str) -> anyhow::Result<()> {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/tasks/{id}/complete"),
                user,
                None,
            )
            .await?;
        ensure!(status == 200, "complete answered {status}: {body}");
        Ok(())
    }

    /// The mails the sink saved whose text contains `marker`, with when each was saved.
    pub(crate) fn mails_about(&self, marker: &str) -> Vec<(String, SystemTime)> {
        let Ok(entries) = std::fs::read_dir(&self.mail_dir) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let text = std::fs::read_to_string(e.path()).ok()?;
                let saved = e.metadata().ok()?.modified().ok()?;
                text.contains(marker).then_some((text, saved))
            })
            .collect()
    }

    /// email-delivery's count of mails the server accepted.
    pub(crate) async fn emails_sent(&self) -> anyhow::Result<f64> {
        self.counter(
            "email-delivery",
            "todo_emails_sent_total",
            r#"outcome="sent""#,
        )
        .await
    }

    /// The sum of a counter over every pod of `component`, scraped at its pod address on the
    /// chart's metrics port (the app port does not serve `/metrics` in the cluster).
    pub(crate) async fn counter(
        &self,
        component: &str,
        metric: &str,
        filter: &str,
    ) -> anyhow::Result<f64> {
        let port = METRICS_PORT;
        let mut sum = 0.0;
        for pod in self.pods(component)? {
            if let Some(ip) = pod["status"]["podIP"].as_str() {
                sum += super::metrics::counter(
                    &self.http,
                    &format!("http://{ip}:{port}"),
                    metric,
                    filter,
                )
                .await?;
            }
        }
        Ok(sum)
    }
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7())
}

pub(crate) fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

pub(crate) fn container_names(pod: &Value) -> Vec<String> {
    pod["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `kubectl port-forward` to a pod's port, stopped (by its PID) when dropped.
pub(crate) struct PortForward {
    child: Child,
    local: u16,
}

impl PortForward {
    pub(crate) async fn start(env: &Env, pod: &str, port: u16) -> anyhow::Result<Self> {
        // Its output goes to a file, not a pipe: kubectl keeps writing a line per connection
        // and would die of a closed pipe, resetting the connection it was forwarding.
        let out_path = env.log_dir.join(format!("port-forward-{pod}-{port}.log"));
        let out = std::fs::File::create(&out_path)?;
        let mut child = Command::new(&env.kubectl)
            .env("KUBECONFIG", &env.kubeconfig)
            .args([
                "--namespace",
                &env.namespace,
                "port-forward",
                &format!("pod/{pod}"),
            ])
            .arg(format!(":{port}"))
            .args(["--address", "127.0.0.1"])
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()?;
        // "Forwarding from 127.0.0.1:41234 -> 3500"
        let local = wait::until("kubectl port-forward listening", DEADLINE, || {
            let exited = child.try_wait();
            let out_path = &out_path;
            async move {
                if let Some(status) = exited? {
                    bail!("kubectl port-forward to {pod}:{port} exited ({status})");
                }
                let text = std::fs::read_to_string(out_path).unwrap_or_default();
                Ok::<_, anyhow::Error>(
                    text.split("127.0.0.1:")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .and_then(|p| p.parse::<u16>().ok()),
                )
            }
        })
        .await;
        match local {
            Ok(local) => Ok(Self { child, local }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e.into())
            }
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.local)
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn pod_name(pod: &Value) -> anyhow::Result<String> {
    Ok(pod["metadata"]["name"]
        .as_str()
        .context("pod name")?
        .to_owned())
}

/// Runs `tests` one at a time against the recorded cluster, or lists them as ignored without one.
pub(crate) fn run(tests: harness::suite::Tests<Env>) -> ExitCode {
    let Some(state) = std::env::var_os(STATE_ENV).map(PathBuf::from) else {
        return ignored_without_cluster(&tests);
    };
    suite::run(
        || async move { Env::load(&state).await },
        tests,
        Parallelism::Serial,
        |env| env.log_dir.clone(),
    )
}
