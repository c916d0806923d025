//! `cargo xtask bench load`: open-loop REST load at rising rates, up to and past saturation.
//!
//! A closed loop (N clients, each waiting for its answer before the next request) slows down
//! with the system it measures, so it never sees the queue that forms when requests arrive
//! faster than they are served. Here requests are sent on a fixed schedule — request `i` of a
//! step at `start + i / rate` — and each latency runs from that intended time to the answer, so
//! time spent waiting to be sent (behind the in-flight cap, or behind a busy generator) counts.
//!
//! Each step offers one rate for `--step-secs` and records:
//! - REST create latency from the intended send time, errors, and the rate achieved;
//! - the outbox's commit → acknowledged delay of the events committed in the step, and, beside
//!   it, a bare publish to the same daprd sent at `--probe-rate` during the step: the relay's
//!   latency and the sidecar's own at the same load;
//! - each process's CPU over the step: backend, both daprds, PostgreSQL (its server and every
//!   connection's backend process), Redis, notification, and this load generator.
//!
//! Between steps the outbox drains and notification consumes every event, so a step does not
//! pay for its predecessor's backlog. After two steps in a row that are not sustained (see
//! [`Step::sustained`]), higher rates are skipped: they would only queue longer.

#![allow(clippy::print_stdout)] // The report is the command's output.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use harness::Infra;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::backend::{
    BENCH_TOPIC, BackendStack, bare_publish, consumed_task_events, create_task, sample_event,
    start_infra, wait_consumed, wait_outbox_drained,
};
use super::procfs::{cpu_time, tree_cpu_time};
use super::{BenchArgs, Percentiles, bench_token, load_average, plot, utc_now};
use crate::step;

mod report;

/// Requests (and bare publishes) that warm the stack up before anything is measured.
const WARM_UP: usize = 50;

/// The JWT subject of every request.
const LOAD_USER: &str = "load-user";

/// A step is sustained when it achieved at least this share of the offered rate...
const SUSTAINED_SHARE: f64 = 0.95;
/// ...and its p99 stayed under this: a queue that grows for the whole step shows in both.
const SUSTAINED_P99_MS: f64 = 1000.0;
/// Unsustained steps in a row after which the higher rates are skipped.
const UNSUSTAINED_STEPS_TO_STOP: usize = 2;

/// Options of `cargo xtask bench load`.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "bench load")]
pub(crate) struct LoadArgs {
    /// Offered rates of REST creates per second, one step each, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "200,400,600,800,1000,1200,1400,1700,2000"
    )]
    rates: Vec<u32>,
    /// Seconds each rate is offered for.
    #[arg(long, default_value_t = 10.0)]
    step_secs: f64,
    /// Requests in flight at most (connections to the backend); beyond it the generator waits,
    /// and the wait counts in the latency.
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// Bare publishes per second to the backend's daprd during each step: the sidecar's own
    /// latency at the same load.
    #[arg(long, default_value_t = 50)]
    probe_rate: u32,
}

/// The processes whose CPU each step reads, in the report's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Proc {
    Backend,
    BackendDaprd,
    Postgres,
    Redis,
    Notification,
    NotificationDaprd,
    Generator,
}

impl Proc {
    pub(super) const ALL: [Proc; 7] = [
        Proc::Backend,
        Proc::BackendDaprd,
        Proc::Postgres,
        Proc::Redis,
        Proc::Notification,
        Proc::NotificationDaprd,
        Proc::Generator,
    ];

    pub(super) fn label(self) -> &'static str {
        match self {
            Proc::Backend => "backend",
            Proc::BackendDaprd => "daprd (backend)",
            Proc::Postgres => "PostgreSQL",
            Proc::Redis => "Redis",
            Proc::Notification => "notification",
            Proc::NotificationDaprd => "daprd (notification)",
            Proc::Generator => "load generator",
        }
    }
}

/// One offered rate's figures.
#[derive(Debug)]
pub(super) struct Step {
    pub(super) offered: u32,
    pub(super) sent: usize,
    pub(super) errors: usize,
    /// What the first failed request answered (or why it failed).
    pub(super) first_error: Option<String>,
    /// Successful creates per second, from the first intended send to the last answer.
    pub(super) achieved: f64,
    /// Latency from the intended send time, successful requests only.
    pub(super) rest: Percentiles,
    /// Commit → acknowledged of the step's outbox rows.
    pub(super) outbox: Percentiles,
    /// The bare publishes beside the load.
    pub(super) probe: Percentiles,
    /// Cores each process used on average over the step, in [`Proc::ALL`] order.
    pub(super) vcpu: Vec<f64>,
}

impl Step {
    /// Whether the system kept up with this rate: nearly all of it served, without a queue
    /// that grew for the whole step, and without errors.
    pub(super) fn sustained(&self) -> bool {
        self.errors == 0
            && self.achieved >= SUSTAINED_SHARE * f64::from(self.offered)
            && self.rest.p99 < SUSTAINED_P99_MS
    }

    /// Commit → acknowledged p99 over the bare publish p99 of the same step.
    pub(super) fn relay_ratio(&self) -> f64 {
        self.outbox.p99 / self.probe.p99.max(f64::EPSILON)
    }
}

/// The whole run.
#[derive(Debug)]
pub(super) struct Results {
    pub(super) date: String,
    pub(super) load_average: String,
    pub(super) cpus: usize,
    pub(super) step_secs: f64,
    pub(super) max_in_flight: usize,
    pub(super) probe_rate: u32,
    /// Cores each process used with nothing offered, over one step's length, in
    /// [`Proc::ALL`] order.
    pub(super) idle_vcpu: Vec<f64>,
    pub(super) steps: Vec<Step>,
    /// Rates not offered because the ones before them were not sustained.
    pub(super) skipped: Vec<u32>,
}

impl Results {
    /// The highest rate that was sustained, and the first that was not after it.
    pub(super) fn saturation(&self) -> (Option<&Step>, Option<&Step>) {
        let last_ok = self.steps.iter().rposition(Step::sustained);
        let first_not = self
            .steps
            .iter()
            .skip(last_ok.map_or(0, |i| i + 1))
            .find(|s| !s.sustained());
        (last_ok.map(|i| &self.steps[i]), first_not)
    }
}

pub(super) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let load = &args.load;
    ensure!(
        !load.rates.is_empty() && load.rates.iter().all(|&r| r > 0),
        "--rates needs at least one positive rate"
    );
    ensure!(
        load.step_secs.is_finite() && load.step_secs > 0.0,
        "--step-secs must be positive"
    );
    ensure!(load.max_in_flight > 0, "--max-in-flight must be positive");
    ensure!(load.probe_rate > 0, "--probe-rate must be positive");
    ensure!(
        args.deps.broker == harness::Broker::Redis,
        "benchmarks run on the default broker profile (redis), not {}",
        args.deps.broker
    );
    let (bins, build_dir) = super::prepare(args, &["backend", "notification"])?;
    let runtime = tokio::runtime::Runtime::new()?;
    let results = runtime.block_on(measure(load, bins, &build_dir))?;
    report::print(&results);
    let latency = plot::svg(
        &plot::Chart {
            title: "Open-loop REST creates: latency against the offered rate",
            x_desc: "offered rate, creates per second",
            y_desc: "latency, ms (log scale)",
            log_x: false,
            log_y: true,
        },
        &report::latency_curves(&results),
    )?;
    let cpu = plot::svg(
        &plot::Chart {
            title: "CPU per process against the offered rate",
            x_desc: "offered rate, creates per second",
            y_desc: "cores used (vCPU)",
            log_x: false,
            log_y: false,
        },
        &report::cpu_curves(&results),
    )?;
    if args.writes() {
        super::doc::write_section(
            report::HEADING,
            &report::render(&results),
            &[(report::LATENCY_SVG, latency), (report::CPU_SVG, cpu)],
        )?;
    }
    Ok(())
}

/// The PIDs whose CPU a step reads, in [`Proc::ALL`] order.
struct Pids([u32; 7]);

impl Pids {
    fn of(infra: &Infra, stack: &BackendStack) -> anyhow::Result<Self> {
        let redis = infra
            .broker
            .redis()
            .context("the load bench runs on Redis")?
            .pid();
        let pid = |p: Option<u32>, what: &str| p.with_context(|| format!("no PID for {what}"));
        Ok(Self([
            pid(stack.backend.pid(), "backend")?,
            pid(stack.daprd.pid(), "backend's daprd")?,
            pid(infra.postgres.pid(), "PostgreSQL")?,
            pid(redis, "Redis")?,
            pid(stack.notification.pid(), "notification")?,
            pid(stack.notification_daprd.pid(), "notification's daprd")?,
            std::process::id(),
        ]))
    }

    /// Each process's CPU time so far; PostgreSQL's includes its connections' processes.
    fn read(&self) -> anyhow::Result<Vec<Duration>> {
        Proc::ALL
            .iter()
            .zip(self.0)
            .map(|(proc, pid)| match proc {
                Proc::Postgres => tree_cpu_time(pid),
                _ => cpu_time(pid),
            })
            .collect()
    }
}

async fn measure(
    args: &LoadArgs,
    bins: harness::Binaries,
    build_dir: &Path,
) -> anyhow::Result<Results> {
    let infra = start_infra(bins).await?;
    let stack = BackendStack::start(&infra, build_dir).await?;
    step::info(&format!("stack up; logs in {}", infra.log_dir().display()));
    let pids = Pids::of(&infra, &stack)?;
    let date = utc_now();
    let load_average = load_average();

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.max_in_flight)
        .build()?;
    let token = bench_token(LOAD_USER)?;
    let url = format!("{}/api/v1/tasks", stack.backend.base_url());
    let consumed_url = format!("{}/metrics", stack.notification.base_url());
    let publish_url = format!(
        "{}/v1.0/publish/pubsub/{BENCH_TOPIC}",
        stack.daprd.http_endpoint()
    );
    let payload = serde_json::to_vec(&sample_event(0)?)?;
    // Warm the connection pools and the first code paths before measuring anything.
    let consumed_before = consumed_task_events(&http, &consumed_url).await?;
    for i in 0..WARM_UP {
        create_task(&http, &url, &token, i).await?;
        bare_publish(&http, &publish_url, payload.clone()).await?;
    }
    wait_outbox_drained(&infra).await?;
    wait_consumed(
        &http,
        &consumed_url,
        consumed_before.success + WARM_UP as u64,
    )
    .await?;

    let span = Duration::from_secs_f64(args.step_secs);
    // The floor under every step's CPU: what each process costs with nothing to do.
    step::info(&format!("measuring CPU with nothing offered for {span:?}"));
    let idle_before = pids.read()?;
    let idle_from = Instant::now();
    // A measuring window, not a wait for something to happen.
    tokio::time::sleep(span).await;
    let idle_vcpu = cores(&idle_before, &pids.read()?, idle_from.elapsed());
    println!("nothing offered: {}", report::cores_line(&idle_vcpu));
    let mut steps = Vec::new();
    let mut skipped = Vec::new();
    let mut unsustained = 0;
    for &rate in &args.rates {
        if unsustained >= UNSUSTAINED_STEPS_TO_STOP {
            skipped.push(rate);
            continue;
        }
        step::info(&format!("offering {rate} creates/s for {span:?}"));
        let consumed_before = consumed_task_events(&http, &consumed_url).await?;
        let pg_from = pg_clock(&infra)?;
        let cpu_before = pids.read()?;
        let started = Instant::now();
        let creates = {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            offer(rate, span, args.max_in_flight, move |i| {
                let (http, url, token) = (http.clone(), url.clone(), token.clone());
                async move { create_task(&http, &url, &token, i).await }
            })
        };
        let probes = {
            let (http, url, payload) = (http.clone(), publish_url.clone(), payload.clone());
            offer(args.probe_rate, span, args.max_in_flight, move |_| {
                let (http, url, body) = (http.clone(), url.clone(), payload.clone());
                async move { bare_publish(&http, &url, body).await }
            })
        };
        let (creates, probes) = tokio::join!(creates, probes);
        let (creates, probes) = (creates?, probes?);
        let answered = started.elapsed();
        let cpu_after = pids.read()?;
        let pg_to = pg_clock(&infra)?;

        let ok = creates.iter().filter(|o| o.error.is_none()).count();
        wait_outbox_drained(&infra).await?;
        wait_consumed(&http, &consumed_url, consumed_before.success + ok as u64).await?;
        let step = Step {
            offered: rate,
            sent: creates.len(),
            errors: creates.len() - ok,
            first_error: creates.iter().find_map(|o| o.error.clone()),
            achieved: ok as f64 / answered.as_secs_f64().max(f64::EPSILON),
            rest: latencies(&creates),
            outbox: outbox_lag_between(&infra, &pg_from, &pg_to)?,
            probe: latencies(&probes),
            vcpu: cores(&cpu_before, &cpu_after, answered),
        };
        if probes.iter().any(|o| o.error.is_some()) {
            step::info("some bare publishes failed; their latencies are left out");
        }
        report::print_step(&step);
        unsustained = if step.sustained() { 0 } else { unsustained + 1 };
        steps.push(step);
    }
    Ok(Results {
        date,
        load_average,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        step_secs: args.step_secs,
        max_in_flight: args.max_in_flight,
        probe_rate: args.probe_rate,
        idle_vcpu,
        steps,
        skipped,
    })
}

/// Cores each process used on average over `span`, from CPU times read before and after.
fn cores(before: &[Duration], after: &[Duration], span: Duration) -> Vec<f64> {
    let secs = span.as_secs_f64().max(f64::EPSILON);
    before
        .iter()
        .zip(after)
        .map(|(b, a)| a.saturating_sub(*b).as_secs_f64() / secs)
        .collect()
}

/// One request of an open-loop run.
#[derive(Debug)]
struct Outcome {
    /// From the intended send time to the answer.
    latency: Duration,
    error: Option<String>,
}

/// Latency percentiles of the successful outcomes.
fn latencies(outcomes: &[Outcome]) -> Percentiles {
    Percentiles::of(
        outcomes
            .iter()
            .filter(|o| o.error.is_none())
            .map(|o| o.latency)
            .collect(),
    )
}

/// The schedule of an open-loop step: request `i`'s intended send time after the start.
fn intended_offset(i: usize, rate: u32) -> Duration {
    Duration::from_secs_f64(i as f64 / f64::from(rate))
}

/// How many requests `rate` per second makes over `span`.
fn requests_in(rate: u32, span: Duration) -> usize {
    (f64::from(rate) * span.as_secs_f64()).round() as usize
}

/// Sends `job(i)` at `rate` per second for `span`, each at its intended time, with at most
/// `max_in_flight` outstanding, and returns every outcome. A request that could not be sent on
/// time (the cap was reached, or this task ran late) is sent as soon as it can, and its latency
/// still starts at its intended time.
async fn offer<F, Fut>(
    rate: u32,
    span: Duration,
    max_in_flight: usize,
    job: F,
) -> anyhow::Result<Vec<Outcome>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let start = Instant::now();
    let mut running = JoinSet::new();
    for i in 0..requests_in(rate, span) {
        let intended = start + intended_offset(i, rate);
        tokio::time::sleep_until(intended).await;
        let slot = Arc::clone(&slots).acquire_owned().await?;
        let request = job(i);
        running.spawn(async move {
            let result = request.await;
            drop(slot);
            Outcome {
                latency: intended.elapsed(),
                error: result.err().map(|e| format!("{e:#}")),
            }
        });
    }
    let mut outcomes = Vec::with_capacity(running.len());
    while let Some(outcome) = running.join_next().await {
        outcomes.push(outcome?);
    }
    Ok(outcomes)
}

/// PostgreSQL's clock now, as text it reads back: the outbox rows' times are on this clock.
fn pg_clock(infra: &Infra) -> anyhow::Result<String> {
    infra.postgres.psql("backend", "SELECT clock_timestamp()")
}

/// Commit → acknowledged delay of the rows committed between `from` and `to`.
fn outbox_lag_between(infra: &Infra, from: &str, to: &str) -> anyhow::Result<Percentiles> {
    // The bounds came from PostgreSQL itself (timestamps: digits, '-', ':', '.', '+', ' ').
    ensure!(
        [from, to]
            .iter()
            .all(|t| t.chars().all(|c| c.is_ascii_digit() || "-:.+ ".contains(c))),
        "unexpected timestamps {from:?}, {to:?}"
    );
    let text = infra.postgres.psql(
        "backend",
        &format!(
            "SELECT extract(epoch FROM published_at - created_at) FROM outbox \
             WHERE published_at IS NOT NULL AND created_at >= '{from}' AND created_at < '{to}'"
        ),
    )?;
    let samples = text
        .lines()
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .map(|s| Duration::from_secs_f64(s.max(0.0)))
        .collect();
    Ok(Percentiles::of(samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(offered: u32, achieved: f64, p99: f64, errors: usize) -> Step {
        Step {
            offered,
            sent: 100,
            errors,
            first_error: None,
            achieved,
            rest: Percentiles {
                p99,
                ..Percentiles::default()
            },
            outbox: Percentiles::default(),
            probe: Percentiles::default(),
            vcpu: vec![0.0; Proc::ALL.len()],
        }
    }

    #[test]
    fn the_schedule_is_fixed_by_the_rate_not_by_the_answers() {
        assert_eq!(requests_in(400, Duration::from_secs(10)), 4000);
        assert_eq!(requests_in(3, Duration::from_millis(500)), 2);
        assert_eq!(intended_offset(0, 400), Duration::ZERO);
        assert_eq!(intended_offset(400, 400), Duration::from_secs(1));
        assert_eq!(intended_offset(1, 4), Duration::from_millis(250));
    }

    #[test]
    fn a_step_is_sustained_only_when_served_in_full_and_on_time() {
        assert!(step(1000, 990.0, 40.0, 0).sustained());
        assert!(!step(1000, 900.0, 40.0, 0).sustained(), "too little served");
        assert!(!step(1000, 990.0, 2500.0, 0).sustained(), "a growing queue");
        assert!(!step(1000, 990.0, 40.0, 1).sustained(), "errors");
    }

    #[test]
    fn saturation_is_the_last_sustained_step_and_the_next() {
        let results = |steps| Results {
            date: String::new(),
            load_average: String::new(),
            cpus: 2,
            step_secs: 1.0,
            max_in_flight: 1,
            probe_rate: 1,
            idle_vcpu: Vec::new(),
            steps,
            skipped: Vec::new(),
        };
        let r = results(vec![
            step(200, 200.0, 10.0, 0),
            step(400, 399.0, 20.0, 0),
            step(800, 600.0, 3000.0, 0),
            step(1600, 620.0, 9000.0, 0),
        ]);
        let (ok, not) = r.saturation();
        assert_eq!(ok.map(|s| s.offered), Some(400));
        assert_eq!(not.map(|s| s.offered), Some(800));
        let never = results(vec![step(200, 100.0, 10.0, 0)]);
        assert_eq!(never.saturation().0.map(|s| s.offered), None);
        assert_eq!(never.saturation().1.map(|s| s.offered), Some(200));
        let always = results(vec![step(200, 200.0, 10.0, 0)]);
        assert!(always.saturation().1.is_none());
    }

    #[tokio::test]
    async fn an_open_loop_sends_every_request_and_counts_failures() {
        let outcomes = offer(2000, Duration::from_millis(50), 4, |i| async move {
            ensure!(i % 10 != 3, "request {i} refused");
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(outcomes.len(), 100);
        let failed: Vec<_> = outcomes.iter().filter_map(|o| o.error.as_deref()).collect();
        assert_eq!(failed.len(), 10);
        assert!(failed.iter().all(|e| e.contains("refused")), "{failed:?}");
    }
}
