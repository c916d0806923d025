//! The backend's API-facing types: what REST, MCP and the internal endpoints read and return.
//!
//! They derive serde, `utoipa::ToSchema` and `schemars::JsonSchema` so each edge can use them
//! directly instead of keeping a parallel set of DTOs. Storage rows live in `store` and are
//! converted into these types there; nothing here knows about SQL.
//!
//! Patch types use `Option<Option<T>>` for clearable fields: an absent field leaves the value
//! unchanged, an explicit `null` clears it (see [`double_option`]).
//!
//! Request types refuse unknown fields (`deny_unknown_fields`): a misspelt or foreign name
//! (`due_date` is the MCP tools' name for `due_at`) would otherwise be dropped silently and the
//! request half applied. The MCP tools read their own argument types (`mcp::args`), which keep
//! ignoring unknown arguments on purpose.
//!
//! Timestamps a client sends must lie between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z
//! (see `validation::timestamp`).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use contracts::Priority;

/// Default page size of list and search calls.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size a caller may ask for; larger values are clamped.
pub const MAX_LIMIT: u32 = 200;
/// Matches a list or search counts past the end of the page asked for. Counting every match
/// costs as much as reading them all, so a very long list would make every page slow; past
/// this many, `total` is the bound and `total_exact` is false.
pub const COUNT_AHEAD: u32 = 1000;

/// The authenticated caller, taken from the JWT (`sub`, `email`, `name`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthUser {
    /// The JWT `sub`: the user id every query is scoped by.
    pub id: String,
    /// The JWT `email`: where reminders go.
    pub email: Option<String>,
    /// The JWT `name`, shown in reminder mails.
    pub name: Option<String>,
}

impl AuthUser {
    /// A user with only an id (no email or name claims).
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            email: None,
            name: None,
        }
    }
}

/// A task as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
pub struct Task {
    /// The task id.
    pub id: Uuid,
    /// Title, 1–200 characters.
    pub title: String,
    /// Free-text description (empty when none).
    pub description: String,
    /// Whether the task is done.
    pub completed: bool,
    /// When the task was completed; set exactly when `completed` is true.
    pub completed_at: Option<DateTime<Utc>>,
    /// Priority: low, medium, high or urgent.
    #[schema(value_type = PrioritySchema)]
    pub priority: Priority,
    /// The task's category, if any.
    pub category: Option<CategoryRef>,
    /// The task's tags (at most 10), ordered by name.
    pub tags: Vec<TagRef>,
    /// Due time (UTC).
    pub due_at: Option<DateTime<Utc>>,
    /// Reminder time (UTC).
    pub remind_at: Option<DateTime<Utc>>,
    /// RFC 5545 RRULE (supported subset, normalised), e.g. `FREQ=WEEKLY;BYDAY=MO,FR`.
    pub recurrence_rule: Option<String>,
    /// For generated occurrences: the first task of the series.
    pub parent_task_id: Option<Uuid>,
    /// 0 for a task created by a user, n for the n-th generated occurrence.
    pub occurrence_index: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change time.
    pub updated_at: DateTime<Utc>,
}

/// The category of a task, as embedded in [`Task`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
pub struct CategoryRef {
    /// The category id.
    pub id: Uuid,
    /// The category name.
    pub name: String,
    /// `#RRGGBB` colour.
    pub color: Option<String>,
}

/// A tag of a task, as embedded in [`Task`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
pub struct TagRef {
    /// The tag id.
    pub id: Uuid,
    /// The tag name.
    pub name: String,
    /// `#RRGGBB` colour.
    pub color: Option<String>,
}

/// A category with its number of tasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
pub struct Category {
    /// The category id.
    pub id: Uuid,
    /// Name, 1–50 characters, unique per user (case-insensitive).
    pub name: String,
    /// `#RRGGBB` colour.
    pub color: Option<String>,
    /// How many tasks use this category.
    pub task_count: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A tag with its number of tasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
pub struct Tag {
    /// The tag id.
    pub id: Uuid,
    /// Name, 1–30 characters, unique per user (case-insensitive).
    pub name: String,
    /// `#RRGGBB` colour.
    pub color: Option<String>,
    /// How many tasks carry this tag.
    pub task_count: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Input of `create_task`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// Title, 1–200 characters after trimming.
    pub title: String,
    /// Description (default empty).
    #[serde(default)]
    pub description: Option<String>,
    /// Priority (default medium).
    #[serde(default)]
    #[schema(value_type = Option<PrioritySchema>)]
    pub priority: Option<Priority>,
    /// A category of the caller.
    #[serde(default)]
    pub category_id: Option<Uuid>,
    /// Tags of the caller, at most 10 (duplicates ignored).
    #[serde(default)]
    pub tag_ids: Vec<Uuid>,
    /// Due time; required with `recurrence_rule`.
    #[serde(default)]
    pub due_at: Option<DateTime<Utc>>,
    /// Reminder time: in the future, not after `due_at`.
    #[serde(default)]
    pub remind_at: Option<DateTime<Utc>>,
    /// RRULE of the supported subset; needs `due_at`, where the series starts.
    #[serde(default)]
    pub recurrence_rule: Option<String>,
}

/// Input of `update_task`: absent fields stay unchanged, `null` clears a clearable field.
///
/// Tags are changed with `add_tag_to_task` / `remove_tag_from_task`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    /// New title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// New description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Mark done (true) or not done (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<bool>,
    /// New priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<PrioritySchema>)]
    pub priority: Option<Priority>,
    /// New category; `null` removes it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option::deserialize"
    )]
    #[schema(value_type = Option<Uuid>)]
    pub category_id: Option<Option<Uuid>>,
    /// New due time; `null` removes it (not from a recurring task: clear `recurrence_rule`
    /// too).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option::deserialize"
    )]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub due_at: Option<Option<DateTime<Utc>>>,
    /// New reminder time; `null` removes it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option::deserialize"
    )]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub remind_at: Option<Option<DateTime<Utc>>>,
    /// New RRULE; `null` makes the task non-recurring. A recurring task needs a due time
    /// (already set, or `due_at` in the same patch).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option::deserialize"
    )]
    #[schema(value_type = Option<String>)]
    pub recurrence_rule: Option<Option<String>>,
}

impl TaskPatch {
    /// Whether the patch changes nothing at all.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// Which tasks `list_tasks` returns by completion state.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum StatusFilter {
    /// Every task.
    #[default]
    All,
    /// Tasks not completed.
    Pending,
    /// Completed tasks.
    Completed,
}

/// The sort key of `list_tasks`.
///
/// Accepts the original system's names too: `created_at`, `due_date`, `due_at`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema,
)]
pub enum SortBy {
    /// Creation time (default order: newest first).
    #[default]
    #[serde(rename = "created", alias = "created_at")]
    Created,
    /// Due time (default order: soonest first; tasks without a due time last).
    #[serde(rename = "due", alias = "due_date", alias = "due_at")]
    Due,
    /// Priority (default order: urgent first).
    #[serde(rename = "priority")]
    Priority,
}

impl SortBy {
    /// The order used when the caller gives none: newest first, soonest due first, most
    /// urgent first.
    pub fn default_order(self) -> SortOrder {
        match self {
            Self::Created | Self::Priority => SortOrder::Desc,
            Self::Due => SortOrder::Asc,
        }
    }
}

/// Sort direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// Filter, sort and page of `list_tasks`. Ties are broken by creation time, then id, so pages
/// are stable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(default)]
pub struct TaskFilter {
    /// Completion state (default all).
    pub status: StatusFilter,
    /// Only this priority.
    #[schema(value_type = Option<PrioritySchema>)]
    pub priority: Option<Priority>,
    /// Only tasks in this category.
    pub category_id: Option<Uuid>,
    /// Only tasks carrying at least one of these tags.
    pub tag_ids: Vec<Uuid>,
    /// Only tasks due strictly before this time.
    pub due_before: Option<DateTime<Utc>>,
    /// Only tasks due strictly after this time.
    pub due_after: Option<DateTime<Utc>>,
    /// Sort key (default created).
    pub sort: SortBy,
    /// Sort order (default depends on `sort`, see [`SortBy::default_order`]).
    pub order: Option<SortOrder>,
    /// Page size, default 50, at most 200 (larger values are clamped, 0 means the default).
    pub limit: u32,
    /// Number of tasks to skip.
    pub offset: u32,
}

impl Default for TaskFilter {
    fn default() -> Self {
        Self {
            status: StatusFilter::All,
            priority: None,
            category_id: None,
            tag_ids: Vec::new(),
            due_before: None,
            due_after: None,
            sort: SortBy::Created,
            order: None,
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

/// Words and filters of `search_tasks`: the full-text query, narrowed by the same priority,
/// category and tag filters as [`TaskFilter`] (a category or tag id that is not the caller's
/// matches nothing, as in a list), then paged.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchQuery {
    /// The words to look for.
    pub query: String,
    /// Only this priority.
    pub priority: Option<Priority>,
    /// Only tasks in this category.
    pub category_id: Option<Uuid>,
    /// Only tasks carrying at least one of these tags.
    pub tag_ids: Vec<Uuid>,
    /// Page size, default 50, at most 200 (larger values are clamped, 0 means the default).
    pub limit: u32,
    /// Number of matches to skip.
    pub offset: u32,
}

impl SearchQuery {
    /// A search for `query` alone: no filters, the first page of the default size.
    pub fn words(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            priority: None,
            category_id: None,
            tag_ids: Vec::new(),
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// How many items match in total; when `total_exact` is false, at least this many (the
    /// count stops [`COUNT_AHEAD`] matches past the end of this page).
    pub total: i64,
    /// Whether `total` is the exact number of matches.
    pub total_exact: bool,
    /// The page size used (after clamping).
    pub limit: u32,
    /// The offset used.
    pub offset: u32,
}

/// When `set_reminder` should remind: relative to the due time, or at a fixed time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReminderSpec {
    /// `minutes` before the task's due time (the task must have one).
    BeforeDue {
        /// Minutes before `due_at`.
        minutes: u32,
    },
    /// At this time.
    At(DateTime<Utc>),
}

/// Input of `create_category`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCategory {
    /// Name, 1–50 characters after trimming, unique per user (case-insensitive).
    pub name: String,
    /// `#RRGGBB` colour.
    #[serde(default)]
    pub color: Option<String>,
}

/// Input of `update_category`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryPatch {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New colour; `null` removes it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option::deserialize"
    )]
    #[schema(value_type = Option<String>)]
    pub color: Option<Option<String>>,
}

/// Input of `create_tag`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTag {
    /// Name, 1–30 characters after trimming, unique per user (case-insensitive).
    pub name: String,
    /// `#RRGGBB` colour.
    #[serde(default)]
    pub color: Option<String>,
}

/// Input of `update_tag`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagPatch {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New colour; `null` removes it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option::deserialize"
    )]
    #[schema(value_type = Option<String>)]
    pub color: Option<Option<String>>,
}

/// Internal: the next occurrence of a recurring task, as computed by the recurring-task
/// service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NextOccurrence {
    /// Due time of the new occurrence.
    pub due_at: DateTime<Utc>,
    /// Reminder time of the new occurrence (not after `due_at`).
    #[serde(default)]
    pub remind_at: Option<DateTime<Utc>>,
    /// Caller-chosen key (the completion event id): the same key never creates two tasks.
    pub idempotency_key: String,
}

/// Which kind of row an original system's integer id names (see `backend import-legacy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegacyKind {
    /// A task (`tasks_phaseiii` in the original).
    Task,
    /// A category (`categories`).
    Category,
    /// A tag (`tags_phasev`).
    Tag,
}

impl LegacyKind {
    /// The name stored in `legacy_ids.kind` and used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Task => "task",
            Self::Category => "category",
            Self::Tag => "tag",
        }
    }
}

/// A short view of a task, offered as a suggestion when a task id is not found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
pub struct TaskSummary {
    /// The task id.
    pub id: Uuid,
    /// The title.
    pub title: String,
    /// Due time.
    pub due_at: Option<DateTime<Utc>>,
    /// Priority.
    #[schema(value_type = PrioritySchema)]
    pub priority: Priority,
}

/// OpenAPI schema of [`Priority`] (which lives in `contracts`, without a utoipa derive).
#[derive(ToSchema)]
#[schema(as = Priority)]
#[serde(rename_all = "lowercase")]
pub enum PrioritySchema {
    /// Low.
    Low,
    /// Medium (the default).
    Medium,
    /// High.
    High,
    /// Urgent.
    Urgent,
}

/// serde helper for `Option<Option<T>>` fields: absent → `None` (with `#[serde(default)]`),
/// `null` → `Some(None)`, a value → `Some(Some(v))`.
///
/// Use as `#[serde(default, deserialize_with = "double_option::deserialize")]`; the default
/// serialisation already writes `Some(None)` as `null` (pair it with
/// `skip_serializing_if = "Option::is_none"`).
pub mod double_option {
    use serde::{Deserialize, Deserializer};

    /// Deserialises a present field (value or `null`) as `Some(..)`.
    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_distinguishes_absent_null_and_value() {
        let p: TaskPatch = serde_json::from_str(r#"{"due_at": null, "title": "x"}"#).unwrap();
        assert_eq!(p.due_at, Some(None));
        assert_eq!(p.remind_at, None);
        assert_eq!(p.title.as_deref(), Some("x"));
        let p: TaskPatch =
            serde_json::from_str(r#"{"category_id": "0190c2a0-0000-7000-8000-000000000000"}"#)
                .unwrap();
        assert!(matches!(p.category_id, Some(Some(_))));
        assert!(TaskPatch::default().is_empty());
        let back = serde_json::to_value(TaskPatch {
            remind_at: Some(None),
            ..TaskPatch::default()
        })
        .unwrap();
        assert_eq!(back, serde_json::json!({"remind_at": null}));
    }

    #[test]
    fn request_types_refuse_unknown_fields() {
        let err = serde_json::from_str::<NewTask>(r#"{"title": "x", "due_date": null}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `due_date`"), "{err}");
        assert!(serde_json::from_str::<TaskPatch>(r#"{"titel": "x"}"#).is_err());
        assert!(
            serde_json::from_str::<NewCategory>(r##"{"name": "x", "colour": "#000000"}"##).is_err()
        );
        assert!(serde_json::from_str::<CategoryPatch>(r#"{"nam": "x"}"#).is_err());
        assert!(serde_json::from_str::<NewTag>(r#"{"name": "x", "user_id": "u"}"#).is_err());
        assert!(serde_json::from_str::<TagPatch>(r#"{"id": "x"}"#).is_err());
        assert!(
            serde_json::from_str::<NextOccurrence>(
                r#"{"due_at": "2030-01-01T00:00:00Z", "idempotency_key": "k", "extra": 1}"#
            )
            .is_err()
        );
    }

    #[test]
    fn sort_names_accept_original_aliases() {
        for (s, want) in [
            ("created", SortBy::Created),
            ("created_at", SortBy::Created),
            ("due", SortBy::Due),
            ("due_date", SortBy::Due),
            ("due_at", SortBy::Due),
            ("priority", SortBy::Priority),
        ] {
            let got: SortBy = serde_json::from_value(serde_json::json!(s)).unwrap();
            assert_eq!(got, want, "{s}");
        }
        assert_eq!(SortBy::Due.default_order(), SortOrder::Asc);
        assert_eq!(SortBy::Created.default_order(), SortOrder::Desc);
        assert_eq!(SortBy::Priority.default_order(), SortOrder::Desc);
    }

    #[test]
    fn filter_defaults() {
        let f: TaskFilter = serde_json::from_str("{}").unwrap();
        assert_eq!(f, TaskFilter::default());
        assert_eq!(f.limit, DEFAULT_LIMIT);
    }
}
