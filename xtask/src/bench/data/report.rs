//! The "Data growth" section of BENCHMARKS.md.

use std::fmt::Write as _;

use super::{Kind, Results};

/// The heading of this command's section; the section runs to the next `## ` heading.
pub(super) const HEADING: &str = "## Data growth";

/// Where the picture goes, relative to the repository (and to BENCHMARKS.md beside it).
pub(super) const SVG_PATH: &str = "docs/bench/data-growth.svg";

/// How p99 changed from the smallest to the largest one-user size, as a factor.
fn growth(r: &Results, kind: Kind) -> Option<(u64, u64, f64)> {
    let one_user: Vec<_> = r.points.iter().filter(|p| p.users == 1).collect();
    let (first, last) = (one_user.first()?, one_user.last()?);
    let (a, b) = (first.p99(kind)?, last.p99(kind)?);
    (a > 0.0).then_some((first.user_tasks, last.user_tasks, b / a))
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
        busy = crate::bench::doc::busy_note(&r.load_average, r.cpus),
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
**Plans** at the largest size. Each request runs two statements: the count of matches (the\n\
page's `total`, which stops 1000 matches past the end of the page — the backend's\n\
`COUNT_AHEAD` — so at most 1051 rows for a first page of 50) and the page itself; \"most rows\" is the largest row count of any node\n\
(the tags subquery run per returned row left out): about the page size when an index hands\n\
the rows over in order, about all of the user's matching rows when they are scanned or\n\
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
