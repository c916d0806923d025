//! Writing what `convert` made of the original rows into our tables: one transaction per batch,
//! map entries and outbox events in the same transaction as the rows they describe.
//!
//! Per original row the map entry decides: no entry → insert (new id) and record it; an entry
//! with the same digest → nothing to do; another digest → bring our row in line and record the
//! new digest. A run that stops half-way has committed whole batches only, each with its map
//! entries, so the next run skips what is done and finishes the rest.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::TimeDelta;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::ImportError;
use super::convert::{self, LabelRef, Rules, TaskPlan, part, time_part};
use super::report::{Counts, Entity, Finding, Outcome, Report};
use super::source::{Schema, SourceLabel, SourceTask, SourceUser};
use crate::domain::{LegacyKind, Task};
use crate::error::MAX_CATEGORIES_PER_USER;
use crate::outbox::{TaskChange, enqueue_task_event};
use crate::service::{changed_fields, snapshot};
use crate::store::labels::{self, Kind};
use crate::store::legacy::{self, MapEntry, UserWrite};
use crate::store::tasks::{self as task_store, TaskFields};
use crate::validation;

type Tx = Transaction<'static, Postgres>;

/// A label of the original as this run resolved it.
#[derive(Clone, Debug)]
struct LabelState {
    /// Its owner in the original.
    user_id: Option<String>,
    /// Ours, when it is carried and still exists.
    target: Option<Uuid>,
}

/// One run's writer: the target, the rules, what was resolved so far and the report.
pub(super) struct Importer<'a> {
    target: &'a PgPool,
    rules: Rules,
    batch_size: usize,
    /// Users whose ids are usable here; rows of other owners are skipped.
    users: HashSet<String>,
    labels: HashMap<(LegacyKind, i64), LabelState>,
    /// Original ids read this run, per kind: map entries of ids not among them are gone there.
    seen: HashMap<LegacyKind, HashSet<i64>>,
    /// Task map entries of the current batch, written in one statement before it commits.
    task_entries: Vec<MapEntry>,
    report: Report,
}

impl<'a> Importer<'a> {
    pub(super) fn new(target: &'a PgPool, rules: Rules, batch_size: u32) -> Self {
        Self {
            target,
            rules,
            // Lossless: `usize` is at least 32 bits on every target we build for.
            batch_size: batch_size.max(1) as usize,
            users: HashSet::new(),
            labels: HashMap::new(),
            seen: HashMap::new(),
            task_entries: Vec::new(),
            report: Report::default(),
        }
    }

    pub(super) fn finish(self) -> Report {
        self.report
    }

    async fn begin(&self) -> Result<Tx, ImportError> {
        self.target.begin().await.map_err(ImportError::Target)
    }

    fn counts(&mut self, kind: LegacyKind) -> &mut Counts {
        match kind {
            LegacyKind::Task => &mut self.report.tasks,
            LegacyKind::Category => &mut self.report.categories,
            LegacyKind::Tag => &mut self.report.tags,
        }
    }

    /// The row's owner, if it is a user this run carries.
    fn owner<'r>(&self, user_id: Option<&'r str>) -> Result<&'r str, Finding> {
        let id = convert::user_id(user_id)?;
        if self.users.contains(id) {
            Ok(id)
        } else {
            Err(Finding::new(
                "user_id",
                Some(id.to_owned()),
                Outcome::Skipped,
                "the owner could not be carried (see the user's line)",
            ))
        }
    }

    /// Users: every owner of a row, with the e-mail and name Better Auth kept.
    pub(super) async fn users(
        &mut self,
        rows: Vec<SourceUser>,
        schema: Schema,
    ) -> Result<(), ImportError> {
        if !schema.users_table {
            self.report.add(
                Entity::User,
                None,
                None,
                [Finding::new(
                    "email",
                    None,
                    Outcome::NotCarried,
                    "the original has no Better Auth \"user\" table with id, email and name; \
                     reminder mails reach each user once they have signed in here",
                )],
            );
        }
        for chunk in rows.chunks(self.batch_size) {
            let mut tx = self.begin().await?;
            for row in chunk {
                self.report.users.read += 1;
                let id = match convert::user_id(Some(&row.user_id)) {
                    Ok(id) => id,
                    Err(finding) => {
                        self.report.users.skipped += 1;
                        self.report
                            .add(Entity::User, None, Some(&row.user_id), [finding]);
                        continue;
                    }
                };
                let mut findings = Vec::new();
                let email = contact("email", row.email.as_deref(), &mut findings);
                let name = contact("name", row.name.as_deref(), &mut findings);
                if schema.users_table && email.is_none() && findings.is_empty() {
                    findings.push(Finding::new(
                        "email",
                        None,
                        Outcome::NotCarried,
                        "none in the original; reminder mails reach the user once they have \
                         signed in here",
                    ));
                }
                let written = legacy::import_user(&mut tx, id, email, name)
                    .await
                    .map_err(ImportError::Target)?;
                match written {
                    UserWrite::Inserted => self.report.users.new += 1,
                    UserWrite::Updated => self.report.users.updated += 1,
                    UserWrite::Unchanged => self.report.users.unchanged += 1,
                }
                self.report.add(Entity::User, None, Some(id), findings);
                self.users.insert(id.to_owned());
            }
            tx.commit().await.map_err(ImportError::Target)?;
        }
        Ok(())
    }

    /// One batch of categories or tags.
    pub(super) async fn labels(
        &mut self,
        kind: LegacyKind,
        rows: Vec<SourceLabel>,
    ) -> Result<(), ImportError> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut tx = self.begin().await?;
        let entries = entries_by_id(&mut tx, kind, &ids).await?;
        for row in rows {
            self.counts(kind).read += 1;
            self.seen.entry(kind).or_default().insert(row.id);
            let mut findings = Vec::new();
            let target = self
                .label(&mut tx, kind, &row, entries.get(&row.id), &mut findings)
                .await?;
            self.labels.insert(
                (kind, row.id),
                LabelState {
                    user_id: row.user_id.clone(),
                    target,
                },
            );
            let entity = match kind {
                LegacyKind::Tag => Entity::Tag,
                LegacyKind::Category | LegacyKind::Task => Entity::Category,
            };
            self.report
                .add(entity, Some(row.id), row.user_id.as_deref(), findings);
        }
        tx.commit().await.map_err(ImportError::Target)?;
        Ok(())
    }

    /// Carries one label; returns ours, if it is carried.
    async fn label(
        &mut self,
        tx: &mut Tx,
        kind: LegacyKind,
        row: &SourceLabel,
        entry: Option<&MapEntry>,
        findings: &mut Vec<Finding>,
    ) -> Result<Option<Uuid>, ImportError> {
        let user = match self.owner(row.user_id.as_deref()) {
            Ok(user) => user,
            Err(finding) => {
                findings.push(finding);
                self.counts(kind).skipped += 1;
                return Ok(None);
            }
        };
        let plan = convert::label(kind, row, &self.rules, findings);
        let digest = row_digest(
            kind,
            row.id,
            user,
            &[
                part(row.name.as_deref()),
                part(row.color.as_deref()),
                time_part(row.created_at),
            ],
        );
        let store_kind = match kind {
            LegacyKind::Tag => Kind::Tag,
            LegacyKind::Category | LegacyKind::Task => Kind::Category,
        };
        let Some(entry) = entry else {
            let Some(plan) = plan else {
                self.counts(kind).skipped += 1;
                return Ok(None);
            };
            let mut entry = MapEntry {
                legacy_id: row.id,
                user_id: user.to_owned(),
                id: Uuid::now_v7(),
                merged: false,
                fingerprint: digest,
                exists: true,
            };
            if let Some(existing) = legacy::label_named(tx, kind, user, &plan.name, None)
                .await
                .map_err(ImportError::Target)?
            {
                entry.id = existing;
                entry.merged = true;
                findings.push(merged(kind));
                self.counts(kind).unchanged += 1;
            } else if kind == LegacyKind::Category
                && labels::count(tx, store_kind, user)
                    .await
                    .map_err(ImportError::Target)?
                    >= MAX_CATEGORIES_PER_USER
            {
                findings.push(Finding::new(
                    "name",
                    Some(plan.name),
                    Outcome::Skipped,
                    format!(
                        "the user has {MAX_CATEGORIES_PER_USER} categories here already, the \
                         most allowed"
                    ),
                ));
                self.counts(kind).skipped += 1;
                return Ok(None);
            } else {
                labels::insert(
                    tx,
                    store_kind,
                    entry.id,
                    user,
                    &plan.name,
                    plan.color.as_deref(),
                    plan.created_at,
                )
                .await
                .map_err(ImportError::Target)?;
                self.counts(kind).new += 1;
            }
            legacy::put(tx, kind, &entry)
                .await
                .map_err(ImportError::Target)?;
            return Ok(Some(entry.id));
        };
        if entry.user_id != user {
            findings.push(owner_changed(&entry.user_id));
            self.counts(kind).skipped += 1;
            return Ok(None);
        }
        if !entry.exists {
            findings.push(deleted_here(kind));
            self.counts(kind).skipped += 1;
            return Ok(None);
        }
        if entry.merged {
            findings.push(merged(kind));
        }
        if entry.fingerprint == digest || entry.merged {
            self.counts(kind).unchanged += 1;
            if entry.fingerprint != digest {
                put_fingerprint(tx, kind, entry, digest).await?;
            }
            return Ok(Some(entry.id));
        }
        // Renamed or recoloured in the original since the last run.
        let Some(plan) = plan else {
            // The new name cannot be carried, but the label was imported before: ours keeps
            // its last name. The digest stays, so every run reports it until the original is
            // fixed.
            if let Some(index) = findings.iter().rposition(|f| f.field == "name") {
                let value = findings.remove(index).value;
                findings.push(Finding::new(
                    "name",
                    value,
                    Outcome::NotCarried,
                    format!(
                        "not a valid {} name; ours keeps the name it was imported with",
                        kind.as_str()
                    ),
                ));
            }
            self.counts(kind).unchanged += 1;
            return Ok(Some(entry.id));
        };
        let current = labels::get(tx, store_kind, user, entry.id)
            .await
            .map_err(ImportError::Target)?;
        let mut name = Some(plan.name.as_str());
        let taken = legacy::label_named(tx, kind, user, &plan.name, Some(entry.id))
            .await
            .map_err(ImportError::Target)?
            .is_some();
        if taken {
            findings.push(Finding::new(
                "name",
                Some(plan.name.clone()),
                Outcome::NotCarried,
                format!(
                    "another {} of the user here has this name (ignoring case); this one \
                     keeps its name",
                    kind.as_str()
                ),
            ));
            name = None;
        }
        let same = current.as_ref().is_some_and(|c| {
            name.is_none_or(|n| n == c.name) && c.color.as_deref() == plan.color.as_deref()
        });
        if same {
            self.counts(kind).unchanged += 1;
        } else {
            labels::update(
                tx,
                store_kind,
                user,
                entry.id,
                name,
                Some(plan.color.as_deref()),
            )
            .await
            .map_err(ImportError::Target)?;
            self.counts(kind).updated += 1;
        }
        // A rename that could not be applied keeps the old digest: the next run tries again
        // (the other label may be gone by then) and reports it until then.
        if !taken {
            put_fingerprint(tx, kind, entry, digest).await?;
        }
        Ok(Some(entry.id))
    }

    /// How the label `legacy_id` of `kind` resolves for a task of `user`.
    fn label_ref(&self, kind: LegacyKind, legacy_id: i64, user: &str) -> LabelRef {
        match self.labels.get(&(kind, legacy_id)) {
            None => LabelRef::Missing,
            Some(state) if state.user_id.as_deref() != Some(user) => LabelRef::OtherUser,
            Some(LabelState {
                target: Some(id), ..
            }) => LabelRef::Carried(*id),
            Some(_) => LabelRef::NotCarried,
        }
    }

    /// One batch of tasks with their tag links.
    pub(super) async fn tasks(&mut self, rows: Vec<SourceTask>) -> Result<(), ImportError> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut tx = self.begin().await?;
        let entries = entries_by_id(&mut tx, LegacyKind::Task, &ids).await?;
        for row in rows {
            self.report.tasks.read += 1;
            self.seen
                .entry(LegacyKind::Task)
                .or_default()
                .insert(row.id);
            let mut findings = Vec::new();
            self.task(&mut tx, &row, entries.get(&row.id), &mut findings)
                .await?;
            self.report
                .add(Entity::Task, Some(row.id), row.user_id.as_deref(), findings);
        }
        legacy::put_many(&mut tx, LegacyKind::Task, &self.task_entries)
            .await
            .map_err(ImportError::Target)?;
        self.task_entries.clear();
        tx.commit().await.map_err(ImportError::Target)?;
        Ok(())
    }

    /// Carries one task.
    async fn task(
        &mut self,
        tx: &mut Tx,
        row: &SourceTask,
        entry: Option<&MapEntry>,
        findings: &mut Vec<Finding>,
    ) -> Result<(), ImportError> {
        let user = match self.owner(row.user_id.as_deref()) {
            Ok(user) => user,
            Err(finding) => {
                findings.push(finding);
                self.report.tasks.skipped += 1;
                return Ok(());
            }
        };
        let plan = convert::task(
            row,
            |kind, id| self.label_ref(kind, id, user),
            &self.rules,
            findings,
        );
        let digest = task_digest(row, user, &plan, self.rules.reminder_lead);
        let Some(entry) = entry else {
            return self.insert_task(tx, row.id, user, &plan, digest).await;
        };
        if entry.user_id != user {
            findings.push(owner_changed(&entry.user_id));
            self.report.tasks.skipped += 1;
            return Ok(());
        }
        if !entry.exists {
            findings.push(deleted_here(LegacyKind::Task));
            self.report.tasks.skipped += 1;
            return Ok(());
        }
        if entry.fingerprint == digest {
            self.report.tasks.unchanged += 1;
            return Ok(());
        }
        let Some(before) = task_store::get_for_update(tx, user, entry.id)
            .await
            .map_err(ImportError::Target)?
        else {
            // Deleted here between reading the map and locking the row.
            findings.push(deleted_here(LegacyKind::Task));
            self.report.tasks.skipped += 1;
            return Ok(());
        };
        self.update_task(tx, user, before, plan).await?;
        self.task_entries.push(MapEntry {
            fingerprint: digest,
            ..entry.clone()
        });
        Ok(())
    }

    async fn insert_task(
        &mut self,
        tx: &mut Tx,
        legacy_id: i64,
        user: &str,
        plan: &TaskPlan,
        digest: Uuid,
    ) -> Result<(), ImportError> {
        let id = Uuid::now_v7();
        task_store::insert_imported(tx, id, user, &plan.fields, plan.created_at, plan.updated_at)
            .await
            .map_err(ImportError::Target)?;
        task_store::add_tags(tx, id, &plan.tag_ids)
            .await
            .map_err(ImportError::Target)?;
        self.task_entries.push(MapEntry {
            legacy_id,
            user_id: user.to_owned(),
            id,
            merged: false,
            fingerprint: digest,
            exists: true,
        });
        if plan.fields.remind_at.is_some() && plan.fields.completed_at.is_none() {
            let task = reload(tx, user, id).await?;
            enqueue_task_event(tx, TaskChange::Created, snapshot(user, &task), &[])
                .await
                .map_err(ImportError::Target)?;
            self.report.events += 1;
        }
        self.report.tasks.new += 1;
        Ok(())
    }

    async fn update_task(
        &mut self,
        tx: &mut Tx,
        user: &str,
        before: Task,
        plan: TaskPlan,
    ) -> Result<(), ImportError> {
        let mut fields = plan.fields;
        if before.completed && fields.completed_at.is_some() {
            // Still completed: the time carried before stays (the original's is an estimate).
            fields.completed_at = before.completed_at;
        }
        let tags_before: BTreeSet<Uuid> = before.tags.iter().map(|t| t.id).collect();
        let tags_changed = tags_before != plan.tag_ids.iter().copied().collect();
        let fields_changed = fields != TaskFields::of(&before);
        if !(fields_changed || tags_changed) {
            self.report.tasks.unchanged += 1;
            return Ok(());
        }
        // Later than the row's last change, also one made here during this run: notification
        // orders a task's events by `updated_at`.
        let now = self
            .rules
            .now
            .max(before.updated_at + TimeDelta::microseconds(1));
        if fields_changed {
            task_store::update(tx, before.id, &fields, now)
                .await
                .map_err(ImportError::Target)?;
        }
        if tags_changed {
            legacy::set_tags(tx, before.id, &plan.tag_ids)
                .await
                .map_err(ImportError::Target)?;
            task_store::touch(tx, &[before.id], now)
                .await
                .map_err(ImportError::Target)?;
        }
        let after = reload(tx, user, before.id).await?;
        if has_pending_reminder(&before) || has_pending_reminder(&after) {
            // Never `task.completed`, also when the task was completed in the original: that
            // event starts the next occurrence of a recurring task, which the original made
            // itself and which is imported as a task of its own.
            let changed = changed_fields(&before, &after);
            enqueue_task_event(tx, TaskChange::Updated, snapshot(user, &after), &changed)
                .await
                .map_err(ImportError::Target)?;
            self.report.events += 1;
        }
        self.report.tasks.updated += 1;
        Ok(())
    }

    /// `task_tags` rows whose task does not exist: reported, nothing to carry.
    pub(super) fn orphan_links(&mut self, links: Vec<(i64, i64)>) {
        for (task_id, tag_id) in links {
            self.report.add(
                Entity::TaskTag,
                Some(task_id),
                None,
                [Finding::new(
                    "tag_id",
                    Some(tag_id.to_string()),
                    Outcome::Skipped,
                    format!("task {task_id} does not exist in the original"),
                )],
            );
        }
    }

    /// Deletes ours where the original row is gone: tasks first, then tags and categories (by
    /// then no carried task uses them). Refuses when the original looks empty but rows were
    /// imported from it before, which is a wrong `--source` far more often than a real state.
    pub(super) async fn prune(&mut self) -> Result<(), ImportError> {
        let read = self.report.tasks.read + self.report.categories.read + self.report.tags.read;
        if read == 0 {
            let mut conn = self.target.acquire().await.map_err(ImportError::Target)?;
            let imported = legacy::count(&mut conn)
                .await
                .map_err(ImportError::Target)?;
            if imported > 0 {
                return Err(ImportError::SourceEmpty { imported });
            }
        }
        for kind in [LegacyKind::Task, LegacyKind::Tag, LegacyKind::Category] {
            let entries = {
                let mut conn = self.target.acquire().await.map_err(ImportError::Target)?;
                legacy::all_entries(&mut conn, kind)
                    .await
                    .map_err(ImportError::Target)?
            };
            let seen = self.seen.remove(&kind).unwrap_or_default();
            let gone: Vec<MapEntry> = entries
                .into_iter()
                .filter(|e| !seen.contains(&e.legacy_id))
                .collect();
            for chunk in gone.chunks(self.batch_size) {
                let mut tx = self.begin().await?;
                for entry in chunk {
                    let deleted = match kind {
                        LegacyKind::Task => self.delete_task(&mut tx, entry).await?,
                        LegacyKind::Category | LegacyKind::Tag => {
                            self.delete_label(&mut tx, kind, entry).await?
                        }
                    };
                    if deleted {
                        self.counts(kind).deleted += 1;
                    }
                }
                let ids: Vec<i64> = chunk.iter().map(|e| e.legacy_id).collect();
                legacy::remove(&mut tx, kind, &ids)
                    .await
                    .map_err(ImportError::Target)?;
                tx.commit().await.map_err(ImportError::Target)?;
            }
        }
        Ok(())
    }

    async fn delete_task(&mut self, tx: &mut Tx, entry: &MapEntry) -> Result<bool, ImportError> {
        let Some(before) = task_store::get_for_update(tx, &entry.user_id, entry.id)
            .await
            .map_err(ImportError::Target)?
        else {
            return Ok(false);
        };
        task_store::delete(tx, &entry.user_id, entry.id)
            .await
            .map_err(ImportError::Target)?;
        if has_pending_reminder(&before) {
            enqueue_task_event(
                tx,
                TaskChange::Deleted,
                snapshot(&entry.user_id, &before),
                &[],
            )
            .await
            .map_err(ImportError::Target)?;
            self.report.events += 1;
        }
        Ok(true)
    }

    async fn delete_label(
        &mut self,
        tx: &mut Tx,
        kind: LegacyKind,
        entry: &MapEntry,
    ) -> Result<bool, ImportError> {
        // A merged entry's label was not made by the import: it stays.
        if entry.merged {
            return Ok(false);
        }
        let (store_kind, field) = match kind {
            LegacyKind::Tag => (Kind::Tag, "tags"),
            LegacyKind::Category | LegacyKind::Task => (Kind::Category, "category"),
        };
        let user = entry.user_id.as_str();
        if !labels::lock(tx, store_kind, user, entry.id)
            .await
            .map_err(ImportError::Target)?
        {
            return Ok(false);
        }
        let affected = labels::detach(tx, store_kind, entry.id, self.rules.now)
            .await
            .map_err(ImportError::Target)?;
        labels::delete(tx, store_kind, user, entry.id)
            .await
            .map_err(ImportError::Target)?;
        for task_id in affected {
            let task = reload(tx, user, task_id).await?;
            if has_pending_reminder(&task) {
                enqueue_task_event(tx, TaskChange::Updated, snapshot(user, &task), &[field])
                    .await
                    .map_err(ImportError::Target)?;
                self.report.events += 1;
            }
        }
        Ok(true)
    }
}

/// The map entries of `kind` for `ids`, by original id.
async fn entries_by_id(
    tx: &mut Tx,
    kind: LegacyKind,
    ids: &[i64],
) -> Result<HashMap<i64, MapEntry>, ImportError> {
    Ok(legacy::entries(tx, kind, ids)
        .await
        .map_err(ImportError::Target)?
        .into_iter()
        .map(|e| (e.legacy_id, e))
        .collect())
}

/// Records `entry` again with the original's new `fingerprint`.
async fn put_fingerprint(
    tx: &mut Tx,
    kind: LegacyKind,
    entry: &MapEntry,
    fingerprint: Uuid,
) -> Result<(), ImportError> {
    let entry = MapEntry {
        fingerprint,
        ..entry.clone()
    };
    legacy::put(tx, kind, &entry)
        .await
        .map_err(ImportError::Target)
}

/// A task this transaction has just written.
async fn reload(tx: &mut Tx, user: &str, id: Uuid) -> Result<Task, ImportError> {
    task_store::get(tx, user, id)
        .await
        .map_err(ImportError::Target)?
        .ok_or(ImportError::Target(sqlx::Error::RowNotFound))
}

/// Whether notification holds (or is to hold) a reminder job for the task: the import emits
/// events only for such tasks, the ones a consumer must act on.
fn has_pending_reminder(task: &Task) -> bool {
    task.remind_at.is_some() && !task.completed
}

/// The digest of a task row: its original values, what its labels resolve to here, and the
/// reminder lead (which decides `remind_at`).
fn task_digest(row: &SourceTask, user: &str, plan: &TaskPlan, lead: Option<TimeDelta>) -> Uuid {
    let tags = |ids: &mut dyn Iterator<Item = String>| ids.collect::<Vec<_>>().join(",");
    let values = [
        part(row.title.as_deref()),
        part(row.description.as_deref()),
        part(row.completed),
        part(row.priority.as_deref()),
        part(row.due_date.as_deref()),
        part(row.category_id),
        part(row.recurrence_rule.as_deref()),
        part(row.reminder_sent),
        time_part(row.created_at),
        time_part(row.updated_at),
        tags(&mut row.tag_ids.iter().map(i64::to_string)),
        part(plan.fields.category_id),
        tags(&mut plan.tag_ids.iter().map(Uuid::to_string)),
        part(lead.map(|l| l.num_seconds())),
    ];
    row_digest(LegacyKind::Task, row.id, user, &values)
}

/// The digest of the original row `id` carried for `user`: its id and owner, then `values`.
fn row_digest(kind: LegacyKind, id: i64, user: &str, values: &[String]) -> Uuid {
    let id = id.to_string();
    let parts = [id.as_str(), user]
        .into_iter()
        .chain(values.iter().map(String::as_str));
    convert::digest(kind, parts)
}

/// A user's e-mail or name, if it is one line.
fn contact<'r>(
    field: &'static str,
    value: Option<&'r str>,
    findings: &mut Vec<Finding>,
) -> Option<&'r str> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    if validation::has_control(value) || value.chars().count() > 320 {
        findings.push(Finding::new(
            field,
            None,
            Outcome::NotCarried,
            "longer than 320 characters or holds control characters",
        ));
        return None;
    }
    Some(value)
}

fn merged(kind: LegacyKind) -> Finding {
    Finding::new(
        "name",
        None,
        Outcome::Changed,
        format!(
            "the user already has a {} of this name here (ignoring case); merged into it",
            kind.as_str()
        ),
    )
}

fn deleted_here(kind: LegacyKind) -> Finding {
    Finding::new(
        "id",
        None,
        Outcome::Skipped,
        format!(
            "the {} was deleted here after it was imported; it is not brought back",
            kind.as_str()
        ),
    )
}

fn owner_changed(imported_for: &str) -> Finding {
    Finding::new(
        "user_id",
        None,
        Outcome::Skipped,
        format!(
            "the owner changed in the original since the import (it was imported for \
             {imported_for:?}); ours is left with that user"
        ),
    )
}
