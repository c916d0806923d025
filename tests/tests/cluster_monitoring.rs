//! The dashboards and rules on Kubernetes, watched the way a user of the Prometheus Operator
//! watches them: the Prometheus that `cargo xtask cluster up` installs with the operator finds
//! its targets only through our chart's ServiceMonitor and PodMonitors and the kubelet's
//! cAdvisor endpoint, and loads our rules only from the chart's PrometheusRule.
//!
//! Under traffic that exercises every panel, every dashboard query, template variable and
//! recording rule must return data — with no exemption: the per-container series the local
//! check cannot have come from the kubelet here. The sidecars' working set and CPU beside
//! their apps are measured idle and under load and held against the 128 MiB budget.
//!
//! Runs after `cluster_e2e` and `cluster_upgrade` in `cargo xtask test`, on the same cluster.

#![allow(clippy::print_stderr)] // The figures are part of the report.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::Utc;
use contracts::{event_types, topics};
use harness::prometheus::{PrometheusApi, Sample};
use harness::wait;
use serde_json::json;
use support::cluster::{DEADLINE, Env, PortForward, pod_name, rfc3339, unique};
use support::dashboards;

/// What the dashboards send for `$__rate_interval` with the node's 5 s scrapes.
const RATE_INTERVAL: &str = "1m";
/// For every query to return data, light traffic re-driven meanwhile.
const ALL_DATA_DEADLINE: Duration = Duration::from_secs(180);
const POLL: Duration = Duration::from_secs(2);
const REDRIVE_EVERY: Duration = Duration::from_secs(15);
/// The sidecar memory budget of the design (and of `DaprSidecarMemoryNearBudget`).
const SIDECAR_BUDGET_BYTES: f64 = 128.0 * 1024.0 * 1024.0;
/// How long the load of the overhead measurement runs, and with how many clients.
const LOAD_FOR: Duration = Duration::from_secs(45);
const LOAD_CLIENTS: usize = 8;
/// Quiet before the idle figures, and the rate window they are taken over (two scrapes inside
/// the quiet, after the last request's work has settled).
const IDLE_FOR: Duration = Duration::from_secs(40);
const IDLE_WINDOW: Duration = Duration::from_secs(30);
/// Targets the node's Prometheus must scrape: job → how many.
const TARGETS: [(&str, usize); 4] = [
    // backend 1, notification 3, email-delivery 1, recurring-task 1.
    ("todo-dapr", 6),
    ("daprd", 6),
    ("dapr-scheduler", 3),
    ("kubelet", 1),
];
const SERVICES: [&str; 4] = [
    "backend",
    "notification",
    "email-delivery",
    "recurring-task",
];

fn main() -> ExitCode {
    support::cluster::run(harness::tests![
        prometheus_finds_every_target_through_the_chart_monitors,
        the_prometheus_rule_loads_and_evaluates_without_errors,
        reminders_outlive_the_backend_and_every_notification_replica_being_down,
        every_dashboard_query_and_recording_rule_returns_data,
        sidecar_overhead_idle_and_under_load_stays_within_budget,
    ])
}

/// 1. Every service, every sidecar, the Scheduler's three replicas and the kubelet are scraped,
///    with the labels the dashboards select on: the services keep their own `service` label
///    (not `exported_service`), and every target of ours carries its `app_id`.
async fn prometheus_finds_every_target_through_the_chart_monitors(env: &Env) -> anyhow::Result<()> {
    let api = env.prometheus()?;
    let expected: BTreeMap<&str, usize> = TARGETS.into_iter().collect();
    wait::until("every target up", DEADLINE, || async {
        let targets = api.targets().await?;
        let mut up: BTreeMap<&str, usize> = BTreeMap::new();
        let mut down = Vec::new();
        for (job, instance, health, error) in &targets {
            if let Some((name, _)) = expected.get_key_value(job.as_str()) {
                if health == "up" {
                    *up.entry(name).or_default() += 1;
                } else {
                    down.push(format!("{job} {instance} {health} {error}"));
                }
            }
        }
        if up == expected && down.is_empty() {
            Ok(Some(()))
        } else {
            Err(anyhow::anyhow!(
                "up {up:?}, want {expected:?}; down: {down:?}"
            ))
        }
    })
    .await?;

    let services = api
        .instant_query("count by (service, app_id) (todo_http_requests_total)")
        .await?;
    let pairs: BTreeSet<(String, String)> = services
        .iter()
        .map(|s| (label(s, "service"), label(s, "app_id")))
        .collect();
    let want: BTreeSet<(String, String)> = SERVICES
        .iter()
        .map(|s| ((*s).to_owned(), (*s).to_owned()))
        .collect();
    ensure!(
        pairs == want,
        "(service, app_id) of the services' series: {pairs:?}, want {want:?}"
    );
    let renamed = api
        .instant_query("count(todo_http_requests_total{exported_service!=\"\"})")
        .await?;
    ensure!(
        renamed.is_empty(),
        "series with `exported_service`: {renamed:?}"
    );
    let sidecars = api
        .instant_query("count by (app_id) (process_resident_memory_bytes{job=\"daprd\"})")
        .await?;
    let ids: BTreeSet<String> = sidecars.iter().map(|s| label(s, "app_id")).collect();
    let want: BTreeSet<String> = SERVICES.iter().map(|s| (*s).to_owned()).collect();
    ensure!(ids == want, "sidecars' app_id: {ids:?}, want {want:?}");
    Ok(())
}

fn label(sample: &Sample, name: &str) -> String {
    sample.labels.get(name).cloned().unwrap_or_default()
}

/// 2. Prometheus loaded every group and rule of `grafana/rules/` from the chart's
///    PrometheusRule, and none fails to evaluate.
async fn the_prometheus_rule_loads_and_evaluates_without_errors(env: &Env) -> anyhow::Result<()> {
    let api = env.prometheus()?;
    let groups =
        dashboards::rules_load_and_evaluate(&api, &dashboards::rules_file(), DEADLINE).await?;
    eprintln!(
        "PrometheusRule: {} groups loaded from {}",
        groups.len(),
        groups.first().map(|g| g.file.as_str()).unwrap_or_default()
    );
    Ok(())
}

/// Sets the replicas of a service's Deployment and waits until exactly that many of its pods
/// exist, each Ready.
async fn scale(env: &Env, component: &str, replicas: usize) -> anyhow::Result<()> {
    env.kubectl(&[
        "scale",
        "deployment",
        "-l",
        &format!("app.kubernetes.io/component={component}"),
        &format!("--replicas={replicas}"),
    ])?;
    wait::until(
        &format!("{component} at {replicas} Ready pods"),
        DEADLINE,
        || async {
            let pods = env.pods(component)?;
            let ready = pods
                .iter()
                .filter(|p| support::cluster::is_ready(p))
                .count();
            Ok::<_, anyhow::Error>((pods.len() == replicas && ready == replicas).then_some(()))
        },
    )
    .await?;
    Ok(())
}

/// The sum of a Scheduler counter over its replicas, as the node's Prometheus has it.
async fn scheduler_counter(api: &PrometheusApi, metric: &str) -> anyhow::Result<f64> {
    Ok(api
        .instant_query(&format!("sum({metric}) or vector(0)"))
        .await?
        .first()
        .map_or(0.0, |s| s.value))
}

/// Waits until the Scheduler's `metric` is above `before`.
async fn scheduler_counter_moves(
    api: &PrometheusApi,
    metric: &str,
    before: f64,
) -> anyhow::Result<f64> {
    let now = wait::until(&format!("{metric} above {before}"), DEADLINE, || async {
        let now = scheduler_counter(api, metric).await?;
        Ok::<_, anyhow::Error>((now > before).then_some(now))
    })
    .await?;
    Ok(now)
}

/// Waits until `due` (plus a second, for the Scheduler's trigger) has passed by the clock and
/// the Scheduler's `metric` has moved above `before`.
async fn after_due(
    api: &PrometheusApi,
    due: chrono::DateTime<Utc>,
    metric: &str,
    before: f64,
) -> anyhow::Result<f64> {
    let after = due + chrono::Duration::seconds(1);
    wait::until(&format!("{} to pass", rfc3339(after)), DEADLINE, || async {
        Ok::<_, std::convert::Infallible>((Utc::now() > after).then_some(()))
    })
    .await?;
    scheduler_counter_moves(api, metric, before).await
}

/// Waits for the mail of the reminder titled `title`; fails on a second one.
async fn one_mail(env: &Env, title: &str) -> anyhow::Result<chrono::DateTime<Utc>> {
    let saved = wait::until(&format!("the mail about {title}"), DEADLINE, || async {
        let mails = env.mails_about(title);
        Ok::<_, std::convert::Infallible>(mails.first().map(|(_, saved)| *saved))
    })
    .await?;
    // A duplicate would follow within a trigger retry (2 s); give it several.
    let quiet_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < quiet_until {
        let n = env.mails_about(title).len();
        ensure!(n == 1, "{n} mails about {title}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(chrono::DateTime::<Utc>::from(saved))
}

/// 3. A reminder that falls due while the backend is down fails its trigger (notification
///    cannot re-read the task: 500, which the Scheduler counts as failed and retries) and is
///    mailed once the backend is back; one that falls due while no notification replica is up
///    cannot be delivered (counted undelivered) and is mailed once a replica returns. Exactly
///    one mail each. (Also the outcomes the Scheduler dashboard's failure series need.)
async fn reminders_outlive_the_backend_and_every_notification_replica_being_down(
    env: &Env,
) -> anyhow::Result<()> {
    let api = env.prometheus()?;
    let user = unique("outage");
    let notification_replicas = env.pods("notification")?.len();

    let failed_before = scheduler_counter(&api, "dapr_scheduler_jobs_failed_total").await?;
    let title = unique("backend-down");
    let due = Utc::now() + chrono::Duration::seconds(20);
    env.create_task(
        &user,
        json!({"title": title, "due_at": rfc3339(due + chrono::Duration::hours(1)), "remind_at": rfc3339(due)}),
    )
    .await?;
    scale(env, "backend", 0).await?;
    // Down until the reminder has fallen due (its trigger met no backend) and failed.
    let failed = after_due(&api, due, "dapr_scheduler_jobs_failed_total", failed_before).await;
    scale(env, "backend", 1).await?;
    failed?;
    let mailed = one_mail(env, &title).await?;
    let late = (mailed - due).num_milliseconds() as f64 / 1000.0;
    ensure!(
        late >= 1.0,
        "mailed {late} s after its time: the backend was back before it fell due"
    );
    eprintln!("backend down: reminder mailed {late:.1} s after its time");

    let undelivered_before =
        scheduler_counter(&api, "dapr_scheduler_jobs_undelivered_total").await?;
    let created_before = scheduler_counter(&api, "dapr_scheduler_jobs_created_total").await?;
    let title = unique("notification-down");
    let due = Utc::now() + chrono::Duration::seconds(15);
    env.create_task(
        &user,
        json!({"title": title, "due_at": rfc3339(due + chrono::Duration::hours(1)), "remind_at": rfc3339(due)}),
    )
    .await?;
    // The task event must reach notification (the job exists) before its replicas go.
    scheduler_counter_moves(&api, "dapr_scheduler_jobs_created_total", created_before).await?;
    scale(env, "notification", 0).await?;
    // Down until the reminder has fallen due with no replica to take it.
    let undelivered = after_due(
        &api,
        due,
        "dapr_scheduler_jobs_undelivered_total",
        undelivered_before,
    )
    .await;
    scale(env, "notification", notification_replicas).await?;
    undelivered?;
    let mailed = one_mail(env, &title).await?;
    let late = (mailed - due).num_milliseconds() as f64 / 1000.0;
    ensure!(
        late >= 1.0,
        "mailed {late} s after its time: notification was back before it fell due"
    );
    eprintln!("every notification replica down: reminder mailed {late:.1} s after its time");
    Ok(())
}

/// REST writes of every kind, a reminder, a recurring completion and 4xx answers.
async fn drive_requests(env: &Env) -> anyhow::Result<()> {
    use reqwest::Method;
    let user = unique("obs");
    let in_secs = |s: i64| rfc3339(Utc::now() + chrono::Duration::seconds(s));
    let task = env
        .create_task(
            &user,
            json!({"title": unique("edit"), "due_at": in_secs(3600), "remind_at": in_secs(1800)}),
        )
        .await?;
    let id = task["id"].as_str().context("task id")?;
    let (status, _) = env
        .send(
            Method::PATCH,
            &format!("/api/v1/tasks/{id}"),
            &user,
            Some(&json!({"priority": "high"})),
        )
        .await?;
    ensure!(status == 200, "update answered {status}");
    let (status, _) = env
        .send(Method::DELETE, &format!("/api/v1/tasks/{id}"), &user, None)
        .await?;
    ensure!(status == 204 || status == 200, "delete answered {status}");
    let recurring = env
        .create_task(
            &user,
            json!({"title": unique("recurring"), "due_at": in_secs(3600), "recurrence_rule": "FREQ=DAILY"}),
        )
        .await?;
    let id = recurring["id"].as_str().context("task id")?;
    env.complete_task(&user, id).await?;
    // A reminder due in two seconds: a job, a trigger, a mail.
    env.create_task(
        &user,
        json!({"title": unique("reminder"), "due_at": in_secs(3600), "remind_at": in_secs(2)}),
    )
    .await?;
    let (status, _) = env
        .send(Method::GET, "/api/v1/tasks?status=all", &user, None)
        .await?;
    ensure!(status == 200, "list answered {status}");
    let missing = uuid::Uuid::now_v7();
    let (status, _) = env
        .send(
            Method::GET,
            &format!("/api/v1/tasks/{missing}"),
            &user,
            None,
        )
        .await?;
    ensure!(status == 404, "unknown task answered {status}");
    Ok(())
}

/// Outcomes the steady traffic never produces: a poison message (DROP, at the app and at its
/// sidecar) and a reminder job no handler knows (a trigger the sidecar counts failed).
async fn drive_failures(env: &Env) -> anyhow::Result<()> {
    let backend = pod_name(&env.pods("backend")?[0])?;
    let forward = PortForward::start(env, &backend, 3500).await?;
    // A task.created event whose data is no task snapshot: notification answers DROP.
    let poison = dapr::CloudEvent::new(
        uuid::Uuid::now_v7().to_string(),
        contracts::source("cluster-monitoring"),
        event_types::TASK_CREATED,
    )
    .with_json_data(&json!({"poison": "not a task snapshot"}))?;
    let status = env
        .http
        .post(forward.url(&format!(
            "/v1.0/publish/{}/{}",
            topics::PUBSUB,
            topics::TASK_EVENTS
        )))
        .header("content-type", "application/cloudevents+json")
        .body(serde_json::to_vec(&poison)?)
        .send()
        .await?
        .status();
    ensure!(
        status.is_success(),
        "publishing the poison answered {status}"
    );

    let notification = pod_name(&env.pods("notification")?[0])?;
    let forward = PortForward::start(env, &notification, 3500).await?;
    let client = dapr::DaprClient::new(dapr::ClientConfig {
        http_endpoint: forward.url(""),
        ..dapr::ClientConfig::default()
    })?;
    let job = dapr::Job::once_after(Duration::from_secs(1), json!({"by": "cluster_monitoring"}))
        .with_failure_policy(dapr::jobs::FailurePolicy::Drop);
    client
        .schedule_job(&unique("monitoring-unhandled"), &job)
        .await?;
    Ok(())
}

/// 4. Every panel query, template variable query and recording rule returns at least one
///    sample — no exemptions.
async fn every_dashboard_query_and_recording_rule_returns_data(env: &Env) -> anyhow::Result<()> {
    let api = env.prometheus()?;
    let queries = dashboards::all_queries(RATE_INTERVAL)?;
    let started = Instant::now();
    drive_requests(env).await?;
    drive_failures(env).await?;
    let pace = dashboards::Pace {
        deadline: ALL_DATA_DEADLINE,
        poll: POLL,
        redrive_every: REDRIVE_EVERY,
    };
    dashboards::every_query_returns_data(&api, &queries, &pace, || drive_requests(env)).await?;
    eprintln!(
        "all {} queries returned data in the cluster, {:?} after the traffic started",
        queries.len(),
        started.elapsed()
    );
    Ok(())
}

/// One container's working set (MiB) and CPU (millicores), per pod.
type Usage = BTreeMap<(String, String), (f64, f64)>;

/// Working set and CPU of every container of the release's running pods, from the kubelet's
/// cAdvisor series — the ones the sidecar-overhead dashboard shows. Pods replaced by earlier
/// scenarios keep series until they go stale; only the pods that exist now are kept.
async fn usage(env: &Env, api: &PrometheusApi, window: &str) -> anyhow::Result<Usage> {
    let namespace = &env.namespace;
    let mut live = BTreeSet::new();
    for component in SERVICES {
        for pod in env.pods(component)? {
            live.insert(pod_name(&pod)?);
        }
    }
    let mut out = Usage::new();
    let selector = format!("namespace=\"{namespace}\",container!~\"POD|\"");
    let memory = api
        .instant_query(&format!(
            "max by (pod, container) (container_memory_working_set_bytes{{{selector}}})"
        ))
        .await?;
    for s in &memory {
        out.entry((label(s, "pod"), label(s, "container")))
            .or_default()
            .0 = s.value / (1024.0 * 1024.0);
    }
    let cpu = api
        .instant_query(&format!(
            "sum by (pod, container) (rate(container_cpu_usage_seconds_total{{{selector}}}[{window}]))"
        ))
        .await?;
    for s in &cpu {
        out.entry((label(s, "pod"), label(s, "container")))
            .or_default()
            .1 = s.value * 1000.0;
    }
    out.retain(|(pod, _), _| live.contains(pod));
    Ok(out)
}

fn report(title: &str, usage: &Usage) {
    eprintln!("{title}");
    eprintln!(
        "  {:<48} {:>16} {:>12}",
        "pod / container", "working set MiB", "CPU mcores"
    );
    for ((pod, container), (mib, mcores)) in usage {
        eprintln!(
            "  {:<48} {mib:>16.1} {mcores:>12.1}",
            format!("{pod} / {container}")
        );
    }
}

/// Creates tasks with reminders and completes recurring ones from several clients until
/// `until`; answers how many requests succeeded.
async fn load(env: &Env, until: Instant) -> anyhow::Result<usize> {
    let mut clients = Vec::new();
    for client in 0..LOAD_CLIENTS {
        clients.push(async move {
            let user = unique(&format!("load{client}"));
            let mut done = 0usize;
            while Instant::now() < until {
                let soon = rfc3339(Utc::now() + chrono::Duration::seconds(5));
                let later = rfc3339(Utc::now() + chrono::Duration::seconds(3600));
                let task = env
                    .create_task(
                        &user,
                        json!({"title": unique("load"), "due_at": later, "remind_at": soon, "recurrence_rule": "FREQ=DAILY"}),
                    )
                    .await?;
                let id = task["id"].as_str().context("task id")?;
                env.complete_task(&user, id).await?;
                done += 2;
            }
            Ok::<_, anyhow::Error>(done)
        });
    }
    let mut total = 0;
    for done in futures_util::future::join_all(clients).await {
        total += done?;
    }
    Ok(total)
}

/// 5. daprd's working set and CPU beside each app container, idle and under load (creates with
///    reminders, recurring completions), from the kubelet's series; every sidecar stays under
///    the 128 MiB budget in both.
async fn sidecar_overhead_idle_and_under_load_stays_within_budget(env: &Env) -> anyhow::Result<()> {
    let api = env.prometheus()?;
    // Idle means no request for a whole rate window (the previous scenarios drive traffic); the
    // wait is the measurement's window, not a synchronisation.
    tokio::time::sleep(IDLE_FOR).await;
    let idle = usage(env, &api, &format!("{}s", IDLE_WINDOW.as_secs())).await?;
    report(
        &format!("idle (CPU over the last {IDLE_WINDOW:?} of {IDLE_FOR:?} without requests):"),
        &idle,
    );
    let started = Instant::now();
    let requests = load(env, started + LOAD_FOR).await?;
    let elapsed = started.elapsed();
    // The last scrape of the load window, not the quiet after it.
    let window = format!("{}s", LOAD_FOR.as_secs());
    let loaded = usage(env, &api, &window).await?;
    report(
        &format!(
            "under load ({requests} requests in {elapsed:.0?} from {LOAD_CLIENTS} clients, {:.0}/s; CPU over the load):",
            requests as f64 / elapsed.as_secs_f64()
        ),
        &loaded,
    );
    for (when, usage) in [("idle", &idle), ("under load", &loaded)] {
        let sidecars: Vec<_> = usage.iter().filter(|((_, c), _)| c == "daprd").collect();
        ensure!(
            sidecars.len() == TARGETS[1].1,
            "{when}: {} daprd containers measured, want {}",
            sidecars.len(),
            TARGETS[1].1
        );
        for ((pod, _), (mib, _)) in sidecars {
            ensure!(
                mib * 1024.0 * 1024.0 < SIDECAR_BUDGET_BYTES,
                "{when}: daprd of {pod} has a {mib:.1} MiB working set, over the 128 MiB budget"
            );
        }
    }
    Ok(())
}
