//! `backend import-legacy` against a database built from the original (Python) system's schema
//! and filled with generated data: what is carried per user, the report, idempotence, the delta
//! run, a run that fails half-way, and the MCP tools answering original ids.
//!
//! Each test gets our schema in a fresh `#[sqlx::test]` database and creates the original's in
//! a second database on the same server (dropped at the end). Expectations are computed from
//! the generated rows by a model of the carrying rules written here, not read back from the
//! importer. Run with `DATABASE_URL=postgres://postgres@127.0.0.1:<port>/postgres cargo test
//! -p backend --test import`.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use backend::import::{self, Entity, ImportError, ImportOptions, Outcome, Report};
use backend::recurrence::Rrule;
use chrono::{DateTime, Duration, DurationRound, NaiveDateTime, TimeDelta, Utc};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};
use support::mcp::{all_refused, connect, err, ok, serve};
use uuid::Uuid;

/// The original system's schema, written from its description: Alembic's tables of Phase V
/// (tasks with a `priority_level` enum, naive UTC timestamps kept current by a trigger, a
/// search vector), categories and tags unique per user and name, the task–tag junction with
/// cascading keys, Better Auth's `"user"` table, and the chat tables the importer ignores.
const ORIGINAL_SCHEMA: &str = r#"
CREATE TYPE priority_level AS ENUM ('low', 'medium', 'high', 'urgent');

CREATE TABLE "user" (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    email           text NOT NULL UNIQUE,
    "emailVerified" boolean NOT NULL DEFAULT false,
    image           text,
    "createdAt"     timestamp NOT NULL DEFAULT timezone('utc', now()),
    "updatedAt"     timestamp NOT NULL DEFAULT timezone('utc', now())
);

CREATE TABLE categories (
    id         serial PRIMARY KEY,
    user_id    varchar NOT NULL,
    name       varchar(50) NOT NULL,
    color      varchar(7) CHECK (color ~ '^#[0-9A-Fa-f]{6}$'),
    created_at timestamp NOT NULL DEFAULT timezone('utc', now()),
    UNIQUE (user_id, name)
);

CREATE TABLE tags_phasev (
    id         serial PRIMARY KEY,
    user_id    varchar NOT NULL,
    name       varchar(30) NOT NULL,
    color      varchar(7) CHECK (color ~ '^#[0-9A-Fa-f]{6}$'),
    created_at timestamp NOT NULL DEFAULT timezone('utc', now()),
    UNIQUE (user_id, name)
);

CREATE TABLE tasks_phaseiii (
    id              serial PRIMARY KEY,
    user_id         varchar NOT NULL,
    title           varchar(200) NOT NULL,
    description     text,
    completed       boolean NOT NULL DEFAULT false,
    priority        priority_level NOT NULL DEFAULT 'medium',
    due_date        timestamp,
    category_id     integer REFERENCES categories (id) ON DELETE SET NULL,
    recurrence_rule text,
    reminder_sent   boolean NOT NULL DEFAULT false,
    created_at      timestamp NOT NULL DEFAULT timezone('utc', now()),
    updated_at      timestamp NOT NULL DEFAULT timezone('utc', now()),
    search_vector   tsvector,
    search_rank     real
);
CREATE INDEX ix_tasks_due_date ON tasks_phaseiii (due_date) WHERE due_date IS NOT NULL;
CREATE INDEX ix_tasks_search ON tasks_phaseiii USING gin (search_vector);

CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := timezone('utc', now());
    RETURN NEW;
END $$;
CREATE TRIGGER tasks_touch BEFORE UPDATE ON tasks_phaseiii
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER tasks_search BEFORE INSERT OR UPDATE ON tasks_phaseiii
    FOR EACH ROW EXECUTE FUNCTION
    tsvector_update_trigger(search_vector, 'pg_catalog.english', title, description);

CREATE TABLE task_tags (
    task_id integer NOT NULL REFERENCES tasks_phaseiii (id) ON DELETE CASCADE,
    tag_id  integer NOT NULL REFERENCES tags_phasev (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, tag_id)
);

CREATE TABLE conversations (
    id          serial PRIMARY KEY,
    user_id     varchar NOT NULL,
    external_id varchar UNIQUE,
    title       varchar,
    created_at  timestamp NOT NULL DEFAULT timezone('utc', now()),
    updated_at  timestamp NOT NULL DEFAULT timezone('utc', now())
);
CREATE TABLE messages (
    id              serial PRIMARY KEY,
    conversation_id integer NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         varchar NOT NULL,
    role            varchar NOT NULL CHECK (role IN ('user', 'assistant')),
    content         text NOT NULL,
    created_at      timestamp NOT NULL DEFAULT timezone('utc', now())
);
"#;

/// Rules of our subset, as an assistant of the original wrote them.
const SUPPORTED_RULES: [&str; 5] = [
    "FREQ=DAILY",
    "freq=weekly;byday=fr,mo",
    "FREQ=MONTHLY;BYMONTHDAY=15",
    "FREQ=WEEKLY;INTERVAL=2",
    "FREQ=MONTHLY;BYDAY=-1FR;COUNT=6",
];
/// Rules outside it.
const UNSUPPORTED_RULES: [&str; 4] = [
    "FREQ=HOURLY",
    "FREQ=MINUTELY;INTERVAL=15",
    "FREQ=DAILY;BYHOUR=9",
    "every monday",
];
const WORDS: [&str; 12] = [
    "garden",
    "rent",
    "dentist",
    "report",
    "groceries",
    "gym",
    "taxes",
    "car",
    "books",
    "call",
    "laundry",
    "invoice",
];
const PRIORITIES: [&str; 4] = ["low", "medium", "high", "urgent"];
/// The reminder lead the runs use (the original's poller window).
const LEAD_MINUTES: i64 = 60;

// ---------------------------------------------------------------------------------------------
// The original database and its generated rows.

/// A second database on the test server holding the original schema.
struct Original {
    name: String,
    pool: PgPool,
}

impl Original {
    async fn create(ours: &PgPool) -> Self {
        let name = format!("original_{}", Uuid::new_v4().simple());
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(ours)
            .await
            .unwrap();
        let options = (*ours.connect_options()).clone().database(&name);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .unwrap();
        sqlx::raw_sql(ORIGINAL_SCHEMA).execute(&pool).await.unwrap();
        Self { name, pool }
    }

    async fn import(&self, ours: &PgPool, options: &ImportOptions) -> Result<Report, ImportError> {
        let mut conn = self.pool.acquire().await.unwrap();
        import::import(&mut conn, ours, options).await
    }

    async fn remove(self, ours: &PgPool) {
        self.pool.close().await;
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE {} WITH (FORCE)",
            self.name
        )))
        .execute(ours)
        .await
        .unwrap();
    }
}

/// xorshift64*: reproducible generated data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }

    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

#[derive(Clone, Debug)]
struct User {
    id: String,
    /// `None`: no row in Better Auth's table.
    email: Option<String>,
}

#[derive(Clone, Debug)]
struct Label {
    id: i64,
    user: String,
    name: String,
    color: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
enum Due {
    None,
    At(DateTime<Utc>),
    /// PostgreSQL's `infinity`: a timestamp, but no date.
    Infinity,
}

#[derive(Clone, Debug)]
struct Task {
    id: i64,
    user: String,
    title: String,
    description: Option<String>,
    completed: bool,
    priority: &'static str,
    due: Due,
    rule: Option<&'static str>,
    category: Option<i64>,
    tags: Vec<i64>,
    reminder_sent: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Everything generated into the original, as the model knows it.
#[derive(Default)]
struct Data {
    users: Vec<User>,
    categories: Vec<Label>,
    tags: Vec<Label>,
    tasks: Vec<Task>,
    /// `task_tags` rows whose task does not exist.
    orphan_links: Vec<(i64, i64)>,
}

fn naive(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc()
}

impl Data {
    async fn add_user(&mut self, db: &PgPool, id: &str, email: Option<&str>) {
        if let Some(email) = email {
            sqlx::query(r#"INSERT INTO "user" (id, name, email) VALUES ($1, $2, $3)"#)
                .bind(id)
                .bind(format!("Name of {id}"))
                .bind(email)
                .execute(db)
                .await
                .unwrap();
        }
        self.users.push(User {
            id: id.to_owned(),
            email: email.map(str::to_owned),
        });
    }

    async fn add_label(
        &mut self,
        db: &PgPool,
        table: &str,
        user: &str,
        name: &str,
        color: Option<&str>,
        now: DateTime<Utc>,
    ) -> i64 {
        let sql = format!(
            "INSERT INTO {table} (user_id, name, color, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id::bigint"
        );
        let id: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(user)
            .bind(name)
            .bind(color)
            .bind(naive(now - Duration::days(90)))
            .fetch_one(db)
            .await
            .unwrap();
        let label = Label {
            id,
            user: user.to_owned(),
            name: name.to_owned(),
            color: color.map(str::to_owned),
        };
        if table == "categories" {
            self.categories.push(label);
        } else {
            self.tags.push(label);
        }
        id
    }

    /// Inserts `task` (its id is assigned) with its tag links; links to tags that do not exist
    /// go in with the foreign keys off, as a restore without constraints would leave them.
    async fn add_task(&mut self, db: &PgPool, mut task: Task) -> i64 {
        task.id = insert_task(db, &task).await;
        for &tag in &task.tags {
            link(db, task.id, tag, !self.tags.iter().any(|t| t.id == tag)).await;
        }
        let id = task.id;
        self.tasks.push(task);
        id
    }

    fn task(&self, id: i64) -> &Task {
        self.tasks.iter().find(|t| t.id == id).unwrap()
    }

    fn task_mut(&mut self, id: i64) -> &mut Task {
        self.tasks.iter_mut().find(|t| t.id == id).unwrap()
    }
}

async fn insert_task(db: &PgPool, t: &Task) -> i64 {
    let due = match &t.due {
        Due::None => None,
        Due::At(at) => Some(naive(*at).to_string()),
        Due::Infinity => Some("infinity".to_owned()),
    };
    sqlx::query_scalar(
        "INSERT INTO tasks_phaseiii (user_id, title, description, completed, priority, due_date, \
                                     category_id, recurrence_rule, reminder_sent, created_at, \
                                     updated_at) \
         VALUES ($1, $2, $3, $4, $5::priority_level, $6::timestamp, $7, $8, $9, $10, $11) \
         RETURNING id::bigint",
    )
    .bind(&t.user)
    .bind(&t.title)
    .bind(&t.description)
    .bind(t.completed)
    .bind(t.priority)
    .bind(due)
    .bind(t.category.map(|c| i32::try_from(c).unwrap()))
    .bind(t.rule)
    .bind(t.reminder_sent)
    .bind(naive(t.created_at))
    .bind(naive(t.updated_at))
    .fetch_one(db)
    .await
    .unwrap()
}

/// A `task_tags` row; `unchecked` inserts it with the foreign keys off.
async fn link(db: &PgPool, task: i64, tag: i64, unchecked: bool) {
    let mut conn = db.acquire().await.unwrap();
    if unchecked {
        sqlx::query("SET session_replication_role = replica")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO task_tags (task_id, tag_id) VALUES ($1, $2)")
        .bind(i32::try_from(task).unwrap())
        .bind(i32::try_from(tag).unwrap())
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("SET session_replication_role = DEFAULT")
        .execute(&mut *conn)
        .await
        .unwrap();
}

/// Named tasks the scenarios change later.
struct Fixtures {
    /// Pending with a reminder: its title changes in the delta.
    retitled: i64,
    /// Pending, recurring, with a reminder: completed in the original before the delta.
    completed: i64,
    /// Pending with a reminder: deleted from the original before the delta.
    deleted_with_reminder: i64,
    /// Without a due date: deleted from the original before the delta.
    deleted_plain: i64,
    /// An unsupported rule, reminder already sent: the rule is fixed before the delta.
    rule_fixed: i64,
    /// Without a due date: gets another tag before the delta.
    retagged: i64,
    /// A category of alice: renamed before the delta.
    renamed_category: i64,
}

fn user_ids() -> [&'static str; 4] {
    ["auth|alice", "auth|bob", "github|carol", "dave"]
}

/// A user id our `users.id` cannot hold (a control character): every row of it is skipped.
const BAD_USER: &str = "bad\u{1}user";

/// Generates the original's rows: four users (one without a Better Auth row), their labels
/// (with a case-only duplicate, a blank name, a user with twelve tags), `per_user` random
/// tasks each, and the fixtures for the edge cases.
async fn generate(db: &PgPool, seed: u64, per_user: usize, now: DateTime<Utc>) -> (Data, Fixtures) {
    let mut rng = Rng(seed);
    let mut data = Data::default();
    let [alice, bob, carol, dave] = user_ids();
    data.add_user(db, alice, Some("alice@example.test")).await;
    data.add_user(db, bob, Some("bob@example.test")).await;
    data.add_user(db, carol, None).await;
    data.add_user(db, dave, Some("dave@example.test")).await;
    data.users.push(User {
        id: BAD_USER.to_owned(),
        email: None,
    });
    let colors = [None, Some("#ff5733"), Some("#00AA00"), Some("#123abc")];
    for user in user_ids() {
        for n in 0..3 {
            let name = format!("{} {n}", rng.pick(&WORDS));
            data.add_label(db, "categories", user, &name, rng.pick(&colors), now)
                .await;
        }
        let tags = if user == dave { 12 } else { 4 };
        for n in 0..tags {
            let name = format!("{}-{n}", rng.pick(&WORDS));
            data.add_label(db, "tags_phasev", user, &name, rng.pick(&colors), now)
                .await;
        }
    }
    // Names our unique index (case-insensitive) folds together, and ones we cannot store.
    let work = data
        .add_label(db, "categories", alice, "Work", None, now)
        .await;
    let work_lower = data
        .add_label(db, "categories", alice, "work", Some("#000000"), now)
        .await;
    let blank_category = data
        .add_label(db, "categories", bob, "   ", None, now)
        .await;
    let blank_tag = data
        .add_label(db, "tags_phasev", alice, "  ", None, now)
        .await;
    data.add_label(db, "categories", BAD_USER, "Stuff", None, now)
        .await;
    let renamed_category = data.categories[0].id;

    let plain = |user: &str, title: String| Task {
        id: 0,
        user: user.to_owned(),
        title,
        description: None,
        completed: false,
        priority: "medium",
        due: Due::None,
        rule: None,
        category: None,
        tags: Vec::new(),
        reminder_sent: false,
        created_at: now - Duration::days(10),
        updated_at: now - Duration::days(9),
    };
    for user in user_ids() {
        let own = |labels: &[Label]| -> Vec<i64> {
            labels
                .iter()
                .filter(|l| l.user == user)
                .map(|l| l.id)
                .collect()
        };
        let (categories, tags) = (own(&data.categories), own(&data.tags));
        for n in 0..per_user {
            let word = rng.pick(&WORDS);
            let created_at = now - Duration::days(1 + rng.below(60) as i64);
            let mut task = plain(user, format!("{word} {n} of {user}"));
            task.description = rng
                .percent(50)
                .then(|| format!("notes about {word}\nline two"));
            task.completed = rng.percent(30);
            task.priority = rng.pick(&PRIORITIES);
            task.due = match rng.below(20) {
                0..5 => Due::None,
                5..7 => Due::At(now - Duration::hours(1 + rng.below(500) as i64)),
                7 => Due::Infinity,
                // A few within the reminder lead: reminded at once.
                8 => Due::At(now + Duration::minutes(5 + rng.below(50) as i64)),
                _ => Due::At(now + Duration::hours(2 + rng.below(2000) as i64)),
            };
            task.rule = match rng.below(20) {
                0..5 => Some(rng.pick(&SUPPORTED_RULES)),
                5..8 => Some(rng.pick(&UNSUPPORTED_RULES)),
                _ => None,
            };
            task.category = rng.percent(60).then(|| rng.pick(&categories));
            for _ in 0..rng.below(4) {
                let tag = rng.pick(&tags);
                if !task.tags.contains(&tag) {
                    task.tags.push(tag);
                }
            }
            task.reminder_sent = rng.percent(20);
            task.created_at = created_at;
            task.updated_at = created_at + Duration::hours(rng.below(20) as i64);
            data.add_task(db, task).await;
        }
    }

    let alice_category = data.categories[1].id;
    let alice_tag = data.tags.iter().find(|t| t.user == alice).unwrap().id;
    let dave_tags: Vec<i64> = data
        .tags
        .iter()
        .filter(|t| t.user == dave)
        .map(|t| t.id)
        .collect();
    let with_reminder = |user: &str, title: &str, days: i64| Task {
        due: Due::At(now + Duration::days(days)),
        ..plain(user, title.to_owned())
    };
    let retitled = data
        .add_task(db, with_reminder(alice, "Call the bank", 3))
        .await;
    let completed = data
        .add_task(
            db,
            Task {
                rule: Some("FREQ=WEEKLY"),
                category: Some(alice_category),
                tags: vec![alice_tag],
                ..with_reminder(alice, "Water the plants", 5)
            },
        )
        .await;
    let deleted_with_reminder = data
        .add_task(db, with_reminder(bob, "Book flights", 2))
        .await;
    let deleted_plain = data.add_task(db, plain(bob, "Old idea".into())).await;
    let rule_fixed = data
        .add_task(
            db,
            Task {
                rule: Some("FREQ=HOURLY"),
                reminder_sent: true,
                ..with_reminder(carol, "Stretch", 4)
            },
        )
        .await;
    let retagged = data
        .add_task(
            db,
            Task {
                tags: vec![dave_tags[0]],
                ..plain(dave, "Sort the books".into())
            },
        )
        .await;
    // Edge cases of links: another user's labels, a merged category, a tag we cannot store,
    // more than ten tags, a tag that does not exist.
    data.add_task(
        db,
        Task {
            category: Some(alice_category),
            tags: vec![alice_tag],
            ..plain(bob, "Borrowed labels".into())
        },
    )
    .await;
    data.add_task(
        db,
        Task {
            category: Some(work_lower),
            tags: vec![blank_tag, alice_tag],
            ..plain(alice, "Quarterly review".into())
        },
    )
    .await;
    data.add_task(
        db,
        Task {
            category: Some(work),
            ..plain(alice, "Expenses".into())
        },
    )
    .await;
    data.add_task(
        db,
        Task {
            category: Some(blank_category),
            ..plain(bob, "Unfiled".into())
        },
    )
    .await;
    data.add_task(
        db,
        Task {
            tags: dave_tags.clone(),
            ..plain(dave, "Everything at once".into())
        },
    )
    .await;
    data.add_task(
        db,
        Task {
            tags: vec![999_999],
            ..plain(carol, "Dangling tag".into())
        },
    )
    .await;
    data.add_task(
        db,
        Task {
            rule: Some("FREQ=DAILY"),
            ..plain(carol, "Daily without a date".into())
        },
    )
    .await;
    data.add_task(db, plain(BAD_USER, "Unreachable".into()))
        .await;
    link(db, 888_888, dave_tags[1], true).await;
    data.orphan_links.push((888_888, dave_tags[1]));

    let fixtures = Fixtures {
        retitled,
        completed,
        deleted_with_reminder,
        deleted_plain,
        rule_fixed,
        retagged,
        renamed_category,
    };
    (data, fixtures)
}

// ---------------------------------------------------------------------------------------------
// The model: what each original row should become, and what the report should say.

/// One expected issue: entity, original id, user, field, outcome.
type IssueKey = (Entity, Option<i64>, Option<String>, String, String);

fn issue(
    entity: Entity,
    id: Option<i64>,
    user: Option<&str>,
    field: &str,
    outcome: Outcome,
) -> IssueKey {
    (
        entity,
        id,
        user.map(str::to_owned),
        field.to_owned(),
        format!("{outcome:?}"),
    )
}

fn reported(report: &Report) -> Vec<IssueKey> {
    let mut keys: Vec<IssueKey> = report
        .issues
        .iter()
        .map(|i| {
            issue(
                i.entity,
                i.legacy_id,
                i.user_id.as_deref(),
                i.finding.field,
                i.finding.outcome,
            )
        })
        .collect();
    keys.sort();
    keys
}

/// What a task should look like here.
#[derive(Clone, Debug, PartialEq)]
struct Expected {
    user: String,
    title: String,
    description: String,
    completed: bool,
    priority: String,
    due_at: Option<DateTime<Utc>>,
    remind_at: Option<DateTime<Utc>>,
    rule: Option<String>,
    category: Option<String>,
    tags: BTreeSet<String>,
    created_at: DateTime<Utc>,
}

impl Expected {
    fn pending_reminder(&self) -> bool {
        self.remind_at.is_some() && !self.completed
    }
}

/// The model's verdict on the whole original.
struct Model {
    tasks: BTreeMap<i64, Expected>,
    /// Per user: category and tag names here, with their colours.
    categories: LabelsHere,
    tags: LabelsHere,
    issues: Vec<IssueKey>,
}

fn usable(user: &str) -> bool {
    !user.chars().any(char::is_control)
}

/// Labels per user here: name → colour.
type LabelsHere = BTreeMap<String, BTreeMap<String, Option<String>>>;

/// Labels of one kind: original id → our name (`None`: not carried), our labels per user, and
/// the issues.
fn model_labels(
    labels: &[Label],
    entity: Entity,
    issues: &mut Vec<IssueKey>,
) -> (HashMap<i64, Option<String>>, LabelsHere) {
    let mut ours: HashMap<i64, Option<String>> = HashMap::new();
    let mut names = LabelsHere::new();
    let mut sorted = labels.to_vec();
    sorted.sort_by_key(|l| l.id);
    for label in sorted {
        let user = label.user.as_str();
        let mut note = |field: &str, outcome| {
            issues.push(issue(entity, Some(label.id), Some(user), field, outcome));
        };
        let name = label.name.trim().to_owned();
        if !usable(user) || name.is_empty() {
            note(
                if usable(user) { "name" } else { "user_id" },
                Outcome::Skipped,
            );
            ours.insert(label.id, None);
            continue;
        }
        let set = names.entry(user.to_owned()).or_default();
        match set.keys().find(|n| n.to_lowercase() == name.to_lowercase()) {
            Some(existing) => {
                note("name", Outcome::Changed);
                ours.insert(label.id, Some(existing.clone()));
            }
            None => {
                set.insert(name.clone(), label.color.as_deref().map(str::to_uppercase));
                ours.insert(label.id, Some(name));
            }
        }
    }
    (ours, names)
}

fn model(data: &Data, now: DateTime<Utc>) -> Model {
    let mut issues = Vec::new();
    for user in &data.users {
        let note = |field: &str, outcome| issue(Entity::User, None, Some(&user.id), field, outcome);
        if !usable(&user.id) {
            issues.push(note("user_id", Outcome::Skipped));
        } else if user.email.is_none() {
            issues.push(note("email", Outcome::NotCarried));
        }
    }
    let (categories, category_names) =
        model_labels(&data.categories, Entity::Category, &mut issues);
    let (tags, tag_names) = model_labels(&data.tags, Entity::Tag, &mut issues);
    let owner =
        |labels: &[Label], id: i64| labels.iter().find(|l| l.id == id).map(|l| l.user.clone());

    let mut tasks = BTreeMap::new();
    for t in &data.tasks {
        let user = t.user.as_str();
        let mut push = |field: &str, outcome| {
            issues.push(issue(Entity::Task, Some(t.id), Some(user), field, outcome));
        };
        if !usable(user) {
            push("user_id", Outcome::Skipped);
            continue;
        }
        let due_at = match t.due {
            Due::At(at) => Some(at),
            Due::None => None,
            Due::Infinity => {
                push("due_date", Outcome::NotCarried);
                None
            }
        };
        let rule = match t.rule.map(Rrule::normalize) {
            None => None,
            Some(Ok(rule)) if due_at.is_some() => Some(rule),
            Some(_) => {
                push("recurrence_rule", Outcome::NotCarried);
                None
            }
        };
        let category = t.category.and_then(|c| {
            let name = (owner(&data.categories, c).as_deref() == Some(user))
                .then(|| categories[&c].clone())
                .flatten();
            if name.is_none() {
                push("category_id", Outcome::NotCarried);
            }
            name
        });
        let mut tag_set = BTreeSet::new();
        let mut sorted_tags = t.tags.clone();
        sorted_tags.sort_unstable();
        for tag in sorted_tags {
            let name = (owner(&data.tags, tag).as_deref() == Some(user))
                .then(|| tags[&tag].clone())
                .flatten();
            match name {
                None => push("tag_ids", Outcome::NotCarried),
                Some(name) if tag_set.contains(&name) => {}
                Some(_) if tag_set.len() == 10 => push("tag_ids", Outcome::NotCarried),
                Some(name) => {
                    tag_set.insert(name);
                }
            }
        }
        let remind_at = match due_at {
            Some(due) if !t.completed && !t.reminder_sent && due > now => {
                Some((due - TimeDelta::minutes(LEAD_MINUTES)).max(t.created_at))
            }
            _ => None,
        };
        tasks.insert(
            t.id,
            Expected {
                user: user.to_owned(),
                title: t.title.clone(),
                description: t.description.clone().unwrap_or_default(),
                completed: t.completed,
                priority: t.priority.to_owned(),
                due_at,
                remind_at,
                rule,
                category,
                tags: tag_set,
                created_at: t.created_at,
            },
        );
    }
    for &(task, _) in &data.orphan_links {
        let orphan = issue(
            Entity::TaskTag,
            Some(task),
            None,
            "tag_id",
            Outcome::Skipped,
        );
        issues.push(orphan);
    }
    issues.sort();
    Model {
        tasks,
        categories: category_names,
        tags: tag_names,
        issues,
    }
}

// ---------------------------------------------------------------------------------------------
// Reading ours.

#[derive(Debug, sqlx::FromRow)]
struct Ours {
    legacy_id: i64,
    id: Uuid,
    user_id: String,
    title: String,
    description: String,
    completed: bool,
    completed_at: Option<DateTime<Utc>>,
    priority: String,
    due_at: Option<DateTime<Utc>>,
    remind_at: Option<DateTime<Utc>>,
    recurrence_rule: Option<String>,
    category: Option<String>,
    tags: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Ours {
    fn as_expected(&self) -> Expected {
        Expected {
            user: self.user_id.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            completed: self.completed,
            priority: self.priority.clone(),
            due_at: self.due_at,
            remind_at: self.remind_at,
            rule: self.recurrence_rule.clone(),
            category: self.category.clone(),
            tags: self.tags.iter().cloned().collect(),
            created_at: self.created_at,
        }
    }
}

async fn ours(pool: &PgPool) -> BTreeMap<i64, Ours> {
    let rows: Vec<Ours> = sqlx::query_as(
        "SELECT m.legacy_id, t.id, t.user_id, t.title, t.description, t.completed, \
                t.completed_at, t.priority, t.due_at, t.remind_at, t.recurrence_rule, \
                c.name AS category, t.created_at, t.updated_at, \
                ARRAY(SELECT g.name FROM task_tags tt JOIN tags g ON g.id = tt.tag_id \
                      WHERE tt.task_id = t.id ORDER BY g.name) AS tags \
         FROM legacy_ids m JOIN tasks t ON t.id = m.id \
         LEFT JOIN categories c ON c.id = t.category_id WHERE m.kind = 'task'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().map(|r| (r.legacy_id, r)).collect()
}

async fn label_names(pool: &PgPool, table: &str) -> LabelsHere {
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT user_id, name, color FROM {table}"
    )))
    .fetch_all(pool)
    .await
    .unwrap();
    let mut names = LabelsHere::new();
    for (user, name, color) in rows {
        names.entry(user).or_default().insert(name, color);
    }
    names
}

/// Row counts and a digest of every row of every table an import writes: equal snapshots mean
/// nothing was written.
async fn snapshot(pool: &PgPool) -> Vec<(String, i64, String)> {
    let mut out = Vec::new();
    for table in [
        "users",
        "categories",
        "tags",
        "tasks",
        "task_tags",
        "legacy_ids",
        "outbox",
    ] {
        let row: (i64, String) = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) \
             FROM {table} x"
        )))
        .fetch_one(pool)
        .await
        .unwrap();
        out.push((table.to_owned(), row.0, row.1));
    }
    out
}

/// Outbox rows as (event type, topic, task id), in commit order.
async fn events(pool: &PgPool) -> Vec<(String, String, Uuid)> {
    sqlx::query_as("SELECT event_type, topic, aggregate_id FROM outbox ORDER BY seq")
        .fetch_all(pool)
        .await
        .unwrap()
}

fn options(now: DateTime<Utc>, batch_size: u32) -> ImportOptions {
    ImportOptions {
        batch_size,
        reminder_lead: Some(TimeDelta::minutes(LEAD_MINUTES)),
        now,
    }
}

/// Now, to the second (the generated times are whole seconds too).
fn now() -> DateTime<Utc> {
    Utc::now().duration_trunc(TimeDelta::seconds(1)).unwrap()
}

/// Checks ours against the model: every carried task with its values, per user; labels per
/// user; no cross-user links; and the report's issues exactly.
async fn check_against_model(pool: &PgPool, model: &Model, report: &Report) {
    let ours = ours(pool).await;
    let carried: BTreeMap<i64, Expected> =
        ours.iter().map(|(id, o)| (*id, o.as_expected())).collect();
    assert_eq!(carried.len(), model.tasks.len());
    for (id, expected) in &model.tasks {
        assert_eq!(carried.get(id), Some(expected), "original task {id}");
        let o = &ours[id];
        assert_eq!(o.completed_at.is_some(), o.completed, "task {id}");
    }
    let per_user = |tasks: &BTreeMap<i64, Expected>| {
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for t in tasks.values() {
            *count.entry(t.user.clone()).or_default() += 1;
        }
        count
    };
    assert_eq!(per_user(&carried), per_user(&model.tasks));
    assert_eq!(label_names(pool, "categories").await, model.categories);
    assert_eq!(label_names(pool, "tags").await, model.tags);
    let foreign: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM task_tags tt JOIN tasks t ON t.id = tt.task_id \
                 JOIN tags g ON g.id = tt.tag_id WHERE g.user_id <> t.user_id) \
              + (SELECT count(*) FROM tasks t JOIN categories c ON c.id = t.category_id \
                 WHERE c.user_id <> t.user_id)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(foreign, 0, "a label of another user is linked");
    assert_eq!(reported(report), model.issues);
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn bulk_then_idempotent_then_delta(pool: PgPool) {
    let original = Original::create(&pool).await;
    let t0 = now();
    let (mut data, fx) = generate(&original.pool, 0x5eed_1234_abcd, 30, t0).await;
    for rule in SUPPORTED_RULES {
        assert!(Rrule::normalize(rule).is_ok(), "{rule}");
    }
    for rule in UNSUPPORTED_RULES {
        assert!(Rrule::normalize(rule).is_err(), "{rule}");
    }

    // The bulk run, in small batches so every table takes several.
    let started = Instant::now();
    let first = original.import(&pool, &options(t0, 16)).await.unwrap();
    let rows = first.users.read + first.categories.read + first.tags.read + first.tasks.read;
    println!(
        "bulk import: {rows} rows in {:.3} s ({:.0} rows/s)",
        started.elapsed().as_secs_f64(),
        rows as f64 / started.elapsed().as_secs_f64()
    );
    let expected = model(&data, t0);
    check_against_model(&pool, &expected, &first).await;
    assert_eq!(first.tasks.read, data.tasks.len() as u64);
    assert_eq!(first.tasks.new, expected.tasks.len() as u64);
    assert_eq!(
        first.tasks.skipped,
        (data.tasks.len() - expected.tasks.len()) as u64
    );
    assert_eq!(
        first.users.new,
        data.users.iter().filter(|u| usable(&u.id)).count() as u64
    );
    let emails: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT id, email FROM users ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    for user in data.users.iter().filter(|u| usable(&u.id)) {
        assert!(
            emails.contains(&(user.id.clone(), user.email.clone())),
            "{user:?}"
        );
    }
    // One `task.created` per task with a pending reminder, on task-events only.
    let carried = ours(&pool).await;
    let with_reminder: BTreeSet<Uuid> = expected
        .tasks
        .iter()
        .filter(|(_, t)| t.pending_reminder())
        .map(|(id, _)| carried[id].id)
        .collect();
    assert!(
        with_reminder.len() > 5,
        "the generated data lacks reminders"
    );
    let bulk_events = events(&pool).await;
    assert_eq!(first.events, bulk_events.len() as u64);
    assert_eq!(
        bulk_events.iter().map(|e| e.2).collect::<BTreeSet<_>>(),
        with_reminder
    );
    assert!(
        bulk_events
            .iter()
            .all(|(ty, topic, _)| ty == "com.todo.task.created.v1" && topic == "task-events")
    );
    assert_eq!(bulk_events.len(), with_reminder.len(), "one event per task");

    // The same original again, a minute later: nothing is written.
    let before = snapshot(&pool).await;
    let second = original
        .import(&pool, &options(t0 + Duration::minutes(1), 16))
        .await
        .unwrap();
    assert_eq!(snapshot(&pool).await, before);
    assert!(!second.wrote(), "{second}");
    for counts in [second.users, second.categories, second.tags, second.tasks] {
        assert_eq!((counts.new, counts.updated, counts.deleted), (0, 0, 0));
    }
    assert_eq!(second.tasks.unchanged, first.tasks.new);
    assert_eq!(second.events, 0);
    assert_eq!(
        second.issues, first.issues,
        "every run reports the whole original"
    );

    // The original is used on: a retitled task, a completion, two deletions, a new task, a
    // fixed rule, a new tag link, a renamed category.
    let db = &original.pool;
    sqlx::query("UPDATE tasks_phaseiii SET title = 'Call the bank about the loan' WHERE id = $1")
        .bind(fx.retitled as i32)
        .execute(db)
        .await
        .unwrap();
    sqlx::query("UPDATE tasks_phaseiii SET completed = true WHERE id = $1")
        .bind(fx.completed as i32)
        .execute(db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM tasks_phaseiii WHERE id = ANY($1)")
        .bind(vec![
            fx.deleted_with_reminder as i32,
            fx.deleted_plain as i32,
        ])
        .execute(db)
        .await
        .unwrap();
    sqlx::query("UPDATE tasks_phaseiii SET recurrence_rule = 'FREQ=DAILY' WHERE id = $1")
        .bind(fx.rule_fixed as i32)
        .execute(db)
        .await
        .unwrap();
    let extra_tag = data
        .tags
        .iter()
        .find(|t| t.user == "dave" && !data.task(fx.retagged).tags.contains(&t.id))
        .unwrap()
        .id;
    link(db, fx.retagged, extra_tag, false).await;
    sqlx::query("UPDATE categories SET name = 'Renamed' WHERE id = $1")
        .bind(fx.renamed_category as i32)
        .execute(db)
        .await
        .unwrap();
    let t1 = t0 + Duration::minutes(2);
    let new_task = data
        .add_task(
            db,
            Task {
                id: 0,
                user: "auth|alice".into(),
                title: "Pick up the parcel".into(),
                description: Some("post office".into()),
                completed: false,
                priority: "high",
                due: Due::At(t1 + Duration::days(1)),
                rule: None,
                category: None,
                tags: Vec::new(),
                reminder_sent: false,
                created_at: t1 - Duration::seconds(30),
                updated_at: t1 - Duration::seconds(30),
            },
        )
        .await;
    // The model follows the same changes.
    data.task_mut(fx.retitled).title = "Call the bank about the loan".into();
    data.task_mut(fx.completed).completed = true;
    data.tasks
        .retain(|t| t.id != fx.deleted_with_reminder && t.id != fx.deleted_plain);
    data.task_mut(fx.rule_fixed).rule = Some("FREQ=DAILY");
    data.task_mut(fx.retagged).tags.push(extra_tag);
    data.categories
        .iter_mut()
        .find(|c| c.id == fx.renamed_category)
        .unwrap()
        .name = "Renamed".into();

    let before_delta = ours(&pool).await;
    let events_before = events(&pool).await.len();
    let delta = original.import(&pool, &options(t1, 16)).await.unwrap();
    let expected = model(&data, t1);
    check_against_model(&pool, &expected, &delta).await;
    assert_eq!(
        (delta.tasks.new, delta.tasks.updated, delta.tasks.deleted),
        (1, 4, 2),
        "{delta}"
    );
    assert_eq!(
        (
            delta.categories.updated,
            delta.tags.updated,
            delta.users.new
        ),
        (1, 0, 0)
    );
    let after_delta = ours(&pool).await;
    assert!(!after_delta.contains_key(&fx.deleted_with_reminder));
    let done = &after_delta[&fx.completed];
    assert!(done.completed && done.completed_at.is_some() && done.remind_at.is_none());
    assert_eq!(done.recurrence_rule.as_deref(), Some("FREQ=WEEKLY"));
    assert!(after_delta[&fx.retitled].updated_at > before_delta[&fx.retitled].updated_at);
    // Events exactly where a reminder job must change: the retitled and the completed task
    // (`task.updated`, never `task.completed`), the deleted one, the new one; none for the fixed
    // rule (its reminder was sent), the new tag link or the plain deletion.
    let new_events: Vec<(String, Uuid)> = events(&pool).await[events_before..]
        .iter()
        .map(|(ty, _, id)| (ty.clone(), *id))
        .collect();
    let mut expected_events = vec![
        (
            "com.todo.task.updated.v1".to_owned(),
            after_delta[&fx.retitled].id,
        ),
        (
            "com.todo.task.updated.v1".to_owned(),
            after_delta[&fx.completed].id,
        ),
        (
            "com.todo.task.created.v1".to_owned(),
            after_delta[&new_task].id,
        ),
        (
            "com.todo.task.deleted.v1".to_owned(),
            before_delta[&fx.deleted_with_reminder].id,
        ),
    ];
    expected_events.sort();
    let mut got = new_events.clone();
    got.sort();
    assert_eq!(got, expected_events);
    assert_eq!(delta.events, expected_events.len() as u64);
    let map_left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM legacy_ids WHERE kind = 'task' AND legacy_id = ANY($1)",
    )
    .bind(vec![fx.deleted_with_reminder, fx.deleted_plain])
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(map_left, 0);

    // And once more: the delta left nothing to do.
    let before = snapshot(&pool).await;
    let again = original.import(&pool, &options(t1, 16)).await.unwrap();
    assert!(!again.wrote(), "{again}");
    assert_eq!(snapshot(&pool).await, before);

    mcp_answers_original_ids(&pool, &data, &fx, &after_delta).await;
    original.remove(&pool).await;
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn a_failed_run_is_completed_by_the_next(pool: PgPool) {
    let original = Original::create(&pool).await;
    let t0 = now();
    let (data, _) = generate(&original.pool, 42, 20, t0).await;
    let expected = model(&data, t0);
    // Our database refuses one task half-way through (as a full disk or a lost connection
    // would stop a run): everything up to its batch stays, consistent.
    let victim = data.tasks[data.tasks.len() / 2].id;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.title = '{}' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION refuse();",
        data.task(victim).title
    )))
    .execute(&pool)
    .await
    .unwrap();
    let err = original.import(&pool, &options(t0, 10)).await.unwrap_err();
    assert!(matches!(err, ImportError::Target(_)), "{err:?}");

    let (tasks, mapped, unmapped, dangling, orphan_events): (i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM tasks), \
                    (SELECT count(*) FROM legacy_ids WHERE kind = 'task'), \
                    (SELECT count(*) FROM tasks t WHERE NOT EXISTS \
                        (SELECT 1 FROM legacy_ids m WHERE m.id = t.id)), \
                    (SELECT count(*) FROM legacy_ids m WHERE m.kind = 'task' AND NOT EXISTS \
                        (SELECT 1 FROM tasks t WHERE t.id = m.id)), \
                    (SELECT count(*) FROM outbox o WHERE NOT EXISTS \
                        (SELECT 1 FROM tasks t WHERE t.id = o.aggregate_id))",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        tasks > 0 && (tasks as usize) < expected.tasks.len(),
        "{tasks}"
    );
    assert_eq!(
        (mapped, unmapped, dangling, orphan_events),
        (tasks, 0, 0, 0)
    );
    assert_eq!(tasks % 10, 0, "whole batches only");

    sqlx::raw_sql("DROP TRIGGER refuse ON tasks; DROP FUNCTION refuse();")
        .execute(&pool)
        .await
        .unwrap();
    let resumed = original.import(&pool, &options(t0, 10)).await.unwrap();
    check_against_model(&pool, &expected, &resumed).await;
    assert_eq!(resumed.tasks.unchanged, tasks as u64);
    assert_eq!(
        resumed.tasks.new,
        expected.tasks.len() as u64 - tasks as u64
    );
    let pending = expected
        .tasks
        .values()
        .filter(|t| t.pending_reminder())
        .count();
    assert_eq!(
        events(&pool).await.len(),
        pending,
        "each reminder announced once"
    );

    // A source that has lost every row (a wrong URL, say) is refused, not mirrored.
    sqlx::raw_sql("TRUNCATE tasks_phaseiii, task_tags, categories, tags_phasev")
        .execute(&original.pool)
        .await
        .unwrap();
    let before = snapshot(&pool).await;
    let err = original.import(&pool, &options(t0, 10)).await.unwrap_err();
    assert!(matches!(err, ImportError::SourceEmpty { .. }), "{err:?}");
    assert_eq!(snapshot(&pool).await, before);
    original.remove(&pool).await;
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn a_source_without_the_original_schema_is_refused(pool: PgPool) {
    let original = Original::create(&pool).await;
    sqlx::raw_sql("ALTER TABLE tasks_phaseiii DROP COLUMN reminder_sent; DROP TABLE task_tags;")
        .execute(&original.pool)
        .await
        .unwrap();
    let err = original
        .import(&pool, &options(now(), 10))
        .await
        .unwrap_err();
    let ImportError::SchemaMismatch { missing } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        missing,
        &[
            "tasks_phaseiii.reminder_sent",
            "task_tags.task_id",
            "task_tags.tag_id"
        ]
    );
    assert!(err.to_string().contains("tasks_phaseiii.reminder_sent"));
    assert_eq!(snapshot(&pool).await.iter().map(|s| s.1).sum::<i64>(), 0);
    original.remove(&pool).await;
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn rows_changed_here_are_not_undone(pool: PgPool) {
    let original = Original::create(&pool).await;
    let db = &original.pool;
    let t0 = now();
    let mut data = Data::default();
    data.add_user(db, "u1", Some("u1@example.test")).await;
    let home = data
        .add_label(db, "categories", "u1", "Home", None, t0)
        .await;
    let errands = data
        .add_label(db, "categories", "u1", "Errands", Some("#112233"), t0)
        .await;
    let kept = data
        .add_label(db, "tags_phasev", "u1", "kept", None, t0)
        .await;
    let dropped = data
        .add_label(db, "tags_phasev", "u1", "dropped", None, t0)
        .await;
    let task = |title: &str, category, tags| Task {
        id: 0,
        user: "u1".into(),
        title: title.into(),
        description: None,
        completed: false,
        priority: "low",
        due: Due::None,
        rule: None,
        category,
        tags,
        reminder_sent: false,
        created_at: t0 - Duration::days(2),
        updated_at: t0 - Duration::days(1),
    };
    let stays = data
        .add_task(db, task("Stays", Some(errands), vec![kept, dropped]))
        .await;
    let gone_here = data
        .add_task(db, task("Deleted here", Some(home), vec![]))
        .await;
    let first = original.import(&pool, &options(t0, 10)).await.unwrap();
    assert_eq!(
        (first.categories.new, first.tags.new, first.tasks.new),
        (2, 2, 2)
    );
    let ours_before = ours(&pool).await;

    // Here, a task and a tag are deleted (as a user of this system would).
    sqlx::query("DELETE FROM tasks WHERE id = $1")
        .bind(ours_before[&gone_here].id)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM tags WHERE name = 'dropped'")
        .execute(&pool)
        .await
        .unwrap();
    // There, every row changes: a category takes a name ours already uses (ignoring case), the
    // other gets a new colour, both tasks a new title.
    sqlx::raw_sql(
        "UPDATE categories SET name = 'HOME' WHERE name = 'Errands'; \
         UPDATE categories SET color = '#abcdef' WHERE name = 'Home'; \
         UPDATE tasks_phaseiii SET title = title || ' (edited)'; \
         UPDATE tags_phasev SET color = '#010203';",
    )
    .execute(db)
    .await
    .unwrap();
    for run in 0..2 {
        let report = original.import(&pool, &options(t0, 10)).await.unwrap();
        let u1 =
            |entity, id, field: &str, outcome| issue(entity, Some(id), Some("u1"), field, outcome);
        let mut expected = vec![
            u1(Entity::Category, errands, "name", Outcome::NotCarried),
            u1(Entity::Tag, dropped, "id", Outcome::Skipped),
            u1(Entity::Task, gone_here, "id", Outcome::Skipped),
            u1(Entity::Task, stays, "tag_ids", Outcome::NotCarried),
        ];
        expected.sort();
        assert_eq!(reported(&report), expected, "run {run}: {report}");
        // Not brought back, not renamed onto another label; the rest follows the original.
        assert_eq!(
            report.tasks.new + report.tags.new + report.categories.new,
            0
        );
        let names = label_names(&pool, "categories").await;
        assert_eq!(
            names["u1"],
            BTreeMap::from([
                ("Errands".to_owned(), Some("#112233".to_owned())),
                ("Home".to_owned(), Some("#ABCDEF".to_owned())),
            ])
        );
        let ours = ours(&pool).await;
        assert_eq!(ours.keys().copied().collect::<Vec<_>>(), [stays]);
        assert_eq!(ours[&stays].title, "Stays (edited)");
        assert_eq!(ours[&stays].tags, ["kept"]);
        assert_eq!(ours[&stays].category.as_deref(), Some("Errands"));
    }
    original.remove(&pool).await;
}

// ---------------------------------------------------------------------------------------------
// MCP with original ids.

const KEY: &str = "import-test-fixture-key-not-a-secret";

/// A bearer token for `user`, signed with [`KEY`], valid for an hour.
fn token(user: &str) -> String {
    let claims = json!({"sub": user, "iat": Utc::now().timestamp(),
                        "exp": (Utc::now() + Duration::hours(1)).timestamp()});
    support::hs256_token(KEY, &claims)
}

async fn mcp_answers_original_ids(
    pool: &PgPool,
    data: &Data,
    fx: &Fixtures,
    ours: &BTreeMap<i64, Ours>,
) {
    let url = serve(pool.clone(), KEY).await;
    let alice = connect(&url, token("auth|alice")).await;
    let bob = connect(&url, token("auth|bob")).await;
    let task = fx.retitled;
    let uuid = ours[&task].id.to_string();

    // The owner's old ids work, as numbers or as digits.
    let got = ok(&alice, "get_task", json!({"task_id": task})).await;
    assert_eq!(got["id"], uuid);
    assert_eq!(got["title"], "Call the bank about the loan");
    let got = ok(&alice, "get_task", json!({"task_id": task.to_string()})).await;
    assert_eq!(got["id"], uuid);
    // Another user's old id answers exactly like a missing one, also for writes.
    all_refused(
        &bob,
        "TASK_NOT_FOUND",
        vec![
            ("get_task", json!({"task_id": task})),
            ("complete_task", json!({"task_id": task})),
            ("delete_task", json!({"task_id": task})),
        ],
    )
    .await;
    // A deleted task's old id, and one never imported.
    err(
        &bob,
        "get_task",
        json!({"task_id": fx.deleted_with_reminder}),
        "TASK_NOT_FOUND",
    )
    .await;
    err(
        &alice,
        "get_task",
        json!({"task_id": 987_654}),
        "TASK_NOT_FOUND",
    )
    .await;

    // Labels: alice's category narrows her list; bob cannot use it, neither as a filter (it
    // matches nothing) nor as a target (not found).
    let category = fx.renamed_category;
    let in_category: BTreeSet<String> = data
        .tasks
        .iter()
        .filter(|t| t.category == Some(category) && ours.contains_key(&t.id))
        .map(|t| ours[&t.id].id.to_string())
        .collect();
    let page = ok(
        &alice,
        "list_tasks",
        json!({"category_id": category, "limit": 200}),
    )
    .await;
    let listed: BTreeSet<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, in_category);
    let page = ok(&bob, "list_tasks", json!({"category_id": category})).await;
    assert_eq!(page["total"], 0);
    err(
        &bob,
        "update_category",
        json!({"category_id": category, "name": "Mine"}),
        "NOT_FOUND",
    )
    .await;
    let bobs_task = ours.values().find(|o| o.user_id == "auth|bob").unwrap().id;
    err(
        &bob,
        "update_task",
        json!({"task_id": bobs_task, "category_id": category}),
        "NOT_FOUND",
    )
    .await;

    // Tags by old id: put one of alice's tags on her task, then take it off again.
    let tag = data
        .tags
        .iter()
        .find(|t| t.user == "auth|alice" && !t.name.trim().is_empty())
        .unwrap();
    let tagged = ok(
        &alice,
        "add_tag_to_task",
        json!({"task_id": task, "tag_id": tag.id}),
    )
    .await;
    assert!(
        tagged["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == tag.name.trim())
    );
    let found = ok(
        &alice,
        "search_tasks",
        json!({"query": "bank", "tag_ids": [tag.id]}),
    )
    .await;
    assert_eq!(found["total"], 1);
    let found = ok(
        &bob,
        "search_tasks",
        json!({"query": "bank", "tag_ids": [tag.id]}),
    )
    .await;
    assert_eq!(found["total"], 0);
    err(
        &bob,
        "add_tag_to_task",
        json!({"task_id": task, "tag_id": tag.id}),
        "TASK_NOT_FOUND",
    )
    .await;
    let untagged = ok(
        &alice,
        "remove_tag_from_task",
        json!({"task_id": task, "tag_id": tag.id}),
    )
    .await;
    assert!(
        untagged["tags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["name"] != tag.name.trim())
    );
    // A new task may name old label ids; another user's is not found.
    let added = ok(
        &alice,
        "add_task",
        json!({"title": "Follow up", "category_id": category, "tag_ids": [tag.id]}),
    )
    .await;
    assert_eq!(added["category"]["name"], "Renamed");
    let bobs_tag = data.tags.iter().find(|t| t.user == "auth|bob").unwrap().id;
    err(
        &alice,
        "add_task",
        json!({"title": "x", "tag_ids": [bobs_tag]}),
        "NOT_FOUND",
    )
    .await;
    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();
}
