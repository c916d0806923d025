//! `cargo xtask bench data`: read latency as a user's task list grows.
//!
//! The backend bench measures writes on a nearly empty table; this one asks whether reads stay
//! flat (or logarithmic) as the table grows. It starts only what reads need — the harness's own
//! PostgreSQL and a release build of the backend, no sidecar — then, for each `--sizes` entry:
//!
//! 1. loads tasks for one user with SQL up to that size ([`load`]) and runs `VACUUM ANALYZE`;
//! 2. times `--requests` requests of each query [`Kind`] through the REST API from
//!    `--clients` concurrent clients, after a warm-up;
//!
//! then adds the same number of tasks spread over `--users` other users and measures one of
//! them, captures the plans at the largest sizes ([`plans`]), prints everything and writes the
//! "Data growth" section of BENCHMARKS.md ([`report`]) and its picture ([`super::plot`]).

#![allow(clippy::print_stdout)] // The report is the command's output.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use harness::{Postgres, Service, ServiceOptions, ports};

use super::{
    BENCH_JWT_KEY, BenchArgs, Percentiles, bench_token, load_average, plot, run_concurrently,
};
use crate::step;

mod load;
mod plans;
mod report;

use load::Owners;
use plans::Plan;

/// Untimed requests per kind and size before the timed ones: the first requests at a new size
/// read pages from disk and plan statements afresh.
const WARM_UP: usize = 20;

/// The user whose task list grows.
const BENCH_USER: &str = "bench-user";

/// The many-users variant's users are this prefix and a number; the one measured is
/// [`MEASURED_OF_MANY`].
const MANY_PREFIX: &str = "bench-many-";
const MEASURED_OF_MANY: u32 = 42;

/// The word searched for; one title in 12 holds it (see [`load::tasks_sql`]).
const SEARCH_WORD: &str = "invoice";

/// Options of `cargo xtask bench data`.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "bench data")]
pub(crate) struct DataArgs {
    /// Task counts of the one user, comma-separated; loaded cumulatively, smallest first.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    sizes: Vec<u64>,
    /// Timed requests per query kind and size.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Concurrent REST clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Users in the "many users" variant, which adds as many tasks as the largest size spread
    /// over them (0 skips it).
    #[arg(long, default_value_t = 1000)]
    users: u32,
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The first page, newest first (the default list).
    List,
    /// Pending tasks of one priority.
    Filter,
    /// Tasks carrying one tag.
    Tag,
    /// Soonest due first.
    SortDue,
    /// Most urgent first.
    SortPriority,
    /// Full-text search for one word.
    Search,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::List,
        Kind::Filter,
        Kind::Tag,
        Kind::SortDue,
        Kind::SortPriority,
        Kind::Search,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::List => "list",
            Self::Filter => "filter status+priority",
            Self::Tag => "filter tag",
            Self::SortDue => "sort due",
            Self::SortPriority => "sort priority",
            Self::Search => "search",
        }
    }

    /// The request's path and query under the backend's base URL.
    fn path(self, tag_id: &str) -> String {
        match self {
            Self::List => "/api/v1/tasks".into(),
            Self::Filter => "/api/v1/tasks?status=pending&priority=high".into(),
            Self::Tag => format!("/api/v1/tasks?tag_ids={tag_id}"),
            Self::SortDue => "/api/v1/tasks?sort_by=due".into(),
            Self::SortPriority => "/api/v1/tasks?sort_by=priority".into(),
            Self::Search => format!("/api/v1/search?q={SEARCH_WORD}"),
        }
    }
}

/// The figures at one size.
#[derive(Debug)]
struct Point {
    /// Tasks of the measured user.
    user_tasks: u64,
    /// Tasks of all users.
    table_rows: u64,
    /// Users the rows are spread over (1: the one-user curve).
    users: u32,
    latencies: Vec<(Kind, Percentiles)>,
}

impl Point {
    fn latency(&self, kind: Kind) -> Option<Percentiles> {
        self.latencies
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| *p)
    }

    fn p99(&self, kind: Kind) -> Option<f64> {
        self.latency(kind).map(|p| p.p99)
    }
}

/// The plans of every kind's statements for one data set.
#[derive(Debug)]
struct PlanGroup {
    /// Which data set, in words.
    scope: String,
    by_kind: Vec<(Kind, Vec<Plan>)>,
}

/// Everything the section reports.
#[derive(Debug)]
struct Results {
    date: String,
    cpus: usize,
    load_average: String,
    clients: usize,
    requests: usize,
    warm_up: usize,
    many_rows: u64,
    many_users: u32,
    points: Vec<Point>,
    plans: Vec<PlanGroup>,
}

/// Runs the scenario (from the optimised build) and rewrites its section of BENCHMARKS.md and
/// its picture unless `no_write`.
pub(super) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let data = &args.data;
    ensure!(
        !data.sizes.is_empty() && data.sizes.iter().all(|&s| s > 0),
        "--sizes needs at least one positive task count"
    );
    ensure!(data.requests > 0, "--requests must be positive");
    let (bins, release) = super::prepare(args, &["backend"])?;
    let runtime = tokio::runtime::Runtime::new()?;
    let results = runtime.block_on(measure(data, &bins, &release))?;
    print_results(&results);
    let curves = curves(&results);
    let svg = plot::svg(
        &plot::Chart {
            title: "p99 of GET requests by the user's task count",
            x_desc: "tasks of the user (log scale)",
            y_desc: "p99 latency, ms",
            log_x: true,
            log_y: false,
        },
        &curves,
    )?;
    if args.writes() {
        super::doc::write_section(
            report::HEADING,
            &report::render(&results),
            &[(report::SVG_PATH, svg)],
        )?;
    }
    Ok(())
}

/// The one-user points as one p99 curve per kind.
fn curves(r: &Results) -> Vec<plot::Curve> {
    Kind::ALL
        .iter()
        .map(|&kind| plot::Curve {
            label: kind.label().to_owned(),
            points: r
                .points
                .iter()
                .filter(|p| p.users == 1)
                .filter_map(|p| Some((p.user_tasks as f64, p.p99(kind)?)))
                .collect(),
        })
        .collect()
}

async fn measure(
    args: &DataArgs,
    bins: &harness::Binaries,
    release: &Path,
) -> anyhow::Result<Results> {
    let root = tempfile::Builder::new()
        .prefix("todo-dapr-bench-data-")
        .tempdir()?;
    let log_dir = root.path().join("logs");
    let mut postgres = Postgres::start(bins, root.path(), &log_dir, false).await?;
    postgres.create_database("backend")?;
    // Before the backend's pool connects: the library is loaded as each session starts.
    plans::preload(&postgres)?;
    let pg_log = postgres.process_mut().log_path().to_path_buf();

    let port = ports::free_port()?;
    // Nobody listens there: reads never reach Dapr, and the relay finds no events to publish.
    let no_sidecar = ports::free_port()?;
    let _backend = Service::start(
        &ServiceOptions {
            binary: "backend".into(),
            log_name: "backend".into(),
            port,
            env: vec![
                ("BACKEND_PORT".into(), port.to_string()),
                ("DATABASE_URL".into(), postgres.url("backend")),
                ("JWT_SECRET".into(), BENCH_JWT_KEY.into()),
                ("DAPR_HTTP_PORT".into(), no_sidecar.to_string()),
                ("RUST_LOG".into(), "warn".into()),
            ],
            binary_path: Some(release.join("backend")),
        },
        &log_dir,
        false,
    )
    .await?;
    step::info(&format!("backend up; logs in {}", log_dir.display()));
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let load_average = load_average();

    let mut sizes = args.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let one = Owners::One(BENCH_USER.into());
    postgres.psql("backend", &load::users_sql(&one))?;
    let client = Client::new(&http, &base, &postgres, BENCH_USER)?;
    let (mut points, mut plan_groups) = (Vec::new(), Vec::new());
    let mut loaded = 0;
    for &size in &sizes {
        step::run(&format!("load {size} tasks of one user"), || {
            postgres.psql("backend", &load::tasks_sql(&one, loaded, size))?;
            postgres.psql("backend", "VACUUM ANALYZE")?;
            Ok(())
        })?;
        loaded = size;
        let latencies = client.time_all(args).await?;
        points.push(Point {
            user_tasks: size,
            table_rows: size,
            users: 1,
            latencies,
        });
    }
    plan_groups.push(PlanGroup {
        scope: format!("one user, {loaded} tasks"),
        by_kind: client.plans(&postgres, &pg_log).await?,
    });

    let many_rows = loaded;
    if args.users > 0 {
        let many = Owners::Many {
            prefix: MANY_PREFIX.into(),
            count: args.users,
        };
        step::run(
            &format!("load {many_rows} tasks of {} users", args.users),
            || {
                postgres.psql("backend", &load::users_sql(&many))?;
                postgres.psql("backend", &load::tasks_sql(&many, 0, many_rows))?;
                postgres.psql("backend", "VACUUM ANALYZE")?;
                Ok(())
            },
        )?;
        let measured = MEASURED_OF_MANY % args.users;
        let user = many.user(measured);
        let client = Client::new(&http, &base, &postgres, &user)?;
        let latencies = client.time_all(args).await?;
        let user_tasks = postgres
            .psql(
                "backend",
                &format!("SELECT count(*) FROM tasks WHERE user_id = '{user}'"),
            )?
            .parse()
            .context("counting the measured user's tasks")?;
        points.push(Point {
            user_tasks,
            table_rows: loaded + many_rows,
            users: args.users,
            latencies,
        });
        plan_groups.push(PlanGroup {
            scope: format!(
                "many users: {user}, {user_tasks} of {} tasks",
                loaded + many_rows
            ),
            by_kind: client.plans(&postgres, &pg_log).await?,
        });
    }

    Ok(Results {
        date: super::utc_now(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average,
        clients: args.clients,
        requests: args.requests,
        warm_up: WARM_UP,
        many_rows: if args.users > 0 { many_rows } else { 0 },
        many_users: args.users,
        points,
        plans: plan_groups,
    })
}

/// Requests as one user.
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    /// The user's tag that the tag filter asks for.
    tag_id: String,
}

impl Client {
    fn new(
        http: &reqwest::Client,
        base: &str,
        postgres: &Postgres,
        user: &str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            http: http.clone(),
            base: base.to_owned(),
            token: bench_token(user)?,
            tag_id: postgres.psql("backend", &load::tag_id_sql(user, 0))?,
        })
    }

    fn url(&self, kind: Kind) -> String {
        format!("{}{}", self.base, kind.path(&self.tag_id))
    }

    /// Warm-up, then the timed requests, kind after kind.
    async fn time_all(&self, args: &DataArgs) -> anyhow::Result<Vec<(Kind, Percentiles)>> {
        let mut out = Vec::new();
        for kind in Kind::ALL {
            self.run(kind, WARM_UP.min(args.requests), args.clients)
                .await?;
            let samples = self.run(kind, args.requests, args.clients).await?;
            let p = Percentiles::of(samples);
            step::info(&format!(
                "  {:<24} p50|p95|p99|max ms: {}",
                kind.label(),
                p.row()
            ));
            out.push((kind, p));
        }
        Ok(out)
    }

    async fn run(&self, kind: Kind, n: usize, clients: usize) -> anyhow::Result<Vec<Duration>> {
        let (http, url, token) = (self.http.clone(), self.url(kind), self.token.clone());
        run_concurrently(n, clients, move |_| {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            async move { get(&http, &url, &token).await }
        })
        .await
    }

    /// One request of each kind with every statement explained; the plans of the statements
    /// that read tasks (the user's upsert is left out).
    async fn plans(
        &self,
        postgres: &Postgres,
        log: &Path,
    ) -> anyhow::Result<Vec<(Kind, Vec<Plan>)>> {
        plans::explain_all(postgres, true)?;
        let mut out = Vec::new();
        for kind in Kind::ALL {
            let found = self.explained(kind, log).await;
            if let Err(e) = &found {
                // Leave the server as it was before giving up.
                let _ = plans::explain_all(postgres, false);
                bail!("{e:#}");
            }
            out.push((kind, found?));
        }
        plans::explain_all(postgres, false)?;
        Ok(out)
    }

    /// The plans of one request of `kind`. A session only sees the switch at its next
    /// statement's reload check, so a request whose statements went unexplained is sent again.
    async fn explained(&self, kind: Kind, log: &Path) -> anyhow::Result<Vec<Plan>> {
        for _ in 0..5 {
            let from = plans::log_len(log);
            get(&self.http, &self.url(kind), &self.token).await?;
            for _ in 0..20 {
                let plans: Vec<Plan> = plans::parse_log(&plans::log_since(log, from)?)
                    .into_iter()
                    .filter(|p| p.query.starts_with("SELECT") && p.query.contains("FROM tasks t"))
                    .collect();
                // Plans are logged before the answer leaves the server. Only the count runs
                // when nothing matches.
                if !plans.is_empty() {
                    return Ok(plans);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        bail!(
            "no plans for `{}` in {} (is auto_explain loaded?)",
            kind.label(),
            log.display()
        )
    }
}

/// One GET that must answer 200.
async fn get(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<()> {
    let resp = http.get(url).bearer_auth(token).send().await?;
    if resp.status() != 200 {
        bail!(
            "GET {url} answered {}: {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    // Read the body: the request is timed until the page has arrived, not just its headers.
    resp.bytes().await?;
    Ok(())
}

fn print_results(r: &Results) {
    println!();
    println!("load average at the start: {}", r.load_average);
    println!("query                    user tasks  table rows  p50|p95|p99|max ms");
    for kind in Kind::ALL {
        for point in &r.points {
            if let Some(p) = point.latency(kind) {
                println!(
                    "{:<24} {:>10}  {:>10}  {}",
                    kind.label(),
                    point.user_tasks,
                    point.table_rows,
                    p.row()
                );
            }
        }
    }
    for group in &r.plans {
        println!("\nplans, {}:", group.scope);
        for (kind, plans) in &group.by_kind {
            for plan in plans {
                println!("-- {} (most rows {})", kind.label(), plan.max_rows());
                for line in plan.key_lines() {
                    println!("   {line}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_asks_the_real_routes() {
        for kind in Kind::ALL {
            let path = kind.path("t-1");
            assert!(
                path.starts_with("/api/v1/tasks") || path.starts_with("/api/v1/search?q="),
                "{path}"
            );
        }
        assert_eq!(Kind::Tag.path("t-1"), "/api/v1/tasks?tag_ids=t-1");
    }

    #[test]
    fn curves_hold_the_one_user_points_only() {
        let p = |p99| Percentiles {
            p99,
            ..Percentiles::default()
        };
        let point = |user_tasks, users, p99| Point {
            user_tasks,
            table_rows: user_tasks,
            users,
            latencies: vec![(Kind::List, p(p99))],
        };
        let r = Results {
            date: String::new(),
            cpus: 2,
            load_average: String::new(),
            clients: 1,
            requests: 1,
            warm_up: 1,
            many_rows: 0,
            many_users: 0,
            points: vec![point(100, 1, 1.0), point(300, 1, 2.0), point(100, 10, 9.0)],
            plans: Vec::new(),
        };
        let curves = curves(&r);
        assert_eq!(curves[0].points, [(100.0, 1.0), (300.0, 2.0)]);
        assert!(curves[1].points.is_empty());
        let section = report::render(&r);
        assert!(section.starts_with(report::HEADING));
        assert!(section.contains("| list | 100 (one of 10 users) | 100 |"));
    }
}
