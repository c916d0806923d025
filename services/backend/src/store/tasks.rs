//! Task rows, their tags, list/search queries and generated occurrences.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{decode_error, wrote_one};
use crate::domain::{
    COUNT_AHEAD, CategoryRef, Priority, SearchQuery, SortBy, SortOrder, StatusFilter, TagRef, Task,
    TaskFilter, TaskSummary,
};

/// The select list and joins every task read shares: the task, its category and its tags
/// (as one JSON array, so a page of tasks is one query).
macro_rules! task_select {
    () => {
        "SELECT t.id, t.user_id, t.title, t.description, t.completed, t.completed_at, \
                t.priority, t.category_id, c.name AS category_name, c.color AS category_color, \
                t.due_at, t.remind_at, t.recurrence_rule, t.parent_task_id, t.occurrence_index, \
                t.created_at, t.updated_at, \
                COALESCE((SELECT jsonb_agg(jsonb_build_object('id', g.id, 'name', g.name, \
                                                              'color', g.color) \
                                           ORDER BY lower(g.name), g.id) \
                          FROM task_tags tt JOIN tags g ON g.id = tt.tag_id \
                          WHERE tt.task_id = t.id), '[]'::jsonb) AS tags \
         FROM tasks t LEFT JOIN categories c ON c.id = t.category_id "
    };
}

/// The insert of one task, without a conflict clause.
macro_rules! task_insert {
    () => {
        "INSERT INTO tasks (id, user_id, title, description, completed, completed_at, priority, \
                            category_id, due_at, remind_at, recurrence_rule, parent_task_id, \
                            occurrence_index, occurrence_key, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    };
}

/// A task row with its owner.
#[derive(sqlx::FromRow)]
struct TaskRow {
    id: Uuid,
    user_id: String,
    title: String,
    description: String,
    completed: bool,
    completed_at: Option<DateTime<Utc>>,
    priority: String,
    category_id: Option<Uuid>,
    category_name: Option<String>,
    category_color: Option<String>,
    due_at: Option<DateTime<Utc>>,
    remind_at: Option<DateTime<Utc>>,
    recurrence_rule: Option<String>,
    parent_task_id: Option<Uuid>,
    occurrence_index: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    tags: Json<Vec<TagRef>>,
}

/// A stored task and its owner (the API [`Task`] does not show the owner).
#[derive(Clone, Debug)]
pub(crate) struct OwnedTask {
    pub(crate) user_id: String,
    pub(crate) task: Task,
}

impl TryFrom<TaskRow> for OwnedTask {
    type Error = sqlx::Error;

    fn try_from(row: TaskRow) -> Result<Self, sqlx::Error> {
        let priority: Priority = row.priority.parse().map_err(decode_error)?;
        let category = match (row.category_id, row.category_name) {
            (Some(id), Some(name)) => Some(CategoryRef {
                id,
                name,
                color: row.category_color,
            }),
            _ => None,
        };
        Ok(Self {
            user_id: row.user_id,
            task: Task {
                id: row.id,
                title: row.title,
                description: row.description,
                completed: row.completed,
                completed_at: row.completed_at,
                priority,
                category,
                tags: row.tags.0,
                due_at: row.due_at,
                remind_at: row.remind_at,
                recurrence_rule: row.recurrence_rule,
                parent_task_id: row.parent_task_id,
                occurrence_index: row.occurrence_index,
                created_at: row.created_at,
                updated_at: row.updated_at,
            },
        })
    }
}

fn into_task(row: TaskRow) -> Result<Task, sqlx::Error> {
    OwnedTask::try_from(row).map(|o| o.task)
}

fn into_tasks(rows: Vec<TaskRow>) -> Result<Vec<Task>, sqlx::Error> {
    rows.into_iter().map(into_task).collect()
}

/// The user-editable columns of a task, as written by insert and update.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TaskFields {
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) completed_at: Option<DateTime<Utc>>,
    pub(crate) priority: Priority,
    pub(crate) category_id: Option<Uuid>,
    pub(crate) due_at: Option<DateTime<Utc>>,
    pub(crate) remind_at: Option<DateTime<Utc>>,
    pub(crate) recurrence_rule: Option<String>,
}

impl TaskFields {
    /// The current values of `task`.
    pub(crate) fn of(task: &Task) -> Self {
        Self {
            title: task.title.clone(),
            description: task.description.clone(),
            completed_at: task.completed_at,
            priority: task.priority,
            category_id: task.category.as_ref().map(|c| c.id),
            due_at: task.due_at,
            remind_at: task.remind_at,
            recurrence_rule: task.recurrence_rule.clone(),
        }
    }
}

/// Where a generated occurrence comes from.
pub(crate) struct Occurrence<'a> {
    pub(crate) parent_task_id: Uuid,
    pub(crate) index: i32,
    pub(crate) key: &'a str,
}

/// Inserts a task; with an occurrence, returns `false` (and inserts nothing) when its key was
/// used already or its series already has a task at its index.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    user_id: &str,
    fields: &TaskFields,
    occurrence: Option<Occurrence<'_>>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    insert_at(conn, id, user_id, fields, occurrence, (now, now)).await
}

/// Inserts a task carried over from the original system, keeping its creation and last-change
/// times (`backend import-legacy`).
pub(crate) async fn insert_imported(
    conn: &mut PgConnection,
    id: Uuid,
    user_id: &str,
    fields: &TaskFields,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    insert_at(conn, id, user_id, fields, None, (created_at, updated_at)).await?;
    Ok(())
}

/// [`insert`] with the task's `(created_at, updated_at)`.
async fn insert_at(
    conn: &mut PgConnection,
    id: Uuid,
    user_id: &str,
    fields: &TaskFields,
    occurrence: Option<Occurrence<'_>>,
    (created_at, updated_at): (DateTime<Utc>, DateTime<Utc>),
) -> Result<bool, sqlx::Error> {
    // An occurrence can collide on two unique indexes (`tasks_occurrence_key_key` and
    // `tasks_parent_occurrence_index_key`) and ON CONFLICT takes one target at most, so it
    // names none: either collision means "already created". A user's task collides on none.
    let sql = if occurrence.is_some() {
        concat!(task_insert!(), " ON CONFLICT DO NOTHING")
    } else {
        task_insert!()
    };
    let query = sqlx::query(sql).bind(id).bind(user_id);
    let inserted = bind_fields(query, fields)
        .bind(occurrence.as_ref().map(|o| o.parent_task_id))
        .bind(occurrence.as_ref().map_or(0, |o| o.index))
        .bind(occurrence.as_ref().map(|o| o.key))
        .bind(created_at)
        .bind(updated_at)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(inserted == 1)
}

/// Binds the editable columns in the order insert and update list them: title, description,
/// completed, completed_at, priority, category_id, due_at, remind_at, recurrence_rule.
fn bind_fields<'q>(
    query: Query<'q, Postgres, PgArguments>,
    fields: &'q TaskFields,
) -> Query<'q, Postgres, PgArguments> {
    query
        .bind(&fields.title)
        .bind(&fields.description)
        .bind(fields.completed_at.is_some())
        .bind(fields.completed_at)
        .bind(fields.priority.as_str())
        .bind(fields.category_id)
        .bind(fields.due_at)
        .bind(fields.remind_at)
        .bind(&fields.recurrence_rule)
}

/// Writes every editable column of task `id` and bumps `updated_at`.
pub(crate) async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    fields: &TaskFields,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let query = sqlx::query(
        "UPDATE tasks SET title = $2, description = $3, completed = $4, completed_at = $5, \
                          priority = $6, category_id = $7, due_at = $8, remind_at = $9, \
                          recurrence_rule = $10, updated_at = $11 \
         WHERE id = $1",
    )
    .bind(id);
    bind_fields(query, fields).bind(now).execute(conn).await?;
    Ok(())
}

/// Bumps `updated_at` of the given tasks (after a change to their tags or category).
pub(crate) async fn touch(
    conn: &mut PgConnection,
    ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE tasks SET updated_at = $2 WHERE id = ANY($1)")
        .bind(ids)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// The caller's task `id`.
pub(crate) async fn get(
    conn: &mut PgConnection,
    user_id: &str,
    id: Uuid,
) -> Result<Option<Task>, sqlx::Error> {
    get_owned(conn, user_id, id, false).await
}

/// The caller's task `id`, locked for update until the transaction ends. Every write to a task
/// takes this lock first, which also orders the task's outbox rows.
pub(crate) async fn get_for_update(
    conn: &mut PgConnection,
    user_id: &str,
    id: Uuid,
) -> Result<Option<Task>, sqlx::Error> {
    get_owned(conn, user_id, id, true).await
}

/// The caller's task `id`; `lock` takes the row lock.
async fn get_owned(
    conn: &mut PgConnection,
    user_id: &str,
    id: Uuid,
    lock: bool,
) -> Result<Option<Task>, sqlx::Error> {
    let query = if lock {
        sqlx::query_as(concat!(
            task_select!(),
            "WHERE t.id = $1 AND t.user_id = $2 FOR UPDATE OF t"
        ))
    } else {
        sqlx::query_as(concat!(
            task_select!(),
            "WHERE t.id = $1 AND t.user_id = $2"
        ))
    };
    let row: Option<TaskRow> = query.bind(id).bind(user_id).fetch_optional(conn).await?;
    row.map(into_task).transpose()
}

/// Task `id` of any user, with its owner (internal calls only); `lock` takes the row lock.
pub(crate) async fn get_any(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<OwnedTask>, sqlx::Error> {
    let query = if lock {
        sqlx::query_as(concat!(task_select!(), "WHERE t.id = $1 FOR UPDATE OF t"))
    } else {
        sqlx::query_as(concat!(task_select!(), "WHERE t.id = $1"))
    };
    let row: Option<TaskRow> = query.bind(id).fetch_optional(conn).await?;
    row.map(OwnedTask::try_from).transpose()
}

/// Up to `limit` pending (not completed) tasks of any user whose reminder is in `from..=to`,
/// in `(remind_at, id)` order, starting after `after` (the last pair of the previous page).
pub(crate) async fn pending_reminders(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u32,
) -> Result<Vec<OwnedTask>, sqlx::Error> {
    // A cursor before the window is the window's start: `(from, nil)` sorts before every row.
    let (after_at, after_id) = after.unwrap_or((from, Uuid::nil()));
    let rows: Vec<TaskRow> = sqlx::query_as(concat!(
        task_select!(),
        "WHERE t.remind_at IS NOT NULL AND NOT t.completed \
           AND t.remind_at >= $1 AND t.remind_at <= $2 \
           AND (t.remind_at, t.id) > ($3, $4) \
         ORDER BY t.remind_at, t.id LIMIT $5"
    ))
    .bind(from)
    .bind(to)
    .bind(after_at)
    .bind(after_id)
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(OwnedTask::try_from).collect()
}

/// The task generated for occurrence key `key`, if any.
pub(crate) async fn get_by_occurrence_key(
    conn: &mut PgConnection,
    key: &str,
) -> Result<Option<Task>, sqlx::Error> {
    let row: Option<TaskRow> =
        sqlx::query_as(concat!(task_select!(), "WHERE t.occurrence_key = $1"))
            .bind(key)
            .fetch_optional(conn)
            .await?;
    row.map(into_task).transpose()
}

/// The generated occurrence `index` of the series whose first task is `parent_task_id`, if any.
pub(crate) async fn get_occurrence(
    conn: &mut PgConnection,
    parent_task_id: Uuid,
    index: i32,
) -> Result<Option<Task>, sqlx::Error> {
    let row: Option<TaskRow> = sqlx::query_as(concat!(
        task_select!(),
        "WHERE t.parent_task_id = $1 AND t.occurrence_index = $2"
    ))
    .bind(parent_task_id)
    .bind(index)
    .fetch_optional(conn)
    .await?;
    row.map(into_task).transpose()
}

/// Deletes the caller's task `id`; `false` when there was none.
pub(crate) async fn delete(
    conn: &mut PgConnection,
    user_id: &str,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    wrote_one(
        sqlx::query("DELETE FROM tasks WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id),
        conn,
    )
    .await
}

/// Pushes the `AND …` conditions that list and search share: priority, category and tags
/// (any of them).
fn push_label_filter(
    q: &mut QueryBuilder<Postgres>,
    priority: Option<Priority>,
    category_id: Option<Uuid>,
    tag_ids: &[Uuid],
) {
    if let Some(p) = priority {
        q.push(" AND t.priority = ").push_bind(p.as_str());
    }
    if let Some(c) = category_id {
        q.push(" AND t.category_id = ").push_bind(c);
    }
    if !tag_ids.is_empty() {
        // The tagged task ids first, then those tasks by primary key: the work grows with the
        // tags' task counts, not with the user's whole list (a semi-join from the user's
        // tasks scans them until enough carry the tag, all of them for a rare tag's count).
        q.push(" AND t.id = ANY(ARRAY(SELECT ft.task_id FROM task_tags ft WHERE ft.tag_id = ANY(")
            .push_bind(tag_ids)
            .push(")))");
    }
}

/// Pushes the `WHERE` clause of a list query.
fn push_filter(q: &mut QueryBuilder<Postgres>, user_id: &str, f: &TaskFilter) {
    q.push("WHERE t.user_id = ").push_bind(user_id);
    match f.status {
        StatusFilter::All => {}
        StatusFilter::Pending => {
            q.push(" AND NOT t.completed");
        }
        StatusFilter::Completed => {
            q.push(" AND t.completed");
        }
    }
    push_label_filter(q, f.priority, f.category_id, &f.tag_ids);
    if let Some(before) = f.due_before {
        q.push(" AND t.due_at < ").push_bind(before);
    }
    if let Some(after) = f.due_after {
        q.push(" AND t.due_at > ").push_bind(after);
    }
}

/// How many tasks match a list or search: exact, or a lower bound when the count stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Matches {
    pub(crate) total: i64,
    pub(crate) exact: bool,
}

/// The start of a count of matches: the caller adds its `FROM` and `WHERE`, and
/// [`count_matches`] closes it.
const COUNT_OPEN: &str = "SELECT count(*) FROM (SELECT 1 ";

/// Finishes and runs `count` (opened with [`COUNT_OPEN`]), which stops [`COUNT_AHEAD`]
/// matches past the end of the page: beyond that it would cost as much as reading every
/// match, while the page itself reads only up to its own end.
async fn count_matches(
    conn: &mut PgConnection,
    mut count: QueryBuilder<Postgres>,
    limit: u32,
    offset: u32,
) -> Result<Matches, sqlx::Error> {
    let bound = i64::from(offset) + i64::from(limit) + i64::from(COUNT_AHEAD);
    count
        .push(" LIMIT ")
        .push_bind(bound + 1)
        .push(") AS matches");
    let counted: i64 = count.build_query_scalar().fetch_one(&mut *conn).await?;
    Ok(Matches {
        total: counted.min(bound),
        exact: counted <= bound,
    })
}

/// One page of the caller's tasks matching `filter` (its `limit` already clamped), and how
/// many match.
pub(crate) async fn list(
    conn: &mut PgConnection,
    user_id: &str,
    filter: &TaskFilter,
) -> Result<(Vec<Task>, Matches), sqlx::Error> {
    let mut count = QueryBuilder::new(COUNT_OPEN);
    count.push("FROM tasks t ");
    push_filter(&mut count, user_id, filter);
    let total = count_matches(conn, count, filter.limit, filter.offset).await?;
    if total.total == 0 {
        return Ok((Vec::new(), total));
    }

    let mut q = QueryBuilder::new(task_select!());
    push_filter(&mut q, user_id, filter);
    let order = filter.order.unwrap_or_else(|| filter.sort.default_order());
    let dir = match order {
        SortOrder::Asc => "ASC",
        SortOrder::Desc => "DESC",
    };
    // Every sort ends in unique keys, so pages neither repeat nor skip rows.
    q.push(" ORDER BY ");
    match filter.sort {
        SortBy::Created => q.push(format_args!("t.created_at {dir}, t.id {dir}")),
        SortBy::Due => q.push(format_args!(
            "t.due_at {dir} NULLS LAST, t.created_at DESC, t.id DESC"
        )),
        SortBy::Priority => q.push(format_args!(
            "t.priority_rank {dir}, t.created_at DESC, t.id DESC"
        )),
    };
    let tasks = fetch_page(conn, q, filter.limit, filter.offset).await?;
    Ok((tasks, total))
}

/// Runs the ordered task query `q` for one page.
async fn fetch_page(
    conn: &mut PgConnection,
    mut q: QueryBuilder<Postgres>,
    limit: u32,
    offset: u32,
) -> Result<Vec<Task>, sqlx::Error> {
    q.push(" LIMIT ")
        .push_bind(i64::from(limit))
        .push(" OFFSET ")
        .push_bind(i64::from(offset));
    let rows: Vec<TaskRow> = q.build_query_as().fetch_all(conn).await?;
    into_tasks(rows)
}

/// Turns free text into a prefix-matching tsquery (`word:* & other:*`), or `None` when it
/// holds no letters or digits. Only letters and digits reach the tsquery, so user input cannot
/// produce a tsquery syntax error.
pub(crate) fn tsquery(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(32)
        .map(|w| format!("{}:*", w.to_lowercase()))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" & "))
}

/// Pushes the `WHERE` clause of a search query; the tsquery must be in scope as `q`.
fn push_search_filter(q: &mut QueryBuilder<Postgres>, user_id: &str, s: &SearchQuery) {
    q.push("WHERE t.user_id = ")
        .push_bind(user_id)
        .push(" AND t.search_vector @@ q");
    push_label_filter(q, s.priority, s.category_id, &s.tag_ids);
}

/// The caller's tasks matching `tsquery` (from [`tsquery`]) and the filters of `search` (its
/// `limit` already clamped), best first: title matches rank above description matches, then
/// newer above older. Also how many match.
pub(crate) async fn search(
    conn: &mut PgConnection,
    user_id: &str,
    tsquery: &str,
    search: &SearchQuery,
) -> Result<(Vec<Task>, Matches), sqlx::Error> {
    let mut count = QueryBuilder::new(COUNT_OPEN);
    count
        .push("FROM tasks t, to_tsquery('simple', ")
        .push_bind(tsquery)
        .push(") AS q ");
    push_search_filter(&mut count, user_id, search);
    let total = count_matches(conn, count, search.limit, search.offset).await?;
    if total.total == 0 {
        return Ok((Vec::new(), total));
    }
    let mut q = QueryBuilder::new(concat!(task_select!(), ", to_tsquery('simple', "));
    q.push_bind(tsquery).push(") AS q ");
    push_search_filter(&mut q, user_id, search);
    q.push(" ORDER BY ts_rank(t.search_vector, q) DESC, t.created_at DESC, t.id DESC");
    let tasks = fetch_page(conn, q, search.limit, search.offset).await?;
    Ok((tasks, total))
}

/// Up to `limit` of the caller's most recent pending tasks (suggestions for a wrong id).
pub(crate) async fn recent_pending(
    conn: &mut PgConnection,
    user_id: &str,
    limit: i64,
) -> Result<Vec<TaskSummary>, sqlx::Error> {
    let rows: Vec<(Uuid, String, Option<DateTime<Utc>>, String)> = sqlx::query_as(
        "SELECT id, title, due_at, priority FROM tasks \
         WHERE user_id = $1 AND NOT completed ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(id, title, due_at, priority)| {
            Ok(TaskSummary {
                id,
                title,
                due_at,
                priority: priority.parse().map_err(decode_error)?,
            })
        })
        .collect()
}

/// Attaches tags to a task (already attached ones are skipped).
pub(crate) async fn add_tags(
    conn: &mut PgConnection,
    task_id: Uuid,
    tag_ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    if tag_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO task_tags (task_id, tag_id) SELECT $1, unnest($2::uuid[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(task_id)
    .bind(tag_ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// Detaches a tag from a task; `false` when it was not attached.
pub(crate) async fn remove_tag(
    conn: &mut PgConnection,
    task_id: Uuid,
    tag_id: Uuid,
) -> Result<bool, sqlx::Error> {
    wrote_one(
        sqlx::query("DELETE FROM task_tags WHERE task_id = $1 AND tag_id = $2")
            .bind(task_id)
            .bind(tag_id),
        conn,
    )
    .await
}

/// Gives task `to` the tags of task `from`.
pub(crate) async fn copy_tags(
    conn: &mut PgConnection,
    from: Uuid,
    to: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO task_tags (task_id, tag_id) SELECT $2, tag_id FROM task_tags WHERE task_id = $1",
    )
    .bind(from)
    .bind(to)
    .execute(conn)
    .await?;
    Ok(())
}

/// Owner e-mail and display name of the user `user_id`.
pub(crate) async fn owner_contact(
    conn: &mut PgConnection,
    user_id: &str,
) -> Result<(Option<String>, Option<String>), sqlx::Error> {
    let row: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT email, display_name FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::tsquery;

    #[test]
    fn tsquery_keeps_only_words() {
        assert_eq!(tsquery("Buy milk").as_deref(), Some("buy:* & milk:*"));
        assert_eq!(
            tsquery("e-mail: 'boss' & (x | !y)").as_deref(),
            Some("e:* & mail:* & boss:* & x:* & y:*")
        );
        assert_eq!(
            tsquery("Überweisung 2026").as_deref(),
            Some("überweisung:* & 2026:*")
        );
        assert_eq!(tsquery("!!! ---"), None);
    }
}
