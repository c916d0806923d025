//! Polling with a deadline: the only way the harness waits for something to become true.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How often conditions are re-checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A condition that did not hold before its deadline.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {waited:?} waiting for {what}{}", last.as_deref().map(|l| format!(" (last: {l})")).unwrap_or_default())]
pub struct TimedOut {
    /// What was being waited for.
    pub what: String,
    /// How long we waited.
    pub waited: Duration,
    /// The last observation, to make the failure explain itself.
    pub last: Option<String>,
}

/// Calls `check` every [`POLL_INTERVAL`] until it returns `Ok(Some(value))` or `timeout` passes.
///
/// `Ok(None)` and `Err(_)` both mean "not yet"; the last error is reported on time-out.
pub async fn until<T, E, F, Fut>(what: &str, timeout: Duration, check: F) -> Result<T, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
    E: std::fmt::Display,
{
    until_every(what, timeout, POLL_INTERVAL, check).await
}

/// [`until`] with its own re-check interval: for measurements, where the interval bounds the
/// timing error.
pub async fn until_every<T, E, F, Fut>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut check: F,
) -> Result<T, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
    E: std::fmt::Display,
{
    let start = Instant::now();
    let mut last = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last = Some(e.to_string()),
        }
        if start.elapsed() >= timeout {
            return Err(TimedOut {
                what: what.to_owned(),
                waited: start.elapsed(),
                last,
            });
        }
        tokio::time::sleep(interval).await;
    }
}

/// [`until`] for a process that is starting: `check` is polled while `process` runs, and a
/// process that exits ends the wait at once with its exit and the end of its log (rather than
/// when `timeout` runs out).
pub async fn until_running<T, E, F, Fut>(
    what: &str,
    timeout: Duration,
    process: &mut crate::ManagedProcess,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
    E: std::fmt::Display,
{
    until(what, timeout, || {
        let running = process.ensure_running();
        let checked = check();
        async move {
            if let Err(exited) = running {
                // `Some`: stop waiting; the exit is the answer.
                return Ok::<_, E>(Some(Err(exited)));
            }
            Ok(checked.await?.map(Ok))
        }
    })
    .await?
}

/// Waits until an HTTP GET of `url` answers with `expected` status.
pub async fn http_status(
    client: &reqwest::Client,
    url: &str,
    expected: u16,
    timeout: Duration,
) -> Result<(), TimedOut> {
    until(&format!("GET {url} -> {expected}"), timeout, || async {
        let resp = client.get(url).send().await?;
        let ok = resp.status().as_u16() == expected;
        Ok::<_, reqwest::Error>(ok.then_some(()))
    })
    .await
}
