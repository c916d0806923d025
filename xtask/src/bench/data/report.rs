//! The "Data growth" section of BENCHMARKS.md, and putting it in place of the previous one.

use std::fmt::Write as _;

use super::{Kind, Results};

/// The heading of this command's section; the section runs to the next `## ` heading.
pub(super) const HEADING: &str = "## Data growth";

/// Where the picture goes, relative to the repository (and to BENCHMARKS.md beside it).
pub(super) const SVG_PATH: &str = "docs/bench/data-growth.svg";

/// `doc` with its `## Data growth` section replaced by `section` (appended when there is none).
/// Every other section stays as it is, in place.
pub(super) fn replace_section(doc: &str, section: &str) -> String {
    let start = if doc.starts_with(&format!("{HEADING}\n")) {
        Some(0)
    } else {
        doc.find(&format!("\n{HEADING}\n")).map(|at| at + 1)
    };
    let section = section.trim_end();
    match start {
        Some(start) => {
            let end = doc[start + HEADING.len()..]
                .find("\n## ")
                .map_or(doc.len(), |at| start + HEADING.len() + at + 1);
            let rest = &doc[end..];
            let gap = if rest.is_empty() { "\n" } else { "\n\n" };
            format!("{}{section}{gap}{rest}", &doc[..start])
        }
        None => {
            let doc = doc.trim_end();
            if doc.is_empty() {
                format!("{section}\n")
            } else {
                format!("{doc}\n\n{section}\n")
            }
        }
    }
}

/// How p99 changed from the smallest to the largest one-user size, as a factor.
fn growth(r: &Results, kind: Kind) -> Option<(u64, u64, f64)> {
    let one_user: Vec<_> = r.points.iter().filter(|p| p.users == 1).collect();
    let (first, last) = (one_user.first()?, one_user.last()?);
    let (a, b) = (first.p99(kind)?, last.p99(kind)?);
    (a > 0.0).then_some((first.user_tasks, last.user_tasks, b / a))
}

/// A warning when the one-minute load average was half the CPU count or more: then other work
/// shared the CPUs with the backend and its database, and single figures say little.
fn busy_note(load_average: &str, cpus: usize) -> &'static str {
    let one_minute = load_average
        .split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok());
    match one_minute {
        Some(load) if load >= cpus.max(1) as f64 / 2.0 => {
            " **The figures are noisy:** other work was using the CPUs at the same\n\
             time, so compare the shapes of the curves more than single numbers."
        }
        _ => "",
    }
}

/// The section, from `## Data growth` to its end.
pub(super) fn render(r: &Results) -> String {
    let mut s = String::new();
    let sizes: Vec<String> = r
        .points
        .iter()
        .filter(|p| p.users == 1)
        .map(|p| p.user_tasks.to_string())
        .collect();
    let _ = write!(
        s,
        "{HEADING}\n\n\
Written by `cargo xtask bench data` (last run: {date}, {cpus} CPUs, load average {load} when it\n\
started).{busy}\n\n\
**Method.** The command starts the harness's own PostgreSQL and a **release** build of the\n\
backend against it, without a Dapr sidecar: nothing is written over REST, so the outbox relay\n\
has nothing to publish. Tasks are loaded with SQL (`INSERT … SELECT generate_series`, see\n\
`xtask/src/bench/data/load.rs`) for one user at {sizes} tasks (cumulative), with varied titles,\n\
descriptions, priorities, due dates, tags and a third completed, then `VACUUM ANALYZE` (as\n\
autovacuum would have by then, so index-only scans need no heap visits). The \"many\n\
users\" row adds {many_rows} more tasks spread over {many_users} users and measures one of them.\n\
At each size, {clients} clients send {warm} warm-up and then {requests} timed requests per query\n\
kind through the REST API with a user's bearer token; percentiles are nearest-rank. The plans\n\
are PostgreSQL's own `EXPLAIN (ANALYZE, BUFFERS)` of the statements the backend sent for one\n\
request of each kind at the largest size, logged by `auto_explain` (preloaded, switched on only\n\
for those requests), so they are the store's exact SQL and parameters.\n\n\
| query | request |\n|---|---|\n",
        date = r.date,
        cpus = r.cpus,
        load = r.load_average,
        busy = busy_note(&r.load_average, r.cpus),
        sizes = sizes.join(", "),
        many_rows = r.many_rows,
        many_users = r.many_users,
        clients = r.clients,
        warm = r.warm_up,
        requests = r.requests,
    );
    for kind in Kind::ALL {
        let _ = writeln!(s, "| {} | `GET {}` |", kind.label(), kind.path("<tag id>"));
    }
    s.push_str(
        "\n| query | tasks of the user | tasks in the table | p50 ms | p95 ms | p99 ms | max ms |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for kind in Kind::ALL {
        for point in &r.points {
            if let Some(p) = point.latency(kind) {
                let who = if point.users > 1 {
                    format!("{} (one of {} users)", point.user_tasks, point.users)
                } else {
                    point.user_tasks.to_string()
                };
                let _ = writeln!(
                    s,
                    "| {} | {who} | {} | {} |",
                    kind.label(),
                    point.table_rows,
                    p.row()
                );
            }
        }
    }
    s.push_str("\np99 from the smallest to the largest size (one user):\n\n");
    for kind in Kind::ALL {
        if let Some((from, to, factor)) = growth(r, kind) {
            let _ = writeln!(
                s,
                "- {}: ×{factor:.1} for ×{} tasks",
                kind.label(),
                to / from.max(1)
            );
        }
    }
    let _ = write!(
        s,
        "\n![p99 latency against the user's task count, one line per query kind]({SVG_PATH})\n\n\
**Plans** at the largest size. Each request runs two statements: the count of all matches (the\n\
page's `total`) and the page itself; \"most rows\" is the largest row count of any node (the\n\
tags subquery run per returned row left out): about the page size when an index hands the\n\
rows over in order, about all of the user's matching rows when they are counted, scanned or\n\
sorted.\n"
    );
    for group in &r.plans {
        let _ = write!(s, "\n*{}*\n", group.scope);
        for (kind, plans) in &group.by_kind {
            for plan in plans {
                let what = if plan.query.starts_with("SELECT count(*)") {
                    "count"
                } else {
                    "page"
                };
                let _ = write!(
                    s,
                    "\n{} — {what}, most rows {}:\n\n```text\n{}\n```\n",
                    kind.label(),
                    plan.max_rows(),
                    plan.key_lines().join("\n")
                );
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Benchmarks\n\nintro\n\n## Results\n\nfigures\n\n\
                       ## Sidecar overhead in the cluster\n\nkept\n";

    #[test]
    fn a_missing_section_is_appended_and_the_rest_kept() {
        let out = replace_section(DOC, "## Data growth\n\nnew\n");
        assert_eq!(out, format!("{DOC}\n## Data growth\n\nnew\n"));
        assert_eq!(
            replace_section("", "## Data growth\nx"),
            "## Data growth\nx\n"
        );
    }

    #[test]
    fn only_the_section_itself_is_replaced() {
        let doc = format!("{DOC}\n## Data growth\n\nold\n\n### detail\n\nold too\n");
        let out = replace_section(&doc, "## Data growth\n\nnew\n");
        assert_eq!(out, format!("{DOC}\n## Data growth\n\nnew\n"));

        let middle = "# B\n\n## Data growth\n\nold\n\n## After\n\nkept\n";
        assert_eq!(
            replace_section(middle, "## Data growth\n\nnew"),
            "# B\n\n## Data growth\n\nnew\n\n## After\n\nkept\n"
        );
        // Rewriting twice changes nothing more.
        let once = replace_section(middle, "## Data growth\n\nnew");
        assert_eq!(replace_section(&once, "## Data growth\n\nnew"), once);
    }

    #[test]
    fn a_busy_machine_is_said_to_be() {
        assert!(busy_note("2.19 2.60 2.82", 2).contains("noisy"));
        assert_eq!(busy_note("0.20 0.30 0.40", 2), "");
        assert_eq!(busy_note("", 2), "");
    }

    #[test]
    fn a_heading_that_only_starts_alike_is_not_the_section() {
        let doc = "# B\n\n## Data growth curves elsewhere\n\nkept\n";
        let out = replace_section(doc, "## Data growth\n\nnew");
        assert!(out.starts_with(doc), "{out}");
        assert!(out.ends_with("## Data growth\n\nnew\n"));
    }
}
