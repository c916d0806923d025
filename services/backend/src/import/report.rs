//! What a run did: counts per kind of row, outbox events written, and one [`Issue`] per value
//! (or row) that could not be carried as it was.
//!
//! Every run examines every original row, including the ones it does not write because they
//! have not changed, so each report lists every issue of the original as it is now: the report
//! of the delta run at cutover is complete on its own.

use std::fmt;

use serde::Serialize;

/// What became of a value (or a row).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Carried in a changed form (mended text, a default, a merge); the row is carried.
    Changed,
    /// Left out; the rest of the row is carried.
    NotCarried,
    /// The row is not carried at all.
    Skipped,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Changed => "changed",
            Self::NotCarried => "not carried",
            Self::Skipped => "row skipped",
        }
    }
}

/// One value of a row that could not be carried as it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The original column (`due_date`, `recurrence_rule`, `tag_ids`, …).
    pub field: &'static str,
    /// The original value, quoted (never for free text: titles and descriptions stay out of
    /// reports).
    pub value: Option<String>,
    /// What became of it.
    pub outcome: Outcome,
    /// Why, and what was carried instead.
    pub reason: String,
}

impl Finding {
    pub(super) fn new(
        field: &'static str,
        value: Option<String>,
        outcome: Outcome,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            field,
            value,
            outcome,
            reason: reason.into(),
        }
    }
}

/// The kind of original row an issue is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    /// A user (their id or contact details).
    User,
    /// A row of `categories`.
    Category,
    /// A row of `tags_phasev`.
    Tag,
    /// A row of `tasks_phaseiii` (its tag links included).
    Task,
    /// A row of `task_tags` whose task does not exist.
    TaskTag,
}

impl Entity {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Category => "category",
            Self::Tag => "tag",
            Self::Task => "task",
            Self::TaskTag => "task_tags row of task",
        }
    }
}

/// A finding about one original row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// The kind of row.
    pub entity: Entity,
    /// Its original id (for a user, none: `user_id` names it).
    pub legacy_id: Option<i64>,
    /// Its owner in the original, when known.
    pub user_id: Option<String>,
    /// What could not be carried.
    #[serde(flatten)]
    pub finding: Finding,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.entity.as_str())?;
        if let Some(id) = self.legacy_id {
            write!(f, " {id}")?;
        }
        if let Some(user) = &self.user_id {
            write!(f, " (user {user:?})")?;
        }
        let Finding {
            field,
            value,
            outcome,
            reason,
        } = &self.finding;
        write!(f, ": {field}")?;
        if let Some(value) = value {
            write!(f, " {value:?}")?;
        }
        write!(f, " {}: {reason}", outcome.as_str())
    }
}

/// What a run did with the rows of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Rows read from the original.
    pub read: u64,
    /// Rows written here for the first time.
    pub new: u64,
    /// Rows here changed to follow a changed original row.
    pub updated: u64,
    /// Rows whose original did not change, or changed without changing what is carried; also
    /// labels folded into one of the same name that exists here (see the issues).
    pub unchanged: u64,
    /// Rows not carried (see the issues), or deleted here since an earlier run.
    pub skipped: u64,
    /// Rows deleted here because the original row is gone.
    pub deleted: u64,
}

impl Counts {
    /// Whether the run wrote any row of this kind.
    pub fn wrote(&self) -> bool {
        self.new + self.updated + self.deleted > 0
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} read, {} new, {} updated, {} unchanged, {} skipped, {} deleted",
            self.read, self.new, self.updated, self.unchanged, self.skipped, self.deleted
        )
    }
}

/// Everything one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Users (their rows here; ids are the original's).
    pub users: Counts,
    /// Categories.
    pub categories: Counts,
    /// Tags.
    pub tags: Counts,
    /// Tasks (with their tag links).
    pub tasks: Counts,
    /// Outbox events written (`task.created` / `task.updated` / `task.deleted`).
    pub events: u64,
    /// What could not be carried as it was, in the order found.
    pub issues: Vec<Issue>,
}

impl Report {
    /// Whether the run wrote anything at all (rows or events).
    pub fn wrote(&self) -> bool {
        [self.users, self.categories, self.tags, self.tasks]
            .iter()
            .any(Counts::wrote)
            || self.events > 0
    }

    pub(super) fn add(
        &mut self,
        entity: Entity,
        legacy_id: Option<i64>,
        user_id: Option<&str>,
        findings: impl IntoIterator<Item = Finding>,
    ) {
        self.issues
            .extend(findings.into_iter().map(|finding| Issue {
                entity,
                legacy_id,
                user_id: user_id.map(str::to_owned),
                finding,
            }));
    }
}

impl fmt::Display for Report {
    /// One line per issue, then the summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for issue in &self.issues {
            writeln!(f, "{issue}")?;
        }
        writeln!(f, "summary:")?;
        writeln!(f, "  users       {}", self.users)?;
        writeln!(f, "  categories  {}", self.categories)?;
        writeln!(f, "  tags        {}", self.tags)?;
        writeln!(f, "  tasks       {}", self.tasks)?;
        writeln!(f, "  events      {} written to the outbox", self.events)?;
        let count = |outcome| {
            self.issues
                .iter()
                .filter(|i| i.finding.outcome == outcome)
                .count()
        };
        write!(
            f,
            "  issues      {} ({} rows skipped, {} values not carried, {} changed)",
            self.issues.len(),
            count(Outcome::Skipped),
            count(Outcome::NotCarried),
            count(Outcome::Changed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_row_the_value_and_the_reason() {
        let mut report = Report::default();
        report.add(
            Entity::Task,
            Some(17),
            Some("u1"),
            [Finding::new(
                "recurrence_rule",
                Some("FREQ=HOURLY".into()),
                Outcome::NotCarried,
                "unsupported; the task is carried without recurrence",
            )],
        );
        report.tasks.read = 1;
        report.tasks.new = 1;
        let text = report.to_string();
        assert!(
            text.starts_with(
                "task 17 (user \"u1\"): recurrence_rule \"FREQ=HOURLY\" not carried: unsupported"
            ),
            "{text}"
        );
        assert!(
            text.contains("tasks       1 read, 1 new, 0 updated"),
            "{text}"
        );
        assert!(text.ends_with("1 values not carried, 0 changed)"), "{text}");
        assert!(report.wrote());
        assert!(!Report::default().wrote());
    }
}
