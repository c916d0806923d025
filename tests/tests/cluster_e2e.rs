//! End-to-end scenarios on a real Kubernetes node: todo-dapr installed with its Helm chart next
//! to Dapr's control plane (mTLS on), reached only through the cluster (`support/cluster.rs`).
//! `cargo xtask test` (or `cargo xtask cluster up`) starts the node, installs Dapr's chart and
//! ours with OKE-shaped values; without it, every scenario is listed as ignored.
//!
//! Scenarios run one at a time: one deletes a notification pod, another restarts a service with
//! a broken Component.

mod support;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, ensure};
use chrono::{DateTime, Utc};
use harness::wait;
use serde_json::{Value, json};
use support::cluster::{
    DEADLINE, Env, PortForward, container_names, is_ready, pod_name, rfc3339, unique,
};

/// How late a reminder may arrive, from `remind_at` to the sink (the sidecar-level suite holds
/// 5 s; the cluster adds the Scheduler's and the pods' scheduling on a loaded node).
const MAX_LATENESS: Duration = Duration::from_secs(15);
/// The replicas `helm/todo-dapr/values-local.yaml` asks for.
const REPLICAS: [(&str, usize); 4] = [
    ("backend", 1),
    ("notification", 3),
    ("email-delivery", 1),
    ("recurring-task", 1),
];
/// Dapr's control plane: the `app` label of each of its Deployments/StatefulSets.
const CONTROL_PLANE: [&str; 5] = [
    "dapr-operator",
    "dapr-sidecar-injector",
    "dapr-sentry",
    "dapr-placement-server",
    "dapr-scheduler-server",
];

fn main() -> ExitCode {
    let tests = harness::tests![
        every_pod_is_ready_with_an_injected_sidecar,
        a_reminder_set_over_rest_is_mailed_once_on_time,
        completing_a_recurring_task_yields_one_next_occurrence,
        the_secret_store_serves_granted_secrets_and_refuses_others,
        dapr_resources_are_loaded_by_the_sidecars,
        deleting_a_notification_pod_while_reminders_fire_loses_and_duplicates_none,
        a_broken_component_is_reported_not_ignored,
    ];
    support::cluster::run(tests)
}

/// 1. Every pod of the release is Ready with a `daprd` container the injector added, and so is
///    every part of Dapr's control plane, which runs with mTLS on.
async fn every_pod_is_ready_with_an_injected_sidecar(env: &Env) -> anyhow::Result<()> {
    for (component, replicas) in REPLICAS {
        let pods = env.pods(component)?;
        ensure!(
            pods.len() == replicas,
            "{component}: {} pods, expected {replicas}",
            pods.len()
        );
        for pod in &pods {
            let name = pod_name(pod)?;
            ensure!(is_ready(pod), "{name} is not Ready: {}", pod["status"]);
            let containers = container_names(pod);
            ensure!(
                containers.contains(&"daprd".to_owned()),
                "{name} has no injected daprd: {containers:?}"
            );
        }
    }
    let control = env.kubectl_json(&["--namespace", "dapr-system", "get", "pods"])?;
    let control = control["items"].as_array().cloned().unwrap_or_default();
    for app in CONTROL_PLANE {
        let pod = control
            .iter()
            .find(|p| p["metadata"]["labels"]["app"] == app)
            .with_context(|| format!("no {app} pod in dapr-system"))?;
        ensure!(is_ready(pod), "{app} is not Ready");
    }
    // mTLS between sidecars and the control plane, as in production.
    let mtls = env.kubectl(&[
        "--namespace",
        "dapr-system",
        "get",
        "configurations.dapr.io",
        "daprsystem",
        "-o",
        "jsonpath={.spec.mtls.enabled}",
    ])?;
    ensure!(mtls.trim() == "true", "Dapr's mTLS is {mtls:?}");
    Ok(())
}

/// 2. A task created over REST (through the backend's Service) with `remind_at` in 20 s: the
///    reminder is mailed once, not early and not late.
async fn a_reminder_set_over_rest_is_mailed_once_on_time(env: &Env) -> anyhow::Result<()> {
    let title = unique("call-mom");
    let remind_at = Utc::now() + chrono::Duration::seconds(20);
    let sent_before = env.emails_sent().await?;
    env.create_task(
        &unique("k1"),
        json!({"title": title, "due_at": rfc3339(remind_at + chrono::Duration::hours(1)), "remind_at": rfc3339(remind_at)}),
    )
    .await?;
    let mails = wait::until("the reminder mail", DEADLINE, || async {
        let mails = env.mails_about(&title);
        Ok::<_, std::convert::Infallible>((!mails.is_empty()).then_some(mails))
    })
    .await?;
    let saved = DateTime::<Utc>::from(mails[0].1);
    ensure!(
        saved >= remind_at,
        "mailed before remind_at ({saved} < {remind_at})"
    );
    let lateness = (saved - remind_at).to_std().unwrap_or_default();
    ensure!(
        lateness <= MAX_LATENESS,
        "mailed {lateness:?} after remind_at"
    );
    // Positive evidence of one delivery: email-delivery counted exactly one more send, and the
    // sink holds one mail about the task.
    let sent_after = env.emails_sent().await?;
    ensure!(
        (sent_after - sent_before - 1.0).abs() < f64::EPSILON,
        "email-delivery sent {} mails, expected 1",
        sent_after - sent_before
    );
    let mails = env.mails_about(&title);
    ensure!(mails.len() == 1, "{} mails about {title}", mails.len());
    Ok(())
}

/// 3. Completing a daily recurring task creates exactly one next occurrence, a day later.
async fn completing_a_recurring_task_yields_one_next_occurrence(env: &Env) -> anyhow::Result<()> {
    let user = unique("k3");
    let title = unique("water-plants");
    let created_before = env
        .counter("recurring-task", "todo_occurrences_created_total", "")
        .await?;
    let task = env
        .create_task(
            &user,
            json!({"title": title, "due_at": "2030-03-10T08:30:00Z", "recurrence_rule": "FREQ=DAILY"}),
        )
        .await?;
    let first = task["id"].as_str().context("task id")?.to_owned();
    env.complete_task(&user, &first).await?;
    let next = wait::until("the next occurrence", DEADLINE, || async {
        let (_, list) = env
            .send(
                reqwest::Method::GET,
                "/api/v1/tasks?status=pending",
                &user,
                None,
            )
            .await?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        Ok::<_, anyhow::Error>(items.into_iter().find(|t| t["title"] == title.as_str()))
    })
    .await?;
    ensure!(
        next["due_at"]
            .as_str()
            .is_some_and(|d| d.starts_with("2030-03-11T08:30:00")),
        "next occurrence due {}",
        next["due_at"]
    );
    // Positive evidence of once: recurring-task counted one creation, and the user has exactly
    // two tasks with that title (the completed one and its successor).
    let created = wait::until(
        "recurring-task counting the occurrence",
        DEADLINE,
        || async {
            let n = env
                .counter("recurring-task", "todo_occurrences_created_total", "")
                .await?;
            Ok::<_, anyhow::Error>((n > created_before).then_some(n))
        },
    )
    .await?;
    ensure!(
        (created - created_before - 1.0).abs() < f64::EPSILON,
        "{} occurrences created",
        created - created_before
    );
    let (_, all) = env
        .send(reqwest::Method::GET, "/api/v1/tasks", &user, None)
        .await?;
    let series = all["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|t| t["title"] == title.as_str())
                .count()
        })
        .unwrap_or_default();
    ensure!(series == 2, "{series} tasks titled {title}, expected 2");
    Ok(())
}

/// Who refuses a secret a service was not granted.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    /// The Dapr Configuration's secret scope: a name no service lists (403 from daprd).
    Policy,
    /// Kubernetes RBAC: a name another service lists, outside this service's Role (the store's
    /// `get` is forbidden for the pod's ServiceAccount).
    Rbac,
}

/// 4. Through its sidecar's Kubernetes secret store, each service reads the Secrets its Role
///    and the Dapr Configuration grant it, and is refused the others — by the layer that
///    should refuse each.
async fn the_secret_store_serves_granted_secrets_and_refuses_others(
    env: &Env,
) -> anyhow::Result<()> {
    let backend = pod_name(&env.pods("backend")?[0])?;
    let email = pod_name(&env.pods("email-delivery")?[0])?;
    for (pod, secret, refusal) in [
        (&backend, "jwt-secret", None),
        (&backend, "backend-database-url", None),
        (&backend, "kafka-sasl", Some(Refusal::Policy)),
        (&email, "jwt-secret", Some(Refusal::Rbac)),
        (&email, "backend-database-url", Some(Refusal::Rbac)),
    ] {
        let forward = PortForward::start(env, pod, 3500).await?;
        let resp = env
            .http
            .get(forward.url(&format!("/v1.0/secrets/secretstore/{secret}")))
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body = resp.text().await?;
        match refusal {
            None => {
                ensure!(status == 200, "{pod} reading {secret}: {status} {body}");
                let value: Value = serde_json::from_str(&body)?;
                ensure!(
                    value.get(secret).is_some(),
                    "{pod} got {secret} without its key"
                );
            }
            Some(Refusal::Policy) => ensure!(
                status == 403 && body.contains("ERR_PERMISSION_DENIED"),
                "{pod} reading {secret} should meet Dapr's secret scope: {status} {body}"
            ),
            Some(Refusal::Rbac) => ensure!(
                status == 500
                    && body.contains("is forbidden")
                    && body.contains("cannot get resource"),
                "{pod} reading {secret} should meet its Role: {status} {body}"
            ),
        }
        if refusal.is_some() {
            ensure!(
                !body.contains(&env.jwt_key),
                "the refusal leaked the secret"
            );
        }
    }
    Ok(())
}

/// 5. The chart's Subscriptions, Resiliency and Configuration, served by Dapr's operator, are
///    what the sidecars run with.
async fn dapr_resources_are_loaded_by_the_sidecars(env: &Env) -> anyhow::Result<()> {
    for kind in [
        "components.dapr.io",
        "subscriptions.dapr.io",
        "resiliencies.dapr.io",
        "configurations.dapr.io",
    ] {
        let list = env.kubectl_json(&["get", kind])?;
        ensure!(
            list["items"].as_array().is_some_and(|i| !i.is_empty()),
            "no {kind} in the release's namespace"
        );
    }
    let notification = pod_name(&env.pods("notification")?[0])?;
    let forward = PortForward::start(env, &notification, 3500).await?;
    let metadata: Value = env
        .http
        .get(forward.url("/v1.0/metadata"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let components: Vec<&str> = metadata["components"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    // The chart scopes each Component to the apps that use it: notification reads no secrets.
    for wanted in ["pubsub", "statestore"] {
        ensure!(
            components.contains(&wanted),
            "notification's sidecar has {components:?}"
        );
    }
    ensure!(
        !components.contains(&"secretstore"),
        "notification's sidecar loaded the secretstore it is not scoped to: {components:?}"
    );
    let topics: Vec<&str> = metadata["subscriptions"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["topic"].as_str()).collect())
        .unwrap_or_default();
    ensure!(
        topics.contains(&"task-events"),
        "notification subscribes to {topics:?}"
    );
    let logs = env.kubectl(&["logs", &notification, "-c", "daprd"])?;
    let resiliency = env.kubectl(&["get", "resiliencies.dapr.io", "-o", "name"])?;
    let resiliency = resiliency
        .trim()
        .rsplit('/')
        .next()
        .context("the release's Resiliency")?;
    ensure!(
        logs.contains(&format!("Loading Resiliency configuration: {resiliency}")),
        "notification's sidecar never loaded the Resiliency {resiliency}"
    );
    Ok(())
}

/// 6. Twelve reminders due over the next half minute; a notification pod is deleted (no grace)
///    while they fire. Every reminder is mailed exactly once.
async fn deleting_a_notification_pod_while_reminders_fire_loses_and_duplicates_none(
    env: &Env,
) -> anyhow::Result<()> {
    let user = unique("k6");
    let batch = unique("batch");
    let start = Utc::now() + chrono::Duration::seconds(10);
    let sent_before = env.emails_sent().await?;
    let mut titles = Vec::new();
    for n in 0..12 {
        let title = format!("{batch}-{n:02}");
        let remind_at = start + chrono::Duration::seconds(2 * n);
        env.create_task(
            &user,
            json!({"title": title, "due_at": rfc3339(remind_at + chrono::Duration::hours(1)), "remind_at": rfc3339(remind_at)}),
        )
        .await?;
        titles.push(title);
    }
    wait::until("the first reminders of the batch", DEADLINE, || async {
        Ok::<_, std::convert::Infallible>((env.mails_about(&batch).len() >= 2).then_some(()))
    })
    .await?;
    let victim = pod_name(&env.pods("notification")?[0])?;
    env.kubectl(&[
        "delete",
        "pod",
        &victim,
        "--grace-period=0",
        "--force",
        "--wait=false",
    ])?;
    wait::until("12 reminder mails", DEADLINE * 2, || async {
        Ok::<_, std::convert::Infallible>((env.mails_about(&batch).len() >= 12).then_some(()))
    })
    .await?;
    let mails = env.mails_about(&batch);
    let mut per_task: BTreeMap<&str, usize> = BTreeMap::new();
    for (text, _) in &mails {
        if let Some(title) = titles.iter().find(|t| text.contains(t.as_str())) {
            *per_task.entry(title).or_default() += 1;
        }
    }
    ensure!(
        per_task.len() == 12,
        "{} of 12 tasks got a mail",
        per_task.len()
    );
    ensure!(
        per_task.values().all(|n| *n == 1),
        "duplicates: {per_task:?}"
    );
    let sent_after = env.emails_sent().await?;
    ensure!(
        (sent_after - sent_before - 12.0).abs() < f64::EPSILON,
        "email-delivery sent {} mails for 12 reminders",
        sent_after - sent_before
    );
    // The Deployment replaces the pod; the scenarios after this one expect three again.
    wait::until("three Ready notification pods", DEADLINE, || async {
        let pods = env.pods("notification")?;
        let ready = pods.iter().filter(|p| is_ready(p)).count();
        Ok::<_, anyhow::Error>((ready == 3 && pods.len() == 3).then_some(()))
    })
    .await?;
    Ok(())
}

/// 7. A Component the sidecar cannot initialise (a state store whose database does not answer)
///    scoped to recurring-task: its sidecar reports it (`INIT_COMPONENT_FAILURE`) and the pod
///    is not Ready, rather than running without it — with the chart's hot reload, the running
///    pod as well as a restarted one. Removing it brings the service back.
async fn a_broken_component_is_reported_not_ignored(env: &Env) -> anyhow::Result<()> {
    let component = "broken-store";
    let manifest = json!({
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": { "name": component, "namespace": env.namespace },
        "spec": {
            "type": "state.postgresql",
            "version": "v2",
            "metadata": [
                { "name": "connectionString", "value": "host=192.0.2.255 port=1 user=nobody connect_timeout=2 sslmode=disable" },
            ],
        },
        "scopes": ["recurring-task"],
    });
    let file = env.log_dir.join("broken-component.json");
    std::fs::write(&file, manifest.to_string())?;
    env.kubectl(&["apply", "-f", &file.display().to_string()])?;
    let deployment = env
        .kubectl(&[
            "get",
            "deployment",
            "-l",
            "app.kubernetes.io/component=recurring-task",
            "-o",
            "name",
        ])?
        .trim()
        .to_owned();
    let before: Vec<String> = env
        .pods("recurring-task")?
        .iter()
        .map(pod_name)
        .collect::<anyhow::Result<_>>()?;
    let result = async {
        env.kubectl(&["rollout", "restart", &deployment])?;
        // Both at once, on one pod: its sidecar reports the component and it is not Ready (the
        // report comes first; readiness follows when the probe notices the exit).
        wait::until(
            "a recurring-task pod whose sidecar reports the component and that is not Ready",
            DEADLINE,
            || async {
                for pod in env.pods("recurring-task")? {
                    if is_ready(&pod) {
                        continue;
                    }
                    let name = pod_name(&pod)?;
                    // With the chart's hot reload on, running sidecars load it (and fail) too.
                    let logs = env
                        .kubectl(&["logs", &name, "-c", "daprd", "--tail", "200"])
                        .unwrap_or_default()
                        + &env
                            .kubectl(&["logs", &name, "-c", "daprd", "--previous", "--tail", "200"])
                            .unwrap_or_default();
                    if logs.contains(&format!("Failed to init component {component}"))
                        && logs.contains("INIT_COMPONENT_FAILURE")
                    {
                        return Ok::<_, anyhow::Error>(Some(()));
                    }
                }
                Ok(None)
            },
        )
        .await?;
        anyhow::Ok(())
    }
    .await;
    env.kubectl(&["delete", "component", component])?;
    let broken: Vec<String> = env
        .pods("recurring-task")?
        .iter()
        .map(pod_name)
        .collect::<anyhow::Result<_>>()?;
    env.kubectl(&["rollout", "restart", &deployment])?;
    // Back to one Ready pod that is neither the original nor one started with the component.
    wait::until(
        "recurring-task Ready again without the component",
        DEADLINE,
        || async {
            let pods = env.pods("recurring-task")?;
            let fresh = pods
                .iter()
                .all(|p| pod_name(p).is_ok_and(|n| !before.contains(&n) && !broken.contains(&n)));
            Ok::<_, anyhow::Error>((pods.len() == 1 && fresh && is_ready(&pods[0])).then_some(()))
        },
    )
    .await?;
    result
}
