//! The service layer: every use case of the backend, shared by REST, MCP and the internal
//! endpoints so no rule is written twice.
//!
//! Each call validates its input ([`validation`]), runs its SQL (`store`) and, for a change,
//! writes the event into the outbox in the *same* transaction; only after COMMIT does it hand
//! the rows to the relay or wake it. User-facing calls are scoped to the caller: another
//! user's task, category or tag behaves exactly like a missing one. Writes lock the task row first (labels before tasks),
//! which keeps a task's events in commit order and avoids lock-order deadlocks.
//!
//! Events: create → `task.created`; a change of fields, tags or reminder → `task.updated` with
//! the changed snapshot field names; completion (also through `update_task`) →
//! `task.completed` (plus a copy on `task-recurrence` when the task recurs); delete →
//! `task.deleted` with the last state; deleting a category or tag → one `task.updated` per task
//! that used it. A call that changes nothing writes nothing and emits nothing.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use contracts::TaskSnapshot;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::{
    AuthUser, Category, CategoryPatch, NewCategory, NewTag, NewTask, NextOccurrence, Page,
    ReminderSpec, SearchQuery, Tag, TagPatch, Task, TaskFilter, TaskPatch,
};
use crate::error::{MAX_CATEGORIES_PER_USER, MAX_TAGS_PER_TASK, ServiceError, is_unique_violation};
use crate::handoff::Handoff;
use crate::outbox::{self, TaskChange, Written, enqueue_task_event};
use crate::store::labels::{self, Kind, LabelRow};
use crate::store::tasks::{self as task_store, Occurrence, TaskFields};
use crate::store::users;
use crate::validation;

/// How many suggestions a `TASK_NOT_FOUND` error carries.
const SUGGESTIONS: i64 = 5;

/// A source of "now", injectable for tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The backend's use cases over one PostgreSQL pool. Cheap to clone.
#[derive(Clone)]
pub struct TaskService {
    pool: PgPool,
    /// Woken after a commit that wrote outbox rows it did not hand over, so the relay reads
    /// them at once instead of on its next poll. `notify_one` stores a permit when the relay
    /// is busy, so a wake-up during a relay pass is not lost.
    outbox_waker: Arc<Notify>,
    /// Where committed rows go when the relay may publish them without reading them back.
    handoff: Option<Handoff>,
    clock: Clock,
}

impl std::fmt::Debug for TaskService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskService").finish_non_exhaustive()
    }
}

/// Drops sub-microsecond precision, which PostgreSQL would drop on write anyway, so values
/// compare equal before and after a round trip.
pub(crate) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// The event snapshot of `task`, owned by `user_id`.
pub(crate) fn snapshot(user_id: &str, task: &Task) -> TaskSnapshot {
    TaskSnapshot {
        id: task.id,
        user_id: user_id.to_owned(),
        title: task.title.clone(),
        description: task.description.clone(),
        completed: task.completed,
        completed_at: task.completed_at,
        priority: task.priority,
        category: task.category.as_ref().map(|c| contracts::CategoryRef {
            id: c.id,
            name: c.name.clone(),
            color: c.color.clone(),
        }),
        tags: task
            .tags
            .iter()
            .map(|t| contracts::TagRef {
                id: t.id,
                name: t.name.clone(),
                color: t.color.clone(),
            })
            .collect(),
        due_at: task.due_at,
        remind_at: task.remind_at,
        recurrence_rule: task.recurrence_rule.clone(),
        parent_task_id: task.parent_task_id,
        occurrence_index: task.occurrence_index,
        created_at: task.created_at,
        updated_at: task.updated_at,
    }
}

/// The snapshot fields that differ between `before` and `after` (names as in
/// [`TaskSnapshot`]).
pub(crate) fn changed_fields(before: &Task, after: &Task) -> Vec<&'static str> {
    let ids = |t: &Task| t.tags.iter().map(|g| g.id).collect::<Vec<_>>();
    let checks = [
        ("title", before.title != after.title),
        ("description", before.description != after.description),
        ("completed", before.completed != after.completed),
        ("completed_at", before.completed_at != after.completed_at),
        ("priority", before.priority != after.priority),
        (
            "category",
            before.category.as_ref().map(|c| c.id) != after.category.as_ref().map(|c| c.id),
        ),
        ("tags", ids(before) != ids(after)),
        ("due_at", before.due_at != after.due_at),
        ("remind_at", before.remind_at != after.remind_at),
        (
            "recurrence_rule",
            before.recurrence_rule != after.recurrence_rule,
        ),
    ];
    checks
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
}

/// What the label use cases tell apart between categories and tags; the rest is shared.
trait Label: Sized {
    const KIND: Kind;

    /// The valid, normalised form of a name the caller sent.
    fn valid_name(name: &str) -> Result<String, ServiceError>;

    fn from_row(row: LabelRow) -> Self;
}

impl Label for Category {
    const KIND: Kind = Kind::Category;

    fn valid_name(name: &str) -> Result<String, ServiceError> {
        validation::category_name(name)
    }

    fn from_row(row: LabelRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            color: row.color,
            task_count: row.task_count,
            created_at: row.created_at,
        }
    }
}

impl Label for Tag {
    const KIND: Kind = Kind::Tag;

    fn valid_name(name: &str) -> Result<String, ServiceError> {
        validation::tag_name(name)
    }

    fn from_row(row: LabelRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            color: row.color,
            task_count: row.task_count,
            created_at: row.created_at,
        }
    }
}

impl TaskService {
    /// A service over `pool`, waking `outbox_waker` after each commit that wrote events.
    pub fn new(pool: PgPool, outbox_waker: Arc<Notify>) -> Self {
        Self {
            pool,
            outbox_waker,
            handoff: None,
            clock: Arc::new(Utc::now),
        }
    }

    /// The same service handing committed rows to this process's relay ([`crate::handoff`]).
    #[must_use]
    pub fn with_handoff(mut self, handoff: Handoff) -> Self {
        self.handoff = Some(handoff);
        self
    }

    /// The same service with another clock (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The connection pool (for readiness checks and the relay).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn now(&self) -> DateTime<Utc> {
        micros((self.clock)())
    }

    /// Commits `tx`, then gets the rows it wrote (`written`) to a relay: a task's first waiting
    /// rows straight into this process's relay when it is the active one, the others by waking
    /// it to read them. When another process's relay is active, the commit itself wakes it (a
    /// PostgreSQL notification), instead of leaving the rows to its next poll.
    async fn commit(
        &self,
        mut tx: Transaction<'_, Postgres>,
        written: Vec<Written>,
    ) -> Result<(), ServiceError> {
        if written.is_empty() {
            tx.commit().await?;
            return Ok(());
        }
        let handoff = self.handoff.as_ref().filter(|h| h.relay_leading());
        if handoff.is_none() {
            outbox::notify_relays(&mut tx).await?;
        }
        tx.commit().await?;
        let (ready, mut left_to_read) = outbox::ready_groups(written);
        match handoff {
            Some(handoff) => {
                for rows in ready {
                    left_to_read |= !handoff.offer(rows);
                }
            }
            None => left_to_read = true,
        }
        if left_to_read {
            self.outbox_waker.notify_one();
        }
        Ok(())
    }

    /// `TaskNotFound` for `id`, with the caller's most recent pending tasks as suggestions.
    async fn task_not_found(
        &self,
        conn: &mut PgConnection,
        user: &AuthUser,
        id: Uuid,
    ) -> ServiceError {
        match task_store::recent_pending(conn, &user.id, SUGGESTIONS).await {
            Ok(suggestions) => ServiceError::TaskNotFound { id, suggestions },
            Err(e) => e.into(),
        }
    }

    /// The caller's task `id`, locked for this transaction, or `TaskNotFound`.
    async fn lock_task(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        user: &AuthUser,
        id: Uuid,
    ) -> Result<Task, ServiceError> {
        match task_store::get_for_update(tx, &user.id, id).await? {
            Some(task) => Ok(task),
            None => Err(self.task_not_found(tx, user, id).await),
        }
    }

    /// Checks (and key-share locks) that every id is the caller's label of `kind`.
    async fn require_labels(
        conn: &mut PgConnection,
        kind: Kind,
        user: &AuthUser,
        ids: &[Uuid],
    ) -> Result<(), ServiceError> {
        let owned = labels::owned(conn, kind, &user.id, ids).await?;
        match ids.iter().find(|id| !owned.contains(id)) {
            Some(&id) => Err(ServiceError::NotFound {
                entity: kind.entity(),
                id,
            }),
            None => Ok(()),
        }
    }

    /// Writes `fields` to the locked task `before`, reloads it and enqueues the matching event
    /// (nothing at all when nothing changed).
    async fn write_task(
        &self,
        mut tx: Transaction<'_, Postgres>,
        user: &AuthUser,
        before: Task,
        fields: &TaskFields,
    ) -> Result<Task, ServiceError> {
        if *fields == TaskFields::of(&before) {
            tx.rollback().await?;
            return Ok(before);
        }
        task_store::update(&mut tx, before.id, fields, self.now()).await?;
        let after = self.reload(&mut tx, user, before.id).await?;
        let completed_now = !before.completed && after.completed;
        let (change, fields) = if completed_now {
            (TaskChange::Completed, Vec::new())
        } else {
            (TaskChange::Updated, changed_fields(&before, &after))
        };
        let written =
            enqueue_task_event(&mut tx, change, snapshot(&user.id, &after), &fields).await?;
        self.commit(tx, written).await?;
        Ok(after)
    }

    /// Re-reads a task this transaction has just written.
    async fn reload(
        &self,
        conn: &mut PgConnection,
        user: &AuthUser,
        id: Uuid,
    ) -> Result<Task, ServiceError> {
        task_store::get(conn, &user.id, id)
            .await?
            .ok_or(ServiceError::Database(sqlx::Error::RowNotFound))
    }

    /// Records the caller as seen (e-mail and name from the token, first/last seen).
    pub async fn upsert_user(&self, user: &AuthUser) -> Result<(), ServiceError> {
        let mut conn = self.pool.acquire().await?;
        users::upsert(&mut conn, user).await?;
        Ok(())
    }

    /// Creates a task for the caller (`add_task`); emits `task.created`.
    pub async fn create_task(&self, user: &AuthUser, new: NewTask) -> Result<Task, ServiceError> {
        let now = self.now();
        let title = validation::title(&new.title)?;
        let description = validation::description(new.description.as_deref().unwrap_or(""))?;
        let recurrence_rule = validation::recurrence_rule(new.recurrence_rule.as_deref())?;
        let tag_ids = validation::tag_ids(&new.tag_ids)?;
        let due_at = validation::optional_timestamp("due_at", new.due_at)?.map(micros);
        let remind_at = validation::optional_timestamp("remind_at", new.remind_at)?.map(micros);
        validation::recurrence_needs_due(recurrence_rule.as_deref(), due_at)?;
        if let Some(at) = remind_at {
            validation::remind_at(at, due_at, now)?;
        }

        let mut tx = self.pool.begin().await?;
        users::ensure(&mut tx, user).await?;
        if let Some(id) = new.category_id {
            Self::require_labels(&mut tx, Kind::Category, user, &[id]).await?;
        }
        Self::require_labels(&mut tx, Kind::Tag, user, &tag_ids).await?;
        let fields = TaskFields {
            title,
            description,
            completed_at: None,
            priority: new.priority.unwrap_or_default(),
            category_id: new.category_id,
            due_at,
            remind_at,
            recurrence_rule,
        };
        let id = Uuid::now_v7();
        task_store::insert(&mut tx, id, &user.id, &fields, None, now).await?;
        task_store::add_tags(&mut tx, id, &tag_ids).await?;
        let task = self.reload(&mut tx, user, id).await?;
        let written =
            enqueue_task_event(&mut tx, TaskChange::Created, snapshot(&user.id, &task), &[])
                .await?;
        self.commit(tx, written).await?;
        Ok(task)
    }

    /// The caller's task `id`.
    pub async fn get_task(&self, user: &AuthUser, id: Uuid) -> Result<Task, ServiceError> {
        let mut conn = self.pool.acquire().await?;
        match task_store::get(&mut conn, &user.id, id).await? {
            Some(task) => Ok(task),
            None => Err(self.task_not_found(&mut conn, user, id).await),
        }
    }

    /// One page of the caller's tasks matching `filter`.
    pub async fn list_tasks(
        &self,
        user: &AuthUser,
        filter: &TaskFilter,
    ) -> Result<Page<Task>, ServiceError> {
        validation::optional_timestamp("due_after", filter.due_after)?;
        validation::optional_timestamp("due_before", filter.due_before)?;
        validation::due_range(filter.due_after, filter.due_before)?;
        let filter = TaskFilter {
            limit: validation::limit(filter.limit),
            ..filter.clone()
        };
        let mut conn = self.pool.acquire().await?;
        let (items, total) = task_store::list(&mut conn, &user.id, &filter).await?;
        Ok(Page {
            items,
            total: total.total,
            total_exact: total.exact,
            limit: filter.limit,
            offset: filter.offset,
        })
    }

    /// Changes fields of the caller's task. Setting `completed` to true completes it (as
    /// [`TaskService::complete_task`]); to false reopens it. A change of `due_at` or
    /// `recurrence_rule` must leave a recurring task with a due time.
    pub async fn update_task(
        &self,
        user: &AuthUser,
        id: Uuid,
        patch: TaskPatch,
    ) -> Result<Task, ServiceError> {
        let now = self.now();
        let title = patch.title.as_deref().map(validation::title).transpose()?;
        let description = patch
            .description
            .as_deref()
            .map(validation::description)
            .transpose()?;
        let recurrence_rule = patch
            .recurrence_rule
            .as_ref()
            .map(|rule| validation::recurrence_rule(rule.as_deref()))
            .transpose()?;
        if let Some(Some(due_at)) = patch.due_at {
            validation::timestamp("due_at", due_at)?;
        }
        if let Some(Some(remind_at)) = patch.remind_at {
            validation::timestamp("remind_at", remind_at)?;
        }

        let mut tx = self.pool.begin().await?;
        if let Some(Some(category_id)) = patch.category_id {
            Self::require_labels(&mut tx, Kind::Category, user, &[category_id]).await?;
        }
        let before = self.lock_task(&mut tx, user, id).await?;
        let mut f = TaskFields::of(&before);
        if let Some(title) = title {
            f.title = title;
        }
        if let Some(description) = description {
            f.description = description;
        }
        if let Some(priority) = patch.priority {
            f.priority = priority;
        }
        if let Some(category_id) = patch.category_id {
            f.category_id = category_id;
        }
        if let Some(due_at) = patch.due_at {
            f.due_at = due_at.map(micros);
        }
        if let Some(remind_at) = patch.remind_at {
            f.remind_at = remind_at.map(micros);
        }
        if let Some(rule) = recurrence_rule {
            f.recurrence_rule = rule;
        }
        match patch.completed {
            Some(true) if f.completed_at.is_none() => f.completed_at = Some(now),
            Some(false) => f.completed_at = None,
            _ => {}
        }
        // Only when this patch touches the pair: a row from before the rule (recurring, no due
        // time) stays editable and completable.
        if f.due_at != before.due_at || f.recurrence_rule != before.recurrence_rule {
            validation::recurrence_needs_due(f.recurrence_rule.as_deref(), f.due_at)?;
        }
        // A reminder being set must lie ahead; one that is still pending must not fall after
        // a moved due time. A reminder in the past has fired and is left alone.
        match f.remind_at {
            Some(at) if f.remind_at != before.remind_at => {
                validation::remind_at(at, f.due_at, now)?;
            }
            Some(at) if at > now => validation::reminder_not_after_due(at, f.due_at)?,
            _ => {}
        }
        self.write_task(tx, user, before, &f).await
    }

    /// Deletes the caller's task; emits `task.deleted` with its last state.
    pub async fn delete_task(&self, user: &AuthUser, id: Uuid) -> Result<(), ServiceError> {
        let mut tx = self.pool.begin().await?;
        let before = self.lock_task(&mut tx, user, id).await?;
        task_store::delete(&mut tx, &user.id, id).await?;
        let written = enqueue_task_event(
            &mut tx,
            TaskChange::Deleted,
            snapshot(&user.id, &before),
            &[],
        )
        .await?;
        self.commit(tx, written).await
    }

    /// Marks the caller's task done; emits `task.completed` (and, for a recurring task, the
    /// same event on `task-recurrence`). Completing a completed task returns it unchanged and
    /// emits nothing.
    pub async fn complete_task(&self, user: &AuthUser, id: Uuid) -> Result<Task, ServiceError> {
        let mut tx = self.pool.begin().await?;
        let before = self.lock_task(&mut tx, user, id).await?;
        let mut f = TaskFields::of(&before);
        if f.completed_at.is_none() {
            f.completed_at = Some(self.now());
        }
        self.write_task(tx, user, before, &f).await
    }

    /// Full-text search over the caller's titles and descriptions (prefix match on every
    /// word), narrowed by priority, category and tags as in [`TaskService::list_tasks`], best
    /// match first: title hits above description hits, then newest.
    pub async fn search_tasks(
        &self,
        user: &AuthUser,
        search: &SearchQuery,
    ) -> Result<Page<Task>, ServiceError> {
        let search = SearchQuery {
            query: validation::search_query(&search.query)?,
            limit: validation::limit(search.limit),
            ..search.clone()
        };
        let (items, total) = match task_store::tsquery(&search.query) {
            None => (
                Vec::new(),
                task_store::Matches {
                    total: 0,
                    exact: true,
                },
            ),
            Some(tsquery) => {
                let mut conn = self.pool.acquire().await?;
                task_store::search(&mut conn, &user.id, &tsquery, &search).await?
            }
        };
        Ok(Page {
            items,
            total: total.total,
            total_exact: total.exact,
            limit: search.limit,
            offset: search.offset,
        })
    }

    /// Sets the reminder of the caller's task, either some minutes before its due time (the
    /// task must have one) or at a given time; the result must lie in the future and not after
    /// the due time. Emits `task.updated` (`remind_at`).
    pub async fn set_reminder(
        &self,
        user: &AuthUser,
        id: Uuid,
        spec: ReminderSpec,
    ) -> Result<Task, ServiceError> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let before = self.lock_task(&mut tx, user, id).await?;
        let at = match spec {
            ReminderSpec::BeforeDue { minutes } => {
                validation::remind_before(minutes, before.due_at, now)?
            }
            ReminderSpec::At(at) => {
                let at = micros(validation::timestamp("remind_at", at)?);
                validation::remind_at(at, before.due_at, now)?;
                at
            }
        };
        let mut f = TaskFields::of(&before);
        f.remind_at = Some(at);
        self.write_task(tx, user, before, &f).await
    }

    /// Puts the caller's tag on the caller's task (at most 10 tags per task); emits
    /// `task.updated` (`tags`) unless the tag was there already.
    pub async fn add_tag_to_task(
        &self,
        user: &AuthUser,
        task_id: Uuid,
        tag_id: Uuid,
    ) -> Result<Task, ServiceError> {
        let mut tx = self.pool.begin().await?;
        let before = self
            .lock_task_and_tag(&mut tx, user, task_id, tag_id)
            .await?;
        if before.tags.iter().any(|t| t.id == tag_id) {
            tx.rollback().await?;
            return Ok(before);
        }
        if before.tags.len() >= MAX_TAGS_PER_TASK {
            return Err(ServiceError::LimitExceeded(format!(
                "task {task_id} already has {MAX_TAGS_PER_TASK} tags, the most a task can have"
            )));
        }
        task_store::add_tags(&mut tx, task_id, &[tag_id]).await?;
        self.tags_changed(tx, user, before).await
    }

    /// Takes the caller's tag off the caller's task; emits `task.updated` (`tags`) unless the
    /// tag was not on it.
    pub async fn remove_tag_from_task(
        &self,
        user: &AuthUser,
        task_id: Uuid,
        tag_id: Uuid,
    ) -> Result<Task, ServiceError> {
        let mut tx = self.pool.begin().await?;
        let before = self
            .lock_task_and_tag(&mut tx, user, task_id, tag_id)
            .await?;
        if !task_store::remove_tag(&mut tx, task_id, tag_id).await? {
            tx.rollback().await?;
            return Ok(before);
        }
        self.tags_changed(tx, user, before).await
    }

    /// Checks that `tag_id` is the caller's tag and locks the caller's task `task_id`, in the
    /// lock order labels before tasks.
    async fn lock_task_and_tag(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        user: &AuthUser,
        task_id: Uuid,
        tag_id: Uuid,
    ) -> Result<Task, ServiceError> {
        let tag_owned = labels::owned(tx, Kind::Tag, &user.id, &[tag_id]).await?;
        let before = self.lock_task(tx, user, task_id).await?;
        if tag_owned.is_empty() {
            return Err(ServiceError::NotFound {
                entity: "tag",
                id: tag_id,
            });
        }
        Ok(before)
    }

    /// Finishes a change of the locked task's tags: bumps `updated_at`, emits `task.updated`.
    async fn tags_changed(
        &self,
        mut tx: Transaction<'_, Postgres>,
        user: &AuthUser,
        before: Task,
    ) -> Result<Task, ServiceError> {
        task_store::touch(&mut tx, &[before.id], self.now()).await?;
        let after = self.reload(&mut tx, user, before.id).await?;
        let written = enqueue_task_event(
            &mut tx,
            TaskChange::Updated,
            snapshot(&user.id, &after),
            &["tags"],
        )
        .await?;
        self.commit(tx, written).await?;
        Ok(after)
    }

    /// Creates a label for the caller.
    async fn create_label<L: Label>(
        &self,
        user: &AuthUser,
        name: &str,
        color: Option<&str>,
    ) -> Result<L, ServiceError> {
        let kind = L::KIND;
        let name = L::valid_name(name)?;
        let color = validation::optional_color(color)?;
        let mut tx = self.pool.begin().await?;
        users::ensure(&mut tx, user).await?;
        if kind == Kind::Category {
            // The user row lock serialises concurrent creations, so the limit holds.
            users::lock(&mut tx, &user.id).await?;
            if labels::count(&mut tx, kind, &user.id).await? >= MAX_CATEGORIES_PER_USER {
                return Err(ServiceError::LimitExceeded(format!(
                    "you already have {MAX_CATEGORIES_PER_USER} categories, the most allowed; \
                     delete one first"
                )));
            }
        }
        let id = Uuid::now_v7();
        labels::insert(
            &mut tx,
            kind,
            id,
            &user.id,
            &name,
            color.as_deref(),
            self.now(),
        )
        .await
        .map_err(|e| duplicate_name(kind, &name, e))?;
        let row = labels::get(&mut tx, kind, &user.id, id)
            .await?
            .ok_or(ServiceError::Database(sqlx::Error::RowNotFound))?;
        tx.commit().await?;
        Ok(L::from_row(row))
    }

    /// The caller's labels by name, with task counts.
    async fn list_labels<L: Label>(&self, user: &AuthUser) -> Result<Vec<L>, ServiceError> {
        let mut conn = self.pool.acquire().await?;
        let rows = labels::list(&mut conn, L::KIND, &user.id).await?;
        Ok(rows.into_iter().map(L::from_row).collect())
    }

    /// Renames and/or recolours the caller's label.
    async fn update_label<L: Label>(
        &self,
        user: &AuthUser,
        id: Uuid,
        name: Option<String>,
        color: Option<Option<String>>,
    ) -> Result<L, ServiceError> {
        let kind = L::KIND;
        let name = name.as_deref().map(L::valid_name).transpose()?;
        let color = match color {
            None => None,
            Some(c) => Some(validation::optional_color(c.as_deref())?),
        };
        let mut conn = self.pool.acquire().await?;
        if name.is_some() || color.is_some() {
            let found = labels::update(
                &mut conn,
                kind,
                &user.id,
                id,
                name.as_deref(),
                color.as_ref().map(Option::as_deref),
            )
            .await
            .map_err(|e| duplicate_name(kind, name.as_deref().unwrap_or_default(), e))?;
            if !found {
                return Err(ServiceError::NotFound {
                    entity: kind.entity(),
                    id,
                });
            }
        }
        labels::get(&mut conn, kind, &user.id, id)
            .await?
            .map(L::from_row)
            .ok_or(ServiceError::NotFound {
                entity: kind.entity(),
                id,
            })
    }

    /// Deletes the caller's label of `kind`; every task that used it loses it and gets a
    /// `task.updated` event.
    async fn delete_label(
        &self,
        kind: Kind,
        user: &AuthUser,
        id: Uuid,
    ) -> Result<(), ServiceError> {
        let mut tx = self.pool.begin().await?;
        if !labels::lock(&mut tx, kind, &user.id, id).await? {
            return Err(ServiceError::NotFound {
                entity: kind.entity(),
                id,
            });
        }
        let affected = labels::detach(&mut tx, kind, id, self.now()).await?;
        labels::delete(&mut tx, kind, &user.id, id).await?;
        let field = match kind {
            Kind::Category => "category",
            Kind::Tag => "tags",
        };
        let mut written = Vec::new();
        for task_id in &affected {
            let task = self.reload(&mut tx, user, *task_id).await?;
            written.extend(
                enqueue_task_event(
                    &mut tx,
                    TaskChange::Updated,
                    snapshot(&user.id, &task),
                    &[field],
                )
                .await?,
            );
        }
        self.commit(tx, written).await
    }

    /// Creates a category (name unique per user, at most 50 per user).
    pub async fn create_category(
        &self,
        user: &AuthUser,
        new: NewCategory,
    ) -> Result<Category, ServiceError> {
        self.create_label(user, &new.name, new.color.as_deref())
            .await
    }

    /// The caller's categories by name, with task counts.
    pub async fn list_categories(&self, user: &AuthUser) -> Result<Vec<Category>, ServiceError> {
        self.list_labels(user).await
    }

    /// Renames and/or recolours a category.
    pub async fn update_category(
        &self,
        user: &AuthUser,
        id: Uuid,
        patch: CategoryPatch,
    ) -> Result<Category, ServiceError> {
        self.update_label(user, id, patch.name, patch.color).await
    }

    /// Deletes a category; its tasks stay, without a category.
    pub async fn delete_category(&self, user: &AuthUser, id: Uuid) -> Result<(), ServiceError> {
        self.delete_label(Kind::Category, user, id).await
    }

    /// Creates a tag (name unique per user).
    pub async fn create_tag(&self, user: &AuthUser, new: NewTag) -> Result<Tag, ServiceError> {
        self.create_label(user, &new.name, new.color.as_deref())
            .await
    }

    /// The caller's tags by name, with task counts.
    pub async fn list_tags(&self, user: &AuthUser) -> Result<Vec<Tag>, ServiceError> {
        self.list_labels(user).await
    }

    /// Renames and/or recolours a tag.
    pub async fn update_tag(
        &self,
        user: &AuthUser,
        id: Uuid,
        patch: TagPatch,
    ) -> Result<Tag, ServiceError> {
        self.update_label(user, id, patch.name, patch.color).await
    }

    /// Deletes a tag and removes it from every task.
    pub async fn delete_tag(&self, user: &AuthUser, id: Uuid) -> Result<(), ServiceError> {
        self.delete_label(Kind::Tag, user, id).await
    }

    /// Internal (trusted callers only, not user-scoped): the snapshot of task `id` with its
    /// owner's e-mail and display name, or `None` when the task does not exist.
    pub async fn task_snapshot(
        &self,
        id: Uuid,
    ) -> Result<Option<(TaskSnapshot, Option<String>, Option<String>)>, ServiceError> {
        let mut conn = self.pool.acquire().await?;
        let Some(owned) = task_store::get_any(&mut conn, id, false).await? else {
            return Ok(None);
        };
        let (email, name) = task_store::owner_contact(&mut conn, &owned.user_id).await?;
        Ok(Some((snapshot(&owned.user_id, &owned.task), email, name)))
    }

    /// Internal (trusted callers only): up to `limit` (at most [`MAX_LIMIT`](crate::domain::MAX_LIMIT)) snapshots of the
    /// pending tasks whose reminder is in `from..=to`, in `(remind_at, id)` order after `after`
    /// — what notification's sweep compares with the reminders it has applied.
    pub async fn pending_reminders(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<TaskSnapshot>, ServiceError> {
        validation::timestamp("from", from)?;
        validation::timestamp("to", to)?;
        // The cursor comes from the caller too: before PostgreSQL's range it is a 500 there.
        if let Some((after_at, _)) = after {
            validation::timestamp("after_at", after_at)?;
        }
        if from > to {
            return Err(ServiceError::validation(
                "to",
                format!("to ({to}) must not be before from ({from})"),
            ));
        }
        let mut conn = self.pool.acquire().await?;
        let rows =
            task_store::pending_reminders(&mut conn, from, to, after, validation::limit(limit))
                .await?;
        Ok(rows
            .iter()
            .map(|owned| snapshot(&owned.user_id, &owned.task))
            .collect())
    }

    /// Internal (trusted callers only): creates the next occurrence of the completed recurring
    /// task `previous_id`. Returns the task and whether this call created it.
    ///
    /// At most one task is created per `idempotency_key` and per occurrence of a series (its
    /// parent and index, enforced by a unique index): a repeated key, or the same completion
    /// delivered again under another key, answers the task created first with `false`. The
    /// new task copies title, description, priority, category, tags and rule; its parent is
    /// the series' first task and its index the previous one's plus one. Emits `task.created`.
    ///
    /// Fails with `TaskNotFound` when the previous task is gone, with a validation error when
    /// it no longer recurs, and with `NotCompleted` when it is not completed (reopened since
    /// the completion event). The state is read, not locked: a reopening that commits while
    /// this call runs is treated as if it came after it.
    pub async fn create_next_occurrence(
        &self,
        previous_id: Uuid,
        next: NextOccurrence,
    ) -> Result<(Task, bool), ServiceError> {
        let key = validation::idempotency_key(&next.idempotency_key)?;
        let due_at = micros(validation::timestamp("due_at", next.due_at)?);
        let remind_at = validation::optional_timestamp("remind_at", next.remind_at)?.map(micros);
        if let Some(at) = remind_at {
            validation::reminder_not_after_due(at, Some(due_at))?;
        }

        let mut tx = self.pool.begin().await?;
        if let Some(existing) = task_store::get_by_occurrence_key(&mut tx, &key).await? {
            tx.rollback().await?;
            return Ok((existing, false));
        }
        let Some(previous) = task_store::get_any(&mut tx, previous_id, false).await? else {
            return Err(ServiceError::TaskNotFound {
                id: previous_id,
                suggestions: Vec::new(),
            });
        };
        let (user_id, prev) = (previous.user_id, previous.task);
        let parent_task_id = prev.parent_task_id.unwrap_or(prev.id);
        let index = prev.occurrence_index.checked_add(1).ok_or_else(|| {
            ServiceError::validation("occurrence_index", "the series has too many occurrences")
        })?;
        // Before the state checks: a replay of a completion whose occurrence exists is answered
        // as done even if the task was reopened or stopped recurring since.
        if let Some(existing) = task_store::get_occurrence(&mut tx, parent_task_id, index).await? {
            tx.rollback().await?;
            return Ok((existing, false));
        }
        if prev.recurrence_rule.is_none() {
            return Err(ServiceError::validation(
                "recurrence_rule",
                format!("task {previous_id} does not recur (its rule was removed)"),
            ));
        }
        if !prev.completed {
            return Err(ServiceError::NotCompleted { id: previous_id });
        }
        let fields = TaskFields {
            title: prev.title.clone(),
            description: prev.description.clone(),
            completed_at: None,
            priority: prev.priority,
            category_id: prev.category.as_ref().map(|c| c.id),
            due_at: Some(due_at),
            remind_at,
            recurrence_rule: prev.recurrence_rule.clone(),
        };
        let occurrence = Occurrence {
            parent_task_id,
            index,
            key: &key,
        };
        let id = Uuid::now_v7();
        let created =
            task_store::insert(&mut tx, id, &user_id, &fields, Some(occurrence), self.now())
                .await?;
        if !created {
            // A concurrent call with this key, or for this occurrence, committed first; this
            // statement sees its row.
            let existing = match task_store::get_by_occurrence_key(&mut tx, &key).await? {
                Some(task) => Some(task),
                None => task_store::get_occurrence(&mut tx, parent_task_id, index).await?,
            }
            .ok_or(ServiceError::Database(sqlx::Error::RowNotFound))?;
            tx.rollback().await?;
            return Ok((existing, false));
        }
        task_store::copy_tags(&mut tx, prev.id, id).await?;
        let owner = AuthUser::new(user_id);
        let task = self.reload(&mut tx, &owner, id).await?;
        let written = enqueue_task_event(
            &mut tx,
            TaskChange::Created,
            snapshot(&owner.id, &task),
            &[],
        )
        .await?;
        self.commit(tx, written).await?;
        Ok((task, true))
    }
}

/// Maps a unique violation of the label name index to `Conflict`.
fn duplicate_name(kind: Kind, name: &str, err: sqlx::Error) -> ServiceError {
    if is_unique_violation(&err, kind.unique_name_constraint()) {
        ServiceError::Conflict(format!(
            "a {} named \"{name}\" already exists",
            kind.entity()
        ))
    } else {
        err.into()
    }
}

mod legacy;
#[cfg(test)]
mod tests;
