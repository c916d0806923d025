//! `cargo xtask bench backend`: load the backend over REST and measure it.
//!
//! The benchmark starts its own stack (PostgreSQL, Redis, Scheduler, daprd, and a release
//! build of the backend) so every run measures the same thing, then:
//!
//! 1. samples the idle RSS of the backend and its sidecar;
//! 2. creates `--tasks` tasks over REST from `--concurrency` workers, timing each request and
//!    sampling RSS every 50 ms;
//! 3. waits for the outbox to drain and reads each event's commit → acknowledged delay from the
//!    outbox rows themselves (`published_at - created_at`, set by PostgreSQL's clock);
//! 4. publishes `--publishes` events to the same daprd twice — a bare HTTP loop (the baseline)
//!    and our publisher stack (middleware `Publisher` over the `dapr` client) — so our overhead
//!    is a ratio measured in the same run;
//! 5. prints the figures and writes `BENCHMARKS.md`.

#![allow(clippy::print_stdout)] // The report is the command's output.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use harness::{Infra, InfraOptions, Service, ServiceOptions, ports, wait};
use serde_json::json;

use crate::deps::{self, DepsArgs};
use crate::step;

/// Marked as a benchmark fixture: the HS256 key of the throw-away backend the bench starts.
const BENCH_JWT_KEY: &str = "bench-fixture-jwt-key-not-a-secret";

/// What to benchmark.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Target {
    /// The backend: REST writes, outbox relay, publish path.
    Backend,
}

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// What to benchmark.
    #[arg(value_enum)]
    target: Target,
    /// Tasks created over REST.
    #[arg(long, default_value_t = 5000)]
    tasks: usize,
    /// Concurrent REST clients (and concurrent publishers in the publish comparison).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Events published in each arm of the publish comparison.
    #[arg(long, default_value_t = 5000)]
    publishes: usize,
    /// Print the results without rewriting BENCHMARKS.md.
    #[arg(long)]
    no_write: bool,
    #[command(flatten)]
    deps: DepsArgs,
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
struct Percentiles {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

impl Percentiles {
    fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort();
        let at = |q: f64| {
            // Nearest-rank percentile.
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1].as_secs_f64() * 1000.0
        };
        Self {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }

    fn row(&self) -> String {
        format!(
            "{:.2} | {:.2} | {:.2} | {:.2}",
            self.p50, self.p95, self.p99, self.max
        )
    }
}

#[derive(Debug)]
struct Results {
    tasks: usize,
    concurrency: usize,
    publishes: usize,
    rest_elapsed: Duration,
    rest: Percentiles,
    outbox: Percentiles,
    bare: Percentiles,
    bare_elapsed: Duration,
    ours: Percentiles,
    ours_elapsed: Duration,
    backend_idle_kib: u64,
    backend_peak_kib: u64,
    daprd_idle_kib: u64,
    daprd_peak_kib: u64,
    /// `/proc/loadavg` when the measurement started: other work on the machine skews results.
    load_average: String,
}

pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let Target::Backend = args.target;
    // BENCHMARKS.md describes, and DESIGN §7 sets targets for, the default Redis profile.
    anyhow::ensure!(
        args.deps.broker == harness::Broker::Redis,
        "benchmarks run on the default broker profile (redis), not {}",
        args.deps.broker
    );
    let install = deps::run(&DepsArgs {
        no_cli: true,
        ..args.deps.clone()
    })?;
    step::run("cargo build --release -p backend", || {
        let status =
            std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .args(["build", "--release", "--locked", "-p", "backend"])
                .current_dir(harness::repo_root())
                .status()?;
        ensure!(status.success(), "release build failed ({status})");
        Ok(())
    })?;
    let binary = harness::repo_root().join("target/release/backend");
    let bins = install.binaries()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let results = runtime.block_on(measure(args, bins, binary))?;
    print_results(&results);
    if !args.no_write {
        let path = harness::repo_root().join("BENCHMARKS.md");
        std::fs::write(&path, render_markdown(&results))?;
        step::info(&format!("wrote {}", path.display()));
    }
    Ok(())
}

async fn measure(
    args: &BenchArgs,
    bins: harness::Binaries,
    binary: PathBuf,
) -> anyhow::Result<Results> {
    let infra = Infra::start(InfraOptions {
        binaries: Some(bins),
        ..InfraOptions::default()
    })
    .await?;
    infra.postgres.create_database("backend")?;
    let port = ports::free_port()?;
    let daprd = infra.daprd("backend", Some(port), |_| {}).await?;
    let backend = Service::start(
        &ServiceOptions {
            binary: "backend".into(),
            log_name: "backend".into(),
            port,
            env: vec![
                ("BACKEND_PORT".into(), port.to_string()),
                ("DATABASE_URL".into(), infra.postgres.url("backend")),
                ("JWT_SECRET".into(), BENCH_JWT_KEY.into()),
                ("DAPR_HTTP_PORT".into(), daprd.http_port().to_string()),
                ("RUST_LOG".into(), "warn".into()),
            ],
            binary_path: Some(binary),
        },
        infra.log_dir(),
        false,
    )
    .await?;
    step::info(&format!("stack up; logs in {}", infra.log_dir().display()));
    let backend_pid = backend.pid().context("backend pid")?;
    let daprd_pid = daprd.pid().context("daprd pid")?;

    let load_average = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let token = bench_token()?;
    let url = format!("{}/api/v1/tasks", backend.base_url());
    // Warm the connection pools and the first code paths before measuring anything.
    for i in 0..50 {
        create_task(&http, &url, &token, i).await?;
    }
    wait_outbox_drained(&infra).await?;
    let backend_idle_kib = rss_kib(backend_pid)?;
    let daprd_idle_kib = rss_kib(daprd_pid)?;
    infra.postgres.psql("backend", "DELETE FROM outbox")?;

    // REST load, with an RSS sampler beside it.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = Arc::clone(&sampling);
        tokio::spawn(async move {
            let (mut backend_peak, mut daprd_peak) = (0, 0);
            while sampling.load(Ordering::Relaxed) {
                backend_peak = backend_peak.max(rss_kib(backend_pid).unwrap_or(0));
                daprd_peak = daprd_peak.max(rss_kib(daprd_pid).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (backend_peak, daprd_peak)
        })
    };
    let started = Instant::now();
    let rest = {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        run_concurrently(args.tasks, args.concurrency, move |i| {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            async move { create_task(&http, &url, &token, i).await }
        })
        .await?
    };
    let rest_elapsed = started.elapsed();
    wait_outbox_drained(&infra).await?;
    sampling.store(false, Ordering::Relaxed);
    let (backend_peak_kib, daprd_peak_kib) = sampler.await?;
    let outbox = outbox_lag(&infra)?;

    // Publish comparison against the same daprd: bare HTTP first, then our stack.
    let publish_url = format!(
        "{}/v1.0/publish/pubsub/bench-publish",
        daprd.http_endpoint()
    );
    let payload = serde_json::to_vec(&sample_event(0)?)?;
    let started = Instant::now();
    let bare = run_concurrently(args.publishes, args.concurrency, move |_| {
        let (http, url, body) = (http.clone(), publish_url.clone(), payload.clone());
        async move {
            let resp = http
                .post(&url)
                .header("content-type", "application/cloudevents+json")
                .body(body)
                .send()
                .await?;
            ensure!(
                resp.status() == 204,
                "bare publish answered {}",
                resp.status()
            );
            Ok(())
        }
    })
    .await?;
    let bare_elapsed = started.elapsed();

    let client = dapr::DaprClient::new(dapr::ClientConfig {
        http_endpoint: daprd.http_endpoint(),
        ..dapr::ClientConfig::default()
    })?;
    let publisher = middleware::Publisher::dapr(
        client,
        &middleware::PublisherConfig {
            concurrency: args.concurrency,
            ..middleware::PublisherConfig::default()
        },
    );
    let started = Instant::now();
    let ours = run_concurrently(args.publishes, args.concurrency, move |i| {
        let publisher = publisher.clone();
        async move {
            let request =
                middleware::PublishRequest::new("pubsub", "bench-publish", sample_event(i)?);
            publisher.publish(request).await?;
            Ok(())
        }
    })
    .await?;
    let ours_elapsed = started.elapsed();

    Ok(Results {
        tasks: args.tasks,
        concurrency: args.concurrency,
        publishes: args.publishes,
        rest_elapsed,
        rest,
        outbox,
        bare,
        bare_elapsed,
        ours,
        ours_elapsed,
        backend_idle_kib,
        backend_peak_kib,
        daprd_idle_kib,
        daprd_peak_kib,
        load_average,
    })
}

/// Runs `n` jobs on `concurrency` workers and returns each job's latency.
async fn run_concurrently<F, Fut>(
    n: usize,
    concurrency: usize,
    job: F,
) -> anyhow::Result<Percentiles>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (next, job) = (Arc::clone(&next), job.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let start = Instant::now();
                job(i).await?;
                latencies.push(start.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for worker in workers {
        all.extend(worker.await??);
    }
    Ok(Percentiles::of(all))
}

async fn create_task(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    i: usize,
) -> anyhow::Result<()> {
    let resp = http
        .post(url)
        .bearer_auth(token)
        .json(&json!({"title": format!("bench task {i}"), "priority": "medium"}))
        .send()
        .await?;
    if resp.status() != 201 {
        bail!(
            "create answered {}: {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

fn sample_event(i: usize) -> anyhow::Result<dapr::CloudEvent> {
    Ok(
        dapr::CloudEvent::new(uuid_like(i), "/todo/bench", "com.todo.bench.v1")
            .with_json_data(&json!({"n": i, "title": "a task title of ordinary length"}))?,
    )
}

/// A unique id without pulling in a UUID generator: nanoseconds since the epoch plus `i`.
fn uuid_like(i: usize) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("bench-{nanos}-{i}")
}

fn bench_token() -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims =
        json!({"sub": "bench-user", "email": "bench@example.test", "iat": now, "exp": now + 3600});
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(BENCH_JWT_KEY.as_bytes()),
    )?)
}

async fn wait_outbox_drained(infra: &Infra) -> anyhow::Result<()> {
    wait::until("the outbox to drain", Duration::from_secs(120), || async {
        let pending = infra.postgres.psql(
            "backend",
            "SELECT count(*) FROM outbox WHERE published_at IS NULL",
        )?;
        Ok::<_, anyhow::Error>((pending == "0").then_some(()))
    })
    .await?;
    Ok(())
}

/// Commit → acknowledged delay of every event of the run, from the outbox rows.
fn outbox_lag(infra: &Infra) -> anyhow::Result<Percentiles> {
    let text = infra.postgres.psql(
        "backend",
        "SELECT extract(epoch FROM published_at - created_at) FROM outbox WHERE published_at IS NOT NULL",
    )?;
    let samples = text
        .lines()
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .map(|s| Duration::from_secs_f64(s.max(0.0)))
        .collect();
    Ok(Percentiles::of(samples))
}

/// Resident set size of a process, from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(f64::EPSILON)
}

fn print_results(r: &Results) {
    println!();
    println!(
        "REST create: {} tasks, {} clients, {:.0} req/s",
        r.tasks,
        r.concurrency,
        per_second(r.tasks, r.rest_elapsed)
    );
    println!("  request latency ms  p50|p95|p99|max: {}", r.rest.row());
    println!("  outbox commit→ack ms p50|p95|p99|max: {}", r.outbox.row());
    println!(
        "publish to daprd: {} events, {} in flight",
        r.publishes, r.concurrency
    );
    println!(
        "  bare HTTP ms        p50|p95|p99|max: {}  ({:.0}/s)",
        r.bare.row(),
        per_second(r.publishes, r.bare_elapsed)
    );
    println!(
        "  our publisher ms    p50|p95|p99|max: {}  ({:.0}/s)",
        r.ours.row(),
        per_second(r.publishes, r.ours_elapsed)
    );
    println!(
        "  overhead p50 x{:.2}, p99 x{:.2}",
        ratio(r.ours.p50, r.bare.p50),
        ratio(r.ours.p99, r.bare.p99)
    );
    println!(
        "RSS backend idle {} peak {}; daprd idle {} peak {}",
        mib(r.backend_idle_kib),
        mib(r.backend_peak_kib),
        mib(r.daprd_idle_kib),
        mib(r.daprd_peak_kib)
    );
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

fn render_markdown(r: &Results) -> String {
    let date =
        harness::binaries::output_of(std::path::Path::new("date"), &["-u", "+%Y-%m-%d %H:%M UTC"])
            .unwrap_or_default();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!(
        "# Benchmarks\n\n\
Written by `cargo xtask bench backend` (last run: {date}, {cpus} CPUs, load average {load} when it\n\
started — other work on the machine shows up in every figure). Re-run it to refresh this file;\n\
`--tasks`, `--concurrency`, `--publishes` change the load.\n\n\
## Method\n\n\
The command starts its own stack on loopback — PostgreSQL, Redis Streams, the Dapr Scheduler, daprd\n\
and a **release** build of the backend — so every run measures the same thing. After a warm-up of\n\
50 requests it samples idle RSS (`VmRSS` from `/proc`), then creates {tasks} tasks over REST\n\
(`POST /api/v1/tasks`, HS256 bearer token) from {conc} concurrent clients, timing each request and\n\
sampling RSS every 50 ms. It waits for the outbox to drain and takes each event's commit →\n\
acknowledged delay from the outbox row (`published_at - created_at`, both PostgreSQL's clock;\n\
`published_at` is written right after daprd's 204). Finally it publishes {pubs} CloudEvents to\n\
the same daprd twice with {conc} in flight: a bare HTTP loop (the baseline) and our publisher\n\
(middleware `Publisher`: concurrency → retry → timeout over the `dapr` client), so our overhead is\n\
a ratio from the same run. Percentiles are nearest-rank over every sample.\n\n\
## Results\n\n\
| measurement | p50 ms | p95 ms | p99 ms | max ms | throughput |\n\
|---|---|---|---|---|---|\n\
| REST create, request latency | {rest} | {rest_rps:.0} req/s |\n\
| outbox commit → publish acknowledged | {outbox} | — |\n\
| publish, bare HTTP to daprd (baseline) | {bare} | {bare_rps:.0} events/s |\n\
| publish, our publisher stack | {ours} | {ours_rps:.0} events/s |\n\n\
Publisher overhead over the bare baseline: p50 ×{r50:.2}, p99 ×{r99:.2}.\n\n\
| process | idle RSS | peak RSS under load |\n\
|---|---|---|\n\
| backend | {bi} | {bp} |\n\
| daprd (backend's sidecar) | {di} | {dp} |\n\n\
## Targets (DESIGN.md §7)\n\n\
| target | measured |\n\
|---|---|\n\
| publish p99 < 5 ms on loopback (Redis) | our publisher p99 {ours_p99:.2} ms |\n\
| our overhead ≤ 10 % over a bare HTTP call to daprd | p50 ×{r50:.2}, p99 ×{r99:.2} |\n\
| ≥ 5000 events/s sustained publish | {ours_rps:.0} events/s (our publisher), {bare_rps:.0} events/s (bare) |\n\
| backend < 20 MB RSS idle, < 40 MB loaded | {bi} idle, {bp} peak |\n",
        load = r.load_average,
        tasks = r.tasks,
        conc = r.concurrency,
        pubs = r.publishes,
        rest = r.rest.row(),
        rest_rps = per_second(r.tasks, r.rest_elapsed),
        outbox = r.outbox.row(),
        bare = r.bare.row(),
        bare_rps = per_second(r.publishes, r.bare_elapsed),
        ours = r.ours.row(),
        ours_rps = per_second(r.publishes, r.ours_elapsed),
        ours_p99 = r.ours.p99,
        r50 = ratio(r.ours.p50, r.bare.p50),
        r99 = ratio(r.ours.p99, r.bare.p99),
        bi = mib(r.backend_idle_kib),
        bp = mib(r.backend_peak_kib),
        di = mib(r.daprd_idle_kib),
        dp = mib(r.daprd_peak_kib),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(samples);
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(Vec::new()).p99, 0.0);
    }
}
