//! Uniform progress output: every step says what it does and how long it took.

#![allow(clippy::print_stdout, clippy::print_stderr)] // This module is the xtask's console.

use std::time::{Duration, Instant};

/// Runs `f` as a named step, printing its start, and its duration when done.
pub(crate) fn run<T>(name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    println!("==> {name}");
    let start = Instant::now();
    let result = f();
    let took = format_duration(start.elapsed());
    match &result {
        Ok(_) => println!("    done: {name} ({took})"),
        Err(_) => println!("    FAILED: {name} ({took})"),
    }
    result
}

/// An indented detail line under the current step.
pub(crate) fn info(msg: &str) {
    println!("    {msg}");
}

/// A final error, on stderr.
pub(crate) fn error(msg: &str) {
    eprintln!("error: {msg}");
}

/// `1m05s`, `12.3s`.
pub(crate) fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
