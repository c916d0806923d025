//! `cargo xtask bench <target>`: measure the services and write the figures to BENCHMARKS.md.
//!
//! One module per scenario ([`backend`]: writes and the publish path; [`data`]: reads as a
//! user's task list grows; [`load`]: open-loop writes up to saturation; [`reminders`]: many
//! reminders due in the same minute). What they share lives here: the arguments, the
//! optimised re-run, the load generator, percentiles and the bench's bearer tokens.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::json;

use crate::deps::DepsArgs;
use crate::step;

mod backend;
mod data;
mod doc;
mod load;
mod plot;
mod procfs;
mod reminders;

/// Marked as a benchmark fixture: the HS256 key of the throw-away backend the bench starts.
const BENCH_JWT_KEY: &str = "bench-fixture-jwt-key-not-a-secret";

/// What to benchmark.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Target {
    /// The backend: REST writes, outbox relay, publish path.
    Backend,
    /// Reads as the task table grows: list, filter, sort and search latency per size.
    Data,
    /// Open-loop REST load at rising rates: latency, saturation and CPU per process.
    Load,
    /// Reminder fan-in: many reminders due in one window, across notification replicas.
    Reminders,
}

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// What to benchmark.
    #[arg(value_enum)]
    target: Target,
    #[command(flatten)]
    backend: backend::BackendArgs,
    #[command(flatten)]
    data: data::DataArgs,
    #[command(flatten)]
    load: load::LoadArgs,
    #[command(flatten)]
    reminders: reminders::ReminderArgs,
    /// Print the results without rewriting BENCHMARKS.md.
    #[arg(long)]
    no_write: bool,
    /// A quick run on the debug builds `cargo build` made, as `cargo xtask test` does with tiny
    /// sizes so the bench's code keeps working: its figures mean nothing, so it implies
    /// `--no-write`.
    #[arg(long)]
    smoke: bool,
    #[command(flatten)]
    deps: DepsArgs,
}

pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if cfg!(debug_assertions) && !args.smoke {
        return rerun_optimised();
    }
    match args.target {
        Target::Backend => backend::run(args),
        Target::Data => data::run(args),
        Target::Load => load::run(args),
        Target::Reminders => reminders::run(args),
    }
}

impl BenchArgs {
    /// Whether the results may rewrite BENCHMARKS.md: never from a smoke run.
    fn writes(&self) -> bool {
        !self.no_write && !self.smoke
    }
}

/// What every scenario does first: installs what its stack needs (without the dapr CLI) and
/// builds `packages`, optimised unless `args.smoke`. Returns the harness's binaries and the
/// directory of the built binaries.
fn prepare(
    args: &BenchArgs,
    packages: &[&str],
) -> anyhow::Result<(harness::Binaries, std::path::PathBuf)> {
    let install = crate::deps::run(&DepsArgs {
        no_cli: true,
        ..args.deps.clone()
    })?;
    let (profile, mut build) = if args.smoke {
        ("debug", vec!["build", "--locked"])
    } else {
        ("release", vec!["build", "--release", "--locked"])
    };
    for package in packages {
        build.extend(["-p", package]);
    }
    step::run(&format!("cargo {}", build.join(" ")), || {
        let status = crate::cargo::command().args(&build).status()?;
        ensure!(status.success(), "{profile} build failed ({status})");
        Ok(())
    })?;
    Ok((
        install.binaries()?,
        crate::cargo::target_dir()?.join(profile),
    ))
}

/// The scenarios of [`smoke`], as arguments of `cargo xtask bench`.
const SMOKE_RUNS: [&[&str]; 4] = [
    &[
        "backend",
        "--tasks",
        "40",
        "--concurrency",
        "4",
        "--publishes",
        "200",
        "--burst",
        "20",
    ],
    &[
        "data",
        "--sizes",
        "100,300",
        "--requests",
        "10",
        "--users",
        "10",
    ],
    &[
        "load",
        "--rates",
        "20,40",
        "--step-secs",
        "2",
        "--probe-rate",
        "10",
    ],
    &["reminders", "--reminders", "30", "--window-secs", "3"],
];

/// The command line of one smoke run, parsed as `cargo xtask bench` parses it.
#[derive(clap::Parser)]
struct SmokeLine {
    #[command(flatten)]
    bench: BenchArgs,
}

/// `args` with `--smoke`, on the default broker profile (the backend scenario is defined on it,
/// whatever `TODO_BROKER` says).
fn smoke_args(args: &[&str]) -> anyhow::Result<BenchArgs> {
    let line = ["bench"]
        .iter()
        .chain(args)
        .chain(&["--smoke", "--broker", "redis"]);
    let parsed = <SmokeLine as clap::Parser>::try_parse_from(line)
        .with_context(|| format!("parsing `bench {}`", args.join(" ")))?;
    Ok(parsed.bench)
}

/// The bench as `cargo xtask test` runs it: every scenario with tiny sizes on the debug builds
/// (`--smoke`), each against its own stack, so a change that breaks the bench fails the tests.
/// Nothing is timed against a limit and nothing is written. In this process: `cargo test` may
/// have rebuilt the xtask binary that is running, so it is not started again.
pub(crate) fn smoke() -> anyhow::Result<()> {
    for args in SMOKE_RUNS {
        run(&smoke_args(args)?)
            .with_context(|| format!("`cargo xtask bench {} --smoke`", args.join(" ")))?;
    }
    Ok(())
}

/// Runs this same command again from a release build of xtask. The load generator and the
/// publisher under test run in this process: from the `cargo xtask` (dev) build, our publisher
/// and client code would be measured unoptimised (the publisher's overhead over a bare POST was
/// ×1.4 at p50 that way; it is within noise when optimised).
fn rerun_optimised() -> anyhow::Result<()> {
    step::run(
        "cargo build --release -p xtask (the benchmark runs optimised)",
        || {
            let status = crate::cargo::command()
                .args(["build", "--release", "--locked", "-p", "xtask"])
                .status()?;
            ensure!(status.success(), "release build of xtask failed ({status})");
            Ok(())
        },
    )?;
    let exe = crate::cargo::target_dir()?.join("release").join("xtask");
    let status = std::process::Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .status()
        .with_context(|| format!("running {}", exe.display()))?;
    ensure!(status.success(), "{} failed ({status})", exe.display());
    Ok(())
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
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

/// Runs `n` jobs on `concurrency` workers and returns each job's latency.
async fn run_concurrently<F, Fut>(
    n: usize,
    concurrency: usize,
    job: F,
) -> anyhow::Result<Vec<Duration>>
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
    Ok(all)
}

/// An hour-long HS256 bearer token for `subject`, signed with [`BENCH_JWT_KEY`].
fn bench_token(subject: &str) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = json!({
        "sub": subject,
        "email": format!("{subject}@example.test"),
        "iat": now,
        "exp": now + 3600,
    });
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(BENCH_JWT_KEY.as_bytes()),
    )?)
}

/// `/proc/loadavg`'s three averages: other work on the machine skews every figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `date -u` as BENCHMARKS.md prints it.
fn utc_now() -> String {
    harness::binaries::output_of(std::path::Path::new("date"), &["-u", "+%Y-%m-%d %H:%M UTC"])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smoke_runs_parse_as_smoke_runs() {
        for args in SMOKE_RUNS {
            let parsed = smoke_args(args).unwrap();
            assert!(parsed.smoke && !parsed.writes(), "{args:?}");
            assert_eq!(parsed.deps.broker, harness::Broker::Redis);
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(samples);
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(Vec::new()).p99, 0.0);
        let one = Percentiles::of(vec![Duration::from_millis(7)]);
        assert_eq!((one.p50, one.p99), (7.0, 7.0));
    }
}
