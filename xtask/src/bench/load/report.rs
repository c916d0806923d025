//! The "Open-loop load" section of BENCHMARKS.md, its two pictures, and the terminal report.

use std::fmt::Write as _;

use super::{Proc, Results, Step};
use crate::bench::plot::Curve;

/// The heading of this command's section; the section runs to the next `## ` heading.
pub(super) const HEADING: &str = "## Open-loop load";

/// Where the pictures go, relative to the repository (and to BENCHMARKS.md beside it).
pub(super) const LATENCY_SVG: &str = "docs/bench/load-latency.svg";
pub(super) const CPU_SVG: &str = "docs/bench/load-cpu.svg";

/// REST p50 and p99, commit → acknowledged p99 and the bare publish p99, by offered rate.
pub(super) fn latency_curves(r: &Results) -> Vec<Curve> {
    let curve = |label: &str, value: fn(&Step) -> f64| Curve {
        label: label.to_owned(),
        points: r
            .steps
            .iter()
            .map(|s| (f64::from(s.offered), value(s)))
            .collect(),
    };
    vec![
        curve("REST create p50", |s| s.rest.p50),
        curve("REST create p99", |s| s.rest.p99),
        curve("outbox commit → ack p99", |s| s.outbox.p99),
        curve("bare publish p99 (same daprd)", |s| s.probe.p99),
    ]
}

/// Each process's cores by offered rate, from nothing offered (rate 0) up.
pub(super) fn cpu_curves(r: &Results) -> Vec<Curve> {
    Proc::ALL
        .iter()
        .enumerate()
        .map(|(i, proc)| Curve {
            label: proc.label().to_owned(),
            points: std::iter::once((0.0, r.idle_vcpu.get(i).copied().unwrap_or(0.0)))
                .chain(
                    r.steps
                        .iter()
                        .map(|s| (f64::from(s.offered), s.vcpu.get(i).copied().unwrap_or(0.0))),
                )
                .collect(),
        })
        .collect()
}

/// One step's line on the terminal, as it finishes.
pub(super) fn print_step(s: &Step) {
    println!(
        "offered {} /s: {} sent, achieved {:.0} /s, {} errors, REST p50 {:.2} ms p99 {:.2} ms, \
         commit→ack p99 {:.2} ms, bare publish p99 {:.2} ms{}",
        s.offered,
        s.sent,
        s.achieved,
        s.errors,
        s.rest.p50,
        s.rest.p99,
        s.outbox.p99,
        s.probe.p99,
        if s.sustained() {
            ""
        } else {
            " (not sustained)"
        }
    );
    println!("  {}", cores_line(&s.vcpu));
    if let Some(e) = &s.first_error {
        println!("  first error: {e}");
    }
}

/// Each process's cores, as the terminal shows them after a step (and with nothing offered).
pub(super) fn cores_line(vcpu: &[f64]) -> String {
    let each: Vec<String> = Proc::ALL
        .iter()
        .zip(vcpu)
        .map(|(p, v)| format!("{} {v:.2}", p.label()))
        .collect();
    format!("cores: {}", each.join(", "))
}

/// The summary after the last step.
pub(super) fn print(r: &Results) {
    println!();
    println!("{}", saturation_sentence(r));
    if !r.skipped.is_empty() {
        println!("skipped: {:?}", r.skipped);
    }
}

fn saturation_sentence(r: &Results) -> String {
    match r.saturation() {
        (Some(ok), Some(not)) => format!(
            "Saturation between {} and {} creates/s offered: {} was sustained \
             (achieved {:.0}/s, p99 {:.2} ms); at {} the backend served {:.0}/s and p99 rose to \
             {:.2} ms.",
            ok.offered,
            not.offered,
            ok.offered,
            ok.achieved,
            ok.rest.p99,
            not.offered,
            not.achieved,
            not.rest.p99
        ),
        (Some(ok), None) => format!(
            "Every rate offered was sustained, up to {} creates/s (p99 {:.2} ms): the saturation \
             point is higher.",
            ok.offered, ok.rest.p99
        ),
        (None, Some(not)) => format!(
            "Not even the lowest rate, {} creates/s, was sustained (achieved {:.0}/s).",
            not.offered, not.achieved
        ),
        (None, None) => "No step ran.".to_owned(),
    }
}

/// Where the CPU went at the first unsustained rate (or the highest one offered).
fn cpu_sentence(r: &Results) -> String {
    let Some(at) = r.saturation().1.or(r.steps.last()) else {
        return String::new();
    };
    let mut shares: Vec<(&str, f64)> = Proc::ALL
        .iter()
        .zip(&at.vcpu)
        .map(|(p, v)| (p.label(), *v))
        .collect();
    let total: f64 = shares.iter().map(|s| s.1).sum();
    shares.sort_by(|a, b| b.1.total_cmp(&a.1));
    let list: Vec<String> = shares
        .iter()
        .map(|(label, v)| format!("{label} {v:.2}"))
        .collect();
    format!(
        "At {} creates/s offered the measured processes used {total:.2} of the {} cores: {}.",
        at.offered,
        r.cpus,
        list.join(", ")
    )
}

/// The section, from `## Open-loop load` to its end.
pub(super) fn render(r: &Results) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{HEADING}\n\n\
Written by `cargo xtask bench load` (last run: {date}, {cpus} CPUs, load average {load} when it\n\
started).{busy}\n\n\
**Method.** The same stack as the backend benchmark (PostgreSQL, Redis, the Scheduler, release\n\
builds of the backend and notification, each with its daprd), loaded **open-loop**: each step\n\
offers one rate of `POST /api/v1/tasks` for {secs} s, request *i* sent at *start + i / rate*\n\
whether or not earlier requests have been answered, and each latency runs from that intended\n\
send time to the answer. A closed loop of N clients slows down with the server and hides the\n\
queue; here a request that waits — behind the {cap} requests allowed in flight, or behind a busy\n\
generator — is late by that wait. \"Achieved\" is successful creates over the time from the\n\
first intended send to the last answer. Beside the load, {probe} bare publishes per second go\n\
straight to the backend's daprd (pre-serialised CloudEvents, timed per call): the sidecar's own\n\
latency at the same load, next to the outbox's commit → acknowledged delay of the rows\n\
committed during the step (`published_at - created_at`; `created_at` is written by the\n\
insert itself, `clock_timestamp()`, at the end of the write's transaction). CPU is each\n\
process's user + system time from `/proc` over the step, as cores: PostgreSQL's includes its\n\
per-connection processes; the load generator is this command (and its probe). The CPU table's\n\
first row is the same stack for one step's time with nothing offered, after the warm-up's\n\
events were consumed: the floor under every step. Between steps\n\
the outbox drains and notification consumes every event. A step is *sustained* when it had\n\
no errors, achieved at least {share:.0} % of the offered rate, and its p99 stayed under {p99:.0} ms;\n\
after {stop} unsustained steps in a row the higher rates are skipped.\n\n",
        date = r.date,
        cpus = r.cpus,
        load = r.load_average,
        busy = crate::bench::doc::busy_note(&r.load_average, r.cpus),
        secs = r.step_secs,
        cap = r.max_in_flight,
        probe = r.probe_rate,
        share = super::SUSTAINED_SHARE * 100.0,
        p99 = super::SUSTAINED_P99_MS,
        stop = super::UNSUSTAINED_STEPS_TO_STOP,
    );
    s.push_str(
        "| offered /s | achieved /s | errors | REST p50 ms | p95 ms | p99 ms | max ms | \
         commit→ack p99 ms | bare publish p99 ms | commit→ack / bare | sustained |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for st in &r.steps {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | ×{:.1} | {} |",
            st.offered,
            st.achieved,
            st.errors,
            st.rest.p50,
            st.rest.p95,
            st.rest.p99,
            st.rest.max,
            st.outbox.p99,
            st.probe.p99,
            st.relay_ratio(),
            if st.sustained() { "yes" } else { "no" }
        );
    }
    if !r.skipped.is_empty() {
        let skipped: Vec<String> = r.skipped.iter().map(u32::to_string).collect();
        let _ = writeln!(
            s,
            "\nNot offered (after {} unsustained steps): {} creates/s.",
            super::UNSUSTAINED_STEPS_TO_STOP,
            skipped.join(", ")
        );
    }
    let _ = write!(
        s,
        "\n{}\n\n![REST p50 and p99, commit → acknowledged p99 and the bare publish p99 against the offered rate]({LATENCY_SVG})\n\n",
        saturation_sentence(r)
    );
    s.push_str("CPU per process, in cores (vCPU) averaged over the step:\n\n| offered /s |");
    for p in Proc::ALL {
        let _ = write!(s, " {} |", p.label());
    }
    s.push_str(" total |\n|---|");
    s.push_str(&"---|".repeat(Proc::ALL.len() + 1));
    s.push('\n');
    let rows = std::iter::once(("nothing".to_owned(), &r.idle_vcpu))
        .chain(r.steps.iter().map(|st| (st.offered.to_string(), &st.vcpu)));
    for (offered, vcpu) in rows {
        let _ = write!(s, "| {offered} |");
        for v in vcpu {
            let _ = write!(s, " {v:.2} |");
        }
        let _ = writeln!(s, " {:.2} |", vcpu.iter().sum::<f64>());
    }
    let _ = write!(
        s,
        "\n{}\n\n![cores used by each process against the offered rate]({CPU_SVG})\n",
        cpu_sentence(r)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Percentiles;

    fn step(offered: u32, achieved: f64, p99: f64) -> Step {
        Step {
            offered,
            sent: 10,
            errors: 0,
            first_error: None,
            achieved,
            rest: Percentiles {
                p50: p99 / 2.0,
                p95: p99,
                p99,
                max: p99,
            },
            outbox: Percentiles {
                p99: 12.0,
                ..Percentiles::default()
            },
            probe: Percentiles {
                p99: 4.0,
                ..Percentiles::default()
            },
            vcpu: (1..=7).map(|i| f64::from(i) / 10.0).collect(),
        }
    }

    fn results() -> Results {
        Results {
            date: "2026-12-03 23:00 UTC".into(),
            load_average: "0.10 0.20 0.30".into(),
            cpus: 2,
            step_secs: 10.0,
            max_in_flight: 256,
            probe_rate: 50,
            idle_vcpu: vec![0.01, 0.0, 0.02, 0.0, 0.0, 0.3, 0.0],
            steps: vec![step(200, 200.0, 20.0), step(400, 300.0, 4000.0)],
            skipped: vec![800],
        }
    }

    #[test]
    fn the_section_has_every_step_the_saturation_and_the_pictures() {
        let md = render(&results());
        assert!(md.starts_with(HEADING));
        assert!(md.contains("| 200 | 200 | 0 | 10.00 |"), "{md}");
        assert!(md.contains("×3.0 | yes |"), "{md}");
        assert!(md.contains("| 400 | 300 |"), "{md}");
        assert!(md.contains("Saturation between 200 and 400"), "{md}");
        assert!(
            md.contains("Not offered (after 2 unsustained steps): 800"),
            "{md}"
        );
        assert!(md.contains(LATENCY_SVG) && md.contains(CPU_SVG));
        // The CPU sentence is about the first unsustained rate, largest share first.
        assert!(
            md.contains("At 400 creates/s offered the measured processes used 2.80 of the 2 cores: load generator 0.70"),
            "{md}"
        );
        assert!(!md.contains("noisy"));
        assert!(
            md.contains("| nothing | 0.01 | 0.00 | 0.02 | 0.00 | 0.00 | 0.30 | 0.00 | 0.33 |"),
            "{md}"
        );
    }

    #[test]
    fn the_curves_have_one_point_per_step() {
        let r = results();
        let latency = latency_curves(&r);
        assert_eq!(latency.len(), 4);
        assert!(latency.iter().all(|c| c.points.len() == 2));
        assert_eq!(latency[1].points[1], (400.0, 4000.0));
        let cpu = cpu_curves(&r);
        assert_eq!(cpu.len(), Proc::ALL.len());
        assert_eq!(cpu[5].points[0], (0.0, 0.3), "nothing offered, first");
        assert_eq!(cpu[6].points[1], (200.0, 0.7));
    }
}
