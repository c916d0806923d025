//! Reading a service's own Prometheus counters, for positive evidence that something happened.

/// The sum of `metric`'s samples on `base_url`'s `/metrics` whose line contains `filter` (say
/// `outcome="retry"`; empty: every sample). A longer name that merely starts with `metric`
/// (`…_total` vs `…_total_created`) is not counted.
pub(crate) async fn counter(
    http: &reqwest::Client,
    base_url: &str,
    metric: &str,
    filter: &str,
) -> anyhow::Result<f64> {
    let text = http
        .get(format!("{base_url}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
                && l.contains(filter)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}
