//! The query plans behind each request, as PostgreSQL's `auto_explain` logs them.
//!
//! Rather than rebuild the store's SQL in the bench (which could drift from what the backend
//! runs), the server explains what it is sent: `auto_explain` is preloaded into every session,
//! idle (`log_min_duration = -1`) while requests are timed, and switched on with `ANALYZE` and
//! `BUFFERS` for one request per query kind. Its log entries are then read back from the
//! server's log file: `EXPLAIN (ANALYZE, BUFFERS)` of the exact statement and parameters.

use std::path::Path;

use harness::Postgres;

/// Preloads `auto_explain` into the sessions opened from now on (the backend's pool connects
/// after this), switched off (its default `log_min_duration` is -1).
pub(super) fn preload(postgres: &Postgres) -> anyhow::Result<()> {
    // Each `psql` is a new session: the settings after the reload are set in sessions that have
    // the library loaded, which is what makes its parameters known to `ALTER SYSTEM`.
    for sql in [
        "ALTER SYSTEM SET session_preload_libraries = 'auto_explain'",
        "SELECT pg_reload_conf()",
        "ALTER SYSTEM SET auto_explain.log_analyze = on",
        "ALTER SYSTEM SET auto_explain.log_buffers = on",
        "SELECT pg_reload_conf()",
    ] {
        postgres.psql("postgres", sql)?;
    }
    Ok(())
}

/// Switches the explaining of every statement on or off (a reload reaches open sessions
/// before their next statement).
pub(super) fn explain_all(postgres: &Postgres, on: bool) -> anyhow::Result<()> {
    let duration = if on { 0 } else { -1 };
    postgres.psql(
        "postgres",
        &format!("ALTER SYSTEM SET auto_explain.log_min_duration = {duration}"),
    )?;
    postgres.psql("postgres", "SELECT pg_reload_conf()")?;
    Ok(())
}

/// The length of the server's log now: plans logged later start after it.
pub(super) fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

/// The server's log from byte `from` on.
pub(super) fn log_since(log: &Path, from: u64) -> anyhow::Result<String> {
    let bytes = std::fs::read(log)?;
    let from = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
    Ok(String::from_utf8_lossy(&bytes[from..]).into_owned())
}

/// One explained statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Plan {
    /// The statement, as sent (with `$n` placeholders).
    pub(super) query: String,
    /// The plan's lines, without the log's indentation.
    pub(super) lines: Vec<String>,
}

impl Plan {
    /// The nodes (and sort methods) with the rows they returned, costs and timings left out;
    /// the tag subquery run per returned row (`SubPlan`) is skipped, as it is per row, not per
    /// table.
    pub(super) fn key_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (indent, text) in self.outside_subplans() {
            if let Some((node, rest)) = text.split_once("  (cost=") {
                let rows = actual_rows(rest).map_or(String::new(), |(rows, loops)| {
                    if loops > 1 {
                        format!(" — rows {rows} × {loops} loops")
                    } else {
                        format!(" — rows {rows}")
                    }
                });
                out.push(format!("{}{node}{rows}", " ".repeat(indent)));
            } else if text.starts_with("Sort Method")
                || text.starts_with("Index Cond")
                || text.starts_with("Rows Removed by Filter")
                || text.starts_with("Heap Blocks")
            {
                out.push(format!("{}{text}", " ".repeat(indent)));
            }
        }
        out
    }

    /// The most rows any node (outside `SubPlan`s) handled: about the page size when an index
    /// hands rows over in order, about all of the user's rows when they are scanned or sorted.
    pub(super) fn max_rows(&self) -> u64 {
        let mut most = 0;
        for (_, text) in self.outside_subplans() {
            if let Some((rows, loops)) = actual_rows(text) {
                most = most.max(rows * loops);
            }
        }
        most
    }

    /// Each line's indentation and text, leaving out every `SubPlan` and the lines nested under
    /// it (run per returned row, not per table).
    fn outside_subplans(&self) -> impl Iterator<Item = (usize, &str)> {
        let mut skip_below: Option<usize> = None;
        self.lines.iter().filter_map(move |line| {
            let indent = line.len() - line.trim_start().len();
            if let Some(depth) = skip_below {
                if indent > depth {
                    return None;
                }
                skip_below = None;
            }
            let text = line.trim_start();
            if text.starts_with("SubPlan") {
                skip_below = Some(indent);
                return None;
            }
            Some((indent, text))
        })
    }
}

/// `rows` and `loops` of the `(actual …)` part of a node line.
fn actual_rows(text: &str) -> Option<(u64, u64)> {
    let actual = &text[text.find("(actual")?..];
    let number = |key: &str| -> Option<u64> {
        let at = actual.find(key)? + key.len();
        let digits: String = actual[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    // PostgreSQL 18 prints rows as a decimal (`rows=50.00`); the integer part is enough.
    Some((number(" rows=")?, number(" loops=")?))
}

/// The plans `auto_explain` logged in `log` (text format: a `LOG:  duration: … plan:` line,
/// then the plan on lines that start with a tab).
pub(super) fn parse_log(log: &str) -> Vec<Plan> {
    let mut plans = Vec::new();
    let mut current: Option<Plan> = None;
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix('\t') {
            if let Some(plan) = current.as_mut() {
                match rest.strip_prefix("Query Text: ") {
                    Some(query) if plan.query.is_empty() => plan.query = query.to_owned(),
                    _ => plan.lines.push(rest.to_owned()),
                }
            }
            continue;
        }
        plans.extend(current.take());
        if line.contains("LOG:  duration:") && line.ends_with("plan:") {
            current = Some(Plan::default());
        }
    }
    plans.extend(current);
    plans
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2026-12-03 15:20:00.100 UTC [77] LOG:  duration: 0.050 ms  plan:
\tQuery Text: INSERT INTO users (id) VALUES ($1)
\tInsert on users  (cost=0.00..0.01 rows=0 width=0) (actual time=0.04..0.04 rows=0 loops=1)
2026-12-03 15:20:00.120 UTC [77] LOG:  duration: 9.100 ms  plan:
\tQuery Text: SELECT count(*) FROM tasks t WHERE t.user_id = $1
\tAggregate  (cost=1.00..2.00 rows=1 width=8) (actual time=9.0..9.0 rows=1 loops=1)
\t  Buffers: shared hit=300
\t  ->  Index Only Scan using tasks_user_created_idx on tasks t  (cost=0.42..1.00 rows=99000 width=0) (actual time=0.02..6.1 rows=100000 loops=1)
\t        Index Cond: (user_id = $1)
\t        Heap Fetches: 0
2026-12-03 15:20:00.130 UTC [77] LOG:  duration: 1.000 ms  plan:
\tQuery Text: SELECT t.id FROM tasks t ORDER BY t.created_at DESC LIMIT $2
\tLimit  (cost=0.42..5.00 rows=50 width=8) (actual time=0.02..0.9 rows=50.00 loops=1)
\t  ->  Index Scan using tasks_user_created_idx on tasks t  (cost=0.42..9.00 rows=99000 width=8) (actual time=0.02..0.8 rows=50.00 loops=1)
\t        SubPlan 1
\t          ->  Aggregate  (cost=1.00..1.01 rows=1 width=32) (actual time=0.01..0.01 rows=1 loops=50)
\t                ->  Seq Scan on task_tags tt  (cost=0.00..1.00 rows=1 width=16) (actual time=0.01..0.01 rows=900 loops=50)
\t  ->  Sort  (cost=0.42..9.00 rows=99000 width=8) (actual time=0.02..0.8 rows=70 loops=1)
\t        Sort Method: top-N heapsort  Memory: 40kB
2026-12-03 15:20:00.140 UTC [77] LOG:  statement: something else
";

    #[test]
    fn parses_each_logged_plan() {
        let plans = parse_log(LOG);
        assert_eq!(plans.len(), 3);
        assert_eq!(
            plans[1].query,
            "SELECT count(*) FROM tasks t WHERE t.user_id = $1"
        );
        assert_eq!(plans[1].lines.len(), 5);
        assert_eq!(plans[1].max_rows(), 100_000);
    }

    #[test]
    fn key_lines_keep_nodes_and_rows_without_subplans() {
        let plans = parse_log(LOG);
        assert_eq!(
            plans[1].key_lines(),
            [
                "Aggregate — rows 1",
                "  ->  Index Only Scan using tasks_user_created_idx on tasks t — rows 100000",
                "        Index Cond: (user_id = $1)",
            ]
        );
        let page = &plans[2];
        assert_eq!(page.max_rows(), 70, "the SubPlan's 900 × 50 is per row");
        assert_eq!(
            page.key_lines(),
            [
                "Limit — rows 50",
                "  ->  Index Scan using tasks_user_created_idx on tasks t — rows 50",
                "  ->  Sort — rows 70",
                "        Sort Method: top-N heapsort  Memory: 40kB",
            ]
        );
    }
}
