//! The dashboards and rules against reality: Debian's Prometheus scrapes the whole local stack
//! — the four services, their four sidecars and the Dapr Scheduler, with exactly the jobs and
//! labels `grafana/README.md` prescribes — and evaluates `grafana/rules/todo-dapr.rules.yaml`;
//! the test drives traffic that exercises every panel (REST writes and 4xx, a 503 from each
//! service's readiness while its sidecar is missing, a reminder that fires and is mailed, a
//! recurring completion, a poison message answered DROP, an SMTP outage answered RETRY, job
//! triggers that fail or find no sidecar), then requires every panel query, template variable
//! query and recording rule to return at least one sample, and every rule to evaluate cleanly.
//! The offline check (`cargo xtask test`) proves the queries parse and name exported metrics;
//! only this proves the names, labels and selectors match the series the processes really
//! export.
//!
//! The queries over the kubelet's cAdvisor series need a kubelet: `cluster_monitoring` checks
//! them, with every other query again, against the Prometheus Operator in the local cluster.

#![allow(clippy::print_stderr)] // The exception list and timings are part of the report.

mod support;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::{SecondsFormat, Utc};
use contracts::{event_types, topics};
use harness::grafana::{Origin, Query};
use harness::prometheus::{PrometheusOptions, ScrapeTarget};
use harness::suite::{self, Parallelism};
use harness::{
    AppHealthCheck, Daprd, DaprdPorts, Infra, InfraOptions, Pod, Prometheus, Service,
    ServiceOptions, SmtpSink, ports, wait,
};
use serde_json::{Value, json};
use support::dashboards::{self, rules_file};
use support::tokens::{JWT_FIXTURE_KEY, token_for};
use tokio::sync::Mutex;

/// Marked as a test fixture: not a real credential.
const APP_TOKEN: &str = "test-fixture-app-token";
/// For one event to get through (a reminder, a retry); generous for a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);
/// For every query to return data, traffic re-driven meanwhile.
const ALL_DATA_DEADLINE: Duration = Duration::from_secs(150);
/// How often pending queries are asked again, and light traffic re-driven.
const POLL: Duration = Duration::from_secs(1);
const REDRIVE_EVERY: Duration = Duration::from_secs(10);
/// `$__rate_interval` etc. as Grafana would send them for a 1 h dashboard and a 15 s scrape.
const RATE_INTERVAL: &str = "1m";

/// The prefix of the kubelet's cAdvisor series (`container_memory_working_set_bytes`, …): no
/// kubelet runs locally, so the queries over them are checked by `cluster_monitoring`, where
/// every query of every dashboard must return data.
const KUBELET_SERIES: &str = "container_";

struct Env {
    http: reqwest::Client,
    smtp: Mutex<SmtpSink>,
    // Services before their sidecars before Prometheus before the infrastructure: drop order.
    pods: Vec<Pod>,
    prometheus: Prometheus,
    infra: Infra,
}

/// The four services: app id (= binary), the variable naming its port.
const SERVICES: [(&str, &str); 4] = [
    ("backend", "BACKEND_PORT"),
    ("notification", "NOTIFICATION_PORT"),
    ("email-delivery", "EMAIL_DELIVERY_PORT"),
    ("recurring-task", "RECURRING_TASK_PORT"),
];

/// Starts `app_id` and its sidecar, and on the way gets a 503 from the service's `/readyz`
/// while the sidecar is not up: the 5xx the error-share panels and the error-ratio rule need,
/// as a pod whose sidecar starts late (or restarts) produces it. Services that need nothing
/// from the sidecar to start are started first; email-delivery reads its SMTP credentials
/// through the sidecar at start-up, so its sidecar is stopped and started again instead.
async fn start_pod(
    infra: &Infra,
    http: &reqwest::Client,
    app_id: &'static str,
    port_var: &str,
    extra_env: Vec<(String, String)>,
) -> anyhow::Result<Pod> {
    let port = ports::free_port()?;
    let sidecar_ports = DaprdPorts::free()?;
    let sidecar = || {
        infra.daprd(app_id, Some(port), |o| {
            o.app_api_token = Some(APP_TOKEN.into());
            o.ports = Some(sidecar_ports);
            o.app_health = Some(AppHealthCheck::SERVICES);
        })
    };
    let sidecar_first = app_id == "email-delivery";
    let mut early = None;
    if sidecar_first {
        early = Some(sidecar().await?);
    }
    let mut env = vec![
        (port_var.to_owned(), port.to_string()),
        ("DAPR_HTTP_PORT".to_owned(), sidecar_ports.http.to_string()),
        ("APP_API_TOKEN".to_owned(), APP_TOKEN.to_owned()),
    ];
    env.extend(extra_env);
    let service = Service::start(
        &ServiceOptions {
            binary: app_id.into(),
            log_name: app_id.into(),
            port,
            env,
            binary_path: None,
        },
        infra.log_dir(),
        false,
    )
    .await
    .with_context(|| format!("starting {app_id}"))?;
    if let Some(mut daprd) = early.take() {
        daprd.process_mut().stop();
    }
    let status = http
        .get(format!("{}/readyz", service.base_url()))
        .send()
        .await?
        .status();
    ensure!(
        status == 503,
        "{app_id} /readyz answered {status} without its sidecar; expected 503"
    );
    let daprd = sidecar().await?;
    Ok(Pod { service, daprd })
}

impl Env {
    async fn start() -> anyhow::Result<Self> {
        let infra = Infra::start(InfraOptions::from_env()?).await?;
        infra.postgres.create_database("backend")?;
        let smtp = SmtpSink::start().await?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let mut pods = Vec::new();
        for (app_id, port_var) in SERVICES {
            let extra = match app_id {
                "backend" => vec![
                    ("DATABASE_URL".into(), infra.postgres.url("backend")),
                    ("JWT_SECRET".into(), JWT_FIXTURE_KEY.into()),
                ],
                "email-delivery" => vec![
                    ("SMTP_HOST".into(), "127.0.0.1".into()),
                    ("SMTP_PORT".into(), smtp.port().to_string()),
                    ("SMTP_TLS".into(), "none".into()),
                    (
                        "SMTP_FROM".into(),
                        "Todo Reminders <reminders@todo.test>".into(),
                    ),
                ],
                _ => Vec::new(),
            };
            pods.push(start_pod(&infra, &http, app_id, port_var, extra).await?);
        }
        // Consumers must have subscribed before the first event is published.
        for pod in &pods {
            pod.daprd.wait_app_channel(DEADLINE).await?;
            if pod.app_id() != "backend" {
                wait_subscriptions(&pod.daprd).await?;
            }
        }

        let mut targets = Vec::new();
        for pod in &pods {
            targets.push(
                ScrapeTarget::new("todo-dapr", pod.service.port(), "/metrics")
                    .label("app_id", pod.app_id()),
            );
            targets.push(
                ScrapeTarget::new("daprd", pod.daprd.metrics_port(), "/")
                    .label("app_id", pod.app_id()),
            );
        }
        targets.push(ScrapeTarget::new(
            "dapr-scheduler",
            infra.scheduler.metrics_port(),
            "/",
        ));
        let expected_targets = targets.len();
        let prometheus = Prometheus::start(
            &PrometheusOptions {
                targets,
                rule_files: vec![rules_file()],
                interval: Duration::from_secs(1),
            },
            &infra.data_dir().join("prometheus"),
            infra.log_dir(),
        )
        .await?;
        prometheus
            .wait_targets_up(expected_targets, DEADLINE)
            .await?;
        Ok(Self {
            http,
            smtp: Mutex::new(smtp),
            pods,
            prometheus,
            infra,
        })
    }

    fn pod(&self, app_id: &str) -> &Pod {
        self.pods
            .iter()
            .find(|p| p.app_id() == app_id)
            .expect("every service has a pod")
    }

    /// A REST call to the backend as `user`; answers status and JSON body.
    async fn rest(
        &self,
        method: reqwest::Method,
        path: &str,
        user: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let base = self.pod("backend").service.base_url();
        let mut request = self.http.request(method, format!("{base}{path}"));
        if let Some(user) = user {
            request = request.bearer_auth(token_for(user));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let resp = request.send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json::<Value>().await.unwrap_or(Value::Null)))
    }

    async fn create_task(&self, user: &str, body: &Value) -> anyhow::Result<String> {
        let (status, task) = self
            .rest(
                reqwest::Method::POST,
                "/api/v1/tasks",
                Some(user),
                Some(body),
            )
            .await?;
        ensure!(status == 201, "create answered {status}: {task}");
        Ok(task["id"].as_str().context("task id")?.to_owned())
    }

    /// Publishes `body` to `topic` through the sidecar of the service that owns the topic —
    /// the only app-id the `pubsub` component lets publish there (daprd wraps a non-CloudEvent
    /// body into one).
    async fn publish(&self, topic: &str, body: &Value) -> anyhow::Result<()> {
        let owner = if topic == topics::TASK_REMINDERS {
            "notification"
        } else {
            "backend"
        };
        let url = format!(
            "{}/v1.0/publish/{}/{topic}",
            self.pod(owner).daprd.http_endpoint(),
            topics::PUBSUB
        );
        let content_type = if body.get("specversion").is_some() {
            "application/cloudevents+json"
        } else {
            "application/json"
        };
        let status = self
            .http
            .post(url)
            .header("content-type", content_type)
            .body(serde_json::to_vec(body)?)
            .send()
            .await?
            .status();
        ensure!(status.is_success(), "publish to {topic} answered {status}");
        Ok(())
    }

    /// A call into a service itself, as its sidecar would make it (with the app token).
    async fn call_app(
        &self,
        app_id: &str,
        method: reqwest::Method,
        path: &str,
    ) -> anyhow::Result<u16> {
        let base = self.pod(app_id).service.base_url();
        let resp = self
            .http
            .request(method, format!("{base}{path}"))
            .header("dapr-api-token", APP_TOKEN)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await?;
        Ok(resp.status().as_u16())
    }

    /// The sum of `metric`'s samples whose line contains `label`, from `app_id`'s /metrics.
    async fn app_counter(&self, app_id: &str, metric: &str, label: &str) -> anyhow::Result<f64> {
        let base = self.pod(app_id).service.base_url();
        support::metrics::counter(&self.http, &base, metric, label).await
    }

    /// Waits until the Scheduler's own metrics show a series of `name`.
    async fn wait_scheduler_metric(&self, name: &str) -> anyhow::Result<()> {
        let url = format!("http://127.0.0.1:{}/", self.infra.scheduler.metrics_port());
        wait::until(
            &format!("the Scheduler to export {name}"),
            DEADLINE,
            || async {
                let text = self.http.get(&url).send().await?.text().await?;
                Ok::<_, anyhow::Error>(text.lines().any(|l| l.starts_with(name)).then_some(()))
            },
        )
        .await?;
        Ok(())
    }

    async fn mails_about(&self, marker: &str) -> usize {
        self.smtp
            .lock()
            .await
            .messages()
            .iter()
            .filter(|m| m.data.contains(marker))
            .count()
    }

    async fn wait_mail(&self, marker: &str) -> anyhow::Result<()> {
        wait::until(&format!("a mail about {marker}"), DEADLINE, || async {
            Ok::<_, std::convert::Infallible>((self.mails_about(marker).await > 0).then_some(()))
        })
        .await?;
        Ok(())
    }
}

async fn wait_subscriptions(daprd: &Daprd) -> anyhow::Result<()> {
    let client = dapr::DaprClient::new(dapr::ClientConfig {
        http_endpoint: daprd.http_endpoint(),
        ..dapr::ClientConfig::default()
    })?;
    wait::until(
        &format!("{}'s subscriptions", daprd.app_id()),
        DEADLINE,
        || async {
            let meta = client.metadata().await?;
            let n = meta["subscriptions"].as_array().map_or(0, Vec::len);
            Ok::<_, dapr::Error>((n > 0).then_some(()))
        },
    )
    .await?;
    Ok(())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7())
}

fn in_secs(secs: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A `reminder.due` CloudEvent as notification would publish it.
fn reminder_due(title: &str) -> anyhow::Result<Value> {
    let data = contracts::ReminderDueData {
        schema_version: contracts::SCHEMA_VERSION,
        user_id: "observability".into(),
        task_id: uuid::Uuid::now_v7(),
        recipient_email: "observability@example.test".into(),
        recipient_name: None,
        title: title.into(),
        description: "sent by observability_live".into(),
        priority: contracts::Priority::Medium,
        due_at: None,
        remind_at: Utc::now(),
    };
    let event = dapr::CloudEvent::new(
        uuid::Uuid::now_v7().to_string(),
        contracts::source("notification"),
        event_types::REMINDER_DUE,
    )
    .with_json_data(&data)?;
    Ok(serde_json::to_value(event)?)
}

/// REST writes of every kind, a recurring completion, a reminder job that is deleted, and
/// 4xx answers from every service.
async fn drive_requests(env: &Env) -> anyhow::Result<()> {
    use reqwest::Method;
    let name = unique("obs");
    let user = Some(name.as_str());
    // Writes: create, update, complete, delete, list.
    env.create_task(
        &name,
        &json!({"title": unique("plain"), "due_at": in_secs(3600)}),
    )
    .await?;
    let b = env
        .create_task(
            &name,
            &json!({"title": unique("edit"), "due_at": in_secs(3600), "remind_at": in_secs(1800)}),
        )
        .await?;
    let (status, _) = env
        .rest(
            Method::PATCH,
            &format!("/api/v1/tasks/{b}"),
            user,
            Some(&json!({"priority": "high"})),
        )
        .await?;
    ensure!(status == 200, "update answered {status}");
    let (status, _) = env
        .rest(
            Method::POST,
            &format!("/api/v1/tasks/{b}/complete"),
            user,
            None,
        )
        .await?;
    ensure!(status == 200, "complete answered {status}");
    let c = env
        .create_task(
            &name,
            &json!({"title": unique("gone"), "due_at": in_secs(3600), "remind_at": in_secs(1800)}),
        )
        .await?;
    let (status, _) = env
        .rest(Method::DELETE, &format!("/api/v1/tasks/{c}"), user, None)
        .await?;
    ensure!(status == 204 || status == 200, "delete answered {status}");
    let (status, _) = env
        .rest(Method::GET, "/api/v1/tasks?status=all", user, None)
        .await?;
    ensure!(status == 200, "list answered {status}");
    // A recurring completion: recurring-task creates the next occurrence.
    let r = env
        .create_task(
            &name,
            &json!({"title": unique("recurring"), "due_at": in_secs(3600), "recurrence_rule": "FREQ=DAILY"}),
        )
        .await?;
    let (status, _) = env
        .rest(
            Method::POST,
            &format!("/api/v1/tasks/{r}/complete"),
            user,
            None,
        )
        .await?;
    ensure!(status == 200, "complete answered {status}");

    // 4xx: an unknown task, a bad body, no token; a job nobody handles; a wrong method.
    let missing = uuid::Uuid::now_v7();
    let (status, _) = env
        .rest(Method::GET, &format!("/api/v1/tasks/{missing}"), user, None)
        .await?;
    ensure!(status == 404, "unknown task answered {status}");
    let (status, _) = env
        .rest(
            Method::POST,
            "/api/v1/tasks",
            user,
            Some(&json!({"title": 5})),
        )
        .await?;
    ensure!((400..500).contains(&status), "bad body answered {status}");
    let (status, _) = env.rest(Method::GET, "/api/v1/tasks", None, None).await?;
    ensure!(status == 401, "no token answered {status}");
    let status = env
        .call_app("notification", Method::POST, "/job/observability-unknown")
        .await?;
    ensure!(
        (400..500).contains(&status),
        "unknown job answered {status}"
    );
    // (A wrong method on an event route would not do: the Dapr status layer answers it 200.)
    for app in ["email-delivery", "recurring-task"] {
        let status = env.call_app(app, Method::POST, "/dapr/subscribe").await?;
        ensure!(
            status == 405,
            "{app} POST /dapr/subscribe answered {status}"
        );
    }
    Ok(())
}

/// Every kind of event outcome: a poison message (DROP), an SMTP outage (RETRY, then sent),
/// and a reminder job that fires and is mailed.
async fn drive_events(env: &Env) -> anyhow::Result<()> {
    // Poison: a task.created event whose data is no task snapshot → notification answers
    // DROP (an event of a type it does not know would be ignored with SUCCESS).
    let drops_before = env
        .app_counter(
            "notification",
            "todo_events_consumed_total",
            "status=\"DROP\"",
        )
        .await?;
    let poison = dapr::CloudEvent::new(
        uuid::Uuid::now_v7().to_string(),
        contracts::source("observability-live"),
        event_types::TASK_CREATED,
    )
    .with_json_data(&json!({"poison": "not a task snapshot"}))?;
    env.publish(topics::TASK_EVENTS, &serde_json::to_value(poison)?)
        .await?;
    wait::until(
        "notification to DROP the poison message",
        DEADLINE,
        || async {
            let n = env
                .app_counter(
                    "notification",
                    "todo_events_consumed_total",
                    "status=\"DROP\"",
                )
                .await?;
            Ok::<_, anyhow::Error>((n > drops_before).then_some(()))
        },
    )
    .await?;

    // SMTP outage: email-delivery answers RETRY until the sink is back.
    let title = unique("smtp-outage");
    let retries_before = env
        .app_counter(
            "email-delivery",
            "todo_emails_sent_total",
            "outcome=\"retry\"",
        )
        .await?;
    env.smtp.lock().await.pause();
    env.publish(topics::TASK_REMINDERS, &reminder_due(&title)?)
        .await?;
    let retried = wait::until("email-delivery to answer RETRY", DEADLINE, || async {
        let n = env
            .app_counter(
                "email-delivery",
                "todo_emails_sent_total",
                "outcome=\"retry\"",
            )
            .await?;
        Ok::<_, anyhow::Error>((n > retries_before).then_some(()))
    })
    .await;
    env.smtp.lock().await.resume().await?;
    retried?;
    env.wait_mail(&title).await?;

    // A reminder job: scheduled, triggered by the Scheduler, published, mailed.
    let title = unique("reminder");
    env.create_task(
        &unique("obs"),
        &json!({"title": title, "due_at": in_secs(3600), "remind_at": in_secs(3)}),
    )
    .await?;
    env.wait_mail(&title).await?;
    Ok(())
}

/// Job triggers that go wrong, as the Scheduler panels count them: a job of notification's
/// that no handler knows (its sidecar counts a failed trigger; the app answered 404), a job
/// whose app answers 500 (the Scheduler counts it failed), and a job due after its app's only
/// sidecar died (the Scheduler counts it undelivered). The last two need an app of their own:
/// a scripted one answering 500, with a sidecar that the test kills.
async fn drive_job_failures(env: &Env) -> anyhow::Result<()> {
    let client = |daprd: &Daprd| {
        dapr::DaprClient::new(dapr::ClientConfig {
            http_endpoint: daprd.http_endpoint(),
            ..dapr::ClientConfig::default()
        })
    };
    let once = || {
        dapr::Job::once_after(Duration::from_secs(1), json!({"by": "observability_live"}))
            .with_failure_policy(dapr::jobs::FailurePolicy::Drop)
    };
    client(&env.pod("notification").daprd)?
        .schedule_job(&unique("observability-unhandled"), &once())
        .await?;

    let app = axum::Router::new().route(
        "/job/{name}",
        axum::routing::post(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut probe = env
        .infra
        .daprd("observability-probe", Some(port), |_| {})
        .await?;
    probe.wait_app_channel(DEADLINE).await?;
    let probe_client = client(&probe)?;
    probe_client.schedule_job("fails", &once()).await?;
    env.wait_scheduler_metric("dapr_scheduler_jobs_failed_total")
        .await?;
    // Due after the sidecar is gone: no sidecar of the app is connected when it fires.
    let later = dapr::Job::once_after(Duration::from_secs(2), json!({}))
        .with_failure_policy(dapr::jobs::FailurePolicy::Drop);
    probe_client.schedule_job("undelivered", &later).await?;
    probe.process_mut().kill();
    server.abort();
    env.wait_scheduler_metric("dapr_scheduler_jobs_undelivered_total")
        .await?;
    Ok(())
}

fn dashboard_of(origin: &Origin) -> &str {
    match origin {
        Origin::Panel { dashboard, .. } | Origin::Variable { dashboard, .. } => dashboard,
        Origin::RecordingRule { .. } => "recording rules",
    }
}

/// Prometheus loaded every group and rule of the rule file, and none fails to evaluate.
async fn the_rule_file_loads_and_evaluates_without_errors(env: &Env) -> anyhow::Result<()> {
    let groups =
        dashboards::rules_load_and_evaluate(env.prometheus.api(), &rules_file(), DEADLINE).await?;
    let rules: usize = groups.iter().map(|g| g.rules.len()).sum();
    eprintln!(
        "rule file: {} groups, {rules} rules loaded and evaluated without error",
        groups.len()
    );
    Ok(())
}

/// Every panel, variable and recording rule returns data once traffic has flowed.
async fn every_dashboard_query_and_recording_rule_returns_data(env: &Env) -> anyhow::Result<()> {
    let started = Instant::now();
    let (queries, kubelet): (Vec<Query>, Vec<Query>) = dashboards::all_queries(RATE_INTERVAL)?
        .into_iter()
        .partition(|q| !q.promql.contains(KUBELET_SERIES));
    eprintln!(
        "{} queries over the kubelet's series are checked in the cluster (cluster_monitoring)",
        kubelet.len()
    );
    let mut per_dashboard: BTreeMap<&str, usize> = BTreeMap::new();
    for q in &queries {
        *per_dashboard.entry(dashboard_of(&q.origin)).or_default() += 1;
    }
    eprintln!("checking {} queries: {per_dashboard:?}", queries.len());

    drive_requests(env).await?;
    drive_events(env).await?;
    drive_job_failures(env).await?;
    eprintln!("traffic driven in {:?}", started.elapsed());

    let pace = dashboards::Pace {
        deadline: ALL_DATA_DEADLINE,
        poll: POLL,
        redrive_every: REDRIVE_EVERY,
    };
    dashboards::every_query_returns_data(env.prometheus.api(), &queries, &pace, || {
        drive_requests(env)
    })
    .await?;
    eprintln!(
        "all {} queries returned data; {:?} from the start of the traffic",
        queries.len(),
        started.elapsed()
    );
    Ok(())
}

fn main() -> ExitCode {
    let tests = harness::tests![
        the_rule_file_loads_and_evaluates_without_errors,
        every_dashboard_query_and_recording_rule_returns_data,
    ];
    suite::run(Env::start, tests, Parallelism::Serial, |env| {
        env.infra.log_dir().to_path_buf()
    })
}
