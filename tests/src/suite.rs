//! A test runner for suites that share one expensive environment.
//!
//! libtest starts every `#[test]` on its own, so a suite that needs daprd, a broker and a
//! database would start them once per test or leak them through statics that are never
//! dropped. A suite binary (`harness = false`) instead calls [`run`]: the environment starts
//! once, the tests run (libtest-mimic gives the usual filters and output), and the
//! environment is dropped — stopping every process — before the process exits, pass or fail.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use libtest_mimic::{Arguments, Failed, Trial};

/// Minutes of the consumers suite's soak scenario; unset, the scenario is not in the suite
/// (`cargo xtask test` sets 2 on its main broker profile, `cargo xtask soak` what it is told).
pub const SOAK_MINUTES_ENV: &str = "TODO_SOAK_MINUTES";
/// Seed of the soak's workload and fault schedule (default 1).
pub const SOAK_SEED_ENV: &str = "TODO_SOAK_SEED";

/// One test: borrows the environment, fails with an error that explains itself.
pub type TestFn<E> = for<'a> fn(&'a E) -> BoxFuture<'a, anyhow::Result<()>>;

/// `(name, test)` pairs, in the order they are listed.
pub type Tests<E> = Vec<(&'static str, TestFn<E>)>;

/// Builds a [`Tests`] list from async fns taking `&Env`.
#[macro_export]
macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|env| Box::pin($name(env))) as $crate::suite::TestFn<_>)),*]
    };
}

/// How the suite may run its tests.
#[derive(Clone, Copy, Debug, Default)]
pub enum Parallelism {
    /// Tests may run at the same time (they use their own topics, keys, tasks).
    #[default]
    Parallel,
    /// One at a time (tests stop and start processes of the shared environment).
    Serial,
}

/// Starts the environment with `start`, runs `tests`, stops the environment, and returns the
/// process exit code. `log_dir` tells a failing run where the process logs are.
#[allow(clippy::print_stderr)] // The runner reports to the terminal like libtest does.
pub fn run<E, F, Fut>(
    start: F,
    tests: Tests<E>,
    parallelism: Parallelism,
    log_dir: fn(&E) -> PathBuf,
) -> ExitCode
where
    E: Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<E>>,
{
    let mut args = Arguments::from_args();
    if matches!(parallelism, Parallelism::Serial) {
        args.test_threads = Some(1);
    }
    let selected = tests
        .iter()
        .any(|(name, _)| !args.is_filtered_out(&Trial::test(*name, || Ok(()))));
    if args.list || !selected {
        // Listing, or a filter that excludes all of this suite: no environment needed.
        let trials = tests
            .iter()
            .map(|(name, _)| Trial::test(*name, || Ok(())))
            .collect();
        return libtest_mimic::run(&args, trials).exit_code();
    }

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let env = match runtime.block_on(start()) {
        Ok(env) => Arc::new(env),
        Err(e) => {
            eprintln!("could not start the test environment: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("test environment up; logs in {}", log_dir(&env).display());
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            let env = Arc::clone(&env);
            let handle = runtime.handle().clone();
            Trial::test(name, move || {
                handle
                    .block_on(test(&env))
                    .map_err(|e| Failed::from(format!("{e:#}")))
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    if conclusion.has_failed() {
        eprintln!("process logs: {}", log_dir(&env).display());
    }
    // The trials are gone, so this is the last reference: dropping it stops every process.
    drop(env);
    drop(runtime);
    conclusion.exit_code()
}
