//! Releases on the running cluster, the way `docs/upgrades.md` tells an operator to ship them:
//! a zero-downtime upgrade under traffic and the rollback of two bad releases, each with the
//! figures an operator would want (failed requests, lost or duplicated effects, reminder
//! lateness, time to recover).
//!
//! The releases are the drills' images that `cluster up` imports (`cluster_images::DrillImages`)
//! and its values overlays: `next` (every service on a second image, a changed Dapr
//! Configuration), `unready` (an image that never becomes Ready) and `crash` (an image that exits
//! as soon as it starts), both on top of `next`.
//!
//! Runs after `cluster_e2e` in `cargo xtask test` and before `cluster_monitoring`, whose heavy
//! load leaves minutes of backlog; after it the release is `next`.

#![allow(clippy::print_stderr)] // The figures are part of the report.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use harness::wait;
use serde_json::{Value, json};
use support::cluster::{DEADLINE, Env, is_ready, pod_name, rfc3339, unique};

/// The services and their replicas in values-local.yaml.
const REPLICAS: [(&str, usize); 4] = [
    ("backend", 1),
    ("notification", 3),
    ("email-delivery", 1),
    ("recurring-task", 1),
];
/// Clients of the traffic, each writing at most once per [`PACE`].
const CLIENTS: usize = 3;
const PACE: Duration = Duration::from_millis(300);
/// How far ahead each reminder of the traffic is set: it fires while the release changes.
const REMIND_IN: chrono::Duration = chrono::Duration::seconds(10);
/// Traffic after a rollout has finished, so the new pods serve some of it alone.
const AFTER_ROLLOUT: Duration = Duration::from_secs(10);
/// The plan's rollback target is 30 minutes; ours is 2.
const ROLLBACK_TARGET: Duration = Duration::from_secs(120);
/// How long helm waits for the release that never becomes Ready before it reports failure.
const UNREADY_TIMEOUT: &str = "40s";
/// For `TodoServiceDown` to fire: its `for: 1m`, the crashing pods' start, a scrape and an
/// evaluation (5 s each on the node) — about 80 s here.
const PAGE_DEADLINE: Duration = Duration::from_secs(180);
/// A mail's lateness beyond which a reminder counts as late.
const LATE: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    support::cluster::run(harness::tests![
        an_upgrade_under_traffic_fails_no_request_and_loses_or_repeats_nothing,
        a_release_that_never_becomes_ready_is_held_back_and_rolled_back,
        a_release_that_crashes_pages_and_is_rolled_back,
    ])
}

/// The release's chart and values, and the drills' overlays, as `cluster up` recorded them.
struct Release {
    helm: PathBuf,
    name: String,
    chart: PathBuf,
    values: Vec<PathBuf>,
    next: PathBuf,
    crash: PathBuf,
    unready: PathBuf,
}

impl Release {
    fn of(env: &Env) -> anyhow::Result<Self> {
        let path = |v: &Value| -> anyhow::Result<PathBuf> {
            Ok(PathBuf::from(
                v.as_str().context("a path in the cluster state")?,
            ))
        };
        let release = &env.state["release"];
        Ok(Self {
            helm: path(&env.state["helm"])?,
            name: release["release"]
                .as_str()
                .context("release name")?
                .to_owned(),
            chart: path(&release["chart"])?,
            values: release["values"]
                .as_array()
                .context("release values")?
                .iter()
                .map(path)
                .collect::<anyhow::Result<_>>()?,
            next: path(&release["drills"]["next"])?,
            crash: path(&release["drills"]["crash"])?,
            unready: path(&release["drills"]["unready"])?,
        })
    }

    /// `helm <args>` against the node; its standard output, or its error output as the error.
    async fn helm(&self, env: &Env, args: &[&str]) -> anyhow::Result<String> {
        let out = tokio::process::Command::new(&self.helm)
            .env("KUBECONFIG", &env.kubeconfig)
            .args(["--namespace", &env.namespace])
            .args(args)
            .output()
            .await
            .context("running helm")?;
        if !out.status.success() {
            bail!(
                "helm {} failed: {}",
                args.first().copied().unwrap_or_default(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `helm upgrade` with the release's values and then `overlays`, and `extra` flags.
    async fn upgrade(&self, env: &Env, overlays: &[&Path], extra: &[&str]) -> anyhow::Result<()> {
        let chart = self.chart.to_string_lossy().into_owned();
        let mut args: Vec<String> = vec!["upgrade".into(), self.name.clone(), chart];
        for file in self
            .values
            .iter()
            .map(PathBuf::as_path)
            .chain(overlays.iter().copied())
        {
            args.push("-f".into());
            args.push(file.to_string_lossy().into_owned());
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.helm(env, &args).await.map(drop)
    }

    /// The revision `helm` has deployed.
    async fn revision(&self, env: &Env) -> anyhow::Result<u64> {
        let status: Value = serde_json::from_str(
            &self
                .helm(env, &["status", &self.name, "-o", "json"])
                .await?,
        )?;
        status["version"]
            .as_u64()
            .context("helm status without a version")
    }
}

/// The image every service's container names in `overlay` (`services.<s>.image.tag`), as the
/// pods show it: `<repository>:<tag>`.
fn images_of(env: &Env, overlay: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let values: Value = serde_json::from_slice(&std::fs::read(overlay)?)?;
    let mut images = BTreeMap::new();
    for (service, _) in REPLICAS {
        let tag = values["services"][service]["image"]["tag"]
            .as_str()
            .with_context(|| format!("no tag for {service} in {}", overlay.display()))?;
        let pod = env
            .pods(service)?
            .into_iter()
            .next()
            .with_context(|| format!("no {service} pod"))?;
        let current = app_image(&pod, service)?;
        let repository = current
            .rsplit_once(':')
            .map_or(current.as_str(), |(r, _)| r);
        images.insert(service.to_owned(), format!("{repository}:{tag}"));
    }
    Ok(images)
}

/// The image of the app container (named after its service) of `pod`.
fn app_image(pod: &Value, service: &str) -> anyhow::Result<String> {
    pod["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == service))
        .and_then(|c| c["image"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("no {service} container in a pod"))
}

/// Every service has exactly its replicas, each Ready and running `images[service]`; the old
/// release's pods are gone (terminating ones included).
async fn settled_on(env: &Env, images: &BTreeMap<String, String>) -> anyhow::Result<()> {
    wait::until(
        "every pod Ready on the expected images",
        DEADLINE,
        || async {
            for (service, replicas) in REPLICAS {
                let pods = env.pods(service)?;
                let on_image = pods
                    .iter()
                    .filter(|p| app_image(p, service).is_ok_and(|i| i == images[service]))
                    .filter(|p| is_ready(p) && p["metadata"]["deletionTimestamp"].is_null())
                    .count();
                if pods.len() != replicas || on_image != replicas {
                    return Ok::<_, anyhow::Error>(None);
                }
            }
            Ok(Some(()))
        },
    )
    .await?;
    Ok(())
}

/// What the traffic did: every accepted write and every failed request.
#[derive(Default)]
struct Record {
    /// Reminders set: marker → when it is due.
    reminders: Vec<(String, DateTime<Utc>)>,
    /// Recurring tasks completed: (user, title).
    completed: Vec<(String, String)>,
    /// Failed requests: when, and what happened.
    failures: Vec<(DateTime<Utc>, String)>,
}

/// Clients writing until `stop`: each alternately sets a reminder due in [`REMIND_IN`] and
/// completes a new daily task, at most once per [`PACE`]. A request that does not get its
/// expected answer is a failure, recorded, and the client goes on.
async fn traffic(env: &Env, stop: &AtomicBool, requests: &AtomicUsize) -> Record {
    let record = Mutex::new(Record::default());
    let record_ref = &record;
    let clients = (0..CLIENTS).map(|client| async move {
        let user = unique(&format!("upgrade{client}"));
        let mut pace = tokio::time::interval(PACE);
        let mut turn = 0usize;
        while !stop.load(Ordering::Relaxed) {
            pace.tick().await;
            turn += 1;
            let outcome = if turn.is_multiple_of(2) {
                let marker = unique("upg-reminder");
                let due = Utc::now() + REMIND_IN;
                let body = json!({
                    "title": marker,
                    "due_at": rfc3339(due + chrono::Duration::hours(1)),
                    "remind_at": rfc3339(due),
                });
                env.create_task(&user, body).await.map(|_| {
                    if let Ok(mut r) = record_ref.lock() {
                        r.reminders.push((marker, due));
                    }
                })
            } else {
                let title = unique("upg-daily");
                let body = json!({
                    "title": title,
                    "due_at": rfc3339(Utc::now() + chrono::Duration::hours(2)),
                    "recurrence_rule": "FREQ=DAILY",
                });
                match env.create_task(&user, body).await {
                    Ok(task) => match task["id"].as_str() {
                        Some(id) => env.complete_task(&user, id).await.map(|()| {
                            if let Ok(mut r) = record_ref.lock() {
                                r.completed.push((user.clone(), title));
                            }
                        }),
                        None => Err(anyhow::anyhow!("a created task without an id: {task}")),
                    },
                    Err(e) => Err(e),
                }
            };
            requests.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = outcome
                && let Ok(mut r) = record_ref.lock()
            {
                r.failures.push((Utc::now(), format!("{e:#}")));
            }
        }
    });
    futures_util::future::join_all(clients).await;
    record.into_inner().unwrap_or_default()
}

/// Runs `drive` while the traffic runs; stops the traffic when it ends (with at least
/// [`AFTER_ROLLOUT`] more of it when `drive` succeeded) and returns both.
async fn under_traffic<T>(
    env: &Env,
    drive: impl Future<Output = anyhow::Result<T>>,
) -> (Record, anyhow::Result<T>) {
    let stop = AtomicBool::new(false);
    let requests = AtomicUsize::new(0);
    let driver = async {
        // Traffic first: some of it must meet the old release.
        let warm = wait::until("the traffic under way", DEADLINE, || async {
            Ok::<_, std::convert::Infallible>(
                (requests.load(Ordering::Relaxed) >= CLIENTS * 4).then_some(()),
            )
        })
        .await;
        let result = match warm {
            Ok(()) => drive.await,
            Err(e) => Err(e.into()),
        };
        if result.is_ok() {
            tokio::time::sleep(AFTER_ROLLOUT).await;
        }
        stop.store(true, Ordering::Relaxed);
        result
    };
    let (record, result) = tokio::join!(traffic(env, &stop, &requests), driver);
    eprintln!(
        "traffic: {} requests from {CLIENTS} clients, {} reminders set, {} recurring tasks completed, {} failed",
        requests.load(Ordering::Relaxed),
        record.reminders.len(),
        record.completed.len(),
        record.failures.len()
    );
    (record, result)
}

/// Checks what the traffic's writes caused: no request failed, every reminder mailed exactly
/// once, every completion followed by exactly one next occurrence. Prints the lateness.
async fn nothing_lost_nothing_repeated(env: &Env, record: &Record) -> anyhow::Result<()> {
    let failures: Vec<_> = record.failures.iter().take(5).collect();
    ensure!(
        record.failures.is_empty(),
        "{} requests failed, first: {failures:?}",
        record.failures.len()
    );
    let last_due = record
        .reminders
        .iter()
        .map(|(_, due)| *due)
        .max()
        .context("the traffic set no reminder")?;
    let mails = wait::until("a mail for every reminder", DEADLINE, || async {
        let mails = mails_by_marker(&env.mail_dir, "upg-reminder-")?;
        let all = record
            .reminders
            .iter()
            .all(|(marker, _)| mails.contains_key(marker));
        // A second trigger of the same job would come within the Scheduler's retry (seconds):
        // the last reminder's due time plus that, before the count is final.
        let settled = Utc::now() > last_due + chrono::Duration::seconds(10);
        Ok::<_, anyhow::Error>((all && settled).then_some(mails))
    })
    .await?;
    let mut lateness = Vec::new();
    let mut late_ones = Vec::new();
    for (marker, due) in &record.reminders {
        let saved = &mails[marker];
        ensure!(saved.len() == 1, "{} mails for {marker}", saved.len());
        let saved: DateTime<Utc> = saved[0].into();
        let late = (saved - *due).num_milliseconds() as f64 / 1000.0;
        if late > LATE.as_secs_f64() {
            late_ones.push(format!(
                "due {} mailed {late:.1} s late",
                due.format("%H:%M:%S%.3f")
            ));
        }
        lateness.push(late);
    }
    late_ones.sort();
    for line in late_ones {
        eprintln!("  {line}");
    }
    lateness.sort_by(f64::total_cmp);
    let late = lateness.iter().filter(|l| **l > LATE.as_secs_f64()).count();
    eprintln!(
        "reminders: {} mailed once each; lateness p50 {:.2} s, p99 {:.2} s, max {:.2} s; {late} later than {LATE:?}",
        lateness.len(),
        percentile(&lateness, 0.50),
        percentile(&lateness, 0.99),
        lateness.last().copied().unwrap_or_default()
    );

    let mut by_user: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (user, title) in &record.completed {
        by_user.entry(user).or_default().push(title);
    }
    let mut occurrences = 0;
    for (user, titles) in by_user {
        let series = wait::until(
            "a next occurrence for every completion",
            DEADLINE,
            || async {
                let counts = title_counts(env, user).await?;
                let all = titles
                    .iter()
                    .all(|t| counts.get(*t).copied().unwrap_or(0) >= 2);
                Ok::<_, anyhow::Error>(all.then_some(counts))
            },
        )
        .await?;
        for title in titles {
            ensure!(
                series[title] == 2,
                "{title}: {} tasks in its series, want the completed one and one next",
                series[title]
            );
            occurrences += 1;
        }
    }
    eprintln!("recurring: {occurrences} completions, exactly one next occurrence each");
    Ok(())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The mails the SMTP sink saved, by the marker (`<prefix><uuid>`) each names, with when each
/// was saved.
fn mails_by_marker(dir: &Path, prefix: &str) -> anyhow::Result<BTreeMap<String, Vec<SystemTime>>> {
    let mut mails: BTreeMap<String, Vec<SystemTime>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(mails);
    };
    for entry in entries {
        let entry = entry?;
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let saved = entry.metadata()?.modified()?;
        // One marker per mail; the subject and the body both name it.
        if let Some(at) = text.find(prefix) {
            let marker: String = text[at..].chars().take(prefix.len() + 36).collect();
            mails.entry(marker).or_default().push(saved);
        }
    }
    Ok(mails)
}

/// How many of `user`'s tasks carry each title.
async fn title_counts(env: &Env, user: &str) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    let mut offset = 0;
    loop {
        let (status, page) = env
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/tasks?status=all&limit=200&offset={offset}"),
                user,
                None,
            )
            .await?;
        ensure!(status == 200, "listing tasks answered {status}: {page}");
        let items = page["items"].as_array().cloned().unwrap_or_default();
        for task in &items {
            if let Some(title) = task["title"].as_str() {
                *counts.entry(title.to_owned()).or_default() += 1;
            }
        }
        if items.len() < 200 {
            return Ok(counts);
        }
        offset += 200;
    }
}

/// The migration the next release brings, applied the way its first pod would: an added,
/// nullable column (what the previous release can live with, docs/upgrades.md) and its row in
/// sqlx's table, numbered one past the migrations of this build. The old release's pods go on
/// serving, and the next release's start, against it.
async fn migrate_as_the_next_release(env: &Env) -> anyhow::Result<i64> {
    use sqlx::ConnectOptions as _;
    let url = env.secret("backend-database-url", "backend-database-url")?;
    let ca = tempfile::NamedTempFile::new()?;
    std::fs::write(ca.path(), env.secret("postgres-ca", "ca.crt")?)?;
    // The pods read the CA at the chart's mount path; here it is a local file.
    let url = url.replace("/etc/todo-dapr/ca/ca.crt", &ca.path().to_string_lossy());
    let mut conn = url
        .parse::<sqlx::postgres::PgConnectOptions>()?
        .connect()
        .await
        .context("connecting to the release's PostgreSQL")?;
    let version = next_migration_version()?;
    sqlx::query("ALTER TABLE tasks ADD COLUMN IF NOT EXISTS added_by_the_next_release text")
        .execute(&mut conn)
        .await?;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, 'added by the next release', true, $2, 0) ON CONFLICT (version) DO NOTHING",
    )
    .bind(version)
    .bind(vec![0u8; 48])
    .execute(&mut conn)
    .await?;
    Ok(version)
}

/// One past the highest `NNNN_*.sql` in the backend's migrations.
fn next_migration_version() -> anyhow::Result<i64> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/backend/migrations");
    let mut highest = 0;
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(Ok(n)) = name.split('_').next().map(str::parse::<i64>) {
            highest = highest.max(n);
        }
    }
    Ok(highest + 1)
}

/// The annotation the chart derives from the Dapr Configuration: in each Deployment's pod
/// template, or on each pod.
const CONFIG_CHECKSUM: &str = "checksum/dapr-configuration";

/// The Configuration checksums the Deployments' pod templates carry.
fn template_checksums(env: &Env) -> anyhow::Result<BTreeSet<String>> {
    let deployments = env.kubectl_json(&["get", "deployments"])?;
    deployments["items"]
        .as_array()
        .context("no Deployments")?
        .iter()
        .map(|d| {
            d["spec"]["template"]["metadata"]["annotations"][CONFIG_CHECKSUM]
                .as_str()
                .map(str::to_owned)
                .context("a Deployment without the Configuration checksum")
        })
        .collect()
}

/// The Configuration checksums the release's pods carry.
fn pod_checksums(env: &Env) -> anyhow::Result<BTreeSet<String>> {
    let mut sums = BTreeSet::new();
    for (service, _) in REPLICAS {
        for pod in env.pods(service)? {
            let name = pod_name(&pod)?;
            sums.insert(
                pod["metadata"]["annotations"][CONFIG_CHECKSUM]
                    .as_str()
                    .with_context(|| format!("{name} has no Configuration checksum"))?
                    .to_owned(),
            );
        }
    }
    Ok(sums)
}

/// 1. While clients create tasks with reminders and complete recurring ones, `helm upgrade`
///    moves every service to the next release's image and a changed Dapr Configuration, and the
///    next release's migration is applied as the rollout starts, so old and new pods serve side
///    by side on the new schema. No request fails, every reminder is mailed exactly once, every
///    completion gets exactly one next occurrence; the lateness of the reminders is reported.
async fn an_upgrade_under_traffic_fails_no_request_and_loses_or_repeats_nothing(
    env: &Env,
) -> anyhow::Result<()> {
    let release = Release::of(env)?;
    let before = release.revision(env).await?;
    let old_sums = template_checksums(env)?;
    let next_images = images_of(env, &release.next)?;
    let (record, rolled) = under_traffic(env, async {
        let version = migrate_as_the_next_release(env).await?;
        let started = Instant::now();
        eprintln!("upgrade: starts at {}", Utc::now().format("%H:%M:%S%.3f"));
        release
            .upgrade(env, &[&release.next], &["--wait", "--timeout", "300s"])
            .await?;
        settled_on(env, &next_images).await?;
        eprintln!("upgrade: settled at {}", Utc::now().format("%H:%M:%S%.3f"));
        Ok((version, started.elapsed()))
    })
    .await;
    let (version, took) = rolled?;
    eprintln!(
        "upgrade: revision {before} → {}, every pod replaced in {took:.0?}; migration {version} applied as it started",
        release.revision(env).await?
    );
    // Every sidecar started with the changed Configuration (they read it only at start).
    let new_sums = pod_checksums(env)?;
    ensure!(
        new_sums.len() == 1 && new_sums.is_disjoint(&old_sums),
        "pods carry the Configuration checksums {new_sums:?}; before the upgrade: {old_sums:?}"
    );
    let sampling = env.kubectl(&[
        "get",
        "configurations.dapr.io",
        "-o",
        "jsonpath={.items[0].spec.tracing.samplingRate}",
    ])?;
    ensure!(sampling == "0.5", "the Configuration samples {sampling}");
    nothing_lost_nothing_repeated(env, &record).await
}

/// Rolls back to `revision` and waits until every pod is Ready on `images` and the API answers;
/// returns how long that took.
async fn roll_back(
    env: &Env,
    release: &Release,
    revision: u64,
    images: &BTreeMap<String, String>,
) -> anyhow::Result<Duration> {
    let decided = Instant::now();
    release
        .helm(
            env,
            &[
                "rollback",
                &release.name,
                &revision.to_string(),
                "--wait",
                "--timeout",
                "180s",
            ],
        )
        .await?;
    settled_on(env, images).await?;
    let (status, _) = env
        .send(reqwest::Method::GET, "/api/v1/tasks", "upgrade-probe", None)
        .await?;
    ensure!(
        status == 200,
        "the API answered {status} after the rollback"
    );
    Ok(decided.elapsed())
}

/// The pods of the release that are not Ready, by service.
fn unready_pods(env: &Env) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for (service, _) in REPLICAS {
        for pod in env.pods(service)? {
            if !is_ready(&pod) {
                names.push(pod_name(&pod)?);
            }
        }
    }
    Ok(names)
}

/// 2. A release whose pods never become Ready: the rolling update starts one new pod per
///    service and removes no old one, so traffic never notices; `helm upgrade --wait` reports
///    the failure, and `helm rollback` to the last good revision restores the release within
///    [`ROLLBACK_TARGET`], timed from that report.
async fn a_release_that_never_becomes_ready_is_held_back_and_rolled_back(
    env: &Env,
) -> anyhow::Result<()> {
    let release = Release::of(env)?;
    let good = release.revision(env).await?;
    let good_images = images_of(env, &release.next)?;
    let (record, recovered) = under_traffic(env, async {
        let started = Instant::now();
        let upgrade = release
            .upgrade(
                env,
                &[&release.next, &release.unready],
                &["--wait", "--timeout", UNREADY_TIMEOUT],
            )
            .await;
        ensure!(upgrade.is_err(), "helm accepted a release that is never Ready");
        let held = started.elapsed();
        let stuck = unready_pods(env)?;
        ensure!(
            stuck.len() >= REPLICAS.len(),
            "expected a new, unready pod per service, found {stuck:?}"
        );
        eprintln!("unready release: helm gave up after {held:.0?}; {stuck:?} never Ready, every old pod kept");
        roll_back(env, &release, good, &good_images).await
    })
    .await;
    let took = recovered?;
    eprintln!(
        "unready release: rolled back to revision {good} in {took:.1?} (decision → every pod Ready on it, API answering)"
    );
    ensure!(
        took < ROLLBACK_TARGET,
        "the rollback took {took:?}, over {ROLLBACK_TARGET:?}"
    );
    nothing_lost_nothing_repeated(env, &record).await
}

/// 3. A release whose services exit as soon as they start: the new pods crash-loop while the old
///    ones serve, Prometheus raises `TodoServiceDown` for them (the page an operator would
///    get), and `helm rollback` restores the release within [`ROLLBACK_TARGET`] of the page;
///    the alert then clears.
async fn a_release_that_crashes_pages_and_is_rolled_back(env: &Env) -> anyhow::Result<()> {
    let release = Release::of(env)?;
    let prometheus = env.prometheus()?;
    let good = release.revision(env).await?;
    let good_images = images_of(env, &release.next)?;
    let crash_images = images_of(env, &release.crash)?;
    let firing = r#"ALERTS{alertname="TodoServiceDown", alertstate="firing", job="todo-dapr"}"#;
    let (record, recovered) = under_traffic(env, async {
        let started = Instant::now();
        release
            .upgrade(env, &[&release.next, &release.crash], &[])
            .await?;
        // The page: the alert fires for a pod of the crashing release.
        let crash_pods = || -> anyhow::Result<Vec<String>> {
            let mut names = Vec::new();
            for (service, _) in REPLICAS {
                for pod in env.pods(service)? {
                    if app_image(&pod, service)? == crash_images[service] {
                        names.push(pod_name(&pod)?);
                    }
                }
            }
            Ok(names)
        };
        let paged = wait::until(
            "TodoServiceDown firing for a crashing pod",
            PAGE_DEADLINE,
            || async {
                let crashing = crash_pods()?;
                let alerts = prometheus.instant_query(firing).await?;
                Ok::<_, anyhow::Error>(
                    alerts
                        .iter()
                        .filter_map(|a| a.labels.get("pod"))
                        .find(|pod| crashing.contains(pod))
                        .cloned(),
                )
            },
        )
        .await?;
        eprintln!(
            "crashing release: TodoServiceDown fired for {paged} {:.0?} after the upgrade",
            started.elapsed()
        );
        roll_back(env, &release, good, &good_images).await
    })
    .await;
    let took = recovered?;
    eprintln!(
        "crashing release: rolled back to revision {good} in {took:.1?} (page → every pod Ready on it, API answering)"
    );
    ensure!(
        took < ROLLBACK_TARGET,
        "the rollback took {took:?}, over {ROLLBACK_TARGET:?}"
    );
    wait::until("TodoServiceDown cleared", DEADLINE, || async {
        Ok::<_, anyhow::Error>(
            prometheus
                .instant_query(firing)
                .await?
                .is_empty()
                .then_some(()),
        )
    })
    .await?;
    nothing_lost_nothing_repeated(env, &record).await
}
