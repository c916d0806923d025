//! `cargo xtask bench reminders`: many reminders due in the same minute, fanned in through the
//! notification replicas, the Scheduler and email-delivery to a real SMTP server.
//!
//! The consumers suite proves that a few dozen reminders are each mailed once; this measures
//! what happens when thousands fall due together. It starts the whole consumer stack —
//! PostgreSQL, Redis, the Dapr Scheduler, and builds of the backend, `--replicas` notification
//! replicas and email-delivery, each with its daprd — and the harness's SMTP sink, then:
//!
//! 1. calibrates: creates a batch of tasks whose reminders are a day away and times how long
//!    it takes until notification has scheduled all of their jobs, to choose the lead (unless
//!    `--lead-secs` gives it) so that every job of the run exists before the first is due;
//! 2. creates `--reminders` tasks over REST for `--reminder-users` users, their reminders
//!    spread evenly over `--window-secs` starting that lead from now, and waits until every
//!    job is scheduled;
//! 3. waits until the sink has a mail for every reminder (or the deadline passes), plus a
//!    quiet period for late duplicates, reading CPU time of every process over the fan-in;
//! 4. holds the mails against the reminders ([`tally`]): lateness = the sink's acceptance of a
//!    reminder's first mail − its `remind_at`; any reminder missing or mailed twice fails the
//!    run, after the figures are printed;
//! 5. draws the lateness distribution and the mail rate and writes the "Reminder fan-in"
//!    section of BENCHMARKS.md ([`report`]).

#![allow(clippy::print_stdout)] // The report is the command's output.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail, ensure};
use harness::{Infra, InfraOptions, Pod, PodOptions, SmtpSink, wait};
use serde_json::json;

use super::procfs::{cpu_time, tree_cpu_time};
use super::{BENCH_JWT_KEY, BenchArgs, Percentiles, bench_token, load_average, run_concurrently};
use crate::step;

mod report;
mod tally;

use tally::{Received, Tally};

/// Tasks created to time scheduling, at most; their reminders are a day away, so they never
/// fire during the run.
const CALIBRATION_MAX: usize = 500;
/// The lead is the calibrated time to create and schedule the run's jobs times this, plus
/// [`LEAD_MARGIN`]: the calibration batch is small and the machine's load varies.
const LEAD_FACTOR: f64 = 1.5;
/// Added to the lead.
const LEAD_MARGIN: Duration = Duration::from_secs(5);
/// How long to keep watching once every reminder was mailed: the Scheduler retries a failed
/// trigger every 2 s, so a duplicate would show up within this.
const QUIET: Duration = Duration::from_secs(5);
/// How often the sink's mail count (and notification's counters) are read while waiting: the
/// interval bounds the error of the times taken from the waits.
const POLL: Duration = Duration::from_millis(100);

/// The metric notification counts reminder jobs scheduled with
/// (`notification::metrics::REMINDER_JOBS_SCHEDULED_TOTAL`; xtask does not link the service).
const JOBS_SCHEDULED_TOTAL: &str = "todo_reminder_jobs_scheduled_total";
/// notification's count of reminder job triggers by outcome
/// (`notification::metrics::REMINDER_TRIGGERS_TOTAL`).
const TRIGGERS_TOTAL: &str = "todo_reminder_triggers_total";
/// notification's histogram of how late each published reminder's job fired
/// (`notification::metrics::REMINDER_LATENESS_SECONDS`).
const TRIGGER_LATENESS: &str = "todo_reminder_lateness_seconds";
/// email-delivery's count of deliveries by outcome (`email_delivery::metrics::EMAILS_SENT_TOTAL`).
const EMAILS_SENT_TOTAL: &str = "todo_emails_sent_total";
/// Its `outcome` values (`email_delivery::metrics::Outcome`): a `duplicate` is a delivery of
/// an event already mailed (a broker redelivery or a second publish), absorbed by its ledger.
const EMAIL_OUTCOMES: [&str; 4] = ["sent", "duplicate", "retry", "failed"];

/// Options of `cargo xtask bench reminders`.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "bench reminders")]
pub(crate) struct ReminderArgs {
    /// Reminders due within the window, each on its own task.
    #[arg(long, default_value_t = 10_000)]
    reminders: usize,
    /// notification replicas, each with its own sidecar.
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// The window the reminders are spread evenly over, in seconds.
    #[arg(long, default_value_t = 60)]
    window_secs: u64,
    /// Seconds from the end of the calibration to the first reminder; by default chosen from
    /// the calibration so that every job is scheduled before the first is due.
    #[arg(long)]
    lead_secs: Option<u64>,
    /// Users the tasks belong to (round robin); each gets its own mail address.
    #[arg(long, default_value_t = 10)]
    reminder_users: usize,
    /// Concurrent REST clients creating the tasks.
    #[arg(long, default_value_t = 16)]
    reminder_clients: usize,
    /// Seconds after the window's end to wait for the last mail before failing.
    #[arg(long, default_value_t = 300)]
    mail_deadline_secs: u64,
}

/// CPU time one process (or process tree) used over the fan-in.
#[derive(Clone, Debug)]
struct ProcessCpu {
    name: String,
    used: Duration,
}

/// One notification replica's trigger outcomes over the fan-in.
#[derive(Clone, Debug, Default, PartialEq)]
struct ReplicaTriggers {
    /// Triggers that published `reminder.due`.
    published: u64,
    /// Every other outcome (already sent, failed, …).
    other: u64,
}

/// What notification's counters say, per replica or summed, at one moment.
#[derive(Clone, Debug, Default)]
struct TriggerMetrics {
    per_replica: Vec<ReplicaTriggers>,
    /// The cumulative buckets of [`TRIGGER_LATENESS`], summed over the replicas.
    lateness: Vec<(f64, f64)>,
    /// Its `_sum` over the replicas, in seconds.
    lateness_sum: f64,
}

impl TriggerMetrics {
    /// What happened between `before` and `self`.
    fn since(&self, before: &Self) -> Self {
        Self {
            per_replica: self
                .per_replica
                .iter()
                .zip(&before.per_replica)
                .map(|(after, before)| ReplicaTriggers {
                    published: after.published.saturating_sub(before.published),
                    other: after.other.saturating_sub(before.other),
                })
                .collect(),
            lateness: report::histogram_delta(&self.lateness, &before.lateness),
            lateness_sum: (self.lateness_sum - before.lateness_sum).max(0.0),
        }
    }
}

/// Everything the section reports.
#[derive(Debug)]
struct Results {
    date: String,
    cpus: usize,
    load_average: String,
    /// Whether the services were release builds.
    release: bool,
    reminders: usize,
    replicas: usize,
    users: usize,
    clients: usize,
    window: Duration,
    calibration: usize,
    /// Calibration: first create sent → every calibration job scheduled.
    calibration_elapsed: Duration,
    lead: Duration,
    /// Whether `--lead-secs` gave the lead (else the calibration chose it).
    lead_given: bool,
    /// First create sent → last create answered.
    created: Duration,
    /// First create sent → every job scheduled (`None`: not within the wait).
    scheduled: Option<Duration>,
    /// Every job scheduled → the first reminder due; negative when scheduling overran.
    slack_ms: Option<f64>,
    lateness: Percentiles,
    /// Sorted lateness samples, for the distribution picture.
    lateness_sorted: Vec<Duration>,
    early: usize,
    /// Mails accepted per second since the window's start, one entry per second.
    mailed_per_second: Vec<usize>,
    /// Mails ÷ (last first-mail − first due time).
    mails_per_second: f64,
    /// The window start → the last reminder's first mail.
    fan_in: Duration,
    missing: Vec<usize>,
    duplicates: usize,
    duplicated: Vec<usize>,
    strays: usize,
    /// Trigger outcomes per replica, and the trigger lateness notification measured.
    triggers: TriggerMetrics,
    /// email-delivery's deliveries over the fan-in, per [`EMAIL_OUTCOMES`] entry.
    email_outcomes: Vec<(&'static str, u64)>,
    cpu: Vec<ProcessCpu>,
    /// The span the CPU times were read over: the window's start → every reminder mailed (or
    /// the deadline).
    cpu_span: Duration,
}

impl Results {
    fn each_once(&self) -> bool {
        self.missing.is_empty() && self.duplicates == 0
    }
}

/// Runs the scenario; writes its section and pictures unless `--no-write`/`--smoke`; fails if
/// a reminder was missing or mailed twice (after printing the figures).
pub(super) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let opts = &args.reminders;
    ensure!(opts.reminders > 0, "--reminders must be positive");
    ensure!(opts.replicas > 0, "--replicas must be positive");
    ensure!(opts.window_secs > 0, "--window-secs must be positive");
    ensure!(opts.reminder_users > 0, "--reminder-users must be positive");
    ensure!(
        args.deps.broker == harness::Broker::Redis,
        "benchmarks run on the default broker profile (redis), not {}",
        args.deps.broker
    );
    let (bins, built) = super::prepare(args, &["backend", "notification", "email-delivery"])?;
    let runtime = tokio::runtime::Runtime::new()?;
    let results = runtime.block_on(measure(opts, bins, &built, !args.smoke))?;
    report::print(&results);
    if args.writes() {
        write(&results)?;
    }
    if !results.each_once() {
        bail!(
            "reminders not mailed exactly once: {} missing [{}], {} duplicate mails [for {}] \
             (reminder indices; the task titles end in them)",
            results.missing.len(),
            tally::some_of(&results.missing, 20),
            results.duplicates,
            tally::some_of(&results.duplicated, 20),
        );
    }
    Ok(())
}

/// Writes both pictures and the section of BENCHMARKS.md.
fn write(results: &Results) -> anyhow::Result<()> {
    super::doc::write_section(
        report::HEADING,
        &report::render(results),
        &[
            (report::LATENESS_SVG, report::lateness_svg(results)?),
            (report::RATE_SVG, report::rate_svg(results)?),
        ],
    )
}

/// The running stack.
struct Stack {
    // Field order is drop order: the services before the infrastructure they use.
    backend: Pod,
    notification: Vec<Pod>,
    email: Pod,
    smtp: SmtpSink,
    infra: Infra,
}

async fn start_stack(
    opts: &ReminderArgs,
    bins: harness::Binaries,
    built: &Path,
) -> anyhow::Result<Stack> {
    let infra = Infra::start(InfraOptions {
        binaries: Some(bins),
        ..InfraOptions::default()
    })
    .await?;
    infra.postgres.create_database("backend")?;
    let smtp = SmtpSink::start().await?;
    let pod = |app: &str, log_name: String, env: Vec<(String, String)>| {
        let mut env = env;
        // Per-request logs at info would be measured too; warnings and errors still show.
        env.push(("RUST_LOG".into(), "warn".into()));
        PodOptions {
            log_name,
            env,
            binary_path: Some(built.join(app)),
            ..PodOptions::new(app)
        }
    };
    let backend = Pod::start(
        &infra,
        &pod(
            "backend",
            "backend".into(),
            vec![
                ("DATABASE_URL".into(), infra.postgres.url("backend")),
                ("JWT_SECRET".into(), BENCH_JWT_KEY.into()),
            ],
        ),
    )
    .await?;
    let mut notification = Vec::new();
    for n in 0..opts.replicas {
        let replica = Pod::start(
            &infra,
            &pod("notification", format!("notification-{n}"), Vec::new()),
        )
        .await?;
        notification.push(replica);
    }
    let email = Pod::start(
        &infra,
        &pod(
            "email-delivery",
            "email-delivery".into(),
            vec![
                ("SMTP_HOST".into(), "127.0.0.1".into()),
                ("SMTP_PORT".into(), smtp.port().to_string()),
                ("SMTP_TLS".into(), "none".into()),
                (
                    "SMTP_FROM".into(),
                    "Todo Reminders <reminders@todo.test>".into(),
                ),
            ],
        ),
    )
    .await?;
    // Subscriptions (and job triggers) reach an app only once its sidecar's app channel is up.
    for pod in notification.iter().chain([&email]) {
        pod.daprd.wait_app_channel(Duration::from_secs(60)).await?;
    }
    Ok(Stack {
        backend,
        notification,
        email,
        smtp,
        infra,
    })
}

impl Stack {
    /// The processes whose CPU time is read over the fan-in: (name, PID, with its children).
    fn processes(&mut self) -> Vec<(String, Option<u32>, bool)> {
        let mut out = Vec::new();
        for (n, pod) in self.notification.iter().enumerate() {
            out.push((format!("notification-{n}"), pod.service.pid(), false));
            out.push((format!("daprd notification-{n}"), pod.daprd.pid(), false));
        }
        for (name, pod) in [("email-delivery", &self.email), ("backend", &self.backend)] {
            out.push((name.to_owned(), pod.service.pid(), false));
            out.push((format!("daprd {name}"), pod.daprd.pid(), false));
        }
        out.push((
            "Dapr Scheduler".into(),
            self.infra.scheduler.process_mut().pid(),
            false,
        ));
        if let Some(redis) = self.infra.broker.redis() {
            out.push(("Redis".into(), redis.pid(), false));
        }
        // PostgreSQL serves each connection from a child of the postmaster.
        out.push((
            "PostgreSQL (all its processes)".into(),
            self.infra.postgres.pid(),
            true,
        ));
        out
    }

    /// email-delivery's `/metrics` URL.
    fn email_metrics_url(&self) -> String {
        format!("{}/metrics", self.email.service.base_url())
    }

    /// Every notification replica's `/metrics` URL.
    fn metrics_urls(&self) -> Vec<String> {
        self.notification
            .iter()
            .map(|pod| format!("{}/metrics", pod.service.base_url()))
            .collect()
    }
}

/// CPU time of each of `processes`, in order (zero for one that has no PID).
fn cpu_times(processes: &[(String, Option<u32>, bool)]) -> anyhow::Result<Vec<Duration>> {
    processes
        .iter()
        .map(|(name, pid, tree)| match pid {
            Some(pid) if *tree => tree_cpu_time(*pid).with_context(|| name.clone()),
            Some(pid) => cpu_time(*pid).with_context(|| name.clone()),
            None => Ok(Duration::ZERO),
        })
        .collect()
}

/// Creates tasks over REST: one per reminder time, for users picked round robin.
struct Creator {
    http: reqwest::Client,
    url: String,
    /// One bearer token per user.
    tokens: Vec<String>,
    clients: usize,
}

impl Creator {
    /// Creates one task per entry of `remind_at`, titled `<title_prefix><index>`; returns how
    /// long it took.
    async fn create(
        &self,
        title_prefix: &str,
        remind_at: &[SystemTime],
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        // The backend wants the due time no earlier than the reminder: an hour later.
        let times: std::sync::Arc<Vec<(String, String)>> = std::sync::Arc::new(
            remind_at
                .iter()
                .map(|&t| (rfc3339(t), rfc3339(t + Duration::from_secs(3600))))
                .collect(),
        );
        let (http, url, tokens) = (self.http.clone(), self.url.clone(), self.tokens.clone());
        let prefix = title_prefix.to_owned();
        run_concurrently(remind_at.len(), self.clients, move |i| {
            let (http, url) = (http.clone(), url.clone());
            let token = tokens[i % tokens.len()].clone();
            let title = format!("{prefix}{i}");
            let (remind_at, due_at) = times[i].clone();
            async move {
                let body = json!({"title": title, "remind_at": remind_at, "due_at": due_at});
                super::backend::post_task(&http, &url, &token, &body).await
            }
        })
        .await?;
        Ok(started.elapsed())
    }
}

/// `t` as RFC 3339 in UTC with milliseconds, as the REST API takes it.
fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The sum over `urls` of notification's scheduled-jobs counter.
async fn jobs_scheduled(http: &reqwest::Client, urls: &[String]) -> anyhow::Result<u64> {
    let mut total = 0;
    for url in urls {
        let page = metrics_page(http, url).await?;
        total += report::metric_sum(&page, JOBS_SCHEDULED_TOTAL, "") as u64;
    }
    Ok(total)
}

/// Each replica's trigger outcomes, and the trigger lateness over all of them.
async fn triggers(http: &reqwest::Client, urls: &[String]) -> anyhow::Result<TriggerMetrics> {
    let mut out = TriggerMetrics::default();
    for url in urls {
        let page = metrics_page(http, url).await?;
        let all = report::metric_sum(&page, TRIGGERS_TOTAL, "");
        let published = report::metric_sum(&page, TRIGGERS_TOTAL, "outcome=\"published\"");
        out.per_replica.push(ReplicaTriggers {
            published: published as u64,
            other: (all - published) as u64,
        });
        out.lateness =
            report::histogram_sum(&out.lateness, &report::histogram(&page, TRIGGER_LATENESS));
        out.lateness_sum += report::metric_sum(&page, &format!("{TRIGGER_LATENESS}_sum"), "");
    }
    Ok(out)
}

/// email-delivery's deliveries so far, per [`EMAIL_OUTCOMES`] entry.
async fn email_outcomes(
    http: &reqwest::Client,
    url: &str,
) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let page = metrics_page(http, url).await?;
    Ok(EMAIL_OUTCOMES
        .iter()
        .map(|&o| {
            (
                o,
                report::metric_sum(&page, EMAILS_SENT_TOTAL, &format!("outcome=\"{o}\"")) as u64,
            )
        })
        .collect())
}

async fn metrics_page(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    Ok(http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// Waits until notification has scheduled `target` jobs in all; returns when, or `None` when
/// `timeout` passed first.
async fn wait_scheduled(
    http: &reqwest::Client,
    urls: &[String],
    target: u64,
    timeout: Duration,
) -> Option<Instant> {
    wait::until_every(
        &format!("{target} reminder jobs scheduled"),
        timeout,
        POLL,
        || async {
            let n = jobs_scheduled(http, urls).await?;
            Ok::<_, anyhow::Error>((n >= target).then(Instant::now))
        },
    )
    .await
    .ok()
}

async fn measure(
    opts: &ReminderArgs,
    bins: harness::Binaries,
    built: &Path,
    release: bool,
) -> anyhow::Result<Results> {
    let mut stack = start_stack(opts, bins, built).await?;
    step::info(&format!(
        "stack up ({} notification replicas); logs in {}",
        opts.replicas,
        stack.infra.log_dir().display()
    ));
    let load_average = load_average();
    let date = super::utc_now();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.reminder_clients)
        .build()?;
    let tokens = (0..opts.reminder_users)
        .map(|u| bench_token(&format!("fanin-user-{u}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let creator = Creator {
        http: http.clone(),
        url: format!("{}/api/v1/tasks", stack.backend.service.base_url()),
        tokens,
        clients: opts.reminder_clients,
    };
    let urls = stack.metrics_urls();
    // Titles carry the run's start, so a task or mail in the kept logs names its run.
    let run = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs();

    // 1. Calibration: how long creating and scheduling takes on this machine, now.
    let calibration = opts.reminders.min(CALIBRATION_MAX);
    let before = jobs_scheduled(&http, &urls).await?;
    let far = SystemTime::now() + Duration::from_secs(86_400);
    let started = Instant::now();
    creator
        .create(&format!("calibration-{run}-"), &vec![far; calibration])
        .await?;
    let done = wait_scheduled(
        &http,
        &urls,
        before + calibration as u64,
        Duration::from_secs(120),
    )
    .await
    .context("notification did not schedule the calibration's reminder jobs")?;
    let calibration_elapsed = done - started;
    let per_job = calibration_elapsed.as_secs_f64() / calibration as f64;
    let lead = match opts.lead_secs {
        Some(secs) => Duration::from_secs(secs),
        None => {
            Duration::from_secs_f64(per_job * opts.reminders as f64 * LEAD_FACTOR) + LEAD_MARGIN
        }
    };
    step::info(&format!(
        "calibration: {calibration} jobs scheduled {:.2} s after the first create; \
         the first of {} reminders is due {:.1} s from now",
        calibration_elapsed.as_secs_f64(),
        opts.reminders,
        lead.as_secs_f64()
    ));

    // 2. The run's reminders, evenly over the window.
    let window = Duration::from_secs(opts.window_secs);
    let window_start = SystemTime::now() + lead;
    let due: Vec<SystemTime> = (0..opts.reminders)
        .map(|i| window_start + window.mul_f64(i as f64 / opts.reminders as f64))
        .collect();
    let title_prefix = format!("fanin-{run}-");
    let before = jobs_scheduled(&http, &urls).await?;
    let triggers_before = triggers(&http, &urls).await?;
    let email_url = stack.email_metrics_url();
    let email_before = email_outcomes(&http, &email_url).await?;
    let started = Instant::now();
    let created = creator.create(&title_prefix, &due).await?;
    let scheduled = wait_scheduled(
        &http,
        &urls,
        before + opts.reminders as u64,
        lead + window + Duration::from_secs(60),
    )
    .await;
    let scheduled_at = scheduled.map(|at| (at, SystemTime::now() - at.elapsed()));
    let slack_ms = scheduled_at.map(|(_, wall)| signed_ms(window_start, wall));
    match slack_ms {
        Some(slack) => step::info(&format!(
            "{} tasks created in {:.2} s; every job scheduled {:.2} s after the first create, \
             {:.2} s before the first was due",
            opts.reminders,
            created.as_secs_f64(),
            scheduled_at.map_or(0.0, |(at, _)| (at - started).as_secs_f64()),
            slack / 1000.0
        )),
        None => step::info("not every reminder job was scheduled in time; waiting for mails"),
    }

    // 3. The fan-in. CPU is read from the window's start: waiting for a time, not a condition.
    let processes = stack.processes();
    if let Ok(ahead) = window_start.duration_since(SystemTime::now()) {
        tokio::time::sleep(ahead).await;
    }
    let cpu_before = cpu_times(&processes)?;
    let fan_in_started = Instant::now();
    let deadline = window + Duration::from_secs(opts.mail_deadline_secs);
    let all_in = wait::until_every(
        &format!("{} reminder mails", opts.reminders),
        deadline,
        POLL,
        || async {
            if stack.smtp.message_count() < opts.reminders {
                return Ok::<_, std::convert::Infallible>(None);
            }
            let tally = tally_of(&stack.smtp, &title_prefix, opts.reminders);
            Ok(tally.missing().is_empty().then_some(()))
        },
    )
    .await;
    let fan_in_span = fan_in_started.elapsed();
    let cpu_after = cpu_times(&processes)?;
    if let Err(e) = &all_in {
        step::info(&format!("{e}"));
    }
    // A duplicate delivered by a retry would arrive within the quiet period.
    let surplus = wait::until("a surplus mail", QUIET, || async {
        let n = stack.smtp.message_count();
        Ok::<_, std::convert::Infallible>((n > opts.reminders).then_some(n))
    })
    .await;
    if let Ok(n) = surplus {
        step::info(&format!("{n} mails for {} reminders", opts.reminders));
    }

    // 4. The tally.
    let tally = tally_of(&stack.smtp, &title_prefix, opts.reminders);
    let lateness = tally.lateness(&due);
    let mut lateness_sorted = lateness.samples.clone();
    lateness_sorted.sort();
    let firsts: Vec<SystemTime> = tally.first.iter().flatten().copied().collect();
    let last_mail = firsts.iter().max().copied();
    let fan_in = last_mail
        .and_then(|t| t.duration_since(window_start).ok())
        .unwrap_or_default();
    let triggers = triggers(&http, &urls).await?.since(&triggers_before);
    let email_outcomes = email_outcomes(&http, &email_url)
        .await?
        .into_iter()
        .zip(email_before)
        .map(|((o, after), (_, before))| (o, after.saturating_sub(before)))
        .collect();
    let cpu = processes
        .iter()
        .zip(cpu_before.iter().zip(&cpu_after))
        .map(|((name, _, _), (before, after))| ProcessCpu {
            name: name.clone(),
            used: after.saturating_sub(*before),
        })
        .collect();
    Ok(Results {
        date,
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average,
        release,
        reminders: opts.reminders,
        replicas: opts.replicas,
        users: opts.reminder_users,
        clients: opts.reminder_clients,
        window,
        calibration,
        calibration_elapsed,
        lead,
        lead_given: opts.lead_secs.is_some(),
        created,
        scheduled: scheduled.map(|at| at - started),
        slack_ms,
        lateness: Percentiles::of(lateness.samples),
        lateness_sorted,
        early: lateness.early,
        mailed_per_second: report::per_second(&firsts, window_start),
        mails_per_second: firsts.len() as f64 / fan_in.as_secs_f64().max(f64::EPSILON),
        fan_in,
        missing: tally.missing(),
        duplicates: tally.duplicates,
        duplicated: tally.duplicated,
        strays: tally.strays,
        triggers,
        email_outcomes,
        cpu,
        cpu_span: fan_in_span,
    })
}

/// The sink's mails so far, tallied against this run's reminders.
fn tally_of(smtp: &SmtpSink, title_prefix: &str, reminders: usize) -> Tally {
    let mails: Vec<Received> = smtp
        .messages()
        .iter()
        .map(|m| Received {
            index: m
                .header("subject")
                .and_then(|s| tally::reminder_index(&s, title_prefix, reminders)),
            at: m.received_at,
        })
        .collect();
    Tally::of(&mails, reminders)
}

/// `to − from` in milliseconds, negative when `to` is earlier.
fn signed_ms(to: SystemTime, from: SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_utc_with_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_342_400_123);
        assert_eq!(rfc3339(t), "2026-12-04T00:00:00.123Z");
    }

    #[test]
    fn slack_is_signed() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(signed_ms(t, t - Duration::from_millis(1500)), 1500.0);
        assert_eq!(signed_ms(t, t + Duration::from_millis(250)), -250.0);
    }
}
