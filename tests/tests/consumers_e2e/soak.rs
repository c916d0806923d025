//! The soak: a steady mixed workload through the whole local stack for `TODO_SOAK_MINUTES`, one
//! fault at a time on a schedule drawn from `TODO_SOAK_SEED`, then a check of the invariants
//! over everything that was accepted:
//!
//! - every accepted write is published (its `task.created` reaches the observer);
//! - every accepted reminder is mailed exactly once, and no job is left that could mail again;
//! - every accepted completion of a daily task has exactly one next occurrence;
//! - every answer is a success or a 503 `UNAVAILABLE` (only while PostgreSQL is down);
//! - no process's resident memory grows without bound (sampled after the warm-up and at the end).
//!
//! `cargo xtask test` runs two minutes of it on the main broker profile; `cargo xtask soak
//! --minutes N --seed S` runs it for as long as asked. Unset, the scenario is not part of the
//! suite.

use std::collections::BTreeMap;
use std::sync::Mutex as SyncMutex;
use std::time::Duration;

use anyhow::{Context, ensure};
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::time::Instant;

use super::{DEADLINE, Env, at, reminder_job_becomes, rfc3339, series, unique};
use harness::wait;

use harness::suite::{SOAK_MINUTES_ENV as MINUTES_ENV, SOAK_SEED_ENV as SEED_ENV};
/// Concurrent clients, each with its own pace.
const CLIENTS: u64 = 3;
/// Pause between one client's operations.
const PACE: Duration = Duration::from_millis(300);
/// No fault in the first and the last stretch of the run: the warm-up sample of memory, and a
/// quiet end before the checks.
const QUIET: Duration = Duration::from_secs(15);

/// The soak's settings, from the environment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    duration: Duration,
    seed: u64,
}

impl Settings {
    /// `None` when `TODO_SOAK_MINUTES` is unset: the soak is not registered.
    pub(crate) fn from_env() -> anyhow::Result<Option<Self>> {
        let Some(minutes) = std::env::var_os(MINUTES_ENV) else {
            return Ok(None);
        };
        let minutes: f64 = minutes
            .to_string_lossy()
            .parse()
            .with_context(|| format!("{MINUTES_ENV} must be a number of minutes"))?;
        ensure!(
            minutes.is_finite() && minutes >= 1.0,
            "{MINUTES_ENV} must be at least 1 (the faults need the time)"
        );
        let seed = match std::env::var(SEED_ENV) {
            Ok(seed) => seed
                .parse()
                .with_context(|| format!("{SEED_ENV} must be an unsigned integer"))?,
            Err(_) => 1,
        };
        Ok(Some(Self {
            duration: Duration::from_secs_f64(minutes * 60.0),
            seed,
        }))
    }
}

/// One fault: what is taken down.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// PostgreSQL (the tasks and Dapr's state store) stopped.
    Postgres,
    /// The Dapr Scheduler stopped.
    Scheduler,
    /// The broker killed (`SIGKILL`).
    Broker,
    /// One notification replica's sidecar killed; its app keeps running.
    NotificationSidecar(usize),
    /// email-delivery's sidecar killed.
    EmailSidecar,
    /// The SMTP server stops listening.
    Smtp,
}

impl Fault {
    const KINDS: usize = 6;

    fn nth(n: usize, replica: usize) -> Self {
        match n % Self::KINDS {
            0 => Self::Postgres,
            1 => Self::Scheduler,
            2 => Self::Broker,
            3 => Self::NotificationSidecar(replica),
            4 => Self::EmailSidecar,
            _ => Self::Smtp,
        }
    }

    async fn inject(self, env: &Env) -> anyhow::Result<()> {
        match self {
            Self::Postgres => env.infra.postgres.stop(),
            Self::Scheduler => env.infra.scheduler.stop(),
            Self::Broker => env.infra.broker.kill(),
            Self::NotificationSidecar(i) => {
                env.notification.lock().await[i].daprd.process_mut().kill();
            }
            Self::EmailSidecar => env.email.lock().await.daprd.process_mut().kill(),
            Self::Smtp => env.smtp.lock().await.pause(),
        }
        Ok(())
    }

    async fn recover(self, env: &Env) -> anyhow::Result<()> {
        match self {
            Self::Postgres => env.infra.postgres.start_again().await,
            Self::Scheduler => env.infra.scheduler.start_again().await,
            Self::Broker => env.infra.broker.start_again().await,
            Self::NotificationSidecar(i) => {
                let mut pods = env.notification.lock().await;
                pods[i]
                    .daprd
                    .restart(&env.infra.bins, env.infra.log_dir())
                    .await?;
                pods[i].daprd.wait_app_channel(DEADLINE).await
            }
            Self::EmailSidecar => {
                let mut email = env.email.lock().await;
                email
                    .daprd
                    .restart(&env.infra.bins, env.infra.log_dir())
                    .await?;
                email.daprd.wait_app_channel(DEADLINE).await
            }
            Self::Smtp => Ok(env.smtp.lock().await.resume().await?),
        }
    }
}

/// A fault at `start` (from the beginning of the run), lasting `length`.
#[derive(Clone, Copy, Debug)]
struct Planned {
    start: Duration,
    length: Duration,
    fault: Fault,
}

/// The fault schedule: every kind in a seeded order, again and again, 3–8 s each with 8–15 s
/// between, none in the quiet stretches at either end.
fn schedule(settings: Settings) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let mut order: Vec<usize> = (0..Fault::KINDS).collect();
    let mut plan = Vec::new();
    let mut t = QUIET;
    let end = settings.duration.saturating_sub(QUIET);
    let mut i = 0;
    loop {
        if i % order.len() == 0 {
            // A fresh seeded shuffle per round, so every kind comes up once per round.
            order.shuffle(&mut rng);
        }
        let length = Duration::from_millis(rng.random_range(3_000..8_000));
        if t + length > end {
            return plan;
        }
        let fault = Fault::nth(order[i % order.len()], rng.random_range(0..3));
        plan.push(Planned {
            start: t,
            length,
            fault,
        });
        t += length + Duration::from_millis(rng.random_range(8_000..15_000));
        i += 1;
    }
}

/// What the clients had accepted, and what they were refused.
#[derive(Default)]
struct Ledger {
    requests: usize,
    unavailable: usize,
    unexpected: Vec<String>,
    reminders: BTreeMap<String, (String, DateTime<Utc>)>,
    completions: Vec<(String, String)>,
    created: Vec<String>,
}

/// The answer a client got, sorted: accepted, refused while the database was down, or wrong.
enum Answer {
    Accepted(serde_json::Value),
    Unavailable,
}

impl Ledger {
    fn note(
        &mut self,
        what: &str,
        status: u16,
        body: serde_json::Value,
        ok: u16,
    ) -> Option<Answer> {
        self.requests += 1;
        if status == ok {
            return Some(Answer::Accepted(body));
        }
        if status == 503 && body["code"] == "UNAVAILABLE" {
            self.unavailable += 1;
            return Some(Answer::Unavailable);
        }
        self.unexpected.push(format!("{what}: {status} {body}"));
        None
    }
}

/// One client: until `end`, every [`PACE`] a reminder (half the time), a daily task completed
/// at once, or a task created and renamed.
async fn client(
    env: &Env,
    n: u64,
    seed: u64,
    end: Instant,
    ledger: &SyncMutex<Ledger>,
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(n));
    let user = unique(&format!("soak{n}"));
    // Every use is one statement, so no guard is alive across an await or a second lock.
    let lock = || {
        ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    let mut i = 0u32;
    while Instant::now() < end {
        i += 1;
        let paced = Instant::now() + PACE;
        let title = unique(&format!("soak-{n}-{i}"));
        match rng.random_range(0..4) {
            0 | 1 => {
                let remind_at = at(Duration::from_millis(rng.random_range(3_000..15_000)));
                let body = json!({"title": title, "due_at": rfc3339(at(Duration::from_secs(3600))), "remind_at": rfc3339(remind_at)});
                let (status, task) = env
                    .send(reqwest::Method::POST, "/api/v1/tasks", &user, Some(&body))
                    .await?;
                let answer = lock().note("create with reminder", status, task, 201);
                if let Some(Answer::Accepted(task)) = answer {
                    let id = task["id"].as_str().context("task id")?.to_owned();
                    let mut l = lock();
                    l.created.push(id.clone());
                    l.reminders.insert(title, (id, remind_at));
                }
            }
            2 => {
                // Its own user: the series check lists the user's tasks.
                let owner = unique("soak-series");
                let body = json!({"title": title, "due_at": rfc3339(at(Duration::from_secs(3600))), "recurrence_rule": "FREQ=DAILY"});
                let (status, task) = env
                    .send(reqwest::Method::POST, "/api/v1/tasks", &owner, Some(&body))
                    .await?;
                let answer = lock().note("create daily", status, task, 201);
                if let Some(Answer::Accepted(task)) = answer {
                    let id = task["id"].as_str().context("task id")?.to_owned();
                    lock().created.push(id.clone());
                    let path = format!("/api/v1/tasks/{id}/complete");
                    let (status, done) = env
                        .send(reqwest::Method::POST, &path, &owner, Some(&json!({})))
                        .await?;
                    let answer = lock().note("complete", status, done, 200);
                    if let Some(Answer::Accepted(_)) = answer {
                        lock().completions.push((owner, title));
                    }
                }
            }
            _ => {
                let body = json!({"title": title});
                let (status, task) = env
                    .send(reqwest::Method::POST, "/api/v1/tasks", &user, Some(&body))
                    .await?;
                let answer = lock().note("create", status, task, 201);
                if let Some(Answer::Accepted(task)) = answer {
                    let id = task["id"].as_str().context("task id")?.to_owned();
                    lock().created.push(id.clone());
                    let rename = json!({"title": format!("{title}-renamed")});
                    let path = format!("/api/v1/tasks/{id}");
                    let (status, renamed) = env
                        .send(reqwest::Method::PATCH, &path, &user, Some(&rename))
                        .await?;
                    let _ = lock().note("rename", status, renamed, 200);
                }
            }
        }
        tokio::time::sleep_until(paced).await;
    }
    Ok(())
}

/// Resident memory of every service and sidecar process, by log name, in KiB.
async fn resident(env: &Env) -> BTreeMap<String, u64> {
    let mut pids: Vec<(String, Option<u32>)> = vec![
        ("backend".into(), env.backend.service.pid()),
        ("daprd-backend".into(), env.backend.daprd.pid()),
        ("recurring-task".into(), env.recurring.service.pid()),
        ("daprd-recurring-task".into(), env.recurring.daprd.pid()),
    ];
    {
        let email = env.email.lock().await;
        pids.push(("email-delivery".into(), email.service.pid()));
        pids.push(("daprd-email-delivery".into(), email.daprd.pid()));
    }
    for (i, pod) in env.notification.lock().await.iter().enumerate() {
        pids.push((format!("notification-{i}"), pod.service.pid()));
        pids.push((format!("daprd-notification-{i}"), pod.daprd.pid()));
    }
    pids.into_iter()
        .filter_map(|(name, pid)| Some((name, vm_rss_kib(pid?)?)))
        .collect()
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The soak scenario (see the module documentation).
pub(crate) async fn run(env: &Env, settings: Settings) -> anyhow::Result<()> {
    let plan = schedule(settings);
    let started = Instant::now();
    let end = started + settings.duration;
    let ledger = SyncMutex::new(Ledger::default());

    let clients = futures_util::future::try_join_all(
        (0..CLIENTS).map(|n| client(env, n, settings.seed, end, &ledger)),
    );
    let faults = async {
        // Memory after the warm-up, before the first fault.
        tokio::time::sleep_until(started + QUIET.saturating_sub(Duration::from_secs(2))).await;
        let warm = resident(env).await;
        let mut applied = Vec::new();
        for planned in &plan {
            tokio::time::sleep_until(started + planned.start).await;
            let down = Instant::now();
            planned.fault.inject(env).await?;
            tokio::time::sleep_until(down + planned.length).await;
            planned.fault.recover(env).await?;
            applied.push(format!(
                "{:?} at {:.0} s for {:.1} s (back after {:.1} s)",
                planned.fault,
                planned.start.as_secs_f64(),
                planned.length.as_secs_f64(),
                down.elapsed().as_secs_f64()
            ));
        }
        Ok::<_, anyhow::Error>((warm, applied))
    };
    let (clients, faults) = tokio::join!(clients, faults);
    clients?;
    let (before, applied) = faults?;
    let ledger = ledger
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    ensure!(
        ledger.unexpected.is_empty(),
        "answers other than success and 503 UNAVAILABLE: {:?}",
        ledger.unexpected
    );

    // Published: every accepted write reached the topic.
    let created: std::collections::BTreeSet<&str> =
        ledger.created.iter().map(String::as_str).collect();
    wait::until(
        "a task.created for every accepted write",
        DEADLINE * 2,
        || async {
            let seen: std::collections::BTreeSet<String> = env
                .observer
                .seen
                .matching(contracts::topics::TASK_EVENTS, |e| {
                    e.ty == contracts::event_types::TASK_CREATED
                        && e.subject.as_deref().is_some_and(|s| created.contains(s))
                })
                .into_iter()
                .filter_map(|e| e.subject)
                .collect();
            Ok::<_, std::convert::Infallible>((seen.len() == created.len()).then_some(()))
        },
    )
    .await?;

    // Mailed once each, and nothing left to fire.
    let last_due = ledger
        .reminders
        .values()
        .map(|(_, t)| *t)
        .max()
        .unwrap_or_else(Utc::now);
    let wait_mails = (last_due - Utc::now()).to_std().unwrap_or_default() + DEADLINE * 2;
    wait::until("a mail for every accepted reminder", wait_mails, || async {
        let mails = env.smtp.lock().await.messages();
        let missing = ledger
            .reminders
            .keys()
            .filter(|t| !mails.iter().any(|m| m.data.contains(t.as_str())))
            .count();
        Ok::<_, std::convert::Infallible>((missing == 0).then_some(()))
    })
    .await?;
    for (id, _) in ledger.reminders.values() {
        reminder_job_becomes(env, id, None).await?;
    }
    let mails = env.smtp.lock().await.messages();
    let mut lateness = Vec::new();
    for (title, (_, remind_at)) in &ledger.reminders {
        let mine: Vec<_> = mails
            .iter()
            .filter(|m| m.data.contains(title.as_str()))
            .collect();
        ensure!(mine.len() == 1, "{} mails for {title}", mine.len());
        let received = DateTime::<Utc>::from(mine[0].received_at);
        lateness.push((received - *remind_at).num_milliseconds() as f64 / 1000.0);
    }
    lateness.sort_by(f64::total_cmp);

    // One next occurrence per accepted completion.
    for (owner, title) in &ledger.completions {
        wait::until(
            &format!("the next occurrence of {title}"),
            DEADLINE,
            || async {
                Ok::<_, anyhow::Error>((series(env, owner, title).await?.len() >= 2).then_some(()))
            },
        )
        .await?;
    }
    for (owner, title) in &ledger.completions {
        let n = series(env, owner, title).await?.len();
        ensure!(
            n == 2,
            "{title}: {n} tasks in its series, expected the completed one and one next"
        );
    }

    // Memory: the end against the warm-up.
    let after = resident(env).await;
    let mut growth = Vec::new();
    for (name, start) in &before {
        let Some(end) = after.get(name) else { continue };
        growth.push(format!("{name} {}→{} MiB", start / 1024, end / 1024));
        // Loose on purpose: a restarted sidecar starts small again, and a short run has noise;
        // a leak over a long run breaks it.
        ensure!(
            *end <= start * 2 + 64 * 1024,
            "{name} grew from {start} KiB to {end} KiB"
        );
    }

    let pick = |q: f64| {
        let i = ((lateness.len().max(1) - 1) as f64 * q).round() as usize;
        lateness.get(i).copied().unwrap_or(0.0)
    };
    eprintln!(
        "soak (seed {}, {:.1} min, {} broker): {} requests, {} answered 503 while PostgreSQL was \
         down, 0 other failures; {} writes published; {} reminders each mailed once (lateness \
         p50 {:.2} s, p99 {:.2} s, max {:.2} s); {} completions each with one next occurrence; \
         faults: {}; resident memory: {}",
        settings.seed,
        settings.duration.as_secs_f64() / 60.0,
        env.infra.broker.kind(),
        ledger.requests,
        ledger.unavailable,
        created.len(),
        ledger.reminders.len(),
        pick(0.5),
        pick(0.99),
        pick(1.0),
        ledger.completions.len(),
        applied.join("; "),
        growth.join(", "),
    );
    Ok(())
}
