//! The "Reminder fan-in" section of BENCHMARKS.md, its two pictures, and the printed figures.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::Results;
use crate::bench::{doc, plot};

/// The heading of this command's section; the section runs to the next `## ` heading.
pub(super) const HEADING: &str = "## Reminder fan-in";

/// Where the lateness distribution goes, relative to the repository (and to BENCHMARKS.md).
pub(super) const LATENESS_SVG: &str = "docs/bench/reminder-lateness.svg";
/// Where the mail rate over the window goes.
pub(super) const RATE_SVG: &str = "docs/bench/reminder-rate.svg";

/// Points of the lateness curve: enough for a smooth line, few enough to read the SVG.
const CDF_POINTS: usize = 200;

/// The sum of the samples of `metric` in a Prometheus text page whose labels contain `filter`
/// (`""`: every sample). Counters print as floats.
pub(super) fn metric_sum(page: &str, metric: &str, filter: &str) -> f64 {
    page.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(metric)?;
            // `metric{…} v` or `metric v`; not `metric_created…`.
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            labels.contains(filter).then_some(value)
        })
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

/// The cumulative buckets of histogram `metric` in a Prometheus text page, summed by upper
/// bound over every series: `(le, count)` in ascending `le` (`+Inf` last, as infinity).
pub(super) fn histogram(page: &str, metric: &str) -> Vec<(f64, f64)> {
    let bucket = format!("{metric}_bucket{{");
    let mut out: Vec<(f64, f64)> = Vec::new();
    for line in page.lines() {
        let Some((labels, value)) = line
            .strip_prefix(&bucket)
            .and_then(|rest| rest.split_once("} "))
        else {
            continue;
        };
        let le = labels
            .split(',')
            .find_map(|l| l.strip_prefix("le=\""))
            .and_then(|l| l.strip_suffix('"'))
            .and_then(|l| match l {
                "+Inf" => Some(f64::INFINITY),
                l => l.parse::<f64>().ok(),
            });
        let (Some(le), Ok(count)) = (le, value.trim().parse::<f64>()) else {
            continue;
        };
        match out.iter_mut().find(|(b, _)| *b == le) {
            Some((_, total)) => *total += count,
            None => out.push((le, count)),
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// `after − before`, bucket by bucket (a bucket missing before counts as empty then).
pub(super) fn histogram_delta(after: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|&(le, n)| {
            let then = before.iter().find(|(b, _)| *b == le).map_or(0.0, |b| b.1);
            (le, (n - then).max(0.0))
        })
        .collect()
}

/// Two cumulative histograms with the same buckets, added (a bucket missing from one counts
/// as empty there).
pub(super) fn histogram_sum(a: &[(f64, f64)], b: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = a.to_vec();
    for &(le, n) in b {
        match out.iter_mut().find(|(x, _)| *x == le) {
            Some((_, total)) => *total += n,
            None => out.push((le, n)),
        }
    }
    out.sort_by(|x, y| x.0.total_cmp(&y.0));
    out
}

/// The upper bound of the bucket holding quantile `q` of a cumulative histogram: "at most
/// this many seconds"; `None` without samples, infinity when beyond the last finite bound.
pub(super) fn bucket_quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    buckets
        .iter()
        .find(|(_, cumulative)| *cumulative >= q * total)
        .map(|(le, _)| *le)
}

/// How many of `times` fall in each whole second from `start` (a time before `start` counts
/// in the first second), up to the last one.
pub(super) fn per_second(times: &[SystemTime], start: SystemTime) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for t in times {
        let second = t.duration_since(start).map_or(0, |d| d.as_secs() as usize);
        if out.len() <= second {
            out.resize(second + 1, 0);
        }
        out[second] += 1;
    }
    out
}

/// The lateness distribution: x = lateness in ms, y = % of reminders mailed by then.
fn cdf(sorted: &[Duration]) -> Vec<(f64, f64)> {
    if sorted.is_empty() {
        return Vec::new();
    }
    let n = sorted.len();
    let mut points: Vec<(f64, f64)> = (0..=CDF_POINTS)
        .map(|k| {
            // The nearest-rank sample of quantile k / CDF_POINTS.
            let rank = (k * n).div_ceil(CDF_POINTS).clamp(1, n);
            (
                sorted[rank - 1].as_secs_f64() * 1000.0,
                rank as f64 * 100.0 / n as f64,
            )
        })
        .collect();
    points.dedup();
    points
}

/// The lateness picture.
pub(super) fn lateness_svg(r: &Results) -> anyhow::Result<String> {
    plot::svg(
        &plot::Chart {
            title: "Reminder lateness: share of reminders mailed within x ms of their time",
            x_desc: "lateness (SMTP acceptance − remind_at), ms",
            y_desc: "% of reminders mailed",
            log_x: false,
            log_y: false,
        },
        &[plot::Curve {
            label: format!(
                "{} reminders over {} s, {} replicas",
                r.reminders,
                r.window.as_secs(),
                r.replicas
            ),
            points: cdf(&r.lateness_sorted),
        }],
    )
}

/// The rate picture: reminders due and mails accepted per second of the window.
pub(super) fn rate_svg(r: &Results) -> anyhow::Result<String> {
    let due_rate = r.reminders as f64 / r.window.as_secs_f64().max(f64::EPSILON);
    let window = r.window.as_secs() as usize;
    let seconds = r.mailed_per_second.len().max(window);
    let due: Vec<(f64, f64)> = (0..seconds)
        .map(|s| (s as f64, if s < window { due_rate } else { 0.0 }))
        .collect();
    let mailed: Vec<(f64, f64)> = (0..seconds)
        .map(|s| {
            let n = r.mailed_per_second.get(s).copied().unwrap_or(0);
            (s as f64, n as f64)
        })
        .collect();
    plot::svg(
        &plot::Chart {
            title: "Reminders due and mailed per second",
            x_desc: "seconds since the first reminder was due",
            y_desc: "per second",
            log_x: false,
            log_y: false,
        },
        &[
            plot::Curve {
                label: "due".into(),
                points: due,
            },
            plot::Curve {
                label: "mailed (first mail of each reminder)".into(),
                points: mailed,
            },
        ],
    )
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// "yes" or what went wrong, for the table.
fn each_once(r: &Results) -> String {
    if r.each_once() {
        return format!("yes: {} reminders, {} mails", r.reminders, r.reminders);
    }
    format!(
        "**no**: {} missing, {} duplicate mails",
        r.missing.len(),
        r.duplicates
    )
}

/// How the scheduling went, in words.
fn scheduling(r: &Results) -> String {
    match (r.scheduled, r.slack_ms) {
        (Some(took), Some(slack)) if slack >= 0.0 => format!(
            "all {} jobs were scheduled {:.1} s after the first create, {:.1} s before the first \
             was due",
            r.reminders,
            secs(took),
            slack / 1000.0
        ),
        (Some(took), Some(slack)) => format!(
            "**scheduling overran the lead**: the last of {} jobs was scheduled {:.1} s after the \
             first create, {:.1} s after the first was due, so early lateness includes it",
            r.reminders,
            secs(took),
            -slack / 1000.0
        ),
        _ => "**not every job was seen scheduled** within the wait".to_owned(),
    }
}

/// The trigger's share of the lateness, from notification's histogram, in words.
fn trigger_split(r: &Results) -> String {
    let buckets = &r.triggers.lateness;
    let count = buckets.last().map_or(0.0, |b| b.1);
    let (Some(p50), Some(p99)) = (
        bucket_quantile(buckets, 0.5),
        bucket_quantile(buckets, 0.99),
    ) else {
        return "notification's trigger lateness histogram had no samples".to_owned();
    };
    let bound = |le: f64| {
        if le.is_finite() {
            format!("≤ {le} s")
        } else {
            "beyond its last bucket".to_owned()
        }
    };
    let trigger_mean = r.triggers.lateness_sum / count * 1000.0;
    let samples = &r.lateness_sorted;
    let mail_mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0
        / samples.len().max(1) as f64;
    format!(
        "notification's own histogram (`todo_reminder_lateness_seconds`: the trigger reaching a \
         replica − `remind_at`) over its {count:.0} published triggers: mean {trigger_mean:.0} ms, \
         p50 {}, p99 {} (bucket bounds); the mail's mean lateness was {mail_mean:.0} ms, so the \
         path after the trigger (backend lookup, publish, Redis, email-delivery, SMTP) took \
         about {:.0} ms of it on average",
        bound(p50),
        bound(p99),
        mail_mean - trigger_mean
    )
}

/// How the lead was chosen, in words.
fn lead(r: &Results) -> String {
    if r.lead_given {
        format!("and the lead was given: {:.1} s", secs(r.lead))
    } else {
        format!(
            "so the lead was ×{} that time per job plus {} s ({:.1} s)",
            super::LEAD_FACTOR,
            super::LEAD_MARGIN.as_secs(),
            secs(r.lead)
        )
    }
}

/// Mails per second during the window and after it, from the per-second counts.
fn rates(r: &Results) -> (f64, f64) {
    let window = (r.window.as_secs() as usize).min(r.mailed_per_second.len());
    let (during, after) = r.mailed_per_second.split_at(window);
    let mean = |s: &[usize]| s.iter().sum::<usize>() as f64 / s.len().max(1) as f64;
    (mean(during), mean(after))
}

/// email-delivery's outcomes, in words.
fn email_outcomes(r: &Results) -> String {
    r.email_outcomes
        .iter()
        .map(|(o, n)| format!("{n} {o}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn peak(r: &Results) -> usize {
    r.mailed_per_second.iter().copied().max().unwrap_or(0)
}

/// The section, from its heading to its end.
pub(super) fn render(r: &Results) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{HEADING}\n\n\
Written by `cargo xtask bench reminders` (last run: {date}, {cpus} CPUs, load average {load}\n\
when it started).{busy}\n\n\
**Method.** The command starts the whole consumer stack on loopback — PostgreSQL, Redis\n\
Streams, the Dapr Scheduler, and {builds} builds of the backend, of {replicas} notification\n\
replicas and of email-delivery, each with its own daprd — and the harness's SMTP sink, to\n\
which email-delivery holds real SMTP conversations. It creates {n} tasks over REST (`POST\n\
/api/v1/tasks`) from {clients} clients for {users} users, their `remind_at` spread evenly over\n\
{window} s; each task event reaches notification through the outbox and Redis, and notification\n\
schedules the task's reminder job with the Scheduler. The window starts far enough ahead that\n\
every job exists before the first is due: a calibration batch of {cal} tasks with reminders a\n\
day away took {cal_s:.1} s from the first create to its last job scheduled, {lead}; {scheduling}.\n\
When the jobs fire, the Scheduler hands each trigger to one replica, which re-reads the task\n\
from the backend and publishes `reminder.due`; email-delivery mails it. **Lateness** is the time the sink accepted\n\
a reminder's mail (the final `.` of `DATA`) minus its `remind_at`: the whole path, the\n\
Scheduler's trigger, the replica, the broker and the SMTP conversation. The command waits\n\
(polling every {poll} ms) until every reminder has a mail, then {quiet} s more for duplicates;\n\
it fails if any reminder is missing or mailed twice. Percentiles are nearest-rank over one\n\
sample per reminder. Mails per second are the reminders mailed ÷ the time from the first\n\
reminder's due time to the last mail. CPU is each process's user + system time from\n\
`/proc/<pid>/stat` over the fan-in ({span:.1} s from the first due time until every mail was\n\
in).\n\n\
| reminders | window | replicas | lateness p50 ms | p95 ms | p99 ms | max ms | mails/s | peak mails in 1 s | each mailed once |\n\
|---|---|---|---|---|---|---|---|---|---|\n\
| {n} | {window} s | {replicas} | {lat} | {rate:.0} | {peak} | {once} |\n\n\
The reminders were due at {due_rate:.0} per second; the last mail arrived {fan_in:.1} s after\n\
the first reminder was due. Mails were accepted at {during:.0} per second on average while\n\
reminders fell due and at {after:.0} per second after the window.{early}{strays} Where the\n\
lateness arose: {split}. email-delivery's deliveries (`todo_emails_sent_total` by outcome;\n\
a duplicate is a redelivered event its ledger had already settled): {emails}.\n\n\
![Share of reminders mailed within a given lateness]({LATENESS_SVG})\n\n\
![Reminders due and mailed per second over the window]({RATE_SVG})\n\n\
Triggers per notification replica (from its `todo_reminder_triggers_total`):\n\n\
| replica | published `reminder.due` | other outcomes (already sent, failed, …) |\n\
|---|---|---|\n",
        date = r.date,
        cpus = r.cpus,
        load = r.load_average,
        busy = doc::busy_note(&r.load_average, r.cpus),
        builds = if r.release { "**release**" } else { "debug" },
        replicas = r.replicas,
        n = r.reminders,
        clients = r.clients,
        users = r.users,
        window = r.window.as_secs(),
        cal = r.calibration,
        cal_s = secs(r.calibration_elapsed),
        lead = lead(r),
        scheduling = scheduling(r),
        poll = super::POLL.as_millis(),
        quiet = super::QUIET.as_secs(),
        span = secs(r.cpu_span),
        lat = r.lateness.row(),
        rate = r.mails_per_second,
        peak = peak(r),
        once = each_once(r),
        split = trigger_split(r),
        during = rates(r).0,
        after = rates(r).1,
        emails = email_outcomes(r),
        due_rate = r.reminders as f64 / secs(r.window).max(f64::EPSILON),
        fan_in = secs(r.fan_in),
        early = if r.early > 0 {
            format!(
                " {} mails were accepted before their reminder was due (counted as 0 ms).",
                r.early
            )
        } else {
            String::new()
        },
        strays = if r.strays > 0 {
            format!(" {} mails named no reminder of the run.", r.strays)
        } else {
            String::new()
        },
    );
    for (i, t) in r.triggers.per_replica.iter().enumerate() {
        let _ = writeln!(s, "| notification-{i} | {} | {} |", t.published, t.other);
    }
    s.push_str(
        "\n| process | CPU s over the fan-in | cores on average |\n\
         |---|---|---|\n",
    );
    for p in &r.cpu {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} |",
            p.name,
            secs(p.used),
            secs(p.used) / secs(r.cpu_span).max(f64::EPSILON)
        );
    }
    s
}

/// The figures on the terminal.
pub(super) fn print(r: &Results) {
    println!();
    println!("load average at the start: {}", r.load_average);
    println!(
        "{} reminders over {} s across {} notification replicas; lead {:.1} s ({} calibration jobs took {:.1} s)",
        r.reminders,
        r.window.as_secs(),
        r.replicas,
        secs(r.lead),
        r.calibration,
        secs(r.calibration_elapsed)
    );
    println!(
        "created in {:.1} s; {}",
        secs(r.created),
        scheduling(r).replace("**", "")
    );
    println!("lateness ms p50|p95|p99|max: {}", r.lateness.row());
    println!(
        "mails/s {:.0} (peak {} in one second); last mail {:.1} s after the first due time",
        r.mails_per_second,
        peak(r),
        secs(r.fan_in)
    );
    println!("{}", trigger_split(r));
    println!(
        "mails/s during the window {:.0}, after it {:.0}; email-delivery: {}",
        rates(r).0,
        rates(r).1,
        email_outcomes(r)
    );
    println!(
        "each mailed once: {} (missing {}, duplicate mails {}, strays {}, early {})",
        r.each_once(),
        r.missing.len(),
        r.duplicates,
        r.strays,
        r.early
    );
    for (i, t) in r.triggers.per_replica.iter().enumerate() {
        println!(
            "notification-{i}: {} published, {} other trigger outcomes",
            t.published, t.other
        );
    }
    println!("CPU over the fan-in ({:.1} s):", secs(r.cpu_span));
    for p in &r.cpu {
        println!("  {:<32} {:>8.2} s", p.name, secs(p.used));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ProcessCpu, ReplicaTriggers, TriggerMetrics};
    use super::*;
    use crate::bench::Percentiles;

    fn results() -> Results {
        Results {
            date: "2026-12-03 23:00 UTC".into(),
            cpus: 2,
            load_average: "0.10 0.20 0.30".into(),
            release: true,
            reminders: 4,
            replicas: 3,
            users: 2,
            clients: 2,
            window: Duration::from_secs(2),
            calibration: 4,
            calibration_elapsed: Duration::from_millis(800),
            lead: Duration::from_secs(7),
            lead_given: false,
            created: Duration::from_millis(100),
            scheduled: Some(Duration::from_millis(900)),
            slack_ms: Some(6000.0),
            lateness: Percentiles {
                p50: 10.0,
                p95: 20.0,
                p99: 30.0,
                max: 40.0,
            },
            lateness_sorted: [10, 12, 30, 40].map(Duration::from_millis).to_vec(),
            early: 0,
            mailed_per_second: vec![2, 2],
            mails_per_second: 2.0,
            fan_in: Duration::from_secs(2),
            missing: Vec::new(),
            duplicates: 0,
            duplicated: Vec::new(),
            strays: 0,
            triggers: TriggerMetrics {
                per_replica: vec![ReplicaTriggers {
                    published: 4,
                    other: 0,
                }],
                lateness: vec![(0.01, 1.0), (0.025, 3.0), (f64::INFINITY, 4.0)],
                lateness_sum: 0.06,
            },
            cpu: vec![ProcessCpu {
                name: "notification-0".into(),
                used: Duration::from_millis(500),
            }],
            email_outcomes: vec![("sent", 4), ("duplicate", 0)],
            cpu_span: Duration::from_secs(2),
        }
    }

    #[test]
    fn the_section_holds_the_table_and_the_pictures() {
        let section = render(&results());
        assert!(section.starts_with(HEADING));
        assert!(section.contains(
            "| 4 | 2 s | 3 | 10.00 | 20.00 | 30.00 | 40.00 | 2 | 2 | yes: 4 reminders, 4 mails |"
        ));
        assert!(section.contains(&format!("]({LATENESS_SVG})")));
        assert!(section.contains(&format!("]({RATE_SVG})")));
        assert!(section.contains("| notification-0 | 4 | 0 |"));
        assert!(section.contains("at 2 per second on average while"));
        assert!(section.contains("by outcome;\na duplicate is a redelivered event its ledger had already settled): 4 sent, 0 duplicate."));
        assert!(section.contains("| notification-0 | 0.50 | 0.25 |"));
        // The section replaces only itself.
        let doc = "# B\n\n## Data growth\n\nkept\n";
        let out = doc::replace_section(doc, HEADING, &section);
        assert!(out.starts_with(doc) && out.ends_with("| 0.50 | 0.25 |\n"));
    }

    #[test]
    fn a_failed_run_says_so() {
        let mut r = results();
        r.missing = vec![3];
        r.duplicates = 2;
        r.slack_ms = Some(-1500.0);
        let section = render(&r);
        assert!(section.contains("**no**: 1 missing, 2 duplicate mails"));
        assert!(section.contains("scheduling overran the lead"));
    }

    #[test]
    fn both_pictures_draw() {
        let r = results();
        assert!(lateness_svg(&r).unwrap().contains("4 reminders over 2 s"));
        assert!(rate_svg(&r).unwrap().contains("mailed"));
    }

    #[test]
    fn the_distribution_rises_to_every_reminder() {
        let sorted = [10, 20, 30, 40].map(Duration::from_millis);
        let points = cdf(&sorted);
        assert_eq!(points.first(), Some(&(10.0, 25.0)));
        assert_eq!(points.last(), Some(&(40.0, 100.0)));
        assert!(
            points
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
        );
        assert!(cdf(&[]).is_empty());
    }

    #[test]
    fn histograms_are_read_summed_and_their_quantiles_bounded() {
        let page = "todo_reminder_lateness_seconds_bucket{service=\"notification\",le=\"0.1\"} 2\n\
todo_reminder_lateness_seconds_bucket{service=\"notification\",le=\"1\"} 9\n\
todo_reminder_lateness_seconds_bucket{service=\"notification\",le=\"+Inf\"} 10\n\
todo_reminder_lateness_seconds_sum{service=\"notification\"} 4.5\n";
        let one = histogram(page, "todo_reminder_lateness_seconds");
        assert_eq!(one, vec![(0.1, 2.0), (1.0, 9.0), (f64::INFINITY, 10.0)]);
        let two = histogram_sum(&one, &one);
        assert_eq!(two[1], (1.0, 18.0));
        assert_eq!(histogram_delta(&two, &one), one);
        assert_eq!(bucket_quantile(&one, 0.2), Some(0.1));
        assert_eq!(bucket_quantile(&one, 0.5), Some(1.0));
        assert_eq!(bucket_quantile(&one, 0.99), Some(f64::INFINITY));
        assert_eq!(bucket_quantile(&[], 0.5), None);
        let section = render(&results());
        assert!(section.contains("over its 4 published triggers: mean 15 ms, p50 ≤ 0.025 s"));
    }

    #[test]
    fn mails_are_counted_per_second_of_the_window() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let times = [
            start - Duration::from_millis(5),
            start + Duration::from_millis(999),
            start + Duration::from_millis(2500),
        ];
        assert_eq!(per_second(&times, start), vec![2, 0, 1]);
        assert!(per_second(&[], start).is_empty());
    }

    #[test]
    fn metric_sums_pick_the_series_asked_for() {
        let page = "# TYPE todo_reminder_triggers_total counter\n\
todo_reminder_triggers_total{outcome=\"published\",service=\"notification\"} 7\n\
todo_reminder_triggers_total{outcome=\"already_sent\",service=\"notification\"} 2\n\
todo_reminder_triggers_total_created{service=\"notification\"} 1\n\
todo_reminder_jobs_scheduled_total 12\n";
        let metric = "todo_reminder_triggers_total";
        assert_eq!(metric_sum(page, metric, ""), 9.0);
        assert_eq!(metric_sum(page, metric, "outcome=\"published\""), 7.0);
        assert_eq!(
            metric_sum(page, "todo_reminder_jobs_scheduled_total", ""),
            12.0
        );
        assert_eq!(metric_sum("", metric, ""), 0.0);
    }
}
