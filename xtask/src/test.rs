//! `cargo xtask test`: prerequisites, lints, then every test in the workspace.
//!
//! The integration and end-to-end suites start real PostgreSQL, the broker (`--broker`: Redis,
//! Kafka or RabbitMQ, passed on as `TODO_BROKER`), Scheduler and daprd processes through the
//! harness; `deps` makes sure those programs exist first.

use anyhow::bail;

use harness::resources::Broker;

use crate::deps::{self, DepsArgs};
use crate::step;

/// Options of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub(crate) struct TestArgs {
    /// Skip `cargo fmt --check`, `cargo clippy`, `cargo doc`, `cargo deny` and the manifest
    /// checks (CI never skips them).
    #[arg(long)]
    no_lint: bool,
    /// Run the broker suites only on `--broker`, not also on the other profiles (CI runs all).
    #[arg(long)]
    one_broker: bool,
    /// Skip the Kubernetes suite (a local node with Dapr's control plane and our chart).
    #[arg(long)]
    no_cluster: bool,
    #[command(flatten)]
    deps: DepsArgs,
    /// Extra arguments for `cargo test` (e.g. `-- --nocapture`, or a test name filter).
    #[arg(last = true)]
    cargo_test_args: Vec<String>,
}

pub(crate) fn run(args: &TestArgs) -> anyhow::Result<()> {
    crate::up::ensure_no_detached_stack()?;
    let start = std::time::Instant::now();
    // Every harness run directory made from here on is this invocation's (the secret scan).
    let started_at = std::time::SystemTime::now();
    // The tests never need the CLI; `up` builds it for `dapr run -f`. The image tools serve
    // only the shipping checks.
    let deps_args = DepsArgs {
        no_cli: true,
        image_tools: !args.no_lint,
        ..args.deps.clone()
    };
    let install = deps::run(&deps_args)?;
    if !args.no_lint {
        step::run("cargo fmt --check", || {
            cargo(&["fmt", "--all", "--check"], &[])
        })?;
        step::run("cargo clippy", || {
            cargo(
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--locked",
                    "--",
                    "-D",
                    "warnings",
                ],
                &[],
            )
        })?;
        // The API docs build without a warning (broken intra-doc links included), so what
        // `cargo doc` shows a newcomer is what the code is.
        step::run("cargo doc (warnings denied)", || {
            cargo(
                &["doc", "--workspace", "--no-deps", "--locked"],
                &[("RUSTDOCFLAGS", std::ffi::OsStr::new("-D warnings"))],
            )
        })?;
        step::run(
            &format!(
                "cargo deny {} (licenses, bans, sources; offline)",
                crate::deny::VERSION
            ),
            crate::deny::check,
        )?;
        // Offline proofs for what ships beside the code; each takes seconds once cached.
        step::run(
            "Grafana dashboards and Prometheus rules",
            crate::observability::check,
        )?;
        step::run(
            "Helm chart: lint, render, kubernetes-validate, Dapr schemas, template tests",
            crate::helm_check::check,
        )?;
        step::run("Nix flake (offline, stub inputs)", crate::nix_check::check)?;
        step::run(
            "OCI images: reproducible, < 25 MB, skopeo / umoci / oci-image-tool, binary runs",
            crate::images::check,
        )?;
    }
    // The end-to-end suites start the service binaries as processes: build them first, so a
    // filtered run (`cargo xtask test -- backend_e2e`) never picks up a stale binary.
    step::run(
        "cargo build (service binaries)",
        crate::cargo::build_binaries,
    )?;
    let mut test_args = vec!["test", "--workspace", "--locked"];
    test_args.extend(args.cargo_test_args.iter().map(String::as_str));

    // `#[sqlx::test]` creates a fresh database per test on the server in DATABASE_URL; this
    // server lives exactly as long as `cargo test` (the suites that need the whole stack start
    // their own through the harness).
    let bins = install.binaries()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let pg_root = tempfile::Builder::new()
        .prefix("todo-dapr-sqlx-")
        .tempdir()?;
    let log_dir = harness::stack::default_log_dir();
    let postgres = step::run("PostgreSQL for #[sqlx::test]", || {
        runtime.block_on(harness::Postgres::start(
            &bins,
            pg_root.path(),
            &log_dir,
            false,
        ))
    })?;
    let database_url = postgres.url("postgres");
    let mut env: Vec<(&str, &std::ffi::OsStr)> = install
        .env()
        .iter()
        .map(|(k, v)| (*k, v.as_os_str()))
        .collect();
    env.push(("DATABASE_URL", std::ffi::OsStr::new(&database_url)));
    let broker = args.deps.broker.profile();
    env.push((harness::resources::BROKER_ENV, std::ffi::OsStr::new(broker)));
    // The short soak, on the main profile only: its faults are the other scenarios' again,
    // mixed; what it adds is their sum over minutes, which one profile shows.
    env.push((
        harness::suite::SOAK_MINUTES_ENV,
        std::ffi::OsStr::new(SHORT_SOAK_MINUTES),
    ));
    let result = step::run(
        &format!("cargo test (unit, integration, end-to-end; broker {broker})"),
        || cargo(&test_args, &env),
    );
    drop(postgres);
    result?;

    // A filtered run (`-- <filter>`) is after one test; the whole suite also proves the bench.
    if args.cargo_test_args.is_empty() {
        step::run(
            "benchmarks, tiny and unoptimised (cargo xtask bench … --smoke)",
            crate::bench::smoke,
        )?;
    }

    // Broker portability: the suites that run through daprd again on every other profile, with
    // the same binaries; only the `pubsub` component file differs.
    if !args.one_broker {
        for other in Broker::ALL.into_iter().filter(|b| *b != args.deps.broker) {
            let other_install = deps::run(&DepsArgs {
                no_cli: true,
                broker: other,
                ..args.deps.clone()
            })?;
            let mut env: Vec<(&str, &std::ffi::OsStr)> = other_install
                .env()
                .iter()
                .map(|(k, v)| (*k, v.as_os_str()))
                .collect();
            env.push((
                harness::resources::BROKER_ENV,
                std::ffi::OsStr::new(other.profile()),
            ));
            step::run(
                &format!(
                    "broker suites on {} (integration, end-to-end)",
                    other.profile()
                ),
                || {
                    let mut suite = vec!["test", "--locked", "-p", "todo-dapr-tests"];
                    suite.extend(args.cargo_test_args.iter().map(String::as_str));
                    cargo(&suite, &env)
                },
            )?;
        }
    }
    // Every value the harness handed out as a secret, searched for in every log of the runs
    // above (the Kubernetes suite keeps its logs in the node's data directory instead).
    step::run("no secret in the harness logs of this run", || {
        crate::secret_scan::check(started_at)
    })?;
    if !args.no_cluster {
        cluster_suite(&args.cargo_test_args)?;
    }
    step::info(&format!(
        "all green in {}",
        step::format_duration(start.elapsed())
    ));
    Ok(())
}

/// The Kubernetes suite: `cluster up` (node, Dapr's chart, monitoring, our chart), the scenarios
/// of `tests/tests/cluster_e2e.rs`, `cluster_upgrade.rs` and `cluster_monitoring.rs` against it,
/// then `cluster down` with its check that the machine is as before — also when the scenarios or
/// the start failed.
fn cluster_suite(cargo_test_args: &[String]) -> anyhow::Result<()> {
    let started = step::run(
        "Kubernetes: node, Dapr control plane, todo-dapr chart",
        crate::cluster::up,
    );
    let tests = started.and_then(|_| {
        let state = crate::cluster::state_file();
        // In this order, each suite on its own: the upgrade drills want a quiet system (the
        // monitoring suite's load leaves minutes of events and reminder triggers behind), and
        // the monitoring suite's figures include the traffic of both before it.
        ["cluster_e2e", "cluster_upgrade", "cluster_monitoring"]
            .into_iter()
            .try_for_each(|name| {
                step::run(&format!("cluster suite {name}"), || {
                    let mut suite =
                        vec!["test", "--locked", "-p", "todo-dapr-tests", "--test", name];
                    suite.extend(cargo_test_args.iter().map(String::as_str));
                    cargo(&suite, &[("TODO_CLUSTER_STATE", state.as_os_str())])
                })
            })
    });
    // Whatever happened, a recorded cluster is stopped.
    let stopped = if crate::cluster::state_file().exists() {
        step::run(
            "Kubernetes: down, and nothing left behind",
            crate::cluster::down,
        )
    } else {
        Ok(())
    };
    tests.and(stopped)
}

/// Minutes of the soak inside `cargo xtask test` (`cargo xtask soak` runs longer ones).
const SHORT_SOAK_MINUTES: &str = "2";

/// Runs cargo with `args` and extra environment; fails on a non-zero exit.
pub(crate) fn cargo(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> anyhow::Result<()> {
    let mut cmd = crate::cargo::command();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = cmd.status()?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}
